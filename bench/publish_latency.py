#!/usr/bin/env python3
"""Publish-to-pull latency: a real httpd (bench/snapshot_bench.py's Server:
apache2 on 127.0.0.1, the generated data dir of N repositories, 20 tags,
v4 with 5% v1, 16 subdirectories) with prefork and exactly --children
children; one keep-alive connection per child (prefork gives each open
connection a child of its own, so the connections are the children).

  one   a metadata file gets a new tag (temp file + rename, as a publisher
        writes); time from the rename until every child redirects the new
        tag to its schema 2 manifest (each connection asked in turn, every
        10 ms); --rounds rounds, median and max
  many  100 files get a new tag each; time from the last rename until every
        child answers for the last one written (generations only grow, so
        the earlier ones are in by then: checked once at the end)

    bench/publish_latency.py [--repos 10000] [--children 16] [--rounds 5]
        [--poll 60] [--mpm prefork]

The poll interval stays long (--poll): with notification the figures do not
depend on it; a module without notification (CRANE_MODULE=... of an older
build) shows the poll. Changed files are restored at the end. The last line
is "RESULT {json}".
"""

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import snapshot_bench as sb  # noqa: E402

S2 = sb.S2


class Children:
    def __init__(self, port, n):
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(n)]
        for c in self.conns:
            c.connect()
        for c in self.conns:
            self.ask(c, "/v2/")

    @staticmethod
    def ask(conn, path):
        conn.request("GET", path, headers={"Accept": S2})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location") or ""

    def until_all(self, path, t0, timeout):
        """Seconds from t0 until every connection redirected path to a schema 2 manifest."""
        pending = list(self.conns)
        while pending and time.time() - t0 < timeout:
            for c in list(pending):
                status, location = self.ask(c, path)
                if status == 302 and "/manifests/2/" in location:
                    pending.remove(c)
            if pending:
                time.sleep(0.01)
        return None if pending else time.time() - t0

    def close(self):
        for c in self.conns:
            c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", type=int, default=10000)
    ap.add_argument("--children", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--poll", type=int, default=60)
    ap.add_argument("--mpm", default="prefork")
    ap.add_argument("--skip-many", action="store_true")
    opts = ap.parse_args()
    ds = sb.Dataset(opts.repos)
    extra = sb.prefork_conf(opts.children) + "KeepAliveTimeout 600\nMaxKeepAliveRequests 0\n"
    if opts.mpm != "prefork":
        extra = "KeepAliveTimeout 600\nMaxKeepAliveRequests 0\n"
    server = sb.Server(ds.data, opts.mpm, opts.poll, extra_conf=extra, loglevel="info")
    res = {"repos": opts.repos, "children": opts.children, "mpm": opts.mpm, "poll_s": opts.poll}
    try:
        t = time.time()
        server.start()
        res["ready_s"] = round(time.time() - t, 2)
        # the watchdog child takes its role (and scans once) after start-up
        deadline = time.time() + 120
        while time.time() < deadline and int(server.status().get(0, {}).get("Scans", "0")) < 2:
            time.sleep(0.1)
        res["change_notice"] = server.status().get(0, {}).get("ChangeNotice", "n/a")
        kids = Children(server.port, opts.children)
        timeout = opts.poll + 30
        one = []
        for k in range(opts.rounds):
            e = ds.v4[(1000 + 37 * k) % len(ds.v4)]
            tag = "pub-%d-%d" % (int(time.time()), k)
            ds.add_tag([e], tag)  # returns once renamed into place
            t0 = time.time()
            one.append(kids.until_all(sb.manifest_path(e, tag), t0, timeout))
            sb.log("one file, round %d: %s s" % (k, one[-1]))
            time.sleep(0.3)
        ok = [x for x in one if x is not None]
        res["one_file_ms"] = {"median": round(1000 * statistics.median(ok), 1) if ok else None,
                              "max": round(1000 * max(ok), 1) if ok else None,
                              "rounds": [None if x is None else round(1000 * x, 1) for x in one]}
        if not opts.skip_many:
            entries = ds.v4[3000:3100] if len(ds.v4) >= 3100 else ds.v4[-100:]
            tag = "many-%d" % int(time.time())
            ds.add_tag(entries, tag)
            t0 = time.time()
            took = kids.until_all(sb.manifest_path(entries[-1], tag), t0, timeout)
            missing = [e["id"] for e in entries
                       if Children.ask(kids.conns[0], sb.manifest_path(e, tag))[0] != 302]
            res["hundred_files_ms"] = None if took is None else round(1000 * took, 1)
            res["hundred_missing_after"] = len(missing)
            sb.log("100 files: %s s, %d missing after" % (took, len(missing)))
        st = server.status().get(0, {})
        res["last_scan_duration_s"] = st.get("LastScanDuration")
        kids.close()
        # the builds' own account of their steps (CRANE0106: scan, parse, build, write)
        with open(server.h.error_log, errors="replace") as f:
            steps = re.findall(r"CRANE0106: .*?(\d+) parsed.*?; scan (\d+) ms, parse (\d+) ms, build (\d+) ms, write (\d+) ms", f.read())
        res["builds"] = [{"parsed": int(p), "scan_ms": int(a), "parse_ms": int(b), "build_ms": int(c), "write_ms": int(d)}
                         for p, a, b, c, d in steps[-(opts.rounds + 2):]]
    finally:
        ds.restore()
        bad = server.stop()
        if bad:
            sb.log("unexpected log lines: %s" % bad[:5])
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    main()
