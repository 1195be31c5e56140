"""OCI images through the v2 API against a real httpd with mod_crane, in
redirect and in serve mode: negotiation with the OCI types (tags by Accept,
digests by content), tags/list from the metadata's `tags` with n/last paging
and Link, referrers with artifactType filtering, the error codes, HEAD.
"""

import hashlib
import json
import os
import unittest

from harness import (
    HttpdTestCase, ACCEPT_BOTH, ACCEPT_OCI, ACCEPT_S2, API_VERSION, JSON, LIST, OCI_INDEX, OCI_MANIFEST, OCTET, S2,
    V2_BLOB_UNKNOWN, V2_DIGEST_INVALID, V2_MANIFEST_UNKNOWN, V2_NAME_UNKNOWN, V2_PAGINATION_INVALID, v2_error)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(seed, media_type):
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "seed": seed}).encode()


# the OCI repo "oci/app": an index (tag latest), a single manifest (tag
# single), a Docker list (tag docker), two artifacts referring to the single
# manifest, and tags v1..v3 that only the tag list knows
INDEX = manifest("index", OCI_INDEX)
SINGLE = manifest("single", OCI_MANIFEST)
DOCKER_LIST = manifest("docker-list", LIST)
DOCKER_AMD64 = manifest("docker-amd64", S2)
SIGNATURE = manifest("signature", OCI_MANIFEST)
SBOM = manifest("sbom", OCI_MANIFEST)
BLOB = b"layer bytes\n" * 100
D_INDEX, D_SINGLE, D_LIST, D_AMD64 = sha256(INDEX), sha256(SINGLE), sha256(DOCKER_LIST), sha256(DOCKER_AMD64)
D_SIG, D_SBOM, D_BLOB = sha256(SIGNATURE), sha256(SBOM), sha256(BLOB)
UNKNOWN = "sha256:" + "e" * 64
SIG_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SBOM_TYPE = "application/spdx+json"
TAGS = ["docker", "latest", "single", "v1", "v2", "v3"]

