// SPDX-License-Identifier: BSL-1.0
// What verifying a store finds, and what repairing it did (storage.hpp: verifies_sessions,
// repairs_sessions; docs/FORMAT.md, "Verify and repair").
#pragma once

#include <dexter/sessions/types.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// Exchanges from..through missing from a session (a hole in seq).
struct seq_gap {
    std::uint64_t from = 0;
    std::uint64_t through = 0;

    friend bool operator==(const seq_gap&, const seq_gap&) = default;
};

/// Bytes after a history's last complete line: a write that never finished.
struct torn_tail {
    std::uint64_t line = 0;   ///< the line it would have been (1-based)
    std::uint64_t offset = 0; ///< where it starts
    std::uint64_t bytes = 0;  ///< how long it is
};

/// What verify() found in one session. Every field but id and records is a problem.
struct verify_report {
    session_id id;
    /// Records read and kept, header included (what a repair keeps).
    std::uint64_t records = 0;
    /// The seq of its last exchange (or recorded gap), as a reader counts it.
    std::uint64_t exchange_count = 0;
    /// Lines a reader skips, or reads only after replacing some of their text: line,
    /// offset, reason, kind (damaged_line, out_of_order, text_replaced).
    std::vector<diagnostic> damaged;
    std::optional<torn_tail> tail;
    /// Holes in seq that no gap record accounts for.
    std::vector<seq_gap> gaps;
    /// Nonzero: the history is in this newer format version; nothing else was read.
    std::uint64_t newer_version = 0;
    /// Line 1 is not a valid session header (docs/FORMAT.md): the session is read-only.
    bool missing_header = false;
    /// How the store's index disagrees with the history, one sentence each.
    std::vector<std::string> index_mismatch;
    /// Files of an interrupted repair or write left in the session's directory.
    std::vector<std::string> leftovers;
    /// Why the history could not be read at all (permission, I/O error); empty if it was.
    std::string unreadable;

    /// True when nothing is wrong.
    [[nodiscard]] bool ok() const noexcept {
        return damaged.empty() && !tail && gaps.empty() && newer_version == 0 && !missing_header &&
               index_mismatch.empty() && leftovers.empty() && unreadable.empty();
    }
};

/// What verify_all() found in the whole store.
struct store_verify_report {
    /// Every session, clean or not, in id order.
    std::vector<verify_report> sessions;
    /// Problems of the store itself (a damaged or newer index.json, an index entry whose
    /// history is gone), one sentence each.
    std::vector<std::string> problems;
    /// What interrupted operations left behind (`.deleted-*`, `.new-*`, temporary
    /// files), as paths.
    std::vector<std::string> leftovers;
    /// What the quarantine holds: it is where suspect bytes are kept, not a problem.
    std::uint64_t quarantine_files = 0;
    std::uint64_t quarantine_bytes = 0;

    /// True when no session has a problem, and the store has none either.
    [[nodiscard]] bool ok() const noexcept {
        return problems.empty() && leftovers.empty() &&
               std::all_of(sessions.begin(), sessions.end(),
                           [](const verify_report& r) { return r.ok(); });
    }
};

/// What repair() did to one session.
struct repair_report {
    session_id id;
    /// False when the store has nothing a repair could fix (the session was clean, or
    /// the store cannot be damaged this way: see `what`).
    bool needed = false;
    /// The history was rewritten (a clean copy renamed over it).
    bool rewritten = false;
    /// Lines moved to quarantine (a torn tail counts as one).
    std::uint64_t quarantined_lines = 0;
    /// Where they went.
    std::vector<std::string> quarantine_files;
    /// The holes recorded as gap records in the clean file.
    std::vector<seq_gap> gaps_recorded;
    /// One sentence saying what was done, or why nothing was needed.
    std::string what;
    /// For repair_all(): why this session could not be repaired (the others go on);
    /// empty on success.
    std::string error;
};

// --- JSON (json::value_from), as dexter --verify --json prints them -----------------

inline void tag_invoke(json::value_from_tag, json::value& v, const seq_gap& g) {
    v = {{"from", g.from}, {"through", g.through}};
}

inline void tag_invoke(json::value_from_tag, json::value& v, const torn_tail& t) {
    v = {{"line", t.line}, {"offset", t.offset}, {"bytes", t.bytes}};
}

/// {"id", "ok", "records", "exchange_count", "damaged": [diagnostic...], "torn_tail"
/// (object or null), "gaps": [{"from","through"}...], "newer_version" (0: none),
/// "missing_header", "index_mismatch": [text...], "leftovers": [path...], "unreadable"}.
inline void tag_invoke(json::value_from_tag, json::value& v, const verify_report& r) {
    json::object o;
    o["id"] = r.id;
    o["ok"] = r.ok();
    o["records"] = r.records;
    o["exchange_count"] = r.exchange_count;
    o["damaged"] = json::value_from(r.damaged);
    o["torn_tail"] = r.tail ? json::value_from(*r.tail) : json::value(nullptr);
    o["gaps"] = json::value_from(r.gaps);
    o["newer_version"] = r.newer_version;
    o["missing_header"] = r.missing_header;
    o["index_mismatch"] = json::value_from(r.index_mismatch);
    o["leftovers"] = json::value_from(r.leftovers);
    o["unreadable"] = r.unreadable;
    v = std::move(o);
}

/// {"ok", "sessions": [verify_report...], "problems": [text...], "leftovers": [path...],
/// "quarantine": {"files", "bytes"}}.
inline void tag_invoke(json::value_from_tag, json::value& v, const store_verify_report& r) {
    json::object o;
    o["ok"] = r.ok();
    o["sessions"] = json::value_from(r.sessions);
    o["problems"] = json::value_from(r.problems);
    o["leftovers"] = json::value_from(r.leftovers);
    o["quarantine"] = {{"files", r.quarantine_files}, {"bytes", r.quarantine_bytes}};
    v = std::move(o);
}

} // namespace dexter::sessions
