// crane-publish's library (crane/publish.h): manifest, dir: layout and OCI
// image layout parsing, the plan and metadata JSON (checked against mod_crane's own
// metadata parser and negotiation), digest verification, and publishing into
// temp dirs (atomic replacement, nothing half-published on error).
#include <dirent.h>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crane/metadata.h"
#include "api/negotiation.h"
#include "publish/publish.h"
#include "temp_dir.h"

using namespace crane::publish;
using crane::testing::TempDir;
using crane::is_sha256_digest;
using crane::is_tag;
using crane::kMediaManifestList;
using crane::kMediaManifestV2;
using crane::kMediaOciIndex;
using crane::kMediaOciManifest;
using crane::kMediaSchema1Signed;

namespace {

// The record of a parse, nullptr when it failed: the shape these tests check.
std::shared_ptr<const crane::V2Repo> v2_of(const crane::MetadataResult& r) {
    return r ? r->v2 : nullptr;
}

// negotiate_manifest on the parsed repo, as the one repo of its own snapshot.
crane::ManifestChoice negotiate(const crane::MetadataResult& r, std::string_view ref, const crane::AcceptSet& accept) {
    REQUIRE(v2_of(r));
    const auto snapshot = crane::snapshot_of(*r);
    const auto view = snapshot->find_v2(r->v2->id);
    REQUIRE(view);
    return crane::negotiate_manifest(*view, ref, accept);
}


void write(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    REQUIRE(f);
    f << bytes;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Every path under dir (relative, sorted), directories with a trailing '/'.
std::set<std::string> tree(const std::string& dir, const std::string& prefix = "") {
    std::set<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        ::lstat((dir + "/" + name).c_str(), &st);
        if (S_ISDIR(st.st_mode)) {
            out.insert(prefix + name + "/");
            for (const auto& p : tree(dir + "/" + name, prefix + name + "/")) out.insert(p);
        } else {
            out.insert(prefix + name);
        }
    }
    ::closedir(d);
    return out;
}

std::string hex(const std::string& digest) { return digest.substr(7); }

const std::string S2(kMediaManifestV2);
const std::string LIST(kMediaManifestList);

// One image: a config and one layer blob, and its schema2 manifest.
struct TestImage {
    std::string config, layer, manifest;
    std::string config_digest, layer_digest, digest;
    std::string arch;

    explicit TestImage(const std::string& architecture, const std::string& seed = "")
        : arch(architecture) {
        config = R"({"architecture":")" + arch +
                 R"(","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":")" + seed +
                 "\"}";
        layer = "not really a tarball: " + arch + seed;
        config_digest = sha256_digest(config);
        layer_digest = sha256_digest(layer);
        manifest =
            R"({"schemaVersion": 2, "mediaType": ")" + S2 +
            R"(", "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": )" +
            std::to_string(config.size()) + R"(, "digest": ")" + config_digest +
            R"("}, "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": )" +
            std::to_string(layer.size()) + R"(, "digest": ")" + layer_digest + R"("}]})";
        digest = sha256_digest(manifest);
    }

    void write_blobs(const std::string& dir) const {
        write(dir + "/" + hex(config_digest), config);
        write(dir + "/" + hex(layer_digest), layer);
    }

    // as `skopeo copy --format v2s2 ... dir:DIR` writes one image
    std::string write_dir(const std::string& dir) const {
        ::mkdir(dir.c_str(), 0755);
        write(dir + "/version", "Directory Transport Version: 1.1\n");
        write(dir + "/manifest.json", manifest);
        write_blobs(dir);
        return dir;
    }

    std::string list_entry() const {
        std::string variant = arch == "arm64" ? R"(, "variant": "v8")" : "";
        return R"({"mediaType": ")" + S2 + R"(", "size": )" + std::to_string(manifest.size()) +
               R"(, "digest": ")" + digest + R"(", "platform": {"architecture": ")" + arch +
               R"(", "os": "linux")" + variant + "}}";
    }
};

struct TestList {
    std::vector<TestImage> images;
    std::string manifest, digest;

    explicit TestList(std::vector<TestImage> imgs) : images(std::move(imgs)) {
        manifest = R"({"schemaVersion": 2, "mediaType": ")" + LIST + R"(", "manifests": [)";
        for (std::size_t i = 0; i < images.size(); ++i) {
            manifest += (i ? ", " : "") + images[i].list_entry();
        }
        manifest += "]}";
        digest = sha256_digest(manifest);
    }

    // as `skopeo copy --all ... dir:DIR` writes a list
    std::string write_dir(const std::string& dir) const {
        ::mkdir(dir.c_str(), 0755);
        write(dir + "/version", "Directory Transport Version: 1.1\n");
        write(dir + "/manifest.json", manifest);
        for (const auto& i : images) {
            write(dir + "/" + hex(i.digest) + ".manifest.json", i.manifest);
            i.write_blobs(dir);
        }
        return dir;
    }
};

TestList multi() { return TestList({TestImage("amd64", "m"), TestImage("arm64", "m")}); }

const std::string OCI_MAN(kMediaOciManifest);
const std::string OCI_INDEX(kMediaOciIndex);
const std::string OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const std::string OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

std::string descriptor(const std::string& media_type, const std::string& bytes,
                       const std::string& extra = "") {
    return R"({"mediaType": ")" + media_type + R"(", "digest": ")" + sha256_digest(bytes) +
           R"(", "size": )" + std::to_string(bytes.size()) + extra + "}";
}

// An OCI image (or, with a subject, an artifact about that digest).
struct OciImage {
    std::string config, layer, manifest, digest, arch;

    explicit OciImage(const std::string& architecture, const std::string& seed = "",
                      const std::string& subject = "", const std::string& subject_bytes = "")
        : arch(architecture) {
        if (subject.empty()) {
            config = R"({"architecture":")" + arch +
                     R"(","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":")" + seed +
                     "\"}";
            layer = "oci layer " + arch + seed;
            manifest = R"({"schemaVersion": 2, "mediaType": ")" + OCI_MAN + R"(", "config": )" +
                       descriptor(OCI_CONFIG, config) + R"(, "layers": [)" +
                       descriptor(OCI_LAYER, layer) + "]}";
        } else {
            // an SBOM in the artifact style: empty config, artifactType, annotations
            config = "{}";
            layer = "sbom of " + subject + seed;
            manifest = R"({"schemaVersion": 2, "mediaType": ")" + OCI_MAN +
                       R"(", "artifactType": "application/vnd.example.sbom", "config": )" +
                       descriptor("application/vnd.oci.empty.v1+json", config) +
                       R"(, "layers": [)" + descriptor("application/spdx+json", layer) +
                       R"(], "subject": {"mediaType": ")" + OCI_MAN + R"(", "digest": ")" +
                       subject + R"(", "size": )" + std::to_string(subject_bytes.size()) +
                       R"(}, "annotations": {"org.example.seed": ")" + seed +
                       R"(", "org.example.kind": "sbom"}})";
        }
        digest = sha256_digest(manifest);
    }

    void write_blobs(const std::string& blob_dir) const {
        write(blob_dir + "/" + hex(sha256_digest(config)), config);
        write(blob_dir + "/" + hex(sha256_digest(layer)), layer);
    }

    std::string write_dir(const std::string& dir) const {
        ::mkdir(dir.c_str(), 0755);
        write(dir + "/version", "Directory Transport Version: 1.1\n");
        write(dir + "/manifest.json", manifest);
        write_blobs(dir);
        return dir;
    }

    std::string index_entry() const {
        return descriptor(OCI_MAN, manifest,
                          R"(, "platform": {"architecture": ")" + arch + R"(", "os": "linux"})");
    }
};

struct OciIndex {
    std::vector<OciImage> images;
    std::string manifest, digest;

