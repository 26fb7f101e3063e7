// SPDX-License-Identifier: BSL-1.0
// jsonl_store under real faults: full disk (EFBIG, ENOSPC, short writes), EIO on
// fdatasync, a read-only store, a clock going backwards (RELIABILITY.md rows 8-10, 15),
// and numbers JSON cannot write (found by the fuzzers).
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_faults
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/session_manager.hpp>

#include <boost/json/parse.hpp>

#include "support/child_checks.hpp"
#include "support/fd_path.hpp"
#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sys_tp = std::chrono::system_clock::time_point;
using ds::test::become_nobody;
using ds::test::can_run_as_nobody_in;
using ds::test::checks;
using ds::test::is_history_fd;
using ds::test::report;
using ds::test::run_in_child;

namespace {

template <class Ops>
using file_manager =
    ds::session_manager<ds::basic_jsonl_store<Ops>, ds::manual_clock, ds::sequential_ids>;

template <class Ops>
file_manager<Ops> make_manager(const fs::path& root, Ops ops = {}, ds::jsonl_options options = {}) {
    return file_manager<Ops>{ds::basic_jsonl_store<Ops>{root, "cli", options, std::move(ops)}};
}

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path history_of(const fs::path& root, const std::string& id) {
    return root / "cli" / id / "history.jsonl";
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// The seqs of a loaded session, in order.
std::vector<std::uint64_t> seqs_of(const ds::loaded_session& s) {
    std::vector<std::uint64_t> out;
    for (const auto& ex : s.exchanges)
        out.push_back(ex.seq);
    return out;
}

std::vector<std::uint64_t> one_to(std::uint64_t n) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = 1; i <= n; ++i)
        out.push_back(i);
    return out;
}

// Passes every call through, recording what write() and ftruncate() did to history files:
// proof that a fault came from the kernel and what the store did about it.
struct recording_ops : ds::detail::posix_ops {
    struct write_call {
        std::size_t asked = 0;
        ssize_t got = 0;
        int err = 0;
    };
    std::vector<write_call> history_writes;
    int history_truncates = 0;

    ssize_t write(int fd, const void* data, std::size_t n) {
        const ssize_t r = posix_ops::write(fd, data, n);
        const int e = errno;
        if (is_history_fd(fd))
            history_writes.push_back({n, r, r < 0 ? e : 0});
        errno = e;
        return r;
    }
    int ftruncate(int fd, off_t size) {
        if (is_history_fd(fd))
            ++history_truncates;
        return posix_ops::ftruncate(fd, size);
    }
};

// Once armed, the next write() to a history file writes half of its buffer; every one
// after that fails with ENOSPC, as a file system filling up during the write does.
struct short_write_ops : ds::detail::posix_ops {
    bool armed = false;
    int history_writes = 0;
    int history_truncates = 0;

    ssize_t write(int fd, const void* data, std::size_t n) {
        if (!armed || !is_history_fd(fd))
            return posix_ops::write(fd, data, n);
        if (history_writes++ == 0)
            return posix_ops::write(fd, data, n / 2);
        errno = ENOSPC;
        return -1;
    }
    int ftruncate(int fd, off_t size) {
        if (is_history_fd(fd))
            ++history_truncates;
        return posix_ops::ftruncate(fd, size);
    }
};

// The fail_at-th fdatasync (counting from 1) fails with EIO; 0 never fails.
struct failing_sync : ds::detail::posix_ops {
    int fail_at = 0;
    int calls = 0;
    int history_writes = 0;

    int fdatasync(int fd) {
        if (++calls == fail_at) {
            errno = EIO;
            return -1;
        }
        return posix_ops::fdatasync(fd);
    }
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (is_history_fd(fd))
            ++history_writes;
        return posix_ops::write(fd, data, n);
    }
};

// A tmpfs or bind mount, unmounted on destruction.
class mount_guard {
public:
    mount_guard() = default;
    mount_guard(const mount_guard&) = delete;
    mount_guard& operator=(const mount_guard&) = delete;
    ~mount_guard() {
        if (!target_.empty())
            ::umount2(target_.c_str(), MNT_DETACH);
    }
    // Returns 0 or the errno of mount(2).
    int mount(const char* source, const fs::path& target, const char* type, unsigned long flags,
              const char* data) {
        if (::mount(source, target.c_str(), type, flags, data) < 0)
            return errno;
        target_ = target;
        return 0;
    }

private:
    fs::path target_;
};

