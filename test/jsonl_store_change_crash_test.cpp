// SPDX-License-Identifier: BSL-1.0
// jsonl_store.hpp changing sessions (issue 13) in real processes: SIGKILL during fork, trash,
// restore, purge, prune and import; a fork, a rename, a pin and a prune racing a writer; retention
// that reads the stored updated_at, never a file's time.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_change_crash
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/clock.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "support/child_process.hpp"
#include "support/store_child_records.hpp"
#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ds = dexter::sessions;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using dexter::sessions::test::answer_for;
using dexter::sessions::test::child_process;
using dexter::sessions::test::query_for;

namespace {

using manager = ds::session_manager<ds::jsonl_store>;

/// A cutoff an hour in the future: every idle, unpinned session is older.
constexpr auto every_session = -std::chrono::milliseconds(std::chrono::hours(1));

/// A manager on `root` that does not wait for fdatasync (setting up and checking only).
manager quick_manager(const fs::path& root) {
    ds::jsonl_options o;
    o.sync = ds::durability::process_crash;
    return manager{ds::jsonl_store{root, "cli", o}};
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status))
        return std::string("killed by ") + ::strsignal(WTERMSIG(status));
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    return "status " + std::to_string(status);
}

std::uint64_t base_seed() {
    static const std::uint64_t seed = [] {
        std::uint64_t s = 0;
        if (const char* env = std::getenv("DEXTER_CRASH_SEED"); env && *env)
            s = std::strtoull(env, nullptr, 10);
        else
            s = (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
        std::cout << "jsonl_store_change_crash_test: seed " << s
                  << " (set DEXTER_CRASH_SEED to reuse it; kill instants still vary)" << std::endl;
        return s;
    }();
    return seed;
}

/// Rounds of each SIGKILL run: DEXTER_CHANGE_CRASH_ROUNDS, else 30.
int kill_rounds() {
    if (const char* env = std::getenv("DEXTER_CHANGE_CRASH_ROUNDS"); env && *env)
        return std::max(1, std::atoi(env));
    return 30;
}

/// The exchanges of the small sessions the tests make: `count` of them, small.
std::string small_query(std::uint64_t seq) {
    return "small question " + std::to_string(seq);
}
std::string small_answer(std::uint64_t seq) {
    return "small answer " + std::to_string(seq) + " \"quoted\"\n";
}

/// The answers of the forked session: 2,000 of them make some 1.5 MB, more than a
/// builder holds before it writes.
std::string fork_answer(std::uint64_t seq) {
    return small_answer(seq) + std::string(600, static_cast<char>('a' + seq % 26));
}

/// A new session of `count` exchanges (small_query, fork_answer); its id.
std::string large_session(const fs::path& root, std::uint64_t count) {
    manager m = quick_manager(root);
    m.start_new();
    for (std::uint64_t s = 1; s <= count; ++s)
        m.save_exchange(small_query(s), fork_answer(s));
    return m.current()->id;
}

/// n new sessions of 1 to 3 exchanges; their ids and exchange counts.
std::map<std::string, std::uint64_t> make_sessions(const fs::path& root, int n) {
    manager m = quick_manager(root);
    std::map<std::string, std::uint64_t> made;
    for (int i = 0; i < n; ++i) {
        m.start_new();
        const std::uint64_t count = 1 + static_cast<std::uint64_t>(i % 3);
        for (std::uint64_t s = 1; s <= count; ++s)
            m.save_exchange(small_query(s), small_answer(s));
        made[m.current()->id] = count;
    }
    m.close();
    return made;
}

/// Every name under root beginning with ".new-" or ".purging-": what a killed creation or
/// purge left.
std::vector<std::string> new_leftovers(const fs::path& root) {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (name.starts_with(".new-") || name.starts_with(".purging-"))
            found.push_back(fs::relative(e.path(), root).string());
    }
    return found;
}

/// The session directories of channel "cli" on disk.
std::set<std::string> session_dirs(const fs::path& root) {
    std::set<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / "cli", ec))
        if (ds::is_valid_session_id(e.path().filename().string()))
            ids.insert(e.path().filename().string());
    return ids;
}

/// Where the known sessions are, as a fresh store sees them.
struct places {
    std::map<std::string, ds::session_meta> live;
    std::multimap<std::string, ds::trashed_session> trash;
};

places look(const fs::path& root) {
    manager m = quick_manager(root);
    places p;
    for (auto& s : m.list_sessions())
        p.live.emplace(s.id, std::move(s));
    for (auto& t : m.list_trash())
        p.trash.emplace(t.meta.id, std::move(t));
    return p;
}

/// Session `id` loads completely, with `count` exchanges and no diagnostic.
void require_whole(const fs::path& root, const std::string& id, std::uint64_t count) {
    BOOST_TEST_CONTEXT("session " << id) {
        const auto s = ds::jsonl_store{root}.load(id, ds::all_exchanges);
        std::ostringstream diags;
        for (const auto& d : s.diagnostics)
            diags << " [line " << d.line << ": " << d.reason << "]";
        BOOST_TEST_INFO("diagnostics:" << diags.str());
        BOOST_REQUIRE(s.diagnostics.empty());
        BOOST_REQUIRE_EQUAL(s.meta.exchange_count, count);
        BOOST_REQUIRE_EQUAL(s.exchanges.size(), count);
        for (std::uint64_t i = 0; i < count; ++i)
            BOOST_REQUIRE_EQUAL(s.exchanges[i].seq, i + 1);
    }
}

