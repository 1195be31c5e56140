// Fuzz target `snapshot`: bytes as an index snapshot image, through
// Snapshot::from_bytes. The checksum refuses nearly every mutation, so the
// input is tried twice: as it is, and resealed (its checksum recomputed,
// crane::seal_snapshot), which takes it on to the header and section
// checks. An accepted image has every lookup and every view walked (the
// point: a corrupt offset inside a section must read as "none", never
// outside the image, which ASan sees), and its records are carried into a
// new build, which must give an image that opens. A delta is tried a third
// time, made to name the target's own base (fuzz_base) and resealed: its
// overlay's checks, then every merged lookup.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crane/snapshot.h"
#include "index/snapshot_format.h"  // snapshot_checksum, seal_snapshot

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_snapshot invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

// Keeps the walk linear in the image (ranges are clamped to the image, but
// nested walks multiply).
constexpr std::size_t kMax = 64;

std::size_t sink = 0;
void use(std::string_view s) { sink += s.size(); }

void walk_common(const crane::RepoView& v) {
    use(v.id());
    use(v.repository());
    use(v.url());
    use(v.url_path());
    use(v.source_path());
    sink += v.is_protected() + static_cast<std::size_t>(v.version());
}

void walk_v1(const crane::Snapshot& s, const crane::V1View& v) {
    walk_common(v);
    use(v.images_json());
    use(v.tags_json());
    const auto images = v.image_ids();
    for (std::size_t i = 0; i < std::min(images.size(), kMax); ++i) {
        use(images[i]);
        const auto holders = s.repos_with_image(images[i]);
        for (std::size_t k = 0; k < std::min(holders.size(), kMax); ++k) use(holders[k].id());
    }
    for (std::size_t i = 0; i < std::min(v.tag_count(), kMax); ++i) {
        const auto [tag, image] = v.tag(i);
        use(image);
        if (auto found = v.find_tag(tag)) use(*found);
    }
    (void)v.find_tag("latest");
}

void walk_amd64(const std::optional<crane::Amd64View>& a) {
    if (!a) return;
    use(a->tag);
    use(a->digest.view());
    sink += static_cast<std::size_t>(a->schema_version);
}

void walk_v2(const crane::V2View& v) {
    walk_common(v);
    sink += v.has_schema2_fields() + v.no_manifest_data() + v.has_tags();
    const std::string probes[] = {"latest", "sha256:" + std::string(64, 'a'), "sha256:" + std::string(64, '0'), ""};
    for (const auto& p : probes) {
        sink += v.in_schema2(p) + v.in_manifest_list(p) + v.in_oci_index(p) + v.in_oci_manifest(p);
        walk_amd64(v.find_amd64(p));
        walk_amd64(v.find_amd64_by_digest(p));
    }
    const auto tags = v.tags();
    for (std::size_t i = 0; i < std::min(tags.size(), kMax); ++i) {
        sink += v.in_schema2(tags[i]) + v.in_manifest_list(tags[i]);
        walk_amd64(v.find_amd64(tags[i]));
        for (const auto& r : v.find_referrers(tags[i])) use(r.digest());
    }
    for (const auto& p : probes) {
        const auto refs = v.find_referrers(p);
        for (std::size_t i = 0; i < std::min(refs.size(), kMax); ++i) {
            const crane::ReferrerView r = refs[i];
            use(r.media_type());
            use(r.digest());
            use(r.artifact_type());
            sink += static_cast<std::size_t>(r.size());
            for (std::size_t k = 0; k < std::min(r.annotation_count(), kMax); ++k) {
                use(r.annotation(k).first);
                use(r.annotation(k).second);
            }
        }
    }
}

