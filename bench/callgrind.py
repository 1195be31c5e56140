#!/usr/bin/env python3
"""Instructions per request, counted by callgrind (repeatable, unlike
wall-clock numbers on a noisy machine shared with compilers).

For each target httpd runs single-process (-X) under valgrind (both MPMs),
answers N requests on one keep-alive connection, and is dumped with
`callgrind_control -d` (httpd -X under callgrind does not always stop on
SIGTERM) and killed. Everything is collected; the cost of a request is the
inclusive count of httpd's connection hook (ap_run_process_connection:
reading, every request hook, writing, logging) divided by N, and the
breakdown is the inclusive count of each named phase divided by N (the
watchdog's and the start-up's instructions are in none of them).

  bench/callgrind.py [--requests 1000] [--mpm prefork event] [--only TARGET...] [--functions] [--conf TEXT]

--conf adds server config (e.g. "CraneMetrics Off" to measure the metrics' cost).

--functions also prints every mod_crane/libcrane function above 100
instructions per request, inclusive.
"""

import argparse
import glob
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Httpd, HTTPD, TEST_DATA  # noqa: E402
from redirect import TARGETS, bench_conf, ceiling_label, ceiling_runs, prepare_docroot  # noqa: E402

# phase -> function names (demangled, as callgrind_annotate prints them),
# summed; in the order the request meets them
PHASES = [
    ("read request (core)", ["ap_read_request"]),
    ("translate_name (all)", ["ap_run_translate_name"]),
    ("  crane translate_name", ["mod_crane::translate_name(request_rec*)"]),
    ("map_to_storage (walks)", ["ap_run_map_to_storage"]),
    ("location walk", ["ap_location_walk"]),
    ("access/authz", ["ap_run_access_checker", "ap_run_access_checker_ex", "ap_run_check_user_id",
                      "ap_run_auth_checker"]),
    ("type_checker (all)", ["ap_run_type_checker"]),
    ("  crane type_checker", ["mod_crane::type_checker(request_rec*)"]),
    ("fixups", ["ap_run_fixups"]),
    ("handler (all)", ["ap_invoke_handler"]),
    ("  crane handler", ["mod_crane::crane_handler(request_rec*)"]),
    ("    Registry::handle", ["crane::Registry::handle(crane::Request const&) const"]),
    ("    snapshot current()", ["crane::SnapshotStore::Reader::current() const", "crane::SnapshotReader::current()"]),
    ("    client cert (mod_ssl)", ["mod_crane::(anonymous namespace)::client_certificate(request_rec*)"]),
    ("    ap_construct_url", ["ap_construct_url"]),
    ("    apr_table_setn", ["apr_table_setn"]),
    ("log_transaction", ["ap_run_log_transaction"]),
]

TOTAL = "ap_run_process_connection"


def wait_for(path, timeout):
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.2)
    return os.path.exists(path)


def send(port, path, headers, n, tls=None):
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=120)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    hdrs = dict(h.split(": ", 1) for h in headers)
    statuses = set()
    for _ in range(n):
        conn.request("GET", path, headers=hdrs)
        resp = conn.getresponse()
        resp.read()
        statuses.add(resp.status)
    conn.close()
    return statuses


def inclusive_counts(out):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", out],
                          capture_output=True, text=True, check=True).stdout
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\*\s+)?(.+?)\s+\[[^\]]*\]\s*$", line)
        if not m:
            continue
        name = m.group(2)
        name = name.split(":", 1)[1] if ":" in name and not name.startswith(":") else name
        counts[name] = counts.get(name, 0) + int(m.group(1).replace(",", ""))
    return counts


