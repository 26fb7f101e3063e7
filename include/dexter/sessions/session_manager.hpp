// SPDX-License-Identifier: BSL-1.0
// session_manager: the one class a host talks to.
//
// It owns every rule: ids, sequence numbers, timestamps, titles, what counts as saved.
// The policies do small things: Storage keeps records, Clock tells the time,
// IdGenerator makes ids, History holds the chat context that the model sees next.
//
//   session_manager<jsonl_store> sessions{jsonl_store{".dexter/sessions"}};
//   sessions.start_new();                              // nothing stored yet
//   sessions.save_exchange("question", "answer");      // now it exists, durably
//   auto context = sessions.history().recent_turns();  // what the model sees next
//
// The bodies of the operations that change stored sessions (fork, import, the trash,
// prune) are in detail/manager_changes.hpp, included at the end.
#pragma once

#include <dexter/sessions/chat_history.hpp>
#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/detail/manager_checks.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/import.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>
#include <dexter/sessions/verify.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// Tunables of a session_manager.
struct manager_options {
    /// How many of the most recent exchanges resume() loads and replays into the history.
    std::size_t context_exchanges = 10;
    /// Longest default title (taken from the first query), in bytes.
    std::size_t title_max_bytes = 80;
    /// How many fresh ids to try when a new id is already taken.
    int id_attempts = 16;
    /// Shortest prefix that resume() and resolve() accept in place of a full id.
    std::size_t min_prefix = 4;
};

/// How delete_session() deletes.
enum class deletion {
    /// Into the trash, from where restore_session() brings it back (the default).
    to_trash,
    /// For good, at once.
    permanent,
};

/// What prune() moved to the trash (in a dry run: would move), and what it left.
struct prune_result {
    /// Moved (dry run: would be moved), most recently updated first.
    std::vector<session_meta> moved;
    /// Candidates left in place, each with why: held by a writer, saved into or pinned
    /// since it was listed, or an error.
    std::vector<std::pair<session_meta, std::string>> kept;
};

/// What purge_trash() deleted for good, and what it could not.
struct purge_result {
    std::vector<trashed_session> purged;
    std::vector<std::pair<trashed_session, std::string>> failed;
};

/// Forks by copying the source's records one by one into a session made whole: what
/// session_manager::fork_session() does with a store that does not fork itself
/// (forks_sessions), for a wrapping store that offers fork() over any store. `made` holds
/// the fork's metadata (id, title, extra, created_at, forked_from) and receives its
/// exchange_count and updated_at. `create_whole(meta, fill)` creates the session as
/// storage.hpp's create_whole() does; `read(visit)` streams the source's exchanges
/// 1..through with their records. Returns what create_whole returns; throws error when no
/// exchange could be read (nothing is then created), and what the two throw.
template <class CreateWhole, class ReadRecords>
bool fork_by_copy(session_meta& made, const session_id& source, std::uint64_t through,
                  CreateWhole&& create_whole, ReadRecords&& read);

/// One conversation's view of a store: the current session, and the rules for saving
/// into it. Not thread-safe: use one manager per conversation, from one thread at a
/// time. Not copyable (it holds the current session's lease); move-constructible only.
///
/// The policies are concepts checked here: Storage is a session_storage (storage.hpp),
/// Clock a clock_policy (clock.hpp), IdGenerator an id_generator (id.hpp: what a
/// generated id must look like) and History a replay_target (chat_history.hpp).
template <session_storage Storage, clock_policy Clock = std::chrono::system_clock,
          id_generator IdGenerator = nanoid_generator, replay_target History = chat_history>
class session_manager {
public:
    using storage_type = Storage;
    using clock_type = Clock;
    using id_generator_type = IdGenerator;
    using history_type = History;

    /// Takes the policies by value; no session is current. Touches no storage, and
    /// throws only what the policies' move constructors throw.
    explicit session_manager(Storage storage, Clock clock = {}, IdGenerator ids = {},
                             History history = {}, manager_options options = {})
        : storage_(std::move(storage)), clock_(std::move(clock)), ids_(std::move(ids)),
          history_(std::move(history)), options_(options) {}

