// The crane section of mod_status and the snapshot gauges of the metrics
// page (status.h). One field list: each field has its `?auto` key
// (CraneSnapshotN<Key>), its HTML column heading (none: the field shows in
// an earlier column, or only in `?auto`), its text, and the Prometheus
// family it is (none: text, or this child's own view).
#include "status.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "crane/change_notifier.h"
#include "crane/log_ids.h"
#include "snapshots.h"
#include "walls.h"

namespace mod_crane {

namespace {

enum class Style { Auto, Html };

std::string seconds_text(std::int64_t ns) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ns) / 1e9);
    return buf;
}

std::string time_text(std::int64_t wall_ns) {
    if (wall_ns <= 0) return "never";
    char buf[APR_RFC822_DATE_LEN];
    apr_rfc822_date(buf, static_cast<apr_time_t>(wall_ns / 1000));
    return buf;
}

// A wall-clock time: seconds since the epoch for machines, a date for people.
std::string when(std::int64_t wall_ns, Style style) {
    return style == Style::Auto ? seconds_text(wall_ns) : time_text(wall_ns);
}

using Text = std::string (*)(const SnapshotState& s, Style style);
// now_ns: the wall clock; nullopt: no sample (a time that never was)
using Value = std::optional<double> (*)(const SnapshotState& s, std::int64_t now_ns);

struct Metric {
    const char* name;  // nullptr: not a metric
    const char* type;  // "gauge" or "counter"
    const char* help;
    crane::metrics::Label label;  // one more label besides data_dir (empty name: none)
    Value value;
};

struct Field {
    const char* key;      // ?auto: CraneSnapshotN<key>: text
    const char* heading;  // HTML column; nullptr: none of its own
    Text text;            // HTML: escaped when written
    Metric metric;        // fields of one family follow each other
};

constexpr double kNs = 1e9;

std::optional<double> since(std::int64_t at_ns, std::int64_t now_ns) {
    if (at_ns <= 0) return std::nullopt;
    return now_ns > at_ns ? static_cast<double>(now_ns - at_ns) / kNs : 0.0;
}

std::optional<double> at(std::int64_t at_ns) {
    if (at_ns <= 0) return std::nullopt;
    return static_cast<double>(at_ns) / kNs;
}

// In ?auto order; HTML shows the fields with a heading, in this order.
constexpr Field kFields[] = {
    {"DataDir", "Data dir", [](const SnapshotState& s, Style) { return s.data_dir; }, {}},  // the label
    {"Generation", "Generation",
     [](const SnapshotState& s, Style style) {
         std::string text = std::to_string(s.status.generation);
         if (style == Style::Html) text += " (this child: " + std::to_string(s.mapped_generation) + ")";
         return text;
     },
     {"crane_snapshot_generation", "gauge", "The generation of the snapshot in place (0: none yet).", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.generation);
      }}},
    // the child answering: a scrape would show whichever child it reached
    {"MappedGeneration", nullptr, [](const SnapshotState& s, Style) { return std::to_string(s.mapped_generation); },
     {}},
    {"Files", "Files", [](const SnapshotState& s, Style) { return std::to_string(s.status.files); },
     {"crane_snapshot_files", "gauge", "Metadata files the last scan found.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.files);
      }}},
    {"FailedFiles", "Failed files", [](const SnapshotState& s, Style) { return std::to_string(s.status.failed_files); },
     {"crane_snapshot_failed_files", "gauge", "Metadata files the last scan found that failed to parse.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.failed_files);
      }}},
    {"V1Repos", "Repositories (v1 / v2)",
     [](const SnapshotState& s, Style style) {
         std::string text = std::to_string(s.status.v1_repos);
         if (style == Style::Html) text += " / " + std::to_string(s.status.v2_repos);
         return text;
     },
     {"crane_snapshot_repositories", "gauge", "Repositories in the snapshot in place, by API.", {"api", "v1"},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.v1_repos);
      }}},
    {"V2Repos", nullptr, [](const SnapshotState& s, Style) { return std::to_string(s.status.v2_repos); },
     {"crane_snapshot_repositories", "gauge", "Repositories in the snapshot in place, by API.", {"api", "v2"},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.v2_repos);
      }}},
    {"Bytes", "Snapshot size",
     [](const SnapshotState& s, Style style) {
         return std::to_string(s.status.snapshot_bytes) + (style == Style::Html ? " bytes" : "");
     },
     {"crane_snapshot_size_bytes", "gauge", "Size of the snapshot in place (a delta's with its base's).", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.snapshot_bytes);
      }}},
    {"DeltaBytes", "Delta size",
     [](const SnapshotState& s, Style style) {
         if (style == Style::Html && s.status.delta_bytes == 0) return std::string("none (a full image)");
         return std::to_string(s.status.delta_bytes) + (style == Style::Html ? " bytes over its base" : "");
     },
     {"crane_snapshot_delta_size_bytes", "gauge",
      "Size of the delta in place over its base; 0 when a full image is in place.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.delta_bytes);
      }}},
    {"Scans", nullptr, [](const SnapshotState& s, Style) { return std::to_string(s.status.scans); },
     {"crane_snapshot_scans_total", "counter", "Scans of the data dir since httpd started.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.scans);
      }}},
    {"Builds", nullptr, [](const SnapshotState& s, Style) { return std::to_string(s.status.builds); },
     {"crane_snapshot_builds_total", "counter", "Snapshots built since httpd started.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.builds);
      }}},
    {"LastScan", "Last scan", [](const SnapshotState& s, Style style) { return when(s.status.last_scan_at_ns, style); },
     {"crane_snapshot_last_scan_age_seconds", "gauge", "Seconds since the last scan started.", {},
      [](const SnapshotState& s, std::int64_t now_ns) { return since(s.status.last_scan_at_ns, now_ns); }}},
    {"LastScanDuration", "Scan took",
     [](const SnapshotState& s, Style style) {
         return seconds_text(s.status.last_scan_duration_ns) + (style == Style::Html ? " s" : "");
     },
     {"crane_snapshot_last_scan_duration_seconds", "gauge",
      "How long the last scan took: scan, parse, build and publish.", {},
      [](const SnapshotState& s, std::int64_t) -> std::optional<double> {
          return static_cast<double>(s.status.last_scan_duration_ns) / kNs;
      }}},
    {"LastBuild", "Built", [](const SnapshotState& s, Style style) { return when(s.status.last_build_at_ns, style); },
     {"crane_snapshot_last_build_timestamp_seconds", "gauge", "When the snapshot in place was built (unix seconds).",
      {}, [](const SnapshotState& s, std::int64_t) { return at(s.status.last_build_at_ns); }}},
    {"ChangeNotice", "Changes seen by",
     [](const SnapshotState& s, Style) { return std::string(crane::change_notice_name(s.status.change_notice)); },
     {}},
    {"BuilderPid", "Builder pid", [](const SnapshotState& s, Style) { return std::to_string(s.status.builder_pid); },
     {}},
    {"LastError", "Last error",
     [](const SnapshotState& s, Style style) {
         std::string text = s.status.last_error.empty() ? "(none)" : s.status.last_error;
         if (style == Style::Auto) {
             for (char& c : text) {
                 if (c == '\n' || c == '\r') c = ' ';  // one line per field
             }
         }
         return text;
     },
     {}},
};

