// SPDX-License-Identifier: BSL-1.0
// postgres_store under real faults: server restarts and immediate kills, hostile text,
// passwords in connection strings, two processes contending for one session's lease.
#include <dexter/sessions/postgres_store.hpp>

#define BOOST_TEST_MODULE postgres_store_faults
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/session_manager.hpp>

#include "support/postgres_fixture.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ds = dexter::sessions;
using ds::test::admin;
using ds::test::child_guard;
using ds::test::child_pipe;
using ds::test::create_schema;
using ds::test::die_with_parent;
using ds::test::env_or_empty;
using ds::test::fresh_channel;
using ds::test::in_schema;
using ds::test::make_store;
using ds::test::pg_ctl;
using ds::test::test_server;

namespace {

using announce_skip = ds::test::announce_skip;
using manager = ds::session_manager<ds::postgres_store, ds::manual_clock, ds::sequential_ids>;

/// Every what() checked for a secret must name the server instead.
void check_no_secret(const std::string& message, const std::string& secret) {
    BOOST_TEST_CONTEXT("message: " << message) {
        BOOST_TEST(message.find(secret) == std::string::npos);
    }
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_skip);

BOOST_AUTO_TEST_SUITE(postgres_faults,
                      *boost::unit_test::precondition(ds::test::have_test_server{}))

// A restart between two saves: the save that meets the dead connection fails clearly,
// naming the server; the next one reconnects, takes the lease back, and is saved.
BOOST_AUTO_TEST_CASE(restart_between_saves_then_reconnect) {
    const std::string channel = fresh_channel();
    manager m{make_store(channel)};
    m.start_new();
    m.save_exchange("before restart", "answer 1");
    const auto id = m.current()->id;

    pg_ctl("restart -m fast");

    std::string message;
    try {
        m.save_exchange("after restart", "answer 2");
        BOOST_FAIL("a save over a connection the server closed must fail");
    } catch (const ds::session_busy&) {
        BOOST_FAIL("a lost connection is not a busy session");
    } catch (const ds::storage_error& e) {
        message = e.what();
        BOOST_TEST(e.path() == env_or_empty("DEXTER_TEST_PG_SERVER"));
    }
    BOOST_TEST_MESSAGE("restart error: " << message);
    BOOST_TEST(message.find(env_or_empty("DEXTER_TEST_PG_SERVER")) != std::string::npos);
    BOOST_TEST(message.find("lost the connection to the PostgreSQL server") != std::string::npos);
    BOOST_TEST(message.find("exchange 2 of session '" + id + "'") != std::string::npos);
    check_no_secret(message, env_or_empty("DEXTER_TEST_PG_PASSWORD"));
    BOOST_TEST(m.current()->exchange_count == 1u); // not acknowledged: nothing changed

    const auto second = m.save_exchange("after restart", "answer 2"); // reconnects
    BOOST_TEST(second.seq == 2u);
    // The lease was taken back with the new connection.
    auto other = make_store(channel);
    BOOST_CHECK_THROW(other.open(id), ds::session_busy);
    const auto loaded = other.load(id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 2u);
    BOOST_TEST(loaded.exchanges[0].query == "before restart");
    BOOST_TEST(loaded.exchanges[1].query == "after restart");
    BOOST_TEST(loaded.meta.exchange_count == 2u);
}

// The lease ends with the connection. If another writer takes it while we are cut off,
// we must not write: session_busy, naming that writer, and never a duplicate seq.
BOOST_AUTO_TEST_CASE(lease_lost_in_a_restart_is_never_written_through) {
    const std::string channel = fresh_channel();
    manager first{make_store(channel)};
    first.start_new();
    first.save_exchange("q1", "a1");
    const auto id = first.current()->id;

    pg_ctl("restart -m fast");
    manager second{make_store(channel), ds::manual_clock{}, ds::sequential_ids{500}};
    second.resume(id); // the first writer's lease died with its connection
    second.save_exchange("q2 from second", "a2");

    BOOST_CHECK_THROW(first.save_exchange("q2 from first", "x"), ds::storage_error); // lost
    try {
        first.save_exchange("q2 from first", "x"); // reconnected, but the lease is taken
        BOOST_FAIL("wrote without the lease");
    } catch (const ds::session_busy& e) {
        BOOST_TEST_MESSAGE("busy: " << e.what());
        BOOST_TEST(e.holder_pid().has_value());
        if (e.holder_pid())
            BOOST_TEST(*e.holder_pid() == static_cast<long>(::getpid()));
    }
    second.close();
    // The lease is free again: taken back, but the session moved on under the other
    // writer, so the stale seq 2 is refused by the key, not stored twice.
    try {
        first.save_exchange("q2 from first", "x");
        BOOST_FAIL("a stale seq was accepted");
    } catch (const ds::session_busy&) {
        BOOST_FAIL("the lease is free");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(std::string(e.what()).find("does not follow") != std::string::npos);
    }
    const auto loaded = make_store(channel).load(id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 2u);
    BOOST_TEST(loaded.exchanges[1].query == "q2 from second");
    BOOST_TEST(loaded.diagnostics.empty());
    // Resuming gives the true state, and saving goes on from it.
    first.resume(id);
    BOOST_TEST(first.save_exchange("q3", "a3").seq == 3u);
}

// A writer process saves in a loop and reports each acknowledged save; the server is
// stopped with `pg_ctl stop -m immediate` (no shutdown checkpoint: crash recovery on
// start) right after one. Once it is back, every acknowledged exchange is there (I1)
// and the seqs are 1..n with no hole (I2).
BOOST_AUTO_TEST_CASE(immediate_stop_loses_no_acknowledged_exchange) {
    const unsigned seed = std::random_device{}();
    BOOST_TEST_MESSAGE("seed " << seed);
    std::mt19937 rng(seed);
    for (int round = 0; round < 3; ++round) {
        BOOST_TEST_CONTEXT("seed " << seed << ", round " << round) {
            const std::string channel = fresh_channel();
            const int stop_after = std::uniform_int_distribution<int>(3, 40)(rng);
            child_pipe pipe;
            const pid_t child = ::fork();
            BOOST_TEST_REQUIRE(child >= 0);
            if (child == 0) {
                die_with_parent();
                pipe.child_side();
                int code = 0;
                try {
                    ds::session_manager<ds::postgres_store> w{make_store(channel)};
                    w.start_new();
                    for (int i = 1; i <= 100000; ++i) {
                        const auto ex = w.save_exchange("q" + std::to_string(i), "a");
                        pipe.say(w.current()->id + " " + std::to_string(ex.seq));
                    }
                } catch (const std::exception& e) {
                    pipe.say(std::string("error ") + e.what());
                    code = 3;
                }
                ::_exit(code);
            }
            child_guard kill_child(child);
            pipe.parent_side();
            std::string id;
            std::uint64_t acked = 0;
            std::string last_error;
            while (auto line = pipe.hear()) {
                if (line->starts_with("error ")) {
                    last_error = *line;
                    break;
                }
                id = line->substr(0, 8);
                acked = std::stoull(line->substr(9));
                if (acked == static_cast<std::uint64_t>(stop_after))
                    pg_ctl("stop -m immediate");
            }
            while (auto more = pipe.hear()) {
            }
            kill_child.reap(); // it has stopped by itself (its pipe is closed)
            BOOST_TEST_MESSAGE("writer stopped after " << acked << " acks: " << last_error);
            BOOST_TEST(acked >= static_cast<std::uint64_t>(stop_after));
            BOOST_TEST(last_error.find(env_or_empty("DEXTER_TEST_PG_SERVER")) != std::string::npos);
            pg_ctl("start");
            const auto loaded = make_store(channel).load(id, ds::all_exchanges);
            BOOST_TEST(loaded.exchanges.size() >= acked); // I1
            for (std::size_t i = 0; i < loaded.exchanges.size(); ++i)
                BOOST_TEST(loaded.exchanges[i].seq == i + 1); // I2
            BOOST_TEST(loaded.meta.exchange_count == loaded.exchanges.size());
            BOOST_TEST(loaded.diagnostics.empty());
        }
    }
}

// Text that would break a statement built by pasting strings: it must come back
// byte for byte, and the tables must still be there.
BOOST_AUTO_TEST_CASE(hostile_text_round_trips_exactly) {
    std::vector<std::string> texts = {
        "'); DROP TABLE dexter_sessions; --",
        "\"; DROP TABLE dexter_records; --",
        "it's a 'quoted' \"string\" with \\ backslashes \\\\ and \\' escapes \\x00 \\u0000",
        "E'\\\\x41' $1 $$ dollar $$ $tag$ ? %s %n ; \\. \\copy",
        "/* comment */ -- comment\r\n\tnext line\x0b\x0c",
        "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \xEF\xBF\xBF \xEF\xBF\xBD \xE2\x80\xA8",
    };
    std::string binary_looking;
    for (int c = 1; c < 0x80; ++c)
        binary_looking += static_cast<char>(c);
    texts.push_back(binary_looking);
    std::mt19937 rng(12345);
    std::string random_ascii;
    for (int i = 0; i < 4096; ++i)
        random_ascii += static_cast<char>(std::uniform_int_distribution<int>(1, 127)(rng));
    texts.push_back(random_ascii);

    const std::string channel = fresh_channel();
    manager m{make_store(channel)};
    std::vector<ds::session_id> ids;
    for (const auto& text : texts) {
        m.start_new();
        m.set_title(text);
        ds::exchange ex;
        ex.query = text;
        ex.answer = text + text;
        ex.summary = text;
        ex.model = text;
        ex.tool_calls = ds::json::array{ds::json::object{{text, text}}};
        ex.extra = ds::json::object{{"k", text}, {text, 1.0}};
        m.save_exchange(ex);
        ids.push_back(m.current()->id);
    }
    m.close();
    auto reader = make_store(channel);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        BOOST_TEST_CONTEXT("text #" << i) {
            const auto loaded = reader.load(ids[i], ds::all_exchanges);
            BOOST_TEST(loaded.meta.title == texts[i]);
            BOOST_TEST_REQUIRE(loaded.exchanges.size() == 1u);
            const auto& ex = loaded.exchanges[0];
            BOOST_TEST(ex.query == texts[i]);
            BOOST_TEST(ex.answer == texts[i] + texts[i]);
            BOOST_TEST(*ex.summary == texts[i]);
            BOOST_TEST(*ex.model == texts[i]);
            BOOST_TEST(ex.tool_calls == (ds::json::array{ds::json::object{{texts[i], texts[i]}}}));
            // 1.0 stays a double (jsonb would have made it the integer 1).
            BOOST_TEST(ex.extra == (ds::json::object{{"k", texts[i]}, {texts[i], 1.0}}));
            BOOST_TEST(reader.find(ids[i])->title == texts[i]);
        }
    }
    BOOST_TEST(reader.list().size() == texts.size());
    admin a;
    BOOST_TEST(a.exec("SELECT count(*) FROM dexter_sessions WHERE channel = '" + channel + "'") ==
               std::to_string(texts.size()));
    BOOST_TEST(a.exec("SELECT to_regclass('dexter_records') IS NOT NULL") == "t");
}

