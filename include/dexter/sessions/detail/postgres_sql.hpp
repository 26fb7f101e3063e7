// SPDX-License-Identifier: BSL-1.0
// The PostgreSQL store's tables and the statements on them: the schema text, each
// statement's SQL, the values the statements take (lease keys, times, a session's
// title and extra, the record limit) and the rows they return (metadata, records).
// Needs libpq's header (PGresult), but no server: nothing here connects.
//
// Schema (version 2), created by the first store that finds none, in one transaction
// under pg_advisory_xact_lock, in the first schema of the connection's search_path (a
// database of version 1, made by dexter-sessions 0.1, is migrated in that same
// transaction: pg_migrate_v1_to_v2):
//
//   dexter_sessions_schema (version integer)        one row; a newer version than this
//                                                   code knows is refused (format_error)
//   dexter_sessions (channel, id) PRIMARY KEY       title text, title_json json,
//                                                   created_at, updated_at timestamptz,
//                                                   exchange_count bigint, extra json,
//                                                   pinned boolean, forked_from_id text,
//                                                   forked_from_seq bigint, deleted_at
//                                                   timestamptz (NULL: live; else in the
//                                                   trash, keeping its id);
//                                                   index dexter_sessions_recent (channel,
//                                                   updated_at DESC, id) of the live ones
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
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>

#include <libpq-fe.h>

#include <boost/json/parse.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// The schema version this library creates and reads.
inline constexpr int postgres_schema_version = 2;

/// The two int4 advisory-lock keys of a session, as decimal text for the lock, unlock
/// and holder statements: 62 bits of FNV-1a over "dexter-sessions/<channel>/<id>", each
/// key in 0..2^31-1. The same for the same session in every process and every version
/// of this library (two versions must exclude each other); different for different
/// sessions, but for the rare collision (which makes two sessions share a lease, never
/// their data).
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

/// Milliseconds since the epoch (negative before 1970), as decimal text for the
/// statements' bigint parameters.
inline std::string pg_millis(time_point t) {
    return std::to_string(t.time_since_epoch().count());
}

/// The statements, prepared once per connection. Each names its columns in the order
/// the code reads them. pg_sql holds the text of each, by its value; count is the
/// number of statements.
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
    stream,
    page,
    search,
    exists,
    whole_records,
    whole_finish,
    trash,
    restore,
    list_trash,
    purge,
    verify_sessions,
    verify_gaps,
    count
};

/// Whether statement `s` is run unprepared (pg_connection::run_unprepared): page and
/// search, whose best plan depends on their parameters. A prepared statement may get a
/// generic plan after a few runs, which cannot see that a cursor is at the start or
/// how rare a title is, and may then sort every session of the channel where the index
/// would give them in order.
constexpr bool pg_planned_per_call(pg_statement s) noexcept {
    return s == pg_statement::page || s == pg_statement::search;
}

/// Most rows a read-side statement (stream, page, search) returns at a time: what the
/// store holds of a session while it streams or searches it.
inline constexpr std::size_t pg_page_rows = 64;

// Metadata columns: title, title_json, created_at, updated_at (ms), exchange_count, extra, id,
// pinned, forked_from_id, forked_from_seq.
#define DEXTER_SESSIONS_PG_META_COLUMNS                                                            \
    "s.title, s.title_json::text, (extract(epoch FROM s.created_at) * 1000)::bigint, "             \
    "(extract(epoch FROM s.updated_at) * 1000)::bigint, s.exchange_count, s.extra::text, s.id, "   \
    "s.pinned, s.forked_from_id, s.forked_from_seq"
#define DEXTER_SESSIONS_PG_MILLIS(n)                                                               \
    "('epoch'::timestamptz + $" #n "::bigint * interval '1 millisecond')"
// The cursor's updated_at ($2, in ms); +infinity when NULL (the first page).
#define DEXTER_SESSIONS_PG_CURSOR_AT "coalesce(" DEXTER_SESSIONS_PG_MILLIS(2) ", 'infinity')"
// A record that may hold the search text: its JSON text contains the escaped text ($p, a
// pattern of pg_contains_pattern(pg_json_needle(text))), ASCII letters folded (COLLATE "C":
// ILIKE folds nothing else), or it holds a \u or \/ escape, behind which the text may hide.
// A CASE, like the page statement's title filter, so that the planner does not guess from
// the pattern that few records match and read them all to sort the few.
#define DEXTER_SESSIONS_PG_CANDIDATE(p)                                                            \
    "CASE WHEN r.record::text COLLATE \"C\" ILIKE $" #p " THEN true "                              \
    "WHEN strpos(r.record::text, E'\\\\u') > 0 THEN true "                                         \
    "ELSE strpos(r.record::text, E'\\\\/') > 0 END"

