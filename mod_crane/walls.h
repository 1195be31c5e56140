// The exception walls. No exception may unwind into httpd (C code): every C
// entry point of the module (hooks, directive setters, merge, pool
// cleanups, the handler) runs its body inside one of these, which log with
// an id and return an error.
#pragma once

#include <exception>

#include "apache_includes.h"
#include "crane/log_ids.h"

namespace mod_crane {

inline void log_failure(const char* id, int level, server_rec* s, const char* what, const char* detail) noexcept {
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

// A T owned by pool p: deleted when p is cleared (pool cleanups must not throw).
template <typename T>
T* pool_new(apr_pool_t* p) {
    T* obj = new T();
    apr_pool_cleanup_register(
        p, obj, [](void* o) noexcept -> apr_status_t { delete static_cast<T*>(o); return APR_SUCCESS; },
        apr_pool_cleanup_null);
    return obj;
}

}  // namespace mod_crane
