// The index snapshot (crane/snapshot.h): every field of every record reads
// back through the views as parsed, duplicates resolve as Index::build did,
// carried records re-encode to the same views, and damaged images are
// refused with the reason.
#include <catch2/catch.hpp>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "reference_index.h"
#include "crane/metadata.h"
#include "crane/snapshot.h"
#include "index/snapshot_format.h"  // snapshot_checksum, seal_snapshot

using namespace crane;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<ParsedRepo> data_dir_records() {
    std::vector<ParsedRepo> out;
    std::vector<fs::path> paths;
    for (const auto& e : fs::recursive_directory_iterator(std::string(CRANE_TEST_DATA) + "/metadata")) {
        if (e.is_regular_file() && e.path().extension() == ".json") paths.push_back(e.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
        auto r = parse_metadata(read_file(p), p.string());
        if (r) out.push_back(*r);
    }
    return out;
}

std::string hex64(std::mt19937_64& rng) {
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 64; ++i) s.push_back(kHex[rng() & 15]);
    return s;
}

// Zero-padded, so that path order is generation order (the store parses
// files in path order: its records lie in memory in that order too).
std::string padded(int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06d", i);
    return buf;
}

// Records shaped like bench/gen_metadata.py's v4_doc / v1_doc (built
// directly: parsing 100k documents would dominate the benchmark).
std::shared_ptr<V2Repo> gen_v4(int i, std::mt19937_64& rng, const std::string& dir) {
    auto r = std::make_shared<V2Repo>();
    r->id = "rhel7/httpd-tools-" + padded(i);
    r->repository = "rhel7-httpd-tools-" + padded(i);
    r->url = "https://cdn.example.com/content/dist/rhel/server/7/7Server/x86_64/containers/v2/" + r->repository + "/";
    r->url_path = r->url.substr(std::strlen("https://cdn.example.com"));
    r->version = 4;
    r->is_protected = i % 50 == 0;
    r->source_path = dir + "/" + r->repository + ".json";
    r->has_schema2_fields = true;
    const int ntags = 17 + static_cast<int>(rng() % 7);
    std::vector<std::string> tags{"latest"};
    for (int k = 0; k < ntags - 1; ++k) {
        tags.push_back(k % 3 == 2 ? "7.9-" + std::to_string(1 + k / 3) + "." + std::to_string(1 + rng() % 39)
                                  : "7.9." + std::to_string(k / 3) + "-" + std::to_string(1 + rng() % 199));
    }
    std::sort(tags.begin(), tags.end());
    tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
    for (std::size_t k = 0; k < tags.size(); ++k) {
        r->schema2_data.push_back(tags[k]);
        r->schema2_data.push_back("sha256:" + hex64(rng));
        if (k % 4 == 0) {
            r->manifest_list_data.push_back(tags[k]);
            r->manifest_list_data.push_back("sha256:" + hex64(rng));
            r->manifest_list_amd64_tags.push_back({tags[k], "sha256:" + hex64(rng), k % 8 == 0 ? 2 : 1});
        }
    }
    std::sort(r->schema2_data.begin(), r->schema2_data.end());
    std::sort(r->manifest_list_data.begin(), r->manifest_list_data.end());
    return r;
}

std::shared_ptr<V1Repo> gen_v1(int i, std::mt19937_64& rng, const std::string& dir) {
    auto r = std::make_shared<V1Repo>();
    r->id = "rhel7/httpd-tools-" + padded(i) + "-v1";
    r->repository = "rhel7-httpd-tools-" + padded(i) + "-v1";
    r->url = "https://cdn.example.com/content/dist/rhel/server/7/7Server/x86_64/containers/v1/" + r->repository + "/";
    r->url_path = r->url.substr(std::strlen("https://cdn.example.com"));
    r->version = 1;
    r->source_path = dir + "/" + r->repository + ".json";
    const int ntags = 20;
    std::mt19937_64 family(static_cast<unsigned>(i % 7));  // image ids shared within a family
    r->images_json = "[";
    for (int k = 0; k < ntags + 2; ++k) {
        r->image_ids.push_back(hex64(family));
        r->images_json += std::string(k ? ", " : "") + "{\"id\": \"" + r->image_ids.back() + "\"}";
    }
    r->images_json += "]";
    r->tags_json = "{";
    for (int k = 0; k < ntags; ++k) {
        r->tags.emplace_back("7.9." + std::to_string(k) + "-" + std::to_string(rng() % 199), r->image_ids[k]);
    }
    std::sort(r->tags.begin(), r->tags.end());
    r->tags.erase(std::unique(r->tags.begin(), r->tags.end(),
                              [](const auto& a, const auto& b) { return a.first == b.first; }),
                  r->tags.end());
    for (const auto& [t, img] : r->tags) {
        r->tags_json += std::string(r->tags_json.size() > 1 ? ", " : "") + "\"" + t + "\": \"" + img + "\"";
    }
    r->tags_json += "}";
    return r;
}

std::vector<ParsedRepo> gen_repos(int n, unsigned seed, const std::string& dir = "/srv/crane") {
    std::mt19937_64 rng(seed);
    std::vector<ParsedRepo> out(n);
    for (int i = 0; i < n; ++i) {
        if (i % 20 == 19) {
            out[i].v1 = gen_v1(i, rng, dir);
        } else {
            out[i].v2 = gen_v4(i, rng, dir);
        }
    }
    return out;
}

