// SPDX-License-Identifier: BSL-1.0
// A session's files as the file store opens them, and its writer's lease.
//
// Opening <channel>/<id>/ and its history.jsonl (never through a symbolic link, only a
// regular file, only ENOENT read as "no such session"), the one-writer lease (flock
// LOCK_EX | LOCK_NB on the history, session_busy naming the holder found in
// /proc/locks), the check that a leased history is still the session's, and the writer's
// half of the write protocol (docs/FORMAT.md, "Write protocol", steps 2 and 3: the
// change recorded in changes.log, the record appended in one write, fdatasync). What is
// written, and when, is jsonl_store.hpp's.
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// Where the sessions of one channel are, for one call: made by the store where it is
/// used (it refers to the store's members).
template <file_ops Ops>
struct session_place {
    Ops& ops;
    int channel_fd;                    ///< the channel directory, open
    const std::filesystem::path& root; ///< the store's root, as session_not_found names it
    std::string channel_dir;           ///< the channel directory's path, for messages

    std::string session_path(const session_id& id) const { return channel_dir + "/" + id; }
    std::string history_path(const session_id& id) const {
        return session_path(id) + "/history.jsonl";
    }
};

/// A session open for writing: its directory, its history (holding the lease), and
/// what the writer knows of it.
struct session_writer {
    unique_fd dir;
    unique_fd file; ///< holds flock(LOCK_EX) while open
    std::uint64_t size = 0;
    std::uint64_t lines = 0;
    session_meta meta;
    /// A write failed in a way that left the file in doubt (a failed fdatasync, or a
    /// partial record that could not be cut off): no more appends until reopened.
    bool poisoned = false;
    std::vector<diagnostic> repairs; ///< what open() repaired, for the next load()
};

