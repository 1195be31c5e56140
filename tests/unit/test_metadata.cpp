// Loading metadata files of every version, and every kind of bad file.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crane/index_store.h"
#include "crane/metadata.h"

using namespace crane;
namespace fs = std::filesystem;

namespace {
const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
}  // namespace

TEST_CASE("a version 1 file gives images, tags and Crane's JSON text", "[metadata]") {
    auto r = parse_metadata(R"({"version": 1, "repo-registry-id": "bb", "url": "http://h/p/bb/",
        "images": [{"id": "i1", "z": 1, "a": [1.5, 1e20, null]}, {"id": "i2"}],
        "tags": {"t2": "i2", "t1": "i1", "\u00e9": "i1"}})",
                            "f.json");
    REQUIRE(r.v1);
    CHECK_FALSE(r.v2);
    CHECK(r.v1->id == "bb");
    CHECK(r.v1->repository == "bb");
    CHECK(r.v1->url_path == "/p/bb/");
    CHECK_FALSE(r.v1->is_protected);
    CHECK(r.v1->image_ids == std::vector<std::string>{"i1", "i2"});
    CHECK(r.v1->images_json == R"([{"a": [1.5, 1e+20, null], "id": "i1", "z": 1}, {"id": "i2"}])");
    CHECK(r.v1->tags_json == R"({"t1": "i1", "t2": "i2", "\u00e9": "i1"})");
    REQUIRE(r.v1->find_tag("t2"));
    CHECK(*r.v1->find_tag("t2") == "i2");
    CHECK_FALSE(r.v1->find_tag("t3"));
}

TEST_CASE("versions 2 to 4 give v2 repos with their negotiation data", "[metadata]") {
    auto v2 = parse_metadata(R"({"version": 2, "repo-registry-id": "a/b", "url": "https://h:8443/x", "protected": true})",
                             "f.json");
    REQUIRE(v2.v2);
    CHECK(v2.v2->url_path == "/x");
    CHECK(v2.v2->is_protected);
    CHECK_FALSE(v2.v2->has_schema2_fields);

    auto v3 = parse_metadata(R"({"version": 3, "repo-registry-id": "c", "url": "http://h/u/", "schema2_data": ["b", "a", "b"]})",
                             "f.json");
    REQUIRE(v3.v2);
    CHECK(v3.v2->has_schema2_fields);
    CHECK(v3.v2->schema2_data == std::vector<std::string>{"a", "b"});

    auto v4 = parse_metadata(std::string(R"({"version": 4, "repo-registry-id": "d", "url": "http://h/u/", "repository": "d-pulp",
        "schema2_data": [], "manifest_list_data": ["l"], "manifest_list_amd64_tags": {"l": [")" + kDigestA + R"(", 2]}})"),
                             "f.json");
    REQUIRE(v4.v2);
    CHECK(v4.v2->repository == "d-pulp");
    CHECK(v4.v2->in_manifest_list("l"));
    REQUIRE(v4.v2->find_amd64("l"));
    CHECK(v4.v2->find_amd64("l")->digest == kDigestA);
    CHECK(v4.v2->find_amd64("l")->schema_version == 2);
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
    REQUIRE(r.v2);
    CHECK(r.v2->in_oci_index("multi"));
    CHECK(r.v2->in_oci_index(d1));
    CHECK_FALSE(r.v2->in_oci_index("single"));
    CHECK(r.v2->in_oci_manifest("single"));
    CHECK(r.v2->has_tags);
    CHECK(r.v2->tags == std::vector<std::string>{"multi", "single", "v2"});
    const auto* refs = r.v2->find_referrers(d1);
    REQUIRE(refs);
    REQUIRE(refs->size() == 2);
    CHECK((*refs)[0].digest == d2);
    CHECK((*refs)[0].size == 520);
    CHECK((*refs)[0].artifact_type == "application/vnd.example.sbom");
    CHECK((*refs)[0].annotations == std::vector<std::pair<std::string, std::string>>{{"a", "2"}, {"z", "1"}});
    CHECK((*refs)[1].artifact_type.empty());
    CHECK_FALSE(r.v2->find_referrers(d2));

    auto plain = parse_metadata(R"({"version": 4, "repo-registry-id": "p", "url": "http://h/u/", "schema2_data": [],
        "manifest_list_data": [], "manifest_list_amd64_tags": {}})", "f.json");
    REQUIRE(plain.v2);
    CHECK_FALSE(plain.v2->has_tags);

    for (const char* bad : {R"("oci_index_data": "x")", R"("oci_manifest_data": [1])", R"("tags": {"a": 1})",
                            R"("referrers": [])", R"("referrers": {"d": [{"digest": "d", "size": 1}]})",
                            R"("referrers": {"d": [{"mediaType": "m", "digest": "d", "size": -1}]})"}) {
        auto b = parse_metadata(std::string(R"({"version": 4, "repo-registry-id": "p", "url": "http://h/u/", "schema2_data": [],
            "manifest_list_data": [], "manifest_list_amd64_tags": {}, )") + bad + "}", "f.json");
        CHECK_FALSE(b.ok());
        CHECK_FALSE(b.error.empty());
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
        CHECK(r.error == c.error);
    }
}

