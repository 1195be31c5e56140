"""Serve-content mode (SPEC section 7) against a real httpd with mod_crane:
files from content_dir_v1 / content_dir_v2 go out byte for byte through
httpd's own file machinery (Range, ETag/Last-Modified, conditional GET),
with the negotiated media type, Docker-Content-Digest on manifests,
Cache-Control per addressing mode, 404s for missing files, no way out of
the content dirs, symlinks placed by the publisher followed, and Apache's
basic auth and mod_ssl entitlements in front.

Each class builds its content tree inside its httpd's temp dir (world
readable: the httpd children run as www-data when the tests run as root)
from deterministic pseudo-random bytes, before httpd starts.
"""

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (
    HttpdTestCase, ACCEPT_BOTH, ACCEPT_LIST, ACCEPT_S2, API_VERSION, JSON, LIST, OCTET, S1, S2,
    V1_HEADERS, V2_BLOB_UNKNOWN, V2_DIGEST_INVALID, V2_MANIFEST_UNKNOWN, V2_NAME_UNKNOWN)

POLL = 7  # data_dir_polling_interval of the INI-configured classes
IMMUTABLE = "public, max-age=31536000, immutable"
TAG_CACHE = "public, max-age=%d" % POLL

# zoo_v4.json: latest -> [DIGEST_LATEST, 2], multi -> [DIGEST_MULTI, 1]
DIGEST_LATEST = "sha256:aaaa000000000000000000000000000000000000000000000000000000000002"
DIGEST_MULTI = "sha256:bbbb000000000000000000000000000000000000000000000000000000000001"

# every content file gets this mtime, so Last-Modified is known and ETags are strong
MTIME = 1577836800  # 2020-01-01 00:00:00 UTC
LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"

SECRET = b"TOP-SECRET-do-not-serve-me\n"

# blob names (well-formed digests) of the odd files in the content tree
PUBLISHED_LINK = "sha256:" + "5e" * 32  # a publisher's symlink to ROOT/secret.txt
DANGLING = "sha256:" + "da" * 32  # a symlink to nothing
UNREADABLE = "sha256:" + "00" * 32  # mode 000
MIB = 1 << 20


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rand_bytes(seed, n):
    return random.Random(seed).randbytes(n)


def fake_manifest(seed, media_type):
    """Some JSON-looking bytes unique to seed (the module never parses them)."""
    return ('{"schemaVersion": 2, "mediaType": "%s", "seed": "%s", "pad": "%s"}\n' % (
        media_type, seed, rand_bytes(seed, 48).hex())).encode()


def without_date(reply):
    return [(n.lower(), v) for (n, v) in reply.headers if n.lower() not in ("date", "content-length")]


def write(path, data, mode=0o644, mtime=MTIME):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def open_up(top):
    """World-readable dirs (files are written 0644 already)."""
    os.chmod(top, 0o755)
    for root, dirs, _files in os.walk(top):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


