"""Prometheus metrics (README, "Metrics") against a real httpd: a known set
of requests (manifest redirects, blobs, each 4xx reason, tags/list, served
files, entitlement refusals over TLS), then a scrape of the
`SetHandler crane-metrics` page with prometheus_client's own text parser,
checked count for count: requests by route and status class, 4xx reasons,
redirects, served files and bytes, pulls per repository within the
CraneMetricsRepositories bound, the latency histogram and the snapshot
gauges. Under prefork, requests held on separate keep-alive connections
land in separate children, and the scrape (answered by one child) sums
them all; a graceful restart keeps every counter.
"""

import hashlib
import http.client
import os
import re
import sys
import unittest

import certs
from harness import ACCEPT_S2, MPM, TEST_DATA, Httpd



def _import_parser():
    """Debian's python3-prometheus-client (pure Python; scripts/install-deps.sh
    installs it), also when the tests run under another Python 3 than
    Debian's own (it looks in dist-packages then)."""
    dist = "/usr/lib/python3/dist-packages"
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        if dist in sys.path:
            raise
        sys.path.append(dist)
        from prometheus_client.parser import text_string_to_metric_families
    return text_string_to_metric_families


text_string_to_metric_families = _import_parser()

METADATA = os.path.join(TEST_DATA, "metadata")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

METRICS_CONF = """
<Location "/metrics">
    SetHandler crane-metrics
</Location>
LogFormat "%P %>s %U" pids
CustomLog {dir}/pids.log pids
"""
# several children from the start, none reaped while the test runs
PREFORK_CONF = "StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\n"

BLOB = "sha256:abc0000000000000000000000000000000000000000000000000000000000000"
UNKNOWN_DIGEST = "sha256:" + "e" * 64
HISTOGRAM = "crane_http_request_duration_seconds"
BUCKETS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
           "5", "10", "+Inf"]
REASONS = ["not_found", "bad_request", "method_not_allowed", "name_unknown", "manifest_unknown", "blob_unknown",
           "digest_invalid", "name_invalid", "pagination_number_invalid", "unsupported", "precondition_failed",
           "unauthorized", "other"]


class Req:
    """One request and what it must count as."""

    def __init__(self, path, route, status, reason=None, method="GET", headers=(), pull=None, redirect=False,
                 served=None):
        self.path, self.route, self.status, self.reason = path, route, status, reason
        self.method, self.headers, self.pull, self.redirect = method, list(headers), pull, redirect
        self.served = served  # body bytes of a content file sent (2xx)


# redirect mode: every kind of answer but served files
REDIRECT_MODE_REQUESTS = [
    Req("/v2/zoo/manifests/latest", "v2_manifest", 302, pull="zoo", redirect=True, headers=[ACCEPT_S2]),
    Req("/v2/zoo/manifests/latest", "v2_manifest", 302, pull="zoo", redirect=True),
    Req("/v2/zoo/manifests/latest", "v2_manifest", 302, method="HEAD", redirect=True),  # not a pull
    Req("/v2/v2repo/manifests/latest", "v2_manifest", 302, pull="v2repo", redirect=True),
    Req("/v2/zoo/blobs/" + BLOB, "v2_blob", 302, redirect=True),
    Req("/v2/zoo/tags/list", "v2_tag_list", 302, redirect=True),
    Req("/v2/nope/manifests/latest", "v2_manifest", 404, "name_unknown"),
    Req("/v2/nope/blobs/" + BLOB, "v2_blob", 404, "name_unknown"),
    Req("/v2/zoo/manifests/" + UNKNOWN_DIGEST, "v2_manifest", 404, "manifest_unknown"),
    Req("/v2/zoo/blobs/sha256:abc", "v2_blob", 400, "digest_invalid"),
    Req("/v2/zoo/manifests/sha256:abc", "v2_manifest", 400, "digest_invalid"),
    Req("/v2/_catalog?n=x", "v2_catalog", 400, "pagination_number_invalid"),
    Req("/v2/zoo/manifests/latest", "v2_manifest", 405, "unsupported", method="PUT"),
    Req("/v2/zoo", "v2_no_name", 404, "name_unknown"),
    Req("/v2/", "v2_base", 200),
    Req("/v2/_catalog", "v2_catalog", 200),
    Req("/v1/_ping", "v1_ping", 200),
    Req("/v1/repositories/busybox/tags", "v1_repository_tags", 200),
    Req("/v1/repositories/nope/tags", "v1_repository_tags", 404, "not_found"),
    Req("/v1/nothing", "unmatched", 404, "not_found"),
]


