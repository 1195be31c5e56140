// Unit tests for the `docker search` backends (crane/search.h): GSA and Solr
// parsing (good, partial and hostile bodies), backend URLs, the exact 200
// body, and run_search against a tiny HTTP server on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crane/search.h"

#ifndef CRANE_TEST_DATA
#define CRANE_TEST_DATA "tests/data"
#endif

using crane::SearchResult;

namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(CRANE_TEST_DATA) + "/search/" + name, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

SearchResult result(std::string name, std::optional<std::string> description, bool trusted,
                    bool official, std::int64_t stars, bool should_filter) {
    SearchResult r;
    r.name = std::move(name);
    r.description = std::move(description);
    r.is_trusted = trusted;
    r.is_official = official;
    r.star_count = stars;
    r.should_filter = should_filter;
    return r;
}

// Compares through the rendered JSON, which shows every field on failure.
std::string rendered(const std::vector<SearchResult>& results) {
    return crane::render_search_response("q", results);
}

std::vector<SearchResult> parse_solr_ok(const std::string& body) {
    auto parsed = crane::parse_solr_json(body);
    REQUIRE(parsed.ok());
    return *parsed;
}

std::vector<SearchResult> parse_gsa_ok(const std::string& body) {
    auto parsed = crane::parse_gsa_xml(body);
    REQUIRE(parsed.ok());
    return *parsed;
}

std::string solr_body(const std::string& docs) {
    return R"({"response": {"numFound": 1, "docs": )" + docs + "}}";
}

std::string gsa_body(const std::string& res_content) {
    return "<?xml version=\"1.0\"?><GSP><RES>" + res_content + "</RES></GSP>";
}

// ---- a one-thread HTTP server on 127.0.0.1, ephemeral port ----

struct Reply {
    std::string raw;   // bytes to send
    int delay_ms = 0;  // wait before sending (cut short when the server stops)
};

std::string http_reply(int status, const std::string& body, const std::string& extra_headers = "") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: text/plain\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
           extra_headers + "\r\n" + body;
}

class TestServer {
  public:
    using Responder = std::function<Reply(const std::string& request_head)>;

    explicit TestServer(Responder responder, int backlog = 16) : responder_(std::move(responder)) {
        REQUIRE(::pipe(stop_pipe_) == 0);
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listen_fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listen_fd_, backlog) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        if (responder_) thread_ = std::thread([this] { serve(); });
    }

    ~TestServer() {
        char c = 'x';
        (void)!::write(stop_pipe_[1], &c, 1);
        if (thread_.joinable()) thread_.join();
        ::close(listen_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
    }

    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    int port() const { return port_; }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::vector<std::string> request_lines() {
        std::lock_guard<std::mutex> lock(mutex_);
        return request_lines_;
    }

  private:
    // true when fd is readable; false on stop or timeout
    bool wait_readable(int fd, int timeout_ms) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        int n = ::poll(fds, 2, timeout_ms);
        return n > 0 && (fds[1].revents & POLLIN) == 0 && (fds[0].revents & POLLIN) != 0;
    }

    void serve() {
        for (;;) {
            if (!wait_readable(listen_fd_, -1)) return;
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::string head;
            char buf[4096];
            while (head.find("\r\n\r\n") == std::string::npos && wait_readable(fd, 2000)) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                head.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard<std::mutex> lock(mutex_);
                request_lines_.push_back(head.substr(0, head.find("\r\n")));
            }
            Reply reply = responder_(head);
            bool stopped = false;
            if (reply.delay_ms > 0) {
                pollfd stop_fd = {stop_pipe_[0], POLLIN, 0};
                stopped = ::poll(&stop_fd, 1, reply.delay_ms) > 0;
            }
            for (std::size_t sent = 0; !stopped && sent < reply.raw.size();) {
                ssize_t n =
                    ::send(fd, reply.raw.data() + sent, reply.raw.size() - sent, MSG_NOSIGNAL);
                if (n <= 0) break;
                sent += static_cast<std::size_t>(n);
            }
            ::shutdown(fd, SHUT_WR);
            ::close(fd);
            if (stopped) return;
        }
    }

    Responder responder_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> request_lines_;
};

crane::HttpClientOptions fast_options() {
    crane::HttpClientOptions o;
    o.timeout_ms = 1000;
    o.use_env_proxy = false;  // only ever talk to 127.0.0.1 directly
    return o;
}

// The status the request answers with: 200 for an answer.
int status_of(const crane::SearchRun& run) { return run ? 200 : run.error().http_status; }

}  // namespace

// ===================== GSA =====================

TEST_CASE("GSA: each RES/R with a portal_name is a result, should_filter true", "[search][gsa]") {
    auto results = parse_gsa_ok(fixture("gsa_two_results.xml"));
    CHECK(rendered(results) ==
          rendered({result("acme/base", "Acme base image & tools", false, false, 0, true),
                    result("base", "Plain base image", false, false, 0, true)}));
}

TEST_CASE("GSA: a missing description is the empty string, not null", "[search][gsa]") {
    auto results = parse_gsa_ok(fixture("gsa_no_description.xml"));
    REQUIRE(results.size() == 1);
    CHECK(results[0].description == std::optional<std::string>(""));
    CHECK(rendered(results) == rendered({result("acme/minimal", "", false, false, 0, true)}));
}

