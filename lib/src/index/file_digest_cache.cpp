// sha256 of files, cached per file version (see file_digest_cache.h).
#include "crane/file_digest_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>

#include "crane/fd.h"
#include "crane/sha256.h"

namespace crane {

namespace {

struct Hashed {
    std::string digest;
    FileDigestCache::Version version;
    bool stable = false;  // the file did not change while it was read
};

// Hashes the regular file at path. O_NONBLOCK so that a FIFO planted in a
// content dir cannot block the open; it is then refused as not regular.
std::optional<Hashed> hash_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0) return std::nullopt;
    struct stat before {};
    if (::fstat(fd.get(), &before) != 0 || !S_ISREG(before.st_mode)) return std::nullopt;

    Sha256 sha;

    unsigned char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        sha.update(buf, static_cast<std::size_t>(n));
    }
    auto hex = sha.hex();
    if (!hex) return std::nullopt;

    struct stat after {};
    if (::fstat(fd.get(), &after) != 0) return std::nullopt;

    Hashed h;
    h.digest = "sha256:" + *hex;
    h.version = FileStamp::of(before);
    h.stable = h.version == FileStamp::of(after);
    return h;
}

std::int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

FileDigestCache::FileDigestCache(std::size_t capacity, std::chrono::nanoseconds racy_window)
    : capacity_(capacity), racy_window_ns_(racy_window.count()) {}

std::size_t FileDigestCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return index_.size();
}

std::uint64_t FileDigestCache::hash_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return hash_count_;
}

std::optional<std::string> FileDigestCache::lookup(const std::string& path,
                                                   const Version& version) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(path);
    if (it == index_.end() || !(it->second->version == version)) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->digest;
}

void FileDigestCache::store(const std::string& path, const Version& version,
                            const std::string& digest) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++hash_count_;
    if (capacity_ == 0) return;
    auto it = index_.find(path);
    if (it != index_.end()) {
        it->second->version = version;
        it->second->digest = digest;
        lru_.splice(lru_.begin(), lru_, it->second);
        return;
    }
    lru_.push_front(Entry{path, version, digest});
    index_.emplace(path, lru_.begin());
    while (index_.size() > capacity_) {
        index_.erase(lru_.back().path);
        lru_.pop_back();
    }
}

std::optional<std::string> FileDigestCache::sha256_digest(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (auto hit = lookup(path, FileStamp::of(st))) return hit;

    auto hashed = hash_file(path);
    if (!hashed) return std::nullopt;
    // ctime, not mtime: mtime can be set to the past, ctime cannot.
    const bool racy = now_ns() - hashed->version.ctime_ns < racy_window_ns_;
    if (hashed->stable && !racy) {
        store(path, hashed->version, hashed->digest);
    } else {
        std::lock_guard<std::mutex> lock(mutex_);
        ++hash_count_;
    }
    return std::move(hashed->digest);
}

}  // namespace crane
