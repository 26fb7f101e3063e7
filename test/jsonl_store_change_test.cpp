// SPDX-License-Identifier: BSL-1.0
// jsonl_store's changes on real files: a session created whole (create_whole), the trash
// (trash, restore, list_trash, purge), pins and the fork origin kept in the history and
// the index, and what interrupted changes leave behind.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_change
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace dexter::sessions::test;

namespace {

std::int64_t millis(ds::time_point t) {
    return std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
}

// The names in `dir` that start with `prefix`.
std::vector<std::string> names_starting(const fs::path& dir, const std::string& prefix) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename().string().starts_with(prefix))
            out.push_back(e.path().filename().string());
    return out;
}

// A filler that adds exchanges `seqs` (make_exchange) and, after them, a new title.
ds::session_filler filler(std::vector<std::uint64_t> seqs, std::string title = {}) {
    return [seqs, title](ds::session_sink& sink) {
        for (auto seq : seqs)
            sink.add(make_exchange(seq), {});
        if (!title.empty()) {
            ds::session_meta m;
            m.title = title;
            m.pinned = true;
            sink.update(m);
        }
    };
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) < 0)
        throw std::runtime_error("cannot stat " + p.string());
    return st.st_mode & 07777;
}

// Counts the index rewrites (renames onto index.json) a store makes.
struct counting_index_writes : ds::detail::posix_ops {
    std::shared_ptr<int> index_writes = std::make_shared<int>(0);
    int renameat(int from_dir, const char* from, int to_dir, const char* to) {
        if (std::string_view(to) == "index.json")
            ++*index_writes;
        return posix_ops::renameat(from_dir, from, to_dir, to);
    }
};

// Counts the reads (pread) a store makes.
struct counting_reads : ds::detail::posix_ops {
    std::shared_ptr<int> reads = std::make_shared<int>(0);
    ssize_t pread(int fd, void* data, std::size_t n, off_t offset) {
        ++*reads;
        return posix_ops::pread(fd, data, n, offset);
    }
};

} // namespace

// --- create_whole ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(create_whole_writes_one_history_in_place_and_leaves_the_session_closed) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    ds::session_meta m = make_meta("whole001");
    m.forked_from = ds::session_origin{"origin01", 4};
    BOOST_TEST(store.create_whole(m, filler({1, 2, 5}, "renamed")));
    const auto lines = lines_of(read_bytes(history(dir.path(), m.id)));
    BOOST_TEST_REQUIRE(lines.size() == 5u); // header, three exchanges, one meta
    BOOST_TEST(lines[2] == line_of(make_exchange(2)));
    BOOST_TEST(names_starting(dir.path() / "cli", ".").empty());
    BOOST_TEST(mode_of(history(dir.path(), m.id)) == 0600u);

    const auto found = store.find(m.id);
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->exchange_count == 5u); // a gap is kept: the last seq
    BOOST_TEST(found->title == "renamed");
    BOOST_TEST(found->pinned);
    BOOST_TEST((found->forked_from == ds::session_origin{"origin01", 4}));
    BOOST_TEST((found->updated_at == make_exchange(5).timestamp));
    const auto loaded = store.load(m.id);
    BOOST_TEST((seqs(loaded) == std::vector<std::uint64_t>{1, 2, 5}));
    check_contents(loaded);

    // Closed: another store object may open it at once.
    ds::jsonl_store other{dir.path(), "cli", unsynced};
    BOOST_TEST(other.open(m.id).exchange_count == 5u);
}

BOOST_AUTO_TEST_CASE(create_whole_copies_a_record_in_the_written_form_and_encodes_any_other) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const ds::exchange one = make_exchange(1), two = make_exchange(2);
    // Exchange 1's line with a field this library does not write: copied as it is.
    std::string kept = line_of(one);
    kept.insert(kept.size() - 1, R"(,"x_note":"kept")");
    BOOST_TEST(store.create_whole(make_meta("copy0001"), [&](ds::session_sink& sink) {
        sink.add(one, kept);
        sink.add(two, line_of(make_exchange(3))); // the record of another seq: not copied
    }));
    const auto lines = lines_of(read_bytes(history(dir.path(), "copy0001")));
    BOOST_TEST_REQUIRE(lines.size() == 3u);
    BOOST_TEST(lines[1] == kept);
    BOOST_TEST(lines[2] == line_of(two));
}

BOOST_AUTO_TEST_CASE(create_whole_writes_a_large_session_in_bounded_pieces) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    // 48 exchanges of 100 KiB: several flushes of the builder's buffer.
    BOOST_TEST(store.create_whole(make_meta("large001"), [](ds::session_sink& sink) {
        for (std::uint64_t seq = 1; seq <= 48; ++seq) {
            ds::exchange ex = make_exchange(seq);
            ex.answer += std::string(100 * 1024, 'z');
            sink.add(ex, {});
        }
    }));
    const auto loaded = store.load("large001");
    BOOST_TEST(loaded.exchanges.size() == 48u);
    BOOST_TEST(loaded.diagnostics.empty());
    BOOST_TEST(fs::file_size(history(dir.path(), "large001")) > 48u * 100 * 1024);
}

BOOST_AUTO_TEST_CASE(create_whole_returns_false_without_filling_when_the_id_is_taken) {
    temp_dir dir;
    save_session(dir.path(), "taken001", 2);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const std::string before = read_bytes(history(dir.path(), "taken001"));
    bool called = false;
    BOOST_TEST(
        !store.create_whole(make_meta("taken001"), [&](ds::session_sink&) { called = true; }));
    BOOST_TEST(!called);
    BOOST_TEST(read_bytes(history(dir.path(), "taken001")) == before);
    BOOST_TEST(names_starting(dir.path() / "cli", ".").empty());
}

