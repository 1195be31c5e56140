// Lexically safe joins under the serve-content dirs, and their cache policy
// (see content_path.h).
#include "api/content_path.h"

#include "crane/reference.h"

namespace crane {

namespace {

constexpr std::size_t kMaxSegment = 255;  // NAME_MAX
constexpr std::size_t kMaxPath = 4095;    // PATH_MAX (4096) minus the NUL

bool is_unsafe_byte(char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x20 || b == 0x7F || c == '\\' || c == '%';  // b < 0x20 includes NUL
}

bool is_safe_segment(std::string_view segment) {
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (segment.size() > kMaxSegment) return false;
    for (char c : segment) {
        if (is_unsafe_byte(c)) return false;
    }
    return true;
}

// Every '/'-separated segment of part is safe (and there is at least one).
bool has_only_safe_segments(std::string_view part) {
    if (part.empty()) return false;
    for (;;) {
        const std::size_t slash = part.find('/');
        if (!is_safe_segment(part.substr(0, slash))) return false;
        if (slash == std::string_view::npos) return true;
        part.remove_prefix(slash + 1);
    }
}

}  // namespace

std::optional<std::string> content_file_path(std::string_view content_dir,
                                             std::string_view repository,
                                             std::string_view relative_path) {
    if (content_dir.empty() || content_dir.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    if (!has_only_safe_segments(repository) || !has_only_safe_segments(relative_path)) {
        return std::nullopt;
    }

    std::string_view base = content_dir;
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);

    const std::size_t total = base.size() + 1 + repository.size() + 1 + relative_path.size();
    if (total > kMaxPath) return std::nullopt;

    std::string path;
    path.reserve(total);
    path.append(base);
    path += '/';
    path.append(repository);
    path += '/';
    path.append(relative_path);
    return path;
}

std::string content_cache_control(std::string_view relative_path,
                                  std::int64_t poll_interval_seconds, bool protected_repo) {
    const std::size_t slash = relative_path.rfind('/');
    const std::string_view last =
        slash == std::string_view::npos ? relative_path : relative_path.substr(slash + 1);

    std::string value = protected_repo ? "private" : "public";
    if (is_sha256_digest(last)) {
        value += ", max-age=31536000, immutable";
    } else {
        value += ", max-age=";
        value += std::to_string(poll_interval_seconds < 0 ? 0 : poll_interval_seconds);
    }
    return value;
}

}  // namespace crane
