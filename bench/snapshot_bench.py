#!/usr/bin/env python3
"""Shared-snapshot benchmark: a real httpd (apache2 on 127.0.0.1, the
harness's generated config, the module of build/release or CRANE_BUILD, or
CRANE_MODULE) serving N generated repositories (bench/gen_metadata.py: 20
tags, version 4 with 5% version 1, in 16 subdirectories; cached under
build/bench-snapshot/ and reused). Measures:

  The snapshot dir of each server is made under /dev/shm (a tmpfs, as
  Debian's /run that holds the default DefaultRuntimeDir/crane).

  a  snapshot size and bytes per repository (the CraneSnapshot status lines,
     else the file in CraneSnapshotDir; "n/a" on a module without snapshots)
  b  memory: sum of PSS (/proc/PID/smaps_rollup) of all httpd processes minus
     the same server with an empty data dir, with every child warmed, before
     and after 3 reloads (each: 10 metadata files get a new tag; done when
     the status generation moved, where there is one, and every child has
     answered 302 for the new tags, seen by pid in a %P access log); and the
     ratio to the snapshot size. One row per MPM: prefork with exactly 16
     children, event with the harness's default 2
  c  visibility: 100 metadata files get a new tag each; time from the write
     (and from the start of the scan that saw them, status LastScan) until
     every new tag answers 302 in one pass over 32 parallel keep-alive
     connections (--visible-passes passes in a row)
  d  redirect throughput: v2 manifest redirect (Accept: schema 2) vs Apache's
     own `Redirect` (mod_alias) in the same httpd, wrk, --rounds rounds
     alternating, median of per-round ratios (bench/redirect.py's wrk and
     config)
  e  p99 latency of the manifest redirect (wrk --latency): idle, while a full
     reload of all N repos runs (every file's mtime moved by os.utime), and
     across `apache2 -k graceful`; --rounds rounds, median of the per-round
     ratios to idle (the mean of the round's idle runs before and after)

    bench/snapshot_bench.py [--repos 100000] [--mpm event,prefork]
        [--only a,b,c,d,e] [--rounds 3] [--seconds 5] [--poll 5]
        [--children 16] [--json-only]

--mpm: the first MPM runs a, c, d, e; b gets a row for each one listed.
Metadata files changed by b, c and e are restored when the run ends. Runs
unattended and stops its httpds on exit (also on SIGINT/SIGTERM). The last
line is "RESULT {json}". Keep N at 10000 or below on a busy 2-core machine.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.environ.get("CRANE_BUILD") or os.path.join(REPO, "build", "release")
os.environ.setdefault("CRANE_MODULE", os.path.join(BUILD, "mod_crane.so"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

import gen_metadata  # noqa: E402
import redirect  # noqa: E402  (wrk(), the mod_alias config)
from harness import MODDIR, MODULE, Httpd  # noqa: E402
from index_rss import children_of, rollup  # noqa: E402

S2 = "application/vnd.docker.distribution.manifest.v2+json"
CACHE = os.path.join(REPO, "build", "bench-snapshot")
PIDLOG = "pid.log"


def module_has_snapshots():
    with open(MODULE, "rb") as f:
        return b"CraneSnapshotDir" in f.read()


SNAPSHOTS = module_has_snapshots()
# where each server's CraneSnapshotDir is made: a tmpfs like Debian's /run
# (the default DefaultRuntimeDir/crane lives there), else the server's own dir
SNAPSHOT_BASE = "/dev/shm" if os.path.isdir("/dev/shm") else None


# ---- data ----

class Dataset:
    """The cached generated data dir, and the files a run changes (restored
    by restore())."""

    def __init__(self, repos):
        self.dir = os.path.join(CACHE, "repos-%d" % repos)
        self.data = os.path.join(self.dir, "metadata")
        self.manifest = os.path.join(self.dir, "manifest.jsonl")
        self.empty = os.path.join(self.dir, "empty")
        for d in (CACHE, self.dir, self.empty):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        if not os.path.exists(self.manifest):
            t = time.time()
            gen_metadata.generate(self.data, repos, v1_fraction=0.05, tags=20, subdirs=16, seed=1,
                                  manifest=self.manifest + ".tmp")
            os.rename(self.manifest + ".tmp", self.manifest)
            log("generated %d repos in %s (%.1f s)" % (repos, self.data, time.time() - t))
        with open(self.manifest) as f:
            self.entries = [json.loads(line) for line in f]
        # unprotected v4 repos: the ones the load asks for and the ones changed
        self.v4 = [e for e in self.entries if e["version"] == 4 and not e["protected"]]
        self.saved = {}
        self.changes = 0

    def path(self, entry):
        return os.path.join(self.data, entry["file"])

    def add_tag(self, entries, tag):
        """Gives each entry's file a new tag (temp file + rename, as a
        publisher writes); returns the time the last one was in place."""
        for e in entries:
            path = self.path(e)
            if path not in self.saved:
                with open(path, "rb") as f:
                    self.saved[path] = f.read()
            with open(path) as f:
                doc = json.load(f)
            doc["schema2_data"] += [tag, gen_metadata.digest(e["id"], tag, "s2")]
            gen_metadata.write_json(path, doc)
        self.changes += 1
        return time.time()

    def touch_all(self):
        """Moves every metadata file's mtime: the next scan re-reads all."""
        now = time.time()
        n = 0
        for root, _, files in os.walk(self.data):
            for name in files:
                if name.endswith(".json"):
                    os.utime(os.path.join(root, name), (now, now + 0.001 * (n % 1000)))
                    n += 1
        return n

    def restore(self):
        for path, data in self.saved.items():
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
        self.saved = {}


