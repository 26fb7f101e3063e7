// SPDX-License-Identifier: BSL-1.0
// session_manager.hpp, composed as test_session_manager: memory_store, manual_clock,
// sequential_ids, chat_history.
#include <dexter/sessions/session_manager.hpp>

#define BOOST_TEST_MODULE session_manager
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include "support/printable.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace json = boost::json;
using namespace std::chrono_literals;
using mgr = ds::test_session_manager;
using sys_tp = std::chrono::system_clock::time_point;
using ds::test::bytes;
using ds::test::show;

namespace {

sys_tp at(int y, unsigned m, unsigned d) {
    return sys_tp{std::chrono::sys_days{std::chrono::year{y} / m / d}};
}

/// A stored instant as text (Boost.Test cannot print time points).
std::string ts(ds::time_point t) {
    return ds::format_timestamp(t);
}
std::string ts(sys_tp t) {
    return ts(std::chrono::floor<std::chrono::milliseconds>(t));
}

std::vector<std::string> ids_of(const std::vector<ds::session_meta>& ms) {
    std::vector<std::string> out;
    for (const auto& m : ms)
        out.push_back(m.id);
    return out;
}

std::size_t stored_exchanges(ds::memory_store& store, const std::string& id) {
    return store.load(id, ds::all_exchanges).exchanges.size();
}

ds::exchange draft(std::string query, std::string answer) {
    ds::exchange ex;
    ex.query = std::move(query);
    ex.answer = std::move(answer);
    return ex;
}

/// Saves `n` exchanges "q<i>" / "a<i>" (summary "s<i>") in the current session.
void save_n(mgr& m, int n, int first = 0) {
    for (int i = first; i < first + n; ++i) {
        ds::exchange ex = draft("q" + std::to_string(i), "a" + std::to_string(i));
        ex.summary = "s" + std::to_string(i);
        m.save_exchange(std::move(ex));
    }
}

} // namespace

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(new_sessions)

BOOST_AUTO_TEST_CASE(nothing_is_stored_until_the_first_save) {
    ds::memory_store store;
    {
        mgr m{store};
        const ds::session_meta& meta = m.start_new();
        BOOST_TEST(meta.id == "s0000001");
        BOOST_TEST(ds::is_valid_session_id(meta.id));
        BOOST_TEST(meta.exchange_count == 0u);
        BOOST_TEST(ts(meta.created_at) == ts(m.clock().now()));
        BOOST_TEST(ts(meta.updated_at) == ts(m.clock().now()));
        BOOST_TEST(!m.current_is_stored());
        BOOST_TEST(m.history().empty());

        BOOST_TEST(m.start_new().id == "s0000002"); // another one, still nothing stored
        const auto c = store.counts();
        BOOST_TEST(c.create == 0u);
        BOOST_TEST(c.append == 0u);
        BOOST_TEST(c.update == 0u);
        BOOST_TEST(store.list().empty());
        BOOST_TEST(m.list_sessions().empty());
        BOOST_CHECK_THROW(m.resume("s0000001"), ds::session_not_found);
    }
    BOOST_TEST(store.list().empty()); // and none after the manager is gone
}

BOOST_AUTO_TEST_CASE(saves_number_from_one_and_take_the_clock) {
    ds::memory_store store;
    mgr m{store};
    m.clock().set(at(2026, 3, 1) + 10h + 123456789ns);
    const auto id = m.start_new().id;
    const auto created = ts(m.clock().now());
    BOOST_TEST(created == "2026-03-01T10:00:00.123Z");

    ds::exchange d = draft("What is 2+2?", "4");
    d.seq = 99;                               // replaced by the manager
    d.timestamp = ds::time_point{} + 12345ms; // likewise
    d.summary = "four";
    d.model = "test-model";
    d.duration_ms = 321;
    d.tool_calls = json::array{json::object{{"name", "calc"}, {"args", {{"expr", "2+2"}}}}};
    d.extra = json::object{{"host", "x"}};
    const ds::exchange e1 = m.save_exchange(d);
    BOOST_TEST(e1.seq == 1u);
    BOOST_TEST(ts(e1.timestamp) == "2026-03-01T10:00:00.123Z");
    BOOST_TEST(e1.query == d.query);
    BOOST_TEST((e1.summary == d.summary));
    BOOST_TEST((e1.model == d.model));
    BOOST_TEST((e1.duration_ms == d.duration_ms));
    BOOST_TEST(e1.tool_calls == d.tool_calls);
    BOOST_TEST(e1.extra == d.extra);
    BOOST_TEST(m.current_is_stored());
    BOOST_TEST(m.current()->id == id);

    m.clock().advance(1500us); // .124956789 -> .124
    const ds::exchange e2 = m.save_exchange("second", "answer 2");
    BOOST_TEST(e2.seq == 2u);
    BOOST_TEST(ts(e2.timestamp) == "2026-03-01T10:00:00.124Z");

    m.clock().advance(1h);
    const ds::exchange e3 = m.save_exchange("third", "answer 3");
    BOOST_TEST(e3.seq == 3u);
    BOOST_TEST(ts(e3.timestamp) == "2026-03-01T11:00:00.124Z");

    // What the store holds is exactly what was returned.
    const auto loaded = store.load(id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 3u);
    BOOST_TEST(loaded.exchanges[0] == e1);
    BOOST_TEST(loaded.exchanges[1] == e2);
    BOOST_TEST(loaded.exchanges[2] == e3);
    const auto found = store.find(id);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->exchange_count == 3u);
    BOOST_TEST(ts(found->created_at) == created);
    BOOST_TEST(ts(found->updated_at) == ts(e3.timestamp));
    BOOST_TEST(*found == *m.current());
    BOOST_TEST(m.history().size() == 3u);
    BOOST_TEST(ids_of(m.list_sessions()) == std::vector<std::string>{id});
}

