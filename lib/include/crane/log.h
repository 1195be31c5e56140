// The library logs through an injected sink so the Apache glue can route
// messages to ap_log_error with the module's index (LogLevel crane:debug).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "crane/log_ids.h"

namespace crane {

enum class LogLevel { Debug, Info, Warn, Error };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// A sink that drops everything; the default when the caller gives none.
inline void null_log_sink(LogLevel, std::string_view) {}

// Writes `ID: message` (id from crane/log_ids.h) to the sink.
inline void log(const LogSink& sink, LogLevel level, std::string_view id, std::string_view message) {
    std::string line;
    line.reserve(id.size() + 2 + message.size());
    line.append(id).append(": ").append(message);
    sink(level, line);
}

}  // namespace crane
