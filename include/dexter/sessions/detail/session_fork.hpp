// SPDX-License-Identifier: BSL-1.0
// Forking a session in the file store (jsonl_store::fork()): the new session is built
// aside by session_builder.hpp, whole or not at all, from the source's history read
// forward in chunks. A line that begins as this library writes an exchange is copied as
// it is, without being decoded; any other line is read as a load reads it. The last line
// copied is decoded to make sure the copy ends where a load would end; when it does not
// decode, or a seq repeats or a timestamp goes back after a line copied undecoded (which
// a load might have skipped as damaged), the whole fork is made again decoding every
// line. So the fork loads as the source loads through its seq, and the metadata given to
// the index is what a scan of the fork's history finds.
//
// The source is read in chunks of fork_chunk bytes; the end of a line that begins as an
// exchange is found in the same pass that checks its bytes (canonical_line_end()), and
// each run of lines copied undecoded goes from the chunk to the new history in one
// write (session_builder::add_trusted_run()), not line by line through another buffer.
// Memory stays flat: a chunk, the builder's buffer, and a line longer than a chunk (at
// most the record limit) only while it is read.
#pragma once

#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/history_search.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/detail/session_builder.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>

#include <sys/stat.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions::detail {

/// The timestamp of a line that canonical_exchange_seq() reads as exchange `seq`, when
/// it follows the seq as this library writes it (`,"timestamp":"...",`); nothing
/// otherwise (the line must then be decoded).
inline std::optional<time_point> canonical_timestamp(std::string_view line,
                                                     std::uint64_t seq) noexcept {
    constexpr std::string_view key = R"("timestamp":")";
    std::size_t pos = seq_key_end + 1;
    for (std::uint64_t s = seq; s >= 10; s /= 10)
        ++pos;
    pos += 1; // the comma after the seq
    if (line.substr(pos, key.size()) != key)
        return std::nullopt;
    pos += key.size();
    const auto end = line.find('"', pos);
    if (end == std::string_view::npos || end + 1 >= line.size() || line[end + 1] != ',')
        return std::nullopt;
    return parse_timestamp(line.substr(pos, end - pos));
}

/// Where the line at the start of `bytes` ends, when `bytes` begins with the canonical
/// prefix of an exchange through its seq key (seq_key_end bytes): the index of its newline, or
/// npos when `bytes` holds none. With a newline found, `hides` tells whether the line
/// may say more about its seq than its first bytes: it holds a `\u` escape (which may
/// spell a key), or the bytes `"seq"` after its seq key (a second seq key, which a
/// decoder takes). One pass over the bytes, 32 at a time where SSE2 is there: the
/// newline, a backslash followed by `u` and an `e` followed by `q` (the rare bytes
/// `"seq"` need) are looked for together.
inline std::size_t canonical_line_end(std::string_view bytes, bool& hides) noexcept {
    hides = false;
    const char* const p = bytes.data();
    const std::size_t n = bytes.size();
    const auto seq_at = [&](std::size_t q) { // q > 3 here
        return q + 1 < n && bytes.substr(q - 3, 5) == R"("seq")";
    };
    std::size_t i = seq_key_end; // the canonical prefix holds none of them
#if defined(__SSE2__)
    const __m128i newline = _mm_set1_epi8('\n'), backslash = _mm_set1_epi8('\\'),
                  u = _mm_set1_epi8('u'), e = _mm_set1_epi8('e'), q = _mm_set1_epi8('q');
    struct marks {
        __m128i ends, escapes, eqs;
    };
    const auto marks_at = [&](std::size_t at) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
        const __m128i before = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at - 1));
        return marks{_mm_cmpeq_epi8(v, newline),
                     _mm_and_si128(_mm_cmpeq_epi8(before, backslash), _mm_cmpeq_epi8(v, u)),
                     _mm_and_si128(_mm_cmpeq_epi8(before, e), _mm_cmpeq_epi8(v, q))};
    };
    const auto any = [](const marks& m) {
        return _mm_or_si128(m.ends, _mm_or_si128(m.escapes, m.eqs));
    };
    const auto bits = [](__m128i c) { return static_cast<unsigned>(_mm_movemask_epi8(c)); };
    // The marks of 16 bytes at `at`: whether the line ends there (its end in `end`).
    const auto look = [&](const marks& m, std::size_t at, std::size_t& end) {
        const unsigned ends = bits(m.ends);
        const unsigned before_end = ends != 0 ? (ends & (0u - ends)) - 1 : 0xffffu;
        if ((bits(m.escapes) & before_end) != 0)
            hides = true;
        for (unsigned c = bits(m.eqs) & before_end; c != 0 && !hides; c &= c - 1)
            hides = seq_at(at + static_cast<std::size_t>(__builtin_ctz(c)));
        if (ends == 0)
            return false;
        end = at + static_cast<std::size_t>(__builtin_ctz(ends));
        return true;
    };
    for (; i + 32 <= n; i += 32) {
        const marks lo = marks_at(i), hi = marks_at(i + 16);
        if (bits(_mm_or_si128(any(lo), any(hi))) == 0)
            continue;
        std::size_t end = 0;
        if (look(lo, i, end) || look(hi, i + 16, end))
            return end;
        if (hides) // the rest is only searched for the newline
            return bytes.find('\n', i + 32);
    }
