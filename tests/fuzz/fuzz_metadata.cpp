// Fuzz target `metadata`: a repository metadata file through parse_metadata.
// Checks that exactly one of v1 / v2 / error comes out, that the records keep
// their sorted-lookup invariants, that the precomputed Python-style JSON
// re-parses as pure-ASCII JSON (Python's Infinity allowed), and that an Index
// can be built from them.
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crane/index.h"
#include "crane/metadata.h"
#include "crane/url.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_metadata invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

void check_json(const std::string& text, const char* what, bool want_array) {
    for (char c : text) {
        if (static_cast<unsigned char>(c) >= 0x80) fail(what, "non-ASCII byte in rendered JSON");
    }
    // Infinity / -Infinity are allowed: a number that RapidJSON reads as
    // +-inf (0.5e309 passes its range check, 1e309 does not) is rendered the
    // way Python's json.dumps rendered it for Crane.
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
              rapidjson::kParseNanAndInfFlag>(text.data(), text.size());
    if (doc.HasParseError()) fail(what, text);
    if (want_array ? !doc.IsArray() : !doc.IsObject()) fail(what, text);
}

void check_common(const crane::RepoCommon& c, const std::string& source) {
    if (c.id.empty()) fail("empty id", source);
    if (c.repository.empty()) fail("empty repository", c.id);
    if (c.source_path != source) fail("source path changed", c.source_path);
    if (c.url_path.find_first_of("?#") != std::string::npos || c.url.find(c.url_path) == std::string::npos) {
        fail("url_path is not a query-free piece of url", c.url);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string source = "fuzz/repo.json";
    crane::MetadataResult r = crane::parse_metadata(text, source);
    if (!r.ok()) {
        if (r.error.empty()) fail("no record and no error", text);
        return 0;
    }
    if (r.v1 && r.v2) fail("both v1 and v2", text);
    if (!r.error.empty()) fail("a record and an error", r.error);

    crane::Index::Records records;
    if (r.v1) {
        const crane::V1Repo& v1 = *r.v1;
        check_common(v1, source);
        if (v1.version != 1) fail("v1 version", v1.id);
        if (!std::is_sorted(v1.tags.begin(), v1.tags.end())) fail("tags not sorted", v1.id);
        for (std::size_t i = 0; i < v1.tags.size(); ++i) {
            if (i > 0 && v1.tags[i - 1].first == v1.tags[i].first) fail("repeated tag", v1.tags[i].first);
            const std::string* image = v1.find_tag(v1.tags[i].first);
            if (!image || *image != v1.tags[i].second) fail("find_tag", v1.tags[i].first);
        }
        check_json(v1.images_json, "images_json", true);
        check_json(v1.tags_json, "tags_json", false);
        records.v1.push_back(r.v1);
    } else {
        const crane::V2Repo& v2 = *r.v2;
        check_common(v2, source);
        if (v2.version < 2 || v2.version > 4) fail("v2 version", v2.id);
        if (v2.has_schema2_fields != (v2.version >= 3)) fail("schema2 fields vs version", v2.id);
        for (const auto& ref : v2.schema2_data) {
            if (!v2.in_schema2(ref)) fail("in_schema2", ref);
        }
        for (const auto& ref : v2.manifest_list_data) {
            if (!v2.in_manifest_list(ref)) fail("in_manifest_list", ref);
        }
        for (const auto& tag : v2.manifest_list_amd64_tags) {
            if (tag.schema_version != 1 && tag.schema_version != 2) fail("schema version", tag.tag);
            if (v2.find_amd64(tag.tag) != &tag) fail("find_amd64", tag.tag);
        }
        records.v2.push_back(r.v2);
    }

    std::vector<std::string> warnings;
    auto index = crane::Index::build(std::move(records), &warnings);
    if (!index) fail("no index", text);
    if (r.v1) {
        if (index->find_v1(r.v1->id) != r.v1.get()) fail("index find_v1", r.v1->id);
        for (const auto& image : r.v1->image_ids) {
            const auto* holders = index->repos_with_image(image);
            if (!holders || std::find(holders->begin(), holders->end(), r.v1.get()) == holders->end()) {
                fail("repos_with_image", image);
            }
        }
    } else if (index->find_v2(r.v2->id) != r.v2.get()) {
        fail("index find_v2", r.v2->id);
    }
    return 0;
}
