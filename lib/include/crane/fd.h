// A file descriptor closed when it goes out of scope, and the writes built
// on it: write_all, and a file written beside its final path then renamed
// over it (readers see the old file or the new one, never a part-written
// one), with the removal of the temporary files writers that died left.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "crane/result.h"

namespace crane {

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            if (fd_ >= 0) ::close(fd_);
            fd_ = o.release();
        }
        return *this;
    }
    int get() const { return fd_; }
    // Gives up ownership: the caller closes it.
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

// Writes all n bytes (through short writes and EINTR); false with errno set.
bool write_all(int fd, const char* p, std::size_t n);

// A new version of `path`, written in a temporary file beside it and
// renamed over it by commit(); the temporary file is removed unless
// committed. Each step returns false with errno set and error() saying
// what failed ("cannot write <temp>: <reason>"); the first failure stops
// every later step.
class ReplacementFile {
public:
    // Creates the temporary file `temp` with `mode` (whatever the umask).
    // A temp ending in "XXXXXX" is made unique (mkstemp); any other name is
    // created or truncated.
    ReplacementFile(std::string path, std::string temp, mode_t mode = 0644);
    ~ReplacementFile();
    ReplacementFile(const ReplacementFile&) = delete;
    ReplacementFile& operator=(const ReplacementFile&) = delete;

    bool ok() const { return error_.empty(); }
    bool created() const { return created_; }  // false: the temporary file could not be made
    const std::string& error() const { return error_; }
    int error_number() const { return errno_; }
    const std::string& temp_path() const { return temp_; }

    bool write(std::string_view bytes);
    // Closes the file, after an fsync when `sync`.
    bool close(bool sync = false);
    // Renames the (closed) temporary file over `path`.
    bool commit();
    // Removes the temporary file now (a failed check of what was written).
    void discard();

private:
    bool fail(const char* what, const std::string& name);
    std::string path_, temp_;
    Fd fd_;
    std::string error_;
    int errno_ = 0;
    bool created_ = false;
    bool done_ = false;  // committed or discarded
};

// Unlinks every `dir`/`prefix`SUFFIX for which orphaned(SUFFIX) holds (the
// temporary files of writers that died mid-write).
void remove_temp_files(const std::string& dir, const std::string& prefix,
                       const std::function<bool(std::string_view suffix)>& orphaned);

// mkdir -p: each missing parent is made with `parent_mode`, `dir` itself
// with `mode` (both whatever the umask). Ok with `dir` when it is a
// directory afterwards; else an error naming the path that failed
// ("cannot create directory P: reason", "P exists and is not a
// directory"), errno set.
Result<std::string> make_directories(const std::string& dir, mode_t mode, mode_t parent_mode = 0755);

}  // namespace crane
