// SPDX-License-Identifier: BSL-1.0
// The file store's listing cache, kept true to the history files.
//
// index_cache owns the index in memory (what index.json holds, and what this process has
// learnt since), and everything that keeps it true to the history files, which always
// win: catching up with changes.log, noticing sessions added or removed behind the
// store's back (channel directory mtimes; one fstatat per session on a find, on each
// session of a page, and on every session for a verify or a checked list), reading a
// changed history again, finishing deletions that crashed, and cleaning up sessions whose
// creation was interrupted (an unborn session, a `.new-*` build directory). Reading and
// writing index.json itself (size cap, quarantine, index.lock) is index_file.hpp's. The
// index is a cache: a failure to write it is a note, never an error; a failure to read a
// history or list a directory is an error, never "absent".
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/index_file.hpp>
#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/quarantine.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/detail/session_builder.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// What an index_cache needs of its store, for one call: made by the store where it is
/// used (it refers to the store's members, which may move between calls).
template <file_ops Ops>
struct index_context {
    Ops& ops;
    int root_fd;
    const std::filesystem::path& root;
    int channel_fd; ///< the store's channel directory; -1 while it does not exist
    const std::string& channel;
    const change_log<Ops>& log;
    const std::string& boot_id; ///< this boot's identity ("" when unknown)
    std::size_t max_record_bytes;
    std::size_t max_index_bytes;
    std::vector<diagnostic>& notes; ///< where store-level notes go (note_once)
};

/// The index of one store object: sessions of every channel of the root, as of what was
/// last read, checked and written. Not thread-safe (neither is the store).
template <file_ops Ops>
class index_cache {
public:
    using context = index_context<Ops>;

    /// Brings the index up to date with the history files: reads index.json if it
    /// changed, catches up with changes.log (or verifies everything when it cannot: no
    /// usable index, another boot, a replaced or far-grown log), and notices sessions
    /// added or removed through the channel directories' mtimes. With `write_back`, and
    /// after any full verification, writes index.json when the index changed (a failure
    /// is a note). Throws storage_error when a directory cannot be listed or a history
    /// cannot be read (EIO, EMFILE, ...): nothing is concluded, or written, from it.
    void refresh(const context& c, bool write_back) {
        bool verify_all = load_file(c);
        std::uint64_t log_size = 0, log_inode = 0;
        if (c.log) {
            struct stat st {};
            if (c.log.snapshot(c.ops, st)) {
                log_size = static_cast<std::uint64_t>(st.st_size);
                log_inode = static_cast<std::uint64_t>(st.st_ino);
            } else {
                verify_all = true;
            }
        }
        if (!c.log || data_.boot_id != c.boot_id || data_.changes_inode != log_inode ||
            data_.changes_offset > log_size || log_size - data_.changes_offset > (64u << 20))
            verify_all = true;
        bool changed = false;
        if (verify_all) {
            changed = verify_everything(c);
        } else {
            if (log_size > data_.changes_offset)
                changed = apply_changes(c, data_.changes_offset, log_size);
            changed = reconcile_channel_dirs(c) || changed;
        }
        if (data_.changes_offset != log_size || data_.changes_inode != log_inode ||
            data_.boot_id != c.boot_id)
            changed = true;
        data_.changes_offset = log_size;
        data_.changes_inode = log_inode;
        data_.boot_id = c.boot_id;
        if (changed)
            dirty_ = true;
        // A full verification is worth keeping even when the caller only reads: the next
        // process would otherwise repeat it.
        if ((write_back || verify_all) && dirty_)
            write(c);
    }

    /// For a repair, and a list with jsonl_options::list_checks_histories: one
    /// fstatat per session of the store's channel; an entry whose history changed size,
    /// inode or modification time since it was read is read again, one whose history is
    /// gone dropped. Then writes index.json if the index changed (a failure is a note).
    /// Throws as refresh() does.
    void check_all(const context& c) {
        if (check_entries(c))
            dirty_ = true;
        write_if_dirty(c);
    }

    /// Writes index.json if the in-memory index holds changes it does not (a failure is
    /// a note).
    void write_if_dirty(const context& c) {
        if (dirty_)
            write(c);
    }

