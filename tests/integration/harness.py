"""Integration test harness: runs Debian's apache2 with the built mod_crane
on 127.0.0.1 and a free port, and talks to it with curl.

Each Httpd instance lives in its own world-readable temp dir (the httpd
children run as www-data when the tests run as root), generates its own
httpd.conf, starts httpd in the foreground, polls until it answers, and on
stop fails the test when the error log holds an [error]/[warn] line (or a
sanitizer report) that the test did not declare as expected.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TEST_DATA = os.path.join(REPO, "tests", "data")
MODULE = os.environ.get("CRANE_MODULE", os.path.join(REPO, "build", "release", "mod_crane.so"))
MPM = os.environ.get("CRANE_MPM", "event")
SANITIZE = os.environ.get("CRANE_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE", "YES")
HTTPD = shutil.which("apache2") or shutil.which("httpd") or "/usr/sbin/apache2"
MODDIR = subprocess.run(["apxs", "-q", "LIBEXECDIR"], capture_output=True, text=True).stdout.strip() \
    or "/usr/lib/apache2/modules"

# What the registry answers, shared by the test files.
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
V1_HEADERS = {"X-Docker-Registry-Version": "0.6.6", "X-Docker-Registry-Config": "common"}
JSON = "application/json"
OCTET = "application/octet-stream"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
S2 = "application/vnd.docker.distribution.manifest.v2+json"
S1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
ACCEPT_LIST = "Accept: " + LIST
ACCEPT_S2 = "Accept: " + S2
ACCEPT_BOTH = "Accept: %s, %s, %s" % (S1, S2, LIST)  # what a current docker client sends
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT_OCI = "Accept: %s, %s" % (OCI_INDEX, OCI_MANIFEST)


def v2_error(code, message):
    return ('{"errors": [{"code": "%s", "message": "%s"}]}' % (code, message)).encode()


# the v2 error bodies: the distribution spec's codes, Docker Distribution's messages
V2_NAME_UNKNOWN = v2_error("NAME_UNKNOWN", "repository name not known to registry")  # 404
V2_MANIFEST_UNKNOWN = v2_error("MANIFEST_UNKNOWN", "manifest unknown")  # 404
V2_BLOB_UNKNOWN = v2_error("BLOB_UNKNOWN", "blob unknown to registry")  # 404
V2_DIGEST_INVALID = v2_error("DIGEST_INVALID", "provided digest did not match uploaded content")  # 400
V2_UNSUPPORTED = v2_error("UNSUPPORTED", "The operation is unsupported.")  # 405
V2_PAGINATION_INVALID = v2_error("PAGINATION_NUMBER_INVALID", "invalid number of results requested")  # 400

# Log lines no test fails on, by id (httpd's AHnnnnn, mod_crane's CRANEnnnn;
# docs/log-ids.md lists mod_crane's): AH03093 is httpd's own shutdown race
# (SIGTERM while a keep-alive connection is being parked), not mod_crane's doing
IGNORED_LOG_IDS = ("AH03093",)
IGNORED_LOG = re.compile(r"\b(?:%s): " % "|".join(IGNORED_LOG_IDS))
BAD_LOG = re.compile(r"\[(?:[a-z_]+:)?(warn|error|crit|alert|emerg)\]")
SANITIZER = re.compile(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer)")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_env():
    env = dict(os.environ)
    if SANITIZE:
        preload = []
        for lib in ("libasan.so", "libubsan.so"):
            path = subprocess.run(["gcc", "-print-file-name=" + lib], capture_output=True,
                                  text=True).stdout.strip()
            if path and os.path.isabs(path):
                preload.append(path)
        env["LD_PRELOAD"] = " ".join(preload)
        # httpd itself is not built for LeakSanitizer; its pools look like leaks
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    return env


def children_of(ppid):
    """The pids whose parent is ppid (an httpd's children), sorted."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # the command may hold spaces or parentheses; fields follow the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == ppid:
            kids.append(int(name))
    return sorted(kids)


def wait_until(fn, timeout=20, what="condition", interval=0.1):
    """fn()'s first truthy answer within timeout seconds, else AssertionError."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s not reached in %ss (last %r)" % (what, timeout, last))


def write_atomically(path, text):
    """Writes a world-readable file the way a publisher should: a temp file
    renamed over the target, so readers see the old or the new bytes."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        values = [v for (n, v) in self.headers if n.lower() == name.lower()]
        return values[-1] if values else None

    def header_all(self, name):
        return [v for (n, v) in self.headers if n.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8")

    def __repr__(self):
        return "Reply(%d, %r, %r)" % (self.status, self.headers, self.body[:200])


def parse_curl_output(raw):
    # with -i curl prints every response (e.g. 100 Continue) before the body
    while True:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("no HTTP header block in curl output: %r" % raw[:300])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status == 100 and rest.startswith(b"HTTP/"):
            raw = rest
            continue
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return Reply(status, headers, rest)


def terminate(proc, timeout=30):
    """SIGTERM, then SIGKILL if the process is still there after timeout seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Httpd:
    """One httpd with mod_crane. `conf` is extra server config text where
    {dir}, {port}, {data} are substituted."""

    def __init__(self, data_src=None, crane_ini=None, conf="", mpm=None, location="/",
                 extra_modules=(), expect_log=(), env=None, tls=None, loglevel="info crane:debug", settle=0.0):
        self.dir = tempfile.mkdtemp(prefix="crane-it-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.mpm = mpm or MPM
        self.data = os.path.join(self.dir, "metadata")
        if data_src:
            shutil.copytree(data_src, self.data, symlinks=True)
        else:
            os.makedirs(self.data)
        self.expect_log = [re.compile(p) for p in expect_log]
        self.extra_env = env or {}
        self.proc = None
        self._final_log = None
        # seconds stop() waits before SIGTERM, for a worker still parking the
        # keep-alive connection it just answered on
        self.settle = settle
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf_path = os.path.join(self.dir, "httpd.conf")
        self.scheme = "https" if tls else "http"
        ini_line = ""
        if crane_ini is not None:
            ini_path = os.path.join(self.dir, "crane.ini")
            with open(ini_path, "w") as f:
                f.write(crane_ini.format(dir=self.dir, data=self.data, port=self.port))
            ini_line = "CraneConfig %s" % ini_path
        else:
            ini_line = "CraneDataDir %s\nCranePollInterval 1" % self.data
        user = ""
        if os.geteuid() == 0:
            user = "User www-data\nGroup www-data"
        mods = ["authz_core", "authz_host", "mime"] + list(extra_modules)
        if not self._compiled_in("mod_watchdog.c"):  # Debian builds it in
            mods.append("watchdog")
        if tls:
            mods += ["socache_shmcb", "ssl"]
        load = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m) for m in dict.fromkeys(mods))
        text = """
ServerRoot "{dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {dir}/httpd.pid
DefaultRuntimeDir {dir}/run
ErrorLog {dir}/error.log
LogLevel {loglevel}
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
LoadModule mpm_{mpm}_module {moddir}/mod_mpm_{mpm}.so
{load}
LoadModule log_config_module {moddir}/mod_log_config.so
CustomLog {dir}/access.log common
LoadModule crane_module {module}
{user}
DocumentRoot {dir}/htdocs
TypesConfig /etc/mime.types
StartServers 2
MaxRequestWorkers {workers}
{mpm_conf}
{ini_line}
{tls}
<Location "{location}">
    SetHandler crane
</Location>
{conf}
""".format(dir=self.dir, port=self.port, mpm=self.mpm, moddir=MODDIR, load=load, module=MODULE,
           user=user, ini_line=ini_line, location=location,
           workers=10 if self.mpm == "prefork" else 50,
           mpm_conf="ThreadsPerChild 25\nMinSpareThreads 5\nMaxSpareThreads 50" if self.mpm != "prefork" else "MinSpareServers 1\nMaxSpareServers 4",
           tls=tls or "", loglevel=loglevel,
           conf=conf.replace("{dir}", self.dir).replace("{port}", str(self.port)).replace("{data}", self.data))
        # log_config is compiled into Debian's apache2; do not load it twice
        if self._compiled_in("mod_log_config.c"):
            text = text.replace("LoadModule log_config_module %s/mod_log_config.so\n" % MODDIR, "")
        os.makedirs(os.path.join(self.dir, "htdocs"))
        os.makedirs(os.path.join(self.dir, "run"))
        with open(self.conf_path, "w") as f:
            f.write(text)

    _compiled = None

    def use_fallback_config(self, crane_config_path):
        """Drops the generated Crane directives so the server falls back to
        CRANE_CONFIG_PATH (set to crane_config_path)."""
        with open(self.conf_path) as f:
            text = f.read()
        text = text.replace("CraneDataDir %s\nCranePollInterval 1" % self.data, "")
        with open(self.conf_path, "w") as f:
            f.write(text)
        self.extra_env["CRANE_CONFIG_PATH"] = crane_config_path

    @classmethod
    def _compiled_in(cls, name):
        if cls._compiled is None:
            cls._compiled = subprocess.run([HTTPD, "-l"], capture_output=True, text=True).stdout
        return name in cls._compiled

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def config_test(self):
        """Runs `httpd -t`; returns (exit code, output)."""
        p = subprocess.run([HTTPD, "-t", "-f", self.conf_path], capture_output=True, text=True,
                           env=self._env())
        return p.returncode, p.stdout + p.stderr

    def _env(self):
        env = sanitizer_env()
        env.update(self.extra_env)
        return env

    def start(self, timeout=30):
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([HTTPD, "-f", self.conf_path, "-DFOREGROUND"],
                                     stdout=self.stderr, stderr=subprocess.STDOUT, env=self._env(),
                                     # prefork signals its whole process group on shutdown
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("httpd exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.read(self.stderr_path), self.read(self.error_log)))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("httpd did not start listening in %ss" % timeout)
        # The port accepts once the listeners exist, before post_config has run
        # (and logged); wait for httpd's "resuming normal operations" line
        # (AH00489 event, AH00163 prefork) too, so a test stopping right away
        # still finds the startup lines.
        # Bounded: a config whose LogLevel hides it only waits a little.
        settled = time.time() + 5
        while self.generation() < 1 and time.time() < settled and self.proc.poll() is None:
            time.sleep(0.05)
        return self

    def graceful(self, timeout=30):
        """`httpd -k graceful`, then waits until a new generation answers."""
        before = self.generation()
        subprocess.run([HTTPD, "-f", self.conf_path, "-k", "graceful"], check=True, env=self._env(),
                       capture_output=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.generation() > before:
                return
            time.sleep(0.05)
        raise AssertionError("graceful restart not seen in the error log")

    def generation(self):
        return len(re.findall(r"resuming normal operations", self.read(self.error_log)))

    @staticmethod
    def read(path):
        try:
            with open(path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log(self):
        # after cleanup() the error log's last text, so a test can still
        # inspect it once a `with Httpd(...)` block has ended
        if self._final_log is not None:
            return self._final_log
        return self.read(self.error_log)

    def unexpected_log_lines(self):
        bad = []
        for line in self.log().splitlines() + self.read(self.stderr_path).splitlines():
            if IGNORED_LOG.search(line):
                continue
            if BAD_LOG.search(line) or SANITIZER.search(line):
                if not any(p.search(line) for p in self.expect_log):
                    bad.append(line)
        return bad

    def stop(self):
        if self.proc and self.proc.poll() is None:
            time.sleep(self.settle)
            terminate(self.proc)
        if getattr(self, "stderr", None):
            self.stderr.close()
        # ignore httpd's own shutdown notices
        return self.unexpected_log_lines()

    def cleanup(self):
        if self._final_log is None:
            self._final_log = self.read(self.error_log)
        shutil.rmtree(self.dir, ignore_errors=True)

    # `with Httpd(...) as h:` starts the server; leaving the block stops it,
    # checks the error log and removes the temp dir, also when the body
    # raised. launch() and finish() are the same two halves for a server
    # that outlives one block (a test class's).

    def launch(self):
        """Starts the server; removes its temp dir if it does not start."""
        try:
            self.start()
        except BaseException:
            self.stop()
            self.cleanup()
            raise
        return self

    def finish(self, exc=None):
        """Stops the server and removes its temp dir; raises AssertionError
        naming the unexpected error-log lines. With `exc` (an exception
        already on its way) the lines become a note on it instead, so the
        first failure stays the one reported."""
        try:
            bad = self.stop()
        finally:
            self.cleanup()
        if bad:
            text = "unexpected lines in the error log:\n" + "\n".join(bad)
            if exc is None:
                raise AssertionError(text)
            if hasattr(exc, "add_note"):
                exc.add_note(text)

    def __enter__(self):
        return self.launch()

    def __exit__(self, exc_type, exc, tb):
        self.finish(exc)
        return False

    # ---- clients ----

    def curl(self, path, method=None, headers=(), extra=(), data=None):
        args = ["curl", "-sS", "-i", "--http1.1", "--max-time", "20", "--path-as-is", "-g"]
        if method == "HEAD":
            args.append("-I")
        elif method:
            args += ["-X", method]
        for h in headers:
            args += ["-H", h]
        if data is not None:
            args += ["--data-binary", data]
        args += list(extra)
        args.append(self.url(path) if path.startswith("/") else path)
        p = subprocess.run(args, capture_output=True)
        if p.returncode != 0:
            raise AssertionError("curl %s failed (%d): %s" % (path, p.returncode, p.stderr.decode()))
        return parse_curl_output(p.stdout)


class HttpdTestCase(unittest.TestCase):
    """Starts one httpd per test class (setUpClass) unless a test makes its own."""

    data_src = os.path.join(TEST_DATA, "metadata")
    # {file name: metadata document} written into the server's data dir on top
    # of (or, with data_src None, instead of) the copy of data_src
    extra_metadata = {}
    crane_ini = None
    conf = ""
    expect_log = ()
    extra_modules = ()
    tls = None
    env = None

    location = "/"  # of the generated `SetHandler crane`

    @classmethod
    def setUpClass(cls):
        cls.httpd = cls.make_httpd()
        try:
            for name, doc in cls.extra_metadata.items():
                write_atomically(os.path.join(cls.httpd.data, name), json.dumps(doc))
            cls.before_start()
        except BaseException:
            cls.httpd.cleanup()
            raise
        cls.httpd.launch()

    @classmethod
    def before_start(cls):
        """Runs once the server's temp dir exists, before httpd starts: a
        class puts its files there."""

    @classmethod
    def make_httpd(cls, **kw):
        args = dict(data_src=cls.data_src, crane_ini=cls.crane_ini, conf=cls.conf, expect_log=cls.expect_log,
                    extra_modules=cls.extra_modules, tls=cls.tls, env=cls.env, location=cls.location)
        args.update(kw)
        return Httpd(**args)

    @classmethod
    def tearDownClass(cls):
        cls.httpd.finish()

    def get(self, path, **kw):
        return self.httpd.curl(path, **kw)

    def assertReply(self, reply, status, body=None, headers=None, absent=()):
        self.assertEqual(reply.status, status, reply)
        if body is not None:
            self.assertEqual(reply.body, body if isinstance(body, bytes) else body.encode(), reply)
        for name, value in (headers or {}).items():
            self.assertEqual(reply.header(name), value, "%s in %r" % (name, reply))
        for name in absent:
            self.assertIsNone(reply.header(name), "%s in %r" % (name, reply))