class Content:
    """The test content tree under ROOT: ROOT/v1, ROOT/v2 (the content dirs),
    ROOT/secret.txt and ROOT/../secret.txt (what no request may read), and
    ROOT/outside (targets of symlinks placed inside the content dirs)."""

    def __init__(self, root):
        self.root = root
        f = self.files = {}

        self.blob = rand_bytes("blob", MIB)
        self.blob_digest = sha256(self.blob)
        f["v2/zoo-pulp/blobs/" + self.blob_digest] = self.blob
        self.small_blob = rand_bytes("small", 3000)
        self.small_digest = sha256(self.small_blob)
        f["v2/zoo-pulp/blobs/" + self.small_digest] = self.small_blob

        self.list_latest = fake_manifest("list-latest", LIST)
        self.list_multi = fake_manifest("list-multi", LIST)
        self.s2_amd64 = fake_manifest("s2-amd64-latest", S2)
        self.s1_amd64_multi = fake_manifest("s1-amd64-multi", "schema1")
        self.s1_latest = fake_manifest("s1-latest", "schema1")
        self.s2_20 = fake_manifest("s2-2.0", S2)
        self.s1_20 = fake_manifest("s1-2.0", "schema1")
        self.s1_by_digest = fake_manifest("s1-by-digest", "schema1")
        self.by_digest = "sha256:" + hashlib.sha256(b"some digest").hexdigest()
        self.zoo_tags = b'{"name": "zoo", "tags": ["2.0", "latest", "multi"]}\n'
        f["v2/zoo-pulp/manifests/list/latest"] = self.list_latest
        f["v2/zoo-pulp/manifests/list/multi"] = self.list_multi
        f["v2/zoo-pulp/manifests/2/" + DIGEST_LATEST] = self.s2_amd64
        f["v2/zoo-pulp/manifests/1/" + DIGEST_MULTI] = self.s1_amd64_multi
        f["v2/zoo-pulp/manifests/1/latest"] = self.s1_latest
        f["v2/zoo-pulp/manifests/2/2.0"] = self.s2_20
        f["v2/zoo-pulp/manifests/1/2.0"] = self.s1_20
        f["v2/zoo-pulp/manifests/1/" + self.by_digest] = self.s1_by_digest
        f["v2/zoo-pulp/tags/list"] = self.zoo_tags

        # version 2 repo: manifests/REF as is
        self.v2repo_latest = fake_manifest("v2repo-latest", "schema1")
        self.v2repo_tags = b'{"name": "v2repo", "tags": ["latest"]}\n'
        f["v2/v2repo-pulp/manifests/latest"] = self.v2repo_latest
        f["v2/v2repo-pulp/tags/list"] = self.v2repo_tags
        # version 3 repo with no schema2 data: manifests/1/REF; no `repository`
        # field, so the directory is the repo-registry-id
        self.v3old_latest = fake_manifest("v3old-latest", "schema1")
        f["v2/v3old/manifests/1/latest"] = self.v3old_latest
        # repository defaulting to a repo-registry-id with a slash
        self.ns_app_tags = b'{"name": "ns/app", "tags": []}\n'
        f["v2/ns/app/tags/list"] = self.ns_app_tags
        # protected v4 repo private/secret (no `repository`): schema2 tag latest
        self.private_manifest = fake_manifest("private-latest", S2)
        self.private_blob = rand_bytes("private-blob", 5000)
        self.private_blob_digest = sha256(self.private_blob)
        f["v2/private/secret/manifests/2/latest"] = self.private_manifest
        f["v2/private/secret/blobs/" + self.private_blob_digest] = self.private_blob

        # v1: content_dir_v1/REPOSITORY/IMAGE/FILE
        self.v1_layer = rand_bytes("v1-layer-d4e5f6", 256 * 1024)
        self.v1_json = b'{"id": "d4e5f6", "parent": "a1b2c3", "Size": 262144}\n'
        self.v1_ancestry = b'["d4e5f6", "a1b2c3"]\n'
        f["v1/busybox-pulp/d4e5f6/layer"] = self.v1_layer
        f["v1/busybox-pulp/d4e5f6/json"] = self.v1_json
        f["v1/busybox-pulp/d4e5f6/ancestry"] = self.v1_ancestry
        self.rhel_layer = rand_bytes("v1-layer-ffff01", 70000)
        f["v1/redhat/rhel/ffff01/layer"] = self.rhel_layer  # repository defaults to the id
        self.secret_v1_layer = rand_bytes("v1-layer-5ec7e7", 4000)
        f["v1/secret/5ec7e7/layer"] = self.secret_v1_layer  # protected v1 repo

        # files with names the module must refuse even though they exist
        f["v2/zoo-pulp/blobs/%41"] = b"percent file"
        f["v2/zoo-pulp/blobs/a\\b"] = b"backslash file"
        f["v2/zoo-pulp/blobs/a\x01b"] = b"control char file"

        # what traversal attempts aim at
        f["secret.txt"] = SECRET
        f["../secret.txt"] = SECRET

        # symlink targets outside the content dirs
        self.linked_blob = rand_bytes("linked-blob", 10000)
        self.linked_digest = sha256(self.linked_blob)
        self.linked_manifest = fake_manifest("linked-v2repo", "schema1")
        self.v1_linked_layer = rand_bytes("v1-linked", 9000)
        f["outside/blob.bin"] = self.linked_blob
        f["outside/v2repo-manifest"] = self.linked_manifest
        f["outside/v1-layer"] = self.v1_linked_layer

        self.mutable_a = fake_manifest("mutable-a", "schema1")
        self.mutable_b = fake_manifest("mutable-b", "schema1")
        self.mutable_c = fake_manifest("mutable-c-is-longer", "schema1")
        assert len(self.mutable_a) == len(self.mutable_b)

    def path(self, rel):
        return os.path.normpath(os.path.join(self.root, rel))

    def build(self):
        for rel, data in self.files.items():
            write(self.path(rel), data)
        # a symlink to a file outside, a symlinked directory, a v1 symlink
        os.symlink(self.path("outside/blob.bin"), self.path("v2/zoo-pulp/blobs/" + self.linked_digest))
        os.symlink(self.path("outside/v2repo-manifest"), self.path("v2/v2repo-pulp/manifests/linked"))
        os.makedirs(self.path("outside/v3repo"))
        os.symlink(self.path("outside/v3repo"), self.path("v2/v3repo"))
        write(self.path("v2/v3repo/manifests/2/latest"), self.linked_manifest)
        os.makedirs(self.path("v1/busybox-pulp/a1b2c3"))
        os.symlink(self.path("outside/v1-layer"), self.path("v1/busybox-pulp/a1b2c3/layer"))
        # a symlink inside that points at the secret, to tell "followed" from "refused"
        # (a publisher-placed link is trusted, so this one IS served)
        os.symlink(self.path("secret.txt"), self.path("v2/zoo-pulp/blobs/" + PUBLISHED_LINK))
        # a directory where a file is expected, and a dangling symlink
        os.makedirs(self.path("v2/zoo-pulp/blobs/sha256:" + "d" * 64))
        os.symlink(self.path("outside/nothing-here"), self.path("v2/zoo-pulp/blobs/" + DANGLING))
        # a file httpd's children cannot read
        write(self.path("v2/zoo-pulp/blobs/" + UNREADABLE), b"nope", mode=0o000)
        # the manifest test_digest_follows_file_changes rewrites
        write(self.path("v2/v2repo-pulp/manifests/mutable"), self.mutable_a)
        open_up(self.root)


def make_content_tree(httpd):
    content = Content(os.path.join(httpd.dir, "content"))
    os.makedirs(content.root)
    content.build()
    return content


INI = """
[general]
data_dir: {data}
data_dir_polling_interval: %d

[serve_content]
enable: true
content_dir_v1: {dir}/content/v1
content_dir_v2: {dir}/content/v2/
use_x_sendfile: true
""" % POLL


