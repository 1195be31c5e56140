#!/usr/bin/env python3
"""Reload soak: wrk hammers "stable" repositories of a real httpd running
mod_crane with CranePollInterval 1 while a writer keeps adding, removing and
rewriting other ("churn") repositories every few hundred ms, both atomically
(temp file + rename) and in place (open/truncate/write, with a pause in the
middle so scans see half-written files). The stable files are never touched.

Fails when:
  - wrk sees any non-2xx/3xx answer, a socket error, or a redirect whose
    Location is not one of the expected ones (checked in wrk's Lua);
  - the keep-alive checker threads see any answer for a stable repo that is
    not the exact expected status + Location (with Accept variations);
  - after the writer stops, a churn repo that exists is not served with its
    last content, or a removed one is still served;
  - the error log holds an [error]/[warn]/[crit]/... line other than the
    expected "metadata file .../churn/... skipped" ones, or a crash (segfault
    / "exit signal" lines), or the set of child pids changes;
and reports every child's RSS at the end of the warm-up vs at the end (and
the series for two children). RSS growth is reported, not failed on: with a
reload every second glibc's heap fragments for the first ~1000 reloads
(malloc's bytes in use stay flat) before it levels off, so a 60 s run sees
some growth without a leak.

    bench/soak.py [--duration 60] [--mpm event|prefork] [--stable 200]
                  [--churn 300] [--warmup 10] [--sample 3]
                  [--min-ms 100 --max-ms 400] [--env MALLOC_ARENA_MAX=1]

Uses tests/integration/harness.py (127.0.0.1, a free port); needs wrk.
The last line is "RESULT {json}".
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
sys.path.insert(0, HERE)
from harness import Httpd, write_atomically  # noqa: E402
import gen_metadata  # noqa: E402
from index_rss import children_of, rollup  # noqa: E402

S2 = "application/vnd.docker.distribution.manifest.v2+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CRASH = re.compile(r"(Segmentation fault|exit signal|AH00052|AH00060|AH02818|core dumped|terminate called|"
                   r"double free|corrupted|Aborted)")
EXPECTED_LOG = r"metadata file \S*/churn/\S+\.json skipped: "

LUA = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  paths = {}
  expect = {}
  for line in io.lines(args[1]) do
    local p, loc = line:match("^(%S+)\t(%S+)$")
    if p then
      paths[#paths + 1] = p
      expect[loc] = true
    end
  end
  idx = (id * 7919) % #paths
  bad_status = 0
  bad_location = 0
  sample = ""
end
function request()
  idx = idx % #paths + 1
  return wrk.format("GET", paths[idx])
end
function response(status, headers, body)
  if status >= 300 and status < 400 then
    local loc = headers["Location"]
    if loc == nil or not expect[loc] then
      bad_location = bad_location + 1
      if sample == "" then sample = "Location " .. tostring(loc) end
    end
  elseif status < 200 or status >= 400 then
    bad_status = bad_status + 1
    if sample == "" then sample = "status " .. status end
  end
end
function done(summary, latency, requests)
  local bs, bl, smp = 0, 0, ""
  for _, t in ipairs(threads) do
    bs = bs + t:get("bad_status")
    bl = bl + t:get("bad_location")
    local s = t:get("sample")
    if smp == "" and s ~= "" then smp = s end
  end
  io.write(string.format("LUA bad_status=%d bad_location=%d sample=%s\n", bs, bl, smp))
end
"""


# ---- what a stable repo must answer ----

def v4_expectations(doc):
    """(path, accept or None, status, Location) for a version-4 document."""
    name, url = doc["repo-registry-id"], doc["url"]
    amd64 = doc["manifest_list_amd64_tags"]
    s2 = set(doc["schema2_data"])
    lists = set(doc["manifest_list_data"])
    out = [("/v2/%s/tags/list" % name, None, 302, url + "tags/list")]
    tags = [t for t in doc["schema2_data"] if not t.startswith("sha256:")]
    for tag in tags[:4]:
        for accept in (None, S2, LIST):
            if accept == LIST and tag in lists:
                path = "list/" + tag
            elif tag in amd64:
                d, v = amd64[tag]
                path = ("%d/%s" % (v, d)) if accept == S2 else ("1/" + d if v == 1 else "1/" + tag)
            elif accept == S2 and tag in s2:
                path = "2/" + tag
            else:
                path = "1/" + tag
            out.append(("/v2/%s/manifests/%s" % (name, tag), accept, 302, url + "manifests/" + path))
    digest = doc["schema2_data"][1]
    out.append(("/v2/%s/blobs/%s" % (name, digest), None, 302, url + "blobs/" + digest))
    return out


