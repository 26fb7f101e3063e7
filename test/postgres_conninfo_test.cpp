// SPDX-License-Identifier: BSL-1.0
// The parts of the PostgreSQL store that need no server: connection strings (their
// passwords, cleaned messages, the server label).
#include <dexter/sessions/detail/postgres_conninfo.hpp>

#define BOOST_TEST_MODULE postgres_conninfo
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dd = dexter::sessions::detail;

namespace {

bool holds(const std::vector<std::string>& secrets, const std::string& s) {
    return std::find(secrets.begin(), secrets.end(), s) != secrets.end();
}

std::size_t count(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string_view::npos; pos = text.find(what, pos + 1))
        ++n;
    return n;
}

// The PG* variables the server label reads, unset for the test and put back after it
// (scripts/with-postgres.sh sets them).
struct clean_pg_environment {
    static constexpr std::array<const char*, 4> names = {"PGHOST", "PGPORT", "PGDATABASE",
                                                         "PGUSER"};
    std::map<std::string, std::optional<std::string>> saved;

    clean_pg_environment() {
        for (const char* n : names) {
            const char* v = std::getenv(n);
            saved[n] = v ? std::optional<std::string>(v) : std::nullopt;
            ::unsetenv(n);
        }
    }
    ~clean_pg_environment() {
        for (const auto& [n, v] : saved) {
            if (v)
                ::setenv(n.c_str(), v->c_str(), 1);
            else
                ::unsetenv(n.c_str());
        }
    }
    void set(const char* name, const char* value) { ::setenv(name, value, 1); }
};

} // namespace

// --- passwords in a connection string ----------------------------------------------

BOOST_AUTO_TEST_CASE(key_value_passwords_are_found_quoted_or_not) {
    BOOST_TEST(dd::conninfo_secrets("host=db password=s3cret dbname=agents") ==
                   std::vector<std::string>{"s3cret"},
               boost::test_tools::per_element());
    // Quoted, with blanks in it and around '=': libpq reads "pa ss word".
    const auto quoted = dd::conninfo_secrets("host=db password = 'pa ss word' user=u");
    BOOST_TEST(holds(quoted, "pa ss word"));
    BOOST_TEST(quoted.size() == 1u);
    BOOST_TEST(holds(dd::conninfo_secrets("password =secret2 host=db"), "secret2"));
    BOOST_TEST(holds(dd::conninfo_secrets("host=db password=\tsecret3"), "secret3"));
    // An escaped quote: libpq's reading (it's) is among them.
    BOOST_TEST(holds(dd::conninfo_secrets(R"(password='it\'s' host=db)"), "it's"));
    BOOST_TEST(dd::conninfo_secrets("host=db dbname=agents user=u").empty());
}

BOOST_AUTO_TEST_CASE(uri_passwords_are_found_as_written_and_as_decoded) {
    BOOST_TEST(dd::conninfo_secrets("postgresql://alice:hunter2@db.example:5433/agents") ==
                   std::vector<std::string>{"hunter2"},
               boost::test_tools::per_element());
    const auto encoded = dd::conninfo_secrets("postgresql://alice:p%40ss@db/agents");
    BOOST_TEST(holds(encoded, "p@ss"));   // as libpq reads it
    BOOST_TEST(holds(encoded, "p%40ss")); // as written
    BOOST_TEST(holds(dd::conninfo_secrets("postgres://db/agents?user=a&password=qwerty&port=1"),
                     "qwerty"));
    BOOST_TEST(dd::conninfo_secrets("postgresql://alice@db/agents").empty());
}

BOOST_AUTO_TEST_CASE(passwords_are_found_in_a_string_that_does_not_parse) {
    const std::string bad = "host=db password=topsecret no_such_keyword=1";
    BOOST_TEST(dd::pg_server_label(bad) == "(an invalid connection string)"); // libpq refuses it
    BOOST_TEST(holds(dd::conninfo_secrets(bad), "topsecret"));
    BOOST_TEST(holds(dd::conninfo_secrets("password='unterminated"), "unterminated"));
    const std::string bad_uri = "postgresql://bob:pw9@db/x?no_such_option=1";
    BOOST_TEST(dd::pg_server_label(bad_uri) == "(an invalid connection string)");
    BOOST_TEST(holds(dd::conninfo_secrets(bad_uri), "pw9"));
}

// --- libpq's messages, cleaned --------------------------------------------------------

