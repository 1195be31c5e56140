// Unit tests for CDN URL rewriting and token signing (crane/cdn.h). Expected
// HMACs come from the openssl command line tool, not from our own code.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "api/cdn.h"

using crane::CdnSettings;
using crane::HmacAlgorithm;

namespace {

std::string run_command(const std::string& command) {
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[512];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    REQUIRE(::pclose(pipe) == 0);
    return out;
}

const char* openssl_name(HmacAlgorithm algorithm) {
    switch (algorithm) {
        case HmacAlgorithm::Sha1:
            return "sha1";
        case HmacAlgorithm::Md5:
            return "md5";
        case HmacAlgorithm::Sha256:
            break;
    }
    return "sha256";
}

// HMAC of message under the hex key, lowercase hex, as `openssl dgst` computes it.
std::string openssl_hmac(HmacAlgorithm algorithm, const std::string& hex_key,
                         const std::string& message) {
    char name[] = "/tmp/crane_cdn_msg_XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    {
        std::ofstream f(name, std::ios::binary);
        f << message;
    }
    const std::string out = run_command(std::string("openssl dgst -") + openssl_name(algorithm) +
                                        " -mac HMAC -macopt hexkey:" + hex_key + " -r " + name);
    ::unlink(name);
    return out.substr(0, out.find(' '));  // "-r": "<hex> *<file>"
}

CdnSettings signing(const std::string& hex_secret,
                    HmacAlgorithm algorithm = HmacAlgorithm::Sha256) {
    CdnSettings s;
    s.secret = crane::decode_hex_secret(hex_secret).value();
    s.algorithm = algorithm;
    return s;
}

}  // namespace

TEST_CASE("hmac algorithm names are sha256, sha1 and md5 in any letter case", "[cdn]") {
    CHECK(crane::parse_hmac_algorithm("sha256") == HmacAlgorithm::Sha256);
    CHECK(crane::parse_hmac_algorithm("SHA256") == HmacAlgorithm::Sha256);
    CHECK(crane::parse_hmac_algorithm("Sha256") == HmacAlgorithm::Sha256);
    CHECK(crane::parse_hmac_algorithm("sha1") == HmacAlgorithm::Sha1);
    CHECK(crane::parse_hmac_algorithm("SHA1") == HmacAlgorithm::Sha1);
    CHECK(crane::parse_hmac_algorithm("md5") == HmacAlgorithm::Md5);
    CHECK(crane::parse_hmac_algorithm("MD5") == HmacAlgorithm::Md5);
}

TEST_CASE("unknown hmac algorithm names are refused", "[cdn]") {
    for (const char* name : {"", "sha512", "sha-256", "sha2", "sha", " sha256", "sha256 ",
                             "sha2566", "md4", "hmac-sha256"}) {
        INFO("name: '" << name << "'");
        CHECK_FALSE(crane::parse_hmac_algorithm(name).has_value());
    }
}

TEST_CASE("a hex secret decodes to its raw bytes, either letter case", "[cdn]") {
    CHECK(crane::decode_hex_secret("abc123") == std::string("\xab\xc1\x23"));
    CHECK(crane::decode_hex_secret("ABC123") == std::string("\xab\xc1\x23"));
    CHECK(crane::decode_hex_secret("00ff") == std::string("\x00\xff", 2));
    CHECK(crane::decode_hex_secret("0123456789abcdefABCDEF00")->size() == 12);
}

TEST_CASE("a secret that is empty, odd-length or not hex is refused", "[cdn]") {
    for (const char* hex : {"", "a", "abc", "abc12", "zz", "abcg", "0x12", "ab cd", " abc", "ab-c",
                            "\xc3\xa9\xc3\xa9"}) {
        INFO("secret: '" << hex << "'");
        CHECK_FALSE(crane::decode_hex_secret(hex).has_value());
    }
    CHECK_FALSE(crane::decode_hex_secret(std::string("ab\0c", 4)).has_value());
}

