// The scan of a data dir's metadata files and the reader of one of them
// (data_dir_scan.h).
#include "index/data_dir_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "crane/snapshot_store.h"

namespace crane {

namespace {

bool ends_with_json(const std::string& name) { return name.size() > 5 && ends_with(name, ".json"); }

void walk(const std::string& dir, std::set<std::pair<dev_t, ino_t>>& seen_dirs,
          std::vector<std::pair<std::string, FileStamp>>& out, std::vector<std::string>* problems,
          int depth) {
    if (depth > 64) {
        if (problems) problems->push_back(dir + ": nested too deep; not searched");
        return;
    }
    DIR* d = opendir(dir.c_str());
    if (!d) {
        if (problems) problems->push_back(dir + ": cannot open directory");
        return;
    }
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        // only *.json files and what may be a directory matter
        if (e->d_type != DT_DIR && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN && !ends_with_json(name)) continue;
        names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    // stat relative to the open directory: no path walk per file
    const int dfd = dirfd(d);
    std::vector<std::string> subdirs;
    for (const auto& name : names) {
        struct stat st;
        if (fstatat(dfd, name.c_str(), &st, 0) != 0) continue;  // dangling symlink or raced removal
        if (S_ISDIR(st.st_mode)) {
            if (seen_dirs.insert({st.st_dev, st.st_ino}).second) subdirs.push_back(name);
        } else if (S_ISREG(st.st_mode) && ends_with_json(name)) {
            out.emplace_back(dir.back() == '/' ? dir + name : dir + "/" + name, FileStamp::of(st));
        }
    }
    closedir(d);
    for (const auto& name : subdirs) {
        walk(dir.back() == '/' ? dir + name : dir + "/" + name, seen_dirs, out, problems, depth + 1);
    }
}

}  // namespace

std::vector<std::pair<std::string, FileStamp>> scan_metadata_files(const std::string& dir,
                                                                   std::vector<std::string>* problems) {
    std::vector<std::pair<std::string, FileStamp>> out;
    std::set<std::pair<dev_t, ino_t>> seen;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (problems) problems->push_back(dir + ": data_dir does not exist or is not a directory");
        return out;
    }
    seen.insert({st.st_dev, st.st_ino});
    walk(dir, seen, out, problems, 0);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

Result<std::unique_ptr<FileReader>> FileReader::open(const std::string& path, bool hash) {
    using Opened = Result<std::unique_ptr<FileReader>>;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return Opened::failure(std::string("cannot be opened: ") + std::strerror(errno));
    auto reader = std::make_unique<FileReader>(Token{}, fd, hash);  // owns fd from here
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(kMaxMetadataBytes)) {
        return Opened::failure("larger than 256 MiB");
    }
    return Opened(std::move(reader));
}

long FileReader::read(char* buf, std::size_t n) {
    if (!error_.empty()) return -1;
    ssize_t got;
    do {
        got = ::read(fd_.get(), buf, n);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        error_ = std::string("read error: ") + std::strerror(errno);
        return -1;
    }
    at_end_ = got == 0;
    total_ += static_cast<std::size_t>(got);
    if (total_ > kMaxMetadataBytes) {
        error_ = "larger than 256 MiB";
        return -1;
    }
    if (hashing_) hash_ = fnv1a(std::string_view(buf, static_cast<std::size_t>(got)), hash_);
    return static_cast<long>(got);
}

bool FileReader::drain() {
    // the parser read to the end (the usual case): nothing is left, and a
    // read to be told so again was one system call per file
    if (at_end_ && error_.empty()) return true;
    // uninitialised: zeroing 64 KiB per file only to read 0 bytes showed in a full build
    constexpr std::size_t kChunk = std::size_t{64} * 1024;
    const std::unique_ptr<char[]> buf(new char[kChunk]);
    long n;
    while ((n = read(buf.get(), kChunk)) > 0) {
    }
    return n == 0;
}

}  // namespace crane
