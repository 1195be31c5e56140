// The result of a library function that can fail: a value, or an error.
// The error is a message by default (a complete phrase, naming the file and
// line where there is one); a caller that must act on more than a message
// (an HTTP status, a flag) gets a struct E carrying it. The library's API
// reports failures this way, never by exception (docs/design.md, "Errors and
// logs").
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace crane {

template <typename T, typename E = std::string>
class Result {
  public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: `return value;` reads best
    static Result failure(E error) {
        Result r;
        r.error_ = std::move(error);
        return r;
    }

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }
    T& operator*() { return *value_; }
    const T& operator*() const { return *value_; }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    // Default-constructed (an empty message) when ok().
    const E& error() const { return error_; }

  private:
    Result() = default;
    std::optional<T> value_;
    E error_{};
};

}  // namespace crane
