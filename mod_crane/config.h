// The module's configuration: the directives (one per crane.conf key, plus
// the module's own), the per-server record they fill, and the effective
// crane::Config of each server computed from them in post_config.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apache_includes.h"
#include "crane/config.h"
#include "crane/log.h"
#include "crane/registry.h"

namespace mod_crane {

inline constexpr int kUnset = -1;

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

ServerConf* server_conf(server_rec* s);

// Lines of libcrane go to the error log of server s.
crane::LogSink server_log_sink(server_rec* s);

// The module record's configuration parts.
void* create_server_conf(apr_pool_t* p, server_rec* s);
void* merge_server_conf_walled(apr_pool_t* p, void* base_v, void* add_v);
const command_rec* directive_table() noexcept;

// pre_config: forgets the previous reading's global directives.
void reset_global_directives();

// check_config: reads the INI file of servers without CraneConfig
// (CRANE_CONFIG_PATH, else /etc/crane.conf when it exists); false (logged)
// when it is bad, so that `httpd -t` fails.
bool load_fallback_config(server_rec* main_server);

// Logs what crane::config_issues and the content dir check find, each line
// once however many servers share it. Returns false when one is fatal.
bool report_config_issues(server_rec* main_server, apr_pool_t* p, bool warnings);

// A server and its effective configuration.
struct ServerSetup {
    server_rec* server;
    crane::Config config;
};

// Every server's effective configuration, logged at debug (`debug` raises
// that server's log level for the module).
std::vector<ServerSetup> server_setups(server_rec* main_server, apr_pool_t* pconf);

// CraneSnapshotDir, or its default DefaultRuntimeDir/crane.
std::string snapshot_dir(apr_pool_t* pconf);

// CraneMetrics and CraneMetricsRepositories (server config only: one
// shared block of counters for the whole server).
struct MetricsSettings {
    bool enabled = true;
    std::uint32_t repository_limit = 100;
};
const MetricsSettings& metrics_settings();

// Gives the server its Registry, reading the snapshots from `source`.
void attach_registry(ServerSetup setup, std::shared_ptr<crane::SnapshotSource> source);

}  // namespace mod_crane
