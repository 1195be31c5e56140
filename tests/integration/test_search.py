"""`docker search` (GET /v1/search?q=Q, SPEC section 8) against a real httpd
with mod_crane and a fixture search backend (search_backend.py) on 127.0.0.1.

Expected 200 bodies are Crane's bytes: flask.json.dumps with sort_keys,
", " / ": " separators and ensure_ascii. The test metadata knows v2 repos
zoo, v3repo, v3old, v2repo, ns/app, org/tags/app and protected
private/secret, and v1 repos busybox, redhat/rhel and protected secret; the
tests talk plain HTTP, so protected repos are never readable here.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import REPO, TEST_DATA, Httpd, HttpdTestCase, JSON, V1_HEADERS
from search_backend import SLOW_SECONDS, SearchBackend, closed_port

METADATA = os.path.join(TEST_DATA, "metadata")
SAMPLE_INI = os.path.join(REPO, "apache-conf", "crane-search.ini")

HTML = "text/html; charset=utf-8"
# the backend is on 127.0.0.1: keep any proxy in the environment out of the way
NO_PROXY = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}

BACKEND = None

# httpd's event MPM can log "AH03093: process_socket: apr_pollset_add failure
# for keep alive" when SIGTERM lands while a worker is parking the connection
# the client just got its answer on; the harness stops httpd right away, so
# give the worker a moment first.
SETTLE_SECONDS = 0.2


def setUpModule():
    global BACKEND
    BACKEND = SearchBackend().start()


def tearDownModule():
    BACKEND.stop()


def result(name, description="", is_official=False, is_trusted=False, should_filter=True, star_count=0):
    return {"description": description, "is_official": is_official, "is_trusted": is_trusted,
            "name": name, "should_filter": should_filter, "star_count": star_count}


def crane_body(q, results):
    """Crane's response bytes: flask.json.dumps(sort_keys=True), ensure_ascii."""
    return json.dumps({"num_results": len(results), "query": q, "results": results},
                      sort_keys=True).encode("ascii")


def gsa_result(name, description=None):
    """A GSA result as the fixture builds it (see search_backend.gsa_body)."""
    return result(name, "About " + name if description is None else description)


def enc(q):
    """q as a docker client puts it in the URL (url.Values: space -> '+')."""
    return urllib.parse.quote_plus(q)


class SearchAssertions:
    def assertSearch(self, reply, body):
        self.assertReply(reply, 200, body=body, headers=dict(V1_HEADERS, **{"Content-Type": JSON}))

    def assertV1Error(self, reply, status, body):
        self.assertReply(reply, status, body=body, headers=dict(V1_HEADERS, **{"Content-Type": HTML}))

    # HttpdTestCase's, also for the tests that are plain unittest.TestCases
    def assertReply(self, reply, status, body=None, headers=None, absent=()):
        HttpdTestCase.assertReply(self, reply, status, body=body, headers=headers, absent=absent)


class SearchTestCase(SearchAssertions, HttpdTestCase):
    """One httpd per class; subclasses give its backend configuration as
    `backend_conf()` (httpd directives) and/or `backend_ini()` (crane.ini
    text, where a literal brace is written {{ }} because of str.format)."""

    env = NO_PROXY

    @classmethod
    def backend_conf(cls):
        return ""

    @classmethod
    def backend_ini(cls):
        return None

    @classmethod
    def setUpClass(cls):
        cls.conf = cls.backend_conf()
        cls.crane_ini = cls.backend_ini()
        super().setUpClass()

    @classmethod
    def make_httpd(cls, **kw):
        return super().make_httpd(settle=SETTLE_SECONDS, **kw)

    def setUp(self):
        BACKEND.clear()

    def search(self, encoded_q, **kw):
        return self.get("/v1/search?q=" + encoded_q, **kw)


# ====================================================================
# no backend
# ====================================================================

class NoBackendTest(SearchTestCase):
    def test_search_without_backend_is_404(self):
        self.assertV1Error(self.search("busybox"), 404, b"Not Found")

    def test_missing_or_empty_q_is_400_before_the_backend_check(self):
        for path in ("/v1/search", "/v1/search?q=", "/v1/search?q", "/v1/search?query=busybox",
                     "/v1/search?Q=busybox"):
            with self.subTest(path=path):
                self.assertV1Error(self.get(path), 400, b'parameter "q" is required')

    def test_post_is_405(self):
        reply = self.get("/v1/search?q=busybox", method="POST", data="")
        self.assertV1Error(reply, 405, b"Method Not Allowed")
        self.assertEqual(reply.header("Allow"), "GET, HEAD")


