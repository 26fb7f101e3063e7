// SPDX-License-Identifier: BSL-1.0
// Tests that run part of their work in a forked child (another user, resource limits, a
// store that may block): the child's checks, reported here, and a deadline for the child.
#pragma once

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace dexter::sessions::test {

/// Writes all of `data` to `fd`; false if a write failed.
inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// Appends what one read(2) of `fd` gives to `into` (call it when poll says `fd` is
/// readable); at end of file, or on an error other than EINTR, closes `fd` and sets it
/// to -1.
inline void read_some(int& fd, std::string& into) {
    char buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
        ::close(fd);
        fd = -1;
    }
}

/// Checks made where Boost.Test cannot report (a forked child), one line each: "FAIL: "
/// for a failed check, "INFO: " for a note. Given a descriptor, each line is written to
/// it at once, so that what a child found before it hung still reaches the parent;
/// without one, the lines are kept in text() for report().
class checks {
public:
    checks() = default;
    explicit checks(int fd) : fd_(fd) {}

    void operator()(bool ok, const std::string& what) {
        if (!ok) {
            failed_ = true;
            say("FAIL: " + what);
        }
    }
    void info(const std::string& what) { say("INFO: " + what); }
    bool failed() const { return failed_; }
    const std::string& text() const { return text_; }

private:
    void say(const std::string& line) {
        if (fd_ >= 0)
            write_all(fd_, line + "\n");
        else
            text_ += line + "\n";
    }

    int fd_ = -1;
    bool failed_ = false;
    std::string text_;
};

/// Reports the lines of checks: each "FAIL: " line as a test error, any other as a
/// message.
inline void report(const std::string& text) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("FAIL: "))
            BOOST_ERROR(line);
        else if (!line.empty())
            BOOST_TEST_MESSAGE(line);
    }
}

/// How a forked child ended, and what it wrote.
struct child_outcome {
    std::string output;     ///< all it wrote to its pipe
    int status = 0;         ///< its wait status
    bool timed_out = false; ///< not finished by the deadline: killed (SIGKILL)
};

/// Forks a child that runs body(fd), fd the write end of a pipe to this process, and
/// _exit()s with what body returned (3 if it threw): it never returns into Boost.Test.
/// Here, reads the pipe until the child closes it; a child still running after
/// `deadline` (none: no limit) is killed. The child is always reaped.
inline child_outcome fork_child(const std::function<int(int fd)>& body,
                                std::optional<std::chrono::seconds> deadline) {
    int p[2];
    BOOST_TEST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        int code = 3;
        try {
            code = body(p[1]);
        } catch (...) {
        }
        ::_exit(code);
    }
    ::close(p[1]);
    child_outcome out;
    const auto until = std::chrono::steady_clock::now() + deadline.value_or(std::chrono::seconds{});
    for (;;) {
        int wait_ms = -1;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                out.timed_out = true;
                break;
            }
            wait_ms = static_cast<int>(left.count());
        }
        pollfd pf{p[0], POLLIN, 0};
        const int r = ::poll(&pf, 1, wait_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            out.timed_out = true;
            break;
        }
        char buf[4096];
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.output.append(buf, static_cast<std::size_t>(n));
    }
    if (out.timed_out)
        ::kill(pid, SIGKILL);
    ::close(p[0]);
    while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
    }
    return out;
}

/// Fails the test unless the child finished by its deadline and exited with 0.
inline void check_child_ended(const child_outcome& child,
                              std::optional<std::chrono::seconds> deadline) {
    if (child.timed_out) {
        BOOST_ERROR("the child had not finished after " << (deadline ? deadline->count() : 0)
                                                        << " s and was killed: it blocked");
        return;
    }
    BOOST_TEST((WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0),
               "child exit status " << child.status
                                    << (WIFSIGNALED(child.status) ? " (killed by signal)" : ""));
}

/// Runs f(checks&) in a forked child and reports its checks here once it has ended (those
/// made before a hang too). A child that has not finished after `deadline` is killed and
/// the test fails: a blocked store fails its test, not the whole run.
template <class F>
void run_in_child(F&& f, std::chrono::seconds deadline = std::chrono::seconds{60}) {
    const child_outcome child = fork_child(
        [&](int fd) {
            checks c{fd};
            try {
                f(c);
            } catch (const std::exception& e) {
                c(false, std::string("unexpected exception in the child: ") + e.what());
            } catch (...) {
                c(false, "unexpected exception in the child");
            }
            return c.failed() ? 1 : 0;
        },
        deadline);
    report(child.output);
    check_child_ended(child, deadline);
}

// --- as another user ------------------------------------------------------------------

/// The user a child drops to, where root would pass every permission check.
inline constexpr uid_t nobody = 65534;

/// True when a child can run as nobody over a tree at `dir`: this process is root and
/// nobody may pass through every directory above `dir`. If not, says the test is skipped.
inline bool can_run_as_nobody_in(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("SKIPPED: not root, so cannot switch to nobody");
        return false;
    }
    for (fs::path p = dir.parent_path(); p != p.root_path(); p = p.parent_path())
        if ((fs::status(p).permissions() & fs::perms::others_exec) == fs::perms::none) {
            BOOST_TEST_MESSAGE("SKIPPED: nobody cannot reach " << dir << " (" << p
                                                               << " is not o+x)");
            return false;
        }
    return true;
}

/// In a child: drops to nobody (supplementary groups, group, then user). False if that,
/// or an earlier check, failed.
inline bool become_nobody(checks& check) {
    check(::setgroups(0, nullptr) == 0, "setup: setgroups");
    check(::setgid(nobody) == 0, "setup: setgid(65534)");
    check(::setuid(nobody) == 0, "setup: setuid(65534)");
    return !check.failed();
}

} // namespace dexter::sessions::test
