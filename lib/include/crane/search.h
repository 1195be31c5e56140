// `docker search` (GET /v1/search?q=Q) backends: parsing Google Search
// Appliance XML and Solr JSON into results, building the backend request URL,
// fetching it with libcurl, and rendering Crane's exact 200 body.
// Filtering of should_filter results (known repo + authorization) is the
// caller's job; nothing here knows about the index or the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crane/result.h"

namespace crane {

// One entry of the "results" array. Field semantics are Crane's SearchResult.
struct SearchResult {
    std::string name;
    // null only from Solr (neither ir_description nor publishedAbstract, or a
    // non-string value); GSA defaults to "".
    std::optional<std::string> description;
    bool is_trusted = false;
    bool is_official = false;
    std::int64_t star_count = 0;
    // true: keep the result only if the repo is known and the client may read it
    bool should_filter = false;
};

enum class SearchBackendKind { None, Gsa, Solr };

// Which backend Crane would use: GSA wins if both URLs are set.
SearchBackendKind choose_search_backend(std::string_view gsa_url, std::string_view solr_url);
const char* search_backend_name(SearchBackendKind kind);  // "none", "gsa", "solr"

// Bodies larger than this are refused (by the HTTP client and by the parsers).
inline constexpr std::size_t kMaxSearchBodyBytes = std::size_t{4} * 1024 * 1024;

// One backend answer yields at most kMaxSearchResults results whose names and
// descriptions together take at most kMaxSearchResultBytes; the parsers stop
// at the first result that does not fit (backend order), so the 200 body stays
// within a few MiB. Without this a Solr doc with many c_pull_command entries,
// each repeating the doc's description, turned a 100 KB body into hundreds of
// MB. Cutting is not an error: the answer is 200 with what fitted.
inline constexpr std::size_t kMaxSearchResults = 1000;
inline constexpr std::size_t kMaxSearchResultBytes = std::size_t{1} * 1024 * 1024;

// Parsers: a failure = unparsable body (the request answers 502); its
// message says why.
//
// GSA: every <R> child of a <RES> child of the root is a result; its <MT>
// children with N="portal_name" / N="portal_short_description" give name /
// description from their V attribute (last one wins). An R without a name is
// skipped; description defaults to "". should_filter is true, the rest Crane's
// defaults. Any entity declaration (internal or external) makes the body
// unparsable, so entity expansion attacks never run.
Result<std::vector<SearchResult>> parse_gsa_xml(std::string_view body);

// Solr: see the comment in search_solr.cpp for the per-field type rules.
Result<std::vector<SearchResult>> parse_solr_json(std::string_view body);

// Python 2 urllib.quote(q): bytes outside [A-Za-z0-9_.-/] become %XX
// (uppercase hex). "hi mom" -> "hi%20mom", "a/b~" -> "a/b%7E".
std::string percent_encode_query(std::string_view q);

// The configured GSA URL with q=Q added to its own query parameters the way
// Crane's urlparse/parse_qs/urlencode round trip did: existing pairs are
// decoded and re-encoded with quote_plus (space -> '+'), blank values and an
// existing q are dropped, repeated keys are grouped at their first position,
// and q comes last. The fragment, if any, is kept.
std::string gsa_request_url(std::string_view base_url, std::string_view q);

// The Solr URL template with every {0} replaced by percent_encode_query(q);
// "{{" and "}}" become "{" and "}" as in Python's str.format.
std::string solr_request_url(std::string_view url_template, std::string_view q);

// True when Python's url_template.format(x) would succeed and use x: only
// "{0}", "{{" and "}}" brace sequences, and at least one "{0}".
bool is_valid_solr_url_template(std::string_view url_template);

// A backend answer (the request answers 200).
struct SearchAnswer {
    std::vector<SearchResult> results;
    // When the results were cut to the limits above: one warning line saying
    // so (backend and redacted URL); empty otherwise.
    std::string notice;
};

// No answer: the status the request answers with, and why.
struct SearchFailure {
    int http_status = 0;  // 404 (no backend) / 502 / 503 / 504
    // One log line naming the backend, its URL (credentials removed) and the
    // reason.
    std::string message;
};

using SearchRun = Result<SearchAnswer, SearchFailure>;

struct HttpClientOptions {
    long timeout_ms = 1000;  // whole request; Crane used a 1 s socket timeout
    bool verify_tls = true;
    std::string ca_file;  // empty = the system store
    std::size_t max_body_bytes = kMaxSearchBodyBytes;
    // honour http_proxy / https_proxy / no_proxy from the environment, as urllib2 did
    bool use_env_proxy = true;
};

// Initialises libcurl once per process (curl_global_init). Call it from
// post_config or child_init, before threads start; run_search calls it too.
// Creates no handle, so it is safe before fork.
void search_global_init();

// GETs the backend (a fresh curl handle per call, redirects followed like
// urllib2) and parses the body. Status mapping:
//   timed out after connecting              -> 504
//   cannot resolve / connect (incl. a connect timeout, as urllib2's URLError
//   was), TLS handshake or verification failure, unsupported URL -> 503
//   HTTP status other than 200, a reply that is not HTTP, a body over
//   max_body_bytes, an unparsable body      -> 502
// kind None answers 404 with no request made (Crane's default backend).
// q is the decoded value of the request's q parameter (as Flask's
// request.args gave it); it is re-encoded here for the backend.
SearchRun run_search(SearchBackendKind kind, const std::string& url, std::string_view q,
                     const HttpClientOptions& options);

// The 200 body, byte-identical to Crane's flask.json.dumps (sort_keys):
// {"num_results": N, "query": Q, "results": [{"description": D,
// "is_official": B, "is_trusted": B, "name": S, "should_filter": B,
// "star_count": I}, ...]}
std::string render_search_response(std::string_view q, const std::vector<SearchResult>& results);

}  // namespace crane
