"""Reloading under load: keep-alive clients hammer repositories whose files
never change while other files are added, removed and rewritten (atomically
and in place, half-written for a moment) every 100-200 ms with
CranePollInterval 1. Every answer for a stable repo must be exact; the
churned repos must end up served as last written; the error log may only
hold the declared "skipped" lines for the half-written churn files."""

import hashlib
import http.client
import json
import os
import random
import re
import threading
import time
import unittest

from harness import Httpd, write_atomically, LIST, S2

SECONDS = float(os.environ.get("CRANE_RELOAD_LOAD_SECONDS", "10"))
# CRANE0102-0104: a bad metadata file (kept, withdrawn or never loaded)
CHURN_SKIPPED = r"CRANE010[234]: .*/churn/\S+\.json "
RELOADED = r"CRANE0106: "  # a reload's summary


def digest(*parts):
    return "sha256:" + hashlib.sha256(":".join(parts).encode()).hexdigest()


def v4_doc(repo_id, url):
    # "latest" is a manifest list whose amd64 image is schema 2; "1.0" a
    # manifest list with a schema 1 amd64 image; "2.0" plain schema 2; "old"
    # schema 1 only
    return {"version": 4, "repo-registry-id": repo_id, "repository": repo_id.replace("/", "-"), "url": url,
            "protected": False,
            "schema2_data": ["latest", "1.0", "2.0", digest(repo_id, "2.0")],
            "manifest_list_data": ["latest", "1.0", digest(repo_id, "list")],
            "manifest_list_amd64_tags": {"latest": [digest(repo_id, "latest"), 2],
                                         "1.0": [digest(repo_id, "1.0"), 1]}}


def v1_doc(repo_id, url, images, tags):
    return {"version": 1, "repo-registry-id": repo_id, "repository": repo_id.replace("/", "-"), "url": url,
            "images": [{"id": i} for i in images], "tags": tags}


def v4_expected(repo_id, url):
    """(path, Accept, status, Location, body) for one v4 repo."""
    d_latest, d_10, d_20 = digest(repo_id, "latest"), digest(repo_id, "1.0"), digest(repo_id, "2.0")
    m = "/v2/%s/manifests/" % repo_id
    return [
        ("/v2/%s/tags/list" % repo_id, None, 302, url + "tags/list", None),
        ("/v2/%s/blobs/%s" % (repo_id, d_20), None, 302, url + "blobs/" + d_20, None),
        (m + "latest", None, 302, url + "manifests/1/latest", None),
        (m + "latest", S2, 302, url + "manifests/2/" + d_latest, None),
        (m + "latest", LIST, 302, url + "manifests/list/latest", None),
        (m + "1.0", None, 302, url + "manifests/1/" + d_10, None),
        (m + "1.0", S2, 302, url + "manifests/1/" + d_10, None),
        (m + "2.0", S2, 302, url + "manifests/2/2.0", None),
        (m + "2.0", LIST, 302, url + "manifests/1/2.0", None),
        (m + "old", S2, 302, url + "manifests/1/old", None),
    ]