// A session of `n` exchanges in a new store at `root`; returns its id. The store is
// closed again (its lease released) on return.
std::string make_session(const fs::path& root, int n) {
    auto m = make_manager<ds::detail::posix_ops>(root);
    m.start_new();
    for (int i = 1; i <= n; ++i)
        m.save_exchange("question " + std::to_string(i), "answer " + std::to_string(i));
    return m.current()->id;
}

} // namespace

// ---------------------------------------------------------------------------------
// Row 8: disk full

BOOST_AUTO_TEST_SUITE(disk_full)

// RLIMIT_FSIZE with SIGXFSZ ignored: the kernel writes up to the limit, then fails the
// rest of the record with EFBIG. A real short write, then a real error.
BOOST_AUTO_TEST_CASE(efbig_from_rlimit_fsize_is_rolled_back_and_reported) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const std::string id = make_session(root, 2);
    const fs::path hist = history_of(root, id);
    const std::string before = read_bytes(hist);
    BOOST_REQUIRE(!before.empty());

    run_in_child([&](checks& check) {
        auto m = make_manager<recording_ops>(root);
        m.resume(id);
        const std::string path = m.storage().history_path(id);
        const auto size = static_cast<rlim_t>(fs::file_size(hist));
        const auto log_size = static_cast<rlim_t>(fs::file_size(root / "changes.log"));
        rlimit old{};
        ::getrlimit(RLIMIT_FSIZE, &old);
        rlimit lim = old;
        lim.rlim_cur = size + 100; // room for 100 more bytes in any file
        check(log_size + 64 < lim.rlim_cur, "setup: changes.log must stay under the limit");
        check(::signal(SIGXFSZ, SIG_IGN) != SIG_ERR, "setup: signal(SIGXFSZ, SIG_IGN)");
        check(::setrlimit(RLIMIT_FSIZE, &lim) == 0, "setup: setrlimit(RLIMIT_FSIZE)");

        const std::string big(4096, 'x');
        try {
            m.save_exchange("question 3", big);
            check(false, "a save past RLIMIT_FSIZE returned (acknowledged) instead of throwing");
        } catch (const ds::storage_error& e) {
            check.info(std::string("EFBIG save error: ") + e.what());
            check(contains(e.what(), path),
                  "the error names the history path: " + std::string(e.what()));
            check(contains(e.what(), "File too large"),
                  "the error says 'File too large': " + std::string(e.what()));
            check(e.errno_value() == EFBIG, "errno_value() is EFBIG");
        }
        // It really was a short write by the kernel, then EFBIG, then a cut back.
        const auto& w = m.storage().ops().history_writes;
        check(w.size() >= 2, "setup: expected a short write then a failed one");
        if (w.size() >= 2) {
            check(w[0].got > 0 && static_cast<std::size_t>(w[0].got) < w[0].asked,
                  "the first write was short (" + std::to_string(w[0].got) + " of " +
                      std::to_string(w[0].asked) + " bytes)");
            check(w.back().got < 0 && w.back().err == EFBIG, "the last write failed with EFBIG");
        }
        check(m.storage().ops().history_truncates >= 1, "the partial record was cut back");

        const std::string after = read_bytes(hist);
        check(after.size() == before.size(), "the file size is as before (" +
                                                 std::to_string(after.size()) + " vs " +
                                                 std::to_string(before.size()) + ")");
        check(after == before, "the file bytes are as before");
        check(m.current()->exchange_count == 2, "the manager's count did not advance");
        check(m.history().size() == 2, "the chat history did not advance");

        const auto same = m.storage().load(id);
        check(seqs_of(same) == one_to(2) && same.diagnostics.empty(),
              "the session loads (same handle) with 2 exchanges and no diagnostic");
        ds::jsonl_store other{root};
        const auto fresh = other.load(id);
        check(seqs_of(fresh) == one_to(2) && fresh.diagnostics.empty(),
              "the session loads (new store) with 2 exchanges and no diagnostic");

        // Room again: the same handle saves, and seqs continue.
        check(::setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit back");
        const auto ex = m.save_exchange("question 3", big);
        check(ex.seq == 3, "the next save after the limit is lifted is seq 3");
        const std::string grown = read_bytes(hist);
        check(grown.size() > before.size() && grown.compare(0, before.size(), before) == 0,
              "the file grew by appending only");
    });

    // In the parent (no limit): the child's lease is gone, a new writer continues.
    auto m = make_manager<ds::detail::posix_ops>(root);
    const auto resumed = m.resume(id);
    BOOST_TEST(resumed.meta.exchange_count == 3u);
    BOOST_TEST(m.save_exchange("question 4", "answer 4").seq == 4u);
    const auto all = m.storage().load(id);
    BOOST_TEST(seqs_of(all) == one_to(4), boost::test_tools::per_element());
    BOOST_TEST(all.diagnostics.empty());
}

