// SPDX-License-Identifier: BSL-1.0
// A real process for the crash and concurrency tests of jsonl_store: it drives a
// session_manager over the file store and reports on stdout, one line per event, each in one
// write(), so that the parent that kills it knows exactly what was acknowledged.
//
//   store_child append <root> <id|new> <count> [--no-sync] [--die-in-write K:PERMILLE]
//       READY (store constructed); opens the session or starts a new one; OPEN; then saves
//       exchanges n+1, n+2, ... (query_for, answer_for) and, after each save_exchange
//       returns, prints "ACK <seq> <writes>": <writes> is the number of write() calls that
//       reached history.jsonl in that save, one per record ("ID <id>" comes first for a new
//       session). --no-sync: durability::process_crash. --die-in-write: the K-th write()
//       to a history.jsonl writes PERMILLE/1000 of its bytes (at least one, never all;
//       none for 0), then the process SIGKILLs itself: a named kill point, leaving the
//       short write that a kill inside write() leaves.
//   store_child contend <root> <id>
//       READY; waits for a line on stdin (the barrier); resume + one save; prints
//       "WON <seq>" or "BUSY <holder pid or 0> <message>"; then waits for EOF on stdin.
//   store_child create <root> <n>
//       READY; waits for a line on stdin; creates n sessions with one exchange each,
//       printing "ID <id>" for each; then "LIST <id> <id> ..." of list_sessions().
//   store_child hold <root> <id>
//       resumes the session, prints "HELD", sleeps until killed.
//   store_child spawn-and-hold <root> <id>
//       resumes the session, starts `sleep 30`, prints "SLEEP <pid>" and "HELD", sleeps
//       until killed. The sleep must not inherit the session lock.
//   store_child fork <root> <id> [options]
//       READY; fork_session(id); prints "FORKED <new id> <exchange count>".
//   store_child trash <root> <id>... [options]
//       READY; delete_session(id) into the trash, one id after the other, printing
//       "TRASHED <id>" after each.
//   store_child restore <root> <id>... [options]
//       READY; restore_session(id) for each, printing "RESTORED <id>" after each.
//   store_child purge <root> [options]
//       READY; purge_trash(0): prints "PURGED <purged> <failed>".
//   store_child prune <root> [options]
//       READY; prune() with a cutoff an hour in the future (every idle, unpinned session
//       is a candidate): prints "PRUNED <moved> <kept>".
//   store_child import <root> <export file> [options]
//       READY; import_session() of the file: prints "IMPORTED <id> <exchanges>".
//   store_child repair <root> <id> [options]
//       READY; repair_session(id): prints "REPAIRED <id> <lines moved to quarantine>".
//   Options of these seven: --no-sync; --die-at-call K: the K-th call of the store that
//   changes a file or directory (openat with O_CREAT, write, fdatasync, fsync, ftruncate,
//   renameat, unlinkat, mkdirat) after READY SIGKILLs the process just before it runs;
//   --die-at-rename K:before|after: the K-th rename
//   (renameat, or renameat2 with RENAME_NOREPLACE) of the store SIGKILLs the process just before
//   it, or just after it returned (a named kill point between the steps of a move);
//   --die-in-write K:PERMILLE, as for append.
// Errors are printed as "ERROR <what>" (exit status 1); bad usage exits with 2.
#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/session_manager.hpp>

#include "fd_path.hpp"
#include "store_child_records.hpp"

#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace ds = dexter::sessions;
using manager = ds::session_manager<ds::jsonl_store>;
using dexter::sessions::test::answer_for;
using dexter::sessions::test::is_history_fd;
using dexter::sessions::test::query_for;