BOOST_AUTO_TEST_CASE(create_whole_throws_session_exists_when_the_id_is_taken_meanwhile) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(store.create_whole(make_meta("race0001"),
                                         [&](ds::session_sink& sink) {
                                             sink.add(make_exchange(1), {});
                                             save_session(dir.path(), "race0001", 3);
                                         }),
                      ds::session_exists);
    // The session made meanwhile is untouched, and nothing of the build remains.
    BOOST_TEST(store.load("race0001").exchanges.size() == 3u);
    BOOST_TEST(names_starting(dir.path() / "cli", ".").empty());
}

BOOST_AUTO_TEST_CASE(create_whole_leaves_nothing_when_the_filler_or_the_sink_throws) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(store.create_whole(make_meta("throw001"),
                                         [](ds::session_sink& sink) {
                                             sink.add(make_exchange(1), {});
                                             throw std::runtime_error("the import failed");
                                         }),
                      std::runtime_error);
    BOOST_CHECK_THROW(store.create_whole(make_meta("throw002"),
                                         [](ds::session_sink& sink) {
                                             sink.add(make_exchange(2), {});
                                             sink.add(make_exchange(2), {}); // not after 2
                                         }),
                      ds::invalid_input);
    BOOST_CHECK_THROW(store.create_whole(make_meta("throw003"),
                                         [](ds::session_sink& sink) {
                                             ds::exchange ex = make_exchange(1);
                                             ex.answer = "\xff not UTF-8";
                                             sink.add(ex, {});
                                         }),
                      ds::invalid_input);
    ds::jsonl_store small{dir.path(), "cli", {ds::durability::process_crash, 4096}};
    BOOST_CHECK_THROW(small.create_whole(make_meta("throw004"),
                                         [](ds::session_sink& sink) {
                                             ds::exchange ex = make_exchange(1);
                                             ex.answer = std::string(8192, 'a');
                                             sink.add(ex, {});
                                         }),
                      ds::invalid_input);
    BOOST_TEST(store.list().empty());
    BOOST_TEST(entries(dir.path() / "cli").empty());
}

BOOST_AUTO_TEST_CASE(a_build_in_progress_is_invisible_and_not_cleaned_up_by_another_store) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    bool checked = false;
    BOOST_TEST(store.create_whole(make_meta("build001"), [&](ds::session_sink& sink) {
        sink.add(make_exchange(1), {});
        ds::jsonl_store other{dir.path(), "cli", unsynced};
        BOOST_TEST(other.list().empty());
        BOOST_TEST(!other.find("build001").has_value());
        BOOST_CHECK_THROW(other.load("build001"), ds::session_not_found);
        // Its directory survives the other store's listing (which cleans leftovers).
        BOOST_TEST(names_starting(dir.path() / "cli", ".new-build001-").size() == 1u);
        checked = true;
        sink.add(make_exchange(2), {});
    }));
    BOOST_TEST(checked);
    ds::jsonl_store later{dir.path(), "cli", unsynced};
    BOOST_TEST(later.load("build001").exchanges.size() == 2u);
}

