// The writes on Fd (crane/fd.h): a replacement file is seen whole or not at
// all, leaves nothing behind when not committed, says what failed, and the
// temporary files of dead writers are removed by the caller's rule.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "crane/fd.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

using crane::testing::TempDir;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::set<std::string> names(const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

}  // namespace

TEST_CASE("a replacement file takes the final name only when committed", "[fd]") {
    TempDir d;
    const std::string path = d.path() + "/index";
    std::ofstream(path) << "old";
    {
        crane::ReplacementFile f(path, path + ".tmp.1");
        REQUIRE(f.ok());
        CHECK(f.created());
        CHECK(f.temp_path() == path + ".tmp.1");
        REQUIRE(f.write("new bytes"));
        REQUIRE(f.close());
        CHECK(slurp(path) == "old");  // not yet
        REQUIRE(f.commit());
    }
    CHECK(slurp(path) == "new bytes");
    CHECK(names(d.path()) == std::set<std::string>{"index"});
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("an uncommitted replacement file leaves nothing behind", "[fd]") {
    TempDir d;
    const std::string path = d.path() + "/index";
    {
        crane::ReplacementFile f(path, path + ".tmp.XXXXXX");
        REQUIRE(f.ok());
        CHECK(f.temp_path().size() == path.size() + 11);
        CHECK(f.temp_path().compare(0, path.size() + 5, path + ".tmp.") == 0);
        CHECK(f.temp_path().substr(path.size() + 5) != "XXXXXX");
        REQUIRE(f.write("part"));
        CHECK(names(d.path()).size() == 1);
    }
    CHECK(names(d.path()).empty());
}

TEST_CASE("a replacement file that cannot be made says so and does nothing", "[fd]") {
    TempDir d;
    const std::string path = d.path() + "/missing/index";
    crane::ReplacementFile f(path, path + ".tmp.1");
    CHECK_FALSE(f.ok());
    CHECK_FALSE(f.created());
    CHECK(f.error() == "cannot create " + path + ".tmp.1: No such file or directory");
    CHECK(f.error_number() == ENOENT);
    CHECK_FALSE(f.write("x"));
    CHECK_FALSE(f.commit());
    CHECK(f.error() == "cannot create " + path + ".tmp.1: No such file or directory");  // the first failure stays
}

TEST_CASE("temporary files are removed by the caller's rule only", "[fd]") {
    TempDir d;
    for (const char* n : {"index.tmp.12", "index.tmp.34", "index.tmp.", "other.tmp.12", "index"}) {
        std::ofstream(d.path() + "/" + n) << "x";
    }
    crane::remove_temp_files(d.path(), "index.tmp.", [](std::string_view suffix) { return suffix == "12"; });
    CHECK(names(d.path()) == std::set<std::string>{"index.tmp.34", "index.tmp.", "other.tmp.12", "index"});
}

TEST_CASE("write_all writes every byte", "[fd]") {
    TempDir d;
    const std::string path = d.path() + "/f";
    crane::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    REQUIRE(fd.get() >= 0);
    const std::string big(1 << 20, 'z');
    REQUIRE(crane::write_all(fd.get(), big.data(), big.size()));
    CHECK(slurp(path) == big);
    CHECK_FALSE(crane::write_all(-1, "x", 1));
    CHECK(errno == EBADF);
}