inline constexpr std::array<const char*, static_cast<std::size_t>(pg_statement::count)> pg_sql = {
    // find: $1 channel, $2 id (a live session)
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS
    " FROM dexter_sessions s WHERE s.channel = $1 AND s.id = $2 AND s.deleted_at IS NULL",
    // list: $1 channel (the live sessions, newest first, from the index)
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS " FROM dexter_sessions s WHERE s.channel = $1 "
    "AND s.deleted_at IS NULL ORDER BY s.updated_at DESC, s.id",
    // create: $1 channel, $2 id, $3 title, $4 title_json, $5 created_at, $6 updated_at, $7 extra,
    // $8 pinned, $9 forked_from_id, $10 forked_from_seq (NULL: not a fork); nothing when the id
    // is taken, by a live or a trashed session
    "INSERT INTO dexter_sessions (channel, id, title, title_json, created_at, updated_at, "
    "exchange_count, extra, pinned, forked_from_id, forked_from_seq) VALUES ($1, $2, $3, "
    "$4::json, " DEXTER_SESSIONS_PG_MILLIS(5) ", " DEXTER_SESSIONS_PG_MILLIS(
        6) ", 0, $7::json, $8::boolean, "
           "$9, $10::bigint) ON CONFLICT DO NOTHING",
    // append: $1 channel, $2 id, $3 seq, $4 the exchange's timestamp, $5 record; updated_at
    // as apply_exchange() derives it. One statement, one
    // transaction: nothing is inserted unless the session's count is seq - 1.
    "WITH s AS (UPDATE dexter_sessions SET exchange_count = $3::bigint, "
    "updated_at = greatest(updated_at, created_at, " DEXTER_SESSIONS_PG_MILLIS(
        4) ") "
           "WHERE channel = $1 AND id = $2 AND exchange_count = $3::bigint - 1 "
           "AND deleted_at IS NULL RETURNING channel, "
           "id) "
           "INSERT INTO dexter_records (channel, session_id, seq, record) "
           "SELECT channel, id, $3::bigint, $5::json FROM s",
    // update: $1 channel, $2 id, $3 title, $4 title_json, $5 extra, $6 pinned
    "UPDATE dexter_sessions SET title = $3, title_json = $4::json, extra = $5::json, "
    "pinned = $6::boolean WHERE channel = $1 AND id = $2 AND deleted_at IS NULL",
    // load: $1 channel, $2 id, $3 how many (NULL: all); metadata and records, newest
    // first, in one snapshot
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS ", r.seq, r.record::text FROM dexter_sessions s "
    "LEFT JOIN LATERAL (SELECT seq, record FROM dexter_records "
    "WHERE channel = s.channel AND session_id = s.id ORDER BY seq DESC LIMIT $3::bigint) r "
    "ON true WHERE s.channel = $1 AND s.id = $2 AND s.deleted_at IS NULL ORDER BY r.seq DESC",
    // remove: $1 channel, $2 id (a live session; its records go by cascade)
    "DELETE FROM dexter_sessions WHERE channel = $1 AND id = $2 AND deleted_at IS NULL",
    // lock, unlock: $1, $2 the lease keys
    "SELECT pg_try_advisory_lock($1::integer, $2::integer)",
    "SELECT pg_advisory_unlock($1::integer, $2::integer)",
    // holder: $1, $2 the lease keys
    "SELECT a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid = $1::oid AND l.objid = $2::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.pid <> pg_backend_pid() LIMIT 1",
    // clang-format off
    // stream: $1 channel, $2 id, $3 from, $4 through, $5 how many; a page of records in
    // seq order (the next page starts after the last seq)
    "SELECT seq, record::text FROM dexter_records WHERE channel = $1 AND session_id = $2 "
    "AND seq >= $3::bigint AND seq <= $4::bigint AND EXISTS (SELECT 1 FROM dexter_sessions "
    "WHERE channel = $1 AND id = $2 AND deleted_at IS NULL) ORDER BY seq LIMIT $5::bigint",
    // page: $1 channel, $2 $3 the cursor (updated_at in ms, id; NULL: the first page), $4 a
    // title pattern of pg_contains_pattern (NULL: every title), $5 how many; the sessions
    // with an exchange after the cursor, newest first, read in order from the index
    // dexter_sessions_recent. A title holding U+0000 (title shows it as U+FFFD) is always
    // returned: the caller matches the exact one. The CASE hides the pattern from the
    // planner, which guesses from its length that few titles match and would then read
    // every session of the channel to sort the few, rather than read the index in order
    // and stop when the page is full.
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS " FROM dexter_sessions s "
    "WHERE s.channel = $1 AND s.exchange_count > 0 AND s.deleted_at IS NULL "
    "AND s.updated_at <= " DEXTER_SESSIONS_PG_CURSOR_AT " "
    "AND (s.updated_at < " DEXTER_SESSIONS_PG_CURSOR_AT " OR s.id > $3) "
    "AND CASE WHEN $4::text IS NULL THEN true WHEN s.title COLLATE \"C\" ILIKE $4 THEN true "
    "ELSE s.title_json IS NOT NULL END "
    "ORDER BY s.updated_at DESC, s.id LIMIT $5::bigint",
    // search: $1 channel, $2 $3 $4 the cursor (updated_at in ms, id, seq; NULL: the start),
    // $5 the record pattern, $6 how many; the candidate records of the sessions with an
    // exchange, the sessions newest first (read in order from the index), each one's
    // records by seq: id, title, title_json, updated_at (ms), seq, record. The LIMIT in
    // the lateral subquery keeps it one: the records are read session by session on the
    // primary key, never joined wholesale, so a page costs what it returns.
    "SELECT s.id, s.title, s.title_json::text, (extract(epoch FROM s.updated_at) * 1000)::bigint, "
    "r.seq, r.record::text FROM dexter_sessions s CROSS JOIN LATERAL "
    "(SELECT seq, record FROM dexter_records r WHERE r.channel = s.channel AND r.session_id = s.id "
    "AND r.seq > CASE WHEN s.updated_at = " DEXTER_SESSIONS_PG_MILLIS(2) " AND s.id = $3 "
    "THEN $4::bigint ELSE 0 END "
    "AND " DEXTER_SESSIONS_PG_CANDIDATE(5) " ORDER BY seq LIMIT $6::bigint) r "
    "WHERE s.channel = $1 AND s.exchange_count > 0 AND s.deleted_at IS NULL "
    "AND s.updated_at <= " DEXTER_SESSIONS_PG_CURSOR_AT " "
    "AND (s.updated_at < " DEXTER_SESSIONS_PG_CURSOR_AT " OR s.id >= $3) "
    "ORDER BY s.updated_at DESC, s.id, r.seq LIMIT $6::bigint",
    // exists: $1 channel, $2 id; a row when the id is taken (by a live or a trashed session)
    "SELECT 1 FROM dexter_sessions WHERE channel = $1 AND id = $2",
    // whole_records: $1 channel, $2 id, $3 seqs, $4 records (array literals, pg_array_literal)
    "INSERT INTO dexter_records (channel, session_id, seq, record) "
    "SELECT $1, $2, t.seq, t.record::json FROM unnest($3::bigint[], $4::text[]) AS t(seq, record)",
    // whole_finish: $1 channel, $2 id, $3 title, $4 title_json, $5 extra, $6 pinned,
    // $7 exchange_count, $8 updated_at; the end of create_whole, in its transaction
    "UPDATE dexter_sessions SET title = $3, title_json = $4::json, extra = $5::json, "
    "pinned = $6::boolean, exchange_count = $7::bigint, updated_at = " DEXTER_SESSIONS_PG_MILLIS(8)
    " WHERE channel = $1 AND id = $2",
    // trash: $1 channel, $2 id, $3 deleted_at, $4 stale_before (NULL: none); the live session,
    // unless (with $4) pinned or updated since $4, decided in this one statement
    "UPDATE dexter_sessions SET deleted_at = " DEXTER_SESSIONS_PG_MILLIS(3)
    " WHERE channel = $1 AND id = $2 AND deleted_at IS NULL AND ($4::bigint IS NULL OR "
    "(NOT pinned AND updated_at < " DEXTER_SESSIONS_PG_MILLIS(4) "))",
    // restore: $1 channel, $2 id; the trashed session made live, its metadata
    "UPDATE dexter_sessions AS s SET deleted_at = NULL WHERE s.channel = $1 AND s.id = $2 "
    "AND s.deleted_at IS NOT NULL RETURNING " DEXTER_SESSIONS_PG_META_COLUMNS,
    // list_trash: $1 channel; the trashed sessions and when each was trashed (ms)
    "SELECT " DEXTER_SESSIONS_PG_META_COLUMNS ", (extract(epoch FROM s.deleted_at) * 1000)::bigint "
    "FROM dexter_sessions s WHERE s.channel = $1 AND s.deleted_at IS NOT NULL",
    // purge: $1 channel, $2 id, $3 deleted_at (ms); the trashed session and, by cascade, its
    // records
    "DELETE FROM dexter_sessions WHERE channel = $1 AND id = $2 AND deleted_at IS NOT NULL "
    "AND (extract(epoch FROM deleted_at) * 1000)::bigint = $3::bigint",
    // verify_sessions: $1 channel, $2 id (NULL: every one); each live session's id, the
    // exchange count its row says, how many records it has, and its highest seq (0: none)
    "SELECT s.id, s.exchange_count, count(r.seq), coalesce(max(r.seq), 0)"
    " FROM dexter_sessions s LEFT JOIN dexter_records r"
    " ON r.channel = s.channel AND r.session_id = s.id"
    " WHERE s.channel = $1 AND s.deleted_at IS NULL AND ($2::text IS NULL OR s.id = $2)"
    " GROUP BY s.id, s.exchange_count ORDER BY s.id",
    // verify_gaps: $1 channel, $2 id (NULL: every one); each hole in the seqs of a live
    // session's records: the session, the first and the last missing seq
    "SELECT session_id, prev + 1, seq - 1 FROM ("
    " SELECT r.session_id, r.seq,"
    " lag(r.seq, 1, 0::bigint) OVER (PARTITION BY r.session_id ORDER BY r.seq) AS prev"
    " FROM dexter_records r JOIN dexter_sessions s"
    " ON s.channel = r.channel AND s.id = r.session_id AND s.deleted_at IS NULL"
    " WHERE r.channel = $1 AND ($2::text IS NULL OR r.session_id = $2)) AS q"
    " WHERE seq > prev + 1 ORDER BY session_id, seq",
    // clang-format on
};