class ServeContentCase(HttpdTestCase):
    """Starts the class's httpd after its content tree is built."""

    @classmethod
    def before_start(cls):
        cls.content = make_content_tree(cls.httpd)
        cls.prepare()

    @classmethod
    def prepare(cls):
        pass

    def assertNotFound(self, reply, body=V2_NAME_UNKNOWN):
        self.assertReply(reply, 404, body=body, headers=dict(API_VERSION, **{"Content-Type": JSON}),
                         absent=("Cache-Control", "Docker-Content-Digest", "ETag", "Last-Modified"))

    def assertServed(self, path, data, content_type, cache_control, headers=(), digest=False, extra_headers=None,
                     extra=()):
        """GET and HEAD path: 200, exact bytes and headers; HEAD = GET without body."""
        expected = {"Content-Type": content_type, "Content-Length": str(len(data)), "Last-Modified": LAST_MODIFIED}
        if cache_control is not None:  # None: checked by another test
            expected["Cache-Control"] = cache_control
        if path.startswith("/v2/"):
            expected.update(API_VERSION)
        else:
            expected.update(V1_HEADERS)
        if digest:
            expected["Docker-Content-Digest"] = sha256(data)
        expected.update(extra_headers or {})
        get = self.get(path, headers=list(headers), extra=extra)
        self.assertReply(get, 200, body=data, headers=expected, absent=("X-Sendfile", "Location"))
        self.assertIsNotNone(get.header("ETag"), get)
        head = self.get(path, method="HEAD", headers=list(headers), extra=extra)
        self.assertReply(head, 200, body=b"", headers=expected, absent=("X-Sendfile", "Location"))
        self.assertEqual(without_date(head), without_date(get))
        return get


