"""v1 API (SPEC section 4) against a real httpd with mod_crane.

Expected bodies are the bytes Crane's Flask app sent: json.dumps with
sort_keys, ", " / ": " separators and ensure_ascii.
"""

import json
import os
import socket
import unittest

from harness import TEST_DATA, HttpdTestCase, JSON, V1_HEADERS

HTML = "text/html; charset=utf-8"
NOT_FOUND = b"Not Found"
METHOD_NOT_ALLOWED = b"Method Not Allowed"

BUSYBOX_IMAGES = b'[{"id": "a1b2c3"}, {"id": "d4e5f6", "size": 42}]'
BUSYBOX_TAGS = b'{"1.0": "a1b2c3", "latest": "d4e5f6"}'
RHEL_IMAGES = b'[{"id": "a1b2c3"}, {"id": "ffff01"}]'
RHEL_TAGS = b'{"7.0": "ffff01", "caf\\u00e9": "a1b2c3"}'

CDN = "http://cdn.example.com/pulp/docker"


def without_date(reply):
    return [(n.lower(), v) for (n, v) in reply.headers if n.lower() != "date"]


class V1Test(HttpdTestCase):
    """The shipped test metadata, no endpoint configured."""

    def assertV1(self, reply, status, body=None, content_type=None, headers=None, absent=()):
        expected = dict(V1_HEADERS)
        if content_type is not None:
            expected["Content-Type"] = content_type
        expected.update(headers or {})
        self.assertReply(reply, status, body=body, headers=expected, absent=absent)

    def assertV1NotFound(self, reply):
        self.assertV1(reply, 404, body=NOT_FOUND, content_type=HTML)

    # ---- _ping and users ----

    def test_ping_answers_true_as_standalone_registry(self):
        self.assertV1(self.get("/v1/_ping"), 200, body=b"true", content_type=JSON,
                      headers={"X-Docker-Registry-Standalone": "True"})

    def test_ping_head_has_headers_and_no_body(self):
        self.assertV1(self.get("/v1/_ping", method="HEAD"), 200, body=b"", content_type=JSON,
                      headers={"X-Docker-Registry-Standalone": "True"})

    def test_users_get_answers_ok_with_and_without_trailing_slash(self):
        for path in ("/v1/users", "/v1/users/"):
            with self.subTest(path=path):
                self.assertV1(self.get(path), 200, body=b'"OK"', content_type=JSON,
                              headers={"X-Docker-Registry-Standalone": "True"})

    def test_users_post_answers_201_user_created_as_json(self):
        for path in ("/v1/users", "/v1/users/"):
            with self.subTest(path=path):
                reply = self.get(path, method="POST", data='{"username": "u", "password": "p"}',
                                 headers=["Content-Type: application/json"])
                self.assertV1(reply, 201, body=b'"User Created"', content_type=JSON,
                              headers={"X-Docker-Registry-Standalone": "True"})

    # ---- repositories/ID/images ----

    def test_images_lists_repo_images_with_request_host_as_endpoint(self):
        self.assertV1(self.get("/v1/repositories/busybox/images"), 200, body=BUSYBOX_IMAGES,
                      content_type=JSON, headers={"X-Docker-Endpoints": "127.0.0.1:%d" % self.httpd.port})

    def test_images_endpoint_follows_the_host_header(self):
        reply = self.get("/v1/repositories/busybox/images", headers=["Host: reg.local:8080"])
        self.assertV1(reply, 200, body=BUSYBOX_IMAGES, content_type=JSON,
                      headers={"X-Docker-Endpoints": "reg.local:8080"})

    def test_images_endpoint_without_host_header_is_the_server_name(self):
        # HTTP/1.0 allows a request without Host; curl always sends one
        with socket.create_connection(("127.0.0.1", self.httpd.port), timeout=10) as s:
            s.sendall(b"GET /v1/repositories/busybox/images HTTP/1.0\r\n\r\n")
            raw = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 200 OK")
        headers = [line.split(": ", 1) for line in lines[1:]]
        self.assertIn(["X-Docker-Endpoints", "127.0.0.1:%d" % self.httpd.port], headers)
        self.assertEqual(body, BUSYBOX_IMAGES)

    def test_images_of_repo_id_with_one_slash(self):
        self.assertV1(self.get("/v1/repositories/redhat/rhel/images"), 200, body=RHEL_IMAGES,
                      content_type=JSON, headers={"X-Docker-Endpoints": "127.0.0.1:%d" % self.httpd.port})

    def test_images_strips_library_prefix(self):
        self.assertV1(self.get("/v1/repositories/library/busybox/images"), 200, body=BUSYBOX_IMAGES,
                      content_type=JSON, headers={"X-Docker-Endpoints": "127.0.0.1:%d" % self.httpd.port})

    def test_images_of_unknown_repo_is_not_found(self):
        self.assertV1NotFound(self.get("/v1/repositories/nope/images"))

    # ---- repositories/ID/tags ----

    def test_tags_answers_sorted_tag_object(self):
        self.assertV1(self.get("/v1/repositories/busybox/tags"), 200, body=BUSYBOX_TAGS, content_type=JSON,
                      absent=["X-Docker-Endpoints"])

    def test_tags_escapes_non_ascii_like_python_json(self):
        self.assertV1(self.get("/v1/repositories/redhat/rhel/tags"), 200, body=RHEL_TAGS, content_type=JSON)

    def test_tags_strips_library_prefix(self):
        self.assertV1(self.get("/v1/repositories/library/busybox/tags"), 200, body=BUSYBOX_TAGS,
                      content_type=JSON)

    def test_tags_of_unknown_repo_is_not_found(self):
        self.assertV1NotFound(self.get("/v1/repositories/nope/tags"))

    def test_single_tag_answers_image_id_as_json_string(self):
        self.assertV1(self.get("/v1/repositories/busybox/tags/latest"), 200, body=b'"d4e5f6"',
                      content_type=JSON)
        self.assertV1(self.get("/v1/repositories/busybox/tags/1.0"), 200, body=b'"a1b2c3"', content_type=JSON)

    def test_single_tag_strips_library_prefix(self):
        self.assertV1(self.get("/v1/repositories/library/busybox/tags/latest"), 200, body=b'"d4e5f6"',
                      content_type=JSON)

    def test_single_tag_with_percent_encoded_non_ascii_name(self):
        self.assertV1(self.get("/v1/repositories/redhat/rhel/tags/caf%C3%A9"), 200, body=b'"a1b2c3"',
                      content_type=JSON)

    def test_unknown_tag_is_not_found(self):
        self.assertV1NotFound(self.get("/v1/repositories/busybox/tags/nope"))

    def test_repo_id_with_two_or_more_slashes_is_not_found(self):
        for path in ("/v1/repositories/a/b/c/images", "/v1/repositories/a/b/c/tags",
                     "/v1/repositories/a/b/c/tags/latest",
                     "/v1/repositories/library/redhat/rhel/images",
                     "/v1/repositories/library/redhat/rhel/tags",
                     "/v1/repositories/library/redhat/rhel/tags/7.0"):
            with self.subTest(path=path):
                self.assertV1NotFound(self.get(path))

    def test_v2_repo_is_not_visible_through_v1(self):
        for path in ("/v1/repositories/zoo/tags", "/v1/repositories/zoo/images"):
            with self.subTest(path=path):
                self.assertV1NotFound(self.get(path))

    # ---- protected repo ----

    def test_protected_repo_answers_like_unknown_repo(self):
        for kind in ("images", "tags", "tags/latest"):
            with self.subTest(kind=kind):
                secret = self.get("/v1/repositories/secret/" + kind)
                unknown = self.get("/v1/repositories/nope/" + kind)
                self.assertV1NotFound(secret)
                self.assertEqual(secret.body, unknown.body)
                self.assertEqual(without_date(secret), without_date(unknown))

    def test_image_only_in_protected_repo_answers_like_unknown_image(self):
        secret = self.get("/v1/images/5ec7e7/json")
        unknown = self.get("/v1/images/ffffff/json")
        self.assertV1NotFound(secret)
        self.assertEqual(secret.body, unknown.body)
        self.assertEqual(without_date(secret), without_date(unknown))

    # ---- images/IMAGE/FILE ----

    def test_image_file_redirects_to_first_repo_by_id(self):
        # a1b2c3 is in busybox, redhat/rhel and the protected secret: busybox sorts first
        for name in ("json", "ancestry", "layer"):
            with self.subTest(name=name):
                self.assertV1(self.get("/v1/images/a1b2c3/" + name), 302, body=b"",
                              headers={"Location": CDN + "/busybox/a1b2c3/" + name})

    def test_image_file_redirect_adds_missing_slash_to_repo_url(self):
        for name in ("json", "ancestry", "layer"):
            with self.subTest(name=name):
                self.assertV1(self.get("/v1/images/ffff01/" + name), 302, body=b"",
                              headers={"Location": CDN + "/rhel/ffff01/" + name})

    def test_image_file_head_redirects_without_body(self):
        self.assertV1(self.get("/v1/images/d4e5f6/layer", method="HEAD"), 302, body=b"",
                      headers={"Location": CDN + "/busybox/d4e5f6/layer"})

    def test_image_file_other_than_json_ancestry_layer_is_not_found(self):
        for path in ("/v1/images/a1b2c3/foo", "/v1/images/a1b2c3/JSON", "/v1/images/a1b2c3",
                     "/v1/images/a1b2c3/", "/v1/images/a1b2c3/json/extra"):
            with self.subTest(path=path):
                self.assertV1NotFound(self.get(path))

    def test_unknown_image_is_not_found(self):
        self.assertV1NotFound(self.get("/v1/images/ffffff/json"))

    # ---- search ----

    def test_search_without_q_is_bad_request(self):
        for path in ("/v1/search", "/v1/search?q=", "/v1/search?other=x"):
            with self.subTest(path=path):
                self.assertV1(self.get(path), 400, body=b'parameter "q" is required', content_type=HTML)

    def test_search_without_backend_is_not_found(self):
        self.assertV1NotFound(self.get("/v1/search?q=busybox"))

    # ---- anything else ----

    def test_unknown_v1_path_is_not_found(self):
        for path in ("/v1/", "/v1/nothing", "/v1/repositories/busybox", "/v1/repositories/busybox/layers"):
            with self.subTest(path=path):
                self.assertV1NotFound(self.get(path))

    def test_write_methods_are_not_allowed(self):
        for method, path in (("PUT", "/v1/repositories/busybox/tags"),
                             ("PUT", "/v1/repositories/busybox/tags/latest"),
                             ("PUT", "/v1/repositories/busybox/images"),
                             ("POST", "/v1/repositories/busybox/images"),
                             ("DELETE", "/v1/repositories/busybox/tags/latest"),
                             ("DELETE", "/v1/images/a1b2c3/json"),
                             ("PUT", "/v1/images/a1b2c3/layer"),
                             ("POST", "/v1/_ping"),
                             ("PUT", "/v1/users")):
            with self.subTest(method=method, path=path):
                self.assertV1(self.get(path, method=method), 405, body=METHOD_NOT_ALLOWED, content_type=HTML)

    def test_write_method_answer_lists_allowed_methods(self):
        for path, allowed in (("/v1/repositories/busybox/tags", {"GET", "HEAD"}),
                              ("/v1/images/a1b2c3/json", {"GET", "HEAD"}),
                              ("/v1/users", {"GET", "HEAD", "POST"})):
            with self.subTest(path=path):
                reply = self.get(path, method="PUT")
                self.assertV1(reply, 405)
                allow = {m.strip() for m in (reply.header("Allow") or "").split(",") if m.strip()}
                self.assertTrue(allowed <= allow, reply)
                self.assertFalse({"PUT", "DELETE", "PATCH"} & allow, reply)