# ---- the server ----

STATUS_CONF = """
<Location "/server-status">
    SetHandler server-status
</Location>
LogFormat "%P %>s %U %{Location}o" crane_pid
CustomLog {dir}/pid.log crane_pid
"""


def prefork_conf(children):
    return ("ServerLimit {n}\nStartServers {n}\nMinSpareServers 1\nMaxSpareServers {n}\n"
            "MaxRequestWorkers {n}\nMaxConnectionsPerChild 0\n").format(n=children)


class Server:
    """An Httpd (the harness's) with mod_status, a pid access log, a
    snapshot dir of its own when the module has one, and mod_watchdog when
    it is a loadable module."""

    def __init__(self, data, mpm, poll, extra_conf="", loglevel="notice"):
        ini = "[general]\ndata_dir: %s\ndata_dir_polling_interval: %d\n" % (data, poll)
        conf = STATUS_CONF + extra_conf
        self.snap = None
        if SNAPSHOTS:
            self.snap = tempfile.mkdtemp(prefix="crane-bench-snap-", dir=SNAPSHOT_BASE) if SNAPSHOT_BASE else None
            conf += "CraneSnapshotDir %s\n" % (self.snap or "{dir}/snapshots")
        self.h = Httpd(crane_ini=ini, mpm=mpm, conf=conf, extra_modules=("alias", "status"), loglevel=loglevel)
        self.mpm = mpm
        if SNAPSHOTS:
            snap = self.snap or os.path.join(self.h.dir, "snapshots")
            os.makedirs(snap, exist_ok=True)
            if os.geteuid() == 0:
                import pwd
                pw = pwd.getpwnam("www-data")
                os.chown(snap, pw.pw_uid, pw.pw_gid)
        self._add_watchdog()
        redirect.prepare_docroot(self.h, False)

    def _add_watchdog(self):
        so = os.path.join(MODDIR, "mod_watchdog.so")
        with open(self.h.conf_path) as f:
            text = f.read()
        if "watchdog_module" in text or Httpd._compiled_in("mod_watchdog.c") or not os.path.exists(so):
            return
        text = text.replace("LoadModule crane_module", "LoadModule watchdog_module %s\nLoadModule crane_module" % so, 1)
        with open(self.h.conf_path, "w") as f:
            f.write(text)

    def start(self):
        t = time.time()
        self.h.start(timeout=600)
        # listening comes before post_config has loaded the data: time the first answer
        status = get(self.h.port, "/v2/", timeout=600)[0]
        assert status == 200, status
        self.ready_s = time.time() - t
        return self

    def stop(self):
        bad = self.h.stop()
        self.h.cleanup()
        if self.snap:
            shutil.rmtree(self.snap, ignore_errors=True)
        return bad

    @property
    def port(self):
        return self.h.port

    def pids(self):
        return children_of(self.h.proc.pid)

    def pss_kib(self, detail=None):
        """Sum of PSS (KiB) over the parent and its children, and the
        number of children; `detail` (a dict) gets the parent's PSS and the
        largest child's."""
        procs = [self.h.proc.pid] + self.pids()
        each = []
        for pid in procs:
            try:
                each.append(rollup(pid))
            except OSError:
                each.append({})
        total = sum(r.get("Pss", 0) for r in each)
        if detail is not None:
            kids = sorted(each[1:], key=lambda r: r.get("Pss", 0))
            detail["parent_pss_kib"] = each[0].get("Pss", 0)
            detail["max_child_pss_kib"] = kids[-1].get("Pss") if kids else None
            # the median child: not the one running the watchdog builder
            mid = kids[len(kids) // 2] if kids else {}
            detail["median_child_pss_kib"] = mid.get("Pss")
            detail["median_child_anon_kib"] = mid.get("Anonymous")
        return total, len(procs) - 1

    def status(self):
        """{index: {field: value}} from the CraneSnapshot lines, {} without."""
        try:
            code, _, body = get(self.port, "/server-status?auto")
        except OSError:
            return {}
        out = {}
        if code != 200:
            return out
        for line in body.decode("latin-1").splitlines():
            m = re.match(r"CraneSnapshot(\d+)(\w+):\s*(.*)$", line)
            if m:
                out.setdefault(int(m.group(1)), {})[m.group(2)] = m.group(3).strip()
        return out

    def generation(self):
        s = self.status().get(0)
        return int(s["Generation"]) if s and "Generation" in s else None

    def pid_log_offset(self):
        try:
            return os.path.getsize(os.path.join(self.h.dir, PIDLOG))
        except OSError:
            return 0

    def pids_served(self, offset, path_re):
        """pids that redirected a path matching path_re to a schema 2
        manifest since offset (Crane sends an unknown tag to schema 1)."""
        pids = set()
        with open(os.path.join(self.h.dir, PIDLOG)) as f:
            f.seek(offset)
            for line in f:
                parts = line.split()
                if len(parts) == 4 and parts[1] == "302" and path_re.search(parts[2]) \
                        and "/manifests/2/" in parts[3]:
                    pids.add(int(parts[0]))
        return pids


def get(port, path, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Location"), r.read()
    finally:
        c.close()


def burst(port, paths, connections=32, per_conn=4, headers=None):
    """Sends every path over `connections` parallel keep-alive connections
    (all opened before any request, so a prefork server uses as many
    children; Accept: schema 2 unless told); returns {path: [answer, ...]},
    an answer being "2" for a redirect to a schema 2 manifest, else the
    status."""
    headers = headers or {"Accept": S2}
    socks = []
    for _ in range(connections):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.connect()
        socks.append(c)
    out = {}
    lock = threading.Lock()

    def run(k):
        c = socks[k]
        mine = paths[k::connections] or [paths[k % len(paths)]]
        for rep in range(per_conn if len(paths) < connections else 1):
            for p in mine:
                try:
                    c.request("GET", p, headers=headers)
                    r = c.getresponse()
                    r.read()
                    st = "2" if r.status == 302 and "/manifests/2/" in (r.getheader("Location") or "") \
                        else r.status
                except (OSError, http.client.HTTPException):
                    c.close()
                    st = -1
                with lock:
                    out.setdefault(p, []).append(st)
        c.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def manifest_path(entry, tag="latest"):
    return "/v2/%s/manifests/%s" % (entry["id"], tag)


def wait_every_child(server, paths, offset, timeout, connections):
    """Bursts `paths` until every current child pid has redirected one of
    them to its schema 2 manifest since offset; returns the seconds taken
    (None on timeout)."""
    t = time.time()
    rx = re.compile("|".join(re.escape(p) for p in paths))
    while time.time() - t < timeout:
        burst(server.port, paths, connections=connections)
        if set(server.pids()) <= server.pids_served(offset, rx):
            return time.time() - t
        time.sleep(0.05)
    return None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(name, fn, *args):
    t = time.time()
    out = fn(*args)
    log("%s done in %.1f s" % (name, time.time() - t))
    return out


def fmt(v, spec="%.2f"):
    return "n/a" if v is None else spec % v


# ---- the measurements ----

def measure_a(server, ds):
    st = server.status().get(0)
    size = None
    source = None
    if st and st.get("Bytes", "").isdigit():
        size = int(st["Bytes"])
        source = "status"
    elif SNAPSHOTS:
        snap = os.path.join(server.h.dir, "snapshots")
        files = [os.path.join(snap, f) for f in os.listdir(snap)] if os.path.isdir(snap) else []
        files = [f for f in files if os.path.isfile(f)]
        if files:
            size = max(os.path.getsize(f) for f in files)
            source = "file"
    repos = len(ds.entries)
    if st and st.get("V1Repos", "").isdigit() and st.get("V2Repos", "").isdigit():
        repos = int(st["V1Repos"]) + int(st["V2Repos"])
    return {"snapshot_bytes": size, "bytes_per_repo": (size / repos) if size else None, "repos": repos,
            "source": source, "status": st or None}


def reload_round(server, ds, k, timeout, connections):
    """10 files get tag reload-K; waits for the status generation (when
    there is one) and for every child to answer 302 for the new tags."""
    gen0 = server.generation()
    tag = "reload-%d-%d" % (k, int(time.time()))
    entries = ds.v4[10 * k:10 * k + 10]
    offset = server.pid_log_offset()
    t0 = ds.add_tag(entries, tag)
    gen_s = None
    if gen0 is not None:
        while time.time() - t0 < timeout:
            g = server.generation()
            if g is not None and g > gen0:
                gen_s = time.time() - t0
                break
            time.sleep(0.05)
    took = wait_every_child(server, [manifest_path(e, tag) for e in entries], offset, timeout, connections)
    return {"generation_s": gen_s, "every_child_s": took}


def measure_b(ds, mpm, opts, snapshot_bytes):
    extra = prefork_conf(opts.children) if mpm == "prefork" else ""
    conns = opts.children if mpm == "prefork" else 32
    warm_paths = [manifest_path(e) for e in ds.v4[100:164]]
    row = {"mpm": mpm}
    for label, data in (("empty", ds.empty), ("data", ds.data)):
        s = Server(data, mpm, opts.poll, extra).start()
        try:
            want = opts.children if mpm == "prefork" else None
            deadline = time.time() + 60
            while want and len(s.pids()) < want and time.time() < deadline:
                time.sleep(0.2)
            # every child serves requests (with data: redirects, so each
            # touches the index) before the memory is read
            if label == "data":
                wait_every_child(s, warm_paths, s.pid_log_offset(), 60, conns)
            for _ in range(3):
                burst(s.port, warm_paths if label == "data" else ["/v2/"], connections=conns)
            time.sleep(1)
            row["%s_detail" % label] = {}
            row["%s_pss_kib" % label], row["children"] = s.pss_kib(row["%s_detail" % label])
            row["ready_s_%s" % label] = round(s.ready_s, 2)
            if label == "data":
                row["reloads"] = []
                for k in range(3):
                    r = reload_round(s, ds, k, opts.reload_timeout, conns)
                    row["reloads"].append(r)
                    if r["every_child_s"] is None:
                        log("b/%s: reload %d: not every child answered the new tags in %ds" % (
                            mpm, k, opts.reload_timeout))
                for _ in range(3):
                    burst(s.port, warm_paths, connections=conns)
                time.sleep(1)
                row["data_after_detail"] = {}
                row["data_after_pss_kib"], row["children_after"] = s.pss_kib(row["data_after_detail"])
        finally:
            bad = s.stop()
            if bad:
                log("b/%s/%s: unexpected error-log lines:\n  %s" % (mpm, label, "\n  ".join(bad[:10])))
    row["index_kib_before"] = row["data_pss_kib"] - row["empty_pss_kib"]
    row["index_kib_after"] = row["data_after_pss_kib"] - row["empty_pss_kib"]
    if snapshot_bytes:
        row["ratio_before"] = row["index_kib_before"] * 1024 / snapshot_bytes
        row["ratio_after"] = row["index_kib_after"] * 1024 / snapshot_bytes
    return row


def measure_c(server, ds, opts):
    """100 files get a new tag; time until all answer 302 in one pass."""
    entries = ds.v4[2000:2100] if len(ds.v4) >= 2100 else ds.v4[-100:]
    tag = "visible-%d" % int(time.time())
    paths = [manifest_path(e, tag) for e in entries]
    gen0 = server.generation()
    scans = []  # (generation, LastScan, LastBuild, seen at)
    stop = threading.Event()

    def watch():
        last = gen0
        while not stop.is_set():
            st = server.status().get(0)
            if st and st.get("Generation", "").isdigit() and int(st["Generation"]) != last:
                last = int(st["Generation"])
                scans.append((last, float(st.get("LastScan", "nan")), float(st.get("LastBuild", "nan")),
                              float(st.get("LastScanDuration", "nan")), time.time()))
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    if gen0 is not None:
        watcher.start()
    try:
        t_write = ds.add_tag(entries, tag)
        streak = 0
        first_clean = None
        while time.time() - t_write < opts.reload_timeout:
            t_pass = time.time()
            got = burst(server.port, paths, connections=32, per_conn=1, headers={"Accept": S2})
            clean = all(set(st) == {"2"} for st in got.values()) and len(got) == len(paths)
            if clean:
                first_clean = first_clean or t_pass
                streak += 1
                if streak >= opts.visible_passes:
                    break
            else:
                streak, first_clean = 0, None
        else:
            first_clean = None
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
    out = {"files": len(entries), "poll_s": opts.poll, "from_write_s": (first_clean - t_write) if first_clean else None,
           "from_scan_s": None, "scan_to_build_s": None, "scan_duration_s": None}
    # the scan that made the last of them visible: the last build before the
    # first clean pass (a scan running while the files were written may have
    # seen only some of them)
    scans = [x for x in scans if x[1] <= (first_clean or 0)]
    if scans and first_clean:
        gen, last_scan, last_build, duration, _ = scans[-1]
        out["builds_seen"] = len(scans)
        out["from_scan_s"] = first_clean - last_scan
        out["scan_to_build_s"] = last_build - last_scan
        out["scan_duration_s"] = duration
    return out


def measure_d(server, ds, opts):
    target = manifest_path(ds.v4[0])
    st = get(server.port, target, {"Accept": S2})[0]
    assert st == 302, (target, st)
    assert get(server.port, "/alias/blob")[0] == 302
    runs = {"v2_manifest": [], "alias": []}
    for rnd in range(opts.rounds):
        for name, path, headers in (("v2_manifest", target, ["Accept: " + S2]), ("alias", "/alias/blob", [])):
            rps, p99, non23, sock = redirect.wrk(server.h.url(path), headers, opts.seconds, opts.connections, 2)
            runs[name].append(rps)
            log("d round %d %-12s %9.0f req/s  p99 %6.2f ms  non-2xx/3xx %s" % (rnd + 1, name, rps, p99, non23))
    ratios = [a / b for a, b in zip(runs["v2_manifest"], runs["alias"])]
    return {"manifest_rps": statistics.median(runs["v2_manifest"]), "alias_rps": statistics.median(runs["alias"]),
            "ratio_median": statistics.median(ratios), "ratios": ratios}


def wrk_during(server, path, seconds, connections, action, delay=1.0):
    """wrk --latency on path for `seconds`; action() runs `delay` s in."""
    args = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency", "-H", "Accept: " + S2,
            server.h.url(path)]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    info = None
    try:
        time.sleep(delay)
        info = action()
    finally:
        out = p.communicate()[0]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non23 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"p99_ms": p99, "rps": float(rps.group(1)) if rps else None,
            "non_2xx_3xx": int(non23.group(1)) if non23 else 0, "socket_errors": sock.group(1) if sock else None,
            "action": info}


