// SPDX-License-Identifier: BSL-1.0
// detail/change_log.hpp on real files, without a store: how changes.log is opened
// (writable, read-only, refused when it is not a regular file), the shared lock that lets
// changes run side by side, the exclusive lock and snapshot that exclude them, and the
// leading newline that keeps a torn line from swallowing the next.
#include <dexter/sessions/detail/change_log.hpp>

#define BOOST_TEST_MODULE change_log
#include <boost/test/unit_test.hpp>

#include "support/child_checks.hpp"
#include "support/fd_path.hpp"
#include "support/history_files.hpp"
#include "support/store_root.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::checks;
using ds::test::contains;
using ds::test::read_bytes;
using ds::test::store_root;
using ds::test::write_bytes;

namespace {

using posix_log = ds::detail::change_log<ds::detail::posix_ops>;
using posix_lock = ds::detail::change_lock<ds::detail::posix_ops>;

// changes.log of a fresh root, opened for writing.
struct fixture {
    store_root root;
    ds::detail::posix_ops ops;
    posix_log log;
    fs::path file = root.path / "changes.log";

    fixture() { BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string())); }

    // Another opening of the same file (another store object, or another process: flock
    // locks belong to the open file description).
    posix_log another() {
        posix_log other;
        BOOST_TEST_REQUIRE(!other.open(ops, root.fd.get(), root.path.string()));
        return other;
    }
};

// Never waits for a lock: a lock held elsewhere fails with EWOULDBLOCK instead.
struct never_waits : ds::detail::posix_ops {
    int flock(int fd, int op) { return posix_ops::flock(fd, op | LOCK_NB); }
};

// The root cannot be written (EROFS): changes.log cannot be opened for writing.
struct read_only_root : ds::detail::posix_ops {
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if (std::string_view(path) == "changes.log" && (flags & O_ACCMODE) != O_RDONLY) {
            errno = EROFS;
            return -1;
        }
        return posix_ops::openat(dirfd, path, flags, mode);
    }
};

// Every write to changes.log fails (a full disk).
struct full_disk : ds::detail::posix_ops {
    int hits = 0;
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (ds::test::fd_path(fd).ends_with("/changes.log")) {
            ++hits;
            errno = ENOSPC;
            return -1;
        }
        return posix_ops::write(fd, data, n);
    }
};

// Whether a lock of kind `op` (LOCK_SH or LOCK_EX) on changes.log could be had now
// through a new open file description.
bool could_lock(const fs::path& file, int op) {
    ds::detail::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_TEST_REQUIRE(static_cast<bool>(fd));
    return ::flock(fd.get(), op | LOCK_NB) == 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(opening)

BOOST_AUTO_TEST_CASE(it_is_created_0600_and_opened_for_appending) {
    fixture f;
    BOOST_TEST(static_cast<bool>(f.log));
    BOOST_TEST(f.log.open_errno() == 0);
    BOOST_TEST(f.log.path() == f.file.string());
    BOOST_TEST(ds::test::mode_of(f.file) == 0600u);
    const int fl = ::fcntl(f.log.fd(), F_GETFL);
    BOOST_TEST((fl & O_ACCMODE) == O_RDWR);
    BOOST_TEST((fl & O_APPEND) != 0);
    f.log.require_writable(f.ops); // does not throw
}

BOOST_AUTO_TEST_CASE(it_opens_read_only_when_the_root_cannot_be_written) {
    store_root root;
    write_bytes(root.path / "changes.log", "cli/aaaa0001\n");
    read_only_root ops;
    ds::detail::change_log<read_only_root> log;
    BOOST_TEST(!log.open(ops, root.fd.get(), root.path.string()).has_value());
    BOOST_TEST_REQUIRE(static_cast<bool>(log), "opened for reading");
    BOOST_TEST(log.open_errno() == EROFS);
    BOOST_TEST((::fcntl(log.fd(), F_GETFL) & O_ACCMODE) == O_RDONLY);
    try {
        log.require_writable(ops);
        BOOST_ERROR("require_writable() passed on a read-only store");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), "read-only"), e.what());
        BOOST_TEST(contains(e.what(), log.path()), e.what());
    }
    try {
        ds::detail::change_lock<read_only_root> lock(ops, log, "cli", "bbbb0002");
        BOOST_ERROR("a change was recorded in a read-only store");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), "read-only"), e.what());
        BOOST_TEST(contains(e.what(), "bbbb0002"), e.what());
        BOOST_TEST(e.errno_value() == EROFS);
    }
    BOOST_TEST(read_bytes(root.path / "changes.log") == "cli/aaaa0001\n");
    // Snapshots still work: a read-only store lists.
    struct stat st {};
    BOOST_TEST(log.snapshot(ops, st));
    BOOST_TEST(st.st_size == 13);
}

