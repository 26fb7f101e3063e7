// SPDX-License-Identifier: BSL-1.0
// jsonl_store.hpp killed mid-append (RELIABILITY.md row 1): I1, I2, torn-tail repair.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE jsonl_store_crash
#include <boost/test/unit_test.hpp>

#include "support/child_process.hpp"
#include "support/store_child_records.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
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

std::string describe_status(int status) {
    if (WIFSIGNALED(status))
        return std::string("killed by ") + ::strsignal(WTERMSIG(status));
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    return "status " + std::to_string(status);
}

// --- files ---------------------------------------------------------------------------

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::string text(fs::file_size(p), '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(text.size())))
        throw std::runtime_error("cannot read " + p.string());
    return text;
}

std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        names.insert(e.path().filename());
    return names;
}

std::set<std::string> session_dirs(const fs::path& root) {
    std::set<std::string> ids;
    for (const auto& n : entries(root / "cli"))
        if (ds::is_valid_session_id(n))
            ids.insert(n);
    return ids;
}

/// Every line of `text` (which must end with a newline, unless empty) is a JSON object.
void require_every_line_parses(const std::string& text) {
    BOOST_REQUIRE(text.empty() || text.back() == '\n');
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        const auto nl = text.find('\n', pos);
        ++line_no;
        boost::system::error_code ec;
        const auto v = boost::json::parse(std::string_view(text).substr(pos, nl - pos), ec);
        BOOST_TEST_INFO("line " << line_no);
        BOOST_REQUIRE(!ec && v.is_object());
        pos = nl + 1;
    }
}

/// True when `torn` can be the beginning of the record the writer was writing: the
/// session header when no line is complete yet, else exchange `next` (whose timestamp
/// is unknown here: those 24 characters are not compared).
bool is_prefix_of_next_record(const std::string& torn, bool have_line, const std::string& id,
                              std::uint64_t next) {
    std::string record;
    std::size_t mask_from = 0, mask_to = 0;
    if (!have_line) {
        record = R"({"type":"session","version":1,"id":")" + id + "\"";
    } else {
        ds::exchange ex;
        ex.seq = next;
        ex.query = query_for(next);
        ex.answer = answer_for(next);
        ds::detail::encode_exchange(record, ex);
        mask_from = record.find(R"("timestamp":")") + 13;
        mask_to = mask_from + 24;
    }
    // The whole record includes its newline, which a torn tail never has.
    if (torn.size() >= record.size() && have_line)
        return false;
    for (std::size_t i = 0; i < torn.size() && i < record.size(); ++i)
        if ((i < mask_from || i >= mask_to) && torn[i] != record[i])
            return false;
    return true;
}

// --- the rounds ----------------------------------------------------------------------