BOOST_AUTO_TEST_CASE(leftovers_of_builds_are_removed_unless_a_builder_holds_them) {
    temp_dir dir;
    save_session(dir.path(), "live0001", 1);
    const fs::path cli = dir.path() / "cli";
    // A crashed build (its history unlocked), and one that died before its history.
    fs::create_directory(cli / ".new-dead0001-999999999-1");
    write_bytes(cli / ".new-dead0001-999999999-1" / "history.jsonl", "{\"type\":\"sess");
    fs::create_directory(cli / ".new-dead0002-999999999-2");
    // A build in progress: its history held with flock(LOCK_EX).
    fs::create_directory(cli / ".new-held0001-1-3");
    write_bytes(cli / ".new-held0001-1-3" / "history.jsonl", "");
    const int held =
        ::open((cli / ".new-held0001-1-3" / "history.jsonl").c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_TEST_REQUIRE(held >= 0);
    BOOST_TEST_REQUIRE(::flock(held, LOCK_EX) == 0);
    fs::remove(dir.path() / "index.json"); // a full verification lists the channel

    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto listed = store.list();
    BOOST_TEST(listed.size() == 1u);
    BOOST_TEST((names_starting(cli, ".") == std::vector<std::string>{".new-held0001-1-3"}));
    ::close(held);
}

BOOST_AUTO_TEST_CASE(a_builder_killed_midway_leaves_no_session_and_its_leftover_goes) {
    temp_dir dir;
    { ds::jsonl_store make{dir.path(), "cli", unsynced}; } // the channel directory
    int ready[2], hold[2];
    BOOST_TEST_REQUIRE(::pipe(ready) == 0);
    BOOST_TEST_REQUIRE(::pipe(hold) == 0);
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        // The builder: writes more than one flush of the session, says so, and waits
        // (for ever: it is killed) with its build unfinished.
        ::close(ready[0]);
        ::close(hold[1]);
        try {
            ds::jsonl_store store{dir.path(), "cli", unsynced};
            store.create_whole(make_meta("killed01"), [&](ds::session_sink& sink) {
                for (std::uint64_t seq = 1; seq <= 24; ++seq) {
                    ds::exchange ex = make_exchange(seq);
                    ex.answer += std::string(100 * 1024, 'k');
                    sink.add(ex, {});
                }
                char c = 'r';
                if (::write(ready[1], &c, 1) != 1)
                    ::_exit(3);
                [[maybe_unused]] const auto never = ::read(hold[0], &c, 1);
            });
        } catch (...) {
            ::_exit(2);
        }
        ::_exit(1);
    }
    ::close(ready[1]);
    ::close(hold[0]);
    char c = 0;
    BOOST_TEST_REQUIRE(::read(ready[0], &c, 1) == 1);
    const fs::path cli = dir.path() / "cli";
    {
        // While it builds, another process sees no session, and leaves its directory.
        ds::jsonl_store other{dir.path(), "cli", unsynced};
        fs::remove(dir.path() / "index.json");
        BOOST_TEST(other.list().empty());
        BOOST_TEST(names_starting(cli, ".new-killed01-").size() == 1u);
        BOOST_TEST(fs::file_size(cli / names_starting(cli, ".new-killed01-")[0] /
                                 "history.jsonl") >= ds::detail::builder_flush_bytes);
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(ready[0]);
    ::close(hold[1]);
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST(!fs::exists(cli / "killed01"));
    // The next store that lists the channel after a change there removes the leftover.
    save_session(dir.path(), "after001", 1);
    ds::jsonl_store later{dir.path(), "cli", unsynced};
    BOOST_TEST(later.list().size() == 1u);
    BOOST_TEST(!later.find("killed01").has_value());
    BOOST_TEST(names_starting(cli, ".").empty());
}

// --- pins and forks in the index ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(pinned_and_forked_from_survive_a_reopen_and_an_index_rebuild) {
    temp_dir dir;
    {
        ds::jsonl_store store{dir.path(), "cli", unsynced};
        ds::session_meta m = make_meta("pin00001");
        m.pinned = true;
        m.forked_from = ds::session_origin{"origin01", 7};
        BOOST_TEST_REQUIRE(store.create(m));
        append_exchange(store, m, make_exchange(1));
        store.close(m.id);
        ds::session_meta n = make_meta("pin00002");
        BOOST_TEST_REQUIRE(store.create(n));
        n.pinned = true;
        store.update(n); // pinned by an update
        BOOST_TEST(store.open(n.id).pinned);
        store.close(n.id);
        ds::session_meta o = make_meta("pin00003");
        o.pinned = true;
        BOOST_TEST_REQUIRE(store.create(o));
        o.pinned = false;
        store.update(o); // unpinned by an update
        store.close(o.id);
        store.list(); // writes the index
    }
    auto check = [&](const std::string& when) {
        BOOST_TEST_CONTEXT(when) {
            ds::jsonl_store store{dir.path(), "cli", unsynced};
            std::map<std::string, ds::session_meta> by_id;
            for (auto& m : store.list())
                by_id[m.id] = m;
            BOOST_TEST_REQUIRE(by_id.size() == 3u);
            BOOST_TEST(by_id["pin00001"].pinned);
            BOOST_TEST((by_id["pin00001"].forked_from == ds::session_origin{"origin01", 7}));
            BOOST_TEST(by_id["pin00002"].pinned);
            BOOST_TEST(!by_id["pin00002"].forked_from.has_value());
            BOOST_TEST(!by_id["pin00003"].pinned);
            BOOST_TEST(store.find("pin00001")->pinned);
            BOOST_TEST(store.open("pin00001").pinned);
        }
    };
    check("from the index");
    const std::string index = read_bytes(dir.path() / "index.json");
    BOOST_TEST(contains(index, R"("pinned":true)"));
    BOOST_TEST(contains(index, R"("forked_from":{"id":"origin01","seq":7})"));
    fs::remove(dir.path() / "index.json");
    check("after the index was rebuilt");
}

BOOST_AUTO_TEST_CASE(an_index_of_version_1_is_rebuilt_quietly) {
    temp_dir dir;
    {
        ds::jsonl_store store{dir.path(), "cli", unsynced};
        ds::session_meta m = make_meta("pin00001");
        m.pinned = true;
        BOOST_TEST_REQUIRE(store.create(m));
        store.close(m.id);
        store.list();
    }
    // What a library writing version 1 left: no pins, and version 1.
    std::string index = read_bytes(dir.path() / "index.json");
    BOOST_TEST_REQUIRE(contains(index, R"("version":2)"));
    index.replace(index.find(R"("version":2)"), 11, R"("version":1)");
    index.replace(index.find(R"("pinned":true)"), 13, R"("pinned":false)");
    write_bytes(dir.path() / "index.json", index);

    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto listed = store.list();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(listed[0].pinned);
    BOOST_TEST(store.take_diagnostics().empty()); // quietly
    BOOST_TEST(entries(dir.path() / "quarantine").empty());
    BOOST_TEST(contains(read_bytes(dir.path() / "index.json"), R"("version":2)"));
}

BOOST_AUTO_TEST_CASE(the_channel_trash_is_refused) {
    temp_dir dir;
    BOOST_CHECK_THROW((ds::jsonl_store{dir.path(), "trash"}), ds::invalid_channel);
    BOOST_TEST(!ds::is_valid_channel("trash"));
    BOOST_TEST(ds::is_valid_channel("trash2"));
}

