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

#include <dexter/sessions/detail/jsonl_codec.hpp>
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
};

/// The file store. `Ops` is the system-call seam (detail::posix_ops; tests inject
/// faults through it). A store object is not thread-safe: use one per thread (they may
/// share a root), or guard it. Any number of store objects, in any number of processes,
/// may use one root at once; each session has one writer at a time (flock).
template <class Ops = detail::posix_ops>
class basic_jsonl_store {
public:
    /// Opens (creating if needed) the store at `root` for sessions of `channel`.
    /// Throws std::invalid_argument for a bad channel name, storage_error if the root
    /// cannot be created or opened. A read-only store can still list and load.
    explicit basic_jsonl_store(std::filesystem::path root, std::string channel = "cli",
                               jsonl_options options = {}, Ops ops = {})
        : root_(std::move(root)), channel_(std::move(channel)), options_(options),
          ops_(std::move(ops)) {
        if (!detail::is_valid_channel(channel_))
            throw std::invalid_argument("invalid channel name '" + channel_ +
                                        "': expected 1 to 64 characters of [a-z0-9_-]");
        std::error_code ec;
        std::filesystem::create_directories(root_, ec);
        root_fd_.reset(ops_.openat(AT_FDCWD, root_.c_str(), O_RDONLY | O_DIRECTORY));
        if (!root_fd_)
            detail::throw_errno("cannot open the session store", root_.string());
        if (ops_.mkdirat(root_fd_.get(), channel_.c_str(), 0700) < 0 && errno != EEXIST &&
            errno != EROFS && errno != EACCES && errno != EPERM)
            detail::throw_errno("cannot create the channel directory", channel_path());
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_ && errno != ENOENT)
            detail::throw_errno("cannot open the channel directory (it must be a real "
                                "directory, not a symbolic link)",
                                channel_path());
        log_fd_.reset(ops_.openat(root_fd_.get(), "changes.log",
                                  O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW, 0644));
        if (!log_fd_) {
            log_errno_ = errno; // a read-only store: it can still list and load
            log_fd_.reset(ops_.openat(root_fd_.get(), "changes.log", O_RDONLY | O_NOFOLLOW));
        }
        struct statfs fs {};
        if (::fstatfs(root_fd_.get(), &fs) == 0 && fs.f_type == 0x6969) // NFS_SUPER_MAGIC
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
                    throw session_busy(m.id, history_path(m.id), std::nullopt);
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

