// Unit tests for entitlement certificates: v1 download paths,
// the v3 path tree (round trip through our own encoder, plus hand-made bytes),
// hostile payloads, validity dates and the per-process certificate cache.
#include <openssl/err.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "entitlement/entitlement_cache.h"
#include "entitlement/entitlement_certificate.h"
#include "entitlement_test_helpers.h"

using crane::EntitlementCache;
using crane::EntitlementCertificate;
using crane::EntitlementPathTree;
using crane::normalize_url_path;
namespace t = crane::testing;

namespace {

// The parsed object, or nullptr with the reason in `error` (if given): the
// shape these tests compare against.
template <typename T>
std::shared_ptr<const T> value_or_null(const crane::Result<std::shared_ptr<const T>>& result,
                                       std::string* error = nullptr) {
    if (result) return *result;
    if (error != nullptr) *error = result.error();
    return nullptr;
}

std::shared_ptr<const EntitlementCertificate> parse(const std::string& pem) {
    std::string error;
    auto cert = value_or_null(EntitlementCertificate::from_pem(pem), &error);
    INFO("parse error: " << error);
    REQUIRE(cert);
    return cert;
}

std::shared_ptr<const EntitlementPathTree> decode(const std::string& payload) {
    std::string error;
    auto tree = value_or_null(EntitlementPathTree::decode(payload), &error);
    INFO("decode error: " << error);
    REQUIRE(tree);
    return tree;
}

// A payload the hostile-input tests can damage: paths sharing prefixes, a variable.
const std::string& sample_payload() {
    static const std::string payload = t::encode_path_tree({
        "/content/dist/rhel/server/7/$releasever/$basearch/os",
        "/content/dist/rhel/server/7/7Server/x86_64/extras/os",
        "/content/beta/rhel/server/7/$basearch/containers",
        "/registry/rhel7",
    });
    return payload;
}

std::size_t zlib_part_size(const std::string& payload) {
    // The sample's tail (count byte + bits) is short; find where zlib ends by
    // re-encoding the word list alone is not possible from outside, so probe:
    // the shortest prefix that still decodes its word list is the zlib part.
    for (std::size_t n = 1; n <= payload.size(); ++n) {
        std::string error;
        value_or_null(EntitlementPathTree::decode(payload.substr(0, n)), &error);
        if (error.find("word list") == std::string::npos &&
            error.find("zlib") == std::string::npos) {
            return n - 1;
        }
    }
    return payload.size();
}

}  // namespace

// ---- url paths ----

TEST_CASE("normalize_url_path collapses duplicate slashes and drops a trailing slash",
          "[entitlement]") {
    CHECK(normalize_url_path("/a//b///c/") == "/a/b/c");
    CHECK(normalize_url_path("//a") == "/a");
    CHECK(normalize_url_path("/") == "/");
    CHECK(normalize_url_path("///") == "/");
    CHECK(normalize_url_path("a/b/") == "a/b");
    CHECK(normalize_url_path("") == "");
    CHECK(normalize_url_path("/a/$basearch/") == "/a/$basearch");
}

// ---- v1 ----

TEST_CASE("a v1 certificate entitles its download path and everything below it",
          "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"/content/dist/rhel/server/7/x86_64/containers"}));
    CHECK(cert->is_entitlement());
    CHECK(cert->major_version() == 1);
    CHECK(cert->version_string() == "1.0");
    CHECK(cert->problem().empty());
    CHECK(cert->content_paths() ==
          std::vector<std::string>{"/content/dist/rhel/server/7/x86_64/containers"});
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers"));
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers/rhel7"));
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers/rhel7/deeper/still"));
    CHECK_FALSE(cert->entitles("/content/dist/rhel/server/7/x86_64"));
    CHECK_FALSE(cert->entitles("/content/dist/rhel/server/7/x86_64/other"));
    CHECK_FALSE(cert->entitles("/"));
    CHECK_FALSE(cert->entitles(""));
}

TEST_CASE("a v1 certificate for /a/foo does not entitle /a/foobar", "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"/a/foo"}));
    CHECK(cert->entitles("/a/foo"));
    CHECK(cert->entitles("/a/foo/bar"));
    CHECK_FALSE(cert->entitles("/a/foobar"));
    CHECK_FALSE(cert->entitles("/a/fo"));
    CHECK_FALSE(cert->entitles("/a"));
    CHECK_FALSE(cert->entitles("/b/foo"));
}

TEST_CASE("a $name segment in a v1 download path matches exactly one segment",
          "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"/content/$releasever/$basearch/os"}));
    CHECK(cert->entitles("/content/7Server/x86_64/os"));
    CHECK(cert->entitles("/content/7Server/x86_64/os/repo"));
    CHECK(cert->entitles("/content/$releasever/$basearch/os"));
    CHECK_FALSE(cert->entitles("/content/7Server/os"));
    CHECK_FALSE(cert->entitles("/content/7Server/x86_64/extra/os"));
    CHECK_FALSE(cert->entitles("/content/7Server/x86_64"));
}

TEST_CASE("v1 matching ignores duplicate and trailing slashes on both sides", "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"//a//foo/"}));
    CHECK(cert->content_paths() == std::vector<std::string>{"/a/foo"});
    CHECK(cert->entitles("/a/foo"));
    CHECK(cert->entitles("/a/foo/"));
    CHECK(cert->entitles("//a///foo//bar/"));
    CHECK(cert->entitles("a/foo"));
    CHECK_FALSE(cert->entitles("//a//foobar/"));
}

