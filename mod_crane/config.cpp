// The directives and each server's effective configuration (config.h).
#include "config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <optional>
#include <set>

#include "crane/log_ids.h"
#include "crane/metrics.h"
#include "walls.h"

namespace mod_crane {

namespace {

// The INI file used by servers without CraneConfig: CRANE_CONFIG_PATH,
// else /etc/crane.conf when it exists, else none (defaults). Read in
// check_config so a bad file fails `httpd -t`.
std::shared_ptr<const crane::IniFile> g_fallback_ini;

// CraneSnapshotDir as configured (ServerRoot-relative already), or null
// for the default DefaultRuntimeDir/crane. Reset before each read of the
// configuration.
const char* g_snapshot_dir = nullptr;

// CraneMetrics, CraneMetricsRepositories; reset with g_snapshot_dir.
MetricsSettings g_metrics;

}  // namespace

ServerConf* server_conf(server_rec* s) {
    return static_cast<ServerConf*>(ap_get_module_config(s->module_config, &crane_module));
}

namespace {

int apache_level(crane::LogLevel level) {
    switch (level) {
        case crane::LogLevel::Debug: return APLOG_DEBUG;
        case crane::LogLevel::Info: return APLOG_INFO;
        case crane::LogLevel::Warn: return APLOG_WARNING;
        default: return APLOG_ERR;
    }
}

}  // namespace

crane::LogSink server_log_sink(server_rec* s) {
    return [s](crane::LogLevel level, std::string_view msg) {
        ap_log_error(APLOG_MARK, apache_level(level), 0, s, "%.*s", static_cast<int>(msg.size()), msg.data());
    };
}

void* create_server_conf(apr_pool_t* p, server_rec* s) {
    return walled<void*>(crane::log_id::kServerConfFailed, APLOG_CRIT, s, "creating the server configuration failed",
                         nullptr, [p] { return static_cast<void*>(pool_new<ServerConf>(p)); });
}

// A level with its own CraneConfig starts from that file; otherwise it
// inherits the enclosing level's file and directives. Directives given at
// this level override either.
namespace {

void* merge_server_conf(apr_pool_t* p, void* base_v, void* add_v) {
    auto* base = static_cast<ServerConf*>(base_v);
    auto* add = static_cast<ServerConf*>(add_v);
    auto* conf = pool_new<ServerConf>(p);
    if (add->ini) {
        conf->ini = add->ini;
    } else {
        conf->ini = base->ini;
        conf->overrides = base->overrides;
        conf->override_origins = base->override_origins;
    }
    for (const auto& [key, value] : add->overrides) conf->overrides[key] = value;
    for (const auto& [key, origin] : add->override_origins) conf->override_origins[key] = origin;
    conf->accept_unverified = add->accept_unverified != kUnset ? add->accept_unverified : base->accept_unverified;
    conf->search_verify_tls = add->search_verify_tls != kUnset ? add->search_verify_tls : base->search_verify_tls;
    conf->search_ca_file = add->search_ca_file ? add->search_ca_file : base->search_ca_file;
    return conf;
}

}  // namespace

// On failure the virtual host keeps its own settings unmerged (logged).
void* merge_server_conf_walled(apr_pool_t* p, void* base_v, void* add_v) {
    return walled<void*>(crane::log_id::kMergeFailed, APLOG_CRIT, nullptr, "merging the server configuration failed",
                         add_v, [&] { return merge_server_conf(p, base_v, add_v); });
}

namespace {

const char* set_crane_config(cmd_parms* cmd, void*, const char* arg) {
    auto* conf = server_conf(cmd->server);
    const char* path = ap_server_root_relative(cmd->temp_pool, arg);
    if (!path) return apr_psprintf(cmd->pool, "CraneConfig: invalid path '%s'", arg);
    crane::IniResult r = crane::read_ini_file(path);
    if (!r) return apr_psprintf(cmd->pool, "CraneConfig: %s", r.error().c_str());
    for (const auto& w : r->warnings) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server, "%s: CraneConfig: %s", crane::log_id::kIniWarning,
                     w.c_str());
    }
    conf->ini = std::make_shared<const crane::IniFile>(std::move(*r));
    return nullptr;
}