def parse(text):
    """{(sample name, ((label, value), ...)): value} by prometheus_client's
    parser; fails unless every family has its HELP and TYPE lines and every
    sample belongs to one."""
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert sorted(helps) == sorted(types), (helps, types)
    assert len(helps) == len(set(helps)), helps
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or types.get(base) == "histogram", line
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, key
            samples[key] = s.value
    return samples


def only(samples, name):
    """{labels tuple: value} of one sample name."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def requests_only(samples):
    """samples without the snapshot gauges (the last scan's age moves on)."""
    return {k: v for k, v in samples.items() if not k[0].startswith("crane_snapshot_")}


def expected_counts(requests):
    """What the request families must say after `requests` (and nothing else)."""
    by_route_code, by_route, reasons, pulls = {}, {}, {r: 0 for r in REASONS}, {}
    redirects = served_files = served_bytes = 0
    for q in requests:
        key = (("code", "%dxx" % (q.status // 100)), ("route", q.route))
        by_route_code[key] = by_route_code.get(key, 0) + 1
        by_route[q.route] = by_route.get(q.route, 0) + 1
        if q.status // 100 == 4:
            reasons[q.reason or "other"] += 1
        if q.redirect:
            redirects += 1
        if q.served is not None:
            served_files += 1
            served_bytes += q.served
        if q.pull:
            pulls[q.pull] = pulls.get(q.pull, 0) + 1
    return by_route_code, by_route, reasons, redirects, served_files, served_bytes, pulls


class MetricsCase(unittest.TestCase):
    conf = ""

    def server(self, conf="", **kw):
        extra = PREFORK_CONF if MPM == "prefork" else ""
        return Httpd(data_src=METADATA, conf=METRICS_CONF + extra + self.conf + conf, **kw)

    def scrape(self, h, **kw):
        r = h.curl("/metrics", **kw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), CONTENT_TYPE)
        return parse(r.text)

    def send(self, h, requests, extra=()):
        for q in requests:
            r = h.curl(q.path, method=q.method, headers=q.headers, extra=list(extra))
            self.assertEqual(r.status, q.status, (q.path, r))

    def assertCounts(self, samples, requests, pulls=None, other_pulls=0):
        by_route_code, by_route, reasons, redirects, served_files, served_bytes, by_repo = \
            expected_counts(requests)
        self.assertEqual(only(samples, "crane_http_requests_total"), by_route_code)
        self.assertEqual({dict(k)["reason"]: v for k, v in only(samples, "crane_http_client_errors_total").items()},
                         reasons)
        self.assertEqual(samples[("crane_redirects_total", ())], redirects)
        self.assertEqual(samples[("crane_served_files_total", ())], served_files)
        self.assertEqual(samples[("crane_served_bytes_total", ())], served_bytes)
        counts = {dict(k)["route"]: v for k, v in only(samples, HISTOGRAM + "_count").items()}
        self.assertEqual(counts, by_route)
        for route, n in by_route.items():
            buckets = [samples[(HISTOGRAM + "_bucket", (("le", le), ("route", route)))] for le in BUCKETS]
            self.assertEqual(buckets, sorted(buckets), route)  # cumulative
            self.assertEqual(buckets[-1], n, route)
            total = samples[(HISTOGRAM + "_sum", (("route", route),))]
            self.assertGreater(total, 0, route)
            self.assertLess(total, 10.0 * n, route)
        repos = {dict(k)["repository"]: v for k, v in only(samples, "crane_repository_pulls_total").items()}
        expected = dict(pulls if pulls is not None else by_repo)
        expected["other"] = other_pulls
        self.assertEqual(repos, expected)


class RedirectModeTest(MetricsCase):
    def test_counts_match_the_requests_sent(self):
        with self.server() as h:
            empty = self.scrape(h)
            self.assertCounts(empty, [])
            self.send(h, REDIRECT_MODE_REQUESTS)
            samples = self.scrape(h)
            self.assertCounts(samples, REDIRECT_MODE_REQUESTS)
            # the page itself is not counted, and HEAD answers the same headers without a body
            self.assertEqual(requests_only(self.scrape(h)), requests_only(samples))
            head = h.curl("/metrics", method="HEAD")
            self.assertEqual((head.status, head.header("Content-Type"), head.body), (200, CONTENT_TYPE, b""))
            post = h.curl("/metrics", method="POST", data="x")
            self.assertEqual(post.status, 405)
            # httpd writes the list (in no fixed order) and adds TRACE itself
            self.assertEqual(sorted(post.header("Allow").split(",")), ["GET", "HEAD", "TRACE"])

    def test_snapshot_gauges_are_the_status_page_fields(self):
        with self.server(extra_modules=("status",), conf="<Location /server-status>\nSetHandler server-status\n"
                                                         "</Location>\n") as h:
            samples = self.scrape(h)
            status = dict(line.split(": ", 1) for line in h.curl("/server-status?auto").text.splitlines()
                          if line.startswith("CraneSnapshot0"))
            d = (("data_dir", h.data),)
            # what was seen, shown with any assertion below that fails
            seen = ({k: v for k, v in samples.items() if k[0].startswith("crane_snapshot")}, status)
            self.assertEqual(samples[("crane_snapshot_generation", d)], int(status["CraneSnapshot0Generation"]), seen)
            self.assertEqual(samples[("crane_snapshot_generation", d)], 1, seen)
            self.assertEqual(samples[("crane_snapshot_files", d)], 10, seen)
            self.assertEqual(samples[("crane_snapshot_failed_files", d)], 0, seen)
            self.assertEqual(samples[("crane_snapshot_repositories", (("api", "v1"),) + d)], 3, seen)
            self.assertEqual(samples[("crane_snapshot_repositories", (("api", "v2"),) + d)], 7, seen)
            self.assertEqual(samples[("crane_snapshot_size_bytes", d)], int(status["CraneSnapshot0Bytes"]), seen)
            self.assertGreaterEqual(samples[("crane_snapshot_scans_total", d)], 1, seen)
            self.assertEqual(samples[("crane_snapshot_builds_total", d)], int(status["CraneSnapshot0Builds"]), seen)
            self.assertGreaterEqual(samples[("crane_snapshot_last_scan_age_seconds", d)], 0, seen)
            self.assertLess(samples[("crane_snapshot_last_scan_age_seconds", d)], 30, seen)
            self.assertGreater(samples[("crane_snapshot_last_scan_duration_seconds", d)], 0, seen)
            self.assertAlmostEqual(samples[("crane_snapshot_last_build_timestamp_seconds", d)],
                                   float(status["CraneSnapshot0LastBuild"]), places=2, msg=seen)

    def test_repository_series_are_bounded(self):
        pulls = [Req("/v2/%s/manifests/latest" % name, "v2_manifest", 302, pull=name, redirect=True)
                 for name in ("zoo", "v2repo", "v3old", "ns/app", "zoo", "v3old")]
        with self.server(conf="CraneMetricsRepositories 2\n") as h:
            self.send(h, pulls)
            self.assertCounts(self.scrape(h), pulls, pulls={"zoo": 2, "v2repo": 1}, other_pulls=3)
        with self.server(conf="CraneMetricsRepositories 0\n") as h:
            self.send(h, pulls)
            samples = self.scrape(h)
            self.assertEqual(only(samples, "crane_repository_pulls_total"), {})
            self.assertEqual(only(samples, "crane_http_requests_total"),
                             {(("code", "3xx"), ("route", "v2_manifest")): 6})

    def test_counters_survive_a_graceful_restart(self):
        with self.server() as h:
            self.send(h, REDIRECT_MODE_REQUESTS)
            before = self.scrape(h)
            h.graceful()
            after = self.scrape(h)
            self.assertEqual(requests_only(after), requests_only(before))
            self.send(h, REDIRECT_MODE_REQUESTS[:2])
            self.assertCounts(self.scrape(h), REDIRECT_MODE_REQUESTS + REDIRECT_MODE_REQUESTS[:2])
            # a new CraneMetricsRepositories is a new shape: the counters start again
            with open(h.conf_path, "a") as f:
                f.write("CraneMetricsRepositories 5\n")
            h.graceful()
            self.assertCounts(self.scrape(h), [])
            self.assertIn("CRANE0402: mod_crane: the metrics' counters start again from zero "
                          "(CraneMetricsRepositories 5", h.log())

    def test_metrics_off(self):
        with self.server(conf="CraneMetrics Off\n") as h:
            self.send(h, REDIRECT_MODE_REQUESTS[:3])
            r = h.curl("/metrics")
            self.assertEqual(r.status, 404)
            self.assertIn("CRANE0405", h.log())


@unittest.skipUnless(MPM == "prefork", "one event child serves many connections at once: only prefork pins a "
                                       "connection to a child")
class ChildrenTest(MetricsCase):
    def test_the_scrape_sums_every_child(self):
        with self.server() as h:
            # three keep-alive connections held open: three children
            conns = [http.client.HTTPConnection("127.0.0.1", h.port, timeout=20) for _ in range(3)]
            try:
                sent = []
                for i, c in enumerate(conns):
                    for q in REDIRECT_MODE_REQUESTS[:2 + i]:
                        c.request(q.method, q.path, headers=dict(hd.split(": ", 1) for hd in q.headers))
                        r = c.getresponse()
                        r.read()
                        self.assertEqual(r.status, q.status)
                        sent.append(q)
                samples = self.scrape(h)
            finally:
                for c in conns:
                    c.close()
            pids = {line.split()[0] for line in Httpd.read(os.path.join(h.dir, "pids.log")).splitlines()
                    if "/v2/" in line}
            self.assertEqual(len(pids), 3, pids)
            self.assertCounts(samples, sent)
            # and they stay summed once the children are replaced
            h.graceful()
            self.assertCounts(self.scrape(h), sent)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ServeModeTest(MetricsCase):
    blob = bytes(range(256)) * 40
    small = b"small blob\n"

    def test_served_files_and_bytes(self):
        conf = "CraneServeContent On\nCraneContentDirV1 {dir}/content\nCraneContentDirV2 {dir}/content\n"
        h = self.server(conf=conf)
        for digest, data in ((sha256(self.blob), self.blob), (sha256(self.small), self.small)):
            path = os.path.join(h.dir, "content", "zoo-pulp", "blobs", digest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        for root, dirs, files in os.walk(os.path.join(h.dir, "content")):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        blob = "/v2/zoo/blobs/" + sha256(self.blob)
        small = "/v2/zoo/blobs/" + sha256(self.small)
        requests = [
            Req(blob, "v2_blob", 200, served=len(self.blob)),
            Req(small, "v2_blob", 200, served=len(self.small)),
            Req(small, "v2_blob", 200, served=0, method="HEAD"),
            Req(blob, "v2_blob", 206, served=100, headers=["Range: bytes=0-99"]),
            Req("/v2/zoo/blobs/" + UNKNOWN_DIGEST, "v2_blob", 404, "blob_unknown"),
            Req("/v2/zoo/manifests/latest", "v2_manifest", 404, "manifest_unknown", headers=[ACCEPT_S2]),
        ]
        with h:
            self.send(h, requests)
            etag = h.curl(small).header("ETag")
            requests.append(Req(small, "v2_blob", 200, served=len(self.small)))
            not_modified = h.curl(small, headers=["If-None-Match: " + etag])
            self.assertEqual(not_modified.status, 304)
            requests.append(Req(small, "v2_blob", 304))  # neither served nor a redirect
            failed = h.curl(small, headers=["If-Match: \"nope\""])
            self.assertEqual(failed.status, 412)
            requests.append(Req(small, "v2_blob", 412, "precondition_failed"))
            self.assertCounts(self.scrape(h), requests)


class EntitlementTest(MetricsCase):
    """A protected repository the certificate does not entitle answers the
    unknown name's 404; the metrics count it as unauthorized."""

    def test_unauthorized_over_tls(self):
        pki = certs.TestPKI()
        try:
            other = pki.v1("v1-other", ["/content/dist/other"])
            tls = ("SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\nSSLCACertificateFile %s\n"
                   "SSLVerifyClient optional\nSSLVerifyDepth 2\n" % (pki.server_cert, pki.server_key, pki.ca_cert))
            client = ["--cacert", pki.ca_cert, "--cert", other, "--key", pki.client_key]
            with self.server(tls=tls, conf="SSLSessionCache shmcb:{dir}/ssl_scache(512000)\n",
                             env={"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}) as h:
                requests = [
                    Req("/v2/private/secret/manifests/latest", "v2_manifest", 404, "unauthorized"),
                    Req("/v2/private/secret/tags/list", "v2_tag_list", 404, "unauthorized"),
                    Req("/v1/repositories/secret/tags", "v1_repository_tags", 404, "unauthorized"),
                    Req("/v2/private/nope/manifests/latest", "v2_manifest", 404, "name_unknown"),
                    Req("/v2/zoo/manifests/latest", "v2_manifest", 302, pull="zoo", redirect=True),
                ]
                self.send(h, requests, extra=client)
                without = Req("/v2/private/secret/manifests/latest", "v2_manifest", 404, "unauthorized")
                self.send(h, [without], extra=["--cacert", pki.ca_cert])
                self.assertCounts(self.scrape(h, extra=["--cacert", pki.ca_cert]), requests + [without])
        finally:
            pki.cleanup()


class DirectiveErrors(unittest.TestCase):
    def check_fails(self, directive, message, around=("", "")):
        h = Httpd(data_src=METADATA, conf="\n" + around[0] + directive + "\n" + around[1])
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            with open(h.conf_path) as f:
                line = [i + 1 for i, text in enumerate(f) if text.startswith(directive)][0]
            self.assertIn("Syntax error on line %d of %s" % (line, h.conf_path), out)
            self.assertIn(message, out)
        finally:
            h.cleanup()

    def test_bad_values_name_file_line_and_key(self):
        for value in ("many", "-1", "10001", "1.5", "0x10"):
            with self.subTest(value=value):
                self.check_fails("CraneMetricsRepositories %s" % value,
                                 "CraneMetricsRepositories: '%s' is not a whole number from 0 to 10000" % value)
        self.check_fails("CraneMetrics maybe", "CraneMetrics must be On or Off")

    def test_server_config_only(self):
        for directive in ("CraneMetrics Off", "CraneMetricsRepositories 5"):
            with self.subTest(directive=directive):
                self.check_fails(directive, "%s cannot occur within <VirtualHost> section" % directive.split()[0],
                                 around=("<VirtualHost 127.0.0.1:1>\n", "</VirtualHost>\n"))

    def test_good_values_pass(self):
        for conf in ("CraneMetricsRepositories 0", "CraneMetricsRepositories 10000", "CraneMetrics On"):
            with self.subTest(conf=conf):
                h = Httpd(data_src=METADATA, conf=conf)
                try:
                    code, out = h.config_test()
                    self.assertEqual(code, 0, out)
                finally:
                    h.cleanup()


if __name__ == "__main__":
    unittest.main()