# ====================================================================
# GSA (from the INI file)
# ====================================================================

class GsaSearchTest(SearchTestCase):
    """[gsa] url in crane.ini, with parameters of its own (a q among them,
    which the search query replaces, and a blank one, which is dropped)."""

    @classmethod
    def backend_ini(cls):
        return ("[general]\ndata_dir: {data}\n"
                "[gsa]\nurl: %s\n" % BACKEND.url("/gsa?site=crane&q=ignored&client=docker&empty="))

    def test_only_known_readable_repos_survive_and_are_counted(self):
        q = "zoo nosuch/repo private/secret busybox secret ns/app"
        body = (b'{"num_results": 3, "query": "zoo nosuch/repo private/secret busybox secret ns/app", '
                b'"results": [{"description": "About zoo", "is_official": false, "is_trusted": false, '
                b'"name": "zoo", "should_filter": true, "star_count": 0}, '
                b'{"description": "About busybox", "is_official": false, "is_trusted": false, '
                b'"name": "busybox", "should_filter": true, "star_count": 0}, '
                b'{"description": "About ns/app", "is_official": false, "is_trusted": false, '
                b'"name": "ns/app", "should_filter": true, "star_count": 0}]}')
        self.assertEqual(body, crane_body(q, [gsa_result("zoo"), gsa_result("busybox"), gsa_result("ns/app")]))
        self.assertSearch(self.search(enc(q)), body)

    def test_every_known_repo_shape_is_found_v2_and_v1(self):
        names = ["v3repo", "v3old", "v2repo", "org/tags/app", "redhat/rhel", "busybox", "zoo"]
        q = " ".join(names)
        self.assertSearch(self.search(enc(q)), crane_body(q, [gsa_result(n) for n in names]))

    def test_protected_repos_are_filtered_for_a_plain_http_client(self):
        q = "private/secret secret"
        self.assertSearch(self.search(enc(q)), crane_body(q, []))

    def test_nothing_known_gives_zero_results(self):
        q = "nosuch another/unknown Zoo BUSYBOX"  # names are case-sensitive
        self.assertSearch(self.search(enc(q)),
                          b'{"num_results": 0, "query": "nosuch another/unknown Zoo BUSYBOX", "results": []}')

    def test_missing_description_is_the_empty_string(self):
        q = "~zoo ~busybox v2repo"
        self.assertSearch(self.search(enc(q)), crane_body(q, [gsa_result("zoo", ""), gsa_result("busybox", ""),
                                                                gsa_result("v2repo")]))

    def test_q_is_added_to_the_configured_parameters(self):
        self.assertSearch(self.search("hi+mom"), crane_body("hi mom", []))
        self.assertEqual(BACKEND.requests(), [("GET", "/gsa?site=crane&client=docker&q=hi+mom")])

    def test_q_is_quote_plus_encoded(self):
        q = "a/b~+&=\u00e9 x"
        self.assertSearch(self.search(urllib.parse.quote(q, safe="")), crane_body(q, []))
        self.assertEqual(BACKEND.targets(), ["/gsa?site=crane&client=docker&q=a%2Fb%7E%2B%26%3D%C3%A9+x"])

    def test_plus_and_percent20_both_decode_to_a_space(self):
        for encoded in ("zoo+busybox", "zoo%20busybox"):
            with self.subTest(encoded=encoded):
                BACKEND.clear()
                self.assertSearch(self.search(encoded),
                                  crane_body("zoo busybox", [gsa_result("zoo"), gsa_result("busybox")]))
                self.assertEqual(BACKEND.targets(), ["/gsa?site=crane&client=docker&q=zoo+busybox"])

    def test_unicode_query(self):
        q = "zoo caf\u00e9 \u2615 \U0001d11e"
        body = (b'{"num_results": 1, "query": "zoo caf\\u00e9 \\u2615 \\ud834\\udd1e", "results": '
                b'[{"description": "About zoo", "is_official": false, "is_trusted": false, "name": "zoo", '
                b'"should_filter": true, "star_count": 0}]}')
        self.assertEqual(body, crane_body(q, [gsa_result("zoo")]))
        self.assertSearch(self.search(enc(q)), body)
        self.assertEqual(BACKEND.targets(),
                         ["/gsa?site=crane&client=docker&q=zoo+caf%C3%A9+%E2%98%95+%F0%9D%84%9E"])

    def test_first_q_parameter_wins(self):
        self.assertSearch(self.get("/v1/search?q=zoo&q=busybox"), crane_body("zoo", [gsa_result("zoo")]))

    def test_other_parameters_are_ignored(self):
        self.assertSearch(self.get("/v1/search?n=25&q=zoo&page=2"), crane_body("zoo", [gsa_result("zoo")]))
        self.assertEqual(BACKEND.targets(), ["/gsa?site=crane&client=docker&q=zoo"])

    def test_missing_q_is_400_without_asking_the_backend(self):
        for path in ("/v1/search", "/v1/search?q="):
            with self.subTest(path=path):
                self.assertV1Error(self.get(path), 400, b'parameter "q" is required')
        self.assertEqual(BACKEND.requests(), [])

    def test_head_has_the_headers_and_no_body(self):
        reply = self.search("zoo", method="HEAD")
        self.assertSearch(reply, b"")


