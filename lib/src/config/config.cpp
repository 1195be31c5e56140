// crane.conf reading and validation (see config.h).
#include "crane/config.h"
#include "crane/read_file.h"
#include "crane/search.h"
#include "crane/strings.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <limits>

namespace crane {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return hex_value(c) >= 0; });
}

// The first control character (C0 or DEL) in s, or -1.
int control_character(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return c;
    }
    return -1;
}

// RFC 3986 unreserved characters: a parameter name that needs no escaping
// and cannot split or end the query it is added to.
bool is_plain_query_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
    });
}

bool is_http_url(std::string_view url) {
    std::string head = lower(url.substr(0, 8));
    std::size_t host = head.rfind("http://", 0) == 0 ? 7 : head.rfind("https://", 0) == 0 ? 8 : 0;
    return host != 0 && url.size() > host && url.find_first_of("/?#", host) != host;
}

std::string hex_byte(int c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[(c >> 4) & 15] + digits[c & 15];
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
    static const std::vector<ConfigKey> keys = {
        {"general", "debug", "CraneDebug", KeyType::Bool, "false",
         "Log at debug level (also CRANE_DEBUG=true in httpd's environment)"},
        {"general", "data_dir", "CraneDataDir", KeyType::String, "/var/lib/crane/metadata/",
         "Directory searched recursively for *.json repository metadata"},
        {"general", "data_dir_polling_interval", "CranePollInterval", KeyType::Int, "60",
         "Seconds between checks of data_dir for changes"},
        {"general", "endpoint", "CraneEndpoint", KeyType::String, "(the request's Host)",
         "host[:port] sent in X-Docker-Endpoints"},
        {"cdn", "url_match", "CraneCDNURLMatch", KeyType::String, "(empty)",
         "Text replaced in v2 redirect URLs (with url_replace)"},
        {"cdn", "url_replace", "CraneCDNURLReplace", KeyType::String, "(empty)",
         "Replacement for url_match in v2 redirect URLs"},
        {"cdn", "url_auth_secret", "CraneCDNAuthSecret", KeyType::String, "(empty: no token)",
         "Hex-encoded key of the CDN token added to v2 redirect URLs"},
        {"cdn", "url_auth_ttl", "CraneCDNAuthTTL", KeyType::Int, "300",
         "Seconds a CDN token stays valid"},
        {"cdn", "url_auth_param", "CraneCDNAuthParam", KeyType::String, "_auth_",
         "Query parameter that carries the CDN token"},
        {"cdn", "url_auth_algo", "CraneCDNAuthAlgo", KeyType::String, "sha256",
         "HMAC algorithm of the CDN token: sha256, sha1 or md5"},
        {"serve_content", "enable", "CraneServeContent", KeyType::Bool, "false",
         "Serve image files from the content dirs instead of redirecting"},
        {"serve_content", "content_dir_v1", "CraneContentDirV1", KeyType::String,
         "/var/www/pub/docker/v1/web/", "Root of the v1 files (REPOSITORY/IMAGE/FILE)"},
        {"serve_content", "content_dir_v2", "CraneContentDirV2", KeyType::String,
         "/var/www/pub/docker/v2/web/", "Root of the v2 files (REPOSITORY/PATH)"},
        {"serve_content", "use_x_sendfile", "CraneUseXSendfile", KeyType::Bool, "true",
         "Accepted for compatibility; no effect (httpd always serves the file itself)"},
        {"gsa", "url", "CraneGSAURL", KeyType::String, "(empty)",
         "Google Search Appliance URL for docker search"},
        {"solr", "url", "CraneSolrURL", KeyType::String, "(empty)",
         "Solr URL for docker search; {0} marks the query"},
    };
    return keys;
}

const ConfigKey* find_config_key(std::string_view section, std::string_view key) {
    for (const auto& k : config_keys()) {
        if (section == k.section && key == k.key) return &k;
    }
    return nullptr;
}

