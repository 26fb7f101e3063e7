// SPDX-License-Identifier: BSL-1.0
// jsonl_store: the crash-safe file-backed storage policy (format v1, docs/FORMAT.md).
//
//   <root>/index.json                  listing cache, derived, may be lost at any time
//   <root>/changes.log                 one line "<channel>/<id>" per change: tells
//                                      readers which index entries to refresh
//   <root>/index.lock                  serialises index rewrites
//   <root>/quarantine/                 suspect bytes, moved aside, never deleted
//   <root>/<channel>/<id>/history.jsonl  the session: the source of truth, append-only
//
// Saving an exchange, in order (docs/FORMAT.md, "Write protocol"):
//   1. serialise the whole record, newline included; check size limit and UTF-8
//   2. under a shared lock on changes.log: append "<channel>/<id>\n" to it, then the
//      record to history.jsonl in one write() (a failed write is cut back off)
//   3. fdatasync(history.jsonl) unless durability is off; a failure poisons the handle
// A writer holds flock(LOCK_EX) on history.jsonl while the session is open: one writer
// per session, freed by the kernel when the process dies. Nothing on the save path
// replaces or rewrites a file, so a save costs the same in a store of 10,000 sessions.
#pragma once

#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/utf8.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace dexter::sessions {

namespace detail {
/// A number never handed out twice in this process: with the pid and the time, it
/// makes quarantine and trash names unique across every store object.
inline std::uint64_t next_serial() noexcept {
    static std::atomic<std::uint64_t> serial{0};
    return ++serial;
}
} // namespace detail

/// How far a saved exchange is guaranteed to survive.
enum class durability {
    /// fdatasync before save_exchange returns: survives a crash of the process and a
    /// power loss (default).
    full,
    /// No sync: survives a crash or kill of the process (the data is in the kernel's
    /// page cache), but not a power loss or kernel crash. Much faster.
    process_crash,
};

/// Options of a jsonl_store.
struct jsonl_options {
    /// Whether a save waits for fdatasync (see durability).
    durability sync = durability::full;
    /// Largest record, newline included. Larger ones are refused on write, and skipped
    /// (without being read into memory whole) on read.
    std::size_t max_record_bytes = 16u << 20;
    /// Largest index.json read. The index is a cache (about 300 bytes a session): a
    /// larger file is treated as damaged, moved to quarantine and rebuilt, so that the
    /// memory a list takes never follows a hostile or broken file.
    std::size_t max_index_bytes = 64u << 20;
};