    explicit OciIndex(std::vector<OciImage> imgs) : images(std::move(imgs)) {
        manifest = R"({"schemaVersion": 2, "mediaType": ")" + OCI_INDEX + R"(", "manifests": [)";
        for (std::size_t i = 0; i < images.size(); ++i) {
            manifest += (i ? ", " : "") + images[i].index_entry();
        }
        manifest += "]}";
        digest = sha256_digest(manifest);
    }

    // as `skopeo copy --all ... dir:DIR` writes an index
    std::string write_dir(const std::string& dir) const {
        ::mkdir(dir.c_str(), 0755);
        write(dir + "/version", "Directory Transport Version: 1.1\n");
        write(dir + "/manifest.json", manifest);
        for (const auto& i : images) {
            write(dir + "/" + hex(i.digest) + ".manifest.json", i.manifest);
            i.write_blobs(dir);
        }
        return dir;
    }
};

// An OCI image layout: index.json lists `entries` (descriptors), and every
// blob in `blobs` is stored under blobs/sha256/.
std::string write_oci_layout(const std::string& dir, const std::vector<std::string>& entries,
                             const std::vector<std::string>& blobs) {
    ::mkdir(dir.c_str(), 0755);
    ::mkdir((dir + "/blobs").c_str(), 0755);
    ::mkdir((dir + "/blobs/sha256").c_str(), 0755);
    write(dir + "/oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
    std::string index =
        R"({"schemaVersion": 2, "mediaType": ")" + OCI_INDEX + R"(", "manifests": [)";
    for (std::size_t i = 0; i < entries.size(); ++i) index += (i ? ", " : "") + entries[i];
    write(dir + "/index.json", index + "]}");
    for (const auto& b : blobs) write(dir + "/blobs/sha256/" + hex(sha256_digest(b)), b);
    return dir;
}

std::string named(const std::string& name) {
    return R"(, "annotations": {"org.opencontainers.image.ref.name": ")" + name + R"("})";
}

Options options_for(const TempDir& t, std::vector<std::pair<std::string, std::string>> tags) {
    ::mkdir((t / "web").c_str(), 0755);
    ::mkdir((t / "meta").c_str(), 0755);
    Options o;
    o.repo_id = "ns/app";
    o.base_url = "https://cdn.example.com/v2/";
    o.web_dir = t / "web";
    o.metadata_dir = t / "meta";
    o.tags = std::move(tags);
    return o;
}

}  // namespace

// ---- names and digests ----

TEST_CASE("sha256 digests are computed and recognised", "[publish]") {
    CHECK(sha256_digest("") ==
          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_digest("abc") ==
          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(is_sha256_digest("sha256:" + std::string(64, 'a')));
    CHECK_FALSE(is_sha256_digest("sha256:" + std::string(63, 'a')));
    CHECK_FALSE(is_sha256_digest("sha256:" + std::string(64, 'A')));
    CHECK_FALSE(is_sha256_digest("sha512:" + std::string(64, 'a')));
    CHECK_FALSE(is_sha256_digest("sha256:" + std::string(63, 'a') + "/"));
}

TEST_CASE("tags, repository ids and directories follow Docker's grammar", "[publish]") {
    for (const std::string ok : {"latest", "1.0", "v1.2-rc_3", "_x", "A"}) CHECK(is_tag(ok));
    CHECK(is_tag(std::string(128, 'a')));
    for (const char* bad : {"", ".x", "-x", "a:b", "a/b", "a b", "sha256:abc"})
        CHECK_FALSE(is_tag(bad));
    CHECK_FALSE(is_tag(std::string(129, 'a')));

    for (const char* ok : {"app", "ns/app", "a.b/c__d/e---f", "library/busybox", "a0/1b"}) {
        CHECK(is_valid_repo_id(ok));
    }
    for (const char* bad : {"", "App", "ns/", "/app", "ns//app", "-app", "app-", "a..b", "a___b",
                            "a._b", "a b", "a:b"}) {
        CHECK_FALSE(is_valid_repo_id(bad));
    }

    for (const char* ok : {"app", "ns-app", "ns/app", "My_Repo.1"})
        CHECK(is_valid_repository_dir(ok));
    for (const char* bad :
         {"", ".", "..", "a/../b", "/abs", "a/", ".hidden", "a//b", "a b", "a\\b"}) {
        CHECK_FALSE(is_valid_repository_dir(bad));
    }
    CHECK(slashes_to_dashes("a/b/c") == "a-b-c");
    CHECK(metadata_file_name("ns/app") == "ns-app.json");
}

TEST_CASE("options get their defaults and are checked", "[publish]") {
    Options o;
    o.repo_id = "ns/app";
    o.base_url = "http://h/pub//";
    o.web_dir = "/w/";
    o.metadata_dir = "/m";
    o.tags = {{"latest", "/img"}};
    Options n = normalized(o);
    CHECK(n.repository == "ns-app");
    CHECK(n.base_url == "http://h/pub");
    CHECK(n.web_dir == "/w");

    auto fails = [](Options bad, const std::string& text) {
        CHECK_THROWS_WITH(normalized(bad), Catch::Contains(text));
    };
    Options bad = o;
    bad.repo_id = "NS/App";
    fails(bad, "not a valid Docker repository name");
    bad = o;
    bad.repository = "../escape";
    fails(bad, "Repository directory");
    bad = o;
    bad.tags.push_back({"latest", "/other"});
    fails(bad, "given twice");
    bad = o;
    bad.tags = {};
    fails(bad, "Nothing to publish");
    bad = o;
    bad.tags = {{"a:b", "/img"}};
    fails(bad, "not a valid Docker tag");
    bad = o;
    bad.base_url = "";
    fails(bad, "--base-url");
    bad = o;
    bad.metadata_dir = "";
    fails(bad, "--metadata");
}

// ---- manifests ----

TEST_CASE("a schema2 manifest is parsed with its blobs", "[publish]") {
    TestImage img("amd64");
    ImageManifest m = parse_image_manifest(img.manifest, "m");
    CHECK(m.digest == img.digest);
    CHECK(m.bytes == img.manifest);
    CHECK(m.config.digest == img.config_digest);
    CHECK(m.config.size == static_cast<std::int64_t>(img.config.size()));
    REQUIRE(m.layers.size() == 1);
    CHECK(m.layers[0].digest == img.layer_digest);
    CHECK_FALSE(m.layers[0].foreign);
}

TEST_CASE("schema 1, lists and broken manifests are refused with a reason", "[publish]") {
    CHECK_THROWS_WITH(
        parse_image_manifest(R"({"schemaVersion": 1, "name": "x", "fsLayers": []})", "m"),
        Catch::Contains("Schema 1 images are not published") && Catch::Contains("--format v2s2"));
    CHECK_THROWS_WITH(
        parse_image_manifest(
            R"({"schemaVersion": 2, "mediaType": ")" + LIST + R"(", "manifests": []})", "m"),
        Catch::Contains("m has media type '" + LIST +
                        "', not a Docker schema 2 or OCI image manifest."));
    CHECK_THROWS_WITH(
        parse_image_manifest(R"({"schemaVersion": 2, "mediaType": "text/plain"})", "m"),
        Catch::Contains("'text/plain'"));
    CHECK_THROWS_WITH(
        parse_image_manifest(R"({"schemaVersion": 2, "config": {}, "layers": []})", "m"),
        Catch::Contains("m config: 'digest' is missing"));  // no mediaType: the OCI shape
    CHECK_THROWS_WITH(parse_image_manifest("{not json", "X/manifest.json"),
                      Catch::Contains("X/manifest.json is not valid JSON"));
    CHECK_THROWS_WITH(parse_image_manifest("[]", "m"), Catch::Contains("not a JSON object"));
    const std::string head = R"({"schemaVersion": 2, "mediaType": ")" + S2 + R"(", )";
    const std::string good_config =
        R"("config": {"size": 1, "digest": "sha256:)" + std::string(64, '0') + R"("})";
    CHECK_THROWS_WITH(parse_image_manifest(head + R"("layers": []})", "m"),
                      Catch::Contains("'config' is missing"));
    CHECK_THROWS_WITH(parse_image_manifest(head + good_config + "}", "m"),
                      Catch::Contains("'layers' must be a list"));
    CHECK_THROWS_WITH(
        parse_image_manifest(head + R"("config": {"size": 1, "digest": "md5:abc"}, "layers": []})",
                             "m"),
        Catch::Contains("is not sha256:"));
    CHECK_THROWS_WITH(parse_image_manifest(head + R"("config": {"size": -1, "digest": "sha256:)" +
                                               std::string(64, '0') + R"("}, "layers": []})",
                                           "m"),
                      Catch::Contains("'size' must be a non-negative integer"));
    CHECK_NOTHROW(parse_image_manifest(head + good_config + R"(, "layers": []})", "m"));
}

