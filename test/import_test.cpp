// SPDX-License-Identifier: BSL-1.0
// Importing sessions (import.hpp, session_manager::import_session()) from hostile input:
// every kind of bad line, a line of 1 GiB without a newline, a newer format, hostile ids,
// a stream that fails midway. The round trip through every store is in the storage
// contract (testing/change_contract.hpp).
#include <dexter/sessions/import.hpp>

#define BOOST_TEST_MODULE import
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/session_manager.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

namespace ds = dexter::sessions;

namespace {

const std::string header =
    R"({"type":"session","version":1,"id":"orig0001","created_at":"2026-02-01T10:00:00.000Z","title":"imported"})";

std::string exchange_line(int seq, const std::string& query = "q") {
    return R"({"type":"exchange","seq":)" + std::to_string(seq) +
           R"(,"timestamp":"2026-02-01T10:00:0)" + std::to_string(seq % 10) +
           R"(.000Z","query":")" + query + R"(","answer":"a"})";
}

std::string lines(const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls)
        out += l + "\n";
    return out;
}

ds::import_result import_text(ds::test_session_manager& m, const std::string& text) {
    std::istringstream in(text);
    return m.import_session(in);
}

// A stream of `prefix`, then `size` bytes of 'x' made as they are read (never held
// whole), then `suffix`.
class generated_buf : public std::streambuf {
public:
    generated_buf(std::string prefix, std::uint64_t size, std::string suffix)
        : prefix_(std::move(prefix)), suffix_(std::move(suffix)), left_(size) {}

protected:
    int_type underflow() override {
        if (stage_ == 0) {
            stage_ = 1;
            if (!prefix_.empty())
                return serve(prefix_);
        }
        if (stage_ == 1) {
            if (left_ > 0) {
                const std::size_t n = left_ < chunk_.size() ? left_ : chunk_.size();
                left_ -= n;
                setg(chunk_.data(), chunk_.data(), chunk_.data() + n);
                return traits_type::to_int_type(*gptr());
            }
            stage_ = 2;
            if (!suffix_.empty())
                return serve(suffix_);
        }
        return traits_type::eof();
    }

private:
    int_type serve(std::string& s) {
        setg(s.data(), s.data(), s.data() + s.size());
        return traits_type::to_int_type(*gptr());
    }

    std::string prefix_, suffix_;
    std::uint64_t left_;
    int stage_ = 0;
    std::string chunk_ = std::string(1u << 20, 'x');
};

// A stream that fails (badbit) after `good` bytes.
class failing_buf : public std::streambuf {
public:
    explicit failing_buf(std::string good) : good_(std::move(good)) {}

protected:
    int_type underflow() override {
        if (!served_) {
            served_ = true;
            setg(good_.data(), good_.data(), good_.data() + good_.size());
            return traits_type::to_int_type(*gptr());
        }
        throw std::ios_base::failure("disk gone");
    }

private:
    std::string good_;
    bool served_ = false;
};

long status_kb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0)
            return std::atol(line.c_str() + std::strlen(field));
    return -1;
}

} // namespace

BOOST_AUTO_TEST_CASE(line_reader_splits_and_passes_over_long_lines) {
    std::istringstream in("one\n\n" + std::string(100, 'y') + "\nlast");
    ds::detail::capped_line_reader r(in, 10);
    std::string_view line;
    bool too_long = false;
    BOOST_TEST_REQUIRE(r.next(line, too_long));
    BOOST_TEST(line == "one");
    BOOST_TEST(!too_long);
    BOOST_TEST(r.line_no() == 1u);
    BOOST_TEST(r.offset() == 0u);
    BOOST_TEST_REQUIRE(r.next(line, too_long));
    BOOST_TEST(line.empty());
    BOOST_TEST(r.offset() == 4u);
    BOOST_TEST_REQUIRE(r.next(line, too_long));
    BOOST_TEST(too_long);
    BOOST_TEST(line.empty());
    BOOST_TEST(r.line_no() == 3u);
    BOOST_TEST_REQUIRE(r.next(line, too_long));
    BOOST_TEST(!too_long);
    BOOST_TEST(line == "last");
    BOOST_TEST(r.offset() == 106u);
    BOOST_TEST(!r.next(line, too_long));
}

