// SPDX-License-Identifier: BSL-1.0
// chat_history.hpp: the replayer (recent_turns, replay, pending turns), its bounded ring
// of turns, and summarize_text.
#include <dexter/sessions/chat_history.hpp>

#define BOOST_TEST_MODULE chat_history
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/utf8.hpp>

#include "support/printable.hpp"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace ds = dexter::sessions;
namespace bdata = boost::unit_test::data;
using ds::test::show;

namespace {

constexpr std::string_view ellipsis = "\xE2\x80\xA6"; // U+2026

std::string query_of(std::size_t i) {
    return "question " + std::to_string(i);
}

/// A long, multi-line answer, so that a summary made from it differs from it.
std::string answer_of(std::size_t i) {
    return "Answer " + std::to_string(i) + " begins here.\nSecond line of answer " +
           std::to_string(i) + ".\n\n- a list item\n- another one";
}

std::string summary_of(std::size_t i) {
    return "summary " + std::to_string(i);
}

ds::exchange exchange_of(std::size_t i) {
    ds::exchange ex;
    ex.seq = i + 1;
    ex.query = query_of(i);
    ex.answer = answer_of(i);
    ex.summary = summary_of(i);
    return ex;
}

/// Full answers are kept by the newest 3 turns (the documented default).
constexpr std::size_t full_turns = 3;

void check_messages(const std::vector<ds::chat_message>& got, std::size_t n_turns,
                    std::size_t limit) {
    const std::size_t m = std::min(n_turns, limit);
    BOOST_TEST_REQUIRE(got.size() == 2 * m);
    for (std::size_t k = 0; k < m; ++k) {
        const std::size_t t = n_turns - m + k; // index of the turn, oldest picked first
        BOOST_TEST_CONTEXT("message pair " << k << " (turn " << t << ")") {
            BOOST_TEST((got[2 * k].role == ds::chat_role::user));
            BOOST_TEST((got[2 * k + 1].role == ds::chat_role::assistant));
            BOOST_TEST(got[2 * k].content == query_of(t));
            const bool newest = m - k <= full_turns;
            BOOST_TEST(got[2 * k + 1].content == (newest ? answer_of(t) : summary_of(t)));
        }
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(replayer)

BOOST_DATA_TEST_CASE(recent_turns_are_the_last_limit_turns,
                     bdata::make({0, 1, 3, 4, 10, 11, 1000}) * bdata::make({0, 1, 10}), n, limit) {
    ds::chat_history h;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    BOOST_TEST(h.size() == static_cast<std::size_t>(n));
    BOOST_TEST(h.empty() == (n == 0));
    check_messages(h.recent_turns(static_cast<std::size_t>(limit)), static_cast<std::size_t>(n),
                   static_cast<std::size_t>(limit));
}

BOOST_DATA_TEST_CASE(default_limit_is_10, bdata::make({0, 1, 9, 10, 11, 25}), n) {
    ds::chat_history h;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    check_messages(h.recent_turns(), static_cast<std::size_t>(n), 10);
    BOOST_TEST(ds::chat_history::default_recent_turns == 10u);
}

BOOST_AUTO_TEST_CASE(turn_without_summary_gets_a_made_up_one) {
    ds::chat_history h;
    h.add_turn("q0", answer_of(0));                // no summary
    h.add_turn("q1", answer_of(1), std::string{}); // empty summary
    h.add_turn("q2", answer_of(2), "kept");        // a real one
    for (std::size_t i = 3; i < 6; ++i)
        h.add_turn(query_of(i), answer_of(i));
    const auto msgs = h.recent_turns();
    BOOST_TEST_REQUIRE(msgs.size() == 12u);
    BOOST_TEST(msgs[1].content == ds::summarize_text(answer_of(0)));
    BOOST_TEST(msgs[1].content != answer_of(0));
    BOOST_TEST(msgs[1].content.find('\n') == std::string::npos);
    BOOST_TEST(msgs[3].content == ds::summarize_text(answer_of(1)));
    BOOST_TEST(msgs[3].content != answer_of(1));
    BOOST_TEST(msgs[5].content == "kept");
    // The newest three carry their answer in full, summary or not.
    for (std::size_t i = 3; i < 6; ++i)
        BOOST_TEST(msgs[2 * i + 1].content == answer_of(i));
}

BOOST_AUTO_TEST_CASE(long_single_line_answer_is_shortened_for_older_turns) {
    const std::string long_answer(1000, 'x');
    ds::chat_history h;
    h.add_turn("old", long_answer);
    for (int i = 0; i < 3; ++i)
        h.add_turn("new", "short");
    const auto msgs = h.recent_turns();
    BOOST_TEST_REQUIRE(msgs.size() == 8u);
    BOOST_TEST(msgs[1].content == ds::summarize_text(long_answer));
    BOOST_TEST(msgs[1].content.size() < long_answer.size());
}

BOOST_AUTO_TEST_CASE(full_answer_turns_is_configurable) {
    for (std::size_t full : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{100}}) {
        BOOST_TEST_CONTEXT("full_answer_turns " << full) {
            ds::chat_history h(full);
            for (std::size_t i = 0; i < 8; ++i)
                h.add_turn(query_of(i), answer_of(i), summary_of(i));
            const auto msgs = h.recent_turns();
            BOOST_TEST_REQUIRE(msgs.size() == 16u);
            for (std::size_t i = 0; i < 8; ++i) {
                const bool newest = 8 - i <= full;
                BOOST_TEST(msgs[2 * i + 1].content == (newest ? answer_of(i) : summary_of(i)));
            }
        }
    }
}

BOOST_DATA_TEST_CASE(replay_equals_adding_turns_one_by_one, bdata::make({0, 1, 3, 4, 11, 50}), n) {
    std::vector<ds::exchange> xs;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        xs.push_back(exchange_of(i));
        if (i % 3 == 1)
            xs.back().summary.reset(); // a mix of turns with and without summary
    }
    ds::chat_history replayed;
    replayed.replay(xs);
    ds::chat_history added;
    for (const auto& ex : xs)
        added.add_turn(ex.query, ex.answer, ex.summary);
    ds::chat_history appended;
    for (const auto& ex : xs)
        appended.append(ex);

    BOOST_TEST(replayed.size() == static_cast<std::size_t>(n));
    for (std::size_t limit :
         {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{1000}}) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            BOOST_TEST((replayed.recent_turns(limit) == added.recent_turns(limit)));
            BOOST_TEST((appended.recent_turns(limit) == added.recent_turns(limit)));
        }
    }
    BOOST_TEST_REQUIRE(replayed.turns().size() == xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const auto& t = replayed.turns()[i];
        BOOST_TEST(t.query == xs[i].query);
        BOOST_TEST(t.answer == xs[i].answer);
        BOOST_TEST((t.summary == xs[i].summary));
        BOOST_TEST(t.complete);
    }
}

