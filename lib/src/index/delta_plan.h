// Which files a delta holds and which keys it answers for (see
// snapshot.h's Snapshot and docs/design.md "Deltas").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crane/snapshot.h"

namespace crane {

struct DeltaPlan {
    std::vector<SnapshotFileInput> inputs;  // what build_snapshot encodes into the delta
    DeltaKeys keys;
    std::size_t changed = 0;  // files that differ from the base (changed, new or removed)
};

// The names more than one file of a full image defines (v1 and v2 apart),
// with those files' positions in its table: the losers a delta must hold
// beside a winner. Made once per base (one walk of its table); its views
// live as long as the image.
struct DuplicateNames {
    std::unordered_map<std::string_view, std::vector<std::size_t>> v1, v2;
};
DuplicateNames find_duplicate_names(const Snapshot& base);

// A file differs from the base when its entry there is missing or has
// another stamp, content hash or failed flag. The delta holds the files
// that differ, plus every file of the base that competes with them for a
// key: the other files defining a name one of them defines or defined, and
// the v1 repos holding an image one of them holds or held (so the delta's
// own resolution of each key is the whole data dir's). Nullopt when more
// than `max_changed` files differ (a full build then costs less than the
// delta's lookups), or when the base is generation 0 (none).

// From the whole data dir: `state` is every file as it is now, sorted by
// path (the inputs of a full build). `state` is left as it was when
// nullopt, else its differing files are moved from.
std::optional<DeltaPlan> plan_delta(const Snapshot& base, const DuplicateNames& dups,
                                    std::vector<SnapshotFileInput>& state, std::size_t max_changed);

// From the snapshot in place `latest` (the base itself, or a delta over it)
// and what changed since: `now` holds the changed paths' new state (moved
// from), `gone` the paths that are no more. Every other file is as `latest`
// has it. Costs what the delta in place and the changes hold, not the base.
std::optional<DeltaPlan> plan_delta_over(const Snapshot& base, const DuplicateNames& dups, const Snapshot& latest,
                                         std::vector<SnapshotFileInput>& now, const std::vector<std::string>& gone,
                                         std::size_t max_changed);

}  // namespace crane