    /// For a page of a list: checks the entries of sessions `ids` of the store's channel
    /// (one fstatat each), reading again each whose history changed and dropping each
    /// whose history is gone. Returns true when one of them changed, was dropped, or can
    /// no longer be read: the page must be chosen again. Throws as refresh() does.
    bool check_sessions(const context& c, const std::vector<session_id>& ids) {
        bool changed = false;
        for (const auto& id : ids) {
            const auto* e = entry(c.channel, id);
            if (!e) {
                changed = true;
                continue;
            }
            if (entry_is_current(c, id, *e))
                continue;
            const bool entry_changed = refresh_entry(c, c.channel, id);
            if (entry_changed)
                dirty_ = true;
            if (entry_changed || unreadable_.count(id))
                changed = true;
        }
        return changed;
    }

    /// A page, or the whole listing, of the store's channel straight from index.json, for
    /// an object that has not read the index (a new process, say): the file is decoded
    /// from its beginning into `part` (a page stops once it has what it needs), and none
    /// of it is kept here. Served only when the index is current: this library's format
    /// and version, written in this boot, entries in listing order, and nothing in
    /// changes.log or the channel directory since; and, for a page, when every session on
    /// it is current with its history (one fstatat each). False otherwise: the caller
    /// takes the usual path (refresh(), then the whole index), which also reports what is
    /// wrong, if anything. Tried once per object: a host that lists again, or pages on
    /// through its sessions, is better served by the index kept in memory than by reading
    /// the file from its beginning for every page.
    bool read_partially(const context& c, index_decoder::partial_read& part) {
        if (file_.loaded() || !c.log || c.channel_fd < 0 || streamed_)
            return false;
        struct stat log {
        }, dir{};
        if (!c.log.snapshot(c.ops, log) || c.ops.fstat(c.channel_fd, &dir) < 0)
            return false;
        streamed_ = true;
        part.channel = &c.channel;
        part.boot_id = c.boot_id;
        part.log_inode = static_cast<std::uint64_t>(log.st_ino);
        part.log_size = static_cast<std::uint64_t>(log.st_size);
        part.dir_mtime_ns = mtime_ns(dir);
        index_decoder decoder(part);
        const bool read = file_.stream(file_context(c), decoder, [&](std::uint64_t size) {
            if (part.all) // about 200 bytes an entry: reserved, not touched, beyond that
                part.all->reserve(static_cast<std::size_t>(size / 128));
        });
        // A listing, or a page that holds all the channel's sessions, read the whole file:
        // it must be a good index to the end, or the usual path reads it again, and reports.
        const bool whole_file = part.all || part.picked.size() <= part.request->limit;
        if (!read || !part.complete || part.unusable ||
            (whole_file && decoder.finish().state != index_decode::status::ok))
            return false;
        if (part.request) {
            const std::size_t shown = std::min(part.picked.size(), part.request->limit);
            for (std::size_t i = 0; i < shown; ++i)
                if (!entry_is_current(c, part.picked[i].meta.id, part.picked[i]))
                    return false;
        }
        return true;
    }

    /// For a find: checks the entry of session `id` of the store's channel (one
    /// fstatat), or, when it has none, asks its history (an index edited, or restored
    /// from an older copy, must not hide a session). An entry corrected here is written
    /// back at once (a failure is a note), so that the next list, in any process, shows
    /// what the history holds. Throws as refresh() does.
    void check_session(const context& c, const session_id& id) {
        bool corrected = false;
        if (!check_entry(c, id, corrected) && refresh_entry(c, c.channel, id))
            corrected = true;
        if (corrected) {
            dirty_ = true;
            write(c);
        }
    }

    /// The sessions of `channel`, or nullptr when the index knows none.
    const index_data::channel_data* sessions_of(const std::string& channel) const {
        auto it = data_.channels.find(channel);
        return it == data_.channels.end() ? nullptr : &it->second;
    }

    /// The entry of session `id` of `channel`, or nullptr when the index has none.
    const index_entry* entry(const std::string& channel, const session_id& id) const {
        const auto* ch = sessions_of(channel);
        if (!ch)
            return nullptr;
        const auto it = ch->sessions.find(id);
        return it == ch->sessions.end() ? nullptr : &it->second;
    }

