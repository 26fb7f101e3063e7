// SPDX-License-Identifier: BSL-1.0
// postgres_store's changes (issue 13) on a real server: the migration of a 0.1 schema,
// pins and forks in the metadata, create_whole() (batched, all or nothing, under a
// throwing filler, a killed server and a killed writer), and the trash (trash under the
// lease, stale_before, restore, list_trash, purge).
#include <dexter/sessions/postgres_store.hpp>

#define BOOST_TEST_MODULE postgres_store_change
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/session_manager.hpp>

#include "support/postgres_fixture.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
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
using ds::test::fresh_channel;
using ds::test::in_schema;
using ds::test::make_store;
using ds::test::pg_ctl;

namespace {

using announce_skip = ds::test::announce_skip;

ds::time_point at(long ms) {
    return ds::time_point{std::chrono::milliseconds{ms}};
}

ds::session_meta meta(const std::string& id, long created_ms, std::string title = "a title") {
    ds::session_meta m;
    m.id = id;
    m.title = std::move(title);
    m.created_at = at(created_ms);
    m.updated_at = at(created_ms);
    return m;
}

ds::exchange ex(std::uint64_t seq, long ms) {
    ds::exchange e;
    e.seq = seq;
    e.timestamp = at(ms);
    e.query = "question " + std::to_string(seq) + " \"quoted\" \\ back{slash},";
    e.answer = "answer " + std::to_string(seq) + " caf\xC3\xA9 \xF0\x9F\x90\xB1";
    return e;
}

/// Rows of the session `id` of `channel`, live or trashed, and of its records.
std::string session_rows(admin& a, const std::string& channel, const std::string& id) {
    return a
        .rows("SELECT count(*) FROM dexter_sessions WHERE channel = $1 AND id = $2",
              {channel.c_str(), id.c_str()})
        .front();
}
std::string record_rows(admin& a, const std::string& channel, const std::string& id) {
    return a
        .rows("SELECT count(*) FROM dexter_records WHERE channel = $1 AND session_id = $2",
              {channel.c_str(), id.c_str()})
        .front();
}

/// Fills a session with exchanges 1..n (timestamps 1000 + seq ms).
ds::session_filler exchanges(std::uint64_t n) {
    return [n](ds::session_sink& sink) {
        for (std::uint64_t seq = 1; seq <= n; ++seq)
            sink.add(ex(seq, 1000 + static_cast<long>(seq)), {});
    };
}

template <class E>
bool failed_with(const ds::trash_outcome& o) {
    if (!o.error)
        return false;
    try {
        std::rethrow_exception(o.error);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_skip);

BOOST_AUTO_TEST_SUITE(postgres,
                      *boost::unit_test::precondition(dexter::sessions::test::have_test_server{}))

// A database made by 0.1 (schema version 1, written here as 0.1 wrote it) is migrated
// when a store first connects: its sessions stay, live and unpinned, and can be pinned,
// forked into, trashed; the listing index keeps only live sessions.
BOOST_AUTO_TEST_CASE(migrates_a_0_1_schema) {
    admin a;
    const std::string schema = create_schema(a, "old_");
    a.exec(
        "SET search_path TO " + schema +
        ";"
        "CREATE TABLE dexter_sessions_schema (version integer NOT NULL);"
        "CREATE TABLE dexter_sessions ( channel text NOT NULL, id text NOT NULL,"
        " title text NOT NULL, title_json json, created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL,"
        " exchange_count bigint NOT NULL CHECK (exchange_count >= 0),"
        " extra json NOT NULL DEFAULT '{}', PRIMARY KEY (channel, id));"
        "CREATE INDEX dexter_sessions_recent ON dexter_sessions (channel, updated_at DESC, id);"
        "CREATE TABLE dexter_records ( channel text NOT NULL, session_id text NOT NULL,"
        " seq bigint NOT NULL CHECK (seq > 0), record json NOT NULL,"
        " PRIMARY KEY (channel, session_id, seq),"
        " FOREIGN KEY (channel, session_id) REFERENCES dexter_sessions (channel, id)"
        "  ON DELETE CASCADE);"
        "INSERT INTO dexter_sessions_schema (version) VALUES (1);"
        "INSERT INTO dexter_sessions VALUES ('cli', 'old00001', 'from 0.1', NULL,"
        " '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 1, '{\"k\":1}');"
        "INSERT INTO dexter_records VALUES ('cli', 'old00001', 1, '{\"type\":\"exchange\","
        "\"seq\":1,\"timestamp\":\"2026-01-01T00:01:00.000Z\",\"query\":\"q\",\"answer\":\"a\"}');"
        "RESET search_path");
    const std::string conninfo = in_schema(schema);
    {
        auto s = make_store("cli", conninfo);
        const auto found = s.find("old00001");
        BOOST_TEST_REQUIRE(found.has_value());
        BOOST_TEST(found->title == "from 0.1");
        BOOST_TEST(found->exchange_count == 1u);
        BOOST_TEST(!found->pinned);
        BOOST_TEST(!found->forked_from.has_value());
        BOOST_TEST(s.load("old00001").exchanges.size() == 1u);
        auto m = s.open("old00001");
        m.pinned = true;
        s.update(m);
        s.close("old00001");
        BOOST_TEST(s.find("old00001")->pinned);
        BOOST_TEST(s.list_page({10, std::nullopt, ""}).sessions.size() == 1u);
    }
    BOOST_TEST(a.exec("SELECT version FROM " + schema + ".dexter_sessions_schema") == "2");
    BOOST_TEST(a.exec("SELECT count(*) FROM " + schema + ".dexter_sessions_schema") == "1");
    const auto index = a.exec("SELECT indexdef FROM pg_indexes WHERE schemaname = '" + schema +
                              "' AND indexname = 'dexter_sessions_recent'");
    BOOST_TEST_MESSAGE(index);
    BOOST_TEST(index.find("WHERE (deleted_at IS NULL)") != std::string::npos);
    // A second store finds the schema current (and changes nothing).
    auto again = make_store("cli", conninfo);
    BOOST_TEST(again.find("old00001")->pinned);
    const ds::session_id ids[] = {"old00001"};
    BOOST_TEST(again.trash(ids, at(5000), std::nullopt).front().moved);
    BOOST_TEST(again.list_trash().size() == 1u);
    a.exec("DROP SCHEMA " + schema + " CASCADE");
}

// create() keeps pinned and forked_from; update() persists title, extra and pinned only.
BOOST_AUTO_TEST_CASE(create_and_update_keep_pins_and_origins) {
    const auto channel = fresh_channel();
    auto s = make_store(channel);
    auto m = meta("fork0001", 100);
    m.pinned = true;
    m.forked_from = ds::session_origin{"orig0001", 42};
    BOOST_TEST_REQUIRE(s.create(m));
    auto found = s.find("fork0001");
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->pinned);
    BOOST_TEST_REQUIRE(found->forked_from.has_value());
    BOOST_TEST(found->forked_from->id == "orig0001");
    BOOST_TEST(found->forked_from->seq == 42u);
    auto changed = *found;
    changed.title = "renamed";
    changed.pinned = false;
    changed.forked_from.reset(); // not the store's to change
    changed.extra["k"] = "v";
    s.update(changed);
    found = s.find("fork0001");
    BOOST_TEST(found->title == "renamed");
    BOOST_TEST(!found->pinned);
    BOOST_TEST((found->forked_from == ds::session_origin{"orig0001", 42}));
    BOOST_TEST(found->extra.at("k").as_string() == "v");
    s.append("fork0001", ex(1, 200));
    BOOST_TEST((s.load("fork0001").meta.forked_from == ds::session_origin{"orig0001", 42}));
    BOOST_TEST(s.list().front().forked_from.has_value());
    BOOST_TEST(s.list_page({10, std::nullopt, ""}).sessions.front().forked_from.has_value());
}

// create_whole() stores everything in one transaction, sending the records in batches.
BOOST_AUTO_TEST_CASE(create_whole_stores_the_session_in_batches) {
    const auto channel = fresh_channel();
    auto s = make_store(channel);
    auto m = meta("whole001", 500, "first");
    m.forked_from = ds::session_origin{"srcsrc01", 1200};
    const std::uint64_t n = 1200;
    const bool created = s.create_whole(m, [&](ds::session_sink& sink) {
        for (std::uint64_t seq = 1; seq <= n; ++seq) {
            if (seq == 600) {
                auto changed = m;
                changed.title = "second";
                changed.pinned = true;
                sink.update(changed);
            }
            if (seq != 700) // a gap is kept
                sink.add(ex(seq, 1000 + static_cast<long>(seq)), {});
        }
    });
    BOOST_TEST_REQUIRE(created);
    BOOST_TEST(s.last_create_whole_batches() == 3u); // 500 + 500 + 199 records
    const auto loaded = s.load("whole001");
    BOOST_TEST(loaded.meta.title == "second");
    BOOST_TEST(loaded.meta.pinned);
    BOOST_TEST(loaded.meta.exchange_count == n);
    BOOST_TEST((loaded.meta.updated_at == at(1000 + static_cast<long>(n))));
    BOOST_TEST((loaded.meta.created_at == at(500)));
    BOOST_TEST((loaded.meta.forked_from == ds::session_origin{"srcsrc01", 1200}));
    BOOST_TEST(loaded.exchanges.size() == n - 1);
    BOOST_TEST((loaded.exchanges[698] == ex(699, 1699)));
    BOOST_TEST((loaded.exchanges[699] == ex(701, 1701)));
    BOOST_TEST(loaded.diagnostics.size() == 1u); // the gap
    // Left closed: another writer may open it.
    auto other = make_store(channel);
    BOOST_CHECK_NO_THROW(other.open("whole001"));
    // A taken id: false, fill not called.
    bool called = false;
    BOOST_TEST(!s.create_whole(meta("whole001", 1), [&](ds::session_sink&) { called = true; }));
    BOOST_TEST(!called);
}

// A fork of 100,000 exchanges through the manager: create_whole, 200 statements of
// records (not one round trip per exchange), every exchange there.
BOOST_AUTO_TEST_CASE(a_long_fork_is_sent_in_batches) {
    const auto channel = fresh_channel();
    using manager = ds::session_manager<ds::postgres_store, ds::manual_clock, ds::sequential_ids>;
    manager m{make_store(channel)};
    const std::uint64_t n = 100000;
    BOOST_TEST_REQUIRE(m.storage().create_whole(meta("long0001", 1), exchanges(n)));
    BOOST_TEST(m.storage().last_create_whole_batches() == n / ds::detail::pg_whole_batch_rows);
    const auto start = std::chrono::steady_clock::now();
    const auto fork = m.fork_session("long0001");
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    BOOST_TEST_MESSAGE("fork of " << n << " exchanges: " << took.count() << " ms, "
                                  << m.storage().last_create_whole_batches() << " batches");
    BOOST_TEST(m.storage().last_create_whole_batches() == n / ds::detail::pg_whole_batch_rows);
    BOOST_TEST(fork.exchange_count == n);
    BOOST_TEST((fork.forked_from == ds::session_origin{"long0001", n}));
    admin a;
    BOOST_TEST(record_rows(a, channel, fork.id) == std::to_string(n));
    std::uint64_t seen = 0;
    m.storage().for_each_exchange(fork.id, 1, n, [&](ds::exchange&& e) {
        if (e == ex(seen + 1, 1000 + static_cast<long>(seen + 1)))
            ++seen;
        return true;
    });
    BOOST_TEST(seen == n);
}

// An id taken by another writer after create_whole found it free: session_exists, and
// fill never runs. The other writer's row is inserted (not committed) before the call;
// it commits once the store's insert waits on it (seen in pg_locks, not after a delay).
BOOST_AUTO_TEST_CASE(create_whole_of_an_id_taken_meanwhile_is_refused) {
    const auto channel = fresh_channel();
    auto s = make_store(channel);
    admin other, watcher;
    other.exec("BEGIN");
    other.rows("INSERT INTO dexter_sessions (channel, id, title, created_at, updated_at, "
               "exchange_count) VALUES ($1, 'race0001', 'the other', now(), now(), 0)",
               {channel.c_str()});
    std::thread commit_when_waited_on([&] {
        while (watcher.exec("SELECT count(*) FROM pg_locks WHERE NOT granted") == "0")
            std::this_thread::yield();
        other.exec("COMMIT");
    });
    bool called = false;
    BOOST_CHECK_THROW(s.create_whole(meta("race0001", 1),
                                     [&](ds::session_sink& sink) {
                                         called = true;
                                         exchanges(1)(sink);
                                     }),
                      ds::session_exists);
    commit_when_waited_on.join();
    BOOST_TEST(!called);
    const auto found = s.find("race0001");
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->title == "the other");
    BOOST_TEST(found->exchange_count == 0u);
}

