// mod_crane: the Apache glue. Directives become a crane::Config per
// server; post_config builds each data dir's index snapshot once (in the
// parent, before the children fork), registers a mod_watchdog singleton
// that rebuilds it when files change, and makes one crane::Registry per
// server reading the snapshot through a SnapshotReader; the handler
// translates request_rec <-> crane::Request / crane::Response; a mod_status
// hook shows each data dir's snapshot. Every decision lives in libcrane.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "apache_includes.h"
#include "crane/config.h"
#include "crane/file_digest_cache.h"
#include "crane/snapshot_store.h"
#include "crane/log_ids.h"
#include "crane/registry.h"
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

// CraneSnapshotDir as configured (ServerRoot-relative already), or null
// for the default DefaultRuntimeDir/crane. Reset before each read of the
// configuration.
const char* g_snapshot_dir = nullptr;

// The index of one data dir: its builder (run by the watchdog singleton,
// and by the parent at start-up) and this process's reader of it.
struct DataDirIndex {
    std::string data_dir;
    std::int64_t interval = 0;  // seconds: the smallest polling interval of the servers sharing it
    crane::SharedScanStatus* status = nullptr;
    std::unique_ptr<crane::SnapshotBuilder> builder;
    std::shared_ptr<crane::SnapshotReader> reader;
};

// Per-process state of one configuration generation.
struct Generation {
    std::map<std::string, DataDirIndex> indexes;  // by data dir
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

const char* set_snapshot_dir(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
    const char* path = ap_server_root_relative(cmd->pool, arg);
    if (!path || !*arg) return apr_psprintf(cmd->pool, "CraneSnapshotDir: invalid path '%s'", arg);
    g_snapshot_dir = path;
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
            t.push_back({"CraneSnapshotDir",
                         directive_fn(walled_directive<set_snapshot_dir, const char*>), nullptr,
                         RSRC_CONF, TAKE1,
                         "Directory of the index snapshot files, on local disk (default: "
                         "DefaultRuntimeDir/crane)"});
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

bool require_watchdog(server_rec* s);

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
        if (!require_watchdog(s)) return HTTP_INTERNAL_SERVER_ERROR;
        // warnings go to the error log from post_config; `httpd -t` shows them here
        bool config_test = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
        if (!report_config_issues(s, ptemp, config_test)) return HTTP_INTERNAL_SERVER_ERROR;
        return OK;
    });
}

// ---- the index snapshots ----

// The shared status page of a data dir: one MAP_SHARED page per data dir,
// made in the parent so every child inherits it. Kept on the process pool
// (which lives across restarts, while this DSO is unloaded and loaded
// again) so that the counters and the generation carry on after a graceful
// restart; the key names the layout, so a module upgrade gets a fresh page.
crane::SharedScanStatus* shared_status(server_rec* s, const std::string& data_dir) {
    apr_pool_t* pproc = s->process->pool;
    const std::string key = "mod_crane:scan-status:v1:" + data_dir;
    void* page = nullptr;
    apr_pool_userdata_get(&page, key.c_str(), pproc);
    if (page) return static_cast<crane::SharedScanStatus*>(page);
    void* m = mmap(nullptr, sizeof(crane::SharedScanStatus), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error(std::string("cannot map a shared page: ") + std::strerror(errno));
    auto* status = new (m) crane::SharedScanStatus();
    apr_pool_userdata_set(status, apr_pstrdup(pproc, key.c_str()), apr_pool_cleanup_null, pproc);
    return status;
}

// The snapshot file of a data dir: a readable name plus a hash of the full
// path and of the server (ServerRoot and its configuration file), so two
// data dirs never share a file, nor two httpd instances sharing a
// CraneSnapshotDir.
std::string snapshot_path(const std::string& dir, const std::string& data_dir) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    const std::string key = data_dir + '\n' + (ap_server_root ? ap_server_root : "") + '\n' +
                            (ap_conftree && ap_conftree->filename ? ap_conftree->filename : "");
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
    std::string name;
    for (char c : data_dir) {
        if (name.size() >= 48) break;
        name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
    }
    while (!name.empty() && name.front() == '_') name.erase(0, 1);
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
    return dir + "/" + (name.empty() ? "root" : name) + "-" + hex + ".snap";
}