TEST_CASE("a manifest list is parsed; the amd64 instance prefers linux", "[publish]") {
    TestList l = multi();
    ManifestList list = parse_manifest_list(l.manifest, "l");
    CHECK(list.digest == l.digest);
    REQUIRE(list.instances.size() == 2);
    CHECK(list.instances[1].architecture == "arm64");
    CHECK(list.instances[1].variant == "v8");
    REQUIRE(list.amd64() != nullptr);
    CHECK(list.amd64()->digest == l.images[0].digest);

    const std::string d1 = "sha256:" + std::string(64, '1'), d2 = "sha256:" + std::string(64, '2');
    auto entry = [](const std::string& d, const char* os, const char* arch) {
        return R"({"mediaType": ")" + S2 + R"(", "size": 1, "digest": ")" + d +
               R"(", "platform": {"os": ")" + os + R"(", "architecture": ")" + arch + R"("}})";
    };
    const std::string head =
        R"({"schemaVersion": 2, "mediaType": ")" + LIST + R"(", "manifests": [)";
    ManifestList windows_first = parse_manifest_list(
        head + entry(d1, "windows", "amd64") + ", " + entry(d2, "linux", "amd64") + "]}", "l");
    CHECK(windows_first.amd64()->digest == d2);
    ManifestList no_amd64 = parse_manifest_list(head + entry(d1, "linux", "s390x") + "]}", "l");
    CHECK(no_amd64.amd64() == nullptr);

    CHECK_THROWS_WITH(parse_manifest_list(head + "]}", "l"), Catch::Contains("lists no manifests"));
    CHECK_THROWS_WITH(
        parse_manifest_list(
            head +
                R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": ")" +
                d1 + R"("}]})",
            "l"),
        Catch::Contains("l entry 0 (" + d1 +
                        ") has media type 'application/vnd.oci.image.manifest.v1+json', not a "
                        "Docker schema 2 manifest."));
    CHECK_THROWS_WITH(
        parse_manifest_list(
            R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})",
            "l"),
        Catch::Contains("l lists no manifests."));
}

// ---- the dir: layout ----

TEST_CASE("a single-image dir: layout is read", "[publish]") {
    TempDir t;
    TestImage img("amd64");
    DirImage d = read_dir_image(img.write_dir(t / "img"));
    CHECK_FALSE(d.list);
    REQUIRE(d.manifests.size() == 1);
    CHECK(d.manifests[0].digest == img.digest);
    CHECK(d.blob_files.size() == 2);
    CHECK(d.blob_files.at(img.layer_digest) == t / "img/" + hex(img.layer_digest));
}

TEST_CASE("a manifest-list dir: layout is read with every instance", "[publish]") {
    TempDir t;
    TestList l = multi();
    DirImage d = read_dir_image(l.write_dir(t / "img"));
    REQUIRE(d.list);
    CHECK(d.list->digest == l.digest);
    REQUIRE(d.manifests.size() == 2);
    CHECK(d.manifests[0].digest == l.images[0].digest);
    CHECK(d.manifests[1].digest == l.images[1].digest);
    CHECK(d.blob_files.size() == 4);
}

TEST_CASE("a broken dir: layout is refused with a reason", "[publish]") {
    TempDir t;
    TestList l = multi();
    const std::string dir = l.write_dir(t / "img");
    const std::string arm = dir + "/" + hex(l.images[1].digest) + ".manifest.json";

    SECTION("not a directory") {
        CHECK_THROWS_WITH(read_dir_image(t / "nope"), Catch::Contains("is not a directory"));
    }
    SECTION("no manifest.json") {
        ::unlink((dir + "/manifest.json").c_str());
        CHECK_THROWS_WITH(read_dir_image(dir), Catch::Contains("no manifest.json"));
    }
    SECTION("another transport's version file") {
        write(dir + "/version", "Something Else 2\n");
        CHECK_THROWS_WITH(read_dir_image(dir), Catch::Contains("says 'Something Else 2'"));
    }
    SECTION("an instance missing (copied without --all)") {
        ::unlink(arm.c_str());
        CHECK_THROWS_WITH(read_dir_image(dir),
                          Catch::Contains("is missing") && Catch::Contains("--all"));
    }
    SECTION("an instance manifest that does not match the list's digest") {
        write(arm, l.images[1].manifest + " ");
        CHECK_THROWS_WITH(read_dir_image(dir),
                          Catch::Contains("hashes to") && Catch::Contains(l.images[1].digest));
    }
    SECTION("a blob missing") {
        ::unlink((dir + "/" + hex(l.images[0].layer_digest)).c_str());
        CHECK_THROWS_WITH(
            read_dir_image(dir),
            Catch::Contains("Blob " + l.images[0].layer_digest) && Catch::Contains("is missing"));
    }
}

// ---- plan and metadata ----

TEST_CASE("the plan lays out Pulp's v2 web tree and the version 4 metadata", "[publish]") {
    TempDir t;
    TestImage single("amd64", "single");
    TestList l = multi();
    Options o = normalized(options_for(t, {{"unused", "/unused"}}));
    o.is_protected = true;
    std::vector<std::pair<std::string, DirImage>> images;
    images.emplace_back("1.0", read_dir_image(single.write_dir(t / "single")));
    images.emplace_back("latest", read_dir_image(l.write_dir(t / "multi")));
    images.emplace_back("stable", images.back().second);
    Plan p = make_plan(o, images);

    const std::string amd = l.images[0].digest, arm = l.images[1].digest;
    std::set<std::string> files;
    for (const auto& f : p.files) files.insert(f.first);
    CHECK(files == std::set<std::string>{"manifests/2/1.0", "manifests/2/" + single.digest,
                                         "manifests/2/" + amd, "manifests/2/" + arm,
                                         "manifests/list/latest", "manifests/list/stable",
                                         "manifests/list/" + l.digest, "tags/list"});
    CHECK(p.files.at("manifests/2/1.0") == single.manifest);
    CHECK(p.files.at("manifests/list/stable") == l.manifest);
    CHECK(p.files.at("manifests/2/" + arm) == l.images[1].manifest);
    CHECK(p.files.at("tags/list") == R"({"name": "ns/app", "tags": ["1.0", "latest", "stable"]})");
    CHECK(p.blobs.size() == 6);
    CHECK(p.blobs.at(single.layer_digest).second == static_cast<std::int64_t>(single.layer.size()));

    std::vector<std::string> s2{"1.0", single.digest, amd, arm};
    std::sort(s2.begin(), s2.end());
    std::string s2_json;
    for (const auto& s : s2) s2_json += (s2_json.empty() ? "" : ", ") + ("\"" + s + "\"");
    CHECK(metadata_json(p) ==
          "{\"manifest_list_amd64_tags\": {\"latest\": [\"" + amd + "\", 2], \"stable\": [\"" +
              amd + "\", 2]}, \"manifest_list_data\": [\"latest\", \"" + l.digest +
              "\", \"stable\"], \"oci_index_data\": [], \"oci_manifest_data\": [], "
              "\"protected\": true, \"referrers\": {}, \"repo-registry-id\": \"ns/app\", "
              "\"repository\": "
              "\"ns-app\", \"schema2_data\": [" +
              s2_json +
              "], \"tags\": [\"1.0\", \"latest\", \"stable\"], \"url\": "
              "\"https://cdn.example.com/v2/ns-app/\", \"version\": 4}\n");
}

