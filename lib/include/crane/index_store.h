// Holds the current Index of one data_dir for one process and reloads it:
// a stat walk finds added, removed and changed *.json files; only changed
// files are parsed again; a file that fails keeps its last good content;
// the new index is swapped in atomically so readers never wait or see a
// half-built index.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crane/file_stamp.h"
#include "crane/index.h"
#include "crane/log.h"

namespace crane {

// Every *.json regular file under dir, recursively, following symlinks
// (directory loops are cut), sorted by path.
std::vector<std::pair<std::string, FileStamp>> scan_metadata_files(const std::string& dir,
                                                                   std::vector<std::string>* problems);

struct ReloadStats {
    std::size_t files = 0, parsed = 0, failed = 0, v1_repos = 0, v2_repos = 0;
    std::size_t rechecked = 0;  // recently written files compared by content
};

class IndexStore {
public:
    IndexStore(std::string data_dir, std::int64_t poll_interval_seconds, LogSink log);
    ~IndexStore();
    IndexStore(const IndexStore&) = delete;
    IndexStore& operator=(const IndexStore&) = delete;

    // The index a request uses from start to end. Never blocks on a reload.
    std::shared_ptr<const Index> current() const;

    // Scans now and rebuilds if anything changed. Only one scan runs at a
    // time; a concurrent caller returns false at once. True when swapped.
    bool reload(ReloadStats* stats = nullptr);

    // A background thread that calls reload() every poll interval. Start it
    // in the process that serves (after fork), stop it before exit.
    // stop_watcher never throws (pool cleanups and the destructor call it);
    // a failed join is logged (CRANE0108) and the thread left detached.
    void start_watcher();
    void stop_watcher() noexcept;

    const std::string& data_dir() const { return data_dir_; }
    std::int64_t poll_interval() const { return interval_; }

private:
    struct Cached {
        FileStamp stamp;
        std::shared_ptr<const V1Repo> v1;  // last good content
        std::shared_ptr<const V2Repo> v2;
        bool failed_now = false;
        // Written so recently that a same-size rewrite within the file
        // system's timestamp granularity would keep the stamp: such files
        // are compared by content on the next scan too.
        bool racy = false;
        std::size_t content_hash = 0;
    };

    std::string data_dir_;
    std::int64_t interval_;
    LogSink log_;
    std::shared_ptr<const Index> current_;  // accessed with std::atomic_load/store
    std::mutex reload_mutex_;
    std::map<std::string, Cached> cache_;  // guarded by reload_mutex_
    bool loaded_once_ = false;             // guarded by reload_mutex_

    std::mutex watch_mutex_;
    std::condition_variable watch_cv_;
    bool stop_ = false;
    std::thread watcher_;
};

}  // namespace crane