// mkdir -p: missing parents get 0755 (as `mkdir -p` gives them), the
// directory itself `mode`. False with errno set on a failure.
bool make_directories(const std::string& dir, mode_t mode) {
    for (std::size_t slash = dir.find('/', 1); slash != std::string::npos; slash = dir.find('/', slash + 1)) {
        const std::string parent = dir.substr(0, slash);
        if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return false;
    return ::chmod(dir.c_str(), mode) == 0;  // whatever the umask made of it
}

// The first directory on the way to `dir` (itself included) that User
// cannot pass through, with its mode; empty when there is none.
std::string unreachable_for_user(const std::string& dir) {
    const uid_t uid = ap_unixd_config.user_id;
    const gid_t gid = ap_unixd_config.group_id;
    std::string path;
    std::size_t from = 0;
    while (from != std::string::npos) {
        const std::size_t slash = dir.find('/', from + 1);
        path = dir.substr(0, slash == std::string::npos ? dir.size() : slash);
        from = slash;
        if (path.empty()) continue;
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) return path + " (" + std::strerror(errno) + ")";
        const mode_t x = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
        if (!(st.st_mode & x)) {
            char mode[8];
            std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
            return path + " (mode " + mode + ", owner uid " + std::to_string(st.st_uid) + ")";
        }
    }
    return {};
}

// CraneSnapshotDir, made when missing. The children's user writes it (the
// watchdog runs in a child), so a directory made by root is given to User.
// An existing directory must already be that user's: it is never chowned.
std::optional<std::string> prepare_snapshot_dir(const std::string& dir) {
    struct stat st;
    const bool existed = ::stat(dir.c_str(), &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) return "CraneSnapshotDir " + dir + ": not a directory";
    const bool root = geteuid() == 0;
    if (!existed) {
        if (!make_directories(dir, 0700)) {
            return "CraneSnapshotDir " + dir + ": cannot be created: " + std::strerror(errno);
        }
        if (root && ::chown(dir.c_str(), ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            return "CraneSnapshotDir " + dir + ": cannot give it to User: " + std::strerror(errno);
        }
    } else if (root && st.st_uid != ap_unixd_config.user_id) {
        return "CraneSnapshotDir " + dir + ": owned by uid " + std::to_string(st.st_uid) + ", not by User (uid " +
               std::to_string(ap_unixd_config.user_id) + ") who writes the snapshots; chown it or name another directory";
    } else if (!root && ::access(dir.c_str(), W_OK | X_OK) != 0) {
        return "CraneSnapshotDir " + dir + ": not writable: " + std::strerror(errno);
    }
    if (root) {
        // the children run as User: every directory on the way must let them through
        const std::string blocked = unreachable_for_user(dir);
        if (!blocked.empty()) {
            return "CraneSnapshotDir " + dir + ": User (uid " + std::to_string(ap_unixd_config.user_id) +
                   ") cannot reach it: " + blocked;
        }
    }
    return std::nullopt;
}

APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance)* g_wd_get_instance = nullptr;
APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback)* g_wd_register_callback = nullptr;
constexpr const char kWatchdogName[] = "crane-index";

// mod_watchdog's functions, or a line saying how to load it.
bool require_watchdog(server_rec* s) {
    g_wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    g_wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (g_wd_get_instance && g_wd_register_callback) return true;
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                 "%s: mod_crane: mod_watchdog is not loaded; it builds the index snapshot: add "
                 "'LoadModule watchdog_module modules/mod_watchdog.so' (Debian: a2enmod watchdog)",
                 crane::log_id::kSnapshotSetup);
    return false;
}

// The watchdog singleton: one child of the server runs this for each data
// dir every interval (and once when it takes the role over). It always
// answers APR_SUCCESS: any other status would stop the callback for good.
apr_status_t watchdog_callback(int state, void* data, apr_pool_t*) {
    if (state == AP_WATCHDOG_STATE_STOPPING) return APR_SUCCESS;
    auto* index = static_cast<DataDirIndex*>(data);
    walled(crane::log_id::kReloadFailed, APLOG_ERR, ap_server_conf, "metadata reload failed; the snapshot in place stays", 0, [index] {
        index->builder->refresh();
        return 0;
    });
    return APR_SUCCESS;
}

// The start-up build (adopt the file in place, scan, build what changed)
// runs in a short-lived child process: the parent's heap never holds the
// parsed metadata, which every child it forks would otherwise inherit, and
// the parent keeps no mapping of the snapshot (children map the file in
// child_init, and drop it when a newer generation comes). The status page is
// shared, so the parent sees what the build did.
void build_outside_the_parent(crane::SnapshotBuilder& builder, server_rec* s) {
    auto build = [&builder] {
        builder.adopt_existing();
        builder.refresh();
    };
    const pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 0;
        try {
            build();
        } catch (const std::exception& e) {
            log_failure(crane::log_id::kReloadFailed, APLOG_ERR, s, "start-up metadata load failed", e.what());
            rc = 1;
        } catch (...) {
            rc = 1;
        }
        ::_exit(rc);  // no atexit handlers, no pool cleanups: they are the parent's
    }
    if (pid < 0) {  // no process to spare: build here, then let go of it
        build();
        builder.release();
        return;
    }
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "%s: mod_crane: the start-up build of %s ended abnormally (status %d); the watchdog "
                     "builds it again",
                     crane::log_id::kReloadFailed, builder.data_dir().c_str(), wstatus);
    }
}