/// The oracle after a kill, in a fresh store: each known session is in exactly one place
/// (live xor once in the trash; with `may_be_purged`, possibly nowhere), with its exchange
/// count, and loads whole when live; no unknown session is in the trash; no ".new-" name
/// is listed, and the store that listed has removed every one. Returns the live sessions
/// that are not known (a fork, say), and the trash and live ids of the known ones.
struct census {
    std::vector<ds::session_meta> unknown_live;
    std::set<std::string> live, trashed, gone;
    std::size_t leftovers = 0; ///< ".new-" names found before the fresh store looked
};

census check_places(const fs::path& root, const std::map<std::string, std::uint64_t>& known,
                    bool may_be_purged) {
    census c;
    c.leftovers = new_leftovers(root).size();
    const places p = look(root);
    for (const auto& [id, count] : known) {
        BOOST_TEST_CONTEXT("session " << id) {
            const bool live = p.live.count(id) == 1;
            const std::size_t in_trash = p.trash.count(id);
            BOOST_TEST_INFO((live ? "live" : "not live")
                            << ", " << in_trash << " times in the trash");
            BOOST_REQUIRE(in_trash <= 1);
            BOOST_TEST_INFO((live ? "live" : "not live")
                            << ", " << in_trash << " times in the trash");
            if (may_be_purged)
                BOOST_REQUIRE(!(live && in_trash == 1));
            else
                BOOST_REQUIRE(live != (in_trash == 1));
            if (live) {
                BOOST_REQUIRE_EQUAL(p.live.at(id).exchange_count, count);
                require_whole(root, id, count);
                c.live.insert(id);
            } else if (in_trash == 1) {
                BOOST_REQUIRE_EQUAL(p.trash.find(id)->second.meta.exchange_count, count);
                c.trashed.insert(id);
            } else {
                c.gone.insert(id);
            }
        }
    }
    for (const auto& id : session_dirs(root)) {
        BOOST_TEST_INFO("a session directory that is not listed: '" << id << "'");
        BOOST_REQUIRE(p.live.count(id) == 1);
    }
    for (const auto& [id, meta] : p.live) {
        BOOST_TEST_INFO("listed: '" << id << "'");
        BOOST_REQUIRE(ds::is_valid_session_id(id));
        if (!known.count(id))
            c.unknown_live.push_back(meta);
    }
    for (const auto& [id, t] : p.trash) {
        BOOST_TEST_INFO("an unknown session in the trash: '" << id << "'");
        BOOST_REQUIRE(known.count(id) == 1);
    }
    const auto left = new_leftovers(root);
    BOOST_TEST_INFO("still there after a fresh store listed: " << (left.empty() ? std::string()
                                                                                : left.front()));
    BOOST_REQUIRE(left.empty());
    return c;
}

/// How a round ends the child: SIGKILL `delay` after its READY, or a named kill point of
/// store_child: at the die_at_rename-th renameat() (--die-at-rename), or in the
/// die_in_write-th write() to a history, after `permille`/1000 of its bytes
/// (--die-in-write).
struct kill_plan {
    std::chrono::microseconds delay{0};
    int die_at_rename = 0;
    bool after_rename = false;
    int die_in_write = 0;
    int permille = 0;
    bool named() const { return die_at_rename > 0 || die_in_write > 0; }
};

/// A SIGKILL 0-20 ms after READY, or, one time in `named_one_in`, a named kill point at
/// one of the first `max_rename` renames.
kill_plan random_plan(std::mt19937_64& rng, int max_rename, std::uint64_t named_one_in = 3) {
    kill_plan p;
    if (rng() % named_one_in == 0) {
        p.die_at_rename = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(max_rename));
        p.after_rename = rng() % 2 == 0;
    } else {
        p.delay = std::chrono::microseconds(rng() % 20'001);
    }
    return p;
}

std::string describe(const kill_plan& p) {
    std::ostringstream o;
    if (p.die_in_write > 0)
        o << "SIGKILL in history write " << p.die_in_write << " after " << p.permille
          << "/1000 of its bytes";
    else if (p.die_at_rename > 0)
        o << "SIGKILL " << (p.after_rename ? "after" : "before") << " renameat " << p.die_at_rename;
    else
        o << "SIGKILL " << p.delay.count() << " us after READY";
    return o.str();
}

struct round_stats {
    int rounds = 0, killed = 0, completed = 0, named = 0, leftovers = 0;
    std::string summary(const std::string& what) const {
        std::ostringstream o;
        o << what << ": " << rounds << " rounds, " << killed << " killed (" << named
          << " at a named kill point), " << completed << " completed before the kill, " << leftovers
          << " with .new- or .purging- leftovers";
        return o.str();
    }
};

