// SPDX-License-Identifier: BSL-1.0
// For the unit tests of the file store's detail headers (change_log, quarantine,
// index_cache), which run without a store: a fresh root directory with its descriptor,
// and history files written with the record codec. Include after the header under test.
#pragma once

#include <dexter/sessions/detail/posix.hpp>
#include <dexter/sessions/detail/record_codec.hpp>
#include <dexter/sessions/types.hpp>

#include "temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace dexter::sessions::test {

/// A fresh store root (<tmp>/root, 0700), open as `fd`, with a channel directory "cli".
struct store_root {
    temp_dir td;
    std::filesystem::path path = td / "root";
    detail::unique_fd fd;

    store_root() {
        std::filesystem::create_directory(path);
        std::filesystem::create_directory(path / "cli");
        fd = open_directory(path);
    }

    /// `path` opened O_RDONLY | O_DIRECTORY; throws std::runtime_error when it cannot be.
    static detail::unique_fd open_directory(const std::filesystem::path& dir) {
        detail::unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!d)
            throw std::runtime_error("cannot open " + dir.string());
        return d;
    }
};

/// The permission bits of `p` (0600, say); throws std::runtime_error if it cannot be examined.
inline unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) < 0)
        throw std::runtime_error("cannot examine " + p.string());
    return static_cast<unsigned>(st.st_mode & 07777);
}

/// The lines of a history with a header for `meta` and exchanges 1..n made by `make`.
template <class MakeExchange>
std::string history_text(const session_meta& meta, std::uint64_t n, MakeExchange&& make) {
    std::string text;
    detail::encode_header(text, meta);
    for (std::uint64_t seq = 1; seq <= n; ++seq)
        detail::encode_exchange(text, make(seq));
    return text;
}

} // namespace dexter::sessions::test
