// Noticing a data dir's changes with inotify, and the thread that rebuilds
// on them (crane/change_notifier.h).
#include "crane/change_notifier.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include "crane/log_ids.h"
#include "crane/signals.h"
#include "crane/snapshot_store.h"

namespace crane {

namespace {

// what a directory watch reports: files written and closed, renamed in or
// out, made, removed, their mode changed; the directory itself gone
constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                   IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// the parent's watch: only names that come and go (the data dir's own)
constexpr std::uint32_t kParentMask = IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;

bool ends_with_json(std::string_view name) {
    return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
}

std::string join(const std::string& dir, std::string_view name) {
    std::string out = dir;
    if (out.empty() || out.back() != '/') out += '/';
    out += name;
    return out;
}

std::int64_t mono_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

const char* change_notice_name(ChangeNotice notice) { return notice == ChangeNotice::Inotify ? "inotify" : "poll"; }

const char* network_filesystem_name(std::int64_t f_type) {
    switch (static_cast<std::uint32_t>(f_type)) {
    case 0x6969u: return "NFS";
    case 0xFF534D42u: return "CIFS";
    case 0xFE534D42u: return "SMB2";
    case 0x517Bu: return "SMB";
    case 0x01021997u: return "9p";
    case 0x5346414Fu: return "AFS";
    case 0x00C36400u: return "Ceph";
    case 0x0BD00BD0u: return "Lustre";
    case 0x01161970u: return "GFS2";
    case 0x7461636Fu: return "OCFS2";
    case 0x65735546u: return "FUSE";
    default: return nullptr;
    }
}

Result<std::unique_ptr<ChangeNotifier>> ChangeNotifier::open(const std::string& dir, std::size_t max_watches) {
    using Opened = Result<std::unique_ptr<ChangeNotifier>>;
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Opened::failure(std::string("inotify is not available: ") + std::strerror(errno));
    auto n = std::make_unique<ChangeNotifier>(Token{}, dir, fd, max_watches);
    if (!n->watch_parent() || !n->watch_tree(dir, 0)) return Opened::failure(n->error_);
    return Opened(std::move(n));
}

ChangeNotifier::ChangeNotifier(Token, std::string dir, int fd, std::size_t max_watches)
    : dir_(std::move(dir)), fd_(fd), max_watches_(max_watches) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

bool ChangeNotifier::fail(std::string why) {
    error_ = std::move(why);
    return false;
}

// The data dir's name in its parent: a data dir renamed or swapped (a
// symlink pointed elsewhere) is a new tree.
bool ChangeNotifier::watch_parent() {
    const std::size_t slash = dir_.rfind('/');
    if (slash == std::string::npos) return true;  // relative: nothing above to watch
    const std::string parent = slash == 0 ? "/" : dir_.substr(0, slash);
    name_in_parent_ = dir_.substr(slash + 1);
    if (name_in_parent_.empty()) return true;  // the root itself
    parent_wd_ = ::inotify_add_watch(fd_.get(), parent.c_str(), kParentMask | IN_DONT_FOLLOW);
    if (parent_wd_ < 0 && errno == ENOSPC) return fail("the inotify watch limit (fs.inotify.max_user_watches) is reached");
    return true;  // an unreadable parent: the swap of the data dir is seen by the poll only
}

bool ChangeNotifier::watch_one(const std::string& dir) {
    if (by_path_.count(dir)) return true;
    if (by_wd_.size() >= max_watches_) return fail("the watch limit (" + std::to_string(max_watches_) + ") is reached at " + dir);
    struct statfs fs;
    if (::statfs(dir.c_str(), &fs) == 0) {
        if (const char* net = network_filesystem_name(fs.f_type)) {
            return fail(dir + " is on " + std::string(net) + ", where changes made elsewhere are not notified");
        }
    }
    const int wd = ::inotify_add_watch(fd_.get(), dir.c_str(), kDirMask);
    if (wd < 0) {
        if (errno == ENOSPC) return fail("the inotify watch limit (fs.inotify.max_user_watches) is reached at " + dir);
        if (errno == ENOMEM) return fail(std::string("inotify: ") + std::strerror(errno));
        return true;  // gone or unreadable meanwhile: the scan says so
    }
    // one directory reached by two paths (a symlink) has one wd: the first path stays
    if (by_wd_.emplace(wd, dir).second) by_path_.emplace(dir, wd);
    return true;
}

// Watches dir and every directory under it (following symlinks, like the
// scan; a loop ends at the directory already watched).
bool ChangeNotifier::watch_tree(const std::string& dir, int depth) {
    if (depth > 64) return true;  // the scan reports it
    const std::size_t before = by_wd_.size();
    if (!watch_one(dir)) return false;
    if (by_wd_.size() == before && by_path_.count(dir) == 0) return true;  // same directory under another path
    DIR* d = ::opendir(dir.c_str());
    if (!d) return true;
    std::vector<std::string> subdirs;
    const int dfd = ::dirfd(d);
    while (struct dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        if (e->d_type == DT_DIR) {
            subdirs.emplace_back(name);
        } else if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
            struct stat st;
            if (::fstatat(dfd, e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)) subdirs.emplace_back(name);
        }
    }
    ::closedir(d);
    for (const auto& name : subdirs) {
        if (!watch_tree(join(dir, name), depth + 1)) return false;
    }
    return true;
}

// A directory renamed away or removed: its watches, and those under it, go.
void ChangeNotifier::forget_tree(const std::string& dir) {
    const std::string prefix = dir + "/";
    for (auto it = by_path_.lower_bound(dir); it != by_path_.end();) {
        if (it->first != dir && it->first.compare(0, prefix.size(), prefix) != 0) break;
        ::inotify_rm_watch(fd_.get(), it->second);
        by_wd_.erase(it->second);
        it = by_path_.erase(it);
    }
}

bool ChangeNotifier::read_into(DataDirChanges& out) {
    alignas(struct inotify_event) char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return true;
            return fail(std::string("inotify read error: ") + std::strerror(errno));
        }
        if (n == 0) return true;
        for (ssize_t at = 0; at < n;) {
            const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + at);
            at += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
            const std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
            if (ev->mask & IN_Q_OVERFLOW) {
                out.full = true;  // events were lost: everything is scanned, new directories watched
                if (!watch_tree(dir_, 0)) return false;
                continue;
            }
            if (ev->wd == parent_wd_) {
                if (name == name_in_parent_) {
                    // the data dir was replaced: a new tree to watch
                    out.full = true;
                    forget_tree(dir_);
                    if (!watch_tree(dir_, 0)) return false;
                }
                continue;
            }
            auto w = by_wd_.find(ev->wd);
            if (ev->mask & IN_IGNORED) {
                if (w != by_wd_.end()) {
                    by_path_.erase(w->second);
                    by_wd_.erase(w);
                }
                continue;
            }
            if (w == by_wd_.end()) continue;  // a watch already forgotten
            const std::string dir = w->second;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                if (dir == dir_) {
                    out.full = true;
                    forget_tree(dir_);
                    if (!watch_tree(dir_, 0)) return false;
                } else {
                    out.dirs.insert(dir);
                }
                continue;
            }
            if (name.empty()) continue;
            const std::string path = join(dir, name);
            if (ev->mask & IN_ISDIR) {
                if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) forget_tree(path);
                if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                    // watched before it is scanned: what lands in it from now is notified
                    if (!watch_tree(path, 0)) return false;
                }
                out.dirs.insert(path);
                continue;
            }
            if (ev->mask & IN_CREATE) {
                // a file opened to be written is built when it is closed
                // (IN_CLOSE_WRITE); one that comes whole (a hard link, a
                // symlink) is built now
                struct stat st;
                if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) continue;
                if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {  // a symlink to a directory
                    if (!watch_tree(path, 0)) return false;
                    out.dirs.insert(path);
                    continue;
                }
            }
            if ((ev->mask & IN_MOVED_TO) && !ends_with_json(name)) {
                struct stat st;
                if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {  // a symlink to a directory renamed in
                    if (!watch_tree(path, 0)) return false;
                    out.dirs.insert(path);
                    continue;
                }
            }
            if ((ev->mask & (IN_MOVED_FROM | IN_DELETE)) && !ends_with_json(name)) {
                out.dirs.insert(path);  // perhaps a symlink to a directory: whatever was under it goes
                continue;
            }
            if (ends_with_json(name)) out.paths.insert(path);
        }
    }
}