BOOST_AUTO_TEST_CASE(replay_replaces_previous_content) {
    ds::chat_history h;
    for (std::size_t i = 100; i < 120; ++i)
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    h.begin_turn("pending before replay");
    std::vector<ds::exchange> xs = {exchange_of(0), exchange_of(1)};
    h.replay(xs);
    BOOST_TEST(h.size() == 2u);
    BOOST_TEST(h.turns().size() == 2u); // the pending turn is gone too
    check_messages(h.recent_turns(), 2, 10);
    h.replay({});
    BOOST_TEST(h.empty());
    BOOST_TEST(h.turns().empty());
    BOOST_TEST(h.recent_turns().empty());
}

BOOST_AUTO_TEST_CASE(pending_turn_is_left_out_until_completed) {
    ds::chat_history h;
    h.add_turn(query_of(0), answer_of(0), summary_of(0));
    const auto before = h.recent_turns();

    h.begin_turn(query_of(1));
    BOOST_TEST(h.size() == 1u);
    BOOST_TEST(h.turns().size() == 2u);
    BOOST_TEST((h.recent_turns() == before));

    BOOST_TEST(h.complete_turn(answer_of(1), summary_of(1)));
    BOOST_TEST(h.size() == 2u);
    check_messages(h.recent_turns(), 2, 10);

    // Nothing pending: complete_turn does nothing.
    BOOST_TEST(!h.complete_turn("stray answer"));
    BOOST_TEST(h.size() == 2u);
    check_messages(h.recent_turns(), 2, 10);
}

