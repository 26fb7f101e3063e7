// SPDX-License-Identifier: BSL-1.0
// jsonl_store.hpp across processes (RELIABILITY.md rows 6, 7, 16): lease, create race, fd leak.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_concurrency
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/session_manager.hpp>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;

using dexter::sessions::test::child_process;

namespace {

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

/// `n` store_child processes of `args`, started, each READY, then released at once (a
/// line on each one's stdin: the barrier).
std::vector<std::unique_ptr<child_process>>
released_together(int n, const std::vector<std::string>& args) {
    std::vector<std::unique_ptr<child_process>> kids;
    for (int i = 0; i < n; ++i)
        kids.push_back(std::make_unique<child_process>(args));
    for (auto& k : kids)
        k->expect({"READY"});
    for (auto& k : kids)
        k->send("go");
    return kids;
}

} // namespace

// Row 6: eight processes released at once all resume one session and save to it.
BOOST_AUTO_TEST_CASE(one_writer_wins_and_the_others_are_told_who) {
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_session(dir.path(), 1);
    for (int round = 0; round < 3; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            auto kids = released_together(8, {"contend", dir.path().string(), id});
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
        c.expect({"READY"});
        c.send("go");
        const std::string line = c.expect_line();
        c.close_stdin();
        const int status = c.wait();
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        return line;
    };

    child_process holder({"hold", dir.path().string(), id});
    holder.expect({"HELD"});
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
            auto kids =
                released_together(8, {"create", dir.path().string(), std::to_string(per_child)});
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
    holder.expect({"HELD"});

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
        // Not "in process <our own pid>; close it there": it is open in this one.
        BOOST_TEST(
            std::string(e.what()).find("session '" + id + "' is open elsewhere in this process") !=
            std::string::npos);
    }
    first.close(id);
    BOOST_TEST(second.open(id).exchange_count == 1u);
    second.close(id);
}
