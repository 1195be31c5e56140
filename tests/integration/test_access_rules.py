"""Access rules on registry URLs: the <Directory>, <DirectoryMatch>,
<Files>, <FilesMatch> sections and .htaccess files (per AllowOverride) of
the path a crane URL maps to under DocumentRoot apply to it exactly as they
do to a static file, and files under DocumentRoot never change crane's
answer. Run under both MPMs (CRANE_MPM=event|prefork).
"""

import os
import subprocess

from harness import HttpdTestCase, ACCEPT_BOTH, API_VERSION, JSON

CDN = "http://cdn.example.com/pulp/docker/v2"
ZOO = CDN + "/zoo/"
BLOB = "sha256:" + "ab" * 32
ACCEPT_JSON = "Accept: application/json"
USER = "puller"
PASSWORD = "pull-secret"
REALM = 'Basic realm="Crane registry"'
AUTH_MODULES = ("auth_basic", "authn_file", "authn_core", "authz_user")

# (path, request headers, status, body or None, headers) with access granted
V2_URLS = [
    ("/v2/", [], 200, b"{}", dict(API_VERSION, **{"Content-Type": JSON})),
    ("/v2/zoo/manifests/2.0", [ACCEPT_BOTH], 302, b"", dict(API_VERSION, Location=ZOO + "manifests/2/2.0")),
    ("/v2/zoo/blobs/" + BLOB, [], 302, b"", dict(API_VERSION, Location=ZOO + "blobs/" + BLOB)),
]
OTHER_URLS = [
    ("/v1/_ping", [], 200, b"true", {"Content-Type": JSON}),
    ("/v1/repositories/busybox/tags", [], 200, b'{"1.0": "a1b2c3", "latest": "d4e5f6"}',
     {"Content-Type": JSON}),
    ("/crane/repositories/v2", [ACCEPT_JSON], 200, None, {"Content-Type": JSON}),
]
URLS = V2_URLS + OTHER_URLS

STATIC = "/static.txt"
# a static file next to the registry, served by core's default handler
STATIC_CONF = """
<Location "/static.txt">
    SetHandler None
</Location>
"""

BASIC_AUTH = """AuthType Basic
AuthName "Crane registry"
AuthBasicProvider file
AuthUserFile {dir}/htpasswd
Require valid-user
"""

WRONG_PASSWORD_LOG = r"\[auth_basic:error\].*AH01617: user %s: authentication failure" % USER
DENIED_LOG = r"\[authz_core:error\].*AH01630: client denied by server configuration"


def credentials(password=PASSWORD):
    return ["--user", "%s:%s" % (USER, password)]


class AccessCase(HttpdTestCase):
    """An httpd whose server dir gets `files` ({relative path: text}, {dir}
    substituted) and an htpasswd file with USER before it starts."""

    extra_modules = AUTH_MODULES
    files = {}

    @classmethod
    def before_start(cls):
        files = dict(cls.files)
        files["htdocs/static.txt"] = "static\n"
        for rel, text in files.items():
            cls.write(rel, text.replace("{dir}", cls.httpd.dir))
        line = subprocess.run(["htpasswd", "-nbB", "-C", "5", USER, PASSWORD], check=True,
                              capture_output=True, text=True).stdout.strip()
        cls.write("htpasswd", line + "\n")

    @classmethod
    def write(cls, rel, text):
        path = os.path.join(cls.httpd.dir, rel)
        # the children may run as www-data
        d = cls.httpd.dir
        for part in os.path.dirname(rel).split("/") if os.path.dirname(rel) else ():
            d = os.path.join(d, part)
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def assertGranted(self, urls, extra=()):
        for path, headers, status, body, want in urls:
            with self.subTest(path=path):
                self.assertReply(self.get(path, headers=headers, extra=extra), status, body=body, headers=want)

    def assertRefused(self, urls, status, extra=(), headers=None):
        for path, req_headers, *_ in urls:
            with self.subTest(path=path):
                reply = self.get(path, headers=req_headers, extra=extra)
                want = dict(headers or {})
                if path.startswith("/v2/"):
                    want.update(API_VERSION)
                self.assertReply(reply, status, headers=want,
                                 absent=() if path.startswith("/v2/") else ("Docker-Distribution-API-Version",))
                self.assertIsNone(reply.header("Location"), reply)


