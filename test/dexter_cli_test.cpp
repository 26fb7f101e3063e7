// SPDX-License-Identifier: BSL-1.0
// The dexter example CLI end to end: the real binary, driven through pipes and a
// pseudo-terminal, its store inspected with the library.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE dexter_cli
#include <boost/test/unit_test.hpp>

#include "support/child_checks.hpp"
#include "support/dexter_runs.hpp"
#include "support/environment.hpp"
#include "support/pty.hpp"
#include "support/temp_dir.hpp"

#include <dexter/sessions/export.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/version.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef DEXTER_BINARY
#error "DEXTER_BINARY must name the dexter executable (the build passes it)"
#endif

extern char** environ;

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
namespace json = boost::json;
using dexter::sessions::test::describe_status;
using dexter::sessions::test::lines_of;
using dexter::sessions::test::offline;
using dexter::sessions::test::read_text;
using dexter::sessions::test::shell_quote;
using dexter::sessions::test::temp_dir;
using dexter::sessions::test::wait_for_file;

namespace {

// Only against hangs: no test expects anything to be fast.
constexpr auto hang_guard = std::chrono::seconds(60);

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Waits for `pid` to end (retrying on EINTR), sets it to -1, and returns its wait status.
int reap(pid_t& pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            throw_errno("waitpid");
    pid = -1;
    return status;
}

// True when `text` shows `needle` at or after `mark`; then moves `mark` past it.
bool consume(const std::string& text, std::size_t& mark, std::string_view needle) {
    const auto pos = text.find(needle, mark);
    if (pos == std::string::npos)
        return false;
    mark = pos + needle.size();
    return true;
}

// --- environment and arguments ---------------------------------------------------------

using env_changes = std::map<std::string, std::optional<std::string>>; // nullopt: unset

class c_strings {
public:
    explicit c_strings(std::vector<std::string> strings) : strings_(std::move(strings)) {
        for (auto& s : strings_)
            pointers_.push_back(s.data());
        pointers_.push_back(nullptr);
    }
    char** get() { return pointers_.data(); }

private:
    std::vector<std::string> strings_;
    std::vector<char*> pointers_;
};

// This process's environment without anything that could change dexter's behaviour,
// plus TZ=UTC, then `changes`.
std::vector<std::string> child_environment(const env_changes& changes) {
    std::map<std::string, std::string> env;
    for (auto& [name, value] : ds::test::current_environment())
        if (!name.starts_with("DEXTER_") && name != "COLUMNS" && name != "LINES")
            env[name] = std::move(value);
    env["TZ"] = "UTC";
    for (const auto& [name, value] : changes)
        if (value)
            env[name] = *value;
        else
            env.erase(name);
    std::vector<std::string> out;
    for (const auto& [name, value] : env)
        out.push_back(name + "=" + value);
    return out;
}

std::vector<std::string> dexter_argv(const std::vector<std::string>& args) {
    std::vector<std::string> argv{DEXTER_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// --- dexter through pipes ----------------------------------------------------------------

// A running dexter with its standard input, output and error on pipes.
class dexter_process {
public:
    dexter_process(const std::vector<std::string>& args, const env_changes& env,
                   const fs::path& cwd = {}) {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 ||
            ::pipe2(err, O_CLOEXEC) < 0)
            throw_errno("pipe2");
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_adddup2(&files, in[0], 0);
        posix_spawn_file_actions_adddup2(&files, out[1], 1);
        posix_spawn_file_actions_adddup2(&files, err[1], 2);
        if (!cwd.empty())
            posix_spawn_file_actions_addchdir_np(&files, cwd.c_str());
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE); // this test ignores it; dexter must start as usual
        // A test run in the background of a shell without job control inherits SIGINT
        // and SIGQUIT ignored: dexter starts as it would from a terminal all the same.
        for (const int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP})
            sigaddset(&defaults, sig);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
        c_strings argv(dexter_argv(args)), envp(child_environment(env));
        const int rc = ::posix_spawn(&pid_, DEXTER_BINARY, &files, &attr, argv.get(), envp.get());
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&files);
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in_ = in[1];
        out_ = out[0];
        err_ = err[0];
        if (rc != 0) {
            errno = rc;
            throw_errno("posix_spawn " DEXTER_BINARY);
        }
    }
    dexter_process(const dexter_process&) = delete;
    dexter_process& operator=(const dexter_process&) = delete;
    ~dexter_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        for (int fd : {in_, out_, err_})
            if (fd >= 0)
                ::close(fd);
    }

    pid_t pid() const { return pid_; }

    /// Waits until dexter sleeps in read(2) on its standard input (what /proc/PID/stat
    /// and /proc/PID/syscall say): everything written so far is read, and it waits for
    /// more. A fixed delay instead is too short on a loaded machine.
    void wait_until_blocked_reading_input() const {
        const std::string proc = "/proc/" + std::to_string(pid_);
        const auto deadline = std::chrono::steady_clock::now() + hang_guard;
        for (;;) {
            std::string stat, call;
            std::getline(std::ifstream(proc + "/stat"), stat);
            std::getline(std::ifstream(proc + "/syscall"), call);
            const auto state = stat.rfind(") ");
            // read(2) is system call 0 on x86-64 and 63 on aarch64; its first argument, 0.
            const bool reading = call.starts_with("0 0x0 ") || call.starts_with("63 0x0 ");
            if (state != std::string::npos && stat.compare(state + 2, 1, "S") == 0 && reading)
                return;
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("dexter never waited on its standard input (" + call +
                                         ")");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }

    const std::string& out() const { return out_text_; }
    const std::string& err() const { return err_text_; }

    /// Writes to dexter's standard input; stops quietly if dexter has closed it (EPIPE),
    /// as it does when it exits without reading.
    void write(std::string_view text) {
        while (!text.empty()) {
            const ssize_t n = ::write(in_, text.data(), text.size());
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EPIPE)
                    return;
                throw_errno("writing to dexter");
            }
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    void close_input() {
        if (in_ >= 0)
            ::close(in_);
        in_ = -1;
    }

    /// Waits until standard output shows `needle` after what earlier expectations
    /// consumed; consumes up to its end.
    void expect_out(std::string_view needle) { expect(out_text_, out_mark_, needle, "output"); }
    void expect_err(std::string_view needle) { expect(err_text_, err_mark_, needle, "error"); }

    /// Closes standard input, reads everything, and returns the wait status.
    int wait() {
        close_input();
        const auto deadline = std::chrono::steady_clock::now() + hang_guard;
        while (pump(deadline)) {
        }
        return reap(pid_);
    }

private:
    void expect(std::string& text, std::size_t& mark, std::string_view needle, const char* which) {
        const auto deadline = std::chrono::steady_clock::now() + hang_guard;
        for (;;) {
            if (consume(text, mark, needle))
                return;
            if (!pump(deadline))
                throw std::runtime_error("dexter's standard " + std::string(which) +
                                         " ended without \"" + std::string(needle) +
                                         "\"\n--- stdout:\n" + out_text_ + "--- stderr:\n" +
                                         err_text_);
        }
    }

    // Reads what is available from stdout and stderr; false once both are at their end.
    bool pump(std::chrono::steady_clock::time_point deadline) {
        if (out_ < 0 && err_ < 0)
            return false;
        pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            throw std::runtime_error("dexter seems to hang\n--- stdout:\n" + out_text_ +
                                     "--- stderr:\n" + err_text_);
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
            throw_errno("poll");
        read_from(fds[0], out_, out_text_);
        read_from(fds[1], err_, err_text_);
        return true;
    }

    static void read_from(const pollfd& p, int& fd, std::string& into) {
        if (p.revents != 0)
            ds::test::read_some(fd, into);
    }

    pid_t pid_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    std::string out_text_, err_text_;
    std::size_t out_mark_ = 0, err_mark_ = 0;
};

struct run_result {
    int status = 0;
    std::string out, err;
};

// --- dexter on a pseudo-terminal ------------------------------------------------------------

// dexter on a terminal of 0 rows and 0 columns, as forkpty makes one by default.
class pty_dexter : public ds::test::pty_session {
public:
    pty_dexter(const std::vector<std::string>& args, const env_changes& env)
        : pty_session(dexter_argv(args), child_environment(env), hang_guard, winsize{}) {}
};

// --- helpers -------------------------------------------------------------------------------

// What the offline agent answers (its documented format).
std::string banner_id(const std::string& out) {
    static const std::regex banner("dexter " DEXTER_SESSIONS_VERSION
                                   " \xE2\x80\x94 (?:new|resumed) session ([0-9a-z]{8})");
    std::smatch m;
    if (!std::regex_search(out, m, banner))
        throw std::runtime_error("no banner in dexter's output:\n" + out);
    return m[1];
}

std::size_t count_of(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
        ++n;
    return n;
}

std::size_t code_points(const std::string& s) {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// True while some process of group `pgid` is still alive (zombies do not count: in a
// container, PID 1 may never reap the orphans it inherits).
bool group_has_live_processes(pid_t pgid) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream in(entry.path() / "stat");
        std::string stat;
        if (!std::getline(in, stat))
            continue;
        const auto close = stat.rfind(')');
        if (close == std::string::npos)
            continue;
        std::istringstream rest(stat.substr(close + 1));
        char state = 0;
        long ppid = 0, pgrp = 0;
        if (!(rest >> state >> ppid >> pgrp))
            continue;
        if (pgrp == pgid && state != 'Z' && state != 'X')
            return true;
    }
    return false;
}

void wait_until_group_gone(pid_t pgid) {
    const auto deadline = std::chrono::steady_clock::now() + hang_guard;
    while (group_has_live_processes(pgid)) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the agent's process group " + std::to_string(pgid) +
                                     " is still alive");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// --- the fixture -----------------------------------------------------------------------------

struct cli {
    temp_dir tmp;
    fs::path sessions = tmp.path() / "sessions";

    env_changes env(env_changes extra = {}) const {
        extra.try_emplace("DEXTER_SESSIONS_DIR", sessions.string());
        return extra;
    }

    run_result run(const std::vector<std::string>& args, const std::string& input = {},
                   const env_changes& extra = {}, const fs::path& cwd = {}) const {
        dexter_process p(args, env(extra), cwd);
        p.write(input);
        run_result r;
        r.status = p.wait();
        r.out = p.out();
        r.err = p.err();
        return r;
    }

    // A test agent: a shell script in the temporary directory; returns the command.
    std::string agent(const std::string& name, const std::string& body) const {
        const fs::path path = tmp.path() / (name + ".sh");
        std::ofstream(path) << "#!/bin/sh\n" << body;
        fs::permissions(path, fs::perms::owner_all);
        return shell_quote(path.string());
    }

    std::string dir() const { return shell_quote(tmp.path().string()); }

    // Makes a session with the offline agent; returns its id.
    std::string make_session(const std::vector<std::string>& questions) const {
        std::string input;
        for (const auto& q : questions)
            input += q + "\n";
        const auto r = run({}, input);
        BOOST_TEST_REQUIRE(describe_status(r.status) == "exit 0", r.err);
        return banner_id(r.out);
    }

    std::vector<ds::session_meta> stored_sessions() const {
        ds::jsonl_store store(sessions);
        auto all = store.list();
        std::erase_if(all, [](const ds::session_meta& m) { return m.exchange_count == 0; });
        return all;
    }

    ds::loaded_session stored(const std::string& id) const {
        ds::jsonl_store store(sessions);
        return store.load(id);
    }

    // Stores session `id` directly: its title and its exchanges (query, answer), the
    // first one at `start`, one minute apart, the third with a model.
    void write_session(const std::string& id, const std::string& title,
                       const std::vector<std::pair<std::string, std::string>>& exchanges,
                       ds::time_point start) const {
        ds::jsonl_store store(sessions);
        ds::session_meta m;
        m.id = id;
        m.title = title;
        m.created_at = m.updated_at = start;
        BOOST_TEST_REQUIRE(store.create(m));
        std::uint64_t seq = 0;
        for (const auto& [query, answer] : exchanges) {
            ds::exchange ex;
            ex.seq = ++seq;
            ex.timestamp = start + std::chrono::minutes(seq - 1);
            ex.query = query;
            ex.answer = answer;
            if (seq == 3)
                ex.model = "test-model";
            store.append(id, ex);
        }
        store.close(id);
    }

    // What the library's export_session() writes for stored session `id`.
    std::string library_export(const std::string& id, ds::export_format format) const {
        ds::session_manager<ds::jsonl_store> manager{ds::jsonl_store(sessions)};
        const auto meta = manager.find_session(id);
        BOOST_TEST_REQUIRE(meta.has_value());
        std::ostringstream out;
        ds::export_session(manager, *meta, format, out);
        return out.str();
    }

    // Runs dexter with standard output on `out_fd` (standard input empty); returns its
    // status and standard error.
    run_result run_with_stdout(const std::vector<std::string>& args, int out_fd) const {
        int err[2];
        if (::pipe2(err, O_CLOEXEC) < 0)
            throw_errno("pipe2");
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&files, out_fd, 1);
        posix_spawn_file_actions_adddup2(&files, err[1], 2);
        c_strings argv(dexter_argv(args)), envp(child_environment(env()));
        pid_t pid = -1;
        const int rc = ::posix_spawn(&pid, DEXTER_BINARY, &files, nullptr, argv.get(), envp.get());
        posix_spawn_file_actions_destroy(&files);
        ::close(err[1]);
        if (rc != 0) {
            ::close(err[0]);
            errno = rc;
            throw_errno("posix_spawn " DEXTER_BINARY);
        }
        run_result r;
        char buf[4096];
        for (;;) {
            const ssize_t n = ::read(err[0], buf, sizeof buf);
            if (n > 0)
                r.err.append(buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR)
                break;
        }
        ::close(err[0]);
        r.status = reap(pid);
        return r;
    }

    // The names in directory `dir`, sorted.
    static std::vector<std::string> names_in(const fs::path& dir) {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir))
            names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

// 2026-03-01 09:00:00 UTC, and `minutes` later.
ds::time_point test_time(int minutes = 0) {
    return ds::time_point(
        std::chrono::sys_days(std::chrono::year(2026) / 3 / 1).time_since_epoch() +
        std::chrono::hours(9) + std::chrono::minutes(minutes));
}

// Text that would take over a terminal if printed raw: OSC 0 (window title) and CSI (red),
// OSC 52 (clipboard), an 8-bit CSI in UTF-8 form, a bare CR, backspaces.
const std::string hostile = "hi \x1b]0;pwned\x07\x1b[31m red \x1b]52;c;cHduZWQ=\x07 "
                            "c1 \xc2\x9b"
                            "2J cr\rover bs\b\b end";

// True when `text` holds a byte or sequence a terminal would act on (apart from the line
// breaks a pseudo-terminal itself adds: CR LF).
bool has_raw_controls(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
            continue;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return true;
        if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9F)
            return true;
    }
    return false;
}

std::vector<std::string> queries_of(const ds::loaded_session& s) {
    std::vector<std::string> q;
    for (const auto& ex : s.exchanges)
        q.push_back(ex.query);
    return q;
}

struct ignore_sigpipe {
    ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }
};
BOOST_TEST_GLOBAL_FIXTURE(ignore_sigpipe);

} // namespace

