// Strict iterative JSON reading and Python-json.dumps output (see pyjson.h).
#include "index/pyjson.h"

#include <locale.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>

#include "crane/json_writer.h"
#include "crane/strings.h"

namespace crane::pyjson {

namespace {

// The end of the run of plain string bytes (no '"', no '\\', no control
// character, ASCII) starting at p: sixteen bytes at a time where SSE2 is
// there (x86-64 always), eight at a time, then byte by byte.
const char* plain_run(const char* p, const char* end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // signed: a byte from 0x80 up is negative, so "below a space" also
        // catches every non-ASCII byte
        const __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), _mm_cmplt_epi8(v, space));
        const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
        if (mask != 0) return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        const std::uint64_t special = has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\')) |
                                      ((w - kOnes * 0x20) & ~w & kHigh) | (w & kHigh);
        if (special) break;
        p += 8;
    }
    while (p < end) {
        const auto b = static_cast<unsigned char>(*p);
        if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
        ++p;
    }
    return p;
}

constexpr std::size_t kChunk = std::size_t{64} * 1024;

// The chunk a source is read into: one per thread, kept from one text to
// the next. A full build reads every file of a data dir, and a fresh 64 KiB
// block per file cost a malloc and, once freed, a consolidation of malloc's
// fast bins (a visible part of the build). Left uninitialised: read() fills
// what is used. A read started while the thread's chunk is in use (none
// is, today) gets a chunk of its own.
class Chunk {
public:
    Chunk() {
        if (!in_use_) {
            in_use_ = true;
            leased_ = true;
            if (!kept_) kept_.reset(new char[kChunk]);
            data_ = kept_.get();
        } else {
            own_.reset(new char[kChunk]);
            data_ = own_.get();
        }
    }
    ~Chunk() {
        if (leased_) in_use_ = false;
    }
    Chunk(const Chunk&) = delete;
    Chunk& operator=(const Chunk&) = delete;
    char* data() const { return data_; }

private:
    static thread_local std::unique_ptr<char[]> kept_;
    static thread_local bool in_use_;
    std::unique_ptr<char[]> own_;
    char* data_ = nullptr;
    bool leased_ = false;
};
thread_local std::unique_ptr<char[]> Chunk::kept_;
thread_local bool Chunk::in_use_ = false;

// The bytes of one JSON text, from memory or pulled in chunks from a source.
class Input {
public:
    explicit Input(std::string_view text) : p_(text.data()), end_(text.data() + text.size()), start_(p_) {}
    explicit Input(const ReadFn* source) : source_(source) { chunk_.emplace(); }

    // the next byte, or -1 at the end (or after a read error)
    int peek() {
        if (p_ == end_ && !refill()) return -1;
        return static_cast<unsigned char>(*p_);
    }
    void advance() { ++p_; }
    // the rest of the current chunk (call peek() first)
    const char* cur() const { return p_; }
    const char* chunk_end() const { return end_; }
    void skip_to(const char* q) { p_ = q; }
    std::size_t offset() const { return consumed_ + static_cast<std::size_t>(p_ - start_); }
    bool failed() const { return failed_; }

private:
    bool refill() {
        if (!source_ || failed_) return false;
        consumed_ += static_cast<std::size_t>(end_ - start_);
        long n = (*source_)(chunk_->data(), kChunk);
        if (n <= 0) {
            failed_ = n < 0;
            p_ = end_ = start_ = nullptr;
            return false;
        }
        p_ = start_ = chunk_->data();
        end_ = p_ + n;
        return true;
    }

    const ReadFn* source_ = nullptr;
    std::optional<Chunk> chunk_;
    const char* p_ = nullptr;
    const char* end_ = nullptr;
    const char* start_ = nullptr;
    std::size_t consumed_ = 0;
    bool failed_ = false;
};

struct Invalid {
    const char* what;
};