std::optional<bool> parse_bool(std::string_view text) {
    std::string v = lower(trim(text));
    if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
    if (v == "false" || v == "no" || v == "off" || v == "0") return false;
    return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
    std::string v(trim(text));
    if (v.empty() || v.size() > 19) return std::nullopt;
    std::size_t i = (v[0] == '+' || v[0] == '-') ? 1 : 0;
    if (i == v.size()) return std::nullopt;
    for (std::size_t j = i; j < v.size(); ++j) {
        if (!std::isdigit(static_cast<unsigned char>(v[j]))) return std::nullopt;
    }
    errno = 0;
    long long n = std::strtoll(v.c_str(), nullptr, 10);
    if (errno == ERANGE) return std::nullopt;
    return static_cast<std::int64_t>(n);
}

std::optional<std::string> set_config_value(Config& c, const ConfigKey& key,
                                            std::string_view raw) {
    const std::string name = std::string("[") + key.section + "] " + key.key;
    std::string_view value = trim(raw);
    if (key.type == KeyType::Bool) {
        auto b = parse_bool(value);
        if (!b) {
            return name + ": '" + std::string(value) +
                   "' is not a boolean (true/false, yes/no, on/off, 1/0)";
        }
        std::string_view s = key.section, k = key.key;
        if (k == "debug") c.debug = *b;
        else if (s == "serve_content" && k == "enable") c.serve_content = *b;
        else if (k == "use_x_sendfile") c.use_x_sendfile = *b;
        return std::nullopt;
    }
    if (key.type == KeyType::Int) {
        auto n = parse_int(value);
        if (!n) return name + ": '" + std::string(value) + "' is not an integer";
        if (*n <= 0 || *n > 365LL * 24 * 3600) {
            return name + ": " + std::to_string(*n) + " is out of range (1 to 31536000 seconds)";
        }
        if (std::string_view(key.key) == "data_dir_polling_interval") c.data_dir_polling_interval = *n;
        else c.url_auth_ttl = *n;
        return std::nullopt;
    }
    std::string v(value);
    std::string_view s = key.section, k = key.key;
    // values end up in headers, URLs and paths: a newline there (an indented
    // INI continuation line) only shows up later, as failing requests
    if (int ctl = control_character(v); ctl >= 0) {
        return name + ": contains the control character " + hex_byte(ctl) +
               (ctl == '\n' ? " (an indented continuation line?)" : "");
    }
    if (k == "data_dir") {
        if (v.empty()) return name + ": must not be empty";
        c.data_dir = v;
    } else if (k == "endpoint") {
        c.endpoint = v;
    } else if (k == "url_match") {
        c.url_match = v;
    } else if (k == "url_replace") {
        c.url_replace = v;
    } else if (k == "url_auth_secret") {
        if (v.size() % 2 != 0 || !is_hex(v)) {
            return name + ": must be an even number of hex digits";
        }
        c.url_auth_secret = v;
    } else if (k == "url_auth_param") {
        if (!is_plain_query_name(v)) {
            return name + ": '" + v +
                   "' is not a plain query parameter name (letters, digits, '-', '.', '_', '~')";
        }
        c.url_auth_param = v;
    } else if (k == "url_auth_algo") {
        std::string a = lower(v);
        if (a != "sha256" && a != "sha1" && a != "md5") {
            return name + ": '" + v + "' is not a supported HMAC algorithm (sha256, sha1, md5)";
        }
        c.url_auth_algo = a;
    } else if (k == "content_dir_v1") {
        if (v.empty()) return name + ": must not be empty";
        c.content_dir_v1 = v;
    } else if (k == "content_dir_v2") {
        if (v.empty()) return name + ": must not be empty";
        c.content_dir_v2 = v;
    } else if (s == "gsa") {
        if (!v.empty() && !is_http_url(v)) return name + ": '" + v + "' is not an http:// or https:// URL";
        c.gsa_url = v;
    } else if (s == "solr") {
        if (!v.empty() && !is_http_url(v)) return name + ": '" + v + "' is not an http:// or https:// URL";
        if (!v.empty() && v.find("{0}") == std::string::npos) {
            return name + ": '" + v + "' has no {0} placeholder for the query";
        }
        if (!v.empty() && !is_valid_solr_url_template(v)) {
            return name + ": '" + v + "' has braces other than the {0} placeholder";
        }
        c.solr_url = v;
    }
    return std::nullopt;
}

