// SPDX-License-Identifier: BSL-1.0
// jsonl_store.hpp across processes (RELIABILITY.md rows 6, 7, 16): lease, create race, fd leak.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_concurrency
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/session_manager.hpp>

#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef DEXTER_STORE_CHILD
#error "define DEXTER_STORE_CHILD as the path of the store_child program"
#endif

extern char** environ;

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A running store_child, with pipes to its stdin and from its stdout. Killed and
/// reaped on destruction if still running.
class child_process {
public:
    explicit child_process(const std::vector<std::string>& args) {
        int out[2], in[2];
        // O_CLOEXEC: the pipe ends must reach only the child they belong to, or a
        // child's stdin would never see EOF.
        if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(in, O_CLOEXEC) < 0)
            throw std::runtime_error("pipe2 failed");
        out_ = out[0];
        in_ = in[1];
        posix_spawn_file_actions_t fa;
        ::posix_spawn_file_actions_init(&fa);
        ::posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        ::posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        std::vector<std::string> all{DEXTER_STORE_CHILD};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int e = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        ::close(in[0]);
        if (e != 0) {
            pid_ = -1;
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

    /// The next line it wrote, without the newline; std::nullopt at end of file.
    /// Throws if none comes in time (a hung child fails the test, not the run).
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = 30s) {
        for (;;) {
            if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            if (eof_)
                return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                throw std::runtime_error("store_child " + std::to_string(pid_) +
                                         " wrote no line in time");
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

    void send(const std::string& line) {
        const std::string data = line + "\n";
        if (::write(in_, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
            throw std::runtime_error("cannot write to store_child");
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
    pid_t pid_ = -1;
    int out_ = -1;
    int in_ = -1;
    std::string buf_;
    bool eof_ = false;
};

using manager = ds::session_manager<ds::jsonl_store>;

/// A session with `count` exchanges, closed again.
std::string make_session(const fs::path& root, int count) {
    manager m{ds::jsonl_store{root}};
    m.start_new();
    for (int i = 0; i < count; ++i)
        m.save_exchange("q" + std::to_string(i), "a");
    return m.current()->id;
}

std::uint64_t stored_count(const fs::path& root, const std::string& id) {
    const auto s = ds::jsonl_store{root}.load(id, ds::all_exchanges);
    BOOST_TEST(s.diagnostics.empty());
    return s.exchanges.size();
}

} // namespace

// Row 6: eight processes released at once all resume one session and save to it.
BOOST_AUTO_TEST_CASE(one_writer_wins_and_the_others_are_told_who) {
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_session(dir.path(), 1);
    for (int round = 0; round < 3; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            std::vector<std::unique_ptr<child_process>> kids;
            for (int i = 0; i < 8; ++i)
                kids.push_back(std::make_unique<child_process>(
                    std::vector<std::string>{"contend", dir.path().string(), id}));
            for (auto& k : kids)
                BOOST_REQUIRE_EQUAL(k->expect_line(), "READY");
            for (auto& k : kids)
                k->send("go"); // the barrier
            std::vector<pid_t> winners;
            std::vector<std::pair<pid_t, std::string>> busy;
            for (auto& k : kids) {
                const std::string line = k->expect_line();
                BOOST_TEST_INFO("child " << k->pid() << " said: " << line);
                BOOST_REQUIRE(line.starts_with("WON ") || line.starts_with("BUSY "));
                if (line.starts_with("WON ")) {
                    winners.push_back(k->pid());
                    BOOST_TEST(line == "WON " + std::to_string(round + 2));
                } else {
                    busy.emplace_back(k->pid(), line);
                }
            }
            BOOST_REQUIRE_EQUAL(winners.size(), 1u);
            const std::string winner = std::to_string(winners[0]);
            for (const auto& [pid, line] : busy) {
                BOOST_TEST_INFO("child " << pid << " said: " << line);
                BOOST_TEST(line.starts_with("BUSY " + winner + " "));
                BOOST_TEST_INFO("child " << pid << " said: " << line);
                BOOST_TEST(line.find("session '" + id + "' is open in process " + winner) !=
                           std::string::npos);
            }
            for (auto& k : kids)
                k->close_stdin(); // the winner closes the session
            for (auto& k : kids) {
                const int status = k->wait();
                BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
            }
            BOOST_TEST(stored_count(dir.path(), id) == static_cast<std::uint64_t>(round + 2));
        }
    }
}

// Row 6: the kernel frees the lease when the holder dies; nothing to clean up.
BOOST_AUTO_TEST_CASE(the_lock_is_free_once_the_holder_is_killed) {
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_session(dir.path(), 2);
    // Another process tries to resume and save: its one line of outcome. (A process,
    // not this one: a lock that blocked instead of failing would hang only it.)
    const auto contend = [&] {
        child_process c({"contend", dir.path().string(), id});
        BOOST_REQUIRE_EQUAL(c.expect_line(), "READY");
        c.send("go");
        const std::string line = c.expect_line();
        c.close_stdin();
        const int status = c.wait();
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        return line;
    };

    child_process holder({"hold", dir.path().string(), id});
    BOOST_REQUIRE_EQUAL(holder.expect_line(), "HELD");
    const std::string refused = contend();
    const std::string pid = std::to_string(holder.pid());
    BOOST_TEST_INFO("the contender said: " << refused);
    BOOST_TEST(refused.starts_with("BUSY " + pid + " "));
    BOOST_TEST_INFO("the contender said: " << refused);
    BOOST_TEST(refused.find("session '" + id + "' is open in process " + pid) != std::string::npos);

    ::kill(holder.pid(), SIGKILL);
    const int status = holder.wait();
    BOOST_REQUIRE(WIFSIGNALED(status));
    BOOST_TEST(contend() == "WON 3");

    manager m{ds::jsonl_store{dir.path()}};
    BOOST_TEST(m.resume(id).meta.exchange_count == 3u);
    BOOST_TEST(m.save_exchange("after the kill", "saved").seq == 4u);
    BOOST_TEST(m.storage().take_diagnostics().empty()); // nothing was torn
    m.close();
    BOOST_TEST(stored_count(dir.path(), id) == 4u);
}

// Row 7: eight processes released at once each create sessions; none is lost, from
// the listing of any of them or of a fresh store.
BOOST_AUTO_TEST_CASE(simultaneous_creates_lose_no_session) {
    dexter::sessions::test::temp_dir dir;
    constexpr int per_child = 3;
    std::set<std::string> all;
    for (int round = 0; round < 4; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            std::vector<std::unique_ptr<child_process>> kids;
            for (int i = 0; i < 8; ++i)
                kids.push_back(std::make_unique<child_process>(std::vector<std::string>{
                    "create", dir.path().string(), std::to_string(per_child)}));
            for (auto& k : kids)
                BOOST_REQUIRE_EQUAL(k->expect_line(), "READY");
            for (auto& k : kids)
                k->send("go");
            const std::set<std::string> before = all;
            for (auto& k : kids) {
                std::set<std::string> mine;
                for (int i = 0; i < per_child; ++i) {
                    const std::string line = k->expect_line();
                    BOOST_TEST_INFO("child " << k->pid() << " said: " << line);
                    BOOST_REQUIRE(line.starts_with("ID "));
                    const std::string id = line.substr(3);
                    BOOST_TEST_INFO("child " << k->pid() << " created " << id);
                    BOOST_REQUIRE(all.insert(id).second); // never the same id twice
                    mine.insert(id);
                }
                const std::string list = k->expect_line();
                BOOST_TEST_INFO("child " << k->pid() << " said: " << list);
                BOOST_REQUIRE(list.starts_with("LIST"));
                std::set<std::string> listed;
                std::istringstream words(list.substr(4));
                for (std::string w; words >> w;)
                    listed.insert(w);
                // Each process lists its own sessions and every earlier round's.
                for (const auto& id : mine) {
                    BOOST_TEST_INFO("child " << k->pid() << " does not list its " << id);
                    BOOST_TEST(listed.count(id) == 1u);
                }
                for (const auto& id : before) {
                    BOOST_TEST_INFO("child " << k->pid() << " does not list " << id);
                    BOOST_TEST(listed.count(id) == 1u);
                }
            }
            for (auto& k : kids) {
                const int status = k->wait();
                BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
            }

            ds::jsonl_store fresh{dir.path()};
            std::set<std::string> stored;
            for (const auto& m : fresh.list()) {
                BOOST_TEST_INFO(m.id);
                BOOST_TEST(m.exchange_count == 1u);
                stored.insert(m.id);
            }
            BOOST_TEST((stored == all), "a fresh store lists " << stored.size() << " of "
                                                               << all.size() << " sessions");
            manager mgr{ds::jsonl_store{dir.path()}};
            BOOST_TEST(mgr.list_sessions().size() == all.size());
            // The index was rewritten by eight processes at once: none left it damaged.
            for (const auto& d : fresh.take_diagnostics())
                BOOST_ERROR("store note: " << d.reason);
            for (const auto& d : mgr.storage().take_diagnostics())
                BOOST_ERROR("store note: " << d.reason);
        }
    }
    for (const auto& id : all)
        BOOST_TEST(stored_count(dir.path(), id) == 1u);
}

// Row 16: a command spawned by the writer (an agent) must not keep the session lock
// alive after the writer is gone: every descriptor of the store is O_CLOEXEC.
BOOST_AUTO_TEST_CASE(a_spawned_command_does_not_inherit_the_lock) {
    // Orphans (the sleep, once its parent is killed) are re-parented to us, so that
    // we can reap them.
    BOOST_REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_session(dir.path(), 1);
    child_process holder({"spawn-and-hold", dir.path().string(), id});
    const std::string sleep_line = holder.expect_line();
    BOOST_REQUIRE(sleep_line.starts_with("SLEEP "));
    const pid_t sleeper = static_cast<pid_t>(std::stol(sleep_line.substr(6)));
    struct reap_sleeper {
        pid_t pid;
        ~reap_sleeper() {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } guard{sleeper};
    BOOST_REQUIRE_EQUAL(holder.expect_line(), "HELD");

    // None of the sleep's descriptors leads into the store.
    const std::string root = fs::canonical(dir.path()).string();
    for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(sleeper) + "/fd")) {
        std::error_code ec;
        const auto target = fs::read_symlink(fd.path(), ec).string();
        BOOST_TEST_INFO("the sleep has descriptor " << fd.path().filename() << " -> " << target);
        BOOST_TEST(!target.starts_with(root));
    }

    ::kill(holder.pid(), SIGKILL);
    const int status = holder.wait();
    BOOST_REQUIRE(WIFSIGNALED(status));
    BOOST_REQUIRE_EQUAL(::kill(sleeper, 0), 0); // the sleep lives on

    manager m{ds::jsonl_store{dir.path()}};
    try {
        m.resume(id);
    } catch (const ds::session_busy& e) {
        BOOST_FAIL("the lock outlived its writer: " << e.what());
    }
    BOOST_TEST(m.save_exchange("after the writer died", "saved").seq == 2u);
}

// Row 6 within one process: two store objects over one root are two writers.
BOOST_AUTO_TEST_CASE(a_second_store_object_in_the_same_process_is_refused) {
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_session(dir.path(), 1);
    ds::jsonl_store first{dir.path()};
    ds::jsonl_store second{dir.path()};
    first.open(id);
    try {
        second.open(id);
        BOOST_FAIL("a second store object opened a session the first holds");
    } catch (const ds::session_busy& e) {
        BOOST_TEST(e.holder_pid().value_or(-1) == ::getpid());
        BOOST_TEST(std::string(e.what()).find("session '" + id + "' is open in process " +
                                              std::to_string(::getpid())) != std::string::npos);
    }
    first.close(id);
    BOOST_TEST(second.open(id).exchange_count == 1u);
    second.close(id);
}