// A version 4 record with every extension (oci data, tags, referrers,
// non-sha256 digests), read back through the metadata writer and parser.
ParsedRepo extension_repo() {
    V2Repo r;
    r.id = "ext/all";
    r.url = "http://cdn.example.com/pulp/ext/";
    r.version = 4;
    r.has_schema2_fields = true;
    const std::string d1 = "sha256:" + std::string(64, '1'), d2 = "sha256:" + std::string(63, 'a') + "f";
    const std::string d3 = "sha512:" + std::string(128, 'c');
    r.schema2_data = {"1.0", d1, d2, "latest", d3};
    r.manifest_list_data = {"multi", d2};
    r.manifest_list_amd64_tags = {{"multi", d2, 2}, {"other", d3, 1}, {"same", d2, 1}};
    r.oci_index_data = {"idx", d1};
    r.oci_manifest_data = {"om", d3, d2};
    r.has_tags = true;
    r.tags = {"1.0", "idx", "latest", "multi", "om"};
    Referrer sig{"application/vnd.oci.image.manifest.v1+json", d3, 1234567890123, "application/example.sig",
                 {{"a.key", "x"}, {"b.key", "y"}}};
    Referrer sbom{"application/vnd.oci.image.manifest.v1+json", "sha256:" + std::string(64, 'e'), 5, "", {}};
    r.referrers = {{d1, {sig, sbom}}, {d2, {sbom}}};
    for (auto* l : {&r.schema2_data, &r.manifest_list_data, &r.oci_index_data, &r.oci_manifest_data}) {
        std::sort(l->begin(), l->end());
    }
    std::sort(r.referrers.begin(), r.referrers.end(),
              [](const ReferrerList& a, const ReferrerList& b) { return a.subject < b.subject; });
    auto parsed = parse_metadata(metadata_v4_json(r), "/data/ext/all.json");
    REQUIRE(parsed);
    REQUIRE(parsed->v2);
    return *parsed;
}

std::vector<std::string> probes_of(const V2Repo& r) {
    std::vector<std::string> p{"", "nope", "sha256:", "latest2", "sha256:" + std::string(64, '0'),
                               "sha256:" + std::string(64, 'A'), "sha256:" + std::string(65, 'a')};
    for (const auto* l : {&r.schema2_data, &r.manifest_list_data, &r.oci_index_data, &r.oci_manifest_data, &r.tags}) {
        for (const auto& s : *l) {
            p.push_back(s);
            p.push_back(s + "x");
            std::string up = s;
            std::transform(up.begin(), up.end(), up.begin(), [](char c) { return c >= 'a' && c <= 'f' ? c - 32 : c; });
            p.push_back(up);
            if (!s.empty()) p.push_back(s.substr(0, s.size() - 1));
        }
    }
    for (const auto& a : r.manifest_list_amd64_tags) {
        p.push_back(a.tag);
        p.push_back(a.digest);
    }
    for (const auto& l : r.referrers) p.push_back(l.subject);
    return p;
}

void check_common(const RepoView& v, const RepoCommon& r) {
    CHECK(v.id() == r.id);
    CHECK(v.repository() == r.repository);
    CHECK(v.url() == r.url);
    CHECK(v.url_path() == r.url_path);
    CHECK(v.is_protected() == r.is_protected);
    CHECK(v.version() == r.version);
    CHECK(v.source_path() == r.source_path);
}

void check_v1(const V1View& v, const V1Repo& r) {
    check_common(v, r);
    const auto images = v.image_ids();
    REQUIRE(images.size() == r.image_ids.size());
    for (std::size_t i = 0; i < images.size(); ++i) CHECK(images[i] == r.image_ids[i]);
    CHECK(std::vector<std::string>(images.begin(), images.end()) == r.image_ids);
    REQUIRE(v.tag_count() == r.tags.size());
    for (std::size_t i = 0; i < r.tags.size(); ++i) {
        CHECK(v.tag(i).first == r.tags[i].first);
        CHECK(v.tag(i).second == r.tags[i].second);
        auto found = v.find_tag(r.tags[i].first);
        REQUIRE(found);
        CHECK(*found == r.tags[i].second);
        CHECK(v.find_tag(r.tags[i].first + "~").has_value() == (r.find_tag(r.tags[i].first + "~") != nullptr));
    }
    CHECK_FALSE(v.find_tag("no such tag"));
    CHECK_FALSE(v.find_tag(""));
    CHECK(v.images_json() == r.images_json);
    CHECK(v.tags_json() == r.tags_json);
}

