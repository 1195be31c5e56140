#!/usr/bin/env python3
"""Request-rate benchmark: mod_crane against Apache's own ceilings, in one
httpd on 127.0.0.1, measured with wrk (HTTP/1.1 keep-alive) or, with
--h2c, h2load (HTTP/2 cleartext, `Protocols h2c http/1.1`).

Targets, run alternately round after round (this machine's speed drifts):
the v2 manifest-list and blob redirects, /v2/, /v1/_ping, v1 tags, v2
tags/list, a v2 404 (TARGETS), and three ceilings, Apache's own `Redirect`
(mod_alias): `ceiling` at server level and `ceiling_rules` in a
`<Location>`, both answered in translate_name (httpd 2.4 merges the
<Location> sections before it), so neither pays the directory walk; and
`ceiling_walk`, a `Redirect` in the DocumentRoot's `<Directory>`, answered
in fixups after the same directory walk (same depth, same missing first
segment, the same stat calls) and the access checks a crane URL pays.
Each ceiling is asked with the request headers of the target it is
compared with (reading the manifest's Accept header costs httpd ~1,400
instructions), as e.g. ceiling+accept. Prints requests/s per run, the
medians, and the median of each round's ratio of a target to each ceiling.
With --htaccess the DocumentRoot has `AllowOverride All` and a permissive
.htaccess. bench/callgrind.py counts the same targets' instructions.

  bench/redirect.py [--rounds 5] [--seconds 5] [--connections 32] [--threads 2] [--mpm event] [--h2c] [--htaccess]
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
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CEILING_URL = "http://cdn.example.com/pulp/docker/v2/zoo/manifests/sha256:aaaa000000000000000000000000000000000000000000000000000000000002"


class Target:
    def __init__(self, name, path, headers=(), ceilings=(), tls=False):
        self.name, self.path, self.headers, self.ceilings, self.tls = name, path, list(headers), ceilings, tls


CEILING_NAMES = ("ceiling", "ceiling_rules", "ceiling_walk")
TARGETS = [
    Target("v2_manifest", "/v2/zoo/manifests/latest", ["Accept: " + LIST], CEILING_NAMES),
    Target("v2_blob", "/v2/zoo/blobs/sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6", [], CEILING_NAMES),
    Target("v2_ping", "/v2/", [], CEILING_NAMES),
    Target("v1_ping", "/v1/_ping", [], CEILING_NAMES),
    Target("v1_tags", "/v1/repositories/busybox/tags", [], CEILING_NAMES),
    Target("v2_tags_list", "/v2/zoo/tags/list", [], CEILING_NAMES),
    Target("v2_404", "/v2/nosuchrepo/manifests/latest", [], CEILING_NAMES),
    # Apache's own answers: mod_alias in translate_name (server level and
    # <Location>), and in fixups from the DocumentRoot's <Directory> (after
    # the directory walk and the access checks, as a crane URL)
    Target("ceiling", "/ceiling"),
    Target("ceiling_rules", "/ceiling-rules"),
    Target("ceiling_walk", "/ceiling-walk/zoo/manifests/latest"),
]
CEILINGS = {t.name: t for t in TARGETS if not t.ceilings}


def ceiling_label(name, headers):
    """The run of ceiling `name` asked with a target's request headers."""
    return name + "".join("+" + h.split(":", 1)[0].strip().lower() for h in headers)


def ceiling_runs(targets):
    """The ceiling runs the targets are compared with: each ceiling once
    per distinct set of request headers among the targets using it."""
    runs = {}
    for t in targets:
        for c in t.ceilings:
            label = ceiling_label(c, t.headers)
            if label in runs:
                assert runs[label].headers == t.headers, "two header sets share the label " + label
                continue
            runs[label] = Target(label, CEILINGS[c].path, t.headers)
    return list(runs.values())


def ceilings_conf(url):
    """Apache's own answers to measure against: the server-level `Redirect`,
    the one in a `<Location>`, and the one in the DocumentRoot's
    `<Directory>` that pays the directory walk (bench/tls_redirect.py uses
    them too)."""
    return """
Redirect 302 /ceiling %s
<Location "/ceiling-rules">
    SetHandler None
    Redirect 302 %s
</Location>
<Directory "{dir}/htdocs">
    Redirect 302 /ceiling-walk %s
</Directory>
# as in a stock site config: no .htaccess above the DocumentRoot
<Directory "/">
    AllowOverride None
</Directory>
""" % (url, url, url)


CONF = ceilings_conf(CEILING_URL) + """<Directory "{dir}/htdocs">
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


def h2load(url, headers, seconds, connections, threads):
    args = ["h2load", "-t%d" % threads, "-c%d" % connections, "-m10", "-D%d" % seconds]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    return rps, 0.0, "0", None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mpm", default="event")
    ap.add_argument("--h2c", action="store_true", help="HTTP/2 over cleartext with h2load instead of wrk")
    ap.add_argument("--only", nargs="*", help="subset of targets (ceilings are always run)")
    ap.add_argument("--htaccess", action="store_true",
                    help="AllowOverride All and a permissive .htaccess in the DocumentRoot")
    opts = ap.parse_args()
    conf = bench_conf(opts.htaccess)
    mods = ("alias",)
    tool = wrk
    if opts.h2c:
        conf += "\nProtocols h2c http/1.1\n"
        mods = ("alias", "http2")
        tool = h2load
    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), conf=conf, extra_modules=mods,
              loglevel="warn", mpm=opts.mpm)
    prepare_docroot(h, opts.htaccess)
    h.start()
    try:
        targets = [t for t in TARGETS if t.ceilings and not t.tls and (not opts.only or t.name in opts.only)]
        targets += ceiling_runs(targets)
        for t in targets:
            r = h.curl(t.path, headers=t.headers)
            assert r.status in (200, 302, 404), (t.name, r)
        results = {t.name: [] for t in targets}
        for rnd in range(opts.rounds):
            for t in targets:
                rps, p99, non23, sock = tool(h.url(t.path), t.headers, opts.seconds, opts.connections, opts.threads)
                results[t.name].append((rps, p99))
                print("round %d %-14s %10.0f req/s  p99 %7.2f ms  non-2xx/3xx %s%s" % (
                    rnd + 1, t.name, rps, p99, non23, ("  socket errors: " + sock.group(1)) if sock else ""),
                    flush=True)
        print("\nmedians over %d rounds (%ds each, %d connections, %d threads, %s, %s MPM%s):" % (
            opts.rounds, opts.seconds, opts.connections, opts.threads, "h2load h2c" if opts.h2c else "wrk HTTP/1.1",
            opts.mpm, ", .htaccess in the DocumentRoot" if opts.htaccess else ""))
        for t in targets:
            rps = statistics.median(r for r, _ in results[t.name])
            line = "  %-14s %10.0f req/s" % (t.name, rps)
            for c in t.ceilings:
                ratios = [a[0] / b[0] for a, b in zip(results[t.name], results[ceiling_label(c, t.headers)])]
                line += "   /%s %.3f" % (c, statistics.median(ratios))
            print(line)
    finally:
        bad = h.stop()
        h.cleanup()
        if bad:
            print("unexpected error log lines:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
