// Red Hat entitlement certificates (Candlepin v1 and v3): what repository paths a
// client certificate entitles, for protected repos (README, "Protected repositories"). No OpenSSL
// or zlib type appears here; the parsing lives in entitlement_certificate.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crane/result.h"

namespace crane {

// Collapses duplicate slashes and drops a trailing slash; a leading slash is
// kept ("//a//b/" -> "/a/b", "/" -> "/", "a/b/" -> "a/b").
std::string normalize_url_path(std::string_view path);

// The v3 content path tree (extension 1.3.6.1.4.1.2312.9.7, Candlepin's format):
// a zlib stream holding NUL-terminated words, then uncompressed bytes holding a
// node count and Huffman-coded edges. Immutable once decoded; safe to share.
class EntitlementPathTree {
  public:
    // Trees beyond these are refused (the certificate then entitles nothing).
    // Candlepin's trees for whole product catalogues stay far below; the caps
    // bound what one match can cost: a literal segment is looked up in each
    // reached node's sorted edges, and every node is visited at most once per
    // segment, so a match costs at most segments x (reached nodes x log edges
    // + $variable edges) steps, whatever the certificate holds.
    static constexpr std::size_t kMaxNodes = std::size_t{1} << 15;
    static constexpr std::size_t kMaxEdges = std::size_t{1} << 15;
    static constexpr std::size_t kMaxVariableEdges = std::size_t{1} << 12;  // "$name" edges

    // Decodes a payload (already unwrapped from its DER OCTET STRING). A
    // failure, with a short reason, for anything malformed or over the limits.
    static Result<std::shared_ptr<const EntitlementPathTree>> decode(std::string_view payload);

    // Walks the tree from its root, one url_path segment per edge ($name edges
    // match any segment). True when the walk reaches a node that ends a content
    // path (everything below a content path is entitled), or when the last
    // segment is "listing" and the walk reached its parent.
    bool entitles(std::string_view url_path) const noexcept;

    // The content paths spelled out ("/a/$b/c"), sorted; at most max_paths,
    // walks around a cycle and very deep paths skipped, bounded work. For
    // diagnostics and tests.
    std::vector<std::string> paths(std::size_t max_paths = 1000) const;

    std::size_t node_count() const { return node_edges_begin_.size() - 1; }
    std::size_t word_count() const { return word_begin_.size(); }  // distinct words on edges
    std::size_t approximate_size() const;                          // bytes held

    struct Edge {
        std::uint32_t word;   // index into the word list
        std::uint32_t child;  // node index (never 0, the root)
    };

  private:
    struct Token {};

  public:
    explicit EntitlementPathTree(Token) {}

  private:
    std::string_view word(std::uint32_t i) const;
    void keep_used_words_only();
    void index_edges();

    std::string words_;                      // the words edges use, back to back
    std::vector<std::uint32_t> word_begin_;  // offset of word i in words_
    std::vector<std::uint32_t> word_size_;
    std::vector<std::uint32_t> node_edges_begin_;  // node n's edges: [begin[n], begin[n+1])
    // node n's $variable edges come first; its literal edges, sorted by word,
    // are [literal_begin_[n], begin[n+1])
    std::vector<std::uint32_t> literal_begin_;
    std::vector<Edge> edges_;
};

// What a client certificate entitles. Immutable after parsing; thread-safe to share.
class EntitlementCertificate {
  public:
    // Parses the first CERTIFICATE block of a PEM text. Never throws, never
    // crashes on hostile input. A failure, with a short reason, when the text
    // holds no parsable X.509 certificate. A valid X.509 that is not an
    // entitlement certificate parses to an object entitling nothing.
    using Parsed = Result<std::shared_ptr<const EntitlementCertificate>>;
    static Parsed from_pem(std::string_view pem);
    // The same from DER bytes (the whole input must be one certificate).
    static Parsed from_der(std::string_view der);

    // The DER bytes of the first CERTIFICATE block of a PEM text, without parsing
    // the certificate (cheap: base64 only). Used to key caches by fingerprint.
    static Result<std::string> pem_to_der(std::string_view pem);
    // Lowercase hex SHA-256 of some bytes (of DER: the certificate fingerprint).
    static std::string sha256_hex(std::string_view bytes);

    // True when this certificate entitles the repo url_path.
    // Dates are not checked here: see valid_at().
    bool entitles(std::string_view url_path) const noexcept;

    bool is_entitlement() const { return major_version_ != 0; }
    int major_version() const { return major_version_; }  // 1 or 3; 0 otherwise
    // Extension .6 as found ("1.0" when absent).
    const std::string& version_string() const { return version_string_; }
    const std::string& sha256_fingerprint() const { return fingerprint_; }
    std::int64_t not_before() const { return not_before_; }  // unix seconds
    std::int64_t not_after() const { return not_after_; }
    // notBefore <= t <= notAfter (both inclusive, as X.509 has it).
    bool valid_at(std::int64_t unix_seconds) const;

    // v1: the download paths (extensions .2.<id>.1.6), normalised, in
    // certificate order. Empty for v3: see path_tree() / EntitlementPathTree::paths().
    const std::vector<std::string>& content_paths() const { return content_paths_; }
    // v3: the decoded tree; nullptr for v1, or when the payload is missing/bad.
    const EntitlementPathTree* path_tree() const { return path_tree_.get(); }
    // Why an entitlement certificate entitles nothing (e.g. "v3 path tree: path
    // tree truncated"), for logs; empty when there is nothing to report.
    const std::string& problem() const { return problem_; }
    // Bytes this object holds, for the cache's memory bound.
    std::size_t approximate_size() const;

  private:
    struct Token {};  // keeps construction to from_der while allowing make_shared

  public:
    explicit EntitlementCertificate(Token) {}

  private:
    int major_version_ = 0;
    std::string version_string_;
    std::string fingerprint_;
    std::int64_t not_before_ = 0;
    std::int64_t not_after_ = -1;
    std::vector<std::string> content_paths_;
    std::vector<std::vector<std::string>> content_segments_;  // content_paths_ split
    std::shared_ptr<const EntitlementPathTree> path_tree_;
    std::string problem_;
};

}  // namespace crane
