// SPDX-License-Identifier: BSL-1.0
// The benchmark table of docs/PERFORMANCE.md: every hot path beside its floor, the same
// bytes through the machine's own primitives, measured in the same run.
//
//   bench [--size tiny|full] [--dir DIR] [--dexter PATH] [--only FIGURE[,FIGURE...]]
//
// Prints a Markdown table. Ratios, not absolute times, are the result: absolute times
// move with the machine and its load; ratios measured side by side in one run do not.
#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include "change_figures.hpp"
#include "process.hpp"
#include "read_figures.hpp"
#include "report.hpp"
#include "sqlite_peer.hpp"
#include "workload.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
namespace json = boost::json;
using bench::add;
using bench::clock_type;
using bench::fmt;
using bench::median;
using bench::reset_peak;
using bench::row;
using bench::seconds_of;
using bench::status_kb;
using bench::table;
using bench::time_median;
using bench::with_sqlite;
using bench::without_sqlite;
namespace sq = bench::sqlite;

namespace {

struct sizes {
    std::size_t saves_synced, saves_unsynced, many_sessions, long_session, short_session,
        load_exchanges, repeats, live_saves;
};
constexpr sizes full_sizes{200, 3000, 10000, 100000, 100, 10000, 15, 100000};
constexpr sizes tiny_sizes{10, 50, 50, 500, 20, 200, 3, 2000};

// --- peak memory, measured in a child process -----------------------------------------

// What a child reported: its resident size before the work and at its peak (kB, -1 if
// it failed), what the work returned (exchanges loaded, turns resumed) and its time.
struct child_report {
    long base = -1, peak = -1;
    std::size_t count = 0;
    double seconds = 0;
};

// Runs `self --child <args>` and reads its "baseline_kb peak_kb [count seconds]" line.
child_report child_run(const std::string& self, std::vector<std::string> args) {
    args.insert(args.begin(), {self, "--child"});
    const auto [out, status] = bench::output_of(std::move(args), bench::environment_with({}));
    child_report r;
    if (status == 0)
        std::istringstream(out) >> r.base >> r.peak >> r.count >> r.seconds;
    return r;
}

std::pair<long, long> child_memory(const std::string& self, std::vector<std::string> args) {
    const auto r = child_run(self, std::move(args));
    return {r.base, r.peak};
}

// The floor of figure 5: `file` read in fixed-size chunks, every line parsed by one reused
// parser into an arena. Returns the number of lines parsed as objects.
std::size_t chunked_parse(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::runtime_error("cannot open " + file.string());
    std::string buf(64 * 1024, '\0'), partial;
    std::array<unsigned char, 8192> arena;
    json::parser p;
    std::size_t lines = 0;
    auto parse = [&](std::string_view line) {
        json::monotonic_resource mr(arena.data(), arena.size());
        p.reset(&mr);
        boost::system::error_code ec;
        p.write(line.data(), line.size(), ec);
        if (!ec) {
            json::value v = p.release();
            lines += v.is_object();
        }
    };
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
        std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        for (std::size_t from = 0;;) {
            const auto nl = chunk.find('\n', from);
            if (nl == std::string_view::npos) {
                partial.append(chunk.substr(from));
                break;
            }
            if (partial.empty()) {
                parse(chunk.substr(from, nl - from));
            } else {
                partial.append(chunk.substr(from, nl - from));
                parse(partial);
                partial.clear();
            }
            from = nl + 1;
        }
    }
    ::close(fd);
    return lines;
}

// The work of a memory child: what it holds at its peak, measured from `base`.
std::size_t child_work(const std::string& mode, const fs::path& root, const std::string& arg) {
    if (mode == "resume") {
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{root}};
        m.resume(arg);
        return m.history().recent_turns(10).size();
    }
    if (mode == "load")
        return ds::jsonl_store{root}.load(arg, ds::all_exchanges).exchanges.size();
    if (mode == "sqlite-resume")
        return sq::resume(root, arg, 10).exchanges.size();
    if (mode == "sqlite-load")
        return sq::load(root, arg).exchanges.size();
    return 0;
}

