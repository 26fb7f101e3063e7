// SPDX-License-Identifier: BSL-1.0
// jsonl_store against hostile input: ids that try to leave the store, planted symbolic
// links, text that is not UTF-8, lone UTF-16 surrogates, and histories in a newer format
// (RELIABILITY.md matrix rows 11, 13 and 14).
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_input
#include <boost/test/unit_test.hpp>

#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace dexter::sessions::test;

// =====================================================================================
// Row 11: hostile ids
// =====================================================================================

BOOST_AUTO_TEST_CASE(hostile_ids_are_refused_before_any_path_is_built) {
    ds::test::temp_dir outer;
    const fs::path root = outer / "store";
    save_session(root, "good0001", 2);
    // Where a store that joined the id into a path would land.
    fs::create_directories(outer / "etc");
    fs::create_directories(root / "cli" / "a");
    ds::jsonl_store{root, "cli", unsynced}.list(); // index.json, as in use
    const auto before = snapshot(outer.path());
    const std::string passwd = read_bytes("/etc/passwd");

    const std::vector<std::string> hostile = {"../../etc/passwd",
                                              "..",
                                              ".",
                                              "/abs",
                                              "/tmp/dexter",
                                              "a/b",
                                              "",
                                              std::string(10240, 'a'),
                                              "-rf",
                                              std::string("abcd\0efg", 8),
                                              "ABCDEFGH",
                                              "Good0001",
                                              "good00012",
                                              "good 001",
                                              "good0001\n",
                                              "abcd\u00e9fg",
                                              "../cli/good0001"};
    for (const auto& bad : hostile) {
        BOOST_TEST_CONTEXT("id " << ds::detail::quote_untrusted(bad)) {
            ds::jsonl_store store{root, "cli", unsynced};
            const ds::session_meta m{bad, "title", at(0), at(0), 1, {}, false, std::nullopt};
            BOOST_CHECK_THROW(store.create(m), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.open(bad), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.append(bad, make_exchange(1)), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.update(m), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.find(bad), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.load(bad), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.load(bad, 3), ds::invalid_session_id);
            BOOST_CHECK_THROW(store.remove(bad), ds::invalid_session_id);
            store.close(bad); // noexcept: nothing to close
            file_manager sessions{ds::jsonl_store{root, "cli", unsynced}};
            BOOST_CHECK_THROW(sessions.resume(bad), ds::invalid_session_id);
            BOOST_CHECK_THROW(sessions.delete_session(bad), ds::invalid_session_id);
            try {
                store.open(bad);
            } catch (const ds::invalid_session_id& e) {
                BOOST_TEST(e.value() == bad);
            }
        }
    }
    BOOST_TEST(snapshot(outer.path()) == before);
    BOOST_TEST(read_bytes("/etc/passwd") == passwd);
    BOOST_TEST(seqs(ds::jsonl_store{root, "cli", unsynced}.load("good0001")) == range(1, 2));
}

