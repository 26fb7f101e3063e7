// SPDX-License-Identifier: BSL-1.0
// kill -9 during a repair (RELIABILITY.md row 1, for the repair protocol of
// docs/FORMAT.md): a real store_child repairs a damaged session and is SIGKILLed before
// each call that changes a file in turn (every kill point the repair has), then at random
// instants. After each kill the session is the old history or the repaired one, never
// neither and never a mix; every exchange that was readable before is readable after;
// and a repair run afterwards finishes the job, with nothing lost.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_repair_crash
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/history_files.hpp"
#include "support/temp_dir.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace dexter::sessions::test;

namespace {

const std::string sid = "crash001";
constexpr std::uint64_t count = 40;

// Session sid with exchanges 1..count, then damaged four ways: a garbage line, a
// duplicate seq, an exchange overwritten in place (a hole), and a torn tail.
std::string make_damaged(const fs::path& root) {
    save_session(root, sid, count);
    auto lines = lines_of(read_bytes(history(root, sid)));
    lines[10].replace(lines[10].size() / 2, 6, "\x01\x01\x01\x01\x01\x01"); // exchange 10
    lines.insert(lines.begin() + 20, "not JSON at all");
    lines.insert(lines.begin() + 31, lines[30]);
    std::string text = joined(lines);
    text += R"({"type":"exchange","seq":41,"timest)";
    write_bytes(history(root, sid), text);
    return text;
}

std::vector<std::uint64_t> readable() {
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = 1; s <= count; ++s)
        if (s != 10)
            out.push_back(s);
    return out;
}

// What store_child said, and how it ended.
struct outcome {
    bool killed = false;
    bool repaired = false;
};

outcome run_repair(const fs::path& root, const std::vector<std::string>& extra,
                   std::chrono::microseconds kill_after = {}) {
    std::vector<std::string> args = {"repair", root.string(), sid};
    args.insert(args.end(), extra.begin(), extra.end());
    child_process child(args, 60s);
    child.expect({"READY"});
    if (kill_after.count() > 0) {
        std::this_thread::sleep_for(kill_after);
        ::kill(child.pid(), SIGKILL);
    }
    outcome o;
    std::string errors;
    while (const auto line = child.read_line()) {
        if (line->starts_with("ERROR"))
            errors += *line + "\n";
        o.repaired = o.repaired || line->starts_with("REPAIRED " + sid);
    }
    const int status = child.wait();
    BOOST_TEST_REQUIRE(errors.empty(), errors);
    o.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    BOOST_TEST_REQUIRE((o.killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
    return o;
}

// After a kill: the old file or a clean new one, every readable exchange still there;
// then a repair in this process finishes, and nothing of the damage is lost.
void check_after(const fs::path& root, const std::string& damaged, const outcome& o) {
    const fs::path file = history(root, sid);
    BOOST_TEST_REQUIRE(fs::exists(file)); // never neither
    const std::string now = read_bytes(file);
    ds::jsonl_store store{root, "cli", unsynced};
    const bool old_file = now == damaged;
    if (!old_file) {
        // The repaired file, whole: it verifies clean.
        const auto v = store.verify(sid);
        BOOST_TEST(v.damaged.empty(), show(v.damaged));
        BOOST_TEST(!v.tail);
        BOOST_TEST(v.gaps.empty());
    }
    BOOST_TEST(!(o.repaired && old_file)); // a reported repair took
    const auto loaded = store.load(sid);
    BOOST_TEST(seqs(loaded) == readable());

    store.repair(sid);
    const auto all = store.verify_all();
    BOOST_TEST(all.ok());
    for (const auto& p : all.problems)
        BOOST_TEST_MESSAGE("store problem: " << p);
    for (const auto& l : all.leftovers)
        BOOST_TEST_MESSAGE("leftover: " << l);
    BOOST_TEST(seqs(store.load(sid)) == readable());
    BOOST_TEST(store.load(sid).diagnostics.empty(), show(store.load(sid).diagnostics));
    // Nothing lost: each damaged piece is in quarantine, byte for byte (a copy made by
    // a killed repair may be there twice: duplicated, never missing).
    std::vector<std::string> kept;
    for (const auto& p : entries(root / "quarantine"))
        kept.push_back(read_bytes(p));
    const auto lines = lines_of(damaged);
    for (const std::string& piece :
         {lines[10] + "\n", std::string("not JSON at all\n"), lines[30] + "\n",
          std::string(R"({"type":"exchange","seq":41,"timest)")})
        BOOST_TEST(std::count(kept.begin(), kept.end(), piece) >= 1, "missing: " << piece);
    // And the session goes on.
    auto meta = store.open(sid);
    append_exchange(store, meta, make_exchange(count + 1));
    store.close(sid);
}

} // namespace

BOOST_AUTO_TEST_CASE(sigkill_before_every_call_of_a_repair) {
    int kills = 0;
    for (int k = 1;; ++k) {
        BOOST_TEST_CONTEXT("killed before call " << k) {
            ds::test::temp_dir dir;
            const std::string damaged = make_damaged(dir.path());
            const auto o = run_repair(dir.path(), {"--die-at-call", std::to_string(k)});
            check_after(dir.path(), damaged, o);
            if (!o.killed)
                break; // the repair got past its last call
            ++kills;
        }
        BOOST_TEST_REQUIRE(k < 500);
    }
    BOOST_TEST(kills >= 8); // copies, the clean file, its sync, rename, directory sync, index
    BOOST_TEST_MESSAGE("kill points in a repair: " << kills);
}

BOOST_AUTO_TEST_CASE(sigkill_before_and_after_the_rename) {
    for (const char* when : {"1:before", "1:after"}) {
        BOOST_TEST_CONTEXT(when) {
            ds::test::temp_dir dir;
            const std::string damaged = make_damaged(dir.path());
            const auto o = run_repair(dir.path(), {"--die-at-rename", when});
            BOOST_TEST(o.killed);
            const bool old_file = read_bytes(history(dir.path(), sid)) == damaged;
            BOOST_TEST(old_file == (std::string(when) == "1:before"));
            check_after(dir.path(), damaged, o);
        }
    }
}

BOOST_AUTO_TEST_CASE(sigkill_at_random_instants) {
    std::mt19937 rng(20261201);
    std::uniform_int_distribution<int> us(0, 20000);
    for (int round = 0; round < 40; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            ds::test::temp_dir dir;
            const std::string damaged = make_damaged(dir.path());
            const auto o = run_repair(dir.path(), {}, std::chrono::microseconds(1 + us(rng)));
            check_after(dir.path(), damaged, o);
        }
    }
}
