"""Real clients pull through mod_crane from what crane-publish published.

Each class builds tiny images with image_builder (stdlib only) into skopeo's
dir: layout, publishes them with build/.../crane-publish into its httpd's
temp dir, serves the web layout statically from the same httpd under /pub
(mod_alias) and then pulls with skopeo (and podman, and docker through a
dockerd the class starts with its own directories, when they can run
here): by tag, by digest, the manifest list with --all and one instance with
--override-arch arm64, checking every copied byte against what was
published. Modes: redirects to /pub, serve-content (CraneServeContent On),
Apache basic auth in front of /v2/, and TLS with an entitlement client
certificate for a protected repository.

What the static server has to do for redirects: send the manifest media
types. containers/image takes the Content-Type of the redirected response
as the manifest type (it treats an unknown one as schema 1), so /pub maps
manifests/2/, manifests/list/, manifests/oci/ and manifests/oci-index/ to
their types with ForceType, as a CDN or Pulp's own Apache config for the
published files does, and answers a missing file with the registry's JSON
error (ErrorDocument, bodies from crane-publish's .errors/), as
apache-conf/crane.conf does. OCI images: test_e2e_oci.py.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import certs
import image_builder
from harness import REPO, HttpdTestCase, terminate

BUILD_DIR = os.environ.get("CRANE_BUILD_DIR") or os.path.join(REPO, "build", "release")
PUBLISH = os.path.join(BUILD_DIR, "crane-publish")
SKOPEO = shutil.which("skopeo")
PODMAN = shutil.which("podman")
DOCKERD = shutil.which("dockerd")
DOCKER = shutil.which("docker")
OPENSSL = shutil.which("openssl")
HTPASSWD = shutil.which("htpasswd")
CLIENT_TIMEOUT = 120

REPO_ID = "e2e/app"
REPOSITORY = "e2e-app"  # crane-publish's default for REPO_ID
OTHER_ID = "e2e/public"  # an unprotected second repo in the TLS class
LIST = image_builder.MEDIA_LIST

STATIC_CONF = """
Alias /pub {dir}/web
<Location "/pub">
    SetHandler None
    ErrorDocument 404 /pub/.errors/name-unknown.json
</Location>
<LocationMatch "^/pub/.+/manifests/2/[^/]+$">
    ForceType application/vnd.docker.distribution.manifest.v2+json
</LocationMatch>
<LocationMatch "^/pub/.+/manifests/list/[^/]+$">
    ForceType application/vnd.docker.distribution.manifest.list.v2+json
</LocationMatch>
<LocationMatch "^/pub/.+/manifests/oci/[^/]+$">
    ForceType application/vnd.oci.image.manifest.v1+json
</LocationMatch>
<LocationMatch "^/pub/.+/manifests/oci-index/[^/]+$">
    ForceType application/vnd.oci.image.index.v1+json
</LocationMatch>
<LocationMatch "^/pub/.+/blobs/[^/]+$">
    ForceType application/octet-stream
</LocationMatch>
<LocationMatch "^/pub/(.+/tags/list|\\.errors/[^/]+)$">
    ForceType application/json
</LocationMatch>
<LocationMatch "^/pub/.+/manifests/">
    ErrorDocument 404 /pub/.errors/manifest-unknown.json
</LocationMatch>
<LocationMatch "^/pub/.+/blobs/">
    ErrorDocument 404 /pub/.errors/blob-unknown.json
