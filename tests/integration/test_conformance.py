"""The OCI distribution-spec conformance suite, read-only (pull, content
discovery, referrers), against images published by crane-publish with the
tags latest v1 v2 v3: demo/image (a Docker manifest list) and demo/oci-layout
(an OCI index, with an SBOM as a referrer); the main suite (run-readonly.sh)
and the v1.1.1 release, in serve mode and in redirect mode.

The prebuilt suite lives in shared/oci-conformance beside the repository
(../shared/oci-conformance from the repository root, or
CRANE_CONFORMANCE_DIR); without it the tests skip. Each test prints its table of checks (-v shows it).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import xml.etree.ElementTree as ET

from harness import (MODULE, REPO, HttpdTestCase, LIST, OCI_INDEX, OCI_MANIFEST, S2, V2_BLOB_UNKNOWN,
                     V2_MANIFEST_UNKNOWN)

SUITE = os.environ.get("CRANE_CONFORMANCE_DIR") or os.path.join(os.path.dirname(REPO), "shared", "oci-conformance")
BUILD_DIR = os.environ.get("CRANE_BUILD_DIR") or os.path.dirname(MODULE)
PUBLISH = os.path.join(BUILD_DIR, "crane-publish")
IMAGE = os.path.join(REPO, "demo", "image")
OCI_IMAGE = "oci:%s:latest" % os.path.join(REPO, "demo", "oci-layout")
REPO_ID = "demo/tiny"
REPOSITORY = "demo-tiny"  # crane-publish's default for REPO_ID
TAGS = ["latest", "v1", "v2", "v3"]
SUITE_TIMEOUT = 300

# v1.1.1 has no read-only input for its referrers checks: they read the
# artifacts its own push set-up would have written (with subjects it makes up)
V111_PUSHED_REFERRERS = {
    "Content Discovery Test content discovery endpoints (listing references) "
    "GET request to existing blob should yield 200",
    "Content Discovery Test content discovery endpoints (listing references) "
    "GET request to existing blob with filter should yield 200",
    "Content Discovery Test content discovery endpoints (listing references) "
    "GET request to missing manifest should yield 200",
}
# redirect mode: the static server sends each manifest's type and a JSON 404
MANIFEST_DIRS = [("2", S2), ("list", LIST), ("oci-index", OCI_INDEX), ("oci", OCI_MANIFEST)]
STATIC_CONF = "Alias /pub {work}/pub\n<Directory {work}/pub>\n    Require all granted\n</Directory>\n"
STATIC_TYPES = "".join(
    '<LocationMatch "^/pub/v2/.+/manifests/%s/[^/]+$">\n    ForceType %s\n</LocationMatch>\n' % (d, t)
    for d, t in MANIFEST_DIRS) + """<LocationMatch "^/pub/v2/.+/blobs/[^/]+$">
    ForceType application/octet-stream
    ErrorDocument 404 /errors/blob-unknown.json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/manifests/">
    ErrorDocument 404 /errors/manifest-unknown.json
</LocationMatch>
<LocationMatch "^/pub/v2/.+/tags/list$">
    ForceType application/json
</LocationMatch>
"""
# the JSON 404 bodies the static server sends: mod_crane's own, byte for byte
ERROR_DOCS = {"manifest-unknown.json": V2_MANIFEST_UNKNOWN, "blob-unknown.json": V2_BLOB_UNKNOWN}

SERVE_INI = """
[general]
data_dir: {data}
data_dir_polling_interval: 1

