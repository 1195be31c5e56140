// JSON as Crane's Python read and wrote it: a strict, iterative event
// reader (no document is ever built; nesting is limited while reading),
// Python's number semantics, and json.dumps(sort_keys=True) output of the
// small value trees that are kept verbatim. Internal to libcrane.
//
// Why not RapidJSON, which libcrane uses elsewhere (search_solr.cpp): the
// metadata files were written by Python's json module and Crane read them
// with it, and mod_crane must take and repeat exactly what Crane did.
// RapidJSON 1.1's reader refuses a number outside double's range (`1e400`:
// kParseErrorNumberTooBig) where Python reads inf, and hands numbers back as
// doubles or 64-bit integers, losing the literal that Python's int/float
// split, its truthiness and its repr() of kept values depend on (`1.0` stays
// a float, `10000000000000000000000` an exact int). So this reader gives each
// number as its literal, reads NaN/Infinity as Python does, and otherwise is
// a plain strict tokenizer: it builds no document and keeps nothing else.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace crane::pyjson {

// Receives the events of one JSON text in order. Returning false stops the
// read; the handler keeps its own reason.
class Handler {
public:
    Handler() = default;
    Handler(const Handler&) = delete;
    Handler& operator=(const Handler&) = delete;
    virtual ~Handler() = default;
    virtual bool start_object() = 0;
    virtual bool key(std::string_view k) = 0;
    virtual bool end_object() = 0;
    virtual bool start_array() = 0;
    virtual bool end_array() = 0;
    virtual bool string(std::string_view s) = 0;
    // the literal as written: -?int frac? exp?, or NaN, Infinity, -Infinity
    virtual bool number(std::string_view literal) = 0;
    virtual bool boolean(bool b) = 0;
    virtual bool null() = 0;
};

// Fills buf with up to n bytes: the count, 0 at the end, -1 on a read error.
using ReadFn = std::function<long(char* buf, std::size_t n)>;

enum class Status { Ok, Invalid, TooDeep, Stopped, ReadError };

struct Outcome {
    Status status = Status::Ok;
    std::string error;  // Invalid / TooDeep: the reason
};

// Longest number literal accepted (Python's own limit for int digits).
constexpr std::size_t kMaxNumberChars = 4300;

// Reads one JSON value followed by nothing but whitespace. Strings must be
// UTF-8 (lone surrogates refused); NaN, Infinity and -Infinity are read as
// Python does. A value nested deeper than max_depth stops the read at once.
Outcome read(std::string_view text, Handler& h, int max_depth);
Outcome read(const ReadFn& source, Handler& h, int max_depth);

// For a number literal: is it an int to Python (no fraction, no exponent)?
bool is_int_literal(std::string_view literal);
// Python's float(literal): correctly rounded; overflow gives +-inf.
double to_double(std::string_view literal);
// json.dumps(json.loads(literal)): ints exact, floats as repr().
std::string number_text(std::string_view literal);
// bool(json.loads(literal))
bool number_truthy(std::string_view literal);
// Python's repr() of a float (json.dumps spelling of inf and nan).
std::string float_repr(double d);

// A value kept verbatim (a v1 image entry).
struct Node {
    enum class Type : unsigned char { Null, False, True, String, Number, Array, Object };
    Type type = Type::Null;
    std::string text;               // String: the value; Number: its json.dumps text
    std::vector<std::string> keys;  // Object: keys[i] names items[i] (file order, repeats kept)
    std::vector<Node> items;
};

// json.dumps(v, sort_keys=True): ", " and ": ", ASCII only; a repeated
// key keeps its last value.
void append_python_json(std::string& out, const Node& v);

}  // namespace crane::pyjson
