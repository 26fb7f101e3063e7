// SPDX-License-Identifier: BSL-1.0
// Writes JSON text straight from our structs into a reused buffer: no intermediate
// json::value, and UTF-8 validated in the same pass that escapes (or, for text already
// checked, not validated at all: CheckUtf8 = false, the same output for valid UTF-8).
#pragma once

#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/json/serialize.hpp>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace dexter::sessions::detail {

// One bit 7 per byte of the 8 at `p` that JSON escapes (a quote, a backslash, a control
// character), exact up to the first such byte (a borrow may mark bytes after it too).
inline std::uint64_t json_escaped_bytes(const void* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    const std::uint64_t ctrl = (w - 0x2020202020202020ull) & ~w & 0x8080808080808080ull;
    const std::uint64_t q = w ^ 0x2222222222222222ull;
    const std::uint64_t quote = (q - 0x0101010101010101ull) & ~q & 0x8080808080808080ull;
    const std::uint64_t b = w ^ 0x5c5c5c5c5c5c5c5cull;
    const std::uint64_t bslash = (b - 0x0101010101010101ull) & ~b & 0x8080808080808080ull;
    return ctrl | quote | bslash;
}

// The same, and the bytes above 0x7F: one bit 7 per byte of the 8 at `p` that is not
// plain ASCII as a JSON string holds it unescaped; exact up to the first such byte.
inline std::uint64_t json_special_bytes(const void* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return json_escaped_bytes(p) | (w & 0x8080808080808080ull);
}

/// Appends `s` as a JSON string literal (quotes included). Escapes what JSON requires
/// (`"`, `\`, control characters) and nothing else, as Boost.JSON does. Returns false,
/// having appended something unspecified, if `s` is not valid UTF-8. With `CheckUtf8`
/// false, `s` must be valid UTF-8 (checked before): its bytes above 0x7F are copied as
/// they are, which gives the same output, and it returns true.
template <bool CheckUtf8 = true>
inline bool append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::size_t start = out.size();
    out.resize(start + s.size() + 2);
    char* d = out.data() + start;
    *d++ = '"';
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    auto grow = [&](std::size_t extra) {
        const std::size_t at = static_cast<std::size_t>(d - out.data());
        out.resize(out.size() + extra);
        d = out.data() + at;
    };
    while (p < end) {
        // 8 bytes copied as they are (`out` has room for what is left of `s`), and kept up
        // to the first that is a quote, a backslash or a control character, or (when
        // checking UTF-8 here) above 0x7F; that one is then written on its own.
        if (end - p >= 8) {
            const std::uint64_t special = CheckUtf8 ? json_special_bytes(p) : json_escaped_bytes(p);
            std::memcpy(d, p, 8);
            if (special == 0) {
                d += 8;
                p += 8;
                continue;
            }
            if constexpr (std::endian::native == std::endian::little) {
                const auto plain = static_cast<std::size_t>(std::countr_zero(special) / 8);
                d += plain;
                p += plain;
            }
        }
        const unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && (!CheckUtf8 || c < 0x80)) {
            *d++ = static_cast<char>(c);
            ++p;
            continue;
        }
        if (c >= 0x80) { // CheckUtf8
            const std::size_t len = utf8_sequence_length(p, static_cast<std::size_t>(end - p));
            if (len == 0)
                return false;
            std::memcpy(d, p, len);
            d += len;
            p += len;
            continue;
        }
        // An escape: 2 or 6 bytes for 1.
        char esc = 0;
        switch (c) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        default:
            break;
        }
        grow(esc ? 1 : 5);
        *d++ = '\\';
        if (esc) {
            *d++ = esc;
        } else {
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
        }
        ++p;
    }
    *d++ = '"';
    out.resize(static_cast<std::size_t>(d - out.data()));
    return true;
}

inline void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// Appends `"key":` (key is a trusted literal).
inline void append_key(std::string& out, std::string_view key) {
    out += '"';
    out += key;
    out += "\":";
}

