// Fuzz target `v2_path`: split_v2_path on the text after "/v2/". Checks the
// split (kinds: tags, manifests, blobs, referrers) against an independent
// model: NAME non-empty,
// PATH starts with the kind's component, NAME + "/" + PATH == input, REST is
// what follows the kind, no later component (but the last) is a kind, and
// nullopt exactly for unsafe components or no kind with something after it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "api/v2_path.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_v2_path invariant failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

std::vector<std::string_view> components(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = s.find('/', start);
        if (slash == std::string_view::npos) {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, slash - start));
        start = slash + 1;
    }
}

bool is_kind(std::string_view c) { return c == "tags" || c == "manifests" || c == "blobs" || c == "referrers"; }

std::string_view kind_word(crane::V2Kind kind) {
    switch (kind) {
        case crane::V2Kind::Tags: return "tags";
        case crane::V2Kind::Manifests: return "manifests";
        case crane::V2Kind::Blobs: return "blobs";
        case crane::V2Kind::Referrers: return "referrers";
    }
    fail("unknown kind", "");
}

// The model: index of the component that ends NAME, or -1.
long model_kind_index(const std::vector<std::string_view>& parts) {
    for (const auto& p : parts) {
        if (p.empty() || p == "." || p == "..") return -1;
    }
    for (std::size_t i = parts.size(); i-- > 0;) {
        if (i >= 1 && i + 1 < parts.size() && is_kind(parts[i])) return static_cast<long>(i);
    }
    return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto split = crane::split_v2_path(input);
    const auto parts = components(input);
    const long expected = model_kind_index(parts);
    if (!split) {
        if (expected >= 0) fail("refused a splittable path", input);
        return 0;
    }
    if (expected < 0) fail("split a path the spec refuses", input);
    const auto k = static_cast<std::size_t>(expected);

    if (split->name.empty()) fail("empty name", input);
    if (split->rest.empty()) fail("empty rest", input);
    const std::string_view word = kind_word(split->kind);
    if (parts[k] != word) fail("kind is not the model's", input);
    if (split->path.substr(0, word.size()) != word || split->path.size() <= word.size() + 1 ||
        split->path[word.size()] != '/') {
        fail("path does not start with KIND/", input);
    }
    if (std::string(split->name) + "/" + std::string(split->path) != input) fail("name/path != input", input);
    if (split->path.substr(word.size() + 1) != split->rest) fail("rest is not what follows the kind", input);
    // the views point into the input
    if (split->name.data() != input.data()) fail("name does not view the input", input);
    const auto name_parts = components(split->name);
    if (name_parts.size() != k) fail("name is not the model's", input);
    const auto rest_parts = components(split->rest);
    for (std::size_t i = 0; i + 1 < rest_parts.size(); ++i) {
        if (is_kind(rest_parts[i])) fail("a later kind component with something after it", input);
    }
    return 0;
}
