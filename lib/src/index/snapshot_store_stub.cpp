// INTERIM STUB, to be deleted when snapshot_store.cpp lands (branch snapapi):
// only what IndexStore needs (SnapshotBuilder with snapshots in memory) and
// scan_metadata_files, so the request-path code, its tests and the tools
// link and run against the Snapshot API. No snapshot file is written or
// adopted, no shared status is kept, SnapshotReader is not implemented.
//
// refresh() is index_store.cpp's reload on the snapshot: the previous
// snapshot's file table is the cache (unchanged files carry their records
// over), a file that fails keeps its last good content unless it became
// unreadable or marks its repo protected, recently written ("racy") files
// are compared by content. The scan and FileReader are index_store.cpp's.
#include "crane/snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

namespace crane {

namespace {

constexpr std::size_t kMaxMetadataBytes = 256u << 20;  // a metadata file larger than this is refused
constexpr std::int64_t kRacyWindowNs = kRacyWindow.count();  // see file_stamp.h

bool ends_with_json(const std::string& name) {
    return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
}

void walk(const std::string& dir, std::set<std::pair<dev_t, ino_t>>& seen_dirs,
          std::vector<std::pair<std::string, FileStamp>>& out, std::vector<std::string>* problems, int depth) {
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
        names.push_back(std::move(name));
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        std::string path = dir.back() == '/' ? dir + name : dir + "/" + name;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;  // dangling symlink or raced removal
        if (S_ISDIR(st.st_mode)) {
            if (seen_dirs.insert({st.st_dev, st.st_ino}).second) walk(path, seen_dirs, out, problems, depth + 1);
        } else if (S_ISREG(st.st_mode) && ends_with_json(name)) {
            out.emplace_back(std::move(path), FileStamp::of(st));
        }
    }
}

// index_store.cpp's FileReader: chunked reads, hashed as they go by
// (FNV-1a), a read error or a file over the cap told apart from bad content.
class FileReader {
    struct Token {};

public:
    static Result<std::unique_ptr<FileReader>> open(const std::string& path) {
        using Opened = Result<std::unique_ptr<FileReader>>;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) return Opened::failure(std::string("cannot be opened: ") + std::strerror(errno));
        auto reader = std::make_unique<FileReader>(Token{}, fd);
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(kMaxMetadataBytes)) {
            return Opened::failure("larger than 256 MiB");
        }
        return Opened(std::move(reader));
    }
    FileReader(Token, int fd) : fd_(fd) {}
    ~FileReader() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;

    const std::string& read_error() const { return error_; }
    std::uint64_t hash() const { return hash_; }

    long read(char* buf, std::size_t n) {
        if (!error_.empty()) return -1;
        ssize_t got;
        do {
            got = ::read(fd_, buf, n);
        } while (got < 0 && errno == EINTR);
        if (got < 0) {
            error_ = std::string("read error: ") + std::strerror(errno);
            return -1;
        }
        total_ += static_cast<std::size_t>(got);
        if (total_ > kMaxMetadataBytes) {
            error_ = "larger than 256 MiB";
            return -1;
        }
        for (ssize_t i = 0; i < got; ++i) hash_ = (hash_ ^ static_cast<unsigned char>(buf[i])) * 0x100000001b3ULL;
        return static_cast<long>(got);
    }

    bool drain() {
        std::vector<char> buf(std::size_t{64} * 1024);
        long n;
        while ((n = read(buf.data(), buf.size())) > 0) {
        }
        return n == 0;
    }

