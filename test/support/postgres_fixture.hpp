// SPDX-License-Identifier: BSL-1.0
// What the postgres_store tests share beyond the server and the admin connection: a store
// on a channel, the cluster's pg_ctl, connection strings with libpq options, a schema of
// a test's own, and forked children that die with the test.
#pragma once

#include <dexter/sessions/postgres_store.hpp>

#include "postgres_admin.hpp"
#include "postgres_server.hpp"

#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace dexter::sessions::test {

/// A store on `channel` of the test server (or of `conninfo`): one connection, one writer.
inline postgres_store make_store(const std::string& channel, std::string conninfo = test_server()) {
    return postgres_store{std::move(conninfo), channel};
}

/// Runs the cluster's pg_ctl (as its owner) with `args`: "restart -m fast", ...
inline void pg_ctl(const std::string& args) {
    const std::string ctl = env_or_empty("DEXTER_TEST_PG_CTL");
    BOOST_TEST_REQUIRE(!ctl.empty(), "DEXTER_TEST_PG_CTL is not set");
    const std::string cmd = ctl + " " + args + " >/dev/null";
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "failed: " << cmd);
}

/// The connection string with `options` (libpq's, e.g. "-csearch_path=x") added.
inline std::string with_options(std::string conninfo, const std::string& options) {
    std::string encoded;
    for (char c : options)
        encoded += c == '=' ? std::string("%3D") : std::string(1, c);
    conninfo += conninfo.find('?') == std::string::npos ? '?' : '&';
    return conninfo + "options=" + encoded;
}

/// Creates an empty schema named `prefix` + a fresh channel name; returns its name.
inline std::string create_schema(admin& a, const std::string& prefix) {
    std::string schema = prefix + fresh_channel();
    std::replace(schema.begin(), schema.end(), '-', '_');
    a.exec("CREATE SCHEMA " + schema);
    return schema;
}

/// The test server's connection string with its tables in `schema` (search_path).
inline std::string in_schema(const std::string& schema) {
    return with_options(test_server(), "-csearch_path=" + schema);
}

/// A pipe from a forked child to the parent, one line at a time.
class child_pipe {
public:
    child_pipe() {
        if (::pipe(fds_) != 0)
            throw std::runtime_error("pipe failed");
    }
    child_pipe(const child_pipe&) = delete;
    child_pipe& operator=(const child_pipe&) = delete;
    ~child_pipe() {
        for (int fd : fds_)
            if (fd >= 0)
                ::close(fd);
    }
    void child_side() { close_end(0); }
    void parent_side() { close_end(1); }
    void say(const std::string& line) {
        const std::string l = line + "\n";
        [[maybe_unused]] auto n = ::write(fds_[1], l.data(), l.size());
    }
    /// The next line, or nullopt at end of file.
    std::optional<std::string> hear() {
        std::string line;
        char c;
        while (::read(fds_[0], &c, 1) == 1) {
            if (c == '\n')
                return line;
            line += c;
        }
        return std::nullopt;
    }

private:
    void close_end(int i) {
        ::close(fds_[i]);
        fds_[i] = -1;
    }
    int fds_[2] = {-1, -1};
};

/// Kills a forked child (if still running) when the test leaves its scope, even by a
/// failed assertion.
class child_guard {
public:
    explicit child_guard(pid_t pid) : pid_(pid) {}
    child_guard(const child_guard&) = delete;
    child_guard& operator=(const child_guard&) = delete;
    ~child_guard() { reap(); }
    /// SIGKILLs the child and waits for it; its wait status (0 when it was reaped before).
    int reap() {
        if (pid_ <= 0)
            return 0;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_;
};

/// In a forked child: die with the parent, so that a failed test leaves nothing behind.
inline void die_with_parent() {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
}

} // namespace dexter::sessions::test
