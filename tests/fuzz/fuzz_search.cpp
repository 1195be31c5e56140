// Fuzz target `search`: backend bodies through parse_gsa_xml and
// parse_solr_json, then render_search_response (with the input as the query
// too). The rendered body must be pure-ASCII JSON that reads back to the same
// results: count, names, descriptions, flags and star counts.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "crane/search.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_search invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

// Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF): what
// the JSON writer passes through unchanged.
bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        const std::size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        std::uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
        for (std::size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

std::string_view view(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

const rapidjson::Value& member(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd()) fail("rendered body lacks a member", name);
    return it->value;
}

void check_rendered(std::string_view q, const std::vector<crane::SearchResult>& results, const char* backend) {
    const std::string body = crane::render_search_response(q, results);
    for (char c : body) {
        if (static_cast<unsigned char>(c) >= 0x80) fail("non-ASCII byte in the rendered body", body);
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) fail("rendered body is not a JSON object", body);
    const auto& n = member(doc, "num_results");
    const auto& list = member(doc, "results");
    if (!n.IsInt64() || n.GetInt64() != static_cast<std::int64_t>(results.size())) fail("num_results", body);
    if (!list.IsArray() || list.Size() != results.size()) fail("results length", body);
    if (!member(doc, "query").IsString() || (valid_utf8(q) && view(member(doc, "query")) != q)) fail("query", body);
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        const crane::SearchResult& want = results[i];
        const auto& got = list[i];
        if (!got.IsObject() || got.MemberCount() != 6) fail("result shape", backend);
        if (!member(got, "name").IsString() || (valid_utf8(want.name) && view(member(got, "name")) != want.name)) {
            fail("name does not round-trip", want.name);
        }
        const auto& d = member(got, "description");
        if (want.description ? !d.IsString() || (valid_utf8(*want.description) && view(d) != *want.description)
                             : !d.IsNull()) {
            fail("description does not round-trip", backend);
        }
        if (!member(got, "is_official").IsBool() || member(got, "is_official").GetBool() != want.is_official ||
            !member(got, "is_trusted").IsBool() || member(got, "is_trusted").GetBool() != want.is_trusted ||
            !member(got, "should_filter").IsBool() || member(got, "should_filter").GetBool() != want.should_filter ||
            !member(got, "star_count").IsInt64() || member(got, "star_count").GetInt64() != want.star_count) {
            fail("a flag or the star count does not round-trip", backend);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    if (auto gsa = crane::parse_gsa_xml(body)) {
        for (const auto& r : *gsa) {
            if (!r.should_filter || !r.description || r.is_official || r.is_trusted || r.star_count != 0) {
                fail("GSA result outside Crane's defaults", r.name);
            }
        }
        check_rendered(body.substr(0, 64), *gsa, "gsa");
    }
    if (auto solr = crane::parse_solr_json(body)) {
        check_rendered(body.substr(0, 64), *solr, "solr");
    }
    check_rendered(body, {}, "none");
    return 0;
}
