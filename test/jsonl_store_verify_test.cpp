// SPDX-License-Identifier: BSL-1.0
// Verify and repair of the file store, over every kind of damage of RELIABILITY.md's
// matrix that a file can hold (rows 2-5, 12-14, and the leftovers of interrupted
// operations): verify reports it precisely and changes nothing, even on a store where
// every write fails; repair fixes it; verify is clean after; nothing is lost (each line
// repair took out is in quarantine, byte for byte, and every other line is still there).
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_verify
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <dexter/sessions/session_manager.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace dexter::sessions {
std::ostream& operator<<(std::ostream& out, const seq_gap& g) {
    return out << g.from << ".." << g.through;
}
} // namespace dexter::sessions

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace dexter::sessions::test;

namespace {

// A seam on which every call that could change a file fails with EROFS, and is counted:
// a read-only file system, as root cannot otherwise make one without a mount.
struct read_only_ops : ds::detail::posix_ops {
    int* writes;
    explicit read_only_ops(int* counter = nullptr) : writes(counter) {}
    int refuse() {
        if (writes)
            ++*writes;
        errno = EROFS;
        return -1;
    }
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if ((flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0)
            return refuse();
        return posix_ops::openat(dirfd, path, flags, mode);
    }
    ssize_t write(int, const void*, std::size_t) { return refuse(); }
    int ftruncate(int, off_t) { return refuse(); }
    int mkdirat(int, const char*, mode_t) { return refuse(); }
    int renameat(int, const char*, int, const char*) { return refuse(); }
    int rename_noreplace(int, const char*, int, const char*) { return refuse(); }
    int unlinkat(int, const char*, int) { return refuse(); }
};
static_assert(ds::detail::file_ops<read_only_ops>);

const std::string sid = "dmg00001";
constexpr std::uint64_t count = 6;

// Verifies `id` on a read-only seam and checks that nothing was written or tried.
ds::verify_report verify_read_only(const fs::path& root, const std::string& id) {
    int writes = 0;
    const std::string before = tree_bytes(root);
    ds::basic_jsonl_store<read_only_ops> store{root, "cli", unsynced, read_only_ops{}};
    store.ops().writes = &writes;
    auto r = store.verify(id);
    BOOST_TEST(writes == 0);
    BOOST_TEST(tree_bytes(root) == before);
    return r;
}

std::vector<std::string> quarantined(const fs::path& root) {
    std::vector<std::string> out;
    if (fs::exists(root / "quarantine"))
        for (const auto& p : entries(root / "quarantine"))
            out.push_back(read_bytes(p));
    std::sort(out.begin(), out.end());
    return out;
}

// The lines of a history that are not gap records.
std::vector<std::string> lines_but_gaps(const std::string& text) {
    std::vector<std::string> out;
    for (auto& l : lines_of(text))
        if (!l.starts_with(R"({"type":"gap",)"))
            out.push_back(l);
    return out;
}

struct damage_case {
    std::string name;
    /// Damages the history, given its lines (header first, no newlines); returns the file.
    std::function<std::string(std::vector<std::string>&)> damage;
    std::vector<std::uint64_t> damaged_lines; ///< as verify reports them
    std::vector<ds::seq_gap> gaps;
    bool torn = false;
    std::vector<std::string> dropped;      ///< what repair moves to quarantine, exactly
    std::vector<std::uint64_t> seqs_after; ///< the exchanges a load reads after repair
    std::vector<std::string> replaced;     ///< original lines written again, re-encoded
};

std::string text_of(const std::vector<std::string>& lines) {
    return joined(lines);
}

std::vector<damage_case> campaign() {
    std::vector<damage_case> cases;
    const auto all = range(1, count);
    cases.push_back(
        {"torn last line",
         [](std::vector<std::string>& l) { return text_of(l).substr(0, text_of(l).size() - 9); },
         {},
         {},
         true,
         {},
         range(1, count - 1),
         {}});
    cases.push_back({"garbage line in the middle",
                     [](std::vector<std::string>& l) {
                         l.insert(l.begin() + 3, "this is not JSON {");
                         return text_of(l);
                     },
                     {4},
                     {},
                     false,
                     {"this is not JSON {\n"},
                     all,
                     {}});
    cases.push_back({"a bare number",
                     [](std::vector<std::string>& l) {
                         l.insert(l.begin() + 2, "123");
                         return text_of(l);
                     },
                     {3},
                     {},
                     false,
                     {"123\n"},
                     all,
                     {}});
    const std::string no_seq =
        R"({"type":"exchange","timestamp":"2026-03-01T00:00:00.000Z","query":"q","answer":"a"})";
    cases.push_back({"an exchange without seq",
                     [no_seq](std::vector<std::string>& l) {
                         l.insert(l.begin() + 5, no_seq);
                         return text_of(l);
                     },
                     {6},
                     {},
                     false,
                     {no_seq + "\n"},
                     all,
                     {}});
    cases.push_back({"a duplicate seq",
                     [](std::vector<std::string>& l) {
                         l.insert(l.begin() + 4, l[3]);
                         return text_of(l);
                     },
                     {5},
                     {},
                     false,
                     {line_of(make_exchange(3)) + "\n"},
                     all,
                     {}});
    cases.push_back({"a skipped seq",
                     [](std::vector<std::string>& l) {
                         l.erase(l.begin() + 3);
                         return text_of(l);
                     },
                     {},
                     {{3, 3}},
                     false,
                     {},
                     {1, 2, 4, 5, 6},
                     {}});
    {
        std::string hit = line_of(make_exchange(4));
        hit.replace(hit.size() / 2, 10, std::string(10, '\x01'));
        cases.push_back({"bytes overwritten in the middle",
                         [hit](std::vector<std::string>& l) {
                             l[4] = hit;
                             return text_of(l);
                         },
                         {5},
                         {{4, 4}},
                         false,
                         {hit + "\n"},
                         {1, 2, 3, 5, 6},
                         {}});
    }
    {
        std::string bad = line_of(make_exchange(2));
        bad.replace(bad.find("answer 2"), 6, "\xff\xfe\xc0\xaf ok");
        cases.push_back({"invalid UTF-8",
                         [bad](std::vector<std::string>& l) {
                             l[2] = bad;
                             return text_of(l);
                         },
                         {3},
                         {{2, 2}},
                         false,
                         {bad + "\n"},
                         {1, 3, 4, 5, 6},
                         {}});
    }
    {
        std::string lone = line_of(make_exchange(5));
        lone.replace(lone.find("answer 5"), 6, "\\ud83d!");
        cases.push_back({"a lone surrogate escape",
                         [lone](std::vector<std::string>& l) {
                             l[5] = lone;
                             return text_of(l);
                         },
                         {6},
                         {},
                         false,
                         {lone + "\n"},
                         all,
                         {lone}});
    }
    cases.push_back({"a line over the record limit",
                     [](std::vector<std::string>& l) {
                         l.insert(l.begin() + 2, std::string(9000, 'L'));
                         return text_of(l);
                     },
                     {3},
                     {},
                     false,
                     {std::string(9000, 'L') + "\n"},
                     all,
                     {}});
    cases.push_back({"a session header after line 1",
                     [](std::vector<std::string>& l) {
                         l.insert(l.begin() + 6, l[0]);
                         return text_of(l);
                     },
                     {7},
                     {},
                     false,
                     {"HEADER"}, // filled in by the test: the file's own header line
                     all,
                     {}});
    return cases;
}

} // namespace

