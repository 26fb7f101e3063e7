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

/// Whether canonical exchange line `line` may say more about its seq than its first
/// bytes: it holds a `\u` escape (which may spell a key), or the bytes `"seq"` after its
/// seq key (a second seq key, which a decoder takes). One pass over the line, 16 bytes at
/// a time where SSE2 is there; the same answer as seq_may_repeat() plus a search for
/// `\u`, which both stop at every `q` and every backslash.
inline bool may_hide_a_seq(std::string_view line) noexcept {
    const auto seq_at = [&](std::size_t q) {
        return q >= 3 && q + 1 < line.size() && line.substr(q - 3, 5) == R"("seq")";
    };
    std::size_t i = seq_key_end; // the canonical prefix holds neither
#if defined(__SSE2__)
    const __m128i backslash = _mm_set1_epi8('\\'), u = _mm_set1_epi8('u'), q = _mm_set1_epi8('q');
    for (; i + 16 <= line.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(line.data() + i));
        const auto bits = [&](__m128i c) {
            return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, c)));
        };
        const unsigned before = line[i - 1] == '\\' ? 1u : 0u;
        if ((((bits(backslash) << 1) | before) & bits(u)) != 0)
            return true;
        for (unsigned m = bits(q); m != 0; m &= m - 1)
            if (seq_at(i + static_cast<std::size_t>(__builtin_ctz(m))))
                return true;
    }
#endif
    for (; i < line.size(); ++i)
        if ((line[i] == 'u' && line[i - 1] == '\\') || (line[i] == 'q' && seq_at(i)))
            return true;
    return false;
}

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

/// Copies exchanges 1..through of history `fd` (at `path`) into `b`, as a load of it
/// reads them: damaged lines, meta records, headers after line 1, records of unknown
/// types, lines over `max_record` bytes and exchanges whose seq does not grow are left
/// out. With `fast`, canonical exchange lines are copied without being decoded (see the
/// comment at the top); a repeated seq or a timestamp that goes back after such a copy,
/// or a last line copied that does not decode as the exchange it starts as, throws
/// fork_fallback. Returns the version of a
/// history in a newer format (nothing copied then), else 0 with `out` filled in. Throws what
/// read_lines() and `b` throw, fork_fallback (only with `fast`).
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
    read_lines(
        ops, fd, path, 0, max_record,
        [&](std::string_view line, std::uint64_t offset) {
            ++line_no;
            // A seq that repeats may repeat one of a line copied without being decoded,
            // which a load, finding it damaged, would have skipped: then every line is
            // decoded.
            const auto repeats = reader.repeats();
            const auto check_repeats = [&] {
                if (copied_undecoded && reader.repeats() != repeats)
                    throw fork_fallback{};
            };
            if (fast && line_no > 1) {
                const auto seq = canonical_exchange_seq(line);
                if (seq && *seq <= through && line.back() == '}' && !may_hide_a_seq(line)) {
                    if (const auto ts = canonical_timestamp(line, *seq)) {
                        if (reader.note_seq(st, *seq, line_no, offset)) {
                            b.add_trusted(*seq, line);
                            copied(*seq, *ts, offset, line.size(), true);
                        }
                        check_repeats();
                        return !stop;
                    }
                }
            }
            reader.read_line(st, line, line_no, offset, true, [&](exchange&& ex) {
                if (ex.seq > through) {
                    stop = true;
                    return;
                }
                b.add(ex, reader.line_repaired() ? std::string_view() : line);
                copied(ex.seq, ex.timestamp, offset, line.size(), false);
            });
            check_repeats();
            return !stop && st.newer_version == 0;
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
