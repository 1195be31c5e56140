// Parsing of Red Hat entitlement certificates (OpenSSL) and of Candlepin's v3
// content path tree (zlib + Huffman), and the url_path matching (README, "Protected repositories").
//
// Format facts (Candlepin's X509V3ExtensionUtil / python-rhsm's pathtree):
// - OIDs live under 1.3.6.1.4.1.2312.9; .6 is the version ("3.4"), .4.1 the v1
//   order name, .2.<id>.1.6 a v1 download path, .7 the v3 path tree. Values are
//   DER strings (UTF8String, or OCTET STRING for .7) inside the extension value.
// - .7: a zlib stream of words, each followed by NUL; the piece after the last
//   NUL (empty) is the end-of-node marker. Word i (0-based, empty marker
//   included) has Huffman weight i+1.
// - Right after the zlib stream, uncompressed: the node count (one byte if
//   < 128, else 0x80+N followed by N big-endian bytes), then a bit stream, most
//   significant bit first. Node 0 is the root; nodes 1..count-1 have Huffman
//   weights 1..count-1 (the root is never referenced). For each node in order:
//   (word code, node code) per edge, then the end-of-node word code.
// - Huffman trees merge the two lightest nodes, lighter (or, on equal weight,
//   older) on the left ("0"); merged nodes are younger than all leaves.
// - A node without edges ends a content path. Several edges may carry the same
//   word (a path and a longer one sharing that prefix).
#include "entitlement/entitlement_certificate.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <limits>
#include <new>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include "crane/sha256.h"
#include "crane/strings.h"

namespace crane {

namespace {

// Limits against hostile input. Real certificates are far below all of them
// (mod_ssl itself refuses client certificate chains above ~100 KB by default).
constexpr std::size_t kMaxPemBytes = 2u << 20;
constexpr std::size_t kMaxDerBytes = 2u << 20;
constexpr std::size_t kMaxInflatedBytes = 4u << 20;  // zip bombs stop here
constexpr std::size_t kMaxWords = 1u << 18;
constexpr std::size_t kMaxListedDepth = 256;
constexpr std::size_t kMaxListingSteps = 1u << 20;

constexpr std::string_view kRedHatOidPrefix = "1.3.6.1.4.1.2312.9.";

// Non-empty segments of a path; duplicate, leading and trailing slashes vanish.
std::vector<std::string_view> split_segments(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < path.size()) {
        if (path[i] == '/') {
            ++i;
            continue;
        }
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        out.push_back(path.substr(i, j - i));
        i = j;
    }
    return out;
}

bool is_variable(std::string_view segment) { return !segment.empty() && segment[0] == '$'; }

// Restores OpenSSL's thread-local error queue on scope exit, so failures while
// parsing a client's certificate never leak into mod_ssl's own error checks.
class OpenSslErrorMark {
  public:
    OpenSslErrorMark() { ERR_set_mark(); }
    ~OpenSslErrorMark() { ERR_pop_to_mark(); }
    OpenSslErrorMark(const OpenSslErrorMark&) = delete;
    OpenSslErrorMark& operator=(const OpenSslErrorMark&) = delete;
};

struct X509Deleter {
    void operator()(X509* x) const { X509_free(x); }
};
struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};

// Never ask for a passphrase (the default callback would read the terminal).
int no_password(char*, int, int, void*) { return -1; }

// The contents of a DER string wrapping the whole value, else the raw value.
std::string unwrap_der_string(const unsigned char* data, std::size_t size) {
    std::string raw(reinterpret_cast<const char*>(data), size);
    if (size < 2 || size > static_cast<std::size_t>(LONG_MAX)) return raw;
    const unsigned char* p = data;
    long len = 0;
    int tag = 0;
    int cls = 0;
    const int flags = ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(size));
    if ((flags & 0x80) || (flags & V_ASN1_CONSTRUCTED) || (flags & 0x01)) return raw;
    if (cls != V_ASN1_UNIVERSAL || len < 0) return raw;
    switch (tag) {
        case V_ASN1_OCTET_STRING:
        case V_ASN1_UTF8STRING:
        case V_ASN1_PRINTABLESTRING:
        case V_ASN1_T61STRING:
        case V_ASN1_IA5STRING:
        case V_ASN1_VISIBLESTRING:
        case V_ASN1_GENERALSTRING:
            break;
        default:
            return raw;
    }
    const std::size_t header = static_cast<std::size_t>(p - data);
    if (header + static_cast<std::size_t>(len) != size) return raw;
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
}

