// The index snapshot's bytes (format 2): the one place that knows them. The
// reader (snapshot_reader.cpp) and the builder (snapshot_builder.cpp) both
// name every field and stride from here; the static_asserts tie the named
// offsets to the structs that spell each entry out.
//
// Little-endian; every offset is a u32 from the start of the image; 0 means
// "none" (the header sits there) and, for a string, the empty string.
// Sections start 8-aligned, records and strings are 4-aligned, so every
// field is naturally aligned.
//
//   header (SnapshotHeader, 192 bytes): magic, format, header size, total size,
//     generation, built_at_ns, checksum (snapshot_checksum: the whole image,
//     this field as 0), the summary (files, failed files, v1 and v2 repos;
//     of the image alone), the base's generation and checksum (a delta; 0
//     in a full image), then one SectionRef per Section, in this order:
//   records      every record (v1 and v2, winners and losers), see below
//   strings      interned strings: u32 length, bytes, zero padding to 4
//   v1 hash      open addressing, u32 record offsets (0 = empty slot),
//   v2 hash      a power of two slots, probed linearly from hash_id(id)
//   v1 sorted    u32 record offsets of the winners, by id
//   v2 sorted
//   images       ImageEntry, by image id
//   image repos  u32 record offsets (each image's v1 repos, by id)
//   files        FileEntry, by path (the record offset's low bits hold
//                racy and failed: records are 4-aligned)
//   overlay strings   a delta's keys (u32 length, bytes, zero padding to 4)
//   overlay v1 names  u32 offsets of overlay strings, sorted by their bytes,
//   overlay v2 names  no two equal: the keys a delta answers for in place
//   overlay images    of its base (an absent key there means "none"), and
//   overlay removed   the base's files it removes from the table
//
// A delta (base_generation != 0) is an image of its own, built from the
// changed files and every file that competes with them for a key (see
// docs/design.md "Deltas"); a reader looks a key up in the delta when the
// delta's overlay names it, and in the base otherwise. Its five overlay
// sections are empty in a full image.
//
// A record starts with CommonRecord: kind, flags, version, then the strings
// id, repository, url, url_path, source_path (url_path and repository may
// be a slice of url instead: start << 16 | length within url).
//   v1: V1Fixed (images_json, tags_json, image count, tag count); the image
//       ids (u32 strings, file order); the tags (V1Tag, by tag).
//   v2: a u32 mask of the non-empty arrays (V2Array), one u32 count per set
//       bit, then those arrays in V2Array order: schema2 sha256 digests (32
//       raw bytes each, sorted), schema2 other refs (u32 strings, sorted by
//       bytes), the same two for manifest_list_data, oci_index_data and
//       oci_manifest_data; amd64 (Amd64Entry, by tag); tags (u32 strings,
//       sorted); referrer lists (ReferrerListEntry, by subject). The descriptor
//       offset arrays and the descriptors (DescriptorEntry, then `annotations`
//       AnnotationEntry pairs, sorted by key) follow the arrays inside the record.
//
// The checksum and the section bounds are checked once, when a snapshot is
// opened; every offset read from inside a section is still checked against
// the image's size when it is followed (a bad one reads as "none"), so a
// corrupt image that passed the checksum cannot make a lookup read outside
// the image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "crane/snapshot.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the snapshot format is little-endian");

