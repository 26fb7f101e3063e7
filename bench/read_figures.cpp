// SPDX-License-Identifier: BSL-1.0
// The read side's figures of docs/PERFORMANCE.md: export, search and dexter --show, each
// beside its floor (a full load, grep, the whole output) measured in the same run, and
// the peak memory of each measured in a forked child.
#include "read_figures.hpp"

#include <dexter/sessions.hpp>
#include <dexter/sessions/export.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include "process.hpp"
#include "report.hpp"
#include "sqlite_peer.hpp"
#include "workload.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {
namespace {

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
using manager = ds::session_manager<ds::jsonl_store>;

// --- runs in a forked child: time and peak memory --------------------------------------

// What one run measured in a child.
struct child_run {
    double seconds = 0;    // the work's wall time
    double base_mib = 0;   // the child's resident size just before the work
    double extra_mib = 0;  // its peak during the work, above base_mib
    std::size_t count = 0; // what the work returned (exchanges, hits), to check it
};

// Runs `work` (returning a count) in a forked child and returns how long it took and how
// far the child's peak resident size rose above the size it had just before:
// getrusage's ru_maxrss after the work minus ru_maxrss before it, sent back through a
// pipe. The peak inherited from this process is reset first and free heap handed back,
// so that neither hides what the work allocates. Each run starts from the same state of
// this process: what one run allocates does not serve the next.
template <class F>
child_run run_in_child(F&& work) {
    std::cout.flush();
    std::cerr.flush();
    int p[2];
    if (::pipe(p) < 0)
        throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::close(p[0]);
        int code = 0;
        try {
            ::malloc_trim(0);
            reset_peak();
            rusage before{}, after{};
            ::getrusage(RUSAGE_SELF, &before);
            const auto t0 = clock_type::now();
            const std::size_t count = work();
            const double seconds = seconds_of(clock_type::now() - t0);
            ::getrusage(RUSAGE_SELF, &after);
            char line[128];
            const int n = std::snprintf(line, sizeof line, "%.9f %ld %ld %zu\n", seconds,
                                        before.ru_maxrss, after.ru_maxrss, count);
            code = ::write(p[1], line, static_cast<std::size_t>(n)) == n ? 0 : 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench: in the measuring child: %s\n", e.what());
            code = 1;
        }
        ::_exit(code); // no destructors, no stdio flush: the parent owns those
    }
    ::close(p[1]);
    std::string out;
    char buf[128];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    child_run r;
    long base = -1, peak = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        std::sscanf(out.c_str(), "%lf %ld %ld %zu", &r.seconds, &base, &peak, &r.count) != 4)
        throw std::runtime_error("the measuring child failed");
    r.base_mib = base / 1024.0;
    r.extra_mib = (peak - base) / 1024.0;
    return r;
}

// The runs of one side of a figure: the median time, the highest peak.
struct runs {
    std::vector<child_run> all;

    void add(const child_run& r) { all.push_back(r); }
    double seconds() const {
        std::vector<double> t;
        for (const auto& r : all)
            t.push_back(r.seconds);
        return median(std::move(t));
    }
    child_run highest_peak() const {
        child_run top;
        for (const auto& r : all)
            if (r.extra_mib >= top.extra_mib)
                top = r;
        return top;
    }
};

// A row of peak memory above the baseline, met at 16 MiB; the floor column shows
// `floor_label`, or the baseline when it is empty.
void add_memory_row(std::string figure, std::string what, const child_run& m,
                    std::string floor_label) {
    if (floor_label.empty())
        floor_label = fmt(m.base_mib, "MiB") + " baseline";
    table.push_back({std::move(figure), std::move(what), fmt(m.extra_mib, "MiB"),
                     std::move(floor_label), "", "≤ 16 MiB", m.extra_mib <= 16 ? "met" : "MISSED"});
    std::cerr << "  " << table.back().figure << ": " << table.back().ours << " above "
              << fmt(m.base_mib, "MiB") << "\n";
}

// --- other processes -------------------------------------------------------------------

// --- the stores ------------------------------------------------------------------------

// The store of figures 9 to 11: one session of z.long_session exchanges, one in a
// hundred carrying rare_word; written on first use.
fs::path long_store(const fs::path& dir, const read_sizes& z) {
    const fs::path root = dir / "f9";
    if (!fs::exists(root / "cli" / bench_id(0) / "history.jsonl")) {
        make_store(root, 1, z.long_session, true);
        ds::jsonl_store{root}.list(); // the index is built
    }
    return root;
}