BOOST_AUTO_TEST_CASE(complete_turn_on_empty_history_does_nothing) {
    ds::chat_history h;
    BOOST_TEST(!h.complete_turn("answer"));
    BOOST_TEST(h.turns().empty());
}

BOOST_AUTO_TEST_CASE(add_turn_drops_a_pending_turn) {
    ds::chat_history h;
    h.add_turn(query_of(0), answer_of(0), summary_of(0));
    h.begin_turn("abandoned question");
    h.add_turn(query_of(1), answer_of(1), summary_of(1));
    BOOST_TEST(h.turns().size() == 2u);
    for (const auto& t : h.turns())
        BOOST_TEST(t.query != "abandoned question");
    check_messages(h.recent_turns(), 2, 10);

    h.begin_turn("abandoned again");
    h.append(exchange_of(2)); // append() is add_turn() of an exchange
    BOOST_TEST(h.turns().size() == 3u);
    check_messages(h.recent_turns(), 3, 10);
}

BOOST_AUTO_TEST_CASE(clear_empties) {
    ds::chat_history h;
    for (std::size_t i = 0; i < 5; ++i)
        h.add_turn(query_of(i), answer_of(i));
    h.begin_turn("p");
    h.clear();
    BOOST_TEST(h.empty());
    BOOST_TEST(h.turns().empty());
    BOOST_TEST(h.recent_turns().empty());
}