// A live session: `saves` workload exchanges, each made just before it is saved (so that
// the benchmark holds one at a time), through the manager or SQLite (synchronous=OFF).
// The baseline is taken before the first save, once the session exists.
std::pair<long, long> live_session(const std::string& mode, const fs::path& root,
                                   std::uint64_t saves) {
    long base = 0;
    if (mode == "live") {
        ds::session_manager<ds::jsonl_store> m{
            ds::jsonl_store{root, "cli", {ds::durability::process_crash}}};
        m.start_new();
        reset_peak();
        base = status_kb("VmRSS:");
        for (std::uint64_t s = 1; s <= saves; ++s)
            m.save_exchange(bench::make_exchange(s));
    } else {
        sq::writer w(root, false);
        const std::string id = bench::bench_id(0);
        w.add_session(id, "live", ds::time_point{});
        reset_peak();
        base = status_kb("VmRSS:");
        for (std::uint64_t s = 1; s <= saves; ++s)
            w.save(id, bench::make_exchange(s));
    }
    return {base, status_kb("VmHWM:")};
}

int child_main(int argc, char** argv) {
    // --child resume|load|sqlite-resume|sqlite-load <root or db> <id>
    // --child live|sqlite-live <root or db> <saves>
    if (argc < 5)
        return 2;
    const std::string mode = argv[2];
    const fs::path root = argv[3];
    const std::string arg = argv[4];
    if (mode == "live" || mode == "sqlite-live") {
        const auto [base, peak] = live_session(mode, root, std::strtoull(arg.c_str(), nullptr, 10));
        std::printf("%ld %ld\n", base, peak);
        return 0;
    }
    // Page in the code and the allocator, not measured.
    if (mode.rfind("sqlite-", 0) == 0)
        sq::resume(root, arg, 1);
    else
        ds::jsonl_store{root}.find(arg);
    reset_peak();
    const long base = status_kb("VmRSS:");
    const auto start = clock_type::now();
    const std::size_t sink = child_work(mode, root, arg);
    const double seconds = seconds_of(clock_type::now() - start);
    const long peak = status_kb("VmHWM:");
    std::printf("%ld %ld %zu %.9f\n", base, peak, sink, seconds);
    return 0;
}

// --- whole processes: a fresh process per run ------------------------------------------

// `self --probe <mode> <args>`: one operation in a fresh process, its count printed.
//   noop | resume <root> <id> | list <root> | page <root> | sqlite-resume <db> <id> |
//   sqlite-list <db> | sqlite-page <db>      (a page: the newest 20 sessions)
constexpr std::size_t page_size = 20; // a page of a listing (figure 16p)

int probe_main(int argc, char** argv) {
    const std::string mode = argc > 2 ? argv[2] : "";
    std::size_t n = 0;
    if (mode == "noop") {
        n = 1;
    } else if (mode == "resume" && argc == 5) {
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{argv[3]}};
        m.resume(argv[4]);
        n = m.history().recent_turns(10).size();
    } else if (mode == "list" && argc == 4) {
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{argv[3]}};
        n = m.list_sessions().size();
    } else if (mode == "page" && argc == 4) {
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{argv[3]}};
        n = m.list_page({page_size, std::nullopt, {}}).sessions.size();
    } else if (mode == "sqlite-page" && argc == 4) {
        n = sq::list(argv[3], page_size).size();
    } else if (mode == "sqlite-resume" && argc == 5) {
        n = sq::resume(argv[3], argv[4], 10).exchanges.size();
    } else if (mode == "sqlite-list" && argc == 4) {
        n = sq::list(argv[3]).size();
    } else {
        return 2;
    }
    std::printf("%zu\n", n);
    return 0;
}

// The wall time of one run of `argv` (spawn, its whole output read, wait); throws unless
// it exits with 0 and its output holds `expect`.
double time_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::string& expect) {
    const auto t0 = clock_type::now();
    const auto [out, status] = bench::output_of(argv, env);
    const double t = seconds_of(clock_type::now() - t0);
    if (status != 0 || out.find(expect) == std::string::npos)
        throw std::runtime_error(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + " " +
                                 (argv.size() > 2 ? argv[2] : "") + " failed");
    return t;
}

