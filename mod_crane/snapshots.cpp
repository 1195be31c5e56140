// The index snapshots (snapshots.h): start-up build, watchdog rebuilds,
// the children's readers.
#include "snapshots.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>

#include "crane/change_notifier.h"
#include "crane/log_ids.h"
#include "crane/signals.h"
#include "crane/snapshot_plan.h"
#include "walls.h"

namespace mod_crane {

namespace {

// The index of one data dir: its builder (run by the watchdog singleton,
// and at start-up) and this process's reader of it.
struct DataDirIndex {
    std::string data_dir;
    std::int64_t interval = 0;  // seconds: the smallest scan interval of the servers sharing it
    crane::SharedScanStatus* status = nullptr;
    std::unique_ptr<crane::SnapshotBuilder> builder;
    // in the watchdog child, while it has the role; mod_watchdog calls the
    // STOPPING state from the child's exit cleanup, on another thread than
    // the one that may be STARTING it: both hold notified_mutex
    std::unique_ptr<crane::NotifiedRebuilds> notified;
    std::mutex notified_mutex;
    bool stopping = false;  // guarded by notified_mutex: nothing starts after STOPPING
    std::shared_ptr<crane::SnapshotReader> reader;
};

// The indexes of one configuration generation, by data dir (on pconf).
std::map<std::string, DataDirIndex>* g_indexes = nullptr;

// The shared status page of a data dir: one MAP_SHARED page per data dir,
// made in the parent so every child inherits it. Kept on the process pool
// (which lives across restarts, while this DSO is unloaded and loaded
// again) so that the counters and the generation carry on after a graceful
// restart; the key names the layout, so a module upgrade gets a fresh page.
crane::SharedScanStatus* shared_status(server_rec* s, const std::string& data_dir) {
    apr_pool_t* pproc = s->process->pool;
    const std::string key = "mod_crane:scan-status:v2:" + data_dir;
    void* page = nullptr;
    apr_pool_userdata_get(&page, key.c_str(), pproc);
    if (page) return static_cast<crane::SharedScanStatus*>(page);
    void* m = mmap(nullptr, sizeof(crane::SharedScanStatus), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error(std::string("cannot map a shared page: ") + std::strerror(errno));
    auto* status = new (m) crane::SharedScanStatus();
    apr_pool_userdata_set(status, apr_pstrdup(pproc, key.c_str()), apr_pool_cleanup_null, pproc);
    return status;
}

APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance)* g_wd_get_instance = nullptr;
APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback)* g_wd_register_callback = nullptr;
constexpr const char kWatchdogName[] = "crane-index";
// The per-child watchdog (every child runs it, see follow_generations).
constexpr const char kFollowerName[] = "crane-follow";

}  // namespace

bool require_watchdog(server_rec* s) {
    g_wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    g_wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (g_wd_get_instance && g_wd_register_callback) return true;
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                 "%s: mod_crane: mod_watchdog is not loaded; it builds the index snapshot: add "
                 "'LoadModule watchdog_module modules/mod_watchdog.so' (Debian: a2enmod watchdog)",
                 crane::log_id::kWatchdogMissing);
    return false;
}

