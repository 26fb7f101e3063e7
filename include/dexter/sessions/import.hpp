// SPDX-License-Identifier: BSL-1.0
// Importing a session from an export (export.hpp): the jsonl form (a history.jsonl of
// format v1, read line by line in bounded memory, every record checked as a load checks
// it) or the json document. session_manager::import_session() drives it; this header
// holds the reading.
//
//   std::ifstream in("session.jsonl", std::ios::binary);
//   const auto imported = sessions.import_session(in);   // a new session, whole or not at all
#pragma once

#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions {

/// Limits of an import.
struct import_options {
    /// Longest line of a jsonl export; a longer one is skipped (and reported) without
    /// being held in memory. As jsonl_options::max_record_bytes.
    std::size_t max_record_bytes = 16u << 20;
    /// Largest json document, which is read whole; a larger one is refused (export such a
    /// session as jsonl, which is read line by line).
    std::size_t max_document_bytes = 256u << 20;
};

/// What session_manager::import_session() made.
struct import_result {
    /// The new session, as stored.
    session_meta meta;
    /// The id the export named (empty if it named none, or one that is not well formed).
    /// It is kept unless a session already has it; meta.id then differs.
    session_id original_id;
    /// The form the export was in: jsonl or json.
    export_format format = export_format::jsonl;
    /// Exchanges imported.
    std::uint64_t exchanges = 0;
    /// What was skipped (damaged lines or exchanges), as a load reports it.
    std::vector<diagnostic> diagnostics;
};

namespace detail {

/// Reads a stream line by line in fixed chunks; a line longer than the limit is passed
/// over without being held.
class capped_line_reader {
public:
    capped_line_reader(std::istream& in, std::size_t max_line) : in_(in), max_(max_line) {}

    /// The next line, without its newline; false at the end of the stream. `too_long`
    /// tells that the line was over the limit (`line` is then empty); terminated() whether
    /// it ended with a newline. Throws error when the stream fails.
    bool next(std::string_view& line, bool& too_long) {
        line_.clear();
        too_long = false;
        terminated_ = false;
        offset_ = consumed_;
        bool any = false;
        for (;;) {
            if (pos_ == end_) {
                fill();
                if (end_ == 0) {
                    if (!any)
                        return false;
                    break; // the last line, without a newline
                }
            }
            any = true;
            const char* start = buf_.data() + pos_;
            const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
            const std::size_t n = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
            if (!too_long) {
                if (line_.size() + n > max_) {
                    too_long = true;
                    line_.clear();
                    line_.shrink_to_fit();
                } else {
                    line_.append(start, n);
                }
            }
            pos_ += n;
            consumed_ += n;
            if (nl) {
                ++pos_;
                ++consumed_;
                terminated_ = true;
                break;
            }
        }
        ++line_no_;
        line = line_;
        return true;
    }

    /// The line number (1-based) and byte offset of the line next() returned last.
    std::uint64_t line_no() const noexcept { return line_no_; }
    std::uint64_t offset() const noexcept { return offset_; }
    /// Whether the line next() returned last ended with a newline (only the last line of
    /// a stream may not).
    bool terminated() const noexcept { return terminated_; }

    /// Everything left in the stream after the last line read, up to `limit` bytes in
    /// all with `prefix`; false if there is more.
    bool rest(std::string& prefix, std::size_t limit) {
        prefix.append(buf_.data() + pos_, end_ - pos_);
        pos_ = end_;
        for (;;) {
            if (prefix.size() > limit)
                return false;
            fill();
            if (end_ == 0)
                return true;
            prefix.append(buf_.data(), end_);
            pos_ = end_;
        }
    }

private:
    void fill() {
        pos_ = 0;
        end_ = 0;
        if (in_.eof())
            return;
        in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
        end_ = static_cast<std::size_t>(in_.gcount());
        if (in_.bad() || (in_.fail() && !in_.eof()))
            throw error("cannot read the session to import: the input stream failed");
    }

