// Fuzz target `registry`: whole requests through Registry::handle over fixed
// metadata (written once to a temporary data dir and loaded by an IndexStore),
// in three configurations: plain redirects, CDN rewrite + token, serve content.
//
// Input: METHOD NUL PATH NUL QUERY NUL ACCEPT NUL HOST (missing fields: empty,
// HOST "reg.test:5000"), or without any NUL a request target "PATH[?QUERY]"
// sent as GET. PATH is what Apache hands over: already percent-decoded. A HOST
// that Apache would refuse with 400 (anything but a host name or [IPv6]
// literal with an optional :port) is replaced by the default.
//
// Invariants (abort() when broken):
//   - status is one of 200 201 302 400 404 405;
//   - every /v2/ error has the distribution spec's body with one of its codes,
//     and a served file names the 404 that answers when it is missing;
//   - open redirect: a 302's Location starts with the (absolute) URL of a repo
//     the client may read (relative URLs: on the request's own Host), or its
//     CDN rewrite, and what follows is an encoded
//     path (plus the CDN token) that cannot change scheme, host, query or
//     fragment, or add header lines or dot segments;
//   - serve content: files are only ever below content_dir/REPOSITORY/ of a
//     readable repo, with no dot, empty or encoded segment; no 302 at all;
//   - protected repos the client certificate does not entitle never show:
//     not in a Location, a file path or a body (admin pages, and bodies of
//     requests that name them, excepted);
//   - every other header is free of CR, LF and NUL.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/cdn.h"
#include "entitlement/entitlement_certificate.h"
#include "crane/registry.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_registry invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

constexpr std::string_view kDefaultHost = "reg.test:5000";

struct RepoFile {
    const char* name;
    const char* json;
};

// Readable: unprotected, or protected under /content/dist/secret (which the
// client certificate below entitles). "hidden" and "vault" are protected and
// not entitled: they must never be visible outside the admin pages.
const RepoFile kRepos[] = {
    {"busybox.json",
     R"({"version": 1, "repo-registry-id": "busybox", "repository": "busybox-pulp",
         "url": "http://cdn.example.com/pulp/docker/busybox/",
         "images": [{"id": "a1b2c3"}, {"id": "d4e5f6"}, {"id": "dot.dash-under_9"}],
         "tags": {"latest": "d4e5f6", "1.0": "a1b2c3"}})"},
    {"rhel.json",
     R"({"version": 1, "repo-registry-id": "redhat/rhel", "url": "http://cdn.example.com/pulp/docker/rhel",
         "images": [{"id": "a1b2c3"}, {"id": "ffff01"}], "tags": {"7.0": "ffff01"}})"},
    {"secret.json",
     R"({"version": 1, "repo-registry-id": "secret", "url": "https://cdn.example.com/content/dist/secret/",
         "protected": true, "images": [{"id": "5ec7e7"}], "tags": {"latest": "5ec7e7"}})"},
    {"hidden.json",
     R"({"version": 1, "repo-registry-id": "hidden", "repository": "hidden-pulp",
         "url": "https://cdn.example.com/content/dist/hidden/", "protected": true,
         "images": [{"id": "h1dd3n"}, {"id": "a1b2c3"}], "tags": {"latest": "h1dd3n"}})"},
    {"rel.json",
     R"({"version": 1, "repo-registry-id": "rel", "url": "/pulp/v1/rel/",
         "images": [{"id": "re1a71"}], "tags": {"latest": "re1a71"}})"},
    {"zoo.json",
     R"({"version": 4, "repo-registry-id": "zoo", "repository": "zoo-pulp",
         "url": "http://cdn.example.com/pulp/docker/v2/zoo/",
         "schema2_data": ["2.0", "latest"], "manifest_list_data": ["latest", "multi"],
         "manifest_list_amd64_tags": {
             "latest": ["sha256:aaaa020000000000000000000000000000000000000000000000000000000000", 2],
             "multi": ["sha256:bbbb010000000000000000000000000000000000000000000000000000000000", 1]}})"},
    {"oci.json",
     R"({"version": 4, "repo-registry-id": "oci", "url": "http://cdn.example.com/pulp/docker/v2/oci/",
         "schema2_data": [], "manifest_list_data": [], "manifest_list_amd64_tags": {}, "tags": ["a", "b", "c"],
         "oci_index_data": ["a", "sha256:3333333333333333333333333333333333333333333333333333333333333333"],
         "oci_manifest_data": ["b", "sha256:4444444444444444444444444444444444444444444444444444444444444444"],
         "referrers": {"sha256:4444444444444444444444444444444444444444444444444444444444444444": [
             {"mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555", "size": 7,
              "artifactType": "application/x-sig", "annotations": {"k": "v"}}]}})"},
    {"v2repo.json",
     R"({"version": 2, "repo-registry-id": "v2repo", "url": "http://cdn.example.com/pulp/docker/v2/v2repo/"})"},
    {"v3repo.json",
     R"({"version": 3, "repo-registry-id": "library/v3repo", "url": "http://cdn.example.com/pulp/v3repo",
         "schema2_data": ["latest"]})"},
    {"nested.json",
     R"({"version": 3, "repo-registry-id": "a/tags/b", "url": "http://cdn.example.com/pulp/nested/",
         "schema2_data": []})"},
    {"ent.json",
     R"({"version": 4, "repo-registry-id": "ent", "url": "https://cdn.example.com/content/dist/secret/v2/",
         "protected": true, "schema2_data": ["latest"], "manifest_list_data": [],
         "manifest_list_amd64_tags": {}})"},
    {"vault.json",
     R"({"version": 2, "repo-registry-id": "vault", "repository": "vault-pulp",
         "url": "https://cdn.example.com/content/dist/vault/", "protected": true})"},
    {"relv2.json", R"({"version": 2, "repo-registry-id": "relv2", "url": "/pulp/v2/relv2/"})"},
};