namespace {

// Changes noticed as they happen (inotify), built at once by a thread of
// the watchdog child; the watchdog's poll stays as the safety net (and is
// all there is where notification does not work: the status page says
// which). Its own functions: the builder's wiring, nothing else.
void start_notified_rebuilds(DataDirIndex& index) {
    const std::lock_guard<std::mutex> lock(index.notified_mutex);
    if (index.stopping || index.notified) return;
    walled(crane::log_id::kReloadFailed, APLOG_ERR, ap_server_conf, "cannot watch the data dir for changes", 0,
           [&index] {
               index.notified = std::make_unique<crane::NotifiedRebuilds>(*index.builder, server_log_sink(ap_server_conf));
               index.notified->start();
               return 0;
           });
}

void stop_notified_rebuilds(DataDirIndex& index) {
    const std::lock_guard<std::mutex> lock(index.notified_mutex);
    index.stopping = true;
    if (!index.notified) return;
    index.notified->stop();
    index.notified.reset();
}

// The watchdog singleton: one child of the server runs this for each data
// dir every interval (and once when it takes the role over). It always
// answers APR_SUCCESS: any other status would stop the callback for good.
apr_status_t watchdog_callback(int state, void* data, apr_pool_t*) {
    auto* index = static_cast<DataDirIndex*>(data);
    if (state == AP_WATCHDOG_STATE_STOPPING) {  // from the exit cleanup: not the watchdog's thread
        stop_notified_rebuilds(*index);
        return APR_SUCCESS;
    }
    crane::leave_process_signals_to_the_main_thread();  // and to the notifier thread it starts
    // watched before the scan below: a change is either notified or scanned
    if (state == AP_WATCHDOG_STATE_STARTING) start_notified_rebuilds(*index);
    walled(crane::log_id::kReloadFailed, APLOG_ERR, ap_server_conf, "metadata reload failed; the snapshot in place stays", 0, [index] {
        index->builder->refresh();
        return 0;
    });
    return APR_SUCCESS;
}

// The start-up build (adopt the file in place, scan, build what changed)
// runs in a short-lived child process: the parent's heap never holds the
// parsed metadata, which every child it forks would otherwise inherit, and
// the parent keeps no mapping of the snapshot (children map the file in
// child_init, and drop it when a newer generation comes). The status page is
// shared, so the parent sees what the build did.
void build_outside_the_parent(crane::SnapshotBuilder& builder, server_rec* s) {
    auto build = [&builder] {
        builder.adopt_existing();
        builder.refresh();
    };
    const pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 0;
        try {
            build();
        } catch (const std::exception& e) {
            log_failure(crane::log_id::kStartupBuildFailed, APLOG_ERR, s, "start-up metadata load failed", e.what());
            rc = 1;
        } catch (...) {
            rc = 1;
        }
        ::_exit(rc);  // no atexit handlers, no pool cleanups: they are the parent's
    }
    if (pid < 0) {  // no process to spare: build here, then let go of it
        build();
        builder.release();
        return;
    }
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "%s: mod_crane: the start-up build of %s ended abnormally (status %d); the watchdog "
                     "builds it again",
                     crane::log_id::kStartupBuildEnded, builder.data_dir().c_str(), wstatus);
    }
}

// ---- every child follows the generation, idle or not ----
//
// A reader remaps when current() sees a newer generation; a request calls
// it, but a child no request reaches would keep the generation it saw last
// and, with it, the pages of a file already unlinked. So every child also
// runs a mod_watchdog child watchdog (parent 0, singleton 0) that calls
// follow() every kFollowInterval (current() that never waits on a mapping
// another thread is making): it maps the new file and lets go of the
// old one, which is unmapped there and then unless a request still holds it
// (a request keeps the snapshot it started with; its shared_ptr is the last
// reference then, and the request unmaps it when it ends). While nothing
// changed the tick is one atomic load.

// Short and fixed: how long a child may keep an old generation after the
// builder published a new one, whatever the poll interval (mod_watchdog's
// timer resolution is 100 ms).
constexpr apr_interval_time_t kFollowInterval = apr_time_from_msec(200);

apr_status_t follow_callback(int state, void* data, apr_pool_t*) {
    if (state == AP_WATCHDOG_STATE_STOPPING) return APR_SUCCESS;
    crane::leave_process_signals_to_the_main_thread();
    auto* index = static_cast<DataDirIndex*>(data);
    // always APR_SUCCESS: any other status would stop the callback for good
    walled(crane::log_id::kSnapshotMapFailed, APLOG_ERR, ap_server_conf, "cannot map the index snapshot", 0, [index] {
        if (index->reader) index->reader->follow();
        return 0;
    });
    return APR_SUCCESS;
}

// post_config: registers follow_callback for every data dir with the child
// watchdog (mod_watchdog starts it in each child's child_init).
bool follow_generations(apr_pool_t* pconf, server_rec* s) {
    ap_watchdog_t* follower = nullptr;
    apr_status_t rv = g_wd_get_instance(&follower, kFollowerName, 0, 0, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "%s: mod_crane: cannot get a watchdog instance",
                     crane::log_id::kWatchdogInstance);
        return false;
    }
    for (auto& [data_dir, index] : *g_indexes) {
        rv = g_wd_register_callback(follower, kFollowInterval, &index, follow_callback);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "%s: mod_crane: cannot register the snapshot follower of %s with mod_watchdog",
                         crane::log_id::kWatchdogRegister, data_dir.c_str());
            return false;
        }
    }
    return true;
}

// The name of the server for the snapshot file names: its ServerRoot and
// configuration file.
std::string server_identity() {
    std::string id = ap_server_root ? ap_server_root : "";
    id += '\n';
    if (ap_conftree && ap_conftree->filename) id += ap_conftree->filename;
    return id;
}

