// crane-bench-index: loads one metadata data_dir through crane::IndexStore
// (the snapshot builder the module runs, snapshots kept in memory) and
// reports the time of a full build at the data dir's N repositories (split
// into scan, parse, snapshot encoding), the snapshot's size in bytes per
// repository, the builder's memory cost (RSS from /proc/self/status and
// malloc's bytes in use), the cost of a stat walk, and the time of an
// incremental reload after touching N files.
//
//   crane-bench-index DATA_DIR [--touch N] [--settle SECONDS] [--repeat R]
//                     [--fresh-racy]
//
// --touch N      files whose mtime is set to now before each incremental
//                reload (default 100; different files each round)
// --settle S     seconds to wait so files leave the builder's 2 s "racy"
//                window (default 2.1)
// --repeat R     settled reloads and full builds are run R times and the
//                median is printed (default 3)
// --fresh-racy   set every file's mtime to now before the first load, as if
//                a publish had just finished: all files start "racy"
//
// The last line is "RESULT {json}" with every figure, for scripts.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crane/snapshot_store.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

long vm_rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, 6, "VmRSS:") == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

// bytes handed out by malloc and not yet freed (arena + mmapped chunks)
long long heap_in_use() {
    struct mallinfo2 mi = mallinfo2();
    return static_cast<long long>(mi.uordblks) + static_cast<long long>(mi.hblkhd);
}

bool touch(const std::string& path) { return utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0; }

// bytes this process read through read(2) and friends (/proc/self/io rchar):
// shows how many files a reload opened besides the ones it parsed
long long bytes_read() {
    std::ifstream in("/proc/self/io");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, 6, "rchar:") == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

struct Reload {
    double ms = 0;
    bool swapped = false;
    long long read_bytes = 0;
    crane::ReloadStats stats;
};

