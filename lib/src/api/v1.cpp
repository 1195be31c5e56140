// The v1 endpoints: ping, users, search, images, repositories (README, "The API").
#include <algorithm>

#include "api/content_path.h"
#include "api/handlers.h"
#include "crane/json_writer.h"
#include "crane/media_types.h"
#include "crane/search.h"

namespace crane::api {

Response v1_ping(Context&) {
    Response r = v1_json(200, "true");
    r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
    return r;
}

Response v1_users(Context& c) {
    Response r = c.req.method == "POST" ? v1_json(201, "\"User Created\"") : v1_json(200, "\"OK\"");
    r.headers.push_back({"X-Docker-Registry-Standalone", "True"});
    return r;
}

std::optional<V1View> readable_v1_repository(Context& c) {
    std::string_view repo_id = c.match.name;
    if (starts_with(repo_id, "library/")) repo_id.remove_prefix(8);
    std::optional<V1View> repo = c.snap.find_v1(repo_id);
    if (!repo) c.client.decoy(repo_id);
    if (!repo || !c.client.may_read(*repo)) return std::nullopt;
    return repo;
}

Response v1_repository_images(Context& c, const V1View& repo) {
    Response r = v1_json(200, std::string(repo.images_json()));
    std::string_view endpoint = c.settings.config.endpoint;
    if (endpoint.empty()) endpoint = c.req.host.empty() ? c.req.server_host : c.req.host;
    r.headers.push_back({"X-Docker-Endpoints", std::string(endpoint)});
    return r;
}

Response v1_repository_tags(Context&, const V1View& repo) {
    return v1_json(200, std::string(repo.tags_json()));
}

Response v1_repository_tag(Context& c, const V1View& repo) {
    const std::optional<std::string_view> image = repo.find_tag(c.match.file);
    if (!image) return v1_error(404, "");
    return v1_json(200, json::quoted(*image));
}

Response v1_image_file(Context& c) {
    const std::string_view image = c.match.name;
    const std::string_view file = c.match.file;
    const Config& config = c.settings.config;
    const SnapRange<V1View> holders = c.snap.repos_with_image(image);
    if (holders.empty()) {
        c.client.decoy(image);
        return v1_error(404, "");
    }
    for (const V1View repo : holders) {
        if (!c.client.may_read(repo)) continue;
        if (config.serve_content) {
            Response r;
            auto path = content_file_path(config.content_dir_v1, repo.repository(),
                                          std::string(image) + "/" + std::string(file));
            if (!path) return v1_error(404, "");
            r.file_path = std::move(*path);
            const FileAnswers answers = v1_file_answers();
            r.if_missing = answers.missing;
            r.if_precondition_failed = answers.precondition_failed;
            // ancestry and json are JSON documents; only the layer is opaque
            r.content_type = std::string(file == "layer" ? kMediaOctetStream : kMediaJson);
            // v1 image ids name their content, so the files never change
            r.headers.push_back({"Cache-Control", repo.is_protected() ? "private, max-age=31536000, immutable"
                                                                     : "public, max-age=31536000, immutable"});
            v1_headers(r);
            return r;
        }
        std::string location = absolute_url(c.req, repo.url(), image.size() + file.size() + 2);
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

Response v1_search(Context& c) {
    const Config& config = c.settings.config;
    auto q = query_param(c.req.query, "q");
    if (!q || q->empty()) return v1_error(400, "parameter \"q\" is required");
    SearchBackendKind kind = choose_search_backend(config.gsa_url, config.solr_url);
    if (kind == SearchBackendKind::None) return v1_error(404, "");
    const std::string& url = kind == SearchBackendKind::Gsa ? config.gsa_url : config.solr_url;
    HttpClientOptions http;
    http.verify_tls = c.settings.options.search_verify_tls;
    http.ca_file = c.settings.options.search_ca_file;
    SearchRun outcome = run_search(kind, url, *q, http);
    if (!outcome) {
        log(c.settings.log, LogLevel::Error, log_id::kSearchFailed, outcome.error().message);
        return v1_error(outcome.error().http_status, "");
    }
    if (!outcome->notice.empty()) log(c.settings.log, LogLevel::Warn, log_id::kSearchNotice, outcome->notice);
    // results that name a repository are shown only when this server has it
    // and this client may read it (v2 first, then v1)
    std::vector<SearchResult> shown;
    for (auto& result : outcome->results) {
        if (result.should_filter) {
            std::optional<RepoView> repo = c.snap.find_v2(result.name);
            if (!repo) repo = c.snap.find_v1(result.name);
            if (!repo) c.client.decoy(result.name);
            if (!repo || !c.client.may_read(*repo)) continue;
        }
        shown.push_back(std::move(result));
    }
    return v1_json(200, render_search_response(*q, shown));
}

}  // namespace crane::api
