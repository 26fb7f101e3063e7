// SPDX-License-Identifier: BSL-1.0
// postgres_store's read side on a real PostgreSQL server: streaming a session in pages,
// searching with the server's filter and this library's matching rule, and pages of
// sessions from the index, each checked against what the generic code (the manager's
// fallbacks, page_of) gives on the same data.
#include <dexter/sessions/postgres_store.hpp>

#define BOOST_TEST_MODULE postgres_store_read
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "support/postgres_fixture.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
using ds::test::admin;
using ds::test::fresh_channel;
using ds::test::make_store;
using namespace std::chrono_literals;

namespace {

using announce_skip = ds::test::announce_skip;

const ds::time_point base{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}};

/// One exchange of a session being filled: query, answer, minutes after `base`.
struct turn {
    std::string query;
    std::string answer;
    int minute = 0;
};

/// Creates session `id` titled `title` in `s` (created at minute `created`) with `turns`
/// as exchanges 1, 2, ...: the same calls on any store, so that two stores hold the same.
template <class Store>
void put(Store& s, const std::string& id, const std::string& title, int created,
         const std::vector<turn>& turns) {
    const ds::time_point c = base + std::chrono::minutes(created);
    BOOST_TEST_REQUIRE(s.create(ds::session_meta{id, title, c, c, 0, {}, false, std::nullopt}));
    std::uint64_t seq = 0;
    for (const auto& t : turns) {
        ds::exchange ex;
        ex.seq = ++seq;
        ex.timestamp = base + std::chrono::minutes(t.minute);
        ex.query = t.query;
        ex.answer = t.answer;
        s.append(id, ex);
    }
    s.close(id);
}

/// The session's record of `seq` in the database, as SQL can name it.
std::string record_row(const std::string& channel, const std::string& id, int seq) {
    return "channel = '" + channel + "' AND session_id = '" + id +
           "' AND seq = " + std::to_string(seq);
}

/// Streams [from, through] of `id`; returns the seqs visited (stopping after `stop_at`
/// when not 0) and the diagnostics.
std::pair<std::vector<std::uint64_t>, std::vector<ds::diagnostic>>
stream(ds::postgres_store& s, const std::string& id, std::uint64_t from, std::uint64_t through,
       std::uint64_t stop_at = 0) {
    std::vector<std::uint64_t> seen;
    auto diags = s.for_each_exchange(id, from, through, [&](ds::exchange&& ex) {
        seen.push_back(ex.seq);
        return ex.seq != stop_at;
    });
    return {seen, diags};
}

std::vector<std::uint64_t> seqs(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> v;
    for (auto i = first; i <= last; ++i)
        v.push_back(i);
    return v;
}

/// postgres_store's primitives, and nothing of its read side: a manager over it answers
/// with its generic fallbacks, on the very same data.
struct primitives_only {
    ds::postgres_store* s;
    bool create(const ds::session_meta& m) { return s->create(m); }
    ds::session_meta open(const ds::session_id& id) { return s->open(id); }
    void append(const ds::session_id& id, const ds::exchange& ex) { s->append(id, ex); }
    void update(const ds::session_meta& m) { s->update(m); }
    void close(const ds::session_id& id) noexcept { s->close(id); }
    std::optional<ds::session_meta> find(const ds::session_id& id) { return s->find(id); }
    std::vector<ds::session_meta> list() { return s->list(); }
    ds::loaded_session load(const ds::session_id& id, std::size_t last) {
        return s->load(id, last);
    }
    void remove(const ds::session_id& id) { s->remove(id); }
};
static_assert(ds::session_storage<primitives_only> && !ds::searches_text<primitives_only> &&
              !ds::streams_exchanges<primitives_only> && !ds::pages_sessions<primitives_only>);

template <class Store>
using manager = ds::session_manager<Store, ds::manual_clock, ds::sequential_ids>;

/// The search's hits as text, for messages.
std::string describe(const std::vector<ds::search_hit>& hits) {
    std::string out;
    for (const auto& h : hits)
        out += h.id + "#" + std::to_string(h.seq) + ":" + std::string(ds::to_string(h.field)) + " ";
    return out;
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_skip);

BOOST_AUTO_TEST_SUITE(postgres,
                      *boost::unit_test::precondition(dexter::sessions::test::have_test_server{}))

