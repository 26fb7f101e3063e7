// SPDX-License-Identifier: BSL-1.0
// POSIX plumbing for the file store: owned descriptors, and the system-call seam.
//
// Every system call the file store makes goes through a `posix_ops` object that the
// store holds by value (the `file_ops` concept below lists them). Tests derive from it
// and hide one call to make it fail the way a real disk fails (EIO on fdatasync, a
// short write, ENOSPC, EMFILE on a directory listing), without mocking the rest of the
// file system.
#pragma once

#include <dexter/sessions/storage.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dexter::sessions::detail {

/// An owned file descriptor, closed on destruction.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o)
            reset(std::exchange(o.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// RENAME_NOREPLACE of renameat2 (linux/fs.h), without that header.
inline constexpr unsigned rename_noreplace_flag = 1u;

/// One entry of a directory listing.
struct dir_entry {
    std::string name;
    unsigned char type = DT_UNKNOWN; ///< d_type: DT_DIR, DT_REG, ... or DT_UNKNOWN
};

/// The system calls of the file store. Derive and hide one to inject a failure.
/// Each returns what the system call returns (-1 with errno set on failure).
struct posix_ops {
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        int fd;
        do
            fd = ::openat(dirfd, path, flags | O_CLOEXEC, mode);
        while (fd < 0 && errno == EINTR);
        return fd;
    }
    ssize_t write(int fd, const void* data, std::size_t n) { return ::write(fd, data, n); }
    ssize_t pread(int fd, void* data, std::size_t n, off_t offset) {
        return ::pread(fd, data, n, offset);
    }
    int fdatasync(int fd) { return ::fdatasync(fd); }
    int fsync(int fd) { return ::fsync(fd); }
    int ftruncate(int fd, off_t size) { return ::ftruncate(fd, size); }
    int flock(int fd, int op) {
        int r;
        do
            r = ::flock(fd, op);
        while (r < 0 && errno == EINTR);
        return r;
    }
    int mkdirat(int dirfd, const char* path, mode_t mode) { return ::mkdirat(dirfd, path, mode); }
    int renameat(int from_dir, const char* from, int to_dir, const char* to) {
        return ::renameat(from_dir, from, to_dir, to);
    }
    /// renameat2(RENAME_NOREPLACE): renames only if `to` does not exist (EEXIST if it
    /// does), atomically.
    int rename_noreplace(int from_dir, const char* from, int to_dir, const char* to) {
        return static_cast<int>(
            ::syscall(SYS_renameat2, from_dir, from, to_dir, to, rename_noreplace_flag));
    }
    int unlinkat(int dirfd, const char* path, int flags) { return ::unlinkat(dirfd, path, flags); }
    int fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
    int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
        return ::fstatat(dirfd, path, st, flags);
    }
    int fstatfs(int fd, struct statfs* st) { return ::fstatfs(fd, st); }
    /// fcntl(fd, F_GETFL): the descriptor's status flags.
    int get_fl(int fd) { return ::fcntl(fd, F_GETFL); }
    /// Reads the names in directory `dirfd` (without "." and ".."), leaving `dirfd`
    /// itself open and unchanged. 0, or -1 with errno: a failed listing is never
    /// mistaken for an empty one.
    int list_directory(int dirfd, std::vector<dir_entry>& out) {
        int fd;
        do
            fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0)
            return -1;
        DIR* d = ::fdopendir(fd);
        if (!d) {
            const int e = errno;
            ::close(fd);
            errno = e;
            return -1;
        }
        for (;;) {
            errno = 0;
            const dirent* e = ::readdir(d);
            if (!e)
                break;
            const std::string_view n = e->d_name;
            if (n != "." && n != "..")
                out.push_back({std::string(n), e->d_type});
        }
        const int e = errno;
        ::closedir(d);
        errno = e;
        return e == 0 ? 0 : -1;
    }
    pid_t getpid() { return ::getpid(); }
    /// kill(pid, 0) tells whether process `pid` exists.
    int kill(pid_t pid, int sig) { return ::kill(pid, sig); }
    /// Reads a small text file of the system (/proc) whole, up to `max` bytes. 0, or -1
    /// with errno.
    int read_system_file(const char* path, std::string& out, std::size_t max) {
        int fd;
        do
            fd = ::open(path, O_RDONLY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0)
            return -1;
        out.clear();
        char buf[4096];
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                const int e = errno;
                ::close(fd);
                errno = e;
                return -1;
            }
            if (n == 0 || out.size() >= max)
                break;
            out.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        return 0;
    }
};

