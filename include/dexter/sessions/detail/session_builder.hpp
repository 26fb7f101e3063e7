// SPDX-License-Identifier: BSL-1.0
// Building a whole session aside, for the file store's create_whole().
//
// The session is written into `<channel>/.new-<id>-<pid>-<n>/history.jsonl` (0600,
// created exclusively, held with flock(LOCK_EX) while it is built), synced, and then
// renamed to `<channel>/<id>` with RENAME_NOREPLACE: no reader ever sees a part of it, a
// session made meanwhile under the same id is never replaced, and a crash leaves only a
// dot directory that no reader takes for a session. Such leftovers are removed by a
// later store (remove_build_leftover, called where the channel directory is listed) once
// no builder holds their history.
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/detail/session_lease.hpp>
#include <dexter/sessions/error.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace dexter::sessions::detail {

/// Buffered writes of a builder are flushed once they reach this size: the memory a
/// create_whole() takes does not follow the size of the session. (On Linux 6.18/ext4,
/// appending a large file in writes of 1 MiB took at times 3 to 4 times the CPU of writes
/// of 128 KiB, never less.)
inline constexpr std::size_t builder_flush_bytes = 128u * 1024;

/// A run of records handed to add_trusted_run() that is at least this long is written
/// straight from the caller's bytes, not copied into the builder's buffer first.
inline constexpr std::size_t builder_direct_bytes = 16u * 1024;

/// The prefix of the directories sessions are built in.
inline constexpr std::string_view building_prefix = ".new-";

/// What a build needs of its store, for one call.
template <file_ops Ops>
struct build_context {
    const session_place<Ops>& place;
    const change_log<Ops>& log;
    const std::string& channel;
    std::size_t max_record_bytes;
    bool sync; ///< fdatasync the history before the rename
};