// --- for_each_exchange -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(streams_every_exchange_across_pages_in_seq_order) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    std::vector<turn> turns;
    for (int i = 1; i <= 200; ++i)
        turns.push_back({"q" + std::to_string(i), std::string(100, 'a') + std::to_string(i), i});
    put(s, "stream01", "two hundred", 0, turns);
    static_assert(ds::detail::pg_page_rows < 200);

    std::vector<ds::exchange> got;
    const auto diags = s.for_each_exchange("stream01", 1, 200, [&](ds::exchange&& ex) {
        got.push_back(std::move(ex));
        return true;
    });
    BOOST_TEST(diags.empty());
    const auto loaded = s.load("stream01", ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 200u);
    BOOST_TEST((got == loaded.exchanges)); // the exchanges exactly as saved, in seq order

    // Bounds, at and across the page boundaries.
    BOOST_TEST(stream(s, "stream01", 63, 130).first == seqs(63, 130));
    BOOST_TEST(stream(s, "stream01", 0, 5).first == seqs(1, 5));
    BOOST_TEST(stream(s, "stream01", 150, std::numeric_limits<std::uint64_t>::max()).first ==
               seqs(150, 200));
    BOOST_TEST(stream(s, "stream01", 64, 64).first == seqs(64, 64));
    BOOST_TEST(stream(s, "stream01", 65, 128).first == seqs(65, 128));
    BOOST_TEST(stream(s, "stream01", 201, 300).first.empty());
    BOOST_TEST(stream(s, "stream01", 10, 9).first.empty());
    BOOST_TEST(stream(s, "stream01", std::numeric_limits<std::uint64_t>::max(),
                      std::numeric_limits<std::uint64_t>::max())
                   .first.empty());

    // visit returning false ends the read there, in the first page and after it.
    BOOST_TEST(stream(s, "stream01", 1, 200, 3).first == seqs(1, 3));
    BOOST_TEST(stream(s, "stream01", 1, 200, 64).first == seqs(1, 64));
    BOOST_TEST(stream(s, "stream01", 1, 200, 150).first == seqs(1, 150));
    BOOST_TEST(stream(s, "stream01", 100, 200, 100).first == seqs(100, 100));
}

BOOST_AUTO_TEST_CASE(streaming_reads_page_after_page_not_one_snapshot) {
    // Each page is a statement of its own: an exchange saved by another writer while the
    // first page is being visited is seen by a later page. A read of the whole session at
    // once could not see it.
    const std::string channel = fresh_channel();
    auto reader = make_store(channel);
    auto writer = make_store(channel);
    std::vector<turn> turns;
    for (int i = 1; i <= 100; ++i)
        turns.push_back({"q", "a", i});
    put(writer, "paged001", "", 0, turns);
    writer.open("paged001");
    std::vector<std::uint64_t> seen;
    reader.for_each_exchange("paged001", 1, 1000, [&](ds::exchange&& ex) {
        seen.push_back(ex.seq);
        if (ex.seq == 1) {
            ds::exchange more;
            more.seq = 101;
            more.timestamp = base + 101min;
            writer.append("paged001", more);
        }
        return true;
    });
    BOOST_TEST(seen == seqs(1, 101));
    writer.close("paged001");
}

BOOST_AUTO_TEST_CASE(streaming_an_unknown_or_malformed_id_throws) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    int visits = 0;
    const ds::exchange_visitor count = [&](ds::exchange&&) {
        ++visits;
        return true;
    };
    BOOST_CHECK_THROW(s.for_each_exchange("nosuch01", 1, 10, count), ds::session_not_found);
    BOOST_CHECK_THROW(s.for_each_exchange("nosuch01", 5, 1, count), ds::session_not_found);
    BOOST_CHECK_THROW(s.for_each_exchange("Bad-Id", 1, 10, count), ds::invalid_session_id);
    BOOST_CHECK_THROW(s.for_each_exchange("../../x", 1, 10, count), ds::invalid_session_id);
    // A session without an exchange exists: nothing to visit, nothing thrown.
    BOOST_TEST_REQUIRE(
        s.create(ds::session_meta{"empty001", "", base, base, 0, {}, false, std::nullopt}));
    BOOST_TEST(s.for_each_exchange("empty001", 1, 10, count).empty());
    BOOST_TEST(visits == 0);
    // What visit throws ends the read and reaches the caller.
    put(s, "throws01", "", 0, {{"q", "a", 1}, {"q", "a", 2}});
    BOOST_CHECK_THROW(s.for_each_exchange("throws01", 1, 2,
                                          [&](ds::exchange&&) -> bool {
                                              ++visits;
                                              throw std::runtime_error("visitor");
                                          }),
                      std::runtime_error);
    BOOST_TEST(visits == 1);
    // The store is still usable.
    BOOST_TEST(stream(s, "throws01", 1, 2).first == seqs(1, 2));
}

