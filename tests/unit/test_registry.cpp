// The registry's answers, driven by data: request -> exact status,
// headers and body, on the test metadata in tests/data/metadata.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "crane/registry.h"
#include "entitlement_test_helpers.h"

using namespace crane;

namespace {

const std::string kS2 = "application/vnd.docker.distribution.manifest.v2+json";
const std::string kList = "application/vnd.docker.distribution.manifest.list.v2+json";
const std::string kNotFoundV2 = R"({"errors": [{"code": "404", "message": "Not Found"}]})";

std::shared_ptr<IndexStore> test_store() {
    static auto store = [] {
        auto s = std::make_shared<IndexStore>(std::string(CRANE_TEST_DATA) + "/metadata", 60, nullptr);
        s->reload();
        return s;
    }();
    return store;
}

Response ask(const Registry& reg, std::string_view method, std::string_view path, std::string_view query = "",
             std::string_view accept = "") {
    Request req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.accept = accept;
    req.host = "reg.test:5000";
    req.now = 1700000000;
    return reg.handle(req);
}

Registry make(Config c = Config()) { return Registry(std::move(c), test_store(), RegistryOptions(), nullptr); }

std::string hdr(const Response& r, std::string_view name) {
    const std::string* v = r.header(name);
    return v ? *v : "<absent>";
}

}  // namespace

TEST_CASE("v1 endpoints answer as Crane did", "[registry][v1]") {
    Registry reg = make();
    struct Row {
        const char* method;
        const char* path;
        int status;
        const char* body;
        const char* content_type;
    };
    const Row rows[] = {
        {"GET", "/v1/_ping", 200, "true", "application/json"},
        {"GET", "/v1/users", 200, "\"OK\"", "application/json"},
        {"GET", "/v1/users/", 200, "\"OK\"", "application/json"},
        {"POST", "/v1/users/", 201, "\"User Created\"", "application/json"},
        {"POST", "/v1/users", 201, "\"User Created\"", "application/json"},
        {"GET", "/v1/repositories/busybox/images", 200, R"([{"id": "a1b2c3"}, {"id": "d4e5f6", "size": 42}])",
         "application/json"},
        {"GET", "/v1/repositories/library/busybox/images", 200,
         R"([{"id": "a1b2c3"}, {"id": "d4e5f6", "size": 42}])", "application/json"},
        {"GET", "/v1/repositories/busybox/tags", 200, R"({"1.0": "a1b2c3", "latest": "d4e5f6"})", "application/json"},
        {"GET", "/v1/repositories/redhat/rhel/tags", 200, R"({"7.0": "ffff01", "caf\u00e9": "a1b2c3"})",
         "application/json"},
        {"GET", "/v1/repositories/busybox/tags/latest", 200, "\"d4e5f6\"", "application/json"},
        {"GET", "/v1/repositories/library/busybox/tags/1.0", 200, "\"a1b2c3\"", "application/json"},
        {"GET", "/v1/repositories/busybox/tags/nope", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/repositories/a/b/c/tags", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/repositories/library/redhat/rhel/tags", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/repositories/unknown/tags", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/repositories/secret/tags", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/images/a1b2c3/bogus", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/images/nope/json", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/images/5ec7e7/json", 404, "Not Found", "text/html; charset=utf-8"},
        {"GET", "/v1/search", 400, "parameter \"q\" is required", "text/html; charset=utf-8"},
        {"GET", "/v1/unknown", 404, "Not Found", "text/html; charset=utf-8"},
        {"PUT", "/v1/repositories/busybox/tags", 405, "Method Not Allowed", "text/html; charset=utf-8"},
        {"GET", "/elsewhere", 404, "Not Found", "text/html; charset=utf-8"},
    };
    for (const auto& row : rows) {
        INFO(row.method << " " << row.path);
        Response r = ask(reg, row.method, row.path);
        CHECK(r.status == row.status);
        CHECK(r.body == row.body);
        CHECK(r.content_type == row.content_type);
        if (std::string_view(row.path).substr(0, 4) == "/v1/") {
            CHECK(hdr(r, "X-Docker-Registry-Version") == "0.6.6");
            CHECK(hdr(r, "X-Docker-Registry-Config") == "common");
        }
    }
    CHECK(hdr(ask(reg, "GET", "/v1/_ping"), "X-Docker-Registry-Standalone") == "True");
    CHECK(hdr(ask(reg, "GET", "/v1/repositories/busybox/images"), "X-Docker-Endpoints") == "reg.test:5000");
    CHECK(ask(reg, "GET", "/v1/search", "q=").status == 400);
    CHECK(ask(reg, "GET", "/v1/search", "q=busy").status == 404);
}

TEST_CASE("the configured endpoint replaces the Host in X-Docker-Endpoints", "[registry][v1]") {
    Config c;
    c.endpoint = "cdn.example.com:443";
    Registry reg = make(c);
    CHECK(hdr(ask(reg, "GET", "/v1/repositories/busybox/images"), "X-Docker-Endpoints") == "cdn.example.com:443");
}

TEST_CASE("without a Host header X-Docker-Endpoints names the server itself", "[registry][v1]") {
    Request req;
    req.method = "GET";
    req.path = "/v1/repositories/busybox/images";
    req.server_host = "registry.example.com:8080";
    CHECK(hdr(make().handle(req), "X-Docker-Endpoints") == "registry.example.com:8080");
    req.host = "reg.test:5000";  // a Host header wins
    CHECK(hdr(make().handle(req), "X-Docker-Endpoints") == "reg.test:5000");
    Config c;
    c.endpoint = "cdn.example.com:443";  // and the configured endpoint wins over both
    CHECK(hdr(make(c).handle(req), "X-Docker-Endpoints") == "cdn.example.com:443");
}

TEST_CASE("v1 image files redirect to the first readable repo holding the image", "[registry][v1]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/v1/images/a1b2c3/json");
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/busybox/a1b2c3/json");
    r = ask(reg, "GET", "/v1/images/ffff01/layer");
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/rhel/ffff01/layer");
    r = ask(reg, "HEAD", "/v1/images/ffff01/ancestry");
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/rhel/ffff01/ancestry");
}