class HtaccessBasicAuthTest(AccessCase):
    """Basic auth from an .htaccess in DocumentRoot (AllowOverride AuthConfig)."""

    conf = STATIC_CONF + """
<Directory "{dir}/htdocs">
    AllowOverride AuthConfig
</Directory>
"""
    files = {"htdocs/.htaccess": BASIC_AUTH}
    expect_log = (WRONG_PASSWORD_LOG,)
    urls = URLS

    def test_static_file_needs_credentials(self):
        self.assertReply(self.get(STATIC), 401, headers={"WWW-Authenticate": REALM})
        self.assertReply(self.get(STATIC, extra=credentials()), 200, body=b"static\n")

    def test_registry_urls_without_credentials_answer_401(self):
        self.assertRefused(self.urls, 401, headers={"WWW-Authenticate": REALM})

    def test_registry_urls_with_a_wrong_password_answer_401(self):
        self.assertRefused(self.urls, 401, extra=credentials("wrong"), headers={"WWW-Authenticate": REALM})

    def test_registry_urls_with_credentials_answer(self):
        self.assertGranted(self.urls, extra=credentials())

    def test_head_without_credentials_answers_401(self):
        reply = self.get("/v2/zoo/manifests/2.0", method="HEAD")
        self.assertReply(reply, 401, body=b"", headers=dict(API_VERSION, **{"WWW-Authenticate": REALM}))


class HtaccessBasicAuthOnV2LocationTest(HtaccessBasicAuthTest):
    """The same with `SetHandler crane` on <Location "/v2"> only."""

    location = "/v2"
    urls = V2_URLS


class AllowOverrideNoneTest(AccessCase):
    """AllowOverride None: the .htaccess is not even read (its bad line
    would answer 500)."""

    conf = STATIC_CONF + """
<Directory "{dir}/htdocs">
    AllowOverride None
</Directory>
"""
    files = {"htdocs/.htaccess": BASIC_AUTH + "NotADirective at all\n"}

    def test_registry_urls_answer_as_without_htaccess(self):
        self.assertGranted(URLS)

    def test_static_file_answers_as_without_htaccess(self):
        self.assertReply(self.get(STATIC), 200, body=b"static\n")


class DirectoryRequireTest(AccessCase):
    """A <Directory DocumentRoot> Require that denies this client."""

    conf = STATIC_CONF + """
<Directory "{dir}/htdocs">
    Require ip 192.0.2.1
</Directory>
"""
    expect_log = (DENIED_LOG,)

    def test_static_file_is_forbidden(self):
        self.assertReply(self.get(STATIC), 403)

    def test_registry_urls_are_forbidden(self):
        self.assertRefused(URLS, 403)


class LocationRequireTest(AccessCase):
    """A stock `<Directory /> Require all denied` refuses the registry like
    any file under a DocumentRoot it covers; a crane <Location> with its own
    Require replaces it (AuthMerging Off)."""

    conf = """
<Directory "/">
    Require all denied
</Directory>
<Location "/v2">
    Require all granted
</Location>
"""
    expect_log = (DENIED_LOG,)

    def test_location_with_require_answers(self):
        self.assertGranted(V2_URLS)

    def test_other_urls_are_forbidden(self):
        self.assertRefused(OTHER_URLS, 403)


class FilesMatchTest(AccessCase):
    """<Files>/<FilesMatch> match the path a URL maps to: DocumentRoot/v2
    (the first missing component) for every /v2/ URL, DocumentRoot/v1 for
    /v1/ URLs."""

    conf = STATIC_CONF + """
<FilesMatch "^v2$">
    Require all denied
</FilesMatch>
<Files "crane">
    Require all denied
</Files>
"""
    expect_log = (DENIED_LOG,)

    def test_v2_and_crane_urls_are_forbidden(self):
        self.assertRefused(V2_URLS + [u for u in OTHER_URLS if u[0].startswith("/crane/")], 403)

    def test_v1_urls_stay_open(self):
        self.assertGranted([u for u in OTHER_URLS if u[0].startswith("/v1/")])


