// The sha256 digest of a file's bytes ("sha256:<hex>"), computed once per
// file version and remembered, for Docker-Content-Digest on manifests served
// from the content dirs. One instance per child process, shared by its
// threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "crane/file_stamp.h"

namespace crane {

class FileDigestCache {
  public:
    // capacity: the most files remembered; the least recently used entry is
    // dropped beyond it. 0 disables caching (every call hashes).
    //
    // racy_window: a file whose st_ctim is less than this far in the past is
    // hashed but not remembered. File time stamps are coarse (a clock tick),
    // so a same-size rewrite in place within the same tick would otherwise
    // leave a stale digest forever (git's "racy clean" problem). Freshly
    // published files are simply hashed again until they are this old.
    explicit FileDigestCache(std::size_t capacity = 4096,
                             std::chrono::nanoseconds racy_window = kRacyWindow);

    FileDigestCache(const FileDigestCache&) = delete;
    FileDigestCache& operator=(const FileDigestCache&) = delete;

    // "sha256:" + 64 lowercase hex of the bytes of the file at path
    // (symlinks followed), or nullopt when it is not a regular file or cannot
    // be opened or read.
    //
    // A cached digest is reused only while stat(path) still shows the same
    // (st_dev, st_ino, st_size, st_mtim, st_ctim): replacing the file by
    // rename, rewriting it in place (even at the same size and with mtime set
    // back, which ctime still catches), or repointing a symlink all cause a
    // fresh hash (see also racy_window).
    //
    // The lock covers only the map, never the hashing: two threads missing on
    // the same file at once both hash it. A file that changes while being
    // hashed gets the digest of what was read, which is not cached.
    std::optional<std::string> sha256_digest(const std::string& path);

    std::size_t size() const;
    std::size_t capacity() const { return capacity_; }
    // How many times file contents were hashed (misses), for tests and stats.
    std::uint64_t hash_count() const;

    using Version = FileStamp;  // identity of one version of a file

  private:
    struct Entry {
        std::string path;
        Version version;
        std::string digest;
    };
    using Lru = std::list<Entry>;  // front = most recently used

    std::optional<std::string> lookup(const std::string& path, const Version& version);
    void store(const std::string& path, const Version& version, const std::string& digest);

    const std::size_t capacity_;
    const std::int64_t racy_window_ns_;
    mutable std::mutex mutex_;
    Lru lru_;
    std::unordered_map<std::string, Lru::iterator> index_;
    std::uint64_t hash_count_ = 0;
};

}  // namespace crane