// The data dirs the servers name, each with the smallest interval of them.
void plan_indexes(const std::vector<ServerSetup>& servers) {
    for (const ServerSetup& setup : servers) {
        DataDirIndex& index = (*g_indexes)[setup.config.data_dir];
        const std::int64_t interval = crane::scan_interval(setup.config.data_dir_polling_interval);
        if (index.interval == 0 || interval < index.interval) index.interval = interval;
    }
}

}  // namespace

bool start_snapshots(apr_pool_t* pconf, server_rec* main_server, const std::vector<ServerSetup>& servers) {
    g_indexes = pool_new<std::map<std::string, DataDirIndex>>(pconf);
    apr_pool_cleanup_register(
        pconf, nullptr, [](void*) noexcept -> apr_status_t { g_indexes = nullptr; return APR_SUCCESS; },
        apr_pool_cleanup_null);
    if (!require_watchdog(main_server)) return false;
    const std::string dir = snapshot_dir(pconf);
    const crane::SnapshotWriter writer{ap_unixd_config.user_id, ap_unixd_config.group_id};
    if (auto err = crane::prepare_snapshot_dir(dir, writer, geteuid() == 0)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, main_server, "%s: mod_crane: %s", crane::log_id::kSnapshotSetup,
                     err->c_str());
        return false;
    }
    plan_indexes(servers);
    ap_watchdog_t* watchdog = nullptr;
    apr_status_t rv = g_wd_get_instance(&watchdog, kWatchdogName, 0, 1, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, main_server, "%s: mod_crane: cannot get a watchdog instance",
                     crane::log_id::kWatchdogInstance);
        return false;
    }
    const std::string server = server_identity();
    for (auto& [data_dir, index] : *g_indexes) {
        index.data_dir = data_dir;
        index.status = shared_status(main_server, data_dir);
        const std::string path = crane::snapshot_file_path(dir, data_dir, server);
        index.builder = std::make_unique<crane::SnapshotBuilder>(data_dir, path, index.status,
                                                                 server_log_sink(main_server));
        // requests come first: the builder runs niced in the watchdog
        // thread (and in the start-up build's own process)
        index.builder->set_background(true);
        build_outside_the_parent(*index.builder, main_server);
        index.reader = std::make_shared<crane::SnapshotReader>(path, index.status, server_log_sink(main_server));
        rv = g_wd_register_callback(watchdog, apr_time_from_sec(index.interval), &index, watchdog_callback);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, main_server,
                         "%s: mod_crane: cannot register the snapshot builder of %s with mod_watchdog",
                         crane::log_id::kWatchdogRegister, data_dir.c_str());
            return false;
        }
    }
    return follow_generations(pconf, main_server);
}

std::shared_ptr<crane::SnapshotSource> snapshot_source(const std::string& data_dir) {
    return g_indexes->at(data_dir).reader;
}

namespace {

// glibc raises its mmap threshold to the size of the largest block freed
// (up to 32 MiB) and its trim threshold to twice that, so after the first
// build the builder's next builds (an image and every carried record: about
// a snapshot's worth each) come from a thread arena whose free top is never
// given back: the builder's child kept one to two snapshots' worth of free
// heap. Fixed thresholds keep large blocks in their own mappings, unmapped
// when freed, and an arena's free top under 1 MiB. Set in every child (any
// of them may become the builder), first thing in child_init.
void bound_free_heap() {
#ifdef __GLIBC__
    constexpr int kThreshold = 1 << 20;
    ::mallopt(M_MMAP_THRESHOLD, kThreshold);
    ::mallopt(M_TRIM_THRESHOLD, kThreshold);
#endif
}

}  // namespace

// Each child maps the snapshots before it takes requests, so that the
// first request does not pay for the mapping and its validation.
void map_snapshots(server_rec* s) {
    if (!g_indexes) return;
    bound_free_heap();
    walled(crane::log_id::kSnapshotMapFailed, APLOG_ERR, s, "cannot map the index snapshot", 0, [] {
        for (auto& [data_dir, index] : *g_indexes) index.reader->current();
        return 0;
    });
}

std::vector<SnapshotState> snapshot_states() {
    std::vector<SnapshotState> states;
    if (!g_indexes) return states;
    for (const auto& [data_dir, index] : *g_indexes) {
        SnapshotState st;
        st.data_dir = data_dir;
        // the mapping first: a child that has none yet waits for the first
        // build, and the status read after it is never older than it
        st.mapped_generation = index.reader ? index.reader->current()->generation() : 0;
        st.status = crane::read_status(*index.status);
        states.push_back(std::move(st));
    }
    return states;
}

}  // namespace mod_crane