BOOST_AUTO_TEST_CASE(every_kind_of_bad_line_is_reported_and_skipped) {
    ds::test_session_manager m;
    const auto r = import_text(
        m,
        lines({
            header, exchange_line(1),
            "not json",                                             // 3
            "123",                                                  // 4
            R"({"seq":2})",                                         // 5: no type
            R"({"type":"exchange","timestamp":"x","query":"q"})",   // 6: no seq
            exchange_line(2, "second"),                             // 7
            exchange_line(2, "again"),                              // 8: repeats
            exchange_line(1, "back"),                               // 9: goes back
            "{\"type\":\"exchange\",\"seq\":3,\"query\":\"\xff\"}", // 10: not UTF-8
            header,                                                 // 11: a header after line 1
            R"({"type":"future_record","x":1})",                    // 12: skipped silently
            R"({"type":"meta","title":"renamed","extra":{"k":1},"pinned":true})", // 13
            R"({"type":"exchange","seq":4,"timestamp":"2026-02-01T10:00:04.000Z","query":"\ud83d","answer":"a"})", // 14: lone surrogate
            exchange_line(6), // 15: 5 missing
            "",               // 16: empty
        }));
    BOOST_TEST(r.exchanges == 4u);
    BOOST_TEST(r.meta.exchange_count == 6u);
    BOOST_TEST(r.meta.title == "renamed");
    BOOST_TEST(r.meta.pinned);
    BOOST_TEST(r.meta.id == "orig0001");
    std::vector<std::uint64_t> reported;
    for (const auto& d : r.diagnostics) {
        reported.push_back(d.line);
        BOOST_TEST_MESSAGE(d.line << ": " << d.reason);
    }
    BOOST_TEST(reported == (std::vector<std::uint64_t>{3, 4, 5, 6, 8, 9, 10, 11, 14, 14, 15}),
               boost::test_tools::per_element());
    const auto loaded = m.storage().load(r.meta.id, ds::all_exchanges);
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 4u);
    BOOST_TEST(loaded.exchanges[1].query == "second");
    BOOST_TEST(loaded.exchanges[2].query == "\xEF\xBF\xBD"); // U+FFFD
    BOOST_TEST(loaded.exchanges[3].seq == 6u);
    BOOST_TEST(m.storage().find(r.meta.id)->extra.at("k").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(a_gibibyte_without_a_newline_is_passed_over_in_bounded_memory) {
    constexpr std::uint64_t gib = 1ull << 30;
    const long before = status_kb("VmRSS:");
    {
        ds::test_session_manager m;
        generated_buf buf(lines({header, exchange_line(1)}), gib, "\n" + lines({exchange_line(2)}));
        std::istream in(&buf);
        const auto r = m.import_session(in);
        BOOST_TEST(r.exchanges == 2u);
        BOOST_TEST_REQUIRE(r.diagnostics.size() == 1u);
        BOOST_TEST(r.diagnostics[0].line == 3u);
        BOOST_TEST(r.diagnostics[0].reason.find("longer than the record limit") !=
                   std::string::npos);
    }
    {
        // As the whole input: not an export, refused without holding it.
        ds::test_session_manager m;
        generated_buf buf("", gib, "");
        std::istream in(&buf);
        BOOST_CHECK_THROW(m.import_session(in), ds::invalid_input);
        BOOST_TEST(m.list_sessions().empty());
    }
    const long peak = status_kb("VmHWM:");
    BOOST_TEST_MESSAGE("resident before " << before << " kB, peak " << peak << " kB");
    BOOST_TEST(peak - before < 256 * 1024); // far below the 1 GiB it read
}

BOOST_AUTO_TEST_CASE(hostile_ids_are_never_kept) {
    ds::test_session_manager m;
    for (const std::string id : {"../../etc", "ABCDEFGH", "abc", "abcd1234x", "a/b/c/de"}) {
        BOOST_TEST_CONTEXT("id " << id) {
            const std::string h = R"({"type":"session","version":1,"id":")" + id +
                                  R"(","created_at":"2026-02-01T10:00:00.000Z","title":"t"})";
            const auto r = import_text(m, lines({h, exchange_line(1)}));
            BOOST_TEST(r.original_id.empty());
            BOOST_TEST(ds::is_valid_session_id(r.meta.id));
            const auto doc = R"({"session":{"id":")" + id +
                             R"(","created_at":"2026-02-01T10:00:00.000Z"},"exchanges":[)" +
                             exchange_line(1) + "]}";
            const auto j = import_text(m, doc);
            BOOST_TEST(j.original_id.empty());
            BOOST_TEST(ds::is_valid_session_id(j.meta.id));
        }
    }
    // A header whose id is missing or not a string: a fresh id too.
    const auto r = import_text(
        m,
        lines({R"({"type":"session","version":1,"id":7,"created_at":"2026-02-01T10:00:00.000Z"})",
               exchange_line(1)}));
    BOOST_TEST(r.original_id.empty());
}

