// SPDX-License-Identifier: BSL-1.0
// history.jsonl, format v1: reading a file of records through the system-call seam,
// forward from an offset or backward from the end, in fixed chunks, so that memory stays
// flat whatever the file size (see docs/FORMAT.md, "Rules for readers"). Each line is
// decoded by record_codec.hpp.
#pragma once

#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// Size of the chunks files are read in: reading in fixed chunks keeps memory flat
/// whatever the file size.
inline constexpr std::size_t read_chunk = 64 * 1024;

/// Where a forward read of a file's lines ended.
struct lines_read {
    std::uint64_t consumed = 0; ///< end of the last complete line handed over
    std::uint64_t end = 0;      ///< how far the file was read
    bool stopped = false;       ///< on_line asked to stop
};

/// Splits the bytes of `fd` from offset `pos` to its end into lines, reading in fixed
/// chunks: calls `on_line(std::string_view line, std::uint64_t offset)` for each complete
/// line of at most `max_record` bytes (without its newline), and `on_long(std::uint64_t
/// offset)` for each longer one, which is never held in memory. on_line may return false
/// to stop the read there. Bytes after the last newline (a torn tail) are not handed over.
template <class Ops, class OnLine, class OnLong>
lines_read read_lines(Ops& ops, int fd, const std::string& path, std::uint64_t pos,
                      std::size_t max_record, OnLine&& on_line, OnLong&& on_long) {
    std::string buf(read_chunk, '\0');
    std::string partial;   // a line that began in an earlier chunk
    bool too_long = false; // the current line passed max_record: skipping to its end
    lines_read r;
    r.consumed = pos;
    for (;;) {
        const ssize_t n = pread_full(ops, fd, buf.data(), buf.size(), static_cast<off_t>(pos));
        if (n < 0)
            throw_errno("cannot read", path);
        if (n == 0)
            break;
        std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        std::size_t from = 0;
        while (from < chunk.size()) {
            const auto nl = chunk.find('\n', from);
            const std::size_t to = nl == std::string_view::npos ? chunk.size() : nl;
            const std::size_t piece = to - from;
            if (!too_long && partial.size() + piece > max_record) {
                too_long = true;
                partial.clear();
                partial.shrink_to_fit();
            }
            if (nl == std::string_view::npos) {
                if (!too_long)
                    partial.append(chunk.substr(from, piece));
                break;
            }
            const std::uint64_t line_start = r.consumed;
            bool go_on = true;
            if (too_long) {
                on_long(line_start);
            } else if (partial.empty()) {
                go_on = on_line(chunk.substr(from, piece), line_start);
            } else {
                partial.append(chunk.substr(from, piece));
                go_on = on_line(std::string_view(partial), line_start);
                partial.clear();
            }
            too_long = false;
            from = nl + 1;
            r.consumed = pos + from;
            if (!go_on) {
                r.end = r.consumed;
                r.stopped = true;
                return r;
            }
        }
        pos += static_cast<std::uint64_t>(n);
    }
    r.end = pos;
    return r;
}

/// Collects the exchanges of a forward read into `v`. After the first 16 it reserves
/// room, once, for as many as the rest of a file of `file_size` bytes holds at their mean
/// line length, but for no more than one per 512 bytes left and a sixteenth more (an
/// exchange takes 224 bytes on LP64 before its text, so what is reserved and never used
/// stays under half the file); past that the vector grows as usual. Grown from empty by
/// doubling, the vector copies its exchanges again into each new block, and once glibc
/// has raised its mmap threshold (when a large block is freed) those blocks come from the
/// heap: in a process that had done other work first, a full load took twice as long
/// (docs/PERFORMANCE.md, figure 5).
class exchange_collector {
public:
    exchange_collector(std::vector<exchange>& v, std::uint64_t file_size) noexcept
        : v_(v), file_size_(file_size) {}

    void operator()(exchange&& ex, std::string_view line) {
        seen_ += line.size() + 1; // empty if repaired: the mean then comes out lower
        if (v_.size() == sample && seen_ < file_size_) {
            const std::uint64_t left = file_size_ - seen_;
            const std::uint64_t mean = std::max<std::uint64_t>(seen_ / sample, 512);
            v_.reserve(v_.size() + static_cast<std::size_t>(left / mean + left / mean / 16 + 1));
        }
        v_.push_back(std::move(ex));
    }

private:
    static constexpr std::size_t sample = 16;
    std::vector<exchange>& v_;
    std::uint64_t file_size_;
    std::uint64_t seen_ = 0;
};

