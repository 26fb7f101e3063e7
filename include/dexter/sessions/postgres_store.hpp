// SPDX-License-Identifier: BSL-1.0
// postgres_store: the storage policy on a PostgreSQL server, through libpq.
//
// An optional header: it needs libpq (`#include <libpq-fe.h>`, link -lpq; Debian:
// libpq-dev), which the rest of the library does not. The umbrella header does not
// include it. For hosts that outgrow one machine: any number of processes, on any
// number of machines, share the sessions of one database.
//
// Schema (version 1), created by the first store that finds none, in one transaction
// under pg_advisory_xact_lock, in the first schema of the connection's search_path:
//
//   dexter_sessions_schema (version integer)        one row; a newer version than this
//                                                   code knows is refused (format_error)
//   dexter_sessions (channel, id) PRIMARY KEY       title text, title_json json,
//                                                   created_at, updated_at timestamptz,
//                                                   exchange_count bigint, extra json;
//                                                   index (channel, updated_at DESC, id)
//   dexter_records (channel, session_id, seq) PK    record json: exactly the line the
//                                                   file store writes to history.jsonl
//                                                   (detail::encode_exchange), without
//                                                   its newline; ON DELETE CASCADE
//
// Records and `extra` are `json`, not `jsonb`: jsonb cannot hold U+0000 (which the
// storage contract stores) and turns the double 1.0 into the integer 1, so a record
// would not come back as it was saved. `json` keeps the exact text; cast with ::jsonb
// in queries that need operators on it. PostgreSQL's text cannot hold U+0000 either:
// a title holding one is kept exactly in title_json (a JSON string), and `title` then
// shows it with U+FFFD in its place.
//
// Semantics, as the file store's (storage.hpp has the contract):
//  - The writer's lease on a session is pg_try_advisory_lock(k1, k2) (two int4 keys from
//    a hash of channel/id), held by the store's connection: a second writer gets
//    session_busy naming the holder's process (its application_name is
//    "dexter-sessions pid=N host=H"); the server ends the lease with the connection, so
//    a crashed writer leaves none behind.
//  - A saved exchange is one statement, so one transaction: the record's insert and the
//    session's counters, guarded by `exchange_count = seq - 1`; the server answers only
//    after COMMIT, with synchronous_commit=on set for the connection (the commit is in
//    the server's WAL on disk). seq is the primary key, so no writer can ever store a
//    seq twice, lease or not.
//  - Resume reads the last n records (ORDER BY seq DESC LIMIT n) and the metadata in one
//    statement (one snapshot). Delete is one statement (the records go by cascade),
//    refused while another writer holds the lease.
//  - Faults: a lost connection (a server restart, a network cut) makes the call that
//    meets it throw storage_error naming the server, with the exchange not acknowledged;
//    the next call reconnects and takes back every lease it held, or throws
//    session_busy for a session another writer took meanwhile. It never writes without
//    the lease.
//  - Errors name the server as host:port/dbname. The connection string is never
//    printed: it may hold a password (any password in it is also cut out of libpq's
//    messages).
//
// Each store object is one connection (two objects are two writers, as two processes
// are). Not thread-safe: use one object per thread. It needs a session-level connection:
// behind a transaction-pooling proxy the advisory locks would not work.
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <libpq-fe.h>

#include <boost/json/parse.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// Options of a postgres_store.
struct postgres_options {
    /// Largest record (its JSON text), as jsonl_options::max_record_bytes: larger ones
    /// are refused with invalid_input, nothing saved.
    std::size_t max_record_bytes = 16u << 20;
};

