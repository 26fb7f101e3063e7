// SPDX-License-Identifier: BSL-1.0
// query.hpp: the matching rule, snippets, the hit order and collector, pages, and the
// search loop every store shares.
#include <dexter/sessions/query.hpp>

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/utf8.hpp>

#define BOOST_TEST_MODULE query
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;

namespace {

constexpr auto npos = std::string_view::npos;

ds::time_point at(int seconds) {
    return ds::time_point{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}} +
           std::chrono::seconds{seconds};
}

std::size_t code_points(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// The rule written the slow, obvious way: every position, every byte.
std::size_t reference_find(std::string_view haystack, std::string_view needle) {
    auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (needle.size() > haystack.size())
        return npos;
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        std::size_t k = 0;
        while (k < needle.size() && fold(haystack[i + k]) == fold(needle[k]))
            ++k;
        if (k == needle.size())
            return i;
    }
    return npos;
}

ds::search_hit hit(std::string id, std::uint64_t seq, int seconds) {
    ds::search_hit h;
    h.id = std::move(id);
    h.seq = seq;
    h.timestamp = at(seconds);
    return h;
}

std::vector<std::string> places(const std::vector<ds::search_hit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits)
        out.push_back(h.id + "#" + std::to_string(h.seq));
    return out;
}

ds::session_meta meta(std::string id, int updated, std::uint64_t count = 1,
                      std::string title = {}) {
    ds::session_meta m;
    m.id = std::move(id);
    m.title = title.empty() ? "title of " + m.id : std::move(title);
    m.created_at = at(0);
    m.updated_at = at(updated);
    m.exchange_count = count;
    return m;
}

