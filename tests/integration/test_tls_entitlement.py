"""Protected repositories over real TLS (SPEC section 6): mod_ssl asks for a
client certificate, mod_crane reads it (SSL_CLIENT_CERT, SSL_CLIENT_VERIFY)
and lets a Red Hat entitlement certificate (v1 or v3) open the protected
repos whose url_path it entitles; everything else gets the same 404 as an
unknown repo, byte for byte.

The PKI (test CA, server certificate for 127.0.0.1, client certificates) is
made once per module by certs.py with the openssl CLI. Clients are curl
(--cacert/--cert/--key), `openssl s_client`, skopeo and Python's ssl module
(for the keep-alive expiry test). Every httpd adds the response header
X-Test-Client-Verify: %{SSL_CLIENT_VERIFY}s (mod_headers), so a test can
tell that a certificate really reached mod_ssl and how mod_ssl judged it.

Measured facts about mod_ssl (Apache 2.4, OpenSSL 3) the tests rely on:
- `SSLVerifyClient optional` refuses a certificate it cannot verify (forged,
  expired) during the handshake: the client sees a TLS alert, no HTTP at all.
- `SSLVerifyClient optional_no_ca` lets a self-signed certificate through
  with SSL_CLIENT_VERIFY = "FAILED:self-signed certificate" (not GENEROUS:
  OpenSSL's verify result stays the error), but still refuses an expired
  one in the handshake (only "unknown issuer" errors are optional).
- So mod_crane's own validity-date check is reached only by a certificate
  that expires during a keep-alive connection (mod_ssl verified it at the
  handshake and keeps saying SUCCESS): see test_certificate_expiring_*.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certs
from harness import (
    REPO, TEST_DATA, HttpdTestCase, free_port, API_VERSION, JSON, S2, V1_HEADERS, V2_BLOB_UNKNOWN, V2_NAME_UNKNOWN)
from search_backend import SearchBackend

HTML = "text/html; charset=utf-8"
V1_NOT_FOUND = b"Not Found"
VERIFY = "X-Test-Client-Verify"
NO_PROXY = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}

# where the protected test repos are published (their url_path)
V1_SECRET_PATH = "/content/dist/secret"
V2_SECRET_PATH = "/content/dist/rhel/server/7/containers/secret"
CONTAINERS = "/content/dist/rhel/server/7/containers"
V1_SECRET_URL = "https://cdn.example.com/content/dist/secret/"
V2_SECRET_URL = "https://cdn.example.com/content/dist/rhel/server/7/containers/secret/"
LISTING_URL = "https://cdn.example.com/content/dist/rhel/server/listing/"

UNPROTECTED = ["ns/app", "org/tags/app", "v2repo", "v3old", "v3repo", "zoo"]

# (protected path, the same request for an unknown repo/image)
BLOB = "sha256:abc0000000000000000000000000000000000000000000000000000000000000"
V2_SECRET_REQUESTS = [
    ("/v2/private/secret/manifests/latest", "/v2/private/nope/manifests/latest"),
    ("/v2/private/secret/tags/list", "/v2/private/nope/tags/list"),
    ("/v2/private/secret/blobs/" + BLOB, "/v2/private/nope/blobs/" + BLOB),
    ("/v2/private/secret/blobs/sha256:abc", "/v2/private/nope/blobs/sha256:abc"),
    ("/v2/private/secret/referrers/" + BLOB, "/v2/private/nope/referrers/" + BLOB),
]
V1_SECRET_REQUESTS = [
    ("/v1/repositories/secret/tags", "/v1/repositories/nope/tags"),
    ("/v1/repositories/secret/tags/latest", "/v1/repositories/nope/tags/latest"),
    ("/v1/repositories/library/secret/tags", "/v1/repositories/library/nope/tags"),
    ("/v1/repositories/secret/images", "/v1/repositories/nope/images"),
    ("/v1/images/5ec7e7/json", "/v1/images/ffffff/json"),
    ("/v1/images/5ec7e7/layer", "/v1/images/ffffff/layer"),
]
LISTING_REQUEST = ("/v2/tls/listing/tags/list", "/v2/tls/nope/tags/list")

PKI = None
CERTS = {}
DATA = None
CONTENT = None  # a tiny "CDN" for skopeo
SEARCH = None


def without_date(reply):
    return [(n.lower(), v) for (n, v) in reply.headers if n.lower() != "date"]


def catalog_body(names):
    return ('{"repositories": [%s]}' % ", ".join('"%s"' % n for n in names)).encode()


def search_body(q, names):
    """Crane's search answer for GSA results named `names` (see search_backend.gsa_body)."""
    results = [{"description": "About " + n, "is_official": False, "is_trusted": False, "name": n,
                "should_filter": True, "star_count": 0} for n in names]
    return json.dumps({"num_results": len(results), "query": q, "results": results}, sort_keys=True).encode()


