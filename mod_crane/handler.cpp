// The handler (handler.h): request_rec to crane::Request, crane::Response
// back to httpd; the access-control hooks around it.
#include "handler.h"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <string>

#include "config.h"
#include "crane/file_digest_cache.h"
#include "crane/log_ids.h"
#include "crane/registry.h"
#include "metrics.h"
#include "walls.h"

namespace mod_crane {

namespace {

APR_OPTIONAL_FN_TYPE(ssl_var_lookup)* g_ssl_var_lookup = nullptr;

// Docker-Content-Digest of served manifests, per configuration generation.
crane::FileDigestCache* g_digests = nullptr;

}  // namespace

void init_handler(apr_pool_t* pconf) {
    g_ssl_var_lookup = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    g_digests = new crane::FileDigestCache(4096);
    apr_pool_cleanup_register(
        pconf, nullptr, [](void*) noexcept -> apr_status_t {
            delete g_digests;
            g_digests = nullptr;
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
}

namespace {

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
    if (r->header_only) return OK;
    // the whole answer in one pass down the filters, body and end of stream
    // together (ap_rwrite would make one pass per piece, and httpd another
    // for the end of stream); the heap bucket takes a copy, resp dies here
    apr_bucket_alloc_t* ba = r->connection->bucket_alloc;
    apr_bucket_brigade* bb = apr_brigade_create(r->pool, ba);
    if (!resp.body.empty()) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(resp.body.data(), resp.body.size(), nullptr, ba));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    apr_status_t rv = ap_pass_brigade(r->output_filters, bb);
    if (rv != APR_SUCCESS && !r->connection->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "%s: mod_crane: sending the answer failed",
                      crane::log_id::kContentSend);
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
    if (resp.digest_header && g_digests) {
        if (auto digest = g_digests->sha256_digest(resp.file_path)) {
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

}  // namespace

int crane_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, "crane") != 0) return DECLINED;
    char what[512] = "";  // copied: the exception is gone after its catch block
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
        note_answer(r, resp);  // for the metrics (metrics.h)
        if (!resp.file_path.empty()) return send_file(r, resp);
        return send_body(r, resp);
    } catch (const std::exception& e) {
        std::snprintf(what, sizeof what, "%s", e.what());  // cannot throw, unlike a std::string copy
    } catch (...) {
        std::snprintf(what, sizeof what, "%s", "not a std::exception");
    }
    // one log call: one id (httpd's log-message-tags rule)
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s: mod_crane: internal error: %s", crane::log_id::kInternalError, what);
    return HTTP_INTERNAL_SERVER_ERROR;
}

namespace {

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

}  // namespace

int translate_name(request_rec* r) {
    return walled(crane::log_id::kTranslateFailed, APLOG_ERR, r->server, "internal error", int{HTTP_INTERNAL_SERVER_ERROR},
                  [r] { return translate_name_unwalled(r); });
}

// crane answers from its index whatever the URL's path holds on disk. The
// type checker runs after the access hooks (every rule has applied); for a
// crane request it is this one, so mod_mime does not type the answer after
// the file and MultiViews does not swap the request for a sibling file, and
// the request is marked as having no file, so mod_dir (DirectoryIndex, the
// trailing-slash redirect) leaves it alone.
int type_checker(request_rec* r) {
    return walled(crane::log_id::kTypeCheckFailed, APLOG_ERR, r->server, "internal error", int{HTTP_INTERNAL_SERVER_ERROR},
                  [r] {
                      if (!crane_configured(r)) return DECLINED;
                      r->finfo.filetype = APR_NOFILE;
                      return OK;
                  });
}
}  // namespace mod_crane
