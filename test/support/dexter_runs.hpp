// SPDX-License-Identifier: BSL-1.0
// Small helpers of the tests that run the dexter binary (dexter_cli_test, dexter_pty_test):
// exit statuses in words, the offline agent's answers, shell quoting, reading files.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dexter::sessions::test {

/// A wait status in words: "exit 0", "killed by signal 9".
inline std::string describe_status(int status) {
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

/// What dexter's built-in offline agent answers `asked`, given `earlier` turns of which the
/// last question was `previous` (its documented format).
inline std::string offline(std::size_t earlier, const std::string& previous,
                           const std::string& asked) {
    std::string s = "[offline agent] I was given ";
    if (earlier == 0)
        s += "no earlier turns";
    else
        s += std::to_string(earlier) + (earlier == 1 ? " earlier turn" : " earlier turns") +
             "; your previous question was \"" + previous + "\"";
    return s + ". You asked: \"" + asked + "\"";
}

/// `s` quoted for /bin/sh.
inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

/// The whole of a file ("" if it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The lines of `text`, without their newlines.
inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

/// Waits until `path` exists (`timeout` only turns a hang into a failure), and returns
/// its text. Throws std::runtime_error if it never appears.
inline std::string wait_for_file(const std::filesystem::path& path,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!std::filesystem::exists(path)) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error(path.string() + " never appeared");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return read_text(path);
}

} // namespace dexter::sessions::test
