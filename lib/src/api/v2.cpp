// The v2 endpoints: base, catalog, manifests, blobs, tags, referrers (README, "The API").
#include "api/content_path.h"
#include "api/handlers.h"
#include "api/negotiation.h"
#include "crane/json_writer.h"
#include "crane/media_types.h"
#include "crane/reference.h"
#include "crane/referrers_index.h"

namespace crane::api {

Response v2_base(Context&) {
    Response r;
    r.content_type = std::string(kMediaJson);
    r.body = "{}";
    return r;
}

Response v2_no_name(Context&) { return v2_error(V2Error::NameUnknown); }  // no endpoint names a repository here

std::optional<V2View> readable_v2_repository(Context& c) {
    const std::string_view name = c.match.v2->name;
    std::optional<V2View> repo = c.snap.find_v2(name);
    if (!repo) c.client.decoy(name);
    if (!repo || !c.client.may_read(*repo)) return std::nullopt;
    return repo;
}

namespace {

// The file at `path` in the repository: served from content_dir_v2, or a
// redirect to the repository's URL. `missing` is the answer when a served
// file is not there; a manifest's answers say Vary: Accept.
Response file_answer(Context& c, const V2View& repo, const std::string& path, std::string_view media_type,
                     V2Error missing) {
    const Config& config = c.settings.config;
    const bool manifest = missing == V2Error::ManifestUnknown;
    if (config.serve_content) {
        const FileAnswers answers = v2_file_answers(missing);
        auto file = content_file_path(config.content_dir_v2, repo.repository(), path);
        if (!file) return *answers.missing;
        Response r;
        r.if_missing = answers.missing;
        r.if_precondition_failed = answers.precondition_failed;
        r.file_path = std::move(*file);
        r.content_type = std::string(media_type);
        r.digest_header = manifest;
        // what the client asked for decides: a tag may point elsewhere after
        // the next publish even when the negotiated file is digest-named
        r.headers.push_back({"Cache-Control", content_cache_control(c.match.v2->path, config.data_dir_polling_interval,
                                                                    repo.is_protected())});
        if (manifest) r.headers.push_back({"Vary", "Accept"});
        return r;
    }
    std::string location = absolute_url(c.req, repo.url(), path.size() + 1);
    if (!ends_with(location, "/")) location += '/';
    append_path_segment(location, path);
    const CdnSettings& cdn = c.settings.cdn;
    if (cdn.rewrites() || cdn.signs()) location = cdn_apply(location, cdn, c.req.now);
    Response r = redirect(std::move(location));
    if (manifest) r.headers.push_back({"Vary", "Accept"});
    return r;
}

}  // namespace

Response v2_manifest(Context& c, const V2View& repo) {
    const std::string_view reference = c.match.v2->rest;
    if (reference.find('/') != std::string_view::npos) return v2_error(V2Error::ManifestUnknown);
    auto choice = negotiate_manifest(repo, reference, AcceptSet(c.req.accept));
    switch (choice.outcome) {
        case ManifestOutcome::Found: break;
        case ManifestOutcome::DigestInvalid: return v2_error(V2Error::DigestInvalid);
        case ManifestOutcome::Unknown:
            // a schema 1 manifest's digest is in no list: serving
            // content can look for its file (404 when missing)
            if (c.settings.config.serve_content) break;
            [[fallthrough]];
        case ManifestOutcome::OciNotAccepted: {
            Response r = v2_error(V2Error::ManifestUnknown, choice.message);
            r.headers.push_back({"Vary", "Accept"});
            return r;
        }
    }
    return file_answer(c, repo, choice.path, choice.media_type, V2Error::ManifestUnknown);
}

Response v2_blob(Context& c, const V2View& repo) {
    if (!is_digest(c.match.v2->rest)) return v2_error(V2Error::DigestInvalid);
    return file_answer(c, repo, std::string(c.match.v2->path), kMediaOctetStream, V2Error::BlobUnknown);
}

Response v2_tag_file(Context& c, const V2View& repo) {
    return file_answer(c, repo, std::string(c.match.v2->path), kMediaJson, V2Error::NameUnknown);
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

Response v2_catalog(Context& c) {
    auto paging = paging_of(c.req.query);
    if (!paging) return v2_error(V2Error::PaginationNumberInvalid);
    const SnapRange<V2View> all = c.snap.v2_sorted();
    json::Writer w;
    w.begin_object().key("repositories").begin_array();
    std::string link = write_page(
        w, all.begin(), all.end(), *paging, "/v2/_catalog", [](const V2View& r) { return r.id(); },
        [&](const V2View& r) { return c.client.may_read(r); });
    w.end_array().end_object();
    return paged_json(w, std::move(link));
}

// tags/list from the metadata's own tag list (sorted, unique); a repository
// without one has its tags/list file served or redirected to.
Response v2_tag_list(Context& c, const V2View& repo) {
    if (!repo.has_tags()) return file_answer(c, repo, std::string(c.match.v2->path), kMediaJson, V2Error::NameUnknown);
    auto paging = paging_of(c.req.query);
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
Response v2_referrers(Context& c, const V2View& repo) {
    const std::string_view digest = c.match.v2->rest;
    if (!is_digest(digest)) return v2_error(V2Error::DigestInvalid);
    std::string filter = query_param(c.req.query, "artifactType").value_or(std::string());
    ReferrersIndexWriter index;
    for (const ReferrerView d : repo.find_referrers(digest)) {
        const std::string_view artifact_type = d.artifact_type();
        if (!filter.empty() && artifact_type != filter) continue;
        index.begin_descriptor(d.media_type(), d.digest(), d.size(), artifact_type);
        for (std::size_t i = 0, n = d.annotation_count(); i < n; ++i) {
            const auto [k, v] = d.annotation(i);
            index.annotation(k, v);
        }
        index.end_descriptor();
    }
    Response r;
    r.content_type = std::string(kMediaOciIndex);
    r.body = index.take();
    if (!filter.empty()) r.headers.push_back({"OCI-Filters-Applied", "artifactType"});
    return r;
}

}  // namespace crane::api
