// SPDX-License-Identifier: BSL-1.0
// history.jsonl, format v1: the record codec. Encoding records, and decoding single
// lines into a scan_state without ever giving up on a file (see docs/FORMAT.md). No
// system calls: the PostgreSQL store uses it too. Reading files of records is
// history_scan.hpp's.
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// The history format version this library writes and reads.
inline constexpr std::uint64_t history_format_version = 1;

// ---------------------------------------------------------------------------------
// Encoding. Each function appends one whole line, newline included, and returns false
// if some text in it is not valid UTF-8 (the line must then not be written). With
// `CheckUtf8` false, for text checked before (session_manager's checks), the text is
// not validated again and the line is the same (json_writer.hpp).

template <bool CheckUtf8 = true>
inline bool encode_header(std::string& out, const session_meta& m) {
    out += R"({"type":"session","version":)";
    append_uint(out, history_format_version);
    out += R"(,"id":)";
    bool ok = append_json_string<CheckUtf8>(out, m.id);
    out += R"(,"created_at":")";
    out += format_timestamp(m.created_at);
    out += R"(","title":)";
    ok = append_json_string<CheckUtf8>(out, m.title) && ok;
    if (!m.extra.empty()) {
        out += R"(,"extra":)";
        ok = append_json_value<CheckUtf8>(out, m.extra) && ok;
    }
    if (m.pinned)
        out += R"(,"pinned":true)";
    if (m.forked_from) {
        out += R"(,"forked_from":{"id":)";
        ok = append_json_string<CheckUtf8>(out, m.forked_from->id) && ok;
        out += R"(,"seq":)";
        append_uint(out, m.forked_from->seq);
        out += '}';
    }
    out += "}\n";
    return ok;
}

template <bool CheckUtf8 = true>
inline bool encode_exchange(std::string& out, const exchange& ex) {
    out += R"({"type":"exchange","seq":)";
    append_uint(out, ex.seq);
    out += R"(,"timestamp":")";
    out += format_timestamp(ex.timestamp);
    out += R"(","query":)";
    bool ok = append_json_string<CheckUtf8>(out, ex.query);
    out += R"(,"answer":)";
    ok = append_json_string<CheckUtf8>(out, ex.answer) && ok;
    if (ex.summary) {
        out += R"(,"summary":)";
        ok = append_json_string<CheckUtf8>(out, *ex.summary) && ok;
    }
    if (ex.model) {
        out += R"(,"model":)";
        ok = append_json_string<CheckUtf8>(out, *ex.model) && ok;
    }
    if (ex.duration_ms) {
        out += R"(,"duration_ms":)";
        append_uint(out, *ex.duration_ms);
    }
    if (!ex.tool_calls.empty()) {
        out += R"(,"tool_calls":)";
        ok = append_json_value<CheckUtf8>(out, ex.tool_calls) && ok;
    }
    if (!ex.extra.empty()) {
        out += R"(,"extra":)";
        ok = append_json_value<CheckUtf8>(out, ex.extra) && ok;
    }
    out += "}\n";
    return ok;
}

/// Refuses a record (or, in the PostgreSQL store, a session's title or extra as JSON
/// text) that a store must not save: throws invalid_input naming `what` when `record`
/// is longer than `max_bytes`, or when `valid_utf8` is false (its encoder met text that
/// is not valid UTF-8), saying that nothing was saved. Both stores use it, so that both
/// refuse the same records with the same words.
inline void check_record(std::string_view record, bool valid_utf8, std::size_t max_bytes,
                         const std::string& what) {
    if (record.size() > max_bytes)
        throw invalid_input(what + " is " + std::to_string(record.size()) +
                            " bytes, over the record limit of " + std::to_string(max_bytes) +
                            " bytes; nothing was saved");
    if (!valid_utf8)
        throw invalid_input(what + " holds text that is not valid UTF-8; nothing was saved");
}

/// The diagnostic for a line longer than the record limit.
inline std::string too_long_reason(std::size_t max_record) {
    return "line longer than the record limit of " + std::to_string(max_record) + " bytes: skipped";
}

/// A hole in seq that a repair recorded where it moved damaged lines to quarantine:
/// exchanges `from` to `through` are known to be missing (docs/FORMAT.md, "Repair"), so
/// readers do not report them again. `at` is when the repair ran.
inline void encode_gap(std::string& out, std::uint64_t from, std::uint64_t through, time_point at) {
    out += R"({"type":"gap","from":)";
    append_uint(out, from);
    out += R"(,"through":)";
    append_uint(out, through);
    out += R"(,"recorded_at":")";
    out += format_timestamp(at);
    out += "\"}\n";
}

