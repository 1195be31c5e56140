// Deltas: a snapshot published as a delta over its base answers every
// lookup exactly as a full build of the same data dir does, through random
// publishes, edits, removals, duplicate names and shared v1 images; the
// files, the overlay's validation and the store's base files.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crane/change_notifier.h"
#include "crane/snapshot.h"
#include "crane/snapshot_store.h"
#include "index/snapshot_format.h"
#include "store_test_helpers.h"
#include "temp_dir.h"

using namespace crane;
using namespace crane::testing;

namespace {

void write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary);
        f << text;
    }
    REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0);
}

std::string v1_metadata(const std::string& id, const std::vector<std::string>& images, const std::string& url) {
    std::string imgs, tags;
    for (const auto& i : images) {
        imgs += std::string(imgs.empty() ? "" : ", ") + R"({"id": ")" + i + R"("})";
        tags += std::string(tags.empty() ? "" : ", ") + "\"t" + i + "\": \"" + i + "\"";
    }
    return R"({"version": 1, "repo-registry-id": ")" + id + R"(", "url": ")" + url + R"(", "images": [)" + imgs +
           R"(], "tags": {)" + tags + "}}";
}

// Everything a request or a page can ask, spelled out.
std::vector<std::string> answers(const Snapshot& s, const std::set<std::string>& names,
                                 const std::set<std::string>& images) {
    std::vector<std::string> out;
    for (const auto& n : names) {
        if (auto r = s.find_v1(n)) out.push_back("v1 " + n + " " + std::string(r->url()) + " " + std::string(r->source_path()));
        else out.push_back("v1 " + n + " none");
        if (auto r = s.find_v2(n)) out.push_back("v2 " + n + " " + std::string(r->url()) + " " + std::string(r->source_path()));
        else out.push_back("v2 " + n + " none");
    }
    for (const auto& i : images) {
        std::string line = "image " + i + ":";
        for (const V1View r : s.repos_with_image(i)) line += " " + std::string(r.id()) + "@" + std::string(r.url());
        out.push_back(line);
    }
    std::string v1 = "v1 sorted:", v2 = "v2 sorted:";
    for (const V1View r : s.v1_sorted()) v1 += " " + std::string(r.id());
    for (const V2View r : s.v2_sorted()) v2 += " " + std::string(r.id()) + "=" + std::string(r.url());
    // random access too (the catalog pages by index)
    const auto sorted = s.v2_sorted();
    for (std::size_t i = sorted.size(); i-- > 0;) v2 += " [" + std::string(sorted[i].id()) + "]";
    out.push_back(v1);
    out.push_back(v2);
    const SnapshotSummary sum = s.summary();
    out.push_back("summary " + std::to_string(sum.files) + " " + std::to_string(sum.failed_files) + " " +
                  std::to_string(sum.v1_repos) + " " + std::to_string(sum.v2_repos));
    for (const SnapshotFileInfo& f : s.files()) {
        out.push_back("file " + std::string(f.path) + (f.failed ? " failed" : "") +
                      (f.v1 ? " v1 " + std::string(f.v1->id()) : "") + (f.v2 ? " v2 " + std::string(f.v2->id()) : ""));
    }
    return out;
}

}  // namespace

TEST_CASE("a delta answers every lookup as a full build of the same data dir does", "[snapshot_delta]") {
    const unsigned seed = GENERATE(1u, 2u, 3u, 4u, 5u, 6u);
    const bool on_disk = GENERATE(false, true);
    TempDir t;
    const std::string data = t / "data";
    std::filesystem::create_directories(data);
    SnapshotBuilder delta(data, on_disk ? t / "snap/delta.snap" : "", nullptr, nullptr);
    SnapshotBuilder full(data, "", nullptr, nullptr);
    full.set_max_delta_files(0);
    // told which files changed, as the notifier tells (the delta planned
    // from the one in place, not from a scan)
    SnapshotBuilder notified(data, on_disk ? t / "snap/notified.snap" : "", nullptr, nullptr);
    notified.set_max_delta_files(12);
    if (on_disk) std::filesystem::create_directories(t / "snap");
    delta.set_max_delta_files(12);  // compactions happen too

    std::mt19937 rng(seed);
    auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    std::set<std::string> names, images;
    for (int i = 0; i < 8; ++i) names.insert("n" + std::to_string(i));
    for (int i = 0; i < 6; ++i) images.insert("im" + std::to_string(i));
    auto random_file = [&](int k) {
        const std::string name = "n" + std::to_string(pick(8));  // few names: many duplicates
        const std::string url = "http://cdn/" + std::to_string(k) + "/";
        if (pick(3) == 0) {
            std::vector<std::string> imgs;
            for (int j = pick(3) + 1; j > 0; --j) imgs.push_back("im" + std::to_string(pick(6)));
            return v1_metadata(name, imgs, url);
        }
        if (pick(12) == 0) return std::string("{not json");  // a failed file
        return v2_metadata(name, url);
    };
    std::vector<std::string> paths;
    for (int i = 0; i < 30; ++i) paths.push_back(data + "/d" + std::to_string(i % 3) + "/f" + std::to_string(i) + ".json");
    int deltas = 0, fulls = 0;
    for (int round = 0; round < 40; ++round) {
        const int changes = pick(4) + 1;
        DataDirChanges told;
        for (int c = 0; c < changes; ++c) {
            const std::string& p = paths[static_cast<std::size_t>(pick(static_cast<int>(paths.size())))];
            told.paths.insert(p);
            if (pick(4) == 0) {
                ::unlink(p.c_str());
            } else {
                write(p, random_file(round * 10 + c));
                // the temporary file renamed away is told as a name that
                // may have been a directory, as the notifier does
                if (pick(2) == 0) told.dirs.insert(p + ".tmp");
            }
        }
        ReloadStats st;
        delta.refresh(&st);
        full.refresh();
        notified.refresh_changes(told);
        const auto d = delta.latest();
        const auto f = full.latest();
        const auto n = notified.latest();
        (d->base_image() ? deltas : fulls) += 1;
        INFO("seed " << seed << " round " << round << (d->base_image() ? " (a delta)" : " (full)")
                     << (n->base_image() ? ", notified: a delta" : ", notified: full"));
        const auto want = answers(*f, names, images);
        REQUIRE(answers(*d, names, images) == want);
        REQUIRE(answers(*n, names, images) == want);
    }
    CHECK(deltas > 10);
    CHECK(fulls >= 1);
}

