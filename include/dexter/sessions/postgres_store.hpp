// SPDX-License-Identifier: BSL-1.0
// postgres_store: the storage policy on a PostgreSQL server, through libpq.
//
// An optional header: it needs libpq (`#include <libpq-fe.h>`, link -lpq; Debian:
// libpq-dev), which the rest of the library does not. The umbrella header does not
// include it. For hosts that outgrow one machine: any number of processes, on any
// number of machines, share the sessions of one database.
//
// The schema and the statements are in detail/postgres_sql.hpp (and docs/EMBEDDING.md),
// the connection in detail/postgres_connection.hpp.
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
//  - Changing (storage.hpp's creates_whole_sessions and keeps_trash): create_whole() is
//    one transaction (the session's row, its records in batches, detail/postgres_change.hpp),
//    so no other connection sees it before COMMIT and a crash leaves nothing. The trash is
//    the deleted_at column: a trashed session keeps its row, its records and its id (no
//    other session can take the id until it is purged), and no read, open or save sees
//    it. trash() takes each session's lease, and decides in one statement.
//  - Reading (detail/postgres_read.hpp) needs no lease: for_each_exchange() pages
//    through the records by seq, list_page() through the index dexter_sessions_recent,
//    and search() lets the server pick the candidate records (ILIKE on their JSON text)
//    and decides here, with the same matching rule as every other store.
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

#include <dexter/sessions/detail/postgres_change.hpp>
#include <dexter/sessions/detail/postgres_connection.hpp>
#include <dexter/sessions/detail/postgres_conninfo.hpp>
#include <dexter/sessions/detail/postgres_read.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/detail/postgres_verify.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <span>
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