    /// The store and the options; the other policies default-constructed.
    session_manager(Storage storage, manager_options options)
        : session_manager(std::move(storage), Clock{}, IdGenerator{}, History{}, options) {}

    session_manager() requires std::default_initializable<Storage> : session_manager(Storage{}) {}

    session_manager(const session_manager&) = delete;
    session_manager& operator=(const session_manager&) = delete;
    /// Never throws if no policy's move constructor does.
    session_manager(session_manager&& other) noexcept(
        std::is_nothrow_move_constructible_v<Storage>&& std::is_nothrow_move_constructible_v<
            Clock>&& std::is_nothrow_move_constructible_v<IdGenerator>&&
            std::is_nothrow_move_constructible_v<History>)
        : storage_(std::move(other.storage_)), clock_(std::move(other.clock_)),
          ids_(std::move(other.ids_)), history_(std::move(other.history_)),
          options_(other.options_), current_(std::move(other.current_)),
          stored_(std::exchange(other.stored_, false)) {
        other.current_.reset();
    }
    session_manager& operator=(session_manager&&) = delete;

    /// Closes the current session (close()). Never throws.
    ~session_manager() { close(); }

    /// Starts a new session and makes it current. Nothing is stored until its first
    /// exchange is saved, so a session left without one leaves no trace. The id may
    /// still change at that first save if another writer has taken it meanwhile.
    /// Closes the previous current session. Throws what the id generator and the store's
    /// find() throw, error if `options().id_attempts` fresh ids in a row are taken, and
    /// time_out_of_range if the clock is outside the years 0000..9999 (before any store
    /// is touched); on throw the previous session stays current.
    const session_meta& start_new() {
        const time_point now = now_ms();
        session_id id = fresh_id();
        close();
        session_meta fresh;
        fresh.id = std::move(id);
        fresh.created_at = now;
        fresh.updated_at = now;
        current_ = std::move(fresh);
        stored_ = false;
        history_.clear();
        return *current_;
    }

    /// Opens an existing session for writing, makes it current and replays its most
    /// recent `options().context_exchanges` exchanges into the history (which keeps what
    /// it can hold: chat_history its newest capacity()). Returns the
    /// metadata (whose exchange_count counts every exchange), those exchanges, the
    /// store's diagnostics, and a report of what was rebuilt (resume_report): how much
    /// was read, what the history will send (if it describes_context), what was skipped
    /// or repaired. The report takes the store's notes (take_diagnostics()): an index
    /// rebuilt while the session was looked up is told there, not again by
    /// take_diagnostics(). Accepts a full id or a unique prefix (resolve()).
    /// Throws invalid_session_id, session_not_found, ambiguous_session_id,
    /// session_busy, storage_error; on throw the previous current session stays current.
    resumed_session resume(std::string_view id_or_prefix) {
        const session_id id = resolve(id_or_prefix);
        const bool reopening = current_ && stored_ && current_->id == id;
        session_meta meta = storage_.open(id);
        resumed_session resumed;
        try {
            static_cast<loaded_session&>(resumed) = storage_.load(id, options_.context_exchanges);
        } catch (...) {
            if (!reopening)
                storage_.close(id);
            throw;
        }
        resumed.meta = std::move(meta);
        if (!reopening)
            close();
        current_ = resumed.meta;
        stored_ = true;
        history_.replay(std::span<const exchange>(resumed.exchanges));
        resume_report& report = resumed.report;
        report.exchanges_on_disk = resumed.meta.exchange_count;
        report.exchanges_loaded = resumed.exchanges.size();
        if constexpr (describes_context<History>)
            report.context = history_.context();
        report.session = resumed.diagnostics;
        report.store = take_diagnostics();
        if (report.count(diagnostic_kind::tail_repaired) != 0) // told once, in `session`
            std::erase_if(report.store, [](const diagnostic& d) {
                return d.kind == diagnostic_kind::tail_repaired;
            });
        return resumed;
    }

