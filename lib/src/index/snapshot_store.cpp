// Scanning, incremental builds, publishing and mapping of index snapshots
// (see snapshot_store.h).
#include "crane/snapshot_store.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <set>
#include <system_error>
#include <thread>

#include "crane/fd.h"
#include "index/data_dir_scan.h"
#include "index/delta_plan.h"
#include "index/failed_file.h"
#include "crane/log_ids.h"
#include "crane/result.h"

namespace crane {

namespace {

constexpr std::int64_t kRacyWindowNs = kRacyWindow.count();  // see file_stamp.h

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t mono_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Writes the status under its sequence counter (readers retry while odd).
template <typename Fn>
void update_status(SharedScanStatus* status, Fn&& fn) {
    if (!status) return;
    status->seq.fetch_add(1, std::memory_order_acq_rel);
    std::atomic_thread_fence(std::memory_order_release);
    fn(*status);
    std::atomic_thread_fence(std::memory_order_release);
    status->seq.fetch_add(1, std::memory_order_acq_rel);
}

// An exclusive advisory lock on `path`.lock for one build: a builder of an
// older server generation still finishing, or another server sharing the
// snapshot dir, never renames an older snapshot over a newer one.
class BuildLock {
public:
    explicit BuildLock(const std::string& path) {
        if (path.empty()) return;
        // read-only and 0644: the start-up build runs as root, the watchdog
        // builder as User, and both must be able to open it (flock needs no
        // write access)
        fd_ = Fd(::open((path + ".lock").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
        if (fd_.get() >= 0) ::fchmod(fd_.get(), 0644);  // whatever the umask made of it (fails harmlessly if not ours)
        if (fd_.get() >= 0) {
            while (::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
            }
        }
    }
    BuildLock(const BuildLock&) = delete;
    BuildLock& operator=(const BuildLock&) = delete;

private:
    Fd fd_;  // closing it releases the lock
};

// Removes the part-written files of builders that died mid-write (a
// crashed child): `path`.tmp.PID whose process is gone.
void remove_orphans(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    const std::string prefix = path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp.";
    remove_temp_files(dir, prefix, [](std::string_view pid_text) {
        if (pid_text.find_first_not_of("0123456789") != std::string_view::npos) return false;
        const long pid = std::strtol(std::string(pid_text).c_str(), nullptr, 10);
        return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    });
}

std::string describe_build(const ReloadStats& st, std::uint64_t generation) {
    auto ms = [](std::int64_t ns) { return std::to_string(ns / 1000000); };
    return std::to_string(st.files) + " files (" + std::to_string(st.parsed) + " parsed, " +
           std::to_string(st.failed) + " failed), " + std::to_string(st.v1_repos) + " v1 and " +
           std::to_string(st.v2_repos) + " v2 repositories; snapshot generation " + std::to_string(generation) +
           ", " + std::to_string(st.snapshot_bytes) + " bytes; scan " + ms(st.scan_ns) + " ms, parse " +
           ms(st.parse_ns) + " ms, build " + ms(st.build_ns) + " ms, write " + ms(st.write_ns) + " ms" +
           (st.delta_files ? "; a delta of " + std::to_string(st.delta_files) + " files (" +
                                 std::to_string(st.delta_changed) + " changed) over its base"
                           : std::string());
}

// Lowers the calling thread's CPU priority (Linux: nice is per thread).
void lower_thread_priority() {
    constexpr int kNice = 10;
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    if (::getpriority(PRIO_PROCESS, tid) < kNice) ::setpriority(PRIO_PROCESS, tid, kNice);
}

// One changed file, parsed.
struct Parsed {
    MetadataResult result = MetadataResult::failure(MetadataError{});
    std::string read_error;  // why the file could not be read; empty if it could
};

Parsed parse_file(const std::string& path, bool hash, std::uint64_t* content_hash) {
    Parsed out;
    auto file = FileReader::open(path, hash);
    if (!file) {
        out.read_error = file.error();  // a file that does not open stays a failure
        return out;
    }
    FileReader& reader = **file;
    out.result = parse_metadata_stream([&reader](char* buf, std::size_t n) { return reader.read(buf, n); }, path);
    reader.drain();
    *content_hash = reader.hash();
    out.read_error = reader.read_error();
    return out;
}

// Parses files[which[k]] for every k, on up to two threads (a full build
// of a large data dir is mostly parsing; the watchdog child has cores to
// spare while its own requests wait on the network). Only racy files are
// hashed: no other file is ever compared by content.
std::vector<Parsed> parse_files(const std::vector<std::pair<std::string, FileStamp>>& files,
                                const std::vector<std::size_t>& which, std::vector<SnapshotFileInput>& inputs,
                                bool background) {
    std::vector<Parsed> out(which.size());
    std::atomic<std::size_t> next{0};
    auto work = [&]() noexcept {
        for (;;) {
            const std::size_t k = next.fetch_add(1, std::memory_order_relaxed);
            if (k >= which.size()) return;
            const std::size_t i = which[k];
            try {
                out[k] = parse_file(files[i].first, inputs[i].racy, &inputs[i].content_hash);
            } catch (const std::exception& e) {
                out[k].read_error = std::string("cannot be parsed: ") + e.what();
            }
        }
    };
    constexpr std::size_t kParallelFrom = 64;  // fewer files: a thread costs more than it saves
    std::thread helper;
    if (which.size() >= kParallelFrom && std::thread::hardware_concurrency() > 1) {
        try {
            helper = std::thread([&work, background] {
                if (background) lower_thread_priority();
                work();
            });
        } catch (const std::system_error&) {  // no thread to be had: parse alone
        }
    }
    work();
    if (helper.joinable()) helper.join();
    return out;
}

}  // namespace

ScanStatusCopy read_status(const SharedScanStatus& s) {
    ScanStatusCopy c;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const std::uint32_t before = s.seq.load(std::memory_order_acquire);
        if (before & 1U) continue;
        std::atomic_thread_fence(std::memory_order_acquire);
        static_cast<ScanFigures&>(c) = static_cast<const ScanFigures&>(s);
        c.last_error.assign(s.last_error, strnlen(s.last_error, sizeof(s.last_error)));
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.seq.load(std::memory_order_acquire) == before) break;
    }
    c.generation = s.generation.load(std::memory_order_acquire);
    return c;
}

// ---- the builder ----

SnapshotBuilder::SnapshotBuilder(std::string data_dir, std::string snapshot_path, SharedScanStatus* status,
                                 LogSink log)
    : data_dir_(std::move(data_dir)),
      path_(std::move(snapshot_path)),
      status_(status),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      latest_(Snapshot::empty()) {}

SnapshotBuilder::~SnapshotBuilder() = default;

std::shared_ptr<const Snapshot> SnapshotBuilder::latest() const { return std::atomic_load(&latest_); }

void SnapshotBuilder::release() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::atomic_store(&latest_, Snapshot::empty());
    latest_stamp_ = FileStamp();
}

