// SPDX-License-Identifier: BSL-1.0
// jsonl_store's index.json when it is damaged, replaced or out of step with the history
// files (RELIABILITY.md matrix rows 4 and 5): the history files always win.
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/query.hpp>
#include <dexter/sessions/session_manager.hpp>

#define BOOST_TEST_MODULE jsonl_store_index
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <grp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace dexter::sessions::test;

namespace {

// A store with three sessions and the index.json that listing them wrote.
struct indexed_store {
    ds::test::temp_dir dir;
    std::map<std::string, ds::session_meta> sessions;

    indexed_store() {
        sessions["aaaa0001"] = save_session(dir.path(), "aaaa0001", 3);
        sessions["bbbb0002"] = save_session(dir.path(), "bbbb0002", 1);
        sessions["cccc0003"] = save_session(dir.path(), "cccc0003", 5);
        ds::jsonl_store{dir.path(), "cli", unsynced}.list();
        BOOST_TEST_REQUIRE(fs::is_regular_file(index()));
    }
    fs::path index() const { return dir / "index.json"; }
    fs::path quarantine() const { return dir / "quarantine"; }
    ds::jsonl_store store() const { return ds::jsonl_store{dir.path(), "cli", unsynced}; }
};

// The listing is exactly `want`: same ids, titles, times and counts.
void check_listed(std::vector<ds::session_meta> got,
                  const std::map<std::string, ds::session_meta>& want) {
    std::sort(got.begin(), got.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (const auto& m : got) {
        BOOST_TEST_CONTEXT("session " << m.id) {
            BOOST_TEST_REQUIRE(want.count(m.id) == 1u);
            BOOST_TEST(m == want.at(m.id));
        }
    }
}

// index.json is a valid index of this library again.
void check_index_rebuilt(const fs::path& index) {
    BOOST_TEST_REQUIRE(fs::is_regular_file(fs::symlink_status(index)));
    const auto decoded = ds::detail::decode_index(read_bytes(index));
    BOOST_TEST((decoded.state == ds::detail::index_decode::status::ok), decoded.why);
}

// Files of the store, with their bytes: what must not change while the index is redone.
std::map<std::string, std::string> history_bytes(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(root / "cli"))
        if (fs::is_regular_file(e.path() / "history.jsonl"))
            out[e.path().filename().string()] = read_bytes(e.path() / "history.jsonl");
    return out;
}

// Waits until the file system's clock has moved past `p`'s modification time, so that
// a change made now gives `p` a different one (the store notices sessions added or
// removed behind its back through the channel directory's mtime; coarse timestamps
// would hide a change made within the same tick).
void wait_past_mtime(const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    for (;;) {
        struct timespec now {};
        ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
        if (now.tv_sec > st.st_mtim.tv_sec ||
            (now.tv_sec == st.st_mtim.tv_sec && now.tv_nsec > st.st_mtim.tv_nsec))
            return;
        const struct timespec ms { 0, 1'000'000 };
        ::nanosleep(&ms, nullptr);
    }
}

} // namespace

// =====================================================================================
// Row 4: index.json damaged, missing, or not a file
// =====================================================================================

namespace {

// Puts `bytes` in index.json, then checks that a new store lists every session from the
// history files, moves the damaged index to quarantine, says so, and writes a good one.
void check_damaged_index(indexed_store& s, const std::string& bytes) {
    const auto histories = history_bytes(s.dir.path());
    write_bytes(s.index(), bytes);
    auto store = s.store();
    check_listed(store.list(), s.sessions);
    const auto notes = store.take_diagnostics();
    BOOST_TEST_REQUIRE(notes.size() == 1u, show(notes));
    BOOST_TEST(contains(notes[0].reason, "index.json is damaged"), notes[0].reason);
    const auto moved = added({}, entries(s.quarantine()));
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(contains(notes[0].reason, "moved to " + moved[0].string()), notes[0].reason);
    BOOST_TEST((read_bytes(moved[0]) == bytes), "the quarantined index is not what was there");
    check_index_rebuilt(s.index());
    BOOST_TEST(store.find("aaaa0001").has_value());
    // The rebuilt index is trusted by the next store: nothing more to report.
    auto next = s.store();
    check_listed(next.list(), s.sessions);
    BOOST_TEST(next.take_diagnostics().empty());
    BOOST_TEST(entries(s.quarantine()).size() == 1u);
    BOOST_TEST(history_bytes(s.dir.path()) == histories);
}

} // namespace

