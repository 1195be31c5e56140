"""Scaling out: two httpd servers (each its own port) serve ONE shared data
dir (CranePollInterval 1) while a publisher publishes, republishes and
deletes repositories, the way a load-balanced deployment sharing one
published tree works.

The published files (manifests, blobs) come from a plain static file server
(a Python thread here, standing for the CDN); the metadata `url` points at
it. Publications are made with the real crane-publish, each into a fresh
directory of the static tree (as Pulp publishes into a new directory each
time), so the metadata file is the only thing that switches a tag: blobs
and manifests first, the metadata file last (temporary file + rename).
Old publication directories are removed only after both servers answer from
the new metadata, and a deleted repository's files only after both answer
404 for it.

Threads poll both servers all the time and follow every answer to the end:
GET /v2/NAME/manifests/TAG (Docker and OCI Accept headers) -> 302 -> the
manifest from the static server (its sha256 must be a digest published for
that tag) -> for a list/index every instance via /v2/NAME/manifests/DIGEST
-> every config and layer via /v2/NAME/blobs/DIGEST -> 302 -> 200 with the
right sha256. Asserted:

- no server ever answers a 302 whose target is missing or wrong (no
  half-published image is ever served);
- a tag is 404 (not yet published, or deleted) or completely pullable;
- both servers serve each change within a few seconds of the metadata write;
- with the shared snapshot (a module that knows CraneSnapshotDir): once a
  server has served an image, a request it receives later never answers 404
  for it, nor an older image for a republished tag (all children of a server
  switch together). Today's per-child indexes reload one child at a time, so
  there the count is only reported.

Ends with a skopeo copy of one image from each server when skopeo is
installed.
"""

import hashlib
import http.client
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import image_builder
from harness import (ACCEPT_BOTH, LIST, MODULE, OCI_INDEX, OCI_MANIFEST, S1, S2, Httpd)
from test_e2e_clients import CLIENT_TIMEOUT, POLICY, PUBLISH, SKOPEO, publish

POLL = 1  # CranePollInterval of both servers
CONVERGE = float(os.environ.get("CRANE_SCALE_OUT_CONVERGE", "6"))  # seconds after the metadata write
POLLERS_PER_SERVER = 2
ACCEPT_ALL = "Accept: %s, %s, %s, %s, %s" % (S1, S2, LIST, OCI_INDEX, OCI_MANIFEST)


def module_has_snapshots():
    try:
        with open(MODULE, "rb") as f:
            return b"CraneSnapshotDir" in f.read()
    except OSError:
        return False


SNAPSHOTS = module_has_snapshots()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    """The published tree with each manifest's media type by its directory,
    as the apache-conf samples configure a static server."""

    protocol_version = "HTTP/1.1"
    TYPES = (("/manifests/2/", S2), ("/manifests/list/", LIST), ("/manifests/oci/", OCI_MANIFEST),
             ("/manifests/oci-index/", OCI_INDEX), ("/blobs/", "application/octet-stream"),
             ("/tags/list", "application/json"))

    def guess_type(self, path):
        for part, media_type in self.TYPES:
            if part in path:
                return media_type
        return "application/octet-stream"

    def log_message(self, *args):
        pass


class StaticServer:
    def __init__(self, root):
        handler = lambda *a, **kw: StaticHandler(*a, directory=root, **kw)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Client:
    """Keep-alive HTTP/1.1 connections per host:port; reconnects on errors."""

    def __init__(self):
        self.conns = {}

    def get(self, port, path, headers=()):
        hdrs = {}
        for h in headers:
            name, _, value = h.partition(":")
            hdrs[name.strip()] = value.strip()
        for attempt in (0, 1):
            conn = self.conns.get(port)
            if conn is None:
                conn = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.request("GET", path, headers=hdrs)
                r = conn.getresponse()
                body = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    del self.conns[port]
                return r.status, r.getheader("Location"), body
            except (OSError, http.client.HTTPException):
                conn.close()
                del self.conns[port]
                if attempt:
                    raise

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}


