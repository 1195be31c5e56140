// Builders for the entitlement tests: a throwaway OpenSSL CA and a v3 path tree
// encoder written from the format description (not from the parser), so a
// round trip through the parser checks both against the format.
#include "entitlement_test_helpers.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <queue>
#include <stdexcept>

namespace crane::testing {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("test helper: " + what);
}

// ---- Huffman codes, built with a priority queue keyed by (weight, age) ----

// Codes ("0"/"1" strings) for symbols 0..n-1 with weights 1..n: the two
// lightest nodes merge, lighter (or older on a tie) on the left.
std::vector<std::string> huffman_codes(std::size_t n) {
    if (n < 2) fail("a Huffman code needs two symbols");
    struct Node {
        long left = -1;
        long right = -1;
    };
    struct Item {
        std::uint64_t weight;
        std::uint64_t age;
        long node;
        bool operator>(const Item& o) const {
            return weight != o.weight ? weight > o.weight : age > o.age;
        }
    };
    std::vector<Node> nodes(n);  // 0..n-1 are the leaves
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
    std::uint64_t age = 0;
    for (std::size_t i = 0; i < n; ++i) queue.push({i + 1, age++, static_cast<long>(i)});
    while (queue.size() > 1) {
        const Item a = queue.top();
        queue.pop();
        const Item b = queue.top();
        queue.pop();
        nodes.push_back({a.node, b.node});
        queue.push({a.weight + b.weight, age++, static_cast<long>(nodes.size() - 1)});
    }
    std::vector<std::string> codes(n);
    std::vector<std::pair<long, std::string>> todo{{queue.top().node, ""}};
    while (!todo.empty()) {
        auto [node, prefix] = todo.back();
        todo.pop_back();
        if (node < static_cast<long>(n)) {
            codes[static_cast<std::size_t>(node)] = prefix;
            continue;
        }
        todo.push_back({nodes[static_cast<std::size_t>(node)].left, prefix + "0"});
        todo.push_back({nodes[static_cast<std::size_t>(node)].right, prefix + "1"});
    }
    return codes;
}

std::string der_length(std::size_t len) {
    std::string out;
    if (len < 128) {
        out.push_back(static_cast<char>(len));
        return out;
    }
    std::string bytes;
    for (std::size_t v = len; v; v >>= 8) bytes.insert(bytes.begin(), static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>(0x80 | bytes.size()));
    return out + bytes;
}

std::string wrap_value(const CertExtension& ext) {
    unsigned char tag = 0;
    switch (ext.wrap) {
        case Wrap::Raw:
            return ext.value;
        case Wrap::Utf8String:
            tag = 0x0c;
            break;
        case Wrap::OctetString:
            tag = 0x04;
            break;
        case Wrap::Ia5String:
            tag = 0x16;
            break;
    }
    return std::string(1, static_cast<char>(tag)) + der_length(ext.value.size()) + ext.value;
}

struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Deleter {
    void operator()(X509* x) const { X509_free(x); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

Pkey new_key() {
    Pkey key(EVP_EC_gen("P-256"));
    if (!key) fail("EC key generation");
    return key;
}

void set_name(X509_NAME* name, const std::string& cn) {
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) != 1) {
        fail("subject name");
    }
}

struct TestCa {
    Pkey key = new_key();
    Pkey leaf_key = new_key();  // one key for every client certificate: keygen is slow
    X509Ptr cert;
    TestCa() {
        cert.reset(X509_new());
        X509_set_version(cert.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
        set_name(X509_get_subject_name(cert.get()), "crane test CA");
        X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
        X509_set_pubkey(cert.get(), key.get());
        if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fail("CA signature");
    }
};

TestCa& test_ca() {
    static TestCa ca;
    return ca;
}

}  // namespace

// ---- v3 encoder ----

PathGraph path_graph_from_paths(const std::vector<std::string>& paths) {
    PathGraph g;
    g.nodes.emplace_back();  // root
    std::uint32_t end_node = 0;
    auto get_end = [&]() {
        if (end_node == 0) {
            g.nodes.emplace_back();
            end_node = static_cast<std::uint32_t>(g.nodes.size() - 1);
        }
        return end_node;
    };
    for (const std::string& path : paths) {
        std::vector<std::string> segments;
        std::size_t i = 0;
        while (i < path.size()) {
            const std::size_t j = std::min(path.find('/', i), path.size());
            if (j > i) segments.push_back(path.substr(i, j - i));
            i = j + 1;
        }
        std::uint32_t at = 0;
        for (std::size_t s = 0; s < segments.size(); ++s) {
            const bool last = s + 1 == segments.size();
            auto& edges = g.nodes[at];
            auto found = std::find_if(edges.begin(), edges.end(), [&](const PathGraph::Edge& e) {
                return e.word == segments[s] && ((e.child == end_node) == last);
            });
            if (found != edges.end()) {
                at = found->child;
                continue;
            }
            std::uint32_t child = 0;
            if (last) {
                child = get_end();
            } else {
                g.nodes.emplace_back();
                child = static_cast<std::uint32_t>(g.nodes.size() - 1);
            }
            g.nodes[at].push_back({segments[s], child});
            at = child;
        }
    }
    return g;
}

std::string zlib_compress(std::string_view data) {
    uLongf size = compressBound(static_cast<uLong>(data.size()));
    std::string out(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                  reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()),
                  Z_BEST_COMPRESSION) != Z_OK) {
        fail("zlib compress");
    }
    out.resize(size);
    return out;
}

