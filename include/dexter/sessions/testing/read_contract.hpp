// SPDX-License-Identifier: BSL-1.0
// The read side of the storage contract: streaming a session, exporting it, searching
// and paging, as a host sees them through session_manager. A store passes these whether
// it has the capability itself (streams_exchanges, searches_text, pages_sessions in
// storage.hpp) or leaves it to the manager's fallback: the answers must be the same.
//
// storage_contract.hpp includes this header and DEXTER_SESSIONS_STORAGE_CONTRACT
// registers its cases with the others; include storage_contract.hpp, not this one.
#pragma once

#include <dexter/sessions/testing/storage_contract.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::testing {

/// The manager the read-side cases drive: time and ids under the test's control.
template <store_factory F>
using contract_manager = session_manager<store_of<F>, manual_clock, sequential_ids>;

/// An exchange draft with every optional field set (the manager assigns seq and time).
inline exchange full_draft(std::string query, std::string answer, int n = 0) {
    exchange ex;
    ex.query = std::move(query);
    ex.answer = std::move(answer);
    ex.summary = "summary " + std::to_string(n);
    ex.model = "model-" + std::to_string(n);
    ex.duration_ms = 1000u + static_cast<std::uint64_t>(n);
    ex.tool_calls = json::array{json::object{{"name", "grep"}, {"args", json::array{"-n", n}}}};
    ex.extra = json::object{{"n", n}, {"nested", json::object{{"ok", true}}}};
    return ex;
}

/// Number of characters (code points) of valid UTF-8 `text`.
inline std::size_t count_code_points(std::string_view text) noexcept {
    std::size_t n = 0;
    for (const char c : text)
        n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

/// The lines of `text`, each without its '\n'; a last line without one is kept.
inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto nl = text.find('\n', at);
        if (nl == std::string::npos) {
            lines.push_back(text.substr(at));
            break;
        }
        lines.push_back(text.substr(at, nl - at));
        at = nl + 1;
    }
    return lines;
}

/// Every exchange a streaming read of `meta` from `from` visits.
template <class Manager>
std::vector<exchange> stream_all(Manager& m, const session_meta& meta, std::uint64_t from = 1) {
    std::vector<exchange> got;
    const auto diags = m.for_each_exchange(meta, from, [&](exchange&& ex) {
        got.push_back(std::move(ex));
        return true;
    });
    BOOST_TEST(diags.empty());
    return got;
}

/// Checks that `text` is what export_session() wrote in jsonl for `meta` and `want`:
/// a session header with meta's id, title, created_at and extra, then one record per
/// exchange, decoded through the public JSON mapping and compared field by field.
inline void check_jsonl_export(const std::string& text, const session_meta& meta,
                               const std::vector<exchange>& want,
                               const char* from_file = __builtin_FILE(),
                               int from_line = __builtin_LINE()) {
    BOOST_TEST_CONTEXT("jsonl export checked at " << from_file << "(" << from_line << ")") {
        BOOST_TEST_REQUIRE(!text.empty());
        BOOST_TEST(text.back() == '\n');
        const auto lines = split_lines(text);
        BOOST_TEST_REQUIRE(lines.size() == want.size() + 1);
        const json::object header = json::parse(lines[0]).as_object();
        BOOST_TEST(json::serialize(header.at("type")) == R"("session")");
        BOOST_TEST(header.at("version").to_number<std::uint64_t>() == 1u);
        BOOST_TEST(header.at("id").as_string() == meta.id);
        BOOST_TEST(std::string_view(header.at("title").as_string()) == meta.title);
        BOOST_TEST(std::string_view(header.at("created_at").as_string()) ==
                   format_timestamp(meta.created_at));
        const json::value* extra = header.if_contains("extra");
        BOOST_TEST(json::serialize(extra ? extra->as_object() : json::object{}) ==
                   json::serialize(meta.extra));
        std::vector<exchange> got;
        for (std::size_t i = 1; i < lines.size(); ++i) {
            const json::value record = json::parse(lines[i]);
            BOOST_TEST(json::serialize(record.at("type")) == R"("exchange")");
            got.push_back(json::value_to<exchange>(record));
        }
        check_exchanges(got, want, from_file, from_line);
    }
}

