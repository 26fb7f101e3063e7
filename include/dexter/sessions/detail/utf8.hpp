// SPDX-License-Identifier: BSL-1.0
// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <string_view>

namespace dexter::sessions::detail {

/// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or
/// `text.size()` when the whole text is valid.
[[nodiscard]] constexpr std::size_t first_invalid_utf8(std::string_view text) noexcept {
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
        const unsigned char c = s(i);
        if (c < 0x80) {
            ++i;
            continue;
        }
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
            return i;
        }
        if (n - i < len)
            return i;
        if (s(i + 1) < lo || s(i + 1) > hi)
            return i;
        for (std::size_t k = 2; k < len; ++k)
            if ((s(i + k) & 0xC0) != 0x80)
                return i;
        i += len;
    }
    return n;
}

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

} // namespace dexter::sessions::detail