#endif
    for (; i < n; ++i) {
        if (p[i] == '\n')
            return i;
        if ((p[i] == 'u' && p[i - 1] == '\\') || (p[i] == 'q' && p[i - 1] == 'e' && seq_at(i)))
            hides = true;
    }
    return std::string_view::npos;
}

/// Size of the chunks a fork reads its source in, and so the most a run of lines copied
/// as they are takes in one write.
inline constexpr std::size_t fork_chunk = 128 * 1024;

/// What a fork copied into its new session.
struct fork_copy {
    std::uint64_t last_seq = 0;    ///< the seq of the last exchange copied (0: none)
    time_point newest{};           ///< the latest timestamp of the exchanges copied
    std::uint64_t lines = 1;       ///< lines of the new history, its header included
    std::uint64_t last_offset = 0; ///< where the last exchange copied is in the source
    std::uint64_t last_size = 0;   ///< and its size, newline excluded
    bool last_undecoded = false;   ///< the last exchange copied was not decoded
};

/// Thrown (and caught) inside build_fork() when a copy that did not decode every line
/// cannot be trusted to end where a load ends.
struct fork_fallback {};

/// One complete line of a source handed over by copy_lines_fast().
struct fork_line {
    std::string_view text;      ///< without its newline
    std::uint64_t offset = 0;   ///< where it starts in the source
    std::uint64_t line_no = 0;  ///< 1 for the first line
    bool hides = true;          ///< not an exchange's canonical start, or may hide a seq
    std::uint64_t copy_seq = 0; ///< set by copy_as_it_is()
    /// The line is exchange `seq`, to be copied as it is (with its newline).
    void copy_as_it_is(std::uint64_t seq) noexcept { copy_seq = seq; }
};

/// Reads history `fd` (at `path`) forward from its start in chunks of fork_chunk bytes and
/// hands each complete line of at most `max_record` bytes to `on_line(fork_line&, const
/// auto& write_run)`, which returns false to stop; longer lines are skipped without being
/// held, a torn tail is not handed over, and `line_no` counts every line (as read_lines()
/// does). A line on_line marks with copy_as_it_is() is added to `b` with the lines so
/// marked right before it, as one run written from the chunk (add_trusted_run()) when
/// on_line calls write_run() (which it must do before it adds anything else to `b`), when
/// a line not so marked comes between, or before the chunk is read over. One that does
/// not fit the record limit with its newline is added by add_trusted(), which refuses
/// it. Throws storage_error (a read fails), what `b` and on_line throw.
template <file_ops Ops, class OnLine>
void copy_lines_fast(Ops& ops, int fd, const std::string& path, std::size_t max_record,
                     session_builder<Ops>& b, std::uint64_t& line_no, OnLine&& on_line) {
    constexpr std::string_view prefix = R"({"type":"exchange","seq":)";
    static_assert(prefix.size() == seq_key_end);
    std::string buf(fork_chunk, '\0');
    std::size_t begin = 0, valid = 0;       // buf[begin, valid): read, not yet handed over
    std::uint64_t pos = 0;                  // where buf[valid] is in the source
    std::size_t run_begin = 0, run_end = 0; // buf[run_begin, run_end): lines to copy
    std::uint64_t run_first = 0, run_last = 0;
    bool skipping = false; // inside a line longer than max_record
    const auto write_run = [&] {
        if (run_end > run_begin)
            b.add_trusted_run(std::string_view(buf).substr(run_begin, run_end - run_begin),
                              run_first, run_last);
        run_begin = run_end = 0;
    };
    for (bool go_on = true; go_on;) {
        write_run();
        if (begin > 0) { // the start of a line that goes on in the next chunk
            std::copy(buf.begin() + static_cast<std::ptrdiff_t>(begin),
                      buf.begin() + static_cast<std::ptrdiff_t>(valid), buf.begin());
            valid -= begin;
            begin = 0;
        }
        if (buf.size() > fork_chunk && valid < fork_chunk) { // a long line is done
            buf.resize(fork_chunk);
            buf.shrink_to_fit();
        }
        if (valid == buf.size()) // a line longer than a chunk, within max_record
            buf.resize(max_record < buf.size() * 2 ? max_record + 1 : buf.size() * 2);
        const ssize_t n =
            pread_full(ops, fd, buf.data() + valid, buf.size() - valid, static_cast<off_t>(pos));
        if (n < 0)
            throw_errno("cannot read", path);
        if (n == 0)
            break; // what is left is a torn tail
        pos += static_cast<std::uint64_t>(n);
        valid += static_cast<std::size_t>(n);
        while (go_on && begin < valid) {
            const std::string_view rest(buf.data() + begin, valid - begin);
            fork_line l;
            std::size_t end = std::string_view::npos;
            if (skipping || !rest.starts_with(prefix))
                end = rest.find('\n');
            else
                end = canonical_line_end(rest, l.hides);
            if (end == std::string_view::npos) {
                if (skipping || rest.size() > max_record) {
                    skipping = true; // too long: its bytes are dropped
                    begin = valid;
                }
                break;
            }
            l.offset = pos - valid + begin;
            begin += end + 1;
            l.line_no = ++line_no;
            if (skipping || end > max_record) {
                skipping = false;
                continue;
            }
            l.text = rest.substr(0, end);
            go_on = on_line(l, write_run);
            if (l.copy_seq == 0)
                continue;
            const std::size_t at = begin - end - 1;
            if (run_end != at)
                write_run();            // a line not copied as it is came between
            if (end + 1 > max_record) { // refused, as a line this long is by a save
                b.add_trusted(l.copy_seq, l.text);
                continue;
            }
            if (run_end == run_begin) {
                run_begin = at;
                run_first = l.copy_seq;
            }
            run_end = begin;
            run_last = l.copy_seq;
        }
    }
    write_run();
}