/// Checks that `text` is what export_session() wrote in json for `meta` and `want`.
inline void check_json_export(const std::string& text, const session_meta& meta,
                              const std::vector<exchange>& want,
                              const char* from_file = __builtin_FILE(),
                              int from_line = __builtin_LINE()) {
    BOOST_TEST_CONTEXT("json export checked at " << from_file << "(" << from_line << ")") {
        const json::value doc = json::parse(text); // one document, or it throws
        BOOST_TEST_REQUIRE(doc.is_object());
        BOOST_TEST(doc.as_object().size() == 2u);
        const json::object& session = doc.at("session").as_object();
        BOOST_TEST(session.at("id").as_string() == meta.id);
        BOOST_TEST(std::string_view(session.at("title").as_string()) == meta.title);
        BOOST_TEST(std::string_view(session.at("created_at").as_string()) ==
                   format_timestamp(meta.created_at));
        BOOST_TEST(std::string_view(session.at("updated_at").as_string()) ==
                   format_timestamp(meta.updated_at));
        BOOST_TEST(session.at("exchange_count").to_number<std::uint64_t>() == meta.exchange_count);
        BOOST_TEST(json::serialize(session.at("extra")) == json::serialize(meta.extra));
        std::vector<exchange> got;
        for (const auto& v : doc.at("exchanges").as_array())
            got.push_back(json::value_to<exchange>(v));
        check_exchanges(got, want, from_file, from_line);
    }
}

/// The session `m` exported in `format`, checked to report every exchange and nothing
/// skipped.
template <class Manager>
std::string exported(Manager& m, const session_meta& meta, export_format format) {
    std::ostringstream out;
    const auto result = export_session(m, meta, format, out);
    BOOST_TEST(result.exchanges == meta.exchange_count);
    BOOST_TEST(result.diagnostics.empty());
    return std::move(out).str();
}

/// "id#seq" for each hit, to compare orders in one check.
inline std::vector<std::string> hit_places(const std::vector<search_hit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits)
        out.push_back(h.id + "#" + std::to_string(h.seq));
    return out;
}

/// Every field of each hit as one line, to compare whole results in one check.
inline std::vector<std::string> hit_lines(const std::vector<search_hit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits)
        out.push_back(h.id + "#" + std::to_string(h.seq) + " " + format_timestamp(h.timestamp) +
                      " " + std::string(to_string(h.field)) + " [" + h.title + "] [" + h.snippet +
                      "]");
    return out;
}

