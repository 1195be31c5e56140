// The index snapshot: one immutable, position-independent image of a whole
// data dir's index (v1 and v2 repos by name, images -> repos, the sorted
// lists for _catalog and the admin pages, tags, referrers, OCI keys, and the
// builder's per-file table), in one file that every child maps read-only,
// so every child shares one copy in the page cache.
//
// Offsets instead of pointers, digests as 32 raw bytes, strings interned;
// lookups never allocate. A Snapshot is opened only after its header, its
// checksum and every section bound have been checked; views hand out
// string_views into the mapping and live as long as the Snapshot does (a
// request holds its shared_ptr from start to end).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crane/file_stamp.h"
#include "crane/metadata.h"
#include "crane/result.h"

namespace crane {

// Bumped on any layout change: a file of another format is never mapped.
constexpr std::uint32_t kSnapshotFormat = 2;  // 2: deltas (an overlay over a base image)

class Snapshot;

// A digest in its text form ("sha256:<64 hex>" and other algorithms), given
// out without allocating: a sha256 digest stored raw is spelled out in a
// buffer held by value; any other digest is a view into the snapshot (the
// grammar puts no bound on its length).
class DigestText {
public:
    DigestText() = default;
    DigestText(const DigestText& o) { *this = o; }
    DigestText& operator=(const DigestText& o) {
        if (this == &o) return *this;
        buf_ = o.buf_;
        view_ = o.in_buffer() ? std::string_view(buf_.data(), o.view_.size()) : o.view_;
        return *this;
    }

    std::string_view view() const { return view_; }
    // a view that outlives this object only as long as the snapshot does
    void refer(std::string_view s) { view_ = s; }
    // "sha256:" and the hex of 32 raw bytes, in the buffer
    void spell_sha256(const unsigned char* raw);

private:
    bool in_buffer() const { return view_.data() == buf_.data() && !view_.empty(); }
    std::array<char, 71> buf_{};
    std::string_view view_;
};

struct Amd64View {
    std::string_view tag;
    DigestText digest;
    int schema_version = 0;  // 1 or 2
};

class ReferrerView {
public:
    std::string_view media_type() const;
    std::string_view digest() const;
    std::int64_t size() const;
    std::string_view artifact_type() const;  // empty when absent
    std::size_t annotation_count() const;
    std::pair<std::string_view, std::string_view> annotation(std::size_t i) const;  // sorted by key

    ReferrerView(const Snapshot* s, std::uint32_t off) : s_(s), off_(off) {}

private:
    const Snapshot* s_;
    std::uint32_t off_;
};

// A random-access range of values made on demand (views or string_views)
// from an array of 32-bit entries in the snapshot.
template <typename T>
class SnapRange {
public:
    using Make = T (*)(const Snapshot*, std::uint32_t base, std::size_t i);
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = T;
        iterator() = default;
        iterator(const SnapRange* r, std::size_t i) : r_(r), i_(i) {}
        T operator*() const { return (*r_)[i_]; }
        T operator[](difference_type n) const { return (*r_)[i_ + n]; }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        iterator& operator--() { --i_; return *this; }
        iterator& operator+=(difference_type n) { i_ += n; return *this; }
        iterator& operator-=(difference_type n) { i_ -= n; return *this; }
        iterator operator+(difference_type n) const { return {r_, i_ + n}; }
        iterator operator-(difference_type n) const { return {r_, i_ - n}; }
        difference_type operator-(const iterator& o) const {
            return static_cast<difference_type>(i_) - static_cast<difference_type>(o.i_);
        }
        bool operator==(const iterator& o) const { return i_ == o.i_; }
        bool operator!=(const iterator& o) const { return i_ != o.i_; }
        bool operator<(const iterator& o) const { return i_ < o.i_; }
    private:
        const SnapRange* r_ = nullptr;
        std::size_t i_ = 0;
    };

    SnapRange() = default;
    SnapRange(const Snapshot* s, std::uint32_t base, std::size_t n, Make make) : s_(s), base_(base), n_(n), make_(make) {}
    std::size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    T operator[](std::size_t i) const { return make_(s_, base_, i); }
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, n_}; }

