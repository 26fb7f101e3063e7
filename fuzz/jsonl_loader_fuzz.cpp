// SPDX-License-Identifier: BSL-1.0
// libFuzzer target: the history.jsonl loader on arbitrary bytes, through the codec
// (scan_forward / scan_backward over a memfd) and through jsonl_store::load; the
// streaming read agrees with load(), and the search's raw-byte pre-filter finds exactly
// what matching every decoded exchange finds; an import of it takes what a load takes.
#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/history_search.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "fuzz_support.hpp"

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ds = dexter::sessions;
namespace fz = dexter::sessions::fuzz;
namespace json = boost::json;

namespace {

constexpr std::size_t big_record = 64 * 1024; // bounded memory: longer lines are skipped
constexpr std::size_t small_record = 64;      // reaches the over-long-line paths cheaply
const ds::session_id session = "s0000001";

// A memfd for the codec, and a store directory with one session for the whole store.
struct environment {
    int memfd = -1;
    std::filesystem::path root;
    std::filesystem::path history;

    environment() {
        memfd = ::memfd_create("history.jsonl", MFD_CLOEXEC);
        if (memfd < 0)
            std::abort();
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dexter-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data()))
            std::abort();
        root = pattern;
        std::filesystem::create_directories(root / "cli" / session);
        history = root / "cli" / session / "history.jsonl";
    }
    ~environment() {
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
        ::close(memfd);
    }
};

environment& env() {
    static environment e;
    return e;
}

void put(int fd, const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd, 0) < 0)
        std::abort();
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
        if (n <= 0)
            std::abort();
        done += static_cast<std::size_t>(n);
    }
}

// encode_exchange returns whether the text was valid UTF-8 (void in older headers).
bool encode(std::string& out, const ds::exchange& ex) {
    if constexpr (std::is_void_v<decltype(ds::detail::encode_exchange(out, ex))>) {
        ds::detail::encode_exchange(out, ex);
        return true;
    } else {
        return ds::detail::encode_exchange(out, ex);
    }
}

std::string describe(const ds::diagnostic& d) {
    return "line " + std::to_string(d.line) + " offset " + std::to_string(d.offset) + ": " +
           d.reason;
}

// The facts of the input that every diagnostic must agree with.
struct layout {
    std::string_view text;
    std::vector<std::size_t> line_starts; // of every complete line, then of the tail
    std::size_t complete_end = 0;         // just past the last newline

    explicit layout(std::string_view t) : text(t) {
        line_starts.push_back(0);
        for (std::size_t i = 0; i < t.size(); ++i)
            if (t[i] == '\n') {
                line_starts.push_back(i + 1);
                complete_end = i + 1;
            }
    }
    std::size_t complete_lines() const { return line_starts.size() - 1; }
    // 1-based line number of the line starting at `offset`, or 0 if none starts there.
    std::size_t line_at(std::uint64_t offset) const {
        const auto it = std::lower_bound(line_starts.begin(), line_starts.end(), offset);
        if (it == line_starts.end() || *it != offset)
            return 0;
        return static_cast<std::size_t>(it - line_starts.begin()) + 1;
    }
};

void check_diagnostics(const layout& in, const std::vector<ds::diagnostic>& diags, bool in_order) {
    std::uint64_t last = 0;
    for (const auto& d : diags) {
        if (d == ds::detail::missing_header_diagnostic())
            continue; // about the file as a whole (it may be empty), not one of its lines
        DEXTER_FUZZ_CHECK(d.offset < in.text.size(), "offset past the input: " + describe(d));
        DEXTER_FUZZ_CHECK(!in_order || d.offset >= last, "offsets go back: " + describe(d));
        last = d.offset;
        const auto line = in.line_at(d.offset);
        DEXTER_FUZZ_CHECK(line != 0, "offset not at a line start: " + describe(d));
        DEXTER_FUZZ_CHECK(line == d.line, "line number does not match offset: " + describe(d) +
                                              " (is line " + std::to_string(line) + ")");
    }
}