# ====================================================================
# Solr (from directives)
# ====================================================================

KINDS_BODY = (
    b'{"num_results": 7, "query": "kinds", "results": ['
    b'{"description": "Zoo of images", "is_official": true, "is_trusted": true, "name": "zoo", '
    b'"should_filter": true, "star_count": 42}, '
    b'{"description": "v1 busybox", "is_official": false, "is_trusted": false, "name": "busybox", '
    b'"should_filter": true, "star_count": 1}, '
    b'{"description": "What changed", "is_official": false, "is_trusted": false, "name": "Release notes", '
    b'"should_filter": false, "star_count": 0}, '
    b'{"description": null, "is_official": false, "is_trusted": false, "name": "nosuch/no-kind", '
    b'"should_filter": false, "star_count": 7}, '
    b'{"description": "Certified app", "is_official": true, "is_trusted": false, '
    b'"name": "registry.example.test/isv/app:1.0", "should_filter": false, "star_count": 5}, '
    b'{"description": "Certified app", "is_official": true, "is_trusted": false, "name": "isv/unknown", '
    b'"should_filter": false, "star_count": 5}, '
    b'{"description": "certified but protected here", "is_official": false, "is_trusted": false, '
    b'"name": "private/secret", "should_filter": false, "star_count": 0}]}')


DESCRIPTIONS_BODY = (
    b'{"num_results": 6, "query": "descriptions", "results": ['
    b'{"description": "from ir_description", "is_official": false, "is_trusted": false, '
    b'"name": "d/both", "should_filter": false, "star_count": 0}, '
    b'{"description": "from abstract", "is_official": false, "is_trusted": false, '
    b'"name": "d/abstract", "should_filter": false, "star_count": 0}, '
    b'{"description": null, "is_official": false, "is_trusted": false, '
    b'"name": "d/neither", "should_filter": false, "star_count": 0}, '
    b'{"description": null, "is_official": false, "is_trusted": false, '
    b'"name": "d/null", "should_filter": false, "star_count": 0}, '
    b'{"description": "", "is_official": false, "is_trusted": false, '
    b'"name": "d/empty", "should_filter": false, "star_count": 0}, '
    b'{"description": null, "is_official": false, "is_trusted": false, '
    b'"name": "d/number", "should_filter": false, "star_count": 0}]}')


def echo_results(q):
    """What the fixture's echo_docs(q) turns into."""
    return [result("search/" + q, "Results for " + q, should_filter=False),
            result("zoo", "Zoo", star_count=3)]


