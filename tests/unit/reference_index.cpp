// The reference index's construction and lookups (see reference_index.h).
#include "reference_index.h"

#include <algorithm>

namespace crane {

namespace {

template <typename Repo>
void place(std::vector<std::shared_ptr<const Repo>>& records,
           std::unordered_map<std::string_view, const Repo*>& map, std::vector<const Repo*>& sorted,
           const char* ns, std::vector<std::string>* warnings) {
    std::sort(records.begin(), records.end(),
              [](const auto& a, const auto& b) { return a->source_path < b->source_path; });
    for (const auto& r : records) {
        auto [it, inserted] = map.try_emplace(r->id, r.get());
        if (!inserted) {
            if (warnings) {
                warnings->push_back(std::string(ns) + " repository '" + r->id + "' is defined in both " +
                                    it->second->source_path + " and " + r->source_path + "; using " +
                                    r->source_path);
            }
            it->second = r.get();
        }
    }
    sorted.reserve(map.size());
    for (const auto& [id, repo] : map) sorted.push_back(repo);
    std::sort(sorted.begin(), sorted.end(), [](const Repo* a, const Repo* b) { return a->id < b->id; });
}

}  // namespace

std::shared_ptr<const Index> Index::build(Records records, std::vector<std::string>* warnings) {
    auto index = std::make_shared<Index>();
    index->records_ = std::move(records);
    place(index->records_.v1, index->v1_, index->v1_sorted_, "v1", warnings);
    place(index->records_.v2, index->v2_, index->v2_sorted_, "v2", warnings);
    for (const V1Repo* repo : index->v1_sorted_) {
        for (const auto& image : repo->image_ids) {
            auto& holders = index->images_[image];
            if (holders.empty() || holders.back() != repo) holders.push_back(repo);
        }
    }
    return index;
}

const V1Repo* Index::find_v1(std::string_view id) const {
    auto it = v1_.find(id);
    return it == v1_.end() ? nullptr : it->second;
}

const V2Repo* Index::find_v2(std::string_view name) const {
    auto it = v2_.find(name);
    return it == v2_.end() ? nullptr : it->second;
}

const std::vector<const V1Repo*>* Index::repos_with_image(std::string_view image_id) const {
    auto it = images_.find(image_id);
    return it == images_.end() ? nullptr : &it->second;
}

}  // namespace crane
