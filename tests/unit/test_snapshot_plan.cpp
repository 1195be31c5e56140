// Where the snapshots live and how often they are rebuilt: the file names,
// the CraneSnapshotDir ownership and reachability policy, the interval.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "crane/snapshot_plan.h"
#include "temp_dir.h"

using namespace crane;

using crane::testing::TempDir;

namespace {

mode_t mode_of(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

SnapshotWriter me() { return {::getuid(), ::getgid()}; }

}  // namespace

TEST_CASE("the scan interval is the configured one, 60 seconds when not positive", "[snapshot_plan]") {
    CHECK(kDefaultScanInterval == 60);
    CHECK(scan_interval(5) == 5);
    CHECK(scan_interval(3600) == 3600);
    CHECK(scan_interval(0) == 60);
    CHECK(scan_interval(-1) == 60);
}

TEST_CASE("a snapshot file is named after its data dir and hashed with the server", "[snapshot_plan]") {
    const std::string a = snapshot_file_path("/run/crane", "/var/lib/crane/metadata", "/etc/apache2\n/etc/apache2/apache2.conf");
    CHECK(std::regex_match(a, std::regex(R"(/run/crane/var_lib_crane_metadata-[0-9a-f]{16}\.snap)")));
    // FNV-1a 64 of "DATA_DIR\nSERVER": stable across releases (a restart adopts the file)
    CHECK(snapshot_file_path("/d", "", "") == "/d/root-af63c74c8601c8dd.snap");
    CHECK(snapshot_file_path("/d", "/a", "b") == snapshot_file_path("/d", "/a", "b"));
    CHECK(snapshot_file_path("/d", "/a", "b") != snapshot_file_path("/d", "/a", "c"));  // another httpd
    CHECK(snapshot_file_path("/d", "/a/b", "s") != snapshot_file_path("/d", "/a_b", "s"));  // same name, other dir
    CHECK(std::regex_match(snapshot_file_path("/d", "/", "s"), std::regex(R"(/d/root-[0-9a-f]{16}\.snap)")));
    CHECK(std::regex_match(snapshot_file_path("/d", "/srv/my repo.v2-x", "s"),
                           std::regex(R"(/d/srv_my_repo\.v2-x-[0-9a-f]{16}\.snap)")));
    // at most 48 characters of the path make the name
    const std::string long_dir = "/" + std::string(100, 'x');
    CHECK(std::regex_match(snapshot_file_path("/d", long_dir, "s"),
                           std::regex("/d/" + std::string(47, 'x') + R"(-[0-9a-f]{16}\.snap)")));
}

TEST_CASE("CraneSnapshotDir is made when missing: parents 0755, itself 0700", "[snapshot_plan]") {
    TempDir t;
    const std::string dir = t.path() + "/a/b/snaps";
    CHECK(prepare_snapshot_dir(dir, me(), false) == std::nullopt);
    CHECK(mode_of(t.path() + "/a") == 0755);
    CHECK(mode_of(t.path() + "/a/b") == 0755);
    CHECK(mode_of(dir) == 0700);
    CHECK(prepare_snapshot_dir(dir, me(), false) == std::nullopt);  // an existing one is fine
}

TEST_CASE("CraneSnapshotDir must be a directory", "[snapshot_plan]") {
    TempDir t;
    const std::string file = t.path() + "/snapfile";
    std::ofstream(file) << "x";
    CHECK(prepare_snapshot_dir(file, me(), false) == "CraneSnapshotDir " + file + ": not a directory");
    CHECK(prepare_snapshot_dir(file, me(), true) == "CraneSnapshotDir " + file + ": not a directory");
}

TEST_CASE("started as root, an existing CraneSnapshotDir must be User's and reachable by User", "[snapshot_plan]") {
    TempDir t;
    const std::string dir = t.path() + "/snaps";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    const SnapshotWriter other{::getuid() + 4242, ::getgid() + 4242};
    CHECK(prepare_snapshot_dir(dir, other, true) ==
          "CraneSnapshotDir " + dir + ": owned by uid " + std::to_string(::getuid()) + ", not by User (uid " +
              std::to_string(other.uid) + ") who writes the snapshots; chown it or name another directory");
    CHECK(prepare_snapshot_dir(dir, me(), true) == std::nullopt);
    // a directory on the way that User cannot pass through
    REQUIRE(::chmod(t.path().c_str(), 0755) == 0);
    const std::string closed = t.path() + "/closed";
    const std::string inner = closed + "/snaps";
    REQUIRE(::mkdir(closed.c_str(), 0700) == 0);
    REQUIRE(::mkdir(inner.c_str(), 0700) == 0);
    const SnapshotWriter owner_of_inner_only{::getuid() + 4242, ::getgid() + 4242};
    CHECK(unreachable_for(inner, owner_of_inner_only) ==
          closed + " (mode 0700, owner uid " + std::to_string(::getuid()) + ")");
    CHECK(unreachable_for(inner, me()) == "");
    CHECK(unreachable_for(t.path() + "/none/x", me()) == t.path() + "/none (No such file or directory)");
}