def profile(mpm, requests, path, headers, conf, tls=None):
    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), conf=conf, extra_modules=("alias",),
              loglevel="warn", mpm=mpm, tls=tls)
    prepare_docroot(h, False)
    # httpd drops root for www-data before callgrind writes its file
    outdir = os.path.join(h.dir, "cg")
    os.makedirs(outdir)
    os.chmod(outdir, 0o777)
    out = os.path.join(outdir, "callgrind.out")
    # one file per process (the snapshot builder forks); the httpd exits by
    # itself, and callgrind writes its file, once its two connections (the probe, the keep-alive one) are done
    # (prefork; event stops on SIGTERM after the requests instead)
    if mpm == "prefork":
        with open(h.conf_path, "a") as f:
            f.write("\nMaxConnectionsPerChild 2\n")
    # valgrind creates its file at start and writes it at exit: the whole
    # httpd runs as www-data so both happen as the same user
    prefix = []
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "www-data:www-data", h.dir], check=True)
        prefix = ["setpriv", "--reuid=www-data", "--regid=www-data", "--clear-groups"]
    proc = subprocess.Popen(prefix + ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out + ".%p",
                             HTTPD, "-X", "-f", h.conf_path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_for(os.path.join(h.dir, "httpd.pid"), 180):
            raise RuntimeError("httpd did not start under valgrind")
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", h.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        statuses = send(h.port, path, headers, requests, tls=None if not tls else TLS_CONTEXT[0])
        if mpm != "prefork":
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    dumps = [d for d in glob.glob(out + ".*") if os.path.getsize(d) > 0]
    if not dumps:
        raise RuntimeError("callgrind wrote no profile")
    print("  profiles: %s; httpd %s" % (", ".join("%s %d B" % (os.path.basename(d), os.path.getsize(d)) for d in dumps),
          "exited" if exited else "killed"), file=sys.stderr)
    counts = {}
    for d in dumps:
        for k, v in inclusive_counts(d).items():
            counts[k] = counts.get(k, 0) + v
    if not os.environ.get("CRANE_CG_KEEP"): h.cleanup()
    return statuses, counts


TLS_CONTEXT = [None]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--mpm", nargs="*", default=["prefork", "event"])
    ap.add_argument("--only", nargs="*", help="subset of targets")
    ap.add_argument("--functions", action="store_true", help="every crane function's inclusive cost too")
    ap.add_argument("--conf", default="", help="server config added to the benchmark's")
    opts = ap.parse_args()
    conf = bench_conf(False) + ("\n" + opts.conf + "\n" if opts.conf else "")
    table = {}
    picked = [t for t in TARGETS if not t.tls and (not opts.only or t.name in opts.only)]
    # each ceiling also with the request headers of the targets it is compared with
    runs = picked + [c for c in ceiling_runs([t for t in picked if t.ceilings])
                     if c.name not in {p.name for p in picked}]
    for mpm in opts.mpm:
        for t in runs:
            statuses, counts = profile(mpm, opts.requests, t.path, t.headers, conf)
            n = opts.requests
            row = {"total": counts.get(TOTAL, 0) / n}
            for phase, names in PHASES:
                row[phase] = sum(counts.get(x, 0) for x in names) / n
            table[(mpm, t.name)] = row
            print("%-8s %-14s %8.0f instructions/request  (statuses %s)" % (
                mpm, t.name, row["total"], sorted(statuses)), flush=True)
            if opts.functions:
                crane = sorted(((v / n, k) for k, v in counts.items()
                                if ("crane" in k) and v / n >= 100), reverse=True)
                for v, k in crane[:40]:
                    print("    %8.0f  %s" % (v, k[:150]))
    names = [t.name for t in runs]
    for mpm in opts.mpm:
        print("\n%s, instructions per request (inclusive):" % mpm)
        print("%-28s" % "phase" + "".join("%16s" % n[:15] for n in names))
        for phase in ["total"] + [p for p, _ in PHASES]:
            print("%-28s" % phase + "".join("%16.0f" % table[(mpm, n)][phase] for n in names))
        ratios = []
        for t in TARGETS:
            if t.name not in names:
                continue
            for c in t.ceilings:
                label = ceiling_label(c, t.headers)
                if label in names and table[(mpm, t.name)]["total"]:
                    ratios.append("%s/%s %.3f" % (label, t.name,
                                                  table[(mpm, label)]["total"] / table[(mpm, t.name)]["total"]))
        print("cost ratios (ceiling/target; 1.0 = as cheap as the ceiling): " + "  ".join(ratios))


if __name__ == "__main__":
    main()
