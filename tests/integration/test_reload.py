"""Reloading metadata in a running httpd: additions, removals, in-place
edits, broken files keeping their last good content, and -k graceful."""

import json
import os
import re
import time
import unittest

from harness import Httpd, TEST_DATA, write_atomically

METADATA = os.path.join(TEST_DATA, "metadata")


def v2_metadata(repo_id, url):
    return json.dumps({"version": 2, "repo-registry-id": repo_id, "url": url})


class Reload(unittest.TestCase):
    def setUp(self):
        # stopped, its error log checked and its dir removed after each test
        self.h = self.enterContext(Httpd(
            data_src=METADATA,
            # CRANE0102: a bad metadata file whose last good content is kept
            expect_log=[r"CRANE0102: .*/broken\.json "]))

    def write(self, name, text, atomic=True):
        path = os.path.join(self.h.data, name)
        if atomic:
            write_atomically(path, text)
        else:
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)

    def wait_for(self, path, status, location=None, timeout=15, consecutive=8):
        """Polls until `consecutive` answers in a row match (every child of a
        prefork server must have reloaded, each on its own)."""
        deadline = time.time() + timeout
        streak = 0
        last = None
        while time.time() < deadline:
            last = self.h.curl(path)
            if last.status == status and (location is None or last.header("Location") == location):
                streak += 1
                if streak >= consecutive:
                    return last
            else:
                streak = 0
            time.sleep(0.1)
        self.fail("%s did not become %s %s: last %r" % (path, status, location, last))

    def test_added_file_is_served_after_the_poll_interval(self):
        self.assertEqual(self.h.curl("/v2/newrepo/tags/list").status, 404)
        self.write("new.json", v2_metadata("newrepo", "http://cdn.example.com/new/"))
        self.wait_for("/v2/newrepo/tags/list", 302, "http://cdn.example.com/new/tags/list")

    def test_added_file_in_a_new_subdirectory_is_served(self):
        os.makedirs(os.path.join(self.h.data, "a", "b"))
        os.chmod(os.path.join(self.h.data, "a"), 0o755)
        os.chmod(os.path.join(self.h.data, "a", "b"), 0o755)
        self.write("a/b/deep.json", v2_metadata("deep", "http://cdn.example.com/deep/"))
        self.wait_for("/v2/deep/tags/list", 302, "http://cdn.example.com/deep/tags/list")

    def test_removed_file_stops_being_served(self):
        self.wait_for("/v2/zoo/tags/list", 302)
        os.remove(os.path.join(self.h.data, "zoo_v4.json"))
        self.wait_for("/v2/zoo/tags/list", 404)

    def test_in_place_edit_of_the_same_size_is_picked_up(self):
        self.write("v2_plain.json", v2_metadata("v2repo", "http://cdn.example.com/AAAA/"), atomic=False)
        self.wait_for("/v2/v2repo/tags/list", 302, "http://cdn.example.com/AAAA/tags/list")
        self.write("v2_plain.json", v2_metadata("v2repo", "http://cdn.example.com/BBBB/"), atomic=False)
        self.wait_for("/v2/v2repo/tags/list", 302, "http://cdn.example.com/BBBB/tags/list")

    def test_broken_file_keeps_its_last_good_content_until_fixed(self):
        self.write("broken.json", v2_metadata("fragile", "http://cdn.example.com/good/"))
        self.wait_for("/v2/fragile/tags/list", 302, "http://cdn.example.com/good/tags/list")
        self.write("broken.json", '{"version": 2, "repo-registry-id": "fragile", "url": ')
        deadline = time.time() + 10
        while not re.search(r"CRANE0102: .*/broken\.json ", self.h.log()) and time.time() < deadline:
            time.sleep(0.1)
        self.assertRegex(self.h.log(), r"CRANE0102: .*/broken\.json ")
        self.wait_for("/v2/fragile/tags/list", 302, "http://cdn.example.com/good/tags/list")
        self.write("broken.json", v2_metadata("fragile", "http://cdn.example.com/fixed/"))
        self.wait_for("/v2/fragile/tags/list", 302, "http://cdn.example.com/fixed/tags/list")

    def test_unreadable_file_drops_its_repository(self):
        # A takedown by chmod 000. The reload runs in each child's watcher:
        # as www-data when the tests run as root (root would read anyway),
        # else as the test user, who loses read access to its own file too.
        # CRANE0103: a bad or unreadable file whose repository is withdrawn
        self.h.expect_log.append(re.compile(r"CRANE0103: .*/zoo_v4\.json .*Permission denied"))
        self.wait_for("/v2/zoo/tags/list", 302)
        path = os.path.join(self.h.data, "zoo_v4.json")
        os.chmod(path, 0)
        self.wait_for("/v2/zoo/tags/list", 404)
        self.assertRegex(self.h.log(), r"CRANE0103: .*/zoo_v4\.json .*Permission denied")
        os.chmod(path, 0o644)
        self.wait_for("/v2/zoo/tags/list", 302)

    def test_rewrite_to_a_truthy_protected_protects_the_repository(self):
        # Crane treats any Python-true value as protected: the rewrite is
        # taken, and without a client certificate the repo is not found
        self.wait_for("/v2/v2repo/tags/list", 302)
        self.write("v2_plain.json", json.dumps({"version": 2, "repo-registry-id": "v2repo",
                                                "url": "http://cdn.example.com/v2/", "protected": 1}))
        self.wait_for("/v2/v2repo/tags/list", 404)
        self.write("v2_plain.json", json.dumps({"version": 2, "repo-registry-id": "v2repo",
                                                "url": "http://cdn.example.com/v2/", "protected": "true"}))
        self.write("ns.json", v2_metadata("ns/marker", "http://cdn.example.com/marker/"))
        self.wait_for("/v2/ns/marker/tags/list", 302)
        self.assertEqual(self.h.curl("/v2/v2repo/tags/list").status, 404)

    def test_broken_rewrite_toward_protected_is_not_served_from_last_good(self):
        self.h.expect_log.append(re.compile(r"CRANE0103: .*/v2_plain\.json "))
        self.wait_for("/v2/v2repo/tags/list", 302)
        self.write("v2_plain.json", '{"version": 2, "protected": true, "repo-registry-id": "v2repo", "url": ')
        self.wait_for("/v2/v2repo/tags/list", 404)
        self.write("v2_plain.json", v2_metadata("v2repo", "http://cdn.example.com/fixed/"))
        self.wait_for("/v2/v2repo/tags/list", 302, "http://cdn.example.com/fixed/tags/list")

    def test_graceful_restart_keeps_serving_and_reloads_everything(self):
        self.write("g.json", v2_metadata("graceful", "http://cdn.example.com/g/"))
        self.h.graceful()
        # the new generation loaded the file at startup, before any poll
        r = self.h.curl("/v2/graceful/tags/list")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "http://cdn.example.com/g/tags/list")
        self.assertEqual(self.h.curl("/v2/zoo/tags/list").status, 302)
        self.h.graceful()
        self.assertEqual(self.h.curl("/v2/").status, 200)


if __name__ == "__main__":
    unittest.main()