TEST_CASE("GSA: a DOCTYPE naming an external DTD is read without fetching it", "[search][gsa]") {
    auto results = parse_gsa_ok(fixture("gsa_with_dtd.xml"));
    CHECK(rendered(results) ==
          rendered({result("acme/dtd", "with a DTD reference", false, false, 0, true)}));
}

TEST_CASE("GSA: partial and odd results", "[search][gsa]") {
    SECTION("an R without portal_name is skipped") {
        auto results = parse_gsa_ok(gsa_body(
            R"(<R><MT N="portal_short_description" V="nameless"/></R><R><MT N="portal_name" V="ok"/></R>)"));
        CHECK(rendered(results) == rendered({result("ok", "", false, false, 0, true)}));
    }
    SECTION("the last portal_name / description wins") {
        auto results = parse_gsa_ok(gsa_body(
            R"(<R><MT N="portal_name" V="first"/><MT N="portal_name" V="second"/>)"
            R"(<MT N="portal_short_description" V="d1"/><MT N="portal_short_description" V="d2"/></R>)"));
        CHECK(rendered(results) == rendered({result("second", "d2", false, false, 0, true)}));
    }
    SECTION("an MT without V or N is ignored") {
        auto results = parse_gsa_ok(
            gsa_body(R"(<R><MT N="portal_name" V="kept"/><MT N="portal_name"/><MT V="x"/></R>)"));
        CHECK(rendered(results) == rendered({result("kept", "", false, false, 0, true)}));
    }
    SECTION("only RES/R directly under the root, and MT directly under R, count") {
        auto results = parse_gsa_ok(
            R"(<GSP><R><MT N="portal_name" V="not-in-res"/></R>)"
            R"(<X><RES><R><MT N="portal_name" V="res-too-deep"/></R></RES></X>)"
            R"(<RES><Y><R><MT N="portal_name" V="r-too-deep"/></R></Y>)"
            R"(<R><Z><MT N="portal_name" V="mt-too-deep"/></Z><MT N="portal_name" V="yes"/></R></RES>)"
            R"(<RES><R><MT N="portal_name" V="second-res"/></R></RES></GSP>)");
        CHECK(rendered(results) == rendered({result("yes", "", false, false, 0, true),
                                             result("second-res", "", false, false, 0, true)}));
    }
    SECTION("a RES in a namespace does not count (as ElementTree's {uri}RES)") {
        auto results = parse_gsa_ok(
            R"(<GSP xmlns:g="urn:x"><g:RES><R><MT N="portal_name" V="ns"/></R></g:RES>)"
            R"(<RES xmlns="urn:y"><R><MT N="portal_name" V="default-ns"/></R></RES></GSP>)");
        CHECK(results.empty());
    }
    SECTION("no RES at all is zero results") {
        CHECK(parse_gsa_ok("<GSP><TM>0.1</TM></GSP>").empty());
    }
    SECTION("character references and non-ASCII text come out as UTF-8") {
        auto results = parse_gsa_ok(gsa_body(
            R"(<R><MT N="portal_name" V="caf&#233;"/><MT N="portal_short_description" V="&lt;b&gt; ✓"/></R>)"));
        CHECK(rendered(results) ==
              rendered({result("caf\xC3\xA9", "<b> \xE2\x9C\x93", false, false, 0, true)}));
    }
    SECTION("a declared ISO-8859-1 encoding is decoded") {
        auto results = parse_gsa_ok(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><GSP><RES><R>"
            "<MT N=\"portal_name\" V=\"caf\xE9\"/></R></RES></GSP>");
        REQUIRE(results.size() == 1);
        CHECK(results[0].name == "caf\xC3\xA9");
    }
}

TEST_CASE("GSA: bodies that are not well-formed XML are unparsable", "[search][gsa]") {
    const char* bad[] = {
        "this is not xml",
        "",
        "<GSP><RES><R><MT N=\"portal_name\" V=\"x\"/></R></RES>",               // truncated
        "<GSP></GSP><GSP></GSP>",                                               // two roots
        "<GSP><RES></R></RES></GSP>",                                           // mismatched tag
        "<GSP><RES><R><MT N=\"portal_name\" V=\"\xC3\x28\"/></R></RES></GSP>",  // bad UTF-8
        "<GSP><RES><R><MT N=\"portal_name\" V=\"&undefined;\"/></R></RES></GSP>",
        "<GSP><u:RES/></GSP>",  // unbound prefix
    };
    for (const char* body : bad) {
        INFO(body);
        CHECK_FALSE(crane::parse_gsa_xml(body).ok());
    }
}

TEST_CASE("GSA: entity declarations are refused, so nothing is expanded or fetched",
          "[search][gsa]") {
    CHECK_FALSE(crane::parse_gsa_xml(fixture("gsa_billion_laughs.xml")).ok());
    CHECK_FALSE(crane::parse_gsa_xml(fixture("gsa_external_entity.xml")).ok());
    CHECK_FALSE(crane::parse_gsa_xml(fixture("gsa_parameter_entity.xml")).ok());
    CHECK_FALSE(
        crane::parse_gsa_xml(
            R"(<!DOCTYPE GSP [<!ENTITY n "x">]><GSP><RES><R><MT N="portal_name" V="a"/></R></RES></GSP>)")
            .ok());
}

TEST_CASE("GSA: deep nesting and size limits", "[search][gsa]") {
    SECTION("100000 nested elements inside an R parse without trouble") {
        std::string deep;
        for (int i = 0; i < 100000; ++i) deep += "<d>";
        for (int i = 0; i < 100000; ++i) deep += "</d>";
        auto results =
            parse_gsa_ok(gsa_body("<R>" + deep + R"(<MT N="portal_name" V="deep"/></R>)"));
        CHECK(rendered(results) == rendered({result("deep", "", false, false, 0, true)}));
    }
    SECTION("unbalanced deep nesting is unparsable") {
        std::string deep;
        for (int i = 0; i < 200000; ++i) deep += "<d>";
        CHECK_FALSE(crane::parse_gsa_xml(deep).ok());
    }
    SECTION("a body over the cap is refused") {
        std::string big = gsa_body(std::string(crane::kMaxSearchBodyBytes, ' '));
        CHECK_FALSE(crane::parse_gsa_xml(big).ok());
    }
}

// ===================== Solr =====================

TEST_CASE("Solr: the fixture maps field by field", "[search][solr]") {
    auto results = parse_solr_ok(fixture("solr_docs.json"));
    CHECK(rendered(results) ==
          rendered({
              result("acme/base", "Acme base image", true, false, 12, true),
              result("acme/article", "An article about base images", false, false, 0, false),
              result("acme/plain", std::nullopt, false, false, 0, false),
              result("registry.example.test/isv/app", "Certified thing", false, true, 3, false),
              result("isv/app:latest", "Certified thing", false, true, 3, false),
              result("acme/null-description", std::nullopt, false, false, 0, true),
          }));
}

TEST_CASE("Solr: description is ir_description if present, else publishedAbstract, else null",
          "[search][solr]") {
    auto one = [](const std::string& doc) {
        auto r = parse_solr_ok(solr_body("[" + doc + "]"));
        REQUIRE(r.size() == 1);
        return r[0].description;
    };
    CHECK(one(R"({"allTitle": "a", "ir_description": "d", "publishedAbstract": "p"})") == "d");
    CHECK(one(R"({"allTitle": "a", "publishedAbstract": "p"})") == "p");
    CHECK(one(R"({"allTitle": "a"})") == std::nullopt);
    CHECK(one(R"({"allTitle": "a", "ir_description": null, "publishedAbstract": "p"})") ==
          std::nullopt);
    CHECK(one(R"({"allTitle": "a", "ir_description": 5})") == std::nullopt);
    CHECK(one(R"({"allTitle": "a", "publishedAbstract": ["p"]})") == std::nullopt);
}

TEST_CASE("Solr: CertifiedSoftware yields one result per pull command", "[search][solr]") {
    SECTION("docker pull is removed once and the rest stripped as Python's strip()") {
        auto results = parse_solr_ok(solr_body(
            R"([{"documentKind": "CertifiedSoftware", "ir_stars": 1, "c_pull_command": [)"
            R"("docker pull a/b", "\t docker pull  c/d \n", "e/f", "x docker pull y",)"
            R"("\u00a0docker pull g/h\u3000", "docker pull", "docker pull docker pull z"]}])"));
        std::vector<std::string> names;
        for (const auto& r : results) {
            names.push_back(r.name);
            CHECK_FALSE(r.should_filter);
            CHECK(r.star_count == 1);
        }
        CHECK(names ==
              std::vector<std::string>{"a/b", "c/d", "e/f", "x  y", "g/h", "", "docker pull z"});
    }
    SECTION("without c_pull_command there is no result, whatever allTitle says") {
        CHECK(
            parse_solr_ok(solr_body(R"([{"documentKind": "CertifiedSoftware", "allTitle": "t"}])"))
                .empty());
    }
    SECTION("a single string counts as one command; non-string entries are skipped") {
        auto results = parse_solr_ok(solr_body(
            R"([{"documentKind": "CertifiedSoftware", "c_pull_command": "docker pull one"},)"
            R"({"documentKind": "CertifiedSoftware", "c_pull_command": [1, null, {"a": 1}, "docker pull two"]},)"
            R"({"documentKind": "CertifiedSoftware", "c_pull_command": null}])"));
        REQUIRE(results.size() == 2);
        CHECK(results[0].name == "one");
        CHECK(results[1].name == "two");
    }
}

TEST_CASE("Solr: should_filter follows documentKind", "[search][solr]") {
    auto results =
        parse_solr_ok(solr_body(R"([{"allTitle": "a", "documentKind": "ImageRepository"},)"
                                R"({"allTitle": "b", "documentKind": "imagerepository"},)"
                                R"({"allTitle": "c", "documentKind": ["ImageRepository"]},)"
                                R"({"allTitle": "d"}])"));
    REQUIRE(results.size() == 4);
    CHECK(results[0].should_filter);
    CHECK_FALSE(results[1].should_filter);
    CHECK_FALSE(results[2].should_filter);
    CHECK_FALSE(results[3].should_filter);
}

TEST_CASE("Solr: wrong types default the field or skip the doc", "[search][solr]") {
    auto results = parse_solr_ok(solr_body(
        R"([{"allTitle": "strings", "ir_stars": "5", "ir_automated": "true", "ir_official": 1},)"
        R"({"allTitle": "nulls", "ir_stars": null, "ir_automated": null, "ir_official": null},)"
        R"({"allTitle": "bool-stars", "ir_stars": true},)"
        R"({"allTitle": 42}, {"ir_description": "no title"}, {"allTitle": null},)"
        R"("a string doc", 7, null, [1, 2], true,)"
        R"({"allTitle": "last"}])"));
    CHECK(rendered(results) == rendered({
                                   result("strings", std::nullopt, false, false, 0, false),
                                   result("nulls", std::nullopt, false, false, 0, false),
                                   result("bool-stars", std::nullopt, false, false, 0, false),
                                   result("last", std::nullopt, false, false, 0, false),
                               }));
}

TEST_CASE("Solr: star_count is clamped to int64 and truncated", "[search][solr]") {
    auto stars = [](const std::string& value) {
        auto r = parse_solr_ok(solr_body(R"([{"allTitle": "a", "ir_stars": )" + value + "}]"));
        REQUIRE(r.size() == 1);
        return r[0].star_count;
    };
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
    CHECK(stars("7") == 7);
    CHECK(stars("-3") == -3);
    CHECK(stars("7.9") == 7);
    CHECK(stars("-7.9") == -7);
    CHECK(stars("9223372036854775807") == kMax);
    CHECK(stars("9223372036854775808") == kMax);
    CHECK(stars("18446744073709551615") == kMax);
    CHECK(stars("123456789012345678901234567890") == kMax);
    CHECK(stars("1e30") == kMax);
    CHECK(stars("-1e30") == kMin);
    CHECK(stars("-9223372036854775808") == kMin);
    CHECK(stars("1e-300") == 0);
    // beyond the double range RapidJSON refuses the number, so the whole body
    CHECK_FALSE(
        crane::parse_solr_json(solr_body(R"([{"allTitle": "a", "ir_stars": 1e400}])")).ok());
}

TEST_CASE("Solr: duplicate keys take the last value, as json.loads", "[search][solr]") {
    auto results = parse_solr_ok(
        R"({"response": {"docs": []}, "response": {"docs": [)"
        R"({"allTitle": "first", "allTitle": "second", "ir_stars": 1, "ir_stars": 2}]}})");
    CHECK(rendered(results) == rendered({result("second", std::nullopt, false, false, 2, false)}));
}

TEST_CASE("Solr: bodies without response.docs[] or not JSON are unparsable", "[search][solr]") {
    const std::string bad[] = {
        "this is not valid json",
        "",
        "{}",
        "[]",
        "null",
        R"({"response": null})",
        R"({"response": []})",
        R"({"response": {}})",
        R"({"response": {"docs": null}})",
        R"({"response": {"docs": {"allTitle": "x"}}})",
        R"({"response": {"docs": "x"}})",
        R"({"response": {"docs": []}} trailing)",
        R"({"response": {"docs": [{"allTitle": NaN}]}})",
        R"({"response": {"docs": [{"allTitle": "a)"
        "\xC3\x28"
        R"("}]}})",  // invalid UTF-8
        R"({"response": {"docs": [{"allTitle": "a)"
        "\xED\xA0\x80"
        R"("}]}})",  // surrogate
        std::string(R"({"response": {"docs": [{"allTitle": "a)") + '\0' + R"("}]}})",
        R"({"response": {"docs": [)",
    };
    for (const auto& body : bad) {
        INFO(body);
        CHECK_FALSE(crane::parse_solr_json(body).ok());
    }
    CHECK(parse_solr_ok(R"({"response": {"docs": []}})").empty());
}

