// The v2 endpoints: base, catalog, manifests, blobs, tags, referrers (README, "The API").
#include "crane/registry.h"

#include "api/cdn.h"
#include "api/content_path.h"
#include "api/handler_support.h"
#include "api/negotiation.h"
#include "api/v2_path.h"
#include "crane/json_writer.h"
#include "crane/media_types.h"

namespace crane {

using namespace api;

Response Registry::v2(const Request& req, const RouteMatch& m, const Snapshot& snap, Client& client) const {
    if (m.kind == RouteKind::V2Base) {
        Response r;
        r.content_type = std::string(kMediaJson);
        r.body = "{}";
        return r;
    }
    if (m.kind == RouteKind::V2Catalog) return catalog(req, snap, client);
    auto split = split_v2_path(m.rest);
    // no endpoint names a repository here
    if (!split) return v2_error(V2Error::NameUnknown);
    const std::optional<V2View> repo = snap.find_v2(split->name);
    if (!repo) client.decoy(split->name);
    // byte-identical for unknown and unreadable repos
    if (!repo || !readable(*repo, client)) return v2_error(V2Error::NameUnknown);

    std::string path;
    std::string_view media_type = kMediaJson;
    V2Error missing = V2Error::NameUnknown;
    switch (split->kind) {
        case V2Kind::Manifests: {
            if (split->rest.find('/') != std::string_view::npos) return v2_error(V2Error::ManifestUnknown);
            auto choice = negotiate_manifest(*repo, split->rest, AcceptSet(req.accept));
            switch (choice.outcome) {
                case ManifestOutcome::Found: break;
                case ManifestOutcome::DigestInvalid: return v2_error(V2Error::DigestInvalid);
                case ManifestOutcome::Unknown:
                    // a schema 1 manifest's digest is in no list: serving
                    // content can look for its file (404 when missing)
                    if (config_.serve_content) break;
                    [[fallthrough]];
                case ManifestOutcome::OciNotAccepted: {
                    Response r = v2_error(V2Error::ManifestUnknown, choice.message);
                    r.headers.push_back({"Vary", "Accept"});
                    return r;
                }
            }
            path = std::move(choice.path);
            media_type = choice.media_type;
            missing = V2Error::ManifestUnknown;
            break;
        }
        case V2Kind::Blobs:
            if (!is_valid_digest(split->rest)) return v2_error(V2Error::DigestInvalid);
            path = std::string(split->path);
            media_type = kMediaOctetStream;
            missing = V2Error::BlobUnknown;
            break;
        case V2Kind::Referrers:
            if (!is_valid_digest(split->rest)) return v2_error(V2Error::DigestInvalid);
            return referrers(req, *repo, split->rest);
        case V2Kind::Tags:
            if (split->rest == "list" && repo->has_tags()) return tag_list(req, *repo);
            path = std::string(split->path);
            break;
    }
    const bool manifest = split->kind == V2Kind::Manifests;

    if (config_.serve_content) {
        Response r;
        auto if_missing = std::make_shared<Response>(v2_error(missing));
        if (manifest) if_missing->headers.push_back({"Vary", "Accept"});
        r.if_missing = std::move(if_missing);
        auto file = content_file_path(config_.content_dir_v2, repo->repository(), path);
        if (!file) return *r.if_missing;
        r.file_path = std::move(*file);
        r.content_type = std::string(media_type);
        r.digest_header = manifest;
        // what the client asked for decides: a tag may point elsewhere after
        // the next publish even when the negotiated file is digest-named
        r.headers.push_back({"Cache-Control", content_cache_control(split->path, config_.data_dir_polling_interval,
                                                                    repo->is_protected())});
        if (manifest) r.headers.push_back({"Vary", "Accept"});
        return r;
    }
    std::string location = absolute_url(req, repo->url(), path.size() + 1);
    if (!ends_with(location, "/")) location += '/';
    append_path_segment(location, path);
    if (cdn_->rewrites() || cdn_->signs()) location = cdn_apply(location, *cdn_, req.now);
    Response r = redirect(std::move(location));
    if (manifest) r.headers.push_back({"Vary", "Accept"});
    return r;
}

namespace {

// The n / last query parameters of a paged list (_catalog, tags/list).
struct Paging {
    std::optional<std::size_t> limit;  // n; none: everything
    std::string last;                  // names after this one only
};

std::optional<Paging> paging_of(std::string_view query) {
    Paging p;
    if (auto n = query_param(query, "n")) {
        auto parsed = parse_int(*n);
        if (!parsed || *parsed < 0) return std::nullopt;
        p.limit = static_cast<std::size_t>(*parsed);
    }
    p.last = query_param(query, "last").value_or(std::string());
    return p;
}

// Writes the names of sorted [begin, end) after `last` that `keep` accepts,
// at most `limit` of them; returns the Link header value when more follow.
// name_of gives a string_view; names compare byte-wise, as std::string's <.
template <typename It, typename NameOf, typename Keep>
std::string write_page(json::Writer& w, It begin, It end, const Paging& paging, std::string_view link_path,
                       NameOf name_of, Keep keep) {
    It it = paging.last.empty() ? begin
                                : std::upper_bound(begin, end, std::string_view(paging.last),
                                                   [&](std::string_view l, const auto& item) {
                                                       return l < std::string_view(name_of(item));
                                                   });
    std::size_t count = 0;
    std::string_view last_sent;
    for (; it != end; ++it) {
        if (!keep(*it)) continue;
        if (paging.limit && count == *paging.limit) {
            if (count == 0) break;
            std::string link = "<";
            link += link_path;
            link += "?n=" + std::to_string(*paging.limit) + "&last=";
            append_query_value(link, last_sent);
            link += ">; rel=\"next\"";
            return link;
        }
        last_sent = name_of(*it);
        w.string(last_sent);
        ++count;
    }
    return {};
}

Response paged_json(json::Writer& w, std::string link) {
    Response r;
    r.content_type = std::string(kMediaJson);
    r.body = w.take();
    if (!link.empty()) r.headers.push_back({"Link", std::move(link)});
    return r;
}

}  // namespace

Response Registry::catalog(const Request& req, const Snapshot& snap, Client& client) const {
    auto paging = paging_of(req.query);
    if (!paging) return v2_error(V2Error::PaginationNumberInvalid);
    const SnapRange<V2View> all = snap.v2_sorted();
    json::Writer w;
    w.begin_object().key("repositories").begin_array();
    std::string link = write_page(
        w, all.begin(), all.end(), *paging, "/v2/_catalog", [](const V2View& r) { return r.id(); },
        [&](const V2View& r) { return readable(r, client); });
    w.end_array().end_object();
    return paged_json(w, std::move(link));
}

// tags/list from the metadata's own tag list (sorted, unique).
Response Registry::tag_list(const Request& req, const V2View& repo) const {
    auto paging = paging_of(req.query);
    if (!paging) return v2_error(V2Error::PaginationNumberInvalid);
    std::string link_path = "/v2/";
    append_path_segment(link_path, repo.id());
    link_path += "/tags/list";
    json::Writer w;
    w.begin_object().key("name").string(repo.id()).key("tags").begin_array();
    const SnapRange<std::string_view> tags = repo.tags();
    std::string link = write_page(
        w, tags.begin(), tags.end(), *paging, link_path, [](std::string_view t) { return t; },
        [](std::string_view) { return true; });
    w.end_array().end_object();
    return paged_json(w, std::move(link));
}

// The referrers of `digest` as an OCI image index, optionally filtered by
// artifactType; an empty index when there are none.
Response Registry::referrers(const Request& req, const V2View& repo, std::string_view digest) const {
    std::string filter = query_param(req.query, "artifactType").value_or(std::string());
    json::Writer w;
    w.begin_object().key("schemaVersion").integer(2).key("mediaType").string(kMediaOciIndex);
    w.key("manifests").begin_array();
    for (const ReferrerView d : repo.find_referrers(digest)) {
        const std::string_view artifact_type = d.artifact_type();
        if (!filter.empty() && artifact_type != filter) continue;
        w.begin_object().key("mediaType").string(d.media_type()).key("digest").string(d.digest());
        w.key("size").integer(d.size());
        if (!artifact_type.empty()) w.key("artifactType").string(artifact_type);
        if (const std::size_t n = d.annotation_count(); n != 0) {
            w.key("annotations").begin_object();
            for (std::size_t i = 0; i < n; ++i) {
                const auto [k, v] = d.annotation(i);
                w.key(k).string(v);
            }
            w.end_object();
        }
        w.end_object();
    }
    w.end_array().end_object();
    Response r;
    r.content_type = std::string(kMediaOciIndex);
    r.body = w.take();
    if (!filter.empty()) r.headers.push_back({"OCI-Filters-Applied", "artifactType"});
    return r;
}

}  // namespace crane
