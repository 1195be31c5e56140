// Unit tests for serve-content file paths and their Cache-Control
// (crane/content_path.h).
#include <catch2/catch.hpp>
#include <string>

#include "api/content_path.h"

using crane::content_cache_control;
using crane::content_file_path;

namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("content paths join dir, repository and relative path", "[content_path]") {
    CHECK(content_file_path("/var/www/pub/docker/v2/web/", "redhat-zoo", "manifests/2/latest") ==
          "/var/www/pub/docker/v2/web/redhat-zoo/manifests/2/latest");
    CHECK(content_file_path("/var/www/pub/docker/v2/web", "redhat-zoo", "blobs/" + kDigest) ==
          "/var/www/pub/docker/v2/web/redhat-zoo/blobs/" + kDigest);
    CHECK(content_file_path("/var/www/pub/docker/v1/web//", "zoo", "abc123/layer") ==
          "/var/www/pub/docker/v1/web/zoo/abc123/layer");
    CHECK(content_file_path("/", "zoo", "tags/list") == "/zoo/tags/list");
}

TEST_CASE("content paths allow inner slashes, dots inside names and UTF-8", "[content_path]") {
    CHECK(content_file_path("/c", "org/zoo", "tags/list") == "/c/org/zoo/tags/list");
    CHECK(content_file_path("/c", "zoo", "manifests/list/v1.2..3") ==
          "/c/zoo/manifests/list/v1.2..3");
    CHECK(content_file_path("/c", ".hidden", "...") == "/c/.hidden/...");
    CHECK(content_file_path("/c", "z\xc3\xb6o", "a") == "/c/z\xc3\xb6o/a");
}

TEST_CASE("content paths refuse an empty content dir, repository or relative path",
          "[content_path]") {
    CHECK_FALSE(content_file_path("", "zoo", "tags/list"));
    CHECK_FALSE(content_file_path("/c", "", "tags/list"));
    CHECK_FALSE(content_file_path("/c", "zoo", ""));
    CHECK_FALSE(content_file_path(std::string("/c\0/x", 5), "zoo", "a"));
}

TEST_CASE("content paths refuse absolute parts and empty segments", "[content_path]") {
    CHECK_FALSE(content_file_path("/c", "/etc", "passwd"));
    CHECK_FALSE(content_file_path("/c", "zoo", "/etc/passwd"));
    CHECK_FALSE(content_file_path("/c", "zoo/", "a"));
    CHECK_FALSE(content_file_path("/c", "zoo", "tags/"));
    CHECK_FALSE(content_file_path("/c", "zoo", "tags//list"));
    CHECK_FALSE(content_file_path("/c", "org//zoo", "a"));
    CHECK_FALSE(content_file_path("/c", "/", "a"));
    CHECK_FALSE(content_file_path("/c", "zoo", "/"));
}

TEST_CASE("content paths refuse . and .. segments anywhere", "[content_path]") {
    for (const char* rel : {"..", ".", "../x", "./x", "a/..", "a/.", "a/../b", "a/./b",
                            "manifests/../../../etc/passwd"}) {
        INFO("relative path: " << rel);
        CHECK_FALSE(content_file_path("/c", "zoo", rel));
    }
    for (const char* repo : {"..", ".", "../zoo", "zoo/..", "org/../zoo", "./zoo"}) {
        INFO("repository: " << repo);
        CHECK_FALSE(content_file_path("/c", repo, "a"));
    }
}

