// The route table and the v1, v2, search and admin handlers (docs/design.md,
// "Request path"; the README's "The API" says what each endpoint answers).
#include "crane/registry.h"

#include <algorithm>
#include <cstdio>

#include "api/admin_page.h"
#include "api/cdn.h"
#include "api/content_path.h"
#include "entitlement/entitlement_cache.h"
#include "entitlement/entitlement_certificate.h"
#include "crane/json_writer.h"
#include "api/negotiation.h"
#include "crane/search.h"
#include "api/v2_path.h"

namespace crane {

namespace {

constexpr std::string_view kV1Prefix = "/v1/";
constexpr std::string_view kV2Prefix = "/v2/";
constexpr std::string_view kAdminPrefix = "/crane/repositories";
constexpr std::string_view kHtmlType = "text/html; charset=utf-8";

const char* reason(int status) {
    switch (status) {
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 412: return "Precondition Failed";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Error";
    }
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

bool is_read(std::string_view method) { return method == "GET" || method == "HEAD"; }

// Bytes that may stand in a URL as they are; everything else is %XX.
struct UrlSafeSet {
    bool path[256] = {};   // path characters (segments and '/')
    bool query[256] = {};  // unreserved only, for query values
    constexpr UrlSafeSet() {
        for (int c = 0; c < 256; ++c) {
            bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              c == '-' || c == '.' || c == '_' || c == '~';
            query[c] = unreserved;
            path[c] = unreserved || c == ':' || c == '@' || c == '+' || c == '=' || c == ',' || c == '!' ||
                      c == '$' || c == '*' || c == '/';
        }
    }
};
constexpr UrlSafeSet kUrlSafe;

// Appends s percent-encoding the bytes outside `safe`, copying safe runs whole.
void append_encoded(std::string& out, std::string_view s, const bool (&safe)[256]) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (safe[c]) continue;
        out.append(s.data() + run, i - run);
        const char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        out.append(esc, 3);
        run = i + 1;
    }
    out.append(s.data() + run, s.size() - run);
}

// A request-derived path appended to a redirect base URL: what would change
// the URL's meaning (?, #, CR/LF, spaces, ...) is percent-encoded.
void append_path_segment(std::string& out, std::string_view seg) { append_encoded(out, seg, kUrlSafe.path); }

void append_query_value(std::string& out, std::string_view value) { append_encoded(out, value, kUrlSafe.query); }

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() + 0 && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The first value of a query parameter; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = item.find('=');
        if (percent_decode(item.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1));
        }
    }
    return std::nullopt;
}

void v1_headers(Response& r) {
    r.headers.push_back({"X-Docker-Registry-Version", "0.6.6"});
    r.headers.push_back({"X-Docker-Registry-Config", "common"});
}

Response v1_json(int status, std::string body) {
    Response r;
    r.status = status;
    r.content_type = std::string(kMediaJson);
    r.body = std::move(body);
    v1_headers(r);
    return r;
}

Response redirect(std::string location) {
    Response r;
    r.headers.reserve(3);
    r.status = 302;
    r.headers.push_back({"Location", std::move(location)});
    return r;
}

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

const std::string* Response::header(std::string_view name) const {
    for (const auto& h : headers) {
        if (h.name == name) return &h.value;
    }
    return nullptr;
}

// A plain-text error as Crane's Flask sent it, without the v1 headers.
static Response plain_error(int status, std::string_view message = "") {
    Response r;
    r.status = status;
    r.content_type = std::string(kHtmlType);
    r.body = message.empty() ? reason(status) : std::string(message);
    if (status == 405) r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
}

Response v1_error(int status, std::string_view message) {
    Response r = plain_error(status, message);
    v1_headers(r);
    return r;
}