class ServeContentTest(ServeContentCase):
    """INI-configured ([serve_content] enable: true, use_x_sendfile: true)."""

    crane_ini = INI
    extra_modules = ()
    expect_log = (
        # httpd itself refuses a path that climbs above the root
        r"AH10244: invalid URI path",
        # the unreadable file (test_unreadable_file_is_not_found)
        r"\[crane:error\].*CRANE0011: .*/blobs/" + UNREADABLE,  # cannot be opened
        # past PATH_MAX (test_path_longer_than_path_max_never_reaches_a_file)
        r"\[core:error\].*File name too long.*AH00127: Cannot map GET /v2/zoo/blobs/s{5000} ",
    )

    # ---- blobs ----

    def test_blob_is_served_byte_for_byte(self):
        c = self.content
        reply = self.assertServed("/v2/zoo/blobs/" + c.blob_digest, c.blob, OCTET, IMMUTABLE)
        self.assertEqual(len(reply.body), MIB)
        self.assertEqual(reply.header("Accept-Ranges"), "bytes")
        self.assertServed("/v2/zoo/blobs/" + c.small_digest, c.small_blob, OCTET, IMMUTABLE)

    def test_blob_served_with_any_accept_header(self):
        c = self.content
        for accept in (ACCEPT_BOTH, "Accept: text/html", "Accept: */*"):
            with self.subTest(accept=accept):
                self.assertServed("/v2/zoo/blobs/" + c.small_digest, c.small_blob, OCTET, IMMUTABLE,
                                  headers=[accept])

    def test_blob_etag_is_strong_for_old_files(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.blob_digest)
        etag = reply.header("ETag")
        self.assertTrue(etag.startswith('"') and etag.endswith('"'), etag)

    # ---- manifests: each negotiated variant ----

    def test_manifest_list_when_client_accepts_lists(self):
        c = self.content
        for accept in (ACCEPT_LIST, ACCEPT_BOTH):
            with self.subTest(accept=accept):
                self.assertServed("/v2/zoo/manifests/latest", c.list_latest, LIST, TAG_CACHE,
                                  headers=[accept], digest=True)
        self.assertServed("/v2/zoo/manifests/multi", c.list_multi, LIST, TAG_CACHE,
                          headers=[ACCEPT_LIST], digest=True)

    def test_schema2_by_amd64_digest(self):
        # latest is in manifest_list_amd64_tags as [DIGEST_LATEST, 2]
        # (Cache-Control: test_tag_request_answered_from_digest_file_is_not_immutable)
        c = self.content
        self.assertServed("/v2/zoo/manifests/latest", c.s2_amd64, S2, None, headers=[ACCEPT_S2], digest=True)

    def test_schema1_by_amd64_digest(self):
        # multi is [DIGEST_MULTI, 1]: schema 1, served as application/json
        c = self.content
        for headers in ([ACCEPT_S2], []):
            with self.subTest(headers=headers):
                self.assertServed("/v2/zoo/manifests/multi", c.s1_amd64_multi, JSON, None,
                                  headers=headers, digest=True)

    def test_tag_request_answered_from_digest_file_is_not_immutable(self):
        for tag, headers in (("latest", [ACCEPT_S2]), ("multi", [ACCEPT_S2]), ("multi", [])):
            with self.subTest(tag=tag, headers=headers):
                reply = self.get("/v2/zoo/manifests/" + tag, headers=headers)
                self.assertReply(reply, 200, headers={"Cache-Control": TAG_CACHE})

    def test_negotiated_manifest_varies_on_accept(self):
        reply = self.get("/v2/zoo/manifests/latest", headers=[ACCEPT_LIST])
        self.assertReply(reply, 200, body=self.content.list_latest)
        vary = [v.strip().lower() for v in ",".join(reply.header_all("Vary")).split(",")]
        self.assertIn("accept", vary, reply)

    def test_schema1_by_tag_without_accept(self):
        c = self.content
        self.assertServed("/v2/zoo/manifests/latest", c.s1_latest, JSON, TAG_CACHE, digest=True)
        self.assertServed("/v2/zoo/manifests/2.0", c.s1_20, JSON, TAG_CACHE, digest=True)

    def test_schema2_by_tag(self):
        c = self.content
        self.assertServed("/v2/zoo/manifests/2.0", c.s2_20, S2, TAG_CACHE, headers=[ACCEPT_S2], digest=True)
        # the linked v3 repo (its directory is a symlink placed by the publisher)
        self.assertServed("/v2/v3repo/manifests/latest", c.linked_manifest, S2, TAG_CACHE,
                          headers=[ACCEPT_BOTH], digest=True)

    def test_manifest_by_digest_is_immutable(self):
        c = self.content
        self.assertServed("/v2/zoo/manifests/" + c.by_digest, c.s1_by_digest, JSON, IMMUTABLE, digest=True)

    def test_version2_repo_manifest_path_is_not_negotiated(self):
        c = self.content
        for headers in ([], [ACCEPT_BOTH]):
            with self.subTest(headers=headers):
                self.assertServed("/v2/v2repo/manifests/latest", c.v2repo_latest, JSON, TAG_CACHE,
                                  headers=headers, digest=True)

    def test_version3_repo_without_schema2_serves_schema1(self):
        self.assertServed("/v2/v3old/manifests/latest", self.content.v3old_latest, JSON, TAG_CACHE,
                          headers=[ACCEPT_BOTH], digest=True)

    def test_head_manifest_has_digest_and_length(self):
        c = self.content
        reply = self.get("/v2/zoo/manifests/latest", method="HEAD", headers=[ACCEPT_LIST])
        self.assertReply(reply, 200, body=b"", headers={
            "Content-Length": str(len(c.list_latest)), "Docker-Content-Digest": sha256(c.list_latest),
            "Content-Type": LIST})

    def test_digest_follows_file_changes(self):
        # the digest is cached per file version: an in-place rewrite of the
        # same size with the old mtime put back, a replacement by rename and
        # a repointed symlink must all show the new bytes' digest
        c = self.content
        path = "/v2/v2repo/manifests/mutable"
        target = c.path("v2/v2repo-pulp/manifests/mutable")
        time.sleep(1.2)  # past the digest cache's racy window: the first answers are cached

        def check(data):
            for _ in range(12):  # several requests, to reach every child
                reply = self.get(path)
                self.assertReply(reply, 200, body=data, headers={"Docker-Content-Digest": sha256(data)})
                head = self.get(path, method="HEAD")
                self.assertReply(head, 200, body=b"", headers={"Docker-Content-Digest": sha256(data),
                                                               "Content-Length": str(len(data))})

        check(c.mutable_a)
        with open(target, "r+b") as f:  # same inode, same size, same mtime
            f.write(c.mutable_b)
        os.utime(target, (MTIME, MTIME))
        check(c.mutable_b)
        tmp = target + ".tmp"
        write(tmp, c.mutable_c)
        os.rename(tmp, target)
        check(c.mutable_c)
        time.sleep(1.2)
        os.unlink(target)
        os.symlink(c.path("outside/v2repo-manifest"), target)
        check(c.linked_manifest)

    # ---- tags/list ----

    def test_tags_list(self):
        c = self.content
        self.assertServed("/v2/zoo/tags/list", c.zoo_tags, JSON, TAG_CACHE)
        self.assertServed("/v2/v2repo/tags/list", c.v2repo_tags, JSON, TAG_CACHE)

    def test_repository_defaults_to_repo_registry_id(self):
        # ns/app has no `repository` field
        self.assertServed("/v2/ns/app/tags/list", self.content.ns_app_tags, JSON, TAG_CACHE)

    # ---- v1 ----

    def test_v1_image_files(self):
        c = self.content
        for name, data, media_type in (("layer", c.v1_layer, OCTET), ("json", c.v1_json, JSON),
                                       ("ancestry", c.v1_ancestry, JSON)):
            with self.subTest(file=name):
                self.assertServed("/v1/images/d4e5f6/" + name, data, media_type, IMMUTABLE)

    def test_v1_repository_defaults_to_repo_registry_id(self):
        self.assertServed("/v1/images/ffff01/layer", self.content.rhel_layer, OCTET, IMMUTABLE)

    def test_v1_symlink_to_outside_is_followed(self):
        # a1b2c3 is held by busybox (first), redhat/rhel and the protected secret
        reply = self.get("/v1/images/a1b2c3/layer")
        self.assertReply(reply, 200, body=self.content.v1_linked_layer, headers=dict(V1_HEADERS, **{
            "Content-Type": OCTET, "Cache-Control": IMMUTABLE}))

    def test_v1_missing_file_is_plain_not_found(self):
        for path in ("/v1/images/d4e5f6/nope", "/v1/images/ffff01/json", "/v1/images/ffff01/ancestry"):
            for method in (None, "HEAD"):
                with self.subTest(path=path, method=method):
                    reply = self.get(path, method=method)
                    self.assertReply(reply, 404, body=b"" if method else b"Not Found", headers=V1_HEADERS,
                                     absent=("Cache-Control", "ETag", "Last-Modified"))

    def test_v1_protected_image_without_certificate_is_not_found(self):
        reply = self.get("/v1/images/5ec7e7/layer")
        self.assertReply(reply, 404, body=b"Not Found", headers=V1_HEADERS)

    # ---- Range ----

    def test_range_first_bytes(self):
        c = self.content
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=0-99"])
        self.assertReply(reply, 206, body=c.blob[:100], headers=dict(API_VERSION, **{
            "Content-Range": "bytes 0-99/%d" % MIB, "Content-Length": "100", "Content-Type": OCTET,
            "Cache-Control": IMMUTABLE}))

    def test_range_suffix(self):
        c = self.content
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=-10"])
        self.assertReply(reply, 206, body=c.blob[-10:], headers={
            "Content-Range": "bytes %d-%d/%d" % (MIB - 10, MIB - 1, MIB), "Content-Length": "10"})

    def test_range_middle_and_open_ended(self):
        c = self.content
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=500000-500009"])
        self.assertReply(reply, 206, body=c.blob[500000:500010],
                         headers={"Content-Range": "bytes 500000-500009/%d" % MIB})
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=%d-" % (MIB - 5)])
        self.assertReply(reply, 206, body=c.blob[-5:],
                         headers={"Content-Range": "bytes %d-%d/%d" % (MIB - 5, MIB - 1, MIB)})

    def test_range_on_manifest_keeps_digest_of_whole_file(self):
        c = self.content
        reply = self.get("/v2/zoo/manifests/latest", headers=[ACCEPT_LIST, "Range: bytes=0-9"])
        self.assertReply(reply, 206, body=c.list_latest[:10], headers={
            "Docker-Content-Digest": sha256(c.list_latest), "Content-Type": LIST,
            "Content-Range": "bytes 0-9/%d" % len(c.list_latest)})

    def test_unsatisfiable_range(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.small_digest, headers=["Range: bytes=5000-6000"])
        # httpd's byterange filter answers; its 416 has no Content-Range
        # (the same for static files)
        self.assertEqual(reply.status, 416, reply)
        self.assertNotIn(self.content.small_blob[:100], reply.body)

    def test_if_range(self):
        c = self.content
        path = "/v2/zoo/blobs/" + c.blob_digest
        etag = self.get(path, method="HEAD").header("ETag")
        reply = self.get(path, headers=["Range: bytes=0-99", "If-Range: " + etag])
        self.assertReply(reply, 206, body=c.blob[:100])
        reply = self.get(path, headers=["Range: bytes=0-99", 'If-Range: "other"'])
        self.assertReply(reply, 200, body=c.blob)

    # ---- conditional GET ----

    def test_if_none_match_with_etag_is_not_modified(self):
        c = self.content
        for path, headers in (("/v2/zoo/blobs/" + c.blob_digest, []),
                              ("/v2/zoo/manifests/latest", [ACCEPT_LIST]),
                              ("/v1/images/d4e5f6/layer", [])):
            with self.subTest(path=path):
                etag = self.get(path, headers=headers).header("ETag")
                self.assertIsNotNone(etag)
                reply = self.get(path, headers=headers + ["If-None-Match: " + etag])
                self.assertReply(reply, 304, body=b"", headers={"ETag": etag})
                if path.startswith("/v2/"):
                    self.assertReply(reply, 304, headers=API_VERSION)
                reply = self.get(path, headers=headers + ['If-None-Match: "something-else"'])
                self.assertEqual(reply.status, 200)

    def test_if_modified_since(self):
        c = self.content
        path = "/v2/zoo/blobs/" + c.small_digest
        reply = self.get(path, headers=["If-Modified-Since: " + LAST_MODIFIED])
        self.assertReply(reply, 304, body=b"")
        reply = self.get(path, headers=["If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"])
        self.assertReply(reply, 200, body=c.small_blob)

    def test_if_match_mismatch_is_precondition_failed(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.small_digest, headers=['If-Match: "nope"'])
        self.assertEqual(reply.status, 412, reply)
        self.assertNotIn(self.content.small_blob, reply.body)

    def test_precondition_failed_has_api_version_header(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.small_digest, headers=['If-Match: "nope"'])
        self.assertReply(reply, 412, headers=API_VERSION)

    # ---- missing files ----

    def test_missing_file_is_v2_not_found(self):
        for path, headers, body in (("/v2/zoo/blobs/sha256:" + "e" * 64, [], V2_BLOB_UNKNOWN),
                                    ("/v2/zoo/manifests/nosuchtag", [ACCEPT_BOTH], V2_MANIFEST_UNKNOWN),
                                    ("/v2/v2repo/manifests/nosuchtag", [], V2_MANIFEST_UNKNOWN),
                                    ("/v2/v3old/tags/list", [], V2_NAME_UNKNOWN),  # repo known, file missing
                                    ("/v2/zoo/blobs/" + DANGLING, [], V2_BLOB_UNKNOWN),
                                    ("/v2/zoo/blobs/sha256:" + "d" * 64, [], V2_BLOB_UNKNOWN)):  # a directory
            for method in (None, "HEAD"):
                with self.subTest(path=path, method=method):
                    reply = self.get(path, method=method, headers=headers)
                    if method == "HEAD":
                        self.assertReply(reply, 404, body=b"", headers=dict(API_VERSION, **{"Content-Type": JSON}),
                                         absent=("Cache-Control", "Docker-Content-Digest"))
                    else:
                        self.assertNotFound(reply, body)

    def test_blob_name_that_is_no_digest_is_bad_request(self):
        for path in ("/v2/zoo/blobs/a/b/c", "/v2/zoo/blobs/dangling", "/v2/zoo/blobs/sha256:abc"):
            with self.subTest(path=path):
                self.assertReply(self.get(path), 400, body=V2_DIGEST_INVALID,
                                 headers=dict(API_VERSION, **{"Content-Type": JSON}),
                                 absent=("Cache-Control", "Docker-Content-Digest", "Last-Modified"))

    def test_unknown_repo_is_v2_not_found(self):
        self.assertNotFound(self.get("/v2/nope/blobs/" + self.content.blob_digest))
        # protected repo without a certificate answers like an unknown one
        self.assertNotFound(self.get("/v2/private/secret/manifests/latest", headers=[ACCEPT_S2]))
        self.assertNotFound(self.get("/v2/private/secret/blobs/" + self.content.private_blob_digest))

    def test_unreadable_file_is_not_found(self):
        # mode 000: not even its owner may read it (httpd never runs as root)
        self.assertNotFound(self.get("/v2/zoo/blobs/" + UNREADABLE), V2_BLOB_UNKNOWN)

    # ---- no way out of the content dirs ----

    TRAVERSALS = (
        "/v2/zoo/blobs/../../../../etc/passwd",
        "/v2/zoo/blobs/../../../secret.txt",
        "/v2/zoo/blobs/../../../../secret.txt",
        "/v2/zoo/blobs/%2e%2e/%2e%2e/x",
        "/v2/zoo/blobs/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/v2/zoo/blobs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/v2/zoo/blobs/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "/v2/zoo/blobs/.%2e/.%2e/.%2e/secret.txt",
        "/v2/zoo/blobs/..%2f..%2fx",
        "/v2/zoo/blobs/..%2f..%2f..%2fsecret.txt",
        "/v2/zoo/blobs/..%2F..%2F..%2F..%2Fsecret.txt",
        "/v2/zoo/blobs/..\\..\\..\\secret.txt",
        "/v2/zoo/blobs/..\\..\\..\\..\\secret.txt",
        "/v2/zoo/blobs/%5c..%5c..%5c..%5csecret.txt",
        "/v2/zoo/blobs/..%5c..%5c..%5csecret.txt",
        "/v2/zoo/blobs/%00",
        "/v2/zoo/blobs/x%00y",
        "/v2/zoo/blobs/%00/../../../secret.txt",
        "/v2/zoo/blobs/secret.txt%00",
        "/v2/zoo/blobs/%252e%252e/%252e%252e/%252e%252e/secret.txt",
        "/v2/zoo/blobs/%252e%252e%252f%252e%252e%252fsecret.txt",
        "/v2/zoo/blobs//etc/passwd",
        "/v2/zoo/blobs//../../secret.txt",
        "/v2/zoo/tags/../../../../secret.txt",
        "/v2/zoo/tags/..%2f..%2f..%2fsecret.txt",
        "/v2/zoo/manifests/..%2f..%2f..%2fsecret.txt",
        "/v2/zoo/manifests/%2e%2e",
        "/v2/zoo/blobs/..",
        "/v2/zoo/blobs/.",
        "/v2/zoo/blobs/%2e",
        "/v1/images/%2e%2e/json",
        "/v1/images/../../../secret.txt",
        "/v1/images/d4e5f6%2f..%2f..%2f..%2f/json",
        "/v1/images/d4e5f6/..%2f..%2f..%2fsecret.txt",
        "/v1/images/..%5c..%5c..%5csecret.txt/layer",
    )

    def test_traversal_attempts_never_leave_the_content_dir(self):
        with open("/etc/passwd", "rb") as f:
            passwd = f.read()
        for path in self.TRAVERSALS:
            for method in (None, "HEAD"):
                with self.subTest(path=path, method=method):
                    reply = self.get(path, method=method)
                    self.assertIn(reply.status, (400, 404), reply)
                    self.assertNotIn(SECRET.strip(), reply.body)
                    self.assertNotIn(b"root:", reply.body)
                    if passwd:
                        self.assertNotEqual(reply.body, passwd)
                    self.assertIsNone(reply.header("Docker-Content-Digest"), reply)
                    self.assertIsNone(reply.header("Last-Modified"), reply)

    def test_unsafe_names_are_refused_even_when_the_file_exists(self):
        # content/v2/zoo-pulp/blobs holds files literally named "%41", "a\b"
        # and "a<0x01>b"; no such name is a digest, so they are refused as one
        for path in ("/v2/zoo/blobs/%2541", "/v2/zoo/blobs/a%5cb", "/v2/zoo/blobs/a\\b", "/v2/zoo/blobs/a%01b"):
            with self.subTest(path=path):
                self.assertReply(self.get(path), 400, body=V2_DIGEST_INVALID, absent=("Last-Modified",))

    def test_over_long_segment_is_not_found(self):
        for n in (256, 300, 1000, 3900):
            with self.subTest(n=n):
                self.assertReply(self.get("/v2/zoo/blobs/" + "s" * n), 400, body=V2_DIGEST_INVALID)
                self.assertNotFound(self.get("/v2/zoo/manifests/" + "s" * n), V2_MANIFEST_UNKNOWN)

    def test_path_longer_than_path_max_never_reaches_a_file(self):
        # Past PATH_MAX httpd's own map_to_storage (the DocumentRoot walk
        # that runs before any handler) fails with ENAMETOOLONG and answers
        # 403 itself; mod_crane never sees the request.
        reply = self.get("/v2/zoo/blobs/" + "s" * 5000)
        self.assertIn(reply.status, (403, 404), reply)
        self.assertIsNone(reply.header("Last-Modified"), reply)

    def test_symlink_inside_content_dir_is_followed(self):
        c = self.content
        # a file symlink to a file outside the content dir
        self.assertServed("/v2/zoo/blobs/" + c.linked_digest, c.linked_blob, OCTET, IMMUTABLE)
        self.assertServed("/v2/v2repo/manifests/linked", c.linked_manifest, JSON, TAG_CACHE, digest=True)
        # the publisher is trusted: a link it placed is served whatever it names
        reply = self.get("/v2/zoo/blobs/" + PUBLISHED_LINK)
        self.assertReply(reply, 200, body=SECRET, headers={"Content-Type": OCTET, "Cache-Control": IMMUTABLE})

    # ---- neither redirects nor helper headers ----

    def test_use_x_sendfile_has_no_effect(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.small_digest)
        self.assertReply(reply, 200, body=self.content.small_blob,
                         absent=("X-Sendfile", "X-Accel-Redirect", "Location"))

    def test_write_methods_still_refused(self):
        for method in ("PUT", "DELETE", "POST"):
            with self.subTest(method=method):
                reply = self.get("/v2/zoo/blobs/" + self.content.small_digest, method=method)
                self.assertEqual(reply.status, 405, reply)
                self.assertNotIn(self.content.small_blob, reply.body)


