// The registry: routes a Request to the v1, v2 or admin endpoints and
// produces the Response, reading one consistent Index per request.
#pragma once

#include <memory>
#include <string>

#include "crane/cdn.h"
#include "crane/config.h"
#include "crane/http.h"
#include "crane/index_store.h"
#include "crane/log.h"

namespace crane {

class EntitlementCache;

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
    Registry(Config config, std::shared_ptr<IndexStore> store, RegistryOptions options, LogSink log);
    ~Registry();

    Response handle(const Request& request) const;

    const Config& config() const { return config_; }
    const std::shared_ptr<IndexStore>& store() const { return store_; }

private:
    class Client;
    Response v1(const Request& req, std::string_view rest, const Index& index, Client& client) const;
    Response v2(const Request& req, std::string_view rest, const Index& index, Client& client) const;
    Response admin(const Request& req, std::string_view rest, const Index& index) const;
    Response catalog(const Request& req, const Index& index, Client& client) const;
    Response search(const Request& req, const Index& index, Client& client) const;
    bool readable(const RepoCommon& repo, Client& client) const;
    // url made absolute (relative metadata URLs get the request's scheme and
    // Host), with `room` bytes reserved for what the caller appends
    std::string absolute_url(const Request& req, std::string_view url, std::size_t room) const;

    Config config_;
    std::shared_ptr<IndexStore> store_;
    RegistryOptions options_;
    LogSink log_;
    std::shared_ptr<EntitlementCache> certificates_;
    CdnSettings cdn_;  // derived once from config_
};

// Error bodies, shared with the glue for errors it raises itself.
Response v1_error(int status, std::string_view message);
Response v2_error(int status, std::string_view message);

}  // namespace crane