BOOST_AUTO_TEST_CASE(campaign_over_every_kind_of_damage) {
    ds::jsonl_options small = unsynced;
    small.max_record_bytes = 4096;
    for (auto c : campaign()) {
        BOOST_TEST_CONTEXT(c.name) {
            ds::test::temp_dir dir;
            save_session(dir.path(), sid, count);
            const fs::path file = history(dir.path(), sid);
            auto lines = lines_of(read_bytes(file));
            BOOST_TEST_REQUIRE(lines.size() == count + 1);
            for (auto& d : c.dropped)
                if (d == "HEADER")
                    d = lines[0] + "\n";
            const std::string damaged = c.damage(lines);
            write_bytes(file, damaged);
            { ds::jsonl_store{dir.path(), "cli", small}.list(); } // the index, as a host leaves it

            // verify: precise, and read-only.
            const auto r = verify_read_only(dir.path(), sid);
            BOOST_TEST(!r.ok());
            std::vector<std::uint64_t> got_lines;
            for (const auto& d : r.damaged)
                got_lines.push_back(d.line);
            BOOST_TEST(got_lines == c.damaged_lines, show(r.damaged));
            BOOST_TEST(r.gaps == c.gaps);
            BOOST_TEST(r.tail.has_value() == c.torn);
            if (c.torn) {
                const auto off = offset_of(lines_of(damaged), count);
                BOOST_TEST(r.tail->offset == off);
                BOOST_TEST(r.tail->bytes == damaged.size() - off);
                BOOST_TEST(r.tail->line == count + 1);
            }
            BOOST_TEST(r.newer_version == 0u);
            BOOST_TEST(!r.missing_header);

            // repair: fixes it, loses nothing.
            ds::jsonl_store store{dir.path(), "cli", small};
            const auto rep = store.repair(sid);
            BOOST_TEST(rep.needed);
            BOOST_TEST(rep.rewritten);
            BOOST_TEST(rep.gaps_recorded == c.gaps);
            std::vector<std::string> expect_q = c.dropped;
            if (c.torn)
                expect_q.push_back(damaged.substr(offset_of(lines_of(damaged), count)));
            std::sort(expect_q.begin(), expect_q.end());
            BOOST_TEST(quarantined(dir.path()) == expect_q);
            BOOST_TEST(rep.quarantined_lines == expect_q.size());
            BOOST_TEST(!fs::exists(file.parent_path() / "history.jsonl.repair"));

            // Every line that was not taken out is still there, in order.
            const std::string now = read_bytes(file);
            std::vector<std::string> kept;
            std::uint64_t n = 0;
            for (const auto& l : lines_of(damaged.substr(0, damaged.rfind('\n') + 1)))
                if (++n, std::find(c.damaged_lines.begin(), c.damaged_lines.end(), n) ==
                             c.damaged_lines.end())
                    kept.push_back(l);
            auto after = lines_but_gaps(now);
            if (!c.replaced.empty()) // the re-encoded line reads as U+FFFD
                std::erase_if(after, [](const std::string& l) {
                    return l.find("\\ufffd") != std::string::npos ||
                           l.find("\xef\xbf\xbd") != std::string::npos;
                });
            BOOST_TEST(after == kept);

            // verify is clean, and so is a load (a recorded gap is known, not damage).
            const auto again = verify_read_only(dir.path(), sid);
            BOOST_TEST(again.ok(), show(again.damaged));
            const auto loaded = store.load(sid);
            BOOST_TEST(seqs(loaded) == c.seqs_after);
            BOOST_TEST(loaded.diagnostics.empty(), show(loaded.diagnostics));
            const auto recent = store.load(sid, 3);
            BOOST_TEST(recent.diagnostics.empty(), show(recent.diagnostics));
            const auto listed = store.list();
            BOOST_TEST_REQUIRE(listed.size() == 1u);
            BOOST_TEST(listed[0].exchange_count == loaded.meta.exchange_count);

            // The repaired session takes the next exchange, and a second repair does nothing.
            auto meta = store.open(sid);
            append_exchange(store, meta, make_exchange(meta.exchange_count + 1));
            store.close(sid);
            BOOST_TEST(!store.repair(sid).needed);
            BOOST_TEST(store.verify_all().ok());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_gap_record_written_by_repair_reads_back_as_known) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, count);
    const fs::path file = history(dir.path(), sid);
    auto lines = lines_of(read_bytes(file));
    lines.erase(lines.begin() + 2, lines.begin() + 5); // exchanges 2, 3, 4
    write_bytes(file, joined(lines));
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto before = store.load(sid);
    BOOST_TEST_REQUIRE(before.diagnostics.size() == 1u);
    BOOST_TEST((before.diagnostics[0].kind == ds::diagnostic_kind::missing_exchanges));
    const auto rep = store.repair(sid);
    BOOST_TEST_REQUIRE(rep.gaps_recorded.size() == 1u);
    BOOST_TEST(rep.gaps_recorded[0] == (ds::seq_gap{2, 4}));
    const auto gap_line = lines_of(read_bytes(file))[2];
    const auto v = json::parse(gap_line).as_object();
    BOOST_TEST(v.at("type").as_string() == "gap");
    BOOST_TEST(v.at("from").as_int64() == 2);
    BOOST_TEST(v.at("through").as_int64() == 4);
    for (std::size_t last : {std::size_t{1}, std::size_t{2}, std::size_t{4}, ds::all_exchanges}) {
        const auto l = store.load(sid, last);
        BOOST_TEST(l.diagnostics.empty(), "last " << last << ": " << show(l.diagnostics));
    }
    // A gap record that does not follow the last exchange is damage, reported.
    write_bytes(
        file,
        read_bytes(file) +
            R"({"type":"gap","from":2,"through":3,"recorded_at":"2026-03-01T00:00:00.000Z"})" +
            "\n");
    const auto r = store.verify(sid);
    BOOST_TEST_REQUIRE(r.damaged.size() == 1u);
    BOOST_TEST(contains(r.damaged[0].reason, "does not follow exchange 6"));
}