void check_v2(const V2View& v, const V2Repo& r) {
    check_common(v, r);
    CHECK(v.has_schema2_fields() == r.has_schema2_fields);
    CHECK(v.no_manifest_data() == (r.schema2_data.empty() && r.manifest_list_data.empty() &&
                                   r.oci_index_data.empty() && r.oci_manifest_data.empty()));
    for (const auto& p : probes_of(r)) {
        INFO("probe " << p);
        CHECK(v.in_schema2(p) == r.in_schema2(p));
        CHECK(v.in_manifest_list(p) == r.in_manifest_list(p));
        CHECK(v.in_oci_index(p) == r.in_oci_index(p));
        CHECK(v.in_oci_manifest(p) == r.in_oci_manifest(p));
        const Amd64Tag* a = r.find_amd64(p);
        auto va = v.find_amd64(p);
        REQUIRE(va.has_value() == (a != nullptr));
        if (a) {
            CHECK(va->tag == a->tag);
            CHECK(va->digest.view() == a->digest);
            CHECK(va->schema_version == a->schema_version);
        }
        const Amd64Tag* first = nullptr;
        for (const auto& t : r.manifest_list_amd64_tags) {
            if (t.digest == p) {
                first = &t;
                break;
            }
        }
        auto vd = v.find_amd64_by_digest(p);
        REQUIRE(vd.has_value() == (first != nullptr));
        if (first) {
            CHECK(vd->tag == first->tag);
            CHECK(vd->digest.view() == first->digest);
            CHECK(vd->schema_version == first->schema_version);
        }
        const auto* refs = r.find_referrers(p);
        const auto vr = v.find_referrers(p);
        REQUIRE(vr.size() == (refs ? refs->size() : 0));
        for (std::size_t i = 0; i < vr.size(); ++i) {
            const Referrer& want = (*refs)[i];
            const ReferrerView got = vr[i];
            CHECK(got.media_type() == want.media_type);
            CHECK(got.digest() == want.digest);
            CHECK(got.size() == want.size);
            CHECK(got.artifact_type() == want.artifact_type);
            REQUIRE(got.annotation_count() == want.annotations.size());
            for (std::size_t k = 0; k < want.annotations.size(); ++k) {
                CHECK(got.annotation(k).first == want.annotations[k].first);
                CHECK(got.annotation(k).second == want.annotations[k].second);
            }
        }
    }
    CHECK(v.has_tags() == r.has_tags);
    const auto tags = v.tags();
    CHECK(std::vector<std::string>(tags.begin(), tags.end()) == r.tags);
}

std::vector<SnapshotFileInput> inputs_of(const std::vector<ParsedRepo>& repos) {
    std::vector<SnapshotFileInput> files(repos.size());
    for (std::size_t i = 0; i < repos.size(); ++i) {
        const RepoCommon& c = repos[i].v1 ? static_cast<const RepoCommon&>(*repos[i].v1) : *repos[i].v2;
        files[i].path = c.source_path;
        files[i].stamp = FileStamp{1, 1000 + i, static_cast<std::int64_t>(i) * 7, 1700000000000000000 + static_cast<std::int64_t>(i), -5};
        files[i].content_hash = 0x1234567890abcdefULL * (i + 1);
        files[i].racy = i % 3 == 0;
        files[i].parsed = repos[i];
    }
    return files;
}

// Section sizes, read from the header (offset 64: {u32 offset, u32 length} x 9).
std::string section_report(const Snapshot& s, int repos) {
    static const char* kNames[] = {"records", "strings", "v1 hash", "v2 hash", "v1 sorted",
                                   "v2 sorted", "images", "image repos", "files"};
    std::ostringstream out;
    for (int k = 0; k < 9; ++k) {
        std::uint32_t len;
        std::memcpy(&len, s.base() + 64 + 8 * k + 4, 4);
        out << "  " << kNames[k] << ": " << len << " bytes, " << len / double(repos) << " per repo\n";
    }
    return out.str();
}

std::shared_ptr<const Snapshot> open_bytes(std::string bytes) {
    auto r = Snapshot::from_bytes(std::move(bytes));
    INFO(r.error());
    REQUIRE(r);
    return *r;
}

// The whole snapshot against the index Index::build makes of the same records.
void check_against_index(const Snapshot& s, const std::vector<ParsedRepo>& repos) {
    Index::Records records;
    for (const auto& r : repos) {
        if (r.v1) records.v1.push_back(r.v1);
        if (r.v2) records.v2.push_back(r.v2);
    }
    std::vector<std::string> warnings;
    auto index = Index::build(records, &warnings);
    REQUIRE(s.v1_sorted().size() == index->v1_sorted().size());
    REQUIRE(s.v2_sorted().size() == index->v2_sorted().size());
    for (std::size_t i = 0; i < s.v1_sorted().size(); ++i) {
        const V1Repo& want = *index->v1_sorted()[i];
        check_v1(s.v1_sorted()[i], want);
        auto found = s.find_v1(want.id);
        REQUIRE(found);
        CHECK(found->offset() == s.v1_sorted()[i].offset());
        CHECK_FALSE(s.find_v2(want.id + "\x01"));
        for (const auto& image : want.image_ids) {
            const auto* holders = index->repos_with_image(image);
            REQUIRE(holders);
            const auto got = s.repos_with_image(image);
            REQUIRE(got.size() == holders->size());
            for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k].id() == (*holders)[k]->id);
        }
    }
    for (std::size_t i = 0; i < s.v2_sorted().size(); ++i) {
        const V2Repo& want = *index->v2_sorted()[i];
        check_v2(s.v2_sorted()[i], want);
        auto found = s.find_v2(want.id);
        REQUIRE(found);
        CHECK(found->offset() == s.v2_sorted()[i].offset());
        CHECK_FALSE(s.find_v1(want.id + "\x01"));
    }
    CHECK(s.repos_with_image("no such image").empty());
    CHECK_FALSE(s.find_v1("no such repo"));
    CHECK_FALSE(s.find_v2("no such repo"));
    CHECK(s.summary().v1_repos == s.v1_sorted().size());
    CHECK(s.summary().v2_repos == s.v2_sorted().size());
}

