// crane.conf parsing: every key, its default, its validation, and errors
// that name the file, line and key.
#include <catch2/catch.hpp>

#include "crane/config.h"

using namespace crane;

TEST_CASE("defaults match Crane's documented defaults", "[config]") {
    Config c;
    CHECK_FALSE(c.debug);
    CHECK(c.data_dir == "/var/lib/crane/metadata/");
    CHECK(c.data_dir_polling_interval == 60);
    CHECK(c.endpoint.empty());
    CHECK(c.url_match.empty());
    CHECK(c.url_replace.empty());
    CHECK(c.url_auth_secret.empty());
    CHECK(c.url_auth_ttl == 300);
    CHECK(c.url_auth_param == "_auth_");
    CHECK(c.url_auth_algo == "sha256");
    CHECK_FALSE(c.serve_content);
    CHECK(c.content_dir_v1 == "/var/www/pub/docker/v1/web/");
    CHECK(c.content_dir_v2 == "/var/www/pub/docker/v2/web/");
    CHECK(c.use_x_sendfile);
    CHECK(c.gsa_url.empty());
    CHECK(c.solr_url.empty());
}

TEST_CASE("every INI key reads into the config", "[config]") {
    auto r = parse_ini_text(
        "[general]\n"
        "debug: true\n"
        "data_dir = /srv/crane\n"
        "data_dir_polling_interval: 5\n"
        "endpoint: reg.example.com:5000\n"
        "[cdn]\n"
        "url_match: cdn-a.example.com\n"
        "url_replace: cdn-b.example.com\n"
        "url_auth_secret: 00ff\n"
        "url_auth_ttl: 60\n"
        "url_auth_param: token\n"
        "url_auth_algo: SHA1\n"
        "[serve_content]\n"
        "enable: yes\n"
        "content_dir_v1: /v1dir\n"
        "content_dir_v2: /v2dir\n"
        "use_x_sendfile: off\n"
        "[gsa]\n"
        "url: https://gsa.example.com/search?x=1\n"
        "[solr]\n"
        "url: https://solr.example.com/q={0}\n",
        "crane.conf");
    REQUIRE(r);
    Config c;
    apply_ini(c, *r);
    CHECK(c.debug);
    CHECK(c.data_dir == "/srv/crane");
    CHECK(c.data_dir_polling_interval == 5);
    CHECK(c.endpoint == "reg.example.com:5000");
    CHECK(c.url_match == "cdn-a.example.com");
    CHECK(c.url_replace == "cdn-b.example.com");
    CHECK(c.url_auth_secret == "00ff");
    CHECK(c.url_auth_ttl == 60);
    CHECK(c.url_auth_param == "token");
    CHECK(c.url_auth_algo == "sha1");
    CHECK(c.serve_content);
    CHECK(c.content_dir_v1 == "/v1dir");
    CHECK(c.content_dir_v2 == "/v2dir");
    CHECK_FALSE(c.use_x_sendfile);
    CHECK(c.gsa_url == "https://gsa.example.com/search?x=1");
    CHECK(c.solr_url == "https://solr.example.com/q={0}");
}

TEST_CASE("INI syntax follows ConfigParser: comments, case-insensitive keys, continuations", "[config]") {
    auto r = parse_ini_text(
        "# a comment\n"
        "; another\n"
        "[general]\n"
        "DATA_DIR : /a   ; trailing comment\n"
        "endpoint: host\n"
        "\n"
        "[extra]\n"
        "whatever: 1\n",
        "x.conf");
    REQUIRE(r);
    Config c;
    apply_ini(c, *r);
    CHECK(c.data_dir == "/a");
    CHECK(c.endpoint == "host");
    REQUIRE(r->warnings.size() == 1);
    CHECK(r->warnings[0] == "x.conf:7: section [extra] is not used by mod_crane; ignored");
}

TEST_CASE("booleans accept ConfigParser's words in any case", "[config]") {
    for (const char* t : {"true", "TRUE", "yes", "On", "1"}) CHECK(parse_bool(t) == std::optional<bool>(true));
    for (const char* f : {"false", "No", "OFF", "0"}) CHECK(parse_bool(f) == std::optional<bool>(false));
    CHECK_FALSE(parse_bool("maybe"));
    CHECK_FALSE(parse_bool(""));
}

