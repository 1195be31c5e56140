// mod_crane: the Apache glue, as a table of contents. Every decision lives
// in libcrane; each concern of the glue has its file:
//   walls.h      no exception unwinds into httpd
//   config.cpp   the directives and each server's effective crane::Config
//   snapshots.cpp  the index snapshots: start-up build, watchdog, readers
//   status.cpp   the mod_status section
//   metrics.cpp  the Prometheus counters and the crane-metrics page
//   handler.cpp  request_rec <-> crane::Request / crane::Response, access hooks
#include "apache_includes.h"
#include "config.h"
#include "crane/log_ids.h"
#include "crane/search.h"
#include "handler.h"
#include "metrics.h"
#include "snapshots.h"
#include "status.h"
#include "walls.h"

namespace mod_crane {
namespace {

int pre_config(apr_pool_t*, apr_pool_t*, apr_pool_t*) {
    reset_global_directives();
    return OK;
}

// What `httpd -t` checks: the fallback INI file, mod_watchdog, the
// configuration issues (warnings go to the error log from post_config;
// `httpd -t` shows them here).
int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t* ptemp, server_rec* s) {
    return walled(crane::log_id::kConfigCheckFailed, APLOG_CRIT, s, "configuration check failed",
                  int{HTTP_INTERNAL_SERVER_ERROR}, [&]() -> int {
                      if (!load_fallback_config(s) || !require_watchdog(s)) return HTTP_INTERNAL_SERVER_ERROR;
                      const bool config_test = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
                      return report_config_issues(s, ptemp, config_test) ? OK : HTTP_INTERNAL_SERVER_ERROR;
                  });
}

// Each server's configuration, each data dir's snapshot (built before the
// children fork), each server's Registry reading it.
int post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t* ptemp, server_rec* main_server) {
    // the first pass only checks the configuration; load data for real once
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    return walled(crane::log_id::kStartupFailed, APLOG_CRIT, main_server, "startup failed",
                  int{HTTP_INTERNAL_SERVER_ERROR}, [&]() -> int {
                      init_handler(pconf);
                      crane::search_global_init();  // process-wide libcurl setup; creates no handle
                      report_config_issues(main_server, ptemp, true);  // fatal ones stopped check_config
                      std::vector<ServerSetup> servers = server_setups(main_server, pconf);
                      if (!start_snapshots(pconf, main_server, servers)) return HTTP_INTERNAL_SERVER_ERROR;
                      if (!start_metrics(main_server)) return HTTP_INTERNAL_SERVER_ERROR;
                      for (ServerSetup& setup : servers) {
                          auto source = snapshot_source(setup.config.data_dir);
                          attach_registry(std::move(setup), std::move(source));
                      }
                      return OK;
                  });
}

void child_init(apr_pool_t*, server_rec* s) { map_snapshots(s); }

void register_hooks(apr_pool_t*) {
    ap_hook_pre_config(pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_translate_name(translate_name, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_type_checker(type_checker, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(crane_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_handler(metrics_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(count_request, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace
}  // namespace mod_crane

extern "C" {
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA crane_module = {
    STANDARD20_MODULE_STUFF,
    nullptr,                         // create per-dir config
    nullptr,                         // merge per-dir config
    mod_crane::create_server_conf,   // create per-server config
    mod_crane::merge_server_conf_walled,  // merge per-server config
    mod_crane::directive_table(),    // directives
    mod_crane::register_hooks,
#if defined(AP_MODULE_FLAG_NONE)
    AP_MODULE_FLAG_ALWAYS_MERGE,
#endif
};
}