/// Starts `store_child <args>`, kills it as planned, returns what it said. Fails the test
/// when the child reports an error or ends otherwise than killed or done.
std::vector<std::string> run_and_kill(std::vector<std::string> args, const kill_plan& plan,
                                      round_stats& stats) {
    args.push_back("--no-sync"); // durability is not what these rounds test; speed is
    if (plan.die_at_rename > 0) {
        args.push_back("--die-at-rename");
        args.push_back(std::to_string(plan.die_at_rename) +
                       (plan.after_rename ? ":after" : ":before"));
    }
    if (plan.die_in_write > 0) {
        args.push_back("--die-in-write");
        args.push_back(std::to_string(plan.die_in_write) + ":" + std::to_string(plan.permille));
    }
    std::vector<std::string> said;
    child_process child(args, 60s);
    child.expect({"READY"});
    if (!plan.named()) {
        std::this_thread::sleep_for(plan.delay);
        ::kill(child.pid(), SIGKILL);
    }
    std::string errors;
    while (const auto line = child.read_line()) {
        if (line->starts_with("ERROR"))
            errors += *line + "\n";
        said.push_back(*line);
    }
    const int status = child.wait();
    BOOST_TEST_INFO("child " << describe_status(status) << "; it said: " << errors);
    BOOST_REQUIRE(errors.empty());
    const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    BOOST_REQUIRE(killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    ++stats.rounds;
    stats.killed += killed;
    stats.completed += !killed;
    stats.named += killed && plan.named();
    return said;
}

std::vector<std::string> ids_of(const std::map<std::string, std::uint64_t>& m) {
    std::vector<std::string> ids;
    for (const auto& [id, n] : m)
        ids.push_back(id);
    return ids;
}

void report(const round_stats& stats, const std::string& what) {
    BOOST_TEST_MESSAGE(stats.summary(what));
    std::cout << "jsonl_store_change_crash_test: " << stats.summary(what) << std::endl;
    // The kills must have landed before the operation ended, or little was tested.
    if (stats.rounds >= 10)
        BOOST_TEST(stats.killed > 0);
}

/// After a killed fork or import of `count` exchanges. Before any store looks (and
/// tidies): no part of a new session under any id, only a whole one (its header and every
/// exchange, each on a complete line). Then check_places(): at most one new live session,
/// and one when the child's last line begins with `reported`.
census check_one_new_session(const fs::path& root,
                             const std::map<std::string, std::uint64_t>& known, std::uint64_t count,
                             const std::vector<std::string>& said, const std::string& reported,
                             round_stats& stats) {
    for (const auto& id : session_dirs(root)) {
        if (known.count(id))
            continue;
        std::ifstream in(root / "cli" / id / "history.jsonl", std::ios::binary);
        const std::string raw{std::istreambuf_iterator<char>(in), {}};
        BOOST_TEST_CONTEXT("session directory " << id << " holding " << raw.size()
                                                << " bytes of history") {
            BOOST_REQUIRE(!raw.empty() && raw.back() == '\n');
            BOOST_REQUIRE_EQUAL(std::count(raw.begin(), raw.end(), '\n'),
                                static_cast<std::ptrdiff_t>(count + 1));
        }
    }
    const census c = check_places(root, known, false);
    stats.leftovers += c.leftovers > 0;
    BOOST_TEST_INFO(c.unknown_live.size() << " new live sessions");
    BOOST_REQUIRE_LE(c.unknown_live.size(), 1u);
    if (!said.empty() && said.back().starts_with(reported))
        BOOST_REQUIRE_EQUAL(c.unknown_live.size(), 1u);
    return c;
}

} // namespace

// --- 1. SIGKILL during each change --------------------------------------------------

BOOST_AUTO_TEST_CASE(sigkill_during_fork_leaves_no_fork_or_a_whole_one) {
    std::mt19937_64 rng(base_seed() + 1);
    dexter::sessions::test::temp_dir dir;
    constexpr std::uint64_t source_count = 2'000;
    const std::string source = large_session(dir.path(), source_count);
    std::map<std::string, std::uint64_t> known = make_sessions(dir.path(), 3);
    known[source] = source_count;
    round_stats stats;
    int forks = 0;
    for (int r = 0; r < kill_rounds(); ++r) {
        const kill_plan plan = random_plan(rng, 2, 2); // half at the rename that publishes it
        BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << r << ", " << describe(plan)) {
            const auto said = run_and_kill({"fork", dir.path().string(), source}, plan, stats);
            const census c =
                check_one_new_session(dir.path(), known, source_count, said, "FORKED ", stats);
            const bool reported = !said.empty() && said.back().starts_with("FORKED ");
            if (c.unknown_live.empty())
                continue;
            ++forks;
            const ds::session_meta& f = c.unknown_live.front();
            if (reported)
                BOOST_REQUIRE_EQUAL(said.back(),
                                    "FORKED " + f.id + " " + std::to_string(source_count));
            BOOST_REQUIRE_EQUAL(f.exchange_count, source_count);
            BOOST_REQUIRE(f.forked_from.has_value());
            BOOST_REQUIRE((*f.forked_from == ds::session_origin{source, source_count}));
            const auto loaded = ds::jsonl_store{dir.path()}.load(f.id, ds::all_exchanges);
            BOOST_REQUIRE(loaded.diagnostics.empty());
            BOOST_REQUIRE(loaded.meta.forked_from == f.forked_from);
            BOOST_REQUIRE_EQUAL(loaded.exchanges.size(), source_count);
            for (std::uint64_t i = 0; i < source_count; ++i) {
                BOOST_REQUIRE_EQUAL(loaded.exchanges[i].seq, i + 1);
                BOOST_REQUIRE(loaded.exchanges[i].query == small_query(i + 1));
                BOOST_REQUIRE(loaded.exchanges[i].answer == fork_answer(i + 1));
            }
            // Gone again, so that the next round starts from the same sessions.
            quick_manager(dir.path()).delete_session(f.id, ds::deletion::permanent);
        }
    }
    std::cout << "jsonl_store_change_crash_test: " << forks << " of the killed or finished forks "
              << "were there whole afterwards, the others not at all" << std::endl;
    report(stats, "fork of " + std::to_string(source_count) + " exchanges");
}