TEST_CASE("a v1 certificate with several download paths entitles each of them",
          "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"/one/repo", "/two/$var/repo", "/three"}));
    CHECK(cert->content_paths().size() == 3);
    CHECK(cert->entitles("/one/repo/x"));
    CHECK(cert->entitles("/two/anything/repo"));
    CHECK(cert->entitles("/three/a/b/c"));
    CHECK_FALSE(cert->entitles("/one"));
    CHECK_FALSE(cert->entitles("/two/anything/other"));
    CHECK_FALSE(cert->entitles("/four"));
}

TEST_CASE("v1 extension values are read raw or from a DER string", "[entitlement][v1]") {
    const std::string base(t::kRedHatOid);
    t::CertOptions options;
    options.extensions = {
        {base + ".4.1", "order", t::Wrap::Raw},
        {base + ".2.1.1.6", "/utf8/path", t::Wrap::Utf8String},
        {base + ".2.2.1.6", "/octet/path", t::Wrap::OctetString},
        {base + ".2.3.1.6", "/ia5/path", t::Wrap::Ia5String},
        {base + ".2.4.1.6", "/raw/path", t::Wrap::Raw},
        // same shape, other namespaces: not download paths
        {base + ".2.5.1.7", "/gpg/key/path", t::Wrap::Utf8String},
        {base + ".1.6.1.6", "/product/path", t::Wrap::Utf8String},
    };
    auto cert = parse(t::make_certificate_pem(options));
    CHECK(cert->major_version() == 1);
    CHECK(cert->content_paths() ==
          std::vector<std::string>{"/utf8/path", "/octet/path", "/ia5/path", "/raw/path"});
    CHECK(cert->entitles("/utf8/path"));
    CHECK(cert->entitles("/octet/path"));
    CHECK(cert->entitles("/ia5/path"));
    CHECK(cert->entitles("/raw/path"));
    CHECK_FALSE(cert->entitles("/gpg/key/path"));
    CHECK_FALSE(cert->entitles("/product/path"));
}

TEST_CASE("a v1 certificate without an order name is not an entitlement certificate",
          "[entitlement][v1]") {
    const std::string base(t::kRedHatOid);
    t::CertOptions options;
    options.extensions = {{base + ".1.100.1", "A product"}, {base + ".2.7.1.6", "/a/foo"}};
    auto cert = parse(t::make_certificate_pem(options));
    CHECK_FALSE(cert->is_entitlement());
    CHECK(cert->major_version() == 0);
    CHECK_FALSE(cert->entitles("/a/foo"));
}

TEST_CASE("a v1 download path of / entitles nothing", "[entitlement][v1]") {
    auto cert = parse(t::make_v1_certificate({"/", "//"}));
    CHECK(cert->is_entitlement());
    CHECK_FALSE(cert->entitles("/"));
    CHECK_FALSE(cert->entitles("/a"));
    CHECK_FALSE(cert->problem().empty());
}

// ---- other certificates ----

TEST_CASE("a certificate without Red Hat extensions parses but entitles nothing", "[entitlement]") {
    auto cert = parse(t::make_certificate_pem({}));
    CHECK_FALSE(cert->is_entitlement());
    CHECK(cert->major_version() == 0);
    CHECK(cert->version_string() == "1.0");
    CHECK(cert->content_paths().empty());
    CHECK(cert->path_tree() == nullptr);
    CHECK(cert->problem().empty());
    CHECK_FALSE(cert->entitles("/"));
    CHECK_FALSE(cert->entitles("/a/foo"));
}

TEST_CASE("a certificate with an unsupported version entitles nothing", "[entitlement]") {
    const std::string base(t::kRedHatOid);
    const std::string payload = t::encode_path_tree({"/a/foo"});
    for (const char* version : {"2.0", "4.0", "x.1", "", ".3", "300000.1"}) {
        INFO("version " << version);
        t::CertOptions options;
        options.extensions = {{base + ".6", version},
                              {base + ".4.1", "order"},
                              {base + ".2.1.1.6", "/a/foo"},
                              {base + ".7", payload, t::Wrap::OctetString}};
        auto cert = parse(t::make_certificate_pem(options));
        CHECK_FALSE(cert->is_entitlement());
        CHECK(cert->major_version() == 0);
        CHECK_FALSE(cert->entitles("/a/foo"));
    }
}

// ---- v3 ----

TEST_CASE("the v3 encoder and parser round-trip a set of content paths", "[entitlement][v3]") {
    const std::vector<std::string> paths = {
        "/content/dist/rhel/server/7/$releasever/$basearch/os",
        "/content/dist/rhel/server/7/7Server/x86_64/extras/os",
        "/content/dist/rhel/server/7/7Server/x86_64/optional/os",
        "/content/beta/rhel/server/7/$basearch/containers",
        "/registry/rhel7",
        "/registry",
    };
    auto tree = decode(t::encode_path_tree(paths));
    std::vector<std::string> expected = paths;
    std::sort(expected.begin(), expected.end());
    CHECK(tree->paths() == expected);
    CHECK(tree->paths(2).size() == 2);
    CHECK(tree->paths(0).empty());
}

