// SPDX-License-Identifier: BSL-1.0
// The storage policy concept (the errors are in error.hpp).
#pragma once

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/verify.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

// ---------------------------------------------------------------------------------
// The storage policy.
//
// A storage policy keeps sessions and their exchanges. The manager owns every rule
// (ids, sequence numbers, timestamps, titles); a store implements these primitives:
//
//   bool create(const session_meta& m)
//       Creates session m.id, exclusively, with m's metadata (title, extra, created_at,
//       pinned, forked_from) and no exchange, and opens it for writing. Returns false,
//       changing nothing, if the id exists.
//   session_meta open(const session_id& id)
//       Opens an existing session for writing by this store object (a lease: no other
//       writer may open it until close), repairs what an earlier crash left, and
//       returns its metadata. Throws session_not_found, session_busy.
//   void append(const session_id& id, const exchange& ex)
//       Persists ex in the open session `id`: ex.seq must be the stored count + 1
//       (else storage_error, nothing stored). The store derives the new metadata from
//       its own state and ex alone, by apply_exchange() (types.hpp): exchange_count
//       becomes ex.seq, updated_at the latest of updated_at, created_at and
//       ex.timestamp. Returns only once the exchange is stored as durably as the store
//       promises (acknowledged). On throw, nothing of ex is stored.
//   void update(const session_meta& m)
//       Persists m.title, m.extra and m.pinned as the open session m.id's, and nothing
//       else: the id, created_at, updated_at, exchange_count and forked_from stay what
//       the store holds.
//   void close(const session_id& id) noexcept
//       Ends the lease taken by create or open. Closing a session that is not open
//       does nothing.
//   std::optional<session_meta> find(const session_id& id)
//   std::vector<session_meta> list()            every session, in any order
//   loaded_session load(const session_id& id, std::size_t last)
//       Metadata, the `last` most recent exchanges in seq order (all of them when
//       last == all_exchanges), and diagnostics for what was skipped. Needs no lease.
//       Throws session_not_found.
//   void remove(const session_id& id)
//       Deletes the session and its exchanges. Throws session_not_found; session_busy
//       if another writer holds it open.
//
// Every operation throws an exception derived from `error` on failure.
//
// Ids: a store validates every id it is given (validate_session_id(), id.hpp) before
// anything else, and throws invalid_session_id for a malformed one, even where the
// answer would otherwise be "not found": an id may come from argv.
//
// Optional capabilities, each a concept below that session_manager checks with
// `if constexpr` (a host calls the manager, never storage(), for them):
//   std::vector<diagnostic> take_diagnostics()    reports_diagnostics
//       Store-level events since the last call (an index rebuilt, a torn tail moved to
//       quarantine), oldest first; the store forgets them.
//   bool create(const session_meta& m, checked_utf8_t)
//   void append(const session_id& id, const exchange& ex, checked_utf8_t)
//                                                 skips_checked_utf8 (both)
//       As create(m) and append(id, ex), for text the caller has checked to be valid
//       UTF-8 already (session_manager does, for every store: see manager_checks.hpp):
//       the store does not validate it again (an encoder that validates while it
//       escapes leaves that out, and writes the same bytes). Given text that is not
//       valid UTF-8, what is stored is unspecified. The plain create(m) and
//       append(id, ex) keep checking, and refuse such text with invalid_input, storing
//       nothing; so do update(), create_whole() and every other write.
//   void check_writable()                         checks_writability
//       Throws storage_error, naming the path or server, if a save would be refused
//       for want of write access; changes nothing.
//   std::vector<diagnostic> for_each_exchange(const session_id& id, std::uint64_t from,
//                                             std::uint64_t through,
//                                             const exchange_visitor& visit)
//                                                 streams_exchanges
//       Calls visit once per stored exchange with from <= seq <= through, in seq order,
//       holding only a bounded part of the session at a time, until visit returns false.
//       Returns the diagnostics of what it skipped, as load() reports them. Needs no
//       lease. Throws as load() does, and what visit throws (the read then stops).
//   std::vector<diagnostic> for_each_record(const session_id& id, std::uint64_t from,
//                                           std::uint64_t through,
//                                           const record_visitor& visit)
//                                                 streams_records
//       As for_each_exchange, handing over with each exchange its record as stored: a
//       line of history format v1 (docs/FORMAT.md) without its newline, which decodes to
//       that very exchange; empty when the store cannot give one (the reader repaired
//       the line, or it is not in the form this library writes). An export copies it
//       instead of encoding the exchange again.
//   search_result search(const search_query& q)   searches_text
//       The q.limit newest hits of q.text in the titles, queries and answers of the
//       sessions that have an exchange (query.hpp: the matching rule, the order, the
//       snippets). Damaged records are skipped and reported, never thrown.
//   session_page list_page(const page_request& r) pages_sessions
//       The page page_of(list(), r) would give (query.hpp), without reading every session.
//   bool create_whole(const session_meta& m, const session_filler& fill)
//                                                 creates_whole_sessions
//       Creates session m.id holding what fill hands to the session_sink it is given,
//       all or nothing: m's title, extra, created_at, pinned and forked_from, then each
//       exchange (in increasing seq; a gap is kept, as a load reports it) and change of
//       metadata (title, extra, pinned) in order; exchange_count and updated_at follow
//       from the exchanges (apply_exchange()). No reader (find, list, load, search, a
//       listing in another process) sees the session before it is complete; on throw
//       (from fill, the sink or the store) nothing of it remains, and a crash at any
//       point leaves no part of it under any id. Leaves the session closed (no lease).
//       Returns false, without calling fill, when m.id is taken (by a session, or in a
//       store where trashed sessions keep their ids, by a trashed one); throws
//       session_exists when the id was taken while the session was being written.
//   bool fork(const session_id& source, std::uint64_t through, session_meta& fork)
//                                                 forks_sessions
//       Creates session fork.id holding a copy of exchanges 1..through of session
//       source, as load() reads them (seq and timestamps kept, a gap kept), with fork's
//       title, extra, created_at and forked_from, not pinned: whole or not at all, with
//       the guarantees of create_whole(). Sets fork.exchange_count and fork.updated_at
//       (apply_exchange()) and fork.pinned (false). Needs no lease on the source.
//       Returns false, without writing, when fork.id is taken (as create_whole() does);
//       throws session_not_found (no source), format_error (the source is in a newer
//       format), error (none of its exchanges 1..through can be read), session_exists.
//       A store offers it when it can copy faster than a create_whole() fed by
//       for_each_record(); session_manager::fork_session() uses create_whole() otherwise.
//   std::vector<trash_outcome> trash(std::span<const session_id> ids, time_point deleted_at,
//                                    const std::optional<time_point>& stale_before)
//                                                 keeps_trash (with the three below)
//       Moves each session of ids, in order, to the trash, recording deleted_at: from
//       then on find, list, load, search and open no longer see it. Takes each
//       session's lease (allowed while this store object holds it; the lease then
//       ends). With stale_before, a session is moved only if, read under its lease, it
//       is not pinned and its updated_at is before stale_before (else it is left, and
//       its outcome says why): what retention needs, so that a session saved into or
//       pinned since it was listed stays. A failure of one session (session_busy,
//       session_not_found, storage_error) is its outcome's error, never thrown; the
//       others go on. At every instant each session is either live or in the trash,
//       never both, never neither, whatever kills the process.
//   session_meta restore(const session_id& id)
//       Moves the most recently trashed session `id` back, live under the same id, and
//       returns its metadata. Throws session_not_found (not in the trash),
//       session_exists (a live session has that id: nothing is moved).
//   std::vector<trashed_session> list_trash()
//       Every trashed session of the store, in any order.
//   void purge(const session_id& id, time_point deleted_at)
//       Deletes the trashed session `id` that was trashed at deleted_at, for good.
//       Throws session_not_found if there is none.

