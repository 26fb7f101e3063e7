// SPDX-License-Identifier: BSL-1.0
// --list-sessions and --delete-session.
#include "session_commands.hpp"

#include "store.hpp"
#include "terminal.hpp"

#include <dexter/sessions/export.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dexter::cli {

namespace {

// Width of the table's columns before the title: "ab12cd34  2026-01-02 13:45  ......12  "
constexpr std::size_t title_column = 8 + 2 + 16 + 2 + 9 + 2;
constexpr std::size_t min_title_width = 10;

std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + ' ' + (n == 1 ? one : many);
}

bool is_yes(const std::string& reply) {
    std::string word;
    for (const char c : reply)
        if (c != ' ' && c != '\t' && c != '\r')
            word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return word == "y" || word == "yes";
}

// The session table; `numbered`: each row starts with its number from 1 (the picker's).
void print_table(const std::vector<sessions::session_meta>& all, bool numbered = false) {
    // A pinned session's title is marked; the columns stay those of the header.
    const std::size_t number_column = numbered ? 5 : 0; // "  12 "
    const std::size_t width =
        std::max(terminal_width(), number_column + title_column + min_title_width);
    char row[128];
    std::snprintf(row, sizeof row, "%s%-8s  %-16s  %9s  ", numbered ? "   # " : "", "ID", "UPDATED",
                  "EXCHANGES");
    std::cout << row << "TITLE\n";
    std::size_t n = 0;
    for (const auto& m : all) {
        char number[16] = "";
        if (numbered)
            std::snprintf(number, sizeof number, "%4zu ", ++n);
        std::snprintf(row, sizeof row, "%s%-8s  %-16s  %9llu  ", number, m.id.c_str(),
                      local_time(m.updated_at).c_str(),
                      static_cast<unsigned long long>(m.exchange_count));
        const std::string_view pin = m.pinned ? "[pinned] " : "";
        std::cout << row << pin << fit(m.title, width - number_column - title_column - pin.size())
                  << '\n';
    }
}

// A number from 1 to `max` in `reply` (spaces around allowed), or 0.
std::size_t chosen_number(const std::string& reply, std::size_t max) {
    const auto first = reply.find_first_not_of(" \t\r");
    if (first == std::string::npos)
        return 0;
    const auto last = reply.find_last_not_of(" \t\r");
    const std::string word = reply.substr(first, last - first + 1);
    if (word.size() > 4 || word.find_first_not_of("0123456789") != std::string::npos)
        return 0;
    const std::size_t n = std::stoul(word);
    return n <= max ? n : 0;
}

// One array of the sessions' JSON (sessions::append_json(): the objects value_from()
// gives), written straight into a buffer: no json::value for each of thousands. To a
// terminal it is shown whole (json_for_terminal()); elsewhere it goes out every 64 KiB,
// so that the memory it takes does not grow with the number of sessions.
void print_json(const std::vector<sessions::session_meta>& all) {
    const bool terminal = is_terminal(STDOUT_FILENO);
    constexpr std::size_t flush_at = 64u << 10;
    std::string text;
    text.reserve(terminal ? all.size() * 200 + 2 : flush_at + 4096);
    text += '[';
    bool first = true;
    for (const auto& m : all) {
        if (!std::exchange(first, false))
            text += ',';
        sessions::append_json(text, m);
        if (!terminal && text.size() >= flush_at) {
            std::cout << text;
            text.clear();
        }
    }
    text += ']';
    std::cout << (terminal ? json_for_terminal(text) : text) << '\n';
}

} // namespace

int list_sessions(const options& o) {
    std::vector<sessions::session_meta> all;
    if (store_exists(o)) {
        session_manager manager = open_store(o);
        all = o.limit ? manager.list_page({*o.limit, std::nullopt, {}}).sessions
                      : manager.list_sessions();
        warn_about_store(manager);
    }
    if (o.json)
        print_json(all);
    else if (all.empty())
        std::cout << "no sessions in " << store_name(o) << '\n';
    else
        print_table(all);
    if (!std::cout.flush())
        throw std::runtime_error("cannot write to standard output");
    return 0;
}

