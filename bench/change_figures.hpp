// SPDX-License-Identifier: BSL-1.0
// The change side's figures (docs/PERFORMANCE.md, "Changing sessions"): a fork of a long
// session beside copying its file with cp, and a prune of many sessions beside renaming
// as many directories.
#pragma once

#include <cstddef>
#include <filesystem>

namespace bench {

/// How big the change figures' stores are.
struct change_sizes {
    std::size_t long_session;  ///< exchanges of the session that is forked
    std::size_t many_sessions; ///< sessions pruned
    std::size_t repeats;       ///< timed runs of each side (the median is reported)
    std::size_t saves;         ///< timed saves of each side of figure 17
};
inline constexpr change_sizes full_change_sizes{100000, 10000, 3, 5000};
inline constexpr change_sizes tiny_change_sizes{1000, 500, 3, 200};

/// Figure 12: session_manager::fork_session() of the long session, beside `cp` of its
/// history file: without sync on either side (12a), and each synced to disk (12b: the
/// store's default durability, beside `cp` then `sync` of the copy); 12m: the fork's peak
/// memory above the process's size before it.
void figure_12(const std::filesystem::path& dir, const change_sizes& z);

/// Figure 13: session_manager::prune() moving z.many_sessions one-exchange sessions to
/// the trash, beside renaming as many session directories into another directory and
/// syncing both directories once.
void figure_13(const std::filesystem::path& dir, const change_sizes& z);

/// Figure 17: save_exchange() of the workload's exchanges (~4.5 KB of realistic text, no
/// secret in it) through session_manager<redacting_store<jsonl_store>>, beside the same
/// saves through session_manager<jsonl_store>, durability off on both; interleaved, the
/// medians of z.saves each.
void figure_17(const std::filesystem::path& dir, const change_sizes& z);

} // namespace bench
