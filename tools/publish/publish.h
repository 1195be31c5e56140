// crane-publish's library half: reads Docker schema2 images, manifest lists,
// OCI image manifests and OCI image indexes from skopeo's dir: layout or an
// OCI image layout, verifies every digest, and publishes them unchanged (same
// bytes, same digests) as Pulp's v2 web layout plus a version 4 metadata file
// that mod_crane serves. Used by tools/crane-publish only, never by the
// module; its errors are exceptions (publish::Error).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "crane/media_types.h"
#include "crane/metadata.h"
#include "crane/reference.h"  // is_sha256_digest, is_tag

namespace crane::publish {

inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";

// Bad input or a failed write; what() is a complete sentence for stderr.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// ---- pure helpers ----

// "sha256:" + 64 lowercase hex of bytes.
std::string sha256_digest(std::string_view bytes);
// Docker's repository name grammar: lowercase components
// [a-z0-9]+([._]|__|-+)[a-z0-9]+)* joined by '/'.
bool is_valid_repo_id(std::string_view id);
// A relative directory path for the web dir: components of [A-Za-z0-9._-]
// that do not start with '.', joined by '/'.
bool is_valid_repository_dir(std::string_view dir);
// "ns/app" -> "ns-app" (the default `repository` and the metadata file stem).
std::string slashes_to_dashes(std::string_view s);

// A blob a manifest refers to.
struct BlobRef {
    std::string digest;
    std::int64_t size = 0;
    std::string media_type;
    bool foreign = false;  // a foreign layer (fetched from its urls, never published)
};

// An image manifest: Docker schema 2 or OCI.
struct ImageManifest {
    std::string media_type;  // kMediaManifestV2 or kMediaOciManifest
    std::string digest;      // of bytes
    std::string bytes;       // as found, published unchanged
    BlobRef config;
    std::vector<BlobRef> layers;
    // OCI only: the manifest this one is about (a signature's, an SBOM's
    // image), its artifactType (else config.mediaType) and annotations
    std::string subject;
    std::string artifact_type;
    std::vector<std::pair<std::string, std::string>> annotations;  // sorted by key
    bool is_oci() const { return media_type == kMediaOciManifest; }
};

struct ListInstance {
    std::string digest;
    std::int64_t size = 0;
    std::string media_type;
    std::string architecture;
    std::string os;
    std::string variant;
};

// A Docker manifest list or an OCI image index.
struct ManifestList {
    std::string media_type;  // kMediaManifestList or kMediaOciIndex
    std::string digest;
    std::string bytes;
    std::vector<ListInstance> instances;
    bool is_oci() const { return media_type == kMediaOciIndex; }
    // The instance for clients that cannot read lists: linux/amd64 (else
    // the first amd64 one), or nullptr.
    const ListInstance* amd64() const;
};

// Parse and check a manifest; `what` names it in error messages.
// parse_image_manifest takes Docker schema 2 and OCI image manifests and
// rejects schema 1 (with a hint to copy with `--format v2s2`), lists and
// unknown media types. parse_manifest_list takes a Docker manifest list
// (whose entries must be schema 2) or an OCI image index (whose entries must
// be OCI image manifests; nested indexes are refused).
ImageManifest parse_image_manifest(std::string_view bytes, const std::string& what);
ManifestList parse_manifest_list(std::string_view bytes, const std::string& what);

// ---- one input image ----

struct DirImage {
    std::string dir;
    std::optional<ManifestList> list;
    // the image manifest, or every list instance in list order
    std::vector<ImageManifest> manifests;
    // OCI image layouts: every other manifest of the layout's index.json
    // that has a `subject`; published as referrers when the subject is
    std::vector<ImageManifest> artifacts;
    // blob digest -> file (every config and non-foreign layer, checked to
    // exist; for artifacts, those that exist)
    std::map<std::string, std::string> blob_files;
};

// skopeo's dir: layout. Reads DIR/manifest.json (and with a list,
// DIR/<hex>.manifest.json per instance, whose sha256 and size must match the
// list). Every referenced blob must be a file DIR/<hex>; its content is
// verified later, while copying.
DirImage read_dir_image(const std::string& dir);

// An OCI image layout (oci-layout, index.json, blobs/sha256/<hex>): the
// manifest or index of index.json whose org.opencontainers.image.ref.name
// annotation is `ref`; with an empty ref, the layout's only image (entries
// with a subject do not count). Every manifest read is checked against its
// descriptor's digest and size.
DirImage read_oci_layout(const std::string& dir, const std::string& ref);

// A source as given on the command line: "dir:PATH", "oci:PATH[:REF]", or a
// plain PATH (an OCI image layout when PATH/oci-layout exists, else a dir:
// layout).
DirImage read_image(const std::string& source);

// ---- what gets published ----

struct Options {
    std::string repo_id;     // repo-registry-id
    std::string repository;  // directory under web_dir; empty = slashes_to_dashes(repo_id)
    std::string base_url;    // url = base_url + "/" + repository + "/"
    bool is_protected = false;
    std::vector<std::pair<std::string, std::string>> tags;  // (tag, source), in command-line order
    std::string web_dir;
    std::string metadata_dir;
};

// Checks names and fills defaults; throws Error for bad options.
Options normalized(Options options);

// One entry of the referrers list of a subject (an OCI descriptor).
using crane::Referrer;

// Everything one publication consists of, computed from the read images.
struct Plan {
    std::string repo_id;
    std::string repository;
    std::string url;
    bool is_protected = false;
    // path relative to the repository dir -> exact bytes (manifests, tags/list)
    std::map<std::string, std::string> files;
    // blob digest -> (source file, expected size)
    std::map<std::string, std::pair<std::string, std::int64_t>> blobs;
    std::vector<std::string> tags;                  // sorted
    std::vector<std::string> schema2_data;          // sorted, unique
    std::vector<std::string> manifest_list_data;    // sorted, unique
    std::map<std::string, std::string> amd64_tags;  // list tag -> amd64 schema2 digest
    std::vector<std::string> oci_manifest_data;     // sorted, unique
    std::vector<std::string> oci_index_data;        // sorted, unique
    // subject digest -> descriptors of the published manifests whose
    // subject it is, sorted by digest
    std::map<std::string, std::vector<Referrer>> referrers;
};

Plan make_plan(const Options& normalized_options,
               const std::vector<std::pair<std::string, DirImage>>& tagged_images);

// The referrers tag schema (OCI distribution spec 1.1), for clients that
// do not ask the referrers API: the tag "sha256-<hex>" of a subject
// "sha256:<hex>", and the OCI image index it names, listing the
// descriptors exactly as mod_crane's unfiltered referrers answer does.
// make_plan publishes one per subject that has referrers.
std::string referrers_tag(const std::string& subject);
std::string referrers_index_json(const std::vector<Referrer>& descriptors);

// The version 4 metadata file (Crane's json.dumps style, sorted keys).
std::string metadata_json(const Plan& plan);
// tags/list: {"name": ID, "tags": [...]}.
std::string tags_list_json(const std::string& repo_id, const std::vector<std::string>& tags);
// The metadata file name in metadata_dir: slashes_to_dashes(repo_id) + ".json".
std::string metadata_file_name(const std::string& repo_id);

// The static JSON error documents a static server answers 404 with in
// redirect mode (file name in WEBDIR/.errors/ -> body): the registry's error
// body for a missing manifest, blob, or anything else.
std::vector<std::pair<std::string, std::string>> error_documents();
inline constexpr std::string_view kErrorDir = ".errors";  // a name no repository dir can have

// Copies src to dst (created, must not exist) while hashing it; throws
// Error, leaving no dst, unless the bytes hash to `digest` and number `size`
// (size < 0: any).
void copy_verified(const std::string& src, const std::string& dst, const std::string& digest,
                   std::int64_t size);

struct Result {
    std::string repo_dir;       // web_dir/repository
    std::string metadata_file;  // metadata_dir/NAME.json
    std::size_t tags = 0, manifests = 0, blobs = 0;
    std::size_t referrers = 0;  // artifacts listed under a subject
    std::int64_t blob_bytes = 0;
    bool replaced = false;  // an earlier publication was replaced
};

// Reads and verifies every input, builds the repository tree in a temp dir
// beside web_dir/repository, swaps it in (renameat2 RENAME_EXCHANGE when
// replacing), removes the old tree, refreshes WEBDIR/.errors/, then writes
// the metadata file (temp file + rename). On error nothing is left behind and an earlier
// publication is untouched.
Result publish(const Options& options);

}  // namespace crane::publish
