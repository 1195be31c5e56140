// The snapshot builder's string table (snapshot_string_table.h).
#include "index/snapshot_string_table.h"

#include <algorithm>
#include <stdexcept>

#include "index/snapshot_format.h"

namespace crane {

using snapshot_format::hash_id;
using snapshot_format::kMaxImageBytes;

namespace {
std::size_t padded(std::size_t n) { return 4 + ((n + 3) & ~std::size_t{3}); }
}  // namespace

SnapshotStringTable::SnapshotStringTable() {
    buf_.assign(4, '\0');  // position 0 is never a string: 0 means empty
    slots_.assign(1024, Slot{});
}

std::uint32_t SnapshotStringTable::intern(std::string_view s) {
    if (s.empty()) return 0;
    if (s.size() > kMaxImageBytes) throw std::length_error("snapshot string too long");
    const std::uint32_t h = hash_id(s);
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
