// sha256 and hex, the one implementation the index (digest cache),
// entitlement (fingerprints), the CDN tokens and crane-publish share. No
// OpenSSL type appears here.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace crane {

// Lowercase hex of n bytes.
std::string hex_lower(const unsigned char* bytes, std::size_t n);

// An incremental sha256. Any OpenSSL failure makes digest() empty.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, std::size_t n);
    void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
    // The 64 lowercase hex digits; nullopt when OpenSSL failed. Once only.
    std::optional<std::string> hex();

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
    bool failed_ = false;
};

// "sha256:" + hex of bytes; nullopt when OpenSSL fails.
std::optional<std::string> sha256_digest_of(std::string_view bytes);

}  // namespace crane