TEST_CASE("content paths refuse NUL, backslash, percent and control characters", "[content_path]") {
    CHECK_FALSE(content_file_path("/c", "zoo", std::string("a\0b", 3)));
    CHECK_FALSE(content_file_path("/c", std::string("zoo\0", 4), "a"));
    CHECK_FALSE(content_file_path("/c", "zoo", "a\\..\\b"));
    CHECK_FALSE(content_file_path("/c", "zoo\\x", "a"));
    // Left-over percent signs mean double encoding: refused, never decoded.
    CHECK_FALSE(content_file_path("/c", "zoo", "%2e%2e/etc"));
    CHECK_FALSE(content_file_path("/c", "zoo", "a%2fb"));
    CHECK_FALSE(content_file_path("/c", "zoo", "100%"));
    CHECK_FALSE(content_file_path("/c", "z%6fo", "a"));
    for (char c : {'\x01', '\t', '\n', '\r', '\x1b', '\x1f', '\x7f'}) {
        INFO("control byte " << static_cast<int>(c));
        CHECK_FALSE(content_file_path("/c", "zoo", std::string("a") + c + "b"));
        CHECK_FALSE(content_file_path("/c", std::string("zoo") + c, "a"));
    }
}

TEST_CASE("content paths refuse a segment over 255 bytes", "[content_path]") {
    const std::string ok(255, 'a');
    const std::string long_name(256, 'a');
    CHECK(content_file_path("/c", "zoo", "x/" + ok) == "/c/zoo/x/" + ok);
    CHECK_FALSE(content_file_path("/c", "zoo", "x/" + long_name));
    CHECK_FALSE(content_file_path("/c", long_name, "x"));
}

TEST_CASE("content paths refuse a joined path over 4095 bytes", "[content_path]") {
    // "/c/zoo/" is 7 bytes; 16 segments of 255 bytes plus 15 slashes is 4095.
    std::string rel;
    for (int i = 0; i < 16; ++i) rel += (i ? "/" : "") + std::string(255, 'a');
    const std::string fits = rel.substr(0, 4095 - 7);
    REQUIRE(fits.back() != '/');
    CHECK(content_file_path("/c", "zoo", fits)->size() == 4095);
    CHECK_FALSE(content_file_path("/c", "zoo", fits + "b"));
}

TEST_CASE("digest-addressed files are cached for a year as immutable", "[content_path]") {
    CHECK(content_cache_control("blobs/" + kDigest, 60) == "public, max-age=31536000, immutable");
    CHECK(content_cache_control("manifests/2/" + kDigest, 60) ==
          "public, max-age=31536000, immutable");
    CHECK(content_cache_control("manifests/list/" + kDigest, 60) ==
          "public, max-age=31536000, immutable");
    CHECK(content_cache_control(kDigest, 60) == "public, max-age=31536000, immutable");
}

TEST_CASE("tag-addressed and other files are cached for the polling interval", "[content_path]") {
    CHECK(content_cache_control("manifests/2/latest", 60) == "public, max-age=60");
    CHECK(content_cache_control("manifests/1/latest", 5) == "public, max-age=5");
    CHECK(content_cache_control("tags/list", 60) == "public, max-age=60");
    CHECK(content_cache_control("abc123/layer", 60) == "public, max-age=60");
    CHECK(content_cache_control("manifests/2/latest", -1) == "public, max-age=0");
}

TEST_CASE("only a well-formed sha256 digest as the last segment counts as immutable",
          "[content_path]") {
    CHECK(content_cache_control("blobs/" + kDigest.substr(0, kDigest.size() - 1), 60) ==
          "public, max-age=60");
    CHECK(content_cache_control("blobs/" + kDigest + "0", 60) == "public, max-age=60");
    std::string upper = kDigest;
    upper.back() = 'F';
    CHECK(content_cache_control("blobs/" + upper, 60) == "public, max-age=60");
    CHECK(content_cache_control("blobs/sha512:" + kDigest.substr(7), 60) == "public, max-age=60");
    CHECK(content_cache_control(kDigest + "/tags", 60) == "public, max-age=60");
}

TEST_CASE("files of protected repositories are cached privately", "[content_path]") {
    CHECK(content_cache_control("blobs/" + kDigest, 60, true) ==
          "private, max-age=31536000, immutable");
    CHECK(content_cache_control("manifests/2/latest", 60, true) == "private, max-age=60");
}
