// SPDX-License-Identifier: BSL-1.0
// What a file descriptor is open on, as /proc/self/fd names it: for the test seams that
// act on some files only (history.jsonl, index.json, the quarantine).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <string>

namespace dexter::sessions::test {

/// The target of descriptor `fd`, as the kernel names it ("" when it cannot be told).
inline std::string fd_path(int fd) {
    if (fd < 0)
        return {};
    char link[4096];
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
    return n > 0 ? std::string(link, static_cast<std::size_t>(n)) : std::string();
}

/// True when `fd` is open on some session's history.jsonl.
inline bool is_history_fd(int fd) {
    return fd_path(fd).ends_with("/history.jsonl");
}

} // namespace dexter::sessions::test
