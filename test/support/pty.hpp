// SPDX-License-Identifier: BSL-1.0
// A program run on a pseudo-terminal, as a person at a terminal runs it: keys are typed
// into it, and what it shows is read back until an expected text appears.
#pragma once

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions::test {

/// `argv` run with environment `env` on a new pseudo-terminal of `size` (24 rows and 80
/// columns unless given) made by forkpty: its standard input, output and error, and its
/// controlling terminal, so a
/// Ctrl-C typed is a SIGINT, as at a real terminal. Killed (SIGKILL) and reaped on
/// destruction if still running. `timeout` only turns a hang into a failure: nothing
/// here asserts how fast anything is. Every failure throws std::runtime_error with what
/// the terminal showed.
class pty_session {
public:
    pty_session(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                std::chrono::milliseconds timeout = std::chrono::seconds(20),
                winsize size = {24, 80, 0, 0})
        : timeout_(timeout) {
        if (argv.empty())
            throw std::runtime_error("pty_session: no program to run");
        std::vector<std::string> args = argv, vars = env; // the child writes nothing to them
        std::vector<char*> arg_ptrs, env_ptrs;
        for (auto& a : args)
            arg_ptrs.push_back(a.data());
        arg_ptrs.push_back(nullptr);
        for (auto& v : vars)
            env_ptrs.push_back(v.data());
        env_ptrs.push_back(nullptr);
        pid_ = ::forkpty(&master_, nullptr, nullptr, &size);
        if (pid_ < 0)
            fail("forkpty: " + std::string(std::strerror(errno)));
        if (pid_ == 0) {
            // A test runner may ignore or block signals; the program starts as from a shell.
            for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT})
                ::signal(sig, SIG_DFL);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execve(arg_ptrs[0], arg_ptrs.data(), env_ptrs.data());
            ::_exit(127);
        }
    }
    pty_session(const pty_session&) = delete;
    pty_session& operator=(const pty_session&) = delete;
    ~pty_session() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (master_ >= 0)
            ::close(master_);
    }

    pid_t pid() const noexcept { return pid_; }

    /// Everything the terminal showed so far.
    const std::string& shown() const noexcept { return shown_; }

    /// The terminal's modes (as the program set them), or the last ones seen before the
    /// program closed it.
    termios modes() {
        if (master_ >= 0)
            ::tcgetattr(master_, &last_modes_);
        return last_modes_;
    }
    /// Everything the terminal showed so far.
    const std::string& output() const noexcept { return shown_; }

    /// Types `keys` (bytes as a terminal sends them: "\x03" Ctrl-C, "\x1b[D" Left, "\r"
    /// Enter).
    void type(std::string_view keys) {
        while (!keys.empty()) {
            const ssize_t n = ::write(master_, keys.data(), keys.size());
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fail("cannot type into the terminal: " + std::string(std::strerror(errno)));
            }
            keys.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    /// Waits until the terminal shows `needle` after what earlier expect()s consumed, and
    /// consumes up to its end. Throws if the program ends or hangs without showing it.
    void expect(std::string_view needle) {
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        for (;;) {
            if (const auto at = shown_.find(needle, mark_); at != std::string::npos) {
                mark_ = at + needle.size();
                return;
            }
            if (!pump(deadline, deadline))
                fail("the terminal closed without showing \"" + std::string(needle) + "\"");
        }
    }

    /// Waits until the program reads its terminal key by key (canonical mode off, as a
    /// line editor sets it while it reads a line), so that keys typed next reach the
    /// program rather than the terminal's own line editing, which a Ctrl-C would flush.
    void wait_for_raw_mode() {
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        for (;;) {
            termios modes{};
            if (::tcgetattr(master_, &modes) < 0) // the slave's modes, on Linux
                fail("tcgetattr: " + std::string(std::strerror(errno)));
            if ((modes.c_lflag & ICANON) == 0)
                return;
            if (!pump(std::min(deadline,
                               std::chrono::steady_clock::now() + std::chrono::milliseconds(10)),
                      deadline))
                fail("the terminal closed before the program read it key by key");
        }
    }

    /// What the terminal showed after what expect() consumed.
    std::string_view unconsumed() const { return std::string_view(shown_).substr(mark_); }

    /// Reads until the program closes the terminal, reaps it and returns its wait status.
    int wait() {
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        while (pump(deadline, deadline)) {
        }
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0)
            if (errno != EINTR)
                fail("waitpid: " + std::string(std::strerror(errno)));
        pid_ = -1;
        return status;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error(what + "\n--- the terminal showed:\n" + shown_);
    }

    // Reads what the program wrote; false once it closed the terminal.
    // Waits at most until `until`; fails once `deadline` has passed.
    bool pump(std::chrono::steady_clock::time_point until,
              std::chrono::steady_clock::time_point deadline) {
        if (master_ < 0)
            return false;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            fail("the program seems to hang");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) < 0 &&
            errno != EINTR)
            fail("poll: " + std::string(std::strerror(errno)));
        if (p.revents == 0)
            return true;
        char buf[4096];
        const ssize_t n = ::read(master_, buf, sizeof buf);
        if (n > 0) {
            shown_.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {  // EIO: every slave side is closed
            ::tcgetattr(master_, &last_modes_); // the modes the program left
            ::close(master_);
            master_ = -1;
        }
        return true;
    }

    std::chrono::milliseconds timeout_;
    pid_t pid_ = -1;
    int master_ = -1;
    std::string shown_;
    std::size_t mark_ = 0;
    termios last_modes_{};
};

} // namespace dexter::sessions::test