TEST_CASE("a v3 certificate entitles its content paths and everything below them",
          "[entitlement][v3]") {
    auto cert = parse(t::make_v3_certificate(
        t::encode_path_tree({"/content/dist/rhel/server/7/x86_64/containers", "/other/repo"})));
    CHECK(cert->is_entitlement());
    CHECK(cert->major_version() == 3);
    CHECK(cert->version_string() == "3.4");
    CHECK(cert->problem().empty());
    REQUIRE(cert->path_tree() != nullptr);
    CHECK(cert->content_paths().empty());
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers"));
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers/rhel7"));
    CHECK(cert->entitles("/content/dist/rhel/server/7/x86_64/containers/rhel7/a/b"));
    CHECK(cert->entitles("/other/repo"));
    CHECK(cert->entitles("//other//repo/"));
    CHECK_FALSE(cert->entitles("/content/dist/rhel/server/7/x86_64"));
    CHECK_FALSE(cert->entitles("/content/dist/rhel/server/7/i386/containers"));
    CHECK_FALSE(cert->entitles("/other"));
    CHECK_FALSE(cert->entitles("/"));
    CHECK_FALSE(cert->entitles(""));
}

TEST_CASE("a v3 certificate for /a/foo does not entitle /a/foobar", "[entitlement][v3]") {
    auto cert = parse(t::make_v3_certificate(t::encode_path_tree({"/a/foo"})));
    CHECK(cert->entitles("/a/foo"));
    CHECK(cert->entitles("/a/foo/bar"));
    CHECK_FALSE(cert->entitles("/a/foobar"));
    CHECK_FALSE(cert->entitles("/a"));
    CHECK_FALSE(cert->entitles("/b/foo"));
}

TEST_CASE("a $name node in a v3 tree matches any one segment", "[entitlement][v3]") {
    auto cert = parse(t::make_v3_certificate(
        t::encode_path_tree({"/content/$releasever/$basearch/os", "/$anything/fixed/repo"})));
    CHECK(cert->entitles("/content/7Server/x86_64/os"));
    CHECK(cert->entitles("/content/7Server/x86_64/os/deeper"));
    CHECK(cert->entitles("/whatever/fixed/repo"));
    CHECK(cert->entitles("/content/fixed/repo"));
    CHECK_FALSE(cert->entitles("/content/7Server/os"));
    CHECK_FALSE(cert->entitles("/content/7Server/x86_64/source"));
    CHECK_FALSE(cert->entitles("/whatever/fixed"));
    CHECK_FALSE(cert->entitles("/a/b/fixed/repo"));
}

TEST_CASE("a last segment listing is entitled when the walk reaches its parent",
          "[entitlement][v3]") {
    auto cert = parse(t::make_v3_certificate(t::encode_path_tree({"/foo/path/bar"})));
    CHECK(cert->entitles("/foo/path/bar/listing"));
    CHECK(cert->entitles("/foo/path/listing"));
    CHECK(cert->entitles("/foo/listing"));
    CHECK(cert->entitles("/foo/path/listing/"));
    CHECK_FALSE(cert->entitles("/foo/path/alfred"));
    CHECK_FALSE(cert->entitles("/foo/path/listing/for/alfred"));
    CHECK_FALSE(cert->entitles("/other/listing"));
    CHECK_FALSE(cert->entitles("/foo/path/listingx"));
}

TEST_CASE("a v3 tree where one content path is a prefix of another entitles both",
          "[entitlement][v3]") {
    for (const auto& paths :
         {std::vector<std::string>{"/a", "/a/b/c"}, std::vector<std::string>{"/a/b/c", "/a"}}) {
        auto tree = decode(t::encode_path_tree(paths));
        CHECK(tree->paths() == std::vector<std::string>{"/a", "/a/b/c"});
        CHECK(tree->entitles("/a"));
        CHECK(tree->entitles("/a/x"));
        CHECK(tree->entitles("/a/b/c/d"));
    }
    auto tree = decode(t::encode_path_tree({"/a/b/c", "/a/b/d"}));
    CHECK(tree->entitles("/a/b/c"));
    CHECK(tree->entitles("/a/b/d/e"));
    CHECK_FALSE(tree->entitles("/a/b"));
    CHECK_FALSE(tree->entitles("/a/b/e"));
}

TEST_CASE("a hand-assembled v3 payload decodes with Candlepin's Huffman tie-breaking",
          "[entitlement][v3]") {
    // Words x, y, z and the end marker have weights 1..4. Merging 1+2 gives 3,
    // which ties with leaf z (3): the older leaf goes left, so the codes are
    // end=0, z=10, x=110, y=111. Nodes 1 and 2 get codes 0 and 1.
    // root: x->n1, end | n1: y->n2, z->n2, end | n2: end
    //   110 0 0 | 111 1 10 1 0 | 0  ->  11000111 11010000
    std::string payload = t::zlib_compress(std::string("x\0y\0z\0", 6));
    payload += std::string("\x03\xC7\xD0", 3);
    auto tree = decode(payload);
    CHECK(tree->node_count() == 3);
    CHECK(tree->word_count() == 3);  // x, y, z: the marker is on no edge
    CHECK(tree->paths() == std::vector<std::string>{"/x/y", "/x/z"});
    CHECK(tree->entitles("/x/y"));
    CHECK(tree->entitles("/x/z/deeper"));
    CHECK_FALSE(tree->entitles("/x"));
    CHECK_FALSE(tree->entitles("/x/w"));
    CHECK_FALSE(tree->entitles("/y"));

    // The smallest tree Candlepin makes: one path, so a filler node is added.
    // Codes a=0, end=1; nodes 1, 2 = 0, 1. root: 0 0 1 | n1: 1 | n2: 1 -> 00111000
    std::string single = t::zlib_compress(std::string("a\0", 2)) + std::string("\x03\x38", 2);
    auto one = decode(single);
    CHECK(one->paths() == std::vector<std::string>{"/a"});
    CHECK(single == t::encode_path_tree({"/a"}));
}

