// The Prometheus text exposition format 0.0.4 (crane/metrics.h): label and
// help escaping, numbers, and the request families.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "crane/metrics.h"

namespace crane::metrics {

std::string_view route_label(RouteId route) {
    switch (route) {
        case RouteId::Unmatched: return "unmatched";
        case RouteId::V1Ping: return "v1_ping";
        case RouteId::V1Users: return "v1_users";
        case RouteId::V1Search: return "v1_search";
        case RouteId::V1ImageFile: return "v1_image_file";
        case RouteId::V1RepositoryImages: return "v1_repository_images";
        case RouteId::V1RepositoryTags: return "v1_repository_tags";
        case RouteId::V1RepositoryTag: return "v1_repository_tag";
        case RouteId::V2Base: return "v2_base";
        case RouteId::V2Catalog: return "v2_catalog";
        case RouteId::V2Manifest: return "v2_manifest";
        case RouteId::V2Blob: return "v2_blob";
        case RouteId::V2TagList: return "v2_tag_list";
        case RouteId::V2TagFile: return "v2_tag_file";
        case RouteId::V2Referrers: return "v2_referrers";
        case RouteId::V2NoName: return "v2_no_name";
        case RouteId::AdminV1: return "admin_v1";
        case RouteId::AdminV2: return "admin_v2";
        case RouteId::Count: break;
    }
    return "unmatched";
}

std::string_view reason_label(ErrorReason reason) {
    switch (reason) {
        case ErrorReason::None: return "other";
        case ErrorReason::NotFound: return "not_found";
        case ErrorReason::BadRequest: return "bad_request";
        case ErrorReason::MethodNotAllowed: return "method_not_allowed";
        case ErrorReason::NameUnknown: return "name_unknown";
        case ErrorReason::ManifestUnknown: return "manifest_unknown";
        case ErrorReason::BlobUnknown: return "blob_unknown";
        case ErrorReason::DigestInvalid: return "digest_invalid";
        case ErrorReason::NameInvalid: return "name_invalid";
        case ErrorReason::PaginationNumberInvalid: return "pagination_number_invalid";
        case ErrorReason::Unsupported: return "unsupported";
        case ErrorReason::PreconditionFailed: return "precondition_failed";
        case ErrorReason::Unauthorized: return "unauthorized";
        case ErrorReason::Count: break;
    }
    return "other";
}

namespace {

// HELP text: backslash and line feed escaped; label values: double quote too.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

void append_sample(std::string& out, std::string_view name, std::initializer_list<Label> labels,
                   std::string_view value) {
    out += name;
    if (labels.size()) {
        out += '{';
        bool first = true;
        for (const Label& l : labels) {
            if (!first) out += ',';
            first = false;
            out += l.name;
            out += "=\"";
            append_escaped(out, l.value, true);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

}  // namespace

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    append_escaped(out_, help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
    append_sample(out_, name, labels, std::to_string(value));
}

void TextWriter::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    append_sample(out_, name, labels, format_number(value));
}

void TextWriter::sample_text(std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    append_sample(out_, name, labels, value);
}

std::string format_number(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[32];
    if (value == std::floor(value) && std::fabs(value) < 1e15) {  // whole: no exponent
        std::snprintf(buf, sizeof(buf), "%.0f", value);
        return buf;
    }
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
        if (std::strtod(buf, nullptr) == value) break;
    }
    return buf;
}

std::string format_micros_as_seconds(std::uint64_t us) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%llu.%06llu", static_cast<unsigned long long>(us / 1000000),
                  static_cast<unsigned long long>(us % 1000000));
    return buf;
}

namespace {

constexpr const char* kClassLabels[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

void write_requests(TextWriter& w, const Totals& t) {
    constexpr std::string_view name = "crane_http_requests_total";
    w.family(name, "counter", "Requests mod_crane answered, by route and status class.");
    for (std::size_t r = 0; r < kRoutes; ++r) {
        for (std::size_t k = 0; k < kStatusClasses; ++k) {
            if (!t.requests[r][k]) continue;
            w.sample(name, {{"route", route_label(static_cast<RouteId>(r))}, {"code", kClassLabels[k]}},
                     t.requests[r][k]);
        }
    }
}

void write_durations(TextWriter& w, const Totals& t) {
    w.family("crane_http_request_duration_seconds", "histogram",
             "Time from reading the request line to logging the request, by route.");
    for (std::size_t r = 0; r < kRoutes; ++r) {
        std::uint64_t count = 0;
        for (std::size_t b = 0; b < kBuckets; ++b) count += t.duration_buckets[r][b];
        if (!count) continue;
        const std::string_view route = route_label(static_cast<RouteId>(r));
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < kBuckets; ++b) {
            cumulative += t.duration_buckets[r][b];
            const std::string le = b + 1 < kBuckets ? format_number(static_cast<double>(kBucketBoundsUs[b]) / 1e6)
                                                    : std::string("+Inf");
            w.sample("crane_http_request_duration_seconds_bucket", {{"route", route}, {"le", le}}, cumulative);
        }
        w.sample_text("crane_http_request_duration_seconds_sum", {{"route", route}},
                      format_micros_as_seconds(t.duration_sum_us[r]));
        w.sample("crane_http_request_duration_seconds_count", {{"route", route}}, count);
    }
}

void write_client_errors(TextWriter& w, const Totals& t) {
    constexpr std::string_view name = "crane_http_client_errors_total";
    w.family(name, "counter", "4xx answers by reason (other: a 4xx no reason was given for).");
    for (std::size_t k = 1; k <= kReasons; ++k) {  // "other" last
        const std::size_t reason = k % kReasons;
        w.sample(name, {{"reason", reason_label(static_cast<ErrorReason>(reason))}}, t.client_errors[reason]);
    }
}

}  // namespace

void write_totals(TextWriter& w, const Totals& t) {
    write_requests(w, t);
    write_durations(w, t);
    write_client_errors(w, t);
    w.family("crane_redirects_total", "counter", "Answers redirecting the client to the content's URL.");
    w.sample("crane_redirects_total", {}, t.redirects);
    w.family("crane_served_files_total", "counter", "Content files sent with a 2xx status (serve-content mode).");
    w.sample("crane_served_files_total", {}, t.served_files);
    w.family("crane_served_bytes_total", "counter", "Body bytes of the content files sent.");
    w.sample("crane_served_bytes_total", {}, t.served_bytes);
    if (!t.per_repository) return;
    constexpr std::string_view name = "crane_repository_pulls_total";
    w.family(name, "counter",
             "Manifest GETs answered 2xx or 3xx, by repository: the first names seen, the rest as other.");
    for (const auto& [repository, pulls] : t.repository_pulls) w.sample(name, {{"repository", repository}}, pulls);
    w.sample(name, {{"repository", "other"}}, t.other_pulls);
}

}  // namespace crane::metrics
