"""Idle children follow the snapshot generation: after publishes with no
request in between, no child maps an old (unlinked) snapshot file and the
Pss of every process's snapshot mappings adds up to one snapshot; a request
keeps the snapshot it started with while a publish happens under it (a
search held by a slow backend), and its child lets go of the old file once
it ends. The mappings are read from /proc/PID/maps and /proc/PID/smaps of
the httpd processes."""

import json
import os
import re
import sys
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import REPO, Httpd, children_of, write_atomically
from harness import wait_until as harness_wait_until

sys.path.insert(0, os.path.join(REPO, "bench"))
import gen_metadata  # noqa: E402

CHILDREN = 4  # prefork; event runs StartServers 2 processes


def mpm_conf(mpm):
    if mpm == "prefork":
        # a busy child starts no new one (MinSpareServers 1), none is stopped
        return ("StartServers {n}\nMinSpareServers 1\nMaxSpareServers {n}\nServerLimit 10\n"
                "MaxRequestWorkers 10\nMaxConnectionsPerChild 0\n").format(n=CHILDREN)
    return "StartServers 2\nMinSpareThreads 5\nMaxSpareThreads 100\nMaxConnectionsPerChild 0\n"



MAPS_LINE = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s+(.*)$")


def snapshot_inodes(pid, snap_dir):
    """{inode: deleted} of the files in snap_dir that pid maps."""
    out = {}
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            m = MAPS_LINE.match(line.rstrip("\n"))
            if m and m.group(2).startswith(snap_dir + "/"):
                out[int(m.group(1))] = m.group(2).endswith(" (deleted)")
    return out


def snapshot_pss_kib(pid, snap_dir):
    total = 0
    current = False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = MAPS_LINE.match(line.rstrip("\n"))
            if m:
                current = m.group(2).startswith(snap_dir + "/")
            elif current and line.startswith("Pss:"):
                total += int(line.split()[1])
    return total



class Mismatch(dict):
    """A falsy answer of all_children_on that prints what it saw."""

    def __bool__(self):
        return False


def wait_until(fn, timeout, what):
    return harness_wait_until(fn, timeout, what, interval=0.02)


class Server:
    """An Httpd with CranePollInterval 1 and a way to look at its snapshot."""

    def __init__(self, test, conf="", prepare=None):
        h = Httpd(conf=mpm_conf(os.environ.get("CRANE_MPM", "event")) + conf)
        if prepare:
            prepare(h.data)
        self.h = test.enterContext(h)  # starts it
        self.snap_dir = os.path.join(self.h.dir, "run", "crane")
        self.want = CHILDREN if self.h.mpm == "prefork" else 2

    def children(self):
        return children_of(self.h.proc.pid)

    def snapshot_path(self):
        names = [n for n in os.listdir(self.snap_dir) if n.endswith(".snap")]
        assert len(names) == 1, names
        return os.path.join(self.snap_dir, names[0])

    def inode(self):
        return os.stat(self.snapshot_path()).st_ino

    def base_files(self):
        """{inode: size} of the base files in place: a delta's base (a full
        image in place is its own base, under a second name)."""
        out = {}
        for n in os.listdir(self.snap_dir):
            if ".snap.base." in n:
                try:
                    st = os.stat(os.path.join(self.snap_dir, n))
                except OSError:  # removed since
                    continue
                out[st.st_ino] = st.st_size
        return out

    def mapped_kib(self):
        """The size of what a child maps: the file in place and its base."""
        files = dict(self.base_files())
        st = os.stat(self.snapshot_path())
        files[st.st_ino] = st.st_size
        return sum(files.values()) / 1024.0

    def maps(self):
        """{pid: {inode: deleted}} of every process (parent included)."""
        out = {}
        # a base file is a full image mapped by the name it had then, in
        # place: maps says "(deleted)" once that name holds a delta, yet the
        # file is in place under its base name
        bases = self.base_files()
        for pid in [self.h.proc.pid] + self.children():
            try:
                out[pid] = {i: d and i not in bases for i, d in snapshot_inodes(pid, self.snap_dir).items()}
            except OSError:
                pass
        return out

    def all_children_on(self, ino):
        """True once every child maps ino and its base and nothing else (the
        parent maps none); else a falsy Mismatch that shows what was seen."""
        maps = self.maps()
        kids = [p for p in maps if p != self.h.proc.pid]
        want = dict.fromkeys(self.base_files(), False)
        want[ino] = False
        if len(kids) == self.want and maps[self.h.proc.pid] == {} and \
                all(maps[p] == want for p in kids):
            return True
        return Mismatch(want=ino, parent=self.h.proc.pid, maps=maps)

    def wait_publish(self, old_ino, timeout=10):
        return wait_until(lambda: (lambda i: i if i != old_ino else None)(self.inode()), timeout,
                          "a new snapshot file in place")

    def wait_settled(self, quiet=1.0, timeout=15):
        """The snapshot file's inode once it has not changed for quiet seconds."""
        seen = {"ino": self.inode(), "since": time.time()}

        def settled():
            ino = self.inode()
            if ino != seen["ino"]:
                seen.update(ino=ino, since=time.time())
            return ino if time.time() - seen["since"] >= quiet else None
        return wait_until(settled, timeout, "the snapshot file unchanged for %ss" % quiet)

    def ready(self):
        wait_until(lambda: len(self.children()) == self.want, 30, "%d children" % self.want)
        ino = self.inode()
        wait_until(lambda: self.all_children_on(ino), 10, "every child mapping the snapshot")
        return ino