int pre_config(apr_pool_t*, apr_pool_t*, apr_pool_t*) {
    g_snapshot_dir = nullptr;
    return OK;
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
        if (!require_watchdog(main_server)) return HTTP_INTERNAL_SERVER_ERROR;
        const std::string dir = g_snapshot_dir ? g_snapshot_dir : ap_runtime_dir_relative(pconf, "crane");
        if (auto err = prepare_snapshot_dir(dir)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, main_server, "%s: mod_crane: %s", crane::log_id::kSnapshotSetup,
                         err->c_str());
            return HTTP_INTERNAL_SERVER_ERROR;
        }

        std::vector<std::pair<server_rec*, crane::Config>> configs;
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
            DataDirIndex& index = g_generation->indexes[config.data_dir];
            const std::int64_t interval = config.data_dir_polling_interval > 0 ? config.data_dir_polling_interval : 60;
            if (index.interval == 0 || interval < index.interval) index.interval = interval;
            configs.emplace_back(s, std::move(config));
        }

        // each data dir: its snapshot built (or adopted and brought up to
        // date) before the children fork, and its builder handed to the
        // watchdog singleton
        ap_watchdog_t* watchdog = nullptr;
        apr_status_t rv = g_wd_get_instance(&watchdog, kWatchdogName, 0, 1, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, main_server, "%s: mod_crane: cannot get a watchdog instance",
                         crane::log_id::kSnapshotSetup);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        for (auto& [data_dir, index] : g_generation->indexes) {
            index.data_dir = data_dir;
            index.status = shared_status(main_server, data_dir);
            const std::string path = snapshot_path(dir, data_dir);
            index.builder = std::make_unique<crane::SnapshotBuilder>(data_dir, path, index.status,
                                                                     server_log_sink(main_server));
            // requests come first: the builder runs niced in the watchdog
            // thread (and in the start-up build's own process)
            index.builder->set_background(true);
            build_outside_the_parent(*index.builder, main_server);
            index.reader = std::make_shared<crane::SnapshotReader>(path, index.status, server_log_sink(main_server));
            rv = g_wd_register_callback(watchdog, apr_time_from_sec(index.interval), &index, watchdog_callback);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, main_server,
                             "%s: mod_crane: cannot register the snapshot builder of %s with mod_watchdog",
                             crane::log_id::kSnapshotSetup, data_dir.c_str());
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        for (auto& [s, config] : configs) {
            ServerConf* conf = server_conf(s);
            auto reader = g_generation->indexes.at(config.data_dir).reader;
            crane::RegistryOptions options;
            options.accept_unverified_certificates = conf->accept_unverified == 1;
            options.search_verify_tls = conf->search_verify_tls != 0;
            if (conf->search_ca_file) options.search_ca_file = conf->search_ca_file;
            conf->registry = std::make_shared<crane::Registry>(std::move(config), reader, options,
                                                               server_log_sink(s));
        }
        return OK;
    });
}

// Each child maps the snapshots before it takes requests, so that the
// first request does not pay for the mapping and its validation.
void child_init(apr_pool_t*, server_rec* s) {
    if (!g_generation) return;
    walled(crane::log_id::kSnapshotRefused, APLOG_ERR, s, "cannot map the index snapshot", 0, [] {
        for (auto& [data_dir, index] : g_generation->indexes) index.reader->current();
        return 0;
    });
}

// ---- mod_status ----

std::string seconds_text(std::int64_t ns) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ns) / 1e9);
    return buf;
}

std::string time_text(std::int64_t wall_ns) {
    if (wall_ns <= 0) return "never";
    char buf[APR_RFC822_DATE_LEN];
    apr_rfc822_date(buf, static_cast<apr_time_t>(wall_ns / 1000));
    return buf;
}

