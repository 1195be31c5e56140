#include "crane/sha256.h"

#include <openssl/evp.h>

namespace crane {

std::string hex_lower(const unsigned char* bytes, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0x0F]);
    }
    return out;
}

struct Sha256::Ctx {
    struct Free {
        void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, Free> md{EVP_MD_CTX_new()};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    failed_ = !ctx_->md || EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr) != 1;
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t n) {
    if (!failed_ && EVP_DigestUpdate(ctx_->md.get(), data, n) != 1) failed_ = true;
}

std::optional<std::string> Sha256::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (failed_ || EVP_DigestFinal_ex(ctx_->md.get(), md, &len) != 1) {
        failed_ = true;
        return std::nullopt;
    }
    failed_ = true;  // finished: a second call is an error, not a digest of nothing
    return hex_lower(md, len);
}

std::optional<std::string> sha256_digest_of(std::string_view bytes) {
    Sha256 h;
    h.update(bytes);
    auto hex = h.hex();
    if (!hex) return std::nullopt;
    return "sha256:" + *hex;
}

}  // namespace crane