TEST_CASE("Solr: deep nesting cannot overflow the stack", "[search][solr]") {
    constexpr int kDepth = 1000000;
    SECTION("balanced: a deep array as a doc is skipped") {
        std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
        auto results = parse_solr_ok(solr_body("[" + deep + R"(, {"allTitle": "x"}])"));
        CHECK(rendered(results) == rendered({result("x", std::nullopt, false, false, 0, false)}));
    }
    SECTION("balanced deep objects inside a doc field") {
        std::string deep;
        for (int i = 0; i < kDepth / 10; ++i) deep += R"({"a":)";
        deep += "1";
        deep += std::string(kDepth / 10, '}');
        auto results = parse_solr_ok(solr_body(R"([{"allTitle": "y", "extra": )" + deep + "}]"));
        REQUIRE(results.size() == 1);
        CHECK(results[0].name == "y");
    }
    SECTION("unbalanced") {
        CHECK_FALSE(crane::parse_solr_json(std::string(kDepth, '[')).ok());
        CHECK_FALSE(crane::parse_solr_json(solr_body(std::string(kDepth, '['))).ok());
    }
    SECTION("a body over the cap is refused") {
        std::string big = solr_body("[]" + std::string(crane::kMaxSearchBodyBytes, ' '));
        CHECK_FALSE(crane::parse_solr_json(big).ok());
    }
}