std::optional<std::int64_t> unix_seconds(const ASN1_TIME* t) {
    if (!t) return std::nullopt;
    std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> epoch(ASN1_TIME_set(nullptr, 0),
                                                                &ASN1_TIME_free);
    int days = 0;
    int seconds = 0;
    if (!epoch || ASN1_TIME_diff(&days, &seconds, epoch.get(), t) != 1) return std::nullopt;
    return static_cast<std::int64_t>(days) * 86400 + seconds;
}

// MSB-first reader over the uncompressed tail of a v3 payload.
class BitReader {
  public:
    explicit BitReader(std::string_view bytes) : bytes_(bytes) {}
    std::uint64_t total_bits() const { return static_cast<std::uint64_t>(bytes_.size()) * 8; }
    // 0 or 1; -1 when the stream has run out.
    int next() {
        if (pos_ >= total_bits()) return -1;
        const auto byte = static_cast<unsigned char>(bytes_[pos_ >> 3]);
        const int bit = (byte >> (7 - (pos_ & 7))) & 1;
        ++pos_;
        return bit;
    }

  private:
    std::string_view bytes_;
    std::uint64_t pos_ = 0;
};

// A Huffman code over symbols 0..n-1 whose weights are 1..n, built the way
// Candlepin and python-rhsm build it. Leaves arrive sorted by weight and merged
// nodes come out in non-decreasing weight, so two FIFO queues give the
// lightest node in O(1); on equal weight the leaf wins, being older.
class HuffmanDecoder {
  public:
    explicit HuffmanDecoder(std::uint32_t leaf_count) : leaves_(leaf_count) {
        if (leaf_count < 2) return;
        inner_.reserve(leaf_count - 1);
        std::vector<std::uint64_t> merged_weight;
        merged_weight.reserve(leaf_count - 1);
        std::uint32_t next_leaf = 0;
        std::size_t next_merged = 0;
        auto take_lightest = [&](std::uint64_t& weight) -> std::uint32_t {
            const bool leaf_left = next_leaf < leaves_;
            const bool merged_left = next_merged < merged_weight.size();
            if (leaf_left && (!merged_left || next_leaf + 1ull <= merged_weight[next_merged])) {
                weight = next_leaf + 1ull;
                return next_leaf++;
            }
            weight = merged_weight[next_merged];
            return leaves_ + static_cast<std::uint32_t>(next_merged++);
        };
        for (std::uint32_t i = 0; i + 1 < leaf_count; ++i) {
            std::uint64_t w0 = 0;
            std::uint64_t w1 = 0;
            const std::uint32_t left = take_lightest(w0);
            const std::uint32_t right = take_lightest(w1);
            inner_.push_back({left, right});
            merged_weight.push_back(w0 + w1);
        }
    }

    bool usable() const { return leaves_ >= 2; }

    // The next symbol; -1 when the bits run out first.
    std::int64_t decode(BitReader& bits) const {
        std::uint32_t ref = leaves_ + static_cast<std::uint32_t>(inner_.size()) - 1;  // root
        while (ref >= leaves_) {
            const int bit = bits.next();
            if (bit < 0) return -1;
            ref = inner_[ref - leaves_][static_cast<std::size_t>(bit)];
        }
        return ref;
    }

  private:
    std::uint32_t leaves_;
    // refs below leaves_ are symbols; others are leaves_ + index into inner_
    std::vector<std::array<std::uint32_t, 2>> inner_;
};