// gen_metadata.py's documents as text (v4_doc through the metadata writer,
// which writes the same keys; v1_doc by hand), read by the parser.
std::vector<ParsedRepo> parsed_generator_docs(int n) {
    std::vector<ParsedRepo> out;
    for (const auto& r : gen_repos(n, 17, "/srv/docs")) {
        std::string text;
        std::string path;
        if (r.v2) {
            text = metadata_v4_json(*r.v2);
            path = r.v2->source_path;
        } else {
            const V1Repo& v = *r.v1;
            text = R"({"repo-registry-id": ")" + v.id + R"(", "repository": ")" + v.repository + R"(", "url": ")" + v.url +
                   R"(", "version": 1, "protected": false, "type": "pulp-docker", "images": [)";
            for (std::size_t i = 0; i < v.image_ids.size(); ++i) text += (i ? ", " : "") + (R"({"id": ")" + v.image_ids[i] + "\"}");
            text += R"(], "tags": {)";
            for (std::size_t i = 0; i < v.tags.size(); ++i) {
                text += (i ? ", " : "") + ("\"" + v.tags[i].first + R"(": ")" + v.tags[i].second + "\"");
            }
            text += "}}";
            path = v.source_path;
        }
        auto parsed = parse_metadata(text, path);
        INFO(path << ": " << parsed.error().message);
        REQUIRE(parsed);
        out.push_back(*parsed);
    }
    return out;
}

}  // namespace

TEST_CASE("every test data file reads back through the views", "[snapshot]") {
    auto repos = data_dir_records();
    REQUIRE(repos.size() >= 8);
    repos.push_back(extension_repo());
    auto gen = gen_repos(60, 3);
    repos.insert(repos.end(), gen.begin(), gen.end());
    auto docs = parsed_generator_docs(45);
    repos.insert(repos.end(), docs.begin(), docs.end());
    std::vector<std::string> warnings;
    auto s = open_bytes(build_snapshot(inputs_of(repos), 42, 1234, &warnings));
    // the generated ids repeat between the two generated sets: Index::build's warnings, in its order
    Index::Records records;
    for (const auto& r : repos) {
        if (r.v1) records.v1.push_back(r.v1);
        if (r.v2) records.v2.push_back(r.v2);
    }
    std::vector<std::string> index_warnings;
    (void)Index::build(records, &index_warnings);
    CHECK(warnings.size() == 45);
    CHECK(warnings == index_warnings);
    CHECK(s->generation() == 42);
    CHECK(s->built_at_ns() == 1234);
    CHECK(s->summary().files == repos.size());
    check_against_index(*s, repos);
}

TEST_CASE("each file alone, through snapshot_of", "[snapshot]") {
    auto repos = data_dir_records();
    repos.push_back(extension_repo());
    for (const auto& r : repos) {
        auto s = snapshot_of(r);
        REQUIRE(s);
        if (r.v1) {
            auto v = s->find_v1(r.v1->id);
            REQUIRE(v);
            check_v1(*v, *r.v1);
        } else {
            auto v = s->find_v2(r.v2->id);
            REQUIRE(v);
            check_v2(*v, *r.v2);
        }
        CHECK(s->file_count() == 1);
    }
}

TEST_CASE("digests of any length come back whole, and copies keep their own text", "[snapshot]") {
    // the digest grammar bounds no algorithm but sha256 and sha512
    const std::string long_digest = "sha999:" + std::string(300, 'b');
    const std::string raw_digest = "sha256:" + std::string(63, '0') + "2";
    const std::string text = R"({"version": 4, "repo-registry-id": "long", "url": "http://h/",
        "schema2_data": [], "manifest_list_data": ["a", "b"],
        "manifest_list_amd64_tags": {"a": [")" + raw_digest + R"(", 2], "b": [")" + long_digest + R"(", 1]}})";
    auto parsed = parse_metadata(text, "/data/long.json");
    REQUIRE(parsed.ok());
    auto s = snapshot_of(*parsed);
    auto v = s->find_v2("long");
    REQUIRE(v);
    auto b = v->find_amd64("b");
    REQUIRE(b);
    CHECK(b->digest.view() == long_digest);
    CHECK(v->find_amd64_by_digest(long_digest)->tag == "b");
    std::optional<Amd64View> a = v->find_amd64("a");
    REQUIRE(a);
    // a spelled-out sha256 lives in the view's own buffer: a copy must not
    // point into the original's
    Amd64View copy = *a;
    a.reset();
    CHECK(copy.digest.view() == raw_digest);
    Amd64View assigned;
    assigned = copy;
    copy.digest = DigestText();
    CHECK(assigned.digest.view() == raw_digest);
}