TEST_CASE("Solr: strings keep escapes and non-ASCII as UTF-8", "[search][solr]") {
    auto results = parse_solr_ok(solr_body(
        R"([{"allTitle": "caf\u00e9/\ud83d\ude00", "ir_description": "tab\there \"q\" \u0000 end"}])"));
    REQUIRE(results.size() == 1);
    CHECK(results[0].name == "caf\xC3\xA9/\xF0\x9F\x98\x80");
    CHECK(results[0].description == std::string("tab\there \"q\" \0 end", 18));
}

// ===================== URLs =====================

// ---- limits: results and their bytes ----

namespace {

// One CertifiedSoftware doc: `commands` pull commands sharing one description.
std::string certified_doc(std::size_t description_bytes, std::size_t commands) {
    std::string doc = R"({"documentKind": "CertifiedSoftware", "ir_description": ")" +
                      std::string(description_bytes, 'd') + R"(", "c_pull_command": [)";
    for (std::size_t i = 0; i < commands; ++i) {
        if (i > 0) doc += ", ";
        doc += "\"docker pull r/" + std::to_string(i) + "\"";
    }
    return doc + "]}";
}

std::size_t payload_bytes(const std::vector<SearchResult>& results) {
    std::size_t n = 0;
    for (const auto& r : results) n += r.name.size() + (r.description ? r.description->size() : 0);
    return n;
}

}  // namespace