//   verify_report verify(const session_id& id)    verifies_sessions (with verify_all)
//       Reads the whole of session id's stored records and reports every problem
//       (verify.hpp): damaged records, a torn tail, holes in seq, a newer format, what the
//       store's own index says differently, leftovers of interrupted writes. Read-only: it
//       takes no lease, writes nothing, and works on a read-only store; holds a bounded
//       part of the session at a time. Throws invalid_session_id, session_not_found,
//       storage_error (the store, not the session, cannot be read).
//   store_verify_report verify_all()
//       verify() of every session, and the store's own problems and leftovers.
//   repair_report repair(const session_id& id)    repairs_sessions (with repair_all)
//       Under the session's lease, makes verify(id) clean without losing a byte: what a
//       reader skips goes to the store's quarantine, holes are recorded as known, the
//       index is brought back in line. At every instant the session is the old or the
//       repaired one, never neither. Throws invalid_session_id, session_not_found,
//       session_busy, format_error (a newer format: never touched), storage_error (among
//       others a session that cannot be read: it is never written over).
//   std::vector<repair_report> repair_all()
//       repair() of every session that needs it; a session that fails has its report's
//       error set, and the others go on.

/// Passed as `last` to load() to ask for every exchange.
inline constexpr std::size_t all_exchanges = std::numeric_limits<std::size_t>::max();

