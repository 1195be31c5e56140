// The index snapshot: encoding (build_snapshot), validation (open,
// from_bytes) and the views' lookups (see snapshot.h, docs/design.md "The
// index snapshot").
//
// Byte layout (format 1). Little-endian; every offset is a u32 from the
// start of the image; 0 means "none" (the header sits there) and, for a
// string, the empty string. Sections start 8-aligned, records and strings
// are 4-aligned, so every field is naturally aligned.
//
//   header (136 bytes)
//     0 magic "CRNSNAP\0"   8 u32 format       12 u32 header size
//    16 u64 total size     24 u64 generation   32 i64 built_at_ns
//    40 u64 checksum (snapshot_checksum: the whole image, this field as 0)
//    48 u32 files, failed files, v1 repos, v2 repos (the summary)
//    64 9 x {u32 offset, u32 length}: the sections, in this order:
//   records      every record (v1 and v2, winners and losers), see below
//   strings      interned strings: u32 length, bytes, zero padding to 4
//   v1 hash      open addressing, u32 record offsets (0 = empty slot),
//   v2 hash      a power of two slots, probed linearly from hash(id)
//   v1 sorted    u32 record offsets of the winners, by id
//   v2 sorted
//   images       {u32 image id string, u32 count, u32 offset of the first
//                 of `count` u32 record offsets in `image repos`}, by image id
//   image repos  u32 record offsets (each image's v1 repos, by id)
//   files        56-byte entries, by path: {u32 path, u32 record (0: none;
//                records are 4-aligned, so its low bits hold racy = 1 and
//                failed = 2), u64 dev, u64 ino, i64 size, i64 mtime_ns,
//                i64 ctime_ns, u64 content hash}
//
// A record starts with 24 common bytes: u8 kind (1 v1, 2 v2), u8 flags
// (protected 1, has_schema2_fields 2, has_tags 4, url_path is a slice of
// url 8, repository is a slice of url 16), u8 version, u8 0, then u32
// strings id, repository, url, url_path, source_path (a slice is start <<
// 16 | length within url, in place of a string offset).
//   v1: u32 images_json, tags_json, image count, tag count; the image ids
//       (u32 strings, file order); the tags ({u32 tag, u32 image}, by tag).
//   v2: u32 mask of the non-empty arrays below, one u32 count per set bit,
//       then those arrays in this order: schema2 sha256 digests (32 raw
//       bytes each, sorted), schema2 other refs (u32 strings, sorted by
//       bytes), the same two for manifest_list_data, oci_index_data and
//       oci_manifest_data; amd64 ({u32 tag string | 1 when schema version
//       2 | 2 when the digest is raw, 32 bytes: the raw sha256 or a u32
//       string}, by tag); tags (u32 strings, sorted); referrer lists ({u32 subject
//       string, u32 count, u32 offset of `count` u32 descriptor offsets},
//       by subject). The descriptor offset arrays and the descriptors
//       ({u32 media type, u32 digest, u32 size low, u32 size high, u32
//       artifact type, u32 annotation count, {u32 key, u32 value}...})
//       follow the arrays inside the record.
//
// The checksum and the section bounds are checked once, when a snapshot
// is opened; every offset read from inside a section is still checked
// against the image's size when it is followed (a bad one reads as "none"),
// so a corrupt image that passed the checksum cannot make a lookup read
// outside the image.
#include "crane/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "crane/fd.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the snapshot format is little-endian");

namespace crane {

namespace {

using u8 = std::uint8_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

constexpr char kMagic[8] = {'C', 'R', 'N', 'S', 'N', 'A', 'P', '\0'};

enum Section : u32 { kRecords, kStrings, kV1Hash, kV2Hash, kV1Sorted, kV2Sorted, kImages, kImageRepos, kFiles, kSectionCount };
constexpr const char* kSectionNames[kSectionCount] = {"records",   "strings", "v1 hash",     "v2 hash", "v1 sorted",
                                                      "v2 sorted", "images",  "image repos", "files"};
// entry size of each section (its length is a multiple of it)
constexpr u32 kSectionUnit[kSectionCount] = {4, 4, 4, 4, 4, 4, 12, 4, 56};

struct SectionRef {
    u32 off = 0, len = 0;
};

struct Header {
    char magic[8];
    u32 format;
    u32 header_size;
    u64 total_size;
    u64 generation;
    std::int64_t built_at_ns;
    u64 checksum;
    u32 files, failed_files, v1_repos, v2_repos;
    SectionRef sections[kSectionCount];
};
static_assert(sizeof(Header) == 136, "header layout");
constexpr std::size_t kChecksumAt = offsetof(Header, checksum);

constexpr u8 kKindV1 = 1, kKindV2 = 2;
constexpr u8 kProtected = 1, kHasSchema2 = 2, kHasTags = 4, kUrlPathSlice = 8, kRepositorySlice = 16;
constexpr u32 kCommonSize = 24;
// the low bits of an amd64 entry's tag offset (strings are 4-aligned)
constexpr u32 kSchema2Bit = 1, kRawDigest = 2, kLowBits = 3;

// v2 record arrays, in order, and their element sizes
enum V2Array : u32 { kS2Dig, kS2Str, kMlDig, kMlStr, kOiDig, kOiStr, kOmDig, kOmStr, kAmd64, kTags, kReferrers, kV2ArrayCount };
constexpr u32 kV2Unit[kV2ArrayCount] = {32, 4, 32, 4, 32, 4, 32, 4, 36, 4, 12};
constexpr u32 kFileEntry = 56;
constexpr u32 kRacyBit = 1, kFailedBit = 2;  // the low bits of a file entry's record offset

constexpr u64 kMul1 = 0x9E3779B97F4A7C15ULL, kMul2 = 0xC2B2AE3D27D4EB4FULL;

inline u64 rotl(u64 x, int r) { return (x << r) | (x >> (64 - r)); }
inline u64 load64(const unsigned char* p) {
    u64 v;
    std::memcpy(&v, p, 8);
    return v;
}
inline u64 fmix(u64 h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 33);
}

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

// The hash of ids (the name tables) and of the builder's intern table.
u32 hash_id(std::string_view s) { return static_cast<u32>(hash_words(reinterpret_cast<const unsigned char*>(s.data()), s.size(), 7)); }

// "sha256:" + 64 lowercase hex: the digests stored as 32 raw bytes (their
// byte order is their text order, so sorted text stays sorted raw).
// Decodes one into raw[32]; false for anything else. Eight characters at a
// time (a build decodes millions of them): per byte, ge(n) has the high bit
// set when the byte is >= n (the byte's own high bit, set first, absorbs the
// borrow, so bytes do not interfere).
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

}  // namespace

// ---- reading: every access checked against the image's size ----

