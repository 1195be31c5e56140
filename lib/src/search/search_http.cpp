// The search backends' HTTP GET with libcurl: one easy handle per call (never
// shared, never created before fork), bounded time and body size, and curl's
// errors mapped to the gateway statuses Crane answered.
#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <new>

#include "search/search_internal.h"

namespace crane {

void search_global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace search_detail {

namespace {

struct Sink {
    std::string body;
    std::size_t max_bytes = 0;
    bool too_large = false;
    bool out_of_memory = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto& sink = *static_cast<Sink*>(user);
    const std::size_t n = size * count;
    if (n > sink.max_bytes - sink.body.size()) {
        sink.too_large = true;
        return 0;  // curl stops with CURLE_WRITE_ERROR
    }
    try {
        sink.body.append(data, n);
    } catch (const std::bad_alloc&) {
        sink.out_of_memory = true;
        return 0;
    }
    return n;
}

struct CurlDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

bool is_connect_failure(CURLcode rc) {
    switch (rc) {
        case CURLE_URL_MALFORMAT:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
            return true;
        default:
            return false;
    }
}

// curl says CURLE_UNSUPPORTED_PROTOCOL both for such a URL and for an
// HTTP/0.9 reply, so the scheme is checked before any request.
bool is_http_url(std::string_view url) {
    auto starts_with_nocase = [&](std::string_view prefix) {
        if (url.size() < prefix.size()) return false;
        for (std::size_t i = 0; i < prefix.size(); ++i) {
            char c = url[i];
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (c != prefix[i]) return false;
        }
        return true;
    };
    return starts_with_nocase("http://") || starts_with_nocase("https://");
}

}  // namespace

namespace {

// Query values (api_key=..., tokens) become "***"; names stay so the line
// still says which parameters were sent. The fragment is never sent and
// stays as it is.
void append_redacted_query(std::string& out, std::string_view query) {
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find_first_of("&;", start);
        if (end == std::string_view::npos) end = query.size();
        std::string_view pair = query.substr(start, end - start);
        auto eq = pair.find('=');
        out += pair.substr(0, eq);
        if (eq != std::string_view::npos) out += "=***";
        if (end < query.size()) out += query[end];
        start = end + 1;
    }
}

}  // namespace

std::string redact_url(std::string_view url) {
    std::string_view fragment;
    if (auto hash = url.find('#'); hash != std::string_view::npos) {
        fragment = url.substr(hash);
        url = url.substr(0, hash);
    }
    std::string_view query;
    bool has_query = false;
    if (auto mark = url.find('?'); mark != std::string_view::npos) {
        query = url.substr(mark + 1);
        url = url.substr(0, mark);
        has_query = true;
    }
    std::string out;
    auto scheme_end = url.find("://");
    std::size_t host_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    std::size_t authority_end = url.find('/', host_start);
    if (authority_end == std::string_view::npos) authority_end = url.size();
    std::size_t at = scheme_end == std::string_view::npos || authority_end == host_start
                         ? std::string_view::npos
                         : url.rfind('@', authority_end - 1);
    if (at == std::string_view::npos || at < host_start) {
        out += url;
    } else {
        out += url.substr(0, host_start);
        out += "***";
        out += url.substr(at);
    }
    if (has_query) {
        out += '?';
        append_redacted_query(out, query);
    }
    out += fragment;
    return out;
}

HttpGetResult http_get(const std::string& url, const HttpClientOptions& options) {
    search_global_init();
    HttpGetResult result;
    if (!is_http_url(url)) {
        result.gateway_status = 503;
        result.reason = "cannot connect: not an http or https URL";
        return result;
    }
    std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
    if (!handle) {
        result.gateway_status = 503;
        result.reason = "cannot create a curl handle";
        return result;
    }
    CURL* h = handle.get();
    Sink sink;
    sink.max_bytes = options.max_body_bytes;
    char curl_error[CURL_ERROR_SIZE] = {};

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
                     static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    // urllib2 followed up to 10 redirects
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, options.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, options.timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
    if (!options.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_body_bytes));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mod_crane");
    if (!options.use_env_proxy) curl_easy_setopt(h, CURLOPT_PROXY, "");  // "" = no proxy at all

    const CURLcode rc = curl_easy_perform(h);
    auto reason = [&](std::string_view what) {
        std::string r(what);
        r += ": ";
        r += curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc);
        return r;
    };
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.http_code);
        result.body = std::move(sink.body);
        return result;
    }
    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        result.gateway_status = 502;
        result.reason = "body larger than " + std::to_string(options.max_body_bytes) + " bytes";
    } else if (sink.out_of_memory) {
        result.gateway_status = 502;
        result.reason = "out of memory reading the body";
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        // urllib2 reported a timeout while connecting (TLS included) as a
        // URLError (503); one while waiting for the answer as socket.timeout (504).
        curl_off_t pretransfer = 0;
        curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
        result.gateway_status = pretransfer == 0 ? 503 : 504;
        result.reason = reason(pretransfer == 0 ? "cannot connect" : "timed out");
    } else if (is_connect_failure(rc)) {
        result.gateway_status = 503;
        result.reason = reason("cannot connect");
    } else {
        result.gateway_status = 502;
        result.reason = reason("bad reply");
    }
    return result;
}

}  // namespace search_detail

}  // namespace crane
