// SPDX-License-Identifier: BSL-1.0
// jsonl_store's read side on real files: the streaming read (for_each_exchange) agrees
// with load() on clean and damaged histories and holds a bounded part of the session;
// the search's raw-byte pre-filter never hides a match that decoding would find, and
// decodes only the lines that may match.
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#define BOOST_TEST_MODULE jsonl_store_read
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <malloc.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace dexter::sessions::test;

namespace {

// Every exchange a streaming read hands over, in order.
struct visited {
    std::vector<ds::exchange> exchanges;
    std::vector<ds::diagnostic> diagnostics;
};

visited stream(ds::jsonl_store& store, const std::string& id, std::uint64_t from = 1,
               std::uint64_t through = UINT64_MAX) {
    visited out;
    out.diagnostics = store.for_each_exchange(id, from, through, [&](ds::exchange&& ex) {
        out.exchanges.push_back(std::move(ex));
        return true;
    });
    return out;
}

std::vector<std::uint64_t> seqs(const std::vector<ds::exchange>& v) {
    std::vector<std::uint64_t> out;
    for (const auto& ex : v)
        out.push_back(ex.seq);
    return out;
}

// Saves session `id` with `n` exchanges whose answers are `answer_bytes` long (large
// ones cross the reader's 64 KiB chunks).
ds::session_meta save_long(const fs::path& root, const std::string& id, std::uint64_t n,
                           std::size_t answer_bytes) {
    ds::jsonl_store store{root, "cli", unsynced};
    ds::session_meta meta = make_meta(id);
    BOOST_TEST_REQUIRE(store.create(meta));
    for (std::uint64_t seq = 1; seq <= n; ++seq) {
        ds::exchange ex = make_exchange(seq);
        ex.answer += std::string(answer_bytes, static_cast<char>('a' + seq % 26));
        append_exchange(store, meta, ex);
    }
    store.close(id);
    return meta;
}

// Peak resident memory (VmHWM) in KiB.
long peak_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmHWM:"))
            return std::stol(line.substr(6));
    return -1;
}

// Gives the free heap back and resets the peak to what is resident now, so that a
// measurement that follows sees what it allocates, not what the process held before.
long reset_peak_kib() {
    ::malloc_trim(0);
    std::ofstream("/proc/self/clear_refs") << "5";
    return peak_kib();
}

void append_line(const fs::path& file, const std::string& line) {
    write_bytes(file, read_bytes(file) + line + "\n");
}

} // namespace

BOOST_AUTO_TEST_CASE(streaming_gives_what_load_gives_across_chunks) {
    ds::test::temp_dir dir;
    save_long(dir.path(), "long0001", 300, 1000); // ~330 KB: six chunks
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto loaded = store.load("long0001");
    const auto got = stream(store, "long0001");
    BOOST_TEST(got.exchanges == loaded.exchanges);
    BOOST_TEST(got.diagnostics.empty(), show(got.diagnostics));
    BOOST_TEST(seqs(got.exchanges) == range(1, 300));
}

BOOST_AUTO_TEST_CASE(from_through_and_an_early_stop_bound_what_is_visited) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "bnds0001", 20);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_TEST(seqs(stream(store, "bnds0001", 5, 9).exchanges) == range(5, 9));
    BOOST_TEST(seqs(stream(store, "bnds0001", 18).exchanges) == range(18, 20));
    BOOST_TEST(stream(store, "bnds0001", 9, 5).exchanges.empty());
    int calls = 0;
    store.for_each_exchange("bnds0001", 1, 20, [&](ds::exchange&&) { return ++calls < 3; });
    BOOST_TEST(calls == 3);
}