/// Appends `v` as standard JSON; returns false if it holds a string (or key) that is
/// not valid UTF-8. Boost.JSON 1.81 writes an infinite double as `Infinity` and NaN as
/// `NaN`, which no JSON parser (Boost.JSON included) reads back: a record holding one
/// would be unreadable, and the next writer would cut it off as a torn tail. So an
/// infinity is written as 1e99999 (read back as the same infinity) and NaN as null.
/// `CheckUtf8` as for append_json_string().
template <bool CheckUtf8 = true>
inline bool append_json_value(std::string& out, const json::value& v) {
    switch (v.kind()) {
    case json::kind::string:
        return append_json_string<CheckUtf8>(out, v.get_string());
    case json::kind::double_: {
        const double d = v.get_double();
        if (std::isnan(d))
            out += "null";
        else if (std::isinf(d))
            out += d > 0 ? "1e99999" : "-1e99999";
        else
            out += json::serialize(v);
        return true;
    }
    case json::kind::array: {
        bool ok = true, first = true;
        out += '[';
        for (const auto& e : v.get_array()) {
            if (!std::exchange(first, false))
                out += ',';
            ok = append_json_value<CheckUtf8>(out, e) && ok;
        }
        out += ']';
        return ok;
    }
    case json::kind::object: {
        bool ok = true, first = true;
        out += '{';
        for (const auto& kv : v.get_object()) {
            if (!std::exchange(first, false))
                out += ',';
            ok = append_json_string<CheckUtf8>(out, kv.key()) && ok;
            out += ':';
            ok = append_json_value<CheckUtf8>(out, kv.value()) && ok;
        }
        out += '}';
        return ok;
    }
    default:
        out += json::serialize(v);
        return true; // null, bool, integers
    }
}

/// `s` with each byte that does not belong to a well-formed UTF-8 sequence replaced by
/// U+FFFD.
inline std::string replace_invalid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    while (p < end) {
        std::size_t len = 1;
        if (*p >= 0x80) {
            len = utf8_sequence_length(p, static_cast<std::size_t>(end - p));
            if (len == 0) {
                out += "\xEF\xBF\xBD";
                ++p;
                continue;
            }
        }
        out.append(reinterpret_cast<const char*>(p), len);
        p += len;
    }
    return out;
}

/// `v` with each string and key repaired by replace_invalid_utf8(). Keys that repair to
/// the same text become one member, the later one's value (as a JSON reader takes the
/// last of two equal keys).
inline json::value replace_invalid_utf8(const json::value& v) {
    switch (v.kind()) {
    case json::kind::string:
        return json::value(replace_invalid_utf8(std::string_view(v.get_string())));
    case json::kind::array: {
        json::array a;
        a.reserve(v.get_array().size());
        for (const auto& e : v.get_array())
            a.push_back(replace_invalid_utf8(e));
        return a;
    }
    case json::kind::object: {
        json::object o;
        for (const auto& kv : v.get_object())
            o[replace_invalid_utf8(std::string_view(kv.key()))] = replace_invalid_utf8(kv.value());
        return o;
    }
    default:
        return v;
    }
}

/// append_json_string() for text that a store may hand back without having checked it
/// (a custom store's, or a PostgreSQL database's in SQL_ASCII): what is not valid UTF-8
/// is written as U+FFFD, so that the output is JSON all the same.
inline void append_json_string_repaired(std::string& out, std::string_view s) {
    const std::size_t start = out.size();
    if (append_json_string(out, s))
        return;
    out.resize(start);
    append_json_string<false>(out, replace_invalid_utf8(s));
}

/// append_json_value() as append_json_string_repaired() is append_json_string().
inline void append_json_value_repaired(std::string& out, const json::value& v) {
    const std::size_t start = out.size();
    if (append_json_value(out, v))
        return;
    out.resize(start);
    append_json_value<false>(out, replace_invalid_utf8(v));
}

} // namespace dexter::sessions::detail
