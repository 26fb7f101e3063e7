// SPDX-License-Identifier: BSL-1.0
// The commands that change sessions: rename, pin, fork, import, the trash (list,
// restore, purge) and retention (prune).
#pragma once

#include "interrupts.hpp"
#include "options.hpp"

namespace dexter::cli {

/// --rename ID TITLE: gives session ID (a full id or a unique prefix) the title o.title
/// and prints "renamed session ID". Returns 0. Throws session_not_found, std::runtime_error
/// when another process holds the session, and what the store throws.
int rename_session(const options& o);

/// --pin ID / --unpin ID: pins (pin true) or unpins the session; prints "pinned session
/// ID" or "unpinned session ID". Returns 0. Throws as rename_session().
int pin_session(const options& o, bool pin);

/// --fork ID[@SEQ] without a conversation: copies the session (through exchange SEQ, else
/// all of them) into a new one and prints the new id alone on a line. Returns 0. Throws
/// session_not_found, sessions::invalid_input (SEQ past the last exchange), and what the
/// store throws; on throw no new session exists.
int fork_session(const options& o);

/// --import FILE (or - for standard input): a json or jsonl export read into a new
/// session, whose id is printed alone on a line. Says on standard error when the
/// original id was taken and a fresh one given, and in one warning line what was
/// skipped. Returns 0. Throws std::runtime_error naming FILE when it cannot be read, and
/// what the import throws (a damaged or newer export: nothing is imported).
int import_session(const options& o);

/// --list-trash: a table (id, deletion time in local time, exchange count, title), most
/// recently deleted first; with --json an array of the trashed sessions as
/// json::value_from() maps them (the session's fields and deleted_at). A store root that
/// does not exist lists as empty and is not created. Returns 0.
int list_trash(const options& o);

/// --restore ID: brings the session (a full id, or a unique prefix of a trashed one) back
/// from the trash and prints "restored session ID". Returns 0. Throws std::runtime_error
/// when it is not in the trash, session_exists when a live session has its id (nothing
/// moved), and what the store throws.
int restore_session(const options& o);

/// --purge-trash --older-than DURATION: lists the trashed sessions deleted more than
/// DURATION ago (all for 0), asks (confirm()), deletes them for good and prints each one
/// purged. Returns 0, 1 if some could not be purged (each named on standard error), or
/// 128 + the signal that interrupted the question.
int purge_trash(const options& o, interrupt_pipe& interrupts);

/// --prune --older-than DURATION: the sessions whose last exchange is older than
/// DURATION, pinned ones excepted. With --dry-run prints them ("would move") and changes
/// nothing; otherwise asks (confirm()), moves them to the trash and prints each one
/// moved, and each one kept with why (pinned, saved into meanwhile, held by a writer).
/// Returns 0, or 128 + the signal that interrupted the question.
int prune_sessions(const options& o, interrupt_pipe& interrupts);

} // namespace dexter::cli
