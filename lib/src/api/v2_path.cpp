// The /v2/ path split (see v2_path.h).
#include "api/v2_path.h"

namespace crane {

namespace {

bool kind_of(std::string_view part, V2Kind& kind) {
    if (part == "manifests") kind = V2Kind::Manifests;
    else if (part == "blobs") kind = V2Kind::Blobs;
    else if (part == "tags") kind = V2Kind::Tags;
    else if (part == "referrers") kind = V2Kind::Referrers;
    else return false;
    return true;
}

}  // namespace

std::optional<V2Path> split_v2_path(std::string_view relative) {
    // one pass from the right over the components, no allocation
    std::optional<V2Path> found;
    std::size_t end = relative.size();
    bool has_after = false;  // a component exists right of the current one
    while (true) {
        std::size_t slash = end == 0 ? std::string_view::npos : relative.rfind('/', end - 1);
        std::size_t begin = slash == std::string_view::npos ? 0 : slash + 1;
        std::string_view part = relative.substr(begin, end - begin);
        if (part.empty() || part == "." || part == "..") return std::nullopt;
        V2Kind kind;
        if (!found && has_after && begin > 0 && kind_of(part, kind)) {
            found = V2Path{relative.substr(0, begin - 1), relative.substr(begin),
                           relative.substr(end + 1), kind};
        }
        if (slash == std::string_view::npos) break;
        has_after = true;
        end = slash;
    }
    return found;
}

}  // namespace crane
