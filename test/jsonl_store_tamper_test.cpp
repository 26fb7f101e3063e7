// SPDX-License-Identifier: BSL-1.0
// jsonl_store when files change behind its back (rm, truncate, hand edits, another program's
// append or rename) and when odd files sit where it expects its own (a FIFO changes.log, a
// huge index.json, an unborn session), plus the modes and directory syncs of a new store.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_tamper
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/id.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "support/child_checks.hpp"
#include "support/fd_path.hpp"
#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace dexter::sessions::test;

namespace {

template <class Ops = ds::detail::posix_ops>
seam_manager<Ops> make_manager(const fs::path& root, Ops ops = {}) {
    return seam_manager<Ops>{ds::basic_jsonl_store<Ops>{root, "cli", unsynced, std::move(ops)}};
}

ds::jsonl_store open_store(const fs::path& root) {
    return ds::jsonl_store{root, "cli", unsynced};
}

// The entry of session `id` in a listing, if it is there.
std::optional<ds::session_meta> listed(const std::vector<ds::session_meta>& all,
                                       const std::string& id) {
    for (const auto& m : all)
        if (m.id == id)
            return m;
    return std::nullopt;
}

std::string ids_of(const std::vector<ds::session_meta>& all) {
    std::string out;
    for (const auto& m : all)
        out += " " + m.id + "(" + std::to_string(m.exchange_count) + ")";
    return out.empty() ? " (none)" : out;
}

// True when some diagnostic names session `id` and says `part`.
bool names(const std::vector<ds::diagnostic>& diags, const std::string& id, std::string_view part) {
    return std::any_of(diags.begin(), diags.end(), [&](const ds::diagnostic& d) {
        return contains(d.reason, id) && contains(d.reason, part);
    });
}

// The permission bits of `p` (not following a symbolic link).
unsigned mode_of(const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) < 0)
        return 07777; // never a mode the tests expect
    return st.st_mode & 07777;
}

// Sets the umask for the test, and restores the previous one.
class umask_guard {
public:
    explicit umask_guard(mode_t m) : old_(::umask(m)) {}
    ~umask_guard() { ::umask(old_); }
    umask_guard(const umask_guard&) = delete;
    umask_guard& operator=(const umask_guard&) = delete;

private:
    mode_t old_;
};

// Appends `data` to the end of `p`, as `echo >> p` does.
void append_bytes(const fs::path& p, std::string_view data) {
    std::ofstream out(p, std::ios::binary | std::ios::app);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    BOOST_TEST_REQUIRE(out.good());
}

// How a session changed in place behind the store's back is seen (docs/FORMAT.md,
// "Behind its back"): a plain list() trusts changes.log and the directories, and costs
// no system call per session, so the change shows
//   page             on a page of a list (list_page() checks each session on its page),
//   checked_list     in a list of a store with list_checks_histories,
//   list_after_find  in a plain list once a find of that session (which checks it, and
//                    writes its correction into index.json) has looked at it.
enum class look { page, checked_list, list_after_find };
constexpr look every_look[] = {look::page, look::checked_list, look::list_after_find};

const char* name_of(look how) {
    switch (how) {
    case look::page:
        return "list_page()";
    case look::checked_list:
        return "list() with list_checks_histories";
    case look::list_after_find:
        return "list() after find()";
    }
    return "?";
}

ds::jsonl_options options_for(look how) {
    ds::jsonl_options o = unsynced;
    o.list_checks_histories = how == look::checked_list;
    return o;
}

// What `store` shows after session `id` changed behind its back, looked at as `how` says.
std::vector<ds::session_meta> seen(ds::jsonl_store& store, look how, const std::string& id) {
    switch (how) {
    case look::page:
        return store.list_page({1000, std::nullopt, {}}).sessions;
    case look::checked_list:
        return store.list();
    case look::list_after_find:
        (void)store.find(id);
        return store.list();
    }
    return {};
}