TEST_CASE("deltas on disk: the base is linked once, reused by readers, removed when a full image replaces it",
          "[snapshot_delta]") {
    TempDir t;
    const std::string data = t / "data", snap = t / "s/x.snap";
    std::filesystem::create_directories(t / "s");
    for (int i = 0; i < 40; ++i) write(data + "/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i)));
    SnapshotBuilder b(data, snap, nullptr, nullptr);
    b.set_max_delta_files(3);
    REQUIRE(b.refresh());
    const auto g1 = b.latest();
    REQUIRE_FALSE(g1->base_image());
    struct stat head {}, base {};

    write(data + "/r1.json", v2_metadata("r1", "http://new/"));
    ReloadStats st;
    REQUIRE(b.refresh(&st));
    CHECK(st.delta_changed == 1);
    CHECK(st.delta_files == 1);
    const auto g2 = b.latest();
    REQUIRE(g2->base_image() == g1);  // the builder's own mapping, reused
    REQUIRE(::stat(Snapshot::base_path(snap, 1).c_str(), &base) == 0);
    CHECK(g2->size_bytes() < g1->size_bytes() / 4);
    CHECK(g2->mapped_bytes() == g1->size_bytes() + g2->size_bytes());

    // a reader with generation 2 mapped maps only the new delta for 3
    auto r2 = Snapshot::open(snap);
    REQUIRE(r2);
    CHECK((*r2)->find_v2("r1")->url() == "http://new/");
    write(data + "/r2.json", v2_metadata("r2", "http://new/"));
    REQUIRE(b.refresh());
    auto r3 = Snapshot::open(snap, *r2);
    REQUIRE(r3);
    CHECK((*r3)->base_image() == (*r2)->base_image());
    CHECK((*r3)->find_v2("r1")->url() == "http://new/");  // the delta holds every change since its base
    CHECK((*r3)->find_v2("r2")->url() == "http://new/");
    CHECK((*r3)->find_v2("r3")->url() == "http://h/");
    CHECK((*r3)->summary().files == 40);

    // more changes than a delta may hold: a full image, and the base goes
    for (int i = 10; i < 15; ++i) write(data + "/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i), "http://new/"));
    REQUIRE(b.refresh(&st));
    CHECK(st.delta_files == 0);
    CHECK_FALSE(b.latest()->base_image());
    CHECK(::stat(Snapshot::base_path(snap, 1).c_str(), &base) != 0);
    REQUIRE(::stat(snap.c_str(), &head) == 0);
    // a reader still holding the old delta keeps answering from it
    CHECK((*r3)->find_v2("r12")->url() == "http://h/");
    // and the file in place opens on its own
    auto r4 = Snapshot::open(snap, *r3);
    REQUIRE(r4);
    CHECK((*r4)->find_v2("r12")->url() == "http://new/");

    // a restart adopts a delta in place with its base
    write(data + "/r20.json", v2_metadata("r20", "http://new/"));
    REQUIRE(b.refresh());
    REQUIRE(b.latest()->base_image());
    SnapshotBuilder again(data, snap, nullptr, nullptr);
    again.adopt_existing();
    CHECK(again.latest()->generation() == b.latest()->generation());
    CHECK(again.latest()->find_v2("r20")->url() == "http://new/");
    CHECK_FALSE(again.refresh());  // nothing changed since
}

TEST_CASE("a delta is refused without its base, over another base, or with a damaged overlay", "[snapshot_delta]") {
    TempDir t;
    const std::string data = t / "data";
    for (int i = 0; i < 5; ++i) write(data + "/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i)));
    SnapshotBuilder b(data, "", nullptr, nullptr);
    REQUIRE(b.refresh());
    const auto base = b.latest();
    std::vector<SnapshotFileInput> files(1);
    files[0].path = data + "/r1.json";
    DeltaKeys keys;
    keys.v2_names = {"r1", "zz", "a"};
    keys.removed_paths = {data + "/r1.json"};
    const std::string good = make_delta(build_snapshot(files, base->generation() + 1, 0, nullptr), *base, keys);
    auto ok = Snapshot::from_bytes(good, base);
    REQUIRE(ok);
    CHECK_FALSE((*ok)->find_v2("r1"));  // named by the overlay, absent from the delta: none
    CHECK((*ok)->find_v2("r2"));
    CHECK((*ok)->summary().files == 5);  // r1 removed, then the delta's own entry for it
    CHECK((*ok)->summary().v2_repos == 4);

    CHECK(Snapshot::from_bytes(good).error() == "a delta over generation 1 without its base");
    CHECK(Snapshot::from_bytes(good, *ok).error() == "the base of a delta is itself a delta");
    SnapshotBuilder other(data, "", nullptr, nullptr);
    other.set_max_delta_files(0);
    REQUIRE(other.refresh());
    write(data + "/r1.json", v2_metadata("r1", "http://x/"));
    REQUIRE(other.refresh());
    CHECK(Snapshot::from_bytes(good, other.latest()).error().rfind("its base is generation 1, and the image found", 0) == 0);

    using namespace snapshot_format;
    SnapshotHeader h;
    std::memcpy(&h, good.data(), sizeof h);
    SECTION("keys out of order") {
        std::string bad = good;
        const SectionRef r = h.sections[kOverlayV2];
        REQUIRE(r.len == 12);
        std::string first = bad.substr(r.off, 4);
        bad.replace(r.off, 4, bad.substr(r.off + 4, 4));
        bad.replace(r.off + 4, 4, first);
        seal_snapshot(bad);
        CHECK(Snapshot::from_bytes(bad, base).error() == "section overlay v2 names is not sorted");
    }
    SECTION("a key outside the overlay strings") {
        std::string bad = good;
        const std::uint32_t header_string = 8;
        std::memcpy(&bad[h.sections[kOverlayRemoved].off], &header_string, 4);
        seal_snapshot(bad);
        CHECK(Snapshot::from_bytes(bad, base).error() == "an entry of section overlay removed paths is not an overlay string");
    }
    SECTION("an overlay in a full image") {
        std::string bad = good;
        const std::uint64_t zero = 0;
        std::memcpy(&bad[offsetof(SnapshotHeader, base_generation)], &zero, 8);
        seal_snapshot(bad);
        CHECK(Snapshot::from_bytes(bad).error() == "section overlay strings in a full image");
    }
}

TEST_CASE("a reader follows deltas on one base mapping, then a compaction that removes the base", "[snapshot_delta]") {
    TempDir t;
    const std::string data = t / "data", snap = t / "s/x.snap";
    std::filesystem::create_directories(t / "s");
    for (int i = 0; i < 40; ++i) write(data + "/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i)));
    auto status = std::make_unique<SharedScanStatus>();
    SnapshotBuilder b(data, snap, status.get(), nullptr);
    b.set_max_delta_files(3);
    REQUIRE(b.refresh());
    SnapshotReader r(snap, status.get(), nullptr);
    const auto g1 = r.current();
    REQUIRE_FALSE(g1->base_image());

    write(data + "/r1.json", v2_metadata("r1", "http://new/"));
    REQUIRE(b.refresh());
    const auto g2 = r.current();
    REQUIRE(g2->base_image() == g1);  // the reader's own mapping of generation 1, not a second one
    write(data + "/r2.json", v2_metadata("r2", "http://new/"));
    REQUIRE(b.refresh());
    const auto g3 = r.current();
    CHECK(g3->base_image() == g1);
    CHECK(g3->find_v2("r1")->url() == "http://new/");

    // past the delta's bound: a full image, and generation 1's file goes
    for (int i = 10; i < 15; ++i) write(data + "/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i), "http://new/"));
    REQUIRE(b.refresh());
    const auto g4 = r.current();
    CHECK(g4->generation() == 4);
    CHECK_FALSE(g4->base_image());
    CHECK(g4->find_v2("r12")->url() == "http://new/");
    struct stat st {};
    CHECK(::stat(Snapshot::base_path(snap, 1).c_str(), &st) != 0);
    // a delta a request still holds keeps answering over the unlinked base
    CHECK(g3->find_v2("r2")->url() == "http://new/");
    CHECK(g3->find_v2("r12")->url() == "http://h/");
}
