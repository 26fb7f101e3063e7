// SPDX-License-Identifier: BSL-1.0
// The values a session store keeps: session metadata, exchanges, loaded sessions, and
// their JSON mapping (Boost.JSON, through tag_invoke overloads in this namespace).
#pragma once

#include <dexter/sessions/error.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/json/conversion.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/system/result.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions {

namespace json = boost::json;

/// Wall-clock instants as stored: UTC, millisecond resolution.
using time_point = std::chrono::sys_time<std::chrono::milliseconds>;

/// A session id: exactly 8 characters of `[0-9a-z]` (see id.hpp for the rules).
using session_id = std::string;

/// Where a forked session came from: the session it was copied from, and the last
/// exchange copied.
struct session_origin {
    session_id id;
    std::uint64_t seq = 0;

    friend bool operator==(const session_origin&, const session_origin&) = default;
};

/// Metadata of one session. `exchange_count` is the `seq` of the last exchange.
struct session_meta {
    session_id id;
    std::string title;
    time_point created_at{};
    time_point updated_at{};
    std::uint64_t exchange_count = 0;
    /// Host-defined fields, kept as they are.
    json::object extra;
    /// A pinned session is never moved to the trash by session_manager::prune().
    bool pinned = false;
    /// Set on a session made by session_manager::fork_session(), for good.
    std::optional<session_origin> forked_from;

    friend bool operator==(const session_meta&, const session_meta&) = default;
};

/// A session in the trash (session_manager::delete_session()), with the time it was
/// moved there.
struct trashed_session {
    session_meta meta;
    time_point deleted_at{};

    friend bool operator==(const trashed_session&, const trashed_session&) = default;
};

/// One completed question/answer exchange. `seq` starts at 1 and grows by 1.
struct exchange {
    std::uint64_t seq = 0;
    time_point timestamp{};
    std::string query;
    std::string answer;
    std::optional<std::string> summary;
    std::optional<std::string> model;
    std::optional<std::uint64_t> duration_ms;
    /// Tool invocations made while answering, as the host recorded them.
    json::array tool_calls;
    /// Host-defined fields, kept as they are.
    json::object extra;

    friend bool operator==(const exchange&, const exchange&) = default;
};

/// What kind of thing a diagnostic reports, so that a host can count and word them
/// without reading `reason`.
enum class diagnostic_kind : std::uint8_t {
    /// A line that could not be read as a record (not JSON, a bad exchange, longer
    /// than the record limit, a header after line 1): skipped.
    damaged_line,
    /// An exchange whose seq repeats or goes back: skipped (the first copy counts).
    out_of_order,
    /// Exchanges missing between two records that were read (a hole in seq).
    missing_exchanges,
    /// A record read after a repair of its text (a lone UTF-16 surrogate escape
    /// replaced by U+FFFD): loaded, not as written.
    text_replaced,
    /// Bytes after the last newline (a write that never finished), left in place by a
    /// reader that does not write.
    torn_tail,
    /// A torn tail that a writer moved to quarantine before appending.
    tail_repaired,
    /// Line 1 is not a valid session header: the session loads, read-only.
    missing_header,
    /// The store's index was unusable and was rebuilt from the history files.
    index_rebuilt,
    /// Any other store-level note (a directory that could not be synced, a store on NFS).
    store_note,
};

/// The word for a diagnostic_kind, as in dexter's JSON output: "damaged_line", ...
[[nodiscard]] constexpr std::string_view to_string(diagnostic_kind k) noexcept {
    switch (k) {
    case diagnostic_kind::damaged_line:
        return "damaged_line";
    case diagnostic_kind::out_of_order:
        return "out_of_order";
    case diagnostic_kind::missing_exchanges:
        return "missing_exchanges";
    case diagnostic_kind::text_replaced:
        return "text_replaced";
    case diagnostic_kind::torn_tail:
        return "torn_tail";
    case diagnostic_kind::tail_repaired:
        return "tail_repaired";
    case diagnostic_kind::missing_header:
        return "missing_header";
    case diagnostic_kind::index_rebuilt:
        return "index_rebuilt";
    case diagnostic_kind::store_note:
        return "store_note";
    }
    return "store_note";
}

