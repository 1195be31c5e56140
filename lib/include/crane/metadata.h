// One repository's metadata file (versions 1-4, as Pulp publishes them),
// parsed into the immutable record the index serves from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crane/result.h"

namespace crane {

// Fields common to v1 and v2 repositories.
struct RepoCommon {
    std::string id;          // repo-registry-id: the name clients use
    std::string repository;  // Pulp's repo name (serve-content paths); defaults to id
    std::string url;         // base URL of the published files
    std::string url_path;    // path part of url
    bool is_protected = false;
    int version = 0;
    std::string source_path;  // the metadata file it came from
};

struct V1Repo : RepoCommon {
    std::vector<std::string> image_ids;                      // file order
    std::vector<std::pair<std::string, std::string>> tags;   // sorted by tag
    std::string images_json;  // the "images" list as Crane sent it
    std::string tags_json;    // the "tags" object as Crane sent it
    const std::string* find_tag(std::string_view tag) const;
};

struct Amd64Tag {
    std::string tag;
    std::string digest;
    int schema_version;  // 1 or 2
};

// The OCI descriptor of a manifest whose `subject` is some digest (an
// artifact: a signature, an SBOM), as the referrers API lists it.
struct Referrer {
    std::string media_type;
    std::string digest;
    std::int64_t size = 0;
    std::string artifact_type;  // empty when absent
    std::vector<std::pair<std::string, std::string>> annotations;  // sorted by key
};

struct ReferrerList {
    std::string subject;  // the digest the descriptors refer to
    std::vector<Referrer> descriptors;  // file order
};

struct V2Repo : RepoCommon {
    // version 2 repos have no schema2 data at all (manifests/REF stays as is)
    bool has_schema2_fields = false;
    std::vector<std::string> schema2_data;        // sorted
    std::vector<std::string> manifest_list_data;  // sorted
    std::vector<Amd64Tag> manifest_list_amd64_tags;  // sorted by tag
    // version 4 extensions (optional keys; Crane ignores them)
    std::vector<std::string> oci_index_data;     // sorted: refs with an OCI image index
    std::vector<std::string> oci_manifest_data;  // sorted: refs with an OCI image manifest
    bool has_tags = false;          // the file lists its tags: tags/list is answered from them
    std::vector<std::string> tags;  // sorted, unique
    std::vector<ReferrerList> referrers;  // sorted by subject
    bool in_schema2(std::string_view ref) const;
    bool in_oci_index(std::string_view ref) const;
    bool in_oci_manifest(std::string_view ref) const;
    // the descriptors whose subject is `digest`; nullptr when none
    const std::vector<Referrer>* find_referrers(std::string_view digest) const;
    bool in_manifest_list(std::string_view ref) const;
    const Amd64Tag* find_amd64(std::string_view ref) const;
};

// The record of one file: exactly one of v1 / v2 is set.
struct ParsedRepo {
    std::shared_ptr<const V1Repo> v1;
    std::shared_ptr<const V2Repo> v2;
};

// Why a file was refused, and what the index store needs to know beyond the
// message to decide whether the repo's last good content may still be served.
struct MetadataError {
    std::string message;
    // A truthy top-level "protected" was read before the error (the new
    // content meant the repo to be protected).
    bool marks_protected = false;
    // The bytes could not be read (the source reported an error).
    bool read_failed = false;
};

using MetadataResult = Result<ParsedRepo, MetadataError>;

// Nesting deeper than this (the top-level object is level 0) refuses a file.
constexpr int kMetadataMaxDepth = 64;

MetadataResult parse_metadata(std::string_view json_text, const std::string& source_path);

// The same, pulling the text in chunks: read(buf, n) fills buf with up to n
// bytes and returns the count, 0 at the end, or -1 on an error. Reading
// stops early when the file is refused before its end.
using MetadataReadFn = std::function<long(char* buf, std::size_t n)>;
MetadataResult parse_metadata_stream(const MetadataReadFn& read, const std::string& source_path);

// The version 4 metadata file of `repo` (crane-publish writes it): sorted
// keys, Crane's separators, a final newline. parse_metadata reads it back to
// the same record (source_path, version and the derived url_path aside).
// Lists are written in the record's order, which is already sorted.
std::string metadata_v4_json(const V2Repo& repo);

}  // namespace crane
