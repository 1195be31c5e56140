// Loading metadata files of every version, and every kind of bad file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "crane/json_writer.h"
#include "crane/metadata.h"
#include "crane/snapshot_store.h"
#include "store_test_helpers.h"

using namespace crane;
using crane::testing::LogCapture;
using crane::testing::v2_metadata;
namespace fs = std::filesystem;

namespace {

// The record of a parse, nullptr when it failed: the shape these tests check.
std::shared_ptr<const crane::V1Repo> v1_of(const crane::MetadataResult& r) {
    return r ? r->v1 : nullptr;
}
std::shared_ptr<const crane::V2Repo> v2_of(const crane::MetadataResult& r) {
    return r ? r->v2 : nullptr;
}

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
}  // namespace

TEST_CASE("a version 1 file gives images, tags and Crane's JSON text", "[metadata]") {
    auto r = parse_metadata(R"({"version": 1, "repo-registry-id": "bb", "url": "http://h/p/bb/",
        "images": [{"id": "i1", "z": 1, "a": [1.5, 1e20, null]}, {"id": "i2"}],
        "tags": {"t2": "i2", "t1": "i1", "\u00e9": "i1"}})",
                            "f.json");
    REQUIRE(v1_of(r));
    CHECK_FALSE(v2_of(r));
    CHECK(v1_of(r)->id == "bb");
    CHECK(v1_of(r)->repository == "bb");
    CHECK(v1_of(r)->url_path == "/p/bb/");
    CHECK_FALSE(v1_of(r)->is_protected);
    CHECK(v1_of(r)->image_ids == std::vector<std::string>{"i1", "i2"});
    CHECK(v1_of(r)->images_json == R"([{"a": [1.5, 1e+20, null], "id": "i1", "z": 1}, {"id": "i2"}])");
    CHECK(v1_of(r)->tags_json == R"({"t1": "i1", "t2": "i2", "\u00e9": "i1"})");
    REQUIRE(v1_of(r)->find_tag("t2"));
    CHECK(*v1_of(r)->find_tag("t2") == "i2");
    CHECK_FALSE(v1_of(r)->find_tag("t3"));
}

TEST_CASE("versions 2 to 4 give v2 repos with their negotiation data", "[metadata]") {
    auto v2 = parse_metadata(R"({"version": 2, "repo-registry-id": "a/b", "url": "https://h:8443/x", "protected": true})",
                             "f.json");
    REQUIRE(v2_of(v2));
    CHECK(v2_of(v2)->url_path == "/x");
    CHECK(v2_of(v2)->is_protected);
    CHECK_FALSE(v2_of(v2)->has_schema2_fields);

    auto v3 = parse_metadata(R"({"version": 3, "repo-registry-id": "c", "url": "http://h/u/", "schema2_data": ["b", "a", "b"]})",
                             "f.json");
    REQUIRE(v2_of(v3));
    CHECK(v2_of(v3)->has_schema2_fields);
    CHECK(v2_of(v3)->schema2_data == std::vector<std::string>{"a", "b"});

    auto v4 = parse_metadata(std::string(R"({"version": 4, "repo-registry-id": "d", "url": "http://h/u/", "repository": "d-pulp",
        "schema2_data": [], "manifest_list_data": ["l"], "manifest_list_amd64_tags": {"l": [")" + kDigestA + R"(", 2]}})"),
                             "f.json");
    REQUIRE(v2_of(v4));
    CHECK(v2_of(v4)->repository == "d-pulp");
    CHECK(v2_of(v4)->in_manifest_list("l"));
    REQUIRE(v2_of(v4)->find_amd64("l"));
    CHECK(v2_of(v4)->find_amd64("l")->digest == kDigestA);
    CHECK(v2_of(v4)->find_amd64("l")->schema_version == 2);
}

TEST_CASE("version 4 files may carry OCI indexes and manifests, tags and referrers", "[metadata][oci]") {
    const std::string d1 = "sha256:" + std::string(64, 'a');
    const std::string d2 = "sha256:" + std::string(64, 'b');
    auto r = parse_metadata(R"({"version": 4, "repo-registry-id": "o", "url": "http://h/o/",
        "schema2_data": [], "manifest_list_data": [], "manifest_list_amd64_tags": {},
        "oci_index_data": ["multi", ")" + d1 + R"("], "oci_manifest_data": ["single"],
        "tags": ["v2", "multi", "single", "v2"],
        "referrers": {")" + d1 + R"(": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + d2 + R"(", "size": 520,
             "artifactType": "application/vnd.example.sbom", "annotations": {"z": "1", "a": "2"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + d1 + R"(", "size": 7}]}})",
                            "f.json");
    REQUIRE(v2_of(r));
    CHECK(v2_of(r)->in_oci_index("multi"));
    CHECK(v2_of(r)->in_oci_index(d1));
    CHECK_FALSE(v2_of(r)->in_oci_index("single"));
    CHECK(v2_of(r)->in_oci_manifest("single"));
    CHECK(v2_of(r)->has_tags);
    CHECK(v2_of(r)->tags == std::vector<std::string>{"multi", "single", "v2"});
    const auto* refs = v2_of(r)->find_referrers(d1);
    REQUIRE(refs);
    REQUIRE(refs->size() == 2);
    CHECK((*refs)[0].digest == d2);
    CHECK((*refs)[0].size == 520);
    CHECK((*refs)[0].artifact_type == "application/vnd.example.sbom");
    CHECK((*refs)[0].annotations == std::vector<std::pair<std::string, std::string>>{{"a", "2"}, {"z", "1"}});
    CHECK((*refs)[1].artifact_type.empty());
    CHECK_FALSE(v2_of(r)->find_referrers(d2));

    auto plain = parse_metadata(R"({"version": 4, "repo-registry-id": "p", "url": "http://h/u/", "schema2_data": [],
        "manifest_list_data": [], "manifest_list_amd64_tags": {}})", "f.json");
    REQUIRE(v2_of(plain));
    CHECK_FALSE(v2_of(plain)->has_tags);

    for (const char* bad : {R"("oci_index_data": "x")", R"("oci_manifest_data": [1])", R"("tags": {"a": 1})",
                            R"("referrers": [])", R"("referrers": {"d": [{"digest": "d", "size": 1}]})",
                            R"("referrers": {"d": [{"mediaType": "m", "digest": "d", "size": -1}]})"}) {
        auto b = parse_metadata(std::string(R"({"version": 4, "repo-registry-id": "p", "url": "http://h/u/", "schema2_data": [],
            "manifest_list_data": [], "manifest_list_amd64_tags": {}, )") + bad + "}", "f.json");
        CHECK_FALSE(b.ok());
        CHECK_FALSE(b.error().message.empty());
    }
}