# ---------------------------------------------------------------- fixtures

class _ContentHandler(BaseHTTPRequestHandler):
    """What the redirects of the tls/local repo land on."""

    def do_GET(self):
        # recorded before answering: the client may be done (and the test
        # looking) as soon as the body is out
        self.server.seen.append(self.path)
        if self.path == CONTAINERS + "/local/tags/list":
            body = json.dumps({"name": "tls/local", "tags": ["1.0", "latest"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", JSON)
        else:
            body = V2_BLOB_UNKNOWN if "/blobs/" in self.path else V2_NAME_UNKNOWN
            self.send_response(404)
            self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def make_metadata(content_port):
    """The shipped test metadata plus protected v2 repos of our own."""
    data = tempfile.mkdtemp(prefix="crane-tls-metadata-")
    shutil.rmtree(data)
    shutil.copytree(os.path.join(TEST_DATA, "metadata"), data, symlinks=True)
    extra = {
        # a last segment "listing" is entitled by a v3 tree reaching its parent
        "tls_listing.json": {"version": 2, "repo-registry-id": "tls/listing", "url": LISTING_URL,
                             "protected": True},
        # published on a local server, so that skopeo can follow the redirect
        "tls_local.json": {"version": 2, "repo-registry-id": "tls/local", "protected": True,
                           "url": "http://127.0.0.1:%d%s/local/" % (content_port, CONTAINERS)},
    }
    for name, repo in extra.items():
        with open(os.path.join(data, name), "w") as f:
            json.dump(repo, f)
    os.chmod(data, 0o755)
    return data


def setUpModule():
    global PKI, DATA, CONTENT, SEARCH
    PKI = certs.TestPKI()
    v1, v3, client = PKI.v1, PKI.v3, PKI.client
    CERTS.update(
        # v1: content download paths, segment-wise prefixes of url_path
        v1_both=v1("v1-both", [V1_SECRET_PATH, CONTAINERS]),
        v1_v2only=v1("v1-v2only", [CONTAINERS]),
        v1_other=v1("v1-other", ["/content/dist/other", "/content/beta/rhel/server/7/containers",
                                 "/content/dist/rhel/server/7/containers/secret-other"]),
        v1_prefix=v1("v1-prefix", [CONTAINERS + "/sec", "/content/dist/sec"]),
        v1_wildcard=v1("v1-wildcard", ["/content/dist/rhel/$releasever/7/containers", "/content/$x/secret"]),
        v1_exact=v1("v1-exact", [V2_SECRET_PATH + "/", V1_SECRET_PATH]),
        v1_no_order=client("v1-no-order", [e for e in certs.v1_extensions([V1_SECRET_PATH, CONTAINERS])
                                           if e[0] != certs.ORDER_OID]),
        # v3: the Huffman-coded path tree
        v3_both=v3("v3-both", [V1_SECRET_PATH, CONTAINERS, "/content/beta/rhel/server/7/containers"]),
        v3_wildcard=v3("v3-wildcard", ["/content/dist/rhel/$releasever/7/containers", "/content/beta/x"]),
        v3_other=v3("v3-other", ["/content/dist/other", "/content/beta/rhel/server/7/containers"]),
        v3_prefix=v3("v3-prefix", [CONTAINERS + "/sec", "/content/dist/sec"]),
        v2_version=v3("version-2", [V1_SECRET_PATH, CONTAINERS], version="2.0"),
        # not entitlement certificates / not acceptable ones
        plain=client("plain-client"),
        forged=PKI.self_signed("forged", certs.v1_extensions([V1_SECRET_PATH, CONTAINERS])),
        forged_v3=PKI.self_signed("forged-v3", certs.v3_extensions([V1_SECRET_PATH, CONTAINERS])),
        expired=v1("expired", [V1_SECRET_PATH, CONTAINERS], not_before=1577836800, not_after=1609459200),
    )
    CONTENT = ThreadingHTTPServer(("127.0.0.1", 0), _ContentHandler)
    CONTENT.seen = []
    threading.Thread(target=CONTENT.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    DATA = make_metadata(CONTENT.server_address[1])
    SEARCH = SearchBackend().start()


def tearDownModule():
    if CONTENT:
        CONTENT.shutdown()
        CONTENT.server_close()
    if SEARCH:
        SEARCH.stop()
    if DATA:
        shutil.rmtree(DATA, ignore_errors=True)
    if PKI:
        PKI.cleanup()


def tls_directives(verify_client):
    return ("SSLEngine on\n"
            "SSLCertificateFile %s\n"
            "SSLCertificateKeyFile %s\n"
            "SSLCACertificateFile %s\n"
            "SSLVerifyClient %s\n"
            "SSLVerifyDepth 2\n" % (PKI.server_cert, PKI.server_key, PKI.ca_cert, verify_client))


COMMON_CONF = ("SSLSessionCache shmcb:{dir}/ssl_scache(512000)\n"
               "Header always set %s \"%%{SSL_CLIENT_VERIFY}s\"\n" % VERIFY)


# ---------------------------------------------------------------- base class

class TlsTestCase(HttpdTestCase):
    """One httpd per class with TLS on the main server."""

    verify_client = "optional"
    extra_conf = ""
    extra_modules = ("headers",)
    env = NO_PROXY

    @classmethod
    def setUpClass(cls):
        cls.data_src = DATA
        cls.tls = cls.tls_text()
        cls.conf = COMMON_CONF + cls.extra_conf
        super().setUpClass()

    @classmethod
    def tls_text(cls):
        return tls_directives(cls.verify_client)

    @classmethod
    def tearDownClass(cls):
        # the event MPM may log AH03093 when SIGTERM meets a connection being parked
        time.sleep(0.2)
        super().tearDownClass()

    # -- clients

    def client_args(self, cert):
        args = ["--cacert", PKI.ca_cert]
        if cert:
            args += ["--cert", CERTS[cert], "--key", PKI.client_key]
        return args

    def fetch(self, path, cert=None, headers=(), method=None, port=None):
        url = path if port is None else "https://127.0.0.1:%d%s" % (port, path)
        return self.httpd.curl(url, method=method, headers=list(headers), extra=self.client_args(cert))

    def refused(self, path, cert, port=None):
        """curl's (exit code, stderr) for a request whose TLS handshake should fail."""
        url = self.httpd.url(path) if port is None else "https://127.0.0.1:%d%s" % (port, path)
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "20", "--http1.1"]
                           + self.client_args(cert) + [url], capture_output=True, text=True)
        return p.returncode, p.stderr

    # -- assertions

    def assertVerify(self, reply, expected):
        value = reply.header(VERIFY)
        if expected.endswith("*"):
            self.assertTrue(value and value.startswith(expected[:-1]), "%s: %r" % (VERIFY, value))
        else:
            self.assertEqual(value, expected)

    def assertLikeUnknown(self, path, unknown_path, cert, method=None, port=None):
        """`path` answers exactly what the unknown repo/image answers."""
        got = self.fetch(path, cert, method=method, port=port)
        unknown = self.fetch(unknown_path, cert, method=method, port=port)
        self.assertEqual(got.status, 404, got)
        self.assertEqual(got.body, unknown.body)
        self.assertEqual(without_date(got), without_date(unknown))
        if method != "HEAD":
            self.assertEqual(got.body, V2_NAME_UNKNOWN if path.startswith("/v2/") else V1_NOT_FOUND)
        return got

    def assertAllProtectedHidden(self, cert, port=None, verify="SUCCESS"):
        for path, unknown in V2_SECRET_REQUESTS + V1_SECRET_REQUESTS + [LISTING_REQUEST]:
            for method in (None, "HEAD"):
                with self.subTest(cert=cert, path=path, method=method):
                    reply = self.assertLikeUnknown(path, unknown, cert, method=method, port=port)
                    self.assertVerify(reply, verify)

    def assertV2SecretOpen(self, cert, port=None, verify="SUCCESS"):
        cases = [
            ("/v2/private/secret/manifests/latest", (), V2_SECRET_URL + "manifests/1/latest"),
            ("/v2/private/secret/manifests/latest", ["Accept: " + S2], V2_SECRET_URL + "manifests/2/latest"),
            ("/v2/private/secret/tags/list", (), V2_SECRET_URL + "tags/list"),
            ("/v2/private/secret/blobs/" + BLOB, (), V2_SECRET_URL + "blobs/" + BLOB),
        ]
        for path, headers, location in cases:
            for method in (None, "HEAD"):
                with self.subTest(cert=cert, path=path, headers=headers, method=method):
                    reply = self.fetch(path, cert, headers=headers, method=method, port=port)
                    self.assertReply(reply, 302, body=b"", headers=dict(API_VERSION, Location=location))
                    self.assertVerify(reply, verify)

    def assertV1SecretOpen(self, cert, port=None):
        cases = [
            ("/v1/repositories/secret/tags", 200, b'{"latest": "5ec7e7"}', {}),
            ("/v1/repositories/secret/tags/latest", 200, b'"5ec7e7"', {}),
            ("/v1/repositories/library/secret/tags", 200, b'{"latest": "5ec7e7"}', {}),
            ("/v1/repositories/secret/images", 200, b'[{"id": "5ec7e7"}, {"id": "a1b2c3"}]',
             {"X-Docker-Endpoints": "127.0.0.1:%d" % (port or self.httpd.port)}),
            ("/v1/images/5ec7e7/json", 302, b"", {"Location": V1_SECRET_URL + "5ec7e7/json"}),
            ("/v1/images/5ec7e7/ancestry", 302, b"", {"Location": V1_SECRET_URL + "5ec7e7/ancestry"}),
            ("/v1/images/5ec7e7/layer", 302, b"", {"Location": V1_SECRET_URL + "5ec7e7/layer"}),
        ]
        for path, status, body, headers in cases:
            with self.subTest(cert=cert, path=path):
                reply = self.fetch(path, cert, port=port)
                self.assertReply(reply, status, body=body, headers=dict(V1_HEADERS, **headers))

    def assertV2SecretHidden(self, cert, port=None, verify="SUCCESS"):
        for path, unknown in V2_SECRET_REQUESTS:
            with self.subTest(cert=cert, path=path):
                self.assertVerify(self.assertLikeUnknown(path, unknown, cert, port=port), verify)

    def assertV1SecretHidden(self, cert, port=None):
        for path, unknown in V1_SECRET_REQUESTS:
            with self.subTest(cert=cert, path=path):
                self.assertLikeUnknown(path, unknown, cert, port=port)

    def assertListingOpen(self, cert):
        reply = self.fetch(LISTING_REQUEST[0], cert)
        self.assertReply(reply, 302, body=b"", headers=dict(API_VERSION, Location=LISTING_URL + "tags/list"))

    def assertListingHidden(self, cert):
        self.assertLikeUnknown(*LISTING_REQUEST, cert)

    def assertCatalog(self, cert, names, port=None, path="/v2/_catalog", link=None):
        reply = self.fetch(path, cert, port=port)
        self.assertReply(reply, 200, body=catalog_body(names), headers=dict(API_VERSION, **{"Content-Type": JSON}))
        self.assertEqual(reply.header("Link"), link)

    def assertHandshakeRefused(self, cert, alert, port=None):
        rc, err = self.refused("/v2/private/secret/manifests/latest", cert, port=port)
        self.assertNotEqual(rc, 0, "the TLS handshake was not refused")
        self.assertIn(alert, err)


# ---------------------------------------------------------------- SSLVerifyClient optional

class VerifiedClientTest(TlsTestCase):
    """The recommended setup: `SSLVerifyClient optional` with the entitlement
    CA, default mod_crane settings; GSA search and long keep-alive."""

    @classmethod
    def setUpClass(cls):
        cls.extra_conf = "CraneGSAURL %s\nKeepAliveTimeout 30\n" % SEARCH.url("/gsa")
        super().setUpClass()

    # -- entitled v1 certificates

    def test_entitled_v1_cert_opens_v2_and_v1_protected_repos(self):
        self.assertV2SecretOpen("v1_both")
        self.assertV1SecretOpen("v1_both")

    def test_v1_cert_opens_only_the_repos_whose_path_it_lists(self):
        self.assertV2SecretOpen("v1_v2only")
        self.assertV1SecretHidden("v1_v2only")

    def test_v1_content_path_equal_to_url_path_entitles_it(self):
        # "/content/dist/rhel/server/7/containers/secret/" (trailing slash normalised away)
        self.assertV2SecretOpen("v1_exact")
        self.assertV1SecretOpen("v1_exact")

    def test_v1_dollar_name_segment_matches_any_segment(self):
        # /content/dist/rhel/$releasever/7/containers and /content/$x/secret
        self.assertV2SecretOpen("v1_wildcard")
        self.assertV1SecretOpen("v1_wildcard")

    def test_v1_has_no_listing_rule(self):
        self.assertListingHidden("v1_both")

    # -- certificates that entitle nothing asked for

    def test_cert_for_other_paths_answers_like_unknown_repo(self):
        self.assertAllProtectedHidden("v1_other")

    def test_prefix_that_is_not_a_whole_segment_entitles_nothing(self):
        # .../containers/sec does not entitle .../containers/secret; /content/dist/sec not /content/dist/secret
        self.assertAllProtectedHidden("v1_prefix")

    def test_v1_paths_without_order_extension_entitle_nothing(self):
        self.assertAllProtectedHidden("v1_no_order")

    def test_plain_client_cert_from_the_ca_entitles_nothing(self):
        self.assertAllProtectedHidden("plain")

    def test_unknown_entitlement_version_entitles_nothing(self):
        self.assertAllProtectedHidden("v2_version")

    def test_no_cert_answers_like_unknown_repo(self):
        self.assertAllProtectedHidden(None, verify="NONE")

    def test_hidden_repo_answer_is_the_same_with_or_without_a_cert(self):
        for path, _ in V2_SECRET_REQUESTS + V1_SECRET_REQUESTS:
            with self.subTest(path=path):
                a = self.fetch(path, "v1_other")
                b = self.fetch(path, None)
                strip = lambda r: [h for h in without_date(r) if h[0] != VERIFY.lower()]
                self.assertEqual((a.status, a.body, strip(a)), (b.status, b.body, strip(b)))

    # -- v3

    def test_v3_tree_containing_the_path_opens_the_repos(self):
        self.assertV2SecretOpen("v3_both")
        self.assertV1SecretOpen("v3_both")

    def test_v3_dollar_name_node_matches_any_segment(self):
        self.assertV2SecretOpen("v3_wildcard")
        self.assertV1SecretHidden("v3_wildcard")

    def test_v3_listing_is_entitled_when_the_walk_reaches_its_parent(self):
        for cert in ("v3_both", "v3_wildcard", "v3_prefix"):
            with self.subTest(cert=cert):
                self.assertListingOpen(cert)

    def test_v3_tree_without_the_path_entitles_nothing(self):
        self.assertAllProtectedHidden("v3_other")

    def test_v3_prefix_that_is_not_a_whole_segment_entitles_nothing(self):
        self.assertV2SecretHidden("v3_prefix")
        self.assertV1SecretHidden("v3_prefix")

    # -- certificates mod_ssl refuses

    def test_forged_cert_is_refused_in_the_handshake(self):
        self.assertHandshakeRefused("forged", "unknown ca")

    def test_expired_cert_is_refused_in_the_handshake(self):
        self.assertHandshakeRefused("expired", "certificate expired")

    def test_certificate_expiring_during_keep_alive_stops_entitling(self):
        # mod_ssl verified it at the handshake and keeps saying SUCCESS on
        # the connection; mod_crane's own date check must refuse it
        not_after = int(time.time()) + 4
        cert = PKI.v1("short-lived", [CONTAINERS], not_after=not_after)
        ctx = ssl.create_default_context(cafile=PKI.ca_cert)
        ctx.load_cert_chain(cert, PKI.client_key)
        conn = http.client.HTTPSConnection("127.0.0.1", self.httpd.port, context=ctx, timeout=20)
        try:
            def get(path):
                conn.request("GET", path)
                r = conn.getresponse()
                return r.status, r.getheader(VERIFY), r.getheader("Location"), r.read()

            self.assertEqual(get("/v2/private/secret/tags/list"),
                             (302, "SUCCESS", V2_SECRET_URL + "tags/list", b""))
            self.assertLess(time.time(), not_after, "too slow: the certificate expired already")
            sock = conn.sock
            time.sleep(max(0.0, not_after + 1.5 - time.time()))
            self.assertEqual(get("/v2/private/secret/tags/list"), (404, "SUCCESS", None, V2_NAME_UNKNOWN))
            self.assertIs(conn.sock, sock, "not the same connection")
            self.assertEqual(get("/v2/_catalog"), (200, "SUCCESS", None, catalog_body(UNPROTECTED)))
            self.assertEqual(get("/v2/v2repo/tags/list")[0], 302)
            self.assertIs(conn.sock, sock, "not the same connection")
        finally:
            conn.close()
        # a new connection cannot even be made with it
        ctx2 = ssl.create_default_context(cafile=PKI.ca_cert)
        ctx2.load_cert_chain(cert, PKI.client_key)
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            conn = http.client.HTTPSConnection("127.0.0.1", self.httpd.port, context=ctx2, timeout=20)
            try:
                conn.request("GET", "/v2/private/secret/tags/list")
                conn.getresponse().read()
            finally:
                conn.close()

    # -- unprotected repos, _catalog, search

    def test_unprotected_repos_work_with_any_cert_or_none(self):
        for cert in (None, "v1_both", "v1_other", "v3_both", "plain", "v2_version"):
            with self.subTest(cert=cert):
                self.assertReply(self.fetch("/v2/v2repo/tags/list", cert), 302, body=b"",
                                 headers={"Location": "http://cdn.example.com/pulp/docker/v2/v2repo/tags/list"})
                self.assertReply(self.fetch("/v1/repositories/busybox/tags", cert), 200,
                                 body=b'{"1.0": "a1b2c3", "latest": "d4e5f6"}', headers=V1_HEADERS)
                # a1b2c3 is also in the protected secret: busybox sorts first either way
                self.assertReply(self.fetch("/v1/images/a1b2c3/json", cert), 302, body=b"",
                                 headers={"Location": "http://cdn.example.com/pulp/docker/busybox/a1b2c3/json"})
                self.assertReply(self.fetch("/v2/", cert), 200, body=b"{}")

    def test_catalog_lists_protected_repos_only_for_entitled_certs(self):
        self.assertCatalog(None, UNPROTECTED)
        for cert in ("v1_other", "v1_prefix", "plain", "v2_version"):
            with self.subTest(cert=cert):
                self.assertCatalog(cert, UNPROTECTED)
        with_v1 = sorted(UNPROTECTED + ["private/secret", "tls/local"])
        self.assertCatalog("v1_both", with_v1)
        self.assertCatalog("v1_wildcard", with_v1)
        self.assertCatalog("v3_both", sorted(with_v1 + ["tls/listing"]))
        self.assertCatalog("v3_prefix", sorted(UNPROTECTED + ["tls/listing"]))

    def test_catalog_pages_with_a_cert(self):
        self.assertCatalog("v1_both", ["private/secret"], path="/v2/_catalog?n=1&last=org%2Ftags%2Fapp",
                           link='</v2/_catalog?n=1&last=private%2Fsecret>; rel="next"')
        self.assertCatalog(None, ["v2repo"], path="/v2/_catalog?n=1&last=org%2Ftags%2Fapp",
                           link='</v2/_catalog?n=1&last=v2repo>; rel="next"')

    def test_search_shows_protected_repos_only_for_entitled_certs(self):
        q = "private/secret secret busybox tls/listing"
        path = "/v1/search?q=" + q.replace(" ", "+")
        for cert, names in ((None, ["busybox"]), ("plain", ["busybox"]), ("v1_other", ["busybox"]),
                            ("v1_v2only", ["private/secret", "busybox"]),
                            ("v1_both", ["private/secret", "secret", "busybox"]),
                            ("v3_both", ["private/secret", "secret", "busybox", "tls/listing"])):
            with self.subTest(cert=cert):
                self.assertReply(self.fetch(path, cert), 200, body=search_body(q, names),
                                 headers=dict(V1_HEADERS, **{"Content-Type": JSON}))

    # -- other clients

    def s_client(self, request_path, cert):
        args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.httpd.port, "-CAfile", PKI.ca_cert,
                "-verify_return_error", "-quiet"]
        if cert:
            args += ["-cert", CERTS[cert], "-key", PKI.client_key]
        request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                   % (request_path, self.httpd.port)).encode()
        p = subprocess.run(args, input=request, capture_output=True, timeout=30)
        head = p.stdout.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        return head[0], dict(line.split(": ", 1) for line in head[1:] if ": " in line), p

    def test_openssl_s_client(self):
        status, headers, p = self.s_client("/v2/private/secret/manifests/latest", "v3_both")
        self.assertEqual(status, "HTTP/1.1 302 Found", p)
        self.assertEqual(headers.get("Location"), V2_SECRET_URL + "manifests/1/latest")
        self.assertEqual(headers.get(VERIFY), "SUCCESS")
        status, headers, p = self.s_client("/v2/private/secret/manifests/latest", None)
        self.assertEqual(status, "HTTP/1.1 404 Not Found", p)
        self.assertEqual(headers.get(VERIFY), "NONE")
        status, headers, p = self.s_client("/v2/private/secret/manifests/latest", "v1_other")
        self.assertEqual(status, "HTTP/1.1 404 Not Found", p)
        self.assertEqual(headers.get(VERIFY), "SUCCESS")

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo is not installed")
    def test_skopeo_list_tags(self):
        def list_tags(cert):
            certdir = tempfile.mkdtemp(prefix="crane-skopeo-")
            try:
                shutil.copy(PKI.ca_cert, os.path.join(certdir, "ca.crt"))
                if cert:
                    shutil.copy(CERTS[cert], os.path.join(certdir, "client.cert"))
                    shutil.copy(PKI.client_key, os.path.join(certdir, "client.key"))
                env = dict(os.environ, **NO_PROXY)
                return subprocess.run(["skopeo", "--command-timeout", "30s", "list-tags", "--cert-dir", certdir,
                                       "docker://127.0.0.1:%d/tls/local" % self.httpd.port],
                                      capture_output=True, text=True, env=env, timeout=60)
            finally:
                shutil.rmtree(certdir, ignore_errors=True)

        CONTENT.seen.clear()
        p = list_tags("v1_both")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["Tags"], ["1.0", "latest"])
        self.assertEqual(CONTENT.seen, [CONTAINERS + "/local/tags/list"])
        for cert in (None, "v1_other"):
            with self.subTest(cert=cert):
                CONTENT.seen.clear()
                p = list_tags(cert)
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertEqual(CONTENT.seen, [])