class ReloadUnderLoad(unittest.TestCase):
    CLIENTS = 4

    def setUp(self):
        self.h = Httpd(expect_log=[CHURN_SKIPPED])
        self.addCleanup(self.h.cleanup)
        self.rng = random.Random(1234)
        self.expected = []
        for i in range(12):
            repo_id = "stable/app-%d" % i if i % 3 else "stable-%d" % i
            url = "http://cdn.example.com/stable/%d/" % i
            self.write("stable/sub%d/s%d.json" % (i % 3, i) if i % 2 else "stable/s%d.json" % i,
                       v4_doc(repo_id, url))
            self.expected += v4_expected(repo_id, url)
        # two v1 repos share an image: it redirects to the one sorting first
        shared = "ab" * 32
        for i, (own, tags) in enumerate(((["c1" * 32], {"latest": shared}), (["d2" * 32], {"v1": "d2" * 32}))):
            repo_id = "stablev1/r%d" % i
            url = "http://cdn.example.com/v1stable/%d/" % i
            images = [shared] + own
            self.write("stable/v1_%d.json" % i, v1_doc(repo_id, url, images, tags))
            self.expected.append(("/v1/repositories/%s/tags" % repo_id, None, 200, None, tags))
            self.expected.append(("/v1/images/%s/json" % own[0], None, 302, url + own[0] + "/json", None))
        self.expected.append(("/v1/images/%s/ancestry" % shared, None, 302,
                              "http://cdn.example.com/v1stable/0/" + shared + "/ancestry", None))
        self.enterContext(self.h)  # stopped and its error log checked after the test

    def write(self, rel, doc, atomic=True, pause=0.0):
        path = os.path.join(self.h.data, rel)
        d = os.path.dirname(path)
        if not os.path.isdir(d):
            os.makedirs(d)
            while d != self.h.data:
                os.chmod(d, 0o755)
                d = os.path.dirname(d)
        text = json.dumps(doc)
        if atomic:
            write_atomically(path, text)
        else:
            with open(path, "w") as f:
                os.chmod(path, 0o644)
                half = len(text) // 2
                f.write(text[:half])
                f.flush()
                time.sleep(pause)  # a scan now sees a half-written file
                f.write(text[half:])

    # ---- the load ----

    def client(self, stop, stats, seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=10)
        try:
            while not stop.is_set():
                path, accept, status, location, body = rng.choice(self.expected)
                try:
                    conn.request("GET", path, headers={"Accept": accept} if accept else {})
                    r = conn.getresponse()
                    data = r.read()
                except (OSError, http.client.HTTPException) as e:
                    stats["bad"].append("%s: %r" % (path, e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=10)
                    continue
                ok = r.status == status and r.getheader("Location") == location
                if ok and body is not None:
                    ok = json.loads(data) == body
                stats["n"] += 1
                if not ok:
                    stats["bad"].append("%s (Accept %s): %d %s %r; expected %d %s" % (
                        path, accept, r.status, r.getheader("Location"), data[:100], status, location))
        finally:
            conn.close()

    def churn(self, stop, state):
        """Adds, removes and rewrites churn files; state["files"] is what
        the data dir holds at the end, state["removed"] the ids deleted."""
        files, removed = state["files"], state["removed"]
        n = 0
        ops = []
        while not stop.is_set():
            if not ops:
                ops = ["add", "add_in_place", "rewrite", "rewrite_in_place", "remove"]
                self.rng.shuffle(ops)
            op = ops.pop()
            if op.startswith("add") or not files:
                n += 1
                rel = "churn/%sc%04d.json" % (("d%d/" % (n % 4)) if n % 2 else "", n)
                repo_id = "churn/repo-%d" % n
                url = "http://cdn.example.com/churn/%04d/g%04d/" % (n, 0)
                self.write(rel, v4_doc(repo_id, url), atomic=(op != "add_in_place"),
                           pause=self.rng.uniform(0.02, 0.08))
                files[rel] = (repo_id, url, n, 0)
            elif op == "remove":
                rel = self.rng.choice(sorted(files))
                removed.add(files.pop(rel)[0])
                os.remove(os.path.join(self.h.data, rel))
            else:
                rel = self.rng.choice(sorted(files))
                repo_id, _, k, gen = files[rel]
                # same length as before: an in-place rewrite keeps the size
                url = "http://cdn.example.com/churn/%04d/g%04d/" % (k, gen + 1)
                self.write(rel, v4_doc(repo_id, url), atomic=(op == "rewrite"),
                           pause=self.rng.uniform(0.02, 0.08))
                files[rel] = (repo_id, url, k, gen + 1)
            state["ops"][op] = state["ops"].get(op, 0) + 1
            stop.wait(self.rng.uniform(0.1, 0.2))

    def fetch(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            return r.status, r.getheader("Location")
        finally:
            c.close()

    def test_stable_repos_answer_exactly_while_other_files_churn(self):
        stop = threading.Event()
        stats = [{"n": 0, "bad": []} for _ in range(self.CLIENTS)]
        state = {"files": {}, "removed": set(), "ops": {}}
        threads = [threading.Thread(target=self.client, args=(stop, stats[i], i)) for i in range(self.CLIENTS)]
        writer_stop = threading.Event()
        writer = threading.Thread(target=self.churn, args=(writer_stop, state))
        reloads_before = len(re.findall(RELOADED, self.h.log()))
        for t in threads + [writer]:
            t.start()
        try:
            time.sleep(SECONDS)
        finally:
            writer_stop.set()
            writer.join(30)
            stop.set()
            for t in threads:
                t.join(30)

        bad = [b for s in stats for b in s["bad"]]
        total = sum(s["n"] for s in stats)
        self.assertEqual(bad[:10], [], "%d of %d answers for stable repos were wrong" % (len(bad), total))
        self.assertGreater(total, 100)
        for op in ("add", "add_in_place", "rewrite", "rewrite_in_place", "remove"):
            self.assertGreater(state["ops"].get(op, 0), 0, state["ops"])
        self.assertGreater(len(re.findall(RELOADED, self.h.log())) - reloads_before, 3,
                           "the children did not reload while files changed")

        # every child ends up with the last state: present files served with
        # their last URL, removed ones gone (fresh connections, several clean
        # passes in a row since prefork children reload one by one)
        want = [("/v2/%s/tags/list" % repo_id, 302, url + "tags/list")
                for repo_id, url, _, _ in state["files"].values()]
        want += [("/v2/%s/tags/list" % repo_id, 404, None) for repo_id in sorted(state["removed"])]
        self.assertTrue(state["removed"])
        deadline = time.time() + 30
        clean = 0
        wrong = []
        while clean < 3 and time.time() < deadline:
            wrong = []
            for path, status, location in want:
                got = self.fetch(path)
                if got != (status, location):
                    wrong.append("%s: %s, expected %s" % (path, got, (status, location)))
            clean = clean + 1 if not wrong else 0
            if wrong:
                time.sleep(0.2)
        self.assertEqual(wrong[:10], [], "the last state was not served within 30 s")
        if os.environ.get("CRANE_TEST_VERBOSE"):
            log = self.h.log()
            print("\n%d answers for stable repos, writer %s, %d reloads and %d 'skipped' lines logged, "
                  "%d churn repos checked at the end" % (
                      total, state["ops"], len(re.findall(RELOADED, log)) - reloads_before,
                      len(re.findall(CHURN_SKIPPED, log)), len(want)))


if __name__ == "__main__":
    unittest.main()
