// SPDX-License-Identifier: BSL-1.0
// dexter's command-line parser: valid and invalid command lines, defaults, environment;
// and the streaming sanitizer of answers (the sanitizer itself: dexter_terminal_test).
#include "dexter/answer_display.hpp"
#include "dexter/options.hpp"
#include "dexter/terminal.hpp"

#define BOOST_TEST_MODULE dexter_options
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using dexter::cli::command;
using dexter::cli::options;
using dexter::cli::usage_error;
using dexter::sessions::export_format;

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

BOOST_AUTO_TEST_CASE(commands_that_change_sessions) {
    options o = accepted({"--rename", "ab12", "A new title"});
    BOOST_TEST((o.what == command::rename_session));
    BOOST_TEST(o.session == "ab12");
    BOOST_TEST(o.title == "A new title");

    o = accepted({"--fork", "ab12cd34"});
    BOOST_TEST((o.what == command::fork_session));
    BOOST_TEST(o.fork);
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(!o.fork_seq);
    o = accepted({"--fork", "ab12@3", "-p", "and now?", "--json"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.fork);
    BOOST_TEST(o.session == "ab12");
    BOOST_TEST(o.fork_seq.value_or(0) == 3u);
    BOOST_TEST(o.prompt == "and now?");
    BOOST_TEST(o.json);

    o = accepted({"--import", "saved.jsonl"});
    BOOST_TEST((o.what == command::import_session));
    BOOST_TEST(o.import_file == "saved.jsonl");
    BOOST_TEST(accepted({"--import", "-"}).import_file == "-");

    o = accepted({"--delete-session", "ab12"});
    BOOST_TEST(!o.permanent);
    o = accepted({"--delete-session", "ab12", "--permanent", "-y"});
    BOOST_TEST(o.permanent);
    BOOST_TEST(o.yes);

    o = accepted({"--list-trash"});
    BOOST_TEST((o.what == command::list_trash));
    BOOST_TEST(accepted({"--list-trash", "--json"}).json);
    o = accepted({"--restore", "ab12cd34"});
    BOOST_TEST((o.what == command::restore));
    BOOST_TEST(o.session == "ab12cd34");

    using namespace std::chrono;
    o = accepted({"--purge-trash", "--older-than", "30d", "-y"});
    BOOST_TEST((o.what == command::purge_trash));
    BOOST_TEST((o.older_than == days(30)));
    BOOST_TEST(o.yes);
    o = accepted({"--prune", "--older-than=12h", "--dry-run"});
    BOOST_TEST((o.what == command::prune));
    BOOST_TEST((o.older_than == hours(12)));
    BOOST_TEST(o.dry_run);
    BOOST_TEST(!o.yes);
    BOOST_TEST((accepted({"--prune", "--older-than", "0d"}).older_than == milliseconds(0)));

    BOOST_TEST((accepted({"--pin", "ab12"}).what == command::pin_session));
    BOOST_TEST((accepted({"--unpin", "ab12"}).what == command::unpin_session));
    BOOST_TEST(accepted({"--unpin", "ab12"}).session == "ab12");

    BOOST_TEST(accepted({"-p", "q"}).redact);
    BOOST_TEST(!accepted({"-p", "q", "--no-redact"}).redact);
    o = accepted({"--incognito"});
    BOOST_TEST((o.what == command::interactive));
    BOOST_TEST(o.incognito);
    o = accepted({"--incognito", "-p", "q", "--agent-cmd", "x"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.incognito);
}

BOOST_AUTO_TEST_CASE(durations_are_a_whole_number_and_a_unit) {
    using namespace std::chrono;
    using dexter::cli::parse_duration;
    BOOST_TEST((parse_duration("30d") == milliseconds(days(30))));
    BOOST_TEST((parse_duration("12h") == milliseconds(hours(12))));
    BOOST_TEST((parse_duration("90m") == milliseconds(minutes(90))));
    BOOST_TEST((parse_duration("45s") == milliseconds(seconds(45))));
    BOOST_TEST((parse_duration("2w") == milliseconds(weeks(2))));
    BOOST_TEST((parse_duration("0d") == milliseconds(0)));
    BOOST_TEST((parse_duration("0s") == milliseconds(0)));
    BOOST_TEST((parse_duration("007h") == milliseconds(hours(7))));
    BOOST_TEST((parse_duration("999999999w") == milliseconds(weeks(999999999))));
    for (const auto* bad : {"", "d", "30", "0", "30D", "30y", "30ms", "-1d", "+1d", "1.5d", " 1d",
                            "1d ", "1 d", "1e3s", "1dd", "d30", "1000000000w", "0x10s", "３d"})
        BOOST_TEST(!parse_duration(bad), '\'' << bad << '\'');
}

BOOST_AUTO_TEST_CASE(change_command_options_belong_to_their_commands) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--rename", "ab12"}, "--rename takes an ID and a TITLE (quote a title with spaces)"},
        {{"--rename", "ab12", "two", "words"},
         "--rename takes an ID and a TITLE (quote a title with spaces)"},
        {{"--rename", "ab12", " "}, "--rename needs a title, not an empty text"},
        {{"--rename", "ab12", "\xff"}, "--rename: the title is not valid UTF-8"},
        {{"--rename", "ab12", "t", "-p", "q"}, "--rename cannot be used with --prompt"},
        {{"--fork", "ab12", "-s", "ab12"}, "--fork cannot be used with --session"},
        {{"--fork", "ab12", "-c"}, "--fork cannot be used with --continue"},
        {{"--fork", "ab12@0"},
         "--fork: expected ID or ID@SEQ with SEQ a whole number from 1, got '0' after the @"},
        {{"--fork", "ab12@"},
         "--fork: expected ID or ID@SEQ with SEQ a whole number from 1, got '' after the @"},
        {{"--fork", "ab12@x"},
         "--fork: expected ID or ID@SEQ with SEQ a whole number from 1, got 'x' after the @"},
        {{"--fork", "ab12", "--json"},
         "--json needs --list-sessions, --list-trash, --search, --show, --verify, --explain or "
         "--prompt"},
        {{"--import", ""}, "--import needs a file name (or - for standard input)"},
        {{"--import", "f", "--fork", "ab12"}, "--fork and --import cannot be used together"},
        {{"--import", "f", "-p", "q"}, "--import cannot be used with --prompt"},
        {{"--permanent"}, "--permanent needs --delete-session"},
        {{"--restore", "ab12", "--permanent"}, "--permanent needs --delete-session"},
        {{"--list-trash", "--list-sessions"},
         "--list-sessions and --list-trash cannot be used together"},
        {{"--restore", "ab12", "--delete-session", "ab12"},
         "--delete-session and --restore cannot be used together"},
        {{"--purge-trash"}, "--purge-trash needs --older-than DURATION (0 for everything)"},
        {{"--prune"}, "--prune needs --older-than DURATION (0 for everything)"},
        {{"--older-than", "3d"}, "--older-than needs --purge-trash or --prune"},
        {{"--list-trash", "--older-than", "3d"}, "--older-than needs --purge-trash or --prune"},
        {{"--prune", "--older-than", "3x"},
         "--older-than: expected a DURATION such as 30d, 12h, 90m, 45s or 2w, got '3x'"},
        {{"--purge-trash", "--older-than", "-3d"},
         "--older-than: expected a DURATION such as 30d, 12h, 90m, 45s or 2w, got '-3d'"},
        {{"--prune", "--purge-trash", "--older-than", "1d"},
         "--purge-trash and --prune cannot be used together"},
        {{"--dry-run"}, "--dry-run needs --prune"},
        {{"--purge-trash", "--older-than", "1d", "--dry-run"}, "--dry-run needs --prune"},
        {{"--pin", "ab12", "--unpin", "ab12"}, "--pin and --unpin cannot be used together"},
        {{"--list-trash", "-y"},
         "--yes needs --delete-session, --purge-trash, --prune or --repair"},
        {{"--incognito", "-c"},
         "--incognito cannot be used with --continue (an incognito conversation uses no store)"},
        {{"--incognito", "-s", "ab12"},
         "--incognito cannot be used with --session (an incognito conversation uses no store)"},
        {{"--incognito", "--fork", "ab12"},
         "--incognito cannot be used with --fork (an incognito conversation uses no store)"},
        {{"--incognito", "--store", "d"},
         "--incognito cannot be used with --store (an incognito conversation uses no store)"},
        {{"--incognito", "--sessions-dir", "d"},
         "--incognito cannot be used with --sessions-dir (an incognito conversation uses no "
         "store)"},
        {{"--incognito", "--list-sessions"},
         "--incognito cannot be used with --list-sessions (an incognito conversation uses no "
         "store)"},
        {{"--incognito", "--list-trash"},
         "--incognito cannot be used with --list-trash (an incognito conversation uses no "
         "store)"},
        {{"--incognito", "--search", "x"},
         "--incognito cannot be used with --search (an incognito conversation uses no store)"},
    };
    for (const auto& [args, expected] : cases)
        BOOST_TEST(refused(args) == expected, joined(args));
    for (const auto* id : {"../x", "ABCD1234", "abc"}) {
        for (const auto* flag : {"--restore", "--pin", "--unpin", "--fork"})
            BOOST_TEST(refused({flag, id}).find("invalid session id") != std::string::npos,
                       flag << ' ' << id);
        BOOST_TEST(refused({"--rename", id, "t"}).find("invalid session id") != std::string::npos,
                   id);
    }
    BOOST_TEST(refused({"--fork", "../x@2"}).find("invalid session id") != std::string::npos);
    refused({"--restore"}); // missing values
    refused({"--import"});
    refused({"--pin"});
    refused({"--rename"});
    refused({"--prune", "--older-than"});
}

