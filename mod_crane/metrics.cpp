// The metrics (metrics.h). The parent makes one block of anonymous shared
// memory in post_config (every child inherits it when it forks) and keeps
// it in ap_retained_data, so a graceful or plain restart carries the
// counters on; they start from zero only when httpd itself stops, or when
// the block's shape changes (CraneMetricsRepositories, ServerLimit). The
// layout and the format are the library's (crane/metrics.h).
#include "metrics.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "crane/log_ids.h"
#include "crane/metrics.h"
#include "status.h"
#include "walls.h"

namespace mod_crane {

namespace {

using crane::metrics::SharedCounters;

// What survives a restart (the module's DSO does not): plain data only.
struct Retained {
    apr_shm_t* shm;
    void* base;  // 64-byte aligned, inside shm
    std::size_t size;
};
constexpr char kRetainedKey[] = "mod_crane:metrics:v1";
constexpr std::size_t kAlign = 64;

// This generation's counters; none with CraneMetrics Off.
std::optional<SharedCounters> g_counters;

// This process's scoreboard slot: found on its first counted request
// (the parent records a child's pid just after forking it); -1: not yet.
std::atomic<int> g_slot{-1};

std::uint32_t my_slot() {
    int slot = g_slot.load(std::memory_order_relaxed);
    if (slot < 0) {
        apr_proc_t proc;
        proc.pid = getpid();
        slot = ap_find_child_by_pid(&proc);
        if (slot < 0) return 0;  // not in the scoreboard (yet): slot 0 counts as well
        g_slot.store(slot, std::memory_order_relaxed);
    }
    return static_cast<std::uint32_t>(slot);
}

// What the crane handler left for the log_transaction hook (on r->pool).
struct Noted {
    crane::RouteId route;
    crane::ErrorReason reason;
    crane::metrics::Answer answer;
    int status;  // the library's
    const crane::Response* if_missing;  // static answers (crane/http.h)
    const crane::Response* if_precondition_failed;
    std::string_view repository;  // into r->uri
};

// The reason of a 4xx as it went out: a served file's missing and
// precondition answers have their own; an answer httpd changed has none.
crane::ErrorReason final_reason(const Noted& n, int status) {
    if (status / 100 != 4) return crane::ErrorReason::None;
    if (n.answer == crane::metrics::Answer::File) {
        if (status == HTTP_NOT_FOUND && n.if_missing) return n.if_missing->reason;
        if (status == HTTP_PRECONDITION_FAILED && n.if_precondition_failed) return n.if_precondition_failed->reason;
        return crane::ErrorReason::None;
    }
    return status == n.status ? n.reason : crane::ErrorReason::None;
}

bool make_block(server_rec* s, Retained* kept, crane::metrics::Shape shape) {
    const std::size_t size = SharedCounters::bytes_for(shape);
    apr_status_t rv = apr_shm_create(&kept->shm, size + kAlign, nullptr, s->process->pool);
    if (rv != APR_SUCCESS) {
        kept->shm = nullptr;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "%s: mod_crane: cannot make %zu bytes of shared memory for the metrics (CraneMetrics Off "
                     "does without)",
                     crane::log_id::kMetricsMemory, size + kAlign);
        return false;
    }
    void* base = apr_shm_baseaddr_get(kept->shm);
    std::size_t space = size + kAlign;
    kept->base = std::align(kAlign, size, base, space);  // room was made for it
    kept->size = size;
    g_counters = SharedCounters::create(kept->base, shape);
    return true;
}

bool start_metrics_unwalled(server_rec* s) {
    g_counters.reset();
    const MetricsSettings& settings = metrics_settings();
    if (!settings.enabled) return true;  // a block made before stays for a later reload
    int server_limit = 0;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &server_limit) != APR_SUCCESS || server_limit < 1) server_limit = 1;
    const crane::metrics::Shape shape{static_cast<std::uint32_t>(server_limit), settings.repository_limit};
    auto* kept = static_cast<Retained*>(ap_retained_data_get(kRetainedKey));
    if (!kept) kept = static_cast<Retained*>(ap_retained_data_create(kRetainedKey, sizeof(Retained)));
    if (kept->shm) {
        if ((g_counters = SharedCounters::adopt(kept->base, kept->size, shape))) return true;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "%s: mod_crane: the metrics' counters start again from zero (CraneMetricsRepositories %u, "
                     "%u process slots)",
                     crane::log_id::kMetricsReset, static_cast<unsigned>(shape.repository_limit),
                     static_cast<unsigned>(shape.slots));
        // unmapped here only: children of the last generation keep their
        // own mapping until they exit
        apr_shm_destroy(kept->shm);
        kept->shm = nullptr;
    }
    return make_block(s, kept, shape);
}

}  // namespace