TEST_CASE("bad metadata files are refused with a reason", "[metadata]") {
    struct Case {
        const char* text;
        const char* error;
    };
    const Case cases[] = {
        {"{\"version\": 1", "not valid JSON (expected ',' or '}' after an object member at offset 13)"},
        {"[]", "the top level is not a JSON object"},
        {"{}", "missing field 'version'"},
        {R"({"version": "1"})", "'version' must be an integer"},
        {R"({"version": 9, "repo-registry-id": "x", "url": "http://h/u/"})", "metadata version 9 not supported (1 to 4)"},
        {R"({"version": 2, "url": "http://h/u/"})", "missing field 'repo-registry-id'"},
        {R"({"version": 2, "repo-registry-id": "", "url": "http://h/u/"})", "'repo-registry-id' must be a non-empty string"},
        {R"({"version": 2, "repo-registry-id": "x"})", "missing field 'url'"},
        {R"({"version": 2, "repo-registry-id": "x", "url": 5})", "'url' must be a string"},
        {R"({"version": 1, "repo-registry-id": "x", "url": "http://h/u/", "tags": {}})", "missing field 'images'"},
        {R"({"version": 1, "repo-registry-id": "x", "url": "http://h/u/", "images": [{"no": 1}], "tags": {}})",
         "every entry of 'images' needs a string 'id'"},
        {R"({"version": 1, "repo-registry-id": "x", "url": "http://h/u/", "images": [], "tags": {"a": 1}})",
         "tag \"a\" must name an image id"},
        {R"({"version": 3, "repo-registry-id": "x", "url": "http://h/u/"})", "missing field 'schema2_data'"},
        {R"({"version": 3, "repo-registry-id": "x", "url": "http://h/u/", "schema2_data": [1]})",
         "'schema2_data' must be a list of strings"},
        {R"({"version": 4, "repo-registry-id": "x", "url": "http://h/u/", "schema2_data": [], "manifest_list_data": [],
            "manifest_list_amd64_tags": {"t": ["d", 3]}})",
         "'manifest_list_amd64_tags' entry \"t\" must be [digest, 1 or 2]"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_metadata(c.text, "f.json");
        CHECK_FALSE(r.ok());
        CHECK(r.error().message == c.error);
    }
}

TEST_CASE("deeply nested metadata is refused without exhausting the stack", "[metadata]") {
    std::string deep = R"({"version": 1, "repo-registry-id": "x", "url": "http://h/u/", "tags": {}, "images": [)";
    for (int i = 0; i < 100000; ++i) deep += "[";
    for (int i = 0; i < 100000; ++i) deep += "]";
    deep += "]}";
    auto r = parse_metadata(deep, "f.json");
    CHECK_FALSE(r.ok());
    CHECK(r.error().message == "nested deeper than 64 levels");
}

namespace {

std::string v1_with_images(const std::string& images) {
    return R"({"version": 1, "repo-registry-id": "x", "url": "http://h/x/", "tags": {}, "images": )" + images + "}";
}

// A source of `total` bytes of `fill` after `prefix`, counting what was read.
struct CountingSource {
    std::string prefix;
    char fill;
    std::size_t total;
    std::size_t delivered = 0;
    long operator()(char* buf, std::size_t n) {
        std::size_t i = 0;
        for (; i < n && delivered < total; ++i, ++delivered) {
            buf[i] = delivered < prefix.size() ? prefix[delivered] : fill;
        }
        return static_cast<long>(i);
    }
};

}  // namespace

TEST_CASE("nesting is refused while reading, at the first level too deep", "[metadata][limits]") {
    // 64 levels below the top-level object are fine, 65 are not
    auto nest = [](int levels) {
        return v1_with_images("[{\"id\": \"i\", \"x\": " + std::string(static_cast<std::size_t>(levels - 2), '[') +
                              std::string(static_cast<std::size_t>(levels - 2), ']') + "}]");
    };
    REQUIRE(parse_metadata(nest(64), "f.json").ok());
    auto r = parse_metadata(nest(65), "f.json");
    CHECK(r.error().message == "nested deeper than 64 levels");

    // 256 MiB of '[' inside a valid start: the read stops after the first chunk
    CountingSource deep{R"({"version": 1, "images": )", '[', std::size_t{256} << 20};
    r = parse_metadata_stream(std::ref(deep), "f.json");
    CHECK(r.error().message == "nested deeper than 64 levels");
    CHECK(deep.delivered <= 128 * 1024);
    CHECK_FALSE(r.error().read_failed);

    CountingSource array{"", '[', std::size_t{256} << 20};
    r = parse_metadata_stream(std::ref(array), "f.json");
    CHECK(r.error().message == "the top level is not a JSON object");
    CHECK(array.delivered <= 128 * 1024);
}

TEST_CASE("a file of many chunks, read in pieces of every size, parses as the whole text does", "[metadata]") {
    // strings, escapes, numbers and UTF-8 fall across the reader's chunk
    // ends (64 KiB) and the source's short reads
    std::string images;
    std::string tags;
    for (int i = 0; i < 3000; ++i) {
        const std::string id = "image-" + std::to_string(i);
        images += (i ? ", " : "") + std::string("{\"id\": \"") + id +
                  "\", \"note\": \"caf\\u00e9 \\\" caf\xc3\xa9 plain run of text\", \"size\": " + std::to_string(i * 1.5e3) +
                  ", \"n\": [1e20, -0.25, " + std::to_string(i) + ", true, null]}";
        tags += (i ? ", " : "") + std::string("\"t") + std::to_string(i) + "\": \"" + id + "\"";
    }
    const std::string text = R"({"version": 1, "repo-registry-id": "big", "url": "http://h/p/big/", "images": [)" +
                             images + R"(], "tags": {)" + tags + "}}";
    REQUIRE(text.size() > 4 * 64 * 1024);
    auto whole = parse_metadata(text, "f.json");
    REQUIRE(whole.ok());

    const std::size_t pieces[] = {1, 7, 4093, 65536, 65537, 100000};
    std::size_t at = 0;
    std::size_t turn = 0;
    auto r = parse_metadata_stream(
        [&](char* buf, std::size_t n) -> long {
            const std::size_t k = std::min({n, pieces[turn++ % 6], text.size() - at});
            std::copy_n(text.data() + at, k, buf);
            at += k;
            return static_cast<long>(k);
        },
        "f.json");
    REQUIRE(r.ok());
    CHECK(at == text.size());
    CHECK(v1_of(r)->image_ids == v1_of(whole)->image_ids);
    CHECK(v1_of(r)->tags == v1_of(whole)->tags);
    CHECK(v1_of(r)->images_json == v1_of(whole)->images_json);
    CHECK(v1_of(r)->tags_json == v1_of(whole)->tags_json);
    CHECK(v1_of(r)->image_ids.size() == 3000);
}

TEST_CASE("a read error of the source is told apart from bad content", "[metadata][limits]") {
    int calls = 0;
    auto r = parse_metadata_stream(
        [&calls](char* buf, std::size_t n) -> long {
            if (calls++ > 0) return -1;
            const std::string head = R"({"version": 2, "protected": 1, "repo)";
            std::copy(head.begin(), head.end(), buf);
            return static_cast<long>(std::min(n, head.size()));
        },
        "f.json");
    CHECK_FALSE(r.ok());
    CHECK(r.error().read_failed);
    CHECK(r.error().message == "read error");
    CHECK(r.error().marks_protected);
}

TEST_CASE("values of unknown keys are skipped, whatever they hold", "[metadata]") {
    auto r = parse_metadata(R"({"junk": [[[{"a": [1, 2e999, "\u00e9", null]}]]], "version": 2,
        "repo-registry-id": "a", "url": "/p/a/", "images": "a v2 file ignores this", "tags": 5})", "f.json");
    REQUIRE(v2_of(r));
    CHECK(v2_of(r)->url_path == "/p/a/");
    CHECK_FALSE(v2_of(r)->has_tags);
}

TEST_CASE("many tags parse in linear time; the last of a repeated tag wins", "[metadata][limits]") {
    constexpr int kTags = 200000;
    std::string text = R"({"version": 1, "repo-registry-id": "big", "url": "http://h/big/", "images": [{"id": "i0"}, {"id": "i1"}], "tags": {)";
    for (int i = 0; i < kTags; ++i) text += "\"t" + std::to_string(i) + "\": \"i0\", ";
    text += R"("t7": "i1"}})";
    auto r = parse_metadata(text, "f.json");
    REQUIRE(v1_of(r));
    CHECK(v1_of(r)->tags.size() == kTags);
    REQUIRE(v1_of(r)->find_tag("t7"));
    CHECK(*v1_of(r)->find_tag("t7") == "i1");
    REQUIRE(v1_of(r)->find_tag("t199999"));
    CHECK(*v1_of(r)->find_tag("t199999") == "i0");
    CHECK(v1_of(r)->tags_json.find(R"("t7": "i1")") != std::string::npos);
    CHECK(v1_of(r)->tags_json.find(R"("t7": "i0")") == std::string::npos);

    std::string v4 = R"({"version": 4, "repo-registry-id": "big", "url": "http://h/big/", "schema2_data": [],
        "manifest_list_data": [], "tags": [], "manifest_list_amd64_tags": {)";
    for (int i = 0; i < kTags; ++i) v4 += "\"t" + std::to_string(i) + "\": [\"" + kDigestA + "\", 2], ";
    v4 += "\"t7\": [\"" + kDigestB + "\", 1]}}";
    auto r4 = parse_metadata(v4, "f.json");
    REQUIRE(v2_of(r4));
    CHECK(v2_of(r4)->manifest_list_amd64_tags.size() == kTags);
    REQUIRE(v2_of(r4)->find_amd64("t7"));
    CHECK(v2_of(r4)->find_amd64("t7")->digest == kDigestB);
    CHECK(v2_of(r4)->find_amd64("t7")->schema_version == 1);
}

TEST_CASE("numbers come out as Python's json read and wrote them", "[metadata][numbers]") {
    const std::pair<const char*, const char*> cases[] = {
        {"0.0e309", "0.0"},
        {"0e309", "0.0"},
        {"-0.0", "-0.0"},
        {"-0", "0"},
        {"1e400", "Infinity"},
        {"-1e400", "-Infinity"},
        {"1e-400", "0.0"},
        {"-1e-400", "-0.0"},
        {"123456789012345678901234567890123456789012345678901234567890",
         "123456789012345678901234567890123456789012345678901234567890"},
        {"-18446744073709551617", "-18446744073709551617"},
        {"1e20", "1e+20"},
        {"1E-5", "1e-05"},
        {"0.0001", "0.0001"},
        {"1.5", "1.5"},
        {"1e16", "1e+16"},
        {"1e15", "1000000000000000.0"},
        {"0.1", "0.1"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"100.0", "100.0"},
        {"NaN", "NaN"},
        {"Infinity", "Infinity"},
        {"-Infinity", "-Infinity"},
    };
    for (const auto& [in, out] : cases) {
        INFO(in);
        auto r = parse_metadata(v1_with_images(std::string(R"([{"id": "i", "n": )") + in + "}]"), "f.json");
        REQUIRE(v1_of(r));
        CHECK(v1_of(r)->images_json == std::string(R"([{"id": "i", "n": )") + out + "}]");
    }
    // a huge int: exact
    const std::string big(4000, '7');
    auto r = parse_metadata(v1_with_images(R"([{"id": "i", "n": )" + big + "}]"), "f.json");
    REQUIRE(v1_of(r));
    CHECK(v1_of(r)->images_json == R"([{"id": "i", "n": )" + big + "}]");
    // longer than Python's own int limit: refused
    r = parse_metadata(v1_with_images(R"([{"id": "i", "n": )" + std::string(5000, '7') + "}]"), "f.json");
    CHECK(r.error().message.rfind("not valid JSON (a number longer than 4300 characters", 0) == 0);
    for (const char* bad : {"01", "1.", ".5", "1e", "+1", "-", "0x10", "Inf", "-NaN"}) {
        INFO(bad);
        CHECK(parse_metadata(v1_with_images(std::string(R"([{"id": "i", "n": )") + bad + "}]"), "f.json")
                  .error().message.rfind("not valid JSON (", 0) == 0);
    }
    // a referrer size is an int: 0.0e309 is a float
    auto ref = parse_metadata(R"({"version": 4, "repo-registry-id": "p", "url": "http://h/p/", "schema2_data": [],
        "manifest_list_data": [], "manifest_list_amd64_tags": {}, "referrers": {")" + kDigestA +
                                  R"(": [{"mediaType": "m", "digest": ")" + kDigestB + R"(", "size": 0.0e309}]}})",
                              "f.json");
    CHECK(ref.error().message == "every referrer needs a non-negative integer 'size'");
}