// A real 64 KiB tmpfs filled to the last block: the save fails with ENOSPC, nothing of
// it stays, and after the filler is deleted the same handle saves again.
BOOST_AUTO_TEST_CASE(enospc_on_a_full_tmpfs_is_rolled_back_and_recovers) {
    ds::test::temp_dir td;
    const fs::path mnt = td / "mnt";
    fs::create_directory(mnt);
    mount_guard guard;
    if (const int e = guard.mount("tmpfs", mnt, "tmpfs", 0, "size=64k")) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot mount a 64 KiB tmpfs here (mount: "
                           << std::strerror(e) << "); the ENOSPC case needs root in a "
                           << "container that may mount");
        return;
    }
    const fs::path root = mnt / "store";
    auto m = make_manager<recording_ops>(root);
    m.start_new();
    m.save_exchange("question 1", "answer 1");
    m.save_exchange("question 2", "answer 2");
    const std::string id = m.current()->id;
    const std::string path = m.storage().history_path(id);
    const fs::path hist = history_of(root, id);
    const std::string before = read_bytes(hist);

    // Fill the file system to its last block.
    const fs::path filler = mnt / "filler";
    {
        const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        BOOST_REQUIRE(fd >= 0);
        const std::string block(4096, 'f');
        int err = 0;
        for (;;) {
            const ssize_t n = ::write(fd, block.data(), block.size());
            if (n < 0) {
                err = errno;
                break;
            }
            if (n == 0)
                break;
        }
        ::close(fd);
        BOOST_REQUIRE_MESSAGE(err == ENOSPC, "filling the tmpfs ended with " << std::strerror(err));
    }

    m.storage().ops().history_writes.clear();
    const std::string big(16 * 1024, 'y');
    try {
        m.save_exchange("question 3", big);
        BOOST_ERROR("a save on a full file system returned instead of throwing");
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("ENOSPC save error: " << e.what());
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "No space left on device"), e.what());
        BOOST_TEST(e.errno_value() == ENOSPC);
    }
    const auto& w = m.storage().ops().history_writes;
    BOOST_REQUIRE(!w.empty());
    BOOST_TEST((w.back().got < 0 && w.back().err == ENOSPC), "the kernel reported ENOSPC");
    if (w.size() > 1)
        BOOST_TEST_MESSAGE("the kernel wrote " << w[0].got << " of " << w[0].asked
                                               << " bytes before ENOSPC");
    BOOST_TEST(read_bytes(hist) == before, "the history file is exactly as before");
    BOOST_TEST(m.current()->exchange_count == 2u);
    BOOST_TEST(m.history().size() == 2u);

    const auto same = m.storage().load(id);
    BOOST_TEST(seqs_of(same) == one_to(2), boost::test_tools::per_element());
    BOOST_TEST(same.diagnostics.empty());
    {
        ds::jsonl_store other{root};
        const auto fresh = other.load(id);
        BOOST_TEST(seqs_of(fresh) == one_to(2), boost::test_tools::per_element());
        BOOST_TEST(fresh.diagnostics.empty());
    }

    fs::remove(filler);
    BOOST_TEST(m.save_exchange("question 3", big).seq == 3u);
    BOOST_TEST(m.save_exchange("question 4", "answer 4").seq == 4u);
    const auto all = ds::jsonl_store{root}.load(id);
    BOOST_TEST(seqs_of(all) == one_to(4), boost::test_tools::per_element());
    BOOST_TEST(all.diagnostics.empty());
    BOOST_TEST(all.exchanges[2].answer == big);
}

