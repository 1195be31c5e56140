// Fuzz target `accept`: the Accept header parser (AcceptSet) and manifest
// negotiation (negotiate_manifest) on fixed v2/v3/v4 repos (with OCI keys
// too). Input: ACCEPT NUL REF, or (no NUL) the same bytes used as both. Both
// are compared with an independent model (Accept splitting, the negotiation
// table for tags and digests, the digest grammar as a regex).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "crane/metadata.h"
#include "crane/snapshot.h"
#include "api/negotiation.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_accept invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

const char* const kRepoJson[] = {
    R"({"version": 2, "repo-registry-id": "v2repo", "url": "http://cdn.example.com/v2repo/"})",
    R"({"version": 3, "repo-registry-id": "v3old", "url": "http://cdn.example.com/v3old/", "schema2_data": []})",
    R"({"version": 3, "repo-registry-id": "v3repo", "url": "http://cdn.example.com/v3repo",
        "schema2_data": ["latest", "sha256:5c2b000000000000000000000000000000000000000000000000000000000000", "2.0"]})",
    R"({"version": 4, "repo-registry-id": "zoo", "url": "http://cdn.example.com/zoo/",
        "schema2_data": ["2.0", "latest", "only2"],
        "manifest_list_data": ["latest", "multi", "listonly"],
        "manifest_list_amd64_tags": {
            "latest": ["sha256:aaaa020000000000000000000000000000000000000000000000000000000000", 2],
            "multi": ["sha256:bbbb010000000000000000000000000000000000000000000000000000000000", 1],
            "only2": ["sha256:cccc020000000000000000000000000000000000000000000000000000000000", 2]}})",
    R"({"version": 4, "repo-registry-id": "listless", "url": "http://cdn.example.com/listless/",
        "schema2_data": [], "manifest_list_data": ["latest"], "manifest_list_amd64_tags": {}})",
    R"({"version": 4, "repo-registry-id": "oci", "url": "http://cdn.example.com/oci/",
        "schema2_data": ["both", "sha256:2222222222222222222222222222222222222222222222222222222222222222"],
        "manifest_list_data": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"],
        "manifest_list_amd64_tags": {"both": ["sha256:5555555555555555555555555555555555555555555555555555555555555555", 2]},
        "oci_index_data": ["idx", "both", "sha256:3333333333333333333333333333333333333333333333333333333333333333"],
        "oci_manifest_data": ["man", "sha256:4444444444444444444444444444444444444444444444444444444444444444"]})",
    R"({"version": 4, "repo-registry-id": "ocionly", "url": "http://cdn.example.com/ocionly/",
        "schema2_data": [], "manifest_list_data": [], "manifest_list_amd64_tags": {}, "oci_manifest_data": ["man"]})",
};

// A fixed repo: its record (what the model reads) and the same repo as the
// one repo of a snapshot (what negotiate_manifest reads).
struct FixedRepo {
    std::shared_ptr<const crane::V2Repo> record;
    std::shared_ptr<const crane::Snapshot> snapshot;
    crane::V2View view;
};

const std::vector<FixedRepo>& repos() {
    static const auto all = [] {
        std::vector<FixedRepo> out;
        for (const char* json : kRepoJson) {
            auto r = crane::parse_metadata(json, "fuzz.json");
            if (!r || !r->v2) fail("fixed metadata does not parse", r.error().message);
            auto snapshot = crane::snapshot_of(*r);
            auto view = snapshot->find_v2(r->v2->id);
            if (!view) fail("fixed metadata is not in its snapshot", r->v2->id);
            out.push_back(FixedRepo{r->v2, snapshot, *view});
        }
        return out;
    }();
    return all;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> model_accept(std::string_view header) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = header.find(',', start);
        std::string_view item =
            header.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        item = trim(item.substr(0, item.find(';')));
        if (!item.empty()) out.push_back(item);
        if (comma == std::string_view::npos) return out;
        start = comma + 1;
    }
}

bool has(const std::vector<std::string>& sorted, std::string_view v) {
    return std::find(sorted.begin(), sorted.end(), v) != sorted.end();
}

bool model_digest(std::string_view ref) {
    static const std::regex grammar("[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+");
    static const std::regex sha256("sha256:[a-f0-9]{64}");
    static const std::regex sha512("sha512:[a-f0-9]{128}");
    const std::string r(ref);
    if (!std::regex_match(r, grammar)) return false;
    if (r.compare(0, 7, "sha256:") == 0) return std::regex_match(r, sha256);
    if (r.compare(0, 7, "sha512:") == 0) return std::regex_match(r, sha512);
    return true;
}

crane::ManifestChoice make(std::string path, std::string_view type,
                           crane::ManifestOutcome outcome = crane::ManifestOutcome::Found) {
    crane::ManifestChoice c;
    c.path = std::move(path);
    c.media_type = type;
    c.outcome = outcome;
    return c;
}