namespace {

/// Rounds of `store_child <what> <root> <every id of known>` (trash or restore), each
/// killed as random_plan() draws it, `before` run ahead of each. After each kill: every
/// session is in one place; each one the child reported (a line `reported` + its id) is
/// where the move took it (live after a restore, in the trash after a trash); what the
/// kill left in the trash restores whole.
round_stats kill_moves(std::mt19937_64& rng, const fs::path& root,
                       const std::map<std::string, std::uint64_t>& known, const std::string& what,
                       const std::string& reported, int rounds,
                       const std::function<void()>& before) {
    round_stats stats;
    for (int r = 0; r < rounds; ++r) {
        const kill_plan plan = random_plan(rng, 60);
        BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << r << ", " << describe(plan)) {
            before();
            std::vector<std::string> args{what, root.string()};
            const auto ids = ids_of(known);
            args.insert(args.end(), ids.begin(), ids.end());
            const auto said = run_and_kill(args, plan, stats);
            const census c = check_places(root, known, false);
            stats.leftovers += c.leftovers > 0;
            BOOST_REQUIRE(c.unknown_live.empty());
            const auto& moved_to = what == "restore" ? c.live : c.trashed;
            for (const auto& line : said)
                if (line.starts_with(reported))
                    BOOST_REQUIRE(moved_to.count(line.substr(reported.size())) == 1);
            // Back, for the next round: each restored session loads whole.
            manager m = quick_manager(root);
            for (const auto& id : c.trashed)
                BOOST_REQUIRE_EQUAL(m.restore_session(id).exchange_count, known.at(id));
            BOOST_REQUIRE_EQUAL(check_places(root, known, false).live.size(), known.size());
        }
    }
    return stats;
}

} // namespace

BOOST_AUTO_TEST_CASE(sigkill_during_trash_of_fifty_keeps_each_session_in_one_place) {
    std::mt19937_64 rng(base_seed() + 2);
    dexter::sessions::test::temp_dir dir;
    const auto known = make_sessions(dir.path(), 50);
    const round_stats stats =
        kill_moves(rng, dir.path(), known, "trash", "TRASHED ", kill_rounds(), [] {});
    report(stats, "trash of 50 sessions");
}

BOOST_AUTO_TEST_CASE(sigkill_during_restore_keeps_each_session_in_one_place) {
    std::mt19937_64 rng(base_seed() + 3);
    dexter::sessions::test::temp_dir dir;
    const auto known = make_sessions(dir.path(), 50);
    // Half the rounds: each moves 50 sessions twice, which syncs 200 directories.
    const auto all_to_the_trash = [&] {
        const auto pruned = quick_manager(dir.path()).prune(every_session);
        BOOST_REQUIRE(pruned.kept.empty());
        BOOST_REQUIRE_EQUAL(quick_manager(dir.path()).list_trash().size(), known.size());
    };
    const round_stats stats = kill_moves(rng, dir.path(), known, "restore", "RESTORED ",
                                         std::max(1, kill_rounds() / 2), all_to_the_trash);
    report(stats, "restore of 50 sessions");
}