void SnapshotBuilder::adopt_existing() {
    if (path_.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) return;  // none yet: the first build makes one
    auto opened = Snapshot::open(path_);
    if (!opened) {
        log(log_, LogLevel::Error, log_id::kSnapshotRefused,
            "snapshot refused: " + opened.error() + "; it is rebuilt from " + data_dir_);
        latest_stamp_ = FileStamp::of(st);  // not worth opening again until it changes
        return;
    }
    std::atomic_store(&latest_, *opened);
    latest_stamp_ = FileStamp::of(st);
}

void SnapshotBuilder::set_error(const std::string& message) {
    update_status(status_, [&](SharedScanStatus& s) {
        const std::size_t n = std::min(message.size(), sizeof(s.last_error) - 1);
        std::memcpy(s.last_error, message.data(), n);
        s.last_error[n] = '\0';
        s.last_error_at_ns = wall_ns();
    });
}

Result<std::shared_ptr<const Snapshot>> SnapshotBuilder::publish(std::string bytes,
                                                                 const std::shared_ptr<const Snapshot>& delta_over) {
    using Published = Result<std::shared_ptr<const Snapshot>>;
    if (path_.empty()) {
        auto made = Snapshot::from_bytes(std::move(bytes), delta_over);
        if (!made) return Published::failure("the new snapshot does not validate: " + made.error());
        std::atomic_store(&latest_, *made);
        return made;
    }
    // beside the old one, then renamed over it: a reader maps the old file
    // or the new one, never a part-written one; every child reads it,
    // whoever wrote it and whatever the umask
    remove_orphans(path_);
    ReplacementFile file(path_, path_ + ".tmp." + std::to_string(::getpid()), 0644);
    if (!file.write(bytes) || !file.close()) return Published::failure(file.error());
    bytes = std::string();  // the build's memory goes before the mapping comes
    auto opened = Snapshot::open(file.temp_path(), delta_over);
    if (!opened) {
        return Published::failure("the new snapshot " + file.temp_path() + " does not validate: " + opened.error());
    }
    if (!delta_over && max_delta_files_ != 0) {
        // a full image is also the base of the deltas to come: linked under
        // that name by its writer (who may link it, whatever
        // fs.protected_hardlinks says), before it is in place
        const std::string base_file = Snapshot::base_path(path_, (*opened)->generation());
        ::unlink(base_file.c_str());  // a leftover of an earlier run
        if (::link(file.temp_path().c_str(), base_file.c_str()) != 0 && !base_link_failed_) {
            base_link_failed_ = true;
            log(log_, LogLevel::Warn, log_id::kSnapshotWrite,
                "cannot link " + file.temp_path() + " as " + base_file + " (" + std::strerror(errno) +
                    "): every build is a full one");
        }
    }
    if (!file.commit()) return Published::failure(file.error());
    std::atomic_store(&latest_, *opened);
    struct stat st;
    latest_stamp_ = ::stat(path_.c_str(), &st) == 0 ? FileStamp::of(st) : FileStamp();
    remove_old_bases(delta_over ? delta_over->generation() : (max_delta_files_ != 0 ? (*opened)->generation() : 0));
    return opened;
}