crane::ManifestChoice model_negotiate(const crane::V2Repo& repo, std::string_view ref,
                                      const std::vector<std::string_view>& accept) {
    using crane::ManifestOutcome;
    const std::string r(ref);
    auto accepts = [&](std::string_view t) { return std::find(accept.begin(), accept.end(), t) != accept.end(); };
    const bool list = accepts(crane::kMediaManifestList), s2 = accepts(crane::kMediaManifestV2);
    const bool index = accepts(crane::kMediaOciIndex), oci = accepts(crane::kMediaOciManifest);
    const bool digest = ref.find(':') != std::string_view::npos;
    if (digest && !model_digest(ref)) return make("", {}, ManifestOutcome::DigestInvalid);
    if (repo.version == 2) return make("manifests/" + r, crane::kMediaJson);
    if (repo.schema2_data.empty() && repo.manifest_list_data.empty() && repo.oci_index_data.empty() &&
        repo.oci_manifest_data.empty()) {
        return make("manifests/1/" + r, crane::kMediaJson);
    }
    if (digest) {
        if (has(repo.manifest_list_data, ref)) return make("manifests/list/" + r, crane::kMediaManifestList);
        if (has(repo.schema2_data, ref)) return make("manifests/2/" + r, crane::kMediaManifestV2);
        if (has(repo.oci_index_data, ref)) return make("manifests/oci-index/" + r, crane::kMediaOciIndex);
        if (has(repo.oci_manifest_data, ref)) return make("manifests/oci/" + r, crane::kMediaOciManifest);
        for (const auto& amd : repo.manifest_list_amd64_tags) {
            if (amd.digest != ref) continue;
            return amd.schema_version == 2 ? make("manifests/2/" + r, crane::kMediaManifestV2)
                                           : make("manifests/1/" + r, crane::kMediaJson);
        }
        return make("manifests/1/" + r, crane::kMediaJson, ManifestOutcome::Unknown);
    }
    if (list && has(repo.manifest_list_data, ref)) return make("manifests/list/" + r, crane::kMediaManifestList);
    if (index && has(repo.oci_index_data, ref)) return make("manifests/oci-index/" + r, crane::kMediaOciIndex);
    for (const auto& amd : repo.manifest_list_amd64_tags) {
        if (amd.tag != ref) continue;
        if (s2) {
            return make("manifests/" + std::to_string(amd.schema_version) + "/" + amd.digest,
                        amd.schema_version == 2 ? crane::kMediaManifestV2 : crane::kMediaJson);
        }
        // OCI clients read the Docker formats
        if (index && has(repo.manifest_list_data, ref)) {
            return make("manifests/list/" + r, crane::kMediaManifestList);
        }
        if (oci && amd.schema_version == 2) return make("manifests/2/" + amd.digest, crane::kMediaManifestV2);
        if (amd.schema_version == 1) return make("manifests/1/" + amd.digest, crane::kMediaJson);
        return make("manifests/1/" + r, crane::kMediaJson);
    }
    if (s2 && has(repo.schema2_data, ref)) return make("manifests/2/" + r, crane::kMediaManifestV2);
    if (oci && has(repo.oci_manifest_data, ref)) return make("manifests/oci/" + r, crane::kMediaOciManifest);
    if (index && has(repo.manifest_list_data, ref)) return make("manifests/list/" + r, crane::kMediaManifestList);
    if (oci && has(repo.schema2_data, ref)) return make("manifests/2/" + r, crane::kMediaManifestV2);
    if (!has(repo.schema2_data, ref) && !has(repo.manifest_list_data, ref) &&
        (has(repo.oci_index_data, ref) || has(repo.oci_manifest_data, ref))) {
        return make("", {}, ManifestOutcome::OciNotAccepted);
    }
    return make("manifests/1/" + r, crane::kMediaJson);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = input.find('\0');
    const std::string_view header = nul == std::string_view::npos ? input : input.substr(0, nul);
    const std::string_view ref = nul == std::string_view::npos ? input : input.substr(nul + 1);

    const crane::AcceptSet accept(header);
    const auto expected = model_accept(header);
    if (accept.types() != expected) fail("Accept types differ from the model", header);
    for (std::string_view t : accept.types()) {
        if (t.empty() || t.find(',') != std::string_view::npos || t.find(';') != std::string_view::npos ||
            trim(t) != t) {
            fail("bad Accept item", t);
        }
        if (t.data() < header.data() || t.data() + t.size() > header.data() + header.size()) {
            fail("Accept item does not view the header", t);
        }
        if (!accept.contains(t)) fail("contains() misses an item", t);
    }

    for (const FixedRepo& fixed : repos()) {
        const crane::V2Repo* repo = fixed.record.get();
        const crane::ManifestChoice got = crane::negotiate_manifest(fixed.view, ref, accept);
        const crane::ManifestChoice want = model_negotiate(*repo, ref, expected);
        if (got.path != want.path || got.media_type != want.media_type || got.outcome != want.outcome) {
            std::fprintf(stderr, "repo %s: got %s (%.*s), want %s (%.*s)\n", repo->id.c_str(), got.path.c_str(),
                         static_cast<int>(got.media_type.size()), got.media_type.data(), want.path.c_str(),
                         static_cast<int>(want.media_type.size()), want.media_type.data());
            fail("negotiation differs from the model", input);
        }
        const bool found = got.outcome == crane::ManifestOutcome::Found;
        if ((found || got.outcome == crane::ManifestOutcome::Unknown) && got.path.compare(0, 10, "manifests/") != 0) fail("path outside manifests/", got.path);
        if (found != got.message.empty()) fail("an error without a message (or a message without one)", input);
    }
    return 0;
}