class ZStream {
  public:
    ZStream() { ok_ = inflateInit(&zs_) == Z_OK; }
    ~ZStream() {
        if (ok_) inflateEnd(&zs_);
    }
    ZStream(const ZStream&) = delete;
    ZStream& operator=(const ZStream&) = delete;
    bool ok() const { return ok_; }
    z_stream* get() { return &zs_; }

  private:
    z_stream zs_{};
    bool ok_ = false;
};

// Inflates the zlib stream at the start of `in`, at most `cap` bytes of output.
// The result is the length of the zlib stream (what follows is not zlib).
Result<std::size_t> inflate_prefix(std::string_view in, std::size_t cap, std::string& out) {
    if (in.size() > std::numeric_limits<uInt>::max()) {
        return Result<std::size_t>::failure("payload too large");
    }
    ZStream z;
    if (!z.ok()) {
        return Result<std::size_t>::failure("zlib initialisation failed");
    }
    z_stream* zs = z.get();
    zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs->avail_in = static_cast<uInt>(in.size());
    out.clear();
    constexpr std::size_t kChunk = std::size_t{16} * 1024;
    for (;;) {
        if (out.size() >= cap) {
            return Result<std::size_t>::failure("word list inflates beyond the size limit");
        }
        const std::size_t before = out.size();
        const std::size_t room = std::min(kChunk, cap - before);
        out.resize(before + room);
        zs->next_out = reinterpret_cast<Bytef*>(&out[before]);
        zs->avail_out = static_cast<uInt>(room);
        const int rc = inflate(zs, Z_NO_FLUSH);
        out.resize(before + (room - zs->avail_out));
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && zs->avail_in == 0) {
            return Result<std::size_t>::failure("word list truncated (zlib stream does not end)");
        }
        if (rc == Z_BUF_ERROR) continue;  // output full: the size check above decides
        return Result<std::size_t>::failure("bad zlib data in the word list");
    }
    return in.size() - zs->avail_in;
}

}  // namespace

std::string normalize_url_path(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (char c : path) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out.push_back(c);
    }
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

// ---- EntitlementPathTree ----

std::string_view EntitlementPathTree::word(std::uint32_t i) const {
    return std::string_view(words_).substr(word_begin_[i], word_size_[i]);
}