[serve_content]
enable: true
content_dir_v1: {dir}
content_dir_v2: {dir}/work/pub/v2
"""


def missing():
    if not os.path.isdir(SUITE):
        return "no conformance suite at %s" % SUITE
    if not os.access(PUBLISH, os.X_OK):
        return "no crane-publish at %s (build it first)" % PUBLISH
    return None


def table(rows):
    return "\n".join("  %s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else "  (%s)" % msg[:200])
                     for name, ok, msg in rows)


class ConformanceCase(HttpdTestCase):
    """Publishes the image into the server's dir, then starts it."""

    data_src = None
    mode = None
    image = IMAGE
    tag_type = OCI_MANIFEST  # what the published tag is, to an OCI client

    @classmethod
    def setUpClass(cls):
        why = missing()
        if why:
            raise unittest.SkipTest(why)
        super().setUpClass()

    @classmethod
    def before_start(cls):
        cls.work = os.path.join(cls.httpd.dir, "work")
        os.makedirs(os.path.join(cls.work, "pub", "v2"))
        cmd = [PUBLISH, "--repo-id", REPO_ID, "--base-url", cls.httpd.url("/pub/v2"),
               "--out", os.path.join(cls.work, "pub", "v2"), "--metadata", cls.httpd.data, "--quiet"]
        subprocess.run(cmd + ["%s=%s" % (t, cls.image) for t in TAGS], check=True, timeout=120)
        os.makedirs(os.path.join(cls.httpd.dir, "htdocs", "errors"))
        for name, body in ERROR_DOCS.items():
            with open(os.path.join(cls.httpd.dir, "htdocs", "errors", name), "wb") as f:
                f.write(body)
        for root, dirs, files in os.walk(cls.httpd.dir):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)

    # ---- what was published ----

    def published(self, *parts):
        top = os.path.join(self.work, "pub", "v2", REPOSITORY, *parts)
        return sorted(os.listdir(top)) if os.path.isdir(top) else []

    def manifest_digests(self):
        out = []
        for d, _type in MANIFEST_DIRS:
            out += [n for n in self.published("manifests", d) if n.startswith("sha256:") and n not in out]
        return out

    def blob_digests(self):
        return [n for n in self.published("blobs") if n.startswith("sha256:")]

    def metadata(self):
        with open(os.path.join(self.httpd.data, REPOSITORY + ".json")) as f:
            return json.load(f)

    def resolved_digest(self, tag, accept):
        """The digest of what the tag answers to `accept` (after a redirect)."""
        req = urllib.request.Request(self.httpd.url("/v2/%s/manifests/%s" % (REPO_ID, tag)),
                                     headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return "sha256:" + hashlib.sha256(resp.read()).hexdigest()

    # ---- the suites ----

    def run_main(self):
        out = tempfile.mkdtemp(prefix="conformance-main-", dir=self.httpd.dir)
        proc = subprocess.run(
            [os.path.join(SUITE, "run-readonly.sh"), "127.0.0.1:%d" % self.httpd.port, REPO_ID, " ".join(self.metadata()["tags"]),
             " ".join(self.manifest_digests()), " ".join(self.blob_digests()), out],
            capture_output=True, text=True, timeout=SUITE_TIMEOUT + 60)
        rows = []
        for line in proc.stdout.splitlines():
            status, _, rest = line.partition(" ")
            if status in ("PASS", "FAIL"):
                name, _, msg = rest.partition(" (")
                rows.append((name, status == "PASS", msg))
        self.assertTrue(rows, "no results from the main suite:\n%s\n%s" % (proc.stdout, proc.stderr))
        return rows

    def run_v111(self):
        out = tempfile.mkdtemp(prefix="conformance-v111-", dir=self.httpd.dir)
        env = dict(os.environ,
                   OCI_ROOT_URL=self.httpd.url(""), OCI_NAMESPACE=REPO_ID, OCI_TEST_PULL="1",
                   OCI_TEST_CONTENT_DISCOVERY="1", OCI_TEST_PUSH="0", OCI_TEST_CONTENT_MANAGEMENT="0",
                   OCI_TAG_NAME=TAGS[0],
                   # v1.1.1 asks for the tag with the OCI manifest type only
                   OCI_MANIFEST_DIGEST=self.resolved_digest(TAGS[0], self.tag_type),
                   OCI_BLOB_DIGEST=self.blob_digests()[0], OCI_TAG_LIST=",".join(self.metadata()["tags"]),
                   OCI_HIDE_SKIPPED_WORKFLOWS="1", OCI_REPORT_DIR=out)
        proc = subprocess.run([os.path.join(SUITE, "conformance-v1.1.1.test")], cwd=out, env=env,
                              capture_output=True, text=True, timeout=SUITE_TIMEOUT)
        junit = os.path.join(out, "junit.xml")
        self.assertTrue(os.path.exists(junit), "no junit.xml from v1.1.1:\n%s" % proc.stdout[-3000:])
        rows = []
        prefix = "OCI Distribution Conformance Tests "
        for case in ET.parse(junit).getroot().iter("testcase"):
            status = case.get("status")
            if status not in ("passed", "failed"):
                continue
            name = case.get("name")
            if "custom reporter" in name:
                continue  # the suite's report writer, no check
            name = name[len(prefix):] if name.startswith(prefix) else name
            failure = case.find("failure")
            msg = (failure.get("message") or failure.text or "") if failure is not None else ""
            rows.append((name, status == "passed", " ".join(msg.split())))
        self.assertTrue(rows, "no results from v1.1.1:\n%s" % proc.stdout[-3000:])
        return rows

    def assertOnlyExpectedFailures(self, suite, rows, expected):
        """Every check passes but those in `expected` (name -> why)."""
        sys.stderr.write("\n%s, %s mode (%d checks):\n%s\n" % (suite, self.mode, len(rows), table(rows)))
        failed = {name for name, ok, _msg in rows if not ok}
        unexpected = sorted(failed - set(expected))
        self.assertEqual(unexpected, [], "%s, %s mode:\n%s" % (suite, self.mode, table(rows)))
        for name in sorted(failed):
            sys.stderr.write("  expected failure: %s: %s\n" % (name, expected[name]))

    def expected_main(self):
        return {}

    def expected_v111(self):
        return {n: "reads artifacts only the suite's push set-up writes" for n in V111_PUSHED_REFERRERS}

    def test_tags_are_in_the_metadata(self):
        """crane-publish writes `tags`: tags/list is answered and paged by
        mod_crane. With them, the referrers tag schema's tag of each subject
        that has referrers (the OCI layout's index, whose SBOM it is)."""
        referrers = self.metadata()["referrers"]
        self.assertEqual(len(referrers), 1 if self.image == OCI_IMAGE else 0)
        self.assertEqual(self.metadata()["tags"], sorted(TAGS + [s.replace(":", "-", 1) for s in referrers]))

    def test_main_suite(self):
        rows = self.run_main()
        self.assertGreaterEqual(len(rows), 29)
        self.assertOnlyExpectedFailures("main suite", rows, self.expected_main())

    def test_v1_1_1(self):
        rows = self.run_v111()
        self.assertGreaterEqual(len(rows), 20)
        self.assertOnlyExpectedFailures("v1.1.1", rows, self.expected_v111())


class ServeModeTest(ConformanceCase):
    mode = "serve"
    crane_ini = SERVE_INI


class RedirectModeTest(ConformanceCase):
    """The static server sends the manifest types (ForceType per manifests/
    directory) and JSON 404 bodies (ErrorDocument), as the sample configs
    and the demo do."""

    mode = "redirect"
    extra_modules = ("alias",)
    conf = STATIC_CONF.replace("{work}", "{dir}/work") + STATIC_TYPES
    location = "/v2"


class PlainStaticServerTest(ConformanceCase):
    """Redirect mode with a static server that sends neither manifest types
    nor JSON 404s: no check of either suite depends on those headers (real
    clients do: they take a manifest's type from Content-Type)."""

    mode = "redirect, plain static server"
    extra_modules = ("alias",)
    conf = STATIC_CONF.replace("{work}", "{dir}/work")
    location = "/v2"


# v1.1.1 asks for the tag with the OCI manifest type only; the tag is an OCI
# index, which a registry must not send to a client that does not accept it
V111_TAG_AS_MANIFEST = {
    "Pull Pull manifests GET request to manifest path (tag) should yield 200 response",
    "Pull Pull manifests HEAD request to manifest path (tag) should yield 200 response",
}


class OciIndexCase:
    image = OCI_IMAGE
    tag_type = OCI_INDEX

    def expected_v111(self):
        expected = super().expected_v111()
        expected.update({n: "the tag is an OCI index; the suite accepts OCI manifests only"
                         for n in V111_TAG_AS_MANIFEST})
        return expected


class OciServeModeTest(OciIndexCase, ServeModeTest):
    mode = "serve, OCI index"


class OciRedirectModeTest(OciIndexCase, RedirectModeTest):
    mode = "redirect, OCI index"


del ConformanceCase  # only its subclasses run

if __name__ == "__main__":
    unittest.main()