def v2_doc(repo_id):
    return json.dumps({"version": 2, "repo-registry-id": repo_id, "url": "http://cdn.example.com/%s/" % repo_id})


class IdleChildren(unittest.TestCase):
    def test_publishes_with_no_requests_leave_no_old_snapshot_mapped(self):
        s = Server(self, prepare=lambda data: gen_metadata.generate(data, 400))
        names = sorted(n for n in os.listdir(s.h.data) if n.endswith(".json"))
        ino = s.ready()
        # three publishes, no request in between: every child moves on alone
        for rnd in range(3):
            for name in names[:10]:
                path = os.path.join(s.h.data, name)
                with open(path) as f:
                    doc = json.load(f)
                doc["description"] = "round %d" % rnd
                write_atomically(path, json.dumps(doc))
            s.wait_publish(ino)
            # ten renames may be built as more than one generation: wait for
            # the last one, then every child must be on it alone
            new = s.wait_settled()
            wait_until(lambda: s.all_children_on(new), 3, "every child on the new snapshot, none on the old")
            ino = new
        size_kib = s.mapped_kib()
        pss = sum(snapshot_pss_kib(p, s.snap_dir) for p in [s.h.proc.pid] + s.children())
        self.assertLessEqual(pss, 1.2 * size_kib + 4 * (len(s.children()) + 1))
        self.assertGreaterEqual(pss, 0.8 * size_kib)
        self.assertEqual({p: m for p, m in s.maps().items() if any(m.values())}, {})
        r = s.h.curl("/v2/")
        self.assertEqual(r.status, 200, r)

    def test_a_request_keeps_the_snapshot_it_started_with(self):
        backend = HeldBackend()
        self.addCleanup(backend.stop)
        s = Server(self, conf="CraneSolrURL %s\n" % backend.url("/solr?q={0}"),
                   prepare=lambda data: write_atomically(os.path.join(data, "keep.json"), v2_doc("keep")))
        ino = s.ready()
        for attempt in range(8):
            gone = "gone%d" % attempt
            path = os.path.join(s.h.data, gone + ".json")
            write_atomically(path, v2_doc(gone))
            ino = s.wait_publish(ino)
            wait_until(lambda: s.all_children_on(ino), 3, "every child on the snapshot with %s" % gone)
            backend.hold(gone, ino, s)
            reply = {}
            t = threading.Thread(target=lambda: reply.update(r=s.h.curl("/v1/search?q=" + urllib.parse.quote(gone))))
            t.start()
            held = backend.wait_held()
            # the request holds its snapshot (the backend answers after at
            # most 0.85 s, under the 1 s search timeout): the removal is
            # noticed at once (inotify) and built while it waits
            os.remove(path)
            overlap = None
            if held == ino:  # the request took the old snapshot
                try:
                    new = wait_until(lambda: (lambda i: i if i != ino else None)(s.inode()), backend.left(),
                                     "the publish during the request")
                    # every child maps the new file; only the one serving the
                    # held request still maps the old (now unlinked) one
                    overlap = wait_until(lambda: self.holder(s, ino, new), backend.left(),
                                         "every child on the new snapshot but the holder")
                except AssertionError:
                    overlap = None
            backend.release()
            t.join()
            r = reply["r"]
            self.assertEqual(r.status, 200, r)
            if overlap is None:
                print("attempt %d: no publish seen while the request was held" % attempt, file=sys.stderr)
                ino = s.wait_publish(ino) if s.inode() == ino else s.inode()
                wait_until(lambda: s.all_children_on(ino), 3, "every child on the snapshot without %s" % gone)
                continue
            # answered from the snapshot it started with: gone still there
            self.assertEqual(r.body, json.dumps({"num_results": 2, "query": gone, "results": [
                search_result(gone), search_result("keep")]}, sort_keys=True).encode("ascii"))
            # and the holder let go of the old file when the request ended
            wait_until(lambda: s.all_children_on(new), 2, "the holder dropping the old snapshot")
            # a new request answers from the new snapshot: gone is filtered out
            backend.hold(gone, new, s, wait=False)
            r = s.h.curl("/v1/search?q=" + urllib.parse.quote(gone))
            self.assertEqual(r.body, json.dumps({"num_results": 1, "query": gone, "results": [
                search_result("keep")]}, sort_keys=True).encode("ascii"))
            return
        self.fail("no attempt saw a publish while the request was held")

    @staticmethod
    def holder(s, old, new):
        maps = s.maps()
        kids = [p for p in maps if p != s.h.proc.pid]
        if len(kids) != s.want or maps[s.h.proc.pid]:
            return None
        base = dict.fromkeys(s.base_files(), False)
        others_see = dict(base)
        others_see[new] = False
        holder_sees = dict(others_see)
        holder_sees[old] = True  # the old file, unlinked
        holders = [p for p in kids if maps[p] == holder_sees]
        others = [p for p in kids if maps[p] == others_see]
        if len(holders) == 1 and len(others) == len(kids) - 1:
            return holders[0]
        return None