TEST_CASE("strings: escapes, UTF-8 and NUL bytes keep their length", "[metadata]") {
    auto r = parse_metadata(R"({"version": 1, "repo-registry-id": "x", "url": "http://h/x/", "images": [{"id": "i"}],
        "tags": {"a\u0000b": "i", "a": "i", "\ud83d\ude00\/": "i"}})", "f.json");
    REQUIRE(v1_of(r));
    REQUIRE(v1_of(r)->tags.size() == 3);
    const std::string nul_tag("a\0b", 3);
    CHECK(v1_of(r)->find_tag(nul_tag));
    CHECK(v1_of(r)->find_tag("a"));
    CHECK_FALSE(v1_of(r)->find_tag("ab"));
    CHECK(v1_of(r)->find_tag("\xF0\x9F\x98\x80/"));
    CHECK(v1_of(r)->tags_json == R"({"a": "i", "a\u0000b": "i", "\ud83d\ude00/": "i"})");
    for (const char* bad : {R"("\ud800")", R"("\udc00x")", "\"\x01\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"",
                            "\"\xF4\x90\x80\x80\"", "\"\xE2\x82\"", R"("\x")", R"("\u12G4")"}) {
        INFO(bad);
        auto b = parse_metadata(v1_with_images(std::string(R"([{"id": "i", "s": )") + bad + "}]"), "f.json");
        CHECK(b.error().message.rfind("not valid JSON (", 0) == 0);
    }
}

