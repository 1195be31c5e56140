// The counters' layout in shared memory (crane/metrics.h):
//
//   Header        magic, layout version, shape, size; the names in use
//   index         index capacity (a power of two >= 2 * limit) entries
//   names         limit entries, by order of insertion
//   slots         `slots` times: SlotCounters, then limit pull counters
//
// each part 64-byte aligned, so children in different slots do not share a
// cache line.
#include <algorithm>
#include <cstring>
#include <new>
#include <thread>

#include "crane/metrics.h"

namespace crane::metrics {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "counters shared between processes must be lock-free");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "the name index is shared between processes");

namespace {

constexpr std::uint64_t kMagic = 0x6372616e656d6574ULL;  // "cranemet"
// Bumped whenever the layout changes: a module upgrade on a graceful
// restart then starts a block of its own rather than misreading the old one.
constexpr std::uint32_t kLayoutVersion = 1;
constexpr std::size_t kAlign = 64;

constexpr std::uint32_t kEmpty = 0;
constexpr std::uint32_t kWriting = 1;
constexpr std::uint32_t kFirstOrder = 2;
// How long a lookup waits for another process to finish writing a name (a
// few dozen instructions) before it counts the pull as "other".
constexpr int kMaxSpins = 1000;

constexpr std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::uint32_t index_capacity(std::uint32_t limit) {
    if (limit == 0) return 0;
    std::uint32_t c = 1;
    while (c < 2 * limit) c <<= 1;
    return c;
}

std::uint32_t name_hash(std::string_view name) {  // FNV-1a
    std::uint32_t h = 2166136261u;
    for (unsigned char c : name) h = (h ^ c) * 16777619u;
    return h;
}

inline void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
}

inline std::uint64_t get(const std::atomic<std::uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
}

std::size_t bucket_of(std::uint64_t us) {
    std::size_t b = 0;
    while (b < kBuckets - 1 && us > kBucketBoundsUs[b]) ++b;
    return b;
}

}  // namespace

struct SharedCounters::Header {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t slots;
    std::uint32_t repository_limit;
    std::uint32_t index_capacity;
    std::uint64_t bytes;
    std::atomic<std::uint32_t> names_used;  // orders handed out (may pass the limit in a race)
};

struct SharedCounters::NameEntry {
    std::atomic<std::uint32_t> ready;  // set (release) once text is written
    std::uint32_t hash;
    std::uint32_t length;
    char text[kMaxRepositoryName];
};

struct alignas(kAlign) SharedCounters::SlotCounters {
    std::atomic<std::uint64_t> requests[kRoutes][kStatusClasses];
    std::atomic<std::uint64_t> duration_buckets[kRoutes][kBuckets];
    std::atomic<std::uint64_t> duration_sum_us[kRoutes];
    std::atomic<std::uint64_t> client_errors[kReasons];
    std::atomic<std::uint64_t> redirects, served_files, served_bytes, other_pulls;
};

namespace {

struct Offsets {
    std::size_t index, names, slots, stride, total;
};

template <typename Header, typename NameEntry, typename SlotCounters>
Offsets offsets_of(Shape shape) {
    Offsets o;
    o.index = round_up(sizeof(Header));
    o.names = o.index + round_up(sizeof(std::atomic<std::uint32_t>) * index_capacity(shape.repository_limit));
    o.slots = o.names + round_up(sizeof(NameEntry) * shape.repository_limit);
    o.stride = round_up(sizeof(SlotCounters) + sizeof(std::atomic<std::uint64_t>) * shape.repository_limit);
    o.total = o.slots + o.stride * shape.slots;
    return o;
}

}  // namespace

std::size_t SharedCounters::bytes_for(Shape shape) {
    return offsets_of<Header, NameEntry, SlotCounters>(shape).total;
}

SharedCounters::SharedCounters(void* mem) {
    header_ = static_cast<Header*>(mem);
    Shape shape{header_->slots, header_->repository_limit};
    const Offsets o = offsets_of<Header, NameEntry, SlotCounters>(shape);
    auto* base = static_cast<unsigned char*>(mem);
    index_ = reinterpret_cast<std::atomic<std::uint32_t>*>(base + o.index);
    names_ = reinterpret_cast<NameEntry*>(base + o.names);
    slots_base_ = base + o.slots;
    slot_stride_ = o.stride;
    slots_ = shape.slots;
    limit_ = shape.repository_limit;
    index_mask_ = header_->index_capacity ? header_->index_capacity - 1 : 0;
}

SharedCounters SharedCounters::create(void* mem, Shape shape) {
    const Offsets o = offsets_of<Header, NameEntry, SlotCounters>(shape);
    auto* base = static_cast<unsigned char*>(mem);
    std::memset(base, 0, o.total);
    auto* h = new (base) Header{};
    h->magic = kMagic;
    h->version = kLayoutVersion;
    h->slots = shape.slots;
    h->repository_limit = shape.repository_limit;
    h->index_capacity = index_capacity(shape.repository_limit);
    h->bytes = o.total;
    for (std::uint32_t i = 0; i < h->index_capacity; ++i) {
        new (base + o.index + i * sizeof(std::atomic<std::uint32_t>)) std::atomic<std::uint32_t>(kEmpty);
    }
    for (std::uint32_t i = 0; i < shape.repository_limit; ++i) new (base + o.names + i * sizeof(NameEntry)) NameEntry{};
    for (std::uint32_t s = 0; s < shape.slots; ++s) {
        unsigned char* slot = base + o.slots + s * o.stride;
        new (slot) SlotCounters{};
        for (std::uint32_t i = 0; i < shape.repository_limit; ++i) {
            new (slot + sizeof(SlotCounters) + i * sizeof(std::atomic<std::uint64_t>)) std::atomic<std::uint64_t>(0);
        }
    }
    return SharedCounters(mem);
}

