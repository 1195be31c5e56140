// The response builders the registry's handlers (api/handlers.h) share.
// Internal to lib/src/api.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crane/registry.h"
#include "crane/strings.h"

namespace crane {

namespace api {

inline constexpr std::string_view kHtmlType = "text/html; charset=utf-8";
inline constexpr std::string_view kAllowRead = "GET, HEAD";

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

// What a served file's Response points at when the file is missing and
// when a conditional GET of it fails: fixed answers in static storage.
struct FileAnswers {
    const Response* missing;
    const Response* precondition_failed;
};
FileAnswers v1_file_answers();
// `missing`: NameUnknown, ManifestUnknown or BlobUnknown; a manifest's
// answers say Vary: Accept.
FileAnswers v2_file_answers(V2Error missing);

}  // namespace api

}  // namespace crane
