// SPDX-License-Identifier: BSL-1.0
// resume()'s report (types.hpp resume_report): what was read, what the history will send,
// and what was skipped or repaired, on sessions damaged on disk for real.
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#define BOOST_TEST_MODULE resume_report
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/printable.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace dexter::sessions::test;
using kind = ds::diagnostic_kind;

namespace {

/// A session of `n` exchanges saved through the store, its history's lines.
std::vector<std::string> saved_lines(const fs::path& root, const std::string& id, std::uint64_t n) {
    save_session(root, id, n);
    return lines_of(read_bytes(history(root, id)));
}

std::size_t kinds_of(const std::vector<ds::diagnostic>& ds, kind k) {
    std::size_t n = 0;
    for (const auto& d : ds)
        n += d.kind == k ? 1 : 0;
    return n;
}

/// A History policy that says nothing of its context: the report leaves it empty.
struct silent_history {
    std::size_t turns = 0;
    void replay(std::span<const ds::exchange> xs) { turns = xs.size(); }
    void append(const ds::exchange&) { ++turns; }
    void clear() { turns = 0; }
};
static_assert(!ds::describes_context<silent_history>);

} // namespace

BOOST_AUTO_TEST_CASE(a_clean_resume_reports_what_was_read_and_what_will_be_sent) {
    ds::test_session_manager m;
    m.start_new();
    for (int i = 1; i <= 25; ++i)
        m.save_exchange("q" + std::to_string(i), "a" + std::to_string(i));
    const auto id = m.current()->id;
    m.close();

    const auto resumed = m.resume(id);
    const auto& r = resumed.report;
    BOOST_TEST(r.exchanges_on_disk == 25u);
    BOOST_TEST(r.exchanges_loaded == ds::manager_options{}.context_exchanges);
    BOOST_TEST(r.exchanges_loaded == resumed.exchanges.size());
    BOOST_TEST_REQUIRE(r.context.has_value());
    // chat_history's defaults: 10 turns, the newest 3 in full.
    BOOST_TEST(r.context->in_full == 3u);
    BOOST_TEST(r.context->as_summaries == 7u);
    BOOST_TEST(r.clean());
    BOOST_TEST(r.lines_skipped() == 0u);
    BOOST_TEST(!r.index_rebuilt());

    // The shape is what recent_turns() sends: one user and one assistant message a turn,
    // the full answers last.
    const auto sent = m.history().recent_turns();
    BOOST_TEST(sent.size() == 2 * (r.context->in_full + r.context->as_summaries));
    BOOST_TEST(sent.back().content == "a25");
}

BOOST_AUTO_TEST_CASE(the_context_follows_the_history_s_limit_and_its_size) {
    ds::chat_history h;
    h.set_recent_limit(4);
    ds::test_session_manager m{ds::memory_store{}, {}, {}, h};
    m.start_new();
    for (int i = 1; i <= 2; ++i)
        m.save_exchange("q", "a");
    const auto id = m.current()->id;
    m.close();
    // Fewer turns than the limit: all of them, in full up to 3.
    auto r = m.resume(id).report;
    BOOST_TEST_REQUIRE(r.context.has_value());
    BOOST_TEST(r.context->in_full == 2u);
    BOOST_TEST(r.context->as_summaries == 0u);

    for (int i = 1; i <= 8; ++i)
        m.save_exchange("q", "a");
    m.close();
    r = m.resume(id).report;
    BOOST_TEST(r.context->in_full == 3u);
    BOOST_TEST(r.context->as_summaries == 1u);
    BOOST_TEST(m.history().recent_turns().size() == 8u);
    BOOST_TEST(m.history().recent_limit() == 4u);
}

BOOST_AUTO_TEST_CASE(a_history_that_does_not_describe_its_context_leaves_it_empty) {
    ds::session_manager<ds::memory_store, ds::manual_clock, ds::sequential_ids, silent_history> m;
    m.start_new();
    m.save_exchange("q", "a");
    const auto id = m.current()->id;
    m.close();
    const auto resumed = m.resume(id);
    BOOST_TEST(!resumed.report.context.has_value());
    BOOST_TEST(m.history().turns == 1u);
    BOOST_TEST(resumed.report.clean());
}

