// What the registry's handler files (registry.cpp: the route table;
// v1.cpp, v2.cpp, admin.cpp: the handlers) share: response builders, the
// route match, the per-request client. Internal to lib/src/api.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crane/registry.h"
#include "entitlement/entitlement_cache.h"
#include "entitlement/entitlement_certificate.h"

namespace crane {

namespace api {

inline constexpr std::string_view kHtmlType = "text/html; charset=utf-8";
inline constexpr std::string_view kAllowRead = "GET, HEAD";

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
inline bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A request-derived path appended to a redirect base URL: what would change
// the URL's meaning (?, #, CR/LF, spaces, ...) is percent-encoded.
void append_path_segment(std::string& out, std::string_view seg);
void append_query_value(std::string& out, std::string_view value);
// The first value of a query parameter; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

void v1_headers(Response& r);
Response v1_json(int status, std::string body);
Response redirect(std::string location);
// A plain-text error as Crane's Flask sent it, without the v1 headers. A 405
// names the methods the route allows.
Response plain_error(int status, std::string_view message = "", std::string_view allow = kAllowRead);
Response v1_error_allow(int status, std::string_view message, std::string_view allow);
Response v2_error_allow(V2Error error, std::string_view message, std::string_view allow);

}  // namespace api

enum class RouteKind {
    V1Ping, V1Users, V1Search, V1Image, V1Repository,
    V2Base, V2Catalog, V2Repository,
    AdminV1, AdminV2,
};

// What a matching entry found in the path.
struct RouteMatch {
    RouteKind kind;
    std::string_view name;  // v1 image id or repository id
    std::string_view file;  // v1 image file, or tag
    enum { Images, Tags, Tag } repo_part = Images;
    std::string_view rest;  // the path after the area prefix
};

// Per-request view of the client: the certificate is fetched from mod_ssl
// and parsed (or found in the cache) at most once per request.
class Registry::Client {
public:
    Client(const Request& req, const Registry& reg) : req_(req), reg_(reg) {}

    bool entitled(std::string_view url_path) {
        if (!fetched_) {
            fetched_ = true;
            fetch();
        }
        return cert_ && cert_->entitles(url_path);
    }

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
        if (!req_.client_certificate || !reg_.certificates_) return;
        ClientCertificate cc = req_.client_certificate();
        if (cc.pem.empty()) return;
        if (!reg_.options_.accept_unverified_certificates && cc.verify != "SUCCESS") {
            log(reg_.log_, LogLevel::Debug, log_id::kCertUnverified, "client certificate not verified by mod_ssl (" + cc.verify +
                                           "); it entitles nothing");
            return;
        }
        auto parsed = reg_.certificates_->get(cc.pem);
        if (!parsed) {
            log(reg_.log_, LogLevel::Debug, log_id::kCertUnparsable, "client certificate could not be parsed; it entitles nothing");
            return;
        }
        std::shared_ptr<const EntitlementCertificate> cert = std::move(*parsed);
        if (!cert->valid_at(req_.now)) {
            log(reg_.log_, LogLevel::Debug, log_id::kCertExpired, "client certificate " + cert->sha256_fingerprint() +
                                           " is outside its validity dates; it entitles nothing");
            return;
        }
        cert_ = std::move(cert);
    }

    const Request& req_;
    const Registry& reg_;
    bool fetched_ = false;
    volatile bool decoy_result_ = false;  // kept so the decoy walk is not optimised away
    std::shared_ptr<const EntitlementCertificate> cert_;
};

}  // namespace crane