std::optional<int> confirm(const options& o, interrupt_pipe& interrupts,
                           const std::string& question, const std::string& refusal,
                           const std::string& kept) {
    if (o.yes)
        return std::nullopt;
    if (!::isatty(STDIN_FILENO))
        throw std::runtime_error(refusal);
    std::cout << question << " [y/N] " << std::flush;
    line_reader input(STDIN_FILENO, interrupts);
    const input_event answer = input.next();
    if (answer.what == input_event::kind::line && is_yes(answer.text))
        return std::nullopt;
    if (answer.what != input_event::kind::line)
        std::cout << '\n';
    std::cout << kept << '\n';
    return answer.what == input_event::kind::signal ? 128 + answer.signal : 0;
}

std::variant<sessions::session_id, int> pick_session(const options& o, interrupt_pipe& interrupts) {
    if (!is_terminal(STDIN_FILENO) || !is_terminal(STDOUT_FILENO))
        throw std::runtime_error("-r without an ID picks a session on a terminal; give the "
                                 "session: -r ID, or -c for the most recent one");
    std::vector<sessions::session_meta> recent;
    if (store_exists(o)) {
        session_manager manager = open_store(o);
        recent = manager.list_page({max_picked, std::nullopt, {}}).sessions;
        warn_about_store(manager);
    }
    if (recent.empty())
        throw std::runtime_error("no sessions to resume in " + store_name(o));
    print_table(recent, true);
    line_reader input(STDIN_FILENO, interrupts);
    for (;;) {
        std::cout << "resume which? [1-" << recent.size() << ", Enter: none] " << std::flush;
        const input_event answer = input.next();
        if (answer.what == input_event::kind::signal) {
            std::cout << '\n';
            return 128 + answer.signal;
        }
        if (answer.what == input_event::kind::end_of_input ||
            answer.text.find_first_not_of(" \t\r") == std::string::npos) {
            if (answer.what == input_event::kind::end_of_input)
                std::cout << '\n';
            std::cout << "no session resumed\n";
            return 0;
        }
        if (const std::size_t n = chosen_number(answer.text, recent.size()))
            return recent[n - 1].id;
        std::cout << "expected a number from 1 to " << recent.size() << '\n';
    }
}

int delete_session(const options& o, interrupt_pipe& interrupts) {
    session_manager manager = open_store(o);
    const sessions::session_id id = manager.resolve(o.session);
    const auto meta = manager.find_session(id);
    if (!meta)
        throw sessions::session_not_found(id);
    warn_about_store(manager);
    std::cout << "session " << id << " \"" << fit(meta->title, 60)
              << "\": " << plural(meta->exchange_count, "exchange", "exchanges")
              << ", last updated " << local_time(meta->updated_at) << '\n';

    if (o.permanent) {
        if (auto status = confirm(o, interrupts, "Delete for good?",
                                  "not deleting session " + id +
                                      " for good without confirmation: standard input is not a "
                                      "terminal (add -y to delete without asking)",
                                  "kept session " + id))
            return *status;
    }
    try {
        manager.delete_session(id, o.permanent ? sessions::deletion::permanent
                                               : sessions::deletion::to_trash);
    } catch (const sessions::session_busy& e) {
        throw std::runtime_error(busy_message(id, e));
    }
    warn_about_store(manager);
    if (o.permanent)
        std::cout << "deleted session " << id << " for good\n";
    else
        std::cout << "moved session " << id << " to the trash (undo: dexter --restore " << id
                  << ")\n";
    if (!std::cout.flush())
        throw std::runtime_error("cannot write to standard output");
    return 0;
}

} // namespace dexter::cli