void walk(const crane::Snapshot& s) {
    sink += s.generation() + static_cast<std::size_t>(s.built_at_ns()) + s.size_bytes();
    const crane::SnapshotSummary sum = s.summary();
    sink += sum.files + sum.failed_files + sum.v1_repos + sum.v2_repos;
    const auto v1 = s.v1_sorted();
    for (std::size_t i = 0; i < std::min(v1.size(), kMax); ++i) {
        walk_v1(s, v1[i]);
        if (auto found = s.find_v1(v1[i].id())) use(found->id());
    }
    const auto v2 = s.v2_sorted();
    for (std::size_t i = 0; i < std::min(v2.size(), kMax); ++i) {
        walk_v2(v2[i]);
        if (auto found = s.find_v2(v2[i].id())) use(found->id());
    }
    (void)s.find_v1("library/busybox");
    (void)s.find_v2("library/busybox");
    (void)s.repos_with_image("i1");
    for (std::size_t i = 0; i < std::min(s.file_count(), kMax); ++i) {
        const crane::SnapshotFileInfo f = s.file(i);
        use(f.path);
        if (f.v1) walk_v1(s, *f.v1);
        if (f.v2) walk_v2(*f.v2);
    }
    (void)s.file(s.file_count());
    if (s.base_image()) {  // a delta: its whole table, merged with the base's
        const auto all = s.files();
        for (std::size_t i = 0; i < std::min(all.size(), kMax); ++i) use(all[i].path);
    }
}

// The base a delta input is tried over: a few records of every kind.
std::shared_ptr<const crane::Snapshot> fuzz_base() {
    static const std::shared_ptr<const crane::Snapshot> base = [] {
        std::vector<crane::SnapshotFileInput> files;
        for (int i = 0; i < 6; ++i) {
            crane::SnapshotFileInput in;
            in.path = "/srv/crane/r" + std::to_string(i) + ".json";
            if (i % 2) {
                auto r = std::make_shared<crane::V1Repo>();
                r->id = i == 1 ? "busybox" : "v1-" + std::to_string(i);
                r->url = "http://cdn.example.com/" + r->id + "/";
                r->source_path = in.path;
                r->image_ids = {"a1b2c3", "i" + std::to_string(i)};
                in.parsed.v1 = r;
            } else {
                auto r = std::make_shared<crane::V2Repo>();
                r->id = i == 0 ? "library/busybox" : "v2-" + std::to_string(i);
                r->url = "http://cdn.example.com/" + r->id + "/";
                r->source_path = in.path;
                in.parsed.v2 = r;
            }
            files.push_back(std::move(in));
        }
        return *crane::Snapshot::from_bytes(crane::build_snapshot(files, 9, 9, nullptr));
    }();
    return base;
}

// A delta input (base generation not 0) made to name fuzz_base() and
// resealed, so that it reaches the overlay's checks and the merge.
void try_as_delta(std::string bytes) {
    using crane::snapshot_format::SnapshotHeader;
    if (bytes.size() < sizeof(SnapshotHeader)) return;
    SnapshotHeader h;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.base_generation == 0) return;
    const auto base = fuzz_base();
    h.base_generation = base->generation();
    h.base_checksum = base->checksum();
    std::memcpy(&bytes[0], &h, sizeof h);
    crane::seal_snapshot(bytes);
    auto delta = crane::Snapshot::from_bytes(std::move(bytes), base);
    if (!delta) {
        if (delta.error().empty()) fail("a delta refused without a reason", "");
        return;
    }
    walk(**delta);
}

// Every file's record carried into a new build: the builder must cope with
// whatever the views read, and its image must open.
void carry(const crane::Snapshot& s) {
    std::vector<crane::SnapshotFileInput> files;
    for (std::size_t i = 0; i < std::min(s.file_count(), kMax); ++i) {
        const crane::SnapshotFileInfo f = s.file(i);
        crane::SnapshotFileInput in;
        in.path = std::string(f.path);
        in.stamp = f.stamp;
        in.failed = f.failed;
        in.carried_v1 = f.v1;
        in.carried_v2 = f.v2;
        files.push_back(std::move(in));
    }
    std::vector<std::string> warnings;
    auto again = crane::Snapshot::from_bytes(crane::build_snapshot(files, 1, 2, &warnings));
    if (!again) fail("a rebuilt snapshot is refused", again.error());
    walk(**again);
    if ((*again)->file_count() != files.size()) fail("rebuilt file count", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    auto as_is = crane::Snapshot::from_bytes(bytes);
    if (as_is) {
        walk(**as_is);
        carry(**as_is);
    } else if (as_is.error().empty()) {
        fail("refused without a reason", "");
    }
    try_as_delta(bytes);
    crane::seal_snapshot(bytes);
    auto sealed = crane::Snapshot::from_bytes(std::move(bytes));
    if (!sealed) {
        if (sealed.error() == "checksum mismatch" && size >= sizeof(crane::snapshot_format::SnapshotHeader)) {
            fail("a sealed image fails its checksum", "");
        }
        return 0;
    }
    walk(**sealed);
    carry(**sealed);
    return 0;
}
