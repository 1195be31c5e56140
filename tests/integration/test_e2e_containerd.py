"""containerd pulls through mod_crane: `ctr` against a containerd the class
starts itself (Debian's containerd package), the way a Kubernetes node's
containerd pulls.

The daemon gets its own --config with its own root, state, grpc/ttrpc
addresses and plugin dir under a short temp dir (a unix socket path has a
length limit), the CRI plugin and the snapshotters this sandbox has no use
for disabled; pulls unpack with the native snapshotter (plain directory
copies, no overlay mounts left behind). The images are test_e2e_clients'
(a Docker image, a Docker manifest list) as e2e/app and test_e2e_oci's (an
OCI image with an SBOM, an OCI index with a signature) as e2e/oci, published
by crane-publish; every digest and every byte containerd stores is checked
against the source (`ctr content get`). Modes: redirects to /pub,
serve-content, serve-content behind basic auth (`--user`). The
hosts.toml set-up of a node (`--hosts-dir`, the layout of the CRI plugin's
config_path) is tested for 127.0.0.1:PORT itself and as a mirror of another
registry name.

containerd 1.6 has no referrers API client: the artifacts are reached by
digest and through the referrers tag schema's tag (sha256-<hex>), which
`ctr content fetch` follows like any index.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import terminate
from test_e2e_clients import (CLIENT_TIMEOUT, HTPASSWD_PASSWORD, HTPASSWD_USER, BasicAuthMode, E2ECase,
                              REPO_ID, eventually, sha256)
from test_e2e_oci import REPO_ID as OCI_REPO_ID, WithOciImages, referrers_tag

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"""


