// SPDX-License-Identifier: BSL-1.0
// The conversation, interactive or one question at a time. The rule that matters:
// an answer is saved (save_exchange has returned) before it is printed, so nothing
// the user has seen answered can be lost by a crash, a kill or Ctrl-C.
#include "repl.hpp"

#include "store.hpp"
#include "terminal.hpp"

#include <dexter/sessions/utf8.hpp>
#include <dexter/sessions/version.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <iostream>
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

void print_banner(const session_manager& manager,
                  const std::optional<sessions::loaded_session>& resumed) {
    std::cout << "dexter " DEXTER_SESSIONS_VERSION " — ";
    if (!resumed) {
        std::cout << "new session " << manager.current()->id << '\n';
        return;
    }
    const auto count = resumed->meta.exchange_count;
    std::cout << "resumed session " << resumed->meta.id << " (" << count
              << (count == 1 ? " exchange)\n" : " exchanges)\n");
    const auto& loaded = resumed->exchanges;
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

// What became of one question.
struct turn_result {
    agent_reply reply;
    std::optional<sessions::exchange> saved; // set when answered and saved
};

// Asks the agent about `question` with the session's recent context, and saves the
// exchange once answered. An answer the store refuses (not UTF-8, too large) is a
// failure; other store errors are thrown.
turn_result ask_and_save(session_manager& manager, agent& answerer, const std::string& question,
                         std::size_t history_limit) {
    using outcome = agent_reply::outcome;
    // Checked before the agent runs (and costs), not only when saving.
    if (!sessions::is_valid_utf8(question))
        return {{outcome::failed, "the question is not valid UTF-8; nothing asked"}, {}};
    agent_request request{manager.current()->id, manager.history().recent_turns(history_limit)};
    request.messages.push_back({sessions::chat_role::user, question});
    turn_result turn{answerer.ask(request), {}};
    if (turn.reply.result != outcome::answered)
        return turn;
    try {
        turn.saved = manager.save_exchange(question, turn.reply.text);
    } catch (const sessions::invalid_input& e) {
        return {{outcome::failed, e.what()}, {}};
    }
    warn_about_store(manager);
    return turn;
}

bool is_exit_command(const std::string& line) {
    return line == "exit" || line == "quit" || line == "/exit";
}

} // namespace

int run_interactive(const options& o, agent& answerer, interrupt_pipe& interrupts) {
    session_manager manager = open_store(o);
    manager.check_writable(); // before the user types anything
    warn_about_store(manager);
    const auto resumed = open_session(manager, o);
    print_banner(manager, resumed);

    const bool terminal = ::isatty(STDIN_FILENO) == 1;
    line_reader input(STDIN_FILENO, interrupts);
    for (;;) {
        if (terminal)
            std::cout << "> ";
        flush_stdout();
        const input_event event = input.next();
        if (event.what != input_event::kind::line) {
            if (terminal)
                std::cout << '\n'; // leave the shell a fresh line
            flush_stdout();
            return event.what == input_event::kind::signal ? 128 + event.signal : 0;
        }
        const std::string question = trim(event.text);
        if (question.empty())
            continue;
        if (is_exit_command(question))
            return 0;

        const turn_result turn = ask_and_save(manager, answerer, question, o.history_limit);
        switch (turn.reply.result) {
        case agent_reply::outcome::answered:
            std::cout << turn.reply.text << '\n';
            flush_stdout();
            break;
        case agent_reply::outcome::failed:
            std::cerr << "dexter: " << turn.reply.text << '\n';
            break;
        case agent_reply::outcome::interrupted:
            std::cerr << "dexter: interrupted; nothing saved for this question\n";
            if (turn.reply.stop)
                return 128 + turn.reply.signal;
            break;
        }
    }
}

int run_one_shot(const options& o, agent& answerer) {
    session_manager manager = open_store(o);
    manager.check_writable();
    warn_about_store(manager);
    open_session(manager, o);

    const turn_result turn = ask_and_save(manager, answerer, trim(o.prompt), o.history_limit);
    switch (turn.reply.result) {
    case agent_reply::outcome::answered:
        if (o.json)
            std::cout << boost::json::serialize(
                             boost::json::object{{"session_id", manager.current()->id},
                                                 {"seq", turn.saved->seq},
                                                 {"answer", turn.reply.text}})
                      << '\n';
        else
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

} // namespace dexter::cli
