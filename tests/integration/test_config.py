"""Configuration through a real httpd: CraneConfig INI files, native
directives, CRANE_CONFIG_PATH, per-vhost overrides, and errors that fail
`httpd -t` naming the file, the line and the key."""

import os
import re
import shutil
import unittest

from harness import Httpd, TEST_DATA

METADATA = os.path.join(TEST_DATA, "metadata")


class ConfigErrors(unittest.TestCase):
    def check_fails(self, expected, **kw):
        h = Httpd(data_src=METADATA, **kw)
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            self.assertRegex(out, expected)
        finally:
            h.cleanup()
        return out

    def test_bad_integer_in_ini_names_file_line_and_key(self):
        out = self.check_fails(r"crane\.ini:3: \[general\] data_dir_polling_interval: 'often' is not an integer",
                               crane_ini="[general]\ndata_dir: {data}\ndata_dir_polling_interval: often\n")
        self.assertRegex(out, r"Syntax error on line \d+ of .*httpd\.conf")

    def test_bad_boolean_in_ini(self):
        self.check_fails(r"crane\.ini:2: \[serve_content\] enable: 'sometimes' is not a boolean",
                         crane_ini="[serve_content]\nenable: sometimes\n")

    def test_unknown_key_in_ini(self):
        self.check_fails(r"crane\.ini:4: \[cdn\] url_auth_sekret: unknown key",
                         crane_ini="[general]\ndata_dir: {data}\n[cdn]\nurl_auth_sekret: 00\n")

    def test_non_hex_secret_in_ini(self):
        self.check_fails(r"crane\.ini:2: \[cdn\] url_auth_secret: must be an even number of hex digits",
                         crane_ini="[cdn]\nurl_auth_secret: xyz1\n")

    def test_unknown_hmac_algorithm(self):
        self.check_fails(r"\[cdn\] url_auth_algo: 'sha384' is not a supported HMAC algorithm",
                         crane_ini="[cdn]\nurl_auth_algo: sha384\n")

    def test_solr_url_without_placeholder(self):
        self.check_fails(r"\[solr\] url: 'http://127.0.0.1:9/solr' has no \{0\} placeholder",
                         crane_ini="[solr]\nurl: http://127.0.0.1:9/solr\n")

    def test_missing_explicit_config_file(self):
        h = Httpd(data_src=METADATA, conf="CraneConfig {dir}/does-not-exist.conf")
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0)
            self.assertIn("does-not-exist.conf: cannot be read", out)
        finally:
            h.cleanup()

    def test_bad_native_directive_names_its_line(self):
        h = Httpd(data_src=METADATA, conf="\n\nCranePollInterval sometimes")
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0)
            with open(h.conf_path) as f:
                line = [i + 1 for i, l in enumerate(f) if l.startswith("CranePollInterval sometimes")][0]
            self.assertIn("Syntax error on line %d of %s" % (line, h.conf_path), out)
            self.assertIn("CranePollInterval: [general] data_dir_polling_interval: 'sometimes' is not an integer",
                          out)
        finally:
            h.cleanup()

    def test_bad_file_from_crane_config_path_fails_the_config_test(self):
        h = Httpd(data_src=METADATA, conf="")
        try:
            bad = os.path.join(h.dir, "env.conf")
            with open(bad, "w") as f:
                f.write("[general]\ndebug: kind of\n")
            h.use_fallback_config(bad)
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            # CRANE0005: the fallback INI file is bad, naming its file, line and key
            self.assertRegex(out, r"CRANE0005: mod_crane: .*/env\.conf:2: \[general\] debug: ")
        finally:
            h.cleanup()

    def test_valid_config_passes(self):
        h = Httpd(data_src=METADATA, crane_ini="[general]\ndata_dir: {data}\n[cdn]\nurl_auth_secret: %s\n" % ("0a" * 16))
        try:
            code, out = h.config_test()
            self.assertEqual(code, 0, out)
            self.assertIn("Syntax OK", out)
            self.assertNotRegex(out, r"CRANE\d{4}: ")  # no mod_crane line at all
        finally:
            h.cleanup()

    def directive_line(self, h, text):
        with open(h.conf_path) as f:
            return [i + 1 for i, l in enumerate(f) if l.startswith(text)][0]

    # ---- values that would break headers, URLs or paths later ----

    def test_continuation_line_in_endpoint(self):
        self.check_fails(r"crane\.ini:4: \[general\] endpoint: contains the control character 0x0A "
                         r"\(an indented continuation line\?\)",
                         crane_ini="[general]\ndata_dir: {data}\nendpoint: reg.example.com\n    :5000\n")

    def test_control_character_in_cdn_rewrite(self):
        self.check_fails(r"crane\.ini:3: \[cdn\] url_replace: contains the control character 0x0A",
                         crane_ini="[cdn]\nurl_replace: cdn.example.com\n\t/edge\nurl_match: origin\n")

    def test_auth_param_must_be_a_plain_query_name(self):
        h = Httpd(data_src=METADATA, conf='CraneCDNAuthParam "a&b=c#d"')
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            self.assertIn("Syntax error on line %d of %s" % (self.directive_line(h, "CraneCDNAuthParam"),
                                                             h.conf_path), out)
            self.assertIn("CraneCDNAuthParam: [cdn] url_auth_param: 'a&b=c#d' is not a plain query parameter "
                          "name (letters, digits, '-', '.', '_', '~')", out)
        finally:
            h.cleanup()

    def test_search_urls_need_an_http_scheme(self):
        self.check_fails(r"crane\.ini:2: \[gsa\] url: 'gsa\.example\.com/search' is not an http:// or https:// URL",
                         crane_ini="[gsa]\nurl: gsa.example.com/search\n")
        h = Httpd(data_src=METADATA, conf="CraneSolrURL solr:8983/select?q={0}")
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            self.assertIn("CraneSolrURL: [solr] url: 'solr:8983/select?q={0}' is not an http:// or https:// URL",
                          out)
        finally:
            h.cleanup()

    def test_url_match_without_url_replace_names_the_directive(self):
        h = Httpd(data_src=METADATA, conf="\nCraneCDNURLMatch origin.example.com")
        try:
            code, out = h.config_test()
            self.assertNotEqual(code, 0, out)
            # CRANE0002: a configuration error, naming the file, line, directive and key
            self.assertIn("CRANE0002: mod_crane: %s:%d: CraneCDNURLMatch: [cdn] url_match "
                          % (h.conf_path, self.directive_line(h, "CraneCDNURLMatch")), out)
        finally:
            h.cleanup()

    def test_url_replace_without_url_match_names_the_ini_line(self):
        self.check_fails(r"CRANE0002: mod_crane: .*crane\.ini:3: \[cdn\] url_replace ",
                         crane_ini="[cdn]\n\nurl_replace: cdn.example.com\n")

    def test_match_and_replace_from_ini_and_directive_together_pass(self):
        h = Httpd(data_src=METADATA, crane_ini="[general]\ndata_dir: {data}\n[cdn]\nurl_match: origin\n",
                  conf="CraneCDNURLReplace cdn")
        try:
            code, out = h.config_test()
            self.assertEqual(code, 0, out)
        finally:
            h.cleanup()

    # ---- warnings: the configuration works, but probably not as meant ----

    def test_short_cdn_secret_warns(self):
        ini = "[general]\ndata_dir: {data}\n[cdn]\nurl_auth_secret: 0a\n"
        # CRANE0003: a configuration warning, naming the file, line and key
        warning = r"CRANE0003: mod_crane: .*crane\.ini:4: \[cdn\] url_auth_secret: "
        h = Httpd(data_src=METADATA, crane_ini=ini, expect_log=[warning])
        code, out = h.config_test()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, warning)
        with h:
            pass
        self.assertRegex(h.log(), r"\[crane:warn\] .*" + warning)

    def test_missing_content_dir_warns_when_serving_content(self):
        conf = "CraneServeContent On\nCraneContentDirV1 {dir}/v1-missing\nCraneContentDirV2 {dir}/htdocs"
        h = Httpd(data_src=METADATA, conf=conf, expect_log=[r"CRANE0004: .*content_dir_v1"])
        line = self.directive_line(h, "CraneContentDirV1")
        # CRANE0004: a content dir that is not a directory
        warning = ("CRANE0004: mod_crane: %s:%d: CraneContentDirV1: [serve_content] content_dir_v1: '%s/v1-missing' "
                   % (h.conf_path, line, h.dir))
        code, out = h.config_test()
        self.assertEqual(code, 0, out)
        self.assertIn(warning, out)
        self.assertNotIn("content_dir_v2", out)
        with h:
            pass
        warnings = [l for l in h.log().splitlines() if "[crane:warn]" in l]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(warning, warnings[0])

    def test_missing_content_dir_is_fine_without_serve_content(self):
        h = Httpd(data_src=METADATA, conf="CraneContentDirV1 {dir}/v1-missing")
        try:
            code, out = h.config_test()
            self.assertEqual(code, 0, out)
            self.assertNotRegex(out, r"CRANE\d{4}: ")  # no mod_crane line at all
        finally:
            h.cleanup()


