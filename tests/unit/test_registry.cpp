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
const std::string kNameUnknown =
    R"({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]})";
const std::string kManifestUnknown = R"({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})";
const std::string kBlobUnknown = R"({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]})";
const std::string kDigestInvalid =
    R"({"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match uploaded content"}]})";
const std::string kUnsupported = R"({"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]})";
const std::string kPaginationInvalid =
    R"({"errors": [{"code": "PAGINATION_NUMBER_INVALID", "message": "invalid number of results requested"}]})";
const std::string kBlob = "sha256:abc0000000000000000000000000000000000000000000000000000000000000";

std::shared_ptr<IndexStore> test_store() {
    static auto store = [] {
        auto s = std::make_shared<IndexStore>(std::string(CRANE_TEST_DATA) + "/metadata", nullptr);
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
        {"/v2/zoo/blobs/sha256:abc0000000000000000000000000000000000000000000000000000000000000", "",
         "zoo/blobs/sha256:abc0000000000000000000000000000000000000000000000000000000000000"},
        // a digest is looked up by content: the list's amd64 manifest with any Accept
        {"/v2/zoo/manifests/sha256:aaaa000000000000000000000000000000000000000000000000000000000002", "",
         "zoo/manifests/2/sha256:aaaa000000000000000000000000000000000000000000000000000000000002"},
        {"/v2/v3repo/manifests/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6", "",
         "v3repo/manifests/2/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6"},
        {"/v2/v2repo/manifests/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6", kS2,
         "v2repo/manifests/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6"},
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

TEST_CASE("v2 errors carry the distribution spec's codes and the API version header", "[registry][v2]") {
    Registry reg = make();
    struct Row {
        const char* method;
        std::string path;
        int status;
        const std::string& body;
    };
    const std::string unknown_digest = "sha256:" + std::string(64, 'e');
    const Row rows[] = {
        // unknown and unreadable repos are indistinguishable
        {"GET", "/v2/nope/manifests/latest", 404, kNameUnknown},
        {"GET", "/v2/private/secret/manifests/latest", 404, kNameUnknown},
        {"HEAD", "/v2/private/secret/manifests/latest", 404, kNameUnknown},
        {"GET", "/v2/private/secret/blobs/sha256:abc", 404, kNameUnknown},
        {"GET", "/v2/private/secret/referrers/" + unknown_digest, 404, kNameUnknown},
        {"GET", "/v2/nope/tags/list", 404, kNameUnknown},
        // no endpoint
        {"GET", "/v2/zoo", 404, kNameUnknown},
        {"GET", "/v2/zoo/manifests", 404, kNameUnknown},
        {"GET", "/v2/zoo/blobs/../x", 404, kNameUnknown},
        {"GET", "/v2/zoo/manifests/a/b", 404, kManifestUnknown},
        {"GET", "/v2/zoo/manifests/" + unknown_digest, 404, kManifestUnknown},
        {"HEAD", "/v2/zoo/manifests/" + unknown_digest, 404, kManifestUnknown},
        // malformed digests: 400, for manifests, blobs and referrers alike
        {"GET", "/v2/zoo/manifests/sha256:abc", 400, kDigestInvalid},
        {"GET", "/v2/v2repo/manifests/sha256:abc", 400, kDigestInvalid},
        {"GET", "/v2/zoo/blobs/sha256:abc", 400, kDigestInvalid},
        {"GET", "/v2/zoo/blobs/latest", 400, kDigestInvalid},
        {"GET", "/v2/zoo/blobs/sha256:" + std::string(64, 'A'), 400, kDigestInvalid},
        {"GET", "/v2/zoo/blobs/" + kBlob + "/x", 400, kDigestInvalid},
        {"GET", "/v2/zoo/referrers/sha256:abc", 400, kDigestInvalid},
        {"GET", "/v2/zoo/referrers/latest", 400, kDigestInvalid},
        {"GET", "/v2/_catalog?n=x", 400, kPaginationInvalid},
        // writes
        {"PUT", "/v2/zoo/manifests/latest", 405, kUnsupported},
        {"POST", "/v2/zoo/blobs/uploads/", 405, kUnsupported},
        {"PATCH", "/v2/zoo/blobs/uploads/x", 405, kUnsupported},
        {"DELETE", "/v2/zoo/manifests/" + unknown_digest, 405, kUnsupported},
        {"DELETE", "/v2/nope/blobs/" + kBlob, 405, kUnsupported},
        {"PUT", "/v2/", 405, kUnsupported},
    };
    for (const auto& row : rows) {
        INFO(row.method << " " << row.path);
        auto q = row.path.find('?');
        Response r = ask(reg, row.method, std::string_view(row.path).substr(0, q),
                         q == std::string::npos ? "" : std::string_view(row.path).substr(q + 1));
        CHECK(r.status == row.status);
        CHECK(r.body == row.body);
        CHECK(r.content_type == "application/json");
        CHECK(hdr(r, "Docker-Distribution-API-Version") == "registry/2.0");
        CHECK(hdr(r, "Allow") == (row.status == 405 ? "GET, HEAD" : "<absent>"));
        CHECK(r.file_path.empty());
    }
    CHECK(v2_error(V2Error::NameInvalid).body ==
          R"({"errors": [{"code": "NAME_INVALID", "message": "invalid repository name"}]})");
    CHECK(v2_error(V2Error::NameInvalid).status == 400);
    CHECK(v2_error(V2Error::PreconditionFailed).status == 412);
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

TEST_CASE("a served file's missing and precondition-failed answers come from the library", "[registry][serve]") {
    Config c;
    c.serve_content = true;
    c.content_dir_v1 = "/srv/v1";
    c.content_dir_v2 = "/srv/v2";
    Registry reg = make(c);
    const std::string v1_missing = "Not Found";
    const std::string v1_failed = "Precondition Failed";
    Response v1 = ask(reg, "GET", "/v1/images/ffff01/layer");
    REQUIRE(v1.if_missing);
    REQUIRE(v1.if_precondition_failed);
    CHECK(v1.api_version == false);
    CHECK(v1.if_missing->status == 404);
    CHECK(v1.if_missing->body == v1_missing);
    CHECK(hdr(*v1.if_missing, "X-Docker-Registry-Version") == "0.6.6");
    CHECK(hdr(*v1.if_missing, "Docker-Distribution-API-Version") == "<absent>");
    CHECK(v1.if_precondition_failed->status == 412);
    CHECK(v1.if_precondition_failed->body == v1_failed);
    CHECK(hdr(*v1.if_precondition_failed, "X-Docker-Registry-Config") == "common");

    Response v2 = ask(reg, "GET", "/v2/zoo/blobs/" + kBlob);
    REQUIRE(v2.if_precondition_failed);
    CHECK(v2.api_version == true);
    CHECK(v2.if_precondition_failed->status == 412);
    CHECK(v2.if_precondition_failed->body ==
          R"({"errors": [{"code": "UNKNOWN", "message": "precondition failed"}]})");
    CHECK(v2.if_precondition_failed->api_version == true);
    // answers the library writes itself carry neither
    Response body = ask(reg, "GET", "/v2/");
    CHECK(body.api_version == true);
    CHECK(body.if_missing == nullptr);
    CHECK(body.if_precondition_failed == nullptr);
    // the API version is a flag, not a header the glue must pick out
    for (const auto& h : v2.headers) CHECK(h.name != "Docker-Distribution-API-Version");
}

TEST_CASE("each /v1/repositories/NAME/ path names one endpoint, the first suffix deciding", "[registry][v1]") {
    Registry reg = make();
    // NAME may hold one '/' at most: these are 404 whatever a later suffix says
    CHECK(ask(reg, "GET", "/v1/repositories/a/b/tags/images").status == 404);
    CHECK(ask(reg, "GET", "/v1/repositories/a/b/c/tags").status == 404);
    CHECK(ask(reg, "GET", "/v1/repositories/busybox/tags/").status == 404);
    CHECK(ask(reg, "GET", "/v1/repositories/busybox/tags/a/b").status == 404);
    CHECK(ask(reg, "POST", "/v1/repositories/busybox/tags").status == 405);
}

TEST_CASE("the catalog lists readable v2 repos with paging", "[registry][v2]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/v2/_catalog");
    CHECK(r.body == R"({"repositories": ["ns/app", "org/tags/app", "v2repo", "v3old", "v3repo", "zoo"]})");
    CHECK(hdr(r, "Link") == "<absent>");
    r = ask(reg, "GET", "/v2/_catalog", "n=2");
    CHECK(r.body == R"({"repositories": ["ns/app", "org/tags/app"]})");
    CHECK(hdr(r, "Link") == "</v2/_catalog?n=2&last=org%2Ftags%2Fapp>; rel=\"next\"");
    r = ask(reg, "GET", "/v2/_catalog", "last=org%2Ftags%2Fapp&n=2");
    CHECK(r.body == R"({"repositories": ["v2repo", "v3old"]})");
    r = ask(reg, "GET", "/v2/_catalog", "last=v3old&n=2");
    CHECK(r.body == R"({"repositories": ["v3repo", "zoo"]})");
    CHECK(hdr(r, "Link") == "<absent>");
    r = ask(reg, "GET", "/v2/_catalog", "n=0");
    CHECK(r.body == R"({"repositories": []})");
    CHECK(ask(reg, "GET", "/v2/_catalog", "n=x").body == kPaginationInvalid);
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
    auto store = std::make_shared<IndexStore>(dir.string(), nullptr);
    store->reload();
    Registry reg(Config(), store, RegistryOptions(), nullptr);
    Request req;
    req.method = "GET";
    req.path = "/v2/rel/manifests/latest";
    req.host = "reg.test:5000";
    req.base_url = [] { return std::string("https://reg.test:5000"); };
    Response r = reg.handle(req);
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "https://reg.test:5000/pub/rel/manifests/latest");
    fs::remove_all(dir);
}

TEST_CASE("request-derived parts of a redirect are percent-encoded, never reinterpreted", "[registry][v2]") {
    Registry reg = make();
    Response r = ask(reg, "GET", "/v2/v2repo/manifests/a?b#c d\r\nX=y");
    CHECK(r.status == 302);
    CHECK(hdr(r, "Location") == "http://cdn.example.com/pulp/docker/v2/v2repo/manifests/a%3Fb%23c%20d%0D%0AX=y");
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

namespace {

const std::string kOciIndex = "application/vnd.oci.image.index.v1+json";
const std::string kOciMan = "application/vnd.oci.image.manifest.v1+json";
const std::string kD1 = "sha256:" + std::string(63, '0') + "1";  // OCI index of "latest"
const std::string kD2 = "sha256:" + std::string(63, '0') + "2";  // OCI manifest of "single"
const std::string kS1 = "sha256:" + std::string(63, '0') + "3";  // a signature of kD2
const std::string kS2b = "sha256:" + std::string(63, '0') + "4";  // an SBOM of kD2

// A data dir with one OCI-only repo (tags, referrers), a protected copy and
// a Docker repo without tags; removed with the object.
struct OciData {
    std::filesystem::path dir;
    std::shared_ptr<IndexStore> store;
    OciData() {
        char tmpl[] = "/tmp/crane-oci-XXXXXX";
        dir = mkdtemp(tmpl);
        const std::string oci = R"("schema2_data": [], "manifest_list_data": [], "manifest_list_amd64_tags": {},
            "oci_index_data": ["latest", ")" + kD1 + R"("], "oci_manifest_data": ["single", ")" + kD2 + R"("],
            "tags": ["latest", "single", "v1", "v2", "v3"],
            "referrers": {")" + kD2 + R"(": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kS1 + R"(", "size": 10,
                 "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
                 "annotations": {"z": "last", "a": "first"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kS2b + R"(", "size": 20,
                 "artifactType": "application/spdx+json"}]}})";
        std::ofstream(dir / "oci.json") << R"({"version": 4, "repo-registry-id": "ns/oci", "repository": "oci-pulp",
            "url": "http://cdn.example.com/v2/oci/", )" + oci;
        std::ofstream(dir / "sec.json") << R"({"version": 4, "repo-registry-id": "sec", "protected": true,
            "url": "https://cdn.example.com/content/dist/sec/", )" + oci;
        std::ofstream(dir / "docker.json") << R"({"version": 4, "repo-registry-id": "docker",
            "url": "http://cdn.example.com/v2/docker/", "schema2_data": ["latest"], "manifest_list_data": [],
            "manifest_list_amd64_tags": {}})";
        store = std::make_shared<IndexStore>(dir.string(), nullptr);
        store->reload();
    }
    ~OciData() { std::filesystem::remove_all(dir); }
    OciData(const OciData&) = delete;
    OciData& operator=(const OciData&) = delete;
};

}  // namespace