namespace detail {

/// The schema version this library creates and reads.
inline constexpr int postgres_schema_version = 1;

struct pg_conn_closer {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct pg_result_clearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using pg_conn_ptr = std::unique_ptr<PGconn, pg_conn_closer>;
using pg_result_ptr = std::unique_ptr<PGresult, pg_result_clearer>;

/// The passwords a connection string holds, as written and as libpq reads them, so
/// that they can be cut out of any message.
inline std::vector<std::string> conninfo_secrets(const std::string& conninfo) {
    std::vector<std::string> secrets;
    auto add = [&](std::string s) {
        if (!s.empty() && std::find(secrets.begin(), secrets.end(), s) == secrets.end())
            secrets.push_back(std::move(s));
    };
    char* err = nullptr;
    if (PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err)) {
        for (auto* o = opts; o->keyword; ++o)
            if (std::string_view(o->keyword) == "password" && o->val)
                add(o->val);
        PQconninfoFree(opts);
    }
    PQfreemem(err);
    // As written: the userinfo of a URI ("scheme://user:secret@host"), and the value
    // after "password=" (also when the string does not parse).
    if (const auto scheme = conninfo.find("://"); scheme != std::string::npos) {
        const auto start = scheme + 3;
        const auto end = conninfo.find_first_of("/?", start);
        const std::string authority =
            conninfo.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (const auto at = authority.rfind('@'); at != std::string::npos) {
            const std::string userinfo = authority.substr(0, at);
            if (const auto colon = userinfo.find(':'); colon != std::string::npos)
                add(userinfo.substr(colon + 1));
        }
    }
    for (std::size_t pos = 0; (pos = conninfo.find("password", pos)) != std::string::npos;) {
        pos += 8;
        std::size_t v = conninfo.find_first_not_of(" \t", pos);
        if (v == std::string::npos || conninfo[v] != '=')
            continue;
        v = conninfo.find_first_not_of(" \t", v + 1);
        if (v == std::string::npos)
            break;
        std::size_t e;
        if (conninfo[v] == '\'') {
            ++v;
            e = conninfo.find('\'', v);
        } else {
            e = conninfo.find_first_of(" \t&", v);
        }
        add(conninfo.substr(v, e == std::string::npos ? std::string::npos : e - v));
    }
    return secrets;
}

/// `text` on one line (libpq's messages span several: a new line becomes "; ", an
/// indented continuation a space), with every secret replaced by "***".
inline std::string pg_clean_message(std::string_view text,
                                    const std::vector<std::string>& secrets) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            const bool continued =
                i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' ');
            while (!out.empty() && out.back() == ' ')
                out.pop_back();
            if (!out.empty() && i + 1 < text.size())
                out += continued ? " " : "; ";
            while (i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' '))
                ++i;
        } else if (c == '\t' || c == ' ') {
            if (!out.empty() && out.back() != ' ')
                out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == ';'))
        out.pop_back();
    for (const auto& s : secrets)
        for (std::size_t pos = 0; (pos = out.find(s, pos)) != std::string::npos; pos += 3)
            out.replace(pos, s.size(), "***");
    return out;
}

/// How errors name the server: host:port/dbname, from the connection string (without
/// its password), the PG* environment variables and libpq's defaults.
inline std::string pg_server_label(const std::string& conninfo) {
    std::string host, hostaddr, port, dbname, user;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    const bool parsed = opts != nullptr;
    if (opts) {
        for (auto* o = opts; o->keyword; ++o) {
            if (!o->val)
                continue;
            const std::string_view k = o->keyword;
            if (k == "host")
                host = o->val;
            else if (k == "hostaddr")
                hostaddr = o->val;
            else if (k == "port")
                port = o->val;
            else if (k == "dbname")
                dbname = o->val;
            else if (k == "user")
                user = o->val;
        }
        PQconninfoFree(opts);
    }
    PQfreemem(err);
    if (!parsed)
        return "(an invalid connection string)";
    auto env = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    if (host.empty())
        host = hostaddr;
    if (host.empty())
        host = env("PGHOST");
    if (host.empty())
        host = "localhost";
    if (port.empty())
        port = env("PGPORT");
    if (port.empty())
        port = "5432";
    if (dbname.empty())
        dbname = env("PGDATABASE");
    if (dbname.empty())
        dbname = user.empty() ? env("PGUSER") : user;
    return host + ":" + port + "/" + (dbname.empty() ? "(default database)" : dbname);
}

/// The two int4 advisory-lock keys of a session: 62 bits of FNV-1a over channel/id.
inline std::array<std::string, 2> pg_lease_keys(std::string_view channel, std::string_view id) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&](std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 0x100000001b3ull;
        }
    };
    mix("dexter-sessions/");
    mix(channel);
    mix("/");
    mix(id);
    return {std::to_string(h & 0x7fffffff), std::to_string((h >> 32) & 0x7fffffff)};
}

/// Milliseconds since the epoch, for the statements' bigint parameters.
inline std::string pg_millis(time_point t) {
    return std::to_string(t.time_since_epoch().count());
}

/// The statements, prepared once per connection. Each names its columns in the order
/// the code reads them.
enum class pg_statement : std::size_t {
    find,
    list,
    create,
    append,
    update,
    load,
    remove,
    lock,
    unlock,
    holder,
    count
};

// Metadata columns: title, title_json, created_at, updated_at (ms), exchange_count, extra, id.
#define DEXTER_SESSIONS_PG_META_COLUMNS                                                            \
    "s.title, s.title_json::text, (extract(epoch FROM s.created_at) * 1000)::bigint, "             \
    "(extract(epoch FROM s.updated_at) * 1000)::bigint, s.exchange_count, s.extra::text, s.id"