struct SnapshotAccess {
    static u32 u32at(const Snapshot* s, u64 off) {
        if (off + 4 > s->size_) return 0;
        u32 v;
        std::memcpy(&v, s->data_ + off, 4);
        return v;
    }
    static u64 u64at(const Snapshot* s, u64 off) {
        if (off + 8 > s->size_) return 0;
        return load64(s->data_ + off);
    }
    static u8 u8at(const Snapshot* s, u64 off) { return off < s->size_ ? s->data_[off] : 0; }
    // n bytes at off, or nullptr when they are not all inside the image
    static const unsigned char* bytes(const Snapshot* s, u64 off, u64 n) {
        return off + n <= s->size_ ? s->data_ + off : nullptr;
    }
    static std::string_view str(const Snapshot* s, u32 off) {
        if (off == 0) return {};
        const u64 len = u32at(s, off);
        const unsigned char* p = bytes(s, u64{off} + 4, len);
        return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
    }
    // how many u32-sized (or `unit`-sized) entries from base fit in the image
    static std::size_t clamp(const Snapshot* s, u64 base, u64 n, u64 unit) {
        if (base > s->size_) return 0;
        return static_cast<std::size_t>(std::min<u64>(n, (s->size_ - base) / unit));
    }
    static Header header(const Snapshot* s) {
        Header h;
        std::memcpy(&h, s->data_, sizeof h);
        return h;
    }
    static SectionRef section(const Snapshot* s, Section k) {
        const u64 at = offsetof(Header, sections) + sizeof(SectionRef) * k;
        return SectionRef{u32at(s, at), u32at(s, at + 4)};
    }

    static Result<std::shared_ptr<const Snapshot>> validate(std::shared_ptr<Snapshot> s);
};

using A = SnapshotAccess;

namespace {

// Where each array of a v2 record is; counts clamped to the image.
struct V2Layout {
    u32 at[kV2ArrayCount] = {};
    u32 n[kV2ArrayCount] = {};
    u32 end = 0;  // where the arrays end (the referrers' descriptors follow)
};

V2Layout v2_layout(const Snapshot* s, u32 off) {
    V2Layout l;
    const u32 mask = A::u32at(s, u64{off} + kCommonSize);
    u64 counts = u64{off} + kCommonSize + 4;
    u64 pos = counts + 4 * static_cast<u64>(__builtin_popcount(mask & ((1u << kV2ArrayCount) - 1)));
    for (u32 k = 0; k < kV2ArrayCount; ++k) {
        if (!(mask & (1u << k))) continue;
        const u64 n = A::u32at(s, counts);
        counts += 4;
        const u64 fit = A::clamp(s, pos, n, kV2Unit[k]);
        if (fit != n || pos > 0xFFFFFFFFu) return V2Layout{};  // a corrupt record: no arrays at all
        l.at[k] = static_cast<u32>(pos);
        l.n[k] = static_cast<u32>(n);
        pos += n * kV2Unit[k];
    }
    l.end = static_cast<u32>(std::min<u64>(pos, 0xFFFFFFFFu));
    return l;
}

int compare_str(std::string_view a, std::string_view b) { return a.compare(b); }

// Binary search of `key` in n u32 string offsets at `at`.
bool find_string_ref(const Snapshot* s, u32 at, u32 n, std::string_view key) {
    u32 lo = 0, hi = n;
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const int c = compare_str(A::str(s, A::u32at(s, u64{at} + 4 * u64{mid})), key);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return false;
}

bool find_raw(const Snapshot* s, u32 at, u32 n, const unsigned char* raw) {
    const unsigned char* base = A::bytes(s, at, u64{n} * 32);
    if (!base) return false;
    u32 lo = 0, hi = n;
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const int c = std::memcmp(base + 32 * u64{mid}, raw, 32);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return false;
}

bool in_ref_set(const Snapshot* s, u32 off, V2Array dig, std::string_view ref) {
    const V2Layout l = v2_layout(s, off);
    unsigned char raw[32];
    if (decode_sha256(ref, raw)) return find_raw(s, l.at[dig], l.n[dig], raw);
    const auto strs = static_cast<V2Array>(dig + 1);
    return find_string_ref(s, l.at[strs], l.n[strs], ref);
}

Amd64View amd64_at(const Snapshot* s, u32 at) {
    Amd64View v;
    const u32 word = A::u32at(s, at);
    v.tag = A::str(s, word & ~kLowBits);
    v.schema_version = word & kSchema2Bit ? 2 : 1;
    if (word & kRawDigest) {
        if (const unsigned char* raw = A::bytes(s, u64{at} + 4, 32)) v.digest.spell_sha256(raw);
    } else {
        v.digest.refer(A::str(s, A::u32at(s, u64{at} + 4)));
    }
    return v;
}

std::string_view string_entry(const Snapshot* s, u32 base, std::size_t i) {
    return A::str(s, A::u32at(s, u64{base} + 4 * u64{i}));
}
V1View v1_entry(const Snapshot* s, u32 base, std::size_t i) { return V1View(s, A::u32at(s, u64{base} + 4 * u64{i})); }
V2View v2_entry(const Snapshot* s, u32 base, std::size_t i) { return V2View(s, A::u32at(s, u64{base} + 4 * u64{i})); }
ReferrerView referrer_entry(const Snapshot* s, u32 base, std::size_t i) {
    return ReferrerView(s, A::u32at(s, u64{base} + 4 * u64{i}));
}

template <typename T>
SnapRange<T> u32_range(const Snapshot* s, u64 base, u64 n, typename SnapRange<T>::Make make) {
    if (base > 0xFFFFFFFFu) return {};
    return SnapRange<T>(s, static_cast<u32>(base), A::clamp(s, base, n, 4), make);
}

// The record of `id` in a name table, checked to be of `kind`.
std::optional<u32> find_in_table(const Snapshot* s, Section table, u8 kind, std::string_view id) {
    const SectionRef t = A::section(s, table);
    const u32 slots = t.len / 4;
    if (slots == 0) return std::nullopt;
    const u32 mask = slots - 1;  // a power of two (checked when opened)
    u32 i = hash_id(id) & mask;
    for (u32 probes = 0; probes < slots; ++probes, i = (i + 1) & mask) {
        const u32 rec = A::u32at(s, u64{t.off} + 4 * u64{i});
        if (rec == 0) return std::nullopt;
        if (A::u8at(s, rec) == kind && A::str(s, A::u32at(s, u64{rec} + 4)) == id) return rec;
    }
    return std::nullopt;
}

}  // namespace

// ---- the views ----

void DigestText::spell_sha256(const unsigned char* raw) {
    static constexpr char kHex[] = "0123456789abcdef";
    constexpr std::string_view kPrefix = "sha256:";
    std::copy(kPrefix.begin(), kPrefix.end(), buf_.begin());
    for (std::size_t i = 0; i < 32; ++i) {
        buf_[7 + 2 * i] = kHex[raw[i] >> 4];
        buf_[8 + 2 * i] = kHex[raw[i] & 15];
    }
    view_ = std::string_view(buf_.data(), buf_.size());
}

std::string_view RepoView::id() const { return A::str(s_, A::u32at(s_, u64{off_} + 4)); }
namespace {
// A field that is either a string or, when `flag` is set, a slice of the
// url (start << 16 | length): the url_path nearly always, the repository
// (Pulp's name, in the url's path) often.
std::string_view string_or_url_slice(const RepoView& v, const Snapshot* s, u32 off, u32 field, u8 flag) {
    const u32 word = A::u32at(s, u64{off} + field);
    if (!(A::u8at(s, u64{off} + 1) & flag)) return A::str(s, word);
    const std::string_view u = v.url();
    const std::size_t start = word >> 16, len = word & 0xFFFF;
    return start + len <= u.size() ? u.substr(start, len) : std::string_view();
}
}  // namespace