    /// The full id of the session that `id_or_prefix` names: a well-formed id of an
    /// existing session, or a prefix of at least `options().min_prefix` characters that
    /// exactly one session id starts with. Changes nothing.
    /// Throws invalid_session_id, session_not_found, ambiguous_session_id, and what the
    /// store's find() and list() throw.
    session_id resolve(std::string_view id_or_prefix) {
        if (is_valid_session_id(id_or_prefix)) {
            session_id id(id_or_prefix);
            const auto found = storage_.find(id);
            if (!found || found->exchange_count == 0)
                throw session_not_found(id);
            return id;
        }
        if (id_or_prefix.size() < options_.min_prefix || !is_valid_session_id_prefix(id_or_prefix))
            throw invalid_session_id(id_or_prefix,
                                     "expected 8 characters of [0-9a-z], or a unique prefix of " +
                                         std::to_string(options_.min_prefix) + " or more");
        std::vector<session_id> matches;
        for (auto& m : storage_.list())
            if (m.exchange_count > 0 && m.id.starts_with(id_or_prefix))
                matches.push_back(std::move(m.id));
        if (matches.empty())
            throw session_not_found(id_or_prefix);
        if (matches.size() > 1) {
            std::sort(matches.begin(), matches.end());
            throw ambiguous_session_id(id_or_prefix, std::move(matches));
        }
        return std::move(matches.front());
    }

    /// Saves one completed exchange in the current session and adds it to the history.
    /// Assigns `seq` (the next number) and `timestamp` (the clock's now), replacing what
    /// `draft` held in them. Returns the saved exchange only once the store has
    /// acknowledged it. The first save of a new session stores the session itself and
    /// gives it a title from the query unless set_title() gave it one.
    /// Throws error if there is no current session, invalid_input for text that is not
    /// UTF-8, time_out_of_range (an invalid_input) for a clock outside the years
    /// 0000..9999, and what the store throws; on throw the exchange is not acknowledged and
    /// nothing changed here or in the store, except that a failed sync to disk
    /// (jsonl_store: storage_error from fdatasync) leaves it unknown whether the record
    /// reached the disk; the store then refuses more saves until the session is closed
    /// and resumed.
    exchange save_exchange(exchange draft) {
        require_current();
        detail::check_text(draft);
        session_meta after = *current_;
        if (!stored_ && after.title.empty())
            after.title = summarize_text(draft.query, options_.title_max_bytes);
        draft.seq = after.exchange_count + 1;
        draft.timestamp = now_ms();
        if (!stored_) {
            store_new(after, draft);
        } else {
            append_checked(after.id, draft);
            apply_exchange(after, draft);
        }
        current_ = std::move(after);
        history_.append(draft);
        return draft;
    }

    /// Shorthand for save_exchange() of an exchange with just a query and an answer.
    exchange save_exchange(std::string query, std::string answer) {
        exchange draft;
        draft.query = std::move(query);
        draft.answer = std::move(answer);
        return save_exchange(std::move(draft));
    }

    /// Renames the current session (stored with the next exchange if it has none yet).
    /// Throws error if there is none, invalid_input for text that is not UTF-8, and what
    /// the store throws; on throw the title is unchanged.
    void set_title(std::string title) {
        require_current();
        detail::check_utf8(title, "title");
        session_meta after = *current_;
        after.title = std::move(title);
        if (stored_)
            storage_.update(after);
        current_ = std::move(after);
    }

    /// Replaces the current session's `extra` (host-defined metadata, kept with the
    /// session and returned by list_sessions(), find_session() and resume(); stored with
    /// the next exchange if the session has none yet). Throws error if there is no
    /// current session, invalid_input for text that is not UTF-8, and what the store
    /// throws; on throw `extra` is unchanged.
    void set_extra(json::object extra) {
        require_current();
        detail::check_extra(extra);
        session_meta after = *current_;
        after.extra = std::move(extra);
        if (stored_)
            storage_.update(after);
        current_ = std::move(after);
    }