BOOST_AUTO_TEST_CASE(messages_become_one_line) {
    BOOST_TEST(dd::pg_clean_message("ERROR:  syntax error at end of input\n"
                                    "LINE 1: SELECT\n"
                                    "              ^\n",
                                    {}) == "ERROR: syntax error at end of input; LINE 1: SELECT ^");
    BOOST_TEST(dd::pg_clean_message("connection to server on socket \"/tmp/.s.PGSQL.5432\" "
                                    "failed: No such file or directory\n\tIs the server "
                                    "running locally?\n",
                                    {}) ==
               "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or "
               "directory Is the server running locally?");
    BOOST_TEST(dd::pg_clean_message("\n  \n", {}).empty());
    BOOST_TEST(dd::pg_clean_message("one;\n", {}) == "one");
}

BOOST_AUTO_TEST_CASE(messages_lose_every_secret) {
    const std::string conninfo = "postgresql://alice:hunter2@db/agents?password=swordfish";
    const auto secrets = dd::conninfo_secrets(conninfo);
    BOOST_TEST(secrets.size() == 2u);
    const std::string message = "FATAL:  password authentication failed (hunter2)\n"
                                "DETAIL:  tried hunter2, then swordfish and hunter2\n";
    const std::string clean = dd::pg_clean_message(message, secrets);
    BOOST_TEST(clean.find("hunter2") == std::string::npos);
    BOOST_TEST(clean.find("swordfish") == std::string::npos);
    BOOST_TEST(count(clean, "***") == count(message, "hunter2") + count(message, "swordfish"));
    BOOST_TEST(clean == "FATAL: password authentication failed (***); DETAIL: tried ***, then "
                        "*** and ***");
    // The string itself, passed through a message, keeps no password.
    const std::string echoed = dd::pg_clean_message("invalid: " + conninfo, secrets);
    for (const auto& s : secrets)
        BOOST_TEST(echoed.find(s) == std::string::npos);
}

// --- the server label ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_label_comes_from_the_string) {
    clean_pg_environment env;
    BOOST_TEST(dd::pg_server_label("host=db.example port=6543 dbname=agents user=u "
                                   "password=pw") == "db.example:6543/agents");
    BOOST_TEST(dd::pg_server_label("hostaddr=10.0.0.5 dbname=x") == "10.0.0.5:5432/x");
    BOOST_TEST(dd::pg_server_label("host=name hostaddr=10.0.0.5 dbname=x") == "name:5432/x");
    BOOST_TEST(dd::pg_server_label("user=alice") == "localhost:5432/alice");
    BOOST_TEST(dd::pg_server_label("") == "localhost:5432/(default database)");
    const std::string uri = "postgresql://alice:hunter2@db.example:5433/agents";
    BOOST_TEST(dd::pg_server_label(uri) == "db.example:5433/agents");
    BOOST_TEST(dd::pg_server_label(uri).find("hunter2") == std::string::npos);
    BOOST_TEST(dd::pg_server_label("postgresql:///agents?host=/run/postgresql") ==
               "/run/postgresql:5432/agents");
}

BOOST_AUTO_TEST_CASE(the_label_falls_back_on_the_environment) {
    clean_pg_environment env;
    env.set("PGHOST", "envhost");
    env.set("PGPORT", "7777");
    env.set("PGDATABASE", "envdb");
    env.set("PGUSER", "envuser");
    BOOST_TEST(dd::pg_server_label("") == "envhost:7777/envdb");
    BOOST_TEST(dd::pg_server_label("host=h port=1 dbname=d") == "h:1/d"); // the string wins
    BOOST_TEST(dd::pg_server_label("hostaddr=10.1.1.1") == "10.1.1.1:7777/envdb");
    ::unsetenv("PGDATABASE");
    BOOST_TEST(dd::pg_server_label("") == "envhost:7777/envuser");
    BOOST_TEST(dd::pg_server_label("user=alice") == "envhost:7777/alice");
    ::unsetenv("PGUSER");
    ::unsetenv("PGHOST");
    ::unsetenv("PGPORT");
    BOOST_TEST(dd::pg_server_label("") == "localhost:5432/(default database)");
}

BOOST_AUTO_TEST_CASE(an_invalid_string_has_a_label_of_its_own) {
    clean_pg_environment env;
    for (const char* bad : {"no_such_keyword=1", "host='unterminated", "postgresql://[::1",
                            "host=db password=secret port"}) {
        BOOST_TEST_CONTEXT(bad) {
            BOOST_TEST(dd::pg_server_label(bad) == "(an invalid connection string)");
        }
    }
}
