// SPDX-License-Identifier: BSL-1.0
// The commands that read sessions back: show, export, search.
#pragma once

#include "interrupts.hpp"
#include "options.hpp"

namespace dexter::cli {

/// --show ID: the whole session, streamed exchange by exchange to standard output. Without
/// a format, a transcript to read (per exchange a line with its seq and local time, the
/// question quoted with "> ", the answer), made terminal-safe; --markdown and --json as
/// --export writes them. Damaged records are one warning line. Returns 0.
/// Throws session_not_found, ambiguous_session_id, std::runtime_error naming standard
/// output when it cannot be written, and what the store throws.
int show_session(const options& o);

/// --export ID: the session in o.format, streamed to standard output or, with -o FILE, to a
/// temporary file beside FILE that replaces FILE only once complete and synced; on any
/// failure the temporary is removed and FILE is left as it was. Returns 0, or 128 + the
/// signal (taken from `interrupts`, when given) that interrupted an export to a file.
/// Throws as show_session(), and
/// std::runtime_error naming FILE.
int export_session(const options& o, interrupt_pipe* interrupts);

/// --search TEXT: the o.limit newest hits, one line each (id, seq, local date, title,
/// snippet; cut to the terminal width), or with --json an array of objects {id, title,
/// seq, timestamp, field, snippet}. Returns 0 when something was found, 1 when not (as
/// grep does). Throws as show_session().
int search_sessions(const options& o);

/// -s ID --explain (or -r ID, -c): resumes the session as a conversation would (taking
/// and releasing its lease: a session open elsewhere is refused), then prints the
/// resume's report (exchanges in the session and loaded, the turns the agent is sent in
/// full and as summaries, each line skipped or repaired with its reason, the store's
/// notes) and the messages the agent would be sent before the next question, made
/// terminal-safe (unless --raw). With --json, one object {"session", "report",
/// "messages"} (resume_report's JSON, messages as the agent request has them). Asks
/// nothing and saves nothing. Returns 0. Throws as resume() does.
int explain_resume(const options& o);

} // namespace dexter::cli