std::vector<ConfigIssue> config_issues(const Config& config) {
    std::vector<ConfigIssue> issues;
    if (config.url_match.empty() != config.url_replace.empty()) {
        bool match_set = !config.url_match.empty();
        issues.push_back({find_config_key("cdn", match_set ? "url_match" : "url_replace"), true,
                          std::string("[cdn] ") + (match_set ? "url_match" : "url_replace") +
                              " is set but [cdn] " + (match_set ? "url_replace" : "url_match") +
                              " is not; set both to rewrite redirect URLs, or neither"});
    }
    std::size_t secret_bytes = config.url_auth_secret.size() / 2;
    if (secret_bytes > 0 && secret_bytes < kMinCdnSecretBytes) {
        issues.push_back({find_config_key("cdn", "url_auth_secret"), false,
                          "[cdn] url_auth_secret: a " + std::to_string(secret_bytes) +
                              "-byte key is easy to guess; use at least " +
                              std::to_string(kMinCdnSecretBytes) + " bytes (" +
                              std::to_string(2 * kMinCdnSecretBytes) + " hex digits)"});
    }
    return issues;
}

IniResult parse_ini_text(std::string_view text, const std::string& path) {
    IniFile ini;
    ini.path = path;
    std::string section;
    bool section_known = false;
    int line_no = 0;
    // the entry a continuation line (indented) belongs to
    std::optional<std::size_t> last_entry;
    auto fail = [&](const std::string& what) {
        return IniResult::failure(path + ":" + std::to_string(line_no) + ": " + what);
    };
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string_view t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') {
            if (t.empty()) last_entry.reset();
            if (end == text.size()) break;
            continue;
        }
        if (std::isspace(static_cast<unsigned char>(line[0])) && last_entry) {
            // ConfigParser continuation line: appended with a newline
            auto& e = ini.entries[*last_entry];
            e.value += "\n";
            e.value += std::string(t);
            Config scratch;
            if (auto err = set_config_value(scratch, *e.key, e.value)) return fail(*err);
            if (end == text.size()) break;
            continue;
        }
        last_entry.reset();
        if (t[0] == '[') {
            auto close = t.find(']');
            if (close == std::string_view::npos) return fail("section header without ']'");
            section = std::string(trim(t.substr(1, close - 1)));
            section_known = false;
            for (const auto& k : config_keys()) {
                if (section == k.section) section_known = true;
            }
            if (!section_known) {
                ini.warnings.push_back(path + ":" + std::to_string(line_no) + ": section [" +
                                       section + "] is not used by mod_crane; ignored");
            }
            if (end == text.size()) break;
            continue;
        }
        auto sep = t.find_first_of(":=");
        if (sep == std::string_view::npos) {
            return fail("'" + std::string(t) + "' is not 'key: value' or 'key = value'");
        }
        std::string key = lower(trim(t.substr(0, sep)));
        std::string_view value = trim(t.substr(sep + 1));
        // ConfigParser strips " ;comment" from values
        for (std::size_t i = 1; i < value.size(); ++i) {
            if (value[i] == ';' && std::isspace(static_cast<unsigned char>(value[i - 1]))) {
                value = trim(value.substr(0, i));
                break;
            }
        }
        if (section.empty()) return fail("key '" + key + "' before any [section] header");
        if (!section_known) {
            if (end == text.size()) break;
            continue;
        }
        const ConfigKey* ck = find_config_key(section, key);
        if (!ck) return fail("[" + section + "] " + key + ": unknown key");
        Config scratch;
        if (auto err = set_config_value(scratch, *ck, value)) return fail(*err);
        ini.entries.push_back({ck, std::string(value), line_no});
        last_entry = ini.entries.size() - 1;
        if (end == text.size()) break;
    }
    return ini;
}

IniResult read_ini_file(const std::string& path) {
    // no size limit: the administrator's own file, as before
    auto text = read_whole_file(path, std::numeric_limits<std::size_t>::max());
    if (!text) {
        return IniResult::failure(path + (text.error().kind == FileReadError::Kind::Open
                                              ? ": cannot be read"
                                              : ": read error"));
    }
    return parse_ini_text(*text, path);
}

void apply_ini(Config& config, const IniFile& ini) {
    for (const auto& e : ini.entries) set_config_value(config, *e.key, e.value);
}

}  // namespace crane