    /// Sessions of the store's channel that exist but cannot be read here (EACCES,
    /// EPERM, not a regular file), with why: left out of a list, an error from a find.
    const std::map<session_id, int>& unreadable() const noexcept { return unreadable_; }

    /// Metadata of session `id` of the store's channel, whose history is open as `fd`
    /// (at `path`), as of its last complete line: from its entry plus the lines written
    /// since, or from the whole file when there is no usable entry. An entry the history
    /// contradicts is corrected from the scan (the history wins). Line problems go to
    /// `diags`. Throws storage_error when the history cannot be read.
    scan_state read_state(const context& c, const session_id& id, int fd, const std::string& path,
                          std::vector<diagnostic>& diags) {
        scan_state st;
        st.meta.id = id;
        struct stat sb {};
        if (c.ops.fstat(fd, &sb) < 0)
            throw_errno("cannot stat", path);
        bool entry_wrong = false;
        if (const auto* ch = sessions_of(c.channel)) {
            auto it = ch->sessions.find(id);
            if (it != ch->sessions.end() && !it->second.newer_version) {
                if (prefix_still_valid(c, fd, sb, path, it->second)) {
                    st.meta = it->second.meta;
                    st.consumed = it->second.size;
                    st.lines = it->second.lines;
                    st.have_header = !it->second.no_header;
                } else {
                    entry_wrong = true;
                }
            }
        }
        scan_forward(c.ops, fd, path, st, diags, c.max_record_bytes, false, [](exchange&&) {});
        if (entry_wrong && !st.newer_version) // the history wins: correct the cache
            correct(c.channel, id, st, sb);
        return st;
    }

    /// The metadata of session `id` of the store's channel from its entry, when the entry
    /// is current for the history whose stat is `sb` (taken by the caller, under the
    /// session's lease): the same inode, modification time and size as when the entry was
    /// read, and read to the end (no partial last line after it). Nothing otherwise (no
    /// entry, a newer format, a file changed or replaced since): the caller reads the
    /// history. This is the check a find or a page makes of an entry (entry_is_current),
    /// so that a decision taken from it stands on what was shown, and any save since
    /// (which changes the size and the modification time) sends the caller to the file.
    const session_meta* current_meta(const std::string& channel, const session_id& id,
                                     const struct stat& sb) const {
        const auto* e = entry(channel, id);
        if (!e || e->newer_version || e->no_header || unreadable_.count(id) || !S_ISREG(sb.st_mode))
            return nullptr;
        const auto size = static_cast<std::uint64_t>(sb.st_size);
        if (e->ino != static_cast<std::uint64_t>(sb.st_ino) || e->mtime_ns != mtime_ns(sb) ||
            e->file_size != size || e->size != size)
            return nullptr;
        return &e->meta;
    }

    /// Replaces the entry of session `id` of `channel` by what a scan of its history
    /// (with stat `sb`) found, and marks the index for writing.
    void correct(const std::string& channel, const session_id& id, const scan_state& st,
                 const struct stat& sb) {
        data_.channels[channel].sessions.insert_or_assign(id, make_entry(st, sb));
        dirty_ = true;
    }

    /// Drops session `id` of `channel` (deleted by this store), and marks the index for
    /// writing.
    void forget(const std::string& channel, const session_id& id) {
        if (auto it = data_.channels.find(channel); it != data_.channels.end())
            it->second.sessions.erase(id);
        unreadable_.erase(id);
        dirty_ = true;
    }

    /// Whether the in-memory index holds changes index.json does not.
    bool dirty() const noexcept { return dirty_; }

private:
    static std::string history_path(const context& c, const std::string& channel,
                                    const session_id& id) {
        return c.root.string() + "/" + channel + "/" + id + "/history.jsonl";
    }

    static std::int64_t mtime_ns(const struct stat& st) noexcept {
        return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }

    static index_entry make_entry(const scan_state& st, const struct stat& sb) {
        index_entry e;
        e.meta = st.meta;
        e.size = st.consumed;
        e.lines = st.lines;
        e.newer_version = st.newer_version;
        e.ino = static_cast<std::uint64_t>(sb.st_ino);
        e.mtime_ns = mtime_ns(sb);
        e.file_size = static_cast<std::uint64_t>(sb.st_size);
        e.no_header = !st.have_header && !st.newer_version;
        return e;
    }