// A seq that does not follow, text that is not UTF-8, a throwing filler: nothing remains.
BOOST_AUTO_TEST_CASE(create_whole_is_rolled_back_on_throw) {
    const auto channel = fresh_channel();
    admin a;
    auto s = make_store(channel);
    BOOST_CHECK_THROW(s.create_whole(meta("roll0001", 1),
                                     [](ds::session_sink& sink) {
                                         exchanges(700)(sink); // a batch was sent
                                         throw std::runtime_error("the filler gave up");
                                     }),
                      std::runtime_error);
    BOOST_TEST(!s.find("roll0001").has_value());
    BOOST_TEST(session_rows(a, channel, "roll0001") == "0");
    BOOST_TEST(record_rows(a, channel, "roll0001") == "0");

    BOOST_CHECK_THROW(s.create_whole(meta("roll0001", 1),
                                     [](ds::session_sink& sink) {
                                         exchanges(3)(sink);
                                         sink.add(ex(3, 5), {});
                                     }),
                      ds::invalid_input);
    BOOST_CHECK_THROW(s.create_whole(meta("roll0001", 1),
                                     [](ds::session_sink& sink) {
                                         auto bad = ex(1, 5);
                                         bad.answer = "\xC3(";
                                         sink.add(bad, {});
                                     }),
                      ds::invalid_input);
    BOOST_TEST(session_rows(a, channel, "roll0001") == "0");
    // The store works on, and the id is free.
    BOOST_TEST(s.create_whole(meta("roll0001", 1), exchanges(2)));
    BOOST_TEST(s.load("roll0001").exchanges.size() == 2u);
}