/// The session_sink of one create_whole(): writes the history of a session being built,
/// in a directory of its own. Not for use beyond the call.
template <file_ops Ops>
class session_builder final : public session_sink {
public:
    /// Makes the build directory and its history (holding its lock), and writes the
    /// header of `m` into the buffer. Throws invalid_input (the header), storage_error;
    /// on throw nothing of it remains.
    session_builder(const build_context<Ops>& c, const session_meta& m) : c_(c), id_(m.id) {
        const bool utf8 = encode_header(buffer_, m);
        check_record(buffer_, utf8, c_.max_record_bytes, "the session header of '" + id_ + "'");
        name_ = std::string(building_prefix) + id_ + "-" + std::to_string(ops().getpid()) + "-" +
                std::to_string(next_serial());
        if (ops().mkdirat(c_.place.channel_fd, name_.c_str(), 0700) < 0)
            throw_errno("cannot create session '" + id_ + "'", path());
        made_ = true;
        try {
            dir_.reset(ops().openat(c_.place.channel_fd, name_.c_str(),
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            if (!dir_)
                throw_errno("cannot create session '" + id_ + "'", path());
            file_.reset(ops().openat(dir_.get(), "history.jsonl",
                                     O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
            if (!file_)
                throw_errno("cannot create session '" + id_ + "'", path() + "/history.jsonl");
            if (ops().flock(file_.get(), LOCK_EX) < 0)
                throw_errno("cannot lock new session '" + id_ + "'", path() + "/history.jsonl");
            // A store that cleans leftovers may have taken the file for one before the lock
            // was held here: it must still be the build's history.
            struct stat held {
            }, now{};
            if (ops().fstat(file_.get(), &held) < 0 ||
                ops().fstatat(dir_.get(), "history.jsonl", &now, AT_SYMLINK_NOFOLLOW) < 0)
                throw_errno("cannot examine new session '" + id_ + "'", path() + "/history.jsonl");
            if (held.st_ino != now.st_ino || held.st_dev != now.st_dev)
                throw storage_error("new session '" + id_ +
                                        "' was removed while it was being made; nothing was saved",
                                    path());
        } catch (...) {
            discard();
            throw;
        }
    }
    session_builder(const session_builder&) = delete;
    session_builder& operator=(const session_builder&) = delete;
    ~session_builder() {
        if (made_)
            discard();
    }

    /// Adds exchange `ex`: `record` as it is when it is ex's line as this library writes
    /// it, else ex encoded. Throws invalid_input (a seq that does not follow the last one
    /// added, a record over the limit, text that is not UTF-8), storage_error.
    void add(const exchange& ex, std::string_view record) override {
        if (ex.seq <= last_seq_)
            throw invalid_input("exchange seq " + std::to_string(ex.seq) + " does not follow " +
                                std::to_string(last_seq_) + "; nothing was saved");
        const std::size_t start = buffer_.size();
        bool utf8 = true;
        if (!record.empty() && record.find('\n') == std::string_view::npos &&
            canonical_exchange_seq(record) == ex.seq) {
            utf8 = is_valid_utf8(record);
            buffer_.append(record);
            buffer_ += '\n';
        } else {
            utf8 = encode_exchange(buffer_, ex);
        }
        checked(start, utf8, "exchange " + std::to_string(ex.seq) + " of session '" + id_ + "'");
        last_seq_ = ex.seq;
    }

    /// Adds exchange `seq` as `line`, a record this library wrote (canonical_exchange_seq()
    /// of it is `seq`, it holds no newline) read from one of its histories, copied as it is
    /// without checking its UTF-8 again. Throws invalid_input (a seq that does not follow
    /// the last one added, a record over the limit), storage_error.
    void add_trusted(std::uint64_t seq, std::string_view line) {
        if (seq <= last_seq_)
            throw invalid_input("exchange seq " + std::to_string(seq) + " does not follow " +
                                std::to_string(last_seq_) + "; nothing was saved");
        const std::size_t start = buffer_.size();
        buffer_.append(line);
        buffer_ += '\n';
        checked(start, true, "exchange " + std::to_string(seq) + " of session '" + id_ + "'");
        last_seq_ = seq;
    }

    /// Adds exchanges `first`..`last` as `lines`: whole records this library wrote, read
    /// from one of its histories, each ending in a newline, within the record limit with
    /// it, their seqs growing from `first` to `last`. They are written as they are,
    /// without being checked again; a run of builder_direct_bytes or more goes straight
    /// from `lines` to the file, in one write. Throws invalid_input (`first` does not
    /// follow the last seq added), storage_error.
    void add_trusted_run(std::string_view lines, std::uint64_t first, std::uint64_t last) {
        if (first <= last_seq_)
            throw invalid_input("exchange seq " + std::to_string(first) + " does not follow " +
                                std::to_string(last_seq_) + "; nothing was saved");
        if (lines.size() < builder_direct_bytes) {
            buffer_.append(lines);
            if (buffer_.size() >= builder_flush_bytes)
                flush();
        } else {
            flush();
            write_out(lines);
        }
        last_seq_ = last;
    }

    /// The size of the history written so far (buffered bytes included).
    std::uint64_t size() const noexcept { return written_ + buffer_.size(); }

    /// Adds a change of title, extra and pinned. Throws as add() does.
    void update(const session_meta& m) override {
        const std::size_t start = buffer_.size();
        const bool utf8 = encode_meta(buffer_, m);
        checked(start, utf8, "the new metadata of session '" + id_ + "'");
    }

    /// Writes what is left, syncs the history and the build directory, and renames the
    /// build directory to `<channel>/<id>` (recording the change in changes.log). Throws
    /// session_exists (the id was taken meanwhile), storage_error; on throw nothing of
    /// the session remains. A failure to sync the channel directory afterwards is
    /// returned (as an errno, 0 when none): the session exists by then. With `written`,
    /// the history's stat as it is complete, taken before the rename (so that nothing
    /// written to the session since is mistaken for part of it), is stored there; its
    /// st_ino is 0 when fstat failed.
    int commit(struct stat* written = nullptr) {
        flush();
        if ((c_.sync && ops().fdatasync(file_.get()) < 0) || ops().fsync(dir_.get()) < 0)
            throw_errno("cannot sync new session '" + id_ + "'", path() + "/history.jsonl");
        if (written && ops().fstat(file_.get(), written) < 0)
            written->st_ino = 0;
        {
            change_lock<Ops> lock(ops(), c_.log, c_.channel, id_);
            if (ops().rename_noreplace(c_.place.channel_fd, name_.c_str(), c_.place.channel_fd,
                                       id_.c_str()) < 0) {
                if (errno == EEXIST)
                    throw session_exists(id_, "session '" + id_ +
                                                  "' was created by another writer while it "
                                                  "was being written; nothing was saved");
                throw_errno("cannot create session '" + id_ + "'", c_.place.session_path(id_));
            }
        }
        made_ = false;
        return ops().fsync(c_.place.channel_fd) < 0 ? errno : 0;
    }

private:
    Ops& ops() const { return c_.place.ops; }
    std::string path() const { return c_.place.channel_dir + "/" + name_; }

    // The record appended to the buffer since `start` passes check_record; then the
    // buffer is written out once it is large.
    void checked(std::size_t start, bool utf8, const std::string& what) {
        try {
            check_record(std::string_view(buffer_).substr(start), utf8, c_.max_record_bytes, what);
        } catch (...) {
            buffer_.resize(start);
            throw;
        }
        if (buffer_.size() >= builder_flush_bytes)
            flush();
    }

    void flush() {
        if (buffer_.empty())
            return;
        write_out(buffer_);
        buffer_.clear();
    }

    // Appends `bytes` to the history, after what is written so far.
    void write_out(std::string_view bytes) {
        if (const int e = append_all(ops(), file_.get(), bytes, static_cast<off_t>(written_)))
            throw_errno("cannot write new session '" + id_ + "'", path() + "/history.jsonl", e);
        written_ += bytes.size();
    }

    // Removes the build directory (best effort: a leftover is removed by a later store).
    void discard() noexcept {
        made_ = false;
        file_.reset(); // the lock goes with it
        dir_.reset();
        remove_tree(ops(), c_.place.channel_fd, name_);
    }

    const build_context<Ops>& c_;
    session_id id_;
    std::string name_;
    bool made_ = false;
    unique_fd dir_, file_;
    std::string buffer_;
    std::uint64_t written_ = 0;
    std::uint64_t last_seq_ = 0;
};

/// Whether `name` (in a channel directory) is a session being built, or left by a build
/// that did not finish.
inline bool is_build_directory(std::string_view name) noexcept {
    return name.starts_with(building_prefix);
}

/// Removes the build directory `name` under `channel_fd` when no builder is at work in
/// it: its history's lock can be taken (a builder holds it until it is done), or it has
/// no history and the process that made it is gone. Best effort, never throws.
template <file_ops Ops>
void remove_build_leftover(Ops& ops, int channel_fd, const std::string& name) {
    unique_fd dir(ops.openat(channel_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!dir)
        return;
    unique_fd file(ops.openat(dir.get(), "history.jsonl", O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    if (file) {
        if (ops.flock(file.get(), LOCK_EX | LOCK_NB) < 0)
            return; // a builder holds it
    } else if (errno == ENOENT) {
        // Made a moment ago, its history not yet created? Only if its maker is alive.
        const std::size_t pid_at = building_prefix.size() + session_id_length + 1;
        const long pid = name.size() > pid_at ? std::strtol(name.c_str() + pid_at, nullptr, 10) : 0;
        if (pid > 0 && (ops.kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH))
            return;
    } else if (errno != ELOOP) {
        return; // cannot tell: left for a later attempt
    }
    dir.reset();
    remove_tree(ops, channel_fd, name);
}

/// Creates session m.id holding what `fill` hands to its sink, all or nothing
/// (storage.hpp, creates_whole_sessions). Returns false, without calling fill, when
/// `<channel>/<id>` exists. Throws what fill and the sink throw, session_exists,
/// invalid_input, storage_error; on throw nothing of the session remains. `on_unsynced`
/// is called with the errno when the channel directory could not be synced after the
/// session was made (it then exists, and may not survive a power loss).
template <file_ops Ops, class OnUnsynced>
bool build_whole_session(const build_context<Ops>& c, const session_meta& m,
                         const session_filler& fill, OnUnsynced&& on_unsynced) {
    struct stat st {};
    if (c.place.ops.fstatat(c.place.channel_fd, m.id.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        return false;
    if (errno != ENOENT) // only "no such file" means the id is free
        throw_errno("cannot examine session '" + m.id + "'", c.place.session_path(m.id));
    session_builder<Ops> b(c, m);
    fill(b);
    if (const int e = b.commit())
        on_unsynced(e);
    return true;
}

} // namespace dexter::sessions::detail
