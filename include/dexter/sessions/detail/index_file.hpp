// SPDX-License-Identifier: BSL-1.0
// <root>/index.json on disk: the file work of the file store's listing cache.
//
// index_file owns reading index.json (only when it changed, with a size cap, checked to
// be a regular file), what happens to one that cannot be used (a damaged one is moved to
// quarantine under index.lock and reported, an unreadable one or one from a newer
// library is left as it is), index.lock, and writing the index back (temp file 0600,
// fsync, rename, fsync of the root, under index.lock). The index is a cache: a failure
// to write it is a note (reported once), never an error. What the index holds, and
// keeping it true to the history files, is index_cache.hpp's.
#pragma once

#include <dexter/sessions/detail/jsonl_index.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/quarantine.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// Adds a store-level note (for take_diagnostics()) unless the same one is already
/// waiting, so that a host that lists often and never takes them does not collect copies.
inline void note_once(std::vector<diagnostic>& notes, std::string what,
                      diagnostic_kind kind = diagnostic_kind::store_note) {
    for (const auto& n : notes)
        if (n.reason == what)
            return;
    notes.push_back({0, 0, std::move(what), kind});
}

/// What an index_file needs of its store, for one call (it refers to the store's
/// members, which may move between calls).
template <file_ops Ops>
struct index_file_context {
    Ops& ops;
    int root_fd;
    const std::filesystem::path& root;
    std::size_t max_index_bytes;
    std::vector<diagnostic>& notes; ///< where store-level notes go (note_once)
};

