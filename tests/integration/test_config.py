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
            self.assertIn("env.conf:2: [general] debug: 'kind of' is not a boolean", out)
        finally:
            h.cleanup()

    def test_valid_config_passes(self):
        h = Httpd(data_src=METADATA, crane_ini="[general]\ndata_dir: {data}\n[cdn]\nurl_auth_secret: 0a0b\n")
        try:
            code, out = h.config_test()
            self.assertEqual(code, 0, out)
            self.assertIn("Syntax OK", out)
        finally:
            h.cleanup()


class Sources(unittest.TestCase):
    """Where settings come from, checked by what the server answers."""

    def run_server(self, **kw):
        h = Httpd(data_src=METADATA, **kw)
        self.addCleanup(h.cleanup)
        h.start()
        return h

    def stop(self, h):
        bad = h.stop()
        self.assertEqual(bad, [])

    def test_ini_file_settings_are_used(self):
        h = self.run_server(crane_ini="[general]\ndata_dir: {data}\nendpoint: from-ini:1234\n")
        r = h.curl("/v1/repositories/busybox/images")
        self.assertEqual(r.header("X-Docker-Endpoints"), "from-ini:1234")
        self.stop(h)

    def test_native_directive_overrides_the_ini_file(self):
        h = self.run_server(crane_ini="[general]\ndata_dir: {data}\nendpoint: from-ini:1234\n",
                            conf="CraneEndpoint from-directive:99")
        r = h.curl("/v1/repositories/busybox/images")
        self.assertEqual(r.header("X-Docker-Endpoints"), "from-directive:99")
        self.stop(h)

    def test_crane_config_path_is_used_without_crane_config(self):
        h = Httpd(data_src=METADATA)
        self.addCleanup(h.cleanup)
        ini = os.path.join(h.dir, "env.conf")
        with open(ini, "w") as f:
            f.write("[general]\ndata_dir: %s\nendpoint: from-env:7\n" % h.data)
        h.use_fallback_config(ini)
        h.start()
        r = h.curl("/v1/repositories/busybox/images")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Docker-Endpoints"), "from-env:7")
        self.stop(h)

    def test_crane_debug_environment_raises_the_log_level(self):
        h = Httpd(data_src=METADATA, loglevel="info", env={"CRANE_DEBUG": "true"})
        self.addCleanup(h.cleanup)
        h.start()
        h.curl("/v2/")
        self.stop(h)
        self.assertRegex(h.log(), r"\[crane:debug\].*effective configuration")

    def test_without_debug_no_debug_lines(self):
        h = Httpd(data_src=METADATA, loglevel="info")
        self.addCleanup(h.cleanup)
        h.start()
        h.curl("/v2/")
        self.stop(h)
        self.assertNotIn("[crane:debug]", h.log())

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
""", expect_log=[r"metadata file .*/other/.* skipped"])
        self.addCleanup(h.cleanup)
        shutil.copytree(other, os.path.join(h.dir, "other"))
        h.start()
        main = h.curl("/v2/zoo/tags/list", headers=["Host: main.test"])
        self.assertEqual(main.status, 302)
        self.assertEqual(h.curl("/v2/good-among-bad/tags/list", headers=["Host: main.test"]).status, 404)
        o = h.curl("/v2/good-among-bad/tags/list", headers=["Host: other.test"])
        self.assertEqual(o.status, 302)
        self.assertEqual(o.header("Location"), "http://cdn.example.com/good/tags/list")
        self.assertEqual(h.curl("/v2/zoo/tags/list", headers=["Host: other.test"]).status, 404)
        r = h.curl("/v1/repositories/busybox/images", headers=["Host: main.test"])
        self.assertEqual(r.header("X-Docker-Endpoints"), "inherited:1")
        self.stop(h)


if __name__ == "__main__":
    unittest.main()
