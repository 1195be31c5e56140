"""buildah pulls through mod_crane: `buildah pull` and `buildah from` (Debian's
buildah) into a store of the class's own (--root/--runroot under its temp
dir, the vfs driver), from test_e2e_clients' Docker images (e2e/app) and
test_e2e_oci's OCI image and index (e2e/oci, the image with an SBOM
attached), checking the image and manifest digests against the source and,
for `buildah from`, the file the layer holds. Modes: redirects to /pub,
serve-content, serve-content behind basic auth (`--creds`).
"""

import json
import os
import shutil
import subprocess
import unittest

from test_e2e_clients import (CLIENT_TIMEOUT, HTPASSWD_PASSWORD, HTPASSWD_USER, BasicAuthMode, E2ECase,
                              REPO_ID)
from test_e2e_oci import REPO_ID as OCI_REPO_ID, WithOciImages

BUILDAH = shutil.which("buildah")


class BuildahCase(WithOciImages, E2ECase):

    def setUp(self):
        if not BUILDAH:
            self.skipTest("buildah is not installed (apt-get install buildah)")

    def pull_args(self):
        return ["--tls-verify=false"]

    def buildah(self, *args, check=True):
        store = os.path.join(self.work, "buildah")
        cmd = [BUILDAH, "--root", os.path.join(store, "root"), "--runroot", os.path.join(store, "run"),
               "--storage-driver", "vfs"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                           env=dict(os.environ, REGISTRY_AUTH_FILE=self.authfile))
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def name(self, ref, repo=REPO_ID):
        return "%s/%s%s%s" % (self.host(), repo, "@" if ref.startswith("sha256:") else ":", ref)

    def pull(self, ref, *extra, repo=REPO_ID):
        """buildah pull; returns the image's inspect JSON (and removes it)."""
        name = self.name(ref, repo)
        image_id = self.buildah("pull", "--signature-policy", self.policy, *self.pull_args(), *extra,
                                "docker://" + name).stdout.strip().splitlines()[-1]
        info = json.loads(self.buildah("inspect", "--type", "image", image_id).stdout)
        self.buildah("rmi", "-f", image_id, check=False)
        return image_id, info


class BuildahPulls:
    """What every mode must pass (mixed into a BuildahCase)."""

    def test_pull_docker_image(self):
        image_id, info = self.pull("1.0")
        self.assertEqual("sha256:" + image_id, self.images.single.config_digest)
        self.assertEqual(info["FromImageDigest"], self.images.single.digest)
        self.assertEqual(info["Manifest"].encode(), self.images.single.manifest)

    def test_pull_docker_image_by_digest(self):
        image_id, info = self.pull(self.images.single.digest)
        self.assertEqual("sha256:" + image_id, self.images.single.config_digest)

    def test_pull_manifest_list_for_arm64(self):
        image_id, info = self.pull("multi", "--arch", "arm64")
        arm = self.images.multi.image("arm64")
        self.assertEqual("sha256:" + image_id, arm.config_digest)
        self.assertEqual(info["FromImageDigest"], arm.digest)  # the instance, not the list
        self.assertEqual(info["Manifest"].encode(), arm.manifest)

    def test_pull_oci_image_with_an_attached_sbom(self):
        image_id, info = self.pull("1.0", repo=OCI_REPO_ID)
        self.assertEqual("sha256:" + image_id, self.oci.single.config_digest)
        self.assertEqual(info["FromImageDigest"], self.oci.single.digest)
        self.assertEqual(info["Manifest"].encode(), self.oci.single.manifest)

    def test_pull_oci_index_by_digest(self):
        image_id, info = self.pull(self.oci.index.digest, "--arch", "amd64", repo=OCI_REPO_ID)
        self.assertEqual("sha256:" + image_id, self.oci.index.images[0].config_digest)

    def test_from_oci_index_arm64_holds_the_layer_file(self):
        name = self.name("multi", OCI_REPO_ID)
        container = self.buildah("from", "--signature-policy", self.policy, *self.pull_args(), "--arch", "arm64",
                                 "docker://" + name).stdout.strip().splitlines()[-1]
        try:
            info = json.loads(self.buildah("inspect", "--type", "container", container).stdout)
            arm = self.oci.index.images[1]
            self.assertEqual(info["FromImageID"], arm.config_digest[len("sha256:"):])
            self.assertEqual(info["FromImageDigest"], arm.digest)  # the instance, not the index
            root = self.buildah("mount", container).stdout.strip()
            with open(os.path.join(root, "hello.txt"), "rb") as f:
                self.assertEqual(f.read(), b"hello from a tiny arm64 image (oci-multi)\n")
        finally:
            self.buildah("umount", container, check=False)
            self.buildah("rm", container, check=False)

    def test_unknown_tag_fails(self):
        p = self.buildah("pull", "--signature-policy", self.policy, *self.pull_args(),
                         "docker://" + self.name("nope"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("manifest unknown", p.stderr)


class BuildahRedirectModeTest(BuildahPulls, BuildahCase):
    pass


class BuildahServeContentModeTest(BuildahPulls, BuildahCase):
    serve_content = True


class BuildahBasicAuthTest(BasicAuthMode, BuildahPulls, BuildahCase):

    def pull_args(self):
        return ["--tls-verify=false", "--creds", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def test_without_credentials_fails(self):
        p = self.buildah("pull", "--signature-policy", self.policy, "--tls-verify=false",
                         "docker://" + self.name("1.0"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)unauthorized|authentication required|401")


if __name__ == "__main__":
    unittest.main()