BOOST_AUTO_TEST_CASE(sigkill_during_purge_deletes_whole_sessions_only) {
    std::mt19937_64 rng(base_seed() + 4);
    dexter::sessions::test::temp_dir dir;
    const auto bystanders = make_sessions(dir.path(), 5);
    for (const auto& [id, n] : bystanders)
        quick_manager(dir.path()).pin_session(id);
    round_stats stats;
    // Half the rounds, of 40 sessions: each round makes, trashes and purges them all,
    // which syncs some 250 directories.
    for (int r = 0; r < std::max(1, kill_rounds() / 2); ++r) {
        const kill_plan plan = random_plan(rng, 60);
        BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << r << ", " << describe(plan)) {
            const auto doomed = make_sessions(dir.path(), 40);
            { // to the trash in one batch (the bystanders are pinned)
                manager m = quick_manager(dir.path());
                const auto pruned = m.prune(every_session);
                BOOST_REQUIRE(pruned.kept.empty());
                BOOST_REQUIRE_EQUAL(pruned.moved.size(), doomed.size());
            }
            auto known = bystanders;
            known.insert(doomed.begin(), doomed.end());
            const auto said = run_and_kill({"purge", dir.path().string()}, plan, stats);
            const census c = check_places(dir.path(), known, true);
            stats.leftovers += c.leftovers > 0;
            BOOST_REQUIRE(c.unknown_live.empty());
            for (const auto& [id, n] : bystanders)
                BOOST_REQUIRE(c.live.count(id) == 1);
            for (const auto& [id, n] : doomed)
                BOOST_REQUIRE(c.live.count(id) == 0);
            if (!said.empty() && said.back().starts_with("PURGED "))
                BOOST_REQUIRE_EQUAL(said.back(), "PURGED 40 0");
            // A later purge finishes what the kill interrupted.
            const auto rest = quick_manager(dir.path()).purge_trash(0ms);
            BOOST_REQUIRE(rest.failed.empty());
            BOOST_REQUIRE_EQUAL(rest.purged.size(), c.trashed.size());
            BOOST_REQUIRE(quick_manager(dir.path()).list_trash().empty());
            for (const auto& [id, n] : doomed)
                BOOST_REQUIRE(!fs::exists(dir.path() / "cli" / id));
            // Nothing of a purged session is left on disk: no file in the trash.
            std::error_code ec; // no trash directory at all is fine too
            for (const auto& e : fs::recursive_directory_iterator(dir.path() / "trash", ec)) {
                BOOST_TEST_INFO("left in the trash: " << e.path());
                BOOST_REQUIRE(e.is_directory());
            }
        }
    }
    report(stats, "purge of 40 sessions");
}

BOOST_AUTO_TEST_CASE(sigkill_during_prune_keeps_each_session_in_one_place) {
    std::mt19937_64 rng(base_seed() + 5);
    dexter::sessions::test::temp_dir dir;
    auto known = make_sessions(dir.path(), 50);
    const std::string pinned = known.begin()->first;
    quick_manager(dir.path()).pin_session(pinned);
    round_stats stats;
    // Two thirds of the rounds: each moves up to 49 sessions twice.
    for (int r = 0; r < std::max(1, kill_rounds() * 2 / 3); ++r) {
        // A prune of 50 is quick: half of the kills at a named kill point, among its moves.
        const kill_plan plan = random_plan(rng, 55, 2);
        BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << r << ", " << describe(plan)) {
            const auto said = run_and_kill({"prune", dir.path().string()}, plan, stats);
            const census c = check_places(dir.path(), known, false);
            stats.leftovers += c.leftovers > 0;
            BOOST_REQUIRE(c.unknown_live.empty());
            BOOST_REQUIRE(c.live.count(pinned) == 1);
            BOOST_REQUIRE(look(dir.path()).live.at(pinned).pinned);
            if (!said.empty() && said.back().starts_with("PRUNED ")) {
                BOOST_REQUIRE_EQUAL(said.back(), "PRUNED 49 0");
                BOOST_REQUIRE_EQUAL(c.trashed.size(), 49u);
            }
            manager m = quick_manager(dir.path());
            for (const auto& id : c.trashed)
                BOOST_REQUIRE_EQUAL(m.restore_session(id).exchange_count, known.at(id));
        }
    }
    report(stats, "prune of 50 sessions");
}

