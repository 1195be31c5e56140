// The snapshot format's hash, checksum and sha256 codec (snapshot_format.h).
#include "index/snapshot_format.h"

namespace crane {

namespace snapshot_format {

namespace {

constexpr u64 kMul1 = 0x9E3779B97F4A7C15ULL, kMul2 = 0xC2B2AE3D27D4EB4FULL;

inline u64 rotl(u64 x, int r) { return (x << r) | (x >> (64 - r)); }
inline u64 fmix(u64 h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 33);
}

}  // namespace

// Four independent lanes so the multiplies overlap: memory bandwidth, not
// the multiply latency, bounds it. Each step is a bijection of the lane for
// a fixed word, so any change to one word changes the result.
u64 hash_words(const unsigned char* p, std::size_t n, u64 seed) {
    u64 h[4] = {seed, seed ^ kMul1, seed ^ kMul2, seed + 1};
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (std::size_t l = 0; l < 4; ++l) h[l] = rotl(h[l] ^ (load64(p + i + 8 * l) * kMul1), 31) * kMul2;
    }
    for (int l = 0; i + 8 <= n; i += 8, ++l) h[l] = rotl(h[l] ^ (load64(p + i) * kMul1), 31) * kMul2;
    if (i < n) {
        unsigned char tail[8] = {};
        std::memcpy(tail, p + i, n - i);
        h[3] = rotl(h[3] ^ (load64(tail) * kMul1), 31) * kMul2;
    }
    return fmix(h[0] ^ rotl(h[1], 17) ^ rotl(h[2], 31) ^ rotl(h[3], 47) ^ n);
}

// Eight characters at a time (a build decodes millions of them): per byte,
// ge(n) has the high bit set when the byte is >= n (the byte's own high
// bit, set first, absorbs the borrow, so bytes do not interfere).
bool decode_sha256(std::string_view s, unsigned char* raw) {
    if (s.size() != 71 || std::memcmp(s.data(), "sha256:", 7) != 0) return false;
    constexpr u64 kLow = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + 7;
    for (std::size_t i = 0; i < 8; ++i) {
        const u64 x = load64(p + 8 * i);
        auto ge = [x](u64 n) { return ((x | kHigh) - n * kLow) & kHigh; };
        const u64 digit = ge('0') & ~ge('9' + 1), letter = ge('a') & ~ge('f' + 1);
        if ((x & kHigh) != 0 || (digit | letter) != kHigh) return false;
        u64 v = (x & (0x0F * kLow)) + (letter >> 7) * 9;  // each byte its nibble
        v = ((v << 4) | (v >> 8)) & 0x00FF00FF00FF00FFULL;  // pairs of nibbles
        v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
        v = (v | (v >> 16)) & 0xFFFFFFFFULL;
        const auto w = static_cast<u32>(v);
        std::memcpy(raw + 4 * i, &w, 4);
    }
    return true;
}

}  // namespace snapshot_format

using snapshot_format::SnapshotHeader;

std::uint64_t snapshot_checksum(const unsigned char* data, std::size_t size) {
    using snapshot_format::hash_words;
    if (size < sizeof(SnapshotHeader)) return hash_words(data, size, 0);
    unsigned char head[sizeof(SnapshotHeader)];
    std::memcpy(head, data, sizeof head);
    std::memset(head + snapshot_format::kChecksumAt, 0, 8);
    const std::uint64_t seed = hash_words(head, sizeof head, 0);
    return hash_words(data + sizeof(SnapshotHeader), size - sizeof(SnapshotHeader), seed);
}

void seal_snapshot(std::string& bytes) {
    if (bytes.size() < sizeof(SnapshotHeader)) return;
    const std::uint64_t sum = snapshot_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    std::memcpy(&bytes[snapshot_format::kChecksumAt], &sum, 8);
}

}  // namespace crane