// Through the seam: half the record is written, then ENOSPC. The half is cut back off.
BOOST_AUTO_TEST_CASE(short_write_then_enospc_through_the_seam_is_rolled_back_exactly) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    auto m = make_manager<short_write_ops>(root);
    m.start_new();
    m.save_exchange("question 1", "answer 1");
    m.save_exchange("question 2", "answer 2");
    const std::string id = m.current()->id;
    const std::string path = m.storage().history_path(id);
    const fs::path hist = history_of(root, id);
    const std::string before = read_bytes(hist);

    m.storage().ops().armed = true;
    try {
        m.save_exchange("question 3", std::string(1000, 'z'));
        BOOST_ERROR("a save whose write failed returned instead of throwing");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "No space left on device"), e.what());
        BOOST_TEST(e.errno_value() == ENOSPC);
    }
    BOOST_TEST(m.storage().ops().history_writes == 2, "one half write, then the failing one");
    BOOST_TEST(m.storage().ops().history_truncates == 1);
    const std::string after = read_bytes(hist);
    BOOST_TEST(after.size() == before.size());
    BOOST_TEST(after == before, "the history file is exactly as before");
    BOOST_TEST(m.current()->exchange_count == 2u);
    BOOST_TEST(m.history().size() == 2u);
    BOOST_TEST(seqs_of(m.storage().load(id)) == one_to(2), boost::test_tools::per_element());

    // The disk has room again: the same handle saves the next seq, and nothing glued.
    m.storage().ops().armed = false;
    BOOST_TEST(m.save_exchange("question 3", "answer 3").seq == 3u);
    const auto all = ds::jsonl_store{root}.load(id);
    BOOST_TEST(seqs_of(all) == one_to(3), boost::test_tools::per_element());
    BOOST_TEST(all.diagnostics.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// Row 9: EIO on fdatasync

BOOST_AUTO_TEST_SUITE(eio_on_fdatasync)

// fdatasync #1 is the new session's (create), #k+1 the k-th save's.
BOOST_AUTO_TEST_CASE(eio_poisons_the_handle_and_is_never_acknowledged) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    auto m = make_manager<failing_sync>(root);
    m.start_new();
    m.save_exchange("question 1", "answer 1");
    m.save_exchange("question 2", "answer 2");
    const std::string id = m.current()->id;
    const std::string path = m.storage().history_path(id);
    const fs::path hist = history_of(root, id);
    BOOST_REQUIRE(m.storage().ops().calls == 3);

    m.storage().ops().fail_at = m.storage().ops().calls + 1;
    try {
        m.save_exchange("question 3", "answer 3");
        BOOST_ERROR("a save whose fdatasync failed was acknowledged");
    } catch (const ds::storage_error& e) {
        BOOST_TEST_MESSAGE("EIO save error: " << e.what());
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "Input/output error"), e.what());
        BOOST_TEST(e.errno_value() == EIO);
    }
    BOOST_TEST(m.current()->exchange_count == 2u);
    BOOST_TEST(m.history().size() == 2u);

    // Poisoned: every later save or title change on this handle throws, even though
    // fdatasync would now succeed, and nothing more reaches the file.
    const auto size = fs::file_size(hist);
    const int writes = m.storage().ops().history_writes;
    const int syncs = m.storage().ops().calls;
    for (int i = 0; i < 3; ++i) {
        BOOST_CHECK_THROW(m.save_exchange("question 3", "answer 3"), ds::storage_error);
        BOOST_TEST(m.current()->exchange_count == 2u);
    }
    BOOST_CHECK_THROW(m.set_title("renamed"), ds::storage_error);
    try {
        m.save_exchange("again", "again");
    } catch (const ds::storage_error& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(e.errno_value() == EIO);
    }
    BOOST_TEST(fs::file_size(hist) == size);
    BOOST_TEST(m.storage().ops().history_writes == writes, "no write after the failed sync");
    BOOST_TEST(m.storage().ops().calls == syncs, "no fdatasync retried after the failed sync");
    BOOST_TEST(m.history().size() == 2u);

    // A fresh open of the same store object works. The unsynced record was cut back off
    // when its sync failed: it was never acknowledged, and does not come back.
    m.close();
    const auto resumed = m.resume(id);
    const auto k = resumed.meta.exchange_count;
    BOOST_TEST_MESSAGE("after the failed sync and a reopen, the session has " << k << " exchanges");
    BOOST_TEST(k == 2u, "after reopening: " << k << " exchanges");
    BOOST_TEST(m.save_exchange("question", "answer").seq == k + 1);
    m.close();

    // And so does a new store object.
    auto fresh = make_manager<ds::detail::posix_ops>(root);
    fresh.resume(id);
    BOOST_TEST(fresh.save_exchange("question", "answer").seq == k + 2);
    const auto all = fresh.storage().load(id);
    BOOST_TEST(seqs_of(all) == one_to(k + 2), boost::test_tools::per_element());
    BOOST_TEST(all.diagnostics.empty());
}