# ---------------------------------------------------------------- SSLVerifyClient optional_no_ca

class UnverifiedClientDefaultTest(TlsTestCase):
    """`SSLVerifyClient optional_no_ca` (Crane's old recommendation) with the
    default CraneAcceptUnverifiedCertificates Off: a certificate mod_ssl
    could not verify entitles nothing."""

    verify_client = "optional_no_ca"

    def test_forged_self_signed_cert_answers_like_unknown_repo(self):
        self.assertAllProtectedHidden("forged", verify="FAILED:*")
        self.assertAllProtectedHidden("forged_v3", verify="FAILED:*")

    def test_forged_cert_answer_is_exactly_the_no_cert_answer(self):
        forged = self.fetch("/v2/private/secret/manifests/latest", "forged")
        none = self.fetch("/v2/private/secret/manifests/latest", None)
        self.assertEqual(forged.status, 404)
        self.assertEqual(forged.body, V2_NAME_UNKNOWN)
        self.assertEqual(forged.body, none.body)
        self.assertEqual(forged.header(VERIFY), "FAILED:self-signed certificate")
        strip = lambda r: [h for h in without_date(r) if h[0] != VERIFY.lower()]
        self.assertEqual(strip(forged), strip(none))

    def test_forged_cert_does_not_list_protected_repos(self):
        self.assertCatalog("forged", UNPROTECTED)

    def test_verified_cert_still_entitles(self):
        self.assertV2SecretOpen("v1_both")
        self.assertV1SecretOpen("v3_both")
        self.assertCatalog("v1_both", sorted(UNPROTECTED + ["private/secret", "tls/local"]))

    def test_expired_cert_is_still_refused_in_the_handshake(self):
        self.assertHandshakeRefused("expired", "certificate expired")

    def test_unprotected_repos_work_with_forged_cert(self):
        self.assertReply(self.fetch("/v2/v2repo/tags/list", "forged"), 302,
                         headers={"Location": "http://cdn.example.com/pulp/docker/v2/v2repo/tags/list"})


