// SPDX-License-Identifier: BSL-1.0
// dexter --store postgresql://... end to end: the real binary against a real server.
#include <dexter/sessions/postgres_store.hpp>

#define BOOST_TEST_MODULE dexter_postgres
#include <boost/test/unit_test.hpp>

#include "support/postgres_fixture.hpp"
#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifndef DEXTER_BINARY
#error "DEXTER_BINARY must name the dexter executable"
#endif

namespace ds = dexter::sessions;
namespace json = boost::json;
using ds::test::env_or_empty;
using ds::test::test_server;

namespace {

using announce_skip = ds::test::announce_skip;

struct result {
    int status = -1;
    std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs dexter with `args` and `env` added to the environment, standard input from
/// /dev/null, and waits for it.
result run_dexter(const std::vector<std::string>& args,
                  const std::vector<std::pair<std::string, std::string>>& env = {}) {
    ds::test::temp_dir dir;
    const auto out = dir / "out", err = dir / "err";
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        for (const auto& [k, v] : env)
            ::setenv(k.c_str(), v.c_str(), 1);
        ::unsetenv("DEXTER_AGENT_CMD");
        const int in = ::open("/dev/null", O_RDONLY);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        std::vector<char*> argv{const_cast<char*>(DEXTER_BINARY)};
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(DEXTER_BINARY, argv.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    result r;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

/// The test server's URI, with the tables in a schema of their own (search_path), so
/// that dexter's channel "cli" starts empty.
std::string fresh_store() {
    ds::test::admin a;
    return ds::test::in_schema(ds::test::create_schema(a, "dexter_cli_"));
}

json::array list_json(const std::string& store) {
    const auto r = run_dexter({"--store", store, "--list-sessions", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    return json::parse(r.out).as_array();
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(announce_skip);

BOOST_AUTO_TEST_SUITE(dexter_postgres,
                      *boost::unit_test::precondition(ds::test::have_test_server{}))

// -p saves, --list-sessions --json lists, -c -p continues, the environment variable
// works as the option does, --delete-session moves to the trash, --restore brings back,
// --permanent deletes for good.
BOOST_AUTO_TEST_CASE(prompt_list_continue_delete) {
    const std::string store = fresh_store();
    auto first = run_dexter({"--store", store, "-p", "hello"});
    BOOST_TEST_REQUIRE(first.status == 0, first.err);
    BOOST_TEST(first.out.find("hello") != std::string::npos);

    auto listed = list_json(store);
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    const std::string id(listed[0].at("id").as_string());
    BOOST_TEST(listed[0].at("title").as_string() == "hello");
    BOOST_TEST(listed[0].at("exchange_count").to_number<int>() == 1);

    auto again = run_dexter({"--store", store, "-c", "-p", "again"});
    BOOST_TEST_REQUIRE(again.status == 0, again.err);
    // The offline agent names the earlier question it was given as context.
    BOOST_TEST(again.out.find("hello") != std::string::npos, again.out);

    const auto by_env = run_dexter({"--list-sessions", "--json"}, {{"DEXTER_STORE", store}});
    BOOST_TEST_REQUIRE(by_env.status == 0, by_env.err);
    listed = json::parse(by_env.out).as_array();
    BOOST_TEST_REQUIRE(listed.size() == 1u);
    BOOST_TEST(listed[0].at("id").as_string() == id);
    BOOST_TEST(listed[0].at("exchange_count").to_number<int>() == 2);

    auto del = run_dexter({"--store", store, "--delete-session", id});
    BOOST_TEST_REQUIRE(del.status == 0, del.err);
    BOOST_TEST(list_json(store).empty());
    const auto trash = run_dexter({"--store", store, "--list-trash", "--json"});
    BOOST_TEST_REQUIRE(trash.status == 0, trash.err);
    const auto trashed = json::parse(trash.out).as_array();
    BOOST_TEST_REQUIRE(trashed.size() == 1u);
    BOOST_TEST(trashed[0].at("id").as_string() == id);
    BOOST_TEST(trashed[0].as_object().contains("deleted_at"));
    const auto restored = run_dexter({"--store", store, "--restore", id});
    BOOST_TEST_REQUIRE(restored.status == 0, restored.err);
    BOOST_TEST(restored.out == "restored session " + id + "\n");
    BOOST_TEST(list_json(store).size() == 1u);

    del = run_dexter({"--store", store, "--delete-session", id, "--permanent", "-y"});
    BOOST_TEST_REQUIRE(del.status == 0, del.err);
    BOOST_TEST(list_json(store).empty());
    BOOST_TEST(run_dexter({"--store", store, "--list-trash", "--json"}).out == "[]\n");
}

// A session one dexter holds (interactive, waiting for input) is refused to another,
// which names the holder's pid; errors never show the connection string's password.
BOOST_AUTO_TEST_CASE(busy_session_and_hidden_password) {
    const std::string store = fresh_store();
    BOOST_TEST_REQUIRE(run_dexter({"--store", store, "-p", "q"}).status == 0);

    int in[2], out[2];
    BOOST_TEST_REQUIRE(::pipe(in) == 0);
    BOOST_TEST_REQUIRE(::pipe(out) == 0);
    const pid_t holder = ::fork();
    BOOST_TEST_REQUIRE(holder >= 0);
    if (holder == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::close(in[1]);
        ::close(out[0]);
        ::unsetenv("DEXTER_AGENT_CMD");
        ::execl(DEXTER_BINARY, DEXTER_BINARY, "--store", store.c_str(), "-c",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    // The banner names the session once it is resumed (and held).
    std::string banner;
    char c;
    while (banner.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1)
        banner += c;
    BOOST_TEST_MESSAGE("holder: " << banner);

    const auto second = run_dexter({"--store", store, "-c", "-p", "x"});
    BOOST_TEST(second.status == 1);
    BOOST_TEST(second.err.find("is open in process " + std::to_string(holder)) != std::string::npos,
               second.err);
    ::close(in[1]); // end of input: the holder leaves
    int status = 0;
    ::waitpid(holder, &status, 0);
    ::close(out[0]);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    BOOST_TEST(run_dexter({"--store", store, "-c", "-p", "x"}).status == 0);

    const std::string secret = "N0t-The-Passw0rd";
    std::string wrong = test_server();
    wrong.replace(wrong.find(env_or_empty("DEXTER_TEST_PG_PASSWORD")),
                  env_or_empty("DEXTER_TEST_PG_PASSWORD").size(), secret);
    const auto refused = run_dexter({"--store", wrong, "--list-sessions"});
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("password authentication failed") != std::string::npos,
               refused.err);
    BOOST_TEST(refused.err.find(secret) == std::string::npos, refused.err);
    BOOST_TEST(refused.err.find(env_or_empty("DEXTER_TEST_PG_SERVER")) != std::string::npos,
               refused.err);
}

BOOST_AUTO_TEST_SUITE_END()
