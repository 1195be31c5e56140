// Reading a data dir for the snapshot builder: the scan of its metadata
// files (scan_metadata_files, declared in crane/snapshot_store.h) and the
// reader that parses and hashes one of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crane/fd.h"
#include "crane/result.h"
#include "crane/strings.h"

namespace crane {

constexpr std::size_t kMaxMetadataBytes = 256u << 20;  // a metadata file larger than this is refused

// A metadata file read in chunks (never held whole; O_NONBLOCK: a FIFO
// swapped in after the scan must not hang the build): its bytes are hashed
// as they go by, and a read error, a file over the size cap or a file that
// cannot be opened is told apart from content that does not parse.
class FileReader {
    struct Token {};  // keeps construction to open() while allowing make_unique

public:
    // The reader of an open file, or why the file cannot be read at all.
    // hash: whether to hash the content (only files that may change without
    // their stamp changing are ever compared by content)
    static Result<std::unique_ptr<FileReader>> open(const std::string& path, bool hash = true);
    FileReader(Token, int fd, bool hash) : fd_(fd), hashing_(hash) {}

    // Why a read failed (the parser only sees -1 from read()); empty if none did.
    const std::string& read_error() const { return error_; }
    std::uint64_t hash() const { return hash_; }

    long read(char* buf, std::size_t n);

    // Reads what the parser left (a refused file stops early), so that the
    // hash covers every byte. False on a read error.
    bool drain();

private:
    Fd fd_;
    bool hashing_;
    std::string error_;
    std::size_t total_ = 0;
    bool at_end_ = false;  // the last read returned 0
    std::uint64_t hash_ = kFnv1aBasis;  // FNV-1a (crane/strings.h)
};

}  // namespace crane