// A create_whole whose server is killed (pg_ctl stop -m immediate) midway, after some
// batches were sent: the call fails, and after crash recovery nothing of it remains.
BOOST_AUTO_TEST_CASE(create_whole_interrupted_by_a_killed_server_leaves_nothing) {
    const auto channel = fresh_channel();
    auto s = make_store(channel);
    bool restarted = false;
    try {
        s.create_whole(meta("kill0001", 1), [&](ds::session_sink& sink) {
            exchanges(1100)(sink); // two batches sent
            pg_ctl("stop -m immediate");
            pg_ctl("start -w");
            restarted = true;
            for (std::uint64_t seq = 1101; seq <= 1600; ++seq)
                sink.add(ex(seq, 5000), {});
        });
        BOOST_FAIL("create_whole succeeded across a killed server");
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("killed server: " << e.what());
    }
    if (!restarted)
        pg_ctl("start -w");
    admin a;
    BOOST_TEST(session_rows(a, channel, "kill0001") == "0");
    BOOST_TEST(record_rows(a, channel, "kill0001") == "0");
    BOOST_TEST(!s.find("kill0001").has_value()); // reconnects
    BOOST_TEST(s.create_whole(meta("kill0001", 1), exchanges(3)));
}

// A writer killed (SIGKILL) in the middle of create_whole leaves nothing: its
// transaction dies with its connection, and the id is free again.
BOOST_AUTO_TEST_CASE(create_whole_of_a_killed_writer_leaves_nothing) {
    const auto channel = fresh_channel();
    child_pipe pipe;
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        die_with_parent();
        pipe.child_side();
        try {
            auto s = make_store(channel);
            s.create_whole(meta("dead0001", 1), [&](ds::session_sink& sink) {
                exchanges(1100)(sink);
                pipe.say("midway");
                for (;;)
                    ::pause(); // killed here
            });
        } catch (...) {
        }
        ::_exit(3);
    }
    child_guard writer(child);
    pipe.parent_side();
    const auto line = pipe.hear();
    const int status = writer.reap();
    BOOST_TEST_REQUIRE((line == std::string("midway")), "the writer did not get midway");
    BOOST_TEST(WIFSIGNALED(status));
    admin a;
    BOOST_TEST(session_rows(a, channel, "dead0001") == "0");
    BOOST_TEST(record_rows(a, channel, "dead0001") == "0");
    auto s = make_store(channel);
    BOOST_TEST(!s.find("dead0001").has_value());
    // The id is free once the server has ended the dead writer's transaction.
    BOOST_TEST(s.create_whole(meta("dead0001", 1), exchanges(2)));
    BOOST_TEST(s.find("dead0001")->exchange_count == 2u);
}