// ---- the thread ----

NotifiedRebuilds::NotifiedRebuilds(SnapshotBuilder& builder, LogSink log)
    : builder_(builder), log_(log ? std::move(log) : LogSink(null_log_sink)) {}

NotifiedRebuilds::~NotifiedRebuilds() { stop(); }

ChangeNotice NotifiedRebuilds::start(std::size_t max_watches) {
    stop();
    auto opened = ChangeNotifier::open(builder_.data_dir(), max_watches);
    if (!opened) {
        log(log_, LogLevel::Warn, log_id::kChangeNoticeOff,
            "changes to " + builder_.data_dir() + " are seen by polling only: " + opened.error());
        builder_.set_change_notice(ChangeNotice::Poll);
        return ChangeNotice::Poll;
    }
    stop_fd_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (stop_fd_.get() < 0) {
        log(log_, LogLevel::Warn, log_id::kChangeNoticeOff,
            "changes to " + builder_.data_dir() + " are seen by polling only: eventfd: " + std::strerror(errno));
        builder_.set_change_notice(ChangeNotice::Poll);
        return ChangeNotice::Poll;
    }
    notifier_ = std::move(*opened);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        notifier_.reset();
        log(log_, LogLevel::Warn, log_id::kChangeNoticeOff,
            "changes to " + builder_.data_dir() + " are seen by polling only: no thread: " + e.what());
        builder_.set_change_notice(ChangeNotice::Poll);
        return ChangeNotice::Poll;
    }
    builder_.set_change_notice(ChangeNotice::Inotify);
    return ChangeNotice::Inotify;
}

