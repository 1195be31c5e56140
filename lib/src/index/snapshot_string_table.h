// The snapshot builder's string table: every string of an image interned
// once, in the order first seen, each a u32 length + bytes padded to 4 (the
// strings section's bytes, see snapshot_format.h). A string's position in
// the table, plus the section's offset, is its offset in the image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace crane {

class SnapshotStringTable {
public:
    SnapshotStringTable();

    // The position of `s` (0 for the empty string), appended when new.
    // Throws std::length_error past the format's 32-bit offsets.
    std::uint32_t intern(std::string_view s);
    // The string at a position intern returned.
    std::string_view at(std::uint32_t pos) const {
        std::uint32_t len;
        std::memcpy(&len, buf_.data() + pos, 4);
        return {buf_.data() + pos + 4, len};
    }
    const std::string& bytes() const { return buf_; }
    // Makes room for about `strings` strings of `bytes` bytes in all, so
    // that a large build neither rehashes nor regrows (an estimate: more
    // still fit, the table grows as before).
    void reserve(std::size_t strings, std::size_t bytes);
    // Frees the table (once its bytes are in the image).
    void release();

private:
    struct Slot {
        std::uint32_t pos = 0, hash = 0;
    };
    std::uint32_t append(std::string_view s);
    void rehash(std::size_t slots);  // a power of two

    std::string buf_;
    std::vector<Slot> slots_;  // open addressing by table_hash (see the .cpp), 0 = empty
    std::size_t count_ = 0;
};

}  // namespace crane
