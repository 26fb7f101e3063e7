// SPDX-License-Identifier: BSL-1.0
// The PostgreSQL store's connection to its server: libpq's handles, connecting (the
// session settings, the encoding check, the schema), running the statements of
// postgres_sql.hpp, and turning a failure into an error that names the server and never
// the password. The store's leases are not here: postgres_store takes them.
#pragma once

#include <dexter/sessions/detail/postgres_conninfo.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/error.hpp>

#include <libpq-fe.h>

#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

struct pg_conn_closer {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct pg_result_clearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
/// A connection, closed (PQfinish) with its owner.
using pg_conn_ptr = std::unique_ptr<PGconn, pg_conn_closer>;
/// A result, cleared (PQclear) with its owner.
using pg_result_ptr = std::unique_ptr<PGresult, pg_result_clearer>;

inline void pg_ignore_notice(void*, const char*) {}

/// This machine's name (gethostname), "" when it has none to give.
inline std::string pg_host_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return host;
}

/// The application_name of a store's connection, "dexter-sessions pid=N host=H", cut
/// to 63 bytes (NAMEDATALEN - 1, where the server would cut it): how session_busy
/// names the process that holds a lease.
inline std::string pg_application_name(long pid, const std::string& host) {
    std::string app = "dexter-sessions pid=" + std::to_string(pid) + " host=" + host;
    if (app.size() > 63)
        app.resize(63); // NAMEDATALEN - 1
    return app;
}

/// A process, as an application_name made by pg_application_name() names it.
struct pg_process {
    long pid = 0;
    std::string host; ///< may be cut short
};

/// The process `app` names, when pg_application_name() made it; nothing for any other
/// name (another program's connection).
inline std::optional<pg_process> pg_parse_application_name(const std::string& app) {
    const auto p = app.find("pid="), h = app.find(" host=");
    if (!app.starts_with("dexter-sessions ") || p == std::string::npos || h == std::string::npos)
        return std::nullopt;
    return pg_process{std::strtol(app.c_str() + p + 4, nullptr, 10), app.substr(h + 6)};
}

/// One session-level connection to the server of a connection string, and the
/// statements prepared on it. Movable, not copyable, not thread-safe. Every call that
/// talks to the server throws storage_error naming server() (with libpq's message,
/// cleaned of the string's passwords) when it fails; a call that meets a lost
/// connection says so, and leaves connected() false until the next connect().
class pg_connection {
public:
    /// Remembers `conninfo` (never printed); does not connect.
    explicit pg_connection(std::string conninfo)
        : conninfo_(std::move(conninfo)), server_(pg_server_label(conninfo_)),
          secrets_(conninfo_secrets(conninfo_)) {}

    /// The server, as errors name it: host:port/dbname (never the password). From the
    /// connection string until the first connect(), then as libpq reports it.
    const std::string& server() const noexcept { return server_; }

    /// True while the connection is up, as far as libpq knows (a failed call notices a
    /// lost one).
    bool connected() const noexcept { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }

    /// How many times connect() was called: a transaction begun at one generation is gone
    /// if the generation has changed since (a lost connection was replaced).
    std::size_t generation() const noexcept { return generation_; }

    /// Closes the connection, if any; the next statement needs a connect().
    void disconnect() noexcept { conn_.reset(); }