TEST_CASE("Solr: pull commands repeating a big description are cut to the byte limit",
          "[search][solr][limits]") {
    // ~112 KB of body; uncut, every command copies the 100 KB description (60 MB)
    const std::string body = solr_body("[" + certified_doc(100000, 600) + "]");
    REQUIRE(body.size() < 115000);
    auto results = parse_solr_ok(body);
    // 10 results of 100000 + 5 bytes fit in 1 MiB, the 11th does not
    REQUIRE(results.size() == 10);
    CHECK(results[0].name == "r/0");
    CHECK(results[9].name == "r/9");
    CHECK(payload_bytes(results) <= crane::kMaxSearchResultBytes);
    CHECK(crane::render_search_response("q", results).size() < 2 * crane::kMaxSearchResultBytes);
}

TEST_CASE("Solr: a description bigger than the byte limit yields no result", "[search][solr][limits]") {
    // 3.8 MB description under 30 commands: uncut, 114 MB of copies
    const std::string body = solr_body("[" + certified_doc(3800000, 30) + "]");
    REQUIRE(body.size() < crane::kMaxSearchBodyBytes);
    CHECK(parse_solr_ok(body).empty());
}

TEST_CASE("Solr and GSA: at most kMaxSearchResults results", "[search][limits]") {
    SECTION("pull commands") {
        auto results = parse_solr_ok(solr_body("[" + certified_doc(1, 5000) + "]"));
        REQUIRE(results.size() == crane::kMaxSearchResults);
        CHECK(results.back().name == "r/999");
    }
    SECTION("docs") {
        std::string docs = "[";
        for (int i = 0; i < 3000; ++i) {
            if (i > 0) docs += ", ";
            docs += R"({"allTitle": "t)" + std::to_string(i) + R"("})";
        }
        auto results = parse_solr_ok(solr_body(docs + "]"));
        REQUIRE(results.size() == crane::kMaxSearchResults);
        CHECK(results.back().name == "t999");
    }
    SECTION("GSA") {
        std::string res;
        for (int i = 0; i < 3000; ++i) {
            res += R"(<R><MT N="portal_name" V="g)" + std::to_string(i) + R"("/></R>)";
        }
        auto results = parse_gsa_ok(gsa_body(res));
        REQUIRE(results.size() == crane::kMaxSearchResults);
        CHECK(results.back().name == "g999");
    }
    SECTION("GSA bytes") {
        std::string res;
        for (int i = 0; i < 30; ++i) {
            res += R"(<R><MT N="portal_name" V="g)" + std::to_string(i) +
                   R"("/><MT N="portal_short_description" V=")" + std::string(100000, 'x') +
                   R"("/></R>)";
        }
        auto results = parse_gsa_ok(gsa_body(res));
        CHECK(results.size() == 10);
        CHECK(payload_bytes(results) <= crane::kMaxSearchResultBytes);
    }
}

TEST_CASE("percent_encode_query is Python 2 urllib.quote", "[search][url]") {
    CHECK(crane::percent_encode_query("hi mom") == "hi%20mom");
    CHECK(crane::percent_encode_query("rhel") == "rhel");
    CHECK(crane::percent_encode_query("a/b_c.d-e~f") == "a/b_c.d-e%7Ef");
    CHECK(crane::percent_encode_query("+&?=#%:@") == "%2B%26%3F%3D%23%25%3A%40");
    CHECK(crane::percent_encode_query("caf\xC3\xA9") == "caf%C3%A9");
    CHECK(crane::percent_encode_query(std::string("a\0b", 3)) == "a%00b");
    CHECK(crane::percent_encode_query("") == "");
}

TEST_CASE("solr_request_url fills {0} with the quoted query", "[search][url]") {
    CHECK(crane::solr_request_url("http://pulpproject.org/search?q={0}", "hi mom") ==
          "http://pulpproject.org/search?q=hi%20mom");
    CHECK(crane::solr_request_url("http://s/select?q={0}&fq=title:{0}&wt=json", "a b") ==
          "http://s/select?q=a%20b&fq=title:a%20b&wt=json");
    CHECK(crane::solr_request_url("http://s/select?fq={{!tag=x}}kind&q={0}", "q") ==
          "http://s/select?fq={!tag=x}kind&q=q");
    CHECK(crane::solr_request_url("http://s/{0}", "a/b") == "http://s/a/b");
}