class UnverifiedClientAcceptedTest(TlsTestCase):
    """optional_no_ca with CraneAcceptUnverifiedCertificates On: Crane's old
    behaviour, where anyone can mint a certificate listing any path."""

    verify_client = "optional_no_ca"
    extra_conf = "CraneAcceptUnverifiedCertificates On\n"

    def test_forged_self_signed_cert_entitles(self):
        self.assertV2SecretOpen("forged", verify="FAILED:self-signed certificate")
        self.assertV1SecretOpen("forged")
        self.assertV2SecretOpen("forged_v3", verify="FAILED:self-signed certificate")
        self.assertCatalog("forged", sorted(UNPROTECTED + ["private/secret", "tls/local"]))
        self.assertCatalog("forged_v3", sorted(UNPROTECTED + ["private/secret", "tls/listing", "tls/local"]))

    def test_verified_certs_work_as_usual(self):
        self.assertV2SecretOpen("v1_both")
        self.assertAllProtectedHidden("v1_other")
        self.assertAllProtectedHidden("plain")
        self.assertAllProtectedHidden(None, verify="NONE")

    def test_expired_cert_is_refused_in_the_handshake(self):
        # even optional_no_ca only forgives unknown issuers: mod_crane's own
        # date check is covered by the keep-alive test of VerifiedClientTest
        self.assertHandshakeRefused("expired", "certificate expired")


