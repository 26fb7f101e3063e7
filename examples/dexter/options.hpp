// SPDX-License-Identifier: BSL-1.0
// dexter's command line: what the user asked for, parsed and checked, nothing done yet.
#pragma once

#include <dexter/sessions/chat_history.hpp>
#include <dexter/sessions/export.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace dexter::cli {

/// What one run of dexter does.
enum class command {
    interactive,    ///< a conversation, one question per line of standard input
    one_shot,       ///< -p TEXT: answer one question and exit
    list_sessions,  ///< --list-sessions
    delete_session, ///< --delete-session ID
    show_session,   ///< --show ID
    export_session, ///< --export ID
    search,         ///< --search TEXT
    rename_session, ///< --rename ID TITLE
    fork_session,   ///< --fork ID[@SEQ] without -p: print the new id (and, on a terminal,
                    ///< continue in the fork)
    import_session, ///< --import FILE
    list_trash,     ///< --list-trash
    restore,        ///< --restore ID
    purge_trash,    ///< --purge-trash --older-than DURATION
    prune,          ///< --prune --older-than DURATION
    pin_session,    ///< --pin ID
    unpin_session,  ///< --unpin ID
    verify,         ///< --verify [ID]: what is damaged, read-only
    repair,         ///< --repair [ID]: damaged sessions repaired
    explain_resume, ///< -s ID --explain (or -r ID, -c): what a resume loads and would send
    show_help,      ///< -h, --help
    show_version,   ///< --version
};

/// Where sessions are kept when neither --sessions-dir nor DEXTER_SESSIONS_DIR says.
inline const std::filesystem::path default_sessions_dir = "./.dexter/sessions";

/// Turns of context sent to the agent unless --history-limit says otherwise.
inline constexpr std::size_t default_history_limit = 10;

/// The largest --history-limit accepted.
inline constexpr std::size_t max_history_limit = 1000;
static_assert(max_history_limit <= sessions::chat_history::default_capacity,
              "the history keeps every turn that --history-limit can ask for");

/// Hits --search shows unless --limit says otherwise.
inline constexpr std::size_t default_search_limit = 20;

/// The largest --limit accepted.
inline constexpr std::size_t max_limit = 1'000'000;

/// A parsed and checked command line (environment variables already applied).
struct options {
    command what = command::interactive;
    /// -s or -r ID: the session to resume (a full id or a unique prefix of 4+ characters), or
    /// the session of --delete-session, --show, --export, --rename, --fork, --restore,
    /// --pin, --unpin, --verify or --repair. Empty: none given (for --verify and --repair:
    /// every session).
    std::string session;
    /// --fork ID[@SEQ]: fork o.session (through exchange fork_seq, else the last). With
    /// -p (command::one_shot) or a conversation the run then continues in the fork.
    bool fork = false;
    std::optional<std::uint64_t> fork_seq;
    /// --rename ID TITLE: the new title (non-empty UTF-8).
    std::string title;
    /// --import FILE: the file to import; "-" is standard input.
    std::string import_file;
    /// --delete-session --permanent: delete for good instead of into the trash.
    bool permanent = false;
    /// --older-than DURATION (with --purge-trash or --prune).
    std::chrono::milliseconds older_than{0};
    /// --prune --dry-run: list what would move, change nothing.
    bool dry_run = false;
    /// --incognito: the conversation is kept in memory only; nothing is written.
    bool incognito = false;
    /// False with --no-redact: exchanges are saved with their secrets. Else each save
    /// replaces them (sessions::secret_redactor) and says so on standard error.
    bool redact = true;
    /// --raw: answers, the replay, --show, --search and --export to a terminal pass
    /// control characters and escape sequences on instead of showing them escaped. JSON
    /// output and dexter's messages on standard error do not change.
    bool raw = false;
    /// -c: resume the most recently updated session.
    bool continue_last = false;
    /// -p TEXT, or the words that are not options (joined by spaces): the one-shot
    /// question. "-" with prompt_from_stdin.
    std::string prompt;
    /// -p -: the question is standard input, read when the run starts.
    bool prompt_from_stdin = false;
    /// -r (--resume) without an ID: the session is picked from a numbered list of the
    /// recent ones (on a terminal). -r ID sets `session`, as -s does.
    bool pick_session = false;
    /// --json: machine-readable output (with --list-sessions, --list-trash, --search,
    /// --show or --prompt).
    bool json = false;
    /// --show: the format (--json, --markdown), or nothing for the terminal view.
    /// --export: --format, markdown unless given.
    std::optional<sessions::export_format> format;
    /// --export -o FILE: write FILE (by a temporary beside it, renamed into place when
    /// complete). Empty: standard output.
    std::filesystem::path output;
    /// --search: the text to find (non-empty UTF-8).
    std::string search_text;
    /// --limit N: at most N hits (--search; default_search_limit if not given) or the
    /// newest N sessions (--list-sessions; all if not given).
    std::optional<std::size_t> limit;
    /// -y: delete (--delete-session --permanent, --purge-trash, --prune) without asking.
    bool yes = false;
    std::filesystem::path sessions_dir = default_sessions_dir;
    /// --store postgresql://... (or $DEXTER_STORE): the sessions are in that PostgreSQL
    /// database instead of sessions_dir. Empty: in sessions_dir. (--store DIR sets
    /// sessions_dir.)
    std::string store_uri;
    /// The agent command run through /bin/sh -c; empty: the built-in offline agent.
    std::string agent_command;
    std::size_t history_limit = default_history_limit;
};

/// True when a --store value names a PostgreSQL database (postgresql:// or postgres://)
/// rather than a directory.
bool is_postgres_uri(const std::string& store);

/// A DURATION of --older-than: a whole number of at most 9 digits and a unit, s (seconds),
/// m (minutes), h (hours), d (days) or w (weeks), as in 30d, 12h, 90m, 45s, 2w; 0 with
/// any unit is zero. Nothing else (no sign, space, fraction, missing or other unit).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// A command line dexter cannot run: what is wrong, in one line (exit status 2).
struct usage_error {
    std::string message;
};

/// Reads an environment variable: its value, or nullopt when it is not set.
using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The env_lookup of this process (std::getenv).
std::optional<std::string> process_environment(const std::string& name);

/// Parses and checks a command line. Reads nothing but its arguments (the environment
/// only through `env`: DEXTER_STORE, DEXTER_SESSIONS_DIR, DEXTER_AGENT_CMD; empty values count as
/// unset; DEXTER_STORE and DEXTER_SESSIONS_DIR are not read with --incognito), and touches no file.
/// Every unknown option, bad value or conflicting combination gives a usage_error; -h and --version
/// win over everything but an unknown option or a missing value.
std::variant<options, usage_error> parse_options(int argc, const char* const argv[],
                                                 const env_lookup& env);

/// The text of dexter --help.
std::string help_text();

} // namespace dexter::cli