/// The file store. `Ops` is the system-call seam (detail::posix_ops, or a type
/// derived from it that satisfies detail::file_ops; tests inject faults through it). A store object
/// is not thread-safe: use one per thread (they may share a root), or guard it. Any number of store
/// objects, in any number of processes, may use one root at once; each session has one writer at a
/// time (flock).
template <detail::file_ops Ops = detail::posix_ops>
class basic_jsonl_store {
public:
    /// Opens (creating if needed) the store at `root` for sessions of `channel`. A root
    /// the store creates is made 0700, with any missing parents (also 0700), and each
    /// new directory and the one it was made in are synced. `root` itself may be a
    /// symbolic link (it is followed); nothing beneath it is.
    /// Throws invalid_channel for a bad channel name, storage_error if the root cannot
    /// be created or opened. A read-only store can still list and load.
    explicit basic_jsonl_store(std::filesystem::path root, std::string channel = "cli",
                               jsonl_options options = {}, Ops ops = {})
        : root_(std::move(root)), channel_(std::move(channel)), options_(options),
          ops_(std::move(ops)) {
        if (!detail::is_valid_channel(channel_))
            throw invalid_channel("invalid channel name " + detail::quote_untrusted(channel_) +
                                  ": expected 1 to 64 characters of [a-z0-9_-], not starting "
                                  "with '-' or '_'");
        open_root();
        boot_id_ = detail::read_boot_id(ops_);
        if (ops_.mkdirat(root_fd_.get(), channel_.c_str(), 0700) == 0) {
            if (ops_.fsync(root_fd_.get()) < 0) // the new directory's name must be durable
                detail::throw_errno("cannot sync the session store", root_.string());
        } else if (errno != EEXIST) {
            if (errno != EROFS && errno != EACCES && errno != EPERM)
                detail::throw_errno("cannot create the channel directory", channel_path());
            channel_errno_ = errno; // a read-only store: it lists and loads what exists
        }
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_ && errno != ENOENT)
            detail::throw_errno("cannot open the channel directory (it must be a real "
                                "directory, not a symbolic link)",
                                channel_path());
        open_change_log();
        struct statfs fs {};
        if (ops_.fstatfs(root_fd_.get(), &fs) == 0 && fs.f_type == 0x6969) // NFS_SUPER_MAGIC
            note("the store is on NFS, where O_APPEND and flock() are unreliable: two "
                 "machines writing one session can corrupt it");
    }

    basic_jsonl_store(basic_jsonl_store&&) noexcept = default;
    basic_jsonl_store& operator=(basic_jsonl_store&&) noexcept = default;

    // --- the storage policy (see storage.hpp) ---------------------------------------

    /// Throws invalid_session_id, invalid_input (a header over the record limit or not
    /// UTF-8), storage_error; on throw the session's directory is removed again.
    bool create(const session_meta& m) {
        validate_session_id(m.id);
        require_channel();
        std::string header;
        // Encode first, then check: as one call's two arguments, the order of the two is
        // unspecified (clang took the view of the still empty buffer first).
        const bool header_utf8 = detail::encode_header(header, m);
        check_record(header, header_utf8, "the session header of '" + m.id + "'");
        detail::unique_fd dir, file;
        {
            change_lock lock(*this, m.id);
            if (ops_.mkdirat(channel_fd_.get(), m.id.c_str(), 0700) < 0) {
                if (errno == EEXIST)
                    return false;
                detail::throw_errno("cannot create session '" + m.id + "'", session_path(m.id));
            }
            try {
                dir = open_session_dir(m.id);
                file.reset(ops_.openat(dir.get(), "history.jsonl",
                                       O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
                if (!file)
                    detail::throw_errno("cannot create", history_path(m.id));
                if (ops_.flock(file.get(), LOCK_EX | LOCK_NB) < 0)
                    detail::throw_errno("cannot lock new session '" + m.id + "'",
                                        history_path(m.id));
                if (const int e = detail::append_all(ops_, file.get(), header, 0))
                    detail::throw_errno("cannot write the header of session '" + m.id + "'",
                                        history_path(m.id), e);
            } catch (...) {
                if (dir)
                    ops_.unlinkat(dir.get(), "history.jsonl", 0);
                ops_.unlinkat(channel_fd_.get(), m.id.c_str(), AT_REMOVEDIR);
                throw;
            }
        }
        if ((options_.sync == durability::full && ops_.fdatasync(file.get()) < 0) ||
            ops_.fsync(dir.get()) < 0 || ops_.fsync(channel_fd_.get()) < 0) {
            const int e = errno;
            ops_.unlinkat(dir.get(), "history.jsonl", 0);
            ops_.unlinkat(channel_fd_.get(), m.id.c_str(), AT_REMOVEDIR);
            detail::throw_errno("cannot sync new session '" + m.id + "'", session_path(m.id), e);
        }
        writer w;
        w.dir = std::move(dir);
        w.file = std::move(file);
        w.size = header.size();
        w.lines = 1;
        w.meta = m;
        w.meta.exchange_count = 0;
        writers_.insert_or_assign(m.id, std::move(w));
        return true;
    }

    /// Also repairs a torn tail (moved to quarantine, reported by take_diagnostics() and
    /// by the next load() of the session through this object).
    /// Opening a session this object already holds returns its metadata as it is.
    /// Throws invalid_session_id, session_not_found, session_busy (with the holder's
    /// pid when /proc/locks tells it), format_error (a newer format: the file is left
    /// untouched), storage_error (among others for a history without a valid header on
    /// line 1: it is damaged, and nothing is appended to it; it still loads).
    session_meta open(const session_id& id) {
        validate_session_id(id);
        if (auto it = writers_.find(id); it != writers_.end()) {
            if (!it->second.poisoned)
                return it->second.meta;
            writers_.erase(it); // a failed write: start again from what the file holds
        }
        require_channel();
        writer w;
        w.dir = open_session_dir(id);
        int err = 0;
        w.file =
            detail::open_regular(ops_, w.dir.get(), "history.jsonl", O_RDWR | O_APPEND, 0, err);
        if (!w.file) {
            if (err == ENOENT)
                throw session_not_found(id, root_.string());
            detail::throw_open_failure("cannot open session '" + id + "' for writing",
                                       history_path(id), err);
        }
        take_lease(id, w.file.get());
        require_still_linked(id, w.file.get());
        const header_info header = read_header(id, w.file.get());
        if (header.version > detail::history_format_version)
            throw newer_format(id, header.version); // before any repair: never touch it
        if (!header.present)
            throw storage_error(
                "session '" + id +
                    "' is damaged: line 1 of its history is not a valid session header (the "
                    "file was emptied, edited or cut by another program), so nothing is "
                    "appended to it; it can still be read (see docs/FORMAT.md, \"Rules for "
                    "readers\")",
                history_path(id));
        const auto repaired = repair_tail(id, w.file.get());
        refresh_index(false);
        loaded_session state;
        const auto st = read_state(id, w.file.get(), state.diagnostics);
        if (st.newer_version)
            throw newer_format(id, st.newer_version);
        w.size = st.consumed;
        w.lines = st.lines;
        w.meta = st.meta;
        if (repaired)
            w.repairs.push_back({st.lines + 1, repaired->first, repaired->second});
        const session_meta meta = w.meta;
        writers_.insert_or_assign(id, std::move(w));
        return meta;
    }

    /// Throws invalid_session_id, invalid_input (over the record limit, not UTF-8:
    /// nothing written), storage_error (not open here, a seq that does not follow, a
    /// failed write, which is cut back off). If fdatasync fails, it throws storage_error
    /// and the record may or may not be on disk: this object then refuses every append
    /// and update of the session until it is closed and opened again.
    void append(const session_meta& after, const exchange& ex) {
        writer& w = open_writer(after.id);
        if (ex.seq != w.meta.exchange_count + 1)
            throw storage_error("exchange " + std::to_string(ex.seq) + " does not follow " +
                                    std::to_string(w.meta.exchange_count) + " in session '" +
                                    after.id + "'",
                                history_path(after.id));
        record_.clear();
        const bool record_utf8 = detail::encode_exchange(record_, ex);
        check_record(record_, record_utf8,
                     "exchange " + std::to_string(ex.seq) + " of session '" + after.id + "'");
        write_record(after.id, w, "exchange " + std::to_string(ex.seq));
        w.meta = after;
    }

    /// Appends a `meta` record. Throws as append() does.
    void update(const session_meta& m) {
        writer& w = open_writer(m.id);
        record_.clear();
        const bool record_utf8 = detail::encode_meta(record_, m);
        check_record(record_, record_utf8, "the new metadata of session '" + m.id + "'");
        write_record(m.id, w, "the new metadata");
        w.meta.title = m.title;
        w.meta.extra = m.extra;
    }

    /// Releases the lease (the flock) taken by create() or open().
    void close(const session_id& id) noexcept { writers_.erase(id); }

    /// From the index, checked against the history file (one fstatat; a changed file is
    /// read again). Throws invalid_session_id, format_error (the session is in a newer
    /// format: resuming it would fail), storage_error (among others: the session exists
    /// but cannot be read, e.g. Permission denied).
    std::optional<session_meta> find(const session_id& id) {
        validate_session_id(id);
        refresh_index(false);
        if (!check_entry(id)) {
            // Not in the index: ask the history before saying it does not exist (an index
            // edited, or restored from an older copy, must not hide a session).
            if (refresh_entry(channel_, id))
                index_dirty_ = true;
        }
        if (const auto bad = unreadable_.find(id); bad != unreadable_.end())
            detail::throw_open_failure("cannot read session '" + id + "'", history_path(id),
                                       bad->second);
        const auto* ch = channel_index();
        if (!ch)
            return std::nullopt;
        const auto it = ch->sessions.find(id);
        if (it == ch->sessions.end())
            return std::nullopt;
        if (it->second.newer_version)
            throw newer_format(id, it->second.newer_version);
        return it->second.meta;
    }

    /// Every session of this store's channel, from the index, checked against the
    /// history files (one fstatat each: a session changed, emptied or removed by another
    /// program is noticed here), and written back when it changed (a failure to write it
    /// is reported by take_diagnostics(), not thrown). Left out, and reported by
    /// take_diagnostics(): sessions in a newer format, and sessions that cannot be read.
    /// A session without a valid header is listed and reported. Throws storage_error (a
    /// directory could not be listed: nothing is concluded from a failed listing).
    std::vector<session_meta> list() {
        refresh_index(false);
        if (check_entries())
            index_dirty_ = true;
        if (index_dirty_)
            write_index();
        std::vector<session_meta> out;
        for (const auto& [id, e] : unreadable_)
            note("session '" + id + "' cannot be read (" + history_path(id) + ": " +
                 detail::describe_errno(e) + "); it is left out of the list");
        if (const auto* ch = channel_index()) {
            out.reserve(ch->sessions.size());
            for (const auto& [id, e] : ch->sessions) {
                if (e.newer_version || unreadable_.count(id))
                    continue;
                if (e.no_header)
                    note("session '" + id + "' is damaged: line 1 of " + history_path(id) +
                         " is not a valid session header (its title and start are not "
                         "known; it can be read, not continued)");
                out.push_back(e.meta);
            }
        }
        return out;
    }

    /// Needs no lease and changes no file. Damaged lines are skipped and reported in
    /// the result's diagnostics, never thrown. Throws invalid_session_id,
    /// session_not_found, format_error (a newer format), storage_error (a read failed).
    loaded_session load(const session_id& id, std::size_t last = all_exchanges) {
        validate_session_id(id);
        require_channel();
        detail::unique_fd dir = open_session_dir(id);
        int err = 0;
        detail::unique_fd file =
            detail::open_regular(ops_, dir.get(), "history.jsonl", O_RDONLY, 0, err);
        if (!file) {
            if (err == ENOENT)
                throw session_not_found(id, root_.string());
            detail::throw_open_failure("cannot open session '" + id + "'", history_path(id), err);
        }
        loaded_session out;
        const std::string path = history_path(id);
        bool have_header = true;
        if (last == all_exchanges) {
            detail::scan_state st;
            st.meta.id = id;
            detail::scan_forward(ops_, file.get(), path, st, out.diagnostics,
                                 options_.max_record_bytes, true,
                                 [&](exchange&& ex) { out.exchanges.push_back(std::move(ex)); });
            if (st.newer_version)
                throw newer_format(id, st.newer_version);
            have_header = st.have_header;
            out.meta = std::move(st.meta);
        } else if (auto held = writers_.find(id);
                   held != writers_.end() && !held->second.poisoned) {
            // This object holds the session: no one else has written since it was opened
            // (and its tail repaired), and the writer knows where the complete lines end.
            writer& w = held->second;
            out.exchanges = detail::scan_backward(ops_, file.get(), path, w.size, w.lines, last,
                                                  out.diagnostics, options_.max_record_bytes);
            out.meta = w.meta;
            // What open() repaired, told once to whoever reads the session back first
            // (a host shows resume()'s diagnostics, not the store's notes).
            for (auto& d : std::exchange(w.repairs, {}))
                out.diagnostics.push_back(std::move(d));
        } else {
            refresh_index(false);
            const auto st = read_state(id, file.get(), out.diagnostics);
            if (st.newer_version)
                throw newer_format(id, st.newer_version);
            out.exchanges = detail::scan_backward(ops_, file.get(), path, st.consumed, st.lines,
                                                  last, out.diagnostics, options_.max_record_bytes);
            have_header = st.have_header;
            out.meta = st.meta;
        }
        if (!have_header)
            out.diagnostics.push_back(detail::missing_header_diagnostic());
        std::stable_sort(
            out.diagnostics.begin(), out.diagnostics.end(),
            [](const diagnostic& a, const diagnostic& b) { return a.offset < b.offset; });
        out.diagnostics.erase(std::unique(out.diagnostics.begin(), out.diagnostics.end()),
                              out.diagnostics.end());
        return out;
    }

    /// Allowed while this object holds the session. Throws invalid_session_id,
    /// session_not_found, session_busy, storage_error; on throw the session is still
    /// there (a crash midway leaves a `.deleted-*` directory that a later store object
    /// removes).
    void remove(const session_id& id) {
        validate_session_id(id);
        require_channel();
        // LOCK_EX on changes.log for the whole deletion: a creation holds LOCK_SH from
        // its mkdir until it holds its lease, so a session whose lease is free now is not
        // one being born (its lease would be taken a moment later, on a deleted file).
        change_lock exclusive(*this, id, change_lock::exclusive);
        writer own; // the lock taken here, when this object does not hold the session
        if (auto it = writers_.find(id); it == writers_.end()) {
            // Only "no such file" means there is nothing to delete: a session that could
            // not be opened for its lock (EACCES, EMFILE, ...) is never deleted unlocked,
            // because its writer may be about to acknowledge an exchange.
            writer& w = own;
            w.dir = open_session_dir(id);
            int err = 0;
            w.file = detail::open_regular(ops_, w.dir.get(), "history.jsonl", O_RDONLY, 0, err);
            if (!w.file) {
                if (err == ENOENT)
                    throw session_not_found(id, root_.string());
                detail::throw_open_failure("cannot delete session '" + id +
                                               "': cannot open it to take its lock",
                                           history_path(id), err);
            }
            take_lease(id, w.file.get());
            require_still_linked(id, w.file.get());
        }
        const std::string trash = ".deleted-" + id + "-" + std::to_string(ops_.getpid()) + "-" +
                                  std::to_string(detail::next_serial());
        if (ops_.renameat(channel_fd_.get(), id.c_str(), channel_fd_.get(), trash.c_str()) < 0)
            detail::throw_errno("cannot delete session '" + id + "'", session_path(id));
        exclusive.release();
        // Deleted. What follows is tidying: a failure is noted, never thrown (the caller
        // must not think the session is still there), and a later store finishes it.
        if (ops_.fsync(channel_fd_.get()) < 0)
            note("session '" + id + "' was deleted, but " + channel_path() +
                 " could not be synced (" + std::strerror(errno) +
                 "): after a power loss it may come back");
        writers_.erase(id); // only now: if the rename failed, the session stays open here
        own = writer{};
        if (auto* ch = channel_index())
            ch->sessions.erase(id);
        unreadable_.erase(id);
        index_dirty_ = true;
        try {
            refresh_index(true);
        } catch (const storage_error& e) {
            note(std::string("after deleting session '") + id + "': " + e.what());
        }
        remove_tree(trash);
    }

    // --- beyond the policy ------------------------------------------------------------

    const std::filesystem::path& root() const noexcept { return root_; }
    const std::string& channel() const noexcept { return channel_; }
    const jsonl_options& options() const noexcept { return options_; }
    /// The history file of session `id` (which need not exist).
    std::string history_path(const session_id& id) const {
        return session_path(id) + "/history.jsonl";
    }

    /// Store-level events since the last call (an index rebuilt or quarantined, a torn
    /// tail repaired, a store on NFS), oldest first. Per-line problems of a session are
    /// in loaded_session::diagnostics instead.
    std::vector<diagnostic> take_diagnostics() { return std::exchange(notes_, {}); }

    /// Throws storage_error, naming the path, unless sessions can be created and saved
    /// here. Call it before taking user input, so that a read-only store is reported
    /// before anything is lost.
    void check_writable() {
        require_channel();
        if (log_errno_ == detail::not_a_regular_file)
            detail::throw_open_failure("the session store cannot be written",
                                       root_.string() + "/changes.log", log_errno_);
        if (!log_fd_ || (ops_.get_fl(log_fd_.get()) & O_ACCMODE) == O_RDONLY)
            throw storage_error("the session store is read-only (cannot write changes.log)",
                                root_.string() + "/changes.log", log_errno_ ? log_errno_ : EACCES);
        const std::string probe = ".probe-" + std::to_string(ops_.getpid());
        if (ops_.mkdirat(channel_fd_.get(), probe.c_str(), 0700) < 0 && errno != EEXIST)
            detail::throw_errno("the session store is read-only", channel_path());
        ops_.unlinkat(channel_fd_.get(), probe.c_str(), AT_REMOVEDIR);
    }

    /// The system-call seam (tests reach their fault injector through it).
    Ops& ops() noexcept { return ops_; }

private:
    struct writer {
        detail::unique_fd dir;
        detail::unique_fd file; ///< holds flock(LOCK_EX) while open
        std::uint64_t size = 0;
        std::uint64_t lines = 0;
        session_meta meta;
        /// A write failed in a way that left the file in doubt (a failed fdatasync, or a
        /// partial record that could not be cut off): no more appends until reopened.
        bool poisoned = false;
        std::vector<diagnostic> repairs; ///< what open() repaired, for the next load()
    };

    // Holds LOCK_SH on changes.log and appends "\n<channel>/<id>\n" to it. Changes to
    // history files happen under it; a reader takes LOCK_EX to see only finished ones.
    // The leading newline ends any line torn by an earlier failed append, so a torn
    // line can never swallow this one (empty lines are ignored).
    class change_lock {
    public:
        enum mode {
            shared,    ///< LOCK_SH: a change to one session (appends run side by side)
            exclusive, ///< LOCK_EX: no creation, append or other change is in flight
            held,      ///< the caller already holds LOCK_EX (and releases it)
        };

        change_lock(basic_jsonl_store& s, const session_id& id, mode m = shared)
            : s_(s), locked_(m != held) {
            const int fd = s_.log_fd_.get();
            if (s_.log_errno_ == detail::not_a_regular_file)
                detail::throw_open_failure("cannot record a change of session '" + id + "'",
                                           s_.root_.string() + "/changes.log", s_.log_errno_);
            if (s_.log_errno_) // opened read-only: say why, not EBADF from write()
                throw storage_error("cannot record a change of session '" + id +
                                        "': the session store is read-only (cannot write "
                                        "changes.log)",
                                    s_.root_.string() + "/changes.log", s_.log_errno_);
            if (fd < 0 || (m != held && s_.ops_.flock(fd, m == shared ? LOCK_SH : LOCK_EX) < 0))
                detail::throw_errno("cannot lock changes.log", s_.root_.string() + "/changes.log");
            const std::string line = "\n" + s_.channel_ + "/" + id + "\n";
            std::size_t done = 0;
            while (done < line.size()) {
                const ssize_t n = s_.ops_.write(fd, line.data() + done, line.size() - done);
                if (n > 0) {
                    done += static_cast<std::size_t>(n);
                } else if (n < 0 && errno == EINTR) {
                    continue;
                } else {
                    const int e = n < 0 ? errno : EIO;
                    release();
                    detail::throw_errno("cannot record a change of session '" + id + "'",
                                        s_.root_.string() + "/changes.log", e);
                }
            }
        }
        ~change_lock() { release(); }
        change_lock(const change_lock&) = delete;
        change_lock& operator=(const change_lock&) = delete;

        /// Ends the lock now (when this object took it).
        void release() noexcept {
            if (locked_)
                s_.ops_.flock(s_.log_fd_.get(), LOCK_UN);
            locked_ = false;
        }

    private:
        basic_jsonl_store& s_;
        bool locked_;
    };

    std::string channel_path() const { return root_.string() + "/" + channel_; }
    std::string session_path(const session_id& id) const { return channel_path() + "/" + id; }

    // A store-level note for take_diagnostics(). One already waiting is not repeated, so
    // that a host that lists often and never takes them does not collect copies.
    void note(std::string what) {
        for (const auto& n : notes_)
            if (n.reason == what)
                return;
        notes_.push_back({0, 0, std::move(what)});
    }

    void require_channel() {
        if (channel_fd_)
            return;
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_) {
            if (errno == ENOENT && channel_errno_) // the real cause: it could not be made
                detail::throw_errno("cannot create the channel directory", channel_path(),
                                    channel_errno_);
            detail::throw_errno("cannot open the channel directory", channel_path());
        }
    }

    // Opens the root, creating it and any missing parents (0700) when needed. Each
    // directory made here is synced, and so is the one it was made in: a power loss
    // right after the first acknowledged save must not take the store's directories.
    void open_root() {
        root_fd_.reset(ops_.openat(AT_FDCWD, root_.c_str(), O_RDONLY | O_DIRECTORY));
        if (root_fd_)
            return;
        if (errno != ENOENT)
            detail::throw_errno("cannot open the session store", root_.string());
        std::filesystem::path top = root_.lexically_normal();
        if (top.has_relative_path() && top.filename().empty())
            top = top.parent_path(); // "a/b/" -> "a/b"
        std::vector<std::filesystem::path> missing{top};
        for (auto p = top.parent_path(); !p.empty() && p != missing.back(); p = p.parent_path()) {
            struct stat st {};
            if (ops_.fstatat(AT_FDCWD, p.c_str(), &st, 0) == 0)
                break;
            if (errno != ENOENT)
                detail::throw_errno("cannot examine", p.string());
            missing.push_back(p);
        }
        for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
            if (ops_.mkdirat(AT_FDCWD, it->c_str(), 0700) < 0 && errno != EEXIST)
                detail::throw_errno("cannot create the session store", it->string());
            const auto parent = it->parent_path();
            sync_directory(parent.empty() ? std::filesystem::path(".") : parent);
            sync_directory(*it);
        }
        root_fd_.reset(ops_.openat(AT_FDCWD, root_.c_str(), O_RDONLY | O_DIRECTORY));
        if (!root_fd_)
            detail::throw_errno("cannot open the session store", root_.string());
    }

    void sync_directory(const std::filesystem::path& dir) {
        detail::unique_fd fd(ops_.openat(AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY));
        if (!fd || ops_.fsync(fd.get()) < 0)
            detail::throw_errno("cannot sync the directory", dir.string());
    }

    // changes.log, for writing (0600); read-only where the store cannot be written. A
    // file that is not a regular file (a FIFO would block a writer forever) is never
    // read or written: the store then lists from the history files and refuses writes.
    void open_change_log() {
        int err = 0;
        log_fd_ = detail::open_regular(ops_, root_fd_.get(), "changes.log",
                                       O_RDWR | O_APPEND | O_CREAT, 0600, err);
        if (log_fd_)
            return;
        if (err == EACCES || err == EROFS || err == EPERM) {
            log_errno_ = err;
            int ro_err = 0;
            log_fd_ =
                detail::open_regular(ops_, root_fd_.get(), "changes.log", O_RDONLY, 0, ro_err);
            if (log_fd_ || ro_err == ENOENT || ro_err == EACCES)
                return;
            err = ro_err;
        }
        if (err != detail::not_a_regular_file)
            detail::throw_open_failure("cannot open the change log of the session store",
                                       root_.string() + "/changes.log", err);
        log_errno_ = err;
        note(root_.string() + "/changes.log is " + detail::describe_errno(err) +
             "; sessions are listed from the history files, and nothing can be saved until "
             "it is moved away");
    }

    // After the lease is taken on `fd`: the session must still be there, with `fd` as
    // its history. Between the open and the lease, another process may have deleted the
    // session (or cleaned it up as unborn); a lease on an unlinked file would acknowledge
    // exchanges that no one can ever read.
    void require_still_linked(const session_id& id, int fd) {
        struct stat held {
        }, now{};
        if (ops_.fstat(fd, &held) < 0)
            detail::throw_errno("cannot examine", history_path(id));
        const std::string rel = id + "/history.jsonl";
        if (ops_.fstatat(channel_fd_.get(), rel.c_str(), &now, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                throw session_not_found(id, root_.string());
            detail::throw_errno("cannot examine", history_path(id));
        }
        if (held.st_ino != now.st_ino || held.st_dev != now.st_dev)
            throw session_not_found(id, root_.string()); // removed (and made anew) meanwhile
    }

    // flock(LOCK_EX | LOCK_NB) on an open history: the one-writer lease.
    void take_lease(const session_id& id, int fd) {
        if (ops_.flock(fd, LOCK_EX | LOCK_NB) == 0)
            return;
        if (errno != EWOULDBLOCK)
            detail::throw_errno("cannot lock session '" + id + "'", history_path(id));
        struct stat st {};
        std::optional<long> holder;
        if (ops_.fstat(fd, &st) == 0)
            holder = detail::flock_holder(ops_, st.st_dev, st.st_ino);
        throw session_busy(id, history_path(id), holder, holder && *holder == ops_.getpid());
    }

    format_error newer_format(const session_id& id, std::uint64_t version) const {
        return format_error(
            "session '" + id + "' is in history format version " + std::to_string(version) +
            ", newer than this library reads (" + std::to_string(detail::history_format_version) +
            "); it was left untouched: use a newer dexter-sessions (" + history_path(id) + ")");
    }

    detail::unique_fd open_session_dir(const session_id& id) {
        detail::unique_fd dir(
            ops_.openat(channel_fd_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!dir) {
            if (errno == ENOENT)
                throw session_not_found(id, root_.string());
            if (errno == ELOOP || errno == ENOTDIR)
                throw storage_error("session '" + id +
                                        "' is not a directory (a symbolic link?); "
                                        "refusing to follow it",
                                    session_path(id), errno);
            detail::throw_errno("cannot open session '" + id + "'", session_path(id));
        }
        return dir;
    }

    writer& open_writer(const session_id& id) {
        validate_session_id(id); // before the id goes into any message or path
        auto it = writers_.find(id);
        if (it == writers_.end())
            throw storage_error("session '" + id + "' is not open for writing here; open it first",
                                history_path(id));
        if (it->second.poisoned)
            throw storage_error("an earlier write to session '" + id +
                                    "' failed and left the file in doubt (not synced to disk, "
                                    "or a partial record that could not be cut off); reopen "
                                    "the session before saving more",
                                history_path(id), EIO);
        return it->second;
    }

    // Refuses a record over the size limit, or one whose encoder met invalid UTF-8.
    void check_record(std::string_view line, bool valid_utf8, const std::string& what) const {
        if (line.size() > options_.max_record_bytes)
            throw invalid_input(
                what + " is " + std::to_string(line.size()) + " bytes, over the record limit of " +
                std::to_string(options_.max_record_bytes) + " bytes; nothing was saved");
        if (!valid_utf8)
            throw invalid_input(what + " holds text that is not valid UTF-8; nothing was saved");
    }

    // Appends record_ to the open session: steps 2 and 3 of the write protocol.
    void write_record(const session_id& id, writer& w, const std::string& what) {
        {
            change_lock lock(*this, id);
            bool rollback_failed = false;
            if (const int e = detail::append_all(ops_, w.file.get(), record_,
                                                 static_cast<off_t>(w.size), &rollback_failed)) {
                if (rollback_failed) {
                    // A fragment may stay at the end of the file: the next record would be
                    // glued onto it. Only a reopen, which moves it to quarantine, may go on.
                    w.poisoned = true;
                    throw storage_error("cannot save " + what + " of session '" + id +
                                            "', and its partial bytes could not be cut off "
                                            "again; reopen the session (which repairs it) "
                                            "before saving more",
                                        history_path(id), e);
                }
                detail::throw_errno("cannot save " + what + " of session '" + id + "'",
                                    history_path(id), e);
            }
        }
        if (options_.sync == durability::full && ops_.fdatasync(w.file.get()) < 0) {
            const int e = errno;
            // Not acknowledged, so not kept: cut the record back off (the kernel may have
            // dropped the dirty pages, so this handle never retries a sync: it is
            // poisoned until the session is opened again).
            w.poisoned = true;
            try {
                change_lock lock(*this, id); // readers must learn that the file shrank
                ops_.ftruncate(w.file.get(), static_cast<off_t>(w.size));
            } catch (const storage_error&) {
                // Cannot even record the change: the record stays, never acknowledged.
            }
            detail::throw_errno("cannot sync " + what + " of session '" + id +
                                    "' to disk; it is not saved",
                                history_path(id), e);
        }
        w.size += record_.size();
        ++w.lines;
    }

    struct header_info {
        bool present = false;      ///< line 1 is a session header this library reads
        std::uint64_t version = 0; ///< its format version (also when too new)
    };

    // What line 1 says: only the header on line 1 decides the file's format version.
    header_info read_header(const session_id& id, int fd) {
        // The whole first line, however long the header is (up to the record limit).
        std::string buf;
        std::size_t nl = std::string::npos;
        while (nl == std::string::npos && buf.size() <= options_.max_record_bytes) {
            const std::size_t got = buf.size();
            buf.resize(got + detail::read_chunk);
            const ssize_t n = detail::pread_full(ops_, fd, buf.data() + got, detail::read_chunk,
                                                 static_cast<off_t>(got));
            if (n < 0)
                detail::throw_errno("cannot read", history_path(id));
            buf.resize(got + static_cast<std::size_t>(n));
            nl = buf.find('\n', got);
            if (static_cast<std::size_t>(n) < detail::read_chunk)
                break; // end of file
        }
        header_info h;
        if (nl == std::string::npos)
            return h;
        boost::system::error_code ec;
        const json::value v = json::parse(std::string_view(buf).substr(0, nl), ec);
        if (ec || !v.is_object())
            return h;
        const auto* type = detail::member(v.get_object(), "type");
        if (!type || !type->is_string() || type->get_string() != "session" ||
            !detail::read_uint(v.get_object(), "version", h.version) || h.version == 0)
            return h;
        h.present = h.version <= detail::history_format_version;
        return h;
    }

    // --- torn tails -----------------------------------------------------------------

    // Under the writer's lock: bytes after the last newline, or a last line that is not
    // JSON, were never acknowledged. Copy them to quarantine, cut them off, sync.
    // Returns where the cut was made and what was done, when there was something to do.
    std::optional<std::pair<std::uint64_t, std::string>> repair_tail(const session_id& id, int fd) {
        struct stat st {};
        if (ops_.fstat(fd, &st) < 0)
            detail::throw_errno("cannot stat", history_path(id));
        const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        if (size == 0)
            return std::nullopt;
        std::uint64_t cut = last_line_end(fd, id, size);
        if (cut == size) {
            // Complete last line: it must at least be JSON.
            const std::uint64_t start = cut > 1 ? last_line_end(fd, id, cut - 1) : 0;
            if (size - start <= options_.max_record_bytes) {
                std::string line(size - start - 1, '\0');
                if (detail::pread_full(ops_, fd, line.data(), line.size(),
                                       static_cast<off_t>(start)) < 0)
                    detail::throw_errno("cannot read", history_path(id));
                std::string why;
                bool repaired = false;
                detail::line_parser parser;
                if (parser.parse(line, why, repaired, [](const json::value&) {}))
                    return std::nullopt;
                cut = start;
            } else {
                return std::nullopt;
            }
        }
        const std::string saved = quarantine_bytes(fd, cut, size, channel_ + "-" + id + "-tail");
        {
            change_lock lock(*this, id);
            if (ops_.ftruncate(fd, static_cast<off_t>(cut)) < 0)
                detail::throw_errno("cannot cut the torn tail of session '" + id + "'",
                                    history_path(id));
        }
        if (ops_.fdatasync(fd) < 0)
            detail::throw_errno("cannot sync", history_path(id));
        std::string what = "an incomplete last record (" + std::to_string(size - cut) +
                           " bytes, never acknowledged) was moved to " + saved;
        note("session '" + id + "': " + what);
        return std::pair{cut, std::move(what)};
    }

    // Offset just past the last newline in [0, end), or 0.
    std::uint64_t last_line_end(int fd, const session_id& id, std::uint64_t end) {
        std::string buf(detail::read_chunk, '\0');
        while (end > 0) {
            const std::uint64_t lo = end > buf.size() ? end - buf.size() : 0;
            const auto len = static_cast<std::size_t>(end - lo);
            if (detail::pread_full(ops_, fd, buf.data(), len, static_cast<off_t>(lo)) !=
                static_cast<ssize_t>(len))
                detail::throw_errno("cannot read", history_path(id));
            const auto nl = std::string_view(buf.data(), len).rfind('\n');
            if (nl != std::string_view::npos)
                return lo + nl + 1;
            end = lo;
        }
        return 0;
    }

    // --- quarantine -----------------------------------------------------------------

    detail::unique_fd quarantine_dir() {
        if (ops_.mkdirat(root_fd_.get(), "quarantine", 0700) < 0 && errno != EEXIST)
            detail::throw_errno("cannot create the quarantine directory",
                                root_.string() + "/quarantine");
        detail::unique_fd q(
            ops_.openat(root_fd_.get(), "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!q)
            detail::throw_errno("cannot open", root_.string() + "/quarantine");
        return q;
    }

    std::string quarantine_name(const std::string& label) {
        const auto now =
            std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
        std::string stamp = format_timestamp(now);
        std::erase_if(stamp, [](char c) { return c == '-' || c == ':'; });
        return label + "." + stamp + "." + std::to_string(ops_.getpid()) + "." +
               std::to_string(detail::next_serial());
    }

    // Copies bytes [from, to) of fd into a new quarantine file; returns its path.
    std::string quarantine_bytes(int fd, std::uint64_t from, std::uint64_t to,
                                 const std::string& label) {
        auto q = quarantine_dir();
        const std::string name = quarantine_name(label);
        const std::string path = root_.string() + "/quarantine/" + name;
        detail::unique_fd out(
            ops_.openat(q.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
        if (!out)
            detail::throw_errno("cannot create", path);
        try {
            std::string buf(detail::read_chunk, '\0');
            std::uint64_t written = 0;
            for (std::uint64_t pos = from; pos < to;) {
                const auto len =
                    static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - pos));
                const ssize_t n =
                    detail::pread_full(ops_, fd, buf.data(), len, static_cast<off_t>(pos));
                if (n <= 0)
                    detail::throw_errno("cannot read the bytes to move aside", path,
                                        n < 0 ? errno : EIO);
                if (const int e = detail::append_all(
                        ops_, out.get(), std::string_view(buf.data(), static_cast<std::size_t>(n)),
                        static_cast<off_t>(written)))
                    detail::throw_errno("cannot write", path, e);
                pos += static_cast<std::uint64_t>(n);
                written += static_cast<std::uint64_t>(n);
            }
            if (ops_.fsync(out.get()) < 0 || ops_.fsync(q.get()) < 0)
                detail::throw_errno("cannot sync", path);
        } catch (...) {
            // A copy that failed (a full disk) is no copy: leave no empty or partial file
            // that looks like one. The original bytes are still where they were.
            ops_.unlinkat(q.get(), name.c_str(), 0);
            throw;
        }
        return path;
    }

    // Moves the damaged index.json (whatever it is: file, directory, symbolic link) into
    // quarantine, under the index lock, unless another process has replaced it since we
    // looked. Returns where it went, or "" if it was not moved.
    std::string quarantine_index(const struct stat& damaged) {
        try {
            detail::unique_fd lock = open_index_lock();
            if (!lock)
                return {};
            struct stat now {};
            if (ops_.fstatat(root_fd_.get(), "index.json", &now, AT_SYMLINK_NOFOLLOW) < 0 ||
                now.st_ino != damaged.st_ino || now.st_dev != damaged.st_dev)
                return {};
            auto q = quarantine_dir();
            const std::string target = quarantine_name("index.json");
            if (ops_.renameat(root_fd_.get(), "index.json", q.get(), target.c_str()) < 0)
                return {};
            ops_.fsync(q.get());
            ops_.fsync(root_fd_.get());
            return root_.string() + "/quarantine/" + target;
        } catch (const storage_error&) {
            return {};
        }
    }

    // --- per-session state from the index and the history ---------------------------

    // Metadata of the session in `fd` as of its last complete line: from its index
    // entry plus the lines written since, or from the whole file when there is none.
    detail::scan_state read_state(const session_id& id, int fd, std::vector<diagnostic>& diags) {
        detail::scan_state st;
        st.meta.id = id;
        struct stat sb {};
        if (ops_.fstat(fd, &sb) < 0)
            detail::throw_errno("cannot stat", history_path(id));
        bool entry_wrong = false;
        if (const auto* ch = channel_index()) {
            auto it = ch->sessions.find(id);
            if (it != ch->sessions.end() && !it->second.newer_version) {
                if (prefix_still_valid(fd, sb, history_path(id), it->second)) {
                    st.meta = it->second.meta;
                    st.consumed = it->second.size;
                    st.lines = it->second.lines;
                    st.have_header = !it->second.no_header;
                } else {
                    entry_wrong = true;
                }
            }
        }
        detail::scan_forward(ops_, fd, history_path(id), st, diags, options_.max_record_bytes,
                             false, [](exchange&&) {});
        if (entry_wrong && !st.newer_version) { // the history wins: correct the cache
            index_.channels[channel_].sessions.insert_or_assign(id, make_entry(st, sb));
            index_dirty_ = true;
        }
        return st;
    }

    static std::int64_t mtime_ns(const struct stat& st) noexcept {
        return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }

    static detail::index_entry make_entry(const detail::scan_state& st, const struct stat& sb) {
        detail::index_entry e;
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

    // Whether the file (open as fd, with stat sb) still begins with what entry `e` read:
    // the same inode (a file replaced by another program's copy is read again whole), at
    // least as long, a line ending where the entry ended, and the entry's exchange count
    // equal to the last exchange there.
    bool prefix_still_valid(int fd, const struct stat& sb, const std::string& path,
                            const detail::index_entry& e) {
        if (e.ino != 0 && e.ino != static_cast<std::uint64_t>(sb.st_ino))
            return false;
        const auto size = static_cast<std::uint64_t>(sb.st_size);
        if (e.size > size || (e.size == size && e.ino != 0 && e.mtime_ns != mtime_ns(sb)))
            return false; // shorter, or rewritten in place to the same length
        return ends_line(fd, e.size) && count_matches(fd, path, e);
    }

    // The index is a cache that may have been edited or damaged: before anything is
    // numbered from an entry, its exchange count is checked against the last exchange
    // in the history up to the entry's size (one read from the end, usually).
    bool count_matches(int fd, const std::string& path, const detail::index_entry& e) {
        std::vector<diagnostic> ignored;
        try {
            const auto last = detail::scan_backward(ops_, fd, path, e.size, e.lines, 1, ignored,
                                                    options_.max_record_bytes);
            return (last.empty() ? 0 : last.back().seq) == e.meta.exchange_count;
        } catch (const storage_error&) {
            return false;
        }
    }

    // True when `offset` is 0 or the byte before it is a newline.
    bool ends_line(int fd, std::uint64_t offset) {
        if (offset == 0)
            return true;
        char c = 0;
        return detail::pread_full(ops_, fd, &c, 1, static_cast<off_t>(offset - 1)) == 1 &&
               c == '\n';
    }

    // --- the index ------------------------------------------------------------------

    detail::index_data::channel_data* channel_index() {
        auto it = index_.channels.find(channel_);
        return it == index_.channels.end() ? nullptr : &it->second;
    }

    // Brings the in-memory index up to date with the history files; with `write_back`,
    // saves it to index.json when it changed. Throws storage_error when a directory
    // cannot be listed (nothing is concluded, or written, from a failed listing).
    void refresh_index(bool write_back) {
        bool verify_all = load_index_file();
        std::uint64_t log_size = 0, log_inode = 0;
        if (log_fd_) {
            struct stat st {};
            ops_.flock(log_fd_.get(), LOCK_EX); // waits for changes in progress to finish
            const int r = ops_.fstat(log_fd_.get(), &st);
            ops_.flock(log_fd_.get(), LOCK_UN);
            if (r == 0) {
                log_size = static_cast<std::uint64_t>(st.st_size);
                log_inode = static_cast<std::uint64_t>(st.st_ino);
            } else {
                verify_all = true;
            }
        }
        if (!log_fd_ || index_.boot_id != boot_id_ || index_.changes_inode != log_inode ||
            index_.changes_offset > log_size || log_size - index_.changes_offset > (64u << 20))
            verify_all = true;
        bool changed = false;
        if (verify_all) {
            changed = verify_everything();
        } else {
            if (log_size > index_.changes_offset)
                changed = apply_changes(index_.changes_offset, log_size);
            changed = reconcile_channel_dirs() || changed;
        }
        if (index_.changes_offset != log_size || index_.changes_inode != log_inode ||
            index_.boot_id != boot_id_)
            changed = true;
        index_.changes_offset = log_size;
        index_.changes_inode = log_inode;
        index_.boot_id = boot_id_;
        if (changed)
            index_dirty_ = true;
        // A full verification is worth keeping even when the caller only reads: the next
        // process would otherwise repeat it.
        if ((write_back || verify_all) && index_dirty_)
            write_index();
    }

    // Reads index.json if it changed since we last read or wrote it. Returns true when
    // everything must be verified against the history files (no usable index).
    bool load_index_file() {
        struct stat st {};
        if (ops_.fstatat(root_fd_.get(), "index.json", &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                return unusable_index(
                    "cannot be examined (" + std::string(std::strerror(errno)) + ")", true);
            if (index_loaded_ && index_seen_.st_ino == 0)
                return false;
            index_ = {};
            index_loaded_ = true;
            index_seen_ = {};
            return true;
        }
        if (!S_ISREG(st.st_mode))
            return unusable_index(S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a file",
                                  false, st);
        if (index_loaded_ && same_file_version(st, index_seen_))
            return false;
        if (static_cast<std::uint64_t>(st.st_size) > options_.max_index_bytes)
            return unusable_index(
                "is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                    std::to_string(options_.max_index_bytes) + " for an index (damaged)",
                false, st);
        int err = 0;
        detail::unique_fd fd =
            detail::open_regular(ops_, root_fd_.get(), "index.json", O_RDONLY, 0, err);
        std::string text;
        if (!fd)
            return err == ENOENT
                       ? true
                       : unusable_index("cannot be read (" + detail::describe_errno(err) + ")",
                                        true);
        if (!read_capped(fd.get(), static_cast<std::size_t>(st.st_size), text))
            return unusable_index("cannot be read (" + std::string(std::strerror(errno)) + ")",
                                  true);
        if (text.size() > options_.max_index_bytes)
            return unusable_index("grew past the limit of " +
                                      std::to_string(options_.max_index_bytes) +
                                      " bytes for an index while being read (damaged)",
                                  false, st);
        auto decoded = detail::decode_index(text);
        if (decoded.state == detail::index_decode::status::newer) {
            index_writable_ = false;
            index_ = {};
            index_loaded_ = true;
            index_seen_ = st;
            note("index.json has format version " + std::to_string(decoded.version) +
                 ", newer than this library writes (1): it is left untouched, and sessions are "
                 "listed from the history files");
            return true;
        }
        if (decoded.state == detail::index_decode::status::corrupt)
            return unusable_index("is damaged: " + decoded.why, false, st);
        index_ = std::move(decoded.data);
        index_loaded_ = true;
        index_seen_ = st;
        return false;
    }

    // The index cannot be used. A file that could not be read is never written over;
    // one that was read and is damaged is moved to quarantine and rebuilt.
    bool unusable_index(const std::string& why, bool unreadable, const struct stat& damaged = {}) {
        index_ = {};
        index_loaded_ = true;
        index_seen_ = {};
        if (unreadable) {
            index_writable_ = false;
            note("index.json " + why +
                 ": sessions are listed from the history files, and the "
                 "index is left as it is");
            return true;
        }
        const std::string moved = quarantine_index(damaged);
        struct stat now {};
        const bool replaced =
            ops_.fstatat(root_fd_.get(), "index.json", &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            (now.st_ino != damaged.st_ino || now.st_dev != damaged.st_dev);
        if (moved.empty() && replaced) {
            // Another process wrote a fresh index meanwhile: nothing to report, and the
            // next refresh reads it.
        } else if (moved.empty()) {
            index_writable_ = false;
            note("index.json " + why +
                 ", and it could not be moved to quarantine: it is left "
                 "as it is");
        } else {
            note("index.json " + why + ": moved to " + moved +
                 " and rebuilt from the history "
                 "files");
        }
        return true;
    }

    static bool same_file_version(const struct stat& a, const struct stat& b) {
        return a.st_ino == b.st_ino && a.st_size == b.st_size &&
               a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
    }

    // Reads fd whole, but never more than max_index_bytes + 1 bytes (so that a file that
    // grew past the limit is seen as such without being held in memory).
    bool read_capped(int fd, std::size_t size_hint, std::string& out) {
        const std::size_t cap = options_.max_index_bytes + 1;
        out.resize(std::min(size_hint + 1, cap));
        std::size_t got = 0;
        for (;;) {
            if (got == out.size()) {
                if (out.size() >= cap)
                    break;
                out.resize(std::min(out.size() * 2, cap));
            }
            const ssize_t n = detail::pread_full(ops_, fd, out.data() + got, out.size() - got,
                                                 static_cast<off_t>(got));
            if (n < 0)
                return false;
            got += static_cast<std::size_t>(n);
            if (got < out.size())
                break;
        }
        out.resize(got);
        return true;
    }

    // Refreshes the entries of every session named in changes.log [from, to).
    bool apply_changes(std::uint64_t from, std::uint64_t to) {
        std::string text(static_cast<std::size_t>(to - from), '\0');
        if (detail::pread_full(ops_, log_fd_.get(), text.data(), text.size(),
                               static_cast<off_t>(from)) != static_cast<ssize_t>(text.size()))
            return verify_everything();
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
                if (detail::is_valid_channel(ch) && is_valid_session_id(id))
                    touched.emplace(std::move(ch), std::move(id));
            }
            pos = nl + 1;
        }
        bool changed = false;
        for (const auto& [ch, id] : touched)
            changed = refresh_entry(ch, id) || changed;
        return changed;
    }

    // Rebuilds the index from the history files, keeping entries that still match.
    bool verify_everything() {
        bool changed = false;
        std::set<std::string> channels_seen;
        for (const auto& ch : list_dir(root_fd_.get(), true, root_.string())) {
            if (!detail::is_valid_channel(ch))
                continue;
            channels_seen.insert(ch);
            changed = reconcile_channel(ch, true) || changed;
        }
        std::erase_if(index_.channels, [&](const auto& kv) {
            if (channels_seen.count(kv.first))
                return false;
            changed = true;
            return true;
        });
        return changed;
    }

    // Sessions added or removed behind our back (a copied-in directory): noticed through
    // the channel directory's modification time.
    bool reconcile_channel_dirs() {
        bool changed = false;
        std::vector<std::string> names;
        for (const auto& [name, ch] : index_.channels)
            names.push_back(name);
        if (!index_.channels.count(channel_))
            names.push_back(channel_);
        for (const auto& name : names)
            changed = reconcile_channel(name, false) || changed;
        return changed;
    }

    bool reconcile_channel(const std::string& name, bool check_every_file) {
        const std::string path = root_.string() + "/" + name;
        detail::unique_fd chfd(
            ops_.openat(root_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!chfd) {
            if (errno == ENOENT) // only "no such directory" means the channel is gone
                return index_.channels.erase(name) > 0;
            detail::throw_errno("cannot open the channel directory", path);
        }
        struct stat st {};
        if (ops_.fstat(chfd.get(), &st) < 0)
            detail::throw_errno("cannot examine the channel directory", path);
        const std::int64_t mtime = mtime_ns(st);
        auto& cd = index_.channels[name];
        if (!check_every_file && cd.dir_mtime_ns == mtime)
            return false;
        // The mtime was taken before the listing (a change during it shows next time), and
        // is recorded only after the listing succeeded: a listing that fails throws, and
        // never leaves an empty list, or a "seen" mtime, behind in the index.
        const auto names = list_dir(chfd.get(), true, path);
        std::set<session_id> on_disk;
        for (const auto& n : names) {
            if (is_valid_session_id(n))
                on_disk.insert(n);
            else if (n.starts_with(".deleted-") && name == channel_)
                finish_deletion(n);
        }
        std::erase_if(cd.sessions, [&](const auto& kv) { return !on_disk.count(kv.first); });
        bool all_read = true;
        for (const auto& id : on_disk) {
            if (check_every_file || !cd.sessions.count(id))
                refresh_entry(name, id);
            if (name == channel_ && unreadable_.count(id))
                all_read = false;
        }
        // A session that could not be read is looked at again by the next list, in this
        // process or another, rather than forgotten behind an unchanged mtime.
        cd.dir_mtime_ns = all_read ? mtime : 0;
        return true;
    }

    // One fstatat per session of this channel: an entry whose history changed size,
    // inode or modification time since it was read is read again (a change made behind
    // the store's back: an editor, a sync tool, `rm`); one whose history is gone is
    // dropped. Returns true when some entry changed.
    bool check_entries() {
        auto* ch = channel_index();
        if (!ch)
            return false;
        std::vector<session_id> stale;
        for (const auto& [id, e] : ch->sessions)
            if (!entry_is_current(id, e))
                stale.push_back(id);
        bool changed = false;
        for (const auto& id : stale)
            changed = refresh_entry(channel_, id) || changed;
        return changed;
    }

    // check_entries() for one session. Returns whether it has an entry now.
    bool check_entry(const session_id& id) {
        auto* ch = channel_index();
        if (!ch)
            return false;
        auto it = ch->sessions.find(id);
        if (it == ch->sessions.end())
            return false;
        if (!entry_is_current(id, it->second) && refresh_entry(channel_, id))
            index_dirty_ = true;
        ch = channel_index();
        return ch && ch->sessions.count(id) > 0;
    }

    bool entry_is_current(const session_id& id, const detail::index_entry& e) {
        if (unreadable_.count(id) || !channel_fd_)
            return false;
        const std::string rel = id + "/history.jsonl";
        struct stat st {};
        return ops_.fstatat(channel_fd_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode) && e.ino == static_cast<std::uint64_t>(st.st_ino) &&
               e.mtime_ns == mtime_ns(st) && e.file_size == static_cast<std::uint64_t>(st.st_size);
    }

    // Re-reads what changed in one session's history. Returns true when its entry
    // changed, or was dropped because the session is gone (only ENOENT says so). A
    // session that this process may not read (EACCES, EPERM, not a regular file) keeps
    // its entry as it was and is marked unreadable: left out of list() with a note, an
    // error from find(). Any other failure (EIO, EMFILE, ...) is the operation's own:
    // storage_error, and nothing concluded.
    bool refresh_entry(const std::string& channel, const session_id& id) {
        const bool own = channel == channel_;
        if (own)
            unreadable_.erase(id);
        auto& cd = index_.channels[channel];
        auto drop = [&] { return cd.sessions.erase(id) > 0; };
        auto unreadable = [&](int e) {
            if (e != EACCES && e != EPERM && e != detail::not_a_regular_file)
                detail::throw_open_failure(
                    "cannot read session '" + id + "'",
                    root_.string() + "/" + channel + "/" + id + "/history.jsonl", e);
            if (own)
                unreadable_.insert_or_assign(id, e);
            return false;
        };
        detail::unique_fd other_channel;
        if (!own) {
            other_channel.reset(
                ops_.openat(root_fd_.get(), channel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            if (!other_channel) {
                if (errno == ENOENT)
                    return drop();
                detail::throw_errno("cannot open the channel directory",
                                    root_.string() + "/" + channel);
            }
        } else if (!channel_fd_) {
            return drop();
        }
        const int chfd = own ? channel_fd_.get() : other_channel.get();
        detail::unique_fd dir(ops_.openat(chfd, id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!dir) {
            // Not a directory (a planted file or symbolic link) is not a session either.
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                return drop();
            return unreadable(errno);
        }
        int err = 0;
        detail::unique_fd fd =
            detail::open_regular(ops_, dir.get(), "history.jsonl", O_RDONLY, 0, err);
        if (!fd) {
            if (err == ENOENT) {
                remove_unborn_session(chfd, id);
                return drop();
            }
            if (err == ELOOP) // a symbolic link planted as the history: not a session
                return drop();
            return unreadable(err);
        }
        struct stat st {};
        if (ops_.fstat(fd.get(), &st) < 0)
            return unreadable(errno);
        const auto size = static_cast<std::uint64_t>(st.st_size);
        const std::string path = root_.string() + "/" + channel + "/" + id + "/history.jsonl";
        detail::scan_state s;
        s.meta.id = id;
        auto it = cd.sessions.find(id);
        if (it != cd.sessions.end() && !it->second.newer_version &&
            prefix_still_valid(fd.get(), st, path, it->second)) {
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
            detail::scan_forward(ops_, fd.get(), path, s, ignored, options_.max_record_bytes, false,
                                 [](exchange&&) {});
        } catch (const storage_error& e) {
            return unreadable(e.errno_value() ? e.errno_value() : EIO); // rethrows as ours
        }
        if (own && s.meta.exchange_count == 0 && !s.newer_version &&
            (s.consumed < size || !s.have_header) && remove_unborn_history(id, fd.get(), size))
            return drop();
        detail::index_entry fresh = make_entry(s, st);
        if (auto old = cd.sessions.find(id); old != cd.sessions.end() && old->second == fresh)
            return false; // read again (a torn tail, say), and nothing changed
        cd.sessions.insert_or_assign(id, std::move(fresh));
        return true;
    }

    // A crash between mkdir and the creation of history.jsonl leaves an empty session
    // directory. Creation holds LOCK_SH on changes.log throughout, so under LOCK_EX no
    // creation is in flight, and a directory still empty then is a leftover: rmdir
    // (which refuses a directory that is not empty) removes it.
    void remove_unborn_session(int chfd, const session_id& id) {
        if (!log_fd_ || ops_.flock(log_fd_.get(), LOCK_EX | LOCK_NB) < 0)
            return;
        ops_.unlinkat(chfd, id.c_str(), AT_REMOVEDIR);
        ops_.flock(log_fd_.get(), LOCK_UN);
    }

    // A session without a single exchange that is torn or has no header: a kill during
    // its creation or its first save (or a history emptied by another program), and no
    // writer holding it (its lease is free). It cannot be listed, resumed or deleted as
    // it is, so its bytes go to quarantine and its directory away, as a deletion that
    // crashed is finished. Returns true if done.
    bool remove_unborn_history(const session_id& id, int fd, std::uint64_t size) {
        // LOCK_EX on changes.log: no creation (which holds LOCK_SH from mkdir until its
        // header is written and its lease taken) and no save is in flight. Then the
        // session's own lease: no writer holds it. Neither is waited for.
        if (log_errno_ || !log_fd_ || ops_.flock(log_fd_.get(), LOCK_EX | LOCK_NB) < 0)
            return false;
        struct log_unlock {
            basic_jsonl_store& s;
            ~log_unlock() { s.ops_.flock(s.log_fd_.get(), LOCK_UN); }
        } unlock{*this};
        if (ops_.flock(fd, LOCK_EX | LOCK_NB) < 0)
            return false; // a writer holds it: its first save is in flight
        // Judge again under both locks, from the file as it is now: a writer may have
        // repaired and saved into it, and closed it, since it was read.
        struct stat now {};
        if (ops_.fstat(fd, &now) < 0)
            return false;
        size = static_cast<std::uint64_t>(now.st_size);
        detail::scan_state again;
        std::vector<diagnostic> ignored;
        try {
            detail::scan_forward(ops_, fd, history_path(id), again, ignored,
                                 options_.max_record_bytes, false, [](exchange&&) {});
        } catch (const storage_error&) {
            return false;
        }
        if (again.meta.exchange_count != 0 || again.newer_version ||
            (again.consumed == size && again.have_header))
            return false;
        std::string saved;
        try {
            if (size > 0)
                saved = quarantine_bytes(fd, 0, size, channel_ + "-" + id + "-unborn");
            const std::string trash = ".deleted-" + id + "-" + std::to_string(ops_.getpid()) + "-" +
                                      std::to_string(detail::next_serial());
            {
                change_lock lock(*this, id, change_lock::held);
                if (ops_.renameat(channel_fd_.get(), id.c_str(), channel_fd_.get(), trash.c_str()) <
                    0)
                    detail::throw_errno("cannot move it aside", session_path(id));
            }
            ops_.fsync(channel_fd_.get());
            remove_tree(trash);
        } catch (const storage_error& e) {
            if (!saved.empty()) // the session stays as it was: so must the quarantine
                remove_quarantined(saved);
            note("session '" + id +
                 "' holds no exchange and a torn, missing or empty "
                 "header or first record (a save that was interrupted), but it could not be "
                 "cleaned up; it is left as it is: " +
                 e.what());
            return false;
        }
        note("session '" + id + "' holds no exchange and " +
             (size == 0 ? std::string("an empty history (a save interrupted at its very "
                                      "start, or a file emptied by another program); it was "
                                      "removed")
                        : "a torn or missing header or first record (a save that was "
                          "interrupted); its " +
                              std::to_string(size) + " bytes were moved to " + saved +
                              " and the session removed"));
        return true;
    }

    // Removes a copy quarantine_bytes() made (by its full path), when what it copied is
    // kept where it was after all.
    void remove_quarantined(const std::string& path) {
        const auto name = std::filesystem::path(path).filename();
        detail::unique_fd q(
            ops_.openat(root_fd_.get(), "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (q)
            ops_.unlinkat(q.get(), name.c_str(), 0);
    }

    // The names in a directory (only subdirectories, and names whose type the file
    // system does not tell, with `directories_only`). Throws storage_error when the
    // directory cannot be listed: a failed listing is never an empty one.
    std::vector<std::string> list_dir(int dirfd, bool directories_only, const std::string& path) {
        std::vector<detail::dir_entry> entries;
        if (ops_.list_directory(dirfd, entries) < 0)
            detail::throw_errno("cannot list the directory", path);
        std::vector<std::string> names;
        names.reserve(entries.size());
        for (auto& e : entries)
            if (!directories_only || e.type == DT_DIR || e.type == DT_UNKNOWN)
                names.push_back(std::move(e.name));
        return names;
    }

    // index.lock, 0600, held with LOCK_EX; no descriptor if it cannot be had.
    detail::unique_fd open_index_lock() {
        int err = 0;
        detail::unique_fd lock =
            detail::open_regular(ops_, root_fd_.get(), "index.lock", O_RDWR | O_CREAT, 0600, err);
        if (!lock) {
            errno = err == detail::not_a_regular_file ? EINVAL : err;
            return lock;
        }
        if (ops_.flock(lock.get(), LOCK_EX) < 0)
            return detail::unique_fd{};
        return lock;
    }

    // index.json <- the in-memory index: temp file (0600), fsync, rename, fsync of the
    // root, under index.lock. A failure is reported, never thrown: the index is a cache.
    void write_index() {
        if (!index_writable_)
            return;
        detail::unique_fd lock = open_index_lock();
        if (!lock)
            return index_write_failed();
        const std::string text = detail::encode_index(index_);
        // A fresh file each time, so that its mode is ours (0600) whatever an older one
        // had; no one else writes it while we hold index.lock.
        if (ops_.unlinkat(root_fd_.get(), "index.json.tmp", 0) < 0 && errno != ENOENT)
            return index_write_failed();
        detail::unique_fd tmp(ops_.openat(root_fd_.get(), "index.json.tmp",
                                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
        if (!tmp)
            return index_write_failed();
        if (detail::append_all(ops_, tmp.get(), text, 0) != 0 || ops_.fsync(tmp.get()) < 0 ||
            ops_.renameat(root_fd_.get(), "index.json.tmp", root_fd_.get(), "index.json") < 0) {
            const int e = errno;
            ops_.unlinkat(root_fd_.get(), "index.json.tmp", 0);
            errno = e;
            return index_write_failed();
        }
        ops_.fsync(root_fd_.get());
        ops_.fstat(tmp.get(), &index_seen_);
        index_dirty_ = false;
    }

    void index_write_failed() {
        if (index_write_error_reported_)
            return;
        index_write_error_reported_ = true;
        note("could not update " + root_.string() + "/index.json (" + std::strerror(errno) +
             "); listing still works from the history files");
    }

    // --- deletion leftovers ---------------------------------------------------------

    // Removes a session directory already renamed aside. Best effort: what is left is
    // finished by a later store (finish_deletion).
    void remove_tree(const std::string& name) {
        detail::unique_fd dir(
            ops_.openat(channel_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (dir) {
            std::vector<detail::dir_entry> entries;
            if (ops_.list_directory(dir.get(), entries) < 0)
                return;
            for (const auto& f : entries)
                ops_.unlinkat(dir.get(), f.name.c_str(), 0);
        }
        ops_.unlinkat(channel_fd_.get(), name.c_str(), AT_REMOVEDIR);
        ops_.fsync(channel_fd_.get());
    }

    // A crash between renaming a deleted session aside and removing it leaves a
    // ".deleted-<id>-<pid>-<n>" directory; the next reconciliation of the channel
    // directory (its mtime changed with the rename) finishes the job, unless the
    // deleting process is still alive and about to do it.
    void finish_deletion(const std::string& name) {
        constexpr std::size_t pid_at = sizeof(".deleted-") - 1 + session_id_length + 1;
        const long pid = name.size() > pid_at ? std::strtol(name.c_str() + pid_at, nullptr, 10) : 0;
        // Alive, or alive as another user's process (EPERM): only ESRCH says it is gone.
        if (pid > 0 && pid != ops_.getpid() &&
            (ops_.kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH))
            return;
        remove_tree(name);
    }

    std::filesystem::path root_;
    std::string channel_;
    jsonl_options options_;
    [[no_unique_address]] Ops ops_;
    detail::unique_fd root_fd_;
    detail::unique_fd channel_fd_;
    detail::unique_fd log_fd_;
    int log_errno_ = 0;     ///< why changes.log could not be opened for writing; 0: it could
    int channel_errno_ = 0; ///< why the channel directory could not be created; 0: it could
    std::string boot_id_;
    std::map<session_id, writer> writers_;
    std::map<session_id, int> unreadable_; ///< sessions of this channel that cannot be read
    detail::index_data index_;
    struct stat index_seen_ {};
    bool index_loaded_ = false;
    bool index_dirty_ = false;
    bool index_writable_ = true;
    bool index_write_error_reported_ = false;
    std::vector<diagnostic> notes_;
    std::string record_;
};

/// The file store with the real system calls.
using jsonl_store = basic_jsonl_store<>;

static_assert(session_storage<jsonl_store>);

} // namespace dexter::sessions
