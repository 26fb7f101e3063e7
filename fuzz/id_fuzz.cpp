// SPDX-License-Identifier: BSL-1.0
// libFuzzer target: the session-id rules with the path join, and JSON round trips of
// exchange and session_meta built from the input.
//
// Input: the candidate id is everything before the first '\n' (all of it if there is
// none); the bytes after it build an exchange and a session_meta.
#include <dexter/sessions/id.hpp>

#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>

#include "fuzz_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace ds = dexter::sessions;
namespace fz = dexter::sessions::fuzz;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

bool starts_with(const fs::path& p, const fs::path& prefix) {
    return std::mismatch(prefix.begin(), prefix.end(), p.begin(), p.end()).first == prefix.end();
}

void check_id(std::string_view s) {
    const bool valid = ds::is_valid_session_id(s);
    bool threw = false;
    try {
        ds::validate_session_id(s);
    } catch (const ds::invalid_session_id& e) {
        threw = true;
        DEXTER_FUZZ_CHECK(e.value() == s, "the exception does not keep the value");
        // A hostile value cannot forge output: the message is printable ASCII.
        for (const char c : std::string_view(e.what()))
            DEXTER_FUZZ_CHECK(c >= 0x20 && c < 0x7f, "unescaped byte in the message");
    } catch (...) {
        DEXTER_FUZZ_CHECK(false, "validate_session_id threw something else");
    }
    DEXTER_FUZZ_CHECK(valid != threw, "is_valid_session_id and validate_session_id disagree");
    if (!valid)
        return;

    DEXTER_FUZZ_CHECK(s.size() == ds::session_id_length, "a valid id of another length");
    DEXTER_FUZZ_CHECK(s.find_first_of(std::string_view("/\\.-_ \0", 7)) == std::string_view::npos &&
                          s.front() != '-',
                      "a valid id with a path or option character");
    for (std::size_t k = 1; k <= s.size(); ++k)
        DEXTER_FUZZ_CHECK(ds::is_valid_session_id_prefix(s.substr(0, k)),
                          "a prefix of a valid id is not a valid prefix");
    // Joined to a root, a valid id never leaves it, nor names the root itself.
    for (const fs::path& root :
         {fs::path("/srv/store/cli"), fs::path("store/cli"), fs::path("/")}) {
        const fs::path joined = (root / std::string(s)).lexically_normal();
        const fs::path base = root.lexically_normal();
        DEXTER_FUZZ_CHECK(starts_with(joined, base) && joined != base,
                          "a valid id leaves the root: " + joined.string());
        DEXTER_FUZZ_CHECK(joined.filename() == std::string(s), "the id is not the last component");
        DEXTER_FUZZ_CHECK(joined.lexically_relative(base) == fs::path(std::string(s)),
                          "the id is not one component below the root");
    }
}

// Text from the input: valid UTF-8 (invalid bytes replaced by '?'), unless `raw`.
std::string text(FuzzedDataProvider& p, std::size_t max, bool raw = false) {
    std::string s = p.ConsumeRandomLengthString(max);
    if (raw)
        return s;
    for (;;) {
        const auto bad = ds::first_invalid_utf8(s);
        if (bad == s.size())
            return s;
        s[bad] = '?';
    }
}

ds::time_point instant(FuzzedDataProvider& p) {
    using namespace std::chrono;
    constexpr auto first = time_point_cast<milliseconds>(sys_days{year{0} / January / 1});
    constexpr auto last = time_point_cast<milliseconds>(sys_days{year{10000} / January / 1});
    const auto ms = p.ConsumeIntegralInRange<std::int64_t>(first.time_since_epoch().count(),
                                                           last.time_since_epoch().count() - 1);
    return ds::time_point{milliseconds{ms}};
}

json::value value(FuzzedDataProvider& p, int depth, bool raw) {
    switch (p.ConsumeIntegralInRange<int>(0, depth >= 3 ? 5 : 7)) {
    case 0:
        return nullptr;
    case 1:
        return p.ConsumeBool();
    case 2:
        return p.ConsumeIntegral<std::int64_t>();
    case 3:
        return p.ConsumeIntegral<std::uint64_t>();
    case 4: {
        // Any finite double: Boost.JSON 1.81 may read one back an ulp off (fz::near).
        const double d = std::bit_cast<double>(p.ConsumeIntegral<std::uint64_t>());
        return std::isfinite(d) ? json::value(d)
                                : json::value(p.ConsumeIntegral<std::int32_t>() / 1024.0);
    }
    case 5:
        return json::value(text(p, 32, raw));
    case 6: {
        json::array a;
        const int n = p.ConsumeIntegralInRange<int>(0, 4);
        for (int i = 0; i < n; ++i)
            a.push_back(value(p, depth + 1, raw));
        return a;
    }
    default: {
        json::object o;
        const int n = p.ConsumeIntegralInRange<int>(0, 4);
        for (int i = 0; i < n; ++i) {
            const std::string key = text(p, 16, raw);
            o[key] = value(p, depth + 1, raw);
        }
        return o;
    }
    }
}