BOOST_AUTO_TEST_CASE(newer_version_is_reported_and_never_repaired) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 2);
    const fs::path file = history(dir.path(), sid);
    auto lines = lines_of(read_bytes(file));
    lines[0] =
        R"({"type":"session","version":999,"id":"dmg00001","created_at":"2026-03-01T00:00:00.000Z","title":"x"})";
    lines.push_back("garbage");
    write_bytes(file, joined(lines));
    const auto r = verify_read_only(dir.path(), sid);
    BOOST_TEST(r.newer_version == 999u);
    BOOST_TEST(!r.ok());
    const std::string before = tree_bytes(dir.path());
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(store.repair(sid), ds::format_error);
    BOOST_TEST(read_bytes(file) == joined(lines));
    const auto all = store.repair_all();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(contains(all[0].error, "newer than this library reads"));
    BOOST_TEST(read_bytes(file) == joined(lines));
}

BOOST_AUTO_TEST_CASE(missing_header_is_reported_and_never_rewritten) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 3);
    const fs::path file = history(dir.path(), sid);
    auto lines = lines_of(read_bytes(file));
    lines.erase(lines.begin());
    lines.push_back("garbage");
    write_bytes(file, joined(lines));
    const auto r = verify_read_only(dir.path(), sid);
    BOOST_TEST(r.missing_header);
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(store.repair(sid), ds::storage_error);
    BOOST_TEST(read_bytes(file) == joined(lines));
}

