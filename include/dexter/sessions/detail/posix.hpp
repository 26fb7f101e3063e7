// SPDX-License-Identifier: BSL-1.0
// POSIX plumbing for the file store: owned descriptors, and the system-call seam.
//
// Every system call the file store makes goes through a `posix_ops` object that the
// store holds by value. Tests derive from it and override one call to make it fail the
// way a real disk fails (EIO on fdatasync, a short write, ENOSPC), without mocking the
// rest of the file system.
#pragma once

#include <dexter/sessions/storage.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

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

/// The system calls of the file store. Derive and hide one to inject a failure.
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
    int unlinkat(int dirfd, const char* path, int flags) { return ::unlinkat(dirfd, path, flags); }
    int fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
    int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
        return ::fstatat(dirfd, path, st, flags);
    }
};

/// The errno of the last failed call, as a storage_error naming `what` and `path`.
[[noreturn]] inline void throw_errno(const std::string& what, const std::string& path,
                                     int e = errno) {
    throw storage_error(what, path, e);
}

/// Writes all of `data` at the end of `fd` (an O_APPEND descriptor whose size before
/// the call is `size_before`). On failure, cuts the file back to `size_before` so that
/// no partial record stays behind, and returns the errno; 0 on success.
template <class Ops>
int append_all(Ops& ops, int fd, std::string_view data, off_t size_before) {
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
        if (done > 0 || n < 0) {
            while (ops.ftruncate(fd, size_before) < 0 && errno == EINTR) {
            }
        }
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

/// This boot's identity (Linux), or empty when unknown. Writes that were not synced
/// can only be lost across a reboot, so a cache that trusts them is checked after one.
inline const std::string& boot_id() {
    static const std::string id = [] {
        std::ifstream in("/proc/sys/kernel/random/boot_id");
        std::string line;
        std::getline(in, line);
        return line;
    }(); // it cannot change while the process lives
    return id;
}

/// The process holding a flock() on the file (device, inode), read from /proc/locks
/// (Linux). std::nullopt when it cannot be told.
inline std::optional<long> flock_holder(dev_t dev, ino_t ino) {
    std::ifstream in("/proc/locks");
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
