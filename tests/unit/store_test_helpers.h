// Test-only pieces the index store tests share: a minimal version 2
// metadata file and a log sink that keeps its lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crane/log.h"

namespace crane::testing {

inline std::string v2_metadata(const std::string& id, const std::string& url = "http://h/") {
    return R"({"version": 2, "repo-registry-id": ")" + id + R"(", "url": ")" + url + R"("})";
}

struct LogCapture {
    std::vector<std::string> lines;
    LogSink sink() {
        return [this](LogLevel, std::string_view m) { lines.emplace_back(m); };
    }
    bool has(const std::string& needle) const {
        for (const auto& l : lines) {
            if (l.find(needle) != std::string::npos) return true;
        }
        return false;
    }
};

}  // namespace crane::testing
