// SPDX-License-Identifier: BSL-1.0
// jsonl_store on the fault paths of issue 10: a system call failing through the seam
// (open for the lock, rollback, directory listing, mkdir), a stray header line, an
// unreadable session (seam and a real one, as nobody), and what resume and busy report.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_fault_paths
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/session_manager.hpp>

#include <boost/json/parse.hpp>

#include "support/child_checks.hpp"
#include "support/fd_path.hpp"
#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using ds::test::become_nobody;
using ds::test::can_run_as_nobody_in;
using ds::test::checks;
using ds::test::contains;
using ds::test::fd_path;
using ds::test::history;
using ds::test::is_history_fd;
using ds::test::joined;
using ds::test::lines_of;
using ds::test::mentions;
using ds::test::range;
using ds::test::read_bytes;
using ds::test::run_in_child;
using ds::test::seam_manager;
using ds::test::seqs;
using ds::test::show;
using ds::test::write_bytes;

namespace {

template <class Ops = ds::detail::posix_ops>
seam_manager<Ops> make_manager(const fs::path& root, Ops ops = {}, std::uint32_t first_id = 1) {
    return seam_manager<Ops>{ds::basic_jsonl_store<Ops>{root, "cli", {}, std::move(ops)},
                             ds::manual_clock{}, ds::sequential_ids{first_id}};
}

// A session of `n` exchanges, saved by a manager whose ids start at `first_id` and
// closed again; returns its id.
std::string new_session(const fs::path& root, std::uint32_t first_id, int n) {
    auto m = make_manager(root, ds::detail::posix_ops{}, first_id);
    m.start_new();
    for (int i = 1; i <= n; ++i)
        m.save_exchange("question " + std::to_string(i), "answer " + std::to_string(i));
    return m.current()->id;
}

std::set<std::string> ids_of(const std::vector<ds::session_meta>& v) {
    std::set<std::string> out;
    for (const auto& m : v)
        out.insert(m.id);
    return out;
}

bool includes(const std::set<std::string>& all, const std::set<std::string>& part) {
    return std::includes(all.begin(), all.end(), part.begin(), part.end());
}

std::string show(const std::set<std::string>& ids) {
    std::string out = "{";
    for (const auto& id : ids)
        out += (out.size() > 1 ? " " : "") + id;
    return out + "}";
}

// The session ids index.json holds for channel "cli" (none when it cannot be read).
std::set<std::string> indexed_ids(const fs::path& root) {
    std::set<std::string> out;
    std::error_code ec;
    if (!fs::exists(root / "index.json", ec))
        return out;
    boost::system::error_code jec;
    const auto v = boost::json::parse(read_bytes(root / "index.json"), jec);
    if (jec || !v.is_object())
        return out;
    const auto* ch = v.as_object().if_contains("channels");
    const auto* cli = ch && ch->is_object() ? ch->as_object().if_contains("cli") : nullptr;
    const auto* s = cli && cli->is_object() ? cli->as_object().if_contains("sessions") : nullptr;
    if (s && s->is_object())
        for (const auto& kv : s->as_object())
            out.insert(std::string(kv.key()));
    return out;
}

// --- seams ------------------------------------------------------------------------

// Fails the next `times` opens of a history.jsonl for reading (the lock remove() takes).
struct failing_lock_open : ds::detail::posix_ops {
    int err = EACCES;
    int times = 0;
    int hits = 0;
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if (times > 0 && std::string_view(path) == "history.jsonl" &&
            (flags & O_ACCMODE) == O_RDONLY) {
            --times;
            ++hits;
            errno = err;
            return -1;
        }
        return posix_ops::openat(dirfd, path, flags, mode);
    }
};

// Once armed: the next history write writes half its buffer, later ones fail with
// ENOSPC, and cutting a history file back (ftruncate) fails with EIO. Counts history
// writes, armed or not.
struct torn_and_stuck : ds::detail::posix_ops {
    bool armed = false;
    int history_writes = 0;
    int armed_writes = 0;
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (!is_history_fd(fd))
            return posix_ops::write(fd, data, n);
        ++history_writes;
        if (!armed)
            return posix_ops::write(fd, data, n);
        if (armed_writes++ == 0)
            return posix_ops::write(fd, data, n / 2);
        errno = ENOSPC;
        return -1;
    }
    int ftruncate(int fd, off_t size) {
        if (armed && is_history_fd(fd)) {
            errno = EIO;
            return -1;
        }
        return posix_ops::ftruncate(fd, size);
    }
};