BOOST_AUTO_TEST_CASE(refused_imports_leave_nothing) {
    ds::test_session_manager m;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"newer jsonl",
         lines(
             {R"({"type":"session","version":2,"id":"orig0001","created_at":"2026-02-01T10:00:00.000Z"})",
              exchange_line(1)})},
        {"header without version",
         lines({R"({"type":"session","id":"orig0001","created_at":"2026-02-01T10:00:00.000Z"})",
                exchange_line(1)})},
        {"no header", lines({exchange_line(1), exchange_line(2)})},
        {"only bad lines", lines({header, "garbage", R"({"type":"exchange","seq":0})"})},
        {"json without exchanges", R"({"session":{"created_at":"2026-02-01T10:00:00.000Z"}})"},
        {"json exchanges not an array",
         R"({"session":{"created_at":"2026-02-01T10:00:00.000Z"},"exchanges":{}})"},
        {"json without created_at",
         R"({"session":{"id":"orig0001"},"exchanges":[)" + exchange_line(1) + "]}"},
        {"json cut", R"({"session":{"created_at":"2026-02-01T10:00:00.000Z"},"exchanges":[)"},
        {"json newer", R"({"session":{"created_at":"2026-02-01T10:00:00.000Z","version":5},)"
                       R"("exchanges":[)" +
                           exchange_line(1) + "]}"},
        {"deeply nested", std::string(10000, '[') + std::string(10000, ']')},
        {"binary", std::string("\x00\x01\xff\xfe", 4)},
    };
    for (const auto& [name, text] : cases) {
        BOOST_TEST_CONTEXT(name) {
            std::istringstream in(text);
            BOOST_CHECK_THROW(m.import_session(in), ds::error);
        }
    }
    BOOST_TEST(m.list_sessions().empty());
    BOOST_TEST(m.storage().list().empty());
}

BOOST_AUTO_TEST_CASE(json_exchanges_are_checked_one_by_one) {
    ds::test_session_manager m;
    const std::string doc =
        R"({"session":{"id":"orig0002","title":"j","created_at":"2026-02-01T10:00:00.000Z","pinned":true,"forked_from":{"id":"abcd1234","seq":3}},"exchanges":[)" +
        exchange_line(1) + R"(,7,{"seq":2},)" + exchange_line(1) + "," + exchange_line(3) + "]}";
    const auto r = import_text(m, doc);
    BOOST_TEST((r.format == ds::export_format::json));
    BOOST_TEST(r.exchanges == 2u);
    BOOST_TEST(r.meta.id == "orig0002");
    BOOST_TEST(r.meta.pinned);
    BOOST_TEST_REQUIRE(r.meta.forked_from.has_value());
    BOOST_TEST(r.meta.forked_from->id == "abcd1234");
    BOOST_TEST(r.diagnostics.size() == 4u); // 7, {"seq":2}, seq 1 again, 2 missing
}

BOOST_AUTO_TEST_CASE(an_unfinished_last_line_is_skipped_as_a_load_skips_it) {
    ds::test_session_manager m;
    const auto r = import_text(m, lines({header, exchange_line(1)}) + exchange_line(2));
    BOOST_TEST(r.exchanges == 1u);
    BOOST_TEST_REQUIRE(r.diagnostics.size() == 1u);
    BOOST_TEST(r.diagnostics[0].line == 3u);
    BOOST_TEST(r.diagnostics[0].reason.find("no newline") != std::string::npos);
    // A header alone, without its newline: nothing to import.
    BOOST_CHECK_THROW(import_text(m, header), ds::invalid_input);
    // A header with a lone surrogate in its title reads as a load reads it.
    const auto s = import_text(
        m,
        lines(
            {R"({"type":"session","version":1,"id":"surr0001","created_at":"2026-02-01T10:00:00.000Z","title":"cut \ud83d"})",
             exchange_line(1)}));
    BOOST_TEST(s.meta.title == "cut \xEF\xBF\xBD");
}

BOOST_AUTO_TEST_CASE(a_stream_that_fails_midway_leaves_nothing) {
    ds::test_session_manager m;
    failing_buf buf(lines({header, exchange_line(1), exchange_line(2)}));
    std::istream in(&buf);
    BOOST_CHECK_THROW(m.import_session(in), ds::error);
    BOOST_TEST(m.storage().list().empty());
}