bool reported_at(const std::vector<ds::diagnostic>& diags, std::uint64_t offset) {
    return std::any_of(diags.begin(), diags.end(),
                       [&](const ds::diagnostic& d) { return d.offset == offset; });
}

// An accepted exchange is valid UTF-8, and the writer turns it into a line that reads
// back as the same exchange.
void check_round_trip(const ds::exchange& ex) {
    DEXTER_FUZZ_CHECK(ex.seq >= 1, "accepted seq 0");
    DEXTER_FUZZ_CHECK(fz::all_utf8(ex), "accepted text that is not UTF-8");
    std::string line;
    DEXTER_FUZZ_CHECK(encode(line, ex), "the writer refuses an exchange the reader accepted");
    DEXTER_FUZZ_CHECK(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1,
                      "the writer's record is not one line: " + line);
    boost::system::error_code ec;
    json::parse_options po;
    po.max_depth = 64;
    const json::value v =
        json::parse(std::string_view(line).substr(0, line.size() - 1), ec, {}, po);
    DEXTER_FUZZ_CHECK(!ec && v.is_object(), "the writer's record does not parse: " + line);
    const auto* type = ds::detail::member(v.get_object(), "type");
    DEXTER_FUZZ_CHECK(type && type->is_string() && type->get_string() == "exchange",
                      "the writer's record has no exchange type: " + line);
    const auto back = ds::detail::read_exchange(v.get_object());
    DEXTER_FUZZ_CHECK(back.has_value(), "the writer's record does not read back: " + line);
    DEXTER_FUZZ_CHECK(fz::exchange_near(*back, ex), "the record reads back different: " + line);
}

struct forward_result {
    ds::detail::scan_state st;
    std::vector<ds::diagnostic> diags;
    std::vector<ds::exchange> exchanges;
};

forward_result scan(int fd, std::size_t max_record) {
    forward_result r;
    r.st.meta.id = session;
    ds::detail::posix_ops ops;
    ds::detail::scan_forward(ops, fd, "fuzz", r.st, r.diags, max_record, true,
                             [&](ds::exchange&& ex) { r.exchanges.push_back(std::move(ex)); });
    return r;
}

void check_forward(const layout& in, const forward_result& r, std::size_t max_record) {
    if (r.st.newer_version)
        return; // the caller refuses the file: nothing more is promised
    check_diagnostics(in, r.diags, true);
    DEXTER_FUZZ_CHECK(r.st.consumed == in.complete_end, "consumed is not the last line end");
    DEXTER_FUZZ_CHECK(r.st.lines == in.complete_lines(), "line count is wrong");
    if (in.complete_end < in.text.size())
        DEXTER_FUZZ_CHECK(!r.diags.empty() && r.diags.back().offset == in.complete_end,
                          "the torn tail is not reported");

    // Every complete line is accepted or reported: one that is not a JSON object with a
    // string type cannot have been accepted, so it must be reported.
    json::parse_options po;
    po.max_depth = 64;
    std::size_t unreported_exchange_lines = 0;
    for (std::size_t i = 0; i + 1 < in.line_starts.size(); ++i) {
        const std::size_t start = in.line_starts[i];
        const std::string_view line = in.text.substr(start, in.line_starts[i + 1] - 1 - start);
        if (line.empty())
            continue;
        if (line.size() > max_record) {
            DEXTER_FUZZ_CHECK(reported_at(r.diags, start),
                              "an over-long line is not reported at " + std::to_string(start));
            continue;
        }
        boost::system::error_code ec;
        const json::value v = json::parse(line, ec, {}, po);
        const json::value* type =
            !ec && v.is_object() ? ds::detail::member(v.get_object(), "type") : nullptr;
        if (!type || !type->is_string()) {
            DEXTER_FUZZ_CHECK(reported_at(r.diags, start),
                              "a line that is not a typed record is not reported at " +
                                  std::to_string(start));
            continue;
        }
        if (type->get_string() == "exchange" && !reported_at(r.diags, start))
            ++unreported_exchange_lines;
    }
    // Lone-surrogate lines parse only once repaired, so they are not counted above; they
    // are reported, and may still be accepted.
    DEXTER_FUZZ_CHECK(r.exchanges.size() >= unreported_exchange_lines,
                      "an exchange line was neither accepted nor reported");
    DEXTER_FUZZ_CHECK(r.exchanges.size() <= in.complete_lines(), "more exchanges than lines");

    std::uint64_t last_seq = 0;
    for (const auto& ex : r.exchanges) {
        DEXTER_FUZZ_CHECK(ex.seq > last_seq, "accepted seqs do not increase");
        last_seq = ex.seq;
        DEXTER_FUZZ_CHECK(r.st.meta.updated_at >= ex.timestamp, "updated_at before an exchange");
        check_round_trip(ex);
    }
    DEXTER_FUZZ_CHECK(r.st.meta.exchange_count == last_seq, "exchange_count is not the last seq");
    DEXTER_FUZZ_CHECK(r.st.meta.updated_at >= r.st.meta.created_at, "updated_at before created_at");
}

