// SPDX-License-Identifier: BSL-1.0
// A running store_child (test/support/store_child.cpp) with pipes to its stdin and from
// its stdout, for the crash and concurrency tests of jsonl_store.
#pragma once

#ifndef DEXTER_STORE_CHILD
#error "define DEXTER_STORE_CHILD as the path of the store_child program"
#endif

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace dexter::sessions::test {

/// A running `store_child <args...>`: its stdout is read line by line, its stdin takes
/// lines (the barrier of the contention tests). Killed (SIGKILL) and reaped on
/// destruction if still running. A read that waits longer than `line_timeout` for a
/// line throws: a hung child fails the test, not the whole run.
class child_process {
public:
    explicit child_process(const std::vector<std::string>& args,
                           std::chrono::milliseconds line_timeout = std::chrono::seconds(30))
        : timeout_(line_timeout) {
        int out[2], in[2];
        // O_CLOEXEC: the pipe ends must reach only the child they belong to, or a
        // child's stdin would never see EOF.
        if (::pipe2(out, O_CLOEXEC) < 0)
            throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
        if (::pipe2(in, O_CLOEXEC) < 0) {
            const int e = errno;
            ::close(out[0]);
            ::close(out[1]);
            throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(e));
        }
        out_ = out[0];
        in_ = in[1];
        posix_spawn_file_actions_t fa;
        ::posix_spawn_file_actions_init(&fa);
        ::posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        ::posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        // Default dispositions for the signals the tests send: a shell that started us in
        // the background may have left SIGINT ignored, and the child would inherit that.
        posix_spawnattr_t attr;
        ::posix_spawnattr_init(&attr);
        sigset_t def, none;
        sigemptyset(&def);
        sigaddset(&def, SIGINT);
        sigaddset(&def, SIGTERM);
        sigemptyset(&none);
        ::posix_spawnattr_setsigdefault(&attr, &def);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        std::vector<std::string> all{DEXTER_STORE_CHILD};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int e = ::posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&fa);
        ::posix_spawnattr_destroy(&attr);
        ::close(out[1]);
        ::close(in[0]);
        if (e != 0) {
            pid_ = -1;
            close_stdin();
            ::close(out_);
            throw std::runtime_error(std::string("cannot start ") + DEXTER_STORE_CHILD + ": " +
                                     std::strerror(e));
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        close_stdin();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        ::close(out_);
    }

    pid_t pid() const noexcept { return pid_; }

    /// The next complete line it wrote, without its newline; std::nullopt at end of
    /// file (an unfinished last line is dropped). Throws after the line timeout.
    std::optional<std::string> read_line() {
        for (;;) {
            if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            if (eof_)
                return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                throw std::runtime_error("store_child " + std::to_string(pid_) +
                                         " wrote no line in " + std::to_string(timeout_.count()) +
                                         " ms");
            char chunk[4096];
            const ssize_t n = ::read(out_, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                eof_ = true;
            else
                buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    /// The next line, which must exist.
    std::string expect_line() {
        auto line = read_line();
        if (!line)
            throw std::runtime_error("store_child " + std::to_string(pid_) + " ended early");
        return *line;
    }

    /// The handshake of a store_child: its next lines must be `lines`, in order ("READY",
    /// then "OPEN" for append; "HELD" for hold). Throws, naming what it said instead,
    /// otherwise.
    void expect(std::initializer_list<std::string_view> lines) {
        for (const std::string_view want : lines) {
            const auto line = read_line();
            if (line != want)
                throw std::runtime_error("store_child " + std::to_string(pid_) + " said " +
                                         (line ? "'" + *line + "'" : std::string("nothing more")) +
                                         ", expected '" + std::string(want) + "'");
        }
    }

    void send(const std::string& line) {
        const std::string data = line + "\n";
        if (::write(in_, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
            throw std::runtime_error("cannot write to store_child " + std::to_string(pid_));
    }

    void close_stdin() {
        if (in_ >= 0)
            ::close(in_);
        in_ = -1;
    }

    /// Waits for it to end; returns the wait status.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }

private:
    std::chrono::milliseconds timeout_;
    pid_t pid_ = -1;
    int out_ = -1;
    int in_ = -1;
    std::string buf_;
    bool eof_ = false;
};

} // namespace dexter::sessions::test
