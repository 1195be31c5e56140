// The library logs through an injected sink so the Apache glue can route
// messages to ap_log_error with the module's index (LogLevel crane:debug).
#pragma once

#include <functional>
#include <string_view>

namespace crane {

enum class LogLevel { Debug, Info, Warn, Error };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// A sink that drops everything; the default when the caller gives none.
inline void null_log_sink(LogLevel, std::string_view) {}

}  // namespace crane