std::vector<ds::exchange> scan_last(int fd, const forward_result& f, std::size_t count,
                                    std::size_t max_record, std::vector<ds::diagnostic>& diags) {
    ds::detail::posix_ops ops;
    return ds::detail::scan_backward(ops, fd, "fuzz", f.st.consumed, f.st.lines, count, diags,
                                     max_record);
}

void check_backward(const layout& in, const std::vector<ds::exchange>& last, std::size_t count,
                    const std::vector<ds::diagnostic>& diags) {
    DEXTER_FUZZ_CHECK(last.size() <= count, "more than the asked-for exchanges");
    std::uint64_t prev = 0;
    for (const auto& ex : last) {
        DEXTER_FUZZ_CHECK(ex.seq > prev, "backward seqs do not increase");
        prev = ex.seq;
        check_round_trip(ex);
    }
    for (const auto& d : diags) {
        DEXTER_FUZZ_CHECK(d.offset < in.complete_end,
                          "backward offset past the lines: " + describe(d));
        DEXTER_FUZZ_CHECK(in.line_at(d.offset) == d.line,
                          "backward line number does not match offset: " + describe(d));
    }
}

// As load() reports them: in file order (stable for equal offsets), without repeats.
std::vector<ds::diagnostic> sorted_unique(std::vector<ds::diagnostic> d) {
    std::stable_sort(d.begin(), d.end(), [](const ds::diagnostic& a, const ds::diagnostic& b) {
        return a.offset < b.offset;
    });
    d.erase(std::unique(d.begin(), d.end()), d.end());
    return d;
}