/// Something a loader skipped or repaired: where, why, and what kind of thing it is.
struct diagnostic {
    std::uint64_t line = 0;   ///< 1-based line number in the source, 0 when not line-based
    std::uint64_t offset = 0; ///< byte offset of the start of the skipped range
    std::string reason;
    diagnostic_kind kind = diagnostic_kind::damaged_line;

    friend bool operator==(const diagnostic&, const diagnostic&) = default;
};

/// A session as read back from storage: its metadata, the exchanges that were asked
/// for (all of them, or the most recent ones), and what the loader had to skip.
struct loaded_session {
    session_meta meta;
    std::vector<exchange> exchanges;
    std::vector<diagnostic> diagnostics;
};

/// How a History policy will send its turns to the model: with their full answer, and
/// as summaries (chat_history::context()).
struct context_shape {
    std::size_t in_full = 0;
    std::size_t as_summaries = 0;

    friend bool operator==(const context_shape&, const context_shape&) = default;
};

/// What a resume rebuilt, for a host to show: how much of the session was read, what
/// the model will be sent, and what was skipped or repaired on the way.
struct resume_report {
    /// The session's exchange count (the seq of its newest exchange).
    std::uint64_t exchanges_on_disk = 0;
    /// Exchanges loaded and replayed into the history (the newest ones).
    std::size_t exchanges_loaded = 0;
    /// Turns the history will send in full and as summaries, when the History policy
    /// tells (describes_context); otherwise empty.
    std::optional<context_shape> context;
    /// What the load met in the part of the session it read, in file order: lines
    /// skipped, holes, repaired text, a torn tail moved to quarantine, a missing header.
    /// A resume reads only the end of a long session: verify reads all of it.
    std::vector<diagnostic> session;
    /// What the store reported while resolving and opening the session (and anything
    /// it had reported since the host last called take_diagnostics()): an index rebuilt,
    /// a torn tail repaired, a directory that could not be synced.
    std::vector<diagnostic> store;

    /// How many diagnostics of kind `k` the session's load reported.
    [[nodiscard]] std::size_t count(diagnostic_kind k) const noexcept {
        return static_cast<std::size_t>(std::count_if(
            session.begin(), session.end(), [k](const diagnostic& d) { return d.kind == k; }));
    }
    /// Lines skipped: damaged lines and records out of order.
    [[nodiscard]] std::size_t lines_skipped() const noexcept {
        return count(diagnostic_kind::damaged_line) + count(diagnostic_kind::out_of_order);
    }
    /// Whether the store rebuilt its index during the resume.
    [[nodiscard]] bool index_rebuilt() const noexcept {
        return std::any_of(store.begin(), store.end(), [](const diagnostic& d) {
            return d.kind == diagnostic_kind::index_rebuilt;
        });
    }
    /// Nothing skipped, repaired or noted: the session came back as written.
    [[nodiscard]] bool clean() const noexcept { return session.empty() && store.empty(); }
};

/// A session as resume() made it current: what load() read, and the report.
struct resumed_session : loaded_session {
    resume_report report;
};

/// Folds a saved exchange into the session's metadata. `updated_at` never goes back.
/// Every store derives metadata from its records through this one rule. Never throws.
inline void apply_exchange(session_meta& meta, const exchange& ex) {
    meta.exchange_count = ex.seq;
    meta.updated_at = std::max({meta.updated_at, meta.created_at, ex.timestamp});
}

// ---------------------------------------------------------------------------------
// Timestamps: "2026-11-26T05:24:03.123Z"

/// True when `t` can be written as a timestamp: the years 0000..9999.
[[nodiscard]] constexpr bool is_representable_time(time_point t) noexcept {
    using namespace std::chrono;
    constexpr time_point first{sys_days{year{0} / January / 1}};
    constexpr time_point past_last{sys_days{year{10000} / January / 1}};
    return t >= first && t < past_last;
}