bool is_digit(int c) { return c >= '0' && c <= '9'; }

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Reader {
public:
    Reader(Input& in, Handler& h, int max_depth) : in_(in), h_(h), max_depth_(max_depth) {
        stack_.reserve(16);  // a metadata file nests a few levels: one allocation, not one per doubling
    }

    Outcome run() {
        Outcome out;
        try {
            if (!parse()) out.status = Status::Stopped;
        } catch (const Invalid& e) {
            if (in_.failed()) {
                out.status = Status::ReadError;
            } else if (too_deep_) {
                out.status = Status::TooDeep;
                out.error = "nested deeper than " + std::to_string(max_depth_) + " levels";
            } else {
                out.status = Status::Invalid;
                out.error = std::string("not valid JSON (") + e.what + " at offset " + std::to_string(in_.offset()) + ")";
            }
        }
        return out;
    }

private:
    enum class Want { Value, FirstItem, FirstKey, Key, Next, End };

    int peek_past_space() {
        for (;;) {
            int c = in_.peek();
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
            in_.advance();
        }
    }

    void expect(const char* word) {
        for (const char* w = word; *w; ++w) {
            if (in_.peek() != static_cast<unsigned char>(*w)) throw Invalid{"invalid literal"};
            in_.advance();
        }
    }

    Want after_value() const { return stack_.empty() ? Want::End : Want::Next; }

    bool parse() {
        Want want = Want::Value;
        for (;;) {
            int c = peek_past_space();
            switch (want) {
                case Want::FirstItem:
                    if (c == ']') {
                        in_.advance();
                        stack_.pop_back();
                        if (!h_.end_array()) return false;
                        want = after_value();
                        break;
                    }
                    [[fallthrough]];
                case Want::Value:
                    if (!value(c)) return false;
                    want = c == '{' ? Want::FirstKey : c == '[' ? Want::FirstItem : after_value();
                    break;
                case Want::FirstKey:
                    if (c == '}') {
                        in_.advance();
                        stack_.pop_back();
                        if (!h_.end_object()) return false;
                        want = after_value();
                        break;
                    }
                    [[fallthrough]];
                case Want::Key:
                    if (c != '"') throw Invalid{"expected a string key"};
                    in_.advance();
                    if (!h_.key(read_string())) return false;
                    if (peek_past_space() != ':') throw Invalid{"expected ':' after an object key"};
                    in_.advance();
                    want = Want::Value;
                    break;
                case Want::Next: {
                    const bool object = stack_.back() == '{';
                    if (c == ',') {
                        in_.advance();
                        want = object ? Want::Key : Want::Value;
                    } else if (c == (object ? '}' : ']')) {
                        in_.advance();
                        stack_.pop_back();
                        if (!(object ? h_.end_object() : h_.end_array())) return false;
                        want = after_value();
                    } else {
                        throw Invalid{object ? "expected ',' or '}' after an object member"
                                             : "expected ',' or ']' after an array element"};
                    }
                    break;
                }
                case Want::End:
                    if (c != -1) throw Invalid{"extra data after the value"};
                    if (in_.failed()) throw Invalid{"read error"};
                    return true;
            }
        }
    }

    // One value starting at c; a container is only opened here.
    bool value(int c) {
        if (stack_.size() > static_cast<std::size_t>(max_depth_)) {
            too_deep_ = true;
            throw Invalid{"too deep"};
        }
        switch (c) {
            case '{':
                in_.advance();
                stack_.push_back('{');
                return h_.start_object();
            case '[':
                in_.advance();
                stack_.push_back('[');
                return h_.start_array();
            case '"':
                in_.advance();
                return h_.string(read_string());
            case 't': expect("true"); return h_.boolean(true);
            case 'f': expect("false"); return h_.boolean(false);
            case 'n': expect("null"); return h_.null();
            case 'N': expect("NaN"); return h_.number("NaN");
            case 'I': expect("Infinity"); return h_.number("Infinity");
            default:
                if (c == '-' || is_digit(c)) {
                    read_number();
                    return h_.number(scratch_);
                }
                if (c == -1) throw Invalid{"unexpected end of the text"};
                throw Invalid{"expected a value"};
        }
    }

    void take_digits() {
        if (!is_digit(in_.peek())) throw Invalid{"a digit was expected in a number"};
        while (is_digit(in_.peek())) {
            if (scratch_.size() >= kMaxNumberChars) throw Invalid{"a number longer than 4300 characters"};
            scratch_ += static_cast<char>(in_.peek());
            in_.advance();
        }
    }

    void read_number() {
        scratch_.clear();
        if (in_.peek() == '-') {
            scratch_ += '-';
            in_.advance();
            if (in_.peek() == 'I') {
                expect("Infinity");
                scratch_ += "Infinity";
                return;
            }
        }
        if (in_.peek() == '0') {
            scratch_ += '0';
            in_.advance();
        } else {
            take_digits();
        }
        if (in_.peek() == '.') {
            scratch_ += '.';
            in_.advance();
            take_digits();
        }
        if (in_.peek() == 'e' || in_.peek() == 'E') {
            scratch_ += static_cast<char>(in_.peek());
            in_.advance();
            if (in_.peek() == '+' || in_.peek() == '-') {
                scratch_ += static_cast<char>(in_.peek());
                in_.advance();
            }
            take_digits();
        }
    }

    // a continuation byte within [lo, hi]
    void continuation(unsigned lo = 0x80, unsigned hi = 0xBF) {
        int c = in_.peek();
        if (c < 0 || static_cast<unsigned>(c) < lo || static_cast<unsigned>(c) > hi) {
            throw Invalid{"invalid UTF-8 in a string"};
        }
        scratch_ += static_cast<char>(c);
        in_.advance();
    }

    std::uint32_t hex4() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            int d = hex_value(in_.peek());
            if (d < 0) throw Invalid{"invalid \\u escape"};
            in_.advance();
            v = v * 16 + static_cast<std::uint32_t>(d);
        }
        return v;
    }

    void escape() {
        int c = in_.peek();
        in_.advance();
        switch (c) {
            case '"': scratch_ += '"'; break;
            case '\\': scratch_ += '\\'; break;
            case '/': scratch_ += '/'; break;
            case 'b': scratch_ += '\b'; break;
            case 'f': scratch_ += '\f'; break;
            case 'n': scratch_ += '\n'; break;
            case 'r': scratch_ += '\r'; break;
            case 't': scratch_ += '\t'; break;
            case 'u': {
                std::uint32_t cp = hex4();
                if (cp >= 0xDC00 && cp <= 0xDFFF) throw Invalid{"a lone surrogate in a string"};
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (in_.peek() != '\\') throw Invalid{"a lone surrogate in a string"};
                    in_.advance();
                    if (in_.peek() != 'u') throw Invalid{"a lone surrogate in a string"};
                    in_.advance();
                    std::uint32_t low = hex4();
                    if (low < 0xDC00 || low > 0xDFFF) throw Invalid{"a lone surrogate in a string"};
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                append_utf8(scratch_, cp);
                break;
            }
            default: throw Invalid{"invalid escape in a string"};
        }
    }

    // After the opening quote: the decoded string, valid until the next
    // read. Most strings are plain bytes up to a quote inside one chunk:
    // those are handed out in place; the others are decoded into scratch_.
    std::string_view read_string() {
        scratch_.clear();
        for (bool first = true;; first = false) {
            int c = in_.peek();
            if (c < 0) throw Invalid{"unterminated string"};
            // plain bytes in bulk
            const char* p = in_.cur();
            const char* end = in_.chunk_end();
            const char* q = plain_run(p, end);
            if (first && q != end && *q == '"') {
                in_.skip_to(q + 1);
                return {p, static_cast<std::size_t>(q - p)};
            }
            if (q != p) {
                scratch_.append(p, static_cast<std::size_t>(q - p));
                in_.skip_to(q);
                continue;
            }
            in_.advance();
            if (c == '"') return scratch_;
            if (c == '\\') {
                escape();
            } else if (c < 0x20) {
                throw Invalid{"a control character in a string"};
            } else {
                // UTF-8 as Python's decoder takes it: no overlongs, no surrogates
                scratch_ += static_cast<char>(c);
                if (c >= 0xC2 && c <= 0xDF) {
                    continuation();
                } else if (c == 0xE0) {
                    continuation(0xA0);
                    continuation();
                } else if (c == 0xED) {
                    continuation(0x80, 0x9F);
                    continuation();
                } else if (c >= 0xE1 && c <= 0xEF) {
                    continuation();
                    continuation();
                } else if (c == 0xF0) {
                    continuation(0x90);
                    continuation();
                    continuation();
                } else if (c >= 0xF1 && c <= 0xF3) {
                    continuation();
                    continuation();
                    continuation();
                } else if (c == 0xF4) {
                    continuation(0x80, 0x8F);
                    continuation();
                    continuation();
                } else {
                    throw Invalid{"invalid UTF-8 in a string"};
                }
            }
        }
    }

    Input& in_;
    Handler& h_;
    int max_depth_;
    std::vector<char> stack_;  // '{' or '[' per open container
    std::string scratch_;
    bool too_deep_ = false;
};

}  // namespace