#define DEXTER_SESSIONS_PG_MILLIS(n)                                                               \
    "('epoch'::timestamptz + $" #n "::bigint * interval '1 millisecond')"

inline constexpr std::array<const char*, static_cast<std::size_t>(pg_statement::count)> pg_sql = {
    // find: $1 channel, $2 id
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS
    " FROM dexter_sessions s WHERE s.channel = $1 AND s.id = $2",
    // list: $1 channel (newest first, from the index)
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS
    " FROM dexter_sessions s WHERE s.channel = $1 ORDER BY s.updated_at DESC, s.id",
    // create: $1 channel, $2 id, $3 title, $4 title_json, $5 created_at, $6 updated_at, $7 extra
    "INSERT INTO dexter_sessions (channel, id, title, title_json, created_at, updated_at, "
    "exchange_count, extra) VALUES ($1, $2, $3, $4::json, " DEXTER_SESSIONS_PG_MILLIS(
        5) ", " DEXTER_SESSIONS_PG_MILLIS(6) ", 0, $7::json) ON CONFLICT DO NOTHING",
    // append: $1 channel, $2 id, $3 seq, $4 updated_at, $5 record. One statement, one
    // transaction: nothing is inserted unless the session's count is seq - 1.
    "WITH s AS (UPDATE dexter_sessions SET exchange_count = $3::bigint, "
    "updated_at = greatest(updated_at, " DEXTER_SESSIONS_PG_MILLIS(
        4) ") "
           "WHERE channel = $1 AND id = $2 AND exchange_count = $3::bigint - 1 RETURNING channel, "
           "id) "
           "INSERT INTO dexter_records (channel, session_id, seq, record) "
           "SELECT channel, id, $3::bigint, $5::json FROM s",
    // update: $1 channel, $2 id, $3 title, $4 title_json, $5 extra
    "UPDATE dexter_sessions SET title = $3, title_json = $4::json, extra = $5::json "
    "WHERE channel = $1 AND id = $2",
    // load: $1 channel, $2 id, $3 how many (NULL: all); metadata and records, newest
    // first, in one snapshot
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS ", r.seq, r.record::text FROM dexter_sessions s "
    "LEFT JOIN LATERAL (SELECT seq, record FROM dexter_records "
    "WHERE channel = s.channel AND session_id = s.id ORDER BY seq DESC LIMIT $3::bigint) r "
    "ON true WHERE s.channel = $1 AND s.id = $2 ORDER BY r.seq DESC",
    // remove: $1 channel, $2 id
    "DELETE FROM dexter_sessions WHERE channel = $1 AND id = $2",
    // lock, unlock: $1, $2 the lease keys
    "SELECT pg_try_advisory_lock($1::integer, $2::integer)",
    "SELECT pg_advisory_unlock($1::integer, $2::integer)",
    // holder: $1, $2 the lease keys
    "SELECT a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = $1::oid AND l.objid = $2::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.pid <> pg_backend_pid() LIMIT 1",
};

#undef DEXTER_SESSIONS_PG_META_COLUMNS
#undef DEXTER_SESSIONS_PG_MILLIS

// Created in one transaction under pg_advisory_xact_lock (see ensure_schema()).
inline constexpr const char* pg_schema_v1 =
    "CREATE TABLE dexter_sessions ("
    " channel text NOT NULL,"
    " id text NOT NULL,"
    " title text NOT NULL,"
    " title_json json,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " exchange_count bigint NOT NULL CHECK (exchange_count >= 0),"
    " extra json NOT NULL DEFAULT '{}',"
    " PRIMARY KEY (channel, id));"
    "CREATE INDEX dexter_sessions_recent ON dexter_sessions (channel, updated_at DESC, id);"
    "CREATE TABLE dexter_records ("
    " channel text NOT NULL,"
    " session_id text NOT NULL,"
    " seq bigint NOT NULL CHECK (seq > 0),"
    " record json NOT NULL,"
    " PRIMARY KEY (channel, session_id, seq),"
    " FOREIGN KEY (channel, session_id) REFERENCES dexter_sessions (channel, id)"
    "  ON DELETE CASCADE);"
    "INSERT INTO dexter_sessions_schema (version) VALUES (1);";

inline void pg_ignore_notice(void*, const char*) {}

} // namespace detail

