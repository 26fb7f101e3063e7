// SPDX-License-Identifier: BSL-1.0
// Helpers for the tests that damage a file store on disk: sessions saved through the
// store, their bytes read and rewritten in place, and checks of what the store reports.
// Include after <boost/test/unit_test.hpp>.
#pragma once

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include "child_checks.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace dexter::sessions::test {

namespace fs = std::filesystem;

/// Durability is not under test here: no fdatasync, so that loops stay fast.
inline const jsonl_options unsynced{durability::process_crash};

/// The manager the tests drive the store with.
using file_manager = session_manager<jsonl_store, manual_clock, sequential_ids>;

/// The same over a store whose system calls go through the test seam `Ops`.
template <class Ops>
using seam_manager = session_manager<basic_jsonl_store<Ops>, manual_clock, sequential_ids>;

// --- bytes on disk ------------------------------------------------------------------

inline std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + p.string());
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Rewrites `p` in place (same inode), as a damaging crash or a careless editor would.
inline void write_bytes(const fs::path& p, std::string_view data) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), p.string());
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw std::system_error(errno, std::generic_category(), p.string());
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

/// The complete lines of `text`, without their newlines (bytes after the last one dropped).
inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t pos = 0;;) {
        const auto nl = text.find('\n', pos);
        if (nl == std::string::npos)
            return out;
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
}

inline std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines)
        out += l + "\n";
    return out;
}

/// Byte offset of line `index` (0-based) in joined(lines).
inline std::uint64_t offset_of(const std::vector<std::string>& lines, std::size_t index) {
    std::uint64_t off = 0;
    for (std::size_t i = 0; i < index; ++i)
        off += lines[i].size() + 1;
    return off;
}

/// True when `text` ends with a newline and every line of it is JSON.
inline bool every_line_parses(const std::string& text) {
    for (const auto& l : lines_of(text)) {
        boost::system::error_code ec;
        json::parse(l, ec);
        if (ec)
            return false;
    }
    return !text.empty() && text.back() == '\n';
}

/// The entries of `dir` (none if it does not exist).
inline std::set<fs::path> entries(const fs::path& dir) {
    std::set<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        out.insert(e.path());
    return out;
}

/// What is in `after` and not in `before`.
inline std::vector<fs::path> added(const std::set<fs::path>& before,
                                   const std::set<fs::path>& after) {
    std::vector<fs::path> out;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                        std::back_inserter(out));
    return out;
}

/// Every entry under `dir` with its type, size, inode and modification time: any
/// change to the tree shows as a difference.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
        struct stat st {};
        ::lstat(it->path().c_str(), &st);
        out[it->path().string()] = std::to_string(st.st_mode) + " " + std::to_string(st.st_size) +
                                   " " + std::to_string(st.st_ino) + " " +
                                   std::to_string(st.st_mtim.tv_sec) + "." +
                                   std::to_string(st.st_mtim.tv_nsec);
    }
    return out;
}

inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// --- sessions -----------------------------------------------------------------------

inline time_point at(int seconds) {
    return time_point{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}} +
           std::chrono::seconds{seconds};
}

/// Exchange `seq`, always the same for the same seq; lengths vary, so that cuts land on
/// different bytes.
inline exchange make_exchange(std::uint64_t seq) {
    exchange ex;
    ex.seq = seq;
    ex.timestamp = at(static_cast<int>(seq) * 10);
    ex.query = "question " + std::to_string(seq);
    ex.answer = "answer " + std::to_string(seq) + " " + std::string(seq * 7 % 40, 'x');
    if (seq % 2 == 0)
        ex.summary = "summary " + std::to_string(seq);
    return ex;
}

inline session_meta make_meta(const std::string& id) {
    return session_meta{id, "title of " + id, at(0), at(0), 0, {}, false, std::nullopt};
}

/// Appends `ex` to the open session `meta`, as the manager does.
template <class Store>
void append_exchange(Store& store, session_meta& meta, const exchange& ex) {
    store.append(meta.id, ex);
    apply_exchange(meta, ex);
}

/// Saves session `id` with exchanges 1..n through the store; returns its metadata.
inline session_meta save_session(const fs::path& root, const std::string& id, std::uint64_t n) {
    jsonl_store store{root, "cli", unsynced};
    session_meta meta = make_meta(id);
    BOOST_TEST_REQUIRE(store.create(meta));
    for (std::uint64_t seq = 1; seq <= n; ++seq)
        append_exchange(store, meta, make_exchange(seq));
    store.close(id);
    return meta;
}

inline fs::path history(const fs::path& root, const std::string& id) {
    return root / "cli" / id / "history.jsonl";
}

/// One history line, as the store writes it (without its newline).
inline std::string line_of(const exchange& ex) {
    std::string out;
    detail::encode_exchange(out, ex);
    out.pop_back();
    return out;
}

inline std::vector<std::uint64_t> seqs(const loaded_session& s) {
    std::vector<std::uint64_t> out;
    for (const auto& ex : s.exchanges)
        out.push_back(ex.seq);
    return out;
}

inline std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (auto s = first; s <= last; ++s)
        out.push_back(s);
    return out;
}

/// Each loaded exchange is exactly the one make_exchange() gives for its seq.
inline void check_contents(const loaded_session& s) {
    for (const auto& ex : s.exchanges)
        BOOST_TEST_CONTEXT("seq " << ex.seq) {
            BOOST_TEST(ex == make_exchange(ex.seq));
        }
}

/// Diagnostics, one per line, for failure messages.
inline std::string show(const std::vector<diagnostic>& diags) {
    std::string out;
    for (const auto& d : diags)
        out += "\n  line " + std::to_string(d.line) + " @" + std::to_string(d.offset) + ": " +
               d.reason;
    return out.empty() ? " (none)" : out;
}

/// Checks one diagnostic: where it points and what it says.
inline void check_diag(const diagnostic& d, std::uint64_t line, std::uint64_t offset,
                       std::string_view reason) {
    BOOST_TEST(d.line == line);
    BOOST_TEST(d.offset == offset);
    BOOST_TEST(contains(d.reason, reason), "reason '" << d.reason << "' lacks '" << reason << "'");
}

/// True when some diagnostic says `part`.
inline bool mentions(const std::vector<diagnostic>& diags, std::string_view part) {
    return std::any_of(diags.begin(), diags.end(),
                       [&](const diagnostic& d) { return contains(d.reason, part); });
}

// --- child processes ------------------------------------------------------------------

/// Runs `body` in a forked child and returns what it returned (or "exception: " and the
/// message of what it threw). For measuring the child's own memory, or running it as
/// another user. The child ends with _exit: no Boost.Test state is touched in it. A
/// child still running after `deadline`, if one is given, is killed and the test fails.
inline std::string in_child(const std::function<std::string()>& body,
                            std::optional<std::chrono::seconds> deadline = std::nullopt) {
    const child_outcome child = fork_child(
        [&](int fd) {
            std::string out;
            try {
                out = body();
            } catch (const std::exception& e) {
                out = std::string("exception: ") + e.what();
            }
            return write_all(fd, out) ? 0 : 2;
        },
        deadline);
    check_child_ended(child, deadline);
    return child.output;
}

/// Peak resident memory of this process so far, in KiB.
inline long max_rss_kib() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

} // namespace dexter::sessions::test
