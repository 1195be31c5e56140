// The reference index of the snapshot tests: the in-memory index the
// module served from before the snapshot (maps of parsed records), kept as
// the oracle the snapshot's lookups are compared with.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crane/metadata.h"

namespace crane {

class Index {
public:
    const V1Repo* find_v1(std::string_view id) const;
    const V2Repo* find_v2(std::string_view name) const;
    // v1 repos holding an image, sorted by repo id (a deterministic "first")
    const std::vector<const V1Repo*>* repos_with_image(std::string_view image_id) const;
    // all repos sorted by id (catalog, admin pages)
    const std::vector<const V1Repo*>& v1_sorted() const { return v1_sorted_; }
    const std::vector<const V2Repo*>& v2_sorted() const { return v2_sorted_; }

    // Records are kept alive by the index; a later index may share them.
    struct Records {
        std::vector<std::shared_ptr<const V1Repo>> v1;
        std::vector<std::shared_ptr<const V2Repo>> v2;
    };
    // Builds an index. When two records share an id within a namespace the
    // one whose source path sorts last wins; each loser adds a warning.
    static std::shared_ptr<const Index> build(Records records, std::vector<std::string>* warnings);

private:
    Records records_;
    std::unordered_map<std::string_view, const V1Repo*> v1_;
    std::unordered_map<std::string_view, const V2Repo*> v2_;
    std::unordered_map<std::string_view, std::vector<const V1Repo*>> images_;
    std::vector<const V1Repo*> v1_sorted_;
    std::vector<const V2Repo*> v2_sorted_;
};

}  // namespace crane
