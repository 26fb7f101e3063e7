// SPDX-License-Identifier: BSL-1.0
// Repairing a history file (docs/FORMAT.md, "Verify and repair"), under the session's
// lease: each line judged as verify judges it (history_verify.hpp); what readers skip is
// copied to quarantine, byte for byte; the clean copy is written beside the history as
// `history.jsonl.repair`, synced, renamed over `history.jsonl`, and the directory synced.
// A kill at any instant leaves the old file or the new one, never neither; a file that
// cannot be read is never written over (a failed read throws before the rename).
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/history_verify.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/quarantine.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/verify.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dexter::sessions::detail {

/// What a repair needs of its store and session, for one call.
template <file_ops Ops>
struct repair_context {
    Ops& ops;
    quarantine<Ops>& bin;
    const change_log<Ops>& log;
    const std::string& channel;
    const session_id& id;
    int dir_fd;             ///< the session's directory
    int fd;                 ///< its history, holding the lease
    const std::string& dir; ///< the session directory's path, for messages
    std::size_t max_record;
    time_point now; ///< recorded in the gap records
};

/// Removes a clean copy left by an interrupted repair (`history.jsonl.repair`): it was
/// never renamed over the history, so the history is whole and the copy is redundant.
/// Returns whether there was one. Throws storage_error.
template <file_ops Ops>
bool remove_repair_leftover(Ops& ops, int dir_fd, const std::string& dir) {
    if (ops.unlinkat(dir_fd, repair_file_name, 0) < 0) {
        if (errno == ENOENT)
            return false;
        throw_errno("cannot remove the leftover of an interrupted repair",
                    dir + "/" + repair_file_name);
    }
    if (ops.fsync(dir_fd) < 0)
        throw_errno("cannot sync", dir);
    return true;
}

/// Writes the clean copy of the leased history into `history.jsonl.repair` and renames
/// it over `history.jsonl` (steps in the header comment), filling `out`. Throws
/// storage_error; until the rename nothing the readers see has changed (quarantine
/// copies made before a failure stay: they duplicate bytes still in the history).
template <file_ops Ops>
void rewrite_history(const repair_context<Ops>& c, repair_report& out) {
    const std::string path = c.dir + "/history.jsonl";
    const std::string tmp_path = c.dir + "/" + repair_file_name;
    remove_repair_leftover(c.ops, c.dir_fd, c.dir);
    unique_fd tmp(c.ops.openat(c.dir_fd, repair_file_name,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!tmp)
        throw_errno("cannot create the repaired copy", tmp_path);
    try {
        std::string buf;
        std::uint64_t written = 0;
        auto flush = [&] {
            if (const int e = append_all(c.ops, tmp.get(), buf, static_cast<off_t>(written)))
                throw_errno("cannot write the repaired copy", tmp_path, e);
            written += buf.size();
            buf.clear();
        };
        auto quarantine_range = [&](std::uint64_t from, std::uint64_t to, const std::string& what) {
            out.quarantine_files.push_back(
                c.bin.copy_bytes(c.fd, from, to, c.channel + "-" + c.id + "-" + what));
            ++out.quarantined_lines;
        };
        verify_report scratch;
        history_checker check(scratch);
        scan_state st;
        std::optional<std::pair<std::uint64_t, std::uint64_t>> long_line; // line, offset
        auto end_long_line = [&](std::uint64_t end) {
            if (long_line)
                quarantine_range(long_line->second, end, "line" + std::to_string(long_line->first));
            long_line.reset();
        };
        const auto lines = read_lines(
            c.ops, c.fd, path, 0, c.max_record,
            [&](std::string_view line, std::uint64_t offset) {
                end_long_line(offset);
                const std::uint64_t line_no = ++st.lines;
                const auto v = check.line(st, line, line_no, offset);
                if (v.gap_before) {
                    encode_gap(buf, v.gap_before->from, v.gap_before->through, c.now);
                    out.gaps_recorded.push_back(*v.gap_before);
                }
                switch (v.what) {
                case line_verdict::action::keep:
                    if (!line.empty()) {
                        buf.append(line);
                        buf += '\n';
                    }
                    break;
                case line_verdict::action::drop:
                    quarantine_range(offset, offset + line.size() + 1,
                                     "line" + std::to_string(line_no));
                    break;
                case line_verdict::action::reencode:
                    quarantine_range(offset, offset + line.size() + 1,
                                     "line" + std::to_string(line_no));
                    buf += v.replacement;
                    break;
                }
                if (buf.size() >= (1u << 20))
                    flush();
                return true;
            },
            [&](std::uint64_t offset) {
                end_long_line(offset);
                long_line.emplace(++st.lines, offset);
            });
        end_long_line(lines.consumed);
        if (lines.end > lines.consumed)
            quarantine_range(lines.consumed, lines.end, "tail");
        flush();
        if (c.ops.fdatasync(tmp.get()) < 0)
            throw_errno("cannot sync the repaired copy", tmp_path);
        {
            // Readers learn from changes.log that the history was replaced.
            change_lock<Ops> lock(c.ops, c.log, c.channel, c.id);
            if (c.ops.renameat(c.dir_fd, repair_file_name, c.dir_fd, "history.jsonl") < 0)
                throw_errno("cannot rename the repaired copy over the history", path);
        }
    } catch (...) {
        c.ops.unlinkat(c.dir_fd, repair_file_name, 0); // the history is untouched
        throw;
    }
    if (c.ops.fsync(c.dir_fd) < 0)
        throw_errno("cannot sync", c.dir);
    out.rewritten = true;
}

} // namespace dexter::sessions::detail