class SolrSearchTest(SearchTestCase):
    @classmethod
    def backend_conf(cls):
        return "CraneSolrURL %s\n" % BACKEND.url("/solr?wt=json&q={0}")

    def test_document_kinds(self):
        """ImageRepository docs are filtered (unknown nosuch/repo, protected
        private/secret and secret go); other kinds are kept as they are;
        CertifiedSoftware gives one unfiltered result per pull command, with
        `docker pull` removed, and none without c_pull_command."""
        self.assertSearch(self.search("kinds"), KINDS_BODY)
        self.assertEqual(BACKEND.targets(), ["/solr?wt=json&q=kinds"])

    def test_description_fallback(self):
        """ir_description if present (even "" or null), else publishedAbstract,
        else null; a non-string value is null."""
        self.assertSearch(self.search("descriptions"), DESCRIPTIONS_BODY)

    def test_no_documents(self):
        self.assertSearch(self.search("nothing"), b'{"num_results": 0, "query": "nothing", "results": []}')

    def test_query_is_percent_encoded_into_the_placeholder(self):
        self.assertSearch(self.search("hi+mom"), crane_body("hi mom", echo_results("hi mom")))
        self.assertEqual(BACKEND.targets(), ["/solr?wt=json&q=hi%20mom"])

    def test_reserved_characters_are_quoted_but_slash_is_not(self):
        q = "a/b~+&=?#%\u00e9"
        self.assertSearch(self.search(urllib.parse.quote(q, safe="")), crane_body(q, echo_results(q)))
        self.assertEqual(BACKEND.targets(), ["/solr?wt=json&q=a/b%7E%2B%26%3D%3F%23%25%C3%A9"])

    def test_unicode_query(self):
        q = "caf\u00e9 \u2615 \U0001d11e"
        body = (b'{"num_results": 2, "query": "caf\\u00e9 \\u2615 \\ud834\\udd1e", "results": ['
                b'{"description": "Results for caf\\u00e9 \\u2615 \\ud834\\udd1e", "is_official": false, '
                b'"is_trusted": false, "name": "search/caf\\u00e9 \\u2615 \\ud834\\udd1e", '
                b'"should_filter": false, "star_count": 0}, '
                b'{"description": "Zoo", "is_official": false, "is_trusted": false, "name": "zoo", '
                b'"should_filter": true, "star_count": 3}]}')
        self.assertEqual(body, crane_body(q, echo_results(q)))
        self.assertSearch(self.search(enc(q)), body)
        self.assertEqual(BACKEND.targets(), ["/solr?wt=json&q=caf%C3%A9%20%E2%98%95%20%F0%9D%84%9E"])

    def test_docker_search_compatible_fields(self):
        """What `docker search` decodes (registry.SearchResults): every field
        present with the right JSON type, nothing else."""
        reply = self.search("kinds")
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(reply.header("Content-Type"), JSON)
        data = json.loads(reply.body)
        self.assertEqual(set(data), {"num_results", "query", "results"})
        self.assertIs(type(data["num_results"]), int)
        self.assertIsInstance(data["query"], str)
        self.assertEqual(data["query"], "kinds")
        self.assertIsInstance(data["results"], list)
        self.assertEqual(data["num_results"], len(data["results"]))
        for r in data["results"]:
            with self.subTest(name=r.get("name")):
                self.assertEqual(set(r), {"description", "is_official", "is_trusted", "name",
                                          "should_filter", "star_count"})
                self.assertIsInstance(r["name"], str)
                self.assertTrue(r["name"])
                self.assertTrue(r["description"] is None or isinstance(r["description"], str))
                self.assertIs(type(r["star_count"]), int)
                for flag in ("is_official", "is_trusted", "should_filter"):
                    self.assertIs(type(r[flag]), bool)
        by_name = {r["name"]: r for r in data["results"]}
        self.assertEqual(by_name["zoo"]["star_count"], 42)
        self.assertIs(by_name["zoo"]["is_official"], True)
        self.assertIs(by_name["zoo"]["is_trusted"], True)
        self.assertIsNone(by_name["nosuch/no-kind"]["description"])
        self.assertNotIn("docker pull", " ".join(by_name))

    def test_concurrent_searches(self):
        expected = {"kinds": KINDS_BODY, "descriptions": DESCRIPTIONS_BODY,
                    "nothing": b'{"num_results": 0, "query": "nothing", "results": []}',
                    "hi+mom": crane_body("hi mom", echo_results("hi mom"))}
        queries = list(expected) * 4
        replies = [None] * len(queries)

        def run(i):
            replies[i] = self.search(queries[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queries))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (q, reply) in enumerate(zip(queries, replies)):
            with self.subTest(i=i, q=q):
                self.assertSearch(reply, expected[q])
        self.assertEqual(len(BACKEND.requests()), len(queries))