TEST_CASE("OCI manifests: tags by Accept, digests by content", "[registry][oci]") {
    OciData data;
    Registry reg(Config(), data.store, RegistryOptions(), nullptr);
    const std::string base = "http://cdn.example.com/v2/oci/";
    struct Row {
        std::string path;
        std::string accept;
        int status;
        std::string location_or_body;
    };
    const std::string all = kList + ", " + kS2 + ", " + kOciIndex + ", " + kOciMan;
    const Row rows[] = {
        {"latest", kOciIndex, 302, base + "manifests/oci-index/latest"},
        {"latest", all, 302, base + "manifests/oci-index/latest"},
        {"single", kOciMan, 302, base + "manifests/oci/single"},
        {"single", all, 302, base + "manifests/oci/single"},
        {kD1, "", 302, base + "manifests/oci-index/" + kD1},
        {kD2, kS2, 302, base + "manifests/oci/" + kD2},
        {"latest", kList + ", " + kS2, 404,
         R"({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "OCI index found, but the Accept header does not allow it"}]})"},
        {"single", kS2, 404,
         R"({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "OCI manifest found, but the Accept header does not allow it"}]})"},
        {"v1", all, 302, base + "manifests/1/v1"},  // listed only in tags: Crane's schema 1 path
        {kS1, all, 404, kManifestUnknown},
    };
    for (const auto& row : rows) {
        for (const char* method : {"GET", "HEAD"}) {
            INFO(method << " " << row.path << " Accept: " << row.accept);
            Response r = ask(reg, method, "/v2/ns/oci/manifests/" + row.path, "", row.accept);
            CHECK(r.status == row.status);
            CHECK(hdr(r, "Vary") == "Accept");
            if (row.status == 302) {
                CHECK(hdr(r, "Location") == row.location_or_body);
            } else {
                CHECK(r.body == row.location_or_body);
            }
        }
    }
}