BOOST_AUTO_TEST_CASE(timestamps_are_floored_to_milliseconds_before_the_epoch_too) {
    ds::memory_store store;
    mgr m{store};
    m.clock().set(sys_tp{} - 500us); // 1969-12-31T23:59:59.9995: floor, not truncation
    m.start_new();
    const auto e = m.save_exchange("q", "a");
    BOOST_TEST(ts(e.timestamp) == "1969-12-31T23:59:59.999Z");
    BOOST_TEST(ts(m.current()->created_at) == "1969-12-31T23:59:59.999Z");
}

namespace {

struct title_case {
    std::string name;
    std::string query;
};

std::ostream& operator<<(std::ostream& os, const title_case& c) {
    return os << c.name;
}

std::vector<title_case> title_cases() {
    return {
        {"short", "What is 2+2?"},
        {"multi-line", "first line of the question\nsecond line\nthird"},
        {"leading blank lines and spaces", "\n\n   spaced    out   \nrest"},
        {"long line", std::string(200, 'x')},
        {"long line with an emoji at byte 78", std::string(78, 'x') + "\xF0\x9F\x98\x80tail"},
        {"long unicode line",
         [] {
             std::string s;
             for (int i = 0; i < 60; ++i)
                 s += "\xC3\xA9";
             return s;
         }()},
    };
}

} // namespace

BOOST_DATA_TEST_CASE(title_comes_from_the_first_query, boost::unit_test::data::make(title_cases()),
                     c) {
    ds::memory_store store;
    mgr m{store};
    const auto id = m.start_new().id;
    m.save_exchange(c.query, "answer");
    m.save_exchange("a different second query", "answer");
    const auto found = store.find(id);
    BOOST_TEST_REQUIRE(found.has_value());
    const std::string& title = found->title;
    BOOST_TEST(title == m.current()->title);
    BOOST_TEST(title.size() <= 80u);
    BOOST_TEST(!title.empty());
    BOOST_TEST(title.find('\n') == std::string::npos);
    BOOST_TEST(ds::is_valid_utf8(title));
    BOOST_TEST(title.find("second query") == std::string::npos);
    // The one-line summary of the query, at most 80 bytes (summarize_text is tested on
    // its own in chat_history_test).
    BOOST_TEST(title == ds::summarize_text(c.query, 80), show(title, 80));
    if (c.query.find('\n') == std::string::npos && c.query.size() <= 80)
        BOOST_TEST(title == c.query);
}

