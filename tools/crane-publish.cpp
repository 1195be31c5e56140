// crane-publish: publishes Docker schema2 and OCI images (with manifest lists
// and indexes) from skopeo's dir: layout or an OCI image layout as Pulp's v2
// web layout plus the version 4 metadata file mod_crane serves, so mod_crane
// is usable without Pulp. The work is in
// crane/publish.h; this file is the command line.
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "publish/publish.h"

namespace {

constexpr const char* kUsage = R"(NAME
    crane-publish - publish Docker and OCI images for mod_crane, without Pulp

SYNOPSIS
    crane-publish --repo-id ID --base-url URL --out WEBDIR --metadata DATADIR
                  [--repository NAME] [--protected] [--quiet]
                  [--tag TAG=SOURCE]... [TAG=SOURCE]...
    crane-publish --help

DESCRIPTION
    Reads images, checks them, and publishes them as one repository, each in
    the format it came in: a Docker image stays Docker, an OCI image stays
    OCI, and every manifest is published byte for byte, so its digest is the
    source's. SOURCE is one of

    IMAGEDIR, dir:IMAGEDIR
        skopeo's dir: layout, as `skopeo copy SRC dir:IMAGEDIR` writes it
        (a manifest list or OCI index with all its instances with
        `skopeo copy --all`; `--format v2s2` or `--format oci` converts)
    oci:LAYOUTDIR[:REF]
        an OCI image layout (oci-layout, index.json, blobs/sha256/), e.g.
        from `skopeo copy SRC oci:LAYOUTDIR:REF`: the manifest or index of
        index.json whose org.opencontainers.image.ref.name annotation is
        REF; without REF, the layout's only image. A plain LAYOUTDIR with an
        oci-layout file is read the same way.

    and what is written is

