// SPDX-License-Identifier: BSL-1.0
// postgres_store beside jsonl_store, in the same run, on the same machine: save, resume
// and list, and 8 processes saving to 8 sessions at once against one process.
//
//   postgres_bench [--size tiny|full] [--conninfo URI] [--dir DIR] [--processes N]
//
// The connection string defaults to $DEXTER_TEST_PG (scripts/with-postgres.sh sets it):
//   scripts/with-postgres.sh build/bench/postgres_bench
// Prints a Markdown table (docs/PERFORMANCE.md, "PostgreSQL"). Both stores acknowledge a
// save only once it is on disk: fdatasync for the files, a WAL flush at COMMIT
// (synchronous_commit=on) for the server.
#include <dexter/sessions/postgres_store.hpp>

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "workload.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
using clock_type = std::chrono::steady_clock;

namespace {

struct sizes {
    std::size_t saves, resume_exchanges, list_sessions, parallel_saves, repeats;
};
constexpr sizes full_sizes{300, 1000, 1000, 300, 15};
constexpr sizes tiny_sizes{10, 30, 20, 10, 3};

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

std::string fmt_time(double s) {
    char b[64];
    if (s < 1e-3)
        std::snprintf(b, sizeof b, "%.0f µs", s * 1e6);
    else if (s < 1)
        std::snprintf(b, sizeof b, "%.2f ms", s * 1e3);
    else
        std::snprintf(b, sizeof b, "%.2f s", s);
    return b;
}

std::string fmt_rate(double per_second) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f saves/s", per_second);
    return b;
}

std::string fmt_ratio(double r) {
    char b[64];
    std::snprintf(b, sizeof b, "%.2f×", r);
    return b;
}

/// A unique channel per run, so that runs against one database do not meet.
std::string run_channel() {
    char b[64];
    std::snprintf(b, sizeof b, "bench%08x", static_cast<unsigned>(std::random_device{}()));
    return b;
}

/// The two stores under test, made fresh for each figure.
struct stores {
    std::string conninfo;
    fs::path dir;
    std::string channel = run_channel();

    ds::jsonl_store file() const { return ds::jsonl_store{dir}; }
    ds::postgres_store postgres() const { return ds::postgres_store{conninfo, channel}; }
};

/// Mean time of one save, over `n` saves into one new session.
template <class Store>
double time_saves(Store store, std::size_t n) {
    ds::session_manager<Store> m{std::move(store)};
    m.start_new();
    m.save_exchange(bench::make_exchange(1)); // creates the session: not timed
    const auto start = clock_type::now();
    for (std::size_t i = 2; i <= n + 1; ++i)
        m.save_exchange(bench::make_exchange(i));
    return seconds_since(start) / static_cast<double>(n);
}

/// A session of `n` exchanges; returns its id.
template <class Store>
ds::session_id fill_session(Store store, std::size_t n) {
    ds::session_manager<Store> m{std::move(store)};
    m.start_new();
    for (std::size_t i = 1; i <= n; ++i)
        m.save_exchange(bench::make_exchange(i));
    return m.current()->id;
}

/// Median time of resume() (open, last 10 exchanges, replay) plus close.
template <class Store, class Make>
double time_resume(Make make, const ds::session_id& id, std::size_t repeats) {
    ds::session_manager<Store> m{make()};
    std::vector<double> t;
    for (std::size_t i = 0; i < repeats; ++i) {
        const auto start = clock_type::now();
        m.resume(id);
        m.close();
        t.push_back(seconds_since(start));
    }
    return median(std::move(t));
}

template <class Store, class Make>
double time_list(Make make, std::size_t sessions, std::size_t repeats) {
    for (std::size_t i = 0; i < sessions; ++i) {
        ds::session_manager<Store> m{make()};
        m.start_new();
        m.save_exchange("question " + std::to_string(i), "answer");
    }
    ds::session_manager<Store> m{make()};
    std::vector<double> t;
    for (std::size_t i = 0; i < repeats; ++i) {
        const auto start = clock_type::now();
        const auto all = m.list_sessions();
        t.push_back(seconds_since(start));
        if (all.size() < sessions)
            throw std::runtime_error("list lost sessions");
    }
    return median(std::move(t));
}

/// In a child: connects, creates its session, says it is ready, waits for the go (EOF
/// on the barrier), then saves `saves` exchanges.
template <class Store>
void save_in_child(Store store, std::size_t saves, int barrier_read, int ready_write) {
    ds::session_manager<Store> m{std::move(store)};
    m.start_new();
    m.save_exchange(bench::make_exchange(1));
    const char c = 'r';
    if (::write(ready_write, &c, 1) != 1)
        throw std::runtime_error("ready pipe");
    char go;
    [[maybe_unused]] auto n = ::read(barrier_read, &go, 1); // EOF: go
    for (std::size_t i = 2; i <= saves + 1; ++i)
        m.save_exchange(bench::make_exchange(i));
}

} // namespace

