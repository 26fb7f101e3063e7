// SPDX-License-Identifier: BSL-1.0
// Arbitrary bytes in tests: bytes() to write them from a literal, show() to print them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dexter::sessions::test {

/// Every byte of a string literal, embedded NULs included (not the terminator).
template <std::size_t N>
std::string bytes(const char (&lit)[N]) {
    return std::string(lit, N - 1);
}

/// A printable rendering of arbitrary bytes, for test messages only: printable ASCII as
/// is, every other byte as \xhh. Longer than `max_chars` characters: cut there, and
/// "..." added.
inline std::string show(std::string_view s, std::size_t max_chars = std::string::npos) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out.size() > max_chars ? out.substr(0, max_chars) + "..." : out;
}

} // namespace dexter::sessions::test