private:
    const Snapshot* s_ = nullptr;
    std::uint32_t base_ = 0;
    std::size_t n_ = 0;
    Make make_ = nullptr;
};

// What v1 and v2 repos have in common (RepoCommon's fields).
class RepoView {
public:
    std::string_view id() const;
    std::string_view repository() const;
    std::string_view url() const;
    std::string_view url_path() const;
    bool is_protected() const;
    int version() const;
    std::string_view source_path() const;

    RepoView(const Snapshot* s, std::uint32_t off) : s_(s), off_(off) {}
    std::uint32_t offset() const { return off_; }
    const Snapshot* snapshot() const { return s_; }  // the builder re-encodes carried records from it

protected:
    const Snapshot* s_;
    std::uint32_t off_;  // the record's offset in the snapshot
};

class V1View : public RepoView {
public:
    using RepoView::RepoView;
    SnapRange<std::string_view> image_ids() const;  // file order
    std::size_t tag_count() const;
    std::pair<std::string_view, std::string_view> tag(std::size_t i) const;  // sorted by tag: (tag, image id)
    std::optional<std::string_view> find_tag(std::string_view tag) const;
    std::string_view images_json() const;  // the "images" list as Crane sent it
    std::string_view tags_json() const;    // the "tags" object as Crane sent it
};

class V2View : public RepoView {
public:
    using RepoView::RepoView;
    bool has_schema2_fields() const;
    // schema2_data, manifest_list_data, oci_index_data and oci_manifest_data all empty
    bool no_manifest_data() const;
    bool in_schema2(std::string_view ref) const;
    bool in_manifest_list(std::string_view ref) const;
    bool in_oci_index(std::string_view ref) const;
    bool in_oci_manifest(std::string_view ref) const;
    std::optional<Amd64View> find_amd64(std::string_view tag) const;
    // the first amd64 entry (in tag order) whose digest is `digest`
    std::optional<Amd64View> find_amd64_by_digest(std::string_view digest) const;
    bool has_tags() const;
    SnapRange<std::string_view> tags() const;  // sorted, unique
    SnapRange<ReferrerView> find_referrers(std::string_view digest) const;  // empty when none
};

// One metadata file as the builder last saw it.
struct SnapshotFileInfo {
    std::string_view path;
    FileStamp stamp;
    std::uint64_t content_hash = 0;
    bool racy = false;    // compared by content on the next scan (see file_stamp.h)
    bool failed = false;  // its last parse failed; `v1`/`v2` is its last good content, if any
    std::optional<V1View> v1;  // the record this file contributes (winner or not)
    std::optional<V2View> v2;
};

// Input of one file to build_snapshot: its state and its content, either
// freshly parsed or carried over from a record of an earlier snapshot.
struct SnapshotFileInput {
    std::string path;
    FileStamp stamp;
    std::uint64_t content_hash = 0;
    bool racy = false;
    bool failed = false;
    ParsedRepo parsed;                 // fresh content, or
    std::optional<V1View> carried_v1;  // content carried from an earlier snapshot
    std::optional<V2View> carried_v2;  // (that snapshot stays alive during the build)
};

struct SnapshotSummary {
    std::size_t files = 0, failed_files = 0, v1_repos = 0, v2_repos = 0;
};

struct SnapshotOverlay;  // a delta's merge with its base (snapshot_reader.cpp)

// A snapshot is a full image, or a delta: a small image of the changed
// files (and of every file competing with them for a name or an image)
// over a full image, its base, whose lookups it answers for the keys its
// overlay names and leaves to the base for the rest. Every lookup below
// answers for the whole, merged: a caller never sees which.
class Snapshot {
public:
    // Maps a snapshot file read-only after checking it; the error says why
    // a file is refused (missing, truncated, wrong magic or format, bad
    // checksum, a section out of bounds). A delta's base is
    // base_path(path, its generation), or `known` when that is the base or
    // another delta over it (a reader that moves from one delta to the
    // next maps the base once).
    static Result<std::shared_ptr<const Snapshot>> open(const std::string& path,
                                                        const std::shared_ptr<const Snapshot>& known = nullptr);
    // The same over bytes in memory (tests, fuzzing, the in-process store);
    // a delta's base must be given.
    static Result<std::shared_ptr<const Snapshot>> from_bytes(std::string bytes,
                                                              std::shared_ptr<const Snapshot> base = nullptr);
    // Where the base of the deltas published at `path` lives: PATH.base.GENERATION.
    static std::string base_path(const std::string& path, std::uint64_t base_generation);
    // A valid snapshot with nothing in it.
    static std::shared_ptr<const Snapshot> empty();