def measure_e(server, ds, opts):
    """--rounds rounds of: idle, full reload, graceful, idle (wrk runs of
    --reload-seconds); per round the ratio of each p99 to the mean of the
    round's two idle p99s; medians over the rounds."""
    path = manifest_path(ds.v4[0])
    seconds = max(opts.seconds, opts.reload_seconds)

    def full_reload():
        gen0 = server.generation()
        t = time.time()
        n = ds.touch_all()
        info = {"files_touched": n, "touch_s": time.time() - t}
        if gen0 is not None:
            while time.time() - t < seconds:
                if (server.generation() or 0) > gen0:
                    info["generation_after_s"] = time.time() - t
                    st = server.status().get(0) or {}
                    info["scan_duration_s"] = float(st.get("LastScanDuration", "nan"))
                    break
                time.sleep(0.05)
        return info

    def graceful():
        t = time.time()
        server.h.graceful(timeout=max(60, seconds))
        return {"graceful_s": time.time() - t}

    rounds = []
    for rnd in range(opts.rounds):
        r = {"idle_before": wrk_during(server, path, seconds, opts.connections, lambda: None)}
        r["full_reload"] = wrk_during(server, path, seconds, opts.connections, full_reload)
        time.sleep(opts.poll + 1)  # every child done with the reload
        r["graceful"] = ({"p99_ms": None, "non_2xx_3xx": 0, "skipped": True} if opts.skip_graceful
                         else wrk_during(server, path, seconds, opts.connections, graceful))
        r["idle_after"] = wrk_during(server, path, seconds, opts.connections, lambda: None)
        idle = [r["idle_before"]["p99_ms"], r["idle_after"]["p99_ms"]]
        r["idle_p99_ms"] = statistics.mean(idle) if all(idle) else None
        for k in ("full_reload", "graceful"):
            p = r[k]["p99_ms"]
            r[k]["ratio_to_idle"] = (p / r["idle_p99_ms"]) if (p and r["idle_p99_ms"]) else None
        log("e round %d: p99 idle %s ms, full reload %s ms (x%s), graceful %s ms (x%s)" % (
            rnd + 1, fmt(r["idle_p99_ms"]), fmt(r["full_reload"]["p99_ms"]), fmt(r["full_reload"]["ratio_to_idle"]),
            fmt(r["graceful"]["p99_ms"]), fmt(r["graceful"]["ratio_to_idle"])))
        rounds.append(r)

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    out = {"seconds": seconds, "rounds": rounds, "idle": {"p99_ms": med(r["idle_p99_ms"] for r in rounds)}}
    for k in ("full_reload", "graceful"):
        out[k] = {"p99_ms": med(r[k]["p99_ms"] for r in rounds),
                  "ratio_to_idle": med(r[k]["ratio_to_idle"] for r in rounds),
                  "ratios": [r[k]["ratio_to_idle"] for r in rounds],
                  "non_2xx_3xx": sum(r[k]["non_2xx_3xx"] for r in rounds),
                  "socket_errors": "; ".join(r[k]["socket_errors"] for r in rounds if r[k]["socket_errors"]) or None}
    return out