TEST_CASE("tags/list answers from the metadata's tags with n/last paging", "[registry][oci]") {
    OciData data;
    for (bool serve : {false, true}) {
        Config c;
        c.serve_content = serve;
        c.content_dir_v2 = "/srv/v2";
        Registry reg(c, data.store, RegistryOptions(), nullptr);
        struct Row {
            const char* query;
            const char* body;
            const char* link;
        };
        const char* name = R"({"name": "ns/oci", "tags": )";
        const Row rows[] = {
            {"", R"(["latest", "single", "v1", "v2", "v3"]})", "<absent>"},
            {"n=2", R"(["latest", "single"]})", "</v2/ns/oci/tags/list?n=2&last=single>; rel=\"next\""},
            {"n=2&last=single", R"(["v1", "v2"]})", "</v2/ns/oci/tags/list?n=2&last=v2>; rel=\"next\""},
            {"n=2&last=v1", R"(["v2", "v3"]})", "<absent>"},
            {"last=v1&n=2", R"(["v2", "v3"]})", "<absent>"},
            {"n=5", R"(["latest", "single", "v1", "v2", "v3"]})", "<absent>"},
            {"n=9", R"(["latest", "single", "v1", "v2", "v3"]})", "<absent>"},
            {"last=v2", R"(["v3"]})", "<absent>"},
            {"last=v3", "[]}", "<absent>"},
            {"last=a", R"(["latest", "single", "v1", "v2", "v3"]})", "<absent>"},
            {"last=zzz&n=1", "[]}", "<absent>"},
            {"n=0", "[]}", "<absent>"},
            {"n=0&last=v1", "[]}", "<absent>"},
        };
        for (const auto& row : rows) {
            INFO("serve " << serve << " ?" << row.query);
            for (const char* method : {"GET", "HEAD"}) {
                Response r = ask(reg, method, "/v2/ns/oci/tags/list", row.query);
                CHECK(r.status == 200);
                CHECK(r.content_type == "application/json");
                CHECK(r.body == std::string(name) + row.body);
                CHECK(hdr(r, "Link") == row.link);
                CHECK(r.file_path.empty());
            }
        }
        for (const char* bad : {"n=x", "n=-1", "n=", "n=1.5"}) {
            INFO(bad);
            CHECK(ask(reg, "GET", "/v2/ns/oci/tags/list", bad).body == kPaginationInvalid);
        }
        // without `tags` in the metadata: Crane's redirect or served file
        Response r = ask(reg, "GET", "/v2/docker/tags/list", "n=1");
        if (serve) {
            CHECK(r.file_path == "/srv/v2/docker/tags/list");
            REQUIRE(r.if_missing);
            CHECK(r.if_missing->body == kNameUnknown);
        } else {
            CHECK(hdr(r, "Location") == "http://cdn.example.com/v2/docker/tags/list");
        }
        // a protected repo the client may not read stays unknown
        CHECK(ask(reg, "GET", "/v2/sec/tags/list").body == kNameUnknown);
    }
}

