// SPDX-License-Identifier: BSL-1.0
// detail/record_codec.hpp on its own: records encoded and read back, and every kind of
// bad line the reader skips and reports. No file, no system call.
#include <dexter/sessions/detail/record_codec.hpp>

#define BOOST_TEST_MODULE record_codec
#include <boost/test/unit_test.hpp>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;
namespace json = boost::json;

namespace {

ds::time_point at(int seconds) {
    return ds::time_point{std::chrono::sys_days{std::chrono::year{2026} / 5 / 1}} +
           std::chrono::seconds{seconds};
}

ds::exchange make_exchange(std::uint64_t seq, int seconds) {
    ds::exchange ex;
    ex.seq = seq;
    ex.timestamp = at(seconds);
    ex.query = "q" + std::to_string(seq) + " \"\\\n\xC3\xA9";
    ex.answer = "a" + std::to_string(seq);
    if (seq % 2 == 0) {
        ex.summary = "s";
        ex.model = "m";
        ex.duration_ms = 42;
        ex.tool_calls = json::array{json::object{{"name", "t"}}};
        ex.extra = json::object{{"k", 1}};
    }
    return ex;
}

// Reads `text` line by line as the forward scanner does; returns the state, collecting
// exchanges and diagnostics.
struct read_result {
    ds::detail::scan_state st;
    std::vector<ds::exchange> exchanges;
    std::vector<ds::diagnostic> diags;
};

read_result read_all(std::string_view text, bool check_order = true) {
    read_result r;
    ds::detail::record_reader reader(r.diags, check_order);
    std::uint64_t line_no = 0, offset = 0;
    while (offset < text.size()) {
        const auto nl = text.find('\n', offset);
        const auto end = nl == std::string_view::npos ? text.size() : nl;
        ++line_no;
        reader.read_line(r.st, text.substr(offset, end - offset), line_no, offset, true,
                         [&](ds::exchange&& ex) { r.exchanges.push_back(std::move(ex)); });
        offset = end + 1;
    }
    return r;
}

bool has_reason(const std::vector<ds::diagnostic>& d, std::string_view part, std::uint64_t line) {
    for (const auto& x : d)
        if (x.line == line && x.reason.find(part) != std::string::npos)
            return true;
    return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(header_exchanges_and_meta_round_trip) {
    ds::session_meta m{"abcd1234", "title \xE2\x82\xAC",           at(0), at(0),
                       0,          json::object{{"project", "x"}}, false, std::nullopt};
    std::string text;
    BOOST_TEST_REQUIRE(ds::detail::encode_header(text, m));
    std::vector<ds::exchange> saved;
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
        saved.push_back(make_exchange(seq, static_cast<int>(seq) * 10));
        BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, saved.back()));
    }
    ds::session_meta renamed = m;
    renamed.title = "renamed";
    renamed.extra = json::object{{"pinned", true}};
    BOOST_TEST_REQUIRE(ds::detail::encode_meta(text, renamed));
    // one record per line, each ending in a newline, none with a raw newline inside
    std::size_t lines = 0;
    for (char c : text)
        lines += c == '\n';
    BOOST_TEST(lines == 6u);
    BOOST_TEST(text.back() == '\n');

    const auto r = read_all(text);
    BOOST_TEST(r.diags.empty());
    BOOST_TEST(r.st.have_header);
    BOOST_TEST(r.st.newer_version == 0u);
    BOOST_TEST(r.st.meta.title == "renamed");
    BOOST_TEST(json::serialize(r.st.meta.extra) == R"({"pinned":true})");
    BOOST_TEST(ds::format_timestamp(r.st.meta.created_at) == ds::format_timestamp(at(0)));
    BOOST_TEST(ds::format_timestamp(r.st.meta.updated_at) == ds::format_timestamp(at(40)));
    BOOST_TEST(r.st.meta.exchange_count == 4u);
    BOOST_TEST_REQUIRE(r.exchanges.size() == saved.size());
    for (std::size_t i = 0; i < saved.size(); ++i)
        BOOST_TEST((r.exchanges[i] == saved[i]), "exchange " << i + 1);
}

BOOST_AUTO_TEST_CASE(encoders_refuse_invalid_utf8) {
    std::string out;
    ds::exchange ex = make_exchange(1, 0);
    ex.answer = "bad \xC0\xAF";
    BOOST_TEST(!ds::detail::encode_exchange(out, ex));
    ds::session_meta m{"abcd1234", "bad \xFF", at(0), at(0), 0, {}, false, std::nullopt};
    out.clear();
    BOOST_TEST(!ds::detail::encode_header(out, m));
    out.clear();
    BOOST_TEST(!ds::detail::encode_meta(out, m));
}