BOOST_AUTO_TEST_CASE(damaged_records_and_holes_are_reported_not_fatal) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    std::vector<turn> turns;
    for (int i = 1; i <= 80; ++i)
        turns.push_back({"q" + std::to_string(i), "a", i});
    put(s, "damaged1", "", 0, turns);
    admin a;
    a.exec("UPDATE dexter_records SET record = '{\"type\":\"x\"}' WHERE " +
           record_row(channel, "damaged1", 2));
    // A record that names another seq than its row's, in the second page.
    a.exec("UPDATE dexter_records SET record = (SELECT record FROM dexter_records WHERE " +
           record_row(channel, "damaged1", 71) + ") WHERE " + record_row(channel, "damaged1", 70));
    a.exec("DELETE FROM dexter_records WHERE " + record_row(channel, "damaged1", 4));
    a.exec("DELETE FROM dexter_records WHERE " + record_row(channel, "damaged1", 64));
    a.exec("DELETE FROM dexter_records WHERE " + record_row(channel, "damaged1", 65));

    auto [seen, diags] = stream(s, "damaged1", 1, 80);
    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 1; i <= 80; ++i)
        if (i != 2 && i != 4 && i != 64 && i != 65 && i != 70)
            expected.push_back(i);
    BOOST_TEST(seen == expected);
    const std::vector<std::string> reasons = {
        "record 2: not an exchange record: skipped",
        "exchange seq 3 follows 1: exchange 2 is missing",
        "exchange seq 5 follows 3: exchange 4 is missing",
        "exchange seq 66 follows 63: exchanges 64 to 65 are missing",
        "record 70: holds seq 71 in row 70: skipped",
        "exchange seq 71 follows 69: exchange 70 is missing",
    };
    BOOST_TEST_REQUIRE(diags.size() == reasons.size());
    for (std::size_t i = 0; i < reasons.size(); ++i) {
        BOOST_TEST(diags[i].reason == reasons[i]);
        BOOST_TEST(diags[i].line == 0u);
    }
    // load() reports the same things.
    const auto loaded = s.load("damaged1", ds::all_exchanges);
    BOOST_TEST(loaded.exchanges.size() == expected.size());
    std::set<std::string> from_load, from_stream;
    for (const auto& d : loaded.diagnostics)
        from_load.insert(d.reason);
    for (const auto& d : diags)
        from_stream.insert(d.reason);
    BOOST_TEST((from_load == from_stream));
}

// --- search ----------------------------------------------------------------------------

namespace {

/// The sessions every search test reads, put into any store the same way.
template <class Store>
void fill_search_data(Store& s) {
    put(s, "title001", "Quarterly PLANNING", 0, {{"agenda", "budget items", 1}});
    put(s, "answer01", "", 2, {{"what now", "we are planning the launch", 3}});
    put(s, "query001", "", 4,
        {{"planning in the query", "and planning in the answer", 5}, {"later", "nothing", 6}});
    put(s, "ascii001", "", 7, {{"Say HeLLo", "x", 8}});
    put(s, "accent01", "", 9,
        {{"caf\xC3\xA9 au lait", "x", 10}, {"CAF\xC3\x89 NOIR", "x", 11}}); // é, É
    put(s, "quotes01", "", 12,
        {{"q", "she said \"yes\\no\"\nthen left", 13}, {"C:\\temp\\new", "x", 14}});
    put(s, "nulchar1", std::string("ti\0tle", 6), 15,
        {{"q", std::string("before\0after", 12), 16}, {"literal \\u00e9 and \\/ here", "x", 17}});
    // Many hits, one a minute, for the limit and the order.
    for (int i = 0; i < 30; ++i) {
        char id[16];
        std::snprintf(id, sizeof id, "many%04d", i);
        put(s, id, "", 20 + 3 * i,
            {{"common word " + std::to_string(i), "x", 20 + 3 * i},
             {"nothing", "common again", 21 + 3 * i}});
    }
    // The same time in two sessions: ties broken by id.
    put(s, "tieb0001", "", 200, {{"tie-break", "x", 201}});
    put(s, "tiea0001", "", 200, {{"tie-break", "x", 201}});
    // A title that matches, in a session never saved to: not searched.
    BOOST_TEST_REQUIRE(s.create(
        ds::session_meta{"unsaved1", "planning ahead", base, base, 0, {}, false, std::nullopt}));
    s.close("unsaved1");
}

const std::vector<std::string> needles = {"planning",
                                          "PLANNING",
                                          "hello",
                                          "HELLO",
                                          "caf\xC3\xA9",
                                          "CAF\xC3\x89",
                                          "\xC3\xA9",
                                          "\xC3\x89",
                                          "\"yes\\no\"\nthen",
                                          "\\",
                                          "\"",
                                          "\n",
                                          "C:\\temp",
                                          std::string("e\0a", 3),
                                          std::string("i\0t", 3),
                                          "\\u00e9",
                                          "\\/",
                                          "common",
                                          "tie-break",
                                          "answer",
                                          "query",
                                          "timestamp",
                                          "%",
                                          "_",
                                          "nowhere to be found",
                                          "\xEF\xBF\xBD",
                                          "x"};

} // namespace

