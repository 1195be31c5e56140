// Solr JSON -> search results, with RapidJSON (see crane/search.h).
//
// Structure, as Crane: the body must be a JSON object whose "response" is an
// object whose "docs" is an array; otherwise the body is unparsable (502).
// Per doc (Crane raised on most wrong types and failed the whole search; we
// keep the rest of the answer instead):
//   - a doc that is not an object is skipped;
//   - name: "allTitle"; a doc without a string allTitle is skipped (Crane
//     would have sent "name": null);
//   - description: "ir_description" if the key is present, else
//     "publishedAbstract" if present, else null; a present key with a
//     non-string value (null included, as in Crane) gives null;
//   - is_trusted: "ir_automated", is_official: "ir_official"; non-booleans
//     count as absent (false);
//   - star_count: "ir_stars" if a number: integers beyond int64 and doubles
//     are clamped to the int64 range, doubles truncated toward zero; other
//     types count as absent (0);
//   - documentKind "CertifiedSoftware": one result per string entry of
//     "c_pull_command" (a single string counts as one entry, non-strings are
//     skipped), name = the entry with its first "docker pull" removed and
//     Python-str.strip()ped, should_filter false; no c_pull_command, no result;
//   - documentKind "ImageRepository": should_filter true; any other: false.
// Duplicate keys: the last one wins, as in Python's json.loads. Numbers beyond
// the double range (1e400) fail RapidJSON's parse, so such a body is
// unparsable. Invalid UTF-8 is unparsable (as in Python 2's json.loads).
// The parser is iterative, so deep nesting cannot overflow the stack.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstdint>
#include <limits>

#include "crane/json_members.h"
#include "search/search_internal.h"

namespace crane::search_detail {

namespace {

using rapidjson::Value;

using json::last_member;
using json::string_of;

bool bool_member(const Value& doc, std::string_view key) {
    const Value* v = last_member(doc, key);
    return v != nullptr && v->IsBool() && v->GetBool();
}

std::int64_t star_count_of(const Value* v) {
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
    if (v == nullptr || !v->IsNumber()) return 0;
    if (v->IsInt64()) return v->GetInt64();
    if (v->IsUint64()) return kMax;
    double d = v->GetDouble();
    if (d >= 9223372036854775808.0) return kMax;  // 2^63
    if (d <= -9223372036854775808.0) return kMin;
    return static_cast<std::int64_t>(d);
}

std::optional<std::string> description_of(const Value& doc) {
    const Value* v = last_member(doc, "ir_description");
    if (v == nullptr) v = last_member(doc, "publishedAbstract");
    if (v == nullptr || !v->IsString()) return std::nullopt;
    return std::string(string_of(*v));
}

// Decodes the UTF-8 sequence starting at s[i]; returns its length (0 if invalid).
std::size_t decode_utf8(std::string_view s, std::size_t i, std::uint32_t& cp) {
    auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len = b0 < 0x80           ? 1
                      : (b0 >> 5) == 0x6  ? 2
                      : (b0 >> 4) == 0xE  ? 3
                      : (b0 >> 3) == 0x1E ? 4
                                          : 0;
    if (len == 0 || i + len > s.size()) return 0;
    cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    for (std::size_t k = 1; k < len; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3Fu);
    }
    return len;
}

// Python 2.7 unicode.isspace()
bool is_python_space(std::uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string_view python_strip(std::string_view s) {
    std::uint32_t cp = 0;
    while (!s.empty()) {
        std::size_t len = decode_utf8(s, 0, cp);
        if (len == 0 || !is_python_space(cp)) break;
        s.remove_prefix(len);
    }
    while (!s.empty()) {
        std::size_t start = s.size() - 1;
        while (start > 0 && s.size() - start < 4 &&
               (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
            --start;
        }
        std::size_t len = decode_utf8(s, start, cp);
        if (len != s.size() - start || !is_python_space(cp)) break;
        s.remove_suffix(len);
    }
    return s;
}

std::string pull_command_name(std::string_view command) {
    constexpr std::string_view kPull = "docker pull";
    std::string name(command);
    if (auto at = name.find(kPull); at != std::string::npos) name.erase(at, kPull.size());
    return std::string(python_strip(name));
}

}  // namespace

Result<std::vector<SearchResult>> parse_solr_json(std::string_view body, bool* cut) {
    if (body.size() > kMaxSearchBodyBytes) {
        return Result<std::vector<SearchResult>>::failure(
            "body larger than " + std::to_string(kMaxSearchBodyBytes) + " bytes");
    }
    rapidjson::Document json;
    json.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(),
                                                                                       body.size());
    if (json.HasParseError()) {
        return Result<std::vector<SearchResult>>::failure(
            std::string("JSON error: ") + rapidjson::GetParseError_En(json.GetParseError()) +
            " at offset " + std::to_string(json.GetErrorOffset()));
    }
    const Value* response = json.IsObject() ? last_member(json, "response") : nullptr;
    const Value* docs =
        response != nullptr && response->IsObject() ? last_member(*response, "docs") : nullptr;
    if (docs == nullptr || !docs->IsArray()) {
        return Result<std::vector<SearchResult>>::failure("no response.docs array");
    }

    ResultList list;
    for (const Value& doc : docs->GetArray()) {
        if (list.cut) break;
        if (!doc.IsObject()) continue;
        SearchResult base;
        base.description = description_of(doc);
        base.is_trusted = bool_member(doc, "ir_automated");
        base.is_official = bool_member(doc, "ir_official");
        base.star_count = star_count_of(last_member(doc, "ir_stars"));
        const std::string_view description =
            base.description ? std::string_view(*base.description) : std::string_view();
        const Value* kind = last_member(doc, "documentKind");
        std::string_view kind_name = kind != nullptr && kind->IsString() ? string_of(*kind) : "";

        if (kind_name == "CertifiedSoftware") {
            const Value* commands = last_member(doc, "c_pull_command");
            if (commands == nullptr) continue;
            // every entry repeats the doc's description: check before copying
            auto add = [&](const Value& command) {
                if (!command.IsString()) return;
                std::string name = pull_command_name(string_of(command));
                if (!list.fits(name, description)) return;
                SearchResult r = base;
                r.name = std::move(name);
                r.should_filter = false;
                list.results.push_back(std::move(r));
            };
            if (commands->IsArray()) {
                for (const Value& command : commands->GetArray()) {
                    if (list.cut) break;
                    add(command);
                }
            } else {
                add(*commands);
            }
            continue;
        }

        const Value* title = last_member(doc, "allTitle");
        if (title == nullptr || !title->IsString()) continue;
        if (!list.fits(string_of(*title), description)) break;
        base.name = std::string(string_of(*title));
        base.should_filter = kind_name == "ImageRepository";
        list.results.push_back(std::move(base));
    }
    if (cut != nullptr) *cut = list.cut;
    return std::move(list.results);
}

}  // namespace crane::search_detail
