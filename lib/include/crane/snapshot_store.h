// Who builds snapshots and who reads them.
//
// One SnapshotBuilder per data dir, in one process (the module runs it in a
// mod_watchdog singleton, and once in the parent at start-up): it scans the
// data dir, parses only the files whose stamp changed (carrying every other
// file's record over from the previous snapshot, and a failed file's last
// good content), builds the new snapshot, writes it beside the old one and
// renames it into place, then bumps the generation in the shared status.
//
// One SnapshotReader per data dir in every process that answers requests:
// current() costs one atomic load while nothing changed; when the
// generation moved, it maps the new file (after validation) and drops the
// old mapping when the last request holding it ends. The module also calls
// it from a timer in every child, so that a process no request reaches does
// not keep an old generation mapped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crane/change_notifier.h"
#include "crane/file_stamp.h"
#include "crane/log.h"
#include "crane/result.h"
#include "crane/snapshot.h"

namespace crane {

struct DeltaPlan;       // index/delta_plan.h
struct DuplicateNames;

// Every *.json regular file under dir, recursively, following symlinks
// (directory loops are cut), sorted by path.
std::vector<std::pair<std::string, FileStamp>> scan_metadata_files(const std::string& dir,
                                                                   std::vector<std::string>* problems);

// What a request path asks for: the snapshot to answer from.
class SnapshotSource {
public:
    virtual ~SnapshotSource() = default;
    // Never blocks on a build; the snapshot stays valid while held.
    virtual std::shared_ptr<const Snapshot> current() = 0;
};

// What the builder tells about one data dir. Plain data.
struct ScanFigures {
    std::int32_t builder_pid = 0;
    std::uint64_t files = 0, failed_files = 0, v1_repos = 0, v2_repos = 0;
    std::uint64_t snapshot_bytes = 0;  // the image in place and its base, if it is a delta
    std::uint64_t delta_bytes = 0;     // of the delta in place; 0: a full image
    std::uint64_t scans = 0, builds = 0;
    std::int64_t last_scan_at_ns = 0;        // wall clock, when the last scan started
    std::int64_t last_scan_duration_ns = 0;  // scan, parse, build and publish
    std::int64_t last_build_at_ns = 0;       // when the snapshot in place was built
    std::int64_t last_error_at_ns = 0;
    ChangeNotice change_notice = ChangeNotice::Poll;  // how the builder learns of changes
};

// The state of one data dir, shared by every process of a server (it lives
// in a MAP_SHARED page made before the children fork). `generation` is
// written last (release) by the builder; the rest is guarded by the
// sequence counter `seq` (odd while being written).
struct SharedScanStatus : ScanFigures {
    std::atomic<std::uint64_t> generation{0};  // of the snapshot file in place; 0: none yet
    std::atomic<std::uint32_t> seq{0};
    char last_error[512] = {};
};

// A consistent copy of a SharedScanStatus (retries while a writer is busy).
struct ScanStatusCopy : ScanFigures {
    std::uint64_t generation = 0;
    std::string last_error;
};
ScanStatusCopy read_status(const SharedScanStatus& status);

struct ReloadStats {
    std::size_t files = 0, parsed = 0, failed = 0, v1_repos = 0, v2_repos = 0;
    std::size_t rechecked = 0;  // recently written files compared by content
    std::size_t snapshot_bytes = 0;
    std::size_t delta_files = 0, delta_changed = 0;  // a delta: the files it holds, those that differ from its base
    std::int64_t scan_ns = 0, parse_ns = 0, build_ns = 0, write_ns = 0;  // durations
};

class SnapshotBuilder {
public:
    // snapshot_path empty: snapshots stay in memory (tests, tools).
    // status may be null.
    SnapshotBuilder(std::string data_dir, std::string snapshot_path, SharedScanStatus* status, LogSink log);
    ~SnapshotBuilder();
    SnapshotBuilder(const SnapshotBuilder&) = delete;
    SnapshotBuilder& operator=(const SnapshotBuilder&) = delete;

    // Starts from the snapshot file in place when it is valid and was built
    // from this data dir (a restart then parses only what changed since).
    void adopt_existing();

    // Scans now; builds and publishes when anything changed (or when no
    // snapshot was published yet). Only one runs at a time: a concurrent
    // caller returns false at once. True when a new snapshot is in place.
    bool refresh(ReloadStats* stats = nullptr);

    // What a ChangeNotifier saw, applied: only the files and subtrees it
    // names are looked at (everything when changes.full), the rest of the
    // table is taken as it stands. Waits for a refresh under way (a change
    // must not be lost to a scan that looked before it). True when a new
    // snapshot is in place.
    bool refresh_changes(const DataDirChanges& changes, ReloadStats* stats = nullptr);

    // Says in the shared status how changes are noticed.
    void set_change_notice(ChangeNotice notice);

    // Deltas: a build whose files differ from the full image in place in at
    // most max(files, the image's files / 16) files publishes a delta over
    // it (see Snapshot); 0 turns them off (every build is full). Default 4096.
    void set_max_delta_files(std::size_t files) { max_delta_files_ = files; }

    // The snapshot last published (or adopted); an empty one before that.
    std::shared_ptr<const Snapshot> latest() const;

    // Builds at a lower CPU priority (nice 10 for the building threads), so
    // that requests served by the same process and machine come first. For
    // a thread that does nothing else (the module's watchdog thread): it is
    // not undone.
    void set_background(bool background) { background_ = background; }

    // Unmaps the latest snapshot (the next refresh starts from the file in
    // place). The parent calls it once its start-up build is done: a mapping
    // it kept would pin that generation's pages after the children move on.
    void release();