    ~Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    std::uint64_t generation() const;
    std::int64_t built_at_ns() const;  // wall clock, when it was built
    std::size_t size_bytes() const;    // of this image alone
    std::size_t mapped_bytes() const;  // of this image and its base
    std::uint64_t checksum() const;
    SnapshotSummary summary() const;   // of the whole (a delta's merged with its base)

    // A delta's base (a full image); null for a full image.
    const std::shared_ptr<const Snapshot>& base_image() const { return base_; }

    std::optional<V1View> find_v1(std::string_view id) const;
    std::optional<V2View> find_v2(std::string_view name) const;
    // v1 repos holding an image, sorted by repo id; empty when none
    SnapRange<V1View> repos_with_image(std::string_view image_id) const;
    // every repo (the winners), sorted by id
    SnapRange<V1View> v1_sorted() const;
    SnapRange<V2View> v2_sorted() const;

    // the builder's per-file table of this image alone, sorted by path
    // (a delta's: the files it holds; files() is the whole table)
    std::size_t file_count() const;
    SnapshotFileInfo file(std::size_t i) const;
    // the whole table, sorted by path: a delta's files over its base's,
    // without the ones it removes
    std::vector<SnapshotFileInfo> files() const;
    // where `path` is in this image's own table
    std::optional<std::size_t> find_file(std::string_view path) const;
    // a delta's files removed from its base's table, sorted; none for a full image
    std::vector<std::string_view> removed_paths() const;
    // whether the whole table has a file under `dir` (a base's file a
    // delta removes may count: "perhaps")
    bool has_files_under(std::string_view dir) const;
    // `path`'s entry in the whole table, if it has one
    std::optional<SnapshotFileInfo> find_any_file(std::string_view path) const;

    // raw access for the views (bounds were checked when the snapshot was opened)
    const unsigned char* base() const { return data_; }

private:
    Snapshot() = default;
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
    std::string owned_;        // from_bytes
    void* mapping_ = nullptr;  // open: munmap on destruction
    std::size_t mapping_size_ = 0;
    std::shared_ptr<const Snapshot> base_;            // a delta's base
    std::unique_ptr<const SnapshotOverlay> overlay_;  // a delta's merge with it
    friend struct SnapshotAccess;  // the implementation's private helpers
};

// Encodes a snapshot from every file of a data dir (any order; the table is
// sorted by path). When two records share an id within a namespace, the one
// whose source path sorts last is looked up; each loser adds a warning in
// the words Index::build used ("v2 repository 'x' is defined in both A and
// B; using B"). Throws std::length_error when the result would not fit the
// 32-bit offsets (4 GiB).
std::string build_snapshot(const std::vector<SnapshotFileInput>& files, std::uint64_t generation,
                           std::int64_t built_at_ns, std::vector<std::string>* warnings);

// The keys a delta answers for (any order, duplicates allowed): the v1 and
// v2 names and v1 image ids whose answers it holds, and the base's files
// that are gone.
struct DeltaKeys {
    std::vector<std::string> v1_names, v2_names, images, removed_paths;
};

// Makes a delta of `image` (a build_snapshot of the delta's files) over the
// full image `base`: the overlay of `keys` appended, the header naming the
// base, sealed again.
std::string make_delta(std::string image, const Snapshot& base, DeltaKeys keys);

// A one-repo snapshot, for tests of code that takes views.
std::shared_ptr<const Snapshot> snapshot_of(const ParsedRepo& repo);

}  // namespace crane