// The whole store over the same bytes: load() never throws but format_error for a
// newer version, and gives what the codec gives.
void check_store(const layout& in, const std::uint8_t* data, std::size_t size,
                 const forward_result& f, const std::vector<ds::exchange>& last3) {
    auto& e = env();
    // A store that lists may have removed the session (a history without an exchange
    // that is torn, headerless or empty is cleaned up as unborn) and quarantined it.
    std::error_code ec;
    std::filesystem::create_directories(e.history.parent_path(), ec);
    std::filesystem::remove_all(e.root / "quarantine", ec);
    const int fd = ::open(e.history.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        std::abort();
    put(fd, data, size);
    ::close(fd);
    std::filesystem::remove(e.root / "index.json", ec);

    ds::jsonl_store store{e.root, "cli",
                          ds::jsonl_options{ds::durability::process_crash, big_record}};
    bool refused = false;
    try {
        const auto all = store.load(session);
        DEXTER_FUZZ_CHECK(all.exchanges.size() == f.exchanges.size(),
                          "load() and the codec disagree on the exchanges");
        for (std::size_t i = 0; i < all.exchanges.size(); ++i)
            DEXTER_FUZZ_CHECK(all.exchanges[i] == f.exchanges[i], "load() exchange differs");
        auto expected = f.diags;
        if (!f.st.have_header) // a damaged session: load() says so once, at line 1
            expected.push_back(ds::detail::missing_header_diagnostic());
        DEXTER_FUZZ_CHECK(all.diagnostics == sorted_unique(std::move(expected)),
                          "load() and the codec disagree on the diagnostics");
        check_diagnostics(in, all.diagnostics, true);
        std::vector<ds::exchange> streamed;
        const auto streamed_diags =
            store.for_each_exchange(session, 1, UINT64_MAX, [&](ds::exchange&& ex) {
                streamed.push_back(std::move(ex));
                return true;
            });
        DEXTER_FUZZ_CHECK(streamed == all.exchanges,
                          "for_each_exchange() and load() disagree on the exchanges");
        DEXTER_FUZZ_CHECK(streamed_diags == all.diagnostics,
                          "for_each_exchange() and load() disagree on the diagnostics");
    } catch (const ds::format_error&) {
        refused = true;
    }
    DEXTER_FUZZ_CHECK(refused == (f.st.newer_version != 0),
                      refused ? "format_error without a newer version header"
                              : "a newer version header was not refused");
    refused = false;
    try {
        const auto tail = store.load(session, 3);
        DEXTER_FUZZ_CHECK(tail.exchanges == last3, "load(id, 3) and the codec disagree");
        check_diagnostics(in, tail.diagnostics, true);
        // Its count comes from a scan that checks only seq and timestamp, so it may
        // count an exchange that the full load skips (say, one without a query).
        DEXTER_FUZZ_CHECK(tail.meta.exchange_count >= f.st.meta.exchange_count,
                          "load(id, 3) counts fewer exchanges than the full scan");
    } catch (const ds::format_error&) {
        refused = true;
    }
    DEXTER_FUZZ_CHECK(refused == (f.st.newer_version != 0),
                      "load(id, 3) refuses differently from load(id)");
}

// The search of one history (detail/history_search.hpp), which decodes only the lines
// whose bytes may hold the text, finds what matching every exchange the loader accepts
// finds, for texts that need escaping, non-ASCII, and one taken from the input.
void check_search(int fd, const forward_result& f) {
    if (f.st.newer_version)
        return;
    ds::session_meta meta = f.st.meta;
    meta.id = session;
    std::vector<std::string> needles = {"a", "E", "\"", "\\", "\xc3\xa9", "\n", "\\u", "/"};
    if (!f.exchanges.empty()) {
        const std::string& q = f.exchanges.back().query;
        std::size_t from = q.size() / 2;
        while (from > 0 && (static_cast<unsigned char>(q[from]) & 0xC0) == 0x80)
            --from;
        const auto part = ds::utf8_prefix(std::string_view(q).substr(from), 4);
        if (!part.empty())
            needles.emplace_back(part);
    }
    constexpr std::size_t limit = 100000; // more than any input holds: no early stop
    for (const auto& needle : needles) {
        ds::hit_collector got(limit), want(limit);
        std::vector<ds::diagnostic> diags;
        ds::detail::posix_ops ops;
        ds::detail::search_history(ops, fd, "fuzz", meta, needle, ds::detail::json_escaped(needle),
                                   big_record, limit, got, diags);
        for (const auto& ex : f.exchanges)
            if (auto h = ds::match_exchange(meta, ex, needle))
                want.offer(std::move(*h));
        DEXTER_FUZZ_CHECK(got.take() == want.take(),
                          "the search and the full decode disagree for '" + needle + "'");
    }
}

} // namespace

