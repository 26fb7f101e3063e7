// SPDX-License-Identifier: BSL-1.0
// The parts of the PostgreSQL store that need no server: connection strings (their
// passwords, cleaned messages, the server label and postgres_server_label), the
// statements and their values (lease keys, times, metadata, records), and the
// application_name that names a holder.
#include <dexter/sessions/detail/postgres_conninfo.hpp>

#define BOOST_TEST_MODULE postgres_conninfo
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/detail/postgres_connection.hpp>
#include <dexter/sessions/detail/postgres_sql.hpp>
#include <dexter/sessions/postgres_store.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
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

// FNV-1a, 64 bits, as published (checked below against its test vectors).
std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// The $n placeholders a statement uses: their highest number, each number 1..n used.
int parameters_of(std::string_view sql) {
    std::set<int> used;
    for (std::size_t pos = sql.find('$'); pos != std::string_view::npos;
         pos = sql.find('$', pos + 1)) {
        int n = 0;
        for (std::size_t i = pos + 1; i < sql.size() && sql[i] >= '0' && sql[i] <= '9'; ++i)
            n = n * 10 + (sql[i] - '0');
        if (n > 0)
            used.insert(n);
    }
    if (used.empty())
        return 0;
    BOOST_TEST(static_cast<int>(used.size()) == *used.rbegin(), sql << ": a gap in its $n");
    return *used.rbegin();
}

// A result of a find, list or load statement, made without a server: one row of the
// ten metadata columns (nullopt: SQL NULL).
dd::pg_result_ptr meta_row(const std::array<std::optional<std::string>, 10>& columns) {
    dd::pg_result_ptr r(PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK));
    BOOST_REQUIRE(r);
    static const char* names[] = {"title",          "title_json",     "created_at", "updated_at",
                                  "exchange_count", "extra",          "id",         "pinned",
                                  "forked_from_id", "forked_from_seq"};
    static_assert(std::size(names) == dd::pg_meta_columns);
    std::array<PGresAttDesc, 10> attrs{};
    for (std::size_t i = 0; i < attrs.size(); ++i) {
        attrs[i].name = const_cast<char*>(names[i]);
        attrs[i].format = 0;
    }
    BOOST_REQUIRE(PQsetResultAttrs(r.get(), 10, attrs.data()));
    for (int c = 0; c < 10; ++c) {
        const auto& v = columns[static_cast<std::size_t>(c)];
        BOOST_REQUIRE(PQsetvalue(r.get(), 0, c, v ? const_cast<char*>(v->c_str()) : nullptr,
                                 v ? static_cast<int>(v->size()) : -1));
    }
    return r;
}

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

BOOST_AUTO_TEST_CASE(the_label_never_shows_a_password) {
    clean_pg_environment env;
    // libpq reads a dbname that is itself a connection string as a plain name here.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"dbname='postgresql://u:pw1secret@h/d'", "localhost:5432/postgresql://u:***@h/d"},
        {"dbname='host=h password=pw2secret'", "localhost:5432/host=h password=***"},
        {"host=db password=pw3secret dbname=pw3secret", "db:5432/***"},
    };
    for (const auto& [conninfo, expected] : cases) {
        const std::string label = dd::pg_server_label(conninfo);
        BOOST_TEST(label == expected);
        for (const auto& secret : dd::conninfo_secrets(conninfo))
            BOOST_TEST(label.find(secret) == std::string::npos, conninfo);
    }
    // The server's refusal quotes such a dbname: the message loses the password too.
    BOOST_TEST(
        dd::pg_clean_message("FATAL:  database \"host=h password=pw2secret\" does not exist\n",
                             dd::conninfo_secrets(cases[1].first)) ==
        "FATAL: database \"host=h password=***\" does not exist");
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

BOOST_AUTO_TEST_CASE(the_public_label_is_the_stores) {
    clean_pg_environment env;
    for (const std::string conninfo :
         {"postgresql://alice:hunter2@db.example:5433/agents", "host=a dbname=b", "",
          "no_such_keyword=1", "dbname='host=h password=pw2secret'"}) {
        const std::string label = ds::postgres_server_label(conninfo);
        BOOST_TEST(label == dd::pg_server_label(conninfo));
        BOOST_TEST(label.find("hunter2") == std::string::npos);
        BOOST_TEST(label.find("pw2secret") == std::string::npos);
    }
    // A view into a longer string: only the view counts.
    const std::string both = "host=first dbname=one host=second";
    BOOST_TEST(ds::postgres_server_label(std::string_view(both).substr(0, 21)) == "first:5432/one");
}

