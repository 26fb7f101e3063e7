// SPDX-License-Identifier: BSL-1.0
// The commands that manage sessions rather than talk in one: list and delete.
// (read_commands.hpp has those that read one back: show, export, search.)
#pragma once

#include "interrupts.hpp"
#include "options.hpp"

namespace dexter::cli {

/// --list-sessions: a table (id, last update in local time, exchange count, title made
/// terminal-safe and cut to the terminal width), newest first; with --json a JSON array
/// of objects {id, title, created_at, updated_at, exchange_count} (UTC ISO-8601 times).
/// With --limit N, only the newest N (one page: session_manager::list_page()). A store
/// root that does not exist lists as empty and is not created. Returns 0.
int list_sessions(const options& o);

/// --delete-session ID: shows the session, asks "Delete? [y/N]" when standard input is
/// a terminal (a refusal without one unless -y), and deletes it. Returns 0 (deleted,
/// or kept at the user's answer), or 128 + the signal that interrupted the question.
/// Throws std::runtime_error when it may not ask and has no -y, session_not_found,
/// and what the store throws.
int delete_session(const options& o, interrupt_pipe& interrupts);

} // namespace dexter::cli