BOOST_AUTO_TEST_CASE(incognito_reads_no_store_from_the_environment) {
    const environment env{{"DEXTER_STORE", "postgresql://db/x"}, {"DEXTER_SESSIONS_DIR", "/srv"}};
    auto call = parse({"--incognito"}, env);
    BOOST_TEST_REQUIRE(std::holds_alternative<options>(call.result));
    BOOST_TEST(std::get<options>(call.result).store_uri.empty());
    BOOST_TEST(call.looked_up.count("DEXTER_STORE") == 0u);
    BOOST_TEST(call.looked_up.count("DEXTER_SESSIONS_DIR") == 0u);
}

BOOST_AUTO_TEST_CASE(read_commands) {
    options o = accepted({"--show", "ab12cd34"});
    BOOST_TEST((o.what == command::show_session));
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(!o.format); // the terminal view
    BOOST_TEST((accepted({"--show", "ab12", "--json"}).format == export_format::json));
    BOOST_TEST((accepted({"--show", "ab12", "--markdown"}).format == export_format::markdown));

    o = accepted({"--export", "ab12"});
    BOOST_TEST((o.what == command::export_session));
    BOOST_TEST(o.session == "ab12");
    BOOST_TEST((o.format == export_format::markdown)); // the default
    BOOST_TEST(o.output.empty());
    BOOST_TEST(
        (accepted({"--export", "ab12", "--format", "jsonl"}).format == export_format::jsonl));
    BOOST_TEST((accepted({"--export", "ab12", "--format=json"}).format == export_format::json));
    o = accepted({"--export", "ab12", "-o", "out/s.md"});
    BOOST_TEST(o.output == std::filesystem::path("out/s.md"));
    BOOST_TEST(accepted({"--export", "ab12", "--output", "x"}).output ==
               std::filesystem::path("x"));

    o = accepted({"--search", "revenue"});
    BOOST_TEST((o.what == command::search));
    BOOST_TEST(o.search_text == "revenue");
    BOOST_TEST((o.limit == std::optional<std::size_t>(20)));
    BOOST_TEST(!o.json);
    o = accepted({"--search", "Umsatz für Q3", "--limit", "5", "--json"});
    BOOST_TEST(o.search_text == "Umsatz für Q3");
    BOOST_TEST((o.limit == std::optional<std::size_t>(5)));
    BOOST_TEST(o.json);

    BOOST_TEST(!accepted({"--list-sessions"}).limit); // every session
    BOOST_TEST(accepted({"--list-sessions", "--limit", "2"}).limit.value_or(0) == 2u);
    BOOST_TEST(accepted({"--list-sessions", "--limit=1000000", "--json"}).limit.value_or(0) ==
               1000000u);
}

