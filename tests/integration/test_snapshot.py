"""The shared index snapshot in a real httpd: one file per data dir in
CraneSnapshotDir, built by the parent and then by one watchdog child,
mapped by every child; the crane section of mod_status (HTML and ?auto);
graceful restarts that adopt the file in place; a refused file; a killed
builder; two data dirs in two virtual hosts; start-up errors."""

import glob
import json
import os
import pwd
import re
import signal
import time
import unittest

from harness import Httpd, TEST_DATA, free_port, wait_until, write_atomically

METADATA = os.path.join(TEST_DATA, "metadata")

STATUS_CONF = """
<Location "/server-status">
    SetHandler server-status
</Location>
"""


def v2_doc(repo_id, url):
    return json.dumps({"version": 2, "repo-registry-id": repo_id, "url": url})


def v1_doc(repo_id, url, image):
    return json.dumps({"version": 1, "repo-registry-id": repo_id, "url": url,
                       "images": [{"id": image}], "tags": {"latest": image}})


def status(h, index=0):
    """The CraneSnapshotN lines of /server-status?auto as a dict."""
    r = h.curl("/server-status?auto")
    assert r.status == 200, r
    prefix = "CraneSnapshot%d" % index
    out = {}
    for line in r.text.splitlines():
        if line.startswith(prefix) and ": " in line:
            key, value = line.split(": ", 1)
            rest = key[len(prefix):]
            if rest and not rest[0].isdigit():
                out[rest] = value
    return out



def wait_served(h, path, status_code, location=None, consecutive=8, timeout=20):
    """`consecutive` answers in a row (every child of a prefork server)."""
    streak = [0]

    def ok():
        r = h.curl(path)
        good = r.status == status_code and (location is None or r.header("Location") == location)
        streak[0] = streak[0] + 1 if good else 0
        return streak[0] >= consecutive
    wait_until(ok, timeout, "%s -> %s" % (path, status_code))


def known_data(h):
    """A data dir with exactly 3 v2 repos, 1 v1 repo and 1 broken file."""
    for name in os.listdir(h.data):
        path = os.path.join(h.data, name)
        if os.path.isdir(path):
            import shutil
            shutil.rmtree(path)
        else:
            os.remove(path)
    for i in range(3):
        write_atomically(os.path.join(h.data, "v2_%d.json" % i), v2_doc("repo%d" % i, "http://cdn.example.com/%d/" % i))
    write_atomically(os.path.join(h.data, "old.json"), v1_doc("oldrepo", "http://cdn.example.com/v1/", "a1b2c3"))
    write_atomically(os.path.join(h.data, "broken.json"), '{"version": 2, "repo-registry-id": ')


BROKEN_LOG = [r"CRANE0104: .*broken\.json"]