def v1_expectations(docs):
    """/v1/images redirects go to the first readable repo (sorted by id)
    holding the image; tags answer 200."""
    holders = {}
    for doc in sorted(docs, key=lambda d: d["repo-registry-id"]):
        if doc["protected"]:
            continue
        for img in doc["images"]:
            holders.setdefault(img["id"], doc)
    out = []
    for doc in docs:
        if doc["protected"]:
            continue
        out.append(("/v1/repositories/%s/tags" % doc["repo-registry-id"], None, 200, None))
        for img in [i["id"] for i in doc["images"]][:2]:
            first = holders[img]
            out.append(("/v1/images/%s/json" % img, None, 302, first["url"] + img + "/json"))
    return out


# ---- the writer ----

class Writer(threading.Thread):
    """Adds, removes and rewrites churn repos under DATA/churn/."""

    def __init__(self, root, target, seed, min_ms, max_ms):
        super().__init__(daemon=True)
        self.root = root
        self.target = target
        self.rng = random.Random(seed)
        self.min_ms, self.max_ms = min_ms, max_ms
        self.stop = threading.Event()
        self.files = {}  # relative path -> (id, version, url)
        self.removed = {}  # id -> version (ids never come back)
        self.counter = 0
        self.dirs = ["churn"]
        self.ops = {}
        self.error = None
        os.makedirs(os.path.join(root, "churn"), exist_ok=True)
        os.chmod(os.path.join(root, "churn"), 0o755)

    def count(self, op):
        self.ops[op] = self.ops.get(op, 0) + 1

    def doc(self, repo_id, version, url):
        tags = gen_metadata.tag_list(repo_id, 20, self.rng)
        if version == 1:
            return gen_metadata.v1_doc(repo_id, tags, url=url, family="churn-" + repo_id)
        return gen_metadata.v4_doc(repo_id, tags, url=url)

    def write(self, rel, doc, atomic):
        path = os.path.join(self.root, rel)
        text = json.dumps(doc)
        if atomic:
            write_atomically(path, text)
            self.count("atomic")
        else:
            # truncate, write half, pause, write the rest: a scan in between
            # sees a half-written file (logged as skipped, last content kept)
            with open(path, "w") as f:
                os.chmod(path, 0o644)
                half = self.rng.randrange(1, len(text))
                f.write(text[:half])
                f.flush()
                time.sleep(self.rng.uniform(0.02, 0.15))
                f.write(text[half:])
            self.count("in_place")

    def url(self, n, gen):
        # same length on every rewrite: in-place rewrites are often same-size
        return "https://cdn.example.com/churn/%06d/g%06d/" % (n, gen)

    def add(self):
        self.counter += 1
        n = self.counter
        version = 1 if self.rng.random() < 0.1 else 4
        repo_id = ("churnv1/app-%d" if version == 1 else "churn/team-%d/app") % n
        if self.rng.random() < 0.05 and len(self.dirs) < 40:
            d = os.path.join("churn", "d%02d" % len(self.dirs), "sub")
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
            os.chmod(os.path.join(self.root, os.path.dirname(d)), 0o755)
            os.chmod(os.path.join(self.root, d), 0o755)
            self.dirs.append(d)
            self.count("mkdir")
        rel = os.path.join(self.rng.choice(self.dirs), "c%06d.json" % n)
        url = self.url(n, 0)
        self.write(rel, self.doc(repo_id, version, url), self.rng.random() < 0.5)
        self.files[rel] = (repo_id, version, url, n, 0)
        self.count("add")

    def remove(self):
        rel = self.rng.choice(sorted(self.files))
        repo_id, version, _, _, _ = self.files.pop(rel)
        os.remove(os.path.join(self.root, rel))
        self.removed[repo_id] = version
        self.count("remove")

    def rewrite(self):
        rel = self.rng.choice(sorted(self.files))
        repo_id, version, _, n, gen = self.files[rel]
        url = self.url(n, gen + 1)
        self.write(rel, self.doc(repo_id, version, url), self.rng.random() < 0.5)
        self.files[rel] = (repo_id, version, url, n, gen + 1)
        self.count("rewrite")

    def populate(self):
        for _ in range(self.target):
            self.add()
        self.ops.clear()

    def run(self):
        try:
            while not self.stop.wait(self.rng.uniform(self.min_ms, self.max_ms) / 1000.0):
                # as many adds as removes: the number of repos stays near
                # the target, so RSS figures compare like with like
                r = self.rng.random()
                if r < 0.5 and (len(self.files) < self.target or (r < 0.25 and len(self.files) == self.target)):
                    self.add()
                elif r < 0.5:
                    self.remove()
                else:
                    self.rewrite()
                # a burst now and then: several files within one poll interval
                if self.rng.random() < 0.1:
                    for _ in range(self.rng.randrange(2, 8)):
                        self.rewrite() if self.files else self.add()
        except Exception as e:  # reported, fails the run
            self.error = repr(e)


