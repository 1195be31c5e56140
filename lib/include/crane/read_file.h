// Reading a whole (small) file into memory, for the configuration file and
// crane-publish's inputs. Each caller words its own messages from the error.
#pragma once

#include <cstddef>
#include <string>

#include "crane/result.h"

namespace crane {

struct FileReadError {
    enum class Kind { Open, Read, TooLarge };
    Kind kind = Kind::Open;
    int errno_value = 0;  // for Open and Read
};

// The bytes of `path`; TooLarge as soon as more than max_bytes were read.
Result<std::string, FileReadError> read_whole_file(const std::string& path, std::size_t max_bytes);

}  // namespace crane
