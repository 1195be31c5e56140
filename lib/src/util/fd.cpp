// Writes on file descriptors (crane/fd.h).
#include "crane/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace crane {

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

namespace {
bool unique_name_wanted(const std::string& temp) {
    return temp.size() >= 6 && temp.compare(temp.size() - 6, 6, "XXXXXX") == 0;
}
}  // namespace

ReplacementFile::ReplacementFile(std::string path, std::string temp, mode_t mode)
    : path_(std::move(path)), temp_(std::move(temp)) {
    const std::string asked = temp_;
    if (unique_name_wanted(temp_)) {
        std::vector<char> name(temp_.begin(), temp_.end());
        name.push_back('\0');
        fd_ = Fd(::mkstemp(name.data()));
        if (fd_.get() >= 0) temp_ = name.data();
    } else {
        fd_ = Fd(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    }
    if (fd_.get() < 0) {
        done_ = true;  // nothing to remove
        fail("cannot create", asked);
        return;
    }
    created_ = true;
    if (::fchmod(fd_.get(), mode) != 0) fail("cannot chmod", temp_);
}

ReplacementFile::~ReplacementFile() { discard(); }

bool ReplacementFile::fail(const char* what, const std::string& name) {
    errno_ = errno;
    if (error_.empty()) error_ = std::string(what) + " " + name + ": " + std::strerror(errno_);
    return false;
}

bool ReplacementFile::write(std::string_view bytes) {
    if (!ok()) return false;
    if (!write_all(fd_.get(), bytes.data(), bytes.size())) return fail("cannot write", temp_);
    return true;
}

bool ReplacementFile::close(bool sync) {
    if (!ok()) return false;
    if (sync && ::fsync(fd_.get()) != 0) return fail("cannot write", temp_);
    if (::close(fd_.release()) != 0) return fail("cannot write", temp_);
    return true;
}

bool ReplacementFile::commit() {
    if (!ok()) return false;
    if (fd_.get() >= 0 && !close()) return false;
    if (::rename(temp_.c_str(), path_.c_str()) != 0) return fail("cannot rename", temp_ + " to " + path_);
    done_ = true;
    return true;
}

void ReplacementFile::discard() {
    if (done_) return;
    done_ = true;
    fd_ = Fd();
    ::unlink(temp_.c_str());
}

void remove_temp_files(const std::string& dir, const std::string& prefix,
                       const std::function<bool(std::string_view suffix)>& orphaned) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (const struct dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        if (orphaned(name.substr(prefix.size()))) ::unlink((dir + "/" + std::string(name)).c_str());
    }
    ::closedir(d);
}

namespace {

// One level: made with `mode` if missing, then checked to be a directory.
std::optional<std::string> make_one_directory(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) == 0) {
        if (::chmod(path.c_str(), mode) != 0) {
            return "cannot create directory " + path + ": " + std::strerror(errno);
        }
        return std::nullopt;
    }
    if (errno != EEXIST) return "cannot create directory " + path + ": " + std::strerror(errno);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return "cannot create directory " + path + ": " + std::strerror(errno);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return path + " exists and is not a directory";
    }
    return std::nullopt;
}

}  // namespace

Result<std::string> make_directories(const std::string& dir, mode_t mode, mode_t parent_mode) {
    for (std::size_t slash = dir.find('/', 1); slash != std::string::npos; slash = dir.find('/', slash + 1)) {
        if (slash + 1 == dir.size()) break;  // a trailing slash: dir itself
        if (auto error = make_one_directory(dir.substr(0, slash), parent_mode)) {
            return Result<std::string>::failure(std::move(*error));
        }
    }
    if (auto error = make_one_directory(dir, mode)) return Result<std::string>::failure(std::move(*error));
    return dir;
}

}  // namespace crane