namespace contract {

// for_each_exchange visits what load() returns, in seq order, from `from` on, stops
// when visit says so, and never goes past the metadata it was given.
template <store_factory F>
void streaming_read() {
    F factory;
    contract_manager<F> writer{factory.make()};
    writer.start_new();
    for (int i = 1; i <= 7; ++i) {
        writer.clock().advance(std::chrono::seconds{i});
        if (i % 3 == 0)
            writer.save_exchange("plain question " + std::to_string(i), "plain answer");
        else
            writer.save_exchange(
                full_draft("question " + std::to_string(i), "answer\n" + std::to_string(i), i));
    }
    const session_id id = writer.current()->id;
    contract_manager<F> reader{factory.make()};
    const auto meta = reader.find_session(id);
    BOOST_TEST_REQUIRE(meta.has_value());
    BOOST_TEST_REQUIRE(meta->exchange_count == 7u);
    const auto loaded = factory.make().load(id, all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 7u);

    check_exchanges(stream_all(reader, *meta), loaded.exchanges);
    check_exchanges(stream_all(reader, *meta, 0), loaded.exchanges);
    check_exchanges(stream_all(reader, *meta, 4),
                    {loaded.exchanges.begin() + 3, loaded.exchanges.end()});
    check_exchanges(stream_all(reader, *meta, 7), {loaded.exchanges.back()});
    BOOST_TEST(stream_all(reader, *meta, 8).empty());

    for (int stop_at : {1, 3}) {
        BOOST_TEST_CONTEXT("visit returns false at call " << stop_at) {
            int calls = 0;
            std::uint64_t last_seq = 0;
            reader.for_each_exchange(*meta, 2, [&](exchange&& ex) {
                ++calls;
                last_seq = ex.seq;
                return calls < stop_at;
            });
            BOOST_TEST(calls == stop_at);
            BOOST_TEST(last_seq == static_cast<std::uint64_t>(stop_at) + 1);
        }
    }

    struct visit_failed {};
    int calls = 0;
    BOOST_CHECK_THROW(reader.for_each_exchange(*meta, 1,
                                               [&](exchange&&) -> bool {
                                                   if (++calls == 2)
                                                       throw visit_failed{};
                                                   return true;
                                               }),
                      visit_failed);
    BOOST_TEST(calls == 2);

    // Saved after the reader took its metadata: not visited, so that what is visited
    // agrees with the count the reader shows.
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("late question", "late answer");
    const auto late = stream_all(reader, *meta);
    BOOST_TEST_REQUIRE(late.size() == 7u);
    BOOST_TEST(late.back().seq == 7u);
    const auto fresh = reader.find_session(id);
    BOOST_TEST_REQUIRE(fresh.has_value());
    BOOST_TEST(stream_all(reader, *fresh).size() == 8u);
}

// export_session in each format says what load() and find_session() say.
template <store_factory F>
void export_round_trip() {
    F factory;
    contract_manager<F> writer{factory.make()};
    writer.start_new();
    writer.set_title("Export: \"round\" trip \xC3\xA9");
    writer.set_extra(json::object{{"project", "dexter"}, {"tags", json::array{"a", 1}}});
    writer.clock().advance(std::chrono::seconds{3});
    writer.save_exchange(full_draft("first line\nsecond line\n\nafter a blank line",
                                    "an answer\nover two lines", 1));
    writer.clock().advance(std::chrono::seconds{3});
    writer.save_exchange("short question", "short answer");
    // Renamed once stored: the export's header holds the current title and extra.
    const std::string title = "Renamed: \"round\" trip \xC3\xA9";
    const json::object extra{{"project", "dexter"}, {"done", true}};
    writer.set_title(title);
    writer.set_extra(extra);
    writer.clock().advance(std::chrono::seconds{3});
    writer.save_exchange(full_draft("# not a heading\n```\n---", "```cpp\nint x;\n```\n", 3));
    const session_id id = writer.current()->id;

    contract_manager<F> reader{factory.make()};
    const auto meta = reader.find_session(id);
    BOOST_TEST_REQUIRE(meta.has_value());
    const auto loaded = factory.make().load(id, all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 3u);
    check_meta(*meta, loaded.meta);
    BOOST_TEST(meta->title == title);
    BOOST_TEST(json::serialize(meta->extra) == json::serialize(extra));

    check_jsonl_export(exported(reader, *meta, export_format::jsonl), loaded.meta,
                       loaded.exchanges);
    check_json_export(exported(reader, *meta, export_format::json), loaded.meta, loaded.exchanges);

    const std::string md = exported(reader, *meta, export_format::markdown);
    BOOST_TEST(md.rfind("# " + meta->title + "\n", 0) == 0u);
    BOOST_TEST(md.find(meta->id) != std::string::npos);
    std::size_t at = 0;
    for (const auto& ex : loaded.exchanges) {
        BOOST_TEST_CONTEXT("exchange " << ex.seq) {
            // Each line of the question quoted, in order, and the answer as it is.
            for (const auto& line : split_lines(ex.query)) {
                const std::string quoted = line.empty() ? ">\n" : "> " + line + "\n";
                const auto found = md.find(quoted, at);
                BOOST_TEST_REQUIRE(found != std::string::npos, "line " << line);
                BOOST_TEST(md[found - 1] == '\n');
                at = found + quoted.size();
            }
            const auto answer = md.find(ex.answer, at);
            BOOST_TEST_REQUIRE(answer != std::string::npos);
            at = answer + ex.answer.size();
        }
    }
}

// Terminal escapes, NUL, the JavaScript line separator, a 4-byte character and a 1 MiB
// answer come back from jsonl and json exports byte for byte, and reach the output only
// as JSON escapes.
template <store_factory F>
void export_keeps_hostile_text() {
    const std::string hostile = std::string("red \x1b[31mRED\x1b[0m osc \x1b]0;pwned\x07 ") +
                                "link \x1b]8;;http://x\x1b\\x\x1b]8;;\x1b\\ nul " +
                                std::string(1, '\0') + " sep \xE2\x80\xA8 emoji \xF0\x9F\x98\x80";
    F factory;
    contract_manager<F> writer{factory.make()};
    writer.start_new();
    writer.set_title("title " + hostile);
    writer.set_extra(json::object{{"note", hostile}});
    std::string big;
    while (big.size() < (1u << 20))
        big += hostile;
    exchange draft = full_draft("query " + hostile, big, 1);
    draft.summary = hostile;
    draft.tool_calls = json::array{hostile};
    writer.save_exchange(draft);
    writer.save_exchange(hostile, hostile);
    const session_id id = writer.current()->id;

    contract_manager<F> reader{factory.make()};
    const auto meta = reader.find_session(id);
    BOOST_TEST_REQUIRE(meta.has_value());
    const auto loaded = factory.make().load(id, all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 2u);
    BOOST_TEST((loaded.exchanges[0].answer == big)); // not printed: 1 MiB
    BOOST_TEST(meta->title == "title " + hostile);

    for (const auto format : {export_format::jsonl, export_format::json}) {
        BOOST_TEST_CONTEXT("format " << to_string(format)) {
            const std::string text = exported(reader, *meta, format);
            BOOST_TEST(is_valid_utf8(text));
            std::size_t raw_controls = 0;
            for (const char c : text)
                raw_controls += static_cast<unsigned char>(c) < 0x20 && c != '\n' ? 1 : 0;
            BOOST_TEST(raw_controls == 0u);
            if (format == export_format::jsonl)
                check_jsonl_export(text, loaded.meta, loaded.exchanges);
            else
                check_json_export(text, loaded.meta, loaded.exchanges);
        }
    }
}

// Where search finds a text, and how: titles, queries before answers, ASCII letters in
// either case, everything else exactly, snippets of whole characters.
template <store_factory F>
void search_matching_rule() {
    F factory;
    auto bare = factory.make();
    // A session without an exchange is not searched, whatever its title says.
    session_meta empty = sample_meta("empty001");
    empty.title = "lonely zebra";
    BOOST_TEST_REQUIRE(bare.create(empty));
    bare.close(empty.id);

    contract_manager<F> writer{factory.make()};
    writer.start_new();
    writer.set_title("Zebra notes");
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("first question", "plain answer");
    const session_meta titled = *writer.current();

    writer.start_new();
    writer.set_title("animals");
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("which one is tall?", "the Giraffe\nis\ttall");
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("okapi facts", "an okapi is shy");
    const session_meta animals = *writer.current();

    writer.start_new();
    writer.set_title("languages");
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("menu", "un caf\xC3\xA9 noir");
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("japanese", "\xE3\x81\x93\xE3\x82\x8C\xE3\x81\xAF\xE6\x97\xA5\xE6\x9C\xAC"
                                     "\xE8\xAA\x9E\xE3\x81\xA7\xE3\x81\x99"); // これは日本語です
    std::string long_text;
    for (int i = 0; i < 300; ++i)
        long_text += "\xE3\x81\x82";                     // あ
    long_text += "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"; // 日本語
    for (int i = 0; i < 300; ++i)
        long_text += "\xE3\x81\x84"; // い
    writer.clock().advance(std::chrono::seconds{1});
    writer.save_exchange("long", long_text);
    const session_meta languages = *writer.current();

    contract_manager<F> reader{factory.make()};
    auto search = [&](std::string text, std::size_t limit = 20) {
        return reader.search(search_query{std::move(text), limit});
    };

    {
        const auto r = search("zebra");
        BOOST_TEST(r.diagnostics.empty());
        BOOST_TEST_REQUIRE(r.hits.size() == 1u);
        const auto& h = r.hits[0];
        BOOST_TEST(h.id == titled.id);
        BOOST_TEST(h.title == "Zebra notes");
        BOOST_TEST(h.seq == 0u);
        BOOST_TEST(to_string(h.field) == "title");
        BOOST_TEST(format_timestamp(h.timestamp) == format_timestamp(titled.updated_at));
        BOOST_TEST(h.snippet == "Zebra notes");
    }
    {
        const auto r = search("GIRAFFE");
        BOOST_TEST_REQUIRE(r.hits.size() == 1u);
        const auto& h = r.hits[0];
        BOOST_TEST(h.id == animals.id);
        BOOST_TEST(h.title == "animals");
        BOOST_TEST(h.seq == 1u);
        BOOST_TEST(to_string(h.field) == "answer");
        BOOST_TEST(h.snippet == "the Giraffe is tall"); // controls shown as spaces
        const auto stored = factory.make().load(animals.id, all_exchanges);
        BOOST_TEST_REQUIRE(stored.exchanges.size() == 2u);
        BOOST_TEST(format_timestamp(h.timestamp) ==
                   format_timestamp(stored.exchanges[0].timestamp));
        BOOST_TEST(hit_lines(search("giraffe").hits) == hit_lines(r.hits));
        BOOST_TEST(hit_lines(search("gIrAfFe").hits) == hit_lines(r.hits));
    }
    {
        const auto r = search("Okapi");
        BOOST_TEST_REQUIRE(r.hits.size() == 1u); // one hit per exchange
        BOOST_TEST(r.hits[0].seq == 2u);
        BOOST_TEST(to_string(r.hits[0].field) == "query");
        BOOST_TEST(r.hits[0].snippet == "okapi facts");
    }
    {
        // Only ASCII letters fold: É is not é.
        BOOST_TEST(search("caf\xC3\x89").hits.empty());
        BOOST_TEST(search("\xC3\x89").hits.empty());
        const auto r = search("CAF\xC3\xA9");
        BOOST_TEST_REQUIRE(r.hits.size() == 1u);
        BOOST_TEST(r.hits[0].id == languages.id);
        BOOST_TEST(r.hits[0].seq == 1u);
    }
    {
        const auto r = search("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"); // 日本語
        BOOST_TEST_REQUIRE(r.hits.size() == 2u);
        BOOST_TEST(r.hits[0].seq == 3u); // newest first
        BOOST_TEST(r.hits[1].seq == 2u);
        BOOST_TEST(r.hits[1].snippet == "\xE3\x81\x93\xE3\x82\x8C\xE3\x81\xAF\xE6\x97\xA5\xE6\x9C"
                                        "\xAC\xE8\xAA\x9E\xE3\x81\xA7\xE3\x81\x99");
        const std::string& cut = r.hits[0].snippet;
        BOOST_TEST(is_valid_utf8(cut));
        BOOST_TEST(count_code_points(cut) <= snippet_max_chars);
        BOOST_TEST(cut.find("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E") != std::string::npos);
        BOOST_TEST(cut.rfind("\xE2\x80\xA6", 0) == 0u); // "…" at both ends
        BOOST_TEST(cut.substr(cut.size() - 3) == "\xE2\x80\xA6");
        // Every store cuts the same snippet: the one make_snippet() gives.
        BOOST_TEST(cut ==
                   make_snippet(long_text, find_ignoring_ascii_case(
                                               long_text, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E")));
    }
    BOOST_TEST(search("lonely").hits.empty());
    BOOST_TEST(search("nothing like this").hits.empty());
    BOOST_CHECK_THROW(search(""), invalid_input);
    BOOST_CHECK_THROW(search("\xE6\x97"), invalid_input); // part of a character: not UTF-8
}

// Hits come newest first (by time, then session id, then seq from the highest, a title
// after its session's exchanges), and a limit keeps the newest of them.
template <store_factory F>
void search_order_and_limit() {
    using std::chrono::seconds;
    F factory;
    contract_manager<F> writer{factory.make()};
    auto start = [&](std::string title) {
        writer.start_new();
        writer.set_title(std::move(title));
    };
    start("first");
    writer.clock().advance(seconds{1});
    writer.save_exchange("needle 1a", "x");
    writer.clock().advance(seconds{1});
    writer.save_exchange("q", "a needle 1b");
    writer.save_exchange("q", "no match here");
    const session_id s1 = writer.current()->id;
    start("second");
    writer.clock().advance(seconds{1});
    writer.save_exchange("needle 2a", "x");
    const session_id s2 = writer.current()->id;
    // Two sessions with hits at the same time: by id.
    writer.clock().advance(seconds{1});
    start("third");
    writer.save_exchange("needle 3a", "x");
    const session_id s3 = writer.current()->id;
    start("fourth");
    writer.save_exchange("needle 4a", "x");
    const session_id s4 = writer.current()->id;
    BOOST_TEST_REQUIRE(s3 < s4);
    // Two hits of one session at the same time: the higher seq first.
    writer.clock().advance(seconds{1});
    start("fifth");
    writer.save_exchange("needle 5a", "x");
    writer.save_exchange("x", "needle 5b");
    const session_id s5 = writer.current()->id;
    // A title hit has the session's updated_at and seq 0: after the exchange of that time.
    writer.clock().advance(seconds{1});
    start("a needle in the title");
    writer.save_exchange("needle 6a", "x");
    const session_id s6 = writer.current()->id;

    contract_manager<F> reader{factory.make()};
    const std::vector<std::string> newest_first{s6 + "#1", s6 + "#0", s5 + "#2",
                                                s5 + "#1", s3 + "#1", s4 + "#1",
                                                s2 + "#1", s1 + "#2", s1 + "#1"};
    const auto all = reader.search(search_query{"NEEDLE", 100});
    BOOST_TEST(all.diagnostics.empty());
    BOOST_TEST(hit_places(all.hits) == newest_first);
    for (std::size_t i = 1; i < all.hits.size(); ++i)
        BOOST_TEST(format_timestamp(all.hits[i - 1].timestamp) >=
                   format_timestamp(all.hits[i].timestamp));
    for (std::size_t limit = 0; limit <= newest_first.size() + 1; ++limit) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            const auto some = reader.search(search_query{"needle", limit});
            const std::size_t n = std::min(limit, all.hits.size());
            BOOST_TEST(some.hits ==
                       std::vector<search_hit>(all.hits.begin(),
                                               all.hits.begin() + static_cast<std::ptrdiff_t>(n)));
        }
    }

    // Stopping early must not skip a session updated at the time of the oldest hit kept:
    // it may hold a hit of that time with a lower id, which comes first.
    F tie_factory;
    contract_manager<F> tie_writer{tie_factory.make()};
    tie_writer.start_new();
    tie_writer.set_title("low id");
    tie_writer.clock().advance(seconds{5});
    tie_writer.save_exchange("needle low", "x");
    const session_id low = tie_writer.current()->id;
    tie_writer.start_new();
    tie_writer.set_title("high id, updated later");
    tie_writer.save_exchange("needle high", "x");
    tie_writer.clock().advance(seconds{5});
    tie_writer.save_exchange("later", "x");
    const session_id high = tie_writer.current()->id;
    BOOST_TEST_REQUIRE(low < high);
    contract_manager<F> tie_reader{tie_factory.make()};
    BOOST_TEST(hit_places(tie_reader.search(search_query{"needle", 1}).hits) ==
               std::vector<std::string>{low + "#1"});
}

// Pages of list_page(), walked with each page's `next`, give list_sessions() in order,
// each session once, even where sessions share an updated_at across a page's end.
template <store_factory F>
void list_page_walks_every_session() {
    using std::chrono::seconds;
    F factory;
    auto bare = factory.make();
    session_meta empty = sample_meta("empty002");
    empty.title = "alpha, never saved";
    BOOST_TEST_REQUIRE(bare.create(empty));
    bare.close(empty.id);

    contract_manager<F> writer{factory.make()};
    std::vector<session_id> ids;
    auto add = [&](std::string title, int advance) {
        writer.start_new();
        writer.set_title(std::move(title));
        writer.clock().advance(seconds{advance});
        writer.save_exchange("question", "answer");
        ids.push_back(writer.current()->id);
    };
    add("alpha report", 1);
    add("beta", 1);
    add("Alpha draft", 0); // the same updated_at as "beta" and "gamma"
    add("gamma", 0);
    add("delta ALPHA", 1);
    BOOST_TEST_REQUIRE(ids[1] < ids[2]);
    BOOST_TEST_REQUIRE(ids[2] < ids[3]);

    contract_manager<F> reader{factory.make()};
    auto walk = [&](page_request req, std::size_t& pages) {
        std::vector<session_meta> seen;
        pages = 0;
        for (;;) {
            const auto page = reader.list_page(req);
            ++pages;
            BOOST_TEST(page.sessions.size() <= req.limit);
            seen.insert(seen.end(), page.sessions.begin(), page.sessions.end());
            if (!page.next)
                break;
            BOOST_TEST_REQUIRE(!page.sessions.empty());
            BOOST_TEST(page.next->id == page.sessions.back().id);
            BOOST_TEST_REQUIRE(pages < 20u);
            req.after = page.next;
        }
        return seen;
    };

    std::size_t pages = 0;
    const auto walked = walk(page_request{2, std::nullopt, {}}, pages);
    BOOST_TEST(pages == 3u);
    std::vector<session_id> walked_ids;
    for (const auto& m : walked)
        walked_ids.push_back(m.id);
    const std::vector<session_id> newest_first{ids[4], ids[1], ids[2], ids[3], ids[0]};
    BOOST_TEST(walked_ids == newest_first);
    const auto listed = reader.list_sessions();
    BOOST_TEST_REQUIRE(listed.size() == walked.size());
    for (std::size_t i = 0; i < listed.size(); ++i)
        check_meta(walked[i], listed[i]);

    const auto whole = reader.list_page(page_request{5, std::nullopt, {}});
    BOOST_TEST(whole.sessions.size() == 5u);
    BOOST_TEST(!whole.next.has_value());

    const auto alpha = walk(page_request{1, std::nullopt, "ALPHA"}, pages);
    BOOST_TEST(pages == 3u);
    BOOST_TEST_REQUIRE(alpha.size() == 3u);
    BOOST_TEST(alpha[0].id == ids[4]);
    BOOST_TEST(alpha[1].id == ids[2]);
    BOOST_TEST(alpha[2].id == ids[0]);
    const auto none = reader.list_page(page_request{2, std::nullopt, "epsilon"});
    BOOST_TEST(none.sessions.empty());
    BOOST_TEST(!none.next.has_value());
}

} // namespace contract

} // namespace dexter::sessions::testing
