// A delta's overlay: the keys it answers for, appended to an image of its
// files (see snapshot.h, snapshot_format.h; docs/design.md "Deltas").
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "crane/snapshot.h"
#include "index/snapshot_access.h"
#include "index/snapshot_format.h"

namespace crane {

using namespace snapshot_format;  // the format's names are this file's words

namespace {

void put32(std::string& out, u32 v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void align8(std::string& out) { out.append((8 - out.size() % 8) % 8, '\0'); }

}  // namespace

std::string make_delta(std::string image, const Snapshot& base, DeltaKeys keys) {
    if (image.size() < sizeof(SnapshotHeader)) throw std::invalid_argument("make_delta: not an image");
    if (base.base_image()) throw std::invalid_argument("make_delta: the base is itself a delta");
    if (base.generation() == 0) throw std::invalid_argument("make_delta: a base of generation 0 (none)");
    SnapshotHeader h;
    std::memcpy(&h, image.data(), sizeof h);
    std::vector<std::string>* lists[] = {&keys.v1_names, &keys.v2_names, &keys.images, &keys.removed_paths};
    static_assert(sizeof(lists) / sizeof(lists[0]) == sizeof(kOverlayKeys) / sizeof(kOverlayKeys[0]),
                  "one key list per overlay section");
    // the strings, each list's once (a name may be a v1 and a v2 key)
    align8(image);
    const auto strings_at = static_cast<u32>(image.size());
    std::vector<std::vector<u32>> offsets(std::size(lists));
    for (std::size_t k = 0; k < std::size(lists); ++k) {
        auto& list = *lists[k];
        std::sort(list.begin(), list.end());
        list.erase(std::unique(list.begin(), list.end()), list.end());
        for (const auto& key : list) {
            offsets[k].push_back(static_cast<u32>(image.size()));
            put32(image, static_cast<u32>(key.size()));
            image.append(key);
            image.append((4 - key.size() % 4) % 4, '\0');
            if (image.size() > kMaxImageBytes) throw std::length_error("snapshot larger than 4 GiB");
        }
    }
    h.sections[kOverlayStrings] = SectionRef{strings_at, static_cast<u32>(image.size() - strings_at)};
    for (std::size_t k = 0; k < std::size(lists); ++k) {
        align8(image);
        const auto at = static_cast<u32>(image.size());
        for (u32 off : offsets[k]) put32(image, off);
        h.sections[kOverlayKeys[k]] = SectionRef{at, static_cast<u32>(image.size() - at)};
    }
    align8(image);
    if (image.size() > kMaxImageBytes) throw std::length_error("snapshot larger than 4 GiB");
    h.total_size = image.size();
    h.base_generation = base.generation();
    h.base_checksum = base.checksum();
    std::memcpy(&image[0], &h, sizeof h);
    seal_snapshot(image);
    return image;
}

}  // namespace crane