namespace {

struct V2ErrorInfo {
    int status;
    std::string_view code;
    std::string_view message;
};

V2ErrorInfo v2_error_info(V2Error error) {
    switch (error) {
        case V2Error::NameUnknown: return {404, "NAME_UNKNOWN", "repository name not known to registry"};
        case V2Error::ManifestUnknown: return {404, "MANIFEST_UNKNOWN", "manifest unknown"};
        case V2Error::BlobUnknown: return {404, "BLOB_UNKNOWN", "blob unknown to registry"};
        case V2Error::Unsupported: return {405, "UNSUPPORTED", "The operation is unsupported."};
        case V2Error::DigestInvalid: return {400, "DIGEST_INVALID", "provided digest did not match uploaded content"};
        case V2Error::NameInvalid: return {400, "NAME_INVALID", "invalid repository name"};
        case V2Error::PaginationNumberInvalid:
            return {400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested"};
        case V2Error::PreconditionFailed: return {412, "UNKNOWN", "precondition failed"};
    }
    return {500, "UNKNOWN", "unknown error"};
}

}  // namespace

Response v2_error(V2Error error, std::string_view message) {
    const V2ErrorInfo info = v2_error_info(error);
    Response r;
    r.status = info.status;
    r.content_type = std::string(kMediaJson);
    json::Writer w;
    w.begin_object().key("errors").begin_array().begin_object();
    w.key("code").string(info.code);
    w.key("message").string(message.empty() ? info.message : message);
    w.end_object().end_array().end_object();
    r.body = w.take();
    if (info.status == 405) r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
}

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
        auto cert = reg_.certificates_->get(cc.pem);
        if (!cert) {
            log(reg_.log_, LogLevel::Debug, log_id::kCertUnparsable, "client certificate could not be parsed; it entitles nothing");
            return;
        }
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

Registry::Registry(Config config, std::shared_ptr<IndexStore> store, RegistryOptions options, LogSink log)
    : config_(std::move(config)),
      store_(std::move(store)),
      options_(std::move(options)),
      log_(log ? std::move(log) : LogSink(null_log_sink)),
      certificates_(std::make_shared<EntitlementCache>(256)),
      cdn_(std::make_shared<const CdnSettings>(cdn_settings(config_))) {}

Registry::~Registry() = default;

bool Registry::readable(const RepoCommon& repo, Client& client) const {
    return !repo.is_protected || client.entitled(repo.url_path);
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

Response Registry::handle(const Request& req) const {
    auto index = store_->current();
    Client client(req, *this);
    if (starts_with(req.path, kV2Prefix) || req.path == "/v2") {
        std::string_view rest = req.path.size() > kV2Prefix.size() ? req.path.substr(kV2Prefix.size()) : "";
        Response r = v2(req, rest, *index, client);
        r.headers.push_back({"Docker-Distribution-API-Version", "registry/2.0"});
        if (r.if_missing) {
            auto missing = std::make_shared<Response>(*r.if_missing);
            missing->headers.push_back({"Docker-Distribution-API-Version", "registry/2.0"});
            r.if_missing = std::move(missing);
        }
        return r;
    }
    if (starts_with(req.path, kV1Prefix)) return v1(req, req.path.substr(kV1Prefix.size()), *index, client);
    if (starts_with(req.path, kAdminPrefix)) return admin(req, req.path.substr(kAdminPrefix.size()), *index);
    return plain_error(404);
}

Response Registry::v1(const Request& req, std::string_view rest, const Index& index, Client& client) const {
    if (rest == "_ping") {
        if (!is_read(req.method)) return v1_error(405, "");
        Response r = v1_json(200, "true");
        r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
        return r;
    }
    if (rest == "users" || rest == "users/") {
        Response r;
        if (req.method == "POST") {
            r = v1_json(201, "\"User Created\"");
        } else if (is_read(req.method)) {
            r = v1_json(200, "\"OK\"");
        } else {
            r = v1_error(405, "");
            for (auto& h : r.headers) {
                if (h.name == "Allow") h.value = "GET, HEAD, POST";
            }
            return r;
        }
        r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
        return r;
    }
    if (rest == "search") {
        if (!is_read(req.method)) return v1_error(405, "");
        return search(req, index, client);
    }
    if (starts_with(rest, "images/")) {
        std::string_view tail = rest.substr(7);
        auto slash = tail.find('/');
        if (slash == std::string_view::npos) return v1_error(404, "");
        std::string_view image = tail.substr(0, slash), file = tail.substr(slash + 1);
        if (image.empty() || (file != "ancestry" && file != "json" && file != "layer")) return v1_error(404, "");
        if (!is_read(req.method)) return v1_error(405, "");
        const auto* holders = index.repos_with_image(image);
        if (!holders) {
            client.decoy(image);
            return v1_error(404, "");
        }
        for (const V1Repo* repo : *holders) {
            if (!readable(*repo, client)) continue;
            if (config_.serve_content) {
                Response r;
                auto path = content_file_path(config_.content_dir_v1, repo->repository,
                                              std::string(image) + "/" + std::string(file));
                if (!path) return v1_error(404, "");
                r.file_path = std::move(*path);
                // ancestry and json are JSON documents; only the layer is opaque
                r.content_type = std::string(file == "layer" ? kMediaOctetStream : kMediaJson);
                // v1 image ids name their content, so the files never change
                r.headers.push_back({"Cache-Control", repo->is_protected ? "private, max-age=31536000, immutable"
                                                                         : "public, max-age=31536000, immutable"});
                v1_headers(r);
                return r;
            }
            std::string location = absolute_url(req, repo->url, image.size() + file.size() + 2);
            if (!ends_with(location, "/")) location += '/';
            append_path_segment(location, image);
            location += '/';
            location += file;
            Response r = redirect(std::move(location));
            v1_headers(r);
            return r;
        }
        return v1_error(404, "");
    }
    if (starts_with(rest, "repositories/")) {
        std::string_view tail = rest.substr(13);
        std::string_view repo_id, tag;
        enum { Images, Tags, Tag } what;
        if (ends_with(tail, "/images")) {
            what = Images;
            repo_id = tail.substr(0, tail.size() - 7);
        } else if (ends_with(tail, "/tags")) {
            what = Tags;
            repo_id = tail.substr(0, tail.size() - 5);
        } else {
            auto at = tail.rfind("/tags/");
            if (at == std::string_view::npos) return v1_error(404, "");
            what = Tag;
            repo_id = tail.substr(0, at);
            tag = tail.substr(at + 6);
            if (tag.empty() || tag.find('/') != std::string_view::npos) return v1_error(404, "");
        }
        if (repo_id.empty() || std::count(repo_id.begin(), repo_id.end(), '/') > 1) return v1_error(404, "");
        if (!is_read(req.method)) return v1_error(405, "");
        if (starts_with(repo_id, "library/")) repo_id.remove_prefix(8);
        const V1Repo* repo = index.find_v1(repo_id);
        if (!repo) client.decoy(repo_id);
        if (!repo || !readable(*repo, client)) return v1_error(404, "");
        if (what == Images) {
            Response r = v1_json(200, repo->images_json);
            std::string_view endpoint = config_.endpoint;
            if (endpoint.empty()) endpoint = req.host.empty() ? req.server_host : req.host;
            r.headers.push_back({"X-Docker-Endpoints", std::string(endpoint)});
            return r;
        }
        if (what == Tags) return v1_json(200, repo->tags_json);
        const std::string* image = repo->find_tag(tag);
        if (!image) return v1_error(404, "");
        return v1_json(200, json::quoted(*image));
    }
    return v1_error(404, "");
}

Response Registry::v2(const Request& req, std::string_view rest, const Index& index, Client& client) const {
    if (!is_read(req.method)) return v2_error(V2Error::Unsupported);
    if (rest.empty()) {
        Response r;
        r.content_type = std::string(kMediaJson);
        r.body = "{}";
        return r;
    }
    if (rest == "_catalog") return catalog(req, index, client);
    auto split = split_v2_path(rest);
    // no endpoint names a repository here
    if (!split) return v2_error(V2Error::NameUnknown);
    const V2Repo* repo = index.find_v2(split->name);
    if (!repo) client.decoy(split->name);
    // byte-identical for unknown and unreadable repos
    if (!repo || !readable(*repo, client)) return v2_error(V2Error::NameUnknown);

    std::string path;
    std::string_view media_type = kMediaJson;
    V2Error missing = V2Error::NameUnknown;
    switch (split->kind) {
        case V2Kind::Manifests: {
            if (split->rest.find('/') != std::string_view::npos) return v2_error(V2Error::ManifestUnknown);
            auto choice = negotiate_manifest(*repo, split->rest, AcceptSet(req.accept));
            switch (choice.outcome) {
                case ManifestOutcome::Found: break;
                case ManifestOutcome::DigestInvalid: return v2_error(V2Error::DigestInvalid);
                case ManifestOutcome::Unknown:
                    // a schema 1 manifest's digest is in no list: serving
                    // content can look for its file (404 when missing)
                    if (config_.serve_content) break;
                    [[fallthrough]];
                case ManifestOutcome::OciNotAccepted: {
                    Response r = v2_error(V2Error::ManifestUnknown, choice.message);
                    r.headers.push_back({"Vary", "Accept"});
                    return r;
                }
            }
            path = std::move(choice.path);
            media_type = choice.media_type;
            missing = V2Error::ManifestUnknown;
            break;
        }
        case V2Kind::Blobs:
            if (!is_valid_digest(split->rest)) return v2_error(V2Error::DigestInvalid);
            path = std::string(split->path);
            media_type = kMediaOctetStream;
            missing = V2Error::BlobUnknown;
            break;
        case V2Kind::Referrers:
            if (!is_valid_digest(split->rest)) return v2_error(V2Error::DigestInvalid);
            return referrers(req, *repo, split->rest);
        case V2Kind::Tags:
            if (split->rest == "list" && repo->has_tags) return tag_list(req, *repo);
            path = std::string(split->path);
            break;
    }
    const bool manifest = split->kind == V2Kind::Manifests;

    if (config_.serve_content) {
        Response r;
        auto if_missing = std::make_shared<Response>(v2_error(missing));
        if (manifest) if_missing->headers.push_back({"Vary", "Accept"});
        r.if_missing = std::move(if_missing);
        auto file = content_file_path(config_.content_dir_v2, repo->repository, path);
        if (!file) return *r.if_missing;
        r.file_path = std::move(*file);
        r.content_type = std::string(media_type);
        r.digest_header = manifest;
        // what the client asked for decides: a tag may point elsewhere after
        // the next publish even when the negotiated file is digest-named
        r.headers.push_back({"Cache-Control", content_cache_control(split->path, config_.data_dir_polling_interval,
                                                                    repo->is_protected)});
        if (manifest) r.headers.push_back({"Vary", "Accept"});
        return r;
    }
    std::string location = absolute_url(req, repo->url, path.size() + 1);
    if (!ends_with(location, "/")) location += '/';
    append_path_segment(location, path);
    if (cdn_->rewrites() || cdn_->signs()) location = cdn_apply(location, *cdn_, req.now);
    Response r = redirect(std::move(location));
    if (manifest) r.headers.push_back({"Vary", "Accept"});
    return r;
}

namespace {

// The n / last query parameters of a paged list (_catalog, tags/list).
struct Paging {
    std::optional<std::size_t> limit;  // n; none: everything
    std::string last;                  // names after this one only
};

std::optional<Paging> paging_of(std::string_view query) {
    Paging p;
    if (auto n = query_param(query, "n")) {
        auto parsed = parse_int(*n);
        if (!parsed || *parsed < 0) return std::nullopt;
        p.limit = static_cast<std::size_t>(*parsed);
    }
    p.last = query_param(query, "last").value_or(std::string());
    return p;
}

// Writes the names of sorted [begin, end) after `last` that `keep` accepts,
// at most `limit` of them; returns the Link header value when more follow.
template <typename It, typename NameOf, typename Keep>
std::string write_page(json::Writer& w, It begin, It end, const Paging& paging, std::string_view link_path,
                       NameOf name_of, Keep keep) {
    It it = paging.last.empty() ? begin
                                : std::upper_bound(begin, end, paging.last, [&](const std::string& l, const auto& item) {
                                      return l < name_of(item);
                                  });
    std::size_t count = 0;
    std::string_view last_sent;
    for (; it != end; ++it) {
        if (!keep(*it)) continue;
        if (paging.limit && count == *paging.limit) {
            if (count == 0) break;
            std::string link = "<";
            link += link_path;
            link += "?n=" + std::to_string(*paging.limit) + "&last=";
            append_query_value(link, last_sent);
            link += ">; rel=\"next\"";
            return link;
        }
        last_sent = name_of(*it);
        w.string(last_sent);
        ++count;
    }
    return {};
}

Response paged_json(json::Writer& w, std::string link) {
    Response r;
    r.content_type = std::string(kMediaJson);
    r.body = w.take();
    if (!link.empty()) r.headers.push_back({"Link", std::move(link)});
    return r;
}

}  // namespace

Response Registry::catalog(const Request& req, const Index& index, Client& client) const {
    auto paging = paging_of(req.query);
    if (!paging) return v2_error(V2Error::PaginationNumberInvalid);
    const auto& all = index.v2_sorted();
    json::Writer w;
    w.begin_object().key("repositories").begin_array();
    std::string link = write_page(
        w, all.begin(), all.end(), *paging, "/v2/_catalog", [](const V2Repo* r) -> const std::string& { return r->id; },
        [&](const V2Repo* r) { return readable(*r, client); });
    w.end_array().end_object();
    return paged_json(w, std::move(link));
}

// tags/list from the metadata's own tag list (sorted, unique).
Response Registry::tag_list(const Request& req, const V2Repo& repo) const {
    auto paging = paging_of(req.query);
    if (!paging) return v2_error(V2Error::PaginationNumberInvalid);
    std::string link_path = "/v2/";
    append_path_segment(link_path, repo.id);
    link_path += "/tags/list";
    json::Writer w;
    w.begin_object().key("name").string(repo.id).key("tags").begin_array();
    std::string link = write_page(
        w, repo.tags.begin(), repo.tags.end(), *paging, link_path,
        [](const std::string& t) -> const std::string& { return t; }, [](const std::string&) { return true; });
    w.end_array().end_object();
    return paged_json(w, std::move(link));
}

// The referrers of `digest` as an OCI image index, optionally filtered by
// artifactType; an empty index when there are none.
Response Registry::referrers(const Request& req, const V2Repo& repo, std::string_view digest) const {
    std::string filter = query_param(req.query, "artifactType").value_or(std::string());
    json::Writer w;
    w.begin_object().key("schemaVersion").integer(2).key("mediaType").string(kMediaOciIndex);
    w.key("manifests").begin_array();
    if (const auto* list = repo.find_referrers(digest)) {
        for (const Referrer& d : *list) {
            if (!filter.empty() && d.artifact_type != filter) continue;
            w.begin_object().key("mediaType").string(d.media_type).key("digest").string(d.digest);
            w.key("size").integer(d.size);
            if (!d.artifact_type.empty()) w.key("artifactType").string(d.artifact_type);
            if (!d.annotations.empty()) {
                w.key("annotations").begin_object();
                for (const auto& [k, v] : d.annotations) w.key(k).string(v);
                w.end_object();
            }
            w.end_object();
        }
    }
    w.end_array().end_object();
    Response r;
    r.content_type = std::string(kMediaOciIndex);
    r.body = w.take();
    if (!filter.empty()) r.headers.push_back({"OCI-Filters-Applied", "artifactType"});
    return r;
}

Response Registry::search(const Request& req, const Index& index, Client& client) const {
    auto q = query_param(req.query, "q");
    if (!q || q->empty()) return v1_error(400, "parameter \"q\" is required");
    SearchBackendKind kind = choose_search_backend(config_.gsa_url, config_.solr_url);
    if (kind == SearchBackendKind::None) return v1_error(404, "");
    const std::string& url = kind == SearchBackendKind::Gsa ? config_.gsa_url : config_.solr_url;
    HttpClientOptions http;
    http.verify_tls = options_.search_verify_tls;
    http.ca_file = options_.search_ca_file;
    SearchOutcome outcome = run_search(kind, url, *q, http);
    if (outcome.http_status != 200) {
        log(log_, LogLevel::Error, log_id::kSearchFailed, outcome.error);
        return v1_error(outcome.http_status, "");
    }
    if (!outcome.notice.empty()) log(log_, LogLevel::Warn, log_id::kSearchNotice, outcome.notice);
    // results that name a repository are shown only when this server has it
    // and this client may read it (v2 first, then v1)
    std::vector<SearchResult> shown;
    for (auto& result : outcome.results) {
        if (result.should_filter) {
            const RepoCommon* repo = index.find_v2(result.name);
            if (!repo) repo = index.find_v1(result.name);
            if (!repo) client.decoy(result.name);
            if (!repo || !readable(*repo, client)) continue;
        }
        shown.push_back(std::move(result));
    }
    return v1_json(200, render_search_response(*q, shown));
}

Response Registry::admin(const Request& req, std::string_view rest, const Index& index) const {
    bool v1 = rest.empty() || rest == "/" || rest == "/v1" || rest == "/v1/";
    bool v2 = rest == "/v2" || rest == "/v2/";
    if (!v1 && !v2) return plain_error(404);
    if (!is_read(req.method)) return plain_error(405);
    AcceptSet accept(req.accept);
    Response r;
    if (accept.contains(kMediaJson) && !accept.contains("text/html")) {
        r.content_type = std::string(kMediaJson);
        r.body = v1 ? admin_v1_json(index) : admin_v2_json(index);
    } else {
        r.content_type = std::string(kHtmlType);
        r.body = v1 ? admin_v1_html(index) : admin_v2_html(index);
    }
    return r;
}

}  // namespace crane
