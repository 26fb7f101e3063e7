// SPDX-License-Identifier: BSL-1.0
// The file store's trash: where trashed sessions are, and how they are named.
//
//   <root>/trash/<channel>/<id>-<ms>/history.jsonl
//
// <ms> is the time the session was trashed, in milliseconds since 1970. A session goes
// to the trash, and comes back, by one rename of its whole directory (RENAME_NOREPLACE:
// nothing is ever replaced), so that it is at every instant either live or trashed.
// A purge first renames the entry to a dot name (`.purging-...`), so that a purge cut
// short leaves nothing that lists as a trashed session; such leftovers are removed by
// a later list_trash(). What the store does with the trash is jsonl_store.hpp's.
#pragma once

#include <dexter/sessions/detail/history_scan.hpp>
#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/types.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions::detail {

/// The directory of the trash, under the store's root.
inline constexpr const char* trash_dir_name = "trash";

/// Milliseconds since 1970 of `t` (rounded down).
inline std::int64_t trash_millis(time_point t) noexcept {
    return std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
}

/// The name of the trash entry of session `id` trashed at `ms`.
inline std::string trash_entry_name(const session_id& id, std::int64_t ms) {
    return id + "-" + std::to_string(ms);
}

/// A parsed trash entry name.
struct trash_entry {
    session_id id;
    std::int64_t ms = 0;
    time_point deleted_at() const { return time_point(std::chrono::milliseconds(ms)); }
};

/// `<id>-<ms>`, or nothing for any other name (a dot name, a stray file).
inline std::optional<trash_entry> parse_trash_entry(std::string_view name) {
    if (name.size() < session_id_length + 2 || name[session_id_length] != '-')
        return std::nullopt;
    const std::string_view id = name.substr(0, session_id_length);
    if (!is_valid_session_id(id))
        return std::nullopt;
    const std::string_view digits = name.substr(session_id_length + 1);
    trash_entry e;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), e.ms);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.front() == '+')
        return std::nullopt;
    e.id = session_id(id);
    return e;
}

/// Opens directory `name` under `parent` (never through a symbolic link). With
/// `create`, makes it (0700) when missing, syncing `parent`. Returns no descriptor when
/// it does not exist and `create` is false. Throws storage_error naming `path`.
template <file_ops Ops>
unique_fd open_trash_dir(Ops& ops, int parent, const char* name, bool create,
                         const std::string& path) {
    unique_fd fd(ops.openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (fd)
        return fd;
    if (errno != ENOENT)
        throw_errno("cannot open the trash directory", path);
    if (!create)
        return fd;
    if (ops.mkdirat(parent, name, 0700) == 0) {
        if (ops.fsync(parent) < 0) // the new directory's name must be durable
            throw_errno("cannot sync the directory of", path);
    } else if (errno != EEXIST) {
        throw_errno("cannot create the trash directory", path);
    }
    fd.reset(ops.openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!fd)
        throw_errno("cannot open the trash directory", path);
    return fd;
}

/// The trash of one channel (`<root>/trash/<channel>`), opened (and, with `create`,
/// made) on demand. Not thread-safe.
template <file_ops Ops>
class channel_trash {
public:
    channel_trash(Ops& ops, int root_fd, const std::filesystem::path& root,
                  const std::string& channel)
        : ops_(ops), root_fd_(root_fd), path_(root.string() + "/" + trash_dir_name + "/" + channel),
          channel_(channel) {}

    /// The trash directory of the channel, made with `create`; -1 when it does not exist
    /// (and `create` is false). Throws storage_error.
    int fd(bool create) {
        if (fd_)
            return fd_.get();
        unique_fd top = open_trash_dir(ops_, root_fd_, trash_dir_name, create,
                                       path_.substr(0, path_.size() - channel_.size() - 1));
        if (!top)
            return -1;
        fd_ = open_trash_dir(ops_, top.get(), channel_.c_str(), create, path_);
        return fd_ ? fd_.get() : -1;
    }

    /// The entries of the trash (names that do not parse are left out; `.purging-`
    /// leftovers are removed on the way). Throws storage_error when it cannot be listed.
    std::vector<trash_entry> entries() {
        std::vector<trash_entry> out;
        const int dir = fd(false);
        if (dir < 0)
            return out;
        for (const auto& name : list_dir(ops_, dir, false, path_)) {
            if (name.starts_with(".purging-"))
                remove_tree(ops_, dir, name);
            else if (auto e = parse_trash_entry(name))
                out.push_back(std::move(*e));
        }
        return out;
    }

    /// The path of entry `name`, for messages.
    std::string path_of(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const noexcept { return path_; }

private:
    Ops& ops_;
    int root_fd_;
    std::string path_;
    std::string channel_;
    unique_fd fd_;
};

/// The metadata of the trashed session in directory `name` under `dir`, read forward
/// from its history (`path` for messages). Throws storage_error (cannot be read,
/// not a regular file), format_error is not thrown: a newer format is returned in
/// the state's newer_version.
template <file_ops Ops>
scan_state read_trashed(Ops& ops, int dir, const std::string& name, const session_id& id,
                        const std::string& path, std::size_t max_record_bytes) {
    unique_fd sdir(ops.openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!sdir)
        throw_errno("cannot open the trashed session", path);
    int err = 0;
    unique_fd file = open_regular(ops, sdir.get(), "history.jsonl", O_RDONLY, 0, err);
    if (!file)
        throw_open_failure("cannot read the trashed session", path + "/history.jsonl", err);
    scan_state st;
    st.meta.id = id;
    std::vector<diagnostic> ignored;
    scan_forward(ops, file.get(), path + "/history.jsonl", st, ignored, max_record_bytes, false,
                 [](exchange&&) {});
    return st;
}

} // namespace dexter::sessions::detail
