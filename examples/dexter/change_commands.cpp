// SPDX-License-Identifier: BSL-1.0
// --rename, --pin, --unpin, --fork, --import, --list-trash, --restore, --purge-trash,
// --prune.
#include "change_commands.hpp"

#include "session_commands.hpp"
#include "store.hpp"
#include "terminal.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace dexter::cli {

namespace {

// Width of a table's columns before the title: "ab12cd34  2026-01-02 13:45  ......12  "
constexpr std::size_t title_column = 8 + 2 + 16 + 2 + 9 + 2;
constexpr std::size_t min_title_width = 10;

void flush_stdout() {
    if (!std::cout.flush())
        throw std::runtime_error("cannot write to standard output");
}

std::string count_of(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + ' ' + (n == 1 ? one : many);
}

// One line about a session: id, a time, exchanges, title (cut to the terminal width).
void print_row(const sessions::session_meta& m, sessions::time_point when) {
    const std::size_t width = std::max(terminal_width(), title_column + min_title_width);
    char row[128];
    std::snprintf(row, sizeof row, "%-8s  %-16s  %9llu  ", m.id.c_str(), local_time(when).c_str(),
                  static_cast<unsigned long long>(m.exchange_count));
    const std::string_view pin = m.pinned ? "[pinned] " : "";
    std::cout << row << pin << fit(m.title, width - title_column - pin.size()) << '\n';
}

void print_header(const char* time_column) {
    char row[128];
    std::snprintf(row, sizeof row, "%-8s  %-16s  %9s  ", "ID", time_column, "EXCHANGES");
    std::cout << row << "TITLE\n";
}

// Runs `change` on the session o.session names, turning a busy session into one line.
template <class Change>
sessions::session_id change_session(session_manager& manager, const options& o, Change&& change) {
    const sessions::session_id id = manager.resolve(o.session);
    try {
        change(id);
    } catch (const sessions::session_busy& e) {
        throw std::runtime_error(busy_message(id, e));
    }
    warn_about_store(manager);
    return id;
}

// The trashed sessions that purge_trash(older_than) would delete now.
std::vector<sessions::trashed_session> purgeable(session_manager& manager,
                                                 std::chrono::milliseconds older_than) {
    const auto cutoff =
        std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()) -
        older_than;
    auto all = manager.list_trash();
    if (older_than.count() > 0)
        std::erase_if(all,
                      [&](const sessions::trashed_session& t) { return t.deleted_at >= cutoff; });
    return all;
}

} // namespace

int rename_session(const options& o) {
    session_manager manager = open_store(o);
    const auto id =
        change_session(manager, o, [&](const auto& sid) { manager.rename_session(sid, o.title); });
    std::cout << "renamed session " << id << " to \"" << fit(o.title, 60) << "\"\n";
    flush_stdout();
    return 0;
}

int pin_session(const options& o, bool pin) {
    session_manager manager = open_store(o);
    const auto id = change_session(manager, o, [&](const auto& sid) {
        if (pin)
            manager.pin_session(sid);
        else
            manager.unpin_session(sid);
    });
    std::cout << (pin ? "pinned session " : "unpinned session ") << id << '\n';
    flush_stdout();
    return 0;
}

int fork_session(const options& o) {
    session_manager manager = open_store(o);
    const sessions::session_id id = manager.resolve(o.session);
    const auto fork = manager.fork_session(id, o.fork_seq);
    warn_about_store(manager);
    std::cout << fork.id << '\n';
    flush_stdout();
    return 0;
}

int import_session(const options& o) {
    const bool from_stdin = o.import_file == "-";
    const std::string name = from_stdin ? std::string("standard input") : o.import_file;
    std::ifstream file;
    if (!from_stdin) {
        file.open(o.import_file, std::ios::binary);
        if (!file)
            throw std::runtime_error("cannot read " + fit(o.import_file, 200) + ": " +
                                     std::strerror(errno));
    }
    std::istream& in = from_stdin ? std::cin : file;
    session_manager manager = open_store(o);
    const sessions::import_result result = manager.import_session(in);
    warn_about_store(manager);
    warn_about_session(result.meta.id, result.diagnostics);
    if (!result.original_id.empty() && result.original_id != result.meta.id)
        std::cerr << "dexter: session " << result.original_id << " of " << fit(name, 200)
                  << " is taken in this store: imported as " << result.meta.id << '\n';
    std::cout << result.meta.id << '\n';
    flush_stdout();
    return 0;
}