std::uint64_t base_seed() {
    static const std::uint64_t seed = [] {
        std::uint64_t s = 0;
        if (const char* env = std::getenv("DEXTER_CRASH_SEED"); env && *env)
            s = std::strtoull(env, nullptr, 10);
        else
            s = (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
        std::cout << "jsonl_store_crash_test: seed " << s
                  << " (set DEXTER_CRASH_SEED to reuse it; kill instants still vary)" << std::endl;
        return s;
    }();
    return seed;
}

/// Rounds of the main SIGKILL run: DEXTER_CRASH_ROUNDS, else 200. The other runs do a
/// fraction of it.
int kill_rounds() {
    if (const char* env = std::getenv("DEXTER_CRASH_ROUNDS"); env && *env)
        return std::max(1, std::atoi(env));
    return 200;
}

struct session_state {
    std::string id;          ///< empty: the next round starts a new session
    std::uint64_t known = 0; ///< exchanges known to be stored (checked, or saved by us)
    int rounds = 0;
};

struct crash_stats {
    int rounds = 0, acked_rounds = 0, torn = 0, unacked_complete = 0, parent_repairs = 0,
        left_to_child = 0, before_create = 0, mid_create = 0, unborn = 0;
};

/// How a round ends the child: `sig` after `delay` (from its READY, so that a kill can
/// land while it opens and repairs; or from its OPEN, while it saves), or a named kill
/// point inside the die_at-th write() of a history file (store_child --die-in-write).
struct kill_plan {
    int sig = SIGKILL;
    bool sync = true;
    std::chrono::microseconds delay{0};
    bool from_open = false;
    int die_at = 0;
    int permille = 0;
};

constexpr int rounds_per_session = 8;

// After a kill: the file is a contiguous prefix 1..n with n the last ACK or one more
// (I1, I2), possibly with a torn tail that load() reports and that is a prefix of the
// record being written. With `repair`, acts as the next writer and checks the repair.
void check_after_kill(const fs::path& root, session_state& s, std::uint64_t acked,
                      const kill_plan& plan, bool repair, crash_stats& stats) {
    const fs::path path = root / "cli" / s.id / "history.jsonl";
    const std::string raw = read_file(path);
    const auto last_nl = raw.rfind('\n');
    const std::size_t complete = last_nl == std::string::npos ? 0 : last_nl + 1;
    const std::string torn = raw.substr(complete);

    const auto loaded = ds::jsonl_store{root}.load(s.id, ds::all_exchanges);
    const std::uint64_t n = loaded.exchanges.size();
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto& ex = loaded.exchanges[i];
        BOOST_TEST_INFO("exchange " << i + 1 << " of " << n);
        BOOST_REQUIRE_EQUAL(ex.seq, i + 1); // I2: no hole, no duplicate
        BOOST_REQUIRE(ex.query == query_for(ex.seq));
        BOOST_REQUIRE(ex.answer == answer_for(ex.seq));
    }
    const std::uint64_t floor = std::max(s.known, acked);
    BOOST_TEST_INFO("acknowledged " << floor << ", loaded " << n);
    BOOST_REQUIRE_GE(n, floor); // I1: every acknowledged exchange is there
    BOOST_TEST_INFO("acknowledged " << floor << ", loaded " << n);
    BOOST_REQUIRE_LE(n, floor + 1); // I2: at most the one being written when killed
    BOOST_REQUIRE_EQUAL(loaded.meta.exchange_count, n);

    std::ostringstream diags;
    for (const auto& d : loaded.diagnostics)
        diags << " [line " << d.line << " offset " << d.offset << ": " << d.reason << "]";
    BOOST_TEST_INFO("diagnostics:" << diags.str());
    if (raw.empty()) {
        // Killed after the history was made, before its header was written.
        BOOST_REQUIRE_EQUAL(loaded.diagnostics.size(), 1u);
        BOOST_REQUIRE(loaded.diagnostics[0].reason.find("no valid session header") !=
                      std::string::npos);
    } else if (torn.empty()) {
        BOOST_REQUIRE(loaded.diagnostics.empty());
    } else {
        ++stats.torn;
        // Only the tail is reported, nothing in the middle of the file; and, when the
        // torn record is the header itself, that the session has no header.
        BOOST_REQUIRE_EQUAL(loaded.diagnostics.size(), complete == 0 ? 2u : 1u);
        if (complete == 0)
            BOOST_REQUIRE(loaded.diagnostics[1].reason.find("no valid session header") !=
                          std::string::npos);
        BOOST_REQUIRE_EQUAL(loaded.diagnostics[0].offset, complete);
        BOOST_REQUIRE(loaded.diagnostics[0].reason.find("incomplete last line") !=
                      std::string::npos);
        BOOST_TEST_INFO("a torn tail of " << torn.size() << " bytes after " << n << " exchanges");
        BOOST_REQUIRE(n == floor); // the record being written is the torn one
        BOOST_TEST_INFO("torn tail: " << torn.substr(0, 120));
        BOOST_REQUIRE(is_prefix_of_next_record(torn, complete > 0, s.id, n + 1));
    }
    if (plan.die_at > 0) {
        // The kill point tears the record it writes, or writes none of it.
        BOOST_REQUIRE_EQUAL(n, floor);
        BOOST_REQUIRE_EQUAL(torn.empty(), plan.permille == 0);
    }
    if (n == floor + 1)
        ++stats.unacked_complete;
    s.known = n;

    // A fresh reader lists the session with what its history holds (the index is only
    // a cache). This also writes index.json, which keeps the next child's start short.
    {
        const auto quarantined_before = entries(root / "quarantine");
        ds::jsonl_store lister{root};
        const auto all = lister.list();
        const auto it = std::find_if(all.begin(), all.end(),
                                     [&](const ds::session_meta& m) { return m.id == s.id; });
        if (n == 0 && (!torn.empty() || raw.empty())) {
            // Killed during its creation or its first save: an unborn session, which the
            // list moves to quarantine whole and removes (no one could resume or delete
            // it).
            BOOST_REQUIRE(it == all.end());
            BOOST_REQUIRE(!fs::exists(root / "cli" / s.id));
            std::vector<std::string> added;
            for (const auto& q : entries(root / "quarantine"))
                if (!quarantined_before.count(q))
                    added.push_back(q);
            BOOST_REQUIRE_EQUAL(added.size(), raw.empty() ? 0u : 1u);
            if (!raw.empty())
                BOOST_REQUIRE(read_file(root / "quarantine" / added[0]) == raw);
            ++stats.unborn;
            s = session_state{};
            return;
        }
        BOOST_REQUIRE(it != all.end());
        BOOST_REQUIRE_EQUAL(it->exchange_count, n);
    }
    if (!repair && n > 0) {
        if (!torn.empty())
            ++stats.left_to_child;
        return;
    }

    // The next writer: open() repairs the tail, and the next exchange is n + 1 on a
    // line of its own.
    ++stats.parent_repairs;
    const auto quarantined_before = entries(root / "quarantine");
    {
        ds::jsonl_store store{root};
        const ds::session_meta meta = store.open(s.id);
        BOOST_REQUIRE_EQUAL(meta.exchange_count, n);
        std::vector<std::string> tail_notes;
        for (const auto& d : store.take_diagnostics()) {
            if (d.reason.find("incomplete last record") != std::string::npos)
                tail_notes.push_back(d.reason);
            else
                BOOST_TEST_MESSAGE("store note: " << d.reason);
        }
        std::set<std::string> quarantined;
        for (const auto& q : entries(root / "quarantine"))
            if (!quarantined_before.count(q))
                quarantined.insert(q);
        const std::string repaired = read_file(path);
        if (torn.empty()) {
            BOOST_REQUIRE(tail_notes.empty());
            BOOST_REQUIRE(quarantined.empty());
            BOOST_REQUIRE(repaired == raw);
        } else {
            BOOST_REQUIRE_EQUAL(tail_notes.size(), 1u);
            BOOST_REQUIRE_EQUAL(quarantined.size(), 1u);
            const fs::path q = root / "quarantine" / *quarantined.begin();
            BOOST_TEST_INFO(tail_notes[0]);
            BOOST_REQUIRE(tail_notes[0].find(q.string()) != std::string::npos);
            BOOST_REQUIRE(read_file(q) == torn); // moved aside, byte for byte
            BOOST_REQUIRE(repaired == raw.substr(0, complete));
        }
        require_every_line_parses(repaired);
        ds::exchange ex;
        ex.seq = n + 1;
        ex.timestamp =
            std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
        ex.query = query_for(ex.seq);
        ex.answer = answer_for(ex.seq);
        store.append(meta.id, ex);
        store.close(s.id);
    }
    const std::string after = read_file(path);
    BOOST_REQUIRE(after.compare(0, complete, raw, 0, complete) == 0);
    const std::string added = after.substr(complete);
    BOOST_TEST_INFO("added: " << added.substr(0, 120));
    BOOST_REQUIRE(added.starts_with(R"({"type":"exchange","seq":)" + std::to_string(n + 1) + ","));
    BOOST_REQUIRE_EQUAL(std::count(added.begin(), added.end(), '\n'), 1);
    require_every_line_parses(after);
    const auto reloaded = ds::jsonl_store{root}.load(s.id, ds::all_exchanges);
    BOOST_REQUIRE(reloaded.diagnostics.empty());
    BOOST_REQUIRE_EQUAL(reloaded.exchanges.size(), n + 1);
    BOOST_REQUIRE_EQUAL(reloaded.exchanges.back().seq, n + 1);
    BOOST_REQUIRE(reloaded.exchanges.back().answer == answer_for(n + 1));
    s.known = n + 1;
}