class RepositoryDirectoryTest(AccessCase):
    """Rules in directories under DocumentRoot/v2 that match /v2/NAME/...:
    an .htaccess that denies, one that asks for credentials, a
    <DirectoryMatch>; the other repositories stay open."""

    conf = STATIC_CONF + """
<Directory "{dir}/htdocs">
    AllowOverride AuthConfig
</Directory>
<DirectoryMatch "/htdocs/v2/v2repo/">
    Require all denied
</DirectoryMatch>
"""
    files = {
        "htdocs/v2/zoo/.htaccess": "Require all denied\n",
        "htdocs/v2/ns/.htaccess": BASIC_AUTH,
        "htdocs/v2/v2repo/README": "a directory for <DirectoryMatch>\n",
    }
    expect_log = (DENIED_LOG,)

    def test_denied_repository(self):
        self.assertRefused([u for u in V2_URLS if u[0].startswith("/v2/zoo/")], 403)

    def test_directory_match_repository(self):
        self.assertRefused([("/v2/v2repo/tags/list", [])], 403)

    def test_repository_behind_basic_auth(self):
        self.assertRefused([("/v2/ns/app/tags/list", [])], 401, headers={"WWW-Authenticate": REALM})
        self.assertReply(self.get("/v2/ns/app/tags/list", extra=credentials()), 302, body=b"",
                         headers=dict(API_VERSION, Location=CDN + "/ns-app/tags/list"))

    def test_other_repositories_stay_open(self):
        self.assertReply(self.get("/v2/v3repo/tags/list"), 302, body=b"",
                         headers=dict(API_VERSION, Location=CDN + "/v3repo/tags/list"))
        self.assertReply(self.get("/v2/nope/tags/list"), 404, headers=API_VERSION)

    def test_base_and_other_apis_stay_open(self):
        self.assertGranted([u for u in URLS if u[0] == "/v2/"] + OTHER_URLS)


class FilesUnderDocumentRootTest(AccessCase):
    """Files and directories at the registry's paths, with mod_dir
    (DirectoryIndex, trailing-slash redirect), MultiViews and mod_mime
    types in play, do not change crane's answers."""

    extra_modules = AUTH_MODULES + ("dir", "negotiation")
    conf = STATIC_CONF + """
DirectoryIndex index.html
<Directory "{dir}/htdocs">
    Options +MultiViews
    AllowOverride All
</Directory>
"""
    files = {
        "htdocs/v2/index.html": "<p>not the registry</p>\n",
        "htdocs/v2/zoo/manifests/2.0.html": "<p>not a manifest</p>\n",
        "htdocs/v2/zoo/.htaccess": "AddType text/html .abc\nAddEncoding gzip .abc\nAddLanguage fr .abc\n",
        "htdocs/v2/zoo/manifests/latest.abc": "not a manifest\n",
        "htdocs/v1.html": "<p>not v1</p>\n",
        "htdocs/crane.html": "<p>not crane</p>\n",
    }

    def test_answers_are_crane_answers(self):
        self.assertGranted(URLS)

    def test_redirects_carry_no_type_from_the_file(self):
        for path, headers, *_ in V2_URLS[1:] + [("/v2/zoo/manifests/latest.abc", [])]:
            with self.subTest(path=path):
                reply = self.get(path, headers=headers)
                self.assertReply(reply, 302, absent=("Content-Type", "Content-Encoding", "Content-Language"))

    def test_v2_without_slash_is_not_redirected_by_mod_dir(self):
        self.assertReply(self.get("/v2"), 200, body=b"{}", headers=dict(API_VERSION, **{"Content-Type": JSON}))

    def test_unknown_path_under_the_directory_is_crane_404(self):
        reply = self.get("/v2/index.html")
        self.assertReply(reply, 404, headers=dict(API_VERSION, **{"Content-Type": JSON}))


if __name__ == "__main__":
    import unittest
    unittest.main()