namespace crane {

namespace snapshot_format {

using u8 = std::uint8_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using i64 = std::int64_t;

constexpr char kMagic[8] = {'C', 'R', 'N', 'S', 'N', 'A', 'P', '\0'};

// the largest image (and string table) the 32-bit offsets may address
constexpr u64 kMaxImageBytes = 0xFFFFFFF0u;

// ---- the header and its sections ----

enum Section : u32 {
    kRecords, kStrings, kV1Hash, kV2Hash, kV1Sorted, kV2Sorted, kImages, kImageRepos, kFiles,
    // a delta's overlay (empty in a full image): its keys' strings, then the
    // keys it answers for, each a sorted array of u32 string offsets
    kOverlayStrings, kOverlayV1, kOverlayV2, kOverlayImages, kOverlayRemoved,
    kSectionCount
};
constexpr const char* kSectionNames[kSectionCount] = {
    "records",   "strings", "v1 hash",     "v2 hash", "v1 sorted", "v2 sorted", "images", "image repos", "files",
    "overlay strings", "overlay v1 names", "overlay v2 names", "overlay images", "overlay removed paths"};
constexpr Section kOverlayKeys[] = {kOverlayV1, kOverlayV2, kOverlayImages, kOverlayRemoved};

struct SectionRef {
    u32 off = 0, len = 0;
};

struct SnapshotHeader {
    char magic[8];
    u32 format;
    u32 header_size;
    u64 total_size;
    u64 generation;
    i64 built_at_ns;
    u64 checksum;
    u32 files, failed_files, v1_repos, v2_repos;
    // a delta: the generation and checksum of the full image it overlays
    // (both 0 in a full image)
    u64 base_generation;
    u64 base_checksum;
    SectionRef sections[kSectionCount];
};
static_assert(offsetof(SnapshotHeader, format) == 8 && offsetof(SnapshotHeader, total_size) == 16, "header layout");
static_assert(offsetof(SnapshotHeader, checksum) == 40 && offsetof(SnapshotHeader, files) == 48, "header layout");
static_assert(offsetof(SnapshotHeader, base_generation) == 64 && offsetof(SnapshotHeader, base_checksum) == 72,
              "header layout");
static_assert(offsetof(SnapshotHeader, sections) == 80 && sizeof(SectionRef) == 8, "header layout");
static_assert(sizeof(SnapshotHeader) == 192, "header layout");
constexpr std::size_t kChecksumAt = offsetof(SnapshotHeader, checksum);

// an images entry: the image id string and where its v1 repos are listed
struct ImageEntry {
    u32 image;   // string
    u32 count;   // of record offsets
    u32 repos;   // offset of the first, in the image repos section
};
static_assert(sizeof(ImageEntry) == 12, "image entry layout");
constexpr u32 kImageEntryId = offsetof(ImageEntry, image), kImageEntryCount = offsetof(ImageEntry, count),
              kImageEntryRepos = offsetof(ImageEntry, repos), kImageEntrySize = sizeof(ImageEntry);

// a files entry: one metadata file as the builder last saw it
struct FileEntry {
    u32 path;    // string
    u32 record;  // 0: none; | kRacyBit | kFailedBit
    u64 dev, ino;
    i64 size, mtime_ns, ctime_ns;
    u64 content_hash;
};
constexpr u32 kFilePath = offsetof(FileEntry, path), kFileRecord = offsetof(FileEntry, record),
              kFileDev = offsetof(FileEntry, dev), kFileIno = offsetof(FileEntry, ino),
              kFileSize = offsetof(FileEntry, size), kFileMtime = offsetof(FileEntry, mtime_ns),
              kFileCtime = offsetof(FileEntry, ctime_ns), kFileHash = offsetof(FileEntry, content_hash),
              kFileEntrySize = sizeof(FileEntry);
static_assert(kFileEntrySize == 56, "file entry layout");
static_assert(kFileRecord + 4 == kFileDev && kFileHash + 8 == kFileEntrySize, "file entry fields are contiguous");
constexpr u32 kRacyBit = 1, kFailedBit = 2;  // the low bits of a file entry's record offset

// entry size of each section (its length is a multiple of it)
constexpr u32 kSectionUnit[kSectionCount] = {4, 4, 4, 4, 4, 4, kImageEntrySize, 4, kFileEntrySize, 4, 4, 4, 4, 4};

// ---- records ----

struct CommonRecord {
    u8 kind, flags, version, zero;
    u32 id, repository, url, url_path, source_path;  // strings (or url slices, see the flags)
};
static_assert(sizeof(CommonRecord) == 24, "record layout");
constexpr u32 kRecKind = offsetof(CommonRecord, kind), kRecFlags = offsetof(CommonRecord, flags),
              kRecVersion = offsetof(CommonRecord, version), kRecId = offsetof(CommonRecord, id),
              kRecRepository = offsetof(CommonRecord, repository), kRecUrl = offsetof(CommonRecord, url),
              kRecUrlPath = offsetof(CommonRecord, url_path), kRecSourcePath = offsetof(CommonRecord, source_path),
              kCommonSize = sizeof(CommonRecord);

constexpr u8 kKindV1 = 1, kKindV2 = 2;
// the flags byte
constexpr u8 kProtected = 1, kHasSchema2 = 2, kHasTags = 4, kUrlPathSlice = 8, kRepositorySlice = 16;

// a v1 record's fixed part, after the common one; the image ids and the tags follow
struct V1Fixed {
    CommonRecord common;
    u32 images_json, tags_json;  // strings
    u32 image_count, tag_count;
};
static_assert(sizeof(V1Fixed) == kCommonSize + 16, "v1 record layout");
constexpr u32 kV1ImagesJson = offsetof(V1Fixed, images_json), kV1TagsJson = offsetof(V1Fixed, tags_json),
              kV1ImageCount = offsetof(V1Fixed, image_count), kV1TagCount = offsetof(V1Fixed, tag_count),
              kV1Arrays = sizeof(V1Fixed);  // where the image ids start
static_assert(kV1ImagesJson == kCommonSize && kV1TagCount + 4 == kV1Arrays, "v1 record fields are contiguous");

struct V1Tag {
    u32 tag, image;  // strings
};
constexpr u32 kV1TagImage = offsetof(V1Tag, image), kV1TagSize = sizeof(V1Tag);
static_assert(kV1TagSize == 8, "v1 tag layout");

// a v2 record: the mask after the common part, then the counts
constexpr u32 kV2Mask = kCommonSize, kV2Counts = kCommonSize + 4;

// v2 record arrays, in order, and their element sizes
enum V2Array : u32 { kS2Dig, kS2Str, kMlDig, kMlStr, kOiDig, kOiStr, kOmDig, kOmStr, kAmd64, kTags, kReferrers, kV2ArrayCount };
constexpr u32 kRawDigestSize = 32;  // a sha256 digest, raw

struct Amd64Entry {
    u32 tag;              // string | kSchema2Bit | kRawDigest
    u8 digest[32];        // the raw sha256 (kRawDigest), or a u32 string and zeros
};
static_assert(sizeof(Amd64Entry) == 36, "amd64 entry layout");
constexpr u32 kAmd64Digest = offsetof(Amd64Entry, digest), kAmd64EntrySize = sizeof(Amd64Entry);
static_assert(kAmd64Digest + kRawDigestSize == kAmd64EntrySize, "amd64 entry fields are contiguous");
// the low bits of an amd64 entry's tag offset (strings are 4-aligned)
constexpr u32 kSchema2Bit = 1, kRawDigest = 2, kLowBits = 3;

struct ReferrerListEntry {
    u32 subject;      // string
    u32 count;        // of descriptor offsets
    u32 descriptors;  // offset of `count` u32 descriptor offsets
};
static_assert(sizeof(ReferrerListEntry) == 12, "referrer list layout");
constexpr u32 kListSubject = offsetof(ReferrerListEntry, subject), kListCount = offsetof(ReferrerListEntry, count),
              kListDescriptors = offsetof(ReferrerListEntry, descriptors), kListSize = sizeof(ReferrerListEntry);

// a referrer descriptor's fixed part; `annotations` AnnotationEntry pairs follow
struct DescriptorEntry {
    u32 media_type, digest;  // strings
    u32 size_low, size_high;
    u32 artifact_type;  // string
    u32 annotations;
};
static_assert(sizeof(DescriptorEntry) == 24, "descriptor layout");
constexpr u32 kDescMediaType = offsetof(DescriptorEntry, media_type), kDescDigest = offsetof(DescriptorEntry, digest),
              kDescSizeLow = offsetof(DescriptorEntry, size_low), kDescSizeHigh = offsetof(DescriptorEntry, size_high),
              kDescArtifactType = offsetof(DescriptorEntry, artifact_type),
              kDescAnnotationCount = offsetof(DescriptorEntry, annotations), kDescriptorSize = sizeof(DescriptorEntry);

struct AnnotationEntry {
    u32 key, value;  // strings
};
constexpr u32 kAnnotationValue = offsetof(AnnotationEntry, value), kAnnotationSize = sizeof(AnnotationEntry);
static_assert(kAnnotationSize == 8, "annotation layout");

constexpr u32 kV2Unit[kV2ArrayCount] = {kRawDigestSize, 4, kRawDigestSize, 4, kRawDigestSize, 4, kRawDigestSize, 4,
                                        kAmd64EntrySize, 4, kListSize};

// ---- hashing and digests ----

inline u64 load64(const unsigned char* p) {
    u64 v;
    std::memcpy(&v, p, 8);
    return v;
}

// A fast 64-bit hash of n bytes (the checksum and the name tables).
u64 hash_words(const unsigned char* p, std::size_t n, u64 seed);

// The hash of ids (the name tables) and of the builder's intern table.
inline u32 hash_id(std::string_view s) {
    return static_cast<u32>(hash_words(reinterpret_cast<const unsigned char*>(s.data()), s.size(), 7));
}

// "sha256:" + 64 lowercase hex: the digests stored as 32 raw bytes (their
// byte order is their text order, so sorted text stays sorted raw).
// Decodes one into raw[32]; false for anything else.
bool decode_sha256(std::string_view s, unsigned char* raw);

}  // namespace snapshot_format

// The checksum the header holds: of the whole image, with the header's
// checksum field read as zero. The fuzz target re-seals mutated images
// (seal_snapshot) so that it reaches the structure checks.
std::uint64_t snapshot_checksum(const unsigned char* data, std::size_t size);
// Writes snapshot_checksum into the header of `bytes` (no-op when shorter
// than a header).
void seal_snapshot(std::string& bytes);

}  // namespace crane
