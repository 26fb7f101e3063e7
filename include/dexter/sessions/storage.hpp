// SPDX-License-Identifier: BSL-1.0
// The storage policy concept (the errors are in error.hpp).
#pragma once

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/types.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions {

// ---------------------------------------------------------------------------------
// The storage policy.
//
// A storage policy keeps sessions and their exchanges. The manager owns every rule
// (ids, sequence numbers, timestamps, titles); a store implements these primitives:
//
//   bool create(const session_meta& m)
//       Creates session m.id, exclusively, with m's metadata and no exchange, and
//       opens it for writing. Returns false, changing nothing, if the id exists.
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
//       Persists m.title and m.extra as the open session m.id's, and nothing else: the
//       id, created_at, updated_at and exchange_count stay what the store holds.
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

/// A store that reports store-level events: take_diagnostics() (see above).
template <class S>
concept reports_diagnostics = requires(S& s) {
    { s.take_diagnostics() } -> std::same_as<std::vector<diagnostic>>;
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

/// A store that can tell ahead of a save whether it may write: check_writable().
template <class S>
concept checks_writability = requires(S& s) {
    { s.check_writable() } -> std::same_as<void>;
};

} // namespace dexter::sessions
