"""v2 API against a real httpd with mod_crane: routing, manifest
negotiation, error bodies, HEAD, read-only methods and _catalog.
"""

import json
import unittest

from harness import (
    HttpdTestCase, ACCEPT_BOTH, ACCEPT_LIST, ACCEPT_S2, API_VERSION, JSON, LIST, S1, S2,
    V2_BLOB_UNKNOWN, V2_DIGEST_INVALID, V2_MANIFEST_UNKNOWN, V2_NAME_UNKNOWN, V2_PAGINATION_INVALID,
    V2_UNSUPPORTED)

BLOB = "sha256:abc0000000000000000000000000000000000000000000000000000000000000"


CDN = "http://cdn.example.com/pulp/docker/v2"
ZOO = CDN + "/zoo/"
V3REPO = CDN + "/v3repo/"
DIGEST_LATEST = "sha256:aaaa000000000000000000000000000000000000000000000000000000000002"
DIGEST_MULTI = "sha256:bbbb000000000000000000000000000000000000000000000000000000000001"
V3_DIGEST = "sha256:5c2b4d5ff1b4a50b2d10ea2b57b7e1f3c3a1e1c1a4f2e2a3a9b0b1c2d3e4f5a6"

ALL_UNPROTECTED = ["ns/app", "org/tags/app", "v2repo", "v3old", "v3repo", "zoo"]


def without_date(reply):
    return [(n.lower(), v) for (n, v) in reply.headers if n.lower() != "date"]


def catalog_body(names):
    return ('{"repositories": [%s]}' % ", ".join('"%s"' % n for n in names)).encode()


