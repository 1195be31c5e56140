// httpd's headers, walled off in one place: the macros they define (OK,
// DECLINED, ...) stay out of the library and the rest of the C++ code.
#pragma once

#include <apr_optional.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include <ap_mpm.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_ssl.h>
#include <mod_status.h>
#include <mod_watchdog.h>
#include <unixd.h>

extern "C" __attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA crane_module;

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(crane);
#endif