TEST_CASE("config errors name the file, the line and the key", "[config]") {
    struct Case {
        const char* text;
        const char* error;
    };
    const Case cases[] = {
        {"[general]\ndata_dir_polling_interval: soon\n",
         "c.conf:2: [general] data_dir_polling_interval: 'soon' is not an integer"},
        {"[general]\ndata_dir_polling_interval: 0\n",
         "c.conf:2: [general] data_dir_polling_interval: 0 is out of range (1 to 31536000 seconds)"},
        {"[general]\ndebug: perhaps\n",
         "c.conf:2: [general] debug: 'perhaps' is not a boolean (true/false, yes/no, on/off, 1/0)"},
        {"[general]\n\n\nfoo: bar\n", "c.conf:4: [general] foo: unknown key"},
        {"[cdn]\nurl_auth_secret: abc\n", "c.conf:2: [cdn] url_auth_secret: must be an even number of hex digits"},
        {"[cdn]\nurl_auth_secret: zz\n", "c.conf:2: [cdn] url_auth_secret: must be an even number of hex digits"},
        {"[cdn]\nurl_auth_algo: sha512\n",
         "c.conf:2: [cdn] url_auth_algo: 'sha512' is not a supported HMAC algorithm (sha256, sha1, md5)"},
        {"[cdn]\nurl_auth_ttl: -5\n", "c.conf:2: [cdn] url_auth_ttl: -5 is out of range (1 to 31536000 seconds)"},
        {"[solr]\nurl: http://solr/q=x\n", "c.conf:2: [solr] url: 'http://solr/q=x' has no {0} placeholder for the query"},
        {"[serve_content]\nenable: si\n",
         "c.conf:2: [serve_content] enable: 'si' is not a boolean (true/false, yes/no, on/off, 1/0)"},
        {"data_dir: /x\n", "c.conf:1: key 'data_dir' before any [section] header"},
        {"[general\n", "c.conf:1: section header without ']'"},
        // a continuation line puts a newline into the value
        {"[general]\nendpoint: reg.example.com\n  :5000\n",
         "c.conf:3: [general] endpoint: contains the control character 0x0A (an indented continuation line?)"},
        {"[cdn]\nurl_match: a\n\tb\n",
         "c.conf:3: [cdn] url_match: contains the control character 0x0A (an indented continuation line?)"},
        {"[cdn]\nurl_replace: a\x01" "b\n", "c.conf:2: [cdn] url_replace: contains the control character 0x01"},
        {"[gsa]\nurl: http://gsa/\x7f\n", "c.conf:2: [gsa] url: contains the control character 0x7F"},
        {"[cdn]\nurl_auth_param: a&b=c#d\n",
         "c.conf:2: [cdn] url_auth_param: 'a&b=c#d' is not a plain query parameter name (letters, digits, "
         "'-', '.', '_', '~')"},
        {"[gsa]\nurl: gsa.example.com/search\n",
         "c.conf:2: [gsa] url: 'gsa.example.com/search' is not an http:// or https:// URL"},
        {"[solr]\nurl: ftp://solr/q={0}\n", "c.conf:2: [solr] url: 'ftp://solr/q={0}' is not an http:// or https:// URL"},
        {"[solr]\nurl: http:///q={0}\n", "c.conf:2: [solr] url: 'http:///q={0}' is not an http:// or https:// URL"},
        {"[general]\njust words\n", "c.conf:2: 'just words' is not 'key: value' or 'key = value'"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_ini_text(c.text, "c.conf");
        CHECK_FALSE(r);
        CHECK(r.error() == c.error);
    }
}

TEST_CASE("a missing config file is an error naming it", "[config]") {
    auto r = read_ini_file("/nonexistent/crane.conf");
    CHECK_FALSE(r);
    CHECK(r.error() == "/nonexistent/crane.conf: cannot be read");
}

TEST_CASE("every key has a directive, a default and help text", "[config]") {
    for (const auto& k : config_keys()) {
        INFO(k.key);
        CHECK(std::string(k.directive).rfind("Crane", 0) == 0);
        CHECK(std::string(k.default_text).size() > 0);
        CHECK(std::string(k.help).size() > 0);
        CHECK(find_config_key(k.section, k.key) == &k);
    }
    CHECK(config_keys().size() == 16);
}

TEST_CASE("values bound for headers and URLs refuse what would break them", "[config]") {
    Config c;
    const ConfigKey& param = *find_config_key("cdn", "url_auth_param");
    for (const char* bad : {"a&b", "a=b", "a#b", "a?b", "a b", "a%20", "a+b", "a/b", "", "a\tb"}) {
        INFO(bad);
        CHECK(set_config_value(c, param, bad).has_value());
    }
    for (const char* good : {"_auth_", "token", "hdnts", "__gda__", "a-b.c~d"}) {
        INFO(good);
        CHECK_FALSE(set_config_value(c, param, good).has_value());
        CHECK(c.url_auth_param == good);
    }
    const ConfigKey& gsa = *find_config_key("gsa", "url");
    for (const char* good : {"http://gsa", "HTTPS://gsa.example.com:8443/search?site=x", ""}) {
        INFO(good);
        CHECK_FALSE(set_config_value(c, gsa, good).has_value());
    }
    for (const char* bad : {"gsa", "http://", "https://?x", "file:///etc/passwd", "//gsa/x"}) {
        INFO(bad);
        CHECK(set_config_value(c, gsa, bad).has_value());
    }
    for (const char* key : {"data_dir", "endpoint"}) {
        INFO(key);
        CHECK(set_config_value(c, *find_config_key("general", key), "a\rb").has_value());
    }
}

TEST_CASE("config_issues: match without replace is fatal, a short secret a warning", "[config]") {
    Config c;
    CHECK(config_issues(c).empty());
    c.url_match = "origin.example.com";
    auto issues = config_issues(c);
    REQUIRE(issues.size() == 1);
    CHECK(issues[0].fatal);
    CHECK(issues[0].key == find_config_key("cdn", "url_match"));
    CHECK(issues[0].message ==
          "[cdn] url_match is set but [cdn] url_replace is not; set both to rewrite redirect URLs, or neither");
    c.url_match.clear();
    c.url_replace = "cdn.example.com";
    issues = config_issues(c);
    REQUIRE(issues.size() == 1);
    CHECK(issues[0].fatal);
    CHECK(issues[0].key == find_config_key("cdn", "url_replace"));
    c.url_match = "origin.example.com";
    CHECK(config_issues(c).empty());

    c.url_auth_secret = "0a";
    issues = config_issues(c);
    REQUIRE(issues.size() == 1);
    CHECK_FALSE(issues[0].fatal);
    CHECK(issues[0].key == find_config_key("cdn", "url_auth_secret"));
    CHECK(issues[0].message ==
          "[cdn] url_auth_secret: a 1-byte key is easy to guess; use at least 16 bytes (32 hex digits)");
    c.url_auth_secret = std::string(30, 'a');
    CHECK(config_issues(c).size() == 1);
    c.url_auth_secret = std::string(32, 'a');
    CHECK(config_issues(c).empty());
}
