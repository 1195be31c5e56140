// Small string rules used across lib, the module and the tools, one copy
// each: prefix/suffix tests, trimming, hex-digit values and the FNV-1a hash.
#pragma once

#include <cstdint>
#include <string_view>

namespace crane {

constexpr bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

constexpr bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// s without leading and trailing whitespace (isspace in the C locale).
constexpr std::string_view trim(std::string_view s) {
    auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

// The value of one hex digit, either case, or -1 (an int, so that a
// reader's end-of-input -1 is no digit either).
constexpr int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// [0-9a-f]: the digits of the digests this project reads and writes.
constexpr bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// FNV-1a 64 of bytes, continuing from h (start from kFnv1aBasis). Not a
// cryptographic hash: stable names and change detection only.
inline constexpr std::uint64_t kFnv1aBasis = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = kFnv1aBasis) {
    for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    return h;
}

}  // namespace crane