TEST_CASE("what is published negotiates to files that exist, for every client", "[publish]") {
    TempDir t;
    TestImage single("amd64", "single");
    TestList l = multi();
    Options o = normalized(options_for(t, {{"unused", "/unused"}}));
    std::vector<std::pair<std::string, DirImage>> images;
    images.emplace_back("1.0", read_dir_image(single.write_dir(t / "single")));
    images.emplace_back("latest", read_dir_image(l.write_dir(t / "multi")));
    Plan p = make_plan(o, images);

    crane::MetadataResult md = crane::parse_metadata(metadata_json(p), "ns-app.json");
    REQUIRE(md.error().message.empty());
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->id == "ns/app");
    CHECK(v2_of(md)->repository == "ns-app");
    CHECK(v2_of(md)->url_path == "/v2/ns-app/");

    const std::string list_and_s2 = LIST + ", " + S2;
    struct Row {
        std::string ref, accept, path;
    };
    const Row rows[] = {
        {"1.0", S2, "manifests/2/1.0"},
        {"1.0", list_and_s2, "manifests/2/1.0"},
        {single.digest, S2, "manifests/2/" + single.digest},
        {"latest", list_and_s2, "manifests/list/latest"},
        {"latest", S2, "manifests/2/" + l.images[0].digest},  // a client without lists gets amd64
        {l.digest, list_and_s2, "manifests/list/" + l.digest},
        {l.images[1].digest, list_and_s2, "manifests/2/" + l.images[1].digest},
        {l.images[0].digest, S2, "manifests/2/" + l.images[0].digest},
    };
    for (const auto& row : rows) {
        crane::AcceptSet accept(row.accept);
        crane::ManifestChoice c = negotiate(md, row.ref, accept);
        INFO(row.ref << " with " << row.accept);
        CHECK(c.path == row.path);
        CHECK(p.files.count(c.path) == 1);
    }
}

// ---- copying ----

