// SPDX-License-Identifier: BSL-1.0
// Verifying a history file, read-only (docs/FORMAT.md, "Verify and repair"): every line
// judged as the readers judge it (record_codec.hpp), streamed in fixed chunks
// (history_scan.hpp), so that memory stays flat whatever the file size. The verdict a
// line gets here is the one a repair acts on (history_repair.hpp), so that what verify
// reports is exactly what repair fixes.
#pragma once

#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/verify.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// The name of the clean copy a repair writes beside `history.jsonl` before renaming it
/// over: one left behind is a repair that was interrupted before its rename.
inline constexpr const char* repair_file_name = "history.jsonl.repair";

/// What becomes of one line of a history in a repaired copy.
struct line_verdict {
    enum class action {
        keep,     ///< copied as it is
        drop,     ///< skipped by readers: moved to quarantine
        reencode, ///< read only after replacing some text: quarantined, written re-encoded
    } what = action::keep;
    /// An unrecorded hole in seq that ends right before this line's exchange: a repair
    /// writes a gap record before the line.
    std::optional<seq_gap> gap_before;
    /// For reencode: the line to write instead, newline included.
    std::string replacement;
};

/// Judges the lines of one history, in order, as every reader does, and says what a
/// repair does with each. Problems go to `report` (damaged lines, holes).
class history_checker {
public:
    explicit history_checker(verify_report& report) : report_(report), reader_(diags_) {}

    /// Line `line_no` (without its newline), which starts at `offset`.
    line_verdict line(scan_state& st, std::string_view line, std::uint64_t line_no,
                      std::uint64_t offset) {
        line_verdict v;
        const std::uint64_t before = st.meta.exchange_count;
        std::optional<exchange> got;
        diags_.clear();
        reader_.read_line(st, line, line_no, offset, true,
                          [&](exchange&& ex) { got = std::move(ex); });
        for (auto& d : diags_) {
            if (d.kind == diagnostic_kind::missing_exchanges && got) {
                v.gap_before = seq_gap{before + 1, got->seq - 1};
                report_.gaps.push_back(*v.gap_before);
                continue;
            }
            if (d.kind == diagnostic_kind::text_replaced) {
                if (got) {
                    encode_exchange(v.replacement, *got);
                } else if (line_no == 1 && st.have_header) {
                    encode_header(v.replacement, st.meta);
                } else if (line.starts_with(R"({"type":"meta",)")) {
                    encode_meta(v.replacement, st.meta);
                }
                if (!v.replacement.empty() && v.what == line_verdict::action::keep)
                    v.what = line_verdict::action::reencode;
            } else {
                v.what = line_verdict::action::drop;
                v.replacement.clear();
            }
            report_.damaged.push_back(std::move(d));
        }
        if (v.what != line_verdict::action::drop && !line.empty())
            ++report_.records;
        return v;
    }

    /// A line longer than `max_record`, never held in memory: always dropped.
    void long_line(std::uint64_t line_no, std::uint64_t offset, std::size_t max_record) {
        report_.damaged.push_back({line_no, offset, too_long_reason(max_record)});
    }

private:
    verify_report& report_;
    std::vector<diagnostic> diags_;
    record_reader reader_;
};

/// Verifies history `fd` (at `path`) into `r`: its header, then every line, streamed;
/// `st` ends as a reader's state after the last complete line. Returns the file's size.
/// Throws storage_error naming `path` when a read fails.
template <class Ops>
std::uint64_t verify_history(Ops& ops, int fd, const std::string& path, std::size_t max_record,
                             verify_report& r, scan_state& st) {
    const auto header = read_history_header(ops, fd, path, max_record);
    if (header.version > history_format_version) {
        r.newer_version = header.version;
        return 0;
    }
    history_checker check(r);
    const auto lines = read_lines(
        ops, fd, path, 0, max_record,
        [&](std::string_view line, std::uint64_t offset) {
            check.line(st, line, ++st.lines, offset);
            return true;
        },
        [&](std::uint64_t offset) { check.long_line(++st.lines, offset, max_record); });
    st.consumed = lines.consumed;
    if (lines.end > lines.consumed)
        r.tail = torn_tail{st.lines + 1, lines.consumed, lines.end - lines.consumed};
    r.missing_header = !st.have_header;
    r.exchange_count = st.meta.exchange_count;
    return lines.end;
}