/// The PostgreSQL storage policy (see the top of this file, and storage.hpp for what
/// each primitive does). One connection per object; not thread-safe.
/// Every operation throws: invalid_session_id (before anything else), storage_error
/// naming the server (no connection, a lost connection, a failed statement),
/// format_error (the database holds a newer schema), and as listed per primitive.
class postgres_store {
public:
    /// Connects to `conninfo` (a libpq connection string: "postgresql://user@host/db"
    /// or "host=... dbname=...", with the PG* environment variables and ~/.pgpass as
    /// libpq uses them) for sessions of `channel`, and creates the schema if the
    /// database has none. Throws std::invalid_argument for a bad channel name,
    /// storage_error when it cannot connect, format_error for a newer schema.
    explicit postgres_store(std::string conninfo, std::string channel = "cli",
                            postgres_options options = {})
        : conninfo_(std::move(conninfo)), channel_(std::move(channel)), options_(options),
          server_(detail::pg_server_label(conninfo_)),
          secrets_(detail::conninfo_secrets(conninfo_)) {
        if (!detail::is_valid_channel(channel_))
            throw invalid_channel(
                "invalid channel name " + detail::quote_untrusted(channel_) +
                ": expected 1 to 64 characters of [a-z0-9_-], not starting with '-' or '_'");
        connect();
    }

    postgres_store(postgres_store&&) noexcept = default;
    postgres_store& operator=(postgres_store&&) noexcept = default;
    /// Closes the connection: the server ends every lease it held.
    ~postgres_store() = default;

    // --- the storage policy (see storage.hpp) ---------------------------------------

    /// Throws invalid_session_id, invalid_input (a title or extra that is not UTF-8),
    /// storage_error.
    bool create(const session_meta& m) {
        validate_session_id(m.id);
        const encoded_meta em = encode_meta(m, "session '" + m.id + "'");
        ensure_connected();
        const bool held_before = holds(m.id);
        if (!held_before && !try_lock(m.id))
            return false; // another writer has that id
        lease_guard unlock_unless_created(*this, held_before ? nullptr : &m.id);
        const auto created = pg_millis(m.created_at), updated = pg_millis(m.updated_at);
        auto r = run(detail::pg_statement::create,
                     {channel_.c_str(), m.id.c_str(), em.title.c_str(), em.title_json_param(),
                      created.c_str(), updated.c_str(), em.extra.c_str()},
                     "cannot create session '" + m.id + "'");
        if (affected(r) == 0)
            return false;
        unlock_unless_created.release();
        leases_[m.id] = true;
        return true;
    }

    /// Takes the lease. Opening a session this object holds returns its metadata.
    /// Throws invalid_session_id, session_not_found, session_busy (with the holder's
    /// pid when the server tells it), storage_error.
    session_meta open(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        const bool held_before = holds(id);
        if (!held_before && !try_lock(id))
            throw busy(id);
        lease_guard unlock_on_throw(*this, held_before ? nullptr : &id);
        auto meta = find_meta(id);
        if (!meta)
            throw session_not_found(id, server_);
        unlock_on_throw.release();
        leases_[id] = true;
        return std::move(*meta);
    }

    /// Throws invalid_session_id, invalid_input (over the record limit, not UTF-8),
    /// session_busy (the lease was lost with the connection and another writer has
    /// it), storage_error (not open here, a seq that does not follow, a lost
    /// connection: then not acknowledged, and it is unknown whether the server
    /// committed it just before). On throw, nothing of ex is acknowledged.
    void append(const session_meta& after, const exchange& ex) {
        validate_session_id(after.id);
        record_.clear();
        const bool record_utf8 = detail::encode_exchange(record_, ex);
        if (!record_.empty() && record_.back() == '\n')
            record_.pop_back();
        const std::string what =
            "exchange " + std::to_string(ex.seq) + " of session '" + after.id + "'";
        check_record(record_, record_utf8, what);
        require_lease(after.id);
        const auto seq = std::to_string(ex.seq), updated = pg_millis(after.updated_at);
        auto r =
            run(detail::pg_statement::append,
                {channel_.c_str(), after.id.c_str(), seq.c_str(), updated.c_str(), record_.c_str()},
                "cannot save " + what);
        if (affected(r) == 1)
            return;
        const auto now = find_meta(after.id);
        if (!now)
            throw session_not_found(after.id, server_);
        throw storage_error("exchange " + std::to_string(ex.seq) + " does not follow " +
                                std::to_string(now->exchange_count) + " in session '" + after.id +
                                "'; nothing was saved",
                            server_);
    }

    /// Stores a new title and extra. Throws as append() does.
    void update(const session_meta& m) {
        validate_session_id(m.id);
        const encoded_meta em = encode_meta(m, "the new metadata of session '" + m.id + "'");
        require_lease(m.id);
        auto r = run(detail::pg_statement::update,
                     {channel_.c_str(), m.id.c_str(), em.title.c_str(), em.title_json_param(),
                      em.extra.c_str()},
                     "cannot save the new metadata of session '" + m.id + "'");
        if (affected(r) == 0)
            throw session_not_found(m.id, server_);
    }