TEST_CASE("copy_verified copies exact bytes and refuses a digest or size mismatch", "[publish]") {
    TempDir t;
    const std::string data(300000, 'x');
    write(t / "src", data);
    const std::string digest = sha256_digest(data);

    copy_verified(t / "src", t / "ok", digest, static_cast<std::int64_t>(data.size()));
    CHECK(slurp(t / "ok") == data);
    struct stat st {};
    REQUIRE(::stat((t / "ok").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);

    CHECK_THROWS_WITH(copy_verified(t / "src", t / "bad", sha256_digest("other"), -1),
                      Catch::Contains("hashes to " + digest));
    CHECK_FALSE(exists(t / "bad"));
    CHECK_THROWS_WITH(copy_verified(t / "src", t / "short", digest, 5),
                      Catch::Contains("is 300000 bytes, the manifest says 5"));
    CHECK_FALSE(exists(t / "short"));
    CHECK_THROWS_WITH(copy_verified(t / "src", t / "ok", digest, -1),
                      Catch::Contains("Cannot create"));
    CHECK(slurp(t / "ok") == data);
    CHECK_THROWS_WITH(copy_verified(t / "missing", t / "x", digest, -1),
                      Catch::Contains("Cannot read"));
}

// ---- publishing ----

TEST_CASE("publish writes the web tree, then the metadata file", "[publish]") {
    TempDir t;
    TestImage single("amd64", "single");
    Options o = options_for(t, {{"1.0", single.write_dir(t / "single")}});
    Result r = publish(o);
    CHECK(r.repo_dir == t / "web/ns-app");
    CHECK(r.metadata_file == t / "meta/ns-app.json");
    CHECK(r.tags == 1);
    CHECK(r.blobs == 2);
    CHECK(r.manifests == 2);
    CHECK_FALSE(r.replaced);
    CHECK(tree(t / "web") ==
          std::set<std::string>{"ns-app/", "ns-app/blobs/", "ns-app/blobs/" + single.config_digest,
                                "ns-app/blobs/" + single.layer_digest, "ns-app/manifests/",
                                "ns-app/manifests/1/", "ns-app/manifests/2/",
                                "ns-app/manifests/2/1.0", "ns-app/manifests/2/" + single.digest,
                                "ns-app/manifests/list/", "ns-app/manifests/oci/",
                                "ns-app/manifests/oci-index/", "ns-app/tags/", "ns-app/tags/list",
                                ".errors/", ".errors/blob-unknown.json",
                                ".errors/manifest-unknown.json", ".errors/name-unknown.json"});
    CHECK(tree(t / "meta") == std::set<std::string>{"ns-app.json"});
    CHECK(slurp(t / "web/ns-app/blobs/" + single.layer_digest) == single.layer);
    // what a static server answers 404 with, per subtree
    CHECK(slurp(t / "web/.errors/manifest-unknown.json") ==
          R"({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})");
    CHECK(slurp(t / "web/.errors/blob-unknown.json") ==
          R"({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]})");
    CHECK(
        slurp(t / "web/.errors/name-unknown.json") ==
        R"({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]})");
    crane::MetadataResult md = crane::parse_metadata(slurp(r.metadata_file), r.metadata_file);
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->url == "https://cdn.example.com/v2/ns-app/");
    struct stat st {};
    REQUIRE(::stat((t / "web/ns-app").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0755);
    REQUIRE(::stat(r.metadata_file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("republishing replaces the tree and removes stale files", "[publish]") {
    TempDir t;
    TestList l = multi();
    TestImage next("amd64", "next");
    publish(
        options_for(t, {{"latest", l.write_dir(t / "multi")}, {"old", l.write_dir(t / "multi")}}));
    Result r = publish(options_for(t, {{"2.0", next.write_dir(t / "next")}}));
    CHECK(r.replaced);
    std::set<std::string> files = tree(t / "web/ns-app");
    CHECK(files.count("manifests/2/2.0") == 1);
    CHECK(files.count("manifests/list/latest") == 0);
    CHECK(files.count("manifests/2/" + l.images[0].digest) == 0);
    CHECK(files.count("blobs/" + l.images[0].layer_digest) == 0);
    CHECK(files.size() == 13);
    for (const auto& name : tree(t / "web")) {
        CHECK((name.rfind("ns-app/", 0) == 0 || name.rfind(".errors/", 0) == 0));
    }
    CHECK(tree(t / "meta") == std::set<std::string>{"ns-app.json"});
    CHECK(slurp(t / "web/ns-app/tags/list") == R"({"name": "ns/app", "tags": ["2.0"]})");
}

TEST_CASE("a bad blob publishes nothing and keeps the earlier publication", "[publish]") {
    TempDir t;
    TestImage good("amd64", "good");
    publish(options_for(t, {{"1.0", good.write_dir(t / "good")}}));
    const std::set<std::string> web_before = tree(t / "web");
    const std::string meta_before = slurp(t / "meta/ns-app.json");

    TestImage bad("amd64", "bad");
    bad.write_dir(t / "bad");
    write(t / "bad/" + hex(bad.layer_digest),
          "not really a tarball: amd64BAD");  // same size, other bytes
    CHECK_THROWS_WITH(publish(options_for(t, {{"2.0", t / "bad"}})),
                      Catch::Contains("Blob " + bad.layer_digest) && Catch::Contains("hashes to"));
    CHECK(tree(t / "web") == web_before);
    CHECK(slurp(t / "meta/ns-app.json") == meta_before);
    CHECK(tree(t / "meta") == std::set<std::string>{"ns-app.json"});

    // and into an empty web dir: nothing at all
    TempDir fresh;
    CHECK_THROWS(publish(options_for(fresh, {{"2.0", t / "bad"}})));
    CHECK(tree(fresh / "web").empty());
    CHECK(tree(fresh / "meta").empty());
}

TEST_CASE("a tag's error names the tag", "[publish]") {
    TempDir t;
    CHECK_THROWS_WITH(publish(options_for(t, {{"1.0", t / "nope"}})),
                      Catch::StartsWith("Tag '1.0': ") && Catch::Contains("is not a directory"));
}

TEST_CASE("publish refuses to replace what it did not publish", "[publish]") {
    TempDir t;
    TestImage img("amd64");
    Options o = options_for(t, {{"1.0", img.write_dir(t / "img")}});
    ::mkdir((t / "web/ns-app").c_str(), 0755);
    write(t / "web/ns-app/precious.txt", "keep me");
    CHECK_THROWS_WITH(publish(o), Catch::Contains("Refusing to replace"));
    CHECK(slurp(t / "web/ns-app/precious.txt") == "keep me");
    CHECK(tree(t / "meta").empty());

    // an empty directory is fine
    ::unlink((t / "web/ns-app/precious.txt").c_str());
    CHECK(publish(o).replaced);
}

TEST_CASE("publish refuses a metadata file of another repository", "[publish]") {
    TempDir t;
    TestImage img("amd64");
    Options o = options_for(t, {{"1.0", img.write_dir(t / "img")}});
    o.repo_id = "ns-app";  // the same file name as ns/app
    publish(o);
    o.repo_id = "ns/app";
    o.repository = "other";
    CHECK_THROWS_WITH(publish(o), Catch::Contains("holds repository 'ns-app'"));
    CHECK_FALSE(exists(t / "web/other"));
}

TEST_CASE("a repository directory with a slash is published below the web dir", "[publish]") {
    TempDir t;
    TestImage img("amd64");
    Options o = options_for(t, {{"1.0", img.write_dir(t / "img")}});
    o.repository = "ns/app";
    Result r = publish(o);
    CHECK(r.repo_dir == t / "web/ns/app");
    CHECK(exists(t / "web/ns/app/manifests/2/1.0"));
    crane::MetadataResult md = crane::parse_metadata(slurp(r.metadata_file), r.metadata_file);
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->url == "https://cdn.example.com/v2/ns/app/");
    CHECK(v2_of(md)->repository == "ns/app");
}

TEST_CASE("publish clears what a killed run for the same repository left behind", "[publish]") {
    TempDir t;
    TestImage img("amd64");
    Options o = options_for(t, {{"1.0", img.write_dir(t / "img")}});
    for (const char* d :
         {"web/.crane-publish.ns-app.abc123", "web/.crane-publish-old.ns-app.xyz789",
          "web/.crane-publish.ns-app2.abc123"}) {
        REQUIRE(::mkdir((t / d).c_str(), 0755) == 0);
        write(t / d + "/file", "x");
    }
    write(t / "meta/.ns-app.json.tmp.abc123", "{");
    write(t / "meta/.other.json.tmp.abc123", "{");
    publish(o);
    CHECK_FALSE(exists(t / "web/.crane-publish.ns-app.abc123"));
    CHECK_FALSE(exists(t / "web/.crane-publish-old.ns-app.xyz789"));
    CHECK(exists(t / "web/.crane-publish.ns-app2.abc123/file"));  // another repository's
    CHECK(tree(t / "meta") == std::set<std::string>{".other.json.tmp.abc123", "ns-app.json"});
}

TEST_CASE("concurrent publications of one repository never mix", "[publish]") {
    TempDir t;
    TestImage a("amd64", "a"), b("amd64", "b");
    const std::string da = a.write_dir(t / "a"), db = b.write_dir(t / "b");
    for (int round = 0; round < 3; ++round) {
        std::string errors;
        std::mutex m;
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([&, i] {
                try {
                    publish(options_for(t, {{i % 2 ? "b" : "a", i % 2 ? db : da}}));
                } catch (const std::exception& e) {
                    std::lock_guard<std::mutex> g(m);
                    errors += e.what();
                }
            });
        }
        for (auto& th : threads) th.join();
        CHECK(errors.empty());
        crane::MetadataResult md = crane::parse_metadata(slurp(t / "meta/ns-app.json"), "x");
        REQUIRE(v2_of(md));
        REQUIRE(v2_of(md)->schema2_data.size() == 2);
        const std::string tag =
            v2_of(md)->schema2_data[0] == "a" || v2_of(md)->schema2_data[1] == "a" ? "a" : "b";
        CHECK(slurp(t / "web/ns-app/tags/list") ==
              R"({"name": "ns/app", "tags": [")" + tag + R"("]})");
        CHECK(tree(t / "web/ns-app").size() == 13);
        for (const auto& name : tree(t / "web")) {
            CHECK((name.rfind("ns-app/", 0) == 0 || name.rfind(".errors/", 0) == 0));
        }
    }
}

// ---- OCI ----

TEST_CASE("an OCI image manifest is parsed with its subject, artifactType and annotations",
          "[publish][oci]") {
    OciImage img("amd64", "x");
    ImageManifest m = parse_image_manifest(img.manifest, "m");
    CHECK(m.is_oci());
    CHECK(m.media_type == OCI_MAN);
    CHECK(m.digest == img.digest);
    CHECK(m.bytes == img.manifest);
    CHECK(m.config.media_type == OCI_CONFIG);
    REQUIRE(m.layers.size() == 1);
    CHECK(m.layers[0].digest == sha256_digest(img.layer));
    CHECK(m.subject.empty());
    CHECK(m.artifact_type == OCI_CONFIG);  // no artifactType: the config's type
    CHECK(m.annotations.empty());

    OciImage sbom("amd64", "s", img.digest, img.manifest);
    ImageManifest a = parse_image_manifest(sbom.manifest, "a");
    CHECK(a.subject == img.digest);
    CHECK(a.artifact_type == "application/vnd.example.sbom");
    CHECK(a.annotations == std::vector<std::pair<std::string, std::string>>{
                               {"org.example.kind", "sbom"}, {"org.example.seed", "s"}});

    const std::string head = R"({"schemaVersion": 2, "mediaType": ")" + OCI_MAN +
                             R"(", "config": )" + descriptor(OCI_CONFIG, "{}") +
                             R"(, "layers": [])";
    CHECK_NOTHROW(parse_image_manifest(head + "}", "m"));
    CHECK_THROWS_WITH(parse_image_manifest(head + R"(, "subject": "sha256:x"})", "m"),
                      Catch::Contains("m: 'subject' must be an object."));
    CHECK_THROWS_WITH(
        parse_image_manifest(head + R"(, "subject": {"digest": "sha256:x", "size": 1}})", "m"),
        Catch::Contains("m subject: digest 'sha256:x' is not sha256:"));
    CHECK_THROWS_WITH(parse_image_manifest(head + R"(, "annotations": {"a": 1}})", "m"),
                      Catch::Contains("m: annotation 'a' must be a string."));
    CHECK_THROWS_WITH(
        parse_image_manifest(R"({"schemaVersion": 1, "mediaType": ")" + OCI_MAN + R"("})", "m"),
        Catch::Contains("m: 'schemaVersion' must be 2."));
}

TEST_CASE("an OCI index is parsed; nested indexes and Docker entries are refused",
          "[publish][oci]") {
    OciIndex idx({OciImage("amd64", "i"), OciImage("arm64", "i")});
    ManifestList list = parse_manifest_list(idx.manifest, "x");
    CHECK(list.is_oci());
    CHECK(list.digest == idx.digest);
    REQUIRE(list.instances.size() == 2);
    CHECK(list.instances[1].architecture == "arm64");
    CHECK(list.instances[1].media_type == OCI_MAN);

    const std::string head =
        R"({"schemaVersion": 2, "mediaType": ")" + OCI_INDEX + R"(", "manifests": [)";
    CHECK_THROWS_WITH(parse_manifest_list(head + descriptor(OCI_INDEX, idx.manifest) + "]}", "x"),
                      Catch::Contains("x entry 0 (" + idx.digest + ") has media type '" +
                                      OCI_INDEX + "', not an OCI image manifest (nested indexes"));
    CHECK_THROWS_WITH(parse_manifest_list(head + descriptor(S2, "m") + "]}", "x"),
                      Catch::Contains("not an OCI image manifest"));
}

