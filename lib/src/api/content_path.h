// Serve-content mode: where a requested file lives under a content dir, and
// how long clients may cache it. Layout (Crane's, [compat]):
//   v1: content_dir_v1/REPOSITORY/IMAGE/FILE  (relative path "IMAGE/FILE")
//   v2: content_dir_v2/REPOSITORY/PATH        (PATH after manifest negotiation)
// REPOSITORY is the metadata's "repository" field.
//
// Safety is purely lexical: nothing here touches the file system. Symlinks
// are NOT checked: the publisher's symlinks inside the content dirs are
// trusted and followed when the file is opened. The request-derived parts can
// therefore only name entries below content_dir/REPOSITORY, never climb out
// of it by themselves.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crane {

// content_dir + "/" + repository + "/" + relative_path, or nullopt when the
// result could name anything else.
//
// content_dir is configuration and trusted: it must be non-empty and free of
// NUL; trailing slashes are dropped ("/srv/v2/" and "/srv/v2" join the same,
// "/" joins as "/repo/..."). It is not otherwise inspected.
//
// repository and relative_path may each contain inner '/' (Pulp repo ids have
// none, but a slash in one is harmless as long as every segment is safe).
// Both must be non-empty, and every '/'-separated segment of each must be:
//   - non-empty (so no leading '/', i.e. no absolute part, no trailing '/',
//     no "//"),
//   - neither "." nor "..",
//   - free of NUL, backslash, ASCII control characters (0x01-0x1F, 0x7F) and
//     '%' (paths reach us already percent-decoded once; a '%' left over means
//     double encoding such as %2e%2e or %2f, which we refuse outright),
//   - at most 255 bytes (NAME_MAX).
// The joined path must be at most 4095 bytes (PATH_MAX minus its NUL).
// Bytes >= 0x80 (UTF-8 names) are allowed.
std::optional<std::string> content_file_path(std::string_view content_dir,
                                             std::string_view repository,
                                             std::string_view relative_path);

// Cache-Control for a file served from a content dir.
//   - The last segment of relative_path is "sha256:" + 64 lowercase hex
//     (blobs/DIGEST, manifests/2/DIGEST, manifests/list/DIGEST): its content
//     can never change -> "public, max-age=31536000, immutable".
//   - Otherwise (tag-addressed manifests, tags/list, v1 files) the file may
//     change at the next publish -> "public, max-age=N", N the data dir
//     polling interval (negative values count as 0).
// With protected_repo true, "private" replaces "public", so that a shared
// cache (a TLS-terminating proxy) never hands an entitled client's file to an
// unentitled one.
std::string content_cache_control(std::string_view relative_path,
                                  std::int64_t poll_interval_seconds, bool protected_repo = false);

}  // namespace crane
