"""Every file shipped in apache-conf/, and the packages' LoadModule files,
in a real httpd with the built mod_crane.

- apache-conf/*.conf (vhost samples): the file itself is Included by the
  harness's httpd.conf, with only what must change on a test machine
  substituted: the module path -> the built module, /etc/crane.conf -> a
  test INI (apache-conf/crane.ini with its paths substituted), data and
  content dirs, htpasswd, certificates -> generated test files,
  <VirtualHost ADDR> and active Listen lines -> 127.0.0.1 and a free port.
  It must pass `httpd -t`, start, answer /v2/ and /v1/_ping, redirect (or,
  in serve-content mode, serve) a repository of tests/data/metadata, show
  /crane/ to a local client, and log no unexpected [warn]/[error]. A
  sample that also serves the published tree (an active `Alias /pub`) gets
  a Docker and an OCI repository published into it by crane-publish, and
  every manifest kind must come with its media type, and a missing
  manifest, blob or repository with the registry's JSON 404. Modules
  a sample needs besides mod_crane (basic auth, mod_ssl) are loaded as
  a2enmod / Fedora's defaults would.
- apache-conf/*.ini (INI samples): used as the CraneConfig file with its
  paths substituted; it must pass `httpd -t`, start without warnings, and
  give the effective configuration Python's configparser reads from it.
- rpm/10-crane.conf and debian/crane.load (+ debian/crane.conf) load
  crane_module from mod_crane.so; with the path pointed at the built module
  they work in httpd, and debian/crane.conf activates nothing.

A file in apache-conf/ of another kind fails the test (every sample is
checked). A path on an active line that the test does not know how to
substitute fails too: teach PATHS below about it.
"""

import base64
import configparser
import glob
import hashlib
import os
import re
import subprocess
import unittest

from harness import (Httpd, JSON, LIST, MODULE, MODDIR, MPM, OCI_INDEX, OCI_MANIFEST, OCTET, REPO, S2, TEST_DATA,
                     V2_BLOB_UNKNOWN, V2_MANIFEST_UNKNOWN, V2_NAME_UNKNOWN)
from certs import TestPKI
import image_builder

SAMPLES = os.path.join(REPO, "apache-conf")
METADATA = os.path.join(TEST_DATA, "metadata")
RPM_LOAD = os.path.join(REPO, "rpm", "10-crane.conf")
RPM_SPEC = os.path.join(REPO, "rpm", "mod_crane.spec")
DEB_LOAD = os.path.join(REPO, "debian", "crane.load")
DEB_CONF = os.path.join(REPO, "debian", "crane.conf")

SERVER_NAME = "registry.example.com"  # crane-ssl.conf's ServerName
USER, PASSWORD = "crane-user", "s3cret pass"
BLOB = b"layer bytes served by the crane-serve.conf sample\n" * 100
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
# tests/data/metadata/v2_plain.json
REDIRECT_PATH = "/v2/v2repo/tags/list"
REDIRECT_LOCATION = "http://cdn.example.com/pulp/docker/v2/v2repo/tags/list"
# tests/data/metadata/zoo_v4.json: repository "zoo-pulp"
SERVE_PATH = "/v2/zoo/blobs/" + BLOB_DIGEST
SERVE_FILE = os.path.join("zoo-pulp", "blobs", BLOB_DIGEST)

# modules a sample's active directives need, as `a2enmod` (Debian) or the
# default conf.modules.d (Fedora) provide them
NEEDS_MODULES = [
    (re.compile(r"^\s*Auth(Type|Name)\b", re.M | re.I), ["authn_core"]),
    (re.compile(r"^\s*(AuthType\s+Basic|AuthBasicProvider)\b", re.M | re.I), ["auth_basic"]),
    (re.compile(r"^\s*AuthUserFile\b", re.M | re.I), ["authn_file"]),
    (re.compile(r"^\s*Require\s+(valid-user|user)\b", re.M | re.I), ["authz_user"]),
    (re.compile(r"^\s*Header\b", re.M | re.I), ["headers"]),
    (re.compile(r"^\s*Alias\b", re.M | re.I), ["alias"]),
    (re.compile(r"^\s*Protocols\b.*\bh2", re.M | re.I), ["http2"]),
]
# the commented `#Protocols ...` line every vhost sample has: uncommented
# in the _h2 variant of its test
H2_LINE = re.compile(r"^(\s*)#(Protocols\s.*\bh2.*)$", re.M)
STATIC_RE = re.compile(r"^\s*Alias\s+/pub\s", re.M)
PUBLISH = os.path.join(os.environ.get("CRANE_BUILD_DIR") or os.path.dirname(MODULE), "crane-publish")
SSL_RE = re.compile(r"^\s*SSLEngine\s+on\b", re.M | re.I)

