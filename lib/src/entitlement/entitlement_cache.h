// A per-process cache of parsed client entitlement certificates, keyed by the
// SHA-256 fingerprint of their DER, so a certificate sent with every request
// (SSL_CLIENT_CERT) is parsed once. Bounded (least recently used entries go
// first) and safe to use from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "entitlement/entitlement_certificate.h"

namespace crane {

class EntitlementCache {
  public:
    // At most `capacity` certificates and about `max_bytes` of parsed data (a v3
    // tree can be large); capacity 0 disables caching (every get() parses).
    explicit EntitlementCache(std::size_t capacity = 256, std::size_t max_bytes = 64u << 20);

    // The parsed certificate of the first CERTIFICATE block of `pem`, parsed on
    // a miss; a failure, with the reason, for text that holds no parsable
    // certificate (not cached).
    EntitlementCertificate::Parsed get(std::string_view pem);

    std::size_t size() const;
    std::size_t capacity() const { return capacity_; }
    std::size_t bytes() const;  // approximate bytes held by the cached certificates
    void clear();

    struct Stats {
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;  // parses, including those that failed
        std::uint64_t evictions = 0;
    };
    Stats stats() const;

  private:
    struct Entry {
        std::string fingerprint;
        std::shared_ptr<const EntitlementCertificate> certificate;
        std::size_t bytes;
    };

    const std::size_t capacity_;
    const std::size_t max_bytes_;
    mutable std::mutex mutex_;  // guards everything below; never held while parsing
    std::list<Entry> recency_;  // most recently used first
    std::unordered_map<std::string, std::list<Entry>::iterator> by_fingerprint_;
    std::size_t bytes_ = 0;
    Stats stats_;
};

}  // namespace crane