class SnapshotStatus(unittest.TestCase):
    def start(self, **kw):
        h = Httpd(conf=STATUS_CONF, extra_modules=["status"], expect_log=BROKEN_LOG, **kw)
        known_data(h)
        return self.enterContext(h)

    def test_one_snapshot_file_per_data_dir_owned_by_the_children_user(self):
        h = self.start()
        snaps = glob.glob(os.path.join(h.dir, "run", "crane", "*.snap"))
        self.assertEqual(len(snaps), 1, snaps)
        self.assertRegex(os.path.basename(snaps[0]), r"^[A-Za-z0-9_.-]+-[0-9a-f]{16}\.snap$")
        st = os.stat(os.path.join(h.dir, "run", "crane"))
        self.assertEqual(st.st_mode & 0o777, 0o700)
        if os.geteuid() == 0:
            self.assertEqual(st.st_uid, pwd.getpwnam("www-data").pw_uid)
        s = status(h)
        self.assertEqual(int(s["Bytes"]), os.path.getsize(snaps[0]))
        # the start-up build (root) and the watchdog builder (User) share the lock
        self.assertEqual(os.stat(snaps[0] + ".lock").st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(snaps[0]).st_mode & 0o777, 0o644)

    def test_auto_status_lines(self):
        h = self.start()
        s = status(h)
        self.assertEqual(s["DataDir"], h.data)
        self.assertEqual(s["Files"], "5")
        self.assertEqual(s["FailedFiles"], "1")
        self.assertEqual(s["V1Repos"], "1")
        self.assertEqual(s["V2Repos"], "3")
        self.assertGreaterEqual(int(s["Generation"]), 1)
        self.assertEqual(s["MappedGeneration"], s["Generation"])
        self.assertGreater(int(s["Bytes"]), 0)
        self.assertRegex(s["LastScan"], r"^\d+\.\d{3}$")
        self.assertLess(abs(float(s["LastScan"]) - time.time()), 120)
        self.assertRegex(s["LastScanDuration"], r"^\d+\.\d{3}$")
        self.assertRegex(s["LastBuild"], r"^\d+\.\d{3}$")
        self.assertIn("broken.json skipped", s["LastError"])
        self.assertGreater(int(s["BuilderPid"]), 0)

    def test_html_section(self):
        h = self.start()
        r = h.curl("/server-status")
        self.assertEqual(r.status, 200)
        body = r.text
        self.assertIn("<h2>mod_crane index snapshots</h2>", body)
        self.assertIn("<td>%s</td>" % h.data, body)
        self.assertIn("broken.json skipped", body)

    def test_a_change_is_a_new_generation_and_nothing_else_is_not(self):
        h = self.start()
        before = status(h)
        gen = int(before["Generation"])
        # scans go on without building while nothing changes
        wait_until(lambda: int(status(h)["Scans"]) >= int(before["Scans"]) + 2, what="two more scans")
        self.assertEqual(int(status(h)["Generation"]), gen)
        self.assertEqual(int(status(h)["Builds"]), int(before["Builds"]))
        write_atomically(os.path.join(h.data, "v2_9.json"), v2_doc("repo9", "http://cdn.example.com/9/"))
        wait_served(h, "/v2/repo9/tags/list", 302, "http://cdn.example.com/9/tags/list")
        after = status(h)
        self.assertEqual(int(after["Generation"]), gen + 1)
        self.assertEqual(after["V2Repos"], "4")
        self.assertEqual(after["Files"], "6")
        # fixing the broken file clears the error
        write_atomically(os.path.join(h.data, "broken.json"), v2_doc("mended", "http://cdn.example.com/m/"))
        wait_served(h, "/v2/mended/tags/list", 302)
        wait_until(lambda: status(h)["LastError"] == "(none)", what="error cleared")
        self.assertEqual(status(h)["FailedFiles"], "0")

    def test_a_small_publish_is_a_delta_over_the_base_and_a_restart_adopts_both(self):
        h = self.start()
        snap_dir = os.path.join(h.dir, "run", "crane")
        gen = int(status(h)["Generation"])
        head = glob.glob(os.path.join(snap_dir, "*.snap"))[0]
        # a full image in place is its own base, under a second name
        base = "%s.base.%d" % (head, gen)
        self.assertEqual(os.stat(base).st_ino, os.stat(head).st_ino)
        self.assertEqual(status(h)["DeltaBytes"], "0")
        write_atomically(os.path.join(h.data, "v2_9.json"), v2_doc("repo9", "http://cdn.example.com/9/"))
        wait_served(h, "/v2/repo9/tags/list", 302, "http://cdn.example.com/9/tags/list")
        s = status(h)
        self.assertEqual(int(s["Generation"]), gen + 1)
        self.assertEqual(s["Files"], "6")
        self.assertEqual(s["V2Repos"], "4")
        # the delta is a file of its own, the base stays in place
        self.assertNotEqual(os.stat(base).st_ino, os.stat(head).st_ino)
        self.assertEqual(int(s["DeltaBytes"]), os.path.getsize(head))
        self.assertEqual(int(s["Bytes"]), os.path.getsize(head) + os.path.getsize(base))
        self.assertEqual(sorted(os.listdir(snap_dir)), sorted(os.path.basename(p) for p in (head, base, head + ".lock")))
        # every other repository answers from the base, as before
        wait_served(h, "/v2/repo2/tags/list", 302, "http://cdn.example.com/2/tags/list")
        wait_served(h, "/v1/repositories/oldrepo/tags", 200)
        self.assertIn("Delta size", h.curl("/server-status").text)
        # a graceful restart maps the delta with its base, and builds nothing
        loaded = len(re.findall(r"CRANE0106: metadata loaded", h.log()))
        h.graceful()
        wait_served(h, "/v2/repo9/tags/list", 302, "http://cdn.example.com/9/tags/list")
        self.assertEqual(int(status(h)["Generation"]), gen + 1)
        self.assertEqual(len(re.findall(r"CRANE0106: metadata loaded", h.log())), loaded)
        self.assertRegex(h.log(), r"CRANE0106: metadata loaded from .*; a delta of \d+ files \(1 changed\) over its base")