// What a new store object shows, as a new process would, after `seen()` of another
// store looked: index.json as that one left it.
std::vector<ds::session_meta> seen_fresh(const fs::path& root, look how) {
    ds::jsonl_store fresh{root, "cli", options_for(how)};
    return how == look::page ? fresh.list_page({1000, std::nullopt, {}}).sessions : fresh.list();
}

// Two saved sessions (3 and 2 exchanges) listed once by `lister`, so that index.json
// holds them: the state in which the store trusts its cache.
struct listed_store {
    temp_dir dir;
    fs::path root = dir / "store";
    std::optional<ds::jsonl_store> lister;

    explicit listed_store(std::uint64_t first_count = 3, look how = look::page) {
        save_session(root, "aaaa0001", first_count);
        save_session(root, "bbbb0002", 2);
        lister.emplace(root, "cli", options_for(how));
        const auto all = lister->list();
        BOOST_TEST_REQUIRE(all.size() == 2u);
        BOOST_TEST_REQUIRE(fs::is_regular_file(root / "index.json"));
        lister->take_diagnostics();
    }
    fs::path hist(const std::string& id) const { return history(root, id); }
};

// --- seams ------------------------------------------------------------------------------

// Counts the bytes pread() returned from index.json.
struct index_read_counting_ops : ds::detail::posix_ops {
    std::uint64_t index_bytes_read = 0;
    ssize_t pread(int fd, void* data, std::size_t n, off_t offset) {
        const ssize_t r = posix_ops::pread(fd, data, n, offset);
        const int e = errno;
        if (r > 0 && fd_path(fd).ends_with("/index.json"))
            index_bytes_read += static_cast<std::uint64_t>(r);
        errno = e;
        return r;
    }
};

// Records which file or directory each fsync() or fdatasync() was called on.
struct fsync_recording_ops : ds::detail::posix_ops {
    std::vector<std::string> synced;
    int fsync(int fd) {
        synced.push_back(fd_path(fd));
        return posix_ops::fsync(fd);
    }
    int fdatasync(int fd) {
        synced.push_back(fd_path(fd));
        return posix_ops::fdatasync(fd);
    }
};

// The process is killed (SIGKILL) in the middle of the first large write to a history
// file: half of the buffer reaches the file, as when kill -9 lands inside write().
struct killed_mid_write_ops : ds::detail::posix_ops {
    ssize_t write(int fd, const void* data, std::size_t n) {
        if (n > (1u << 20) && is_history_fd(fd)) {
            posix_ops::write(fd, data, n / 2);
            ::raise(SIGKILL);
        }
        return posix_ops::write(fd, data, n);
    }
};

} // namespace

// ---------------------------------------------------------------------------------------
// The list never shows what the history does not have

BOOST_AUTO_TEST_SUITE(behind_the_store)

// Item 5: rm of history.jsonl (its directory kept) leaves a session that can be neither
// resumed nor deleted; the list must not go on showing it from index.json.
BOOST_AUTO_TEST_CASE(a_session_whose_history_file_was_removed_is_not_listed) {
    for (const look how : every_look) {
        BOOST_TEST_CONTEXT(name_of(how)) {
            listed_store s(3, how);
            BOOST_TEST_REQUIRE(::unlink(s.hist("aaaa0001").c_str()) == 0);
            BOOST_TEST_REQUIRE(fs::is_directory(s.root / "cli" / "aaaa0001"));

            const auto again = seen(*s.lister, how, "aaaa0001");
            BOOST_TEST(!listed(again, "aaaa0001"), "same store lists the ghost:" << ids_of(again));
            BOOST_TEST(listed(again, "bbbb0002").has_value());

            const auto fresh = seen_fresh(s.root, how);
            BOOST_TEST(!listed(fresh, "aaaa0001"), "fresh store lists the ghost:" << ids_of(fresh));
            BOOST_TEST(listed(fresh, "bbbb0002").has_value());
        }
    }
    // Through the manager: a page, and a find.
    listed_store s;
    BOOST_TEST_REQUIRE(::unlink(s.hist("aaaa0001").c_str()) == 0);
    auto m = make_manager(s.root);
    const auto page = m.list_page({}).sessions;
    BOOST_TEST(!listed(page, "aaaa0001"), "list_page shows the ghost:" << ids_of(page));
    BOOST_TEST(listed(page, "bbbb0002").has_value());
    BOOST_TEST(!m.find_session("aaaa0001").has_value());
    BOOST_TEST(!listed(m.list_sessions(), "aaaa0001"), "list_sessions after the find");
}