/// Formats `t` as UTC ISO-8601 with milliseconds and `Z`.
/// Throws time_out_of_range for years outside 0000..9999.
[[nodiscard]] inline std::string format_timestamp(time_point t) {
    using namespace std::chrono;
    // Range check first: floor<days>() overflows (undefined behaviour) near time_point::min().
    if (!is_representable_time(t))
        throw time_out_of_range("timestamp outside the years 0000..9999 (" +
                                std::to_string(t.time_since_epoch().count()) +
                                " ms from 1970): the format cannot hold it");
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<milliseconds> tod{t - day};
    const int y = static_cast<int>(ymd.year());
    char buf[64]; // generous: the compiler cannot see that each field is in range
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
                  static_cast<int>(tod.seconds().count()),
                  static_cast<int>(tod.subseconds().count()));
    return buf;
}

/// Parses what format_timestamp writes. Also accepts no fraction or 1 to 9 fraction
/// digits (cut to milliseconds), as other writers produce. Anything else, including an
/// impossible date such as 2025-02-29, gives std::nullopt.
[[nodiscard]] inline std::optional<time_point> parse_timestamp(std::string_view s) noexcept {
    using namespace std::chrono;
    auto digits = [&](std::size_t pos, std::size_t count, int& out) {
        if (pos + count > s.size())
            return false;
        int v = 0;
        for (std::size_t i = pos; i < pos + count; ++i) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v = v * 10 + (s[i] - '0');
        }
        out = v;
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (s.size() < 20 || !digits(0, 4, y) || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
        !digits(8, 2, d) || s[10] != 'T' || !digits(11, 2, h) || s[13] != ':' ||
        !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, sec))
        return std::nullopt;
    std::size_t pos = 19;
    int ms = 0;
    if (s[pos] == '.') {
        std::size_t n = 0;
        ++pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 3)
                ms = ms * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0 || n > 9)
            return std::nullopt;
        for (; n < 3; ++n)
            ms *= 10;
    }
    if (pos + 1 != s.size() || s[pos] != 'Z')
        return std::nullopt;
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 59)
        return std::nullopt;
    return time_point{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{sec} + milliseconds{ms};
}

// ---------------------------------------------------------------------------------
// JSON mapping. Readers never throw: they return a result whose error says which
// field is wrong, so that a loader can report a bad record and go on.

