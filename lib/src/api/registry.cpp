// The route table (docs/design.md, "Request path"): every endpoint is one
// entry naming its handler (api/handlers.h), and routing, 404, 405 and Allow
// come from it. The README's "The API" says what each endpoint answers.
#include "crane/registry.h"

#include <algorithm>

#include "api/handlers.h"

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
    : store_(std::move(store)) {
    auto settings = std::make_shared<Settings>();
    settings->cdn = cdn_settings(config);
    settings->config = std::move(config);
    settings->options = std::move(options);
    settings->log = log ? std::move(log) : LogSink(null_log_sink);
    settings->certificates = std::make_shared<EntitlementCache>(256);
    settings_ = std::move(settings);
}

Registry::~Registry() = default;

const Config& Registry::config() const { return settings_->config; }

namespace api {

std::string absolute_url(const Request& req, std::string_view url, std::size_t room) {
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

}  // namespace api

// ---- the route table ----
// Every endpoint is one entry: the area (URL prefix), what the rest of the
// path must look like, the methods it allows and its handler. Routing,
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
    unsigned methods;
    bool (*matches)(RouteMatch& m);  // m.rest (and for /v2/, m.v2) set
    Handler handle;
    RouteId id;  // the metrics' name of the entry
};

bool match_v1_image(RouteMatch& m) {
    if (!starts_with(m.rest, "images/")) return false;
    std::string_view tail = m.rest.substr(7);
    auto slash = tail.find('/');
    if (slash == std::string_view::npos) return false;
    m.name = tail.substr(0, slash);
    m.file = tail.substr(slash + 1);
    return !m.name.empty() && (m.file == "ancestry" || m.file == "json" || m.file == "layer");
}

// /v1/repositories/NAME/{images,tags,tags/TAG}: which of the three the path
// names (the first suffix that fits decides), or none.
enum class V1RepoPart { None, Images, Tags, Tag };

V1RepoPart v1_repository_part(RouteMatch& m) {
    if (!starts_with(m.rest, "repositories/")) return V1RepoPart::None;
    std::string_view tail = m.rest.substr(13);
    V1RepoPart part;
    if (ends_with(tail, "/images")) {
        part = V1RepoPart::Images;
        m.name = tail.substr(0, tail.size() - 7);
    } else if (ends_with(tail, "/tags")) {
        part = V1RepoPart::Tags;
        m.name = tail.substr(0, tail.size() - 5);
    } else {
        auto at = tail.rfind("/tags/");
        if (at == std::string_view::npos) return V1RepoPart::None;
        part = V1RepoPart::Tag;
        m.name = tail.substr(0, at);
        m.file = tail.substr(at + 6);
        if (m.file.empty() || m.file.find('/') != std::string_view::npos) return V1RepoPart::None;
    }
    if (m.name.empty() || std::count(m.name.begin(), m.name.end(), '/') > 1) return V1RepoPart::None;
    return part;
}

template <V1RepoPart Part>
bool match_v1_repository(RouteMatch& m) {
    return v1_repository_part(m) == Part;
}

template <V2Kind Kind>
bool match_v2(RouteMatch& m) {
    return m.v2 && m.v2->kind == Kind;
}

// An endpoint of a repository the client may read; the others answer as
// unknown names.
template <Response (*Endpoint)(Context&, const V1View&)>
Response v1_readable(Context& c) {
    const std::optional<V1View> repo = readable_v1_repository(c);
    if (repo) return Endpoint(c, *repo);
    Response r = v1_error(404, "");
    if (c.client.refused()) r.reason = ErrorReason::Unauthorized;
    return r;
}

template <Response (*Endpoint)(Context&, const V2View&)>
Response v2_readable(Context& c) {
    const std::optional<V2View> repo = readable_v2_repository(c);
    if (repo) return Endpoint(c, *repo);
    Response r = v2_error(V2Error::NameUnknown);
    if (c.client.refused()) r.reason = ErrorReason::Unauthorized;
    return r;
}

bool match_v2_tag_list(RouteMatch& m) { return match_v2<V2Kind::Tags>(m) && m.v2->rest == "list"; }