class Containerd:
    """One containerd with its own directories; `reason` says why it could
    not start (None when it runs)."""

    def __init__(self):
        self.proc = None
        self.dir = None
        self.reason = None
        if not CONTAINERD or not CTR:
            self.reason = "containerd is not installed (apt-get install containerd)"
            return
        if os.geteuid() != 0:
            self.reason = "containerd needs root"
            return
        self.dir = tempfile.mkdtemp(prefix="ctd-", dir="/tmp")
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(d=self.dir))
        self.log = os.path.join(self.dir, "containerd.log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([CONTAINERD, "--config", self.config], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + 30
        while time.time() < end and self.proc.poll() is None:
            if self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        with open(self.log) as f:
            tail = [line for line in f.read().splitlines() if line.strip()][-3:]
        self.stop()
        self.reason = "containerd cannot start here: " + " | ".join(tail)

    def ctr(self, *args, namespace="crane-test", check=True):
        cmd = [CTR, "--address", os.path.join(self.dir, "c.sock"), "--namespace", namespace] + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                              p.stdout.decode(errors="replace")[-2000:],
                                                              p.stderr.decode(errors="replace")[-2000:]))
        return p

    def version(self):
        out = subprocess.run([CTR, "--version"], capture_output=True, text=True).stdout.split()
        return out[-1] if out else "?"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            terminate(self.proc)
        self.proc = None
        if self.dir:
            # snapshots are plain directories (native); state may hold mounts
            # only while the daemon runs
            subprocess.run(["umount", "-R", os.path.join(self.dir, "state")], capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class ContainerdCase(WithOciImages, E2ECase):
    """Publishes both image sets, starts httpd and one containerd."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.containerd = Containerd()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.containerd.stop()
        finally:
            super().tearDownClass()

    def setUp(self):
        if self.containerd.reason:
            self.skipTest(self.containerd.reason)
        # one containerd namespace per test: its images and content only
        self.ns = self.id().rsplit(".", 1)[-1][:60]

    def pull_args(self):
        """How ctr reaches and authenticates in this mode."""
        return ["--plain-http"]

    def ctr(self, *args, check=True):
        return self.containerd.ctr(*args, namespace=self.ns, check=check)

    def pull(self, ref, *extra, repo=REPO_ID):
        name = "%s/%s%s%s" % (self.host(), repo, "@" if ref.startswith("sha256:") else ":", ref)
        self.ctr("images", "pull", "--snapshotter", "native", *self.pull_args(), *extra, name)
        return name

    def image_target(self, name):
        """(media type, digest) of the image `name` in containerd."""
        for line in self.ctr("images", "ls").stdout.decode().splitlines()[1:]:
            cols = line.split()
            if cols and cols[0] == name:
                return cols[1], cols[2]
        raise AssertionError("no image %s in containerd" % name)

    def content(self, digest, check=True):
        p = self.ctr("content", "get", digest, check=check)
        return p.stdout if p.returncode == 0 else None

    def assertStored(self, things):
        """Every manifest and blob of `things` (image_builder objects) is in
        containerd's content store with the source's exact bytes."""
        for thing in things:
            self.assertEqual(self.content(thing.digest), thing.manifest, thing.digest)
            self.assertEqual(sha256(thing.manifest), thing.digest)
            for digest, data in thing.blobs.items():
                stored = self.content(digest)
                self.assertEqual(stored, data, digest)
                self.assertEqual(sha256(stored), digest)

    def assertNotStored(self, digests):
        for digest in digests:
            self.assertIsNone(self.content(digest, check=False), digest)


class ContainerdPulls:
    """What every mode must pass (mixed into a ContainerdCase)."""

    def test_pull_docker_image_by_tag(self):
        name = self.pull("1.0")
        self.assertEqual(self.image_target(name), (self.images.single.media_type, self.images.single.digest))
        self.assertStored([self.images.single])

    def test_pull_docker_image_by_digest(self):
        name = self.pull(self.images.single.digest)
        self.assertEqual(self.image_target(name)[1], self.images.single.digest)
        self.assertStored([self.images.single])

    def test_pull_manifest_list_for_arm64(self):
        multi = self.images.multi
        name = self.pull("multi", "--platform", "linux/arm64")
        self.assertEqual(self.image_target(name), (multi.media_type, multi.digest))
        self.assertEqual(self.content(multi.digest), multi.manifest)
        self.assertStored([multi.image("arm64")])
        self.assertNotStored(multi.image("amd64").blobs)

    def test_pull_manifest_list_all_platforms(self):
        name = self.pull("latest", "--all-platforms")
        self.assertEqual(self.image_target(name)[1], self.images.multi.digest)
        self.assertStored([self.images.multi] + self.images.multi.images)

    def test_pull_oci_image_with_an_attached_sbom(self):
        oci = self.oci
        name = self.pull("1.0", repo=OCI_REPO_ID)
        self.assertEqual(self.image_target(name), (oci.single.media_type, oci.single.digest))
        self.assertStored([oci.single])
        # the SBOM itself: not an image, so fetched (not pulled) by digest
        self.ctr("content", "fetch", *self.pull_args(), "%s/%s@%s" % (self.host(), OCI_REPO_ID, oci.sbom.digest))
        self.assertStored([oci.sbom])

    def test_pull_oci_index_by_digest_for_arm64(self):
        index = self.oci.index
        name = self.pull(index.digest, "--platform", "linux/arm64", repo=OCI_REPO_ID)
        self.assertEqual(self.image_target(name), (index.media_type, index.digest))
        self.assertStored([index.images[1]])
        self.assertNotStored(index.images[0].blobs)

    def test_pull_oci_index_all_platforms(self):
        name = self.pull("multi", "--all-platforms", repo=OCI_REPO_ID)
        self.assertEqual(self.image_target(name)[1], self.oci.index.digest)
        self.assertStored([self.oci.index] + self.oci.index.images)

    def test_referrers_tag_schema_fetch(self):
        """containerd 1.6 has no referrers API client; the referrers tag
        (sha256-<hex of the index>) is an index it fetches with the
        signature it lists."""
        oci = self.oci
        ref = "%s/%s:%s" % (self.host(), OCI_REPO_ID, referrers_tag(oci.index.digest))
        self.ctr("content", "fetch", *self.pull_args(), ref)
        self.assertStored([oci.sig])
        listing = [json.loads(self.content(d)) for d in self.stored_digests()
                   if d not in oci.sig.blobs and d != oci.sig.digest]
        self.assertEqual([l["manifests"] for l in listing], [[oci.sig.descriptor()]])

    def stored_digests(self):
        lines = self.ctr("content", "ls", "-q").stdout.decode().split()
        return [l for l in lines if l.startswith("sha256:")]

    def test_unknown_tag_fails(self):
        p = self.ctr("images", "pull", "--snapshotter", "native", *self.pull_args(),
                     "%s/%s:nope" % (self.host(), REPO_ID), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"not found", p.stderr)

    # ---- hosts.toml, as a Kubernetes node configures registries ----

    def hosts_dir(self, names):
        """A --hosts-dir (the CRI plugin's config_path layout): for each
        registry name a NAME/hosts.toml whose server and only host are this
        httpd over plain HTTP."""
        top = tempfile.mkdtemp(prefix="hosts-", dir=self.work)
        url = "http://%s" % self.host()
        for name in names:
            os.makedirs(os.path.join(top, name))
            with open(os.path.join(top, name, "hosts.toml"), "w") as f:
                f.write('server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' % (url, url))
        return top

    def auth_args(self):
        return [a for a in self.pull_args() if a != "--plain-http"]

    def test_hosts_toml_for_the_registry_itself(self):
        hosts = self.hosts_dir([self.host()])
        name = "%s/%s:multi" % (self.host(), OCI_REPO_ID)
        self.ctr("images", "pull", "--snapshotter", "native", "--hosts-dir", hosts, *self.auth_args(),
                 "--platform", "linux/amd64", name)
        self.assertEqual(self.image_target(name)[1], self.oci.index.digest)
        self.assertStored([self.oci.index.images[0]])

    def test_hosts_toml_mirror_of_another_registry(self):
        """The name pulled is another registry's; hosts.toml sends it here
        (server and mirror both this httpd: nothing leaves the machine)."""
        hosts = self.hosts_dir(["registry.example.invalid"])
        name = "registry.example.invalid/%s:1.0" % REPO_ID
        self.ctr("images", "pull", "--snapshotter", "native", "--hosts-dir", hosts, *self.auth_args(), name)
        self.assertEqual(self.image_target(name)[1], self.images.single.digest)
        self.assertStored([self.images.single])
        # a mirror is asked with the upstream name in ?ns=
        eventually(lambda: self.assertRegex(
            self.access_log(), r'"(HEAD|GET) /v2/%s/manifests/1\.0\?ns=registry\.example\.invalid HTTP/1\.1" (200|302)'
            % REPO_ID), timeout=10)


class ContainerdRedirectModeTest(ContainerdPulls, ContainerdCase):
    """mod_crane answers 302s into /pub."""

    def test_requests_were_redirected(self):
        self.pull("1.0", repo=OCI_REPO_ID)

        def logged():  # a line is written once its response has gone out
            log = self.access_log()
            self.assertRegex(log, r'"GET /v2/%s/manifests/%s HTTP/1.1" 302' % (OCI_REPO_ID, self.oci.single.digest))
            self.assertRegex(log, r'"GET /pub/e2e-oci/blobs/%s HTTP/1.1" 200' % self.oci.single.layer_digest)

        eventually(logged, timeout=10)


class ContainerdServeContentModeTest(ContainerdPulls, ContainerdCase):
    serve_content = True

    def test_requests_were_served_by_mod_crane(self):
        self.pull("1.0", repo=OCI_REPO_ID)
        eventually(lambda: self.assertRegex(self.access_log(), r'"GET /v2/%s/blobs/%s HTTP/1.1" 200' % (
            OCI_REPO_ID, self.oci.single.layer_digest)), timeout=10)
        self.assertNotIn("GET /pub/", self.access_log())


class ContainerdBasicAuthTest(BasicAuthMode, ContainerdPulls, ContainerdCase):
    """`ctr images pull --user USER:PASSWORD` against basic auth."""

    def pull_args(self):
        return ["--plain-http", "--user", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def test_without_credentials_fails(self):
        p = self.ctr("images", "pull", "--snapshotter", "native", "--plain-http",
                     "%s/%s:1.0" % (self.host(), REPO_ID), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr.decode(), r"401 Unauthorized|unauthorized")
        self.assertNotStored([self.images.single.digest])

    def test_wrong_password_fails(self):
        p = self.ctr("images", "pull", "--snapshotter", "native", "--plain-http", "--user", HTPASSWD_USER + ":wrong",
                     "%s/%s:1.0" % (self.host(), REPO_ID), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr.decode(), r"401 Unauthorized|unauthorized")


if __name__ == "__main__":
    unittest.main()