// Item 6: history.jsonl truncated to 0 bytes in place. The list must not show the old
// count, and the session must never become a file whose first line is an exchange.
BOOST_AUTO_TEST_CASE(
    a_history_truncated_to_nothing_shows_no_exchanges_and_gets_no_headless_append) {
    for (const look how : every_look) {
        BOOST_TEST_CONTEXT(name_of(how)) {
            listed_store s(3, how);
            BOOST_TEST_REQUIRE(::truncate(s.hist("aaaa0001").c_str(), 0) == 0);
            const auto again = seen(*s.lister, how, "aaaa0001");
            if (const auto e = listed(again, "aaaa0001"))
                BOOST_TEST(e->exchange_count == 0u, "same store still shows the old count");
            const auto fresh = seen_fresh(s.root, how);
            if (const auto e = listed(fresh, "aaaa0001"))
                BOOST_TEST(e->exchange_count == 0u, "fresh store still shows the old count");
        }
    }

    listed_store s;
    const fs::path hist = s.hist("aaaa0001");
    BOOST_TEST_REQUIRE(::truncate(hist.c_str(), 0) == 0);
    auto m = make_manager(s.root);
    const auto shown = m.list_page({}).sessions;
    BOOST_TEST(!listed(shown, "aaaa0001"), "list_page shows it:" << ids_of(shown));

    bool resumed = false;
    try {
        m.resume("aaaa0001");
        resumed = true;
        m.save_exchange("a question after the truncation", "an answer");
    } catch (const ds::error& e) {
        BOOST_TEST_MESSAGE("refused (" << (resumed ? "save" : "resume") << "): " << e.what());
    }
    m.close();
    BOOST_TEST(!listed(m.list_sessions(), "aaaa0001"), "list_sessions after the resume");
    if (!fs::exists(hist)) {
        // Nothing left to keep: the list removed the emptied session (and said so).
        BOOST_TEST(!fs::exists(s.root / "cli" / "aaaa0001"));
        return;
    }
    const std::string text = read_bytes(hist);
    if (!text.empty()) {
        const auto first = text.substr(0, text.find('\n'));
        boost::system::error_code ec;
        const auto v = json::parse(first, ec);
        const auto* type = !ec && v.is_object() ? v.get_object().if_contains("type") : nullptr;
        BOOST_TEST((type && type->is_string() && type->get_string() == "session"),
                   "the history now starts with a line that is not a session header: " << first);
    }
}

// Item 7: line 1 (the header) deleted by hand. The list reports it, and dates the
// session from its first exchange instead of 1970.
BOOST_AUTO_TEST_CASE(
    a_session_whose_header_was_deleted_is_reported_and_dated_by_its_first_exchange) {
    temp_dir dir;
    const fs::path root = dir / "store";
    save_session(root, "aaaa0001", 3);
    const fs::path hist = history(root, "aaaa0001");
    auto lines = lines_of(read_bytes(hist));
    BOOST_TEST_REQUIRE(lines.size() == 4u);
    lines.erase(lines.begin());
    write_bytes(hist, joined(lines));

    auto store = open_store(root);
    const auto all = store.list();
    const auto notes = store.take_diagnostics();
    BOOST_TEST(names(notes, "aaaa0001", "header"),
               "list() did not report the missing header:" << show(notes));
    const auto e = listed(all, "aaaa0001");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->exchange_count == 3u);
    BOOST_TEST((e->created_at == make_exchange(1).timestamp),
               "created_at " << ds::format_timestamp(e->created_at) << ", not the first exchange's "
                             << ds::format_timestamp(make_exchange(1).timestamp));

    const auto loaded = store.load("aaaa0001");
    BOOST_TEST(loaded.exchanges.size() == 3u);
    BOOST_TEST(mentions(loaded.diagnostics, "header"),
               "load() did not report the missing header:" << show(loaded.diagnostics));
}

