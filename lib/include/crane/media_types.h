// The media types the registry serves and crane-publish reads, in one place.
#pragma once

#include <string_view>

namespace crane {

inline constexpr std::string_view kMediaManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaManifestV2 = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kMediaSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kMediaOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// OCI's counterpart (deprecated, still found): fetched from its urls too
inline constexpr std::string_view kMediaOciNondistributablePrefix = "application/vnd.oci.image.layer.nondistributable.";
inline constexpr std::string_view kMediaJson = "application/json";
inline constexpr std::string_view kMediaOctetStream = "application/octet-stream";

}  // namespace crane