class V2Test(HttpdTestCase):

    def assertRedirect(self, path, location, headers=(), method=None):
        reply = self.get(path, method=method, headers=list(headers))
        self.assertReply(reply, 302, body=b"", headers=dict(API_VERSION, Location=location))
        return reply

    def assertNotFound(self, reply, body=V2_NAME_UNKNOWN):
        self.assertReply(reply, 404, body=body, headers=dict(API_VERSION, **{"Content-Type": JSON}))

    def assertDigestInvalid(self, reply):
        self.assertReply(reply, 400, body=V2_DIGEST_INVALID, headers=dict(API_VERSION, **{"Content-Type": JSON}))

    # ---- base ----

    def test_base_answers_empty_json_object(self):
        self.assertReply(self.get("/v2/"), 200, body=b"{}", headers=dict(API_VERSION, **{"Content-Type": JSON}))

    def test_base_head_has_headers_and_no_body(self):
        self.assertReply(self.get("/v2/", method="HEAD"), 200, body=b"",
                         headers=dict(API_VERSION, **{"Content-Type": JSON}))

    # ---- not found ----

    def test_unknown_repo_is_not_found_with_v2_error_body(self):
        for path in ("/v2/nope/manifests/latest", "/v2/nope/tags/list", "/v2/nope/blobs/" + BLOB,
                     "/v2/nope/blobs/sha256:abc", "/v2/nope/referrers/" + BLOB, "/v2/ns/nope/manifests/latest"):
            with self.subTest(path=path):
                self.assertNotFound(self.get(path))

    def test_protected_repo_answers_like_unknown_repo(self):
        for rest in ("manifests/latest", "tags/list", "blobs/" + BLOB, "blobs/sha256:abc", "referrers/" + BLOB,
                     "manifests/" + BLOB, "manifests/sha256:abc", "tags/list?n=x"):
            for method in (None, "HEAD"):
                with self.subTest(rest=rest, method=method):
                    secret = self.get("/v2/private/secret/" + rest, method=method)
                    unknown = self.get("/v2/private/nope/" + rest, method=method)
                    self.assertEqual(secret.status, 404)
                    self.assertEqual(secret.body, unknown.body)
                    self.assertEqual(without_date(secret), without_date(unknown))
                    if method is None:
                        self.assertNotFound(secret)

    def test_path_without_tags_manifests_or_blobs_is_not_found(self):
        for path in ("/v2/zoo", "/v2/zoo/", "/v2/zoo/foo", "/v2/zoo/latest", "/v2/zoo/tags",
                     "/v2/zoo/manifest/latest"):
            with self.subTest(path=path):
                self.assertNotFound(self.get(path))

    def test_component_with_nothing_after_it_is_not_found(self):
        for path in ("/v2/zoo/manifests", "/v2/zoo/manifests/", "/v2/zoo/blobs", "/v2/zoo/blobs/"):
            with self.subTest(path=path):
                self.assertNotFound(self.get(path))

    def test_component_without_name_is_not_found(self):
        for path in ("/v2/tags/list", "/v2/manifests/latest", "/v2/blobs/" + BLOB, "/v2/referrers/" + BLOB):
            with self.subTest(path=path):
                self.assertNotFound(self.get(path))

    def test_manifest_reference_with_extra_segment_is_an_unknown_manifest(self):
        self.assertNotFound(self.get("/v2/zoo/manifests/latest/extra"), V2_MANIFEST_UNKNOWN)

    def test_unknown_digest_is_an_unknown_manifest(self):
        for method in (None, "HEAD"):
            for accept in ([], [ACCEPT_BOTH]):
                with self.subTest(method=method, accept=accept):
                    reply = self.get("/v2/zoo/manifests/sha256:" + "e" * 64, method=method, headers=accept)
                    self.assertReply(reply, 404, body=b"" if method else V2_MANIFEST_UNKNOWN,
                                     headers=dict(API_VERSION, **{"Content-Type": JSON, "Vary": "Accept"}))

    def test_malformed_digest_is_bad_request(self):
        for path in ("/v2/zoo/manifests/sha256:abc", "/v2/v2repo/manifests/sha256:abc",
                     "/v2/v3old/manifests/sha256:" + "A" * 64, "/v2/zoo/manifests/sha256:" + "a" * 65,
                     "/v2/zoo/blobs/sha256:abc", "/v2/zoo/blobs/latest", "/v2/zoo/blobs/" + BLOB + "/x",
                     "/v2/zoo/referrers/sha256:abc", "/v2/zoo/referrers/latest"):
            with self.subTest(path=path):
                self.assertDigestInvalid(self.get(path))

    def test_v1_repo_is_not_visible_through_v2(self):
        for path in ("/v2/busybox/tags/list", "/v2/redhat/rhel/manifests/latest", "/v2/secret/tags/list"):
            with self.subTest(path=path):
                self.assertNotFound(self.get(path))

    def test_not_found_head_has_headers_and_no_body(self):
        self.assertReply(self.get("/v2/nope/manifests/latest", method="HEAD"), 404, body=b"",
                         headers=dict(API_VERSION, **{"Content-Type": JSON}))

    # ---- blobs and tags ----

    def test_blob_redirects_to_repo_url(self):
        self.assertRedirect("/v2/zoo/blobs/" + BLOB, ZOO + "blobs/" + BLOB)

    def test_tags_list_redirects_to_repo_url(self):
        self.assertRedirect("/v2/zoo/tags/list", ZOO + "tags/list")

    def test_redirect_adds_missing_slash_to_repo_url(self):
        self.assertRedirect("/v2/v3repo/tags/list", V3REPO + "tags/list")
        self.assertRedirect("/v2/v3repo/blobs/" + V3_DIGEST, V3REPO + "blobs/" + V3_DIGEST)

    def test_blob_and_tags_ignore_accept(self):
        self.assertRedirect("/v2/zoo/blobs/" + BLOB, ZOO + "blobs/" + BLOB, headers=[ACCEPT_BOTH])
        self.assertRedirect("/v2/zoo/tags/list", ZOO + "tags/list", headers=[ACCEPT_BOTH])

    def test_name_with_slash(self):
        self.assertRedirect("/v2/ns/app/manifests/latest", CDN + "/ns-app/manifests/latest")
        self.assertRedirect("/v2/ns/app/tags/list", CDN + "/ns-app/tags/list")
        self.assertRedirect("/v2/ns/app/blobs/" + BLOB, CDN + "/ns-app/blobs/" + BLOB)

    def test_rightmost_component_ends_the_name(self):
        # the name org/tags/app itself holds a "tags" component
        self.assertRedirect("/v2/org/tags/app/tags/list", CDN + "/org-tags-app/tags/list")
        self.assertRedirect("/v2/org/tags/app/manifests/latest", CDN + "/org-tags-app/manifests/latest")
        self.assertRedirect("/v2/org/tags/app/blobs/" + BLOB, CDN + "/org-tags-app/blobs/" + BLOB)

    def test_query_string_is_not_part_of_the_reference(self):
        self.assertRedirect("/v2/zoo/tags/list?n=10", ZOO + "tags/list")

    # ---- manifest negotiation ----

    def test_version_2_repo_keeps_manifest_path_whatever_the_accept(self):
        for accept in ([], [ACCEPT_S2], [ACCEPT_LIST], [ACCEPT_BOTH]):
            with self.subTest(accept=accept):
                self.assertRedirect("/v2/v2repo/manifests/latest", CDN + "/v2repo/manifests/latest", accept)
                self.assertRedirect("/v2/v2repo/manifests/" + V3_DIGEST, CDN + "/v2repo/manifests/" + V3_DIGEST,
                                    accept)

    def test_version_3_repo_without_schema2_data_serves_schema1(self):
        for accept in ([], [ACCEPT_S2], [ACCEPT_LIST], [ACCEPT_BOTH]):
            with self.subTest(accept=accept):
                self.assertRedirect("/v2/v3old/manifests/latest", CDN + "/v3old/manifests/1/latest", accept)

    def test_manifest_list_when_accepted_and_listed(self):
        for ref in ("latest", "multi"):
            for accept in ([ACCEPT_LIST], [ACCEPT_BOTH]):
                with self.subTest(ref=ref, accept=accept):
                    self.assertRedirect("/v2/zoo/manifests/" + ref, ZOO + "manifests/list/" + ref, accept)

    def test_manifest_list_needs_ref_in_manifest_list_data(self):
        # 2.0 has only a schema2 manifest: LIST alone falls through to schema 1
        self.assertRedirect("/v2/zoo/manifests/2.0", ZOO + "manifests/1/2.0", [ACCEPT_LIST])
        self.assertRedirect("/v2/zoo/manifests/2.0", ZOO + "manifests/2/2.0", [ACCEPT_BOTH])

    def test_amd64_tag_with_schema2_accept_redirects_to_its_digest(self):
        self.assertRedirect("/v2/zoo/manifests/latest", ZOO + "manifests/2/" + DIGEST_LATEST, [ACCEPT_S2])
        # schema version 1 entry: the digest under manifests/1 even for an S2 client
        self.assertRedirect("/v2/zoo/manifests/multi", ZOO + "manifests/1/" + DIGEST_MULTI, [ACCEPT_S2])

    def test_amd64_tag_without_schema2_accept(self):
        for accept in ([], ["Accept: application/json"], ["Accept: " + S1]):
            with self.subTest(accept=accept):
                # V=1: the amd64 digest
                self.assertRedirect("/v2/zoo/manifests/multi", ZOO + "manifests/1/" + DIGEST_MULTI, accept)
                # V=2: the schema 1 manifest of the tag itself
                self.assertRedirect("/v2/zoo/manifests/latest", ZOO + "manifests/1/latest", accept)

    def test_digest_is_answered_by_content_whatever_the_accept(self):
        for accept in ([], [ACCEPT_S2], [ACCEPT_LIST], [ACCEPT_BOTH]):
            with self.subTest(accept=accept):
                # the amd64 manifests of the lists, schema 2 and schema 1
                self.assertRedirect("/v2/zoo/manifests/" + DIGEST_LATEST, ZOO + "manifests/2/" + DIGEST_LATEST,
                                    accept)
                self.assertRedirect("/v2/zoo/manifests/" + DIGEST_MULTI, ZOO + "manifests/1/" + DIGEST_MULTI,
                                    accept)
                self.assertRedirect("/v2/v3repo/manifests/" + V3_DIGEST, V3REPO + "manifests/2/" + V3_DIGEST,
                                    accept)

    def test_schema2_when_accepted_and_ref_in_schema2_data(self):
        self.assertRedirect("/v2/zoo/manifests/2.0", ZOO + "manifests/2/2.0", [ACCEPT_S2])
        self.assertRedirect("/v2/v3repo/manifests/latest", V3REPO + "manifests/2/latest", [ACCEPT_S2])
        self.assertRedirect("/v2/v3repo/manifests/" + V3_DIGEST, V3REPO + "manifests/2/" + V3_DIGEST,
                            [ACCEPT_S2])

    def test_schema1_otherwise(self):
        cases = [("/v2/zoo/manifests/2.0", [], ZOO + "manifests/1/2.0"),
                 ("/v2/zoo/manifests/other", [ACCEPT_BOTH], ZOO + "manifests/1/other"),
                 ("/v2/v3repo/manifests/latest", [], V3REPO + "manifests/1/latest"),
                 ("/v2/v3repo/manifests/latest", [ACCEPT_LIST], V3REPO + "manifests/1/latest"),
                 ("/v2/v3repo/manifests/other", [ACCEPT_S2], V3REPO + "manifests/1/other")]
        for path, accept, location in cases:
            with self.subTest(path=path, accept=accept):
                self.assertRedirect(path, location, accept)

    def test_accept_is_read_from_every_accept_header(self):
        for headers in (["Accept: text/plain", ACCEPT_S2], [ACCEPT_S2, "Accept: text/plain"]):
            with self.subTest(headers=headers):
                self.assertRedirect("/v2/v3repo/manifests/latest", V3REPO + "manifests/2/latest", headers)
        self.assertRedirect("/v2/zoo/manifests/latest", ZOO + "manifests/list/latest", [ACCEPT_S2, ACCEPT_LIST])

    def test_accept_comma_list_parameters_and_whitespace(self):
        for accept in ("Accept: text/plain, " + S2,
                       "Accept: text/plain;q=0.5," + S2 + ";q=0.9",
                       "Accept: text/plain ; q=0.5 ,  " + S2 + " ;q=0.1",
                       "Accept:    " + S2 + "   ",
                       "Accept: " + S2 + "; charset=utf-8"):
            with self.subTest(accept=accept):
                self.assertRedirect("/v2/v3repo/manifests/latest", V3REPO + "manifests/2/latest", [accept])

    def test_accept_media_types_match_exactly(self):
        for accept in ("Accept: " + S2 + "x", "Accept: application/*", "Accept: */*",
                       "Accept: application/vnd.docker.distribution.manifest.v2"):
            with self.subTest(accept=accept):
                self.assertRedirect("/v2/v3repo/manifests/latest", V3REPO + "manifests/1/latest", [accept])

    def test_head_redirects_like_get_without_body(self):
        cases = [("/v2/zoo/manifests/latest", [ACCEPT_BOTH], ZOO + "manifests/list/latest"),
                 ("/v2/zoo/manifests/latest", [ACCEPT_S2], ZOO + "manifests/2/" + DIGEST_LATEST),
                 ("/v2/zoo/manifests/latest", [], ZOO + "manifests/1/latest"),
                 ("/v2/v3old/manifests/latest", [], CDN + "/v3old/manifests/1/latest"),
                 ("/v2/v2repo/manifests/latest", [], CDN + "/v2repo/manifests/latest"),
                 ("/v2/zoo/blobs/" + BLOB, [], ZOO + "blobs/" + BLOB),
                 ("/v2/zoo/tags/list", [], ZOO + "tags/list")]
        for path, accept, location in cases:
            with self.subTest(path=path, accept=accept):
                get = self.get(path, headers=accept)
                head = self.assertRedirect(path, location, accept, method="HEAD")
                self.assertEqual(head.header("Location"), get.header("Location"))

    # ---- read-only ----

    def test_write_methods_are_not_allowed(self):
        for method in ("PUT", "POST", "PATCH", "DELETE"):
            for path in ("/v2/", "/v2/zoo/manifests/latest", "/v2/zoo/blobs/uploads/",
                         "/v2/zoo/blobs/" + BLOB, "/v2/zoo/blobs/sha256:abc", "/v2/nope/manifests/latest",
                         "/v2/private/secret/manifests/latest", "/v2/_catalog", "/v2/zoo/tags/list",
                         "/v2/zoo/referrers/" + BLOB, "/v2/zoo"):
                with self.subTest(method=method, path=path):
                    reply = self.get(path, method=method, data="{}")
                    self.assertReply(reply, 405, body=V2_UNSUPPORTED,
                                     headers=dict(API_VERSION, **{"Content-Type": JSON, "Allow": "GET, HEAD"}))

    # ---- _catalog ----

    def assertCatalog(self, path, names, link=None):
        reply = self.get(path)
        self.assertReply(reply, 200, body=catalog_body(names), headers=dict(API_VERSION, **{"Content-Type": JSON}))
        self.assertEqual(reply.header("Link"), link, reply)
        return reply

    def test_catalog_lists_unprotected_repos_sorted(self):
        self.assertCatalog("/v2/_catalog", ALL_UNPROTECTED)

    def test_catalog_head_has_headers_and_no_body(self):
        self.assertReply(self.get("/v2/_catalog", method="HEAD"), 200, body=b"",
                         headers=dict(API_VERSION, **{"Content-Type": JSON}))

    def test_catalog_first_page_links_to_next(self):
        self.assertCatalog("/v2/_catalog?n=2", ["ns/app", "org/tags/app"],
                           '</v2/_catalog?n=2&last=org%2Ftags%2Fapp>; rel="next"')

    def test_catalog_pages_through_all_repos_by_following_link(self):
        path, seen, pages = "/v2/_catalog?n=2", [], 0
        while path:
            pages += 1
            self.assertLess(pages, 10, "Link never ends")
            reply = self.get(path)
            self.assertEqual(reply.status, 200, reply)
            names = json.loads(reply.body)["repositories"]
            self.assertLessEqual(len(names), 2)
            seen += names
            link = reply.header("Link")
            if link:
                self.assertTrue(link.startswith("<") and link.endswith('>; rel="next"'), link)
                path = link[1:link.index(">")]
            else:
                path = None
        self.assertEqual(seen, ALL_UNPROTECTED)
        self.assertEqual(pages, 3)

    def test_catalog_pages_after_url_encoded_last(self):
        self.assertCatalog("/v2/_catalog?n=2&last=ns%2Fapp", ["org/tags/app", "v2repo"],
                           '</v2/_catalog?n=2&last=v2repo>; rel="next"')
        self.assertCatalog("/v2/_catalog?n=2&last=org%2Ftags%2Fapp", ["v2repo", "v3old"],
                           '</v2/_catalog?n=2&last=v3old>; rel="next"')

    def test_catalog_last_page_has_no_link(self):
        self.assertCatalog("/v2/_catalog?n=2&last=v3old", ["v3repo", "zoo"])
        self.assertCatalog("/v2/_catalog?n=6", ALL_UNPROTECTED)
        self.assertCatalog("/v2/_catalog?n=100", ALL_UNPROTECTED)

    def test_catalog_last_without_n(self):
        self.assertCatalog("/v2/_catalog?last=v2repo", ["v3old", "v3repo", "zoo"])
        self.assertCatalog("/v2/_catalog?last=", ALL_UNPROTECTED)
        self.assertCatalog("/v2/_catalog?last=zzz", [])

    def test_catalog_n_zero_is_empty(self):
        self.assertCatalog("/v2/_catalog?n=0", [])

    def test_catalog_skips_protected_repo_between_pages(self):
        # private/secret sorts between org/tags/app and v2repo
        self.assertCatalog("/v2/_catalog?n=1&last=org%2Ftags%2Fapp", ["v2repo"],
                           '</v2/_catalog?n=1&last=v2repo>; rel="next"')
        self.assertCatalog("/v2/_catalog?n=1&last=ns%2Fapp", ["org/tags/app"],
                           '</v2/_catalog?n=1&last=org%2Ftags%2Fapp>; rel="next"')

    def test_catalog_bad_n_is_bad_request(self):
        for n in ("abc", "-1", "", "2x", "1.5"):
            with self.subTest(n=n):
                reply = self.get("/v2/_catalog?n=" + n)
                self.assertReply(reply, 400, body=V2_PAGINATION_INVALID, headers=dict(API_VERSION, **{"Content-Type": JSON}))


if __name__ == "__main__":
    unittest.main()