// One section per data dir: the shared page is what the builder (in
// whichever child runs it) last wrote.
int status_hook_unwalled(request_rec* r, int flags) {
    if (!g_generation || g_generation->indexes.empty()) return OK;
    const bool short_report = (flags & AP_STATUS_SHORT) != 0;
    if (!short_report) {
        ap_rputs("<hr />\n<h2>mod_crane index snapshots</h2>\n<table border=\"1\">\n"
                 "<tr><th>Data dir</th><th>Generation</th><th>Repositories (v1 / v2)</th><th>Files</th>"
                 "<th>Failed files</th><th>Snapshot size</th><th>Last scan</th><th>Scan took</th>"
                 "<th>Built</th><th>Builder pid</th><th>Last error</th></tr>\n", r);
    }
    int i = 0;
    for (const auto& [data_dir, index] : g_generation->indexes) {
        const crane::ScanStatusCopy st = crane::read_status(*index.status);
        const std::uint64_t mapped = index.reader ? index.reader->current()->generation() : 0;
        if (short_report) {
            ap_rprintf(r, "CraneSnapshot%dDataDir: %s\n", i, data_dir.c_str());
            ap_rprintf(r, "CraneSnapshot%dGeneration: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.generation));
            ap_rprintf(r, "CraneSnapshot%dMappedGeneration: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(mapped));
            ap_rprintf(r, "CraneSnapshot%dFiles: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.files));
            ap_rprintf(r, "CraneSnapshot%dFailedFiles: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.failed_files));
            ap_rprintf(r, "CraneSnapshot%dV1Repos: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.v1_repos));
            ap_rprintf(r, "CraneSnapshot%dV2Repos: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.v2_repos));
            ap_rprintf(r, "CraneSnapshot%dBytes: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.snapshot_bytes));
            ap_rprintf(r, "CraneSnapshot%dScans: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.scans));
            ap_rprintf(r, "CraneSnapshot%dBuilds: %" APR_UINT64_T_FMT "\n", i, static_cast<apr_uint64_t>(st.builds));
            ap_rprintf(r, "CraneSnapshot%dLastScan: %s\n", i, seconds_text(st.last_scan_at_ns).c_str());
            ap_rprintf(r, "CraneSnapshot%dLastScanDuration: %s\n", i, seconds_text(st.last_scan_duration_ns).c_str());
            ap_rprintf(r, "CraneSnapshot%dLastBuild: %s\n", i, seconds_text(st.last_build_at_ns).c_str());
            ap_rprintf(r, "CraneSnapshot%dBuilderPid: %d\n", i, static_cast<int>(st.builder_pid));
            std::string error = st.last_error.empty() ? "(none)" : st.last_error;
            for (char& c : error) {
                if (c == '\n' || c == '\r') c = ' ';
            }
            ap_rprintf(r, "CraneSnapshot%dLastError: %s\n", i, error.c_str());
        } else {
            ap_rprintf(r,
                       "<tr><td>%s</td><td>%" APR_UINT64_T_FMT " (this child: %" APR_UINT64_T_FMT ")</td>"
                       "<td>%" APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td>"
                       "<td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT " bytes</td><td>%s</td><td>%s s</td>"
                       "<td>%s</td><td>%d</td><td>%s</td></tr>\n",
                       ap_escape_html(r->pool, data_dir.c_str()), static_cast<apr_uint64_t>(st.generation),
                       static_cast<apr_uint64_t>(mapped), static_cast<apr_uint64_t>(st.v1_repos),
                       static_cast<apr_uint64_t>(st.v2_repos), static_cast<apr_uint64_t>(st.files),
                       static_cast<apr_uint64_t>(st.failed_files), static_cast<apr_uint64_t>(st.snapshot_bytes),
                       time_text(st.last_scan_at_ns).c_str(), seconds_text(st.last_scan_duration_ns).c_str(),
                       time_text(st.last_build_at_ns).c_str(), static_cast<int>(st.builder_pid),
                       st.last_error.empty() ? "(none)" : ap_escape_html(r->pool, st.last_error.c_str()));
        }
        ++i;
    }
    if (!short_report) ap_rputs("</table>\n", r);
    return OK;
}

int status_hook(request_rec* r, int flags) {
    return walled(crane::log_id::kInternalError, APLOG_ERR, r->server, "status report failed", int{OK},
                  [&] { return status_hook_unwalled(r, flags); });
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

void set_headers(request_rec* r, const crane::Response& resp) {
    // the API version goes with every /v2/ answer, httpd's own error pages
    // included (set early in translate_name; setn keeps it single)
    if (resp.api_version) apr_table_setn(r->err_headers_out, crane::kApiVersionHeader, crane::kApiVersion);
    for (const auto& h : resp.headers) {
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
    // the library says which error a missing file is (v1 file, manifest, blob, ...)
    auto not_found = [&] { return resp.if_missing ? send_body(r, *resp.if_missing) : int{HTTP_NOT_FOUND}; };
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
    if (cond == HTTP_PRECONDITION_FAILED && resp.if_precondition_failed) {
        return send_body(r, *resp.if_precondition_failed);
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
    if (crane_configured(r)) apr_table_setn(r->err_headers_out, crane::kApiVersionHeader, crane::kApiVersion);
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
    ap_hook_pre_config(pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
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