BOOST_AUTO_TEST_CASE(updated_at_never_goes_backwards) {
    ds::memory_store store;
    mgr m{store};
    const sys_tp start = at(2026, 1, 1);
    m.clock().set(start);
    const auto id = m.start_new().id;
    const auto e1 = m.save_exchange("q1", "a1");
    BOOST_TEST(ts(m.current()->updated_at) == ts(start));

    m.clock().set(at(1970, 1, 1)); // the clock jumps back
    const auto e2 = m.save_exchange("q2", "a2");
    BOOST_TEST(ts(e2.timestamp) == "1970-01-01T00:00:00.000Z"); // recorded as is
    BOOST_TEST(e2.seq == 2u);
    BOOST_TEST(ts(m.current()->updated_at) == ts(start));

    m.clock().set(at(2100, 1, 1)); // and far forward
    const auto e3 = m.save_exchange("q3", "a3");
    BOOST_TEST(ts(e3.timestamp) == "2100-01-01T00:00:00.000Z");
    BOOST_TEST(ts(m.current()->updated_at) == "2100-01-01T00:00:00.000Z");

    m.clock().set(at(1970, 1, 1));
    const auto e4 = m.save_exchange("q4", "a4");
    BOOST_TEST(ts(e4.timestamp) == "1970-01-01T00:00:00.000Z");
    BOOST_TEST(ts(m.current()->updated_at) == "2100-01-01T00:00:00.000Z");
    BOOST_TEST(e4.seq == 4u);

    const auto found = store.find(id);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(ts(found->updated_at) == "2100-01-01T00:00:00.000Z");
    BOOST_TEST(ts(found->created_at) == ts(start));
    const auto listed = m.list_sessions();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(ts(listed[0].updated_at) == "2100-01-01T00:00:00.000Z");
    const auto xs = store.load(id, ds::all_exchanges).exchanges;
    BOOST_TEST_REQUIRE(xs.size() == 4u);
    BOOST_TEST(xs[0] == e1);
    BOOST_TEST(xs[1] == e2);
    BOOST_TEST(xs[2] == e3);
    BOOST_TEST(xs[3] == e4);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(resuming)

BOOST_AUTO_TEST_CASE(by_full_id_and_by_unique_prefix) {
    ds::memory_store store;
    {
        mgr a{store};
        a.start_new(); // s0000001
        save_n(a, 2);
    }
    {
        mgr b{store, ds::manual_clock{}, ds::sequential_ids{1000000}};
        BOOST_TEST(b.start_new().id == "s1000000");
        save_n(b, 1);
    }
    mgr c{store};
    BOOST_TEST(c.resume("s0000001").meta.id == "s0000001");
    BOOST_TEST(c.current()->id == "s0000001");
    BOOST_TEST(c.current()->exchange_count == 2u);
    for (std::string_view p : {"s100", "s1000", "s10000", "s100000", "s1000000"})
        BOOST_TEST_CONTEXT(p) {
            BOOST_TEST(c.resume(p).meta.id == "s1000000");
        }
    for (std::string_view p : {"s000", "s0000", "s00000", "s000000", "s0000001"})
        BOOST_TEST_CONTEXT(p) {
            BOOST_TEST(c.resume(p).meta.id == "s0000001");
        }
    BOOST_TEST(c.resolve("s100") == "s1000000");

    // Resuming the session already open here works (no busy), and saving continues.
    BOOST_TEST(c.resume("s0000001").meta.exchange_count == 2u);
    BOOST_TEST(c.save_exchange("more", "yes").seq == 3u);
}

BOOST_AUTO_TEST_CASE(short_prefix_is_invalid_and_unknown_is_not_found) {
    ds::memory_store store;
    mgr a{store};
    a.start_new();
    save_n(a, 1);
    const auto id = a.current()->id;

    mgr b{store};
    for (std::string_view p : {"s", "s0", "s00", ""}) {
        BOOST_TEST_CONTEXT("'" << p << "'") {
            BOOST_CHECK_EXCEPTION(b.resume(p), ds::invalid_session_id,
                                  [&](const ds::invalid_session_id& e) { return e.value() == p; });
        }
    }
    BOOST_CHECK_THROW(b.resume("zzzzzzzz"), ds::session_not_found);
    BOOST_CHECK_THROW(b.resume("zzzz"), ds::session_not_found);
    BOOST_CHECK_THROW(b.resume("s0000009"), ds::session_not_found);
    BOOST_CHECK_EXCEPTION(b.resume("s001"), ds::session_not_found,
                          [](const ds::session_not_found& e) { return e.id() == "s001"; });
    BOOST_TEST(!b.current().has_value());

    // A failed resume leaves the current session current and writable.
    a.close();
    b.resume(id);
    BOOST_CHECK_THROW(b.resume("zzzzzzzz"), ds::session_not_found);
    BOOST_CHECK_THROW(b.resume("s0"), ds::invalid_session_id);
    BOOST_TEST_REQUIRE(b.current().has_value());
    BOOST_TEST(b.current()->id == id);
    BOOST_TEST(b.save_exchange("again", "fine").seq == 2u);
}

BOOST_AUTO_TEST_CASE(ambiguous_prefix_lists_the_candidates) {
    ds::memory_store store;
    mgr a{store};
    a.start_new(); // s0000001
    save_n(a, 1);
    a.start_new(); // s0000002
    save_n(a, 1);
    a.start_new(); // s0000003, never saved: no candidate
    // s0000004 exists in the store without an exchange (as a crash between create and
    // the first append leaves it): no candidate either, and not listed.
    ds::session_meta empty;
    empty.id = "s0000004";
    BOOST_TEST_REQUIRE(store.create(empty));
    store.close(empty.id);
    BOOST_TEST(ids_of(a.list_sessions()) == (std::vector<std::string>{"s0000001", "s0000002"}));

    mgr b{store};
    for (std::string_view p : {"s000", "s0000", "s000000"}) {
        BOOST_TEST_CONTEXT(p) {
            BOOST_CHECK_EXCEPTION(
                b.resume(p), ds::ambiguous_session_id, [](const ds::ambiguous_session_id& e) {
                    BOOST_TEST(e.candidates() ==
                               (std::vector<std::string>{"s0000001", "s0000002"}));
                    const std::string what = e.what();
                    BOOST_TEST(what.find("s0000001") != std::string::npos);
                    BOOST_TEST(what.find("s0000002") != std::string::npos);
                    BOOST_TEST(what.find("s0000003") == std::string::npos);
                    BOOST_TEST(what.find("s0000004") == std::string::npos);
                    return true;
                });
        }
    }
    BOOST_TEST(!b.current().has_value());
    BOOST_TEST(b.resume("s0000002").meta.id == "s0000002");
}

BOOST_DATA_TEST_CASE(replays_the_last_context_exchanges,
                     boost::unit_test::data::make({0, 1, 3, 10, 24, 25, 26, 100}), context) {
    ds::memory_store store;
    std::string id;
    {
        mgr a{store};
        id = a.start_new().id;
        save_n(a, 25);
    }
    ds::manager_options opts;
    opts.context_exchanges = static_cast<std::size_t>(context);
    mgr b{store, ds::manual_clock{}, ds::sequential_ids{}, ds::chat_history{}, opts};
    const auto loaded = b.resume(id);
    const std::size_t k = std::min<std::size_t>(25, opts.context_exchanges);

    BOOST_TEST(loaded.meta.exchange_count == 25u); // every exchange counts
    BOOST_TEST(b.current()->exchange_count == 25u);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == k);
    for (std::size_t i = 0; i < k; ++i)
        BOOST_TEST(loaded.exchanges[i].seq == 25 - k + i + 1);
    BOOST_TEST_REQUIRE(b.history().size() == k);
    const auto& turns = b.history().turns();
    for (std::size_t i = 0; i < k; ++i) {
        const std::size_t n = 25 - k + i;
        BOOST_TEST(turns[i].query == "q" + std::to_string(n));
        BOOST_TEST(turns[i].answer == "a" + std::to_string(n));
        BOOST_TEST((turns[i].summary == std::optional<std::string>("s" + std::to_string(n))));
    }
    BOOST_TEST(b.save_exchange("next", "one").seq == 26u);
}