BOOST_AUTO_TEST_CASE(index_entry_disagreeing_with_the_history) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, count);
    ds::jsonl_store{dir.path(), "cli", unsynced}.list();
    const fs::path index = dir / "index.json";
    std::string text = read_bytes(index);
    const auto at = text.find(R"("exchange_count":6)");
    BOOST_TEST_REQUIRE(at != std::string::npos);
    text.replace(at, 18, R"("exchange_count":9)");
    write_bytes(index, text);
    const auto r = verify_read_only(dir.path(), sid);
    BOOST_TEST_REQUIRE(r.index_mismatch.size() == 1u);
    BOOST_TEST(contains(r.index_mismatch[0], "exchange count 9, the history 6"));
    BOOST_TEST(r.damaged.empty());
    const std::string history_before = read_bytes(history(dir.path(), sid));
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto rep = store.repair(sid);
    BOOST_TEST(rep.needed);
    BOOST_TEST(!rep.rewritten); // the history was fine: not rewritten
    BOOST_TEST(read_bytes(history(dir.path(), sid)) == history_before);
    BOOST_TEST(verify_read_only(dir.path(), sid).ok());
    BOOST_TEST(contains(read_bytes(index), R"("exchange_count":6)"));
}

BOOST_AUTO_TEST_CASE(leftover_repair_copy) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 3);
    const fs::path left = history(dir.path(), sid).parent_path() / "history.jsonl.repair";
    write_bytes(left, "half a cop");
    const auto r = verify_read_only(dir.path(), sid);
    BOOST_TEST_REQUIRE(r.leftovers.size() == 1u);
    BOOST_TEST(r.leftovers[0] == left.string());
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    const auto rep = store.repair(sid);
    BOOST_TEST(rep.needed);
    BOOST_TEST(!fs::exists(left));
    BOOST_TEST(store.verify(sid).ok());
    BOOST_TEST(seqs(store.load(sid)) == range(1, 3));
}

BOOST_AUTO_TEST_CASE(store_level_damage_and_leftovers) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 2);
    save_session(dir.path(), "gone0001", 2);
    ds::jsonl_store{dir.path(), "cli", unsynced}.list();
    // An index entry whose history is gone (rm -r behind the store's back).
    fs::remove_all(dir / "cli" / "gone0001");
    // Leftovers of a deletion and a build that crashed.
    fs::create_directories(dir / "cli" / ".deleted-gone0002-123-1");
    fs::create_directories(dir / "cli" / ".new-gone0003-123-1");
    write_bytes(dir / "cli" / ".new-gone0003-123-1" / "history.jsonl", "");
    // Something in quarantine already.
    fs::create_directories(dir / "quarantine");
    write_bytes(dir / "quarantine" / "old", "12345");
    {
        ds::basic_jsonl_store<read_only_ops> ro{dir.path(), "cli", unsynced, read_only_ops{}};
        const auto all = ro.verify_all();
        BOOST_TEST(!all.ok());
        BOOST_TEST_REQUIRE(all.sessions.size() == 1u);
        BOOST_TEST(all.sessions[0].ok());
        BOOST_TEST_REQUIRE(all.problems.size() == 1u);
        BOOST_TEST(contains(all.problems[0], "gone0001"));
        BOOST_TEST(all.leftovers.size() == 2u);
        BOOST_TEST(all.quarantine_files == 1u);
        BOOST_TEST(all.quarantine_bytes == 5u);
    }
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    store.repair_all();
    const auto all = store.verify_all();
    BOOST_TEST(all.ok());
    BOOST_TEST(all.problems.empty());
    BOOST_TEST(all.leftovers.empty());

    // A damaged index.json is a store problem; repair_all() rebuilds it.
    write_bytes(dir / "index.json", "{");
    BOOST_TEST(!store.verify_all().ok());
    store.repair_all();
    BOOST_TEST(store.verify_all().ok());
}