BOOST_AUTO_TEST_CASE(read_command_options_belong_to_their_commands) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--show", "ab12", "--export", "ab12"}, "--show and --export cannot be used together"},
        {{"--search", "x", "--list-sessions"},
         "--list-sessions and --search cannot be used together"},
        {{"--export", "ab12", "--delete-session", "ab12"},
         "--delete-session and --export cannot be used together"},
        {{"--show", "ab12", "-p", "q"}, "--show cannot be used with --prompt"},
        {{"--export", "ab12", "-s", "ab12"}, "--export cannot be used with --session"},
        {{"--search", "x", "-c"}, "--search cannot be used with --continue"},
        {{"--limit", "3"}, "--limit needs --search or --list-sessions"},
        {{"--show", "ab12", "--limit", "3"}, "--limit needs --search or --list-sessions"},
        {{"--format", "json"}, "--format needs --export"},
        {{"--show", "ab12", "--format", "json"}, "--format needs --export"},
        {{"-o", "f"}, "-o (--output) needs --export"},
        {{"--search", "x", "-o", "f"}, "-o (--output) needs --export"},
        {{"--markdown"}, "--markdown needs --show"},
        {{"--export", "ab12", "--markdown"}, "--markdown needs --show"},
        {{"--show", "ab12", "--json", "--markdown"}, "--show takes --json or --markdown, not both"},
        {{"--export", "ab12", "--json"},
         "--json needs --list-sessions, --list-trash, --search, --show, --verify, --explain or "
         "--prompt"},
        {{"--explain"}, "--explain needs a session: -s ID, -r ID or -c"},
        {{"--list-sessions", "--explain"}, "--explain needs a session: -s ID, -r ID or -c"},
        {{"-r", "--explain"}, "--explain needs a session: -s ID, -r ID or -c"},
        {{"-s", "ab12", "--explain", "-p", "q"},
         "--explain cannot be used with --prompt (it asks nothing)"},
        {{"-s", "ab12", "--explain", "--incognito"},
         "--explain cannot be used with --incognito (it asks nothing)"},
        {{"--search", ""}, "--search needs a text to find, not an empty one"},
        {{"--search", "\xff"}, "--search: the text is not valid UTF-8"},
        {{"--export", "ab12", "--format", "xml"},
         "--format: expected markdown, json or jsonl, got 'xml'"},
        {{"--export", "ab12", "-o", ""}, "-o (--output) needs a file name"},
        {{"--search", "x", "--limit", "0"},
         "--limit: expected a whole number from 1 to 1000000, got '0'"},
        {{"--list-sessions", "--limit", "1000001"},
         "--limit: expected a whole number from 1 to 1000000, got '1000001'"},
        {{"--list-sessions", "--limit", "-2"},
         "--limit: expected a whole number from 1 to 1000000, got '-2'"},
    };
    for (const auto& [args, expected] : cases)
        BOOST_TEST(refused(args) == expected, joined(args));
    for (const auto* id : {"../x", "ABCD1234", "abc"}) {
        BOOST_TEST(refused({"--show", id}).find("invalid session id") != std::string::npos, id);
        BOOST_TEST(refused({"--export", id}).find("invalid session id") != std::string::npos, id);
    }
    refused({"--show"}); // missing values
    refused({"--export"});
    refused({"--search"});
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
    for (const auto* word : {"--session",
                             "--continue",
                             "--prompt",
                             "--list-sessions",
                             "--json",
                             "--delete-session",
                             "--yes",
                             "--sessions-dir",
                             "--agent-cmd",
                             "--history-limit",
                             "--explain",
                             "--help",
                             "--version",
                             "--show",
                             "--export",
                             "--search",
                             "--markdown",
                             "--format",
                             "--output",
                             "-o",
                             "--limit",
                             "jsonl",
                             "DEXTER_SESSIONS_DIR",
                             "DEXTER_AGENT_CMD",
                             "--rename",
                             "--fork",
                             "ID[@SEQ]",
                             "--import",
                             "--permanent",
                             "--list-trash",
                             "--restore",
                             "--purge-trash",
                             "--prune",
                             "--older-than",
                             "--dry-run",
                             "DURATION",
                             "30d",
                             "--pin",
                             "--unpin",
                             "--verify",
                             "--repair",
                             "--incognito",
                             "--no-redact",
                             "/rename",
                             "/fork",
                             "/help"})
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

