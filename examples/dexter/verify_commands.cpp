// SPDX-License-Identifier: BSL-1.0
// --verify and --repair.
#include "verify_commands.hpp"
#include "session_commands.hpp"
#include "store.hpp"
#include "terminal.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <cstdint>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace dexter::cli {
namespace {

std::string counted(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + ' ' + (n == 1 ? one : many);
}

// What is wrong with one session, in one line (the first damaged line's reason as an
// example), or nothing when it is clean.
std::optional<std::string> problem_line(const sessions::verify_report& r) {
    if (r.ok())
        return std::nullopt;
    std::vector<std::string> parts;
    if (!r.unreadable.empty())
        parts.push_back("cannot be read: " + r.unreadable);
    if (r.newer_version)
        parts.push_back("in history format version " + std::to_string(r.newer_version) +
                        ", newer than this dexter reads (left untouched)");
    if (r.missing_header)
        parts.push_back("no valid session header on line 1 (read-only; repair leaves it)");
    if (!r.damaged.empty())
        parts.push_back(counted(r.damaged.size(), "damaged line", "damaged lines") + " (line " +
                        std::to_string(r.damaged.front().line) + ", offset " +
                        std::to_string(r.damaged.front().offset) + ": " + r.damaged.front().reason +
                        ")");
    if (r.tail)
        parts.push_back("an incomplete last line (" + std::to_string(r.tail->bytes) +
                        " bytes at offset " + std::to_string(r.tail->offset) + ")");
    for (const auto& g : r.gaps)
        parts.push_back(g.from == g.through ? "exchange " + std::to_string(g.from) + " missing"
                                            : "exchanges " + std::to_string(g.from) + " to " +
                                                  std::to_string(g.through) + " missing");
    for (const auto& m : r.index_mismatch)
        parts.push_back("index: " + m);
    for (const auto& l : r.leftovers)
        parts.push_back("leftover " + l);
    std::string line = r.id + ": ";
    for (std::size_t i = 0; i < parts.size(); ++i)
        line += (i ? "; " : "") + parts[i];
    return terminal_safe(line, false);
}

// The summary lines of --verify (and of --repair before it asks); returns how many
// problems there are.
std::size_t print_problems(const sessions::store_verify_report& r) {
    std::size_t n = 0;
    for (const auto& s : r.sessions)
        if (auto line = problem_line(s)) {
            std::cout << *line << '\n';
            ++n;
        }
    for (const auto& p : r.problems) {
        std::cout << "store: " << terminal_safe(p, false) << '\n';
        ++n;
    }
    for (const auto& l : r.leftovers) {
        std::cout << "leftover: " << terminal_safe(l, false) << '\n';
        ++n;
    }
    return n;
}

// The whole store, or the one session o.session names (a full id or a unique prefix).
sessions::store_verify_report verify_what(session_manager& manager, const options& o) {
    if (o.session.empty())
        return manager.verify_store();
    sessions::store_verify_report r;
    const sessions::session_id id = sessions::is_valid_session_id(o.session)
                                        ? sessions::session_id(o.session)
                                        : manager.resolve(o.session);
    r.sessions.push_back(manager.verify_session(id));
    return r;
}

void flush_or_throw() {
    if (!std::cout.flush())
        throw std::runtime_error("cannot write to standard output");
}

} // namespace

int verify_store(const options& o) {
    if (!store_exists(o)) {
        if (!o.session.empty())
            throw sessions::session_not_found(o.session);
        std::cout << (o.json ? "{\"ok\":true,\"sessions\":[],\"problems\":[],\"leftovers\":[],"
                               "\"quarantine\":{\"files\":0,\"bytes\":0}}\n"
                             : "no sessions in " + store_name(o) + "\n");
        flush_or_throw();
        return 0;
    }
    session_manager manager = open_store(o);
    const auto r = verify_what(manager, o);
    if (o.json) {
        std::cout << boost::json::serialize(boost::json::value_from(r)) << '\n';
    } else {
        const std::size_t problems = print_problems(r);
        std::size_t bad = 0;
        for (const auto& s : r.sessions)
            bad += !s.ok();
        std::cout << "verified " << counted(r.sessions.size(), "session", "sessions") << ": "
                  << (r.ok() ? std::string("no problem found")
                             : counted(bad, "session", "sessions") + " with problems, " +
                                   counted(problems, "line", "lines") + " above");
        if (r.quarantine_files)
            std::cout << "; the quarantine holds " << counted(r.quarantine_files, "file", "files")
                      << " (" << r.quarantine_bytes << " bytes)";
        std::cout << '\n';
        if (!r.ok())
            std::cout << "repair: dexter --repair" << (o.session.empty() ? "" : " " + o.session)
                      << '\n';
    }
    flush_or_throw();
    return r.ok() ? 0 : 1;
}

int repair_store(const options& o, interrupt_pipe& interrupts) {
    if (!store_exists(o)) {
        if (!o.session.empty())
            throw sessions::session_not_found(o.session);
        std::cout << "no sessions in " << store_name(o) << '\n';
        flush_or_throw();
        return 0;
    }
    session_manager manager = open_store(o);
    const auto found = verify_what(manager, o);
    if (found.ok()) {
        std::cout << "nothing to repair: "
                  << (o.session.empty() ? "every session is clean"
                                        : "session " + found.sessions.front().id + " is clean")
                  << '\n';
        flush_or_throw();
        return 0;
    }
    print_problems(found);
    const std::string what =
        o.session.empty() ? "the store" : "session " + found.sessions.front().id;
    if (auto status =
            confirm(o, interrupts, "Repair " + what + "? (damaged lines are moved to quarantine)",
                    "not repairing " + what +
                        " without confirmation: standard input is not a terminal "
                        "(add -y to repair without asking)",
                    "changed nothing"))
        return *status;
    std::vector<sessions::repair_report> done;
    if (o.session.empty()) {
        done = manager.repair_store();
    } else {
        try {
            done.push_back(manager.repair_session(found.sessions.front().id));
        } catch (const sessions::session_busy& e) {
            throw std::runtime_error(busy_message(found.sessions.front().id, e));
        }
    }
    warn_about_store(manager);
    bool failed = false;
    for (const auto& r : done) {
        if (!r.error.empty()) {
            std::cerr << "dexter: could not repair session " << r.id << ": "
                      << terminal_safe(r.error, false) << '\n';
            failed = true;
        } else {
            std::cout << terminal_safe(r.what, false) << '\n';
        }
    }
    const auto after = verify_what(manager, o);
    std::cout << (after.ok() ? "the store verifies clean"
                             : "still wrong (see dexter --verify): repair could not fix it all")
              << '\n';
    flush_or_throw();
    return failed || !after.ok() ? 1 : 0;
}

} // namespace dexter::cli