BOOST_AUTO_TEST_CASE(every_bad_line_is_skipped_and_reported_with_its_line) {
    std::string text;
    ds::session_meta m{"abcd1234", "t", at(0), at(0), 0, {}, false, std::nullopt};
    BOOST_TEST_REQUIRE(ds::detail::encode_header(text, m));                     // 1
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(1, 1))); // 2
    text += "{not json\n";                                                      // 3
    text += "[1,2]\n";                                                          // 4
    text += "{\"no\":\"type\"}\n";                                              // 5
    text += "{\"type\":\"exchange\",\"seq\":\"two\"}\n";                        // 6
    text += "{\"type\":\"session\",\"version\":1}\n";                           // 7
    text += "{\"type\":\"from_the_future\",\"x\":1}\n"; // 8: silently skipped
    text += "\n";                                       // 9: empty, ignored
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(1, 2))); // 10: repeat
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(4, 3))); // 11: gap
    text += "{\"type\":\"meta\",\"title\":\"bad \xFF\"}\n";                     // 12: invalid UTF-8
    const auto r = read_all(text);
    BOOST_TEST(has_reason(r.diags, "not valid JSON", 3));
    BOOST_TEST(has_reason(r.diags, "not a JSON object", 4));
    BOOST_TEST(has_reason(r.diags, "record has no type", 5));
    BOOST_TEST(has_reason(r.diags, "bad exchange", 6));
    BOOST_TEST(has_reason(r.diags, "session header after line 1", 7));
    BOOST_TEST(has_reason(r.diags, "repeats or goes back", 10));
    BOOST_TEST(has_reason(r.diags, "exchanges 2 to 3 are missing", 11));
    BOOST_TEST(has_reason(r.diags, "invalid UTF-8", 12));
    BOOST_TEST(r.diags.size() == 8u);
    BOOST_TEST_REQUIRE(r.exchanges.size() == 2u);
    BOOST_TEST(r.exchanges[0].seq == 1u);
    BOOST_TEST(r.exchanges[1].seq == 4u);
    BOOST_TEST(r.st.meta.exchange_count == 4u);
    BOOST_TEST(r.st.meta.title == "t"); // the bad meta record changed nothing
}

BOOST_AUTO_TEST_CASE(a_newer_version_is_recorded_not_read) {
    const auto r = read_all("{\"type\":\"session\",\"version\":2,\"title\":\"future\"}\n");
    BOOST_TEST(r.st.newer_version == 2u);
    BOOST_TEST(!r.st.have_header);
    BOOST_TEST(r.st.meta.title.empty());
    const auto zero = read_all("{\"type\":\"session\",\"version\":0}\n");
    BOOST_TEST(has_reason(zero.diags, "no valid version", 1));
}

BOOST_AUTO_TEST_CASE(without_a_header_the_first_exchange_dates_the_session) {
    std::string text;
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(1, 77)));
    const auto r = read_all(text);
    BOOST_TEST(!r.st.have_header);
    BOOST_TEST(ds::format_timestamp(r.st.meta.created_at) == ds::format_timestamp(at(77)));
    BOOST_TEST(r.st.meta.exchange_count == 1u);
    BOOST_TEST(ds::detail::missing_header_diagnostic().line == 1u);
}

BOOST_AUTO_TEST_CASE(a_lone_surrogate_escape_is_read_as_replacement_character) {
    // JavaScript writers emit lone surrogates as \ud800 escapes: Boost.JSON refuses them.
    const std::string line =
        R"({"type":"exchange","seq":1,"timestamp":"2026-05-01T00:00:00.000Z","query":"a\ud800b","answer":"x"})";
    const auto r = read_all(line + "\n");
    BOOST_TEST_REQUIRE(r.exchanges.size() == 1u);
    BOOST_TEST(r.exchanges[0].query == "a\xEF\xBF\xBD"
                                       "b");
    BOOST_TEST(has_reason(r.diags, "lone UTF-16 surrogate", 1));
    std::string repaired;
    BOOST_TEST(ds::detail::repair_lone_surrogates(R"("\ud83d\ude00 ok")", repaired) == 0u);
}

BOOST_AUTO_TEST_CASE(order_unchecked_takes_every_exchange_as_it_comes) {
    std::string text;
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(3, 3)));
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(2, 2)));
    BOOST_TEST_REQUIRE(ds::detail::encode_exchange(text, make_exchange(2, 2)));
    const auto r = read_all(text, false);
    BOOST_TEST(r.exchanges.size() == 3u);
    BOOST_TEST(r.diags.empty());
}