Result<std::shared_ptr<const EntitlementPathTree>> EntitlementPathTree::decode(
    std::string_view payload) {
    using Decoded = Result<std::shared_ptr<const EntitlementPathTree>>;
    try {
        auto tree = std::make_shared<EntitlementPathTree>(Token{});
        auto inflated = inflate_prefix(payload, kMaxInflatedBytes, tree->words_);
        if (!inflated) return Decoded::failure(inflated.error());
        const std::size_t consumed = *inflated;

        // Words split at NUL, keeping the (normally empty) piece after the last one.
        const std::string& w = tree->words_;
        const std::size_t word_count =
            static_cast<std::size_t>(std::count(w.begin(), w.end(), '\0')) + 1;
        if (word_count > kMaxWords) {
            return Decoded::failure("too many words");
        }
        tree->word_begin_.reserve(word_count);
        tree->word_size_.reserve(word_count);
        std::size_t start = 0;
        for (;;) {
            const std::size_t nul = w.find('\0', start);
            const std::size_t end = nul == std::string::npos ? w.size() : nul;
            tree->word_begin_.push_back(static_cast<std::uint32_t>(start));
            tree->word_size_.push_back(static_cast<std::uint32_t>(end - start));
            if (nul == std::string::npos) break;
            start = nul + 1;
        }
        const HuffmanDecoder word_code(static_cast<std::uint32_t>(word_count));
        if (!word_code.usable()) {
            return Decoded::failure("empty word list");
        }

        std::string_view tail = payload.substr(consumed);
        if (tail.empty()) {
            return Decoded::failure("no node count after the word list");
        }
        const auto first = static_cast<unsigned char>(tail[0]);
        std::uint64_t node_count = first;
        std::size_t header = 1;
        if (first >= 128) {
            const std::size_t len = first - 128u;
            if (len == 0 || len > 4 || tail.size() < 1 + len) {
                return Decoded::failure("bad node count");
            }
            node_count = 0;
            for (std::size_t i = 0; i < len; ++i) {
                node_count = (node_count << 8) | static_cast<unsigned char>(tail[1 + i]);
            }
            header += len;
        }
        BitReader bits(tail.substr(header));
        // Three nodes at least: a root, an end node and Candlepin's filler, so the
        // node code has two leaves. Each node costs at least one bit.
        if (node_count < 3 || node_count > kMaxNodes || node_count > bits.total_bits()) {
            return Decoded::failure("implausible node count");
        }
        const HuffmanDecoder node_code(static_cast<std::uint32_t>(node_count - 1));

        tree->node_edges_begin_.reserve(static_cast<std::size_t>(node_count) + 1);
        std::size_t variable_edges = 0;
        for (std::uint64_t n = 0; n < node_count; ++n) {
            tree->node_edges_begin_.push_back(static_cast<std::uint32_t>(tree->edges_.size()));
            for (;;) {
                const std::int64_t word = word_code.decode(bits);
                if (word < 0) {
                    return Decoded::failure("path tree truncated");
                }
                if (tree->word_size_[static_cast<std::size_t>(word)] == 0) break;  // end of node
                const std::int64_t child = node_code.decode(bits);
                if (child < 0) {
                    return Decoded::failure("path tree truncated");
                }
                if (tree->edges_.size() >= kMaxEdges) {
                    return Decoded::failure("more than " + std::to_string(kMaxEdges) + " edges");
                }
                if (is_variable(tree->word(static_cast<std::uint32_t>(word))) &&
                    ++variable_edges > kMaxVariableEdges) {
                    return Decoded::failure("more than " + std::to_string(kMaxVariableEdges) + " $variable edges");
                }
                tree->edges_.push_back(
                    {static_cast<std::uint32_t>(word), static_cast<std::uint32_t>(child + 1)});
            }
        }
        tree->node_edges_begin_.push_back(static_cast<std::uint32_t>(tree->edges_.size()));
        tree->keep_used_words_only();
        tree->index_edges();
        // python-rhsm would let a childless root match every path; nothing
        // Candlepin emits looks like that, so it entitles nothing here.
        if (tree->node_edges_begin_[1] == 0) {
            return Decoded::failure("the root has no edges");
        }
        return Decoded(std::move(tree));
    } catch (const std::bad_alloc&) {
        return Decoded::failure("out of memory");
    }
}

// Only the words on edges are kept, so a cached certificate costs memory for
// its paths, not for whatever else an inflated word list carried.
void EntitlementPathTree::keep_used_words_only() {
    constexpr std::uint32_t kUnused = std::numeric_limits<std::uint32_t>::max();
    std::vector<std::uint32_t> renumber(word_begin_.size(), kUnused);
    std::string words;
    std::vector<std::uint32_t> begin;
    std::vector<std::uint32_t> size;
    for (Edge& e : edges_) {
        if (renumber[e.word] == kUnused) {
            renumber[e.word] = static_cast<std::uint32_t>(begin.size());
            begin.push_back(static_cast<std::uint32_t>(words.size()));
            size.push_back(word_size_[e.word]);
            words += word(e.word);
        }
        e.word = renumber[e.word];
    }
    words_.swap(words);
    word_begin_.swap(begin);
    word_size_.swap(size);
    edges_.shrink_to_fit();
}

// Sorts each node's edges ($variable ones first, then literal ones by word)
// and drops repeated (word, child) pairs, so a match looks a segment up by
// binary search instead of comparing it with every edge.
void EntitlementPathTree::index_edges() {
    auto key = [this](const Edge& e) { return std::make_tuple(!is_variable(word(e.word)), word(e.word), e.child); };
    std::vector<Edge> sorted;
    sorted.reserve(edges_.size());
    std::vector<std::uint32_t> begin;
    begin.reserve(node_edges_begin_.size());
    literal_begin_.clear();
    literal_begin_.reserve(node_edges_begin_.size());
    for (std::size_t n = 0; n + 1 < node_edges_begin_.size(); ++n) {
        auto first = edges_.begin() + node_edges_begin_[n];
        auto last = edges_.begin() + node_edges_begin_[n + 1];
        std::sort(first, last, [&](const Edge& a, const Edge& b) { return key(a) < key(b); });
        begin.push_back(static_cast<std::uint32_t>(sorted.size()));
        std::uint32_t literal = begin.back();
        for (auto it = first; it != last; ++it) {
            if (it != first && key(*it) == key(*(it - 1))) continue;
            sorted.push_back(*it);
            if (is_variable(word(it->word))) literal = static_cast<std::uint32_t>(sorted.size());
        }
        literal_begin_.push_back(literal);
    }
    begin.push_back(static_cast<std::uint32_t>(sorted.size()));
    sorted.shrink_to_fit();
    edges_.swap(sorted);
    node_edges_begin_.swap(begin);
}