void NotifiedRebuilds::stop() {
    if (thread_.joinable()) {
        const std::uint64_t one = 1;
        ssize_t w;
        do {
            w = ::write(stop_fd_.get(), &one, sizeof one);
        } while (w < 0 && errno == EINTR);
        thread_.join();
    }
    notifier_.reset();
}

void NotifiedRebuilds::run() {
    leave_process_signals_to_the_main_thread();
    DataDirChanges changes;
    // waits for events (or stop): `timeout_ms` -1 waits for ever. True: events are readable.
    auto wait = [this](int timeout_ms, bool* stopping) {
        struct pollfd fds[2] = {{notifier_->fd(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
        const int n = ::poll(fds, 2, timeout_ms);
        if (n < 0) return false;
        if (fds[1].revents) *stopping = true;
        return (fds[0].revents & POLLIN) != 0;
    };
    bool stopping = false;
    while (!stopping) {
        if (!wait(-1, &stopping) || stopping) continue;
        // the burst: read until it has been quiet for kDebounceMs (or kMaxDelayMs passed)
        const std::int64_t first = mono_ms();
        bool ok = notifier_->read_into(changes);
        while (ok && !stopping) {
            const std::int64_t left = first + kMaxDelayMs - mono_ms();
            if (left <= 0) break;
            if (!wait(static_cast<int>(std::min<std::int64_t>(kDebounceMs, left)), &stopping)) break;
            ok = notifier_->read_into(changes);
        }
        if (stopping) break;
        if (!ok) {
            log(log_, LogLevel::Warn, log_id::kChangeNoticeOff,
                "changes to " + builder_.data_dir() + " are seen by polling only from now: " + notifier_->error());
            builder_.set_change_notice(ChangeNotice::Poll);
            changes.full = true;
        }
        if (!changes.empty()) {
            try {
                builder_.refresh_changes(changes);
            } catch (const std::exception& e) {
                log(log_, LogLevel::Error, log_id::kReloadFailed,
                    std::string("metadata reload failed; the snapshot in place stays: ") + e.what());
            }
            rebuilds_.fetch_add(1, std::memory_order_acq_rel);
            changes.clear();
        }
        if (!ok) return;  // the poll carries on alone
    }
}

}  // namespace crane