// --- the trash ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(trash_moves_whole_session_directories_under_trash_channel_id_ms) {
    temp_dir dir;
    save_session(dir.path(), "trash001", 2);
    save_session(dir.path(), "trash002", 1);
    save_session(dir.path(), "keep0001", 1);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const ds::time_point when = at(1000) + std::chrono::milliseconds(1500);
    const std::vector<ds::session_id> ids{"trash001", "trash002"};
    const auto out = store.trash(ids, when, std::nullopt);
    BOOST_TEST_REQUIRE(out.size() == 2u);
    for (const auto& o : out) {
        BOOST_TEST(o.moved);
        BOOST_TEST(!o.error);
    }
    const fs::path bin = dir.path() / "trash" / "cli";
    const std::string suffix = "-" + std::to_string(millis(when));
    BOOST_TEST(fs::is_regular_file(bin / ("trash001" + suffix) / "history.jsonl"));
    BOOST_TEST(fs::is_regular_file(bin / ("trash002" + suffix) / "history.jsonl"));
    BOOST_TEST(mode_of(dir.path() / "trash") == 0700u);
    BOOST_TEST(mode_of(bin) == 0700u);
    BOOST_TEST(!fs::exists(dir.path() / "cli" / "trash001"));
    BOOST_TEST(!store.find("trash001").has_value());
    BOOST_CHECK_THROW(store.load("trash001"), ds::session_not_found);
    BOOST_CHECK_THROW(store.open("trash001"), ds::session_not_found);
    BOOST_TEST(store.list().size() == 1u);

    // Another store object (another process) sees the same.
    ds::jsonl_store other{dir.path(), "cli", unsynced};
    BOOST_TEST(other.list().size() == 1u);
    auto listed = other.list_trash();
    BOOST_TEST_REQUIRE(listed.size() == 2u);
    std::sort(listed.begin(), listed.end(),
              [](const auto& a, const auto& b) { return a.meta.id < b.meta.id; });
    BOOST_TEST(listed[0].meta.id == "trash001");
    BOOST_TEST(listed[0].meta.exchange_count == 2u);
    BOOST_TEST(listed[0].meta.title == "title of trash001");
    BOOST_TEST(millis(listed[0].deleted_at) == millis(when));
}

BOOST_AUTO_TEST_CASE(trash_reports_each_session_it_could_not_move_and_moves_the_others) {
    temp_dir dir;
    save_session(dir.path(), "busy0001", 1);
    save_session(dir.path(), "mine0001", 1);
    save_session(dir.path(), "free0001", 1);
    ds::jsonl_store holder{dir.path(), "cli", unsynced};
    holder.open("busy0001");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    store.open("mine0001"); // held by the trashing object itself: allowed
    const std::vector<ds::session_id> ids{"busy0001", "gone0001", "mine0001", "free0001", "BAD"};
    const auto out = store.trash(ids, at(5), std::nullopt);
    BOOST_TEST_REQUIRE(out.size() == 5u);
    BOOST_CHECK_THROW(std::rethrow_exception(out[0].error), ds::session_busy);
    BOOST_CHECK_THROW(std::rethrow_exception(out[1].error), ds::session_not_found);
    BOOST_TEST(out[2].moved);
    BOOST_TEST(out[3].moved);
    BOOST_CHECK_THROW(std::rethrow_exception(out[4].error), ds::invalid_session_id);
    BOOST_TEST(!out[0].moved);
    BOOST_TEST(store.find("busy0001").has_value());
    // The lease of mine0001 ended with the move: it can be restored and opened again.
    store.restore("mine0001");
    ds::jsonl_store third{dir.path(), "cli", unsynced};
    BOOST_TEST(third.open("mine0001").exchange_count == 1u);
}

BOOST_AUTO_TEST_CASE(trash_with_stale_before_leaves_pinned_and_recent_sessions) {
    temp_dir dir;
    save_session(dir.path(), "old00001", 2); // updated at at(20)
    save_session(dir.path(), "new00001", 5); // updated at at(50)
    {
        ds::jsonl_store store{dir.path(), "cli", unsynced};
        ds::session_meta m = make_meta("pinned01");
        m.pinned = true;
        BOOST_TEST_REQUIRE(store.create(m));
        store.close(m.id);
    }
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const std::vector<ds::session_id> ids{"old00001", "new00001", "pinned01"};
    const auto out = store.trash(ids, at(100), at(30));
    BOOST_TEST(out[0].moved);
    BOOST_TEST(!out[1].moved);
    BOOST_TEST(out[1].kept_because == "it was saved into since it was listed");
    BOOST_TEST(!out[2].moved);
    BOOST_TEST(out[2].kept_because == "it is pinned");
    BOOST_TEST(!out[1].error);
    BOOST_TEST(store.list().size() == 2u);
}

BOOST_AUTO_TEST_CASE(trash_with_stale_before_judges_from_a_current_entry_and_reads_a_changed_file) {
    temp_dir dir;
    save_session(dir.path(), "quiet001", 1); // updated at at(10)
    save_session(dir.path(), "quiet002", 1);
    auto grown = save_session(dir.path(), "grown001", 1);
    counting_reads ops;
    ds::basic_jsonl_store<counting_reads> store{dir.path(), "cli", unsynced, ops};
    BOOST_TEST_REQUIRE(store.list().size() == 3u); // every entry current
    // What a move reads without judging (the refresh of the index after it)...
    *ops.reads = 0;
    const std::vector<ds::session_id> unjudged{"quiet002"};
    BOOST_TEST(store.trash(unjudged, at(100), std::nullopt)[0].moved);
    const int baseline = *ops.reads;
    // ... is all that one judged from its current entry reads: not its history.
    *ops.reads = 0;
    const std::vector<ds::session_id> quiet{"quiet001"};
    const auto first = store.trash(quiet, at(100), at(30));
    BOOST_TEST(first[0].moved);
    BOOST_TEST(*ops.reads == baseline);
    {
        // Saved into by another store after the list: its entry no longer matches the file.
        ds::jsonl_store other{dir.path(), "cli", unsynced};
        other.open(grown.id);
        append_exchange(other, grown, make_exchange(2));
        append_exchange(other, grown, make_exchange(3));
        append_exchange(other, grown, make_exchange(4)); // updated at at(40)
        other.close(grown.id);
    }
    const std::vector<ds::session_id> changed{"grown001"};
    const auto second = store.trash(changed, at(100), at(30));
    BOOST_TEST(!second[0].moved);
    BOOST_TEST(second[0].kept_because == "it was saved into since it was listed");
}

