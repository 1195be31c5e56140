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
ManifestChoice by_digest(const V2View& repo, const std::string& d) {
    if (repo.in_manifest_list(d)) return found("manifests/list/" + d, kMediaManifestList);
    if (repo.in_schema2(d)) return found("manifests/2/" + d, kMediaManifestV2);
    if (repo.in_oci_index(d)) return found("manifests/oci-index/" + d, kMediaOciIndex);
    if (repo.in_oci_manifest(d)) return found("manifests/oci/" + d, kMediaOciManifest);
    // the amd64 manifests of lists are published under their digest too
    if (const std::optional<Amd64View> amd = repo.find_amd64_by_digest(d)) {
        if (amd->schema_version == 2) return found("manifests/2/" + d, kMediaManifestV2);
        return found("manifests/1/" + d, kMediaJson);
    }
    // the metadata lists no schema 1 digests: Crane's path, for whoever can
    // look at the files
    ManifestChoice c = failed(ManifestOutcome::Unknown, "manifest unknown");
    c.path = "manifests/1/" + d;
    c.media_type = kMediaJson;
    return c;
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

ManifestChoice negotiate_manifest(const V2View& repo, std::string_view ref, const AcceptSet& accept) {
    const bool digest = ref.find(':') != std::string_view::npos;
    if (digest && !is_digest(ref)) {
        return failed(ManifestOutcome::DigestInvalid, "provided digest did not match uploaded content");
    }
    const std::string r(ref);
    // repos without negotiation data keep Crane's paths, tag or digest
    if (!repo.has_schema2_fields()) return found("manifests/" + r, kMediaJson);
    if (repo.no_manifest_data()) return found("manifests/1/" + r, kMediaJson);
    if (digest) return by_digest(repo, r);

    // a tag: Crane's order, the OCI types ranking with their Docker peers.
    // A client that accepts an OCI type is no schema 1 client, and reads the
    // Docker list and schema 2 formats (the same structures): it gets those
    // when the tag has no OCI manifest, rather than a schema 1 one.
    const bool oci_index = accept.contains(kMediaOciIndex);
    const bool oci_manifest = accept.contains(kMediaOciManifest);
    if (accept.contains(kMediaManifestList) && repo.in_manifest_list(ref)) {
        return found("manifests/list/" + r, kMediaManifestList);
    }
    if (oci_index && repo.in_oci_index(ref)) return found("manifests/oci-index/" + r, kMediaOciIndex);
    if (const std::optional<Amd64View> amd = repo.find_amd64(ref)) {
        const std::string_view amd_digest = amd->digest.view();
        if (accept.contains(kMediaManifestV2)) {
            return found(digest_path("manifests/" + std::to_string(amd->schema_version) + "/", amd_digest),
                         amd->schema_version == 2 ? kMediaManifestV2 : kMediaJson);
        }
        if (oci_index && repo.in_manifest_list(ref)) return found("manifests/list/" + r, kMediaManifestList);
        if (amd->schema_version == 2 && oci_manifest) {
            return found(digest_path("manifests/2/", amd_digest), kMediaManifestV2);
        }
        if (amd->schema_version == 1) return found(digest_path("manifests/1/", amd_digest), kMediaJson);
        return found("manifests/1/" + r, kMediaJson);
    }
    if (accept.contains(kMediaManifestV2) && repo.in_schema2(ref)) {
        return found("manifests/2/" + r, kMediaManifestV2);
    }
    if (oci_manifest && repo.in_oci_manifest(ref)) return found("manifests/oci/" + r, kMediaOciManifest);
    if (oci_index && repo.in_manifest_list(ref)) return found("manifests/list/" + r, kMediaManifestList);
    if (oci_manifest && repo.in_schema2(ref)) return found("manifests/2/" + r, kMediaManifestV2);
    // an OCI-only tag has no schema 1 manifest to fall back to
    if (!repo.in_schema2(ref) && !repo.in_manifest_list(ref)) {
        if (repo.in_oci_index(ref)) return failed(ManifestOutcome::OciNotAccepted, kOciIndexNotAccepted);
        if (repo.in_oci_manifest(ref)) return failed(ManifestOutcome::OciNotAccepted, kOciManifestNotAccepted);
    }
    return found("manifests/1/" + r, kMediaJson);
}

}  // namespace crane
