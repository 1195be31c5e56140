// The plain request and response the library works on; the Apache glue
// converts request_rec to Request and writes Response back.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace crane {

// The client certificate as mod_ssl saw it; fetched only for protected repos.
struct ClientCertificate {
    std::string pem;     // SSL_CLIENT_CERT; empty: none presented
    std::string verify;  // SSL_CLIENT_VERIFY: SUCCESS, NONE, FAILED:..., GENEROUS
};

struct Request {
    std::string_view method;    // "GET", "HEAD", ...
    std::string_view path;      // decoded path, e.g. "/v2/busybox/manifests/latest"
    std::string_view query;     // raw query string without '?'
    std::string_view accept;    // all Accept headers, comma-joined
    std::string_view host;      // Host header (host[:port])
    // this server's own name[:port] (port only when not the scheme's
    // default), used where the Host header would be but is absent (HTTP/1.0)
    std::string_view server_host;
    // scheme://host[:port] for relative metadata URLs, asked for only then
    // (the glue honours UseCanonicalName); empty: http:// + Host
    std::function<std::string()> base_url;
    std::int64_t now = 0;       // unix seconds (CDN tokens, certificate dates)
    std::function<ClientCertificate()> client_certificate;  // may be empty
};

// Every /v2/ answer carries the API version (clients probe it), httpd's own
// error pages included: the glue sets it in err_headers_out.
inline constexpr char kApiVersionHeader[] = "Docker-Distribution-API-Version";
inline constexpr char kApiVersion[] = "registry/2.0";

// Which endpoint answered: the route table's entries (api/registry.cpp);
// Unmatched: a path no entry takes. The metrics count by it.
enum class RouteId : std::uint8_t {
    Unmatched,
    V1Ping, V1Users, V1Search, V1ImageFile, V1RepositoryImages, V1RepositoryTags, V1RepositoryTag,
    V2Base, V2Catalog, V2Manifest, V2Blob, V2TagList, V2TagFile, V2Referrers, V2NoName,
    AdminV1, AdminV2,
    Count
};

// Why an error answer is one, set where the error is made (the metrics
// count 4xx answers by it). Unauthorized: a protected repository the
// client's certificate does not entitle (answered as an unknown name).
enum class ErrorReason : std::uint8_t {
    None,
    NotFound,            // v1 and plain 404s
    BadRequest,          // v1 and plain 400s
    MethodNotAllowed,    // v1 and plain 405s
    NameUnknown, ManifestUnknown, BlobUnknown, DigestInvalid, NameInvalid, PaginationNumberInvalid,
    Unsupported,         // v2 405
    PreconditionFailed,  // 412
    Unauthorized,
    Count
};

struct Header {
    std::string_view name;  // static names only
    std::string value;
};

struct Response {
    int status = 200;
    std::string content_type;  // empty: none
    std::string body;
    std::vector<Header> headers;
    // kApiVersionHeader: kApiVersion goes with this answer and with httpd's
    // own answers to the request (the glue copies it to err_headers_out).
    bool api_version = false;
    // Serve-content mode: the file to send instead of body (status 200).
    std::string file_path;
    bool digest_header = false;  // add Docker-Content-Digest of the file (manifests)
    // Serve-content mode: the answers when file_path is missing and when a
    // conditional GET of it fails (only the library knows whether a v1 file,
    // a manifest, a blob or a tag list was asked for). Static: they outlive
    // every Response.
    const Response* if_missing = nullptr;
    const Response* if_precondition_failed = nullptr;
    // For the metrics: the endpoint, the error's reason, and the
    // repository NAME of the path (a view into Request::path; empty when
    // the path names none).
    RouteId route = RouteId::Unmatched;
    ErrorReason reason = ErrorReason::None;
    std::string_view repository;

    // The value of a header this answer carries (kApiVersionHeader included
    // when api_version is set); null when it carries none.
    const std::string* header(std::string_view name) const;
};

}  // namespace crane