/// Opens the directory of session `id`. Throws session_not_found (ENOENT only),
/// storage_error naming the path (a symbolic link or not a directory: refused, never
/// followed; any other failure).
template <file_ops Ops>
unique_fd open_session_dir(const session_place<Ops>& p, const session_id& id) {
    unique_fd dir(p.ops.openat(p.channel_fd, id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!dir) {
        if (errno == ENOENT)
            throw session_not_found(id, p.root.string());
        if (errno == ELOOP || errno == ENOTDIR)
            throw storage_error("session '" + id +
                                    "' is not a directory (a symbolic link?); "
                                    "refusing to follow it",
                                p.session_path(id), errno);
        throw_errno("cannot open session '" + id + "'", p.session_path(id));
    }
    return dir;
}

/// Opens history.jsonl of session `id` in `dir` with `flags` (a regular file only, no
/// symbolic link). Throws session_not_found (ENOENT only), storage_error starting with
/// `what` and naming the history (any other failure, "not a regular file" included).
/// With `opened`, the fstat of the opened file is stored there.
template <file_ops Ops>
unique_fd open_history(const session_place<Ops>& p, int dir, const session_id& id, int flags,
                       const std::string& what, struct stat* opened = nullptr) {
    int err = 0;
    unique_fd file = open_regular(p.ops, dir, "history.jsonl", flags, 0, err, opened);
    if (!file) {
        if (err == ENOENT)
            throw session_not_found(id, p.root.string());
        throw_open_failure(what, p.history_path(id), err);
    }
    return file;
}

/// flock(LOCK_EX | LOCK_NB) on the open history `fd` of session `id`: the one-writer
/// lease. Throws session_busy when another open file description holds it (naming the
/// holder's pid when /proc/locks tells it, and whether it is this process), and
/// storage_error naming the history for any other failure.
template <file_ops Ops>
void take_lease(const session_place<Ops>& p, const session_id& id, int fd) {
    if (p.ops.flock(fd, LOCK_EX | LOCK_NB) == 0)
        return;
    if (errno != EWOULDBLOCK)
        throw_errno("cannot lock session '" + id + "'", p.history_path(id));
    struct stat st {};
    std::optional<long> holder;
    if (p.ops.fstat(fd, &st) == 0)
        holder = flock_holder(p.ops, st.st_dev, st.st_ino);
    throw session_busy(id, p.history_path(id), holder, holder && *holder == p.ops.getpid());
}

/// After the lease is taken on `fd`: the session must still be there, with `fd` as its
/// history. Between the open and the lease, another process may have deleted the session
/// (or cleaned it up as unborn); a lease on an unlinked file would acknowledge exchanges
/// that no one can ever read. Throws session_not_found (gone, or made anew meanwhile),
/// storage_error naming the history (it cannot be examined).
/// With `known`, the stat of `fd` taken since it was opened (its inode cannot change) is
/// used instead of an fstat; with `now_out`, the stat of the linked history, taken under
/// the lease, is stored there (the same file as `fd` when this returns).
template <file_ops Ops>
void require_still_linked(const session_place<Ops>& p, const session_id& id, int fd,
                          const struct stat* known = nullptr, struct stat* now_out = nullptr) {
    struct stat held_local {
    }, now_local{};
    struct stat& now = now_out ? *now_out : now_local;
    if (known)
        held_local = *known;
    else if (p.ops.fstat(fd, &held_local) < 0)
        throw_errno("cannot examine", p.history_path(id));
    const struct stat& held = held_local;
    const std::string rel = id + "/history.jsonl";
    if (p.ops.fstatat(p.channel_fd, rel.c_str(), &now, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            throw session_not_found(id, p.root.string());
        throw_errno("cannot examine", p.history_path(id));
    }
    if (held.st_ino != now.st_ino || held.st_dev != now.st_dev)
        throw session_not_found(id, p.root.string()); // removed (and made anew) meanwhile
}

/// Opens session `id`'s directory and history (with `flags`), takes the lease and checks
/// that the history is still the session's: open_session_dir, open_history, take_lease,
/// require_still_linked, in this order, throwing as they do. `what` starts the message
/// of a failure to open the history. With `leased`, the history's stat taken under the
/// lease (its size and modification time as of the lease) is stored there; the
/// regular-file check and the inode of the open file come from one fstat at the open.
template <file_ops Ops>
session_writer lease_session(const session_place<Ops>& p, const session_id& id, int flags,
                             const std::string& what, struct stat* leased = nullptr) {
    session_writer w;
    w.dir = open_session_dir(p, id);
    struct stat opened {};
    w.file = open_history(p, w.dir.get(), id, flags, what, &opened);
    take_lease(p, id, w.file.get());
    require_still_linked(p, id, w.file.get(), &opened, leased);
    return w;
}

/// Appends `record` (one whole line) to the history `w` holds: under a shared lock on
/// changes.log, the change recorded there and the record written in one write() at
/// w.size (a failed write is cut back off); then, with `sync`, fdatasync. On success w.size
/// and w.lines count the record. Throws storage_error naming the history, with "cannot
/// save <what> of session '<id>'" (the write failed; w is poisoned when the partial bytes
/// could not be cut off) or "cannot sync ..." (the record is cut back off when possible,
/// never acknowledged, and w is poisoned: the kernel may have dropped the dirty pages).
template <file_ops Ops>
void append_record(const session_place<Ops>& p, const change_log<Ops>& log,
                   const std::string& channel, const session_id& id, session_writer& w,
                   const std::string& record, bool sync, const std::string& what) {
    {
        change_lock<Ops> lock(p.ops, log, channel, id);
        bool rollback_failed = false;
        if (const int e = append_all(p.ops, w.file.get(), record, static_cast<off_t>(w.size),
                                     &rollback_failed)) {
            if (rollback_failed) {
                // A fragment may stay at the end of the file: the next record would be
                // glued onto it. Only a reopen, which moves it to quarantine, may go on.
                w.poisoned = true;
                throw storage_error("cannot save " + what + " of session '" + id +
                                        "', and its partial bytes could not be cut off "
                                        "again; reopen the session (which repairs it) "
                                        "before saving more",
                                    p.history_path(id), e);
            }
            throw_errno("cannot save " + what + " of session '" + id + "'", p.history_path(id), e);
        }
    }
    if (sync && p.ops.fdatasync(w.file.get()) < 0) {
        const int e = errno;
        // Not acknowledged, so not kept: cut the record back off (the kernel may have
        // dropped the dirty pages, so this handle never retries a sync: it is poisoned
        // until the session is opened again).
        w.poisoned = true;
        try {
            change_lock<Ops> lock(p.ops, log, channel,
                                  id); // readers must learn that the file shrank
            p.ops.ftruncate(w.file.get(), static_cast<off_t>(w.size));
        } catch (const storage_error&) {
            // Cannot even record the change: the record stays, never acknowledged.
        }
        throw_errno("cannot sync " + what + " of session '" + id + "' to disk; it is not saved",
                    p.history_path(id), e);
    }
    w.size += record.size();
    ++w.lines;
}

} // namespace dexter::sessions::detail
