#!/usr/bin/env python3
"""Memory of a real httpd serving one metadata data dir: the parent loads the
index in post_config, the children inherit it over fork. Prints the RSS of
the parent and of every child and the children's shared vs private memory
(/proc/PID/smaps_rollup), first when the children have not reloaded yet
(the index is shared copy-on-write), then after one file was touched and
every child reloaded on its own.

    bench/index_rss.py --data DIR [--mpm event|prefork] [--children 4]
                       [--manifest FILE] [--json]

Uses tests/integration/harness.py (httpd on 127.0.0.1, a free port,
CranePollInterval 1 through a crane.ini naming DIR). The data dir must be
readable by the httpd children's user (www-data when run as root).
The last line is "RESULT {json}".
"""

import argparse
import http.client
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from harness import Httpd, children_of  # noqa: E402

FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Anonymous")


def rollup(pid):
    """KiB figures from /proc/PID/smaps_rollup (and VmRSS from status)."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m and m.group(1) in FIELDS:
                out[m.group(1)] = int(m.group(2))
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["VmRSS"] = int(line.split()[1])
    return out



def snapshot(parent):
    snap = {"parent": dict(pid=parent, **rollup(parent)), "children": []}
    for pid in children_of(parent):
        try:
            snap["children"].append(dict(pid=pid, **rollup(pid)))
        except OSError:
            pass
    return snap


def print_snapshot(title, snap):
    print("\n" + title)
    cols = ("VmRSS", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")
    print("  %-14s" % "process" + "".join("%15s" % c for c in cols) + "   (KiB)")
    rows = [("parent %d" % snap["parent"]["pid"], snap["parent"])] + \
        [("child %d" % c["pid"], c) for c in snap["children"]]
    for label, r in rows:
        print("  %-14s" % label + "".join("%15d" % r.get(c, -1) for c in cols))
    total_pss = sum(r.get("Pss", 0) for _, r in rows)
    print("  sum of Pss over all httpd processes: %d KiB" % total_pss)


def loaded_count(h):
    return len(re.findall(r"metadata loaded from", h.log()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--mpm", default="event", choices=("event", "prefork", "worker"))
    ap.add_argument("--children", type=int, default=4, help="prefork children (event/worker: 2)")
    ap.add_argument("--manifest", help="gen_metadata.py manifest: requests go to its first repos")
    ap.add_argument("--start-timeout", type=float, default=300)
    ap.add_argument("--reload-timeout", type=float, default=180)
    args = ap.parse_args()
    data = os.path.abspath(args.data)

    conf = ""
    want_children = 2
    if args.mpm == "prefork":
        want_children = args.children
        conf = "StartServers %d\nMinSpareServers %d\nMaxSpareServers %d\nMaxRequestWorkers %d\n" \
               "MaxConnectionsPerChild 0" % (args.children, args.children, args.children + 1,
                                            max(10, args.children + 2))
    ini = "[general]\ndata_dir: %s\ndata_dir_polling_interval: 1\n" % data
    h = Httpd(crane_ini=ini, mpm=args.mpm, conf=conf, loglevel="info")
    paths = ["/v2/"]
    if args.manifest:
        with open(args.manifest) as f:
            for line in f:
                e = json.loads(line)
                if e["version"] == 4 and not e["protected"]:
                    paths.append("/v2/%s/manifests/latest" % e["id"])
                if len(paths) > 50:
                    break
    result = {"mpm": args.mpm, "data": data}
    try:
        t0 = time.time()
        h.start(timeout=args.start_timeout)
        # httpd listens before post_config has loaded the index: time the first answer
        c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=args.start_timeout)
        c.request("GET", "/v2/")
        c.getresponse().read()
        c.close()
        result["ready_s"] = round(time.time() - t0, 2)
        deadline = time.time() + 60
        while len(children_of(h.proc.pid)) < want_children and time.time() < deadline:
            time.sleep(0.2)
        # some traffic on fresh connections so several children serve requests
        for i in range(40):
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
            c.request("GET", paths[i % len(paths)])
            r = c.getresponse()
            r.read()
            c.close()
            if r.status not in (200, 302):
                raise SystemExit("GET %s answered %d" % (paths[i % len(paths)], r.status))
        # let every child's watcher run its first (no change) poll
        time.sleep(2.5)
        before = snapshot(h.proc.pid)
        print_snapshot("%s, %d children, first answer %.1f s after start, before any child reload "
                       "(index inherited from the parent):" % (args.mpm, len(before["children"]), result["ready_s"]),
                       before)

        # one changed file: every child re-parses it and builds its own index
        victim = None
        for root, _, files in os.walk(data):
            for name in sorted(files):
                if name.endswith(".json"):
                    victim = os.path.join(root, name)
                    break
            if victim:
                break
        n0 = loaded_count(h)
        nkids = len(before["children"])
        t1 = time.time()
        os.utime(victim)
        deadline = time.time() + args.reload_timeout
        while loaded_count(h) < n0 + nkids and time.time() < deadline:
            time.sleep(0.1)
        reloads_seen = loaded_count(h) - n0
        result["reload_wait_s"] = round(time.time() - t1, 2)
        time.sleep(0.5)
        after = snapshot(h.proc.pid)
        print_snapshot("after touching %s: %d child reloads seen in %.1f s (poll interval 1 s):"
                       % (os.path.relpath(victim, data), reloads_seen, result["reload_wait_s"]), after)
        result["before"] = before
        result["after"] = after
        result["child_reloads_seen"] = reloads_seen
    finally:
        bad = h.stop()
        result["unexpected_log_lines"] = bad
        if bad:
            print("unexpected error-log lines:\n  " + "\n  ".join(bad[:20]))
        h.cleanup()
    print("RESULT " + json.dumps(result))
    return 1 if result["unexpected_log_lines"] else 0


if __name__ == "__main__":
    sys.exit(main())