BOOST_AUTO_TEST_CASE(planted_symlinks_are_never_followed) {
    ds::test::temp_dir outer;
    const fs::path root = outer / "store";
    save_session(root, "good0001", 2);
    // A session outside the root, which the links point at.
    save_session(outer / "elsewhere", "victim01", 3);
    const fs::path victim = outer / "elsewhere" / "cli" / "victim01";
    fs::create_directory_symlink(victim, root / "cli" / "link0001");
    fs::create_directories(root / "cli" / "hist0001");
    fs::create_symlink(victim / "history.jsonl", root / "cli" / "hist0001" / "history.jsonl");
    const auto elsewhere = snapshot(outer / "elsewhere");
    const std::string victim_bytes = read_bytes(victim / "history.jsonl");

    for (const std::string id : {"link0001", "hist0001"}) {
        BOOST_TEST_CONTEXT(id) {
            ds::jsonl_store store{root, "cli", unsynced};
            BOOST_CHECK_THROW(store.open(id), ds::storage_error);
            BOOST_CHECK_THROW(store.load(id), ds::storage_error);
            BOOST_CHECK_THROW(store.load(id, 2), ds::storage_error);
            try {
                store.load(id);
            } catch (const ds::storage_error& e) {
                // O_NOFOLLOW refused the link: ELOOP, or ENOTDIR with O_DIRECTORY.
                BOOST_TEST((e.errno_value() == ELOOP || e.errno_value() == ENOTDIR), e.what());
            }
            BOOST_TEST(!store.find(id).has_value());
            const auto listed = store.list();
            BOOST_TEST(listed.size() == 1u);
            BOOST_TEST(listed.at(0).id == "good0001");
            BOOST_TEST(!store.create({id, "t", at(0), at(0), 0, {}, false, std::nullopt}));
            file_manager sessions{ds::jsonl_store{root, "cli", unsynced}};
            BOOST_CHECK_THROW(sessions.resume(id), ds::error);
        }
    }
    // A symlinked session directory is not even removed through.
    BOOST_CHECK_THROW(ds::jsonl_store(root, "cli", unsynced).remove("link0001"), ds::storage_error);
    BOOST_TEST(fs::is_symlink(root / "cli" / "link0001"));
    BOOST_TEST(snapshot(outer / "elsewhere") == elsewhere);
    BOOST_TEST(read_bytes(victim / "history.jsonl") == victim_bytes);

    // A symlinked channel directory is refused when the store opens.
    fs::create_directories(outer / "store2");
    fs::create_directory_symlink(outer / "elsewhere" / "cli", outer / "store2" / "cli");
    BOOST_CHECK_THROW(ds::jsonl_store(outer / "store2", "cli", unsynced), ds::storage_error);
    BOOST_TEST(snapshot(outer / "elsewhere") == elsewhere);
}

// =====================================================================================
// Row 13: invalid UTF-8
// =====================================================================================

namespace {

// Byte sequences that are not UTF-8 (RFC 3629).
const std::vector<std::pair<std::string, std::string>> not_utf8 = {
    {"0xff", "\xff"},
    {"overlong '/'", "\xc0\xaf"},
    {"overlong NUL", "\xc0\x80"},
    {"encoded surrogate", "\xed\xa0\x80"},
    {"lone continuation byte", "\x80"},
    {"truncated 3-byte sequence", "euro \xe2\x82"},
    {"truncated 4-byte sequence, then ASCII", "\xf0\x9f\x98 x"},
    {"above U+10FFFF", "\xf4\x90\x80\x80"},
};

// The fields of an exchange that hold text, each set to `text`.
const std::vector<std::pair<std::string, std::function<void(ds::exchange&, const std::string&)>>>
    text_fields = {
        {"query", [](ds::exchange& e, const std::string& t) { e.query += t; }},
        {"answer", [](ds::exchange& e, const std::string& t) { e.answer += t; }},
        {"summary", [](ds::exchange& e, const std::string& t) { e.summary = t; }},
        {"model", [](ds::exchange& e, const std::string& t) { e.model = t; }},
        {"tool_calls",
         [](ds::exchange& e, const std::string& t) {
             e.tool_calls.push_back(json::object{{"tool", "cat"}, {"output", t}});
         }},
        {"extra value", [](ds::exchange& e, const std::string& t) { e.extra["note"] = t; }},
        {"extra key", [](ds::exchange& e, const std::string& t) { e.extra[t] = 1; }},
};

std::string raw_binary() {
    std::string b;
    for (int c = 0; c < 256; ++c)
        b.push_back(static_cast<char>(c));
    return b;
}

} // namespace

BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_is_refused_and_nothing_is_written) {
    ds::test::temp_dir dir;
    save_session(dir.path(), "utf80001", 2);
    const fs::path file = history(dir.path(), "utf80001");
    const std::string before = read_bytes(file);
    const auto log_size = fs::file_size(dir / "changes.log");
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    auto meta = store.open("utf80001");

    auto cases = not_utf8;
    cases.emplace_back("raw binary (a PNG read as text)", raw_binary());
    for (const auto& [what, bad] : cases) {
        for (const auto& [field, set] : text_fields) {
            BOOST_TEST_CONTEXT(what << " in " << field) {
                ds::exchange ex = make_exchange(3);
                set(ex, bad);
                // The store refuses it on its own, whoever calls it.
                try {
                    append_exchange(store, meta, ex);
                    BOOST_ERROR("saved");
                } catch (const ds::invalid_input& e) {
                    BOOST_TEST(contains(e.what(), "not valid UTF-8"), e.what());
                    BOOST_TEST(contains(e.what(), "exchange 3 of session 'utf80001'"), e.what());
                    BOOST_TEST(contains(e.what(), "nothing was saved"), e.what());
                }
                BOOST_TEST(read_bytes(file) == before);
                BOOST_TEST(fs::file_size(dir / "changes.log") == log_size);
                BOOST_TEST(meta.exchange_count == 2u);
            }
        }
        BOOST_TEST_CONTEXT(what << " in a new title") {
            ds::session_meta renamed = meta;
            renamed.title = "title " + bad;
            BOOST_CHECK_THROW(store.update(renamed), ds::invalid_input);
            ds::session_meta fresh = make_meta("utf80002");
            fresh.title = bad;
            BOOST_CHECK_THROW(store.create(fresh), ds::invalid_input);
            BOOST_TEST(!fs::exists(dir / "cli" / "utf80002"));
            BOOST_TEST(read_bytes(file) == before);
        }
    }
    // Still open and writable after all those refusals.
    append_exchange(store, meta, make_exchange(3));
    store.close("utf80001");
    BOOST_TEST(seqs(store.load("utf80001")) == range(1, 3));

    // The manager refuses the same, before the store sees it.
    file_manager sessions{ds::jsonl_store{dir.path(), "cli", unsynced}};
    sessions.resume("utf80001");
    const std::string saved = read_bytes(file);
    for (const auto& [what, bad] : cases)
        BOOST_TEST_CONTEXT(what) {
            BOOST_CHECK_THROW(sessions.save_exchange("q", "a " + bad), ds::invalid_input);
        }
    BOOST_TEST(read_bytes(file) == saved);
}

BOOST_AUTO_TEST_CASE(lines_on_disk_that_are_not_utf8_are_skipped_and_reported) {
    for (const auto& [what, bad] : not_utf8) {
        BOOST_TEST_CONTEXT(what) {
            ds::test::temp_dir dir;
            save_session(dir.path(), "utf80003", 5);
            const fs::path file = history(dir.path(), "utf80003");
            auto lines = lines_of(read_bytes(file));
            // Exchange 3 as another writer would have written it, with raw bad bytes.
            std::string& line = lines[3];
            const auto at_byte = line.find("answer 3") + 8;
            line.insert(at_byte, bad);
            const auto bad_at = at_byte + (bad.find_first_of("\x80\xc0\xe2\xed\xf0\xf4\xff"));
            write_bytes(file, joined(lines));

            ds::jsonl_store store{dir.path(), "cli", unsynced};
            const auto loaded = store.load("utf80003");
            BOOST_TEST(seqs(loaded) == (std::vector<std::uint64_t>{1, 2, 4, 5}));
            check_contents(loaded);
            BOOST_TEST_REQUIRE(loaded.diagnostics.size() == 2u, show(loaded.diagnostics));
            check_diag(loaded.diagnostics[0], 4, offset_of(lines, 3),
                       "invalid UTF-8 at byte " + std::to_string(bad_at) + " of the line");
            check_diag(loaded.diagnostics[1], 5, offset_of(lines, 4), "exchange 3 is missing");
            const auto tail = store.load("utf80003", 3);
            BOOST_TEST(seqs(tail) == (std::vector<std::uint64_t>{2, 4, 5}));
            BOOST_TEST(std::count(tail.diagnostics.begin(), tail.diagnostics.end(),
                                  loaded.diagnostics[0]) == 1,
                       show(tail.diagnostics));
        }
    }
}