    /// Every stored session with at least one exchange, most recently updated first,
    /// ties broken by id. Throws what the store's list() throws.
    ///
    /// A session without an exchange is never one the manager meant to keep: it stores a
    /// session only with its first exchange, holding the session's lease from creation
    /// to close. One that no writer holds is what a crash between the two left behind,
    /// invisible and impossible to resume: it is removed here (a store refuses with
    /// session_busy while a first save is in flight, and then it is left alone; any
    /// failure to remove it is ignored, and it is simply not listed).
    std::vector<session_meta> list_sessions() {
        auto all = storage_.list();
        std::vector<session_meta> saved_meanwhile;
        std::erase_if(all, [&](const session_meta& m) {
            if (m.exchange_count != 0)
                return false;
            if (!current_ || current_->id != m.id)
                if (auto now = remove_if_abandoned(m.id))
                    saved_meanwhile.push_back(std::move(*now));
            return true;
        });
        all.insert(all.end(), saved_meanwhile.begin(), saved_meanwhile.end());
        const auto newest_first = [](const session_meta& a, const session_meta& b) {
            return a.updated_at != b.updated_at ? a.updated_at > b.updated_at : a.id < b.id;
        };
        // A store may list in this order already (the file store does): then there is
        // nothing to move.
        if (!std::is_sorted(all.begin(), all.end(), newest_first))
            std::sort(all.begin(), all.end(), newest_first);
        return all;
    }

    /// The metadata of stored session `id` (a full id; see resolve() for prefixes), or
    /// nothing if there is no such session with an exchange. Changes nothing. Throws
    /// invalid_session_id, and what the store's find() throws.
    std::optional<session_meta> find_session(std::string_view id) {
        validate_session_id(id);
        auto found = storage_.find(session_id(id));
        if (found && found->exchange_count == 0)
            found.reset(); // never saved: not a session (see list_sessions())
        return found;
    }

    /// Calls visit with each exchange of stored session `meta` (as find_session() or
    /// list_sessions() returned it) from seq `from` through meta.exchange_count, in seq
    /// order, until visit returns false. Exchanges saved after `meta` was read are not
    /// visited, so that what is visited agrees with `meta`. A store that streams
    /// (streams_exchanges) holds a bounded part of the session at a time; any other is
    /// read whole first (load()). Returns the diagnostics of what was skipped. Needs no
    /// lease. Throws what the store's read throws, and what visit throws.
    std::vector<diagnostic> for_each_exchange(const session_meta& meta, std::uint64_t from,
                                              const exchange_visitor& visit) {
        validate_session_id(meta.id);
        if constexpr (streams_exchanges<Storage>) {
            return storage_.for_each_exchange(meta.id, from, meta.exchange_count, visit);
        } else {
            auto loaded = storage_.load(meta.id, all_exchanges);
            for (auto& ex : loaded.exchanges)
                if (ex.seq >= from && ex.seq <= meta.exchange_count && !visit(std::move(ex)))
                    break;
            return std::move(loaded.diagnostics);
        }
    }

    /// As for_each_exchange(), handing over with each exchange its record as the store
    /// keeps it (storage.hpp, streams_records: a line of history format v1 without its
    /// newline), or an empty view where the store has none to give; a store without the
    /// capability gives empty views. What export_session() copies instead of encoding.
    std::vector<diagnostic> for_each_record(const session_meta& meta, std::uint64_t from,
                                            const record_visitor& visit) {
        validate_session_id(meta.id);
        if constexpr (streams_records<Storage>)
            return storage_.for_each_record(meta.id, from, meta.exchange_count, visit);
        else
            return for_each_exchange(meta, from, [&](exchange&& ex) {
                return visit(std::move(ex), std::string_view());
            });
    }

    /// The q.limit newest places where q.text occurs in the titles, queries and answers
    /// of the stored sessions (query.hpp: the matching rule, the order, the snippets).
    /// The store's own search when it has one (searches_text); otherwise every session is
    /// read through for_each_exchange(), newest first, stopping early once no older
    /// session can hold a newer hit. Throws invalid_input for an empty text or one that
    /// is not UTF-8, and what the store throws; damaged records are reported in the
    /// result, never thrown.
    search_result search(const search_query& q) {
        check_search_query(q);
        if constexpr (searches_text<Storage>) {
            return storage_.search(q);
        } else {
            return search_sessions(storage_.list(), q,
                                   [&](const session_meta& m, hit_collector& hits,
                                       std::vector<session_diagnostic>& diags) {
                                       for (auto& d : for_each_exchange(m, 1, [&](exchange&& ex) {
                                                if (auto h = match_exchange(m, ex, q.text))
                                                    hits.offer(std::move(*h));
                                                return true;
                                            }))
                                           diags.push_back({m.id, std::move(d)});
                                   });
        }
    }

