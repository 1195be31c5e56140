// Noticing a data dir's changes as they happen (Linux inotify), so that a
// publish is built within milliseconds instead of at the next poll.
//
// ChangeNotifier watches every directory of the tree (new subdirectories
// as they come, and the data dir's own name in its parent, so that a data
// dir swapped by renaming or by a symlink is seen too) and turns events
// into a DataDirChanges: the files to stat again and the subtrees to scan
// again. It cannot work everywhere: a network filesystem (NFS, CIFS, ...)
// tells nothing about changes made by other hosts, inotify may be missing,
// and the watch limit (fs.inotify.max_user_watches) may be reached. It then
// says why, and the caller polls (the poll runs anyway, as the safety net).
//
// NotifiedRebuilds is the thread that waits on a notifier and has the
// builder apply what it tells, after a short debounce (a burst of renames
// builds once).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crane/fd.h"
#include "crane/log.h"
#include "crane/result.h"

namespace crane {

class SnapshotBuilder;

// What changed in a data dir since the last look.
struct DataDirChanges {
    bool full = false;            // anything may have changed: scan everything
    std::set<std::string> paths;  // files created, written, renamed in or out, removed (absolute)
    std::set<std::string> dirs;   // subtrees that came, went or moved: scanned again whole

    bool empty() const { return !full && paths.empty() && dirs.empty(); }
    void clear() {
        full = false;
        paths.clear();
        dirs.clear();
    }
};

// How a data dir's changes are noticed (the status page shows it).
enum class ChangeNotice : std::int32_t { Poll = 0, Inotify = 1 };
const char* change_notice_name(ChangeNotice notice);

// The magic number of a network filesystem (NFS, CIFS/SMB, 9p, AFS, Ceph,
// Lustre, GFS2, OCFS2, FUSE), whose changes made elsewhere inotify never
// reports; nullptr for others.
const char* network_filesystem_name(std::int64_t f_type);

class ChangeNotifier {
    struct Token {};

public:
    static constexpr std::size_t kNoLimit = SIZE_MAX;
    // Watches `dir`'s tree, or why it cannot (then poll). max_watches caps
    // the number of directories watched, like the kernel's limit (tests).
    static Result<std::unique_ptr<ChangeNotifier>> open(const std::string& dir, std::size_t max_watches = kNoLimit);
    ChangeNotifier(Token, std::string dir, int fd, std::size_t max_watches);

    int fd() const { return fd_.get(); }
    std::size_t watches() const { return by_wd_.size(); }

    // Reads the events pending (never blocks) into `out`. False when
    // notification stopped working (the watch limit reached by a new
    // directory, a network filesystem mounted inside): error() says why,
    // and from then on only polling sees changes.
    bool read_into(DataDirChanges& out);
    const std::string& error() const { return error_; }

private:
    bool watch_tree(const std::string& dir, int depth);
    bool watch_one(const std::string& dir);
    void forget_tree(const std::string& dir);
    bool watch_parent();
    bool fail(std::string why);

    std::string dir_;
    Fd fd_;
    std::size_t max_watches_;
    std::map<int, std::string> by_wd_;    // directory watches: wd -> path
    std::map<std::string, int> by_path_;  // and back
    int parent_wd_ = -1;                  // the data dir's parent (its own name only)
    std::string name_in_parent_;
    std::string error_;
};

// The thread that rebuilds on notification. start() opens the notifier (on
// failure: logs why, and the status says Poll); stop() ends the thread.
class NotifiedRebuilds {
public:
    static constexpr int kDebounceMs = 20;   // quiet time that ends a burst
    static constexpr int kMaxDelayMs = 200;  // a burst that never ends is built anyway

    NotifiedRebuilds(SnapshotBuilder& builder, LogSink log);
    ~NotifiedRebuilds();
    NotifiedRebuilds(const NotifiedRebuilds&) = delete;
    NotifiedRebuilds& operator=(const NotifiedRebuilds&) = delete;

    ChangeNotice start(std::size_t max_watches = ChangeNotifier::kNoLimit);
    void stop();
    std::uint64_t rebuilds() const { return rebuilds_.load(std::memory_order_acquire); }

private:
    void run();

    SnapshotBuilder& builder_;
    LogSink log_;
    std::unique_ptr<ChangeNotifier> notifier_;
    Fd stop_fd_;  // an eventfd: readable when stop() wants the thread gone
    std::thread thread_;
    std::atomic<std::uint64_t> rebuilds_{0};
};

}  // namespace crane