class ServeContentDirectivesTest(ServeContentCase):
    """Native directives instead of the INI file, with httpd's sendfile and
    without mmap, so the file bucket really goes out through sendfile(2);
    use_x_sendfile off (no effect either way)."""

    crane_ini = None
    conf = """
CraneServeContent on
CraneContentDirV1 {dir}/content/v1
CraneContentDirV2 {dir}/content/v2
CraneUseXSendfile off
EnableSendfile On
EnableMMAP Off
"""

    def test_blob_through_sendfile(self):
        c = self.content
        # the harness sets CranePollInterval 1
        self.assertServed("/v2/zoo/blobs/" + c.blob_digest, c.blob, OCTET, IMMUTABLE)

    def test_range_through_sendfile(self):
        c = self.content
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=-10"])
        self.assertReply(reply, 206, body=c.blob[-10:],
                         headers={"Content-Range": "bytes %d-%d/%d" % (MIB - 10, MIB - 1, MIB)})
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=0-99"])
        self.assertReply(reply, 206, body=c.blob[:100], headers={"Content-Range": "bytes 0-99/%d" % MIB})

    def test_manifest_tag_cache_uses_poll_interval(self):
        c = self.content
        self.assertServed("/v2/zoo/manifests/latest", c.list_latest, LIST, "public, max-age=1",
                          headers=[ACCEPT_LIST], digest=True)

    def test_v1_layer(self):
        self.assertServed("/v1/images/d4e5f6/layer", self.content.v1_layer, OCTET, IMMUTABLE)

    def test_parallel_downloads_are_identical(self):
        # 16 concurrent full downloads of the 1 MiB blob over separate connections
        c = self.content
        out = os.path.join(self.httpd.dir, "parallel")
        os.makedirs(out)
        url = self.httpd.url("/v2/zoo/blobs/" + c.blob_digest)
        procs = [subprocess.Popen(["curl", "-sS", "--max-time", "30", "-o", os.path.join(out, str(i)), url])
                 for i in range(16)]
        for p in procs:
            self.assertEqual(p.wait(), 0)
        for i in range(16):
            with open(os.path.join(out, str(i)), "rb") as f:
                self.assertEqual(f.read(), c.blob)


