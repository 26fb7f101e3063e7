// SPDX-License-Identifier: BSL-1.0
// dexter's command-line parser: valid and invalid command lines, defaults, environment.
#include "dexter/options.hpp"

#define BOOST_TEST_MODULE dexter_options
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

using dexter::cli::command;
using dexter::cli::options;
using dexter::cli::usage_error;

namespace {

using environment = std::map<std::string, std::string>;

struct parse_call {
    std::variant<options, usage_error> result;
    std::set<std::string> looked_up; // the environment variables the parser asked for
};

parse_call parse(const std::vector<std::string>& args, const environment& env = {}) {
    std::vector<const char*> argv{"dexter"};
    for (const auto& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    parse_call call;
    call.result =
        dexter::cli::parse_options(static_cast<int>(argv.size() - 1), argv.data(),
                                   [&](const std::string& name) -> std::optional<std::string> {
                                       call.looked_up.insert(name);
                                       auto it = env.find(name);
                                       if (it == env.end())
                                           return std::nullopt;
                                       return it->second;
                                   });
    return call;
}

std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args)
        s += " '" + a + "'";
    return s;
}

options accepted(const std::vector<std::string>& args, const environment& env = {}) {
    auto call = parse(args, env);
    if (const auto* e = std::get_if<usage_error>(&call.result))
        BOOST_FAIL("dexter" << joined(args) << " was refused: " << e->message);
    return std::get<options>(call.result);
}

std::string refused(const std::vector<std::string>& args, const environment& env = {}) {
    auto call = parse(args, env);
    if (std::holds_alternative<options>(call.result))
        BOOST_FAIL("dexter" << joined(args) << " was accepted");
    return std::get<usage_error>(call.result).message;
}

} // namespace

BOOST_AUTO_TEST_CASE(no_arguments_start_an_interactive_session_with_the_defaults) {
    const options o = accepted({});
    BOOST_TEST((o.what == command::interactive));
    BOOST_TEST(o.session.empty());
    BOOST_TEST(!o.continue_last);
    BOOST_TEST(o.prompt.empty());
    BOOST_TEST(!o.json);
    BOOST_TEST(!o.yes);
    BOOST_TEST(o.sessions_dir == std::filesystem::path("./.dexter/sessions"));
    BOOST_TEST(o.agent_command.empty()); // the offline agent
    BOOST_TEST(o.history_limit == 10u);
}

BOOST_AUTO_TEST_CASE(resume_by_id_by_prefix_and_continue) {
    for (const auto* flag : {"-s", "--session"}) {
        const options o = accepted({flag, "ab12cd34"});
        BOOST_TEST((o.what == command::interactive));
        BOOST_TEST(o.session == "ab12cd34");
    }
    BOOST_TEST(accepted({"--session=ab12"}).session == "ab12");
    BOOST_TEST(accepted({"-sab12c"}).session == "ab12c");
    BOOST_TEST(accepted({"-c"}).continue_last);
    BOOST_TEST(accepted({"--continue"}).continue_last);
}