BOOST_AUTO_TEST_CASE(roles_print) {
    BOOST_TEST(ds::to_string(ds::chat_role::user) == "user");
    BOOST_TEST(ds::to_string(ds::chat_role::assistant) == "assistant");
    static_assert(ds::replay_target<ds::chat_history>);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// The ring: at most capacity() completed turns, the newest ones

BOOST_AUTO_TEST_SUITE(bounded)

namespace {

/// The turns of `h` are turns first..first+n-1, oldest first, complete.
void check_turns(const ds::chat_history& h, std::size_t first, std::size_t n) {
    BOOST_TEST_REQUIRE(h.size() == n);
    const auto turns = h.turns();
    BOOST_TEST_REQUIRE(turns.size() == n);
    std::size_t i = first;
    for (const auto& t : turns) { // iteration and indexing agree
        BOOST_TEST(t.query == query_of(i));
        BOOST_TEST(t.answer == answer_of(i));
        BOOST_TEST((t.summary == std::optional<std::string>(summary_of(i))));
        BOOST_TEST(t.complete);
        BOOST_TEST(&t == &turns[i - first]);
        ++i;
    }
    BOOST_TEST(i == first + n);
    if (n > 0) {
        BOOST_TEST(turns.front().query == query_of(first));
        BOOST_TEST(turns.back().query == query_of(first + n - 1));
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(turn_view_is_a_random_access_range) {
    static_assert(std::random_access_iterator<ds::chat_history::turn_view::iterator>);
    static_assert(std::ranges::random_access_range<ds::chat_history::turn_view>);
    ds::chat_history h(full_turns, 4);
    for (std::size_t i = 0; i < 6; ++i)
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    const auto turns = h.turns();
    BOOST_TEST((turns.end() - turns.begin()) == 4);
    BOOST_TEST(turns.begin()[3].query == query_of(5));
    BOOST_TEST((turns.end() - 1)->query == query_of(5));
    BOOST_TEST(std::prev(turns.end())->query == query_of(5));
    const auto first = h.turns().begin(); // the view it came from is gone: still valid
    BOOST_TEST(first->query == query_of(2));
    BOOST_TEST(first[1].query == query_of(3));
    std::vector<std::string> backwards;
    for (auto it = turns.end(); it != turns.begin();)
        backwards.push_back((--it)->query);
    BOOST_TEST((backwards ==
                std::vector<std::string>{query_of(5), query_of(4), query_of(3), query_of(2)}));
}

BOOST_DATA_TEST_CASE(capacity_is_respected_over_ten_times_as_many_turns,
                     bdata::make({1, 2, 3, 7, 10}), capacity) {
    const auto cap = static_cast<std::size_t>(capacity);
    ds::chat_history h(full_turns, cap);
    BOOST_TEST(h.capacity() == cap);
    for (std::size_t i = 0; i < 10 * cap; ++i) {
        if (i % 2 == 0)
            h.add_turn(query_of(i), answer_of(i), summary_of(i));
        else
            h.append(exchange_of(i));
        check_turns(h, i + 1 - std::min(i + 1, cap), std::min(i + 1, cap));
    }
    // Within the capacity, recent_turns() is what it was; beyond it, what is kept.
    for (std::size_t limit : {std::size_t{0}, std::size_t{1}, cap, cap + 1, 10 * cap}) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            const std::size_t m = std::min(limit, cap);
            const auto msgs = h.recent_turns(limit);
            BOOST_TEST_REQUIRE(msgs.size() == 2 * m);
            for (std::size_t k = 0; k < m; ++k) {
                const std::size_t t = 10 * cap - m + k;
                BOOST_TEST(msgs[2 * k].content == query_of(t));
                BOOST_TEST(msgs[2 * k + 1].content ==
                           (m - k <= full_turns ? answer_of(t) : summary_of(t)));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(default_capacity_holds_dexters_largest_history_limit) {
    BOOST_TEST(ds::chat_history::default_capacity == 1000u);
    BOOST_TEST(ds::chat_history{}.capacity() == ds::chat_history::default_capacity);
    BOOST_TEST(ds::chat_history(5).capacity() == ds::chat_history::default_capacity);
    ds::chat_history h;
    for (std::size_t i = 0; i < 2500; ++i)
        h.append(exchange_of(i));
    check_turns(h, 1500, 1000);
}

BOOST_DATA_TEST_CASE(replay_of_more_than_capacity_keeps_the_newest,
                     bdata::make({0, 1, 4, 5, 6, 40}) * bdata::make({1, 5}), n, capacity) {
    const auto cap = static_cast<std::size_t>(capacity);
    std::vector<ds::exchange> xs;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        xs.push_back(exchange_of(i));
    ds::chat_history h(full_turns, cap);
    for (std::size_t i = 100; i < 103; ++i) // wrapped and partly filled before the replay
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    h.replay(xs);
    const std::size_t kept = std::min(xs.size(), cap);
    check_turns(h, xs.size() - kept, kept);

    ds::chat_history added(full_turns, cap);
    for (const auto& ex : xs)
        added.append(ex);
    for (std::size_t limit : {std::size_t{1}, std::size_t{3}, std::size_t{10}})
        BOOST_TEST((h.recent_turns(limit) == added.recent_turns(limit)));
}

BOOST_AUTO_TEST_CASE(replay_reads_only_what_it_keeps) {
    // The exchanges that the history cannot hold lie on a page that cannot be read: a
    // replay that touched one of them would die of SIGSEGV.
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t hidden = page / sizeof(ds::exchange); // whole exchanges on page 1
    const std::size_t cap = 5;
    BOOST_TEST_REQUIRE(hidden > 0u);
    BOOST_TEST_REQUIRE(cap * sizeof(ds::exchange) <= page);
    void* const map =
        ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    BOOST_TEST_REQUIRE(map != MAP_FAILED);
    auto* const base = static_cast<unsigned char*>(map);
    auto* const xs = reinterpret_cast<ds::exchange*>(base + page - hidden * sizeof(ds::exchange));
    const std::size_t n = hidden + cap;
    for (std::size_t i = 0; i < n; ++i)
        new (xs + i) ds::exchange(exchange_of(i));
    BOOST_TEST_REQUIRE(::mprotect(base, page, PROT_NONE) == 0);

    ds::chat_history h(full_turns, cap);
    h.replay(std::span<const ds::exchange>(xs, n));

    BOOST_TEST_REQUIRE(::mprotect(base, page, PROT_READ | PROT_WRITE) == 0);
    for (std::size_t i = 0; i < n; ++i)
        std::destroy_at(xs + i);
    ::munmap(map, 2 * page);
    check_turns(h, hidden, cap);
}

BOOST_AUTO_TEST_CASE(resume_after_a_long_session_keeps_the_capacity) {
    ds::memory_store store;
    std::string id;
    {
        ds::test_session_manager live{store};
        id = live.start_new().id;
        for (std::size_t i = 0; i < 3000; ++i) {
            live.save_exchange(exchange_of(i));
            BOOST_TEST_REQUIRE(live.history().size() == std::min<std::size_t>(i + 1, 1000));
        }
        check_turns(live.history(), 2000, 1000);
    }
    ds::manager_options opts;
    opts.context_exchanges = ds::all_exchanges;
    ds::test_session_manager later{store, ds::manual_clock{}, ds::sequential_ids{},
                                   ds::chat_history{}, opts};
    const auto loaded = later.resume(id);
    BOOST_TEST(loaded.exchanges.size() == 3000u); // the caller still gets every exchange
    check_turns(later.history(), 2000, 1000);
    BOOST_TEST(later.history().turns().back().query == query_of(2999));
    later.close();

    ds::test_session_manager small{store, ds::manual_clock{}, ds::sequential_ids{},
                                   ds::chat_history(full_turns, 7), opts};
    small.resume(id);
    check_turns(small.history(), 2993, 7);
    small.save_exchange(exchange_of(3000));
    check_turns(small.history(), 2994, 7);
}

BOOST_AUTO_TEST_CASE(pending_turn_at_a_full_ring) {
    ds::chat_history h(full_turns, 3);
    for (std::size_t i = 0; i < 3; ++i)
        h.add_turn(query_of(i), answer_of(i), summary_of(i));
    h.begin_turn(query_of(3));
    // The pending turn evicts nothing and is listed last.
    check_messages(h.recent_turns(), 3, 10);
    BOOST_TEST(h.size() == 3u);
    BOOST_TEST_REQUIRE(h.turns().size() == 4u);
    BOOST_TEST(h.turns()[0].query == query_of(0));
    BOOST_TEST(h.turns().back().query == query_of(3));
    BOOST_TEST(!h.turns().back().complete);

    // Dropping it (by another turn) loses nothing it did not have to.
    h.begin_turn("abandoned");
    h.add_turn(query_of(3), answer_of(3), summary_of(3));
    check_turns(h, 1, 3);

    // Completing it evicts the oldest.
    h.begin_turn(query_of(4));
    BOOST_TEST(h.complete_turn(answer_of(4), summary_of(4)));
    check_turns(h, 2, 3);
    BOOST_TEST(!h.complete_turn("stray"));
    check_turns(h, 2, 3);
}

BOOST_AUTO_TEST_CASE(capacity_one) {
    ds::chat_history h(full_turns, 1);
    BOOST_TEST(h.empty());
    h.add_turn(query_of(0), answer_of(0), summary_of(0));
    check_turns(h, 0, 1);
    h.begin_turn(query_of(1));
    BOOST_TEST(h.turns().size() == 2u);
    BOOST_TEST(h.complete_turn(answer_of(1), summary_of(1)));
    check_turns(h, 1, 1);
    h.append(exchange_of(2));
    check_turns(h, 2, 1);
    BOOST_TEST_REQUIRE(h.recent_turns(10).size() == 2u);
    BOOST_TEST(h.recent_turns(10)[1].content == answer_of(2));
    h.clear();
    BOOST_TEST(h.empty());
    h.append(exchange_of(3));
    check_turns(h, 3, 1);
}

BOOST_AUTO_TEST_CASE(capacity_zero_keeps_nothing) {
    ds::chat_history h(full_turns, 0);
    for (std::size_t i = 0; i < 5; ++i)
        h.append(exchange_of(i));
    h.add_turn("q", "a");
    BOOST_TEST(h.empty());
    BOOST_TEST(h.turns().empty());
    BOOST_TEST(h.recent_turns(10).empty());
    std::vector<ds::exchange> xs = {exchange_of(0), exchange_of(1)};
    h.replay(xs);
    BOOST_TEST(h.empty());
    // The pending turn is held until it completes, and then kept no more.
    h.begin_turn("pending");
    BOOST_TEST(h.turns().size() == 1u);
    BOOST_TEST(h.complete_turn("answer"));
    BOOST_TEST(h.turns().empty());
    BOOST_TEST(h.recent_turns().empty());
}

BOOST_AUTO_TEST_CASE(a_wrapped_ring_reuses_its_strings) {
    const std::size_t cap = 8;
    ds::chat_history h(full_turns, cap);
    const std::string long_answer(4096, 'a');
    std::vector<const char*> buffers;
    for (std::size_t i = 0; i < cap; ++i) {
        ds::exchange ex = exchange_of(i);
        ex.answer = long_answer;
        h.append(ex);
    }
    for (const auto& t : h.turns())
        buffers.push_back(t.answer.data());
    for (std::size_t round = 1; round <= 10; ++round)
        for (std::size_t i = 0; i < cap; ++i) {
            ds::exchange ex = exchange_of(round * cap + i);
            ex.answer.assign(4000, static_cast<char>('a' + round)); // fits the slot
            h.append(ex);
            BOOST_TEST(h.turns().back().answer == ex.answer);
            // The same slot, the same buffer: nothing allocated per exchange.
            BOOST_TEST(static_cast<const void*>(h.turns().back().answer.data()) ==
                       static_cast<const void*>(buffers[i]));
            BOOST_TEST(h.turns().back().answer.capacity() >= long_answer.size());
        }
    BOOST_TEST(h.size() == cap);
    // A replay reuses them too.
    std::vector<ds::exchange> xs(cap);
    for (std::size_t i = 0; i < cap; ++i) {
        xs[i] = exchange_of(i);
        xs[i].answer = long_answer;
    }
    h.replay(xs);
    std::vector<const char*> after;
    for (const auto& t : h.turns())
        after.push_back(t.answer.data());
    std::vector<const char*> sorted_before = buffers, sorted_after = after;
    std::sort(sorted_before.begin(), sorted_before.end());
    std::sort(sorted_after.begin(), sorted_after.end());
    BOOST_TEST((sorted_after == sorted_before));
}

BOOST_AUTO_TEST_CASE(a_moved_from_history_is_empty_and_usable) {
    ds::chat_history a(full_turns, 4);
    for (std::size_t i = 0; i < 6; ++i)
        a.append(exchange_of(i));
    ds::chat_history b = std::move(a);
    check_turns(b, 2, 4);
    BOOST_TEST(a.empty()); // NOLINT(bugprone-use-after-move): the documented state
    BOOST_TEST(a.turns().empty());
    a.append(exchange_of(9));
    check_turns(a, 9, 1);
    ds::chat_history c;
    c = std::move(b);
    check_turns(c, 2, 4);
    BOOST_TEST(b.empty());  // NOLINT(bugprone-use-after-move)
    ds::chat_history d = c; // a copy is independent
    c.append(exchange_of(6));
    check_turns(c, 3, 4);
    check_turns(d, 2, 4);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// summarize_text

BOOST_AUTO_TEST_SUITE(summarize)

namespace {

struct summary_case {
    std::string name;
    std::string text;
    std::size_t max_bytes;
    std::string expected;
};

std::ostream& operator<<(std::ostream& os, const summary_case& c) {
    return os << c.name << " (" << show(c.text) << ", " << c.max_bytes << ")";
}

const std::string e(ellipsis);

std::vector<summary_case> summary_cases() {
    return {
        {"plain", "hello", 200, "hello"},
        {"empty", "", 200, ""},
        {"only whitespace", " \t\r\n \n\t ", 200, ""},
        {"spaces collapsed and trimmed", "  hello    big \t\t world  ", 200, "hello big world"},
        {"first non-empty line", "\n\n   \n  first line  \n", 200, "first line"},
        {"later lines are cut, marked by the ellipsis", "first\nsecond", 200, "first" + e},
        {"CRLF", "first\r\nsecond\r\n", 200, "first" + e},
        {"CR alone", "first\rsecond", 200, "first" + e},
        {"trailing blank lines are no cut", "only\n\n \n\t\n", 200, "only"},
        {"exactly max_bytes fits", std::string(200, 'x'), 200, std::string(200, 'x')},
        {"one over max_bytes", std::string(201, 'x'), 200, std::string(197, 'x') + e},
        {"long line", std::string(1000, 'y'), 200, std::string(197, 'y') + e},
        {"fits, but a later line needs room for the ellipsis", std::string(200, 'x') + "\nmore",
         200, std::string(197, 'x') + e},
        {"small max", "abcdefgh", 5, "ab" + e},
        {"max equal to the ellipsis", "abcdefgh", 3, e},
        {"max below the ellipsis", "abcdefgh", 2, ""},
        {"max 0", "abcdefgh", 0, ""},
        {"emoji cut whole", "xx\xF0\x9F\x98\x80yyyy", 8, "xx" + e}, // 5 bytes of room
        {"emoji kept whole", "xx\xF0\x9F\x98\x80yyyy", 9, "xx\xF0\x9F\x98\x80" + e},
        {"e acute at the cut", "a\xC3\xA9\xC3\xA9\xC3\xA9", 5, "a" + e},
        {"e acute just fits", "a\xC3\xA9\xC3\xA9\xC3\xA9", 6, "a\xC3\xA9" + e},
        {"unicode untouched when it fits", "caf\xC3\xA9 \xE2\x80\xA8 ok", 200,
         "caf\xC3\xA9 \xE2\x80\xA8 ok"},
    };
}

} // namespace

BOOST_DATA_TEST_CASE(table, bdata::make(summary_cases()), c) {
    const std::string got = ds::summarize_text(c.text, c.max_bytes);
    BOOST_TEST(got == c.expected, show(got) << " != " << show(c.expected));
    BOOST_TEST(got.size() <= c.max_bytes);
    BOOST_TEST(ds::is_valid_utf8(got));
}

BOOST_AUTO_TEST_CASE(default_max_is_200_bytes) {
    BOOST_TEST(ds::summarize_text(std::string(500, 'z')).size() == 200u);
    BOOST_TEST(ds::summarize_text(std::string(200, 'z')) == std::string(200, 'z'));
}

BOOST_AUTO_TEST_CASE(emoji_at_every_cut_point) {
    const std::string emoji = "\xF0\x9F\x98\x80";
    for (std::size_t pad = 185; pad <= 200; ++pad) {
        const std::string text = std::string(pad, 'x') + emoji + emoji + std::string(20, 't');
        BOOST_TEST_CONTEXT("emoji at byte " << pad) {
            const std::string got = ds::summarize_text(text, 200);
            BOOST_TEST(got.size() <= 200u);
            BOOST_TEST(ds::is_valid_utf8(got), show(got));
            // Whatever was kept is a prefix of the text, followed by the ellipsis.
            BOOST_TEST_REQUIRE(got.size() >= ellipsis.size());
            BOOST_TEST(std::string_view(got).substr(got.size() - ellipsis.size()) == ellipsis);
            const std::string kept = got.substr(0, got.size() - ellipsis.size());
            BOOST_TEST(text.compare(0, kept.size(), kept) == 0);
            // ...and the longest one: the next character would not have fitted.
            const auto lead = static_cast<unsigned char>(text[kept.size()]);
            const std::size_t next = lead == 0xF0 ? 4 : 1;
            BOOST_TEST((lead == 0xF0 || lead == 'x' || lead == 't')); // a character start
            BOOST_TEST(kept.size() + next + ellipsis.size() > 200u);
        }
    }
}

namespace {

/// The first non-blank line of `text` with blank runs collapsed and trimmed: the
/// specification, written independently of the code under test.
std::string collapsed_first_line(std::string_view text, bool& more) {
    std::size_t pos = 0;
    std::string line;
    while (pos < text.size()) {
        std::size_t end = text.find_first_of("\r\n", pos);
        if (end == std::string_view::npos)
            end = text.size();
        const std::string_view raw = text.substr(pos, end - pos);
        pos = end + 1;
        std::string out;
        std::size_t i = 0;
        while (i < raw.size()) {
            if (raw[i] == ' ' || raw[i] == '\t') {
                ++i;
                continue;
            }
            std::size_t j = raw.find_first_of(" \t", i);
            if (j == std::string_view::npos)
                j = raw.size();
            if (!out.empty())
                out += ' ';
            out.append(raw.substr(i, j - i));
            i = j;
        }
        if (!out.empty()) {
            line = out;
            break;
        }
    }
    more = pos < text.size() && text.find_first_not_of(" \t\r\n", pos) != std::string_view::npos;
    return line;
}

std::string random_text(std::mt19937& rng) {
    static const std::vector<std::string> pieces = {"a",
                                                    "b",
                                                    "Z",
                                                    "0",
                                                    " ",
                                                    "  ",
                                                    "\t",
                                                    "\n",
                                                    "\r\n",
                                                    "\xC3\xA9",
                                                    "\xE2\x82\xAC",
                                                    "\xF0\x9F\x98\x80",
                                                    "\xE2\x80\xA8",
                                                    "\xF4\x8F\xBF\xBF",
                                                    "\xE2\x80\xA6",
                                                    "."};
    std::uniform_int_distribution<std::size_t> len(0, 80);
    std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
    std::string s;
    for (std::size_t n = len(rng); n > 0; --n)
        s += pieces[pick(rng)];
    return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(random_inputs_give_short_valid_deterministic_summaries) {
    std::mt19937 rng(2026);
    std::uniform_int_distribution<std::size_t> max_pick(0, 60);
    for (int i = 0; i < 20000; ++i) {
        const std::string text = random_text(rng);
        const std::size_t max = max_pick(rng);
        const std::string got = ds::summarize_text(text, max);
        BOOST_TEST_CONTEXT("text " << show(text) << ", max " << max << " -> " << show(got)) {
            BOOST_TEST_REQUIRE(got.size() <= max);
            BOOST_TEST_REQUIRE(ds::is_valid_utf8(got));
            BOOST_TEST_REQUIRE(got == ds::summarize_text(text, max)); // deterministic
            BOOST_TEST_REQUIRE(got.find_first_of("\r\n\t") == std::string::npos);

            bool more = false;
            const std::string line = collapsed_first_line(text, more);
            const bool cut = line.size() > max || (more && line.size() + ellipsis.size() > max);
            if (!cut) {
                BOOST_TEST_REQUIRE(got == (more ? line + e : line));
            } else if (max < ellipsis.size()) {
                BOOST_TEST_REQUIRE(got.empty());
            } else {
                // The longest prefix of the line on a character boundary, then U+2026.
                BOOST_TEST_REQUIRE(got.size() >= ellipsis.size());
                BOOST_TEST_REQUIRE(got.substr(got.size() - ellipsis.size()) == e);
                const std::string kept = got.substr(0, got.size() - ellipsis.size());
                BOOST_TEST_REQUIRE(line.compare(0, kept.size(), kept) == 0);
                std::size_t next = kept.size() + 1;
                while (next < line.size() &&
                       (static_cast<unsigned char>(line[next]) & 0xC0) == 0x80)
                    ++next;
                BOOST_TEST_REQUIRE(next + ellipsis.size() > max);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
