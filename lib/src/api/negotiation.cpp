// Manifest negotiation (see negotiation.h).
#include "api/negotiation.h"

#include "crane/reference.h"
#include "crane/strings.h"

#include <algorithm>
#include <cctype>

namespace crane {

namespace {

constexpr std::string_view kOciManifestNotAccepted = "OCI manifest found, but the Accept header does not allow it";
constexpr std::string_view kOciIndexNotAccepted = "OCI index found, but the Accept header does not allow it";

// prefix + "/" + digest, e.g. manifests/2/sha256:...
std::string digest_path(std::string_view prefix, std::string_view digest) {
    std::string path;
    path.reserve(prefix.size() + digest.size());
    path.append(prefix).append(digest);
    return path;
}

ManifestChoice found(std::string path, std::string_view type) {
    ManifestChoice c;
    c.path = std::move(path);
    c.media_type = type;
    return c;
}

ManifestChoice failed(ManifestOutcome outcome, std::string_view message) {
    ManifestChoice c;
    c.outcome = outcome;
    c.message = message;
    return c;
}

// A digest names one manifest whatever the client accepts.
ManifestChoice by_digest(const V2View& repo, std::string_view d) {
    if (repo.in_manifest_list(d)) return found(digest_path("manifests/list/", d), kMediaManifestList);
    if (repo.in_schema2(d)) return found(digest_path("manifests/2/", d), kMediaManifestV2);
    if (repo.in_oci_index(d)) return found(digest_path("manifests/oci-index/", d), kMediaOciIndex);
    if (repo.in_oci_manifest(d)) return found(digest_path("manifests/oci/", d), kMediaOciManifest);
    // the amd64 manifests of lists are published under their digest too
    if (const std::optional<Amd64View> amd = repo.find_amd64_by_digest(d)) {
        if (amd->schema_version == 2) return found(digest_path("manifests/2/", d), kMediaManifestV2);
        return found(digest_path("manifests/1/", d), kMediaJson);
    }
    // the metadata lists no schema 1 digests: Crane's path, for whoever can
    // look at the files
    ManifestChoice c = failed(ManifestOutcome::Unknown, "manifest unknown");
    c.path = digest_path("manifests/1/", d);
    c.media_type = kMediaJson;
    return c;
}

}  // namespace

template <typename F>
bool AcceptSet::any_type(F f) const {
    std::string_view header = header_;
    while (!header.empty()) {
        auto comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        item = trim(item.substr(0, item.find(';')));
        if (!item.empty() && f(item)) return true;
    }
    return false;
}

const std::vector<std::string_view>& AcceptSet::types() const {
    if (!listed_) {
        any_type([this](std::string_view t) {
            types_.push_back(t);
            return false;
        });
        listed_ = true;
    }
    return types_;
}

namespace {

// the types negotiate_manifest asks about: a bit each
constexpr std::string_view kKnownTypes[] = {kMediaManifestList, kMediaManifestV2, kMediaOciIndex, kMediaOciManifest};

int known_index(std::string_view type) {
    for (int i = 0; i < 4; ++i) {
        if (kKnownTypes[i] == type) return i;
    }
    return -1;
}

}  // namespace

AcceptSet::AcceptSet(std::string_view header) : header_(header) {
    any_type([this](std::string_view t) {
        if (const int i = known_index(t); i >= 0) known_ |= 1U << i;
        return false;
    });
}

bool AcceptSet::contains(std::string_view media_type) const {
    if (const int i = known_index(media_type); i >= 0) return (known_ >> i) & 1U;
    return any_type([media_type](std::string_view t) { return t == media_type; });
}

ManifestChoice negotiate_manifest(const V2View& repo, std::string_view ref, const AcceptSet& accept) {
    const bool digest = ref.find(':') != std::string_view::npos;
    if (digest && !is_digest(ref)) {
        return failed(ManifestOutcome::DigestInvalid, "provided digest did not match uploaded content");
    }
    // repos without negotiation data keep Crane's paths, tag or digest
    if (!repo.has_schema2_fields()) return found(digest_path("manifests/", ref), kMediaJson);
    if (repo.no_manifest_data()) return found(digest_path("manifests/1/", ref), kMediaJson);
    if (digest) return by_digest(repo, ref);

    // a tag: Crane's order, the OCI types ranking with their Docker peers.
    // A client that accepts an OCI type is no schema 1 client, and reads the
    // Docker list and schema 2 formats (the same structures): it gets those
    // when the tag has no OCI manifest, rather than a schema 1 one.
    const bool oci_index = accept.contains(kMediaOciIndex);
    const bool oci_manifest = accept.contains(kMediaOciManifest);
    if (accept.contains(kMediaManifestList) && repo.in_manifest_list(ref)) {
        return found(digest_path("manifests/list/", ref), kMediaManifestList);
    }
    if (oci_index && repo.in_oci_index(ref)) return found(digest_path("manifests/oci-index/", ref), kMediaOciIndex);
    if (const std::optional<Amd64View> amd = repo.find_amd64(ref)) {
        const std::string_view amd_digest = amd->digest.view();
        if (accept.contains(kMediaManifestV2)) {
            const std::string other = amd->schema_version == 1 || amd->schema_version == 2
                                          ? std::string()
                                          : "manifests/" + std::to_string(amd->schema_version) + "/";
            const std::string_view prefix = amd->schema_version == 2   ? "manifests/2/"
                                            : amd->schema_version == 1 ? "manifests/1/"
                                                                       : std::string_view(other);
            return found(digest_path(prefix, amd_digest),
                         amd->schema_version == 2 ? kMediaManifestV2 : kMediaJson);
        }
        if (oci_index && repo.in_manifest_list(ref)) return found(digest_path("manifests/list/", ref), kMediaManifestList);
        if (amd->schema_version == 2 && oci_manifest) {
            return found(digest_path("manifests/2/", amd_digest), kMediaManifestV2);
        }
        if (amd->schema_version == 1) return found(digest_path("manifests/1/", amd_digest), kMediaJson);
        return found(digest_path("manifests/1/", ref), kMediaJson);
    }
    if (accept.contains(kMediaManifestV2) && repo.in_schema2(ref)) {
        return found(digest_path("manifests/2/", ref), kMediaManifestV2);
    }
    if (oci_manifest && repo.in_oci_manifest(ref)) return found(digest_path("manifests/oci/", ref), kMediaOciManifest);
    if (oci_index && repo.in_manifest_list(ref)) return found(digest_path("manifests/list/", ref), kMediaManifestList);
    if (oci_manifest && repo.in_schema2(ref)) return found(digest_path("manifests/2/", ref), kMediaManifestV2);
    // an OCI-only tag has no schema 1 manifest to fall back to
    if (!repo.in_schema2(ref) && !repo.in_manifest_list(ref)) {
        if (repo.in_oci_index(ref)) return failed(ManifestOutcome::OciNotAccepted, kOciIndexNotAccepted);
        if (repo.in_oci_manifest(ref)) return failed(ManifestOutcome::OciNotAccepted, kOciManifestNotAccepted);
    }
    return found(digest_path("manifests/1/", ref), kMediaJson);
}

}  // namespace crane