// Strings that only the non-entitled protected repos carry.
const char* const kSecrets[] = {"hidden", "h1dd3n", "vault"};

// A v1 entitlement certificate (order name .4.1, download path
// /content/dist/secret), self-signed with openssl req; valid 2026-2126.
constexpr const char* kClientCert = R"(-----BEGIN CERTIFICATE-----
MIIBzDCCAXOgAwIBAgIUG5FQWdB7rLzx13woapOqt6k5iHAwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNZnV6ei1lbnRpdGxlZDAgFw0yNjExMjcxNDEyNDFaGA8yMTI2
MTEwMzE0MTI0MVowGDEWMBQGA1UEAwwNZnV6ei1lbnRpdGxlZDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABJcbhD0QCGh420fynDpw/IJG0hi47v3VTbpuNtpmTdQ9
PgrpWBLbbYrZPl1dIuY5lKE0eLhyNOoMrYiIIC4gxqyjgZgwgZUwHQYDVR0OBBYE
FAOyNdgYvEug/PFAjxkRh57eznQvMB8GA1UdIwQYMBaAFAOyNdgYvEug/PFAjxkR
h57eznQvMA8GA1UdEwEB/wQFMAMBAf8wGgYKKwYBBAGSCAkEAQQMDApGdXp6IE9y
ZGVyMCYGDCsGAQQBkggJAmQBBgQWDBQvY29udGVudC9kaXN0L3NlY3JldDAKBggq
hkjOPQQDAgNHADBEAiBlRGZ9gmp7sYPC371GWQg3FigjjrDt++DhqLMC71uRlwIg
Zhc55hDcEezOskd4gpBkJsIFQNcYbPtYAXLc4YeDa0E=
-----END CERTIFICATE-----
)";

enum class Mode { Redirect, Cdn, ServeContent };

struct Setup {
    std::shared_ptr<crane::IndexStore> store;
    std::vector<std::unique_ptr<crane::Registry>> registries;  // indexed by Mode
    std::int64_t now = 0;
    // the url of every readable repo, v1 and v2
    std::vector<std::string> v1_urls, v2_urls;
    std::vector<std::string> v1_content_prefixes, v2_content_prefixes;
    crane::CdnSettings cdn;
};

// The repo's URL as a redirect base: relative ones on the request's Host.
std::string absolute(std::string_view url, std::string_view host) {
    std::string out;
    if (url.find("://") == std::string_view::npos) {
        out = "http://" + std::string(host);
        if (url.substr(0, 1) != "/") out += '/';
    }
    out += url;
    if (out.back() != '/') out += '/';
    return out;
}