# ====================================================================
# both configured: GSA wins
# ====================================================================

class BothBackendsTest(SearchTestCase):
    @classmethod
    def backend_ini(cls):
        return ("[general]\ndata_dir: {data}\n"
                "[solr]\nurl: %s\n"
                "[gsa]\nurl: %s\n" % (BACKEND.url("/solr?q={{0}}"), BACKEND.url("/gsa")))

    def test_gsa_is_used_when_both_urls_are_set(self):
        self.assertSearch(self.search("zoo+kinds"), crane_body("zoo kinds", [gsa_result("zoo")]))
        self.assertEqual(BACKEND.targets(), ["/gsa?q=zoo+kinds"])


# ====================================================================
# one httpd per test: configuration variants and backend failures
# ====================================================================

class OneShotSearchTest(SearchAssertions, unittest.TestCase):
    def setUp(self):
        BACKEND.clear()

    def running(self, **kw):
        """An Httpd for a `with` block."""
        kw.setdefault("data_src", METADATA)
        kw.setdefault("env", NO_PROXY)
        return Httpd(settle=SETTLE_SECONDS, **kw)

    def crane_errors(self, h):
        return [line for line in h.log().splitlines() if "[crane:error]" in line]

    def check_failure(self, directive, url, sent, status, body, reason):
        """One search against `url`; answers `status` with `body`, and logs
        one [crane:error] line naming the backend, the URL it asked (`sent`,
        logged with its query values as ***) and `reason`. Returns the
        request's duration."""
        kind = "gsa" if directive == "CraneGSAURL" else "solr"
        base, mark, query = sent.partition("?")
        logged = base + mark + re.sub(r"=[^&;#]*", "=***", query)
        self.assertNotIn("q=x", logged)
        # CRANE0301: the search backend failed; the line names the backend,
        # the URL and why (one id covers every failure)
        line = r"\[crane:error\] .*CRANE0301: .*\b%s \(%s\): %s" % (kind, re.escape(logged), reason)
        with self.running(conf="%s %s\n" % (directive, url), expect_log=[line]) as h:
            start = time.monotonic()
            reply = h.curl("/v1/search?q=x")
            elapsed = time.monotonic() - start
            self.assertV1Error(reply, status, body)
            errors = self.crane_errors(h)
            self.assertEqual(len(errors), 1, errors)
            self.assertRegex(errors[0], line)
        return elapsed

    # ---- which backend ----

    def test_directives_both_set_gsa_wins(self):
        conf = "CraneSolrURL %s\nCraneGSAURL %s\n" % (BACKEND.url("/solr?q={0}"), BACKEND.url("/gsa"))
        with self.running(conf=conf) as h:
            self.assertSearch(h.curl("/v1/search?q=zoo"), crane_body("zoo", [gsa_result("zoo")]))
        self.assertEqual(BACKEND.targets(), ["/gsa?q=zoo"])

    def test_gsa_directive_beside_an_ini_solr_url_wins(self):
        ini = "[general]\ndata_dir: {data}\n[solr]\nurl: %s\n" % BACKEND.url("/solr?q={{0}}")
        with self.running(crane_ini=ini, conf="CraneGSAURL %s\n" % BACKEND.url("/gsa")) as h:
            self.assertSearch(h.curl("/v1/search?q=zoo"), crane_body("zoo", [gsa_result("zoo")]))
        self.assertEqual(BACKEND.targets(), ["/gsa?q=zoo"])

    def test_empty_gsa_url_leaves_solr_in_use(self):
        ini = "[general]\ndata_dir: {data}\n[gsa]\nurl:\n[solr]\nurl: %s\n" % BACKEND.url("/solr?q={{0}}")
        with self.running(crane_ini=ini) as h:
            self.assertSearch(h.curl("/v1/search?q=nothing"),
                              b'{"num_results": 0, "query": "nothing", "results": []}')
        self.assertEqual(BACKEND.targets(), ["/solr?q=nothing"])

    def test_solr_url_without_placeholder_fails_config_test(self):
        url = BACKEND.url("/solr?q=x")
        cases = [
            dict(crane_ini="[general]\ndata_dir: {data}\n[solr]\nurl: %s\n" % url),
            dict(conf="CraneSolrURL %s\n" % url),
        ]
        for kw in cases:
            with self.subTest(**kw):
                h = Httpd(data_src=METADATA, env=NO_PROXY, **kw)
                try:
                    code, out = h.config_test()
                finally:
                    h.cleanup()
                self.assertNotEqual(code, 0, out)
                self.assertIn("has no {0} placeholder", out)

    def test_solr_url_with_other_brace_fields_fails_config_test(self):
        for url in (BACKEND.url("/solr?q={0}&fq={foo}"), BACKEND.url("/solr?q={0}&fq={"),
                    BACKEND.url("/solr?q={0}&fq=}")):
            with self.subTest(url=url):
                h = Httpd(data_src=METADATA, env=NO_PROXY, conf="CraneSolrURL %s\n" % url)
                try:
                    code, out = h.config_test()
                finally:
                    h.cleanup()
                self.assertNotEqual(code, 0, out)

    def test_sample_ini_passes_config_test(self):
        h = Httpd(data_src=METADATA, env=NO_PROXY, conf="CraneConfig %s\n" % SAMPLE_INI)
        try:
            code, out = h.config_test()
        finally:
            h.cleanup()
        self.assertEqual(code, 0, out)
        self.assertIn("Syntax OK", out)

    # ---- the shipped fixtures (tests/data/search) through httpd ----

    def test_solr_fixture_file(self):
        """solr_docs.json: acme/base and acme/null-description are unknown
        ImageRepository docs (filtered); the rest is shown."""
        with self.running(conf="CraneSolrURL %s\n" % BACKEND.url("/file/solr_docs.json?q={0}")) as h:
            body = crane_body("base", [
                result("acme/article", "An article about base images", should_filter=False),
                result("acme/plain", None, should_filter=False),
                result("registry.example.test/isv/app", "Certified thing", is_official=True,
                       should_filter=False, star_count=3),
                result("isv/app:latest", "Certified thing", is_official=True, should_filter=False, star_count=3),
            ])
            self.assertSearch(h.curl("/v1/search?q=base"), body)

    def test_amplified_answer_is_cut_with_a_warning(self):
        """A CertifiedSoftware doc repeats its 100 KB description for each of
        its 1000 pull commands: the answer keeps the results that fit in
        1 MiB of names and descriptions (10) and says so once at warn."""
        # CRANE0302: an odd but usable answer; the line names the results
        # kept and the limits
        line = (r"\[crane:warn\] .*CRANE0302: .*\bsolr \(%s\): .*\b10\b.*\b1000\b.*\b1048576\b"
                % re.escape(BACKEND.url("/solr?q=***")))
        with self.running(conf="CraneSolrURL %s\n" % BACKEND.url("/solr?q={0}"), expect_log=[line]) as h:
            reply = h.curl("/v1/search?q=amplified")
            body = crane_body("amplified", [result("isv/app%d" % i, "x" * 100000, should_filter=False)
                                            for i in range(10)])
            self.assertSearch(reply, body)
            warnings = [l for l in h.log().splitlines() if "[crane:warn]" in l]
            self.assertEqual(len(warnings), 1, warnings)
            self.assertRegex(warnings[0], line)

    def test_gsa_fixture_file_of_unknown_repos(self):
        with self.running(conf="CraneGSAURL %s\n" % BACKEND.url("/file/gsa_two_results.xml")) as h:
            self.assertSearch(h.curl("/v1/search?q=base"), b'{"num_results": 0, "query": "base", "results": []}')

    def test_gsa_entity_expansion_is_refused_as_502(self):
        self.check_failure("CraneGSAURL", BACKEND.url("/file/gsa_billion_laughs.xml"),
                           BACKEND.url("/file/gsa_billion_laughs.xml?q=x"), 502, b"Bad Gateway",
                           "unparsable body")

    # ---- backend failures ----

    def test_slow_solr_is_504_after_about_one_second(self):
        elapsed = self.check_failure("CraneSolrURL", BACKEND.url("/slow?q={0}"), BACKEND.url("/slow?q=x"),
                                     504, b"Gateway Timeout", "timed out")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)
        self.assertLess(elapsed, SLOW_SECONDS)

    def test_slow_gsa_is_504_after_about_one_second(self):
        elapsed = self.check_failure("CraneGSAURL", BACKEND.url("/slow"), BACKEND.url("/slow?q=x"),
                                     504, b"Gateway Timeout", "timed out")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)

    def test_body_trickling_past_one_second_is_504(self):
        """The 1 s limit covers the whole exchange, not only the wait for
        the first byte."""
        elapsed = self.check_failure("CraneSolrURL", BACKEND.url("/drip?q={0}"), BACKEND.url("/drip?q=x"),
                                     504, b"Gateway Timeout", "timed out")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)

    def test_body_over_the_size_limit_is_502(self):
        self.check_failure("CraneSolrURL", BACKEND.url("/huge?q={0}"), BACKEND.url("/huge?q=x"),
                           502, b"Bad Gateway", "body larger than")

    def test_slow_backend_does_not_block_other_requests(self):
        line = r"\[crane:error\] .*CRANE0301: .*\bsolr \(%s\): timed out" % re.escape(BACKEND.url("/slow?q=***"))
        with self.running(conf="CraneSolrURL %s\n" % BACKEND.url("/slow?q={0}"), expect_log=[line]) as h:
            replies = []
            t = threading.Thread(target=lambda: replies.append(h.curl("/v1/search?q=x")))
            t.start()
            try:
                time.sleep(0.2)
                start = time.monotonic()
                ping = h.curl("/v1/_ping")
                ping_time = time.monotonic() - start
            finally:
                t.join()
            self.assertEqual(ping.status, 200)
            self.assertLess(ping_time, 0.7)
            self.assertV1Error(replies[0], 504, b"Gateway Timeout")

    def test_closed_port_is_503(self):
        port = closed_port()
        for directive, url, sent in (
                ("CraneSolrURL", "http://127.0.0.1:%d/solr?q={0}" % port, "http://127.0.0.1:%d/solr?q=x" % port),
                ("CraneGSAURL", "http://127.0.0.1:%d/gsa" % port, "http://127.0.0.1:%d/gsa?q=x" % port)):
            with self.subTest(directive=directive):
                elapsed = self.check_failure(directive, url, sent, 503, b"Service Unavailable", "cannot connect")
                self.assertLess(elapsed, 2.0)

    def test_backend_500_is_502(self):
        for directive, url, sent in (("CraneSolrURL", BACKEND.url("/error?q={0}"), BACKEND.url("/error?q=x")),
                                     ("CraneGSAURL", BACKEND.url("/error"), BACKEND.url("/error?q=x"))):
            with self.subTest(directive=directive):
                self.check_failure(directive, url, sent, 502, b"Bad Gateway", "answered HTTP status 500")

    def test_backend_404_is_502(self):
        self.check_failure("CraneSolrURL", BACKEND.url("/nowhere?q={0}"), BACKEND.url("/nowhere?q=x"),
                           502, b"Bad Gateway", "answered HTTP status 404")

    def test_garbage_body_is_502(self):
        for directive, url, sent in (("CraneSolrURL", BACKEND.url("/garbage?q={0}"), BACKEND.url("/garbage?q=x")),
                                     ("CraneGSAURL", BACKEND.url("/garbage"), BACKEND.url("/garbage?q=x"))):
            with self.subTest(directive=directive):
                self.check_failure(directive, url, sent, 502, b"Bad Gateway", "unparsable body")

    def test_gsa_xml_for_solr_is_502(self):
        """A body of the other backend's format is unparsable too."""
        self.check_failure("CraneSolrURL", BACKEND.url("/gsa?q={0}"), BACKEND.url("/gsa?q=x"),
                           502, b"Bad Gateway", "unparsable body")

    def test_redirect_is_followed(self):
        with self.running(conf="CraneSolrURL %s\n" % BACKEND.url("/moved?q={0}")) as h:
            self.assertSearch(h.curl("/v1/search?q=kinds"), KINDS_BODY)
        self.assertEqual(BACKEND.targets(), ["/moved?q=kinds", "/solr?q=kinds"])

    def test_credentials_in_the_url_stay_out_of_the_log(self):
        port = closed_port()
        url = "http://user:hunter2@127.0.0.1:%d/solr?q={0}" % port
        self.check_failure("CraneSolrURL", url, "http://***@127.0.0.1:%d/solr?q=x" % port,
                           503, b"Service Unavailable", "cannot connect")

    # ---- v2 before v1 ----

    def test_v2_repo_decides_before_a_v1_repo_of_the_same_name(self):
        """`dup` is an unprotected v2 repo and a protected v1 repo: shown.
        `dup2` is a protected v2 repo and an unprotected v1 repo: the v2 repo
        is found first and is not readable, so it is filtered."""
        tmp = tempfile.mkdtemp(prefix="crane-search-meta-")
        try:
            data = os.path.join(tmp, "metadata")
            shutil.copytree(METADATA, data)
            extra = {
                "dup_v2.json": {"version": 2, "repo-registry-id": "dup", "protected": False,
                                "url": "http://cdn.example.com/v2/dup/"},
                "dup_v1.json": {"version": 1, "repo-registry-id": "dup", "protected": True,
                                "url": "https://cdn.example.com/v1/dup/",
                                "images": [{"id": "d0d0"}], "tags": {"latest": "d0d0"}},
                "dup2_v2.json": {"version": 2, "repo-registry-id": "dup2", "protected": True,
                                 "url": "https://cdn.example.com/v2/dup2/"},
                "dup2_v1.json": {"version": 1, "repo-registry-id": "dup2", "protected": False,
                                 "url": "http://cdn.example.com/v1/dup2/",
                                 "images": [{"id": "d0d1"}], "tags": {"latest": "d0d1"}},
            }
            for name, doc in extra.items():
                with open(os.path.join(data, name), "w") as f:
                    json.dump(doc, f)
            with self.running(data_src=data, conf="CraneGSAURL %s\n" % BACKEND.url("/gsa")) as h:
                self.assertSearch(h.curl("/v1/search?q=dup+dup2"), crane_body("dup dup2", [gsa_result("dup")]))
                # the v1 dup2 is readable on its own
                self.assertEqual(h.curl("/v1/repositories/dup2/images").status, 200)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ====================================================================
