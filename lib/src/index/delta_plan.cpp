// plan_delta (delta_plan.h).
#include "index/delta_plan.h"

#include <string>
#include <string_view>
#include <unordered_set>

namespace crane {

namespace {

// The name a file defines and, for a v1 repo, its images; in whichever form
// the file holds its content (parsed now, or a record of a snapshot).
struct Keys {
    bool v1 = false, v2 = false;
    std::string_view id;
};

Keys keys_of(const ParsedRepo& parsed, const std::optional<V1View>& v1, const std::optional<V2View>& v2) {
    if (parsed.v1) return {true, false, parsed.v1->id};
    if (parsed.v2) return {false, true, parsed.v2->id};
    if (v1) return {true, false, v1->id()};
    if (v2) return {false, true, v2->id()};
    return {};
}

template <typename Fn>
void for_each_image(const ParsedRepo& parsed, const std::optional<V1View>& v1, Fn&& fn) {
    if (parsed.v1) {
        for (const auto& id : parsed.v1->image_ids) fn(std::string_view(id));
    } else if (!parsed.v2 && v1) {
        for (std::string_view id : v1->image_ids()) fn(id);
    }
}

SnapshotFileInput carried(const SnapshotFileInfo& f) {
    SnapshotFileInput in;
    in.path = std::string(f.path);
    in.stamp = f.stamp;
    in.content_hash = f.content_hash;
    in.racy = f.racy;
    in.failed = f.failed;
    in.carried_v1 = f.v1;
    in.carried_v2 = f.v2;
    return in;
}

bool same_file(const SnapshotFileInfo& was, const SnapshotFileInput& now) {
    return was.stamp == now.stamp && was.content_hash == now.content_hash && was.failed == now.failed;
}

}  // namespace

std::optional<DeltaPlan> plan_delta(const Snapshot& base, std::vector<SnapshotFileInput>& state,
                                    std::size_t max_changed) {
    if (base.generation() == 0 || base.base_image()) return std::nullopt;
    // 1. the files that differ: both tables are sorted by path
    const std::size_t n = base.file_count();
    std::vector<std::size_t> differing;   // indexes into state
    std::vector<std::size_t> was;         // base entries of differing or removed files
    std::vector<bool> base_taken(n, false);  // in the delta (differing, removed, or competing)
    DeltaPlan plan;
    std::size_t i = 0, k = 0;
    while (i < n || k < state.size()) {
        if (differing.size() + plan.keys.removed_paths.size() > max_changed) return std::nullopt;
        const bool have_base = i < n;
        SnapshotFileInfo f = have_base ? base.file(i) : SnapshotFileInfo();
        if (k < state.size() && (!have_base || state[k].path < f.path)) {
            differing.push_back(k++);  // new
            continue;
        }
        if (k >= state.size() || f.path < state[k].path) {
            plan.keys.removed_paths.emplace_back(f.path);
            was.push_back(i);
            base_taken[i++] = true;
            continue;
        }
        if (!same_file(f, state[k])) {
            differing.push_back(k);
            was.push_back(i);
            base_taken[i] = true;
        }
        ++i;
        ++k;
    }
    if (differing.size() + plan.keys.removed_paths.size() > max_changed) return std::nullopt;
    plan.changed = differing.size() + plan.keys.removed_paths.size();

    // 2. the keys: what the differing files define now and defined before
    std::unordered_set<std::string_view> v1_names, v2_names, images;
    auto note = [&](const Keys& key) {
        if (key.v1) v1_names.insert(key.id);
        if (key.v2) v2_names.insert(key.id);
    };
    for (std::size_t j : differing) {
        const SnapshotFileInput& in = state[j];
        note(keys_of(in.parsed, in.carried_v1, in.carried_v2));
        for_each_image(in.parsed, in.carried_v1, [&](std::string_view id) { images.insert(id); });
    }
    std::vector<SnapshotFileInfo> old;  // kept: the views' texts are the base's
    for (std::size_t b : was) {
        old.push_back(base.file(b));
        note(keys_of(ParsedRepo{}, old.back().v1, old.back().v2));
        for_each_image(ParsedRepo{}, old.back().v1, [&](std::string_view id) { images.insert(id); });
    }

    // 3. the base's other files competing for a name (the losers of a
    // duplicate id as well as its winner); a v1 one brings its images
    std::vector<std::size_t> competing;
    for (std::size_t b = 0; b < n; ++b) {
        if (base_taken[b]) continue;
        const SnapshotFileInfo f = base.file(b);
        const Keys key = keys_of(ParsedRepo{}, f.v1, f.v2);
        if ((key.v1 && v1_names.count(key.id)) || (key.v2 && v2_names.count(key.id))) {
            competing.push_back(b);
            base_taken[b] = true;
            for_each_image(ParsedRepo{}, f.v1, [&](std::string_view id) { images.insert(id); });
        }
    }
    // 4. the repos holding an image of the keys: their files, by the
    // records' source paths (checked against the table)
    for (std::string_view image : images) {
        for (const V1View r : base.repos_with_image(image)) {
            const std::string_view path = r.source_path();
            std::size_t lo = 0, hi = n;
            while (lo < hi) {
                const std::size_t mid = lo + (hi - lo) / 2;
                if (base.file(mid).path < path) lo = mid + 1; else hi = mid;
            }
            if (lo == n) return std::nullopt;  // a record without its file: build it all
            const SnapshotFileInfo f = base.file(lo);
            if (f.path != path || !f.v1 || f.v1->offset() != r.offset()) return std::nullopt;
            if (base_taken[lo]) continue;
            competing.push_back(lo);
            base_taken[lo] = true;
        }
    }

    // 5. the delta's inputs and keys
    plan.inputs.reserve(differing.size() + competing.size());
    for (std::size_t j : differing) plan.inputs.push_back(std::move(state[j]));
    for (std::size_t b : competing) plan.inputs.push_back(carried(base.file(b)));
    for (auto name : v1_names) plan.keys.v1_names.emplace_back(name);
    for (auto name : v2_names) plan.keys.v2_names.emplace_back(name);
    for (auto image : images) plan.keys.images.emplace_back(image);
    return plan;
}

}  // namespace crane