// Every fdatasync of a 5-save script fails in turn. Oracle: a failed save is never
// acknowledged; after it the handle refuses everything; a fresh store then loads every
// acknowledged exchange (I1) as a contiguous prefix at most one longer (I2).
BOOST_AUTO_TEST_CASE(the_nth_fdatasync_fails_for_every_n) {
    constexpr int saves = 5;
    auto script = [](const fs::path& root, failing_sync ops) {
        auto m = make_manager<failing_sync>(root, ops);
        m.start_new();
        return m;
    };
    // How many fdatasync calls the script makes when none fails.
    int total = 0;
    {
        ds::test::temp_dir td;
        auto m = script(td / "store", {});
        for (int i = 1; i <= saves; ++i)
            m.save_exchange("q", "a");
        total = m.storage().ops().calls;
    }
    BOOST_REQUIRE(total >= saves);
    int poisoned_cases = 0;
    for (int n = 1; n <= total; ++n) {
        BOOST_TEST_CONTEXT("fdatasync #" << n << " of " << total << " fails") {
            ds::test::temp_dir td;
            const fs::path root = td / "store";
            failing_sync ops;
            ops.fail_at = n;
            auto m = script(root, ops);
            std::uint64_t acked = 0;
            int failures = 0, first_failed = 0;
            bool stored_when_failed = false;
            std::string id;
            for (int i = 1; i <= saves; ++i) {
                try {
                    const auto ex = m.save_exchange("q" + std::to_string(i), "a");
                    // Only a session that the failure removed again may save once more.
                    BOOST_TEST((failures == 0 || !stored_when_failed),
                               "save " << i << " acknowledged on a poisoned handle");
                    BOOST_TEST(ex.seq == acked + 1);
                    acked = ex.seq;
                } catch (const ds::storage_error& e) {
                    if (++failures == 1) {
                        first_failed = i;
                        stored_when_failed = m.current_is_stored();
                        BOOST_TEST(e.errno_value() == EIO, e.what());
                    }
                    BOOST_TEST(m.current()->exchange_count == acked);
                    BOOST_TEST(m.history().size() == acked);
                }
                if (m.current_is_stored())
                    id = m.current()->id;
            }
            BOOST_REQUIRE_MESSAGE(failures >= 1, "fdatasync #" << n << " was never reached");
            if (stored_when_failed) {
                // The handle is poisoned: that save and every later one threw.
                ++poisoned_cases;
                BOOST_TEST(failures == saves - first_failed + 1);
                BOOST_TEST(acked == std::uint64_t(first_failed - 1));
            } else {
                // The new session's first save failed: it was removed again, nothing
                // was poisoned, and the next save created it anew.
                BOOST_TEST(first_failed == 1);
                BOOST_TEST(failures == 1);
                BOOST_TEST(acked == std::uint64_t(saves - 1));
            }
            BOOST_REQUIRE(!id.empty());
            m.close();
            ds::jsonl_store fresh{root};
            const auto loaded = fresh.load(id);
            const auto count = loaded.exchanges.size();
            BOOST_TEST((count == acked || count == acked + 1),
                       count << " loaded for " << acked << " acknowledged");
            BOOST_TEST(seqs_of(loaded) == one_to(count), boost::test_tools::per_element());
            BOOST_TEST(loaded.diagnostics.empty());
        }
    }
    BOOST_TEST(poisoned_cases == saves - 1, "saves 2 to 5 each met a failing sync");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// Row 10: read-only store

namespace {

// What must hold of a store the caller cannot write: check_writable() says so before
// anything else, listing and loading work, saving fails with a clear error, and
// nothing changes on disk.
void check_read_only_store(const fs::path& root, const std::string& id, const std::string& why,
                           checks& check) {
    const std::string hist_before = read_bytes(history_of(root, id));
    ds::jsonl_store store{root};
    try {
        store.check_writable();
        check(false, "check_writable() passed on a read-only store");
    } catch (const ds::storage_error& e) {
        check.info(std::string("check_writable: ") + e.what());
        check(contains(e.what(), root.string()),
              "check_writable names the store path: " + std::string(e.what()));
        check(contains(e.what(), why), "check_writable says '" + why + "': " + e.what());
        check(contains(e.what(), "read-only"),
              "check_writable says read-only: " + std::string(e.what()));
    }

    const auto listed = store.list();
    check(listed.size() == 1 && listed[0].id == id && listed[0].exchange_count == 2,
          "list() shows the session with its 2 exchanges");
    check(store.find(id).has_value(), "find() finds the session");
    const auto all = store.load(id);
    check(seqs_of(all) == one_to(2) && all.diagnostics.empty(), "load() reads both exchanges");
    const auto last = store.load(id, 1);
    check(seqs_of(last) == std::vector<std::uint64_t>{2}, "load(id, 1) reads the last one");

    file_manager<ds::detail::posix_ops> m{std::move(store)};
    check(m.list_sessions().size() == 1, "list_sessions() works");
    try {
        m.resume(id);
        check(false, "resume() for writing succeeded on a read-only store");
    } catch (const ds::storage_error& e) {
        check.info(std::string("resume: ") + e.what());
        check(contains(e.what(), history_of(root, id).string()),
              "the resume error names the history path: " + std::string(e.what()));
        check(contains(e.what(), why), "the resume error says '" + why + "': " + e.what());
    }
    m.start_new();
    try {
        m.save_exchange("question", "answer");
        check(false, "saving a new session succeeded on a read-only store");
    } catch (const ds::storage_error& e) {
        check.info(std::string("save: ") + e.what());
        check(contains(e.what(), root.string()),
              "the save error names a path in the store: " + std::string(e.what()));
        check(contains(e.what(), "read-only") || contains(e.what(), why),
              "the save error says why: " + std::string(e.what()));
    }
    check(read_bytes(history_of(root, id)) == hist_before, "the history file is unchanged");
    std::size_t sessions = 0;
    for (const auto& e : fs::directory_iterator(root / "cli")) {
        (void)e;
        ++sessions;
    }
    check(sessions == 1, "no session directory was added");
}

// A store made by root, with a listed session and an index.json.
std::string make_listed_session(const fs::path& root) {
    const std::string id = make_session(root, 2);
    ds::jsonl_store store{root};
    BOOST_REQUIRE(store.list().size() == 1u);
    BOOST_REQUIRE(fs::exists(root / "index.json"));
    return id;
}

} // namespace

BOOST_AUTO_TEST_SUITE(read_only_store)

// As root, permissions do not stop writes: the child drops to nobody (65534) over a
// store it may read but not write (root-owned, directories 0755, files 0644).
BOOST_AUTO_TEST_CASE(as_nobody) {
    ds::test::temp_dir td;
    if (!can_run_as_nobody_in(td.path()))
        return;
    const fs::path root = td / "store";
    const std::string id = make_listed_session(root);
    fs::permissions(td.path(), fs::perms(0755));
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        if (e.is_directory())
            fs::permissions(e.path(), fs::perms(0755));
        else
            fs::permissions(e.path(), fs::perms(0644));
    }
    fs::permissions(root, fs::perms(0755));
    const std::string before = read_bytes(history_of(root, id));

    run_in_child([&](checks& check) {
        if (!become_nobody(check))
            return;
        const fs::path probe = root / "probe";
        const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        check(fd < 0 && errno == EACCES, "setup: nobody cannot create files in the store");
        if (fd >= 0)
            ::close(fd);
        check_read_only_store(root, id, "Permission denied", check);
    });
    BOOST_TEST(read_bytes(history_of(root, id)) == before);
}