class V1ConfiguredEndpointTest(HttpdTestCase):
    """CraneEndpoint set, and an extra protected repo that sorts before the
    readable ones holding the same images."""

    conf = "CraneEndpoint reg.example.com:5000"

    extra_metadata = {"aaa_locked.json": {
        "version": 1, "repo-registry-id": "aaa/locked", "protected": True,
        "url": "https://cdn.example.com/content/dist/locked/",
        "images": [{"id": "d4e5f6"}, {"id": "ffff01"}], "tags": {"x": "ffff01"}}}

    def test_images_endpoint_is_the_configured_one(self):
        for host in ([], ["Host: other.example.org"]):
            with self.subTest(host=host):
                reply = self.get("/v1/repositories/busybox/images", headers=host)
                self.assertReply(reply, 200, body=BUSYBOX_IMAGES,
                                 headers=dict(V1_HEADERS, **{"Content-Type": JSON,
                                                              "X-Docker-Endpoints": "reg.example.com:5000"}))

    def test_image_redirect_skips_protected_repo_sorting_first(self):
        self.assertReply(self.get("/v1/images/d4e5f6/json"), 302,
                         headers=dict(V1_HEADERS, Location=CDN + "/busybox/d4e5f6/json"))
        self.assertReply(self.get("/v1/images/ffff01/layer"), 302,
                         headers=dict(V1_HEADERS, Location=CDN + "/rhel/ffff01/layer"))


if __name__ == "__main__":
    unittest.main()