std::string describe(const kill_plan& p) {
    std::ostringstream o;
    if (p.die_at > 0)
        o << "SIGKILL inside history write " << p.die_at << " after " << p.permille
          << "/1000 of it";
    else
        o << ::strsignal(p.sig) << " " << p.delay.count() << " us after "
          << (p.from_open ? "OPEN" : "READY");
    if (!p.sync)
        o << ", --no-sync";
    return o.str();
}

// One round: start `store_child append`, kill it as planned, check what it left.
void crash_round(const fs::path& root, session_state& s, const kill_plan& plan,
                 std::mt19937_64& rng, crash_stats& stats) {
    const bool is_new = s.id.empty();
    const auto dirs_before = is_new ? session_dirs(root) : std::set<std::string>{};
    std::vector<std::string> args{"append", root.string(), is_new ? "new" : s.id, "1000000"};
    if (!plan.sync)
        args.push_back("--no-sync");
    if (plan.die_at > 0) {
        args.push_back("--die-in-write");
        args.push_back(std::to_string(plan.die_at) + ":" + std::to_string(plan.permille));
    }
    // Else the child of the next round repairs (it cannot resume a session without
    // exchanges: that one the parent always completes).
    const bool repair = rng() % 3 != 0;
    const int sig = plan.die_at > 0 ? SIGKILL : plan.sig;
    BOOST_TEST_CONTEXT("seed " << base_seed() << ", round " << stats.rounds << ", session '" << s.id
                               << "', " << describe(plan)) {
        std::uint64_t acked = 0;
        std::string id_line, error;
        {
            child_process child(args, 60s);
            child.expect({"READY"});
            if (plan.die_at == 0) {
                if (plan.from_open)
                    child.expect({"OPEN"});
                std::this_thread::sleep_for(plan.delay);
                ::kill(child.pid(), sig);
            }
            while (const auto line = child.read_line()) {
                if (line->starts_with("ACK ")) {
                    // "ACK <seq> <writes>": each record reached the file in one write()
                    // (write protocol step 4): the header and the first exchange of a
                    // new session, one exchange after that.
                    std::istringstream words(line->substr(4));
                    std::uint64_t writes = 0;
                    words >> acked >> writes;
                    BOOST_TEST_INFO("child said: " << *line);
                    BOOST_REQUIRE_EQUAL(writes, (acked == 1 && is_new) ? 2u : 1u);
                } else if (line->starts_with("ID ")) {
                    id_line = line->substr(3);
                } else if (*line != "OPEN") {
                    error += *line + "\n";
                }
            }
            const int status = child.wait();
            BOOST_TEST_INFO("child " << describe_status(status) << "; it said: " << error);
            BOOST_REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == sig);
        }
        ++stats.rounds;
        if (acked > 0)
            ++stats.acked_rounds;
        if (is_new) {
            std::vector<std::string> created;
            for (const auto& d : session_dirs(root))
                if (!dirs_before.count(d))
                    created.push_back(d);
            BOOST_REQUIRE_LE(created.size(), 1u);
            if (!id_line.empty()) {
                BOOST_REQUIRE_EQUAL(created.size(), 1u);
                BOOST_REQUIRE_EQUAL(created[0], id_line);
            }
            if (created.empty()) {
                ++stats.before_create;
                return;
            }
            if (!fs::exists(root / "cli" / created[0] / "history.jsonl")) {
                // Killed between mkdir and the creation of the history file.
                BOOST_REQUIRE_EQUAL(acked, 0u);
                ++stats.mid_create;
                return;
            }
            s = {created[0], 0, 0};
        }
        check_after_kill(root, s, acked, plan, repair, stats);
        if (++s.rounds == rounds_per_session)
            s = {};
    }
}