// A password in a connection string is never printed: not when it is wrong, not when
// the server is unreachable, not when the string is malformed, not after a restart.
BOOST_AUTO_TEST_CASE(password_never_appears_in_errors) {
    const std::string good = test_server();
    const std::string real_password = env_or_empty("DEXTER_TEST_PG_PASSWORD");
    BOOST_TEST_REQUIRE(!real_password.empty());
    const std::string secret = "Sup3r-S3cret-pw";
    const auto at = good.find('@');
    const auto colon = good.find(':', good.find("://") + 3);
    BOOST_TEST_REQUIRE((at != std::string::npos && colon < at));
    const std::string wrong_uri = good.substr(0, colon + 1) + secret + good.substr(at);
    const std::string port = env_or_empty("PGPORT");

    std::vector<std::pair<std::string, std::string>> attempts = {
        {"wrong password (URI)", wrong_uri},
        {"wrong password (key=value)",
         "host=127.0.0.1 port=" + port + " dbname=dexter_test user=dexter_test password=" + secret},
        {"quoted password",
         "host=127.0.0.1 port=" + port + " user=dexter_test password='" + secret + " x'"},
        {"unreachable server", "postgresql://dexter_test:" + secret + "@127.0.0.1:1/dexter_test"},
        {"malformed port", "postgresql://dexter_test:" + secret + "@127.0.0.1:notaport/db"},
        {"unknown option", "host=127.0.0.1 password=" + secret + " no_such_option=1"},
        {"garbage", "password=" + secret + " ='"},
        // libpq itself quotes the bad token, password and all: the store must cut it out.
        {"bad percent-encoding",
         "postgresql://dexter_test:" + secret + "%zz@127.0.0.1:" + port + "/dexter_test"},
    };
    for (const auto& [what, conninfo] : attempts) {
        BOOST_TEST_CONTEXT(what) {
            try {
                ds::postgres_store s{conninfo, fresh_channel()};
                BOOST_FAIL("connected");
            } catch (const ds::storage_error& e) {
                BOOST_TEST_MESSAGE(what << ": " << e.what());
                check_no_secret(e.what(), secret);
                check_no_secret(e.path(), secret);
            }
        }
    }
    // And with the real password: a busy session, and a lost connection.
    const std::string channel = fresh_channel();
    manager holder{make_store(channel)};
    holder.start_new();
    holder.save_exchange("q", "a");
    try {
        make_store(channel).open(holder.current()->id);
        BOOST_FAIL("opened a held session");
    } catch (const ds::session_busy& e) {
        check_no_secret(e.what(), real_password);
    }
    pg_ctl("restart -m fast");
    try {
        holder.save_exchange("q", "a");
        BOOST_FAIL("saved over a closed connection");
    } catch (const ds::storage_error& e) {
        check_no_secret(e.what(), real_password);
    }
}

