// Unit tests for the per-file-version sha256 cache (crane/file_digest_cache.h).
// Expected digests come from the sha256sum tool.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "crane/file_digest_cache.h"
#include "temp_dir.h"

using crane::FileDigestCache;
using namespace std::chrono_literals;

using crane::testing::TempDir;

namespace {

// Rewrites in place (same inode): truncate and write.
void write_file(const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    REQUIRE(f.good());
}

std::string sha256sum(const std::string& path) {
    FILE* pipe = ::popen(("sha256sum '" + path + "'").c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[65] = {};
    const std::size_t n = std::fread(buf, 1, 64, pipe);
    REQUIRE(::pclose(pipe) == 0);
    REQUIRE(n == 64);
    return "sha256:" + std::string(buf, 64);
}

void set_mtime(const std::string& path, std::time_t seconds, long nanoseconds = 0) {
    struct timespec times[2] = {{seconds, nanoseconds}, {seconds, nanoseconds}};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

struct timespec mtime_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mtim;
}

}  // namespace

TEST_CASE("the digest is sha256: plus the sha256sum of the file's bytes", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    std::string big;
    for (int i = 0; i < 200000; ++i) big += static_cast<char>('a' + i % 26);  // several reads
    const std::pair<const char*, std::string> files[] = {
        {"empty", ""},
        {"manifest.json", "{\"schemaVersion\": 2}\n"},
        {"binary", std::string("\0\x01\xff\n\r", 5)},
        {"big", big},
    };
    for (const auto& [name, content] : files) {
        INFO(name);
        write_file(dir.file(name), content);
        CHECK(cache.sha256_digest(dir.file(name)) == sha256sum(dir.file(name)));
    }
    CHECK(cache.sha256_digest(dir.file("empty")) ==
          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a file's digest is computed once while the file is unchanged", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    write_file(dir.file("m"), "manifest");
    const auto first = cache.sha256_digest(dir.file("m"));
    for (int i = 0; i < 5; ++i) CHECK(cache.sha256_digest(dir.file("m")) == first);
    CHECK(cache.hash_count() == 1);
    CHECK(cache.size() == 1);
}

TEST_CASE("the digest changes when the file is rewritten at a new size", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    const std::string path = dir.file("m");
    write_file(path, "v1");
    const auto before = cache.sha256_digest(path);
    write_file(path, "version 2");
    CHECK(cache.sha256_digest(path) == sha256sum(path));
    CHECK(cache.sha256_digest(path) != before);
}

TEST_CASE("the digest changes when rewritten in place at the same size, different mtime",
          "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    const std::string path = dir.file("m");
    write_file(path, "aaaa");
    set_mtime(path, 1000000000);
    const auto before = cache.sha256_digest(path);
    write_file(path, "bbbb");
    set_mtime(path, 1000000000, 1);  // one nanosecond later
    CHECK(cache.sha256_digest(path) == sha256sum(path));
    CHECK(cache.sha256_digest(path) != before);
    CHECK(cache.hash_count() == 2);
}

TEST_CASE("the digest changes when rewritten at the same size with the mtime put back",
          "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    const std::string path = dir.file("m");
    write_file(path, "aaaa");
    const struct timespec original = mtime_of(path);
    const auto before = cache.sha256_digest(path);
    std::this_thread::sleep_for(50ms);  // past the file system's time stamp granularity
    write_file(path, "bbbb");
    set_mtime(path, original.tv_sec, original.tv_nsec);  // ctime still moves
    CHECK(cache.sha256_digest(path) == sha256sum(path));
    CHECK(cache.sha256_digest(path) != before);
}

TEST_CASE("the digest changes when the file is replaced by rename", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    const std::string path = dir.file("m");
    write_file(path, "aaaa");
    set_mtime(path, 1000000000);
    const auto before = cache.sha256_digest(path);
    write_file(dir.file("m.new"), "bbbb");
    set_mtime(dir.file("m.new"), 1000000000);  // same size and mtime, other inode
    REQUIRE(::rename(dir.file("m.new").c_str(), path.c_str()) == 0);
    CHECK(cache.sha256_digest(path) == sha256sum(path));
    CHECK(cache.sha256_digest(path) != before);
}

TEST_CASE("symlinks are followed and a repointed symlink gets a new digest", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    write_file(dir.file("a"), "content a");
    write_file(dir.file("b"), "content b");
    REQUIRE(::symlink("a", dir.file("link").c_str()) == 0);
    CHECK(cache.sha256_digest(dir.file("link")) == sha256sum(dir.file("a")));
    REQUIRE(::unlink(dir.file("link").c_str()) == 0);
    REQUIRE(::symlink("b", dir.file("link").c_str()) == 0);
    CHECK(cache.sha256_digest(dir.file("link")) == sha256sum(dir.file("b")));
}

TEST_CASE("files changed within the racy window are hashed on every call", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 1h);
    const std::string path = dir.file("m");
    write_file(path, "fresh");
    for (int i = 0; i < 3; ++i) CHECK(cache.sha256_digest(path) == sha256sum(path));
    CHECK(cache.hash_count() == 3);
    CHECK(cache.size() == 0);
}

TEST_CASE("missing, unreadable and non-regular files have no digest", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    CHECK_FALSE(cache.sha256_digest(dir.file("missing")));
    CHECK_FALSE(cache.sha256_digest(dir.file("")));  // the directory itself
    CHECK_FALSE(cache.sha256_digest(""));
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    CHECK_FALSE(cache.sha256_digest(dir.file("fifo")));  // and does not block
    REQUIRE(::symlink("missing", dir.file("dangling").c_str()) == 0);
    CHECK_FALSE(cache.sha256_digest(dir.file("dangling")));
    // A regular file whose read fails (EIO at offset 0).
    CHECK_FALSE(cache.sha256_digest("/proc/self/mem"));
    // Root reads anything, so only an unprivileged run can test permissions.
    if (::geteuid() != 0) {
        write_file(dir.file("secret"), "x");
        REQUIRE(::chmod(dir.file("secret").c_str(), 0) == 0);
        CHECK_FALSE(cache.sha256_digest(dir.file("secret")));
    }
    CHECK(cache.size() == 0);
}

TEST_CASE("a file that disappears drops out of the answers", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(16, 0ns);
    write_file(dir.file("m"), "x");
    REQUIRE(cache.sha256_digest(dir.file("m")));
    REQUIRE(::unlink(dir.file("m").c_str()) == 0);
    CHECK_FALSE(cache.sha256_digest(dir.file("m")));
}

TEST_CASE("the cache holds at most its capacity, evicting the least recently used",
          "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(3, 0ns);
    for (const char* name : {"a", "b", "c", "d", "e"}) write_file(dir.file(name), name);
    cache.sha256_digest(dir.file("a"));
    cache.sha256_digest(dir.file("b"));
    cache.sha256_digest(dir.file("c"));
    cache.sha256_digest(dir.file("a"));  // a is now the most recently used
    CHECK(cache.hash_count() == 3);
    cache.sha256_digest(dir.file("d"));  // evicts b
    CHECK(cache.size() == 3);
    CHECK(cache.hash_count() == 4);
    cache.sha256_digest(dir.file("a"));
    cache.sha256_digest(dir.file("c"));
    cache.sha256_digest(dir.file("d"));
    CHECK(cache.hash_count() == 4);
    CHECK(cache.sha256_digest(dir.file("b")) == sha256sum(dir.file("b")));  // evicts a
    CHECK(cache.hash_count() == 5);
    for (int i = 0; i < 20; ++i) {
        const std::string name = "f" + std::to_string(i);
        write_file(dir.file(name), name);
        CHECK(cache.sha256_digest(dir.file(name)) == sha256sum(dir.file(name)));
        CHECK(cache.size() <= 3);
    }
}

TEST_CASE("a cache of capacity 0 hashes on every call and holds nothing", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(0, 0ns);
    write_file(dir.file("m"), "x");
    CHECK(cache.sha256_digest(dir.file("m")) == sha256sum(dir.file("m")));
    CHECK(cache.sha256_digest(dir.file("m")) == sha256sum(dir.file("m")));
    CHECK(cache.hash_count() == 2);
    CHECK(cache.size() == 0);
}

TEST_CASE("concurrent callers all get correct digests while entries are evicted",
          "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(8, 0ns);
    constexpr int kFiles = 20;
    std::vector<std::string> paths;
    std::vector<std::string> expected;
    for (int i = 0; i < kFiles; ++i) {
        paths.push_back(dir.file("f" + std::to_string(i)));
        write_file(paths.back(), std::string(1000 + i * 37, static_cast<char>('a' + i)));
        expected.push_back(sha256sum(paths.back()));
    }
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 300; ++i) {
                const int k = (i * 7 + t * 3) % kFiles;
                if (cache.sha256_digest(paths[k]) != expected[k]) ++wrong;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(cache.size() <= 8);
}

TEST_CASE("concurrent callers of one file all get its digest", "[digest_cache]") {
    TempDir dir;
    FileDigestCache cache(8, 0ns);
    const std::string path = dir.file("m");
    write_file(path, std::string(300000, 'm'));
    const std::string expected = sha256sum(path);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                if (cache.sha256_digest(path) != expected) ++wrong;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(cache.hash_count() <= 8);  // at most one miss per thread, never one per call
}
