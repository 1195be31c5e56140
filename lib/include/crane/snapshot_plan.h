// Where each data dir's index snapshot lives and how often it is rebuilt:
// the policy the module applies to CraneSnapshotDir and to
// data_dir_polling_interval (docs/design.md, "The index snapshot").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crane {

// Seconds between two scans of a data dir when data_dir_polling_interval is
// not positive.
inline constexpr std::int64_t kDefaultScanInterval = 60;

// The scan interval for a configured data_dir_polling_interval.
std::int64_t scan_interval(std::int64_t configured);

// The snapshot file of `data_dir` in `dir`: a readable name (the data dir's
// path, at most 48 of its characters, others than [A-Za-z0-9.-] as '_')
// plus the FNV-1a hash of the full path and of `server` (ServerRoot and the
// configuration file), so that two data dirs never share a file, nor two
// httpd instances sharing a CraneSnapshotDir. `dir/NAME-HASH16.snap`.
std::string snapshot_file_path(std::string_view dir, std::string_view data_dir, std::string_view server);

// Who writes the snapshots: httpd's User and Group (the watchdog that
// rebuilds them runs in a child).
struct SnapshotWriter {
    uid_t uid = 0;
    gid_t gid = 0;
};

// CraneSnapshotDir made ready for `writer`: made when missing (parents 0755,
// itself 0700); started as root (`as_root`), a directory it makes is given
// to the writer, an existing one must already be the writer's (never
// chowned), and every directory on the way must let the writer through;
// otherwise it must be writable. The error line, or nullopt.
std::optional<std::string> prepare_snapshot_dir(const std::string& dir, SnapshotWriter writer, bool as_root);

// The first directory on the way to `dir` (itself included) that `writer`
// cannot pass through, with its mode and owner; empty when there is none.
std::string unreachable_for(const std::string& dir, SnapshotWriter writer);

}  // namespace crane