# TLS to the backend
# ====================================================================

class TlsBackendTest(SearchAssertions, unittest.TestCase):
    """The fixture over HTTPS with a self-signed certificate for 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="crane-search-tls-")
        os.chmod(cls.tmp, 0o755)  # the httpd children (www-data) read the CA file
        cls.cert = os.path.join(cls.tmp, "backend.pem")
        cls.key = os.path.join(cls.tmp, "backend.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True, capture_output=True)
        os.chmod(cls.cert, 0o644)
        cls.backend = SearchBackend(certfile=cls.cert, keyfile=cls.key).start()

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def search_with(self, extra_conf, expect_log=()):
        conf = "CraneSolrURL %s\n%s" % (self.backend.url("/solr?q={0}"), extra_conf)
        with Httpd(data_src=METADATA, env=NO_PROXY, conf=conf, expect_log=expect_log, settle=SETTLE_SECONDS) as h:
            reply = h.curl("/v1/search?q=nothing")
            errors = [line for line in h.log().splitlines() if "[crane:error]" in line]
        return reply, errors

    def test_unknown_ca_is_503_by_default(self):
        line = r"\[crane:error\] .*CRANE0301: .*\bsolr \(%s\): cannot connect" % re.escape(
            self.backend.url("/solr?q=***"))
        reply, errors = self.search_with("", expect_log=[line])
        self.assertV1Error(reply, 503, b"Service Unavailable")
        self.assertEqual(len(errors), 1, errors)

    def test_ca_file_makes_the_backend_trusted(self):
        reply, errors = self.search_with("CraneSearchCAFile %s\n" % self.cert)
        self.assertSearch(reply, b'{"num_results": 0, "query": "nothing", "results": []}')
        self.assertEqual(errors, [])

    def test_verification_can_be_turned_off(self):
        reply, errors = self.search_with("CraneSearchVerifyTLS Off\n")
        self.assertSearch(reply, b'{"num_results": 0, "query": "nothing", "results": []}')
        self.assertEqual(errors, [])

    def test_unreadable_ca_file_fails_config_test(self):
        h = Httpd(data_src=METADATA, env=NO_PROXY,
                  conf="CraneSolrURL %s\nCraneSearchCAFile %s/missing.pem\n" % (self.backend.url("/solr?q={0}"),
                                                                                  self.tmp))
        try:
            code, out = h.config_test()
        finally:
            h.cleanup()
        self.assertNotEqual(code, 0, out)
        self.assertIn("CraneSearchCAFile", out)
        self.assertIn("is not a readable file", out)


if __name__ == "__main__":
    unittest.main()