std::size_t EntitlementPathTree::approximate_size() const {
    return sizeof(*this) + words_.capacity() +
           (word_begin_.capacity() + word_size_.capacity() + node_edges_begin_.capacity() +
            literal_begin_.capacity()) *
               sizeof(std::uint32_t) +
           edges_.capacity() * sizeof(Edge);
}

namespace {

// Per-thread scratch space of entitles(): the frontier vectors and a
// "reached at this depth" stamp per node, so nothing is allocated or sorted
// per match and each node is expanded at most once per segment.
struct MatchScratch {
    std::vector<std::uint32_t> frontier;
    std::vector<std::uint32_t> next;
    std::vector<std::uint32_t> stamp;  // stamp[node] == generation: already in next
    std::uint32_t generation = 0;

    void new_depth(std::size_t nodes) {
        if (stamp.size() < nodes) stamp.resize(nodes, 0);
        if (++generation == 0) {  // wrapped: old stamps could collide
            std::fill(stamp.begin(), stamp.end(), 0);
            generation = 1;
        }
        next.clear();
    }
    void reach(std::uint32_t node) {
        if (stamp[node] == generation) return;
        stamp[node] = generation;
        next.push_back(node);
    }
};

}  // namespace

bool EntitlementPathTree::entitles(std::string_view url_path) const noexcept {
    try {
        const std::vector<std::string_view> segments = split_segments(url_path);
        thread_local MatchScratch scratch;
        MatchScratch& m = scratch;
        m.frontier.assign(1, 0);
        for (std::size_t i = 0;; ++i) {
            m.new_depth(node_count());
            const bool last = i + 1 == segments.size();
            for (std::uint32_t node : m.frontier) {
                const std::uint32_t begin = node_edges_begin_[node];
                const std::uint32_t end = node_edges_begin_[node + 1];
                if (begin == end) return true;  // a content path ends here
                if (i == segments.size()) continue;
                if (last && segments[i] == "listing") return true;
                const std::uint32_t literal = literal_begin_[node];
                for (std::uint32_t e = begin; e < literal; ++e) m.reach(edges_[e].child);
                auto first = edges_.begin() + literal;
                auto stop = edges_.begin() + end;
                auto it = std::lower_bound(first, stop, segments[i], [this](const Edge& e, std::string_view seg) {
                    return word(e.word) < seg;
                });
                for (; it != stop && word(it->word) == segments[i]; ++it) m.reach(it->child);
            }
            if (i == segments.size() || m.next.empty()) return false;
            m.frontier.swap(m.next);
        }
    } catch (...) {
        return false;
    }
}