    /// One page of the stored sessions, newest first (query.hpp: page_request,
    /// page_of()); pass the page's `next` as the following request's `after`. Sessions
    /// without an exchange are left out. The store's own paging when it has one
    /// (pages_sessions); otherwise a page of list(). Throws what the store throws.
    session_page list_page(const page_request& r) {
        if constexpr (pages_sessions<Storage>)
            return storage_.list_page(r);
        else
            return page_of(storage_.list(), r);
    }

    /// Renames stored session `id` (a full id; see resolve() for prefixes). A session
    /// that another writer holds is refused (session_busy): the title is written under
    /// the session's lease, as every change of a session. Throws invalid_session_id,
    /// session_not_found, session_busy, invalid_input (not UTF-8), storage_error; on
    /// throw the title is unchanged.
    void rename_session(std::string_view id, std::string title) {
        detail::check_utf8(title, "title");
        change_meta(id, [&](session_meta& m) { m.title = std::move(title); });
    }

    /// Pins stored session `id`: prune() never moves a pinned session. Throws as
    /// rename_session() does.
    void pin_session(std::string_view id) {
        change_meta(id, [](session_meta& m) { m.pinned = true; });
    }

    /// Unpins stored session `id`. Throws as rename_session() does.
    void unpin_session(std::string_view id) {
        change_meta(id, [](session_meta& m) { m.pinned = false; });
    }

    /// Copies stored session `id` (a full id) into a new session holding its exchanges
    /// 1..through_seq (default: the last) with their seq numbers and timestamps, its
    /// title and extra, created now, with forked_from = {id, through_seq}. Returns the
    /// new session's metadata; the current session stays current. Reads the source in
    /// bounded memory and needs no lease on it (another process may be writing it). A
    /// store that forks_sessions (which then makes the copy itself) or
    /// creates_whole_sessions makes the fork appear whole or not at all, even if the
    /// process is killed; with any other store it is built by create() and
    /// append() (a crash midway leaves a partial fork). Throws invalid_session_id,
    /// session_not_found, invalid_input (through_seq is 0 or past the last exchange),
    /// and what the store throws; on throw no new session exists.
    session_meta fork_session(std::string_view id,
                              std::optional<std::uint64_t> through_seq = std::nullopt);

    /// Imports a session from an export (export.hpp: jsonl, or json; told apart by their
    /// first line) as a new session, whole or not at all (see fork_session() for what a
    /// store without creates_whole_sessions gives instead). Keeps the export's id unless
    /// a session has it (then a fresh one: compare result.meta.id with
    /// result.original_id), its created_at, title, extra, pin and origin, and each
    /// exchange's seq and timestamp. Every record is checked as a load checks it: bad
    /// ones are skipped and reported in result.diagnostics. Throws format_error (a newer
    /// format version), invalid_input (not an export, over a limit of `options`, no
    /// readable exchange), error (the stream failed), and what the store throws; on throw
    /// no new session exists.
    import_result import_session(std::istream& in, const import_options& options = {});

    /// Deletes stored session `id` (a full id; see resolve() for prefixes): by default
    /// into the trash, from where restore_session() brings it back, and after which
    /// listing, search, resume and find no longer see it; with deletion::permanent at
    /// once and for good. Deleting the current session leaves no current session.
    /// Throws invalid_session_id, session_not_found, session_busy (another writer has it
    /// open), storage_error, and error when the store keeps no trash (keeps_trash) and
    /// `how` is to_trash; on throw nothing changed.
    void delete_session(std::string_view id, deletion how = deletion::to_trash);

    /// Brings trashed session `id` (a full id, or a unique prefix of a trashed one) back
    /// under the same id and returns its metadata; of several trashed sessions with that
    /// id, the one deleted last. Throws invalid_session_id, session_not_found (not in the
    /// trash), ambiguous_session_id, session_exists (a live session has the id: nothing
    /// moved), storage_error.
    session_meta restore_session(std::string_view id);