CDN = "http://cdn.example.com/oci/app/"
REFERRERS = {D_SINGLE: [
    {"mediaType": OCI_MANIFEST, "digest": D_SIG, "size": len(SIGNATURE), "artifactType": SIG_TYPE,
     "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}},
    {"mediaType": OCI_MANIFEST, "digest": D_SBOM, "size": len(SBOM), "artifactType": SBOM_TYPE},
]}


def metadata(repo_id, url, protected=False):
    return {"version": 4, "repo-registry-id": repo_id, "repository": "oci-app", "url": url, "protected": protected,
            "schema2_data": [D_AMD64], "manifest_list_data": ["docker", D_LIST],
            "manifest_list_amd64_tags": {"docker": [D_AMD64, 2]},
            "oci_index_data": ["latest", D_INDEX], "oci_manifest_data": ["single", D_SINGLE, D_SIG, D_SBOM],
            "tags": TAGS, "referrers": REFERRERS}


EXTRA = {"oci-app.json": metadata("oci/app", CDN),
         "oci-secret.json": metadata("oci/secret", "https://cdn.example.com/content/dist/oci/", protected=True)}

# what serve mode reads: content_dir_v2/oci-app/...
FILES = {
    "manifests/oci-index/latest": INDEX, "manifests/oci-index/" + D_INDEX: INDEX,
    "manifests/oci/single": SINGLE, "manifests/oci/" + D_SINGLE: SINGLE,
    "manifests/oci/" + D_SIG: SIGNATURE, "manifests/oci/" + D_SBOM: SBOM,
    "manifests/list/docker": DOCKER_LIST, "manifests/list/" + D_LIST: DOCKER_LIST,
    "manifests/2/" + D_AMD64: DOCKER_AMD64,
    "blobs/" + D_BLOB: BLOB,
}

INDEX_HEAD = '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ['
SIG_DESC = ('{"mediaType": "%s", "digest": "%s", "size": %d, "artifactType": "%s", '
            '"annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}'
            % (OCI_MANIFEST, D_SIG, len(SIGNATURE), SIG_TYPE))
SBOM_DESC = ('{"mediaType": "%s", "digest": "%s", "size": %d, "artifactType": "%s"}'
             % (OCI_MANIFEST, D_SBOM, len(SBOM), SBOM_TYPE))
OCI_INDEX_NOT_ACCEPTED = v2_error("MANIFEST_UNKNOWN", "OCI index found, but the Accept header does not allow it")
OCI_MANIFEST_NOT_ACCEPTED = v2_error("MANIFEST_UNKNOWN",
                                     "OCI manifest found, but the Accept header does not allow it")


def tags_body(tags):
    return ('{"name": "oci/app", "tags": [%s]}' % ", ".join('"%s"' % t for t in tags)).encode()


class Shared:
    """Answers that are the same in redirect and serve mode (mixed into both)."""

    def assertJsonReply(self, path, status, body, headers=(), method=None, content_type=JSON, **extra):
        reply = self.get(path, method=method, headers=list(headers))
        self.assertReply(reply, status, body=b"" if method == "HEAD" else body,
                         headers=dict(API_VERSION, **{"Content-Type": content_type}, **extra))
        if method == "HEAD":
            self.assertEqual(reply.header("Content-Length"), str(len(body)), reply)
        return reply

    # ---- tags/list ----

    def test_tags_list_from_metadata(self):
        for method in (None, "HEAD"):
            with self.subTest(method=method):
                reply = self.assertJsonReply("/v2/oci/app/tags/list", 200, tags_body(TAGS), method=method)
                self.assertIsNone(reply.header("Link"), reply)

    def test_tags_list_pages_with_link(self):
        cases = [("n=2", TAGS[:2], '</v2/oci/app/tags/list?n=2&last=latest>; rel="next"'),
                 ("n=2&last=latest", TAGS[2:4], '</v2/oci/app/tags/list?n=2&last=v1>; rel="next"'),
                 ("n=2&last=v1", TAGS[4:], None),
                 ("last=v1&n=2", TAGS[4:], None),
                 ("last=single", TAGS[3:], None),
                 ("n=6", TAGS, None),
                 ("n=100", TAGS, None),
                 ("n=0", [], None),
                 ("last=zzz", [], None)]
        for query, tags, link in cases:
            with self.subTest(query=query):
                reply = self.assertJsonReply("/v2/oci/app/tags/list?" + query, 200, tags_body(tags))
                self.assertEqual(reply.header("Link"), link, reply)

    def test_tags_list_following_link_sees_every_tag_once(self):
        path, seen = "/v2/oci/app/tags/list?n=4", []
        while path:
            reply = self.get(path)
            self.assertEqual(reply.status, 200, reply)
            seen += json.loads(reply.body)["tags"]
            link = reply.header("Link")
            path = link[1:link.index(">")] if link else None
        self.assertEqual(seen, TAGS)

    def test_tags_list_bad_n_is_bad_request(self):
        for n in ("x", "-1", "", "1.5"):
            with self.subTest(n=n):
                self.assertJsonReply("/v2/oci/app/tags/list?n=" + n, 400, V2_PAGINATION_INVALID)

    # ---- referrers ----

    def test_referrers_of_a_manifest(self):
        for method in (None, "HEAD"):
            with self.subTest(method=method):
                reply = self.assertJsonReply("/v2/oci/app/referrers/" + D_SINGLE, 200,
                                             (INDEX_HEAD + SIG_DESC + ", " + SBOM_DESC + "]}").encode(),
                                             method=method, content_type=OCI_INDEX)
                self.assertIsNone(reply.header("OCI-Filters-Applied"), reply)

    def test_referrers_filtered_by_artifact_type(self):
        cases = [(SBOM_TYPE, SBOM_DESC), (SIG_TYPE, SIG_DESC), ("application/x-none", "")]
        for artifact_type, manifests in cases:
            with self.subTest(artifact_type=artifact_type):
                self.assertJsonReply("/v2/oci/app/referrers/%s?artifactType=%s" % (
                    D_SINGLE, artifact_type.replace("+", "%2B")), 200, (INDEX_HEAD + manifests + "]}").encode(),
                    content_type=OCI_INDEX, **{"OCI-Filters-Applied": "artifactType"})

    def test_referrers_of_anything_else_is_an_empty_index(self):
        for digest in (D_INDEX, UNKNOWN, D_BLOB):
            with self.subTest(digest=digest):
                self.assertJsonReply("/v2/oci/app/referrers/" + digest, 200, (INDEX_HEAD + "]}").encode(),
                                     content_type=OCI_INDEX)
        # a repo without OCI metadata too
        self.assertJsonReply("/v2/zoo/referrers/" + D_SINGLE, 200, (INDEX_HEAD + "]}").encode(),
                             content_type=OCI_INDEX)

    # ---- errors ----

    def test_oci_only_tag_not_accepted(self):
        for path, accept, body in (("/v2/oci/app/manifests/latest", [ACCEPT_BOTH], OCI_INDEX_NOT_ACCEPTED),
                                   ("/v2/oci/app/manifests/latest", [], OCI_INDEX_NOT_ACCEPTED),
                                   ("/v2/oci/app/manifests/single", [ACCEPT_S2], OCI_MANIFEST_NOT_ACCEPTED),
                                   ("/v2/oci/app/manifests/single", ["Accept: " + OCI_INDEX],
                                    OCI_MANIFEST_NOT_ACCEPTED)):
            for method in (None, "HEAD"):
                with self.subTest(path=path, accept=accept, method=method):
                    self.assertJsonReply(path, 404, body, accept, method=method, Vary="Accept")

    def test_unknown_digest_is_an_unknown_manifest(self):
        self.assertJsonReply("/v2/oci/app/manifests/" + UNKNOWN, 404, V2_MANIFEST_UNKNOWN, [ACCEPT_OCI])

    def test_malformed_digests_are_bad_requests(self):
        for path in ("/v2/oci/app/manifests/sha256:abc", "/v2/oci/app/manifests/sha256:" + "E" * 64,
                     "/v2/oci/app/blobs/sha256:abc", "/v2/oci/app/blobs/latest",
                     "/v2/oci/app/referrers/sha256:abc", "/v2/oci/app/referrers/latest"):
            for method in (None, "HEAD"):
                with self.subTest(path=path, method=method):
                    self.assertJsonReply(path, 400, V2_DIGEST_INVALID, method=method)

    def test_protected_repo_is_unknown_everywhere(self):
        for rest in ("manifests/latest", "manifests/" + D_SINGLE, "tags/list", "tags/list?n=1",
                     "referrers/" + D_SINGLE, "referrers/sha256:abc", "blobs/" + D_BLOB):
            with self.subTest(rest=rest):
                secret = self.get("/v2/oci/secret/" + rest, headers=[ACCEPT_OCI])
                unknown = self.get("/v2/oci/nope/" + rest, headers=[ACCEPT_OCI])
                self.assertReply(secret, 404, body=V2_NAME_UNKNOWN, headers=dict(API_VERSION, **{"Content-Type": JSON}))
                self.assertEqual(secret.body, unknown.body)

    def test_writes_are_unsupported(self):
        for path in ("/v2/oci/app/tags/list", "/v2/oci/app/referrers/" + D_SINGLE,
                     "/v2/oci/app/manifests/latest"):
            with self.subTest(path=path):
                reply = self.get(path, method="PUT", data="{}")
                self.assertReply(reply, 405, headers=dict(API_VERSION, Allow="GET, HEAD"))


class OciRedirectTest(Shared, HttpdTestCase):
    extra_metadata = EXTRA

    def assertRedirect(self, path, location, accept=()):
        for method in (None, "HEAD"):
            reply = self.get(path, method=method, headers=list(accept))
            self.assertReply(reply, 302, body=b"", headers=dict(API_VERSION, Location=location))

    def test_tag_negotiation(self):
        cases = [("latest", [ACCEPT_OCI], "manifests/oci-index/latest"),
                 ("latest", ["Accept: %s, %s, %s" % (LIST, S2, OCI_INDEX)], "manifests/oci-index/latest"),
                 ("single", ["Accept: " + OCI_MANIFEST], "manifests/oci/single"),
                 ("single", [ACCEPT_OCI], "manifests/oci/single"),
                 # a Docker tag: Docker clients as Crane answered them, OCI clients get the Docker formats
                 ("docker", [ACCEPT_BOTH], "manifests/list/docker"),
                 ("docker", [ACCEPT_S2], "manifests/2/" + D_AMD64),
                 ("docker", [], "manifests/1/docker"),
                 ("docker", [ACCEPT_OCI], "manifests/list/docker"),
                 ("docker", ["Accept: " + OCI_MANIFEST], "manifests/2/" + D_AMD64),
                 # known only to the tag list
                 ("v1", [ACCEPT_OCI], "manifests/1/v1")]
        for ref, accept, path in cases:
            with self.subTest(ref=ref, accept=accept):
                self.assertRedirect("/v2/oci/app/manifests/" + ref, CDN + path, accept)

    def test_digest_by_content_whatever_the_accept(self):
        cases = [(D_INDEX, "manifests/oci-index/"), (D_SINGLE, "manifests/oci/"), (D_SIG, "manifests/oci/"),
                 (D_LIST, "manifests/list/"), (D_AMD64, "manifests/2/")]
        for digest, prefix in cases:
            for accept in ([], [ACCEPT_S2], [ACCEPT_BOTH], [ACCEPT_OCI]):
                with self.subTest(digest=digest, accept=accept):
                    self.assertRedirect("/v2/oci/app/manifests/" + digest, CDN + prefix + digest, accept)

    def test_blob_redirects(self):
        self.assertRedirect("/v2/oci/app/blobs/" + D_BLOB, CDN + "blobs/" + D_BLOB)


class OciServeTest(Shared, HttpdTestCase):
    extra_metadata = EXTRA
    crane_ini = """
[general]
data_dir: {data}
data_dir_polling_interval: 1

[serve_content]
enable: true
content_dir_v1: {dir}
content_dir_v2: {dir}/content
"""

    @classmethod
    def before_start(cls):
        for rel, data in FILES.items():
            path = os.path.join(cls.httpd.dir, "content", "oci-app", rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o644)
        for root, dirs, _files in os.walk(os.path.join(cls.httpd.dir, "content")):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)

    def assertServed(self, path, data, content_type, accept=(), digest=True):
        get = self.get(path, headers=list(accept))
        head = self.get(path, method="HEAD", headers=list(accept))
        want = dict(API_VERSION, **{"Content-Type": content_type, "Content-Length": str(len(data))})
        if digest:
            want["Docker-Content-Digest"] = sha256(data)
        self.assertReply(get, 200, body=data, headers=want)
        self.assertReply(head, 200, body=b"", headers=want)
        if not digest:
            self.assertIsNone(get.header("Docker-Content-Digest"), get)

    def test_tags_served_with_their_own_type_and_digest(self):
        cases = [("latest", [ACCEPT_OCI], INDEX, OCI_INDEX),
                 ("single", [ACCEPT_OCI], SINGLE, OCI_MANIFEST),
                 ("docker", [ACCEPT_BOTH], DOCKER_LIST, LIST),
                 ("docker", [ACCEPT_OCI], DOCKER_LIST, LIST),
                 ("docker", [ACCEPT_S2], DOCKER_AMD64, S2)]
        for ref, accept, data, content_type in cases:
            with self.subTest(ref=ref, accept=accept):
                self.assertServed("/v2/oci/app/manifests/" + ref, data, content_type, accept)

    def test_digests_served_whatever_the_accept(self):
        cases = [(D_INDEX, INDEX, OCI_INDEX), (D_SINGLE, SINGLE, OCI_MANIFEST), (D_SBOM, SBOM, OCI_MANIFEST),
                 (D_LIST, DOCKER_LIST, LIST), (D_AMD64, DOCKER_AMD64, S2)]
        for digest, data, content_type in cases:
            for accept in ([], [ACCEPT_S2], [ACCEPT_OCI]):
                with self.subTest(digest=digest, accept=accept):
                    self.assertServed("/v2/oci/app/manifests/" + digest, data, content_type, accept)

    def test_blob_served(self):
        self.assertServed("/v2/oci/app/blobs/" + D_BLOB, BLOB, OCTET, digest=False)

    def test_missing_files_answer_their_own_error(self):
        cases = [("/v2/oci/app/blobs/" + UNKNOWN, V2_BLOB_UNKNOWN),
                 ("/v2/oci/app/manifests/v1", V2_MANIFEST_UNKNOWN),  # tag list only: no file
                 ("/v2/oci/app/manifests/" + UNKNOWN, V2_MANIFEST_UNKNOWN)]
        for path, body in cases:
            for method in (None, "HEAD"):
                with self.subTest(path=path, method=method):
                    self.assertJsonReply(path, 404, body, [ACCEPT_OCI], method=method)


if __name__ == "__main__":
    unittest.main()