TEST_CASE("the token is exp=EXP~hmac=HMAC(secret, exp=EXP~url=PATH) for every algorithm", "[cdn]") {
    const struct {
        const char* secret;
        const char* path;
        std::int64_t expires;
    } cases[] = {
        {"abc123", "/zoo/bar/manifests/latest", 1593821400},
        {"00112233445566778899aabbccddeeff", "/content/dist/rhel/v2/blobs/sha256:abc", 42},
        {"DEADBEEF", "/", 0},
        {"ff", "", 9999999999},
        // A key longer than every block size is hashed first by HMAC.
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00",
         "/a b/%41/~tilde", 1700000000},
    };
    for (HmacAlgorithm algorithm :
         {HmacAlgorithm::Sha256, HmacAlgorithm::Sha1, HmacAlgorithm::Md5}) {
        for (const auto& c : cases) {
            INFO(openssl_name(algorithm) << " secret " << c.secret << " path " << c.path);
            const std::string exp = "exp=" + std::to_string(c.expires);
            const std::string expected =
                exp + "~hmac=" + openssl_hmac(algorithm, c.secret, exp + "~url=" + c.path);
            CHECK(crane::cdn_token(c.path, signing(c.secret, algorithm), c.expires) == expected);
        }
    }
}

TEST_CASE("the hmac is lowercase hex of the digest's full length", "[cdn]") {
    const auto hmac_of = [](HmacAlgorithm a) {
        const std::string token = crane::cdn_token("/x", signing("abcd", a), 1);
        return token.substr(token.find("~hmac=") + 6);
    };
    CHECK(hmac_of(HmacAlgorithm::Sha256).size() == 64);
    CHECK(hmac_of(HmacAlgorithm::Sha1).size() == 40);
    CHECK(hmac_of(HmacAlgorithm::Md5).size() == 32);
    CHECK(hmac_of(HmacAlgorithm::Sha256).find_first_not_of("0123456789abcdef") ==
          std::string::npos);
}

TEST_CASE("signing appends ?PARAM=token for the url path, expiring now + ttl", "[cdn]") {
    CdnSettings s = signing("abc123");
    const std::int64_t now = 1593820800;
    const std::string url = "http://cdn.redhat.com/zoo/bar/manifests/latest";
    const std::string exp = "exp=" + std::to_string(now + 300);
    const std::string hmac =
        openssl_hmac(HmacAlgorithm::Sha256, "abc123", exp + "~url=/zoo/bar/manifests/latest");
    CHECK(crane::cdn_sign(url, s, now) == url + "?_auth_=" + exp + "~hmac=" + hmac);
}

TEST_CASE("signing honours the configured ttl, parameter name and algorithm", "[cdn]") {
    CdnSettings s = signing("abc123", HmacAlgorithm::Md5);
    s.ttl = 600;
    s.param = "token";
    const std::string url = "https://cdn.example.com/v2/blobs/sha256:0a";
    const std::string exp = "exp=1600";
    CHECK(crane::cdn_sign(url, s, 1000) ==
          url + "?token=" + exp + "~hmac=" +
              openssl_hmac(HmacAlgorithm::Md5, "abc123", exp + "~url=/v2/blobs/sha256:0a"));
}

TEST_CASE("signing matches Crane's own test: ?_auth_= and exp=now+ttl~", "[cdn]") {
    CdnSettings s = signing("abc123");
    s.ttl = 600;
    const std::string signed_url = crane::cdn_sign("http://cdn.redhat.com/zoo/bar", s, 1593820800);
    CHECK(signed_url.find("?_auth_=") != std::string::npos);
    CHECK(signed_url.find("exp=1593821400~") != std::string::npos);
}

TEST_CASE("signing a url that already has a query uses & and signs the path only", "[cdn]") {
    CdnSettings s = signing("abc123");
    const std::string url = "https://h/a/b?x=1";
    const std::string exp = "exp=310";
    const std::string token =
        exp + "~hmac=" + openssl_hmac(HmacAlgorithm::Sha256, "abc123", exp + "~url=/a/b");
    CHECK(crane::cdn_sign(url, s, 10) == url + "&_auth_=" + token);
    // An empty query or a trailing '&' needs no extra separator.
    CHECK(crane::cdn_sign("https://h/a/b?", s, 10) == "https://h/a/b?_auth_=" + token);
    CHECK(crane::cdn_sign("https://h/a/b?x=1&", s, 10) == "https://h/a/b?x=1&_auth_=" + token);
}

TEST_CASE("signing puts the token before a fragment", "[cdn]") {
    CdnSettings s = signing("abc123");
    const std::string token = crane::cdn_token("/a/b", s, 310);
    CHECK(crane::cdn_sign("https://h/a/b#frag", s, 10) ==
          "https://h/a/b?_auth_=" + token + "#frag");
    CHECK(crane::cdn_sign("https://h/a/b?x#f?g", s, 10) ==
          "https://h/a/b?x&_auth_=" + token + "#f?g");
}