PKI = None


def setUpModule():
    global PKI
    PKI = TestPKI()
    # a server certificate for the sample's ServerName (and 127.0.0.1)
    PKI.registry_cert = PKI.sign("registry", PKI.server_key, "/CN=" + SERVER_NAME,
                                 "basicConstraints = critical, CA:FALSE\n"
                                 "keyUsage = critical, digitalSignature, keyEncipherment\n"
                                 "extendedKeyUsage = serverAuth\n"
                                 "subjectAltName = DNS:%s, IP:127.0.0.1\n" % SERVER_NAME)


def tearDownModule():
    if PKI:
        PKI.cleanup()


def active_lines(text):
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def active_text(text):
    return "\n".join(active_lines(text))


class SampleWorld:
    """The files a sample points at, made for one Httpd (in its temp dir)."""

    def __init__(self, httpd):
        d = httpd.dir
        self.httpd = httpd
        self.ini = os.path.join(d, "crane.ini")  # the harness's CraneConfig file
        self.data = httpd.data
        self.content_v1 = os.path.join(d, "content", "v1")
        self.content_v2 = os.path.join(d, "content", "v2")
        self.htpasswd = os.path.join(d, "htpasswd")
        blob = os.path.join(self.content_v2, SERVE_FILE)
        os.makedirs(os.path.dirname(blob))
        os.makedirs(self.content_v1)
        with open(blob, "wb") as f:
            f.write(BLOB)
        for root, dirs, files in os.walk(os.path.join(d, "content")):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
        with open(self.htpasswd, "w") as f:
            f.write("%s:{SHA}%s\n" % (USER, sha))
        os.chmod(self.htpasswd, 0o644)

    def paths(self):
        """(path in the samples, test path); longest first."""
        table = [
            ("/etc/crane.conf", self.ini),
            ("/var/lib/crane/metadata/", self.data + "/"),
            ("/var/www/pub/docker/v1/web/", self.content_v1 + "/"),
            ("/var/www/pub/docker/v2/web/", self.content_v2 + "/"),
            ("/etc/crane/htpasswd", self.htpasswd),
            ("/etc/pki/tls/certs/registry.example.com.crt", PKI.registry_cert),
            ("/etc/pki/tls/private/registry.example.com.key", PKI.server_key),
            ("/etc/pki/entitlement/ca.pem", PKI.ca_cert),
            ("/etc/pki/tls/certs/search-ca.pem", PKI.ca_cert),
        ]
        return sorted(table, key=lambda p: -len(p[0]))

    def substitute(self, text):
        """The sample's text for this test machine; (text, what changed)."""
        port = self.httpd.port
        changes = {}
        for old, new in self.paths():
            if old in text:
                changes[old] = new
                text = text.replace(old, new)
        text, n = re.subn(r"(?m)^(\s*LoadModule\s+crane_module\s+)\S+", lambda m: m.group(1) + MODULE, text)
        changes["LoadModule"] = n
        text, n = re.subn(r"(?mi)^(\s*)<VirtualHost\s+[^>]*>", lambda m: "%s<VirtualHost 127.0.0.1:%d>" % (
            m.group(1), port), text)
        changes["VirtualHost"] = n
        text, n = re.subn(r"(?mi)^(\s*)Listen\s+.*$", lambda m: "%sListen 127.0.0.1:%d" % (m.group(1), port), text)
        changes["Listen"] = n
        return text, changes

    def leftover_paths(self, text):
        """Active lines that still name a system path."""
        bad = []
        for line in active_lines(text):
            for token in re.findall(r'"?(/(?:etc|usr|var|srv|opt|home|run)/[^\s"]*)', line):
                if not token.startswith(self.httpd.dir) and not token.startswith(PKI.dir) \
                        and token != MODULE and not token.startswith(MODDIR + "/"):
                    bad.append(line.strip())
        return bad


