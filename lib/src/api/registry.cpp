// The route table (docs/design.md, "Request path"): every endpoint is one
// entry, and routing, 404, 405 and Allow come from it. The handlers live in
// v1.cpp, v2.cpp and admin.cpp; the README's "The API" says what each answers.
#include "crane/registry.h"

#include <algorithm>

#include "api/cdn.h"
#include "api/handler_support.h"

namespace crane {

using namespace api;

namespace {

constexpr std::string_view kV1Prefix = "/v1/";
constexpr std::string_view kV2Prefix = "/v2/";
constexpr std::string_view kAdminPrefix = "/crane/repositories";

CdnSettings cdn_settings(const Config& c) {
    CdnSettings s;
    s.url_match = c.url_match;
    s.url_replace = c.url_replace;
    s.secret = decode_hex_secret(c.url_auth_secret).value_or(std::string());
    s.ttl = c.url_auth_ttl;
    s.param = c.url_auth_param;
    s.algorithm = parse_hmac_algorithm(c.url_auth_algo).value_or(HmacAlgorithm::Sha256);
    return s;
}

}  // namespace

Registry::Registry(Config config, std::shared_ptr<SnapshotSource> store, RegistryOptions options, LogSink log)
    : config_(std::move(config)),
      store_(std::move(store)),
      options_(std::move(options)),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      certificates_(std::make_shared<EntitlementCache>(256)),
      cdn_(std::make_shared<const CdnSettings>(cdn_settings(config_))) {}

Registry::~Registry() = default;

bool Registry::readable(const RepoView& repo, Client& client) const {
    return !repo.is_protected() || client.entitled(repo.url_path());
}

std::string Registry::absolute_url(const Request& req, std::string_view url, std::size_t room) const {
    std::string out;
    out.reserve(url.size() + room + 32);
    if (url.find("://") != std::string_view::npos) return out.append(url);
    if (req.base_url) {
        out += req.base_url();
    } else {
        out += "http://";
        out += req.host.empty() ? req.server_host : req.host;
    }
    if (!starts_with(url, "/")) out += '/';
    out += url;
    return out;
}

// ---- the route table ----
// Every endpoint is one entry: the area (URL prefix), what the rest of the
// path must look like, the methods it allows and the handler kind. Routing,
// 404 (no entry matches), 405 and its Allow header all come from here; the
// first matching entry decides, so an entry's path checks come before its
// method check (a bad path is 404 whatever the method).

namespace {

enum class Area { V1, V2, Admin };

enum Method : unsigned { kGet = 1, kHead = 2, kPost = 4 };
constexpr unsigned kRead = kGet | kHead;

unsigned method_bit(std::string_view method) {
    if (method == "GET") return kGet;
    if (method == "HEAD") return kHead;
    if (method == "POST") return kPost;
    return 0;
}

std::string allow_header(unsigned methods) {
    std::string allow;
    for (auto [bit, name] : {std::pair<unsigned, const char*>{kGet, "GET"}, {kHead, "HEAD"}, {kPost, "POST"}}) {
        if (!(methods & bit)) continue;
        if (!allow.empty()) allow += ", ";
        allow += name;
    }
    return allow;
}

struct Route {
    Area area;
    RouteKind kind;
    unsigned methods;
    bool (*matches)(std::string_view rest, RouteMatch& m);
};

bool match_v1_image(std::string_view rest, RouteMatch& m) {
    if (!starts_with(rest, "images/")) return false;
    std::string_view tail = rest.substr(7);
    auto slash = tail.find('/');
    if (slash == std::string_view::npos) return false;
    m.name = tail.substr(0, slash);
    m.file = tail.substr(slash + 1);
    return !m.name.empty() && (m.file == "ancestry" || m.file == "json" || m.file == "layer");
}

bool match_v1_repository(std::string_view rest, RouteMatch& m) {
    if (!starts_with(rest, "repositories/")) return false;
    std::string_view tail = rest.substr(13);
    if (ends_with(tail, "/images")) {
        m.repo_part = RouteMatch::Images;
        m.name = tail.substr(0, tail.size() - 7);
    } else if (ends_with(tail, "/tags")) {
        m.repo_part = RouteMatch::Tags;
        m.name = tail.substr(0, tail.size() - 5);
    } else {
        auto at = tail.rfind("/tags/");
        if (at == std::string_view::npos) return false;
        m.repo_part = RouteMatch::Tag;
        m.name = tail.substr(0, at);
        m.file = tail.substr(at + 6);
        if (m.file.empty() || m.file.find('/') != std::string_view::npos) return false;
    }
    return !m.name.empty() && std::count(m.name.begin(), m.name.end(), '/') <= 1;
}

// In match order within each area.
constexpr Route kRoutes[] = {
    {Area::V1, RouteKind::V1Ping, kRead, [](std::string_view r, RouteMatch&) { return r == "_ping"; }},
    {Area::V1, RouteKind::V1Users, kRead | kPost,
     [](std::string_view r, RouteMatch&) { return r == "users" || r == "users/"; }},
    {Area::V1, RouteKind::V1Search, kRead, [](std::string_view r, RouteMatch&) { return r == "search"; }},
    {Area::V1, RouteKind::V1Image, kRead, match_v1_image},
    {Area::V1, RouteKind::V1Repository, kRead, match_v1_repository},
    // v2 is read-only as a whole: every path under /v2 is an entry, so any
    // write answers 405 UNSUPPORTED, even where the path names nothing
    {Area::V2, RouteKind::V2Base, kRead, [](std::string_view r, RouteMatch&) { return r.empty(); }},
    {Area::V2, RouteKind::V2Catalog, kRead, [](std::string_view r, RouteMatch&) { return r == "_catalog"; }},
    {Area::V2, RouteKind::V2Repository, kRead, [](std::string_view, RouteMatch&) { return true; }},
    {Area::Admin, RouteKind::AdminV1, kRead,
     [](std::string_view r, RouteMatch&) { return r.empty() || r == "/" || r == "/v1" || r == "/v1/"; }},
    {Area::Admin, RouteKind::AdminV2, kRead, [](std::string_view r, RouteMatch&) { return r == "/v2" || r == "/v2/"; }},
};

}  // namespace

Response Registry::handle(const Request& req) const {
    Area area;
    std::string_view rest;
    if (starts_with(req.path, kV2Prefix) || req.path == "/v2") {
        area = Area::V2;
        rest = req.path.size() > kV2Prefix.size() ? req.path.substr(kV2Prefix.size()) : "";
    } else if (starts_with(req.path, kV1Prefix)) {
        area = Area::V1;
        rest = req.path.substr(kV1Prefix.size());
    } else if (starts_with(req.path, kAdminPrefix)) {
        area = Area::Admin;
        rest = req.path.substr(kAdminPrefix.size());
    } else {
        return plain_error(404);
    }
    const Route* route = nullptr;
    RouteMatch m{};
    for (const Route& candidate : kRoutes) {
        if (candidate.area != area) continue;
        m = RouteMatch{};
        if (candidate.matches(rest, m)) {
            route = &candidate;
            break;
        }
    }
    Response r;
    if (!route) {
        r = area == Area::V1 ? v1_error(404, "") : plain_error(404);  // v2 always has an entry
    } else if (!(method_bit(req.method) & route->methods)) {
        const std::string allow = allow_header(route->methods);
        r = area == Area::V1   ? v1_error_allow(405, "", allow)
            : area == Area::V2 ? v2_error_allow(V2Error::Unsupported, "", allow)
                               : plain_error(405, "", allow);
    } else {
        m.kind = route->kind;
        m.rest = rest;
        // held from start to end: the views below point into it
        const std::shared_ptr<const Snapshot> snapshot = store_->current();
        Client client(req, *this);
        r = area == Area::V1   ? v1(req, m, *snapshot, client)
            : area == Area::V2 ? v2(req, m, *snapshot, client)
                               : admin(req, m, *snapshot);
    }
    if (area == Area::V2) {
        r.headers.push_back({"Docker-Distribution-API-Version", "registry/2.0"});
        if (r.if_missing) {
            auto missing = std::make_shared<Response>(*r.if_missing);
            missing->headers.push_back({"Docker-Distribution-API-Version", "registry/2.0"});
            r.if_missing = std::move(missing);
        }
    }
    return r;
}

}  // namespace crane