TEST_CASE("referrers: an OCI index of the subject's referrers, filtered by artifactType", "[registry][oci]") {
    OciData data;
    for (bool serve : {false, true}) {
        Config c;
        c.serve_content = serve;
        Registry reg(c, data.store, RegistryOptions(), nullptr);
        const std::string sig = R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kS1 +
                                R"(", "size": 10, "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json", )"
                                R"("annotations": {"a": "first", "z": "last"}})";
        const std::string sbom = R"({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + kS2b +
                                 R"(", "size": 20, "artifactType": "application/spdx+json"})";
        const std::string head = R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", )"
                                 R"("manifests": [)";
        struct Row {
            std::string digest;
            const char* query;
            std::string manifests;
            const char* filters;
        };
        const Row rows[] = {
            {kD2, "", sig + ", " + sbom, "<absent>"},
            {kD2, "artifactType=application%2Fspdx%2Bjson", sbom, "artifactType"},
            {kD2, "artifactType=application/vnd.dev.cosign.simplesigning.v1%2Bjson", sig, "artifactType"},
            {kD2, "artifactType=none", "", "artifactType"},
            {kD1, "", "", "<absent>"},
            {kD1, "artifactType=application%2Fspdx%2Bjson", "", "artifactType"},
        };
        for (const auto& row : rows) {
            INFO("serve " << serve << " " << row.digest << " ?" << row.query);
            for (const char* method : {"GET", "HEAD"}) {
                Response r = ask(reg, method, "/v2/ns/oci/referrers/" + row.digest, row.query);
                CHECK(r.status == 200);
                CHECK(r.content_type == kOciIndex);
                CHECK(r.body == head + row.manifests + "]}");
                CHECK(hdr(r, "OCI-Filters-Applied") == row.filters);
                CHECK(hdr(r, "Docker-Distribution-API-Version") == "registry/2.0");
            }
        }
        // repos without referrers answer an empty index too
        CHECK(ask(reg, "GET", "/v2/docker/referrers/" + kD2).body == head + "]}");
        CHECK(ask(reg, "GET", "/v2/zoo/referrers/" + kD2).status == 404);  // not in this data dir
        CHECK(ask(reg, "GET", "/v2/sec/referrers/" + kD2).body == kNameUnknown);
        CHECK(ask(reg, "GET", "/v2/ns/oci/referrers/sha256:0").body == kDigestInvalid);
    }
}