// Trash hides a session from every read and write; restore brings it back; list_trash
// shows it; purge deletes it (and its records) for good, only at its deleted_at.
BOOST_AUTO_TEST_CASE(trash_restore_list_and_purge) {
    const auto channel = fresh_channel();
    admin a;
    auto s = make_store(channel);
    for (const char* id : {"keep0001", "tras0001", "tras0002"}) {
        BOOST_TEST_REQUIRE(s.create(meta(id, 100, std::string("title of ") + id)));
        s.append(id, ex(1, 200));
        s.close(id);
    }
    const ds::session_id ids[] = {"tras0001", "tras0002", "none0001", "BAD"};
    const auto out = s.trash(ids, at(123456789), std::nullopt);
    BOOST_TEST_REQUIRE(out.size() == 4u);
    BOOST_TEST(out[0].moved);
    BOOST_TEST(out[1].moved);
    BOOST_TEST(!out[2].moved);
    BOOST_TEST(failed_with<ds::session_not_found>(out[2]));
    BOOST_TEST(failed_with<ds::invalid_session_id>(out[3]));

    // Gone from every read and write.
    BOOST_TEST(!s.find("tras0001").has_value());
    BOOST_TEST(s.list().size() == 1u);
    BOOST_TEST(s.list_page({10, std::nullopt, ""}).sessions.size() == 1u);
    BOOST_CHECK_THROW(s.load("tras0001"), ds::session_not_found);
    BOOST_CHECK_THROW(s.open("tras0001"), ds::session_not_found);
    BOOST_CHECK_THROW(s.for_each_exchange("tras0001", 1, 10, [](ds::exchange&&) { return true; }),
                      ds::session_not_found);
    BOOST_CHECK_THROW(s.remove("tras0001"), ds::session_not_found);
    ds::search_query q;
    q.text = "question";
    q.limit = 10;
    const auto hits = s.search(q);
    BOOST_TEST_REQUIRE(!hits.hits.empty());
    for (const auto& h : hits.hits)
        BOOST_TEST(h.id == "keep0001");
    BOOST_TEST(!s.create(meta("tras0001", 1))); // the id stays taken
    BOOST_TEST(!s.create_whole(meta("tras0002", 1), exchanges(1)));

    // In the trash, with its metadata and deleted_at.
    auto trash = s.list_trash();
    BOOST_TEST_REQUIRE(trash.size() == 2u);
    std::sort(trash.begin(), trash.end(),
              [](const auto& x, const auto& y) { return x.meta.id < y.meta.id; });
    BOOST_TEST(trash[0].meta.id == "tras0001");
    BOOST_TEST(trash[0].meta.title == "title of tras0001");
    BOOST_TEST(trash[0].meta.exchange_count == 1u);
    BOOST_TEST((trash[0].deleted_at == at(123456789)));

    // Restore.
    const auto back = s.restore("tras0001");
    BOOST_TEST(back.id == "tras0001");
    BOOST_TEST(back.exchange_count == 1u);
    BOOST_TEST(s.load("tras0001").exchanges.size() == 1u);
    BOOST_CHECK_THROW(s.restore("tras0001"), ds::session_not_found);
    BOOST_CHECK_THROW(s.restore("BAD"), ds::invalid_session_id);
    BOOST_TEST(s.list_trash().size() == 1u);

    // Purge: only the trashed session, only at its deleted_at.
    BOOST_CHECK_THROW(s.purge("tras0002", at(123456788)), ds::session_not_found);
    BOOST_CHECK_THROW(s.purge("tras0001", at(123456789)), ds::session_not_found); // live
    BOOST_TEST(record_rows(a, channel, "tras0002") == "1");
    s.purge("tras0002", at(123456789));
    BOOST_TEST(session_rows(a, channel, "tras0002") == "0");
    BOOST_TEST(record_rows(a, channel, "tras0002") == "0");
    BOOST_CHECK_THROW(s.purge("tras0002", at(123456789)), ds::session_not_found);
    BOOST_TEST(s.list_trash().empty());

    // A hard delete of a live session works as before.
    s.remove("keep0001");
    BOOST_TEST(session_rows(a, channel, "keep0001") == "0");
    BOOST_TEST(record_rows(a, channel, "keep0001") == "0");
}