// A read-only bind mount of the store: EROFS for everyone, root included.
BOOST_AUTO_TEST_CASE(on_a_read_only_bind_mount) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    const std::string id = make_listed_session(root);
    const fs::path ro = td / "ro";
    fs::create_directory(ro);
    mount_guard guard;
    if (const int e = guard.mount(root.c_str(), ro, nullptr, MS_BIND, nullptr)) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot bind-mount here (" << std::strerror(e) << ")");
        return;
    }
    if (::mount(nullptr, ro.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) < 0) {
        BOOST_TEST_MESSAGE("SKIPPED: cannot remount the bind mount read-only ("
                           << std::strerror(errno) << ")");
        return;
    }
    checks check;
    check_read_only_store(ro, id, "Read-only file system", check);
    report(check.text());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------
// Found by fuzz/jsonl_loader_fuzz and fuzz/index_loader_fuzz: Boost.JSON 1.81 writes an
// infinite double as `Infinity` (and NaN as `NaN`), which no JSON parser reads back. An
// acknowledged exchange holding one was unreadable, and the next open() cut it off as a
// "never acknowledged" torn tail (I1); an index holding one was quarantined at every run.

BOOST_AUTO_TEST_CASE(records_holding_infinite_or_nan_numbers_stay_readable) {
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    std::string id;
    {
        auto m = make_manager<ds::detail::posix_ops>(root);
        m.start_new();
        m.save_exchange("question 1", "answer 1");
        ds::exchange ex;
        ex.query = "question 2";
        ex.answer = "answer 2";
        ex.tool_calls = boost::json::parse("[1e400, -1e400, 1.5]").as_array(); // Boost: +-inf
        ex.extra["nan"] = std::numeric_limits<double>::quiet_NaN();
        BOOST_TEST(m.save_exchange(ex).seq == 2u); // acknowledged
        id = m.current()->id;
    }
    auto m = make_manager<ds::detail::posix_ops>(root);
    const auto resumed = m.resume(id);
    BOOST_TEST(resumed.meta.exchange_count == 2u);
    BOOST_TEST(m.storage().take_diagnostics().empty(), "open() repaired nothing");
    BOOST_TEST(!fs::exists(root / "quarantine"));
    const auto all = m.storage().load(id);
    BOOST_REQUIRE(all.exchanges.size() == 2u);
    BOOST_TEST(all.diagnostics.empty());
    const auto& calls = all.exchanges[1].tool_calls;
    BOOST_REQUIRE(calls.size() == 3u);
    BOOST_TEST((calls[0].is_double() && calls[0].get_double() == HUGE_VAL));
    BOOST_TEST((calls[1].is_double() && calls[1].get_double() == -HUGE_VAL));
    BOOST_TEST((calls[2].is_double() && calls[2].get_double() == 1.5));
    BOOST_TEST(all.exchanges[1].extra.at("nan").is_null()); // JSON has no NaN

    // The same numbers in the session's metadata reach index.json, which stays valid.
    ds::session_meta meta = resumed.meta;
    meta.extra["big"] = HUGE_VAL;
    m.storage().update(meta);
    m.close();
    for (int round = 0; round < 2; ++round) {
        ds::jsonl_store store{root};
        BOOST_TEST(store.list().size() == 1u);
        for (const auto& d : store.take_diagnostics())
            BOOST_ERROR("store note: " << d.reason);
    }
    BOOST_TEST(!fs::exists(root / "quarantine"));
}