std::size_t expected_hits(std::size_t exchanges) {
    std::size_t n = 0;
    for (std::size_t place = 0; place < exchanges; ++place)
        n += carries_rare_word(place);
    return n;
}

} // namespace

void figure_9(const fs::path& dir, const read_sizes& z) {
    const fs::path root = long_store(dir, z);
    const std::string id = bench_id(0);
    const double bytes = static_cast<double>(fs::file_size(root / "cli" / id / "history.jsonl"));
    manager m{ds::jsonl_store{root}};
    const auto meta = m.find_session(id);
    if (!meta || meta->exchange_count != z.long_session)
        throw std::runtime_error("figure 9: the long session is not there");
    ds::jsonl_store store{root};
    const auto run_export = [&](ds::export_format f) {
        return [&, f] {
            std::ofstream null("/dev/null", std::ios::binary);
            return static_cast<std::size_t>(ds::export_session(m, *meta, f, null).exchanges);
        };
    };
    const auto run_load = [&] { return store.load(id, ds::all_exchanges).exchanges.size(); };
    // Interleaved, so that every side sees the same machine.
    runs jsonl, markdown, floor;
    for (std::size_t i = 0; i < z.repeats; ++i) {
        jsonl.add(run_in_child(run_export(ds::export_format::jsonl)));
        markdown.add(run_in_child(run_export(ds::export_format::markdown)));
        floor.add(run_in_child(run_load));
    }
    for (const auto* side : {&jsonl, &markdown, &floor})
        for (const auto& r : side->all)
            if (r.count != z.long_session)
                throw std::runtime_error("figure 9: " + std::to_string(r.count) + " exchanges of " +
                                         std::to_string(z.long_session));
    const std::string n = std::to_string(z.long_session);
    add("9a",
        "export_session of " + n + " exchanges as jsonl to /dev/null (" +
            fmt(bytes / jsonl.seconds() / 1e6, "MB/s") + ") vs load()",
        jsonl.seconds(), floor.seconds(), 1.3);
    add("9b", "export_session of " + n + " exchanges as markdown to /dev/null vs load()",
        markdown.seconds(), floor.seconds(), 1.3);
    const std::string floor_label = "load(): " + fmt(floor.highest_peak().extra_mib, "MiB") + " (" +
                                    fmt(bytes / 1048576.0, "MiB") + " file)";
    add_memory_row("9ma", "peak memory of the jsonl export (9a), above baseline",
                   jsonl.highest_peak(), floor_label);
    add_memory_row("9mb", "peak memory of the markdown export (9b), above baseline",
                   markdown.highest_peak(), floor_label);
}