class Sources(unittest.TestCase):
    """Where settings come from, checked by what the server answers."""

    def test_ini_file_settings_are_used(self):
        with Httpd(data_src=METADATA, crane_ini="[general]\ndata_dir: {data}\nendpoint: from-ini:1234\n") as h:
            r = h.curl("/v1/repositories/busybox/images")
            self.assertEqual(r.header("X-Docker-Endpoints"), "from-ini:1234")

    def test_native_directive_overrides_the_ini_file(self):
        with Httpd(data_src=METADATA, crane_ini="[general]\ndata_dir: {data}\nendpoint: from-ini:1234\n",
                   conf="CraneEndpoint from-directive:99") as h:
            r = h.curl("/v1/repositories/busybox/images")
            self.assertEqual(r.header("X-Docker-Endpoints"), "from-directive:99")

    def test_crane_config_path_is_used_without_crane_config(self):
        h = Httpd(data_src=METADATA)
        self.addCleanup(h.cleanup)
        ini = os.path.join(h.dir, "env.conf")
        with open(ini, "w") as f:
            f.write("[general]\ndata_dir: %s\nendpoint: from-env:7\n" % h.data)
        h.use_fallback_config(ini)
        with h:
            r = h.curl("/v1/repositories/busybox/images")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("X-Docker-Endpoints"), "from-env:7")

    def test_crane_debug_environment_raises_the_log_level(self):
        with Httpd(data_src=METADATA, loglevel="info", env={"CRANE_DEBUG": "true"}) as h:
            h.curl("/v2/")
        self.assertRegex(h.log(), r"\[crane:debug\].*CRANE0007: ")  # the effective configuration

    def test_without_debug_no_debug_lines(self):
        with Httpd(data_src=METADATA, loglevel="info") as h:
            h.curl("/v2/")
        self.assertNotIn("[crane:debug]", h.log())

    def test_relative_dirs_are_relative_to_server_root(self):
        # ServerRoot is the server's temporary dir; the test runs elsewhere
        h = Httpd(data_src=METADATA, conf="CraneDataDir metadata\nCraneServeContent On\n"
                                          "CraneContentDirV1 content/v1\nCraneContentDirV2 ./content/v2/")
        self.addCleanup(h.cleanup)
        self.assertNotEqual(os.path.realpath(os.getcwd()), os.path.realpath(h.dir))
        files = {"content/v2/zoo-pulp/blobs/sha256:0101010101010101010101010101010101010101010101010101010101010101": b"blob\n",
                 "content/v1/busybox-pulp/d4e5f6/layer": b"layer\n"}
        for name, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(h.dir, name)), exist_ok=True)
            with open(os.path.join(h.dir, name), "wb") as f:
                f.write(data)
        with h:
            r = h.curl("/v2/zoo/blobs/sha256:0101010101010101010101010101010101010101010101010101010101010101")
            self.assertEqual((r.status, r.body), (200, b"blob\n"))
            r = h.curl("/v1/images/d4e5f6/layer")
            self.assertEqual((r.status, r.body), (200, b"layer\n"))

    def test_virtual_hosts_serve_their_own_data_dirs_and_inherit_the_rest(self):
        other = os.path.join(TEST_DATA, "metadata_bad")
        h = Httpd(data_src=METADATA, conf="""
CraneEndpoint inherited:1
<VirtualHost 127.0.0.1:{port}>
    ServerName main.test
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName other.test
    CraneDataDir {dir}/other
</VirtualHost>
""", expect_log=[r"CRANE0104: .*/other/"])  # its bad files, never loaded
        self.addCleanup(h.cleanup)
        shutil.copytree(other, os.path.join(h.dir, "other"))
        with h:
            main = h.curl("/v2/zoo/tags/list", headers=["Host: main.test"])
            self.assertEqual(main.status, 302)
            self.assertEqual(h.curl("/v2/good-among-bad/tags/list", headers=["Host: main.test"]).status, 404)
            o = h.curl("/v2/good-among-bad/tags/list", headers=["Host: other.test"])
            self.assertEqual(o.status, 302)
            self.assertEqual(o.header("Location"), "http://cdn.example.com/good/tags/list")
            self.assertEqual(h.curl("/v2/zoo/tags/list", headers=["Host: other.test"]).status, 404)
            r = h.curl("/v1/repositories/busybox/images", headers=["Host: main.test"])
            self.assertEqual(r.header("X-Docker-Endpoints"), "inherited:1")


if __name__ == "__main__":
    unittest.main()