# ---------------------------------------------------------------- TLS virtual hosts

class VirtualHostTest(TlsTestCase):
    """TLS only in <VirtualHost>s; CraneDataDir (from the harness) and
    CraneAcceptUnverifiedCertificates On are main-server directives. The
    first vhost inherits both; the second turns acceptance Off again."""

    @classmethod
    def tls_text(cls):
        return "# TLS is configured in the <VirtualHost>s below\n"

    @classmethod
    def setUpClass(cls):
        cls.port2 = free_port()
        vhost = ("<VirtualHost 127.0.0.1:%s>\n"
                 "    ServerName 127.0.0.1\n"
                 "%s"
                 "%s"
                 "</VirtualHost>\n")
        indent = lambda text: "".join("    " + line + "\n" for line in text.splitlines())
        cls.extra_conf = ("CraneAcceptUnverifiedCertificates On\n"
                          "Listen 127.0.0.1:%d\n" % cls.port2
                          + vhost % ("{port}", indent(tls_directives("optional_no_ca")), "")
                          + vhost % (cls.port2, indent(tls_directives("optional_no_ca")),
                                     "    CraneAcceptUnverifiedCertificates Off\n"))
        super().setUpClass()

    def test_main_server_itself_does_not_speak_tls_here(self):
        # sanity: every answer below comes from a vhost's TLS setup
        with open(self.httpd.conf_path) as f:
            text = f.read()
        self.assertEqual(text.count("SSLEngine on"), 2)

    def test_vhost_serves_the_main_server_data_dir(self):
        for port in (None, self.port2):
            with self.subTest(port=port):
                self.assertReply(self.fetch("/v2/v2repo/tags/list", port=port), 302,
                                 headers={"Location": "http://cdn.example.com/pulp/docker/v2/v2repo/tags/list"})
                self.assertCatalog(None, UNPROTECTED, port=port)

    def test_entitled_cert_opens_protected_repos_in_both_vhosts(self):
        for port in (None, self.port2):
            with self.subTest(port=port):
                self.assertV2SecretOpen("v1_both", port=port)
                self.assertV1SecretOpen("v3_both", port=port)
                self.assertCatalog("v1_both", sorted(UNPROTECTED + ["private/secret", "tls/local"]), port=port)

    def test_unentitled_or_missing_cert_answers_like_unknown_repo_in_both_vhosts(self):
        for port in (None, self.port2):
            self.assertAllProtectedHidden("v1_other", port=port)
            self.assertAllProtectedHidden(None, port=port, verify="NONE")

    def test_vhost_inherits_accept_unverified_from_main_server(self):
        self.assertV2SecretOpen("forged", verify="FAILED:self-signed certificate")

    def test_vhost_can_turn_accept_unverified_off(self):
        self.assertAllProtectedHidden("forged", port=self.port2, verify="FAILED:*")
        self.assertCatalog("forged", UNPROTECTED, port=self.port2)