/// How postgres_store names the server of the libpq connection string `conninfo` in
/// its errors before it connects: "host:port/dbname", from the string, then the PG*
/// environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER), then libpq's defaults
/// ("localhost", "5432"; "(default database)" when neither the string nor the
/// environment names a database or a user); "(an invalid connection string)" when
/// libpq cannot parse it. It never contains the string's password (one repeated in a
/// name, as in a dbname that is itself a connection string, shows as "***"). Needs no
/// server: it only parses. Throws nothing but std::bad_alloc.
inline std::string postgres_server_label(std::string_view conninfo) {
    return detail::pg_server_label(std::string(conninfo));
}

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
    /// database has none. Throws invalid_channel for a bad channel name,
    /// storage_error when it cannot connect, format_error for a newer schema.
    explicit postgres_store(std::string conninfo, std::string channel = "cli",
                            postgres_options options = {})
        : conn_(std::move(conninfo)), channel_(std::move(channel)), options_(options) {
        validate_channel(channel_);
        conn_.connect();
    }

    postgres_store(postgres_store&&) noexcept = default;
    postgres_store& operator=(postgres_store&&) noexcept = default;
    /// Closes the connection: the server ends every lease it held.
    ~postgres_store() = default;

    // --- the storage policy (see storage.hpp) ---------------------------------------

    /// Stores m's title, extra, created_at, pinned and forked_from. Returns false when the
    /// id is taken, by a live or a trashed session (this store keeps the ids of trashed
    /// sessions). Throws invalid_session_id, invalid_input (a title or extra that is not
    /// UTF-8), storage_error.
    bool create(const session_meta& m) { return create_session<true>(m); }
    /// create() of metadata whose text was checked already (skips_checked_utf8): its
    /// title and extra are encoded without validating them again.
    bool create(const session_meta& m, checked_utf8_t) { return create_session<false>(m); }

    /// Takes the lease. Opening a session this object holds returns its metadata.
    /// Throws invalid_session_id, session_not_found, session_busy (with the holder's
    /// pid when the server tells it), storage_error.
    session_meta open(const session_id& id) {
        lease_guard unlock_on_throw = lease_for_change(id);
        auto meta = find_meta(id);
        if (!meta)
            throw session_not_found(id, server());
        unlock_on_throw.release();
        leases_[id] = true;
        return std::move(*meta);
    }

    /// Throws invalid_session_id, invalid_input (over the record limit, not UTF-8),
    /// session_busy (the lease was lost with the connection and another writer has
    /// it), storage_error (not open here, a seq that does not follow, a lost
    /// connection: then not acknowledged, and it is unknown whether the server
    /// committed it just before). On throw, nothing of ex is acknowledged.
    void append(const session_id& id, const exchange& ex) { append_exchange<true>(id, ex); }
    /// append() of an exchange whose text was checked already (skips_checked_utf8): the
    /// record is encoded without validating its text again.
    void append(const session_id& id, const exchange& ex, checked_utf8_t) {
        append_exchange<false>(id, ex);
    }

    /// Stores m.title, m.extra and m.pinned, and nothing else of m. Throws as append() does.
    void update(const session_meta& m) {
        validate_session_id(m.id);
        const auto em = detail::pg_encode_meta(m, options_.max_record_bytes,
                                               "the new metadata of session '" + m.id + "'");
        require_lease(m.id);
        auto r = conn_.run(detail::pg_statement::update,
                           {channel_.c_str(), m.id.c_str(), em.title.c_str(), em.title_json_param(),
                            em.extra.c_str(), m.pinned ? "true" : "false"},
                           "cannot save the new metadata of session '" + m.id + "'");
        if (detail::pg_connection::affected(r) == 0)
            throw session_not_found(m.id, server());
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
        auto r = conn_.run(detail::pg_statement::list, {channel_.c_str()},
                           "cannot list the sessions of channel '" + channel_ + "'");
        std::vector<session_meta> out;
        const int rows = PQntuples(r.get());
        out.reserve(static_cast<std::size_t>(rows));
        for (int i = 0; i < rows; ++i)
            out.push_back(detail::pg_read_meta(r.get(), i));
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
        auto r = conn_.run(detail::pg_statement::load,
                           {channel_.c_str(), id.c_str(), all ? nullptr : limit.c_str()},
                           "cannot load session '" + id + "'");
        const int rows = PQntuples(r.get());
        if (rows == 0)
            throw session_not_found(id, server());
        loaded_session out;
        out.meta = detail::pg_read_meta(r.get(), 0);
        std::vector<exchange> newest_first;
        for (int i = 0; i < rows; ++i) {
            constexpr int seq_col = detail::pg_meta_columns, record_col = seq_col + 1;
            if (PQgetisnull(r.get(), i, seq_col))
                continue; // no exchange at all
            const std::uint64_t seq = std::strtoull(PQgetvalue(r.get(), i, seq_col), nullptr, 10);
            const std::string_view text(
                PQgetvalue(r.get(), i, record_col),
                static_cast<std::size_t>(PQgetlength(r.get(), i, record_col)));
            auto ex = detail::pg_read_record(text, seq, out.diagnostics);
            if (ex)
                newest_first.push_back(std::move(*ex));
        }
        out.exchanges.reserve(newest_first.size());
        for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
            const auto prev = out.exchanges.empty() ? 0 : out.exchanges.back().seq;
            if (prev != 0 && it->seq != prev + 1)
                out.diagnostics.push_back({0, 0, detail::missing_exchanges_reason(prev, it->seq),
                                           diagnostic_kind::missing_exchanges});
            out.exchanges.push_back(std::move(*it));
        }
        return out;
    }

    /// Deletes the live session and its records in one statement (a trashed one: purge()).
    /// Allowed while this object
    /// holds the session (the lease is then released). Throws invalid_session_id,
    /// session_not_found, session_busy, storage_error; on throw nothing changed.
    void remove(const session_id& id) {
        bool held_before = false;
        {
            lease_guard unlock_after = lease_for_change(id);
            held_before = unlock_after.held_before();
            auto r = conn_.run(detail::pg_statement::remove, {channel_.c_str(), id.c_str()},
                               "cannot delete session '" + id + "'");
            if (detail::pg_connection::affected(r) == 0)
                throw session_not_found(id, server());
        }
        if (held_before)
            close(id);
    }

    // --- the read side (storage.hpp's optional capabilities) -------------------------

    /// Calls visit with each exchange of session `id` with from <= seq <= through, in seq
    /// order, holding at most detail::pg_page_rows records at a time, until visit returns
    /// false. Needs no lease and changes nothing. Returns the diagnostics of what it
    /// skipped, as load() reports them. Throws invalid_session_id, session_not_found,
    /// storage_error, and what visit throws.
    std::vector<diagnostic> for_each_exchange(const session_id& id, std::uint64_t from,
                                              std::uint64_t through,
                                              const exchange_visitor& visit) {
        validate_session_id(id);
        ensure_connected();
        return for_each_record(id, from, through, [&](exchange&& ex, std::string_view) {
            return visit(std::move(ex));
        });
    }

    /// As for_each_exchange(), with each exchange's record as stored (storage.hpp,
    /// streams_records): the `record` column's text, when it is one line in this
    /// library's form (not edited by hand into another).
    std::vector<diagnostic> for_each_record(const session_id& id, std::uint64_t from,
                                            std::uint64_t through, const record_visitor& visit) {
        validate_session_id(id);
        ensure_connected();
        return detail::pg_for_each_record(conn_, channel_, id, from, through, visit);
    }

    /// What is wrong with session `id` (verify.hpp; detail/postgres_verify.hpp): holes in
    /// its seqs, a session row whose exchange count its records do not bear out, records
    /// that do not decode. Read-only. Throws invalid_session_id, session_not_found,
    /// format_error (a newer schema), storage_error.
    verify_report verify(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        auto r = detail::pg_verify(conn_, channel_, id);
        if (!r.problems.empty())
            throw format_error(r.problems.front() + " (" + server() + ")");
        if (r.sessions.empty())
            throw session_not_found(id, server());
        return std::move(r.sessions.front());
    }

    /// verify() of every live session of this store's channel. A database whose schema is
    /// newer than this library is reported as the store's problem, not thrown. Throws
    /// storage_error.
    store_verify_report verify_all() {
        try {
            ensure_connected();
        } catch (const format_error& e) {
            store_verify_report r;
            r.problems.push_back(e.what());
            return r;
        }
        return detail::pg_verify(conn_, channel_, std::nullopt);
    }

    /// Nothing a repair could fix is ever left in the database (each change is one
    /// transaction): returns a report with `needed` false that says so. Throws
    /// invalid_session_id, session_not_found, format_error, storage_error.
    repair_report repair(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        if (!find_meta(id))
            throw session_not_found(id, server());
        repair_report r;
        r.id = id;
        r.what = "session '" + id +
                 "' needs no repair: the PostgreSQL store writes each change "
                 "in one transaction, so there are no torn or half-written records to move aside";
        return r;
    }

    /// As repair(), for the store: nothing to do, so no report.
    std::vector<repair_report> repair_all() {
        ensure_connected();
        return {};
    }

    /// The q.limit newest hits of q.text (query.hpp), the server filtering the records
    /// and this code matching them (detail::pg_search). Throws invalid_input for an
    /// empty or invalid text, storage_error; damaged records are reported in the result.
    search_result search(const search_query& q) {
        check_search_query(q);
        ensure_connected();
        return detail::pg_search(conn_, channel_, q);
    }

    /// The page page_of(list(), r) gives, read from the index dexter_sessions_recent
    /// (detail::pg_list_page) rather than from every session. Throws storage_error.
    session_page list_page(const page_request& r) {
        ensure_connected();
        return detail::pg_list_page(conn_, channel_, r);
    }

    // --- changing sessions (storage.hpp's creates_whole_sessions and keeps_trash) -------

    /// Creates session m.id with what fill hands to the sink, in one transaction: the
    /// session's row, then the records in batches (detail::pg_whole_sink), then the
    /// final metadata, then COMMIT. Returns false, without calling fill, when the id is
    /// taken (by a live or a trashed session). Leaves the session closed. Throws
    /// invalid_session_id, invalid_input (from the sink: a seq out of order, a record over
    /// the limit or not UTF-8), session_exists (another writer created the id meanwhile),
    /// storage_error, and what fill throws; on throw, the transaction is rolled back and
    /// nothing of the session remains (a lost connection or a crashed server aborts it).
    bool create_whole(const session_meta& m, const session_filler& fill) {
        validate_session_id(m.id);
        const auto em =
            detail::pg_encode_meta(m, options_.max_record_bytes, "session '" + m.id + "'");
        ensure_connected();
        const std::string what = "cannot create session '" + m.id + "'";
        {
            auto taken = conn_.run(detail::pg_statement::exists, {channel_.c_str(), m.id.c_str()},
                                   "cannot look up session '" + m.id + "'");
            if (PQntuples(taken.get()) != 0)
                return false;
        }
        session_meta start = m;
        start.exchange_count = 0;
        start.updated_at = std::max(m.created_at, m.updated_at);
        const auto created = detail::pg_millis(start.created_at),
                   updated = detail::pg_millis(start.updated_at);
        const auto origin_seq = m.forked_from ? std::to_string(m.forked_from->seq) : std::string();
        conn_.exec_plain("BEGIN", what);
        try {
            auto r = conn_.run(detail::pg_statement::create,
                               {channel_.c_str(), m.id.c_str(), em.title.c_str(),
                                em.title_json_param(), created.c_str(), updated.c_str(),
                                em.extra.c_str(), m.pinned ? "true" : "false",
                                m.forked_from ? m.forked_from->id.c_str() : nullptr,
                                m.forked_from ? origin_seq.c_str() : nullptr},
                               what);
            if (detail::pg_connection::affected(r) == 0)
                throw session_exists(m.id, "session '" + m.id +
                                               "' was created by another writer while it was "
                                               "being written; nothing was saved");
            detail::pg_whole_sink sink(conn_, channel_, std::move(start),
                                       options_.max_record_bytes);
            fill(sink);
            sink.finish();
            sink.check_same_transaction(); // else COMMIT would end no transaction
            conn_.exec_plain("COMMIT", what);
            last_whole_batches_ = sink.batches();
        } catch (...) {
            rollback_quietly();
            throw;
        }
        return true;
    }

    /// Moves each session of ids to the trash (sets its deleted_at), in order, each
    /// under its lease (session_busy while another writer holds it; allowed while this
    /// object holds it, and the lease then ends). With stale_before, a session pinned or
    /// updated at or after stale_before is left (kept_because says which), decided in
    /// the same statement as the move. Throws nothing but std::bad_alloc: each session's
    /// failure (invalid_session_id, session_not_found, session_busy, storage_error) is
    /// its outcome's error. A trashed session keeps its row: the move is one UPDATE.
    std::vector<trash_outcome> trash(std::span<const session_id> ids, time_point deleted_at,
                                     const std::optional<time_point>& stale_before) {
        std::vector<trash_outcome> out;
        out.reserve(ids.size());
        const auto at = detail::pg_millis(deleted_at);
        const auto stale = stale_before ? detail::pg_millis(*stale_before) : std::string();
        for (const auto& id : ids) {
            trash_outcome& o = out.emplace_back();
            o.id = id;
            try {
                {
                    lease_guard unlock_after = lease_for_change(id);
                    auto r = conn_.run(detail::pg_statement::trash,
                                       {channel_.c_str(), id.c_str(), at.c_str(),
                                        stale_before ? stale.c_str() : nullptr},
                                       "cannot move session '" + id + "' to the trash");
                    o.moved = detail::pg_connection::affected(r) == 1;
                    if (!o.moved) {
                        const auto now = find_meta(id); // under the lease: as the UPDATE saw it
                        if (!now)
                            throw session_not_found(id, server());
                        o.kept_because =
                            now->pinned ? "it is pinned" : "it was saved into since it was listed";
                    }
                }
                if (o.moved)
                    close(id); // a lease held here (or lost with a connection) ends
            } catch (...) {
                o.error = std::current_exception();
            }
        }
        return out;
    }

    /// Makes the trashed session `id` live again, under its id, and returns its metadata.
    /// Needs no lease (no writer can open a trashed session). Throws invalid_session_id,
    /// session_not_found (not in the trash), storage_error. (Never session_exists: a
    /// trashed session keeps its id, so no live session can have it.)
    session_meta restore(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        auto r = conn_.run(detail::pg_statement::restore, {channel_.c_str(), id.c_str()},
                           "cannot restore session '" + id + "'");
        if (PQntuples(r.get()) == 0)
            throw session_not_found(id, server() + " (the trash)");
        return detail::pg_read_meta(r.get(), 0);
    }

    /// Every trashed session of this store's channel, with when it was trashed. Throws
    /// storage_error.
    std::vector<trashed_session> list_trash() {
        ensure_connected();
        auto r = conn_.run(detail::pg_statement::list_trash, {channel_.c_str()},
                           "cannot list the trash of channel '" + channel_ + "'");
        std::vector<trashed_session> out;
        const int rows = PQntuples(r.get());
        out.reserve(static_cast<std::size_t>(rows));
        for (int i = 0; i < rows; ++i) {
            trashed_session t;
            t.meta = detail::pg_read_meta(r.get(), i);
            t.deleted_at = time_point{std::chrono::milliseconds{
                std::strtoll(PQgetvalue(r.get(), i, detail::pg_meta_columns), nullptr, 10)}};
            out.push_back(std::move(t));
        }
        return out;
    }

    /// Deletes for good the trashed session `id` trashed at deleted_at (to the
    /// millisecond), with its records (by cascade), in one statement. Throws
    /// invalid_session_id, session_not_found (no such trashed session), storage_error.
    void purge(const session_id& id, time_point deleted_at) {
        validate_session_id(id);
        ensure_connected();
        const auto at = detail::pg_millis(deleted_at);
        auto r = conn_.run(detail::pg_statement::purge, {channel_.c_str(), id.c_str(), at.c_str()},
                           "cannot purge session '" + id + "'");
        if (detail::pg_connection::affected(r) == 0)
            throw session_not_found(id, server() + " (the trash)");
    }

    /// The statements with records that the last successful create_whole() sent.
    std::size_t last_create_whole_batches() const noexcept { return last_whole_batches_; }

    // --- beyond the policy ------------------------------------------------------------

    /// The server, as errors name it: host:port/dbname (never the password).
    const std::string& server() const noexcept { return conn_.server(); }
    const std::string& channel() const noexcept { return channel_; }
    const postgres_options& options() const noexcept { return options_; }

    /// Store-level events since the last call, as jsonl_store::take_diagnostics()
    /// (this store has none to report: the server repairs what a crash left).
    std::vector<diagnostic> take_diagnostics() { return {}; }

    /// Throws storage_error, naming the server, unless this connection's role may
    /// create and save sessions. Call it before taking user input.
    void check_writable() {
        ensure_connected();
        auto r = conn_.exec_plain("SELECT has_table_privilege('dexter_sessions', 'INSERT, UPDATE') "
                                  "AND has_table_privilege('dexter_records', 'INSERT') "
                                  "AND NOT pg_is_in_recovery() "
                                  "AND current_setting('transaction_read_only') = 'off'",
                                  "cannot check whether sessions can be saved");
        if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t")
            throw storage_error("the session store is read-only (a standby, a read-only "
                                "transaction default, or a role without INSERT on "
                                "dexter_sessions and dexter_records)",
                                server());
    }