/// A change of session metadata (title, extra, pinned), as an event.
inline bool encode_meta(std::string& out, const session_meta& m) {
    out += R"({"type":"meta","title":)";
    bool ok = append_json_string(out, m.title);
    out += R"(,"extra":)";
    ok = append_json_value(out, m.extra) && ok;
    out += m.pinned ? R"(,"pinned":true)" : R"(,"pinned":false)";
    out += "}\n";
    return ok;
}

// ---------------------------------------------------------------------------------
// Lone UTF-16 surrogates. JavaScript writers cut strings inside a surrogate pair and
// write "\ud83d" alone; Boost.JSON (rightly) refuses it. We read such a line with
// each lone surrogate escape replaced by \ufffd, and report it.

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// The code unit of the escape "\uXXXX" at `line[i]`, or -1.
inline long escape_unit(std::string_view line, std::size_t i) noexcept {
    if (i + 6 > line.size() || line[i] != '\\' || line[i + 1] != 'u')
        return -1;
    long v = 0;
    for (std::size_t k = i + 2; k < i + 6; ++k) {
        const int h = hex_value(line[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/// Copies `line` to `out` with every lone surrogate escape replaced by \ufffd.
/// Returns how many were replaced (0: `out` is not touched).
inline std::size_t repair_lone_surrogates(std::string_view line, std::string& out) {
    std::size_t replaced = 0;
    std::string result;
    std::size_t copied = 0;
    for (std::size_t i = 0; i + 1 < line.size();) {
        if (line[i] != '\\') {
            ++i;
            continue;
        }
        const long u = escape_unit(line, i);
        if (u < 0) {
            i += 2; // some other escape: skip the escaped character
            continue;
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            const long low = escape_unit(line, i + 6);
            if (low >= 0xDC00 && low <= 0xDFFF) {
                i += 12; // a proper pair
                continue;
            }
        } else if (u < 0xDC00 || u > 0xDFFF) {
            i += 6;
            continue;
        }
        result.append(line.substr(copied, i - copied));
        result += "\\ufffd";
        i += 6;
        copied = i;
        ++replaced;
    }
    if (replaced) {
        result.append(line.substr(copied));
        out = std::move(result);
    }
    return replaced;
}

// ---------------------------------------------------------------------------------
// Reading.

/// The diagnostic a load reports for a history whose line 1 is not a valid session
/// header (removed, cut, emptied, or preceded by a byte-order mark): the session is
/// damaged, and read-only.
inline diagnostic missing_header_diagnostic() {
    return {1, 0,
            "no valid session header on line 1: the session is damaged (its title and "
            "start are not known); its exchanges load, but nothing is appended to it",
            diagnostic_kind::missing_header};
}

/// Why exchange `seq` read right after exchange `prev` leaves a hole: "exchange seq N
/// follows M: exchanges M+1 to N-1 are missing" (or "exchange M+1 is missing"). Every
/// reader (forward, backward, the PostgreSQL store) reports a hole in these words.
/// Requires seq > prev + 1.
inline std::string missing_exchanges_reason(std::uint64_t prev, std::uint64_t seq) {
    const std::string head =
        "exchange seq " + std::to_string(seq) + " follows " + std::to_string(prev) + ": ";
    if (seq == prev + 2)
        return head + "exchange " + std::to_string(prev + 1) + " is missing";
    return head + "exchanges " + std::to_string(prev + 1) + " to " + std::to_string(seq - 1) +
           " are missing";
}

/// The seq of an exchange record that begins as this library writes one
/// (`{"type":"exchange","seq":N,`), read without decoding the line; nothing for any other
/// line (which must then be decoded to be known). The rest of the line is not looked at:
/// see seq_may_repeat().
inline std::optional<std::uint64_t> canonical_exchange_seq(std::string_view line) noexcept {
    constexpr std::string_view prefix = R"({"type":"exchange","seq":)";
    if (!line.starts_with(prefix))
        return std::nullopt;
    std::uint64_t seq = 0;
    std::size_t i = prefix.size(), digits = 0;
    for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i, ++digits) {
        if (digits == 19)
            return std::nullopt; // more than a seq can be: let the decoder say so
        seq = seq * 10 + static_cast<std::uint64_t>(line[i] - '0');
    }
    if (digits == 0 || seq == 0 || (digits > 1 && line[prefix.size()] == '0') || i >= line.size() ||
        line[i] != ',')
        return std::nullopt;
    return seq;
}

/// False when `line`, holding no `\u` escape, can have no second "seq" key after its first
/// `prefix_end` bytes: a decoder takes the last of two equal keys, so the seq of such a
/// line is only known once it is decoded. Looks for the bytes `"seq"` (a key spelt without
/// escapes; a string "seq" counts too) from the rare `q`, at memchr speed.
inline bool seq_may_repeat(std::string_view line, std::size_t prefix_end) noexcept {
    for (std::size_t q = line.find('q', prefix_end); q != std::string_view::npos;
         q = line.find('q', q + 1))
        if (q >= 3 && q + 1 < line.size() && line.substr(q - 3, 5) == R"("seq")")
            return true;
    return false;
}

// ---------------------------------------------------------------------------------
// The canonical exchange line: the one encode_exchange() writes without tool_calls or
// extra, decoded without a JSON parser. Every other line, and every line this decoder
// is not sure of, goes to Boost.JSON (line_parser), which decides what it holds; this
// one only ever gives the exchange that decoder and read_exchange() would give.

namespace canonical {

/// Decodes the JSON string whose opening quote `p` points past, up to `end`, into `out`,
/// which has room for `end - p` bytes (a string decodes to no more bytes than it takes),
/// and sets `size`; returns the position after its closing quote, or nullptr to decline:
/// text that is not valid UTF-8, a raw control character, an unknown escape, a lone or
/// reversed UTF-16 surrogate escape (the repair path's), or no closing quote.
inline const char* read_string(const char* p, const char* const end, char* const out,
                               std::size_t& size) {
    // What each escape `\c` stands for; 0: none (u is read below).
    static constexpr auto unescaped = [] {
        std::array<char, 256> t{};
        t['"'] = '"';
        t['\\'] = '\\';
        t['/'] = '/';
        t['b'] = '\b';
        t['f'] = '\f';
        t['n'] = '\n';
        t['r'] = '\r';
        t['t'] = '\t';
        return t;
    }();
    char* d = out;
    for (;;) {
        if (end - p >= 8) {
            // 8 bytes copied as they are, then kept as far as they are plain ASCII: `out`
            // has room for them, as it is no shorter than what is left of the line.
            std::memcpy(d, p, 8);
            const std::uint64_t special = json_special_bytes(p);
            if (special == 0) {
                p += 8;
                d += 8;
                continue;
            }
            if constexpr (std::endian::native == std::endian::little) {
                const auto plain = static_cast<std::size_t>(std::countr_zero(special) / 8);
                p += plain;
                d += plain;
            }
        } else if (p == end) {
            return nullptr;
        }
        const auto c = static_cast<unsigned char>(*p);
        if (c >= 0x80) {
            const std::size_t len = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p),
                                                         static_cast<std::size_t>(end - p));
            if (len == 0)
                return nullptr;
            for (std::size_t k = 0; k < len; ++k)
                d[k] = p[k];
            p += len;
            d += len;
            continue;
        }
        if (c == '"') {
            size = static_cast<std::size_t>(d - out);
            return p + 1;
        }
        if (c != '\\') {
            if (c < 0x20)
                return nullptr; // a raw control character
            *d++ = static_cast<char>(c);
            ++p;
            continue;
        }
        if (end - p < 2)
            return nullptr;
        const char e = p[1];
        p += 2;
        if (const char plain = unescaped[static_cast<unsigned char>(e)]) {
            *d++ = plain;
            continue;
        }
        if (e != 'u')
            return nullptr;
        const std::string_view rest(p - 2, static_cast<std::size_t>(end - (p - 2)));
        long cp = escape_unit(rest, 0);
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return nullptr;
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            const long low = escape_unit(rest, 6);
            if (low < 0xDC00 || low > 0xDFFF)
                return nullptr;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        }
        const auto u = static_cast<std::uint32_t>(cp);
        if (u < 0x80) {
            *d++ = static_cast<char>(u);
        } else if (u < 0x800) {
            *d++ = static_cast<char>(0xC0 | (u >> 6));
            *d++ = static_cast<char>(0x80 | (u & 0x3F));
        } else if (u < 0x10000) {
            *d++ = static_cast<char>(0xE0 | (u >> 12));
            *d++ = static_cast<char>(0x80 | ((u >> 6) & 0x3F));
            *d++ = static_cast<char>(0x80 | (u & 0x3F));
        } else {
            *d++ = static_cast<char>(0xF0 | (u >> 18));
            *d++ = static_cast<char>(0x80 | ((u >> 12) & 0x3F));
            *d++ = static_cast<char>(0x80 | ((u >> 6) & 0x3F));
            *d++ = static_cast<char>(0x80 | (u & 0x3F));
        }
    }
}

/// An unsigned integer as JSON writes one that fits in 64 bits (no sign, no leading
/// zero, no fraction or exponent: what follows is checked by the caller); nullptr to
/// decline.
inline const char* read_uint(const char* p, const char* const end, std::uint64_t& out) {
    const char* const start = p;
    std::uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        const auto d = static_cast<std::uint64_t>(*p - '0');
        if (v > (~std::uint64_t(0) - d) / 10)
            return nullptr; // beyond 64 bits: JSON makes it a double
        v = v * 10 + d;
        ++p;
    }
    if (p == start || (p - start > 1 && *start == '0'))
        return nullptr;
    out = v;
    return p;
}