class ServeContentDisabledTest(ServeContentCase):
    """enable: false (the default): the same tree is ignored, redirects as usual."""

    crane_ini = INI.replace("enable: true", "enable: false")

    def test_redirects_instead_of_serving(self):
        reply = self.get("/v2/zoo/blobs/" + self.content.blob_digest)
        self.assertReply(reply, 302, body=b"", headers=dict(API_VERSION, Location=(
            "http://cdn.example.com/pulp/docker/v2/zoo/blobs/" + self.content.blob_digest)))


HTPASSWD_USER = "alice"
HTPASSWD_PASSWORD = "s3cret pass"


class ServeContentBasicAuthTest(ServeContentCase):
    """Apache's basic auth in front of /v2/, as in apache-conf/crane-serve.conf."""

    crane_ini = INI
    extra_modules = ("auth_basic", "authn_file", "authn_core", "authz_user")
    conf = """
<Location "/v2/">
    AuthType Basic
    AuthName "Crane registry"
    AuthBasicProvider file
    AuthUserFile {dir}/htpasswd
    Require valid-user
</Location>
<Location "/crane">
    Require local
</Location>
"""
    expect_log = (r"\[auth_basic:error\].*AH01617: user alice: authentication failure.*Password Mismatch",
                  r"\[auth_basic:error\].*AH01618: user mallory not found")

    @classmethod
    def prepare(cls):
        path = os.path.join(cls.httpd.dir, "htpasswd")
        subprocess.run(["htpasswd", "-cbB", "-C", "5", path, HTPASSWD_USER, HTPASSWD_PASSWORD], check=True,
                       capture_output=True)
        os.chmod(path, 0o644)

    AUTH = ("-u", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD))

    def test_without_credentials_is_unauthorized(self):
        c = self.content
        for path in ("/v2/", "/v2/zoo/blobs/" + c.blob_digest, "/v2/zoo/manifests/latest", "/v2/nope/tags/list"):
            with self.subTest(path=path):
                reply = self.get(path)
                self.assertEqual(reply.status, 401, reply)
                self.assertEqual(reply.header("WWW-Authenticate"), 'Basic realm="Crane registry"')
                self.assertNotIn(c.blob[:64], reply.body)
                self.assertIsNone(reply.header("Docker-Content-Digest"))

    def test_unauthorized_has_api_version_header(self):
        reply = self.get("/v2/")
        self.assertReply(reply, 401, headers=API_VERSION)

    def test_wrong_credentials_are_unauthorized(self):
        for user in ("alice:wrong", "mallory:s3cret pass"):
            with self.subTest(user=user):
                reply = self.get("/v2/zoo/blobs/" + self.content.blob_digest, extra=["-u", user])
                self.assertEqual(reply.status, 401, reply)
                self.assertIsNotNone(reply.header("WWW-Authenticate"))

    def test_with_credentials_is_served(self):
        c = self.content
        self.assertReply(self.get("/v2/", extra=self.AUTH), 200, body=b"{}", headers=API_VERSION)
        self.assertServed("/v2/zoo/blobs/" + c.blob_digest, c.blob, OCTET, IMMUTABLE, extra=self.AUTH)
        self.assertServed("/v2/zoo/manifests/latest", c.list_latest, LIST, TAG_CACHE, headers=[ACCEPT_LIST],
                          digest=True, extra=self.AUTH)
        reply = self.get("/v2/zoo/blobs/" + c.blob_digest, headers=["Range: bytes=0-99"], extra=self.AUTH)
        self.assertReply(reply, 206, body=c.blob[:100])

    def test_missing_file_with_credentials_is_v2_not_found(self):
        self.assertNotFound(self.get("/v2/zoo/blobs/sha256:" + "e" * 64, extra=self.AUTH), V2_BLOB_UNKNOWN)

    def test_v1_is_outside_the_protected_location(self):
        self.assertServed("/v1/images/d4e5f6/json", self.content.v1_json, JSON, IMMUTABLE)

    def test_admin_pages_answer_localhost(self):
        reply = self.get("/crane/repositories/v2", headers=["Accept: application/json"])
        self.assertEqual(reply.status, 200, reply)


