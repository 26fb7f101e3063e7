// SPDX-License-Identifier: BSL-1.0
// The errors every part of the library throws, all derived from `error`.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

// ---------------------------------------------------------------------------------
// Errors. One root, so that a host can catch everything of ours in one place. (Beyond
// it only std::bad_alloc, when memory runs out.)

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

/// A session id that is already taken where a session was to be created or restored
/// (restore_session() of an id that a live session has meanwhile, an import whose id
/// was taken while it was being written). Nothing was changed.
class session_exists : public error {
public:
    session_exists(std::string_view id, std::string_view what)
        : error(std::string(what)), id_(id) {}
    const std::string& id() const noexcept { return id_; }

private:
    std::string id_;
};

/// A session-id prefix that matches more than one session.
class ambiguous_session_id : public error {
public:
    ambiguous_session_id(std::string_view prefix, std::vector<std::string> candidates)
        : error(make_message(prefix, candidates)), candidates_(std::move(candidates)) {}
    const std::vector<std::string>& candidates() const noexcept { return candidates_; }

private:
    static std::string make_message(std::string_view prefix, const std::vector<std::string>& c) {
        std::string m = "session prefix '" + std::string(prefix) + "' matches " +
                        std::to_string(c.size()) + " sessions (";
        for (std::size_t i = 0; i < c.size(); ++i)
            m += (i ? ", " : "") + c[i];
        return m + "); give more characters";
    }
    std::vector<std::string> candidates_;
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
    /// `holder_pid`: the process holding the session, when the store can tell;
    /// `held_here`: that process is this one (another store object in this program).
    session_busy(std::string_view id, std::string path, std::optional<long> holder_pid,
                 bool held_here = false)
        : storage_error(make_message(id, holder_pid, held_here), std::move(path)), id_(id),
          holder_pid_(holder_pid) {}
    /// The session that is busy.
    const std::string& id() const noexcept { return id_; }
    /// The process id of the holder, when the store can tell.
    std::optional<long> holder_pid() const noexcept { return holder_pid_; }

private:
    static std::string make_message(std::string_view id, std::optional<long> pid, bool here) {
        const std::string s = "session '" + std::string(id) + "' is open";
        if (here)
            return s + " elsewhere in this process (another store object or manager holds "
                       "it); close it there first";
        if (pid)
            return s + " in process " + std::to_string(*pid) + "; close it there first";
        return s + " by another writer; close it there first";
    }

    std::string id_;
    std::optional<long> holder_pid_;
};

/// Data handed to the library that it refuses to store (text that is not UTF-8, a
/// record over the size limit). Nothing was written.
class invalid_input : public error {
public:
    using error::error;
};

/// A channel name that breaks the rules (1 to 64 characters of [a-z0-9_-], not starting
/// with '-' or '_', not "quarantine"). Thrown by a store's constructor.
class invalid_channel : public error {
public:
    using error::error;
};

/// A time that the on-disk format cannot hold: outside the years 0000..9999 (UTC).
/// The session_manager checks its clock's value before it touches any store.
class time_out_of_range : public invalid_input {
public:
    using invalid_input::invalid_input;
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

/// The error of a write to session `id` that this store object does not hold open
/// (create() or open() first); `where` names the store.
inline storage_error not_open_for_writing(std::string_view id, std::string where) {
    return storage_error("session '" + std::string(id) +
                             "' is not open for writing here; open it first",
                         std::move(where));
}

/// The error of an append whose `seq` is not the stored `count` + 1 (nothing was saved).
inline storage_error seq_does_not_follow(std::string_view id, std::uint64_t seq,
                                         std::uint64_t count, std::string where) {
    return storage_error("exchange " + std::to_string(seq) + " does not follow " +
                             std::to_string(count) + " in session '" + std::string(id) +
                             "'; nothing was saved",
                         std::move(where));
}

} // namespace detail

inline invalid_session_id::invalid_session_id(std::string_view value, std::string_view why)
    : error("invalid session id " + detail::quote_untrusted(value) + ": " +
            (why.empty() ? std::string("expected exactly 8 characters of [0-9a-z]")
                         : std::string(why))),
      value_(value) {}

} // namespace dexter::sessions