std::string_view RepoView::repository() const { return string_or_url_slice(*this, s_, off_, 8, kRepositorySlice); }
std::string_view RepoView::url() const { return A::str(s_, A::u32at(s_, u64{off_} + 12)); }
std::string_view RepoView::url_path() const { return string_or_url_slice(*this, s_, off_, 16, kUrlPathSlice); }
bool RepoView::is_protected() const { return A::u8at(s_, u64{off_} + 1) & kProtected; }
int RepoView::version() const { return A::u8at(s_, u64{off_} + 2); }
std::string_view RepoView::source_path() const { return A::str(s_, A::u32at(s_, u64{off_} + 20)); }

SnapRange<std::string_view> V1View::image_ids() const {
    return u32_range<std::string_view>(s_, u64{off_} + 40, A::u32at(s_, u64{off_} + 32), string_entry);
}
std::size_t V1View::tag_count() const {
    const u64 tags = u64{off_} + 40 + 4 * u64{A::u32at(s_, u64{off_} + 32)};
    return A::clamp(s_, tags, A::u32at(s_, u64{off_} + 36), 8);
}
std::pair<std::string_view, std::string_view> V1View::tag(std::size_t i) const {
    const u64 at = u64{off_} + 40 + 4 * u64{A::u32at(s_, u64{off_} + 32)} + 8 * u64{i};
    return {A::str(s_, A::u32at(s_, at)), A::str(s_, A::u32at(s_, at + 4))};
}
std::optional<std::string_view> V1View::find_tag(std::string_view t) const {
    std::size_t lo = 0, hi = tag_count();
    while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        const auto [name, image] = tag(mid);
        const int c = name.compare(t);
        if (c == 0) return image;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return std::nullopt;
}
std::string_view V1View::images_json() const { return A::str(s_, A::u32at(s_, u64{off_} + 24)); }
std::string_view V1View::tags_json() const { return A::str(s_, A::u32at(s_, u64{off_} + 28)); }

bool V2View::has_schema2_fields() const { return A::u8at(s_, u64{off_} + 1) & kHasSchema2; }
bool V2View::no_manifest_data() const {
    const V2Layout l = v2_layout(s_, off_);
    for (u32 k = kS2Dig; k <= kOmStr; ++k) {
        if (l.n[k]) return false;
    }
    return true;
}
bool V2View::in_schema2(std::string_view ref) const { return in_ref_set(s_, off_, kS2Dig, ref); }
bool V2View::in_manifest_list(std::string_view ref) const { return in_ref_set(s_, off_, kMlDig, ref); }
bool V2View::in_oci_index(std::string_view ref) const { return in_ref_set(s_, off_, kOiDig, ref); }
bool V2View::in_oci_manifest(std::string_view ref) const { return in_ref_set(s_, off_, kOmDig, ref); }

std::optional<Amd64View> V2View::find_amd64(std::string_view t) const {
    const V2Layout l = v2_layout(s_, off_);
    u32 lo = 0, hi = l.n[kAmd64];
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const u64 at = u64{l.at[kAmd64]} + 36 * u64{mid};
        const int c = A::str(s_, A::u32at(s_, at) & ~kLowBits).compare(t);
        if (c == 0) return amd64_at(s_, static_cast<u32>(at));
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return std::nullopt;
}

std::optional<Amd64View> V2View::find_amd64_by_digest(std::string_view digest) const {
    const V2Layout l = v2_layout(s_, off_);
    unsigned char want[32] = {};
    const bool raw = decode_sha256(digest, want);
    for (u32 i = 0; i < l.n[kAmd64]; ++i) {
        const u64 at = u64{l.at[kAmd64]} + 36 * u64{i};
        const bool entry_raw = A::u32at(s_, at) & kRawDigest;
        if (entry_raw != raw) continue;
        const bool match = raw ? std::memcmp(A::bytes(s_, at + 4, 32), want, 32) == 0
                               : A::str(s_, A::u32at(s_, at + 4)) == digest;
        if (match) return amd64_at(s_, static_cast<u32>(at));
    }
    return std::nullopt;
}

bool V2View::has_tags() const { return A::u8at(s_, u64{off_} + 1) & kHasTags; }
SnapRange<std::string_view> V2View::tags() const {
    const V2Layout l = v2_layout(s_, off_);
    return u32_range<std::string_view>(s_, l.at[kTags], l.n[kTags], string_entry);
}

SnapRange<ReferrerView> V2View::find_referrers(std::string_view digest) const {
    const V2Layout l = v2_layout(s_, off_);
    u32 lo = 0, hi = l.n[kReferrers];
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const u64 at = u64{l.at[kReferrers]} + 12 * u64{mid};
        const int c = A::str(s_, A::u32at(s_, at)).compare(digest);
        if (c == 0) return u32_range<ReferrerView>(s_, A::u32at(s_, at + 8), A::u32at(s_, at + 4), referrer_entry);
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return {};
}

std::string_view ReferrerView::media_type() const { return A::str(s_, A::u32at(s_, off_)); }
std::string_view ReferrerView::digest() const { return A::str(s_, A::u32at(s_, u64{off_} + 4)); }
std::int64_t ReferrerView::size() const {
    return static_cast<std::int64_t>(A::u32at(s_, u64{off_} + 8) | u64{A::u32at(s_, u64{off_} + 12)} << 32);
}
std::string_view ReferrerView::artifact_type() const { return A::str(s_, A::u32at(s_, u64{off_} + 16)); }
std::size_t ReferrerView::annotation_count() const {
    return A::clamp(s_, u64{off_} + 24, A::u32at(s_, u64{off_} + 20), 8);
}
std::pair<std::string_view, std::string_view> ReferrerView::annotation(std::size_t i) const {
    const u64 at = u64{off_} + 24 + 8 * u64{i};
    return {A::str(s_, A::u32at(s_, at)), A::str(s_, A::u32at(s_, at + 4))};
}

// ---- the snapshot ----

Snapshot::~Snapshot() {
    if (mapping_) ::munmap(mapping_, mapping_size_);
}

std::uint64_t Snapshot::generation() const { return A::u64at(this, offsetof(Header, generation)); }
std::int64_t Snapshot::built_at_ns() const {
    return static_cast<std::int64_t>(A::u64at(this, offsetof(Header, built_at_ns)));
}
std::size_t Snapshot::size_bytes() const { return size_; }
SnapshotSummary Snapshot::summary() const {
    const Header h = A::header(this);
    return SnapshotSummary{h.files, h.failed_files, h.v1_repos, h.v2_repos};
}

std::optional<V1View> Snapshot::find_v1(std::string_view id) const {
    if (auto rec = find_in_table(this, kV1Hash, kKindV1, id)) return V1View(this, *rec);
    return std::nullopt;
}

std::optional<V2View> Snapshot::find_v2(std::string_view name) const {
    if (auto rec = find_in_table(this, kV2Hash, kKindV2, name)) return V2View(this, *rec);
    return std::nullopt;
}

SnapRange<V1View> Snapshot::repos_with_image(std::string_view image_id) const {
    const SectionRef t = A::section(this, kImages);
    u32 lo = 0, hi = t.len / 12;
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const u64 at = u64{t.off} + 12 * u64{mid};
        const int c = A::str(this, A::u32at(this, at)).compare(image_id);
        if (c == 0) return u32_range<V1View>(this, A::u32at(this, at + 8), A::u32at(this, at + 4), v1_entry);
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return {};
}

