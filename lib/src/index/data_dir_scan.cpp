// The scan of a data dir's metadata files and the reader of one of them
// (data_dir_scan.h).
#include "index/data_dir_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "crane/snapshot_store.h"

namespace crane {

namespace {

bool ends_with_json(const std::string& name) { return name.size() > 5 && ends_with(name, ".json"); }

std::string join(const std::string& dir, const std::string& name) {
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// One directory of the walk: the files found in it, and the names of the
// regular *.json files (readdir's type) whose stat is left for later.
struct DirFiles {
    std::string path;
    std::vector<std::pair<std::string, FileStamp>> files;
    std::vector<std::string> regular;
};

void walk(const std::string& dir, std::set<std::pair<dev_t, ino_t>>& seen_dirs, std::vector<DirFiles>& out,
          std::vector<std::string>* problems, int depth) {
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
    DirFiles here{dir, {}, {}};
    while (struct dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        // only *.json files and what may be a directory matter
        if (e->d_type == DT_REG) {
            if (ends_with_json(name)) here.regular.push_back(std::move(name));
            continue;
        }
        if (e->d_type != DT_DIR && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
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
            here.files.emplace_back(join(dir, name), FileStamp::of(st));
        }
    }
    closedir(d);
    if (!here.files.empty() || !here.regular.empty()) out.push_back(std::move(here));
    for (const auto& name : subdirs) walk(join(dir, name), seen_dirs, out, problems, depth + 1);
}

// The stat of one directory's regular files (opened again: the walk holds
// no directory open meanwhile). A file or directory removed since the walk
// is left out, as a raced removal is.
void stat_regular(DirFiles& dir) {
    const Fd dfd(::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() < 0) return;
    for (const auto& name : dir.regular) {
        struct stat st;
        if (fstatat(dfd.get(), name.c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
        dir.files.emplace_back(join(dir.path, name), FileStamp::of(st));
    }
    std::vector<std::string>().swap(dir.regular);
}

// The regular files' stats, on two threads for a large tree: a stat is a
// few microseconds in the kernel and a data dir may hold 100k files, while
// the second core is idle during the scan.
void stat_all(std::vector<DirFiles>& dirs) {
    std::size_t files = 0;
    for (const auto& d : dirs) files += d.regular.size();
    constexpr std::size_t kParallelFrom = 2048;  // fewer: a thread costs more than it saves
    std::vector<char> done(dirs.size(), 0);
    std::atomic<std::size_t> next{0};
    auto work = [&]() noexcept {
        for (;;) {
            const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= dirs.size()) return;
            try {
                stat_regular(dirs[i]);
                done[i] = 1;
            } catch (const std::exception&) {  // out of memory: left to the caller's thread
            }
        }
    };
    std::thread helper;
    if (files >= kParallelFrom && dirs.size() > 1 && std::thread::hardware_concurrency() > 1) {
        try {
            helper = std::thread(work);
        } catch (const std::system_error&) {  // no thread to be had: stat alone
        }
    }
    work();
    if (helper.joinable()) helper.join();
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        if (!done[i]) stat_regular(dirs[i]);
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
    // the walk finds the directories (in order: which path reaches a
    // directory first decides), the regular files are stat'ed after it
    std::vector<DirFiles> dirs;
    walk(dir, seen, dirs, problems, 0);
    stat_all(dirs);
    std::size_t n = 0;
    for (const auto& d : dirs) n += d.files.size();
    out.reserve(n);
    for (auto& d : dirs) {
        for (auto& f : d.files) out.push_back(std::move(f));
    }
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
