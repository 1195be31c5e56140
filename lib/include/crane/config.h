// crane.conf: Crane's INI keys and defaults, the INI reader, and the single
// table of keys that the Apache directives are generated from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crane/result.h"

namespace crane {

struct Config {
    // [general]
    bool debug = false;
    std::string data_dir = "/var/lib/crane/metadata/";
    std::int64_t data_dir_polling_interval = 60;
    std::string endpoint;  // empty: the request's Host
    // [cdn]
    std::string url_match;
    std::string url_replace;
    std::string url_auth_secret;  // hex, as written; validated
    std::int64_t url_auth_ttl = 300;
    std::string url_auth_param = "_auth_";
    std::string url_auth_algo = "sha256";
    // [serve_content]
    bool serve_content = false;
    std::string content_dir_v1 = "/var/www/pub/docker/v1/web/";
    std::string content_dir_v2 = "/var/www/pub/docker/v2/web/";
    bool use_x_sendfile = true;  // accepted, no effect: files are served by httpd itself
    // [gsa] / [solr]
    std::string gsa_url;
    std::string solr_url;
};

enum class KeyType { Bool, Int, String };

// One crane.conf key and the Apache directive that overrides it.
struct ConfigKey {
    const char* section;
    const char* key;
    const char* directive;
    KeyType type;
    const char* default_text;  // as documented
    const char* help;          // one line, used for the directive's help text
};

// Every key (README, "Configuration"), in documentation order.
const std::vector<ConfigKey>& config_keys();
const ConfigKey* find_config_key(std::string_view section, std::string_view key);

// Validates `value` for `key` and stores it in `config`; on error returns a
// message naming the key and what is wrong (no file/line: the caller adds them).
std::optional<std::string> set_config_value(Config& config, const ConfigKey& key,
                                            std::string_view value);

// Checks that span several keys or point at a likely mistake, run on the
// effective configuration (INI file and directives merged).
struct ConfigIssue {
    const ConfigKey* key;  // the key to point the user at
    bool fatal;            // true: refuse the configuration; false: warn
    std::string message;   // names the key; no file/line (the caller adds them)
};

// HMAC keys shorter than this are accepted with a warning.
inline constexpr std::size_t kMinCdnSecretBytes = 16;

// fatal: url_match without url_replace or the reverse (Crane silently did
// not rewrite). warn: a CDN secret under kMinCdnSecretBytes bytes.
std::vector<ConfigIssue> config_issues(const Config& config);

std::optional<bool> parse_bool(std::string_view text);
std::optional<std::int64_t> parse_int(std::string_view text);

// One key = value line read from an INI file.
struct IniEntry {
    const ConfigKey* key;
    std::string value;
    int line;
};

struct IniFile {
    std::string path;
    std::vector<IniEntry> entries;      // known keys, validated
    std::vector<std::string> warnings;  // e.g. unknown sections, ignored
};

// Parses Crane's INI text (Python ConfigParser syntax). Errors name
// "FILE:LINE: [section] key: reason".
using IniResult = Result<IniFile>;
IniResult parse_ini_text(std::string_view text, const std::string& path);
IniResult read_ini_file(const std::string& path);

// Applies entries in order on top of `config`.
void apply_ini(Config& config, const IniFile& ini);

}  // namespace crane