BOOST_AUTO_TEST_CASE(search_finds_titles_queries_and_answers) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    fill_search_data(s);
    auto search = [&](std::string text, std::size_t limit = 100) {
        return s.search(ds::search_query{std::move(text), limit});
    };

    // A title-only hit, an answer-only hit, and a query hit (the query before the answer).
    const auto planning = search("planning");
    BOOST_TEST(planning.diagnostics.empty());
    BOOST_TEST_REQUIRE(planning.hits.size() == 3u, describe(planning.hits));
    BOOST_TEST(planning.hits[0].id == "query001");
    BOOST_TEST((planning.hits[0].field == ds::match_field::query));
    BOOST_TEST(planning.hits[0].seq == 1u);
    BOOST_TEST(planning.hits[0].snippet == "planning in the query");
    BOOST_TEST(planning.hits[1].id == "answer01");
    BOOST_TEST((planning.hits[1].field == ds::match_field::answer));
    BOOST_TEST((planning.hits[1].timestamp == base + 3min));
    BOOST_TEST(planning.hits[2].id == "title001");
    BOOST_TEST((planning.hits[2].field == ds::match_field::title));
    BOOST_TEST(planning.hits[2].seq == 0u);
    BOOST_TEST((planning.hits[2].timestamp == base + 1min)); // the session's updated_at
    BOOST_TEST(planning.hits[2].title == "Quarterly PLANNING");

    // ASCII letters fold; others only match as they are: é is not É.
    BOOST_TEST(search("HELLO").hits.size() == 1u);
    BOOST_TEST(search("hello").hits.at(0).snippet == "Say HeLLo");
    const auto lower = search("caf\xC3\xA9");
    BOOST_TEST_REQUIRE(lower.hits.size() == 1u, describe(lower.hits));
    BOOST_TEST(lower.hits[0].seq == 1u);
    const auto upper = search("CAF\xC3\x89");
    BOOST_TEST_REQUIRE(upper.hits.size() == 1u, describe(upper.hits));
    BOOST_TEST(upper.hits[0].seq == 2u);
    BOOST_TEST(search("Caf\xC3\x89").hits.size() == 1u);

    // Quotes, backslashes and newlines are searched as the text holds them, not as the
    // record's JSON escapes them.
    const auto quoted = search("\"yes\\no\"\nthen");
    BOOST_TEST_REQUIRE(quoted.hits.size() == 1u);
    BOOST_TEST(quoted.hits[0].snippet == "she said \"yes\\no\" then left");
    BOOST_TEST(search("C:\\temp\\NEW").hits.size() == 1u);
    BOOST_TEST(search("\\n").hits.size() == 2u); // "yes\no" and "temp\new"
    BOOST_TEST(search("\\\"").hits.empty());     // in the JSON text, not in the text

    // U+0000 in a record and in a title, and text that looks like an escape.
    const auto nul = search(std::string("e\0a", 3));
    BOOST_TEST_REQUIRE(nul.hits.size() == 1u);
    BOOST_TEST(nul.hits[0].id == "nulchar1");
    BOOST_TEST(nul.hits[0].snippet == "before after");
    const auto title_nul = search(std::string("I\0T", 3));
    BOOST_TEST_REQUIRE(title_nul.hits.size() == 1u);
    BOOST_TEST((title_nul.hits[0].field == ds::match_field::title));
    BOOST_TEST(title_nul.hits[0].title == std::string("ti\0tle", 6));
    BOOST_TEST(search("\xEF\xBF\xBD").hits.empty()); // how the title column shows U+0000
    const auto escape = search("\\u00E9 AND \\/");
    BOOST_TEST_REQUIRE(escape.hits.size() == 1u);
    BOOST_TEST(escape.hits[0].seq == 2u);
    BOOST_TEST(search("\xC3\xA9 and").hits.empty());

    // The keys of the records' JSON are no text of theirs.
    BOOST_TEST(search("timestamp").hits.empty());
    BOOST_TEST(search("answer").hits.size() == 1u); // "and planning in the answer"
    BOOST_TEST(search("%").hits.empty());
    BOOST_TEST(search("_").hits.empty());

    // A session never saved to is not searched, even when its title matches.
    for (const auto& h : search("ahead").hits)
        BOOST_TEST(h.id != "unsaved1");
}

BOOST_AUTO_TEST_CASE(search_keeps_the_newest_hits_up_to_the_limit) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    fill_search_data(s);
    const auto all = s.search({"common", 1000});
    BOOST_TEST_REQUIRE(all.hits.size() == 60u);
    for (std::size_t i = 1; i < all.hits.size(); ++i)
        BOOST_TEST(ds::newer_hit(all.hits[i - 1], all.hits[i]));
    for (std::size_t limit : {0u, 1u, 2u, 5u, 17u, 59u, 60u, 61u}) {
        const auto some = s.search({"common", limit});
        const std::vector<ds::search_hit> newest(
            all.hits.begin(),
            all.hits.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(limit, 60)));
        BOOST_TEST((some.hits == newest), "limit " << limit);
    }
    BOOST_TEST(s.search({"common", 1}).hits.at(0).id == "many0029");
    BOOST_TEST(s.search({"common", 1}).hits.at(0).seq == 2u);
    // Equal times: by session id.
    const auto ties = s.search({"TIE-BREAK", 10});
    BOOST_TEST_REQUIRE(ties.hits.size() == 2u);
    BOOST_TEST(ties.hits[0].id == "tiea0001");
    BOOST_TEST(ties.hits[1].id == "tieb0001");
    // Invalid queries are refused before the server is asked.
    BOOST_CHECK_THROW(s.search({"", 10}), ds::invalid_input);
    BOOST_CHECK_THROW(s.search({"\xC3", 10}), ds::invalid_input);
}