const char* set_config_key(cmd_parms* cmd, void*, const char* arg) {
    const auto* key = static_cast<const crane::ConfigKey*>(cmd->info);
    crane::Config scratch;
    if (auto err = crane::set_config_value(scratch, *key, arg)) {
        return apr_psprintf(cmd->pool, "%s: %s", key->directive, err->c_str());
    }
    ServerConf* conf = server_conf(cmd->server);
    conf->overrides[key] = arg;
    if (cmd->directive) {
        conf->override_origins[key] = std::string(cmd->directive->filename ? cmd->directive->filename : "?") + ":" +
                                      std::to_string(cmd->directive->line_num) + ": " + key->directive;
    }
    return nullptr;
}

const char* set_accept_unverified(cmd_parms* cmd, void*, int flag) {
    server_conf(cmd->server)->accept_unverified = flag ? 1 : 0;
    return nullptr;
}

const char* set_search_verify_tls(cmd_parms* cmd, void*, int flag) {
    server_conf(cmd->server)->search_verify_tls = flag ? 1 : 0;
    return nullptr;
}

const char* set_snapshot_dir(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
    const char* path = ap_server_root_relative(cmd->pool, arg);
    if (!path || !*arg) return apr_psprintf(cmd->pool, "CraneSnapshotDir: invalid path '%s'", arg);
    g_snapshot_dir = path;
    return nullptr;
}

const char* set_metrics(cmd_parms* cmd, void*, int flag) {
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
    g_metrics.enabled = flag != 0;
    return nullptr;
}

const char* set_metrics_repositories(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
    const std::optional<std::int64_t> n = crane::parse_int(arg);
    if (!n || *n < 0 || *n > crane::metrics::kMaxRepositoryLimit) {
        return apr_psprintf(cmd->pool, "CraneMetricsRepositories: '%s' is not a whole number from 0 to %u", arg,
                            static_cast<unsigned>(crane::metrics::kMaxRepositoryLimit));
    }
    g_metrics.repository_limit = static_cast<std::uint32_t>(*n);
    return nullptr;
}

const char* set_search_ca_file(cmd_parms* cmd, void*, const char* arg) {
    const char* path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t finfo;
    if (!path || apr_stat(&finfo, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS || finfo.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "CraneSearchCAFile: '%s' is not a readable file", arg);
    }
    server_conf(cmd->server)->search_ca_file = path;
    return nullptr;
}

// httpd's C++ view of a directive function is `const char* (*)()`; going
// through void(*)() is the cast GCC accepts without -Wcast-function-type.
template <typename Fn>
cmd_func directive_fn(Fn* fn) {
    return reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(fn));
}

}  // namespace

// The directive table, generated from crane::config_keys() so that every
// INI key has its directive and nothing is listed twice.
// Built while httpd loads the module (the module struct's initializer): a
// failure there leaves no directives (httpd then refuses every Crane*
// directive by name) rather than unwinding through dlopen.
const command_rec* directive_table() noexcept {
    try {
        static std::vector<command_rec> table = [] {
            std::vector<command_rec> t;
            t.push_back({"CraneConfig",
                         directive_fn(walled_directive<set_crane_config, const char*>), nullptr,
                         RSRC_CONF, TAKE1, "Path of a crane.conf INI file (Crane's format)"});
            for (const auto& key : crane::config_keys()) {
                t.push_back({key.directive,
                             directive_fn(walled_directive<set_config_key, const char*>),
                             const_cast<crane::ConfigKey*>(&key), RSRC_CONF, TAKE1, key.help});
            }
            t.push_back({"CraneAcceptUnverifiedCertificates",
                         directive_fn(walled_directive<set_accept_unverified, int>), nullptr,
                         RSRC_CONF, FLAG,
                         "On: a client certificate mod_ssl did not verify may still entitle "
                         "(default Off)"});
            t.push_back({"CraneSearchVerifyTLS",
                         directive_fn(walled_directive<set_search_verify_tls, int>), nullptr,
                         RSRC_CONF, FLAG,
                         "Off: do not verify the search backend's TLS certificate (default On)"});
            t.push_back({"CraneSearchCAFile",
                         directive_fn(walled_directive<set_search_ca_file, const char*>), nullptr,
                         RSRC_CONF, TAKE1,
                         "PEM file of CAs that sign the search backend's certificate"});
            t.push_back({"CraneSnapshotDir",
                         directive_fn(walled_directive<set_snapshot_dir, const char*>), nullptr,
                         RSRC_CONF, TAKE1,
                         "Directory of the index snapshot files, on local disk (default: "
                         "DefaultRuntimeDir/crane)"});
            t.push_back({"CraneMetrics",
                         directive_fn(walled_directive<set_metrics, int>), nullptr,
                         RSRC_CONF, FLAG,
                         "Off: count nothing for the crane-metrics handler (default On)"});
            t.push_back({"CraneMetricsRepositories",
                         directive_fn(walled_directive<set_metrics_repositories, const char*>), nullptr,
                         RSRC_CONF, TAKE1,
                         "How many repositories get a pull counter of their own (default 100, 0: none)"});
            t.push_back({nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr});
            return t;
        }();
        return table.data();
    } catch (...) {
        log_failure(crane::log_id::kDirectiveTableFailed, APLOG_CRIT, nullptr,
                    "building the directive table failed", "unknown exception");
    }
    static const command_rec none[] = {{nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr}};
    return none;
}

