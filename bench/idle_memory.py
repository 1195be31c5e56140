#!/usr/bin/env python3
"""Index memory of a quiet server across publishes: a real httpd with
mod_crane (prefork with N children, or event), a data dir of generated
repositories (bench/gen_metadata.py), CranePollInterval 1. Three rewrites of
ten files, `--gap` seconds apart, with no request in between; the sum of Pss
over every httpd process (parent and children) is taken before the rewrites
and after them, and the same for a server with an empty data dir started
the same way: the difference is what the index costs the whole server.
Also printed: the Pss of the snapshot mappings alone (smaps entries of
files in CraneSnapshotDir, the unlinked old generations included) and the
snapshot file's size, so the figure can be compared with one snapshot, and
the peak of the same sum sampled every --sample seconds during the rounds
(a build's own memory and the moments before every child moved on).

    bench/idle_memory.py [--mpm prefork|event] [--children 8] [--repos 10000]
                         [--data DIR] [--rounds 3] [--files 10] [--gap 4]
                         [--sample 0.05]

--data reuses a generated tree (else one is generated in a temp dir).
CRANE_MODULE picks the mod_crane.so (tests/integration/harness.py).
The last line is "RESULT {json}".
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
sys.path.insert(0, HERE)
from harness import Httpd, children_of, write_atomically  # noqa: E402
import gen_metadata  # noqa: E402



def smaps_figures(pid, snap_dir):
    """(Pss of the process, Pss of its snapshot mappings, snapshot mappings) in KiB."""
    total = snap = 0
    maps = []
    current = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$", line)
            if m:
                path = m.group(1)
                current = path if path.startswith(snap_dir + "/") else None
                if current:
                    maps.append(current)
                continue
            m = re.match(r"Pss:\s+(\d+) kB", line)
            if m:
                total += int(m.group(1))
                if current:
                    snap += int(m.group(1))
    return total, snap, maps


def measure(h, snap_dir):
    pids = [h.proc.pid] + children_of(h.proc.pid)
    out = {"processes": len(pids), "pss_kib": 0, "snapshot_pss_kib": 0, "old_mappings": 0, "per_child": [],
           "pss_anon_kib": 0}
    for pid in pids:
        try:
            total, snap, maps = smaps_figures(pid, snap_dir)
            with open("/proc/%d/smaps_rollup" % pid) as f:
                anon = int(re.search(r"^Pss_Anon:\s+(\d+) kB", f.read(), re.M).group(1))
        except OSError:
            continue
        out["pss_anon_kib"] += anon
        out["pss_kib"] += total
        out["snapshot_pss_kib"] += snap
        old = sum(1 for p in maps if p.endswith("(deleted)"))
        out["old_mappings"] += old
        if pid != h.proc.pid:
            out["per_child"].append({"pid": pid, "pss_kib": total, "pss_anon_kib": anon, "snapshot_pss_kib": snap,
                                     "old_mappings": old})
    return out


def wait_children(h, want, timeout=60):
    deadline = time.time() + timeout
    while len(children_of(h.proc.pid)) < want and time.time() < deadline:
        time.sleep(0.2)


def rewrite(data, files, round_no):
    """Rewrites `files` generated files atomically (a new url each)."""
    names = sorted(n for n in os.listdir(data) if n.endswith(".json"))[:files]
    for name in names:
        path = os.path.join(data, name)
        with open(path) as f:
            doc = json.load(f)
        doc["url"] = re.sub(r"(-r\d+)?/$", "-r%d/" % round_no, doc["url"])
        write_atomically(path, json.dumps(doc))
    return len(names)


def run(args, data, label):
    conf = ""
    want = 2
    if args.mpm == "prefork":
        want = args.children
        conf = ("StartServers {n}\nMinSpareServers {n}\nMaxSpareServers {m}\nServerLimit {l}\n"
                "MaxRequestWorkers {l}\nMaxConnectionsPerChild 0\n").format(n=args.children, m=args.children + 1,
                                                                           l=max(10, args.children + 2))
    else:
        conf = "StartServers 2\nMinSpareThreads 5\nMaxSpareThreads 100\n"
    ini = "[general]\ndata_dir: %s\ndata_dir_polling_interval: 1\n" % data
    h = Httpd(crane_ini=ini, mpm=args.mpm, conf=conf, loglevel="info")
    snap_dir = os.path.join(h.dir, "run", "crane")
    result = {"label": label}
    try:
        h.start(timeout=300)
        wait_children(h, want)
        r = h.curl("/v2/")
        if r.status != 200:
            raise SystemExit("GET /v2/ answered %d" % r.status)
        time.sleep(args.gap)
        result["before"] = measure(h, snap_dir)
        # sampled while the rounds run: the peak includes the builds' own
        # memory and the moments before every child let go of the old file
        peak = {"pss_kib": 0}
        for i in range(args.rounds):
            if label == "data":
                rewrite(data, args.files, i)
            end = time.time() + args.gap
            while time.time() < end:
                m = measure(h, snap_dir)
                if m["pss_kib"] > peak["pss_kib"]:
                    peak = m
                time.sleep(args.sample)
        result["peak"] = peak
        result["after"] = measure(h, snap_dir)
        snaps = [os.path.join(snap_dir, n) for n in os.listdir(snap_dir) if n.endswith(".snap")]
        result["snapshot_bytes"] = sum(os.path.getsize(p) for p in snaps)
    finally:
        bad = h.stop()
        result["unexpected_log_lines"] = bad
        h.cleanup()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mpm", default="prefork", choices=("prefork", "event"))
    ap.add_argument("--children", type=int, default=8, help="prefork children")
    ap.add_argument("--repos", type=int, default=10000)
    ap.add_argument("--data", help="a generated data dir to reuse (it is rewritten)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--gap", type=float, default=4.0)
    ap.add_argument("--sample", type=float, default=0.05, help="seconds between samples during the rounds")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="crane-idle-")
    os.chmod(tmp, 0o755)
    try:
        data = os.path.abspath(args.data) if args.data else os.path.join(tmp, "data")
        if not args.data:
            gen_metadata.generate(data, args.repos)
        for root, dirs, files in os.walk(data):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        os.chmod(data, 0o755)
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        os.chmod(empty, 0o755)
        full = run(args, data, "data")
        base = run(args, empty, "empty")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mib = 1024.0
    snap_mib = full["snapshot_bytes"] / 1048576.0
    out = {"mpm": args.mpm, "children": len(full["after"]["per_child"]), "repos": args.repos,
           "snapshot_mib": round(snap_mib, 2)}
    for when in ("before", "after"):
        index = (full[when]["pss_kib"] - base[when]["pss_kib"]) / mib
        out["index_pss_mib_" + when] = round(index, 1)
        out["snapshot_map_pss_mib_" + when] = round(full[when]["snapshot_pss_kib"] / mib, 1)
        out["old_mappings_" + when] = full[when]["old_mappings"]
        out["anon_pss_mib_" + when] = round((full[when]["pss_anon_kib"] - base[when]["pss_anon_kib"]) / mib, 1)
        out["per_child_" + when] = full[when]["per_child"]
        print("%-6s sum of Pss minus the empty-data server: %7.1f MiB (%.2fx one snapshot); snapshot "
              "mappings %6.1f MiB; anonymous %5.1f MiB; mappings of unlinked snapshots: %d"
              % (when, index, index / snap_mib if snap_mib else 0, full[when]["snapshot_pss_kib"] / mib,
                 out["anon_pss_mib_" + when], full[when]["old_mappings"]))
    peak = (full["peak"]["pss_kib"] - base["after"]["pss_kib"]) / mib
    out["index_pss_mib_peak"] = round(peak, 1)
    out["snapshot_map_pss_mib_peak"] = round(full["peak"]["snapshot_pss_kib"] / mib, 1)
    print("peak   sum of Pss minus the empty-data server: %7.1f MiB (%.2fx one snapshot); snapshot mappings "
          "%6.1f MiB (sampled every %.0f ms during the rounds)"
          % (peak, peak / snap_mib if snap_mib else 0, full["peak"]["snapshot_pss_kib"] / mib, args.sample * 1000))
    print("one snapshot: %.1f MiB; %s, %d children" % (snap_mib, args.mpm, out["children"]))
    out["unexpected_log_lines"] = full["unexpected_log_lines"] + base["unexpected_log_lines"]
    if out["unexpected_log_lines"]:
        print("unexpected error-log lines:\n  " + "\n  ".join(out["unexpected_log_lines"][:20]))
    print("RESULT " + json.dumps(out))
    return 1 if out["unexpected_log_lines"] else 0


if __name__ == "__main__":
    sys.exit(main())
