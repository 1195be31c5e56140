// The snapshot builder and reader over real files: publishing by rename,
// generations in the shared status, incremental builds that parse only
// changed files, restarts that adopt the file in place, refused files that
// are never mapped, and part-written files of dead builders.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "crane/log_ids.h"
#include "store_test_helpers.h"
#include "temp_dir.h"
#include "crane/snapshot_store.h"

using namespace crane;
using crane::testing::LogCapture;
using crane::testing::v2_metadata;

namespace {

class Dir {
public:
    Dir() {
        REQUIRE(::mkdir((path_ + "/data").c_str(), 0755) == 0);
        REQUIRE(::mkdir((path_ + "/snap").c_str(), 0700) == 0);
    }
    Dir(const Dir&) = delete;
    Dir& operator=(const Dir&) = delete;

    std::string data() const { return path_ + "/data"; }
    std::string snap() const { return path_ + "/snap/index.snap"; }

    // written beside and renamed, as publishers do
    void write(const std::string& name, const std::string& text) const {
        const std::string tmp = data() + "/." + name + ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary);
            out << text;
        }
        REQUIRE(::rename(tmp.c_str(), (data() + "/" + name).c_str()) == 0);
    }

private:
    crane::testing::TempDir tmp_;
    const std::string path_ = tmp_.path();
};

// A status page as the module makes it (any zeroed memory will do in-process).
std::unique_ptr<SharedScanStatus> status_page() { return std::make_unique<SharedScanStatus>(); }

}  // namespace

TEST_CASE("the builder publishes by rename and bumps the generation last", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    auto status = status_page();
    LogCapture log;
    SnapshotBuilder b(d.data(), d.snap(), status.get(), log.sink());
    ReloadStats st;
    REQUIRE(b.refresh(&st));
    CHECK(st.files == 1);
    CHECK(st.parsed == 1);
    CHECK(st.v2_repos == 1);
    struct stat sb;
    REQUIRE(::stat(d.snap().c_str(), &sb) == 0);
    CHECK(static_cast<std::size_t>(sb.st_size) == st.snapshot_bytes);
    CHECK(status->generation.load() == 1);
    const ScanStatusCopy copy = read_status(*status);
    CHECK(copy.files == 1);
    CHECK(copy.v2_repos == 1);
    CHECK(copy.builds == 1);
    CHECK(copy.snapshot_bytes == st.snapshot_bytes);
    CHECK(copy.last_error.empty());
    CHECK(log.has(log_id::kMetadataLoaded));

    // nothing changed: a scan, no build, the same generation
    REQUIRE_FALSE(b.refresh(&st));
    CHECK(st.parsed == 0);
    CHECK(status->generation.load() == 1);
    CHECK(read_status(*status).scans == 2);
    CHECK(read_status(*status).builds == 1);

    // a reader follows the generation
    SnapshotReader r(d.snap(), status.get(), nullptr);
    auto s1 = r.current();
    REQUIRE(s1->generation() == 1);
    REQUIRE(s1->find_v2("alpha"));
    CHECK_FALSE(s1->find_v2("beta"));

    d.write("b.json", v2_metadata("beta", "http://cdn.example.com/b/"));
    REQUIRE(b.refresh(&st));
    CHECK(st.parsed == 1);  // only the new file
    CHECK(st.files == 2);
    CHECK(status->generation.load() == 2);
    auto s2 = r.current();
    CHECK(s2->generation() == 2);
    CHECK(s2->find_v2("beta"));
    // a request still holding the old snapshot keeps answering from it
    CHECK(s1->generation() == 1);
    CHECK_FALSE(s1->find_v2("beta"));
    CHECK(s1->find_v2("alpha")->url() == "http://cdn.example.com/a/");
}

TEST_CASE("follow() keeps an idle reader on the generation in place and lets the old one go", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    auto status = status_page();
    SnapshotBuilder b(d.data(), d.snap(), status.get(), nullptr);
    const bool deltas = GENERATE(true, false);
    if (!deltas) b.set_max_delta_files(0);
    REQUIRE(b.refresh());
    SnapshotReader r(d.snap(), status.get(), nullptr);
    r.follow();
    std::weak_ptr<const Snapshot> first = r.current();
    REQUIRE(first.lock()->generation() == 1);

    d.write("b.json", v2_metadata("beta", "http://cdn.example.com/b/"));
    REQUIRE(b.refresh());
    r.follow();  // no request in between: the timer alone moves the reader on
    auto now = r.current();
    if (deltas) {
        // generation 2 is a delta over 1: the same mapping, as its base
        REQUIRE(now->base_image());
        CHECK(now->base_image() == first.lock());
    } else {
        CHECK(first.expired());  // nobody held generation 1: unmapped there and then
    }
    CHECK(now->generation() == 2);
    CHECK(now->find_v2("beta"));

    // a snapshot a request holds stays mapped until that request lets go
    d.write("c.json", v2_metadata("gamma", "http://cdn.example.com/c/"));
    REQUIRE(b.refresh());
    std::weak_ptr<const Snapshot> held = now;
    r.follow();
    CHECK(r.current()->generation() == 3);
    CHECK_FALSE(held.expired());
    now.reset();
    CHECK(held.expired());
}