BOOST_AUTO_TEST_CASE(damaged_lines_are_reported_as_load_reports_them_and_never_fatal) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "dmgd0001", 3);
    const fs::path file = history(dir.path(), "dmgd0001");
    append_line(file, "{\"type\":\"exchange\",\"seq\":4,\"timesta");     // cut record
    append_line(file, line_of(make_exchange(2)));                        // a repeat
    append_line(file, "not json at all \x01");                           // garbage
    append_line(file, line_of(make_exchange(6)));                        // after a hole
    write_bytes(file, read_bytes(file) + "{\"type\":\"exchange\",\"se"); // torn tail
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto loaded = store.load("dmgd0001");
    const auto got = stream(store, "dmgd0001");
    BOOST_TEST(seqs(got.exchanges) == (std::vector<std::uint64_t>{1, 2, 3, 6}));
    BOOST_TEST(got.exchanges == loaded.exchanges);
    BOOST_TEST(got.diagnostics == loaded.diagnostics, show(got.diagnostics));
    BOOST_TEST(mentions(got.diagnostics, "repeats or goes back"));
    BOOST_TEST(mentions(got.diagnostics, "exchanges 4 to 5 are missing"));
    BOOST_TEST(mentions(got.diagnostics, "incomplete last line"));
}

BOOST_AUTO_TEST_CASE(a_newer_format_is_refused_before_anything_is_visited) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "good0001", 1);
    fs::create_directories(dir / "cli" / "newv0001");
    write_bytes(
        history(dir.path(), "newv0001"),
        R"({"type":"session","version":7,"id":"newv0001","created_at":"2026-03-01T00:00:00.000Z","title":"t"})"
        "\n" +
            line_of(make_exchange(1)) + "\n");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    int calls = 0;
    BOOST_CHECK_THROW(
        store.for_each_exchange("newv0001", 1, 10, [&](ds::exchange&&) { return ++calls > 0; }),
        ds::format_error);
    BOOST_TEST(calls == 0);
    BOOST_CHECK_THROW(stream(store, "nope0001"), ds::session_not_found);
    BOOST_CHECK_THROW(stream(store, "../../etc"), ds::invalid_session_id);
}

BOOST_AUTO_TEST_CASE(a_15_mib_answer_streams_and_exports_byte_for_byte) {
    ds::test::temp_dir dir;
    ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    m.start_new();
    std::string answer(15u << 20, 'z');
    answer[12345] = '\x1b';
    answer[777777] = '"';
    m.save_exchange("big?", answer);
    const auto id = m.current()->id;
    m.close();
    std::ostringstream out;
    const auto meta = m.find_session(id);
    const auto r = ds::export_session(m, *meta, ds::export_format::jsonl, out);
    BOOST_TEST(r.exchanges == 1u);
    BOOST_TEST(r.diagnostics.empty(), show(r.diagnostics));
    // The export is the history itself: the same header and the same record.
    BOOST_TEST(out.str() == read_bytes(dir / "cli" / id / "history.jsonl"));
}