TEST_CASE("deeply nested metadata is refused without exhausting the stack", "[metadata]") {
    std::string deep = R"({"version": 1, "repo-registry-id": "x", "url": "http://h/u/", "tags": {}, "images": [)";
    for (int i = 0; i < 100000; ++i) deep += "[";
    for (int i = 0; i < 100000; ++i) deep += "]";
    deep += "]}";
    auto r = parse_metadata(deep, "f.json");
    CHECK_FALSE(r.ok());
    CHECK(r.error == "nested deeper than 64 levels");
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

std::string v2_file(const std::string& id, const std::string& url = "http://h/") {
    return R"({"version": 2, "repo-registry-id": ")" + id + R"(", "url": ")" + url + R"("})";
}

struct Collect {
    std::vector<std::string> lines;
    LogSink sink() {
        return [this](LogLevel, std::string_view m) { lines.emplace_back(m); };
    }
    bool has(const std::string& needle) const {
        for (const auto& l : lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }
};

}  // namespace

TEST_CASE("the index store loads every *.json recursively and skips bad files by name", "[store]") {
    TempDir d;
    d.write("a.json", v2_file("a"));
    d.write("sub/dir/b.json", v2_file("b"));
    d.write("sub/c.txt", v2_file("c"));
    d.write("bad.json", "{nope");
    Collect log;
    IndexStore store(d.path.string(), 60, log.sink());
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
    d.write("a.json", v2_file("a", "http://one/"));
    IndexStore store(d.path.string(), 60, nullptr);
    store.reload();
    auto before = store.current();
    d.write("b.json", v2_file("b"));
    REQUIRE(store.reload());
    CHECK(store.current()->find_v2("b"));
    fs::remove(d.path / "b.json");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("b"));
    // same size, new content: the stamp (mtime/ctime) still changes
    d.write("a.json", v2_file("a", "http://two/"));
    REQUIRE(store.reload());
    CHECK(store.current()->find_v2("a")->url == "http://two/");
    // the old index is untouched for requests that still hold it
    CHECK(before->find_v2("a")->url == "http://one/");
}

TEST_CASE("a file that breaks keeps its last good content until fixed or deleted", "[store]") {
    TempDir d;
    d.write("a.json", v2_file("a", "http://good/"));
    Collect log;
    IndexStore store(d.path.string(), 60, log.sink());
    store.reload();
    d.write("a.json", "{\"version\": 2, \"repo-registry-id\": \"a\"");
    REQUIRE(store.reload());
    REQUIRE(store.current()->find_v2("a"));
    CHECK(store.current()->find_v2("a")->url == "http://good/");
    CHECK(log.has("; keeping its last good content"));
    fs::remove(d.path / "a.json");
    REQUIRE(store.reload());
    CHECK_FALSE(store.current()->find_v2("a"));
}

TEST_CASE("duplicate ids: the file whose path sorts last wins, with a warning", "[store]") {
    TempDir d;
    d.write("b.json", v2_file("dup", "http://b/"));
    d.write("a.json", v2_file("dup", "http://a/"));
    d.write("c/z.json", v2_file("dup", "http://cz/"));
    Collect log;
    IndexStore store(d.path.string(), 60, log.sink());
    store.reload();
    CHECK(store.current()->find_v2("dup")->url == "http://cz/");
    CHECK(log.has("v2 repository 'dup' is defined in both"));
}

TEST_CASE("v1 and v2 are separate namespaces; images map to every v1 repo", "[store]") {
    TempDir d;
    d.write("v2.json", v2_file("same"));
    d.write("v1.json", R"({"version": 1, "repo-registry-id": "same", "url": "http://v1/", "images": [{"id": "i"}], "tags": {}})");
    d.write("v1b.json", R"({"version": 1, "repo-registry-id": "other", "url": "http://v1b/", "images": [{"id": "i"}], "tags": {}})");
    IndexStore store(d.path.string(), 60, nullptr);
    store.reload();
    auto idx = store.current();
    CHECK(idx->find_v1("same")->url == "http://v1/");
    CHECK(idx->find_v2("same")->url == "http://h/");
    auto holders = idx->repos_with_image("i");
    REQUIRE(holders);
    REQUIRE(holders->size() == 2);
    CHECK((*holders)[0]->id == "other");
    CHECK((*holders)[1]->id == "same");
}

TEST_CASE("symlinked directories are followed and loops are cut", "[store]") {
    TempDir d;
    TempDir other;
    other.write("linked.json", v2_file("linked"));
    fs::create_directory_symlink(other.path, d.path / "link");
    fs::create_directory_symlink(d.path, d.path / "loop");
    IndexStore store(d.path.string(), 60, nullptr);
    store.reload();
    CHECK(store.current()->find_v2("linked"));
}

TEST_CASE("a missing data_dir is logged and serves an empty index", "[store]") {
    Collect log;
    IndexStore store("/nonexistent/crane-data", 60, log.sink());
    store.reload();
    CHECK(store.current()->v2_sorted().empty());
    CHECK(log.has("/nonexistent/crane-data: data_dir does not exist or is not a directory"));
}

TEST_CASE("readers never see a half-built index while reloads run", "[store]") {
    TempDir d;
    for (int i = 0; i < 50; ++i) d.write("r" + std::to_string(i) + ".json", v2_file("r" + std::to_string(i)));
    IndexStore store(d.path.string(), 60, nullptr);
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
        d.write("r3.json", v2_file("r3", "http://v" + std::to_string(i) + "/"));
        store.reload();
    }
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(bad == 0);
    CHECK(store.current()->find_v2("r3")->url == "http://v19/");
}

TEST_CASE("a recently written file is re-checked by content only while its mtime is recent", "[store]") {
    TempDir d;
    d.write("a.json", v2_file("a"));
    IndexStore store(d.path.string(), 60, nullptr);
    ReloadStats st;
    REQUIRE(store.reload(&st));
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    // something else changes: a is still compared by content once, then trusted
    d.write("b.json", v2_file("b"));
    REQUIRE(store.reload(&st));
    CHECK(st.rechecked == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    d.write("c.json", v2_file("c"));
    REQUIRE(store.reload(&st));
    CHECK(st.rechecked == 1);  // only b, written in the previous round
}