// --- the statements and their values -------------------------------------------------

BOOST_AUTO_TEST_CASE(every_statement_has_its_sql_and_parameters) {
    using s = dd::pg_statement;
    // The parameters each call site passes (postgres_store.hpp).
    const std::map<s, int> parameters = {
        {s::find, 2},         {s::list, 1},   {s::create, 10},
        {s::append, 5},       {s::update, 6}, {s::load, 3},
        {s::remove, 2},       {s::lock, 2},   {s::unlock, 2},
        {s::holder, 2},       {s::stream, 5}, {s::page, 5},
        {s::search, 6},       {s::exists, 2}, {s::whole_records, 4},
        {s::whole_finish, 8}, {s::trash, 4},  {s::restore, 2},
        {s::list_trash, 1},   {s::purge, 3},  {s::verify_sessions, 2},
        {s::verify_gaps, 2}};
    BOOST_TEST(parameters.size() == static_cast<std::size_t>(s::count));
    BOOST_TEST(dd::pg_sql.size() == static_cast<std::size_t>(s::count));
    for (std::size_t i = 0; i < dd::pg_sql.size(); ++i) {
        BOOST_TEST_CONTEXT("statement " << i) {
            BOOST_REQUIRE(dd::pg_sql[i] != nullptr);
            BOOST_TEST(std::string_view(dd::pg_sql[i]).size() > 20u);
            BOOST_TEST(parameters_of(dd::pg_sql[i]) == parameters.at(static_cast<s>(i)));
        }
    }
    // find, list and load return the metadata columns first, in the order pg_read_meta
    // reads them.
    const std::string_view find = dd::pg_sql[static_cast<std::size_t>(s::find)];
    const auto columns = find.substr(0, find.find(" FROM dexter_sessions"));
    BOOST_TEST(columns.starts_with("SELECT s.title, s.title_json::text, "));
    BOOST_TEST(columns.ends_with(
        ", s.exchange_count, s.extra::text, s.id, s.pinned, s.forked_from_id, s.forked_from_seq"));
    for (s other : {s::list, s::load, s::page, s::list_trash})
        BOOST_TEST(
            std::string_view(dd::pg_sql[static_cast<std::size_t>(other)]).starts_with(columns));
}