/// Whether two stats of one path show the same version of the file (inode, size and
/// modification time).
inline bool same_file_version(const struct stat& a, const struct stat& b) noexcept {
    return a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

/// index.json of one store object: what was last read or written, and whether it may
/// be written. Not thread-safe (neither is the store). Throws nothing but
/// std::bad_alloc: every failure is a note in the context's notes.
template <file_ops Ops>
class index_file {
public:
    using context = index_file_context<Ops>;

    /// Reads index.json into `data` if it changed since it was last read or written here
    /// (`data` is left alone otherwise). A file over max_index_bytes is never read whole;
    /// it, a file that is not a regular file, and a damaged one are moved to quarantine
    /// (under index.lock, unless another process replaced it meanwhile) and reported; a
    /// file that cannot be examined or read, or one of a newer format version, is left
    /// untouched, reported, and never written over by this object. Returns true when
    /// `data` was cleared (or holds nothing usable) and everything must be verified
    /// against the history files.
    bool load(const context& c, index_data& data) {
        struct stat st {};
        if (c.ops.fstatat(c.root_fd, "index.json", &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                return unusable(c, data,
                                "cannot be examined (" + std::string(std::strerror(errno)) + ")",
                                true);
            if (loaded_ && seen_.st_ino == 0)
                return false;
            data = {};
            loaded_ = true;
            seen_ = {};
            return true;
        }
        if (!S_ISREG(st.st_mode))
            return unusable(c, data, S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a file",
                            false, st);
        if (loaded_ && same_file_version(st, seen_))
            return false;
        if (static_cast<std::uint64_t>(st.st_size) > c.max_index_bytes)
            return unusable(c, data,
                            "is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                                std::to_string(c.max_index_bytes) + " for an index (damaged)",
                            false, st);
        int err = 0;
        unique_fd fd = open_regular(c.ops, c.root_fd, "index.json", O_RDONLY, 0, err);
        if (!fd)
            return err == ENOENT
                       ? true
                       : unusable(c, data, "cannot be read (" + describe_errno(err) + ")", true);
        index_decoder decoder;
        std::uint64_t got = 0;
        if (!read_capped(c, fd.get(), decoder, got))
            return unusable(c, data, "cannot be read (" + std::string(std::strerror(errno)) + ")",
                            true);
        if (got > c.max_index_bytes)
            return unusable(c, data,
                            "grew past the limit of " + std::to_string(c.max_index_bytes) +
                                " bytes for an index while being read (damaged)",
                            false, st);
        auto decoded = decoder.finish();
        if (decoded.state == index_decode::status::newer) {
            writable_ = false;
            data = {};
            loaded_ = true;
            seen_ = st;
            note_once(c.notes, "index.json has format version " + std::to_string(decoded.version) +
                                   ", newer than this library writes (" +
                                   std::to_string(index_format_version) +
                                   "): it is left untouched, and "
                                   "sessions are listed from the history files");
            return true;
        }
        if (decoded.state == index_decode::status::older) {
            // Written by an older library: it lacks what this one lists (pins). Rebuilt
            // from the history files and written over, quietly: nothing is wrong with it.
            data = {};
            loaded_ = true;
            seen_ = st;
            return true;
        }
        if (decoded.state == index_decode::status::corrupt)
            return unusable(c, data, "is damaged: " + decoded.why, false, st);
        data = std::move(decoded.data);
        loaded_ = true;
        seen_ = st;
        return false;
    }

    /// index.json <- `data`: temp file (0600), fsync, rename, fsync of the root, under
    /// index.lock. Returns true when written. A failure is a note (the first one only,
    /// for the life of this object), never thrown: the index is a cache. Does nothing
    /// (false) once load() found a file it must not write over.
    bool write(const context& c, const index_data& data) {
        if (!writable_)
            return false;
        unique_fd lock = open_lock(c);
        if (!lock)
            return write_failed(c);
        const std::string text = encode_index(data);
        // A fresh file each time, so that its mode is ours (0600) whatever an older one
        // had; no one else writes it while we hold index.lock.
        if (c.ops.unlinkat(c.root_fd, "index.json.tmp", 0) < 0 && errno != ENOENT)
            return write_failed(c);
        unique_fd tmp(c.ops.openat(c.root_fd, "index.json.tmp",
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
        if (!tmp)
            return write_failed(c);
        if (append_all(c.ops, tmp.get(), text, 0) != 0 || c.ops.fsync(tmp.get()) < 0 ||
            c.ops.renameat(c.root_fd, "index.json.tmp", c.root_fd, "index.json") < 0) {
            const int e = errno;
            c.ops.unlinkat(c.root_fd, "index.json.tmp", 0);
            errno = e;
            return write_failed(c);
        }
        c.ops.fsync(c.root_fd);
        c.ops.fstat(tmp.get(), &seen_);
        return true;
    }

    /// Whether write() may write index.json (false once load() found a file that must be
    /// left as it is).
    bool writable() const noexcept { return writable_; }

    /// Whether load() has read index.json (or found it absent or unusable) in this object.
    bool loaded() const noexcept { return loaded_; }

    /// Reads index.json from its beginning into `decoder` until the decoder stops, without
    /// loading it into this object (for sessions served straight from the file), calling
    /// before_read(size) first. False when there is no file to read this way (absent, not
    /// a regular file, over the size cap, or a read that failed): the caller reads the
    /// index the usual way, which reports.
    template <class BeforeRead>
    bool stream(const context& c, index_decoder& decoder, BeforeRead&& before_read) const {
        struct stat st {};
        if (c.ops.fstatat(c.root_fd, "index.json", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > c.max_index_bytes)
            return false;
        int err = 0;
        unique_fd fd = open_regular(c.ops, c.root_fd, "index.json", O_RDONLY, 0, err);
        if (!fd)
            return false;
        before_read(static_cast<std::uint64_t>(st.st_size));
        std::uint64_t got = 0;
        return read_capped(c, fd.get(), decoder, got) && got <= c.max_index_bytes;
    }

private:
    // The index cannot be used. A file that could not be read is never written over;
    // one that was read and is damaged is moved to quarantine and rebuilt.
    bool unusable(const context& c, index_data& data, const std::string& why, bool unreadable,
                  const struct stat& damaged = {}) {
        data = {};
        loaded_ = true;
        seen_ = {};
        if (unreadable) {
            writable_ = false;
            note_once(c.notes, "index.json " + why +
                                   ": sessions are listed from the history files, and the "
                                   "index is left as it is");
            return true;
        }
        const std::string moved = quarantine_file(c, damaged);
        struct stat now {};
        const bool replaced =
            c.ops.fstatat(c.root_fd, "index.json", &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            (now.st_ino != damaged.st_ino || now.st_dev != damaged.st_dev);
        if (moved.empty() && replaced) {
            // Another process wrote a fresh index meanwhile: nothing to report, and the
            // next refresh reads it.
        } else if (moved.empty()) {
            writable_ = false;
            note_once(c.notes, "index.json " + why +
                                   ", and it could not be moved to quarantine: it is left "
                                   "as it is");
        } else {
            note_once(c.notes,
                      "index.json " + why + ": moved to " + moved +
                          " and rebuilt from the history files",
                      diagnostic_kind::index_rebuilt);
        }
        return true;
    }

    // Moves the damaged index.json into quarantine, under the index lock, unless another
    // process has replaced it since we looked. Returns where it went, or "".
    std::string quarantine_file(const context& c, const struct stat& damaged) {
        unique_fd lock = open_lock(c);
        if (!lock)
            return {};
        return quarantine<Ops>(c.ops, c.root_fd, c.root.string()).move_in("index.json", damaged);
    }

    // Reads fd whole into `decoder`, a chunk at a time (one buffer of 64 KiB, whatever the
    // file's size), but never more than max_index_bytes + 1 bytes (so that a file that
    // grew past the limit is seen as such without being read on); `got` is what was read.
    // Stops early once the text is not JSON. False when a read fails (errno says why).
    static bool read_capped(const context& c, int fd, index_decoder& decoder, std::uint64_t& got) {
        const std::uint64_t cap = static_cast<std::uint64_t>(c.max_index_bytes) + 1;
        constexpr std::size_t chunk = 64u << 10;
        const auto buf = std::make_unique<char[]>(chunk);
        got = 0;
        while (got < cap) {
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(chunk, cap - got));
            const ssize_t n = pread_full(c.ops, fd, buf.get(), want, static_cast<off_t>(got));
            if (n < 0)
                return false;
            if (n == 0)
                break;
            got += static_cast<std::uint64_t>(n);
            if (got > c.max_index_bytes)
                break; // judged by the caller: not decoded
            if (!decoder.feed(std::string_view(buf.get(), static_cast<std::size_t>(n))))
                break;
            if (static_cast<std::size_t>(n) < want)
                break;
        }
        return true;
    }

    // index.lock, 0600, held with LOCK_EX; no descriptor if it cannot be had.
    unique_fd open_lock(const context& c) {
        int err = 0;
        unique_fd lock = open_regular(c.ops, c.root_fd, "index.lock", O_RDWR | O_CREAT, 0600, err);
        if (!lock) {
            errno = err == not_a_regular_file ? EINVAL : err;
            return lock;
        }
        if (c.ops.flock(lock.get(), LOCK_EX) < 0)
            return unique_fd{};
        return lock;
    }

    bool write_failed(const context& c) {
        if (write_error_reported_)
            return false;
        write_error_reported_ = true;
        note_once(c.notes, "could not update " + c.root.string() + "/index.json (" +
                               std::strerror(errno) +
                               "); listing still works from the history files");
        return false;
    }

    struct stat seen_ {}; ///< index.json as last read or written
    bool loaded_ = false;
    bool writable_ = true;
    bool write_error_reported_ = false;
};

} // namespace dexter::sessions::detail