    /// Releases the lease taken by create() or open().
    void close(const session_id& id) noexcept {
        auto it = leases_.find(id);
        if (it == leases_.end())
            return;
        const bool held = it->second;
        leases_.erase(it);
        if (held)
            unlock_quietly(id);
    }

    /// Throws invalid_session_id, storage_error.
    std::optional<session_meta> find(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        return find_meta(id);
    }

    /// Every session of this store's channel, newest first. Throws storage_error.
    std::vector<session_meta> list() {
        ensure_connected();
        auto r = run(detail::pg_statement::list, {channel_.c_str()},
                     "cannot list the sessions of channel '" + channel_ + "'");
        std::vector<session_meta> out;
        const int rows = PQntuples(r.get());
        out.reserve(static_cast<std::size_t>(rows));
        for (int i = 0; i < rows; ++i)
            out.push_back(read_meta(r.get(), i));
        return out;
    }

    /// Needs no lease and changes nothing. A stored record that cannot be read (edited
    /// in the database by hand) is skipped and reported in the diagnostics (line 0,
    /// the reason naming its seq). Throws invalid_session_id, session_not_found,
    /// storage_error.
    loaded_session load(const session_id& id, std::size_t last = all_exchanges) {
        validate_session_id(id);
        ensure_connected();
        const std::string limit = std::to_string(last);
        const bool all = last >= static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
        auto r = run(detail::pg_statement::load,
                     {channel_.c_str(), id.c_str(), all ? nullptr : limit.c_str()},
                     "cannot load session '" + id + "'");
        const int rows = PQntuples(r.get());
        if (rows == 0)
            throw session_not_found(id, server_);
        loaded_session out;
        out.meta = read_meta(r.get(), 0);
        std::vector<exchange> newest_first;
        for (int i = 0; i < rows; ++i) {
            if (PQgetisnull(r.get(), i, 7))
                continue; // no exchange at all
            const std::uint64_t seq = std::strtoull(PQgetvalue(r.get(), i, 7), nullptr, 10);
            const std::string_view text(PQgetvalue(r.get(), i, 8),
                                        static_cast<std::size_t>(PQgetlength(r.get(), i, 8)));
            auto ex = read_record(text, seq, out.diagnostics);
            if (ex)
                newest_first.push_back(std::move(*ex));
        }
        out.exchanges.reserve(newest_first.size());
        for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
            const auto prev = out.exchanges.empty() ? 0 : out.exchanges.back().seq;
            if (prev != 0 && it->seq != prev + 1)
                out.diagnostics.push_back({0, 0,
                                           "exchange seq " + std::to_string(it->seq) + " follows " +
                                               std::to_string(prev) + ": exchanges " +
                                               std::to_string(prev + 1) + " to " +
                                               std::to_string(it->seq - 1) + " are missing"});
            out.exchanges.push_back(std::move(*it));
        }
        return out;
    }

    /// Deletes the session and its records in one statement. Allowed while this object
    /// holds the session (the lease is then released). Throws invalid_session_id,
    /// session_not_found, session_busy, storage_error; on throw nothing changed.
    void remove(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        const bool held_before = holds(id);
        if (!held_before && !try_lock(id))
            throw busy(id);
        {
            lease_guard unlock_after(*this, held_before ? nullptr : &id);
            auto r = run(detail::pg_statement::remove, {channel_.c_str(), id.c_str()},
                         "cannot delete session '" + id + "'");
            if (affected(r) == 0)
                throw session_not_found(id, server_);
        }
        if (held_before)
            close(id);
    }

    // --- beyond the policy ------------------------------------------------------------

    /// The server, as errors name it: host:port/dbname (never the password).
    const std::string& server() const noexcept { return server_; }
    const std::string& channel() const noexcept { return channel_; }
    const postgres_options& options() const noexcept { return options_; }

    /// Store-level events since the last call, as jsonl_store::take_diagnostics()
    /// (this store has none to report: the server repairs what a crash left).
    std::vector<diagnostic> take_diagnostics() { return {}; }

    /// Throws storage_error, naming the server, unless this connection's role may
    /// create and save sessions. Call it before taking user input.
    void check_writable() {
        ensure_connected();
        auto r = exec_plain("SELECT has_table_privilege('dexter_sessions', 'INSERT, UPDATE') "
                            "AND has_table_privilege('dexter_records', 'INSERT') "
                            "AND NOT pg_is_in_recovery() "
                            "AND current_setting('transaction_read_only') = 'off'",
                            "cannot check whether sessions can be saved");
        if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t")
            throw storage_error("the session store is read-only (a standby, a read-only "
                                "transaction default, or a role without INSERT on "
                                "dexter_sessions and dexter_records)",
                                server_);
    }

