// SPDX-License-Identifier: BSL-1.0
// jsonl_store where a list or a delete meets a session being born or opened: the list's
// clean-up of unborn sessions, a delete racing a creation, a session left without its
// first exchange, and what a damaged session costs each list.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_races
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/memory_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "support/fd_path.hpp"
#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::contains;
using ds::test::read_bytes;
using ds::test::write_bytes;

namespace {

// Runs `between` once, inside the first flock(LOCK_EX | LOCK_NB) on a history file: after
// the store has opened the file, before it holds the session's lease.
struct pause_before_lease : ds::detail::posix_ops {
    std::function<void()> between;
    int flock(int fd, int op) {
        if (between && op == (LOCK_EX | LOCK_NB) && ds::test::is_history_fd(fd))
            std::exchange(between, {})();
        return posix_ops::flock(fd, op);
    }
};

// Fails every rename into a ".deleted-*" name with EACCES (a channel directory that
// cannot be written).
struct no_rename_aside : ds::detail::posix_ops {
    int renameat(int from_dir, const char* from, int to_dir, const char* to) {
        if (std::string_view(to).starts_with(".deleted-")) {
            errno = EACCES;
            return -1;
        }
        return posix_ops::renameat(from_dir, from, to_dir, to);
    }
};

const ds::jsonl_options unsynced{ds::durability::process_crash};

// A session directory holding a valid header and the first `keep` bytes of an exchange
// record, with no newline: what a kill during a first save leaves.
fs::path plant_unborn(const fs::path& root, const std::string& id, std::size_t keep) {
    const fs::path dir = root / "cli" / id;
    fs::create_directories(dir);
    std::string record = ds::test::line_of(ds::test::make_exchange(1));
    const std::string header = R"({"type":"session","version":1,"id":")" + id +
                               R"(","created_at":"2026-01-01T00:00:00.000Z","title":"t"})"
                               "\n";
    write_bytes(dir / "history.jsonl", header + record.substr(0, keep));
    return dir / "history.jsonl";
}

std::size_t files_in(const fs::path& dir) {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it)
        ++n;
    return n;
}

} // namespace

// The list removes an unborn session only when no one holds it. An opener that opened
// the file just before the list removed it must not go on to acknowledge exchanges into
// the deleted file: it is told that the session is gone.
BOOST_AUTO_TEST_CASE(an_open_that_loses_the_race_to_an_unborn_clean_up_acknowledges_nothing) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    ds::jsonl_store{root, "cli", unsynced}; // the store's own files
    plant_unborn(root, "zzzzzzzz", 40);

    pause_before_lease seam;
    seam.between = [&] {
        ds::jsonl_store lister{root, "cli", unsynced};
        (void)lister.list(); // finds the session unborn and unheld: removes it
    };
    ds::basic_jsonl_store<pause_before_lease> opener{root, "cli", unsynced, seam};
    bool acknowledged = false;
    try {
        auto meta = opener.open("zzzzzzzz");
        ds::exchange ex = ds::test::make_exchange(1);
        opener.append(meta.id, ex);
        acknowledged = true;
    } catch (const ds::session_not_found& e) {
        BOOST_TEST_MESSAGE("refused: " << e.what());
    }
    BOOST_TEST(!fs::exists(root / "cli" / "zzzzzzzz")); // the list did remove it
    if (acknowledged) {
        // Then it must be readable, or an acknowledged exchange is lost.
        BOOST_CHECK_NO_THROW(ds::jsonl_store(root, "cli", unsynced).load("zzzzzzzz"));
        BOOST_ERROR("an exchange was acknowledged into a session the list had removed");
    }
}

// A delete and a creation of the same id at once: the delete waits for the creation to
// finish (it holds changes.log exclusively), then finds it held and refuses. Without
// that, the delete took the free lease in the instant between the creation's open and
// its lock, and the creator then saved into a deleted file.
BOOST_AUTO_TEST_CASE(a_delete_never_takes_a_session_being_created) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    ds::jsonl_store{root, "cli", unsynced};
    int ready[2], go[2]; // child -> parent: in the gap; parent -> child: close now
    BOOST_TEST_REQUIRE(::pipe(ready) == 0);
    BOOST_TEST_REQUIRE(::pipe(go) == 0);
    const pid_t pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        pause_before_lease seam;
        seam.between = [&] {
            (void)!::write(ready[1], "x", 1); // the file exists; the lease is not taken yet
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        };
        int status = 1;
        try {
            ds::basic_jsonl_store<pause_before_lease> creator{root, "cli", unsynced, seam};
            auto meta = ds::test::make_meta("race0001");
            if (creator.create(meta)) {
                ds::exchange ex = ds::test::make_exchange(1);
                creator.append(meta.id, ex);
                status = 0; // acknowledged
                // Held until the parent has tried its delete: a delete of the finished,
                // closed session would be an ordinary one, not the race under test.
                char c = 0;
                (void)!::read(go[0], &c, 1);
                creator.close(meta.id);
            }
        } catch (...) {
            status = 2;
        }
        ::_exit(status);
    }
    ::close(ready[1]);
    ::close(go[0]);
    char c = 0;
    BOOST_TEST_REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    bool deleted = false;
    try {
        ds::jsonl_store{root, "cli", unsynced}.remove("race0001");
        deleted = true;
    } catch (const ds::session_busy&) {
    } catch (const ds::session_not_found&) {
    }
    (void)!::write(go[1], "x", 1);
    ::close(go[1]);
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST_REQUIRE(WIFEXITED(status));
    const bool acknowledged = WEXITSTATUS(status) == 0;
    BOOST_TEST_INFO("deleted: " << deleted << ", acknowledged: " << acknowledged);
    if (acknowledged) {
        BOOST_TEST(!deleted);
        const auto loaded = ds::jsonl_store(root, "cli", unsynced).load("race0001");
        BOOST_TEST(loaded.exchanges.size() == 1u);
    }
}