TEST_CASE("OCI images in skopeo's dir: layout are published unchanged", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "one");
    OciIndex idx({OciImage("amd64", "multi"), OciImage("arm64", "multi")});
    TestImage docker("amd64", "docker");
    Options o = normalized(options_for(t, {{"unused", "/unused"}}));
    std::vector<std::pair<std::string, DirImage>> images;
    images.emplace_back("2.0", read_image(single.write_dir(t / "single")));
    images.emplace_back("multi", read_image("dir:" + idx.write_dir(t / "idx")));
    images.emplace_back("docker", read_image(docker.write_dir(t / "docker")));
    Plan p = make_plan(o, images);

    const std::string amd = idx.images[0].digest, arm = idx.images[1].digest;
    std::set<std::string> files;
    for (const auto& f : p.files) files.insert(f.first);
    CHECK(files ==
          std::set<std::string>{"manifests/oci/2.0", "manifests/oci/" + single.digest,
                                "manifests/oci-index/multi", "manifests/oci-index/" + idx.digest,
                                "manifests/oci/" + amd, "manifests/oci/" + arm,
                                "manifests/2/docker", "manifests/2/" + docker.digest, "tags/list"});
    // the exact bytes: the digests clients see are the source's
    CHECK(p.files.at("manifests/oci/2.0") == single.manifest);
    CHECK(sha256_digest(p.files.at("manifests/oci-index/multi")) == idx.digest);
    CHECK(p.files.at("manifests/oci/" + arm) == idx.images[1].manifest);
    CHECK(p.blobs.size() == 8);
    CHECK(p.amd64_tags.empty());  // an OCI index has no schema 2 fallback
    CHECK(p.tags == std::vector<std::string>{"2.0", "docker", "multi"});
    std::vector<std::string> oci{"2.0", single.digest, amd, arm};
    std::sort(oci.begin(), oci.end());
    CHECK(p.oci_manifest_data == oci);
    std::vector<std::string> index{idx.digest, "multi"};
    std::sort(index.begin(), index.end());
    CHECK(p.oci_index_data == index);
    std::vector<std::string> s2{"docker", docker.digest};
    std::sort(s2.begin(), s2.end());
    CHECK(p.schema2_data == s2);

    // mod_crane reads it back and every client's request lands on a file
    crane::MetadataResult md = crane::parse_metadata(metadata_json(p), "ns-app.json");
    REQUIRE(md.error().message.empty());
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->has_tags);
    CHECK(v2_of(md)->tags == p.tags);
    CHECK(v2_of(md)->in_oci_index("multi"));
    CHECK(v2_of(md)->in_oci_manifest(arm));
    CHECK(v2_of(md)->in_oci_manifest("2.0"));
    CHECK_FALSE(v2_of(md)->in_schema2("2.0"));
    CHECK(v2_of(md)->in_schema2("docker"));
}

TEST_CASE("an OCI image layout is read by ref name, with its artifacts", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "lay");
    OciIndex idx({OciImage("amd64", "lidx"), OciImage("arm64", "lidx")});
    OciImage sbom("amd64", "s1", single.digest, single.manifest);
    std::vector<std::string> blobs{single.manifest, single.config, single.layer, idx.manifest,
                                   sbom.manifest,   sbom.config,   sbom.layer};
    for (const auto& i : idx.images) {
        blobs.insert(blobs.end(), {i.manifest, i.config, i.layer});
    }
    const std::string dir = write_oci_layout(
        t / "layout",
        {descriptor(OCI_MAN, single.manifest, named("1.0")),
         descriptor(OCI_INDEX, idx.manifest, named("multi")), descriptor(OCI_MAN, sbom.manifest)},
        blobs);

    DirImage one = read_image("oci:" + dir + ":1.0");
    CHECK_FALSE(one.list);
    REQUIRE(one.manifests.size() == 1);
    CHECK(one.manifests[0].digest == single.digest);
    CHECK(one.blob_files.at(sha256_digest(single.layer)) ==
          dir + "/blobs/sha256/" + hex(sha256_digest(single.layer)));
    REQUIRE(one.artifacts.size() == 1);
    CHECK(one.artifacts[0].digest == sbom.digest);
    CHECK(one.blob_files.count(sha256_digest(sbom.layer)) == 1);

    DirImage multi_image = read_oci_layout(dir, "multi");
    REQUIRE(multi_image.list);
    CHECK(multi_image.list->digest == idx.digest);
    REQUIRE(multi_image.manifests.size() == 2);
    CHECK(multi_image.manifests[1].digest == idx.images[1].digest);

    SECTION("without a ref, a layout with two images is ambiguous") {
        CHECK_THROWS_WITH(
            read_image("oci:" + dir),
            Catch::Contains(dir + " holds more than one image; choose one with oci:"));
        CHECK_THROWS_WITH(read_image(dir), Catch::Contains("holds more than one image"));
    }
    SECTION("an unknown ref names the known ones") {
        CHECK_THROWS_WITH(
            read_image("oci:" + dir + ":nope"),
            Catch::Contains(dir + " holds no image named 'nope' (names: '1.0', 'multi')."));
    }
    SECTION("without a ref, the only image (artifacts do not count)") {
        const std::string solo = write_oci_layout(
            t / "solo",
            {descriptor(OCI_MAN, sbom.manifest), descriptor(OCI_MAN, single.manifest, named("x"))},
            blobs);
        CHECK(read_image(solo).manifests.at(0).digest == single.digest);
        CHECK(read_image("oci:" + solo).artifacts.size() == 1);
    }
    SECTION("a manifest blob that does not match index.json") {
        write(dir + "/blobs/sha256/" + hex(single.digest), single.manifest + " ");
        CHECK_THROWS_WITH(
            read_image("oci:" + dir + ":multi"),
            Catch::Contains("hashes to") && Catch::Contains("not to " + single.digest));
    }
    SECTION("an instance missing") {
        ::unlink((dir + "/blobs/sha256/" + hex(idx.images[0].digest)).c_str());
        CHECK_THROWS_WITH(read_image("oci:" + dir + ":multi"),
                          Catch::Contains("the amd64 instance " + idx.images[0].digest) &&
                              Catch::Contains("is missing"));
    }
    SECTION("a layer missing") {
        ::unlink((dir + "/blobs/sha256/" + hex(sha256_digest(single.layer))).c_str());
        CHECK_THROWS_WITH(read_image("oci:" + dir + ":1.0"),
                          Catch::Contains("Blob " + sha256_digest(single.layer)) &&
                              Catch::Contains("is missing"));
    }
    SECTION("not a layout") {
        ::unlink((dir + "/oci-layout").c_str());
        CHECK_THROWS_WITH(read_image("oci:" + dir + ":1.0"),
                          Catch::Contains("is not an OCI image layout (no oci-layout file)"));
        write(dir + "/oci-layout", R"({"imageLayoutVersion": "2.0.0"})");
        CHECK_THROWS_WITH(read_image("oci:" + dir + ":1.0"),
                          Catch::Contains("imageLayoutVersion is '2.0.0', not '1.0.0'"));
    }
    SECTION("a schema 1 entry") {
        const std::string s1 = R"({"schemaVersion": 1, "name": "x", "fsLayers": []})";
        const std::string bad = write_oci_layout(
            t / "s1", {descriptor(std::string(kMediaSchema1Signed), s1, named("old"))}, {s1});
        CHECK_THROWS_WITH(read_image("oci:" + bad + ":old"),
                          Catch::Contains("not an image manifest, list or index"));
    }
    CHECK_THROWS_WITH(read_image("oci::x"), Catch::Contains("names no directory"));
}