TEST_CASE("without a secret the url is not signed", "[cdn]") {
    CdnSettings s;
    CHECK_FALSE(s.signs());
    CHECK(crane::cdn_sign("https://h/a?b", s, 10) == "https://h/a?b");
    CHECK(crane::cdn_apply("https://h/a?b", s, 10) == "https://h/a?b");
}

TEST_CASE("an expiry beyond int64 saturates instead of overflowing", "[cdn]") {
    CdnSettings s = signing("abc123");
    s.ttl = 300;
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    CHECK(crane::cdn_sign("https://h/a", s, max - 1).find("exp=" + std::to_string(max) + "~") !=
          std::string::npos);
}

TEST_CASE("rewriting replaces every occurrence of url_match when both values are set", "[cdn]") {
    CdnSettings s;
    s.url_match = "cdn.redhat.com";
    s.url_replace = "cdn.fedora.com";
    CHECK(s.rewrites());
    CHECK(crane::cdn_rewrite("http://cdn.redhat.com/zoo/bar/manifests/latest", s) ==
          "http://cdn.fedora.com/zoo/bar/manifests/latest");
    CHECK(crane::cdn_rewrite("http://cdn.redhat.com/cdn.redhat.com/x?h=cdn.redhat.com", s) ==
          "http://cdn.fedora.com/cdn.fedora.com/x?h=cdn.fedora.com");
    CHECK(crane::cdn_rewrite("http://other.example.com/x", s) == "http://other.example.com/x");
}

TEST_CASE("rewriting is Python's str.replace: left to right, non-overlapping", "[cdn]") {
    CdnSettings s;
    s.url_match = "aa";
    s.url_replace = "b";
    CHECK(crane::cdn_rewrite("aaa", s) == "ba");
    CHECK(crane::cdn_rewrite("aaaa", s) == "bb");
    s.url_match = "a";
    s.url_replace = "aa";  // the replacement is not rescanned
    CHECK(crane::cdn_rewrite("/a/a", s) == "/aa/aa");
}

TEST_CASE("rewriting needs both url_match and url_replace", "[cdn]") {
    CdnSettings s;
    s.url_match = "cdn.redhat.com";
    CHECK_FALSE(s.rewrites());
    CHECK(crane::cdn_rewrite("http://cdn.redhat.com/x", s) == "http://cdn.redhat.com/x");
    s.url_match.clear();
    s.url_replace = "cdn.fedora.com";
    CHECK_FALSE(s.rewrites());
    CHECK(crane::cdn_rewrite("http://cdn.redhat.com/x", s) == "http://cdn.redhat.com/x");
}

TEST_CASE("apply rewrites first and signs the rewritten path", "[cdn]") {
    CdnSettings s = signing("abc123");
    s.url_match = "https://origin.example.com/pulp/";
    s.url_replace = "https://cdn.example.com/edge/pulp/";
    const std::string token = crane::cdn_token("/edge/pulp/v2/zoo/tags/list", s, 1300);
    CHECK(crane::cdn_apply("https://origin.example.com/pulp/v2/zoo/tags/list", s, 1000) ==
          "https://cdn.example.com/edge/pulp/v2/zoo/tags/list?_auth_=" + token);
}

TEST_CASE("url_path_of gives the path without scheme, authority, query or fragment", "[cdn]") {
    CHECK(crane::url_path_of("https://h/a/b?x=1") == "/a/b");
    CHECK(crane::url_path_of("https://user@h:8443/a/b/#f") == "/a/b/");
    CHECK(crane::url_path_of("http://h/a;p/b;q") == "/a;p/b;q");
    CHECK(crane::url_path_of("/a/b?x") == "/a/b");
    CHECK(crane::url_path_of("a/b#x") == "a/b");
    CHECK(crane::url_path_of("//h/a") == "/a");
    CHECK(crane::url_path_of("file:///srv/x") == "/srv/x");
    CHECK(crane::url_path_of("HTTPS://H/A") == "/A");
    CHECK(crane::url_path_of("https://h/a/b:c") == "/a/b:c");
}

TEST_CASE("url_path_of is empty when the url has no path, as in Python's urlparse", "[cdn]") {
    CHECK(crane::url_path_of("https://h") == "");
    CHECK(crane::url_path_of("https://h?x=/y") == "");
    CHECK(crane::url_path_of("https://h#/y") == "");
    CHECK(crane::url_path_of("") == "");
    CHECK(crane::url_path_of("?x") == "");
}