TEST_CASE("the file table keeps each file's state and record", "[snapshot]") {
    auto repos = gen_repos(40, 5);
    auto files = inputs_of(repos);
    SnapshotFileInput failed;  // a failed file with no last good content
    failed.path = "/srv/crane/000-broken.json";
    failed.failed = true;
    failed.stamp = FileStamp{9, 9, 9, 9, 9};
    files.push_back(failed);
    files[5].failed = true;  // a failed file keeping its last good content
    std::reverse(files.begin(), files.end());
    auto s = open_bytes(build_snapshot(files, 1, 2, nullptr));
    REQUIRE(s->file_count() == files.size());
    CHECK(s->summary().failed_files == 2);
    std::map<std::string, const SnapshotFileInput*> by_path;
    for (const auto& f : files) by_path[f.path] = &f;
    std::size_t i = 0;
    for (const auto& [path, f] : by_path) {
        const SnapshotFileInfo got = s->file(i++);
        CHECK(got.path == path);
        CHECK(got.stamp == f->stamp);
        CHECK(got.content_hash == f->content_hash);
        CHECK(got.racy == f->racy);
        CHECK(got.failed == f->failed);
        CHECK(got.v1.has_value() == (f->parsed.v1 != nullptr));
        CHECK(got.v2.has_value() == (f->parsed.v2 != nullptr));
        if (got.v1) check_v1(*got.v1, *f->parsed.v1);
        if (got.v2) check_v2(*got.v2, *f->parsed.v2);
    }
    CHECK_FALSE(s->file(files.size()).v1);
    CHECK(s->file(files.size()).path.empty());
}

TEST_CASE("duplicate ids: the last source path wins, with Index::build's warning", "[snapshot]") {
    auto make = [](const std::string& id, const std::string& path, int version) {
        auto r = parse_metadata(version == 1 ? R"({"version": 1, "repo-registry-id": ")" + id +
                                                   R"(", "url": "http://h/a/", "images": [{"id": "i1"}], "tags": {"t": "i1"}})"
                                             : R"({"version": 3, "repo-registry-id": ")" + id +
                                                   R"(", "url": "http://h/)" + path + R"(/", "schema2_data": ["x"]})",
                                path);
        REQUIRE(r);
        return *r;
    };
    std::vector<ParsedRepo> repos{make("dup", "/d/b.json", 2), make("dup", "/d/c.json", 2),
                                  make("dup", "/d/a.json", 2), make("dup", "/d/v1a.json", 1),
                                  make("dup", "/d/v1b.json", 1), make("solo", "/d/s.json", 2)};
    std::vector<std::string> warnings;
    auto s = open_bytes(build_snapshot(inputs_of(repos), 1, 1, &warnings));
    REQUIRE(warnings.size() == 3);
    CHECK(warnings[0] == "v1 repository 'dup' is defined in both /d/v1a.json and /d/v1b.json; using /d/v1b.json");
    CHECK(warnings[1] == "v2 repository 'dup' is defined in both /d/a.json and /d/b.json; using /d/b.json");
    CHECK(warnings[2] == "v2 repository 'dup' is defined in both /d/b.json and /d/c.json; using /d/c.json");
    CHECK(s->find_v2("dup")->source_path() == "/d/c.json");
    CHECK(s->find_v1("dup")->source_path() == "/d/v1b.json");
    CHECK(s->v2_sorted().size() == 2);
    CHECK(s->v1_sorted().size() == 1);
    CHECK(s->repos_with_image("i1").size() == 1);
    CHECK(s->file_count() == 6);
    // the losers are records of the file table all the same
    CHECK(s->file(0).v2->source_path() == "/d/a.json");
    check_against_index(*s, repos);
}

TEST_CASE("carried records re-encode to the same views", "[snapshot]") {
    auto repos = data_dir_records();
    repos.push_back(extension_repo());
    auto gen = gen_repos(50, 11);
    repos.insert(repos.end(), gen.begin(), gen.end());
    auto a = open_bytes(build_snapshot(inputs_of(repos), 1, 1, nullptr));

    // B: every record of A carried, plus changed and new ones parsed
    std::vector<SnapshotFileInput> files;
    std::vector<ParsedRepo> expected;
    for (std::size_t i = 0; i < a->file_count(); ++i) {
        const SnapshotFileInfo f = a->file(i);
        SnapshotFileInput in;
        in.path = std::string(f.path);
        in.stamp = f.stamp;
        in.content_hash = f.content_hash;
        in.racy = f.racy;
        in.carried_v1 = f.v1;
        in.carried_v2 = f.v2;
        files.push_back(std::move(in));
    }
    for (const auto& r : gen_repos(5, 99, "/srv/new")) {
        SnapshotFileInput in;
        in.path = (r.v1 ? r.v1->source_path : r.v2->source_path);
        in.parsed = r;
        files.push_back(std::move(in));
        expected.push_back(r);
    }
    auto b = open_bytes(build_snapshot(files, 2, 2, nullptr));
    expected.insert(expected.end(), repos.begin(), repos.end());
    check_against_index(*b, expected);
    // and C, carried from B (a carried record carries again)
    for (auto& f : files) {
        if (f.parsed.v1 || f.parsed.v2) continue;
        f.carried_v1.reset();
        f.carried_v2.reset();
    }
    std::size_t j = 0;
    for (std::size_t i = 0; i < b->file_count(); ++i) {
        const auto f = b->file(i);
        for (auto& in : files) {
            if (in.path == f.path && !in.parsed.v1 && !in.parsed.v2) {
                in.carried_v1 = f.v1;
                in.carried_v2 = f.v2;
                ++j;
            }
        }
    }
    CHECK(j == a->file_count());
    auto c = open_bytes(build_snapshot(files, 3, 3, nullptr));
    check_against_index(*c, expected);
    CHECK(c->size_bytes() == b->size_bytes());
}

