"""HTTP/2 through mod_http2 (`Protocols h2 h2c http/1.1`): every mode answers
over h2c (cleartext, curl --http2-prior-knowledge and the HTTP/1.1 Upgrade
of curl --http2) and over TLS with ALPN h2 (curl --http2), real clients
that speak h2 (skopeo, containerd's ctr) pull over it, and entitlement
certificates keep each connection to its own certificate's repos however
many streams and connections there are (TLS 1.2 and 1.3, resumed sessions;
Python's ssl module with the h2 protocol library, python3-h2).

That a request really went over HTTP/2 is read from the server: the access
log's %r shows "HTTP/2.0" (and curl's status line "HTTP/2"). The images are
test_e2e_clients' (e2e/app) and test_e2e_oci's (e2e/oci, with an SBOM and a
signature). mod_http2 does not support the prefork MPM (httpd warns
AH10034 at start and refuses the h2c Upgrade): under prefork these tests
skip with that reason.
"""

import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import MPM
from test_e2e_clients import (HTPASSWD_PASSWORD, HTPASSWD_USER, REPO_ID, REPOSITORY, TLS_CONF,
                              BasicAuthMode, E2ECase, make_cert_dirs, new_test_pki, sha256)
from test_e2e_containerd import Containerd
from test_e2e_oci import REPO_ID as OCI_REPO_ID, WithOciImages



def _import_h2():
    """python3-h2 (Debian's, pure Python) also when the tests run under
    another Python 3 than Debian's own (it looks in dist-packages then)."""
    try:
        import h2.config, h2.connection, h2.events  # noqa: E401
        return h2
    except ImportError:
        pass
    dist = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(dist, "h2")) and dist not in sys.path:
        sys.path.append(dist)
        try:
            import h2.config, h2.connection, h2.events  # noqa: E401,F811
            return h2
        except ImportError:
            pass
    return None


h2 = _import_h2()
NGHTTP = shutil.which("nghttp")

S2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PREFORK_REASON = ("mod_http2 does not support the prefork MPM: httpd warns AH10034 (\"the HTTP/2 protocol "
                  "will be inactive\"; it refuses the h2c Upgrade, though h2c prior knowledge still answers), so "
                  "HTTP/2 is tested under the event MPM only")


class H2Case(WithOciImages, E2ECase):
    """An E2ECase whose httpd loads mod_http2 and speaks h2 and h2c."""

    @classmethod
    def setUpClass(cls):
        if MPM == "prefork":
            raise unittest.SkipTest(PREFORK_REASON)
        super().setUpClass()

    @classmethod
    def make_httpd(cls, **kw):
        kw["extra_modules"] = tuple(cls.extra_modules) + ("http2",)
        kw["conf"] = kw.get("conf", cls.conf) + "\nProtocols h2 h2c http/1.1\n"
        return super().make_httpd(**kw)

    def curl_args(self):
        """curl's options for this mode (TLS, credentials)."""
        return []

    def h2(self, path, *extra, accept=None):
        """curl over HTTP/2: (status line's protocol, Reply)."""
        args = ["curl", "-sS", "-i", "--max-time", "20", "--path-as-is"] + self.curl_args() + list(extra)
        if accept:
            args += ["-H", "Accept: " + accept]
        p = subprocess.run(args + [self.httpd.url(path) if path.startswith("/") else path], capture_output=True)
        if p.returncode != 0:
            raise AssertionError("curl %s failed (%d): %s" % (path, p.returncode, p.stderr.decode()))
        from harness import parse_curl_output
        raw = p.stdout
        if raw.startswith(b"HTTP/1.1 101"):  # the h2c upgrade's own answer
            raw = raw.split(b"\r\n\r\n", 1)[1]
        return raw.split(b" ", 1)[0].decode(), parse_curl_output(raw)

    def logged_lines(self, request, timeout=10):
        """The access log's lines for `request` (a regex), waiting for the
        first: httpd writes a line once the response has gone out, so it
        may come after the client has read the answer."""
        end = time.time() + timeout
        while True:
            lines = [l for l in self.access_log().splitlines() if re.search(r'"%s HTTP/' % request, l)]
            if lines or time.time() > end:
                return lines
            time.sleep(0.05)

    def logged_over_h2(self, request):
        """Whether the access log has `request` (a regex) over HTTP/2."""
        return any(' HTTP/2.0" ' in l for l in self.logged_lines(request))


