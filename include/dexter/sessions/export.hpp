// SPDX-License-Identifier: BSL-1.0
// Exporting a session to a std::ostream, streamed exchange by exchange, as jsonl (the
// portable form: a history.jsonl of format v1), json (one document) or markdown (a
// transcript to read). docs/EMBEDDING.md, "Reading sessions back", shows each format.
//
//   session_manager<jsonl_store> sessions{jsonl_store{".dexter/sessions"}};
//   const auto meta = sessions.find_session(sessions.resolve("ab12"));
//   export_session(sessions, *meta, export_format::markdown, std::cout);
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// The formats a session exports to.
enum class export_format {
    /// history.jsonl, format v1 (docs/FORMAT.md): a session header holding the current
    /// title and extra, then one exchange record per line. Any store imports it.
    jsonl,
    /// One JSON document: {"session": {id, title, created_at, updated_at,
    /// exchange_count, extra, pinned, forked_from when set, version}, "exchanges": [{seq,
    /// timestamp, query, answer, and
    /// summary, model, duration_ms, tool_calls, extra when set}, ...]}, one exchange
    /// per line.
    json,
    /// A transcript: the title, the id and dates, then per exchange a heading with its
    /// seq and time, the question as a block quote, and the answer as it is.
    markdown,
};

/// The format's name: "jsonl", "json", "markdown".
[[nodiscard]] constexpr std::string_view to_string(export_format f) noexcept {
    switch (f) {
    case export_format::jsonl:
        return "jsonl";
    case export_format::json:
        return "json";
    case export_format::markdown:
        return "markdown";
    }
    return "jsonl";
}

/// The format named `name` (as to_string() spells it; "md" also names markdown), or
/// nothing.
[[nodiscard]] inline std::optional<export_format> parse_export_format(std::string_view name) {
    if (name == "jsonl")
        return export_format::jsonl;
    if (name == "json")
        return export_format::json;
    if (name == "markdown" || name == "md")
        return export_format::markdown;
    return std::nullopt;
}

namespace detail {

// Whether a Markdown line opens or closes a code fence: up to 3 spaces, then 3 or more
// backticks or tildes. Sets `ch` and `len` to the fence's character and length.
inline bool markdown_fence(std::string_view line, char& ch, std::size_t& len) noexcept {
    std::size_t i = 0;
    while (i < 3 && i < line.size() && line[i] == ' ')
        ++i;
    if (i >= line.size() || (line[i] != '`' && line[i] != '~'))
        return false;
    ch = line[i];
    std::size_t n = 0;
    while (i + n < line.size() && line[i + n] == ch)
        ++n;
    if (n < 3)
        return false;
    len = n;
    return true;
}

// The fence that closes what `text` leaves open ("" when every fence is closed), so that
// an answer cut inside a code block cannot swallow the exchanges after it.
inline std::string unclosed_fence(std::string_view text) {
    char open_ch = 0;
    std::size_t open_len = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        char ch = 0;
        std::size_t len = 0;
        if (markdown_fence(line, ch, len)) {
            if (open_ch == 0) {
                open_ch = ch;
                open_len = len;
            } else if (ch == open_ch && len >= open_len &&
                       line.find_first_not_of(std::string_view(" \t\r"
                                                               "`~",
                                                               5)) == std::string_view::npos) {
                open_ch = 0; // a closing fence holds nothing but the fence
            }
        }
        if (nl == std::string_view::npos)
            break;
        text.remove_prefix(nl + 1);
    }
    return open_ch == 0 ? std::string() : std::string(open_len, open_ch);
}

// A single line of text for a Markdown heading: control characters (newlines included)
// become spaces.
inline void append_one_line(std::string& out, std::string_view text) {
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c < 0x20 || c == 0x7f) ? ' ' : ch;
    }
}