namespace detail {

/// Why a JSON value could not be read as one of our types.
struct read_error {
    std::string what;
};

template <class T>
using read_result = boost::system::result<T, read_error>;

inline const json::value* member(const json::object& o, std::string_view key) noexcept {
    auto it = o.find(key);
    return it == o.end() ? nullptr : &it->value();
}

inline read_error missing(std::string_view key, std::string_view want) {
    return {"field '" + std::string(key) + "' is missing or not " + std::string(want)};
}

inline bool read_string(const json::object& o, std::string_view key, std::string& out) {
    const auto* v = member(o, key);
    if (!v || !v->is_string())
        return false;
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
}

inline bool read_uint(const json::object& o, std::string_view key, std::uint64_t& out) {
    const auto* v = member(o, key);
    if (!v)
        return false;
    if (v->is_uint64()) {
        out = v->get_uint64();
        return true;
    }
    if (v->is_int64() && v->get_int64() >= 0) {
        out = static_cast<std::uint64_t>(v->get_int64());
        return true;
    }
    return false;
}

inline bool read_time(const json::object& o, std::string_view key, time_point& out) {
    const auto* v = member(o, key);
    if (!v || !v->is_string())
        return false;
    auto t = parse_timestamp(std::string_view(v->get_string()));
    if (!t)
        return false;
    out = *t;
    return true;
}

/// An optional field: absent or null gives nullopt; present with the wrong type fails.
inline bool read_optional_string(const json::object& o, std::string_view key,
                                 std::optional<std::string>& out) {
    const auto* v = member(o, key);
    if (!v || v->is_null())
        return true;
    if (!v->is_string())
        return false;
    out.emplace(v->get_string().data(), v->get_string().size());
    return true;
}

inline read_result<exchange> read_exchange(const json::object& o) {
    exchange ex;
    if (!read_uint(o, "seq", ex.seq) || ex.seq == 0)
        return missing("seq", "a positive integer");
    if (!read_time(o, "timestamp", ex.timestamp))
        return missing("timestamp", "an ISO-8601 UTC time");
    if (!read_string(o, "query", ex.query))
        return missing("query", "a string");
    if (!read_string(o, "answer", ex.answer))
        return missing("answer", "a string");
    if (!read_optional_string(o, "summary", ex.summary))
        return missing("summary", "a string");
    if (!read_optional_string(o, "model", ex.model))
        return missing("model", "a string");
    if (const auto* v = member(o, "duration_ms"); v && !v->is_null()) {
        std::uint64_t ms = 0;
        if (!read_uint(o, "duration_ms", ms))
            return missing("duration_ms", "an integer");
        ex.duration_ms = ms;
    }
    if (const auto* v = member(o, "tool_calls"); v && !v->is_null()) {
        if (!v->is_array())
            return missing("tool_calls", "an array");
        ex.tool_calls = v->get_array();
    }
    if (const auto* v = member(o, "extra"); v && !v->is_null()) {
        if (!v->is_object())
            return missing("extra", "an object");
        ex.extra = v->get_object();
    }
    return ex;
}

/// A session_origin: {"id": a well-formed session id, "seq": a positive integer}.
inline std::optional<session_origin> read_origin(const json::object& o) {
    session_origin origin;
    if (!read_string(o, "id", origin.id) || !read_uint(o, "seq", origin.seq) || origin.seq == 0 ||
        origin.id.size() != 8 || !std::all_of(origin.id.begin(), origin.id.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
        }))
        return std::nullopt;
    return origin;
}

inline read_result<session_meta> read_session_meta(const json::object& o) {
    session_meta m;
    if (!read_string(o, "id", m.id))
        return missing("id", "a string");
    if (const auto* v = member(o, "title"); v && !v->is_null()) {
        if (!v->is_string())
            return missing("title", "a string");
        m.title.assign(v->get_string().data(), v->get_string().size());
    }
    if (!read_time(o, "created_at", m.created_at))
        return missing("created_at", "an ISO-8601 UTC time");
    if (!read_time(o, "updated_at", m.updated_at))
        return missing("updated_at", "an ISO-8601 UTC time");
    if (!read_uint(o, "exchange_count", m.exchange_count))
        return missing("exchange_count", "a non-negative integer");
    if (const auto* v = member(o, "extra"); v && !v->is_null()) {
        if (!v->is_object())
            return missing("extra", "an object");
        m.extra = v->get_object();
    }
    if (const auto* v = member(o, "pinned"); v && !v->is_null()) {
        if (!v->is_bool())
            return missing("pinned", "true or false");
        m.pinned = v->get_bool();
    }
    if (const auto* v = member(o, "forked_from"); v && !v->is_null()) {
        auto origin = v->is_object() ? read_origin(v->get_object()) : std::nullopt;
        if (!origin)
            return missing("forked_from", "an object with a session id and a positive seq");
        m.forked_from = std::move(*origin);
    }
    return m;
}

template <class T>
boost::system::result<T> to_json_result(read_result<T> r) {
    if (r)
        return std::move(*r);
    return boost::system::error_code(json::error::not_found); // a field is missing or wrong
}

} // namespace detail

