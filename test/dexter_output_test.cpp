// SPDX-License-Identifier: BSL-1.0
// What the real dexter binary shows of hostile text from the store and the agent: escaped
// when asked, on the resume replay, in --show and --search (and raw with --raw), JSON the
// same either way; the replay marked as history; tables cut by display width.
#include <dexter/sessions/jsonl_store.hpp>

#define BOOST_TEST_MODULE dexter_output
#include <boost/test/unit_test.hpp>

#include "support/temp_dir.hpp"

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef DEXTER_BINARY
#error "DEXTER_BINARY must name the dexter executable (the build passes it)"
#endif

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
using dexter::sessions::test::temp_dir;

namespace {

// A question and an answer that would retitle the terminal, turn it red, write the
// clipboard (OSC 52) and clear the screen (8-bit CSI) if printed as they are; and how
// dexter shows them escaped.
const std::string hostile_question = "what is \x1b]0;pwned\x07\x1b[31mred?";
const std::string hostile_answer =
    "answer \x1b]0;pwned\x07\x1b[31mred \x1b]52;c;cHduZWQ=\x1b\\ done \xc2\x9b"
    "2J";
const std::string escaped_question = "what is ^[]0;pwned^G^[[31mred?";
const std::string escaped_answer =
    "answer ^[]0;pwned^G^[[31mred ^[]52;c;cHduZWQ=^[\\ done <U+009B>2J";

// 2026-01-02 13:45:00 UTC, when the stored exchanges start.
const ds::time_point start = ds::time_point(std::chrono::seconds(1767361500));

std::string status_text(int status) {
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    return "signal " + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// True when `text` holds ESC, BEL or an 8-bit CSI (U+009B).
bool has_control(const std::string& text) {
    return text.find('\x1b') != std::string::npos || text.find('\x07') != std::string::npos ||
           text.find("\xc2\x9b") != std::string::npos;
}

// True when `text` holds one of the sequences of the hostile texts (a terminal also
// shows dexter's own: its spinner, its in-progress mark).
bool has_hostile_sequence(const std::string& text) {
    for (const std::string_view s : {"\x1b]", "\x07", "\x1b[31m", "\xc2\x9b"})
        if (text.find(s) != std::string::npos)
            return true;
    return false;
}

struct result {
    int status = 0;
    std::string out, err;
};

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Columns a terminal gives the text the tests use: CJK, Hangul and fullwidth forms 2,
// everything else (ASCII, "…", "·", "—") 1.
std::size_t columns(const std::string& line) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < line.size();) {
        const auto c = static_cast<unsigned char>(line[i]);
        const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        char32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (std::size_t k = 1; k < len && i + k < line.size(); ++k)
            cp = (cp << 6) | (static_cast<unsigned char>(line[i + k]) & 0x3F);
        n += (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
                     (cp >= 0xFF00 && cp <= 0xFF60)
                 ? 2
                 : 1;
        i += len;
    }
    return n;
}

// Pointers to `strings`, then a null pointer, as execve() takes them.
std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

struct fixture {
    temp_dir tmp;
    fs::path sessions = tmp.path() / "sessions";

    // An environment of its own: PATH, TZ=UTC, the store, TERM for terminals; then `extra`
    // (an empty value unsets).
    std::vector<std::string> environment(const std::map<std::string, std::string>& extra) const {
        std::map<std::string, std::string> env{
            {"TZ", "UTC"}, {"TERM", "xterm-256color"}, {"DEXTER_SESSIONS_DIR", sessions.string()}};
        const char* path = std::getenv("PATH");
        env["PATH"] = path ? path : "/usr/bin:/bin";
        for (const auto& [name, value] : extra)
            env[name] = value;
        std::vector<std::string> out;
        for (const auto& [name, value] : env)
            if (!value.empty() || name == "NO_COLOR")
                out.push_back(name + "=" + value);
        return out;
    }