std::vector<std::string> EntitlementPathTree::paths(std::size_t max_paths) const {
    std::set<std::string> out;
    if (max_paths == 0) return {};
    struct Frame {
        std::uint32_t node;
        std::uint32_t next_edge;
    };
    std::vector<Frame> stack{{0, node_edges_begin_[0]}};
    std::vector<std::string_view> trail;
    std::vector<char> on_trail(node_count(), 0);
    on_trail[0] = 1;
    std::size_t steps = 0;
    while (!stack.empty() && out.size() < max_paths && steps < kMaxListingSteps) {
        Frame& top = stack.back();
        if (top.next_edge == node_edges_begin_[top.node + 1]) {
            on_trail[top.node] = 0;
            stack.pop_back();
            if (!trail.empty()) trail.pop_back();
            continue;
        }
        ++steps;
        const Edge edge = edges_[top.next_edge++];
        const std::uint32_t child = edge.child;
        if (node_edges_begin_[child] == node_edges_begin_[child + 1]) {
            std::string p;
            for (std::string_view s : trail) (p += '/') += s;
            (p += '/') += word(edge.word);
            out.insert(std::move(p));
            continue;
        }
        if (on_trail[child] || stack.size() >= kMaxListedDepth) continue;  // cycle / too deep
        on_trail[child] = 1;
        trail.push_back(word(edge.word));
        stack.push_back({child, node_edges_begin_[child]});
    }
    return std::vector<std::string>(out.begin(), out.end());
}

// ---- EntitlementCertificate ----

std::string EntitlementCertificate::sha256_hex(std::string_view bytes) {
    Sha256 sha;
    sha.update(bytes);
    auto hex = sha.hex();
    if (!hex) {
        ERR_clear_error();
        return {};
    }
    return *hex;
}