TEST_CASE("a v3 tree with more than 127 nodes uses a multi-byte node count", "[entitlement][v3]") {
    std::vector<std::string> paths;
    for (int i = 0; i < 300; ++i) {
        paths.push_back("/content/product" + std::to_string(i) + "/$basearch/repo" +
                        std::to_string(i % 7));
    }
    const std::string payload = t::encode_path_tree(paths);
    auto tree = decode(payload);
    CHECK(tree->node_count() > 255);
    std::vector<std::string> expected = paths;
    std::sort(expected.begin(), expected.end());
    CHECK(tree->paths(10000) == expected);
    CHECK(tree->entitles("/content/product299/x86_64/repo5"));
    CHECK(tree->entitles("/content/product7/ppc64le/repo0/extra"));
    CHECK_FALSE(tree->entitles("/content/product7/ppc64le/repo1"));
    CHECK_FALSE(tree->entitles("/content/product300/x86_64/repo6"));

    auto cert = parse(t::make_v3_certificate(payload));
    CHECK(cert->entitles("/content/product42/s390x/repo0"));
}

TEST_CASE("a v3 payload stored without a DER wrapper still parses", "[entitlement][v3]") {
    const std::string payload = t::encode_path_tree({"/a/foo"});
    for (t::Wrap wrap : {t::Wrap::Raw, t::Wrap::OctetString, t::Wrap::Utf8String}) {
        auto cert = parse(t::make_v3_certificate(payload, "3.4", wrap));
        CHECK(cert->entitles("/a/foo/bar"));
        CHECK_FALSE(cert->entitles("/a/foobar"));
    }
}

TEST_CASE("every 3.x version is read as a v3 certificate", "[entitlement][v3]") {
    const std::string payload = t::encode_path_tree({"/a/foo"});
    for (const char* version : {"3.0", "3.2", "3.4", "3"}) {
        INFO("version " << version);
        auto cert = parse(t::make_v3_certificate(payload, version));
        CHECK(cert->major_version() == 3);
        CHECK(cert->version_string() == version);
        CHECK(cert->entitles("/a/foo"));
    }
}

TEST_CASE("a v3 certificate without a path tree entitles nothing", "[entitlement][v3]") {
    const std::string base(t::kRedHatOid);
    t::CertOptions options;
    options.extensions = {{base + ".6", "3.4"}, {base + ".2.1.1.6", "/a/foo"}};
    auto cert = parse(t::make_certificate_pem(options));
    CHECK(cert->is_entitlement());
    CHECK(cert->major_version() == 3);
    CHECK(cert->path_tree() == nullptr);
    CHECK_FALSE(cert->problem().empty());
    CHECK_FALSE(cert->entitles("/a/foo"));

    auto empty = parse(t::make_v3_certificate(""));
    CHECK(empty->major_version() == 3);
    CHECK_FALSE(empty->entitles("/a/foo"));
}

// ---- hostile v3 payloads ----

TEST_CASE("a truncated v3 payload entitles nothing", "[entitlement][v3][hostile]") {
    const std::string& payload = sample_payload();
    REQUIRE(value_or_null(EntitlementPathTree::decode(payload)));
    for (std::size_t n = 0; n < payload.size(); ++n) {
        std::string error;
        INFO("prefix of " << n << " bytes");
        CHECK(value_or_null(EntitlementPathTree::decode(payload.substr(0, n)), &error) == nullptr);
        CHECK_FALSE(error.empty());
    }
    auto cert = parse(t::make_v3_certificate(payload.substr(0, payload.size() - 1)));
    CHECK(cert->is_entitlement());
    CHECK(cert->path_tree() == nullptr);
    CHECK(cert->problem().find("truncated") != std::string::npos);
    CHECK_FALSE(cert->entitles("/registry/rhel7"));
}

TEST_CASE("corrupted zlib data in a v3 payload entitles nothing", "[entitlement][v3][hostile]") {
    const std::string& payload = sample_payload();
    const std::size_t zlib_size = zlib_part_size(payload);
    REQUIRE(zlib_size > 2);
    REQUIRE(zlib_size < payload.size());
    for (std::size_t i = 0; i < zlib_size; ++i) {
        std::string damaged = payload;
        damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
        INFO("byte " << i << " damaged");
        CHECK(value_or_null(EntitlementPathTree::decode(damaged)) == nullptr);
    }
    std::string not_zlib = payload;
    not_zlib[0] = 'Q';
    auto cert = parse(t::make_v3_certificate(not_zlib));
    CHECK(cert->major_version() == 3);
    CHECK_FALSE(cert->problem().empty());
    CHECK_FALSE(cert->entitles("/registry/rhel7"));
}

TEST_CASE("a zip bomb in the v3 word list is refused at the size limit",
          "[entitlement][v3][hostile]") {
    const std::string bomb = t::zlib_compress(std::string(64u << 20, 'a')) + "\x03\x00";
    REQUIRE(bomb.size() < 128 * 1024);
    std::string error;
    const auto start = std::chrono::steady_clock::now();
    CHECK(value_or_null(EntitlementPathTree::decode(bomb), &error) == nullptr);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(error.find("size limit") != std::string::npos);
    CHECK(elapsed < std::chrono::seconds(5));

    auto cert = parse(t::make_v3_certificate(bomb));
    CHECK_FALSE(cert->entitles("/a"));
}