BOOST_AUTO_TEST_CASE(search_gives_what_the_generic_search_gives) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    fill_search_data(s);
    // The manager's fallback on the same rows, and on a memory_store filled the same way.
    auto view_store = make_store(channel);
    manager<primitives_only> fallback(primitives_only{&view_store});
    ds::memory_store memory;
    fill_search_data(memory);
    manager<ds::memory_store> in_memory(memory);
    manager<ds::postgres_store> native(make_store(channel));
    for (const auto& text : needles) {
        for (std::size_t limit : {0u, 1u, 3u, 20u, 1000u}) {
            BOOST_TEST_CONTEXT("text '" << text << "', limit " << limit) {
                const ds::search_query q{text, limit};
                const auto got = s.search(q);
                const auto generic = fallback.search(q);
                BOOST_TEST((got.hits == generic.hits), describe(got.hits)
                                                           << "vs " << describe(generic.hits));
                BOOST_TEST((got.hits == in_memory.search(q).hits));
                BOOST_TEST((got.hits == native.search(q).hits));
                BOOST_TEST(got.diagnostics.empty());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(search_reads_what_other_writers_escape) {
    // JSON that another writer may produce: é as \u00e9, a letter as \u0041, / as \/;
    // each escape in a record of its own.
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    put(s, "escaped1", "", 0, {{"placeholder", "x", 1}, {"placeholder", "x", 2}});
    admin a;
    auto set_record = [&](int seq, const std::string& query, const std::string& answer) {
        a.exec("UPDATE dexter_records SET record = '{\"type\":\"exchange\",\"seq\":" +
               std::to_string(seq) + ",\"timestamp\":\"2026-03-01T00:0" + std::to_string(seq) +
               ":00.000Z\",\"query\":\"" + query + "\",\"answer\":\"" + answer + "\"}' WHERE " +
               record_row(channel, "escaped1", seq));
    };
    set_record(1, "caf\\u00e9 \\u0041BC", "x");
    set_record(2, "q", "either\\/or");
    const auto accented = s.search({"caf\xC3\xA9", 10});
    BOOST_TEST_REQUIRE(accented.hits.size() == 1u);
    BOOST_TEST(accented.hits[0].seq == 1u);
    BOOST_TEST(accented.hits[0].snippet == "caf\xC3\xA9 ABC");
    BOOST_TEST(s.search({"abc", 10}).hits.size() == 1u);
    const auto slash = s.search({"either/or", 10});
    BOOST_TEST_REQUIRE(slash.hits.size() == 1u);
    BOOST_TEST(slash.hits[0].seq == 2u);
    BOOST_TEST((slash.hits[0].field == ds::match_field::answer));
    BOOST_TEST(s.search({"CAF\xC3\x89", 10}).hits.empty());
    BOOST_TEST(s.search({"placeholder", 10}).hits.empty());
}

BOOST_AUTO_TEST_CASE(search_reports_damaged_records_and_goes_on) {
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    put(s, "broken01", "", 0, {{"needle one", "a", 1}, {"needle two", "a", 2}});
    put(s, "intact01", "", 3, {{"needle three", "a", 4}});
    admin a;
    a.exec("UPDATE dexter_records SET record = '{\"type\":\"x\",\"query\":\"needle\"}' WHERE " +
           record_row(channel, "broken01", 1));
    const auto r = s.search({"needle", 10});
    BOOST_TEST_REQUIRE(r.hits.size() == 2u, describe(r.hits));
    BOOST_TEST(r.hits[0].id == "intact01");
    BOOST_TEST(r.hits[1].id == "broken01");
    BOOST_TEST(r.hits[1].seq == 2u);
    BOOST_TEST_REQUIRE(r.diagnostics.size() == 1u);
    BOOST_TEST(r.diagnostics[0].id == "broken01");
    BOOST_TEST(r.diagnostics[0].what.reason == "record 1: not an exchange record: skipped");
}

// --- list_page ---------------------------------------------------------------------------

namespace {

/// Puts `n` sessions into `channel` with SQL (fast): ids p0000000.., updated_at in groups
/// of 7 equal times, titles "title <i>" (every 10th "SPECIAL <i>"), every 13th never saved
/// to (exchange_count 0).
void bulk_sessions(admin& a, const std::string& channel, int n) {
    make_store(channel); // creates the schema when the database has none
    a.exec("INSERT INTO dexter_sessions (channel, id, title, created_at, updated_at, "
           "exchange_count, extra) SELECT '" +
           channel +
           "', 'p' || lpad(i::text, 7, '0'), CASE WHEN i % 10 = 0 THEN 'SPECIAL ' ELSE "
           "'title ' END || i, timestamptz '2026-01-01Z', timestamptz '2026-01-01Z' + (i / 7) "
           "* interval '1 second', CASE WHEN i % 13 = 0 THEN 0 ELSE 1 END, '{}' "
           "FROM generate_series(1, " +
           std::to_string(n) + ") i");
}

/// Every page of `req` (its `after` ignored), in order; checks each against page_of.
std::vector<ds::session_meta> walk(ds::postgres_store& s, ds::page_request req) {
    const auto all = s.list();
    std::vector<ds::session_meta> out;
    req.after.reset();
    for (int pages = 0;; ++pages) {
        BOOST_TEST_REQUIRE(pages < 10000);
        const auto page = s.list_page(req);
        const auto expected = ds::page_of(all, req);
        BOOST_TEST_REQUIRE(page.sessions.size() == expected.sessions.size());
        for (std::size_t i = 0; i < page.sessions.size(); ++i)
            BOOST_TEST_REQUIRE(page.sessions[i].id == expected.sessions[i].id);
        BOOST_TEST_REQUIRE((page.next == expected.next));
        out.insert(out.end(), page.sessions.begin(), page.sessions.end());
        if (!page.next)
            return out;
        req.after = page.next;
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(pages_walk_through_every_session_once) {
    const std::string channel = fresh_channel();
    admin a;
    bulk_sessions(a, channel, 500);
    auto s = make_store(channel);
    auto admitted = s.list();
    std::erase_if(admitted, [](const ds::session_meta& m) { return m.exchange_count == 0; });
    BOOST_TEST_REQUIRE(admitted.size() == 500u - 500u / 13u);
    for (std::size_t limit : {1u, 6u, 7u, 8u, 50u, 461u, 462u, 1000u}) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            const auto walked = walk(s, {limit, std::nullopt, ""});
            BOOST_TEST(walked.size() == admitted.size());
            std::set<std::string> ids;
            for (std::size_t i = 0; i < walked.size(); ++i) {
                ids.insert(walked[i].id);
                if (i > 0)
                    BOOST_TEST_REQUIRE(ds::listed_after(
                        walked[i], ds::list_cursor{walked[i - 1].updated_at, walked[i - 1].id}));
            }
            BOOST_TEST(ids.size() == admitted.size()); // no duplicate, no gap
        }
    }
    // A title filter: ASCII letters folded, and the same pages as page_of.
    const auto special = walk(s, {7, std::nullopt, "special"});
    std::size_t expected_special = 0;
    for (const auto& m : admitted)
        expected_special += m.title.starts_with("SPECIAL ");
    BOOST_TEST(special.size() == expected_special);
    BOOST_TEST(walk(s, {5, std::nullopt, "nothing like it"}).empty());
    BOOST_TEST(walk(s, {3, std::nullopt, "1_"}).empty()); // '_' is no wildcard
    BOOST_TEST(walk(s, {3, std::nullopt, "E 1"}).size() > 0u);
    // A page of none.
    const auto none = s.list_page({0, std::nullopt, ""});
    BOOST_TEST(none.sessions.empty());
    BOOST_TEST(!none.next);
}

BOOST_AUTO_TEST_CASE(pages_match_titles_exactly_where_the_server_cannot) {
    // Titles holding U+0000 are kept exactly in title_json, and shown with U+FFFD in
    // title: the statement returns them all, and the exact title decides. Twenty of
    // them, newest, none matching: the page needs several statements to fill.
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    for (int i = 0; i < 20; ++i) {
        char id[16];
        std::snprintf(id, sizeof id, "nul%05d", i);
        put(s, id, std::string("odd\0title ", 10) + std::to_string(i), 100 + i,
            {{"q", "a", 100 + i}});
    }
    for (int i = 0; i < 5; ++i) {
        char id[16];
        std::snprintf(id, sizeof id, "plain%03d", i);
        put(s, id, "plain TITLE " + std::to_string(i), i, {{"q", "a", i}});
    }
    const auto titled = walk(s, {2, std::nullopt, "title"});
    BOOST_TEST_REQUIRE(titled.size() == 25u);
    const auto plain = walk(s, {2, std::nullopt, "plain t"});
    BOOST_TEST(plain.size() == 5u);
    BOOST_TEST(walk(s, {2, std::nullopt, "\xEF\xBF\xBD"}).empty());
    const auto exact = walk(s, {3, std::nullopt, std::string("D\0T", 3)});
    BOOST_TEST(exact.size() == 20u);
}

namespace {

/// The plan of statement `s` for these parameters, as the store has the server plan it
/// (unprepared: planned for the very parameters).
std::string plan_of(admin& a, ds::detail::pg_statement s, const std::vector<const char*>& params) {
    BOOST_TEST_REQUIRE(ds::detail::pg_planned_per_call(s));
    std::string plan;
    for (const auto& line :
         a.rows(std::string("EXPLAIN ") + ds::detail::pg_sql[static_cast<std::size_t>(s)], params))
        plan += line + "\n";
    return plan;
}

} // namespace

BOOST_AUTO_TEST_CASE(pages_and_searches_read_the_index_in_order) {
    const std::string channel = fresh_channel();
    admin a;
    bulk_sessions(a, channel, 2000);
    a.exec("INSERT INTO dexter_records (channel, session_id, seq, record) SELECT channel, id, 1, ("
           "'{\"type\":\"exchange\",\"seq\":1,\"timestamp\":\"2026-01-01T00:00:00.000Z\","
           "\"query\":\"q ' || id || '\",\"answer\":\"a\"}')::json FROM dexter_sessions WHERE "
           "channel = '" +
           channel + "' AND exchange_count = 1");
    a.exec("ANALYZE dexter_sessions");
    a.exec("ANALYZE dexter_records");
    using st = ds::detail::pg_statement;
    const char* ch = channel.c_str();
    // First page, a page after a cursor, a common title, a title that matches nothing.
    const std::vector<std::vector<const char*>> pages = {
        {ch, nullptr, nullptr, nullptr, "51"},
        {ch, "1767225700000", "p0000020", nullptr, "51"},
        {ch, nullptr, nullptr, "%special%", "11"},
        {ch, "1767225700000", "p0000020", "%no such title anywhere%", "11"},
    };
    for (const auto& params : pages) {
        const std::string plan = plan_of(a, st::page, params);
        BOOST_TEST_CONTEXT(plan) {
            BOOST_TEST(plan.find("Index Scan using dexter_sessions_recent") != std::string::npos);
            BOOST_TEST(plan.find("Sort") == std::string::npos);
            BOOST_TEST(plan.find("Seq Scan") == std::string::npos);
        }
    }
    // The search: the sessions in index order, each one's records by primary key.
    for (const char* pattern : {"%q%", "%no such text anywhere at all%"}) {
        for (const auto& params : std::vector<std::vector<const char*>>{
                 {ch, nullptr, nullptr, nullptr, pattern, "64"},
                 {ch, "1767225700000", "p0000020", "1", pattern, "64"}}) {
            const std::string plan = plan_of(a, st::search, params);
            BOOST_TEST_MESSAGE("search plan:\n" << plan);
            BOOST_TEST_CONTEXT(plan) {
                BOOST_TEST(plan.find("Index Scan using dexter_sessions_recent") !=
                           std::string::npos);
                BOOST_TEST(plan.find("Index Scan using dexter_records_pkey") != std::string::npos);
                BOOST_TEST(plan.find("Seq Scan") == std::string::npos);
                BOOST_TEST(plan.find("Hash") == std::string::npos);
            }
        }
    }
    // And the store's pages on these rows are page_of's.
    auto s = make_store(channel);
    BOOST_TEST(walk(s, {100, std::nullopt, ""}).size() == 2000u - 2000u / 13u);
    BOOST_TEST(s.search({"Q P000", 5}).hits.size() == 5u);
}

BOOST_AUTO_TEST_CASE(the_manager_reads_through_the_stores_own_capabilities) {
    static_assert(ds::streams_exchanges<ds::postgres_store> &&
                  ds::searches_text<ds::postgres_store> && ds::pages_sessions<ds::postgres_store>);
    const std::string channel = fresh_channel();
    manager<ds::postgres_store> m(make_store(channel));
    m.start_new();
    for (int i = 0; i < 70; ++i)
        m.save_exchange("question " + std::to_string(i), "answer " + std::to_string(i));
    const auto meta = *m.find_session(m.list_sessions().at(0).id);
    std::uint64_t visited = 0;
    const auto diags = m.for_each_exchange(meta, 5, [&](ds::exchange&& ex) {
        BOOST_TEST(ex.seq == visited + 5);
        ++visited;
        return true;
    });
    BOOST_TEST(diags.empty());
    BOOST_TEST(visited == 66u);
    BOOST_TEST(m.search({"QUESTION 6", 100}).hits.size() == 11u); // 6, 60..69
    const auto page = m.list_page({10, std::nullopt, ""});
    BOOST_TEST_REQUIRE(page.sessions.size() == 1u);
    BOOST_TEST(page.sessions[0].id == meta.id);
    BOOST_TEST(!page.next);
    // The reads ended their read-only transaction: the connection saves again.
    BOOST_TEST(m.save_exchange("question 70", "answer 70").seq == 71u);
    BOOST_TEST(m.search({"question 70", 10}).hits.size() == 1u);
}

BOOST_AUTO_TEST_CASE(reads_over_a_lost_connection_fail_then_reconnect) {
    const std::string ctl = ds::test::env_or_empty("DEXTER_TEST_PG_CTL");
    BOOST_TEST_REQUIRE(!ctl.empty(), "DEXTER_TEST_PG_CTL is not set");
    const std::string channel = fresh_channel();
    auto s = make_store(channel);
    put(s, "restart1", "a needle title", 0, {{"needle 1", "a", 1}, {"needle 2", "a", 2}});
    const std::vector<std::pair<std::string, std::function<std::size_t()>>> reads = {
        {"search",
         [&] {
             return s.search({"needle", 10}).hits.size();
         }},
        {"list_page",
         [&] {
             return s.list_page({10, std::nullopt, "needle"}).sessions.size();
         }},
        {"for_each_exchange", [&] { return stream(s, "restart1", 1, 10).first.size(); }},
    };
    const std::vector<std::size_t> expected = {3, 1, 2};
    for (std::size_t i = 0; i < reads.size(); ++i) {
        BOOST_TEST_CONTEXT(reads[i].first) {
            BOOST_TEST(reads[i].second() == expected[i]);
            const std::string cmd = ctl + " restart -m fast >/dev/null";
            BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0);
            std::string message;
            try {
                reads[i].second();
                BOOST_FAIL("a read over a connection the server closed must fail");
            } catch (const ds::storage_error& e) {
                message = e.what();
            }
            BOOST_TEST(message.find("lost the connection to the PostgreSQL server") !=
                           std::string::npos,
                       message);
            BOOST_TEST(reads[i].second() == expected[i]); // reconnects
        }
    }
}

// verify: what can be wrong in the database, each found and named; repair is not needed.
BOOST_AUTO_TEST_CASE(verify_reports_holes_counts_and_damaged_records) {
    admin a;
    const std::string schema = ds::test::create_schema(a, "verify_");
    const std::string channel = fresh_channel();
    auto s = make_store(channel, ds::test::in_schema(schema));
    const auto turns_of = [](int n) {
        std::vector<turn> out;
        for (int i = 1; i <= n; ++i)
            out.push_back({"q" + std::to_string(i), "a", i});
        return out;
    };
    put(s, "clean001", "", 0, turns_of(3));
    put(s, "holes001", "", 0, turns_of(90));
    put(s, "count001", "", 0, turns_of(2));
    put(s, "empty001", "", 0, turns_of(2));
    put(s, "broken01", "", 0, turns_of(3));
    BOOST_TEST(s.verify_all().ok());
    const std::string in = schema + ".";
    a.exec("DELETE FROM " + in + "dexter_records WHERE " + record_row(channel, "holes001", 5));
    a.exec("DELETE FROM " + in + "dexter_records WHERE channel = '" + channel +
           "' AND session_id = 'holes001' AND seq BETWEEN 70 AND 72");
    a.exec("UPDATE " + in + "dexter_sessions SET exchange_count = 7 WHERE channel = '" + channel +
           "' AND id = 'count001'");
    a.exec("DELETE FROM " + in + "dexter_records WHERE channel = '" + channel +
           "' AND session_id = 'empty001'");
    a.exec("UPDATE " + in + "dexter_records SET record = '{\"type\":\"x\"}' WHERE " +
           record_row(channel, "broken01", 2));

    const auto all = s.verify_all();
    BOOST_TEST(!all.ok());
    BOOST_TEST_REQUIRE(all.sessions.size() == 5u);
    std::map<std::string, ds::verify_report> by_id;
    for (const auto& r : all.sessions)
        by_id[r.id] = r;
    BOOST_TEST(by_id["clean001"].ok());
    const auto& holes = by_id["holes001"];
    BOOST_TEST_REQUIRE(holes.gaps.size() == 2u);
    BOOST_TEST(holes.gaps[0].from == 5u);
    BOOST_TEST(holes.gaps[0].through == 5u);
    BOOST_TEST(holes.gaps[1].from == 70u);
    BOOST_TEST(holes.gaps[1].through == 72u);
    BOOST_TEST(holes.damaged.empty()); // the holes once, not again from the stream
    BOOST_TEST(holes.records == 86u);
    BOOST_TEST_REQUIRE(by_id["count001"].index_mismatch.size() == 1u);
    BOOST_TEST(by_id["count001"].index_mismatch[0] ==
               "the session row says 7 exchanges, and its records end at seq 2");
    BOOST_TEST_REQUIRE(by_id["empty001"].index_mismatch.size() == 1u);
    BOOST_TEST(by_id["empty001"].index_mismatch[0] ==
               "the session row says 2 exchanges, and it has no record");
    BOOST_TEST_REQUIRE(by_id["broken01"].damaged.size() == 1u);
    BOOST_TEST(by_id["broken01"].gaps.empty());
    BOOST_TEST(s.verify("clean001").ok());
    BOOST_TEST(s.verify("holes001").gaps.size() == 2u);
    BOOST_CHECK_THROW(s.verify("nothere1"), ds::session_not_found);

    // Nothing to repair in a database, and the report says so.
    const auto r = s.repair("holes001");
    BOOST_TEST(!r.needed);
    BOOST_TEST(r.what.find("needs no repair") != std::string::npos);
    BOOST_TEST(s.repair_all().empty());

    // A schema newer than this code, installed since the store connected.
    a.exec("UPDATE " + in + "dexter_sessions_schema SET version = 3");
    const auto newer = s.verify_all();
    BOOST_TEST_REQUIRE(newer.problems.size() == 1u);
    BOOST_TEST(newer.problems[0].find("schema version 3, newer than this library knows (2)") !=
               std::string::npos);
    BOOST_TEST(!newer.ok());
    BOOST_CHECK_THROW(s.verify("clean001"), ds::format_error);
}

BOOST_AUTO_TEST_SUITE_END()