// Unlinks the base files no delta in place needs (all of them after a full
// image; readers that have one mapped keep it until they let go).
void SnapshotBuilder::remove_old_bases(std::uint64_t keep_generation) {
    const std::size_t slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash);
    const std::string prefix = path_.substr(slash == std::string::npos ? 0 : slash + 1) + ".base.";
    const std::string keep = std::to_string(keep_generation);
    remove_temp_files(dir, prefix, [&keep](std::string_view generation) {
        return generation.find_first_not_of("0123456789") == std::string_view::npos && generation != keep;
    });
}

FailedFileFate failed_file_fate(bool had_content, bool unreadable, bool marks_protected) {
    if (!had_content) return FailedFileFate::Skip;
    // never serve the old content of a repo being taken down or protected,
    // nor of a file that cannot be read: fail closed until the file is fixed
    if (unreadable || marks_protected) return FailedFileFate::Withdraw;
    return FailedFileFate::KeepLastGood;
}

// ---- refresh, step by step ----

// What the scan of the data dir found, against the base snapshot's table.
struct SnapshotBuilder::ScanPlan {
    std::vector<std::pair<std::string, FileStamp>> files;  // sorted by path
    std::vector<std::string> problems;
    std::vector<SnapshotFileInfo> old;  // the base's table, sorted by path
    std::set<std::string_view> stale;   // racy entries whose bytes changed
    std::size_t rechecked = 0;
    bool changed = false;

    const SnapshotFileInfo* find_old(const std::string& path) const {
        auto it = std::lower_bound(old.begin(), old.end(), path,
                                   [](const SnapshotFileInfo& f, const std::string& p) { return f.path < p; });
        return it != old.end() && it->path == path ? &*it : nullptr;
    }
};

// One input per scanned file: unchanged files carried over, the others to parse.
struct SnapshotBuilder::InputPlan {
    std::vector<SnapshotFileInput> inputs;
    std::vector<const SnapshotFileInfo*> before;  // each file's entry in the base table, if any
    std::vector<std::size_t> to_parse;            // indexes of the files whose stamp changed
};

// When the scan started, and the monotonic clock then and now.
struct SnapshotBuilder::ScanClock {
    std::int64_t started_wall = 0, t0 = 0;
};

namespace {
// written so recently that a same-size rewrite may keep its stamp
bool recent(const FileStamp& s, std::int64_t started_wall) { return s.mtime_ns >= started_wall - kRacyWindowNs; }
}  // namespace

// Another builder (an older server generation, another server sharing the
// snapshot dir) may have published since: build on the newest.
std::shared_ptr<const Snapshot> SnapshotBuilder::choose_base() {
    std::shared_ptr<const Snapshot> base = std::atomic_load(&latest_);
    struct stat disk;
    if (!path_.empty() && ::stat(path_.c_str(), &disk) == 0 && FileStamp::of(disk) != latest_stamp_) {
        auto on_disk = Snapshot::open(path_, base);
        if (on_disk && (*on_disk)->generation() > base->generation()) {
            base = *on_disk;
            latest_stamp_ = FileStamp::of(disk);
        }
    }
    return base;
}

// Scans the data dir and compares it with the base's table; a racy entry
// whose bytes changed is re-parsed even with an equal stamp.
// With notified changes, the walk is replaced by the base's table with
// those changes applied (apply_changes).
SnapshotBuilder::ScanPlan SnapshotBuilder::plan_scan(const Snapshot& base, std::int64_t started_wall,
                                                     const DataDirChanges* changes) {
    ScanPlan plan;
    plan.old = base.files();
    if (changes) {
        apply_changes(*changes, plan);
    } else {
        plan.files = scan_metadata_files(data_dir_, &plan.problems);
    }
    for (const auto& f : plan.old) recheck(f, started_wall, plan);
    plan.changed = (!loaded_once_ && base.generation() == 0) || plan.files.size() != plan.old.size() ||
                   !plan.stale.empty();
    for (std::size_t i = 0; !plan.changed && i < plan.files.size(); ++i) {
        plan.changed = plan.old[i].path != plan.files[i].first || plan.old[i].stamp != plan.files[i].second;
    }
    return plan;
}