/// Reads `fd` forward from `st.consumed` to its end, line by line, into `st`. Lines
/// longer than `max_record` are skipped without being held in memory. Bytes after the
/// last newline (a torn tail) are reported and left unconsumed. `on_exchange` gets each
/// accepted exchange when `want_exchanges`, as `(exchange&&)` or, if it takes them,
/// `(exchange&&, std::string_view line)` with the line it was read from (empty when the
/// line had to be repaired to be read: it is then not the record); if it returns
/// bool, false stops the read after that exchange (no torn tail is then reported).
template <class Ops, class F>
void scan_forward(Ops& ops, int fd, const std::string& path, scan_state& st,
                  std::vector<diagnostic>& diags, std::size_t max_record, bool want_exchanges,
                  F&& on_exchange) {
    record_reader reader(diags);
    bool stop = false;
    std::string_view current;
    auto call = [&](exchange&& ex) {
        if constexpr (std::is_invocable_v<F&, exchange&&, std::string_view>)
            return on_exchange(std::move(ex),
                               reader.line_repaired() ? std::string_view() : current);
        else
            return on_exchange(std::move(ex));
    };
    auto deliver = [&](exchange&& ex) {
        if constexpr (std::is_same_v<decltype(call(std::move(ex))), bool>)
            stop = !call(std::move(ex));
        else
            call(std::move(ex));
    };
    const auto r = read_lines(
        ops, fd, path, st.consumed, max_record,
        [&](std::string_view line, std::uint64_t offset) {
            ++st.lines;
            current = line;
            reader.read_line(st, line, st.lines, offset, want_exchanges, deliver);
            return !stop;
        },
        [&](std::uint64_t offset) {
            ++st.lines;
            reader.report(st.lines, offset, too_long_reason(max_record));
        });
    st.consumed = r.consumed;
    if (!r.stopped && r.end > st.consumed)
        reader.report(st.lines + 1, st.consumed,
                      "incomplete last line (" + std::to_string(r.end - st.consumed) +
                          " bytes): a write that never finished; the next writer repairs it",
                      diagnostic_kind::torn_tail);
}

