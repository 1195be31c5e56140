// CDN URL rewriting and Akamai-style token signing (see cdn.h).
#include "api/cdn.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits>

#include "crane/sha256.h"
#include "crane/strings.h"

namespace crane {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignore_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

const EVP_MD* evp_of(HmacAlgorithm algorithm) {
    switch (algorithm) {
        case HmacAlgorithm::Sha1:
            return EVP_sha1();
        case HmacAlgorithm::Md5:
            return EVP_md5();
        case HmacAlgorithm::Sha256:
            break;
    }
    return EVP_sha256();
}


// Python's int(time.time()) + ttl never overflows; int64 can, so saturate.
std::int64_t add_saturating(std::int64_t a, std::int64_t b) {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) {
        return b > 0 ? std::numeric_limits<std::int64_t>::max()
                     : std::numeric_limits<std::int64_t>::min();
    }
    return sum;
}

}  // namespace

std::optional<HmacAlgorithm> parse_hmac_algorithm(std::string_view name) {
    if (equals_ignore_case(name, "sha256")) return HmacAlgorithm::Sha256;
    if (equals_ignore_case(name, "sha1")) return HmacAlgorithm::Sha1;
    if (equals_ignore_case(name, "md5")) return HmacAlgorithm::Md5;
    return std::nullopt;
}

std::optional<std::string> decode_hex_secret(std::string_view hex) {
    if (hex.empty() || hex.size() % 2 != 0) return std::nullopt;
    std::string bytes;
    bytes.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_value(hex[i]);
        int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        bytes.push_back(static_cast<char>((hi << 4) | lo));
    }
    return bytes;
}

std::string cdn_rewrite(std::string_view url, const CdnSettings& settings) {
    if (!settings.rewrites()) return std::string(url);
    const std::string_view match = settings.url_match;
    std::string out;
    out.reserve(url.size());
    std::size_t pos = 0;
    for (;;) {
        std::size_t hit = url.find(match, pos);
        if (hit == std::string_view::npos) break;
        out.append(url.substr(pos, hit - pos));
        out.append(settings.url_replace);
        pos = hit + match.size();
    }
    out.append(url.substr(pos));
    return out;
}

std::string cdn_token(std::string_view path, const CdnSettings& settings, std::int64_t expires) {
    const std::string exp = "exp=" + std::to_string(expires);
    std::string message = exp;
    message += "~url=";
    message.append(path);

    // A non-null key pointer even for an empty key: HMAC() treats a null key
    // specially in some OpenSSL versions.
    static const unsigned char kNoKey = 0;
    const auto* key = settings.secret.empty()
                          ? &kNoKey
                          : reinterpret_cast<const unsigned char*>(settings.secret.data());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(evp_of(settings.algorithm), key, static_cast<int>(settings.secret.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
             &mac_len) == nullptr) {
        mac_len = 0;  // cannot happen with the built-in digests; leaves "hmac=" empty
    }

    std::string token = exp;
    token += "~hmac=";
    token += hex_lower(mac, mac_len);
    return token;
}

std::string cdn_sign(std::string_view url, const CdnSettings& settings, std::int64_t now) {
    if (!settings.signs()) return std::string(url);
    const std::string token =
        cdn_token(url_path_of(url), settings, add_saturating(now, settings.ttl));

    const std::size_t hash = url.find('#');
    const std::string_view before = url.substr(0, hash);
    const std::string_view fragment = hash == std::string_view::npos ? "" : url.substr(hash);

    std::string out(before);
    if (before.find('?') == std::string_view::npos) {
        out += '?';
    } else if (out.back() != '?' && out.back() != '&') {
        out += '&';
    }
    out += settings.param;
    out += '=';
    out += token;
    out.append(fragment);
    return out;
}

std::string cdn_apply(std::string_view url, const CdnSettings& settings, std::int64_t now) {
    if (!settings.rewrites()) return cdn_sign(url, settings, now);
    return cdn_sign(cdn_rewrite(url, settings), settings, now);
}


}  // namespace crane