Result<std::string> EntitlementCertificate::pem_to_der(std::string_view pem) {
    if (pem.size() > kMaxPemBytes) {
        return Result<std::string>::failure("PEM text too large");
    }
    try {
        OpenSslErrorMark mark;
        std::unique_ptr<BIO, BioDeleter> bio(
            BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        if (!bio) {
            return Result<std::string>::failure("out of memory");
        }
        unsigned char* data = nullptr;
        long len = 0;
        char* name = nullptr;
        if (PEM_bytes_read_bio(&data, &len, &name, PEM_STRING_X509, bio.get(), no_password,
                               nullptr) != 1) {
            return Result<std::string>::failure("no PEM CERTIFICATE block");
        }
        std::string der;
        if (data && len > 0)
            der.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
        OPENSSL_free(data);
        OPENSSL_free(name);
        if (der.empty()) {
            return Result<std::string>::failure("empty PEM CERTIFICATE block");
        }
        return der;
    } catch (const std::bad_alloc&) {
        return Result<std::string>::failure("out of memory");
    }
}

Result<std::shared_ptr<const EntitlementCertificate>> EntitlementCertificate::from_pem(
    std::string_view pem) {
    Result<std::string> der = pem_to_der(pem);
    if (!der) return Parsed::failure(der.error());
    return from_der(*der);
}

Result<std::shared_ptr<const EntitlementCertificate>> EntitlementCertificate::from_der(
    std::string_view der) {
    if (der.empty() || der.size() > kMaxDerBytes) {
        return Parsed::failure(der.empty() ? "empty certificate" : "certificate too large");
    }
    try {
        OpenSslErrorMark mark;
        const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
        const unsigned char* p = begin;
        std::unique_ptr<X509, X509Deleter> x509(
            d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        if (!x509) {
            return Parsed::failure("not an X.509 certificate");
        }
        if (static_cast<std::size_t>(p - begin) != der.size()) {
            return Parsed::failure("trailing bytes after the certificate");
        }

        auto cert = std::make_shared<EntitlementCertificate>(Token{});
        cert->fingerprint_ = sha256_hex(der);
        const auto nb = unix_seconds(X509_get0_notBefore(x509.get()));
        const auto na = unix_seconds(X509_get0_notAfter(x509.get()));
        if (nb && na) {
            cert->not_before_ = *nb;
            cert->not_after_ = *na;
        } else {  // unreadable dates: never valid
            cert->not_before_ = std::numeric_limits<std::int64_t>::max();
            cert->not_after_ = std::numeric_limits<std::int64_t>::min();
        }

        std::optional<std::string> version;
        std::optional<std::string> payload;
        bool has_order_name = false;
        std::vector<std::string> download_paths;
        const int count = X509_get_ext_count(x509.get());
        for (int i = 0; i < count; ++i) {
            X509_EXTENSION* ext = X509_get_ext(x509.get(), i);
            if (!ext) continue;
            char buf[128];
            const int n = OBJ_obj2txt(buf, sizeof buf, X509_EXTENSION_get_object(ext), 1);
            if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) continue;  // not one of ours
            const std::string_view oid(buf, static_cast<std::size_t>(n));
            if (!starts_with(oid, kRedHatOidPrefix)) continue;
            const std::string_view rel = oid.substr(kRedHatOidPrefix.size());
            const bool is_download_path =
                starts_with(rel, "2.") && ends_with(rel, ".1.6") && rel.size() > 6;
            if (rel != "6" && rel != "7" && rel != "4.1" && !is_download_path) continue;
            const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
            if (!data) continue;
            std::string value = unwrap_der_string(
                ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
            if (rel == "6") {
                if (!version) version = std::move(value);
            } else if (rel == "7") {
                if (!payload) payload = std::move(value);
            } else if (rel == "4.1") {
                has_order_name = true;
            } else {
                download_paths.push_back(std::move(value));
            }
        }

        cert->version_string_ = version ? *version : std::string("1.0");
        const std::string_view v = cert->version_string_;
        const std::string_view major = v.substr(0, std::min(v.find('.'), v.size()));
        int major_number = -1;
        if (!major.empty() && major.size() <= 3 &&
            std::all_of(major.begin(), major.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            major_number = std::stoi(std::string(major));
        }

        if (major_number == 1 && has_order_name) {
            cert->major_version_ = 1;
            for (const std::string& raw : download_paths) {
                std::string normalised = normalize_url_path(raw);
                std::vector<std::string> segments;
                for (std::string_view s : split_segments(normalised)) segments.emplace_back(s);
                // An empty or "/" download path would match everything; a
                // Candlepin certificate never has one, so it entitles nothing.
                if (!segments.empty()) cert->content_segments_.push_back(std::move(segments));
                cert->content_paths_.push_back(std::move(normalised));
            }
            if (cert->content_segments_.empty())
                cert->problem_ = "v1 certificate without download paths";
        } else if (major_number == 3) {
            cert->major_version_ = 3;
            if (!payload || payload->empty()) {
                cert->problem_ = "v3 certificate without a path tree (extension .7)";
            } else {
                auto tree = EntitlementPathTree::decode(*payload);
                if (tree) {
                    cert->path_tree_ = std::move(*tree);
                } else {
                    cert->problem_ = "v3 path tree: " + tree.error();
                }
            }
        } else if (version && major_number != 1) {
            cert->problem_ = "unsupported entitlement certificate version " + cert->version_string_;
        }
        return Parsed(std::move(cert));
    } catch (const std::bad_alloc&) {
        return Parsed::failure("out of memory");
    }
}

std::size_t EntitlementCertificate::approximate_size() const {
    std::size_t n = sizeof(*this) + version_string_.capacity() + fingerprint_.capacity() +
                    problem_.capacity() + (path_tree_ ? path_tree_->approximate_size() : 0);
    for (const std::string& p : content_paths_) n += sizeof(p) + p.capacity();  // NOLINT(bugprone-sizeof-container): the object's own bytes
    for (const auto& segments : content_segments_) {
        n += sizeof(segments);  // NOLINT(bugprone-sizeof-container): the object's own bytes
        for (const std::string& s : segments) n += sizeof(s) + s.capacity();  // NOLINT(bugprone-sizeof-container)
    }
    return n;
}

bool EntitlementCertificate::valid_at(std::int64_t t) const {
    return not_before_ <= t && t <= not_after_;
}

bool EntitlementCertificate::entitles(std::string_view url_path) const noexcept {
    try {
        if (major_version_ == 3) return path_tree_ && path_tree_->entitles(url_path);
        if (major_version_ != 1) return false;
        const std::vector<std::string_view> target = split_segments(url_path);
        for (const std::vector<std::string>& content : content_segments_) {
            if (content.size() > target.size()) continue;
            bool match = true;
            for (std::size_t i = 0; i < content.size() && match; ++i) {
                match = content[i] == target[i] || is_variable(content[i]);
            }
            if (match) return true;
        }
        return false;
    } catch (...) {
        return false;
    }
}

}  // namespace crane
