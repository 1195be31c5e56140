// plan_delta (delta_plan.h).
#include "index/delta_plan.h"

#include <algorithm>
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

DuplicateNames find_duplicate_names(const Snapshot& base) {
    // a file whose record is not its name's winner is a loser: its name
    // goes in with the loser and the winner's file (one probe of the name
    // table per file, nothing kept for the names defined once)
    DuplicateNames out;
    for (std::size_t b = 0; b < base.file_count(); ++b) {
        const SnapshotFileInfo f = base.file(b);
        const RepoView* mine = f.v1 ? static_cast<const RepoView*>(&*f.v1) : f.v2 ? &*f.v2 : nullptr;
        if (!mine) continue;
        std::optional<RepoView> winner;
        if (f.v1) {
            if (auto w = base.find_v1(f.v1->id())) winner = *w;
        } else if (auto w = base.find_v2(f.v2->id())) {
            winner = *w;
        }
        if (winner && winner->offset() == mine->offset()) continue;
        auto& files = (f.v1 ? out.v1 : out.v2)[mine->id()];
        if (files.empty() && winner) {
            if (auto w = base.find_file(winner->source_path())) files.push_back(*w);
        }
        files.push_back(b);
    }
    for (auto* names : {&out.v1, &out.v2}) {
        for (auto& [name, files] : *names) {
            std::sort(files.begin(), files.end());
            files.erase(std::unique(files.begin(), files.end()), files.end());
        }
    }
    return out;
}

namespace {

// What differs from the base: the files now (moved in) and the base's
// entries they replace or that are gone.
struct Difference {
    std::vector<SnapshotFileInput> now;  // differing files as they are now
    std::vector<std::size_t> was;        // base positions of the differing and removed files
    std::vector<std::string> removed;    // the base's paths that are gone
};

// The base's file that holds record `r` (found by its source path, checked
// by the record's offset); nullopt when the table disagrees.
std::optional<std::size_t> file_of(const Snapshot& base, const RepoView& r) {
    auto at = base.find_file(r.source_path());
    if (!at) return std::nullopt;
    const SnapshotFileInfo f = base.file(*at);
    const RepoView* held = f.v1 ? static_cast<const RepoView*>(&*f.v1) : f.v2 ? &*f.v2 : nullptr;
    if (!held || held->offset() != r.offset()) return std::nullopt;
    return at;
}

std::optional<DeltaPlan> finish(const Snapshot& base, const DuplicateNames& dups, Difference diff) {
    DeltaPlan plan;
    plan.changed = diff.now.size() + diff.removed.size();
    // base files already in (or out of) the delta
    std::unordered_set<std::size_t> taken(diff.was.begin(), diff.was.end());
    auto take = [&taken](std::size_t b) { return taken.insert(b).second; };

    // the keys: what the differing files define now and defined before
    std::unordered_set<std::string_view> v1_names, v2_names, images;
    auto note = [&](const Keys& key) {
        if (key.v1) v1_names.insert(key.id);
        if (key.v2) v2_names.insert(key.id);
    };
    for (const SnapshotFileInput& in : diff.now) {
        note(keys_of(in.parsed, in.carried_v1, in.carried_v2));
        for_each_image(in.parsed, in.carried_v1, [&](std::string_view id) { images.insert(id); });
    }
    std::vector<SnapshotFileInfo> old;  // kept: the views' texts are the base's
    for (std::size_t b : diff.was) old.push_back(base.file(b));
    for (const SnapshotFileInfo& f : old) {
        note(keys_of(ParsedRepo{}, f.v1, f.v2));
        for_each_image(ParsedRepo{}, f.v1, [&](std::string_view id) { images.insert(id); });
    }

    // the base's other files competing for a name: the winner, and the
    // losers of a duplicate name; a v1 one brings its images
    std::vector<std::size_t> competing;
    auto compete = [&](std::size_t b) {
        if (!take(b)) return;
        competing.push_back(b);
        const SnapshotFileInfo f = base.file(b);
        for_each_image(ParsedRepo{}, f.v1, [&](std::string_view id) { images.insert(id); });
    };
    bool consistent = true;
    auto competitors = [&](std::string_view name, bool v1) {
        const auto& dup = v1 ? dups.v1 : dups.v2;
        if (auto it = dup.find(name); it != dup.end()) {
            for (std::size_t b : it->second) compete(b);
        }
        std::optional<std::size_t> b;  // the winner, always (taken once)
        if (v1) {
            if (auto r = base.find_v1(name)) b = file_of(base, *r), consistent = consistent && b;
        } else if (auto r = base.find_v2(name)) {
            b = file_of(base, *r), consistent = consistent && b;
        }
        if (b) compete(*b);
    };
    for (std::string_view name : v1_names) competitors(name, true);
    for (std::string_view name : v2_names) competitors(name, false);
    // the repos holding an image of the keys
    for (std::string_view image : images) {
        for (const V1View r : base.repos_with_image(image)) {
            auto b = file_of(base, r);
            if (!b) return std::nullopt;  // a record without its file: build it all
            if (take(*b)) competing.push_back(*b);
        }
    }
    if (!consistent) return std::nullopt;

    plan.inputs = std::move(diff.now);
    plan.inputs.reserve(plan.inputs.size() + competing.size());
    for (std::size_t b : competing) plan.inputs.push_back(carried(base.file(b)));
    for (auto name : v1_names) plan.keys.v1_names.emplace_back(name);
    for (auto name : v2_names) plan.keys.v2_names.emplace_back(name);
    for (auto image : images) plan.keys.images.emplace_back(image);
    plan.keys.removed_paths = std::move(diff.removed);
    return plan;
}

}  // namespace