/// A storage policy: the primitives listed above, checked where a session_manager is
/// instantiated (a type that lacks one fails there, naming this concept).
template <class S>
concept session_storage = std::movable<S> &&
    requires(S& s, const session_id& id, const session_meta& m, const exchange& ex,
             std::size_t last) {
    { s.create(m) } -> std::same_as<bool>;
    { s.open(id) } -> std::same_as<session_meta>;
    { s.append(id, ex) } -> std::same_as<void>;
    { s.update(m) } -> std::same_as<void>;
    { s.close(id) }
    noexcept->std::same_as<void>;
    { s.find(id) } -> std::same_as<std::optional<session_meta>>;
    { s.list() } -> std::same_as<std::vector<session_meta>>;
    { s.load(id, last) } -> std::same_as<loaded_session>;
    { s.remove(id) } -> std::same_as<void>;
};

/// The tag of the create() and append() overloads of a store that skips_checked_utf8:
/// the text handed over is known to be valid UTF-8.
struct checked_utf8_t {
    explicit checked_utf8_t() = default;
};
/// Passed to create() and append() of a store that skips_checked_utf8.
inline constexpr checked_utf8_t checked_utf8{};

/// A store that can leave out its own UTF-8 check for text checked already:
/// create(m, checked_utf8) and append(id, ex, checked_utf8) (see above).
template <class S>
concept skips_checked_utf8 = requires(S& s, const session_id& id, const session_meta& m,
                                      const exchange& ex) {
    { s.create(m, checked_utf8) } -> std::same_as<bool>;
    { s.append(id, ex, checked_utf8) } -> std::same_as<void>;
};

/// A store that reports store-level events: take_diagnostics() (see above).
template <class S>
concept reports_diagnostics = requires(S& s) {
    { s.take_diagnostics() } -> std::same_as<std::vector<diagnostic>>;
};

/// What verify() can tell of session `id` of a store that does not verify itself: what a
/// load of the whole session reports (damaged records, a torn tail, holes in seq, a
/// missing header). Throws what load() throws.
template <class S>
verify_report verify_by_loading(S& store, const session_id& id) {
    verify_report r;
    r.id = id;
    auto loaded = store.load(id, all_exchanges);
    r.exchange_count = loaded.meta.exchange_count;
    r.records = loaded.exchanges.size();
    for (auto& d : loaded.diagnostics) {
        if (d.kind == diagnostic_kind::torn_tail)
            r.tail = torn_tail{d.line, d.offset, 0};
        else if (d.kind == diagnostic_kind::missing_header)
            r.missing_header = true;
        else if (d.kind != diagnostic_kind::missing_exchanges)
            r.damaged.push_back(std::move(d));
    }
    std::uint64_t last = 0; // holes, from the exchanges themselves
    for (const auto& ex : loaded.exchanges) {
        if (ex.seq > last + 1)
            r.gaps.push_back({last + 1, ex.seq - 1});
        last = ex.seq;
    }
    return r;
}

/// A store that checks its sessions for damage, read-only: verify(), verify_all().
template <class S>
concept verifies_sessions = requires(S& s, const session_id& id) {
    { s.verify(id) } -> std::same_as<verify_report>;
    { s.verify_all() } -> std::same_as<store_verify_report>;
};

/// A store that repairs damaged sessions without losing a byte: repair(), repair_all().
template <class S>
concept repairs_sessions = requires(S& s, const session_id& id) {
    { s.repair(id) } -> std::same_as<repair_report>;
    { s.repair_all() } -> std::same_as<std::vector<repair_report>>;
};

/// Receives the exchanges of a streaming read one at a time, in seq order, each its own
/// to keep or move from; returns false to end the read early.
using exchange_visitor = std::function<bool(exchange&&)>;

/// A store that streams a session's exchanges in bounded memory: for_each_exchange().
template <class S>
concept streams_exchanges = requires(S& s, const session_id& id, std::uint64_t seq,
                                     const exchange_visitor& visit) {
    { s.for_each_exchange(id, seq, seq, visit) } -> std::same_as<std::vector<diagnostic>>;
};