TEST_CASE("absurd node counts are refused", "[entitlement][v3][hostile]") {
    const std::string words = t::zlib_compress(std::string("a\0b\0", 4));
    const std::string bits(16, '\xff');
    for (const std::string& count :
         {std::string("\x00", 1), std::string("\x01"), std::string("\x02"), std::string("\x80"),
          std::string("\x84\xff\xff\xff\xff"), std::string("\x85\x01\x01\x01\x01\x01"),
          std::string("\x83\x10\x00\x00"), std::string("\x7f"), std::string("\x82\x01")}) {
        std::string error;
        INFO("count bytes " << count.size());
        CHECK(value_or_null(EntitlementPathTree::decode(words + count + bits), &error) == nullptr);
        CHECK_FALSE(error.empty());
    }
    CHECK(value_or_null(EntitlementPathTree::decode(words)) == nullptr);  // nothing after the words
}

TEST_CASE("a word list without an end-of-node marker is refused", "[entitlement][v3][hostile]") {
    std::string error;
    const std::string payload = t::zlib_compress(std::string("a\0b", 3)) + "\x03\xff\xff\xff";
    CHECK(value_or_null(EntitlementPathTree::decode(payload), &error) == nullptr);
    CHECK(value_or_null(EntitlementPathTree::decode(t::zlib_compress("") + "\x03\x00")) == nullptr);
}

TEST_CASE("a v3 tree whose root has no edges entitles nothing", "[entitlement][v3][hostile]") {
    t::PathGraph graph;
    graph.nodes = {{}, {{"a", 2}}, {}};
    std::string error;
    CHECK(value_or_null(EntitlementPathTree::decode(t::encode_path_graph(graph)), &error) == nullptr);
    CHECK(error.find("root") != std::string::npos);
}

TEST_CASE("cycles in a v3 tree neither hang nor crash", "[entitlement][v3][hostile]") {
    t::PathGraph graph;
    // root -a-> 1; 1 -$x-> 1 (self loop); 1 -b-> 2 (end)
    graph.nodes = {{{"a", 1}}, {{"$x", 1}, {"b", 2}}, {}};
    auto tree = decode(t::encode_path_graph(graph));
    CHECK(tree->entitles("/a/b"));
    CHECK(tree->entitles("/a/q/q/q/b"));
    CHECK(tree->entitles("/a/q/b/more"));
    CHECK_FALSE(tree->entitles("/a"));
    CHECK_FALSE(tree->entitles("/a/q/q"));
    CHECK(tree->paths() == std::vector<std::string>{"/a/b"});  // walks around a cycle not listed

    // A cycle through two nodes that never reaches an end.
    t::PathGraph loop;
    loop.nodes = {{{"a", 1}}, {{"b", 2}}, {{"a", 1}}};
    auto looping = decode(t::encode_path_graph(loop));
    CHECK_FALSE(looping->entitles(std::string(2000, 'x')));
    std::string long_path;
    for (int i = 0; i < 500; ++i) long_path += "/a/b";
    CHECK_FALSE(looping->entitles(long_path));
    CHECK(looping->paths().empty());
}