// A list that cannot finish cleaning up an unborn session (its directory cannot be
// renamed) leaves no copy of its bytes behind, however often it is tried.
BOOST_AUTO_TEST_CASE(a_failed_unborn_clean_up_leaves_no_copies) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    ds::jsonl_store{root, "cli", unsynced};
    const fs::path hist = plant_unborn(root, "yyyyyyyy", 300);
    const std::string bytes = read_bytes(hist);
    for (int i = 0; i < 3; ++i) {
        ds::basic_jsonl_store<no_rename_aside> store{root, "cli", unsynced};
        (void)store.list();
        bool reported = false;
        for (const auto& d : store.take_diagnostics())
            reported = reported || contains(d.reason, "could not be cleaned up");
        BOOST_TEST(reported);
    }
    BOOST_TEST(files_in(root / "quarantine") == 0u);
    BOOST_TEST(read_bytes(hist) == bytes);
    // With the directory writable again, the clean-up goes through, once.
    (void)ds::jsonl_store(root, "cli", unsynced).list();
    BOOST_TEST(!fs::exists(root / "cli" / "yyyyyyyy"));
    BOOST_TEST(files_in(root / "quarantine") == 1u);
}

// A session with a torn tail that no one repairs (a read-only store, or no one opens it)
// costs a checked list, or a page, one fstatat, like any other: the index is not
// rewritten at every list.
BOOST_AUTO_TEST_CASE(a_torn_session_does_not_make_every_list_rewrite_the_index) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const auto meta = ds::test::save_session(root, "torn0001", 3);
    {
        std::ofstream out(root / "cli" / "torn0001" / "history.jsonl", std::ios::app);
        out << R"({"type":"exchange","seq":4,"query":"cut sh)";
    }
    ds::jsonl_store store{root, "cli", unsynced};
    (void)store.list();
    (void)store.list();
    struct stat before {};
    BOOST_TEST_REQUIRE(::stat((root / "index.json").c_str(), &before) == 0);
    ds::jsonl_options checked = unsynced;
    checked.list_checks_histories = true;
    for (int i = 0; i < 3; ++i) {
        const auto listed = ds::jsonl_store(root, "cli", checked).list();
        BOOST_TEST_REQUIRE(listed.size() == 1u);
        BOOST_TEST(listed[0].exchange_count == meta.exchange_count);
        const auto page = ds::jsonl_store(root, "cli", unsynced).list_page({}).sessions;
        BOOST_TEST_REQUIRE(page.size() == 1u);
        BOOST_TEST(page[0].exchange_count == meta.exchange_count);
    }
    struct stat after {};
    BOOST_TEST_REQUIRE(::stat((root / "index.json").c_str(), &after) == 0);
    BOOST_TEST(after.st_ino == before.st_ino);
}

// A kill between a session's creation and its first exchange leaves a session with no
// exchange: invisible in the manager's list and impossible to resume. The next
// list_sessions() removes it, in every store; one whose first save is in flight (its
// lease held) stays.
// `make()` gives a new handle (another writer) on one store.
template <class Make>
void check_abandoned_sessions_are_removed(Make make) {
    using store_type = decltype(make());
    using manager = ds::session_manager<store_type, ds::manual_clock, ds::sequential_ids>;
    {
        auto crashed = make(); // a writer that created a session and died before saving
        BOOST_TEST_REQUIRE(crashed.create(ds::test::make_meta("left0001")));
        crashed.close("left0001");
    }
    auto in_flight = make();
    BOOST_TEST_REQUIRE(in_flight.create(ds::test::make_meta("busy0001"))); // held
    manager m{make(), ds::manual_clock{}, ds::sequential_ids{100}};
    m.start_new();
    m.save_exchange("q", "a");
    const auto listed = m.list_sessions();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(listed[0].id == m.current()->id);
    BOOST_TEST(!m.storage().find("left0001").has_value());
    BOOST_TEST(m.storage().find("busy0001").has_value());
    in_flight.close("busy0001");
}

BOOST_AUTO_TEST_CASE(a_session_left_without_its_first_exchange_is_removed_by_the_next_list) {
    ds::test::temp_dir td;
    check_abandoned_sessions_are_removed([&] {
        return ds::jsonl_store{td / "store", "cli", unsynced};
    });
    ds::memory_store memory;
    check_abandoned_sessions_are_removed([&] { return memory; });
}