// A racy entry is compared by content (see file_stamp.h): stale when its
// bytes changed, settled once verified and safely past.
void SnapshotBuilder::recheck(const SnapshotFileInfo& f, std::int64_t started_wall, ScanPlan& plan) {
    if (!f.racy || settled_.count(std::string(f.path))) return;
    ++plan.rechecked;
    const std::string path(f.path);
    auto r = FileReader::open(path);
    if (!r || !(*r)->drain() || (*r)->hash() != f.content_hash) {
        plan.stale.insert(f.path);
    } else if (!recent(f.stamp, started_wall)) {
        settled_.insert(path);  // verified and now safely past: its stamp is trusted from here
    }
}

// Nothing changed: the base stays (or becomes) the snapshot in place.
void SnapshotBuilder::record_unchanged_scan(const std::shared_ptr<const Snapshot>& base, const ScanPlan& scan,
                                            const ScanClock& clock, std::int64_t t_scan, ReloadStats* stats) {
    if (base != std::atomic_load(&latest_)) std::atomic_store(&latest_, base);
    loaded_once_ = true;
    update_status(status_, [&](SharedScanStatus& s) {
        s.builder_pid = static_cast<std::int32_t>(::getpid());
        ++s.scans;
        s.last_scan_at_ns = clock.started_wall;
        s.last_scan_duration_ns = t_scan - clock.t0;
    });
    if (status_ && status_->generation.load(std::memory_order_acquire) != base->generation()) {
        status_->generation.store(base->generation(), std::memory_order_release);
    }
    if (stats) {
        *stats = ReloadStats();
        stats->files = scan.files.size();
        stats->rechecked = scan.rechecked;
        stats->scan_ns = t_scan - clock.t0;
    }
}

// Unchanged files (and unchanged failures) carry over; the rest is parsed.
SnapshotBuilder::InputPlan SnapshotBuilder::plan_inputs(const ScanPlan& scan, std::int64_t started_wall,
                                                        ReloadStats& st) {
    InputPlan plan;
    const auto& files = scan.files;
    plan.inputs.resize(files.size());
    plan.before.assign(files.size(), nullptr);
    for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& [path, stamp] = files[i];
        SnapshotFileInput& in = plan.inputs[i];
        in.path = path;
        in.stamp = stamp;
        const SnapshotFileInfo* b = plan.before[i] = scan.find_old(path);
        if (b && b->stamp == stamp && !scan.stale.count(b->path)) {
            in.content_hash = b->content_hash;
            in.racy = b->racy && !settled_.count(path);
            in.failed = b->failed;
            in.carried_v1 = b->v1;
            in.carried_v2 = b->v2;
            if (in.failed) ++st.failed;
        } else {
            in.racy = recent(stamp, started_wall);
            plan.to_parse.push_back(i);
        }
    }
    st.parsed = plan.to_parse.size();
    return plan;
}

// Parses the changed files; a failed one keeps its last good content,
// loses it (failed_file_fate) or had none, and says so in the log.
void SnapshotBuilder::parse_changed(const ScanPlan& scan, InputPlan& plan, ReloadStats& st) {
    std::vector<Parsed> results = parse_files(scan.files, plan.to_parse, plan.inputs, background_);
    for (std::size_t k = 0; k < plan.to_parse.size(); ++k) {
        const std::size_t i = plan.to_parse[k];
        const std::string& path = scan.files[i].first;
        SnapshotFileInput& in = plan.inputs[i];
        const SnapshotFileInfo* b = plan.before[i];
        Parsed& r = results[k];
        if (r.result.ok()) {
            in.parsed = std::move(*r.result);
            continue;
        }
        ++st.failed;
        in.failed = true;
        // an unreadable file (permissions, I/O) is no content at all
        const bool unreadable = !r.read_error.empty();
        const std::string error = unreadable ? r.read_error : r.result.error().message;
        switch (failed_file_fate(b && (b->v1 || b->v2), unreadable, r.result.error().marks_protected)) {
        case FailedFileFate::KeepLastGood:
            in.carried_v1 = b->v1;
            in.carried_v2 = b->v2;
            log(log_, LogLevel::Error, log_id::kMetadataKept,
                "metadata file " + path + " skipped: " + error + "; keeping its last good content");
            break;
        case FailedFileFate::Withdraw:
            log(log_, LogLevel::Error, log_id::kMetadataWithdrawn,
                "metadata file " + path + " skipped: " + error +
                    (unreadable ? "; its repository is not served until the file can be read"
                                : "; the new content marks it protected, so its repository "
                                  "is not served until the file is fixed"));
            break;
        case FailedFileFate::Skip:
            log(log_, LogLevel::Error, log_id::kMetadataSkipped, "metadata file " + path + " skipped: " + error);
            break;
        }
        if (st.failed == 1) set_error("metadata file " + path + " skipped: " + error);
    }
}