    WEBDIR/NAME/manifests/2/TAG|DIGEST          Docker schema 2 manifests
    WEBDIR/NAME/manifests/list/TAG|DIGEST       Docker manifest lists
    WEBDIR/NAME/manifests/oci/TAG|DIGEST        OCI image manifests
    WEBDIR/NAME/manifests/oci-index/TAG|DIGEST  OCI image indexes
    WEBDIR/NAME/manifests/1/                    empty (no schema 1)
    WEBDIR/NAME/blobs/DIGEST                    configs and layers
    WEBDIR/NAME/tags/list                       {"name": ID, "tags": [...]}
    WEBDIR/.errors/*-unknown.json               the registry's JSON errors
                                                for a static server's 404s
    DATADIR/ID.json                             version 4 metadata for
                                                mod_crane ('/' in ID
                                                becomes '-')

    The metadata lists the tags and digests of each kind (schema2_data,
    manifest_list_data, oci_manifest_data, oci_index_data) and every tag
    (tags). Artifacts in an OCI layout's index.json whose manifest has a
    subject that is published (signatures, SBOMs; also artifacts about such
    artifacts) are published by digest with their blobs and listed under
    their subject's digest in referrers, which mod_crane answers the
    referrers API from.

    Serve WEBDIR at URL (or point CraneContentDirV2 at WEBDIR with
    CraneServeContent On) and DATADIR is mod_crane's CraneDataDir. A static
    server must send each manifest's media type by its directory (see the
    samples in mod_crane's apache-conf/).

    Every blob's sha256 and size is verified while it is copied, and every
    manifest read from a list, index or OCI layout against its descriptor. On
    any error nothing is published and an earlier publication stays as it
    was. A publication replaces the earlier one of the same repository as a
    whole: the new tree is built beside it and swapped in atomically, the old
    files are removed, and the metadata file is written last (temporary file
    + rename).

    Not published: schema 1 images, nested OCI indexes, an OCI index holding
    Docker manifests or a Docker list holding OCI ones.

OPTIONS
    --repo-id ID        the name clients pull (repo-registry-id), e.g. ns/app
    --repository NAME   directory under WEBDIR (Pulp's repository name);
                        default: ID with '/' replaced by '-'
    --base-url URL      where WEBDIR is served; the metadata url is
                        URL/NAME/
    --out WEBDIR        the web root (created if missing)
    --metadata DATADIR  mod_crane's data dir (must exist)
    --protected         readable only with an entitling client certificate
    --tag TAG=SOURCE    publish the image in SOURCE as TAG; repeat for more
                        tags (several tags may share one SOURCE);
                        TAG=SOURCE may also be given without --tag
    -q, --quiet         print nothing on success
    -h, --help          this text

EXIT STATUS
    0 published; 1 bad input or a failed write (the reason on stderr);
    2 bad command line.

EXAMPLES
    skopeo copy --all --format v2s2 docker://quay.io/ns/app:1.0 dir:/tmp/app-1.0
    crane-publish --repo-id ns/app --base-url https://cdn.example.com/v2 \
        --out /var/www/pub/docker/v2/web --metadata /var/lib/crane/metadata \
        1.0=/tmp/app-1.0 latest=/tmp/app-1.0

    skopeo copy --all docker://quay.io/ns/oci-app:2.0 oci:/tmp/layout:2.0
    crane-publish --repo-id ns/oci-app --base-url https://cdn.example.com/v2 \
        --out /var/www/pub/docker/v2/web --metadata /var/lib/crane/metadata \
        2.0=oci:/tmp/layout:2.0
)";

int usage_error(const std::string& message) {
    std::cerr << "crane-publish: " << message << "\n"
              << "Try 'crane-publish --help'.\n";
    return 2;
}

bool add_tag(crane::publish::Options& options, const std::string& arg) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    options.tags.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    enum { kRepoId = 1000, kRepository, kBaseUrl, kOut, kMetadata, kProtected, kTag };
    static const option long_options[] = {
        {"repo-id", required_argument, nullptr, kRepoId},
        {"repository", required_argument, nullptr, kRepository},
        {"base-url", required_argument, nullptr, kBaseUrl},
        {"out", required_argument, nullptr, kOut},
        {"metadata", required_argument, nullptr, kMetadata},
        {"protected", no_argument, nullptr, kProtected},
        {"tag", required_argument, nullptr, kTag},
        {"quiet", no_argument, nullptr, 'q'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    crane::publish::Options options;
    bool quiet = false;
    opterr = 0;
    for (;;) {
        int index = 0;
        int c = getopt_long(argc, argv, ":qh", long_options, &index);
        if (c == -1) break;
        switch (c) {
            case kRepoId:
                options.repo_id = optarg;
                break;
            case kRepository:
                options.repository = optarg;
                break;
            case kBaseUrl:
                options.base_url = optarg;
                break;
            case kOut:
                options.web_dir = optarg;
                break;
            case kMetadata:
                options.metadata_dir = optarg;
                break;
            case kProtected:
                options.is_protected = true;
                break;
            case kTag:
                if (!add_tag(options, optarg)) {
                    return usage_error(std::string("--tag wants TAG=SOURCE, not '") + optarg + "'");
                }
                break;
            case 'q':
                quiet = true;
                break;
            case 'h':
                std::cout << kUsage;
                return 0;
            case ':':
                return usage_error(std::string("option ") + argv[optind - 1] + " needs a value");
            default:
                return usage_error(std::string("unknown option ") + argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; ++i) {
        if (!add_tag(options, argv[i])) {
            return usage_error(std::string("expected TAG=SOURCE, not '") + argv[i] + "'");
        }
    }
    if (argc == 1) {
        std::cerr << kUsage;
        return 2;
    }
    try {
        crane::publish::Options checked = crane::publish::normalized(options);
        (void)checked;
    } catch (const crane::publish::Error& e) {
        return usage_error(e.what());
    }
    try {
        crane::publish::Result r = crane::publish::publish(options);
        if (!quiet) {
            std::cout << "crane-publish: published " << options.repo_id << ": " << r.tags
                      << (r.tags == 1 ? " tag, " : " tags, ") << r.manifests << " manifest files, "
                      << r.blobs << (r.blobs == 1 ? " blob (" : " blobs (") << r.blob_bytes
                      << " bytes)"
                      << (r.referrers == 0 ? std::string()
                                           : ", " + std::to_string(r.referrers) +
                                                 (r.referrers == 1 ? " referrer" : " referrers"))
                      << (r.replaced ? ", replacing the earlier publication" : "") << "\n"
                      << "  web:      " << r.repo_dir << "/\n"
                      << "  metadata: " << r.metadata_file << "\n";
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "crane-publish: error: " << e.what() << "\n";
        return 1;
    }
}
