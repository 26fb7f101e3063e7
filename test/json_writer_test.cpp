// SPDX-License-Identifier: BSL-1.0
// The direct JSON writer: the same bytes as Boost.JSON's serializer, UTF-8 checked (or,
// for text checked before, not checked, and the same bytes).
#include <dexter/sessions/detail/json_writer.hpp>

#define BOOST_TEST_MODULE json_writer
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/detail/record_codec.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include <cstdint>
#include <iterator>
#include <random>
#include <string>

namespace ds = dexter::sessions;
namespace json = boost::json;

namespace {

// Random bytes biased towards what matters: ASCII runs, every control character,
// quotes and backslashes, valid 2/3/4-byte sequences, and (when asked) invalid ones.
std::string random_text(std::mt19937_64& rng, bool allow_invalid) {
    static const char* pieces[] = {"plain ascii text ",
                                   "\"",
                                   "\\",
                                   "\n",
                                   "\t",
                                   "\x01",
                                   "\x1f",
                                   "\x7f",
                                   "\xC3\xA9",
                                   "\xE2\x82\xAC",
                                   "\xF0\x9F\x98\x80",
                                   "\xE2\x80\xA8",
                                   "</script>",
                                   "\xEF\xBF\xBF",
                                   "\xF4\x8F\xBF\xBF"};
    static const char* bad[] = {"\xff",     "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                "\xE2\x82", "\x80",     "\xF0\x9F\x98"};
    std::string s;
    const auto n = rng() % 40;
    for (unsigned i = 0; i < n; ++i) {
        if (allow_invalid && rng() % 25 == 0)
            s += bad[rng() % std::size(bad)];
        else if (rng() % 5 == 0)
            s.push_back(static_cast<char>(rng() % 0x20)); // every control character
        else
            s += pieces[rng() % std::size(pieces)];
    }
    if (rng() % 7 == 0)
        s.push_back('\0');
    return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(strings_match_boost_json_byte_for_byte) {
    std::mt19937_64 rng(20261126);
    for (int i = 0; i < 20000; ++i) {
        const std::string s = random_text(rng, false);
        std::string ours;
        BOOST_TEST_REQUIRE(ds::detail::append_json_string(ours, s));
        BOOST_TEST_REQUIRE(ours == json::serialize(json::string(s)), "case " << i);
        BOOST_TEST_REQUIRE(json::parse(ours).as_string() == s, "case " << i);
    }
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_detected_exactly) {
    std::mt19937_64 rng(7);
    int invalid = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string s = random_text(rng, true);
        std::string out;
        const bool ok = ds::detail::append_json_string(out, s);
        BOOST_TEST_REQUIRE(ok == ds::is_valid_utf8(s), "case " << i);
        invalid += ok ? 0 : 1;
    }
    BOOST_TEST(invalid > 1000); // the generator really produced invalid input
}

BOOST_AUTO_TEST_CASE(records_parse_to_the_same_exchange) {
    std::mt19937_64 rng(99);
    for (int i = 0; i < 2000; ++i) {
        ds::exchange ex;
        ex.seq = rng() % 1000000 + 1;
        ex.timestamp = ds::time_point{
            std::chrono::milliseconds{static_cast<std::int64_t>(rng() % 4102444800000ull)}};
        ex.query = random_text(rng, false);
        ex.answer = random_text(rng, false);
        if (rng() % 2)
            ex.summary = random_text(rng, false);
        if (rng() % 2)
            ex.model = random_text(rng, false);
        if (rng() % 2)
            ex.duration_ms = rng() % 100000;
        if (rng() % 3 == 0)
            ex.tool_calls = json::array{json::object{{"name", random_text(rng, false)}}};
        if (rng() % 3 == 0)
            ex.extra = json::object{{"k", random_text(rng, false)}, {"n", 1.5}};
        std::string line;
        BOOST_TEST_REQUIRE(ds::detail::encode_exchange(line, ex));
        BOOST_TEST_REQUIRE(line.back() == '\n');
        BOOST_TEST_REQUIRE(line.find('\n') == line.size() - 1); // exactly one line
        const json::value v = json::parse(std::string_view(line).substr(0, line.size() - 1));
        const auto back = json::try_value_to<ds::exchange>(v);
        BOOST_TEST_REQUIRE(back.has_value(), "case " << i);
        BOOST_TEST_REQUIRE(*back == ex, "case " << i);
        BOOST_TEST(v.at("type").as_string() == "exchange");
    }
}

BOOST_AUTO_TEST_CASE(invalid_text_anywhere_in_a_record_is_reported) {
    ds::exchange ex;
    ex.seq = 1;
    ex.query = "ok";
    ex.answer = "ok";
    std::string line;
    BOOST_TEST(ds::detail::encode_exchange(line, ex));
    for (int field = 0; field < 5; ++field) {
        ds::exchange bad = ex;
        const std::string junk = "x\xff";
        if (field == 0)
            bad.query = junk;
        if (field == 1)
            bad.answer = junk;
        if (field == 2)
            bad.summary = junk;
        if (field == 3)
            bad.model = junk;
        if (field == 4)
            bad.tool_calls = json::array{json::string(junk)};
        line.clear();
        BOOST_TEST(!ds::detail::encode_exchange(line, bad), "field " << field);
    }
    ds::session_meta m;
    m.id = "abcd1234";
    m.title = "t\xC0\xAF";
    line.clear();
    BOOST_TEST(!ds::detail::encode_header(line, m));
    line.clear();
    BOOST_TEST(!ds::detail::encode_meta(line, m));
}

namespace {

// Longer valid text: several random_text() pieces with runs of CJK, emoji and accented
// letters between them, so that the 8-byte fast path and the byte loop both take turns.
std::string long_valid_text(std::mt19937_64& rng) {
    static const char* runs[] = {"\xE4\xB8\xAD\xE6\x96\x87\xE6\x96\x87\xE6\x9C\xAC", // 中文文本
                                 "\xF0\x9F\x8E\x89\xF0\x9F\x9A\x80",                 // 🎉🚀
                                 "d\xC3\xA9j\xC3\xA0 vu, \xC3\xBC\xC3\xB1\xC3\xAE",
                                 "```cpp\n\tint x = \"y\\n\";\n```\n",
                                 "> a quote\\with a backslash\r\n"};
    std::string s;
    const auto parts = rng() % 12;
    for (unsigned i = 0; i < parts; ++i) {
        s += random_text(rng, false);
        s += runs[rng() % std::size(runs)];
    }
    return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(unchecked_encoding_is_the_same_bytes_on_valid_text) {
    std::mt19937_64 rng(1616);
    for (int i = 0; i < 5000; ++i) {
        const std::string s = long_valid_text(rng);
        BOOST_TEST_REQUIRE(ds::is_valid_utf8(s));
        std::string checked, unchecked;
        BOOST_TEST_REQUIRE(ds::detail::append_json_string<true>(checked, s));
        BOOST_TEST_REQUIRE(ds::detail::append_json_string<false>(unchecked, s));
        BOOST_TEST_REQUIRE(unchecked == checked, "case " << i);

        ds::exchange ex;
        ex.seq = static_cast<std::uint64_t>(i) + 1;
        ex.query = random_text(rng, false);
        ex.answer = s;
        if (rng() % 2)
            ex.summary = long_valid_text(rng);
        if (rng() % 2)
            ex.model = random_text(rng, false);
        if (rng() % 3 == 0)
            ex.tool_calls = json::array{json::object{{long_valid_text(rng), long_valid_text(rng)}}};
        if (rng() % 3 == 0)
            ex.extra =
                json::object{{random_text(rng, false), json::array{long_valid_text(rng), 2}}};
        std::string line_checked, line_unchecked;
        BOOST_TEST_REQUIRE(ds::detail::encode_exchange<true>(line_checked, ex));
        BOOST_TEST_REQUIRE(ds::detail::encode_exchange<false>(line_unchecked, ex));
        BOOST_TEST_REQUIRE(line_unchecked == line_checked, "case " << i);

        ds::session_meta m;
        m.id = "abcd1234";
        m.title = long_valid_text(rng);
        if (rng() % 2)
            m.extra = json::object{{long_valid_text(rng), long_valid_text(rng)}};
        std::string header_checked, header_unchecked;
        BOOST_TEST_REQUIRE(ds::detail::encode_header<true>(header_checked, m));
        BOOST_TEST_REQUIRE(ds::detail::encode_header<false>(header_unchecked, m));
        BOOST_TEST_REQUIRE(header_unchecked == header_checked, "case " << i);
    }
}

BOOST_AUTO_TEST_CASE(unchecked_encoding_does_not_validate) {
    // The point of it: text checked before is not looked at again. Invalid text goes
    // through unchanged (the caller promised it was valid).
    std::string out;
    BOOST_TEST(ds::detail::append_json_string<false>(out, "a\xff\"b"));
    BOOST_TEST(out == "\"a\xff\\\"b\"");
    std::string checked;
    BOOST_TEST(!ds::detail::append_json_string<true>(checked, "a\xff\"b"));
}