// In match order within each area.
constexpr Route kRoutes[] = {
    {Area::V1, kRead, [](RouteMatch& m) { return m.rest == "_ping"; }, v1_ping, RouteId::V1Ping},
    {Area::V1, kRead | kPost, [](RouteMatch& m) { return m.rest == "users" || m.rest == "users/"; }, v1_users,
     RouteId::V1Users},
    {Area::V1, kRead, [](RouteMatch& m) { return m.rest == "search"; }, v1_search, RouteId::V1Search},
    {Area::V1, kRead, match_v1_image, v1_image_file, RouteId::V1ImageFile},
    {Area::V1, kRead, match_v1_repository<V1RepoPart::Images>, v1_readable<v1_repository_images>,
     RouteId::V1RepositoryImages},
    {Area::V1, kRead, match_v1_repository<V1RepoPart::Tags>, v1_readable<v1_repository_tags>,
     RouteId::V1RepositoryTags},
    {Area::V1, kRead, match_v1_repository<V1RepoPart::Tag>, v1_readable<v1_repository_tag>,
     RouteId::V1RepositoryTag},
    // v2 is read-only as a whole: every path under /v2 is an entry, so any
    // write answers 405 UNSUPPORTED, even where the path names nothing
    {Area::V2, kRead, [](RouteMatch& m) { return m.rest.empty(); }, v2_base, RouteId::V2Base},
    {Area::V2, kRead, [](RouteMatch& m) { return m.rest == "_catalog"; }, v2_catalog, RouteId::V2Catalog},
    {Area::V2, kRead, match_v2<V2Kind::Manifests>, v2_readable<v2_manifest>, RouteId::V2Manifest},
    {Area::V2, kRead, match_v2<V2Kind::Blobs>, v2_readable<v2_blob>, RouteId::V2Blob},
    {Area::V2, kRead, match_v2_tag_list, v2_readable<v2_tag_list>, RouteId::V2TagList},
    {Area::V2, kRead, match_v2<V2Kind::Tags>, v2_readable<v2_tag_file>, RouteId::V2TagFile},
    {Area::V2, kRead, match_v2<V2Kind::Referrers>, v2_readable<v2_referrers>, RouteId::V2Referrers},
    {Area::V2, kRead, [](RouteMatch&) { return true; }, v2_no_name, RouteId::V2NoName},
    {Area::Admin, kRead, [](RouteMatch& m) { return m.rest.empty() || m.rest == "/" || m.rest == "/v1" || m.rest == "/v1/"; },
     admin_v1, RouteId::AdminV1},
    {Area::Admin, kRead, [](RouteMatch& m) { return m.rest == "/v2" || m.rest == "/v2/"; }, admin_v2,
     RouteId::AdminV2},
};

// The area a path is in, and the rest of the path after the area's prefix.
std::optional<Area> area_of(std::string_view path, std::string_view& rest) {
    if (starts_with(path, kV2Prefix) || path == "/v2") {
        rest = path.size() > kV2Prefix.size() ? path.substr(kV2Prefix.size()) : "";
        return Area::V2;
    }
    if (starts_with(path, kV1Prefix)) {
        rest = path.substr(kV1Prefix.size());
        return Area::V1;
    }
    if (starts_with(path, kAdminPrefix)) {
        rest = path.substr(kAdminPrefix.size());
        return Area::Admin;
    }
    return std::nullopt;
}

}  // namespace

Response Registry::handle(const Request& req) const {
    std::string_view rest;
    const std::optional<Area> found = area_of(req.path, rest);
    if (!found) return plain_error(404);
    const Area area = *found;
    RouteMatch m;
    m.rest = rest;
    if (area == Area::V2) m.v2 = split_v2_path(rest);
    const Route* route = nullptr;
    for (const Route& candidate : kRoutes) {
        if (candidate.area != area) continue;
        m.name = m.file = {};
        if (candidate.matches(m)) {
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
        // held from start to end: the views the handler reads point into it
        const std::shared_ptr<const Snapshot> snapshot = store_->current();
        Client client(req, *settings_);
        Context c{req, m, *snapshot, client, *settings_};
        r = route->handle(c);
    }
    if (route) r.route = route->id;
    if (m.v2) r.repository = m.v2->name;
    r.api_version = area == Area::V2;
    return r;
}

}  // namespace crane
