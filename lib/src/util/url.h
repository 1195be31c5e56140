// URL helpers shared by the metadata loader (a repo's url_path) and the
// CDN signer (the path a token covers).
#pragma once

#include <string>
#include <string_view>

namespace crane {

// The path part of an absolute or relative URL, as Python's urlparse(url).path:
// scheme and "//authority" dropped, then everything from the first '?' or '#'.
// "https://h/a/b?x=1" -> "/a/b"; "/a/b#f" -> "/a/b"; "a/b" -> "a/b".
// A URL without a path ("https://h", "https://h?x", "") gives "" (not "/"),
// as Crane signed it. One deliberate difference: urlparse also cut ";params"
// off the last segment; we keep them, since the CDN checks the whole path.
std::string url_path_of(std::string_view url);

}  // namespace crane