// Once armed, every directory listing fails with `err` (as opendir(".") fails with EMFILE
// when the process is out of descriptors).
struct failing_listing : ds::detail::posix_ops {
    bool armed = false;
    int err = EMFILE;
    int hits = 0;
    int list_directory(int dirfd, std::vector<ds::detail::dir_entry>& out) {
        if (armed) {
            ++hits;
            errno = err;
            return -1;
        }
        return posix_ops::list_directory(dirfd, out);
    }
};

// The channel directory "cli" cannot be created (a read-only or foreign root).
struct channel_mkdir_fails : ds::detail::posix_ops {
    int err = EACCES;
    int hits = 0;
    int mkdirat(int dirfd, const char* path, mode_t mode) {
        if (std::string_view(path) == "cli") {
            ++hits;
            errno = err;
            return -1;
        }
        return posix_ops::mkdirat(dirfd, path, mode);
    }
};

// The history file of session `id` cannot be opened: EACCES, as for a file the user
// may not read. Every other file opens as usual.
struct unreadable_history : ds::detail::posix_ops {
    std::string id;
    int hits = 0;
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if (std::string_view(path) == "history.jsonl" && fd_path(dirfd).ends_with("/cli/" + id)) {
            ++hits;
            errno = EACCES;
            return -1;
        }
        return posix_ops::openat(dirfd, path, flags, mode);
    }
};

} // namespace

// ---------------------------------------------------------------------------------
// Item 1: remove() must not delete a session it could not lock.

