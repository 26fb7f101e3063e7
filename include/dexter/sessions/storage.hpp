// SPDX-License-Identifier: BSL-1.0
// The storage policy concept, and the errors every part of the library throws.
#pragma once

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
// Errors. One root, so that a host can catch everything of ours in one place. (Beyond
// it: std::bad_alloc when memory runs out, std::invalid_argument for a jsonl_store
// channel name that breaks the rules, std::out_of_range from format_timestamp.)

/// Root of every exception the library throws.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A session id that breaks the id rules (see id.hpp). Thrown before the id is used
/// to build any path or query.
class invalid_session_id : public error {
public:
    explicit invalid_session_id(std::string_view value, std::string_view why = {});
    /// The offending value, exactly as given.
    const std::string& value() const noexcept { return value_; }

private:
    std::string value_;
};

/// No session with that id (or prefix) exists in the store.
class session_not_found : public error {
public:
    explicit session_not_found(std::string_view id, std::string_view where = {})
        : error("no session '" + std::string(id) + "'" +
                (where.empty() ? std::string() : " in " + std::string(where)) +
                " (list the sessions to see which exist)"),
          id_(id) {}
    const std::string& id() const noexcept { return id_; }

private:
    std::string id_;
};

/// A session-id prefix that matches more than one session.
class ambiguous_session_id : public error {
public:
    ambiguous_session_id(std::string_view prefix, std::vector<session_id> candidates)
        : error(make_message(prefix, candidates)), candidates_(std::move(candidates)) {}
    const std::vector<session_id>& candidates() const noexcept { return candidates_; }

private:
    static std::string make_message(std::string_view prefix, const std::vector<session_id>& c) {
        std::string m = "session prefix '" + std::string(prefix) + "' matches " +
                        std::to_string(c.size()) + " sessions (";
        for (std::size_t i = 0; i < c.size(); ++i)
            m += (i ? ", " : "") + c[i];
        return m + "); give more characters";
    }
    std::vector<session_id> candidates_;
};

/// The storage could not do what was asked: an I/O error, a full disk, a lost
/// connection. Names the path (or other location) and the system's reason.
class storage_error : public error {
public:
    storage_error(std::string what, std::string path = {}, int errno_value = 0)
        : error(make_message(what, path, errno_value)), path_(std::move(path)),
          errno_(errno_value) {}
    const std::string& path() const noexcept { return path_; }
    /// The `errno` value behind the failure, 0 when there was none.
    int errno_value() const noexcept { return errno_; }

private:
    static std::string make_message(const std::string& what, const std::string& path, int e) {
        std::string m = what;
        if (!path.empty())
            m += ": " + path;
        if (e != 0)
            m += ": " + std::string(std::strerror(e));
        return m;
    }
    std::string path_;
    int errno_;
};

/// Another writer holds the session open (in another process, or through another
/// store object). Only one writer may append to a session at a time.
class session_busy : public storage_error {
public:
    session_busy(std::string_view id, std::string path, std::optional<long> holder_pid)
        : storage_error("session '" + std::string(id) + "' is open" +
                            (holder_pid ? " in process " + std::to_string(*holder_pid)
                                        : std::string(" by another writer")) +
                            "; close it there first",
                        std::move(path)),
          id_(id), holder_pid_(holder_pid) {}
    /// The session that is busy.
    const std::string& id() const noexcept { return id_; }
    /// The process id of the holder, when the store can tell.
    std::optional<long> holder_pid() const noexcept { return holder_pid_; }

private:
    std::string id_;
    std::optional<long> holder_pid_;
};

/// Data handed to the library that it refuses to store (text that is not UTF-8, a
/// record over the size limit). Nothing was written.
class invalid_input : public error {
public:
    using error::error;
};

/// Stored data in a form this version does not understand (a newer format version).
/// The data is left untouched.
class format_error : public error {
public:
    using error::error;
};

namespace detail {

/// Quotes an untrusted value for an error message: at most 64 characters, control
/// characters and non-ASCII bytes escaped, so a hostile value cannot forge output.
inline std::string quote_untrusted(std::string_view v) {
    std::string out = "'";
    const std::size_t shown = v.size() > 64 ? 64 : v.size();
    for (std::size_t i = 0; i < shown; ++i) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    out += '\'';
    if (v.size() > shown)
        out += "... (" + std::to_string(v.size()) + " bytes)";
    return out;
}

} // namespace detail

inline invalid_session_id::invalid_session_id(std::string_view value, std::string_view why)
    : error("invalid session id " + detail::quote_untrusted(value) + ": " +
            (why.empty() ? std::string("expected exactly 8 characters of [0-9a-z]")
                         : std::string(why))),
      value_(value) {}

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
