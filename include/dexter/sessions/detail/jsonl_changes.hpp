// SPDX-License-Identifier: BSL-1.0
// basic_jsonl_store's changes of whole sessions, declared (with what they throw and
// guarantee) in jsonl_store.hpp: deleting a session, creating one whole and forking
// one (built aside and renamed into place: detail/session_builder.hpp,
// detail/session_fork.hpp), and moving sessions to and from the trash, listing and
// purging it (where the trash is and how its entries are named: detail/trash.hpp).
// Included at the end of jsonl_store.hpp.
#pragma once

#include <dexter/sessions/jsonl_store.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dexter::sessions {

template <detail::file_ops Ops>
void basic_jsonl_store<Ops>::remove(const session_id& id) {
    validate_session_id(id);
    require_channel();
    // LOCK_EX on changes.log for the whole deletion: a creation holds LOCK_SH from
    // its mkdir until it holds its lease, so a session whose lease is free now is not
    // one being born (its lease would be taken a moment later, on a deleted file).
    change_lock exclusive(ops_, log_, channel_, id, change_lock::exclusive);
    writer own; // the lock taken here, when this object does not hold the session
    if (writers_.find(id) == writers_.end()) {
        // Only "no such file" means there is nothing to delete: a session that could
        // not be opened for its lock (EACCES, EMFILE, ...) is never deleted unlocked,
        // because its writer may be about to acknowledge an exchange.
        own = detail::lease_session(place(), id, O_RDONLY,
                                    "cannot delete session '" + id +
                                        "': cannot open it to take its lock");
    }
    const std::string trash = ".deleted-" + id + "-" + std::to_string(ops_.getpid()) + "-" +
                              std::to_string(detail::next_serial());
    if (ops_.renameat(channel_fd_.get(), id.c_str(), channel_fd_.get(), trash.c_str()) < 0)
        detail::throw_errno("cannot delete session '" + id + "'", session_path(id));
    exclusive.release();
    // Deleted. What follows is tidying: a failure is noted, never thrown (the caller
    // must not think the session is still there), and a later store finishes it.
    if (ops_.fsync(channel_fd_.get()) < 0)
        note("session '" + id + "' was deleted, but " + channel_path() + " could not be synced (" +
             std::strerror(errno) + "): after a power loss it may come back");
    writers_.erase(id); // only now: if the rename failed, the session stays open here
    own = writer{};
    index_.forget(channel_, id);
    try {
        refresh_index(true);
    } catch (const storage_error& e) {
        note(std::string("after deleting session '") + id + "': " + e.what());
    }
    detail::remove_tree(ops_, channel_fd_.get(), trash);
}

// --- whole sessions ---------------------------------------------------------------

template <detail::file_ops Ops>
bool basic_jsonl_store<Ops>::create_whole(const session_meta& m, const session_filler& fill) {
    validate_session_id(m.id);
    require_channel();
    const auto where = place();
    const detail::build_context<Ops> c{where, log_, channel_, options_.max_record_bytes,
                                       options_.sync == durability::full};
    const bool made = detail::build_whole_session(c, m, fill, [&](int e) {
        note("session '" + m.id + "' was created, but " + channel_path() +
             " could not be synced (" + std::strerror(e) + "): after a power loss it may be gone");
    });
    if (made)
        refresh_after_change("creating session '" + m.id + "'");
    return made;
}

template <detail::file_ops Ops>
bool basic_jsonl_store<Ops>::fork(const session_id& source, std::uint64_t through,
                                  session_meta& fork) {
    validate_session_id(source);
    validate_session_id(fork.id);
    require_channel();
    detail::unique_fd dir = detail::open_session_dir(place(), source);
    detail::unique_fd file = detail::open_history(place(), dir.get(), source, O_RDONLY,
                                                  "cannot open session '" + source + "'");
    const auto where = place();
    const detail::build_context<Ops> c{where, log_, channel_, options_.max_record_bytes,
                                       options_.sync == durability::full};
    const auto made = detail::build_fork(
        c, file.get(), history_path(source), through, fork,
        [&](std::uint64_t version) { throw newer_format(source, version); },
        [&](int e) {
            note("session '" + fork.id + "' was created, but " + channel_path() +
                 " could not be synced (" + std::strerror(e) +
                 "): after a power loss it may be gone");
        });
    if (!made)
        return false;
    if (made->written.st_ino != 0)
        index_.correct(channel_, fork.id, made->state, made->written);
    refresh_after_change("forking session '" + source + "'");
    return true;
}