# ---- clients ----

class Checker(threading.Thread):
    """Keep-alive http.client requests; every answer must be exact."""

    def __init__(self, port, expectations, stop, seed):
        super().__init__(daemon=True)
        self.port = port
        self.exp = expectations
        self.stop = stop
        self.rng = random.Random(seed)
        self.requests = 0
        self.failures = []
        self.mismatches = 0
        self.errors = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            path, accept, status, location = self.rng.choice(self.exp)
            headers = {"Accept": accept} if accept else {}
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors += 1
                if len(self.failures) < 10:
                    self.failures.append("%s: %r" % (path, e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.requests += 1
            if r.status != status or (location and r.getheader("Location") != location):
                self.mismatches += 1
                if len(self.failures) < 10:
                    self.failures.append("%s (Accept %s): %d %s, expected %d %s" % (
                        path, accept, r.status, r.getheader("Location"), status, location))
        conn.close()


class Sampler(threading.Thread):
    def __init__(self, parent, every, stop):
        super().__init__(daemon=True)
        self.parent = parent
        self.every = every
        self.stop = stop
        self.samples = []  # (t, {pid: rollup})
        self.pid_sets = []

    def take(self):
        snap = {}
        for pid in children_of(self.parent):
            try:
                snap[pid] = rollup(pid)
            except OSError:
                pass
        try:
            snap["parent"] = rollup(self.parent)
        except OSError:
            pass
        self.samples.append((time.time(), snap))
        self.pid_sets.append(tuple(sorted(p for p in snap if p != "parent")))

    def run(self):
        while not self.stop.wait(self.every):
            self.take()


def fetch(port, path, accept=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Accept": accept} if accept else {})
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    finally:
        c.close()


def final_check(port, writer, timeout=40, passes=3):
    """After the writer stopped: every churn repo that exists is served with
    its final URL, removed ones answer 404; `passes` clean passes in a row
    over fresh connections (prefork children reload one by one)."""
    want = []
    for rel, (repo_id, version, url, _, _) in sorted(writer.files.items()):
        if version == 1:
            want.append(("/v1/repositories/%s/tags" % repo_id, 200, None))
        else:
            want.append(("/v2/%s/tags/list" % repo_id, 302, url + "tags/list"))
    gone = sorted(writer.removed.items())
    rng = random.Random(3)
    for repo_id, version in rng.sample(gone, min(len(gone), 150)):
        want.append((("/v1/repositories/%s/tags" if version == 1 else "/v2/%s/tags/list") % repo_id, 404, None))
    deadline = time.time() + timeout
    clean = 0
    last_bad = []
    t0 = time.time()
    while time.time() < deadline:
        last_bad = []
        for path, status, loc in want:
            s, l = fetch(port, path)
            if s != status or (loc and l != loc):
                last_bad.append("%s: %d %s, expected %d %s" % (path, s, l, status, loc))
        clean = clean + 1 if not last_bad else 0
        if clean >= passes:
            return {"ok": True, "checked": len(want), "seconds": round(time.time() - t0, 1)}
        time.sleep(0.3)
    return {"ok": False, "checked": len(want), "bad": last_bad[:10]}


def parse_wrk(text):
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"LUA bad_status=(\d+) bad_location=(\d+) sample=(.*)", text)
    if m:
        out["lua_bad_status"], out["lua_bad_location"] = int(m.group(1)), int(m.group(2))
        out["lua_sample"] = m.group(3)
    for p in ("50", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, text, re.M)
        if m:
            out["p" + p] = m.group(1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--mpm", default="event", choices=("event", "prefork", "worker"))
    ap.add_argument("--stable", type=int, default=200)
    ap.add_argument("--churn", type=int, default=300)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--sample", type=float, default=3)
    ap.add_argument("--min-ms", type=float, default=100)
    ap.add_argument("--max-ms", type=float, default=400)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--wrk-connections", type=int, default=4)
    ap.add_argument("--checkers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for httpd, e.g. MALLOC_ARENA_MAX=1 (repeatable)")
    args = ap.parse_args()
    if not 5 <= args.duration <= 3600:
        ap.error("--duration must be 5..3600 s")
    if args.churn < 1 or args.stable < 10:
        ap.error("--churn must be >= 1 and --stable >= 10")
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is needed (apt-get install wrk)")

    if args.mpm == "prefork":
        # a fixed set of children (no spawning, no idle kills): any pid change is a crash
        n = args.wrk_connections + args.checkers + 2
        conf = ("StartServers {n}\nMinSpareServers 1\nMaxSpareServers {n}\nServerLimit {n}\n"
                "MaxRequestWorkers {n}\nMaxConnectionsPerChild 0").format(n=n)
    else:
        conf = "MaxConnectionsPerChild 0"
    env = dict(e.split("=", 1) for e in args.env)
    h = Httpd(mpm=args.mpm, conf=conf, expect_log=[EXPECTED_LOG], loglevel="info", env=env)
    result = {"mpm": args.mpm, "duration": args.duration, "env": env, "failures": []}
    fail = result["failures"]
    try:
        # stable repos: written once, long before the server starts serving
        stable_dir = os.path.join(h.data, "stable")
        entries = gen_metadata.generate(stable_dir, args.stable, v1_fraction=0.1, subdirs=4, seed=args.seed)
        docs = []
        for e in entries:
            with open(os.path.join(stable_dir, e["file"])) as f:
                docs.append(json.load(f))
        exp = []
        for d in docs:
            if d["version"] == 4 and not d["protected"]:
                exp += v4_expectations(d)
        exp += v1_expectations([d for d in docs if d["version"] == 1])
        writer = Writer(h.data, args.churn, args.seed, args.min_ms, args.max_ms)
        writer.populate()

        work = h.dir
        paths_file = os.path.join(work, "wrk-paths.txt")
        with open(paths_file, "w") as f:
            for path, accept, status, loc in exp:
                if accept is None and status == 302:
                    f.write("%s\t%s\n" % (path, loc))
        lua = os.path.join(work, "soak.lua")
        with open(lua, "w") as f:
            f.write(LUA)

        h.start(timeout=60)
        want_kids = (args.wrk_connections + args.checkers + 2) if args.mpm == "prefork" else 2
        deadline = time.time() + 30
        while len(children_of(h.proc.pid)) < want_kids and time.time() < deadline:
            time.sleep(0.2)
        for path, accept, status, loc in exp[:40]:
            s, l = fetch(h.port, path, accept)
            if s != status or (loc and l != loc):
                raise SystemExit("before the soak: %s answered %d %s, expected %d %s" % (path, s, l, status, loc))

        stop = threading.Event()
        sampler = Sampler(h.proc.pid, args.sample, stop)
        sampler.take()
        start_pids = sampler.pid_sets[0]
        checkers = [Checker(h.port, exp, stop, args.seed + i) for i in range(args.checkers)]
        t_start = time.time()
        writer.start()
        sampler.start()
        for c in checkers:
            c.start()
        cmd = [wrk, "-t%d" % args.wrk_threads, "-c%d" % args.wrk_connections, "-d%ds" % args.duration,
               "--latency", "-s", lua, h.url("/"), "--", paths_file]
        print("$ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
        wrk_out = p.stdout + p.stderr
        print(wrk_out)
        t_end = time.time()
        sampler.take()
        stop.set()
        writer.stop.set()
        writer.join(10)
        for c in checkers:
            c.join(15)
        sampler.join(10)

        w = parse_wrk(wrk_out)
        result["wrk"] = w
        if p.returncode != 0 or "requests" not in w:
            fail.append("wrk failed (rc %d)" % p.returncode)
        if w.get("non_2xx_3xx"):
            fail.append("wrk: %d non-2xx/3xx answers" % w["non_2xx_3xx"])
        if any(w.get("socket_errors", {}).values()):
            fail.append("wrk socket errors: %s" % w["socket_errors"])
        if w.get("lua_bad_status") or w.get("lua_bad_location"):
            fail.append("wrk lua: %d bad statuses, %d unexpected Locations (%s)" % (
                w["lua_bad_status"], w["lua_bad_location"], w.get("lua_sample")))
        result["checker"] = {"requests": sum(c.requests for c in checkers),
                             "mismatches": sum(c.mismatches for c in checkers),
                             "connection_errors": sum(c.errors for c in checkers)}
        for c in checkers:
            for f_ in c.failures[:5]:
                fail.append("checker: " + f_)
        if writer.error:
            fail.append("writer: " + writer.error)
        result["writer_ops"] = dict(writer.ops)
        result["churn_files_at_end"] = len(writer.files)

        # RSS: first sample after the warm-up vs the last one
        warm = [s for s in sampler.samples if s[0] >= t_start + args.warmup] or sampler.samples
        first, last = warm[0][1], sampler.samples[-1][1]
        rss = {}
        for pid in start_pids:
            if pid in first and pid in last:
                series = [s[1][pid]["VmRSS"] for s in warm if pid in s[1]]
                rss[str(pid)] = {"warm": first[pid]["VmRSS"], "end": last[pid]["VmRSS"], "max": max(series),
                                 "series": series,
                                 "pss_warm": first[pid]["Pss"], "pss_end": last[pid]["Pss"],
                                 "private_warm": first[pid]["Private_Dirty"] + first[pid]["Private_Clean"],
                                 "private_end": last[pid]["Private_Dirty"] + last[pid]["Private_Clean"]}
        result["rss_kib"] = rss
        if "parent" in first and "parent" in last:
            result["parent_rss_kib"] = {"warm": first["parent"]["VmRSS"], "end": last["parent"]["VmRSS"]}
        result["samples"] = len(sampler.samples)
        changed = sorted(set(x for s in sampler.pid_sets for x in s) ^ set(start_pids))
        if changed or any(s != start_pids for s in sampler.pid_sets):
            fail.append("child pids changed: start %s, seen %s" % (list(start_pids), changed))

        fc = final_check(h.port, writer)
        result["final_check"] = fc
        if not fc["ok"]:
            fail.append("final state not served: %s" % fc.get("bad"))
    finally:
        log = h.log() + h.read(h.stderr_path)
        bad = h.stop()
        result["reloads_logged"] = len(re.findall(r"metadata loaded from", log))
        result["skipped_lines"] = len(re.findall(EXPECTED_LOG, log))
        crashes = [l for l in log.splitlines() if CRASH.search(l)]
        result["crash_lines"] = crashes[:10]
        result["unexpected_log_lines"] = bad[:20]
        if crashes:
            fail.append("crash lines in the error log: %s" % crashes[:5])
        if bad:
            fail.append("%d unexpected error-log lines, e.g. %s" % (len(bad), bad[:5]))
        h.cleanup()

    print("== soak %s, %d s ==" % (args.mpm, args.duration))
    w = result.get("wrk", {})
    print("wrk: %s requests (%.0f/s), non-2xx/3xx %s, socket errors %s, latency p50 %s p99 %s" % (
        w.get("requests"), w.get("rps", 0), w.get("non_2xx_3xx"), w.get("socket_errors"), w.get("p50"),
        w.get("p99")))
    print("wrk lua: bad statuses %s, unexpected Locations %s" % (w.get("lua_bad_status"), w.get("lua_bad_location")))
    print("checker (keep-alive, exact Location, Accept variations): %s" % result.get("checker"))
    print("writer: %s; churn files at end %s" % (result.get("writer_ops"), result.get("churn_files_at_end")))
    print("reloads logged (all children): %d; expected 'skipped' lines: %d" % (
        result["reloads_logged"], result["skipped_lines"]))
    print("final state check: %s" % result.get("final_check"))
    if "parent_rss_kib" in result:
        print("parent VmRSS KiB: warm %(warm)d end %(end)d" % result["parent_rss_kib"])
    for pid, r in sorted(result.get("rss_kib", {}).items()):
        print("child %s VmRSS KiB: after warm-up %d, end %d (%+d), max %d; private %d -> %d; Pss %d -> %d" % (
            pid, r["warm"], r["end"], r["end"] - r["warm"], r["max"], r["private_warm"], r["private_end"],
            r["pss_warm"], r["pss_end"]))
    for pid, r in sorted(result.get("rss_kib", {}).items())[:2]:
        print("child %s VmRSS every %g s after the warm-up: %s" % (pid, args.sample, " ".join(map(str, r["series"]))))
    print("RESULT " + json.dumps(result))
    if fail:
        print("FAILED:\n  " + "\n  ".join(fail))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