TEST_CASE("the empty snapshot", "[snapshot]") {
    auto s = Snapshot::empty();
    CHECK(s->file_count() == 0);
    CHECK(s->v1_sorted().empty());
    CHECK(s->v2_sorted().empty());
    CHECK_FALSE(s->find_v1("x"));
    CHECK_FALSE(s->find_v2("x"));
    CHECK(s->repos_with_image("x").empty());
    CHECK(s->summary().files == 0);
    auto again = open_bytes(build_snapshot({}, 0, 0, nullptr));
    CHECK(again->size_bytes() == s->size_bytes());
}

TEST_CASE("damaged images are refused with the reason", "[snapshot]") {
    auto repos = gen_repos(20, 7);
    repos.push_back(extension_repo());
    const std::string good = build_snapshot(inputs_of(repos), 5, 6, nullptr);
    REQUIRE(Snapshot::from_bytes(good));

    SECTION("truncation anywhere") {
        for (std::size_t n = 0; n < good.size(); n += (n < 300 ? 1 : 97)) {
            auto r = Snapshot::from_bytes(good.substr(0, n));
            REQUIRE_FALSE(r);
            CHECK(r.error().rfind("truncated: " + std::to_string(n) + " bytes", 0) == 0);
        }
        auto r = Snapshot::from_bytes(good.substr(0, 200));
        CHECK(r.error() == "truncated: 200 bytes, header says " + std::to_string(good.size()));
        CHECK_FALSE(Snapshot::from_bytes(good + std::string(8, '\0')));
    }
    SECTION("every byte of the header, and a sample of the rest") {
        std::vector<std::size_t> at;
        for (std::size_t i = 0; i < 136; ++i) at.push_back(i);
        for (std::size_t i = 136; i < good.size(); i += 13) at.push_back(i);
        for (std::size_t i : at) {
            for (unsigned char bit : {0x01, 0x80}) {
                std::string bad = good;
                bad[i] = static_cast<char>(bad[i] ^ bit);
                auto r = Snapshot::from_bytes(bad);
                INFO("byte " << i);
                REQUIRE_FALSE(r);
                std::string want = "checksum mismatch";
                if (i < 8) want = "not a crane snapshot (bad magic)";
                else if (i < 12) want = "format ";
                else if (i < 16) want = "header size ";
                if (i >= 16 && i < 24) {
                    CHECK((r.error().rfind("truncated: ", 0) == 0 || r.error().rfind("trailing bytes: ", 0) == 0));
                } else {
                    CHECK(r.error().rfind(want, 0) == 0);
                }
            }
        }
    }
    SECTION("wrong magic and format") {
        std::string bad = good;
        bad[0] = 'X';
        CHECK(Snapshot::from_bytes(bad).error() == "not a crane snapshot (bad magic)");
        bad = good;
        const std::uint32_t seven = 7;
        std::memcpy(&bad[8], &seven, 4);
        CHECK(Snapshot::from_bytes(bad).error() == "format 7, this module reads format 2");
        CHECK(Snapshot::from_bytes("not a snapshot").error().rfind("truncated: 14 bytes", 0) == 0);
    }
    SECTION("a section out of bounds, even with a good checksum") {
        std::string bad = good;
        const std::uint32_t huge = 0x7FFFFFF8;
        std::memcpy(&bad[offsetof(snapshot_format::SnapshotHeader, sections) + 8 * 2], &huge, 4);  // the v1 hash's offset
        seal_snapshot(bad);
        CHECK(Snapshot::from_bytes(bad).error() == "section v1 hash out of bounds");
        bad = good;
        const std::uint32_t len = 12;
        std::memcpy(&bad[offsetof(snapshot_format::SnapshotHeader, sections) + 8 * 3 + 4], &len, 4);  // the v2 hash: 3 slots
        seal_snapshot(bad);
        CHECK_FALSE(Snapshot::from_bytes(bad));
    }
    SECTION("garbage offsets inside sections read as not found") {
        // every 4-byte word after the header replaced by a large value, resealed
        std::mt19937 rng(1);
        for (int round = 0; round < 200; ++round) {
            std::string bad = good;
            for (int k = 0; k < 8; ++k) {
                const std::size_t at = 136 + (rng() % ((good.size() - 140) / 4)) * 4;
                const std::uint32_t v = rng() % 3 == 0 ? 0xFFFFFFF0u : static_cast<std::uint32_t>(rng() % good.size());
                std::memcpy(&bad[at], &v, 4);
            }
            seal_snapshot(bad);
            auto r = Snapshot::from_bytes(bad);
            if (!r) continue;
            const Snapshot& s = **r;
            for (const auto& v : s.v2_sorted()) {
                (void)v.id();
                (void)v.in_schema2("latest");
                (void)v.find_amd64("latest");
                for (auto t : v.tags()) (void)t;
            }
            for (const auto& v : s.v1_sorted()) {
                for (auto img : v.image_ids()) (void)s.repos_with_image(img);
                (void)v.find_tag("x");
            }
            for (std::size_t i = 0; i < s.file_count(); ++i) (void)s.file(i);
        }
    }
}

