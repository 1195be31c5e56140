// Test-only builders for entitlement certificates: a throwaway CA that signs
// X.509 certificates with arbitrary Red Hat extensions, and an independent
// encoder for Candlepin's v3 content path tree (extension .7), so the parser
// can be checked by round trip.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crane::testing {

constexpr std::string_view kRedHatOid = "1.3.6.1.4.1.2312.9";

// ---- v3 path tree encoder ----

// An arbitrary graph of path nodes; node 0 is the root, a node without edges
// ends a content path. Hostile shapes (cycles, fans) are allowed on purpose.
struct PathGraph {
    struct Edge {
        std::string word;
        std::uint32_t child;  // never 0: the format cannot point at the root
    };
    std::vector<std::vector<Edge>> nodes;
};

// Candlepin's shape for a list of content paths: every path ends in one shared
// childless node; a path that is a prefix of another gets its own edge.
PathGraph path_graph_from_paths(const std::vector<std::string>& paths);

// The .7 payload of a graph: zlib(words, each NUL-terminated), node count,
// Huffman-coded edges. Adds Candlepin's filler node when there are only two.
// `unused_words` are put in the word list first without any edge using them.
std::string encode_path_graph(const PathGraph& graph,
                              const std::vector<std::string>& unused_words = {});

inline std::string encode_path_tree(const std::vector<std::string>& paths) {
    return encode_path_graph(path_graph_from_paths(paths));
}

std::string zlib_compress(std::string_view data);

// ---- certificates ----

// How an extension value is stored inside the extension's OCTET STRING.
enum class Wrap { Utf8String, OctetString, Ia5String, Raw };

struct CertExtension {
    std::string oid;  // dotted, e.g. "1.3.6.1.4.1.2312.9.6"
    std::string value;
    Wrap wrap = Wrap::Utf8String;
};

struct CertOptions {
    std::vector<CertExtension> extensions;
    std::int64_t not_before = 0;  // unix seconds; 0 means an hour ago
    std::int64_t not_after = 0;   // 0 means in a year
    std::string common_name = "crane-test-client";
};

// A PEM certificate signed by the process-wide test CA.
std::string make_certificate_pem(const CertOptions& options);

// v1: version absent (1.0), an order name, download paths as .2.<id>.1.6.
std::string make_v1_certificate(const std::vector<std::string>& download_paths,
                                CertOptions options = {});
// v3: version extension and the .7 payload (DER OCTET STRING wrapped unless told).
std::string make_v3_certificate(std::string_view payload, std::string_view version = "3.4",
                                Wrap payload_wrap = Wrap::OctetString, CertOptions options = {});

// The DER of a PEM certificate and its SHA-256, computed with OpenSSL directly.
std::string sha256_fingerprint_of_pem(std::string_view pem);

std::int64_t unix_now();

}  // namespace crane::testing
