// Manifest negotiation: which stored manifest a client gets for
// manifests/REF, from its Accept headers and the repo's metadata.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crane/media_types.h"
#include "crane/snapshot.h"

namespace crane {

// The media types of an Accept header value: comma-split, parameters after
// ';' dropped, trimmed, empty items skipped. Holds views into the header,
// which must outlive it.
class AcceptSet {
public:
    // `header` must outlive the set: nothing is copied, and contains()
    // scans it in place (no allocation per request)
    explicit AcceptSet(std::string_view header);
    bool contains(std::string_view media_type) const;
    const std::vector<std::string_view>& types() const;  // built on first use

private:
    // calls f(type) for each media range's type, in order; stops when f is true
    template <typename F>
    bool any_type(F f) const;
    std::string_view header_;
    unsigned known_ = 0;  // which of the manifest types negotiation asks about are listed (one scan)
    mutable std::vector<std::string_view> types_;
    mutable bool listed_ = false;
};

enum class ManifestOutcome {
    Found,          // path and media_type name the manifest
    Unknown,        // no such manifest in the metadata (404 MANIFEST_UNKNOWN); path
                    // names where a schema 1 manifest of that digest would be
    OciNotAccepted,  // the tag exists only as OCI and Accept rules it out (404)
    DigestInvalid,  // REF holds ':' but is no well-formed digest (400)
};

struct ManifestChoice {
    std::string path;             // relative to the repo url, e.g. "manifests/2/latest"
    std::string_view media_type;  // for serving the file
    ManifestOutcome outcome = ManifestOutcome::Found;
    std::string_view message;     // the error message when not Found
};

ManifestChoice negotiate_manifest(const V2View& repo, std::string_view ref, const AcceptSet& accept);

}  // namespace crane