// --- conversations ---------------------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(new_session_through_a_pipe, cli) {
    const auto r = run({}, "hello there\nsecond question\n");
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.err == "");
    const std::string id = banner_id(r.out);
    BOOST_TEST(r.out == "dexter " DEXTER_SESSIONS_VERSION " \xE2\x80\x94 new session " + id + "\n" +
                            offline(0, "", "hello there") + "\n" +
                            offline(1, "hello there", "second question") + "\n");
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(all[0].id == id);
    BOOST_TEST(all[0].exchange_count == 2u);
    BOOST_TEST(all[0].title == "hello there");
    const auto s = stored(id);
    BOOST_TEST(queries_of(s) == (std::vector<std::string>{"hello there", "second question"}),
               boost::test_tools::per_element());
    BOOST_TEST(s.exchanges[1].answer == offline(1, "hello there", "second question"));
}

BOOST_FIXTURE_TEST_CASE(exit_words_end_the_loop_and_blank_lines_are_ignored, cli) {
    for (const auto* word : {"exit", "quit", "/exit", "  quit  "}) {
        const auto r = run({}, std::string("\n   \none\n\n") + word + "\nnever asked\n");
        BOOST_TEST(describe_status(r.status) == "exit 0");
        BOOST_TEST(count_of(r.out, "[offline agent]") == 1u, word);
        BOOST_TEST(r.out.find("never asked") == std::string::npos);
    }
    // A session without a question leaves nothing behind.
    const auto r = run({}, "quit\n");
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(stored_sessions().size() == 4u);
}

BOOST_FIXTURE_TEST_CASE(the_offline_agent_sees_the_context, cli) {
    const auto r = run({}, "alpha\nbeta\ngamma\n");
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out.find(offline(0, "", "alpha")) != std::string::npos);
    BOOST_TEST(r.out.find(offline(1, "alpha", "beta")) != std::string::npos);
    BOOST_TEST(r.out.find(offline(2, "beta", "gamma")) != std::string::npos);
    // ... limited by --history-limit
    const auto limited = run({"-c", "--history-limit", "1", "-p", "delta"});
    BOOST_TEST(limited.out == offline(1, "gamma", "delta") + "\n");
    const auto none = run({"-c", "--history-limit", "0", "-p", "epsilon"});
    BOOST_TEST(none.out == offline(0, "", "epsilon") + "\n");
}

