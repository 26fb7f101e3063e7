// SPDX-License-Identifier: BSL-1.0
// The conversation, interactive or one question at a time. The rule that matters:
// an answer is saved (save_exchange has returned) before it is printed, so nothing
// the user has seen answered can be lost by a crash, a kill or Ctrl-C.
#include "repl.hpp"

#include "answer_display.hpp"
#include "line_editor.hpp"
#include "store.hpp"
#include "terminal.hpp"

#include <dexter/sessions/utf8.hpp>
#include <dexter/sessions/version.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::cli {

namespace {

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

void flush_stdout() {
    if (!std::cout.flush())
        throw std::runtime_error("cannot write to standard output");
}

control_chars controls_of(const options& o) {
    return o.raw ? control_chars::raw : control_chars::escaped;
}

// Lines of replayed text, made safe, that take at most `max_rows` rows of `width`
// columns (a long line wraps): the lines that fit, the last one cut with an ellipsis if
// it does not fit whole, then "… (+N lines)" saying how many lines were left out.
std::vector<std::string> excerpt(const std::string& text, std::size_t width, control_chars mode,
                                 std::size_t max_rows) {
    std::vector<std::string> lines;
    std::string_view rest = text;
    std::size_t budget = max_rows * width, hidden = 0;
    for (bool more = !rest.empty(); more;) {
        const auto nl = rest.find('\n');
        more = nl != std::string_view::npos;
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(more ? nl + 1 : rest.size());
        if (budget == 0) {
            ++hidden;
            continue;
        }
        if (line.ends_with('\r'))
            line.remove_suffix(1); // part of the line break
        lines.push_back(fit(line, budget, mode));
        const std::size_t rows = std::max<std::size_t>(
            1, (display_width(lines.back()) + width - 1) / width); // rows it wraps to
        budget -= std::min(budget, rows * width);
    }
    if (hidden > 0)
        lines.push_back("… (+" + std::to_string(hidden) + (hidden == 1 ? " line)" : " lines)"));
    return lines;
}

// The last exchanges of a resumed session (at most exchanges_shown_on_resume), as a
// reminder of where the conversation stands, marked as history: each question after its
// time, "[2026-01-02 13:45] > ", rather than the live "> "; dim where colour is used
// (use_colour()); questions cut to 2 rows of the terminal, answers to 4.
void print_replay(const sessions::loaded_session& resumed, const options& o) {
    const auto count = resumed.meta.exchange_count;
    const auto& loaded = resumed.exchanges;
    const std::size_t shown = std::min(exchanges_shown_on_resume, loaded.size());
    const bool colour = use_colour(STDOUT_FILENO);
    const auto print = [&](const std::string& prefix, const std::string& line) {
        std::cout << (colour ? "\x1b[2m" : "") << prefix << line << (colour ? "\x1b[0m\n" : "\n");
    };
    // Those before the first one shown, by number: a gap among the shown ones is not
    // "earlier" (the resume summary counts it).
    const std::uint64_t first_shown = shown > 0 ? loaded[loaded.size() - shown].seq : count + 1;
    if (first_shown > 1 && count > 0) {
        const auto earlier = std::min(first_shown - 1, count);
        print("… ", std::to_string(earlier) +
                        (earlier == 1 ? " earlier exchange" : " earlier exchanges"));
    }
    const std::size_t width = terminal_width();
    for (auto it = loaded.end() - static_cast<std::ptrdiff_t>(shown); it != loaded.end(); ++it) {
        const std::string prompt = "[" + local_time(it->timestamp) + "] > ";
        const std::size_t indent = display_width(prompt);
        const auto question =
            excerpt(trim(it->query), width > indent + 10 ? width - indent : 10, controls_of(o), 2);
        for (std::size_t i = 0; i < question.size(); ++i)
            print(i == 0 ? prompt : std::string(indent, ' '), question[i]);
        for (const auto& line : excerpt(trim(it->answer), width, controls_of(o), 4))
            print("", line);
    }
    if (shown > 0)
        print("", "— continuing —"); // the replay ends, the session goes on
}

std::string exchanges_text(std::uint64_t count) {
    return std::to_string(count) + (count == 1 ? " exchange" : " exchanges");
}

void print_banner(const session_manager& manager,
                  const std::optional<sessions::resumed_session>& resumed, const options& o) {
    std::cout << "dexter " DEXTER_SESSIONS_VERSION " — ";
    if (o.incognito) {
        std::cout << "incognito session " << manager.current()->id << ": nothing will be saved\n";
        return;
    }
    if (!resumed) {
        std::cout << "new session " << manager.current()->id << '\n';
        return;
    }
    const auto& meta = resumed->meta;
    if (o.fork && meta.forked_from)
        std::cout << "forked session " << meta.id << " from " << meta.forked_from->id << '@'
                  << meta.forked_from->seq << " (" << exchanges_text(meta.exchange_count) << ")\n";
    else
        std::cout << "resumed session " << meta.id << " (" << exchanges_text(meta.exchange_count)
                  << ")\n";
    if (const auto summary = resume_summary(resumed->report))
        std::cout << "resumed with " << *summary << " (see --verify)\n";
    print_replay(*resumed, o);
}

// What became of one question.
struct turn_result {
    agent_reply reply;
    std::optional<sessions::exchange> saved; // set when answered and saved
    std::string not_saved;                   // answered, but the store refused it: why
};

// Asks the agent about `question` with the session's recent context, and saves the
// exchange once answered. An answer the store refuses (not UTF-8, too large) is
// answered but not saved (turn_result::not_saved); other store errors are thrown.
turn_result ask_and_save(session_manager& manager, agent& answerer, const std::string& question,
                         std::size_t history_limit, answer_watcher* watcher) {
    using outcome = agent_reply::outcome;
    // Checked before the agent runs (and costs), not only when saving.
    if (!sessions::is_valid_utf8(question))
        return {{outcome::failed, "the question is not valid UTF-8; nothing asked"}, {}, {}};
    agent_request request{manager.current()->id, manager.history().recent_turns(history_limit)};
    request.messages.push_back({sessions::chat_role::user, question});
    turn_result turn{answerer.ask(request, watcher), {}, {}};
    if (turn.reply.result != outcome::answered)
        return turn;
    try {
        turn.saved = manager.save_exchange(question, turn.reply.text);
    } catch (const sessions::invalid_input& e) {
        turn.not_saved = e.what();
        return turn;
    }
    report_redactions(manager);
    warn_about_store(manager);
    return turn;
}

// One question asked and, once answered, saved; shown as it goes when standard output
// is a terminal (text as it arrives, "shown as complete" only once saved) and with a
// spinner when standard error is one. Otherwise (a pipe, --json) the answer is printed
// by the caller after it is saved. Returns what became of it; throws what the store
// throws, after marking a shown answer "[NOT saved]" and saying so.
turn_result ask_and_show(session_manager& manager, agent& answerer, const std::string& question,
                         const options& o) {
    const bool text = !o.json && is_terminal(STDOUT_FILENO);
    const bool spinner = is_terminal(STDERR_FILENO);
    std::optional<live_answer> live;
    if (text || spinner) {
        flush_stdout();
        live.emplace(text, spinner, use_colour(STDOUT_FILENO), o.raw);
    }
    turn_result turn;
    try {
        turn = ask_and_save(manager, answerer, question, o.history_limit, live ? &*live : nullptr);
    } catch (const std::exception& e) {
        if (live && live->shown()) {
            live->abandon("NOT saved");
            std::cerr << "dexter: answer NOT saved: " << terminal_safe(e.what(), true) << '\n';
        }
        throw;
    }
    if (!live)
        return turn;
    using outcome = agent_reply::outcome;
    if (turn.reply.result == outcome::answered && turn.not_saved.empty()) {
        live->complete();
        if (live->shown())
            turn.reply.text.clear(); // shown already
    } else {
        live->abandon(turn.reply.result == outcome::interrupted ? "interrupted"
                      : turn.not_saved.empty()                  ? "failed"
                                                                : "NOT saved");
    }
    return turn;
}

// Says how a question ended (the answer, unless shown already, or why there is none).
// Returns the exit status of a one-shot run that ends so.
int report(const turn_result& turn, const options& o, const session_manager& manager) {
    switch (turn.reply.result) {
    case agent_reply::outcome::answered:
        if (!turn.not_saved.empty()) {
            std::cerr << "dexter: answer NOT saved: " << terminal_safe(turn.not_saved, true)
                      << '\n';
            return 1;
        }
        if (o.json) {
            const std::string text =
                boost::json::serialize(boost::json::object{{"session_id", manager.current()->id},
                                                           {"seq", turn.saved->seq},
                                                           {"answer", turn.reply.text}});
            std::cout << (is_terminal(STDOUT_FILENO) ? json_for_terminal(text) : text) << '\n';
        } else if (!turn.reply.text.empty()) { // a pipe or file gets the exact answer
            std::cout << (is_terminal(STDOUT_FILENO)
                              ? terminal_safe(turn.reply.text, true, controls_of(o))
                              : turn.reply.text)
                      << '\n';
        }
        flush_stdout();
        return 0;
    case agent_reply::outcome::failed: // quotes the agent's standard error
        std::cerr << "dexter: " << terminal_safe(turn.reply.text, true) << '\n';
        return 1;
    case agent_reply::outcome::interrupted:
        std::cerr << "dexter: interrupted; nothing saved for this question\n";
        return 128 + turn.reply.signal;
    }
    return 1;
}

bool is_exit_command(const std::string& line) {
    return line == "exit" || line == "quit" || line == "/exit";
}

constexpr const char* slash_help = "/rename TITLE  give this session a new title\n"
                                   "/fork          continue in a copy of this session so far\n"
                                   "/help          this list\n"
                                   "exit, quit, /exit (or end of input) leave\n"
                                   "//text         asks /text (a question that starts with /)\n";

// A line starting with "/" and a word: a command to dexter, never a question. Returns
// false when `line` is a question.
bool run_slash_command(session_manager& manager, const std::string& line) {
    if (line.size() < 2 || line[0] != '/' || line[1] == ' ' || line[1] == '/')
        return false;
    const auto space = line.find(' ');
    const std::string word = line.substr(1, space == std::string::npos ? space : space - 1);
    const std::string rest = space == std::string::npos ? std::string() : trim(line.substr(space));
    if (word == "help") {
        std::cout << slash_help;
        return true;
    }
    if (word == "rename") {
        if (rest.empty()) {
            std::cerr << "dexter: /rename needs a title: /rename TITLE\n";
            return true;
        }
        try {
            manager.set_title(rest);
        } catch (const sessions::invalid_input& e) {
            std::cerr << "dexter: " << terminal_safe(e.what(), true) << '\n';
            return true;
        }
        warn_about_store(manager);
        std::cout << (manager.current_is_stored() ? "renamed session " : "session ")
                  << manager.current()->id
                  << (manager.current_is_stored() ? " to \"" : " will be titled \"")
                  << fit(rest, 60) << "\"\n";
        return true;
    }
    if (word == "fork") {
        if (!rest.empty()) {
            std::cerr << "dexter: /fork takes no argument\n";
            return true;
        }
        if (!manager.current_is_stored()) {
            std::cerr << "dexter: nothing to fork yet: this session has no exchange\n";
            return true;
        }
        const sessions::session_id from = manager.current()->id;
        const sessions::session_meta fork = manager.fork_session(from);
        try {
            manager.resume(fork.id);
        } catch (const sessions::session_busy& e) {
            throw std::runtime_error(busy_message(fork.id, e));
        }
        warn_about_store(manager);
        std::cout << "now in session " << fork.id << ", a fork of " << from << '@'
                  << fork.exchange_count << " (" << from << " stays as it was)\n";
        return true;
    }
    std::cerr << "dexter: unknown command /" << fit(word, 30)
              << " (type /help; to ask a question that starts with /, type // for its /)\n";
    return true;
}

#ifdef DEXTER_HAVE_LIBEDIT
void warn(const std::optional<std::string>& warning) {
    if (warning)
        std::cerr << "dexter: warning: " << *warning << '\n';
}
#endif

// Where the questions come from: on a terminal (standard input and output), libedit when
// dexter is built with it, with editing and the question history; else line_reader,
// exactly as for a pipe, after a "> " prompt on a terminal.
class question_source {
public:
    question_source(const options& o, interrupt_pipe& interrupts)
        : terminal_(::isatty(STDIN_FILENO) == 1), input_(STDIN_FILENO, interrupts) {
#ifdef DEXTER_HAVE_LIBEDIT
        if (terminal_ && ::isatty(STDOUT_FILENO) == 1) {
            history_.emplace(
                question_history_path(o.sessions_dir, o.incognito, !o.store_uri.empty()));
            warn(history_->load());
            editor_ = std::make_unique<line_editor>(interrupts, *history_);
        }
#else
        (void)o;
#endif
    }