void reset_global_directives() {
    g_snapshot_dir = nullptr;
    g_metrics = MetricsSettings();
}

const MetricsSettings& metrics_settings() { return g_metrics; }

namespace {

std::optional<std::string> load_fallback_ini() {
    g_fallback_ini.reset();
    const char* env = std::getenv("CRANE_CONFIG_PATH");
    std::string path;
    if (env && *env) {
        path = env;
    } else {
        struct stat st;
        if (stat("/etc/crane.conf", &st) != 0) return std::nullopt;
        path = "/etc/crane.conf";
    }
    crane::IniResult r = crane::read_ini_file(path);
    if (!r) return r.error();
    g_fallback_ini = std::make_shared<const crane::IniFile>(std::move(*r));
    return std::nullopt;
}

bool any_server_needs_fallback(server_rec* s) {
    for (; s; s = s->next) {
        if (!server_conf(s)->ini) return true;
    }
    return false;
}

bool env_true(const char* name) {
    const char* v = std::getenv(name);
    auto b = v ? crane::parse_bool(v) : std::nullopt;
    return b && *b;
}

// A server's crane::Config as its INI file and directives make it, and where
// each key that is set came from ("FILE:LINE" or "FILE:LINE: Directive").
struct Effective {
    crane::Config config;
    std::map<const crane::ConfigKey*, std::string> origins;

    std::string origin(const crane::ConfigKey* key) const {
        auto it = origins.find(key);
        return it != origins.end() ? it->second : std::string("(default)");
    }
};

Effective effective_config(const ServerConf* conf, apr_pool_t* p) {
    Effective e;
    const crane::IniFile* ini = conf->ini ? conf->ini.get() : g_fallback_ini.get();
    if (ini) {
        crane::apply_ini(e.config, *ini);
        for (const auto& entry : ini->entries) e.origins[entry.key] = ini->path + ":" + std::to_string(entry.line);
    }
    for (const auto& [key, value] : conf->overrides) crane::set_config_value(e.config, *key, value);
    for (const auto& [key, origin] : conf->override_origins) e.origins[key] = origin;
    if (env_true("CRANE_DEBUG")) e.config.debug = true;
    // relative paths are relative to ServerRoot, as httpd's own paths are
    // (not to whatever directory httpd was started from)
    for (std::string* path : {&e.config.data_dir, &e.config.content_dir_v1, &e.config.content_dir_v2}) {
        if (!path->empty() && (*path)[0] != '/') {
            if (const char* full = ap_server_root_relative(p, path->c_str())) *path = full;
        }
    }
    return e;
}

}  // namespace

