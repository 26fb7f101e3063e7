// SPDX-License-Identifier: BSL-1.0
// Other programs the benchmarks run: cp and sync as floors, dexter, and the benchmark
// itself as a child whose memory is measured. Each is started with posix_spawnp, its
// standard input on /dev/null and its standard output on a pipe read here.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace bench {

/// This process's environment with `set` ("NAME=value") in place of any NAME= in it.
inline std::vector<std::string> environment_with(const std::vector<std::string>& set) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string_view v(*e);
        bool replaced = false;
        for (const auto& s : set)
            replaced = replaced || v.substr(0, s.find('=') + 1) == s.substr(0, s.find('=') + 1);
        if (!replaced)
            env.emplace_back(v);
    }
    env.insert(env.end(), set.begin(), set.end());
    return env;
}

/// Pointers to the strings of `v`, then a null one, as argv and envp are.
inline std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

/// A running program (`argv[0]` found on PATH unless it holds a slash) with environment
/// `env`, its standard output on a pipe that we read, and its standard input on /dev/null.
/// Throws std::runtime_error when it cannot be started; waited for on destruction.
class spawned {
public:
    spawned(std::vector<std::string> argv, std::vector<std::string> env) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0)
            throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        ::posix_spawn_file_actions_adddup2(&actions, p[1], 1);
        auto args = c_strings(argv);
        auto envp = c_strings(env);
        const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
        ::posix_spawn_file_actions_destroy(&actions);
        ::close(p[1]);
        if (rc != 0) {
            ::close(p[0]);
            throw std::runtime_error("cannot run " + argv[0]);
        }
        fd_ = p[0];
    }
    spawned(const spawned&) = delete;
    spawned& operator=(const spawned&) = delete;
    ~spawned() {
        if (fd_ >= 0)
            ::close(fd_);
        if (pid_ > 0)
            ::waitpid(pid_, nullptr, 0);
    }

    /// Reads up to `size` bytes of the program's output; 0 at its end.
    std::size_t read(char* buf, std::size_t size) {
        for (;;) {
            const ssize_t n = ::read(fd_, buf, size);
            if (n >= 0)
                return static_cast<std::size_t>(n);
            if (errno != EINTR)
                throw std::runtime_error("cannot read a child's output");
        }
    }

    /// Waits for the program to end; its exit status (-1 if it did not exit).
    int wait() {
        ::close(fd_);
        fd_ = -1;
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
};

/// The whole output of a program and its exit status (-1 if it did not exit).
inline std::pair<std::string, int> output_of(std::vector<std::string> argv,
                                             std::vector<std::string> env) {
    spawned child(std::move(argv), std::move(env));
    std::string out;
    char buf[65536];
    for (std::size_t n; (n = child.read(buf, sizeof buf)) > 0;)
        out.append(buf, n);
    const int status = child.wait();
    return {std::move(out), status};
}

/// Runs `argv` in this process's environment and waits for it; throws std::runtime_error
/// unless it exits with 0. Its output is dropped.
inline void run(std::vector<std::string> argv) {
    const std::string name = argv.at(0);
    if (output_of(std::move(argv), environment_with({})).second != 0)
        throw std::runtime_error(name + " failed");
}

} // namespace bench
