// Search backends: backend choice, request URLs in Crane's quoting, the
// request/parse/status pipeline, and the 200 body (see crane/search.h).
#include "crane/search.h"

#include <utility>

#include "crane/json_writer.h"
#include "search/search_internal.h"
#include "util/url.h"

namespace crane {

namespace {

bool is_alnum(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Python 2 urllib's always_safe set plus `extra_safe`; '~' is not in it.
void append_quoted(std::string& out, std::string_view s, std::string_view extra_safe,
                   bool space_as_plus) {
    auto safe = [extra_safe](unsigned char c) {
        return is_alnum(c) || c == '_' || c == '.' || c == '-' ||
               extra_safe.find(static_cast<char>(c)) != std::string_view::npos;
    };
    append_percent_encoded(out, s, safe, space_as_plus);
}

std::string quote_plus(std::string_view s) {
    std::string out;
    append_quoted(out, s, "", true);
    return out;
}

}  // namespace

SearchBackendKind choose_search_backend(std::string_view gsa_url, std::string_view solr_url) {
    if (!gsa_url.empty()) return SearchBackendKind::Gsa;
    if (!solr_url.empty()) return SearchBackendKind::Solr;
    return SearchBackendKind::None;
}

const char* search_backend_name(SearchBackendKind kind) {
    switch (kind) {
        case SearchBackendKind::Gsa:
            return "gsa";
        case SearchBackendKind::Solr:
            return "solr";
        case SearchBackendKind::None:
            break;
    }
    return "none";
}

std::string percent_encode_query(std::string_view q) {
    std::string out;
    out.reserve(q.size() * 3);
    append_quoted(out, q, "/", false);
    return out;
}

std::string gsa_request_url(std::string_view base_url, std::string_view q) {
    std::string_view rest = base_url;
    std::string_view fragment;
    if (auto hash = rest.find('#'); hash != std::string_view::npos) {
        fragment = rest.substr(hash + 1);
        rest = rest.substr(0, hash);
    }
    std::string_view query;
    if (auto mark = rest.find('?'); mark != std::string_view::npos) {
        query = rest.substr(mark + 1);
        rest = rest.substr(0, mark);
    }

    // parse_qs: pairs split on '&' and ';', no '=' or a blank value dropped,
    // repeated keys collected in one list.
    std::vector<std::pair<std::string, std::vector<std::string>>> params;
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find_first_of("&;", start);
        if (end == std::string_view::npos) end = query.size();
        std::string_view pair = query.substr(start, end - start);
        start = end + 1;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq + 1 == pair.size()) continue;
        std::string key = unquote_plus(pair.substr(0, eq));
        if (key == "q") continue;  // replaced by the search query
        std::string value = unquote_plus(pair.substr(eq + 1));
        auto it = params.begin();
        while (it != params.end() && it->first != key) ++it;
        if (it == params.end()) {
            params.emplace_back(std::move(key), std::vector<std::string>{std::move(value)});
        } else {
            it->second.push_back(std::move(value));
        }
    }

    std::string out(rest);
    out += '?';
    for (const auto& [key, values] : params) {
        for (const auto& value : values) {
            out += quote_plus(key);
            out += '=';
            out += quote_plus(value);
            out += '&';
        }
    }
    out += "q=";
    out += quote_plus(q);
    if (!fragment.empty()) {
        out += '#';
        out += fragment;
    }
    return out;
}

std::string solr_request_url(std::string_view url_template, std::string_view q) {
    const std::string encoded = percent_encode_query(q);
    std::string out;
    out.reserve(url_template.size() + encoded.size());
    for (std::size_t i = 0; i < url_template.size();) {
        std::string_view rest = url_template.substr(i);
        if (rest.substr(0, 3) == "{0}") {
            out += encoded;
            i += 3;
        } else if (rest.substr(0, 2) == "{{" || rest.substr(0, 2) == "}}") {
            out += rest[0];
            i += 2;
        } else {
            out += rest[0];
            ++i;
        }
    }
    return out;
}

bool is_valid_solr_url_template(std::string_view url_template) {
    bool has_field = false;
    for (std::size_t i = 0; i < url_template.size();) {
        std::string_view rest = url_template.substr(i);
        if (rest.substr(0, 3) == "{0}") {
            has_field = true;
            i += 3;
        } else if (rest.substr(0, 2) == "{{" || rest.substr(0, 2) == "}}") {
            i += 2;
        } else if (rest[0] == '{' || rest[0] == '}') {
            return false;
        } else {
            ++i;
        }
    }
    return has_field;
}

Result<std::vector<SearchResult>> parse_gsa_xml(std::string_view body) {
    return search_detail::parse_gsa_xml(body);
}

Result<std::vector<SearchResult>> parse_solr_json(std::string_view body) {
    return search_detail::parse_solr_json(body);
}

SearchRun run_search(SearchBackendKind kind, const std::string& url, std::string_view q,
                     const HttpClientOptions& options) {
    if (kind == SearchBackendKind::None) {
        return SearchRun::failure(SearchFailure{404, "no search backend configured"});
    }
    const std::string request_url =
        kind == SearchBackendKind::Gsa ? gsa_request_url(url, q) : solr_request_url(url, q);
    auto fail = [&](int status, std::string_view reason) {
        std::string message = std::string("search backend ") + search_backend_name(kind) + " (" +
                              search_detail::redact_url(request_url) + "): ";
        message += reason;
        return SearchRun::failure(SearchFailure{status, std::move(message)});
    };

    search_detail::HttpGetResult got = search_detail::http_get(request_url, options);
    if (got.gateway_status != 0) return fail(got.gateway_status, got.reason);
    if (got.http_code != 200) {
        return fail(502, "answered HTTP status " + std::to_string(got.http_code));
    }

    bool cut = false;
    auto results = kind == SearchBackendKind::Gsa ? search_detail::parse_gsa_xml(got.body, &cut)
                                                  : search_detail::parse_solr_json(got.body, &cut);
    if (!results) return fail(502, "unparsable body: " + results.error());
    SearchAnswer answer;
    answer.results = std::move(*results);
    if (cut) {
        answer.notice = std::string("search backend ") + search_backend_name(kind) + " (" +
                        search_detail::redact_url(request_url) + "): answer cut to its first " +
                        std::to_string(answer.results.size()) + " results (limits: " +
                        std::to_string(kMaxSearchResults) + " results, " +
                        std::to_string(kMaxSearchResultBytes) +
                        " bytes of names and descriptions)";
    }
    return answer;
}

std::string render_search_response(std::string_view q, const std::vector<SearchResult>& results) {
    json::Writer w;
    w.begin_object();
    w.key("num_results").integer(static_cast<std::int64_t>(results.size()));
    w.key("query").string(q);
    w.key("results").begin_array();
    for (const SearchResult& r : results) {
        w.begin_object();
        w.key("description");
        if (r.description) {
            w.string(*r.description);
        } else {
            w.null();
        }
        w.key("is_official").boolean(r.is_official);
        w.key("is_trusted").boolean(r.is_trusted);
        w.key("name").string(r.name);
        w.key("should_filter").boolean(r.should_filter);
        w.key("star_count").integer(r.star_count);
        w.end_object();
    }
    w.end_array();
    w.end_object();
    return w.take();
}

}  // namespace crane