std::string encode_path_graph(const PathGraph& input,
                              const std::vector<std::string>& unused_words) {
    PathGraph graph = input;
    if (graph.nodes.size() == 2) graph.nodes.emplace_back();  // Candlepin's filler node
    if (graph.nodes.size() < 3) fail("a path tree needs a root and an end node");

    // Word list: rarest first (Candlepin's order; any order decodes the same).
    std::map<std::string, std::size_t> frequency;
    for (const auto& node : graph.nodes) {
        for (const auto& e : node) {
            if (e.word.empty()) fail("empty words are the end-of-node marker");
            if (e.child == 0 || e.child >= graph.nodes.size()) fail("bad child reference");
            ++frequency[e.word];
        }
    }
    std::vector<std::string> words;
    for (const auto& [w, n] : frequency) words.push_back(w);
    for (const std::string& w : unused_words) {
        if (w.empty() || frequency.count(w)) fail("unused words must be new and non-empty");
        frequency[w] = 0;  // sorts first
        words.push_back(w);
    }
    std::stable_sort(words.begin(), words.end(), [&](const std::string& a, const std::string& b) {
        return frequency[a] < frequency[b];
    });
    std::string word_list;
    std::map<std::string, std::size_t> word_index;
    for (std::size_t i = 0; i < words.size(); ++i) {
        word_list += words[i];
        word_list.push_back('\0');
        word_index[words[i]] = i;
    }
    const std::vector<std::string> word_codes = huffman_codes(words.size() + 1);
    const std::string& end_code = word_codes.back();  // the empty piece after the last NUL
    const std::vector<std::string> node_codes = huffman_codes(graph.nodes.size() - 1);

    std::string payload = zlib_compress(word_list);
    const std::size_t count = graph.nodes.size();
    if (count < 128) {
        payload.push_back(static_cast<char>(count));
    } else {
        std::string bytes;
        for (std::size_t v = count; v; v >>= 8)
            bytes.insert(bytes.begin(), static_cast<char>(v & 0xff));
        payload.push_back(static_cast<char>(0x80 + bytes.size()));
        payload += bytes;
    }
    std::string bits;
    for (const auto& node : graph.nodes) {
        for (const auto& e : node) {
            bits += word_codes[word_index[e.word]];
            bits += node_codes[e.child - 1];
        }
        bits += end_code;
    }
    while (bits.size() % 8) bits.push_back('0');
    for (std::size_t i = 0; i < bits.size(); i += 8) {
        unsigned byte = 0;
        for (std::size_t b = 0; b < 8; ++b) byte = (byte << 1) | (bits[i + b] == '1' ? 1u : 0u);
        payload.push_back(static_cast<char>(byte));
    }
    return payload;
}

// ---- certificates ----

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string make_certificate_pem(const CertOptions& options) {
    static long serial = 1000;
    TestCa& ca = test_ca();
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
    const std::int64_t now = unix_now();
    const std::int64_t nb = options.not_before ? options.not_before : now - 3600;
    const std::int64_t na = options.not_after ? options.not_after : now + 365 * 86400;
    if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(nb)) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(na))) {
        fail("validity dates");
    }
    set_name(X509_get_subject_name(cert.get()), options.common_name);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get()));
    X509_set_pubkey(cert.get(), ca.leaf_key.get());
    for (const CertExtension& ext : options.extensions) {
        ASN1_OBJECT* obj = OBJ_txt2obj(ext.oid.c_str(), 1);
        if (!obj) fail("OID " + ext.oid);
        const std::string value = wrap_value(ext);
        ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(data, reinterpret_cast<const unsigned char*>(value.data()),
                              static_cast<int>(value.size()));
        X509_EXTENSION* x = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
        ASN1_OBJECT_free(obj);
        ASN1_OCTET_STRING_free(data);
        if (!x || X509_add_ext(cert.get(), x, -1) != 1) fail("extension " + ext.oid);
        X509_EXTENSION_free(x);
    }
    if (X509_sign(cert.get(), ca.key.get(), EVP_sha256()) <= 0) fail("signature");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert.get());
    char* text = nullptr;
    const long len = BIO_get_mem_data(bio, &text);
    std::string pem(text, static_cast<std::size_t>(len));
    BIO_free(bio);
    return pem;
}

std::string make_v1_certificate(const std::vector<std::string>& download_paths,
                                CertOptions options) {
    const std::string base(kRedHatOid);
    options.extensions.push_back({base + ".4.1", "Test Order"});
    std::size_t id = 1000;
    for (const std::string& path : download_paths) {
        const std::string content = base + ".2." + std::to_string(id++) + ".1";
        options.extensions.push_back({content, "yum"});
        options.extensions.push_back({content + ".1", "content " + path});
        options.extensions.push_back({content + ".6", path});
    }
    return make_certificate_pem(options);
}

std::string make_v3_certificate(std::string_view payload, std::string_view version,
                                Wrap payload_wrap, CertOptions options) {
    const std::string base(kRedHatOid);
    if (!version.empty()) options.extensions.push_back({base + ".6", std::string(version)});
    options.extensions.push_back({base + ".7", std::string(payload), payload_wrap});
    options.extensions.push_back({base + ".8", "Basic"});
    return make_certificate_pem(options);
}

std::string sha256_fingerprint_of_pem(std::string_view pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!cert) fail("fingerprint of unparsable PEM");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(cert.get(), EVP_sha256(), md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[md[i] >> 4]);
        out.push_back(kHex[md[i] & 15]);
    }
    return out;
}

}  // namespace crane::testing