TEST_CASE("served manifests carry their own type and name the error a missing file is", "[registry][serve]") {
    OciData data;
    Config c;
    c.serve_content = true;
    c.content_dir_v2 = "/srv/v2";
    Registry reg(c, data.store, RegistryOptions(), nullptr);
    struct Row {
        std::string path;
        std::string accept;
        std::string file;
        std::string type;
        bool digest_header;
        const std::string& missing;
    };
    const Row rows[] = {
        {"/v2/ns/oci/manifests/latest", kOciIndex, "oci-pulp/manifests/oci-index/latest", kOciIndex, true,
         kManifestUnknown},
        {"/v2/ns/oci/manifests/" + kD2, "", "oci-pulp/manifests/oci/" + kD2, kOciMan, true, kManifestUnknown},
        {"/v2/docker/manifests/latest", kS2, "docker/manifests/2/latest", kS2, true, kManifestUnknown},
        {"/v2/docker/manifests/latest", "", "docker/manifests/1/latest", "application/json", true, kManifestUnknown},
        {"/v2/ns/oci/blobs/" + kS1, "", "oci-pulp/blobs/" + kS1, "application/octet-stream", false, kBlobUnknown},
        // a digest in no list: a schema 1 manifest's file, if there is one
        {"/v2/ns/oci/manifests/" + kS1, kOciMan, "oci-pulp/manifests/1/" + kS1, "application/json", true,
         kManifestUnknown},
    };
    for (const auto& row : rows) {
        for (const char* method : {"GET", "HEAD"}) {
            INFO(method << " " << row.path);
            Response r = ask(reg, method, row.path, "", row.accept);
            CHECK(r.status == 200);
            CHECK(r.file_path == "/srv/v2/" + row.file);
            CHECK(r.content_type == row.type);
            CHECK(r.digest_header == row.digest_header);
            REQUIRE(r.if_missing);
            CHECK(r.if_missing->status == 404);
            CHECK(r.if_missing->body == row.missing);
            CHECK(r.if_missing->content_type == "application/json");
            CHECK(hdr(*r.if_missing, "Docker-Distribution-API-Version") == "registry/2.0");
            CHECK(hdr(*r.if_missing, "Vary") == (row.digest_header ? "Accept" : "<absent>"));
        }
    }
}
