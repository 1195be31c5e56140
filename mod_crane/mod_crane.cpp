// mod_crane: the Apache glue. Directives become a crane::Config per
// server, post_config builds one crane::Registry per server (the index is
// loaded in the parent so children share it), child_init starts the reload
// watchers, and the handler translates request_rec <-> crane::Request /
// crane::Response. Every decision lives in libcrane.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apache_includes.h"
#include "crane/config.h"
#include "crane/file_digest_cache.h"
#include "crane/log_ids.h"
#include "crane/registry.h"
#include "crane/snapshot_store.h"
#include "crane/search.h"

namespace {

constexpr int kUnset = -1;

// Per-server configuration: what the directives said. The effective
// crane::Config is computed in post_config from these frozen inputs.
struct ServerConf {
    std::shared_ptr<const crane::IniFile> ini;  // CraneConfig at this level
    std::map<const crane::ConfigKey*, std::string> overrides;  // native directives
    std::map<const crane::ConfigKey*, std::string> override_origins;  // "FILE:LINE: Directive"
    int accept_unverified = kUnset;  // CraneAcceptUnverifiedCertificates
    int search_verify_tls = kUnset;  // CraneSearchVerifyTLS
    const char* search_ca_file = nullptr;  // CraneSearchCAFile
    std::shared_ptr<crane::Registry> registry;  // set in post_config
};

template <typename T>
T* pool_new(apr_pool_t* p) {
    T* obj = new T();
    apr_pool_cleanup_register(
        p, obj, [](void* o) noexcept -> apr_status_t { delete static_cast<T*>(o); return APR_SUCCESS; },
        apr_pool_cleanup_null);
    return obj;
}

ServerConf* server_conf(server_rec* s) {
    return static_cast<ServerConf*>(ap_get_module_config(s->module_config, &crane_module));
}

// The INI file used by servers without CraneConfig: CRANE_CONFIG_PATH,
// else /etc/crane.conf when it exists, else none (defaults). Read in
// check_config so a bad file fails `httpd -t`.
std::shared_ptr<const crane::IniFile> g_fallback_ini;

// Per-process state of one configuration generation.
struct Generation {
    std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<crane::IndexStore>> stores;
    crane::FileDigestCache digests{4096};
};
Generation* g_generation = nullptr;

APR_OPTIONAL_FN_TYPE(ssl_var_lookup)* g_ssl_var_lookup = nullptr;

int apache_level(crane::LogLevel level) {
    switch (level) {
        case crane::LogLevel::Debug: return APLOG_DEBUG;
        case crane::LogLevel::Info: return APLOG_INFO;
        case crane::LogLevel::Warn: return APLOG_WARNING;
        default: return APLOG_ERR;
    }
}

crane::LogSink server_log_sink(server_rec* s) {
    return [s](crane::LogLevel level, std::string_view msg) {
        ap_log_error(APLOG_MARK, apache_level(level), 0, s, "%.*s", static_cast<int>(msg.size()), msg.data());
    };
}

// ---- exception walls ----
// No exception may unwind into httpd (C code): every C entry point of the
// module (hooks, directive setters, merge, pool cleanups, the handler) runs
// its body inside one of these, which log with an id and return an error.

void log_failure(const char* id, int level, server_rec* s, const char* what, const char* detail) noexcept {
    ap_log_error(APLOG_MARK, level, 0, s, "%s: mod_crane: %s: %s", id, what, detail);
}

// Runs fn(); an exception becomes a log line and `on_error`.
template <typename R, typename Fn>
R walled(const char* id, int level, server_rec* s, const char* what, R on_error, Fn&& fn) noexcept {
    try {
        return fn();
    } catch (const std::exception& e) {
        log_failure(id, level, s, what, e.what());
    } catch (...) {
        log_failure(id, level, s, what, "unknown exception");
    }
    return on_error;
}

// A directive setter whose exceptions become the directive's error string
// (httpd prints it and refuses the configuration).
template <auto Fn, typename... Args>
const char* walled_directive(cmd_parms* cmd, void* dir_conf, Args... args) noexcept {
    const char* name = cmd->cmd && cmd->cmd->name ? cmd->cmd->name : "mod_crane";
    const char* detail = "unknown exception";
    try {
        return Fn(cmd, dir_conf, args...);
    } catch (const std::exception& e) {
        detail = apr_pstrdup(cmd->pool, e.what());
    } catch (...) {
    }
    log_failure(crane::log_id::kDirectiveFailed, APLOG_ERR, cmd->server, name, detail);
    return apr_psprintf(cmd->pool, "%s: %s", name, detail);
}

// ---- directives ----

void* create_server_conf(apr_pool_t* p, server_rec* s) {
    return walled<void*>(crane::log_id::kDirectiveFailed, APLOG_CRIT, s, "creating the server configuration failed",
                         nullptr, [p] { return static_cast<void*>(pool_new<ServerConf>(p)); });
}

// A level with its own CraneConfig starts from that file; otherwise it
// inherits the enclosing level's file and directives. Directives given at
// this level override either.
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

// On failure the virtual host keeps its own settings unmerged (logged).
void* merge_server_conf_walled(apr_pool_t* p, void* base_v, void* add_v) {
    return walled<void*>(crane::log_id::kDirectiveFailed, APLOG_CRIT, nullptr, "merging the server configuration failed",
                         add_v, [&] { return merge_server_conf(p, base_v, add_v); });
}

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
            t.push_back({nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr});
            return t;
        }();
        return table.data();
    } catch (...) {
        log_failure(crane::log_id::kDirectiveFailed, APLOG_CRIT, nullptr,
                    "building the directive table failed", "unknown exception");
    }
    static const command_rec none[] = {{nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr}};
    return none;
}

