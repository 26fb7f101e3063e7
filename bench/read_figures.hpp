// SPDX-License-Identifier: BSL-1.0
// The read side's figures (docs/PERFORMANCE.md, "Reading sessions back"): export, search
// and dexter --show of long sessions and of many short ones, each beside its floor.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace bench {

/// How big the read figures' stores are.
struct read_sizes {
    std::size_t long_session;  ///< exchanges of the one long session
    std::size_t many_sessions; ///< sessions of one exchange each
    std::size_t repeats;       ///< timed runs of each side (the median is reported)
};
inline constexpr read_sizes full_read_sizes{100000, 10000, 3};
inline constexpr read_sizes tiny_read_sizes{1000, 1000, 3};

/// Figure 9: export_session() of the long session to /dev/null, as jsonl and markdown,
/// beside jsonl_store::load() of it; peak memory of each, in a forked child.
void figure_9(const std::filesystem::path& dir, const read_sizes& z);

/// Figure 10: session_manager::search() for bench::rare_word over many one-exchange
/// sessions and over the long session, beside `grep -c -i -F` over the same files.
void figure_10(const std::filesystem::path& dir, const read_sizes& z);

/// Figure 11: `dexter --show` of the long session through a pipe: the time to its first
/// byte and to its last. Needs the long session of figure 9 (written if absent).
void figure_11(const std::filesystem::path& dir, const read_sizes& z, const std::string& dexter);

} // namespace bench