# ---- main ----

def report(res, opts):
    lines = ["", "mod_crane snapshot bench: %d repos, module %s (%s), poll %ds" % (
        opts.repos, MODULE, "shared snapshot" if SNAPSHOTS else "per-child index, no snapshot", opts.poll)]
    a = res.get("a")
    if a:
        lines.append("a  snapshot: %s bytes, %s bytes/repo (%s repos; from %s)" % (
            fmt(a["snapshot_bytes"], "%d"), fmt(a["bytes_per_repo"], "%.0f"), a["repos"], a["source"] or "n/a"))
    for row in res.get("b", []):
        lines.append("b  %-8s %2d children  PSS empty %8d KiB  data %8d KiB  -> index %8d KiB (x%s snapshot)"
                     "  after 3 reloads %8d KiB (x%s)  reload waits (generation/every child) %s" % (
                         row["mpm"], row["children"], row["empty_pss_kib"], row["data_pss_kib"],
                         row["index_kib_before"], fmt(row.get("ratio_before")), row["index_kib_after"],
                         fmt(row.get("ratio_after")),
                         " ".join("%s/%s" % (fmt(r["generation_s"], "%.1f"), fmt(r["every_child_s"], "%.1fs"))
                                  for r in row["reloads"])))
        lines.append("   %-8s parent PSS %d -> %d KiB, largest child %s -> %s KiB, median child %s -> %s KiB "
                     "(anonymous %s -> %s); empty server: %d, %s, %s (%s)" % (
                         "", row["data_detail"]["parent_pss_kib"], row["data_after_detail"]["parent_pss_kib"],
                         row["data_detail"]["max_child_pss_kib"], row["data_after_detail"]["max_child_pss_kib"],
                         row["data_detail"]["median_child_pss_kib"], row["data_after_detail"]["median_child_pss_kib"],
                         row["data_detail"]["median_child_anon_kib"],
                         row["data_after_detail"]["median_child_anon_kib"],
                         row["empty_detail"]["parent_pss_kib"], row["empty_detail"]["max_child_pss_kib"],
                         row["empty_detail"]["median_child_pss_kib"], row["empty_detail"]["median_child_anon_kib"]))
    c = res.get("c")
    if c:
        lines.append("c  visibility of %d changed files (poll %ds): %s s after the write, %s s after the scan "
                     "started (scan->build %s s, scan duration %s s)" % (
                         c["files"], c["poll_s"], fmt(c["from_write_s"]), fmt(c["from_scan_s"]),
                         fmt(c["scan_to_build_s"]), fmt(c["scan_duration_s"], "%.3f")))
    d = res.get("d")
    if d:
        lines.append("d  manifest redirect %.0f req/s vs Redirect %.0f req/s: median ratio %.3f (rounds %s)" % (
            d["manifest_rps"], d["alias_rps"], d["ratio_median"], " ".join("%.2f" % r for r in d["ratios"])))
    e = res.get("e")
    if e:
        lines.append("e  p99 manifest redirect (%ds wrk, medians of %d rounds): idle %s ms; full reload %s ms "
                     "(x%s; rounds %s; %s non-2xx/3xx); graceful %s ms (x%s; rounds %s; socket errors: %s)" % (
                         e["seconds"], len(e["rounds"]), fmt(e["idle"]["p99_ms"]), fmt(e["full_reload"]["p99_ms"]),
                         fmt(e["full_reload"]["ratio_to_idle"]),
                         " ".join(fmt(x) for x in e["full_reload"]["ratios"]), e["full_reload"]["non_2xx_3xx"],
                         fmt(e["graceful"]["p99_ms"]), fmt(e["graceful"]["ratio_to_idle"]),
                         " ".join(fmt(x) for x in e["graceful"]["ratios"]), e["graceful"]["socket_errors"] or "none"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", type=int, default=100000)
    ap.add_argument("--mpm", default="event,prefork", help="comma list; the first runs a, c, d, e")
    ap.add_argument("--only", default="a,b,c,d,e")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="per wrk run")
    ap.add_argument("--reload-seconds", type=int, default=10, help="wrk run around a full reload / graceful")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--children", type=int, default=16, help="prefork children in b")
    ap.add_argument("--poll", type=int, default=5, help="data_dir_polling_interval")
    ap.add_argument("--reload-timeout", type=int, default=120)
    ap.add_argument("--skip-graceful", action="store_true", help="e without the graceful restart (a very large tree)")
    ap.add_argument("--visible-passes", type=int, default=3)
    ap.add_argument("--json-only", action="store_true")
    opts = ap.parse_args()
    only = set(opts.only.split(","))
    mpms = [m for m in opts.mpm.split(",") if m]
    if not set(only) <= set("abcde") or not mpms or not set(mpms) <= {"event", "prefork", "worker"}:
        ap.error("--only takes a,b,c,d,e; --mpm event,prefork,worker")
    if not os.path.exists(MODULE):
        ap.error("no module at %s (build it, or set CRANE_BUILD / CRANE_MODULE)" % MODULE)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    ds = Dataset(opts.repos)
    res = {"repos": opts.repos, "module": MODULE, "snapshots": SNAPSHOTS, "poll_s": opts.poll}
    main_server = None
    rc = 0
    try:
        if only & set("acde"):
            main_server = Server(ds.data, mpms[0], opts.poll, redirect.bench_conf(False)).start()
            res["ready_s"] = round(main_server.ready_s, 2)
            log("%s server with %d repos answering after %.1f s" % (mpms[0], opts.repos, main_server.ready_s))
        snapshot_bytes = None
        if main_server and "a" in only:
            res["a"] = timed("a", measure_a, main_server, ds)
            snapshot_bytes = res["a"]["snapshot_bytes"]
        if main_server and "c" in only:
            res["c"] = timed("c", measure_c, main_server, ds, opts)
        if main_server and "d" in only:
            res["d"] = timed("d", measure_d, main_server, ds, opts)
        if main_server and "e" in only:
            res["e"] = timed("e", measure_e, main_server, ds, opts)
        if main_server:
            bad = main_server.stop()
            main_server = None
            if bad:
                log("unexpected error-log lines:\n  " + "\n  ".join(bad[:20]))
                res["unexpected_log_lines"] = bad[:20]
                rc = 1
        if "b" in only:
            if snapshot_bytes is None and SNAPSHOTS:
                s = Server(ds.data, "event", opts.poll).start()
                try:
                    snapshot_bytes = measure_a(s, ds)["snapshot_bytes"]
                finally:
                    s.stop()
            res["b"] = [timed("b/" + m, measure_b, ds, m, opts, snapshot_bytes)
                        for m in sorted(mpms, key=lambda m: m != "prefork")]
    finally:
        if main_server:
            main_server.stop()
        ds.restore()
    if not opts.json_only:
        print(report(res, opts))
    print("RESULT " + json.dumps(res))
    return rc


if __name__ == "__main__":
    sys.exit(main())
