// SPDX-License-Identifier: BSL-1.0
// A plain libpq connection to the test server, for the postgres_store tests' changes and
// checks behind the store's back.
#pragma once

#include "postgres_server.hpp"

#include <libpq-fe.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace dexter::sessions::test {

/// A plain libpq connection for changes and checks behind the store's back.
class admin {
public:
    admin() : conn_(PQconnectdb(test_server().c_str())) {
        if (PQstatus(conn_) != CONNECTION_OK)
            throw std::runtime_error(std::string("admin connection: ") + PQerrorMessage(conn_));
    }
    admin(const admin&) = delete;
    admin& operator=(const admin&) = delete;
    ~admin() { PQfinish(conn_); }

    /// Runs `sql` (test-made) with `params` and returns every row's first value. Without
    /// parameters `sql` may hold several statements (the last one's rows are returned).
    std::vector<std::string> rows(const std::string& sql,
                                  const std::vector<const char*>& params = {}) {
        PGresult* r = params.empty()
                          ? PQexec(conn_, sql.c_str())
                          : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()),
                                         nullptr, params.data(), nullptr, nullptr, 0);
        const auto s = PQresultStatus(r);
        std::vector<std::string> out;
        if (s == PGRES_TUPLES_OK)
            for (int i = 0; i < PQntuples(r); ++i)
                out.emplace_back(PQgetvalue(r, i, 0));
        const std::string err = PQresultErrorMessage(r);
        PQclear(r);
        if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
            throw std::runtime_error("admin: " + sql + ": " + err);
        return out;
    }

    /// Runs `sql` and returns the first value ("" if none).
    std::string exec(const std::string& sql) {
        auto r = rows(sql);
        return r.empty() ? std::string() : r.front();
    }

private:
    PGconn* conn_;
};

} // namespace dexter::sessions::test