TEST_CASE("is_valid_solr_url_template accepts what str.format(q) accepts", "[search][url]") {
    CHECK(crane::is_valid_solr_url_template("http://s/?q={0}"));
    CHECK(crane::is_valid_solr_url_template("http://s/?fq={{x}}&q={0}"));
    CHECK_FALSE(crane::is_valid_solr_url_template("http://s/?q="));
    CHECK_FALSE(crane::is_valid_solr_url_template("http://s/?q={1}"));
    CHECK_FALSE(crane::is_valid_solr_url_template("http://s/?q={}"));
    CHECK_FALSE(crane::is_valid_solr_url_template("http://s/?q={0}&x={"));
    CHECK_FALSE(crane::is_valid_solr_url_template("http://s/?q={0}}"));
}

TEST_CASE("gsa_request_url adds q to the URL's own parameters", "[search][url]") {
    CHECK(crane::gsa_request_url("http://pulpproject.org/search", "foo") ==
          "http://pulpproject.org/search?q=foo");
    CHECK(crane::gsa_request_url("https://pulpproject.org/search?x=1&y=2", "foo") ==
          "https://pulpproject.org/search?x=1&y=2&q=foo");
    SECTION("the query is quote_plus-encoded") {
        CHECK(crane::gsa_request_url("http://g/search", "hi mom/dad~+") ==
              "http://g/search?q=hi+mom%2Fdad%7E%2B");
    }
    SECTION("an existing q is replaced") {
        CHECK(crane::gsa_request_url("http://g/s?q=old&site=a", "new") ==
              "http://g/s?site=a&q=new");
    }
    SECTION("existing pairs are decoded and re-encoded, blanks dropped, repeats grouped") {
        CHECK(crane::gsa_request_url(
                  "http://g/s?getfields=portal_name.portal_short_description&a=b%2fc+d&empty=&"
                  "novalue&site=x;a=2&%zz=1#frag",
                  "q") ==
              "http://g/s?getfields=portal_name.portal_short_description&a=b%2Fc+d&a=2&site=x&"
              "%25zz=1&q=q#frag");
    }
    SECTION("a bare '?' or a host without a path") {
        CHECK(crane::gsa_request_url("http://g/s?", "a") == "http://g/s?q=a");
        CHECK(crane::gsa_request_url("http://g", "a") == "http://g?q=a");
    }
}

TEST_CASE("choose_search_backend: GSA wins, then Solr, else none", "[search]") {
    CHECK(crane::choose_search_backend("http://g", "http://s/{0}") ==
          crane::SearchBackendKind::Gsa);
    CHECK(crane::choose_search_backend("", "http://s/{0}") == crane::SearchBackendKind::Solr);
    CHECK(crane::choose_search_backend("", "") == crane::SearchBackendKind::None);
    CHECK(std::string(crane::search_backend_name(crane::SearchBackendKind::Solr)) == "solr");
}

// ===================== the 200 body =====================

TEST_CASE("render_search_response is Crane's json.dumps(sort_keys=True) byte for byte",
          "[search][render]") {
    SECTION("no results") {
        CHECK(crane::render_search_response("rhel", {}) ==
              R"({"num_results": 0, "query": "rhel", "results": []})");
    }
    SECTION("one GSA-style result") {
        CHECK(
            crane::render_search_response(
                "rhel", {result("rhel", "Red Hat Enterprise Linux", false, false, 0, true)}) ==
            R"({"num_results": 1, "query": "rhel", "results": [{"description": "Red Hat Enterprise Linux", )"
            R"("is_official": false, "is_trusted": false, "name": "rhel", "should_filter": true, )"
            R"("star_count": 0}]})");
    }
    SECTION("two results, a null description, escapes and non-ASCII") {
        CHECK(crane::render_search_response(
                  "caf\xC3\xA9 \"x\"",
                  {result("a/b", std::nullopt, true, true, 42, false),
                   result("c\xF0\x9F\x98\x80", "line\nbreak\\", false, true, -1, true)}) ==
              R"({"num_results": 2, "query": "caf\u00e9 \"x\"", "results": [)"
              R"({"description": null, "is_official": true, "is_trusted": true, "name": "a/b", )"
              R"("should_filter": false, "star_count": 42}, )"
              R"({"description": "line\nbreak\\", "is_official": true, "is_trusted": false, )"
              R"("name": "c\ud83d\ude00", "should_filter": true, "star_count": -1}]})");
    }
}

// ===================== run_search over HTTP =====================

TEST_CASE("run_search: Solr answer is fetched, quoted and parsed", "[search][http]") {
    const std::string body = fixture("solr_docs.json");
    TestServer server([&](const std::string&) { return Reply{http_reply(200, body)}; });
    auto outcome =
        crane::run_search(crane::SearchBackendKind::Solr, server.url("/solr/select?q={0}&wt=json"),
                          "hi mom", fast_options());
    INFO(outcome.error().message);
    REQUIRE(status_of(outcome) == 200);
    CHECK(outcome.error().message.empty());
    CHECK(outcome->results.size() == 6);
    CHECK(server.request_lines() ==
          std::vector<std::string>{"GET /solr/select?q=hi%20mom&wt=json HTTP/1.1"});
}

