// The metrics: the text format's exact output, the shared counters' sums
// over slots, the bounded repository table, and the route and reason the
// registry puts on its answers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "crane/metrics.h"
#include "crane/registry.h"
#include "crane/snapshot_store.h"
#include "entitlement_test_helpers.h"

using namespace crane;
using namespace crane::metrics;

namespace {

// A zeroed, 64-byte aligned block for a shape, freed with the holder.
struct Block {
    explicit Block(Shape shape) : size(SharedCounters::bytes_for(shape)) {
        mem = std::aligned_alloc(64, (size + 63) / 64 * 64);
        std::memset(mem, 0xa5, size);  // create() must not rely on zeroed memory
    }
    ~Block() { std::free(mem); }
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    std::size_t size;
    void* mem;
};

RequestRecord manifest_get(std::string_view repository, int status = 302) {
    RequestRecord r;
    r.route = RouteId::V2Manifest;
    r.status = status;
    r.get = true;
    r.answer = status == 302 ? Answer::Redirect : Answer::Body;
    r.duration_us = 100;
    r.repository = repository;
    return r;
}

std::string rendered(const Totals& t) {
    TextWriter w;
    write_totals(w, t);
    return w.take();
}

}  // namespace

TEST_CASE("the text format: HELP and TYPE per family, escaped help and label values", "[metrics]") {
    TextWriter w;
    w.family("crane_x_total", "counter", "Line one\nback\\slash \"quoted\".");
    w.sample("crane_x_total", {}, std::uint64_t{7});
    w.sample("crane_x_total", {{"a", "q\"uote"}, {"b", "back\\slash\nnl"}}, std::uint64_t{0});
    w.family("crane_y", "gauge", "A gauge.");
    w.sample("crane_y", {{"data_dir", "/srv/x"}}, 0.25);
    w.sample_text("crane_y", {{"data_dir", "/srv/y"}}, "12.000001");
    CHECK(w.text() ==
          "# HELP crane_x_total Line one\\nback\\\\slash \"quoted\".\n"
          "# TYPE crane_x_total counter\n"
          "crane_x_total 7\n"
          "crane_x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 0\n"
          "# HELP crane_y A gauge.\n"
          "# TYPE crane_y gauge\n"
          "crane_y{data_dir=\"/srv/x\"} 0.25\n"
          "crane_y{data_dir=\"/srv/y\"} 12.000001\n");
}