const Setup& setup() {
    static const Setup s = [] {
        Setup st;
        char dir_template[] = "/tmp/crane-fuzz-registry-XXXXXX";
        const char* dir = mkdtemp(dir_template);
        if (!dir) fail("mkdtemp", dir_template);
        for (const RepoFile& f : kRepos) {
            std::ofstream(std::string(dir) + "/" + f.name, std::ios::binary) << f.json;
        }
        st.store = std::make_shared<crane::IndexStore>(dir, nullptr);
        crane::ReloadStats stats;
        st.store->reload(&stats);
        for (const RepoFile& f : kRepos) unlink((std::string(dir) + "/" + f.name).c_str());
        rmdir(dir);
        if (stats.failed != 0 || stats.v1_repos + stats.v2_repos != std::size(kRepos)) {
            fail("fixed metadata did not load", dir);
        }

        auto parsed = crane::EntitlementCertificate::from_pem(kClientCert);
        const auto cert = parsed ? *parsed : nullptr;
        if (!cert || cert->major_version() != 1 || !cert->entitles("/content/dist/secret")) {
            fail("fixed client certificate is not an entitlement", kClientCert);
        }
        st.now = cert->not_before() + 60;

        auto snapshot = st.store->current();
        for (const crane::V1View r : snapshot->v1_sorted()) {
            if (r.is_protected() && !cert->entitles(r.url_path())) continue;
            st.v1_urls.emplace_back(r.url());
            st.v1_content_prefixes.push_back("/srv/v1/" + std::string(r.repository()) + "/");
        }
        crane::Config cdn_config;
        cdn_config.url_match = "http://cdn.example.com/";
        cdn_config.url_replace = "https://edge.example.net/";
        cdn_config.url_auth_secret = "00ff10";
        st.cdn.url_match = cdn_config.url_match;
        st.cdn.url_replace = cdn_config.url_replace;
        for (const crane::V2View r : snapshot->v2_sorted()) {
            if (r.is_protected() && !cert->entitles(r.url_path())) continue;
            st.v2_urls.emplace_back(r.url());
            st.v2_content_prefixes.push_back("/srv/v2/" + std::string(r.repository()) + "/");
        }

        crane::Config serve_config;
        serve_config.serve_content = true;
        serve_config.content_dir_v1 = "/srv/v1/";
        serve_config.content_dir_v2 = "/srv/v2";
        for (const crane::Config& c : {crane::Config(), cdn_config, serve_config}) {
            st.registries.push_back(
                std::make_unique<crane::Registry>(c, st.store, crane::RegistryOptions(), nullptr));
        }
        return st;
    }();
    return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool is_hex_upper(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// The part of a Location after the repo URL: path characters only, '%' only
// as %XX, no "." or ".." segment.
void check_location_path(std::string_view path, std::string_view location) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto c = static_cast<unsigned char>(path[i]);
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                           std::string_view("-._~:@+=,!$*/").find(static_cast<char>(c)) != std::string_view::npos;
        if (plain) continue;
        if (c == '%' && i + 2 < path.size() && is_hex_upper(path[i + 1]) && is_hex_upper(path[i + 2])) {
            i += 2;
            continue;
        }
        fail("unencoded byte in the Location path", location);
    }
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = path.find('/', start);
        const std::string_view seg = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (seg == "." || seg == "..") fail("dot segment in the Location path", location);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
}

// The CDN token Registry adds to v2 redirects: "?_auth_=exp=N~hmac=HEX64".
void check_cdn_token(std::string_view token, std::int64_t now, std::string_view location) {
    const std::string want = "?_auth_=exp=" + std::to_string(now + 300) + "~hmac=";
    if (!starts_with(token, want) || token.size() != want.size() + 64) fail("bad CDN token", location);
    for (char c : token.substr(want.size())) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) fail("bad CDN token", location);
    }
}

void check_location(const Setup& s, Mode mode, const crane::Request& req, const std::string& location) {
    const bool v2 = starts_with(req.path, "/v2/");
    std::string match;
    for (const auto& url : v2 ? s.v2_urls : s.v1_urls) {
        std::string p = absolute(url, req.host);
        if (v2 && mode == Mode::Cdn) p = crane::cdn_rewrite(p, s.cdn);
        if (starts_with(location, p) && p.size() > match.size()) match = std::move(p);
    }
    if (match.empty()) fail("open redirect: Location outside every readable repo URL", location);
    std::string_view rest = std::string_view(location).substr(match.size());
    if (mode == Mode::Cdn && v2) {
        const std::size_t q = rest.find('?');
        if (q == std::string_view::npos) fail("v2 CDN redirect without a token", location);
        check_cdn_token(rest.substr(q), s.now, location);
        rest = rest.substr(0, q);
    }
    if (rest.empty()) fail("Location is the bare repo URL", location);
    check_location_path(rest, location);
}

void check_file_path(const Setup& s, std::string_view path, const std::string& file) {
    const auto& prefixes = starts_with(path, "/v2/") ? s.v2_content_prefixes : s.v1_content_prefixes;
    const std::string* match = nullptr;
    for (const auto& p : prefixes) {
        if (starts_with(file, p)) match = &p;
    }
    if (!match) fail("served file outside the readable repos' content dirs", file);
    const std::string_view rest = std::string_view(file).substr(match->size());
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = rest.find('/', start);
        const std::string_view seg = rest.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (seg.empty() || seg == "." || seg == "..") fail("unsafe segment in a served file path", file);
        for (char c : seg) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7F || c == '\\' || c == '%') fail("unsafe byte in a served file path", file);
        }
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
}