BOOST_AUTO_TEST_CASE(damaged_index_contents) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"empty", ""},
        {"an opening brace", "{"},
        {"not JSON at all", "\177ELF\x02\x01\x01"},
        {"a JSON array", "[1,2,3]\n"},
        {"someone else's JSON", R"({"hello":"world"})"},
        {"another format", R"({"format":"other-index","version":1,"channels":{}})"},
        {"no changes position", R"({"format":"dexter-sessions-index","version":1,"channels":{}})"},
        {"a bad session id in it",
         R"({"format":"dexter-sessions-index","version":1,"boot_id":"","changes":{"inode":1,"offset":0},"channels":{"cli":{"dir_mtime_ns":0,"sessions":{"../../etc":{}}}}})"},
        {"version 0", R"({"format":"dexter-sessions-index","version":0})"},
        {"JSON nested too deep", std::string(100, '[') + std::string(100, ']')},
    };
    for (const auto& [what, bytes] : cases) {
        BOOST_TEST_CONTEXT(what) {
            indexed_store s;
            check_damaged_index(s, bytes);
        }
    }
}

BOOST_AUTO_TEST_CASE(truncated_index) {
    indexed_store probe;
    const std::string good = read_bytes(probe.index());
    BOOST_TEST_REQUIRE(good.size() > 100u);
    // Every cut shorter than the closing brace; the first, middle and last, and a seeded
    // random sample of the rest.
    std::vector<std::size_t> cuts = {0, 1, good.size() / 2, good.size() - 2};
    const unsigned seed = 20261126;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> pick(0, good.size() - 2);
    for (int i = 0; i < 16; ++i)
        cuts.push_back(pick(rng));
    for (const auto cut : cuts) {
        BOOST_TEST_CONTEXT("index.json cut to " << cut << " of " << good.size() << " bytes (seed "
                                                << seed << ")") {
            indexed_store s;
            // Same sessions, same sizes: the index differs only in times and inodes.
            const std::string mine = read_bytes(s.index());
            check_damaged_index(s, mine.substr(0, std::min(cut, mine.size() - 2)));
        }
    }
}

BOOST_AUTO_TEST_CASE(missing_index_is_rebuilt_quietly) {
    indexed_store s;
    fs::remove(s.index());
    auto store = s.store();
    check_listed(store.list(), s.sessions);
    // A missing index is the normal state of a new store: nothing to report or keep.
    BOOST_TEST(store.take_diagnostics().empty());
    BOOST_TEST(!fs::exists(s.quarantine()));
    check_index_rebuilt(s.index());
}

BOOST_AUTO_TEST_CASE(index_that_is_a_directory) {
    indexed_store s;
    fs::remove(s.index());
    fs::create_directory(s.index());
    write_bytes(s.index() / "keep.txt", "something of the user's");
    auto store = s.store();
    check_listed(store.list(), s.sessions);
    const auto notes = store.take_diagnostics();
    BOOST_TEST(mentions(notes, "index.json is not a file"), show(notes));
    const auto moved = added({}, entries(s.quarantine()));
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(fs::is_directory(moved[0]));
    BOOST_TEST(read_bytes(moved[0] / "keep.txt") == "something of the user's");
    check_index_rebuilt(s.index());
}

