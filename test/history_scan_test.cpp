// SPDX-License-Identifier: BSL-1.0
// detail/history_scan.hpp on its own, on real files: forward and backward reads across
// chunk boundaries, torn tails, over-long lines, and line 1's header.
#include <dexter/sessions/detail/history_scan.hpp>

#define BOOST_TEST_MODULE history_scan
#include <boost/test/unit_test.hpp>

#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ds = dexter::sessions;

namespace {

ds::time_point at(int seconds) {
    return ds::time_point{std::chrono::sys_days{std::chrono::year{2026} / 5 / 1}} +
           std::chrono::seconds{seconds};
}

// Exchange `seq` with an answer of `answer_bytes` bytes (large ones cross the scanner's
// 64 KiB chunks).
ds::exchange make_exchange(std::uint64_t seq, std::size_t answer_bytes = 10) {
    ds::exchange ex;
    ex.seq = seq;
    ex.timestamp = at(static_cast<int>(seq));
    ex.query = "question " + std::to_string(seq);
    ex.answer = std::string(answer_bytes, static_cast<char>('a' + seq % 26));
    return ex;
}

std::string history(std::uint64_t n, std::size_t answer_bytes = 10) {
    std::string text;
    ds::detail::encode_header(text,
                              {"abcd1234", "title", at(0), at(0), 0, {}, false, std::nullopt});
    for (std::uint64_t seq = 1; seq <= n; ++seq)
        ds::detail::encode_exchange(text, make_exchange(seq, answer_bytes));
    return text;
}

class file {
public:
    file(const ds::test::temp_dir& dir, const std::string& text, int flags = O_RDONLY)
        : path_((dir.path() / "history.jsonl").string()) {
        std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
        fd_ = ::open(path_.c_str(), flags | O_CLOEXEC);
        BOOST_TEST_REQUIRE(fd_ >= 0);
    }
    ~file() { ::close(fd_); }
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    int fd() const { return fd_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

struct forward_result {
    ds::detail::scan_state st;
    std::vector<ds::exchange> exchanges;
    std::vector<ds::diagnostic> diags;
};

forward_result scan(const file& f, std::uint64_t from = 0, std::uint64_t lines_before = 0,
                    std::size_t max_record = 16u << 20) {
    ds::detail::posix_ops ops;
    forward_result r;
    r.st.consumed = from;
    r.st.lines = lines_before;
    ds::detail::scan_forward(ops, f.fd(), f.path(), r.st, r.diags, max_record, true,
                             [&](ds::exchange&& ex) { r.exchanges.push_back(std::move(ex)); });
    return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(forward_reads_every_record_across_chunks) {
    ds::test::temp_dir dir;
    const std::string text = history(40, 20000); // about 800 KB: a dozen chunks
    file f(dir, text);
    const auto r = scan(f);
    BOOST_TEST(r.diags.empty());
    BOOST_TEST(r.st.consumed == text.size());
    BOOST_TEST(r.st.lines == 41u);
    BOOST_TEST(r.st.have_header);
    BOOST_TEST(r.st.meta.exchange_count == 40u);
    BOOST_TEST_REQUIRE(r.exchanges.size() == 40u);
    for (std::uint64_t i = 0; i < 40; ++i)
        BOOST_TEST((r.exchanges[i] == make_exchange(i + 1, 20000)), "exchange " << i + 1);
}

BOOST_AUTO_TEST_CASE(forward_stops_before_a_torn_tail_and_reports_it) {
    ds::test::temp_dir dir;
    const std::string complete = history(3);
    std::string torn;
    ds::detail::encode_exchange(torn, make_exchange(4));
    torn.resize(torn.size() / 2);
    file f(dir, complete + torn);
    const auto r = scan(f);
    BOOST_TEST(r.st.consumed == complete.size()); // the torn bytes are not consumed
    BOOST_TEST(r.exchanges.size() == 3u);
    BOOST_TEST_REQUIRE(r.diags.size() == 1u);
    BOOST_TEST(r.diags[0].line == 5u);
    BOOST_TEST(r.diags[0].offset == complete.size());
    BOOST_TEST(r.diags[0].reason.find("incomplete last line (" + std::to_string(torn.size()) +
                                      " bytes)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(forward_from_an_offset_reads_only_what_follows) {
    ds::test::temp_dir dir;
    const std::string first = history(2);
    const std::string text = history(5);
    file f(dir, text);
    ds::detail::posix_ops ops;
    forward_result r;
    r.st.consumed = first.size();
    r.st.lines = 3;
    r.st.meta.exchange_count = 2;
    r.st.have_header = true;
    ds::detail::scan_forward(ops, f.fd(), f.path(), r.st, r.diags, 16u << 20, true,
                             [&](ds::exchange&& ex) { r.exchanges.push_back(std::move(ex)); });
    BOOST_TEST(r.diags.empty());
    BOOST_TEST_REQUIRE(r.exchanges.size() == 3u);
    BOOST_TEST(r.exchanges.front().seq == 3u);
    BOOST_TEST(r.st.lines == 6u);
    BOOST_TEST(r.st.consumed == text.size());
}

BOOST_AUTO_TEST_CASE(an_over_long_line_is_skipped_with_its_line_number) {
    ds::test::temp_dir dir;
    std::string text = history(1);
    ds::detail::encode_exchange(text, make_exchange(2, 300000)); // longer than the limit
    ds::detail::encode_exchange(text, make_exchange(3));
    file f(dir, text);
    const auto r = scan(f, 0, 0, 100000);
    BOOST_TEST_REQUIRE(r.exchanges.size() == 2u);
    BOOST_TEST(r.exchanges[1].seq == 3u);
    BOOST_TEST(r.st.consumed == text.size());
    bool reported = false;
    for (const auto& d : r.diags)
        reported |= d.line == 3u &&
                    d.reason.find("longer than the record limit of 100000") != std::string::npos;
    BOOST_TEST(reported);
}

BOOST_AUTO_TEST_CASE(backward_reads_the_last_n_in_file_order) {
    ds::test::temp_dir dir;
    const std::string text = history(30, 9000); // lines cross chunk boundaries
    file f(dir, text);
    ds::detail::posix_ops ops;
    std::vector<ds::diagnostic> diags;
    const auto last3 =
        ds::detail::scan_backward(ops, f.fd(), f.path(), text.size(), 31, 3, diags, 16u << 20);
    BOOST_TEST(diags.empty());
    BOOST_TEST_REQUIRE(last3.size() == 3u);
    BOOST_TEST(last3[0].seq == 28u);
    BOOST_TEST(last3[2].seq == 30u);
    BOOST_TEST((last3[2] == make_exchange(30, 9000)));
    const auto all =
        ds::detail::scan_backward(ops, f.fd(), f.path(), text.size(), 31, 1000, diags, 16u << 20);
    BOOST_TEST(all.size() == 30u);
    BOOST_TEST(
        ds::detail::scan_backward(ops, f.fd(), f.path(), text.size(), 31, 0, diags, 16u << 20)
            .empty());
    // up to an earlier end: what a reader sees of a file while it is being appended to
    const std::string first10 = history(10, 9000);
    const auto upto =
        ds::detail::scan_backward(ops, f.fd(), f.path(), first10.size(), 11, 2, diags, 16u << 20);
    BOOST_TEST_REQUIRE(upto.size() == 2u);
    BOOST_TEST(upto[1].seq == 10u);
}

BOOST_AUTO_TEST_CASE(backward_skips_a_duplicate_and_reports_a_gap) {
    ds::test::temp_dir dir;
    std::string text = history(2);
    ds::detail::encode_exchange(text, make_exchange(2)); // a duplicate: the first copy wins
    ds::detail::encode_exchange(text, make_exchange(5)); // 3 and 4 are missing
    file f(dir, text);
    ds::detail::posix_ops ops;
    std::vector<ds::diagnostic> diags;
    const auto got =
        ds::detail::scan_backward(ops, f.fd(), f.path(), text.size(), 5, 10, diags, 16u << 20);
    BOOST_TEST_REQUIRE(got.size() == 3u);
    BOOST_TEST(got[0].seq == 1u);
    BOOST_TEST(got[1].seq == 2u);
    BOOST_TEST(got[2].seq == 5u);
    bool gap = false;
    for (const auto& d : diags)
        gap |= d.line == 5u && d.reason.find("exchanges 3 to 4 are missing") != std::string::npos;
    BOOST_TEST(gap);
}

BOOST_AUTO_TEST_CASE(line_one_decides_the_header) {
    ds::test::temp_dir dir;
    ds::detail::posix_ops ops;
    {
        file f(dir, history(1));
        const auto h = ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20);
        BOOST_TEST(h.present);
        BOOST_TEST(h.version == ds::detail::history_format_version);
    }
    {
        file f(dir, "{\"type\":\"session\",\"version\":7}\n");
        const auto h = ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20);
        BOOST_TEST(!h.present);
        BOOST_TEST(h.version == 7u);
    }
    {
        std::string text;
        ds::detail::encode_exchange(text, make_exchange(1));
        file f(dir, text + history(1)); // a header, but not on line 1
        BOOST_TEST(!ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20).present);
    }
    {
        file f(dir, "{\"type\":\"session\",\"version\":1"); // cut before its newline
        BOOST_TEST(!ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20).present);
    }
    {
        std::string text; // a header longer than several read chunks
        ds::detail::encode_header(
            text, {"abcd1234", std::string(200000, 't'), at(0), at(0), 0, {}, false, std::nullopt});
        file f(dir, text);
        BOOST_TEST(ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20).present);
        BOOST_TEST(!ds::detail::read_history_header(ops, f.fd(), f.path(), 100000).present);
    }
}

BOOST_AUTO_TEST_CASE(a_failed_read_is_an_error_naming_the_file) {
    ds::test::temp_dir dir;
    file f(dir, history(2), O_WRONLY); // pread on a write-only descriptor: EBADF
    ds::detail::posix_ops ops;
    ds::detail::scan_state st;
    std::vector<ds::diagnostic> diags;
    try {
        ds::detail::scan_forward(ops, f.fd(), f.path(), st, diags, 16u << 20, false,
                                 [](ds::exchange&&) {});
        BOOST_FAIL("a failed read was taken for the end of the file");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(e.path() == f.path());
        BOOST_TEST(e.errno_value() == EBADF);
    }
    BOOST_CHECK_THROW(ds::detail::read_history_header(ops, f.fd(), f.path(), 16u << 20),
                      ds::storage_error);
}

namespace {

// A forward read of the whole of `f` (of `file_size` bytes) collected as load() does.
std::vector<ds::exchange> collect(const file& f, std::uint64_t file_size) {
    ds::detail::posix_ops ops;
    ds::detail::scan_state st;
    std::vector<ds::diagnostic> diags;
    std::vector<ds::exchange> out;
    ds::detail::scan_forward(ops, f.fd(), f.path(), st, diags, 16u << 20, true,
                             ds::detail::exchange_collector(out, file_size));
    BOOST_TEST(diags.empty());
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_full_read_reserves_room_for_its_exchanges_once) {
    // 1,100 exchanges of one size: room for about that many is reserved after the first
    // 16, where growing by doubling ends at room for 2,048.
    ds::test::temp_dir dir;
    const std::string text = history(1100, 3000);
    file f(dir, text);
    const auto got = collect(f, text.size());
    BOOST_TEST_REQUIRE(got.size() == 1100u);
    BOOST_TEST(got.capacity() <= 1100u * 11 / 10);
    for (std::uint64_t i = 0; i < got.size(); ++i)
        BOOST_TEST_REQUIRE((got[i] == make_exchange(i + 1, 3000)), "exchange " << i + 1);
}

BOOST_AUTO_TEST_CASE(short_first_lines_reserve_no_more_than_one_exchange_per_512_bytes) {
    // 16 exchanges of about 100 bytes, then 60 of 20 KB: at the mean of the first lines
    // the rest would be 12,000 exchanges (2.7 MB of room for 76); the reservation stays
    // under one per 512 bytes left, and the read still gets every exchange.
    ds::test::temp_dir dir;
    std::string text = history(16, 10);
    for (std::uint64_t seq = 17; seq <= 76; ++seq)
        ds::detail::encode_exchange(text, make_exchange(seq, 20000));
    file f(dir, text);
    const auto got = collect(f, text.size());
    BOOST_TEST_REQUIRE(got.size() == 76u);
    BOOST_TEST(got.capacity() <= 17u + text.size() / 480);
    BOOST_TEST((got.back() == make_exchange(76, 20000)));
}

BOOST_AUTO_TEST_CASE(a_file_that_grew_or_shrank_since_its_size_was_taken_is_read_whole) {
    // The size is a hint: a file longer than it (appended to since) or shorter gives the
    // same exchanges.
    ds::test::temp_dir dir;
    const std::string text = history(100, 500);
    file f(dir, text);
    for (const std::uint64_t size :
         {std::uint64_t{0}, std::uint64_t{1000}, std::uint64_t{text.size() * 4}}) {
        const auto got = collect(f, size);
        BOOST_TEST_REQUIRE(got.size() == 100u, "size " << size);
        for (std::uint64_t i = 0; i < got.size(); ++i)
            BOOST_TEST_REQUIRE((got[i] == make_exchange(i + 1, 500)), "exchange " << i + 1);
    }
}