namespace {
// A delta's base, or the snapshot itself when it is a full image.
const std::shared_ptr<const Snapshot>& full_image(const std::shared_ptr<const Snapshot>& s) {
    return s->base_image() ? s->base_image() : s;
}
}  // namespace

// The full image under `latest` (itself when it is one), when a delta
// over it can be published: in memory always; on disk when its file is in
// place under its base name.
std::shared_ptr<const Snapshot> SnapshotBuilder::delta_base(const std::shared_ptr<const Snapshot>& latest) {
    if (max_delta_files_ == 0) return nullptr;
    const std::shared_ptr<const Snapshot>& full = full_image(latest);
    if (full->generation() == 0) return nullptr;
    if (path_.empty()) return full;
    // every full image is published under its base name too (publish); one
    // of an older module, or whose link failed, is built again in full
    struct stat st;
    return ::stat(Snapshot::base_path(path_, full->generation()).c_str(), &st) == 0 ? full : nullptr;
}

// Encodes the new snapshot (the inputs go once it is built): a delta over
// the full image under `base` when few files differ from that image, else
// a full image. *delta_over is the delta's base, or null.
std::string SnapshotBuilder::build_image(const std::shared_ptr<const Snapshot>& base,
                                         std::vector<SnapshotFileInput>& inputs,
                                         std::shared_ptr<const Snapshot>* delta_over, ReloadStats& st) {
    const std::uint64_t generation = next_generation(*base);
    std::vector<std::string> warnings;
    std::string bytes;
    delta_over->reset();
    std::optional<DeltaPlan> delta;
    if (auto full = delta_base(base)) {
        delta = plan_delta(*full, duplicates_of(full), inputs, max_delta_changes(*full));
        if (delta) *delta_over = full;
    }
    if (delta) {
        bytes = encode_delta(*delta, **delta_over, generation, &warnings, st);
    } else {
        dups_for_.reset();
        settled_.clear();  // the new table records who is still racy
        bytes = build_snapshot(inputs, generation, wall_ns(), &warnings);
    }
    delta.reset();
    inputs.clear();
    inputs.shrink_to_fit();
    for (const auto& w : warnings) log(log_, LogLevel::Warn, log_id::kIndexWarning, "metadata: " + w);
    return bytes;
}

// Never backwards, even when the file in place was refused and this build
// starts from nothing: readers only look for a different number, but
// operators read it as a count.
std::uint64_t SnapshotBuilder::next_generation(const Snapshot& base) const {
    std::uint64_t generation = base.generation() + 1;
    if (status_) generation = std::max(generation, status_->generation.load(std::memory_order_acquire) + 1);
    return generation;
}

std::size_t SnapshotBuilder::max_delta_changes(const Snapshot& full) const {
    return std::max(max_delta_files_, full.file_count() / kDeltaShare);
}

const DuplicateNames& SnapshotBuilder::duplicates_of(const std::shared_ptr<const Snapshot>& full) {
    if (dups_for_ != full || !dups_) {
        dups_ = std::make_unique<DuplicateNames>(find_duplicate_names(*full));
        dups_for_ = full;
    }
    return *dups_;
}

// What the first delta over a new base would otherwise pay (one probe of
// its name table per file: 0.6 s at a million files) is paid by the build
// or scan that put the base in place, not by the publish after it.
void SnapshotBuilder::prepare_deltas(const std::shared_ptr<const Snapshot>& latest) {
    if (max_delta_files_ == 0) return;
    const std::shared_ptr<const Snapshot>& full = full_image(latest);
    if (full->generation() != 0) duplicates_of(full);
}

std::string SnapshotBuilder::encode_delta(DeltaPlan& delta, const Snapshot& full, std::uint64_t generation,
                                          std::vector<std::string>* warnings, ReloadStats& st) {
    // a delta keeps the base's table: its racy files stay as they were
    // settled; the files it holds say again who is racy
    for (const auto& in : delta.inputs) settled_.erase(in.path);
    st.delta_files = delta.inputs.size();
    st.delta_changed = delta.changed;
    return make_delta(build_snapshot(delta.inputs, generation, wall_ns(), warnings), full, std::move(delta.keys));
}

// A publish that failed: the snapshot in place stays, the error is on show.
void SnapshotBuilder::record_failed_publish(const std::string& error, const ScanClock& clock, std::int64_t t_done) {
    log(log_, LogLevel::Error, log_id::kSnapshotWrite,
        "snapshot of " + data_dir_ + " not published: " + error + "; the snapshot in place stays");
    set_error(error);
    update_status(status_, [&](SharedScanStatus& s) {
        ++s.scans;
        s.last_scan_at_ns = clock.started_wall;
        s.last_scan_duration_ns = t_done - clock.t0;
    });
}

