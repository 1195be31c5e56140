#!/usr/bin/env python3
"""Instructions per request, counted by callgrind (repeatable, unlike
wall-clock numbers on a noisy machine). For each target httpd runs
single-process (-X) under valgrind, answers N requests over keep-alive and
stops; the same with no requests gives the fixed cost, and
(total - fixed) / N is the cost of one request.

  bench/callgrind.py [--requests 1000] [--htaccess] [--only TARGET...] [--conf TEXT]

--conf adds server config (e.g. "CraneMetrics Off" to measure the metrics' cost).
"""

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Httpd, HTTPD, TEST_DATA  # noqa: E402
from redirect import TARGETS, bench_conf, prepare_docroot  # noqa: E402


def run(requests, path, headers, htaccess, extra_conf=""):
    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), conf=bench_conf(htaccess) + extra_conf,
              extra_modules=("alias",),
              loglevel="warn", mpm="prefork")
    prepare_docroot(h, htaccess)
    # httpd drops root for www-data before callgrind writes its file
    outdir = os.path.join(h.dir, "cg")
    os.makedirs(outdir)
    os.chmod(outdir, 0o777)
    out = os.path.join(outdir, "callgrind.out")
    open(out, "w").close()
    os.chmod(out, 0o666)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                             HTTPD, "-X", "-f", h.conf_path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(h.dir, "httpd.pid")) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        if requests:
            args = ["curl", "-s", "--http1.1"]
            for hd in headers:
                args += ["-H", hd]
            for _ in range(requests):
                args += ["-o", "/dev/null", h.url(path)]
            subprocess.run(args, check=True)
    finally:
        proc.terminate()
        proc.wait()
    text = open(out).read()
    h.cleanup()
    if not re.search(r"^(?:summary|totals):", text, re.M):
        print(text[-2000:])
    return int(re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--htaccess", action="store_true",
                    help="AllowOverride All and a permissive .htaccess in the DocumentRoot")
    ap.add_argument("--only", nargs="*", help="subset of targets")
    ap.add_argument("--conf", default="", help="server config text added to the bench config")
    opts = ap.parse_args()
    # one request in the baseline too, so lazy first-request work cancels out
    base = run(1, "/v2/", [], opts.htaccess, opts.conf)
    results = {}
    for name, path, headers, _ in TARGETS:
        if opts.only and name not in opts.only:
            continue
        total = run(opts.requests + 1, path, headers, opts.htaccess, opts.conf)
        results[name] = (total - base) / opts.requests
        print("%-12s %9.0f instructions/request" % (name, results[name]), flush=True)
    ratios = ["%s/%s %.2f" % (name, ceiling, results[name] / results[ceiling])
              for name, _, _, ceiling in TARGETS if ceiling and name in results and ceiling in results]
    print("\nratios: " + "  ".join(ratios))


if __name__ == "__main__":
    main()
