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

// At most `max_lines` lines and about `max_bytes` bytes of `text`, cut at a character
// boundary and marked with an ellipsis when cut.
std::string shorten(const std::string& text, std::size_t max_lines = 4,
                    std::size_t max_bytes = 300) {
    std::size_t end = 0, lines = 0;
    while (end < text.size() && end < max_bytes) {
        if (text[end] == '\n' && ++lines == max_lines)
            break;
        ++end;
    }
    if (end >= text.size())
        return text;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end;
    return trim(text.substr(0, end)) + " …";
}

// The last exchanges of a resumed session (at most exchanges_shown_on_resume), as a
// reminder of where the conversation stands.
void print_replay(const sessions::loaded_session& resumed) {
    const auto count = resumed.meta.exchange_count;
    const auto& loaded = resumed.exchanges;
    const std::size_t shown = std::min(exchanges_shown_on_resume, loaded.size());
    if (count > shown) {
        const auto earlier = count - shown;
        std::cout << "… " << earlier
                  << (earlier == 1 ? " earlier exchange\n" : " earlier exchanges\n");
    }
    for (auto it = loaded.end() - static_cast<std::ptrdiff_t>(shown); it != loaded.end(); ++it)
        std::cout << "> " << terminal_safe(shorten(it->query), true) << '\n'
                  << terminal_safe(shorten(it->answer), true) << '\n';
    if (shown > 0)
        std::cout << "— continuing —\n"; // the replay ends, the session goes on
}

std::string exchanges_text(std::uint64_t count) {
    return std::to_string(count) + (count == 1 ? " exchange" : " exchanges");
}

void print_banner(const session_manager& manager,
                  const std::optional<sessions::loaded_session>& resumed, const options& o) {
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
    print_replay(*resumed);
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
    warn_about_store(manager);
    return turn;
}

// Whether standard output may be coloured: a terminal, NO_COLOR unset or empty
// (no-color.org), and a TERM that is not "dumb".
bool colour_on_stdout() {
    const char* no_color = std::getenv("NO_COLOR");
    const char* term = std::getenv("TERM");
    return is_terminal(STDOUT_FILENO) && (!no_color || !*no_color) &&
           !(term && std::string_view(term) == "dumb");
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
        live.emplace(text, spinner, colour_on_stdout(), false);
    }
    turn_result turn;
    try {
        turn = ask_and_save(manager, answerer, question, o.history_limit, live ? &*live : nullptr);
    } catch (const std::exception& e) {
        if (live && live->shown()) {
            live->abandon("NOT saved");
            std::cerr << "dexter: answer NOT saved: " << e.what() << '\n';
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
            std::cerr << "dexter: answer NOT saved: " << turn.not_saved << '\n';
            return 1;
        }
        if (o.json)
            std::cout << boost::json::serialize(
                             boost::json::object{{"session_id", manager.current()->id},
                                                 {"seq", turn.saved->seq},
                                                 {"answer", turn.reply.text}})
                      << '\n';
        else if (!turn.reply.text.empty())
            std::cout << turn.reply.text << '\n';
        flush_stdout();
        return 0;
    case agent_reply::outcome::failed:
        std::cerr << "dexter: " << turn.reply.text << '\n';
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
            std::cerr << "dexter: " << e.what() << '\n';
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
    print_banner(manager, resumed, o);

    question_source input(o, interrupts);
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
    open_session(manager, o);

    return report(ask_and_show(manager, answerer, trim(o.prompt), o), o, manager);
}

} // namespace dexter::cli
