// The result of a library function that can fail: a value, or an error
// message (a complete phrase, naming the file and line where there is one).
// The library's API reports failures this way, never by exception
// (docs/design.md, "Errors and logs").
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace crane {

template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: `return value;` reads best
    static Result failure(const std::string& error) {  // cold path: a copy is fine
        Result r;
        r.error_ = error;
        return r;
    }

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }
    T& operator*() { return *value_; }
    const T& operator*() const { return *value_; }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    // Empty when ok().
    const std::string& error() const { return error_; }

private:
    Result() = default;
    std::optional<T> value_;
    std::string error_;
};

}  // namespace crane