BOOST_AUTO_TEST_CASE(index_that_is_a_symlink_to_etc_passwd) {
    indexed_store s;
    const std::string passwd = read_bytes("/etc/passwd");
    struct stat before {};
    BOOST_TEST_REQUIRE(::stat("/etc/passwd", &before) == 0);
    fs::remove(s.index());
    fs::create_symlink("/etc/passwd", s.index());

    auto store = s.store();
    check_listed(store.list(), s.sessions);
    const auto notes = store.take_diagnostics();
    BOOST_TEST(mentions(notes, "index.json is a symbolic link"), show(notes));
    // The link itself went to quarantine, still pointing where it did.
    const auto moved = added({}, entries(s.quarantine()));
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(fs::is_symlink(moved[0]));
    BOOST_TEST(fs::read_symlink(moved[0]) == fs::path("/etc/passwd"));
    check_index_rebuilt(s.index());
    // Its target was neither read into the index nor written.
    BOOST_TEST(!contains(read_bytes(s.index()), "root:"));
    BOOST_TEST(read_bytes("/etc/passwd") == passwd);
    struct stat after {};
    ::stat("/etc/passwd", &after);
    BOOST_TEST(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
    BOOST_TEST(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    BOOST_TEST(after.st_size == before.st_size);
}

BOOST_AUTO_TEST_CASE(index_that_is_a_fifo) {
    // Opening a FIFO for reading would block until a writer comes: the store must look
    // before it opens. It is not a file, so it is moved aside like a directory.
    indexed_store s;
    fs::remove(s.index());
    BOOST_TEST_REQUIRE(::mkfifo(s.index().c_str(), 0644) == 0);
    auto store = s.store();
    check_listed(store.list(), s.sessions);
    BOOST_TEST(mentions(store.take_diagnostics(), "index.json is not a file"));
    const auto moved = added({}, entries(s.quarantine()));
    BOOST_TEST_REQUIRE(moved.size() == 1u);
    BOOST_TEST(fs::is_fifo(moved[0]));
    check_index_rebuilt(s.index());
}

BOOST_AUTO_TEST_CASE(index_of_a_newer_version_is_left_untouched) {
    indexed_store s;
    std::string newer = read_bytes(s.index());
    const std::string current =
        "\"version\":" + std::to_string(ds::detail::index_format_version) + ",";
    const auto v = newer.find(current);
    BOOST_TEST_REQUIRE(v != std::string::npos);
    newer.replace(v, current.size(), "\"version\":999,\"future\":[1,2,3],");
    write_bytes(s.index(), newer);
    struct stat before {};
    ::stat(s.index().c_str(), &before);

    auto store = s.store();
    check_listed(store.list(), s.sessions);
    const auto notes = store.take_diagnostics();
    BOOST_TEST_REQUIRE(notes.size() == 1u, show(notes));
    BOOST_TEST(contains(notes[0].reason, "format version 999"), notes[0].reason);
    BOOST_TEST(contains(notes[0].reason, "left untouched"), notes[0].reason);
    // Even when sessions change and the listing would normally be saved.
    auto meta = store.open("bbbb0002");
    append_exchange(store, meta, make_exchange(2));
    store.close("bbbb0002");
    s.sessions["bbbb0002"] = meta;
    s.sessions["dddd0004"] = save_session(s.dir.path(), "dddd0004", 2);
    check_listed(store.list(), s.sessions);
    check_listed(s.store().list(), s.sessions);
    store.remove("dddd0004");

    BOOST_TEST((read_bytes(s.index()) == newer), "the newer index was written over");
    struct stat after {};
    ::stat(s.index().c_str(), &after);
    BOOST_TEST(after.st_ino == before.st_ino);
    BOOST_TEST(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    BOOST_TEST(!fs::exists(s.quarantine()));
}

BOOST_AUTO_TEST_CASE(index_that_cannot_be_read) {
    // As root, permissions do not stop reading: run the store as another user in a child.
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: needs root to run a child as user nobody (65534)");
        return;
    }
    indexed_store s;
    for (const auto& e : fs::recursive_directory_iterator(s.dir.path()))
        BOOST_TEST_REQUIRE(::lchown(e.path().c_str(), 65534, 65534) == 0);
    BOOST_TEST_REQUIRE(::chown(s.dir.path().c_str(), 65534, 65534) == 0);
    // index.json stays root's, readable by nobody else.
    BOOST_TEST_REQUIRE(::chown(s.index().c_str(), 0, 0) == 0);
    BOOST_TEST_REQUIRE(::chmod(s.index().c_str(), 0600) == 0);
    const std::string bytes = read_bytes(s.index());

    const std::string result = in_child([&]() -> std::string {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
            return "cannot become nobody";
        ds::jsonl_store store{s.dir.path(), "cli", unsynced};
        auto listed = store.list();
        std::sort(listed.begin(), listed.end(),
                  [](const auto& a, const auto& b) { return a.id < b.id; });
        std::string out;
        for (const auto& m : listed)
            out += m.id + ":" + std::to_string(m.exchange_count) + " ";
        for (const auto& d : store.take_diagnostics())
            out += "| " + d.reason;
        // Saving still works, and does not write over the index it could not read.
        ds::session_meta meta = make_meta("dddd0004");
        if (!store.create(meta))
            return "cannot create dddd0004";
        append_exchange(store, meta, make_exchange(1));
        store.close("dddd0004");
        store.list();
        return out;
    });
    if (result == "cannot become nobody") {
        BOOST_TEST_MESSAGE("skipped: this container does not allow setuid(65534)");
        return;
    }
    BOOST_TEST_MESSAGE("child: " << result);
    BOOST_TEST(contains(result, "aaaa0001:3 bbbb0002:1 cccc0003:5 |"), result);
    BOOST_TEST(contains(result, "index.json cannot be read (Permission denied)"), result);
    BOOST_TEST(contains(result, "left as it is"), result);
    BOOST_TEST((read_bytes(s.index()) == bytes), "the unreadable index was written over");
    struct stat st {};
    ::stat(s.index().c_str(), &st);
    BOOST_TEST(st.st_uid == 0u);
    BOOST_TEST((st.st_mode & 07777) == 0600u);
    BOOST_TEST(!fs::exists(s.quarantine()));
    BOOST_TEST(fs::exists(history(s.dir.path(), "dddd0004")));
}

// =====================================================================================
// Row 5: index.json and the history files disagree
// =====================================================================================

BOOST_AUTO_TEST_CASE(session_directory_copied_in_behind_the_index) {
    indexed_store s;
    ds::test::temp_dir other;
    const auto copied = save_session(other.path(), "dddd0004", 4);
    auto store = s.store(); // holds the index in memory
    check_listed(store.list(), s.sessions);
    wait_past_mtime(s.dir / "cli");
    fs::copy(other / "cli" / "dddd0004", s.dir / "cli" / "dddd0004", fs::copy_options::recursive);
    s.sessions["dddd0004"] = copied;

    check_listed(s.store().list(), s.sessions); // a new store, from the old index.json
    check_listed(store.list(), s.sessions);     // the store that had it in memory
    BOOST_TEST(store.find("dddd0004").has_value());
    file_manager sessions{s.store()};
    const auto loaded = sessions.resume("dddd0004");
    BOOST_TEST(seqs(loaded) == range(1, 4));
    BOOST_TEST(sessions.save_exchange("q5", "a5").seq == 5u);
    sessions.close();
    BOOST_TEST(store.find("dddd0004")->exchange_count == 5u);
}

BOOST_AUTO_TEST_CASE(session_directory_removed_behind_the_index) {
    indexed_store s;
    auto store = s.store();
    check_listed(store.list(), s.sessions);
    wait_past_mtime(s.dir / "cli");
    fs::remove_all(s.dir / "cli" / "bbbb0002");
    s.sessions.erase("bbbb0002");

    check_listed(s.store().list(), s.sessions);
    check_listed(store.list(), s.sessions);
    BOOST_TEST(!store.find("bbbb0002").has_value());
    BOOST_CHECK_THROW(store.load("bbbb0002"), ds::session_not_found);
    BOOST_CHECK_THROW(store.open("bbbb0002"), ds::session_not_found);
    file_manager sessions{s.store()};
    BOOST_CHECK_THROW(sessions.resume("bbbb0002"), ds::session_not_found);
    BOOST_TEST(!contains(read_bytes(s.index()), "bbbb0002"));
}

namespace {

// index.json with the exchange_count of `id` replaced by `count` (one digit: the file
// keeps its size).
void edit_count(const fs::path& index, const std::string& id, char count) {
    std::string text = read_bytes(index);
    const auto entry = text.find("\"" + id + "\":{");
    const auto at = text.find("\"exchange_count\":", entry);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    BOOST_TEST_REQUIRE(text[at + 18] == ',');
    text[at + 17] = count;
    write_bytes(index, text);
}

} // namespace

BOOST_AUTO_TEST_CASE(stale_exchange_count_in_the_index) {
    // Session aaaa0001 has 3 exchanges; its entry says 9 (a writer trusting it would
    // leave a hole 4..8) or 1 (one would repeat seq 2, which a reader then skips).
    for (const char count : {'9', '1'}) {
        BOOST_TEST_CONTEXT("the index says " << count) {
            indexed_store s;
            edit_count(s.index(), "aaaa0001", count);
            {
                // What a listing shows before any writer has opened the session: the index
                // is trusted while the history keeps the size it recorded (reported, not
                // asserted: it is a cache).
                const auto found = s.store().find("aaaa0001");
                BOOST_TEST_REQUIRE(found.has_value());
                BOOST_TEST_MESSAGE("index says " << count << ", find() says "
                                                 << found->exchange_count);
            }
            // load(id, n) and the writer take the count from the history.
            BOOST_TEST(s.store().load("aaaa0001", 2).meta.exchange_count == 3u);
            file_manager sessions{s.store()};
            const auto loaded = sessions.resume("aaaa0001");
            BOOST_TEST(loaded.meta.exchange_count == 3u);
            BOOST_TEST(seqs(loaded) == range(1, 3));
            BOOST_TEST(sessions.save_exchange("q4", "a4").seq == 4u);
            sessions.close();
            const auto all = s.store().load("aaaa0001");
            BOOST_TEST(seqs(all) == range(1, 4));
            BOOST_TEST(all.diagnostics.empty(), show(all.diagnostics));
            // And the index is right again.
            BOOST_TEST(s.store().find("aaaa0001")->exchange_count == 4u);
            auto fresh = s.store();
            for (const auto& m : fresh.list())
                BOOST_TEST(m.exchange_count ==
                           (m.id == "aaaa0001" ? 4u : s.sessions.at(m.id).exchange_count));
        }
    }
}

BOOST_AUTO_TEST_CASE(history_shorter_than_the_index_says) {
    // history.jsonl put back from an older copy, behind the store's back.
    indexed_store s;
    const fs::path file = history(s.dir.path(), "cccc0003");
    const auto lines = lines_of(read_bytes(file));
    write_bytes(file, joined({lines.begin(), lines.begin() + 3})); // header, 1, 2
    file_manager sessions{s.store()};
    const auto loaded = sessions.resume("cccc0003");
    BOOST_TEST(loaded.meta.exchange_count == 2u);
    BOOST_TEST(sessions.save_exchange("q3", "a3").seq == 3u);
    sessions.close();
    const auto all = s.store().load("cccc0003");
    BOOST_TEST(seqs(all) == range(1, 3));
    BOOST_TEST(all.diagnostics.empty(), show(all.diagnostics));
    BOOST_TEST(s.store().find("cccc0003")->exchange_count == 3u);
}

namespace {

// The system calls of the store, counting the bytes it reads.
struct counting_ops : ds::detail::posix_ops {
    std::uint64_t bytes_read = 0;
    ssize_t pread(int fd, void* data, std::size_t n, off_t offset) {
        const ssize_t r = posix_ops::pread(fd, data, n, offset);
        if (r > 0)
            bytes_read += static_cast<std::uint64_t>(r);
        return r;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(history_appended_by_another_store_is_refreshed_from_its_tail) {
    indexed_store s;
    {
        ds::jsonl_store store = s.store();
        ds::session_meta meta = make_meta("bigg0005");
        BOOST_TEST_REQUIRE(store.create(meta));
        for (std::uint64_t seq = 1; seq <= 40; ++seq) {
            ds::exchange ex = make_exchange(seq);
            ex.answer.assign(20000, 'b');
            append_exchange(store, meta, ex);
        }
        store.close("bigg0005");
    }
    auto first = s.store();
    first.list(); // index.json now knows bigg0005 at 40 exchanges
    const auto big = fs::file_size(history(s.dir.path(), "bigg0005"));
    {
        auto other = s.store(); // another writer, as another process
        auto meta = other.open("bigg0005");
        append_exchange(other, meta, make_exchange(41));
        append_exchange(other, meta, make_exchange(42));
        other.close("bigg0005");
    }
    ds::basic_jsonl_store<counting_ops> reader{s.dir.path(), "cli", unsynced};
    const auto found = reader.find("bigg0005");
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->exchange_count == 42u);
    BOOST_TEST(ds::format_timestamp(found->updated_at) ==
               ds::format_timestamp(make_exchange(42).timestamp));
    BOOST_TEST(reader.ops().bytes_read < big / 4, reader.ops().bytes_read << " bytes read");
    BOOST_TEST(first.find("bigg0005")->exchange_count == 42u);

    // The measure can fail: without the index, the whole history is read.
    fs::remove(s.index());
    ds::basic_jsonl_store<counting_ops> rebuilding{s.dir.path(), "cli", unsynced};
    BOOST_TEST(rebuilding.find("bigg0005")->exchange_count == 42u);
    BOOST_TEST(rebuilding.ops().bytes_read > big);
}

BOOST_AUTO_TEST_CASE(history_is_never_deleted_or_hidden_on_the_index_word) {
    indexed_store s;
    const auto histories = history_bytes(s.dir.path());
    // An index that leaves out aaaa0001 and names eeee0005, which does not exist.
    json::value idx = json::parse(read_bytes(s.index()));
    auto& sessions_obj = idx.at("channels").at("cli").at("sessions").as_object();
    sessions_obj["eeee0005"] = sessions_obj.at("bbbb0002");
    sessions_obj.erase("aaaa0001");
    write_bytes(s.index(), json::serialize(idx) + "\n");

    auto store = s.store();
    {
        std::string ids;
        for (const auto& m : store.list())
            ids += m.id + " ";
        BOOST_TEST_MESSAGE("listed from the edited index: " << ids);
    }
    // aaaa0001 is found and resumed: the history is asked when the index does not know.
    BOOST_TEST(store.find("aaaa0001").has_value());
    BOOST_TEST(seqs(store.load("aaaa0001")) == range(1, 3));
    file_manager sessions{s.store()};
    BOOST_TEST(seqs(sessions.resume("aaaa0001")) == range(1, 3));
    sessions.close();
    BOOST_CHECK_THROW(store.open("eeee0005"), ds::session_not_found);
    BOOST_CHECK_THROW(store.load("eeee0005"), ds::session_not_found);
    BOOST_CHECK_THROW(store.remove("eeee0005"), ds::session_not_found);

    // Once the channel directory changes, the listing is whole again.
    wait_past_mtime(s.dir / "cli");
    s.sessions["dddd0004"] = save_session(s.dir.path(), "dddd0004", 1);
    check_listed(store.list(), s.sessions);
    check_listed(s.store().list(), s.sessions);
    auto now = history_bytes(s.dir.path());
    now.erase("dddd0004");
    BOOST_TEST(now == histories);
}

namespace {

// The seam for the race below: the first time the store takes the index lock to move a
// damaged index.json aside, another store object (another process, as far as the file
// system can tell) gets there first: it quarantines the damaged index and writes a
// fresh one.
struct rival_rebuilds_first : ds::detail::posix_ops {
    fs::path root;
    bool raced = false;
    int flock(int fd, int op) {
        if (!raced && op == LOCK_EX) {
            raced = true;
            ds::jsonl_store{root, "cli", unsynced}.list();
        }
        return posix_ops::flock(fd, op);
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(an_index_replaced_while_we_move_it_aside_is_not_a_failure, indexed_store) {
    write_bytes(index(), "{");
    rival_rebuilds_first ops;
    ops.root = dir.path();
    ds::basic_jsonl_store<rival_rebuilds_first> racer{dir.path(), "cli", unsynced, ops};
    check_listed(racer.list(), sessions);
    BOOST_TEST_REQUIRE(racer.ops().raced);
    // The rival moved the damaged file; this store neither moved the fresh one nor gave
    // up writing the index because it could not.
    BOOST_TEST(entries(quarantine()).size() == 1u);
    BOOST_TEST(!mentions(racer.take_diagnostics(), "could not be moved"));
    check_index_rebuilt(index());
    fs::remove(index());
    check_listed(racer.list(), sessions);
    BOOST_TEST(fs::is_regular_file(index()), "this store still writes the index");
}

// =====================================================================================
// Reading only what a listing needs: a page, or a whole list, straight from a current
// index.json (index_cache::read_partially), and the usual path whenever it is not current
// =====================================================================================

namespace {

// 400 sessions of one exchange with long titles (so that index.json is several times
// the 64 KiB a read takes), one of them with extra and pinned set, listed once:
// index.json is current.
struct big_store {
    ds::test::temp_dir dir;
    static constexpr int count = 400;

    big_store() {
        // Made once (400 creations take seconds), then copied for each test: the copy's
        // first list reads every history again (new inodes) and writes a current index.
        static ds::test::temp_dir made;
        static const bool filled = [] {
            ds::jsonl_store store{made.path(), "cli", unsynced};
            for (int i = 0; i < count; ++i) {
                char id[16];
                std::snprintf(id, sizeof id, "s%07d", i);
                ds::session_meta m = make_meta(id);
                m.title = std::string(id) + " " + std::string(700, 't');
                BOOST_TEST_REQUIRE(store.create(m));
                append_exchange(store, m, make_exchange(1));
                store.close(id);
            }
            ds::session_meta m = store.open("s0000002");
            m.extra = json::object{{"project", "atlas"}, {"n", 3}};
            m.pinned = true;
            store.update(m);
            store.close("s0000002");
            return true;
        }();
        BOOST_TEST_REQUIRE(filled);
        fs::copy(made.path() / "cli", dir / "cli", fs::copy_options::recursive);
        (void)store().list(); // index.json written, current
        BOOST_TEST_REQUIRE(fs::file_size(index()) > 4 * (64u << 10));
    }
    fs::path index() const { return dir / "index.json"; }
    ds::jsonl_store store() const { return ds::jsonl_store{dir.path(), "cli", unsynced}; }
    // The listing of a store object that holds the whole index in memory (its second list).
    std::vector<ds::session_meta> loaded_list() const {
        auto s = store();
        (void)s.list();
        return s.list();
    }
};

std::vector<std::string> ids_of(const std::vector<ds::session_meta>& all) {
    std::vector<std::string> out;
    for (const auto& m : all)
        out.push_back(m.id);
    return out;
}

// Rewrites index.json's sessions of channel cli with `edit` applied to the members (in
// their order in the file) and `keep_order_mark` deciding whether "order" stays.
template <class Edit>
void rewrite_index(const fs::path& index, bool keep_order_mark, Edit edit) {
    json::value v = json::parse(read_bytes(index));
    auto& ch = v.at("channels").at("cli").as_object();
    std::vector<std::pair<std::string, json::value>> members;
    for (const auto& kv : ch.at("sessions").as_object())
        members.emplace_back(std::string(kv.key()), kv.value());
    edit(members);
    json::object sessions;
    for (auto& [k, e] : members)
        sessions[k] = std::move(e);
    json::object rebuilt{{"dir_mtime_ns", ch.at("dir_mtime_ns")}};
    if (keep_order_mark)
        rebuilt["order"] = "newest_first";
    rebuilt["sessions"] = std::move(sessions);
    ch = std::move(rebuilt);
    // Written in place, as an editor might: the header still says the index is current.
    write_bytes(index, json::serialize(v) + "\n");
}

} // namespace

BOOST_AUTO_TEST_CASE(a_page_reads_only_the_beginning_of_a_current_index) {
    big_store s;
    const auto all = s.loaded_list();
    BOOST_TEST_REQUIRE(all.size() == std::size_t(big_store::count));
    // The page of a new store object: what page_of() makes of the whole listing, read
    // from far less than the whole file.
    ds::basic_jsonl_store<counting_ops> fresh{s.dir.path(), "cli", unsynced};
    const ds::page_request first{5, std::nullopt, {}};
    const auto page = fresh.list_page(first);
    const auto want = ds::page_of(all, first);
    BOOST_TEST(ids_of(page.sessions) == ids_of(want.sessions), boost::test_tools::per_element());
    BOOST_TEST((page.sessions == want.sessions));
    BOOST_TEST((page.next == want.next));
    const auto size = fs::file_size(s.index());
    BOOST_TEST(fresh.ops().bytes_read * 3 < size,
               fresh.ops().bytes_read << " bytes read of an index of " << size);

    // Every page, each from a new store object, walks the whole listing in order, with
    // the title filter too.
    for (const std::string filter : {"", "s00001 ", "nothing like it"}) {
        BOOST_TEST_CONTEXT("title_contains '" << filter << "'") {
            std::vector<ds::session_meta> walked;
            ds::page_request r{37, std::nullopt, filter};
            for (int guard = 0; guard < 100; ++guard) {
                const auto p = s.store().list_page(r);
                const auto w = ds::page_of(all, r);
                BOOST_TEST_REQUIRE((p.sessions == w.sessions));
                BOOST_TEST_REQUIRE((p.next == w.next));
                walked.insert(walked.end(), p.sessions.begin(), p.sessions.end());
                if (!p.next)
                    break;
                r.after = p.next;
            }
            std::vector<ds::session_meta> want_all;
            for (const auto& m : all)
                if (ds::page_admits(m, {1, std::nullopt, filter}))
                    want_all.push_back(m);
            BOOST_TEST((walked == want_all));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_list_from_a_current_index_is_the_list_of_the_loaded_index) {
    big_store s;
    const auto want = s.loaded_list();
    auto fresh = s.store();
    const auto got = fresh.list();
    BOOST_TEST((got == want), "the partial read lists differently");
    const auto pinned =
        std::find_if(got.begin(), got.end(), [](const auto& m) { return m.id == "s0000002"; });
    BOOST_TEST_REQUIRE((pinned != got.end()));
    BOOST_TEST(pinned->pinned);
    BOOST_TEST(json::serialize(pinned->extra) == R"({"project":"atlas","n":3})");
    // Newest first, ties by id: the order session_manager::list_sessions() gives.
    ds::session_manager<ds::jsonl_store> m{s.store()};
    BOOST_TEST(ids_of(m.list_sessions()) == ids_of(got), boost::test_tools::per_element());
}

// An index that says its entries are newest first, but whose entries are not (edited by
// hand), is read whole: the page and the list are still right.
BOOST_AUTO_TEST_CASE(an_index_out_of_listing_order_is_read_whole) {
    big_store s;
    const auto want = s.loaded_list();
    rewrite_index(s.index(), true, [](auto& members) {
        std::reverse(members.begin(), members.end()); // oldest first now
    });
    const ds::page_request first{5, std::nullopt, {}};
    const auto page = s.store().list_page(first);
    BOOST_TEST(ids_of(page.sessions) == ids_of(ds::page_of(want, first).sessions),
               boost::test_tools::per_element());
    BOOST_TEST((s.store().list() == want));
}

// An index without the mark (written by an earlier library: in id order) is read whole.
BOOST_AUTO_TEST_CASE(an_index_without_the_order_mark_is_read_whole) {
    big_store s;
    const auto want = s.loaded_list();
    // The newest session last in the file: only a whole read finds it.
    auto store = s.store();
    ds::session_meta last = store.open("s0000399");
    append_exchange(store, last, make_exchange(2));
    store.close("s0000399");
    const auto newest = s.loaded_list(); // index.json current again, s0000399 first
    BOOST_TEST_REQUIRE(newest.front().id == "s0000399");
    rewrite_index(s.index(), false, [](auto& members) {
        std::sort(members.begin(), members.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
    });
    const auto page = s.store().list_page({1, std::nullopt, {}});
    BOOST_TEST_REQUIRE(page.sessions.size() == 1u);
    BOOST_TEST(page.sessions.front().id == "s0000399");
    BOOST_TEST(ids_of(s.store().list()) == ids_of(newest), boost::test_tools::per_element());
}

// A save made since the index was written (changes.log moved on) sends a new store
// object the usual way: the saved session is the first of the page, and of the list.
BOOST_AUTO_TEST_CASE(an_index_behind_changes_log_is_not_read_partially) {
    big_store s;
    {
        auto writer = s.store();
        ds::session_meta m = writer.open("s0000300");
        append_exchange(writer, m, make_exchange(2));
        writer.close("s0000300");
    }
    const auto page = s.store().list_page({1, std::nullopt, {}});
    BOOST_TEST_REQUIRE(page.sessions.size() == 1u);
    BOOST_TEST(page.sessions.front().id == "s0000300");
    BOOST_TEST(page.sessions.front().exchange_count == 2u);
    const auto all = s.store().list();
    BOOST_TEST_REQUIRE(!all.empty());
    BOOST_TEST(all.front().id == "s0000300");
}

namespace {

// index.json with the text of channel cli replaced by what `make(members)` writes, for
// what a json::object cannot hold (a member twice), as an editor, or a bad copy, might
// leave it. `members` are the sessions' `"id":{...}` texts in file order (newest first);
// the header still says the index is current.
template <class Make>
void rewrite_cli_text(const fs::path& index, Make make) {
    json::value v = json::parse(read_bytes(index));
    auto& ch = v.at("channels").at("cli").as_object();
    std::vector<std::string> members;
    for (const auto& kv : ch.at("sessions").as_object())
        members.push_back(json::serialize(json::string(kv.key())) + ":" +
                          json::serialize(kv.value()));
    const std::string head = R"({"dir_mtime_ns":)" + json::serialize(ch.at("dir_mtime_ns")) +
                             R"(,"order":"newest_first",)";
    ch = json::object{};
    std::string text = json::serialize(v);
    const std::string placeholder = R"("cli":{})";
    const auto at = text.find(placeholder);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    text.replace(at, placeholder.size(), R"("cli":)" + make(head, members));
    write_bytes(index, text + "\n");
}

// The members [from, to) joined as the text of a "sessions" object.
std::string sessions_text(const std::vector<std::string>& members, std::size_t from,
                          std::size_t to) {
    std::string out = R"("sessions":{)";
    for (std::size_t i = from; i < to; ++i)
        out += (i == from ? "" : ",") + members[i];
    return out + "}";
}

} // namespace

// A damaged entry (here a session member that is not an object) after the first few: a
// page from a new store object is not cut short at it. The index is read whole, found
// damaged, and rebuilt from the histories.
BOOST_AUTO_TEST_CASE(a_page_is_not_served_short_from_a_damaged_index) {
    big_store s;
    const auto all = s.loaded_list();
    rewrite_cli_text(s.index(), [](const std::string& head, std::vector<std::string> members) {
        members.insert(members.begin() + 2, R"("zzzz9999":5)");
        return head + sessions_text(members, 0, members.size()) + "}";
    });
    auto fresh = s.store();
    const ds::page_request first{5, std::nullopt, {}};
    const auto page = fresh.list_page(first);
    BOOST_TEST(ids_of(page.sessions) == ids_of(ds::page_of(all, first).sessions),
               boost::test_tools::per_element());
    BOOST_TEST(mentions(fresh.take_diagnostics(), "index.json is damaged"));
}

// The channel's sessions twice, or the channel twice: a whole read takes the later copy,
// so a partial read, which would take both, gives up, and the page and the list are those
// of the loaded index.
BOOST_AUTO_TEST_CASE(a_channel_or_its_sessions_written_twice_are_read_whole) {
    for (const bool channel_twice : {false, true}) {
        BOOST_TEST_CONTEXT((channel_twice ? "the channel twice" : "its sessions twice")) {
            big_store s;
            // The first copy holds the 3 newest sessions, the second the rest: in listing
            // order taken together, but a whole read lists only the second.
            rewrite_cli_text(
                s.index(), [&](const std::string& head, const std::vector<std::string>& members) {
                    const std::string first = sessions_text(members, 0, 3);
                    const std::string second = sessions_text(members, 3, members.size());
                    return channel_twice ? head + first + R"(},"cli":)" + head + second + "}"
                                         : head + first + "," + second + "}";
                });
            const ds::page_request r{5, std::nullopt, {}};
            const auto page = s.store().list_page(r);
            const auto got = s.store().list();
            const auto want = s.loaded_list();
            BOOST_TEST_REQUIRE(want.size() == std::size_t(big_store::count - 3));
            BOOST_TEST(ids_of(page.sessions) == ids_of(ds::page_of(want, r).sessions),
                       boost::test_tools::per_element());
            BOOST_TEST(ids_of(got) == ids_of(want), boost::test_tools::per_element());
        }
    }
}

// After a save, index.json is behind changes.log: a new store object's list reads it
// once, in the usual way, and not once in part to learn that, then again whole.
BOOST_AUTO_TEST_CASE(a_stale_index_is_given_up_before_its_channels_are_read) {
    big_store s;
    {
        auto writer = s.store();
        ds::session_meta m = writer.open("s0000300");
        append_exchange(writer, m, make_exchange(2));
        writer.close("s0000300");
    }
    const auto size = fs::file_size(s.index());
    ds::basic_jsonl_store<counting_ops> fresh{s.dir.path(), "cli", unsynced};
    const auto all = fresh.list();
    BOOST_TEST_REQUIRE(all.size() == std::size_t(big_store::count));
    BOOST_TEST(all.front().id == "s0000300");
    BOOST_TEST(fresh.ops().bytes_read < size + size / 2,
               fresh.ops().bytes_read << " bytes read, index.json is " << size);
}

// One store object paging through all its sessions reads index.json from its beginning
// once, then keeps the index: not from the beginning again for every page.
BOOST_AUTO_TEST_CASE(pages_of_one_store_object_do_not_read_the_index_again_and_again) {
    big_store s;
    const auto all = s.loaded_list();
    const auto size = fs::file_size(s.index());
    ds::basic_jsonl_store<counting_ops> one{s.dir.path(), "cli", unsynced};
    std::vector<ds::session_meta> walked;
    ds::page_request r{20, std::nullopt, {}};
    for (int guard = 0; guard < 100; ++guard) {
        const auto p = one.list_page(r);
        BOOST_TEST_REQUIRE((p.sessions == ds::page_of(all, r).sessions));
        walked.insert(walked.end(), p.sessions.begin(), p.sessions.end());
        if (!p.next)
            break;
        r.after = p.next;
    }
    BOOST_TEST((walked == all));
    BOOST_TEST(one.ops().bytes_read < 2 * size,
               one.ops().bytes_read << " bytes read for 20 pages, index.json is " << size);
}