std::optional<SharedCounters> SharedCounters::adopt(void* mem, std::size_t size, Shape shape) {
    if (!mem || size < sizeof(Header)) return std::nullopt;
    const auto* h = static_cast<const Header*>(mem);
    if (h->magic != kMagic || h->version != kLayoutVersion || h->slots != shape.slots ||
        h->repository_limit != shape.repository_limit || h->bytes != bytes_for(shape) || size < h->bytes) {
        return std::nullopt;
    }
    return SharedCounters(mem);
}

SharedCounters::SlotCounters& SharedCounters::slot(std::uint32_t i) const {
    return *reinterpret_cast<SlotCounters*>(slots_base_ + i * slot_stride_);
}

std::atomic<std::uint64_t>* SharedCounters::pulls(std::uint32_t i) const {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(slots_base_ + i * slot_stride_ + sizeof(SlotCounters));
}

void SharedCounters::record(std::uint32_t slot_index, const RequestRecord& r) const noexcept {
    if (slot_index >= slots_) slot_index = 0;
    SlotCounters& c = slot(slot_index);
    const auto route = static_cast<std::size_t>(r.route) < kRoutes ? static_cast<std::size_t>(r.route) : 0;
    const int status_class = r.status / 100;
    if (status_class >= 1 && status_class <= 5) add(c.requests[route][status_class - 1]);
    add(c.duration_buckets[route][bucket_of(r.duration_us)]);
    add(c.duration_sum_us[route], r.duration_us);
    if (status_class == 4) {
        const auto reason = static_cast<std::size_t>(r.reason) < kReasons ? static_cast<std::size_t>(r.reason) : 0;
        add(c.client_errors[reason]);
    }
    if (r.answer == Answer::Redirect && status_class == 3) add(c.redirects);
    if (r.answer == Answer::File && status_class == 2) {
        add(c.served_files);
        add(c.served_bytes, r.bytes);
    }
    if (limit_ && r.route == RouteId::V2Manifest && r.get && (status_class == 2 || status_class == 3)) {
        const std::uint32_t i = repository_index(r.repository);
        add(i < limit_ ? pulls(slot_index)[i] : c.other_pulls);
    }
}

std::uint32_t SharedCounters::repository_index(std::string_view name) const noexcept {
    // a repository called "other" would clash with the bucket of the rest
    if (limit_ == 0 || name.empty() || name.size() > kMaxRepositoryName || name == "other") return limit_;
    const std::uint32_t hash = name_hash(name);
    for (std::uint32_t probe = 0; probe <= index_mask_; ++probe) {
        std::atomic<std::uint32_t>& entry = index_[(hash + probe) & index_mask_];
        std::uint32_t v = entry.load(std::memory_order_acquire);
        for (;;) {
            for (int spins = 0; v == kWriting; v = entry.load(std::memory_order_acquire)) {
                if (++spins > kMaxSpins) return limit_;
                std::this_thread::yield();
            }
            if (v != kEmpty) break;
            if (header_->names_used.load(std::memory_order_relaxed) >= limit_) return limit_;
            if (!entry.compare_exchange_weak(v, kWriting, std::memory_order_acquire, std::memory_order_acquire)) {
                continue;  // v is what the entry holds now
            }
            const std::uint32_t order = header_->names_used.fetch_add(1, std::memory_order_relaxed);
            if (order >= limit_) {  // another process took the last one meanwhile
                entry.store(kEmpty, std::memory_order_release);
                return limit_;
            }
            NameEntry& n = names_[order];
            n.hash = hash;
            n.length = static_cast<std::uint32_t>(name.size());
            std::memcpy(n.text, name.data(), name.size());
            n.ready.store(1, std::memory_order_release);
            entry.store(order + kFirstOrder, std::memory_order_release);
            return order;
        }
        const std::uint32_t order = v - kFirstOrder;
        const NameEntry& n = names_[order];
        if (n.hash == hash && n.length == name.size() && std::memcmp(n.text, name.data(), name.size()) == 0) {
            return order;
        }
    }
    return limit_;
}

Totals SharedCounters::totals() const {
    Totals t;
    t.per_repository = limit_ > 0;
    const std::uint32_t used = std::min(header_->names_used.load(std::memory_order_relaxed), limit_);
    std::vector<std::uint64_t> pulls_by_order(used, 0);
    for (std::uint32_t s = 0; s < slots_; ++s) {
        const SlotCounters& c = slot(s);
        for (std::size_t r = 0; r < kRoutes; ++r) {
            for (std::size_t k = 0; k < kStatusClasses; ++k) t.requests[r][k] += get(c.requests[r][k]);
            for (std::size_t b = 0; b < kBuckets; ++b) t.duration_buckets[r][b] += get(c.duration_buckets[r][b]);
            t.duration_sum_us[r] += get(c.duration_sum_us[r]);
        }
        for (std::size_t k = 0; k < kReasons; ++k) t.client_errors[k] += get(c.client_errors[k]);
        t.redirects += get(c.redirects);
        t.served_files += get(c.served_files);
        t.served_bytes += get(c.served_bytes);
        t.other_pulls += get(c.other_pulls);
        const std::atomic<std::uint64_t>* p = pulls(s);
        for (std::uint32_t i = 0; i < used; ++i) pulls_by_order[i] += get(p[i]);
    }
    for (std::uint32_t i = 0; i < used; ++i) {
        const NameEntry& n = names_[i];
        if (!n.ready.load(std::memory_order_acquire)) continue;  // being written: no pull counted yet
        t.repository_pulls.emplace_back(std::string(n.text, n.length), pulls_by_order[i]);
    }
    return t;
}

}  // namespace crane::metrics