TEST_CASE("artifacts whose subject is published become referrers", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "ref");
    OciIndex idx({OciImage("amd64", "ri"), OciImage("arm64", "ri")});
    OciImage sbom("amd64", "s1", single.digest, single.manifest);
    OciImage sig_of_sbom("amd64", "sig", sbom.digest, sbom.manifest);  // an artifact about one
    OciImage about_arm("amd64", "arm", idx.images[1].digest, idx.images[1].manifest);
    OciImage stranger("amd64", "x", sha256_digest("unpublished"), "unpublished");
    std::vector<std::string> blobs{single.manifest, single.config, single.layer, idx.manifest};
    for (const auto& i : idx.images) blobs.insert(blobs.end(), {i.manifest, i.config, i.layer});
    for (const auto* a : {&sbom, &sig_of_sbom, &about_arm, &stranger}) {
        blobs.insert(blobs.end(), {a->manifest, a->config, a->layer});
    }
    const std::string dir = write_oci_layout(
        t / "layout",
        {descriptor(OCI_MAN, single.manifest, named("1.0")),
         descriptor(OCI_INDEX, idx.manifest, named("multi")), descriptor(OCI_MAN, sbom.manifest),
         descriptor(OCI_MAN, sig_of_sbom.manifest), descriptor(OCI_MAN, about_arm.manifest),
         descriptor(OCI_MAN, stranger.manifest)},
        blobs);
    Options o =
        options_for(t, {{"1.0", "oci:" + dir + ":1.0"}, {"multi", "oci:" + dir + ":multi"}});
    Plan p = make_plan(normalized(o), {{"1.0", read_image("oci:" + dir + ":1.0")},
                                       {"multi", read_image("oci:" + dir + ":multi")}});

    CHECK(p.files.count("manifests/oci/" + sbom.digest) == 1);
    CHECK(p.files.count("manifests/oci/" + sig_of_sbom.digest) == 1);
    CHECK(p.files.count("manifests/oci/" + about_arm.digest) == 1);
    CHECK(p.files.count("manifests/oci/" + stranger.digest) == 0);
    CHECK(p.blobs.count(sha256_digest(sbom.layer)) == 1);
    CHECK(p.blobs.count(sha256_digest(stranger.layer)) == 0);
    CHECK(std::count(p.oci_manifest_data.begin(), p.oci_manifest_data.end(), sbom.digest) == 1);
    // artifacts are not tagged; each subject gets its referrers tag
    std::vector<std::string> tags{"1.0", "multi", referrers_tag(single.digest),
                                  referrers_tag(sbom.digest), referrers_tag(idx.images[1].digest)};
    std::sort(tags.begin(), tags.end());
    CHECK(p.tags == tags);
    REQUIRE(p.referrers.size() == 3);
    REQUIRE(p.referrers.at(single.digest).size() == 1);
    const auto& d = p.referrers.at(single.digest)[0];
    CHECK(d.media_type == OCI_MAN);
    CHECK(d.digest == sbom.digest);
    CHECK(d.size == static_cast<std::int64_t>(sbom.manifest.size()));
    CHECK(d.artifact_type == "application/vnd.example.sbom");
    CHECK(p.referrers.at(sbom.digest).at(0).digest == sig_of_sbom.digest);
    CHECK(p.referrers.at(idx.images[1].digest).at(0).digest == about_arm.digest);

    // the metadata entry, exactly, and mod_crane reads it back
    const std::string json = metadata_json(p);
    CHECK(json.find("\"" + single.digest +
                    "\": [{\"annotations\": {\"org.example.kind\": \"sbom\", "
                    "\"org.example.seed\": \"s1\"}, \"artifactType\": "
                    "\"application/vnd.example.sbom\", \"digest\": \"" +
                    sbom.digest + "\", \"mediaType\": \"" + OCI_MAN + "\", \"size\": " +
                    std::to_string(sbom.manifest.size()) + "}]") != std::string::npos);
    crane::MetadataResult md = crane::parse_metadata(json, "ns-app.json");
    REQUIRE(md.error().message.empty());
    REQUIRE(v2_of(md));
    const auto* refs = v2_of(md)->find_referrers(single.digest);
    REQUIRE(refs);
    REQUIRE(refs->size() == 1);
    CHECK((*refs)[0].digest == sbom.digest);
    CHECK((*refs)[0].artifact_type == "application/vnd.example.sbom");
    CHECK((*refs)[0].annotations.size() == 2);
    CHECK_FALSE(v2_of(md)->find_referrers(sha256_digest("unpublished")));

    SECTION("an artifact's blob missing refuses the publication") {
        ::unlink((dir + "/blobs/sha256/" + hex(sha256_digest(sbom.layer))).c_str());
        CHECK_THROWS_WITH(make_plan(normalized(o), {{"1.0", read_image("oci:" + dir + ":1.0")}}),
                          Catch::Contains("Blob " + sha256_digest(sbom.layer) + " of manifest " +
                                          sbom.digest + " is missing from " + dir + "."));
    }
}

TEST_CASE("publish writes an OCI layout's images and referrers atomically", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "pub");
    OciImage sbom("amd64", "p1", single.digest, single.manifest);
    const std::string dir = write_oci_layout(
        t / "layout",
        {descriptor(OCI_MAN, single.manifest, named("v1")), descriptor(OCI_MAN, sbom.manifest)},
        {single.manifest, single.config, single.layer, sbom.manifest, sbom.config, sbom.layer});
    Result r = publish(options_for(t, {{"v1", "oci:" + dir + ":v1"}, {"latest", dir}}));
    CHECK(r.tags == 3);  // and the referrers tag of the image
    CHECK(r.blobs == 4);
    // v1, latest, the image's digest, the SBOM's, the referrers index's tag and digest
    CHECK(r.manifests == 6);
    CHECK(r.referrers == 1);
    CHECK(slurp(t / "web/ns-app/manifests/oci/v1") == single.manifest);
    CHECK(slurp(t / "web/ns-app/manifests/oci/latest") == single.manifest);
    CHECK(slurp(t / "web/ns-app/manifests/oci/" + single.digest) == single.manifest);
    CHECK(slurp(t / "web/ns-app/manifests/oci/" + sbom.digest) == sbom.manifest);
    CHECK(slurp(t / "web/ns-app/blobs/" + sha256_digest(sbom.layer)) == sbom.layer);
    crane::MetadataResult md = crane::parse_metadata(slurp(r.metadata_file), r.metadata_file);
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->tags ==
          std::vector<std::string>{"latest", referrers_tag(single.digest), "v1"});
    REQUIRE(v2_of(md)->find_referrers(single.digest));
    const std::string fallback =
        slurp(t / "web/ns-app/manifests/oci-index/" + referrers_tag(single.digest));
    CHECK(fallback == referrers_index_json(*v2_of(md)->find_referrers(single.digest)));
    CHECK(slurp(t / "web/ns-app/manifests/oci-index/" + sha256_digest(fallback)) == fallback);

    SECTION("a corrupt layer publishes nothing") {
        const std::set<std::string> before = tree(t / "web");
        const std::string meta_before = slurp(r.metadata_file);
        write(dir + "/blobs/sha256/" + hex(sha256_digest(single.layer)), single.layer + "!");
        CHECK_THROWS_WITH(publish(options_for(t, {{"v2", "oci:" + dir + ":v1"}})),
                          Catch::Contains("Blob " + sha256_digest(single.layer)));
        CHECK(tree(t / "web") == before);
        CHECK(slurp(r.metadata_file) == meta_before);
    }
}
TEST_CASE("what is published as OCI negotiates to files that exist", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "neg");
    OciIndex idx({OciImage("amd64", "negi"), OciImage("arm64", "negi")});
    Options o = normalized(options_for(t, {{"unused", "/unused"}}));
    std::vector<std::pair<std::string, DirImage>> images;
    images.emplace_back("1.0", read_image(single.write_dir(t / "single")));
    images.emplace_back("latest", read_image(idx.write_dir(t / "idx")));
    Plan p = make_plan(o, images);
    crane::MetadataResult md = crane::parse_metadata(metadata_json(p), "ns-app.json");
    REQUIRE(v2_of(md));
    const std::string all = OCI_INDEX + ", " + OCI_MAN + ", " + LIST + ", " + S2;
    struct Row {
        std::string ref, accept, path;
    };
    const Row rows[] = {
        {"1.0", all, "manifests/oci/1.0"},
        {"1.0", OCI_MAN, "manifests/oci/1.0"},
        {single.digest, S2, "manifests/oci/" + single.digest},
        {"latest", all, "manifests/oci-index/latest"},
        {idx.digest, S2, "manifests/oci-index/" + idx.digest},
        {idx.images[1].digest, all, "manifests/oci/" + idx.images[1].digest},
    };
    for (const auto& row : rows) {
        crane::AcceptSet accept(row.accept);
        crane::ManifestChoice c = negotiate(md, row.ref, accept);
        INFO(row.ref << " with " << row.accept);
        CHECK(c.path == row.path);
        CHECK(p.files.count(c.path) == 1);
    }
}