    /// Also repairs a torn tail (moved to quarantine, reported by take_diagnostics()).
    /// Opening a session this object already holds returns its metadata as it is.
    /// Throws invalid_session_id, session_not_found, session_busy (with the holder's
    /// pid when /proc/locks tells it), format_error (a newer format: the file is left
    /// untouched), storage_error.
    session_meta open(const session_id& id) {
        validate_session_id(id);
        if (auto it = writers_.find(id); it != writers_.end()) {
            if (!it->second.poisoned)
                return it->second.meta;
            writers_.erase(it); // a failed sync: start again from what the file holds
        }
        require_channel();
        writer w;
        w.dir = open_session_dir(id);
        w.file.reset(ops_.openat(w.dir.get(), "history.jsonl", O_RDWR | O_APPEND | O_NOFOLLOW));
        if (!w.file) {
            if (errno == ENOENT)
                throw session_not_found(id, root_.string());
            detail::throw_errno("cannot open session '" + id + "' for writing", history_path(id));
        }
        if (ops_.flock(w.file.get(), LOCK_EX | LOCK_NB) < 0) {
            struct stat st {};
            std::optional<long> holder;
            if (ops_.fstat(w.file.get(), &st) == 0)
                holder = detail::flock_holder(st.st_dev, st.st_ino);
            throw session_busy(id, history_path(id), holder);
        }
        if (const auto v = header_version(id, w.file.get()); v > detail::history_format_version)
            throw newer_format(id, v); // before any repair: never touch what we cannot read
        repair_tail(id, w.file.get());
        refresh_index(false);
        loaded_session state;
        const auto st = read_state(id, w.file.get(), state.diagnostics);
        if (st.newer_version)
            throw newer_format(id, st.newer_version);
        w.size = st.consumed;
        w.lines = st.lines;
        w.meta = st.meta;
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

    /// From the index, checked against the history files. Throws invalid_session_id,
    /// format_error (the session is in a newer format: resuming it would fail),
    /// storage_error.
    std::optional<session_meta> find(const session_id& id) {
        validate_session_id(id);
        refresh_index(false);
        const auto* ch = channel_index();
        if (!ch)
            return std::nullopt;
        auto it = ch->sessions.find(id);
        if (it == ch->sessions.end()) {
            // Not in the index: ask the history before saying it does not exist (an index
            // edited, or restored from an older copy, must not hide a session).
            if (!refresh_entry(channel_, id))
                return std::nullopt;
            index_dirty_ = true;
            it = ch->sessions.find(id);
            if (it == ch->sessions.end())
                return std::nullopt;
        }
        if (it->second.newer_version)
            throw newer_format(id, it->second.newer_version);
        return it->second.meta;
    }

    /// Every session of this store's channel, from the index, which it writes back when
    /// it changed (a failure to write it is reported by take_diagnostics(), not thrown).
    /// Sessions in a newer format are left out. Throws storage_error.
    std::vector<session_meta> list() {
        refresh_index(true);
        std::vector<session_meta> out;
        if (const auto* ch = channel_index()) {
            out.reserve(ch->sessions.size());
            for (const auto& [id, e] : ch->sessions)
                if (!e.newer_version)
                    out.push_back(e.meta);
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
        detail::unique_fd file(ops_.openat(dir.get(), "history.jsonl", O_RDONLY | O_NOFOLLOW));
        if (!file) {
            if (errno == ENOENT)
                throw session_not_found(id, root_.string());
            detail::throw_errno("cannot open session '" + id + "'", history_path(id));
        }
        loaded_session out;
        const std::string path = history_path(id);
        if (last == all_exchanges) {
            detail::scan_state st;
            st.meta.id = id;
            detail::scan_forward(ops_, file.get(), path, st, out.diagnostics,
                                 options_.max_record_bytes, true,
                                 [&](exchange&& ex) { out.exchanges.push_back(std::move(ex)); });
            if (st.newer_version)
                throw newer_format(id, st.newer_version);
            out.meta = std::move(st.meta);
        } else if (auto held = writers_.find(id);
                   held != writers_.end() && !held->second.poisoned) {
            // This object holds the session: no one else has written since it was opened
            // (and its tail repaired), and the writer knows where the complete lines end.
            const writer& w = held->second;
            out.exchanges = detail::scan_backward(ops_, file.get(), path, w.size, w.lines, last,
                                                  out.diagnostics, options_.max_record_bytes);
            out.meta = w.meta;
        } else {
            refresh_index(false);
            const auto st = read_state(id, file.get(), out.diagnostics);
            if (st.newer_version)
                throw newer_format(id, st.newer_version);
            out.exchanges = detail::scan_backward(ops_, file.get(), path, st.consumed, st.lines,
                                                  last, out.diagnostics, options_.max_record_bytes);
            out.meta = st.meta;
        }
        std::sort(out.diagnostics.begin(), out.diagnostics.end(),
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
        writer own; // the lock taken here, when this object does not hold the session
        if (auto it = writers_.find(id); it == writers_.end()) {
            writer& w = own;
            w.dir = open_session_dir(id);
            w.file.reset(ops_.openat(w.dir.get(), "history.jsonl", O_RDONLY | O_NOFOLLOW));
            if (!w.file && errno == ENOENT)
                throw session_not_found(id, root_.string());
            if (w.file && ops_.flock(w.file.get(), LOCK_EX | LOCK_NB) < 0) {
                struct stat st {};
                std::optional<long> holder;
                if (ops_.fstat(w.file.get(), &st) == 0)
                    holder = detail::flock_holder(st.st_dev, st.st_ino);
                throw session_busy(id, history_path(id), holder);
            }
        }
        const std::string trash = ".deleted-" + id + "-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(detail::next_serial());
        {
            change_lock lock(*this, id);
            if (ops_.renameat(channel_fd_.get(), id.c_str(), channel_fd_.get(), trash.c_str()) < 0)
                detail::throw_errno("cannot delete session '" + id + "'", session_path(id));
        }
        ops_.fsync(channel_fd_.get());
        writers_.erase(id); // only now: if the rename failed, the session stays open here
        own = writer{};
        if (auto* ch = channel_index())
            ch->sessions.erase(id);
        refresh_index(true);
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
        if (!log_fd_ || (::fcntl(log_fd_.get(), F_GETFL) & O_ACCMODE) == O_RDONLY)
            throw storage_error("the session store is read-only (cannot write changes.log)",
                                root_.string() + "/changes.log", log_errno_ ? log_errno_ : EACCES);
        const std::string probe = ".probe-" + std::to_string(::getpid());
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
        bool poisoned = false;
    };

    // Holds LOCK_SH on changes.log and appends "\n<channel>/<id>\n" to it. Changes to
    // history files happen under it; a reader takes LOCK_EX to see only finished ones.
    // The leading newline ends any line torn by an earlier failed append, so a torn
    // line can never swallow this one (empty lines are ignored).
    class change_lock {
    public:
        change_lock(basic_jsonl_store& s, const session_id& id) : s_(s) {
            const int fd = s_.log_fd_.get();
            if (s_.log_errno_) // opened read-only: say why, not EBADF from write()
                throw storage_error("cannot record a change of session '" + id +
                                        "': the session store is read-only (cannot write "
                                        "changes.log)",
                                    s_.root_.string() + "/changes.log", s_.log_errno_);
            if (fd < 0 || s_.ops_.flock(fd, LOCK_SH) < 0)
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
                    s_.ops_.flock(fd, LOCK_UN);
                    detail::throw_errno("cannot record a change of session '" + id + "'",
                                        s_.root_.string() + "/changes.log", e);
                }
            }
        }
        ~change_lock() { s_.ops_.flock(s_.log_fd_.get(), LOCK_UN); }
        change_lock(const change_lock&) = delete;
        change_lock& operator=(const change_lock&) = delete;

    private:
        basic_jsonl_store& s_;
    };

    std::string channel_path() const { return root_.string() + "/" + channel_; }
    std::string session_path(const session_id& id) const { return channel_path() + "/" + id; }

    void note(std::string what) { notes_.push_back({0, 0, std::move(what)}); }

    void require_channel() {
        if (channel_fd_)
            return;
        channel_fd_.reset(
            ops_.openat(root_fd_.get(), channel_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!channel_fd_)
            detail::throw_errno("cannot open the channel directory", channel_path());
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
                                    "' could not be synced to disk; reopen the session before "
                                    "saving more",
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
            if (const int e =
                    detail::append_all(ops_, w.file.get(), record_, static_cast<off_t>(w.size)))
                detail::throw_errno("cannot save " + what + " of session '" + id + "'",
                                    history_path(id), e);
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

    // The format version in the session header on the first line, 0 if there is none.
    std::uint64_t header_version(const session_id& id, int fd) {
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
        if (nl == std::string::npos)
            return 0;
        boost::system::error_code ec;
        const json::value v = json::parse(std::string_view(buf).substr(0, nl), ec);
        std::uint64_t version = 0;
        if (!ec && v.is_object()) {
            const auto* type = detail::member(v.get_object(), "type");
            if (type && type->is_string() && type->get_string() == "session")
                detail::read_uint(v.get_object(), "version", version);
        }
        return version;
    }

    // --- torn tails -----------------------------------------------------------------

    // Under the writer's lock: bytes after the last newline, or a last line that is not
    // JSON, were never acknowledged. Copy them to quarantine, cut them off, sync.
    void repair_tail(const session_id& id, int fd) {
        struct stat st {};
        if (ops_.fstat(fd, &st) < 0)
            detail::throw_errno("cannot stat", history_path(id));
        const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        if (size == 0)
            return;
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
                    return;
                cut = start;
            } else {
                return;
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
        note("session '" + id + "': an incomplete last record (" + std::to_string(size - cut) +
             " bytes, never acknowledged) was moved to " + saved);
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
        return label + "." + stamp + "." + std::to_string(::getpid()) + "." +
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
        std::string buf(detail::read_chunk, '\0');
        std::uint64_t written = 0;
        for (std::uint64_t pos = from; pos < to;) {
            const auto len =
                static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - pos));
            const ssize_t n =
                detail::pread_full(ops_, fd, buf.data(), len, static_cast<off_t>(pos));
            if (n <= 0)
                detail::throw_errno("cannot read the torn tail", path, n < 0 ? errno : EIO);
            if (const int e = detail::append_all(
                    ops_, out.get(), std::string_view(buf.data(), static_cast<std::size_t>(n)),
                    static_cast<off_t>(written)))
                detail::throw_errno("cannot write", path, e);
            pos += static_cast<std::uint64_t>(n);
            written += static_cast<std::uint64_t>(n);
        }
        if (ops_.fsync(out.get()) < 0 || ops_.fsync(q.get()) < 0)
            detail::throw_errno("cannot sync", path);
        return path;
    }

    // Moves the damaged index.json (whatever it is: file, directory, symbolic link) into
    // quarantine, under the index lock, unless another process has replaced it since we
    // looked. Returns where it went, or "" if it was not moved.
    std::string quarantine_index(const struct stat& damaged) {
        try {
            detail::unique_fd lock(
                ops_.openat(root_fd_.get(), "index.lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
            if (!lock || ops_.flock(lock.get(), LOCK_EX) < 0)
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
        const auto size = static_cast<std::uint64_t>(sb.st_size);
        bool entry_wrong = false;
        if (const auto* ch = channel_index()) {
            auto it = ch->sessions.find(id);
            if (it != ch->sessions.end() && !it->second.newer_version) {
                if (it->second.size <= size && ends_line(fd, it->second.size) &&
                    count_matches(fd, history_path(id), it->second)) {
                    st.meta = it->second.meta;
                    st.consumed = it->second.size;
                    st.lines = it->second.lines;
                    st.have_header = true;
                } else {
                    entry_wrong = true;
                }
            }
        }
        detail::scan_forward(ops_, fd, history_path(id), st, diags, options_.max_record_bytes,
                             false, [](exchange&&) {});
        if (entry_wrong && !st.newer_version) { // the history wins: correct the cache
            detail::index_entry e;
            e.meta = st.meta;
            e.size = st.consumed;
            e.lines = st.lines;
            index_.channels[channel_].sessions.insert_or_assign(id, std::move(e));
            index_dirty_ = true;
        }
        return st;
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
    // saves it to index.json when it changed.
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
            }
        }
        const std::string& boot = detail::boot_id();
        if (!log_fd_ || index_.boot_id != boot || index_.changes_inode != log_inode ||
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
            index_.boot_id != boot)
            changed = true;
        index_.changes_offset = log_size;
        index_.changes_inode = log_inode;
        index_.boot_id = boot;
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
                return unusable_index("cannot be examined", true);
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
        detail::unique_fd fd(ops_.openat(root_fd_.get(), "index.json", O_RDONLY | O_NOFOLLOW));
        std::string text;
        if (!fd || !read_whole(fd.get(), static_cast<std::size_t>(st.st_size), text))
            return unusable_index("cannot be read (" + std::string(std::strerror(errno)) + ")",
                                  true);
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

    bool read_whole(int fd, std::size_t size_hint, std::string& out) {
        out.resize(size_hint + 1);
        std::size_t got = 0;
        for (;;) {
            if (got == out.size())
                out.resize(out.size() * 2);
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
        for (const auto& ch : list_dir(root_fd_.get(), true)) {
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
        detail::unique_fd chfd(
            ops_.openat(root_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!chfd)
            return index_.channels.erase(name) > 0;
        struct stat st {};
        if (ops_.fstat(chfd.get(), &st) < 0)
            return false;
        const std::int64_t mtime =
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        auto& cd = index_.channels[name];
        if (!check_every_file && cd.dir_mtime_ns == mtime)
            return false;
        cd.dir_mtime_ns = mtime;
        bool changed = true;
        std::set<session_id> on_disk;
        for (const auto& n : list_dir(chfd.get(), true)) {
            if (is_valid_session_id(n))
                on_disk.insert(n);
            else if (n.starts_with(".deleted-") && name == channel_)
                finish_deletion(n);
        }
        std::erase_if(cd.sessions, [&](const auto& kv) { return !on_disk.count(kv.first); });
        for (const auto& id : on_disk)
            if (check_every_file || !cd.sessions.count(id))
                refresh_entry(name, id);
        return changed;
    }

    // Re-reads what changed in one session's history; drops the entry if it is gone.
    bool refresh_entry(const std::string& channel, const session_id& id) {
        auto& cd = index_.channels[channel];
        auto drop = [&] { return cd.sessions.erase(id) > 0; };
        detail::unique_fd chfd(
            ops_.openat(root_fd_.get(), channel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!chfd)
            return drop();
        detail::unique_fd dir(
            ops_.openat(chfd.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!dir)
            return drop();
        detail::unique_fd fd(ops_.openat(dir.get(), "history.jsonl", O_RDONLY | O_NOFOLLOW));
        if (!fd) {
            if (errno == ENOENT)
                remove_unborn_session(chfd.get(), id);
            return drop();
        }
        struct stat st {};
        if (ops_.fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode))
            return drop();
        const auto size = static_cast<std::uint64_t>(st.st_size);
        detail::scan_state s;
        s.meta.id = id;
        auto it = cd.sessions.find(id);
        if (it != cd.sessions.end() && !it->second.newer_version && it->second.size <= size &&
            ends_line(fd.get(), it->second.size)) {
            if (it->second.size == size)
                return false;
            if (count_matches(fd.get(), channel + "/" + id, it->second)) {
                s.meta = it->second.meta;
                s.consumed = it->second.size;
                s.lines = it->second.lines;
                s.have_header = true;
            }
        }
        std::vector<diagnostic> ignored; // reported when the session is loaded
        try {
            detail::scan_forward(ops_, fd.get(), channel + "/" + id, s, ignored,
                                 options_.max_record_bytes, false, [](exchange&&) {});
        } catch (const storage_error&) {
            return drop();
        }
        detail::index_entry e;
        e.meta = std::move(s.meta);
        e.size = s.consumed;
        e.lines = s.lines;
        e.newer_version = s.newer_version;
        cd.sessions.insert_or_assign(id, std::move(e));
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

    std::vector<std::string> list_dir(int dirfd, bool directories_only) {
        std::vector<std::string> names;
        const int fd = ops_.openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            return names;
        DIR* d = ::fdopendir(fd);
        if (!d) {
            ::close(fd);
            return names;
        }
        while (const dirent* e = ::readdir(d)) {
            const std::string_view n = e->d_name;
            if (n == "." || n == "..")
                continue;
            if (directories_only && e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
                continue;
            names.emplace_back(n);
        }
        ::closedir(d);
        return names;
    }

    // index.json <- the in-memory index: temp file, fsync, rename, fsync of the root,
    // under index.lock. A failure is reported, never thrown: the index is a cache.
    void write_index() {
        if (!index_writable_)
            return;
        detail::unique_fd lock(
            ops_.openat(root_fd_.get(), "index.lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
        if (!lock || ops_.flock(lock.get(), LOCK_EX) < 0)
            return index_write_failed();
        const std::string text = detail::encode_index(index_);
        detail::unique_fd tmp(ops_.openat(root_fd_.get(), "index.json.tmp",
                                          O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
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

    void remove_tree(const std::string& name) {
        detail::unique_fd dir(
            ops_.openat(channel_fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (dir)
            for (const auto& f : list_dir(dir.get(), false))
                ops_.unlinkat(dir.get(), f.c_str(), 0);
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
        if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) == 0)
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
    int log_errno_ = 0; ///< why changes.log could not be opened for writing; 0: it could
    std::map<session_id, writer> writers_;
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