</LocationMatch>
"""

POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def eventually(check, timeout=30):
    """Retries check() until it stops raising AssertionError: every httpd
    child picks up new metadata within its poll interval (1 s), and until
    then an old index may answer."""
    end = time.time() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > end:
                raise
            time.sleep(0.2)


def missing_tools():
    missing = []
    if not os.access(PUBLISH, os.X_OK):
        missing.append("crane-publish (%s; build it first)" % PUBLISH)
    if not SKOPEO:
        missing.append("skopeo (apt-get install skopeo)")
    return missing


class Images:
    """The images every class publishes:
    1.0            one amd64 image
    latest, multi  one manifest list: amd64 + arm64/v8
    """

    def __init__(self, work):
        self.single = image_builder.Image("amd64", label="1.0")
        self.multi = image_builder.multi_arch(label="multi")
        self.single_dir = image_builder.write_dir(self.single, os.path.join(work, "src-1.0"))
        self.multi_dir = image_builder.write_dir(self.multi, os.path.join(work, "src-multi"))
        self.blobs = dict(self.single.blobs)
        self.blobs.update(self.multi.blobs)

    def tags(self):
        return [("1.0", self.single_dir), ("latest", self.multi_dir), ("multi", self.multi_dir)]


def publish(repo_id, base_url, web, metadata, tags, protected=False):
    args = [PUBLISH, "--repo-id", repo_id, "--base-url", base_url, "--out", web, "--metadata", metadata]
    if protected:
        args.append("--protected")
    for tag, path in tags:
        args += ["--tag", "%s=%s" % (tag, path)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("crane-publish failed (%d): %s" % (p.returncode, p.stderr))
    return p


class E2ECase(HttpdTestCase):
    """Builds and publishes the images, then starts httpd. Subclasses set
    serve_content, protected, extra_conf and extra_modules, and override
    setup_tls() (sets cls.tls), prepare() (before httpd starts) and
    client_args() (how the clients reach and authenticate)."""

    data_src = None
    extra_modules = ("alias",)
    serve_content = False
    protected = False
    extra_conf = ""
    expect_log = ()

    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            raise unittest.SkipTest("not installed: " + ", ".join(missing))
        cls.httpd = None
        cls.work = tempfile.mkdtemp(prefix="crane-e2e-")
        os.chmod(cls.work, 0o755)
        try:
            cls.policy = os.path.join(cls.work, "policy.json")
            with open(cls.policy, "w") as f:
                f.write(POLICY)
            cls.authfile = os.path.join(cls.work, "auth.json")
            with open(cls.authfile, "w") as f:
                f.write("{}\n")
            cls.images = Images(cls.work)
            cls.setup_tls()
            conf = STATIC_CONF + cls.extra_conf
            if cls.serve_content:
                conf += "CraneServeContent On\nCraneContentDirV1 {dir}/web\nCraneContentDirV2 {dir}/web\n"
            cls.httpd = cls.make_httpd(conf=conf)
            cls.web = os.path.join(cls.httpd.dir, "web")
            cls.base_url = cls.httpd.url("/pub")
            cls.publish_output = publish(REPO_ID, cls.base_url, cls.web, cls.httpd.data, cls.images.tags(),
                                         protected=cls.protected)
            cls.prepare()
            cls.httpd.launch()
        except BaseException:
            if cls.httpd:
                cls.httpd.cleanup()
            shutil.rmtree(cls.work, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            stop_dockerd(cls)
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def setup_tls(cls):
        pass

    @classmethod
    def prepare(cls):
        pass

    # ---- clients ----

    def host(self):
        return "127.0.0.1:%d" % self.httpd.port

    def ref(self, ref, repo=REPO_ID):
        sep = "@" if ref.startswith("sha256:") else ":"
        return "docker://%s/%s%s%s" % (self.host(), repo, sep, ref)

    def client_args(self):
        """Per-mode options for skopeo's docker transport (source side)."""
        return ["--tls-verify=false"]

    def skopeo(self, *args, check=True, src_opts=True, global_opts=()):
        cmd = [SKOPEO, "--policy", self.policy] + list(global_opts) + list(args[:1])
        rest = list(args[1:])
        if args[0] in ("copy", "sync"):
            opts = ["--authfile", self.authfile]
            if src_opts:
                opts += [o.replace("--", "--src-", 1) for o in self.client_args()]
            cmd += opts + rest
        else:
            cmd += ["--authfile", self.authfile] + (self.client_args() if src_opts else []) + rest
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def inspect(self, ref, raw=False, **kw):
        args = ["inspect"] + (["--raw"] if raw else []) + [self.ref(ref)]
        p = self.skopeo(*args, **kw)
        return p.stdout if raw else json.loads(p.stdout)

    def copy(self, ref, *extra, global_opts=(), repo=REPO_ID):
        dest = tempfile.mkdtemp(prefix="copy-", dir=self.work)
        os.rmdir(dest)
        self.skopeo("copy", *extra, self.ref(ref, repo), "dir:" + dest, global_opts=global_opts)
        return dest

    # ---- checks ----

    def assertCopied(self, dest, manifest, instances=()):
        """dest holds exactly `manifest` (bytes), `instances` (Images) as
        <hex>.manifest.json, and the blobs they reference, each hashing to
        its name and equal to what was published."""
        with open(os.path.join(dest, "manifest.json"), "rb") as f:
            self.assertEqual(f.read(), manifest)
        wanted = set()
        images = list(instances)
        if not images:
            body = json.loads(manifest)
            wanted |= {body["config"]["digest"]} | {l["digest"] for l in body["layers"]}
        for image in images:
            wanted |= set(image.blobs)
        names = set(os.listdir(dest)) - {"manifest.json", "version"}
        names = {n for n in names if not n.startswith("signature")}
        expected_names = {d[len("sha256:"):] for d in wanted}
        expected_names |= {i.digest[len("sha256:"):] + ".manifest.json" for i in images}
        self.assertEqual(names, expected_names)
        for name in names:
            with open(os.path.join(dest, name), "rb") as f:
                data = f.read()
            if name.endswith(".manifest.json"):
                digest = "sha256:" + name[:-len(".manifest.json")]
                self.assertEqual(sha256(data), digest, name)
                self.assertEqual(data, next(i.manifest for i in images if i.digest == digest))
            else:
                digest = "sha256:" + name
                self.assertEqual(sha256(data), digest, name)
                self.assertEqual(data, self.images.blobs[digest])
                with open(os.path.join(self.web, REPOSITORY, "blobs", digest), "rb") as f:
                    self.assertEqual(f.read(), data, "differs from the published blob")

    def access_log(self):
        return self.httpd.read(os.path.join(self.httpd.dir, "access.log"))