void check_v2_error(const crane::Response& r) {
    static const char* const codes[] = {"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "UNSUPPORTED",
                                        "DIGEST_INVALID", "NAME_INVALID", "PAGINATION_NUMBER_INVALID"};
    const std::string prefix = R"({"errors": [{"code": ")";
    if (r.body.compare(0, prefix.size(), prefix) != 0) fail("a v2 error without the error body", r.body);
    const std::size_t end = r.body.find('"', prefix.size());
    const std::string code = r.body.substr(prefix.size(), end - prefix.size());
    if (std::find(std::begin(codes), std::end(codes), code) == std::end(codes)) fail("an unknown v2 error code", code);
    if (r.content_type != "application/json") fail("a v2 error that is not JSON", r.content_type);
}

void check(const Setup& s, Mode mode, const crane::Request& req, const crane::Response& r) {
    switch (r.status) {
        case 200: case 201: case 302: case 400: case 404: case 405: break;
        default: fail("unexpected status", std::to_string(r.status));
    }
    const bool admin = starts_with(req.path, "/crane/");
    for (const auto& h : r.headers) {
        if (h.name == "X-Docker-Endpoints") {
            if (h.value != req.host) fail("X-Docker-Endpoints is not the Host", h.value);
            continue;
        }
        if (h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
            fail("CR, LF or NUL in a header", h.value);
        }
    }
    const std::string* location = r.header("Location");
    if (r.status == 302) {
        if (mode == Mode::ServeContent) fail("a redirect in serve-content mode", req.path);
        if (!location) fail("302 without Location", req.path);
        check_location(s, mode, req, *location);
    } else if (location) {
        fail("Location on a non-302", *location);
    }
    if (starts_with(req.path, "/v2/") && r.status >= 400) check_v2_error(r);
    if (!r.file_path.empty()) {
        if (mode != Mode::ServeContent || r.status != 200) fail("a file outside serve-content mode", r.file_path);
        if (starts_with(req.path, "/v2/")) {
            if (!r.if_missing || r.if_missing->status != 404) fail("a served file without its 404", r.file_path);
            check_v2_error(*r.if_missing);
        }
        check_file_path(s, req.path, r.file_path);
    }
    // (a Location is covered by the prefix check; a body may only echo the request)
    if (!admin) {
        for (std::string_view secret : kSecrets) {
            const bool echoed = req.path.find(secret) != std::string_view::npos ||
                                req.query.find(secret) != std::string_view::npos ||
                                req.accept.find(secret) != std::string_view::npos;
            if (!echoed && r.body.find(secret) != std::string::npos) fail("a non-entitled protected repo shows", r.body);
        }
    }
}

// What Apache lets through as a Host header (else it answers 400 itself):
// a host name or an [IPv6] literal, optionally with :PORT.
bool apache_accepts_host(std::string_view host) {
    std::size_t end = host.size();
    if (!host.empty() && host[0] == '[') {
        end = host.find(']');
        if (end == std::string_view::npos || end < 2) return false;
        for (char c : host.substr(1, end - 1)) {
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
        }
        ++end;
    } else {
        end = host.find(':');
        if (end == std::string_view::npos) end = host.size();
        if (end == 0) return false;
        for (char c : host.substr(0, end)) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
        }
    }
    if (end == host.size()) return true;
    if (host[end] != ':') return false;
    for (char c : host.substr(end + 1)) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Setup& s = setup();
    const std::string input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
        const std::size_t nul = input.find('\0', start);
        fields.push_back(std::string_view(input).substr(start, nul == std::string::npos ? nul : nul - start));
        if (nul == std::string::npos) break;
        start = nul + 1;
    }
    crane::Request req;
    if (fields.size() == 1) {
        const std::size_t q = fields[0].find('?');
        req.method = "GET";
        req.path = fields[0].substr(0, q);
        if (q != std::string_view::npos) req.query = fields[0].substr(q + 1);
    } else {
        req.method = fields[0];
        req.path = fields[1];
        if (fields.size() > 2) req.query = fields[2];
        if (fields.size() > 3) req.accept = fields[3];
    }
    req.host = fields.size() > 4 && apache_accepts_host(fields[4]) ? fields[4] : kDefaultHost;
    req.now = s.now;
    req.client_certificate = [] { return crane::ClientCertificate{kClientCert, "SUCCESS"}; };

    for (std::size_t m = 0; m < s.registries.size(); ++m) {
        const crane::Response r = s.registries[m]->handle(req);
        check(s, static_cast<Mode>(m), req, r);
    }
    return 0;
}