BOOST_AUTO_TEST_CASE(default_context_is_10_and_resume_replaces_the_history) {
    ds::memory_store store;
    mgr m{store};
    const auto first = m.start_new().id;
    save_n(m, 12, 0);
    const auto second = m.start_new().id;
    BOOST_TEST(m.history().empty()); // start_new clears
    save_n(m, 2, 100);

    BOOST_TEST(m.options().context_exchanges == 10u);
    m.resume(first);
    BOOST_TEST(m.history().size() == 10u);
    BOOST_TEST(m.history().turns().front().query == "q2");
    BOOST_TEST(m.history().turns().back().query == "q11");
    m.resume(second);
    BOOST_TEST(m.history().size() == 2u);
    BOOST_TEST(m.history().turns().front().query == "q100");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

namespace {

/// memory_store with list() in reverse id order: "list() gives every session, in any
/// order", so the manager must sort by itself.
class reversed_store : public ds::memory_store {
public:
    std::vector<ds::session_meta> list() {
        auto all = ds::memory_store::list();
        std::reverse(all.begin(), all.end());
        return all;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(listing_and_deleting)

using stores = std::tuple<ds::memory_store, reversed_store>;

BOOST_AUTO_TEST_CASE_TEMPLATE(newest_first_ties_by_id, Store, stores) {
    static_assert(ds::session_storage<Store>);
    Store store;
    ds::session_manager<Store, ds::manual_clock, ds::sequential_ids> m{store};
    const sys_tp t = at(2026, 5, 1);
    auto session_at = [&](sys_tp when) {
        m.clock().set(when);
        m.start_new();
        m.save_exchange("q", "a");
        return m.current()->id;
    };
    const auto s1 = session_at(t + 10s);
    const auto s2 = session_at(t + 20s);
    const auto s3 = session_at(t + 30s);
    const auto s4 = session_at(t + 5s);
    m.start_new(); // s5 is never saved: not listed
    // s1 catches up with s3: a tie, broken by id.
    m.resume(s1);
    m.clock().set(t + 30s);
    m.save_exchange("q", "a");

    const auto listed = m.list_sessions();
    BOOST_TEST(ids_of(listed) == (std::vector<std::string>{s1, s3, s2, s4}));
    for (std::size_t i = 1; i < listed.size(); ++i)
        BOOST_TEST((listed[i - 1].updated_at >= listed[i].updated_at));
}

BOOST_AUTO_TEST_CASE(delete_current_and_other_sessions) {
    ds::memory_store store;
    mgr m{store};
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        m.clock().advance(1s);
        ids.push_back(m.start_new().id);
        save_n(m, 2);
    }
    // Not the current one.
    m.delete_session(ids[0]);
    BOOST_TEST(!store.find(ids[0]).has_value());
    BOOST_TEST(m.current()->id == ids[2]);
    BOOST_TEST(m.history().size() == 2u);
    BOOST_TEST(ids_of(m.list_sessions()) == (std::vector<std::string>{ids[2], ids[1]}));
    BOOST_TEST(m.save_exchange("still", "here").seq == 3u);

    // The current one.
    m.delete_session(ids[2]);
    BOOST_TEST(!m.current().has_value());
    BOOST_TEST(!m.current_is_stored());
    BOOST_TEST(m.history().empty());
    BOOST_TEST(!store.find(ids[2]).has_value());
    BOOST_TEST(ids_of(m.list_sessions()) == std::vector<std::string>{ids[1]});
    BOOST_CHECK_THROW(m.save_exchange("q", "a"), ds::error);

    // Unknown ids.
    BOOST_CHECK_THROW(m.delete_session(ids[0]), ds::session_not_found);
    BOOST_CHECK_THROW(m.delete_session("zzzzzzzz"), ds::session_not_found);
    BOOST_TEST(ids_of(m.list_sessions()) == std::vector<std::string>{ids[1]});
}

BOOST_AUTO_TEST_CASE(deleting_a_session_open_elsewhere_is_busy) {
    ds::memory_store store;
    mgr a{store};
    const auto id = a.start_new().id;
    save_n(a, 1);
    mgr b{store};
    BOOST_CHECK_THROW(b.delete_session(id), ds::session_busy);
    BOOST_TEST(store.find(id).has_value());
    BOOST_TEST(a.save_exchange("still", "mine").seq == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(two_writers)

BOOST_AUTO_TEST_CASE(a_session_open_in_one_manager_is_busy_in_another) {
    ds::memory_store store;
    auto a = std::make_unique<mgr>(store);
    const auto id = a->start_new().id;
    save_n(*a, 1);

    auto b = std::make_unique<mgr>(store);
    BOOST_CHECK_THROW(b->resume(id), ds::session_busy);
    BOOST_CHECK_THROW(b->resume(id.substr(0, 5)), ds::session_busy);
    BOOST_TEST(!b->current().has_value());

    a->close(); // releases it
    BOOST_TEST(!a->current().has_value());
    BOOST_TEST(b->resume(id).meta.exchange_count == 1u);
    BOOST_TEST(b->save_exchange("from b", "ok").seq == 2u);
    BOOST_CHECK_THROW(a->resume(id), ds::session_busy);

    b.reset(); // destroying the holder releases it too
    BOOST_TEST(a->resume(id).meta.exchange_count == 2u);
    BOOST_TEST(a->history().size() == 2u);

    // start_new() releases the previous session.
    auto c = std::make_unique<mgr>(store);
    BOOST_CHECK_THROW(c->resume(id), ds::session_busy);
    a->start_new();
    BOOST_TEST(c->resume(id).meta.id == id);

    // So does resuming another session.
    save_n(*a, 1);
    const auto other = a->current()->id;
    BOOST_TEST(other != id);
    BOOST_CHECK_THROW(c->resume(other), ds::session_busy);
    c->close();
    a->resume(id); // a now holds id and has let go of other
    BOOST_TEST(c->resume(other).meta.id == other);
    BOOST_CHECK_THROW(c->resume(id), ds::session_busy);
}

BOOST_AUTO_TEST_CASE(a_moved_manager_keeps_the_lease) {
    ds::memory_store store;
    mgr a{store};
    const auto id = a.start_new().id;
    save_n(a, 1);
    std::optional<mgr> moved;
    moved.emplace(std::move(a));
    BOOST_TEST(moved->current()->id == id);
    mgr other{store};
    BOOST_CHECK_THROW(other.resume(id), ds::session_busy);
    BOOST_TEST(moved->save_exchange("q", "a").seq == 2u);
    moved.reset();
    BOOST_TEST(other.resume(id).meta.exchange_count == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(failures)

BOOST_AUTO_TEST_CASE(failed_append_changes_nothing) {
    ds::memory_store store;
    mgr m{store};
    const auto id = m.start_new().id;
    save_n(m, 2);
    const ds::session_meta before = *m.current();
    const auto stored_before = store.find(id);

    m.clock().advance(1h); // so that a leaked update would show
    store.fail_append(1);
    BOOST_CHECK_EXCEPTION(m.save_exchange("lost", "answer"), ds::storage_error,
                          [](const ds::storage_error& e) { return e.errno_value() == EIO; });
    BOOST_TEST(*m.current() == before);
    BOOST_TEST(m.current()->exchange_count == 2u);
    BOOST_TEST(m.history().size() == 2u);
    BOOST_TEST(stored_exchanges(store, id) == 2u);
    BOOST_TEST_REQUIRE(store.find(id).has_value());
    BOOST_TEST(*store.find(id) == *stored_before);

    const auto next = m.save_exchange("kept", "answer");
    BOOST_TEST(next.seq == 3u); // the same seq the failed save had
    BOOST_TEST(stored_exchanges(store, id) == 3u);
    BOOST_TEST(m.history().size() == 3u);

    // The 2nd save from now fails, the ones around it succeed.
    store.fail_append(2);
    BOOST_TEST(m.save_exchange("a", "b").seq == 4u);
    BOOST_CHECK_THROW(m.save_exchange("c", "d"), ds::storage_error);
    BOOST_TEST(m.save_exchange("e", "f").seq == 5u);
    BOOST_TEST(stored_exchanges(store, id) == 5u);
}

BOOST_AUTO_TEST_CASE(failed_first_save_leaves_nothing_behind) {
    ds::memory_store store;
    mgr m{store};
    const auto id = m.start_new().id;
    store.fail_append(1);
    BOOST_CHECK_THROW(m.save_exchange("first", "answer"), ds::storage_error);
    BOOST_TEST(store.list().empty());
    BOOST_TEST(!store.find(id).has_value());
    BOOST_TEST(m.list_sessions().empty());
    BOOST_TEST_REQUIRE(m.current().has_value());
    BOOST_TEST(m.current()->id == id);
    BOOST_TEST(m.current()->exchange_count == 0u);
    BOOST_TEST(m.current()->title.empty());
    BOOST_TEST(!m.current_is_stored());
    BOOST_TEST(m.history().empty());

    const auto e = m.save_exchange("first again", "answer");
    BOOST_TEST(e.seq == 1u);
    BOOST_TEST(ids_of(m.list_sessions()) == std::vector<std::string>{id});
    BOOST_TEST(store.find(id)->title == "first again");
    BOOST_TEST(stored_exchanges(store, id) == 1u);
}

namespace {

struct bad_text_case {
    std::string name;
    std::string field; ///< the field the error message names
    std::function<void(ds::exchange&)> spoil;
};

std::ostream& operator<<(std::ostream& os, const bad_text_case& c) {
    return os << c.name;
}

std::vector<bad_text_case> bad_text_cases() {
    return {
        {"query lone 0xff", "query", [](ds::exchange& e) { e.query = "bad \xFF"; }},
        {"query truncated", "query", [](ds::exchange& e) { e.query = "ok\xC3"; }},
        {"answer surrogate", "answer", [](ds::exchange& e) { e.answer = "\xED\xA0\x80"; }},
        {"answer overlong", "answer", [](ds::exchange& e) { e.answer = "\xC0\xAF"; }},
        {"summary above U+10FFFF", "summary",
         [](ds::exchange& e) { e.summary = "\xF4\x90\x80\x80"; }},
        {"model stray continuation", "model", [](ds::exchange& e) { e.model = "m\x80"; }},
        {"tool_calls string", "tool_calls",
         [](ds::exchange& e) { e.tool_calls = json::array{"\xFF"}; }},
        {"tool_calls nested value", "tool_calls",
         [](ds::exchange& e) {
             e.tool_calls = json::array{json::object{{"args", {{"q", json::array{"\xC3"}}}}}};
         }},
        {"tool_calls key", "tool_calls",
         [](ds::exchange& e) {
             e.tool_calls = json::array{json::object{{"\xFF", 1}}};
         }},
        {"extra value", "extra",
         [](ds::exchange& e) {
             e.extra = json::object{{"k", "\xFF"}};
         }},
        {"extra key", "extra",
         [](ds::exchange& e) {
             e.extra = json::object{{"\xFF", 1}};
         }},
        {"extra nested", "extra",
         [](ds::exchange& e) {
             e.extra = json::object{{"k", {{"deep", json::array{"\x80"}}}}};
         }},
    };
}

ds::exchange valid_draft() {
    ds::exchange e = draft("caf\xC3\xA9 \xF0\x9F\x98\x80", "fine");
    e.summary = "s";
    e.model = "m";
    e.tool_calls = json::array{json::object{{"name", "t"}}};
    e.extra = json::object{{"k", "v"}};
    return e;
}

} // namespace

BOOST_DATA_TEST_CASE(invalid_utf8_is_refused_and_nothing_stored,
                     boost::unit_test::data::make(bad_text_cases()), c) {
    ds::memory_store store;
    mgr m{store};

    // On a new session: nothing created.
    const auto id = m.start_new().id;
    ds::exchange bad = valid_draft();
    c.spoil(bad);
    BOOST_CHECK_EXCEPTION(m.save_exchange(bad), ds::invalid_input, [&](const ds::invalid_input& e) {
        return std::string(e.what()).find(c.field) != std::string::npos;
    });
    BOOST_TEST(store.counts().create == 0u);
    BOOST_TEST(store.counts().append == 0u);
    BOOST_TEST(store.list().empty());
    BOOST_TEST(m.current()->exchange_count == 0u);
    BOOST_TEST(m.current()->title.empty());
    BOOST_TEST(m.history().empty());

    // On a stored session: nothing appended.
    BOOST_TEST(m.save_exchange(valid_draft()).seq == 1u);
    const auto appends = store.counts().append;
    BOOST_CHECK_THROW(m.save_exchange(bad), ds::invalid_input);
    BOOST_TEST(store.counts().append == appends);
    BOOST_TEST(stored_exchanges(store, id) == 1u);
    BOOST_TEST(m.current()->exchange_count == 1u);
    BOOST_TEST(m.history().size() == 1u);
    BOOST_TEST(m.save_exchange(valid_draft()).seq == 2u);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_title_is_refused) {
    ds::memory_store store;
    mgr m{store};
    const auto id = m.start_new().id;
    m.save_exchange("query", "answer");
    const auto updates = store.counts().update;
    BOOST_CHECK_THROW(m.set_title("bad \xFF title"), ds::invalid_input);
    BOOST_TEST(store.counts().update == updates);
    BOOST_TEST(store.find(id)->title == "query");
    BOOST_TEST(m.current()->title == "query");
}

BOOST_AUTO_TEST_CASE(no_current_session_is_an_error) {
    ds::memory_store store;
    mgr m{store};
    BOOST_CHECK_THROW(m.save_exchange("q", "a"), ds::error);
    BOOST_CHECK_THROW(m.save_exchange(draft("q", "a")), ds::error);
    BOOST_CHECK_THROW(m.set_title("t"), ds::error);
    m.start_new();
    m.save_exchange("q", "a");
    m.close();
    BOOST_CHECK_THROW(m.save_exchange("q", "a"), ds::error);
    BOOST_TEST(store.counts().append == 1u);
}

BOOST_AUTO_TEST_CASE(hostile_ids_never_reach_the_store) {
    ds::memory_store store;
    mgr m{store};
    m.start_new();
    m.save_exchange("q", "a");
    const std::vector<std::string> hostile = {"../../etc/passwd",
                                              "..",
                                              "/abs",
                                              "a/b",
                                              "",
                                              "ABCDEFGH",
                                              "-rf",
                                              "--help",
                                              bytes("abcd\0efg"),
                                              "abcdefghi",
                                              std::string(10 * 1024, 'a'),
                                              "abcdef\xC3\xA9",
                                              "\xF0\x9F\x98\x80\xF0\x9F\x98\x80"};
    const auto before = store.counts();
    for (const auto& id : hostile) {
        BOOST_TEST_CONTEXT(show(id, 80)) {
            BOOST_CHECK_EXCEPTION(m.resume(id), ds::invalid_session_id,
                                  [&](const ds::invalid_session_id& e) { return e.value() == id; });
            BOOST_CHECK_EXCEPTION(m.delete_session(id), ds::invalid_session_id,
                                  [&](const ds::invalid_session_id& e) { return e.value() == id; });
        }
    }
    BOOST_TEST((store.counts() == before)); // not a single store call
    BOOST_TEST(m.current().has_value());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(titles)

BOOST_AUTO_TEST_CASE(set_title_before_the_first_save) {
    ds::memory_store store;
    mgr m{store};
    const auto id = m.start_new().id;
    m.set_title("My title");
    BOOST_TEST(m.current()->title == "My title");
    BOOST_TEST(store.counts().create == 0u); // still nothing stored
    BOOST_TEST(store.counts().update == 0u);
    BOOST_TEST(store.list().empty());
    m.save_exchange("the first query", "answer");
    BOOST_TEST_REQUIRE(store.find(id).has_value());
    BOOST_TEST(store.find(id)->title == "My title"); // not replaced by the query
    BOOST_TEST(m.current()->title == "My title");
}

BOOST_AUTO_TEST_CASE(set_title_after_the_first_save) {
    ds::memory_store store;
    std::string id;
    {
        mgr m{store};
        id = m.start_new().id;
        save_n(m, 2);
        const std::string title = "Renamed \xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\x98\x80";
        m.set_title(title);
        BOOST_TEST_REQUIRE(store.find(id).has_value());
        BOOST_TEST(store.find(id)->title == title);
        BOOST_TEST(store.find(id)->exchange_count == 2u);
        BOOST_TEST(m.list_sessions().at(0).title == title);
        m.save_exchange("later", "answer");
        BOOST_TEST(store.find(id)->title == title); // a later save keeps it
    }
    mgr other{store};
    BOOST_TEST(other.resume(id).meta.title == "Renamed \xE2\x80\x94 caf\xC3\xA9 \xF0\x9F\x98\x80");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

namespace {

/// Hands out the ids it was given, in order, then repeats the last one.
struct scripted_ids {
    std::vector<std::string> ids;
    std::size_t next = 0;
    ds::session_id operator()() {
        const auto& id = ids[std::min(next, ids.size() - 1)];
        ++next;
        return id;
    }
};
static_assert(ds::id_generator<scripted_ids>);

using scripted_manager = ds::session_manager<ds::memory_store, ds::manual_clock, scripted_ids>;

} // namespace

BOOST_AUTO_TEST_SUITE(id_collisions)

BOOST_AUTO_TEST_CASE(a_taken_id_is_not_reused) {
    ds::memory_store store;
    {
        mgr a{store};
        a.start_new(); // s0000001
        a.save_exchange("original question", "original answer");
    }
    scripted_manager b{store, ds::manual_clock{}, scripted_ids{{"s0000001", "x0000001"}}};
    b.start_new();
    b.save_exchange("new question", "new answer");
    BOOST_TEST(b.current()->id == "x0000001");

    const auto original = store.load("s0000001", ds::all_exchanges);
    BOOST_TEST_REQUIRE(original.exchanges.size() == 1u);
    BOOST_TEST(original.exchanges[0].query == "original question");
    BOOST_TEST(original.meta.title == "original question");
    BOOST_TEST(original.meta.exchange_count == 1u);
    const auto fresh = store.load("x0000001", ds::all_exchanges);
    BOOST_TEST_REQUIRE(fresh.exchanges.size() == 1u);
    BOOST_TEST(fresh.exchanges[0].query == "new question");
    BOOST_TEST(fresh.meta.title == "new question");
}

BOOST_AUTO_TEST_CASE(an_id_taken_between_start_and_first_save_is_not_merged) {
    ds::memory_store store;
    mgr a{store};
    mgr b{store};
    const auto id_a = a.start_new().id;
    const auto id_b = b.start_new().id;
    BOOST_TEST(id_a == id_b); // both generators start at s0000001; nothing stored yet
    a.save_exchange("from a", "1");
    b.save_exchange("from b", "1");
    BOOST_TEST(b.current()->id != id_a);
    BOOST_TEST(ds::is_valid_session_id(b.current()->id));

    a.save_exchange("from a again", "2");
    b.save_exchange("from b again", "2");
    const auto xa = store.load(id_a, ds::all_exchanges).exchanges;
    const auto xb = store.load(b.current()->id, ds::all_exchanges).exchanges;
    BOOST_TEST_REQUIRE(xa.size() == 2u);
    BOOST_TEST_REQUIRE(xb.size() == 2u);
    BOOST_TEST(xa[0].query == "from a");
    BOOST_TEST(xa[1].query == "from a again");
    BOOST_TEST(xb[0].query == "from b");
    BOOST_TEST(xb[1].query == "from b again");
    BOOST_TEST(store.find(b.current()->id)->title == "from b");
}

BOOST_AUTO_TEST_CASE(a_generator_that_only_gives_taken_ids_is_an_error) {
    ds::memory_store store;
    {
        mgr a{store};
        a.start_new();
        a.save_exchange("q", "a");
    }
    scripted_manager b{store, ds::manual_clock{}, scripted_ids{{"s0000002", "s0000001"}}};
    BOOST_TEST(b.start_new().id == "s0000002");
    b.save_exchange("b's question", "answer");
    BOOST_CHECK_THROW(b.start_new(), ds::error); // every id from now on is taken
    BOOST_TEST(b.current()->id == "s0000002");   // and the current session stays
    BOOST_TEST(b.save_exchange("still", "works").seq == 2u);
    BOOST_TEST(stored_exchanges(store, "s0000001") == 1u);
}

BOOST_AUTO_TEST_CASE(a_generator_giving_a_malformed_id_is_refused) {
    ds::memory_store store;
    scripted_manager m{store, ds::manual_clock{}, scripted_ids{{"../../x"}}};
    BOOST_CHECK_THROW(m.start_new(), ds::invalid_session_id);
    BOOST_TEST(!m.current().has_value());
    BOOST_TEST(store.list().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// --- the 0.2 API: extra, find_session, capabilities, constructors -------------------

BOOST_AUTO_TEST_SUITE(api)

BOOST_AUTO_TEST_CASE(a_ulid_generator_is_refused_with_the_id_rule) {
    ds::memory_store store;
    scripted_manager m{store, ds::manual_clock{}, scripted_ids{{"01ARZ3NDEKTSV4RRFFQ69G5FAV"}}};
    try {
        m.start_new();
        BOOST_FAIL("a ULID was accepted as a session id");
    } catch (const ds::invalid_session_id& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("01ARZ3NDEKTSV4RRFFQ69G5FAV") != std::string::npos, what);
        BOOST_TEST(what.find("id generator") != std::string::npos, what);
        BOOST_TEST(what.find("8 characters of [0-9a-z]") != std::string::npos, what);
    }
    BOOST_TEST(store.list().empty());
}

BOOST_AUTO_TEST_CASE(set_extra_before_the_first_save_is_stored_with_the_session) {
    ds::memory_store store;
    mgr m{store};
    m.start_new();
    m.set_extra(json::object{{"project", "dexter"}});
    BOOST_TEST(store.list().empty()); // still nothing stored
    BOOST_TEST(store.counts().update == 0u);
    const auto id = m.save_exchange("q", "a").seq == 1u ? m.current()->id : "";
    const auto found = store.find(id);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(json::serialize(found->extra) == R"({"project":"dexter"})");
}

BOOST_AUTO_TEST_CASE(set_extra_after_the_first_save_updates_the_store) {
    ds::memory_store store;
    mgr m{store};
    m.start_new();
    m.save_exchange("q", "a");
    const auto id = m.current()->id;
    m.set_extra(json::object{{"tags", json::array{"x", "y"}}});
    BOOST_TEST(store.counts().update == 1u);
    BOOST_TEST(json::serialize(store.find(id)->extra) == R"({"tags":["x","y"]})");
    BOOST_TEST(json::serialize(m.current()->extra) == R"({"tags":["x","y"]})");
    mgr other{store};
    BOOST_TEST(json::serialize(other.list_sessions().at(0).extra) == R"({"tags":["x","y"]})");
}

BOOST_AUTO_TEST_CASE(set_extra_refuses_invalid_utf8_and_changes_nothing) {
    ds::memory_store store;
    mgr m{store};
    BOOST_CHECK_THROW(m.set_extra({}), ds::error); // no current session
    m.start_new();
    m.save_exchange("q", "a");
    m.set_extra(json::object{{"ok", 1}});
    BOOST_CHECK_THROW(m.set_extra(json::object{{"bad", "\xC0\xAF"}}), ds::invalid_input);
    BOOST_CHECK_THROW(m.set_extra(json::object{{"\xFF", 1}}), ds::invalid_input);
    BOOST_CHECK_THROW(
        m.set_extra(json::object{{"deep", json::array{json::object{{"k", "\xED\xA0\x80"}}}}}),
        ds::invalid_input);
    BOOST_TEST(store.counts().update == 1u);
    BOOST_TEST(json::serialize(m.current()->extra) == R"({"ok":1})");
    BOOST_TEST(json::serialize(store.find(m.current()->id)->extra) == R"({"ok":1})");
}

BOOST_AUTO_TEST_CASE(set_extra_keeps_title_and_timestamps) {
    ds::memory_store store;
    mgr m{store};
    m.start_new();
    m.save_exchange("the question", "a");
    const auto before = *store.find(m.current()->id);
    m.clock().advance(1h);
    m.set_extra(json::object{{"k", "v"}});
    const auto after = *store.find(m.current()->id);
    BOOST_TEST(after.title == before.title);
    BOOST_TEST(ts(after.updated_at) == ts(before.updated_at));
    BOOST_TEST(after.exchange_count == before.exchange_count);
}

BOOST_AUTO_TEST_CASE(find_session_sees_stored_sessions_only) {
    ds::memory_store store;
    mgr m{store};
    m.start_new();
    const auto unsaved = m.current()->id;
    BOOST_TEST(!m.find_session(unsaved).has_value());
    m.save_exchange("q", "a");
    const auto found = m.find_session(m.current()->id);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->exchange_count == 1u);
    BOOST_CHECK_THROW(m.find_session("../etc"), ds::invalid_session_id);
    // created but never given an exchange (a first save cut short): not a session
    ds::memory_store other = store;
    BOOST_TEST_REQUIRE(
        other.create(ds::session_meta{"empty001", "t", {}, {}, 0, {}, false, std::nullopt}));
    BOOST_TEST(!m.find_session("empty001").has_value());
}

BOOST_AUTO_TEST_CASE(the_store_and_options_constructor) {
    ds::manager_options o;
    o.context_exchanges = 2;
    mgr m{ds::memory_store{}, o};
    BOOST_TEST(m.options().context_exchanges == 2u);
    m.start_new();
    for (int i = 0; i < 5; ++i)
        m.save_exchange("q" + std::to_string(i), "a");
    const auto id = m.current()->id;
    m.close();
    BOOST_TEST(m.resume(id).exchanges.size() == 2u);
}

// A store with both optional capabilities, counting the calls that reach it.
class capable_store : public ds::memory_store {
public:
    std::vector<ds::diagnostic> take_diagnostics() {
        ++*taken;
        return {{0, 0, "an event"}};
    }
    void check_writable() {
        ++*checked;
        if (read_only)
            throw ds::storage_error("read-only", "capable store");
    }
    std::shared_ptr<int> taken = std::make_shared<int>(0);
    std::shared_ptr<int> checked = std::make_shared<int>(0);
    bool read_only = false;
};
static_assert(ds::reports_diagnostics<capable_store>);
static_assert(ds::checks_writability<capable_store>);
static_assert(!ds::reports_diagnostics<ds::memory_store>);
static_assert(!ds::checks_writability<ds::memory_store>);

BOOST_AUTO_TEST_CASE(capabilities_reach_a_store_that_has_them) {
    capable_store store;
    const auto taken = store.taken;
    const auto checked = store.checked;
    store.read_only = true;
    ds::session_manager<capable_store, ds::manual_clock, ds::sequential_ids> m{store};
    const auto events = m.take_diagnostics();
    BOOST_TEST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0].reason == "an event");
    BOOST_TEST(*taken == 1);
    BOOST_CHECK_THROW(m.check_writable(), ds::storage_error);
    BOOST_TEST(*checked == 1);
}

BOOST_AUTO_TEST_CASE(capabilities_fall_back_for_a_store_without_them) {
    mgr m{ds::memory_store{}};
    BOOST_TEST(m.take_diagnostics().empty());
    BOOST_CHECK_NO_THROW(m.check_writable());
}

// A clock whose move constructor may throw.
struct throwing_move_clock {
    throwing_move_clock() = default;
    throwing_move_clock(throwing_move_clock&&) noexcept(false) {}
    throwing_move_clock& operator=(throwing_move_clock&&) noexcept(false) { return *this; }
    std::chrono::system_clock::time_point now() const { return {}; }
};
static_assert(std::is_nothrow_move_constructible_v<mgr>);
static_assert(std::is_nothrow_move_constructible_v<ds::session_manager<ds::memory_store>>);
static_assert(!std::is_nothrow_move_constructible_v<
              ds::session_manager<ds::memory_store, throwing_move_clock>>);

BOOST_AUTO_TEST_CASE(move_construction_keeps_the_current_session) {
    mgr a{ds::memory_store{}};
    a.start_new();
    a.save_exchange("q", "a");
    const auto id = a.current()->id;
    mgr b{std::move(a)};
    BOOST_TEST(b.current()->id == id);
    BOOST_TEST(b.save_exchange("q2", "a2").seq == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
