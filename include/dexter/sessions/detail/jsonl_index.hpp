// SPDX-License-Identifier: BSL-1.0
// index.json, the file store's listing cache: its contents, encoded and decoded.
// The index is derived from the history files and may be lost at any time.
#pragma once

#include <dexter/sessions/detail/json_writer.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/types.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// 2: entries hold "pinned" and "forked_from". An index of version 1 cannot hold them,
/// so it is not trusted: the store rebuilds it from the history files.
inline constexpr std::uint64_t index_format_version = 2;

/// What the index knows of one session: its metadata as of `size` bytes of its history
/// (the end of the last complete line read) holding `lines` lines.
/// `ino` and `mtime_ns` identify the version of the file that was read: a find, each
/// session of a page, a verify and a checked list compare them with one fstatat, so that
/// a change made behind the store's back (an editor, a sync tool, `rm`) is noticed.
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

/// The order of a listing: most recently updated first, ties by id.
inline bool newest_first(const index_entry* a, const index_entry* b) noexcept {
    return a->meta.updated_at != b->meta.updated_at ? a->meta.updated_at > b->meta.updated_at
                                                    : a->meta.id < b->meta.id;
}

inline std::string encode_index(const index_data& idx) {
    json::object channels;
    for (const auto& [name, ch] : idx.channels) {
        // Newest first, as a listing shows them, so that a page of the newest sessions is
        // read from the beginning of the file (index_decoder::partial_read).
        std::vector<const index_entry*> order;
        order.reserve(ch.sessions.size());
        for (const auto& kv : ch.sessions)
            order.push_back(&kv.second);
        std::sort(order.begin(), order.end(), newest_first);
        json::object sessions(order.size());
        for (const index_entry* ep : order) {
            const index_entry& e = *ep;
            const session_id& id = e.meta.id;
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
        channels[name] = json::object{{"dir_mtime_ns", ch.dir_mtime_ns},
                                      {"order", "newest_first"},
                                      {"sessions", std::move(sessions)}};
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

/// Decodes index.json as it is read, chunk by chunk, straight into index_data: events of
/// Boost.JSON's basic_parser, no json::value for the document. A list of 10,000 sessions
/// then touches the memory of its entries and of one chunk, where a DOM of the whole
/// file took three times the file's size (and, on a virtual machine, a page fault costs
/// more than the parse). Only `extra` and `forked_from`, small and free-form, are built
/// as values. Decides as a DOM decode would: what is corrupt and why (the first problem
/// in document order, after the format, version, changes and channels checks), newer and
/// older versions, and the last copy of a repeated member winning; except that a damaged
/// copy of a repeated session or channel makes the index damaged even when a later copy
/// is good, and that Boost.JSON names some bad escapes differently when a chunk ends in
/// them (the index is damaged either way; only the reason's words differ).
class index_decoder {
public:
    /// Straight from the file: the sessions of one channel read as the file is decoded,
    /// and no index_data kept for them, for a store that has not loaded the index. Two
    /// uses: a page (`request` set: reading stops once it has the page and one more, or
    /// else reads to the end), and a whole listing (`all` set: the channel's sessions
    /// moved out as they come). The file serves them only when it says its entries are
    /// in listing order (`"order": "newest_first"`, written before them) and they are
    /// (each entry is checked against the one before it), when it has its format,
    /// version, boot_id and changes position before its channels, as encode_index()
    /// writes them, and they are the ones expected (the index is current), and when
    /// nothing it reads is damaged or written twice (a whole read would take the later
    /// copy).
    struct partial_read {
        const std::string* channel = nullptr; ///< the store's channel
        const page_request* request = nullptr;
        std::vector<index_entry> picked;          ///< a page: up to request->limit + 1 entries
        std::vector<session_meta>* all = nullptr; ///< a listing: every readable session
        std::vector<session_id> headerless;       ///< a listing: those without a header
        /// What the file must say to be current, as the caller found them just before:
        /// this boot, changes.log's inode and size, the channel directory's mtime. The
        /// read gives up as soon as the file says otherwise (before its channels, or its
        /// channel's sessions), not after reading on.
        std::string_view boot_id;
        std::uint64_t log_inode = 0, log_size = 0;
        std::int64_t dir_mtime_ns = 0;
        bool complete = false; ///< the page or listing is all there
        bool unusable = false; ///< the file cannot serve it: read it whole
    };

    index_decoder() : parser_(parse_options()) {}
    /// A decoder for a partial read, filling `part`.
    explicit index_decoder(partial_read& part) : parser_(parse_options()) {
        parser_.handler().page = &part;
    }

    /// Feeds the next bytes of the file. Returns false once the text is not valid JSON
    /// (nothing more needs to be fed; finish() says why).
    bool feed(std::string_view chunk) {
        if (ec_)
            return false;
        while (!chunk.empty()) {
            const std::size_t n = parser_.write_some(true, chunk.data(), chunk.size(), ec_);
            if (ec_)
                return false;
            chunk.remove_prefix(n);
            if (parser_.done()) { // anything after the document but whitespace is an error
                if (chunk.find_first_not_of(" \t\r\n") != std::string_view::npos) {
                    ec_ = json::error::extra_data;
                    return false;
                }
                return true;
            }
        }
        return true;
    }

    /// The outcome, once every byte was fed.
    index_decode finish() {
        if (!ec_ && !parser_.done())
            parser_.write_some(false, nullptr, 0, ec_);
        auto& h = parser_.handler();
        auto corrupt = [&](std::string why) {
            index_decode out;
            out.state = index_decode::status::corrupt;
            out.why = std::move(why);
            return out;
        };
        if (ec_)
            return corrupt("not valid JSON (" + ec_.message() + ")");
        if (!h.root_is_object)
            return corrupt("not a JSON object");
        if (!h.format || *h.format != "dexter-sessions-index")
            return corrupt("not a dexter-sessions index");
        if (!h.version || *h.version == 0)
            return corrupt("no valid version");
        if (*h.version > index_format_version) {
            index_decode out;
            out.state = index_decode::status::newer;
            out.version = *h.version;
            return out;
        }
        if (!h.changes_ok())
            return corrupt("no valid 'changes' position");
        if (!h.channels_is_object)
            return corrupt("no 'channels' object");
        if (!h.problem.empty())
            return corrupt(std::move(h.problem));
        index_decode out;
        out.data = std::move(h.data);
        out.data.changes_inode = *h.changes_inode;
        out.data.changes_offset = *h.changes_offset;
        out.data.boot_id = h.boot_id.value_or(std::string());
        // An older version that is well formed: not damaged, but not to be trusted either
        // (it cannot hold what this version lists).
        out.state = *h.version < index_format_version ? index_decode::status::older
                                                      : index_decode::status::ok;
        out.version = *h.version;
        return out;
    }

private:
    static json::parse_options parse_options() {
        json::parse_options po;
        po.max_depth = 64;
        return po;
    }

    // A scalar as the parser gave it.
    struct scalar {
        enum class kind { string, int64, uint64, other } what = kind::other;
        std::string_view text;
        std::int64_t i = 0;
        std::uint64_t u = 0;

        bool as_uint(std::uint64_t& out) const {
            if (what == kind::uint64)
                out = u;
            else if (what == kind::int64 && i >= 0)
                out = static_cast<std::uint64_t>(i);
            else
                return false;
            return true;
        }
    };

    struct handler {
        static constexpr std::size_t max_object_size = std::size_t(-1);
        static constexpr std::size_t max_array_size = std::size_t(-1);
        static constexpr std::size_t max_key_size = std::size_t(-1);
        static constexpr std::size_t max_string_size = std::size_t(-1);

        // Where a container sits: what its members mean.
        enum class place {
            root,
            changes,
            channels,
            channel,
            sessions,
            entry,
            skipped, // a container whose members mean nothing here
            captured // extra or forked_from: built as a json::value
        };
        // The keys that mean something somewhere, told apart once per key.
        enum class name : unsigned char {
            other,
            format,
            version,
            boot_id,
            changes,
            channels,
            inode,
            offset,
            dir_mtime_ns,
            sessions,
            title,
            created_at,
            updated_at,
            exchange_count,
            size,
            lines,
            extra,
            forked_from,
            newer_version,
            ino,
            mtime_ns,
            file_size,
            pinned,
            no_header,
            order
        };
        static name name_of(std::string_view k) noexcept {
            static constexpr std::pair<std::string_view, name> known[] = {
                {"format", name::format},
                {"version", name::version},
                {"boot_id", name::boot_id},
                {"changes", name::changes},
                {"channels", name::channels},
                {"inode", name::inode},
                {"offset", name::offset},
                {"dir_mtime_ns", name::dir_mtime_ns},
                {"sessions", name::sessions},
                {"title", name::title},
                {"created_at", name::created_at},
                {"updated_at", name::updated_at},
                {"exchange_count", name::exchange_count},
                {"size", name::size},
                {"lines", name::lines},
                {"extra", name::extra},
                {"forked_from", name::forked_from},
                {"newer_version", name::newer_version},
                {"ino", name::ino},
                {"mtime_ns", name::mtime_ns},
                {"file_size", name::file_size},
                {"pinned", name::pinned},
                {"no_header", name::no_header},
                {"order", name::order}};
            // The size and the first byte tell every known key from the others of its
            // size: a whole comparison is left for the one candidate.
            static_assert([] {
                for (const auto& a : known)
                    for (const auto& b : known)
                        if (&a != &b && a.first.size() == b.first.size() &&
                            a.first[0] == b.first[0])
                            return false;
                return true;
            }());
            if (k.empty())
                return name::other;
            for (const auto& [text, n] : known)
                if (text.size() == k.size() && text[0] == k[0])
                    return std::equal(text.begin() + 1, text.end(), k.begin() + 1) ? n
                                                                                   : name::other;
            return name::other;
        }
        struct level {
            place where;
            std::string key;      // the key of the member being read (channels, sessions)
            name n = name::other; // what that key means
        };

        // What the document said (nothing: absent or not of the right type).
        bool root_is_object = false;
        std::optional<std::string> format;
        std::optional<std::uint64_t> version;
        std::optional<std::string> boot_id;
        std::optional<std::uint64_t> changes_inode, changes_offset;
        bool changes_is_object = false;
        bool channels_is_object = false;
        std::string problem; // the first problem of the channels, in document order
        index_data data;

        bool changes_ok() const { return changes_is_object && changes_inode && changes_offset; }

        std::vector<level> stack;
        std::string key_buf, string_buf;
        // The channel and the entry being read.
        index_data::channel_data* channel = nullptr;
        bool channel_has_sessions = false;
        index_entry entry;
        unsigned required = 0; // one bit per required field seen, well formed
        bool have_file_size = false;
        // A partial read (nullptr: a whole decode), whether the channel being read is the
        // store's, and whether it says its entries are newest first.
        partial_read* page = nullptr;
        bool own_channel = false;
        bool channels_seen = false;     // a partial read: "channels" has begun
        bool own_channel_seen = false;  // ... the store's channel has begun
        bool own_sessions_seen = false; // ... and its "sessions"
        bool own_dir_mtime_seen = false;
        std::int64_t own_dir_mtime_ns = 0;
        index_entry previous_copy;             // a partial read: the order keys of the entry before
        std::vector<std::uint64_t> listed_ids; // a partial listing: every id, packed
        bool listing_order = false;
        bool stop = false; // a partial read: nothing more is needed from the file
        // A captured value: which member, how deep, and the value being built.
        name captured_key = name::other;
        std::size_t captured_depth = 0;
        json::value_stack captured;

        void fail(std::string why) {
            if (problem.empty())
                problem = std::move(why);
            // A damaged index serves no partial read: what it has read so far may be cut
            // short (the entries after a bad one are not taken), and the usual path
            // reports the damage and rebuilds.
            if (page)
                give_up();
        }

        // A partial read: whether the members before "channels" say the index is current.
        bool header_current() const {
            return format && *format == "dexter-sessions-index" && version &&
                   *version == index_format_version &&
                   (boot_id ? std::string_view(*boot_id) : std::string_view()) == page->boot_id &&
                   changes_ok() && *changes_inode == page->log_inode &&
                   *changes_offset == page->log_size;
        }

        // Whether the member being read (of a container of the index's own) is one whose
        // value is a scalar.
        bool expects_scalar() const {
            const name n = stack.back().n;
            switch (here()) {
            case place::root:
                return n == name::format || n == name::version || n == name::boot_id;
            case place::changes:
                return n == name::inode || n == name::offset;
            case place::channel:
                return n == name::dir_mtime_ns || n == name::order;
            case place::entry:
                return n != name::extra && n != name::forked_from && n != name::other;
            default:
                return false;
            }
        }

        // A partial read: this file cannot serve it.
        void give_up() {
            page->unusable = true;
            stop = true;
        }

        // A partial read: entry `e` of the store's channel, the next in the file.
        void take(index_entry&& e) {
            if (!previous_copy.meta.id.empty() && !newest_first(&previous_copy, &e)) {
                give_up(); // not in listing order after all
                return;
            }
            previous_copy.meta.id = e.meta.id;
            previous_copy.meta.updated_at = e.meta.updated_at;
            // Ids are 8 bytes: kept packed, to find one listed twice (listed_twice()).
            std::uint64_t packed = 0;
            std::memcpy(&packed, e.meta.id.data(), std::min<std::size_t>(8, e.meta.id.size()));
            listed_ids.push_back(packed);
            if (page->all) {
                if (e.newer_version)
                    return;
                if (e.no_header)
                    page->headerless.push_back(e.meta.id);
                page->all->push_back(std::move(e.meta));
                return;
            }
            const page_request& r = *page->request;
            if (e.newer_version || !page_admits(e.meta, r) ||
                (r.after && !listed_after(e.meta, *r.after)))
                return;
            page->picked.push_back(std::move(e));
            if (page->picked.size() > r.limit) {
                page->complete = true;
                stop = true;
                if (listed_twice())
                    give_up();
            }
        }

        // A partial read: whether a session of the store's channel was read twice (an
        // index edited by hand: a whole read takes the last copy).
        bool listed_twice() {
            std::sort(listed_ids.begin(), listed_ids.end());
            return std::adjacent_find(listed_ids.begin(), listed_ids.end()) != listed_ids.end();
        }

        // The end of a callback: false, stopping the parser, once a partial read has what
        // it needs (or cannot be served).
        bool proceed(boost::system::error_code& ec) {
            if (!stop)
                return true;
            ec = boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
            return false;
        }

        // The place of the member now being read, and its key.
        place here() const { return stack.empty() ? place::root : stack.back().where; }
        const std::string& key() const { return stack.back().key; }

        // A scalar member of the container being read.
        void value(const scalar& v) {
            if (stack.empty())
                return; // the whole document is a scalar: root_is_object stays false
            const name n = stack.back().n;
            switch (here()) {
            case place::root:
                // A member of the header repeated after the channels: a whole read takes
                // the later copy, which a page may never reach.
                if (page && channels_seen && n != name::other)
                    give_up();
                if (n == name::format)
                    format = v.what == scalar::kind::string
                                 ? std::optional<std::string>(std::string(v.text))
                                 : std::nullopt;
                else if (n == name::version)
                    version = [&]() -> std::optional<std::uint64_t> {
                        std::uint64_t u = 0;
                        return v.as_uint(u) ? std::optional<std::uint64_t>(u) : std::nullopt;
                    }();
                else if (n == name::boot_id)
                    boot_id = v.what == scalar::kind::string
                                  ? std::optional<std::string>(std::string(v.text))
                                  : std::nullopt;
                else if (n == name::changes)
                    changes_is_object = false;
                else if (n == name::channels)
                    channels_is_object = false;
                break;
            case place::changes: {
                std::uint64_t u = 0;
                const bool ok = v.as_uint(u);
                if (n == name::inode)
                    changes_inode = ok ? std::optional<std::uint64_t>(u) : std::nullopt;
                else if (n == name::offset)
                    changes_offset = ok ? std::optional<std::uint64_t>(u) : std::nullopt;
                break;
            }
            case place::channels:
                fail("bad channel entry");
                break;
            case place::channel:
                if (n == name::dir_mtime_ns) {
                    if (v.what == scalar::kind::int64)
                        channel->dir_mtime_ns = v.i;
                    else if (v.what == scalar::kind::uint64)
                        channel->dir_mtime_ns = static_cast<std::int64_t>(v.u);
                    else
                        channel->dir_mtime_ns = 0;
                } else if (n == name::sessions) {
                    channel_has_sessions = false;
                } else if (n == name::order) {
                    listing_order = v.what == scalar::kind::string && v.text == "newest_first";
                }
                if (own_channel && n == name::dir_mtime_ns) {
                    // Before the sessions, once, as encode_index() writes it.
                    if (own_sessions_seen || own_dir_mtime_seen)
                        give_up();
                    own_dir_mtime_seen = true;
                    own_dir_mtime_ns = channel->dir_mtime_ns;
                } else if (own_channel && n == name::sessions) {
                    give_up();
                }
                break;
            case place::sessions:
                fail("bad session entry");
                break;
            case place::entry:
                entry_field(n, v);
                break;
            default:
                break;
            }
        }

        void entry_field(name n, const scalar& v) {
            const auto as_time = [&](time_point& out) {
                if (v.what != scalar::kind::string)
                    return false;
                const auto t = parse_timestamp(v.text);
                if (t)
                    out = *t;
                return t.has_value();
            };
            const auto bit = [&](unsigned b, bool ok) {
                required = ok ? required | b : required & ~b;
            };
            if (n == name::title) {
                if (v.what == scalar::kind::string)
                    entry.meta.title.assign(v.text.data(), v.text.size());
                bit(1u, v.what == scalar::kind::string);
            } else if (n == name::created_at) {
                bit(2u, as_time(entry.meta.created_at));
            } else if (n == name::updated_at) {
                bit(4u, as_time(entry.meta.updated_at));
            } else if (n == name::exchange_count) {
                bit(8u, v.as_uint(entry.meta.exchange_count));
            } else if (n == name::size) {
                bit(16u, v.as_uint(entry.size));
            } else if (n == name::lines) {
                bit(32u, v.as_uint(entry.lines));
            } else if (n == name::extra) {
                entry.meta.extra = {};
            } else if (n == name::forked_from) {
                entry.meta.forked_from.reset();
            } else if (n == name::newer_version) {
                if (!v.as_uint(entry.newer_version))
                    entry.newer_version = 0;
            } else if (n == name::ino) {
                // Absent in an index written by 0.1: then every entry is checked once.
                if (!v.as_uint(entry.ino))
                    entry.ino = 0;
            } else if (n == name::mtime_ns) {
                entry.mtime_ns = v.what == scalar::kind::int64 ? v.i : 0;
            } else if (n == name::file_size) {
                have_file_size = v.as_uint(entry.file_size);
            } else if (n == name::pinned) { // true and false come through on_bool()
                entry.meta.pinned = false;
            } else if (n == name::no_header) {
                entry.no_header = false;
            }
        }

        // A member that is an object or an array: the place its members have.
        void open(bool is_object) {
            if (stack.empty()) {
                root_is_object = is_object;
                stack.push_back({is_object ? place::root : place::skipped, {}});
                return;
            }
            // Where a scalar is expected, a container is a value of the wrong type: it
            // replaces an earlier copy of the member as such a scalar would.
            if (!capturing() && expects_scalar())
                value(scalar{});
            const std::string& k = key();
            const name n = stack.back().n;
            place next = place::skipped;
            switch (here()) {
            case place::root:
                if (page && channels_seen && n != name::other)
                    give_up(); // as for a scalar member of the header (value())
                if (n == name::changes) {
                    changes_is_object = is_object;
                    changes_inode.reset();
                    changes_offset.reset();
                    if (is_object)
                        next = place::changes;
                } else if (n == name::channels) {
                    channels_is_object = is_object;
                    // The header comes first, and must say the index is current: a file
                    // that is not is given up here, before its channels are read.
                    if (page && (channels_seen || !header_current()))
                        give_up();
                    channels_seen = true;
                    if (is_object) {
                        data.channels.clear();
                        next = place::channels;
                    }
                }
                break;
            case place::channels:
                if (!is_object || !is_valid_channel(k)) {
                    fail("bad channel entry");
                } else if (problem.empty()) {
                    channel = &data.channels[k];
                    *channel = {};
                    channel_has_sessions = false;
                    own_channel = page && k == *page->channel;
                    listing_order = false;
                    if (own_channel && std::exchange(own_channel_seen, true))
                        give_up(); // the channel twice: a whole read takes the later copy
                    next = place::channel;
                }
                break;
            case place::channel:
                if (n == name::sessions) {
                    channel_has_sessions = is_object;
                    // In listing order, once, after the directory's mtime, which must be
                    // the one the caller found.
                    if (own_channel &&
                        (!listing_order || std::exchange(own_sessions_seen, true) ||
                         !own_dir_mtime_seen || own_dir_mtime_ns != page->dir_mtime_ns))
                        give_up();
                    if (is_object) {
                        channel->sessions.clear();
                        next = place::sessions;
                    }
                }
                break;
            case place::sessions:
                if (!is_object || !is_valid_session_id(k)) {
                    fail("bad session entry");
                } else if (problem.empty()) {
                    entry = {};
                    entry.meta.id = k;
                    required = 0;
                    have_file_size = false;
                    next = place::entry;
                }
                break;
            case place::entry:
                if (n == name::extra || n == name::forked_from) {
                    captured_key = n;
                    captured_depth = stack.size() + 1;
                    captured.reset();
                    next = place::captured;
                }
                break;
            case place::captured: // a container inside extra or forked_from
                next = place::captured;
                break;
            default:
                break;
            }
            stack.push_back({next, {}});
        }

        // The end of the container on top of the stack.
        void close() {
            const place was = here();
            if (was == place::captured && stack.size() == captured_depth) {
                json::value v = captured.release();
                if (captured_key == name::extra)
                    entry.meta.extra = v.is_object() ? std::move(v.get_object()) : json::object();
                else
                    entry.meta.forked_from =
                        v.is_object() ? read_origin(v.get_object()) : std::nullopt;
            }
            stack.pop_back();
            if (was == place::channel) {
                if (!channel_has_sessions)
                    fail("bad channel entry");
            } else if (was == place::sessions && own_channel) {
                // The channel's last session: the page or listing is what it has. Both read
                // on, so that the whole file is checked, as a whole read would (finish()):
                // a whole read would take a later copy of the channel or of its sessions,
                // and a page that has all of the channel's sessions is no faster to find
                // than the listing. (A page that stopped at limit + 1 sessions cannot know
                // of a copy further on: its sessions are those of the first copy.) A
                // session listed twice (an index edited by hand) is the last copy in a
                // whole read: such a file is read whole.
                page->complete = true;
                if (listed_twice())
                    give_up();
            } else if (was == place::entry) {
                if (required != 63u) {
                    fail("bad entry for session " + entry.meta.id);
                    return;
                }
                if (!have_file_size)
                    entry.file_size = entry.size;
                if (page) {
                    if (own_channel)
                        take(std::move(entry));
                    return; // a partial read keeps no other entry
                }
                std::string id = entry.meta.id;
                channel->sessions.insert_or_assign(std::move(id), std::move(entry));
            }
        }

        bool on_document_begin(boost::system::error_code&) { return true; }
        bool on_document_end(boost::system::error_code&) { return true; }

        bool on_object_begin(boost::system::error_code& ec) {
            open(true);
            return proceed(ec);
        }
        bool on_object_end(std::size_t n, boost::system::error_code& ec) {
            if (capturing())
                captured.push_object(n);
            close();
            return proceed(ec);
        }
        bool on_array_begin(boost::system::error_code& ec) {
            open(false);
            return proceed(ec);
        }
        bool on_array_end(std::size_t n, boost::system::error_code& ec) {
            if (capturing())
                captured.push_array(n);
            close();
            return proceed(ec);
        }
        bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
            if (capturing())
                captured.push_chars(s);
            else
                key_buf.append(s.data(), s.size());
            return true;
        }
        bool on_key(json::string_view s, std::size_t, boost::system::error_code&) {
            if (capturing()) {
                captured.push_key(s);
                return true;
            }
            level& l = stack.back();
            std::string_view k(s.data(), s.size());
            if (!key_buf.empty()) { // a key split between two chunks of the file
                key_buf.append(k);
                k = key_buf;
            }
            l.n = name_of(k);
            // Only a channel's name and a session's id are read as text (open()).
            if (l.where == place::channels || l.where == place::sessions)
                l.key.assign(k);
            key_buf.clear();
            return true;
        }
        bool on_string_part(json::string_view s, std::size_t, boost::system::error_code&) {
            if (capturing())
                captured.push_chars(s);
            else
                string_buf.append(s.data(), s.size());
            return true;
        }
        bool on_string(json::string_view s, std::size_t, boost::system::error_code&) {
            if (capturing()) {
                captured.push_string(s);
                return true;
            }
            scalar v;
            v.what = scalar::kind::string;
            if (string_buf.empty()) {
                v.text = std::string_view(s.data(), s.size());
                value(v);
            } else {
                string_buf.append(s.data(), s.size());
                v.text = string_buf;
                value(v);
                string_buf.clear();
            }
            return true;
        }
        bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
        bool on_int64(std::int64_t i, json::string_view, boost::system::error_code&) {
            if (capturing()) {
                captured.push_int64(i);
                return true;
            }
            scalar v;
            v.what = scalar::kind::int64;
            v.i = i;
            value(v);
            return true;
        }
        bool on_uint64(std::uint64_t u, json::string_view, boost::system::error_code&) {
            if (capturing()) {
                captured.push_uint64(u);
                return true;
            }
            scalar v;
            v.what = scalar::kind::uint64;
            v.u = u;
            value(v);
            return true;
        }
        bool on_double(double d, json::string_view, boost::system::error_code&) {
            if (capturing())
                captured.push_double(d);
            else
                value(scalar{});
            return true;
        }
        bool on_bool(bool b, boost::system::error_code&) {
            if (capturing())
                captured.push_bool(b);
            else if (here() == place::entry && !stack.empty() && stack.back().n == name::pinned)
                entry.meta.pinned = b;
            else if (here() == place::entry && !stack.empty() && stack.back().n == name::no_header)
                entry.no_header = b;
            else
                value(scalar{});
            return true;
        }
        bool on_null(boost::system::error_code&) {
            if (capturing())
                captured.push_null();
            else
                value(scalar{});
            return true;
        }
        bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
        bool on_comment(json::string_view, boost::system::error_code&) { return true; }

    private:
        bool capturing() const { return !stack.empty() && stack.back().where == place::captured; }
    };

    json::basic_parser<handler> parser_;
    boost::system::error_code ec_;
};

inline index_decode decode_index(std::string_view text) {
    index_decoder d;
    d.feed(text);
    return d.finish();
}

} // namespace dexter::sessions::detail