// Item 7: a UTF-8 byte-order mark before the header (an editor's doing). The list
// reports it and never dates the session 1970.
BOOST_AUTO_TEST_CASE(a_byte_order_mark_before_the_header_is_reported_and_the_date_kept) {
    temp_dir dir;
    const fs::path root = dir / "store";
    const auto saved = save_session(root, "aaaa0001", 3);
    const fs::path hist = history(root, "aaaa0001");
    write_bytes(hist, "\xEF\xBB\xBF" + read_bytes(hist));

    auto store = open_store(root);
    const auto all = store.list();
    const auto notes = store.take_diagnostics();
    BOOST_TEST(names(notes, "aaaa0001", "header"),
               "list() did not report the unreadable header:" << show(notes));
    const auto e = listed(all, "aaaa0001");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->exchange_count == 3u);
    BOOST_TEST((e->created_at == saved.created_at || e->created_at == make_exchange(1).timestamp),
               "created_at " << ds::format_timestamp(e->created_at));

    const auto loaded = store.load("aaaa0001");
    BOOST_TEST(mentions(loaded.diagnostics, "header"),
               "load() did not report the unreadable header:" << show(loaded.diagnostics));
}

// Another program appends a valid exchange (no changes.log line, channel directory
// untouched): the next look, even by a store that listed before, counts it.
BOOST_AUTO_TEST_CASE(an_exchange_appended_by_another_program_is_counted_at_the_next_look) {
    for (const look how : every_look) {
        BOOST_TEST_CONTEXT(name_of(how)) {
            listed_store s(3, how);
            append_bytes(s.hist("aaaa0001"), line_of(make_exchange(4)) + "\n");

            const auto e = listed(seen(*s.lister, how, "aaaa0001"), "aaaa0001");
            BOOST_TEST_REQUIRE(e.has_value());
            BOOST_TEST(e->exchange_count == 4u, "the store that listed before");
            BOOST_TEST((e->updated_at == make_exchange(4).timestamp));

            const auto f = listed(seen_fresh(s.root, how), "aaaa0001");
            BOOST_TEST_REQUIRE(f.has_value());
            BOOST_TEST(f->exchange_count == 4u, "a fresh store reading index.json");
        }
    }
}

// Another program replaces the history with an older copy (temp file and rename, as sync
// tools and editors do): the next look shows the count the file has.
BOOST_AUTO_TEST_CASE(a_history_replaced_by_a_shorter_copy_is_counted_at_the_next_look) {
    for (const look how : every_look) {
        BOOST_TEST_CONTEXT(name_of(how)) {
            listed_store s(4, how);
            const fs::path hist = s.hist("aaaa0001");
            const auto lines = lines_of(read_bytes(hist));
            BOOST_TEST_REQUIRE(lines.size() == 5u); // the header and 4 exchanges
            const fs::path tmp = hist.parent_path() / ".history.jsonl.sync-tmp";
            write_bytes(tmp, joined({lines[0], lines[1], lines[2]}));
            fs::rename(tmp, hist);

            const auto e = listed(seen(*s.lister, how, "aaaa0001"), "aaaa0001");
            BOOST_TEST_REQUIRE(e.has_value());
            BOOST_TEST(e->exchange_count == 2u, "the store that listed before");

            const auto f = listed(seen_fresh(s.root, how), "aaaa0001");
            BOOST_TEST_REQUIRE(f.has_value());
            BOOST_TEST(f->exchange_count == 2u, "a fresh store reading index.json");
        }
    }
}

