#!/usr/bin/env python3
"""Request-rate benchmark: mod_crane against Apache's own ceilings, in one
httpd (event MPM) on 127.0.0.1, measured with wrk.

Targets, run alternately round after round (this machine's speed drifts):
  v2_manifest  302 with manifest negotiation (Accept: schema 2)
  v2_blob      302 blob redirect
  v1_tags      200 JSON from the index
  v2_ping      200 {}
  alias        mod_alias `Redirect` of a fixed path (answers in translate_name)
  static       a static 500-byte file (core's default handler)
Prints requests/s and p99 per run, the medians, and the median ratio of each
mod_crane target to its ceiling (redirects to `alias`, 200s to `static`).
With --htaccess the DocumentRoot has `AllowOverride All` and a permissive
.htaccess, so every target but `alias` reads and applies it.

  bench/redirect.py [--rounds 5] [--seconds 5] [--connections 32] [--threads 2] [--htaccess]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Httpd, TEST_DATA  # noqa: E402

S2 = "application/vnd.docker.distribution.manifest.v2+json"
TARGETS = [
    ("v2_manifest", "/v2/zoo/manifests/latest", ["Accept: " + S2], "alias"),
    ("v2_blob", "/v2/zoo/blobs/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6", [], "alias"),
    ("v1_tags", "/v1/repositories/busybox/tags", [], "static"),
    ("v2_ping", "/v2/", [], "static"),
    ("alias", "/alias/blob", [], None),
    ("static", "/static/file500.txt", [], None),
]


CONF = """
Redirect 302 /alias/blob http://cdn.example.com/pulp/docker/v2/zoo/blobs/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6
Alias /static {dir}/htdocs
<Location "/static">
    SetHandler None
</Location>
# as in a stock site config: no .htaccess above the DocumentRoot
<Directory "/">
    AllowOverride None
</Directory>
<Directory "{dir}/htdocs">
    Require all granted
    AllowOverride {allow_override}
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
"""


def bench_conf(htaccess):
    return CONF.replace("{allow_override}", "All" if htaccess else "None")


def prepare_docroot(h, htaccess):
    """The static target's file and, with htaccess, a permissive .htaccess."""
    files = {"file500.txt": "x" * 499 + "\n"}
    if htaccess:
        files[".htaccess"] = "Require all granted\nOptions -Indexes\n"
    for name, text in files.items():
        path = os.path.join(h.dir, "htdocs", name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)


def wrk(url, headers, seconds, connections, threads):
    args = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return rps, float(p99.group(1)) * scale, (errors.group(1) if errors else "0"), socket_errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="subset of targets (ceilings are always run)")
    ap.add_argument("--htaccess", action="store_true",
                    help="AllowOverride All and a permissive .htaccess in the DocumentRoot")
    opts = ap.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)

    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), conf=bench_conf(opts.htaccess), extra_modules=("alias",),
              loglevel="warn", mpm="event")
    prepare_docroot(h, opts.htaccess)
    h.start()
    try:
        targets = [t for t in TARGETS if not opts.only or t[0] in opts.only or t[3] is None]
        for name, path, headers, _ in targets:
            r = h.curl(path, headers=headers)
            assert r.status in (200, 302), (name, r)
        results = {name: [] for name, *_ in targets}
        for rnd in range(opts.rounds):
            for name, path, headers, _ in targets:
                rps, p99, non23, sock = wrk(h.url(path), headers, opts.seconds, opts.connections, opts.threads)
                results[name].append((rps, p99))
                print("round %d %-12s %10.0f req/s  p99 %7.2f ms  non-2xx/3xx %s%s" % (
                    rnd + 1, name, rps, p99, non23, ("  socket errors: " + sock.group(1)) if sock else ""),
                    flush=True)
        print("\nmedians over %d rounds (%ds each, %d connections, %d wrk threads%s):" % (
            opts.rounds, opts.seconds, opts.connections, opts.threads,
            ", .htaccess in the DocumentRoot" if opts.htaccess else ""))
        for name, _, _, ceiling in targets:
            rps = statistics.median(r for r, _ in results[name])
            p99 = statistics.median(p for _, p in results[name])
            line = "  %-12s %10.0f req/s  p99 %7.2f ms" % (name, rps, p99)
            if ceiling:
                ratios = [a[0] / b[0] for a, b in zip(results[name], results[ceiling])]
                line += "   ratio to %s: median %.3f (per round %s)" % (
                    ceiling, statistics.median(ratios), " ".join("%.2f" % x for x in ratios))
            print(line)
    finally:
        bad = h.stop()
        h.cleanup()
        if bad:
            print("unexpected error log lines:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