TEST_CASE("v2 redirects follow the negotiation table", "[registry][v2]") {
    Registry reg = make();
    struct Row {
        const char* path;
        std::string accept;
        const char* location;
    };
    const std::string base = "http://cdn.example.com/pulp/docker/v2/";
    const Row rows[] = {
        {"/v2/v2repo/manifests/latest", kS2, "v2repo/manifests/latest"},
        {"/v2/v3old/manifests/latest", kS2, "v3old/manifests/1/latest"},
        {"/v2/v3repo/manifests/latest", kS2, "v3repo/manifests/2/latest"},
        {"/v2/v3repo/manifests/latest", "", "v3repo/manifests/1/latest"},
        {"/v2/zoo/manifests/latest", kList + ", " + kS2, "zoo/manifests/list/latest"},
        {"/v2/zoo/manifests/latest", kS2,
         "zoo/manifests/2/sha256:aaaa000000000000000000000000000000000000000000000000000000000002"},
        {"/v2/zoo/manifests/latest", "", "zoo/manifests/1/latest"},
        {"/v2/zoo/manifests/multi", "",
         "zoo/manifests/1/sha256:bbbb000000000000000000000000000000000000000000000000000000000001"},
        {"/v2/zoo/manifests/2.0", kS2 + ";q=0.9", "zoo/manifests/2/2.0"},
        {"/v2/zoo/blobs/sha256:abc", "", "zoo/blobs/sha256:abc"},
        {"/v2/zoo/tags/list", "", "zoo/tags/list"},
        {"/v2/ns/app/manifests/latest", "", "ns-app/manifests/latest"},
        {"/v2/org/tags/app/tags/list", "", "org-tags-app/tags/list"},
    };
    for (const auto& row : rows) {
        INFO(row.path << " Accept: " << row.accept);
        Response r = ask(reg, "GET", row.path, "", row.accept);
        CHECK(r.status == 302);
        CHECK(hdr(r, "Location") == base + row.location);
        CHECK(hdr(r, "Docker-Distribution-API-Version") == "registry/2.0");
        CHECK(r.body.empty());
    }
}