class Broken(Exception):
    """A served answer that does not lead to a complete image. gone: the
    registry itself answered 404 for a digest the manifest it served names;
    missing: a redirect target the static server does not have."""

    def __init__(self, message, gone=False, missing=False):
        super().__init__(message)
        self.gone = gone
        self.missing = missing
        self.superseded = False


class ScaleOut(unittest.TestCase):
    def setUp(self):
        if not os.access(PUBLISH, os.X_OK):
            self.skipTest("crane-publish not built (%s)" % PUBLISH)
        self.work = tempfile.mkdtemp(prefix="crane-scale-out-")
        os.chmod(self.work, 0o755)
        self.addCleanup(shutil.rmtree, self.work, True)
        self.web = os.path.join(self.work, "web")
        self.data = os.path.join(self.work, "metadata")
        for d in (self.web, self.data):
            os.makedirs(d)
            os.chmod(d, 0o755)
        self.static = StaticServer(self.web)
        self.addCleanup(self.static.close)
        ini = "[general]\ndata_dir: %s\ndata_dir_polling_interval: %d\n" % (self.data, POLL)
        # two servers on one data dir, each with its own snapshot dir (as
        # nodes keep theirs on local disk: the file name comes from the data
        # dir, the same for both)
        conf = "CraneSnapshotDir {dir}/snapshots\n" if SNAPSHOTS else ""
        self.servers = [self.enterContext(Httpd(crane_ini=ini, conf=conf)) for _ in range(2)]
        self.images = self.build_images()
        # {(repo, tag): [(digest, thing), ...] in publication order}
        self.published = {}
        self.deleted = {}  # repo -> time the metadata file was removed
        self.lock = threading.Lock()
        self.violations = []  # broken answers: always a failure
        self.regressions = []  # 404 or an older image after a newer one was served
        self.served = {}  # (server, repo, tag) -> (end time of first answer, version index)
        self.history = []  # (server, repo, tag, start, end, outcome)
        self.npulls = 0
        self.interrupted = 0  # pulls whose image was replaced or deleted midway
        self.pub = 0

    # ---- images and publishing ----

    def build_images(self):
        src = os.path.join(self.work, "src")
        imgs = {
            "a1": image_builder.Image("amd64", label="scale-a1"),
            "m1": image_builder.multi_arch(label="scale-m1"),
            "m2": image_builder.multi_arch(label="scale-m2"),
            "c1": image_builder.Image("amd64", label="scale-c1"),
            "o1": image_builder.Image("amd64", label="scale-o1", oci=True),
            "oi": image_builder.multi_arch(label="scale-oi", oci=True),
        }
        sources = {}
        for name in ("a1", "m1", "m2", "c1"):
            sources[name] = image_builder.write_dir(imgs[name], os.path.join(src, name))
        layout = image_builder.write_oci_layout(os.path.join(src, "oci"), [(imgs["o1"], "o1"), (imgs["oi"], "oi")])
        sources["o1"] = "oci:%s:o1" % layout
        sources["oi"] = "oci:%s:oi" % layout
        return {k: (imgs[k], sources[k]) for k in imgs}

    def publish(self, repo, tags):
        """crane-publish into a fresh directory of the static tree: blobs and
        manifests first, the metadata file last. Returns the time the metadata
        file was in place."""
        self.pub += 1
        sub = "pub%d" % self.pub
        with self.lock:
            for tag, name in tags.items():
                versions = self.published.setdefault((repo, tag), [])
                if not versions or versions[-1].digest != self.images[name][0].digest:
                    versions.append(self.images[name][0])
        publish(repo, self.static.url("/" + sub), os.path.join(self.web, sub), self.data,
                [(tag, self.images[name][1]) for tag, name in tags.items()])
        return time.time(), sub

    def metadata_file(self, repo):
        return os.path.join(self.data, repo.replace("/", "-") + ".json")

    # ---- following an answer to the end ----

    def pull(self, client, port, repo, tag, accept):
        """None for a 404, else the index of the published version served.
        Raises Broken for anything else."""
        status, location, body = client.get(port, "/v2/%s/manifests/%s" % (repo, tag), [accept])
        if status == 404:
            return None
        if status != 302:
            raise Broken("manifest %s:%s answered %d %r" % (repo, tag, status, body[:200]))
        manifest = self.fetch_target(client, location, "manifest %s:%s" % (repo, tag))
        digest = sha256(manifest)
        with self.lock:
            versions = list(self.published.get((repo, tag), []))
        index = next((i for i, v in enumerate(versions) if v.digest == digest), None)
        if index is None:
            raise Broken("manifest %s:%s: %s is not a digest published for it (%s)" % (
                repo, tag, digest, location))
        try:
            self.check_manifest(client, port, repo, manifest)
        except Broken as e:
            # the tag moved to a newer image while this pull was under way:
            # the old image's digests left the metadata with it (404), or
            # its blobs now redirect to the new publication, which does not
            # hold them (blob redirects are not checked against the metadata)
            # (the versions are read again now: the publish may have begun
            # after the manifest was fetched, while its instances and blobs
            # were being followed)
            with self.lock:
                newest = len(self.published.get((repo, tag), [])) - 1
            e.superseded = (e.gone or e.missing) and index < newest
            raise
        return index

    def fetch_target(self, client, location, what):
        prefix = self.static.url("/")
        if not location or not location.startswith(prefix):
            raise Broken("%s: redirect to %r, not the static server" % (what, location))
        status, _, body = client.get(self.static.port, location[len(prefix) - 1:])
        if status != 200:
            raise Broken("%s: 302 to %s, which answers %d (half-published?)" % (what, location, status),
                         missing=status == 404)
        return body

    def check_manifest(self, client, port, repo, manifest):
        doc = json.loads(manifest)
        if "manifests" in doc:  # a manifest list or OCI index: every instance by digest
            for entry in doc["manifests"]:
                status, location, body = client.get(port, "/v2/%s/manifests/%s" % (repo, entry["digest"]),
                                                    [ACCEPT_ALL])
                if status != 302:
                    raise Broken("instance %s of %s answered %d" % (entry["digest"], repo, status), status == 404)
                inner = self.fetch_target(client, location, "instance %s" % entry["digest"])
                if sha256(inner) != entry["digest"]:
                    raise Broken("instance %s of %s: body hashes to %s" % (entry["digest"], repo, sha256(inner)))
                self.check_manifest(client, port, repo, inner)
            return
        for blob in [doc["config"]] + doc["layers"]:
            status, location, _ = client.get(port, "/v2/%s/blobs/%s" % (repo, blob["digest"]))
            if status != 302:
                raise Broken("blob %s of %s answered %d" % (blob["digest"], repo, status), status == 404)
            data = self.fetch_target(client, location, "blob %s" % blob["digest"])
            if sha256(data) != blob["digest"] or len(data) != blob["size"]:
                raise Broken("blob %s of %s: got %d bytes hashing to %s" % (
                    blob["digest"], repo, len(data), sha256(data)))

    def accepts(self, repo, tag):
        with self.lock:
            versions = self.published.get((repo, tag), [])
        oci = any(getattr(v, "oci", False) for v in versions)
        return ["Accept: %s, %s" % (OCI_INDEX, OCI_MANIFEST) if oci else ACCEPT_BOTH, ACCEPT_ALL]

    def observe(self, client, server, repo, tag, accept):
        """One full pull; records what was served and checks the invariants."""
        port = self.servers[server].port
        start = time.time()
        try:
            outcome = self.pull(client, port, repo, tag, accept)
        except Broken as e:
            with self.lock:
                deleted_at = self.deleted.get(repo)
            # a pull under way while its repo is deleted or its tag moves to
            # another image may lose its digests midway (the registry's own
            # 404, as any registry would answer): not a half-published image
            if e.superseded or (e.gone and deleted_at is not None):
                with self.lock:
                    self.interrupted += 1
                return
            if e.gone:
                # the newest image's own digest unknown right after its
                # manifest was served: a request answered from older metadata
                # than the one before it (a child that has not reloaded yet)
                with self.lock:
                    self.regressions.append("server %d: %s" % (server, e))
                return
            with self.lock:
                self.violations.append("server %d: %s" % (server, e))
            return
        end = time.time()
        with self.lock:
            self.npulls += 1
            self.history.append((server, repo, tag, start, end, outcome))
            key = (server, repo, tag)
            first = self.served.get(key)
            if outcome is not None:
                if first is None or outcome > first[1]:
                    self.served[key] = (end, outcome)
                elif outcome < first[1] and start > first[0]:
                    self.regressions.append("server %d served %s:%s version %d after version %d" % (
                        server, repo, tag, outcome, first[1]))
            elif first is not None and start > first[0] and repo not in self.deleted:
                self.regressions.append("server %d answered 404 for %s:%s after serving it" % (server, repo, tag))

    def poller(self, server, stop, universe, seed):
        client = Client()
        i = seed
        try:
            while not stop.is_set():
                repo, tag = universe[i % len(universe)]
                accepts = self.accepts(repo, tag)
                self.observe(client, server, repo, tag, accepts[(i // len(universe)) % len(accepts)])
                i += 1
        finally:
            client.close()

    # ---- convergence, seen by the test thread ----

    def wait_converged(self, since, expect, what):
        """Polls both servers until every (repo, tag) in `expect` answers as
        expected (a version index, or None for 404) three times in a row on
        each; returns the seconds since `since` (the metadata write)."""
        client = Client()
        try:
            deadline = since + CONVERGE + 10
            streak = 0
            last = None
            while time.time() < deadline:
                round_start = time.time()
                good = True
                for server in range(len(self.servers)):
                    for (repo, tag), want in expect.items():
                        for accept in self.accepts(repo, tag):
                            try:
                                got = self.pull(client, self.servers[server].port, repo, tag, accept)
                            except Broken as e:
                                got = "broken: %s" % e
                            if got != want:
                                good = False
                                last = "server %d %s:%s: %r, expected %r" % (server, repo, tag, got, want)
                if good and not streak:
                    first_good = round_start
                streak = streak + 1 if good else 0
                if streak >= 3:
                    # from the write to the start of the first of the good rounds
                    took = first_good - since
                    self.assertLess(took, CONVERGE, "%s: both servers converged only after %.1f s" % (what, took))
                    return took
                time.sleep(0.05)
            self.fail("%s: the servers did not converge in %.0f s: %s" % (what, CONVERGE + 10, last))
        finally:
            client.close()

    # ---- the test ----

    def test_publish_republish_delete_seen_consistently_by_both_servers(self):
        universe = [("scale/a", "1.0"), ("scale/a", "latest"), ("scale/b", "1.0"), ("scale/b", "multi"),
                    ("scale/c", "latest"), ("scale/never", "latest")]
        client = Client()
        for repo, tag in universe:  # nothing yet
            for server in range(2):
                self.assertEqual(self.pull(client, self.servers[server].port, repo, tag, ACCEPT_ALL), None)
        client.close()
        stop = threading.Event()
        threads = [threading.Thread(target=self.poller, args=(s, stop, universe, k * 3 + s))
                   for s in range(2) for k in range(POLLERS_PER_SERVER)]
        for t in threads:
            t.start()
        timings = {}
        try:
            time.sleep(0.5)
            t, _ = self.publish("scale/a", {"1.0": "a1", "latest": "m1"})
            timings["publish a"] = self.wait_converged(t, {("scale/a", "1.0"): 0, ("scale/a", "latest"): 0},
                                                       "publish scale/a")
            t, _ = self.publish("scale/b", {"1.0": "o1", "multi": "oi"})
            timings["publish b (OCI)"] = self.wait_converged(
                t, {("scale/b", "1.0"): 0, ("scale/b", "multi"): 0}, "publish scale/b")
            t, _ = self.publish("scale/c", {"latest": "c1"})
            timings["publish c"] = self.wait_converged(t, {("scale/c", "latest"): 0}, "publish scale/c")

            # republish: latest becomes another manifest list, in a new directory
            t, _ = self.publish("scale/a", {"1.0": "a1", "latest": "m2"})
            timings["republish a"] = self.wait_converged(
                t, {("scale/a", "1.0"): 0, ("scale/a", "latest"): 1}, "republish scale/a")
            # the old publication goes once no server can still redirect there
            time.sleep(2 * POLL + 1)
            shutil.rmtree(os.path.join(self.web, "pub1"))

            # delete: the metadata file first, the files once both answer 404
            with self.lock:
                self.deleted["scale/b"] = time.time()
            os.remove(self.metadata_file("scale/b"))
            t = time.time()
            timings["delete b"] = self.wait_converged(
                t, {("scale/b", "1.0"): None, ("scale/b", "multi"): None}, "delete scale/b")
            time.sleep(2 * POLL + 1)
            shutil.rmtree(os.path.join(self.web, "pub2"))
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join(60)

        with self.lock:
            violations, regressions, npulls = list(self.violations), list(self.regressions), self.npulls
        self.assertEqual(violations[:10], [], "%d of the pulls hit a broken answer" % len(violations))
        self.assertGreater(npulls, 100)
        served = {(s, r, t) for (s, r, t, _, _, o) in self.history if o is not None}
        for server in range(2):
            for repo, tag in universe[:5]:
                self.assertIn((server, repo, tag), served, "server %d never served %s:%s to a poller" % (
                    server, repo, tag))
            self.assertNotIn((server, "scale/never", "latest"), served)
        if SNAPSHOTS:
            self.assertEqual(regressions[:10], [], "a server went back after serving a newer state")
        if os.environ.get("CRANE_TEST_VERBOSE") or (regressions and not SNAPSHOTS):
            print("\n%d full pulls by the pollers (%d more interrupted by a republish or delete); convergence after the metadata write: %s; "
                  "%d answers older than one already served by the same server%s" % (
                      npulls, self.interrupted, ", ".join("%s %.2f s" % kv for kv in timings.items()), len(regressions),
                      "" if SNAPSHOTS else " (per-child indexes: reported, not asserted)"))

        if SKOPEO:
            self.skopeo_pull_from_each_server()

    def skopeo_pull_from_each_server(self):
        policy = os.path.join(self.work, "policy.json")
        with open(policy, "w") as f:
            f.write(POLICY)
        for server, h in enumerate(self.servers):
            dest = os.path.join(self.work, "pulled-%d" % server)
            cmd = [SKOPEO, "--policy", policy, "copy", "--src-tls-verify=false",
                   "docker://127.0.0.1:%d/scale/a:latest" % h.port, "dir:" + dest]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
            self.assertEqual(p.returncode, 0, "%s:\n%s\n%s" % (" ".join(cmd), p.stdout, p.stderr))
            with open(os.path.join(dest, "manifest.json"), "rb") as f:
                manifest = f.read()
            # skopeo picks this machine's instance of the republished list
            instances = {i.digest: i for i in self.images["m2"][0].images}
            self.assertIn(sha256(manifest), instances)
            for blob in instances[sha256(manifest)].blobs:
                with open(os.path.join(dest, blob[len("sha256:"):]), "rb") as f:
                    self.assertEqual(sha256(f.read()), blob)


if __name__ == "__main__":
    unittest.main()
