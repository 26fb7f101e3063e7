// SPDX-License-Identifier: BSL-1.0
// Shared by the libFuzzer targets: a check that aborts with a message (so libFuzzer
// records the input), and JSON/exchange comparisons that allow for Boost.JSON's
// 1-ulp drift when it parses doubles (Boost 1.81 has no precise number parsing), and
// for NaN, which JSON cannot hold, coming back as null.
#pragma once

#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/json/value.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define DEXTER_FUZZ_CHECK(cond, msg)                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "\nFUZZ CHECK FAILED at %s:%d: %s\n  %s\n", __FILE__, __LINE__,   \
                         #cond, std::string(msg).c_str());                                         \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

namespace dexter::sessions::fuzz {

namespace json = boost::json;

/// Doubles a few units in the last place apart (or equal).
inline bool near(double a, double b) {
    if (a == b)
        return true;
    if (!std::isfinite(a) || !std::isfinite(b) || std::signbit(a) != std::signbit(b))
        return false;
    const auto ua = std::bit_cast<std::uint64_t>(a), ub = std::bit_cast<std::uint64_t>(b);
    return (ua > ub ? ua - ub : ub - ua) <= 4;
}

/// JSON equality where doubles may differ by a few ulps, and an int64 equals a
/// uint64 of the same value (as json::value's own == has it).
inline bool json_near(const json::value& a, const json::value& b) {
    // JSON has no NaN: the writer stores it as null. (Boost.JSON 1.81 even reads some
    // valid numbers, such as 0e400, as NaN.)
    const auto nan_or_null = [](const json::value& v) {
        return v.is_null() || (v.is_double() && std::isnan(v.get_double()));
    };
    if ((a.is_double() && std::isnan(a.get_double())) ||
        (b.is_double() && std::isnan(b.get_double())))
        return nan_or_null(a) && nan_or_null(b);
    if (a.is_double() || b.is_double()) {
        if (!a.is_double() || !b.is_double())
            return a == b;
        return near(a.get_double(), b.get_double());
    }
    if (a.is_array() && b.is_array()) {
        const auto &x = a.get_array(), &y = b.get_array();
        if (x.size() != y.size())
            return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!json_near(x[i], y[i]))
                return false;
        return true;
    }
    if (a.is_object() && b.is_object()) {
        const auto &x = a.get_object(), &y = b.get_object();
        if (x.size() != y.size())
            return false;
        for (const auto& kv : x) {
            const auto it = y.find(kv.key());
            if (it == y.end() || !json_near(kv.value(), it->value()))
                return false;
        }
        return true;
    }
    return a == b;
}

inline bool json_near(const json::object& a, const json::object& b) {
    return json_near(json::value(a), json::value(b));
}
inline bool json_near(const json::array& a, const json::array& b) {
    return json_near(json::value(a), json::value(b));
}

inline bool exchange_near(const exchange& a, const exchange& b) {
    return a.seq == b.seq && a.timestamp == b.timestamp && a.query == b.query &&
           a.answer == b.answer && a.summary == b.summary && a.model == b.model &&
           a.duration_ms == b.duration_ms && json_near(a.tool_calls, b.tool_calls) &&
           json_near(a.extra, b.extra);
}

inline bool meta_near(const session_meta& a, const session_meta& b) {
    return a.id == b.id && a.title == b.title && a.created_at == b.created_at &&
           a.updated_at == b.updated_at && a.exchange_count == b.exchange_count &&
           json_near(a.extra, b.extra);
}

/// True when every string in `v` (object keys included) is valid UTF-8.
inline bool all_utf8(const json::value& v) {
    switch (v.kind()) {
    case json::kind::string:
        return is_valid_utf8(v.get_string());
    case json::kind::array:
        for (const auto& e : v.get_array())
            if (!all_utf8(e))
                return false;
        return true;
    case json::kind::object:
        for (const auto& kv : v.get_object())
            if (!is_valid_utf8(kv.key()) || !all_utf8(kv.value()))
                return false;
        return true;
    default:
        return true;
    }
}

inline bool all_utf8(const exchange& ex) {
    return is_valid_utf8(ex.query) && is_valid_utf8(ex.answer) &&
           (!ex.summary || is_valid_utf8(*ex.summary)) && (!ex.model || is_valid_utf8(*ex.model)) &&
           all_utf8(json::value(ex.tool_calls)) && all_utf8(json::value(ex.extra));
}

} // namespace dexter::sessions::fuzz