BOOST_AUTO_TEST_CASE(remove_refuses_when_the_lock_file_cannot_be_opened) {
    for (const int err : {EACCES, EMFILE}) {
        BOOST_TEST_CONTEXT("open of history.jsonl fails with " << std::strerror(err)) {
            ds::test::temp_dir td;
            const fs::path root = td / "store";
            auto a = make_manager(root); // store A holds the session open
            a.start_new();
            a.save_exchange("question 1", "answer 1");
            const std::string id = a.current()->id;

            ds::basic_jsonl_store<failing_lock_open> b{root, "cli", {}, failing_lock_open{}};
            b.ops().err = err;
            b.ops().times = 1;
            try {
                b.remove(id);
                BOOST_ERROR("remove() deleted a session whose lock file it could not open");
            } catch (const ds::session_not_found& e) {
                BOOST_ERROR("remove() said the session does not exist: " << e.what());
            } catch (const ds::storage_error& e) {
                BOOST_TEST_MESSAGE("remove error: " << e.what());
                BOOST_TEST(contains(e.what(), std::strerror(err)), e.what());
            }
            BOOST_TEST(b.ops().hits == 1, "setup: the open for the lock was failed");
            BOOST_TEST(fs::is_directory(root / "cli" / id), "the session directory is still there");

            BOOST_TEST(a.save_exchange("question 2", "answer 2").seq == 2u);
            try {
                const auto loaded = ds::jsonl_store{root}.load(id);
                BOOST_TEST(seqs(loaded) == range(1, 2), boost::test_tools::per_element());
            } catch (const ds::error& e) {
                BOOST_ERROR("a fresh store cannot load the session A still holds: " << e.what());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Item 2: a writer whose rollback (ftruncate) failed must be poisoned, so the next
// acknowledged record is never glued onto the fragment.

BOOST_AUTO_TEST_CASE(a_failed_rollback_poisons_the_writer_until_it_is_reopened) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    auto m = make_manager(root, torn_and_stuck{});
    m.start_new();
    std::vector<std::string> acked;
    for (const std::string q : {"question 1", "question 2"}) {
        m.save_exchange(q, "answer");
        acked.push_back(q);
    }
    const std::string id = m.current()->id;
    const fs::path hist = history(root, id);
    const auto size_before = fs::file_size(hist);

    m.storage().ops().armed = true;
    BOOST_CHECK_THROW(m.save_exchange("question 3 (disk full)", "answer"), ds::storage_error);
    m.storage().ops().armed = false; // space again, and ftruncate works again
    const std::string fragment = read_bytes(hist).substr(size_before);
    BOOST_TEST_REQUIRE(!fragment.empty(), "setup: the short write left a fragment behind");

    m.storage().ops().history_writes = 0;
    try {
        m.save_exchange("question 3 (after the failed rollback)", "answer");
        acked.push_back("question 3 (after the failed rollback)");
        BOOST_ERROR("a save after a failed rollback was acknowledged (glued onto the fragment)");
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("save after the failed rollback: " << e.what());
    }
    BOOST_TEST(m.storage().ops().history_writes == 0, "the poisoned writer wrote "
                                                          << m.storage().ops().history_writes
                                                          << " time(s) to the history");

    // Closed and resumed: the tail is repaired, the fragment kept in quarantine.
    m.close();
    m.resume(id);
    bool fragment_quarantined = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / "quarantine", ec))
        fragment_quarantined = fragment_quarantined || read_bytes(e.path()) == fragment;
    BOOST_TEST(fragment_quarantined,
               "the torn fragment (" << fragment.size() << " bytes) is in quarantine");
    m.save_exchange("question after resume", "answer");
    acked.push_back("question after resume");

    const auto loaded = ds::jsonl_store{root}.load(id);
    BOOST_TEST(seqs(loaded) == range(1, loaded.exchanges.size()), boost::test_tools::per_element());
    for (const auto& q : acked)
        BOOST_TEST(std::any_of(loaded.exchanges.begin(), loaded.exchanges.end(),
                               [&](const ds::exchange& ex) { return ex.query == q; }),
                   "acknowledged exchange '" << q << "' is in the history");
    BOOST_TEST(loaded.diagnostics.empty(), show(loaded.diagnostics));
}

// ---------------------------------------------------------------------------------
// Item 3: a failed directory listing must never be taken for an empty channel, nor
// written back into index.json.

BOOST_AUTO_TEST_CASE(a_failed_directory_listing_hides_no_session) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    std::set<std::string> known{new_session(root, 1, 1), new_session(root, 2, 1)};

    ds::basic_jsonl_store<failing_listing> store{root, "cli", {}, failing_listing{}};
    BOOST_TEST_REQUIRE(ids_of(store.list()) == known);
    const auto indexed_before = indexed_ids(root);
    BOOST_TEST_REQUIRE(indexed_before == known, "setup: index.json holds " << show(indexed_before));

    // The channel directory changes behind the store's back: its next list reconciles it.
    const std::string added = new_session(root, 100, 1);

    store.ops().armed = true;
    try {
        const auto listed = ids_of(store.list());
        BOOST_TEST(includes(listed, known), "list() with a failed listing shows " << show(listed));
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("list() with a failed listing threw: " << e.what());
    }
    BOOST_TEST(store.ops().hits > 0, "setup: a directory listing was failed");
    store.ops().armed = false;

    const auto indexed_after = indexed_ids(root);
    BOOST_TEST(includes(indexed_after, known),
               "index.json was rewritten with " << show(indexed_after));
    known.insert(added);
    const auto fresh = ids_of(ds::jsonl_store{root}.list());
    BOOST_TEST(fresh == known, "a fresh store lists " << show(fresh));
    const auto again = ids_of(store.list());
    BOOST_TEST(again == known, "the same store, its fault cleared, lists " << show(again));
}

// ---------------------------------------------------------------------------------
// Item 4: only line 1 decides the file's version; a later session record is a bad line.