// ---------------------------------------------------------------------------------
// Row 15: a clock going backwards, with the file store

BOOST_AUTO_TEST_CASE(clock_going_backwards_changes_neither_order_nor_identity) {
    using namespace std::chrono;
    const sys_tp y1970 = sys_days{year{1970} / 1 / 1};
    const sys_tp y2100 = sys_days{year{2100} / 1 / 1};
    const sys_tp y2026 = sys_days{year{2026} / 1 / 1};
    ds::test::temp_dir td;
    const fs::path root = td / "store";
    auto m = make_manager<ds::detail::posix_ops>(root);
    auto& clk = m.clock();

    clk.set(y2026);
    m.start_new();
    const std::string first = m.current()->id;
    BOOST_TEST(first == "s0000001");
    const std::vector<sys_tp> times = {y2026,       y2100,      y1970,      y1970,
                                       y2100 - 1ms, y2026 + 1h, y1970 + 1ms};
    ds::time_point last_updated{};
    for (std::size_t i = 0; i < times.size(); ++i) {
        clk.set(times[i]);
        const auto ex = m.save_exchange("q" + std::to_string(i + 1), "a");
        BOOST_TEST(ex.seq == i + 1);
        BOOST_TEST((ex.timestamp == floor<milliseconds>(times[i])));
        BOOST_TEST((m.current()->updated_at >= last_updated),
                   "updated_at went back at save " << i + 1);
        last_updated = m.current()->updated_at;
    }
    BOOST_TEST((last_updated == ds::time_point{floor<milliseconds>(y2100)}));

    // A second session started while the clock reads 1970: the next id, whatever the time.
    clk.set(y1970);
    m.start_new();
    const std::string second = m.current()->id;
    BOOST_TEST(second == "s0000002");
    m.save_exchange("q1", "a");
    m.save_exchange("q2", "a"); // the same instant again
    BOOST_TEST((m.current()->updated_at == ds::time_point{floor<milliseconds>(y1970)}));

    // Resuming the first one at 1970 and saving: seq continues, updated_at stays.
    m.resume(first);
    BOOST_TEST((m.current()->updated_at == last_updated));
    BOOST_TEST(m.save_exchange("q8", "a").seq == 8u);
    BOOST_TEST((m.current()->updated_at == last_updated));
    m.close();

    // The file holds the exchanges in seq order with the timestamps as they were.
    ds::jsonl_store reader{root};
    const auto loaded = reader.load(first);
    BOOST_TEST(seqs_of(loaded) == one_to(8), boost::test_tools::per_element());
    for (std::size_t i = 0; i < times.size(); ++i)
        BOOST_TEST((loaded.exchanges[i].timestamp == floor<milliseconds>(times[i])));
    BOOST_TEST((loaded.meta.updated_at == last_updated));
    BOOST_TEST(seqs_of(reader.load(first, 3)) == (std::vector<std::uint64_t>{6, 7, 8}),
               boost::test_tools::per_element());

    // Listing: newest updated_at first, from the index...
    const auto listed = m.list_sessions();
    BOOST_REQUIRE(listed.size() == 2u);
    BOOST_TEST(listed[0].id == first);
    BOOST_TEST(listed[1].id == second);
    BOOST_REQUIRE(fs::exists(root / "index.json"));
    std::map<std::string, ds::session_meta> cached;
    for (const auto& s : listed)
        cached[s.id] = s;

    // ...and from the history files alone: the same updated_at and exchange_count.
    fs::remove(root / "index.json");
    ds::jsonl_store rebuilt{root};
    const auto again = rebuilt.list();
    BOOST_REQUIRE(again.size() == 2u);
    for (const auto& s : again) {
        BOOST_TEST_CONTEXT("session " << s.id) {
            BOOST_REQUIRE(cached.count(s.id) == 1u);
            BOOST_TEST((s.updated_at == cached[s.id].updated_at));
            BOOST_TEST(s.exchange_count == cached[s.id].exchange_count);
            BOOST_TEST((s.created_at == cached[s.id].created_at));
        }
    }
    BOOST_TEST(cached[first].exchange_count == 8u);
    BOOST_TEST(cached[second].exchange_count == 2u);
    const auto found = rebuilt.find(first);
    BOOST_REQUIRE(found.has_value());
    BOOST_TEST((found->updated_at == last_updated));
}