// A page with a session changed behind the store's back is chosen again: a session
// whose history is gone leaves the page, and the next one takes its place.
BOOST_AUTO_TEST_CASE(a_page_is_chosen_again_when_a_session_on_it_changed) {
    listed_store s;
    const auto before = s.lister->list_page({1, std::nullopt, {}}).sessions;
    BOOST_TEST_REQUIRE(before.size() == 1u);
    const std::string newest = before.front().id;
    const std::string other = newest == "aaaa0001" ? "bbbb0002" : "aaaa0001";

    // The newest one's history removed: the other is the page now.
    BOOST_TEST_REQUIRE(::unlink(s.hist(newest).c_str()) == 0);
    const auto after = s.lister->list_page({1, std::nullopt, {}});
    BOOST_TEST_REQUIRE(after.sessions.size() == 1u);
    BOOST_TEST(after.sessions.front().id == other);
    BOOST_TEST(!after.next.has_value(), "a page past the last session");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------
// Odd files where the store expects its own

BOOST_AUTO_TEST_SUITE(odd_files)

// Item 8: changes.log replaced by a FIFO whose buffer another program filled. The store
// must report it and never read or write it: nothing blocks, and the list stays true.
BOOST_AUTO_TEST_CASE(a_fifo_in_place_of_changes_log_is_reported_and_never_blocks) {
    temp_dir dir;
    const fs::path root = dir / "store";
    save_session(root, "aaaa0001", 3);
    save_session(root, "bbbb0002", 2);
    open_store(root).list(); // index.json names the regular changes.log
    const fs::path log = root / "changes.log";
    BOOST_TEST_REQUIRE(::unlink(log.c_str()) == 0);
    BOOST_TEST_REQUIRE(::mkfifo(log.c_str(), 0600) == 0);
    // Fill the pipe: its bytes stay while this descriptor is open.
    const int filler = ::open(log.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    BOOST_TEST_REQUIRE(filler >= 0);
    const std::string junk(4096, '\n');
    while (::write(filler, junk.data(), junk.size()) > 0) {
    }
    BOOST_TEST_REQUIRE(errno == EAGAIN);

    run_in_child(
        [&](checks& check) {
            auto m = make_manager(root);
            std::vector<ds::diagnostic> notes;
            auto take = [&] {
                for (auto& d : m.storage().take_diagnostics())
                    notes.push_back(std::move(d));
            };
            auto count_is = [&](const std::vector<ds::session_meta>& all, const std::string& id,
                                std::uint64_t n, const std::string& who) {
                const auto e = listed(all, id);
                check(e && e->exchange_count == n,
                      who + " shows " + id + " with " +
                          (e ? std::to_string(e->exchange_count) : std::string("no entry")) +
                          " exchanges, not " + std::to_string(n));
            };
            take();
            const auto all = m.storage().list();
            take();
            count_is(all, "aaaa0001", 3, "list()");
            count_is(all, "bbbb0002", 2, "list()");
            const auto loaded = m.storage().load("aaaa0001");
            check(loaded.exchanges.size() == 3, "load() of aaaa0001 gives " +
                                                    std::to_string(loaded.exchanges.size()) +
                                                    " exchanges, not 3");
            check.info("constructed, listed and loaded; now saving");
            std::uint64_t want = 3;
            try {
                m.resume("aaaa0001");
                m.save_exchange("question 4", "answer 4");
                want = 4;
                check.info("the save succeeded");
            } catch (const ds::storage_error& e) {
                check(contains(e.what(), "changes.log"),
                      std::string("the refused save does not name changes.log: ") + e.what());
            }
            m.close();
            take();
            count_is(m.storage().list(), "aaaa0001", want, "the same store's list()");
            take();
            count_is(open_store(root).list(), "aaaa0001", want, "a fresh store's list()");
            std::string shown;
            for (const auto& d : notes)
                shown += " | " + d.reason;
            check(std::any_of(
                      notes.begin(), notes.end(),
                      [](const ds::diagnostic& d) { return contains(d.reason, "changes.log"); }),
                  "no diagnostic says changes.log is not a regular file:" + shown);
        },
        std::chrono::seconds(20));
    ::close(filler);
}

// Item 9: kill -9 inside the first save of a new session with a 5 MB question leaves a
// complete header and a torn first record. The next store object quarantines its bytes
// and removes it, as it finishes a `.deleted-*` directory.
BOOST_AUTO_TEST_CASE(a_session_killed_during_its_first_save_is_quarantined_and_removed) {
    temp_dir dir;
    const fs::path root = dir / "store";
    open_store(root);
    const child_outcome child = fork_child(
        [&](int) {
            try {
                auto m = make_manager<killed_mid_write_ops>(root);
                m.start_new();
                m.save_exchange(std::string(5u << 20, 'q'), "answer");
            } catch (...) {
                return 2;
            }
            return 3; // the write was not killed
        },
        std::chrono::seconds(60));
    BOOST_TEST_REQUIRE(!child.timed_out, "the child had not finished after 60 s");
    BOOST_TEST_REQUIRE((WIFSIGNALED(child.status) && WTERMSIG(child.status) == SIGKILL),
                       "child status " << child.status);

    const std::string id = ds::sequential_ids{}();
    const fs::path hist = history(root, id);
    const std::string torn = read_bytes(hist);
    const auto nl = torn.find('\n');
    BOOST_TEST_REQUIRE(nl != std::string::npos); // the header is complete
    BOOST_TEST_REQUIRE(torn.find('\n', nl + 1) == std::string::npos);
    const std::string tail = torn.substr(nl + 1);
    BOOST_TEST_REQUIRE(tail.size() > (2u << 20)); // the first record is torn

    auto store = open_store(root);
    const auto all = store.list();
    const auto notes = store.take_diagnostics();
    BOOST_TEST(!fs::exists(root / "cli" / id), "the unborn session is still there");
    BOOST_TEST(!listed(all, id), "list() shows the unborn session");
    bool kept = false;
    for (const auto& q : entries(root / "quarantine")) {
        const std::string bytes = read_bytes(q);
        if (bytes.size() >= tail.size() && bytes.ends_with(tail) && torn.ends_with(bytes))
            kept = true;
    }
    BOOST_TEST(kept, "the quarantine holds no copy of the unborn session's bytes");
    BOOST_TEST(names(notes, id, ""), "no diagnostic names the unborn session:" << show(notes));
}

// Item 11: index.json grown to 200 MB (sparse). A list reads a bounded part of it, lists
// every session from the history files, and quarantines or replaces the index.
BOOST_AUTO_TEST_CASE(a_200_mb_index_is_read_only_up_to_a_cap_and_replaced) {
    temp_dir dir;
    const fs::path root = dir / "store";
    save_session(root, "aaaa0001", 3);
    save_session(root, "bbbb0002", 1);
    save_session(root, "cccc0003", 5);
    open_store(root).list();
    const fs::path index = root / "index.json";
    const fs::path big = root / "index.json.big";
    write_bytes(big, read_bytes(index));
    BOOST_TEST_REQUIRE(::truncate(big.c_str(), 200ll << 20) == 0);
    fs::rename(big, index);
    struct stat before {};
    BOOST_TEST_REQUIRE(::stat(index.c_str(), &before) == 0);

    ds::basic_jsonl_store<index_read_counting_ops> store{root, "cli", unsynced};
    const auto all = store.list();
    const auto notes = store.take_diagnostics();
    BOOST_TEST(all.size() == 3u, "listed:" << ids_of(all));
    for (const auto& [id, n] :
         {std::pair<std::string, std::uint64_t>{"aaaa0001", 3}, {"bbbb0002", 1}, {"cccc0003", 5}}) {
        const auto e = listed(all, id);
        BOOST_TEST((e && e->exchange_count == n), id << " not listed with " << n);
    }
    BOOST_TEST(store.ops().index_bytes_read < (64u << 20),
               "read " << store.ops().index_bytes_read << " bytes of index.json");
    struct stat after {};
    const bool replaced = ::stat(index.c_str(), &after) != 0 || after.st_ino != before.st_ino;
    BOOST_TEST(replaced, "index.json is still the 200 MB file");
    BOOST_TEST(mentions(notes, "index.json"), "nothing reported:" << show(notes));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------
// A new store: directories synced, files private

BOOST_AUTO_TEST_SUITE(new_store)

// Item 13: the store root and the parents create_directories made are synced, with the
// directory that holds each, or a power loss can take the whole store with it.
BOOST_AUTO_TEST_CASE(a_new_store_root_and_its_new_parents_are_synced) {
    temp_dir dir;
    const fs::path tmp = fs::canonical(dir.path());
    const fs::path c = tmp / "a" / "b" / "c";
    auto m = make_manager<fsync_recording_ops>(c);
    m.start_new();
    m.save_exchange("question", "answer");
    const auto& synced = m.storage().ops().synced;
    std::string shown;
    for (const auto& s : synced)
        shown += "\n  " + s;
    for (const fs::path& d : {c, c.parent_path(), c.parent_path().parent_path(), tmp}) {
        BOOST_TEST(std::count(synced.begin(), synced.end(), d.string()) > 0,
                   d.string() << " was never fsynced; fsync calls:" << shown);
    }
}

// Item 16: a root the store creates is 0700, and index.json, changes.log, index.lock and
// quarantine files are 0600, whatever the umask allows.
BOOST_AUTO_TEST_CASE(a_root_the_store_creates_and_every_file_in_it_are_private) {
    umask_guard mask(022);
    temp_dir dir;
    const fs::path root = dir / "store";
    std::string id;
    {
        auto m = make_manager(root);
        m.start_new();
        m.save_exchange("question 1", "answer 1");
        id = m.current()->id;
        m.storage().list();
    }
    BOOST_TEST(mode_of(root) == 0700u, std::oct << "root mode 0" << mode_of(root));
    for (const char* f : {"index.json", "changes.log", "index.lock"})
        BOOST_TEST(mode_of(root / f) == 0600u, f << std::oct << " mode 0" << mode_of(root / f));

    append_bytes(history(root, id), "{\"type\":\"exchange\",\"seq\":2,\"que"); // torn tail
    {
        auto m = make_manager(root);
        m.resume(id);
    }
    const auto quarantined = entries(root / "quarantine");
    BOOST_TEST_REQUIRE(!quarantined.empty());
    for (const auto& q : quarantined)
        BOOST_TEST(mode_of(q) == 0600u, q.string() << std::oct << " mode 0" << mode_of(q));
}

// Item 16: in a root the user made 0755 the store's files are still 0600, and the
// root's own mode is the user's choice: left as it is.
BOOST_AUTO_TEST_CASE(files_are_private_in_a_root_the_user_made_and_its_mode_is_kept) {
    umask_guard mask(022);
    temp_dir dir;
    const fs::path root = dir / "store";
    BOOST_TEST_REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    {
        auto m = make_manager(root);
        m.start_new();
        m.save_exchange("question 1", "answer 1");
        m.storage().list();
    }
    BOOST_TEST(mode_of(root) == 0755u, std::oct << "root mode 0" << mode_of(root));
    for (const char* f : {"index.json", "changes.log", "index.lock"})
        BOOST_TEST(mode_of(root / f) == 0600u, f << std::oct << " mode 0" << mode_of(root / f));
}

BOOST_AUTO_TEST_SUITE_END()