    bool terminal() const noexcept {
        return terminal_;
    }

    // The next line, the end of the input or a signal (line_reader::next()).
    input_event next() {
#ifdef DEXTER_HAVE_LIBEDIT
        if (editor_) {
            flush_stdout();
            return editor_->next();
        }
#endif
        if (terminal_)
            std::cout << "> ";
        flush_stdout();
        return input_.next();
    }

    // Keeps `line` for Up (a failed question too), when there is a history.
    void remember(const std::string& line) {
#ifdef DEXTER_HAVE_LIBEDIT
        if (editor_)
            warn(editor_->remember(line));
#else
        (void)line;
#endif
    }

private:
    bool terminal_;
    line_reader input_;
#ifdef DEXTER_HAVE_LIBEDIT
    std::optional<question_history> history_;
    std::unique_ptr<line_editor> editor_;
#endif
};

} // namespace

int run_interactive(const options& o, agent& answerer, interrupt_pipe& interrupts) {
    session_manager manager = open_store(o);
    manager.check_writable(); // before the user types anything
    warn_about_store(manager);
    const auto resumed = open_session(manager, o);
    // Before the banner: on a terminal, keys typed once anything shows reach the editor.
    question_source input(o, interrupts);
    print_banner(manager, resumed, o);

    for (;;) {
        const input_event event = input.next();
        if (event.what != input_event::kind::line) {
            if (input.terminal())
                std::cout << '\n'; // leave the shell a fresh line
            flush_stdout();
            return event.what == input_event::kind::signal ? 128 + event.signal : 0;
        }
        const std::string question = trim(event.text);
        if (question.empty())
            continue;
        if (is_exit_command(question))
            return 0;
        input.remember(question);
        if (run_slash_command(manager, question)) {
            flush_stdout();
            continue;
        }
        // "//usr is ..." asks "/usr is ...".
        const std::string asked = question.starts_with("//") ? question.substr(1) : question;

        const turn_result turn = ask_and_show(manager, answerer, asked, o);
        const int status = report(turn, o, manager);
        if (turn.reply.result == agent_reply::outcome::interrupted && turn.reply.stop)
            return status;
    }
}

int run_one_shot(const options& o, agent& answerer) {
    session_manager manager = open_store(o);
    manager.check_writable();
    warn_about_store(manager);
    if (const auto resumed = open_session(manager, o))
        if (const auto summary = resume_summary(resumed->report))
            std::cerr << "dexter: session " << resumed->meta.id << " resumed with " << *summary
                      << " (see --verify)\n";

    return report(ask_and_show(manager, answerer, trim(o.prompt), o), o, manager);
}

} // namespace dexter::cli
