#!/usr/bin/env python3
"""Request rate of a protected repository's redirect over TLS with an
entitlement certificate, against Apache's own `Redirect` on the same TLS
keep-alive connections (wrk and h2load cannot present a client
certificate, so this script is its own load generator).

One httpd on 127.0.0.1 (`SSLVerifyClient optional`), the shipped test
metadata (private/secret is protected; its url_path is under
/content/dist/rhel/server/7/containers), a v3 entitlement certificate
for that path. Each of --clients processes keeps one TLS connection and
pipelines --depth requests at a time (HTTP/1.1 allows it and httpd answers
them in order), so the client's own cost per request is a small part of
the server's. Targets, run alternately round after round: the protected
v2 manifest redirect (`protected`), the server-level `Redirect`
(`ceiling`), a `Redirect` in `<Location>` (`ceiling_rules`) and one in
the DocumentRoot's `<Directory>`, after the same directory walk as a crane
URL (`ceiling_walk`), each asked with the protected request's Accept
header (bench/redirect.py says why). Every
answer's status is checked. Prints requests/s per run, the medians, and
the median of each round's ratio protected/ceiling.

    CRANE_MODULE=build/release/mod_crane.so python3 bench/tls_redirect.py [--rounds 5] [--seconds 5] [--clients 4]
"""

import argparse
import multiprocessing
import os
import re
import socket
import ssl
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import certs  # noqa: E402
from harness import TEST_DATA, Httpd  # noqa: E402
from redirect import CEILING_NAMES, ceilings_conf  # noqa: E402

URL = "https://cdn.example.com/content/dist/rhel/server/7/containers/secret/"
S2 = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ["Accept: " + S2]  # every target's, the ceilings' too
TARGETS = [
    ("protected", "/v2/private/secret/manifests/latest", ACCEPT),
    ("ceiling", "/ceiling", ACCEPT),
    ("ceiling_rules", "/ceiling-rules", ACCEPT),
    ("ceiling_walk", "/ceiling-walk/private/secret/manifests/latest", ACCEPT),
]
CONF = ceilings_conf(URL) + """
SSLSessionCache shmcb:{dir}/ssl_scache(512000)
KeepAlive On
KeepAliveTimeout 60
MaxKeepAliveRequests 0
"""
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def tls_text(pki):
    return ("SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
            "SSLCACertificateFile %s\nSSLVerifyClient optional\nSSLVerifyDepth 2\n"
            % (pki.server_cert, pki.server_key, pki.ca_cert))


class Pipelined:
    """One TLS keep-alive connection sending requests in batches."""

    def __init__(self, port, ctx, request, depth):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.batch = request * depth
        self.depth = depth
        self.buf = b""

    def round_trip(self):
        """Sends one batch, reads its answers; returns their statuses' set."""
        self.sock.sendall(self.batch)
        statuses = set()
        for _ in range(self.depth):
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                self.more()
            head = self.buf[:end]
            m = CONTENT_LENGTH.search(head)
            total = end + 4 + (int(m.group(1)) if m else 0)
            while len(self.buf) < total:
                self.more()
            statuses.add(head[9:12])
            self.buf = self.buf[total:]
        return statuses

    def more(self):
        data = self.sock.recv(262144)
        if not data:
            raise SystemExit("the server closed the connection")
        self.buf += data


def client(args):
    port, ca, cert, key, path, headers, seconds, depth = args
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (
        path, "".join(h + "\r\n" for h in headers))).encode()
    conn = Pipelined(port, ctx, request, depth)
    conn.round_trip()  # handshake and warm-up, not counted
    done, statuses = 0, set()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        statuses |= conn.round_trip()
        done += depth
    return done, time.perf_counter() - start, statuses


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=4, help="processes, one TLS connection each")
    ap.add_argument("--depth", type=int, default=16, help="requests pipelined per batch")
    ap.add_argument("--mpm", default="event")
    opts = ap.parse_args()

    pki = certs.TestPKI()
    cert = pki.v3("bench", ["/content/dist/rhel/server/7/containers"])
    h = Httpd(data_src=os.path.join(TEST_DATA, "metadata"), tls=tls_text(pki), conf=CONF,
              extra_modules=("alias",), loglevel="warn", mpm=opts.mpm)
    results = {name: [] for name, _, _ in TARGETS}
    try:
        h.start()
        with multiprocessing.Pool(opts.clients) as pool:
            for rnd in range(opts.rounds):
                for name, path, headers in TARGETS:
                    job = (h.port, pki.ca_cert, cert, pki.client_key, path, headers, opts.seconds, opts.depth)
                    runs = pool.map(client, [job] * opts.clients)
                    statuses = set().union(*(s for _, _, s in runs))
                    if statuses != {b"302"}:
                        raise SystemExit("%s answered %s, expected only 302" % (name, sorted(statuses)))
                    rps = sum(n / t for n, t, _ in runs)
                    results[name].append(rps)
                    print("round %d %-14s %10.0f req/s" % (rnd + 1, name, rps), flush=True)
        print("\nmedians over %d rounds (%.0fs each, %d TLS connections pipelining %d, %s MPM):" % (
            opts.rounds, opts.seconds, opts.clients, opts.depth, opts.mpm))
        for name, _, _ in TARGETS:
            line = "  %-14s %10.0f req/s" % (name, statistics.median(results[name]))
            if name == "protected":
                for c in CEILING_NAMES:
                    ratios = [a / b for a, b in zip(results[name], results[c])]
                    line += "   /%s %.3f" % (c, statistics.median(ratios))
            print(line)
    finally:
        bad = h.stop()
        h.cleanup()
        pki.cleanup()
        if bad:
            print("unexpected error log lines:\n" + "\n".join(bad), file=sys.stderr)


if __name__ == "__main__":
    main()