    /// (Re)connects: drops the old connection and its prepared statements, connects as
    /// "dexter-sessions pid=N host=H" in UTF8, refuses a database whose encoding is not
    /// UTF8, sets synchronous_commit on and creates the schema when the database has
    /// none (migrates one of version 1, dexter-sessions 0.1). Throws storage_error (cannot connect,
    /// wrong encoding, a failed statement), format_error (the database holds a newer schema); on
    /// throw, not connected.
    void connect() {
        conn_.reset();
        ++generation_;
        prepared_.fill(false);
        const std::string app = pg_application_name(::getpid(), pg_host_name());
        const char* keys[] = {"dbname", "application_name", "client_encoding", nullptr};
        const char* values[] = {conninfo_.c_str(), app.c_str(), "UTF8", nullptr};
        pg_conn_ptr c(PQconnectdbParams(keys, values, 1));
        if (!c)
            throw std::bad_alloc();
        if (PQstatus(c.get()) != CONNECTION_OK)
            throw storage_error("cannot connect to the PostgreSQL server (" +
                                    clean(PQerrorMessage(c.get())) + ")",
                                server_);
        PQsetNoticeProcessor(c.get(), pg_ignore_notice, nullptr);
        if (const char* h = PQhost(c.get()); h && *h)
            server_ =
                pg_redact(std::string(h) + ":" + PQport(c.get()) + "/" + PQdb(c.get()), secrets_);
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
        } catch (...) {
            conn_.reset(); // half set up: the next call starts again
            throw;
        }
    }

    /// `message` (libpq's) on one line, without the connection string's passwords.
    std::string clean(std::string_view message) const {
        return pg_clean_message(message, secrets_);
    }

    /// Runs a constant statement without parameters (schema, settings, transactions).
    /// Throws storage_error starting with `what` when it fails.
    pg_result_ptr exec_plain(const char* sql, const std::string& what) {
        pg_result_ptr r(PQexec(conn_.get(), sql));
        if (!succeeded(r.get()))
            fail(r.get(), what);
        return r;
    }

    /// Runs statement `s` with text parameters (nullptr is SQL NULL): prepared on first use
    /// on this connection, or, for those pg_planned_per_call() names, planned by the
    /// server for these very parameters. Throws storage_error starting with `what` when it
    /// fails.
    pg_result_ptr run(pg_statement s, std::initializer_list<const char*> params,
                      const std::string& what) {
        const auto i = static_cast<std::size_t>(s);
        if (pg_planned_per_call(s)) {
            pg_result_ptr r(PQexecParams(conn_.get(), pg_sql[i], static_cast<int>(params.size()),
                                         nullptr, params.begin(), nullptr, nullptr, 0));
            if (!succeeded(r.get()))
                fail(r.get(), what);
            return r;
        }
        const std::string name = "dexter_sessions_" + std::to_string(i);
        if (!prepared_[i]) {
            pg_result_ptr p(PQprepare(conn_.get(), name.c_str(), pg_sql[i],
                                      static_cast<int>(params.size()), nullptr));
            if (!succeeded(p.get()))
                fail(p.get(), what);
            prepared_[i] = true;
        }
        pg_result_ptr r(PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(params.size()),
                                       params.begin(), nullptr, nullptr, 0));
        if (!succeeded(r.get()))
            fail(r.get(), what);
        return r;
    }

    /// The rows a statement inserted, updated or deleted.
    static long affected(const pg_result_ptr& r) {
        return std::strtol(PQcmdTuples(r.get()), nullptr, 10);
    }

private:
    void ensure_schema() {
        auto exists = exec_plain("SELECT to_regclass('dexter_sessions_schema') IS NOT NULL",
                                 "cannot read the schema version");
        if (std::string_view(PQgetvalue(exists.get(), 0, 0)) == "t" &&
            schema_version() == postgres_schema_version)
            return;
        // First use of this database, one made by an older version (migrated), or a
        // concurrent creation: in one transaction, serialised between processes by a
        // transaction-level lock.
        exec_plain("BEGIN", "cannot create the schema");
        try {
            exec_plain("SELECT pg_advisory_xact_lock(1685382481, 1936942451)", // "dexs" "sess"
                       "cannot create the schema");
            exec_plain("CREATE TABLE IF NOT EXISTS dexter_sessions_schema "
                       "(version integer NOT NULL)",
                       "cannot create the schema");
            long version = schema_version();
            if (version == 0) {
                exec_plain(pg_schema_v1, "cannot create the schema");
                version = 1;
            }
            if (version == 1)
                exec_plain(pg_migrate_v1_to_v2,
                           "cannot migrate the schema from version 1 (dexter-sessions 0.1)");
            exec_plain("COMMIT", "cannot create the schema");
        } catch (...) {
            if (connected())
                PQclear(PQexec(conn_.get(), "ROLLBACK"));
            throw;
        }
    }

    // The schema's version, 0 when there is none. Throws format_error for a version newer
    // than this code knows.
    long schema_version() {
        auto v = exec_plain("SELECT max(version) FROM dexter_sessions_schema",
                            "cannot read the schema version");
        if (PQgetisnull(v.get(), 0, 0))
            return 0;
        const long version = std::strtol(PQgetvalue(v.get(), 0, 0), nullptr, 10);
        if (version > postgres_schema_version) {
            throw format_error("the PostgreSQL database holds dexter-sessions schema version " +
                               std::to_string(version) + ", newer than this library knows (" +
                               std::to_string(postgres_schema_version) +
                               "); it was left untouched: use a newer dexter-sessions (" + server_ +
                               ")");
        }
        return version;
    }

    // The error of a failed statement: a lost connection says so (the next call
    // reconnects); a refused statement gives the server's message and SQLSTATE.
    [[noreturn]] void fail(const PGresult* r, const std::string& what) {
        if (!connected())
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

    std::string conninfo_; ///< may hold a password: never printed
    std::string server_;
    std::vector<std::string> secrets_;
    pg_conn_ptr conn_;
    std::array<bool, static_cast<std::size_t>(pg_statement::count)> prepared_{};
    std::size_t generation_ = 0;
};

} // namespace dexter::sessions::detail