/// `rounds` rounds in a fresh store. sig == 0: named kill points instead of signals.
void run_crash_rounds(int sig, bool sync, int rounds) {
    std::mt19937_64 rng(base_seed() + static_cast<std::uint64_t>(sig) * 2 + (sync ? 1 : 0));
    dexter::sessions::test::temp_dir dir;
    session_state s;
    crash_stats stats;
    for (int r = 0; r < rounds; ++r) {
        kill_plan plan;
        plan.sync = sync;
        if (sig != 0) {
            plan.sig = sig;
            plan.delay = std::chrono::microseconds(rng() % 20'001);
            plan.from_open = rng() % 3 != 0;
        } else {
            plan.die_at = 1 + static_cast<int>(rng() % 4);
            const auto pick = rng() % 4; // none, all but the newline, or anything between
            plan.permille = pick == 0 ? 0 : pick == 1 ? 1000 : 1 + static_cast<int>(rng() % 999);
        }
        crash_round(dir.path(), s, plan, rng, stats);
    }
    std::ostringstream summary;
    summary << (sig ? ::strsignal(sig) : "kill points") << (sync ? "" : " --no-sync") << ": "
            << stats.rounds << " rounds, " << stats.acked_rounds << " with acknowledged exchanges, "
            << stats.torn << " torn tails (" << stats.left_to_child
            << " left for the next child to repair), " << stats.unacked_complete
            << " complete but unacknowledged records, " << stats.parent_repairs
            << " reopen checks, " << stats.before_create << " kills before create, "
            << stats.mid_create << " inside create, " << stats.unborn
            << " first saves torn (the session quarantined whole)";
    BOOST_TEST_MESSAGE(summary.str());
    std::cout << "jsonl_store_crash_test: " << summary.str() << std::endl;
    // The kills must have landed while exchanges were being saved (and the kill points
    // must have torn records), or little was tested. Not asserted for a handful of rounds.
    if (rounds >= 20)
        BOOST_TEST(stats.acked_rounds > 0);
    if (sig == 0 && rounds >= 8)
        BOOST_TEST(stats.torn > 0);
}

} // namespace

