// The registry: routes a Request to the v1, v2 or admin endpoints and
// produces the Response, reading one consistent Snapshot per request.
#pragma once

#include <memory>
#include <string>

#include "crane/config.h"
#include "crane/http.h"
#include "crane/snapshot_store.h"
#include "crane/log.h"

namespace crane {

class EntitlementCache;
struct CdnSettings;
struct RouteMatch;  // what an entry of the route table found (api/registry.cpp)

struct RegistryOptions {
    // Accept client certificates that mod_ssl did not verify (Crane's old
    // SSLVerifyClient optional_no_ca deployments). Off by default.
    bool accept_unverified_certificates = false;
    // TLS verification of the search backend (Crane never verified it).
    bool search_verify_tls = true;
    std::string search_ca_file;  // empty: the system's CA bundle
};

class Registry {
public:
    Registry(Config config, std::shared_ptr<SnapshotSource> store, RegistryOptions options, LogSink log);
    ~Registry();

    Response handle(const Request& request) const;

    const Config& config() const { return config_; }
    const std::shared_ptr<SnapshotSource>& store() const { return store_; }

private:
    class Client;
    Response v1(const Request& req, const RouteMatch& m, const Snapshot& snap, Client& client) const;
    Response v2(const Request& req, const RouteMatch& m, const Snapshot& snap, Client& client) const;
    Response admin(const Request& req, const RouteMatch& m, const Snapshot& snap) const;
    Response v1_image(const Request& req, std::string_view image, std::string_view file, const Snapshot& snap,
                      Client& client) const;
    Response catalog(const Request& req, const Snapshot& snap, Client& client) const;
    Response tag_list(const Request& req, const V2View& repo) const;
    Response referrers(const Request& req, const V2View& repo, std::string_view digest) const;
    Response search(const Request& req, const Snapshot& snap, Client& client) const;
    bool readable(const RepoView& repo, Client& client) const;
    // url made absolute (relative metadata URLs get the request's scheme and
    // Host), with `room` bytes reserved for what the caller appends
    std::string absolute_url(const Request& req, std::string_view url, std::size_t room) const;

    Config config_;
    std::shared_ptr<SnapshotSource> store_;
    RegistryOptions options_;
    LogSink log_;
    std::shared_ptr<EntitlementCache> certificates_;
    std::shared_ptr<const CdnSettings> cdn_;  // derived once from config_
};

// The v2 errors, each with the distribution spec's code, its HTTP status
// and Docker Distribution's message.
enum class V2Error {
    NameUnknown,              // 404 NAME_UNKNOWN
    ManifestUnknown,          // 404 MANIFEST_UNKNOWN
    BlobUnknown,              // 404 BLOB_UNKNOWN
    Unsupported,              // 405 UNSUPPORTED (writes; with Allow)
    DigestInvalid,            // 400 DIGEST_INVALID
    NameInvalid,              // 400 NAME_INVALID
    PaginationNumberInvalid,  // 400 PAGINATION_NUMBER_INVALID
    PreconditionFailed,       // 412 UNKNOWN (conditional GET of a served file)
};

// Error bodies, shared with the glue for errors it raises itself. An empty
// message stands for the error's usual one.
Response v1_error(int status, std::string_view message);
Response v2_error(V2Error error, std::string_view message = {});

}  // namespace crane
