// The snapshot builder's string table (snapshot_string_table.h).
#include "index/snapshot_string_table.h"

#include <algorithm>
#include <stdexcept>

#include "index/snapshot_format.h"

namespace crane {

using snapshot_format::kMaxImageBytes;

namespace {
std::size_t padded(std::size_t n) { return 4 + ((n + 3) & ~std::size_t{3}); }

std::uint64_t word(const unsigned char* p, std::size_t n) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, n);
    return v;
}

// The table's own hash: positions do not depend on it, so it need not be
// the format's hash_id, and a full build looks up millions of strings,
// mostly tags of a few bytes. Up to 16 bytes: two overlapping words;
// beyond, a word at a time, then the last word.
std::uint32_t table_hash(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    constexpr std::uint64_t kM1 = 0x9E3779B97F4A7C15ULL, kM2 = 0xD6E8FEB86659FD93ULL;
    std::uint64_t a = n * kM1, b = 0;
    if (n >= 8) {
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            a = (a ^ word(p + i, 8)) * kM2;
            a ^= a >> 32;
        }
        b = word(p + n - 8, 8);
    } else if (n >= 4) {
        a ^= word(p, 4);
        b = word(p + n - 4, 4);
    } else if (n > 0) {
        b = std::uint64_t{p[0]} | std::uint64_t{p[n / 2]} << 8 | std::uint64_t{p[n - 1]} << 16;
    }
    std::uint64_t h = (a ^ (b * kM1)) * kM2;
    h ^= h >> 29;
    h *= kM1;
    return static_cast<std::uint32_t>(h >> 32);
}
}  // namespace

SnapshotStringTable::SnapshotStringTable() {
    buf_.assign(4, '\0');  // position 0 is never a string: 0 means empty
    slots_.assign(1024, Slot{});
}

std::uint32_t SnapshotStringTable::intern(std::string_view s) {
    if (s.empty()) return 0;
    if (s.size() > kMaxImageBytes) throw std::length_error("snapshot string too long");
    const std::uint32_t h = table_hash(s);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        Slot& slot = slots_[i];
        if (slot.pos == 0) {
            const std::uint32_t pos = append(s);
            slot = Slot{pos, h};
            if (++count_ * 2 > slots_.size()) rehash(slots_.size() * 2);
            return pos;
        }
        if (slot.hash == h && at(slot.pos) == s) return slot.pos;
    }
}

void SnapshotStringTable::reserve(std::size_t strings, std::size_t bytes) {
    buf_.reserve(std::min<std::size_t>(bytes, kMaxImageBytes));
    std::size_t slots = slots_.size();
    while (slots < 2 * strings && slots < (std::size_t{1} << 31)) slots *= 2;  // at most half full
    if (slots != slots_.size()) rehash(slots);
}

void SnapshotStringTable::release() {
    std::string().swap(buf_);
    std::vector<Slot>().swap(slots_);
}

std::uint32_t SnapshotStringTable::append(std::string_view s) {
    const std::size_t pos = buf_.size();
    if (pos + padded(s.size()) > kMaxImageBytes) throw std::length_error("snapshot larger than 4 GiB");
    const auto len = static_cast<std::uint32_t>(s.size());
    buf_.append(reinterpret_cast<const char*>(&len), 4);
    buf_.append(s);
    buf_.append((4 - s.size() % 4) % 4, '\0');
    return static_cast<std::uint32_t>(pos);
}

void SnapshotStringTable::rehash(std::size_t slots) {
    std::vector<Slot> old(slots);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& o : old) {
        if (o.pos == 0) continue;
        std::size_t i = o.hash & mask;
        while (slots_[i].pos != 0) i = (i + 1) & mask;
        slots_[i] = o;
    }
}

}  // namespace crane
