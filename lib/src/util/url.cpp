// URL helpers (see url.h).
#include "util/url.h"

#include "crane/strings.h"

namespace crane {

namespace {

bool is_scheme_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

}  // namespace

std::string url_path_of(std::string_view url) {
    std::string_view rest = url;
    const std::size_t colon = rest.find(':');
    if (colon != std::string_view::npos && colon > 0) {
        const char first = rest[0];
        bool scheme = (first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z');
        for (std::size_t i = 1; scheme && i < colon; ++i) scheme = is_scheme_char(rest[i]);
        if (scheme) rest.remove_prefix(colon + 1);
    }
    if (rest.substr(0, 2) == "//") {
        const std::size_t end = rest.find_first_of("/?#", 2);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    }
    return std::string(rest.substr(0, rest.find_first_of("?#")));
}

std::string unquote_plus(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace crane