SnapRange<V1View> Snapshot::v1_sorted() const {
    const SectionRef t = A::section(this, kV1Sorted);
    return u32_range<V1View>(this, t.off, t.len / 4, v1_entry);
}

SnapRange<V2View> Snapshot::v2_sorted() const {
    const SectionRef t = A::section(this, kV2Sorted);
    return u32_range<V2View>(this, t.off, t.len / 4, v2_entry);
}

std::size_t Snapshot::file_count() const { return A::section(this, kFiles).len / kFileEntry; }

SnapshotFileInfo Snapshot::file(std::size_t i) const {
    SnapshotFileInfo f;
    if (i >= file_count()) return f;
    const u64 at = u64{A::section(this, kFiles).off} + kFileEntry * u64{i};
    f.path = A::str(this, A::u32at(this, at));
    const u32 word = A::u32at(this, at + 4);
    const u32 rec = word & ~(kRacyBit | kFailedBit);
    const u8 kind = rec ? A::u8at(this, rec) : 0;
    f.racy = word & kRacyBit;
    f.failed = word & kFailedBit;
    f.stamp.dev = A::u64at(this, at + 8);
    f.stamp.ino = A::u64at(this, at + 16);
    f.stamp.size = static_cast<std::int64_t>(A::u64at(this, at + 24));
    f.stamp.mtime_ns = static_cast<std::int64_t>(A::u64at(this, at + 32));
    f.stamp.ctime_ns = static_cast<std::int64_t>(A::u64at(this, at + 40));
    f.content_hash = A::u64at(this, at + 48);
    if (rec != 0 && kind == kKindV1) f.v1 = V1View(this, rec);
    if (rec != 0 && kind == kKindV2) f.v2 = V2View(this, rec);
    return f;
}

// ---- validation ----

std::uint64_t snapshot_checksum(const unsigned char* data, std::size_t size) {
    if (size < sizeof(Header)) return hash_words(data, size, 0);
    unsigned char head[sizeof(Header)];
    std::memcpy(head, data, sizeof head);
    std::memset(head + kChecksumAt, 0, 8);
    const u64 seed = hash_words(head, sizeof head, 0);
    return hash_words(data + sizeof(Header), size - sizeof(Header), seed);
}

void seal_snapshot(std::string& bytes) {
    if (bytes.size() < sizeof(Header)) return;
    const u64 sum = snapshot_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    std::memcpy(&bytes[kChecksumAt], &sum, 8);
}

Result<std::shared_ptr<const Snapshot>> SnapshotAccess::validate(std::shared_ptr<Snapshot> s) {
    using R = Result<std::shared_ptr<const Snapshot>>;
    const std::size_t n = s->size_;
    if (n < sizeof(Header)) {
        return R::failure("truncated: " + std::to_string(n) + " bytes, a header alone is " +
                          std::to_string(sizeof(Header)));
    }
    Header h;
    std::memcpy(&h, s->data_, sizeof h);
    if (std::memcmp(h.magic, kMagic, 8) != 0) return R::failure("not a crane snapshot (bad magic)");
    if (h.format != kSnapshotFormat) {
        return R::failure("format " + std::to_string(h.format) + ", this module reads format " +
                          std::to_string(kSnapshotFormat));
    }
    if (h.header_size != sizeof(Header)) {
        return R::failure("header size " + std::to_string(h.header_size) + ", format " +
                          std::to_string(kSnapshotFormat) + " has " + std::to_string(sizeof(Header)));
    }
    if (h.total_size != n) {
        return R::failure((n < h.total_size ? "truncated: " : "trailing bytes: ") + std::to_string(n) +
                          " bytes, header says " + std::to_string(h.total_size));
    }
    if (snapshot_checksum(s->data_, n) != h.checksum) return R::failure("checksum mismatch");
    for (u32 k = 0; k < kSectionCount; ++k) {
        const SectionRef r = h.sections[k];
        const bool inside = r.off >= sizeof(Header) && u64{r.off} + r.len <= n && r.off % 8 == 0;
        if (!inside || r.len % kSectionUnit[k] != 0) {
            return R::failure(std::string("section ") + kSectionNames[k] + " out of bounds");
        }
    }
    for (Section k : {kV1Hash, kV2Hash}) {
        const u32 slots = h.sections[k].len / 4;
        if (slots & (slots - 1)) return R::failure(std::string("section ") + kSectionNames[k] + " is not a power of two");
    }
    return R(std::shared_ptr<const Snapshot>(std::move(s)));
}

Result<std::shared_ptr<const Snapshot>> Snapshot::from_bytes(std::string bytes) {
    std::shared_ptr<Snapshot> s(new Snapshot());
    s->owned_ = std::move(bytes);
    s->data_ = reinterpret_cast<const unsigned char*>(s->owned_.data());
    s->size_ = s->owned_.size();
    return A::validate(std::move(s));
}

