// The reference grammars (see reference.h).
#include "crane/reference.h"

#include "crane/strings.h"

namespace crane {

namespace {

// Character classes of the grammars, one table lookup per byte (every ref
// and digest of every metadata file goes through these).
enum CharClass : unsigned char {
    kWord = 1,        // [A-Za-z0-9_]
    kLowerAlnum = 2,  // [a-z0-9]
    kLowerHex = 4,    // [a-f0-9]
    kEncoded = 8,     // [A-Za-z0-9=_-]
};

struct CharTable {
    unsigned char bits[256] = {};
    constexpr CharTable() {
        for (int c = 0; c < 256; ++c) {
            const bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
            unsigned char b = 0;
            if (lower || upper || digit || c == '_') b |= kWord;
            if (lower || digit) b |= kLowerAlnum;
            if (is_lower_hex(static_cast<char>(c))) b |= kLowerHex;
            if (lower || upper || digit || c == '=' || c == '_' || c == '-') b |= kEncoded;
            bits[c] = b;
        }
    }
    bool is(char c, CharClass k) const { return (bits[static_cast<unsigned char>(c)] & k) != 0; }
};
constexpr CharTable kChars;

bool all_of_class(std::string_view s, CharClass k) {
    for (char c : s) {
        if (!kChars.is(c, k)) return false;
    }
    return true;
}

// [a-z0-9]+ ([.+_-] [a-z0-9]+)*
bool is_algorithm(std::string_view alg) {
    bool after_sep = true;
    for (char c : alg) {
        if (kChars.is(c, kLowerAlnum)) {
            after_sep = false;
        } else if ((c == '.' || c == '+' || c == '_' || c == '-') && !after_sep) {
            after_sep = true;
        } else {
            return false;
        }
    }
    return !after_sep;
}

}  // namespace

bool is_tag(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    if (!kChars.is(s[0], kWord)) return false;
    for (std::size_t i = 1; i < s.size(); ++i) {
        const char c = s[i];
        if (!kChars.is(c, kWord) && c != '.' && c != '-') return false;
    }
    return true;
}

bool is_digest(std::string_view s) {
    const std::size_t colon = s.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
    const std::string_view alg = s.substr(0, colon);
    const std::string_view enc = s.substr(colon + 1);
    if (alg == "sha256") return enc.size() == 64 && all_of_class(enc, kLowerHex);
    if (alg == "sha512") return enc.size() == 128 && all_of_class(enc, kLowerHex);
    return is_algorithm(alg) && all_of_class(enc, kEncoded);
}

bool is_sha256_digest(std::string_view s) { return starts_with(s, "sha256:") && is_digest(s); }

bool is_reference(std::string_view s) {
    return s.find(':') == std::string_view::npos ? is_tag(s) : is_digest(s);
}

}  // namespace crane