def edit_harness_conf(httpd, drop_crane_load, drop_crane_config, drop_listen, drop_catch_all=True):
    """Takes out of the harness's httpd.conf what the sample provides itself."""
    with open(httpd.conf_path) as f:
        text = f.read()
    removals = []
    if drop_crane_load:
        removals.append("LoadModule crane_module %s\n" % MODULE)
    if drop_crane_config:
        removals.append("CraneConfig %s\n" % os.path.join(httpd.dir, "crane.ini"))
    if drop_listen:
        removals.append("Listen 127.0.0.1:%d\n" % httpd.port)
    if drop_catch_all:
        removals.append('<Location "/">\n    SetHandler crane\n</Location>\n')
    for r in removals:
        if r not in text:
            raise AssertionError("the harness's httpd.conf no longer holds %r" % r)
        text = text.replace(r, "", 1)
    with open(httpd.conf_path, "w") as f:
        f.write(text)


def ini_text(world, sample_ini=os.path.join(SAMPLES, "crane.ini")):
    with open(sample_ini) as f:
        text = f.read()
    text, _ = world.substitute(text)
    return text


def expected_effective(ini):
    """What mod_crane's effective-configuration debug line should say for an
    INI text, as Python's configparser (Crane's parser) reads it."""
    cp = configparser.ConfigParser(inline_comment_prefixes=None)
    cp.read_string(ini)
    get = lambda s, k, d="": cp.get(s, k, fallback=d).strip()
    enabled = get("serve_content", "enable", "false").lower() in ("true", "yes", "on", "1")
    search = "gsa" if get("gsa", "url") else "solr" if get("solr", "url") else "none"
    return {"data_dir": get("general", "data_dir", "/var/lib/crane/metadata/"),
            "serve_content": "on" if enabled else "off",
            "search": search}


def effective_lines(log):
    return [line for line in log.splitlines() if "CRANE0007: " in line]  # the effective configuration


class SampleTestBase(unittest.TestCase):
    maxDiff = None

    def make_httpd(self, **kw):
        # event MPM: let keep-alive connections be parked before SIGTERM
        h = Httpd(settle=0.2, **kw)
        self.addCleanup(h.cleanup)
        return h

    def check_config(self, httpd):
        code, out = httpd.config_test()
        self.assertEqual(code, 0, "httpd -t failed:\n%s\n--- httpd.conf:\n%s" % (out, Httpd.read(httpd.conf_path)))
        self.assertIn("Syntax OK", out)


# ---------------------------------------------------------------- vhost samples

