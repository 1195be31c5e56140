// What stat(2) says about one version of a file. Any difference means the
// file may have changed: the metadata reload and the manifest digest cache
// both decide "read it again" with it.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>

namespace crane {

// A file whose stamp is this recent may still change without its stamp
// changing (a same-size rewrite within the filesystem's timestamp
// granularity, git's "racy clean" problem): its content is compared, not
// its stamp, until the stamp is this far in the past. Two seconds cover
// filesystems with one-second timestamps. The reload and the digest cache
// both use it.
inline constexpr std::chrono::nanoseconds kRacyWindow = std::chrono::seconds(2);

struct FileStamp {
    std::uint64_t dev = 0, ino = 0;
    std::int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp& o) const {
        return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }

    static FileStamp of(const struct stat& st) {
        FileStamp s;
        s.dev = static_cast<std::uint64_t>(st.st_dev);
        s.ino = static_cast<std::uint64_t>(st.st_ino);
        s.size = static_cast<std::int64_t>(st.st_size);
        s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        s.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
        return s;
    }
};

}  // namespace crane