BOOST_AUTO_TEST_CASE(a_batch_longer_than_a_chunk_moves_every_session_and_records_each_change) {
    temp_dir dir;
    std::vector<ds::session_id> ids;
    {
        ds::jsonl_store maker{dir.path(), "cli", unsynced};
        for (int i = 0; i < 300; ++i) { // two chunks of changes.log's lock
            const std::string n = std::to_string(i);
            ids.push_back("chunk" + std::string(3 - n.size(), '0') + n);
            BOOST_TEST_REQUIRE(maker.create(make_meta(ids.back())));
            maker.close(ids.back());
        }
    }
    ids.insert(ids.begin() + 150, "bad id"); // an invalid id is its own outcome
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto before = read_bytes(dir.path() / "changes.log").size();
    const auto out = store.trash(ids, at(5), std::nullopt);
    BOOST_TEST_REQUIRE(out.size() == ids.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        BOOST_TEST(out[i].id == ids[i]);
        BOOST_TEST(out[i].moved == (i != 150));
    }
    BOOST_TEST(static_cast<bool>(out[150].error));
    BOOST_TEST(store.list().empty());
    const auto log = read_bytes(dir.path() / "changes.log").substr(before);
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (i != 150)
            BOOST_TEST(contains(log, "\ncli/" + ids[i] + "\n"));
}

BOOST_AUTO_TEST_CASE(a_batch_writes_the_index_once) {
    temp_dir dir;
    std::vector<ds::session_id> ids;
    for (int i = 0; i < 12; ++i) {
        ids.push_back("batch0" + std::string(i < 10 ? "0" : "") + std::to_string(i));
        save_session(dir.path(), ids.back(), 1);
    }
    counting_index_writes ops;
    ds::basic_jsonl_store<counting_index_writes> store{dir.path(), "cli", unsynced, ops};
    store.list();
    *ops.index_writes = 0;
    const auto out = store.trash(ids, at(5), std::nullopt);
    for (const auto& o : out)
        BOOST_TEST(o.moved);
    BOOST_TEST(*ops.index_writes == 1);
}

BOOST_AUTO_TEST_CASE(restore_brings_back_the_most_recently_trashed_and_refuses_a_clash) {
    temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    ds::jsonl_store watcher{dir.path(), "cli", unsynced};
    save_session(dir.path(), "again001", 1);
    const std::vector<ds::session_id> ids{"again001"};
    BOOST_TEST(store.trash(ids, at(7), std::nullopt)[0].moved);
    save_session(dir.path(), "again001", 3); // the id used again, and trashed at the same ms
    BOOST_TEST(watcher.list().size() == 1u);
    BOOST_TEST(store.trash(ids, at(7), std::nullopt)[0].moved);
    const fs::path bin = dir.path() / "trash" / "cli";
    const auto ms = millis(at(7));
    BOOST_TEST(fs::exists(bin / ("again001-" + std::to_string(ms))));
    BOOST_TEST(fs::exists(bin / ("again001-" + std::to_string(ms + 1))));
    BOOST_TEST(watcher.list().empty());

    save_session(dir.path(), "again001", 2); // a live session with that id
    BOOST_CHECK_THROW(store.restore("again001"), ds::session_exists);
    BOOST_TEST(store.list_trash().size() == 2u);
    BOOST_TEST(store.load("again001").exchanges.size() == 2u);
    store.remove("again001");

    const auto back = store.restore("again001");
    BOOST_TEST(back.exchange_count == 3u); // the most recent: at ms + 1
    BOOST_TEST(watcher.find("again001")->exchange_count == 3u);
    BOOST_TEST(watcher.list().size() == 1u);
    BOOST_TEST(store.list_trash().size() == 1u);
    BOOST_CHECK_THROW(store.restore("never001"), ds::session_not_found);
    BOOST_CHECK_THROW(store.restore("NOT AN ID"), ds::invalid_session_id);
}

BOOST_AUTO_TEST_CASE(purge_deletes_one_trashed_session_for_good) {
    temp_dir dir;
    save_session(dir.path(), "purge001", 1);
    save_session(dir.path(), "purge002", 1);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(store.purge("purge001", at(3)), ds::session_not_found); // no trash yet
    const std::vector<ds::session_id> ids{"purge001", "purge002"};
    store.trash(ids, at(3), std::nullopt);
    BOOST_CHECK_THROW(store.purge("purge001", at(4)), ds::session_not_found);
    store.purge("purge001", at(3));
    BOOST_CHECK_THROW(store.purge("purge001", at(3)), ds::session_not_found);
    const auto left = store.list_trash();
    BOOST_TEST_REQUIRE(left.size() == 1u);
    BOOST_TEST(left[0].meta.id == "purge002");
    BOOST_TEST(entries(dir.path() / "trash" / "cli").size() == 1u);
    BOOST_CHECK_THROW(store.restore("purge001"), ds::session_not_found);
}

