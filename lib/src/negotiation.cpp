// Manifest negotiation (see negotiation.h).
#include "crane/negotiation.h"

#include <algorithm>
#include <cctype>

namespace crane {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

}  // namespace

AcceptSet::AcceptSet(std::string_view header) {
    while (!header.empty()) {
        auto comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        item = trim(item.substr(0, item.find(';')));
        if (!item.empty()) types_.push_back(item);
    }
}

bool AcceptSet::contains(std::string_view media_type) const {
    return std::find(types_.begin(), types_.end(), media_type) != types_.end();
}

ManifestChoice negotiate_manifest(const V2Repo& repo, std::string_view ref, const AcceptSet& accept) {
    const std::string r(ref);
    if (!repo.has_schema2_fields) return {"manifests/" + r, kMediaJson};
    if (repo.schema2_data.empty() && repo.manifest_list_data.empty()) {
        return {"manifests/1/" + r, kMediaJson};
    }
    if (accept.contains(kMediaManifestList) && repo.in_manifest_list(ref)) {
        return {"manifests/list/" + r, kMediaManifestList};
    }
    if (const Amd64Tag* amd = repo.find_amd64(ref)) {
        if (accept.contains(kMediaManifestV2)) {
            return {"manifests/" + std::to_string(amd->schema_version) + "/" + amd->digest,
                    amd->schema_version == 2 ? kMediaManifestV2 : kMediaJson};
        }
        if (amd->schema_version == 1) return {"manifests/1/" + amd->digest, kMediaJson};
        return {"manifests/1/" + r, kMediaJson};
    }
    if (accept.contains(kMediaManifestV2) && repo.in_schema2(ref)) {
        return {"manifests/2/" + r, kMediaManifestV2};
    }
    return {"manifests/1/" + r, kMediaJson};
}

}  // namespace crane