TEST_CASE("numbers: the shortest text that reads back; microseconds as exact seconds", "[metrics]") {
    CHECK(format_number(0.0005) == "0.0005");
    CHECK(format_number(0.0025) == "0.0025");
    CHECK(format_number(1.0) == "1");
    CHECK(format_number(2.5) == "2.5");
    CHECK(format_number(10.0) == "10");
    CHECK(format_number(0.1) == "0.1");
    CHECK(format_number(1764608400.123) == "1764608400.123");
    CHECK(format_number(1e-6) == "1e-06");
    CHECK(format_number(-3.0) == "-3");
    CHECK(format_number(0.0) == "0");
    CHECK(format_number(123456789.0) == "123456789");
    CHECK(format_number(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(format_number(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(format_number(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(format_micros_as_seconds(0) == "0.000000");
    CHECK(format_micros_as_seconds(1250) == "0.001250");
    CHECK(format_micros_as_seconds(12345678) == "12.345678");
}

TEST_CASE("every route and reason has its label", "[metrics]") {
    CHECK(route_label(RouteId::V2Manifest) == "v2_manifest");
    CHECK(route_label(RouteId::Unmatched) == "unmatched");
    CHECK(reason_label(ErrorReason::None) == "other");
    CHECK(reason_label(ErrorReason::Unauthorized) == "unauthorized");
    std::vector<std::string_view> seen;
    for (std::size_t i = 0; i < kRoutes; ++i) {
        std::string_view l = route_label(static_cast<RouteId>(i));
        CHECK(std::find(seen.begin(), seen.end(), l) == seen.end());
        seen.push_back(l);
    }
    seen.clear();
    for (std::size_t i = 0; i < kReasons; ++i) {
        std::string_view l = reason_label(static_cast<ErrorReason>(i));
        CHECK(std::find(seen.begin(), seen.end(), l) == seen.end());
        seen.push_back(l);
    }
}

TEST_CASE("an empty block renders every unlabelled family at zero", "[metrics]") {
    Block b({4, 0});
    const SharedCounters c = SharedCounters::create(b.mem, {4, 0});
    CHECK(rendered(c.totals()) ==
          "# HELP crane_http_requests_total Requests mod_crane answered, by route and status class.\n"
          "# TYPE crane_http_requests_total counter\n"
          "# HELP crane_http_request_duration_seconds Time from reading the request line to logging the "
          "request, by route.\n"
          "# TYPE crane_http_request_duration_seconds histogram\n"
          "# HELP crane_http_client_errors_total 4xx answers by reason (other: a 4xx no reason was given for).\n"
          "# TYPE crane_http_client_errors_total counter\n"
          "crane_http_client_errors_total{reason=\"not_found\"} 0\n"
          "crane_http_client_errors_total{reason=\"bad_request\"} 0\n"
          "crane_http_client_errors_total{reason=\"method_not_allowed\"} 0\n"
          "crane_http_client_errors_total{reason=\"name_unknown\"} 0\n"
          "crane_http_client_errors_total{reason=\"manifest_unknown\"} 0\n"
          "crane_http_client_errors_total{reason=\"blob_unknown\"} 0\n"
          "crane_http_client_errors_total{reason=\"digest_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"name_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"pagination_number_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"unsupported\"} 0\n"
          "crane_http_client_errors_total{reason=\"precondition_failed\"} 0\n"
          "crane_http_client_errors_total{reason=\"unauthorized\"} 0\n"
          "crane_http_client_errors_total{reason=\"other\"} 0\n"
          "# HELP crane_redirects_total Answers redirecting the client to the content's URL.\n"
          "# TYPE crane_redirects_total counter\n"
          "crane_redirects_total 0\n"
          "# HELP crane_served_files_total Content files sent with a 2xx status (serve-content mode).\n"
          "# TYPE crane_served_files_total counter\n"
          "crane_served_files_total 0\n"
          "# HELP crane_served_bytes_total Body bytes of the content files sent.\n"
          "# TYPE crane_served_bytes_total counter\n"
          "crane_served_bytes_total 0\n");
}

TEST_CASE("requests in several slots sum into one exposition", "[metrics]") {
    const Shape shape{3, 2};
    Block b(shape);
    const SharedCounters c = SharedCounters::create(b.mem, shape);
    c.record(0, manifest_get("busybox"));              // 100 us
    RequestRecord slow = manifest_get("busybox");
    slow.duration_us = 3000000;                        // 3 s: the 5 s bucket
    c.record(2, slow);
    RequestRecord file;
    file.route = RouteId::V2Blob;
    file.status = 200;
    file.get = true;
    file.answer = Answer::File;
    file.bytes = 1234;
    file.duration_us = 600;  // the 1 ms bucket
    c.record(1, file);
    RequestRecord missing = file;
    missing.status = 404;
    missing.reason = ErrorReason::BlobUnknown;
    missing.bytes = 70;  // an error body is not a served file
    missing.duration_us = 500;  // on the bound: the 0.5 ms bucket
    c.record(7, missing);  // out of range: slot 0
    RequestRecord unmatched;
    unmatched.status = 416;  // a 4xx the library gave no reason for
    unmatched.duration_us = 20000000;  // +Inf
    c.record(1, unmatched);
    const Totals t = c.totals();
    CHECK(rendered(t) ==
          "# HELP crane_http_requests_total Requests mod_crane answered, by route and status class.\n"
          "# TYPE crane_http_requests_total counter\n"
          "crane_http_requests_total{route=\"unmatched\",code=\"4xx\"} 1\n"
          "crane_http_requests_total{route=\"v2_manifest\",code=\"3xx\"} 2\n"
          "crane_http_requests_total{route=\"v2_blob\",code=\"2xx\"} 1\n"
          "crane_http_requests_total{route=\"v2_blob\",code=\"4xx\"} 1\n"
          "# HELP crane_http_request_duration_seconds Time from reading the request line to logging the "
          "request, by route.\n"
          "# TYPE crane_http_request_duration_seconds histogram\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.0005\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.001\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.0025\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.005\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.01\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.025\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.05\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.1\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.25\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.5\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"1\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"2.5\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"5\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"10\"} 0\n"
          "crane_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 1\n"
          "crane_http_request_duration_seconds_sum{route=\"unmatched\"} 20.000000\n"
          "crane_http_request_duration_seconds_count{route=\"unmatched\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.0005\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.001\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.0025\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.005\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.01\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.025\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.05\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.1\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.25\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"0.5\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"1\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"2.5\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"5\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"10\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_manifest\",le=\"+Inf\"} 2\n"
          "crane_http_request_duration_seconds_sum{route=\"v2_manifest\"} 3.000100\n"
          "crane_http_request_duration_seconds_count{route=\"v2_manifest\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.0005\"} 1\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.001\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.0025\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.005\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.01\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.025\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.05\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.1\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.25\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"0.5\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"1\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"2.5\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"5\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"10\"} 2\n"
          "crane_http_request_duration_seconds_bucket{route=\"v2_blob\",le=\"+Inf\"} 2\n"
          "crane_http_request_duration_seconds_sum{route=\"v2_blob\"} 0.001100\n"
          "crane_http_request_duration_seconds_count{route=\"v2_blob\"} 2\n"
          "# HELP crane_http_client_errors_total 4xx answers by reason (other: a 4xx no reason was given for).\n"
          "# TYPE crane_http_client_errors_total counter\n"
          "crane_http_client_errors_total{reason=\"not_found\"} 0\n"
          "crane_http_client_errors_total{reason=\"bad_request\"} 0\n"
          "crane_http_client_errors_total{reason=\"method_not_allowed\"} 0\n"
          "crane_http_client_errors_total{reason=\"name_unknown\"} 0\n"
          "crane_http_client_errors_total{reason=\"manifest_unknown\"} 0\n"
          "crane_http_client_errors_total{reason=\"blob_unknown\"} 1\n"
          "crane_http_client_errors_total{reason=\"digest_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"name_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"pagination_number_invalid\"} 0\n"
          "crane_http_client_errors_total{reason=\"unsupported\"} 0\n"
          "crane_http_client_errors_total{reason=\"precondition_failed\"} 0\n"
          "crane_http_client_errors_total{reason=\"unauthorized\"} 0\n"
          "crane_http_client_errors_total{reason=\"other\"} 1\n"
          "# HELP crane_redirects_total Answers redirecting the client to the content's URL.\n"
          "# TYPE crane_redirects_total counter\n"
          "crane_redirects_total 2\n"
          "# HELP crane_served_files_total Content files sent with a 2xx status (serve-content mode).\n"
          "# TYPE crane_served_files_total counter\n"
          "crane_served_files_total 1\n"
          "# HELP crane_served_bytes_total Body bytes of the content files sent.\n"
          "# TYPE crane_served_bytes_total counter\n"
          "crane_served_bytes_total 1234\n"
          "# HELP crane_repository_pulls_total Manifest GETs answered 2xx or 3xx, by repository: the first "
          "names seen, the rest as other.\n"
          "# TYPE crane_repository_pulls_total counter\n"
          "crane_repository_pulls_total{repository=\"busybox\"} 2\n"
          "crane_repository_pulls_total{repository=\"other\"} 0\n");
}

TEST_CASE("pulls: the first N repositories get a series, the rest count as other", "[metrics]") {
    const Shape shape{2, 2};
    Block b(shape);
    const SharedCounters c = SharedCounters::create(b.mem, shape);
    c.record(0, manifest_get("zoo"));
    c.record(1, manifest_get("busybox"));
    c.record(1, manifest_get("redhat/rhel"));  // the third name: other
    c.record(0, manifest_get("zoo"));
    c.record(0, manifest_get("other"));        // a repository called "other" never gets its own
    c.record(0, manifest_get(std::string(kMaxRepositoryName + 1, 'a')));
    c.record(0, manifest_get("zoo", 404));     // errors are not pulls
    c.record(0, manifest_get("zoo", 200));     // a served manifest is
    RequestRecord head = manifest_get("zoo");
    head.get = false;  // HEAD is not a pull
    c.record(0, head);
    RequestRecord blob = manifest_get("busybox");
    blob.route = RouteId::V2Blob;  // only manifests are pulls
    c.record(0, blob);
    const Totals t = c.totals();
    CHECK(t.per_repository);
    const std::vector<std::pair<std::string, std::uint64_t>> expected = {{"zoo", 3}, {"busybox", 1}};
    CHECK(t.repository_pulls == expected);
    CHECK(t.other_pulls == 3);
    CHECK(c.repository_index("zoo") == 0);
    CHECK(c.repository_index("busybox") == 1);
    CHECK(c.repository_index("new") == 2);  // full: none
    CHECK(c.repository_index("") == 2);
}

TEST_CASE("with no repository series, pulls are counted nowhere but by route", "[metrics]") {
    Block b({1, 0});
    const SharedCounters c = SharedCounters::create(b.mem, {1, 0});
    c.record(0, manifest_get("zoo"));
    const Totals t = c.totals();
    CHECK_FALSE(t.per_repository);
    CHECK(t.repository_pulls.empty());
    CHECK(t.other_pulls == 0);
    CHECK(t.requests[static_cast<std::size_t>(RouteId::V2Manifest)][2] == 1);
    CHECK(rendered(t).find("crane_repository_pulls_total") == std::string::npos);
}

TEST_CASE("a block is adopted only in the shape and layout it was made in", "[metrics]") {
    const Shape shape{4, 3};
    Block b(shape);
    {
        const SharedCounters c = SharedCounters::create(b.mem, shape);
        c.record(3, manifest_get("zoo"));
    }
    auto again = SharedCounters::adopt(b.mem, b.size, shape);
    REQUIRE(again);
    again->record(3, manifest_get("zoo"));
    again->record(0, manifest_get("busybox"));
    const Totals t = again->totals();
    const std::vector<std::pair<std::string, std::uint64_t>> expected = {{"zoo", 2}, {"busybox", 1}};
    CHECK(t.repository_pulls == expected);
    CHECK(t.redirects == 3);
    CHECK_FALSE(SharedCounters::adopt(b.mem, b.size, {4, 2}));
    CHECK_FALSE(SharedCounters::adopt(b.mem, b.size, {5, 3}));
    CHECK_FALSE(SharedCounters::adopt(b.mem, b.size - 1, shape));
    CHECK_FALSE(SharedCounters::adopt(nullptr, b.size, shape));
    std::memset(b.mem, 0, 8);  // not a block
    CHECK_FALSE(SharedCounters::adopt(b.mem, b.size, shape));
}

TEST_CASE("concurrent recorders lose no count and insert each name once", "[metrics]") {
    const Shape shape{4, 50};
    Block b(shape);
    const SharedCounters c = SharedCounters::create(b.mem, shape);
    std::vector<std::string> names;
    for (int i = 0; i < 80; ++i) names.push_back("repo" + std::to_string(i));
    constexpr int kThreads = 4;
    constexpr int kRounds = 200;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int round = 0; round < kRounds; ++round) {
                for (const std::string& n : names) c.record(static_cast<std::uint32_t>(t), manifest_get(n));
            }
        });
    }
    for (auto& th : threads) th.join();
    const Totals t = c.totals();
    REQUIRE(t.repository_pulls.size() == 50);
    std::uint64_t named = 0;
    std::vector<std::string> seen;
    for (const auto& [name, pulls] : t.repository_pulls) {
        CHECK(std::find(seen.begin(), seen.end(), name) == seen.end());
        seen.push_back(name);
        named += pulls;
    }
    CHECK(named + t.other_pulls == std::uint64_t{kThreads} * kRounds * names.size());
    CHECK(t.redirects == std::uint64_t{kThreads} * kRounds * names.size());
}

// ---- what the registry puts on its answers ----

namespace {

std::shared_ptr<IndexStore> metrics_store() {
    static auto store = [] {
        auto s = std::make_shared<IndexStore>(std::string(CRANE_TEST_DATA) + "/metadata", nullptr);
        s->reload();
        return s;
    }();
    return store;
}

}  // namespace

TEST_CASE("answers name their route, their error's reason and the path's repository", "[metrics][registry]") {
    Registry reg(Config(), metrics_store(), RegistryOptions(), nullptr);
    const std::string unknown_digest = "sha256:" + std::string(64, 'e');
    struct Row {
        const char* method;
        std::string path;
        int status;
        RouteId route;
        ErrorReason reason;
        const char* repository;
    };
    const Row rows[] = {
        {"GET", "/v2/", 200, RouteId::V2Base, ErrorReason::None, ""},
        {"GET", "/v2/zoo/manifests/latest", 302, RouteId::V2Manifest, ErrorReason::None, "zoo"},
        {"GET", "/v2/nope/manifests/latest", 404, RouteId::V2Manifest, ErrorReason::NameUnknown, "nope"},
        {"GET", "/v2/zoo/manifests/" + unknown_digest, 404, RouteId::V2Manifest, ErrorReason::ManifestUnknown,
         "zoo"},
        {"GET", "/v2/zoo/blobs/sha256:abc", 400, RouteId::V2Blob, ErrorReason::DigestInvalid, "zoo"},
        {"GET", "/v2/zoo/tags/list", 302, RouteId::V2TagList, ErrorReason::None, "zoo"},
        {"GET", "/v2/zoo", 404, RouteId::V2NoName, ErrorReason::NameUnknown, ""},
        {"PUT", "/v2/zoo/manifests/latest", 405, RouteId::V2Manifest, ErrorReason::Unsupported, "zoo"},
        {"GET", "/v2/_catalog", 200, RouteId::V2Catalog, ErrorReason::None, ""},
        {"GET", "/v1/_ping", 200, RouteId::V1Ping, ErrorReason::None, ""},
        {"GET", "/v1/repositories/nope/tags", 404, RouteId::V1RepositoryTags, ErrorReason::NotFound, ""},
        {"GET", "/v1/nothing", 404, RouteId::Unmatched, ErrorReason::NotFound, ""},
        {"PUT", "/v1/_ping", 405, RouteId::V1Ping, ErrorReason::MethodNotAllowed, ""},
        {"GET", "/elsewhere", 404, RouteId::Unmatched, ErrorReason::NotFound, ""},
        {"GET", "/crane/repositories/v2", 200, RouteId::AdminV2, ErrorReason::None, ""},
    };
    for (const Row& row : rows) {
        INFO(row.method << " " << row.path);
        Request req;
        req.method = row.method;
        req.path = row.path;
        req.host = "reg.test";
        Response r = reg.handle(req);
        CHECK(r.status == row.status);
        CHECK(r.route == row.route);
        CHECK(r.reason == row.reason);
        CHECK(r.repository == row.repository);
    }
    Request q;
    q.method = "GET";
    q.path = "/v2/_catalog";
    q.query = "n=x";
    CHECK(reg.handle(q).reason == ErrorReason::PaginationNumberInvalid);
}

TEST_CASE("a protected repository the certificate does not entitle is an unauthorized 404", "[metrics][registry]") {
    const std::string pem =
        crane::testing::make_v3_certificate(crane::testing::encode_path_tree({"/content/dist/other"}));
    Registry reg(Config(), metrics_store(), RegistryOptions(), nullptr);
    auto ask = [&](std::string_view path) {
        Request req;
        req.method = "GET";
        req.path = path;
        req.host = "reg.test";
        req.now = crane::testing::unix_now();
        req.client_certificate = [&] { return ClientCertificate{pem, "SUCCESS"}; };
        return reg.handle(req);
    };
    Response p = ask("/v2/private/secret/manifests/latest");
    Response u = ask("/v2/nope/manifests/latest");
    CHECK(p.status == 404);
    CHECK(p.body == u.body);  // the client cannot tell them apart; the metrics can
    CHECK(p.reason == ErrorReason::Unauthorized);
    CHECK(u.reason == ErrorReason::NameUnknown);
    Response v1 = ask("/v1/repositories/secret/tags");
    CHECK(v1.status == 404);
    CHECK(v1.reason == ErrorReason::Unauthorized);
    // the served file's fixed answers carry their reasons too
    Config serve;
    serve.serve_content = true;
    serve.content_dir_v2 = "/srv/v2";  // the glue looks for the file
    Registry served(serve, metrics_store(), RegistryOptions(), nullptr);
    const std::string path = "/v2/zoo/blobs/sha256:abc" + std::string(61, '0');
    Request req;
    req.method = "GET";
    req.path = path;
    req.host = "reg.test";
    Response blob = served.handle(req);
    REQUIRE(blob.if_missing);
    CHECK(blob.if_missing->reason == ErrorReason::BlobUnknown);
    REQUIRE(blob.if_precondition_failed);
    CHECK(blob.if_precondition_failed->reason == ErrorReason::PreconditionFailed);
}