std::vector<std::string> ids_of(const std::vector<ds::session_meta>& sessions) {
    std::vector<std::string> out;
    for (const auto& m : sessions)
        out.push_back(m.id);
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------
// find_ignoring_ascii_case

BOOST_AUTO_TEST_CASE(find_ignoring_ascii_case_table) {
    struct row {
        std::string_view haystack;
        std::string_view needle;
        std::size_t want;
    };
    const row rows[] = {
        {"Hello World", "world", 6},
        {"HELLO", "hello", 0},
        {"hello", "HELLO", 0},
        {"hElLo", "HeLlO", 0},
        {"abc", "abcd", npos}, // needle longer than the haystack
        {"", "a", npos},
        {"abc", "", 0}, // an empty needle matches at 0
        {"", "", 0},
        {"xyzABC", "abc", 3},   // at the very end
        {"xyzab", "abc", npos}, // cut off by the end
        {"aaab", "aab", 1},     // a repeated prefix
        {"AaAb", "aab", 1},
        {"abababc", "ABABC", 2},
        {"12ab", "2A", 1}, // first byte not a letter
        {"-x-X", "-X", 0},
        {"[{", "{", 1}, // '[' and '{' differ by 32 but are not letters
        {"@", "`", npos},
        {"caf\xC3\xA9", "CAF\xC3\xA9", 0},    // ASCII letters fold around é
        {"caf\xC3\xA9", "caf\xC3\x89", npos}, // é is not É
        {"CAF\xC3\x89", "caf\xC3\xA9", npos},
        {"na\xC3\xAFve", "\xC3\xAF", 2},
        {"\xE3\x81\x93\xE3\x82\x8C\xE3\x81\xAF\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xA7"
         "\xE3\x81\x99",
         "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", 9}, // 日本語 in これは日本語です
        {"AAAAAAAAAb", "ab", 8}, // the first letter only in the other case, many times
        {"aaaaaaaaaB", "AB", 8},
        {"AAAAAAAAAA", "ab", npos},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT("haystack '" << r.haystack << "', needle '" << r.needle << "'") {
            BOOST_TEST(ds::find_ignoring_ascii_case(r.haystack, r.needle) == r.want);
            BOOST_TEST(reference_find(r.haystack, r.needle) == r.want);
        }
    }
}

BOOST_AUTO_TEST_CASE(find_ignoring_ascii_case_agrees_with_the_obvious_search) {
    // Small alphabets make near misses and repeated prefixes common.
    const std::vector<std::string> pieces{"a", "A", "b", "B", "\xC3\xA9", "\xC3\x89", "-"};
    std::mt19937 rng(20261130);
    auto random_text = [&](std::size_t max_pieces) {
        std::string s;
        const auto n = std::uniform_int_distribution<std::size_t>(0, max_pieces)(rng);
        for (std::size_t i = 0; i < n; ++i)
            s += pieces[std::uniform_int_distribution<std::size_t>(0, pieces.size() - 1)(rng)];
        return s;
    };
    for (int i = 0; i < 5000; ++i) {
        const std::string haystack = random_text(20);
        const std::string needle = random_text(4);
        BOOST_TEST_CONTEXT("haystack '" << haystack << "', needle '" << needle << "'") {
            BOOST_TEST(ds::find_ignoring_ascii_case(haystack, needle) ==
                       reference_find(haystack, needle));
        }
    }
}

// Linear whatever the mix of cases: a megabyte of 'A' searched for "ab" would take about
// 10^12 steps if every 'A' restarted a scan for the next 'a'.
BOOST_AUTO_TEST_CASE(find_ignoring_ascii_case_is_linear) {
    std::string haystack(1u << 20, 'A');
    BOOST_TEST(ds::find_ignoring_ascii_case(haystack, "ab") == npos);
    haystack.back() = 'b';
    BOOST_TEST(ds::find_ignoring_ascii_case(haystack, "ab") == haystack.size() - 2);
    std::string mixed;
    while (mixed.size() < (1u << 20))
        mixed += "aA";
    BOOST_TEST(ds::find_ignoring_ascii_case(mixed, "aab") == npos);
}

// ---------------------------------------------------------------------------------
// make_snippet

BOOST_AUTO_TEST_CASE(short_text_is_whole_with_controls_as_spaces) {
    BOOST_TEST(ds::make_snippet("plain text", 6) == "plain text");
    BOOST_TEST(ds::make_snippet("line one\nline\ttwo\r\x1b[31m\x7f!", 9) ==
               "line one line two  [31m !");
    // C1 controls (an 8-bit CSI, U+009B; U+0085, NEL) are controls too; U+00A0 and é stay.
    BOOST_TEST(ds::make_snippet("a\xC2\x9B"
                                "2Jb\xC2\x85"
                                "c\xC2\xA0\xC3\xA9",
                                0) == "a 2Jb c\xC2\xA0\xC3\xA9");
    // A text of snippet_max_chars characters fits whole, wherever the match is.
    std::string fits;
    for (std::size_t i = 0; i < ds::snippet_max_chars; ++i)
        fits += i % 2 ? "\xC3\xA9" : "x";
    BOOST_TEST(ds::make_snippet(fits, 0) == fits);
    BOOST_TEST(ds::make_snippet(fits, fits.size() - 1) == fits);
    BOOST_TEST(ds::make_snippet(fits, 150) == fits);
}

BOOST_AUTO_TEST_CASE(long_text_is_cut_at_both_ends) {
    std::string text;
    for (int i = 0; i < 1000; ++i)
        text += static_cast<char>('a' + i % 26);
    const std::size_t pos = 500;
    const std::string s = ds::make_snippet(text, pos);
    BOOST_TEST(code_points(s) == ds::snippet_max_chars);
    BOOST_TEST(s.rfind("\xE2\x80\xA6", 0) == 0u);
    BOOST_TEST(s.substr(s.size() - 3) == "\xE2\x80\xA6");
    // 60 characters before the match, then the match and what follows.
    BOOST_TEST(s.substr(3, 60) == text.substr(pos - 60, 60));
    BOOST_TEST(s.substr(63, 20) == text.substr(pos, 20));
}

BOOST_AUTO_TEST_CASE(match_at_the_start_and_at_the_end) {
    std::string text(1000, 'x');
    text.replace(0, 5, "START");
    text.replace(995, 5, "THEND");
    const std::string first = ds::make_snippet(text, 0);
    BOOST_TEST(first.rfind("START", 0) == 0u); // nothing cut in front
    BOOST_TEST(first.substr(first.size() - 3) == "\xE2\x80\xA6");
    BOOST_TEST(code_points(first) == ds::snippet_max_chars);
    const std::string last = ds::make_snippet(text, 995);
    BOOST_TEST(last.rfind("\xE2\x80\xA6", 0) == 0u);
    BOOST_TEST(last.substr(last.size() - 5) == "THEND"); // nothing cut behind
    BOOST_TEST(code_points(last) == 1 + 60 + 5);
}

// Cut anywhere in a text of 1-, 2-, 3- and 4-byte characters, a snippet is whole
// characters: valid UTF-8, at most snippet_max_chars of them, holding the match.
BOOST_AUTO_TEST_CASE(snippets_never_split_a_character) {
    const std::vector<std::string> chars{"a", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "\n"};
    std::string text;
    std::vector<std::size_t> starts;
    for (int i = 0; i < 700; ++i) {
        starts.push_back(text.size());
        text += chars[static_cast<std::size_t>(i * 7 + i / 5) % chars.size()];
    }
    std::string flat = text; // the text as a snippet shows it
    std::replace(flat.begin(), flat.end(), '\n', ' ');
    const std::string ellipsis = "\xE2\x80\xA6";
    for (std::size_t i = 0; i < starts.size(); ++i) {
        const std::size_t pos = starts[i];
        BOOST_TEST_CONTEXT("match at byte " << pos) {
            const std::string s = ds::make_snippet(text, pos);
            BOOST_TEST(ds::is_valid_utf8(s));
            BOOST_TEST(code_points(s) <= ds::snippet_max_chars);
            // A piece of the text from 60 characters before the match (or its start),
            // marked as cut where it is.
            const std::size_t from = starts[i >= 60 ? i - 60 : 0];
            std::string_view piece = s;
            const bool cut_front = piece.starts_with(ellipsis);
            if (cut_front)
                piece.remove_prefix(ellipsis.size());
            const bool cut_back = piece.ends_with(ellipsis);
            if (cut_back)
                piece.remove_suffix(ellipsis.size());
            BOOST_TEST(cut_front == (from > 0));
            BOOST_TEST(std::string_view(flat).substr(from, piece.size()) == piece);
            BOOST_TEST(cut_back == (from + piece.size() < text.size()));
            BOOST_TEST(from + piece.size() > pos); // the match begins inside
        }
    }
}

// ---------------------------------------------------------------------------------
// The order of hits, and the collector

BOOST_AUTO_TEST_CASE(newer_hit_orders_by_time_then_id_then_seq_from_the_highest) {
    // Each hit comes strictly before the next.
    const std::vector<ds::search_hit> ordered{
        hit("b0000000", 1, 30), // newest
        hit("a0000000", 2, 20), // same time: the lower id first
        hit("a0000000", 1, 20), // same session and time: the higher seq first
        hit("a0000000", 0, 20), // a title hit after its session's exchanges
        hit("b0000000", 5, 20), hit("a0000000", 9, 10), // oldest
    };
    for (std::size_t i = 0; i < ordered.size(); ++i) {
        for (std::size_t j = 0; j < ordered.size(); ++j) {
            BOOST_TEST_CONTEXT("hits " << i << " and " << j) {
                BOOST_TEST(ds::newer_hit(ordered[i], ordered[j]) == (i < j));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(hit_collector_keeps_the_newest) {
    ds::hit_collector hits(3);
    BOOST_TEST(!hits.full_before(at(-1000)));
    int offered = 0;
    for (int t : {5, 1, 9, 3, 7, 2, 8}) {
        hits.offer(hit("s" + std::to_string(t) + "000000", 1, t));
        BOOST_TEST(hits.full_before(at(-1)) == (++offered >= 3)); // full from the third
    }
    // Full, holding 9, 8 and 7: nothing at or before 6 can enter; at 7 a lower id could.
    BOOST_TEST(hits.full_before(at(6)));
    BOOST_TEST(!hits.full_before(at(7)));
    BOOST_TEST(!hits.full_before(at(9)));
    const auto kept = hits.take();
    BOOST_TEST(places(kept) ==
               (std::vector<std::string>{"s9000000#1", "s8000000#1", "s7000000#1"}));
}

BOOST_AUTO_TEST_CASE(hit_collector_full_before_is_strict_on_time) {
    // A hit of the same time may still enter (a lower id sorts first): not full before
    // that time.
    ds::hit_collector hits(1);
    BOOST_TEST(!hits.full_before(at(8)));
    hits.offer(hit("b0000000", 1, 8));
    BOOST_TEST(!hits.full_before(at(8)));
    BOOST_TEST(hits.full_before(at(7)));
    hits.offer(hit("c0000000", 1, 8)); // after the one kept: refused
    hits.offer(hit("a0000000", 1, 8)); // before it: replaces it
    hits.offer(hit("a0000000", 1, 2)); // older: refused
    BOOST_TEST(places(hits.take()) == std::vector<std::string>{"a0000000#1"});
}

BOOST_AUTO_TEST_CASE(hit_collector_with_limit_zero_keeps_nothing) {
    ds::hit_collector hits(0);
    BOOST_TEST(hits.full_before(at(1000)));
    hits.offer(hit("a0000000", 1, 5));
    BOOST_TEST(hits.take().empty());
}

// ---------------------------------------------------------------------------------
// search_sessions: the loop every search runs

BOOST_AUTO_TEST_CASE(search_sessions_stops_once_older_sessions_cannot_count) {
    std::vector<ds::session_meta> sessions;
    for (int i = 1; i <= 10; ++i)
        sessions.push_back(
            meta("s00000" + std::string(i < 10 ? "0" : "") + std::to_string(i), i * 10));
    sessions.push_back(meta("empty000", 1000, 0)); // no exchange: never read
    std::shuffle(sessions.begin(), sessions.end(), std::mt19937(7));

    // Each session holds one hit at its updated_at: three sessions fill the result, and
    // the fourth is already too old to be read.
    std::vector<std::string> read;
    auto at_updated = [&](const ds::session_meta& m, ds::hit_collector& hits,
                          std::vector<ds::session_diagnostic>&) {
        read.push_back(m.id);
        auto h = hit(m.id, 1, 0);
        h.timestamp = m.updated_at;
        hits.offer(std::move(h));
    };
    const auto r = ds::search_sessions(sessions, ds::search_query{"needle", 3}, at_updated);
    BOOST_TEST(read == (std::vector<std::string>{"s0000010", "s0000009", "s0000008"}));
    BOOST_TEST(places(r.hits) ==
               (std::vector<std::string>{"s0000010#1", "s0000009#1", "s0000008#1"}));

    // Hits older than their session's updated_at: reading goes on until no session can
    // hold a hit newer than the oldest kept.
    read.clear();
    auto older = [&](const ds::session_meta& m, ds::hit_collector& hits,
                     std::vector<ds::session_diagnostic>& diags) {
        read.push_back(m.id);
        auto h = hit(m.id, 1, 0);
        h.timestamp = m.updated_at - std::chrono::seconds{45};
        hits.offer(std::move(h));
        diags.push_back({m.id, ds::diagnostic{1, 0, "seen"}});
    };
    const auto r2 = ds::search_sessions(sessions, ds::search_query{"needle", 3}, older);
    // Kept: s10, s9, s8 at 55, 45, 35; s4 (updated 40) may still hold a hit at 40 > 35,
    // s3 (updated 30) cannot.
    BOOST_TEST(read.size() == 7u);
    BOOST_TEST(read.back() == "s0000004");
    BOOST_TEST(places(r2.hits) ==
               (std::vector<std::string>{"s0000010#1", "s0000009#1", "s0000008#1"}));
    BOOST_TEST(r2.diagnostics.size() == 7u);

    // Titles are matched by the loop itself, at the session's updated_at.
    read.clear();
    sessions.push_back(meta("t0000001", 5, 1, "a NEEDLE in the title"));
    auto nothing = [&](const ds::session_meta& m, ds::hit_collector&,
                       std::vector<ds::session_diagnostic>&) { read.push_back(m.id); };
    const auto r3 = ds::search_sessions(sessions, ds::search_query{"needle", 5}, nothing);
    BOOST_TEST(read.size() == 11u); // nothing found: every session with an exchange read
    BOOST_TEST_REQUIRE(r3.hits.size() == 1u);
    BOOST_TEST(r3.hits[0].id == "t0000001");
    BOOST_TEST(r3.hits[0].seq == 0u);
    BOOST_TEST(ds::to_string(r3.hits[0].field) == "title");
    BOOST_TEST(r3.hits[0].snippet == "a NEEDLE in the title");
}

BOOST_AUTO_TEST_CASE(search_sessions_refuses_an_empty_or_broken_text_before_reading) {
    int reads = 0;
    auto count = [&](const ds::session_meta&, ds::hit_collector&,
                     std::vector<ds::session_diagnostic>&) { ++reads; };
    const std::vector<ds::session_meta> sessions{meta("a0000001", 1)};
    BOOST_CHECK_THROW(ds::search_sessions(sessions, ds::search_query{"", 5}, count),
                      ds::invalid_input);
    BOOST_CHECK_THROW(ds::search_sessions(sessions, ds::search_query{"\xC3", 5}, count),
                      ds::invalid_input);
    BOOST_TEST(reads == 0);
}

BOOST_AUTO_TEST_CASE(match_exchange_prefers_the_query) {
    const auto m = meta("a0000001", 50, 3, "Title");
    ds::exchange ex;
    ex.seq = 3;
    ex.timestamp = at(40);
    ex.query = "where is the Needle?";
    ex.answer = "the needle is here";
    auto h = ds::match_exchange(m, ex, "NEEDLE");
    BOOST_TEST_REQUIRE(h.has_value());
    BOOST_TEST(ds::to_string(h->field) == "query");
    BOOST_TEST(h->id == "a0000001");
    BOOST_TEST(h->title == "Title");
    BOOST_TEST(h->seq == 3u);
    BOOST_TEST(ds::format_timestamp(h->timestamp) == ds::format_timestamp(at(40)));
    BOOST_TEST(h->snippet == "where is the Needle?");
    ex.query = "elsewhere";
    h = ds::match_exchange(m, ex, "NEEDLE");
    BOOST_TEST_REQUIRE(h.has_value());
    BOOST_TEST(ds::to_string(h->field) == "answer");
    ex.answer = "nothing";
    BOOST_TEST(!ds::match_exchange(m, ex, "NEEDLE").has_value());
    BOOST_TEST(ds::to_string(ds::match_field::title) == "title");
}

// ---------------------------------------------------------------------------------
// page_of

BOOST_AUTO_TEST_CASE(page_of_walks_every_session_once) {
    std::vector<ds::session_meta> all{meta("a0000001", 10), meta("a0000002", 20),
                                      meta("a0000003", 20), meta("a0000004", 20),
                                      meta("a0000005", 30), meta("a0000006", 99, 0)}; // no exchange
    std::shuffle(all.begin(), all.end(), std::mt19937(3));
    const std::vector<std::string> newest_first{"a0000005", "a0000002", "a0000003", "a0000004",
                                                "a0000001"};
    for (std::size_t limit = 1; limit <= 6; ++limit) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            std::vector<std::string> seen;
            ds::page_request req{limit, std::nullopt, {}};
            std::size_t pages = 0;
            for (;;) {
                const auto page = ds::page_of(all, req);
                ++pages;
                BOOST_TEST(page.sessions.size() <= limit);
                for (const auto& m : page.sessions)
                    seen.push_back(m.id);
                if (!page.next)
                    break;
                BOOST_TEST(page.next->id == page.sessions.back().id);
                BOOST_TEST(ds::format_timestamp(page.next->updated_at) ==
                           ds::format_timestamp(page.sessions.back().updated_at));
                BOOST_TEST_REQUIRE(pages < 10u);
                req.after = page.next;
            }
            BOOST_TEST(seen == newest_first);
            BOOST_TEST(pages == (newest_first.size() + limit - 1) / limit);
        }
    }
}

BOOST_AUTO_TEST_CASE(page_of_filters_titles_and_survives_a_vanished_cursor) {
    std::vector<ds::session_meta> all{
        meta("a0000001", 10, 1, "Alpha one"), meta("a0000002", 20, 1, "beta"),
        meta("a0000003", 30, 1, "the ALPHA two"), meta("a0000004", 40, 0, "alpha empty"),
        meta("a0000005", 50, 1, "caf\xC3\xA9 alpha")};
    auto page = ds::page_of(all, ds::page_request{10, std::nullopt, "alpha"});
    BOOST_TEST(ids_of(page.sessions) ==
               (std::vector<std::string>{"a0000005", "a0000003", "a0000001"}));
    BOOST_TEST(!page.next.has_value());
    page = ds::page_of(all, ds::page_request{10, std::nullopt, "CAF\xC3\x89"});
    BOOST_TEST(page.sessions.empty());
    // The cursor is a position, not a session: the session it names may be gone.
    page = ds::page_of(all, ds::page_request{10, ds::list_cursor{at(30), "a0000003"}, {}});
    BOOST_TEST(ids_of(page.sessions) == (std::vector<std::string>{"a0000002", "a0000001"}));
    std::erase_if(all, [](const auto& m) { return m.id == "a0000003"; });
    const auto after_gone =
        ds::page_of(all, ds::page_request{10, ds::list_cursor{at(30), "a0000003"}, {}});
    BOOST_TEST(ids_of(after_gone.sessions) == ids_of(page.sessions));
}