    // Runs dexter to its end with standard input from `input` and standard output and
    // error into files.
    result run(std::vector<std::string> args, const std::string& input = {},
               const std::map<std::string, std::string>& extra = {}) const {
        const fs::path in = tmp.path() / "stdin", out = tmp.path() / "stdout",
                       err = tmp.path() / "stderr";
        std::ofstream(in, std::ios::binary) << input;
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 0, in.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        posix_spawn_file_actions_addopen(&files, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        args.insert(args.begin(), DEXTER_BINARY);
        std::vector<std::string> env = environment(extra);
        std::vector<char*> argv = pointers_to(args), envp = pointers_to(env);
        pid_t pid = -1;
        const int rc =
            ::posix_spawn(&pid, DEXTER_BINARY, &files, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&files);
        if (rc != 0)
            throw std::runtime_error("posix_spawn: " + std::string(std::strerror(rc)));
        result r;
        while (::waitpid(pid, &r.status, 0) < 0)
            if (errno != EINTR)
                throw std::runtime_error("waitpid: " + std::string(std::strerror(errno)));
        r.out = slurp(out);
        r.err = slurp(err);
        return r;
    }

    // Runs dexter on a pseudo-terminal (its standard input, output and error), types
    // `keys` once the terminal shows `after`, and returns all it showed once dexter has
    // ended.
    result run_on_terminal(std::vector<std::string> args, const std::string& keys = {},
                           const std::map<std::string, std::string>& extra = {},
                           const std::string& after = "— continuing —") const {
        args.insert(args.begin(), DEXTER_BINARY);
        std::vector<std::string> env = environment(extra);
        std::vector<char*> argv = pointers_to(args), envp = pointers_to(env);
        winsize size{};
        size.ws_row = 24;
        size.ws_col = 80;
        int master = -1;
        const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
        if (pid < 0)
            throw std::runtime_error("forkpty: " + std::string(std::strerror(errno)));
        if (pid == 0) {
            ::execve(DEXTER_BINARY, argv.data(), envp.data());
            ::_exit(127);
        }
        result r;
        bool typed = keys.empty();
        char buf[4096];
        for (;;) { // until EIO: dexter and everything holding the terminal are gone
            const ssize_t n = ::read(master, buf, sizeof buf);
            if (n > 0)
                r.out.append(buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR)
                break;
            if (!typed && r.out.find(after) != std::string::npos) {
                typed = true;
                if (::write(master, keys.data(), keys.size()) < 0)
                    throw std::runtime_error("writing to the terminal failed");
            }
        }
        ::close(master);
        while (::waitpid(pid, &r.status, 0) < 0)
            if (errno != EINTR)
                throw std::runtime_error("waitpid: " + std::string(std::strerror(errno)));
        return r;
    }

    // An agent script that ignores its request and prints `answer`; returns the command.
    std::string agent(const std::string& answer, int status = 0) const {
        const fs::path script = tmp.path() / "agent.sh", text = tmp.path() / "answer.txt";
        std::ofstream(text, std::ios::binary) << answer;
        std::ofstream(script) << "#!/bin/sh\ncat >/dev/null\ncat '" << text.string() << "'"
                              << (status == 0 ? "" : " >&2") << "\nexit " << status << "\n";
        fs::permissions(script, fs::perms::owner_all);
        return script.string();
    }

    // Stores session `id` with `title` and exchanges (question, answer), one minute apart
    // from `start`.
    void store(const std::string& id, const std::string& title,
               const std::vector<std::pair<std::string, std::string>>& exchanges) const {
        ds::jsonl_store s(sessions);
        ds::session_meta m;
        m.id = id;
        m.title = title;
        m.created_at = m.updated_at = start;
        BOOST_TEST_REQUIRE(s.create(m));
        std::uint64_t seq = 0;
        for (const auto& [question, answer] : exchanges) {
            ds::exchange ex;
            ex.seq = ++seq;
            ex.timestamp = start + std::chrono::minutes(seq - 1);
            ex.query = question;
            ex.answer = answer;
            s.append(id, ex);
        }
        s.close(id);
    }

    // The one session in the store.
    ds::loaded_session only_session() const {
        ds::jsonl_store s(sessions);
        const auto all = s.list();
        BOOST_TEST_REQUIRE(all.size() == 1u);
        return s.load(all.front().id);
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(an_answer_is_escaped_on_a_terminal_exact_into_a_pipe, fixture) {
    const std::string agent_cmd = agent(hostile_answer + "\n");
    // Asked in a conversation on a terminal, then once more with -p.
    auto t = run_on_terminal({"--agent-cmd", agent_cmd}, "question\n\x04", {}, "> ");
    BOOST_TEST_REQUIRE(status_text(t.status) == "exit 0", t.out);
    BOOST_TEST(t.out.find(escaped_answer) != std::string::npos, t.out);
    BOOST_TEST(!has_hostile_sequence(t.out));
    t = run_on_terminal({"-c", "--agent-cmd", agent_cmd, "-p", hostile_question});
    BOOST_TEST_REQUIRE(status_text(t.status) == "exit 0", t.out);
    BOOST_TEST(t.out.find(escaped_answer) != std::string::npos, t.out);
    BOOST_TEST(!has_hostile_sequence(t.out));
    // Stored as it was asked and answered.
    const auto saved = only_session();
    BOOST_TEST_REQUIRE(saved.exchanges.size() == 2u);
    BOOST_TEST(saved.exchanges[1].query == hostile_question);
    BOOST_TEST(saved.exchanges[1].answer == hostile_answer);

    // --raw: as the agent wrote it.
    t = run_on_terminal({"--raw", "--agent-cmd", agent_cmd}, "question\n\x04", {}, "> ");
    BOOST_TEST(t.out.find(hostile_answer) != std::string::npos, t.out);
    t = run_on_terminal({"--raw", "--agent-cmd", agent_cmd, "-p", "q"});
    BOOST_TEST(t.out.find(hostile_answer) != std::string::npos, t.out);

    // Into a pipe, the answer is exact, as a script wants it.
    auto r = run({"--agent-cmd", agent_cmd, "-p", hostile_question});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out == hostile_answer + "\n");
    r = run({"--agent-cmd", agent_cmd}, "question\n");
    BOOST_TEST(r.out.ends_with("\n" + hostile_answer + "\n"), r.out);

    // JSON: escaped by JSON itself, the same with --raw.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--json", "--agent-cmd", agent_cmd, "-p", "q"},
             {"--json", "--raw", "--agent-cmd", agent_cmd, "-p", "q"}}) {
        const auto j = run(args);
        BOOST_TEST_REQUIRE(status_text(j.status) == "exit 0", j.err);
        BOOST_TEST(j.out.find('\x1b') == std::string::npos); // JSON escapes C0 controls itself
        BOOST_TEST(boost::json::parse(j.out).at("answer").as_string() == hostile_answer);
        // On a terminal, the 8-bit CSI is a JSON escape too.
        const auto shown = run_on_terminal(args);
        BOOST_TEST(shown.out.find("done \\u009b2J") != std::string::npos, shown.out);
        BOOST_TEST(!has_hostile_sequence(shown.out));
    }
}

BOOST_FIXTURE_TEST_CASE(agent_errors_quote_its_standard_error_escaped, fixture) {
    const auto r = run({"--agent-cmd", agent("boom \x1b]0;pwned\x07\x1b[2J\n", 3), "-p", "q"});
    BOOST_TEST(status_text(r.status) == "exit 1");
    BOOST_TEST(r.err.find("exit status 3): boom ^[]0;pwned^G^[[2J; nothing saved") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(!has_control(r.err));
}

BOOST_FIXTURE_TEST_CASE(the_replay_is_escaped_and_marked_as_history, fixture) {
    store("aaaa1111", "hostile",
          {{"first question", "first answer"}, {hostile_question, hostile_answer}});
    auto r = run({"-s", "aaaa1111"});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("resumed session aaaa1111 (2 exchanges)\n"
                          "[2026-01-02 13:45] > first question\n"
                          "first answer\n"
                          "[2026-01-02 13:46] > " +
                          escaped_question + "\n" + escaped_answer +
                          "\n"
                          "— continuing —\n") != std::string::npos,
               r.out);
    BOOST_TEST(!has_control(r.out));

    // Times are local.
    r = run({"-s", "aaaa1111"}, "", {{"TZ", "Asia/Tokyo"}});
    BOOST_TEST(r.out.find("[2026-01-02 22:46] > " + escaped_question) != std::string::npos, r.out);

    r = run({"-s", "aaaa1111", "--raw"});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("[2026-01-02 13:46] > " + hostile_question + "\n" + hostile_answer +
                          "\n") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(the_replay_says_how_much_of_a_long_answer_it_hid, fixture) {
    std::string answer, question = "a question\nof three\nlines";
    for (int i = 1; i <= 16; ++i)
        answer += "line " + std::to_string(i) + "\n";
    // A long line wraps: it counts as the rows it takes (4 at most for an answer).
    const std::string wide(300, 'x');
    store("bbbb2222", "long",
          {{"q1", "a1"}, {"q2", "a2"}, {"q3", wide + "\nmore"}, {question, answer}});
    const auto r = run({"-s", "bbbb2222"}, "", {{"COLUMNS", "40"}});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("… 1 earlier exchange\n"
                          "[2026-01-02 13:46] > q2\n"
                          "a2\n"
                          "[2026-01-02 13:47] > q3\n" +
                          wide.substr(0, 4 * 40 - 1) +
                          "…\n"
                          "… (+1 line)\n") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("[2026-01-02 13:48] > a question\n"
                          "                     of three\n"
                          "                     … (+1 line)\n"
                          "line 1\nline 2\nline 3\nline 4\n"
                          "… (+12 lines)\n"
                          "— continuing —\n") != std::string::npos,
               r.out);
}

BOOST_FIXTURE_TEST_CASE(the_replay_is_dim_on_a_colour_terminal_unless_no_color, fixture) {
    store("cccc3333", "colour", {{"question", "answer"}});
    const std::string dim_prompt = "\x1b[2m[2026-01-02 13:45] > question\x1b[0m\r\n";
    auto t = run_on_terminal({"-s", "cccc3333"}, "\x04");
    BOOST_TEST(status_text(t.status) == "exit 0");
    BOOST_TEST(t.out.find(dim_prompt) != std::string::npos, t.out);
    BOOST_TEST(t.out.find("\x1b[2manswer\x1b[0m\r\n") != std::string::npos);

    t = run_on_terminal({"-s", "cccc3333"}, "\x04", {{"NO_COLOR", ""}}); // empty: colour
    BOOST_TEST(t.out.find(dim_prompt) != std::string::npos, t.out);

    for (const auto& [name, value] :
         std::map<std::string, std::string>{{"NO_COLOR", "1"}, {"TERM", "dumb"}}) {
        t = run_on_terminal({"-s", "cccc3333"}, "\x04", {{name, value}});
        BOOST_TEST(status_text(t.status) == "exit 0");
        const auto from = t.out.find("resumed session");
        const auto to = t.out.find("— continuing —\r\n");
        BOOST_TEST_REQUIRE(to != std::string::npos, t.out);
        BOOST_TEST(t.out.substr(from, to - from) == "resumed session cccc3333 (1 exchange)\r\n"
                                                    "[2026-01-02 13:45] > question\r\n"
                                                    "answer\r\n",
                   name);
    }

    // Not a terminal: no colour.
    const auto r = run({"-s", "cccc3333"});
    BOOST_TEST(!has_control(r.out));
}

BOOST_FIXTURE_TEST_CASE(show_and_search_escape_stored_text_unless_raw, fixture) {
    store("dddd4444", "title \x1b]0;pwned\x07", {{hostile_question, hostile_answer}});
    auto r = run({"--show", "dddd4444"});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("session dddd4444 · title ^[]0;pwned^G\n") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("> " + escaped_question + "\n" + escaped_answer + "\n") !=
                   std::string::npos,
               r.out);
    BOOST_TEST(!has_control(r.out));
    r = run({"--show", "dddd4444", "--raw"});
    BOOST_TEST(r.out.find("> " + hostile_question + "\n" + hostile_answer + "\n") !=
               std::string::npos);