TEST_CASE("run_search: GSA answer is fetched with q added and parsed", "[search][http]") {
    const std::string body = fixture("gsa_two_results.xml");
    TestServer server([&](const std::string&) { return Reply{http_reply(200, body)}; });
    auto outcome = crane::run_search(crane::SearchBackendKind::Gsa, server.url("/search?site=x"),
                                     "hi mom", fast_options());
    INFO(outcome.error().message);
    REQUIRE(status_of(outcome) == 200);
    REQUIRE(outcome->results.size() == 2);
    CHECK(outcome->results[0].should_filter);
    CHECK(server.request_lines() ==
          std::vector<std::string>{"GET /search?site=x&q=hi+mom HTTP/1.1"});
}

TEST_CASE("run_search: redirects are followed", "[search][http]") {
    const std::string body = fixture("gsa_no_description.xml");
    TestServer server([&](const std::string& head) {
        if (head.rfind("GET /old", 0) == 0) {
            return Reply{http_reply(302, "", "Location: /new\r\n")};
        }
        return Reply{http_reply(200, body)};
    });
    auto outcome =
        crane::run_search(crane::SearchBackendKind::Gsa, server.url("/old"), "x", fast_options());
    INFO(outcome.error().message);
    CHECK(status_of(outcome) == 200);
    CHECK(outcome->results.size() == 1);
    CHECK(server.request_lines().size() == 2);
}

TEST_CASE("run_search: a non-200 backend status is 502", "[search][http]") {
    for (int status : {500, 404, 204, 301}) {
        TestServer server([&](const std::string&) { return Reply{http_reply(status, "{}")}; });
        auto outcome = crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"),
                                         "x", fast_options());
        INFO(status << ": " << outcome.error().message);
        CHECK(status_of(outcome) == 502);
        CHECK_FALSE(outcome.ok());  // no results
        CHECK(outcome.error().message.find("search backend solr (" + server.url("/s?q=***") + ")") == 0);
        CHECK(outcome.error().message.find(std::to_string(status)) != std::string::npos);
    }
}

TEST_CASE("run_search: a slow backend is 504 after the timeout", "[search][http]") {
    TestServer server([](const std::string&) { return Reply{http_reply(200, "{}"), 3000}; });
    auto start = std::chrono::steady_clock::now();
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"), "x",
                                     fast_options());
    auto elapsed = std::chrono::steady_clock::now() - start;
    INFO(outcome.error().message);
    CHECK(status_of(outcome) == 504);
    CHECK(elapsed >= std::chrono::milliseconds(900));
    CHECK(elapsed < std::chrono::milliseconds(2500));
    CHECK(outcome.error().message.find("timed out") != std::string::npos);
}

TEST_CASE("run_search: nothing listening is 503", "[search][http]") {
    std::string url;
    {
        TestServer closed(nullptr);  // bound then closed: the port refuses
        url = closed.url("/s?q={0}");
    }
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr, url, "x", fast_options());
    INFO(outcome.error().message);
    CHECK(status_of(outcome) == 503);
    CHECK(outcome.error().message.find("cannot connect") != std::string::npos);
}

TEST_CASE("run_search: a connect that times out is 503, as urllib2's URLError", "[search][http]") {
    // backlog 0 and nobody accepting: after one queued connection the
    // kernel drops further SYNs, so the next connect never completes
    TestServer full(nullptr, 0);
    int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(filler >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(full.port()));
    REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    auto start = std::chrono::steady_clock::now();
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr, full.url("/s?q={0}"), "x",
                                     fast_options());
    auto elapsed = std::chrono::steady_clock::now() - start;
    ::close(filler);
    INFO(outcome.error().message);
    CHECK(status_of(outcome) == 503);
    CHECK(elapsed < std::chrono::milliseconds(2500));
}

TEST_CASE("run_search: a reply that is not HTTP is 502", "[search][http]") {
    TestServer server(
        [](const std::string&) { return Reply{"this is not an HTTP reply\r\n\r\n"}; });
    auto outcome =
        crane::run_search(crane::SearchBackendKind::Gsa, server.url("/"), "x", fast_options());
    INFO(outcome.error().message);
    CHECK(status_of(outcome) == 502);
    CHECK(outcome.error().message.find("bad reply") != std::string::npos);
}

TEST_CASE("run_search: an unparsable 200 body is 502", "[search][http]") {
    TestServer server([](const std::string&) { return Reply{http_reply(200, "<html>oops")}; });
    for (auto kind : {crane::SearchBackendKind::Gsa, crane::SearchBackendKind::Solr}) {
        auto outcome = crane::run_search(kind, server.url("/s?q={0}"), "x", fast_options());
        INFO(outcome.error().message);
        CHECK(status_of(outcome) == 502);
        CHECK(outcome.error().message.find("unparsable body") != std::string::npos);
    }
}

