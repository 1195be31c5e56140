// Private pieces of the search backends (search*.cpp): parsers that say why a
// body was refused, and the libcurl GET. Not part of the public API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crane/search.h"

namespace crane::search_detail {

// Collects parsed results within kMaxSearchResults / kMaxSearchResultBytes.
class ResultList {
public:
    // false (and nothing is added) when the result would not fit; from then
    // on `cut` is true and the parser stops.
    bool fits(std::string_view name, std::string_view description) {
        std::size_t size = name.size() + description.size();
        if (cut || results.size() >= kMaxSearchResults || size > kMaxSearchResultBytes - bytes) {
            cut = true;
            return false;
        }
        bytes += size;
        return true;
    }
    std::vector<SearchResult> results;
    bool cut = false;

private:
    std::size_t bytes = 0;
};

// As the public parsers (the error says why, for the log line); `cut` (if
// given) says whether results were dropped to stay within the limits.
Result<std::vector<SearchResult>> parse_gsa_xml(std::string_view body, bool* cut = nullptr);
Result<std::vector<SearchResult>> parse_solr_json(std::string_view body, bool* cut = nullptr);

struct HttpGetResult {
    int gateway_status = 0;  // 0: a response arrived; else 502 / 503 / 504
    long http_code = 0;      // the final response's status (after redirects)
    std::string body;
    std::string reason;  // why gateway_status != 0
};

HttpGetResult http_get(const std::string& url, const HttpClientOptions& options);

// url with any user:password@ replaced by "***@" and every query value by
// "***" (api keys travel there), for logs.
std::string redact_url(std::string_view url);

}  // namespace crane::search_detail
