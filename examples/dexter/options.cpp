// SPDX-License-Identifier: BSL-1.0
// dexter's command line, with Boost.Program_options.
#include "options.hpp"

#include <dexter/sessions/id.hpp>
#include <dexter/sessions/session_manager.hpp>
#include <dexter/sessions/utf8.hpp>

#include <boost/program_options.hpp>

#include <cstdlib>
#include <iterator>
#include <set>
#include <sstream>
#include <vector>

namespace dexter::cli {

namespace po = boost::program_options;

namespace {

// Every option, once, in the groups --help shows them in.
po::options_description describe_options() {
    po::options_description conversation("Conversation");
    // clang-format off
    conversation.add_options()
        ("prompt,p", po::value<std::string>()->value_name("TEXT"),
         "one-shot: answer TEXT, save the exchange, print the answer, exit; - reads TEXT "
         "from standard input; piped standard input is added to TEXT as context")
        ("continue,c", "resume the most recently updated session")
        ("session,s", po::value<std::string>()->value_name("ID"),
         "resume session ID (a unique prefix of 4+ characters also works)")
        ("resume,r", po::value<std::string>()->value_name("[ID]"),
         "resume session ID, as -s; without an ID, pick one from a numbered list (on a "
         "terminal)")
        ("fork", po::value<std::string>()->value_name("ID[@SEQ]"),
         "copy session ID (through exchange SEQ) into a new session and print its id; "
         "with a question, or on a terminal, continue in the copy")
        ("incognito", "a conversation kept in memory only: nothing is written anywhere")
        ("agent-cmd", po::value<std::string>()->value_name("CMD"),
         "answer with CMD, run by /bin/sh -c (default $DEXTER_AGENT_CMD, else the "
         "built-in offline agent)")
        ("history-limit", po::value<std::string>()->value_name("N"),
         "turns of context sent to the agent (default 10)")
        ("explain", "with -s, -r ID or -c: resume, print what was loaded, skipped and "
         "repaired and the messages the agent would be sent, and exit (or --json)");
    po::options_description sessions("Sessions");
    sessions.add_options()
        ("list-sessions", "list sessions, newest first, then exit")
        ("show", po::value<std::string>()->value_name("ID"),
         "print session ID, every exchange (readable; or --json, --markdown)")
        ("export", po::value<std::string>()->value_name("ID"),
         "write session ID in a format (--format) to standard output or -o FILE")
        ("search", po::value<std::string>()->value_name("TEXT"),
         "find TEXT in titles, questions and answers, newest first; exit 1 if nowhere")
        ("rename", po::value<std::vector<std::string>>()->multitoken()->value_name("ID TITLE"),
         "give session ID the title TITLE")
        ("import", po::value<std::string>()->value_name("FILE"),
         "import a session exported as json or jsonl from FILE (- for standard input) "
         "and print its id (a fresh one if the original is taken)")
        ("delete-session", po::value<std::string>()->value_name("ID"),
         "move session ID to the trash (--restore brings it back)")
        ("permanent", "with --delete-session: delete for good (asks on a terminal)")
        ("list-trash", "list the sessions in the trash, most recently deleted first")
        ("restore", po::value<std::string>()->value_name("ID"),
         "bring session ID back from the trash, under the same id")
        ("purge-trash", "delete for good what was moved to the trash more than "
         "--older-than ago (asks on a terminal)")
        ("prune", "move sessions whose last exchange is older than --older-than to the "
         "trash (asks on a terminal); pinned sessions stay")
        ("older-than", po::value<std::string>()->value_name("DURATION"),
         "with --purge-trash or --prune: 30d, 12h, 90m, 45s, 2w (0: everything)")
        ("dry-run", "with --prune: list what would move, change nothing")
        ("pin", po::value<std::string>()->value_name("ID"),
         "pin session ID: --prune never moves it ([pinned] in the list)")
        ("unpin", po::value<std::string>()->value_name("ID"), "unpin session ID")
        ("verify", po::value<std::string>()->value_name("[ID]"),
         "check every session (or session ID) for damage, changing nothing; exit 1 if "
         "anything is wrong")
        ("repair", po::value<std::string>()->value_name("[ID]"),
         "repair every damaged session (or session ID): damaged lines go to quarantine, "
         "nothing is lost (asks on a terminal)")
        ("yes,y", "with --delete-session --permanent, --purge-trash, --prune or --repair: do "
         "not ask");
    po::options_description output("Output");
    output.add_options()
        ("json", "with --list-sessions, --list-trash, --search, --show, --verify or a "
         "one-shot question: print JSON")
        ("markdown", "with --show: print the session as Markdown")
        ("format", po::value<std::string>()->value_name("FMT"),
         "with --export: markdown (default), json or jsonl")
        ("output,o", po::value<std::string>()->value_name("FILE"),
         "with --export: write FILE, replaced only once the export is complete")
        ("limit", po::value<std::string>()->value_name("N"),
         "with --search: at most N hits (default 20); with --list-sessions: the newest N")
        ("raw", "show answers and stored text as they are, escape sequences included (an "
         "agent's colours); JSON output is the same either way");
    po::options_description store("Store");
    store.add_options()
        ("store", po::value<std::string>()->value_name("URI|DIR"),
         "where sessions are kept: postgresql://... (a PostgreSQL database) or a "
         "directory (as --sessions-dir); default $DEXTER_STORE")
        ("sessions-dir", po::value<std::string>()->value_name("DIR"),
         "store root (default ./.dexter/sessions, or $DEXTER_SESSIONS_DIR)")
        ("no-redact", "save secrets as they are: without it, API keys, tokens, passwords and "
         "private keys are replaced by [REDACTED:<kind>] in what is saved (the conversation in "
         "memory keeps them)");
    po::options_description general("Help");
    general.add_options()
        ("help,h", "show this help and exit")
        ("version,V", "show the version and exit");
    // clang-format on
    po::options_description all;
    all.add(conversation).add(sessions).add(output).add(store).add(general);
    return all;
}

// A session id or prefix as the library accepts it, checked before it goes anywhere.
std::optional<usage_error> check_session_arg(const std::string& value) {
    const std::size_t min_prefix = sessions::manager_options{}.min_prefix;
    if (value.size() >= min_prefix && sessions::is_valid_session_id_prefix(value))
        return std::nullopt;
    // The library's wording, which quotes a hostile value safely.
    const sessions::invalid_session_id bad(
        value, "expected 8 characters of [0-9a-z], or a unique prefix of " +
                   std::to_string(min_prefix) + " or more");
    return usage_error{bad.what()};
}

// Whether a word can be a session id or a prefix of one: [0-9a-z], 4 to 8 characters
// (the shortest prefix the library resolves).
bool could_be_an_id(std::string_view word) {
    return word.size() >= 4 && word.size() <= 8 &&
           word.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string::npos;
}

// A whole number from `min` to `max` (at most 7 digits), or nothing.
std::optional<std::size_t> parse_count(const std::string& text, std::size_t min, std::size_t max) {
    if (text.empty() || text.size() > 7)
        return std::nullopt;
    std::size_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (n < min || n > max)
        return std::nullopt;
    return n;
}

// --fork's value: ID or ID@SEQ (SEQ a whole number from 1).
std::variant<std::pair<std::string, std::optional<std::uint64_t>>, usage_error>
parse_fork_arg(const std::string& value) {
    const auto at = value.find('@');
    std::string id = value.substr(0, at);
    if (auto bad = check_session_arg(id))
        return *bad;
    if (at == std::string::npos)
        return std::pair{std::move(id), std::optional<std::uint64_t>()};
    const auto seq = parse_count(value.substr(at + 1), 1, 9'999'999);
    if (!seq)
        return usage_error{"--fork: expected ID or ID@SEQ with SEQ a whole number from 1, got '" +
                           value.substr(at + 1) + "' after the @"};
    return std::pair{std::move(id), std::optional<std::uint64_t>(*seq)};
}

// The command line with "-r ID" and "--resume ID" spelled "--resume=ID", and a bare -r
// "--pick-session": -r's ID is optional (without it, a picker). The word after -r is its ID
// when it can be one (could_be_an_id()); any other word (a question with a space, a word
// with a capital, a short word) is not. The value of another option is left alone.
std::vector<std::string> resume_with_its_id(int argc, const char* const argv[],
                                            const po::options_description& described) {
    // The spellings of the options that take a value ("-p", "--prompt"): the word after
    // one of them is its value, even "-r".
    std::set<std::string, std::less<>> take_a_value;
    for (const auto& option : described.options()) {
        if (option->semantic()->max_tokens() != 1 || option->long_name() == "resume" ||
            option->long_name() == "verify" || option->long_name() == "repair")
            continue; // a switch, --rename's two words, or an optional ID
        take_a_value.insert(option->canonical_display_name(po::command_line_style::allow_long));
        take_a_value.insert(
            option->canonical_display_name(po::command_line_style::allow_dash_for_short));
    }
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") { // the rest are words, whatever they look like
            args.insert(args.end(), argv + i, argv + argc);
            break;
        }
        if (take_a_value.contains(arg) && i + 1 < argc && *argv[i + 1] != '\0') {
            // Attached, so that a value that looks like an option ("-r") stays a value.
            args.push_back(std::string(arg) + (arg.starts_with("--") ? "=" : "") + argv[++i]);
            continue;
        }
        if (arg == "-r" || arg == "--resume") {
            // Spelled out: Boost.Program_options would take any word after it as its
            // optional value.
            const bool id = i + 1 < argc && could_be_an_id(argv[i + 1]);
            args.push_back(id ? std::string("--resume=") + argv[++i] : "--pick-session");
            continue;
        }
        if (arg == "--verify" || arg == "--repair") {
            // Their ID is optional too: without one, the whole store.
            const bool id = i + 1 < argc && could_be_an_id(argv[i + 1]);
            args.push_back(std::string(arg) + (id ? std::string("=") + argv[++i] : "-all"));
            continue;
        }
        args.emplace_back(arg);
    }
    return args;
}

} // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text.size() < 2 || text.size() > 10)
        return std::nullopt;
    std::int64_t n = 0;
    for (const char c : text.substr(0, text.size() - 1)) {
        if (c < '0' || c > '9')
            return std::nullopt;
        n = n * 10 + (c - '0');
    }
    using namespace std::chrono;
    switch (text.back()) {
    case 's':
        return duration_cast<milliseconds>(seconds(n));
    case 'm':
        return duration_cast<milliseconds>(minutes(n));
    case 'h':
        return duration_cast<milliseconds>(hours(n));
    case 'd':
        return duration_cast<milliseconds>(days(n));
    case 'w':
        return duration_cast<milliseconds>(weeks(n));
    default:
        return std::nullopt;
    }
}

