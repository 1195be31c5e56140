// Bounded reads of a snapshot image, for the reader's views and for the
// builder re-encoding records carried from an earlier snapshot: every
// access is checked against the image's size (outside reads as 0, "none").
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

#include "crane/result.h"
#include "crane/snapshot.h"
#include "index/snapshot_format.h"

namespace crane {

struct SnapshotAccess {
    using u8 = snapshot_format::u8;
    using u32 = snapshot_format::u32;
    using u64 = snapshot_format::u64;

    static u32 u32at(const Snapshot* s, u64 off) {
        if (off + 4 > s->size_) return 0;
        u32 v;
        std::memcpy(&v, s->data_ + off, 4);
        return v;
    }
    static u64 u64at(const Snapshot* s, u64 off) {
        if (off + 8 > s->size_) return 0;
        return snapshot_format::load64(s->data_ + off);
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
    // the i-th of an array of u32 entries at base
    static u32 u32_entry(const Snapshot* s, u64 base, u64 i) { return u32at(s, base + 4 * i); }
    // how many u32-sized (or `unit`-sized) entries from base fit in the image
    static std::size_t clamp(const Snapshot* s, u64 base, u64 n, u64 unit) {
        if (base > s->size_) return 0;
        return static_cast<std::size_t>(std::min<u64>(n, (s->size_ - base) / unit));
    }
    static snapshot_format::SnapshotHeader header(const Snapshot* s) {
        snapshot_format::SnapshotHeader h;
        std::memcpy(&h, s->data_, sizeof h);
        return h;
    }
    static snapshot_format::SectionRef section(const Snapshot* s, snapshot_format::Section k) {
        const u64 at = offsetof(snapshot_format::SnapshotHeader, sections) + sizeof(snapshot_format::SectionRef) * k;
        return snapshot_format::SectionRef{u32at(s, at), u32at(s, at + 4)};
    }

    // The header, checksum and section bounds of a new Snapshot's bytes; a
    // delta's overlay is checked too (its keys inside it and sorted).
    static Result<std::shared_ptr<const Snapshot>> validate(std::shared_ptr<Snapshot> s);
    // A delta's base: the full image its header names, then the merge
    // worked out (snapshot_reader.cpp). `base` null: refused, a delta alone
    // answers nothing.
    static Result<std::shared_ptr<const Snapshot>> attach(std::shared_ptr<Snapshot> s,
                                                          std::shared_ptr<const Snapshot> base);
    static bool is_delta(const Snapshot* s) { return u64at(s, offsetof(snapshot_format::SnapshotHeader, base_generation)) != 0; }
    static const SnapshotOverlay& overlay(const Snapshot* s) { return *s->overlay_; }
    static const Snapshot& base(const Snapshot* s) { return *s->base_; }
};

namespace snapshot_format {

// Where each array of a v2 record is; counts clamped to the image (a
// corrupt record has no arrays at all).
struct V2Layout {
    u32 at[kV2ArrayCount] = {};
    u32 n[kV2ArrayCount] = {};
    u32 end = 0;  // where the arrays end (the referrers' descriptors follow)
};
V2Layout v2_layout(const Snapshot* s, u32 off);

// The referrer descriptors of a list: n u32 descriptor offsets at base.
SnapRange<ReferrerView> referrers_at(const Snapshot* s, u32 base, u32 n);

}  // namespace snapshot_format

}  // namespace crane