class SnapshotLifecycle(unittest.TestCase):
    def test_graceful_restart_adopts_the_snapshot_and_parses_nothing(self):
        h = self.enterContext(Httpd(data_src=METADATA, conf=STATUS_CONF, extra_modules=["status"]))
        gen = int(status(h)["Generation"])
        loaded = len(re.findall(r"CRANE0106: metadata loaded", h.log()))
        h.graceful()
        wait_served(h, "/v2/zoo/tags/list", 302)
        self.assertEqual(int(status(h)["Generation"]), gen)
        # no build: the file in place was adopted and nothing had changed
        self.assertEqual(len(re.findall(r"CRANE0106: metadata loaded", h.log())), loaded)
        write_atomically(os.path.join(h.data, "late.json"), v2_doc("late", "http://cdn.example.com/late/"))
        wait_served(h, "/v2/late/tags/list", 302)
        self.assertEqual(int(status(h)["Generation"]), gen + 1)
        self.assertRegex(h.log(), r"CRANE0106: metadata loaded from .*: \d+ files \(1 parsed, 0 failed\)")

    def test_a_damaged_snapshot_file_is_refused_and_rebuilt(self):
        h = self.enterContext(Httpd(data_src=METADATA, conf=STATUS_CONF, extra_modules=["status"],
                                    # the builder refuses it (0110); a child's follower
                                    # may meet it first and keep its mapping (0130)
                                    expect_log=[r"CRANE0110: snapshot refused: ",
                                                r"CRANE0130: snapshot refused: "]))
        gen = int(status(h)["Generation"])
        snap = glob.glob(os.path.join(h.dir, "run", "crane", "*.snap"))[0]
        with open(snap, "rb") as f:
            data = f.read()
        # cut short, renamed into place (the mapped file is never written)
        with open(snap + ".cut", "wb") as f:
            f.write(data[: len(data) // 2])
        os.chmod(snap + ".cut", 0o644)
        os.rename(snap + ".cut", snap)
        h.graceful()
        self.assertRegex(h.log(), r"CRANE0110: snapshot refused: %s: truncated" % re.escape(snap))
        wait_served(h, "/v2/zoo/tags/list", 302)
        self.assertGreater(int(status(h)["Generation"]), gen)
        with open(snap, "rb") as f:
            self.assertEqual(len(f.read()), int(status(h)["Bytes"]))

    def test_a_killed_builder_is_replaced_by_another_child(self):
        h = self.enterContext(Httpd(data_src=METADATA, conf=STATUS_CONF, extra_modules=["status"],
                                    expect_log=[r"AH00052: child pid \d+ exit signal Killed"]))
        parent = self.parent_pid(h)
        # a short-lived process forked by the parent builds first; then the
        # watchdog child scans on taking the role: wait for a live child
        pid = wait_until(lambda: [p for p in [int(status(h)["BuilderPid"])] if self.parent_of(p) == parent],
                         what="a child scan")[0]
        os.kill(pid, signal.SIGKILL)
        write_atomically(os.path.join(h.data, "after.json"), v2_doc("after", "http://cdn.example.com/after/"))
        # mod_watchdog hands the role over within about ten seconds
        wait_served(h, "/v2/after/tags/list", 302, timeout=40)
        self.assertNotEqual(int(status(h)["BuilderPid"]), pid)

    @staticmethod
    def parent_of(pid):
        """The parent pid of a running process, None when it is gone."""
        try:
            with open("/proc/%d/status" % pid) as f:
                return int(re.search(r"^PPid:\s+(\d+)", f.read(), re.M).group(1))
        except (OSError, AttributeError):
            return None

    @staticmethod
    def parent_pid(h):
        with open(os.path.join(h.dir, "httpd.pid")) as f:
            return int(f.read().strip())


class TwoDataDirs(unittest.TestCase):
    def test_each_virtual_host_has_its_own_data_dir_and_snapshot(self):
        port2 = free_port()
        conf = STATUS_CONF + """
Listen 127.0.0.1:%d
<VirtualHost 127.0.0.1:%d>
    CraneDataDir {dir}/metadata2
    CranePollInterval 1
    <Location "/">
        SetHandler crane
    </Location>
</VirtualHost>
""" % (port2, port2)
        h = Httpd(data_src=METADATA, conf=conf, extra_modules=["status"])
        os.makedirs(os.path.join(h.dir, "metadata2"))
        os.chmod(os.path.join(h.dir, "metadata2"), 0o755)
        write_atomically(os.path.join(h.dir, "metadata2", "other.json"), v2_doc("other", "http://other.example.com/"))
        self.enterContext(h)
        self.assertEqual(len(glob.glob(os.path.join(h.dir, "run", "crane", "*.snap"))), 2)
        dirs = {status(h, 0)["DataDir"], status(h, 1)["DataDir"]}
        self.assertEqual(dirs, {h.data, os.path.join(h.dir, "metadata2")})
        self.assertEqual(h.curl("/v2/other/tags/list").status, 404)
        other = h.curl("http://127.0.0.1:%d/v2/other/tags/list" % port2)
        self.assertEqual(other.status, 302)
        self.assertEqual(other.header("Location"), "http://other.example.com/tags/list")
        self.assertEqual(h.curl("http://127.0.0.1:%d/v2/zoo/tags/list" % port2).status, 404)
        write_atomically(os.path.join(h.dir, "metadata2", "more.json"), v2_doc("more", "http://other.example.com/m/"))
        wait_until(lambda: h.curl("http://127.0.0.1:%d/v2/more/tags/list" % port2).status == 302, what="more")


class StartupErrors(unittest.TestCase):
    def assert_startup_fails(self, h):
        """httpd exits non-zero (it may listen for a moment first)."""
        try:
            h.start(timeout=10)
        except AssertionError:
            pass
        wait_until(lambda: h.proc.poll() is not None, what="httpd exit")
        self.assertNotEqual(h.proc.returncode, 0)
        h.stop()

    def test_a_snapshot_dir_that_is_a_file_stops_startup(self):
        h = Httpd(conf="CraneSnapshotDir {dir}/snapfile\n")
        try:
            with open(os.path.join(h.dir, "snapfile"), "w") as f:
                f.write("x")
            self.assert_startup_fails(h)
            self.assertRegex(h.log(), r"CRANE0017: mod_crane: CraneSnapshotDir .*/snapfile: not a directory")
        finally:
            h.cleanup()

    @unittest.skipUnless(os.geteuid() == 0, "ownership checks need root")
    def test_a_snapshot_dir_owned_by_another_user_stops_startup(self):
        h = Httpd(conf="CraneSnapshotDir {dir}/rootsnap\n")
        try:
            os.makedirs(os.path.join(h.dir, "rootsnap"))  # root's
            self.assert_startup_fails(h)
            self.assertRegex(h.log(), r"CRANE0017: mod_crane: CraneSnapshotDir .*/rootsnap: owned by uid 0, "
                                      r"not by User \(uid \d+\)")
        finally:
            h.cleanup()

    @unittest.skipUnless(os.geteuid() == 0, "ownership checks need root")
    def test_a_snapshot_dir_behind_a_closed_directory_stops_startup(self):
        h = Httpd(conf="CraneSnapshotDir {dir}/closed/snaps\n")
        try:
            os.makedirs(os.path.join(h.dir, "closed"))
            os.chmod(os.path.join(h.dir, "closed"), 0o700)  # root's, www-data cannot pass
            self.assert_startup_fails(h)
            self.assertRegex(h.log(), r"CRANE0017: mod_crane: CraneSnapshotDir .*/closed/snaps: User \(uid \d+\) "
                                      r"cannot reach it: .*/closed \(mode 0700, owner uid 0\)")
        finally:
            h.cleanup()

    def test_missing_parents_are_made_0755_and_the_dir_0700_for_user(self):
        h = self.enterContext(Httpd(data_src=METADATA, conf="CraneSnapshotDir {dir}/a/b/snaps\n"))
        for sub, mode in (("a", 0o755), ("a/b", 0o755), ("a/b/snaps", 0o700)):
            st = os.stat(os.path.join(h.dir, sub))
            self.assertEqual(st.st_mode & 0o777, mode, sub)
        if os.geteuid() == 0:
            self.assertEqual(os.stat(os.path.join(h.dir, "a/b/snaps")).st_uid, pwd.getpwnam("www-data").pw_uid)
        self.assertEqual(len(glob.glob(os.path.join(h.dir, "a/b/snaps", "*.snap"))), 1)
        self.assertEqual(h.curl("/v2/zoo/tags/list").status, 302)

    def test_snapshot_dir_only_in_the_main_server(self):
        h = Httpd(conf="<VirtualHost 127.0.0.1:1>\n    CraneSnapshotDir {dir}/x\n</VirtualHost>\n")
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            self.assertIn("CraneSnapshotDir cannot occur within <VirtualHost> section", out)
        finally:
            h.cleanup()


if __name__ == "__main__":
    unittest.main()
