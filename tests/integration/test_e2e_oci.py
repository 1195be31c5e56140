"""Real clients pull OCI images through mod_crane from what crane-publish
published, with every digest as it was in the source.

Each class builds, with image_builder (stdlib only, no network), an OCI
image, an OCI image index (amd64 + arm64/v8) and two artifacts with a
subject (an SBOM about the image, a signature about the index), writes them
into an OCI image layout (and the index also into skopeo's dir: layout),
publishes them with crane-publish and pulls with skopeo (inspect, copy by
tag and by digest, --all, into dir: and oci:), podman, and docker through
its own dockerd when one can run here (`docker.io` package; the test starts
it with its own directories and socket, and skips with the reason when it
cannot start). The referrers API lists the artifacts. Modes: redirects to
the static tree under /pub (configured like apache-conf/crane.conf), and
serve-content.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import image_builder
from harness import OCI_INDEX, OCI_MANIFEST, REPO, HttpdTestCase
from test_e2e_clients import (CLIENT_TIMEOUT, PODMAN, POLICY, SKOPEO, STATIC_CONF, eventually,
                              missing_tools, publish, sha256, stop_dockerd, DockerClient)

REPO_ID = "e2e/oci"
REPOSITORY = "e2e-oci"
SBOM_TYPE = "application/spdx+json"
SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"


class OciImages:
    """1.0     an OCI image manifest (from the OCI layout)
    multi   an OCI image index, amd64 + arm64/v8 (from the OCI layout)
    latest  the same index (from skopeo's dir: layout)
    and, untagged in the layout: an SBOM about 1.0 and a signature about
    the index."""

    def __init__(self, work):
        self.single = image_builder.Image("amd64", label="oci-1.0", oci=True)
        self.index = image_builder.multi_arch(label="oci-multi", oci=True)
        self.sbom = image_builder.Artifact(self.single, SBOM_TYPE, b'{"spdxVersion": "SPDX-2.3"}\n', SBOM_TYPE,
                                           {"org.example.kind": "sbom"})
        self.sig = image_builder.Artifact(self.index, SIG_TYPE, b"signature bytes\n",
                                          "application/vnd.dev.cosign.simplesigning.v1+json")
        self.layout = image_builder.write_oci_layout(
            os.path.join(work, "layout"),
            [(self.single, "1.0"), (self.index, "multi"), (self.sbom, None), (self.sig, None)])
        self.index_dir = image_builder.write_dir(self.index, os.path.join(work, "index-dir"))
        self.blobs = {}
        for thing in (self.single, self.index, self.sbom, self.sig):
            self.blobs.update(thing.blobs)

    def referrers_tags(self):
        """The referrers tag schema's tags crane-publish adds: one per
        subject (the image, the index), sha256-<hex of its digest>."""
        return {referrers_tag(self.single.digest): self.sbom, referrers_tag(self.index.digest): self.sig}

    def all_tags(self):
        """What tags/list answers."""
        return sorted(["1.0", "latest", "multi"] + list(self.referrers_tags()))

    def tags(self):
        return [("1.0", "oci:%s:1.0" % self.layout), ("multi", "oci:%s:multi" % self.layout),
                ("latest", self.index_dir)]


def referrers_tag(digest):
    """The referrers tag schema's tag of a subject (OCI distribution spec 1.1)."""
    return digest.replace(":", "-", 1)


class WithOciImages:
    """Mixed into a test_e2e_clients.E2ECase (Docker images as e2e/app):
    also publishes OciImages (cls.oci) as e2e/oci before httpd starts."""

    @classmethod
    def prepare(cls):
        super().prepare()
        cls.oci = OciImages(os.path.join(cls.work, "oci-src"))
        publish(REPO_ID, cls.base_url, cls.web, cls.httpd.data, cls.oci.tags(), protected=cls.protected)


class OciCase(HttpdTestCase):
    """Builds and publishes the images, then starts httpd; subclasses set
    serve_content."""

    data_src = None
    extra_modules = ("alias",)
    serve_content = False

    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            raise unittest.SkipTest("not installed: " + ", ".join(missing))
        cls.httpd = None
        cls.dockerd = None
        cls.work = tempfile.mkdtemp(prefix="crane-e2e-oci-")
        os.chmod(cls.work, 0o755)
        try:
            cls.policy = os.path.join(cls.work, "policy.json")
            with open(cls.policy, "w") as f:
                f.write(POLICY)
            cls.images = OciImages(cls.work)
            conf = STATIC_CONF
            if cls.serve_content:
                conf += "CraneServeContent On\nCraneContentDirV1 {dir}/web\nCraneContentDirV2 {dir}/web\n"
            cls.httpd = cls.make_httpd(conf=conf)
            cls.web = os.path.join(cls.httpd.dir, "web")
            cls.base_url = cls.httpd.url("/pub")
            publish(REPO_ID, cls.base_url, cls.web, cls.httpd.data, cls.images.tags())
            cls.httpd.launch()
        except BaseException:
            if cls.httpd:
                cls.httpd.cleanup()
            shutil.rmtree(cls.work, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_dockerd(cls)
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.work, ignore_errors=True)

    # ---- skopeo ----

    def host(self):
        return "127.0.0.1:%d" % self.httpd.port

    def ref(self, ref, repo=REPO_ID):
        return "docker://%s/%s%s%s" % (self.host(), repo, "@" if ref.startswith("sha256:") else ":", ref)

    def skopeo(self, *args, check=True, global_opts=()):
        cmd = [SKOPEO, "--policy", self.policy] + list(global_opts) + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def inspect_raw(self, ref):
        return self.skopeo("inspect", "--raw", "--tls-verify=false", self.ref(ref)).stdout.encode()

    def copy(self, ref, *extra, dest_kind="dir", global_opts=(), repo=REPO_ID):
        dest = tempfile.mkdtemp(prefix="copy-", dir=self.work)
        os.rmdir(dest)
        target = "dir:" + dest if dest_kind == "dir" else "oci:%s:copied" % dest
        self.skopeo("copy", "--src-tls-verify=false", *extra, self.ref(ref, repo), target, global_opts=global_opts)
        return dest

    def read(self, *path):
        with open(os.path.join(*path), "rb") as f:
            return f.read()

    def assertCopiedDir(self, dest, top, instances=()):
        """dest (skopeo's dir: layout) holds exactly `top`'s manifest bytes,
        the instances' manifests and every blob, each hashing to its name."""
        self.assertEqual(self.read(dest, "manifest.json"), top.manifest)
        images = list(instances) or [top]
        expected = {d[len("sha256:"):] for i in images for d in i.blobs}
        if instances:
            expected |= {i.digest[len("sha256:"):] + ".manifest.json" for i in instances}
        names = set(os.listdir(dest)) - {"manifest.json", "version"}
        self.assertEqual(names, expected)
        for name in names:
            data = self.read(dest, name)
            self.assertEqual(sha256(data), "sha256:" + name.replace(".manifest.json", ""), name)


class OciPullTests(DockerClient):
    """What every mode must pass (mixed into an OciCase)."""

    repo_id = REPO_ID

    # ---- the pulls ----

    def test_raw_manifests_are_the_published_bytes_with_the_source_digests(self):
        im = self.images
        for ref, thing in [("1.0", im.single), (im.single.digest, im.single), ("multi", im.index),
                           ("latest", im.index), (im.index.digest, im.index),
                           (im.index.images[1].digest, im.index.images[1]), (im.sbom.digest, im.sbom)]:
            raw = self.inspect_raw(ref)
            self.assertEqual(raw, thing.manifest, ref)
            self.assertEqual(sha256(raw), thing.digest, ref)

    def test_inspect_image(self):
        info = json.loads(self.skopeo("inspect", "--tls-verify=false", self.ref("1.0")).stdout)
        self.assertEqual(info["Digest"], self.images.single.digest)
        self.assertEqual(info["Architecture"], "amd64")
        self.assertEqual(info["Layers"], [self.images.single.layer_digest])
        self.assertEqual(info["Labels"]["test-label"], "oci-1.0")
        self.assertEqual(info["RepoTags"], self.images.all_tags())

    def test_inspect_index_for_arm64(self):
        info = json.loads(self.skopeo("inspect", "--tls-verify=false", self.ref("multi"),
                                      global_opts=["--override-arch", "arm64"]).stdout)
        arm = self.images.index.images[1]
        self.assertEqual(info["Architecture"], "arm64")
        self.assertEqual(info["Layers"], [arm.layer_digest])

    def test_list_tags(self):
        p = self.skopeo("list-tags", "--tls-verify=false", "docker://%s/%s" % (self.host(), REPO_ID))
        self.assertEqual(json.loads(p.stdout)["Tags"], self.images.all_tags())

    def test_copy_image_by_tag_and_by_digest(self):
        self.assertCopiedDir(self.copy("1.0"), self.images.single)
        self.assertCopiedDir(self.copy(self.images.single.digest), self.images.single)

    def test_copy_index_with_all_by_tag_and_by_digest(self):
        for ref in ("multi", "latest", self.images.index.digest):
            self.assertCopiedDir(self.copy(ref, "--all"), self.images.index, self.images.index.images)

    def test_copy_index_tag_for_arm64(self):
        dest = self.copy("multi", global_opts=["--override-arch", "arm64"])
        self.assertCopiedDir(dest, self.images.index.images[1])

    def test_copy_into_an_oci_layout_keeps_the_index_digest(self):
        dest = self.copy("multi", "--all", dest_kind="oci")
        index = json.loads(self.read(dest, "index.json"))
        self.assertEqual([(m["mediaType"], m["digest"]) for m in index["manifests"]],
                         [(OCI_INDEX, self.images.index.digest)])
        for digest in [self.images.index.digest] + [i.digest for i in self.images.index.images]:
            self.assertEqual(sha256(self.read(dest, "blobs", "sha256", digest[len("sha256:"):])), digest)

    def test_what_skopeo_writes_publishes_to_the_same_files(self):
        """skopeo's own OCI layout and dir: copies of the index publish
        byte-identical manifests and blobs."""
        layout = self.copy("multi", "--all", dest_kind="oci")
        copied_dir = self.copy("multi", "--all")
        web = tempfile.mkdtemp(prefix="again-web-", dir=self.work)
        meta = tempfile.mkdtemp(prefix="again-meta-", dir=self.work)
        publish("e2e/again", "http://mirror.example/pub", web, meta,
                [("multi", "oci:%s:copied" % layout), ("latest", copied_dir)])
        again = os.path.join(web, "e2e-again")
        ours = os.path.join(self.web, REPOSITORY)
        index = self.images.index
        for tag in ("multi", "latest"):
            self.assertEqual(self.read(again, "manifests", "oci-index", tag), index.manifest)
        for rel in [("manifests", "oci-index", index.digest)] + [("manifests", "oci", i.digest) for i in index.images]:
            self.assertEqual(self.read(again, *rel), self.read(ours, *rel))
        blobs = sorted(os.listdir(os.path.join(again, "blobs")))
        self.assertEqual(blobs, sorted(d for i in index.images for d in i.blobs))
        for name in blobs:
            self.assertEqual(self.read(again, "blobs", name), self.read(ours, "blobs", name))

    def test_referrers_list_the_artifacts(self):
        im = self.images
        for subject, artifact in [(im.single, im.sbom), (im.index, im.sig)]:
            reply = self.get("/v2/%s/referrers/%s" % (REPO_ID, subject.digest))
            self.assertEqual(reply.status, 200, reply)
            self.assertEqual(reply.header("Content-Type"), OCI_INDEX)
            body = json.loads(reply.body)
            self.assertEqual(body["mediaType"], OCI_INDEX)
            self.assertEqual(body["manifests"], [artifact.descriptor()])
        reply = self.get("/v2/%s/referrers/%s?artifactType=%s" % (REPO_ID, im.single.digest, SIG_TYPE))
        self.assertEqual(json.loads(reply.body)["manifests"], [])
        reply = self.get("/v2/%s/referrers/%s" % (REPO_ID, im.index.images[0].digest))
        self.assertEqual((reply.status, json.loads(reply.body)["manifests"]), (200, []))
        # the artifact itself and its payload are pullable by digest
        dest = self.copy(im.sbom.digest)
        self.assertEqual(self.read(dest, "manifest.json"), im.sbom.manifest)
        self.assertEqual(self.read(dest, sha256(im.sbom.payload)[len("sha256:"):]),
                         im.sbom.payload)

    def test_referrers_tag_schema_fallback(self):
        """What a client without the referrers API reads: the tag
        sha256-<hex> of each subject is an OCI index of its referrers, the
        bytes of the referrers API's answer."""
        im = self.images
        for subject, artifact in [(im.single, im.sbom), (im.index, im.sig)]:
            tag = referrers_tag(subject.digest)
            raw = self.inspect_raw(tag)
            self.assertEqual(json.loads(raw), {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                               "manifests": [artifact.descriptor()]}, tag)
            self.assertEqual(raw, self.get("/v2/%s/referrers/%s" % (REPO_ID, subject.digest)).body, tag)
            self.assertEqual(self.inspect_raw(sha256(raw)), raw)
            # and the artifact it names is pullable by digest
            self.assertEqual(self.inspect_raw(artifact.digest), artifact.manifest)
        self.assertEqual(set(im.referrers_tags()), {t for t in im.all_tags() if t.startswith("sha256-")})

    def test_unknown_tag_fails_with_manifest_unknown(self):
        p = self.skopeo("inspect", "--tls-verify=false", self.ref("nope"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)manifest unknown")

    # ---- podman ----

    def podman(self, *args, check=True):
        store = os.path.join(self.work, "podman")
        cmd = [PODMAN, "--root", os.path.join(store, "root"), "--runroot", os.path.join(store, "run"),
               "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def podman_pull(self, ref, *extra):
        if not PODMAN:
            self.skipTest("podman is not installed (apt-get install podman)")
        p = self.podman("info", check=False)
        if p.returncode != 0:
            self.skipTest("podman cannot run here: " + (p.stderr.strip().splitlines() or ["?"])[-1])
        name = "%s/%s:%s" % (self.host(), REPO_ID, ref)
        self.podman("pull", "--tls-verify=false", "--signature-policy", self.policy, *extra, "docker://" + name)
        info = json.loads(self.podman("image", "inspect", name).stdout)[0]
        self.podman("rmi", "-f", name, check=False)
        return info

    def test_podman_pull_image(self):
        info = self.podman_pull("1.0")
        self.assertEqual("sha256:" + info["Id"], self.images.single.config_digest)
        self.assertEqual(info["Digest"], self.images.single.digest)

    def test_podman_pull_index_arm64(self):
        info = self.podman_pull("multi", "--arch", "arm64")
        arm = self.images.index.images[1]
        self.assertEqual("sha256:" + info["Id"], arm.config_digest)
        self.assertEqual(info["Architecture"], "arm64")
        self.assertEqual(info["Digest"], self.images.index.digest)

    # ---- docker ----

    def test_docker_pull_image(self):
        info = self.docker_pull("1.0")
        self.assertEqual(info["Id"], self.images.single.config_digest)
        self.assertEqual(info["RepoDigests"], ["%s/%s@%s" % (self.host(), REPO_ID, self.images.single.digest)])

    def test_docker_pull_index(self):
        info = self.docker_pull("multi")
        amd = self.images.index.images[0]  # this machine's platform
        self.assertEqual(info["Id"], amd.config_digest)
        self.assertEqual(info["Architecture"], "amd64")
        self.assertEqual(info["RepoDigests"], ["%s/%s@%s" % (self.host(), REPO_ID, self.images.index.digest)])


class OciRedirectModeTest(OciPullTests, OciCase):
    """mod_crane answers 302s into /pub; the static server sends each
    manifest's type by its directory."""

    def test_requests_were_redirected_to_the_oci_paths(self):
        self.copy("multi", "--all")
        log = self.httpd.read(os.path.join(self.httpd.dir, "access.log"))
        self.assertRegex(log, r'"GET /v2/%s/manifests/multi HTTP/1.1" 302' % REPO_ID)
        self.assertRegex(log, r'"GET /pub/%s/manifests/oci-index/multi HTTP/1.1" 200' % REPOSITORY)
        self.assertRegex(log, r'"GET /pub/%s/manifests/oci/%s HTTP/1.1" 200' % (
            REPOSITORY, self.images.index.images[0].digest))

    def test_demo_oci_layout_publishes_and_pulls(self):
        """demo/oci-layout (what scripts/demo.sh publishes as demo/tiny-oci)."""
        layout = os.path.join(REPO, "demo", "oci-layout")
        publish("demo/tiny-oci", self.base_url, self.web, self.httpd.data, [("latest", "oci:%s:latest" % layout)])
        with open(os.path.join(layout, "index.json")) as f:
            entries = json.load(f)["manifests"]
        index = next(e for e in entries if e.get("annotations", {}).get(image_builder.REF_NAME) == "latest")
        sbom = next(e for e in entries if "annotations" not in e)

        def pulled():
            dest = self.copy("latest", "--all", dest_kind="oci", repo="demo/tiny-oci")
            with open(os.path.join(dest, "index.json")) as f:
                self.assertEqual([m["digest"] for m in json.load(f)["manifests"]], [index["digest"]])

        eventually(pulled)
        reply = self.get("/v2/demo/tiny-oci/referrers/" + index["digest"])
        self.assertEqual([m["digest"] for m in json.loads(reply.body)["manifests"]], [sbom["digest"]])

    def test_a_file_missing_from_the_static_tree_reads_as_manifest_unknown(self):
        """The static server's JSON 404 (ErrorDocument) reaches the client
        as the registry's error, not as an HTML page."""
        path = os.path.join(self.web, REPOSITORY, "manifests", "oci", self.images.sig.digest)
        os.rename(path, path + ".away")
        try:
            p = self.skopeo("inspect", "--raw", "--tls-verify=false", self.ref(self.images.sig.digest), check=False)
        finally:
            os.rename(path + ".away", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"manifest unknown")
        self.assertNotIn("<html", p.stderr.lower())

    def test_static_files_carry_the_oci_types(self):
        reply = self.get("/pub/%s/manifests/oci/1.0" % REPOSITORY)
        self.assertEqual((reply.status, reply.header("Content-Type"), reply.body),
                         (200, OCI_MANIFEST, self.images.single.manifest))
        reply = self.get("/pub/%s/manifests/oci-index/%s" % (REPOSITORY, self.images.index.digest))
        self.assertEqual((reply.status, reply.header("Content-Type"), reply.body),
                         (200, OCI_INDEX, self.images.index.manifest))


class OciServeContentModeTest(OciPullTests, OciCase):
    """CraneServeContent On: mod_crane sends the files with their type and
    digest."""

    serve_content = True

    def test_manifest_headers(self):
        for ref, thing, media_type in [("1.0", self.images.single, OCI_MANIFEST),
                                       ("multi", self.images.index, OCI_INDEX)]:
            reply = self.get("/v2/%s/manifests/%s" % (REPO_ID, ref),
                             headers=["Accept: %s, %s" % (OCI_INDEX, OCI_MANIFEST)])
            self.assertEqual(reply.status, 200, reply)
            self.assertEqual(reply.header("Content-Type"), media_type)
            self.assertEqual(reply.header("Docker-Content-Digest"), thing.digest)
            self.assertEqual(reply.body, thing.manifest)


if __name__ == "__main__":
    unittest.main()