TEST_CASE("open() maps a real file and unmaps it", "[snapshot]") {
    char dir[] = "/tmp/crane_snapshot_XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string path = std::string(dir) + "/index.snap";
    auto repos = data_dir_records();
    const std::string bytes = build_snapshot(inputs_of(repos), 77, 88, nullptr);
    {
        std::ofstream out(path, std::ios::binary);
        out << bytes;
    }
    {
        auto r = Snapshot::open(path);
        INFO(r.error());
        REQUIRE(r);
        CHECK((*r)->generation() == 77);
        CHECK((*r)->size_bytes() == bytes.size());
        check_against_index(**r, repos);
        // the mapping stays valid after the file is gone
        ::unlink(path.c_str());
        CHECK((*r)->v2_sorted().size() > 0);
        CHECK(read_file("/proc/self/maps").find(path) != std::string::npos);
    }
    // and is unmapped with the last reference
    CHECK(read_file("/proc/self/maps").find(path) == std::string::npos);
    auto missing = Snapshot::open(path);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().find("No such file") != std::string::npos);
    {
        std::ofstream out(path, std::ios::binary);
        out << bytes.substr(0, bytes.size() / 2);
    }
    auto truncated = Snapshot::open(path);
    REQUIRE_FALSE(truncated);
    CHECK(truncated.error() == path + ": truncated: " + std::to_string(bytes.size() / 2) + " bytes, header says " +
                                   std::to_string(bytes.size()));
    auto dir_open = Snapshot::open(dir);
    CHECK_FALSE(dir_open);
    ::unlink(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("snapshot build and lookups at 100k repos (timing)", "[.][bench][snapshot]") {
    // not run by default: crane_unit_tests "[bench]" prints the figures.
    constexpr int kRepos = 100000;
    auto repos = gen_repos(kRepos, 1);
    auto files = inputs_of(repos);
    if (std::getenv("CRANE_BENCH_TWICE")) (void)build_snapshot(files, 1, 1, nullptr);
    if (std::getenv("CRANE_BENCH_TOUCH")) {
        auto t_touch = std::chrono::steady_clock::now();
        std::size_t sum = 0;
        for (const auto& r : repos) {
            if (r.v2) for (const auto& d : r.v2->schema2_data) sum += static_cast<unsigned char>(d.back());
            if (r.v2) for (const auto& d : r.v2->manifest_list_data) sum += static_cast<unsigned char>(d.back());
        }
        WARN("touched " << sum << " in " << (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_touch).count()) << " ms");
    }
    // CPU time too: the wall clock of a shared machine says little
    auto cpu = [] {
        timespec ts{};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    };
    // the build's memory: the peak RSS (reset first) over the RSS before it
    auto status_kb = [](const char* key) {
        const std::string status = read_file("/proc/self/status");
        const std::size_t at = status.find(key);
        return at == std::string::npos ? 0L : std::atol(status.c_str() + at + std::strlen(key));
    };
    { std::ofstream("/proc/self/clear_refs") << "5"; }
    const long rss_before = status_kb("VmRSS:");
    const double c0 = cpu();
    auto t0 = std::chrono::steady_clock::now();
    const std::string bytes = build_snapshot(files, 1, 1, nullptr);
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = cpu();
    WARN("memory: " << (status_kb("VmHWM:") - rss_before) / 1024 << " MiB above the input at the peak of the build ("
                    << bytes.size() / (1 << 20) << " MiB output)");
    auto s = open_bytes(bytes);
    auto t2 = std::chrono::steady_clock::now();
    std::vector<SnapshotFileInput> carried(files.size());
    for (std::size_t i = 0; i < s->file_count(); ++i) {
        const auto f = s->file(i);
        carried[i].path = std::string(f.path);
        carried[i].stamp = f.stamp;
        carried[i].carried_v1 = f.v1;
        carried[i].carried_v2 = f.v2;
    }
    const double c3 = cpu();
    auto t3 = std::chrono::steady_clock::now();
    const std::string again = build_snapshot(carried, 2, 2, nullptr);
    auto t4 = std::chrono::steady_clock::now();
    const double c4 = cpu();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    WARN(kRepos << " repos: " << bytes.size() << " bytes, " << bytes.size() / double(kRepos) << " bytes/repo; build "
                << ms(t0, t1) << " ms from parsed, " << ms(t3, t4) << " ms all carried (" << again.size()
                << " bytes); from_bytes (checksum) " << ms(t1, t2) << " ms; CPU time: " << c1 - c0
                << " ms from parsed, " << c4 - c3 << " ms all carried");
    WARN("sections (bytes/repo):\n" << section_report(*s, kRepos));
    // the records section by part, from the inputs (digests are sha256)
    std::size_t digests = 0, amd64 = 0, refs = 0, v2_heads = 0, v1_bytes = 0, tag_refs = 0;
    for (const auto& r : repos) {
        if (r.v1) {
            v1_bytes += 40 + 4 * r.v1->image_ids.size() + 8 * r.v1->tags.size();
            continue;
        }
        const V2Repo& v = *r.v2;
        v2_heads += 24 + 4 + 4 * 5;
        for (const auto* l : {&v.schema2_data, &v.manifest_list_data}) {
            for (const auto& x : *l) (x.rfind("sha256:", 0) == 0 ? digests : refs) += 1;
        }
        amd64 += v.manifest_list_amd64_tags.size();
        tag_refs += v.tags.size();
    }
    WARN("records by part (bytes/repo): v2 common+mask+counts " << v2_heads / double(kRepos) << ", raw digests of the ref sets "
         << 32.0 * digests / kRepos << ", tag refs of the ref sets " << 4.0 * refs / kRepos << ", amd64 entries (36 bytes: tag + flags, raw digest) "
         << 36.0 * amd64 / kRepos << ", v1 records " << v1_bytes / double(kRepos));
    auto tc = std::chrono::steady_clock::now();
    const std::uint64_t sum = snapshot_checksum(s->base(), s->size_bytes());
    WARN("checksum of " << s->size_bytes() << " bytes: " << ms(tc, std::chrono::steady_clock::now()) << " ms (" << sum % 10 << ")");
    // lookups: every v2 repo by name, a tag and a digest in each
    std::vector<std::string> names;
    for (const auto& r : repos) names.push_back(r.v2 ? r.v2->id : r.v1->id);
    auto t5 = std::chrono::steady_clock::now();
    std::size_t hits = 0;
    for (const auto& r : repos) {
        if (!r.v2) continue;
        auto v = s->find_v2(r.v2->id);
        hits += v && v->in_schema2(r.v2->schema2_data.front()) ? 1 : 0;
        hits += v && v->in_schema2(r.v2->schema2_data.back()) ? 1 : 0;
        hits += v && v->find_amd64(r.v2->manifest_list_amd64_tags.front().tag) ? 1 : 0;
    }
    auto t6 = std::chrono::steady_clock::now();
    WARN("lookups: " << hits << " hits, " << ms(t5, t6) * 1e6 / hits << " ns per lookup (find_v2 + one search)");
    CHECK(hits > 0);
}