namespace {

// One line on stdout in one write(): a kill cannot leave half of it in the pipe.
void say(std::string line) {
    line += '\n';
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(1, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            std::_Exit(3);
        done += static_cast<std::size_t>(n);
    }
}

// Reads one line from stdin; false at EOF.
bool wait_line() {
    char c;
    for (;;) {
        const ssize_t n = ::read(0, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        if (c == '\n')
            return true;
    }
}

void wait_eof() {
    while (wait_line()) {
    }
}

[[noreturn]] void sleep_forever() {
    for (;;)
        ::pause();
}

manager make_manager(const std::string& root) {
    return manager{ds::jsonl_store{root}};
}

// The system calls of the store, with one kill point in write() (see --die-in-write),
// counting the write() calls that reach a history file.
struct kill_point_ops : ds::detail::posix_ops {
    int die_at = 0; // the die_at-th write() to a history.jsonl kills the process; 0: never
    int permille = 0;
    int writes = 0;
    std::uint64_t history_writes = 0;
    int die_at_rename = 0;     // the die_at_rename-th renameat() kills the process; 0: never
    bool rename_first = false; // ... after the rename, not before it
    int renames = 0;
    int die_at_call = 0; // the die_at_call-th call that changes a file kills the process
    int calls = 0;

    // A kill point before every call that changes the store (--die-at-call).
    void change_call() {
        if (die_at_call > 0 && ++calls == die_at_call)
            ::kill(::getpid(), SIGKILL);
    }
    int openat(int dirfd, const char* path, int flags, mode_t mode = 0) {
        if (flags & O_CREAT)
            change_call();
        return posix_ops::openat(dirfd, path, flags, mode);
    }
    int fdatasync(int fd) {
        change_call();
        return posix_ops::fdatasync(fd);
    }
    int fsync(int fd) {
        change_call();
        return posix_ops::fsync(fd);
    }
    int ftruncate(int fd, off_t size) {
        change_call();
        return posix_ops::ftruncate(fd, size);
    }
    int unlinkat(int dirfd, const char* path, int flags) {
        change_call();
        return posix_ops::unlinkat(dirfd, path, flags);
    }
    int mkdirat(int dirfd, const char* path, mode_t mode) {
        change_call();
        return posix_ops::mkdirat(dirfd, path, mode);
    }

    template <class Rename>
    int counted_rename(Rename&& rename) {
        change_call();
        const bool die = die_at_rename > 0 && ++renames == die_at_rename;
        if (die && !rename_first)
            ::kill(::getpid(), SIGKILL);
        const int r = rename();
        if (die)
            ::kill(::getpid(), SIGKILL);
        return r;
    }
    int renameat(int from_dir, const char* from, int to_dir, const char* to) {
        return counted_rename([&] { return posix_ops::renameat(from_dir, from, to_dir, to); });
    }
    // renameat2(RENAME_NOREPLACE), counted with renameat, where the seam has it.
    template <class... A, class Base = ds::detail::posix_ops>
    auto rename_noreplace(A... a) -> decltype(std::declval<Base&>().rename_noreplace(a...)) {
        return counted_rename([&] { return Base::rename_noreplace(a...); });
    }

    ssize_t write(int fd, const void* data, std::size_t n) {
        change_call();
        const bool history = is_history_fd(fd);
        history_writes += history;
        if (die_at > 0 && n > 1 && history && ++writes == die_at) {
            const std::size_t part =
                permille == 0 ? 0 : std::clamp<std::size_t>(n * permille / 1000, 1, n - 1);
            if (part > 0 && posix_ops::write(fd, data, part) != static_cast<ssize_t>(part))
                std::_Exit(4);
            ::kill(::getpid(), SIGKILL);
        }
        return posix_ops::write(fd, data, n);
    }
};

using kill_point_manager = ds::session_manager<ds::basic_jsonl_store<kill_point_ops>>;

// A store on `root` with the options of the subcommands (see the top of this file):
// --no-sync, --die-in-write, --die-at-rename.
kill_point_manager kill_point_store(const std::string& root,
                                    const std::vector<std::string>& options) {
    ds::jsonl_options o;
    kill_point_ops ops;
    int die_at_call = 0;
    for (std::size_t i = 0; i < options.size(); ++i) {
        if (options[i] == "--no-sync") {
            o.sync = ds::durability::process_crash;
        } else if (options[i] == "--die-in-write" && i + 1 < options.size()) {
            const std::string& v = options[++i];
            ops.die_at = std::stoi(v);
            ops.permille = std::stoi(v.substr(v.find(':') + 1));
        } else if (options[i] == "--die-at-call" && i + 1 < options.size()) {
            die_at_call = std::stoi(options[++i]);
        } else if (options[i] == "--die-at-rename" && i + 1 < options.size()) {
            const std::string& v = options[++i];
            ops.die_at_rename = std::stoi(v);
            ops.rename_first = v.ends_with(":after");
        } else {
            throw std::invalid_argument("unknown option " + options[i]);
        }
    }
    kill_point_manager m{ds::basic_jsonl_store<kill_point_ops>{root, "cli", o, ops}};
    m.storage().ops().die_at_call = die_at_call; // counted from READY on
    return m;
}

int append(const std::string& root, const std::string& id, std::uint64_t count,
           const std::vector<std::string>& options) {
    kill_point_manager m = kill_point_store(root, options);
    say("READY");
    if (id == "new")
        m.start_new();
    else
        m.resume(id);
    say("OPEN");
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t next = m.current()->exchange_count + 1;
        const bool first = !m.current_is_stored();
        const std::uint64_t writes_before = m.storage().ops().history_writes;
        const ds::exchange ex = m.save_exchange(query_for(next), answer_for(next));
        if (ex.seq != next) {
            say("ERROR saved seq " + std::to_string(ex.seq) + ", expected " + std::to_string(next));
            return 1;
        }
        if (first)
            say("ID " + m.current()->id);
        say("ACK " + std::to_string(ex.seq) + " " +
            std::to_string(m.storage().ops().history_writes - writes_before));
    }
    return 0;
}

// fork, trash, restore, purge, prune, import, repair: `args` are the arguments before the options.
int change(const std::string& what, const std::string& root, std::vector<std::string> args) {
    const auto first_option = std::find_if(
        args.begin(), args.end(), [](const std::string& a) { return a.starts_with("--"); });
    const std::vector<std::string> options(first_option, args.end());
    args.erase(first_option, args.end());
    kill_point_manager m = kill_point_store(root, options);
    say("READY");
    if (what == "fork" && args.size() == 1) {
        const ds::session_meta f = m.fork_session(args[0]);
        say("FORKED " + f.id + " " + std::to_string(f.exchange_count));
    } else if (what == "trash") {
        for (const auto& id : args) {
            m.delete_session(id);
            say("TRASHED " + id);
        }
    } else if (what == "restore") {
        for (const auto& id : args) {
            m.restore_session(id);
            say("RESTORED " + id);
        }
    } else if (what == "purge" && args.empty()) {
        const auto r = m.purge_trash(std::chrono::milliseconds(0));
        say("PURGED " + std::to_string(r.purged.size()) + " " + std::to_string(r.failed.size()));
    } else if (what == "prune" && args.empty()) {
        const auto r = m.prune(-std::chrono::milliseconds(std::chrono::hours(1)));
        say("PRUNED " + std::to_string(r.moved.size()) + " " + std::to_string(r.kept.size()));
    } else if (what == "repair" && args.size() == 1) {
        const ds::repair_report r = m.repair_session(args[0]);
        say("REPAIRED " + r.id + " " + std::to_string(r.quarantined_lines));
    } else if (what == "import" && args.size() == 1) {
        std::ifstream in(args[0], std::ios::binary);
        if (!in) {
            say("ERROR cannot open " + args[0]);
            return 1;
        }
        const ds::import_result r = m.import_session(in);
        say("IMPORTED " + r.meta.id + " " + std::to_string(r.exchanges));
    } else {
        say("ERROR usage: store_child " + what + " <root> ...");
        return 2;
    }
    return 0;
}

int contend(const std::string& root, const std::string& id) {
    manager m = make_manager(root);
    say("READY");
    if (!wait_line())
        return 2;
    try {
        m.resume(id);
        const ds::exchange ex = m.save_exchange("contended", "won");
        say("WON " + std::to_string(ex.seq));
    } catch (const ds::session_busy& e) {
        say("BUSY " + std::to_string(e.holder_pid().value_or(0)) + " " + e.what());
    }
    wait_eof(); // the winner keeps the session open until every contender has reported
    return 0;
}

int create(const std::string& root, int n) {
    manager m = make_manager(root);
    say("READY");
    if (!wait_line())
        return 2;
    for (int i = 0; i < n; ++i) {
        m.start_new();
        m.save_exchange("created " + std::to_string(i), "by process " + std::to_string(::getpid()));
        say("ID " + m.current()->id);
    }
    std::string list = "LIST";
    for (const auto& s : m.list_sessions())
        list += " " + s.id;
    say(list);
    return 0;
}

int hold(const std::string& root, const std::string& id, bool spawn_sleep) {
    manager m = make_manager(root);
    m.resume(id);
    if (spawn_sleep) {
        // posix_spawn, like a host running an agent command: only descriptors without
        // FD_CLOEXEC reach the sleep.
        char arg0[] = "sleep", arg1[] = "30";
        char* argv[] = {arg0, arg1, nullptr};
        pid_t pid = 0;
        if (const int e = ::posix_spawnp(&pid, "sleep", nullptr, nullptr, argv, environ)) {
            say(std::string("ERROR cannot start sleep: ") + std::strerror(e));
            return 1;
        }
        say("SLEEP " + std::to_string(pid));
    }
    say("HELD");
    sleep_forever();
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> a(argv + 1, argv + argc);
    try {
        if (a.size() >= 4 && a[0] == "append")
            return append(a[1], a[2], std::stoull(a[3]), {a.begin() + 4, a.end()});
        if (a.size() == 3 && a[0] == "contend")
            return contend(a[1], a[2]);
        if (a.size() == 3 && a[0] == "create")
            return create(a[1], std::stoi(a[2]));
        if (a.size() == 3 && a[0] == "hold")
            return hold(a[1], a[2], false);
        if (a.size() == 3 && a[0] == "spawn-and-hold")
            return hold(a[1], a[2], true);
        if (a.size() >= 2 &&
            (a[0] == "fork" || a[0] == "trash" || a[0] == "restore" || a[0] == "purge" ||
             a[0] == "prune" || a[0] == "import" || a[0] == "repair"))
            return change(a[0], a[1], {a.begin() + 2, a.end()});
    } catch (const std::exception& e) {
        say(std::string("ERROR ") + e.what());
        return 1;
    }
    say("ERROR usage: store_child append|contend|create|hold|spawn-and-hold|fork|trash|restore|"
        "purge|prune|import|repair <root> ...");
    return 2;
}
