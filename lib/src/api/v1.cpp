// The v1 endpoints: ping, users, search, images, repositories (README, "The API").
#include "crane/registry.h"

#include <algorithm>

#include "api/content_path.h"
#include "api/handler_support.h"
#include "crane/json_writer.h"
#include "crane/media_types.h"
#include "crane/search.h"

namespace crane {

using namespace api;

Response Registry::v1(const Request& req, const RouteMatch& m, const Snapshot& snap, Client& client) const {
    switch (m.kind) {
        case RouteKind::V1Ping: {
            Response r = v1_json(200, "true");
            r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
            return r;
        }
        case RouteKind::V1Users: {
            Response r = req.method == "POST" ? v1_json(201, "\"User Created\"") : v1_json(200, "\"OK\"");
            r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
            return r;
        }
        case RouteKind::V1Search: return search(req, snap, client);
        case RouteKind::V1Image: return v1_image(req, m.name, m.file, snap, client);
        case RouteKind::V1Repository: break;
        default: return v1_error(404, "");
    }
    std::string_view repo_id = m.name;
    if (starts_with(repo_id, "library/")) repo_id.remove_prefix(8);
    const std::optional<V1View> repo = snap.find_v1(repo_id);
    if (!repo) client.decoy(repo_id);
    if (!repo || !readable(*repo, client)) return v1_error(404, "");
    if (m.repo_part == RouteMatch::Images) {
        Response r = v1_json(200, std::string(repo->images_json()));
        std::string_view endpoint = config_.endpoint;
        if (endpoint.empty()) endpoint = req.host.empty() ? req.server_host : req.host;
        r.headers.push_back({"X-Docker-Endpoints", std::string(endpoint)});
        return r;
    }
    if (m.repo_part == RouteMatch::Tags) return v1_json(200, std::string(repo->tags_json()));
    const std::optional<std::string_view> image = repo->find_tag(m.file);
    if (!image) return v1_error(404, "");
    return v1_json(200, json::quoted(*image));
}

Response Registry::v1_image(const Request& req, std::string_view image, std::string_view file, const Snapshot& snap,
                            Client& client) const {
    const SnapRange<V1View> holders = snap.repos_with_image(image);
    if (holders.empty()) {
        client.decoy(image);
        return v1_error(404, "");
    }
    for (const V1View repo : holders) {
        if (!readable(repo, client)) continue;
        if (config_.serve_content) {
            Response r;
            auto path = content_file_path(config_.content_dir_v1, repo.repository(),
                                          std::string(image) + "/" + std::string(file));
            if (!path) return v1_error(404, "");
            r.file_path = std::move(*path);
            // ancestry and json are JSON documents; only the layer is opaque
            r.content_type = std::string(file == "layer" ? kMediaOctetStream : kMediaJson);
            // v1 image ids name their content, so the files never change
            r.headers.push_back({"Cache-Control", repo.is_protected() ? "private, max-age=31536000, immutable"
                                                                     : "public, max-age=31536000, immutable"});
            v1_headers(r);
            return r;
        }
        std::string location = absolute_url(req, repo.url(), image.size() + file.size() + 2);
        if (!ends_with(location, "/")) location += '/';
        append_path_segment(location, image);
        location += '/';
        location += file;
        Response r = redirect(std::move(location));
        v1_headers(r);
        return r;
    }
    return v1_error(404, "");
}

Response Registry::search(const Request& req, const Snapshot& snap, Client& client) const {
    auto q = query_param(req.query, "q");
    if (!q || q->empty()) return v1_error(400, "parameter \"q\" is required");
    SearchBackendKind kind = choose_search_backend(config_.gsa_url, config_.solr_url);
    if (kind == SearchBackendKind::None) return v1_error(404, "");
    const std::string& url = kind == SearchBackendKind::Gsa ? config_.gsa_url : config_.solr_url;
    HttpClientOptions http;
    http.verify_tls = options_.search_verify_tls;
    http.ca_file = options_.search_ca_file;
    SearchRun outcome = run_search(kind, url, *q, http);
    if (!outcome) {
        log(log_, LogLevel::Error, log_id::kSearchFailed, outcome.error().message);
        return v1_error(outcome.error().http_status, "");
    }
    if (!outcome->notice.empty()) log(log_, LogLevel::Warn, log_id::kSearchNotice, outcome->notice);
    // results that name a repository are shown only when this server has it
    // and this client may read it (v2 first, then v1)
    std::vector<SearchResult> shown;
    for (auto& result : outcome->results) {
        if (result.should_filter) {
            std::optional<RepoView> repo = snap.find_v2(result.name);
            if (!repo) repo = snap.find_v1(result.name);
            if (!repo) client.decoy(result.name);
            if (!repo || !readable(*repo, client)) continue;
        }
        shown.push_back(std::move(result));
    }
    return v1_json(200, render_search_response(*q, shown));
}

}  // namespace crane