TEST_CASE("a densely connected v3 tree is matched in bounded time", "[entitlement][v3][hostile]") {
    // Every one of 60 nodes reaches every other through a $v edge: a naive
    // recursive walk would take 60^depth steps. (3660 $v edges: within
    // kMaxVariableEdges.)
    constexpr std::uint32_t kNodes = 60;
    t::PathGraph graph;
    graph.nodes.resize(kNodes + 2);
    for (std::uint32_t n = 0; n <= kNodes; ++n) {
        for (std::uint32_t to = 1; to <= kNodes; ++to) graph.nodes[n].push_back({"$v", to});
        if (n > 0) graph.nodes[n].push_back({"end", kNodes + 1});
    }
    auto tree = decode(t::encode_path_graph(graph));
    std::string path;
    for (int i = 0; i < 60; ++i) path += "/q";
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(tree->entitles(path));
    CHECK(tree->entitles(path + "/end"));
    const auto listed = tree->paths(50);
    CHECK_FALSE(listed.empty());
    CHECK(listed.size() <= 50);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("v3 trees beyond the node, edge and $variable edge limits are refused",
          "[entitlement][v3][hostile]") {
    std::string error;
    SECTION("60000 $v edges (a 41 KB certificate that made every match scan them)") {
        t::PathGraph graph;
        graph.nodes = {{}, {{"end", 2}}, {}};
        for (int i = 0; i < 60000; ++i) graph.nodes[0].push_back({"$v", 1});
        const std::string payload = t::encode_path_graph(graph);
        CHECK(payload.size() < 50000);
        CHECK(value_or_null(EntitlementPathTree::decode(payload), &error) == nullptr);
        CHECK(error == "more than 4096 $variable edges");
        auto cert = parse(t::make_v3_certificate(payload));
        CHECK_FALSE(cert->entitles("/q/end"));
    }
    SECTION("exactly kMaxVariableEdges $v edges are accepted") {
        t::PathGraph graph;
        graph.nodes = {{}, {{"end", 2}}, {}};
        for (std::size_t i = 0; i < EntitlementPathTree::kMaxVariableEdges; ++i) {
            graph.nodes[0].push_back({"$v" + std::to_string(i % 7), 1});
        }
        auto tree = decode(t::encode_path_graph(graph));
        CHECK(tree->entitles("/q/end"));
        CHECK_FALSE(tree->entitles("/q/other"));
    }
    SECTION("too many literal edges") {
        t::PathGraph graph;
        graph.nodes = {{}, {}};
        for (std::size_t i = 0; i <= EntitlementPathTree::kMaxEdges; ++i) {
            graph.nodes[0].push_back({"w" + std::to_string(i), 1});
        }
        CHECK(value_or_null(EntitlementPathTree::decode(t::encode_path_graph(graph)), &error) == nullptr);
        CHECK(error == "more than 32768 edges");
    }
    SECTION("too many nodes") {
        t::PathGraph graph;
        graph.nodes.resize(EntitlementPathTree::kMaxNodes + 1);
        for (std::uint32_t n = 0; n + 1 < graph.nodes.size(); ++n) graph.nodes[n].push_back({"a", n + 1});
        CHECK(value_or_null(EntitlementPathTree::decode(t::encode_path_graph(graph)), &error) == nullptr);
        CHECK(error == "implausible node count");
    }
}

TEST_CASE("a large v3 tree within the limits matches by lookup, not by scanning",
          "[entitlement][v3]") {
    // root: 20000 literal edges to the end node, and 4000 $v edges to nodes
    // that each continue with their own literal word
    constexpr std::uint32_t kFan = 4000;
    t::PathGraph graph;
    graph.nodes.resize(kFan + 2);
    const std::uint32_t end = kFan + 1;
    for (std::uint32_t i = 0; i < 20000; ++i) graph.nodes[0].push_back({"w" + std::to_string(i), end});
    for (std::uint32_t k = 1; k <= kFan; ++k) {
        graph.nodes[0].push_back({"$v", k});
        graph.nodes[k].push_back({"x" + std::to_string(k), end});
        graph.nodes[k].push_back({"x" + std::to_string(k), end});  // repeated edges collapse
    }
    auto tree = decode(t::encode_path_graph(graph));
    REQUIRE(tree->node_count() == kFan + 2);
    CHECK(tree->entitles("/w0"));
    CHECK(tree->entitles("/w19999/anything/below"));
    CHECK_FALSE(tree->entitles("/w20000"));
    CHECK(tree->entitles("/q/x1"));
    CHECK(tree->entitles("/w5/x4000"));  // w5 is also a $v segment
    CHECK(tree->entitles("/q/x4000/listing"));
    CHECK_FALSE(tree->entitles("/q/x4001"));
    CHECK_FALSE(tree->entitles("/q"));
    CHECK(tree->entitles("/q/listing"));
    CHECK_FALSE(tree->entitles("/"));
}

TEST_CASE("v3 matching on big hostile trees (timing)", "[.][bench][entitlement]") {
    // not run by default: crane_unit_tests "[bench]" prints the figures.
    // Fully connected: every node has a $v edge to every other.
    for (std::uint32_t nodes : {63u, 245u}) {  // 4032 $v edges (allowed), 60025 (refused)
        t::PathGraph graph;
        graph.nodes.resize(nodes + 2);
        for (std::uint32_t n = 0; n <= nodes; ++n) {
            for (std::uint32_t to = 1; to <= nodes; ++to) graph.nodes[n].push_back({"$v", to});
            if (n > 0) graph.nodes[n].push_back({"end", nodes + 1});
        }
        const std::string payload = t::encode_path_graph(graph);
        auto start = std::chrono::steady_clock::now();
        std::string error;
        auto tree = value_or_null(EntitlementPathTree::decode(payload), &error);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        if (!tree) {
            WARN(nodes << " nodes, payload " << payload.size() << " bytes: refused in " << us.count()
                       << " us (" << error << ")");
            continue;
        }
        constexpr int kRepos = 200;
        start = std::chrono::steady_clock::now();
        int entitled = 0;
        for (int i = 0; i < kRepos; ++i) {
            entitled += tree->entitles("/content/dist/rhel/server/7/repo" + std::to_string(i)) ? 1 : 0;
        }
        us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        WARN(nodes << " nodes, payload " << payload.size() << " bytes: " << kRepos
                   << " matches of 6 segments in " << us.count() << " us");
        CHECK(entitled == 0);
    }
}

TEST_CASE("random bytes after a valid word list never crash the decoder",
          "[entitlement][v3][hostile]") {
    const std::string words = t::zlib_compress(std::string("a\0$b\0listing\0c\0", 15));
    std::mt19937 rng(12345);
    int decoded = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string tail(1 + rng() % 40, '\0');
        for (char& c : tail) c = static_cast<char>(rng());
        if (round % 3 == 0) tail[0] = static_cast<char>(3 + rng() % 20);  // plausible counts
        auto tree = value_or_null(EntitlementPathTree::decode(words + tail));
        if (!tree) continue;
        ++decoded;
        (void)tree->entitles("/a/c/a/listing");
        (void)tree->entitles("/a/b/c/d/e/f/g/h");
        CHECK(tree->paths(100).size() <= 100);
    }
    CHECK(decoded > 0);  // some random streams are valid trees: they must be safe too
}

// ---- dates, fingerprints, PEM handling ----