BOOST_AUTO_TEST_CASE(a_repaired_line_is_exported_as_read_never_as_it_was_written) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "surr0001", 1);
    const fs::path file = history(dir.path(), "surr0001");
    // A JavaScript writer cut a string inside a surrogate pair: the reader replaces the
    // lone half with U+FFFD and says so; an export must not copy the broken escape.
    append_line(
        file,
        R"({"type":"exchange","seq":2,"timestamp":"2026-03-01T00:00:20.000Z","query":"cut \ud83d","answer":"a"})");
    ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    const auto meta = m.find_session("surr0001");
    BOOST_TEST_REQUIRE(meta.has_value());
    for (const auto format : {ds::export_format::jsonl, ds::export_format::json}) {
        std::ostringstream out;
        const auto r = ds::export_session(m, *meta, format, out);
        BOOST_TEST(r.exchanges == 2u);
        BOOST_TEST(mentions(r.diagnostics, "lone UTF-16 surrogate"), show(r.diagnostics));
        BOOST_TEST(!contains(out.str(), "\\ud83d"));
        BOOST_TEST(contains(out.str(), "cut \xEF\xBF\xBD"));
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define DEXTER_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEXTER_TEST_UNDER_ASAN 1
#endif
#endif

BOOST_AUTO_TEST_CASE(streaming_holds_a_bounded_part_of_the_session) {
#ifdef DEXTER_TEST_UNDER_ASAN
    // AddressSanitizer keeps freed memory in quarantine (256 MiB by default): the peak
    // then says nothing about what the reader holds.
    BOOST_TEST_MESSAGE("skipped under AddressSanitizer: peak memory is not the reader's");
    return;
#endif
    ds::test::temp_dir dir;
    save_long(dir.path(), "mem00001", 2000, 16 * 1024); // ~33 MB
    // In a child each, so that one measurement's peak is not the other's.
    const auto grown = [&](bool whole) {
        return in_child([&] {
            ds::jsonl_store store{dir.path(), "cli", unsynced};
            const long before = reset_peak_kib();
            std::uint64_t bytes = 0;
            if (whole) {
                for (const auto& ex : store.load("mem00001").exchanges)
                    bytes += ex.answer.size();
            } else {
                store.for_each_exchange("mem00001", 1, UINT64_MAX, [&](ds::exchange&& ex) {
                    bytes += ex.answer.size();
                    return true;
                });
            }
            return std::to_string(peak_kib() - before) + " " + std::to_string(bytes);
        });
    };
    const std::string streamed = grown(false), loaded = grown(true);
    BOOST_TEST_MESSAGE("peak growth, KiB and bytes read: streamed " << streamed << ", loaded "
                                                                    << loaded);
    const long streamed_kib = std::stol(streamed), loaded_kib = std::stol(loaded);
    BOOST_TEST(streamed.substr(streamed.find(' ')) == loaded.substr(loaded.find(' ')));
    BOOST_TEST(loaded_kib > 30 * 1024); // the measurement can see a whole session
    BOOST_TEST(streamed_kib < 4 * 1024);
}

// --- search ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_prefilter_decodes_only_lines_that_may_match) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "pref0001", 2);
    const fs::path file = history(dir.path(), "pref0001");
    // Two damaged lines that begin as this library writes a record: a reader decoding
    // every line reports both; the search decodes (and so reports) only the one whose
    // bytes hold the text.
    append_line(
        file,
        R"({"type":"exchange","seq":3,"timestamp":"2026-03-01T00:00:30.000Z","query":"plain words","answer":)");
    append_line(
        file,
        R"({"type":"exchange","seq":4,"timestamp":"2026-03-01T00:00:40.000Z","query":"needle here","answer":)");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_TEST(store.load("pref0001").diagnostics.size() == 2u);
    const auto r = store.search({"NEEDLE", 10});
    BOOST_TEST(r.hits.empty());
    BOOST_TEST_REQUIRE(r.diagnostics.size() == 1u);
    BOOST_TEST(r.diagnostics[0].id == "pref0001");
    BOOST_TEST(r.diagnostics[0].what.line == 5u);
}

BOOST_AUTO_TEST_CASE(the_prefilter_sees_through_other_writers_escapes) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "escp0001", 1);
    const fs::path file = history(dir.path(), "escp0001");
    // What another JSON writer may produce for "café a/b" and a tab: \u escapes and \/.
    append_line(
        file,
        R"({"type":"exchange","seq":2,"timestamp":"2026-03-01T00:00:20.000Z","query":"q","answer":"caf\u00e9 ok"})");
    append_line(
        file,
        R"({"type":"exchange","seq":3,"timestamp":"2026-03-01T00:00:30.000Z","query":"q","answer":"path a\/b"})");
    append_line(
        file,
        R"({"type":"exchange","seq":4,"timestamp":"2026-03-01T00:00:40.000Z","query":"x\u0009y","answer":"a"})");
    // Fields in another order: not this library's prefix, decoded whatever its bytes.
    append_line(
        file,
        R"({"seq":5,"type":"exchange","answer":"in another order","query":"q","timestamp":"2026-03-01T00:00:50.000Z"})");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    auto hit_seqs = [&](const std::string& text) {
        std::vector<std::uint64_t> out;
        for (const auto& h : store.search({text, 10}).hits)
            out.push_back(h.seq);
        return out;
    };
    BOOST_TEST(hit_seqs("CAFÉ").empty()); // É is not folded: only ASCII letters are
    BOOST_TEST(hit_seqs("café") == std::vector<std::uint64_t>{2});
    BOOST_TEST(hit_seqs("a/b") == std::vector<std::uint64_t>{3});
    BOOST_TEST(hit_seqs("x\ty") == std::vector<std::uint64_t>{4});
    BOOST_TEST(hit_seqs("ANOTHER order") == std::vector<std::uint64_t>{5});
}