private:
    template <bool CheckUtf8>
    bool create_session(const session_meta& m) {
        validate_session_id(m.id);
        const auto em = detail::pg_encode_meta<CheckUtf8>(m, options_.max_record_bytes,
                                                          "session '" + m.id + "'");
        ensure_connected();
        const bool held_before = holds(m.id);
        if (!held_before && !try_lock(m.id))
            return false; // another writer has that id
        lease_guard unlock_unless_created(*this, held_before ? nullptr : &m.id);
        const auto created = detail::pg_millis(m.created_at),
                   updated = detail::pg_millis(m.updated_at);
        const auto origin_seq = m.forked_from ? std::to_string(m.forked_from->seq) : std::string();
        auto r = conn_.run(detail::pg_statement::create,
                           {channel_.c_str(), m.id.c_str(), em.title.c_str(), em.title_json_param(),
                            created.c_str(), updated.c_str(), em.extra.c_str(),
                            m.pinned ? "true" : "false",
                            m.forked_from ? m.forked_from->id.c_str() : nullptr,
                            m.forked_from ? origin_seq.c_str() : nullptr},
                           "cannot create session '" + m.id + "'");
        if (detail::pg_connection::affected(r) == 0)
            return false;
        unlock_unless_created.release();
        leases_[m.id] = true;
        return true;
    }

    template <bool CheckUtf8>
    void append_exchange(const session_id& id, const exchange& ex) {
        validate_session_id(id);
        record_.clear();
        const bool record_utf8 = detail::encode_exchange<CheckUtf8>(record_, ex);
        if (!record_.empty() && record_.back() == '\n')
            record_.pop_back();
        const std::string what = "exchange " + std::to_string(ex.seq) + " of session '" + id + "'";
        detail::check_record(record_, record_utf8, options_.max_record_bytes, what);
        require_lease(id);
        const auto seq = std::to_string(ex.seq), updated = detail::pg_millis(ex.timestamp);
        auto r =
            conn_.run(detail::pg_statement::append,
                      {channel_.c_str(), id.c_str(), seq.c_str(), updated.c_str(), record_.c_str()},
                      "cannot save " + what);
        if (detail::pg_connection::affected(r) == 1)
            return;
        const auto now = find_meta(id);
        if (!now)
            throw session_not_found(id, server());
        throw detail::seq_does_not_follow(id, ex.seq, now->exchange_count, server());
    }

    // Releases a lease just taken, unless release() is called first (the lease is then
    // kept). A null id: nothing to release (the lease was held before).
    class lease_guard {
    public:
        lease_guard(postgres_store& s, const session_id* id)
            : s_(s), id_(id), held_before_(id == nullptr) {}
        lease_guard(const lease_guard&) = delete;
        lease_guard& operator=(const lease_guard&) = delete;
        ~lease_guard() {
            if (id_)
                s_.unlock_quietly(*id_);
        }
        void release() noexcept { id_ = nullptr; }
        // True when this object held the lease already, and the guard releases nothing.
        bool held_before() const noexcept { return held_before_; }

    private:
        postgres_store& s_;
        const session_id* id_;
        bool held_before_;
    };

    // The lease on `id` for a change, after checking the id and reconnecting if needed:
    // taken here (released when the guard ends, unless release() is called first), or
    // held by this object already (then left as it is). Throws invalid_session_id,
    // session_busy (another writer holds it), storage_error.
    lease_guard lease_for_change(const session_id& id) {
        validate_session_id(id);
        ensure_connected();
        const bool held_before = holds(id);
        if (!held_before && !try_lock(id))
            throw busy(id);
        return lease_guard(*this, held_before ? nullptr : &id);
    }

    // --- connection -----------------------------------------------------------------

    // Ends a failed transaction; a lost connection ended it already.
    void rollback_quietly() noexcept {
        try {
            if (conn_.connected())
                conn_.exec_plain("ROLLBACK", "cannot roll back");
        } catch (...) {
            // The server rolls back with the connection at the latest.
        }
    }

    // Reconnects if the connection was lost (a failed call noticed it), and takes back
    // every lease held before: one that another writer took meanwhile is lost (false),
    // and writing to it throws session_busy.
    void ensure_connected() {
        if (conn_.connected())
            return;
        conn_.connect();
        try {
            for (auto& [id, held] : leases_)
                held = try_lock(id);
        } catch (...) {
            conn_.disconnect(); // half set up: the next call starts again
            throw;
        }
    }

    // --- leases ---------------------------------------------------------------------

    bool holds(const session_id& id) const {
        auto it = leases_.find(id);
        return it != leases_.end() && it->second;
    }

    bool try_lock(const session_id& id) {
        const auto k = detail::pg_lease_keys(channel_, id);
        auto r = conn_.run(detail::pg_statement::lock, {k[0].c_str(), k[1].c_str()},
                           "cannot take the lease on session '" + id + "'");
        return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
    }

    void unlock_quietly(const session_id& id) noexcept {
        try {
            if (!conn_.connected())
                return; // gone with it
            const auto k = detail::pg_lease_keys(channel_, id);
            conn_.run(detail::pg_statement::unlock, {k[0].c_str(), k[1].c_str()},
                      "cannot release the lease on session '" + id + "'");
        } catch (...) {
            // The lease ends with the connection at the latest.
        }
    }

    // Before a write: the session must be open here, over the current connection.
    void require_lease(const session_id& id) {
        auto it = leases_.find(id);
        if (it == leases_.end())
            throw detail::not_open_for_writing(id, server());
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
        std::string where = server();
        try {
            const auto k = detail::pg_lease_keys(channel_, id);
            auto r = conn_.run(detail::pg_statement::holder, {k[0].c_str(), k[1].c_str()},
                               "cannot look up the holder of session '" + id + "'");
            if (PQntuples(r.get()) == 1 && !PQgetisnull(r.get(), 0, 0)) {
                if (const auto holder =
                        detail::pg_parse_application_name(PQgetvalue(r.get(), 0, 0))) {
                    if (holder->host == detail::pg_host_name().substr(0, holder->host.size()))
                        pid = holder->pid;
                    else
                        where += " (held by process " + std::to_string(holder->pid) + " on host " +
                                 holder->host + ")";
                }
            }
        } catch (const storage_error&) {
            // Unknown holder: the error still says the session is busy.
        }
        return session_busy(id, where, pid);
    }

    // --- values ---------------------------------------------------------------------

    std::optional<session_meta> find_meta(const session_id& id) {
        auto r = conn_.run(detail::pg_statement::find, {channel_.c_str(), id.c_str()},
                           "cannot look up session '" + id + "'");
        if (PQntuples(r.get()) == 0)
            return std::nullopt;
        return detail::pg_read_meta(r.get(), 0);
    }

    detail::pg_connection conn_;
    std::string channel_;
    postgres_options options_;
    std::map<session_id, bool> leases_; ///< sessions open here; false: lost with a connection
    std::string record_;
    std::size_t last_whole_batches_ = 0;
};

static_assert(session_storage<postgres_store>);
static_assert(streams_exchanges<postgres_store> && streams_records<postgres_store> &&
              searches_text<postgres_store> && pages_sessions<postgres_store>);
static_assert(creates_whole_sessions<postgres_store> && keeps_trash<postgres_store>);
static_assert(verifies_sessions<postgres_store> && repairs_sessions<postgres_store>);

} // namespace dexter::sessions