int list_trash(const options& o) {
    std::vector<sessions::trashed_session> all;
    if (store_exists(o)) {
        session_manager manager = open_store(o);
        all = manager.list_trash();
        warn_about_store(manager);
    }
    if (o.json) {
        boost::json::array out;
        for (const auto& t : all)
            out.push_back(boost::json::value_from(t));
        const std::string text = boost::json::serialize(out);
        std::cout << (is_terminal(STDOUT_FILENO) ? json_for_terminal(text) : text) << '\n';
    } else if (all.empty()) {
        std::cout << "the trash of " << store_name(o) << " is empty\n";
    } else {
        print_header("DELETED");
        for (const auto& t : all)
            print_row(t.meta, t.deleted_at);
    }
    flush_stdout();
    return 0;
}

int restore_session(const options& o) {
    const auto not_in_trash = [&] {
        return std::runtime_error("no session '" + o.session + "' in the trash of " +
                                  store_name(o) + " (see --list-trash)");
    };
    if (!store_exists(o))
        throw not_in_trash();
    session_manager manager = open_store(o);
    sessions::session_meta restored;
    try {
        restored = manager.restore_session(o.session);
    } catch (const sessions::session_not_found&) {
        throw std::runtime_error("no session '" + o.session + "' in the trash of " + store_name(o) +
                                 " (see --list-trash)");
    }
    warn_about_store(manager);
    std::cout << "restored session " << restored.id << '\n';
    flush_stdout();
    return 0;
}

int purge_trash(const options& o, interrupt_pipe& interrupts) {
    if (!store_exists(o)) {
        std::cout << "the trash of " << store_name(o) << " is empty\n";
        return 0;
    }
    session_manager manager = open_store(o);
    const auto candidates = purgeable(manager, o.older_than);
    warn_about_store(manager);
    if (candidates.empty()) {
        if (manager.list_trash().empty())
            std::cout << "the trash of " << store_name(o) << " is empty\n";
        else
            std::cout << "nothing to purge: no session in the trash was deleted that long ago\n";
        flush_stdout();
        return 0;
    }
    std::cout << count_of(candidates.size(), "session", "sessions")
              << " in the trash to delete for good:\n";
    print_header("DELETED");
    for (const auto& t : candidates)
        print_row(t.meta, t.deleted_at);
    if (auto status = confirm(o, interrupts, "Delete them for good?",
                              "not purging the trash without confirmation: standard input is "
                              "not a terminal (add -y to purge without asking)",
                              "kept the trash as it is"))
        return *status;
    const auto result = manager.purge_trash(o.older_than);
    warn_about_store(manager);
    for (const auto& t : result.purged)
        std::cout << "purged session " << t.meta.id << '\n';
    for (const auto& [t, why] : result.failed)
        std::cerr << "dexter: could not purge session " << t.meta.id << ": "
                  << terminal_safe(why, false) << '\n';
    flush_stdout();
    return result.failed.empty() ? 0 : 1;
}

int prune_sessions(const options& o, interrupt_pipe& interrupts) {
    if (!store_exists(o)) {
        std::cout << "no sessions in " << store_name(o) << '\n';
        return 0;
    }
    session_manager manager = open_store(o);
    const auto planned = manager.prune(o.older_than, true);
    // Pinned sessions that are old enough: kept, and said so.
    const auto cutoff =
        std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()) -
        o.older_than;
    std::vector<sessions::session_meta> pinned;
    for (auto& m : manager.list_sessions())
        if (m.pinned && m.updated_at < cutoff)
            pinned.push_back(std::move(m));
    warn_about_store(manager);
    const auto print_pinned = [&] {
        for (const auto& m : pinned)
            std::cout << "kept session " << m.id << ": pinned\n";
    };

    if (planned.moved.empty()) {
        std::cout << "nothing to prune: no unpinned session's last exchange is older than "
                     "that\n";
        print_pinned();
        flush_stdout();
        return 0;
    }
    std::cout << (o.dry_run ? "would move " : "to move ")
              << count_of(planned.moved.size(), "session", "sessions") << " to the trash:\n";
    print_header("UPDATED");
    for (const auto& m : planned.moved)
        print_row(m, m.updated_at);
    if (o.dry_run) {
        print_pinned();
        flush_stdout();
        return 0;
    }
    if (auto status = confirm(o, interrupts, "Move them to the trash?",
                              "not pruning without confirmation: standard input is not a "
                              "terminal (add -y to prune without asking, or see what would "
                              "move with --dry-run)",
                              "moved nothing"))
        return *status;
    const auto result = manager.prune(o.older_than, false);
    warn_about_store(manager);
    for (const auto& m : result.moved)
        std::cout << "moved session " << m.id << " to the trash\n";
    for (const auto& [m, why] : result.kept)
        std::cout << "kept session " << m.id << ": " << terminal_safe(why, false) << '\n';
    print_pinned();
    if (!result.moved.empty())
        std::cout << "undo: dexter --restore ID\n";
    flush_stdout();
    return 0;
}

} // namespace dexter::cli