BOOST_AUTO_TEST_CASE(sigkill_during_append_keeps_acknowledged_exchanges) {
    run_crash_rounds(SIGKILL, true, kill_rounds());
}

BOOST_AUTO_TEST_CASE(sigkill_without_sync_keeps_acknowledged_exchanges) {
    // durability::process_crash: no fdatasync, but a killed process loses nothing the
    // kernel accepted.
    run_crash_rounds(SIGKILL, false, std::max(1, kill_rounds() / 2));
}

BOOST_AUTO_TEST_CASE(sigkill_inside_write_at_named_kill_points) {
    // Deterministic torn tails (random timing may rarely land inside write()): the
    // child writes part of a record and SIGKILLs itself.
    run_crash_rounds(0, true, std::max(1, kill_rounds() / 4));
    run_crash_rounds(0, false, std::max(1, kill_rounds() / 8));
}

BOOST_AUTO_TEST_CASE(sigterm_during_append_keeps_acknowledged_exchanges) {
    run_crash_rounds(SIGTERM, true, std::max(1, kill_rounds() / 4));
}

BOOST_AUTO_TEST_CASE(sigint_during_append_keeps_acknowledged_exchanges) {
    run_crash_rounds(SIGINT, true, std::max(1, kill_rounds() / 4));
}
