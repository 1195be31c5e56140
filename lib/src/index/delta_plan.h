// Which files a delta holds and which keys it answers for (see
// snapshot.h's Snapshot and docs/design.md "Deltas").
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "crane/snapshot.h"

namespace crane {

struct DeltaPlan {
    std::vector<SnapshotFileInput> inputs;  // what build_snapshot encodes into the delta
    DeltaKeys keys;
    std::size_t changed = 0;  // files that differ from the base (changed, new or removed)
};

// `state` is every file of the data dir as it is now, sorted by path (the
// inputs of a full build); `base` a full image. A file differs from the
// base when its entry there is missing or has another stamp, content hash
// or failed flag. The delta holds the files that differ, plus every file of
// the base that competes with them for a key: the other files defining a
// name one of them defines or defined, and the v1 repos holding an image
// one of them holds or held (so the delta's own resolution of each key is
// the whole data dir's). Nullopt when more than `max_changed` files differ
// (a full build then costs less than the delta's lookups), or when the base
// is generation 0 (none). `state` is left as it was when nullopt, else its
// differing files are moved from.
std::optional<DeltaPlan> plan_delta(const Snapshot& base, std::vector<SnapshotFileInput>& state,
                                    std::size_t max_changed);

}  // namespace crane