std::optional<DeltaPlan> plan_delta(const Snapshot& base, const DuplicateNames& dups,
                                    std::vector<SnapshotFileInput>& state, std::size_t max_changed) {
    if (base.generation() == 0 || base.base_image()) return std::nullopt;
    // both tables are sorted by path
    const std::size_t n = base.file_count();
    std::vector<std::size_t> differing;  // indexes into state
    Difference diff;
    std::size_t i = 0, k = 0;
    while (i < n || k < state.size()) {
        if (differing.size() + diff.removed.size() > max_changed) return std::nullopt;
        const bool have_base = i < n;
        const SnapshotFileInfo f = have_base ? base.file(i) : SnapshotFileInfo();
        if (k < state.size() && (!have_base || state[k].path < f.path)) {
            differing.push_back(k++);  // new
            continue;
        }
        if (k >= state.size() || f.path < state[k].path) {
            diff.removed.emplace_back(f.path);
            diff.was.push_back(i++);
            continue;
        }
        if (!same_file(f, state[k])) {
            differing.push_back(k);
            diff.was.push_back(i);
        }
        ++i;
        ++k;
    }
    if (differing.size() + diff.removed.size() > max_changed) return std::nullopt;
    for (std::size_t j : differing) diff.now.push_back(std::move(state[j]));
    return finish(base, dups, std::move(diff));
}

std::optional<DeltaPlan> plan_delta_over(const Snapshot& base, const DuplicateNames& dups, const Snapshot& latest,
                                         std::vector<SnapshotFileInput>& now, const std::vector<std::string>& gone,
                                         std::size_t max_changed) {
    if (base.generation() == 0 || base.base_image()) return std::nullopt;
    if (&latest != &base && latest.base_image().get() != &base) return std::nullopt;
    // every path whose state may differ from the base: the changed ones,
    // and those the delta in place holds or removes
    std::vector<std::string_view> notified;
    notified.reserve(now.size() + gone.size());
    for (const auto& in : now) notified.push_back(in.path);
    for (const auto& p : gone) notified.push_back(p);
    std::sort(notified.begin(), notified.end());
    auto is_notified = [&notified](std::string_view p) {
        return std::binary_search(notified.begin(), notified.end(), p);
    };
    Difference diff;
    auto against_base = [&](SnapshotFileInput in) {
        auto b = base.find_file(in.path);
        if (b && same_file(base.file(*b), in)) return;  // as the base has it
        if (b) diff.was.push_back(*b);
        diff.now.push_back(std::move(in));
    };
    auto removed = [&](std::string_view path) {
        if (auto b = base.find_file(path)) {
            diff.was.push_back(*b);
            diff.removed.emplace_back(path);
        }
    };
    for (auto& in : now) against_base(std::move(in));
    for (const auto& p : gone) removed(p);
    if (&latest != &base) {
        for (std::size_t i = 0; i < latest.file_count(); ++i) {
            const SnapshotFileInfo f = latest.file(i);
            if (!is_notified(f.path)) against_base(carried(f));
        }
        for (std::string_view p : latest.removed_paths()) {
            if (!is_notified(p)) removed(p);
        }
    }
    if (diff.now.size() + diff.removed.size() > max_changed) return std::nullopt;
    // a path the changes name twice (both now and gone) cannot be: the
    // caller gives each once
    return finish(base, dups, std::move(diff));
}

}  // namespace crane