private:
    int fd_;
    std::string error_;
    std::size_t total_ = 0;
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t since_ns(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
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

SnapshotBuilder::SnapshotBuilder(std::string data_dir, std::string snapshot_path, SharedScanStatus* status,
                                 LogSink log)
    : data_dir_(std::move(data_dir)),
      path_(std::move(snapshot_path)),
      status_(status),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      latest_(Snapshot::empty()) {}

void SnapshotBuilder::adopt_existing() {}  // the stub never writes a file

std::shared_ptr<const Snapshot> SnapshotBuilder::latest() const { return std::atomic_load(&latest_); }

bool SnapshotBuilder::refresh(ReloadStats* stats) {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;

    const std::shared_ptr<const Snapshot> prev = latest();  // alive while its records are carried
    const auto t_scan = std::chrono::steady_clock::now();
    const std::int64_t scan_at = wall_ns();
    auto recent = [scan_at](const FileStamp& s) { return s.mtime_ns >= scan_at - kRacyWindowNs; };
    std::vector<std::string> problems;
    auto files = scan_metadata_files(data_dir_, &problems);

    // a racy entry whose bytes changed is parsed again even with an equal stamp
    const std::size_t old_count = prev->file_count();
    std::vector<SnapshotFileInfo> old;
    old.reserve(old_count);
    for (std::size_t i = 0; i < old_count; ++i) old.push_back(prev->file(i));
    std::set<std::string_view> stale;
    std::size_t rechecked = 0;
    for (const SnapshotFileInfo& info : old) {
        if (!info.racy) continue;
        ++rechecked;
        auto f = FileReader::open(std::string(info.path));
        if (!f || !(*f)->drain() || (*f)->hash() != info.content_hash) stale.insert(info.path);
    }
    bool changed = !loaded_once_ || files.size() != old.size() || !stale.empty();
    for (std::size_t i = 0; !changed && i < files.size(); ++i) {
        changed = old[i].path != files[i].first || old[i].stamp != files[i].second;
    }
    // (the stub keeps racy flags until the next build: an unchanged scan
    // cannot clear them in an immutable snapshot)
    if (!changed) return false;
    for (const auto& p : problems) log(log_, LogLevel::Error, log_id::kDataDirProblem, "metadata: " + p);

    ReloadStats st;
    st.files = files.size();
    st.rechecked = rechecked;
    st.scan_ns = since_ns(t_scan);
    const auto t_parse = std::chrono::steady_clock::now();
    std::vector<SnapshotFileInput> inputs;
    inputs.reserve(files.size());
    for (auto& [path, stamp] : files) {
        auto it = std::lower_bound(old.begin(), old.end(), path,
                                   [](const SnapshotFileInfo& f, const std::string& p) { return f.path < p; });
        const SnapshotFileInfo* before = it != old.end() && it->path == path ? &*it : nullptr;
        SnapshotFileInput in;
        in.path = path;
        in.stamp = stamp;
        if (before && before->stamp == stamp && !stale.count(before->path)) {
            in.content_hash = before->content_hash;
            in.racy = before->racy && recent(stamp);  // verified unchanged; trusted once safely past
            in.failed = before->failed;
            in.carried_v1 = before->v1;
            in.carried_v2 = before->v2;
            inputs.push_back(std::move(in));
            continue;
        }
        in.racy = recent(stamp);
        ++st.parsed;
        auto file = FileReader::open(path);
        MetadataResult parsed = MetadataResult::failure(MetadataError{});
        std::string read_error;
        if (file) {
            FileReader& reader = **file;
            parsed = parse_metadata_stream([&reader](char* buf, std::size_t n) { return reader.read(buf, n); }, path);
            reader.drain();
            in.content_hash = reader.hash();
            read_error = reader.read_error();
        } else {
            read_error = file.error();
        }
        if (parsed.ok()) {
            in.parsed = std::move(*parsed);
        } else {
            ++st.failed;
            in.failed = true;
            const bool unreadable = !read_error.empty();
            const std::string error = unreadable ? read_error : parsed.error().message;
            const bool had_content = before && (before->v1 || before->v2);
            if (had_content && !unreadable && !parsed.error().marks_protected) {
                in.carried_v1 = before->v1;
                in.carried_v2 = before->v2;
                log(log_, LogLevel::Error, log_id::kMetadataKept,
                    "metadata file " + path + " skipped: " + error + "; keeping its last good content");
            } else if (had_content) {
                log(log_, LogLevel::Error, log_id::kMetadataWithdrawn,
                    "metadata file " + path + " skipped: " + error +
                        (unreadable ? "; its repository is not served until the file can be read"
                                    : "; the new content marks it protected, so its repository "
                                      "is not served until the file is fixed"));
            } else {
                log(log_, LogLevel::Error, log_id::kMetadataSkipped, "metadata file " + path + " skipped: " + error);
            }
        }
        inputs.push_back(std::move(in));
    }
    st.parse_ns = since_ns(t_parse);

    const auto t_build = std::chrono::steady_clock::now();
    std::vector<std::string> warnings;
    std::string bytes;
    try {
        bytes = build_snapshot(inputs, prev->generation() + 1, wall_ns(), &warnings);
    } catch (const std::exception& e) {
        log(log_, LogLevel::Error, log_id::kReloadFailed, std::string("metadata snapshot not built: ") + e.what());
        return false;
    }
    for (const auto& w : warnings) log(log_, LogLevel::Warn, log_id::kIndexWarning, "metadata: " + w);
    st.snapshot_bytes = bytes.size();
    auto opened = Snapshot::from_bytes(std::move(bytes));
    st.build_ns = since_ns(t_build);
    if (!opened) {
        log(log_, LogLevel::Error, log_id::kReloadFailed, "metadata snapshot refused: " + opened.error());
        return false;
    }
    std::shared_ptr<const Snapshot> next = std::move(*opened);
    const SnapshotSummary summary = next->summary();
    st.v1_repos = summary.v1_repos;
    st.v2_repos = summary.v2_repos;
    std::atomic_store(&latest_, std::move(next));
    loaded_once_ = true;
    log(log_, LogLevel::Info, log_id::kMetadataLoaded,
        "metadata loaded from " + data_dir_ + ": " + std::to_string(st.files) + " files (" +
            std::to_string(st.parsed) + " parsed, " + std::to_string(st.failed) + " failed), " +
            std::to_string(st.v1_repos) + " v1 and " + std::to_string(st.v2_repos) + " v2 repositories");
    if (stats) *stats = st;
    return true;
}

}  // namespace crane