Reload timed_reload(crane::IndexStore& store) {
    Reload r;
    const long long read0 = bytes_read();
    auto t0 = Clock::now();
    r.swapped = store.reload(&r.stats);
    r.ms = ms_since(t0);
    r.read_bytes = bytes_read() - read0;
    return r;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string list(const std::vector<double>& v) {
    std::string out;
    char buf[32];
    for (double x : v) {
        std::snprintf(buf, sizeof buf, "%s%.1f", out.empty() ? "" : ", ", x);
        out += buf;
    }
    return out;
}

void usage() {
    std::fprintf(stderr,
                 "usage: crane-bench-index DATA_DIR [--touch N] [--settle SECONDS] [--repeat R] "
                 "[--fresh-racy]\n");
}

double ns_ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string json_reload(const Reload& r) {
    std::ostringstream o;
    o << "{\"ms\": " << r.ms << ", \"swapped\": " << (r.swapped ? "true" : "false")
      << ", \"parsed\": " << r.stats.parsed << ", \"failed\": " << r.stats.failed
      << ", \"read_bytes\": " << r.read_bytes << ", \"scan_ms\": " << ns_ms(r.stats.scan_ns)
      << ", \"parse_ms\": " << ns_ms(r.stats.parse_ns) << ", \"encode_ms\": " << ns_ms(r.stats.build_ns)
      << ", \"write_ms\": " << ns_ms(r.stats.write_ns) << "}";
    return o.str();
}

void print_reload(const char* what, const Reload& r) {
    std::printf("%-62s %9.1f ms  (%s, %zu parsed, %.0f KiB read", what, r.ms,
                r.swapped ? "swapped" : "no change", r.stats.parsed,
                static_cast<double>(r.read_bytes) / 1024.0);
    if (r.swapped) {
        std::printf("; scan %.1f, parse %.1f, encode %.1f ms", ns_ms(r.stats.scan_ns), ns_ms(r.stats.parse_ns),
                    ns_ms(r.stats.build_ns));
    }
    std::printf(")\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir;
    std::size_t touch_n = 100;
    double settle = 2.1;
    bool fresh_racy = false;
    int repeat = 3;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--touch" && i + 1 < argc) {
            touch_n = static_cast<std::size_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (a == "--settle" && i + 1 < argc) {
            settle = std::strtod(argv[++i], nullptr);
        } else if (a == "--repeat" && i + 1 < argc) {
            repeat = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--fresh-racy") {
            fresh_racy = true;
        } else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else if (!a.empty() && a[0] != '-' && dir.empty()) {
            dir = a;
        } else {
            usage();
            return 2;
        }
    }
    if (dir.empty()) {
        usage();
        return 2;
    }

    std::size_t errors = 0, warnings = 0;
    crane::LogSink sink = [&](crane::LogLevel level, std::string_view msg) {
        if (level == crane::LogLevel::Error || level == crane::LogLevel::Warn) {
            (level == crane::LogLevel::Error ? errors : warnings)++;
            if (errors + warnings <= 5) std::cerr << "log: " << msg << "\n";
        }
    };

    std::vector<std::string> problems;
    auto listing = crane::scan_metadata_files(dir, &problems);
    for (const auto& p : problems) std::cerr << "scan: " << p << "\n";
    if (listing.empty()) {
        std::fprintf(stderr, "no *.json files under %s\n", dir.c_str());
        return 1;
    }
    std::vector<std::string> paths;
    paths.reserve(listing.size());
    for (auto& [path, stamp] : listing) paths.push_back(path);
    listing.clear();
    listing.shrink_to_fit();
    if (fresh_racy) {
        for (const auto& p : paths) touch(p);
    } else {
        // files written less than 2 s ago are "racy" (re-read by content on
        // the next scans); wait so the figures below show the settled case
        std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    }
    malloc_trim(0);

    const long rss0 = vm_rss_kib();
    const long long heap0 = heap_in_use();
    crane::IndexStore store(dir, sink);
    Reload load = timed_reload(store);
    const long rss1 = vm_rss_kib();
    const long long heap1 = heap_in_use();
    const std::size_t repos = load.stats.v1_repos + load.stats.v2_repos;
    const std::size_t snapshot_bytes = store.current()->size_bytes();
    const double snapshot_per_repo =
        repos ? static_cast<double>(snapshot_bytes) / static_cast<double>(repos) : 0.0;

    std::printf("data_dir %s: %zu files, %zu v2 + %zu v1 repositories, %zu failed\n", dir.c_str(),
                load.stats.files, load.stats.v2_repos, load.stats.v1_repos, load.stats.failed);
    std::printf("%-62s %9.1f ms  (scan %.1f, parse %.1f, encode %.1f)\n",
                "build (first load: scan, read, parse, encode the snapshot)", load.ms, ns_ms(load.stats.scan_ns),
                ns_ms(load.stats.parse_ns), ns_ms(load.stats.build_ns));
    std::printf("snapshot: %zu bytes = %.0f bytes/repo\n", snapshot_bytes, snapshot_per_repo);
    std::printf("RSS before %ld KiB, after %ld KiB: +%ld KiB = %.0f bytes/repo\n", rss0, rss1,
                rss1 - rss0, repos ? static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(repos) : 0.0);
    std::printf("malloc in use before %lld, after %lld: +%lld bytes = %.0f bytes/repo\n", heap0,
                heap1, heap1 - heap0,
                repos ? static_cast<double>(heap1 - heap0) / static_cast<double>(repos) : 0.0);

    auto t0 = Clock::now();
    auto again = crane::scan_metadata_files(dir, nullptr);
    const double scan_ms = ms_since(t0);
    again.clear();
    again.shrink_to_fit();
    std::printf("%-62s %9.1f ms\n", "stat walk alone (scan_metadata_files)", scan_ms);

    // batches of touched files, different in each round, spread over the tree
    std::size_t round = 0;
    auto touch_batch = [&]() {
        std::size_t n = std::min(touch_n, paths.size());
        std::size_t step = n ? paths.size() / n : 1;
        for (std::size_t i = 0; i < n; ++i) touch(paths[(i * step + round) % paths.size()]);
        ++round;
    };
    auto sleep_settle = [&]() {
        std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    };

    // Racy files (written less than 2 s before they were parsed) are
    // compared by content on later scans until an unchanged scan clears
    // them. With --fresh-racy every file is racy here, so these two show
    // whether the flags survive scans that found changes.
    touch_batch();
    Reload inc1 = timed_reload(store);
    std::string label =
        "incremental reload right after the load, " + std::to_string(touch_n) + " touched";
    print_reload(label.c_str(), inc1);
    sleep_settle();
    touch_batch();
    Reload inc2 = timed_reload(store);
    label =
        "the same " + std::to_string(settle).substr(0, 3) + " s later (no unchanged scan between)";
    print_reload(label.c_str(), inc2);
    sleep_settle();
    Reload idle = timed_reload(store);
    print_reload("reload, nothing changed (clears racy flags)", idle);

    // the settled figures, repeated for a median
    std::vector<double> inc_ms, idle_ms;
    std::size_t inc_parsed = 0;
    long long inc_read = 0, idle_read = 0;
    for (int i = 0; i < repeat; ++i) {
        sleep_settle();
        Reload quiet = timed_reload(store);
        idle_ms.push_back(quiet.ms);
        idle_read = quiet.read_bytes;
        touch_batch();
        Reload inc = timed_reload(store);
        inc_ms.push_back(inc.ms);
        inc_parsed = inc.stats.parsed;
        inc_read = inc.read_bytes;
    }
    std::printf("%-62s %9.1f ms  (median of %d: %s; %.0f KiB read)\n",
                "reload, nothing changed, settled", median(idle_ms), repeat, list(idle_ms).c_str(),
                static_cast<double>(idle_read) / 1024.0);
    label = "incremental reload, " + std::to_string(touch_n) + " files touched, settled";
    std::printf("%-62s %9.1f ms  (median of %d: %s; %zu parsed, %.0f KiB read)\n", label.c_str(),
                median(inc_ms), repeat, list(inc_ms).c_str(), inc_parsed,
                static_cast<double>(inc_read) / 1024.0);

    // full builds from scratch, repeated for a median (the first one above
    // counts too); note the first store stays alive meanwhile
    std::vector<double> build_ms{load.ms};
    // and each phase's median over the same builds (the first build's
    // phases alone vary too much on a busy machine to compare)
    std::vector<double> phase_ms[4];
    auto add_phases = [&](const crane::ReloadStats& st) {
        phase_ms[0].push_back(ns_ms(st.scan_ns));
        phase_ms[1].push_back(ns_ms(st.parse_ns));
        phase_ms[2].push_back(ns_ms(st.build_ns));
        phase_ms[3].push_back(ns_ms(st.write_ns));
    };
    add_phases(load.stats);
    for (int i = 1; i < repeat; ++i) {
        crane::IndexStore fresh(dir, sink);
        const Reload r = timed_reload(fresh);
        build_ms.push_back(r.ms);
        add_phases(r.stats);
    }
    std::printf("%-62s %9.1f ms  (median of %zu: %s)\n", "full build", median(build_ms),
                build_ms.size(), list(build_ms).c_str());
    std::printf("%-62s scan %.1f, parse %.1f, encode %.1f, write %.1f ms\n", "full build phases (medians)",
                median(phase_ms[0]), median(phase_ms[1]), median(phase_ms[2]), median(phase_ms[3]));

    const long rss_end = vm_rss_kib();
    const long long heap_end = heap_in_use();
    malloc_trim(0);
    const long rss_trim = vm_rss_kib();
    std::printf("end: RSS %ld KiB (%ld after malloc_trim), malloc in use %lld\n", rss_end, rss_trim,
                heap_end);
    if (errors || warnings) std::printf("log: %zu errors, %zu warnings\n", errors, warnings);

    std::printf(
        "RESULT {\"data_dir\": \"%s\", \"files\": %zu, \"v1_repos\": %zu, \"v2_repos\": %zu, "
        "\"failed\": %zu, \"build_ms\": %.1f, \"build_ms_all\": [%s], \"first_build\": %s, "
        "\"snapshot_bytes\": %zu, \"snapshot_bytes_per_repo\": %.0f, \"rss_before_kib\": %ld, "
        "\"rss_after_kib\": %ld, \"rss_bytes_per_repo\": %.0f, \"heap_bytes_per_repo\": %.0f, "
        "\"build_phases_ms\": {\"scan\": %.1f, \"parse\": %.1f, \"encode\": %.1f, \"write\": %.1f}, "
        "\"scan_ms\": %.1f, \"touched\": %zu, \"fresh_racy\": %s, \"incremental_after_load\": %s, "
        "\"incremental_unsettled\": %s, \"nochange_clearing\": %s, \"nochange_settled_ms\": %.1f, "
        "\"incremental_settled_ms\": %.1f, \"incremental_settled_all\": [%s], \"rss_end_kib\": "
        "%ld, "
        "\"rss_end_trimmed_kib\": %ld, \"log_errors\": %zu, \"log_warnings\": %zu}\n",
        dir.c_str(), load.stats.files, load.stats.v1_repos, load.stats.v2_repos, load.stats.failed,
        median(build_ms), list(build_ms).c_str(), json_reload(load).c_str(), snapshot_bytes, snapshot_per_repo,
        rss0, rss1,
        repos ? static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(repos) : 0.0,
        repos ? static_cast<double>(heap1 - heap0) / static_cast<double>(repos) : 0.0, median(phase_ms[0]),
        median(phase_ms[1]), median(phase_ms[2]), median(phase_ms[3]), scan_ms,
        touch_n, fresh_racy ? "true" : "false", json_reload(inc1).c_str(),
        json_reload(inc2).c_str(), json_reload(idle).c_str(), median(idle_ms), median(inc_ms),
        list(inc_ms).c_str(), rss_end, rss_trim, errors, warnings);
    return errors ? 1 : 0;
}
