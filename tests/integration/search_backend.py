"""A tiny search backend (Google Search Appliance and Solr look-alike) for
the `docker search` integration tests (test_search.py).

It is a threaded http.server bound to 127.0.0.1 on a free port, run in a
daemon thread of the test process. It never binds or contacts anything but
127.0.0.1. Every request's method and raw target (path + query as sent) is
recorded, so tests can check exactly what mod_crane asked for.

Paths:
  /gsa          GSA XML built from the request's q: every whitespace-separated
                word of q is one RES/R result named after the word, with the
                description "About <word>"; a word starting with "~" gives a
                result named after the rest of the word with no description
                MT. Noise the parser must skip is added around the results.
  /solr         Solr JSON: q names a scenario in SOLR_SCENARIOS; any other q
                gets echo_docs(q).
  /slow         sleeps SLOW_SECONDS, then answers like /solr
  /error        500 with a short text body
  /garbage      200 with a body that is neither XML nor JSON
  /drip         200 with headers and half the /solr body at once, the rest
                after SLOW_SECONDS
  /huge         200 with a body of HUGE_BYTES (more than mod_crane accepts)
  /moved        302 to /solr with the same query
  /file/NAME    200 with tests/data/search/NAME (query ignored)
  anything else 404
"""

import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape, quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
SEARCH_DATA = os.path.join(os.path.dirname(HERE), "data", "search")

SLOW_SECONDS = 3.0
GARBAGE = b"this is <neither XML nor {JSON"
HUGE_BYTES = 5 * 1024 * 1024  # mod_crane refuses bodies over 4 MiB

# Solr scenarios, selected by the search query. Names refer to the test
# metadata (tests/data/metadata): zoo (v2), busybox (v1), private/secret (v2,
# protected), secret (v1, protected); nosuch/* are unknown.
SOLR_SCENARIOS = {
    # every documentKind rule
    "kinds": [
        {"allTitle": "zoo", "ir_description": "Zoo of images", "publishedAbstract": "not used",
         "ir_automated": True, "ir_official": True, "ir_stars": 42, "documentKind": "ImageRepository"},
        {"allTitle": "busybox", "ir_description": "v1 busybox", "ir_stars": 1,
         "documentKind": "ImageRepository"},
        {"allTitle": "nosuch/repo", "ir_description": "unknown repository", "documentKind": "ImageRepository"},
        {"allTitle": "private/secret", "ir_description": "protected v2", "documentKind": "ImageRepository"},
        {"allTitle": "secret", "ir_description": "protected v1", "documentKind": "ImageRepository"},
        {"allTitle": "Release notes", "publishedAbstract": "What changed", "documentKind": "Article"},
        {"allTitle": "nosuch/no-kind", "ir_stars": 7},
        {"allTitle": "ignored title", "ir_description": "Certified app", "ir_official": True, "ir_stars": 5,
         "documentKind": "CertifiedSoftware",
         "c_pull_command": ["docker pull registry.example.test/isv/app:1.0", "  docker pull isv/unknown  "]},
        {"allTitle": "isv/no-pull-command", "ir_description": "never shown", "documentKind": "CertifiedSoftware"},
        {"allTitle": "isv/protected", "ir_description": "certified but protected here",
         "documentKind": "CertifiedSoftware", "c_pull_command": "docker pull private/secret"},
    ],
    # description fallback: ir_description if present, else publishedAbstract, else null
    "descriptions": [
        {"allTitle": "d/both", "ir_description": "from ir_description", "publishedAbstract": "from abstract"},
        {"allTitle": "d/abstract", "publishedAbstract": "from abstract"},
        {"allTitle": "d/neither"},
        {"allTitle": "d/null", "ir_description": None, "publishedAbstract": "from abstract"},
        {"allTitle": "d/empty", "ir_description": "", "publishedAbstract": "from abstract"},
        {"allTitle": "d/number", "ir_description": 7},
    ],
    # nothing found
    "nothing": [],
    # one doc whose 100 KB description every pull command repeats: uncut,
    # a 130 KB body would make a 100 MB answer
    "amplified": [
        {"allTitle": "isv/big", "ir_description": "x" * 100000, "documentKind": "CertifiedSoftware",
         "c_pull_command": ["docker pull isv/app%d" % i for i in range(1000)]},
    ],
}


