#include "crane/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "crane/fd.h"

namespace crane {

Result<std::string, FileReadError> read_whole_file(const std::string& path, std::size_t max_bytes) {
    using Read = Result<std::string, FileReadError>;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Read::failure({FileReadError::Kind::Open, errno});
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Read::failure({FileReadError::Kind::Read, errno});
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_bytes) return Read::failure({FileReadError::Kind::TooLarge, 0});
    }
    return out;
}

}  // namespace crane