TEST_CASE("validity dates are read exactly and expired certificates are not valid now",
          "[entitlement]") {
    t::CertOptions options;
    options.not_before = 946684800;  // 2000-01-01T00:00:00Z (UTCTime)
    options.not_after = 978307199;   // 2000-12-31T23:59:59Z
    auto expired = parse(t::make_v1_certificate({"/a/foo"}, options));
    CHECK(expired->not_before() == 946684800);
    CHECK(expired->not_after() == 978307199);
    CHECK(expired->valid_at(946684800));
    CHECK(expired->valid_at(978307199));
    CHECK_FALSE(expired->valid_at(946684799));
    CHECK_FALSE(expired->valid_at(978307200));
    CHECK_FALSE(expired->valid_at(t::unix_now()));
    CHECK(expired->entitles("/a/foo"));  // dates are the caller's check (valid_at)

    t::CertOptions future;
    future.not_before = t::unix_now() + 86400;
    future.not_after = 2556143999;  // 2050-12-31T23:59:59Z (GeneralizedTime)
    auto not_yet = parse(
        t::make_v3_certificate(t::encode_path_tree({"/a"}), "3.4", t::Wrap::OctetString, future));
    CHECK(not_yet->not_after() == 2556143999);
    CHECK_FALSE(not_yet->valid_at(t::unix_now()));
    CHECK(not_yet->valid_at(t::unix_now() + 2 * 86400));

    auto current = parse(t::make_v1_certificate({"/a/foo"}));
    CHECK(current->valid_at(t::unix_now()));
}