bool is_postgres_uri(const std::string& store) {
    return store.starts_with("postgresql://") || store.starts_with("postgres://");
}

std::optional<std::string> process_environment(const std::string& name) {
    if (const char* v = std::getenv(name.c_str()))
        return std::string(v);
    return std::nullopt;
}

std::variant<options, usage_error> parse_options(int argc, const char* const argv[],
                                                 const env_lookup& env) {
    po::options_description described = describe_options();
    // The words that are not options: a question, as -p's TEXT (agent CLIs take one so).
    described.add_options()("question", po::value<std::vector<std::string>>());
    described.add_options()("pick-session", ""); // -r without an ID
    described.add_options()("verify-all", "");   // --verify without an ID
    described.add_options()("repair-all", "");   // --repair without an ID

    po::positional_options_description positional;
    positional.add("question", -1);
    // No abbreviations (--sess): an option means exactly what its name says.
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::variables_map given;
    try {
        po::store(po::command_line_parser(resume_with_its_id(argc, argv, described))
                      .options(described)
                      .style(style)
                      .positional(positional)
                      .run(),
                  given);
    } catch (const po::error& e) {
        return usage_error{e.what()};
    }
    // --verify and --repair without an ID: the same command, for the whole store.
    for (const char* name : {"verify", "repair"})
        if (given.count(name + std::string("-all")))
            given.insert({name, po::variable_value(boost::any(std::string()), false)});
    const auto has = [&](const char* name) { return given.count(name) > 0; };
    const auto text = [&](const char* name) { return given[name].as<std::string>(); };

    options o;
    if (has("help")) {
        o.what = command::show_help;
        return o;
    }
    if (has("version")) {
        o.what = command::show_version;
        return o;
    }
    // A question given as words is -p's TEXT; the checks below name it as it was given.
    const bool words = has("question");
    if (words && has("prompt"))
        return usage_error{"the question is given twice: as -p TEXT and as an argument"};
    const auto present = [&](std::string_view name) {
        if (name == "prompt")
            return has("prompt") || words;
        if (name == "resume")
            return has("resume") || has("pick-session");
        return has(std::string(name).c_str());
    };
    const auto spelled = [&](std::string_view name) {
        return name == "prompt" && words ? std::string("a question") : "--" + std::string(name);
    };

    // Which command, and which options go together. The commands other than a
    // conversation exclude each other, and a conversation's -p, -s and -c (--fork goes
    // with -p: a one-shot question in the fork).
    const bool list = has("list-sessions"), del = has("delete-session"), prompt = present("prompt");
    const bool show = has("show"), exp = has("export"), search = has("search");
    const bool session = has("session"), cont = has("continue"), fork = has("fork");
    const bool resume = has("resume") || has("pick-session");
    const bool rename = has("rename"), import = has("import"), trash = has("list-trash");
    const bool restore = has("restore"), purge = has("purge-trash"), prune = has("prune");
    const bool pin = has("pin"), unpin = has("unpin");
    const bool verify = has("verify"), repair = has("repair");
    if (session && cont)
        return usage_error{"--session and --continue cannot be used together"};
    if (resume && (session || cont))
        return usage_error{std::string("--resume and --") + (session ? "session" : "continue") +
                           " cannot be used together"};
    const char* const commands[] = {"list-sessions", "delete-session", "show",        "export",
                                    "search",        "rename",         "fork",        "import",
                                    "list-trash",    "restore",        "purge-trash", "prune",
                                    "pin",           "unpin",          "verify",      "repair"};
    for (std::size_t i = 0; i < std::size(commands); ++i) {
        if (!has(commands[i]))
            continue;
        for (std::size_t j = i + 1; j < std::size(commands); ++j)
            if (has(commands[j]))
                return usage_error{std::string("--") + commands[i] + " and --" + commands[j] +
                                   " cannot be used together"};
        for (const std::string_view other : {"prompt", "session", "continue", "resume"})
            if (present(other) && !(fork && other == "prompt"))
                return usage_error{std::string("--") + commands[i] + " cannot be used with " +
                                   spelled(other)};
    }
    const bool explain = has("explain");
    if (explain && !(session || cont || has("resume")))
        return usage_error{"--explain needs a session: -s ID, -r ID or -c"};
    if (explain && (prompt || fork || has("incognito")))
        return usage_error{std::string("--explain cannot be used with ") +
                           (prompt ? spelled("prompt")
                            : fork ? "--fork"
                                   : "--incognito") +
                           " (it asks nothing)"};
    if (has("json") && !list && !prompt && !show && !search && !trash && !explain && !verify)
        return usage_error{"--json needs --list-sessions, --list-trash, --search, --show, "
                           "--verify, --explain or --prompt"};
    if (has("markdown") && !show)
        return usage_error{"--markdown needs --show"};
    if (has("markdown") && has("json"))
        return usage_error{"--show takes --json or --markdown, not both"};
    if (has("format") && !exp)
        return usage_error{"--format needs --export"};
    if (has("output") && !exp)
        return usage_error{"-o (--output) needs --export"};
    if (has("limit") && !search && !list)
        return usage_error{"--limit needs --search or --list-sessions"};
    if (has("yes") && !del && !purge && !prune && !repair)
        return usage_error{"--yes needs --delete-session, --purge-trash, --prune or --repair"};
    if (has("permanent") && !del)
        return usage_error{"--permanent needs --delete-session"};
    if (has("older-than") && !purge && !prune)
        return usage_error{"--older-than needs --purge-trash or --prune"};
    if ((purge || prune) && !has("older-than"))
        return usage_error{std::string(purge ? "--purge-trash" : "--prune") +
                           " needs --older-than DURATION (0 for everything)"};
    if (has("dry-run") && !prune)
        return usage_error{"--dry-run needs --prune"};
    if (has("incognito")) {
        for (const char* other : {"session", "continue", "resume", "fork", "store", "sessions-dir"})
            if (present(other))
                return usage_error{std::string("--incognito cannot be used with --") + other +
                                   " (an incognito conversation uses no store)"};
        for (const char* command : commands)
            if (has(command))
                return usage_error{std::string("--incognito cannot be used with --") + command +
                                   " (an incognito conversation uses no store)"};
    }

    o.what = list      ? command::list_sessions
             : del     ? command::delete_session
             : show    ? command::show_session
             : exp     ? command::export_session
             : search  ? command::search
             : rename  ? command::rename_session
             : import  ? command::import_session
             : trash   ? command::list_trash
             : restore ? command::restore
             : purge   ? command::purge_trash
             : prune   ? command::prune
             : pin     ? command::pin_session
             : unpin   ? command::unpin_session
             : verify  ? command::verify
             : repair  ? command::repair
             : explain ? command::explain_resume
             : prompt  ? command::one_shot
             : fork    ? command::fork_session
                       : command::interactive;
    o.continue_last = cont;
    o.json = has("json");
    o.yes = has("yes");
    o.permanent = has("permanent");
    o.dry_run = has("dry-run");
    o.incognito = has("incognito");
    o.redact = !has("no-redact");
    o.raw = has("raw");
    if (session || del || show || exp || restore || pin || unpin) {
        o.session = text(session   ? "session"
                         : del     ? "delete-session"
                         : show    ? "show"
                         : exp     ? "export"
                         : restore ? "restore"
                         : pin     ? "pin"
                                   : "unpin");
        if (auto bad = check_session_arg(o.session))
            return *bad;
    }
    if (verify || repair) {
        o.session = text(verify ? "verify" : "repair"); // empty: every session
        if (!o.session.empty())
            if (auto bad = check_session_arg(o.session))
                return *bad;
    }
    if (fork) {
        auto parsed = parse_fork_arg(text("fork"));
        if (auto* bad = std::get_if<usage_error>(&parsed))
            return *bad;
        auto& [id, seq] = std::get<0>(parsed);
        o.fork = true;
        o.session = std::move(id);
        o.fork_seq = seq;
    }
    if (rename) {
        const auto& values = given["rename"].as<std::vector<std::string>>();
        if (values.size() != 2)
            return usage_error{"--rename takes an ID and a TITLE (quote a title with spaces)"};
        o.session = values[0];
        if (auto bad = check_session_arg(o.session))
            return *bad;
        o.title = values[1];
        if (o.title.find_first_not_of(" \t\r\n") == std::string::npos)
            return usage_error{"--rename needs a title, not an empty text"};
        if (!sessions::is_valid_utf8(o.title))
            return usage_error{"--rename: the title is not valid UTF-8"};
    }
    if (import) {
        o.import_file = text("import");
        if (o.import_file.empty())
            return usage_error{"--import needs a file name (or - for standard input)"};
    }
    if (has("older-than")) {
        const auto d = parse_duration(text("older-than"));
        if (!d)
            return usage_error{"--older-than: expected a DURATION such as 30d, 12h, 90m, 45s or "
                               "2w, got '" +
                               text("older-than") + "'"};
        o.older_than = *d;
    }
    if (resume) {
        o.pick_session = has("pick-session");
        if (has("resume") && o.pick_session)
            return usage_error{"--resume is given twice"};
        if (!o.pick_session)
            o.session = text("resume");
        if (!o.pick_session)
            if (auto bad = check_session_arg(o.session))
                return *bad;
    }
    if (words) {
        for (const auto& word : given["question"].as<std::vector<std::string>>())
            o.prompt += (o.prompt.empty() ? "" : " ") + word;
        if (o.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
            return usage_error{"the question is empty"};
    } else if (prompt) {
        o.prompt = text("prompt");
        o.prompt_from_stdin = o.prompt == "-";
        if (o.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
            return usage_error{"--prompt needs a question, not an empty text"};
    }
    if (show && has("json"))
        o.format = sessions::export_format::json;
    if (show && has("markdown"))
        o.format = sessions::export_format::markdown;
    if (exp) {
        o.format = sessions::export_format::markdown;
        if (has("format")) {
            o.format = sessions::parse_export_format(text("format"));
            if (!o.format)
                return usage_error{"--format: expected markdown, json or jsonl, got '" +
                                   text("format") + "'"};
        }
        if (has("output")) {
            if (text("output").empty())
                return usage_error{"-o (--output) needs a file name"};
            o.output = text("output");
        }
    }
    if (search) {
        o.search_text = text("search");
        if (o.search_text.empty())
            return usage_error{"--search needs a text to find, not an empty one"};
        if (!sessions::is_valid_utf8(o.search_text))
            return usage_error{"--search: the text is not valid UTF-8"};
        o.limit = default_search_limit;
    }
    if (has("limit")) {
        o.limit = parse_count(text("limit"), 1, max_limit);
        if (!o.limit)
            return usage_error{"--limit: expected a whole number from 1 to " +
                               std::to_string(max_limit) + ", got '" + text("limit") + "'"};
    }

    // Values that may also come from the environment; the command line wins.
    auto set_store = [&](const std::string& store) {
        if (is_postgres_uri(store))
            o.store_uri = store;
        else
            o.sessions_dir = store;
    };
    if (has("store") && has("sessions-dir"))
        return usage_error{"--store and --sessions-dir both say where sessions are: give one"};
    if (has("store")) {
        if (text("store").empty())
            return usage_error{"--store needs a postgresql:// URI or a directory"};
        set_store(text("store"));
    } else if (has("sessions-dir")) {
        if (text("sessions-dir").empty())
            return usage_error{"--sessions-dir needs a directory"};
        o.sessions_dir = text("sessions-dir");
    } else if (o.incognito) {
        // An incognito conversation uses no store: the environment's is not looked at.
    } else if (auto store = env("DEXTER_STORE"); store && !store->empty()) {
        set_store(*store);
    } else if (auto dir = env("DEXTER_SESSIONS_DIR"); dir && !dir->empty()) {
        o.sessions_dir = *dir;
    }
    if (has("agent-cmd")) {
        if (text("agent-cmd").empty())
            return usage_error{"--agent-cmd needs a command"};
        o.agent_command = text("agent-cmd");
    } else if (auto cmd = env("DEXTER_AGENT_CMD"); cmd && !cmd->empty()) {
        o.agent_command = *cmd;
    }
    if (has("history-limit")) {
        auto n = parse_count(text("history-limit"), 0, max_history_limit);
        if (!n)
            return usage_error{"--history-limit: expected a whole number from 0 to " +
                               std::to_string(max_history_limit) + ", got '" +
                               text("history-limit") + "'"};
        o.history_limit = *n;
    }
    return o;
}

std::string help_text() {
    std::ostringstream out;
    out << "Usage:\n"
           "  dexter [QUESTION]          a new session: answer QUESTION and exit, or talk\n"
           "  dexter -c | -r [ID] | -s ID [QUESTION]\n"
           "                             the same in the last, a picked, or session ID\n"
           "  cat FILE | dexter -p TEXT  ask TEXT with FILE's text as context\n"
           "  dexter --list-sessions | --show ID | --search TEXT | --export ID ...\n"
           "\n"
        << describe_options()
        << "\n"
           "A question is -p TEXT or the words that are not options (dexter \"what is X?\",\n"
           "dexter -c \"and Y?\"). With -p (or a question) and standard input a pipe or a\n"
           "file, what it holds (at most 1 MiB of UTF-8) follows the question as context;\n"
           "-p - makes standard input the question itself. The word right after -r is its\n"
           "ID when it can be one ([0-9a-z]); put a question elsewhere. --fork takes\n"
           "ID[@SEQ]: exchanges 1..SEQ, default all.\n"
           "\n"
           "DURATION is a whole number and a unit: s, m, h, d or w (30d, 12h, 90m, 45s, 2w);\n"
           "0 (as 0d) means everything.\n"
           "\n"
           "Interactive mode reads one question per line until end of input, 'exit', 'quit'\n"
           "or '/exit'. Every answered question is saved before its answer is shown.\n"
           "Commands: /rename TITLE (the session's title), /fork (continue in a copy of the\n"
           "session so far), /help; any other line starting with /word is refused.\n"
           "Ctrl-C while the agent works stops it and saves nothing for that question;\n"
           "Ctrl-C at the prompt (or twice) leaves.\n"
           "\n"
           "The agent command reads one JSON object on standard input,\n"
           "  {\"session_id\":\"...\",\"messages\":[{\"role\":\"user\"|\"assistant\","
           "\"content\":\"...\"},...]}\n"
           "(the recent context, then the new question) and prints the answer on standard\n"
           "output. A non-zero exit or an empty answer is an error and nothing is saved.\n"
           "\n"
           "Environment: DEXTER_STORE, DEXTER_SESSIONS_DIR, DEXTER_AGENT_CMD.\n"
           "Text from sessions and agents is shown with control characters made visible\n"
           "(ESC as ^[), unless --raw; --json output, and answers, --export or --show\n"
           "--markdown into a file or pipe keep it exactly.\n"
           "\n"
           "Exit status: 0 success, 1 error (or --search found nothing), 2 usage error,\n"
           "130 interrupted.\n";
    return out.str();
}

} // namespace dexter::cli