# ---- protected repositories: Cache-Control private, entitlement by client certificate ----

ENTITLEMENT_EXT = """
[server]
basicConstraints = critical, CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:127.0.0.1, IP:127.0.0.1

[entitlement]
basicConstraints = critical, CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
1.3.6.1.4.1.2312.9.6 = ASN1:UTF8String:1.0
1.3.6.1.4.1.2312.9.4.1 = ASN1:UTF8String:Test Order
1.3.6.1.4.1.2312.9.2.1.1.6 = ASN1:UTF8String:/content/dist
"""


TLS_CONF = """
SSLEngine on
SSLCertificateFile {c}/server.pem
SSLCertificateKeyFile {c}/server.key
SSLCACertificateFile {c}/ca.pem
SSLVerifyClient optional
SSLVerifyDepth 2
SSLSessionCache shmcb:{c}/scache(51200)
"""


def make_certificates(d):
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)

    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(ENTITLEMENT_EXT)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=crane test CA")
    for name, cn, section in (("server", "127.0.0.1", "server"), ("client", "client", "entitlement")):
        ossl("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", name + ".pem", "-days", "2", "-extfile", "ext.cnf", "-extensions", section)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)


class ServeContentProtectedTest(ServeContentCase):
    """Protected repos over TLS with a Red Hat (v1) entitlement certificate
    for /content/dist: served with Cache-Control private."""

    crane_ini = INI
    certs = None

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="crane-it-certs-")
        os.chmod(cls.certs, 0o755)
        try:
            make_certificates(cls.certs)
        except BaseException:
            shutil.rmtree(cls.certs, ignore_errors=True)
            raise
        cls.tls = TLS_CONF.format(c=cls.certs)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.certs, ignore_errors=True)

    def cert(self):
        return ["-k", "--cert", os.path.join(self.certs, "client.pem"),
                "--key", os.path.join(self.certs, "client.key")]

    def test_protected_manifest_is_private(self):
        c = self.content
        self.assertServed("/v2/private/secret/manifests/latest", c.private_manifest, S2,
                          "private, max-age=%d" % POLL, headers=[ACCEPT_S2], digest=True, extra=self.cert())

    def test_protected_blob_is_private_immutable(self):
        c = self.content
        self.assertServed("/v2/private/secret/blobs/" + c.private_blob_digest, c.private_blob, OCTET,
                          "private, max-age=31536000, immutable", extra=self.cert())

    def test_protected_v1_image_is_private(self):
        self.assertServed("/v1/images/5ec7e7/layer", self.content.secret_v1_layer, OCTET,
                          "private, max-age=31536000, immutable", extra=self.cert())

    def test_protected_without_certificate_is_not_found(self):
        c = self.content
        self.assertNotFound(self.get("/v2/private/secret/blobs/" + c.private_blob_digest, extra=["-k"]))
        reply = self.get("/v1/images/5ec7e7/layer", extra=["-k"])
        self.assertReply(reply, 404, body=b"Not Found")

    def test_protected_missing_file_is_not_found(self):
        self.assertNotFound(self.get("/v2/private/secret/blobs/sha256:" + "e" * 64, extra=self.cert()),
                            V2_BLOB_UNKNOWN)

    def test_unprotected_repo_stays_public_with_a_certificate(self):
        c = self.content
        self.assertServed("/v2/zoo/blobs/" + c.small_digest, c.small_blob, OCTET, IMMUTABLE, extra=self.cert())


if __name__ == "__main__":
    unittest.main()
