// The registry's endpoints, one function each: the route table
// (registry.cpp) names them; v1.cpp, v2.cpp and admin.cpp define them
// (README, "The API"). Internal to lib/src/api.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/cdn.h"
#include "api/handler_support.h"
#include "api/v2_path.h"
#include "crane/registry.h"
#include "entitlement/entitlement_cache.h"
#include "entitlement/entitlement_certificate.h"

namespace crane::api {

// What the registry fixes when it is made and every handler reads.
struct Settings {
    Config config;
    RegistryOptions options;
    LogSink log;
    std::shared_ptr<EntitlementCache> certificates;
    CdnSettings cdn;  // derived from config
};

// What the matching route entry found in the path.
struct RouteMatch {
    std::string_view rest;       // the path after the area prefix
    std::optional<V2Path> v2;    // /v2/: rest split into NAME and file path (once per request)
    std::string_view name;       // v1 image id or repository id
    std::string_view file;       // v1 image file, or tag
};

// Per-request view of the client: the certificate is fetched from mod_ssl
// and parsed (or found in the cache) at most once per request.
class Client {
public:
    Client(const Request& req, const Settings& settings) : req_(req), settings_(settings) {}

    bool entitled(std::string_view url_path) {
        if (!fetched_) {
            fetched_ = true;
            fetch();
        }
        return cert_ && cert_->entitles(url_path);
    }

    // A repository this client may read: unprotected, or entitled.
    bool may_read(const RepoView& repo) {
        if (!repo.is_protected() || entitled(repo.url_path())) return true;
        refused_ = true;
        return false;
    }

    // Whether may_read refused a repository (the metrics' Unauthorized).
    bool refused() const { return refused_; }

    // What asking for an unknown name costs: the same certificate fetch and
    // a path walk as for a protected repo, result unused. Without it the 404
    // of a protected repo took measurably longer than an unknown repo's, which
    // told anyone holding a verified certificate which names are protected.
    void decoy(std::string_view name) {
        std::string path = "/";
        path += name;
        decoy_result_ = entitled(path) != decoy_result_;
    }

private:
    void fetch() {
        if (!req_.client_certificate || !settings_.certificates) return;
        ClientCertificate cc = req_.client_certificate();
        if (cc.pem.empty()) return;
        if (!settings_.options.accept_unverified_certificates && cc.verify != "SUCCESS") {
            log(settings_.log, LogLevel::Debug, log_id::kCertUnverified,
                "client certificate not verified by mod_ssl (" + cc.verify + "); it entitles nothing");
            return;
        }
        auto parsed = settings_.certificates->get(cc.pem);
        if (!parsed) {
            log(settings_.log, LogLevel::Debug, log_id::kCertUnparsable,
                "client certificate could not be parsed; it entitles nothing");
            return;
        }
        std::shared_ptr<const EntitlementCertificate> cert = std::move(*parsed);
        if (!cert->valid_at(req_.now)) {
            log(settings_.log, LogLevel::Debug, log_id::kCertExpired,
                "client certificate " + cert->sha256_fingerprint() + " is outside its validity dates; it entitles nothing");
            return;
        }
        cert_ = std::move(cert);
    }

    const Request& req_;
    const Settings& settings_;
    bool fetched_ = false;
    bool refused_ = false;
    volatile bool decoy_result_ = false;  // kept so the decoy walk is not optimised away
    std::shared_ptr<const EntitlementCertificate> cert_;
};

// What a handler is given: the request, what its route entry matched, the
// snapshot held for the whole request, the client and the settings.
struct Context {
    const Request& req;
    const RouteMatch& match;
    const Snapshot& snap;
    Client& client;
    const Settings& settings;
};

using Handler = Response (*)(Context& c);

// url made absolute (relative metadata URLs get the request's scheme and
// Host), with `room` bytes reserved for what the caller appends.
std::string absolute_url(const Request& req, std::string_view url, std::size_t room);

// The repository NAME of the path (/v1/repositories/NAME/..., /v2/NAME/...)
// when the client may read it; nullopt for unknown and unreadable ones
// alike (their answers are byte-identical). The route table gives the
// endpoints below that take a repository only readable ones.
std::optional<V1View> readable_v1_repository(Context& c);
std::optional<V2View> readable_v2_repository(Context& c);

// v1.cpp
Response v1_ping(Context& c);                                     // /v1/_ping
Response v1_users(Context& c);                                    // /v1/users[/] (GET, HEAD, POST)
Response v1_search(Context& c);                                   // /v1/search?q=
Response v1_image_file(Context& c);                               // /v1/images/ID/{ancestry,json,layer}
Response v1_repository_images(Context& c, const V1View& repo);  // /v1/repositories/NAME/images
Response v1_repository_tags(Context& c, const V1View& repo);    // /v1/repositories/NAME/tags
Response v1_repository_tag(Context& c, const V1View& repo);     // /v1/repositories/NAME/tags/TAG

// v2.cpp
Response v2_base(Context& c);                                     // /v2/
Response v2_catalog(Context& c);                                  // /v2/_catalog
Response v2_manifest(Context& c, const V2View& repo);           // /v2/NAME/manifests/REFERENCE
Response v2_blob(Context& c, const V2View& repo);               // /v2/NAME/blobs/DIGEST
Response v2_tag_list(Context& c, const V2View& repo);           // /v2/NAME/tags/list
Response v2_tag_file(Context& c, const V2View& repo);           // /v2/NAME/tags/... (a file)
Response v2_referrers(Context& c, const V2View& repo);          // /v2/NAME/referrers/DIGEST
Response v2_no_name(Context& c);                                  // any other /v2/ path: NAME_UNKNOWN

// admin.cpp
Response admin_v1(Context& c);             // /crane/repositories[/][v1[/]]
Response admin_v2(Context& c);             // /crane/repositories/v2[/]

}  // namespace crane::api