BOOST_AUTO_TEST_CASE(a_stray_session_line_is_skipped_and_reported) {
    for (const std::size_t at : {std::size_t{1}, std::size_t{2}}) { // insert before line at+1
        BOOST_TEST_CONTEXT("stray session line at line " << at + 1) {
            ds::test::temp_dir td;
            const fs::path root = td / "store";
            const std::string id = new_session(root, 1, 3);
            auto lines = lines_of(read_bytes(history(root, id)));
            BOOST_TEST_REQUIRE(lines.size() == 4u);
            lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at),
                         R"({"type":"session","version":2})");
            write_bytes(history(root, id), joined(lines));

            try {
                const auto loaded = ds::jsonl_store{root}.load(id);
                BOOST_TEST(seqs(loaded) == range(1, 3), boost::test_tools::per_element());
                BOOST_TEST(std::any_of(loaded.diagnostics.begin(), loaded.diagnostics.end(),
                                       [&](const ds::diagnostic& d) { return d.line == at + 1; }),
                           "the stray line is reported: " << show(loaded.diagnostics));
            } catch (const ds::error& e) {
                BOOST_ERROR("load() failed: " << e.what());
            }
            try {
                ds::jsonl_store store{root};
                const auto found = store.find(id);
                BOOST_TEST(found.has_value(), "find() returns the session");
                BOOST_TEST(ids_of(store.list()).count(id) == 1u, "list() includes the session");
            } catch (const ds::error& e) {
                BOOST_ERROR("find() or list() failed: " << e.what());
            }
            try {
                auto m = make_manager(root, ds::detail::posix_ops{}, 50);
                m.resume(id);
                BOOST_TEST(m.save_exchange("question 4", "answer 4").seq == 4u);
                BOOST_TEST(seqs(ds::jsonl_store{root}.load(id)) == range(1, 4),
                           boost::test_tools::per_element());
            } catch (const ds::error& e) {
                BOOST_ERROR("the session cannot be resumed and appended to: " << e.what());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Item 17: the torn tail repaired at resume() is in the diagnostics resume() returns.

BOOST_AUTO_TEST_CASE(resume_reports_the_torn_tail_it_repaired) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const std::string id = new_session(root, 1, 2);
    write_bytes(history(root, id),
                read_bytes(history(root, id)) + R"({"type":"exchange","seq":3,"que)");

    auto m = make_manager(root, ds::detail::posix_ops{}, 50);
    const auto loaded = m.resume(id);
    BOOST_TEST(seqs(loaded) == range(1, 2), boost::test_tools::per_element());
    BOOST_TEST((mentions(loaded.diagnostics, "quarantine") ||
                mentions(loaded.diagnostics, "incomplete") || mentions(loaded.diagnostics, "tail")),
               "resume()'s diagnostics: " << show(loaded.diagnostics));
}

// ---------------------------------------------------------------------------------
// Item 18: a session held by another store object of this very process.

BOOST_AUTO_TEST_CASE(busy_in_this_process_says_so) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    auto a = make_manager(root);
    a.start_new();
    a.save_exchange("question 1", "answer 1");
    const std::string id = a.current()->id;

    ds::jsonl_store b{root};
    try {
        b.open(id);
        BOOST_ERROR("a second store object opened a session the first one holds");
    } catch (const ds::session_busy& e) {
        const std::string what = e.what();
        BOOST_TEST_MESSAGE("busy: " << what);
        BOOST_TEST(contains(what, "this process"), what);
        BOOST_TEST(!contains(what, "in process " + std::to_string(::getpid())), what);
    }
}

// ---------------------------------------------------------------------------------
// Item 19: a channel directory that cannot be created is reported with the reason.

BOOST_AUTO_TEST_CASE(a_channel_that_cannot_be_created_reports_why) {
    for (const int err : {EACCES, EROFS}) {
        BOOST_TEST_CONTEXT("mkdir of the channel fails with " << std::strerror(err)) {
            ds::test::temp_dir td;
            const fs::path root = td / "store";
            fs::create_directory(root); // an existing, empty root
            const auto expect_reason = [&](const std::string& op, auto&& f) {
                channel_mkdir_fails ops;
                ops.err = err;
                try {
                    f(ops);
                    BOOST_ERROR(op << " succeeded without a channel directory");
                } catch (const ds::storage_error& e) {
                    BOOST_TEST_MESSAGE(op << ": " << e.what());
                    BOOST_TEST(contains(e.what(), std::strerror(err)), op << ": " << e.what());
                    BOOST_TEST(!contains(e.what(), std::strerror(ENOENT)), op << ": " << e.what());
                }
            };
            expect_reason("check_writable()", [&](channel_mkdir_fails& ops) {
                ds::basic_jsonl_store<channel_mkdir_fails> store{root, "cli", {}, ops};
                store.check_writable();
            });
            expect_reason("save_exchange()", [&](channel_mkdir_fails& ops) {
                auto m = make_manager(root, ops);
                m.start_new();
                m.save_exchange("question 1", "answer 1");
            });
            BOOST_TEST(!fs::exists(root / "cli"));
        }
    }
}