    r = run({"--search", "pwned"}, "", {{"COLUMNS", "200"}});
    BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
    BOOST_TEST(r.out.find("dddd4444") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("^[]0;pwned^G") != std::string::npos, r.out);
    BOOST_TEST(!has_control(r.out));
    r = run({"--search", "pwned", "--raw"}, "", {{"COLUMNS", "200"}});
    BOOST_TEST(r.out.find("\x1b]0;pwned\x07") != std::string::npos, r.out);

    // JSON is the same with --raw, byte for byte, and has no control in it.
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--show", "dddd4444", "--json"}, {"--search", "pwned", "--json"}}) {
        const auto plain = run(args);
        auto with_raw = args;
        with_raw.push_back("--raw");
        BOOST_TEST(run(with_raw).out == plain.out);
        BOOST_TEST(plain.out.find('\x1b') == std::string::npos);
        BOOST_TEST(plain.out.find("pwned") != std::string::npos);
    }
}

BOOST_FIXTURE_TEST_CASE(cjk_titles_are_cut_by_display_width, fixture) {
    std::string title;
    for (int i = 0; i < 60; ++i)
        title += "漢字";
    store("eeee5555", title, {{"問題" + title, "答え" + title}});
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--list-sessions"}, {"--search", "答え"}}) {
        const auto r = run(args, "", {{"COLUMNS", "80"}});
        BOOST_TEST_REQUIRE(status_text(r.status) == "exit 0", r.err);
        std::istringstream lines(r.out);
        std::size_t count = 0;
        for (std::string line; std::getline(lines, line);) {
            BOOST_TEST(columns(line) <= 80u, line);
            if (line.find("漢字") != std::string::npos && ++count)
                BOOST_TEST(columns(line) >= 78u, line); // cut, not much shorter
        }
        BOOST_TEST(r.out.find("…") != std::string::npos);
        BOOST_TEST(count >= 1u);
    }
}

BOOST_FIXTURE_TEST_CASE(help_names_raw, fixture) {
    const auto r = run({"--help"});
    BOOST_TEST(r.out.find("--raw") != std::string::npos);
}
