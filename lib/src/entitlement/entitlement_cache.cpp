// EntitlementCache: an LRU map from DER fingerprint to parsed certificate. The
// PEM is base64-decoded and hashed outside the lock; parsing happens outside it
// too, so a slow or hostile certificate never stalls other requests.
#include "entitlement/entitlement_cache.h"

#include <new>
#include <utility>

namespace crane {

EntitlementCache::EntitlementCache(std::size_t capacity, std::size_t max_bytes)
    : capacity_(capacity), max_bytes_(max_bytes) {}

EntitlementCertificate::Parsed EntitlementCache::get(std::string_view pem) {
    using Parsed = EntitlementCertificate::Parsed;
    Result<std::string> der = EntitlementCertificate::pem_to_der(pem);
    if (!der) return Parsed::failure(der.error());
    std::string key;
    try {
        key = EntitlementCertificate::sha256_hex(*der);
    } catch (const std::bad_alloc&) {
        return Parsed::failure("out of memory");
    }
    if (key.empty()) return EntitlementCertificate::from_der(*der);

    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = by_fingerprint_.find(key);
        if (it != by_fingerprint_.end()) {
            recency_.splice(recency_.begin(), recency_, it->second);
            ++stats_.hits;
            return Parsed(it->second->certificate);
        }
        ++stats_.misses;
    }

    Parsed parsed = EntitlementCertificate::from_der(*der);
    if (!parsed || capacity_ == 0) return parsed;
    std::shared_ptr<const EntitlementCertificate> cert = *parsed;
    const std::size_t cost = cert->approximate_size() + 2 * key.size();
    if (cost > max_bytes_) return parsed;  // good for this request, too big to keep

    try {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = by_fingerprint_.find(key);
        if (it != by_fingerprint_.end()) {  // another thread parsed it meanwhile: share theirs
            recency_.splice(recency_.begin(), recency_, it->second);
            return Parsed(it->second->certificate);
        }
        recency_.push_front({key, cert, cost});
        try {
            by_fingerprint_.emplace(std::move(key), recency_.begin());
        } catch (...) {
            recency_.pop_front();
            throw;
        }
        bytes_ += cost;
        while (recency_.size() > capacity_ || bytes_ > max_bytes_) {
            by_fingerprint_.erase(recency_.back().fingerprint);
            bytes_ -= recency_.back().bytes;
            recency_.pop_back();
            ++stats_.evictions;
        }
    } catch (const std::bad_alloc&) {
        // Not cached; the parsed certificate is still good for this request.
    }
    return parsed;
}

std::size_t EntitlementCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return recency_.size();
}

std::size_t EntitlementCache::bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
}

void EntitlementCache::clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    by_fingerprint_.clear();
    recency_.clear();
    bytes_ = 0;
}

EntitlementCache::Stats EntitlementCache::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

}  // namespace crane