/// Receives the exchanges of a streaming read with the record each was read from (see
/// streams_records); returns false to end the read early.
using record_visitor = std::function<bool(exchange&&, std::string_view record)>;

/// A store that streams its records as stored: for_each_record().
template <class S>
concept streams_records = requires(S& s, const session_id& id, std::uint64_t seq,
                                   const record_visitor& visit) {
    { s.for_each_record(id, seq, seq, visit) } -> std::same_as<std::vector<diagnostic>>;
};

/// A store that searches its sessions itself: search().
template <class S>
concept searches_text = requires(S& s, const search_query& q) {
    { s.search(q) } -> std::same_as<search_result>;
};

/// A store that serves pages of its sessions itself: list_page().
template <class S>
concept pages_sessions = requires(S& s, const page_request& r) {
    { s.list_page(r) } -> std::same_as<session_page>;
};

/// What create_whole() hands to its filler: where the new session's content goes, in
/// order. A store implements it; a host only calls it.
class session_sink {
public:
    /// Adds exchange `ex`; its seq must be greater than the last one added. `record`,
    /// when not empty, is ex's record as a store keeps it (a line of history format v1
    /// without its newline that decodes to ex: see streams_records), which a store may
    /// copy instead of encoding ex. Throws invalid_input (a seq out of order, a record
    /// over the store's limit, text that is not UTF-8), storage_error.
    virtual void add(const exchange& ex, std::string_view record) = 0;
    /// Records a change of the session's title, extra and pinned, as update() would.
    virtual void update(const session_meta& m) = 0;

protected:
    ~session_sink() = default;
};

/// Fills a session being created by create_whole(); called at most once per call.
using session_filler = std::function<void(session_sink&)>;

/// A store that creates a session with its content, all or nothing: create_whole().
template <class S>
concept creates_whole_sessions = requires(S& s, const session_meta& m, const session_filler& f) {
    { s.create_whole(m, f) } -> std::same_as<bool>;
};

/// A store that forks a session itself, whole or not at all: fork().
template <class S>
concept forks_sessions = requires(S& s, const session_id& id, std::uint64_t through,
                                  session_meta& m) {
    { s.fork(id, through, m) } -> std::same_as<bool>;
};

/// What trash() did with one session.
struct trash_outcome {
    session_id id;
    /// True when the session is now in the trash.
    bool moved = false;
    /// When not moved and error is empty: why the session was left (it is pinned, or was
    /// updated after stale_before).
    std::string kept_because;
    /// When not moved: what failed (session_busy, session_not_found, storage_error).
    std::exception_ptr error;
};

/// A store with a trash: trash(), restore(), list_trash(), purge() (see above).
template <class S>
concept keeps_trash = requires(S& s, const session_id& id, std::span<const session_id> ids,
                               time_point t, const std::optional<time_point>& stale_before) {
    { s.trash(ids, t, stale_before) } -> std::same_as<std::vector<trash_outcome>>;
    { s.restore(id) } -> std::same_as<session_meta>;
    { s.list_trash() } -> std::same_as<std::vector<trashed_session>>;
    { s.purge(id, t) } -> std::same_as<void>;
};

/// A store that can tell ahead of a save whether it may write: check_writable().
template <class S>
concept checks_writability = requires(S& s) {
    { s.check_writable() } -> std::same_as<void>;
};

/// True if stores S and T offer the same optional capabilities (above): what a store
/// that wraps another (redacting_store) must keep.
template <class S, class T>
inline constexpr bool same_capabilities =
    skips_checked_utf8<S> == skips_checked_utf8<T>&& reports_diagnostics<S> ==
    reports_diagnostics<T>&& streams_exchanges<S> == streams_exchanges<T>&& streams_records<S> ==
    streams_records<T>&& searches_text<S> == searches_text<T>&& pages_sessions<S> ==
    pages_sessions<T>&& creates_whole_sessions<S> ==
    creates_whole_sessions<T>&& forks_sessions<S> == forks_sessions<T>&& keeps_trash<S> ==
    keeps_trash<T>&& checks_writability<S> == checks_writability<T>&& verifies_sessions<S> ==
    verifies_sessions<T>&& repairs_sessions<S> == repairs_sessions<T>;

} // namespace dexter::sessions