BOOST_FIXTURE_TEST_CASE(resume_by_id_by_prefix_and_by_continue, cli) {
    const std::string a = make_session({"a1", "a2"});
    const std::string b = make_session({"b1"});

    auto r = run({"-s", a}, "a3\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    // The replay: each question after its time, "[YYYY-MM-DD HH:MM] > ".
    static const std::regex replay("dexter " DEXTER_SESSIONS_VERSION
                                   " \xE2\x80\x94 resumed session [0-9a-z]{8} \\(2 exchanges\\)\n"
                                   "\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}\\] > a1\n"
                                   "[^\n]*\n"
                                   "\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}\\] > a2\n"
                                   "[^\n]*\n"
                                   "\xE2\x80\x94 continuing \xE2\x80\x94\n[\\s\\S]*");
    BOOST_TEST(std::regex_match(r.out, replay), r.out);
    BOOST_TEST(r.out.find("] > a1\n" + offline(0, "", "a1") + "\n[") != std::string::npos);
    BOOST_TEST(r.out.find("] > a2\n" + offline(1, "a1", "a2") + "\n\xE2\x80\x94") !=
               std::string::npos);
    BOOST_TEST(r.out.ends_with(offline(2, "a2", "a3") + "\n"));

    // A prefix of four or more characters, if only one session starts with it.
    std::size_t n = 4;
    while (n < 8 && a.compare(0, n, b, 0, n) == 0)
        ++n;
    r = run({"--session", a.substr(0, n)}, "a4\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(banner_id(r.out) == a);
    BOOST_TEST(r.out.find("(3 exchanges)") != std::string::npos);
    BOOST_TEST(r.out.ends_with(offline(3, "a3", "a4") + "\n"));

    // --continue takes the most recently updated: a, just now; then b once it moved.
    r = run({"-c"}, "a5\n");
    BOOST_TEST(banner_id(r.out) == a);
    run({"-s", b}, "b2\n");
    r = run({"--continue"}, "b3\n");
    BOOST_TEST(banner_id(r.out) == b);
    BOOST_TEST(r.out.ends_with(offline(2, "b2", "b3") + "\n"));

    BOOST_TEST(stored(a).exchanges.size() == 5u);
    BOOST_TEST(stored(b).exchanges.size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(resume_shows_the_last_three_exchanges_and_counts_the_others, cli) {
    const std::string id = make_session({"q1", "q2", "q3", "q4"});
    const std::string long_answer(2000, 'x');
    const auto longer = agent("long", "cat >/dev/null\nprintf '%s\\n' '" + long_answer + "'\n");
    BOOST_TEST(describe_status(run({"-c", "-p", "q5", "--agent-cmd", longer}).status) == "exit 0");

    const auto r = run({"-c"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 9u, r.out);
    BOOST_TEST(lines[0].ends_with("resumed session " + id + " (5 exchanges)"));
    BOOST_TEST(lines[1] == "\xE2\x80\xA6 2 earlier exchanges");
    BOOST_TEST((lines[2].starts_with("[") && lines[2].ends_with("] > q3")), lines[2]);
    BOOST_TEST((lines[4].starts_with("[") && lines[4].ends_with("] > q4")), lines[4]);
    BOOST_TEST((lines[6].starts_with("[") && lines[6].ends_with("] > q5")), lines[6]);
    // The long answer is shortened, and says so.
    BOOST_TEST(lines[7].size() < 400u);
    BOOST_TEST(lines[7].starts_with("xxxxxxxx"));
    BOOST_TEST(lines[7].ends_with("\xE2\x80\xA6"));
    BOOST_TEST(lines[8] == "\xE2\x80\x94 continuing \xE2\x80\x94");
    BOOST_TEST(stored(id).exchanges.back().answer == long_answer);
    // Shown the same whatever the context sent to the agent.
    BOOST_TEST(run({"-c", "--history-limit", "0"}).out == r.out);
}

BOOST_FIXTURE_TEST_CASE(one_shot_answers_saves_and_continues, cli) {
    auto r = run({"-p", "first question"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out == offline(0, "", "first question") + "\n");
    BOOST_TEST(r.err == "");
    r = run({"-c", "-p", "and the next quarter?"});
    BOOST_TEST(r.out == offline(1, "first question", "and the next quarter?") + "\n");

    r = run({"-c", "-p", "as json", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    const json::value v = json::parse(r.out);
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(v.at("session_id").as_string() == all[0].id);
    BOOST_TEST(v.at("seq").to_number<int>() == 3);
    BOOST_TEST(v.at("answer").as_string() == offline(2, "and the next quarter?", "as json"));
    BOOST_TEST(v.as_object().size() == 3u);

    // Without --sessions-dir or DEXTER_SESSIONS_DIR: ./.dexter/sessions.
    r = run({"-p", "here"}, {}, {{"DEXTER_SESSIONS_DIR", std::nullopt}}, tmp.path());
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    ds::jsonl_store local(tmp.path() / ".dexter" / "sessions");
    BOOST_TEST(local.list().size() == 1u);
}

// Secrets are replaced before they are saved, and dexter says so; --no-redact keeps them.
BOOST_FIXTURE_TEST_CASE(secrets_are_redacted_before_saving, cli) {
    // Made up here from the documented formats: no real key.
    std::string openai = "sk-proj-", aws = "AKIA";
    for (int i = 0; i < 48; ++i)
        openai += "aZ7xQ2kP9mLw"[(i * 7) % 12];
    for (int i = 0; i < 16; ++i)
        aws += "QX7Z2M9K"[(i * 3) % 8];
    const std::string fixed = agent("fixed", "cat >/dev/null\necho noted\n");
    const auto file_of = [&](const std::string& id) {
        std::ifstream in(sessions / "cli" / id / "history.jsonl");
        return std::string(std::istreambuf_iterator<char>(in), {});
    };

    auto r = run({"--agent-cmd", fixed, "-p", "is " + openai + " still valid?"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "noted\n");
    BOOST_TEST(r.err == "dexter: 1 secret redacted before saving (openai_key)\n");
    auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    const std::string id = all[0].id;
    BOOST_TEST(file_of(id).find(openai) == std::string::npos);
    BOOST_TEST(file_of(id).find("is [REDACTED:openai_key] still valid?") != std::string::npos);
    BOOST_TEST(file_of(id).find(R"("redacted":{"openai_key":1})") != std::string::npos);

    // Two in one question, of two kinds; a save without one says nothing.
    r = run({"--agent-cmd", fixed, "-c", "-p", "rotate " + openai + " and " + aws + " please"});
    BOOST_TEST(r.err == "dexter: 2 secrets redacted before saving (aws_access_key_id, "
                        "openai_key)\n");
    r = run({"--agent-cmd", fixed, "-c", "-p", "thanks"});
    BOOST_TEST(r.err == "");
    BOOST_TEST(file_of(id).find(aws) == std::string::npos);

    // --no-redact: saved as given, and nothing said.
    r = run({"--agent-cmd", fixed, "-c", "--no-redact", "-p", "keep " + aws});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.err == "");
    BOOST_TEST(file_of(id).find("keep " + aws) != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(the_agent_receives_exactly_the_expected_messages, cli) {
    const std::string record = agent("record", "cat >> " + dir() +
                                                   "/requests.jsonl\n"
                                                   "n=$(wc -l < " +
                                                   dir() +
                                                   "/requests.jsonl)\n"
                                                   "echo \"answer $n\"\n");
    const auto r = run({"--agent-cmd", record}, "q1\nq2\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const std::string id = banner_id(r.out);
    BOOST_TEST(r.out.ends_with("\nanswer 1\nanswer 2\n"));
    // Through the environment this time, with one turn of context.
    BOOST_TEST(describe_status(run({"-c", "--history-limit", "1", "-p", "q3"}, {},
                                   {{"DEXTER_AGENT_CMD", record}})
                                   .status) == "exit 0");

    std::ifstream in(tmp.path() / "requests.jsonl");
    std::vector<json::value> requests;
    for (std::string line; std::getline(in, line);)
        requests.push_back(json::parse(line));
    BOOST_TEST_REQUIRE(requests.size() == 3u);
    const auto user = [](const char* text) {
        return json::object{{"role", "user"}, {"content", text}};
    };
    const auto assistant = [](const char* text) {
        return json::object{{"role", "assistant"}, {"content", text}};
    };
    const json::value expected[] = {
        json::object{{"protocol", 2}, {"session_id", id}, {"messages", json::array{user("q1")}}},
        json::object{{"protocol", 2},
                     {"session_id", id},
                     {"messages", json::array{user("q1"), assistant("answer 1"), user("q2")}}},
        json::object{{"protocol", 2},
                     {"session_id", id},
                     {"messages", json::array{user("q2"), assistant("answer 2"), user("q3")}}},
    };
    for (std::size_t i = 0; i < 3; ++i)
        BOOST_TEST(requests[i] == expected[i],
                   "request " << i + 1 << ": " << json::serialize(requests[i]));
    // One trailing newline of the agent's output is not part of the answer.
    const auto s = stored(id);
    BOOST_TEST_REQUIRE(s.exchanges.size() == 3u);
    BOOST_TEST(s.exchanges[2].answer == "answer 3");
}

BOOST_FIXTURE_TEST_CASE(a_failing_agent_saves_nothing, cli) {
    const std::string moody =
        agent("moody", "input=$(cat)\n"
                       "case $input in\n"
                       "*please-fail*) echo '  model exploded  ' >&2; exit 3;;\n"
                       "*say-nothing*) echo 'no words' >&2; exit 0;;\n"
                       "esac\n"
                       "echo fine\n");
    auto r = run({"--agent-cmd", moody}, "ok\nplease-fail\nsay-nothing\nstill ok\n");
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out.ends_with("\nfine\nfine\n"));
    const auto errors = lines_of(r.err);
    BOOST_TEST_REQUIRE(errors.size() == 2u, r.err);
    BOOST_TEST(errors[0] ==
               "dexter: the agent failed (exit status 3): model exploded; nothing saved");
    BOOST_TEST(errors[1] == "dexter: the agent gave an empty answer: no words; nothing saved");
    const std::string id = banner_id(r.out);
    BOOST_TEST(queries_of(stored(id)) == (std::vector<std::string>{"ok", "still ok"}),
               boost::test_tools::per_element());

    // One-shot: exit status 1, and no session at all.
    r = run({"--agent-cmd", moody, "-p", "please-fail"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.out == "");
    BOOST_TEST(stored_sessions().size() == 1u);
    // An agent killed by a signal, and a command that does not exist.
    r = run({"--agent-cmd", "kill -SEGV $$", "-p", "q"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: the agent was killed by SIGSEGV; nothing saved\n");
    r = run({"--agent-cmd", "/nonexistent/agent", "-p", "q"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: the agent failed (exit status 127): "), r.err);
    BOOST_TEST(stored_sessions().size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_question_that_is_not_utf8_is_not_asked, cli) {
    const std::string record = agent("record", "cat >> " + dir() + "/requests.jsonl\necho ok\n");
    const auto r = run({"--agent-cmd", record}, "caf\xE9\nfine\n");
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.err == "dexter: the question is not valid UTF-8; nothing asked\n");
    BOOST_TEST(r.out.ends_with("\nok\n"));
    BOOST_TEST(queries_of(stored(banner_id(r.out))) == std::vector<std::string>{"fine"},
               boost::test_tools::per_element());
    std::ifstream in(tmp.path() / "requests.jsonl");
    std::string line;
    int requests = 0;
    while (std::getline(in, line))
        ++requests;
    BOOST_TEST(requests == 1);
}

BOOST_FIXTURE_TEST_CASE(an_agent_that_ignores_a_large_request_or_gives_a_large_answer, cli) {
    // 300 KB in, 1 MB out, through pipes much smaller than that, and the agent writes
    // its answer before it reads its request: both must flow at the same time.
    const std::string big_question(300000, 'q');
    const std::string echo_back =
        agent("big", "head -c 1000000 /dev/zero | tr '\\0' a\ncat >/dev/null\n");
    auto r = run({"--agent-cmd", echo_back}, big_question + "\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.ends_with("\n" + std::string(1000000, 'a') + "\n"));
    // The next request carries that answer as context: 1.3 MB to an agent that never
    // reads it.
    const std::string deaf = agent("deaf", "echo not listening\n");
    r = run({"--agent-cmd", deaf, "-c"}, big_question + "\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.ends_with("\nnot listening\n"));
    BOOST_TEST(stored_sessions().at(0).exchange_count == 2u);
}

// --- listing and deleting ------------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(list_as_a_table, cli) {
    const std::string older = make_session({"short title", "more"});
    const std::string newer = make_session(
        {"a rather long question that goes on and on about quarterly revenue figures"});
    const auto r = run({"--list-sessions"}, {}, {{"COLUMNS", "60"}});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 3u, r.out);
    BOOST_TEST(lines[0] == "ID        UPDATED           EXCHANGES  TITLE");
    static const std::regex row(
        "([0-9a-z]{8})  (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d)  +(\\d+)  (.*)");
    std::smatch m;
    const auto metas = stored_sessions();
    for (std::size_t i = 1; i < 3; ++i) {
        BOOST_TEST_REQUIRE(std::regex_match(lines[i], m, row), lines[i]);
        BOOST_TEST(code_points(lines[i]) <= 60u, lines[i]);
        const std::string id = m[1];
        BOOST_TEST(id == (i == 1 ? newer : older)); // newest first
        const auto meta = std::find_if(metas.begin(), metas.end(),
                                       [&](const ds::session_meta& s) { return s.id == id; });
        BOOST_TEST_REQUIRE((meta != metas.end()));
        std::string utc = ds::format_timestamp(meta->updated_at).substr(0, 16); // TZ=UTC
        utc[10] = ' ';
        BOOST_TEST(m[2] == utc);
        BOOST_TEST(std::stoull(m[3]) == meta->exchange_count);
    }
    BOOST_TEST(lines[1].ends_with("  a rather long questi\xE2\x80\xA6"), lines[1]);
    BOOST_TEST(lines[2].ends_with("  short title"));
}

BOOST_FIXTURE_TEST_CASE(list_as_json, cli) {
    const std::string older = make_session({"first \"quoted\" title", "x"});
    const std::string newer = make_session({"second"});
    const auto r = run({"--list-sessions", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    const json::value v = json::parse(r.out);
    BOOST_TEST_REQUIRE(v.is_array());
    const auto& a = v.as_array();
    BOOST_TEST_REQUIRE(a.size() == 2u);
    BOOST_TEST(a[0].at("id").as_string() == newer);
    BOOST_TEST(a[1].at("id").as_string() == older);
    BOOST_TEST(a[1].at("title").as_string() == "first \"quoted\" title");
    BOOST_TEST(a[1].at("exchange_count").to_number<int>() == 2);
    BOOST_TEST(a[0].at("exchange_count").to_number<int>() == 1);
    for (const auto& e : a) {
        // id, title, created_at, updated_at, exchange_count, pinned (no extra, no
        // forked_from: neither is set)
        BOOST_TEST(e.as_object().size() == 6u);
        BOOST_TEST(e.at("pinned").as_bool() == false);
        const auto created = ds::parse_timestamp(std::string(e.at("created_at").as_string()));
        const auto updated = ds::parse_timestamp(std::string(e.at("updated_at").as_string()));
        BOOST_TEST_REQUIRE((created && updated));
        BOOST_TEST((*created <= *updated));
        BOOST_TEST(std::string(e.at("updated_at").as_string()).ends_with("Z"));
    }
}

BOOST_FIXTURE_TEST_CASE(listing_a_store_that_does_not_exist_creates_nothing, cli) {
    auto r = run({"--list-sessions"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out == "no sessions in " + sessions.string() + "\n");
    r = run({"--list-sessions", "--json"});
    BOOST_TEST(r.out == "[]\n");
    r = run({"-c"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    r = run({"--delete-session", "ab12cd34", "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    r = run({"--search", "anything"});
    BOOST_TEST(describe_status(r.status) == "exit 1"); // found nothing
    BOOST_TEST(r.out == "");
    r = run({"--export", "ab12cd34", "-o", (tmp.path() / "x.md").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(!fs::exists(tmp.path() / "x.md"));
    BOOST_TEST(!fs::exists(sessions));
}

BOOST_FIXTURE_TEST_CASE(delete_with_yes, cli) {
    const std::string keep = make_session({"keep me"});
    const std::string gone = make_session({"delete me", "twice"});
    std::size_t n = 4;
    while (n < 8 && keep.compare(0, n, gone, 0, n) == 0)
        ++n;
    const auto r = run({"--delete-session", gone.substr(0, n), "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("session " + gone + " \"delete me\": 2 exchanges") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.ends_with("moved session " + gone + " to the trash (undo: dexter --restore " +
                               gone + ")\n"),
               r.out);
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(all[0].id == keep);
    // Deleting it again: no such session.
    const auto again = run({"--delete-session", gone, "-y"});
    BOOST_TEST(describe_status(again.status) == "exit 1");
    BOOST_TEST(again.err == "dexter: no session '" + gone + "' in " + sessions.string() +
                                " (see --list-sessions)\n");
}

BOOST_FIXTURE_TEST_CASE(delete_into_the_trash_needs_no_confirmation, cli) {
    // It can be undone: no question, with or without a terminal.
    const std::string id = make_session({"precious"});
    auto r = run({"--delete-session", id}, "n\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.ends_with("moved session " + id + " to the trash (undo: dexter --restore " +
                               id + ")\n"),
               r.out);
    BOOST_TEST(stored_sessions().empty());
    r = run({"--restore", id});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    {
        pty_dexter t({"--delete-session", id}, env());
        t.expect("moved session " + id + " to the trash");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
        BOOST_TEST(t.output().find("[y/N]") == std::string::npos);
    }
    BOOST_TEST(stored_sessions().empty());
}

BOOST_FIXTURE_TEST_CASE(permanent_delete_without_a_terminal_is_refused_unless_yes, cli) {
    const std::string id = make_session({"precious"});
    auto r = run({"--delete-session", id, "--permanent"}, "y\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.out.find("session " + id + " \"precious\": 1 exchange") != std::string::npos);
    BOOST_TEST(r.err == "dexter: not deleting session " + id +
                            " for good without confirmation: standard input is not a terminal "
                            "(add -y to delete without asking)\n");
    BOOST_TEST(stored_sessions().size() == 1u);
    // With -y: gone for good, not in the trash.
    r = run({"--delete-session", id, "--permanent", "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.ends_with("deleted session " + id + " for good\n"), r.out);
    BOOST_TEST(stored_sessions().empty());
    r = run({"--list-trash", "--json"});
    BOOST_TEST(r.out == "[]\n");
    r = run({"--restore", id});
    BOOST_TEST(describe_status(r.status) == "exit 1");
}

BOOST_FIXTURE_TEST_CASE(permanent_delete_asks_on_a_terminal, cli) {
    const std::string id = make_session({"on a terminal"});
    {
        pty_dexter t({"--delete-session", id, "--permanent"}, env());
        t.expect("session " + id + " \"on a terminal\": 1 exchange");
        t.expect("Delete for good? [y/N] ");
        t.type("n\n");
        t.expect("kept session " + id);
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(stored_sessions().size() == 1u);
    {
        pty_dexter t({"--delete-session", id, "--permanent"}, env());
        t.expect("Delete for good? [y/N] ");
        t.type("\n"); // the default is no
        t.expect("kept session " + id);
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(stored_sessions().size() == 1u);
    {
        pty_dexter t({"--delete-session", id, "--permanent"}, env());
        t.expect("Delete for good? [y/N] ");
        t.type("y\n");
        t.expect("deleted session " + id + " for good");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(stored_sessions().empty());
    BOOST_TEST(run({"--list-trash", "--json"}).out == "[]\n");
}

BOOST_FIXTURE_TEST_CASE(interactive_on_a_terminal_prompts, cli) {
    pty_dexter t({}, env());
    t.expect("new session ");
    t.expect("> ");
    t.type("hello from a terminal\n");
    t.expect(offline(0, "", "hello from a terminal"));
    t.expect("> ");
    t.type("\x04"); // Ctrl-D: end of input
    BOOST_TEST(describe_status(t.wait()) == "exit 0");
    BOOST_TEST(stored_sessions().size() == 1u);
}

// --- errors and exit statuses ----------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(errors_have_one_line_and_their_exit_status, cli) {
    make_session({"exists"});
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"-s", "zz99zz99"},
         "exit 1 dexter: no session 'zz99zz99' in " + sessions.string() + " (see --list-sessions)"},
        {{"-s", "zz99"},
         "exit 1 dexter: no session 'zz99' in " + sessions.string() + " (see --list-sessions)"},
        {{"-s", "../x"},
         "exit 2 dexter: invalid session id '../x': expected 8 characters of "
         "[0-9a-z], or a unique prefix of 4 or more (see dexter --help)"},
        {{"-s", "ABCD1234", "-p", "q"},
         "exit 2 dexter: invalid session id 'ABCD1234': expected 8 "
         "characters of [0-9a-z], or a unique prefix of 4 or "
         "more (see dexter --help)"},
        {{"-s", "ab12cd34", "-c"},
         "exit 2 dexter: --session and --continue cannot be used together (see dexter --help)"},
        {{"--list-sessions", "-p", "q"},
         "exit 2 dexter: --list-sessions cannot be used with --prompt (see dexter --help)"},
        {{"--delete-session", "ab12cd34", "-p", "q"},
         "exit 2 dexter: --delete-session cannot be used with --prompt (see dexter --help)"},
        {{"--json"},
         "exit 2 dexter: --json needs --list-sessions, --list-trash, --search, --show, --verify, "
         "--explain or --prompt (see dexter --help)"},
        {{"-y"},
         "exit 2 dexter: --yes needs --delete-session, --purge-trash, --prune or --repair (see "
         "dexter --help)"},
        {{"--prune", "--older-than", "30"},
         "exit 2 dexter: --older-than: expected a DURATION such as 30d, 12h, 90m, 45s or 2w, "
         "got '30' (see dexter --help)"},
        {{"--incognito", "-c"},
         "exit 2 dexter: --incognito cannot be used with --continue (an incognito conversation "
         "uses no store) (see dexter --help)"},
        {{"--frobnicate"}, "exit 2 dexter: unrecognised option '--frobnicate' (see dexter --help)"},
        {{"--history-limit", "lots"},
         "exit 2 dexter: --history-limit: expected a whole number "
         "from 0 to 1000, got 'lots' (see dexter --help)"},
    };
    for (const auto& [args, expected] : cases) {
        const auto r = run(args, "should not be asked\n");
        BOOST_TEST(describe_status(r.status) + " " + r.err == expected + "\n");
    }
    // A store root that is a file: an error before any question is read.
    std::ofstream(tmp.path() / "a-file") << "x";
    const auto r = run({"--sessions-dir", (tmp.path() / "a-file").string()}, "q\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: "));
    BOOST_TEST(lines_of(r.err).size() == 1u, r.err);
    BOOST_TEST(r.out == "");
}

BOOST_FIXTURE_TEST_CASE(continue_without_any_session, cli) {
    fs::create_directories(sessions);
    const auto r = run({"-c"}, "q\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: no sessions in " + sessions.string() +
                            " to continue (start one with dexter)\n");
}

BOOST_FIXTURE_TEST_CASE(version_and_help, cli) {
    auto r = run({"--version"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out == "dexter " DEXTER_SESSIONS_VERSION "\n");
    r = run({"--help"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out.starts_with("Usage:"));
    BOOST_TEST(r.out.find("--agent-cmd") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(store_problems_are_one_warning_line, cli) {
    const std::string id = make_session({"one", "two", "three"});
    // Damage the second exchange (line 3) in place.
    const fs::path history = sessions / "cli" / id / "history.jsonl";
    std::string text;
    {
        std::ifstream in(history);
        text.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto lines = lines_of(text);
    BOOST_TEST_REQUIRE(lines.size() == 4u, text);
    lines[2] = std::string(lines[2].size(), '#');
    {
        std::ofstream out(history, std::ios::trunc);
        for (const auto& l : lines)
            out << l << '\n';
    }
    // A resume says what it skipped in one line after the banner (on standard output,
    // as part of the conversation), and nothing on standard error.
    auto r = run({"-s", id});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.err == "");
    const auto out = lines_of(r.out);
    BOOST_TEST_REQUIRE(out.size() >= 2u, r.out);
    BOOST_TEST(out[1] == "resumed with 1 damaged line skipped and 1 gap in the exchange numbers "
                         "(see --verify)");
    // The missing exchange 2 sits between the two shown: none is "earlier".
    BOOST_TEST(r.out.find("earlier exchange") == std::string::npos, r.out);
    BOOST_TEST(r.out.find("> one\n") != std::string::npos);
    BOOST_TEST(r.out.find("> three\n") != std::string::npos);
    BOOST_TEST(r.out.find("> two\n") == std::string::npos);

    // A broken index: rebuilt from the histories, with a warning, nothing lost.
    std::ofstream(sessions / "index.json", std::ios::trunc) << "{";
    r = run({"--list-sessions", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST_REQUIRE(lines_of(r.err).size() == 1u, r.err);
    BOOST_TEST(r.err.starts_with("dexter: warning: "), r.err);
    BOOST_TEST(json::parse(r.out).as_array().size() == 1u);
}

// --- reading sessions back: --show, --export, --search, --list-sessions --limit --------------

BOOST_FIXTURE_TEST_CASE(show_prints_the_whole_session_in_each_view, cli) {
    write_session("show1234", "Revenue review",
                  {{"What was revenue in Q3?", "About 4.2M."},
                   {"And the margin?\nPer region, please.", "North 12%\nSouth 9%"},
                   {"Thanks", "You're welcome."}},
                  test_time());
    // The terminal view: a header, then per exchange its seq and local time (TZ=UTC), the
    // question quoted, the answer.
    auto r = run({"--show", "show1234"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.err == "");
    BOOST_TEST(r.out == "session show1234 · Revenue review\n"
                        "3 exchanges · created 2026-03-01 09:00 · updated 2026-03-01 09:02\n"
                        "\n"
                        "#1 · 2026-03-01 09:00:00\n"
                        "> What was revenue in Q3?\n"
                        "About 4.2M.\n"
                        "\n"
                        "#2 · 2026-03-01 09:01:00\n"
                        "> And the margin?\n"
                        "> Per region, please.\n"
                        "North 12%\n"
                        "South 9%\n"
                        "\n"
                        "#3 · 2026-03-01 09:02:00 · test-model\n"
                        "> Thanks\n"
                        "You're welcome.\n"
                        "\n");

    // --json: one document that matches what was saved.
    r = run({"--show", "show", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const json::value v = json::parse(r.out);
    BOOST_TEST(v.at("session").at("id").as_string() == "show1234");
    BOOST_TEST(v.at("session").at("title").as_string() == "Revenue review");
    BOOST_TEST(v.at("session").at("exchange_count").to_number<int>() == 3);
    const auto saved = stored("show1234");
    const auto& exchanges = v.at("exchanges").as_array();
    BOOST_TEST_REQUIRE(exchanges.size() == saved.exchanges.size());
    for (std::size_t i = 0; i < exchanges.size(); ++i) {
        const auto& e = exchanges[i];
        const auto& ex = saved.exchanges[i];
        BOOST_TEST(e.at("seq").to_number<std::uint64_t>() == ex.seq);
        BOOST_TEST(e.at("query").as_string() == ex.query);
        BOOST_TEST(e.at("answer").as_string() == ex.answer);
        BOOST_TEST((ds::parse_timestamp(std::string(e.at("timestamp").as_string())) ==
                    std::optional(ex.timestamp)));
    }
    BOOST_TEST(exchanges[2].at("model").as_string() == "test-model");

    // --markdown: the library's transcript, byte for byte.
    r = run({"--show", "show1234", "--markdown"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == library_export("show1234", ds::export_format::markdown));
    BOOST_TEST(r.out.find("## 2 · 2026-03-01T09:01:00.000Z") != std::string::npos, r.out);
}

BOOST_FIXTURE_TEST_CASE(show_and_export_name_ambiguous_and_unknown_sessions, cli) {
    write_session("abcd1111", "one", {{"q1", "a1"}}, test_time());
    write_session("abcd2222", "two", {{"q2", "a2"}}, test_time(5));
    for (const char* command : {"--show", "--export"}) {
        auto r = run({command, "abcd"});
        BOOST_TEST(describe_status(r.status) == "exit 1", command);
        BOOST_TEST(r.err == "dexter: session prefix 'abcd' matches 2 sessions (abcd1111, "
                            "abcd2222); give more characters\n");
        BOOST_TEST(r.out == "");
        r = run({command, "zzzz"});
        BOOST_TEST(describe_status(r.status) == "exit 1", command);
        BOOST_TEST(r.err == "dexter: no session 'zzzz' in " + sessions.string() +
                                " (see --list-sessions)\n");
        r = run({command, "abcd2"}); // unique
        BOOST_TEST(describe_status(r.status) == "exit 0", command << r.err);
        BOOST_TEST(r.out.find("q2") != std::string::npos);
    }
    // A store that does not exist is not created by looking into it.
    const auto r = run({"--show", "abcd1111", "--sessions-dir", (tmp.path() / "none").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(!fs::exists(tmp.path() / "none"));
}

BOOST_FIXTURE_TEST_CASE(export_to_standard_output_in_each_format, cli) {
    write_session("expo1234", "Export \"me\"",
                  {{"first question", "first answer"},
                   {"second\nquestion", "a table:\n| a | b |\n```\ncode"},
                   {"third", "done"}},
                  test_time());
    const auto saved = stored("expo1234");

    // jsonl: a session header, then one exchange per line, field by field as stored.
    auto r = run({"--export", "expo1234", "--format", "jsonl"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 1 + saved.exchanges.size(), r.out);
    const json::value header = json::parse(lines[0]);
    BOOST_TEST(header.at("type").as_string() == "session");
    BOOST_TEST(header.at("id").as_string() == "expo1234");
    BOOST_TEST(header.at("title").as_string() == "Export \"me\"");
    for (std::size_t i = 0; i < saved.exchanges.size(); ++i) {
        const json::value e = json::parse(lines[i + 1]);
        const auto& ex = saved.exchanges[i];
        BOOST_TEST(e.at("type").as_string() == "exchange");
        BOOST_TEST(e.at("seq").to_number<std::uint64_t>() == ex.seq);
        BOOST_TEST((ds::parse_timestamp(std::string(e.at("timestamp").as_string())) ==
                    std::optional(ex.timestamp)));
        BOOST_TEST(e.at("query").as_string() == ex.query);
        BOOST_TEST(e.at("answer").as_string() == ex.answer);
        BOOST_TEST((e.as_object().contains("model") == ex.model.has_value()));
    }
    BOOST_TEST(r.out == library_export("expo1234", ds::export_format::jsonl));
    // ... and it is a history file: another store takes it as it is.
    const fs::path other = tmp.path() / "other";
    fs::create_directories(other / "cli" / "expo1234");
    std::ofstream(other / "cli" / "expo1234" / "history.jsonl", std::ios::binary) << r.out;
    const auto imported = ds::jsonl_store(other).load("expo1234");
    BOOST_TEST(imported.diagnostics.empty());
    BOOST_TEST(imported.meta.title == saved.meta.title);
    BOOST_TEST((imported.exchanges == saved.exchanges));

    // json: one document; markdown, the default: the transcript.
    r = run({"--export", "expo1234", "--format", "json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(json::parse(r.out).at("exchanges").as_array().size() == 3u);
    BOOST_TEST(r.out == library_export("expo1234", ds::export_format::json));
    r = run({"--export", "expo1234"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == library_export("expo1234", ds::export_format::markdown));
    BOOST_TEST(r.out.starts_with("# Export \"me\"\n"));
}

BOOST_FIXTURE_TEST_CASE(export_to_a_file_replaces_it_only_when_complete, cli) {
    write_session("file1234", "to a file", {{"q", "a"}, {"q2", "a2"}}, test_time());
    const fs::path out = tmp.path() / "out";
    fs::create_directories(out);
    const mode_t old_mask = ::umask(027);
    auto r = run({"--export", "file1234", "--format", "jsonl", "-o", (out / "s.jsonl").string()});
    ::umask(old_mask);
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "");
    BOOST_TEST(r.err == "");
    BOOST_TEST(read_text(out / "s.jsonl") == library_export("file1234", ds::export_format::jsonl));
    BOOST_TEST(names_in(out) == std::vector<std::string>{"s.jsonl"},
               boost::test_tools::per_element());
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat((out / "s.jsonl").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0640u); // 0666 less the umask

    // An existing file is replaced.
    std::ofstream(out / "s.md") << "old content";
    r = run({"--export", "file1234", "--output", (out / "s.md").string()});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(read_text(out / "s.md") == library_export("file1234", ds::export_format::markdown));
    BOOST_TEST(names_in(out) == (std::vector<std::string>{"s.jsonl", "s.md"}),
               boost::test_tools::per_element());

    // A directory that does not exist, or a "directory" that is a file: an error naming
    // the path, nothing written.
    r = run({"--export", "file1234", "-o", (tmp.path() / "missing" / "s.md").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: cannot export to " +
                                 (tmp.path() / "missing" / "s.md").string() + ": "),
               r.err);
    BOOST_TEST(r.err.find("No such file or directory") != std::string::npos, r.err);
    BOOST_TEST(lines_of(r.err).size() == 1u);
    BOOST_TEST(!fs::exists(tmp.path() / "missing"));
    r = run({"--export", "file1234", "-o", (out / "s.md" / "x").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.find((out / "s.md" / "x").string()) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("Not a directory") != std::string::npos, r.err);

    // A target that is a directory: the rename fails, the temporary goes.
    fs::create_directories(out / "adir");
    r = run({"--export", "file1234", "-o", (out / "adir").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.find("(" + (out / "adir").string() + " is unchanged)") != std::string::npos,
               r.err);
    BOOST_TEST(fs::is_directory(out / "adir"));
    BOOST_TEST(names_in(out) == (std::vector<std::string>{"adir", "s.jsonl", "s.md"}),
               boost::test_tools::per_element());

    // Only regular files are replaced: a rename over a device node (as root, -o /dev/null
    // would replace the system's), a FIFO or a symbolic link would put the export in its
    // place.
    const fs::path special = tmp.path() / "special";
    fs::create_directories(special);
    BOOST_TEST_REQUIRE(::mkfifo((special / "fifo").c_str(), 0600) == 0);
    fs::create_symlink(out / "s.md", special / "link");
    const bool have_node =
        ::mknod((special / "null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0;
    for (const char* name : {"fifo", "link", "null"}) {
        if (std::string(name) == "null" && !have_node)
            continue; // not root: no device node to test with
        r = run({"--export", "file1234", "-o", (special / name).string()});
        BOOST_TEST(describe_status(r.status) == "exit 1", name);
        BOOST_TEST(r.err.find("-o only writes regular files") != std::string::npos, r.err);
    }
    BOOST_TEST(fs::is_fifo(special / "fifo"));
    BOOST_TEST(fs::is_symlink(special / "link"));
    if (have_node)
        BOOST_TEST(fs::is_character_file(special / "null"));
    BOOST_TEST(names_in(special).size() == (have_node ? 3u : 2u));
    BOOST_TEST(read_text(out / "s.md") == library_export("file1234", ds::export_format::markdown));
}

namespace {

// A tmpfs of `size` mounted on `dir` for as long as it lives (root only), read-only when
// `flags` says MS_RDONLY.
class small_file_system {
public:
    small_file_system(const fs::path& dir, const char* size, unsigned long flags = 0) : dir_(dir) {
        fs::create_directories(dir_);
        const std::string data = std::string("size=") + size;
        mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", flags, data.c_str()) == 0;
        if (!mounted_)
            reason_ = std::strerror(errno);
    }
    small_file_system(const small_file_system&) = delete;
    small_file_system& operator=(const small_file_system&) = delete;
    ~small_file_system() {
        if (mounted_)
            ::umount2(dir_.c_str(), MNT_DETACH);
    }
    bool mounted() const noexcept { return mounted_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string reason_;
};

} // namespace

BOOST_FIXTURE_TEST_CASE(an_export_that_fills_the_disk_leaves_nothing_behind, cli) {
    // Larger than the file system: 4 exchanges of 40 KB.
    const std::string big(40 * 1024, 'x');
    write_session("full1234", "big", {{"q1", big}, {"q2", big}, {"q3", big}, {"q4", big}},
                  test_time());
    const fs::path small = tmp.path() / "small";
    small_file_system tmpfs(small, "64k");
    if (!tmpfs.mounted()) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs (" << tmpfs.reason() << ")");
        return;
    }
    std::ofstream(small / "kept.md") << "precious";
    for (const char* name : {"kept.md", "new.md"}) {
        const auto r = run({"--export", "full1234", "-o", (small / name).string()});
        BOOST_TEST(describe_status(r.status) == "exit 1", name);
        BOOST_TEST(r.err.starts_with("dexter: cannot export to " + (small / name).string() + ": "),
                   r.err);
        BOOST_TEST(r.err.find("No space left on device") != std::string::npos, r.err);
        BOOST_TEST(lines_of(r.err).size() == 1u, r.err);
        BOOST_TEST(names_in(small) == std::vector<std::string>{"kept.md"},
                   boost::test_tools::per_element());
        BOOST_TEST(read_text(small / "kept.md") == "precious");
    }
    // What fits is written whole.
    write_session("fits1234", "small", {{"q", "a"}}, test_time(10));
    const auto r = run({"--export", "fits1234", "-o", (small / "kept.md").string()});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(read_text(small / "kept.md") ==
               library_export("fits1234", ds::export_format::markdown));
}

BOOST_FIXTURE_TEST_CASE(an_export_to_a_file_is_the_export_to_standard_output, cli) {
    // Records another writer added a field to: an export copies the records it can,
    // whether it goes to standard output or through -o.
    write_session("same1234", "same", {{"q1", "a1"}}, test_time());
    const fs::path history = sessions / "cli" / "same1234" / "history.jsonl";
    std::ofstream(history, std::ios::app)
        << R"({"type":"exchange","seq":2,"timestamp":"2026-11-06T10:01:00.000Z","query":"q2","answer":"a2","origin":"another tool"})"
        << "\n";
    const fs::path out = tmp.path() / "out";
    fs::create_directories(out);
    for (const char* format : {"jsonl", "json", "markdown"}) {
        const auto to_stdout = run({"--export", "same1234", "--format", format});
        BOOST_TEST(describe_status(to_stdout.status) == "exit 0", to_stdout.err);
        const fs::path file = out / (std::string("s.") + format);
        const auto to_file = run({"--export", "same1234", "--format", format, "-o", file.string()});
        BOOST_TEST(describe_status(to_file.status) == "exit 0", to_file.err);
        BOOST_TEST(read_text(file) == to_stdout.out, format);
        if (std::string(format) != "markdown")
            BOOST_TEST(to_stdout.out.find("another tool") != std::string::npos, format);
    }
}

BOOST_FIXTURE_TEST_CASE(an_export_into_a_read_only_directory_leaves_nothing_behind, cli) {
    write_session("rdonly12", "read-only", {{"q", "a"}}, test_time());
    // A read-only mount: root's permission checks cannot be bypassed there.
    const fs::path ro = tmp.path() / "ro";
    small_file_system mounted(ro, "64k", MS_RDONLY);
    if (!mounted.mounted()) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a read-only tmpfs (" << mounted.reason() << ")");
        return;
    }
    const auto r = run({"--export", "rdonly12", "-o", (ro / "s.md").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1", r.err);
    BOOST_TEST(r.err.starts_with("dexter: cannot export to " + (ro / "s.md").string() + ": "),
               r.err);
    BOOST_TEST(r.err.find("Read-only file system") != std::string::npos, r.err);
    BOOST_TEST(names_in(ro).empty());
}

BOOST_FIXTURE_TEST_CASE(an_interrupted_export_leaves_the_file_as_it_was, cli) {
    // Big enough to take a while: 300 exchanges of 16 KB.
    const std::string answer(16 * 1024, 'z');
    std::vector<std::pair<std::string, std::string>> exchanges(300, {"q", answer});
    write_session("intr1234", "interrupted", exchanges, test_time());
    const fs::path out = tmp.path() / "out";
    fs::create_directories(out);
    const std::string complete = library_export("intr1234", ds::export_format::markdown);
    // Whenever SIGINT comes, the file is the old one or the whole export, never a part,
    // and no temporary is left.
    std::size_t interrupted = 0;
    for (const int delay_ms : {0, 1, 3, 10, 30, 100}) {
        std::ofstream(out / "s.md", std::ios::trunc) << "old";
        dexter_process p({"--export", "intr1234", "-o", (out / "s.md").string()}, env());
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        ::kill(p.pid(), SIGINT);
        const std::string status = describe_status(p.wait());
        const std::string text = read_text(out / "s.md");
        BOOST_TEST((status == "exit 0" || status == "exit 130" || status == "killed by signal 2"),
                   status);
        BOOST_TEST((text == "old" || text == complete), delay_ms << " ms: " << text.size());
        BOOST_TEST(names_in(out) == std::vector<std::string>{"s.md"},
                   boost::test_tools::per_element());
        if (status == "exit 130") {
            ++interrupted;
            BOOST_TEST(text == "old");
            BOOST_TEST(p.err() == "dexter: export interrupted; " + (out / "s.md").string() +
                                      " is unchanged\n");
        }
    }
    BOOST_TEST_MESSAGE(interrupted << " of 6 exports stopped by the signal mid-way");
}

BOOST_FIXTURE_TEST_CASE(standard_output_that_fails_is_an_error, cli) {
    write_session("outp1234", "output", {{"q", "a"}}, test_time());
    const std::vector<std::vector<std::string>> commands{
        {"--show", "outp1234"},   {"--show", "outp1234", "--json"},
        {"--export", "outp1234"}, {"--export", "outp1234", "--format", "jsonl"},
        {"--search", "q"},        {"--search", "q", "--json"}};
    const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    BOOST_TEST_REQUIRE(full >= 0);
    int closed[2];
    BOOST_TEST_REQUIRE(::pipe2(closed, O_CLOEXEC) == 0);
    ::close(closed[0]); // nobody reads: EPIPE
    for (const auto& args : commands) {
        auto r = run_with_stdout(args, full);
        BOOST_TEST(describe_status(r.status) + " " + r.err ==
                   "exit 1 dexter: cannot write to standard output: No space left on device\n");
        r = run_with_stdout(args, closed[1]);
        BOOST_TEST(describe_status(r.status) + " " + r.err ==
                   "exit 1 dexter: cannot write to standard output: Broken pipe\n");
    }
    ::close(closed[1]);
    ::close(full);
}

BOOST_FIXTURE_TEST_CASE(search_finds_titles_questions_and_answers_newest_first, cli) {
    write_session("srch0001", "Quarterly planning", {{"budget for Q3", "about 4.2M"}},
                  test_time(0));
    write_session("srch0002", "Zoo visit", {{"which animals?", "a zebra and a lion"}},
                  test_time(10));
    write_session("srch0003", "More budget",
                  {{"the budget again", "still 4.2M"}, {"and Q4?", "5M, budget allowing"}},
                  test_time(20));

    // A title only.
    auto r = run({"--search", "PLANNING", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    json::value v = json::parse(r.out);
    BOOST_TEST_REQUIRE(v.as_array().size() == 1u, r.out);
    const auto& title_hit = v.as_array()[0].as_object();
    BOOST_TEST(title_hit.size() == 6u);
    BOOST_TEST(title_hit.at("id").as_string() == "srch0001");
    BOOST_TEST(title_hit.at("title").as_string() == "Quarterly planning");
    BOOST_TEST(title_hit.at("seq").to_number<int>() == 0);
    BOOST_TEST(title_hit.at("field").as_string() == "title");
    BOOST_TEST(title_hit.at("snippet").as_string() == "Quarterly planning");
    BOOST_TEST(title_hit.at("timestamp").as_string() == "2026-03-01T09:00:00.000Z");

    // An answer only.
    r = run({"--search", "zebra", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    v = json::parse(r.out);
    BOOST_TEST_REQUIRE(v.as_array().size() == 1u, r.out);
    BOOST_TEST(v.as_array()[0].at("id").as_string() == "srch0002");
    BOOST_TEST(v.as_array()[0].at("seq").to_number<int>() == 1);
    BOOST_TEST(v.as_array()[0].at("field").as_string() == "answer");
    BOOST_TEST(v.as_array()[0].at("snippet").as_string() == "a zebra and a lion");

    // Several, newest first, as lines: ID  SEQ  DATE  TITLE  snippet.
    r = run({"--search", "budget"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "srch0003    2  2026-03-01 09:21  More budget  5M, budget allowing\n"
                        "srch0003    -  2026-03-01 09:21  More budget  More budget\n"
                        "srch0003    1  2026-03-01 09:20  More budget  the budget again\n"
                        "srch0001    1  2026-03-01 09:00  Quarterly planning  budget for Q3\n");
    r = run({"--search", "budget", "--limit", "2"});
    BOOST_TEST(lines_of(r.out).size() == 2u, r.out);

    // Nothing found: exit 1, as grep; an empty text: a usage error.
    r = run({"--search", "platypus"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.out == "");
    BOOST_TEST(r.err == "");
    r = run({"--search", "platypus", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.out == "[]\n");
    r = run({"--search", ""});
    BOOST_TEST(describe_status(r.status) == "exit 2");
    BOOST_TEST(r.err ==
               "dexter: --search needs a text to find, not an empty one (see dexter --help)\n");
}

BOOST_FIXTURE_TEST_CASE(search_lines_fit_the_terminal_width, cli) {
    const std::string long_title = "A title that is much longer than the title column allows";
    const std::string answer = "the needle sits in " + std::string(300, 'y') + " a long answer";
    write_session("wide1234", long_title, {{"question", answer}}, test_time());
    for (const int columns : {50, 80, 120}) {
        const auto r = run({"--search", "needle"}, {}, {{"COLUMNS", std::to_string(columns)}});
        BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
        const auto lines = lines_of(r.out);
        BOOST_TEST_REQUIRE(lines.size() == 1u, r.out);
        BOOST_TEST(code_points(lines[0]) == static_cast<std::size_t>(columns), lines[0]);
        BOOST_TEST(lines[0].ends_with("\xE2\x80\xA6"), lines[0]);
        // The title gets half of what the line has left after the date, from 10 to 24
        // columns, so that the snippet shows.
        const std::size_t title_width = std::clamp<std::size_t>((columns - 33) / 2, 10, 24);
        std::string title;
        for (std::size_t i = 0; code_points(title) < title_width - 1; ++i)
            title += long_title[i];
        BOOST_TEST(lines[0].starts_with("wide1234    1  2026-03-01 09:00  " + title +
                                        "\xE2\x80\xA6  the "),
                   lines[0]);
    }
}

BOOST_FIXTURE_TEST_CASE(hostile_text_is_shown_visibly_never_raw, cli) {
    write_session("evil1234", "title " + hostile, {{hostile, "answer " + hostile}}, test_time());
    const std::string visible = "hi ^[]0;pwned^G^[[31m red ^[]52;c;cHduZWQ=^G c1 <U+009B>2J "
                                "cr^Mover bs^H^H end";
    // Through a pipe: the human views are made safe.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--show", "evil1234"},
             {"--list-sessions"},
             {"--delete-session", "evil1234", "--permanent"}}) { // refused: no terminal
        const auto r = run(args);
        BOOST_TEST(!has_raw_controls(r.out), args[0] << ": " << r.out);
        BOOST_TEST(r.out.find("title hi ^[]0;pwned^G") != std::string::npos, r.out);
    }
    auto r = run({"--show", "evil1234"});
    BOOST_TEST(r.out.find("> " + visible + "\n") != std::string::npos, r.out);
    r = run({"-s", "evil1234"}); // the exchanges replayed on resume
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("> " + visible + "\n") != std::string::npos, r.out);
    BOOST_TEST(!has_raw_controls(r.out), r.out);
    BOOST_TEST(r.out.find("answer " + visible + "\n") != std::string::npos, r.out);
    r = run({"--search", "pwned"}, {}, {{"COLUMNS", "300"}});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(lines_of(r.out).size() == 2u, r.out); // the title, the question
    BOOST_TEST(!has_raw_controls(r.out), r.out);

    // Into a pipe, --export and --show --markdown are faithful, and JSON is as written.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--export", "evil1234"}, {"--show", "evil1234", "--markdown"}}) {
        r = run(args);
        BOOST_TEST(r.out.find("> " + hostile + "\n") != std::string::npos, r.out);
    }
    r = run({"--show", "evil1234", "--json"});
    BOOST_TEST(r.out.find("\\u001b]0;pwned\\u0007") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("\xc2\x9b") != std::string::npos, r.out);
    BOOST_TEST(json::parse(r.out).at("exchanges").as_array()[0].at("query").as_string() == hostile);

    // On a terminal, every view is safe, JSON still the same JSON.
    const std::vector<std::vector<std::string>> on_terminal{
        {"--show", "evil1234"},
        {"--show", "evil1234", "--markdown"},
        {"--show", "evil1234", "--json"},
        {"--export", "evil1234"},
        {"--export", "evil1234", "--format", "jsonl"},
        {"--search", "pwned"},
        {"--search", "pwned", "--json"},
        {"--list-sessions"},
        {"--list-sessions", "--json"}};
    for (const auto& args : on_terminal) {
        pty_dexter t(args, env());
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
        BOOST_TEST(!has_raw_controls(t.output()), args[0] << ": " << t.output());
        BOOST_TEST(t.output().find("pwned") != std::string::npos, t.output());
    }
    pty_dexter t({"--show", "evil1234", "--json"}, env());
    t.wait();
    std::string text = t.output();
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end()); // the terminal's CR LF
    BOOST_TEST(text.find("\\u009b") != std::string::npos, text);
    BOOST_TEST(json::parse(text).at("exchanges").as_array()[0].at("query").as_string() == hostile);
}

BOOST_FIXTURE_TEST_CASE(list_sessions_limit_gives_the_newest, cli) {
    write_session("list0001", "oldest", {{"q", "a"}}, test_time(0));
    write_session("list0002", "newest", {{"q", "a"}}, test_time(30));
    write_session("list0003", "middle", {{"q", "a"}, {"q", "a"}}, test_time(10));
    auto r = run({"--list-sessions", "--limit", "2"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 3u, r.out);
    BOOST_TEST(lines[1] == "list0002  2026-03-01 09:30          1  newest");
    BOOST_TEST(lines[2] == "list0003  2026-03-01 09:11          2  middle");
    r = run({"--list-sessions", "--limit", "2", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const auto a = json::parse(r.out).as_array();
    BOOST_TEST_REQUIRE(a.size() == 2u);
    BOOST_TEST(a[0].at("id").as_string() == "list0002");
    BOOST_TEST(a[1].at("id").as_string() == "list0003");
    r = run({"--list-sessions", "--limit", "10"});
    BOOST_TEST(lines_of(r.out).size() == 4u);
}

BOOST_FIXTURE_TEST_CASE(damaged_records_are_one_warning_line_for_every_reader, cli) {
    write_session("dmgd1234", "damaged", {{"one", "a1"}, {"two", "a2"}, {"three", "a3"}},
                  test_time());
    const fs::path history = sessions / "cli" / "dmgd1234" / "history.jsonl";
    auto lines = lines_of(read_text(history));
    BOOST_TEST_REQUIRE(lines.size() == 4u);
    lines[2] = std::string(lines[2].size(), '#'); // the second exchange
    {
        std::ofstream out(history, std::ios::trunc);
        for (const auto& l : lines)
            out << l << '\n';
    }
    const std::vector<std::vector<std::string>> readers{
        {"--show", "dmgd1234"},
        {"--show", "dmgd1234", "--json"},
        {"--export", "dmgd1234", "--format", "jsonl"},
        {"--export", "dmgd1234", "-o", (tmp.path() / "d.md").string()},
        {"--search", "three"}};
    for (const auto& args : readers) {
        const auto r = run(args);
        BOOST_TEST(describe_status(r.status) == "exit 0", args[0] << r.err);
        BOOST_TEST_REQUIRE(lines_of(r.err).size() == 1u, r.err);
        BOOST_TEST(r.err.starts_with("dexter: warning: "), r.err);
        BOOST_TEST(r.err.find("dmgd1234") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("line 3: ") != std::string::npos, r.err);
    }
    const auto r = run({"--show", "dmgd1234"});
    BOOST_TEST(r.out.find("> one\n") != std::string::npos);
    BOOST_TEST(r.out.find("> three\n") != std::string::npos);
    BOOST_TEST(r.out.find("> two\n") == std::string::npos);
}

// --- crashes, locks and signals ----------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(an_answer_that_cannot_be_saved_is_not_shown, cli) {
    const std::string id = make_session({"first"});
    // A real write failure: a file size limit just above what the store holds now, so
    // that appending the next (long) exchange fails with EFBIG. SIGXFSZ is ignored (and
    // inherited as ignored) so that the write fails instead of killing dexter.
    std::uintmax_t largest = 0;
    for (const auto& e : fs::recursive_directory_iterator(sessions))
        if (e.is_regular_file())
            largest = std::max(largest, e.file_size());
    rlimit old{};
    ::getrlimit(RLIMIT_FSIZE, &old);
    const rlimit small{largest + 300, old.rlim_max};
    ::signal(SIGXFSZ, SIG_IGN);
    ::setrlimit(RLIMIT_FSIZE, &small);
    std::optional<dexter_process> p;
    try {
        p.emplace(std::vector<std::string>{"-c"}, env());
    } catch (...) {
        ::setrlimit(RLIMIT_FSIZE, &old);
        throw;
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, SIG_DFL);

    p->write(std::string(2000, 'w') + "\nnever asked\n");
    BOOST_TEST(describe_status(p->wait()) == "exit 1");
    BOOST_TEST(p->out().find(std::string(50, 'w')) == std::string::npos, p->out());
    BOOST_TEST_REQUIRE(lines_of(p->err()).size() == 1u, p->err());
    BOOST_TEST(p->err().starts_with("dexter: "));
    BOOST_TEST(p->err().find(std::strerror(EFBIG)) != std::string::npos, p->err());
    BOOST_TEST(queries_of(stored(id)) == std::vector<std::string>{"first"},
               boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(sigkill_mid_session_loses_no_printed_exchange, cli) {
    const unsigned seed = std::random_device{}();
    BOOST_TEST_MESSAGE("seed " << seed);
    std::mt19937 rng(seed);
    for (int round = 0; round < 4; ++round) {
        BOOST_TEST_CONTEXT("seed " << seed << ", round " << round) {
            const fs::path store = tmp.path() / ("round-" + std::to_string(round));
            const env_changes here{{"DEXTER_SESSIONS_DIR", store.string()}};
            const int answered = std::uniform_int_distribution<int>(1, 6)(rng);
            dexter_process p({}, env(here));
            p.expect_out("new session ");
            std::string previous;
            for (int i = 1; i <= answered; ++i) {
                const std::string q = "question " + std::to_string(i);
                p.write(q + "\n");
                p.expect_out(offline(static_cast<std::size_t>(i - 1), previous, q) + "\n");
                previous = q;
            }
            // One more question in flight, then SIGKILL at a random moment.
            p.write("question " + std::to_string(answered + 1) + "\n");
            std::this_thread::sleep_for(
                std::chrono::microseconds(std::uniform_int_distribution<int>(0, 5000)(rng)));
            ::kill(p.pid(), SIGKILL);
            BOOST_TEST(describe_status(p.wait()) == "killed by signal 9");
            const std::size_t printed = count_of(p.out(), "[offline agent]");

            const auto r = run({"--continue"}, {}, here);
            BOOST_TEST_REQUIRE(describe_status(r.status) == "exit 0", r.err);
            ds::jsonl_store inspect(store);
            const auto s = inspect.load(banner_id(r.out));
            // Every printed exchange is there, in order, as printed; at most the one in
            // flight beyond them.
            BOOST_TEST_REQUIRE(s.exchanges.size() >= printed);
            BOOST_TEST(s.exchanges.size() <= printed + 1);
            for (std::size_t i = 0; i < s.exchanges.size(); ++i) {
                BOOST_TEST(s.exchanges[i].seq == i + 1);
                BOOST_TEST(s.exchanges[i].query == "question " + std::to_string(i + 1));
                if (i < printed)
                    BOOST_TEST(p.out().find(s.exchanges[i].answer + "\n") != std::string::npos);
            }
            BOOST_TEST(r.out.find("(" + std::to_string(s.exchanges.size()) + " exchange") !=
                       std::string::npos);
            for (std::size_t i = s.exchanges.size() > 3 ? s.exchanges.size() - 3 : 0;
                 i < s.exchanges.size(); ++i)
                BOOST_TEST(r.out.find("> " + s.exchanges[i].query + "\n" + s.exchanges[i].answer +
                                      "\n") != std::string::npos);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(a_second_dexter_on_the_same_session_is_refused, cli) {
    dexter_process first({}, env());
    first.write("mine\n");
    first.expect_out(offline(0, "", "mine") + "\n");
    const std::string id = banner_id(first.out());
    const std::string refusal = "dexter: session '" + id + "' is open in process " +
                                std::to_string(first.pid()) + "; close it there first\n";

    auto r = run({"-s", id, "-p", "mine too?"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == refusal);
    r = run({"-c"}, "mine too?\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == refusal);
    BOOST_TEST(r.out == "");
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--delete-session", id, "-y"},
                                               {"--delete-session", id, "--permanent", "-y"},
                                               {"--rename", id, "not while it is open"},
                                               {"--pin", id},
                                               {"--unpin", id}}) {
        r = run(args);
        BOOST_TEST(describe_status(r.status) == "exit 1", args[0]);
        BOOST_TEST(r.err == refusal, args[0]);
    }
    BOOST_TEST(stored_sessions().at(0).title == "mine");
    BOOST_TEST(!stored_sessions().at(0).pinned);
    // A fork needs no lease: it copies what the writer has saved.
    r = run({"--fork", id});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(stored(lines_of(r.out).at(0)).exchanges.size() == 1u);

    // The first one still works, and once it has gone the session is free.
    first.write("still mine\n");
    first.expect_out(offline(1, "mine", "still mine") + "\n");
    BOOST_TEST(describe_status(first.wait()) == "exit 0");
    r = run({"-s", id, "-p", "now mine"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(stored(id).exchanges.size() == 3u);
}

namespace {
// An agent that answers "fast answer", except for a question with "slow" (sleeps) or
// "stubborn" (ignores SIGTERM, and writes to ticks while it lives on after one): those
// first write their process group id to agent.pgid.
std::string slow_agent(const cli& c) {
    std::string script = R"(input=$(cat)
read -r _ _ _ _ pgid _ < /proc/$$/stat
case $input in
*stubborn*)
    trap 'echo term >> @DIR@/terms' TERM
    echo $pgid > @DIR@/pgid.tmp; mv @DIR@/pgid.tmp @DIR@/agent.pgid
    while :; do sleep 0.1; [ -f @DIR@/terms ] && echo tick >> @DIR@/ticks; done;;
*slow*)
    echo $pgid > @DIR@/pgid.tmp; mv @DIR@/pgid.tmp @DIR@/agent.pgid
    sleep 300; echo too late;;
esac
echo fast answer
)";
    for (auto at = script.find("@DIR@"); at != std::string::npos; at = script.find("@DIR@"))
        script.replace(at, 5, c.dir());
    return c.agent("slow", script);
}
} // namespace

BOOST_FIXTURE_TEST_CASE(sigint_while_the_agent_runs_stops_it_and_saves_nothing, cli) {
    dexter_process p({"--agent-cmd", slow_agent(*this)}, env());
    p.expect_out("new session ");
    p.write("a slow question\n");
    const pid_t pgid = std::stoi(wait_for_file(tmp.path() / "agent.pgid"));
    BOOST_TEST(pgid != p.pid()); // its own group
    ::kill(p.pid(), SIGINT);
    p.expect_err("dexter: interrupted; nothing saved for this question\n");
    wait_until_group_gone(pgid);

    // The loop goes on.
    p.write("a quick question\n");
    p.expect_out("fast answer\n");
    BOOST_TEST(describe_status(p.wait()) == "exit 0");
    BOOST_TEST(p.out().find("too late") == std::string::npos);
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(queries_of(stored(all[0].id)) == std::vector<std::string>{"a quick question"},
               boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(a_second_sigint_while_the_agent_is_stopped_exits_130, cli) {
    dexter_process p({"--agent-cmd", slow_agent(*this)}, env());
    p.expect_out("new session ");
    p.write("a stubborn question\n");
    const pid_t pgid = std::stoi(wait_for_file(tmp.path() / "agent.pgid"));
    ::kill(p.pid(), SIGINT);
    wait_for_file(tmp.path() / "ticks"); // it got SIGTERM, and lives on (the grace)
    ::kill(p.pid(), SIGINT);
    BOOST_TEST(describe_status(p.wait()) == "exit 130");
    BOOST_TEST(p.err() == "dexter: interrupted; nothing saved for this question\n");
    wait_until_group_gone(pgid);
    BOOST_TEST(stored_sessions().empty());
}

BOOST_FIXTURE_TEST_CASE(sigint_at_the_prompt_exits_130_and_keeps_what_was_answered, cli) {
    dexter_process p({}, env());
    p.write("before ctrl-c\n");
    p.expect_out(offline(0, "", "before ctrl-c") + "\n");
    ::kill(p.pid(), SIGINT);
    BOOST_TEST(describe_status(p.wait()) == "exit 130");
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(all[0].exchange_count == 1u);
}

BOOST_FIXTURE_TEST_CASE(sigint_during_a_one_shot_exits_130, cli) {
    dexter_process p({"--agent-cmd", slow_agent(*this), "-p", "a slow one"}, env());
    p.close_input(); // an open pipe would be read, to its end, as the question's context
    const pid_t pgid = std::stoi(wait_for_file(tmp.path() / "agent.pgid"));
    ::kill(p.pid(), SIGINT);
    BOOST_TEST(describe_status(p.wait()) == "exit 130");
    BOOST_TEST(p.err() == "dexter: interrupted; nothing saved for this question\n");
    BOOST_TEST(p.out() == "");
    wait_until_group_gone(pgid);
    BOOST_TEST(stored_sessions().empty());
}

// --- changing sessions: rename, pins, fork, import, trash, prune, incognito ---------------

namespace {

// Now, in the stored resolution, minus `d`.
template <class Duration>
ds::time_point ago(Duration d) {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()) -
           std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// The ids at the start of the rows of a table (lines that start with an id and two spaces).
std::vector<std::string> row_ids(const std::string& out) {
    static const std::regex row("([0-9a-z]{8})  .*");
    std::vector<std::string> ids;
    std::smatch m;
    for (const auto& line : lines_of(out))
        if (std::regex_match(line, m, row))
            ids.push_back(m[1]);
    return ids;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::vector<std::string> ids_of(const std::vector<ds::session_meta>& all) {
    std::vector<std::string> ids;
    for (const auto& m : all)
        ids.push_back(m.id);
    return sorted(ids);
}

// Every file and directory under `dir`.
std::vector<std::string> everything_under(const fs::path& dir) {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        found.push_back(e.path().string());
    return found;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(rename_by_id_or_prefix, cli) {
    const std::string id = make_session({"old title"});
    auto r = run({"--rename", id.substr(0, 5), "A \"new\" title"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "renamed session " + id + " to \"A \"new\" title\"\n");
    BOOST_TEST(stored_sessions().at(0).title == "A \"new\" title");
    BOOST_TEST(stored(id).exchanges.size() == 1u); // the exchanges are untouched

    r = run({"--rename", "zz99zz99", "x"});
    BOOST_TEST(describe_status(r.status) + " " + r.err ==
               "exit 1 dexter: no session 'zz99zz99' in " + sessions.string() +
                   " (see --list-sessions)\n");
    r = run({"--rename", id, ""});
    BOOST_TEST(describe_status(r.status) == "exit 2");
    BOOST_TEST(stored_sessions().at(0).title == "A \"new\" title");
}

BOOST_FIXTURE_TEST_CASE(pinned_sessions_are_marked_in_the_list, cli) {
    const std::string plain = make_session({"plain"});
    const std::string pinned = make_session({"keeper"});
    auto r = run({"--pin", pinned.substr(0, 6)});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "pinned session " + pinned + "\n");

    r = run({"--list-sessions"});
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 3u, r.out);
    BOOST_TEST(lines[1].starts_with(pinned));
    BOOST_TEST(lines[1].ends_with("  [pinned] keeper"), lines[1]);
    BOOST_TEST(lines[2].ends_with("  plain"), lines[2]);
    const json::value v = json::parse(run({"--list-sessions", "--json"}).out);
    BOOST_TEST(v.at(0).at("pinned").as_bool() == true);
    BOOST_TEST(v.at(1).at("pinned").as_bool() == false);

    r = run({"--unpin", pinned});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "unpinned session " + pinned + "\n");
    BOOST_TEST(run({"--list-sessions"}).out.find("[pinned]") == std::string::npos);
    for (const auto& m : stored_sessions())
        BOOST_TEST(!m.pinned, m.id);
    r = run({"--pin", "zz99zz99"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: no session 'zz99zz99'"), r.err);
}

BOOST_FIXTURE_TEST_CASE(fork_prints_the_new_id_and_copies_the_exchanges, cli) {
    const std::string id = make_session({"q1", "q2", "q3"});
    auto r = run({"--fork", id + "@2"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.err == "");
    static const std::regex alone("([0-9a-z]{8})\n");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_match(r.out, m, alone), r.out);
    const std::string fork = m[1];
    BOOST_TEST(fork != id);
    const auto copy = stored(fork);
    const auto source = stored(id);
    BOOST_TEST(queries_of(copy) == (std::vector<std::string>{"q1", "q2"}),
               boost::test_tools::per_element());
    BOOST_TEST((copy.exchanges.at(1).timestamp == source.exchanges.at(1).timestamp));
    BOOST_TEST(copy.meta.title == "q1");
    BOOST_TEST(queries_of(source) == (std::vector<std::string>{"q1", "q2", "q3"}),
               boost::test_tools::per_element());
    // The origin is in the listing's JSON.
    const json::value v = json::parse(run({"--list-sessions", "--json"}).out);
    bool seen = false;
    for (const auto& e : v.as_array())
        if (e.at("id").as_string() == fork) {
            seen = true;
            BOOST_TEST(e.at("forked_from").at("id").as_string() == id);
            BOOST_TEST(e.at("forked_from").at("seq").to_number<int>() == 2);
        } else {
            BOOST_TEST(!e.as_object().contains("forked_from"));
        }
    BOOST_TEST(seen);

    // Without @SEQ, every exchange; by prefix.
    r = run({"--fork", id.substr(0, 5)});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(stored(lines_of(r.out).at(0)).exchanges.size() == 3u);

    // Errors: past the end, an unknown session.
    r = run({"--fork", id + "@4"});
    BOOST_TEST(describe_status(r.status) + " " + r.err ==
               "exit 1 dexter: cannot fork session '" + id +
                   "' at exchange 4: it has exchanges 1 to 3\n");
    r = run({"--fork", "zz99zz99"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: no session 'zz99zz99'"), r.err);
    BOOST_TEST(stored_sessions().size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(fork_with_a_prompt_continues_in_the_fork, cli) {
    const std::string id = make_session({"q1", "q2"});
    auto r = run({"--fork", id + "@1", "-p", "another way"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 2u, r.out);
    const std::string fork = lines[0];
    BOOST_TEST(lines[1] == offline(1, "q1", "another way"));
    BOOST_TEST(queries_of(stored(fork)) == (std::vector<std::string>{"q1", "another way"}),
               boost::test_tools::per_element());
    BOOST_TEST(queries_of(stored(id)) == (std::vector<std::string>{"q1", "q2"}),
               boost::test_tools::per_element());

    // With --json: the JSON alone, whose session_id is the fork's.
    r = run({"--fork", id, "-p", "as json", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const json::value v = json::parse(r.out);
    const std::string fork2(v.at("session_id").as_string());
    BOOST_TEST(fork2 != id);
    BOOST_TEST(fork2 != fork);
    BOOST_TEST(v.at("seq").to_number<int>() == 3);
    BOOST_TEST(stored(fork2).exchanges.size() == 3u);
    BOOST_TEST(stored(id).exchanges.size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(fork_on_a_terminal_continues_interactively, cli) {
    const std::string id = make_session({"q1", "q2"});
    pty_dexter t({"--fork", id}, env());
    t.expect("forked session ");
    static const std::regex banner(
        "\n?([0-9a-z]{8})\r\ndexter " DEXTER_SESSIONS_VERSION
        " \xE2\x80\x94 forked session ([0-9a-z]{8}) from ([0-9a-z]{8})@2 "
        "\\(2 exchanges\\)");
    t.expect("(2 exchanges)");
    std::smatch m;
    const std::string shown = t.output();
    BOOST_TEST_REQUIRE(std::regex_search(shown, m, banner), shown);
    const std::string fork = m[1];
    BOOST_TEST(m[2] == fork);
    BOOST_TEST(m[3] == id);
    t.expect("> ");
    t.type("in the fork\n");
    t.expect(offline(2, "q2", "in the fork"));
    t.expect("> ");
    t.type("\x04");
    BOOST_TEST(describe_status(t.wait()) == "exit 0");
    BOOST_TEST(stored(fork).exchanges.size() == 3u);
    BOOST_TEST(stored(id).exchanges.size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(import_prints_the_new_id_and_says_when_it_changed, cli) {
    const std::string id = make_session({"q1", "q2"});
    const fs::path file = tmp.path() / "s.jsonl";
    BOOST_TEST_REQUIRE(
        describe_status(run({"--export", id, "--format", "jsonl", "-o", file.string()}).status) ==
        "exit 0");

    // Into another store: the original id.
    const fs::path elsewhere = tmp.path() / "elsewhere";
    auto r = run({"--import", file.string(), "--sessions-dir", elsewhere.string()});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == id + "\n");
    BOOST_TEST(r.err == "");
    BOOST_TEST(queries_of(ds::jsonl_store(elsewhere).load(id)) ==
                   (std::vector<std::string>{"q1", "q2"}),
               boost::test_tools::per_element());

    // Into the same store: the id is taken, a fresh one is given and said.
    r = run({"--import", file.string()});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 1u, r.out);
    const std::string fresh = lines[0];
    BOOST_TEST(fresh != id);
    BOOST_TEST(r.err.find(id) != std::string::npos, r.err);
    BOOST_TEST(r.err.find(fresh) != std::string::npos, r.err);
    BOOST_TEST(lines_of(r.err).size() == 1u, r.err);
    const auto copy = stored(fresh), original = stored(id);
    BOOST_TEST(queries_of(copy) == queries_of(original), boost::test_tools::per_element());
    BOOST_TEST((copy.exchanges.at(0).timestamp == original.exchanges.at(0).timestamp));

    // From standard input, with a damaged line: one warning line, the rest imported.
    std::string text = read_text(file);
    const auto second = text.find('\n', text.find('\n') + 1); // after the header and ex 1
    text.insert(second + 1, "{not json\n");
    r = run({"--import", "-", "--sessions-dir", (tmp.path() / "third").string()}, text);
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == id + "\n");
    BOOST_TEST(lines_of(r.err).size() == 1u, r.err);
    BOOST_TEST(r.err.starts_with("dexter: warning: session " + id + ": 1 damaged line skipped"),
               r.err);

    // A file that is not there.
    r = run({"--import", (tmp.path() / "missing.jsonl").string()});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: cannot read "), r.err);
    BOOST_TEST(lines_of(r.err).size() == 1u);
    BOOST_TEST(stored_sessions().size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(delete_list_trash_and_restore_round_trip, cli) {
    const std::string keep = make_session({"keep me"});
    const std::string gone = make_session({"delete me", "twice"});
    const auto before = stored(gone);
    BOOST_TEST(run({"--list-trash"}).out == "the trash of " + sessions.string() + " is empty\n");

    auto r = run({"--delete-session", gone});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(ids_of(stored_sessions()) == std::vector<std::string>{keep},
               boost::test_tools::per_element());
    // Neither shown, nor searched, nor resumed.
    BOOST_TEST(describe_status(run({"--show", gone}).status) == "exit 1");
    BOOST_TEST(describe_status(run({"--search", "delete me"}).status) == "exit 1");
    BOOST_TEST(describe_status(run({"-s", gone, "-p", "q"}).status) == "exit 1");

    r = run({"--list-trash"}, {}, {{"COLUMNS", "60"}});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 2u, r.out);
    BOOST_TEST(lines[0] == "ID        DELETED           EXCHANGES  TITLE");
    static const std::regex row(
        "([0-9a-z]{8})  (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d)  +(\\d+)  (.*)");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_match(lines[1], m, row), lines[1]);
    BOOST_TEST(m[1] == gone);
    BOOST_TEST(m[3] == "2");
    BOOST_TEST(m[4] == "delete me");

    r = run({"--list-trash", "--json"});
    const json::value v = json::parse(r.out);
    BOOST_TEST_REQUIRE(v.as_array().size() == 1u);
    BOOST_TEST(v.at(0).at("id").as_string() == gone);
    BOOST_TEST(v.at(0).at("title").as_string() == "delete me");
    BOOST_TEST(v.at(0).at("exchange_count").to_number<int>() == 2);
    BOOST_TEST(v.at(0).at("pinned").as_bool() == false);
    const auto deleted = ds::parse_timestamp(std::string(v.at(0).at("deleted_at").as_string()));
    BOOST_TEST_REQUIRE(deleted.has_value());
    BOOST_TEST((*deleted >= before.meta.updated_at));
    // The table's time is the deletion time, in local time (TZ=UTC here).
    std::string utc = std::string(v.at(0).at("deleted_at").as_string()).substr(0, 16);
    utc[10] = ' ';
    BOOST_TEST(m[2] == utc);

    // Restored by a prefix of the trashed id: the same id, the same exchanges.
    std::size_t n = 4;
    while (n < 8 && keep.compare(0, n, gone, 0, n) == 0)
        ++n;
    r = run({"--restore", gone.substr(0, n)});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "restored session " + gone + "\n");
    BOOST_TEST(ids_of(stored_sessions()) == sorted({keep, gone}), boost::test_tools::per_element());
    const auto after = stored(gone);
    BOOST_TEST(queries_of(after) == queries_of(before), boost::test_tools::per_element());
    BOOST_TEST((after.meta.updated_at == before.meta.updated_at));
    BOOST_TEST(run({"--list-trash", "--json"}).out == "[]\n");
    BOOST_TEST(describe_status(run({"-s", gone, "-p", "back"}).status) == "exit 0");

    // Restoring what is not in the trash.
    r = run({"--restore", gone});
    BOOST_TEST(describe_status(r.status) + " " + r.err ==
               "exit 1 dexter: no session '" + gone + "' in the trash of " + sessions.string() +
                   " (see --list-trash)\n");
    r = run({"--restore", "zz99"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: no session 'zz99' in the trash"), r.err);
}

BOOST_FIXTURE_TEST_CASE(purge_trash_asks_then_deletes_for_good, cli) {
    const std::string a = make_session({"a"});
    const std::string b = make_session({"b"});
    const std::string live = make_session({"live"});
    BOOST_TEST_REQUIRE(describe_status(run({"--delete-session", a}).status) == "exit 0");
    BOOST_TEST_REQUIRE(describe_status(run({"--delete-session", b}).status) == "exit 0");

    // Nothing was deleted a day ago.
    auto r = run({"--purge-trash", "--older-than", "1d", "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.starts_with("nothing to purge"), r.out);
    BOOST_TEST(json::parse(run({"--list-trash", "--json"}).out).as_array().size() == 2u);

    // Without a terminal and without -y: refused, nothing purged.
    r = run({"--purge-trash", "--older-than", "0d"}, "y\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: not purging the trash without confirmation: standard input is "
                        "not a terminal (add -y to purge without asking)\n");
    BOOST_TEST(sorted(row_ids(r.out)) == sorted({a, b}), boost::test_tools::per_element());
    BOOST_TEST(json::parse(run({"--list-trash", "--json"}).out).as_array().size() == 2u);

    // On a terminal: asks; no keeps everything.
    {
        pty_dexter t({"--purge-trash", "--older-than", "0s"}, env());
        t.expect("Delete them for good? [y/N] ");
        t.type("n\n");
        t.expect("kept the trash as it is");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(json::parse(run({"--list-trash", "--json"}).out).as_array().size() == 2u);
    {
        pty_dexter t({"--purge-trash", "--older-than", "0s"}, env());
        t.expect("Delete them for good? [y/N] ");
        t.type("y\n");
        t.expect("purged session ");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
        BOOST_TEST(count_of(t.output(), "purged session ") == 2u, t.output());
    }
    BOOST_TEST(run({"--list-trash", "--json"}).out == "[]\n");
    r = run({"--purge-trash", "--older-than", "0d"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "the trash of " + sessions.string() + " is empty\n");
    BOOST_TEST(ids_of(stored_sessions()) == std::vector<std::string>{live},
               boost::test_tools::per_element());
    BOOST_TEST(describe_status(run({"--restore", a}).status) == "exit 1");
}

BOOST_FIXTURE_TEST_CASE(prune_dry_run_changes_nothing_and_lists_what_a_real_run_moves, cli) {
    write_session("old00001", "old one", {{"q", "a"}}, ago(std::chrono::days(60)));
    write_session("old00002", "old two", {{"q", "a"}, {"q2", "a2"}}, ago(std::chrono::days(45)));
    write_session("old00003", "old but pinned", {{"q", "a"}}, ago(std::chrono::days(90)));
    write_session("mid00001", "twenty days", {{"q", "a"}}, ago(std::chrono::days(20)));
    const std::string fresh = make_session({"fresh"});
    BOOST_TEST_REQUIRE(describe_status(run({"--pin", "old00003"}).status) == "exit 0");

    const std::string listing = run({"--list-sessions", "--json"}).out;
    auto r = run({"--prune", "--older-than", "30d", "--dry-run"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.starts_with("would move 2 sessions to the trash:\n"), r.out);
    const auto would = row_ids(r.out);
    BOOST_TEST(would == (std::vector<std::string>{"old00002", "old00001"}),
               boost::test_tools::per_element()); // most recently updated first
    BOOST_TEST(r.out.find("kept session old00003: pinned\n") != std::string::npos, r.out);
    BOOST_TEST(run({"--list-sessions", "--json"}).out == listing);
    BOOST_TEST(run({"--list-trash", "--json"}).out == "[]\n");

    // A real run without a terminal needs -y.
    r = run({"--prune", "--older-than", "30d"}, "y\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err.starts_with("dexter: not pruning without confirmation"), r.err);
    BOOST_TEST(run({"--list-sessions", "--json"}).out == listing);

    r = run({"--prune", "--older-than", "30d", "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    std::vector<std::string> moved;
    for (const auto& line : lines_of(r.out))
        if (line.starts_with("moved session "))
            moved.push_back(line.substr(14, 8));
    BOOST_TEST(sorted(moved) == sorted(would), boost::test_tools::per_element());
    BOOST_TEST(r.out.find("kept session old00003: pinned\n") != std::string::npos, r.out);
    BOOST_TEST(ids_of(stored_sessions()) == sorted({"mid00001", "old00003", fresh}),
               boost::test_tools::per_element());
    std::vector<std::string> trashed;
    const json::value trash = json::parse(run({"--list-trash", "--json"}).out);
    for (const auto& t : trash.as_array())
        trashed.emplace_back(t.at("id").as_string());
    BOOST_TEST(sorted(trashed) == sorted(would), boost::test_tools::per_element());

    // Nothing left to prune at 30 days; on a terminal the question comes first.
    r = run({"--prune", "--older-than", "30d", "--dry-run"});
    BOOST_TEST(r.out.starts_with("nothing to prune"), r.out);
    {
        pty_dexter t({"--prune", "--older-than", "2w"}, env());
        t.expect("to move 1 session to the trash:");
        t.expect("mid00001");
        t.expect("Move them to the trash? [y/N] ");
        t.type("n\n");
        t.expect("moved nothing");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(stored_sessions().size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(incognito_writes_nothing_anywhere, cli) {
    const fs::path home = tmp.path() / "home", store = tmp.path() / "store",
                   cwd = tmp.path() / "cwd", tmpdir = tmp.path() / "tmpdir";
    for (const auto& d : {home, store, cwd, tmpdir})
        fs::create_directories(d);
    const env_changes where{{"HOME", home.string()},
                            {"DEXTER_SESSIONS_DIR", store.string()},
                            {"TMPDIR", tmpdir.string()},
                            {"XDG_DATA_HOME", std::nullopt},
                            {"XDG_STATE_HOME", std::nullopt}};
    auto r = run({"--incognito"}, "first\nsecond\n/rename secret\n/fork\nthird\n", where, cwd);
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.err == "");
    static const std::regex banner("dexter " DEXTER_SESSIONS_VERSION
                                   " \xE2\x80\x94 incognito session ([0-9a-z]{8}): nothing will "
                                   "be saved\n");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(r.out, m, banner), r.out);
    // The conversation has its context, and /fork continues it, all in memory.
    BOOST_TEST(r.out.find(offline(1, "first", "second")) != std::string::npos, r.out);
    BOOST_TEST(r.out.find("now in session ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(offline(2, "second", "third")) != std::string::npos, r.out);

    r = run({"--incognito", "-p", "one shot", "--json"}, {}, where, cwd);
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(json::parse(r.out).at("answer").as_string() == offline(0, "", "one shot"));

    for (const auto& d : {home, store, cwd, tmpdir})
        BOOST_TEST(everything_under(d).empty(), d);
    BOOST_TEST(!fs::exists(sessions));
    BOOST_TEST(!fs::exists(cwd / ".dexter"));
}

BOOST_FIXTURE_TEST_CASE(slash_commands_rename_fork_help_and_refuse_the_rest, cli) {
    const std::string record = agent("record", "cat >> " + dir() + "/requests.jsonl\necho ok\n");
    auto r = run({"--agent-cmd", record},
                 "/rename Chosen before\n/fork\nq1\n/help\n/frobnicate now\n/rename  Later "
                 "title \nq2\n/fork\nq3\n//usr is where?\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const std::string id = banner_id(r.out);
    const auto errors = lines_of(r.err);
    BOOST_TEST_REQUIRE(errors.size() == 2u, r.err);
    BOOST_TEST(errors[0] == "dexter: nothing to fork yet: this session has no exchange");
    BOOST_TEST(errors[1] ==
               "dexter: unknown command /frobnicate (type /help; to ask a question that starts "
               "with /, type // for its /)");
    BOOST_TEST(r.out.find("session " + id + " will be titled \"Chosen before\"\n") !=
                   std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("/rename TITLE") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("/fork ") != std::string::npos);
    BOOST_TEST(r.out.find("/help ") != std::string::npos);
    BOOST_TEST(r.out.find("exit, quit") != std::string::npos);
    BOOST_TEST(r.out.find("renamed session " + id + " to \"Later title\"\n") != std::string::npos,
               r.out);
    static const std::regex forked("now in session ([0-9a-z]{8}), a fork of ([0-9a-z]{8})@2 ");
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(r.out, m, forked), r.out);
    const std::string fork = m[1];
    BOOST_TEST(m[2] == id);

    // Only the questions reached the agent.
    std::ifstream in(tmp.path() / "requests.jsonl");
    std::vector<std::string> asked;
    for (std::string line; std::getline(in, line);) {
        const json::value request = json::parse(line);
        asked.emplace_back(request.at("messages").as_array().back().at("content").as_string());
    }
    BOOST_TEST(asked == (std::vector<std::string>{"q1", "q2", "q3", "/usr is where?"}),
               boost::test_tools::per_element());
    const auto original = stored(id);
    BOOST_TEST(original.meta.title == "Later title");
    BOOST_TEST(queries_of(original) == (std::vector<std::string>{"q1", "q2"}),
               boost::test_tools::per_element());
    const auto copy = stored(fork);
    BOOST_TEST(copy.meta.title == "Later title");
    BOOST_TEST(queries_of(copy) == (std::vector<std::string>{"q1", "q2", "q3", "/usr is where?"}),
               boost::test_tools::per_element());
    BOOST_TEST((copy.meta.forked_from && copy.meta.forked_from->id == id &&
                copy.meta.forked_from->seq == 2u));
}

// --- the habits of agent CLIs: a question as words, piped context, -p -, -r ------------------

BOOST_FIXTURE_TEST_CASE(piped_input_follows_the_question_and_p_dash_reads_it, cli) {
    const std::string record = agent("record", "cat >> " + dir() +
                                                   "/requests.jsonl\n"
                                                   "echo >> " +
                                                   dir() +
                                                   "/requests.jsonl\n"
                                                   "echo answered\n");
    const auto asked = [&] {
        std::ifstream in(tmp.path() / "requests.jsonl");
        std::vector<std::string> questions;
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) // the agent adds a newline after a request that has one
                questions.emplace_back(
                    json::parse(line).at("messages").as_array().back().at("content").as_string());
        return questions;
    };
    // A question as words; then with a report piped in; then the question itself piped.
    auto r = run({"--agent-cmd", record, "what", "is", "X?"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    r = run({"--agent-cmd", record, "-c", "-p", "summarise"}, "REPORT\nline 2\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    r = run({"--agent-cmd", record, "-c", "-p", "-"}, "a question\nover two lines\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    // Standard input that is not a pipe or a file (here /dev/null) adds nothing.
    const int out = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    r = run_with_stdout({"--agent-cmd", record, "-c", "plain"}, out);
    ::close(out);
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    const std::vector<std::string> expected{"what is X?", "summarise\n\nREPORT\nline 2",
                                            "a question\nover two lines", "plain"};
    BOOST_TEST(asked() == expected, boost::test_tools::per_element());
    const auto sessions_now = stored_sessions();
    BOOST_TEST_REQUIRE(sessions_now.size() == 1u);
    BOOST_TEST(queries_of(stored(sessions_now[0].id)) == expected,
               boost::test_tools::per_element());

    // Beyond the cap, not UTF-8, or no question at all: a clear error, nothing asked.
    r = run({"--agent-cmd", record, "-p", "summarise"}, std::string(1024 * 1024 + 1, 'a'));
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: standard input holds more than 1 MiB; a question takes at most "
                        "1 MiB of it (nothing asked)\n");
    r = run({"--agent-cmd", record, "-p", "summarise"}, "caf\xe9\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: standard input is not valid UTF-8 text (nothing asked)\n");
    r = run({"--agent-cmd", record, "-p", "-"}, " \n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: -p -: standard input holds no question (nothing asked)\n");
    BOOST_TEST(asked().size() == expected.size());
    BOOST_TEST(stored_sessions().size() == 1u);
    // Exactly the cap is taken.
    r = run({"-p", "big"}, std::string(1024 * 1024, 'b'));
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
}

BOOST_FIXTURE_TEST_CASE(ctrl_c_while_piped_input_is_awaited_asks_nothing, cli) {
    const std::string record = agent("record", "cat > " + dir() + "/asked\necho answered\n");
    dexter_process p({"--agent-cmd", record, "-p", "summarise"}, env());
    p.write("the first half of a report, then the writer stalls\n");
    p.wait_until_blocked_reading_input();
    ::kill(p.pid(), SIGINT);
    BOOST_TEST(describe_status(p.wait()) == "killed by signal 2");
    BOOST_TEST(!fs::exists(tmp.path() / "asked"));
    BOOST_TEST(stored_sessions().empty());
}

BOOST_FIXTURE_TEST_CASE(resume_without_an_id_picks_from_a_numbered_list, cli) {
    // Without a terminal, or with nothing to pick: a clear error.
    auto r = run({"-r"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.err == "dexter: -r without an ID picks a session on a terminal; give the "
                        "session: -r ID, or -c for the most recent one\n");
    {
        pty_dexter t({"-r"}, env());
        t.expect("dexter: no sessions to resume in ");
        BOOST_TEST(describe_status(t.wait()) == "exit 1");
    }
    write_session("aaaa0001", "oldest", {{"q1", "a1"}}, test_time(0));
    write_session("aaaa0002", "middle", {{"q2", "a2"}}, test_time(10));
    write_session("aaaa0003", "newest", {{"q3", "a3"}}, test_time(20));
    {
        pty_dexter t({"-r"}, env());
        t.expect("   1 aaaa0003");
        t.expect("   2 aaaa0002");
        t.expect("   3 aaaa0001");
        t.expect("resume which? [1-3, Enter: none] ");
        t.type("9\n");
        t.expect("expected a number from 1 to 3");
        t.type(" 2 \n");
        t.expect("resumed session aaaa0002 (1 exchange)");
        t.type("more\n");
        t.expect("You asked: \"more\"");
        t.type("\x04");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(queries_of(stored("aaaa0002")) == (std::vector<std::string>{"q2", "more"}),
               boost::test_tools::per_element());
    {
        pty_dexter t({"-r"}, env());
        t.expect("resume which? ");
        t.type("\n");
        t.expect("no session resumed");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    {
        // With a question: picked, asked, saved, exit.
        pty_dexter t({"-r", "One more?"}, env());
        t.expect("resume which? ");
        t.type("3\n");
        t.expect("You asked: \"One more?\"");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(queries_of(stored("aaaa0001")) == (std::vector<std::string>{"q1", "One more?"}),
               boost::test_tools::per_element());
    // -r ID is -s ID.
    r = run({"-r", "aaaa0003"}, "again\n");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(banner_id(r.out) == "aaaa0003");
}

// --- streamed answers (agent protocol 2) -----------------------------------------------------

namespace {

// An agent that writes `first`, waits until the test creates the file "go", then writes
// `second`: what dexter shows before "go" exists arrived while the agent still ran.
std::string two_part_agent(const cli& c, const std::string& first, const std::string& second,
                           int status = 0) {
    return c.agent("two_part", "cat > /dev/null\nprintf '%s' \"$DEXTER_AGENT_PROTOCOL\" > " +
                                   c.dir() + "/protocol\nprintf '" + first + "'\nwhile [ ! -e " +
                                   c.dir() + "/go ]; do sleep 0.02; done\nprintf '" + second +
                                   "'\nexit " + std::to_string(status) + "\n");
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_streamed_answer_is_shown_as_it_arrives_and_marked_until_saved, cli) {
    const std::string streaming = two_part_agent(*this, "first part, ", "second part\\n");
    pty_dexter t({"--agent-cmd", streaming, "tell me"}, env({{"NO_COLOR", "1"}}));
    t.expect("first part, \x1b"
             "7…\x1b"
             "8"); // shown, marked as in progress
    BOOST_TEST(read_text(tmp.path() / "protocol") == "2");
    BOOST_TEST(stored_sessions().empty()); // nothing is saved while it streams
    std::ofstream(tmp.path() / "go").put('\n');
    t.expect("\x1b[Ksecond part\r\n");
    BOOST_TEST(describe_status(t.wait()) == "exit 0");
    // Nothing follows a saved answer; it was shown once.
    BOOST_TEST(t.output().ends_with("second part\r\n"
                                    "\x1b"
                                    "7…\x1b"
                                    "8\x1b[K"),
               t.output());
    BOOST_TEST(count_of(t.output(), "first part") == 1u);
    const auto all = stored_sessions();
    BOOST_TEST_REQUIRE(all.size() == 1u);
    BOOST_TEST(stored(all[0].id).exchanges.at(0).answer == "first part, second part");
}

BOOST_FIXTURE_TEST_CASE(a_spinner_waits_for_the_first_byte_on_a_terminal, cli) {
    const std::string late = two_part_agent(*this, "", "at last\\n");
    pty_dexter t({"--agent-cmd", late, "-p", "slow?"}, env());
    t.expect(" waiting for the agent 0s\x1b[K");
    std::ofstream(tmp.path() / "go").put('\n');
    t.expect("\r\x1b[K"); // the spinner's line cleared
    t.expect("at last");
    BOOST_TEST(describe_status(t.wait()) == "exit 0");
    // Not on a pipe: there the answer is printed once saved, and standard error stays clean.
    fs::remove(tmp.path() / "go");
    dexter_process p({"--agent-cmd", late, "-c", "-p", "piped?"}, env());
    p.close_input();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(p.out().empty());
    std::ofstream(tmp.path() / "go").put('\n');
    BOOST_TEST(describe_status(p.wait()) == "exit 0");
    BOOST_TEST(p.out() == "at last\n");
    BOOST_TEST(p.err() == "");
}

BOOST_FIXTURE_TEST_CASE(an_interrupted_stream_stays_on_screen_marked_and_saves_nothing, cli) {
    const std::string streaming = two_part_agent(*this, "half an answer", " never");
    pty_dexter t({"--agent-cmd", streaming}, env({{"NO_COLOR", "1"}}));
    t.expect("> ");
    t.type("question\n");
    t.expect("half an answer");
    t.type("\x03");                       // Ctrl-C
    t.expect("\x1b[K [interrupted]\r\n"); // after the ^C the terminal echoes
    t.expect("dexter: interrupted; nothing saved for this question");
    t.expect("> ");
    t.type("\x04");
    BOOST_TEST(describe_status(t.wait()) == "exit 0");
    BOOST_TEST(stored_sessions().empty());
}

BOOST_FIXTURE_TEST_CASE(a_streamed_answer_the_store_refuses_says_not_saved, cli) {
    // Shown as it arrived, then refused by the store (not UTF-8): marked, said, exit 1.
    const std::string bad = two_part_agent(*this, "caf\\351 ", "au lait\\n");
    std::ofstream(tmp.path() / "go").put('\n');
    pty_dexter t({"--agent-cmd", bad, "-p", "coffee?"}, env({{"NO_COLOR", "1"}}));
    t.expect("caf\\xE9 "); // made visible
    t.expect("au lait\r\n");
    t.expect("\x1b[K[NOT saved]\r\n");
    t.expect("dexter: answer NOT saved: ");
    BOOST_TEST(describe_status(t.wait()) == "exit 1");
    BOOST_TEST(stored_sessions().empty());
    // A failing agent's partial output is marked too.
    fs::remove(tmp.path() / "go");
    const std::string failing = two_part_agent(*this, "some words", "", 3);
    std::ofstream(tmp.path() / "go").put('\n');
    pty_dexter f({"--agent-cmd", failing, "-p", "fail?"}, env({{"NO_COLOR", "1"}}));
    f.expect("some words");
    f.expect("\x1b[K [failed]\r\n");
    f.expect("dexter: the agent failed (exit status 3)");
    BOOST_TEST(describe_status(f.wait()) == "exit 1");
}

// --- what a resume rebuilt --------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(a_resume_that_skipped_or_repaired_says_so_in_one_line, cli) {
    const std::string id = make_session({"one", "two", "three", "four"});
    const fs::path file = sessions / "cli" / id / "history.jsonl";
    auto lines = lines_of(read_text(file));
    BOOST_TEST_REQUIRE(lines.size() == 5u);
    lines[2] = "{not json"; // exchange 2
    std::string text;
    for (const auto& l : lines)
        text += l + "\n";
    text += R"({"type":"exchange","seq":5,"ti)"; // a torn tail
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;

    // Interactive: the line comes right after the banner, on standard output; no
    // warning lines before it.
    auto r = run({"-s", id}, "");
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    auto out = lines_of(r.out);
    BOOST_TEST_REQUIRE(out.size() >= 2u, r.out);
    BOOST_TEST(out[0].find("resumed session " + id) != std::string::npos, r.out);
    BOOST_TEST(out[1] == "resumed with 1 damaged line skipped, 1 gap in the exchange numbers "
                         "and an incomplete last line moved to quarantine (see --verify)",
               r.out);
    BOOST_TEST(r.err.empty(), r.err);

    // The tail is repaired now; the damaged line stays until it is repaired.
    r = run({"-s", id}, "");
    out = lines_of(r.out);
    BOOST_TEST_REQUIRE(out.size() >= 2u, r.out);
    BOOST_TEST(out[1] == "resumed with 1 damaged line skipped and 1 gap in the exchange numbers "
                         "(see --verify)",
               r.out);

    // One-shot: no banner, so the line goes to standard error.
    r = run({"-s", id, "-p", "five"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.err == "dexter: session " + id +
                            " resumed with 1 damaged line skipped and 1 gap in the exchange "
                            "numbers (see --verify)\n",
               r.err);

    // A clean session says nothing of the kind.
    const std::string clean = make_session({"fine"});
    r = run({"-s", clean}, "");
    BOOST_TEST(r.out.find("resumed with") == std::string::npos, r.out);
}

BOOST_FIXTURE_TEST_CASE(explain_prints_the_report_and_the_messages_and_asks_nothing, cli) {
    const std::string id = make_session({"one", "two", "three", "four", "five"});
    const fs::path file = sessions / "cli" / id / "history.jsonl";
    auto lines = lines_of(read_text(file));
    lines[1] = "{not json"; // exchange 1
    std::string text;
    for (const auto& l : lines)
        text += l + "\n";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;

    // An agent that must never run: --explain asks nothing.
    const fs::path ran = tmp.path() / "agent-ran";
    const std::string never = agent("never", "touch " + shell_quote(ran.string()) + "\n");
    auto r = run({"-s", id, "--explain", "--agent-cmd", never});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(!fs::exists(ran));
    const auto out = lines_of(r.out);
    BOOST_TEST_REQUIRE(out.size() >= 6u, r.out);
    BOOST_TEST(out[0] == "session " + id + " · one", r.out);
    BOOST_TEST(out[1] == "exchanges: 5 in the session, 4 loaded (the newest)", r.out);
    BOOST_TEST(out[2] == "context: 4 of at most 10 turns sent, 3 in full and 1 as summaries",
               r.out);
    BOOST_TEST(out[3] == "skipped or repaired: 1 damaged line skipped", r.out);
    BOOST_TEST(out[4].starts_with("  line 2, byte "), r.out);
    BOOST_TEST(out[4].find("[damaged_line]: not valid JSON") != std::string::npos, r.out);
    // The messages, exactly as the agent gets them: 4 turns, the oldest as its summary.
    const auto at = r.out.find("messages the agent would be sent before the next question: 8\n");
    BOOST_TEST_REQUIRE(at != std::string::npos, r.out);
    const std::string messages = r.out.substr(at);
    BOOST_TEST(messages.find("--- 1 user\ntwo\n--- 2 assistant\n" + offline(1, "one", "two")) !=
                   std::string::npos,
               messages);
    BOOST_TEST(messages.find("--- 7 user\nfive\n--- 8 assistant\n" + offline(4, "four", "five")) !=
                   std::string::npos,
               messages);
    BOOST_TEST(stored(id).exchanges.size() == 4u); // nothing saved

    // As JSON: the report, and the messages as the request has them.
    r = run({"-s", id, "--explain", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    auto doc = json::parse(r.out).as_object();
    BOOST_TEST(doc.at("session").at("id").as_string() == id);
    const auto& report = doc.at("report").as_object();
    BOOST_TEST(report.at("exchanges_on_disk").to_number<int>() == 5);
    BOOST_TEST(report.at("exchanges_loaded").to_number<int>() == 4);
    BOOST_TEST(report.at("context").at("in_full").to_number<int>() == 3);
    BOOST_TEST(report.at("context").at("as_summaries").to_number<int>() == 1);
    BOOST_TEST_REQUIRE(report.at("session").as_array().size() == 1u, r.out);
    BOOST_TEST(report.at("session").at(0).at("kind").as_string() == "damaged_line");
    BOOST_TEST(report.at("session").at(0).at("line").to_number<int>() == 2);

    // With --history-limit 3 (and a prefix), the newest 3 turns in full; the damage is
    // not in what was read.
    r = run({"-s", id.substr(0, 5), "--explain", "--json", "--history-limit", "3"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    doc = json::parse(r.out).as_object();
    BOOST_TEST(doc.at("report").at("exchanges_loaded").to_number<int>() == 3);
    BOOST_TEST(doc.at("report").at("context").at("as_summaries").to_number<int>() == 0);
    BOOST_TEST(doc.at("report").at("session").as_array().empty());
    const auto& sent = doc.at("messages").as_array();
    BOOST_TEST_REQUIRE(sent.size() == 6u);
    BOOST_TEST(sent.at(0).at("role").as_string() == "user");
    BOOST_TEST(sent.at(0).at("content").as_string() == "three");
    BOOST_TEST(sent.at(5).at("content").as_string() == offline(4, "four", "five"));

    // --explain needs a session, and asks no question.
    r = run({"--explain"});
    BOOST_TEST(describe_status(r.status) == "exit 2");
    BOOST_TEST(r.err ==
                   "dexter: --explain needs a session: -s ID, -r ID or -c (see dexter --help)\n",
               r.err);
    r = run({"-s", id, "--explain", "-p", "hi"});
    BOOST_TEST(describe_status(r.status) == "exit 2");
    BOOST_TEST(r.err.find("--explain cannot be used with --prompt") != std::string::npos, r.err);
}

// --- --verify and --repair ----------------------------------------------------------

namespace {

// Reads a whole file (a history, in the verify tests).
std::string file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

BOOST_FIXTURE_TEST_CASE(verify_exits_0_when_clean_and_1_when_damaged, cli) {
    auto r = run({"--verify"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "no sessions in " + sessions.string() + "\n");
    BOOST_TEST(!fs::exists(sessions));

    const std::string good = make_session({"fine", "also fine"});
    const std::string bad = make_session({"one", "two", "three"});
    r = run({"--verify"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == "verified 2 sessions: no problem found\n");

    const fs::path file = sessions / "cli" / bad / "history.jsonl";
    const std::string before = file_bytes(file);
    const std::string torn = R"({"type":"exch)";
    std::ofstream(file, std::ios::app | std::ios::binary) << "not JSON\n" << torn;
    const std::string damaged = file_bytes(file);
    r = run({"--verify"});
    BOOST_TEST(describe_status(r.status) == "exit 1", r.err);
    BOOST_TEST(r.out.find(bad + ": 1 damaged line (line 5, offset " +
                          std::to_string(before.size()) + ": not valid JSON") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("an incomplete last line (" + std::to_string(torn.size()) +
                          " bytes at offset " + std::to_string(before.size() + 9) + ")") !=
                   std::string::npos,
               r.out);
    BOOST_TEST(r.out.find(good + ":") == std::string::npos, r.out);
    BOOST_TEST(r.out.find("verified 2 sessions: 1 session with problems") != std::string::npos,
               r.out);
    BOOST_TEST(file_bytes(file) == damaged); // read-only

    // One session, by prefix: the clean one passes.
    r = run({"--verify", good.substr(0, 5)});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.out + r.err);

    // --json parses and says the same.
    r = run({"--verify", "--json"});
    BOOST_TEST(describe_status(r.status) == "exit 1");
    const auto v = boost::json::parse(r.out).as_object();
    BOOST_TEST(v.at("ok").as_bool() == false);
    const auto& all = v.at("sessions").as_array();
    BOOST_TEST_REQUIRE(all.size() == 2u);
    for (const auto& s : all) {
        const auto& o = s.as_object();
        const bool is_bad = o.at("id").as_string() == bad;
        BOOST_TEST(o.at("ok").as_bool() == !is_bad);
        if (is_bad) {
            BOOST_TEST(o.at("damaged").as_array().size() == 1u);
            BOOST_TEST(o.at("damaged").as_array()[0].as_object().at("line").as_int64() == 5);
            BOOST_TEST(o.at("torn_tail").as_object().at("bytes").as_int64() ==
                       static_cast<std::int64_t>(torn.size()));
        }
    }
}

BOOST_FIXTURE_TEST_CASE(repair_without_a_terminal_is_refused_unless_yes, cli) {
    const std::string id = make_session({"one", "two"});
    const fs::path file = sessions / "cli" / id / "history.jsonl";
    std::ofstream(file, std::ios::app | std::ios::binary) << "garbage\n";
    const std::string damaged = file_bytes(file);
    auto r = run({"--repair"}, "y\n");
    BOOST_TEST(describe_status(r.status) == "exit 1");
    BOOST_TEST(r.out.find(id + ": 1 damaged line") != std::string::npos, r.out);
    BOOST_TEST(r.err == "dexter: not repairing the store without confirmation: standard input "
                        "is not a terminal (add -y to repair without asking)\n");
    BOOST_TEST(file_bytes(file) == damaged);

    r = run({"--repair", id, "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("session '" + id + "': moved 1 line to quarantine") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.ends_with("the store verifies clean\n"), r.out);
    BOOST_TEST(file_bytes(file) == damaged.substr(0, damaged.size() - 8));
    r = run({"--verify"});
    BOOST_TEST(describe_status(r.status) == "exit 0", r.out);
    r = run({"--repair", "-y"});
    BOOST_TEST(describe_status(r.status) == "exit 0");
    BOOST_TEST(r.out == "nothing to repair: every session is clean\n");
    BOOST_TEST(stored(id).exchanges.size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(repair_asks_on_a_terminal, cli) {
    const std::string id = make_session({"on a terminal"});
    const fs::path file = sessions / "cli" / id / "history.jsonl";
    std::ofstream(file, std::ios::app | std::ios::binary) << "garbage\n";
    const std::string damaged = file_bytes(file);
    {
        pty_dexter t({"--repair"}, env());
        t.expect("Repair the store? (damaged lines are moved to quarantine) [y/N] ");
        t.type("n\n");
        t.expect("changed nothing");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(file_bytes(file) == damaged);
    {
        pty_dexter t({"--repair", id}, env());
        t.expect("Repair session " + id + "? (damaged lines are moved to quarantine) [y/N] ");
        t.type("y\n");
        t.expect("the store verifies clean");
        BOOST_TEST(describe_status(t.wait()) == "exit 0");
    }
    BOOST_TEST(file_bytes(file) != damaged);
}