TEST_CASE("the fingerprint is the lowercase hex SHA-256 of the DER", "[entitlement]") {
    const std::string pem = t::make_v1_certificate({"/a/foo"});
    auto cert = parse(pem);
    CHECK(cert->sha256_fingerprint() == t::sha256_fingerprint_of_pem(pem));
    CHECK(cert->sha256_fingerprint().size() == 64);
    CHECK(EntitlementCertificate::sha256_hex("abc") ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    auto der = EntitlementCertificate::pem_to_der(pem);
    REQUIRE(der);
    CHECK(EntitlementCertificate::sha256_hex(*der) == cert->sha256_fingerprint());
    auto from_der = value_or_null(EntitlementCertificate::from_der(*der));
    REQUIRE(from_der);
    CHECK(from_der->entitles("/a/foo"));
    CHECK(value_or_null(EntitlementCertificate::from_der(*der + "x")) == nullptr);
}

TEST_CASE("text that holds no certificate does not parse", "[entitlement][hostile]") {
    const std::string good = t::make_v1_certificate({"/a/foo"});
    const std::string body_start = "-----BEGIN CERTIFICATE-----\n";
    std::vector<std::string> bad = {
        "",
        "hello",
        std::string(4096, '\xff'),
        body_start + "!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
        body_start + "aGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",  // "hello world"
        body_start + "-----END CERTIFICATE-----\n",
        good.substr(0, good.size() / 2),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        std::string("-----BEGIN CERTIFICATE-----\n\0\0\0\n-----END CERTIFICATE-----\n", 58),
    };
    std::string damaged = good;
    damaged[damaged.size() / 2] = '!';  // not base64
    bad.push_back(damaged);
    ERR_clear_error();
    for (const std::string& text : bad) {
        std::string error;
        INFO("input of " << text.size() << " bytes");
        CHECK(value_or_null(EntitlementCertificate::from_pem(text), &error) == nullptr);
        CHECK_FALSE(error.empty());
        // Failures must not leave errors behind for mod_ssl to trip over.
        CHECK(ERR_peek_error() == 0);
    }
    CHECK(value_or_null(EntitlementCertificate::from_pem(std::string(3u << 20, 'A'))) == nullptr);
}

TEST_CASE("the certificate is found among other PEM blocks and CRLF line ends", "[entitlement]") {
    const std::string pem = t::make_v1_certificate({"/a/foo"});
    const std::string fingerprint = t::sha256_fingerprint_of_pem(pem);
    const std::string wrapped = "some preamble\n-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n" +
                                pem +
                                "-----BEGIN ENTITLEMENT DATA-----\nAAAA\n"
                                "-----END ENTITLEMENT DATA-----\n";
    auto cert = parse(wrapped);
    CHECK(cert->sha256_fingerprint() == fingerprint);
    CHECK(cert->entitles("/a/foo"));

    std::string crlf;
    for (char c : pem) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    CHECK(parse(crlf)->sha256_fingerprint() == fingerprint);
}

// ---- cache ----

TEST_CASE("the cache parses a certificate once and then returns the same object",
          "[entitlement][cache]") {
    EntitlementCache cache(4);
    const std::string pem = t::make_v1_certificate({"/a/foo"});
    auto first = value_or_null(cache.get(pem));
    REQUIRE(first);
    auto second = value_or_null(cache.get(pem));
    CHECK(second == first);
    CHECK(cache.size() == 1);
    CHECK(cache.stats().hits == 1);
    CHECK(cache.stats().misses == 1);
    CHECK(second->entitles("/a/foo/bar"));

    // The same certificate in other PEM formatting is the same entry.
    std::string crlf;
    for (char c : pem) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    CHECK(value_or_null(cache.get(crlf)) == first);
    CHECK(cache.size() == 1);
    cache.clear();
    CHECK(cache.size() == 0);
    CHECK(value_or_null(cache.get(pem)) != first);  // parsed again after clear
}

TEST_CASE("the cache evicts the least recently used certificate beyond its capacity",
          "[entitlement][cache]") {
    EntitlementCache cache(2);
    CHECK(cache.capacity() == 2);
    const std::string a = t::make_v1_certificate({"/a"});
    const std::string b = t::make_v1_certificate({"/b"});
    const std::string c = t::make_v1_certificate({"/c"});
    auto ca = value_or_null(cache.get(a));
    auto cb = value_or_null(cache.get(b));
    CHECK(value_or_null(cache.get(a)) == ca);  // a is now the most recent
    auto cc = value_or_null(cache.get(c));     // evicts b
    CHECK(cache.size() == 2);
    CHECK(cache.stats().evictions == 1);
    CHECK(value_or_null(cache.get(a)) == ca);
    CHECK(value_or_null(cache.get(c)) == cc);
    const auto misses = cache.stats().misses;
    auto cb2 = value_or_null(cache.get(b));  // parsed again
    CHECK(cache.stats().misses == misses + 1);
    CHECK(cb2 != cb);
    CHECK(cb2->sha256_fingerprint() == cb->sha256_fingerprint());
    CHECK(cache.size() == 2);
}

TEST_CASE("the cache keeps its memory bound by evicting least recently used certificates",
          "[entitlement][cache]") {
    std::vector<std::string> paths;
    for (int i = 0; i < 400; ++i) paths.push_back("/content/product" + std::to_string(i) + "/os");
    const std::string big = t::make_v3_certificate(t::encode_path_tree(paths));
    const std::size_t big_size = parse(big)->approximate_size();
    const std::string small = t::make_v1_certificate({"/a"});
    const std::size_t small_size = parse(small)->approximate_size();
    REQUIRE(big_size > 4 * small_size);

    const std::size_t budget = big_size + 3 * (small_size + 128);
    EntitlementCache cache(100, budget);
    auto big_cert = value_or_null(cache.get(big));
    CHECK(cache.size() == 1);
    CHECK(cache.bytes() >= big_size);
    for (int i = 0; i < 8; ++i)
        REQUIRE(value_or_null(cache.get(t::make_v1_certificate({"/s" + std::to_string(i)}))));
    CHECK(cache.bytes() <= budget);
    CHECK(cache.size() < 9);
    CHECK(value_or_null(cache.get(big)) != big_cert);  // it was evicted, so it is parsed again
    CHECK(cache.stats().evictions > 0);

    EntitlementCache tiny(100, small_size / 2);  // nothing fits: parsed, never kept
    CHECK(value_or_null(tiny.get(small)));
    CHECK(tiny.size() == 0);
    CHECK(tiny.bytes() == 0);
}

TEST_CASE("a decoded v3 tree keeps only the words its edges use", "[entitlement][v3]") {
    std::vector<std::string> unused;
    for (int i = 0; i < 20000; ++i) unused.push_back("unused-word-" + std::to_string(i));
    t::PathGraph graph;
    graph.nodes = {{{"a", 1}, {"$v", 2}}, {{"b", 2}}, {}};
    const std::string payload = t::encode_path_graph(graph, unused);
    auto tree = decode(payload);
    CHECK(tree->word_count() == 3);
    CHECK(tree->approximate_size() < 4096);
    CHECK(tree->paths() == std::vector<std::string>{"/$v", "/a/b"});
    CHECK(tree->entitles("/a/b/c"));
    CHECK(tree->entitles("/x"));
    CHECK_FALSE(tree->entitles("/"));
}

TEST_CASE("the cache does not store unparsable PEM", "[entitlement][cache]") {
    EntitlementCache cache(4);
    std::string error;
    CHECK(value_or_null(cache.get("not a certificate"), &error) == nullptr);
    CHECK_FALSE(error.empty());
    CHECK(value_or_null(cache.get("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n")) ==
          nullptr);
    CHECK(cache.size() == 0);
}

TEST_CASE("a cache of capacity 0 parses every time and stores nothing", "[entitlement][cache]") {
    EntitlementCache cache(0);
    const std::string pem = t::make_v1_certificate({"/a"});
    auto first = value_or_null(cache.get(pem));
    auto second = value_or_null(cache.get(pem));
    REQUIRE(first);
    REQUIRE(second);
    CHECK(first != second);
    CHECK(cache.size() == 0);
}

TEST_CASE("the cache is safe to use from several threads", "[entitlement][cache]") {
    constexpr int kCerts = 12;
    constexpr int kThreads = 8;
    constexpr int kRounds = 300;
    std::vector<std::string> pems;
    std::vector<std::string> fingerprints;
    for (int i = 0; i < kCerts; ++i) {
        pems.push_back(
            i % 2 ? t::make_v1_certificate({"/repo/" + std::to_string(i)})
                  : t::make_v3_certificate(t::encode_path_tree({"/repo/" + std::to_string(i)})));
        fingerprints.push_back(t::sha256_fingerprint_of_pem(pems.back()));
    }
    EntitlementCache cache(5);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
        threads.emplace_back([&, th] {
            std::mt19937 rng(static_cast<unsigned>(th));
            for (int r = 0; r < kRounds; ++r) {
                const int i = static_cast<int>(rng() % kCerts);
                auto cert = value_or_null(cache.get(pems[static_cast<std::size_t>(i)]));
                if (!cert ||
                    cert->sha256_fingerprint() != fingerprints[static_cast<std::size_t>(i)] ||
                    !cert->entitles("/repo/" + std::to_string(i) + "/x") ||
                    cert->entitles("/repo/" + std::to_string((i + 1) % kCerts))) {
                    ++wrong;
                }
                if (cache.size() > cache.capacity()) ++wrong;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(cache.size() <= 5);
    const auto stats = cache.stats();
    CHECK(stats.hits + stats.misses == static_cast<std::uint64_t>(kThreads * kRounds));
    CHECK(stats.evictions > 0);
}
