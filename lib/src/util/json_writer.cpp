// Python-json.dumps-compatible text output (see json_writer.h).
#include "crane/json_writer.h"

#include <cstdio>

namespace crane::json {

namespace {

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i.
// Invalid bytes decode as U+FFFD so output is always valid JSON.
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
    auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
        ++i;
        return 0xFFFD;
    }
    std::uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int k = 1; k < len; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            ++i;
            return 0xFFFD;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    i += len;
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
    return cp;
}

void append_u(std::string& out, std::uint32_t unit) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(unit));
    out += buf;
}

}  // namespace

void append_quoted(std::string& out, std::string_view s) {
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        if (c < 0x80) {
            ++i;
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                default: append_u(out, c);
            }
            continue;
        }
        std::uint32_t cp = next_code_point(s, i);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            append_u(out, 0xD800 + (cp >> 10));
            append_u(out, 0xDC00 + (cp & 0x3FF));
        } else {
            append_u(out, cp);
        }
    }
    out += '"';
}

std::string quoted(std::string_view s) {
    std::string out;
    append_quoted(out, s);
    return out;
}

void Writer::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_ += ", ";
        first_.back() = false;
    }
}

Writer& Writer::begin_object() {
    before_value();
    out_ += '{';
    first_.push_back(true);
    return *this;
}
Writer& Writer::end_object() {
    out_ += '}';
    first_.pop_back();
    return *this;
}
Writer& Writer::begin_array() {
    before_value();
    out_ += '[';
    first_.push_back(true);
    return *this;
}
Writer& Writer::end_array() {
    out_ += ']';
    first_.pop_back();
    return *this;
}
Writer& Writer::key(std::string_view k) {
    before_value();
    append_quoted(out_, k);
    out_ += ": ";
    after_key_ = true;
    return *this;
}
Writer& Writer::string(std::string_view s) {
    before_value();
    append_quoted(out_, s);
    return *this;
}
Writer& Writer::boolean(bool b) {
    before_value();
    out_ += b ? "true" : "false";
    return *this;
}
Writer& Writer::integer(std::int64_t v) {
    before_value();
    out_ += std::to_string(v);
    return *this;
}
Writer& Writer::null() {
    before_value();
    out_ += "null";
    return *this;
}
Writer& Writer::raw(std::string_view json_text) {
    before_value();
    out_ += json_text;
    return *this;
}

}  // namespace crane::json
