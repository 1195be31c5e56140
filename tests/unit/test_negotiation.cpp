// The manifest negotiation table (Docker and OCI types, tags and digests),
// the digest grammar and the Accept parser.
#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>

#include "api/negotiation.h"
#include "api/v2_path.h"
#include "crane/reference.h"
#include "crane/snapshot.h"

using namespace crane;

namespace {

const std::string LIST(kMediaManifestList);
const std::string S2(kMediaManifestV2);

// A repo as the one v2 repo of its own snapshot (which the holder keeps alive).
struct Held {
    std::shared_ptr<const Snapshot> snapshot;
    V2View repo;
    operator const V2View&() const { return repo; }
};

Held view_of(const V2Repo& r) {
    ParsedRepo parsed;
    parsed.v2 = std::make_shared<const V2Repo>(r);
    std::shared_ptr<const Snapshot> s = snapshot_of(parsed);
    REQUIRE(s->v2_sorted().size() == 1);
    return Held{s, s->v2_sorted()[0]};
}

// A version 2 repo (no negotiation data at all) and a version 3 one whose
// schema 2 lists are empty.
V2Repo plain_v2() {
    V2Repo r;
    r.id = "v2";
    r.version = 2;
    return r;
}

V2Repo old_v3() {
    V2Repo r;
    r.id = "v3old";
    r.version = 3;
    r.has_schema2_fields = true;
    return r;
}

V2Repo zoo() {
    V2Repo r;
    r.id = "zoo";
    r.version = 4;
    r.has_schema2_fields = true;
    r.schema2_data = {"2.0", "latest"};
    r.manifest_list_data = {"latest", "multi"};
    r.manifest_list_amd64_tags = {{"latest", "sha256:a2", 2}, {"multi", "sha256:b1", 1}};
    return r;
}

}  // namespace

TEST_CASE("Accept values are comma-split, parameters dropped, trimmed", "[negotiation]") {
    const std::string header = " application/json ; q=0.5 ,, " + S2 + ",text/html;level=1";
    AcceptSet a(header);  // views into header
    REQUIRE(a.types().size() == 3);
    CHECK(a.types()[0] == "application/json");
    CHECK(a.types()[1] == S2);
    CHECK(a.types()[2] == "text/html");
    CHECK(a.contains(S2));
    CHECK_FALSE(a.contains("text"));
    CHECK(AcceptSet("").types().empty());
}

TEST_CASE("the negotiation table picks the manifest path and media type", "[negotiation]") {
    const Held v2 = view_of(plain_v2()), v3old = view_of(old_v3());
    const Held z = view_of(zoo());
    struct Row {
        const Held* repo;
        const char* ref;
        std::string accept;
        const char* path;
        std::string_view type;
    };
    const Row rows[] = {
        {&v2, "latest", S2 + "," + LIST, "manifests/latest", kMediaJson},
        {&v3old, "latest", S2 + "," + LIST, "manifests/1/latest", kMediaJson},
        {&z, "latest", LIST + "," + S2, "manifests/list/latest", kMediaManifestList},
        {&z, "latest", S2, "manifests/2/sha256:a2", kMediaManifestV2},
        {&z, "latest", "", "manifests/1/latest", kMediaJson},
        {&z, "multi", S2, "manifests/1/sha256:b1", kMediaJson},
        {&z, "multi", "", "manifests/1/sha256:b1", kMediaJson},
        {&z, "multi", LIST, "manifests/list/multi", kMediaManifestList},
        {&z, "2.0", S2, "manifests/2/2.0", kMediaManifestV2},
        {&z, "2.0", LIST, "manifests/1/2.0", kMediaJson},
        {&z, "2.0", "", "manifests/1/2.0", kMediaJson},
        {&z, "other", S2 + "," + LIST, "manifests/1/other", kMediaJson},
    };
    for (const auto& row : rows) {
        INFO(row.ref << " with Accept: " << row.accept);
        auto choice = negotiate_manifest(row.repo->repo, row.ref, AcceptSet(row.accept));
        CHECK(choice.path == row.path);
        CHECK(choice.media_type == row.type);
    }
}