    /// The sessions in the trash, most recently deleted first (ties by id); empty for a
    /// store that keeps no trash. Throws what the store throws.
    std::vector<trashed_session> list_trash();

    /// Deletes for good every trashed session deleted more than `older_than` ago (all
    /// of them for zero). A failure of one is reported in the result and the others go
    /// on. Throws what the store's list_trash() throws.
    purge_result purge_trash(std::chrono::milliseconds older_than);

    /// Moves to the trash every stored session whose last exchange is older than
    /// `older_than` (its stored updated_at, never a file's time), except pinned ones
    /// and the current session. A dry run changes nothing and returns the sessions a
    /// real run would move now. A real run checks each session again under its lease:
    /// one held by a writer, saved into or pinned since it was listed, is left (in
    /// `kept`, with why). Throws error when the store keeps no trash, and what the
    /// store's list() throws; a failure of one session is in `kept`.
    prune_result prune(std::chrono::milliseconds older_than, bool dry_run = false);

    /// What is wrong with stored session `id` (a full id), read-only (verify.hpp): the
    /// store's own verify() when it has one (verifies_sessions); otherwise what a load of
    /// the whole session reports. Throws invalid_session_id, session_not_found, and what
    /// the store throws.
    verify_report verify_session(std::string_view id) {
        const session_id sid(id);
        if constexpr (verifies_sessions<Storage>) {
            return storage_.verify(sid);
        } else {
            return verify_by_loading(storage_, sid);
        }
    }

    /// verify_session() of every stored session, with the store's own problems when it
    /// verifies itself (verifies_sessions). Throws what the store throws.
    store_verify_report verify_store() {
        if constexpr (verifies_sessions<Storage>) {
            return storage_.verify_all();
        } else {
            store_verify_report out;
            auto all = storage_.list();
            std::sort(all.begin(), all.end(),
                      [](const session_meta& a, const session_meta& b) { return a.id < b.id; });
            for (const auto& m : all) {
                try {
                    out.sessions.push_back(verify_session(m.id));
                } catch (const session_not_found&) {
                }
            }
            return out;
        }
    }

    /// Repairs stored session `id` (a full id) when the store can (repairs_sessions):
    /// damaged records to quarantine, never lost (verify.hpp). The current session cannot
    /// be repaired while this manager holds it: close() it first. A store that cannot
    /// repair returns a report with `needed` false that says so. Throws
    /// invalid_session_id, session_not_found, session_busy, format_error, storage_error.
    repair_report repair_session(std::string_view id) {
        const session_id sid(id);
        validate_session_id(sid);
        if constexpr (repairs_sessions<Storage>) {
            return storage_.repair(sid);
        } else {
            repair_report r;
            r.id = sid;
            r.what = "this store cannot repair sessions";
            return r;
        }
    }

    /// repair_session() of every stored session that needs it (repairs_sessions); one
    /// that fails has its report's error set, and the others go on. Empty for a store
    /// that cannot repair. Throws what the store throws.
    std::vector<repair_report> repair_store() {
        if constexpr (repairs_sessions<Storage>)
            return storage_.repair_all();
        else
            return {};
    }

    /// Ends the current session (releasing the store's lease on it). Never throws.
    void close() noexcept {
        if (current_ && stored_)
            storage_.close(current_->id);
        current_.reset();
        stored_ = false;
    }

    /// What the store had to report since the last call (an index rebuilt, a torn tail
    /// moved to quarantine, ...), oldest first, if the store reports such things
    /// (reports_diagnostics); otherwise always empty.
    std::vector<diagnostic> take_diagnostics() {
        if constexpr (reports_diagnostics<Storage>)
            return storage_.take_diagnostics();
        else
            return {};
    }

    /// Throws storage_error, naming the path or server, if the store can tell that a save
    /// would be refused for want of write access (checks_writability); a store that
    /// cannot tell passes. Changes nothing. Call it before asking a user for input that
    /// would then be lost.
    void check_writable() {
        if constexpr (checks_writability<Storage>)
            storage_.check_writable();
    }

