// SPDX-License-Identifier: BSL-1.0
// <root>/changes.log: one line "<channel>/<id>" per change to a history file, so that
// readers know which index entries to refresh (docs/FORMAT.md, "Write protocol").
//
// This header owns the log's descriptor (opened for writing, or read-only where the
// store cannot be written, or not at all when it is not a regular file), the shared
// lock a change holds while it is recorded and made (change_lock), and the exclusive
// snapshot a reader takes to see only finished changes.
#pragma once

#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace dexter::sessions::detail {

/// The descriptor of changes.log, and why it is not writable when it is not.
template <file_ops Ops>
class change_log {
public:
    change_log() = default;

    /// Opens `root`/changes.log (under `root_fd`) for appending, creating it (0600).
    /// Where the store cannot be written (EACCES, EROFS, EPERM) it is opened read-only,
    /// or not at all when it does not exist or cannot be read: the store still lists
    /// and loads. A changes.log that is not a regular file (a FIFO would block a writer
    /// forever) is neither read nor written; a note saying so is returned, for the
    /// store's diagnostics. Throws storage_error, naming the path, for any other
    /// failure (EIO, EMFILE, ...).
    std::optional<std::string> open(Ops& ops, int root_fd, const std::string& root) {
        path_ = root + "/changes.log";
        int err = 0;
        fd_ = open_regular(ops, root_fd, "changes.log", O_RDWR | O_APPEND | O_CREAT, 0600, err);
        if (fd_)
            return std::nullopt;
        if (err == EACCES || err == EROFS || err == EPERM) {
            errno_ = err;
            int ro_err = 0;
            fd_ = open_regular(ops, root_fd, "changes.log", O_RDONLY, 0, ro_err);
            if (fd_ || ro_err == ENOENT || ro_err == EACCES)
                return std::nullopt;
            err = ro_err;
        }
        if (err != not_a_regular_file)
            throw_open_failure("cannot open the change log of the session store", path_, err);
        errno_ = err;
        return path_ + " is " + describe_errno(err) +
               "; sessions are listed from the history files, and nothing can be saved until "
               "it is moved away";
    }

    /// The descriptor (-1 when the log could not be opened at all).
    int fd() const noexcept { return fd_.get(); }
    /// Whether there is a descriptor (writable or not).
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    /// Why the log could not be opened for writing (an errno, or not_a_regular_file);
    /// 0 when it could.
    int open_errno() const noexcept { return errno_; }
    /// `<root>/changes.log`, for messages.
    const std::string& path() const noexcept { return path_; }

    /// Throws storage_error, naming the path, unless changes can be recorded here.
    void require_writable(Ops& ops) const {
        if (errno_ == not_a_regular_file)
            throw_open_failure("the session store cannot be written", path_, errno_);
        if (!fd_ || (ops.get_fl(fd_.get()) & O_ACCMODE) == O_RDONLY)
            throw storage_error("the session store is read-only (cannot write changes.log)", path_,
                                errno_ ? errno_ : EACCES);
    }

    /// The log's size and inode once every change in progress has finished: LOCK_EX
    /// (waited for), fstat, unlock. Returns false (errno set) when fstat fails, or when
    /// there is no descriptor.
    bool snapshot(Ops& ops, struct stat& st) const {
        if (!fd_)
            return false;
        ops.flock(fd_.get(), LOCK_EX); // waits for changes in progress to finish
        const int r = ops.fstat(fd_.get(), &st);
        ops.flock(fd_.get(), LOCK_UN);
        return r == 0;
    }

    /// LOCK_EX without waiting: true when no change is in flight now (and none can
    /// start until unlock()). False when there is no descriptor or the lock is held.
    bool try_exclusive(Ops& ops) const {
        return fd_ && ops.flock(fd_.get(), LOCK_EX | LOCK_NB) == 0;
    }