BOOST_AUTO_TEST_CASE(words_that_are_not_options_are_the_one_shot_question) {
    options o = accepted({"what", "is", "X?"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.prompt == "what is X?");
    o = accepted({"-c", "and Y?"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.continue_last);
    BOOST_TEST(o.prompt == "and Y?");
    o = accepted({"--fork", "ab12@2", "try", "again"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.prompt == "try again");
    // After --, even a word that looks like an option.
    BOOST_TEST(accepted({"--", "-p", "means?"}).prompt == "-p means?");

    BOOST_TEST(refused({"-p", "one", "two"}) ==
               "the question is given twice: as -p TEXT and as an argument");
    BOOST_TEST(refused({"--show", "ab12", "extra"}) == "--show cannot be used with a question");
    BOOST_TEST(refused({"--list-sessions", "x"}) ==
               "--list-sessions cannot be used with a question");
    BOOST_TEST(refused({"  "}) == "the question is empty");
}

BOOST_AUTO_TEST_CASE(p_dash_reads_the_question_from_standard_input) {
    const options o = accepted({"-p", "-"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.prompt_from_stdin);
    BOOST_TEST(!accepted({"-p", "x"}).prompt_from_stdin);
    BOOST_TEST(!accepted({"-"}).prompt_from_stdin); // a question "-", as written
}

BOOST_AUTO_TEST_CASE(resume_takes_an_id_or_picks_one) {
    options o = accepted({"-r"});
    BOOST_TEST((o.what == command::interactive));
    BOOST_TEST(o.pick_session);
    BOOST_TEST(o.session.empty());
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-r", "ab12"}, {"--resume", "ab12"}, {"--resume=ab12"}, {"-rab12"}}) {
        o = accepted(args);
        BOOST_TEST(!o.pick_session, joined(args));
        BOOST_TEST(o.session == "ab12", joined(args));
        BOOST_TEST((o.what == command::interactive), joined(args));
    }
    o = accepted({"-r", "ab12cd34", "next", "question"});
    BOOST_TEST((o.what == command::one_shot));
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(o.prompt == "next question");
    // A word that cannot be an id is the question, and the session is picked.
    o = accepted({"-r", "What now?"});
    BOOST_TEST(o.pick_session);
    BOOST_TEST(o.prompt == "What now?");
    o = accepted({"-r", "-p", "q"});
    BOOST_TEST(o.pick_session);
    BOOST_TEST(o.prompt == "q");

    // A short word after -r is a question: the shortest prefix taken is 4 characters.
    o = accepted({"-r", "why"});
    BOOST_TEST(o.pick_session);
    BOOST_TEST(o.prompt == "why");
    // The value of another option is never -r.
    o = accepted({"-p", "-r"});
    BOOST_TEST(!o.pick_session);
    BOOST_TEST(o.prompt == "-r");
    o = accepted({"--search", "-r"});
    BOOST_TEST(o.search_text == "-r");
    o = accepted({"-p", "-r", "-s", "abcd1234"});
    BOOST_TEST(o.prompt == "-r");
    BOOST_TEST(o.session == "abcd1234");
    BOOST_TEST(refused({"-r", "-c"}) == "--resume and --continue cannot be used together");
    BOOST_TEST(refused({"-r", "ab12", "-s", "ab12"}) ==
               "--resume and --session cannot be used together");
    BOOST_TEST(refused({"--show", "ab12", "-r"}) == "--show cannot be used with --resume");
    BOOST_TEST(refused({"--incognito", "-r"}).find("--incognito cannot be used with --resume") ==
               0u);
}

BOOST_AUTO_TEST_CASE(capital_v_is_the_version) {
    BOOST_TEST((accepted({"-V"}).what == command::show_version));
}

BOOST_AUTO_TEST_CASE(help_lists_each_option_once_in_its_group) {
    const std::string help = dexter::cli::help_text();
    std::vector<std::string> option_lines;
    std::istringstream in(help);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("  -")) // an option's names, then two spaces, its description
            option_lines.push_back(line.substr(0, line.find("  ", 2)) + ' ');
    std::size_t groups_seen = 0;
    for (const auto* group : {"\nConversation:\n", "\nSessions:\n", "\nOutput:\n", "\nStore:\n"})
        groups_seen += help.find(group) != std::string::npos;
    BOOST_TEST(groups_seen == 4u);
    const auto lines_naming = [&](const std::string& option) {
        return std::count_if(option_lines.begin(), option_lines.end(), [&](const auto& line) {
            return line.find(option + ' ') != std::string::npos;
        });
    };
    for (const auto* option :
         {"--prompt",     "--continue",   "--session",       "--resume",        "--fork",
          "--incognito",  "--agent-cmd",  "--history-limit", "--list-sessions", "--show",
          "--export",     "--search",     "--rename",        "--import",        "--delete-session",
          "--permanent",  "--list-trash", "--restore",       "--purge-trash",   "--prune",
          "--older-than", "--dry-run",    "--pin",           "--unpin",         "--yes",
          "--json",       "--markdown",   "--format",        "--output",        "--limit",
          "--raw",        "--store",      "--sessions-dir",  "--help",          "--version",
          "--explain",    "--verify",     "--repair",        "--no-redact"})
        BOOST_TEST(lines_naming(option) == 1, option);
    BOOST_TEST(option_lines.size() == 39u);
}

BOOST_AUTO_TEST_CASE(the_stream_sanitizer_equals_the_sanitizer_of_the_whole_text) {
    using dexter::cli::terminal_safe;
    const std::vector<std::string> texts{
        "plain text\nwith lines\r\nand CRLF",
        "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 end",
        "\x1b]0;pwned\x07\x1b[31mred\x1b]52;c;aGk=\x1b\\ \xc2\x9b"
        "2J",
        "cr\rover\r\n\r\r\nbs\b\b",
        "bad \xff\xfe utf-8 \xe4\xb8 cut \xf0\x9f\x98",
        std::string("nul\0in", 7),
    };
    for (const auto& text : texts) {
        const std::string whole = terminal_safe(text, true);
        for (std::size_t a = 0; a <= text.size(); ++a)
            for (std::size_t b = a; b <= text.size(); ++b) {
                dexter::cli::terminal_safe_stream stream;
                std::string shown = stream.feed(std::string_view(text).substr(0, a));
                shown += stream.feed(std::string_view(text).substr(a, b - a));
                shown += stream.feed(std::string_view(text).substr(b));
                shown += stream.finish();
                BOOST_TEST_REQUIRE(shown == whole, "cut at " << a << " and " << b);
            }
    }
}

BOOST_AUTO_TEST_CASE(verify_and_repair_take_an_optional_id) {
    options o = accepted({"--verify"});
    BOOST_TEST((o.what == command::verify));
    BOOST_TEST(o.session.empty());
    o = accepted({"--verify", "ab12cd34", "--json"});
    BOOST_TEST((o.what == command::verify));
    BOOST_TEST(o.session == "ab12cd34");
    BOOST_TEST(o.json);
    o = accepted({"--json", "--verify"});
    BOOST_TEST((o.what == command::verify));
    BOOST_TEST(o.session.empty());
    o = accepted({"--repair", "-y"});
    BOOST_TEST((o.what == command::repair));
    BOOST_TEST(o.session.empty());
    BOOST_TEST(o.yes);
    o = accepted({"--repair", "ab12", "-y"});
    BOOST_TEST(o.session == "ab12");
    o = accepted({"--repair=ab12cd34"});
    BOOST_TEST(o.session == "ab12cd34");
    // What they do not go with.
    BOOST_TEST(refused({"--repair", "--json"}).find("--json needs") != std::string::npos);
    BOOST_TEST(refused({"--verify", "-y"}).find("--yes needs") != std::string::npos);
    refused({"--verify", "--repair"});
    refused({"--verify", "--list-sessions"});
    refused({"--verify", "-c"});
    refused({"--verify", "Which quarter?"}); // a question is not an id
    refused({"--verify=AB12CD34"});          // a malformed id
}