    /// The current session, if any.
    const std::optional<session_meta>& current() const noexcept { return current_; }
    /// True once the current session has been stored (it has at least one exchange).
    bool current_is_stored() const noexcept { return stored_; }

    /// The policies, held by value.
    History& history() noexcept { return history_; }
    const History& history() const noexcept { return history_; }
    Storage& storage() noexcept { return storage_; }
    const Storage& storage() const noexcept { return storage_; }
    Clock& clock() noexcept { return clock_; }
    IdGenerator& id_generator() noexcept { return ids_; }
    const manager_options& options() const noexcept { return options_; }

private:
    // The clock's value in the stored resolution, floored in the clock's own duration (a
    // clock counting in ms or s reaches the years 0000..9999 without ever passing through
    // system_clock's nanoseconds, which wrap after 2262). A time the format cannot hold is
    // refused here, before any store is touched, the same for every store.
    time_point now_ms() {
        const auto t = std::chrono::floor<std::chrono::milliseconds>(clock_.now());
        if (!is_representable_time(t))
            throw time_out_of_range(
                "the clock says " + std::to_string(t.time_since_epoch().count()) +
                " ms from 1970, outside the years 0000..9999 that a session can store; nothing "
                "was saved");
        return t;
    }

    session_id fresh_id() {
        for (int i = 0; i < options_.id_attempts; ++i) {
            session_id id = ids_();
            if (!is_valid_session_id(id))
                throw invalid_session_id(
                    id, "the id generator returned it, but a generated id must be exactly 8 "
                        "characters of [0-9a-z] (see the id_generator concept in id.hpp)");
            if (!storage_.find(id))
                return id;
        }
        throw error("the id generator gave " + std::to_string(options_.id_attempts) +
                    " ids in a row that are already taken");
    }

    // Creates the session (retrying with fresh ids on a collision) and appends its first
    // exchange. If the append fails, the just-created session is removed again.
    void store_new(session_meta& after, exchange& first);

    // Removes session `id`, just created through this manager and still held, after a
    // failed step, and ends the lease. A failure to remove it is ignored: what stays
    // behind is a session the listing tidies (no exchange) or a partial one.
    void discard_created(const session_id& id) noexcept;

    // Removes session `id`, listed without an exchange, if it still has none once its
    // lease is held here (the list may be older than a first save that has finished
    // since): returns its metadata when it turned out to have exchanges after all.
    std::optional<session_meta> remove_if_abandoned(const session_id& id) noexcept;

    // Changes the metadata of stored session `id` under its lease: through the current
    // session when it is `id`, else by opening it, updating it and closing it again.
    template <class Change>
    void change_meta(std::string_view id, Change&& change);

    // Creates session m.id with what fill gives, through the store's create_whole() when
    // it has one; else by create(), append() and update(), removing what was made if any
    // step fails. Sets m's exchange_count and updated_at on success.
    bool create_whole(session_meta& m, const session_filler& fill);

    // The store's create() and append() for text checked here already (every text of
    // a session the manager has not stored yet, and of an exchange it saves, passed
    // its checks): through the overloads that skip the store's own UTF-8 check when the
    // store has them (skips_checked_utf8), so that no byte is validated twice.
    bool create_checked(const session_meta& m) {
        if constexpr (skips_checked_utf8<Storage>)
            return storage_.create(m, checked_utf8);
        else
            return storage_.create(m);
    }
    void append_checked(const session_id& id, const exchange& ex) {
        if constexpr (skips_checked_utf8<Storage>)
            storage_.append(id, ex, checked_utf8);
        else
            storage_.append(id, ex);
    }

    void require_current() const {
        if (!current_)
            throw error("no current session: call start_new() or resume() first");
    }

    [[no_unique_address]] Storage storage_;
    [[no_unique_address]] Clock clock_;
    [[no_unique_address]] IdGenerator ids_;
    [[no_unique_address]] History history_;
    manager_options options_;
    std::optional<session_meta> current_;
    bool stored_ = false;
};

/// The composition unit tests use: everything in memory, time and ids under control.
using test_session_manager =
    session_manager<memory_store, manual_clock, sequential_ids, chat_history>;

} // namespace dexter::sessions

#include <dexter/sessions/detail/manager_changes.hpp>