# ---------------------------------------------------------------- the shipped sample

class SampleConfigTest(TlsTestCase):
    """apache-conf/crane-ssl.conf itself, with the test PKI's files, the test
    port and the harness's data dir put in."""

    SAMPLE = os.path.join(REPO, "apache-conf", "crane-ssl.conf")

    @classmethod
    def tls_text(cls):
        return "# TLS comes from apache-conf/crane-ssl.conf below\n"

    @classmethod
    def setUpClass(cls):
        with open(cls.SAMPLE) as f:
            text = f.read()
        replacements = [
            ("LoadModule crane_module /usr/lib/apache2/modules/mod_crane.so\n", ""),  # the harness loads it
            ("CraneConfig /etc/crane.conf\n", ""),  # the harness gives CraneDataDir
            ("<VirtualHost *:443>", "<VirtualHost *:{port}>"),
            ("ServerName registry.example.com", "ServerName 127.0.0.1"),
            ("/etc/pki/tls/certs/registry.example.com.crt", PKI.server_cert),
            ("/etc/pki/tls/private/registry.example.com.key", PKI.server_key),
            ("SSLCACertificateFile /etc/pki/entitlement/ca.pem", "SSLCACertificateFile " + PKI.ca_cert),
        ]
        for old, new in replacements:
            if old not in text:
                raise AssertionError("%s no longer holds %r" % (cls.SAMPLE, old))
            text = text.replace(old, new)
        active = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        leftover = [line for line in active if "/etc/" in line or "/usr/" in line]
        if leftover:
            raise AssertionError("unreplaced paths in the sample: %r" % leftover)
        cls.sample_text = text
        cls.extra_conf = text
        super().setUpClass()

    def test_sample_asks_for_verified_certificates(self):
        self.assertIn("SSLVerifyClient optional\n", self.sample_text)
        self.assertNotIn("ExportCertData", "\n".join(
            line for line in self.sample_text.splitlines() if not line.strip().startswith("#")))

    def test_sample_serves_protected_repos_to_entitled_certs_only(self):
        self.assertV2SecretOpen("v1_both")
        self.assertV1SecretOpen("v3_both")
        self.assertAllProtectedHidden("v1_other")
        self.assertAllProtectedHidden(None, verify="NONE")
        self.assertCatalog("v1_both", sorted(UNPROTECTED + ["private/secret", "tls/local"]))
        self.assertCatalog(None, UNPROTECTED)

    def test_sample_refuses_forged_cert_in_the_handshake(self):
        self.assertHandshakeRefused("forged", "unknown ca")

    def test_sample_admin_pages_answer_local_clients(self):
        reply = self.fetch("/crane/repositories/v2")
        self.assertEqual(reply.status, 200, reply)


if __name__ == "__main__":
    unittest.main()