// ---- lifecycle ----

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

// Logs what crane::config_issues and the content dir check find, each line
// once however many servers share it. Returns false when one is fatal.
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

int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t* ptemp, server_rec* s) {
    return walled(crane::log_id::kConfigCheckFailed, APLOG_CRIT, s, "configuration check failed",
                  int{HTTP_INTERNAL_SERVER_ERROR}, [&]() -> int {
        if (any_server_needs_fallback(s)) {
            if (auto err = load_fallback_ini()) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                             "%s: mod_crane: %s (from CRANE_CONFIG_PATH or /etc/crane.conf)",
                             crane::log_id::kFallbackIni, err->c_str());
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        // warnings go to the error log from post_config; `httpd -t` shows them here
        bool config_test = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
        if (!report_config_issues(s, ptemp, config_test)) return HTTP_INTERNAL_SERVER_ERROR;
        return OK;
    });
}

int post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t* ptemp, server_rec* main_server) {
    // the first pass only checks the configuration; load data for real once
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    return walled(crane::log_id::kStartupFailed, APLOG_CRIT, main_server, "startup failed",
                  int{HTTP_INTERNAL_SERVER_ERROR}, [&]() -> int {
        g_generation = pool_new<Generation>(pconf);
        apr_pool_cleanup_register(
            pconf, nullptr, [](void*) noexcept -> apr_status_t { g_generation = nullptr; return APR_SUCCESS; },
            apr_pool_cleanup_null);
        g_ssl_var_lookup = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
        crane::search_global_init();  // process-wide libcurl setup; creates no handle
        report_config_issues(main_server, ptemp, true);  // fatal ones stopped check_config
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

            auto& store = g_generation->stores[{config.data_dir, config.data_dir_polling_interval}];
            if (!store) {
                // interim (snapshot API migration): an in-memory store built
                // once here; the watchdog builder and the per-child readers
                // replace it
                store = std::make_shared<crane::IndexStore>(config.data_dir, server_log_sink(main_server));
                store->reload();
            }
            crane::RegistryOptions options;
            options.accept_unverified_certificates = conf->accept_unverified == 1;
            options.search_verify_tls = conf->search_verify_tls != 0;
            if (conf->search_ca_file) options.search_ca_file = conf->search_ca_file;
            conf->registry = std::make_shared<crane::Registry>(std::move(config), store, options,
                                                               server_log_sink(s));
        }
        return OK;
    });
}

void child_init(apr_pool_t*, server_rec*) {
    // interim (snapshot API migration): no per-child metadata watcher; the
    // snapshot builder (mod_watchdog) and the readers take its place
}

// ---- the handler ----

// The client certificate of a TLS session, kept with the connection so the
// PEM export (mod_ssl encodes the certificate on every SSL_CLIENT_CERT
// lookup) happens once per session, not once per keep-alive request.
struct ConnCertificate {
    std::string session_id;
    crane::ClientCertificate cc;
};

crane::ClientCertificate client_certificate(request_rec* r) {
    crane::ClientCertificate cc;
    if (!g_ssl_var_lookup) return cc;
    conn_rec* c = r->connection;
    char name_session[] = "SSL_SESSION_ID";
    char name_cert[] = "SSL_CLIENT_CERT";
    char name_verify[] = "SSL_CLIENT_VERIFY";
    // a renegotiation (per-directory SSLVerifyClient) starts a new session
    const char* session = g_ssl_var_lookup(r->pool, r->server, c, r, name_session);
    auto* kept = static_cast<ConnCertificate*>(ap_get_module_config(c->conn_config, &crane_module));
    if (kept && session && *session && kept->session_id == session) return kept->cc;
    if (const char* pem = g_ssl_var_lookup(r->pool, r->server, c, r, name_cert)) cc.pem = pem;
    if (const char* v = g_ssl_var_lookup(r->pool, r->server, c, r, name_verify)) cc.verify = v;
    // only a presented certificate is kept: a later renegotiation may still add one
    if (!cc.pem.empty() && session && *session) {
        if (!kept) {
            kept = pool_new<ConnCertificate>(c->pool);
            ap_set_module_config(c->conn_config, &crane_module, kept);
        }
        kept->session_id = session;
        kept->cc = cc;
    }
    return cc;
}