// The members of session_meta `m` as a JSON object, without its closing brace: id,
// title, created_at, updated_at, exchange_count, extra (always, or only when not empty),
// pinned, and forked_from when set. Text that is not valid UTF-8 (from a store that does
// not check it) is written with U+FFFD in its place. Throws time_out_of_range as
// format_timestamp() does.
inline void append_meta_fields(std::string& out, const session_meta& m, bool always_extra) {
    out += R"({"id":)";
    append_json_string_repaired(out, m.id);
    out += R"(,"title":)";
    append_json_string_repaired(out, m.title);
    out += R"(,"created_at":")";
    out += format_timestamp(m.created_at);
    out += R"(","updated_at":")";
    out += format_timestamp(m.updated_at);
    out += R"(","exchange_count":)";
    append_uint(out, m.exchange_count);
    if (always_extra || !m.extra.empty()) {
        out += R"(,"extra":)";
        append_json_value_repaired(out, m.extra);
    }
    out += m.pinned ? R"(,"pinned":true)" : R"(,"pinned":false)";
    if (m.forked_from) {
        out += R"(,"forked_from":{"id":)";
        append_json_string_repaired(out, m.forked_from->id);
        out += R"(,"seq":)";
        append_uint(out, m.forked_from->seq);
        out += '}';
    }
}

// encode_header() and encode_exchange() for an export: text that is not valid UTF-8
// (which a store that does not check it may hand back) is written with U+FFFD in its
// place, so that the output is JSON all the same.
inline void encode_header_repaired(std::string& out, const session_meta& m) {
    const std::size_t start = out.size();
    if (encode_header(out, m))
        return;
    out.resize(start);
    session_meta fixed = m;
    fixed.id = replace_invalid_utf8(m.id);
    fixed.title = replace_invalid_utf8(m.title);
    fixed.extra = replace_invalid_utf8(json::value(m.extra)).as_object();
    if (fixed.forked_from)
        fixed.forked_from->id = replace_invalid_utf8(m.forked_from->id);
    encode_header<false>(out, fixed);
}

inline void encode_exchange_repaired(std::string& out, const exchange& ex) {
    const std::size_t start = out.size();
    if (encode_exchange(out, ex))
        return;
    out.resize(start);
    exchange fixed = ex;
    fixed.query = replace_invalid_utf8(ex.query);
    fixed.answer = replace_invalid_utf8(ex.answer);
    if (ex.summary)
        fixed.summary = replace_invalid_utf8(*ex.summary);
    if (ex.model)
        fixed.model = replace_invalid_utf8(*ex.model);
    fixed.tool_calls = replace_invalid_utf8(json::value(ex.tool_calls)).as_array();
    fixed.extra = replace_invalid_utf8(json::value(ex.extra)).as_object();
    encode_exchange<false>(out, fixed);
}

} // namespace detail

/// Appends session `m` to `out` as one JSON object, the one json::value_from(m) gives
/// ({"id", "title", "created_at", "updated_at", "exchange_count", "extra" when not empty,
/// "pinned", "forked_from" when set}), written straight into the buffer: a listing of
/// thousands of sessions (dexter --list-sessions --json) needs no json::value for each.
/// Text that is not valid UTF-8 (which a store that does not check it may hand back) is
/// written with U+FFFD in its place: the output is always JSON. Throws time_out_of_range
/// when a time of `m` is outside the years 0000..9999 (see format_timestamp()); `out`
/// then holds part of the object.
inline void append_json(std::string& out, const session_meta& m) {
    detail::append_meta_fields(out, m, false);
    out += '}';
}

/// Writes one session in one format, piece by piece: begin(), add() per exchange in
/// seq order, end(). Each call writes what it can to the stream at once; the exporter
/// holds one exchange's text at a time. Throws error when the stream fails (the
/// stream's state tells more).
class session_exporter {
public:
    session_exporter(std::ostream& out, export_format format) : out_(out), format_(format) {}

    void begin(const session_meta& m) {
        buf_.clear();
        switch (format_) {
        case export_format::jsonl:
            detail::encode_header_repaired(buf_, m);
            break;
        case export_format::json:
            buf_ += R"({"session":)";
            detail::append_meta_fields(buf_, m, true);
            buf_ += R"(,"version":)";
            detail::append_uint(buf_, detail::history_format_version);
            buf_ += "},\n\"exchanges\":[";
            break;
        case export_format::markdown:
            buf_ += "# ";
            detail::append_one_line(buf_, m.title.empty() ? std::string_view("(untitled)")
                                                          : std::string_view(m.title));
            buf_ += "\n\n- Session: `";
            buf_ += m.id;
            buf_ += "`\n- Created: ";
            buf_ += format_timestamp(m.created_at);
            buf_ += "\n- Updated: ";
            buf_ += format_timestamp(m.updated_at);
            buf_ += "\n- Exchanges: ";
            detail::append_uint(buf_, m.exchange_count);
            buf_ += "\n";
            break;
        }
        flush();
    }

