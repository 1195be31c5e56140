// Scanning, incremental reload and the atomic swap (see index_store.h).
#include "crane/index_store.h"
#include "crane/result.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <set>

namespace crane {

namespace {

constexpr std::size_t kMaxMetadataBytes = 256u << 20;  // a metadata file larger than this is refused
constexpr std::int64_t kRacyWindowNs = kRacyWindow.count();  // see file_stamp.h

bool ends_with_json(const std::string& name) {
    return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
}

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
        names.push_back(std::move(name));
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        std::string path = dir.back() == '/' ? dir + name : dir + "/" + name;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;  // dangling symlink or raced removal
        if (S_ISDIR(st.st_mode)) {
            if (seen_dirs.insert({st.st_dev, st.st_ino}).second) {
                walk(path, seen_dirs, out, problems, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && ends_with_json(name)) {
            out.emplace_back(std::move(path), FileStamp::of(st));
        }
    }
}

// A metadata file read in chunks (never held whole; O_NONBLOCK: a FIFO
// swapped in after the scan must not hang the reload): its bytes are hashed
// as they go by, and a read error, a file over the size cap or a file that
// cannot be opened is told apart from content that does not parse.
class FileReader {
    struct Token {};  // keeps construction to open() while allowing make_unique

public:
    // The reader of an open file, or why the file cannot be read at all.
    static Result<std::unique_ptr<FileReader>> open(const std::string& path) {
        using Opened = Result<std::unique_ptr<FileReader>>;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) return Opened::failure(std::string("cannot be opened: ") + std::strerror(errno));
        auto reader = std::make_unique<FileReader>(Token{}, fd);  // owns fd from here
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

    // Why a read failed (the parser only sees -1 from read()); empty if none did.
    const std::string& read_error() const { return error_; }
    std::size_t hash() const { return static_cast<std::size_t>(hash_); }

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
        // FNV-1a
        for (ssize_t i = 0; i < got; ++i) {
            hash_ = (hash_ ^ static_cast<unsigned char>(buf[i])) * 0x100000001b3ULL;
        }
        return static_cast<long>(got);
    }

