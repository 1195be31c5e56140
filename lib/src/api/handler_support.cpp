// Response builders shared by the registry's handler files.
#include "api/handler_support.h"

#include "crane/json_writer.h"
#include "crane/media_types.h"
#include "util/url.h"

namespace crane {

const std::string* Response::header(std::string_view name) const {
    static const std::string api_version_value(kApiVersion);
    if (api_version && name == kApiVersionHeader) return &api_version_value;
    for (const auto& h : headers) {
        if (h.name == name) return &h.value;
    }
    return nullptr;
}

namespace api {

namespace {

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

ErrorReason plain_reason(int status) {
    switch (status) {
        case 400: return ErrorReason::BadRequest;
        case 404: return ErrorReason::NotFound;
        case 405: return ErrorReason::MethodNotAllowed;
        case 412: return ErrorReason::PreconditionFailed;
        default: return ErrorReason::None;
    }
}

}  // namespace

namespace {

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

}  // namespace

void append_path_segment(std::string& out, std::string_view seg) {
    append_percent_encoded(out, seg, [](unsigned char c) { return kUrlSafe.path[c]; });
}

void append_query_value(std::string& out, std::string_view value) {
    append_percent_encoded(out, value, [](unsigned char c) { return kUrlSafe.query[c]; });
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = item.find('=');
        if (unquote_plus(item.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string() : unquote_plus(item.substr(eq + 1));
        }
    }
    return std::nullopt;
}

void v1_headers(Response& r) {
    r.headers.reserve(r.headers.size() + 2);  // one allocation, not a regrowth per header
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

Response plain_error(int status, std::string_view message, std::string_view allow) {
    Response r;
    r.status = status;
    r.content_type = std::string(kHtmlType);
    r.body = message.empty() ? reason(status) : std::string(message);
    r.reason = plain_reason(status);
    if (status == 405) r.headers.push_back({"Allow", std::string(allow)});
    return r;
}

Response v1_error_allow(int status, std::string_view message, std::string_view allow) {
    Response r = plain_error(status, message, allow);
    v1_headers(r);
    return r;
}

namespace {

struct V2ErrorInfo {
    int status;
    ErrorReason reason;
    std::string_view code;
    std::string_view message;
};

V2ErrorInfo v2_error_info(V2Error error) {
    switch (error) {
        case V2Error::NameUnknown: return {404, ErrorReason::NameUnknown, "NAME_UNKNOWN", "repository name not known to registry"};
        case V2Error::ManifestUnknown: return {404, ErrorReason::ManifestUnknown, "MANIFEST_UNKNOWN", "manifest unknown"};
        case V2Error::BlobUnknown: return {404, ErrorReason::BlobUnknown, "BLOB_UNKNOWN", "blob unknown to registry"};
        case V2Error::Unsupported: return {405, ErrorReason::Unsupported, "UNSUPPORTED", "The operation is unsupported."};
        case V2Error::DigestInvalid: return {400, ErrorReason::DigestInvalid, "DIGEST_INVALID", "provided digest did not match uploaded content"};
        case V2Error::NameInvalid: return {400, ErrorReason::NameInvalid, "NAME_INVALID", "invalid repository name"};
        case V2Error::PaginationNumberInvalid:
            return {400, ErrorReason::PaginationNumberInvalid, "PAGINATION_NUMBER_INVALID", "invalid number of results requested"};
        case V2Error::PreconditionFailed: return {412, ErrorReason::PreconditionFailed, "UNKNOWN", "precondition failed"};
    }
    return {500, ErrorReason::None, "UNKNOWN", "unknown error"};
}

}  // namespace

Response v2_error_allow(V2Error error, std::string_view message, std::string_view allow) {
    const V2ErrorInfo info = v2_error_info(error);
    Response r;
    r.status = info.status;
    r.reason = info.reason;
    r.content_type = std::string(kMediaJson);
    json::Writer w;
    w.begin_object().key("errors").begin_array().begin_object();
    w.key("code").string(info.code);
    w.key("message").string(message.empty() ? info.message : message);
    w.end_object().end_array().end_object();
    r.body = w.take();
    if (info.status == 405) r.headers.push_back({"Allow", std::string(allow)});
    return r;
}

FileAnswers v1_file_answers() {
    static const Response missing = v1_error(404, "");
    static const Response failed = v1_error(412, "");
    return {&missing, &failed};
}

namespace {

Response v2_fixed(V2Error error, bool vary) {
    Response r = v2_error(error);
    if (vary) r.headers.push_back({"Vary", "Accept"});
    r.api_version = true;
    return r;
}

}  // namespace

FileAnswers v2_file_answers(V2Error missing) {
    static const Response name_unknown = v2_fixed(V2Error::NameUnknown, false);
    static const Response manifest_unknown = v2_fixed(V2Error::ManifestUnknown, true);
    static const Response blob_unknown = v2_fixed(V2Error::BlobUnknown, false);
    static const Response failed = v2_fixed(V2Error::PreconditionFailed, false);
    const Response* answer = missing == V2Error::ManifestUnknown ? &manifest_unknown
                             : missing == V2Error::BlobUnknown   ? &blob_unknown
                                                                 : &name_unknown;
    return {answer, &failed};
}

}  // namespace api

// The public error builders (registry.h): a 405 allows GET and HEAD.
Response v1_error(int status, std::string_view message) {
    return api::v1_error_allow(status, message, api::kAllowRead);
}

Response v2_error(V2Error error, std::string_view message) {
    return api::v2_error_allow(error, message, api::kAllowRead);
}

}  // namespace crane