// ---------------------------------------------------------------------------------
// Item 10: an unreadable session is an error naming the path, never "no session", and
// the list warns about it.

BOOST_AUTO_TEST_CASE(an_unreadable_session_is_an_error_not_absent) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const std::string readable = new_session(root, 1, 1);
    const std::string locked = new_session(root, 2, 1);

    unreadable_history ops;
    ops.id = locked;
    ds::basic_jsonl_store<unreadable_history> store{root, "cli", {}, ops};
    const auto listed = ids_of(store.list());
    BOOST_TEST(listed.count(readable) == 1u, show(listed));
    const auto notes = store.take_diagnostics();
    BOOST_TEST(mentions(notes, locked), "list() warns about '" << locked << "': " << show(notes));
    try {
        BOOST_TEST(store.find(locked).has_value(), "find() said there is no such session");
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("find: " << e.what());
    }
    const std::string dir = (root / "cli" / locked).string();
    for (const std::string op : {"load", "open"}) {
        try {
            if (op == "load")
                store.load(locked);
            else
                store.open(locked);
            BOOST_ERROR(op << "() of an unreadable session succeeded");
        } catch (const ds::session_not_found& e) {
            BOOST_ERROR(op << "() said there is no such session: " << e.what());
        } catch (const ds::storage_error& e) {
            BOOST_TEST(contains(e.what(), "Permission denied"), op << ": " << e.what());
            BOOST_TEST(contains(e.what(), dir), op << ": " << e.what());
        }
    }
    BOOST_TEST(store.ops().hits > 0, "setup: the history was made unreadable");

    // Nothing the faulty store did hides the session from a healthy one.
    const auto fresh = ids_of(ds::jsonl_store{root}.list());
    BOOST_TEST(fresh == (std::set<std::string>{readable, locked}),
               "a fresh store lists " << show(fresh));
}

// The same with real permissions: a session directory root keeps to itself, read by
// nobody (65534).
BOOST_AUTO_TEST_CASE(an_unreadable_session_as_nobody_is_an_error_not_absent) {
    ds::test::temp_dir td;
    if (!can_run_as_nobody_in(td.path()))
        return;
    const fs::path root = td / "store";
    const std::string readable = new_session(root, 1, 1);
    const std::string locked = new_session(root, 2, 1);
    fs::permissions(td.path(), fs::perms(0755));
    for (const auto& e : fs::recursive_directory_iterator(root))
        fs::permissions(e.path(), e.is_directory() ? fs::perms(0755) : fs::perms(0644));
    fs::permissions(root, fs::perms(0755));
    fs::permissions(root / "cli" / locked, fs::perms(0700)); // owned by root

    run_in_child([&](checks& check) {
        if (!become_nobody(check))
            return;
        ds::jsonl_store store{root};
        const auto listed = ids_of(store.list());
        check(listed.count(readable) == 1, "list() shows the readable session: " + show(listed));
        const auto notes = store.take_diagnostics();
        check(mentions(notes, locked), "list() warns about '" + locked + "': " + show(notes));
        try {
            check(store.find(locked).has_value(), "find() said there is no such session");
        } catch (const ds::storage_error& e) {
            check.info(std::string("find: ") + e.what());
        }
        try {
            store.load(locked);
            check(false, "load() of an unreadable session succeeded");
        } catch (const ds::session_not_found& e) {
            check(false, std::string("load() said there is no such session: ") + e.what());
        } catch (const ds::storage_error& e) {
            check.info(std::string("load: ") + e.what());
            check(contains(e.what(), "Permission denied"), std::string("load: ") + e.what());
        }
    });
}

