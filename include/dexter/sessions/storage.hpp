// SPDX-License-Identifier: BSL-1.0
// The storage policy concept (the errors are in error.hpp).
#pragma once

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>

#include <concepts>
#include <cstddef>
#include <cstring>
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
//   void append(const session_meta& after, const exchange& ex)
//       Persists ex (ex.seq == previous count + 1) in the open session `after.id`;
//       `after` is the metadata with ex already applied. Returns only once the
//       exchange is stored as durably as the store promises (acknowledged). On throw,
//       nothing of ex is stored.
//   void update(const session_meta& m)
//       Persists a metadata change (the title) of the open session m.id.
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
    { s.append(m, ex) } -> std::same_as<void>;
    { s.update(m) } -> std::same_as<void>;
    { s.close(id) }
    noexcept->std::same_as<void>;
    { s.find(id) } -> std::same_as<std::optional<session_meta>>;
    { s.list() } -> std::same_as<std::vector<session_meta>>;
    { s.load(id, last) } -> std::same_as<loaded_session>;
    { s.remove(id) } -> std::same_as<void>;
};

} // namespace dexter::sessions