#undef DEXTER_SESSIONS_PG_META_COLUMNS
#undef DEXTER_SESSIONS_PG_MILLIS
#undef DEXTER_SESSIONS_PG_CURSOR_AT
#undef DEXTER_SESSIONS_PG_CANDIDATE

/// A LIKE pattern that matches any text containing `text`: `%`, `_` and `\` (LIKE's
/// escape character) escaped with `\`, between two `%`.
inline std::string pg_contains_pattern(std::string_view text) {
    std::string p = "%";
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\')
            p += '\\';
        p += c;
    }
    p += '%';
    return p;
}

/// `text` as a record written by encode_exchange() holds it inside a JSON string: the
/// string's content, without the quotes. `text` is valid UTF-8.
inline std::string pg_json_needle(std::string_view text) {
    std::string s;
    append_json_string(s, text);
    return s.substr(1, s.size() - 2);
}

/// Schema version 1 (the tables above), several statements in one string, run in the
/// one transaction that creates the schema.
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

/// From schema version 1 (dexter-sessions 0.1) to version 2: pins, forks and the trash.
/// Run in the transaction of pg_connection's schema setup, under its lock; every
/// session stays, live and not pinned. The index that serves the listings keeps only
/// the live sessions (each statement reading it says deleted_at IS NULL).
inline constexpr const char* pg_migrate_v1_to_v2 =
    "ALTER TABLE dexter_sessions"
    " ADD COLUMN IF NOT EXISTS pinned boolean NOT NULL DEFAULT false,"
    " ADD COLUMN IF NOT EXISTS forked_from_id text,"
    " ADD COLUMN IF NOT EXISTS forked_from_seq bigint,"
    " ADD COLUMN IF NOT EXISTS deleted_at timestamptz;"
    "DROP INDEX IF EXISTS dexter_sessions_recent;"
    "CREATE INDEX dexter_sessions_recent ON dexter_sessions (channel, updated_at DESC, id)"
    " WHERE deleted_at IS NULL;"
    "UPDATE dexter_sessions_schema SET version = 2;";