constexpr char kApiVersionHeader[] = "Docker-Distribution-API-Version";
constexpr char kApiVersion[] = "registry/2.0";

void set_headers(request_rec* r, const crane::Response& resp) {
    for (const auto& h : resp.headers) {
        // the API version goes with every /v2/ answer, httpd's own error
        // pages included (set early in translate_name; setn keeps it single)
        if (h.name == kApiVersionHeader) {
            apr_table_setn(r->err_headers_out, kApiVersionHeader, kApiVersion);
            continue;
        }
        // names are string literals (NUL-terminated, static); values die with resp
        apr_table_setn(r->headers_out, h.name.data(), apr_pstrmemdup(r->pool, h.value.data(), h.value.size()));
    }
    if (!resp.content_type.empty()) {
        ap_set_content_type(r, apr_pstrmemdup(r->pool, resp.content_type.data(), resp.content_type.size()));
    }
}

int send_body(request_rec* r, const crane::Response& resp) {
    r->status = resp.status;
    set_headers(r, resp);
    ap_set_content_length(r, static_cast<apr_off_t>(resp.body.size()));
    // ap_rwrite takes an int length: bodies go out in pieces that fit one
    constexpr std::size_t kPiece = std::size_t{1} << 20;
    for (std::size_t at = 0; !r->header_only && at < resp.body.size(); at += kPiece) {
        std::size_t n = std::min(kPiece, resp.body.size() - at);
        if (ap_rwrite(resp.body.data() + at, static_cast<int>(n), r) < 0) break;
    }
    return OK;
}

// Serve-content mode: the file goes out through httpd's own machinery
// (file bucket -> sendfile, byterange filter, ETag, conditional GET).
int send_file(request_rec* r, const crane::Response& resp) {
    bool v2 = std::strncmp(r->uri, "/v2/", 4) == 0;
    auto not_found = [&] {
        // the library says which error a missing file is (manifest, blob, ...)
        if (resp.if_missing) return send_body(r, *resp.if_missing);
        crane::Response nf = v2 ? crane::v2_error(crane::V2Error::NameUnknown) : crane::v1_error(404, "");
        for (const auto& h : resp.headers) {
            if (h.name != "Cache-Control") nf.headers.push_back(h);
        }
        return send_body(r, nf);
    };
    apr_finfo_t finfo;
    if (apr_stat(&finfo, resp.file_path.c_str(), APR_FINFO_NORM, r->pool) != APR_SUCCESS ||
        finfo.filetype != APR_REG) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "%s: mod_crane: content file %s not found",
                      crane::log_id::kContentNotFound, resp.file_path.c_str());
        return not_found();
    }
    apr_file_t* fd = nullptr;
    if (apr_file_open(&fd, resp.file_path.c_str(), APR_READ | APR_BINARY | APR_SENDFILE_ENABLED, 0, r->pool) !=
        APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s: mod_crane: cannot open content file %s",
                      crane::log_id::kContentOpen, resp.file_path.c_str());
        return not_found();
    }
    r->filename = apr_pstrdup(r->pool, resp.file_path.c_str());
    r->finfo = finfo;
    set_headers(r, resp);
    if (resp.digest_header && g_generation) {
        if (auto digest = g_generation->digests.sha256_digest(resp.file_path)) {
            apr_table_setn(r->headers_out, "Docker-Content-Digest", apr_pstrdup(r->pool, digest->c_str()));
        }
    }
    apr_table_setn(r->headers_out, "Accept-Ranges", "bytes");
    ap_update_mtime(r, finfo.mtime);
    ap_set_last_modified(r);
    ap_set_etag(r);
    int cond = ap_meets_conditions(r);
    if (cond == HTTP_PRECONDITION_FAILED) {
        crane::Response failed = v2 ? crane::v2_error(crane::V2Error::PreconditionFailed) : crane::v1_error(412, "");
        return send_body(r, failed);
    }
    if (cond != OK) return cond;
    ap_set_content_length(r, finfo.size);
    if (r->header_only) return OK;
    apr_bucket_brigade* bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_brigade_insert_file(bb, fd, 0, finfo.size, r->pool);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    apr_status_t rv = ap_pass_brigade(r->output_filters, bb);
    if (rv != APR_SUCCESS && !r->connection->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "%s: mod_crane: sending %s failed",
                      crane::log_id::kContentSend, resp.file_path.c_str());
    }
    return OK;
}