BOOST_AUTO_TEST_CASE(search_patterns_escape_what_like_and_json_would_read) {
    // LIKE's wildcards and its escape character stand for themselves.
    BOOST_TEST(dd::pg_contains_pattern("") == "%%");
    BOOST_TEST(dd::pg_contains_pattern("abc") == "%abc%");
    BOOST_TEST(dd::pg_contains_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%");
    BOOST_TEST(dd::pg_contains_pattern("\xC3\xA9") == "%\xC3\xA9%");
    // The text as a record's JSON string holds it: escaped as encode_exchange() does.
    BOOST_TEST(dd::pg_json_needle("plain /path") == "plain /path");
    BOOST_TEST(dd::pg_json_needle("say \"hi\"\n") == "say \\\"hi\\\"\\n");
    BOOST_TEST(dd::pg_json_needle(std::string("a\0b\x1f", 4)) == "a\\u0000b\\u001f");
    BOOST_TEST(dd::pg_json_needle("\xC3\xA9t\xC3\xA9") == "\xC3\xA9t\xC3\xA9");
    // Both together: what the search statement's record pattern is.
    BOOST_TEST(dd::pg_contains_pattern(dd::pg_json_needle("C:\\x \"")) == "%C:\\\\\\\\x \\\\\"%");
}

BOOST_AUTO_TEST_CASE(the_schema_is_the_version_it_says) {
    const std::string_view schema = dd::pg_schema_v1;
    for (const char* table : {"CREATE TABLE dexter_sessions (", "CREATE TABLE dexter_records ("})
        BOOST_TEST(schema.find(table) != std::string_view::npos, table);
    // Version 1 as 0.1 created it, then the migration to the version this code knows.
    BOOST_TEST(schema.ends_with("INSERT INTO dexter_sessions_schema (version) VALUES (1);"));
    const std::string_view migration = dd::pg_migrate_v1_to_v2;
    BOOST_TEST(dd::postgres_schema_version == 2);
    BOOST_TEST(migration.ends_with("UPDATE dexter_sessions_schema SET version = 2;"));
    for (const char* column : {"pinned boolean NOT NULL DEFAULT false", "forked_from_id text",
                               "forked_from_seq bigint", "deleted_at timestamptz"})
        BOOST_TEST(migration.find(std::string("ADD COLUMN IF NOT EXISTS ") + column) !=
                       std::string_view::npos,
                   column);
    BOOST_TEST(migration.find("WHERE deleted_at IS NULL") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(array_literals_quote_every_element) {
    BOOST_TEST(dd::pg_array_literal({}) == "{}");
    BOOST_TEST(dd::pg_array_literal({"a", ""}) == "{\"a\",\"\"}");
    BOOST_TEST(dd::pg_array_literal({R"({"q":"x\"y"})", "NULL", "{,}"}) ==
               R"({"{\"q\":\"x\\\"y\"}","NULL","{,}"})");
}

BOOST_AUTO_TEST_CASE(lease_keys_are_stable_and_distinct) {
    // The reference hash, on its published test vectors.
    BOOST_TEST(fnv1a64("") == 0xcbf29ce484222325ull);
    BOOST_TEST(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
    BOOST_TEST(fnv1a64("foobar") == 0x85944171f73967e8ull);
    // The keys are 31 bits each of it over "dexter-sessions/<channel>/<id>": another
    // version of the library must find the same lease.
    for (const auto& [channel, id] : std::vector<std::pair<std::string, std::string>>{
             {"cli", "abcd1234"}, {"gateway", "0000zzzz"}, {"c", "s0000001"}}) {
        const std::uint64_t h = fnv1a64("dexter-sessions/" + channel + "/" + id);
        const auto keys = dd::pg_lease_keys(channel, id);
        BOOST_TEST(keys[0] == std::to_string(h & 0x7fffffff));
        BOOST_TEST(keys[1] == std::to_string((h >> 32) & 0x7fffffff));
        BOOST_TEST((dd::pg_lease_keys(channel, id) == keys));
    }
    // Different sessions, different keys: every id of two channels, and the boundary
    // between channel and id counts.
    std::set<std::array<std::string, 2>> seen;
    for (const char* channel : {"cli", "web"}) {
        for (int i = 0; i < 5000; ++i) {
            char id[9];
            std::snprintf(id, sizeof id, "s%07d", i);
            const auto keys = dd::pg_lease_keys(channel, id);
            for (const auto& k : keys) {
                const long long v = std::stoll(k);
                BOOST_TEST((v >= 0 && v <= 0x7fffffff), k);
            }
            BOOST_TEST(seen.insert(keys).second, channel << "/" << id);
        }
    }
    BOOST_TEST((dd::pg_lease_keys("ab", "c") != dd::pg_lease_keys("a", "bc")));
}

BOOST_AUTO_TEST_CASE(times_are_milliseconds_since_the_epoch) {
    using namespace std::chrono;
    BOOST_TEST(dd::pg_millis(ds::time_point{}) == "0");
    const ds::time_point t =
        sys_days{year{2026} / 11 / 26} + hours{5} + minutes{24} + seconds{3} + milliseconds{123};
    BOOST_TEST(dd::pg_millis(t) == "1795670643123"); // date -d 2026-11-26T05:24:03.123Z +%s%3N
    BOOST_TEST(dd::pg_millis(ds::time_point{} - milliseconds{1}) == "-1");
}

BOOST_AUTO_TEST_CASE(metadata_parameters_keep_every_title) {
    ds::session_meta m;
    m.id = "abcd1234";
    m.title = "plain";
    m.extra["k"] = 1.0;
    const auto plain = dd::pg_encode_meta(m, 1000, "session 'abcd1234'");
    BOOST_TEST(plain.title == "plain");
    BOOST_TEST(plain.title_json_param() == nullptr);
    BOOST_TEST(plain.extra == R"({"k":1E0})");

    m.title = std::string("a\0b", 3);
    const auto nul = dd::pg_encode_meta(m, 1000, "session 'abcd1234'");
    BOOST_TEST(nul.title == "a\xEF\xBF\xBD"
                            "b");
    BOOST_REQUIRE(nul.title_json_param() != nullptr);
    BOOST_TEST(std::string(nul.title_json_param()) == R"("a\u0000b")");

    m.title = "\xff";
    BOOST_CHECK_EXCEPTION(dd::pg_encode_meta(m, 1000, "session 'abcd1234'"), ds::invalid_input,
                          [](const ds::invalid_input& e) {
                              return std::string(e.what()).find("not valid UTF-8") !=
                                     std::string::npos;
                          });
    m.title = std::string(40, 't');
    BOOST_CHECK_EXCEPTION(dd::pg_encode_meta(m, 20, "session 'abcd1234'"), ds::invalid_input,
                          [](const ds::invalid_input& e) {
                              return std::string(e.what()) ==
                                     "session 'abcd1234' is 42 bytes, over the record limit "
                                     "of 20 bytes; nothing was saved";
                          });
    BOOST_CHECK_NO_THROW(dd::check_record(std::string(20, 'x'), true, 20, "record"));
}

BOOST_AUTO_TEST_CASE(metadata_rows_are_read_back) {
    using namespace std::chrono;
    auto r = meta_row({"a\xEF\xBF\xBD"
                       "b",
                       R"("a\u0000b")", "1795670643123", "-1", "42", R"({"k":[1,2]})", "abcd1234",
                       "t", "orig0001", "7"});
    const ds::session_meta m = dd::pg_read_meta(r.get(), 0);
    BOOST_TEST(m.id == "abcd1234");
    BOOST_TEST(m.title == std::string("a\0b", 3)); // the exact title, from title_json
    BOOST_TEST(dd::pg_millis(m.created_at) == "1795670643123");
    BOOST_TEST((m.updated_at == ds::time_point{} - milliseconds{1}));
    BOOST_TEST(m.exchange_count == 42u);
    BOOST_TEST(m.extra.at("k").as_array().size() == 2u);
    BOOST_TEST(m.pinned);
    BOOST_TEST((m.forked_from == ds::session_origin{"orig0001", 7}));

    auto plain = meta_row(
        {"plain", std::nullopt, "0", "0", "0", "[]", "s0000001", "f", std::nullopt, std::nullopt});
    const ds::session_meta p = dd::pg_read_meta(plain.get(), 0);
    BOOST_TEST(p.title == "plain");
    BOOST_TEST(p.extra.empty()); // not an object: left empty
    BOOST_TEST(!p.pinned);
    BOOST_TEST(!p.forked_from.has_value());
}

BOOST_AUTO_TEST_CASE(records_are_read_back_or_reported) {
    // A stored record is a line of history.jsonl, without its newline.
    const std::string text = R"({"type":"exchange","seq":3,"timestamp":"2026-11-26T05:24:03.123Z",)"
                             R"("query":"q","answer":"a","model":"m"})";
    std::vector<ds::diagnostic> diags;
    const auto back = dd::pg_read_record(text, 3, diags);
    BOOST_REQUIRE(back.has_value());
    BOOST_TEST(back->seq == 3u);
    BOOST_TEST(dd::pg_millis(back->timestamp) == "1795670643123");
    BOOST_TEST(back->query == "q");
    BOOST_TEST(back->answer == "a");
    BOOST_TEST(back->model.value_or("") == "m");
    BOOST_TEST(diags.empty());

    const std::vector<std::pair<std::string, std::string>> bad = {
        {text, "record 4: holds seq 3 in row 4: skipped"},
        {"[1]", "record 4: not a JSON object: skipped"},
        {R"({"type":"meta"})", "record 4: not an exchange record: skipped"},
    };
    for (const auto& [record, why] : bad) {
        diags.clear();
        BOOST_TEST(!dd::pg_read_record(record, 4, diags).has_value());
        BOOST_REQUIRE(diags.size() == 1u);
        BOOST_TEST(diags[0].reason == why);
    }
    diags.clear();
    BOOST_TEST(!dd::pg_read_record("{\"type\":", 4, diags).has_value());
    BOOST_REQUIRE(diags.size() == 1u);
    BOOST_TEST(diags[0].reason.starts_with("record 4: not valid JSON ("));
}

// --- the name of a connection -------------------------------------------------------

BOOST_AUTO_TEST_CASE(application_names_name_the_process) {
    const std::string app = dd::pg_application_name(4242, "build-host");
    BOOST_TEST(app == "dexter-sessions pid=4242 host=build-host");
    const auto holder = dd::pg_parse_application_name(app);
    BOOST_REQUIRE(holder.has_value());
    BOOST_TEST(holder->pid == 4242);
    BOOST_TEST(holder->host == "build-host");

    // A long host name is cut where the server would cut it; its start still compares.
    const std::string long_host(100, 'h');
    const std::string cut = dd::pg_application_name(7, long_host);
    BOOST_TEST(cut.size() == 63u);
    const auto cut_holder = dd::pg_parse_application_name(cut);
    BOOST_REQUIRE(cut_holder.has_value());
    BOOST_TEST(cut_holder->pid == 7);
    BOOST_TEST(long_host.starts_with(cut_holder->host));

    for (const char* other :
         {"", "psql", "dexter-sessions", "dexter-sessions pid=1", "someone pid=1 host=x"})
        BOOST_TEST(!dd::pg_parse_application_name(other).has_value(), other);
}