namespace {

/// The jsonl export of session `id` of the store at `root`.
std::string export_of(const fs::path& root, const std::string& id) {
    manager m = quick_manager(root);
    const auto meta = m.find_session(id);
    BOOST_TEST_INFO("session " << id);
    BOOST_REQUIRE(meta);
    std::ostringstream out;
    const auto r = ds::export_session(m, *meta, ds::export_format::jsonl, out);
    BOOST_REQUIRE(r.diagnostics.empty());
    return out.str();
}

/// `exported` (a jsonl export of session `from`) as the export of session `to` reads:
/// the header names the id, no exchange does.
std::string with_id(std::string exported, const std::string& from, const std::string& to) {
    const std::string named = "\"id\":\"" + from + "\"";
    const auto at = exported.find(named);
    BOOST_REQUIRE(at != std::string::npos && at < exported.find('\n'));
    exported.replace(at, named.size(), "\"id\":\"" + to + "\"");
    return exported;
}

/// A fresh store's list, its find() of each listed session, and a list made without the
/// index (removed first, so that the store scans the channel) agree.
void require_list_find_and_index_agree(const fs::path& root) {
    std::map<std::string, std::uint64_t> listed, scanned;
    {
        manager m = quick_manager(root);
        for (const auto& s : m.list_sessions())
            listed[s.id] = s.exchange_count;
        for (const auto& [id, n] : listed) {
            const auto found = m.find_session(id);
            BOOST_TEST_INFO("listed session " << id);
            BOOST_REQUIRE(found);
            BOOST_REQUIRE_EQUAL(found->exchange_count, n);
        }
    }
    BOOST_REQUIRE(fs::remove(root / "index.json"));
    for (const auto& s : quick_manager(root).list_sessions())
        scanned[s.id] = s.exchange_count;
    BOOST_TEST_INFO(listed.size() << " sessions listed from the index, " << scanned.size()
                                  << " by a scan");
    BOOST_REQUIRE((listed == scanned));
}

/// A kill of an import: a third at one of its first two renames, a third in one of its
/// first two writes to a history (each of a megabyte or less), a third 0-20 ms after
/// READY.
kill_plan import_plan(std::mt19937_64& rng) {
    switch (rng() % 3) {
    case 0:
        return random_plan(rng, 2, 1);
    case 1: {
        kill_plan p;
        p.die_in_write = 1 + static_cast<int>(rng() % 2);
        p.permille = static_cast<int>(rng() % 1000);
        return p;
    }
    default: {
        kill_plan p;
        p.delay = std::chrono::microseconds(rng() % 20'001);
        return p;
    }
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(sigkill_during_import_leaves_no_session_or_a_whole_one) {
    std::mt19937_64 rng(base_seed() + 6);
    dexter::sessions::test::temp_dir dir, elsewhere;
    // The export: 2,000 exchanges, some 1.5 MB, more than a builder holds before it writes.
    constexpr std::uint64_t source_count = 2'000;
    const std::string source = large_session(elsewhere.path(), source_count);
    quick_manager(elsewhere.path()).rename_session(source, "to be imported");
    const std::string exported = export_of(elsewhere.path(), source);
    const fs::path file = elsewhere.path() / "export.jsonl";
    {
        std::ofstream out(file, std::ios::binary);
        out << exported;
        BOOST_REQUIRE(out.flush());
    }
    const auto known = make_sessions(dir.path(), 3);
    round_stats stats;
    int imports = 0;
    for (int r = 0; r < kill_rounds(); ++r) {
        const kill_plan plan = import_plan(rng);
        BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << r << ", " << describe(plan)) {
            const auto said =
                run_and_kill({"import", dir.path().string(), file.string()}, plan, stats);
            const census c =
                check_one_new_session(dir.path(), known, source_count, said, "IMPORTED ", stats);
            if (!said.empty() && said.back().starts_with("IMPORTED "))
                BOOST_REQUIRE_EQUAL(said.back(),
                                    "IMPORTED " + source + " " + std::to_string(source_count));
            if (!c.unknown_live.empty()) {
                ++imports;
                // The export's id was free: kept. The session exports as it was exported.
                BOOST_REQUIRE_EQUAL(c.unknown_live.front().id, source);
                BOOST_REQUIRE(export_of(dir.path(), source) == exported);
            }
            require_list_find_and_index_agree(dir.path());
            // The store takes the same import again: under a fresh id when the killed one
            // made its session.
            manager m = quick_manager(dir.path());
            std::ifstream in(file, std::ios::binary);
            const ds::import_result again = m.import_session(in);
            BOOST_REQUIRE(again.diagnostics.empty());
            BOOST_REQUIRE_EQUAL(again.exchanges, source_count);
            BOOST_REQUIRE_EQUAL(again.original_id, source);
            BOOST_REQUIRE_EQUAL(again.meta.id == source, c.unknown_live.empty());
            BOOST_REQUIRE(export_of(dir.path(), again.meta.id) ==
                          with_id(exported, source, again.meta.id));
            // Gone again, so that the next round starts from the same sessions.
            m.delete_session(again.meta.id, ds::deletion::permanent);
            if (!c.unknown_live.empty())
                m.delete_session(source, ds::deletion::permanent);
        }
    }
    std::cout << "jsonl_store_change_crash_test: " << imports << " of the killed or finished "
              << "imports were there whole afterwards, the others not at all" << std::endl;
    report(stats, "import of " + std::to_string(source_count) + " exchanges");
}

// --- 2. changes racing a writer in another process ----------------------------------

BOOST_AUTO_TEST_CASE(a_fork_of_a_session_being_written_is_a_whole_prefix) {
    dexter::sessions::test::temp_dir dir;
    // The writer syncs each exchange, so that it saves about as fast as the forks copy.
    child_process writer({"append", dir.path().string(), "new", "250"});
    writer.expect({"READY", "OPEN"});
    std::string id;
    std::uint64_t acked = 0;
    const auto next_ack = [&] {
        for (;;) {
            const std::string line = writer.expect_line();
            BOOST_TEST_INFO("the writer said: " << line);
            BOOST_REQUIRE(line.starts_with("ACK ") || line.starts_with("ID "));
            if (line.starts_with("ID ")) {
                id = line.substr(3);
                continue;
            }
            acked = std::stoull(line.substr(4));
            return;
        }
    };
    manager m = quick_manager(dir.path());
    std::vector<ds::session_meta> forks;
    bool done = false;
    // Forks until one holds all 250 (the writer is done): later ones would race nothing.
    while (!done && forks.size() < 40 && (forks.empty() || forks.back().exchange_count < 250)) {
        next_ack();
        done = acked == 250;
        const std::uint64_t floor = acked;
        const ds::session_meta f = m.fork_session(id);
        BOOST_TEST_CONTEXT("fork " << forks.size() << " after ACK " << floor) {
            BOOST_REQUIRE_GE(f.exchange_count, floor);
            BOOST_REQUIRE((f.forked_from == ds::session_origin{id, f.exchange_count}));
        }
        forks.push_back(f);
    }
    while (!done) {
        next_ack();
        done = acked == 250;
    }
    const int status = writer.wait();
    BOOST_REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    // Each fork holds exactly the source's records 1..k.
    const auto source = ds::jsonl_store{dir.path()}.load(id, ds::all_exchanges);
    BOOST_REQUIRE(source.diagnostics.empty());
    BOOST_REQUIRE_EQUAL(source.exchanges.size(), 250u);
    for (const auto& f : forks) {
        BOOST_TEST_CONTEXT("fork " << f.id << " of " << f.exchange_count << " exchanges") {
            const auto loaded = ds::jsonl_store{dir.path()}.load(f.id, ds::all_exchanges);
            BOOST_REQUIRE(loaded.diagnostics.empty());
            BOOST_REQUIRE_EQUAL(loaded.exchanges.size(), f.exchange_count);
            BOOST_REQUIRE_EQUAL(loaded.meta.exchange_count, f.exchange_count);
            for (std::size_t i = 0; i < loaded.exchanges.size(); ++i) {
                BOOST_REQUIRE_EQUAL(loaded.exchanges[i].seq, i + 1);
                BOOST_REQUIRE(loaded.exchanges[i] == source.exchanges[i]);
                BOOST_REQUIRE(loaded.exchanges[i].answer == answer_for(i + 1));
            }
        }
    }
    std::ostringstream sizes;
    int racing = 0;
    for (const auto& f : forks) {
        sizes << " " << f.exchange_count;
        racing += f.exchange_count < 250;
    }
    std::cout << "jsonl_store_change_crash_test: " << forks.size() << " forks (" << racing
              << " while the writer was still saving), of" << sizes.str() << " exchanges"
              << std::endl;
}

BOOST_AUTO_TEST_CASE(rename_and_pin_wait_for_the_writer_to_leave) {
    dexter::sessions::test::temp_dir dir;
    const std::string id = make_sessions(dir.path(), 1).begin()->first;
    {
        child_process holder({"hold", dir.path().string(), id});
        holder.expect({"HELD"});
        manager m{ds::jsonl_store{dir.path()}};
        BOOST_CHECK_THROW(m.rename_session(id, "renamed"), ds::session_busy);
        BOOST_CHECK_THROW(m.pin_session(id), ds::session_busy);
        const auto still = m.find_session(id);
        BOOST_REQUIRE(still);
        BOOST_TEST(still->title != "renamed");
        BOOST_TEST(!still->pinned);
        ::kill(holder.pid(), SIGKILL);
        const int status = holder.wait();
        BOOST_REQUIRE(WIFSIGNALED(status));
    }
    manager m{ds::jsonl_store{dir.path()}};
    m.rename_session(id, "renamed");
    m.pin_session(id);
    const auto after = manager{ds::jsonl_store{dir.path()}}.find_session(id);
    BOOST_REQUIRE(after);
    BOOST_TEST(after->title == "renamed");
    BOOST_TEST(after->pinned);
    require_whole(dir.path(), id, 1);
}

BOOST_AUTO_TEST_CASE(prune_never_moves_a_session_being_written) {
    dexter::sessions::test::temp_dir dir;
    const auto idle = make_sessions(dir.path(), 20);
    child_process writer({"append", dir.path().string(), "new", "1000000", "--no-sync"});
    writer.expect({"READY", "OPEN"});
    std::string busy;
    for (std::string line = writer.expect_line();; line = writer.expect_line())
        if (line.starts_with("ID ")) {
            busy = line.substr(3);
            break;
        }
    for (int round = 0; round < 5; ++round) {
        BOOST_TEST_CONTEXT("round " << round) {
            manager m{ds::jsonl_store{dir.path()}};
            const auto r = m.prune(every_session);
            std::set<std::string> moved;
            for (const auto& s : r.moved)
                moved.insert(s.id);
            BOOST_TEST(moved.count(busy) == 0);
            BOOST_REQUIRE_EQUAL(moved.size(), idle.size());
            for (const auto& [id, n] : idle)
                BOOST_REQUIRE(moved.count(id) == 1);
            BOOST_REQUIRE_EQUAL(r.kept.size(), 1u);
            BOOST_TEST(r.kept.front().first.id == busy);
            BOOST_TEST_MESSAGE("kept because: " << r.kept.front().second);
            const places p = look(dir.path());
            BOOST_REQUIRE(p.live.count(busy) == 1);
            BOOST_REQUIRE(p.trash.count(busy) == 0);
            for (const auto& [id, n] : idle)
                BOOST_REQUIRE_EQUAL(m.restore_session(id).exchange_count, n);
        }
    }
    // The writer went on saving throughout.
    const std::string line = writer.expect_line();
    BOOST_REQUIRE(line.starts_with("ACK "));
    ::kill(writer.pid(), SIGKILL);
    writer.wait();
    const auto s = ds::jsonl_store{dir.path()}.load(busy, ds::all_exchanges);
    BOOST_REQUIRE(s.diagnostics.empty() || s.diagnostics.size() == 1); // a torn tail at most
    for (std::size_t i = 0; i < s.exchanges.size(); ++i)
        BOOST_REQUIRE(s.exchanges[i].query == query_for(i + 1));
}

// --- 3. retention reads the stored updated_at, never the files' times ---------------

namespace {

using clocked_manager = ds::session_manager<ds::jsonl_store, ds::manual_clock>;

/// name -> size (-1 for a directory) of everything under root.
std::map<std::string, std::intmax_t> disk_listing(const fs::path& root) {
    std::map<std::string, std::intmax_t> out;
    for (const auto& e : fs::recursive_directory_iterator(root))
        out[fs::relative(e.path(), root).string()] =
            e.is_directory() ? -1 : static_cast<std::intmax_t>(e.file_size());
    return out;
}

void set_mtime(const fs::path& p, std::optional<std::int64_t> seconds) {
    timespec times[2];
    for (auto& t : times) {
        t.tv_sec = seconds.value_or(0);
        t.tv_nsec = seconds ? 0 : UTIME_NOW;
    }
    BOOST_REQUIRE_EQUAL(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

} // namespace

BOOST_AUTO_TEST_CASE(prune_goes_by_stored_updated_at_whatever_the_file_times) {
    dexter::sessions::test::temp_dir dir;
    const auto t0 = std::chrono::sys_days{std::chrono::year{2026} / 1 / 1};
    ds::jsonl_options o;
    o.sync = ds::durability::process_crash;
    std::set<std::string> old_ids, new_ids;
    std::string old_pinned;
    {
        clocked_manager m{ds::jsonl_store{dir.path(), "cli", o}, ds::manual_clock{t0}};
        for (int i = 0; i < 6; ++i) {
            m.start_new();
            m.save_exchange("old " + std::to_string(i), "a");
            old_ids.insert(m.current()->id);
            m.clock().advance(1h);
        }
        m.start_new();
        m.save_exchange("old and pinned", "a");
        old_pinned = m.current()->id;
        m.pin_session(old_pinned);
        m.clock().set(t0 + std::chrono::days(30));
        for (int i = 0; i < 6; ++i) {
            m.start_new();
            m.save_exchange("new " + std::to_string(i), "a");
            new_ids.insert(m.current()->id);
            m.clock().advance(1h);
        }
        m.close();
    }
    const fs::path cli = dir.path() / "cli";
    // The old sessions' files and directories look new; the new ones' look ancient (one
    // of them copied over, as cp -p from a backup would leave it).
    for (const auto& id : old_ids) {
        set_mtime(cli / id / "history.jsonl", std::nullopt);
        set_mtime(cli / id, std::nullopt);
    }
    const std::string copied = *new_ids.begin();
    {
        const fs::path h = cli / copied / "history.jsonl";
        const fs::path tmp = cli / copied / "copy.tmp";
        fs::copy_file(h, tmp);
        set_mtime(tmp, 0);
        fs::rename(tmp, h);
    }
    for (const auto& id : new_ids) {
        set_mtime(cli / id / "history.jsonl", 0);
        set_mtime(cli / id, 0);
    }

    const auto now = t0 + std::chrono::days(31);
    const auto week = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::days(7));
    { // let a store settle what the changed times make it redo (its index)
        clocked_manager m{ds::jsonl_store{dir.path(), "cli", o}, ds::manual_clock{now}};
        BOOST_REQUIRE_EQUAL(m.list_sessions().size(), old_ids.size() + new_ids.size() + 1);
    }
    const auto before = disk_listing(dir.path());
    std::set<std::string> would;
    {
        clocked_manager m{ds::jsonl_store{dir.path(), "cli", o}, ds::manual_clock{now}};
        const auto dry = m.prune(week, true);
        BOOST_TEST(dry.kept.empty());
        for (const auto& s : dry.moved)
            would.insert(s.id);
    }
    const auto after = disk_listing(dir.path());
    BOOST_TEST((before == after), "a dry run changed the files under the store");
    BOOST_TEST((would == old_ids));

    clocked_manager m{ds::jsonl_store{dir.path(), "cli", o}, ds::manual_clock{now}};
    const auto real = m.prune(week);
    std::set<std::string> moved;
    for (const auto& s : real.moved)
        moved.insert(s.id);
    BOOST_TEST((moved == would));
    BOOST_TEST(real.kept.empty());
    const places p = look(dir.path());
    for (const auto& id : old_ids)
        BOOST_TEST((p.trash.count(id) == 1 && p.live.count(id) == 0), id);
    for (const auto& id : new_ids)
        BOOST_TEST((p.live.count(id) == 1 && p.trash.count(id) == 0), id);
    BOOST_TEST(p.live.count(old_pinned) == 1);
    BOOST_TEST(p.trash.count(old_pinned) == 0);
}