// A new snapshot in place: the shared status, then the generation, then the log.
void SnapshotBuilder::record_scan(const Snapshot& snap, const ScanPlan& scan, ReloadStats& st,
                                  const ScanClock& clock, std::int64_t t_done) {
    const SnapshotSummary sum = snap.summary();
    st.v1_repos = sum.v1_repos;
    st.v2_repos = sum.v2_repos;
    if (st.failed == 0 && scan.problems.empty()) {
        // the last error stays on show until a clean build replaces it
        update_status(status_, [](SharedScanStatus& s) { s.last_error[0] = '\0'; });
    } else if (!scan.problems.empty()) {
        set_error("metadata: " + scan.problems.front());
    }
    update_status(status_, [&](SharedScanStatus& s) {
        s.builder_pid = static_cast<std::int32_t>(::getpid());
        s.files = sum.files;
        s.failed_files = sum.failed_files;
        s.v1_repos = sum.v1_repos;
        s.v2_repos = sum.v2_repos;
        s.snapshot_bytes = snap.mapped_bytes();
        s.delta_bytes = snap.base_image() ? snap.size_bytes() : 0;
        ++s.scans;
        ++s.builds;
        s.last_scan_at_ns = clock.started_wall;
        s.last_scan_duration_ns = t_done - clock.t0;
        s.last_build_at_ns = snap.built_at_ns();
    });
    // last: readers that see the new generation find the new file in place
    if (status_) status_->generation.store(snap.generation(), std::memory_order_release);
    log(log_, LogLevel::Info, log_id::kMetadataLoaded,
        "metadata loaded from " + data_dir_ + ": " + describe_build(st, snap.generation()));
}

namespace {

// Gives the heap's free pages back to the system when it goes out of scope.
// The builder runs in a child that serves requests too, and a scan's and a
// build's memory (the file list, every carried record, the image: about
// two snapshots' worth) would otherwise stay resident in that child between
// builds, and grow with fragmentation from one build to the next.
struct HeapTrim {
    HeapTrim() = default;
    HeapTrim(const HeapTrim&) = delete;
    HeapTrim& operator=(const HeapTrim&) = delete;
    ~HeapTrim() {
#ifdef __GLIBC__
        ::malloc_trim(0);
#endif
    }
};

}  // namespace

bool SnapshotBuilder::refresh(ReloadStats* stats) {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    return refresh_locked(nullptr, stats);
}

bool SnapshotBuilder::refresh_changes(const DataDirChanges& changes, ReloadStats* stats) {
    std::unique_lock<std::mutex> lock(mutex_);
    // a name told as a subtree that is no directory and has no files in the
    // table changes nothing (a publisher's temporary file renamed away)
    DataDirChanges told = changes;
    const std::shared_ptr<const Snapshot> latest = std::atomic_load(&latest_);
    for (auto it = told.dirs.begin(); it != told.dirs.end();) {
        struct stat st;
        const bool dir = ::stat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        it = !dir && !latest->has_files_under(*it) ? told.dirs.erase(it) : std::next(it);
    }
    // the first build of this builder scans: its base may be any older file
    // (and so does a burst of many subtrees: a walk costs less than matching them)
    constexpr std::size_t kMaxSubtrees = 64;
    const bool scan_all = told.full || !loaded_once_ || told.dirs.size() > kMaxSubtrees;
    return refresh_locked(scan_all ? nullptr : &told, stats);
}

void SnapshotBuilder::set_change_notice(ChangeNotice notice) {
    update_status(status_, [notice](SharedScanStatus& s) { s.change_notice = notice; });
}

