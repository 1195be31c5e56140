// Prometheus metrics (README, "Metrics"): the counters every httpd child
// adds to, laid out in one block of shared memory the parent makes (one
// slot per scoreboard process slot, a bounded table of repository names),
// and the text exposition format 0.0.4 the scrape writes. The Apache glue
// (mod_crane/metrics.cpp) owns the memory and fills RequestRecord.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crane/http.h"

namespace crane::metrics {

inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

inline constexpr std::size_t kRoutes = static_cast<std::size_t>(RouteId::Count);
inline constexpr std::size_t kReasons = static_cast<std::size_t>(ErrorReason::Count);
inline constexpr std::size_t kStatusClasses = 5;  // 1xx .. 5xx
// The latency histogram's upper bounds in microseconds; +Inf follows.
inline constexpr std::uint64_t kBucketBoundsUs[] = {500,    1000,   2500,    5000,    10000,   25000,   50000,
                                                    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
inline constexpr std::size_t kBuckets = sizeof(kBucketBoundsUs) / sizeof(kBucketBoundsUs[0]) + 1;
// CraneMetricsRepositories' range, and the longest name that gets a series.
inline constexpr std::uint32_t kMaxRepositoryLimit = 10000;
inline constexpr std::size_t kMaxRepositoryName = 255;

// The label values: route="v2_manifest", reason="name_unknown" (None:
// "other", a 4xx no reason was given for).
std::string_view route_label(RouteId route);
std::string_view reason_label(ErrorReason reason);

// What the answer was: a body, a content file sent, a redirect.
enum class Answer : std::uint8_t { Body, File, Redirect };

// One request, as it ended.
struct RequestRecord {
    RouteId route = RouteId::Unmatched;
    int status = 0;                          // the status sent (httpd's own error pages included)
    ErrorReason reason = ErrorReason::None;  // of a 4xx
    bool get = false;                        // the method was GET
    Answer answer = Answer::Body;
    std::uint64_t bytes = 0;        // body bytes sent
    std::uint64_t duration_us = 0;  // from the request line to the end
    std::string_view repository;    // the repository NAME of the path
};

// What the block holds: how many slots, how many repository names.
struct Shape {
    std::uint32_t slots = 1;
    std::uint32_t repository_limit = 0;  // 0: no per-repository series
};

// Everything the slots hold, summed.
struct Totals {
    std::uint64_t requests[kRoutes][kStatusClasses] = {};
    std::uint64_t duration_buckets[kRoutes][kBuckets] = {};  // each bucket's own count, not cumulative
    std::uint64_t duration_sum_us[kRoutes] = {};
    std::uint64_t client_errors[kReasons] = {};
    std::uint64_t redirects = 0, served_files = 0, served_bytes = 0;
    bool per_repository = false;  // repository_limit > 0
    std::vector<std::pair<std::string, std::uint64_t>> repository_pulls;  // in first-seen order
    std::uint64_t other_pulls = 0;
};

// The counters in a block of shared memory. Every counter is a relaxed
// std::atomic<std::uint64_t> that is only ever added to: a slot outlives the
// child that used it (the next child in that scoreboard slot carries on),
// and two processes adding to one slot still count right. The repository
// names go into a shared open-addressing table, first come first served,
// inserted lock-free (a compare-and-swap claims an entry); past the limit a
// name counts as "other". The handle is a few pointers into the block, valid
// in every process that maps it at the same address (fork).
class SharedCounters {
public:
    // The size of a block of this shape.
    static std::size_t bytes_for(Shape shape);
    // Lays out a zeroed block of bytes_for(shape) bytes at mem (64-byte
    // aligned). slots >= 1, repository_limit <= kMaxRepositoryLimit.
    static SharedCounters create(void* mem, Shape shape);
    // The counters already in mem (size bytes) when they were laid out in
    // this shape by this layout version; nullopt otherwise.
    static std::optional<SharedCounters> adopt(void* mem, std::size_t size, Shape shape);

    // Counts one request into slot's counters (out of range: slot 0). A
    // handful of relaxed atomic adds; a manifest pull also looks its
    // repository up. No lock, no allocation.
    void record(std::uint32_t slot, const RequestRecord& r) const noexcept;

    // The index of the repository's pull counter, inserting the name while
    // there is room; repository_limit() when it has none.
    std::uint32_t repository_index(std::string_view name) const noexcept;

    Totals totals() const;
    Shape shape() const { return {slots_, limit_}; }
    std::uint32_t repository_limit() const { return limit_; }

private:
    struct Header;
    struct SlotCounters;
    struct NameEntry;
    explicit SharedCounters(void* mem);
    SlotCounters& slot(std::uint32_t i) const;
    std::atomic<std::uint64_t>* pulls(std::uint32_t i) const;

    Header* header_ = nullptr;
    std::atomic<std::uint32_t>* index_ = nullptr;  // 0 empty, 1 being written, else order + 2
    NameEntry* names_ = nullptr;                   // by order of insertion
    unsigned char* slots_base_ = nullptr;
    std::size_t slot_stride_ = 0;
    std::uint32_t slots_ = 0, limit_ = 0, index_mask_ = 0;
};

// ---- the text exposition format 0.0.4 ----

struct Label {
    std::string_view name;
    std::string_view value;  // escaped when written
};

// Writes families: `# HELP`, `# TYPE`, then their samples.
class TextWriter {
public:
    // type: "counter", "gauge" or "histogram"; help is escaped.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    // value already in the format's number syntax
    void sample_text(std::string_view name, std::initializer_list<Label> labels, std::string_view value);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// A number as the format writes it: the shortest text that reads back as
// the same double ("0.25", "1e-06", "+Inf", "NaN").
std::string format_number(double value);
// Microseconds as seconds, exactly ("0.001250").
std::string format_micros_as_seconds(std::uint64_t us);

// The request families of totals, in the README's order.
void write_totals(TextWriter& w, const Totals& totals);

}  // namespace crane::metrics
