// SPDX-License-Identifier: BSL-1.0
// Verifying the PostgreSQL store (postgres_store::verify, verify_all): what can be wrong
// in the database, found by SQL where it can be (holes in seq, session rows whose
// exchange count their records do not bear out), and each record decoded as a load
// decodes it, a page at a time (pg_for_each_record), so that memory stays bounded.
// Records without their session cannot exist (a foreign key); a schema newer than this
// code is refused when connecting (format_error), and reported when it appeared since.
// Nothing is written.
#pragma once

#include <dexter/sessions/detail/postgres_connection.hpp>
#include <dexter/sessions/detail/postgres_read.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/verify.hpp>

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace dexter::sessions::detail {

/// Verifies the live sessions of `channel` (only session `only`, when given). Throws
/// storage_error when a statement fails.
inline store_verify_report pg_verify(pg_connection& conn, const std::string& channel,
                                     const std::optional<session_id>& only) {
    store_verify_report out;
    const char* id = only ? only->c_str() : nullptr;
    auto number = [](const pg_result_ptr& r, int row, int col) {
        return std::strtoull(PQgetvalue(r.get(), row, col), nullptr, 10);
    };
    {
        // Connecting refuses a newer schema; this catches one installed since.
        auto v = conn.exec_plain("SELECT max(version) FROM dexter_sessions_schema",
                                 "cannot read the schema version");
        const long version =
            PQgetisnull(v.get(), 0, 0) ? 0 : std::strtol(PQgetvalue(v.get(), 0, 0), nullptr, 10);
        if (version > postgres_schema_version) {
            out.problems.push_back("the database holds dexter-sessions schema version " +
                                   std::to_string(version) + ", newer than this library knows (" +
                                   std::to_string(postgres_schema_version) +
                                   "); nothing else was checked");
            return out;
        }
    }
    std::map<session_id, std::size_t> at;
    {
        auto r = conn.run(pg_statement::verify_sessions, {channel.c_str(), id},
                          "cannot verify the sessions");
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            verify_report v;
            v.id = PQgetvalue(r.get(), i, 0);
            const std::uint64_t said = number(r, i, 1), records = number(r, i, 2),
                                last = number(r, i, 3);
            v.records = records;
            v.exchange_count = last;
            if (said != last)
                v.index_mismatch.push_back(
                    "the session row says " + std::to_string(said) + " exchanges, " +
                    (records == 0 ? std::string("and it has no record")
                                  : "and its records end at seq " + std::to_string(last)));
            at.emplace(v.id, out.sessions.size());
            out.sessions.push_back(std::move(v));
        }
    }
    {
        auto r = conn.run(pg_statement::verify_gaps, {channel.c_str(), id},
                          "cannot verify the sessions");
        for (int i = 0; i < PQntuples(r.get()); ++i)
            if (const auto it = at.find(PQgetvalue(r.get(), i, 0)); it != at.end())
                out.sessions[it->second].gaps.push_back({number(r, i, 1), number(r, i, 2)});
    }
    // Each record as a load reads it: the holes are known from the SQL above.
    for (auto& v : out.sessions)
        for (auto& d :
             pg_for_each_record(conn, channel, v.id, 1, std::numeric_limits<std::uint64_t>::max(),
                                [](exchange&&, std::string_view) { return true; }))
            if (d.kind != diagnostic_kind::missing_exchanges)
                v.damaged.push_back(std::move(d));
    return out;
}

} // namespace dexter::sessions::detail
