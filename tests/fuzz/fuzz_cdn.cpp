// Fuzz target `cdn`: cdn_apply (url_match -> url_replace rewrite, then the
// Akamai-style token) with CdnSettings taken from the input:
//   URL NUL MATCH NUL REPLACE NUL SECRET NUL PARAM NUL ALGO NUL TTL NUL NOW
// (missing fields: empty / defaults; SECRET is hex when it decodes, else raw
// key bytes). Invariants: the output starts with the rewritten URL (up to its
// fragment), the rewrite is Python's str.replace, and the token is inserted
// exactly once, with the right separator, before the fragment.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "api/cdn.h"
#include "crane/config.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_cdn invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Python's str.replace(match, replace) for a non-empty match.
std::string model_replace(std::string_view s, std::string_view match, std::string_view replace) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        if (s.compare(i, match.size(), match) == 0) {
            out.append(replace);
            i += match.size();
        } else {
            out += s[i++];
        }
    }
    return out;
}

std::int64_t add_saturating(std::int64_t a, std::int64_t b) {
    if (b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) return std::numeric_limits<std::int64_t>::max();
    if (b < 0 && a < std::numeric_limits<std::int64_t>::min() - b) return std::numeric_limits<std::int64_t>::min();
    return a + b;
}

std::size_t mac_hex_length(crane::HmacAlgorithm a) {
    switch (a) {
        case crane::HmacAlgorithm::Sha256: return 64;
        case crane::HmacAlgorithm::Sha1: return 40;
        case crane::HmacAlgorithm::Md5: return 32;
    }
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> f;
    for (std::size_t start = 0;;) {
        const std::size_t nul = input.find('\0', start);
        f.push_back(input.substr(start, nul == std::string_view::npos ? nul : nul - start));
        if (nul == std::string_view::npos) break;
        start = nul + 1;
    }
    f.resize(8);
    const std::string_view url = f[0];

    crane::CdnSettings s;
    s.url_match = std::string(f[1]);
    s.url_replace = std::string(f[2]);
    s.secret = crane::decode_hex_secret(f[3]).value_or(std::string(f[3]));
    if (!f[4].empty()) s.param = std::string(f[4]);
    s.algorithm = crane::parse_hmac_algorithm(f[5]).value_or(crane::HmacAlgorithm::Sha256);
    if (auto ttl = crane::parse_int(f[6])) s.ttl = *ttl;
    std::int64_t now = 1700000000;
    if (auto n = crane::parse_int(f[7])) now = *n;

    const std::string rewritten = crane::cdn_rewrite(url, s);
    const std::string want_rewrite = s.rewrites() ? model_replace(url, s.url_match, s.url_replace) : std::string(url);
    if (rewritten != want_rewrite) fail("rewrite differs from str.replace", input);

    const std::string out = crane::cdn_apply(url, s, now);
    if (!s.signs()) {
        if (out != rewritten) fail("unsigned output is not the rewritten URL", out);
        return 0;
    }

    const std::size_t hash = rewritten.find('#');
    const std::string_view before = std::string_view(rewritten).substr(0, hash);
    const std::string_view fragment = hash == std::string::npos ? std::string_view() : std::string_view(rewritten).substr(hash);
    if (!starts_with(out, before)) fail("output does not start with the rewritten URL", out);
    if (out.size() < before.size() + fragment.size() || out.compare(out.size() - fragment.size(), fragment.size(), fragment) != 0) {
        fail("fragment not kept at the end", out);
    }
    std::string_view added = std::string_view(out).substr(before.size(), out.size() - before.size() - fragment.size());
    const bool has_query = before.find('?') != std::string_view::npos;
    const std::string_view sep = !has_query ? "?" : (before.back() == '?' || before.back() == '&') ? "" : "&";
    if (!starts_with(added, sep)) fail("wrong query separator", out);
    added.remove_prefix(sep.size());

    const std::string path = crane::url_path_of(rewritten);
    if (path.find_first_of("?#") != std::string::npos || rewritten.find(path) == std::string::npos) {
        fail("url_path_of is not a query-free piece of the URL", path);
    }
    const std::string token = crane::cdn_token(path, s, add_saturating(now, s.ttl));
    if (added != s.param + "=" + token) fail("token differs", out);
    const std::string exp = "exp=" + std::to_string(add_saturating(now, s.ttl)) + "~hmac=";
    if (!starts_with(token, exp) || token.size() != exp.size() + mac_hex_length(s.algorithm)) {
        fail("token shape", token);
    }
    return 0;
}