// --- the trash ----------------------------------------------------------------------

template <detail::file_ops Ops>
std::vector<trash_outcome>
basic_jsonl_store<Ops>::trash(std::span<const session_id> ids, time_point deleted_at,
                              const std::optional<time_point>& stale_before) {
    std::vector<trash_outcome> out(ids.size());
    auto bin = trash_bin();
    bool moved = false;
    if (stale_before) {
        // Each session is judged from its index entry when the entry is current for the
        // history (index_cache::current_meta()): the index must be in memory for that,
        // also after a list() that read it without keeping it. Without it, each history
        // is read instead, which is right but slower.
        try {
            refresh_index(false);
        } catch (const storage_error& e) {
            note(std::string("before moving sessions to the trash: ") + e.what());
        }
    }
    // LOCK_EX on changes.log, as remove() takes it, but once for a chunk of sessions,
    // with the chunk's change lines in one write. remove()'s reasoning holds for each
    // session of the chunk: a creation holds LOCK_SH from its mkdir until it holds its
    // lease, so while the chunk holds LOCK_EX none is in flight, and a lease found
    // free is not that of a session being born. Readers snapshot changes.log under
    // LOCK_EX, so they see the chunk's lines only once its renames are done; a line
    // for a session that is then kept or fails only makes readers look at it again.
    // A chunk is short, so that saves (LOCK_SH) wait at most for one chunk.
    constexpr std::size_t chunk = 256;
    for (std::size_t begin = 0; begin < ids.size(); begin += chunk) {
        const std::size_t end = std::min(ids.size(), begin + chunk);
        std::vector<std::size_t> valid;
        std::vector<session_id> lines;
        for (std::size_t i = begin; i < end; ++i) {
            out[i].id = ids[i];
            try {
                validate_session_id(ids[i]);
                require_channel();
                valid.push_back(i);
                lines.push_back(ids[i]);
            } catch (...) {
                out[i].error = std::current_exception();
            }
        }
        if (valid.empty())
            continue;
        std::optional<change_lock> exclusive;
        try {
            exclusive.emplace(ops_, log_, channel_, std::span<const session_id>(lines));
        } catch (...) {
            for (const auto i : valid)
                out[i].error = std::current_exception();
            continue;
        }
        for (const auto i : valid) {
            trash_outcome& o = out[i];
            try {
                o.kept_because = trash_one(bin, ids[i], deleted_at, stale_before);
                o.moved = o.kept_because.empty();
                moved = moved || o.moved;
            } catch (...) {
                o.error = std::current_exception();
            }
        }
    }
    if (!moved)
        return out;
    if (ops_.fsync(channel_fd_.get()) < 0 || ops_.fsync(bin.fd(false)) < 0)
        note("sessions were moved to the trash, but " + channel_path() + " or " + bin.path() +
             " could not be synced (" + std::strerror(errno) +
             "): after a power loss some may be live again");
    refresh_after_change("moving sessions to the trash");
    return out;
}

template <detail::file_ops Ops>
std::string basic_jsonl_store<Ops>::trash_one(detail::channel_trash<Ops>& bin, const session_id& id,
                                              time_point deleted_at,
                                              const std::optional<time_point>& stale_before) {
    writer own;
    auto held = writers_.find(id);
    struct stat leased {}; // the history as of the lease (size, mtime, inode)
    bool have_stat = false;
    if (held == writers_.end()) {
        own = detail::lease_session(place(), id, O_RDONLY,
                                    "cannot move session '" + id +
                                        "' to the trash: cannot open it to take its lock",
                                    &leased);
        have_stat = true;
    }
    const int fd = held != writers_.end() ? held->second.file.get() : own.file.get();
    if (stale_before) {
        // Judged under the lease: from the index entry when it is current for the file
        // as it is now (nothing saved since it was read), else from the history (only
        // what follows the entry is read, as read_state() does).
        if (!have_stat && ops_.fstat(fd, &leased) < 0)
            detail::throw_errno("cannot examine", history_path(id));
        session_meta from_file;
        const session_meta* meta = index_.current_meta(channel_, id, leased);
        if (!meta) {
            std::vector<diagnostic> ignored;
            from_file = read_state(id, fd, ignored).meta;
            meta = &from_file;
        }
        if (meta->pinned)
            return "it is pinned";
        if (!(meta->updated_at < *stale_before))
            return "it was saved into since it was listed";
    }
    const int to = bin.fd(true);
    std::int64_t ms = detail::trash_millis(deleted_at);
    for (int tries = 0;; ++tries, ++ms) {
        const std::string name = detail::trash_entry_name(id, ms);
        if (ops_.rename_noreplace(channel_fd_.get(), id.c_str(), to, name.c_str()) == 0)
            break;
        if (errno != EEXIST || tries == 1000)
            detail::throw_errno("cannot move session '" + id + "' to the trash", session_path(id));
    }
    writers_.erase(id); // only now: if the rename failed, the session stays open here
    own = writer{};
    index_.forget(channel_, id);
    return {};
}

