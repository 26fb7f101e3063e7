// SPDX-License-Identifier: BSL-1.0
// The storage contract, unchanged, against postgres_store on a real PostgreSQL server,
// alone and under secret redaction (redacting_store).
#include <dexter/sessions/postgres_store.hpp>

#define BOOST_TEST_MODULE postgres_store_contract // before the first Boost.Test include
#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/redacting_store.hpp>

#include "support/postgres_admin.hpp"
#include "support/postgres_server.hpp"

#include <string>
#include <tuple>

namespace {

// Every handle is a separate connection (a separate writer) to one channel that no
// other test uses, so each test starts from an empty store.
struct postgres_store_factory {
    std::string channel = dexter::sessions::test::fresh_channel();
    dexter::sessions::postgres_store make() {
        return dexter::sessions::postgres_store{dexter::sessions::test::test_server(), channel};
    }
    // Every row of the channel, as the server holds it.
    std::string stored_state() {
        dexter::sessions::test::admin db;
        std::string out;
        for (const auto& row :
             db.rows("SELECT row_to_json(s)::text FROM dexter_sessions s WHERE channel = $1 "
                     "ORDER BY id",
                     {channel.c_str()}))
            out += row + "\n";
        for (const auto& row :
             db.rows("SELECT row_to_json(r)::text FROM dexter_records r WHERE channel = $1 "
                     "ORDER BY session_id, seq",
                     {channel.c_str()}))
            out += row + "\n";
        return out;
    }
};

static_assert(dexter::sessions::skips_checked_utf8<dexter::sessions::postgres_store>);

using redacting_postgres_store =
    dexter::sessions::redacting_store<dexter::sessions::postgres_store>;
static_assert(dexter::sessions::same_capabilities<redacting_postgres_store,
                                                  dexter::sessions::postgres_store>);

struct redacting_postgres_store_factory {
    postgres_store_factory server;
    redacting_postgres_store make() { return redacting_postgres_store{server.make()}; }
    std::string stored_state() { return server.stored_state(); }
};

using announce_skip = dexter::sessions::test::announce_skip;

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_skip);

BOOST_AUTO_TEST_SUITE(postgres,
                      *boost::unit_test::precondition(dexter::sessions::test::have_test_server{}))
DEXTER_SESSIONS_STORAGE_CONTRACT(
    postgres_store_contract, std::tuple<postgres_store_factory, redacting_postgres_store_factory>)
BOOST_AUTO_TEST_SUITE_END()
