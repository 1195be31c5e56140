// The index snapshot's builder: encodes an image from parsed files and from
// records carried over from an earlier snapshot (see snapshot.h; the bytes
// are in snapshot_format.h, the strings in snapshot_string_table.h).
#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "crane/snapshot.h"
#include "index/snapshot_access.h"
#include "index/snapshot_format.h"
#include "index/snapshot_string_table.h"

namespace crane {

using namespace snapshot_format;  // the format's names are this file's words
using A = SnapshotAccess;

namespace {

// One record to encode: the input it comes from and what resolution says.
struct Entry {
    std::size_t input;
    u8 kind;
    std::string_view id, source_path;
    bool winner = false;
    u32 id_hash = 0;  // hash_id(id), once resolved
    u32 offset = 0;   // in the image, once written
};

class SnapshotImageBuilder {
public:
    SnapshotImageBuilder() { out_.assign(sizeof(SnapshotHeader), '\0'); }

    std::string build(const std::vector<SnapshotFileInput>& files, u64 generation, std::int64_t built_at_ns,
                      std::vector<std::string>* warnings);

private:
    std::size_t here() const { return out_.size(); }
    void put32(u32 v) { out_.append(reinterpret_cast<const char*>(&v), 4); }
    void set32(std::size_t at, u32 v) { std::memcpy(&out_[at], &v, 4); }
    // an image offset inside a record (moved with the record when a part is merged)
    void set_offset(std::size_t at, u32 v) {
        set32(at, v);
        offset_fixups_.push_back(static_cast<u32>(at));
    }
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
        if (out_.size() > kMaxImageBytes) throw std::length_error("snapshot larger than 4 GiB");
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
    void end_section(Section k, SectionRef r) {
        check_size();
        r.len = static_cast<u32>(here() - r.off);
        h_.sections[k] = r;
    }
    void put_table(Section k, const std::vector<Entry*>& winners);

    // build's steps, in the order of the sections
    std::vector<Entry> collect_entries(const std::vector<SnapshotFileInput>& files,
                                       std::vector<std::string>* warnings);
    void put_records(const std::vector<SnapshotFileInput>& files, std::vector<Entry>& entries);
    void put_range(const std::vector<SnapshotFileInput>& files, std::vector<Entry>& entries, std::size_t from,
                   std::size_t to);
    void merge_records(const SnapshotImageBuilder& part, std::vector<Entry>& entries, std::size_t from, std::size_t to);
    void put_strings(const std::vector<SnapshotFileInput>& files);
    std::vector<Entry*> put_name_tables(std::vector<Entry>& entries);
    void put_images(const std::vector<Entry*>& v1);
    void put_files(const std::vector<SnapshotFileInput>& files, const std::vector<Entry>& entries);

    SnapshotHeader h_{};
    std::vector<std::size_t> by_path_;   // input indexes, by path
    std::vector<std::size_t> entry_of_;  // input index -> its entry (SIZE_MAX: none)
    std::vector<u32> path_pos_;          // each path's string, in by_path_ order
    u32 strings_base_ = 0;               // the strings section's offset, once placed