// ---------------------------------------------------------------------------------
// Item 12: a tail repair whose copy to quarantine fails (a full disk) leaves no empty
// or partial file there, and changes nothing in the history.

namespace {

// Every write() to a file in the quarantine directory fails with ENOSPC while armed.
struct quarantine_full : ds::detail::posix_ops {
    bool armed = true;
    int hits = 0;
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (armed && contains(fd_path(fd), "/quarantine/")) {
            ++hits;
            errno = ENOSPC;
            return -1;
        }
        return posix_ops::write(fd, data, n);
    }
};

std::vector<fs::path> files_in(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        out.push_back(e.path());
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_quarantine_copy_that_fails_leaves_no_file_behind) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const std::string id = new_session(root, 1, 2);
    const std::string torn = R"({"type":"exchange","seq":3,"query":"half a rec)";
    const std::string damaged = read_bytes(history(root, id)) + torn;
    write_bytes(history(root, id), damaged);

    for (int attempt = 1; attempt <= 3; ++attempt) {
        BOOST_TEST_CONTEXT("attempt " << attempt) {
            ds::basic_jsonl_store<quarantine_full> store{root, "cli", {}, quarantine_full{}};
            BOOST_CHECK_THROW(store.open(id), ds::storage_error);
            BOOST_TEST(store.ops().hits > 0); // the fault fired
            const auto left = files_in(root / "quarantine");
            BOOST_TEST(left.empty(), left.size() << " file(s) left in quarantine, the first "
                                                 << (left.empty() ? "" : left[0].string()));
            BOOST_TEST(read_bytes(history(root, id)) == damaged); // nothing cut
        }
    }
    // Space again: the repair goes through, and the fragment is kept byte for byte.
    ds::jsonl_store store{root};
    BOOST_TEST(store.open(id).exchange_count == 2u);
    const auto kept = files_in(root / "quarantine");
    BOOST_TEST_REQUIRE(kept.size() == 1u);
    BOOST_TEST(read_bytes(kept[0]) == torn);
}

// ---------------------------------------------------------------------------------
// Items 15 and 20: times the format cannot hold are refused by the manager before any
// store is touched, the same for every store; times before 1970 are kept as they are;
// and every error is a dexter::sessions::error.

namespace {

// A clock counting in milliseconds, as a host's may: it reaches the year 9999 without
// passing through system_clock's nanoseconds (which wrap after 2262).
struct millisecond_clock {
    using time_point = std::chrono::sys_time<std::chrono::milliseconds>;
    time_point t;
    time_point now() const noexcept { return t; }
};

constexpr millisecond_clock::time_point date_at(int y, unsigned m, unsigned d) {
    using namespace std::chrono;
    return time_point_cast<milliseconds>(sys_days{year{y} / month{m} / day{d}});
}

template <class Store>
using clocked_manager = ds::session_manager<Store, millisecond_clock, ds::sequential_ids>;

// The exchanges, and the session's dates as the store lists them, after saving two
// exchanges at `first` and `second`.
template <class Store>
std::pair<ds::loaded_session, ds::session_meta> save_two_at(Store store, ds::time_point first,
                                                            ds::time_point second) {
    clocked_manager<Store> m{std::move(store), millisecond_clock{first}};
    m.start_new();
    m.save_exchange("q1", "a1");
    m.clock().t = second;
    m.save_exchange("q2", "a2");
    const std::string id = m.current()->id;
    m.close();
    auto loaded = m.storage().load(id, ds::all_exchanges);
    for (const auto& meta : m.storage().list())
        if (meta.id == id)
            return {std::move(loaded), meta};
    BOOST_FAIL("the session is not listed");
    return {};
}

} // namespace

BOOST_AUTO_TEST_CASE(the_last_instant_of_9999_is_stored_exactly_in_every_store) {
    const auto last = date_at(10000, 1, 1) - std::chrono::milliseconds(1);
    ds::test::temp_dir td;
    const auto file =
        save_two_at(ds::jsonl_store{td / "store"}, last - std::chrono::hours(1), last);
    const auto memory = save_two_at(ds::memory_store{}, last - std::chrono::hours(1), last);
    for (const auto& [loaded, meta] : {file, memory}) {
        BOOST_TEST_REQUIRE(loaded.exchanges.size() == 2u);
        BOOST_TEST(ds::format_timestamp(loaded.exchanges[1].timestamp) ==
                   "9999-12-31T23:59:59.999Z");
        BOOST_TEST(ds::format_timestamp(meta.updated_at) == "9999-12-31T23:59:59.999Z");
    }
}

