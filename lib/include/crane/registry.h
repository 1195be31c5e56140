// The registry: routes a Request to its endpoint's handler (the route table
// in api/registry.cpp, the handlers in api/handlers.h) and produces the
// Response, reading one consistent Snapshot per request.
#pragma once

#include <memory>
#include <string>

#include "crane/config.h"
#include "crane/http.h"
#include "crane/snapshot_store.h"
#include "crane/log.h"

namespace crane {

namespace api {
struct Settings;  // what the handlers read (api/handlers.h)
}

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

    // The answer to one request, read from one consistent snapshot.
    Response handle(const Request& request) const;

    const Config& config() const;

private:
    std::shared_ptr<SnapshotSource> store_;
    std::shared_ptr<const api::Settings> settings_;
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