template <detail::file_ops Ops>
session_meta basic_jsonl_store<Ops>::restore(const session_id& id) {
    validate_session_id(id);
    require_channel();
    auto bin = trash_bin();
    std::optional<detail::trash_entry> newest;
    for (auto& e : bin.entries())
        if (e.id == id && (!newest || e.ms > newest->ms))
            newest = std::move(e);
    if (!newest)
        throw session_not_found(id, bin.path());
    const std::string name = detail::trash_entry_name(id, newest->ms);
    {
        change_lock lock(ops_, log_, channel_, id);
        if (ops_.rename_noreplace(bin.fd(false), name.c_str(), channel_fd_.get(), id.c_str()) < 0) {
            if (errno == EEXIST)
                throw session_exists(id, "cannot restore session '" + id +
                                             "': a session with that id exists; nothing "
                                             "was moved");
            detail::throw_errno("cannot restore session '" + id + "'", bin.path_of(name));
        }
    }
    if (ops_.fsync(channel_fd_.get()) < 0 || ops_.fsync(bin.fd(false)) < 0)
        note("session '" + id + "' was restored, but " + channel_path() + " or " + bin.path() +
             " could not be synced (" + std::strerror(errno) +
             "): after a power loss it may be in the trash again");
    refresh_after_change("restoring session '" + id + "'");
    if (auto m = find(id))
        return *m;
    throw session_not_found(id, root_.string()); // removed again meanwhile
}

template <detail::file_ops Ops>
std::vector<trashed_session> basic_jsonl_store<Ops>::list_trash() {
    auto bin = trash_bin();
    std::vector<trashed_session> out;
    for (const auto& e : bin.entries()) {
        const std::string name = detail::trash_entry_name(e.id, e.ms);
        try {
            auto st = detail::read_trashed(ops_, bin.fd(false), name, e.id, bin.path_of(name),
                                           options_.max_record_bytes);
            if (st.newer_version) {
                note("trashed session '" + e.id + "' (" + bin.path_of(name) +
                     ") is in a newer history format; it is left out of the trash listing");
                continue;
            }
            out.push_back({std::move(st.meta), e.deleted_at()});
        } catch (const storage_error& err) {
            note("trashed session '" + e.id + "' cannot be read (" + err.what() +
                 "); it is left out of the trash listing");
        }
    }
    return out;
}

template <detail::file_ops Ops>
void basic_jsonl_store<Ops>::purge(const session_id& id, time_point deleted_at) {
    validate_session_id(id);
    auto bin = trash_bin();
    const int dir = bin.fd(false);
    if (dir < 0)
        throw session_not_found(id, bin.path());
    const std::string name = detail::trash_entry_name(id, detail::trash_millis(deleted_at));
    const std::string purging = ".purging-" + name + "-" + std::to_string(ops_.getpid()) + "-" +
                                std::to_string(detail::next_serial());
    if (ops_.renameat(dir, name.c_str(), dir, purging.c_str()) < 0) {
        if (errno == ENOENT)
            throw session_not_found(id, bin.path());
        detail::throw_errno("cannot purge trashed session '" + id + "'", bin.path_of(name));
    }
    // Purged from here on: what follows is tidying, never thrown (a later list_trash()
    // removes what stays).
    ops_.fsync(dir);
    detail::remove_tree(ops_, dir, purging);
}

} // namespace dexter::sessions