    std::istream& in_;
    std::size_t max_;
    std::vector<char> buf_ = std::vector<char>(64u << 10);
    std::size_t pos_ = 0, end_ = 0;
    std::uint64_t consumed_ = 0, offset_ = 0, line_no_ = 0;
    bool terminated_ = false;
    std::string line_;
};

/// One export being imported: its first part read at construction (the format and the
/// session's metadata), the exchanges streamed by read_rest().
class session_import {
public:
    /// Reads the beginning of `in`. Throws format_error for an export in a newer format
    /// version, invalid_input for anything that is not an export (no session header on
    /// line 1 and not a json export, a json document over the limit or not valid), error
    /// when the stream fails. Nothing is stored by then.
    session_import(std::istream& in, const import_options& options)
        : lines_(in, options.max_record_bytes), options_(options), reader_(diags_) {
        std::string_view first;
        bool too_long = false;
        if (!lines_.next(first, too_long))
            throw invalid_input("nothing to import: the input is empty");
        if (!too_long) {
            // Line 1 read as a load reads it: a session header makes this a history.
            reader_.read_line(state_, first, 1, 0, false, [](exchange&&) {});
            if (state_.newer_version)
                throw newer(state_.newer_version);
            if (state_.have_header) {
                format_ = export_format::jsonl;
                read_header_id(first);
                if (!lines_.terminated())
                    throw invalid_input("cannot import: the history holds nothing after its "
                                        "header; nothing was imported");
                diags_.clear();
                return;
            }
            diags_.clear();
            state_ = scan_state{};
        }
        format_ = export_format::json;
        if (too_long)
            throw invalid_input(not_an_export("its first line is over the limit of " +
                                              std::to_string(options.max_record_bytes) + " bytes"));
        std::string text(first);
        text += '\n';
        if (!lines_.rest(text, options.max_document_bytes))
            throw invalid_input("cannot import: the json document is over the limit of " +
                                std::to_string(options.max_document_bytes) +
                                " bytes (export the session as jsonl, which is read line by "
                                "line); nothing was imported");
        boost::system::error_code ec;
        json::parse_options po;
        po.max_depth = 64;
        document_ = json::parse(text, ec, json::storage_ptr(), po);
        if (ec)
            throw invalid_input(not_an_export("not valid JSON (" + ec.message() + ")"));
        const auto* root = document_.if_object();
        const auto* session = root ? member(*root, "session") : nullptr;
        const auto* exchanges = root ? member(*root, "exchanges") : nullptr;
        if (!session || !session->is_object() || !exchanges || !exchanges->is_array())
            throw invalid_input(
                not_an_export("expected a history (line 1 a session header) or a json export "
                              "({\"session\": {...}, \"exchanges\": [...]})"));
        const auto& s = session->get_object();
        std::uint64_t version = 1;
        if (member(s, "version") && (!read_uint(s, "version", version) || version == 0))
            throw invalid_input(not_an_export("its session has no valid version"));
        if (version > history_format_version)
            throw newer(version);
        if (!read_time(s, "created_at", state_.meta.created_at))
            throw invalid_input(not_an_export("its session has no valid created_at"));
        state_.meta.updated_at = state_.meta.created_at;
        state_.have_header = true;
        read_string(s, "id", state_.meta.id);
        read_string(s, "title", state_.meta.title);
        if (const auto* e = member(s, "extra"); e && e->is_object())
            state_.meta.extra = e->get_object();
        if (const auto* p = member(s, "pinned"); p && p->is_bool())
            state_.meta.pinned = p->get_bool();
        if (const auto* f = member(s, "forked_from"); f && f->is_object())
            state_.meta.forked_from = read_origin(f->get_object());
        original_id_ = state_.meta.id;
        state_.meta.id.clear();
    }

    export_format format() const noexcept { return format_; }

    /// The id the export names, as it is (not validated).
    const std::string& original_id() const noexcept {
        return format_ == export_format::jsonl ? header_id_ : original_id_;
    }