/// Copies exchanges 1..through of history `fd` (at `path`) into `b`, as a load of it
/// reads them: damaged lines, meta records, headers after line 1, records of unknown
/// types, lines over `max_record` bytes and exchanges whose seq does not grow are left
/// out. With `fast`, canonical exchange lines are copied without being decoded, in runs
/// written from the chunk they were read into (see the comment at the top); a repeated
/// seq or a timestamp that goes back after such a copy, or a last line copied that does
/// not decode as the exchange it starts as, throws fork_fallback. Without `fast`, each
/// line is read by read_lines() and decoded. Returns the version of a history in a newer
/// format (nothing copied then), else 0 with `out` filled in. Throws storage_error (a
/// read fails), what `b` throws, fork_fallback (only with `fast`).
template <file_ops Ops>
std::uint64_t copy_exchanges(Ops& ops, int fd, const std::string& path, std::uint64_t through,
                             std::size_t max_record, bool fast, session_builder<Ops>& b,
                             fork_copy& out) {
    std::vector<diagnostic> diags; // a load reports them; a fork does not
    record_reader reader(diags);
    scan_state st;
    std::uint64_t line_no = 0;
    bool stop = false, copied_undecoded = false;
    std::optional<time_point> latest; // of the exchanges copied
    auto copied = [&](std::uint64_t seq, time_point ts, std::uint64_t offset, std::size_t size,
                      bool undecoded) {
        // While timestamps never go back, the latest is that of the last line copied,
        // which is decoded at the end: a line copied undecoded that a load would skip
        // (damaged after its first bytes) then cannot make updated_at differ either.
        if ((copied_undecoded || undecoded) && latest && ts < *latest)
            throw fork_fallback{};
        latest = std::max(latest.value_or(ts), ts);
        out.last_seq = seq;
        out.newest = std::max(out.newest, ts);
        ++out.lines;
        out.last_offset = offset;
        out.last_size = size;
        out.last_undecoded = undecoded;
        copied_undecoded = copied_undecoded || undecoded;
        stop = seq == through;
    };
    // A seq that repeats may repeat one of a line copied without being decoded, which a
    // load, finding it damaged, would have skipped: then every line is decoded.
    const auto check_repeats = [&](std::uint64_t repeats_before) {
        if (copied_undecoded && reader.repeats() != repeats_before)
            throw fork_fallback{};
    };
    const auto decode = [&](std::string_view line, std::uint64_t offset) {
        const auto repeats = reader.repeats();
        reader.read_line(st, line, line_no, offset, true, [&](exchange&& ex) {
            if (ex.seq > through) {
                stop = true;
                return;
            }
            b.add(ex, reader.line_repaired() ? std::string_view() : line);
            copied(ex.seq, ex.timestamp, offset, line.size(), false);
        });
        check_repeats(repeats);
        return !stop && st.newer_version == 0;
    };
    if (fast)
        copy_lines_fast(
            ops, fd, path, max_record, b, line_no, [&](fork_line& l, const auto& write_run) {
                std::optional<std::uint64_t> seq;
                std::optional<time_point> ts;
                if (l.line_no > 1 && !l.hides && (seq = canonical_exchange_seq(l.text)) &&
                    *seq <= through && l.text.back() == '}')
                    ts = canonical_timestamp(l.text, *seq);
                if (!ts) {
                    write_run();
                    return decode(l.text, l.offset);
                }
                const auto repeats = reader.repeats();
                if (reader.note_seq(st, *seq, line_no, l.offset)) {
                    l.copy_as_it_is(*seq);
                    copied(*seq, *ts, l.offset, l.text.size(), true);
                }
                check_repeats(repeats);
                return !stop;
            });
    else
        read_lines(
            ops, fd, path, 0, max_record,
            [&](std::string_view line, std::uint64_t offset) {
                ++line_no;
                return decode(line, offset);
            },
            [&](std::uint64_t) { ++line_no; });
    if (st.newer_version)
        return st.newer_version;
    if (fast && out.last_undecoded) {
        // The last line copied must be the exchange a load reads there.
        std::string line(static_cast<std::size_t>(out.last_size), '\0');
        if (pread_full(ops, fd, line.data(), line.size(), static_cast<off_t>(out.last_offset)) !=
            static_cast<ssize_t>(line.size()))
            throw fork_fallback{};
        std::vector<diagnostic> ignored;
        record_reader check(ignored);
        scan_state scratch;
        bool same = false;
        const auto ts = canonical_timestamp(line, out.last_seq);
        check.read_line(scratch, line, 2, out.last_offset, true, [&](exchange&& ex) {
            same = ex.seq == out.last_seq && ts && ex.timestamp == *ts;
        });
        if (!same)
            throw fork_fallback{};
    }
    return 0;
}