/// Writes the fields of `ex` into `o` (the record type tag is the store's business).
/// Throws time_out_of_range (from format_timestamp) for a timestamp outside the years
/// 0000..9999; `o` may then hold some of the fields.
inline void write_exchange_fields(json::object& o, const exchange& ex) {
    o["seq"] = ex.seq;
    o["timestamp"] = format_timestamp(ex.timestamp);
    o["query"] = ex.query;
    o["answer"] = ex.answer;
    if (ex.summary)
        o["summary"] = *ex.summary;
    if (ex.model)
        o["model"] = *ex.model;
    if (ex.duration_ms)
        o["duration_ms"] = *ex.duration_ms;
    if (!ex.tool_calls.empty())
        o["tool_calls"] = ex.tool_calls;
    if (!ex.extra.empty())
        o["extra"] = ex.extra;
}

/// `json::value_from(ex)`, `json::value_from(meta)`, `json::value_from(diag)`: the JSON
/// of a value. Throw time_out_of_range for a timestamp outside the years 0000..9999.
inline void tag_invoke(json::value_from_tag, json::value& v, const exchange& ex) {
    auto& o = v.emplace_object();
    write_exchange_fields(o, ex);
}

inline void tag_invoke(json::value_from_tag, json::value& v, const session_meta& m) {
    auto& o = v.emplace_object();
    o["id"] = m.id;
    o["title"] = m.title;
    o["created_at"] = format_timestamp(m.created_at);
    o["updated_at"] = format_timestamp(m.updated_at);
    o["exchange_count"] = m.exchange_count;
    if (!m.extra.empty())
        o["extra"] = m.extra;
    o["pinned"] = m.pinned;
    if (m.forked_from)
        o["forked_from"] = {{"id", m.forked_from->id}, {"seq", m.forked_from->seq}};
}

inline void tag_invoke(json::value_from_tag, json::value& v, const trashed_session& t) {
    json::value_from(t.meta, v);
    v.get_object()["deleted_at"] = format_timestamp(t.deleted_at);
}

inline void tag_invoke(json::value_from_tag, json::value& v, const diagnostic& d) {
    v = {{"line", d.line}, {"offset", d.offset}, {"reason", d.reason}, {"kind", to_string(d.kind)}};
}

/// {"exchanges_on_disk", "exchanges_loaded", "context": {"in_full", "as_summaries"} (or
/// null), "session": [diagnostic...], "store": [diagnostic...]}.
inline void tag_invoke(json::value_from_tag, json::value& v, const resume_report& r) {
    json::object o;
    o["exchanges_on_disk"] = r.exchanges_on_disk;
    o["exchanges_loaded"] = r.exchanges_loaded;
    if (r.context)
        o["context"] = {{"in_full", r.context->in_full}, {"as_summaries", r.context->as_summaries}};
    else
        o["context"] = nullptr;
    o["session"] = json::value_from(r.session);
    o["store"] = json::value_from(r.store);
    v = std::move(o);
}

/// Prints a value as its JSON (for logs and test failure messages). Throws as
/// json::value_from does, before anything is printed.
inline std::ostream& operator<<(std::ostream& os, const exchange& ex) {
    return os << json::serialize(json::value_from(ex));
}
inline std::ostream& operator<<(std::ostream& os, const session_meta& m) {
    return os << json::serialize(json::value_from(m));
}
inline std::ostream& operator<<(std::ostream& os, const diagnostic& d) {
    return os << json::serialize(json::value_from(d));
}

/// `json::try_value_to<exchange>(v)` fails without throwing on a malformed value;
/// `json::value_to<exchange>(v)` throws boost::system::system_error.
inline boost::system::result<exchange> tag_invoke(json::try_value_to_tag<exchange>,
                                                  const json::value& v) {
    if (!v.is_object())
        return boost::system::error_code(json::error::not_object);
    return detail::to_json_result(detail::read_exchange(v.get_object()));
}

inline boost::system::result<session_meta> tag_invoke(json::try_value_to_tag<session_meta>,
                                                      const json::value& v) {
    if (!v.is_object())
        return boost::system::error_code(json::error::not_object);
    return detail::to_json_result(detail::read_session_meta(v.get_object()));
}

} // namespace dexter::sessions
