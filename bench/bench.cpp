// SPDX-License-Identifier: BSL-1.0
// The benchmark table of docs/PERFORMANCE.md: every hot path beside its floor, the same
// bytes through the machine's own primitives, measured in the same run.
//
//   bench [--size tiny|full] [--dir DIR] [--dexter PATH] [--only FIGURE]
//
// Prints a Markdown table. Ratios, not absolute times, are the result: absolute times
// move with the machine and its load; ratios measured side by side in one run do not.
#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include "change_figures.hpp"
#include "process.hpp"
#include "read_figures.hpp"
#include "report.hpp"
#include "workload.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <fcntl.h>
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

namespace {

struct sizes {
    std::size_t saves_synced, saves_unsynced, many_sessions, long_session, short_session,
        load_exchanges, repeats;
};
constexpr sizes full_sizes{200, 3000, 10000, 100000, 100, 10000, 15};
constexpr sizes tiny_sizes{10, 50, 50, 500, 20, 200, 3};

// --- peak memory, measured in a child process -----------------------------------------

// Runs `self --child <args>` and returns its "baseline_kb peak_kb" line.
std::pair<long, long> child_memory(const std::string& self, std::vector<std::string> args) {
    args.insert(args.begin(), {self, "--child"});
    const auto [out, status] = bench::output_of(std::move(args), bench::environment_with({}));
    long base = -1, peak = -1;
    if (status == 0)
        std::istringstream(out) >> base >> peak;
    return {base, peak};
}

int child_main(int argc, char** argv) {
    // --child resume|load|floor-load <root> <id>
    if (argc < 5)
        return 2;
    const std::string mode = argv[2];
    const fs::path root = argv[3];
    const std::string id = argv[4];
    ds::jsonl_store warmup{root}; // page in the code and the allocator, not measured
    warmup.find(id);
    reset_peak();
    const long base = status_kb("VmRSS:");
    std::size_t sink = 0;
    if (mode == "resume") {
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{root}};
        m.resume(id);
        sink = m.history().recent_turns(10).size();
    } else if (mode == "load") {
        ds::jsonl_store s{root};
        sink = s.load(id, ds::all_exchanges).exchanges.size();
    }
    const long peak = status_kb("VmHWM:");
    std::printf("%ld %ld %zu\n", base, peak, sink);
    return 0;
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

void figures_1_2(const fs::path& dir, const sizes& z) {
    for (const bool synced : {true, false}) {
        const fs::path root = dir / (synced ? "f1" : "f2");
        const auto sync = synced ? ds::durability::full : ds::durability::process_crash;
        ds::session_manager<ds::jsonl_store> m{ds::jsonl_store{root, "cli", {sync}}};
        m.start_new();
        m.save_exchange(bench::make_exchange(1));
        const int floor_fd =
            ::open((root / "floor.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        const std::size_t n = synced ? z.saves_synced : z.saves_unsynced;
        std::vector<ds::exchange> drafts;
        for (std::size_t i = 0; i < n; ++i)
            drafts.push_back(bench::make_exchange(i + 2));
        std::vector<double> ours, floor;
        // Interleaved in blocks, so that both see the same state of the disk.
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
        }
        ::close(floor_fd);
        if (synced)
            add("1", "save_exchange, durability on (median)", median(ours), median(floor), 1.2,
                "s");
        else
            add("2", "save_exchange, durability off (median)", median(ours), median(floor), 2.0,
                "s");
    }
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

void figure_5(const fs::path& dir, const sizes& z, const std::string& self) {
    const fs::path root = dir / "f5";
    bench::make_store(root, 1, z.load_exchanges);
    const fs::path file = root / "cli" / bench::bench_id(0) / "history.jsonl";
    const double bytes = static_cast<double>(fs::file_size(file));
    ds::jsonl_store store{root};
    const double ours = time_median(z.repeats, [&] {
        if (store.load(bench::bench_id(0), ds::all_exchanges).exchanges.size() != z.load_exchanges)
            throw std::runtime_error("bad load");
    });
    // Floor: fixed-size chunks, every line parsed by one reused parser into an arena.
    const double floor = time_median(z.repeats, [&] {
        const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
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
        if (lines != z.load_exchanges + 1)
            throw std::runtime_error("bad floor");
    });
    add("5",
        "full load of " + std::to_string(z.load_exchanges) + " exchanges (" +
            fmt(bytes / ours / 1e6, "MB/s") + ")",
        ours, floor, 1.3);
    const auto mem = child_memory(self, {"load", root.string(), bench::bench_id(0)});
    const double peak_ratio = (mem.second - mem.first) * 1024.0 / bytes;
    char r[32];
    std::snprintf(r, sizeof r, "%.2f×", peak_ratio);
    table.push_back({"5m", "peak memory of the full load, above baseline",
                     fmt((mem.second - mem.first) / 1024.0, "MiB"),
                     fmt(bytes / 1048576.0, "MiB") + " file", r, "≤ 1.30×",
                     peak_ratio <= 1.3 ? "met" : "MISSED"});
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
            " sessions, index warm, one fstatat each (cold, index rebuilt: " + fmt(cold, "s") + ")",
        ours, floor, 2.0);
}

double run_dexter(const std::string& dexter, const fs::path& root) {
    const auto env = bench::environment_with({"DEXTER_SESSIONS_DIR=" + root.string()});
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
    sizes z = full_sizes;
    bench::read_sizes rz = bench::full_read_sizes;
    bench::change_sizes cz = bench::full_change_sizes;
    fs::path dir;
    std::string dexter;
    std::string only; // one figure ("6", "1-2", "4-7", "10"), or all of them
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
                         "[--only 1-2|3|4-7|5|6|8|9|10|11|12|13]\n";
            return 2;
        }
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
            if (!only.empty() && only != name)
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
    } catch (const std::exception& e) {
        std::cerr << "bench: " << e.what() << "\n";
        if (own_dir)
            fs::remove_all(dir);
        return 1;
    }
    if (own_dir)
        fs::remove_all(dir);
    std::stable_sort(table.begin(), table.end(), bench::figure_before);
    std::cout << "| # | figure | ours | floor | ratio | target | |\n"
                 "|---|---|---|---|---|---|---|\n";
    bool all_met = true;
    for (const auto& r : table) {
        std::cout << "| " << r.figure << " | " << r.what << " | " << r.ours << " | " << r.floor
                  << " | " << r.ratio << " | " << r.target << " | " << r.verdict << " |\n";
        all_met = all_met && r.verdict != "MISSED";
    }
    std::cout << (all_met ? "\nevery target met\n" : "\nsome targets missed\n");
    return 0;
}