BOOST_AUTO_TEST_CASE(nul_inside_text_round_trips) {
    ds::test::temp_dir dir;
    ds::jsonl_store store{dir.path(), "cli", unsynced};
    ds::session_meta meta = make_meta("nul00001");
    meta.title = std::string("ti\0tle", 6);
    BOOST_TEST_REQUIRE(store.create(meta));
    ds::exchange ex = make_exchange(1);
    ex.query = std::string("\0", 1);
    ex.answer = std::string("before\0after", 12);
    ex.tool_calls.push_back(json::object{{"output", std::string("a\0b", 3)}});
    append_exchange(store, meta, ex);
    store.close("nul00001");
    const std::string bytes = read_bytes(history(dir.path(), "nul00001"));
    BOOST_TEST(bytes.find('\0') == std::string::npos);
    BOOST_TEST(contains(bytes, R"("before\u0000after")"));
    const auto loaded = store.load("nul00001");
    BOOST_TEST(loaded.diagnostics.empty(), show(loaded.diagnostics));
    BOOST_TEST_REQUIRE(loaded.exchanges.size() == 1u);
    BOOST_TEST(loaded.exchanges[0] == ex);
    BOOST_TEST(loaded.meta.title == meta.title);
}

namespace {

struct surrogate_case {
    std::string name;
    std::string escaped; // the answer as a JavaScript writer puts it in the JSON line
    std::string decoded; // what the store must give back, in UTF-8
    bool repaired;       // a lone surrogate was replaced (and must be reported)
};

const std::string fffd = "\xEF\xBF\xBD";     // U+FFFD REPLACEMENT CHARACTER
const std::string grin = "\xF0\x9F\x98\x80"; // U+1F600, \ud83d\ude00

std::vector<surrogate_case> surrogate_cases() {
    return {
        {"high surrogate cut off at the end", R"(cut \ud83d)", "cut " + fffd, true},
        {"lone low surrogate", R"(\ude00 low first)", fffd + " low first", true},
        {"proper pair", R"(pair \ud83d\ude00 intact)", "pair " + grin + " intact", false},
        {"proper pair, upper-case hex", R"(\uD83D\uDE00)", grin, false},
        {"high, then a proper pair", R"(\ud83d\ud83d\ude00)", fffd + grin, true},
        {"low then high: both lone", R"(\ude00\ud83d!)", fffd + fffd + "!", true},
        {"an escaped backslash is not an escape", R"(literal \\ud83d, lone \ud83d)",
         "literal \\ud83d, lone " + fffd, true},
        {"last high surrogate", R"(\udbff)", fffd, true},
    };
}

std::string js_line(std::uint64_t seq, const std::string& escaped_answer) {
    return R"({"type":"exchange","seq":)" + std::to_string(seq) +
           R"(,"timestamp":"2026-03-01T00:00:30.000Z","query":"from a JS writer","answer":")" +
           escaped_answer + R"("})";
}

} // namespace

BOOST_AUTO_TEST_CASE(lone_utf16_surrogates_from_javascript_writers) {
    for (const auto& c : surrogate_cases()) {
        BOOST_TEST_CONTEXT(c.name) {
            ds::test::temp_dir dir;
            save_session(dir.path(), "surr0001", 4);
            const fs::path file = history(dir.path(), "surr0001");
            auto lines = lines_of(read_bytes(file));
            lines[3] = js_line(3, c.escaped); // in the middle
            lines[4] = js_line(4, c.escaped); // and last
            write_bytes(file, joined(lines));
            const std::string damaged = read_bytes(file);

            ds::jsonl_store store{dir.path(), "cli", unsynced};
            for (const std::size_t last : {ds::all_exchanges, std::size_t{2}}) {
                BOOST_TEST_CONTEXT("load(id, " << last << ")") {
                    const auto loaded = store.load("surr0001", last);
                    const auto want = last == 2 ? range(3, 4) : range(1, 4);
                    BOOST_TEST_REQUIRE(seqs(loaded) == want, show(loaded.diagnostics));
                    BOOST_TEST(loaded.exchanges[want.size() - 2].answer == c.decoded);
                    BOOST_TEST(loaded.exchanges[want.size() - 1].answer == c.decoded);
                    if (c.repaired) {
                        BOOST_TEST_REQUIRE(loaded.diagnostics.size() == 2u,
                                           show(loaded.diagnostics));
                        check_diag(loaded.diagnostics[0], 4, offset_of(lines, 3), "surrogate");
                        check_diag(loaded.diagnostics[1], 5, offset_of(lines, 4), "surrogate");
                    } else {
                        BOOST_TEST(loaded.diagnostics.empty(), show(loaded.diagnostics));
                    }
                }
            }
            // The last line is a record, not a torn tail: the writer keeps it.
            auto meta = store.open("surr0001");
            BOOST_TEST(meta.exchange_count == 4u);
            BOOST_TEST(read_bytes(file) == damaged);
            BOOST_TEST(entries(dir / "quarantine").empty());
            append_exchange(store, meta, make_exchange(5));
            store.close("surr0001");
            BOOST_TEST(seqs(store.load("surr0001")) == range(1, 5));
        }
    }
}

