// Admin page rendering (see admin_page.h).
#include "api/admin_page.h"

#include "crane/json_writer.h"

namespace crane {

namespace {

void escape_html(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
}

const char* kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222}"
    "h1{font-size:1.4em}table{border-collapse:collapse;width:100%;margin-bottom:2em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}code{font-family:ui-monospace,monospace;font-size:.9em}"
    ".prot{color:#a40}nav a{margin-right:1em}";

std::string page(std::string_view title, const std::string& content) {
    std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
    escape_html(out, title);
    out += "</title><style>";
    out += kStyle;
    out += "</style></head><body><nav><a href=\"/crane/repositories/v1\">v1 repositories</a>"
           "<a href=\"/crane/repositories/v2\">v2 repositories</a></nav><h1>";
    escape_html(out, title);
    out += "</h1>\n";
    out += content;
    out += "</body></html>\n";
    return out;
}

}  // namespace

std::string admin_v1_json(const Snapshot& snap) {
    json::Writer w;
    w.begin_object();
    for (const V1View repo : snap.v1_sorted()) {
        w.key(repo.id()).begin_object();
        w.key("image_ids").begin_array();
        for (const std::string_view id : repo.image_ids()) w.string(id);
        w.end_array();
        w.key("protected").boolean(repo.is_protected());
        w.key("tags").raw(repo.tags_json());
        w.end_object();
    }
    w.end_object();
    return w.take();
}

std::string admin_v2_json(const Snapshot& snap) {
    json::Writer w;
    w.begin_object();
    for (const V2View repo : snap.v2_sorted()) {
        w.key(repo.id()).begin_object().key("protected").boolean(repo.is_protected()).end_object();
    }
    w.end_object();
    return w.take();
}

std::string admin_v1_html(const Snapshot& snap) {
    const SnapRange<V1View> repos = snap.v1_sorted();
    std::string t = "<p>" + std::to_string(repos.size()) + " v1 repositories</p>\n";
    t += "<table><tr><th>Repository</th><th>Protected</th><th>Tags</th><th>Image IDs</th></tr>\n";
    for (const V1View repo : repos) {
        t += "<tr><td><code>";
        escape_html(t, repo.id());
        t += "</code></td><td>";
        t += repo.is_protected() ? "<span class=\"prot\">yes</span>" : "no";
        t += "</td><td>";
        for (std::size_t i = 0, n = repo.tag_count(); i < n; ++i) {
            const auto [tag, image] = repo.tag(i);
            t += "<code>";
            escape_html(t, tag);
            t += "</code> &rarr; <code>";
            escape_html(t, image);
            t += "</code><br>";
        }
        t += "</td><td>";
        for (const std::string_view id : repo.image_ids()) {
            t += "<code>";
            escape_html(t, id);
            t += "</code><br>";
        }
        t += "</td></tr>\n";
    }
    t += "</table>\n";
    return page("Crane v1 repositories", t);
}

std::string admin_v2_html(const Snapshot& snap) {
    const SnapRange<V2View> repos = snap.v2_sorted();
    std::string t = "<p>" + std::to_string(repos.size()) + " v2 repositories</p>\n";
    t += "<table><tr><th>Repository</th><th>Protected</th><th>Metadata version</th><th>URL</th></tr>\n";
    for (const V2View repo : repos) {
        t += "<tr><td><code>";
        escape_html(t, repo.id());
        t += "</code></td><td>";
        t += repo.is_protected() ? "<span class=\"prot\">yes</span>" : "no";
        t += "</td><td>" + std::to_string(repo.version()) + "</td><td><code>";
        escape_html(t, repo.url());
        t += "</code></td></tr>\n";
    }
    t += "</table>\n";
    return page("Crane v2 repositories", t);
}

}  // namespace crane