BOOST_AUTO_TEST_CASE(search_skips_what_every_reader_skips) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "dupl0001", 3);
    const fs::path file = history(dir.path(), "dupl0001");
    // A second copy of seq 2 holding the text: load() keeps the first copy, so the
    // search must not find the second, though it never decodes the lines before it.
    ds::exchange copy = make_exchange(2);
    copy.answer = "the second copy holds zebra";
    append_line(file, line_of(copy));
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto r = store.search({"zebra", 10});
    BOOST_TEST(r.hits.empty());
    BOOST_TEST_REQUIRE(r.diagnostics.size() == 1u);
    BOOST_TEST(contains(r.diagnostics[0].what.reason, "repeats or goes back"));
}

BOOST_AUTO_TEST_CASE(a_damaged_line_does_not_hide_the_copy_that_follows_it) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "rwrt0001", 2);
    const fs::path file = history(dir.path(), "rwrt0001");
    // Exchange 3 cut short (never decoded: it cannot hold the text), then written whole:
    // a reader keeps the whole one, so the search must find it.
    ds::exchange third = make_exchange(3);
    third.answer = "the whole copy holds zebra";
    append_line(file, line_of(make_exchange(3)).substr(0, 60));
    append_line(file, line_of(third));
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_TEST_REQUIRE(ds::test::seqs(store.load("rwrt0001")) == range(1, 3));
    const auto r = store.search({"zebra", 10});
    BOOST_TEST_REQUIRE(r.hits.size() == 1u);
    BOOST_TEST(r.hits[0].seq == 3u);
    BOOST_TEST(r.diagnostics.size() == 1u); // the cut line, found by the full read
}

BOOST_AUTO_TEST_CASE(search_finds_the_same_hits_as_the_managers_generic_search) {
    ds::test::temp_dir dir;
    ds::session_manager<ds::jsonl_store, ds::manual_clock, ds::sequential_ids> m{
        ds::jsonl_store{dir.path(), "cli", unsynced}};
    const std::vector<std::string> words = {"alpha", "Beta", "gamma", "ALPHA beta", "é"};
    for (int s = 0; s < 6; ++s) {
        m.start_new();
        for (int e = 0; e < 8; ++e) {
            m.clock().advance(std::chrono::seconds{1 + (s * 7 + e) % 3});
            m.save_exchange("q " + words[(s + e) % words.size()],
                            "a " + words[(s * 3 + e) % words.size()] + " \x1b[1m");
        }
    }
    m.close();
    for (const std::string text : {"alpha", "BETA", "é", "a ", "\x1b[1m", "nothing"}) {
        BOOST_TEST_CONTEXT("search for '" << text << "'") {
            for (const std::size_t limit : {1u, 5u, 100u}) {
                const ds::search_query q{text, limit};
                const auto own = m.storage().search(q);
                // The generic search: every session streamed and matched in full.
                const auto generic =
                    ds::search_sessions(m.storage().list(), q,
                                        [&](const ds::session_meta& meta, ds::hit_collector& hits,
                                            std::vector<ds::session_diagnostic>&) {
                                            m.for_each_exchange(meta, 1, [&](ds::exchange&& ex) {
                                                if (auto h = ds::match_exchange(meta, ex, q.text))
                                                    hits.offer(std::move(*h));
                                                return true;
                                            });
                                        });
                BOOST_TEST(own.hits == generic.hits);
                BOOST_TEST(own.hits.size() == std::min<std::size_t>(limit, generic.hits.size()));
            }
        }
    }
    BOOST_TEST(!m.storage().search({"alpha", 100}).hits.empty());
}

BOOST_AUTO_TEST_CASE(a_history_replaced_by_a_fifo_does_not_stop_the_search) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "good0001", 2);
    save_session(dir.path(), "fifo0001", 2);
    const fs::path file = history(dir.path(), "fifo0001");
    fs::remove(file);
    BOOST_TEST_REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto r = in_child(
        [&] {
            const auto found = store.search({"question 2", 10});
            std::string out;
            for (const auto& h : found.hits)
                out += h.id + " ";
            return out;
        },
        std::chrono::seconds{20});
    BOOST_TEST(r == "good0001 ");
}
