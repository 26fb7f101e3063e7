// SPDX-License-Identifier: BSL-1.0
// detail/session_lease.hpp on real files, without a store: a session's directory and
// history opened (only ENOENT is "no such session"; links refused), the one-writer lease
// and its holder, a leased history that is no longer the session's, and the writer's
// append with its failures (a failed sync cuts the record off and poisons the writer).
#include <dexter/sessions/detail/session_lease.hpp>

#define BOOST_TEST_MODULE session_lease
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/store_root.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::contains;
using ds::test::read_bytes;
using ds::test::store_root;
using ds::test::write_bytes;

namespace {

const std::string channel = "cli";

// fdatasync fails with EIO when asked to.
struct sync_fails : ds::detail::posix_ops {
    bool fail = false;
    int fdatasync(int fd) {
        if (fail) {
            errno = EIO;
            return -1;
        }
        return posix_ops::fdatasync(fd);
    }
};

// A root with its channel directory and changes.log.
struct fixture {
    store_root root;
    sync_fails ops;
    ds::detail::unique_fd channel_fd = store_root::open_directory(root.path / channel);
    ds::detail::change_log<sync_fails> log;

    fixture() { BOOST_TEST_REQUIRE(!log.open(ops, root.fd.get(), root.path.string())); }

    ds::detail::session_place<sync_fails> place() {
        return {ops, channel_fd.get(), root.path, (root.path / channel).string()};
    }

    fs::path history(const std::string& id) const {
        return root.path / channel / id / "history.jsonl";
    }

    void write_session(const std::string& id, const std::string& text = "line 1\n") {
        fs::create_directories(root.path / channel / id);
        write_bytes(history(id), text);
    }
};

bool what_has(const std::exception& e, const std::string& part) {
    return contains(e.what(), part);
}

} // namespace

BOOST_AUTO_TEST_CASE(only_a_missing_session_is_not_found) {
    fixture f;
    BOOST_CHECK_THROW(ds::detail::open_session_dir(f.place(), "aaaa0001"), ds::session_not_found);
    fs::create_directories(f.root.path / "elsewhere");
    fs::create_directory_symlink(f.root.path / "elsewhere", f.root.path / channel / "aaaa0002");
    BOOST_CHECK_EXCEPTION(ds::detail::open_session_dir(f.place(), "aaaa0002"), ds::storage_error,
                          [](const ds::storage_error& e) {
                              return what_has(e, "is not a directory") &&
                                     !dynamic_cast<const ds::session_not_found*>(&e);
                          });
    fs::create_directories(f.root.path / channel / "aaaa0003");
    auto dir = ds::detail::open_session_dir(f.place(), "aaaa0003");
    BOOST_CHECK_THROW(ds::detail::open_history(f.place(), dir.get(), "aaaa0003", O_RDONLY, "x"),
                      ds::session_not_found);
    fs::create_directories(f.root.path / channel / "aaaa0003" / "history.jsonl");
    BOOST_CHECK_EXCEPTION(
        ds::detail::open_history(f.place(), dir.get(), "aaaa0003", O_RDONLY, "cannot open it"),
        ds::storage_error, [&](const ds::storage_error& e) {
            return what_has(e, "cannot open it") && what_has(e, f.history("aaaa0003").string()) &&
                   !dynamic_cast<const ds::session_not_found*>(&e);
        });
}

BOOST_AUTO_TEST_CASE(a_second_lease_is_refused_as_busy) {
    fixture f;
    f.write_session("aaaa0001");
    auto first = ds::detail::lease_session(f.place(), "aaaa0001", O_RDWR | O_APPEND, "x");
    BOOST_TEST(first.dir.get() >= 0);
    BOOST_TEST(first.file.get() >= 0);
    try {
        ds::detail::lease_session(f.place(), "aaaa0001", O_RDONLY, "x");
        BOOST_FAIL("a second lease was granted");
    } catch (const ds::session_busy& e) {
        BOOST_TEST(e.id() == "aaaa0001");
        if (e.holder_pid())
            BOOST_TEST(*e.holder_pid() == static_cast<long>(::getpid()));
    }
    first = {};
    BOOST_CHECK_NO_THROW(ds::detail::lease_session(f.place(), "aaaa0001", O_RDONLY, "x"));
}

BOOST_AUTO_TEST_CASE(a_lease_on_a_history_that_was_replaced_is_not_kept) {
    fixture f;
    f.write_session("aaaa0001");
    auto dir = ds::detail::open_session_dir(f.place(), "aaaa0001");
    auto file = ds::detail::open_history(f.place(), dir.get(), "aaaa0001", O_RDONLY, "x");
    ds::detail::take_lease(f.place(), "aaaa0001", file.get());
    BOOST_CHECK_NO_THROW(ds::detail::require_still_linked(f.place(), "aaaa0001", file.get()));
    fs::remove(f.history("aaaa0001"));
    write_bytes(f.history("aaaa0001"), "line 1\n"); // made anew: another inode
    BOOST_CHECK_THROW(ds::detail::require_still_linked(f.place(), "aaaa0001", file.get()),
                      ds::session_not_found);
    fs::remove_all(f.root.path / channel / "aaaa0001");
    BOOST_CHECK_THROW(ds::detail::require_still_linked(f.place(), "aaaa0001", file.get()),
                      ds::session_not_found);
}

BOOST_AUTO_TEST_CASE(an_appended_record_is_counted_and_its_change_recorded) {
    fixture f;
    f.write_session("aaaa0001", "line 1\n");
    auto w = ds::detail::lease_session(f.place(), "aaaa0001", O_RDWR | O_APPEND, "x");
    w.size = 7;
    w.lines = 1;
    ds::detail::append_record(f.place(), f.log, channel, "aaaa0001", w, "line 2\n", true,
                              "exchange 1");
    BOOST_TEST(read_bytes(f.history("aaaa0001")) == "line 1\nline 2\n");
    BOOST_TEST(w.size == 14u);
    BOOST_TEST(w.lines == 2u);
    BOOST_TEST(!w.poisoned);
    BOOST_TEST(contains(read_bytes(f.root.path / "changes.log"), "cli/aaaa0001\n"));
}

BOOST_AUTO_TEST_CASE(a_failed_sync_cuts_the_record_off_and_poisons_the_writer) {
    fixture f;
    f.write_session("aaaa0001", "line 1\n");
    auto w = ds::detail::lease_session(f.place(), "aaaa0001", O_RDWR | O_APPEND, "x");
    w.size = 7;
    w.lines = 1;
    f.ops.fail = true;
    BOOST_CHECK_EXCEPTION(ds::detail::append_record(f.place(), f.log, channel, "aaaa0001", w,
                                                    "line 2\n", true, "exchange 1"),
                          ds::storage_error, [](const ds::storage_error& e) {
                              return what_has(e, "cannot sync exchange 1 of session 'aaaa0001' "
                                                 "to disk; it is not saved");
                          });
    BOOST_TEST(w.poisoned);
    BOOST_TEST(w.size == 7u);
    BOOST_TEST(w.lines == 1u);
    BOOST_TEST(read_bytes(f.history("aaaa0001")) == "line 1\n", "the record was cut off");
    // Without a sync asked for, fdatasync is not called.
    w.poisoned = false;
    ds::detail::append_record(f.place(), f.log, channel, "aaaa0001", w, "line 2\n", false,
                              "exchange 1");
    BOOST_TEST(read_bytes(f.history("aaaa0001")) == "line 1\nline 2\n");
    BOOST_TEST(w.size == 14u);
}
