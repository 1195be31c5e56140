// EntitlementCache: an LRU map from DER fingerprint to parsed certificate. The
// PEM is base64-decoded and hashed outside the lock; parsing happens outside it
// too, so a slow or hostile certificate never stalls other requests.
#include "crane/entitlement_cache.h"

#include <new>

namespace crane {

EntitlementCache::EntitlementCache(std::size_t capacity) : capacity_(capacity) {}

std::shared_ptr<const EntitlementCertificate> EntitlementCache::get(std::string_view pem,
                                                                    std::string* error) {
    std::optional<std::string> der = EntitlementCertificate::pem_to_der(pem, error);
    if (!der) return nullptr;
    std::string key;
    try {
        key = EntitlementCertificate::sha256_hex(*der);
    } catch (const std::bad_alloc&) {
        if (error) *error = "out of memory";
        return nullptr;
    }
    if (key.empty()) return EntitlementCertificate::from_der(*der, error);

    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = by_fingerprint_.find(key);
        if (it != by_fingerprint_.end()) {
            recency_.splice(recency_.begin(), recency_, it->second);
            ++stats_.hits;
            return it->second->second;
        }
        ++stats_.misses;
    }

    std::shared_ptr<const EntitlementCertificate> cert =
        EntitlementCertificate::from_der(*der, error);
    if (!cert || capacity_ == 0) return cert;

    try {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = by_fingerprint_.find(key);
        if (it != by_fingerprint_.end()) {  // another thread parsed it meanwhile: share theirs
            recency_.splice(recency_.begin(), recency_, it->second);
            return it->second->second;
        }
        recency_.emplace_front(key, cert);
        try {
            by_fingerprint_.emplace(std::move(key), recency_.begin());
        } catch (...) {
            recency_.pop_front();
            throw;
        }
        while (recency_.size() > capacity_) {
            by_fingerprint_.erase(recency_.back().first);
            recency_.pop_back();
            ++stats_.evictions;
        }
    } catch (const std::bad_alloc&) {
        // Not cached; the parsed certificate is still good for this request.
    }
    return cert;
}

std::size_t EntitlementCache::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return recency_.size();
}

void EntitlementCache::clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    by_fingerprint_.clear();
    recency_.clear();
}

EntitlementCache::Stats EntitlementCache::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

}  // namespace crane