TEST_CASE("a restart adopts the snapshot in place and parses only what changed", "[snapshot_store]") {
    Dir d;
    for (int i = 0; i < 5; ++i) {
        d.write("r" + std::to_string(i) + ".json", v2_metadata("repo" + std::to_string(i), "http://cdn.example.com/"));
    }
    {
        SnapshotBuilder first(d.data(), d.snap(), nullptr, nullptr);
        REQUIRE(first.refresh());
    }
    auto status = status_page();
    SnapshotBuilder again(d.data(), d.snap(), status.get(), nullptr);
    again.adopt_existing();
    CHECK(again.latest()->generation() == 1);
    ReloadStats st;
    CHECK_FALSE(again.refresh(&st));  // nothing to do
    CHECK(st.parsed == 0);
    CHECK(status->generation.load() == 1);  // the page learns the generation in place

    d.write("r2.json", v2_metadata("repo2", "http://cdn.example.com/new/"));
    REQUIRE(again.refresh(&st));
    CHECK(st.parsed == 1);
    CHECK(again.latest()->generation() == 2);
    CHECK(again.latest()->find_v2("repo2")->url() == "http://cdn.example.com/new/");
    CHECK(again.latest()->find_v2("repo4"));

    // release() unmaps; the next refresh starts from the file in place
    again.release();
    CHECK(again.latest()->generation() == 0);
    CHECK_FALSE(again.refresh(&st));
    CHECK(again.latest()->generation() == 2);
}

TEST_CASE("a broken file keeps its last good content across builds and restarts", "[snapshot_store]") {
    Dir d;
    d.write("f.json", v2_metadata("fragile", "http://cdn.example.com/good/"));
    d.write("p.json", v2_metadata("prot", "http://cdn.example.com/p/"));
    LogCapture log;
    auto status = status_page();
    {
        SnapshotBuilder b(d.data(), d.snap(), status.get(), log.sink());
        REQUIRE(b.refresh());
        d.write("f.json", R"({"version": 2, "repo-registry-id": "fragile", "url": )");
        // new content that means the repo to be protected, then breaks
        d.write("p.json", R"({"version": 2, "protected": true, "repo-registry-id": "prot", "url": )");
        ReloadStats st;
        REQUIRE(b.refresh(&st));
        CHECK(st.failed == 2);
        auto s = b.latest();
        REQUIRE(s->find_v2("fragile"));
        CHECK(s->find_v2("fragile")->url() == "http://cdn.example.com/good/");
        CHECK_FALSE(s->find_v2("prot"));  // fails closed
        CHECK(s->summary().failed_files == 2);
        CHECK(log.has(log_id::kMetadataKept));
        CHECK(log.has(log_id::kMetadataWithdrawn));
        CHECK(read_status(*status).failed_files == 2);
        CHECK(read_status(*status).last_error.find("skipped") != std::string::npos);
    }
    // a new builder (a restart) still has the last good content, and keeps
    // counting the file as failed, without parsing it again
    SnapshotBuilder b2(d.data(), d.snap(), nullptr, nullptr);
    b2.adopt_existing();
    ReloadStats st;
    CHECK_FALSE(b2.refresh(&st));
    CHECK(st.parsed == 0);
    CHECK(b2.latest()->find_v2("fragile")->url() == "http://cdn.example.com/good/");
    CHECK(b2.latest()->summary().failed_files == 2);
    // fixed: a clean build clears the error on show
    d.write("f.json", v2_metadata("fragile", "http://cdn.example.com/fixed/"));
    d.write("p.json", v2_metadata("prot", "http://cdn.example.com/p/"));
    auto status2 = status_page();
    SnapshotBuilder b3(d.data(), d.snap(), status2.get(), nullptr);
    b3.adopt_existing();
    REQUIRE(b3.refresh(&st));
    CHECK(st.failed == 0);
    CHECK(b3.latest()->find_v2("fragile")->url() == "http://cdn.example.com/fixed/");
    CHECK(b3.latest()->find_v2("prot"));
    CHECK(read_status(*status2).last_error.empty());
}

