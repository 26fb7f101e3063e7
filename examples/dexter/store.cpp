// SPDX-License-Identifier: BSL-1.0
// Opening the store and the session of a conversation; store warnings.
#include "store.hpp"

#include "terminal.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <stdexcept>
#include <string>

namespace dexter::cli {

namespace {

std::string no_sessions_to_continue(const options& o) {
    return "no sessions in " + store_name(o) + " to continue (start one with dexter)";
}

} // namespace

sessions::search_result any_store::search_by_reading(const sessions::search_query& q) {
    return sessions::search_sessions(
        list(), q,
        [&](const sessions::session_meta& m, sessions::hit_collector& hits,
            std::vector<sessions::session_diagnostic>& diags) {
            for (auto& d :
                 for_each_exchange(m.id, 1, m.exchange_count, [&](sessions::exchange&& ex) {
                     if (auto h = sessions::match_exchange(m, ex, q.text))
                         hits.offer(std::move(*h));
                     return true;
                 }))
                diags.push_back({m.id, std::move(d)});
        });
}

bool store_exists(const options& o) {
    if (!o.store_uri.empty())
        return true;
    std::error_code ec;
    return std::filesystem::exists(o.sessions_dir, ec);
}

std::string store_name(const options& o) {
    if (o.store_uri.empty())
        return o.sessions_dir.string();
#ifdef DEXTER_WITH_POSTGRES
    return "PostgreSQL " + sessions::postgres_server_label(o.store_uri);
#else
    return "a PostgreSQL database";
#endif
}

session_manager open_store(const options& o) {
    sessions::manager_options mo;
    mo.context_exchanges = std::max(o.history_limit, exchanges_shown_on_resume);
    // The history sends --history-limit turns, and says so in a resume's report.
    sessions::chat_history history;
    history.set_recent_limit(o.history_limit);
    const optional_redactor redactor{o.redact && !o.incognito};
    const auto with = [&](any_store store) {
        return session_manager(redacting_any_store(std::move(store), redactor), {}, {},
                               std::move(history), mo);
    };
    if (o.incognito)
        return with(any_store(sessions::memory_store()));
    if (!store_exists(o)) {
        if (!o.session.empty())
            throw sessions::session_not_found(o.session);
        if (o.continue_last)
            throw std::runtime_error(no_sessions_to_continue(o));
    }
    if (!o.store_uri.empty()) {
#ifdef DEXTER_WITH_POSTGRES
        return with(any_store(sessions::postgres_store(o.store_uri)));
#else
        throw std::runtime_error("this dexter was built without PostgreSQL support: --store "
                                 "postgresql://... needs libpq (DEXTER_SESSIONS_WITH_POSTGRES)");
#endif
    }
    return with(any_store(sessions::jsonl_store(o.sessions_dir)));
}

std::optional<sessions::resumed_session> open_session(session_manager& manager, const options& o) {
    if (o.session.empty() && !o.continue_last) {
        manager.start_new();
        return std::nullopt;
    }
    sessions::session_id id;
    if (o.continue_last) {
        // The newest session: a page of one (a store that pages chooses it from its
        // index, and checks that one session against its history).
        const auto newest = manager.list_page({1, std::nullopt, {}}).sessions;
        warn_about_store(manager);
        if (newest.empty())
            throw std::runtime_error(no_sessions_to_continue(o));
        id = newest.front().id;
    } else {
        id = manager.resolve(o.session);
    }
    if (o.fork) {
        const sessions::session_meta fork = manager.fork_session(id, o.fork_seq);
        warn_about_store(manager);
        if (!o.json) { // with --json the answer's session_id is the fork's
            std::cout << fork.id << '\n';
            if (!std::cout.flush())
                throw std::runtime_error("cannot write to standard output");
        }
        id = fork.id;
    }
    try {
        auto resumed = manager.resume(id);
        // The index and a repaired tail are in resume_summary(); other notes as ever.
        std::vector<sessions::diagnostic> others;
        for (const auto& d : resumed.report.store)
            if (d.kind != sessions::diagnostic_kind::index_rebuilt &&
                d.kind != sessions::diagnostic_kind::tail_repaired)
                others.push_back(d);
        warn_about_notes(others);
        return resumed;
    } catch (const sessions::session_busy& e) {
        throw std::runtime_error(busy_message(id, e));
    }
}

std::string busy_message(const sessions::session_id& id, const sessions::session_busy& e) {
    const auto holder = e.holder_pid();
    const std::string where = !holder                 ? std::string("in another process")
                              : *holder == ::getpid() ? std::string("elsewhere in this process")
                                                      : "in process " + std::to_string(*holder);
    return "session '" + id + "' is open " + where + "; close it there first";
}

void report_redactions(session_manager& manager) {
    const auto counts = manager.storage().take_redacted();
    if (counts.empty())
        return;
    std::uint64_t n = 0;
    std::string kinds;
    for (const auto& [kind, count] : counts) {
        n += count;
        kinds += (kinds.empty() ? "" : ", ") + kind;
    }
    std::cerr << "dexter: " << n << (n == 1 ? " secret" : " secrets") << " redacted before saving ("
              << kinds << ")\n";
}

void warn_about_store(session_manager& manager) {
    warn_about_notes(manager.take_diagnostics());
}

void warn_about_notes(const std::vector<sessions::diagnostic>& events) {
    constexpr std::size_t shown = 5;
    for (std::size_t i = 0; i < events.size() && i < shown; ++i)
        std::cerr << "dexter: warning: " << terminal_safe(events[i].reason, false) << '\n';
    if (events.size() > shown)
        std::cerr << "dexter: warning: (and " << events.size() - shown << " more)\n";
}

namespace {

// "1 damaged line", "2 damaged lines".
std::string counted(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + ' ' + (n == 1 ? one : many);
}

} // namespace

std::optional<std::string> resume_summary(const sessions::resume_report& report) {
    using kind = sessions::diagnostic_kind;
    std::vector<std::string> parts;
    if (const auto n = report.lines_skipped())
        parts.push_back(counted(n, "damaged line", "damaged lines") + " skipped");
    if (const auto n = report.count(kind::missing_exchanges))
        parts.push_back(counted(n, "gap", "gaps") + " in the exchange numbers");
    if (const auto n = report.count(kind::text_replaced))
        parts.push_back(counted(n, "line", "lines") + " read with repaired text");
    if (report.count(kind::tail_repaired) != 0)
        parts.emplace_back("an incomplete last line moved to quarantine");
    else if (report.count(kind::torn_tail) != 0)
        parts.emplace_back("an incomplete last line left as it is");
    if (report.count(kind::missing_header) != 0)
        parts.emplace_back("no valid header (the session cannot be continued)");
    if (report.index_rebuilt())
        parts.emplace_back("the index rebuilt");
    if (parts.empty())
        return std::nullopt;
    std::string text = parts.front();
    for (std::size_t i = 1; i < parts.size(); ++i)
        text += (i + 1 == parts.size() ? " and " : ", ") + parts[i];
    return text;
}

void warn_about_session(const sessions::session_id& id,
                        const std::vector<sessions::diagnostic>& d) {
    if (d.empty())
        return;
    std::cerr << "dexter: warning: session " << id << ": " << d.size()
              << (d.size() == 1 ? " damaged line" : " damaged lines") << " skipped (first: ";
    if (d.front().line != 0)
        std::cerr << "line " << d.front().line << ": ";
    std::cerr << terminal_safe(d.front().reason, false) << ")\n";
}

void warn_about_search(const std::vector<sessions::session_diagnostic>& d) {
    if (d.empty())
        return;
    std::set<sessions::session_id> ids;
    for (const auto& e : d)
        ids.insert(e.id);
    const std::size_t sessions_met = ids.size();
    std::cerr << "dexter: warning: " << d.size()
              << (d.size() == 1 ? " damaged line" : " damaged lines") << " skipped in "
              << sessions_met << (sessions_met == 1 ? " session" : " sessions")
              << " (first: session " << d.front().id << ", ";
    if (d.front().what.line != 0)
        std::cerr << "line " << d.front().what.line << ": ";
    std::cerr << terminal_safe(d.front().what.reason, false) << ")\n";
}

} // namespace dexter::cli
