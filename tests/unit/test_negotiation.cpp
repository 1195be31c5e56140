// The manifest negotiation table of SPEC section 5 and the Accept parser.
#include <catch2/catch.hpp>

#include "crane/negotiation.h"
#include "crane/v2_path.h"

using namespace crane;

namespace {

const std::string LIST(kMediaManifestList);
const std::string S2(kMediaManifestV2);

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
    V2Repo v2;
    v2.version = 2;
    V2Repo v3old;
    v3old.version = 3;
    v3old.has_schema2_fields = true;
    V2Repo z = zoo();
    struct Row {
        const V2Repo* repo;
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
        auto choice = negotiate_manifest(*row.repo, row.ref, AcceptSet(row.accept));
        CHECK(choice.path == row.path);
        CHECK(choice.media_type == row.type);
    }
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
