// SPDX-License-Identifier: BSL-1.0
// The commands that manage sessions rather than talk in one: list and delete.
// (read_commands.hpp has those that read one back: show, export, search;
// change_commands.hpp those that change them: rename, fork, import, trash, prune, pins.)
#pragma once

#include "interrupts.hpp"
#include "options.hpp"

#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <variant>

namespace dexter::cli {

/// Asks `question` followed by " [y/N] " when standard input is a terminal and o.yes is
/// not given. Returns nothing when the user said y or yes (or o.yes); otherwise prints
/// `kept` and returns the exit status: 0 at a refusal, 128 + the signal that
/// interrupted the question. Throws std::runtime_error with `refusal` when standard
/// input is not a terminal and o.yes is not given.
std::optional<int> confirm(const options& o, interrupt_pipe& interrupts,
                           const std::string& question, const std::string& refusal,
                           const std::string& kept);

/// --list-sessions: a table (id, last update in local time, exchange count, title made
/// terminal-safe and cut to the terminal width, "[pinned] " before a pinned session's),
/// newest first; with --json a JSON array of the sessions as json::value_from() maps them
/// ({id, title, created_at, updated_at, exchange_count, pinned, and extra and
/// forked_from when set}; UTC ISO-8601 times).
/// With --limit N, only the newest N (one page: session_manager::list_page()). A store
/// root that does not exist lists as empty and is not created. Returns 0.
int list_sessions(const options& o);

/// The most sessions the picker (-r without an ID) offers: the newest 20.
inline constexpr std::size_t max_picked = 20;

/// -r without an ID: shows the newest max_picked sessions as a numbered table and asks
/// "resume which?" until the answer is one of the numbers. Returns the session picked,
/// or the exit status when none is: 0 after an empty answer or the end of input ("no
/// session resumed"), 128 + the signal that interrupted the question. Throws
/// std::runtime_error when standard input or output is not a terminal, or the store has
/// no session, and what the store throws.
std::variant<sessions::session_id, int> pick_session(const options& o, interrupt_pipe& interrupts);

/// --delete-session ID: shows the session and moves it to the trash, saying how to undo
/// it. With --permanent, asks "Delete for good? [y/N]" first (confirm(): a refusal
/// without a terminal unless -y) and deletes it for good. Returns 0 (deleted, or kept at
/// the user's answer), or 128 + the signal that interrupted the question. Throws
/// std::runtime_error when it may not ask and has no -y or the session is open
/// elsewhere, session_not_found, and what the store throws.
int delete_session(const options& o, interrupt_pipe& interrupts);

} // namespace dexter::cli
