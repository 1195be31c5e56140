// JSON text in the exact shape Crane (Python's json.dumps) produced:
// ", " and ": " separators, non-ASCII escaped as \uXXXX. Callers that emit
// objects pass keys in sorted order, as Crane's sort_keys did.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crane::json {

// Appends s as a JSON string literal (quotes included) to out.
void append_quoted(std::string& out, std::string_view s);
std::string quoted(std::string_view s);

// A streaming writer that inserts separators itself.
class Writer {
public:
    Writer& begin_object();
    Writer& end_object();
    Writer& begin_array();
    Writer& end_array();
    Writer& key(std::string_view k);
    Writer& string(std::string_view s);
    Writer& boolean(bool b);
    Writer& integer(std::int64_t v);
    Writer& null();
    // A value that is already JSON text (e.g. precomputed at load time).
    Writer& raw(std::string_view json_text);

    const std::string& str() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void before_value();
    std::string out_;
    // per open container: has it emitted an element yet
    std::vector<bool> first_;
    bool after_key_ = false;
};

}  // namespace crane::json
