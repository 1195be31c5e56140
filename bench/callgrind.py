#!/usr/bin/env python3
"""Instructions per request, counted by callgrind (repeatable, unlike
wall-clock numbers on a noisy machine): httpd runs single-process (-X)
under valgrind; for each target the counters are zeroed, N requests are
sent over keep-alive, and the instruction total is dumped.

  bench/callgrind.py [--requests 2000]
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Httpd, HTTPD, TEST_DATA  # noqa: E402
from redirect import TARGETS  # noqa: E402

CONF = """
Redirect 302 /alias/blob http://cdn.example.com/pulp/docker/v2/zoo/blobs/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6
Alias /static {dir}/htdocs
<Location "/static">
    SetHandler None
</Location>
<Directory "{dir}/htdocs">
    Require all granted
</Directory>
MaxKeepAliveRequests 0
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    opts = ap.parse_args()
    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), conf=CONF, extra_modules=("alias",),
              loglevel="warn", mpm="prefork")
    with open(os.path.join(h.dir, "htdocs", "file500.txt"), "w") as f:
        f.write("x" * 499 + "\n")
    out = os.path.join(h.dir, "callgrind.out")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out + ".%p",
                             HTTPD, "-X", "-f", h.conf_path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                h.curl("/v2/")
                break
            except AssertionError:
                time.sleep(0.5)
        results = {}
        for name, path, headers, _ in TARGETS:
            args = ["curl", "-s", "-o", "/dev/null", "--http1.1"]
            for hd in headers:
                args += ["-H", hd]
            subprocess.run(args + [h.url(path)], check=True)  # warm up
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            urls = []
            for _ in range(opts.requests):
                urls += [h.url(path), "-o", "/dev/null"]
            subprocess.run(args[:-2] + ["-o", "/dev/null"] + urls[:-2] if False else
                           ["curl", "-s", "--http1.1"] + sum([["-H", x] for x in headers], []) + urls,
                           check=True)
            subprocess.run(["callgrind_control", "-d", name, str(proc.pid)], check=True, capture_output=True)
            dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
            text = open(dumps[-1]).read()
            total = int(re.search(r"^summary:\s+(\d+)", text, re.M).group(1)) if re.search(
                r"^summary:", text, re.M) else int(re.search(r"^totals:\s+(\d+)", text, re.M).group(1))
            results[name] = total / opts.requests
            print("%-12s %10.0f instructions/request" % (name, results[name]), flush=True)
        print("\nratios: v2_manifest/alias %.2f, v2_blob/alias %.2f, v1_tags/static %.2f, v2_ping/static %.2f" % (
            results["v2_manifest"] / results["alias"], results["v2_blob"] / results["alias"],
            results["v1_tags"] / results["static"], results["v2_ping"] / results["static"]))
    finally:
        proc.terminate()
        proc.wait()
        h.cleanup()


if __name__ == "__main__":
    main()