TEST_CASE("write the fuzz seeds", "[.][seeds][snapshot]") {
    // not run by default: CRANE_SNAPSHOT_SEEDS=tests/fuzz/corpus/snapshot
    // crane_unit_tests "[seeds]" rewrites tests/fuzz/corpus/snapshot/.
    const char* dir = std::getenv("CRANE_SNAPSHOT_SEEDS");
    if (!dir) return;
    auto write = [&](const std::string& name, const std::string& bytes) {
        std::ofstream out(std::string(dir) + "/" + name, std::ios::binary);
        out << bytes;
    };
    write("empty.snap", build_snapshot({}, 0, 0, nullptr));
    write("test_data.snap", build_snapshot(inputs_of(data_dir_records()), 3, 4, nullptr));
    write("extensions.snap", build_snapshot(inputs_of({extension_repo()}), 1, 1, nullptr));
    auto gen = gen_repos(20, 2);
    auto files = inputs_of(gen);
    files[3].failed = true;
    SnapshotFileInput none;
    none.path = "/srv/crane/broken.json";
    none.failed = true;
    files.push_back(none);
    write("generated.snap", build_snapshot(files, 9, 9, nullptr));
    auto dup = data_dir_records();
    auto again = data_dir_records();
    for (auto& r : again) {
        if (r.v1) {
            auto c = std::make_shared<V1Repo>(*r.v1);
            c->source_path += ".dup";
            r.v1 = c;
        } else {
            auto c = std::make_shared<V2Repo>(*r.v2);
            c->source_path += ".dup";
            r.v2 = c;
        }
    }
    dup.insert(dup.end(), again.begin(), again.end());
    write("duplicates.snap", build_snapshot(inputs_of(dup), 1, 1, nullptr));
    std::string bad = build_snapshot(inputs_of(data_dir_records()), 1, 1, nullptr);
    bad[200] = static_cast<char>(bad[200] ^ 1);  // a checksum mismatch (resealed by the target)
    write("flipped.snap", bad);
    write("truncated.snap", bad.substr(0, 100));
    // a delta (the target rebases it onto its own base): two of the test
    // data's records over the generated ones, a name and a path removed
    auto over = *Snapshot::from_bytes(build_snapshot(inputs_of(gen), 9, 9, nullptr));
    auto mine = data_dir_records();
    mine.resize(2);
    DeltaKeys keys;
    keys.v1_names = {"busybox", std::string(over->v2_sorted()[0].id())};
    keys.v2_names = {std::string(over->v2_sorted()[1].id()), "library/busybox"};
    keys.images = {"a1b2c3", "i1"};
    keys.removed_paths = {std::string(over->file(0).path)};
    write("delta.snap", make_delta(build_snapshot(inputs_of(mine), 10, 10, nullptr), *over, keys));
}
