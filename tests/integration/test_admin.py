"""Admin pages (SPEC section 9) and the handler wiring of SPEC section 1:
paths outside /v1/, /v2/, /crane/ answer 404, other handlers are left alone.
"""

import json
import os
import re
import unittest

from harness import HttpdTestCase, JSON

HTML = "text/html; charset=utf-8"
ACCEPT_JSON = "Accept: application/json"
BROWSER = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

V1_JSON = (b'{"busybox": {"image_ids": ["a1b2c3", "d4e5f6"], "protected": false, '
           b'"tags": {"1.0": "a1b2c3", "latest": "d4e5f6"}}, '
           b'"redhat/rhel": {"image_ids": ["a1b2c3", "ffff01"], "protected": false, '
           b'"tags": {"7.0": "ffff01", "caf\\u00e9": "a1b2c3"}}, '
           b'"secret": {"image_ids": ["5ec7e7", "a1b2c3"], "protected": true, '
           b'"tags": {"latest": "5ec7e7"}}}')
V2_JSON = (b'{"ns/app": {"protected": false}, "org/tags/app": {"protected": false}, '
           b'"private/secret": {"protected": true}, "v2repo": {"protected": false}, '
           b'"v3old": {"protected": false}, "v3repo": {"protected": false}, "zoo": {"protected": false}}')

V1_IDS = ["busybox", "redhat/rhel", "secret"]
V1_TEXT = V1_IDS + ["1.0", "latest", "7.0", "caf\u00e9", "a1b2c3", "d4e5f6", "ffff01", "5ec7e7"]
V2_IDS = ["ns/app", "org/tags/app", "private/secret", "v2repo", "v3old", "v3repo", "zoo"]

STATIC_TEXT = b"served by the default handler\n"


class AdminTest(HttpdTestCase):
    # /plain/ is handed to Apache's default handler: mod_crane must decline it
    conf = '<Location "/plain/">\n    SetHandler None\n</Location>'

    @classmethod
    def make_httpd(cls, **kw):
        httpd = super().make_httpd(**kw)
        os.makedirs(os.path.join(httpd.dir, "htdocs", "plain"))
        with open(os.path.join(httpd.dir, "htdocs", "plain", "hello.txt"), "wb") as f:
            f.write(STATIC_TEXT)
        return httpd

    def assertSelfContainedPage(self, reply, texts):
        self.assertReply(reply, 200, headers={"Content-Type": HTML})
        page = reply.body.decode("utf-8")
        self.assertTrue(page.lstrip().lower().startswith("<!doctype html"), page[:100])
        for text in texts:
            self.assertIn(text, page)
        lower = page.lower()
        self.assertNotRegex(lower, r"\bsrc\s*=", "the page loads an external resource")
        self.assertNotIn("<link", lower)
        self.assertNotIn("@import", lower)
        self.assertNotIn("url(", lower)
        self.assertNotRegex(lower, r"""href\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:)?//""", "absolute link")
        for match in re.finditer(r"<script\b[^>]*>", lower):
            self.assertNotIn("src", match.group(0))

    # ---- JSON ----

    def test_v1_repositories_as_json_include_protected_repos(self):
        for path in ("/crane/repositories", "/crane/repositories/v1"):
            with self.subTest(path=path):
                self.assertReply(self.get(path, headers=[ACCEPT_JSON]), 200, body=V1_JSON,
                                 headers={"Content-Type": JSON})

    def test_v2_repositories_as_json_include_protected_repos(self):
        self.assertReply(self.get("/crane/repositories/v2", headers=[ACCEPT_JSON]), 200, body=V2_JSON,
                         headers={"Content-Type": JSON})

    def test_json_head_has_headers_and_no_body(self):
        reply = self.get("/crane/repositories", method="HEAD", headers=[ACCEPT_JSON])
        self.assertReply(reply, 200, body=b"", headers={"Content-Type": JSON})

    # ---- HTML ----

    def test_html_page_without_accept_header(self):
        # an empty "Accept:" makes curl drop the header altogether
        for path, texts in (("/crane/repositories", V1_TEXT), ("/crane/repositories/v1", V1_TEXT),
                            ("/crane/repositories/v2", V2_IDS)):
            with self.subTest(path=path):
                self.assertSelfContainedPage(self.get(path, headers=["Accept:"]), texts)

    def test_html_page_for_browser_and_wildcard_accept(self):
        for accept in (BROWSER, "Accept: */*", "Accept: text/html", "Accept: application/json, text/html"):
            for path, texts in (("/crane/repositories", V1_TEXT), ("/crane/repositories/v2", V2_IDS)):
                with self.subTest(accept=accept, path=path):
                    self.assertSelfContainedPage(self.get(path, headers=[accept]), texts)

    def test_html_lists_every_repository_of_the_json_answer(self):
        for path in ("/crane/repositories", "/crane/repositories/v2"):
            with self.subTest(path=path):
                repos = json.loads(self.get(path, headers=[ACCEPT_JSON]).body)
                html = self.get(path).body.decode("utf-8")
                for repo_id, info in repos.items():
                    self.assertIn(">%s<" % repo_id, html)
                    for tag, image in info.get("tags", {}).items():
                        self.assertIn(">%s<" % tag, html)
                        self.assertIn(">%s<" % image, html)

    def test_html_head_has_headers_and_no_body(self):
        get = self.get("/crane/repositories")
        head = self.get("/crane/repositories", method="HEAD")
        self.assertReply(head, 200, body=b"", headers={"Content-Type": HTML,
                                                       "Content-Length": str(len(get.body))})

    # ---- errors ----

    def test_unknown_admin_path_is_not_found(self):
        for path in ("/crane", "/crane/", "/crane/nothing", "/crane/repositories/v3",
                     "/crane/repositories/v2/extra"):
            with self.subTest(path=path):
                self.assertReply(self.get(path, headers=[ACCEPT_JSON]), 404, body=b"Not Found",
                                 headers={"Content-Type": HTML})

    def test_write_methods_on_admin_pages_are_not_allowed(self):
        for method in ("PUT", "POST", "DELETE"):
            with self.subTest(method=method):
                self.assertReply(self.get("/crane/repositories", method=method, headers=[ACCEPT_JSON]), 405,
                                 body=b"Method Not Allowed", headers={"Content-Type": HTML})

    def test_write_method_answer_lists_allowed_methods(self):
        reply = self.get("/crane/repositories", method="PUT")
        self.assertEqual(reply.status, 405, reply)
        allow = {m.strip() for m in (reply.header("Allow") or "").split(",") if m.strip()}
        self.assertTrue({"GET", "HEAD"} <= allow, reply)
        self.assertFalse({"PUT", "POST", "DELETE"} & allow, reply)

    # ---- handler wiring (SPEC section 1) ----

    def test_paths_outside_v1_v2_crane_are_not_found(self):
        for path in ("/", "/index.html", "/foo/bar", "/v3/", "/v1", "/v1x/_ping", "/v2x/", "/cranex/repositories",
                     "/plain"):
            with self.subTest(path=path):
                self.assertReply(self.get(path), 404, body=b"Not Found", headers={"Content-Type": HTML})

    def test_other_handlers_are_left_alone(self):
        reply = self.get("/plain/hello.txt")
        self.assertReply(reply, 200, body=STATIC_TEXT, headers={"Content-Type": "text/plain"},
                         absent=["X-Docker-Registry-Version", "Docker-Distribution-API-Version"])
        missing = self.get("/plain/missing.txt")
        self.assertEqual(missing.status, 404, missing)
        self.assertNotEqual(missing.body, b"Not Found")  # Apache's own page, not mod_crane's
        self.assertIsNone(missing.header("X-Docker-Registry-Version"), missing)


