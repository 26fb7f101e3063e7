// SPDX-License-Identifier: BSL-1.0
// <root>/quarantine/: where suspect bytes go instead of being deleted (docs/FORMAT.md,
// "Damage"). This header owns the directory, the names of what goes into it, copying
// bytes of a file into it or moving a whole file in, and the repair of a torn tail: the
// bytes after a history's last complete, parseable line, which were never acknowledged.
#pragma once

#include <dexter/sessions/detail/change_log.hpp>
#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dexter::sessions::detail {

/// What repair_tail() did: where the history was cut, and a sentence saying so.
struct tail_repair {
    std::uint64_t cut = 0;
    std::string what;
};

/// The quarantine of the store at `root` (open as `root_fd`), through the seam `ops`.
/// A view: it holds references, and is made where it is used.
template <file_ops Ops>
class quarantine {
public:
    quarantine(Ops& ops, int root_fd, std::string root)
        : ops_(ops), root_fd_(root_fd), root_(std::move(root)) {}

    /// `<root>/quarantine`, created (0700) if needed, opened. Throws storage_error.
    unique_fd open_dir() {
        if (ops_.mkdirat(root_fd_, "quarantine", 0700) < 0 && errno != EEXIST)
            throw_errno("cannot create the quarantine directory", root_ + "/quarantine");
        unique_fd q(ops_.openat(root_fd_, "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (!q)
            throw_errno("cannot open", root_ + "/quarantine");
        return q;
    }

    /// "<label>.<UTC time to the millisecond>.<pid>.<serial>": never the same twice, in
    /// this process or another running at the same time.
    std::string unique_name(const std::string& label) {
        const auto now =
            std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
        std::string stamp = format_timestamp(now);
        std::erase_if(stamp, [](char c) { return c == '-' || c == ':'; });
        return label + "." + stamp + "." + std::to_string(ops_.getpid()) + "." +
               std::to_string(next_serial());
    }

    /// Copies bytes [from, to) of `fd` into a new quarantine file (0600, synced, and its
    /// directory too); returns its path. Throws storage_error; a copy that failed leaves
    /// no file behind, and the original bytes are untouched either way.
    std::string copy_bytes(int fd, std::uint64_t from, std::uint64_t to, const std::string& label) {
        auto q = open_dir();
        const std::string name = unique_name(label);
        const std::string path = root_ + "/quarantine/" + name;
        unique_fd out(
            ops_.openat(q.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
        if (!out)
            throw_errno("cannot create", path);
        try {
            std::string buf(read_chunk, '\0');
            std::uint64_t written = 0;
            for (std::uint64_t pos = from; pos < to;) {
                const auto len =
                    static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - pos));
                const ssize_t n = pread_full(ops_, fd, buf.data(), len, static_cast<off_t>(pos));
                if (n <= 0)
                    throw_errno("cannot read the bytes to move aside", path, n < 0 ? errno : EIO);
                if (const int e = append_all(
                        ops_, out.get(), std::string_view(buf.data(), static_cast<std::size_t>(n)),
                        static_cast<off_t>(written)))
                    throw_errno("cannot write", path, e);
                pos += static_cast<std::uint64_t>(n);
                written += static_cast<std::uint64_t>(n);
            }
            if (ops_.fsync(out.get()) < 0 || ops_.fsync(q.get()) < 0)
                throw_errno("cannot sync", path);
        } catch (...) {
            // A copy that failed (a full disk) is no copy: leave no empty or partial file
            // that looks like one. The original bytes are still where they were.
            ops_.unlinkat(q.get(), name.c_str(), 0);
            throw;
        }
        return path;
    }

    /// Removes a copy copy_bytes() made (by its full path), when what it copied is kept
    /// where it was after all. Best effort, never throws.
    void remove(const std::string& path) {
        const auto name = std::filesystem::path(path).filename();
        unique_fd q(ops_.openat(root_fd_, "quarantine", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (q)
            ops_.unlinkat(q.get(), name.c_str(), 0);
    }

    /// Moves `name` of the root (whatever it is: file, directory, symbolic link) into
    /// quarantine, under a new unique name from `name`, unless it is no longer the file
    /// `expected` (another process replaced it since it was looked at). The caller holds
    /// whatever lock keeps writers of `name` out. Returns where it went, or "" if it was
    /// not moved; never throws.
    std::string move_in(const char* name, const struct stat& expected) {
        try {
            struct stat now {};
            if (ops_.fstatat(root_fd_, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
                now.st_ino != expected.st_ino || now.st_dev != expected.st_dev)
                return {};
            auto q = open_dir();
            const std::string target = unique_name(name);
            if (ops_.renameat(root_fd_, name, q.get(), target.c_str()) < 0)
                return {};
            ops_.fsync(q.get());
            ops_.fsync(root_fd_);
            return root_ + "/quarantine/" + target;
        } catch (const storage_error&) {
            return {};
        }
    }

    /// Under the writer's lease on history `fd` (at `path`, of session `id` of
    /// `channel`): bytes after the last newline, or a last line that is not JSON, were
    /// never acknowledged. Copies them to quarantine, cuts them off (recording the change
    /// in `log`, so that readers learn the file shrank) and syncs. A last line longer
    /// than `max_record` is left alone. Returns what was done, or std::nullopt when the
    /// history ends with a complete record. Throws storage_error; the history is cut only
    /// after its tail was copied.
    std::optional<tail_repair> repair_tail(int fd, const change_log<Ops>& log,
                                           const std::string& channel, const session_id& id,
                                           const std::string& path, std::size_t max_record) {
        struct stat st {};
        if (ops_.fstat(fd, &st) < 0)
            throw_errno("cannot stat", path);
        const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        if (size == 0)
            return std::nullopt;
        std::uint64_t cut = last_line_end(fd, path, size);
        if (cut == size) {
            // Complete last line: it must at least be JSON.
            const std::uint64_t start = cut > 1 ? last_line_end(fd, path, cut - 1) : 0;
            if (size - start > max_record)
                return std::nullopt;
            std::string line(size - start - 1, '\0');
            if (pread_full(ops_, fd, line.data(), line.size(), static_cast<off_t>(start)) < 0)
                throw_errno("cannot read", path);
            std::string why;
            bool repaired = false;
            line_parser parser;
            if (parser.parse(line, why, repaired, [](const json::value&) {}))
                return std::nullopt;
            cut = start;
        }
        const std::string saved = copy_bytes(fd, cut, size, channel + "-" + id + "-tail");
        {
            change_lock<Ops> lock(ops_, log, channel, id);
            if (ops_.ftruncate(fd, static_cast<off_t>(cut)) < 0)
                throw_errno("cannot cut the torn tail of session '" + id + "'", path);
        }
        if (ops_.fdatasync(fd) < 0)
            throw_errno("cannot sync", path);
        return tail_repair{cut, "an incomplete last record (" + std::to_string(size - cut) +
                                    " bytes, never acknowledged) was moved to " + saved};
    }

    /// Offset just past the last newline in [0, end) of `fd`, or 0. Throws storage_error
    /// naming `path` when a read fails or comes up short.
    std::uint64_t last_line_end(int fd, const std::string& path, std::uint64_t end) {
        std::string buf(read_chunk, '\0');
        while (end > 0) {
            const std::uint64_t lo = end > buf.size() ? end - buf.size() : 0;
            const auto len = static_cast<std::size_t>(end - lo);
            if (pread_full(ops_, fd, buf.data(), len, static_cast<off_t>(lo)) !=
                static_cast<ssize_t>(len))
                throw_errno("cannot read", path);
            const auto nl = std::string_view(buf.data(), len).rfind('\n');
            if (nl != std::string_view::npos)
                return lo + nl + 1;
            end = lo;
        }
        return 0;
    }

private:
    Ops& ops_;
    int root_fd_;
    std::string root_;
};

} // namespace dexter::sessions::detail
