#!/usr/bin/env python3
"""Does the answer time tell a protected repository from an unknown one?

Starts a TLS httpd with the built mod_crane (as the integration tests do:
CRANE_MODULE, CRANE_MPM), connects once with a client certificate the CA
verified (a v3 entitlement certificate that entitles neither repository),
and sends alternating keep-alive requests for an unknown v2 repository and
for a protected one. Both answer the same 404 byte for byte; the script
prints the median time of each (request sent to body read, in
microseconds) and their difference.

    CRANE_MODULE=build/release/mod_crane.so python3 bench/protected_timing.py [-n 1500]
"""

import argparse
import http.client
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import certs  # noqa: E402
from harness import TEST_DATA, Httpd, MPM  # noqa: E402

UNKNOWN = "/v2/private/nope/tags/list"
PROTECTED = "/v2/private/secret/tags/list"  # tests/data/metadata/sub: protected v2 repo


def tls_text(pki):
    return ("SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
            "SSLCACertificateFile %s\nSSLVerifyClient optional\nSSLVerifyDepth 2\n"
            % (pki.server_cert, pki.server_key, pki.ca_cert))


def timed_get(conn, path):
    start = time.perf_counter_ns()
    conn.request("GET", path)
    reply = conn.getresponse()
    body = reply.read()
    elapsed = time.perf_counter_ns() - start
    return elapsed, reply.status, body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1500, help="requests per kind (default 1500)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per kind first")
    args = parser.parse_args()

    pki = certs.TestPKI()
    data = tempfile.mkdtemp(prefix="crane-bench-data-")
    shutil.rmtree(data)
    shutil.copytree(os.path.join(TEST_DATA, "metadata"), data, symlinks=True)
    os.chmod(data, 0o755)
    cert = pki.v3("bench", ["/content/dist/other", "/content/beta/rhel/server/7/containers"])
    # the benchmark measures mod_crane, not logging: no debug lines
    h = Httpd(data_src=data, tls=tls_text(pki), loglevel="warn",
              conf="SSLSessionCache shmcb:{dir}/ssl_scache(512000)\nKeepAliveTimeout 60\n"
                   "MaxKeepAliveRequests 0\n")
    try:
        h.start()
        ctx = ssl.create_default_context(cafile=pki.ca_cert)
        ctx.load_cert_chain(cert, pki.client_key)
        conn = http.client.HTTPSConnection("127.0.0.1", h.port, context=ctx, timeout=30)
        times = {UNKNOWN: [], PROTECTED: []}
        bodies = {}
        for i in range(args.warmup + args.n):
            # alternate, and swap the order every other pair so neither kind
            # always follows the other
            pair = (UNKNOWN, PROTECTED) if i % 2 == 0 else (PROTECTED, UNKNOWN)
            for path in pair:
                elapsed, status, body = timed_get(conn, path)
                if status != 404:
                    raise SystemExit("%s answered %d, expected 404" % (path, status))
                bodies.setdefault(path, body)
                if body != bodies[path]:
                    raise SystemExit("%s answered a different body" % path)
                if i >= args.warmup:
                    times[path].append(elapsed)
        conn.close()
        if bodies[UNKNOWN] != bodies[PROTECTED]:
            raise SystemExit("the two 404 bodies differ")
        unknown = statistics.median(times[UNKNOWN]) / 1000
        protected = statistics.median(times[PROTECTED]) / 1000
        print("module %s, MPM %s, %d requests each over one keep-alive TLS connection" %
              (os.environ.get("CRANE_MODULE", "(default)"), MPM, args.n))
        print("median unknown repo   %s: %8.1f us" % (UNKNOWN, unknown))
        print("median protected repo %s: %8.1f us" % (PROTECTED, protected))
        print("difference (protected - unknown): %+.1f us" % (protected - unknown))
    finally:
        bad = h.stop()
        h.cleanup()
        pki.cleanup()
        shutil.rmtree(data, ignore_errors=True)
        if bad:
            print("unexpected error log lines:\n" + "\n".join(bad), file=sys.stderr)


if __name__ == "__main__":
    main()
