// SPDX-License-Identifier: BSL-1.0
// The PostgreSQL server the postgres_store tests run against (scripts/with-postgres.sh
// exports DEXTER_TEST_PG and friends), and a fresh channel name per test.
#pragma once

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace dexter::sessions::test {

/// The value of environment variable `name`, or "".
inline std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

/// The connection string of the test server, or "" when there is none.
inline std::string test_server() {
    return env_or_empty("DEXTER_TEST_PG");
}

/// The message every postgres test prints when it is skipped (CTest's
/// SKIP_REGULAR_EXPRESSION matches it).
inline constexpr const char* no_server_message =
    "DEXTER_TEST_PG is not set: skipping the PostgreSQL tests (run them with "
    "scripts/with-postgres.sh, which starts a throwaway server)";

/// A test-unit precondition: skip unless a server is configured.
struct have_test_server {
    boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
        boost::test_tools::assertion_result r(!test_server().empty());
        if (!r)
            r.message() << no_server_message;
        return r;
    }
};

/// Says once, on standard error, why the tests are skipped; with
/// DEXTER_TEST_PG_REQUIRED set (as .ci/run does), fails instead of skipping.
struct announce_skip {
    announce_skip() {
        if (!test_server().empty())
            return;
        if (!env_or_empty("DEXTER_TEST_PG_REQUIRED").empty())
            throw std::runtime_error("DEXTER_TEST_PG is not set, and DEXTER_TEST_PG_REQUIRED is");
        std::fprintf(stderr, "%s\n", no_server_message);
    }
};

/// A channel name no other test (in this or any earlier run) uses: each test gets
/// an empty store on the shared server.
inline std::string fresh_channel() {
    static unsigned counter = 0;
    static const unsigned salt = std::random_device{}();
    char buf[64];
    std::snprintf(buf, sizeof buf, "t%08x-%ld-%u", salt, static_cast<long>(::getpid()), ++counter);
    return buf;
}

} // namespace dexter::sessions::test