// The canonical line decoder (canonical::decode_exchange) takes what encode_exchange()
// writes without tool_calls or extra, to the exchange the JSON parser reads, and declines
// everything else, which the parser then reads or reports as before.
BOOST_AUTO_TEST_CASE(canonical_lines_are_decoded_without_the_parser_to_the_same_exchange) {
    ds::detail::canonical::scratch scratch;
    ds::exchange ex;
    ex.seq = 18446744073709551615ull;
    ex.timestamp = at(7);
    ex.query = std::string("tabs\t, quotes \" \\ / \b\f\r\n, NUL ") + '\0' +
               " \x1f, caf\xC3\xA9, " +
               "\xE4\xB8\xAD\xE6\x96\x87, \xF0\x9F\x98\x80, and a long ASCII run after them";
    ex.answer = std::string(5000, 'x') + "\xF0\x9F\x98\x80";
    for (int extras = 0; extras < 8; ++extras) {
        BOOST_TEST_CONTEXT("optional fields " << extras) {
            ex.summary = extras & 1 ? std::optional<std::string>("s\n") : std::nullopt;
            ex.model = extras & 2 ? std::optional<std::string>("") : std::nullopt;
            ex.duration_ms = extras & 4 ? std::optional<std::uint64_t>(0) : std::nullopt;
            std::string line;
            BOOST_TEST_REQUIRE(ds::detail::encode_exchange(line, ex));
            line.pop_back();
            ds::exchange got;
            got.summary = "left over from the line before";
            got.tool_calls = json::array{1};
            BOOST_TEST_REQUIRE(ds::detail::canonical::decode_exchange(line, got, scratch));
            BOOST_TEST((got == ex));
            const auto slow = ds::detail::read_exchange(json::parse(line).as_object());
            BOOST_TEST_REQUIRE(slow.has_value());
            BOOST_TEST((*slow == got));
        }
    }
    // Escapes the encoder does not write, decoded as JSON says: \/, \u, surrogate pairs.
    const std::string escaped =
        R"({"type":"exchange","seq":3,"timestamp":"2026-05-01T00:00:01.000Z","query":"\/\u00e9\u4e2d\ud83d\ude00\u0041","answer":""})";
    ds::exchange got;
    BOOST_TEST_REQUIRE(ds::detail::canonical::decode_exchange(escaped, got, scratch));
    BOOST_TEST(got.query == "/\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"
                            "A");
    BOOST_TEST((got == *ds::detail::read_exchange(json::parse(escaped).as_object())));

    // Declined: left to the parser, which reads the line or says why it cannot.
    const std::string head =
        R"({"type":"exchange","seq":1,"timestamp":"2026-05-01T00:00:01.000Z",)";
    for (
        const std::string& line : std::vector<std::string>{
            head + R"("query":"q","answer":"a","extra":{"k":1}})", // extra
            head + R"("query":"q","answer":"a","tool_calls":[]})", // tool_calls
            head + R"("query":"q","answer":"a"} )",                // whitespace
            head + R"("query":"q","answer":"a","seq":2})",         // a second seq
            head + R"("answer":"a","query":"q"})",                 // another order
            head + R"("query":"q","answer":"a","model":"m","summary":"s"})",
            head + R"("query":"\ud83d","answer":"a"})",        // a lone surrogate
            head + R"("query":"\ude00\ud83d","answer":"a"})",  // reversed
            head + R"("query":"\x","answer":"a"})",            // an unknown escape
            head + "\"query\":\"\t\",\"answer\":\"a\"}",       // a raw control character
            head + "\"query\":\"\xC3\",\"answer\":\"a\"}",     // cut UTF-8
            head + "\"query\":\"\xC0\xAF\",\"answer\":\"a\"}", // overlong UTF-8
            head + R"("query":"q","answer":"a","duration_ms":01})",
            head + R"("query":"q","answer":"a","duration_ms":1.5})",
            head + R"("query":"q","answer":"a","duration_ms":18446744073709551616})",
            head + R"("query":"q","answer":"a)",
            std::string(
                R"({"type":"exchange","seq":0,"timestamp":"2026-05-01T00:00:01.000Z","query":"q","answer":"a"})"),
            std::string(
                R"({"type":"exchange","seq":1,"timestamp":"2026-05-01","query":"q","answer":"a"})"),
        }) {
        BOOST_TEST_CONTEXT(line) {
            ds::exchange declined;
            BOOST_TEST(!ds::detail::canonical::decode_exchange(line, declined, scratch));
        }
    }
    // Read through the reader: the parser's answer for each, as before.
    const auto r = read_all(
        head + R"("query":"q","answer":"a","extra":{"k":1}})" + "\n" +
        R"({"type":"exchange","seq":2,"timestamp":"2026-05-01T00:00:02.000Z","query":"\ud83d","answer":"a"})" +
        "\n" + head.substr(0, head.size() - 1) + "}\n");
    BOOST_TEST_REQUIRE(r.exchanges.size() == 2u);
    BOOST_TEST(json::serialize(r.exchanges[0].extra) == R"({"k":1})");
    BOOST_TEST(r.exchanges[1].query == "\xEF\xBF\xBD");
    BOOST_TEST(has_reason(r.diags, "lone UTF-16 surrogate", 2));
    BOOST_TEST(has_reason(r.diags, "bad exchange", 3));
}
