// The index snapshot's reader: the views' lookups, validation and opening
// (see snapshot.h; the bytes are in snapshot_format.h, docs/design.md "The
// index snapshot").
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "crane/fd.h"
#include "crane/snapshot.h"
#include "index/snapshot_access.h"
#include "index/snapshot_format.h"

namespace crane {

using namespace snapshot_format;  // the format's names are this file's words
using A = SnapshotAccess;

V2Layout snapshot_format::v2_layout(const Snapshot* s, u32 off) {
    V2Layout l;
    const u32 mask = A::u32at(s, u64{off} + kV2Mask);
    u64 counts = u64{off} + kV2Counts;
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

namespace {

// Binary search of n entries `stride` bytes apart from `at`, sorted by the
// string key_of(an entry's offset) reads: the offset of the entry whose key
// is `want`.
template <typename KeyOf>
std::optional<u64> find_sorted(u64 at, u64 n, u64 stride, std::string_view want, KeyOf key_of) {
    u64 lo = 0, hi = n;
    while (lo < hi) {
        const u64 mid = lo + (hi - lo) / 2;
        const u64 entry = at + stride * mid;
        const int c = key_of(entry).compare(want);
        if (c == 0) return entry;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return std::nullopt;
}

// The string an entry starts with (its key).
std::string_view key_string(const Snapshot* s, u64 entry) { return A::str(s, A::u32at(s, entry)); }

// Binary search of `key` in n u32 string offsets at `at`.
bool find_string_ref(const Snapshot* s, u32 at, u32 n, std::string_view key) {
    return find_sorted(at, n, 4, key, [s](u64 e) { return key_string(s, e); }).has_value();
}

bool find_raw(const Snapshot* s, u32 at, u32 n, const unsigned char* raw) {
    const unsigned char* base = A::bytes(s, at, u64{n} * kRawDigestSize);
    if (!base) return false;
    u32 lo = 0, hi = n;
    while (lo < hi) {
        const u32 mid = lo + (hi - lo) / 2;
        const int c = std::memcmp(base + kRawDigestSize * u64{mid}, raw, kRawDigestSize);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return false;
}

bool in_ref_set(const Snapshot* s, u32 off, V2Array dig, std::string_view ref) {
    const V2Layout l = v2_layout(s, off);
    unsigned char raw[kRawDigestSize];
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
        if (const unsigned char* raw = A::bytes(s, u64{at} + kAmd64Digest, kRawDigestSize)) v.digest.spell_sha256(raw);
    } else {
        v.digest.refer(A::str(s, A::u32at(s, u64{at} + kAmd64Digest)));
    }
    return v;
}

std::string_view string_entry(const Snapshot* s, u32 base, std::size_t i) {
    return A::str(s, A::u32_entry(s, base, i));
}
V1View v1_entry(const Snapshot* s, u32 base, std::size_t i) { return V1View(s, A::u32_entry(s, base, i)); }
V2View v2_entry(const Snapshot* s, u32 base, std::size_t i) { return V2View(s, A::u32_entry(s, base, i)); }
ReferrerView referrer_entry(const Snapshot* s, u32 base, std::size_t i) {
    return ReferrerView(s, A::u32_entry(s, base, i));
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
        const u32 rec = A::u32_entry(s, t.off, i);
        if (rec == 0) return std::nullopt;
        if (A::u8at(s, u64{rec} + kRecKind) == kind && A::str(s, A::u32at(s, u64{rec} + kRecId)) == id) return rec;
    }
    return std::nullopt;
}

}  // namespace

SnapRange<ReferrerView> snapshot_format::referrers_at(const Snapshot* s, u32 base, u32 n) {
    return u32_range<ReferrerView>(s, base, n, referrer_entry);
}

// ---- a delta over its base ----

// What a delta's lookups need beyond its bytes, worked out once when it is
// opened (in the overlay's size, never the base's): where its sorted lists
// go into the base's, and the merged summary.
struct SnapshotOverlay {
    // One sorted list (v1 or v2 winners, by id) of the merge: the base's
    // list without its `hidden` entries (the keys the delta answers for),
    // with the delta's own winners for those keys (`added`) put in place.
    struct Merged {
        std::vector<u32> hidden_before;  // per hidden base entry: visible base entries before it (ascending)
        std::vector<u32> added;          // the delta's records, by id
        std::vector<u32> added_at;       // each one's position in the merge (ascending)
        std::size_t size = 0;
    };
    Merged v1, v2;
    SnapshotSummary summary;
};

namespace {

// The i-th entry of a merged list: one of the delta's records, or the base's
// entry the visible ones before it lead to.
template <typename View>
View merged_entry(const Snapshot* delta, const SnapshotOverlay::Merged& m, SnapRange<View> base_list, std::size_t i) {
    const auto j = static_cast<std::size_t>(std::lower_bound(m.added_at.begin(), m.added_at.end(), i) - m.added_at.begin());
    if (j < m.added.size() && m.added_at[j] == i) return View(delta, m.added[j]);
    const std::size_t visible = i - j;  // base entries that stay, before this one
    const auto hidden = static_cast<std::size_t>(
        std::upper_bound(m.hidden_before.begin(), m.hidden_before.end(), visible) - m.hidden_before.begin());
    return base_list[visible + hidden];
}

// A sorted array of u32 string offsets (an overlay key list) holds `key`.
bool in_key_list(const Snapshot* s, Section k, std::string_view key) {
    const SectionRef r = A::section(s, k);
    return r.len != 0 && find_string_ref(s, r.off, r.len / 4, key);
}

// The position of `path` in an image's own file table.
std::optional<std::size_t> find_file_in(const Snapshot* s, std::string_view path) {
    const SectionRef t = A::section(s, kFiles);
    const auto at = find_sorted(t.off, t.len / kFileEntrySize, kFileEntrySize, path,
                                [s](u64 e) { return key_string(s, e + kFilePath); });
    if (!at) return std::nullopt;
    return static_cast<std::size_t>((*at - t.off) / kFileEntrySize);
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

std::string_view RepoView::id() const { return A::str(s_, A::u32at(s_, u64{off_} + kRecId)); }
namespace {
// A field that is either a string or, when `flag` is set, a slice of the
// url (start << 16 | length): the url_path nearly always, the repository
// (Pulp's name, in the url's path) often.
std::string_view string_or_url_slice(const RepoView& v, const Snapshot* s, u32 off, u32 field, u8 flag) {
    const u32 word = A::u32at(s, u64{off} + field);
    if (!(A::u8at(s, u64{off} + kRecFlags) & flag)) return A::str(s, word);
    const std::string_view u = v.url();
    const std::size_t start = word >> 16, len = word & 0xFFFF;
    return start + len <= u.size() ? u.substr(start, len) : std::string_view();
}
}  // namespace

std::string_view RepoView::repository() const { return string_or_url_slice(*this, s_, off_, kRecRepository, kRepositorySlice); }
std::string_view RepoView::url() const { return A::str(s_, A::u32at(s_, u64{off_} + kRecUrl)); }
std::string_view RepoView::url_path() const { return string_or_url_slice(*this, s_, off_, kRecUrlPath, kUrlPathSlice); }
bool RepoView::is_protected() const { return A::u8at(s_, u64{off_} + kRecFlags) & kProtected; }
int RepoView::version() const { return A::u8at(s_, u64{off_} + kRecVersion); }
std::string_view RepoView::source_path() const { return A::str(s_, A::u32at(s_, u64{off_} + kRecSourcePath)); }

namespace {
// where a v1 record's tags start: after its image ids
u64 v1_tags_at(const Snapshot* s, u32 off) {
    return u64{off} + kV1Arrays + 4 * u64{A::u32at(s, u64{off} + kV1ImageCount)};
}
}  // namespace

SnapRange<std::string_view> V1View::image_ids() const {
    return u32_range<std::string_view>(s_, u64{off_} + kV1Arrays, A::u32at(s_, u64{off_} + kV1ImageCount), string_entry);
}
std::size_t V1View::tag_count() const {
    return A::clamp(s_, v1_tags_at(s_, off_), A::u32at(s_, u64{off_} + kV1TagCount), kV1TagSize);
}
std::pair<std::string_view, std::string_view> V1View::tag(std::size_t i) const {
    const u64 at = v1_tags_at(s_, off_) + kV1TagSize * u64{i};
    return {A::str(s_, A::u32at(s_, at)), A::str(s_, A::u32at(s_, at + kV1TagImage))};
}
std::optional<std::string_view> V1View::find_tag(std::string_view t) const {
    const auto at = find_sorted(v1_tags_at(s_, off_), tag_count(), kV1TagSize, t,
                                [this](u64 e) { return key_string(s_, e); });
    if (!at) return std::nullopt;
    return A::str(s_, A::u32at(s_, *at + kV1TagImage));
}
std::string_view V1View::images_json() const { return A::str(s_, A::u32at(s_, u64{off_} + kV1ImagesJson)); }
std::string_view V1View::tags_json() const { return A::str(s_, A::u32at(s_, u64{off_} + kV1TagsJson)); }

bool V2View::has_schema2_fields() const { return A::u8at(s_, u64{off_} + kRecFlags) & kHasSchema2; }
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
    const auto at = find_sorted(l.at[kAmd64], l.n[kAmd64], kAmd64EntrySize, t,
                                [this](u64 e) { return A::str(s_, A::u32at(s_, e) & ~kLowBits); });
    if (!at) return std::nullopt;
    return amd64_at(s_, static_cast<u32>(*at));
}

std::optional<Amd64View> V2View::find_amd64_by_digest(std::string_view digest) const {
    const V2Layout l = v2_layout(s_, off_);
    unsigned char want[kRawDigestSize] = {};
    const bool raw = decode_sha256(digest, want);
    for (u32 i = 0; i < l.n[kAmd64]; ++i) {
        const u64 at = u64{l.at[kAmd64]} + kAmd64EntrySize * u64{i};
        const bool entry_raw = A::u32at(s_, at) & kRawDigest;
        if (entry_raw != raw) continue;
        const bool match = raw ? std::memcmp(A::bytes(s_, at + kAmd64Digest, kRawDigestSize), want, kRawDigestSize) == 0
                               : A::str(s_, A::u32at(s_, at + kAmd64Digest)) == digest;
        if (match) return amd64_at(s_, static_cast<u32>(at));
    }
    return std::nullopt;
}

bool V2View::has_tags() const { return A::u8at(s_, u64{off_} + kRecFlags) & kHasTags; }
SnapRange<std::string_view> V2View::tags() const {
    const V2Layout l = v2_layout(s_, off_);
    return u32_range<std::string_view>(s_, l.at[kTags], l.n[kTags], string_entry);
}

SnapRange<ReferrerView> V2View::find_referrers(std::string_view digest) const {
    const V2Layout l = v2_layout(s_, off_);
    const auto at = find_sorted(l.at[kReferrers], l.n[kReferrers], kListSize, digest,
                                [this](u64 e) { return key_string(s_, e + kListSubject); });
    if (!at) return {};
    return u32_range<ReferrerView>(s_, A::u32at(s_, *at + kListDescriptors), A::u32at(s_, *at + kListCount),
                                   referrer_entry);
}

std::string_view ReferrerView::media_type() const { return A::str(s_, A::u32at(s_, u64{off_} + kDescMediaType)); }
std::string_view ReferrerView::digest() const { return A::str(s_, A::u32at(s_, u64{off_} + kDescDigest)); }
std::int64_t ReferrerView::size() const {
    return static_cast<std::int64_t>(A::u32at(s_, u64{off_} + kDescSizeLow) | u64{A::u32at(s_, u64{off_} + kDescSizeHigh)} << 32);
}
std::string_view ReferrerView::artifact_type() const { return A::str(s_, A::u32at(s_, u64{off_} + kDescArtifactType)); }
std::size_t ReferrerView::annotation_count() const {
    return A::clamp(s_, u64{off_} + kDescriptorSize, A::u32at(s_, u64{off_} + kDescAnnotationCount), kAnnotationSize);
}
std::pair<std::string_view, std::string_view> ReferrerView::annotation(std::size_t i) const {
    const u64 at = u64{off_} + kDescriptorSize + kAnnotationSize * u64{i};
    return {A::str(s_, A::u32at(s_, at)), A::str(s_, A::u32at(s_, at + kAnnotationValue))};
}

// ---- the snapshot ----

Snapshot::~Snapshot() {
    if (mapping_) ::munmap(mapping_, mapping_size_);
}

std::uint64_t Snapshot::generation() const { return A::u64at(this, offsetof(SnapshotHeader, generation)); }
std::int64_t Snapshot::built_at_ns() const {
    return static_cast<std::int64_t>(A::u64at(this, offsetof(SnapshotHeader, built_at_ns)));
}
std::size_t Snapshot::size_bytes() const { return size_; }
std::size_t Snapshot::mapped_bytes() const { return size_ + (base_ ? base_->size_ : 0); }
std::uint64_t Snapshot::checksum() const { return A::u64at(this, kChecksumAt); }

SnapshotSummary Snapshot::summary() const {
    if (overlay_) return overlay_->summary;
    const SnapshotHeader h = A::header(this);
    return SnapshotSummary{h.files, h.failed_files, h.v1_repos, h.v2_repos};
}

std::string Snapshot::base_path(const std::string& path, std::uint64_t base_generation) {
    return path + ".base." + std::to_string(base_generation);
}

std::optional<V1View> Snapshot::find_v1(std::string_view id) const {
    if (base_ && !in_key_list(this, kOverlayV1, id)) return base_->find_v1(id);
    if (auto rec = find_in_table(this, kV1Hash, kKindV1, id)) return V1View(this, *rec);
    return std::nullopt;
}

std::optional<V2View> Snapshot::find_v2(std::string_view name) const {
    if (base_ && !in_key_list(this, kOverlayV2, name)) return base_->find_v2(name);
    if (auto rec = find_in_table(this, kV2Hash, kKindV2, name)) return V2View(this, *rec);
    return std::nullopt;
}

SnapRange<V1View> Snapshot::repos_with_image(std::string_view image_id) const {
    if (base_ && !in_key_list(this, kOverlayImages, image_id)) return base_->repos_with_image(image_id);
    const SectionRef t = A::section(this, kImages);
    const auto at = find_sorted(t.off, t.len / kImageEntrySize, kImageEntrySize, image_id,
                                [this](u64 e) { return key_string(this, e + kImageEntryId); });
    if (!at) return {};
    return u32_range<V1View>(this, A::u32at(this, *at + kImageEntryRepos), A::u32at(this, *at + kImageEntryCount),
                             v1_entry);
}

namespace {
V1View merged_v1(const Snapshot* s, u32, std::size_t i) {
    return merged_entry(s, A::overlay(s).v1, A::base(s).v1_sorted(), i);
}
V2View merged_v2(const Snapshot* s, u32, std::size_t i) {
    return merged_entry(s, A::overlay(s).v2, A::base(s).v2_sorted(), i);
}
}  // namespace

SnapRange<V1View> Snapshot::v1_sorted() const {
    if (overlay_) return SnapRange<V1View>(this, 0, overlay_->v1.size, merged_v1);
    const SectionRef t = A::section(this, kV1Sorted);
    return u32_range<V1View>(this, t.off, t.len / 4, v1_entry);
}

SnapRange<V2View> Snapshot::v2_sorted() const {
    if (overlay_) return SnapRange<V2View>(this, 0, overlay_->v2.size, merged_v2);
    const SectionRef t = A::section(this, kV2Sorted);
    return u32_range<V2View>(this, t.off, t.len / 4, v2_entry);
}

std::size_t Snapshot::file_count() const { return A::section(this, kFiles).len / kFileEntrySize; }

SnapshotFileInfo Snapshot::file(std::size_t i) const {
    SnapshotFileInfo f;
    if (i >= file_count()) return f;
    const u64 at = u64{A::section(this, kFiles).off} + kFileEntrySize * u64{i};
    f.path = A::str(this, A::u32at(this, at + kFilePath));
    const u32 word = A::u32at(this, at + kFileRecord);
    const u32 rec = word & ~(kRacyBit | kFailedBit);
    const u8 kind = rec ? A::u8at(this, u64{rec} + kRecKind) : 0;
    f.racy = word & kRacyBit;
    f.failed = word & kFailedBit;
    f.stamp.dev = A::u64at(this, at + kFileDev);
    f.stamp.ino = A::u64at(this, at + kFileIno);
    f.stamp.size = static_cast<std::int64_t>(A::u64at(this, at + kFileSize));
    f.stamp.mtime_ns = static_cast<std::int64_t>(A::u64at(this, at + kFileMtime));
    f.stamp.ctime_ns = static_cast<std::int64_t>(A::u64at(this, at + kFileCtime));
    f.content_hash = A::u64at(this, at + kFileHash);
    if (rec != 0 && kind == kKindV1) f.v1 = V1View(this, rec);
    if (rec != 0 && kind == kKindV2) f.v2 = V2View(this, rec);
    return f;
}

std::optional<std::size_t> Snapshot::find_file(std::string_view path) const { return find_file_in(this, path); }

std::vector<std::string_view> Snapshot::removed_paths() const {
    std::vector<std::string_view> out;
    if (!base_) return out;
    const SectionRef r = A::section(this, kOverlayRemoved);
    for (u32 i = 0; i < r.len / 4; ++i) out.push_back(A::str(this, A::u32_entry(this, r.off, i)));
    return out;
}

bool Snapshot::has_files_under(std::string_view dir) const {
    const std::string prefix = std::string(dir) + "/";
    auto under = [&prefix](const Snapshot* s) {
        const SectionRef t = A::section(s, kFiles);
        u64 lo = 0, hi = t.len / kFileEntrySize;
        while (lo < hi) {  // the first path not before the prefix
            const u64 mid = lo + (hi - lo) / 2;
            if (key_string(s, t.off + kFileEntrySize * mid + kFilePath) < prefix) lo = mid + 1; else hi = mid;
        }
        return lo < t.len / kFileEntrySize &&
               key_string(s, t.off + kFileEntrySize * lo + kFilePath).compare(0, prefix.size(), prefix) == 0;
    };
    return under(this) || (base_ && under(base_.get()));
}

std::optional<SnapshotFileInfo> Snapshot::find_any_file(std::string_view path) const {
    if (auto i = find_file_in(this, path)) return file(*i);
    if (!base_ || in_key_list(this, kOverlayRemoved, path)) return std::nullopt;
    if (auto i = find_file_in(base_.get(), path)) return base_->file(*i);
    return std::nullopt;
}

std::vector<SnapshotFileInfo> Snapshot::files() const {
    std::vector<SnapshotFileInfo> out;
    const std::size_t own = file_count();
    if (!base_) {
        out.reserve(own);
        for (std::size_t i = 0; i < own; ++i) out.push_back(file(i));
        return out;
    }
    // the base's table and the delta's, both by path, merged; the delta's
    // entry wins, and a removed path leaves the base's out
    const std::size_t theirs = base_->file_count();
    out.reserve(theirs + own);
    std::size_t k = 0;
    for (std::size_t i = 0; i < theirs; ++i) {
        SnapshotFileInfo f = base_->file(i);
        for (; k < own; ++k) {
            SnapshotFileInfo mine = file(k);
            if (mine.path >= f.path) break;
            out.push_back(mine);
        }
        if (k < own && file(k).path == f.path) continue;  // the delta's comes next
        if (in_key_list(this, kOverlayRemoved, f.path)) continue;
        out.push_back(f);
    }
    for (; k < own; ++k) out.push_back(file(k));
    return out;
}

// ---- validation ----

namespace {

// A full image has no overlay; a delta's keys are strings inside its
// overlay strings, each list strictly ascending (binary search relies on it).
std::optional<std::string> check_overlay(const Snapshot* s, const SnapshotHeader& h) {
    if (h.base_generation == 0) {
        for (Section k = kOverlayStrings; k < kSectionCount; k = static_cast<Section>(k + 1)) {
            if (h.sections[k].len != 0) return std::string("section ") + kSectionNames[k] + " in a full image";
        }
        return std::nullopt;
    }
    const SectionRef strs = h.sections[kOverlayStrings];
    const u64 strs_end = u64{strs.off} + strs.len;
    for (Section k : kOverlayKeys) {
        const SectionRef r = h.sections[k];
        std::string_view prev;
        for (u32 i = 0; i < r.len / 4; ++i) {
            const u32 off = A::u32_entry(s, r.off, i);
            if (off < strs.off || u64{off} + 4 > strs_end || u64{off} + 4 + A::u32at(s, off) > strs_end) {
                return std::string("an entry of section ") + kSectionNames[k] + " is not an overlay string";
            }
            const std::string_view key = A::str(s, off);
            if (i > 0 && !(prev < key)) return std::string("section ") + kSectionNames[k] + " is not sorted";
            prev = key;
        }
    }
    return std::nullopt;
}

}  // namespace

Result<std::shared_ptr<const Snapshot>> SnapshotAccess::validate(std::shared_ptr<Snapshot> s) {
    using R = Result<std::shared_ptr<const Snapshot>>;
    const std::size_t n = s->size_;
    if (n < sizeof(SnapshotHeader)) {
        return R::failure("truncated: " + std::to_string(n) + " bytes, a header alone is " +
                          std::to_string(sizeof(SnapshotHeader)));
    }
    SnapshotHeader h;
    std::memcpy(&h, s->data_, sizeof h);
    if (std::memcmp(h.magic, kMagic, 8) != 0) return R::failure("not a crane snapshot (bad magic)");
    if (h.format != kSnapshotFormat) {
        return R::failure("format " + std::to_string(h.format) + ", this module reads format " +
                          std::to_string(kSnapshotFormat));
    }
    if (h.header_size != sizeof(SnapshotHeader)) {
        return R::failure("header size " + std::to_string(h.header_size) + ", format " +
                          std::to_string(kSnapshotFormat) + " has " + std::to_string(sizeof(SnapshotHeader)));
    }
    if (h.total_size != n) {
        return R::failure((n < h.total_size ? "truncated: " : "trailing bytes: ") + std::to_string(n) +
                          " bytes, header says " + std::to_string(h.total_size));
    }
    if (snapshot_checksum(s->data_, n) != h.checksum) return R::failure("checksum mismatch");
    for (u32 k = 0; k < kSectionCount; ++k) {
        const SectionRef r = h.sections[k];
        if (k >= kOverlayStrings && r.off == 0 && r.len == 0) continue;  // no overlay (a full image)
        const bool inside = r.off >= sizeof(SnapshotHeader) && u64{r.off} + r.len <= n && r.off % 8 == 0;
        if (!inside || r.len % kSectionUnit[k] != 0) {
            return R::failure(std::string("section ") + kSectionNames[k] + " out of bounds");
        }
    }
    for (Section k : {kV1Hash, kV2Hash}) {
        const u32 slots = h.sections[k].len / 4;
        if (slots & (slots - 1)) return R::failure(std::string("section ") + kSectionNames[k] + " is not a power of two");
    }
    if (auto bad = check_overlay(s.get(), h)) return R::failure(*bad);
    return R(std::shared_ptr<const Snapshot>(std::move(s)));
}

namespace {

// One sorted list of a delta's merge: each overlay key the base's list
// holds is hidden there; the delta's own winner for a key, if any, goes in
// at the key's place. Returns how many base entries are hidden.
template <typename View>
std::size_t plan_merge(const Snapshot* delta, Section keys, Section own_table, u8 kind, SnapRange<View> base_list,
                       SnapshotOverlay::Merged& m) {
    const SectionRef r = A::section(delta, keys);
    std::vector<u32> hidden;  // base positions, ascending (the keys are sorted)
    for (u32 i = 0; i < r.len / 4; ++i) {
        const std::string_view key = A::str(delta, A::u32_entry(delta, r.off, i));
        const auto at = std::lower_bound(base_list.begin(), base_list.end(), key,
                                         [](const View& v, std::string_view id) { return v.id() < id; });
        const auto pos = static_cast<u32>(at - base_list.begin());
        if (auto own = find_in_table(delta, own_table, kind, key)) {
            // after the visible base entries before it and the delta's before it
            m.added_at.push_back(pos - static_cast<u32>(hidden.size()) + static_cast<u32>(m.added.size()));
            m.added.push_back(*own);
        }
        if (at != base_list.end() && (*at).id() == key) hidden.push_back(pos);
    }
    for (std::size_t k = 0; k < hidden.size(); ++k) m.hidden_before.push_back(hidden[k] - static_cast<u32>(k));
    m.size = base_list.size() - hidden.size() + m.added.size();
    return hidden.size();
}

}  // namespace

Result<std::shared_ptr<const Snapshot>> SnapshotAccess::attach(std::shared_ptr<Snapshot> s,
                                                               std::shared_ptr<const Snapshot> base) {
    using R = Result<std::shared_ptr<const Snapshot>>;
    const SnapshotHeader h = header(s.get());
    if (!base) return R::failure("a delta over generation " + std::to_string(h.base_generation) + " without its base");
    if (base->base_) return R::failure("the base of a delta is itself a delta");
    if (base->generation() != h.base_generation || base->checksum() != h.base_checksum) {
        return R::failure("its base is generation " + std::to_string(h.base_generation) +
                          ", and the image found is another (generation " + std::to_string(base->generation()) + ")");
    }
    auto overlay = std::make_unique<SnapshotOverlay>();
    const Snapshot* d = s.get();
    SnapshotSummary sum = base->summary();
    sum.v1_repos = sum.v1_repos - plan_merge(d, kOverlayV1, kV1Hash, kKindV1, base->v1_sorted(), overlay->v1) +
                   overlay->v1.added.size();
    sum.v2_repos = sum.v2_repos - plan_merge(d, kOverlayV2, kV2Hash, kKindV2, base->v2_sorted(), overlay->v2) +
                   overlay->v2.added.size();
    // the files: the base's, less those the delta holds or removes, plus the delta's
    auto drop = [&](std::string_view path) {
        if (auto i = find_file_in(base.get(), path)) {
            --sum.files;
            if (base->file(*i).failed) --sum.failed_files;
        }
    };
    for (std::size_t i = 0; i < d->file_count(); ++i) {
        const SnapshotFileInfo f = d->file(i);
        drop(f.path);
        ++sum.files;
        if (f.failed) ++sum.failed_files;
    }
    const SectionRef removed = section(d, kOverlayRemoved);
    for (u32 i = 0; i < removed.len / 4; ++i) {
        const std::string_view path = str(d, u32_entry(d, removed.off, i));
        if (!find_file_in(d, path)) drop(path);  // (the delta's own entry was counted)
    }
    overlay->summary = sum;
    s->base_ = std::move(base);
    s->overlay_ = std::move(overlay);
    return R(std::shared_ptr<const Snapshot>(std::move(s)));
}

Result<std::shared_ptr<const Snapshot>> Snapshot::from_bytes(std::string bytes, std::shared_ptr<const Snapshot> base) {
    std::shared_ptr<Snapshot> s(new Snapshot());
    s->owned_ = std::move(bytes);
    s->data_ = reinterpret_cast<const unsigned char*>(s->owned_.data());
    s->size_ = s->owned_.size();
    auto r = A::validate(s);
    if (!r || !A::is_delta(s.get())) return r;
    return A::attach(std::move(s), std::move(base));
}

Result<std::shared_ptr<const Snapshot>> Snapshot::open(const std::string& path,
                                                       const std::shared_ptr<const Snapshot>& known) {
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
    if (!A::is_delta(s.get())) return r;
    // a delta: its base is the one already mapped when it is that one
    const SnapshotHeader h = A::header(s.get());
    auto is_base = [&h](const std::shared_ptr<const Snapshot>& c) {
        return c && !c->base_ && c->generation() == h.base_generation && c->checksum() == h.base_checksum;
    };
    std::shared_ptr<const Snapshot> base;
    if (is_base(known)) {
        base = known;
    } else if (known && is_base(known->base_)) {
        base = known->base_;
    } else {
        const std::string base_file = base_path(path, h.base_generation);
        auto opened = open(base_file);
        // gone: a full snapshot replaced the delta since it was opened (the
        // caller opens the path again)
        if (!opened) return R::failure(path + ": its base: " + opened.error());
        base = *opened;
    }
    auto attached = A::attach(std::move(s), std::move(base));
    if (!attached) return R::failure(path + ": " + attached.error());
    return attached;
}

}  // namespace crane