void figure_10(const fs::path& dir, const read_sizes& z) {
    const std::string word = "zyzzyva"; // rare_word, in another case
    const fs::path many = dir / "f10";
    make_store(many, z.many_sessions, 1, true);
    ds::jsonl_store{many}.list(); // the index is built
    const fs::path one = long_store(dir, z);

    struct side {
        std::string name, figure;
        fs::path root;
        std::vector<std::string> grep;
        std::size_t expected;
        fs::path db; // SQLite's database of the same sessions
    };
    const std::vector<std::string> grep_args{"grep", "-c", "-i", "-F", word};
    std::vector<side> sides{{std::to_string(z.many_sessions) + " sessions of 1 exchange",
                             "10a",
                             many,
                             grep_args,
                             expected_hits(z.many_sessions),
                             {}},
                            {"one session of " + std::to_string(z.long_session) + " exchanges",
                             "10b",
                             one,
                             grep_args,
                             expected_hits(z.long_session),
                             {}}};
    sides[0].grep.insert(sides[0].grep.begin() + 1, {"-r", "--include=history.jsonl"});
    sides[0].grep.push_back((many / "cli").string());
    sides[1].grep.push_back((one / "cli" / bench_id(0) / "history.jsonl").string());
    if (sqlite::built()) {
        sides[0].db = dir / "sqlite-f10.db";
        sqlite::make_db(sides[0].db, z.many_sessions, 1, true);
        sides[1].db = dir / "sqlite-f9.db";
        sqlite::make_db(sides[1].db, 1, z.long_session, true);
    }
    const auto env = environment_with({"LC_ALL=C"});

    for (const auto& s : sides) {
        manager m{ds::jsonl_store{s.root}};
        const auto run_search = [&] {
            const auto r = m.search({word, 1000000});
            if (!r.diagnostics.empty())
                throw std::runtime_error("figure 10: the search met damaged records");
            return r.hits.size();
        };
        // grep -c prints a count per file ("path:count" with -r); the floor sums them.
        std::size_t grep_count = 0;
        const auto run_grep = [&] {
            const auto [out, status] = output_of(s.grep, env);
            if (status != 0 && status != 1)
                throw std::runtime_error("figure 10: grep failed");
            grep_count = 0;
            for (std::size_t from = 0; from < out.size();) {
                const auto nl = out.find('\n', from);
                const auto line = std::string_view(out).substr(from, nl - from);
                grep_count += std::strtoull(std::string(line.substr(line.rfind(':') + 1)).c_str(),
                                            nullptr, 10);
                from = nl == std::string::npos ? out.size() : nl + 1;
            }
        };
        const auto run_sqlite = [&] { return sqlite::search(s.db, word); };
        run_grep(); // warm
        runs ours, theirs;
        std::vector<double> floor;
        for (std::size_t i = 0; i < z.repeats; ++i) {
            ours.add(run_in_child(run_search));
            floor.push_back(time_once(run_grep));
            if (!s.db.empty())
                theirs.add(run_in_child(run_sqlite));
        }
        for (const auto& r : theirs.all)
            if (r.count != s.expected)
                std::cerr << "  " << s.figure << ": SQLite found " << r.count << " of "
                          << s.expected << "\n";
        const std::size_t hits = ours.all.front().count;
        for (const auto& r : ours.all)
            if (r.count != hits)
                throw std::runtime_error("figure 10: the searches found different counts");
        if (hits != s.expected || grep_count != s.expected)
            std::cerr << "  " << s.figure << ": hits " << hits << ", grep " << grep_count
                      << ", generated " << s.expected << ": they differ\n";
        add(s.figure,
            "search for a word in 1 % of exchanges, " + s.name + " (hits " + std::to_string(hits) +
                ", grep " + std::to_string(grep_count) + ") vs grep -c",
            ours.seconds(), median(floor), 2.0);
        s.db.empty() ? without_sqlite(sqlite::not_built)
                     : with_sqlite(ours.seconds(), theirs.seconds());
        add_memory_row(std::string("10m") + s.figure.back(),
                       "peak memory of the search (" + s.figure + "), above baseline",
                       ours.highest_peak(), "");
        s.db.empty()
            ? without_sqlite(sqlite::not_built)
            : with_sqlite(ours.highest_peak().extra_mib, theirs.highest_peak().extra_mib, "MiB");
    }
}

void figure_11(const fs::path& dir, const read_sizes& z, const std::string& dexter) {
    const std::string what =
        "dexter --show of " + std::to_string(z.long_session) + " exchanges: first byte";
    if (dexter.empty() || !fs::exists(dexter)) {
        table.push_back({"11", what, "not run (no --dexter PATH)", "", "", "≤ 50 ms", "-"});
        return;
    }
    const auto help = output_of({dexter, "--help"}, environment_with({})).first;
    if (help.find("--show") == std::string::npos) {
        table.push_back({"11", what, "skipped: dexter has no --show", "", "", "≤ 50 ms", "-"});
        std::cerr << "  11: skipped: dexter has no --show\n";
        return;
    }
    const fs::path root = long_store(dir, z);
    const auto env = environment_with({"DEXTER_STORE=", "DEXTER_SESSIONS_DIR=" + root.string()});
    std::size_t bytes = 0;
    const auto show = [&](double& first, double& all) {
        const auto t0 = clock_type::now();
        spawned child({dexter, "--show", bench_id(0)}, env);
        static char buf[65536];
        std::size_t n = child.read(buf, sizeof buf);
        first = seconds_of(clock_type::now() - t0);
        bytes = n;
        while ((n = child.read(buf, sizeof buf)) > 0)
            bytes += n;
        all = seconds_of(clock_type::now() - t0);
        if (child.wait() != 0 || bytes == 0)
            throw std::runtime_error("figure 11: dexter --show failed");
    };
    double first = 0, all = 0;
    show(first, all); // warm
    std::vector<double> firsts, alls;
    for (std::size_t i = 0; i < z.repeats; ++i) {
        show(first, all);
        firsts.push_back(first);
        alls.push_back(all);
    }
    const double f = median(firsts);
    table.push_back({"11", what, fmt(f, "s"),
                     "whole output: " + fmt(median(alls), "s") + " (" +
                         fmt(static_cast<double>(bytes) / 1048576.0, "MiB") + ")",
                     "", "≤ 50 ms", f <= 0.05 ? "met" : "MISSED"});
    std::cerr << "  11: first byte " << table.back().ours << ", " << table.back().floor << "\n";
}

} // namespace bench
