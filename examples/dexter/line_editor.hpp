// SPDX-License-Identifier: BSL-1.0
// Reading questions from a person at a terminal: line editing with libedit, and the
// history of questions that Up brings back, kept in a file beside the sessions.
#pragma once

#include "interrupts.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dexter::cli {

/// The questions asked at a terminal, oldest first: fully deduplicated (asking a question
/// again moves it to the end), at most `bound` of them. Kept in a file when given one
/// (see question_history_path), one question per line in UTF-8, mode 0600; written by a
/// temporary file renamed over it, after re-reading it so that two dexters at once both
/// add to it. A file that is a symbolic link, a FIFO or anything but a regular file, or
/// one that cannot be read or written, is never read or written again by this object:
/// the history is then kept in memory for this run, and the caller is told once.
class question_history {
public:
    static constexpr std::size_t default_bound = 1000;
    /// Files larger than this are refused rather than read.
    static constexpr std::size_t max_file_bytes = std::size_t(8) << 20;

    /// `file` empty: in memory only. Reads nothing yet.
    explicit question_history(std::filesystem::path file, std::size_t bound = default_bound);

    /// Reads the file (absent: an empty history). Returns a warning (one line, without
    /// "dexter: ") when the file is refused or unreadable; the history then stays in
    /// memory only. Throws std::bad_alloc only.
    std::optional<std::string> load();

    /// Adds `question` (a question with a newline or carriage return, or an empty one,
    /// is ignored) and rewrites the file with what it holds now plus `question`. Returns a
    /// warning, as load() does, when the file cannot be read or written: the question is
    /// then in memory only, and so is every later one. Throws std::bad_alloc only.
    std::optional<std::string> add(const std::string& question);

    /// The questions, oldest first.
    const std::vector<std::string>& entries() const noexcept { return entries_; }
    const std::filesystem::path& file() const noexcept { return file_; }

private:
    // Reads the file into `out`; false (with `problem_` set) when refused or unreadable.
    bool read_file(std::vector<std::string>& out);
    bool write_file();
    std::optional<std::string> give_up();

    std::filesystem::path file_;
    std::size_t bound_;
    std::vector<std::string> entries_;
    bool use_file_;
    std::string problem_;
};

/// Where the question history of a conversation is kept: `question_history.txt` in the
/// file store's root (a name no channel can take). None with --incognito (nothing is
/// written) and for a PostgreSQL store (no root on this machine).
std::filesystem::path question_history_path(const std::filesystem::path& sessions_dir,
                                            bool incognito, bool postgres);

#ifdef DEXTER_HAVE_LIBEDIT

/// Reads the questions of a person at a terminal with libedit: Emacs-style editing
/// (arrows, Home/End, Ctrl-A/E/K/U/W), Up and Down through the question history,
/// ~/.editrc honoured. Ctrl-C clears the line being typed; at an empty line, a second
/// Ctrl-C in a row ends the input, and so does Ctrl-D. SIGTERM and SIGHUP end it as a
/// signal, as line_reader reports them. Standard input and output must be terminals.
/// From construction on, the terminal stays in libedit's mode, between lines too (keys
/// typed before the first prompt or while the agent runs wait for the next prompt; ISIG
/// stays on, so Ctrl-C still signals); the destructor gives it back as it was found.
///
/// libedit's native API (histedit.h) rather than its readline emulation: it lets the
/// reading of each byte go through our function (EL_GETCFN), which waits on the
/// interrupt pipe too, so a Ctrl-C reaches us while a line is typed without libedit's
/// own signal handlers replacing ours; and its history holds exactly our deduplicated
/// list, with nothing written behind our back.
class line_editor {
public:
    /// Sets LC_CTYPE to a UTF-8 locale for its lifetime (the environment's if it is one,
    /// else C.UTF-8), so that UTF-8 questions are read and shown as characters. Throws
    /// std::runtime_error if libedit cannot start.
    line_editor(interrupt_pipe& interrupts, question_history& history);
    ~line_editor();
    line_editor(const line_editor&) = delete;
    line_editor& operator=(const line_editor&) = delete;

    /// Shows the prompt `> ` and returns the line typed (without its newline), the end of
    /// the input (Ctrl-D at an empty line, Ctrl-C twice at an empty line, the terminal
    /// gone), or a signal other than SIGINT. Throws std::system_error if reading fails.
    input_event next();

    /// Adds `question` to the history (question_history::add) and to what Up shows.
    /// Returns question_history::add's warning.
    std::optional<std::string> remember(const std::string& question);

    /// For the function libedit calls to read a character: the next character typed, or
    /// an interruption. Not for other callers.
    int read_character(wchar_t* out) noexcept;

private:
    void show_history();

    interrupt_pipe& interrupts_;
    question_history& history_;
    struct state;
    std::unique_ptr<state> state_;
};

#endif // DEXTER_HAVE_LIBEDIT

} // namespace dexter::cli