BOOST_AUTO_TEST_CASE(list_trash_skips_what_it_cannot_read_and_removes_purge_leftovers) {
    temp_dir dir;
    save_session(dir.path(), "fine0001", 1);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_TEST(store.list_trash().empty()); // no trash directory yet
    const std::vector<ds::session_id> ids{"fine0001"};
    store.trash(ids, at(3), std::nullopt);
    const fs::path bin = dir.path() / "trash" / "cli";
    fs::create_directory(bin / "nohist01-5");              // no history: noted, skipped
    fs::create_directory(bin / "not-an-entry");            // not a trash name: skipped
    fs::create_directory(bin / ".purging-gone0001-9-1-2"); // a purge cut short: removed
    write_bytes(bin / ".purging-gone0001-9-1-2" / "history.jsonl", "x");
    store.take_diagnostics();
    const auto listed = store.list_trash();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(listed[0].meta.id == "fine0001");
    BOOST_TEST(mentions(store.take_diagnostics(), "nohist01"));
    BOOST_TEST(!fs::exists(bin / ".purging-gone0001-9-1-2"));
    BOOST_TEST(fs::exists(bin / "not-an-entry"));
}

BOOST_AUTO_TEST_CASE(the_trash_is_per_channel) {
    temp_dir dir;
    ds::jsonl_store cli{dir.path(), "cli", unsynced};
    ds::jsonl_store web{dir.path(), "web", unsynced};
    BOOST_TEST_REQUIRE(cli.create(make_meta("chan0001")));
    cli.close("chan0001");
    const std::vector<ds::session_id> ids{"chan0001"};
    BOOST_TEST(cli.trash(ids, at(1), std::nullopt)[0].moved);
    BOOST_TEST(web.list_trash().empty());
    BOOST_CHECK_THROW(web.restore("chan0001"), ds::session_not_found);
    BOOST_TEST(cli.list_trash().size() == 1u);
    // The trash directory is not taken for a channel by a full verification.
    fs::remove(dir.path() / "index.json");
    ds::jsonl_store fresh{dir.path(), "cli", unsynced};
    BOOST_TEST(fresh.list().empty());
    BOOST_TEST(fresh.take_diagnostics().empty());
}

// --- fork --------------------------------------------------------------------------------