BOOST_AUTO_TEST_CASE(prompt_makes_a_one_shot_alone_or_in_a_session) {
    options o = accepted({"-p", "what is the revenue?"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.prompt == "what is the revenue?");
    o = accepted({"-c", "--prompt", "and the next quarter?", "--json"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.continue_last);
    BOOST_TEST(o.json);
    o = accepted({"--prompt=x", "-s", "ab12cd34"});
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(o.prompt == "x");
}

BOOST_AUTO_TEST_CASE(session_commands) {
    options o = accepted({"--list-sessions"});
    BOOST_TEST((o.what == command::list_sessions));
    BOOST_TEST(!o.json);
    BOOST_TEST(accepted({"--list-sessions", "--json"}).json);

    o = accepted({"--delete-session", "ab12cd34"});
    BOOST_TEST((o.what == command::delete_session));
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(!o.yes);
    BOOST_TEST(accepted({"--delete-session", "ab12", "-y"}).yes);
    BOOST_TEST(accepted({"--yes", "--delete-session", "ab12"}).yes);
}

BOOST_AUTO_TEST_CASE(help_and_version_win_over_other_options) {
    BOOST_TEST((accepted({"-h"}).what == command::show_help));
    BOOST_TEST((accepted({"--help", "-s", "ab12", "-c"}).what == command::show_help));
    BOOST_TEST((accepted({"--version"}).what == command::show_version));
    BOOST_TEST((accepted({"--list-sessions", "--version"}).what == command::show_version));
    // ... but not over an option that does not exist.
    refused({"--help", "--frobnicate"});
}

BOOST_AUTO_TEST_CASE(history_limit_accepts_whole_numbers_up_to_the_maximum) {
    BOOST_TEST(accepted({"--history-limit", "0"}).history_limit == 0u);
    BOOST_TEST(accepted({"--history-limit", "25"}).history_limit == 25u);
    BOOST_TEST(accepted({"--history-limit=1000"}).history_limit == 1000u);
    for (const auto* bad : {"-1", "abc", "1001", "", "1e3", " 5", "5x", "99999999999999999999"}) {
        const std::string message = refused({"--history-limit", bad});
        BOOST_TEST(message.find("--history-limit") != std::string::npos, message);
    }
}

BOOST_AUTO_TEST_CASE(environment_supplies_the_store_and_the_agent) {
    const environment env{{"DEXTER_SESSIONS_DIR", "/srv/sessions"},
                          {"DEXTER_AGENT_CMD", "my-agent --fast"}};
    options o = accepted({}, env);
    BOOST_TEST(o.sessions_dir == std::filesystem::path("/srv/sessions"));
    BOOST_TEST(o.agent_command == "my-agent --fast");

    // The command line wins.
    o = accepted({"--sessions-dir", "here", "--agent-cmd", "other"}, env);
    BOOST_TEST(o.sessions_dir == std::filesystem::path("here"));
    BOOST_TEST(o.agent_command == "other");

    // Empty values count as unset.
    o = accepted({}, {{"DEXTER_SESSIONS_DIR", ""}, {"DEXTER_AGENT_CMD", ""}});
    BOOST_TEST(o.sessions_dir == std::filesystem::path("./.dexter/sessions"));
    BOOST_TEST(o.agent_command.empty());
}

BOOST_AUTO_TEST_CASE(the_parser_reads_only_its_three_environment_variables) {
    auto call = parse({"-c", "-p", "x"}, {});
    BOOST_TEST(std::holds_alternative<options>(call.result));
    const std::set<std::string> allowed{"DEXTER_STORE", "DEXTER_SESSIONS_DIR", "DEXTER_AGENT_CMD"};
    for (const auto& name : call.looked_up)
        BOOST_TEST(allowed.count(name) == 1u, name);
}

BOOST_AUTO_TEST_CASE(unknown_options_and_missing_values_are_usage_errors) {
    BOOST_TEST(refused({"--frobnicate"}).find("--frobnicate") != std::string::npos);
    refused({"-x"});
    refused({"-s"});               // missing value
    refused({"--delete-session"}); // missing value
    refused({"-p"});
    refused({"--list"});                   // no abbreviations of --list-sessions
    refused({"--sess", "ab12"});           // ... or of --session
    refused({"what", "is", "x"});          // a bare question
    refused({"-s", "ab12", "-s", "cd34"}); // given twice
}

BOOST_AUTO_TEST_CASE(conflicting_options_are_usage_errors) {
    const std::vector<std::vector<std::string>> conflicts{
        {"-s", "ab12cd34", "-c"},
        {"--list-sessions", "-p", "q"},
        {"--list-sessions", "-s", "ab12"},
        {"--list-sessions", "-c"},
        {"--list-sessions", "--delete-session", "ab12"},
        {"--delete-session", "ab12", "-p", "q"},
        {"--delete-session", "ab12", "-s", "cd34"},
        {"--delete-session", "ab12", "-c"},
        {"--json"},
        {"-c", "--json"},
        {"-y"},
        {"--list-sessions", "-y"},
    };
    for (const auto& args : conflicts) {
        const std::string message = refused(args);
        BOOST_TEST(message.find("--") != std::string::npos, "names the options: " << message);
    }
}

BOOST_AUTO_TEST_CASE(bad_values_are_usage_errors) {
    for (const auto* id : {"../x", "ABCD1234", "abc", "ab12cd34e", "a/b1", "ab_1", "ab12cd3\x01"}) {
        BOOST_TEST(refused({"-s", id}).find("invalid session id") != std::string::npos, id);
        BOOST_TEST(
            refused({"--delete-session", id}).find("invalid session id") != std::string::npos, id);
    }
    refused({"-p", ""});
    refused({"-p", "  \n"});
    refused({"--sessions-dir", ""});
    refused({"--agent-cmd", ""});
}

BOOST_AUTO_TEST_CASE(help_text_names_every_option_and_the_environment) {
    const std::string help = dexter::cli::help_text();
    for (const auto* word :
         {"--session", "--continue", "--prompt", "--list-sessions", "--json", "--delete-session",
          "--yes", "--sessions-dir", "--agent-cmd", "--history-limit", "--help", "--version",
          "DEXTER_SESSIONS_DIR", "DEXTER_AGENT_CMD"})
        BOOST_TEST(help.find(word) != std::string::npos, word);
}

BOOST_AUTO_TEST_CASE(store_names_a_database_or_a_directory) {
    const std::string uri = "postgresql://dexter@db.internal/agents";
    options o = accepted({"--store", uri});
    BOOST_TEST(o.store_uri == uri);
    BOOST_TEST(o.sessions_dir == std::filesystem::path("./.dexter/sessions"));
    BOOST_TEST(accepted({"--store", "postgres://h/db"}).store_uri == "postgres://h/db");

    o = accepted({"--store", "some/dir"});
    BOOST_TEST(o.store_uri.empty());
    BOOST_TEST(o.sessions_dir == std::filesystem::path("some/dir"));

    // DEXTER_STORE, below the command line and above DEXTER_SESSIONS_DIR.
    const environment env{{"DEXTER_STORE", uri}, {"DEXTER_SESSIONS_DIR", "/srv/sessions"}};
    BOOST_TEST(accepted({}, env).store_uri == uri);
    o = accepted({"--sessions-dir", "here"}, env);
    BOOST_TEST(o.store_uri.empty());
    BOOST_TEST(o.sessions_dir == std::filesystem::path("here"));
    BOOST_TEST(accepted({"--store", "there"}, env).store_uri.empty());
    BOOST_TEST(accepted({}, {{"DEXTER_STORE", ""}, {"DEXTER_SESSIONS_DIR", "/srv"}}).sessions_dir ==
               std::filesystem::path("/srv"));

    refused({"--store", ""});
    refused({"--store"});
    BOOST_TEST(refused({"--store", uri, "--sessions-dir", "x"}).find("--store") !=
               std::string::npos);
}