BOOST_AUTO_TEST_CASE(a_read_only_root_without_a_log_has_none) {
    store_root root;
    read_only_root ops;
    ds::detail::change_log<read_only_root> log;
    BOOST_TEST(!log.open(ops, root.fd.get(), root.path.string()).has_value());
    BOOST_TEST(!log);
    BOOST_TEST(log.open_errno() == EROFS);
    struct stat st {};
    BOOST_TEST(!log.snapshot(ops, st));
    BOOST_TEST(!log.try_exclusive(ops));
    BOOST_CHECK_THROW(log.require_writable(ops), ds::storage_error);
    BOOST_TEST(!fs::exists(root.path / "changes.log"), "nothing was created");
}

// As root, permissions do not stop writes: the child drops to nobody over a root it
// may read but not write.
BOOST_AUTO_TEST_CASE(as_nobody_it_opens_read_only) {
    store_root root;
    if (!ds::test::can_run_as_nobody_in(root.td.path()))
        return;
    write_bytes(root.path / "changes.log", "cli/aaaa0001\n");
    fs::permissions(root.td.path(), fs::perms(0755));
    fs::permissions(root.path, fs::perms(0755));
    fs::permissions(root.path / "changes.log", fs::perms(0644));
    ds::test::run_in_child([&](checks& check) {
        if (!ds::test::become_nobody(check))
            return;
        ds::detail::posix_ops ops;
        posix_log log;
        const auto refused = log.open(ops, root.fd.get(), root.path.string());
        check(!refused.has_value(), "no note for a store that is merely read-only");
        check(static_cast<bool>(log), "changes.log is open for reading");
        check(log.open_errno() == EACCES, "open_errno() is EACCES");
        check(log && (::fcntl(log.fd(), F_GETFL) & O_ACCMODE) == O_RDONLY, "read-only");
        try {
            posix_lock lock(ops, log, "cli", "bbbb0002");
            check(false, "a change was recorded as nobody");
        } catch (const ds::storage_error& e) {
            check(contains(e.what(), "read-only"), std::string("says read-only: ") + e.what());
        }
    });
    BOOST_TEST(read_bytes(root.path / "changes.log") == "cli/aaaa0001\n");
}

BOOST_AUTO_TEST_CASE(a_log_that_is_not_a_regular_file_is_refused) {
    store_root root;
    BOOST_TEST_REQUIRE(::mkfifo((root.path / "changes.log").c_str(), 0600) == 0);
    ds::detail::posix_ops ops;
    posix_log log;
    // A FIFO would block an open for reading, or a write, forever: this returns at once.
    const auto refused = log.open(ops, root.fd.get(), root.path.string());
    BOOST_TEST_REQUIRE(refused.has_value());
    BOOST_TEST(contains(*refused, "not a regular file"), *refused);
    BOOST_TEST(contains(*refused, (root.path / "changes.log").string()), *refused);
    BOOST_TEST(!log);
    BOOST_TEST(log.open_errno() == ds::detail::not_a_regular_file);
    try {
        log.require_writable(ops);
        BOOST_ERROR("require_writable() passed with a FIFO as changes.log");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), "not a regular file"), e.what());
    }
    try {
        posix_lock lock(ops, log, "cli", "aaaa0001");
        BOOST_ERROR("a change was recorded into a FIFO");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), "not a regular file"), e.what());
        BOOST_TEST(contains(e.what(), "aaaa0001"), e.what());
    }
}