TEST_CASE("OCI inputs that do not add up are refused with a reason", "[publish][oci]") {
    TempDir t;
    OciImage a("amd64", "a"), b("amd64", "b");
    SECTION("an index instance whose file is a Docker manifest") {
        OciIndex idx({a});
        const std::string dir = idx.write_dir(t / "idx");
        TestImage docker("amd64");
        // the list entry names the Docker bytes' digest and size as an OCI manifest
        std::string manifest = R"({"schemaVersion": 2, "mediaType": ")" + OCI_INDEX +
                               R"(", "manifests": [)" + descriptor(OCI_MAN, docker.manifest) + "]}";
        write(dir + "/manifest.json", manifest);
        write(dir + "/" + hex(docker.digest) + ".manifest.json", docker.manifest);
        CHECK_THROWS_WITH(read_image(dir), Catch::Contains("is a '" + S2 + "', not a '" + OCI_MAN +
                                                           "' as its list entry says."));
    }
    SECTION("an index instance of the wrong size") {
        OciIndex idx({a});
        const std::string dir = idx.write_dir(t / "idx");
        std::string manifest = idx.manifest;
        const std::string size = std::to_string(a.manifest.size());
        manifest.replace(manifest.find(R"("size": )" + size), 8 + size.size(), R"("size": 1)");
        write(dir + "/manifest.json", manifest);
        CHECK_THROWS_WITH(read_image(dir), Catch::Contains(" bytes, the manifest list says 1."));
    }
    SECTION("two images under one name") {
        const std::string dir =
            write_oci_layout(t / "two",
                             {descriptor(OCI_MAN, a.manifest, named("x")),
                              descriptor(OCI_MAN, b.manifest, named("x"))},
                             {a.manifest, a.config, a.layer, b.manifest, b.config, b.layer});
        CHECK_THROWS_WITH(read_image("oci:" + dir + ":x"),
                          Catch::Contains(dir + " holds more than one image named 'x'"));
    }
    SECTION("an index.json that is not an index") {
        const std::string dir = write_oci_layout(t / "bad", {}, {});
        write(dir + "/index.json", R"({"schemaVersion": 2})");
        CHECK_THROWS_WITH(read_image("oci:" + dir), Catch::Contains("'manifests' must be a list."));
        ::unlink((dir + "/index.json").c_str());
        CHECK_THROWS_WITH(read_image("oci:" + dir), Catch::Contains("(no index.json)"));
    }
    SECTION("an empty layout") {
        const std::string dir = write_oci_layout(t / "empty", {}, {});
        CHECK_THROWS_WITH(read_image(dir), Catch::Contains(dir + " holds no image."));
    }
}

TEST_CASE("each subject with referrers gets the referrers tag schema's index", "[publish][oci]") {
    TempDir t;
    OciImage single("amd64", "fallback");
    OciImage sbom("amd64", "f1", single.digest, single.manifest);
    OciImage sig("amd64", "f2", single.digest, single.manifest);
    OciImage lone("amd64", "lone");
    const std::string dir = write_oci_layout(
        t / "layout",
        {descriptor(OCI_MAN, single.manifest, named("1.0")),
         descriptor(OCI_MAN, lone.manifest, named("lone")), descriptor(OCI_MAN, sbom.manifest),
         descriptor(OCI_MAN, sig.manifest)},
        {single.manifest, single.config, single.layer, lone.manifest, lone.config, lone.layer,
         sbom.manifest, sbom.config, sbom.layer, sig.manifest, sig.config, sig.layer});

    const std::string hex_of_subject = hex(single.digest);
    CHECK(referrers_tag(single.digest) == "sha256-" + hex_of_subject);
    CHECK(is_tag(referrers_tag(single.digest)));
    CHECK(
        referrers_index_json({}) ==
        R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})");
    Referrer r;
    r.media_type = OCI_MAN;
    r.digest = sbom.digest;
    r.size = 7;
    r.artifact_type = "application/spdx+json";
    r.annotations = {{"a", "1"}, {"b", "2"}};
    Referrer bare;
    bare.media_type = OCI_MAN;
    bare.digest = sig.digest;
    bare.size = 9;
    CHECK(
        referrers_index_json({r, bare}) ==
        R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [)"
        R"({"mediaType": ")" +
            OCI_MAN + R"(", "digest": ")" + sbom.digest +
            R"(", "size": 7, "artifactType": "application/spdx+json", "annotations": {"a": "1", "b": "2"}}, )"
            R"({"mediaType": ")" +
            OCI_MAN + R"(", "digest": ")" + sig.digest + R"(", "size": 9}]})");

    Options o = options_for(t, {{"1.0", "oci:" + dir + ":1.0"}, {"lone", "oci:" + dir + ":lone"}});
    Plan p = make_plan(normalized(o), {{"1.0", read_image("oci:" + dir + ":1.0")},
                                       {"lone", read_image("oci:" + dir + ":lone")}});
    const std::string tag = "sha256-" + hex_of_subject;
    CHECK(p.tags ==
          std::vector<std::string>{"1.0", "lone", tag});  // none for the image without referrers
    REQUIRE(p.files.count("manifests/oci-index/" + tag) == 1);
    const std::string index = p.files.at("manifests/oci-index/" + tag);
    CHECK(index == referrers_index_json(p.referrers.at(single.digest)));
    CHECK(p.files.at("manifests/oci-index/" + sha256_digest(index)) == index);
    CHECK(std::count(p.oci_index_data.begin(), p.oci_index_data.end(), tag) == 1);
    CHECK(std::count(p.oci_index_data.begin(), p.oci_index_data.end(), sha256_digest(index)) == 1);
    rapidjson::Document doc;
    doc.Parse(index.data(), index.size());
    REQUIRE(doc.IsObject());
    REQUIRE(doc["manifests"].Size() == 2);
    std::set<std::string> listed{doc["manifests"][0]["digest"].GetString(),
                                 doc["manifests"][1]["digest"].GetString()};
    CHECK(listed == std::set<std::string>{sbom.digest, sig.digest});
    CHECK(p.files.at("tags/list") == tags_list_json("ns/app", {"1.0", "lone", tag}));
    // mod_crane reads the index back as the tag's OCI index
    crane::MetadataResult md = crane::parse_metadata(metadata_json(p), "ns-app.json");
    REQUIRE(v2_of(md));
    CHECK(v2_of(md)->tags == p.tags);

    SECTION("a tag of that name given on the command line wins") {
        Options given =
            options_for(t, {{"1.0", "oci:" + dir + ":1.0"}, {tag, "oci:" + dir + ":lone"}});
        Plan q = make_plan(normalized(given), {{"1.0", read_image("oci:" + dir + ":1.0")},
                                               {tag, read_image("oci:" + dir + ":lone")}});
        CHECK(q.tags == std::vector<std::string>{"1.0", tag});
        CHECK(q.files.count("manifests/oci-index/" + tag) == 0);
        CHECK(q.files.at("manifests/oci/" + tag) == lone.manifest);
    }
}
