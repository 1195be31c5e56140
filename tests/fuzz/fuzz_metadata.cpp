// Fuzz target `metadata`: a repository metadata file through parse_metadata.
// Checks that exactly one of v1 / v2 / error comes out, that the records keep
// their sorted-lookup invariants, that the precomputed Python-style JSON is
// pure ASCII and reads back to itself, that every value used in redirects
// passed the checks, and that a snapshot built from them answers the same.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "crane/metadata.h"
#include "crane/snapshot.h"
#include "util/url.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_metadata invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

void check_ascii(const std::string& text, const char* what) {
    for (char c : text) {
        if (static_cast<unsigned char>(c) >= 0x80) fail(what, "non-ASCII byte in rendered JSON");
    }
}

// The rendered images/tags read back as a file give the very same text.
void check_round_trip(const crane::V1Repo& v1) {
    check_ascii(v1.images_json, "images_json");
    check_ascii(v1.tags_json, "tags_json");
    const std::string again = R"({"version": 1, "repo-registry-id": "r", "url": "http://h/", "images": )" +
                              v1.images_json + R"(, "tags": )" + v1.tags_json + "}";
    crane::MetadataResult r = crane::parse_metadata(again, "again.json");
    if (!r || !r->v1) fail("rendered JSON does not read back", r.error().message);
    if (r->v1->images_json != v1.images_json) fail("images_json changes when read back", r->v1->images_json);
    if (r->v1->tags_json != v1.tags_json) fail("tags_json changes when read back", r->v1->tags_json);
}

// Characters a checked tag, digest or image id may hold.
void check_path_safe(const std::string& s, const char* what) {
    if (s.empty() || s[0] == '.' || s[0] == '-') fail(what, s);
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-' || c == ':' || c == '+' || c == '=';
        if (!ok) fail(what, s);
    }
}