Result<std::shared_ptr<const Snapshot>> Snapshot::open(const std::string& path) {
    using R = Result<std::shared_ptr<const Snapshot>>;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return R::failure(path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return R::failure(path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return R::failure(path + ": not a regular file");
    const auto size = static_cast<std::size_t>(st.st_size);
    std::shared_ptr<Snapshot> s(new Snapshot());
    if (size > 0) {
        // MAP_POPULATE: the checksum reads every page anyway; one call maps them
        // all (a page fault each costs several times more)
        void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
        if (m == MAP_FAILED) return R::failure(path + ": mmap: " + std::strerror(errno));
        s->mapping_ = m;
        s->mapping_size_ = size;
        s->data_ = static_cast<const unsigned char*>(m);
    } else {
        s->data_ = reinterpret_cast<const unsigned char*>(s->owned_.data());
    }
    s->size_ = size;
    auto r = A::validate(s);
    if (!r) return R::failure(path + ": " + r.error());
    // a file that changed size while it was read would leave the mapping
    // shorter than the file (or fault on its truncated pages): refused
    struct stat after {};
    if (::fstat(fd.get(), &after) != 0 || after.st_size != st.st_size) {
        return R::failure(path + ": changed size while it was read");
    }
    return r;
}

// ---- building ----

namespace {

// Interned strings, in the order first seen, each u32 length + bytes padded
// to 4; the table maps the bytes to their position (which, plus the
// section's offset, is the string's offset in the image).
class Strings {
public:
    Strings() {
        buf_.assign(4, '\0');  // position 0 is never a string: 0 means empty
        slots_.assign(1024, Slot{});
    }
    u32 intern(std::string_view s) {
        if (s.empty()) return 0;
        if (s.size() > 0xFFFFFFF0u) throw std::length_error("snapshot string too long");
        const u32 h = hash_id(s);
        std::size_t mask = slots_.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            Slot& slot = slots_[i];
            if (slot.pos == 0) {
                const u32 pos = append(s);
                slot = Slot{pos, h};
                if (++count_ * 2 > slots_.size()) grow();
                return pos;
            }
            if (slot.hash == h && at(slot.pos) == s) return slot.pos;
        }
    }
    std::string_view at(u32 pos) const {
        u32 len;
        std::memcpy(&len, buf_.data() + pos, 4);
        return {buf_.data() + pos + 4, len};
    }
    const std::string& bytes() const { return buf_; }
    void release() {
        std::string().swap(buf_);
        std::vector<Slot>().swap(slots_);
    }

private:
    struct Slot {
        u32 pos = 0, hash = 0;
    };
    static std::size_t padded(std::size_t n) { return 4 + ((n + 3) & ~std::size_t{3}); }
    u32 append(std::string_view s) {
        const std::size_t pos = buf_.size();
        if (pos + padded(s.size()) > 0xFFFFFFF0u) throw std::length_error("snapshot larger than 4 GiB");
        const u32 len = static_cast<u32>(s.size());
        buf_.append(reinterpret_cast<const char*>(&len), 4);
        buf_.append(s);
        buf_.append((4 - s.size() % 4) % 4, '\0');
        return static_cast<u32>(pos);
    }
    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        const std::size_t mask = slots_.size() - 1;
        for (const Slot& o : old) {
            if (o.pos == 0) continue;
            std::size_t i = o.hash & mask;
            while (slots_[i].pos != 0) i = (i + 1) & mask;
            slots_[i] = o;
        }
    }
    std::string buf_;
    std::vector<Slot> slots_;
    std::size_t count_ = 0;
};

// One record to encode: the input it comes from and what resolution says.
struct Entry {
    std::size_t input;
    u8 kind;
    std::string_view id, source_path;
    bool winner = false;
    u32 offset = 0;  // in the image, once written
};

class Builder {
public:
    Builder() { out_.assign(sizeof(Header), '\0'); }

    std::string build(const std::vector<SnapshotFileInput>& files, u64 generation, std::int64_t built_at_ns,
                      std::vector<std::string>* warnings);

private:
    std::size_t here() const { return out_.size(); }
    void put32(u32 v) { out_.append(reinterpret_cast<const char*>(&v), 4); }
    void set32(std::size_t at, u32 v) { std::memcpy(&out_[at], &v, 4); }
    u32 get32(std::size_t at) const {
        u32 v;
        std::memcpy(&v, out_.data() + at, 4);
        return v;
    }
    // a string reference, fixed up to an image offset once the strings' place is known
    void put_str(std::string_view s) {
        const u32 pos = strings_.intern(s);
        if (pos != 0) fixups_.push_back(static_cast<u32>(here()));
        put32(pos);
    }
    // an amd64 entry's tag with its two flags in the low bits (string
    // positions are multiples of 4, and so is the strings' section offset
    // the fixup adds)
    void put_tag_word(std::string_view tag, u32 bits) {
        const u32 pos = strings_.intern(tag);
        if (pos != 0) fixups_.push_back(static_cast<u32>(here()));
        put32(pos | bits);
    }
    void check_size() const {
        if (out_.size() > 0xFFFFFFF0u) throw std::length_error("snapshot larger than 4 GiB");
    }

    void resolve(std::vector<Entry>& entries, u8 kind, const char* ns, std::vector<std::string>* warnings);
    void put_common(u8 kind, u8 flags, int version, std::string_view id, std::string_view repository,
                    std::string_view url, std::string_view url_path, std::string_view source_path);
    u32 encode(const SnapshotFileInput& in);
    u32 encode_v1(const V1Repo& r);
    u32 encode_v1(const V1View& v);
    u32 encode_v2(const V2Repo& r);
    u32 encode_v2(const V2View& v);
    void put_arrays_header(const u32 (&n)[kV2ArrayCount]);
    void put_referrers(const std::vector<ReferrerList>& lists);
    void put_referrers(const Snapshot* s, const V2Layout& l);
    void align8() { out_.append((8 - out_.size() % 8) % 8, '\0'); }
    SectionRef begin_section() {
        align8();
        return SectionRef{static_cast<u32>(here()), 0};
    }
    void end_section(Header& h, Section k, SectionRef r) {
        check_size();
        r.len = static_cast<u32>(here() - r.off);
        h.sections[k] = r;
    }
    void put_table(Header& h, Section k, const std::vector<Entry*>& winners);

    std::string out_;
    Strings strings_;
    std::vector<u32> fixups_;  // where string references are (positions fit: checked)
    // Carried records: an old string offset -> its new position, so a
    // string shared by many records of the old snapshot (tags, mostly) is
    // hashed and compared once, not once per record. One old snapshot at a
    // time (a build carries from one); open addressing, 0 = empty key.
    const Snapshot* memo_from_ = nullptr;
    std::vector<std::pair<u32, u32>> memo_ = std::vector<std::pair<u32, u32>>(1024);
    std::size_t memo_count_ = 0;
    u32 carried_pos(const Snapshot* s, u32 old);
    void put_carried(const Snapshot* s, u32 old) {
        const u32 pos = carried_pos(s, old);
        if (pos != 0) fixups_.push_back(static_cast<u32>(here()));
        put32(pos);
    }
    // a v2 record's four ref lists, split (reused from record to record)
    std::string raw_[4];
    std::vector<std::string_view> other_[4];
};

u32 Builder::carried_pos(const Snapshot* s, u32 old) {
    if (old == 0) return 0;
    if (memo_from_ == nullptr) memo_from_ = s;
    if (s != memo_from_) return strings_.intern(A::str(s, old));
    std::size_t mask = memo_.size() - 1;
    std::size_t i = static_cast<u32>(old * 0x9E3779B1u) & mask;
    for (; memo_[i].first != 0; i = (i + 1) & mask) {
        if (memo_[i].first == old) return memo_[i].second;
    }
    const u32 pos = strings_.intern(A::str(s, old));
    memo_[i] = {old, pos};
    if (++memo_count_ * 2 > memo_.size()) {
        std::vector<std::pair<u32, u32>> grown(memo_.size() * 2);
        mask = grown.size() - 1;
        for (const auto& e : memo_) {
            if (e.first == 0) continue;
            std::size_t j = static_cast<u32>(e.first * 0x9E3779B1u) & mask;
            while (grown[j].first != 0) j = (j + 1) & mask;
            grown[j] = e;
        }
        memo_.swap(grown);
    }
    return pos;
}

void Builder::resolve(std::vector<Entry>& entries, u8 kind, const char* ns, std::vector<std::string>* warnings) {
    std::vector<Entry*> order;
    for (Entry& e : entries) {
        if (e.kind == kind) order.push_back(&e);
    }
    // Index::build's rule: in source path order, a later record replaces an
    // earlier one (entries come in file path order, usually the same)
    auto by_source = [](const Entry* a, const Entry* b) { return a->source_path < b->source_path; };
    if (!std::is_sorted(order.begin(), order.end(), by_source)) std::stable_sort(order.begin(), order.end(), by_source);
    std::unordered_map<std::string_view, Entry*> by_id;
    by_id.reserve(order.size());
    for (Entry* e : order) {
        auto [it, inserted] = by_id.try_emplace(e->id, e);
        if (!inserted) {
            if (warnings) {
                warnings->push_back(std::string(ns) + " repository '" + std::string(e->id) + "' is defined in both " +
                                    std::string(it->second->source_path) + " and " + std::string(e->source_path) +
                                    "; using " + std::string(e->source_path));
            }
            it->second = e;
        }
    }
    for (auto& [id, e] : by_id) e->winner = true;
}

// Where `part` is in `url`, as start << 16 | length, when both fit 16 bits.
std::optional<u32> url_slice(std::string_view url, std::string_view part, bool last) {
    if (part.empty()) return std::nullopt;
    const std::size_t start = last ? url.rfind(part) : url.find(part);
    if (start == std::string_view::npos || start >= 0x10000 || part.size() >= 0x10000) return std::nullopt;
    return static_cast<u32>(start << 16 | part.size());
}

void Builder::put_common(u8 kind, u8 flags, int version, std::string_view id, std::string_view repository,
                         std::string_view url, std::string_view url_path, std::string_view source_path) {
    // url_path is nearly always a piece of url: two u16 in place of a string
    const std::optional<u32> path_slice = url_slice(url, url_path, true);
    const std::optional<u32> repo_slice = url_slice(url, repository, false);
    if (path_slice) flags |= kUrlPathSlice;
    if (repo_slice) flags |= kRepositorySlice;
    out_.push_back(static_cast<char>(kind));
    out_.push_back(static_cast<char>(flags));
    out_.push_back(static_cast<char>(static_cast<u8>(version)));
    out_.push_back('\0');
    put_str(id);
    if (repo_slice) put32(*repo_slice); else put_str(repository);
    put_str(url);
    if (path_slice) put32(*path_slice); else put_str(url_path);
    put_str(source_path);
}

u32 Builder::encode_v1(const V1Repo& r) {
    const u32 off = static_cast<u32>(here());
    put_common(kKindV1, r.is_protected ? kProtected : 0, r.version, r.id, r.repository, r.url, r.url_path,
               r.source_path);
    put_str(r.images_json);
    put_str(r.tags_json);
    put32(static_cast<u32>(r.image_ids.size()));
    put32(static_cast<u32>(r.tags.size()));
    for (const auto& image : r.image_ids) put_str(image);
    for (const auto& [tag, image] : r.tags) {
        put_str(tag);
        put_str(image);
    }
    return off;
}

u32 Builder::encode_v1(const V1View& v) {
    const u32 off = static_cast<u32>(here());
    const u8 flags = v.is_protected() ? kProtected : 0;
    put_common(kKindV1, flags, v.version(), v.id(), v.repository(), v.url(), v.url_path(), v.source_path());
    put_str(v.images_json());
    put_str(v.tags_json());
    const auto images = v.image_ids();
    const std::size_t tags = v.tag_count();
    put32(static_cast<u32>(images.size()));
    put32(static_cast<u32>(tags));
    const Snapshot* s = v.snapshot();
    const u64 at = u64{v.offset()} + 40;
    for (std::size_t i = 0; i < images.size(); ++i) put_carried(s, A::u32at(s, at + 4 * i));
    const u64 tags_at = at + 4 * u64{images.size()};
    for (std::size_t i = 0; i < 2 * tags; ++i) put_carried(s, A::u32at(s, tags_at + 4 * i));
    return off;
}

void Builder::put_arrays_header(const u32 (&n)[kV2ArrayCount]) {
    u32 mask = 0;
    for (u32 k = 0; k < kV2ArrayCount; ++k) {
        if (n[k]) mask |= 1u << k;
    }
    put32(mask);
    for (u32 k = 0; k < kV2ArrayCount; ++k) {
        if (n[k]) put32(n[k]);
    }
}

// Splits a sorted ref list into its sha256 digests (raw, still in order:
// hex keeps byte order) and the other refs (still sorted).
void split_refs(const std::vector<std::string>& refs, std::string& raw, std::vector<std::string_view>& other) {
    raw.clear();
    other.clear();
    unsigned char buf[32];
    // the texts are separate heap blocks, cold when a data dir is loaded at
    // start-up: fetching a few ahead overlaps the cache misses
    constexpr std::size_t kAhead = 6;
    for (std::size_t i = 0; i < std::min(kAhead, refs.size()); ++i) __builtin_prefetch(refs[i].data());
    for (std::size_t i = 0; i < refs.size(); ++i) {
        const std::string& r = refs[i];
        if (i + kAhead < refs.size()) {
            __builtin_prefetch(refs[i + kAhead].data());
            __builtin_prefetch(refs[i + kAhead].data() + 64);
        }
        if (decode_sha256(r, buf)) {
            raw.append(reinterpret_cast<const char*>(buf), 32);
        } else {
            other.push_back(r);
        }
    }
}

void Builder::put_referrers(const std::vector<ReferrerList>& lists) {
    const std::size_t entries = here();
    for (const auto& l : lists) {
        put_str(l.subject);
        put32(static_cast<u32>(l.descriptors.size()));
        put32(0);  // set below
    }
    for (std::size_t i = 0; i < lists.size(); ++i) {
        const std::size_t offsets = here();
        set32(entries + 12 * i + 8, static_cast<u32>(offsets));
        out_.append(4 * lists[i].descriptors.size(), '\0');
        for (std::size_t d = 0; d < lists[i].descriptors.size(); ++d) {
            const Referrer& r = lists[i].descriptors[d];
            set32(offsets + 4 * d, static_cast<u32>(here()));
            put_str(r.media_type);
            put_str(r.digest);
            const auto size = static_cast<u64>(r.size);
            put32(static_cast<u32>(size));
            put32(static_cast<u32>(size >> 32));
            put_str(r.artifact_type);
            put32(static_cast<u32>(r.annotations.size()));
            for (const auto& [k, v] : r.annotations) {
                put_str(k);
                put_str(v);
            }
        }
    }
}

// A valid image holds each descriptor and annotation once, in bytes of its
// own: the budgets (what the old image's size can hold) keep a damaged one,
// whose lists could all claim the same bytes, from re-encoding into
// something quadratic in its size.
void Builder::put_referrers(const Snapshot* s, const V2Layout& l) {
    const std::size_t entries = here();
    std::vector<SnapRange<ReferrerView>> lists;
    std::vector<std::size_t> counts;
    u64 descriptors = s->size_bytes() / 24;
    u64 annotations = s->size_bytes() / 8;
    for (u32 i = 0; i < l.n[kReferrers]; ++i) {
        const u64 at = u64{l.at[kReferrers]} + 12 * u64{i};
        const std::string_view subject = A::str(s, A::u32at(s, at));
        lists.push_back(u32_range<ReferrerView>(s, A::u32at(s, at + 8), A::u32at(s, at + 4), referrer_entry));
        counts.push_back(static_cast<std::size_t>(std::min<u64>(lists.back().size(), descriptors)));
        descriptors -= counts.back();
        put_str(subject);
        put32(static_cast<u32>(counts.back()));
        put32(0);
    }
    for (std::size_t i = 0; i < lists.size(); ++i) {
        const std::size_t offsets = here();
        set32(entries + 12 * i + 8, static_cast<u32>(offsets));
        out_.append(4 * counts[i], '\0');
        for (std::size_t d = 0; d < counts[i]; ++d) {
            const ReferrerView r = lists[i][d];
            set32(offsets + 4 * d, static_cast<u32>(here()));
            put_str(r.media_type());
            put_str(r.digest());
            const auto size = static_cast<u64>(r.size());
            put32(static_cast<u32>(size));
            put32(static_cast<u32>(size >> 32));
            put_str(r.artifact_type());
            const auto n = static_cast<std::size_t>(std::min<u64>(r.annotation_count(), annotations));
            annotations -= n;
            put32(static_cast<u32>(n));
            for (std::size_t a = 0; a < n; ++a) {
                const auto [k, v] = r.annotation(a);
                put_str(k);
                put_str(v);
            }
        }
    }
}

u8 v2_flags(bool is_protected, bool has_schema2, bool has_tags) {
    return static_cast<u8>((is_protected ? kProtected : 0) | (has_schema2 ? kHasSchema2 : 0) |
                           (has_tags ? kHasTags : 0));
}

u32 Builder::encode_v2(const V2Repo& r) {
    const u32 off = static_cast<u32>(here());
    put_common(kKindV2, v2_flags(r.is_protected, r.has_schema2_fields, r.has_tags), r.version, r.id, r.repository,
               r.url, r.url_path, r.source_path);
    u32 n[kV2ArrayCount] = {};
    const std::vector<std::string>* lists[4] = {&r.schema2_data, &r.manifest_list_data, &r.oci_index_data,
                                                &r.oci_manifest_data};
    for (u32 k = 0; k < 4; ++k) {
        split_refs(*lists[k], raw_[k], other_[k]);
        n[std::size_t{2} * k] = static_cast<u32>(raw_[k].size() / 32);
        n[std::size_t{2} * k + 1] = static_cast<u32>(other_[k].size());
    }
    n[kAmd64] = static_cast<u32>(r.manifest_list_amd64_tags.size());
    n[kTags] = static_cast<u32>(r.tags.size());
    n[kReferrers] = static_cast<u32>(r.referrers.size());
    put_arrays_header(n);
    for (u32 k = 0; k < 4; ++k) {
        out_.append(raw_[k]);
        for (std::string_view ref : other_[k]) put_str(ref);
    }
    for (const Amd64Tag& a : r.manifest_list_amd64_tags) {
        unsigned char slot[32] = {};
        const bool raw = decode_sha256(a.digest, slot);
        put_tag_word(a.tag, (a.schema_version == 2 ? kSchema2Bit : 0) | (raw ? kRawDigest : 0));
        if (raw) {
            out_.append(reinterpret_cast<const char*>(slot), 32);
        } else {
            put_str(a.digest);
            out_.append(28, '\0');
        }
    }
    for (const auto& t : r.tags) put_str(t);
    put_referrers(r.referrers);
    return off;
}

// Re-encoded straight from the old image: raw digests copied as they are,
// strings re-interned from views into the old mapping.
u32 Builder::encode_v2(const V2View& v) {
    const Snapshot* s = v.snapshot();
    const V2Layout l = v2_layout(s, v.offset());
    const u32 off = static_cast<u32>(here());
    put_common(kKindV2, v2_flags(v.is_protected(), v.has_schema2_fields(), v.has_tags()), v.version(), v.id(),
               v.repository(), v.url(), v.url_path(), v.source_path());
    put_arrays_header(l.n);
    for (u32 k = kS2Dig; k <= kOmStr; ++k) {
        if (kV2Unit[k] == 32) {
            const unsigned char* raw = A::bytes(s, l.at[k], u64{l.n[k]} * 32);
            if (raw && l.n[k]) out_.append(reinterpret_cast<const char*>(raw), u64{l.n[k]} * 32);
        } else {
            for (u32 i = 0; i < l.n[k]; ++i) put_carried(s, A::u32at(s, u64{l.at[k]} + 4 * u64{i}));
        }
    }
    for (u32 i = 0; i < l.n[kAmd64]; ++i) {
        const u64 at = u64{l.at[kAmd64]} + 36 * u64{i};
        const u32 word = A::u32at(s, at);
        const unsigned char* raw = A::bytes(s, at + 4, 32);  // inside: v2_layout checked the array
        const bool is_raw = (word & kRawDigest) && raw;
        const u32 tag = carried_pos(s, word & ~kLowBits);
        if (tag != 0) fixups_.push_back(static_cast<u32>(here()));
        put32(tag | (word & kSchema2Bit) | (is_raw ? kRawDigest : 0));
        if (is_raw) {
            out_.append(reinterpret_cast<const char*>(raw), 32);
        } else {
            put_carried(s, A::u32at(s, at + 4));
            out_.append(28, '\0');
        }
    }
    for (u32 i = 0; i < l.n[kTags]; ++i) put_carried(s, A::u32at(s, u64{l.at[kTags]} + 4 * u64{i}));
    put_referrers(s, l);
    return off;
}

u32 Builder::encode(const SnapshotFileInput& in) {
    u32 off = 0;
    if (in.parsed.v1) off = encode_v1(*in.parsed.v1);
    else if (in.parsed.v2) off = encode_v2(*in.parsed.v2);
    else if (in.carried_v1) off = encode_v1(*in.carried_v1);
    else if (in.carried_v2) off = encode_v2(*in.carried_v2);
    check_size();
    return off;
}

// An open-addressing table of the winners, at most half full.
void Builder::put_table(Header& h, Section k, const std::vector<Entry*>& winners) {
    SectionRef r = begin_section();
    std::size_t slots = winners.empty() ? 0 : 4;
    while (slots < 2 * winners.size()) slots *= 2;
    const std::size_t base = here();
    out_.append(4 * slots, '\0');
    for (const Entry* e : winners) {
        std::size_t i = hash_id(e->id) & (slots - 1);
        while (get32(base + 4 * i) != 0) i = (i + 1) & (slots - 1);
        set32(base + 4 * i, e->offset);
    }
    end_section(h, k, r);
}

// About how many bytes a file adds to the image (strings counted as if
// none were shared), so that the image is allocated once, not grown.
std::size_t size_estimate(const SnapshotFileInput& in) {
    std::size_t n = kFileEntry + 16 + 2 * in.path.size();
    auto common = [](const RepoCommon& c) { return kCommonSize + 32 + c.id.size() + c.repository.size() + c.url.size(); };
    if (const V1Repo* r1 = in.parsed.v1.get()) {
        n += common(*r1) + 16 + r1->images_json.size() + r1->tags_json.size() + 8 * r1->image_ids.size() + 8 * r1->tags.size();
    } else if (const V2Repo* r = in.parsed.v2.get()) {
        n += common(*r) + 48 + 32 * (r->schema2_data.size() + r->manifest_list_data.size() + r->oci_index_data.size() +
                                     r->oci_manifest_data.size()) +
             36 * r->manifest_list_amd64_tags.size() + 4 * r->tags.size() + 12 * r->referrers.size();
        for (const auto& l : r->referrers) n += 40 * l.descriptors.size();
    } else if (in.carried_v1 || in.carried_v2) {
        const RepoView& v = in.carried_v1 ? static_cast<const RepoView&>(*in.carried_v1) : *in.carried_v2;
        n += 32 + v.id().size() + v.repository().size() + v.url().size();
        if (in.carried_v2) {
            const u32 end = v2_layout(v.snapshot(), v.offset()).end;  // 0 for a damaged record
            if (end > v.offset()) n += end - v.offset();
        }
        if (in.carried_v1) {
            const V1View& v1 = *in.carried_v1;
            n += 48 + v1.images_json().size() + v1.tags_json().size() + 4 * v1.image_ids().size() + 8 * v1.tag_count();
        }
    }
    return n;
}

// Asks for the texts of a parsed record's refs while the record before it
// is encoded: they are separate heap blocks, cold when a whole data dir was
// parsed first (start-up), and reading them one by one was half the build.
void prefetch_refs(const SnapshotFileInput& in) {
    const V2Repo* r = in.parsed.v2.get();
    if (!r) return;
    for (const auto* l : {&r->schema2_data, &r->manifest_list_data, &r->oci_index_data, &r->oci_manifest_data}) {
        for (const auto& ref : *l) __builtin_prefetch(ref.data());
    }
}

u8 kind_of(const SnapshotFileInput& in) {
    if (in.parsed.v1 || (!in.parsed.v2 && in.carried_v1)) return kKindV1;
    if (in.parsed.v2 || in.carried_v2) return kKindV2;
    return 0;
}

std::string_view id_of(const SnapshotFileInput& in, std::string_view* source_path) {
    if (in.parsed.v1) return *source_path = in.parsed.v1->source_path, in.parsed.v1->id;
    if (in.parsed.v2) return *source_path = in.parsed.v2->source_path, in.parsed.v2->id;
    if (in.carried_v1) return *source_path = in.carried_v1->source_path(), in.carried_v1->id();
    if (in.carried_v2) return *source_path = in.carried_v2->source_path(), in.carried_v2->id();
    return {};
}

std::string Builder::build(const std::vector<SnapshotFileInput>& files, u64 generation, std::int64_t built_at_ns,
                           std::vector<std::string>* warnings) {
    Header h{};
    std::memcpy(h.magic, kMagic, 8);
    h.format = kSnapshotFormat;
    h.header_size = sizeof(Header);
    h.generation = generation;
    h.built_at_ns = built_at_ns;

    std::size_t estimate = sizeof(Header) + 64;
    for (const auto& f : files) estimate += size_estimate(f);
    out_.reserve(std::min<std::size_t>(estimate, 0xFFFFFFFFu));

    std::vector<std::size_t> by_path(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) by_path[i] = i;
    std::sort(by_path.begin(), by_path.end(),
              [&](std::size_t a, std::size_t b) { return files[a].path < files[b].path; });

    std::vector<Entry> entries;
    std::vector<std::size_t> entry_of(files.size(), SIZE_MAX);
    entries.reserve(files.size());
    for (std::size_t i : by_path) {
        const u8 kind = kind_of(files[i]);
        if (kind == 0) continue;
        Entry e{i, kind, {}, {}};
        e.id = id_of(files[i], &e.source_path);
        entry_of[i] = entries.size();
        entries.push_back(e);
    }
    resolve(entries, kKindV1, "v1", warnings);
    resolve(entries, kKindV2, "v2", warnings);

    // records, in path order
    SectionRef records = begin_section();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i + 1 < entries.size()) prefetch_refs(files[entries[i + 1].input]);
        entries[i].offset = encode(files[entries[i].input]);
    }
    end_section(h, kRecords, records);
    for (std::size_t i : by_path) strings_.intern(files[i].path);

    // the strings, then every string reference in the records fixed up
    SectionRef strings = begin_section();
    const u32 strings_base = strings.off;
    if (u64{strings_base} + strings_.bytes().size() > 0xFFFFFFF0u) throw std::length_error("snapshot larger than 4 GiB");
    out_.append(strings_.bytes());
    end_section(h, kStrings, strings);
    for (u32 at : fixups_) set32(at, get32(at) + strings_base);
    std::vector<u32>().swap(fixups_);

    std::vector<Entry*> v1, v2;
    for (Entry& e : entries) {
        if (e.winner) (e.kind == kKindV1 ? v1 : v2).push_back(&e);
    }
    auto by_id = [](const Entry* a, const Entry* b) { return a->id < b->id; };
    std::sort(v1.begin(), v1.end(), by_id);
    std::sort(v2.begin(), v2.end(), by_id);
    h.v1_repos = static_cast<u32>(v1.size());
    h.v2_repos = static_cast<u32>(v2.size());
    put_table(h, kV1Hash, v1);
    put_table(h, kV2Hash, v2);
    for (auto [k, list] : {std::pair{kV1Sorted, &v1}, std::pair{kV2Sorted, &v2}}) {
        SectionRef r = begin_section();
        for (const Entry* e : *list) put32(e->offset);
        end_section(h, k, r);
    }

    // images -> v1 repos: (image string, repo rank) pairs; equal strings
    // share one offset, so grouping is by offset
    std::vector<std::pair<u32, u32>> pairs;
    for (u32 rank = 0; rank < v1.size(); ++rank) {
        const u32 rec = v1[rank]->offset;
        const u32 n = get32(rec + 32);
        for (u32 i = 0; i < n; ++i) {
            const u32 image = get32(rec + 40 + 4 * i);
            if (image != 0) pairs.emplace_back(image, rank);
        }
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    struct Group {
        u32 image, first, count;
    };
    std::vector<Group> groups;
    for (u32 i = 0; i < pairs.size(); ++i) {
        if (groups.empty() || groups.back().image != pairs[i].first) groups.push_back({pairs[i].first, i, 0});
        ++groups.back().count;
    }
    auto text = [&](u32 off) { return strings_.at(off - strings_base); };
    std::sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) { return text(a.image) < text(b.image); });
    SectionRef repos = begin_section();
    for (const auto& p : pairs) put32(v1[p.second]->offset);
    end_section(h, kImageRepos, repos);
    SectionRef images = begin_section();
    for (const Group& g : groups) {
        put32(g.image);
        put32(g.count);
        put32(repos.off + 4 * g.first);
    }
    end_section(h, kImages, images);

    SectionRef table = begin_section();
    for (std::size_t i : by_path) {
        const SnapshotFileInput& f = files[i];
        const Entry* e = entry_of[i] == SIZE_MAX ? nullptr : &entries[entry_of[i]];
        put32(strings_.intern(f.path) + strings_base);
        put32((e ? e->offset : 0) | (f.racy ? kRacyBit : 0) | (f.failed ? kFailedBit : 0));
        for (u64 v : {f.stamp.dev, f.stamp.ino, static_cast<u64>(f.stamp.size), static_cast<u64>(f.stamp.mtime_ns),
                      static_cast<u64>(f.stamp.ctime_ns), f.content_hash}) {
            out_.append(reinterpret_cast<const char*>(&v), 8);
        }
        ++h.files;
        h.failed_files += f.failed ? 1 : 0;
    }
    end_section(h, kFiles, table);
    strings_.release();

    align8();
    check_size();
    h.total_size = out_.size();
    std::memcpy(&out_[0], &h, sizeof h);
    seal_snapshot(out_);
    return std::move(out_);
}

}  // namespace

std::string build_snapshot(const std::vector<SnapshotFileInput>& files, std::uint64_t generation,
                           std::int64_t built_at_ns, std::vector<std::string>* warnings) {
    return Builder().build(files, generation, built_at_ns, warnings);
}

std::shared_ptr<const Snapshot> Snapshot::empty() {
    static const std::shared_ptr<const Snapshot> kEmpty = *from_bytes(build_snapshot({}, 0, 0, nullptr));
    return kEmpty;
}

std::shared_ptr<const Snapshot> snapshot_of(const ParsedRepo& repo) {
    std::vector<SnapshotFileInput> files(1);
    const RepoCommon* c = repo.v1 ? static_cast<const RepoCommon*>(repo.v1.get()) : repo.v2.get();
    files[0].path = c ? c->source_path : std::string();
    files[0].parsed = repo;
    return *Snapshot::from_bytes(build_snapshot(files, 0, 0, nullptr));
}

}  // namespace crane