private:
    struct encoded_meta {
        std::string title;      // as text: U+0000 shown as U+FFFD
        std::string title_json; // the exact title as JSON when it holds U+0000, else ""
        std::string extra;
        const char* title_json_param() const {
            return title_json.empty() ? nullptr : title_json.c_str();
        }
    };

    // Releases a lease just taken, unless release() is called first (the lease is then
    // kept). A null id: nothing to release.
    class lease_guard {
    public:
        lease_guard(postgres_store& s, const session_id* id) : s_(s), id_(id) {}
        lease_guard(const lease_guard&) = delete;
        lease_guard& operator=(const lease_guard&) = delete;
        ~lease_guard() {
            if (id_)
                s_.unlock_quietly(*id_);
        }
        void release() noexcept { id_ = nullptr; }

    private:
        postgres_store& s_;
        const session_id* id_;
    };

    static std::string pg_millis(time_point t) { return detail::pg_millis(t); }

    // --- connection -----------------------------------------------------------------

    void connect() {
        conn_.reset();
        prepared_.fill(false);
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        std::string app = "dexter-sessions pid=" + std::to_string(::getpid()) + " host=" + host;
        if (app.size() > 63)
            app.resize(63); // NAMEDATALEN - 1
        const char* keys[] = {"dbname", "application_name", "client_encoding", nullptr};
        const char* values[] = {conninfo_.c_str(), app.c_str(), "UTF8", nullptr};
        detail::pg_conn_ptr c(PQconnectdbParams(keys, values, 1));
        if (!c)
            throw std::bad_alloc();
        if (PQstatus(c.get()) != CONNECTION_OK)
            throw storage_error("cannot connect to the PostgreSQL server (" +
                                    clean(PQerrorMessage(c.get())) + ")",
                                server_);
        PQsetNoticeProcessor(c.get(), detail::pg_ignore_notice, nullptr);
        if (const char* h = PQhost(c.get()); h && *h)
            server_ = std::string(h) + ":" + PQport(c.get()) + "/" + PQdb(c.get());
        const char* enc = PQparameterStatus(c.get(), "server_encoding");
        if (!enc || std::string_view(enc) != "UTF8")
            throw storage_error(std::string("the database's encoding is ") +
                                    (enc ? enc : "unknown") +
                                    "; dexter-sessions needs a UTF8 database",
                                server_);
        conn_ = std::move(c);
        try {
            exec_plain("SET synchronous_commit TO on", "cannot set synchronous_commit");
            ensure_schema();
            // Take back every lease held before the connection was lost; one that another
            // writer took meanwhile is lost (false): writing to it throws session_busy.
            for (auto& [id, held] : leases_)
                held = try_lock(id);
        } catch (...) {
            conn_.reset(); // half set up: the next call starts again
            throw;
        }
    }

    // Reconnects if the connection was lost (a failed call noticed it).
    void ensure_connected() {
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK)
            return;
        connect();
    }

    void ensure_schema() {
        auto exists = exec_plain("SELECT to_regclass('dexter_sessions_schema') IS NOT NULL",
                                 "cannot read the schema version");
        if (std::string_view(PQgetvalue(exists.get(), 0, 0)) == "t" && check_schema_version())
            return;
        // First use of this database (or a concurrent creation): create it in one
        // transaction, serialised between processes by a transaction-level lock.
        exec_plain("BEGIN", "cannot create the schema");
        try {
            exec_plain("SELECT pg_advisory_xact_lock(1685382481, 1936942451)", // "dexs" "sess"
                       "cannot create the schema");
            exec_plain("CREATE TABLE IF NOT EXISTS dexter_sessions_schema "
                       "(version integer NOT NULL)",
                       "cannot create the schema");
            if (!check_schema_version())
                exec_plain(detail::pg_schema_v1, "cannot create the schema");
            exec_plain("COMMIT", "cannot create the schema");
        } catch (...) {
            if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK)
                PQclear(PQexec(conn_.get(), "ROLLBACK"));
            throw;
        }
    }

    // True when the schema is there in the version we know; false when there is none.
    bool check_schema_version() {
        auto v = exec_plain("SELECT max(version) FROM dexter_sessions_schema",
                            "cannot read the schema version");
        if (PQgetisnull(v.get(), 0, 0))
            return false;
        const long version = std::strtol(PQgetvalue(v.get(), 0, 0), nullptr, 10);
        if (version > detail::postgres_schema_version) {
            throw format_error("the PostgreSQL database holds dexter-sessions schema version " +
                               std::to_string(version) + ", newer than this library knows (" +
                               std::to_string(detail::postgres_schema_version) +
                               "); it was left untouched: use a newer dexter-sessions (" + server_ +
                               ")");
        }
        return version >= 1;
    }

    std::string clean(std::string_view message) const {
        return detail::pg_clean_message(message, secrets_);
    }

    // The error of a failed statement: a lost connection says so (the next call
    // reconnects); a refused statement gives the server's message and SQLSTATE.
    [[noreturn]] void fail(const PGresult* r, const std::string& what) {
        if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
            throw storage_error(what + ": lost the connection to the PostgreSQL server (" +
                                    clean(PQerrorMessage(conn_.get())) +
                                    "); not acknowledged, and the next call reconnects",
                                server_);
        std::string message = r ? clean(PQresultErrorMessage(r)) : std::string();
        if (message.empty())
            message = clean(PQerrorMessage(conn_.get()));
        const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        throw storage_error(what + ": the PostgreSQL server refused it (" + message +
                                (state ? std::string(", SQLSTATE ") + state : std::string()) + ")",
                            server_);
    }

    static bool succeeded(const PGresult* r) {
        const auto s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    }

    // A constant statement without parameters (schema, settings, transactions).
    detail::pg_result_ptr exec_plain(const char* sql, const std::string& what) {
        detail::pg_result_ptr r(PQexec(conn_.get(), sql));
        if (!succeeded(r.get()))
            fail(r.get(), what);
        return r;
    }

    // A prepared statement with text parameters (nullptr is SQL NULL).
    detail::pg_result_ptr run(detail::pg_statement s, std::initializer_list<const char*> params,
                              const std::string& what) {
        const auto i = static_cast<std::size_t>(s);
        const std::string name = "dexter_sessions_" + std::to_string(i);
        if (!prepared_[i]) {
            detail::pg_result_ptr p(PQprepare(conn_.get(), name.c_str(), detail::pg_sql[i],
                                              static_cast<int>(params.size()), nullptr));
            if (!succeeded(p.get()))
                fail(p.get(), what);
            prepared_[i] = true;
        }
        detail::pg_result_ptr r(PQexecPrepared(conn_.get(), name.c_str(),
                                               static_cast<int>(params.size()), params.begin(),
                                               nullptr, nullptr, 0));
        if (!succeeded(r.get()))
            fail(r.get(), what);
        return r;
    }

    static long affected(const detail::pg_result_ptr& r) {
        return std::strtol(PQcmdTuples(r.get()), nullptr, 10);
    }

    // --- leases ---------------------------------------------------------------------

    bool holds(const session_id& id) const {
        auto it = leases_.find(id);
        return it != leases_.end() && it->second;
    }

    bool try_lock(const session_id& id) {
        const auto k = detail::pg_lease_keys(channel_, id);
        auto r = run(detail::pg_statement::lock, {k[0].c_str(), k[1].c_str()},
                     "cannot take the lease on session '" + id + "'");
        return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
    }

    void unlock_quietly(const session_id& id) noexcept {
        try {
            if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
                return; // gone with it
            const auto k = detail::pg_lease_keys(channel_, id);
            run(detail::pg_statement::unlock, {k[0].c_str(), k[1].c_str()},
                "cannot release the lease on session '" + id + "'");
        } catch (...) {
            // The lease ends with the connection at the latest.
        }
    }

    // Before a write: the session must be open here, over the current connection.
    void require_lease(const session_id& id) {
        auto it = leases_.find(id);
        if (it == leases_.end())
            throw storage_error("session '" + id + "' is not open for writing here; open it first",
                                server_);
        ensure_connected(); // after a reconnect, the lease was taken again (or lost)
        if (!it->second) {
            it->second = try_lock(id);
            if (!it->second)
                throw busy(id);
        }
    }

    // session_busy for `id`, naming the holder's process when its application_name
    // tells it and it runs on this host.
    session_busy busy(const session_id& id) {
        std::optional<long> pid;
        std::string where = server_;
        try {
            const auto k = detail::pg_lease_keys(channel_, id);
            auto r = run(detail::pg_statement::holder, {k[0].c_str(), k[1].c_str()},
                         "cannot look up the holder of session '" + id + "'");
            if (PQntuples(r.get()) == 1 && !PQgetisnull(r.get(), 0, 0)) {
                const std::string app = PQgetvalue(r.get(), 0, 0);
                const auto p = app.find("pid="), h = app.find(" host=");
                char host[256] = {};
                ::gethostname(host, sizeof host - 1);
                if (app.starts_with("dexter-sessions ") && p != std::string::npos &&
                    h != std::string::npos) {
                    const std::string holder_host = app.substr(h + 6);
                    const long n = std::strtol(app.c_str() + p + 4, nullptr, 10);
                    if (holder_host == std::string(host).substr(0, holder_host.size()))
                        pid = n;
                    else
                        where += " (held by process " + std::to_string(n) + " on host " +
                                 holder_host + ")";
                }
            }
        } catch (const storage_error&) {
            // Unknown holder: the error still says the session is busy.
        }
        return session_busy(id, where, pid);
    }

    // --- values ---------------------------------------------------------------------

    void check_record(std::string_view text, bool valid_utf8, const std::string& what) const {
        if (text.size() > options_.max_record_bytes)
            throw invalid_input(
                what + " is " + std::to_string(text.size()) + " bytes, over the record limit of " +
                std::to_string(options_.max_record_bytes) + " bytes; nothing was saved");
        if (!valid_utf8)
            throw invalid_input(what + " holds text that is not valid UTF-8; nothing was saved");
    }

    encoded_meta encode_meta(const session_meta& m, const std::string& what) const {
        encoded_meta e;
        std::string title_json;
        bool ok = detail::append_json_string(title_json, m.title);
        ok = detail::append_json_value(e.extra, m.extra) && ok;
        check_record(title_json.size() > e.extra.size() ? title_json : e.extra, ok, what);
        if (m.title.find('\0') == std::string::npos) {
            e.title = m.title;
        } else {
            e.title_json = std::move(title_json);
            for (char c : m.title) {
                if (c == '\0')
                    e.title += "\xEF\xBF\xBD"; // U+FFFD
                else
                    e.title += c;
            }
        }
        return e;
    }

    std::optional<session_meta> find_meta(const session_id& id) {
        auto r = run(detail::pg_statement::find, {channel_.c_str(), id.c_str()},
                     "cannot look up session '" + id + "'");
        if (PQntuples(r.get()) == 0)
            return std::nullopt;
        return read_meta(r.get(), 0);
    }

    // Columns 0-6 of DEXTER_SESSIONS_PG_META_COLUMNS.
    static session_meta read_meta(const PGresult* r, int row) {
        auto text = [&](int col) {
            return std::string_view(PQgetvalue(r, row, col),
                                    static_cast<std::size_t>(PQgetlength(r, row, col)));
        };
        auto millis = [&](int col) {
            return time_point{
                std::chrono::milliseconds{std::strtoll(PQgetvalue(r, row, col), nullptr, 10)}};
        };
        session_meta m;
        m.id = std::string(text(6));
        m.title = std::string(text(0));
        if (!PQgetisnull(r, row, 1)) {
            boost::system::error_code ec;
            const auto v = json::parse(text(1), ec);
            if (!ec && v.is_string())
                m.title.assign(v.get_string().data(), v.get_string().size());
        }
        m.created_at = millis(2);
        m.updated_at = millis(3);
        m.exchange_count = std::strtoull(PQgetvalue(r, row, 4), nullptr, 10);
        boost::system::error_code ec;
        auto extra = json::parse(text(5), ec);
        if (!ec && extra.is_object())
            m.extra = std::move(extra.get_object());
        return m;
    }

    static std::optional<exchange> read_record(std::string_view text, std::uint64_t seq,
                                               std::vector<diagnostic>& diags) {
        auto skip = [&](const std::string& why) {
            diags.push_back({0, 0, "record " + std::to_string(seq) + ": " + why + ": skipped"});
            return std::nullopt;
        };
        boost::system::error_code ec;
        const json::value v = json::parse(text, ec);
        if (ec)
            return skip("not valid JSON (" + ec.message() + ")");
        if (!v.is_object())
            return skip("not a JSON object");
        const auto* type = detail::member(v.get_object(), "type");
        if (!type || !type->is_string() || type->get_string() != "exchange")
            return skip("not an exchange record");
        auto ex = detail::read_exchange(v.get_object());
        if (!ex)
            return skip("bad exchange: " + ex.error().what);
        if (ex->seq != seq)
            return skip("holds seq " + std::to_string(ex->seq) + " in row " + std::to_string(seq));
        return std::move(*ex);
    }

    std::string conninfo_; ///< may hold a password: never printed
    std::string channel_;
    postgres_options options_;
    std::string server_;
    std::vector<std::string> secrets_;
    detail::pg_conn_ptr conn_;
    std::array<bool, static_cast<std::size_t>(detail::pg_statement::count)> prepared_{};
    std::map<session_id, bool> leases_; ///< sessions open here; false: lost with a connection
    std::string record_;
};

static_assert(session_storage<postgres_store>);

} // namespace dexter::sessions