int crane_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, "crane") != 0) return DECLINED;
    try {
        ServerConf* conf = server_conf(r->server);
        if (!conf->registry) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s: mod_crane: not initialised for this server",
                          crane::log_id::kNotInitialised);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        crane::Request req;
        req.method = r->method;
        req.path = r->uri ? r->uri : "";
        req.query = r->args ? r->args : "";
        const char* accept = apr_table_get(r->headers_in, "Accept");
        req.accept = accept ? accept : "";
        const char* host = apr_table_get(r->headers_in, "Host");
        req.host = host ? host : (r->hostname ? r->hostname : "");
        std::string server_host;
        if (req.host.empty()) {
            // HTTP/1.0 without Host: ServerName, with its port, else the
            // port the request came in on (ap_get_server_port would say 80)
            server_host = ap_get_server_name_for_url(r);
            apr_port_t port = r->server->port ? r->server->port : r->connection->local_addr->port;
            if (!ap_is_default_port(port, r)) server_host += ":" + std::to_string(port);
            req.server_host = server_host;
        }
        req.base_url = [r] { return std::string(ap_construct_url(r->pool, "", r)); };
        req.now = apr_time_sec(r->request_time);
        req.client_certificate = [r] { return client_certificate(r); };
        crane::Response resp = conf->registry->handle(req);
        if (!resp.file_path.empty()) return send_file(r, resp);
        return send_body(r, resp);
    } catch (const std::exception& e) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s: mod_crane: internal error: %s", crane::log_id::kInternalError,
                      e.what());
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s: mod_crane: internal error", crane::log_id::kInternalError);
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

// Access control. A crane URL goes through core's map_to_storage like any
// other: the URL maps to a path under DocumentRoot (for /v2/NAME/... that is
// usually DocumentRoot/v2, the first missing component, with the rest as
// path_info) and the <Directory>, <DirectoryMatch>, <Files>, <FilesMatch>
// sections and the .htaccess files (per AllowOverride) of that path apply,
// then <Location> and <If> as always. Skipping that walk would let any of
// those rules (basic auth in an .htaccess, a <Directory> Require) be
// bypassed on registry URLs.

// Whether the request's merged sections give it `SetHandler crane`: what
// core's fixup will set as its handler.
bool crane_configured(request_rec* r) {
    auto* core = static_cast<core_dir_config*>(ap_get_core_module_config(r->per_dir_config));
    if (!core || !core->expr_handler) return false;
    const char* err = nullptr;
    const char* handler = ap_expr_str_exec(r, core->expr_handler, &err);
    return !err && handler && std::strcmp(handler, "crane") == 0;
}

// Clients probe the API version on 401s and 403s from the access hooks
// too. Set here because the <Location> sections are merged when
// translate_name runs (core resets the per-dir config for map_to_storage).
int translate_name_unwalled(request_rec* r) {
    const char* u = r->uri;
    if (r->proxyreq || !u || std::strncmp(u, "/v2", 3) != 0 || (u[3] != '/' && u[3] != '\0')) return DECLINED;
    if (crane_configured(r)) apr_table_setn(r->err_headers_out, kApiVersionHeader, kApiVersion);
    return DECLINED;
}

int translate_name(request_rec* r) {
    return walled(crane::log_id::kInternalError, APLOG_ERR, r->server, "internal error", int{HTTP_INTERNAL_SERVER_ERROR},
                  [r] { return translate_name_unwalled(r); });
}

// crane answers from its index whatever the URL's path holds on disk. The
// type checker runs after the access hooks (every rule has applied); for a
// crane request it is this one, so mod_mime does not type the answer after
// the file and MultiViews does not swap the request for a sibling file, and
// the request is marked as having no file, so mod_dir (DirectoryIndex, the
// trailing-slash redirect) leaves it alone.
int type_checker(request_rec* r) {
    return walled(crane::log_id::kInternalError, APLOG_ERR, r->server, "internal error", int{HTTP_INTERNAL_SERVER_ERROR},
                  [r] {
                      if (!crane_configured(r)) return DECLINED;
                      r->finfo.filetype = APR_NOFILE;
                      return OK;
                  });
}

void register_hooks(apr_pool_t*) {
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_translate_name(translate_name, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_type_checker(type_checker, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(crane_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA crane_module = {
    STANDARD20_MODULE_STUFF,
    nullptr,             // create per-dir config
    nullptr,             // merge per-dir config
    create_server_conf,  // create per-server config
    merge_server_conf_walled,  // merge per-server config
    directive_table(),   // directives
    register_hooks,
#if defined(AP_MODULE_FLAG_NONE)
    AP_MODULE_FLAG_ALWAYS_MERGE,
#endif
};
}