BOOST_AUTO_TEST_CASE(other_failures_to_open_are_errors) {
    store_root root;
    fs::create_directory(root.path / "changes.log"); // EISDIR for O_RDWR
    ds::detail::posix_ops ops;
    posix_log log;
    BOOST_CHECK_THROW(log.open(ops, root.fd.get(), root.path.string()), ds::storage_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(locking)

BOOST_AUTO_TEST_CASE(each_change_is_recorded_on_a_line_of_its_own) {
    fixture f;
    { posix_lock lock(f.ops, f.log, "cli", "aaaa0001"); }
    { posix_lock lock(f.ops, f.log, "work", "bbbb0002", posix_lock::exclusive); }
    BOOST_TEST(read_bytes(f.file) == "\ncli/aaaa0001\n\nwork/bbbb0002\n");
}

BOOST_AUTO_TEST_CASE(a_torn_line_cannot_swallow_the_next) {
    fixture f;
    write_bytes(f.file, "cli/aaaa0001\ncli/bbbb"); // an append cut short
    { posix_lock lock(f.ops, f.log, "cli", "cccc0003"); }
    const auto lines = ds::test::lines_of(read_bytes(f.file));
    BOOST_TEST(std::count(lines.begin(), lines.end(), "cli/cccc0003") == 1,
               "the new change is a whole line of its own");
    BOOST_TEST(std::count(lines.begin(), lines.end(), "cli/bbbbcli/cccc0003") == 0);
}

BOOST_AUTO_TEST_CASE(shared_locks_let_two_changes_proceed_side_by_side) {
    fixture f;
    never_waits ops;
    ds::detail::change_log<never_waits> a, b;
    BOOST_TEST_REQUIRE(!a.open(ops, f.root.fd.get(), f.root.path.string()));
    BOOST_TEST_REQUIRE(!b.open(ops, f.root.fd.get(), f.root.path.string()));
    ds::detail::change_lock<never_waits> first(ops, a, "cli", "aaaa0001");
    // Would throw EWOULDBLOCK if the first change excluded the second.
    ds::detail::change_lock<never_waits> second(ops, b, "cli", "bbbb0002");
    BOOST_TEST(!could_lock(f.file, LOCK_EX), "no one may take the log exclusively meanwhile");
    BOOST_TEST(!b.try_exclusive(ops));
    first.release();
    second.release();
    BOOST_TEST(could_lock(f.file, LOCK_EX), "released");
    BOOST_TEST(read_bytes(f.file) == "\ncli/aaaa0001\n\ncli/bbbb0002\n");
}

BOOST_AUTO_TEST_CASE(an_exclusive_change_excludes_every_other) {
    fixture f;
    never_waits ops;
    ds::detail::change_log<never_waits> a, b;
    BOOST_TEST_REQUIRE(!a.open(ops, f.root.fd.get(), f.root.path.string()));
    BOOST_TEST_REQUIRE(!b.open(ops, f.root.fd.get(), f.root.path.string()));
    {
        ds::detail::change_lock<never_waits> deleting(
            ops, a, "cli", "aaaa0001", ds::detail::change_lock<never_waits>::exclusive);
        try {
            ds::detail::change_lock<never_waits> append(ops, b, "cli", "bbbb0002");
            BOOST_ERROR("a change was recorded during an exclusive one");
        } catch (const ds::storage_error& e) {
            BOOST_TEST(contains(e.what(), "cannot lock changes.log"), e.what());
            BOOST_TEST(e.errno_value() == EWOULDBLOCK);
        }
        BOOST_TEST(!could_lock(f.file, LOCK_SH));
    }
    BOOST_TEST(could_lock(f.file, LOCK_SH), "released at the end of its scope");
    BOOST_TEST(read_bytes(f.file) == "\ncli/aaaa0001\n", "the refused change wrote nothing");
}

BOOST_AUTO_TEST_CASE(a_snapshot_waits_for_the_changes_in_progress) {
    fixture f;
    posix_log writer = f.another();
    std::atomic<bool> locked{false};
    std::atomic<bool> wrote{false};
    constexpr auto hold = std::chrono::milliseconds(300);
    const std::string rest = "the change itself, made under the lock\n";
    std::thread change([&] {
        posix_lock lock(f.ops, writer, "cli", "aaaa0001");
        locked = true;
        std::this_thread::sleep_for(hold);
        // What the change appends before it lets go (here to the log itself, so that the
        // snapshot's size shows whether it waited).
        wrote = ::write(writer.fd(), rest.data(), rest.size()) == static_cast<ssize_t>(rest.size());
    });
    while (!locked)
        std::this_thread::yield();
    const auto start = std::chrono::steady_clock::now();
    struct stat st {};
    const bool ok = f.log.snapshot(f.ops, st);
    const auto waited = std::chrono::steady_clock::now() - start;
    change.join();
    BOOST_TEST_REQUIRE(wrote.load());
    BOOST_TEST_REQUIRE(ok);
    BOOST_TEST(static_cast<std::size_t>(st.st_size) == ("\ncli/aaaa0001\n" + rest).size(),
               "the snapshot saw the change finished");
    BOOST_TEST(waited >= hold / 2);
    BOOST_TEST(could_lock(f.file, LOCK_EX), "the snapshot let go of its lock");
}

BOOST_AUTO_TEST_CASE(held_mode_records_under_the_callers_lock) {
    fixture f;
    posix_log other = f.another();
    BOOST_TEST_REQUIRE(f.log.try_exclusive(f.ops));
    BOOST_TEST(!other.try_exclusive(f.ops), "the first one holds it");
    { posix_lock lock(f.ops, f.log, "cli", "aaaa0001", posix_lock::held); }
    BOOST_TEST(!other.try_exclusive(f.ops), "still the caller's after the change");
    f.log.unlock(f.ops);
    BOOST_TEST(other.try_exclusive(f.ops));
    other.unlock(f.ops);
    BOOST_TEST(read_bytes(f.file) == "\ncli/aaaa0001\n");
}

BOOST_AUTO_TEST_CASE(a_failed_write_lets_go_of_the_lock) {
    store_root root;
    full_disk ops;
    ds::detail::change_log<full_disk> log;
    BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string()));
    try {
        ds::detail::change_lock<full_disk> lock(ops, log, "cli", "aaaa0001");
        BOOST_ERROR("a change was recorded on a full disk");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(e.errno_value() == ENOSPC);
        BOOST_TEST(contains(e.what(), "aaaa0001"), e.what());
    }
    BOOST_TEST(ops.hits == 1);
    BOOST_TEST(could_lock(root.path / "changes.log", LOCK_EX));
}

BOOST_AUTO_TEST_SUITE_END()
