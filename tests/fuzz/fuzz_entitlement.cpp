// Fuzz target `entitlement`: client certificate parsing.
// The raw input goes to EntitlementCertificate::from_pem, ::from_der and
// EntitlementPathTree::decode. So that the Huffman-coded tree behind the zlib
// word list is reached too, the input is also read as WORDS "\xff\xff" TAIL
// and decoded as the payload zlib(WORDS) + TAIL. entitles() is asked about a
// few fixed paths and about every path the certificate or tree lists; a
// listed path (and anything below it) must be entitled.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "entitlement/entitlement_certificate.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_entitlement invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

const char* const kPaths[] = {
    "/",
    "",
    "/content/dist/rhel/server/7/7Server/x86_64/os",
    "/content/dist/rhel/server/7/7Server/x86_64/listing",
    "/content/dist/secret",
    "/content/dist/secret/v2/",
    "//content//beta///rhel",
    "/registry/rhel7",
    "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
    "listing",
    "/$releasever/$basearch",
};

void ask_fixed(const crane::EntitlementPathTree& tree) {
    for (const char* p : kPaths) (void)tree.entitles(p);
}

// Every listed path is entitled, and so is everything below it. Only sound
// when no word holds a '/', which the caller knows for synthesised payloads.
void check_listed(const crane::EntitlementPathTree& tree, bool words_without_slash) {
    ask_fixed(tree);
    const std::vector<std::string> listed = tree.paths(64);
    if (listed.size() > 64) fail("paths() returned more than asked", std::to_string(listed.size()));
    for (const std::string& p : listed) {
        const bool yes = tree.entitles(p);
        const bool below = tree.entitles(p + "/extra/segment");
        if (words_without_slash && (!yes || !below)) fail("a listed path is not entitled", p);
    }
}

std::string zlib_compress(std::string_view data) {
    uLongf size = compressBound(static_cast<uLong>(data.size()));
    std::string out(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(data.data()),
                  static_cast<uLong>(data.size()), 6) != Z_OK) {
        fail("compress2", "");
    }
    out.resize(size);
    return out;
}

void check_certificate(const crane::EntitlementCertificate& cert) {
    for (const char* p : kPaths) (void)cert.entitles(p);
    (void)cert.valid_at(0);
    (void)cert.approximate_size();
    if (cert.sha256_fingerprint().size() != 64) fail("fingerprint length", cert.sha256_fingerprint());
    switch (cert.major_version()) {
        case 0:
            if (cert.is_entitlement() || cert.path_tree()) fail("non-entitlement with entitlement data", "");
            for (const char* p : kPaths) {
                if (cert.entitles(p)) fail("a non-entitlement certificate entitles", p);
            }
            break;
        case 1:
            if (cert.path_tree()) fail("v1 certificate with a path tree", "");
            for (const std::string& p : cert.content_paths()) {
                if (p != crane::normalize_url_path(p)) fail("content path not normalised", p);
                if (p.empty() || p == "/") continue;  // entitles nothing on purpose
                if (!cert.entitles(p) || !cert.entitles(p + "/below")) fail("v1 content path not entitled", p);
            }
            break;
        case 3:
            if (!cert.content_paths().empty()) fail("v3 certificate with v1 content paths", "");
            if (cert.path_tree()) check_listed(*cert.path_tree(), false);
            break;
        default:
            fail("unknown major version", std::to_string(cert.major_version()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    if (auto cert = crane::EntitlementCertificate::from_pem(input)) {
        check_certificate(**cert);
        auto der = crane::EntitlementCertificate::pem_to_der(input);
        if (!der || crane::EntitlementCertificate::sha256_hex(*der) != (*cert)->sha256_fingerprint()) {
            fail("fingerprint is not the DER's SHA-256", input);
        }
    } else if (cert.error().empty()) {
        fail("from_pem failed without a reason", input);
    }
    if (auto cert = crane::EntitlementCertificate::from_der(input)) {
        check_certificate(**cert);
    } else if (cert.error().empty()) {
        fail("from_der failed without a reason", input);
    }

    if (auto tree = crane::EntitlementPathTree::decode(input)) {
        check_listed(**tree, false);
    } else if (tree.error().empty()) {
        fail("decode failed without a reason", input);
    }

    const std::size_t cut = input.find("\xff\xff");
    if (cut != std::string_view::npos) {
        const std::string_view words = input.substr(0, cut);
        const std::string payload = zlib_compress(words) + std::string(input.substr(cut + 2));
        if (auto tree = crane::EntitlementPathTree::decode(payload)) {
            check_listed(**tree, words.find('/') == std::string_view::npos);
            if ((*tree)->node_count() < 3) fail("fewer than three nodes", input);
        } else if (tree.error().empty()) {
            fail("decode failed without a reason", input);
        }
    }
    return 0;
}