TEST_CASE("url, tags, digests and image ids must be safe where they are used in redirects", "[metadata][validate]") {
    auto v2 = [](const std::string& url) {
        return parse_metadata(R"({"version": 2, "repo-registry-id": "a", "url": )" + url + "}", "f.json");
    };
    for (const char* good : {R"("http://cdn.example.com/a/")", R"("HTTPS://h:8443/a%20b/")", R"("/pulp/a/")",
                             R"("https://h")", R"("http://h/a&b;c=d/")"}) {
        INFO(good);
        CHECK(v2(good).ok());
    }
    const std::pair<const char*, const char*> bad_urls[] = {
        {R"("http://h/a\r\nX-Evil: 1")", "holds a control character"},
        {R"("http://h/a\u0000b")", "holds a control character"},
        {R"("http://h/a b")", "holds a control character"},
        {R"("http://h/a\"b")", "holds a control character"},
        {R"("http://h/<a>")", "holds a control character"},
        {R"("http://h/a\\b")", "holds a control character"},
        {R"("http://h/\u00e9")", "holds a control character"},
        {R"("http://h/a?x=1")", "has a query"},
        {R"("http://h/a#f")", "has a fragment"},
        {R"("http:///a")", "has no host"},
        {R"("u")", "is neither an absolute http(s) URL nor an absolute path"},
        {R"("//h/a")", "is neither an absolute http(s) URL nor an absolute path"},
        {R"("ftp://h/a")", "is neither an absolute http(s) URL nor an absolute path"},
        {R"("")", "is neither an absolute http(s) URL nor an absolute path"},
    };
    for (const auto& [url, why] : bad_urls) {
        INFO(url);
        auto r = v2(url);
        CHECK_FALSE(r.ok());
        CHECK(r.error().message.rfind("'url' ", 0) == 0);
        CHECK(r.error().message.find(why) != std::string::npos);
    }
    CHECK(v2(R"("http://h/a\r\n")").error().message ==
          R"('url' "http://h/a\r\n" holds a control character, space, non-ASCII byte, quote, '<', '>' or backslash)");

    auto v4 = [](const std::string& extra) {
        return parse_metadata(R"({"version": 4, "repo-registry-id": "a", "url": "http://h/a/", "schema2_data": [],
            "manifest_list_data": [], "manifest_list_amd64_tags": {}, )" + extra + "}", "f.json");
    };
    const std::string sha512 = "sha512:" + std::string(128, 'f');
    CHECK(v4(R"("schema2_data": ["latest", "_x", "v1.0-rc_1", ")" + kDigestA + R"(", ")" + sha512 +
             R"(", "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", ")" + std::string(128, 'a') + R"("])")
              .ok());
    const std::pair<std::string, std::string> bad_refs[] = {
        {R"("schema2_data": ["../x"])", R"('schema2_data' entry "../x" is neither a tag nor a digest)"},
        {R"("schema2_data": [".x"])", R"('schema2_data' entry ".x" is neither a tag nor a digest)"},
        {R"("schema2_data": [")" + std::string(129, 'a') + R"("])", "'schema2_data' entry \"" + std::string(80, 'a') + "\"... is neither a tag nor a digest"},
        {R"("schema2_data": ["a\u0000b"])", R"('schema2_data' entry "a\u0000b" is neither a tag nor a digest)"},
        {R"("schema2_data": ["sha256:x"])", R"('schema2_data' entry "sha256:x" is neither a tag nor a digest)"},
        {R"("schema2_data": ["sha256:)" + std::string(64, 'A') + R"("])", "'schema2_data' entry \"sha256:" + std::string(64, 'A') + "\" is neither a tag nor a digest"},
        {R"("schema2_data": ["Sha256:abc"])", R"('schema2_data' entry "Sha256:abc" is neither a tag nor a digest)"},
        {R"("schema2_data": ["a..b:abc"])", R"('schema2_data' entry "a..b:abc" is neither a tag nor a digest)"},
        {R"("schema2_data": ["md5:a/b"])", R"('schema2_data' entry "md5:a/b" is neither a tag nor a digest)"},
        {R"("manifest_list_data": ["a?b"])", R"('manifest_list_data' entry "a?b" is neither a tag nor a digest)"},
        {R"("oci_index_data": ["a b"])", R"('oci_index_data' entry "a b" is neither a tag nor a digest)"},
        {R"("oci_manifest_data": ["#"])", R"('oci_manifest_data' entry "#" is neither a tag nor a digest)"},
        {R"("tags": [")" + kDigestA + R"("])", "'tags' entry \"" + kDigestA + "\" is not a tag"},
        {R"("manifest_list_amd64_tags": {"latest": ["../../../../other/x", 2]})",
         R"('manifest_list_amd64_tags' entry "latest" names no digest)"},
        {R"("manifest_list_amd64_tags": {"a/b": [")" + kDigestA + R"(", 2]})",
         R"('manifest_list_amd64_tags' key "a/b" is neither a tag nor a digest)"},
        {R"("referrers": {"latest": []})", R"('referrers' subject "latest" is not a digest)"},
        {R"("referrers": {")" + kDigestA + R"(": [{"mediaType": "m", "digest": "x/y", "size": 1}]})",
         R"(referrer digest "x/y" is not a digest)"},
    };
    for (const auto& [extra, error] : bad_refs) {
        INFO(extra);
        CHECK(v4(extra).error().message == error);
    }
    // a v1 image id is one path segment
    for (const char* bad : {"../x", ".x", "x&y", "a/b", "", "x y"}) {
        INFO(bad);
        auto r = parse_metadata(v1_with_images(std::string(R"([{"id": ")") + bad + "\"}]"), "f.json");
        CHECK(r.error().message == "image id " + json::quoted(bad) + " is not a safe path segment");
    }
    CHECK(parse_metadata(v1_with_images(R"([{"id": "0a.b_c-D"}])"), "f.json").ok());
}

TEST_CASE("'protected' is true for any value Python finds true", "[metadata]") {
    const std::pair<const char*, bool> cases[] = {
        {"true", true},   {"1", true},      {"-1", true},     {"0.5", true},  {"1e-300", true},
        {"\"true\"", true}, {"\"false\"", true}, {"\"0\"", true}, {"[0]", true}, {"{\"a\": null}", true},
        {"NaN", true},    {"-Infinity", true},
        {"false", false}, {"null", false},  {"0", false},     {"-0", false},  {"0.0", false},
        {"0e309", false}, {"1e-400", false}, {"\"\"", false},  {"[]", false},  {"{}", false},
    };
    for (const auto& [value, expected] : cases) {
        INFO(value);
        auto r = parse_metadata(std::string(R"({"version": 2, "repo-registry-id": "a", "url": "http://h/a/", "protected": )") +
                                    value + "}",
                                "f.json");
        REQUIRE(v2_of(r));
        CHECK(v2_of(r)->is_protected == expected);
    }
    // the last of a repeated key wins
    auto r = parse_metadata(R"({"version": 2, "repo-registry-id": "a", "url": "http://h/a/", "protected": 1, "protected": 0})",
                            "f.json");
    REQUIRE(v2_of(r));
    CHECK_FALSE(v2_of(r)->is_protected);
    // a refused file tells whether it meant the repo to be protected
    CHECK(parse_metadata(R"({"version": 2, "protected": "yes", "url": )", "f.json").error().marks_protected);
    CHECK(parse_metadata(R"({"version": 2, "protected": [1], "url": 5})", "f.json").error().marks_protected);
    CHECK_FALSE(parse_metadata(R"({"version": 2, "protected": [], "url": )", "f.json").error().marks_protected);
    CHECK(parse_metadata(R"({"version": 2, "url": "x", "protected": true})", "f.json").error().marks_protected);
    CHECK_FALSE(parse_metadata(R"({"version": 2, "url": "x", "protected": false})", "f.json").error().marks_protected);
}

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/crane-unit-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    void write(const std::string& rel, const std::string& text) const {
        fs::create_directories((path / rel).parent_path());
        std::ofstream(path / rel) << text;
    }
};

}  // namespace

TEST_CASE("the index store loads every *.json recursively and skips bad files by name", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a"));
    d.write("sub/dir/b.json", v2_metadata("b"));
    d.write("sub/c.txt", v2_metadata("c"));
    d.write("bad.json", "{nope");
    LogCapture log;
    IndexStore store(d.path.string(), log.sink());
    ReloadStats st;
    REQUIRE(store.reload(&st));
    auto idx = store.current();
    CHECK(idx->find_v2("a"));
    CHECK(idx->find_v2("b"));
    CHECK_FALSE(idx->find_v2("c"));
    CHECK(st.files == 3);
    CHECK(st.failed == 1);
    CHECK(log.has("metadata file " + (d.path / "bad.json").string() + " skipped: not valid JSON"));
    // nothing changed: no rebuild
    CHECK_FALSE(store.reload());
    CHECK(store.current() == idx);
}

TEST_CASE("reload picks up additions, removals and in-place edits", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a", "http://one/"));
    IndexStore store(d.path.string(), nullptr);
    store.reload();
    auto before = store.current();
    d.write("b.json", v2_metadata("b"));
    REQUIRE(store.reload());
    CHECK(store.current()->find_v2("b"));
    fs::remove(d.path / "b.json");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("b"));
    // same size, new content: the stamp (mtime/ctime) still changes
    d.write("a.json", v2_metadata("a", "http://two/"));
    REQUIRE(store.reload());
    CHECK(store.current()->find_v2("a")->url() == "http://two/");
    // the old index is untouched for requests that still hold it
    CHECK(before->find_v2("a")->url() == "http://one/");
}

TEST_CASE("a file that breaks keeps its last good content until fixed or deleted", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a", "http://good/"));
    LogCapture log;
    IndexStore store(d.path.string(), log.sink());
    store.reload();
    d.write("a.json", "{\"version\": 2, \"repo-registry-id\": \"a\"");
    REQUIRE(store.reload());
    REQUIRE(store.current()->find_v2("a"));
    CHECK(store.current()->find_v2("a")->url() == "http://good/");
    CHECK(log.has("; keeping its last good content"));
    fs::remove(d.path / "a.json");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a"));
}

TEST_CASE("duplicate ids: the file whose path sorts last wins, with a warning", "[store]") {
    TempDir d;
    d.write("b.json", v2_metadata("dup", "http://b/"));
    d.write("a.json", v2_metadata("dup", "http://a/"));
    d.write("c/z.json", v2_metadata("dup", "http://cz/"));
    LogCapture log;
    IndexStore store(d.path.string(), log.sink());
    store.reload();
    CHECK(store.current()->find_v2("dup")->url() == "http://cz/");
    CHECK(log.has("v2 repository 'dup' is defined in both"));
}

TEST_CASE("v1 and v2 are separate namespaces; images map to every v1 repo", "[store]") {
    TempDir d;
    d.write("v2.json", v2_metadata("same"));
    d.write("v1.json", R"({"version": 1, "repo-registry-id": "same", "url": "http://v1/", "images": [{"id": "i"}], "tags": {}})");
    d.write("v1b.json", R"({"version": 1, "repo-registry-id": "other", "url": "http://v1b/", "images": [{"id": "i"}], "tags": {}})");
    IndexStore store(d.path.string(), nullptr);
    store.reload();
    auto idx = store.current();
    CHECK(idx->find_v1("same")->url() == "http://v1/");
    CHECK(idx->find_v2("same")->url() == "http://h/");
    auto holders = idx->repos_with_image("i");
    REQUIRE(holders.size() == 2);
    CHECK(holders[0].id() == "other");
    CHECK(holders[1].id() == "same");
}

TEST_CASE("symlinked directories are followed and loops are cut", "[store]") {
    TempDir d;
    TempDir other;
    other.write("linked.json", v2_metadata("linked"));
    fs::create_directory_symlink(other.path, d.path / "link");
    fs::create_directory_symlink(d.path, d.path / "loop");
    IndexStore store(d.path.string(), nullptr);
    store.reload();
    CHECK(store.current()->find_v2("linked"));
}

TEST_CASE("a missing data_dir is logged and serves an empty index", "[store]") {
    LogCapture log;
    IndexStore store("/nonexistent/crane-data", log.sink());
    store.reload();
    CHECK(store.current()->v2_sorted().empty());
    CHECK(log.has("/nonexistent/crane-data: data_dir does not exist or is not a directory"));
}

TEST_CASE("readers never see a half-built index while reloads run", "[store]") {
    TempDir d;
    for (int i = 0; i < 50; ++i) d.write("r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i)));
    IndexStore store(d.path.string(), nullptr);
    store.reload();
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            while (!stop) {
                auto idx = store.current();
                if (idx->v2_sorted().size() != 50 || !idx->find_v2("r7")) ++bad;
            }
        });
    }
    for (int i = 0; i < 20; ++i) {
        d.write("r3.json", v2_metadata("r3", "http://v" + std::to_string(i) + "/"));
        store.reload();
    }
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(bad == 0);
    CHECK(store.current()->find_v2("r3")->url() == "http://v19/");
}

TEST_CASE("a recently written file is re-checked by content only while its mtime is recent", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a"));
    IndexStore store(d.path.string(), nullptr);
    ReloadStats st;
    REQUIRE(store.reload(&st));
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    // something else changes: a is still compared by content once, then trusted
    d.write("b.json", v2_metadata("b"));
    REQUIRE(store.reload(&st));
    CHECK(st.rechecked == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    d.write("c.json", v2_metadata("c"));
    REQUIRE(store.reload(&st));
    CHECK(st.rechecked == 1);  // only b, written in the previous round
}

TEST_CASE("a change toward protected never fails open to the last good content", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a", "http://public/"));
    LogCapture log;
    IndexStore store(d.path.string(), log.sink());
    store.reload();
    REQUIRE(store.current()->find_v2("a"));
    // Crane's truthiness: the rewrite is accepted and the repo is protected
    d.write("a.json", R"({"version": 2, "repo-registry-id": "a", "url": "http://public/", "protected": 1})");
    REQUIRE(store.reload());
    REQUIRE(store.current()->find_v2("a"));
    CHECK(store.current()->find_v2("a")->is_protected());
    d.write("a.json", v2_metadata("a", "http://public/"));
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a")->is_protected());
    // broken content that shows a truthy "protected" before its error: dropped
    d.write("a.json", R"({"version": 2, "protected": "true", "repo-registry-id": "a", "url": )");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a"));
    CHECK(log.has("metadata file " + (d.path / "a.json").string() + " skipped: not valid JSON"));
    CHECK(log.has("the new content marks it protected, so its repository is not served until the file is fixed"));
    // refused (not broken) content that marks it protected: dropped too
    d.write("a.json", v2_metadata("a", "http://public/"));
    REQUIRE(store.reload());
    REQUIRE(store.current()->find_v2("a"));
    d.write("a.json", R"({"version": 2, "repo-registry-id": "a", "url": "http://h/?x", "protected": true})");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a"));
    // fixed: served again
    d.write("a.json", R"({"version": 2, "repo-registry-id": "a", "url": "http://public/", "protected": true})");
    REQUIRE(store.reload());
    REQUIRE(store.current()->find_v2("a"));
    CHECK(store.current()->find_v2("a")->is_protected());
}

TEST_CASE("a file that cannot be read drops its repository", "[store]") {
    TempDir d;
    d.write("a.json", v2_metadata("a"));
    d.write("b.json", v2_metadata("b"));
    LogCapture log;
    IndexStore store(d.path.string(), log.sink());
    store.reload();
    REQUIRE(store.current()->find_v2("a"));
    // over the size cap (a sparse file: nothing is read)
    fs::resize_file(d.path / "a.json", (std::uintmax_t{256} << 20) + 1);
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a"));
    CHECK(log.has("metadata file " + (d.path / "a.json").string() +
                  " skipped: larger than 256 MiB; its repository is not served until the file can be read"));
    // no permission to read (root reads anyway)
    if (geteuid() != 0) {
        fs::permissions(d.path / "b.json", fs::perms::none);
        REQUIRE(store.reload());
        CHECK_FALSE(store.current()->find_v2("b"));
        CHECK(log.has("metadata file " + (d.path / "b.json").string() + " skipped: cannot be opened: Permission denied"));
        fs::permissions(d.path / "b.json", fs::perms::owner_read | fs::perms::owner_write);
        REQUIRE(store.reload());
        CHECK(store.current()->find_v2("b"));
    }
    d.write("a.json", v2_metadata("a"));
    fs::resize_file(d.path / "a.json", v2_metadata("a").size());
    REQUIRE(store.reload());
    CHECK(store.current()->find_v2("a"));
}

TEST_CASE("the version 4 writer and the parser agree: write, parse, same record", "[metadata][writer]") {
    const std::string kDigestC = "sha256:" + std::string(64, 'c');
    struct Case {
        const char* name;
        V2Repo repo;
    };
    V2Repo full;
    full.id = "lib/full";
    full.repository = "lib-full";
    full.url = "https://cdn.example/pulp/lib-full/";
    full.is_protected = true;
    full.has_schema2_fields = true;
    full.schema2_data = {"latest", kDigestA};  // sorted, as records are
    full.manifest_list_data = {"multi", kDigestB};
    full.manifest_list_amd64_tags = {{"multi", kDigestA, 2}, {"old", kDigestC, 1}};
    full.oci_index_data = {kDigestC};
    full.oci_manifest_data = {kDigestB};
    full.has_tags = true;
    full.tags = {"latest", "multi", "v1.0"};
    full.referrers = {{kDigestA,
                       {{"application/vnd.oci.image.manifest.v1+json", kDigestB, 512, "application/spdx+json",
                         {{"a", "1"}, {"org.example", "x \"y\" \u00e9t\u00e9"}}},
                        {"application/vnd.oci.image.manifest.v1+json", kDigestC, 7, "", {}}}}};
    V2Repo empty;
    empty.id = "e";
    empty.repository = "e";
    empty.url = "/pulp/e/";
    empty.has_schema2_fields = true;
    empty.has_tags = true;
    for (const Case& c : {Case{"every field", full}, Case{"every list empty", empty}}) {
        INFO(c.name);
        std::string text = metadata_v4_json(c.repo);
        MetadataResult r = parse_metadata(text, "w.json");
        INFO(text);
        INFO(r.error().message);
        REQUIRE(r.error().message.empty());
        REQUIRE(v2_of(r));
        const V2Repo& back = *v2_of(r);
        CHECK(back.version == 4);
        CHECK(back.id == c.repo.id);
        CHECK(back.repository == c.repo.repository);
        CHECK(back.url == c.repo.url);
        CHECK(back.is_protected == c.repo.is_protected);
        CHECK(back.has_schema2_fields);
        CHECK(back.schema2_data == c.repo.schema2_data);
        CHECK(back.manifest_list_data == c.repo.manifest_list_data);
        REQUIRE(back.manifest_list_amd64_tags.size() == c.repo.manifest_list_amd64_tags.size());
        for (std::size_t i = 0; i < back.manifest_list_amd64_tags.size(); ++i) {
            CHECK(back.manifest_list_amd64_tags[i].tag == c.repo.manifest_list_amd64_tags[i].tag);
            CHECK(back.manifest_list_amd64_tags[i].digest == c.repo.manifest_list_amd64_tags[i].digest);
            CHECK(back.manifest_list_amd64_tags[i].schema_version ==
                  c.repo.manifest_list_amd64_tags[i].schema_version);
        }
        CHECK(back.oci_index_data == c.repo.oci_index_data);
        CHECK(back.oci_manifest_data == c.repo.oci_manifest_data);
        CHECK(back.has_tags);
        CHECK(back.tags == c.repo.tags);
        REQUIRE(back.referrers.size() == c.repo.referrers.size());
        for (std::size_t i = 0; i < back.referrers.size(); ++i) {
            CHECK(back.referrers[i].subject == c.repo.referrers[i].subject);
            REQUIRE(back.referrers[i].descriptors.size() == c.repo.referrers[i].descriptors.size());
            for (std::size_t j = 0; j < back.referrers[i].descriptors.size(); ++j) {
                const Referrer& got = back.referrers[i].descriptors[j];
                const Referrer& want = c.repo.referrers[i].descriptors[j];
                CHECK(got.media_type == want.media_type);
                CHECK(got.digest == want.digest);
                CHECK(got.size == want.size);
                CHECK(got.artifact_type == want.artifact_type);
                CHECK(got.annotations == want.annotations);
            }
        }
        // writing the parsed record again gives the same bytes
        CHECK(metadata_v4_json(back) == text);
    }
}