    std::string out_;
    SnapshotStringTable strings_;
    std::vector<u32> fixups_;  // where string references are (positions fit: checked)
    std::vector<u32> offset_fixups_;  // where image offsets are inside the records
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

u32 SnapshotImageBuilder::carried_pos(const Snapshot* s, u32 old) {
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

void SnapshotImageBuilder::resolve(std::vector<Entry>& entries, u8 kind, const char* ns, std::vector<std::string>* warnings) {
    std::vector<Entry*> order;
    for (Entry& e : entries) {
        if (e.kind == kind) order.push_back(&e);
    }
    // Index::build's rule: in source path order, a later record replaces an
    // earlier one (entries come in file path order, usually the same)
    auto by_source = [](const Entry* a, const Entry* b) { return a->source_path < b->source_path; };
    if (!std::is_sorted(order.begin(), order.end(), by_source)) std::stable_sort(order.begin(), order.end(), by_source);
    // by id: open addressing, at most half full (the hash is kept for the name tables)
    std::size_t slots = 4;
    while (slots < 2 * order.size()) slots *= 2;
    std::vector<Entry*> by_id(slots, nullptr);
    for (Entry* e : order) {
        e->id_hash = hash_id(e->id);
        std::size_t i = e->id_hash & (slots - 1);
        while (by_id[i] && by_id[i]->id != e->id) i = (i + 1) & (slots - 1);
        if (by_id[i] && warnings) {
            warnings->push_back(std::string(ns) + " repository '" + std::string(e->id) + "' is defined in both " +
                                std::string(by_id[i]->source_path) + " and " + std::string(e->source_path) +
                                "; using " + std::string(e->source_path));
        }
        by_id[i] = e;
    }
    for (Entry* e : by_id) {
        if (e) e->winner = true;
    }
}

// Where `part` is in `url`, as start << 16 | length, when both fit 16 bits.
std::optional<u32> url_slice(std::string_view url, std::string_view part, bool last) {
    if (part.empty()) return std::nullopt;
    const std::size_t start = last ? url.rfind(part) : url.find(part);
    if (start == std::string_view::npos || start >= 0x10000 || part.size() >= 0x10000) return std::nullopt;
    return static_cast<u32>(start << 16 | part.size());
}

void SnapshotImageBuilder::put_common(u8 kind, u8 flags, int version, std::string_view id, std::string_view repository,
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

u32 SnapshotImageBuilder::encode_v1(const V1Repo& r) {
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

u32 SnapshotImageBuilder::encode_v1(const V1View& v) {
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
    const u64 at = u64{v.offset()} + kV1Arrays;
    for (std::size_t i = 0; i < images.size(); ++i) put_carried(s, A::u32at(s, at + 4 * i));
    const u64 tags_at = at + 4 * u64{images.size()};
    for (std::size_t i = 0; i < 2 * tags; ++i) put_carried(s, A::u32at(s, tags_at + 4 * i));
    return off;
}

void SnapshotImageBuilder::put_arrays_header(const u32 (&n)[kV2ArrayCount]) {
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
    unsigned char buf[kRawDigestSize];
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
            raw.append(reinterpret_cast<const char*>(buf), kRawDigestSize);
        } else {
            other.push_back(r);
        }
    }
}

void SnapshotImageBuilder::put_referrers(const std::vector<ReferrerList>& lists) {
    const std::size_t entries = here();
    for (const auto& l : lists) {
        put_str(l.subject);
        put32(static_cast<u32>(l.descriptors.size()));
        put32(0);  // set below
    }
    for (std::size_t i = 0; i < lists.size(); ++i) {
        const std::size_t offsets = here();
        set_offset(entries + kListSize * i + kListDescriptors, static_cast<u32>(offsets));
        out_.append(4 * lists[i].descriptors.size(), '\0');
        for (std::size_t d = 0; d < lists[i].descriptors.size(); ++d) {
            const Referrer& r = lists[i].descriptors[d];
            set_offset(offsets + 4 * d, static_cast<u32>(here()));
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
void SnapshotImageBuilder::put_referrers(const Snapshot* s, const V2Layout& l) {
    const std::size_t entries = here();
    std::vector<SnapRange<ReferrerView>> lists;
    std::vector<std::size_t> counts;
    u64 descriptors = s->size_bytes() / kDescriptorSize;
    u64 annotations = s->size_bytes() / kAnnotationSize;
    for (u32 i = 0; i < l.n[kReferrers]; ++i) {
        const u64 at = u64{l.at[kReferrers]} + kListSize * u64{i};
        const std::string_view subject = A::str(s, A::u32at(s, at + kListSubject));
        lists.push_back(referrers_at(s, A::u32at(s, at + kListDescriptors), A::u32at(s, at + kListCount)));
        counts.push_back(static_cast<std::size_t>(std::min<u64>(lists.back().size(), descriptors)));
        descriptors -= counts.back();
        put_str(subject);
        put32(static_cast<u32>(counts.back()));
        put32(0);
    }
    for (std::size_t i = 0; i < lists.size(); ++i) {
        const std::size_t offsets = here();
        set_offset(entries + kListSize * i + kListDescriptors, static_cast<u32>(offsets));
        out_.append(4 * counts[i], '\0');
        for (std::size_t d = 0; d < counts[i]; ++d) {
            const ReferrerView r = lists[i][d];
            set_offset(offsets + 4 * d, static_cast<u32>(here()));
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

u32 SnapshotImageBuilder::encode_v2(const V2Repo& r) {
    const u32 off = static_cast<u32>(here());
    put_common(kKindV2, v2_flags(r.is_protected, r.has_schema2_fields, r.has_tags), r.version, r.id, r.repository,
               r.url, r.url_path, r.source_path);
    u32 n[kV2ArrayCount] = {};
    const std::vector<std::string>* lists[4] = {&r.schema2_data, &r.manifest_list_data, &r.oci_index_data,
                                                &r.oci_manifest_data};
    for (u32 k = 0; k < 4; ++k) {
        split_refs(*lists[k], raw_[k], other_[k]);
        n[std::size_t{2} * k] = static_cast<u32>(raw_[k].size() / kRawDigestSize);
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
        unsigned char slot[kRawDigestSize] = {};
        const bool raw = decode_sha256(a.digest, slot);
        put_tag_word(a.tag, (a.schema_version == 2 ? kSchema2Bit : 0) | (raw ? kRawDigest : 0));
        if (raw) {
            out_.append(reinterpret_cast<const char*>(slot), kRawDigestSize);
        } else {
            put_str(a.digest);
            out_.append(kRawDigestSize - 4, '\0');
        }
    }
    for (const auto& t : r.tags) put_str(t);
    put_referrers(r.referrers);
    return off;
}

// Re-encoded straight from the old image: raw digests copied as they are,
// strings re-interned from views into the old mapping.
u32 SnapshotImageBuilder::encode_v2(const V2View& v) {
    const Snapshot* s = v.snapshot();
    const V2Layout l = v2_layout(s, v.offset());
    const u32 off = static_cast<u32>(here());
    put_common(kKindV2, v2_flags(v.is_protected(), v.has_schema2_fields(), v.has_tags()), v.version(), v.id(),
               v.repository(), v.url(), v.url_path(), v.source_path());
    put_arrays_header(l.n);
    for (u32 k = kS2Dig; k <= kOmStr; ++k) {
        if (kV2Unit[k] == kRawDigestSize) {
            const u64 n = u64{l.n[k]} * kRawDigestSize;
            const unsigned char* raw = A::bytes(s, l.at[k], n);
            if (raw && n) out_.append(reinterpret_cast<const char*>(raw), n);
        } else {
            for (u32 i = 0; i < l.n[k]; ++i) put_carried(s, A::u32_entry(s, l.at[k], i));
        }
    }
    for (u32 i = 0; i < l.n[kAmd64]; ++i) {
        const u64 at = u64{l.at[kAmd64]} + kAmd64EntrySize * u64{i};
        const u32 word = A::u32at(s, at);
        const unsigned char* raw = A::bytes(s, at + kAmd64Digest, kRawDigestSize);  // inside: v2_layout checked the array
        const bool is_raw = (word & kRawDigest) && raw;
        const u32 tag = carried_pos(s, word & ~kLowBits);
        if (tag != 0) fixups_.push_back(static_cast<u32>(here()));
        put32(tag | (word & kSchema2Bit) | (is_raw ? kRawDigest : 0));
        if (is_raw) {
            out_.append(reinterpret_cast<const char*>(raw), kRawDigestSize);
        } else {
            put_carried(s, A::u32at(s, at + kAmd64Digest));
            out_.append(kRawDigestSize - 4, '\0');
        }
    }
    for (u32 i = 0; i < l.n[kTags]; ++i) put_carried(s, A::u32_entry(s, l.at[kTags], i));
    put_referrers(s, l);
    return off;
}

u32 SnapshotImageBuilder::encode(const SnapshotFileInput& in) {
    u32 off = 0;
    if (in.parsed.v1) off = encode_v1(*in.parsed.v1);
    else if (in.parsed.v2) off = encode_v2(*in.parsed.v2);
    else if (in.carried_v1) off = encode_v1(*in.carried_v1);
    else if (in.carried_v2) off = encode_v2(*in.carried_v2);
    check_size();
    return off;
}

// An open-addressing table of the winners, at most half full.
void SnapshotImageBuilder::put_table(Section k, const std::vector<Entry*>& winners) {
    SectionRef r = begin_section();
    std::size_t slots = winners.empty() ? 0 : 4;
    while (slots < 2 * winners.size()) slots *= 2;
    const std::size_t base = here();
    out_.append(4 * slots, '\0');
    for (const Entry* e : winners) {
        std::size_t i = e->id_hash & (slots - 1);
        while (get32(base + 4 * i) != 0) i = (i + 1) & (slots - 1);
        set32(base + 4 * i, e->offset);
    }
    end_section(k, r);
}

// About how many bytes a file adds to the image (strings counted as if
// none were shared), so that the image is allocated once, not grown.
std::size_t size_estimate(const SnapshotFileInput& in) {
    std::size_t n = kFileEntrySize + 16 + 2 * in.path.size();
    auto common = [](const RepoCommon& c) { return kCommonSize + 32 + c.id.size() + c.repository.size() + c.url.size(); };
    if (const V1Repo* r1 = in.parsed.v1.get()) {
        n += common(*r1) + (kV1Arrays - kCommonSize) + r1->images_json.size() + r1->tags_json.size() + 8 * r1->image_ids.size() + kV1TagSize * r1->tags.size();
    } else if (const V2Repo* r = in.parsed.v2.get()) {
        n += common(*r) + 48 + kRawDigestSize * (r->schema2_data.size() + r->manifest_list_data.size() + r->oci_index_data.size() +
                                     r->oci_manifest_data.size()) +
             kAmd64EntrySize * r->manifest_list_amd64_tags.size() + 4 * r->tags.size() +
             kListSize * r->referrers.size();
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

// About what a file adds to the string table: the bytes of the strings no
// other file shares (its path, id and url; tags are mostly shared) and how
// many string references its record makes (counted for a parsed record
// only), so that the table and the fixups are sized once.
struct StringEstimate {
    std::size_t bytes = 0, refs = 0;
};
StringEstimate string_estimate(const SnapshotFileInput& in) {
    StringEstimate e{in.path.size() + 8, 1};
    if (const V1Repo* r1 = in.parsed.v1.get()) {
        e.bytes += r1->id.size() + r1->url.size() + r1->images_json.size() + r1->tags_json.size() + 32;
        e.refs += 8 + r1->image_ids.size() + 2 * r1->tags.size();
    } else if (const V2Repo* r = in.parsed.v2.get()) {
        e.bytes += r->id.size() + r->url.size() + 16;
        e.refs += 6 + r->schema2_data.size() + r->manifest_list_data.size() + r->oci_index_data.size() +
                  r->oci_manifest_data.size() + r->manifest_list_amd64_tags.size() + r->tags.size() + r->referrers.size();
        for (const auto& l : r->referrers) e.refs += 3 * l.descriptors.size();
    } else if (in.carried_v1 || in.carried_v2) {
        const RepoView& v = in.carried_v1 ? static_cast<const RepoView&>(*in.carried_v1) : *in.carried_v2;
        e.bytes += v.id().size() + v.url().size() + 16;
    }
    return e;
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

// The files' records to encode, in path order, each duplicate id resolved.
std::vector<Entry> SnapshotImageBuilder::collect_entries(const std::vector<SnapshotFileInput>& files,
                                                         std::vector<std::string>* warnings) {
    by_path_.resize(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) by_path_[i] = i;
    // the store's files come sorted by path (the scan's order): then the
    // sort would only compare
    auto by_path = [&](std::size_t a, std::size_t b) { return files[a].path < files[b].path; };
    if (std::adjacent_find(by_path_.begin(), by_path_.end(), [&](std::size_t a, std::size_t b) { return !by_path(a, b); }) !=
        by_path_.end()) {
        std::sort(by_path_.begin(), by_path_.end(), by_path);
    }
    std::vector<Entry> entries;
    entry_of_.assign(files.size(), SIZE_MAX);
    entries.reserve(files.size());
    for (std::size_t i : by_path_) {
        const u8 kind = kind_of(files[i]);
        if (kind == 0) continue;
        Entry e{i, kind, {}, {}};
        e.id = id_of(files[i], &e.source_path);
        entry_of_[i] = entries.size();
        entries.push_back(e);
    }
    resolve(entries, kKindV1, "v1", warnings);
    resolve(entries, kKindV2, "v2", warnings);
    return entries;
}

// The records, in path order. A large build encodes the second half on a
// helper thread, with a string table of its own, and merges it after the
// first half (merge_records): the same bytes as one builder's, the records
// read on two cores (encoding is mostly waiting on the parsed records'
// memory).
void SnapshotImageBuilder::put_records(const std::vector<SnapshotFileInput>& files, std::vector<Entry>& entries) {
    SectionRef records = begin_section();
    constexpr std::size_t kParallelFrom = 4096;  // fewer records: a thread and the merge cost more than they save
    const std::size_t half = entries.size() / 2;
    std::unique_ptr<SnapshotImageBuilder> part;
    std::exception_ptr part_error;
    std::thread helper;
    if (entries.size() >= kParallelFrom && std::thread::hardware_concurrency() > 1) {
        part = std::make_unique<SnapshotImageBuilder>();
        // about half of what this builder was sized for
        part->out_.reserve(out_.capacity() / 2);
        part->strings_.reserve(3 * (entries.size() - half), strings_.bytes().capacity() / 2);
        part->fixups_.reserve(fixups_.capacity() / 2);
        try {
            helper = std::thread([&]() noexcept {
                try {
                    part->put_range(files, entries, half, entries.size());
                } catch (...) {
                    part_error = std::current_exception();
                }
            });
        } catch (const std::system_error&) {  // no thread to be had: one builder
            part.reset();
        }
    }
    try {
        put_range(files, entries, 0, part ? half : entries.size());
    } catch (...) {
        if (helper.joinable()) helper.join();
        throw;
    }
    if (part) {
        helper.join();
        if (part_error) std::rethrow_exception(part_error);
        merge_records(*part, entries, half, entries.size());
    }
    end_section(kRecords, records);
}

void SnapshotImageBuilder::put_range(const std::vector<SnapshotFileInput>& files, std::vector<Entry>& entries,
                                     std::size_t from, std::size_t to) {
    align8();
    for (std::size_t i = from; i < to; ++i) {
        if (i + 1 < to) prefetch_refs(files[entries[i + 1].input]);
        entries[i].offset = encode(files[entries[i].input]);
    }
}

// Appends the records a part encoded (from its first record on) as if
// this builder had encoded them: the part's strings are interned here in
// the order the part first met them (so each string new to this table
// lands where one builder would have put it), then the records' string
// references, record offsets and offsets inside records are moved.
void SnapshotImageBuilder::merge_records(const SnapshotImageBuilder& part, std::vector<Entry>& entries,
                                         std::size_t from, std::size_t to) {
    const std::string& local = part.strings_.bytes();
    std::vector<u32> pos_of(local.size() / 4, 0);  // a local position / 4 -> the position here
    for (std::size_t at = 4; at < local.size();) {
        const std::string_view s = part.strings_.at(static_cast<u32>(at));
        pos_of[at / 4] = strings_.intern(s);
        at += 4 + ((s.size() + 3) & ~std::size_t{3});
    }
    const u32 start = static_cast<u32>(sizeof(SnapshotHeader));  // a part's records start after its (empty) header
    if (u64{here()} + (part.out_.size() - start) > kMaxImageBytes) throw std::length_error("snapshot larger than 4 GiB");
    const u32 delta = static_cast<u32>(here()) - start;
    out_.append(part.out_, start, std::string::npos);
    for (const u32 at : part.fixups_) {
        // a string position, or an amd64 tag's with its two flags (positions are multiples of 4)
        const u32 v = get32(at + delta);
        set32(at + delta, pos_of[(v & ~kLowBits) / 4] | (v & kLowBits));
        fixups_.push_back(at + delta);
    }
    for (const u32 at : part.offset_fixups_) set32(at + delta, get32(at + delta) + delta);
    for (std::size_t i = from; i < to; ++i) entries[i].offset += delta;
    check_size();
}

// The strings, then every string reference in the records fixed up.
void SnapshotImageBuilder::put_strings(const std::vector<SnapshotFileInput>& files) {
    path_pos_.reserve(by_path_.size());
    for (std::size_t i : by_path_) path_pos_.push_back(strings_.intern(files[i].path));
    SectionRef strings = begin_section();
    strings_base_ = strings.off;
    if (u64{strings_base_} + strings_.bytes().size() > kMaxImageBytes) {
        throw std::length_error("snapshot larger than 4 GiB");
    }
    out_.append(strings_.bytes());
    end_section(kStrings, strings);
    for (u32 at : fixups_) set32(at, get32(at) + strings_base_);
    std::vector<u32>().swap(fixups_);
}

// The name tables and sorted lists of the winners; the v1 winners, by id.
std::vector<Entry*> SnapshotImageBuilder::put_name_tables(std::vector<Entry>& entries) {
    std::vector<Entry*> v1, v2;
    for (Entry& e : entries) {
        if (e.winner) (e.kind == kKindV1 ? v1 : v2).push_back(&e);
    }
    auto by_id = [](const Entry* a, const Entry* b) { return a->id < b->id; };
    std::sort(v1.begin(), v1.end(), by_id);
    std::sort(v2.begin(), v2.end(), by_id);
    h_.v1_repos = static_cast<u32>(v1.size());
    h_.v2_repos = static_cast<u32>(v2.size());
    put_table(kV1Hash, v1);
    put_table(kV2Hash, v2);
    for (auto [k, list] : {std::pair{kV1Sorted, &v1}, std::pair{kV2Sorted, &v2}}) {
        SectionRef r = begin_section();
        for (const Entry* e : *list) put32(e->offset);
        end_section(k, r);
    }
    return v1;
}

// Images -> v1 repos: (image string, repo rank) pairs; equal strings share
// one offset, so grouping is by offset.
void SnapshotImageBuilder::put_images(const std::vector<Entry*>& v1) {
    std::vector<std::pair<u32, u32>> pairs;
    for (u32 rank = 0; rank < v1.size(); ++rank) {
        const u32 rec = v1[rank]->offset;
        const u32 n = get32(rec + kV1ImageCount);
        for (u32 i = 0; i < n; ++i) {
            const u32 image = get32(rec + kV1Arrays + 4 * i);
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
    auto text = [&](u32 off) { return strings_.at(off - strings_base_); };
    std::sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) { return text(a.image) < text(b.image); });
    SectionRef repos = begin_section();
    for (const auto& p : pairs) put32(v1[p.second]->offset);
    end_section(kImageRepos, repos);
    SectionRef images = begin_section();
    for (const Group& g : groups) {
        put32(g.image);
        put32(g.count);
        put32(repos.off + 4 * g.first);
    }
    end_section(kImages, images);
}

// The per-file table, by path.
void SnapshotImageBuilder::put_files(const std::vector<SnapshotFileInput>& files, const std::vector<Entry>& entries) {
    SectionRef table = begin_section();
    for (std::size_t k = 0; k < by_path_.size(); ++k) {
        const std::size_t i = by_path_[k];
        const SnapshotFileInput& f = files[i];
        const Entry* e = entry_of_[i] == SIZE_MAX ? nullptr : &entries[entry_of_[i]];
        put32(path_pos_[k] + strings_base_);
        put32((e ? e->offset : 0) | (f.racy ? kRacyBit : 0) | (f.failed ? kFailedBit : 0));
        for (u64 v : {f.stamp.dev, f.stamp.ino, static_cast<u64>(f.stamp.size), static_cast<u64>(f.stamp.mtime_ns),
                      static_cast<u64>(f.stamp.ctime_ns), f.content_hash}) {
            out_.append(reinterpret_cast<const char*>(&v), 8);
        }
        ++h_.files;
        h_.failed_files += f.failed ? 1 : 0;
    }
    end_section(kFiles, table);
}

std::string SnapshotImageBuilder::build(const std::vector<SnapshotFileInput>& files, u64 generation,
                                        std::int64_t built_at_ns, std::vector<std::string>* warnings) {
    std::memcpy(h_.magic, kMagic, 8);
    h_.format = kSnapshotFormat;
    h_.header_size = sizeof(SnapshotHeader);
    h_.generation = generation;
    h_.built_at_ns = built_at_ns;
    std::size_t estimate = sizeof(SnapshotHeader) + 64;
    StringEstimate strings;
    for (const auto& f : files) {
        estimate += size_estimate(f);
        const StringEstimate e = string_estimate(f);
        strings.bytes += e.bytes;
        strings.refs += e.refs;
    }
    out_.reserve(std::min<std::size_t>(estimate, 0xFFFFFFFFu));
    strings_.reserve(3 * files.size(), strings.bytes);
    fixups_.reserve(strings.refs);

    std::vector<Entry> entries = collect_entries(files, warnings);
    put_records(files, entries);
    put_strings(files);
    put_images(put_name_tables(entries));
    put_files(files, entries);
    strings_.release();

    align8();
    check_size();
    h_.total_size = out_.size();
    std::memcpy(&out_[0], &h_, sizeof h_);
    seal_snapshot(out_);
    return std::move(out_);
}

}  // namespace

std::string build_snapshot(const std::vector<SnapshotFileInput>& files, std::uint64_t generation,
                           std::int64_t built_at_ns, std::vector<std::string>* warnings) {
    return SnapshotImageBuilder().build(files, generation, built_at_ns, warnings);
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
