// Python-json.dumps-compatible output of RapidJSON values (see pyjson.h).
#include "pyjson.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "crane/json_writer.h"

namespace crane {

namespace {

// Python's repr() of a float: shortest round-tripping digits, exponent
// form outside [1e-4, 1e16).
std::string python_float(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    char buf[40];
    for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    // buf is d.ddde[+-]XX; rebuild in Python's layout
    std::string s(buf);
    auto epos = s.find('e');
    std::string mant = s.substr(0, epos);
    int exp = std::atoi(s.c_str() + epos + 1);
    bool neg = mant[0] == '-';
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
        char e[16];
        std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return out + e;
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

}  // namespace

void append_python_json(std::string& out, const rapidjson::Value& v) {
    switch (v.GetType()) {
        case rapidjson::kNullType: out += "null"; break;
        case rapidjson::kFalseType: out += "false"; break;
        case rapidjson::kTrueType: out += "true"; break;
        case rapidjson::kStringType:
            json::append_quoted(out, std::string_view(v.GetString(), v.GetStringLength()));
            break;
        case rapidjson::kNumberType:
            if (v.IsInt64()) out += std::to_string(v.GetInt64());
            else if (v.IsUint64()) out += std::to_string(v.GetUint64());
            else out += python_float(v.GetDouble());
            break;
        case rapidjson::kArrayType: {
            out += '[';
            bool first = true;
            for (const auto& e : v.GetArray()) {
                if (!first) out += ", ";
                first = false;
                append_python_json(out, e);
            }
            out += ']';
            break;
        }
        case rapidjson::kObjectType: {
            // sorted keys; a repeated key keeps its last value, as Python does
            std::vector<const rapidjson::Value::ConstMemberIterator::value_type*> members;
            for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members.push_back(&*it);
            auto name = [](const auto* m) {
                return std::string_view(m->name.GetString(), m->name.GetStringLength());
            };
            std::stable_sort(members.begin(), members.end(),
                             [&](const auto* a, const auto* b) { return name(a) < name(b); });
            out += '{';
            bool first = true;
            for (std::size_t i = 0; i < members.size(); ++i) {
                if (i + 1 < members.size() && name(members[i]) == name(members[i + 1])) continue;
                if (!first) out += ", ";
                first = false;
                json::append_quoted(out, name(members[i]));
                out += ": ";
                append_python_json(out, members[i]->value);
            }
            out += '}';
            break;
        }
    }
}

}  // namespace crane