/// What a system-call seam of the file store must provide: every call in posix_ops,
/// with the same signature. A seam that lacks one fails where the store is named,
/// with this concept's name. Derive from posix_ops to keep the real calls you do not
/// change.
template <class T>
concept file_ops = std::movable<T> &&
    requires(T& o, int fd, const char* path, int flags, mode_t mode, void* buf, const void* data,
             std::size_t n, off_t offset, struct stat* st, struct statfs* fs,
             std::vector<dir_entry>& entries, std::string& text, pid_t pid) {
    { o.openat(fd, path, flags, mode) } -> std::same_as<int>;
    { o.write(fd, data, n) } -> std::same_as<ssize_t>;
    { o.pread(fd, buf, n, offset) } -> std::same_as<ssize_t>;
    { o.fdatasync(fd) } -> std::same_as<int>;
    { o.fsync(fd) } -> std::same_as<int>;
    { o.ftruncate(fd, offset) } -> std::same_as<int>;
    { o.flock(fd, flags) } -> std::same_as<int>;
    { o.mkdirat(fd, path, mode) } -> std::same_as<int>;
    { o.renameat(fd, path, fd, path) } -> std::same_as<int>;
    { o.rename_noreplace(fd, path, fd, path) } -> std::same_as<int>;
    { o.unlinkat(fd, path, flags) } -> std::same_as<int>;
    { o.fstat(fd, st) } -> std::same_as<int>;
    { o.fstatat(fd, path, st, flags) } -> std::same_as<int>;
    { o.fstatfs(fd, fs) } -> std::same_as<int>;
    { o.get_fl(fd) } -> std::same_as<int>;
    { o.list_directory(fd, entries) } -> std::same_as<int>;
    { o.getpid() } -> std::same_as<pid_t>;
    { o.kill(pid, flags) } -> std::same_as<int>;
    { o.read_system_file(path, text, n) } -> std::same_as<int>;
};

static_assert(file_ops<posix_ops>);

/// The errno-like code open_regular() gives for "exists, but is not a regular file".
inline constexpr int not_a_regular_file = -1000;

/// Describes an errno value, or not_a_regular_file.
inline std::string describe_errno(int e) {
    return e == not_a_regular_file ? "not a regular file (a FIFO, socket, device or "
                                     "directory), so it is neither read nor written"
                                   : std::string(std::strerror(e));
}

/// A failure to open `path`, with the errno or not_a_regular_file that gave it.
[[noreturn]] inline void throw_open_failure(const std::string& what, const std::string& path,
                                            int e) {
    if (e == not_a_regular_file)
        throw storage_error(what + ": it is " + describe_errno(e), path);
    throw storage_error(what, path, e);
}

/// Opens `path` under `dirfd` (never following a symbolic link) only if it is a
/// regular file: with O_NONBLOCK, so that a FIFO or a device cannot block the open,
/// then fstat. On failure returns no descriptor and sets `err` to the errno, or to
/// not_a_regular_file. O_NONBLOCK changes nothing for a regular file. With `out`, the
/// fstat is stored there (for a caller that needs the inode: no second fstat).
template <class Ops>
unique_fd open_regular(Ops& ops, int dirfd, const char* path, int flags, mode_t mode, int& err,
                       struct stat* out = nullptr) {
    unique_fd fd(ops.openat(dirfd, path, flags | O_NONBLOCK | O_NOFOLLOW, mode));
    if (!fd) {
        err = errno;
        return fd;
    }
    struct stat local {};
    struct stat& st = out ? *out : local;
    if (ops.fstat(fd.get(), &st) < 0) {
        err = errno;
        return unique_fd{};
    }
    if (!S_ISREG(st.st_mode)) {
        err = not_a_regular_file;
        return unique_fd{};
    }
    err = 0;
    return fd;
}

/// The errno of the last failed call, as a storage_error naming `what` and `path`.
[[noreturn]] inline void throw_errno(const std::string& what, const std::string& path,
                                     int e = errno) {
    throw storage_error(what, path, e);
}

/// Writes all of `data` at the end of `fd` (an O_APPEND descriptor whose size before
/// the call is `size_before`). On failure, cuts the file back to `size_before` so that
/// no partial record stays behind, and returns the errno; 0 on success. If that cut
/// itself fails, `*rollback_failed` (when given) is set: a fragment may then stay at
/// the end of the file, and nothing may be appended after it.
template <class Ops>
int append_all(Ops& ops, int fd, std::string_view data, off_t size_before,
               bool* rollback_failed = nullptr) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ops.write(fd, data.data() + done, data.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        const int e = n < 0 ? errno : EIO;
        // Even a write that failed outright may have left bytes behind (a short write
        // the kernel reported as an error): always cut back.
        int r;
        while ((r = ops.ftruncate(fd, size_before)) < 0 && errno == EINTR) {
        }
        if (r < 0 && rollback_failed)
            *rollback_failed = true;
        return e == 0 ? EIO : e;
    }
    return 0;
}

/// Reads exactly `n` bytes at `offset` (fewer only at end of file). Returns the count,
/// or -1 with errno set.
template <class Ops>
ssize_t pread_full(Ops& ops, int fd, char* out, std::size_t n, off_t offset) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ops.pread(fd, out + done, n - done, offset + static_cast<off_t>(done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += static_cast<std::size_t>(r);
    }
    return static_cast<ssize_t>(done);
}