TEST_CASE("digests follow the grammar; sha256 and sha512 are lowercase hex of their length", "[negotiation]") {
    const std::string hex64(64, 'a');
    for (const std::string& good :
         {"sha256:" + hex64, "sha512:" + std::string(128, '0'), std::string("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
          std::string("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"), std::string("a.b_c-d+e:Z=_-")}) {
        INFO(good);
        CHECK(is_digest(good));
    }
    for (const std::string& bad :
         {std::string(""), std::string("sha256"), std::string(":abc"), std::string("sha256:"), std::string("sha256:abc"),
          "sha256:" + std::string(63, 'a'), "sha256:" + std::string(65, 'a'), "sha256:" + std::string(64, 'A'),
          "sha256:" + std::string(63, 'a') + "g", "sha512:" + hex64, "SHA256:" + hex64, std::string("a..b:x"),
          std::string("a.:x"), std::string(".a:x"), std::string("a:x:y"), std::string("a:x/y"), std::string("a:x y"),
          "sha256:" + hex64 + "\n"}) {
        INFO(bad);
        CHECK_FALSE(is_digest(bad));
    }
}

namespace {

// digests of each kind in the "mix" repo
const std::string DL = "sha256:" + std::string(63, '0') + "1";  // a manifest list
const std::string DS = "sha256:" + std::string(63, '0') + "2";  // a schema 2 manifest
const std::string DI = "sha256:" + std::string(63, '0') + "3";  // an OCI index
const std::string DM = "sha256:" + std::string(63, '0') + "4";  // an OCI manifest
const std::string DA2 = "sha256:" + std::string(63, '0') + "5";  // amd64 manifest of "amd" (schema 2)
const std::string DA1 = "sha256:" + std::string(63, '0') + "6";  // amd64 manifest of "amd1" (schema 1)
const std::string DU = "sha256:" + std::string(63, '0') + "7";  // unknown

V2Repo mix() {
    V2Repo r;
    r.id = "mix";
    r.version = 4;
    r.has_schema2_fields = true;
    r.manifest_list_data = {"amd", "amd1", "list", DL};
    std::sort(r.manifest_list_data.begin(), r.manifest_list_data.end());
    r.manifest_list_amd64_tags = {{"amd", DA2, 2}, {"amd1", DA1, 1}};
    r.schema2_data = {"s2", DS};
    r.oci_index_data = {"idx", DI};
    r.oci_manifest_data = {"man", DM};
    for (auto* v : {&r.schema2_data, &r.oci_index_data, &r.oci_manifest_data}) std::sort(v->begin(), v->end());
    return r;
}

// "PATH TYPE" (J application/json, L list, S schema 2, I OCI index, M OCI
// manifest), or the error: "404" unknown, "404 OCI" not accepted, "400".
std::string outcome(const ManifestChoice& c) {
    switch (c.outcome) {
        case ManifestOutcome::Unknown: return "404";
        case ManifestOutcome::OciNotAccepted: return "404 OCI";
        case ManifestOutcome::DigestInvalid: return "400";
        case ManifestOutcome::Found: break;
    }
    const char* t = c.media_type == kMediaJson           ? "J"
                    : c.media_type == kMediaManifestList ? "L"
                    : c.media_type == kMediaManifestV2   ? "S"
                    : c.media_type == kMediaOciIndex     ? "I"
                    : c.media_type == kMediaOciManifest  ? "M"
                                                         : "?";
    return c.path + " " + t;
}

}  // namespace

TEST_CASE("the full matrix: every kind of ref under every Accept", "[negotiation]") {
    const Held m = view_of(mix());
    const std::string IDX(kMediaOciIndex), MAN(kMediaOciManifest);
    const std::string S1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    // the columns: what the client accepts
    const std::string accepts[] = {"", S1, S2, LIST, IDX, MAN, S1 + ", " + S2 + ", " + LIST + ", " + IDX + ", " + MAN,
                                   IDX + ", " + MAN};  // the last: what an OCI-only client sends
    struct Row {
        std::string ref;
        std::string want[8];  // one per column
    };
    auto all = [](const std::string& v) {
        Row r;
        for (auto& w : r.want) w = v;
        return r;
    };
    auto same = [&](const std::string& ref, const std::string& v) {
        Row r = all(v);
        r.ref = ref;
        return r;
    };
    const std::string oci = "404 OCI";
    const std::string mal = "400";
    const Row rows[] = {
        // tags
        // (an OCI client reads the Docker formats: a Docker tag's list or schema 2)
        {"list", {"manifests/1/list J", "manifests/1/list J", "manifests/1/list J", "manifests/list/list L",
                  "manifests/list/list L", "manifests/1/list J", "manifests/list/list L", "manifests/list/list L"}},
        {"s2", {"manifests/1/s2 J", "manifests/1/s2 J", "manifests/2/s2 S", "manifests/1/s2 J", "manifests/1/s2 J",
                "manifests/2/s2 S", "manifests/2/s2 S", "manifests/2/s2 S"}},
        {"idx", {oci, oci, oci, oci, "manifests/oci-index/idx I", oci, "manifests/oci-index/idx I",
                 "manifests/oci-index/idx I"}},
        {"man", {oci, oci, oci, oci, oci, "manifests/oci/man M", "manifests/oci/man M", "manifests/oci/man M"}},
        {"amd", {"manifests/1/amd J", "manifests/1/amd J", "manifests/2/" + DA2 + " S", "manifests/list/amd L",
                 "manifests/list/amd L", "manifests/2/" + DA2 + " S", "manifests/list/amd L", "manifests/list/amd L"}},
        {"amd1", {"manifests/1/" + DA1 + " J", "manifests/1/" + DA1 + " J", "manifests/1/" + DA1 + " J",
                  "manifests/list/amd1 L", "manifests/list/amd1 L", "manifests/1/" + DA1 + " J",
                  "manifests/list/amd1 L", "manifests/list/amd1 L"}},
        same("s1", "manifests/1/s1 J"),  // schema 1 only / unknown tag: Crane's schema 1 path
        // digests: by content, whatever Accept says
        same(DL, "manifests/list/" + DL + " L"),
        same(DS, "manifests/2/" + DS + " S"),
        same(DI, "manifests/oci-index/" + DI + " I"),
        same(DM, "manifests/oci/" + DM + " M"),
        same(DA2, "manifests/2/" + DA2 + " S"),
        same(DA1, "manifests/1/" + DA1 + " J"),
        same(DU, "404"),
        same("sha256:abc", mal),
        same("sha256:" + std::string(64, 'A'), mal),
        same("latest:1", "404"),  // well-formed (algorithm "latest"), just unknown
        same("Latest:1", mal),
        same("a:", mal),
    };
    for (const auto& row : rows) {
        for (std::size_t i = 0; i < std::size(accepts); ++i) {
            INFO(row.ref << " with Accept: " << accepts[i]);
            CHECK(outcome(negotiate_manifest(m, row.ref, AcceptSet(accepts[i]))) == row.want[i]);
        }
    }
    // repos without negotiation data keep Crane's paths for tags and digests
    const Held v2 = view_of(plain_v2()), v3old = view_of(old_v3());
    for (const auto& accept : accepts) {
        INFO("Accept: " << accept);
        for (const std::string& ref : {std::string("latest"), DL, DU}) {
            CHECK(outcome(negotiate_manifest(v2, ref, AcceptSet(accept))) == "manifests/" + ref + " J");
            CHECK(outcome(negotiate_manifest(v3old, ref, AcceptSet(accept))) == "manifests/1/" + ref + " J");
        }
        CHECK(outcome(negotiate_manifest(v2, "sha256:abc", AcceptSet(accept))) == mal);
        CHECK(outcome(negotiate_manifest(v3old, "sha256:abc", AcceptSet(accept))) == mal);
    }
    // an error carries its message
    CHECK(negotiate_manifest(m, "man", AcceptSet(S2)).message ==
          "OCI manifest found, but the Accept header does not allow it");
    CHECK(negotiate_manifest(m, "idx", AcceptSet(S2)).message ==
          "OCI index found, but the Accept header does not allow it");
    CHECK(negotiate_manifest(m, DU, AcceptSet(S2)).message == "manifest unknown");
    // where a schema 1 manifest of an unlisted digest would be (serving content looks)
    CHECK(negotiate_manifest(m, DU, AcceptSet(S2)).path == "manifests/1/" + DU);
    CHECK(negotiate_manifest(m, "s2", AcceptSet(S2)).message.empty());
}

TEST_CASE("the v2 path split uses the rightmost kind component with something after it", "[v2path]") {
    auto p = split_v2_path("org/tags/app/tags/list");
    REQUIRE(p);
    CHECK(p->name == "org/tags/app");
    CHECK(p->path == "tags/list");
    CHECK(p->rest == "list");
    CHECK(p->kind == V2Kind::Tags);

    p = split_v2_path("busybox/manifests/latest");
    REQUIRE(p);
    CHECK(p->name == "busybox");
    CHECK(p->path == "manifests/latest");
    CHECK(p->kind == V2Kind::Manifests);

    p = split_v2_path("a/b/blobs/sha256:abc");
    REQUIRE(p);
    CHECK(p->name == "a/b");
    CHECK(p->rest == "sha256:abc");
    CHECK(p->kind == V2Kind::Blobs);

    p = split_v2_path("a/referrers/b/referrers/sha256:abc");
    REQUIRE(p);
    CHECK(p->name == "a/referrers/b");
    CHECK(p->path == "referrers/sha256:abc");
    CHECK(p->rest == "sha256:abc");
    CHECK(p->kind == V2Kind::Referrers);

    p = split_v2_path("repo/manifests/manifests");
    REQUIRE(p);
    CHECK(p->name == "repo");
    CHECK(p->rest == "manifests");

    for (const char* bad : {"", "busybox", "busybox/manifests", "manifests/latest", "a//manifests/x",
                            "a/manifests/../x", "./manifests/x", "a/manifests/x/", "a/blobs/./x"}) {
        INFO(bad);
        CHECK_FALSE(split_v2_path(bad));
    }
}