namespace {

// Session `source01` in `root`: exchanges 1..3 saved, then lines a load skips or repairs
// (a meta record that renames and pins it, a damaged line, a gap, a lone surrogate, a
// header after line 1, a record of an unknown type, a line this library did not write
// the way it writes them, a damaged line that starts as a canonical exchange 11), and a
// torn tail. With `repeats`, also seqs that repeat: exchange 4 again, a seq key given
// twice, and a damaged exchange 13 before the good one (which a fork that copied the
// damaged one undecoded would skip). Returns what load() reads.
ds::loaded_session damaged_source(const fs::path& root, bool repeats) {
    save_session(root, "source01", 3);
    std::string renamed;
    ds::session_meta m = make_meta("source01");
    m.title = "the current title";
    m.pinned = true;
    ds::detail::encode_meta(renamed, m);
    std::string late_header;
    ds::detail::encode_header(late_header, make_meta("other001"));
    std::string extra_field = line_of(make_exchange(4));
    extra_field.insert(extra_field.size() - 1, R"(,"x_note":"kept")");
    std::string surrogate = line_of(make_exchange(8));
    surrogate.replace(surrogate.find("question 8"), 10, R"(question \ud800 8)");
    std::string twice = line_of(make_exchange(9));
    twice.insert(twice.size() - 1, R"(,"seq":2)");
    const auto damaged = [](std::uint64_t seq) { // canonical start, not JSON
        std::string line = line_of(make_exchange(seq));
        line.erase(line.find(R"("answer":)") + 8, 1);
        return line + "\n";
    };
    const auto nl = [](const std::string& line) { return line + "\n"; };
    std::string text = renamed + nl(extra_field) + "not json at all\n";
    if (repeats)
        text += nl(line_of(make_exchange(4)));
    text += nl(line_of(make_exchange(7))) + nl(surrogate) + late_header +
            nl(R"({"type":"future","x":1})");
    if (repeats)
        text += nl(twice);
    text += nl(line_of(make_exchange(9))) + nl(line_of(make_exchange(10))) + damaged(11);
    if (repeats)
        text += damaged(13);
    text += nl(line_of(make_exchange(13))) + nl(line_of(make_exchange(14))) +
            line_of(make_exchange(15)).substr(0, 30); // torn
    std::string all = read_bytes(history(root, "source01"));
    write_bytes(history(root, "source01"), all + text);
    return ds::jsonl_store{root, "cli", unsynced}.load("source01");
}

// What a fork through `through` must hold: the source's exchanges up to it.
std::vector<ds::exchange> through_seq(const ds::loaded_session& s, std::uint64_t through) {
    std::vector<ds::exchange> out;
    for (const auto& ex : s.exchanges)
        if (ex.seq <= through)
            out.push_back(ex);
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_fork_holds_what_a_load_of_the_source_reads_through_its_seq) {
    for (const bool repeats : {false, true}) {
        BOOST_TEST_CONTEXT("repeats " << repeats) {
            temp_dir dir;
            const auto source = damaged_source(dir.path(), repeats);
            BOOST_TEST_REQUIRE(
                (seqs(source) == std::vector<std::uint64_t>{1, 2, 3, 4, 7, 8, 9, 10, 13, 14}));
            BOOST_TEST_REQUIRE(source.meta.title == "the current title");
            BOOST_TEST_REQUIRE(source.meta.pinned);
            ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{dir.path(), "cli", unsynced}};
            for (std::uint64_t through : {1u, 4u, 7u, 8u, 9u, 10u, 13u, 14u}) {
                BOOST_TEST_CONTEXT("through " << through) {
                    const auto made = m.fork_session("source01", through);
                    const auto loaded = m.storage().load(made.id);
                    BOOST_TEST((loaded.exchanges == through_seq(source, through)));
                    BOOST_TEST(loaded.meta.exchange_count == through);
                    BOOST_TEST(made.exchange_count == through);
                    BOOST_TEST(loaded.meta.title == "the current title");
                    BOOST_TEST(!loaded.meta.pinned);
                    BOOST_TEST(
                        (loaded.meta.forked_from == ds::session_origin{"source01", through}));
                    BOOST_TEST((made.updated_at == loaded.meta.updated_at));
                    // The index took the fork's entry as a fresh scan of its history finds it.
                    fs::remove(dir.path() / "index.json");
                    const auto found = m.storage().find(made.id);
                    const auto fresh = ds::jsonl_store{dir.path(), "cli", unsynced}.find(made.id);
                    BOOST_TEST_REQUIRE(found.has_value());
                    BOOST_TEST_REQUIRE(fresh.has_value());
                    BOOST_TEST((*found == *fresh));
                    BOOST_TEST((*found == loaded.meta));
                    const std::string copy = read_bytes(history(dir.path(), made.id));
                    if (through >= 4) // a canonical line is copied as it is
                        BOOST_TEST(contains(copy, R"("x_note":"kept")"));
                    BOOST_TEST(!contains(copy, "not json"));
                    BOOST_TEST(!contains(copy, "future"));
                    // Without repeats, canonical lines are copied undecoded, the damaged
                    // exchange 11 too (a load of the fork skips it as it skips it in the
                    // source); a repeat makes the fork decode every line.
                    BOOST_TEST(contains(copy, R"("answer""answer 11)") ==
                               (!repeats && through >= 13));
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_fork_whose_last_copied_line_does_not_decode_is_made_again_exactly) {
    temp_dir dir;
    const auto source = damaged_source(dir.path(), true);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    ds::session_meta fork = make_meta("fork0001");
    fork.forked_from = ds::session_origin{"source01", 13};
    // Copying lines without decoding them would take the damaged exchange 13 and skip
    // the good one after it as a repeat: the check of the last line catches it.
    BOOST_TEST_REQUIRE(store.fork("source01", 13, fork));
    const auto loaded = store.load("fork0001");
    BOOST_TEST((loaded.exchanges == through_seq(source, 13)));
    BOOST_TEST(!contains(read_bytes(history(dir.path(), "fork0001")), R"("answer""answer 13)"));
    BOOST_TEST(fork.exchange_count == 13u);
    BOOST_TEST((fork.updated_at == make_exchange(13).timestamp));
    BOOST_TEST(names_starting(dir.path() / "cli", ".").empty());
}

BOOST_AUTO_TEST_CASE(a_fork_after_a_damaged_line_dated_later_is_made_again_exactly) {
    temp_dir dir;
    save_session(dir.path(), "source01", 3);
    // Exchange 4 starts as written but does not decode, and its timestamp is later than
    // those after it: copied undecoded, it would make the fork's updated_at too late.
    ds::exchange late = make_exchange(4);
    late.timestamp = ds::test::at(1000);
    std::string damaged = line_of(late);
    damaged.erase(damaged.find(R"("answer":)") + 8, 1);
    write_bytes(history(dir.path(), "source01"), read_bytes(history(dir.path(), "source01")) +
                                                     damaged + "\n" + line_of(make_exchange(5)) +
                                                     "\n" + line_of(make_exchange(6)) + "\n");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto source = store.load("source01");
    ds::session_meta fork = make_meta("fork0001");
    BOOST_TEST_REQUIRE(store.fork("source01", 6, fork));
    const auto loaded = store.load("fork0001");
    BOOST_TEST((loaded.exchanges == source.exchanges));
    BOOST_TEST((fork.updated_at == make_exchange(6).timestamp));
    BOOST_TEST((loaded.meta.updated_at == fork.updated_at));
    BOOST_TEST((store.find("fork0001")->updated_at == fork.updated_at));
    BOOST_TEST(!contains(read_bytes(history(dir.path(), "fork0001")), damaged));
}

BOOST_AUTO_TEST_CASE(a_fork_refuses_a_taken_id_and_a_newer_source_and_writes_nothing) {
    temp_dir dir;
    save_session(dir.path(), "source01", 3);
    save_session(dir.path(), "taken001", 1);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    ds::session_meta fork = make_meta("taken001");
    BOOST_TEST(!store.fork("source01", 3, fork));
    BOOST_TEST(store.load("taken001").exchanges.size() == 1u);
    fork.id = "fork0001";
    BOOST_CHECK_THROW(store.fork("missing1", 3, fork), ds::session_not_found);
    std::string text = read_bytes(history(dir.path(), "source01"));
    text.replace(text.find(R"("version":1)"), 11, R"("version":9)");
    write_bytes(history(dir.path(), "source01"), text);
    BOOST_CHECK_THROW(store.fork("source01", 3, fork), ds::format_error);
    BOOST_TEST(!fs::exists(dir.path() / "cli" / "fork0001"));
    BOOST_TEST(names_starting(dir.path() / "cli", ".").empty());
}

BOOST_AUTO_TEST_CASE(a_line_that_may_hide_a_seq_and_its_end_are_told_wherever_the_bytes_fall) {
    const std::string plain = line_of(make_exchange(39)); // some 80 bytes, no q after "seq"
    BOOST_TEST_REQUIRE(plain.find('q', ds::detail::seq_key_end) != std::string::npos);
    // What follows the newline belongs to the next line.
    const std::string next = "\n" + std::string(40, 'x') + R"(\u0041 "seq" )" + "\n";
    bool hides = true;
    BOOST_TEST(ds::detail::canonical_line_end(plain + next, hides) == plain.size());
    BOOST_TEST(!hides);
    const std::size_t from = plain.find(R"("answer":")") + 10;
    for (std::size_t at = from; at + 2 < plain.size(); ++at) {
        BOOST_TEST_CONTEXT("at " << at) {
            std::string escaped = plain, key = plain, backslash = plain, eq = plain;
            escaped.insert(at, R"(\u0041)");
            key.insert(at, R"("seq")");
            backslash.insert(at, R"(\n)");
            eq.insert(at, R"("seqx)");
            const auto told = [&](const std::string& line, std::size_t end) {
                bool h = false;
                BOOST_TEST(ds::detail::canonical_line_end(line + next, h) == end);
                bool cut_h = false;
                if (line.find('\n') == std::string::npos)
                    BOOST_TEST(ds::detail::canonical_line_end(line, cut_h) == std::string::npos);
                return h;
            };
            BOOST_TEST(told(escaped, escaped.size()));
            BOOST_TEST(told(key, key.size()));
            BOOST_TEST(!told(backslash, backslash.size()));
            BOOST_TEST(!told(eq, eq.size()));
            BOOST_TEST(!told(plain.substr(0, at), at)); // the line ends at its newline
            BOOST_TEST(!told(escaped.substr(0, at) + "\n" + escaped.substr(at), at));
        }
    }
}

namespace {

// Counts the writes a store makes.
struct counting_writes : ds::detail::posix_ops {
    std::shared_ptr<int> writes = std::make_shared<int>(0);
    ssize_t write(int fd, const void* data, std::size_t n) {
        ++*writes;
        return posix_ops::write(fd, data, n);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_fork_writes_runs_of_lines_from_each_chunk_as_they_are) {
    constexpr std::size_t chunk = ds::detail::fork_chunk;
    temp_dir dir;
    ds::jsonl_options options = unsynced;
    options.max_record_bytes = 1u << 20;
    save_session(dir.path(), "source01", 0);
    std::string text = read_bytes(history(dir.path(), "source01"));
    std::string expected;                         // what a fork copies after its header
    std::map<std::uint64_t, std::size_t> ends_at; // seq -> the end of its line in expected
    std::uint64_t seq = 0;
    const auto line_sized = [&](std::size_t size) { // exchange seq + 1, size bytes long
        ds::exchange ex = make_exchange(++seq);
        ex.answer.clear();
        ex.answer.assign(size - 1 - line_of(ex).size(), static_cast<char>('a' + seq % 26));
        return line_of(ex) + "\n";
    };
    const auto add = [&](const std::string& line, bool copied) {
        text += line;
        if (copied) {
            expected += line;
            ends_at[seq] = expected.size();
        }
    };
    const auto fill_to = [&](std::size_t end) { // lines of some 5 KB, the last ending at end
        while (text.size() + 12000 < end)
            add(line_sized(4000 + seq * 131 % 2000), true);
        add(line_sized(end - text.size()), true);
        BOOST_TEST_REQUIRE(text.size() == end);
    };
    fill_to(chunk);                   // the first chunk ends with a newline
    fill_to(2 * chunk - 10);          // the next ends inside the canonical start of a line
    add(line_sized(3 * chunk), true); // a line longer than a chunk
    add(line_sized(options.max_record_bytes + 100), false); // longer than a record: skipped
    const auto escaped = [&] { // decoded: the run before it is written first
        std::string line = line_sized(3000);
        return line.replace(line.find("question"), 9, R"(\u0071uestion )");
    };
    add(escaped(), true);
    std::string renamed;
    ds::session_meta m = make_meta("source01");
    m.title = "renamed";
    ds::detail::encode_meta(renamed, m);
    add(renamed, false);
    std::string damaged = line_sized(2000); // canonical start, not JSON: copied undecoded
    damaged.erase(damaged.find(R"("answer":)") + 8, 1);
    add(damaged, true);
    for (int i = 0; i < 80; ++i)
        add(i == 20 ? escaped() : line_sized(1000 + seq * 977 % 9000), true);
    text += line_sized(500).substr(0, 300); // a torn tail
    write_bytes(history(dir.path(), "source01"), text);

    counting_writes ops;
    ds::basic_jsonl_store<counting_writes> store{dir.path(), "cli", options, ops};
    const auto source = store.load("source01");
    BOOST_TEST_REQUIRE(source.exchanges.size() == ends_at.size() - 1); // less the damaged one
    int n = 0;
    for (const std::uint64_t through : {ends_at.rbegin()->first, seq - 40, std::uint64_t{3}}) {
        BOOST_TEST_CONTEXT("through " << through) {
            ds::session_meta fork = make_meta("fork000" + std::to_string(++n));
            const int writes_before = *ops.writes;
            BOOST_TEST_REQUIRE(store.fork("source01", through, fork));
            const int writes = *ops.writes - writes_before;
            const std::string copy = read_bytes(history(dir.path(), fork.id));
            const std::string lines = copy.substr(copy.find('\n') + 1);
            BOOST_TEST(lines.size() == ends_at.at(through));
            BOOST_TEST((lines == expected.substr(0, ends_at.at(through))));
            BOOST_TEST((store.load(fork.id).exchanges == through_seq(source, through)));
            BOOST_TEST(fork.exchange_count == through);
            // Lines go out in runs, not one by one.
            BOOST_TEST(writes < static_cast<int>(ends_at.size() / 4) + 8);
        }
    }
}