BOOST_AUTO_TEST_CASE(repair_refuses_a_session_another_writer_holds) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 2);
    ds::jsonl_store writer{dir.path(), "cli", unsynced};
    writer.open(sid);
    ds::jsonl_store other{dir.path(), "cli", unsynced};
    BOOST_CHECK_THROW(other.repair(sid), ds::session_busy);
    BOOST_CHECK_THROW(writer.repair(sid), ds::storage_error);
    BOOST_TEST(other.verify(sid).ok()); // verify needs no lease
}

BOOST_AUTO_TEST_CASE(manager_forwards_verify_and_repair) {
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 3);
    const fs::path file = history(dir.path(), sid);
    write_bytes(file, read_bytes(file) + "junk\n");
    file_manager m{ds::jsonl_store{dir.path(), "cli", unsynced}};
    BOOST_TEST(!m.verify_session(sid).ok());
    BOOST_TEST(!m.verify_store().ok());
    BOOST_TEST(m.repair_session(sid).rewritten);
    BOOST_TEST(m.verify_store().ok());
    BOOST_TEST(m.repair_store().empty());
}

BOOST_AUTO_TEST_CASE(every_kind_of_damaged_index_is_reported_and_rebuilt) {
    // RELIABILITY.md row 4: truncated, corrupt, empty, a directory, a symbolic link.
    const std::vector<std::pair<std::string, std::function<void(const fs::path&)>>> damage = {
        {"empty", [](const fs::path& p) { write_bytes(p, ""); }},
        {"truncated", [](const fs::path& p) { write_bytes(p, read_bytes(p).substr(0, 40)); }},
        {"not this format", [](const fs::path& p) { write_bytes(p, R"({"format":"x"})"); }},
        {"a directory",
         [](const fs::path& p) {
             fs::remove(p);
             fs::create_directory(p);
         }},
        {"a symbolic link",
         [](const fs::path& p) {
             fs::remove(p);
             fs::create_symlink("/etc/passwd", p);
         }},
    };
    for (const auto& [what, damage_it] : damage) {
        BOOST_TEST_CONTEXT(what) {
            ds::test::temp_dir dir;
            save_session(dir.path(), sid, 3);
            ds::jsonl_store{dir.path(), "cli", unsynced}.list();
            damage_it(dir / "index.json");
            {
                ds::basic_jsonl_store<read_only_ops> ro{dir.path(), "cli", unsynced,
                                                        read_only_ops{}};
                const auto found = ro.verify_all();
                BOOST_TEST_REQUIRE(found.problems.size() == 1u);
                BOOST_TEST(contains(found.problems[0], "index.json"));
                BOOST_TEST(found.sessions.size() == 1u);
            }
            ds::jsonl_store store{dir.path(), "cli", unsynced};
            store.repair_all();
            BOOST_TEST(store.verify_all().ok());
            BOOST_TEST(fs::is_regular_file(fs::symlink_status(dir / "index.json")));
        }
    }
    // A missing index is a cache not yet written: no problem.
    ds::test::temp_dir dir;
    save_session(dir.path(), sid, 3);
    fs::remove(dir / "index.json");
    BOOST_TEST(ds::jsonl_store(dir.path(), "cli", unsynced).verify_all().ok());
}

BOOST_AUTO_TEST_CASE(a_store_without_verify_is_verified_by_loading) {
    ds::test_session_manager m;
    m.start_new();
    m.save_exchange("q", "a");
    const auto all = m.verify_store();
    BOOST_TEST_REQUIRE(all.sessions.size() == 1u);
    BOOST_TEST(all.sessions[0].ok());
    BOOST_TEST(all.sessions[0].exchange_count == 1u);
    const auto r = m.repair_session(all.sessions[0].id);
    BOOST_TEST(!r.needed);
    BOOST_TEST(m.repair_store().empty());
}