    const std::string& data_dir() const { return data_dir_; }
    const std::string& snapshot_path() const { return path_; }

private:
    // refresh's steps (snapshot_store.cpp)
    struct ScanPlan;
    struct InputPlan;
    struct ScanClock;
    std::shared_ptr<const Snapshot> choose_base();
    bool refresh_locked(const DataDirChanges* changes, ReloadStats* stats);
    ScanPlan plan_scan(const Snapshot& base, std::int64_t started_wall, const DataDirChanges* changes);
    void apply_changes(const DataDirChanges& changes, ScanPlan& plan);
    void recheck(const SnapshotFileInfo& f, std::int64_t started_wall, ScanPlan& plan);
    void record_unchanged_scan(const std::shared_ptr<const Snapshot>& base, const ScanPlan& scan,
                               const ScanClock& clock, std::int64_t t_scan, ReloadStats* stats);
    InputPlan plan_inputs(const ScanPlan& scan, std::int64_t started_wall, ReloadStats& st);
    void parse_changed(const ScanPlan& scan, InputPlan& plan, ReloadStats& st);
    std::shared_ptr<const Snapshot> delta_base(const std::shared_ptr<const Snapshot>& latest);
    std::uint64_t next_generation(const Snapshot& base) const;
    std::size_t max_delta_changes(const Snapshot& full) const;
    bool publish_built(std::string bytes, const std::shared_ptr<const Snapshot>& delta_over, const ScanPlan& scan,
                       ReloadStats& st, const ScanClock& clock, std::int64_t t_build, ReloadStats* stats);
    const DuplicateNames& duplicates_of(const std::shared_ptr<const Snapshot>& full);
    void prepare_deltas(const std::shared_ptr<const Snapshot>& latest);
    std::string encode_delta(DeltaPlan& delta, const Snapshot& full, std::uint64_t generation,
                             std::vector<std::string>* warnings, ReloadStats& st);
    std::optional<bool> refresh_notified(const DataDirChanges& changes, const std::shared_ptr<const Snapshot>& base,
                                         const ScanClock& clock, ReloadStats* stats);
    std::string build_image(const std::shared_ptr<const Snapshot>& base, std::vector<SnapshotFileInput>& inputs,
                            std::shared_ptr<const Snapshot>* delta_over, ReloadStats& st);
    void remove_old_bases(std::uint64_t keep_generation);
    void record_failed_publish(const std::string& error, const ScanClock& clock, std::int64_t t_done);
    void record_scan(const Snapshot& snap, const ScanPlan& scan, ReloadStats& st, const ScanClock& clock,
                     std::int64_t t_done);
    void set_error(const std::string& message);
    // Writes the snapshot beside the one in place and renames it over it
    // (in memory when there is no path); the published snapshot, or why not.
    Result<std::shared_ptr<const Snapshot>> publish(std::string bytes, const std::shared_ptr<const Snapshot>& delta_over);

    std::string data_dir_;
    std::string path_;
    SharedScanStatus* status_;
    LogSink log_;
    std::mutex mutex_;
    std::shared_ptr<const Snapshot> latest_;  // std::atomic_load/store
    bool loaded_once_ = false;                // guarded by mutex_
    bool background_ = false;
    static constexpr std::size_t kDeltaShare = 16;  // a delta may differ in up to 1/16 of its base's files
    std::size_t max_delta_files_ = 4096;
    bool base_link_failed_ = false;  // said once in the log
    std::shared_ptr<const Snapshot> dups_for_;  // the base whose duplicate names dups_ holds
    std::unique_ptr<DuplicateNames> dups_;
    FileStamp latest_stamp_;  // of the file latest_ was mapped from; guarded by mutex_
    // racy files of latest_'s table verified unchanged once their stamp was
    // safely past: trusted by their stamp until the next build rewrites the table
    std::set<std::string> settled_;  // guarded by mutex_
};

class SnapshotReader : public SnapshotSource {
public:
    // status may be null: the file is then stat-checked at most once a second.
    SnapshotReader(std::string snapshot_path, const SharedScanStatus* status, LogSink log);
    std::shared_ptr<const Snapshot> current() override;
    // What a timer calls to keep up with the generation when no request
    // does: maps a newer one and lets go of the old one, like current(),
    // but never waits: when another thread is mapping, it leaves it to that
    // thread (a thread that waits could hold up the child's exit, whose
    // cleanups join it from whatever the main thread was doing).
    void follow();

private:
    enum class Wait { IfNoneYet, Never };
    void remap(std::uint64_t want_generation, Wait wait);

    std::string path_;
    const SharedScanStatus* status_;
    LogSink log_;
    std::mutex mutex_;
    std::shared_ptr<const Snapshot> current_;  // std::atomic_load/store
    std::atomic<std::uint64_t> seen_generation_{0};
    std::atomic<std::int64_t> next_stat_ns_{0};
    FileStamp stamp_;  // guarded by mutex_
};

// A builder and its reader in one process, snapshots in memory: what unit
// tests and tools use. reload() builds; current() is what it built.
class IndexStore : public SnapshotSource {
public:
    IndexStore(std::string data_dir, LogSink log)
        : builder_(std::move(data_dir), std::string(), nullptr, std::move(log)) {}
    bool reload(ReloadStats* stats = nullptr) { return builder_.refresh(stats); }
    std::shared_ptr<const Snapshot> current() override { return builder_.latest(); }
    const std::string& data_dir() const { return builder_.data_dir(); }

private:
    SnapshotBuilder builder_;
};

}  // namespace crane