    /// The session's metadata as the export's beginning gives it (no id, no exchange).
    session_meta meta() const {
        session_meta m = state_.meta;
        m.id.clear();
        m.exchange_count = 0;
        m.updated_at = m.created_at;
        return m;
    }

    /// Hands every readable exchange, in order, and every change of metadata to `sink`,
    /// and appends what was skipped to `diagnostics`. Throws invalid_input when no
    /// exchange could be read, and what the sink and the stream throw.
    void read_rest(session_sink& sink, std::vector<diagnostic>& diagnostics) {
        std::uint64_t added = 0;
        if (format_ == export_format::jsonl) {
            std::string_view line;
            bool too_long = false;
            while (lines_.next(line, too_long)) {
                if (too_long) {
                    reader_.report(lines_.line_no(), lines_.offset(),
                                   too_long_reason(options_.max_record_bytes));
                    continue;
                }
                if (!lines_.terminated()) {
                    // As a load reads a history: bytes after the last newline are a write
                    // that never finished, not a record.
                    reader_.report(lines_.line_no(), lines_.offset(),
                                   "incomplete last line (" + std::to_string(line.size()) +
                                       " bytes, no newline): skipped, as a load skips it");
                    continue;
                }
                const std::string title = state_.meta.title;
                const json::object extra = state_.meta.extra;
                const bool pinned = state_.meta.pinned;
                reader_.read_line(
                    state_, line, lines_.line_no(), lines_.offset(), true, [&](exchange&& ex) {
                        const bool as_written =
                            !reader_.line_repaired() && canonical_exchange_seq(line) == ex.seq;
                        sink.add(ex, as_written ? line : std::string_view());
                        ++added;
                    });
                if (state_.meta.title != title || state_.meta.extra != extra ||
                    state_.meta.pinned != pinned)
                    sink.update(state_.meta);
            }
        } else {
            std::uint64_t index = 0;
            for (const auto& v : document_.get_object().at("exchanges").get_array()) {
                ++index;
                const std::string where = "exchange " + std::to_string(index) + " of the document";
                if (!v.is_object()) {
                    reader_.report(0, 0, where + ": not a JSON object");
                    continue;
                }
                auto ex = read_exchange(v.get_object());
                if (!ex) {
                    reader_.report(0, 0, where + ": bad exchange: " + ex.error().what);
                    continue;
                }
                if (!reader_.note_seq(state_, ex->seq, 0, 0))
                    continue;
                sink.add(*ex, std::string_view());
                ++added;
            }
            document_ = nullptr;
        }
        for (auto& d : diags_)
            diagnostics.push_back(std::move(d));
        diags_.clear();
        if (added == 0)
            throw invalid_input("cannot import: the " + std::string(to_string(format_)) +
                                " export holds no exchange that could be read; nothing was "
                                "imported");
    }

private:
    // The id a header names (kept when it is a string; a line that needs repair to be
    // read gives none).
    void read_header_id(std::string_view line) {
        boost::system::error_code ec;
        json::parse_options po;
        po.max_depth = 64;
        const json::value v = json::parse(line, ec, json::storage_ptr(), po);
        if (!ec && v.is_object())
            read_string(v.get_object(), "id", header_id_);
    }

    static std::string not_an_export(const std::string& why) {
        return "cannot import: not a session export (" + why + "); nothing was imported";
    }

    static format_error newer(std::uint64_t version) {
        return format_error("cannot import: the export is in history format version " +
                            std::to_string(version) + ", newer than this library reads (" +
                            std::to_string(history_format_version) +
                            "); nothing was imported: use a newer dexter-sessions");
    }

    capped_line_reader lines_;
    import_options options_;
    std::vector<diagnostic> diags_;
    record_reader reader_;
    scan_state state_;
    export_format format_ = export_format::jsonl;
    std::string header_id_;
    std::string original_id_;
    json::value document_;
};

} // namespace detail
} // namespace dexter::sessions