// Trash takes each session's lease: refused (busy) while another store object (another
// connection) holds it; allowed when this object holds it, whose lease then ends.
BOOST_AUTO_TEST_CASE(trash_of_a_session_held_elsewhere_is_busy) {
    const auto channel = fresh_channel();
    auto holder = make_store(channel), other = make_store(channel);
    BOOST_TEST_REQUIRE(holder.create(meta("held0001", 100)));
    const ds::session_id ids[] = {"held0001"};
    const auto refused = other.trash(ids, at(1000), std::nullopt);
    BOOST_TEST(!refused[0].moved);
    BOOST_TEST(failed_with<ds::session_busy>(refused[0]));
    BOOST_TEST(other.find("held0001").has_value());
    BOOST_TEST(other.list_trash().empty());

    const auto moved = holder.trash(ids, at(1000), std::nullopt);
    BOOST_TEST(moved[0].moved);
    BOOST_TEST(!moved[0].error);
    // The lease ended with the move: another writer may take the session once restored.
    other.restore("held0001");
    BOOST_CHECK_NO_THROW(other.open("held0001"));
    BOOST_CHECK_THROW(holder.append("held0001", ex(1, 200)), ds::storage_error); // not open
}

// With stale_before, a session saved into (by another writer) or pinned since it was
// listed stays; a stale one moves.
BOOST_AUTO_TEST_CASE(stale_before_leaves_sessions_saved_into_or_pinned) {
    const auto channel = fresh_channel();
    auto pruner = make_store(channel), writer = make_store(channel);
    for (const char* id : {"stal0001", "save0001", "pinn0001"}) {
        BOOST_TEST_REQUIRE(writer.create(meta(id, 100)));
        writer.append(id, ex(1, 200));
    }
    auto pinned = *writer.find("pinn0001");
    pinned.pinned = true;
    writer.update(pinned);
    // Listed as stale (updated_at 200 < 1000), then saved into meanwhile.
    writer.append("save0001", ex(2, 5000));
    for (const char* id : {"stal0001", "save0001", "pinn0001"})
        writer.close(id);
    const ds::session_id ids[] = {"stal0001", "save0001", "pinn0001"};
    const auto out = pruner.trash(ids, at(6000), at(1000));
    BOOST_TEST(out[0].moved);
    BOOST_TEST(!out[1].moved);
    BOOST_TEST(!out[1].error);
    BOOST_TEST(out[1].kept_because == "it was saved into since it was listed");
    BOOST_TEST(!out[2].moved);
    BOOST_TEST(!out[2].error);
    BOOST_TEST(out[2].kept_because == "it is pinned");
    BOOST_TEST(pruner.find("save0001").has_value());
    BOOST_TEST(pruner.find("pinn0001").has_value());
    BOOST_TEST(!pruner.find("stal0001").has_value());
    // Kept sessions are not left leased: their writer opens them again.
    BOOST_CHECK_NO_THROW(writer.open("save0001"));
    // Under a lease held elsewhere, even a stale session is busy.
    const ds::session_id held[] = {"save0001"};
    BOOST_TEST(failed_with<ds::session_busy>(pruner.trash(held, at(7000), at(99999)).front()));
}

BOOST_AUTO_TEST_SUITE_END()