    /// Writes `ex`. `record`, when not empty, is ex's record as a store keeps it (a line
    /// of history format v1 without its newline that decodes to ex: see
    /// session_manager::for_each_record()), which the jsonl and json formats then copy
    /// instead of encoding ex again.
    void add(const exchange& ex, std::string_view record = {}) {
        buf_.clear();
        constexpr std::string_view typed = R"({"type":"exchange",)";
        switch (format_) {
        case export_format::jsonl:
            if (record.empty()) {
                detail::encode_exchange_repaired(buf_, ex);
            } else {
                buf_ += record;
                buf_ += '\n';
            }
            break;
        case export_format::json:
            // The record without its type (the array says what it holds) and newline.
            buf_ += first_ ? "\n{" : ",\n{";
            if (record.starts_with(typed)) {
                buf_ += record.substr(typed.size());
            } else {
                const std::size_t at = buf_.size();
                detail::encode_exchange_repaired(buf_, ex);
                buf_.erase(at, typed.size());
                buf_.pop_back();
            }
            break;
        case export_format::markdown:
            buf_ += "\n## ";
            detail::append_uint(buf_, ex.seq);
            buf_ += " · ";
            buf_ += format_timestamp(ex.timestamp);
            if (ex.model) {
                buf_ += " · ";
                detail::append_one_line(buf_, *ex.model);
            }
            buf_ += "\n\n";
            append_quoted(ex.query);
            buf_ += "\n";
            buf_ += ex.answer;
            if (!ex.answer.empty() && ex.answer.back() != '\n')
                buf_ += '\n';
            if (const auto fence = detail::unclosed_fence(ex.answer); !fence.empty()) {
                buf_ += fence;
                buf_ += '\n';
            }
            break;
        }
        first_ = false;
        flush();
    }

    void end() {
        buf_.clear();
        if (format_ == export_format::json)
            buf_ += first_ ? "]}\n" : "\n]}\n";
        flush();
        out_.flush();
        if (!out_)
            throw error("cannot write the export: the output stream failed");
    }

private:
    // The question as a Markdown block quote: every line of it begins with "> ", so that
    // nothing in it (a heading, a fence, a rule) can end the quote or start a block of
    // the transcript.
    void append_quoted(std::string_view text) {
        for (;;) {
            const auto nl = text.find('\n');
            const std::string_view line = text.substr(0, nl);
            buf_ += line.empty() ? ">" : "> ";
            buf_ += line;
            buf_ += '\n';
            if (nl == std::string_view::npos)
                break;
            text.remove_prefix(nl + 1);
        }
    }

    void flush() {
        out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
        if (!out_)
            throw error("cannot write the export: the output stream failed");
    }

    std::ostream& out_;
    export_format format_;
    std::string buf_;
    bool first_ = true;
};

/// What export_session() wrote.
struct export_result {
    std::uint64_t exchanges = 0;         ///< exchanges written
    std::vector<diagnostic> diagnostics; ///< what the read skipped (damaged records)
};

/// Writes stored session `meta` (as find_session() or list_sessions() returned it) to
/// `out` in `format`, streaming: the manager's for_each_record() hands over one
/// exchange at a time, with its stored record, which jsonl and json copy as it is. Damaged records
/// are skipped and returned in the diagnostics, never thrown. Throws error when `out` fails, and
/// what the store throws; what was written before the throw stays written (write to a temporary
/// file to get all or nothing, as dexter --export -o does).
template <class Manager>
export_result export_session(Manager& manager, const session_meta& meta, export_format format,
                             std::ostream& out) {
    session_exporter exporter(out, format);
    export_result result;
    exporter.begin(meta);
    result.diagnostics =
        manager.for_each_record(meta, 1, [&](exchange&& ex, std::string_view record) {
            exporter.add(ex, format == export_format::markdown ? std::string_view() : record);
            ++result.exchanges;
            return true;
        });
    exporter.end();
    return result;
}

} // namespace dexter::sessions
