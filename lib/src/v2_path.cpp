// The /v2/ path split (see v2_path.h).
#include "crane/v2_path.h"

#include <vector>

namespace crane {

std::optional<V2Path> split_v2_path(std::string_view relative) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        auto slash = relative.find('/', start);
        std::string_view part = relative.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (part.empty() || part == "." || part == "..") return std::nullopt;
        parts.push_back(part);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    for (std::size_t i = parts.size() - 1; i-- > 1;) {
        V2Kind kind;
        if (parts[i] == "tags") kind = V2Kind::Tags;
        else if (parts[i] == "manifests") kind = V2Kind::Manifests;
        else if (parts[i] == "blobs") kind = V2Kind::Blobs;
        else continue;
        std::size_t name_end = static_cast<std::size_t>(parts[i].data() - relative.data()) - 1;
        std::size_t rest_start = static_cast<std::size_t>(parts[i + 1].data() - relative.data());
        return V2Path{relative.substr(0, name_end), relative.substr(name_end + 1),
                      relative.substr(rest_start), kind};
    }
    return std::nullopt;
}

}  // namespace crane
