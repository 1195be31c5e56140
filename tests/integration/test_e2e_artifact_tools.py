"""The OCI artifact tools (oras, regctl, go-containerregistry's crane,
cosign) against mod_crane, where they are installed.

None of them can be had on the project's machines (Debian 12, Debian's apt
archive and the npm registry only, no Go module proxy, no GitHub), so each
test skips with the reason named in WHY: the skip is the finding, never
silent. Where a tool is on PATH the test runs it against test_e2e_oci's
images (e2e/oci: an OCI image with an SBOM, an OCI index with a signature)
in redirect and serve mode and checks what it prints against the source.
Clients without the referrers API see the artifacts through the referrers
tag schema (test_e2e_oci.test_referrers_tag_schema_fallback, and
test_e2e_containerd's ctr fetch of the sha256-<hex> tag).
"""

import json
import shutil
import subprocess
import unittest

from test_e2e_clients import CLIENT_TIMEOUT, E2ECase
from test_e2e_oci import REPO_ID, WithOciImages, referrers_tag

GO_BUILD = ("building it needs Go modules from the Go module proxy, which this machine cannot reach "
            "(Debian 12's Go is 1.19)")
WHY = {
    "oras": "oras is not installed: Debian 12 packages only the oras-go library (golang-oras-oras-go-dev "
            "1.1.1), no oras CLI; npm's 'oras' is an unrelated package; " + GO_BUILD,
    "regctl": "regctl is not installed: not packaged for Debian 12; npm's 'regctl' only downloads a release "
              "binary from GitHub when installed, which this machine cannot reach; " + GO_BUILD,
    "crane": "go-containerregistry's crane is not installed: neither it nor its library is packaged for "
             "Debian 12, nor is it on npm; " + GO_BUILD,
    "cosign": "cosign is not installed: not packaged for Debian 12; npm's 'cosign' is an unrelated tool and "
              "@sigstore/cli verifies Sigstore bundles, not signatures in a registry; " + GO_BUILD,
}


class ArtifactToolsCase(WithOciImages, E2ECase):

    def tool(self, name, *args):
        path = shutil.which(name)
        if not path:
            self.skipTest(WHY[name])
        p = subprocess.run([path] + list(args), capture_output=True, timeout=CLIENT_TIMEOUT)
        if p.returncode != 0:
            raise AssertionError("%s %s failed (%d): %s" % (name, " ".join(args), p.returncode, p.stderr.decode()))
        return p.stdout

    def ref(self, ref, repo=REPO_ID):
        return "%s/%s%s%s" % (self.host(), repo, "@" if ref.startswith("sha256:") else ":", ref)


class ArtifactTools:
    """Mixed into an ArtifactToolsCase."""

    def test_oras_manifest_fetch_and_discover(self):
        oci = self.oci
        raw = self.tool("oras", "manifest", "fetch", "--plain-http", self.ref("1.0"))
        self.assertEqual(raw, oci.single.manifest)
        found = json.loads(self.tool("oras", "discover", "--plain-http", "-o", "json", self.ref("1.0")))
        self.assertIn(oci.sbom.digest, json.dumps(found))
        self.assertEqual(self.tool("oras", "manifest", "fetch", "--plain-http", self.ref(oci.sbom.digest)),
                         oci.sbom.manifest)

    def test_regctl_manifest_and_tags(self):
        self.tool("regctl", "registry", "set", "--tls", "disabled", self.host())
        self.assertEqual(self.tool("regctl", "image", "digest", self.ref("multi")).decode().strip(),
                         self.oci.index.digest)
        tags = self.tool("regctl", "tag", "ls", "%s/%s" % (self.host(), REPO_ID)).decode().split()
        self.assertEqual(tags, self.oci.all_tags())

    def test_crane_manifest_digest_ls_catalog(self):
        oci = self.oci
        self.assertEqual(self.tool("crane", "manifest", "--insecure", self.ref("multi")), oci.index.manifest)
        self.assertEqual(self.tool("crane", "digest", "--insecure", self.ref("1.0")).decode().strip(),
                         oci.single.digest)
        self.assertEqual(self.tool("crane", "ls", "--insecure", "%s/%s" % (self.host(), REPO_ID)).decode().split(),
                         oci.all_tags())
        self.assertIn(REPO_ID, self.tool("crane", "catalog", "--insecure", self.host()).decode().split())

    def test_cosign_names_the_signature_tag(self):
        out = self.tool("cosign", "triangulate", "--allow-insecure-registry", self.ref("multi")).decode().strip()
        self.assertEqual(out, "%s/%s:%s.sig" % (self.host(), REPO_ID, referrers_tag(self.oci.index.digest)))


class ArtifactToolsRedirectModeTest(ArtifactTools, ArtifactToolsCase):
    pass


class ArtifactToolsServeContentModeTest(ArtifactTools, ArtifactToolsCase):
    serve_content = True


if __name__ == "__main__":
    unittest.main()