class VhostSamples(SampleTestBase):
    """One test per apache-conf/*.conf (generated below)."""

    def check_vhost_sample(self, name, h2=False):
        path = os.path.join(SAMPLES, name)
        with open(path) as f:
            original = f.read()
        if h2:
            if MPM == "prefork":
                self.skipTest("mod_http2 does not support the prefork MPM (httpd warns AH10034)")
            original, n = H2_LINE.subn(r"\1\2", original)
            self.assertEqual(n, 1, "%s: no commented `#Protocols ... h2` line in its <VirtualHost>" % name)
        active = active_text(original)
        modules = []
        for pattern, mods in NEEDS_MODULES:
            if pattern.search(active):
                modules += mods
        ssl = bool(SSL_RE.search(active))
        has_load = re.search(r"(?m)^\s*LoadModule\s+crane_module\b", active) is not None
        has_ini = re.search(r"(?m)^\s*CraneConfig\b", active) is not None
        has_listen = re.search(r"(?mi)^\s*Listen\b", active) is not None
        serve = re.search(r"(?mi)^\s*CraneServeContent\s+on\b", active) is not None
        auth = re.search(r"(?mi)^\s*AuthUserFile\b", active) is not None

        conf = "Include {dir}/%s\n" % name
        if ssl:
            # what mod_ssl's own ssl.conf sets on Debian and Fedora
            conf = "SSLSessionCache shmcb:{dir}/ssl_scache(512000)\n" + conf
        h = self.make_httpd(data_src=METADATA, crane_ini="", conf=conf, extra_modules=modules,
                            tls="# TLS: from %s\n" % name if ssl else None)
        world = SampleWorld(h)
        text, changes = world.substitute(original)
        self.assertEqual(world.leftover_paths(text), [],
                         "%s: paths the test does not substitute (extend SampleWorld.paths)" % name)
        self.assertGreater(changes["VirtualHost"], 0, "%s has no <VirtualHost>" % name)
        with open(os.path.join(h.dir, name), "w") as f:
            f.write(text)
        with open(world.ini, "w") as f:
            f.write(ini_text(world))
        edit_harness_conf(h, drop_crane_load=has_load, drop_crane_config=has_ini, drop_listen=has_listen)
        self.check_config(h)
        with h:
            if ssl:
                base = "https://%s:%d" % (SERVER_NAME, h.port)
                tls = ["--cacert", PKI.ca_cert, "--resolve", "%s:%d:127.0.0.1" % (SERVER_NAME, h.port)]
            else:
                base = "http://127.0.0.1:%d" % h.port
                tls = []
            creds = ["--user", "%s:%s" % (USER, PASSWORD)] if auth else []

            def get(p, extra=()):
                return h.curl(base + p, extra=tls + list(extra))

            if auth:
                self.assertEqual(get("/v2/").status, 401, "%s: /v2/ without credentials" % name)
            reply = get("/v2/", creds)
            self.assertEqual((reply.status, reply.body), (200, b"{}"), reply)
            self.assertEqual(reply.header("Docker-Distribution-API-Version"), "registry/2.0")
            reply = get("/v1/_ping", creds)
            self.assertEqual((reply.status, reply.body), (200, b"true"), reply)
            if serve:
                reply = get(SERVE_PATH, creds)
                self.assertEqual(reply.status, 200, reply)
                self.assertEqual(reply.body, BLOB)
            else:
                reply = get(REDIRECT_PATH, creds)
                self.assertEqual(reply.status, 302, reply)
                self.assertEqual(reply.header("Location"), REDIRECT_LOCATION)
            reply = get("/crane/repositories/v2", ["-H", "Accept: application/json"])
            self.assertEqual(reply.status, 200, reply)
            self.assertIn(b'"v2repo"', reply.body)
            if h2:
                p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                    "--http2" if ssl else "--http2-prior-knowledge"] + tls + creds +
                                   [base + (SERVE_PATH if serve else REDIRECT_PATH)], capture_output=True, text=True)
                self.assertEqual(p.stdout, "2 %d" % (200 if serve else 302), p.stderr)

            static_skipped = None
            if STATIC_RE.search(active):
                if os.access(PUBLISH, os.X_OK):
                    self.check_static_tree(name, h, world, base, get)
                else:
                    static_skipped = "%s: %s not built; the published tree was not checked" % (name, PUBLISH)

            if has_ini:
                eff = effective_lines(h.log())
                self.assertTrue(eff, "no effective-configuration line in the error log")
                self.assertTrue(all(world.ini in line for line in eff), eff)
                self.assertTrue(all("data_dir=%s/" % world.data in line for line in eff), eff)
        if static_skipped:
            self.skipTest(static_skipped)

    def check_static_tree(self, name, h, world, base, get):
        """Publishes Docker and OCI images into the sample's web dir and
        fetches every kind of file, and missing ones, from /pub."""
        src = os.path.join(h.dir, "static-src")
        meta = os.path.join(h.dir, "static-meta")
        os.makedirs(meta)
        single = image_builder.Image("amd64", label="static")
        dlist = image_builder.multi_arch(label="static")
        oci = image_builder.Image("amd64", label="static", oci=True)
        index = image_builder.multi_arch(label="static", oci=True)
        sbom = image_builder.Artifact(oci, "application/spdx+json", b"{}\n", "application/spdx+json")
        image_builder.write_dir(single, os.path.join(src, "single"))
        image_builder.write_dir(dlist, os.path.join(src, "dlist"))
        layout = image_builder.write_oci_layout(os.path.join(src, "layout"),
                                                [(oci, "one"), (index, "multi"), (sbom, None)])
        web = world.content_v2
        p = subprocess.run([PUBLISH, "--repo-id", "static/app", "--base-url", base + "/pub", "--out", web,
                            "--metadata", meta, "--quiet", "1.0=" + os.path.join(src, "single"),
                            "list=dir:" + os.path.join(src, "dlist"), "oci=oci:%s:one" % layout,
                            "index=oci:%s:multi" % layout], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        repo = "/pub/static-app/"
        files = [
            ("manifests/2/1.0", S2, single.manifest),
            ("manifests/2/" + single.digest, S2, single.manifest),
            ("manifests/list/list", LIST, dlist.manifest),
            ("manifests/list/" + dlist.digest, LIST, dlist.manifest),
            ("manifests/oci/oci", OCI_MANIFEST, oci.manifest),
            ("manifests/oci/" + oci.digest, OCI_MANIFEST, oci.manifest),
            ("manifests/oci/" + sbom.digest, OCI_MANIFEST, sbom.manifest),
            ("manifests/oci/" + index.images[1].digest, OCI_MANIFEST, index.images[1].manifest),
            ("manifests/oci-index/index", OCI_INDEX, index.manifest),
            ("manifests/oci-index/" + index.digest, OCI_INDEX, index.manifest),
            ("blobs/" + oci.layer_digest, OCTET, oci.layer),
            # with the referrers tag schema's tag of the SBOM's subject
            ("tags/list", JSON, ('{"name": "static/app", "tags": ["1.0", "index", "list", "oci", "%s"]}'
                                 % oci.digest.replace(":", "-", 1)).encode()),
        ]
        for path, media_type, body in files:
            reply = get(repo + path)
            self.assertEqual((reply.status, reply.header("Content-Type"), reply.body), (200, media_type, body),
                             "%s: %s" % (name, path))
        missing = [
            (repo + "manifests/oci/nope", V2_MANIFEST_UNKNOWN),
            (repo + "manifests/oci-index/" + sbom.digest, V2_MANIFEST_UNKNOWN),
            (repo + "manifests/2/nope", V2_MANIFEST_UNKNOWN),
            (repo + "manifests/list/nope", V2_MANIFEST_UNKNOWN),
            (repo + "manifests/1/1.0", V2_MANIFEST_UNKNOWN),
            ("/pub/nope/manifests/oci/1.0", V2_MANIFEST_UNKNOWN),
            (repo + "blobs/sha256:" + "0" * 64, V2_BLOB_UNKNOWN),
            ("/pub/nope/tags/list", V2_NAME_UNKNOWN),
        ]
        for path, body in missing:
            reply = get(path)
            self.assertEqual((reply.status, reply.header("Content-Type"), reply.body), (404, JSON, body),
                             "%s: %s" % (name, path))
        reply = h.curl(base + repo + "manifests/oci/nope", method="HEAD")
        self.assertEqual((reply.status, reply.header("Content-Type")), (404, JSON))


# ---------------------------------------------------------------- INI samples

class IniSamples(SampleTestBase):
    """One test per apache-conf/*.ini (generated below)."""

    def check_ini_sample(self, name):
        h = self.make_httpd(data_src=METADATA, crane_ini="")
        world = SampleWorld(h)
        text = ini_text(world, os.path.join(SAMPLES, name))
        self.assertEqual(world.leftover_paths(
            "\n".join(line for line in text.splitlines() if re.match(r"\s*\w+\s*[:=]", line))), [],
            "%s: paths the test does not substitute (extend SampleWorld.paths)" % name)
        with open(world.ini, "w") as f:
            f.write(text)
        expected = expected_effective(text)
        self.assertTrue(expected["data_dir"].startswith(world.data),
                        "%s: data_dir %r was not substituted" % (name, expected["data_dir"]))
        self.check_config(h)
        with h:
            # an answer means post_config has run (and logged) in the parent
            reply = h.curl("/v2/")
            self.assertEqual((reply.status, reply.body), (200, b"{}"), reply)
            eff = effective_lines(h.log())
            self.assertTrue(eff, "no effective-configuration line in the error log")
            for line in eff:
                self.assertIn(world.ini, line)
                for key, value in expected.items():
                    self.assertIn("%s=%s" % (key, value), line)
            if expected["serve_content"] == "off":
                reply = h.curl(REDIRECT_PATH)
                self.assertEqual(reply.status, 302, reply)
                self.assertEqual(reply.header("Location"), REDIRECT_LOCATION)


def _sample_test_name(name):
    return "test_" + re.sub(r"\W", "_", name)


def _add_sample_tests():
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*"))):
        name = os.path.basename(path)
        if name.endswith(".conf"):
            setattr(VhostSamples, _sample_test_name(name),
                    lambda self, n=name: self.check_vhost_sample(n))
            setattr(VhostSamples, _sample_test_name(name) + "_h2",
                    lambda self, n=name: self.check_vhost_sample(n, h2=True))
        elif name.endswith(".ini"):
            setattr(IniSamples, _sample_test_name(name),
                    lambda self, n=name: self.check_ini_sample(n))
        else:
            def unknown(self, n=name):
                self.fail("apache-conf/%s: no check for this kind of sample (teach test_sample_configs.py)" % n)
            setattr(VhostSamples, _sample_test_name(name), unknown)


_add_sample_tests()


# ---------------------------------------------------------------- package load files

LOAD_RE = re.compile(r"^\s*LoadModule\s+(\S+)\s+(\S+)\s*$")


def load_lines(path):
    with open(path) as f:
        return [LOAD_RE.match(line).groups() for line in active_lines(f.read()) if LOAD_RE.match(line)]


class PackageLoadFiles(SampleTestBase):

    def test_rpm_load_file_loads_crane_module_from_the_module_dir(self):
        self.assertEqual(load_lines(RPM_LOAD), [("crane_module", "modules/mod_crane.so")])
        with open(RPM_LOAD) as f:
            self.assertEqual(len(active_lines(f.read())), 1, "10-crane.conf: only the LoadModule line is active")

    def test_rpm_spec_installs_the_load_file(self):
        with open(RPM_SPEC) as f:
            spec = f.read()
        self.assertIn("rpm/10-crane.conf %{buildroot}%{_httpd_modconfdir}/10-crane.conf", spec)
        self.assertRegex(spec, r"(?m)^%config\(noreplace\) %\{_httpd_modconfdir\}/10-crane\.conf$")
        self.assertRegex(spec, r"(?m)^%\{_httpd_moddir\}/mod_crane\.so$")
        self.assertRegex(spec, r"(?m)^Requires:\s+httpd-mmn = %\{_httpd_mmn\}$")

    def test_debian_load_file_loads_crane_module_from_debians_module_dir(self):
        self.assertEqual(load_lines(DEB_LOAD), [("crane_module", "/usr/lib/apache2/modules/mod_crane.so")])
        with open(DEB_LOAD) as f:
            self.assertEqual(len(active_lines(f.read())), 1, "crane.load: only the LoadModule line is active")

    def test_debian_mods_available_conf_activates_nothing(self):
        with open(DEB_CONF) as f:
            self.assertEqual(active_lines(f.read()), [])

    def check_load_file(self, files, server_root=None):
        """httpd with the harness's LoadModule replaced by `files` (the
        LoadModule path pointed at the built module) and /v2 routed to crane."""
        h = self.make_httpd(data_src=METADATA, conf="".join("Include {dir}/%s\n" % os.path.basename(p) for p in files)
                            + '<Location "/v2">\n    SetHandler crane\n</Location>\n')
        for p in files:
            with open(p) as f:
                text = f.read()
            text, n = re.subn(r"(?m)^(\s*LoadModule\s+crane_module\s+)\S+",
                              lambda m: m.group(1) + MODULE, text)
            with open(os.path.join(h.dir, os.path.basename(p)), "w") as f:
                f.write(text)
        edit_harness_conf(h, drop_crane_load=True, drop_crane_config=False, drop_listen=False)
        self.check_config(h)
        with h:
            reply = h.curl("/v2/")
            self.assertEqual((reply.status, reply.body), (200, b"{}"), reply)

    def test_debian_load_and_conf_work_in_httpd(self):
        self.check_load_file([DEB_LOAD, DEB_CONF])

    def test_rpm_load_file_works_in_httpd(self):
        self.check_load_file([RPM_LOAD])


if __name__ == "__main__":
    unittest.main()