    // Reads what the parser left (a refused file stops early), so that the
    // hash covers every byte. False on a read error.
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

IndexStore::IndexStore(std::string data_dir, std::int64_t poll_interval_seconds, LogSink log)
    : data_dir_(std::move(data_dir)),
      interval_(poll_interval_seconds > 0 ? poll_interval_seconds : 60),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      current_(Index::build({}, nullptr)) {}

IndexStore::~IndexStore() { stop_watcher(); }

std::shared_ptr<const Index> IndexStore::current() const { return std::atomic_load(&current_); }

bool IndexStore::reload(ReloadStats* stats) {
    std::unique_lock<std::mutex> lock(reload_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;

    const std::int64_t scan_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    // written so recently that a same-size rewrite may keep its stamp
    auto recent = [scan_ns](const FileStamp& s) { return s.mtime_ns >= scan_ns - kRacyWindowNs; };
    std::vector<std::string> problems;
    auto files = scan_metadata_files(data_dir_, &problems);
    // a racy entry whose bytes changed is re-parsed even with an equal stamp
    std::set<std::string> stale;
    std::size_t rechecked = 0;
    for (auto& [path, entry] : cache_) {
        if (!entry.racy) continue;
        ++rechecked;
        auto f = FileReader::open(path);
        if (!f || !(*f)->drain() || (*f)->hash() != entry.content_hash) stale.insert(path);
    }
    bool changed = !loaded_once_ || files.size() != cache_.size() || !stale.empty();
    if (!changed) {
        auto it = cache_.begin();
        for (const auto& [path, stamp] : files) {
            if (it->first != path || it->second.stamp != stamp) {
                changed = true;
                break;
            }
            ++it;
        }
    }
    if (!changed) {
        // racy entries stay racy until their mtime is safely in the past
        for (auto& [path, entry] : cache_) {
            if (entry.racy && !recent(entry.stamp)) entry.racy = false;
        }
        return false;
    }
    for (const auto& p : problems) log(log_, LogLevel::Error, log_id::kDataDirProblem, "metadata: " + p);

    ReloadStats st;
    st.files = files.size();
    st.rechecked = rechecked;
    std::map<std::string, Cached> next;
    for (const auto& [path, stamp] : files) {
        auto old = cache_.find(path);
        if (old != cache_.end() && old->second.stamp == stamp && !stale.count(path)) {
            Cached& kept = next.emplace(path, std::move(old->second)).first->second;
            // verified unchanged; once its mtime is safely past, trust the stamp
            if (kept.racy && !recent(kept.stamp)) kept.racy = false;
            continue;
        }
        Cached entry;
        entry.stamp = stamp;
        entry.racy = recent(stamp);
        ++st.parsed;
        auto file = FileReader::open(path);
        // a file that does not open stays a failure: read_error says why
        MetadataResult parsed = MetadataResult::failure(MetadataError{});
        std::string read_error;
        if (file) {
            FileReader& reader = **file;
            parsed = parse_metadata_stream([&reader](char* buf, std::size_t n) { return reader.read(buf, n); }, path);
            reader.drain();
            entry.content_hash = reader.hash();
            read_error = reader.read_error();
        } else {
            read_error = file.error();
        }
        if (parsed.ok()) {
            entry.v1 = parsed->v1;
            entry.v2 = parsed->v2;
        } else {
            ++st.failed;
            entry.failed_now = true;
            // an unreadable file (permissions, I/O) is no content at all
            const bool unreadable = !read_error.empty();
            const std::string error = unreadable ? read_error : parsed.error().message;
            const bool had_content = old != cache_.end() && (old->second.v1 || old->second.v2);
            if (had_content && !unreadable && !parsed.error().marks_protected) {
                entry.v1 = old->second.v1;
                entry.v2 = old->second.v2;
                log(log_, LogLevel::Error, log_id::kMetadataKept,
                    "metadata file " + path + " skipped: " + error + "; keeping its last good content");
            } else if (had_content) {
                // never serve the old content of a repo being taken down or
                // protected: fail closed until the file is fixed
                log(log_, LogLevel::Error, log_id::kMetadataWithdrawn,
                    "metadata file " + path + " skipped: " + error +
                                          (unreadable ? "; its repository is not served until the file can be read"
                                                      : "; the new content marks it protected, so its repository "
                                                        "is not served until the file is fixed"));
            } else {
                log(log_, LogLevel::Error, log_id::kMetadataSkipped, "metadata file " + path + " skipped: " + error);
            }
        }
        next.emplace(path, std::move(entry));
    }
    cache_ = std::move(next);
    loaded_once_ = true;

    Index::Records records;
    for (const auto& [path, entry] : cache_) {
        if (entry.v1) records.v1.push_back(entry.v1);
        if (entry.v2) records.v2.push_back(entry.v2);
    }
    std::vector<std::string> warnings;
    auto index = Index::build(std::move(records), &warnings);
    for (const auto& w : warnings) log(log_, LogLevel::Warn, log_id::kIndexWarning, "metadata: " + w);
    st.v1_repos = index->v1_sorted().size();
    st.v2_repos = index->v2_sorted().size();
    std::atomic_store(&current_, std::move(index));
    log(log_, LogLevel::Info, log_id::kMetadataLoaded, "metadata loaded from " + data_dir_ + ": " + std::to_string(st.files) +
                             " files (" + std::to_string(st.parsed) + " parsed, " +
                             std::to_string(st.failed) + " failed), " + std::to_string(st.v1_repos) +
                             " v1 and " + std::to_string(st.v2_repos) + " v2 repositories");
    if (stats) *stats = st;
    return true;
}

void IndexStore::start_watcher() {
    std::lock_guard<std::mutex> g(watch_mutex_);
    if (watcher_.joinable()) return;
    stop_ = false;
    watcher_ = std::thread([this] {
        // nothing may escape a thread (std::terminate): every failure is a
        // log line, and a failed reload keeps the current index
        try {
            std::unique_lock<std::mutex> lock(watch_mutex_);
            while (!stop_) {
                if (watch_cv_.wait_for(lock, std::chrono::seconds(interval_), [this] { return stop_; })) break;
                lock.unlock();
                try {
                    reload();
                } catch (const std::exception& e) {
                    log(log_, LogLevel::Error, log_id::kReloadFailed,
                        std::string("metadata reload failed: ") + e.what());
                } catch (...) {
                    log(log_, LogLevel::Error, log_id::kReloadFailed, "metadata reload failed: unknown exception");
                }
                lock.lock();
            }
        } catch (...) {
            try {
                log(log_, LogLevel::Error, log_id::kWatcherFailed, "metadata watcher stopped: unexpected failure");
            } catch (...) {  // logging itself failed (out of memory): nothing left to tell
            }
        }
    });
}

void IndexStore::stop_watcher() noexcept {
    try {
        {
            std::lock_guard<std::mutex> g(watch_mutex_);
            stop_ = true;
        }
        watch_cv_.notify_all();
        if (watcher_.joinable()) watcher_.join();
    } catch (const std::exception& e) {
        try {
            log(log_, LogLevel::Error, log_id::kWatcherFailed, std::string("metadata watcher stop failed: ") + e.what());
        } catch (...) {  // logging itself failed: nothing left to tell
        }
        if (watcher_.joinable()) watcher_.detach();
    }
}

}  // namespace crane