void write_auto(request_rec* r, int i, const SnapshotState& s) {
    for (const Field& f : kFields) {
        ap_rprintf(r, "CraneSnapshot%d%s: %s\n", i, f.key, f.text(s, Style::Auto).c_str());
    }
}

void write_html_head(request_rec* r) {
    ap_rputs("<hr />\n<h2>mod_crane index snapshots</h2>\n<table border=\"1\">\n<tr>", r);
    for (const Field& f : kFields) {
        if (f.heading) ap_rvputs(r, "<th>", f.heading, "</th>", nullptr);
    }
    ap_rputs("</tr>\n", r);
}

void write_html_row(request_rec* r, const SnapshotState& s) {
    ap_rputs("<tr>", r);
    for (const Field& f : kFields) {
        if (f.heading) ap_rvputs(r, "<td>", ap_escape_html(r->pool, f.text(s, Style::Html).c_str()), "</td>", nullptr);
    }
    ap_rputs("</tr>\n", r);
}

// One section per data dir: the shared page is what the builder (in
// whichever child runs it) last wrote.
int status_unwalled(request_rec* r, int flags) {
    const std::vector<SnapshotState> states = snapshot_states();
    if (states.empty()) return OK;
    const bool short_report = (flags & AP_STATUS_SHORT) != 0;
    if (!short_report) write_html_head(r);
    int i = 0;
    for (const SnapshotState& s : states) {
        if (short_report) {
            write_auto(r, i, s);
        } else {
            write_html_row(r, s);
        }
        ++i;
    }
    if (!short_report) ap_rputs("</table>\n", r);
    return OK;
}

}  // namespace

void write_snapshot_metrics(crane::metrics::TextWriter& w) {
    const std::vector<SnapshotState> states = snapshot_states();
    const std::int64_t now_ns = static_cast<std::int64_t>(apr_time_now()) * 1000;
    const char* family = nullptr;
    for (const Field& f : kFields) {
        const Metric& m = f.metric;
        if (!m.name) continue;
        if (!family || std::strcmp(family, m.name) != 0) w.family(m.name, m.type, m.help);
        family = m.name;
        for (const SnapshotState& s : states) {
            const std::optional<double> v = m.value(s, now_ns);
            if (!v) continue;
            if (m.label.name.empty()) {
                w.sample(m.name, {{"data_dir", s.data_dir}}, *v);
            } else {
                w.sample(m.name, {{"data_dir", s.data_dir}, m.label}, *v);
            }
        }
    }
}

int status_hook(request_rec* r, int flags) {
    return walled(crane::log_id::kStatusFailed, APLOG_ERR, r->server, "status report failed", int{OK},
                  [&] { return status_unwalled(r, flags); });
}

}  // namespace mod_crane
