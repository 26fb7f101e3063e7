// SPDX-License-Identifier: BSL-1.0
// The PostgreSQL store's read side (storage.hpp's streams_exchanges, searches_text and
// pages_sessions): a session's records streamed in pages, a search filtered by the
// server and decided here, and pages of sessions from the index. postgres_store
// validates ids and connects; these run the statements of postgres_sql.hpp on its
// connection.
//
// Every read pages with a keyset (the next statement starts after the last row of the
// one before), so the store holds at most pg_page_rows records at a time, and each
// statement is short. A search reads one snapshot. A stream runs the caller's code
// between its pages, so each page is a statement of its own: exchanges saved meanwhile
// may be seen, and a session deleted meanwhile ends the read. A page of sessions is one
// statement (more only when the title filter turns down titles holding U+0000).
#pragma once

#include <dexter/sessions/detail/postgres_connection.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// The largest seq or row count a bigint parameter takes.
inline constexpr std::uint64_t pg_bigint_max =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Column `col` of row `row` of `r`, as text.
inline std::string_view pg_text(const PGresult* r, int row, int col) {
    return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

/// Calls visit with each record of session `id` (of `channel`) with from <= seq <=
/// through, in seq order, a page of pg_page_rows records at a time, until visit returns
/// false. A record that cannot be read is skipped and reported, as load() does (line 0,
/// "record <seq>: ..."), and so is a hole between two exchanges visited in a row.
/// Throws session_not_found when the session does not exist, storage_error, and what
/// visit throws.
inline std::vector<diagnostic> pg_for_each_record(pg_connection& conn, const std::string& channel,
                                                  const std::string& id, std::uint64_t from,
                                                  std::uint64_t through,
                                                  const record_visitor& visit) {
    std::vector<diagnostic> diags;
    std::uint64_t next = std::max<std::uint64_t>(from, 1);
    const std::uint64_t last = std::min(through, pg_bigint_max);
    const std::string limit = std::to_string(pg_page_rows);
    const std::string what = "cannot read session '" + id + "'";
    std::uint64_t prev = 0; // the last exchange visited
    for (bool first = true;; first = false) {
        pg_result_ptr r;
        int rows = 0;
        if (next <= last) {
            const std::string lo = std::to_string(next), hi = std::to_string(last);
            r = conn.run(pg_statement::stream,
                         {channel.c_str(), id.c_str(), lo.c_str(), hi.c_str(), limit.c_str()},
                         what);
            rows = PQntuples(r.get());
        }
        if (first && rows == 0) {
            // No record in the range: is there a session at all?
            auto f = conn.run(pg_statement::find, {channel.c_str(), id.c_str()}, what);
            if (PQntuples(f.get()) == 0)
                throw session_not_found(id, conn.server());
        }
        for (int i = 0; i < rows; ++i) {
            const std::uint64_t seq = std::strtoull(PQgetvalue(r.get(), i, 0), nullptr, 10);
            next = seq + 1;
            const std::string_view text = pg_text(r.get(), i, 1);
            auto ex = pg_read_record(text, seq, diags);
            if (!ex)
                continue;
            if (prev != 0 && ex->seq != prev + 1)
                diags.push_back({0, 0, missing_exchanges_reason(prev, ex->seq),
                                 diagnostic_kind::missing_exchanges});
            prev = ex->seq;
            // The record as the store wrote it (one line, this library's form), unless it
            // was edited into another form in the database.
            const bool as_written =
                canonical_exchange_seq(text) == seq && text.find('\n') == std::string_view::npos;
            if (!visit(std::move(*ex), as_written ? text : std::string_view()))
                return diags;
        }
        if (static_cast<std::size_t>(rows) < pg_page_rows)
            return diags;
    }
}

/// A read-only transaction on one snapshot (REPEATABLE READ), from construction to
/// destruction: a read of several statements sees the sessions as they were at its
/// first, so a session saved to meanwhile (which moves ahead of the cursor) is neither
/// missed nor seen twice. Only for reads that run no caller's code in between.
class pg_snapshot {
public:
    pg_snapshot(pg_connection& conn, const std::string& what) : conn_(conn) {
        conn_.exec_plain("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what);
    }
    pg_snapshot(const pg_snapshot&) = delete;
    pg_snapshot& operator=(const pg_snapshot&) = delete;
    ~pg_snapshot() {
        try {
            if (conn_.connected())
                conn_.exec_plain("ROLLBACK", "cannot end a read");
        } catch (...) {
            // Ends with the connection at the latest; nothing was written.
        }
    }

private:
    pg_connection& conn_;
};

/// Runs the page statement: the sessions with an exchange after `after` (nothing: from
/// the newest), newest first, at most `limit`, only those whose title may contain the
/// text of `pattern` (pg_contains_pattern; nothing: all).
inline pg_result_ptr pg_page_after(pg_connection& conn, const std::string& channel,
                                   const std::optional<list_cursor>& after,
                                   const std::optional<std::string>& pattern, std::size_t limit,
                                   const std::string& what) {
    const std::string at = after ? pg_millis(after->updated_at) : std::string();
    const std::string rows = std::to_string(limit);
    return conn.run(pg_statement::page,
                    {channel.c_str(), after ? at.c_str() : nullptr,
                     after ? after->id.c_str() : nullptr, pattern ? pattern->c_str() : nullptr,
                     rows.c_str()},
                    what);
}

/// The page `req` asks for, as page_of(list(), req) gives it (query.hpp), read in order
/// from the index dexter_sessions_recent: the statement returns the sessions after the
/// cursor, filtered by title with ILIKE under COLLATE "C" (ASCII letters folded, as
/// find_ignoring_ascii_case does), and page_admits() has the last word; when it turns
/// some down (a title holding U+0000), the next rows are read until the page is full.
/// One row more than the page tells whether there is a next one. Throws storage_error.
inline session_page pg_list_page(pg_connection& conn, const std::string& channel,
                                 const page_request& req) {
    session_page page;
    if (req.limit == 0)
        return page;
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(req.limit, pg_bigint_max - 1)) + 1;
    std::optional<std::string> pattern;
    if (!req.title_contains.empty())
        pattern = pg_contains_pattern(req.title_contains);
    const std::string what = "cannot list the sessions of channel '" + channel + "'";
    std::optional<list_cursor> after = req.after;
    std::vector<session_meta> found;
    for (;;) {
        const std::size_t asked = want - found.size();
        auto r = pg_page_after(conn, channel, after, pattern, asked, what);
        const int rows = PQntuples(r.get());
        for (int i = 0; i < rows; ++i) {
            auto m = pg_read_meta(r.get(), i);
            after = list_cursor{m.updated_at, m.id};
            if (page_admits(m, req))
                found.push_back(std::move(m));
        }
        if (found.size() == want || static_cast<std::size_t>(rows) < asked)
            break; // full, or no more rows
    }
    if (found.size() == want) {
        found.pop_back();
        page.next = list_cursor{found.back().updated_at, found.back().id};
    }
    page.sessions = std::move(found);
    return page;
}

/// The search `q` (query.hpp): the server picks candidates from the titles and the
/// records' JSON text; this code reads each one and decides on the text itself, with
/// match_title() and match_exchange(), the rule every store follows. Two passes in one
/// snapshot (pg_snapshot), each over the sessions with an exchange, newest-updated
/// first, read in order from the index, a page at a time:
///  1. the titles: the page statement with the text as title pattern;
///  2. the records: the search statement's candidates (DEXTER_SESSIONS_PG_CANDIDATE: the
///     record's JSON text contains the text escaped as encode_exchange() escapes it,
///     ASCII letters folded, or holds an escape behind which it may hide).
/// Each pass stops at the first session too old to hold one of the q.limit newest hits
/// (an exchange is never newer than its session's updated_at), as search_sessions()
/// does; the hits are those it gives. No query or answer text is ever extracted in SQL
/// (json ->> fails on a record holding U+0000). A candidate record that cannot be read
/// is skipped and reported. Throws invalid_input (check_search_query), storage_error.
inline search_result pg_search(pg_connection& conn, const std::string& channel,
                               const search_query& q) {
    check_search_query(q);
    const std::string what = "cannot search the sessions of channel '" + channel + "'";
    hit_collector hits(q.limit);
    search_result out;
    pg_snapshot snapshot(conn, what);

    // 1. Titles.
    const std::optional<std::string> title_pattern = pg_contains_pattern(q.text);
    std::optional<list_cursor> after;
    for (bool more = true; more;) {
        auto r = pg_page_after(conn, channel, after, title_pattern, pg_page_rows, what);
        const int rows = PQntuples(r.get());
        more = static_cast<std::size_t>(rows) == pg_page_rows;
        for (int i = 0; i < rows; ++i) {
            auto m = pg_read_meta(r.get(), i);
            if (hits.full_before(m.updated_at)) {
                more = false; // every title after it is older
                break;
            }
            if (auto t = match_title(m, q.text))
                hits.offer(std::move(*t));
            after = list_cursor{m.updated_at, std::move(m.id)};
        }
    }

    // 2. Records. The cursor is the last row's session (updated_at, id) and seq.
    const std::string record_pattern = pg_contains_pattern(pg_json_needle(q.text));
    const std::string limit = std::to_string(pg_page_rows);
    std::optional<std::string> at; // the cursor's updated_at (ms); nothing: the start
    std::string seq;
    session_meta meta; // the session of the row at hand (id, title, updated_at)
    for (bool more = true; more;) {
        auto r =
            conn.run(pg_statement::search,
                     {channel.c_str(), at ? at->c_str() : nullptr, at ? meta.id.c_str() : nullptr,
                      at ? seq.c_str() : nullptr, record_pattern.c_str(), limit.c_str()},
                     what);
        const int rows = PQntuples(r.get());
        more = static_cast<std::size_t>(rows) == pg_page_rows;
        for (int i = 0; i < rows; ++i) {
            if (!at || pg_text(r.get(), i, 0) != meta.id) {
                meta.id = std::string(pg_text(r.get(), i, 0));
                meta.title = pg_read_title(r.get(), i, 1, 2);
                at = std::string(pg_text(r.get(), i, 3));
                meta.updated_at =
                    time_point{std::chrono::milliseconds{std::strtoll(at->c_str(), nullptr, 10)}};
                if (hits.full_before(meta.updated_at)) {
                    more = false; // every record after it is older
                    break;
                }
            }
            seq = std::string(pg_text(r.get(), i, 4));
            std::vector<diagnostic> diags;
            const auto ex = pg_read_record(pg_text(r.get(), i, 5),
                                           std::strtoull(seq.c_str(), nullptr, 10), diags);
            for (auto& d : diags)
                out.diagnostics.push_back({meta.id, std::move(d)});
            if (ex)
                if (auto h = match_exchange(meta, *ex, q.text))
                    hits.offer(std::move(*h));
        }
    }
    out.hits = hits.take();
    return out;
}

} // namespace dexter::sessions::detail
