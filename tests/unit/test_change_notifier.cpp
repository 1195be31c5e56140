// Changes noticed as they happen: the inotify notifier's view of renames,
// in-place writes, removals and new subdirectories; its fall-back to
// polling at the watch limit; the builder applying notified changes (the
// same snapshot a full scan builds); the rebuild thread end to end.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crane/change_notifier.h"
#include "crane/log_ids.h"
#include "crane/snapshot_store.h"
#include "store_test_helpers.h"
#include "temp_dir.h"

using namespace crane;
using crane::testing::LogCapture;
using crane::testing::v2_metadata;

namespace {

class Tree {
public:
    Tree() { REQUIRE(::mkdir(data().c_str(), 0755) == 0); }
    Tree(const Tree&) = delete;
    Tree& operator=(const Tree&) = delete;

    std::string data() const { return root_ + "/data"; }
    std::string at(const std::string& rel) const { return data() + "/" + rel; }
    void mkdir(const std::string& rel) const { REQUIRE(::mkdir(at(rel).c_str(), 0755) == 0); }
    // written beside and renamed over, as publishers do
    void publish(const std::string& rel, const std::string& text) const {
        const std::string tmp = root_ + "/tmp.part";
        { std::ofstream(tmp, std::ios::binary) << text; }
        REQUIRE(::rename(tmp.c_str(), at(rel).c_str()) == 0);
    }
    // rewritten where it is
    void edit(const std::string& rel, const std::string& text) const {
        std::ofstream(at(rel), std::ios::binary | std::ios::trunc) << text;
    }

private:
    crane::testing::TempDir tmp_;
    const std::string root_ = tmp_.path();
};

// The events so far (they are queued by the time the calls above return).
DataDirChanges drain(ChangeNotifier& n) {
    DataDirChanges c;
    REQUIRE(n.read_into(c));
    return c;
}

std::vector<std::string> ids(const Snapshot& s) {
    std::vector<std::string> out;
    for (const SnapshotFileInfo& f : s.files()) {
        out.push_back(std::string(f.path) + "=" + (f.v2 ? std::string(f.v2->id()) : std::string("-")));
    }
    return out;
}

template <typename Fn>
bool eventually(Fn&& fn) {
    for (int i = 0; i < 400; ++i) {
        if (fn()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

}  // namespace

TEST_CASE("the notifier names renamed, edited and removed files and new subtrees", "[change_notifier]") {
    Tree t;
    t.mkdir("a");
    t.publish("a/one.json", v2_metadata("one"));
    auto opened = ChangeNotifier::open(t.data());
    REQUIRE(opened);
    ChangeNotifier& n = **opened;
    CHECK(n.watches() == 2);

    t.publish("a/two.json", v2_metadata("two"));
    t.edit("a/one.json", v2_metadata("one", "http://other/"));
    DataDirChanges c = drain(n);
    CHECK_FALSE(c.full);
    CHECK(c.paths == std::set<std::string>{t.at("a/one.json"), t.at("a/two.json")});
    CHECK(c.dirs.empty());

    REQUIRE(::unlink(t.at("a/one.json").c_str()) == 0);
    { std::ofstream(t.at("a/notes.txt")) << "x"; }  // not metadata: not named
    c = drain(n);
    CHECK(c.paths == std::set<std::string>{t.at("a/one.json")});

    // a new directory is watched at once: what lands in it is named too
    t.mkdir("b");
    c = drain(n);
    CHECK(c.dirs == std::set<std::string>{t.at("b")});
    CHECK(n.watches() == 3);
    t.publish("b/three.json", v2_metadata("three"));
    c = drain(n);
    CHECK(c.paths == std::set<std::string>{t.at("b/three.json")});

    // a directory renamed away takes its watches along
    REQUIRE(::rename(t.at("b").c_str(), t.at("../gone").c_str()) == 0);
    c = drain(n);
    CHECK(c.dirs == std::set<std::string>{t.at("b")});
    CHECK(n.watches() == 2);
}

TEST_CASE("the data dir replaced under its name is a full scan", "[change_notifier]") {
    Tree t;
    auto opened = ChangeNotifier::open(t.data());
    REQUIRE(opened);
    REQUIRE(::rename(t.data().c_str(), (t.data() + ".old").c_str()) == 0);
    REQUIRE(::mkdir(t.data().c_str(), 0755) == 0);
    DataDirChanges c = drain(**opened);
    CHECK(c.full);
    t.publish("x.json", v2_metadata("x"));  // the new tree is watched
    c = drain(**opened);
    CHECK(c.paths == std::set<std::string>{t.at("x.json")});
    std::system(("rm -rf '" + t.data() + ".old'").c_str());
}

TEST_CASE("the watch limit turns notification off", "[change_notifier]") {
    Tree t;
    t.mkdir("a");
    auto opened = ChangeNotifier::open(t.data(), 1);
    REQUIRE_FALSE(opened);
    CHECK(opened.error().find("watch limit (1) is reached") != std::string::npos);

    auto two = ChangeNotifier::open(t.data(), 2);
    REQUIRE(two);
    t.mkdir("b");  // one too many
    DataDirChanges c;
    CHECK_FALSE((*two)->read_into(c));
    CHECK((*two)->error().find("watch limit (2) is reached") != std::string::npos);
}

TEST_CASE("network filesystems are told apart", "[change_notifier]") {
    CHECK(std::string(network_filesystem_name(0x6969)) == "NFS");
    CHECK(std::string(network_filesystem_name(0xFF534D42)) == "CIFS");
    CHECK(network_filesystem_name(0xEF53) == nullptr);  // ext4
    CHECK(network_filesystem_name(0x01021994) == nullptr);  // tmpfs
}

TEST_CASE("notified changes build what a full scan builds", "[change_notifier]") {
    Tree t;
    t.mkdir("a");
    t.mkdir("a/deep");
    for (int i = 0; i < 5; ++i) t.publish("a/r" + std::to_string(i) + ".json", v2_metadata("r" + std::to_string(i)));
    t.publish("a/deep/d.json", v2_metadata("d"));
    t.publish("top.json", v2_metadata("top"));
    SnapshotBuilder notified(t.data(), "", nullptr, nullptr);
    REQUIRE(notified.refresh());
    auto opened = ChangeNotifier::open(t.data());
    REQUIRE(opened);

    t.publish("a/r1.json", v2_metadata("r1-new"));          // renamed over
    t.edit("a/r2.json", v2_metadata("r2-edited"));          // in place
    REQUIRE(::unlink(t.at("a/r3.json").c_str()) == 0);      // removed
    t.mkdir("c");                                            // a new subtree
    t.publish("c/new.json", v2_metadata("new"));
    REQUIRE(::rename(t.at("a/deep").c_str(), t.at("moved").c_str()) == 0);  // a subtree moved
    DataDirChanges c = drain(**opened);
    ReloadStats st;
    REQUIRE(notified.refresh_changes(c, &st));
    CHECK(st.parsed == 4);  // r1, r2, new, moved/d: nothing else is read

    SnapshotBuilder scanned(t.data(), "", nullptr, nullptr);
    REQUIRE(scanned.refresh());
    CHECK(ids(*notified.latest()) == ids(*scanned.latest()));
    CHECK(notified.latest()->find_v2("r2-edited"));
    CHECK_FALSE(notified.latest()->find_v2("r3"));
    CHECK(notified.latest()->find_v2("new"));

    // nothing notified that changed anything: no new snapshot
    DataDirChanges none;
    none.paths.insert(t.at("top.json"));
    CHECK_FALSE(notified.refresh_changes(none));
}

TEST_CASE("the rebuild thread builds a publish at once and says inotify", "[change_notifier]") {
    Tree t;
    t.publish("a.json", v2_metadata("a"));
    auto status = std::make_unique<SharedScanStatus>();
    SnapshotBuilder builder(t.data(), "", status.get(), nullptr);
    REQUIRE(builder.refresh());
    NotifiedRebuilds rebuilds(builder, nullptr);
    REQUIRE(rebuilds.start() == ChangeNotice::Inotify);
    CHECK(read_status(*status).change_notice == ChangeNotice::Inotify);

    t.publish("b.json", v2_metadata("b"));
    CHECK(eventually([&] { return builder.latest()->find_v2("b").has_value(); }));
    // a burst builds once
    const std::uint64_t before = rebuilds.rebuilds();
    for (int i = 0; i < 20; ++i) t.publish("burst" + std::to_string(i) + ".json", v2_metadata("burst" + std::to_string(i)));
    CHECK(eventually([&] { return builder.latest()->find_v2("burst19").has_value(); }));
    CHECK(rebuilds.rebuilds() - before <= 2);
    rebuilds.stop();
}

TEST_CASE("without notification the thread says poll and logs why", "[change_notifier]") {
    Tree t;
    auto status = std::make_unique<SharedScanStatus>();
    status->change_notice = ChangeNotice::Inotify;
    SnapshotBuilder builder(t.data(), "", status.get(), nullptr);
    LogCapture log;
    NotifiedRebuilds rebuilds(builder, log.sink());
    CHECK(rebuilds.start(0) == ChangeNotice::Poll);
    CHECK(read_status(*status).change_notice == ChangeNotice::Poll);
    CHECK(log.has("are seen by polling only: the watch limit (0) is reached"));
}