TEST_CASE("v2 errors have the JSON error shape and the API version header", "[registry][v2]") {
    Registry reg = make();
    for (const char* path : {"/v2/nope/manifests/latest", "/v2/private/secret/manifests/latest", "/v2/zoo",
                             "/v2/zoo/manifests", "/v2/zoo/manifests/a/b", "/v2/zoo/blobs/../x"}) {
        INFO(path);
        Response r = ask(reg, "GET", path);
        CHECK(r.status == 404);
        CHECK(r.body == kNotFoundV2);
        CHECK(r.content_type == "application/json");
        CHECK(hdr(r, "Docker-Distribution-API-Version") == "registry/2.0");
    }
    for (const char* method : {"PUT", "POST", "PATCH", "DELETE"}) {
        Response r = ask(reg, method, "/v2/zoo/blobs/uploads/");
        CHECK(r.status == 405);
        CHECK(r.body == R"({"errors": [{"code": "405", "message": "Method Not Allowed"}]})");
        CHECK(hdr(r, "Docker-Distribution-API-Version") == "registry/2.0");
    }
    Response ping = ask(reg, "GET", "/v2/");
    CHECK(ping.status == 200);
    CHECK(ping.body == "{}");
    CHECK(ping.content_type == "application/json");
}

TEST_CASE("served v1 image files: ancestry and json are JSON, the layer is opaque", "[registry][v1]") {
    Config c;
    c.serve_content = true;
    c.content_dir_v1 = "/srv/v1";
    Registry reg = make(c);
    for (const auto& [file, type] : {std::pair<std::string, std::string>{"ancestry", "application/json"},
                                     {"json", "application/json"},
                                     {"layer", "application/octet-stream"}}) {
        INFO(file);
        Response r = ask(reg, "GET", "/v1/images/ffff01/" + file);
        CHECK(r.status == 200);
        CHECK(r.file_path == "/srv/v1/redhat/rhel/ffff01/" + file);  // repository defaults to the id
        CHECK(r.content_type == type);
        CHECK(hdr(r, "X-Docker-Registry-Version") == "0.6.6");
    }
}

TEST_CASE("the catalog lists readable v2 repos with paging", "[registry][v2]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/v2/_catalog");
    CHECK(r.body == R"({"repositories": ["ns/app", "org/tags/app", "v2repo", "v3old", "v3repo", "zoo"]})");
    CHECK(hdr(r, "Link") == "<absent>");
    r = ask(reg, "GET", "/v2/_catalog", "n=2");
    CHECK(r.body == R"({"repositories": ["ns/app", "org/tags/app"]})");
    CHECK(hdr(r, "Link") == "</v2/_catalog?last=org%2Ftags%2Fapp&n=2>; rel=\"next\"");
    r = ask(reg, "GET", "/v2/_catalog", "last=org%2Ftags%2Fapp&n=2");
    CHECK(r.body == R"({"repositories": ["v2repo", "v3old"]})");
    r = ask(reg, "GET", "/v2/_catalog", "last=v3old&n=2");
    CHECK(r.body == R"({"repositories": ["v3repo", "zoo"]})");
    CHECK(hdr(r, "Link") == "<absent>");
    r = ask(reg, "GET", "/v2/_catalog", "n=0");
    CHECK(r.body == R"({"repositories": []})");
    CHECK(ask(reg, "GET", "/v2/_catalog", "n=x").status == 400);
    CHECK(ask(reg, "GET", "/v2/_catalog", "n=-1").status == 400);
}

TEST_CASE("CDN rewriting and tokens apply to v2 redirects only", "[registry][cdn]") {
    Config c;
    c.url_match = "cdn.example.com";
    c.url_replace = "edge.example.net";
    c.url_auth_secret = "00112233";
    c.url_auth_param = "tok";
    Registry reg = make(c);
    Response r = ask(reg, "GET", "/v2/zoo/tags/list");
    const std::string& loc = hdr(r, "Location");
    CHECK(loc.rfind("http://edge.example.net/pulp/docker/v2/zoo/tags/list?tok=exp=1700000300~hmac=", 0) == 0);
    r = ask(reg, "GET", "/v1/images/a1b2c3/json");
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/busybox/a1b2c3/json");
}