// The medians of `rounds` runs of each command, interleaved so that all see the same
// machine, after one untimed run of each (the page cache warm).
std::vector<double> time_processes(const std::vector<std::vector<std::string>>& commands,
                                   const std::vector<std::string>& env,
                                   const std::vector<std::string>& expect, std::size_t rounds) {
    std::vector<std::vector<double>> t(commands.size());
    for (std::size_t round = 0; round <= rounds; ++round)
        for (std::size_t c = 0; c < commands.size(); ++c) {
            const double s = time_process(commands[c], env, expect[c]);
            if (round > 0)
                t[c].push_back(s);
        }
    std::vector<double> out;
    for (auto& v : t)
        out.push_back(median(std::move(v)));
    return out;
}

// The SQLite database of `sessions` sessions of `exchanges` exchanges in `dir`, written
// on first use.
fs::path sqlite_db(const fs::path& dir, std::size_t sessions, std::uint64_t exchanges) {
    const fs::path db =
        dir / ("sqlite-" + std::to_string(sessions) + "x" + std::to_string(exchanges) + ".db");
    sq::make_db(db, sessions, exchanges);
    return db;
}

// The file store of `sessions` sessions of `exchanges` exchanges in `dir`, its index
// built, written on first use.
fs::path file_store(const fs::path& dir, std::size_t sessions, std::uint64_t exchanges) {
    const fs::path root =
        dir / ("store-" + std::to_string(sessions) + "x" + std::to_string(exchanges));
    if (!fs::exists(root)) {
        bench::make_store(root, sessions, exchanges);
        ds::jsonl_store{root}.list();
    }
    return root;
}

// --- the figures ---------------------------------------------------------------------

// Appends `bytes` to `fd`: the floor of a save.
void raw_append(int fd, const std::string& bytes) {
    if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        throw std::runtime_error("short write in the floor");
}

std::string record_line(const ds::exchange& ex) {
    std::string s;
    ds::detail::encode_exchange(s, ex);
    return s;
}

// The medians of one save figure: ours, the floor, and SQLite's (0 when not built).
struct save_medians {
    double ours = 0, floor = 0, sqlite = 0;
};