// =====================================================================================
// Row 14: a newer format version
// =====================================================================================

BOOST_AUTO_TEST_CASE(a_newer_history_version_is_refused_and_left_untouched) {
    const std::string header =
        R"({"type":"session","version":999,"id":"newv0001","created_at":"2026-03-01T00:00:00.000Z","title":")";
    const std::string body =
        "\n" + line_of(make_exchange(1)) + "\n{\"type\":\"hologram\",\"frames\":[1,2,3]}\n";
    const std::vector<std::pair<std::string, std::string>> files = {
        {"as written", header + "from the future\"}" + body},
        {"with a torn tail", header + "from the future\"}" + body + "{\"type\":\"holo"},
        {"whose last line is not JSON", header + "from the future\"}" + body + "\x01\x02 v999\n"},
        {"with a 100 KB header and a torn tail",
         header + std::string(100000, 't') + "\"}" + body + "{\"type\":\"holo"},
    };
    for (const auto& [what, bytes] : files) {
        BOOST_TEST_CONTEXT("version 999 " << what) {
            ds::test::temp_dir dir;
            save_session(dir.path(), "good0001", 1);
            fs::create_directories(dir / "cli" / "newv0001");
            const fs::path file = history(dir.path(), "newv0001");
            write_bytes(file, bytes);
            struct stat before {};
            ::stat(file.c_str(), &before);

            ds::jsonl_store store{dir.path(), "cli", unsynced};
            try {
                store.load("newv0001");
                BOOST_ERROR("loaded");
            } catch (const ds::format_error& e) {
                BOOST_TEST(contains(e.what(), "version 999"), e.what());
                BOOST_TEST(contains(e.what(), "newer than this library reads (1)"), e.what());
                BOOST_TEST(contains(e.what(), "left untouched"), e.what());
                BOOST_TEST(contains(e.what(), file.string()), e.what());
            }
            BOOST_CHECK_THROW(store.load("newv0001", 2), ds::format_error);
            BOOST_CHECK_THROW(store.open("newv0001"), ds::format_error);
            BOOST_CHECK_THROW(store.open("newv0001"), ds::format_error); // and again
            BOOST_CHECK_THROW(store.find("newv0001"), ds::format_error);
            const auto listed = store.list();
            BOOST_TEST_REQUIRE(listed.size() == 1u);
            BOOST_TEST(listed[0].id == "good0001");
            file_manager sessions{ds::jsonl_store{dir.path(), "cli", unsynced}};
            BOOST_CHECK_THROW(sessions.resume("newv0001"), ds::format_error);
            BOOST_CHECK_THROW(sessions.resume("newv"), ds::error); // prefixes see the list

            BOOST_TEST((read_bytes(file) == bytes), "the history file was changed");
            struct stat after {};
            ::stat(file.c_str(), &after);
            BOOST_TEST(after.st_ino == before.st_ino);
            BOOST_TEST(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
            BOOST_TEST(entries(dir / "quarantine").empty());
            BOOST_TEST(!mentions(store.take_diagnostics(), "newv0001"));
        }
    }
}