def echo_docs(q):
    """The Solr answer for a q that is not a scenario: an article named
    after the query (kept, should_filter false) and the known repo zoo."""
    return [
        {"allTitle": "search/" + q, "publishedAbstract": "Results for " + q, "documentKind": "Article"},
        {"allTitle": "zoo", "ir_description": "Zoo", "ir_stars": 3, "documentKind": "ImageRepository"},
    ]


def solr_body(q):
    docs = SOLR_SCENARIOS.get(q)
    if docs is None:
        docs = echo_docs(q)
    return json.dumps({
        "responseHeader": {"status": 0, "QTime": 1, "params": {"q": q, "wt": "json"}},
        "response": {"numFound": len(docs), "start": 0, "docs": docs},
    }).encode("utf-8")


def gsa_body(q):
    results = []
    for n, word in enumerate(q.split(), 1):
        mts = []
        if word.startswith("~"):
            mts.append('<MT N="portal_name" V=%s/>' % quoteattr(word[1:]))
        else:
            mts.append('<MT N="portal_name" V=%s/>' % quoteattr(word))
            mts.append('<MT N="portal_short_description" V=%s/>' % quoteattr("About " + word))
        mts.append('<MT N="portal_owner" V="someone"/>')
        results.append('<R N="%d"><U>https://search.example.test/r/%d</U><T>%s</T>%s<RK>5</RK></R>'
                       % (n, n, escape(word), "".join(mts)))
    # an R without portal_name is no result
    results.append('<R N="0"><U>https://search.example.test/none</U><MT N="portal_owner" V="x"/></R>')
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            '<GSP VER="3.2"><TM>0.01</TM><Q>%s</Q>\n'
            '<R N="99"><MT N="portal_name" V="outside-res"/></R>\n'
            '<RES SN="1" EN="%d"><M>%d</M>\n%s\n</RES>\n</GSP>\n'
            % (escape(q), len(results), len(results), "\n".join(results))).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server_version = "SearchFixture/1.0"

    def log_message(self, fmt, *args):  # keep the test output clean
        pass

    def _send(self, status, body, content_type="text/plain", headers=()):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass  # the client (mod_crane) gave up, e.g. after its timeout

    def do_GET(self):
        backend = self.server.backend
        backend._record(self.command, self.path)
        path, _, query = self.path.partition("?")
        q = urllib.parse.parse_qs(query, keep_blank_values=True).get("q", [""])[-1]
        if path == "/gsa":
            self._send(200, gsa_body(q), "text/xml; charset=UTF-8")
        elif path == "/solr":
            self._send(200, solr_body(q), "application/json")
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, solr_body(q), "application/json")
        elif path == "/error":
            self._send(500, b"Internal Server Error\n")
        elif path == "/garbage":
            self._send(200, GARBAGE, "application/json")
        elif path == "/drip":
            body = solr_body(q)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                time.sleep(SLOW_SECONDS)
                self.wfile.write(body[len(body) // 2:])
            except OSError:
                pass
        elif path == "/huge":
            self._send(200, b'{"response": {"docs": [' + b" " * HUGE_BYTES + b"]}}", "application/json")
        elif path == "/moved":
            self._send(302, b"", headers=[("Location", "/solr?" + query)])
        elif path.startswith("/file/"):
            name = path[len("/file/"):]
            full = os.path.join(SEARCH_DATA, name)
            if "/" in name or name.startswith(".") or not os.path.isfile(full):
                self._send(404, b"no such fixture\n")
                return
            with open(full, "rb") as f:
                body = f.read()
            self._send(200, body, "application/json" if name.endswith(".json") else "text/xml")
        else:
            self._send(404, b"Not Found\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128  # many concurrent searches must not overflow the backlog


class SearchBackend:
    """The fixture server. `certfile`/`keyfile` make it serve HTTPS."""

    def __init__(self, certfile=None, keyfile=None):
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if certfile else "http"
        self.port = self.server.server_address[1]
        self._lock = threading.Lock()
        self._requests = []
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="search-backend", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def _record(self, method, target):
        with self._lock:
            self._requests.append((method, target))

    def requests(self):
        """[(method, raw request target)] received so far."""
        with self._lock:
            return list(self._requests)

    def targets(self):
        return [t for (_, t) in self.requests()]

    def clear(self):
        with self._lock:
            self._requests.clear()


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