/// Whether `p` starts with `lit`; advances past it when it does.
inline bool skip(const char*& p, const char* const end, std::string_view lit) noexcept {
    if (static_cast<std::size_t>(end - p) < lit.size() ||
        std::memcmp(p, lit.data(), lit.size()) != 0)
        return false;
    p += lit.size();
    return true;
}

/// Scratch space for decode_exchange(), as long as the longest line decoded: each field
/// is decoded here, then copied into the exchange at its exact size (one allocation per
/// field, none to grow it).
struct scratch {
    std::string text;
};

/// Decodes `line` into `ex` when it is a canonical exchange record:
/// `{"type":"exchange","seq":N,"timestamp":"T","query":S,"answer":S` then, each
/// optional and in this order, `,"summary":S`, `,"model":S`, `,"duration_ms":N`, and `}`
/// at the end of the line, without whitespace, where N is an integer, T a timestamp
/// parse_timestamp() reads, and S a JSON string of valid UTF-8. Returns false for any
/// other line (and `ex` is then unspecified): the JSON parser reads it.
inline bool decode_exchange(std::string_view line, exchange& ex, scratch& s) {
    const char* p = line.data();
    const char* const end = p + line.size();
    if (s.text.size() < line.size())
        s.text.resize(line.size());
    auto string_field = [&](std::string& out) {
        std::size_t size = 0;
        p = read_string(p, end, s.text.data(), size);
        if (!p)
            return false;
        out.assign(s.text.data(), size);
        return true;
    };
    if (!skip(p, end, R"({"type":"exchange","seq":)") || !(p = read_uint(p, end, ex.seq)) ||
        ex.seq == 0 || !skip(p, end, R"(,"timestamp":")"))
        return false;
    const char* const ts = p;
    while (p < end && *p != '"' && *p != '\\')
        ++p;
    if (p == end || *p != '"')
        return false;
    const auto t = parse_timestamp(std::string_view(ts, static_cast<std::size_t>(p - ts)));
    if (!t)
        return false;
    ex.timestamp = *t;
    ++p;
    if (!skip(p, end, R"(,"query":")") || !string_field(ex.query) ||
        !skip(p, end, R"(,"answer":")") || !string_field(ex.answer))
        return false;
    ex.summary.reset();
    ex.model.reset();
    ex.duration_ms.reset();
    ex.tool_calls.clear();
    ex.extra.clear();
    if (skip(p, end, R"(,"summary":")") && !string_field(ex.summary.emplace()))
        return false;
    if (skip(p, end, R"(,"model":")") && !string_field(ex.model.emplace()))
        return false;
    if (skip(p, end, R"(,"duration_ms":)") && !(p = read_uint(p, end, ex.duration_ms.emplace())))
        return false;
    return end - p == 1 && *p == '}';
}

} // namespace canonical

/// What a reader knows of a session after reading its file up to `consumed`.
struct scan_state {
    session_meta meta;
    std::uint64_t consumed = 0; ///< end of the last complete line read
    std::uint64_t lines = 0;    ///< complete lines read
    bool have_header = false;
    std::uint64_t newer_version = 0; ///< nonzero: the file's format version, unsupported
};

/// Parses single lines with a reused parser and a per-line arena.
class line_parser {
public:
    line_parser() : parser_(json::storage_ptr(), parse_options()) {}

    /// Parses `line`. On success calls `on_value(const json::value&)` and returns true;
    /// on failure sets `why` and returns false. `repaired` tells that lone surrogates
    /// had to be replaced.
    template <class F>
    bool parse(std::string_view line, std::string& why, bool& repaired, F&& on_value) {
        repaired = false;
        if (try_parse(line, on_value))
            return true;
        repairing_ = repair_lone_surrogates(line, repaired_) > 0;
        const bool parsed = repairing_ && try_parse(repaired_, on_value);
        repairing_ = false;
        if (parsed) {
            repaired = true;
            return true;
        }
        const auto bad = first_invalid_utf8(line);
        if (bad != line.size())
            why = "invalid UTF-8 at byte " + std::to_string(bad) + " of the line";
        else
            why = "not valid JSON (" + last_error_.message() + ")";
        return false;
    }

    /// True while parse() hands over a value read from a repaired copy of the line.
    bool repairing() const noexcept { return repairing_; }

private:
    static json::parse_options parse_options() {
        json::parse_options o;
        o.max_depth = 64;
        return o;
    }

    template <class F>
    bool try_parse(std::string_view line, F& on_value) {
        json::monotonic_resource mr(arena_.data(), arena_.size());
        parser_.reset(&mr);
        boost::system::error_code ec;
        parser_.write(line.data(), line.size(), ec);
        if (ec) {
            last_error_ = ec;
            parser_.reset();
            return false;
        }
        const json::value v = parser_.release();
        on_value(v);
        return true;
    }

    json::parser parser_;
    alignas(16) std::array<unsigned char, 8192> arena_{};
    std::string repaired_;
    bool repairing_ = false; // on_value is seeing a repaired copy of the line
    boost::system::error_code last_error_;
};

/// Reads records and folds them into a scan_state, reporting what it skips.
class record_reader {
public:
    /// With `check_order` off, exchanges are taken whatever their seq (the caller
    /// orders them: a backward reader sees them newest first).
    explicit record_reader(std::vector<diagnostic>& diagnostics, bool check_order = true)
        : diags_(diagnostics), check_order_(check_order) {}

    /// Handles one complete line (without its newline) that starts at `offset`.
    /// Calls on_exchange(exchange&&) for each accepted exchange when `want_exchanges`.
    template <class F>
    void read_line(scan_state& st, std::string_view line, std::uint64_t line_no,
                   std::uint64_t offset, bool want_exchanges, F&& on_exchange) {
        if (line.empty())
            return;
        // The line as this library writes it: decoded without the JSON parser, at several
        // times its speed (a full load is mostly this), to the same exchange.
        if (canonical::decode_exchange(line, fast_, scratch_)) {
            if (accept_seq(st, fast_.seq, fast_.timestamp, line_no, offset) && want_exchanges)
                on_exchange(std::move(fast_));
            return;
        }
        std::string why;
        bool repaired = false;
        const bool ok = parser_.parse(line, why, repaired, [&](const json::value& v) {
            apply(st, v, line_no, offset, want_exchanges, on_exchange);
        });
        if (!ok)
            report(line_no, offset, why);
        else if (repaired)
            report(line_no, offset, "lone UTF-16 surrogate escape replaced by U+FFFD",
                   diagnostic_kind::text_replaced);
    }

    void report(std::uint64_t line_no, std::uint64_t offset, std::string why,
                diagnostic_kind kind = diagnostic_kind::damaged_line) {
        diags_.push_back({line_no, offset, std::move(why), kind});
    }

    /// Takes note of exchange `seq` on a line that was not decoded (a search's pre-filter
    /// read only its seq, canonical_exchange_seq()), with the order checks read_line()
    /// applies to a decoded one: returns whether a reader accepts it.
    bool note_seq(scan_state& st, std::uint64_t seq, std::uint64_t line_no, std::uint64_t offset) {
        return accept_seq(st, seq, st.meta.updated_at, line_no, offset);
    }

    /// True while read_line() hands over an exchange read from a repaired copy of its
    /// line (lone surrogate escapes replaced): the line is then not the record as read.
    bool line_repaired() const noexcept { return parser_.repairing(); }

    /// How many exchanges were skipped so far because their seq repeated or went back.
    std::uint64_t repeats() const noexcept { return repeats_; }

    /// Whether a gap record read so far covers exchanges from..through (a reader that
    /// does not check the order, reading backward, asks this of each hole it finds).
    bool gap_recorded(std::uint64_t from, std::uint64_t through) const noexcept {
        return std::any_of(gaps_.begin(), gaps_.end(),
                           [&](const auto& g) { return g.first <= from && through <= g.second; });
    }

private:
    template <class F>
    void apply(scan_state& st, const json::value& v, std::uint64_t line_no, std::uint64_t offset,
               bool want_exchanges, F& on_exchange) {
        if (!v.is_object())
            return report(line_no, offset, "not a JSON object");
        const auto& o = v.get_object();
        const auto* type = detail::member(o, "type");
        if (!type || !type->is_string())
            return report(line_no, offset, "record has no type");
        const std::string_view t = type->get_string();
        if (t == "exchange") {
            // Fully checked even when only counting, so that every reader agrees on
            // which records exist.
            auto ex = detail::read_exchange(o);
            if (!ex)
                return report(line_no, offset, "bad exchange: " + ex.error().what);
            if (accept_seq(st, ex->seq, ex->timestamp, line_no, offset) && want_exchanges)
                on_exchange(std::move(*ex));
        } else if (t == "session") {
            // Only line 1 decides the file's version: a header anywhere else (a
            // concatenated file, a hand edit) is a bad line, whatever it says.
            if (st.have_header || line_no != 1)
                return report(line_no, offset, "session header after line 1 ignored");
            std::uint64_t version = 0;
            if (!read_uint(o, "version", version) || version == 0)
                return report(line_no, offset, "session header has no valid version");
            if (version > history_format_version) {
                st.newer_version = version;
                return;
            }
            st.have_header = true;
            read_time(o, "created_at", st.meta.created_at);
            st.meta.updated_at = st.meta.created_at;
            read_meta_fields(st.meta, o);
            if (const auto* f = member(o, "forked_from"); f && f->is_object())
                st.meta.forked_from = read_origin(f->get_object());
        } else if (t == "meta") {
            read_meta_fields(st.meta, o);
        } else if (t == "gap") {
            std::uint64_t from = 0, through = 0;
            if (!read_uint(o, "from", from) || !read_uint(o, "through", through) || from == 0 ||
                through < from)
                return report(line_no, offset, "gap record without a valid from and through");
            accept_gap(st, from, through, line_no, offset);
        }
        // Records of other types are from a newer writer: skipped on purpose.
    }

    // The fields a header or a meta record may change; an absent one keeps its value
    // (a meta record written before `pinned` existed leaves the pin as it was).
    static void read_meta_fields(session_meta& m, const json::object& o) {
        read_string(o, "title", m.title);
        if (const auto* e = member(o, "extra"); e && e->is_object())
            m.extra = e->get_object();
        if (const auto* p = member(o, "pinned"); p && p->is_bool())
            m.pinned = p->get_bool();
    }

    // A recorded hole: known, not damage. In order it must follow the last exchange read
    // (a repair writes it where the missing exchanges were); the next exchange then
    // follows `through` without a word.
    void accept_gap(scan_state& st, std::uint64_t from, std::uint64_t through,
                    std::uint64_t line_no, std::uint64_t offset) {
        if (!check_order_) {
            gaps_.emplace_back(from, through);
            return;
        }
        if (from != st.meta.exchange_count + 1)
            return report(line_no, offset,
                          "gap record of exchanges " + std::to_string(from) + " to " +
                              std::to_string(through) + " does not follow exchange " +
                              std::to_string(st.meta.exchange_count) + ": ignored");
        st.meta.exchange_count = through;
    }

    bool accept_seq(scan_state& st, std::uint64_t seq, time_point ts, std::uint64_t line_no,
                    std::uint64_t offset) {
        if (!check_order_)
            return true;
        const auto last = st.meta.exchange_count;
        if (seq <= last) {
            ++repeats_;
            report(line_no, offset,
                   "exchange seq " + std::to_string(seq) + " repeats or goes back (last was " +
                       std::to_string(last) + "): skipped",
                   diagnostic_kind::out_of_order);
            return false;
        }
        if (seq != last + 1)
            report(line_no, offset, missing_exchanges_reason(last, seq),
                   diagnostic_kind::missing_exchanges);
        if (last == 0 && !st.have_header) {
            // No header to say when the session began: its first exchange does (never
            // the epoch, which would sort a damaged session as the oldest of all).
            st.meta.created_at = ts;
            st.meta.updated_at = ts;
        }
        st.meta.exchange_count = seq;
        st.meta.updated_at = std::max(st.meta.updated_at, ts); // no clamp to 1970
        return true;
    }

    std::vector<diagnostic>& diags_;
    bool check_order_;
    std::uint64_t repeats_ = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps_; ///< read backward: from, through
    line_parser parser_;
    exchange fast_; // a canonical line's exchange (canonical::decode_exchange())
    canonical::scratch scratch_;
};

} // namespace dexter::sessions::detail
