// SPDX-License-Identifier: BSL-1.0
// index.json, the file store's listing cache: its contents, encoded and decoded.
// The index is derived from the history files and may be lost at any time.
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/types.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace dexter::sessions::detail {

/// 2: entries hold "pinned" and "forked_from". An index of version 1 cannot hold them,
/// so it is not trusted: the store rebuilds it from the history files.
inline constexpr std::uint64_t index_format_version = 2;

/// What the index knows of one session: its metadata as of `size` bytes of its history
/// (the end of the last complete line read) holding `lines` lines.
/// `ino` and `mtime_ns` identify the version of the file that was read: a list checks
/// them with one fstatat per session, so that a change made behind the store's back (an
/// editor, a sync tool, `rm`) is noticed at the next list.
struct index_entry {
    session_meta meta;
    std::uint64_t size = 0;
    std::uint64_t lines = 0;
    std::uint64_t newer_version = 0; ///< nonzero: the history's format is too new to read
    std::uint64_t ino = 0;           ///< inode of history.jsonl when read (0: unknown)
    std::int64_t mtime_ns = 0;       ///< its modification time then
    bool no_header = false;          ///< line 1 is not a session header: damaged
    std::uint64_t file_size = 0;     ///< the file's whole size then (a torn tail included)

    friend bool operator==(const index_entry&, const index_entry&) = default;
};

struct index_data {
    std::string boot_id;
    std::uint64_t changes_inode = 0;
    std::uint64_t changes_offset = 0;
    /// channel -> (mtime of the channel directory in ns, sessions)
    struct channel_data {
        std::int64_t dir_mtime_ns = 0;
        std::map<session_id, index_entry> sessions;
    };
    std::map<std::string, channel_data> channels;
};

inline std::string encode_index(const index_data& idx) {
    json::object channels;
    for (const auto& [name, ch] : idx.channels) {
        json::object sessions;
        for (const auto& [id, e] : ch.sessions) {
            json::object o;
            o["title"] = e.meta.title;
            o["created_at"] = format_timestamp(e.meta.created_at);
            o["updated_at"] = format_timestamp(e.meta.updated_at);
            o["exchange_count"] = e.meta.exchange_count;
            o["size"] = e.size;
            o["lines"] = e.lines;
            if (!e.meta.extra.empty())
                o["extra"] = e.meta.extra;
            if (e.meta.pinned)
                o["pinned"] = true;
            if (e.meta.forked_from)
                o["forked_from"] =
                    json::object{{"id", e.meta.forked_from->id}, {"seq", e.meta.forked_from->seq}};
            if (e.newer_version)
                o["newer_version"] = e.newer_version;
            o["ino"] = e.ino;
            o["mtime_ns"] = e.mtime_ns;
            if (e.no_header)
                o["no_header"] = true;
            if (e.file_size != e.size)
                o["file_size"] = e.file_size;
            sessions[id] = std::move(o);
        }
        channels[name] =
            json::object{{"dir_mtime_ns", ch.dir_mtime_ns}, {"sessions", std::move(sessions)}};
    }
    json::object root;
    root["format"] = "dexter-sessions-index";
    root["version"] = index_format_version;
    root["boot_id"] = idx.boot_id;
    root["changes"] = json::object{{"inode", idx.changes_inode}, {"offset", idx.changes_offset}};
    root["channels"] = std::move(channels);
    std::string out;
    append_json_value(out, root); // standard JSON even for an infinite number in `extra`
    out += '\n';
    return out;
}

/// The outcome of reading index.json.
struct index_decode {
    /// older: a version before index_format_version, rebuilt without a word
    enum class status { ok, corrupt, newer, older } state = status::corrupt;
    std::string why;           ///< for corrupt
    std::uint64_t version = 0; ///< for newer
    index_data data;
};

inline index_decode decode_index(std::string_view text) {
    index_decode out;
    auto corrupt = [&](std::string why) {
        out.state = index_decode::status::corrupt;
        out.why = std::move(why);
        return out;
    };
    boost::system::error_code ec;
    json::parse_options po;
    po.max_depth = 64;
    // One arena for the whole document, released at once: much cheaper than a heap
    // allocation per string for an index of thousands of entries.
    json::monotonic_resource arena(text.size() * 2 + 1024);
    const json::value v = json::parse(text, ec, &arena, po);
    if (ec)
        return corrupt("not valid JSON (" + ec.message() + ")");
    if (!v.is_object())
        return corrupt("not a JSON object");
    const auto& root = v.get_object();
    std::string format;
    if (!read_string(root, "format", format) || format != "dexter-sessions-index")
        return corrupt("not a dexter-sessions index");
    std::uint64_t version = 0;
    if (!read_uint(root, "version", version) || version == 0)
        return corrupt("no valid version");
    if (version > index_format_version) {
        out.state = index_decode::status::newer;
        out.version = version;
        return out;
    }
    read_string(root, "boot_id", out.data.boot_id);
    const auto* changes = member(root, "changes");
    if (!changes || !changes->is_object() ||
        !read_uint(changes->get_object(), "inode", out.data.changes_inode) ||
        !read_uint(changes->get_object(), "offset", out.data.changes_offset))
        return corrupt("no valid 'changes' position");
    const auto* channels = member(root, "channels");
    if (!channels || !channels->is_object())
        return corrupt("no 'channels' object");
    for (const auto& ch : channels->get_object()) {
        if (!is_valid_channel(ch.key()) || !ch.value().is_object())
            return corrupt("bad channel entry");
        auto& cd = out.data.channels[std::string(ch.key())];
        const auto& co = ch.value().get_object();
        if (const auto* m = member(co, "dir_mtime_ns"); m && m->is_int64())
            cd.dir_mtime_ns = m->get_int64();
        else if (m && m->is_uint64())
            cd.dir_mtime_ns = static_cast<std::int64_t>(m->get_uint64());
        const auto* sessions = member(co, "sessions");
        if (!sessions || !sessions->is_object())
            return corrupt("bad channel entry");
        for (const auto& s : sessions->get_object()) {
            if (!is_valid_session_id(s.key()) || !s.value().is_object())
                return corrupt("bad session entry");
            const auto& so = s.value().get_object();
            index_entry e;
            e.meta.id = std::string(s.key());
            // One pass over the entry's fields (the hot loop of a list: an index has an
            // entry per session), instead of a lookup per field.
            unsigned required = 0; // one bit per required field seen, well-formed
            bool have_file_size = false;
            for (const auto& f : so) {
                const std::string_view k = f.key();
                const json::value& v = f.value();
                const auto as_uint = [&](std::uint64_t& out) {
                    if (v.is_uint64())
                        out = v.get_uint64();
                    else if (v.is_int64() && v.get_int64() >= 0)
                        out = static_cast<std::uint64_t>(v.get_int64());
                    else
                        return false;
                    return true;
                };
                const auto as_time = [&](time_point& out) {
                    if (!v.is_string())
                        return false;
                    const auto t = parse_timestamp(std::string_view(v.get_string()));
                    if (t)
                        out = *t;
                    return t.has_value();
                };
                if (k == "title") {
                    if (v.is_string()) {
                        e.meta.title.assign(v.get_string().data(), v.get_string().size());
                        required |= 1u;
                    }
                } else if (k == "created_at") {
                    required |= as_time(e.meta.created_at) ? 2u : 0u;
                } else if (k == "updated_at") {
                    required |= as_time(e.meta.updated_at) ? 4u : 0u;
                } else if (k == "exchange_count") {
                    required |= as_uint(e.meta.exchange_count) ? 8u : 0u;
                } else if (k == "size") {
                    required |= as_uint(e.size) ? 16u : 0u;
                } else if (k == "lines") {
                    required |= as_uint(e.lines) ? 32u : 0u;
                } else if (k == "extra") {
                    if (v.is_object())
                        e.meta.extra = json::object(v.get_object(), json::storage_ptr());
                } else if (k == "pinned") {
                    if (v.is_bool())
                        e.meta.pinned = v.get_bool();
                } else if (k == "forked_from") {
                    if (v.is_object())
                        e.meta.forked_from = read_origin(v.get_object());
                } else if (k == "newer_version") {
                    as_uint(e.newer_version);
                } else if (k == "ino") {
                    // Absent in an index written by 0.1: then every entry is checked once.
                    as_uint(e.ino);
                } else if (k == "mtime_ns") {
                    if (v.is_int64())
                        e.mtime_ns = v.get_int64();
                } else if (k == "no_header") {
                    if (v.is_bool())
                        e.no_header = v.get_bool();
                } else if (k == "file_size") {
                    have_file_size = as_uint(e.file_size);
                }
            }
            if (required != 63u)
                return corrupt("bad entry for session " + e.meta.id);
            if (!have_file_size)
                e.file_size = e.size;
            cd.sessions.emplace(e.meta.id, std::move(e));
        }
    }
    // An older version that is well formed: not damaged, but not to be trusted either
    // (it cannot hold what this version lists).
    out.state =
        version < index_format_version ? index_decode::status::older : index_decode::status::ok;
    out.version = version;
    return out;
}

} // namespace dexter::sessions::detail