class AdminEscapingTest(HttpdTestCase):
    """Metadata holding HTML metacharacters: the page escapes them, the JSON
    answer carries them as Python's json.dumps did."""

    data_src = None
    extra_metadata = {
        # image ids and urls are checked when the file is read (they go into
        # redirects): the metacharacters those may hold are '&' and ';'
        "v1.json": {"version": 1, "repo-registry-id": "evil<b>", "url": "http://cdn.example.com/evil/",
                    "images": [{"id": "x_y"}], "tags": {"<script>alert(1)</script>": "x&y"}},
        "v2.json": {"version": 2, "repo-registry-id": "a\"b<script>alert(2)</script>",
                    "url": "http://cdn.example.com/a&amp;b/"},
    }

    def test_html_escapes_repository_data(self):
        v1 = self.get("/crane/repositories").body.decode("utf-8")
        self.assertNotIn("<script", v1.lower())
        self.assertNotIn("<b>", v1)
        for text in ("evil&lt;b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "x_y", "x&amp;y"):
            self.assertIn(text, v1)
        v2 = self.get("/crane/repositories/v2").body.decode("utf-8")
        self.assertNotIn("<script", v2.lower())
        for text in ("a&quot;b&lt;script&gt;alert(2)&lt;/script&gt;", "http://cdn.example.com/a&amp;amp;b/"):
            self.assertIn(text, v2)

    def test_json_keeps_repository_data_verbatim(self):
        self.assertReply(self.get("/crane/repositories", headers=[ACCEPT_JSON]), 200,
                         body=b'{"evil<b>": {"image_ids": ["x_y"], "protected": false, '
                              b'"tags": {"<script>alert(1)</script>": "x&y"}}}',
                         headers={"Content-Type": JSON})
        self.assertReply(self.get("/crane/repositories/v2", headers=[ACCEPT_JSON]), 200,
                         body=b'{"a\\"b<script>alert(2)</script>": {"protected": false}}',
                         headers={"Content-Type": JSON})


if __name__ == "__main__":
    unittest.main()