TEST_CASE("a snapshot that fails validation is never mapped", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    auto status = status_page();
    SnapshotBuilder b(d.data(), d.snap(), status.get(), nullptr);
    REQUIRE(b.refresh());
    LogCapture log;
    SnapshotReader r(d.snap(), status.get(), log.sink());
    REQUIRE(r.current()->generation() == 1);

    struct stat sb;
    REQUIRE(::stat(d.snap().c_str(), &sb) == 0);
    SECTION("truncated") {
        // a copy cut short, renamed into place as a broken publisher would
        const std::string tmp = d.snap() + ".cut";
        REQUIRE(std::system(("head -c " + std::to_string(sb.st_size / 2) + " '" + d.snap() + "' > '" + tmp + "'").c_str()) == 0);
        REQUIRE(::rename(tmp.c_str(), d.snap().c_str()) == 0);
    }
    SECTION("a flipped byte") {
        // in a copy renamed into place: the mapped file itself is never
        // written (its readers would see the change)
        const std::string tmp = d.snap() + ".flip";
        REQUIRE(std::system(("cp '" + d.snap() + "' '" + tmp + "'").c_str()) == 0);
        const int fd = ::open(tmp.c_str(), O_RDWR);
        REQUIRE(fd >= 0);
        char c;
        REQUIRE(::pread(fd, &c, 1, sb.st_size - 3) == 1);
        c = static_cast<char>(c ^ 0x40);
        REQUIRE(::pwrite(fd, &c, 1, sb.st_size - 3) == 1);
        ::close(fd);
        REQUIRE(::rename(tmp.c_str(), d.snap().c_str()) == 0);
    }
    SECTION("not a snapshot") {
        const std::string tmp = d.snap() + ".json";
        std::ofstream(tmp, std::ios::binary) << "{\"not\": \"a snapshot\"}";
        REQUIRE(::rename(tmp.c_str(), d.snap().c_str()) == 0);
    }
    status->generation.store(7);  // as if a builder had published it
    auto s = r.current();
    CHECK(s->generation() == 1);  // the old one stays
    CHECK(s->find_v2("alpha"));
    CHECK(log.has(log_id::kSnapshotNotSwitched));
    CHECK(log.has("still answering from generation 1"));
    const std::size_t logged = log.lines.size();
    r.current();
    CHECK(log.lines.size() == logged);  // said once per generation

    // the builder refuses to build on it and starts over, past the page's generation
    SnapshotBuilder b2(d.data(), d.snap(), status.get(), nullptr);
    b2.adopt_existing();
    REQUIRE(b2.refresh());
    CHECK(b2.latest()->generation() == 8);
    CHECK(r.current()->generation() == 8);
}

TEST_CASE("without a status page the reader stat-checks the file at most once a second", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    SnapshotBuilder b(d.data(), d.snap(), nullptr, nullptr);
    REQUIRE(b.refresh());
    SnapshotReader r(d.snap(), nullptr, nullptr);
    REQUIRE(r.current()->generation() == 1);
    d.write("b.json", v2_metadata("beta", "http://cdn.example.com/b/"));
    REQUIRE(b.refresh());
    CHECK(r.current()->generation() == 1);  // checked less than a second ago
    ::usleep(1100 * 1000);
    CHECK(r.current()->generation() == 2);
}

TEST_CASE("part-written files of builders that died are removed", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    // a pid that is certainly gone: a child that has exited and been reaped
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    int wstatus = 0;
    REQUIRE(::waitpid(child, &wstatus, 0) == child);
    const std::string orphan = d.snap() + ".tmp." + std::to_string(child);
    const std::string live = d.snap() + ".tmp." + std::to_string(::getppid());
    std::ofstream(orphan) << "half";
    std::ofstream(live) << "someone else's";
    SnapshotBuilder b(d.data(), d.snap(), nullptr, nullptr);
    REQUIRE(b.refresh());
    struct stat sb;
    CHECK(::stat(orphan.c_str(), &sb) != 0);
    CHECK(::stat(live.c_str(), &sb) == 0);
}

TEST_CASE("the in-memory store answers as the file-backed one", "[snapshot_store]") {
    Dir d;
    d.write("a.json", v2_metadata("alpha", "http://cdn.example.com/a/"));
    IndexStore store(d.data(), nullptr);
    CHECK(store.current()->generation() == 0);
    REQUIRE(store.reload());
    CHECK(store.current()->generation() == 1);
    CHECK(store.current()->find_v2("alpha"));
    CHECK_FALSE(store.reload());
    struct stat sb;
    CHECK(::stat(d.snap().c_str(), &sb) != 0);  // nothing written
}