// Two processes: the child resumes a session and holds it; the parent gets
// session_busy naming the child's pid (also for delete). The child has started a
// grandchild (as dexter starts an agent command): the connection must not leak into
// it. Once the child is killed, the lease is free although the grandchild lives on.
BOOST_AUTO_TEST_CASE(two_processes_one_lease) {
    const std::string channel = fresh_channel();
    ds::session_id id;
    {
        manager m{make_store(channel)};
        m.start_new();
        m.save_exchange("q", "a");
        id = m.current()->id;
    }
    child_pipe pipe;
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        die_with_parent();
        pipe.child_side();
        try {
            ds::session_manager<ds::postgres_store> w{make_store(channel)};
            w.resume(id);
            const pid_t grandchild = ::fork();
            if (grandchild == 0) {
                const int null = ::open("/dev/null", O_WRONLY);
                ::dup2(null, STDOUT_FILENO);
                ::dup2(null, STDERR_FILENO);
                ::execlp("sleep", "sleep", "60", static_cast<char*>(nullptr));
                ::_exit(127);
            }
            pipe.say("holding " + std::to_string(grandchild));
            for (;;)
                ::pause();
        } catch (const std::exception& e) {
            pipe.say(std::string("error ") + e.what());
        }
        ::_exit(3);
    }
    child_guard kill_child(child);
    pipe.parent_side();
    const auto line = pipe.hear();
    BOOST_TEST_REQUIRE(line.has_value());
    BOOST_TEST_REQUIRE(line->starts_with("holding "), *line);
    child_guard kill_grandchild(static_cast<pid_t>(std::stol(line->substr(8))));

    auto parent = make_store(channel);
    try {
        parent.open(id);
        BOOST_FAIL("opened a session another process holds");
    } catch (const ds::session_busy& e) {
        BOOST_TEST_MESSAGE("busy: " << e.what());
        BOOST_TEST_REQUIRE(e.holder_pid().has_value());
        BOOST_TEST(*e.holder_pid() == static_cast<long>(child));
        BOOST_TEST(std::string(e.what()).find("process " + std::to_string(child)) !=
                   std::string::npos);
    }
    BOOST_CHECK_THROW(parent.remove(id), ds::session_busy);
    BOOST_TEST(parent.load(id, ds::all_exchanges).exchanges.size() == 1u);

    kill_child.reap();
    // The server notices the closed connection at once or nearly: poll, with a deadline
    // only to turn a hang into a failure.
    bool opened = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!opened && std::chrono::steady_clock::now() < deadline) {
        try {
            parent.open(id);
            opened = true;
        } catch (const ds::session_busy&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    kill_grandchild.reap();
    BOOST_TEST(opened, "the lease outlived its holder (kept by the grandchild?)");
}

// A database whose schema is newer than this code knows is refused, and left as it was.
BOOST_AUTO_TEST_CASE(newer_schema_is_refused) {
    admin a;
    const std::string schema = create_schema(a, "newer_");
    a.exec("CREATE TABLE " + schema + ".dexter_sessions_schema (version integer NOT NULL)");
    a.exec("INSERT INTO " + schema + ".dexter_sessions_schema VALUES (3)");
    const std::string conninfo = in_schema(schema);
    try {
        ds::postgres_store s{conninfo, "cli"};
        BOOST_FAIL("a newer schema was accepted");
    } catch (const ds::format_error& e) {
        BOOST_TEST_MESSAGE(e.what());
        const std::string what = e.what();
        BOOST_TEST(what.find("schema version 3, newer than this library knows (2)") !=
                   std::string::npos);
        BOOST_TEST(what.find(env_or_empty("DEXTER_TEST_PG_SERVER")) != std::string::npos);
    }
    BOOST_TEST(a.exec("SELECT to_regclass('" + schema + ".dexter_sessions') IS NULL") == "t");
    BOOST_TEST(a.exec("SELECT count(*) FROM " + schema + ".dexter_sessions_schema") == "1");
}

// Processes that meet an empty database at once create the schema once, and all work.
BOOST_AUTO_TEST_CASE(concurrent_first_use_creates_the_schema_once) {
    admin a;
    const std::string schema = create_schema(a, "fresh_");
    const std::string conninfo = in_schema(schema);
    constexpr int processes = 6;
    int barrier[2];
    BOOST_TEST_REQUIRE(::pipe(barrier) == 0);
    std::vector<pid_t> children;
    for (int i = 0; i < processes; ++i) {
        const pid_t pid = ::fork();
        BOOST_TEST_REQUIRE(pid >= 0);
        if (pid == 0) {
            die_with_parent();
            ::close(barrier[1]);
            char c;
            [[maybe_unused]] auto n = ::read(barrier[0], &c, 1); // EOF: the parent said go
            int code = 0;
            try {
                ds::session_manager<ds::postgres_store> w{ds::postgres_store{conninfo, "cli"}};
                w.start_new();
                w.save_exchange("q", "a");
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: %s\n", i, e.what());
                code = 3;
            }
            ::_exit(code);
        }
        children.push_back(pid);
    }
    ::close(barrier[1]);
    ::close(barrier[0]);
    for (pid_t pid : children) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    BOOST_TEST(a.exec("SELECT count(*) FROM " + schema + ".dexter_sessions_schema") == "1");
    BOOST_TEST(a.exec("SELECT count(*) FROM " + schema + ".dexter_sessions") ==
               std::to_string(processes));
}

BOOST_AUTO_TEST_SUITE_END()
