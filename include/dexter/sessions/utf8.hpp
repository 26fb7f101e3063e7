// SPDX-License-Identifier: BSL-1.0
// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
// public: a host checks text with these before it saves it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace dexter::sessions {

/// The length (2 to 4) of the well-formed multi-byte UTF-8 sequence at the start of
/// `p[0..rest)`, or 0 if none starts there (an ASCII byte, a stray continuation byte, an
/// overlong form, a surrogate, a code point above U+10FFFF, or a sequence cut short).
/// The one place that decides what well-formed UTF-8 is; `rest` must be at least 1.
[[nodiscard]] constexpr std::size_t utf8_sequence_length(const unsigned char* p,
                                                         std::size_t rest) noexcept {
    const unsigned char c = p[0];
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; // overlong
        else if (c == 0xED)
            hi = 0x9F; // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; // overlong
        else if (c == 0xF4)
            hi = 0x8F; // above U+10FFFF
    } else {
        return 0;
    }
    if (rest < len || p[1] < lo || p[1] > hi)
        return 0;
    for (std::size_t k = 2; k < len; ++k)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or
/// `text.size()` when the whole text is valid.
[[nodiscard]] constexpr std::size_t first_invalid_utf8(std::string_view text) noexcept {
    if (!std::is_constant_evaluated() && std::endian::native == std::endian::little) {
        // At run time: ASCII 8 bytes at a time, the ASCII bytes before the first byte
        // above 0x7F of a word skipped at once, and multi-byte characters (which come in
        // runs: CJK, emoji next to each other) checked one after the other.
        const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
        const auto* const end = begin + text.size();
        const auto* p = begin;
        while (p != end) {
            if (end - p >= 8) {
                std::uint64_t w;
                std::memcpy(&w, p, 8);
                const std::uint64_t high = w & 0x8080808080808080ull;
                if (high == 0) {
                    p += 8;
                    continue;
                }
                p += std::countr_zero(high) / 8;
            } else if (*p < 0x80) {
                ++p;
                continue;
            }
            do {
                const std::size_t len = utf8_sequence_length(p, static_cast<std::size_t>(end - p));
                if (len == 0)
                    return static_cast<std::size_t>(p - begin);
                p += len;
            } while (p != end && *p >= 0x80);
        }
        return text.size();
    }
    const auto s = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        // ASCII runs, 8 bytes at a time (most text is mostly ASCII).
        while (n - i >= 8) {
            unsigned char high = 0;
            for (std::size_t k = 0; k < 8; ++k)
                high |= s(i + k);
            if (high & 0x80)
                break;
            i += 8;
        }
        if (i == n)
            break;
        if (s(i) < 0x80) {
            ++i;
            continue;
        }
        unsigned char seq[4] = {s(i), 0, 0, 0}; // constexpr: no reinterpret_cast
        const std::size_t rest = n - i < 4 ? n - i : 4;
        for (std::size_t k = 1; k < rest; ++k)
            seq[k] = s(i + k);
        const std::size_t len = utf8_sequence_length(seq, rest);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}

/// True when the whole of `text` is well-formed UTF-8 (RFC 3629).
[[nodiscard]] constexpr bool is_valid_utf8(std::string_view text) noexcept {
    return first_invalid_utf8(text) == text.size();
}

/// The longest prefix of `text` of at most `max_bytes` bytes that does not cut a
/// UTF-8 sequence in two (text is assumed valid).
[[nodiscard]] constexpr std::string_view utf8_prefix(std::string_view text,
                                                     std::size_t max_bytes) noexcept {
    if (text.size() <= max_bytes)
        return text;
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end;
    return text.substr(0, end);
}

} // namespace dexter::sessions