/// `values` as the text of a PostgreSQL array literal of text ({"a","b"}): each element
/// quoted, with `"` and `\` escaped by `\`. The elements hold no U+0000.
inline std::string pg_array_literal(const std::vector<std::string>& values) {
    std::string out = "{";
    for (const auto& v : values) {
        if (out.size() > 1)
            out += ',';
        out += '"';
        for (char c : v) {
            if (c == '"' || c == '\\')
                out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

/// A session's title and extra as the create and update statements take them.
struct pg_meta_params {
    std::string title;      // as text: U+0000 shown as U+FFFD
    std::string title_json; // the exact title as JSON when it holds U+0000, else ""
    std::string extra;
    /// The title_json parameter: SQL NULL (nullptr) unless the title holds U+0000.
    const char* title_json_param() const {
        return title_json.empty() ? nullptr : title_json.c_str();
    }
};

/// The parameters of `m`'s title and extra. Throws invalid_input (as check_record,
/// naming `what`) when either is not valid UTF-8 (not checked with `CheckUtf8` false:
/// text checked before) or its JSON is over `max_bytes`.
template <bool CheckUtf8 = true>
inline pg_meta_params pg_encode_meta(const session_meta& m, std::size_t max_bytes,
                                     const std::string& what) {
    pg_meta_params e;
    std::string title_json;
    bool ok = append_json_string<CheckUtf8>(title_json, m.title);
    ok = append_json_value<CheckUtf8>(e.extra, m.extra) && ok;
    check_record(title_json.size() > e.extra.size() ? title_json : e.extra, ok, max_bytes, what);
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

/// The exact title in `row` of `r`: column `json_col` (title_json) when it is not NULL
/// and holds a JSON string, else column `title_col` (title).
inline std::string pg_read_title(const PGresult* r, int row, int title_col, int json_col) {
    if (!PQgetisnull(r, row, json_col)) {
        boost::system::error_code ec;
        const auto v =
            json::parse(std::string_view(PQgetvalue(r, row, json_col),
                                         static_cast<std::size_t>(PQgetlength(r, row, json_col))),
                        ec);
        if (!ec && v.is_string())
            return std::string(v.get_string().data(), v.get_string().size());
    }
    return std::string(PQgetvalue(r, row, title_col),
                       static_cast<std::size_t>(PQgetlength(r, row, title_col)));
}

/// The number of metadata columns (DEXTER_SESSIONS_PG_META_COLUMNS) at the start of a
/// find, list, load, page, restore or list_trash row.
inline constexpr int pg_meta_columns = 10;

/// The metadata in columns 0-9 of `row` of a find, list or load result (the metadata
/// columns, in their order: title, title_json, created_at, updated_at, exchange_count,
/// extra, id, pinned, forked_from_id, forked_from_seq). title_json, when not NULL and a
/// JSON string, is the exact title; an extra that is not a JSON object is left empty;
/// forked_from is set when forked_from_id is not NULL.
inline session_meta pg_read_meta(const PGresult* r, int row) {
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
    m.title = pg_read_title(r, row, 0, 1);
    m.created_at = millis(2);
    m.updated_at = millis(3);
    m.exchange_count = std::strtoull(PQgetvalue(r, row, 4), nullptr, 10);
    boost::system::error_code ec;
    auto extra = json::parse(text(5), ec);
    if (!ec && extra.is_object())
        m.extra = std::move(extra.get_object());
    m.pinned = std::string_view(PQgetvalue(r, row, 7)) == "t";
    if (!PQgetisnull(r, row, 8))
        m.forked_from =
            session_origin{std::string(text(8)), std::strtoull(PQgetvalue(r, row, 9), nullptr, 10)};
    return m;
}

/// The exchange in a stored record (the text of the `record` column of row `seq`), or
/// nothing, with a diagnostic (line 0, "record <seq>: <why>: skipped") appended to
/// `diags`, when the text is not an exchange record holding that very seq.
inline std::optional<exchange> pg_read_record(std::string_view text, std::uint64_t seq,
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
    const auto* type = member(v.get_object(), "type");
    if (!type || !type->is_string() || type->get_string() != "exchange")
        return skip("not an exchange record");
    auto ex = read_exchange(v.get_object());
    if (!ex)
        return skip("bad exchange: " + ex.error().what);
    if (ex->seq != seq)
        return skip("holds seq " + std::to_string(ex->seq) + " in row " + std::to_string(seq));
    return std::move(*ex);
}

} // namespace dexter::sessions::detail