/// Opens the store's root directory `root` (following a symbolic link), creating it and
/// any missing parents (0700) when needed. Each directory made here is synced, and so is
/// the one it was made in: a power loss right after the first acknowledged save must not
/// take the store's directories. Throws storage_error naming the directory that failed.
template <class Ops>
unique_fd open_store_root(Ops& ops, const std::filesystem::path& root) {
    auto sync_directory = [&](const std::filesystem::path& dir) {
        unique_fd fd(ops.openat(AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY));
        if (!fd || ops.fsync(fd.get()) < 0)
            throw_errno("cannot sync the directory", dir.string());
    };
    unique_fd root_fd(ops.openat(AT_FDCWD, root.c_str(), O_RDONLY | O_DIRECTORY));
    if (root_fd)
        return root_fd;
    if (errno != ENOENT)
        throw_errno("cannot open the session store", root.string());
    std::filesystem::path top = root.lexically_normal();
    if (top.has_relative_path() && top.filename().empty())
        top = top.parent_path(); // "a/b/" -> "a/b"
    std::vector<std::filesystem::path> missing{top};
    for (auto p = top.parent_path(); !p.empty() && p != missing.back(); p = p.parent_path()) {
        struct stat st {};
        if (ops.fstatat(AT_FDCWD, p.c_str(), &st, 0) == 0)
            break;
        if (errno != ENOENT)
            throw_errno("cannot examine", p.string());
        missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (ops.mkdirat(AT_FDCWD, it->c_str(), 0700) < 0 && errno != EEXIST)
            throw_errno("cannot create the session store", it->string());
        const auto parent = it->parent_path();
        sync_directory(parent.empty() ? std::filesystem::path(".") : parent);
        sync_directory(*it);
    }
    root_fd.reset(ops.openat(AT_FDCWD, root.c_str(), O_RDONLY | O_DIRECTORY));
    if (!root_fd)
        throw_errno("cannot open the session store", root.string());
    return root_fd;
}

/// The names in directory `dirfd` (only subdirectories, and names whose type the file
/// system does not tell, with `directories_only`). Throws storage_error naming `path`
/// when the directory cannot be listed: a failed listing is never an empty one.
template <class Ops>
std::vector<std::string> list_dir(Ops& ops, int dirfd, bool directories_only,
                                  const std::string& path) {
    std::vector<dir_entry> entries;
    if (ops.list_directory(dirfd, entries) < 0)
        throw_errno("cannot list the directory", path);
    std::vector<std::string> names;
    names.reserve(entries.size());
    for (auto& e : entries)
        if (!directories_only || e.type == DT_DIR || e.type == DT_UNKNOWN)
            names.push_back(std::move(e.name));
    return names;
}

/// Removes directory `name` under `parent_fd` with the files in it (one level: what a
/// session directory holds), then syncs the parent. Best effort, never throws: whatever
/// stays (a failed listing or unlink) is left for a later attempt.
template <class Ops>
void remove_tree(Ops& ops, int parent_fd, const std::string& name) {
    unique_fd dir(ops.openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (dir) {
        std::vector<dir_entry> entries;
        if (ops.list_directory(dir.get(), entries) < 0)
            return;
        for (const auto& f : entries)
            ops.unlinkat(dir.get(), f.name.c_str(), 0);
    }
    ops.unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR);
    ops.fsync(parent_fd);
}

/// A number never handed out twice in this process: with the pid and the time, it
/// makes the names of files moved aside (quarantine, deleted sessions) unique across
/// every store object.
inline std::uint64_t next_serial() noexcept {
    static std::atomic<std::uint64_t> serial{0};
    return ++serial;
}

/// This boot's identity (Linux), or empty when unknown. Writes that were not synced
/// can only be lost across a reboot, so a cache that trusts them is checked after one.
template <class Ops>
std::string read_boot_id(Ops& ops) {
    std::string text;
    if (ops.read_system_file("/proc/sys/kernel/random/boot_id", text, 256) < 0)
        return {};
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

/// The process holding a flock() on the file (device, inode), read from /proc/locks
/// (Linux). std::nullopt when it cannot be told.
template <class Ops>
std::optional<long> flock_holder(Ops& ops, dev_t dev, ino_t ino) {
    std::string text;
    if (ops.read_system_file("/proc/locks", text, 16u << 20) < 0)
        return std::nullopt;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        std::istringstream f(line);
        std::string num, kind, mode, access, where;
        long pid = 0;
        if (!(f >> num >> kind >> mode >> access >> pid >> where))
            continue;
        if (kind != "FLOCK" || num == "->")
            continue;
        unsigned maj = 0, min = 0;
        unsigned long long inode = 0;
        if (std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &inode) != 3)
            continue;
        if (inode == ino && makedev(maj, min) == dev)
            return pid;
    }
    return std::nullopt;
}

} // namespace dexter::sessions::detail