int main(int argc, char** argv) {
    sizes sz = full_sizes;
    stores st;
    const char* env = std::getenv("DEXTER_TEST_PG");
    st.conninfo = env ? env : "";
    std::size_t processes = 8;
    fs::path dir;
    bool own_dir = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--size") {
            const auto v = value();
            sz = v == "tiny" ? tiny_sizes : full_sizes;
        } else if (a == "--conninfo") {
            st.conninfo = value();
        } else if (a == "--dir") {
            dir = value();
        } else if (a == "--processes") {
            processes = std::stoul(value());
        } else {
            std::cerr << "usage: postgres_bench [--size tiny|full] [--conninfo URI] [--dir DIR] "
                         "[--processes N]\n";
            return 2;
        }
    }
    if (st.conninfo.empty()) {
        std::cerr << "postgres_bench: no server: set DEXTER_TEST_PG or pass --conninfo (or run "
                     "it through scripts/with-postgres.sh)\n";
        return 2;
    }
    if (dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dexter-pgbench-XXXXXX";
        if (!::mkdtemp(pattern.data()))
            throw std::runtime_error("mkdtemp");
        dir = pattern;
        own_dir = true;
    }
    const fs::path root = dir / "store";
    st.dir = root;
    fs::create_directories(root);

    try {
        std::cout << "| figure | file store | PostgreSQL | PostgreSQL / file |\n"
                  << "|---|---|---|---|\n";
        auto line = [](const std::string& what, const std::string& file, const std::string& pg,
                       const std::string& ratio) {
            std::cout << "| " << what << " | " << file << " | " << pg << " | " << ratio << " |\n"
                      << std::flush;
        };

        // 1. One save (acknowledged: on disk), one process.
        const double save_file = time_saves(st.file(), sz.saves);
        const double save_pg = time_saves(st.postgres(), sz.saves);
        line("save one exchange (mean of " + std::to_string(sz.saves) + ")", fmt_time(save_file),
             fmt_time(save_pg), fmt_ratio(save_pg / save_file));

        // 2. Resume a long session: open, last 10 exchanges, replay.
        const auto id_file = fill_session(st.file(), sz.resume_exchanges);
        const auto id_pg = fill_session(st.postgres(), sz.resume_exchanges);
        const double resume_file =
            time_resume<ds::jsonl_store>([&] { return st.file(); }, id_file, sz.repeats);
        const double resume_pg =
            time_resume<ds::postgres_store>([&] { return st.postgres(); }, id_pg, sz.repeats);
        line("resume a session of " + std::to_string(sz.resume_exchanges) + " exchanges",
             fmt_time(resume_file), fmt_time(resume_pg), fmt_ratio(resume_pg / resume_file));

        // 3. List a store of many sessions (fresh stores, so only these sessions).
        stores many;
        many.conninfo = st.conninfo;
        many.dir = dir / "many";
        fs::create_directories(many.dir);
        const double list_file =
            time_list<ds::jsonl_store>([&] { return many.file(); }, sz.list_sessions, sz.repeats);
        const double list_pg = time_list<ds::postgres_store>([&] { return many.postgres(); },
                                                             sz.list_sessions, sz.repeats);
        line("list " + std::to_string(sz.list_sessions) + " sessions", fmt_time(list_file),
             fmt_time(list_pg), fmt_ratio(list_pg / list_file));

        // 4. Throughput: 1 process, then `processes` processes on as many sessions.
        // Each process connects and creates its session first; the clock runs from the
        // moment all are ready to the moment the last one is done.
        auto throughput = [&](auto make, std::size_t n) {
            int barrier[2], ready[2];
            if (::pipe(barrier) != 0 || ::pipe(ready) != 0)
                throw std::runtime_error("pipe");
            std::vector<pid_t> children;
            for (std::size_t p = 0; p < n; ++p) {
                const pid_t pid = ::fork();
                if (pid < 0)
                    throw std::runtime_error("fork");
                if (pid == 0) {
                    ::close(barrier[1]);
                    ::close(ready[0]);
                    int code = 0;
                    try {
                        save_in_child(make(), sz.parallel_saves, barrier[0], ready[1]);
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "saving process %zu: %s\n", p, e.what());
                        code = 1;
                    }
                    ::_exit(code);
                }
                children.push_back(pid);
            }
            ::close(barrier[0]);
            ::close(ready[1]);
            for (std::size_t p = 0; p < n; ++p) {
                char c;
                if (::read(ready[0], &c, 1) != 1)
                    throw std::runtime_error("a saving process died before the start");
            }
            const auto start = clock_type::now();
            ::close(barrier[1]);
            bool ok = true;
            for (pid_t pid : children) {
                int status = 0;
                ::waitpid(pid, &status, 0);
                ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
            }
            const double wall = seconds_since(start);
            ::close(ready[0]);
            if (!ok)
                throw std::runtime_error("a saving process failed");
            return static_cast<double>(n * sz.parallel_saves) / wall;
        };
        auto make_file = [&] { return st.file(); };
        auto make_pg = [&] { return st.postgres(); };
        const double one_file = throughput(make_file, 1), one_pg = throughput(make_pg, 1);
        line("1 process saving (" + std::to_string(sz.parallel_saves) + " saves)",
             fmt_rate(one_file), fmt_rate(one_pg), fmt_ratio(one_pg / one_file));
        const double many_file = throughput(make_file, processes),
                     many_pg = throughput(make_pg, processes);
        line(std::to_string(processes) + " processes, " + std::to_string(processes) +
                 " sessions (" + std::to_string(sz.parallel_saves) + " saves each)",
             fmt_rate(many_file), fmt_rate(many_pg), fmt_ratio(many_pg / many_file));
        line(std::to_string(processes) + " processes against 1 (throughput)",
             fmt_ratio(many_file / one_file), fmt_ratio(many_pg / one_pg), "");
    } catch (const std::exception& e) {
        std::cerr << "postgres_bench: " << e.what() << '\n';
        if (own_dir)
            fs::remove_all(dir);
        return 1;
    }
    if (own_dir)
        fs::remove_all(dir);
    return 0;
}
