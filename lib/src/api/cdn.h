// CDN handling of redirect URLs, as Crane's [cdn] section does it: an optional
// url_match -> url_replace rewrite, then an optional Akamai-style
// (Auth Token 2.0) query token "PARAM=exp=EXP~hmac=HEX" signing the URL path.
// Pure functions; the clock is passed in so callers and tests control it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/url.h"

namespace crane {

enum class HmacAlgorithm { Sha256, Sha1, Md5 };

// "sha256", "sha1" or "md5", any letter case (Crane lower-cased the name).
std::optional<HmacAlgorithm> parse_hmac_algorithm(std::string_view name);

// The url_auth_secret value as raw key bytes. nullopt unless it is a
// non-empty, even-length run of hex digits (either case). An empty config
// value means "no signing" and is the config layer's business, not a secret.
std::optional<std::string> decode_hex_secret(std::string_view hex);

struct CdnSettings {
    std::string url_match;
    std::string url_replace;
    std::string secret;  // raw key bytes (decode_hex_secret of url_auth_secret)
    std::int64_t ttl = 300;
    std::string param = "_auth_";
    HmacAlgorithm algorithm = HmacAlgorithm::Sha256;

    // Crane rewrites only when both url_match and url_replace are non-empty.
    bool rewrites() const { return !url_match.empty() && !url_replace.empty(); }
    // Crane signs whenever url_auth_secret is non-empty.
    bool signs() const { return !secret.empty(); }
};

// Every occurrence of url_match replaced by url_replace, left to right and
// non-overlapping (Python's str.replace); url unchanged unless rewrites().
std::string cdn_rewrite(std::string_view url, const CdnSettings& settings);

// "exp=EXPIRES~hmac=HEX", HEX the lowercase hex HMAC (settings.algorithm,
// key settings.secret) of "exp=EXPIRES~url=PATH". PATH is used as given: no
// escaping, no normalisation (Akamai's escape_early off, as Crane had it).
std::string cdn_token(std::string_view path, const CdnSettings& settings, std::int64_t expires);

// url with "PARAM=TOKEN" added to its query, TOKEN = cdn_token(url_path_of(url),
// settings, now + ttl). Separator '?' or, when url already has a query, '&'
// (Crane always used '?', producing a broken URL in that case). If url has a
// fragment the parameter goes before the '#'. url unchanged unless signs().
std::string cdn_sign(std::string_view url, const CdnSettings& settings, std::int64_t now);

// cdn_rewrite, then cdn_sign of the rewritten URL (the order Crane used, so
// the signed path is the one the CDN will see).
std::string cdn_apply(std::string_view url, const CdnSettings& settings, std::int64_t now);

}  // namespace crane
