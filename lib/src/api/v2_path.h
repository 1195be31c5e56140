// Splitting a /v2/ request path into the repository NAME and the file path:
// the rightmost component equal to tags, manifests, blobs or referrers that
// has something after it ends NAME.
#pragma once

#include <optional>
#include <string_view>

namespace crane {

enum class V2Kind { Tags, Manifests, Blobs, Referrers };

struct V2Path {
    std::string_view name;  // "library/busybox"
    std::string_view path;  // "manifests/latest" (the kind's component included)
    std::string_view rest;  // "latest" (after the kind's component)
    V2Kind kind;
};

// `relative` is the path after "/v2/". nullopt: no kind component, an empty
// NAME, or an unsafe component (empty, ".", "..") anywhere.
std::optional<V2Path> split_v2_path(std::string_view relative);

}  // namespace crane