ds::exchange make_exchange(FuzzedDataProvider& p, bool raw) {
    ds::exchange ex;
    ex.seq = p.ConsumeIntegralInRange<std::uint64_t>(1, std::numeric_limits<std::uint64_t>::max());
    ex.timestamp = instant(p);
    ex.query = text(p, 64, raw);
    ex.answer = text(p, 128, raw);
    if (p.ConsumeBool())
        ex.summary = text(p, 32, raw);
    if (p.ConsumeBool())
        ex.model = text(p, 16, raw);
    if (p.ConsumeBool())
        ex.duration_ms = p.ConsumeIntegral<std::uint64_t>();
    const int calls = p.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < calls; ++i)
        ex.tool_calls.push_back(value(p, 1, raw));
    const int extras = p.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < extras; ++i) {
        const std::string key = text(p, 16, raw);
        ex.extra[key] = value(p, 1, raw);
    }
    return ex;
}

ds::session_meta make_meta(FuzzedDataProvider& p) {
    ds::session_meta m;
    m.id = text(p, 12);
    m.title = text(p, 64);
    m.created_at = instant(p);
    m.updated_at = instant(p);
    m.exchange_count = p.ConsumeIntegral<std::uint64_t>();
    const int extras = p.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < extras; ++i) {
        const std::string key = text(p, 16);
        m.extra[key] = value(p, 1, false);
    }
    return m;
}

// encode_exchange returns whether the text was valid UTF-8 (void in older headers).
bool encode(std::string& out, const ds::exchange& ex) {
    if constexpr (std::is_void_v<decltype(ds::detail::encode_exchange(out, ex))>) {
        ds::detail::encode_exchange(out, ex);
        return fz::all_utf8(ex);
    } else {
        return ds::detail::encode_exchange(out, ex);
    }
}

json::value parse_line(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    DEXTER_FUZZ_CHECK(!ec, "written JSON does not parse: " + ec.message() + "\n" + text);
    return v;
}

void check_round_trips(FuzzedDataProvider& p) {
    // A valid exchange through value_from / serialize / parse / try_value_to...
    const ds::exchange ex = make_exchange(p, false);
    const std::string text1 = json::serialize(json::value_from(ex));
    const auto back = json::try_value_to<ds::exchange>(parse_line(text1));
    DEXTER_FUZZ_CHECK(back.has_value(), "try_value_to<exchange> fails on " + text1);
    DEXTER_FUZZ_CHECK(fz::exchange_near(*back, ex), "the exchange changed: " + text1);

    // ...and through the store's own writer, one line read back by the record reader.
    std::string line;
    DEXTER_FUZZ_CHECK(encode(line, ex), "the writer refuses valid UTF-8");
    DEXTER_FUZZ_CHECK(line.find('\n') == line.size() - 1, "the record is not one line");
    line.pop_back();
    const json::value rec = parse_line(line);
    DEXTER_FUZZ_CHECK(rec.is_object(), "the record is not an object");
    const auto read = ds::detail::read_exchange(rec.get_object());
    DEXTER_FUZZ_CHECK(read.has_value() && fz::exchange_near(*read, ex),
                      "the written record reads back different: " + line);

    // session_meta the same way.
    const ds::session_meta m = make_meta(p);
    const std::string text2 = json::serialize(json::value_from(m));
    const auto meta = json::try_value_to<ds::session_meta>(parse_line(text2));
    DEXTER_FUZZ_CHECK(meta.has_value(), "try_value_to<session_meta> fails on " + text2);
    DEXTER_FUZZ_CHECK(fz::meta_near(*meta, m), "the session_meta changed: " + text2);

    // Text that is not UTF-8 is refused by the writer, never written.
    const ds::exchange raw = make_exchange(p, true);
    std::string refused;
    DEXTER_FUZZ_CHECK(encode(refused, raw) == fz::all_utf8(raw),
                      "the writer's UTF-8 verdict is wrong");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto nl = input.find('\n');
    const std::string_view id = input.substr(0, nl);
    check_id(id);
    check_id(input);
    if (nl == std::string_view::npos)
        return 0;
    FuzzedDataProvider p(data + nl + 1, size - nl - 1);
    try {
        check_round_trips(p);
    } catch (const std::exception& e) {
        DEXTER_FUZZ_CHECK(false, std::string("a round trip threw: ") + e.what());
    }
    return 0;
}