void check_common(const crane::RepoCommon& c, const std::string& source) {
    if (c.id.empty()) fail("empty id", source);
    if (c.repository.empty()) fail("empty repository", c.id);
    if (c.source_path != source) fail("source path changed", c.source_path);
    if (c.url_path.find_first_of("?#") != std::string::npos || c.url.find(c.url_path) == std::string::npos) {
        fail("url_path is not a query-free piece of url", c.url);
    }
    for (char ch : c.url) {
        const auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u >= 0x7F || std::string_view("?#\"'<>\\").find(ch) != std::string_view::npos) {
            fail("unsafe character in url", c.url);
        }
    }
    std::string scheme = c.url.substr(0, 8);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch; });
    if (scheme.rfind("http://", 0) != 0 && scheme.rfind("https://", 0) != 0 && c.url[0] != '/') {
        fail("url is neither http(s) nor an absolute path", c.url);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string source = "fuzz/repo.json";
    crane::MetadataResult r = crane::parse_metadata(text, source);
    if (!r.ok()) {
        if (r.error().message.empty()) fail("no record and no error", text);
        return 0;
    }
    if (r->v1 && r->v2) fail("both v1 and v2", text);
    if (!r.error().message.empty()) fail("a record and an error", r.error().message);

    if (r->v1) {
        const crane::V1Repo& v1 = *r->v1;
        check_common(v1, source);
        if (v1.version != 1) fail("v1 version", v1.id);
        if (!std::is_sorted(v1.tags.begin(), v1.tags.end())) fail("tags not sorted", v1.id);
        for (std::size_t i = 0; i < v1.tags.size(); ++i) {
            if (i > 0 && v1.tags[i - 1].first == v1.tags[i].first) fail("repeated tag", v1.tags[i].first);
            const std::string* image = v1.find_tag(v1.tags[i].first);
            if (!image || *image != v1.tags[i].second) fail("find_tag", v1.tags[i].first);
        }
        for (const auto& image : v1.image_ids) check_path_safe(image, "image id");
        check_round_trip(v1);
    } else {
        const crane::V2Repo& v2 = *r->v2;
        check_common(v2, source);
        if (v2.version < 2 || v2.version > 4) fail("v2 version", v2.id);
        if (v2.has_schema2_fields != (v2.version >= 3)) fail("schema2 fields vs version", v2.id);
        for (const auto& ref : v2.schema2_data) {
            if (!v2.in_schema2(ref)) fail("in_schema2", ref);
            check_path_safe(ref, "schema2_data entry");
        }
        for (const auto* list : {&v2.oci_index_data, &v2.oci_manifest_data, &v2.tags}) {
            if (!std::is_sorted(list->begin(), list->end())) fail("oci list not sorted", v2.id);
            for (const auto& ref : *list) check_path_safe(ref, "oci list entry");
        }
        for (const auto& list : v2.referrers) {
            check_path_safe(list.subject, "referrer subject");
            if (v2.find_referrers(list.subject) != &list.descriptors) fail("find_referrers", list.subject);
            for (const auto& d : list.descriptors) {
                check_path_safe(d.digest, "referrer digest");
                if (d.size < 0) fail("negative referrer size", d.digest);
            }
        }
        for (const auto& ref : v2.manifest_list_data) {
            if (!v2.in_manifest_list(ref)) fail("in_manifest_list", ref);
            check_path_safe(ref, "manifest_list_data entry");
        }
        for (const auto& tag : v2.manifest_list_amd64_tags) {
            if (tag.schema_version != 1 && tag.schema_version != 2) fail("schema version", tag.tag);
            if (v2.find_amd64(tag.tag) != &tag) fail("find_amd64", tag.tag);
            check_path_safe(tag.digest, "amd64 digest");
        }
    }

    // the record's snapshot answers what the record does
    auto snapshot = crane::snapshot_of(*r);
    if (!snapshot) fail("no snapshot", text);
    if (r->v1) {
        const crane::V1Repo& v1 = *r->v1;
        const auto view = snapshot->find_v1(v1.id);
        if (!view || view->url() != v1.url || view->url_path() != v1.url_path ||
            view->is_protected() != v1.is_protected || view->images_json() != v1.images_json ||
            view->tags_json() != v1.tags_json) {
            fail("snapshot find_v1", v1.id);
        }
        for (const auto& [tag, image] : v1.tags) {
            if (view->find_tag(tag) != std::optional<std::string_view>(image)) fail("snapshot find_tag", tag);
        }
        for (const auto& image : v1.image_ids) {
            const auto holders = snapshot->repos_with_image(image);
            if (std::none_of(holders.begin(), holders.end(), [&](const crane::V1View& h) { return h.id() == v1.id; })) {
                fail("repos_with_image", image);
            }
        }
    } else {
        const crane::V2Repo& v2 = *r->v2;
        const auto view = snapshot->find_v2(v2.id);
        if (!view || view->url() != v2.url || view->url_path() != v2.url_path ||
            view->is_protected() != v2.is_protected || view->has_schema2_fields() != v2.has_schema2_fields ||
            view->has_tags() != v2.has_tags || view->tags().size() != v2.tags.size()) {
            fail("snapshot find_v2", v2.id);
        }
        for (const auto& ref : v2.schema2_data) {
            if (!view->in_schema2(ref)) fail("snapshot in_schema2", ref);
        }
        for (const auto& ref : v2.manifest_list_data) {
            if (!view->in_manifest_list(ref)) fail("snapshot in_manifest_list", ref);
        }
        for (const auto& tag : v2.manifest_list_amd64_tags) {
            const auto amd = view->find_amd64(tag.tag);
            if (!amd || amd->digest.view() != tag.digest || amd->schema_version != tag.schema_version) {
                fail("snapshot find_amd64", tag.tag);
            }
        }
        for (const auto& list : v2.referrers) {
            if (view->find_referrers(list.subject).size() != list.descriptors.size()) {
                fail("snapshot find_referrers", list.subject);
            }
        }
    }
    return 0;
}
