// Serialises a parsed RapidJSON value the way Crane's json.dumps did
// (sorted keys, ", "/": " separators, ASCII-only). Internal to libcrane.
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace crane {

void append_python_json(std::string& out, const rapidjson::Value& v);

}  // namespace crane