    index_data::channel_data* own_channel(const context& c) {
        auto it = data_.channels.find(c.channel);
        return it == data_.channels.end() ? nullptr : &it->second;
    }

    // Whether the file (open as fd, with stat sb) still begins with what entry `e` read:
    // the same inode (a file replaced by another program's copy is read again whole), at
    // least as long, a line ending where the entry ended, and the entry's exchange count
    // equal to the last exchange there.
    bool prefix_still_valid(const context& c, int fd, const struct stat& sb,
                            const std::string& path, const index_entry& e) {
        if (e.ino != 0 && e.ino != static_cast<std::uint64_t>(sb.st_ino))
            return false;
        const auto size = static_cast<std::uint64_t>(sb.st_size);
        if (e.size > size || (e.size == size && e.ino != 0 && e.mtime_ns != mtime_ns(sb)))
            return false; // shorter, or rewritten in place to the same length
        return ends_line(c, fd, e.size) && count_matches(c, fd, path, e);
    }

    // The index is a cache that may have been edited or damaged: before anything is
    // numbered from an entry, its exchange count is checked against the last exchange
    // in the history up to the entry's size (one read from the end, usually).
    bool count_matches(const context& c, int fd, const std::string& path, const index_entry& e) {
        std::vector<diagnostic> ignored;
        try {
            const auto last =
                scan_backward(c.ops, fd, path, e.size, e.lines, 1, ignored, c.max_record_bytes);
            return (last.empty() ? 0 : last.back().seq) == e.meta.exchange_count;
        } catch (const storage_error&) {
            return false;
        }
    }

    // True when `offset` is 0 or the byte before it is a newline.
    bool ends_line(const context& c, int fd, std::uint64_t offset) {
        if (offset == 0)
            return true;
        char ch = 0;
        return pread_full(c.ops, fd, &ch, 1, static_cast<off_t>(offset - 1)) == 1 && ch == '\n';
    }

    // --- index.json ---------------------------------------------------------------

    index_file_context<Ops> file_context(const context& c) const {
        return {c.ops, c.root_fd, c.root, c.max_index_bytes, c.notes};
    }

    // Reads index.json if it changed (index_file::load).
    bool load_file(const context& c) { return file_.load(file_context(c), data_); }

    // index.json <- the in-memory index (index_file::write); a failure is a note.
    void write(const context& c) {
        if (file_.write(file_context(c), data_))
            dirty_ = false;
    }

    // --- catching up with the history files ---------------------------------------

    // Refreshes the entries of every session named in changes.log [from, to).
    bool apply_changes(const context& c, std::uint64_t from, std::uint64_t to) {
        std::string text(static_cast<std::size_t>(to - from), '\0');
        if (pread_full(c.ops, c.log.fd(), text.data(), text.size(), static_cast<off_t>(from)) !=
            static_cast<ssize_t>(text.size()))
            return verify_everything(c);
        std::set<std::pair<std::string, session_id>> touched;
        for (std::size_t pos = 0; pos < text.size();) {
            auto nl = text.find('\n', pos);
            if (nl == std::string::npos)
                nl = text.size();
            const std::string_view line(text.data() + pos, nl - pos);
            const auto slash = line.find('/');
            if (slash != std::string_view::npos) {
                std::string ch(line.substr(0, slash));
                session_id id(line.substr(slash + 1));
                if (is_valid_channel(ch) && is_valid_session_id(id))
                    touched.emplace(std::move(ch), std::move(id));
            }
            pos = nl + 1;
        }
        bool changed = false;
        for (const auto& [ch, id] : touched)
            changed = refresh_entry(c, ch, id) || changed;
        return changed;
    }

    // Rebuilds the index from the history files, keeping entries that still match.
    bool verify_everything(const context& c) {
        bool changed = false;
        std::set<std::string> channels_seen;
        for (const auto& ch : list_dir(c.ops, c.root_fd, true, c.root.string())) {
            if (!is_valid_channel(ch))
                continue;
            channels_seen.insert(ch);
            changed = reconcile_channel(c, ch, true) || changed;
        }
        std::erase_if(data_.channels, [&](const auto& kv) {
            if (channels_seen.count(kv.first))
                return false;
            changed = true;
            return true;
        });
        return changed;
    }

