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

// Python 2's unquote_plus: '+' is a space, %XX a byte; a '%' not followed by
// two hex digits stays as it is. Query strings (the request's, the search
// backend's) are decoded with it.
std::string unquote_plus(std::string_view s);

// Appends s with every byte for which safe(byte) is false as %XX (uppercase
// hex), or a space as '+' when space_as_plus. Safe runs are copied whole
// (redirect URLs are built with it on the request path).
template <typename Safe>
void append_percent_encoded(std::string& out, std::string_view s, const Safe& safe, bool space_as_plus = false) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (safe(c)) continue;
        out.append(s.data() + run, i - run);
        if (c == ' ' && space_as_plus) {
            out += '+';
        } else {
            const char esc[3] = {'%', kHex[c >> 4], kHex[c & 15]};
            out.append(esc, 3);
        }
        run = i + 1;
    }
    out.append(s.data() + run, s.size() - run);
}

}  // namespace crane