TEST_CASE("run_search: a body over max_body_bytes is 502", "[search][http]") {
    const std::string big = solr_body("[]" + std::string(5000, ' '));
    SECTION("announced by Content-Length") {
        TestServer server([&](const std::string&) { return Reply{http_reply(200, big)}; });
        auto options = fast_options();
        options.max_body_bytes = 1000;
        auto outcome =
            crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"), "x", options);
        INFO(outcome.error().message);
        CHECK(status_of(outcome) == 502);
        CHECK(outcome.error().message.find("larger than 1000 bytes") != std::string::npos);
    }
    SECTION("without Content-Length") {
        TestServer server([&](const std::string&) {
            return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big};
        });
        auto options = fast_options();
        options.max_body_bytes = 1000;
        auto outcome =
            crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"), "x", options);
        INFO(outcome.error().message);
        CHECK(status_of(outcome) == 502);
        CHECK(outcome.error().message.find("larger than 1000 bytes") != std::string::npos);
    }
}

TEST_CASE("run_search: a cut answer is 200 with a notice for the log", "[search][http][limits]") {
    const std::string body = solr_body("[" + certified_doc(100000, 600) + "]");
    TestServer server([&](const std::string&) { return Reply{http_reply(200, body)}; });
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr,
                                     server.url("/s?q={0}&api_key=k"), "x", fast_options());
    INFO(outcome.error().message);
    REQUIRE(status_of(outcome) == 200);
    CHECK(outcome->results.size() == 10);
    CHECK(outcome->notice == "search backend solr (" + server.url("/s?q=***&api_key=***") +
                                "): answer cut to its first 10 results (limits: 1000 results, "
                                "1048576 bytes of names and descriptions)");
    const std::string small = fixture("solr_docs.json");
    TestServer plain([&](const std::string&) { return Reply{http_reply(200, small)}; });
    CHECK(crane::run_search(crane::SearchBackendKind::Solr, plain.url("/s?q={0}"), "x", fast_options())
              ->notice.empty());
}

TEST_CASE("run_search: credentials in the backend URL stay out of the log line", "[search][http]") {
    TestServer server([](const std::string&) { return Reply{http_reply(500, "")}; });
    std::string url = "http://user:s3cret@127.0.0.1:" + std::to_string(server.port()) + "/s?q={0}";
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr, url, "x", fast_options());
    CHECK(status_of(outcome) == 502);
    CHECK(outcome.error().message.find("s3cret") == std::string::npos);
    CHECK(outcome.error().message.find("http://***@127.0.0.1:") != std::string::npos);
}

TEST_CASE("run_search: query values of the backend URL stay out of the log line",
          "[search][http]") {
    TestServer server([](const std::string&) { return Reply{http_reply(500, "")}; });
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    SECTION("Solr") {
        auto outcome = crane::run_search(crane::SearchBackendKind::Solr,
                                         base + "/s?q={0}&api_key=s3cret;wt=json&flag#frag",
                                         "private query", fast_options());
        CHECK(status_of(outcome) == 502);
        CHECK(outcome.error().message.find("s3cret") == std::string::npos);
        CHECK(outcome.error().message.find("private") == std::string::npos);
        CHECK(outcome.error().message.find("search backend solr (" + base +
                                 "/s?q=***&api_key=***;wt=***&flag#frag): ") == 0);
    }
    SECTION("GSA") {
        auto outcome = crane::run_search(crane::SearchBackendKind::Gsa,
                                         "http://u:pw@127.0.0.1:" + std::to_string(server.port()) +
                                             "/search?api_key=s3cret",
                                         "x", fast_options());
        CHECK(status_of(outcome) == 502);
        CHECK(outcome.error().message.find("s3cret") == std::string::npos);
        CHECK(outcome.error().message.find("search backend gsa (http://***@127.0.0.1:" +
                                 std::to_string(server.port()) + "/search?api_key=***&q=***): ") ==
              0);
    }
}

TEST_CASE("run_search: other schemes are refused without a request (503)", "[search][http]") {
    auto outcome = crane::run_search(crane::SearchBackendKind::Solr, "file:///etc/passwd?{0}", "x",
                                     fast_options());
    CHECK(status_of(outcome) == 503);
}

TEST_CASE("run_search: no backend is 404", "[search][http]") {
    auto outcome = crane::run_search(crane::SearchBackendKind::None, "", "x", fast_options());
    CHECK(status_of(outcome) == 404);
    CHECK_FALSE(outcome.ok());  // no results
}

TEST_CASE("run_search: environment proxies are used only when asked", "[search][http]") {
    std::string closed_proxy;
    {
        TestServer closed(nullptr);
        closed_proxy = closed.url("");
    }
    const std::string body = fixture("solr_docs.json");
    TestServer server([&](const std::string&) { return Reply{http_reply(200, body)}; });
    ::setenv("http_proxy", closed_proxy.c_str(), 1);
    auto direct = crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"), "x",
                                    fast_options());
    auto options = fast_options();
    options.use_env_proxy = true;
    auto proxied =
        crane::run_search(crane::SearchBackendKind::Solr, server.url("/s?q={0}"), "x", options);
    ::unsetenv("http_proxy");
    INFO(direct.error().message << " / " << proxied.error().message);
    CHECK(status_of(direct) == 200);
    CHECK(status_of(proxied) == 503);
}
