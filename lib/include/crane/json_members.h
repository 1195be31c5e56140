// Reading members of a parsed RapidJSON object the way the documents'
// producers do (Python's json, Go's encoding/json): of repeated keys, the
// last one wins. Shared by the search backend (Solr answers) and
// crane-publish (image manifests).
#pragma once

#include <rapidjson/document.h>

#include <string_view>

namespace crane::json {

// The value of the last member named `key`, or nullptr.
inline const rapidjson::Value* last_member(const rapidjson::Value& object, std::string_view key) {
    const rapidjson::Value* found = nullptr;
    for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
        const rapidjson::Value& name = it->name;
        if (std::string_view(name.GetString(), name.GetStringLength()) == key) found = &it->value;
    }
    return found;
}

// A string value's bytes (embedded NULs included).
inline std::string_view string_of(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

}  // namespace crane::json
