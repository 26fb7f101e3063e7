// SPDX-License-Identifier: BSL-1.0
// The session store as dexter uses it: opening it, choosing the session a
// conversation continues, and showing what the store had to skip or repair.
#pragma once

#include "options.hpp"

#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/redacting_store.hpp>
#ifdef DEXTER_WITH_POSTGRES
#include <dexter/sessions/postgres_store.hpp>
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace dexter::cli {

/// How many of the last exchanges a resumed conversation shows before the first prompt.
inline constexpr std::size_t exchanges_shown_on_resume = 3;

/// The store dexter was pointed at: files (--sessions-dir, --store DIR) or, when built
/// with PostgreSQL support, a database (--store postgresql://...), or for --incognito a
/// memory_store (nothing written anywhere). A storage policy that forwards each primitive
/// to the one it holds, and every optional capability (storage.hpp): to the store when it
/// has it, else as the manager would do without it (a store without a trash refuses
/// trash(), restore() and purge() with an error, and lists an empty trash; a store that does
/// not verify itself is verified by loading each session, and one that cannot be damaged
/// the way a file can has nothing to repair).
class any_store {
    template <class F>
    decltype(auto) on(F&& f) {
        return std::visit(std::forward<F>(f), store_);
    }
    template <class S>
    using plain = std::remove_cvref_t<S>;

public:
    explicit any_store(sessions::jsonl_store s) : store_(std::move(s)) {}
    explicit any_store(sessions::memory_store s) : store_(std::move(s)) {}
#ifdef DEXTER_WITH_POSTGRES
    explicit any_store(sessions::postgres_store s) : store_(std::move(s)) {}
#endif

    bool create(const sessions::session_meta& m) {
        return on([&](auto& s) { return s.create(m); });
    }
    sessions::session_meta open(const sessions::session_id& id) {
        return on([&](auto& s) { return s.open(id); });
    }
    void append(const sessions::session_id& id, const sessions::exchange& ex) {
        on([&](auto& s) { s.append(id, ex); });
    }
    void update(const sessions::session_meta& m) {
        on([&](auto& s) { s.update(m); });
    }
    bool create(const sessions::session_meta& m, sessions::checked_utf8_t checked) {
        return on([&](auto& s) {
            if constexpr (sessions::skips_checked_utf8<plain<decltype(s)>>)
                return s.create(m, checked);
            else
                return s.create(m);
        });
    }
    void append(const sessions::session_id& id, const sessions::exchange& ex,
                sessions::checked_utf8_t checked) {
        on([&](auto& s) {
            if constexpr (sessions::skips_checked_utf8<plain<decltype(s)>>)
                s.append(id, ex, checked);
            else
                s.append(id, ex);
        });
    }
    void close(const sessions::session_id& id) noexcept {
        on([&](auto& s) { s.close(id); });
    }
    std::optional<sessions::session_meta> find(const sessions::session_id& id) {
        return on([&](auto& s) { return s.find(id); });
    }
    std::vector<sessions::session_meta> list() {
        return on([](auto& s) { return s.list(); });
    }
    sessions::loaded_session load(const sessions::session_id& id, std::size_t last) {
        return on([&](auto& s) { return s.load(id, last); });
    }
    void remove(const sessions::session_id& id) {
        on([&](auto& s) { s.remove(id); });
    }

    // The optional capabilities.
    std::vector<sessions::diagnostic> take_diagnostics() {
        return on([](auto& s) -> std::vector<sessions::diagnostic> {
            if constexpr (sessions::reports_diagnostics<plain<decltype(s)>>)
                return s.take_diagnostics();
            else
                return {};
        });
    }
    void check_writable() {
        on([](auto& s) {
            if constexpr (sessions::checks_writability<plain<decltype(s)>>)
                s.check_writable();
        });
    }
    std::vector<sessions::diagnostic> for_each_exchange(const sessions::session_id& id,
                                                        std::uint64_t from, std::uint64_t through,
                                                        const sessions::exchange_visitor& visit) {
        return on([&](auto& s) {
            if constexpr (sessions::streams_exchanges<plain<decltype(s)>>) {
                return s.for_each_exchange(id, from, through, visit);
            } else {
                auto loaded = s.load(id, sessions::all_exchanges);
                for (auto& ex : loaded.exchanges)
                    if (ex.seq >= from && ex.seq <= through && !visit(std::move(ex)))
                        break;
                return std::move(loaded.diagnostics);
            }
        });
    }
    std::vector<sessions::diagnostic> for_each_record(const sessions::session_id& id,
                                                      std::uint64_t from, std::uint64_t through,
                                                      const sessions::record_visitor& visit) {
        return on([&](auto& s) {
            if constexpr (sessions::streams_records<plain<decltype(s)>>)
                return s.for_each_record(id, from, through, visit);
            else
                return for_each_exchange(id, from, through, [&](sessions::exchange&& ex) {
                    return visit(std::move(ex), std::string_view());
                });
        });
    }
    sessions::search_result search(const sessions::search_query& q) {
        return on([&](auto& s) {
            if constexpr (sessions::searches_text<plain<decltype(s)>>)
                return s.search(q);
            else
                return search_by_reading(q);
        });
    }
    sessions::session_page list_page(const sessions::page_request& r) {
        return on([&](auto& s) {
            if constexpr (sessions::pages_sessions<plain<decltype(s)>>)
                return s.list_page(r);
            else
                return sessions::page_of(s.list(), r);
        });
    }
    bool create_whole(const sessions::session_meta& m, const sessions::session_filler& fill) {
        return on([&](auto& s) -> bool {
            if constexpr (sessions::creates_whole_sessions<plain<decltype(s)>>)
                return s.create_whole(m, fill);
            else
                throw sessions::error("this store cannot create a session whole");
        });
    }
    bool fork(const sessions::session_id& source, std::uint64_t through,
              sessions::session_meta& m) {
        return on([&](auto& s) -> bool {
            if constexpr (sessions::forks_sessions<plain<decltype(s)>>) {
                return s.fork(source, through, m);
            } else {
                return sessions::fork_by_copy(
                    m, source, through,
                    [&](sessions::session_meta& made, const sessions::session_filler& fill) {
                        return create_whole(made, fill);
                    },
                    [&](const sessions::record_visitor& visit) {
                        return for_each_record(source, 1, through, visit);
                    });
            }
        });
    }
    std::vector<sessions::trash_outcome>
    trash(std::span<const sessions::session_id> ids, sessions::time_point deleted_at,
          const std::optional<sessions::time_point>& stale_before) {
        return on([&](auto& s) -> std::vector<sessions::trash_outcome> {
            if constexpr (sessions::keeps_trash<plain<decltype(s)>>)
                return s.trash(ids, deleted_at, stale_before);
            else
                throw no_trash();
        });
    }
    sessions::session_meta restore(const sessions::session_id& id) {
        return on([&](auto& s) -> sessions::session_meta {
            if constexpr (sessions::keeps_trash<plain<decltype(s)>>)
                return s.restore(id);
            else
                throw no_trash();
        });
    }
    std::vector<sessions::trashed_session> list_trash() {
        return on([](auto& s) -> std::vector<sessions::trashed_session> {
            if constexpr (sessions::keeps_trash<plain<decltype(s)>>)
                return s.list_trash();
            else
                return {};
        });
    }
    void purge(const sessions::session_id& id, sessions::time_point deleted_at) {
        on([&](auto& s) {
            if constexpr (sessions::keeps_trash<plain<decltype(s)>>)
                s.purge(id, deleted_at);
            else
                throw no_trash();
        });
    }
    sessions::verify_report verify(const sessions::session_id& id) {
        return on([&](auto& s) {
            if constexpr (sessions::verifies_sessions<plain<decltype(s)>>)
                return s.verify(id);
            else
                return sessions::verify_by_loading(s, id);
        });
    }
    sessions::store_verify_report verify_all() {
        return on([&](auto& s) {
            if constexpr (sessions::verifies_sessions<plain<decltype(s)>>) {
                return s.verify_all();
            } else {
                sessions::store_verify_report out;
                for (const auto& m : s.list())
                    out.sessions.push_back(sessions::verify_by_loading(s, m.id));
                return out;
            }
        });
    }
    sessions::repair_report repair(const sessions::session_id& id) {
        return on([&](auto& s) {
            if constexpr (sessions::repairs_sessions<plain<decltype(s)>>) {
                return s.repair(id);
            } else {
                sessions::repair_report r;
                r.id = id;
                r.what = "session '" + id + "': this store has nothing to repair";
                return r;
            }
        });
    }
    std::vector<sessions::repair_report> repair_all() {
        return on([](auto& s) -> std::vector<sessions::repair_report> {
            if constexpr (sessions::repairs_sessions<plain<decltype(s)>>)
                return s.repair_all();
            else
                return {};
        });
    }

private:
    static sessions::error no_trash() {
        return sessions::error("this store keeps no trash (delete for good with --permanent)");
    }

    // search() for a store that does not search itself: every session read through.
    sessions::search_result search_by_reading(const sessions::search_query& q);

#ifdef DEXTER_WITH_POSTGRES
    std::variant<sessions::jsonl_store, sessions::memory_store, sessions::postgres_store> store_;
#else
    std::variant<sessions::jsonl_store, sessions::memory_store> store_;
#endif
};

/// secret_redactor, unless --no-redact turned it off (or the conversation is incognito:
/// nothing is saved).
struct optional_redactor {
    bool enabled = true;

    static constexpr bool cuts_at_ascii_boundaries =
        sessions::secret_redactor::cuts_at_ascii_boundaries;
    std::optional<sessions::redaction> operator()(std::string_view text) const {
        if (!enabled)
            return std::nullopt;
        return sessions::secret_redactor()(text);
    }
};

/// The store as dexter writes to it: secrets redacted before they are saved.
using redacting_any_store = sessions::redacting_store<any_store, optional_redactor>;

/// The composition dexter runs on: the store it was pointed at behind redaction, the
/// system clock, random ids, Dexter's chat history.
static_assert(sessions::skips_checked_utf8<redacting_any_store>,
              "a save's text is checked once, by the manager");
static_assert(sessions::same_capabilities<redacting_any_store, any_store>);
using session_manager = sessions::session_manager<redacting_any_store>;

/// A memory_store for --incognito, else the store at `o.store_uri` (a PostgreSQL
/// database) or else `o.sessions_dir` (created if missing), keeping enough exchanges in memory
/// after a resume for `o.history_limit` turns of context and for the exchanges shown on resume.
/// Throws sessions::storage_error, and std::runtime_error for a postgresql:// store when dexter was
/// built without PostgreSQL support.
session_manager open_store(const options& o);

/// True if the store exists: the store root, or any PostgreSQL database (it is checked
/// when opened). Commands that only read or delete check this first, so that a
/// mistyped --sessions-dir is not created as an empty store.
bool store_exists(const options& o);

/// The store as messages name it: the directory, or host:port/dbname of the database
/// (never the connection string, which may hold a password).
std::string store_name(const options& o);

/// Makes a session current for a conversation: resumes -s ID, or the most recently
/// updated session for -c, or a fork of --fork ID[@SEQ] (after printing the fork's id on
/// a line of its own, unless o.json), or starts a new one. Returns what was loaded when
/// resuming, with the resume's report; the store's notes in the report that
/// resume_summary() does not word are printed as warnings (warn_about_notes()).
/// Throws std::runtime_error when -c finds no session, and what resume() throws; a
/// session held by another process gives a runtime_error naming that process.
std::optional<sessions::resumed_session> open_session(session_manager& manager, const options& o);

/// What a resume skipped or repaired, in words for one line: "2 damaged lines skipped,
/// an incomplete last line moved to quarantine and the index rebuilt"; nothing when the
/// session came back as written (or only with store notes of other kinds).
std::optional<std::string> resume_summary(const sessions::resume_report& report);

/// The message for a session another process holds open.
std::string busy_message(const sessions::session_id& id, const sessions::session_busy& e);

/// Prints `dexter: 2 secrets redacted before saving (github_token, openai_key)` on
/// standard error if the last saves redacted anything (since the last call).
void report_redactions(session_manager& manager);

/// Prints one warning line on standard error if the store has reported events (an
/// index rebuilt, a torn tail moved to quarantine, ...) since the last call.
void warn_about_store(session_manager& manager);

/// Prints store notes as warning lines on standard error (at most 5, then a count).
void warn_about_notes(const std::vector<sessions::diagnostic>& notes);

/// Prints one warning line on standard error if reading session `id` skipped anything
/// (`skipped`, as for_each_exchange() and export_session() report it).
void warn_about_session(const sessions::session_id& id,
                        const std::vector<sessions::diagnostic>& skipped);

/// Prints one warning line on standard error if a search skipped anything.
void warn_about_search(const std::vector<sessions::session_diagnostic>& skipped);

} // namespace dexter::cli