// `n` saves of the exchanges `make(2)`, `make(3)`... through a manager with `sync` in a
// store at `root`, each beside the floor (synced: the record's bytes written and
// fdatasync'ed; else Boost.JSON serialising the exchange, then one write) and, when
// `peer`, SQLite's transaction (synchronous=FULL when synced, else OFF).
template <class Make>
save_medians time_saves(const fs::path& root, ds::durability sync, std::size_t n, Make make,
                        bool peer) {
    const bool synced = sync == ds::durability::full;
    ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{root, "cli", {sync}}};
    m.start_new();
    m.save_exchange(make(1));
    const int floor_fd =
        ::open((root / "floor.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    std::unique_ptr<sq::writer> peer_db;
    const std::string peer_id = bench::bench_id(0);
    if (peer) {
        peer_db = std::make_unique<sq::writer>(root / "peer.db", synced);
        peer_db->add_session(peer_id, "bench", ds::time_point{});
        peer_db->save(peer_id, make(1));
    }
    std::vector<ds::exchange> drafts;
    for (std::size_t i = 0; i < n; ++i)
        drafts.push_back(make(i + 2));
    std::vector<double> ours, floor, theirs;
    // Interleaved, so that all three see the same state of the disk.
    for (std::size_t i = 0; i < n; ++i) {
        ds::exchange copy = drafts[i];
        auto t0 = clock_type::now();
        m.save_exchange(std::move(copy));
        ours.push_back(seconds_of(clock_type::now() - t0));
        if (synced) {
            const std::string line = record_line(drafts[i]);
            t0 = clock_type::now();
            raw_append(floor_fd, line);
            ::fdatasync(floor_fd);
            floor.push_back(seconds_of(clock_type::now() - t0));
        } else {
            t0 = clock_type::now();
            json::value v = json::value_from(drafts[i]);
            std::string line = json::serialize(v);
            line += '\n';
            raw_append(floor_fd, line);
            floor.push_back(seconds_of(clock_type::now() - t0));
        }
        if (peer_db) {
            t0 = clock_type::now();
            peer_db->save(peer_id, drafts[i]);
            theirs.push_back(seconds_of(clock_type::now() - t0));
        }
    }
    ::close(floor_fd);
    return {median(std::move(ours)), median(std::move(floor)), median(std::move(theirs))};
}

// The part of a save that records it in changes.log, alone: flock(LOCK_SH), the
// "\n<channel>/<id>\n" line written, flock(LOCK_UN), on a file in `root`; the median of
// `n` such triples.
double changes_log_part(const fs::path& root, std::size_t n) {
    const int fd = ::open((root / "changes-alone.log").c_str(),
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    const std::string line = "\ncli/" + bench::bench_id(0) + "\n";
    std::vector<double> t;
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = clock_type::now();
        ::flock(fd, LOCK_SH);
        raw_append(fd, line);
        ::flock(fd, LOCK_UN);
        t.push_back(seconds_of(clock_type::now() - t0));
    }
    ::close(fd);
    return median(std::move(t));
}

void figures_1_2(const fs::path& dir, const sizes& z) {
    const bool peer = sq::built();
    const auto realistic = [](std::uint64_t s) { return bench::make_exchange(s); };
    const auto synced =
        time_saves(dir / "f1", ds::durability::full, z.saves_synced, realistic, peer);
    add("1", "save_exchange, durability on (median)", synced.ours, synced.floor, 1.2, "s");
    peer ? with_sqlite(synced.ours, synced.sqlite) : without_sqlite(sq::not_built);
    const auto fast =
        time_saves(dir / "f2", ds::durability::process_crash, z.saves_unsynced, realistic, peer);
    add("2", "save_exchange, durability off (median)", fast.ours, fast.floor, 2.0, "s");
    peer ? with_sqlite(fast.ours, fast.sqlite) : without_sqlite(sq::not_built);
    const auto easy = time_saves(
        dir / "f2e", ds::durability::process_crash, z.saves_unsynced,
        [](std::uint64_t s) { return bench::make_easy_exchange(s); }, false);
    add("2e", "the same on the easy ASCII text of earlier tables", easy.ours, easy.floor, 2.0, "s");
    const double log_part = changes_log_part(dir / "f2", z.saves_unsynced);
    char share[32];
    std::snprintf(share, sizeof share, "%.0f %% of 2", 100 * log_part / fast.ours);
    table.push_back({"2l", "of figure 2: two flock calls and the changes.log line, alone",
                     fmt(log_part, "s"), fmt(fast.ours, "s") + " (figure 2)", share, "", "-"});
    std::cerr << "  2l: " << table.back().ours << ", " << share << "\n";
}

void figure_3(const fs::path& dir, const sizes& z) {
    std::vector<double> per_store;
    for (const std::size_t sessions : {std::size_t{1}, z.many_sessions}) {
        const fs::path root = dir / ("f3-" + std::to_string(sessions));
        bench::make_store(root, sessions, 2);
        ds::session_manager<ds::jsonl_store> m{
            ds::jsonl_store{root, "cli", {ds::durability::process_crash}}};
        m.list_sessions(); // the index is built and warm
        m.resume(bench::bench_id(0));
        std::vector<double> t;
        for (std::size_t i = 0; i < z.saves_unsynced; ++i) {
            ds::exchange ex = bench::make_exchange(i + 3);
            const auto t0 = clock_type::now();
            m.save_exchange(std::move(ex));
            t.push_back(seconds_of(clock_type::now() - t0));
        }
        per_store.push_back(median(std::move(t)));
    }
    add("3",
        "save_exchange in a store of " + std::to_string(z.many_sessions) +
            " sessions vs 1 session (durability off)",
        per_store[1], per_store[0], 1.1);
    if (!sq::built())
        return without_sqlite(sq::not_built);
    sq::writer w(sqlite_db(dir, z.many_sessions, 2), false);
    std::vector<double> t;
    for (std::size_t i = 0; i < z.saves_unsynced; ++i) {
        const ds::exchange ex = bench::make_exchange(i + 3);
        const auto t0 = clock_type::now();
        w.save(bench::bench_id(0), ex);
        t.push_back(seconds_of(clock_type::now() - t0));
    }
    with_sqlite(per_store[1], median(std::move(t)));
}

void figures_4_7(const fs::path& dir, const sizes& z, const std::string& self) {
    std::vector<double> per_length;
    std::vector<std::pair<long, long>> memory;
    for (const std::size_t length : {z.short_session, z.long_session}) {
        const fs::path root = dir / ("f4-" + std::to_string(length));
        fs::create_directories(root / "cli" / bench::bench_id(0));
        {
            const int fd = ::open((root / "cli" / bench::bench_id(0) / "history.jsonl").c_str(),
                                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            for (std::size_t from = 1; from <= length; from += 1000)
                raw_append(fd, bench::history_bytes(bench::bench_id(0),
                                                    std::min<std::size_t>(1000, length - from + 1),
                                                    from));
            ::close(fd);
        }
        ds::jsonl_store{root}.list(); // index warm
        per_length.push_back(time_median(z.repeats, [&] {
            ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{root}};
            m.resume(bench::bench_id(0));
            if (m.history().recent_turns(10).empty())
                throw std::runtime_error("empty resume");
        }));
        memory.push_back(child_memory(self, {"resume", root.string(), bench::bench_id(0)}));
    }
    add("4",
        "resume + recent_turns(10): " + std::to_string(z.long_session) + " vs " +
            std::to_string(z.short_session) + " exchanges",
        per_length[1], per_length[0], 2.0);
    const double extra_mib = (memory[1].second - memory[1].first) / 1024.0;
    table.push_back({"7",
                     "peak memory of figure 4 at " + std::to_string(z.long_session) +
                         " exchanges, above the process baseline",
                     fmt(extra_mib, "MiB"), fmt(memory[1].first / 1024.0, "MiB") + " baseline", "",
                     "≤ 16 MiB", extra_mib <= 16 ? "met" : "MISSED"});
    std::cerr << "  7: " << extra_mib << " MiB above baseline\n";
}

// Figure 5: a full load in the measuring process, ours, the floor (chunked_parse()) and
// SQLite interleaved, so that each finds the heap as the one before left it (a load's
// time depends on glibc's heap: docs/PERFORMANCE.md). 5m and 5p: the same loads of ours
// and SQLite in fresh processes (`--child load|sqlite-load`): their peak memory, and
// their time with every page of the result new to the process.
void figure_5(const fs::path& dir, const sizes& z, const std::string& self) {
    const fs::path root = file_store(dir, 1, z.load_exchanges);
    const fs::path file = root / "cli" / bench::bench_id(0) / "history.jsonl";
    const double bytes = static_cast<double>(fs::file_size(file));
    const fs::path db = sq::built() ? sqlite_db(dir, 1, z.load_exchanges) : fs::path();
    ds::jsonl_store store{root};
    std::vector<double> ours, floor, theirs;
    auto timed = [](std::vector<double>& times, auto&& work) {
        const auto start = clock_type::now();
        work();
        times.push_back(seconds_of(clock_type::now() - start));
    };
    for (std::size_t i = 0; i < z.repeats; ++i) {
        timed(ours, [&] {
            if (store.load(bench::bench_id(0), ds::all_exchanges).exchanges.size() !=
                z.load_exchanges)
                throw std::runtime_error("bad load");
        });
        timed(floor, [&] {
            if (chunked_parse(file) != z.load_exchanges + 1)
                throw std::runtime_error("bad floor");
        });
        if (!db.empty())
            timed(theirs, [&] {
                if (sq::load(db, bench::bench_id(0)).exchanges.size() != z.load_exchanges)
                    throw std::runtime_error("bad SQLite load");
            });
    }
    const double t = median(std::move(ours));
    add("5",
        "full load of " + std::to_string(z.load_exchanges) + " exchanges (" +
            fmt(bytes / t / 1e6, "MB/s") + ")",
        t, median(std::move(floor)), 1.3);
    db.empty() ? without_sqlite(sq::not_built) : with_sqlite(t, median(std::move(theirs)));

    std::vector<double> fresh_ours, fresh_theirs;
    long our_peak = -1, their_peak = -1;
    for (std::size_t i = 0; i < std::max<std::size_t>(z.repeats / 3, 1); ++i) {
        const auto r = child_run(self, {"load", root.string(), bench::bench_id(0)});
        if (r.base < 0 || r.count != z.load_exchanges)
            throw std::runtime_error("figure 5m: the child failed");
        fresh_ours.push_back(r.seconds);
        our_peak = std::max(our_peak, r.peak - r.base);
        if (!db.empty()) {
            const auto q = child_run(self, {"sqlite-load", db.string(), bench::bench_id(0)});
            if (q.base < 0 || q.count != z.load_exchanges)
                throw std::runtime_error("figure 5m: the SQLite child failed");
            fresh_theirs.push_back(q.seconds);
            their_peak = std::max(their_peak, q.peak - q.base);
        }
    }
    const double peak_ratio = our_peak * 1024.0 / bytes;
    char r[32];
    std::snprintf(r, sizeof r, "%.2f×", peak_ratio);
    table.push_back({"5m", "peak memory of the full load, above baseline",
                     fmt(our_peak / 1024.0, "MiB"), fmt(bytes / 1048576.0, "MiB") + " file", r,
                     "≤ 1.30×", peak_ratio <= 1.3 ? "met" : "MISSED"});
    db.empty() ? without_sqlite(sq::not_built)
               : with_sqlite(our_peak / 1024.0, their_peak / 1024.0, "MiB");
    const double fresh = median(std::move(fresh_ours));
    table.push_back({"5p", "the full load of 5 in a fresh process (every page of it new)",
                     fmt(fresh, "s"), "", "", "", "-"});
    std::cerr << "  5p: " << table.back().ours << "\n";
    db.empty() ? without_sqlite(sq::not_built)
               : with_sqlite(fresh, median(std::move(fresh_theirs)));
}

void figure_6(const fs::path& dir, const sizes& z) {
    const fs::path root = dir / "f6";
    bench::make_store(root, z.many_sessions, 1);
    const auto cold_start = clock_type::now();
    const auto n = ds::jsonl_store{root}.list().size();
    const double cold = seconds_of(clock_type::now() - cold_start);
    if (n != z.many_sessions)
        throw std::runtime_error("bad list");
    const double ours = time_median(z.repeats, [&] {
        ds::jsonl_store store{root}; // a new process would start like this
        if (store.list().size() != z.many_sessions)
            throw std::runtime_error("bad list");
    });
    const double floor = time_median(z.repeats, [&] {
        std::ifstream in(root / "index.json", std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        json::value v = json::parse(text);
        if (!v.is_object())
            throw std::runtime_error("bad index");
    });
    add("6",
        "list_sessions of " + std::to_string(z.many_sessions) +
            " sessions, index warm (cold, index rebuilt: " + fmt(cold, "s") + ")",
        ours, floor, 2.0);
    if (!sq::built())
        return without_sqlite(sq::not_built);
    const fs::path db = sqlite_db(dir, z.many_sessions, 1);
    with_sqlite(ours, time_median(z.repeats, [&] {
                    if (sq::list(db).size() != z.many_sessions)
                        throw std::runtime_error("bad SQLite list");
                }));
}

void figure_14(const fs::path& dir, const sizes& z, const std::string& self) {
    const std::string n = std::to_string(z.live_saves);
    const auto ours = child_memory(self, {"live", (dir / "f14").string(), n});
    if (ours.first < 0)
        throw std::runtime_error("figure 14: the measuring child failed");
    const double mib = (ours.second - ours.first) / 1024.0;
    table.push_back({"14",
                     "peak memory of a live session of " + n +
                         " saves through the manager (no sync), above the baseline",
                     fmt(mib, "MiB"), fmt(ours.first / 1024.0, "MiB") + " baseline", "", "≤ 16 MiB",
                     mib <= 16 ? "met" : "MISSED"});
    std::cerr << "  14: " << table.back().ours << "\n";
    fs::remove_all(dir / "f14"); // half a gigabyte at the full size
    if (!sq::built())
        return without_sqlite(sq::not_built);
    const auto theirs = child_memory(self, {"sqlite-live", (dir / "f14.db").string(), n});
    for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(dir / ("f14.db" + std::string(suffix)));
    if (theirs.first < 0)
        throw std::runtime_error("figure 14: the SQLite child failed");
    with_sqlite(mib, (theirs.second - theirs.first) / 1024.0, "MiB");
}

void figure_15(const fs::path& dir, const sizes& z, const std::string& self) {
    const fs::path root = file_store(dir, 1, z.load_exchanges);
    const std::string id = bench::bench_id(0);
    std::vector<std::vector<std::string>> commands{{self, "--probe", "noop"},
                                                   {self, "--probe", "resume", root.string(), id}};
    std::vector<std::string> expect{"1", "20"}; // 10 exchanges, two turns each
    if (sq::built()) {
        commands.push_back(
            {self, "--probe", "sqlite-resume", sqlite_db(dir, 1, z.load_exchanges).string(), id});
        expect.push_back("10");
    }
    const auto t = time_processes(commands, bench::environment_with({}), expect, z.repeats);
    table.push_back({"15",
                     "resume + recent_turns(10) of " + std::to_string(z.load_exchanges) +
                         " exchanges, whole process",
                     fmt(t[1], "s"), fmt(t[0], "s") + " (empty process)", "", "", "-"});
    std::cerr << "  15: " << table.back().ours << ", empty process " << fmt(t[0], "s") << "\n";
    sq::built() ? with_sqlite(t[1], t[2]) : without_sqlite(sq::not_built);
}

void figure_16(const fs::path& dir, const sizes& z, const std::string& self,
               const std::string& dexter) {
    const fs::path root = file_store(dir, z.many_sessions, 1);
    const std::string n = std::to_string(z.many_sessions);
    std::vector<std::vector<std::string>> commands{{self, "--probe", "noop"},
                                                   {self, "--probe", "list", root.string()},
                                                   {self, "--probe", "page", root.string()}};
    const std::string page = std::to_string(page_size);
    std::vector<std::string> expect{"1", n, page};
    const bool with_dexter = !dexter.empty() && fs::exists(dexter);
    if (with_dexter) {
        commands.push_back({dexter, "--list-sessions", "--json"});
        expect.push_back("\"" + bench::bench_id(z.many_sessions - 1) + "\"");
    }
    if (sq::built()) {
        const std::string db = sqlite_db(dir, z.many_sessions, 1).string();
        commands.push_back({self, "--probe", "sqlite-list", db});
        commands.push_back({self, "--probe", "sqlite-page", db});
        expect.push_back(n);
        expect.push_back(page);
    }
    const auto t = time_processes(
        commands,
        bench::environment_with({"DEXTER_STORE=", "DEXTER_SESSIONS_DIR=" + root.string()}), expect,
        z.repeats);
    const std::size_t sqlite_at = with_dexter ? 4 : 3;
    table.push_back({"16", "list_sessions() of " + n + " sessions, whole process", fmt(t[1], "s"),
                     fmt(t[0], "s") + " (empty process)", "", "", "-"});
    std::cerr << "  16: " << table.back().ours << ", empty process " << fmt(t[0], "s") << "\n";
    sq::built() ? with_sqlite(t[1], t[sqlite_at]) : without_sqlite(sq::not_built);
    table.push_back({"16p",
                     "list_page() of the newest " + page + " of " + n + " sessions, whole process",
                     fmt(t[2], "s"), fmt(t[0], "s") + " (empty process)", "", "", "-"});
    std::cerr << "  16p: " << table.back().ours << "\n";
    sq::built() ? with_sqlite(t[2], t[sqlite_at + 1]) : without_sqlite(sq::not_built);
    const std::string what = "dexter --list-sessions --json of " + n + " sessions, whole process";
    if (!with_dexter) {
        table.push_back({"16d", what, "not run (no dexter built)", "", "", "", "-"});
        return;
    }
    char r[32];
    std::snprintf(r, sizeof r, "%.2f×", t[3] / t[1]);
    table.push_back({"16d", what, fmt(t[3], "s"), fmt(t[1], "s") + " (16)", r, "", "-"});
    std::cerr << "  16d: " << table.back().ours << " vs " << table.back().floor << "\n";
}

double run_dexter(const std::string& dexter, const fs::path& root) {
    const auto env =
        bench::environment_with({"DEXTER_STORE=", "DEXTER_SESSIONS_DIR=" + root.string()});
    const auto t0 = clock_type::now();
    if (bench::output_of({dexter, "-c", "-p", "and the next quarter?"}, env).second != 0)
        throw std::runtime_error("dexter -c -p failed");
    return seconds_of(clock_type::now() - t0);
}

void figure_8(const fs::path& dir, const sizes& z, const std::string& dexter) {
    if (dexter.empty() || !fs::exists(dexter)) {
        table.push_back(
            {"8", "dexter -c -p wall time", "not run (no --dexter PATH)", "", "", "≤ 1.50×", "-"});
        return;
    }
    // Interleaved, so that both see the same machine.
    const fs::path short_root = dir / ("f4-" + std::to_string(z.short_session));
    const fs::path long_root = dir / ("f4-" + std::to_string(z.long_session));
    run_dexter(dexter, short_root); // warm the page cache and the index
    run_dexter(dexter, long_root);
    std::vector<double> short_t, long_t;
    for (std::size_t i = 0; i < z.repeats * 2; ++i) {
        short_t.push_back(run_dexter(dexter, short_root));
        long_t.push_back(run_dexter(dexter, long_root));
    }
    const std::vector<double> per_length{median(std::move(short_t)), median(std::move(long_t))};
    add("8",
        "dexter -c -p, whole process: " + std::to_string(z.long_session) + " vs " +
            std::to_string(z.short_session) + " exchanges",
        per_length[1], per_length[0], 1.5);
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--child")
        return child_main(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "--probe")
        return probe_main(argc, argv);
    sizes z = full_sizes;
    bench::read_sizes rz = bench::full_read_sizes;
    bench::change_sizes cz = bench::full_change_sizes;
    fs::path dir;
#ifdef DEXTER_BENCH_DEXTER
    std::string dexter = DEXTER_BENCH_DEXTER;
#else
    std::string dexter;
#endif
    std::string only; // figures ("6", "1-2,5"), in the table's order, or all of them
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--size" && i + 1 < argc) {
            const bool tiny = std::string(argv[++i]) == "tiny";
            z = tiny ? tiny_sizes : full_sizes;
            rz = tiny ? bench::tiny_read_sizes : bench::full_read_sizes;
            cz = tiny ? bench::tiny_change_sizes : bench::full_change_sizes;
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else if (a == "--dexter" && i + 1 < argc) {
            dexter = argv[++i];
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else {
            std::cerr << "usage: bench [--size tiny|full] [--dir DIR] [--dexter PATH] "
                         "[--only 1-2|3|4-7|5|6|8|9|10|11|12|13|14|15|16|17[,...]]\n";
            return 2;
        }
    }
    try {
        std::cerr << bench::check_workload() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "bench: " << e.what() << "\n";
        return 1;
    }
    const bool own_dir = dir.empty();
    if (own_dir) {
        std::string pattern = (fs::temp_directory_path() / "dexter-bench-XXXXXX").string();
        if (!::mkdtemp(pattern.data()))
            return 1;
        dir = pattern;
    } else {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    const std::string self = fs::canonical("/proc/self/exe").string();
    try {
        const auto run = [&](const char* name, auto&& figure) {
            if (!only.empty() &&
                ("," + only + ",").find("," + std::string(name) + ",") == std::string::npos)
                return;
            std::cerr << "figure " << name << "\n";
            figure();
        };
        run("1-2", [&] { figures_1_2(dir, z); });
        run("3", [&] { figure_3(dir, z); });
        run("4-7", [&] { figures_4_7(dir, z, self); });
        run("5", [&] { figure_5(dir, z, self); });
        run("6", [&] { figure_6(dir, z); });
        run("8", [&] { figure_8(dir, z, dexter); });
        run("9", [&] { bench::figure_9(dir, rz); });
        run("10", [&] { bench::figure_10(dir, rz); });
        run("11", [&] { bench::figure_11(dir, rz, dexter); });
        run("12", [&] { bench::figure_12(dir, cz); });
        run("13", [&] { bench::figure_13(dir, cz); });
        run("14", [&] { figure_14(dir, z, self); });
        run("15", [&] { figure_15(dir, z, self); });
        run("16", [&] { figure_16(dir, z, self, dexter); });
        run("17", [&] { bench::figure_17(dir, cz); });
    } catch (const std::exception& e) {
        std::cerr << "bench: " << e.what() << "\n";
        if (own_dir)
            fs::remove_all(dir);
        return 1;
    }
    if (own_dir)
        fs::remove_all(dir);
    std::stable_sort(table.begin(), table.end(), bench::figure_before);
    std::cout << "| # | figure | ours | floor | ratio | target | | SQLite | ours ÷ SQLite |\n"
                 "|---|---|---|---|---|---|---|---|---|\n";
    bool all_met = true;
    for (const auto& r : table) {
        std::cout << "| " << r.figure << " | " << r.what << " | " << r.ours << " | " << r.floor
                  << " | " << r.ratio << " | " << r.target << " | " << r.verdict << " | "
                  << r.sqlite << " | " << r.vs_sqlite << " |\n";
        all_met = all_met && r.verdict != "MISSED";
    }
    std::cout << (all_met ? "\nevery target met\n" : "\nsome targets missed\n");
    return 0;
}
