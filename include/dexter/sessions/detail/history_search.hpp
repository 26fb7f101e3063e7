// SPDX-License-Identifier: BSL-1.0
// Searching one history file for a text without decoding what cannot match: each line
// is first tested as raw bytes for the text as this library's JSON writer spells it, and
// only the lines that pass are decoded and matched (query.hpp's rule). The file is read
// forward in fixed chunks (history_scan.hpp), so memory stays flat whatever its size.
#pragma once

#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions::detail {

/// `text` as it appears inside a JSON string this library writes: escaped, unquoted.
inline std::string json_escaped(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out.substr(1, out.size() - 2);
}

/// True when raw record `line` may hold a string that contains the text whose JSON
/// spelling is `escaped`: the bytes hold it (ASCII letters in either case), or the line
/// holds an escape that another writer may use where this library writes the character
/// itself (`\u`, `\/`), which a test of the bytes cannot see through. False means no
/// decoded string of the line can contain the text.
inline bool may_hold(std::string_view line, std::string_view escaped) noexcept {
    if (find_ignoring_ascii_case(line, escaped) != std::string_view::npos)
        return true;
    // One pass over the escapes: each backslash and the character it escapes.
    for (std::size_t b = line.find('\\'); b != std::string_view::npos && b + 1 < line.size();
         b = line.find('\\', b + 2))
        if (line[b + 1] == 'u' || line[b + 1] == '/')
            return true;
    return false;
}

/// Where the seq key of a line that canonical_exchange_seq() reads ends.
inline constexpr std::size_t seq_key_end = std::string_view(R"({"type":"exchange","seq":)").size();

/// Offers to `hits` the matches of `needle` (JSON spelling `escaped`) in the exchanges of
/// session `meta` stored in history `fd`, up to seq meta.exchange_count (what a listing
/// saw; exchanges saved since are left for the next search), keeping at most `limit`.
/// Lines that cannot match are not decoded, only their seq read for the order checks every
/// reader applies; the damaged lines that are decoded are reported in `diags`, as load()
/// reports them.
///
/// A line that was not decoded may be damaged, and a reader that decodes it skips it, so
/// its seq does not count: when a decoded exchange is skipped as a repeat after such a
/// line, the read cannot tell whether a full reader would keep it, and the session is read
/// again with every line decoded. That happens only in a history with repeated or
/// backward seqs.
template <class Ops>
void search_history(Ops& ops, int fd, const std::string& path, const session_meta& meta,
                    std::string_view needle, std::string_view escaped, std::size_t max_record,
                    std::size_t limit, hit_collector& hits, std::vector<diagnostic>& diags) {
    hit_collector found(limit);
    std::vector<diagnostic> reported;
    auto offer = [&](exchange&& ex) {
        if (ex.seq <= meta.exchange_count)
            if (auto h = match_exchange(meta, ex, needle))
                found.offer(std::move(*h));
    };
    record_reader reader(reported);
    scan_state st;
    st.meta.id = meta.id;
    std::uint64_t line_no = 0;
    bool noted = false, in_doubt = false;
    read_lines(
        ops, fd, path, 0, max_record,
        [&](std::string_view line, std::uint64_t offset) {
            ++line_no;
            if (line_no > 1) { // line 1 is decoded: it decides what the file is
                const auto seq = canonical_exchange_seq(line);
                if (seq && !may_hold(line, escaped) && !seq_may_repeat(line, seq_key_end)) {
                    if (*seq <= meta.exchange_count) {
                        reader.note_seq(st, *seq, line_no, offset);
                        noted = true;
                    }
                    return true;
                }
            }
            const auto repeats = reader.repeats();
            reader.read_line(st, line, line_no, offset, true, offer);
            in_doubt = noted && reader.repeats() != repeats;
            return !in_doubt;
        },
        [&](std::uint64_t offset) {
            ++line_no;
            reader.report(line_no, offset, too_long_reason(max_record));
        });
    if (in_doubt) {
        found = hit_collector(limit);
        reported.clear();
        scan_state full;
        full.meta.id = meta.id;
        scan_forward(ops, fd, path, full, reported, max_record, true, offer);
    }
    for (auto& h : found.take())
        hits.offer(std::move(h));
    diags.insert(diags.end(), std::make_move_iterator(reported.begin()),
                 std::make_move_iterator(reported.end()));
}

} // namespace dexter::sessions::detail