BOOST_AUTO_TEST_CASE(damaged_lines_and_holes_in_what_was_read_are_counted_by_kind) {
    temp_dir dir;
    const std::string id = "dmg00001";
    auto lines = saved_lines(dir.path(), id, 6);
    lines[3] = "{not json";               // exchange 3: a damaged line, and a hole 2 -> 4
    lines[5] = line_of(make_exchange(4)); // exchange 5 replaced by a repeat of 4
    write_bytes(history(dir.path(), id), joined(lines));

    file_manager m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    const auto resumed = m.resume(id);
    const auto& r = resumed.report;
    BOOST_TEST(r.session == resumed.diagnostics, show(r.session));
    BOOST_TEST(r.count(kind::damaged_line) == 1u, show(r.session));
    BOOST_TEST(r.count(kind::out_of_order) == 1u, show(r.session));
    BOOST_TEST(r.count(kind::missing_exchanges) >= 1u, show(r.session));
    BOOST_TEST(r.lines_skipped() == 2u);
    BOOST_TEST(r.exchanges_on_disk == 6u);
    BOOST_TEST(r.exchanges_loaded == 4u); // 1, 2, 4, 6
    BOOST_TEST(!r.clean());
    // Each diagnostic says where: the damaged line is line 4 of the file.
    for (const auto& d : r.session)
        if (d.kind == kind::damaged_line)
            BOOST_TEST(d.line == 4u);
    // The JSON a host prints names the kinds.
    const std::string text = boost::json::serialize(boost::json::value_from(r));
    BOOST_TEST(contains(text, R"("kind":"damaged_line")"), text);
    BOOST_TEST(contains(text, R"("exchanges_on_disk":6)"), text);
}

BOOST_AUTO_TEST_CASE(a_torn_tail_is_reported_once_as_repaired) {
    temp_dir dir;
    const std::string id = "torn0001";
    const auto lines = saved_lines(dir.path(), id, 3);
    const std::string whole = joined(lines);
    write_bytes(history(dir.path(), id), whole + R"({"type":"exchange","seq":4,"ti)");

    file_manager m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    const auto r = m.resume(id).report;
    BOOST_TEST(r.count(kind::tail_repaired) == 1u, show(r.session));
    BOOST_TEST(r.count(kind::torn_tail) == 0u, show(r.session));
    // The store's own note of the same repair is not told a second time.
    BOOST_TEST(kinds_of(r.store, kind::tail_repaired) == 0u, show(r.store));
    BOOST_TEST(r.lines_skipped() == 0u);
    BOOST_TEST(read_bytes(history(dir.path(), id)) == whole);
    // Nothing left for take_diagnostics(): the report had it.
    BOOST_TEST(m.take_diagnostics().empty());

    // The next resume finds the session whole.
    m.close();
    BOOST_TEST(m.resume(id).report.clean());
}

BOOST_AUTO_TEST_CASE(an_index_rebuilt_while_resuming_is_in_the_report) {
    temp_dir dir;
    const std::string id = "indx0001";
    save_session(dir.path(), id, 2);
    {
        ds::jsonl_store store{dir.path(), "cli", unsynced};
        BOOST_TEST(store.list().size() == 1u); // writes index.json
    }
    BOOST_TEST_REQUIRE(fs::exists(dir / "index.json"));
    write_bytes(dir / "index.json", "this is not an index");

    file_manager m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    const auto r = m.resume(id).report;
    BOOST_TEST(r.index_rebuilt(), show(r.store));
    BOOST_TEST(r.session.empty(), show(r.session));
    BOOST_TEST(!r.clean());
    BOOST_TEST(m.take_diagnostics().empty());
    // The rebuilt index is used from then on: a second resume is clean.
    m.close();
    BOOST_TEST(m.resume(id).report.clean(), show(m.resume(id).report.store));
}