class PullTests:
    """The pulls every mode must pass (mixed into an E2ECase)."""

    def test_inspect_single_image_by_tag(self):
        info = self.inspect("1.0")
        self.assertEqual(info["Digest"], self.images.single.digest)
        self.assertEqual(info["Architecture"], "amd64")
        self.assertEqual(info["Os"], "linux")
        self.assertEqual(info["Labels"]["test-label"], "1.0")
        self.assertEqual(info["Layers"], [self.images.single.layer_digest])
        self.assertEqual(sorted(info["RepoTags"]), ["1.0", "latest", "multi"])

    def test_raw_manifests_are_the_published_bytes(self):
        self.assertEqual(self.inspect("1.0", raw=True).encode(), self.images.single.manifest)
        self.assertEqual(self.inspect("latest", raw=True).encode(), self.images.multi.manifest)
        self.assertEqual(self.inspect(self.images.multi.digest, raw=True).encode(), self.images.multi.manifest)
        arm = self.images.multi.image("arm64")
        self.assertEqual(self.inspect(arm.digest, raw=True).encode(), arm.manifest)

    def test_inspect_list_tag_resolves_the_amd64_instance(self):
        info = self.inspect("latest", global_opts=["--override-arch", "amd64"])
        amd = self.images.multi.image("amd64")
        self.assertEqual(info["Architecture"], "amd64")
        self.assertEqual(info["Layers"], [amd.layer_digest])

    def test_inspect_list_tag_for_arm64(self):
        info = self.inspect("multi", global_opts=["--override-arch", "arm64", "--override-variant", "v8"])
        arm = self.images.multi.image("arm64")
        self.assertEqual(info["Architecture"], "arm64")
        self.assertEqual(info["Layers"], [arm.layer_digest])

    def test_list_tags(self):
        p = self.skopeo("list-tags", "docker://%s/%s" % (self.host(), REPO_ID))
        self.assertEqual(json.loads(p.stdout), {"Repository": "%s/%s" % (self.host(), REPO_ID),
                                                "Tags": ["1.0", "latest", "multi"]})

    def test_copy_single_image_by_tag(self):
        dest = self.copy("1.0")
        self.assertCopied(dest, self.images.single.manifest, [])

    def test_copy_single_image_by_digest(self):
        dest = self.copy(self.images.single.digest)
        self.assertCopied(dest, self.images.single.manifest, [])

    def test_copy_list_tag_gives_the_amd64_instance(self):
        dest = self.copy("latest", global_opts=["--override-arch", "amd64", "--override-os", "linux"])
        amd = self.images.multi.image("amd64")
        self.assertCopied(dest, amd.manifest, [])

    def test_copy_list_tag_override_arch_arm64(self):
        dest = self.copy("multi", global_opts=["--override-arch", "arm64"])
        arm = self.images.multi.image("arm64")
        self.assertCopied(dest, arm.manifest, [])

    def test_copy_list_with_all(self):
        dest = self.copy("latest", "--all")
        self.assertCopied(dest, self.images.multi.manifest, self.images.multi.images)

    def test_copy_list_by_digest_with_all(self):
        dest = self.copy(self.images.multi.digest, "--all")
        self.assertCopied(dest, self.images.multi.manifest, self.images.multi.images)

    def test_copy_instance_by_digest(self):
        arm = self.images.multi.image("arm64")
        dest = self.copy(arm.digest)
        self.assertCopied(dest, arm.manifest, [])

    def test_sync_then_publish_again_gives_the_same_tree(self):
        """skopeo sync writes one dir: per tag; crane-publish takes them
        as they are and publishes byte-identical files."""
        synced = tempfile.mkdtemp(prefix="sync-", dir=self.work)
        self.skopeo("sync", "--all", "--src", "docker", "--dest", "dir", "%s/%s" % (self.host(), REPO_ID), synced)
        tags = sorted((name.split(":", 1)[1], os.path.join(synced, name)) for name in os.listdir(synced))
        self.assertEqual([t for t, _ in tags], ["1.0", "latest", "multi"])
        web = os.path.join(self.work, "mirror-web")
        metadata = tempfile.mkdtemp(prefix="mirror-meta-", dir=self.work)
        publish(REPO_ID, "http://mirror.example/pub", web, metadata, tags)

        def files(top):
            out = {}
            for root, _dirs, names in os.walk(top):
                for name in names:
                    with open(os.path.join(root, name), "rb") as f:
                        out[os.path.relpath(os.path.join(root, name), top)] = f.read()
            return out

        self.assertEqual(files(os.path.join(web, REPOSITORY)), files(os.path.join(self.web, REPOSITORY)))

    def test_unknown_tag_fails(self):
        p = self.skopeo("inspect", self.ref("nope"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"manifest unknown")


class PodmanPull:
    """podman pull into a private store (vfs, its own root) when podman can
    run here."""

    _podman_ok = {}

    def podman_usable(self):
        """True, or why podman cannot run here (the skip reason)."""
        key = type(self)
        if key not in self._podman_ok:
            if not PODMAN:
                self._podman_ok[key] = "podman is not installed (apt-get install podman)"
            else:
                p = self.podman("info", check=False)
                self._podman_ok[key] = True if p.returncode == 0 else (
                    "podman cannot run here: " + (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1])
        return self._podman_ok[key]

    def podman(self, *args, check=True):
        store = os.path.join(self.work, "podman")
        cmd = [PODMAN, "--root", os.path.join(store, "root"), "--runroot", os.path.join(store, "run"),
               "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                           env=dict(os.environ, REGISTRY_AUTH_FILE=self.authfile))
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def podman_pull(self, ref, *extra):
        ok = self.podman_usable()
        if ok is not True:
            self.skipTest(ok)
        name = ref[len("docker://"):]
        self.podman("pull", "--signature-policy", self.policy, *self.client_args(), *extra, ref)
        p = self.podman("image", "inspect", name)
        info = json.loads(p.stdout)[0]
        self.podman("rmi", "-f", name, check=False)
        return info

    def test_podman_pull_single_image(self):
        info = self.podman_pull(self.ref("1.0"))
        self.assertEqual("sha256:" + info["Id"], self.images.single.config_digest)
        self.assertEqual(info["Digest"], self.images.single.digest)
        self.assertEqual(info["Architecture"], "amd64")

    def test_podman_pull_list_amd64(self):
        info = self.podman_pull(self.ref("latest"), "--arch", "amd64")
        amd = self.images.multi.image("amd64")
        self.assertEqual("sha256:" + info["Id"], amd.config_digest)
        self.assertEqual(info["Architecture"], "amd64")

    def test_podman_pull_list_arm64(self):
        info = self.podman_pull(self.ref("multi"), "--arch", "arm64")
        arm = self.images.multi.image("arm64")
        self.assertEqual("sha256:" + info["Id"], arm.config_digest)
        self.assertEqual(info["Architecture"], "arm64")


def start_dockerd(cls):
    """Starts one dockerd per class, with its own dirs and socket; None, or
    why it cannot run here."""
    if "dockerd_reason" in cls.__dict__:  # this class's own, not a base class's
        return cls.dockerd_reason
    cls.dockerd_reason = None
    if not DOCKERD or not DOCKER:
        cls.dockerd_reason = "dockerd is not installed (apt-get install docker.io)"
        return cls.dockerd_reason
    if os.geteuid() != 0:
        cls.dockerd_reason = "dockerd needs root here"
        return cls.dockerd_reason
    d = tempfile.mkdtemp(prefix="dockerd-", dir="/tmp")  # short: a unix socket path has a length limit
    cls.dockerd_dir = d
    cls.docker_sock = os.path.join(d, "docker.sock")
    log = open(os.path.join(d, "dockerd.log"), "w")
    cls.dockerd = subprocess.Popen(
        [DOCKERD, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
         "--data-root", os.path.join(d, "data"), "--exec-root", os.path.join(d, "exec"),
         "-H", "unix://" + cls.docker_sock, "--pidfile", os.path.join(d, "docker.pid")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    end = time.time() + 60
    while time.time() < end:
        if cls.dockerd.poll() is not None:
            break
        p = subprocess.run([DOCKER, "-H", "unix://" + cls.docker_sock, "version"], capture_output=True, text=True)
        if p.returncode == 0:
            return None
        time.sleep(0.5)
    with open(os.path.join(d, "dockerd.log")) as f:
        tail = [line for line in f.read().splitlines() if line.strip()][-3:]
    stop_dockerd(cls)
    cls.dockerd_reason = "dockerd cannot start here: " + " | ".join(tail)
    return cls.dockerd_reason


def stop_dockerd(cls):
    proc = cls.__dict__.get("dockerd")
    if proc is not None:
        if proc.poll() is None:
            terminate(proc)
        cls.dockerd = None
    d = cls.__dict__.get("dockerd_dir")
    if d:
        # vfs layers and the exec root may hold mounts only while dockerd runs
        subprocess.run(["umount", "-R", os.path.join(d, "exec")], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
        cls.dockerd_dir = None


class DockerClient:
    """docker through a dockerd of the class's own (docker.io), when one can
    start here; a test that needs it is skipped otherwise."""

    repo_id = REPO_ID  # the repository docker_pull pulls from

    def docker(self, *args, check=True):
        cmd = [DOCKER, "-H", "unix://" + type(self).docker_sock] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def docker_pull(self, ref):
        reason = start_dockerd(type(self))
        if reason:
            self.skipTest(reason)
        name = "%s/%s:%s" % (self.host(), self.repo_id, ref)
        self.docker("pull", name)
        info = json.loads(self.docker("image", "inspect", name).stdout)[0]
        self.docker("rmi", "-f", name, check=False)
        return info


class DockerPull(DockerClient):
    """docker pull of the Docker image and the manifest list."""

    def test_docker_pull_single_image(self):
        info = self.docker_pull("1.0")
        self.assertEqual(info["Id"], self.images.single.config_digest)
        self.assertEqual(info["RepoDigests"], ["%s/%s@%s" % (self.host(), REPO_ID, self.images.single.digest)])

    def test_docker_pull_list(self):
        info = self.docker_pull("latest")
        amd = self.images.multi.image("amd64")  # this machine's platform
        self.assertEqual(info["Id"], amd.config_digest)
        self.assertEqual(info["RepoDigests"], ["%s/%s@%s" % (self.host(), REPO_ID, self.images.multi.digest)])


# ---- the modes ----


class RedirectModeTest(PullTests, PodmanPull, DockerPull, E2ECase):
    """mod_crane answers 302s into /pub; the static files go out from there."""

    def test_requests_were_redirected(self):
        self.copy("1.0")
        log = self.access_log()
        blob = self.images.single.layer_digest
        self.assertRegex(log, r'"GET /v2/%s/blobs/%s HTTP/1.1" 302' % (REPO_ID, blob))
        self.assertRegex(log, r'"GET /pub/%s/blobs/%s HTTP/1.1" 200' % (REPOSITORY, blob))
        self.assertRegex(log, r'"GET /v2/%s/manifests/1.0 HTTP/1.1" 302' % REPO_ID)
        self.assertRegex(log, r'"GET /pub/%s/manifests/2/1.0 HTTP/1.1" 200' % REPOSITORY)


class ServeContentModeTest(PullTests, PodmanPull, DockerPull, E2ECase):
    """CraneServeContent On with CraneContentDirV2 at the web dir: no
    redirects, mod_crane sends the files (and Docker-Content-Digest)."""

    serve_content = True

    def test_requests_were_served_by_mod_crane(self):
        self.copy("1.0")
        log = self.access_log()
        blob = self.images.single.layer_digest
        self.assertRegex(log, r'"GET /v2/%s/blobs/%s HTTP/1.1" 200' % (REPO_ID, blob))
        self.assertRegex(log, r'"GET /v2/%s/manifests/1.0 HTTP/1.1" 200' % REPO_ID)
        self.assertNotIn("GET /pub/", log)

    def test_manifest_headers(self):
        reply = self.get("/v2/%s/manifests/latest" % REPO_ID, headers=["Accept: " + LIST])
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(reply.header("Content-Type"), LIST)
        self.assertEqual(reply.header("Docker-Content-Digest"), self.images.multi.digest)
        self.assertEqual(reply.body, self.images.multi.manifest)


HTPASSWD_USER = "puller"
HTPASSWD_PASSWORD = "pull-secret"


class BasicAuthMode:
    """Apache basic auth (htpasswd) in front of /v2/, serve-content mode so
    every byte goes through the authenticated location (mixed into an
    E2ECase; test_e2e_containerd.py and test_e2e_buildah.py use it too)."""

    serve_content = True
    extra_modules = ("alias", "auth_basic", "authn_file", "authn_core", "authz_user")
    extra_conf = """
<Location "/v2/">
    AuthType Basic
    AuthName "Crane registry"
    AuthBasicProvider file
    AuthUserFile {dir}/htpasswd
    Require valid-user
</Location>
"""
    # without credentials skopeo retries the 401 with an empty user name
    expect_log = (r"\[auth_basic:error\].*AH01617: user %s: authentication failure" % HTPASSWD_USER,
                  r"\[auth_basic:error\].*AH01618: user  not found")

    @classmethod
    def setUpClass(cls):
        if not HTPASSWD:
            raise unittest.SkipTest("htpasswd is not installed (apt-get install apache2-utils)")
        super().setUpClass()

    @classmethod
    def prepare(cls):
        super().prepare()
        path = os.path.join(cls.httpd.dir, "htpasswd")
        subprocess.run([HTPASSWD, "-cbB", "-C", "5", path, HTPASSWD_USER, HTPASSWD_PASSWORD], check=True,
                       capture_output=True)
        os.chmod(path, 0o644)


class BasicAuthTest(BasicAuthMode, PullTests, PodmanPull, E2ECase):
    """skopeo and podman with --creds, login and auth files."""

    def client_args(self):
        return ["--tls-verify=false", "--creds", "%s:%s" % (HTPASSWD_USER, HTPASSWD_PASSWORD)]

    def test_without_credentials_fails(self):
        p = self.skopeo("inspect", "--tls-verify=false", self.ref("1.0"), src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)unauthorized|authentication required|401")

    def test_wrong_password_fails(self):
        p = self.skopeo("inspect", "--tls-verify=false", "--creds", HTPASSWD_USER + ":wrong", self.ref("1.0"),
                        src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)unauthorized|authentication required|401")

    def test_copy_without_credentials_fails(self):
        dest = os.path.join(self.work, "denied")
        p = self.skopeo("copy", "--src-tls-verify=false", self.ref("latest"), "dir:" + dest, src_opts=False,
                        check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(dest, "manifest.json")))

    def test_login_then_pull_with_the_auth_file(self):
        authfile = os.path.join(self.work, "login.json")
        for tool in ("skopeo",) + (("podman",) if self.podman_usable() is True else ()):
            with self.subTest(login=tool):
                if os.path.exists(authfile):
                    os.unlink(authfile)
                p = subprocess.run([shutil.which(tool), "login", "--authfile", authfile, "--tls-verify=false",
                                    "-u", HTPASSWD_USER, "-p", HTPASSWD_PASSWORD, self.host()],
                                   capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
                self.assertEqual(p.returncode, 0, p.stderr)
                dest = os.path.join(self.work, "login-copy-" + tool)
                p = subprocess.run([SKOPEO, "--policy", self.policy, "copy", "--authfile", authfile,
                                    "--src-tls-verify=false", self.ref("1.0"), "dir:" + dest],
                                   capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertCopied(dest, self.images.single.manifest, [])

    def test_login_with_a_wrong_password_fails(self):
        p = subprocess.run([SKOPEO, "login", "--authfile", os.path.join(self.work, "bad-login.json"),
                            "--tls-verify=false", "-u", HTPASSWD_USER, "-p", "wrong", self.host()],
                           capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        self.assertNotEqual(p.returncode, 0)

    def test_podman_pull_without_credentials_fails(self):
        ok = self.podman_usable()
        if ok is not True:
            self.skipTest(ok)
        p = self.podman("pull", "--signature-policy", self.policy, "--tls-verify=false", self.ref("1.0"),
                        check=False)
        self.assertNotEqual(p.returncode, 0)


# ---- TLS with an entitlement client certificate ----

TLS_CONF = """
SSLEngine on
SSLCertificateFile {pki.server_cert}
SSLCertificateKeyFile {pki.server_key}
SSLCACertificateFile {pki.ca_cert}
SSLVerifyClient optional
SSLVerifyDepth 2
SSLSessionCache shmcb:{pki.dir}/scache(51200)
"""


def new_test_pki(work):
    """A test CA and client key in WORK/pki; skips the test where there is no openssl."""
    if not OPENSSL:
        raise unittest.SkipTest("openssl is not installed")
    os.makedirs(os.path.join(work, "pki"))
    return certs.TestPKI(os.path.join(work, "pki"))


def make_cert_dirs(pki):
    """skopeo/podman --cert-dir dirs (client.cert + client.key + ca.crt) from
    certs.TestPKI: `entitled` (v1 certificate for /pub/e2e-app),
    `entitled-v3` (v3 path tree for the same), `unentitled` (v1 for another
    path) and `ca-only` (no client certificate)."""
    certificates = {
        "entitled": pki.v1("entitled", ["/pub/e2e-app"]),
        "entitled-v3": pki.v3("entitled-v3", ["/pub/e2e-app"]),
        "unentitled": pki.v1("unentitled", ["/pub/somewhere-else"]),
        "ca-only": None,
    }
    for sub, cert in certificates.items():
        d = pki.path("dirs/" + sub)
        os.makedirs(d)
        shutil.copy(pki.ca_cert, os.path.join(d, "ca.crt"))
        if cert:
            shutil.copy(cert, os.path.join(d, "client.cert"))
            shutil.copy(pki.client_key, os.path.join(d, "client.key"))
    for root, dirs, files in os.walk(pki.dir):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return pki.path("dirs")


class TlsEntitlementTest(PullTests, PodmanPull, E2ECase):
    """mod_ssl with SSLVerifyClient optional; the repo is protected and
    skopeo presents an entitlement certificate from --cert-dir (and verifies
    the server against the test CA: no --tls-verify=false). Redirect mode:
    /pub is on the same TLS server."""

    protected = True
    extra_modules = ("alias",)

    @classmethod
    def setup_tls(cls):
        pki = new_test_pki(cls.work)
        cls.certs = make_cert_dirs(pki)
        cls.tls = TLS_CONF.format(pki=pki)

    @classmethod
    def prepare(cls):
        # an unprotected repo beside the protected one
        publish(OTHER_ID, cls.base_url, cls.web, cls.httpd.data, [("1.0", cls.images.single_dir)])

    def client_args(self):
        return ["--cert-dir", os.path.join(self.certs, "entitled")]

    def test_server_is_https(self):
        self.assertTrue(self.base_url.startswith("https://"))

    def test_without_certificate_the_repo_is_not_found(self):
        p = self.skopeo("inspect", "--cert-dir", os.path.join(self.certs, "ca-only"), self.ref("1.0"),
                        src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        # the NAME_UNKNOWN error of an unknown repository
        self.assertRegex(p.stderr, r"reading manifest 1\.0 in .*: name unknown")

    def test_unentitled_certificate_the_repo_is_not_found(self):
        p = self.skopeo("inspect", "--cert-dir", os.path.join(self.certs, "unentitled"), self.ref("1.0"),
                        src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"reading manifest 1\.0 in .*: name unknown")

    def test_copy_without_certificate_fails(self):
        dest = os.path.join(self.work, "denied")
        p = self.skopeo("copy", "--src-cert-dir", os.path.join(self.certs, "ca-only"), self.ref("latest"),
                        "dir:" + dest, src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(dest, "manifest.json")))

    def test_unprotected_repo_needs_no_certificate(self):
        p = self.skopeo("inspect", "--cert-dir", os.path.join(self.certs, "ca-only"), self.ref("1.0", OTHER_ID),
                        src_opts=False)
        self.assertEqual(json.loads(p.stdout)["Digest"], self.images.single.digest)

    def test_untrusted_server_is_refused(self):
        p = self.skopeo("inspect", self.ref("1.0"), src_opts=False, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)certificate|x509")

    def test_podman_pull_without_certificate_fails(self):
        ok = self.podman_usable()
        if ok is not True:
            self.skipTest(ok)
        p = self.podman("pull", "--signature-policy", self.policy, "--cert-dir",
                        os.path.join(self.certs, "ca-only"), self.ref("1.0"), check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_v3_entitlement_certificate_pulls(self):
        dest = os.path.join(self.work, "v3")
        self.skopeo("copy", "--all", "--src-cert-dir", os.path.join(self.certs, "entitled-v3"),
                    self.ref("latest"), "dir:" + dest, src_opts=False)
        self.assertCopied(dest, self.images.multi.manifest, self.images.multi.images)


class TlsEntitlementServeContentTest(TlsEntitlementTest):
    """The same over TLS, with mod_crane serving the files itself."""

    serve_content = True


# ---- publishing ----


class RepublishTest(E2ECase):
    """Republishing while httpd serves: the new tags appear, stale files go."""

    def test_republish_replaces_tags_and_files(self):
        self.assertEqual(self.inspect("1.0", raw=True).encode(), self.images.single.manifest)
        new = image_builder.Image("amd64", label="2.0")
        new_dir = image_builder.write_dir(new, os.path.join(self.work, "src-2.0"))
        publish(REPO_ID, self.base_url, self.web, self.httpd.data, [("2.0", new_dir)])
        repo = os.path.join(self.web, REPOSITORY)
        self.assertEqual(sorted(os.listdir(os.path.join(repo, "blobs"))), sorted(new.blobs))
        self.assertEqual(sorted(os.listdir(os.path.join(repo, "manifests", "2"))), sorted(["2.0", new.digest]))
        self.assertEqual(os.listdir(os.path.join(repo, "manifests", "list")), [])
        self.assertEqual([n for n in os.listdir(self.web) if n.startswith(".")], [".errors"])
        self.images.blobs.update(new.blobs)

        def pulled():
            self.assertCopied(self.copy("2.0"), new.manifest, [])

        eventually(pulled)
        p = self.skopeo("list-tags", "docker://%s/%s" % (self.host(), REPO_ID))
        self.assertEqual(json.loads(p.stdout)["Tags"], ["2.0"])
        self.assertNotEqual(self.skopeo("inspect", self.ref("1.0"), check=False).returncode, 0)

    def test_demo_bundle_publishes_and_pulls(self):
        demo = os.path.join(REPO, "demo", "image")
        publish("demo/tiny", self.base_url, self.web, self.httpd.data, [("latest", demo)])
        with open(os.path.join(demo, "manifest.json"), "rb") as f:
            list_bytes = f.read()
        listing = json.loads(list_bytes)
        self.assertEqual(sorted(m["platform"]["architecture"] for m in listing["manifests"]), ["amd64", "arm64"])

        def pulled():
            dest = self.copy("latest", "--all", repo="demo/tiny")
            with open(os.path.join(dest, "manifest.json"), "rb") as f:
                self.assertEqual(f.read(), list_bytes)
            for name in os.listdir(dest):
                if name not in ("manifest.json", "version"):
                    with open(os.path.join(dest, name), "rb") as f:
                        data = f.read()
                    self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(),
                                     "sha256:" + name.replace(".manifest.json", ""))
                    with open(os.path.join(demo, name), "rb") as f:
                        self.assertEqual(f.read(), data)
            return dest

        dest = eventually(pulled)
        self.assertEqual(sorted(os.listdir(dest)), sorted(os.listdir(demo)))

    def test_corrupt_input_publishes_nothing(self):
        bad = os.path.join(self.work, "src-bad")
        shutil.copytree(self.images.single_dir, bad)
        layer = os.path.join(bad, self.images.single.layer_digest[len("sha256:"):])
        with open(layer, "r+b") as f:
            data = bytearray(f.read())
            data[10] ^= 0xFF
            f.seek(0)
            f.write(data)
        before = sorted(os.listdir(self.httpd.data))
        tree_before = sorted(os.walk(self.web))
        p = subprocess.run([PUBLISH, "--repo-id", "e2e/bad", "--base-url", self.base_url, "--out", self.web,
                            "--metadata", self.httpd.data, "1.0=" + bad], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"^crane-publish: error: .*hashes to sha256:[0-9a-f]{64}")
        self.assertEqual(sorted(os.listdir(self.httpd.data)), before)
        self.assertEqual(sorted(os.walk(self.web)), tree_before)
        self.assertFalse(os.path.exists(os.path.join(self.web, "e2e-bad")))


if __name__ == "__main__":
    unittest.main()