/// Reads the last `count` exchanges of the complete lines [0, end) of `fd`, walking
/// backwards from `end`, in file order. `total_lines` is the number of lines in
/// [0, end), for line numbers in diagnostics. Reads only as far back as needed.
template <class Ops>
std::vector<exchange> scan_backward(Ops& ops, int fd, const std::string& path, std::uint64_t end,
                                    std::uint64_t total_lines, std::size_t count,
                                    std::vector<diagnostic>& diags, std::size_t max_record) {
    // Newest first, seq strictly decreasing: a record whose seq does not exceed that of
    // an earlier one is skipped, as a forward reader skips it (a duplicate keeps the
    // first copy), so skipped records never use up the `count` asked for.
    struct found_exchange {
        exchange ex;
        std::uint64_t line_no, offset;
    };
    std::vector<found_exchange> found;
    if (count == 0 || end == 0)
        return {};
    record_reader reader(diags, false);
    scan_state scratch; // tail lines are read on their own; seq order is fixed below
    std::string buf(read_chunk, '\0');
    std::vector<std::string> pieces; // later parts of the current line, last part first
    std::size_t pieces_size = 0;
    bool too_long = false;
    std::uint64_t line_no = total_lines;
    std::uint64_t chunk_hi = end - 1; // the newline that ends the last line is not content
    std::string joined;

    auto finish_line = [&](std::string_view head, std::uint64_t start) {
        if (too_long || head.size() + pieces_size > max_record) {
            reader.report(line_no, start, too_long_reason(max_record));
        } else {
            std::string_view line = head;
            if (!pieces.empty()) {
                joined.assign(head);
                for (auto it = pieces.rbegin(); it != pieces.rend(); ++it)
                    joined += *it;
                line = joined;
            }
            reader.read_line(scratch, line, line_no, start, true, [&](exchange&& ex) {
                for (; !found.empty() && found.back().ex.seq <= ex.seq; found.pop_back())
                    reader.report(found.back().line_no, found.back().offset,
                                  "exchange seq " + std::to_string(found.back().ex.seq) +
                                      " repeats or goes back (last was " + std::to_string(ex.seq) +
                                      "): skipped",
                                  diagnostic_kind::out_of_order);
                found.push_back({std::move(ex), line_no, start});
            });
        }
        pieces.clear();
        pieces_size = 0;
        too_long = false;
        --line_no;
    };

    while (found.size() < count) {
        const std::uint64_t chunk_lo = chunk_hi > read_chunk ? chunk_hi - read_chunk : 0;
        const std::size_t len = static_cast<std::size_t>(chunk_hi - chunk_lo);
        const ssize_t n = pread_full(ops, fd, buf.data(), len, static_cast<off_t>(chunk_lo));
        if (n < 0)
            throw_errno("cannot read", path);
        if (static_cast<std::size_t>(n) != len)
            break; // the file shrank under us
        std::string_view chunk(buf.data(), len);
        std::size_t hi = len; // end (exclusive) of the unread part of the current line
        while (found.size() < count) {
            const auto nl = hi == 0 ? std::string_view::npos : chunk.rfind('\n', hi - 1);
            if (nl == std::string_view::npos)
                break;
            finish_line(chunk.substr(nl + 1, hi - nl - 1), chunk_lo + nl + 1);
            hi = nl;
        }
        if (found.size() >= count)
            break;
        if (chunk_lo == 0) {
            finish_line(chunk.substr(0, hi), 0);
            break;
        }
        if (!too_long) {
            pieces.emplace_back(chunk.substr(0, hi));
            pieces_size += hi;
            if (pieces_size > max_record) {
                too_long = true;
                pieces.clear();
                pieces_size = 0;
            }
        }
        chunk_hi = chunk_lo;
    }
    std::vector<exchange> ordered;
    ordered.reserve(found.size());
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
        const auto last = ordered.empty() ? 0 : ordered.back().seq;
        // Holes between the records read, unless a repair recorded them (a gap record)
        if (last != 0 && it->ex.seq != last + 1 && !reader.gap_recorded(last + 1, it->ex.seq - 1))
            reader.report(it->line_no, it->offset, missing_exchanges_reason(last, it->ex.seq),
                          diagnostic_kind::missing_exchanges);
        ordered.push_back(std::move(it->ex));
    }
    return ordered;
}

/// What line 1 of a history says.
struct history_header {
    bool present = false;      ///< line 1 is a session header this library reads
    std::uint64_t version = 0; ///< its format version (also when too new)
};

/// Reads line 1 of history `fd` (at `path`) whole, however long the header is, up to
/// `max_record` bytes: only the header on line 1 decides the file's format version.
/// Throws storage_error naming `path` when a read fails; a missing, cut or invalid
/// header is no error (present is false).
template <class Ops>
history_header read_history_header(Ops& ops, int fd, const std::string& path,
                                   std::size_t max_record) {
    std::string buf;
    std::size_t nl = std::string::npos;
    while (nl == std::string::npos && buf.size() <= max_record) {
        const std::size_t got = buf.size();
        buf.resize(got + read_chunk);
        const ssize_t n =
            pread_full(ops, fd, buf.data() + got, read_chunk, static_cast<off_t>(got));
        if (n < 0)
            throw_errno("cannot read", path);
        buf.resize(got + static_cast<std::size_t>(n));
        nl = buf.find('\n', got);
        if (static_cast<std::size_t>(n) < read_chunk)
            break; // end of file
    }
    history_header h;
    if (nl == std::string::npos)
        return h;
    boost::system::error_code ec;
    const json::value v = json::parse(std::string_view(buf).substr(0, nl), ec);
    if (ec || !v.is_object())
        return h;
    const auto* type = member(v.get_object(), "type");
    if (!type || !type->is_string() || type->get_string() != "session" ||
        !read_uint(v.get_object(), "version", h.version) || h.version == 0)
        return h;
    h.present = h.version <= history_format_version;
    return h;
}

} // namespace dexter::sessions::detail