    /// Ends a lock taken with try_exclusive().
    void unlock(Ops& ops) const noexcept { ops.flock(fd_.get(), LOCK_UN); }

private:
    unique_fd fd_;
    int errno_ = 0;
    std::string path_;
};

/// Holds a lock on changes.log and appends "\n<channel>/<id>\n" to it. Changes to
/// history files happen under it; a reader takes LOCK_EX (change_log::snapshot) to
/// see only finished ones. The leading newline ends any line torn by an earlier failed
/// append, so a torn line can never swallow this one (empty lines are ignored).
template <file_ops Ops>
class change_lock {
public:
    enum mode {
        shared,    ///< LOCK_SH: a change to one session (appends run side by side)
        exclusive, ///< LOCK_EX: no creation, append or other change is in flight
        held,      ///< the caller already holds LOCK_EX (and releases it)
    };

    /// Takes the lock (waiting for it) and records the change. Throws storage_error,
    /// naming changes.log, when the log is read-only or not a regular file, or the lock
    /// or the write fails; nothing is then held.
    change_lock(Ops& ops, const change_log<Ops>& log, const std::string& channel,
                const session_id& id, mode m = shared)
        : ops_(ops), fd_(log.fd()), locked_(false) {
        if (log.open_errno() == not_a_regular_file)
            throw_open_failure("cannot record a change of session '" + id + "'", log.path(),
                               log.open_errno());
        if (log.open_errno()) // opened read-only: say why, not EBADF from write()
            throw storage_error("cannot record a change of session '" + id +
                                    "': the session store is read-only (cannot write "
                                    "changes.log)",
                                log.path(), log.open_errno());
        if (fd_ < 0 || (m != held && ops_.flock(fd_, m == shared ? LOCK_SH : LOCK_EX) < 0))
            throw_errno("cannot lock changes.log", log.path());
        locked_ = m != held;
        record("\n" + channel + "/" + id + "\n", id, log);
    }

    /// Takes LOCK_EX (waiting for it) for a batch of changes, and records one line for
    /// each of `ids` (none empty), all in one write. Throws as the constructor for one
    /// session does (the message names the first id); nothing is then held.
    change_lock(Ops& ops, const change_log<Ops>& log, const std::string& channel,
                std::span<const session_id> ids)
        : ops_(ops), fd_(log.fd()), locked_(false) {
        const session_id& first = ids.front();
        if (log.open_errno() == not_a_regular_file)
            throw_open_failure("cannot record a change of session '" + first + "'", log.path(),
                               log.open_errno());
        if (log.open_errno())
            throw storage_error("cannot record a change of session '" + first +
                                    "': the session store is read-only (cannot write "
                                    "changes.log)",
                                log.path(), log.open_errno());
        if (fd_ < 0 || ops_.flock(fd_, LOCK_EX) < 0)
            throw_errno("cannot lock changes.log", log.path());
        locked_ = true;
        std::string lines;
        for (const auto& id : ids)
            lines += "\n" + channel + "/" + id + "\n";
        record(lines, first, log);
    }

    ~change_lock() { release(); }
    change_lock(const change_lock&) = delete;
    change_lock& operator=(const change_lock&) = delete;

    /// Ends the lock now (when this object took it).
    void release() noexcept {
        if (locked_)
            ops_.flock(fd_, LOCK_UN);
        locked_ = false;
    }

private:
    // Appends `line` (all of it, retrying a partial write); on failure releases the lock
    // and throws naming `id`.
    void record(const std::string& line, const session_id& id, const change_log<Ops>& log) {
        std::size_t done = 0;
        while (done < line.size()) {
            const ssize_t n = ops_.write(fd_, line.data() + done, line.size() - done);
            if (n > 0) {
                done += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                const int e = n < 0 ? errno : EIO;
                release();
                throw_errno("cannot record a change of session '" + id + "'", log.path(), e);
            }
        }
    }

    Ops& ops_;
    int fd_;
    bool locked_;
};

} // namespace dexter::sessions::detail