TEST_CASE("admin pages list repositories as JSON or self-contained HTML", "[registry][admin]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/crane/repositories/v2", "", "application/json");
    CHECK(r.content_type == "application/json");
    CHECK(r.body == R"({"ns/app": {"protected": false}, "org/tags/app": {"protected": false}, )"
                    R"("private/secret": {"protected": true}, "v2repo": {"protected": false}, )"
                    R"("v3old": {"protected": false}, "v3repo": {"protected": false}, "zoo": {"protected": false}})");
    r = ask(reg, "GET", "/crane/repositories", "", "application/json");
    CHECK(r.body ==
          R"({"busybox": {"image_ids": ["a1b2c3", "d4e5f6"], "protected": false, "tags": {"1.0": "a1b2c3", "latest": "d4e5f6"}}, )"
          R"("redhat/rhel": {"image_ids": ["a1b2c3", "ffff01"], "protected": false, "tags": {"7.0": "ffff01", "caf\u00e9": "a1b2c3"}}, )"
          R"("secret": {"image_ids": ["5ec7e7", "a1b2c3"], "protected": true, "tags": {"latest": "5ec7e7"}}})");
    CHECK(ask(reg, "GET", "/crane/repositories/v1", "", "application/json").body == r.body);
    r = ask(reg, "GET", "/crane/repositories", "", "text/html,application/xhtml+xml,*/*");
    CHECK(r.content_type == "text/html; charset=utf-8");
    CHECK(r.body.find("<code>redhat/rhel</code>") != std::string::npos);
    CHECK(r.body.find("<script") == std::string::npos);
    CHECK(ask(reg, "GET", "/crane/repositories/v3").status == 404);
}

TEST_CASE("a relative metadata URL redirects on the request's own scheme and Host", "[registry][v2]") {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/crane-rel-XXXXXX";
    fs::path dir = mkdtemp(tmpl);
    std::ofstream(dir / "r.json") << R"({"version": 2, "repo-registry-id": "rel", "url": "/pub/rel"})";
    auto store = std::make_shared<IndexStore>(dir.string(), 60, nullptr);
    store->reload();
    Registry reg(Config(), store, RegistryOptions(), nullptr);
    Request req;
    req.method = "GET";
    req.path = "/v2/rel/blobs/sha256:abc";
    req.host = "reg.test:5000";
    req.base_url = [] { return std::string("https://reg.test:5000"); };
    Response r = reg.handle(req);
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "https://reg.test:5000/pub/rel/blobs/sha256:abc");
    fs::remove_all(dir);
}

TEST_CASE("request-derived parts of a redirect are percent-encoded, never reinterpreted", "[registry][v2]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/v2/zoo/blobs/sha256:a?b#c d\r\nX: y");
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/v2/zoo/blobs/sha256:a%3Fb%23c%20d%0D%0AX:%20y");
    CHECK(ask(reg, "GET", "/v2").body == "{}");
}

TEST_CASE("an unknown repo costs the same certificate work as a protected one", "[registry][entitlement]") {
    // a verified entitlement certificate that entitles neither repo: both
    // answers are the same 404, and both fetch and walk the certificate
    const std::string pem =
        crane::testing::make_v3_certificate(crane::testing::encode_path_tree({"/content/dist/other"}));
    Registry reg = make();
    auto ask_with_certificate = [&](std::string_view path, int& fetches) {
        Request req;
        req.method = "GET";
        req.path = path;
        req.host = "reg.test:5000";
        req.now = crane::testing::unix_now();
        req.client_certificate = [&] {
            ++fetches;
            return ClientCertificate{pem, "SUCCESS"};
        };
        return reg.handle(req);
    };
    const std::pair<const char*, const char*> pairs[] = {
        {"/v2/private/secret/tags/list", "/v2/private/nope/tags/list"},
        {"/v2/private/secret/manifests/latest", "/v2/nope/manifests/latest"},
        {"/v1/repositories/secret/tags", "/v1/repositories/nope/tags"},
        {"/v1/repositories/secret/images", "/v1/repositories/library/nope/images"},
        {"/v1/repositories/secret/tags/latest", "/v1/repositories/nope/tags/latest"},
        {"/v1/images/5ec7e7/json", "/v1/images/ffffff/json"},
    };
    for (const auto& [protected_path, unknown_path] : pairs) {
        INFO(protected_path << " / " << unknown_path);
        int protected_fetches = 0;
        int unknown_fetches = 0;
        Response p = ask_with_certificate(protected_path, protected_fetches);
        Response u = ask_with_certificate(unknown_path, unknown_fetches);
        CHECK(p.status == 404);
        CHECK(u.status == 404);
        CHECK(p.body == u.body);
        CHECK(p.content_type == u.content_type);
        CHECK(protected_fetches == 1);
        CHECK(unknown_fetches == 1);
    }
    int fetches = 0;
    CHECK(ask_with_certificate("/v2/zoo/tags/list", fetches).status == 302);
    CHECK(fetches == 0);  // unprotected repos never look at certificates
}