bool start_metrics(server_rec* main_server) {
    return walled(crane::log_id::kMetricsMemory, APLOG_CRIT, main_server, "starting the metrics failed", false,
                  [&] { return start_metrics_unwalled(main_server); });
}

void note_answer(request_rec* r, const crane::Response& resp) {
    if (!g_counters) return;
    auto* n = static_cast<Noted*>(apr_palloc(r->pool, sizeof(Noted)));
    n->route = resp.route;
    n->reason = resp.reason;
    n->answer = !resp.file_path.empty()   ? crane::metrics::Answer::File
                : resp.status / 100 == 3 ? crane::metrics::Answer::Redirect
                                         : crane::metrics::Answer::Body;
    n->status = resp.status;
    n->if_missing = resp.if_missing;
    n->if_precondition_failed = resp.if_precondition_failed;
    n->repository = resp.repository;
    ap_set_module_config(r->request_config, &crane_module, n);
}

namespace {

int count_request_unwalled(request_rec* r) {
    // an internal redirect (ErrorDocument) answers in the last request of
    // the chain; the crane handler may have run in any of them
    const Noted* n = nullptr;
    request_rec* last = r;
    for (request_rec* q = r; q; q = q->next) {
        if (auto* noted = static_cast<const Noted*>(ap_get_module_config(q->request_config, &crane_module))) n = noted;
        last = q;
    }
    if (!n) return DECLINED;
    crane::metrics::RequestRecord rec;
    rec.route = n->route;
    rec.status = last->status;
    rec.reason = final_reason(*n, last->status);
    rec.get = r->method_number == M_GET && !r->header_only;
    rec.answer = n->answer;
    rec.bytes = static_cast<std::uint64_t>(last->bytes_sent > 0 ? last->bytes_sent : 0);
    const apr_time_t took = apr_time_now() - r->request_time;
    rec.duration_us = took > 0 ? static_cast<std::uint64_t>(took) : 0;
    rec.repository = n->repository;
    g_counters->record(my_slot(), rec);
    return OK;
}

int metrics_page(request_rec* r) {
    ap_allow_methods(r, REPLACE_ALLOW, "GET", "HEAD", nullptr);
    if (r->method_number != M_GET) return HTTP_METHOD_NOT_ALLOWED;
    if (!g_counters) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "%s: mod_crane: crane-metrics: CraneMetrics is Off",
                      crane::log_id::kMetricsOff);
        return HTTP_NOT_FOUND;
    }
    crane::metrics::TextWriter w;
    crane::metrics::write_totals(w, g_counters->totals());
    write_snapshot_metrics(w);
    const std::string text = w.take();
    ap_set_content_type(r, crane::metrics::kContentType);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, static_cast<apr_off_t>(text.size()));
    if (!r->header_only) ap_rwrite(text.data(), static_cast<int>(text.size()), r);
    return OK;
}

}  // namespace

int count_request(request_rec* r) {
    if (!g_counters) return DECLINED;
    return walled(crane::log_id::kMetricsCountFailed, APLOG_ERR, r->server, "counting a request failed",
                  int{DECLINED}, [r] { return count_request_unwalled(r); });
}

int metrics_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, "crane-metrics") != 0) return DECLINED;
    return walled(crane::log_id::kMetricsPageFailed, APLOG_ERR, r->server, "the metrics page failed",
                  int{HTTP_INTERNAL_SERVER_ERROR}, [r] { return metrics_page(r); });
}

}  // namespace mod_crane
