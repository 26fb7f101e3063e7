// SPDX-License-Identifier: BSL-1.0
// types.hpp (JSON mapping, timestamps, apply_exchange) and utf8.hpp.
#include <dexter/sessions/types.hpp>

#include <dexter/sessions/utf8.hpp>

#define BOOST_TEST_MODULE types
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>

#include "support/printable.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ds = dexter::sessions;
namespace json = boost::json;
using namespace std::chrono_literals;
using ds::time_point;
using ds::test::bytes;
using ds::test::show;

namespace {

/// A time point built from calendar fields with <chrono>, independently of the
/// formatter under test.
time_point tp(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
    using namespace std::chrono;
    return ds::time_point{sys_days{year{y} / month{mo} / day{d}}} + hours{h} + minutes{mi} +
           seconds{s} + milliseconds{ms};
}

/// Milliseconds since the epoch, for messages (Boost.Test cannot print time points).
long long ms_of(time_point t) {
    return static_cast<long long>(t.time_since_epoch().count());
}

/// UTF-8 encoding of one code point, written here from RFC 3629 so that the validator
/// is checked against an independent encoder. Surrogates are encoded as is (CESU-style)
/// so that the test can feed them to the validator.
std::string encode(char32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

/// The `len`-byte (overlong when too long) encoding of `cp`.
std::string encode_with_length(char32_t cp, int len) {
    std::string s(static_cast<std::size_t>(len), '\0');
    static constexpr unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (int k = len - 1; k > 0; --k) {
        s[static_cast<std::size_t>(k)] = static_cast<char>(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    s[0] = static_cast<char>(lead[len] | cp);
    return s;
}

ds::exchange make_full_exchange() {
    ds::exchange ex;
    ex.seq = 42;
    ex.timestamp = tp(2024, 2, 29, 23, 59, 59, 999);
    ex.query = "What is the capital of France?";
    ex.answer = "Paris.\nIt has been the capital since 987.";
    ex.summary = "Paris";
    ex.model = "gpt-test";
    ex.duration_ms = 1234;
    ex.tool_calls = json::array{json::object{{"name", "search"}, {"args", {{"q", "capital"}}}},
                                "raw",
                                3,
                                nullptr,
                                true,
                                1.5};
    ex.extra = json::object{{"k", "v"}, {"nested", {{"list", {1, 2, 3}}}}};
    return ex;
}

struct exchange_case {
    std::string name;
    ds::exchange ex;
};

std::ostream& operator<<(std::ostream& os, const exchange_case& c) {
    return os << c.name;
}

std::vector<exchange_case> exchange_cases() {
    std::vector<exchange_case> cases;

    ds::exchange minimal;
    minimal.seq = 1;
    minimal.timestamp = time_point{};
    cases.push_back({"minimal: every optional absent, empty query and answer", minimal});

    cases.push_back({"full: every field set", make_full_exchange()});

    ds::exchange empty_optionals = make_full_exchange();
    empty_optionals.summary = "";
    empty_optionals.model = "";
    empty_optionals.duration_ms = 0;
    cases.push_back({"optionals present but empty or zero", empty_optionals});

    ds::exchange only_summary = minimal;
    only_summary.seq = 2;
    only_summary.summary = "just a summary";
    cases.push_back({"summary only", only_summary});

    ds::exchange only_model = minimal;
    only_model.model = "m";
    cases.push_back({"model only", only_model});

    ds::exchange only_duration = minimal;
    only_duration.duration_ms = 7;
    cases.push_back({"duration_ms only", only_duration});

    ds::exchange only_tools = minimal;
    only_tools.tool_calls = json::array{json::object{{"tool", "ls"}}};
    cases.push_back({"tool_calls only", only_tools});

    ds::exchange only_extra = minimal;
    only_extra.extra = json::object{{"host", json::array{}}};
    cases.push_back({"extra only", only_extra});

    ds::exchange limits = make_full_exchange();
    limits.seq = std::numeric_limits<std::uint64_t>::max();
    limits.duration_ms = std::numeric_limits<std::uint64_t>::max();
    limits.timestamp = tp(9999, 12, 31, 23, 59, 59, 999);
    cases.push_back({"largest seq, duration and timestamp", limits});

    ds::exchange year_zero = minimal;
    year_zero.timestamp = tp(0, 1, 1);
    cases.push_back({"timestamp in year 0000", year_zero});

    return cases;
}

void check_exchange_round_trip(const ds::exchange& ex) {
    const json::value v = json::value_from(ex);
    BOOST_TEST_REQUIRE(v.is_object());
    const json::object& o = v.get_object();

    // The mapping writes optionals only when present.
    BOOST_TEST(o.contains("summary") == ex.summary.has_value());
    BOOST_TEST(o.contains("model") == ex.model.has_value());
    BOOST_TEST(o.contains("duration_ms") == ex.duration_ms.has_value());
    if (ex.summary)
        BOOST_TEST(o.at("summary") == json::value(*ex.summary));
    if (ex.model)
        BOOST_TEST(o.at("model") == json::value(*ex.model));
    if (ex.duration_ms)
        BOOST_TEST(o.at("duration_ms").to_number<std::uint64_t>() == *ex.duration_ms);
    BOOST_TEST(o.at("seq").to_number<std::uint64_t>() == ex.seq);
    BOOST_TEST(o.at("query") == json::value(ex.query));
    BOOST_TEST(o.at("answer") == json::value(ex.answer));

    BOOST_TEST(json::value_to<ds::exchange>(v) == ex);
    auto r = json::try_value_to<ds::exchange>(v);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(*r == ex);

    const std::string text = json::serialize(v);
    const json::value parsed = json::parse(text);
    BOOST_TEST(json::value_to<ds::exchange>(parsed) == ex);
}

} // namespace

// ---------------------------------------------------------------------------------
// JSON round trips

BOOST_AUTO_TEST_SUITE(json_round_trip)

BOOST_DATA_TEST_CASE(exchange_round_trips, boost::unit_test::data::make(exchange_cases()), c) {
    check_exchange_round_trip(c.ex);
}

BOOST_AUTO_TEST_CASE(null_optionals_read_as_absent) {
    json::object o = json::value_from(make_full_exchange()).get_object();
    for (const char* key : {"summary", "model", "duration_ms", "tool_calls", "extra"})
        o[key] = nullptr;
    auto r = json::try_value_to<ds::exchange>(json::value(o));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(!r->summary.has_value());
    BOOST_TEST(!r->model.has_value());
    BOOST_TEST(!r->duration_ms.has_value());
    BOOST_TEST(r->tool_calls.empty());
    BOOST_TEST(r->extra.empty());
}

BOOST_AUTO_TEST_CASE(exchange_fields_land_where_expected) {
    const ds::exchange ex = make_full_exchange();
    const json::value v = json::value_from(ex);
    const json::object& o = v.get_object();
    BOOST_TEST(o.at("timestamp") == json::value("2024-02-29T23:59:59.999Z"));
    BOOST_TEST(o.at("tool_calls") == json::value(ex.tool_calls));
    BOOST_TEST(o.at("extra") == json::value(ex.extra));
}

BOOST_AUTO_TEST_CASE(session_meta_round_trips) {
    ds::session_meta plain;
    plain.id = "abcd1234";
    plain.created_at = tp(1970, 1, 1);
    plain.updated_at = tp(1970, 1, 1);

    ds::session_meta full;
    full.id = "s0000001";
    full.title = "A title";
    full.created_at = tp(2025, 12, 31, 23, 59, 59, 1);
    full.updated_at = tp(2026, 1, 1, 0, 0, 0, 2);
    full.exchange_count = std::numeric_limits<std::uint64_t>::max();
    full.extra = json::object{{"pinned", true}, {"tags", {"a", "b"}}};

    for (const auto& m : {plain, full}) {
        BOOST_TEST_CONTEXT("session " << m.id) {
            const json::value v = json::value_from(m);
            BOOST_TEST_REQUIRE(v.is_object());
            BOOST_TEST(v.get_object().contains("extra") == !m.extra.empty());
            BOOST_TEST(json::value_to<ds::session_meta>(v) == m);
            auto r = json::try_value_to<ds::session_meta>(v);
            BOOST_TEST_REQUIRE(r.has_value());
            BOOST_TEST(*r == m);
            BOOST_TEST(json::value_to<ds::session_meta>(json::parse(json::serialize(v))) == m);
        }
    }
}

BOOST_AUTO_TEST_CASE(session_meta_null_title_reads_as_empty) {
    json::object o{{"id", "abcd1234"},
                   {"title", nullptr},
                   {"created_at", "2026-01-01T00:00:00.000Z"},
                   {"updated_at", "2026-01-01T00:00:00.000Z"},
                   {"exchange_count", 0}};
    auto r = json::try_value_to<ds::session_meta>(json::value(o));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->title.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// Unicode and awkward bytes survive byte for byte

namespace {

struct text_case {
    std::string name;
    std::string text;
};

std::ostream& operator<<(std::ostream& os, const text_case& c) {
    return os << c.name << " (" << show(c.text) << ")";
}

std::vector<text_case> awkward_texts() {
    std::string controls;
    for (int c = 1; c < 0x20; ++c)
        controls += static_cast<char>(c);
    controls += '\x7f';
    return {
        {"double quotes", "say \"hi\" and \"\""},
        {"backslash", "C:\\path\\to\\file \\u0041 \\"},
        {"newlines", "line 1\nline 2\r\nline 3\r"},
        {"tabs", "\tcol1\tcol2\t"},
        {"every control character", controls},
        {"e acute", "caf\xC3\xA9"},
        {"emoji U+1F600", "smile \xF0\x9F\x98\x80!"},
        {"U+2028 line separator", "a\xE2\x80\xA8z"},
        {"U+2029 paragraph separator", "a\xE2\x80\xA9z"},
        {"embedded NUL", bytes("before\0after")},
        {"only NUL", std::string(1, '\0')},
        {"largest code point U+10FFFF", "\xF4\x8F\xBF\xBF"},
        {"everything at once",
         bytes("\"\\\n\t\x01\xC3\xA9\xF0\x9F\x98\x80\xE2\x80\xA8\xE2\x80\xA9\0end")},
    };
}

} // namespace

BOOST_DATA_TEST_CASE(unicode_round_trips_byte_for_byte,
                     boost::unit_test::data::make(awkward_texts()), c) {
    BOOST_TEST_REQUIRE(ds::is_valid_utf8(c.text)); // the table itself is UTF-8

    ds::exchange ex = make_full_exchange();
    ex.query = c.text;
    ex.answer = c.text + c.text;
    ex.summary = c.text;
    ex.model = c.text;
    ex.tool_calls = json::array{json::object{{"arg", c.text}}, c.text};
    ex.extra = json::object{{c.text, c.text}};

    const std::string text = json::serialize(json::value_from(ex));
    // A JSON text carries no raw control character, and stays UTF-8.
    for (unsigned char b : text)
        BOOST_TEST_REQUIRE(b >= 0x20);
    BOOST_TEST(ds::is_valid_utf8(text));

    const auto back = json::value_to<ds::exchange>(json::parse(text));
    BOOST_TEST(back == ex);
    BOOST_TEST(back.query.size() == c.text.size());
    BOOST_TEST(back.query == c.text, "query: " << show(back.query));
    BOOST_TEST(back.answer == c.text + c.text);
    BOOST_TEST_REQUIRE(back.summary.has_value());
    BOOST_TEST(*back.summary == c.text);
    BOOST_TEST_REQUIRE(back.model.has_value());
    BOOST_TEST(*back.model == c.text);
    BOOST_TEST(back.extra.contains(c.text));

    ds::session_meta m;
    m.id = "abcd1234";
    m.title = c.text;
    m.extra = json::object{{c.text, c.text}};
    const auto meta_back =
        json::value_to<ds::session_meta>(json::parse(json::serialize(json::value_from(m))));
    BOOST_TEST(meta_back == m);
    BOOST_TEST(meta_back.title == c.text);
}

// ---------------------------------------------------------------------------------
// Timestamps

BOOST_AUTO_TEST_SUITE(timestamps)

namespace {

struct format_case {
    time_point t;
    std::string text;
};

std::ostream& operator<<(std::ostream& os, const format_case& c) {
    return os << c.text << " (" << ms_of(c.t) << " ms)";
}

const std::vector<format_case> format_cases = {
    {time_point{}, "1970-01-01T00:00:00.000Z"},
    {tp(1970, 1, 1), "1970-01-01T00:00:00.000Z"},
    {time_point{} + 999ms, "1970-01-01T00:00:00.999Z"},
    {time_point{} - 1ms, "1969-12-31T23:59:59.999Z"},
    {tp(2024, 2, 29, 23, 59, 59, 999), "2024-02-29T23:59:59.999Z"},
    {tp(2000, 2, 29, 12, 0, 0, 1), "2000-02-29T12:00:00.001Z"},
    {tp(2026, 11, 26, 5, 24, 3, 123), "2026-11-26T05:24:03.123Z"},
    {tp(1999, 12, 31, 23, 59, 59, 999) + 1ms, "2000-01-01T00:00:00.000Z"},
    {tp(0, 1, 1), "0000-01-01T00:00:00.000Z"},
    {tp(9999, 12, 31, 23, 59, 59, 999), "9999-12-31T23:59:59.999Z"},
    {tp(2100, 3, 1, 10, 9, 8, 70), "2100-03-01T10:09:08.070Z"},
};

} // namespace

BOOST_DATA_TEST_CASE(format_and_parse, boost::unit_test::data::make(format_cases), c) {
    BOOST_TEST(ds::format_timestamp(c.t) == c.text);
    const auto parsed = ds::parse_timestamp(c.text);
    BOOST_TEST_REQUIRE(parsed.has_value());
    BOOST_TEST(ms_of(*parsed) == ms_of(c.t));
}

BOOST_AUTO_TEST_CASE(out_of_range_years_throw) {
    const std::vector<std::pair<const char*, time_point>> cases = {
        {"1 ms before year 0000", tp(0, 1, 1) - 1ms}, {"year -1", tp(-1, 6, 15)},
        {"start of year 10000", tp(10000, 1, 1)},     {"year 20000", tp(20000, 7, 4)},
        {"time_point::max()", time_point::max()},     {"time_point::min()", time_point::min()},
    };
    for (const auto& [name, t] : cases)
        BOOST_TEST_CONTEXT(name) {
            BOOST_CHECK_THROW((void)ds::format_timestamp(t), ds::time_out_of_range);
        }
    // ...and the edges themselves are fine.
    BOOST_CHECK_NO_THROW((void)ds::format_timestamp(tp(0, 1, 1)));
    BOOST_CHECK_NO_THROW((void)ds::format_timestamp(tp(10000, 1, 1) - 1ms));
}

BOOST_AUTO_TEST_CASE(random_instants_round_trip) {
    std::mt19937_64 rng(20260101);
    const auto lo = ms_of(tp(0, 1, 1));
    const auto hi = ms_of(tp(10000, 1, 1) - 1ms);
    std::uniform_int_distribution<long long> pick(lo, hi);
    for (int i = 0; i < 20000; ++i) {
        const time_point t{std::chrono::milliseconds{pick(rng)}};
        const std::string s = ds::format_timestamp(t);
        BOOST_TEST_REQUIRE(s.size() == 24u, s);
        const auto back = ds::parse_timestamp(s);
        BOOST_TEST_REQUIRE(back.has_value(), s);
        BOOST_TEST_REQUIRE(ms_of(*back) == ms_of(t), s);
    }
}

BOOST_DATA_TEST_CASE(parse_rejects,
                     boost::unit_test::data::make(std::vector<std::string>{
                         "2025-01-01T00:00:00.000",         // missing Z
                         "2025-02-29T00:00:00.000Z",        // 2025 is not a leap year
                         "1900-02-29T00:00:00.000Z",        // nor is 1900
                         "2025-04-31T00:00:00.000Z",        // April has 30 days
                         "2025-01-32T00:00:00.000Z",        //
                         "2025-01-00T00:00:00.000Z",        //
                         "2025-00-01T00:00:00.000Z",        //
                         "2025-13-01T00:00:00.000Z",        //
                         "2025-01-01T24:00:00.000Z",        // hour 24
                         "2025-01-01T00:60:00.000Z",        // minute 60
                         "2025-01-01T00:00:60.000Z",        // second 60 (no leap seconds)
                         "2025-01-0aT00:00:00.000Z",        // letters
                         "abcd-ef-ghTij:kl:mn.opqZ",        //
                         "2025-01-01T00:00:00.000Zjunk",    // trailing garbage
                         "2025-01-01T00:00:00.000Z ",       //
                         "2025-01-01T00:00:00.000ZZ",       //
                         " 2025-01-01T00:00:00.000Z",       // leading space
                         "2025-01-01t00:00:00.000Z",        // lowercase t
                         "2025-01-01T00:00:00.000z",        // lowercase z
                         "2025-01-01 00:00:00.000Z",        // space instead of T
                         "",                                // empty
                         "Z",                               //
                         "2025-01-01T00:00:00.000+01:00",   // offsets
                         "2025-01-01T00:00:00+01:00",       //
                         "2025-01-01T00:00:00.000-00:00",   //
                         "2025-01-01T00:00:00.Z",           // a dot without digits
                         "2025-01-01T00:00:00.1234567890Z", // 10 fraction digits
                         "2025-01-01T00:00:00,000Z",        // comma
                         "2025-1-01T00:00:00.000Z",         // short month
                         "+2025-01-01T00:00:00.000Z",       // sign
                         "-001-01-01T00:00:00.000Z",        //
                         "20250101T000000Z",                // basic format
                         "2025-01-01",                      // date only
                         "2025-01-01T00:00Z",               // no seconds
                     }),
                     text) {
    BOOST_TEST(!ds::parse_timestamp(text).has_value());
}

namespace {

struct accept_case {
    std::string text;
    time_point t;
};

std::ostream& operator<<(std::ostream& os, const accept_case& c) {
    return os << c.text;
}

const time_point leap_second = tp(2024, 2, 29, 23, 59, 59);

const std::vector<accept_case> accept_cases = {
    {"2024-02-29T23:59:59Z", leap_second},
    {"2024-02-29T23:59:59.5Z", leap_second + 500ms},
    {"2024-02-29T23:59:59.05Z", leap_second + 50ms},
    {"2024-02-29T23:59:59.12Z", leap_second + 120ms},
    {"2024-02-29T23:59:59.123Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.1234Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.12345Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.123456Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.1234567Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.12345678Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.123456789Z", leap_second + 123ms},
    {"2024-02-29T23:59:59.999999999Z", leap_second + 999ms}, // cut, not rounded
    {"2024-02-29T23:59:59.000000001Z", leap_second},
    {"2000-02-29T00:00:00.000Z", tp(2000, 2, 29)},
    {"0000-01-01T00:00:00Z", tp(0, 1, 1)},
    {"9999-12-31T23:59:59.999Z", tp(9999, 12, 31, 23, 59, 59, 999)},
};

} // namespace

BOOST_DATA_TEST_CASE(parse_accepts, boost::unit_test::data::make(accept_cases), c) {
    const auto t = ds::parse_timestamp(c.text);
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST(ms_of(*t) == ms_of(c.t));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// Read errors: readers report the field and never throw

namespace {

json::object valid_exchange_object() {
    return json::value_from(make_full_exchange()).get_object();
}

struct read_error_case {
    std::string name;
    std::function<void(json::object&)> mutate;
    std::string field; ///< the field the error must name
};

std::ostream& operator<<(std::ostream& os, const read_error_case& c) {
    return os << c.name;
}

std::vector<read_error_case> exchange_read_errors() {
    return {
        {"missing seq", [](json::object& o) { o.erase("seq"); }, "seq"},
        {"seq 0", [](json::object& o) { o["seq"] = 0; }, "seq"},
        {"negative seq", [](json::object& o) { o["seq"] = -1; }, "seq"},
        {"seq as string", [](json::object& o) { o["seq"] = "1"; }, "seq"},
        {"seq as double", [](json::object& o) { o["seq"] = 1.0; }, "seq"},
        {"seq null", [](json::object& o) { o["seq"] = nullptr; }, "seq"},
        {"missing timestamp", [](json::object& o) { o.erase("timestamp"); }, "timestamp"},
        {"timestamp not a time", [](json::object& o) { o["timestamp"] = "yesterday"; },
         "timestamp"},
        {"timestamp impossible date",
         [](json::object& o) { o["timestamp"] = "2025-02-29T00:00:00.000Z"; }, "timestamp"},
        {"timestamp as number", [](json::object& o) { o["timestamp"] = 1700000000000; },
         "timestamp"},
        {"missing query", [](json::object& o) { o.erase("query"); }, "query"},
        {"query not a string", [](json::object& o) { o["query"] = 5; }, "query"},
        {"query null", [](json::object& o) { o["query"] = nullptr; }, "query"},
        {"missing answer", [](json::object& o) { o.erase("answer"); }, "answer"},
        {"answer an array", [](json::object& o) { o["answer"] = json::array{"a"}; }, "answer"},
        {"summary a number", [](json::object& o) { o["summary"] = 1; }, "summary"},
        {"model a bool", [](json::object& o) { o["model"] = true; }, "model"},
        {"duration_ms negative", [](json::object& o) { o["duration_ms"] = -5; }, "duration_ms"},
        {"duration_ms a string", [](json::object& o) { o["duration_ms"] = "5"; }, "duration_ms"},
        {"tool_calls an object", [](json::object& o) { o["tool_calls"] = json::object{}; },
         "tool_calls"},
        {"tool_calls a string", [](json::object& o) { o["tool_calls"] = "ls"; }, "tool_calls"},
        {"extra an array", [](json::object& o) { o["extra"] = json::array{}; }, "extra"},
        {"extra a string", [](json::object& o) { o["extra"] = "x"; }, "extra"},
    };
}

std::vector<read_error_case> meta_read_errors() {
    return {
        {"missing id", [](json::object& o) { o.erase("id"); }, "id"},
        {"id a number", [](json::object& o) { o["id"] = 12345678; }, "id"},
        {"title a number", [](json::object& o) { o["title"] = 1; }, "title"},
        {"missing created_at", [](json::object& o) { o.erase("created_at"); }, "created_at"},
        {"created_at malformed",
         [](json::object& o) { o["created_at"] = "2026-01-01T00:00:00+00:00"; }, "created_at"},
        {"missing updated_at", [](json::object& o) { o.erase("updated_at"); }, "updated_at"},
        {"updated_at a number", [](json::object& o) { o["updated_at"] = 0; }, "updated_at"},
        {"missing exchange_count", [](json::object& o) { o.erase("exchange_count"); },
         "exchange_count"},
        {"negative exchange_count", [](json::object& o) { o["exchange_count"] = -1; },
         "exchange_count"},
        {"exchange_count a string", [](json::object& o) { o["exchange_count"] = "3"; },
         "exchange_count"},
        {"extra an array", [](json::object& o) { o["extra"] = json::array{}; }, "extra"},
    };
}

json::object valid_meta_object() {
    ds::session_meta m;
    m.id = "abcd1234";
    m.title = "t";
    m.created_at = tp(2026, 1, 1);
    m.updated_at = tp(2026, 1, 2);
    m.exchange_count = 3;
    m.extra = json::object{{"a", 1}};
    return json::value_from(m).get_object();
}

} // namespace

BOOST_AUTO_TEST_SUITE(read_errors)

BOOST_AUTO_TEST_CASE(valid_bases_read) {
    BOOST_TEST(json::try_value_to<ds::exchange>(json::value(valid_exchange_object())).has_value());
    BOOST_TEST(json::try_value_to<ds::session_meta>(json::value(valid_meta_object())).has_value());
}

BOOST_DATA_TEST_CASE(exchange_field_errors, boost::unit_test::data::make(exchange_read_errors()),
                     c) {
    json::object o = valid_exchange_object();
    c.mutate(o);
    const json::value v(o);

    boost::system::result<ds::exchange> r;
    BOOST_CHECK_NO_THROW(r = json::try_value_to<ds::exchange>(v));
    BOOST_TEST(r.has_error());
    BOOST_CHECK_THROW(json::value_to<ds::exchange>(v), boost::system::system_error);

    const auto d = ds::detail::read_exchange(o);
    BOOST_TEST_REQUIRE(d.has_error());
    BOOST_TEST(d.error().what.find("'" + c.field + "'") != std::string::npos, d.error().what);
}

BOOST_DATA_TEST_CASE(session_meta_field_errors, boost::unit_test::data::make(meta_read_errors()),
                     c) {
    json::object o = valid_meta_object();
    c.mutate(o);
    const json::value v(o);

    boost::system::result<ds::session_meta> r;
    BOOST_CHECK_NO_THROW(r = json::try_value_to<ds::session_meta>(v));
    BOOST_TEST(r.has_error());

    const auto d = ds::detail::read_session_meta(o);
    BOOST_TEST_REQUIRE(d.has_error());
    BOOST_TEST(d.error().what.find("'" + c.field + "'") != std::string::npos, d.error().what);
}

BOOST_AUTO_TEST_CASE(non_objects_fail_without_throwing) {
    const std::vector<json::value> values = {
        nullptr, true, 1, -1, 1.5, "text", json::array{valid_exchange_object()}};
    for (const auto& v : values) {
        BOOST_TEST_CONTEXT(json::serialize(v)) {
            boost::system::result<ds::exchange> r;
            BOOST_CHECK_NO_THROW(r = json::try_value_to<ds::exchange>(v));
            BOOST_TEST(r.has_error());
            boost::system::result<ds::session_meta> m;
            BOOST_CHECK_NO_THROW(m = json::try_value_to<ds::session_meta>(v));
            BOOST_TEST(m.has_error());
            BOOST_CHECK_THROW(json::value_to<ds::exchange>(v), boost::system::system_error);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// apply_exchange

BOOST_AUTO_TEST_CASE(apply_exchange_keeps_updated_at_monotonic) {
    struct row {
        const char* name;
        time_point created, updated, ex_time, expected_updated;
    };
    const time_point c = tp(2026, 1, 1);
    const time_point u = tp(2026, 6, 1);
    const std::vector<row> rows = {
        {"exchange after updated_at moves it", c, u, u + 1ms, u + 1ms},
        {"exchange equal to updated_at keeps it", c, u, u, u},
        {"exchange earlier than updated_at keeps it", c, u, u - 1ms, u},
        {"exchange in 1970 keeps it", c, u, tp(1970, 1, 1), u},
        {"exchange far in the future moves it", c, u, tp(2100, 1, 1), tp(2100, 1, 1)},
        {"updated_at never below created_at", c, time_point{}, tp(1999, 1, 1), c},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            ds::session_meta m;
            m.id = "abcd1234";
            m.created_at = r.created;
            m.updated_at = r.updated;
            m.exchange_count = 4;
            ds::exchange ex;
            ex.seq = 5;
            ex.timestamp = r.ex_time;
            ds::apply_exchange(m, ex);
            BOOST_TEST(ms_of(m.updated_at) == ms_of(r.expected_updated));
            BOOST_TEST(ms_of(m.created_at) == ms_of(r.created));
            BOOST_TEST(m.exchange_count == 5u);
        }
    }
}

BOOST_AUTO_TEST_CASE(apply_exchange_sets_count_to_seq) {
    for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{1000},
                              std::numeric_limits<std::uint64_t>::max()}) {
        ds::session_meta m;
        ds::exchange ex;
        ex.seq = seq;
        ds::apply_exchange(m, ex);
        BOOST_TEST(m.exchange_count == seq);
    }
}

// ---------------------------------------------------------------------------------
// utf8.hpp

BOOST_AUTO_TEST_SUITE(utf8)

namespace {

struct utf8_case {
    std::string name;
    std::string bytes;
    std::size_t first_invalid; ///< == bytes.size() when valid
};

std::ostream& operator<<(std::ostream& os, const utf8_case& c) {
    return os << c.name << " (" << show(c.bytes) << ")";
}

std::vector<utf8_case> utf8_cases() {
    auto valid = [](std::string name, std::string b) {
        const auto n = b.size();
        return utf8_case{std::move(name), std::move(b), n};
    };
    return {
        valid("empty", ""),
        valid("ASCII", "hello, world"),
        valid("NUL and DEL", bytes("a\0\x7f")),
        valid("2-byte U+0080", "\xC2\x80"),
        valid("2-byte e acute", "\xC3\xA9"),
        valid("2-byte U+07FF", "\xDF\xBF"),
        valid("3-byte U+0800", "\xE0\xA0\x80"),
        valid("3-byte euro", "\xE2\x82\xAC"),
        valid("3-byte U+D7FF (below surrogates)", "\xED\x9F\xBF"),
        valid("3-byte U+E000 (above surrogates)", "\xEE\x80\x80"),
        valid("3-byte U+FFFF", "\xEF\xBF\xBF"),
        valid("4-byte U+10000", "\xF0\x90\x80\x80"),
        valid("4-byte emoji U+1F600", "\xF0\x9F\x98\x80"),
        valid("4-byte U+10FFFF", "\xF4\x8F\xBF\xBF"),
        valid("mixed", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"),
        {"lone 0xff", "\xFF", 0},
        {"0xff after ASCII", "ab\xFF", 2},
        {"0xfe", "\xFE", 0},
        {"overlong 0xc0 0xaf", "\xC0\xAF", 0},
        {"overlong 0xc1 0xbf", "\xC1\xBF", 0},
        {"overlong 0xe0 0x80 0x80", "\xE0\x80\x80", 0},
        {"overlong 0xe0 0x9f 0xbf", "\xE0\x9F\xBF", 0},
        {"overlong 4-byte 0xf0 0x8f 0xbf 0xbf", "\xF0\x8F\xBF\xBF", 0},
        {"surrogate U+D800 0xed 0xa0 0x80", "\xED\xA0\x80", 0},
        {"surrogate U+DFFF", "\xED\xBF\xBF", 0},
        {"surrogate after valid text", "ok\xC3\xA9\xED\xA0\x80", 4},
        {"above U+10FFFF 0xf4 0x90 0x80 0x80", "\xF4\x90\x80\x80", 0},
        {"lead 0xf5", "\xF5\x80\x80\x80", 0},
        {"truncated 2-byte at end", "a\xC3", 1},
        {"truncated 3-byte at end", "a\xE2\x82", 1},
        {"truncated 4-byte at end (3 of 4)", "ab\xF0\x9F\x98", 2},
        {"truncated 4-byte at end (1 of 4)", "ab\xF0", 2},
        {"stray continuation byte", "\x80", 0},
        {"stray continuation after ASCII", "x\xBF", 1},
        {"stray continuation after a 2-byte char", "\xC3\xA9\x80", 2},
        {"ASCII where a continuation belongs", "\xE2\x28\xA1", 0},
        {"bad third byte of 4", "\xF0\x9F\x28\x80", 0},
        {"bad fourth byte of 4", "\xF0\x9F\x98\x28", 0},
        {"first error wins", "abc\x80\xFF", 3},
    };
}

} // namespace

BOOST_DATA_TEST_CASE(first_invalid_offsets, boost::unit_test::data::make(utf8_cases()), c) {
    BOOST_TEST(ds::first_invalid_utf8(c.bytes) == c.first_invalid);
    BOOST_TEST(ds::is_valid_utf8(c.bytes) == (c.first_invalid == c.bytes.size()));
}

BOOST_DATA_TEST_CASE(first_invalid_offsets_anywhere_in_a_word,
                     boost::unit_test::data::make(utf8_cases()), c) {
    // The run-time path reads 8 bytes at a time and skips to a word's first byte above
    // 0x7F: each case at every position of a word, after ASCII or multi-byte text, and
    // before more text.
    std::size_t checked = 0;
    for (std::size_t before = 0; before < 20; ++before) {
        std::string prefix;
        for (std::size_t k = 0; k < before; ++k)
            prefix += k % 5 == 4 ? "\xC3\xA9" : "a";
        for (const std::string_view after :
             {"", "z", "0123456789abcdef", "\xC3\xA9\xE4\xB8\xAD!"}) {
            const std::string s = prefix + c.bytes + std::string(after);
            const std::size_t want =
                c.first_invalid == c.bytes.size() ? s.size() : prefix.size() + c.first_invalid;
            BOOST_TEST_REQUIRE(ds::first_invalid_utf8(s) == want,
                               "after " << before << " characters, before '" << after << "'");
            ++checked;
        }
    }
    BOOST_TEST(checked == 80u);
}

BOOST_AUTO_TEST_CASE(usable_at_compile_time) {
    static_assert(ds::is_valid_utf8("caf\xC3\xA9"));
    static_assert(!ds::is_valid_utf8("\xC0\xAF"));
    static_assert(ds::first_invalid_utf8("ab\xFF") == 2);
    static_assert(ds::utf8_prefix("\xC3\xA9", 1).empty());
    BOOST_TEST(ds::is_valid_utf8(std::string_view("caf\xC3\xA9")));
}

BOOST_AUTO_TEST_CASE(every_scalar_value_is_valid_and_every_surrogate_is_not) {
    std::size_t bad_valid = 0, bad_surrogate = 0;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        const std::string s = encode(cp);
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        const std::size_t got = ds::first_invalid_utf8(s);
        if (surrogate ? got != 0 : got != s.size()) {
            (surrogate ? bad_surrogate : bad_valid) += 1;
            BOOST_TEST_MESSAGE("code point " << static_cast<unsigned long>(cp) << " -> " << got);
        }
    }
    BOOST_TEST(bad_valid == 0u);
    BOOST_TEST(bad_surrogate == 0u);
}

BOOST_AUTO_TEST_CASE(every_overlong_form_is_invalid) {
    std::size_t accepted = 0;
    // Each code point encoded with more bytes than it needs.
    for (char32_t cp = 0; cp < 0x10000; ++cp) {
        const int needed = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        for (int len = needed + 1; len <= 4; ++len) {
            const std::string s = encode_with_length(cp, len);
            if (ds::first_invalid_utf8(s) == 0)
                continue; // rejected at its first byte
            ++accepted;
            BOOST_TEST_MESSAGE("overlong accepted: " << show(s));
        }
    }
    BOOST_TEST(accepted == 0u);
}

BOOST_AUTO_TEST_CASE(utf8_prefix_never_cuts_a_character) {
    // Characters of 1, 2, 3 and 4 bytes, in several orders.
    const std::vector<char32_t> cps = {U'a',  0xE9,     0x20AC, 0x1F600, U'b', 0x1F600,
                                       0x7FF, 0x10FFFF, U'c',   0x800,   0xE9, 0xE9};
    std::string text;
    std::vector<std::size_t> boundaries{0};
    for (char32_t cp : cps) {
        text += encode(cp);
        boundaries.push_back(text.size());
    }
    for (std::size_t max = 0; max <= text.size() + 2; ++max) {
        BOOST_TEST_CONTEXT("max_bytes " << max) {
            const std::string_view p = ds::utf8_prefix(text, max);
            // The longest character boundary not above max.
            std::size_t want = 0;
            for (std::size_t b : boundaries)
                if (b <= max)
                    want = b;
            BOOST_TEST(p.size() == want);
            BOOST_TEST(p.data() == text.data()); // a prefix, not a copy
            BOOST_TEST(ds::is_valid_utf8(p));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
