// SPDX-License-Identifier: BSL-1.0
// The change side's figures of docs/PERFORMANCE.md: fork and prune, each beside its floor
// (cp of the file; renames of the directories) measured in the same run; and what secret
// redaction adds to a save, beside the same save without it.
#include "change_figures.hpp"

#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/redacting_store.hpp>

#include "process.hpp"
#include "report.hpp"
#include "sqlite_peer.hpp"
#include "workload.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {
namespace {

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
using manager = ds::session_manager<ds::jsonl_store>;

void sync_dir(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) < 0)
        throw std::runtime_error("cannot sync " + p.string());
    ::close(fd);
}

// The store of figure 12: one session of z.long_session exchanges; written on first use.
fs::path fork_store(const fs::path& dir, const change_sizes& z) {
    const fs::path root = dir / "f12";
    if (!fs::exists(root / "cli" / bench_id(0) / "history.jsonl")) {
        make_store(root, 1, z.long_session);
        ds::jsonl_store{root}.list(); // the index is built
    }
    return root;
}

// One fork of session `id`, timed; the fork is deleted again afterwards (not timed).
// Returns the seconds and the peak resident size above the size before, in MiB.
std::pair<double, double> timed_fork(const fs::path& root, const std::string& id,
                                     ds::durability sync) {
    manager m{ds::jsonl_store{root, "cli", {sync}}};
    ::malloc_trim(0);
    reset_peak();
    const long before = status_kb("VmRSS:");
    const auto t0 = clock_type::now();
    const auto fork = m.fork_session(id);
    const double seconds = seconds_of(clock_type::now() - t0);
    const long peak = status_kb("VmHWM:");
    m.delete_session(fork.id, ds::deletion::permanent);
    return {seconds, (peak - before) / 1024.0};
}

} // namespace

void figure_12(const fs::path& dir, const change_sizes& z) {
    const fs::path root = fork_store(dir, z);
    const std::string id = bench_id(0);
    const fs::path file = root / "cli" / id / "history.jsonl";
    const fs::path copy = dir / "f12-copy.jsonl";
    const std::string n = std::to_string(z.long_session);
    double extra_mib = 0;
    std::vector<double> fast, durable;
    for (std::size_t i = 0; i < z.repeats; ++i) {
        const auto [s, mib] = timed_fork(root, id, ds::durability::process_crash);
        fast.push_back(s);
        extra_mib = std::max(extra_mib, mib);
        const auto [sd, mibd] = timed_fork(root, id, ds::durability::full);
        durable.push_back(sd);
        extra_mib = std::max(extra_mib, mibd);
    }
    const double cp = time_median(z.repeats, [&] {
        run({"cp", file.string(), copy.string()});
        fs::remove(copy);
    });
    const double cp_sync = time_median(z.repeats, [&] {
        run({"cp", file.string(), copy.string()});
        run({"sync", copy.string()});
        fs::remove(copy);
    });
    // SQLite: INSERT ... SELECT of the session's rows in one transaction, undone untimed.
    std::vector<double> theirs_fast, theirs_durable;
    const fs::path db = dir / "sqlite-f12.db";
    if (sqlite::built()) {
        sqlite::make_db(db, 1, z.long_session);
        for (std::size_t i = 0; i < z.repeats; ++i)
            for (const bool full_sync : {false, true}) {
                const double t = time_once([&] { sqlite::fork(db, id, "fork", full_sync); });
                (full_sync ? theirs_durable : theirs_fast).push_back(t);
                sqlite::remove(db, "fork");
            }
    }
    add("12a", "fork of " + n + " exchanges, no sync, beside cp of the file", median(fast), cp,
        1.3);
    sqlite::built() ? with_sqlite(median(fast), median(theirs_fast))
                    : without_sqlite(sqlite::not_built);
    add("12b", "fork of " + n + " exchanges, synced (default), beside cp + sync of the copy",
        median(durable), cp_sync, 1.3);
    sqlite::built() ? with_sqlite(median(durable), median(theirs_durable))
                    : without_sqlite(sqlite::not_built);
    table.push_back({"12m", "peak memory of a fork of " + n + " exchanges", fmt(extra_mib, "MiB"),
                     "", "", "≤ 16 MiB", extra_mib <= 16 ? "met" : "MISSED"});
    std::cerr << "  12m: " << table.back().ours << "\n";
}

void figure_13(const fs::path& dir, const change_sizes& z) {
    const fs::path root = dir / "f13";
    const std::string n = std::to_string(z.many_sessions);
    std::vector<double> ours, floor;
    for (std::size_t i = 0; i < z.repeats; ++i) {
        fs::remove_all(root);
        make_store(root, z.many_sessions, 1);
        manager m{ds::jsonl_store{root}};
        m.list_sessions(); // the index is built, as in a store in use
        const auto t0 = clock_type::now();
        const auto pruned = m.prune(std::chrono::hours{24});
        ours.push_back(seconds_of(clock_type::now() - t0));
        if (pruned.moved.size() != z.many_sessions)
            throw std::runtime_error("figure 13: prune moved " +
                                     std::to_string(pruned.moved.size()) + " sessions, not " + n);

        fs::remove_all(root);
        make_store(root, z.many_sessions, 1);
        const fs::path to = root / "moved";
        fs::create_directory(to);
        sync_dir(root / "cli");
        const auto t1 = clock_type::now();
        for (std::size_t s = 0; s < z.many_sessions; ++s) {
            const auto id = bench_id(s);
            if (std::rename((root / "cli" / id).c_str(), (to / id).c_str()) != 0)
                throw std::runtime_error("figure 13: rename failed");
        }
        sync_dir(root / "cli");
        sync_dir(to);
        floor.push_back(seconds_of(clock_type::now() - t1));
    }
    fs::remove_all(root);
    add("13", "prune of " + n + " sessions beside " + n + " renames", median(ours), median(floor),
        2.0);
}

void figure_17(const fs::path& dir, const change_sizes& z) {
    const fs::path plain_root = dir / "f17-plain", redacting_root = dir / "f17-redacting";
    const ds::jsonl_options fast{ds::durability::process_crash};
    manager plain{ds::jsonl_store{plain_root, "cli", fast}};
    ds::session_manager<ds::redacting_store<ds::jsonl_store>> redacting{
        ds::redacting_store<ds::jsonl_store>{ds::jsonl_store{redacting_root, "cli", fast}}};
    plain.start_new();
    redacting.start_new();
    plain.save_exchange(make_exchange(1));
    redacting.save_exchange(make_exchange(1));
    std::vector<ds::exchange> drafts;
    for (std::size_t i = 0; i < z.saves; ++i)
        drafts.push_back(make_exchange(i + 2));
    std::vector<double> ours, floor;
    // Interleaved, each side first in turn, so that both see the same state of the disk.
    for (std::size_t i = 0; i < z.saves; ++i) {
        const auto timed = [&](auto& m, std::vector<double>& into) {
            ds::exchange copy = drafts[i];
            const auto t0 = clock_type::now();
            m.save_exchange(std::move(copy));
            into.push_back(seconds_of(clock_type::now() - t0));
        };
        if (i % 2 == 0) {
            timed(plain, floor);
            timed(redacting, ours);
        } else {
            timed(redacting, ours);
            timed(plain, floor);
        }
    }
    if (!redacting.storage().take_redacted().empty())
        throw std::runtime_error("figure 17: the workload's text was redacted");
    add("17",
        "save_exchange through redacting_store, durability off, beside the same save "
        "without it",
        median(std::move(ours)), median(std::move(floor)), 1.10);
}

} // namespace bench
