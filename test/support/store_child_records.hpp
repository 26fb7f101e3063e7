// SPDX-License-Identifier: BSL-1.0
// The content of the exchanges store_child saves: store_child.cpp writes them, and
// jsonl_store_crash_test.cpp checks every loaded exchange against them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dexter::sessions::test {

/// The query of exchange `seq`.
inline std::string query_for(std::uint64_t seq) {
    return "question " + std::to_string(seq);
}

/// The answer of exchange `seq`: mostly small, every third or so 20-200 KB (a write that
/// takes time, so that kills land inside it), with characters that JSON escapes and a
/// non-ASCII one.
inline std::string answer_for(std::uint64_t seq) {
    std::uint64_t h = seq * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    const std::size_t size = h % 3 == 0 ? 20'000 + h % 180'000 : 40 + h % 2'000;
    const std::string unit =
        "answer " + std::to_string(seq) + ": \"quoted\", tab\t, newline\n, é; ";
    std::string a;
    while (a.size() < size)
        a += unit;
    return a;
}

} // namespace dexter::sessions::test