    // Sessions added or removed behind our back (a copied-in directory): noticed through
    // the channel directory's modification time.
    bool reconcile_channel_dirs(const context& c) {
        bool changed = false;
        std::vector<std::string> names;
        for (const auto& [name, ch] : data_.channels)
            names.push_back(name);
        if (!data_.channels.count(c.channel))
            names.push_back(c.channel);
        for (const auto& name : names)
            changed = reconcile_channel(c, name, false) || changed;
        return changed;
    }

    bool reconcile_channel(const context& c, const std::string& name, bool check_every_file) {
        const std::string path = c.root.string() + "/" + name;
        unique_fd chfd(c.ops.openat(c.root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!chfd) {
            if (errno == ENOENT) // only "no such directory" means the channel is gone
                return data_.channels.erase(name) > 0;
            throw_errno("cannot open the channel directory", path);
        }
        struct stat st {};
        if (c.ops.fstat(chfd.get(), &st) < 0)
            throw_errno("cannot examine the channel directory", path);
        const std::int64_t mtime = mtime_ns(st);
        auto& cd = data_.channels[name];
        if (!check_every_file && cd.dir_mtime_ns == mtime)
            return false;
        // The mtime was taken before the listing (a change during it shows next time), and
        // is recorded only after the listing succeeded: a listing that fails throws, and
        // never leaves an empty list, or a "seen" mtime, behind in the index.
        const auto names = list_dir(c.ops, chfd.get(), true, path);
        std::set<session_id> on_disk;
        for (const auto& n : names) {
            if (is_valid_session_id(n))
                on_disk.insert(n);
            else if (n.starts_with(".deleted-") && name == c.channel)
                finish_deletion(c, n);
            else if (is_build_directory(n) && name == c.channel)
                remove_build_leftover(c.ops, c.channel_fd, n);
        }
        std::erase_if(cd.sessions, [&](const auto& kv) { return !on_disk.count(kv.first); });
        bool all_read = true;
        for (const auto& id : on_disk) {
            if (check_every_file || !cd.sessions.count(id))
                refresh_entry(c, name, id);
            if (name == c.channel && unreadable_.count(id))
                all_read = false;
        }
        // A session that could not be read is looked at again by the next list, in this
        // process or another, rather than forgotten behind an unchanged mtime.
        cd.dir_mtime_ns = all_read ? mtime : 0;
        return true;
    }

    // check_all()'s work. Returns true when some entry changed.
    bool check_entries(const context& c) {
        auto* ch = own_channel(c);
        if (!ch)
            return false;
        std::vector<session_id> stale;
        for (const auto& [id, e] : ch->sessions)
            if (!entry_is_current(c, id, e))
                stale.push_back(id);
        bool changed = false;
        for (const auto& id : stale)
            changed = refresh_entry(c, c.channel, id) || changed;
        return changed;
    }

    // check_entries() for one session. Returns whether it has an entry now; `corrected`
    // is set when its entry was read again and changed, or dropped.
    bool check_entry(const context& c, const session_id& id, bool& corrected) {
        auto* ch = own_channel(c);
        if (!ch)
            return false;
        auto it = ch->sessions.find(id);
        if (it == ch->sessions.end())
            return false;
        if (!entry_is_current(c, id, it->second) && refresh_entry(c, c.channel, id))
            corrected = true;
        ch = own_channel(c);
        return ch && ch->sessions.count(id) > 0;
    }

    bool entry_is_current(const context& c, const session_id& id, const index_entry& e) {
        if (unreadable_.count(id) || c.channel_fd < 0)
            return false;
        const std::string rel = id + "/history.jsonl";
        struct stat st {};
        return c.ops.fstatat(c.channel_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode) && e.ino == static_cast<std::uint64_t>(st.st_ino) &&
               e.mtime_ns == mtime_ns(st) && e.file_size == static_cast<std::uint64_t>(st.st_size);
    }

    // Re-reads what changed in one session's history. Returns true when its entry
    // changed, or was dropped because the session is gone (only ENOENT says so). A
    // session that this process may not read (EACCES, EPERM, not a regular file) keeps
    // its entry as it was and is marked unreadable: left out of list() with a note, an
    // error from find(). Any other failure (EIO, EMFILE, ...) is the operation's own:
    // storage_error, and nothing concluded.
    bool refresh_entry(const context& c, const std::string& channel, const session_id& id) {
        const bool own = channel == c.channel;
        if (own)
            unreadable_.erase(id);
        auto& cd = data_.channels[channel];
        const std::string path = history_path(c, channel, id);
        auto drop = [&] { return cd.sessions.erase(id) > 0; };
        auto unreadable = [&](int e) {
            if (e != EACCES && e != EPERM && e != not_a_regular_file)
                throw_open_failure("cannot read session '" + id + "'", path, e);
            if (own)
                unreadable_.insert_or_assign(id, e);
            return false;
        };
        unique_fd other_channel;
        if (!own) {
            other_channel.reset(
                c.ops.openat(c.root_fd, channel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            if (!other_channel) {
                if (errno == ENOENT)
                    return drop();
                throw_errno("cannot open the channel directory", c.root.string() + "/" + channel);
            }
        } else if (c.channel_fd < 0) {
            return drop();
        }
        const int chfd = own ? c.channel_fd : other_channel.get();
        unique_fd dir(c.ops.openat(chfd, id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!dir) {
            // Not a directory (a planted file or symbolic link) is not a session either.
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                return drop();
            return unreadable(errno);
        }
        int err = 0;
        unique_fd fd = open_regular(c.ops, dir.get(), "history.jsonl", O_RDONLY, 0, err);
        if (!fd) {
            if (err == ENOENT) {
                remove_unborn_session(c, chfd, id);
                return drop();
            }
            if (err == ELOOP) // a symbolic link planted as the history: not a session
                return drop();
            return unreadable(err);
        }
        struct stat st {};
        if (c.ops.fstat(fd.get(), &st) < 0)
            return unreadable(errno);
        const auto size = static_cast<std::uint64_t>(st.st_size);
        scan_state s;
        s.meta.id = id;
        auto it = cd.sessions.find(id);
        if (it != cd.sessions.end() && !it->second.newer_version &&
            prefix_still_valid(c, fd.get(), st, path, it->second)) {
            if (it->second.size == size) {
                const bool same = it->second.ino == static_cast<std::uint64_t>(st.st_ino) &&
                                  it->second.mtime_ns == mtime_ns(st) &&
                                  it->second.file_size == size;
                it->second.ino = static_cast<std::uint64_t>(st.st_ino);
                it->second.mtime_ns = mtime_ns(st);
                it->second.file_size = size;
                return !same;
            }
            s.meta = it->second.meta;
            s.consumed = it->second.size;
            s.lines = it->second.lines;
            s.have_header = !it->second.no_header;
        }
        std::vector<diagnostic> ignored; // reported when the session is loaded
        try {
            scan_forward(c.ops, fd.get(), path, s, ignored, c.max_record_bytes, false,
                         [](exchange&&) {});
        } catch (const storage_error& e) {
            return unreadable(e.errno_value() ? e.errno_value() : EIO); // rethrows as ours
        }
        if (own && s.meta.exchange_count == 0 && !s.newer_version &&
            (s.consumed < size || !s.have_header) && remove_unborn_history(c, id, fd.get(), size))
            return drop();
        index_entry fresh = make_entry(s, st);
        if (auto old = cd.sessions.find(id); old != cd.sessions.end() && old->second == fresh)
            return false; // read again (a torn tail, say), and nothing changed
        cd.sessions.insert_or_assign(id, std::move(fresh));
        return true;
    }

    // --- leftovers of interrupted creations and deletions ----------------------------

    // A crash between mkdir and the creation of history.jsonl leaves an empty session
    // directory. Creation holds LOCK_SH on changes.log throughout, so under LOCK_EX no
    // creation is in flight, and a directory still empty then is a leftover: rmdir
    // (which refuses a directory that is not empty) removes it.
    void remove_unborn_session(const context& c, int chfd, const session_id& id) {
        if (!c.log.try_exclusive(c.ops))
            return;
        c.ops.unlinkat(chfd, id.c_str(), AT_REMOVEDIR);
        c.log.unlock(c.ops);
    }

    // A session without a single exchange that is torn or has no header: a kill during
    // its creation or its first save (or a history emptied by another program), and no
    // writer holding it (its lease is free). It cannot be listed, resumed or deleted as
    // it is, so its bytes go to quarantine and its directory away, as a deletion that
    // crashed is finished. Returns true if done.
    bool remove_unborn_history(const context& c, const session_id& id, int fd, std::uint64_t size) {
        // LOCK_EX on changes.log: no creation (which holds LOCK_SH from mkdir until its
        // header is written and its lease taken) and no save is in flight. Then the
        // session's own lease: no writer holds it. Neither is waited for.
        if (c.log.open_errno() || !c.log.try_exclusive(c.ops))
            return false;
        struct log_unlock {
            const context& c;
            ~log_unlock() { c.log.unlock(c.ops); }
        } unlock{c};
        if (c.ops.flock(fd, LOCK_EX | LOCK_NB) < 0)
            return false; // a writer holds it: its first save is in flight
        // Judge again under both locks, from the file as it is now: a writer may have
        // repaired and saved into it, and closed it, since it was read.
        const std::string path = history_path(c, c.channel, id);
        struct stat now {};
        if (c.ops.fstat(fd, &now) < 0)
            return false;
        size = static_cast<std::uint64_t>(now.st_size);
        scan_state again;
        std::vector<diagnostic> ignored;
        try {
            scan_forward(c.ops, fd, path, again, ignored, c.max_record_bytes, false,
                         [](exchange&&) {});
        } catch (const storage_error&) {
            return false;
        }
        if (again.meta.exchange_count != 0 || again.newer_version ||
            (again.consumed == size && again.have_header))
            return false;
        quarantine<Ops> q(c.ops, c.root_fd, c.root.string());
        std::string saved;
        try {
            if (size > 0)
                saved = q.copy_bytes(fd, 0, size, c.channel + "-" + id + "-unborn");
            const std::string trash = ".deleted-" + id + "-" + std::to_string(c.ops.getpid()) +
                                      "-" + std::to_string(next_serial());
            {
                change_lock<Ops> lock(c.ops, c.log, c.channel, id, change_lock<Ops>::held);
                if (c.ops.renameat(c.channel_fd, id.c_str(), c.channel_fd, trash.c_str()) < 0)
                    throw_errno("cannot move it aside",
                                c.root.string() + "/" + c.channel + "/" + id);
            }
            c.ops.fsync(c.channel_fd);
            remove_tree(c.ops, c.channel_fd, trash);
        } catch (const storage_error& e) {
            if (!saved.empty()) // the session stays as it was: so must the quarantine
                q.remove(saved);
            note_once(c.notes, "session '" + id +
                                   "' holds no exchange and a torn, missing or empty "
                                   "header or first record (a save that was interrupted), but "
                                   "it could not be cleaned up; it is left as it is: " +
                                   e.what());
            return false;
        }
        note_once(c.notes,
                  "session '" + id + "' holds no exchange and " +
                      (size == 0 ? std::string("an empty history (a save interrupted at its "
                                               "very start, or a file emptied by another "
                                               "program); it was removed")
                                 : "a torn or missing header or first record (a save that was "
                                   "interrupted); its " +
                                       std::to_string(size) + " bytes were moved to " + saved +
                                       " and the session removed"));
        return true;
    }

    // A crash between renaming a deleted session aside and removing it leaves a
    // ".deleted-<id>-<pid>-<n>" directory; the next reconciliation of the channel
    // directory (its mtime changed with the rename) finishes the job, unless the
    // deleting process is still alive and about to do it.
    void finish_deletion(const context& c, const std::string& name) {
        constexpr std::size_t pid_at = sizeof(".deleted-") - 1 + session_id_length + 1;
        const long pid = name.size() > pid_at ? std::strtol(name.c_str() + pid_at, nullptr, 10) : 0;
        // Alive, or alive as another user's process (EPERM): only ESRCH says it is gone.
        if (pid > 0 && pid != c.ops.getpid() &&
            (c.ops.kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH))
            return;
        remove_tree(c.ops, c.channel_fd, name);
    }

    index_data data_;
    index_file<Ops> file_;
    std::map<session_id, int> unreadable_; ///< sessions of the store's channel not readable
    bool dirty_ = false;
    bool streamed_ = false; ///< read_partially() was tried
};

} // namespace dexter::sessions::detail