def search_result(name):
    return {"description": "about " + name, "is_official": False, "is_trusted": False, "name": name,
            "should_filter": True, "star_count": 0}


class HeldBackend:
    """A Solr look-alike on 127.0.0.1 that answers a held query only when
    released (or 0.85 s after it arrived), and records which snapshot file
    was in place when the query reached it."""

    HOLD = 0.85

    def __init__(self):
        backend = self
        self.arrived = threading.Event()
        self.go = threading.Event()
        self.q = None
        self.at = 0.0
        self.seen_inode = None
        self.server_state = None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("q", [""])[0]
                if q == backend.q and backend.server_state is not None:
                    backend.at = time.time()
                    backend.seen_inode = backend.server_state.inode()
                    backend.arrived.set()
                    backend.go.wait(backend.HOLD)
                docs = [{"allTitle": q, "ir_description": "about " + q, "documentKind": "ImageRepository"},
                        {"allTitle": "keep", "ir_description": "about keep", "documentKind": "ImageRepository"}]
                body = json.dumps({"response": {"numFound": 2, "start": 0, "docs": docs}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def hold(self, q, ino, server_state, wait=True):
        self.q = q if wait else None
        self.server_state = server_state if wait else None
        self.arrived.clear()
        self.go.clear()
        self.seen_inode = None

    def wait_held(self):
        if not self.arrived.wait(5):
            return None
        return self.seen_inode

    def left(self):
        return max(0.0, self.at + self.HOLD - 0.05 - time.time())

    def release(self):
        self.go.set()

    def stop(self):
        self.go.set()
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    unittest.main()