// Importing the input (import.hpp) as a jsonl export takes exactly the exchanges a load of
// it as a history takes, or, where that is none, refuses it; a newer format is refused.
void check_import(std::string_view text, const forward_result& big) {
    ds::test_session_manager m;
    std::istringstream in{std::string(text)};
    ds::import_options options;
    options.max_record_bytes = big_record;
    options.max_document_bytes = 1u << 20;
    std::optional<ds::import_result> imported;
    std::string refused;
    try {
        imported = m.import_session(in, options);
    } catch (const ds::format_error& e) {
        refused = std::string("format_error: ") + e.what();
        DEXTER_FUZZ_CHECK(big.st.newer_version || !big.st.have_header,
                          "import refused a history the loader reads: " + refused);
        return;
    } catch (const ds::error& e) {
        refused = e.what();
    }
    if (!big.st.have_header || big.st.newer_version) {
        DEXTER_FUZZ_CHECK(!big.st.newer_version || !imported,
                          "import took a history in a newer format");
        return; // not a history: a json document may import, or not
    }
    if (big.exchanges.empty()) {
        DEXTER_FUZZ_CHECK(!imported, "import made a session of a history without exchanges");
        return;
    }
    DEXTER_FUZZ_CHECK(imported.has_value(),
                      "import refused a history the loader reads: " + refused);
    const auto stored = m.storage().load(imported->meta.id, ds::all_exchanges).exchanges;
    DEXTER_FUZZ_CHECK(stored.size() == big.exchanges.size(),
                      "import took " + std::to_string(stored.size()) + " exchanges, a load " +
                          std::to_string(big.exchanges.size()));
    for (std::size_t i = 0; i < stored.size(); ++i)
        DEXTER_FUZZ_CHECK(stored[i] == big.exchanges[i], "import took a different exchange");
    DEXTER_FUZZ_CHECK(imported->meta.exchange_count == big.st.meta.exchange_count,
                      "import counts differently from a load");
}

// Each line the canonical decoder (record_codec.hpp) takes is one the JSON parser reads
// as the same exchange; and each exchange the parser reads is taken by the canonical
// decoder from the line encode_exchange() writes of it (tool_calls and extra aside).
void check_canonical_lines(std::string_view text) {
    ds::detail::canonical::scratch scratch;
    for (std::size_t start = 0; start <= text.size();) {
        const auto nl = std::min(text.find('\n', start), text.size());
        const std::string_view line = text.substr(start, nl - start);
        start = nl + 1;
        ds::exchange fast;
        const bool taken = ds::detail::canonical::decode_exchange(line, fast, scratch);
        boost::system::error_code ec;
        json::parse_options po;
        po.max_depth = 64;
        const json::value v = json::parse(line, ec, {}, po);
        std::optional<ds::exchange> slow;
        if (!ec && v.is_object())
            if (auto r = ds::detail::read_exchange(v.get_object()); r)
                slow = std::move(*r);
        if (taken) {
            DEXTER_FUZZ_CHECK(slow.has_value(), "a canonical line the parser refuses");
            DEXTER_FUZZ_CHECK(*slow == fast, "a canonical line decoded differently");
        }
        if (slow && slow->tool_calls.empty() && slow->extra.empty()) {
            std::string encoded;
            if (ds::detail::encode_exchange(encoded, *slow)) {
                encoded.pop_back(); // the newline
                ds::exchange again;
                DEXTER_FUZZ_CHECK(ds::detail::canonical::decode_exchange(encoded, again, scratch) &&
                                      again == *slow,
                                  "the canonical decoder declines a line the encoder wrote");
            }
        }
    }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& e = env();
    check_canonical_lines(std::string_view(reinterpret_cast<const char*>(data), size));
    put(e.memfd, data, size);
    const layout in(std::string_view(reinterpret_cast<const char*>(data), size));
    try {
        std::vector<ds::exchange> last3;
        forward_result big;
        for (const std::size_t max_record : {big_record, small_record}) {
            forward_result f = scan(e.memfd, max_record);
            check_forward(in, f, max_record);
            if (!f.st.newer_version) {
                // The store's count (3) with the real limit; 1 and "all" with the small one.
                const auto counts = max_record == big_record
                                        ? std::vector<std::size_t>{3}
                                        : std::vector<std::size_t>{1, ds::all_exchanges};
                for (const std::size_t count : counts) {
                    std::vector<ds::diagnostic> diags;
                    auto last = scan_last(e.memfd, f, count, max_record, diags);
                    check_backward(in, last, count, diags);
                    if (max_record == big_record)
                        last3 = std::move(last);
                }
            }
            if (max_record == big_record)
                big = std::move(f);
        }
        check_search(e.memfd, big);
        check_import(in.text, big);
        check_store(in, data, size, big, last3);
    } catch (const std::exception& ex) {
        DEXTER_FUZZ_CHECK(false, std::string("the loader threw: ") + ex.what());
    }
    return 0;
}
