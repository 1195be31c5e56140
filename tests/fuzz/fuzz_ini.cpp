// Fuzz target `ini`: crane.conf text through parse_ini_text, then apply_ini on
// a Config. Checks that the reader either fails with a "FILE:LINE: " error or
// yields entries that set_config_value accepts again and that leave a Config
// giving a usable config (what the Apache glue relies on after reading).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/cdn.h"
#include "crane/config.h"
#include "crane/search.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_ini invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string path = "fuzz.ini";
    crane::IniResult result = crane::parse_ini_text(text, path);
    if (!result) {
        if (result.error().empty()) fail("no file and no error", text);
        if (result.error().compare(0, path.size() + 1, path + ":") != 0) fail("error without file name", result.error());
        return 0;
    }
    if (!result.error().empty()) fail("both a file and an error", result.error());
    const crane::IniFile& ini = *result;
    if (ini.path != path) fail("path changed", ini.path);

    int lines = 1;
    for (char c : text) lines += c == '\n';
    int previous_line = 0;
    for (const crane::IniEntry& e : ini.entries) {
        if (e.key == nullptr) fail("entry without key", e.value);
        if (crane::find_config_key(e.key->section, e.key->key) != e.key) fail("key not from the table", e.key->key);
        if (e.line < 1 || e.line > lines || e.line <= previous_line) fail("bad line number", e.value);
        previous_line = e.line;
        crane::Config scratch;
        if (auto err = crane::set_config_value(scratch, *e.key, e.value)) fail("accepted entry now refused", *err);
    }

    crane::Config config;
    crane::apply_ini(config, ini);
    if (!config.solr_url.empty() && !crane::is_valid_solr_url_template(config.solr_url)) {
        fail("solr url accepted without a valid {0} template", config.solr_url);
    }
    if (!config.url_auth_secret.empty() && !crane::decode_hex_secret(config.url_auth_secret)) {
        fail("secret accepted but not decodable", config.url_auth_secret);
    }
    if (!crane::parse_hmac_algorithm(config.url_auth_algo)) fail("algorithm accepted but unknown", config.url_auth_algo);
    if (config.data_dir.empty() || config.url_auth_param.empty() || config.content_dir_v1.empty() ||
        config.content_dir_v2.empty()) {
        fail("a must-not-be-empty key is empty", text);
    }
    if (config.data_dir_polling_interval <= 0 || config.url_auth_ttl <= 0) fail("non-positive interval", text);
    return 0;
}