BOOST_AUTO_TEST_CASE(times_before_1970_are_kept_not_clamped) {
    const auto first = date_at(1900, 6, 1);
    const auto second = first + std::chrono::hours(25);
    ds::test::temp_dir td;
    const auto file = save_two_at(ds::jsonl_store{td / "store"}, first, second);
    const auto memory = save_two_at(ds::memory_store{}, first, second);
    // A fresh store lists from the history file (the index rebuilt), not from memory.
    ds::jsonl_store fresh{td / "store"};
    fs::remove(td / "store" / "index.json");
    const auto relisted = fresh.list();
    BOOST_TEST_REQUIRE(relisted.size() == 1u);
    for (const auto& meta : {file.second, memory.second, relisted[0]}) {
        BOOST_TEST(ds::format_timestamp(meta.created_at) == "1900-06-01T00:00:00.000Z");
        BOOST_TEST(ds::format_timestamp(meta.updated_at) == "1900-06-02T01:00:00.000Z");
    }
}

BOOST_AUTO_TEST_CASE(a_time_past_9999_is_refused_before_any_store_is_touched) {
    const auto too_late = date_at(10000, 1, 1);
    const auto too_early = date_at(-1, 12, 31);
    for (const auto when : {too_late, too_early}) {
        BOOST_TEST_CONTEXT(when.time_since_epoch().count() << " ms") {
            // The memory store counts every call: none may be made.
            ds::memory_store memory;
            clocked_manager<ds::memory_store> m{memory, millisecond_clock{when}};
            BOOST_CHECK_THROW(m.start_new(), ds::time_out_of_range);
            BOOST_TEST((m.storage().counts() == ds::operation_counts{}));

            // A session started in range, saved into once the clock left it.
            clocked_manager<ds::memory_store> n{ds::memory_store{},
                                                millisecond_clock{date_at(2026, 1, 1)}};
            n.start_new();
            n.save_exchange("q1", "a1");
            const auto before = n.storage().counts();
            n.clock().t = when;
            BOOST_CHECK_THROW(n.save_exchange("q2", "a2"), ds::time_out_of_range);
            BOOST_TEST((n.storage().counts() == before));

            // The file store: the same error, and not one byte changed on disk.
            ds::test::temp_dir td;
            clocked_manager<ds::jsonl_store> f{ds::jsonl_store{td / "store"},
                                               millisecond_clock{date_at(2026, 1, 1)}};
            f.start_new();
            f.save_exchange("q1", "a1");
            const auto files = ds::test::snapshot(td / "store");
            f.clock().t = when;
            try {
                f.save_exchange("q2", "a2");
                BOOST_ERROR("a save at an impossible time was acknowledged");
            } catch (const ds::time_out_of_range& e) {
                BOOST_TEST(contains(e.what(), "0000..9999"), e.what());
            }
            BOOST_CHECK_THROW(f.start_new(), ds::error);
            BOOST_TEST((ds::test::snapshot(td / "store") == files));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_error_derives_from_the_library_root) {
    ds::test::temp_dir td;
    for (const std::string& channel :
         std::vector<std::string>{"", "Bad", "-x", "quarantine", std::string(65, 'a')}) {
        BOOST_TEST_CONTEXT("channel '" << channel << "'") {
            try {
                ds::jsonl_store store{td / "store", channel};
                BOOST_ERROR("a bad channel name was accepted");
            } catch (const ds::invalid_channel& e) {
                const ds::error& root = e; // caught as the library's root, too
                BOOST_TEST(contains(root.what(), "channel"));
            }
        }
    }
    BOOST_CHECK_THROW((void)ds::format_timestamp(date_at(10000, 1, 1)), ds::error);
    BOOST_CHECK_THROW((void)ds::format_timestamp(date_at(10000, 1, 1)), ds::time_out_of_range);
}