/// Compares what the index says of a session (`e`) with what a scan of its history
/// found (`st`, of the file with stat `sb`), into `r`. An entry that describes an older,
/// shorter version of the same file is only behind (changes.log brings it up to date
/// at the next list), not wrong; one that describes the very bytes read must agree.
inline void compare_index_entry(const index_entry& e, const scan_state& st, const struct stat& sb,
                                verify_report& r) {
    if (e.newer_version || e.ino != static_cast<std::uint64_t>(sb.st_ino))
        return; // another file: the next list reads it again
    const auto size = static_cast<std::uint64_t>(sb.st_size);
    if (e.size > size) {
        r.index_mismatch.push_back("the index describes " + std::to_string(e.size) +
                                   " bytes of history, the file has " + std::to_string(size));
        return;
    }
    if (e.size != st.consumed)
        return; // behind: written before the last saves
    auto differs = [&](const std::string& what, const std::string& index, const std::string& file) {
        r.index_mismatch.push_back("the index says " + what + " " + index + ", the history " +
                                   file);
    };
    if (e.meta.exchange_count != st.meta.exchange_count)
        differs("exchange count", std::to_string(e.meta.exchange_count),
                std::to_string(st.meta.exchange_count));
    if (e.lines != st.lines)
        differs("line count", std::to_string(e.lines), std::to_string(st.lines));
    if (e.meta.title != st.meta.title)
        differs("title", "\"" + e.meta.title + "\"", "\"" + st.meta.title + "\"");
    if (e.meta.pinned != st.meta.pinned)
        differs("pinned", e.meta.pinned ? "true" : "false", st.meta.pinned ? "true" : "false");
    if (e.no_header != !st.have_header)
        differs("header", e.no_header ? "missing" : "present",
                st.have_header ? "present" : "missing");
}

/// index.json as it is on disk, read without taking a lock or changing anything (a
/// verify may run on a read-only store). A missing index is no problem (it is a cache);
/// an unreadable, oversized or damaged one is added to `problems`, and read as empty.
template <class Ops>
index_data read_index_as_is(Ops& ops, int root_fd, const std::string& root, std::size_t max_bytes,
                            std::vector<std::string>& problems) {
    const std::string path = root + "/index.json";
    int err = 0;
    struct stat sb {};
    unique_fd fd = open_regular(ops, root_fd, "index.json", O_RDONLY | O_CLOEXEC, 0, err, &sb);
    if (!fd) {
        if (err != ENOENT)
            problems.push_back(path + " cannot be read (" + describe_errno(err) +
                               "); a repair moves a damaged one to quarantine and rebuilds it");
        return {};
    }
    if (static_cast<std::uint64_t>(sb.st_size) > max_bytes) {
        problems.push_back(path + " is larger than the index limit; a repair rebuilds it");
        return {};
    }
    std::string text(static_cast<std::size_t>(sb.st_size), '\0');
    if (pread_full(ops, fd.get(), text.data(), text.size(), 0) !=
        static_cast<ssize_t>(text.size())) {
        problems.push_back(path + " cannot be read (" + std::string(std::strerror(errno)) + ")");
        return {};
    }
    auto decoded = decode_index(text);
    if (decoded.state == index_decode::status::corrupt) {
        problems.push_back(path + " is damaged (" + decoded.why +
                           "); a repair moves it to quarantine and rebuilds it");
        return {};
    }
    if (decoded.state != index_decode::status::ok)
        return {}; // newer (left alone by design) or older (rebuilt quietly)
    return std::move(decoded.data);
}

} // namespace dexter::sessions::detail