// The base's table (sorted by path) with the notified files stat'ed again
// and the notified subtrees scanned again; the rest stands as it was.
void SnapshotBuilder::apply_changes(const DataDirChanges& changes, ScanPlan& plan) {
    auto under = [](std::string_view path, const std::string& dir) {
        return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
    };
    auto in_rescanned = [&](std::string_view path) {
        // the subtrees are few: a notified burst names a handful
        for (const auto& d : changes.dirs) {
            if (under(path, d)) return true;
        }
        return false;
    };
    // what comes back: the notified files as they are now, the subtrees' files
    std::vector<std::pair<std::string, FileStamp>> fresh;
    for (const auto& d : changes.dirs) {
        struct stat st;
        if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // gone: its files go
        auto found = scan_metadata_files(d, &plan.problems);
        for (auto& f : found) fresh.push_back(std::move(f));
    }
    for (const auto& p : changes.paths) {
        if (in_rescanned(p) || changes.dirs.count(p)) continue;
        struct stat st;
        if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) fresh.emplace_back(p, FileStamp::of(st));
    }
    std::sort(fresh.begin(), fresh.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    fresh.erase(std::unique(fresh.begin(), fresh.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
                fresh.end());
    // merge: the old entries that were neither notified nor under a
    // rescanned subtree, with the fresh ones
    plan.files.reserve(plan.old.size() + fresh.size());
    std::size_t k = 0;
    for (const SnapshotFileInfo& f : plan.old) {
        while (k < fresh.size() && fresh[k].first < f.path) plan.files.push_back(std::move(fresh[k++]));
        if (k < fresh.size() && fresh[k].first == f.path) {
            plan.files.push_back(std::move(fresh[k++]));
            continue;
        }
        const std::string path(f.path);
        if (changes.paths.count(path) || in_rescanned(f.path) || changes.dirs.count(path)) continue;  // gone
        plan.files.emplace_back(path, f.stamp);
    }
    while (k < fresh.size()) plan.files.push_back(std::move(fresh[k++]));
}

// Notified files only (no subtree), over a snapshot a delta may follow:
// the files named are looked at, the rest is what the snapshot in place
// says, and the delta is planned from the one in place (plan_delta_over):
// the cost is the change's and the delta's, not the data dir's. Nullopt
// when it does not apply (the caller scans as it would without it).
std::optional<bool> SnapshotBuilder::refresh_notified(const DataDirChanges& changes,
                                                      const std::shared_ptr<const Snapshot>& base,
                                                      const ScanClock& clock, ReloadStats* stats) {
    // a subtree told (refresh_changes left only those that are directories
    // or hold files of the table) needs a scan
    if (changes.full || !changes.dirs.empty()) return std::nullopt;
    std::shared_ptr<const Snapshot> full = delta_base(base);
    if (!full) return std::nullopt;
    const std::size_t held = base == full ? 0 : base->file_count() + base->removed_paths().size();
    if (changes.paths.size() + held > max_delta_changes(*full)) return std::nullopt;

    ScanPlan scan;  // the notified files alone
    for (const auto& p : changes.paths) {  // a std::set: sorted
        struct stat st;
        if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) scan.files.emplace_back(p, FileStamp::of(st));
        if (auto was = base->find_any_file(p)) scan.old.push_back(*was);
    }
    for (const auto& f : scan.old) recheck(f, clock.started_wall, scan);
    scan.changed = scan.files.size() != scan.old.size() || !scan.stale.empty();
    for (std::size_t i = 0; !scan.changed && i < scan.files.size(); ++i) {
        scan.changed = scan.old[i].path != scan.files[i].first || scan.old[i].stamp != scan.files[i].second;
    }
    const std::int64_t t_scan = mono_ns();
    if (!scan.changed) {
        record_unchanged_scan(base, scan, clock, t_scan, stats);
        if (stats) stats->files = base->summary().files;
        return false;
    }
    ReloadStats st;
    st.scan_ns = t_scan - clock.t0;
    InputPlan plan = plan_inputs(scan, clock.started_wall, st);
    parse_changed(scan, plan, st);
    std::vector<std::string> gone;  // named, in the table, and no more a file (both lists are by path)
    auto now = scan.files.begin();
    for (const auto& f : scan.old) {
        while (now != scan.files.end() && now->first < f.path) ++now;
        if (now == scan.files.end() || now->first != f.path) gone.emplace_back(f.path);
    }
    const std::int64_t t_parse = mono_ns();
    st.parse_ns = t_parse - t_scan;
    auto delta = plan_delta_over(*full, duplicates_of(full), *base, plan.inputs, gone, max_delta_changes(*full));
    if (!delta) return std::nullopt;  // (rare: a table that disagrees with its records)

    std::vector<std::string> warnings;
    std::string bytes = encode_delta(*delta, *full, next_generation(*base), &warnings, st);
    delta.reset();
    for (const auto& w : warnings) log(log_, LogLevel::Warn, log_id::kIndexWarning, "metadata: " + w);
    const std::int64_t t_build = mono_ns();
    st.build_ns = t_build - t_parse;
    return publish_built(std::move(bytes), full, scan, st, clock, t_build, stats);
}