Outcome read(std::string_view text, Handler& h, int max_depth) {
    Input in(text);
    return Reader(in, h, max_depth).run();
}

Outcome read(const ReadFn& source, Handler& h, int max_depth) {
    Input in(&source);
    return Reader(in, h, max_depth).run();
}

bool is_int_literal(std::string_view literal) {
    return literal.find_first_of(".eEIN") == std::string_view::npos;
}

double to_double(std::string_view literal) {
    if (literal == "NaN") return std::nan("");
    if (literal == "Infinity") return HUGE_VAL;
    if (literal == "-Infinity") return -HUGE_VAL;
    // strtod is correctly rounded and gives +-HUGE_VAL / 0 outside the
    // range, as Python's float() does; the C locale keeps '.' the point
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
    const std::string text(literal);
    return strtod_l(text.c_str(), nullptr, c_locale);
}

std::string number_text(std::string_view literal) {
    if (is_int_literal(literal)) return literal == "-0" ? "0" : std::string(literal);
    return float_repr(to_double(literal));
}

bool number_truthy(std::string_view literal) {
    if (is_int_literal(literal)) return literal.find_first_of("123456789") != std::string_view::npos;
    return to_double(literal) != 0.0;
}

// Python's repr() of a float: shortest round-tripping digits, exponent
// form outside [1e-4, 1e16).
std::string float_repr(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    std::array<char, 64> buf{};
    auto res = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
    // d[.ddd]e[+-]XX: rebuild in Python's layout
    const std::string s(buf.data(), res.ptr);
    const auto epos = s.find('e');
    std::string mant = s.substr(0, epos);
    const int exp = std::atoi(s.c_str() + epos + 1);
    const bool neg = mant[0] == '-';
    if (neg) mant.erase(0, 1);
    std::string digits;
    for (char c : mant) {
        if (c != '.') digits += c;
    }
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    std::string out = neg ? "-" : "";
    if (exp >= 16 || exp < -4) {
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        std::array<char, 16> e{};
        std::snprintf(e.data(), e.size(), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return out + e.data();
    }
    if (exp < 0) {
        out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
        out += digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
        const auto int_digits = static_cast<std::size_t>(exp) + 1;
        out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
    }
    return out;
}

void append_python_json(std::string& out, const Node& v) {
    switch (v.type) {
        case Node::Type::Null: out += "null"; break;
        case Node::Type::False: out += "false"; break;
        case Node::Type::True: out += "true"; break;
        case Node::Type::String: json::append_quoted(out, v.text); break;
        case Node::Type::Number: out += v.text; break;
        case Node::Type::Array: {
            out += '[';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i > 0) out += ", ";
                append_python_json(out, v.items[i]);
            }
            out += ']';
            break;
        }
        case Node::Type::Object: {
            // sorted keys; a repeated key keeps its last value, as Python does
            std::vector<std::size_t> order(v.keys.size());
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return v.keys[a] < v.keys[b]; });
            out += '{';
            bool first = true;
            for (std::size_t i = 0; i < order.size(); ++i) {
                if (i + 1 < order.size() && v.keys[order[i]] == v.keys[order[i + 1]]) continue;
                if (!first) out += ", ";
                first = false;
                json::append_quoted(out, v.keys[order[i]]);
                out += ": ";
                append_python_json(out, v.items[order[i]]);
            }
            out += '}';
            break;
        }
    }
}

}  // namespace crane::pyjson