/// The new session a fork made, as a scan of its history would find it.
struct fork_made {
    scan_state state;    ///< its metadata, size and lines
    struct stat written; ///< its history's stat before the rename (st_ino 0: unknown)
};

/// Creates session `fork.id` holding exchanges 1..through of history `fd` (at `path`),
/// whole or not at all, with fork's title, extra, created_at and forked_from, not
/// pinned (storage.hpp, forks_sessions), and sets fork.exchange_count, fork.updated_at
/// and fork.pinned. Returns nothing, without writing, when `<channel>/<fork.id>` exists.
/// Calls `on_newer(version)` (which must throw) for a history in a newer format. Throws
/// error (no exchange to copy), session_exists, invalid_input, storage_error; on throw
/// nothing of the fork remains. `on_unsynced` is called as build_whole_session() calls it.
template <file_ops Ops, class OnNewer, class OnUnsynced>
std::optional<fork_made> build_fork(const build_context<Ops>& c, int fd, const std::string& path,
                                    std::uint64_t through, session_meta& fork, OnNewer&& on_newer,
                                    OnUnsynced&& on_unsynced) {
    struct stat st {};
    if (c.place.ops.fstatat(c.place.channel_fd, fork.id.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        return std::nullopt;
    if (errno != ENOENT) // only "no such file" means the id is free
        throw_errno("cannot examine session '" + fork.id + "'", c.place.session_path(fork.id));
    fork.pinned = false;
    fork.exchange_count = 0;
    fork.updated_at = fork.created_at;
    for (bool fast : {true, false}) {
        try {
            session_builder<Ops> b(c, fork);
            fork_copy copy;
            copy.newest = fork.created_at;
            if (const auto v = copy_exchanges(c.place.ops, fd, path, through, c.max_record_bytes,
                                              fast, b, copy))
                on_newer(v);
            if (copy.last_seq == 0)
                throw error("cannot fork at exchange " + std::to_string(through) +
                            ": none of the exchanges could be read (the session is damaged, or "
                            "was deleted meanwhile); nothing was created");
            fork_made made;
            made.state.consumed = b.size();
            made.state.lines = copy.lines;
            made.state.have_header = true;
            if (const int e = b.commit(&made.written))
                on_unsynced(e);
            fork.exchange_count = copy.last_seq;
            fork.updated_at = copy.newest;
            made.state.meta = fork;
            return made;
        } catch (const fork_fallback&) {
            // the builder is gone with its directory: made again, decoding every line
        }
    }
    throw error("cannot fork: the history could not be copied"); // not reached
}

} // namespace dexter::sessions::detail