bool SnapshotBuilder::refresh_locked(const DataDirChanges* changes, ReloadStats* stats) {
    // declared before the scan's and the build's locals: trims once they are freed
    const HeapTrim trim;
    if (background_) lower_thread_priority();
    BuildLock build_lock(path_);

    const ScanClock clock{wall_ns(), mono_ns()};
    std::shared_ptr<const Snapshot> base = choose_base();
    if (changes) {
        if (auto done = refresh_notified(*changes, base, clock, stats)) return *done;
    }
    const ScanPlan scan = plan_scan(*base, clock.started_wall, changes);
    const std::int64_t t_scan = mono_ns();
    if (!scan.changed) {
        record_unchanged_scan(base, scan, clock, t_scan, stats);
        prepare_deltas(base);
        return false;
    }
    for (const auto& p : scan.problems) log(log_, LogLevel::Error, log_id::kDataDirProblem, "metadata: " + p);

    ReloadStats st;
    st.files = scan.files.size();
    st.rechecked = scan.rechecked;
    st.scan_ns = t_scan - clock.t0;
    InputPlan plan = plan_inputs(scan, clock.started_wall, st);
    parse_changed(scan, plan, st);
    const std::int64_t t_parse = mono_ns();
    st.parse_ns = t_parse - t_scan;

    std::shared_ptr<const Snapshot> delta_over;
    std::string bytes = build_image(base, plan.inputs, &delta_over, st);
    const std::int64_t t_build = mono_ns();
    st.build_ns = t_build - t_parse;
    base.reset();  // the old mapping goes when its last reader lets go
    return publish_built(std::move(bytes), delta_over, scan, st, clock, t_build, stats);
}

// The build's last step, whichever way it was planned: published and
// recorded (or the failure on show), the figures handed back.
bool SnapshotBuilder::publish_built(std::string bytes, const std::shared_ptr<const Snapshot>& delta_over,
                                    const ScanPlan& scan, ReloadStats& st, const ScanClock& clock,
                                    std::int64_t t_build, ReloadStats* stats) {
    st.snapshot_bytes = bytes.size();
    const auto published = publish(std::move(bytes), delta_over);
    const std::int64_t t_done = mono_ns();
    st.write_ns = t_done - t_build;
    loaded_once_ = true;
    if (published) {
        const SnapshotSummary sum = (*published)->summary();  // the whole table, a delta's too
        st.files = sum.files;
        st.failed = sum.failed_files;
        record_scan(**published, scan, st, clock, t_done);
        prepare_deltas(*published);
    } else {
        record_failed_publish(published.error(), clock, t_done);
    }
    if (stats) *stats = st;
    return static_cast<bool>(published);
}

// ---- the reader ----

SnapshotReader::SnapshotReader(std::string snapshot_path, const SharedScanStatus* status, LogSink log)
    : path_(std::move(snapshot_path)),
      status_(status),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      current_(Snapshot::empty()) {}

std::shared_ptr<const Snapshot> SnapshotReader::current() {
    if (status_) {
        const std::uint64_t g = status_->generation.load(std::memory_order_acquire);
        if (g != seen_generation_.load(std::memory_order_acquire)) remap(g, Wait::IfNoneYet);
    } else {
        const std::int64_t now = mono_ns();
        if (now >= next_stat_ns_.load(std::memory_order_relaxed)) {
            next_stat_ns_.store(now + 1000000000, std::memory_order_relaxed);
            remap(0, Wait::IfNoneYet);
        }
    }
    return std::atomic_load(&current_);
}

void SnapshotReader::follow() {
    if (!status_) return;  // without a status page only current() stats the file
    const std::uint64_t g = status_->generation.load(std::memory_order_acquire);
    if (g != seen_generation_.load(std::memory_order_acquire)) remap(g, Wait::Never);
}

void SnapshotReader::remap(std::uint64_t want_generation, Wait wait) {
    // one thread maps and checks the new file; the others go on with the
    // snapshot in place rather than wait for it, unless there is none yet
    // (child_init asking while the timer maps the first one) and they may
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
        if (wait == Wait::Never || !status_ || seen_generation_.load(std::memory_order_acquire) != 0) return;
        lock.lock();
    }
    if (status_ && seen_generation_.load(std::memory_order_acquire) == want_generation) return;  // raced
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) {
        if (status_) seen_generation_.store(want_generation, std::memory_order_release);
        return;
    }
    FileStamp stamp = FileStamp::of(st);
    if (!status_ && stamp == stamp_) return;
    const std::shared_ptr<const Snapshot> known = std::atomic_load(&current_);
    auto opened = Snapshot::open(path_, known);
    // a delta whose base went while it was opened was replaced by then (a
    // full image is renamed into place before the bases go): the new one
    for (int retry = 0; !opened && retry < 3 && ::stat(path_.c_str(), &st) == 0 && FileStamp::of(st) != stamp;
         ++retry) {
        stamp = FileStamp::of(st);
        opened = Snapshot::open(path_, known);
    }
    stamp_ = stamp;
    if (opened) {
        std::atomic_store(&current_, *opened);
    } else {
        log(log_, LogLevel::Error, log_id::kSnapshotNotSwitched,
            "snapshot refused: " + opened.error() + "; still answering from generation " +
                std::to_string(std::atomic_load(&current_)->generation()));
    }
    // tried once per generation (or stamp): a refused file is logged once.
    // Stored after current_: a caller that sees it finds that snapshot in place.
    if (status_) seen_generation_.store(want_generation, std::memory_order_release);
}

}  // namespace crane