bool report_config_issues(server_rec* main_server, apr_pool_t* p, bool warnings) {
    bool ok = true;
    std::set<std::string> seen;
    for (server_rec* s = main_server; s; s = s->next) {
        Effective e = effective_config(server_conf(s), p);
        for (const auto& issue : crane::config_issues(e.config)) {
            std::string line = e.origin(issue.key) + ": " + issue.message;
            if (issue.fatal) ok = false;
            if ((!issue.fatal && !warnings) || !seen.insert(line).second) continue;
            ap_log_error(APLOG_MARK, issue.fatal ? APLOG_CRIT : APLOG_WARNING, 0, main_server, "%s: mod_crane: %s",
                         issue.fatal ? crane::log_id::kConfigFatal : crane::log_id::kConfigWarning, line.c_str());
        }
        if (!warnings || !e.config.serve_content) continue;
        const std::pair<const char*, const std::string*> dirs[] = {{"content_dir_v1", &e.config.content_dir_v1},
                                                                   {"content_dir_v2", &e.config.content_dir_v2}};
        for (const auto& [name, dir_ptr] : dirs) {
            const crane::ConfigKey* key = crane::find_config_key("serve_content", name);
            const std::string& dir = *dir_ptr;
            apr_finfo_t finfo;
            if (apr_stat(&finfo, dir.c_str(), APR_FINFO_TYPE, p) == APR_SUCCESS && finfo.filetype == APR_DIR) continue;
            std::string line = e.origin(key) + ": [serve_content] " + name + ": '" + dir +
                               "' is not a directory; its files answer 404 until it exists";
            if (seen.insert(line).second) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, "%s: mod_crane: %s",
                             crane::log_id::kContentDirMissing, line.c_str());
            }
        }
    }
    return ok;
}

bool require_watchdog(server_rec* s);

bool load_fallback_config(server_rec* main_server) {
    if (!any_server_needs_fallback(main_server)) return true;
    auto err = load_fallback_ini();
    if (!err) return true;
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, main_server, "%s: mod_crane: %s (from CRANE_CONFIG_PATH or /etc/crane.conf)",
                 crane::log_id::kFallbackIni, err->c_str());
    return false;
}

std::vector<ServerSetup> server_setups(server_rec* main_server, apr_pool_t* pconf) {
    std::vector<ServerSetup> setups;
    for (server_rec* s = main_server; s; s = s->next) {
        ServerConf* conf = server_conf(s);
        crane::Config config = effective_config(conf, pconf).config;
        if (config.debug) ap_set_module_loglevel(pconf, &s->log, crane_module.module_index, APLOG_DEBUG);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                     "%s: mod_crane: effective configuration for %s:%u: %s data_dir=%s "
                     "data_dir_polling_interval=%" APR_INT64_T_FMT " endpoint=%s serve_content=%s cdn_rewrite=%s "
                     "cdn_token=%s search=%s",
                     crane::log_id::kEffectiveConfig, s->server_hostname ? s->server_hostname : "*", s->port,
                     conf->ini ? conf->ini->path.c_str() : (g_fallback_ini ? g_fallback_ini->path.c_str() : "(no INI file)"),
                     config.data_dir.c_str(), static_cast<apr_int64_t>(config.data_dir_polling_interval),
                     config.endpoint.empty() ? "(request Host)" : config.endpoint.c_str(),
                     config.serve_content ? "on" : "off",
                     (!config.url_match.empty() && !config.url_replace.empty()) ? "on" : "off",
                     config.url_auth_secret.empty() ? "off" : config.url_auth_algo.c_str(),
                     !config.gsa_url.empty() ? "gsa" : !config.solr_url.empty() ? "solr" : "none");
        setups.push_back({s, std::move(config)});
    }
    return setups;
}

std::string snapshot_dir(apr_pool_t* pconf) {
    return g_snapshot_dir ? g_snapshot_dir : ap_runtime_dir_relative(pconf, "crane");
}

void attach_registry(ServerSetup setup, std::shared_ptr<crane::SnapshotSource> source) {
    ServerConf* conf = server_conf(setup.server);
    crane::RegistryOptions options;
    options.accept_unverified_certificates = conf->accept_unverified == 1;
    options.search_verify_tls = conf->search_verify_tls != 0;
    if (conf->search_ca_file) options.search_ca_file = conf->search_ca_file;
    conf->registry = std::make_shared<crane::Registry>(std::move(setup.config), std::move(source), options,
                                                       server_log_sink(setup.server));
}

}  // namespace mod_crane