class H2Pulls:
    """curl over h2 in every mode (mixed into an H2Case); `h2_opts` chooses
    h2c prior knowledge, the h2c upgrade or ALPN."""

    h2_opts = ("--http2-prior-knowledge",)

    def get_followed(self, path, accept=None):
        """One GET over h2 and, in redirect mode, the GET of its Location
        (also over h2): the final Reply."""
        proto, reply = self.h2(path, *self.h2_opts, accept=accept)
        self.assertEqual(proto, "HTTP/2", reply)
        if not self.serve_content and path.startswith("/v2/") and ("/manifests/" in path or "/blobs/" in path):
            self.assertEqual(reply.status, 302, reply)
            location = reply.header("Location")
            self.assertTrue(location.startswith(self.base_url + "/"), location)
            proto, reply = self.h2(location, *self.h2_opts)
            self.assertEqual(proto, "HTTP/2", reply)
        return reply

    def test_version_check(self):
        proto, reply = self.h2("/v2/", *self.h2_opts)
        self.assertEqual((proto, reply.status), ("HTTP/2", 200), reply)
        self.assertEqual(reply.header("Docker-Distribution-API-Version"), "registry/2.0")

    def test_docker_manifest_and_blob(self):
        single = self.images.single
        reply = self.get_followed("/v2/%s/manifests/1.0" % REPO_ID, accept=S2)
        self.assertEqual((reply.status, reply.body), (200, single.manifest))
        self.assertEqual(reply.header("Content-Type"), S2)
        reply = self.get_followed("/v2/%s/blobs/%s" % (REPO_ID, single.layer_digest))
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(sha256(reply.body), single.layer_digest)
        self.assertTrue(self.logged_over_h2(r"GET /v2/%s/blobs/%s" % (REPO_ID, single.layer_digest)))

    def test_oci_index_and_the_referrers_over_h2(self):
        oci = self.oci
        reply = self.get_followed("/v2/%s/manifests/%s" % (OCI_REPO_ID, oci.index.digest))
        self.assertEqual((reply.status, reply.body), (200, oci.index.manifest))
        proto, reply = self.h2("/v2/%s/referrers/%s" % (OCI_REPO_ID, oci.index.digest), *self.h2_opts)
        self.assertEqual((proto, reply.status), ("HTTP/2", 200), reply)
        self.assertEqual(json.loads(reply.body)["manifests"], [oci.sig.descriptor()])

    def test_unknown_manifest_is_the_registry_error(self):
        # redirect mode: the static tree's JSON 404 (ErrorDocument)
        reply = self.get_followed("/v2/%s/manifests/nope" % REPO_ID, accept=S2)
        self.assertEqual(reply.status, 404, reply)
        self.assertEqual(json.loads(reply.body)["errors"][0]["code"], "MANIFEST_UNKNOWN")

    def test_many_urls_share_one_connection(self):
        """All as streams of one h2 connection: curl over TLS; nghttp
        (nghttp2-client) for h2c, as curl 7.88 fails re-using an h2c
        prior-knowledge connection ("Error in the HTTP2 framing layer", a
        client-side fault: nghttp and python3-h2 multiplex the same server)."""
        single = self.images.single
        paths = ["/v2/", "/v2/%s/tags/list" % REPO_ID, "/v2/%s/tags/list" % OCI_REPO_ID,
                 "/v2/%s/manifests/%s" % (REPO_ID, single.digest)]
        if self.httpd.scheme == "https":
            args = ["curl", "-sS", "--max-time", "20", "-w", "%{http_version} %{num_connects} %{http_code}\\n"]
            args += self.curl_args() + list(self.h2_opts)
            for path in paths:
                args += ["-o", "/dev/null", self.httpd.url(path)]
            p = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = [line.split() for line in p.stdout.splitlines()]
            self.assertEqual([r[0] for r in rows], ["2"] * len(paths))
            self.assertEqual(sum(int(r[1]) for r in rows), 1, p.stdout)  # one connect for all
            self.assertEqual([r[2] for r in rows], [self.expected_code(path) for path in paths], p.stdout)
            return
        if not NGHTTP:
            self.skipTest("nghttp is not installed (apt-get install nghttp2-client)")
        args = [NGHTTP, "-ns"]
        for header in self.nghttp_headers():
            args += ["-H", header]
        p = subprocess.run(args + [self.httpd.url(path) for path in paths], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # nghttp's summary: one row per stream of its one connection
        rows = re.findall(r"^\s*(\d+)\s+\S+\s+\S+\s+\S+\s+(\d{3})\s+\S+\s+(\S+)$", p.stdout, re.M)
        self.assertEqual(sorted((path, code) for _sid, code, path in rows), sorted((path, self.expected_code(path)) for path in paths),
                         p.stdout)
        self.assertEqual(len({sid for sid, _c, _p in rows}), len(paths))

    def nghttp_headers(self):
        return []

    def expected_code(self, path):
        return "302" if "/manifests/" in path and not self.serve_content else "200"


class H2cRedirectModeTest(H2Pulls, H2Case):
    """h2c with prior knowledge, redirects into /pub."""


class H2cUpgradeServeContentTest(H2Pulls, H2Case):
    """h2c through the HTTP/1.1 Upgrade (curl --http2 on http://), serve mode."""

    serve_content = True
    h2_opts = ("--http2",)

    def test_many_urls_share_one_connection(self):
        self.skipTest("the h2c upgrade is per request; prior knowledge covers one connection")


class H2cBasicAuthTest(BasicAuthMode, H2Pulls, H2Case):
    """Basic auth over h2c: credentials on every stream."""

    def curl_args(self):
        return ["-u", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def nghttp_headers(self):
        token = base64.b64encode(("%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)).encode()).decode()
        return ["authorization: Basic " + token]

    def test_without_credentials_is_401_over_h2(self):
        p = subprocess.run(["curl", "-sS", "-i", "--http2-prior-knowledge",
                            self.httpd.url("/v2/%s/manifests/1.0" % REPO_ID)], capture_output=True)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 401"), p.stdout[:200])
        from harness import parse_curl_output
        reply = parse_curl_output(p.stdout)
        self.assertEqual(reply.header("WWW-Authenticate"), 'Basic realm="Crane registry"')


# ---- TLS: ALPN h2, and the clients that speak it ----


class H2TlsCase(H2Case):
    """TLS (test CA; SSLVerifyClient optional) with ALPN h2."""

    h2_opts = ("--http2",)

    @classmethod
    def setup_tls(cls):
        cls.pki = new_test_pki(cls.work)
        cls.certs = make_cert_dirs(cls.pki)
        cls.tls = TLS_CONF.format(pki=cls.pki)

    def curl_args(self):
        return ["--cacert", self.pki.ca_cert]

    def client_args(self):
        return ["--cert-dir", os.path.join(self.certs, "ca-only")]

    def ctr_args(self):
        return []


class H2Clients:
    """skopeo and containerd against a server that offers h2 (mixed into an
    H2TlsCase). Measured: neither asks for it. Both are Go programs that
    give net/http a TLS configuration of their own (CA, client
    certificates) without turning HTTP/2 back on, so their ALPN offers
    http/1.1 only; they pull over HTTP/1.1 while curl, on the same server,
    gets h2. The tests pin that down (the day a client starts speaking h2
    they fail and should be turned round) and check every byte."""

    def assertProtocol(self, request, protocol):
        lines = self.logged_lines(request)
        self.assertTrue(lines, "no %s in the access log:\n%s" % (request, self.access_log()))
        for line in lines:
            self.assertIn(" %s\" " % protocol, line)

    def test_skopeo_copies_with_h2_offered(self):
        dest = self.copy("multi", "--all")
        self.assertCopied(dest, self.images.multi.manifest, self.images.multi.images)
        arm = self.images.multi.image("arm64")
        self.assertProtocol(r"GET /v2/%s/blobs/%s" % (REPO_ID, arm.layer_digest), "HTTP/1.1")
        # the same server answers curl over h2
        proto, reply = self.h2("/v2/%s/blobs/%s" % (REPO_ID, arm.layer_digest), *self.h2_opts)
        self.assertEqual(proto, "HTTP/2")

    def test_containerd_pulls_with_h2_offered(self):
        """Over TLS through a hosts.toml (server, host and ca), as a node
        sets up a private registry: ctr's own --tlscacert alone speaks plain
        HTTP to 127.0.0.1 (containerd 1.6 treats a loopback host as
        plain-HTTP unless hosts.toml says https)."""
        ctd = Containerd()
        try:
            if ctd.reason:
                self.skipTest(ctd.reason)
            hosts = tempfile.mkdtemp(prefix="hosts-", dir=self.work)
            os.makedirs(os.path.join(hosts, self.host()))
            url = "https://%s" % self.host()
            with open(os.path.join(hosts, self.host(), "hosts.toml"), "w") as f:
                f.write('server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "%s"\n'
                        % (url, url, self.pki.ca_cert))
            index = self.oci.index
            name = "%s/%s:multi" % (self.host(), OCI_REPO_ID)
            ctd.ctr("images", "pull", "--snapshotter", "native", "--hosts-dir", hosts, *self.ctr_args(),
                    "--all-platforms", name)
            for image in index.images:
                for digest, data in image.blobs.items():
                    self.assertEqual(ctd.ctr("content", "get", digest).stdout, data)
            self.assertProtocol(r"GET /v2/%s/blobs/%s" % (OCI_REPO_ID, index.images[1].layer_digest), "HTTP/1.1")
        finally:
            ctd.stop()


class H2TlsRedirectModeTest(H2Clients, H2Pulls, H2TlsCase):
    pass


class H2TlsServeContentTest(H2Clients, H2Pulls, H2TlsCase):
    serve_content = True


class H2TlsBasicAuthTest(BasicAuthMode, H2Clients, H2Pulls, H2TlsCase):

    def curl_args(self):
        return ["--cacert", self.pki.ca_cert, "-u", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def client_args(self):
        return super().client_args() + ["--creds", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def ctr_args(self):
        return ["--user", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]


# ---- entitlement certificates over h2 ----


class H2Client:
    """One TLS connection speaking h2 (python3-h2), many streams on it."""

    def __init__(self, port, context, session=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.tls = context.wrap_socket(sock, server_hostname="127.0.0.1", session=session)
        self.authority = "127.0.0.1:%d" % port
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.tls.sendall(self.conn.data_to_send())

    @property
    def alpn(self):
        return self.tls.selected_alpn_protocol()

    def get_all(self, paths, accept=S2 + ", " + OCI_MANIFEST):
        """Sends every path as its own stream at once; {path: (status, body)}."""
        streams = {}
        for path in paths:
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "https"),
                                         (":authority", self.authority), ("accept", accept)], end_stream=True)
            streams[sid] = path
        self.tls.sendall(self.conn.data_to_send())
        status, body, done = {}, {}, set()
        while len(done) < len(streams):
            data = self.tls.recv(65536)
            if not data:
                raise AssertionError("connection closed with streams open: %r" % (set(streams) - done))
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body[event.stream_id] = body.get(event.stream_id, b"") + event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError("stream %d reset" % event.stream_id)
            self.tls.sendall(self.conn.data_to_send())
        return {streams[sid]: (status[sid], body.get(sid, b"")) for sid in streams}

    def close(self):
        try:
            self.conn.close_connection()
            self.tls.sendall(self.conn.data_to_send())
        except OSError:
            pass
        self.tls.close()


class H2EntitlementTest(H2Case):
    """Both repositories protected (e2e/app at /pub/e2e-app, e2e/oci at
    /pub/e2e-oci), serve mode; certificate A entitles e2e/app only, B (a v3
    path tree) e2e/oci only, AB both, and no certificate neither. Each
    connection sends every request as concurrent streams and must see
    exactly its own certificate's repositories."""

    serve_content = True
    protected = True

    @classmethod
    def setUpClass(cls):
        if h2 is None:
            raise unittest.SkipTest("python3-h2 is not installed (apt-get install python3-h2)")
        super().setUpClass()

    @classmethod
    def setup_tls(cls):
        cls.pki = new_test_pki(cls.work)
        cls.certs = {"A": cls.pki.v1("A", ["/pub/e2e-app"]), "B": cls.pki.v3("B", ["/pub/e2e-oci"]),
                     "AB": cls.pki.v1("AB", ["/pub/e2e-app", "/pub/e2e-oci"]), None: None}
        cls.tls = TLS_CONF.format(pki=cls.pki)

    def context(self, cert, version=None):
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        ctx.set_alpn_protocols(["h2"])
        if version:
            ctx.minimum_version = ctx.maximum_version = version
        if cert:
            ctx.load_cert_chain(self.certs[cert], self.pki.client_key)
        return ctx

    def requests(self):
        """Every request, each twice (so streams interleave per repo)."""
        paths = []
        for repo in (REPO_ID, OCI_REPO_ID):
            paths += ["/v2/%s/tags/list" % repo, "/v2/%s/manifests/1.0" % repo]
        paths += ["/v2/%s/blobs/%s" % (REPO_ID, self.images.single.layer_digest),
                  "/v2/%s/blobs/%s" % (OCI_REPO_ID, self.oci.single.layer_digest)]
        return paths

    def expected(self, cert):
        allowed = {"A": {REPO_ID}, "B": {OCI_REPO_ID}, "AB": {REPO_ID, OCI_REPO_ID}, None: set()}[cert]
        out = {}
        for path in self.requests():
            repo = REPO_ID if path.startswith("/v2/%s/" % REPO_ID) else OCI_REPO_ID
            out[path] = 200 if repo in allowed else 404
        return out

    def assertSees(self, answers, cert):
        self.assertEqual({p: s for p, (s, _b) in answers.items()}, self.expected(cert), "certificate %s" % cert)
        for path, (status, body) in answers.items():
            if status == 404:
                self.assertEqual(json.loads(body)["errors"][0]["code"], "NAME_UNKNOWN", path)
            elif "/blobs/" in path:
                self.assertEqual(sha256(body), path.rsplit("/", 1)[1])

    def test_each_certificate_sees_its_own_repos_over_many_streams(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for cert in ("A", "B", "AB", None):
                with self.subTest(tls=version.name, cert=cert):
                    c = H2Client(self.httpd.port, self.context(cert, version))
                    try:
                        self.assertEqual(c.alpn, "h2")
                        self.assertEqual(c.tls.version(), version.name.replace("v", "v").replace("_", "."))
                        self.assertSees(c.get_all(self.requests() * 3), cert)
                    finally:
                        c.close()
        self.assertTrue(self.logged_over_h2(r"GET /v2/%s/tags/list" % OCI_REPO_ID))

    def test_concurrent_connections_with_different_certificates(self):
        results, errors = {}, []

        def run(cert, round_):
            try:
                c = H2Client(self.httpd.port, self.context(cert))
                try:
                    results[(cert, round_)] = c.get_all(self.requests() * 2)
                finally:
                    c.close()
            except Exception as e:  # reported below
                errors.append("%s: %r" % (cert, e))

        threads = [threading.Thread(target=run, args=(cert, r)) for r in range(3) for cert in ("A", "B", "AB", None)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 12)
        for (cert, _r), answers in results.items():
            self.assertSees(answers, cert)

    def test_resumed_sessions_keep_their_own_certificate(self):
        """A resumed TLS session (1.2 session cache, 1.3 ticket) carries the
        certificate it was made with: still its own repos only."""
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for cert in ("A", "B"):
                with self.subTest(tls=version.name, cert=cert):
                    ctx = self.context(cert, version)
                    first = H2Client(self.httpd.port, ctx)
                    self.assertSees(first.get_all(self.requests()), cert)
                    session = first.tls.session
                    first.close()
                    again = H2Client(self.httpd.port, ctx, session=session)
                    try:
                        self.assertTrue(again.tls.session_reused, "session not resumed")
                        self.assertEqual(again.alpn, "h2")
                        self.assertSees(again.get_all(self.requests()), cert)
                    finally:
                        again.close()


if __name__ == "__main__":
    unittest.main()
