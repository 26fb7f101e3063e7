// SPDX-License-Identifier: BSL-1.0
// dexter at a terminal: line editing, the question history and Ctrl-C/Ctrl-D, through
// the real binary on a pseudo-terminal (line_editor.hpp). Skipped, saying so, when
// dexter is built without libedit.
#include "support/pty.hpp"

#define BOOST_TEST_MODULE dexter_pty
#include <boost/test/unit_test.hpp>

#include "support/dexter_runs.hpp"
#include "support/temp_dir.hpp"

#include <dexter/sessions/jsonl_store.hpp>
#include <dexter/sessions/version.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef DEXTER_BINARY
#error "DEXTER_BINARY must name the dexter executable (the build passes it)"
#endif

extern char** environ;

namespace fs = std::filesystem;
namespace ds = dexter::sessions;
using ds::test::describe_status;
using ds::test::lines_of;
using ds::test::offline;
using ds::test::pty_session;
using ds::test::read_text;
using ds::test::shell_quote;
using ds::test::temp_dir;

namespace {

constexpr const char* up = "\x1b[A";
constexpr const char* left = "\x1b[D";
constexpr const char* ctrl_c = "\x03";
constexpr const char* ctrl_d = "\x04";

boost::test_tools::assertion_result built_with_libedit(boost::unit_test::test_unit_id) {
#ifdef DEXTER_HAVE_LIBEDIT
    return true;
#else
    const char* why = "skipped: dexter is built without libedit (no line editing to test; "
                      "install libedit-dev, or see DEXTER_SESSIONS_WITH_LIBEDIT)";
    std::cerr << "dexter_pty_test: the terminal tests are " << why << '\n'; // at any log level
    boost::test_tools::assertion_result skipped(false);
    skipped.message() << why;
    return skipped;
#endif
}

unsigned mode_of(const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0)
        throw std::runtime_error("cannot lstat " + path.string());
    return st.st_mode & 07777;
}

struct terminal {
    temp_dir tmp;
    fs::path sessions = tmp.path() / "sessions";
    fs::path history_file = sessions / "question_history.txt";

    // This process's environment without what could change dexter's behaviour (no
    // locale: dexter must find a UTF-8 one itself), at an xterm, HOME in the temporary
    // directory (no ~/.editrc).
    std::vector<std::string> environment() const {
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) {
            const std::string kv(*e);
            const std::string name = kv.substr(0, kv.find('='));
            if (name.starts_with("DEXTER_") || name.starts_with("LC_") || name == "LANG" ||
                name == "LANGUAGE" || name == "COLUMNS" || name == "LINES" || name == "TERM" ||
                name == "HOME" || name == "TZ" || name == "EDITRC")
                continue;
            env.push_back(kv);
        }
        env.push_back("TZ=UTC");
        env.push_back("TERM=xterm");
        env.push_back("HOME=" + tmp.path().string());
        env.push_back("DEXTER_SESSIONS_DIR=" + sessions.string());
        return env;
    }

    std::unique_ptr<pty_session> start(std::vector<std::string> args = {}) const {
        args.insert(args.begin(), DEXTER_BINARY);
        return std::make_unique<pty_session>(args, environment());
    }

    // A test agent: a shell script in the temporary directory, where @DIR@ stands for that
    // directory; returns the command.
    std::string agent(const std::string& name, std::string body) const {
        for (auto at = body.find("@DIR@"); at != std::string::npos; at = body.find("@DIR@"))
            body.replace(at, 5, shell_quote(tmp.path().string()));
        const fs::path path = tmp.path() / (name + ".sh");
        std::ofstream(path) << "#!/bin/sh\n" << body;
        fs::permissions(path, fs::perms::owner_all);
        return shell_quote(path.string());
    }

    // Every question saved in the store, session by session.
    std::vector<std::string> saved_questions() const {
        std::vector<std::string> out;
        if (!fs::exists(sessions))
            return out;
        ds::jsonl_store store(sessions);
        for (const auto& meta : store.list())
            for (const auto& ex : store.load(meta.id).exchanges)
                out.push_back(ex.query);
        return out;
    }

    std::vector<std::string> history() const { return lines_of(read_text(history_file)); }
};

using strings = std::vector<std::string>;

// Waits for the prompt, and for dexter to read the terminal key by key.
void prompt(pty_session& t) {
    t.expect("> ");
    t.wait_for_raw_mode();
}

} // namespace

BOOST_AUTO_TEST_SUITE(at_a_terminal, *boost::unit_test::precondition(built_with_libedit))

BOOST_FIXTURE_TEST_CASE(left_arrow_edits_the_line_and_the_edited_text_is_asked, terminal) {
    auto t = start();
    prompt(*t);
    t->type("abc" + std::string(left) + "X\r");
    t->expect(offline(0, "", "abXc"));
    prompt(*t);
    // UTF-8 is edited by characters: two Lefts from the end of "café" land before "f".
    t->type("caf\xC3\xA9" + std::string(left) + left + "X\r");
    t->expect(offline(1, "abXc", "caXf\xC3\xA9"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions() == (strings{"abXc", "caXf\xC3\xA9"}),
               boost::test_tools::per_element());
    BOOST_TEST(history() == (strings{"abXc", "caXf\xC3\xA9"}), boost::test_tools::per_element());
    BOOST_TEST(mode_of(history_file) == 0600u);
}

BOOST_FIXTURE_TEST_CASE(up_recalls_the_previous_question_and_enter_sends_it, terminal) {
    auto t = start();
    prompt(*t);
    t->type("first question\r");
    t->expect(offline(0, "", "first question"));
    prompt(*t);
    t->type("second\r");
    t->expect(offline(1, "first question", "second"));
    prompt(*t);
    t->type(std::string(up) + up + "\r");
    t->expect(offline(2, "second", "first question"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions() == (strings{"first question", "second", "first question"}),
               boost::test_tools::per_element());
    // Asked again, a question moves to the end: each is in the history once.
    BOOST_TEST(history() == (strings{"second", "first question"}),
               boost::test_tools::per_element());

    // The next dexter starts with it.
    t = start();
    prompt(*t);
    t->type(std::string(up) + "\r");
    t->expect(offline(0, "", "first question"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
}

BOOST_FIXTURE_TEST_CASE(a_failed_question_is_in_the_history, terminal) {
    const std::string moody = agent("moody", "input=$(cat)\n"
                                             "case $input in\n"
                                             "*please-fail*) echo exploded >&2; exit 3;;\n"
                                             "esac\n"
                                             "echo fine\n");
    auto t = start({"--agent-cmd", moody});
    prompt(*t);
    t->type("please-fail\r");
    const std::string failed = "dexter: the agent failed (exit status 3): exploded; nothing saved";
    t->expect(failed);
    prompt(*t);
    t->type(std::string(up) + "\r"); // asked again, without retyping
    t->expect(failed);
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions().empty());
    BOOST_TEST(history() == strings{"please-fail"}, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(the_history_file_is_0600_deduplicated_and_bounded, terminal) {
    fs::create_directories(sessions);
    {
        std::ofstream out(history_file);
        for (int i = 0; i < 1000; ++i)
            out << 'q' << i << '\n';
    }
    fs::permissions(history_file, fs::perms(0644));

    auto t = start();
    prompt(*t);
    t->type(std::string(up) + "\r"); // the newest of the file
    t->expect(offline(0, "", "q999"));
    prompt(*t);
    t->type("q5\r");
    t->expect(offline(1, "q999", "q5"));
    prompt(*t);
    t->type("a new question\r");
    t->expect(offline(2, "q5", "a new question"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");

    strings expected;
    for (int i = 1; i < 1000; ++i)
        if (i != 5)
            expected.push_back('q' + std::to_string(i));
    expected.push_back("q5");
    expected.push_back("a new question");
    BOOST_TEST(expected.size() == 1000u);
    BOOST_TEST(history() == expected, boost::test_tools::per_element());
    BOOST_TEST(mode_of(history_file) == 0600u);
    // Nothing left beside it.
    for (const auto& entry : fs::directory_iterator(sessions))
        BOOST_TEST(entry.path().filename().string().find(".tmp") == std::string::npos,
                   entry.path());
}

BOOST_FIXTURE_TEST_CASE(a_history_file_of_another_mode_is_made_0600_when_read, terminal) {
    fs::create_directories(sessions);
    std::ofstream(history_file) << "an old question\n";
    fs::permissions(history_file, fs::perms(0644));
    auto t = start();
    prompt(*t);
    t->type(ctrl_d); // nothing asked, nothing written
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(mode_of(history_file) == 0600u);
    BOOST_TEST(history() == strings{"an old question"}, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(a_fifo_in_place_of_the_history_is_refused_and_hangs_nothing, terminal) {
    fs::create_directories(sessions);
    BOOST_TEST_REQUIRE(::mkfifo(history_file.c_str(), 0600) == 0);
    auto t = start();
    t->expect("dexter: warning: the question history is kept in memory only: " +
              history_file.string() + " is not a regular file");
    prompt(*t);
    t->type("q1\r");
    t->expect(offline(0, "", "q1"));
    prompt(*t);
    t->type(std::string(up) + "\r"); // in memory, Up still works
    t->expect(offline(1, "q1", "q1"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(fs::is_fifo(fs::symlink_status(history_file)));
}

BOOST_FIXTURE_TEST_CASE(a_link_in_place_of_the_history_is_refused, terminal) {
    fs::create_directories(sessions);
    const fs::path target = tmp.path() / "elsewhere";
    std::ofstream(target) << "not yours\n";
    fs::permissions(target, fs::perms(0644));
    fs::create_symlink(target, history_file);
    auto t = start();
    t->expect("dexter: warning: the question history is kept in memory only: " +
              history_file.string() + " is a symbolic link");
    prompt(*t);
    t->type("q1\r");
    t->expect(offline(0, "", "q1"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(fs::is_symlink(fs::symlink_status(history_file)));
    BOOST_TEST(read_text(target) == "not yours\n");
    BOOST_TEST(mode_of(target) == 0644u);
}

BOOST_FIXTURE_TEST_CASE(ctrl_c_clears_a_half_typed_line_and_the_conversation_goes_on, terminal) {
    auto t = start();
    prompt(*t);
    t->type("half typed");
    t->expect("half typed");
    t->type(ctrl_c);
    t->expect("^C");
    prompt(*t);
    t->type("whole\r");
    t->expect(offline(0, "", "whole"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions() == strings{"whole"}, boost::test_tools::per_element());
    BOOST_TEST(t->output().find("Ctrl-C again") == std::string::npos); // the line was not empty
}

BOOST_FIXTURE_TEST_CASE(ctrl_c_twice_in_a_row_at_an_empty_prompt_leaves, terminal) {
    auto t = start();
    prompt(*t);
    t->type(ctrl_c);
    t->expect("(Ctrl-C again or Ctrl-D to leave)");
    prompt(*t);
    t->type("\r"); // a key between two Ctrl-Cs: not in a row
    prompt(*t);
    t->type(ctrl_c);
    t->expect("(Ctrl-C again or Ctrl-D to leave)");
    prompt(*t);
    t->type(ctrl_c);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(t->unconsumed() == "^C\r\n");
}

BOOST_FIXTURE_TEST_CASE(ctrl_d_leaves_at_an_empty_prompt_and_deletes_in_a_line, terminal) {
    auto t = start();
    prompt(*t);
    t->type(std::string("ab") + "\x01" /* Ctrl-A: home */ + ctrl_d + "\r");
    t->expect(offline(0, "", "b"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions() == strings{"b"}, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(ctrl_c_while_the_agent_runs_stops_it_as_before, terminal) {
    const std::string script = "input=$(cat)\n"
                               "case $input in\n"
                               "*slow*) echo $$ > @DIR@/pid.tmp; mv @DIR@/pid.tmp @DIR@/agent.pid\n"
                               "    sleep 300; echo too late;;\n"
                               "esac\n"
                               "echo fast answer\n";
    auto t = start({"--agent-cmd", agent("slow", script)});
    prompt(*t);
    t->type("a slow one\r");
    ds::test::wait_for_file(tmp.path() / "agent.pid");
    t->type(ctrl_c); // the terminal sends SIGINT to dexter (the agent has its own group)
    t->expect("dexter: interrupted; nothing saved for this question");
    prompt(*t);
    t->type("quick\r");
    t->expect("fast answer");
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(t->output().find("too late") == std::string::npos);
    BOOST_TEST(saved_questions() == strings{"quick"}, boost::test_tools::per_element());
    BOOST_TEST(history() == (strings{"a slow one", "quick"}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(keys_typed_while_the_agent_runs_wait_for_the_next_prompt, terminal) {
    const std::string script = "input=$(cat)\n"
                               "case $input in\n"
                               "*wait*) touch @DIR@/started\n"
                               "    while [ ! -f @DIR@/release ]; do sleep 0.05; done;;\n"
                               "esac\n"
                               "echo answered\n";
    auto t = start({"--agent-cmd", agent("waiting", script)});
    prompt(*t);
    t->type("wait for me\r");
    ds::test::wait_for_file(tmp.path() / "started");
    // A line and a Ctrl-D typed ahead: neither is lost to the terminal's own line editing.
    t->type(std::string("typed ahead\r") + ctrl_d);
    std::ofstream(tmp.path() / "release").put('\n');
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(saved_questions() == (strings{"wait for me", "typed ahead"}),
               boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(sigterm_at_the_prompt_exits_143_as_before, terminal) {
    auto t = start();
    prompt(*t);
    ::kill(t->pid(), SIGTERM);
    BOOST_TEST(describe_status(t->wait()) == "exit 143");
}

BOOST_FIXTURE_TEST_CASE(ctrl_backslash_at_the_prompt_leaves_the_terminal_as_it_was, terminal) {
    auto t = start();
    prompt(*t);
    t->type("half a question\x1c"); // Ctrl-\: SIGQUIT
    BOOST_TEST(describe_status(t->wait()) == "exit 131");
    const termios modes = t->modes();
    BOOST_TEST((modes.c_lflag & ICANON) != 0u); // given back, not left as libedit had it
    BOOST_TEST((modes.c_lflag & ECHO) != 0u);
}

BOOST_FIXTURE_TEST_CASE(ctrl_z_at_the_prompt_gives_the_terminal_back_and_takes_it_again, terminal) {
    // In a session of its own dexter's group is orphaned, where a stop is not carried
    // out: the terminal is given back and taken again, and the line redrawn.
    auto t = start();
    prompt(*t);
    t->type("abc");
    t->expect("abc");
    t->type("\x1a");  // Ctrl-Z: SIGTSTP
    t->expect("abc"); // the line redrawn
    t->wait_for_raw_mode();
    t->type("d\r");
    t->expect(offline(0, "", "abcd"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
}

BOOST_FIXTURE_TEST_CASE(incognito_writes_no_history, terminal) {
    auto t = start({"--incognito"});
    prompt(*t);
    t->type("a secret\r");
    t->expect(offline(0, "", "a secret"));
    prompt(*t);
    t->type(std::string(up) + "\r"); // Up works, in memory
    t->expect(offline(1, "a secret", "a secret"));
    prompt(*t);
    t->type(ctrl_d);
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(!fs::exists(fs::symlink_status(sessions)));
}

BOOST_AUTO_TEST_SUITE_END()

// Whatever the build: a pipe is read as before, with no prompt and no history.
BOOST_FIXTURE_TEST_CASE(a_pipe_shows_no_prompt_and_writes_no_history, terminal) {
    const fs::path out = tmp.path() / "out";
    const std::string command =
        "printf 'piped question\\n' | env -u DEXTER_STORE DEXTER_SESSIONS_DIR=" +
        shell_quote(sessions.string()) + " " + shell_quote(DEXTER_BINARY) + " >" +
        shell_quote(out.string()) + " 2>&1";
    BOOST_TEST_REQUIRE(std::system(command.c_str()) == 0);
    const auto lines = lines_of(read_text(out));
    BOOST_TEST_REQUIRE(lines.size() == 2u, read_text(out));
    BOOST_TEST(
        lines[0].starts_with("dexter " DEXTER_SESSIONS_VERSION " \xE2\x80\x94 new session "));
    BOOST_TEST(lines[1] == offline(0, "", "piped question"));
    BOOST_TEST(saved_questions() == strings{"piped question"}, boost::test_tools::per_element());
    BOOST_TEST(!fs::exists(history_file));
}

// --- streamed answers at the edges of the terminal (no line editor needed) ---------------

namespace {

// An agent that writes `first`, waits for the file "go" (created by the test once the
// first piece is on the screen), then writes `second`.
std::string two_pieces(const terminal& t, const std::string& first, const std::string& second) {
    return t.agent("two_pieces", "cat > /dev/null\nprintf '" + first +
                                     "'\nwhile [ ! -e @DIR@/go ]; do sleep 0.02; done\nprintf '" +
                                     second + "'\n");
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_piece_that_ends_at_the_margin_loses_no_character, terminal) {
    // 80 columns: after 79 A and a B the cursor waits at the margin, where a mark (and the
    // erase before the next piece) would take the B.
    const std::string line = std::string(79, 'A') + "B";
    auto t = start({"--agent-cmd", two_pieces(*this, line, "CDEF\\n"), "-p", "q"});
    t->expect(line);
    std::ofstream(tmp.path() / "go").put('\n');
    t->expect("CDEF");
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(t->shown().find(line + "CDEF") != std::string::npos, t->shown());
    // Short of the margin the mark is drawn.
    fs::remove(tmp.path() / "go");
    auto u = start({"--agent-cmd", two_pieces(*this, "short", " end\\n"), "-c", "q"});
    u->expect("short\x1b"
              "7");
    std::ofstream(tmp.path() / "go").put('\n');
    BOOST_TEST(describe_status(u->wait()) == "exit 0");
}

BOOST_FIXTURE_TEST_CASE(raw_pieces_reach_the_terminal_whole_and_dumb_terminals_get_no_marks,
                        terminal) {
    // An é and a CSI cut between two pieces: with --raw they arrive as written.
    auto t = start({"--raw", "--agent-cmd", two_pieces(*this, "caf\\303", "\\251 \\033[31mred\\n"),
                    "-p", "q"});
    t->expect("caf\xC3");
    std::ofstream(tmp.path() / "go").put('\n');
    t->expect("red");
    BOOST_TEST(describe_status(t->wait()) == "exit 0");
    BOOST_TEST(t->shown().find("caf\xC3\xA9 \x1b[31mred") != std::string::npos, t->shown());
    // TERM=dumb: no spinner, no mark, no cursor sequence at all; the text only.
    fs::remove(tmp.path() / "go");
    auto env = environment();
    std::replace(env.begin(), env.end(), std::string("TERM=xterm"), std::string("TERM=dumb"));
    pty_session d({DEXTER_BINARY, "--agent-cmd", two_pieces(*this, "", "one two\\n"), "-c", "q"},
                  env);
    std::this_thread::sleep_for(std::chrono::milliseconds(500)); // a spinner would show now
    std::ofstream(tmp.path() / "go").put('\n');
    d.expect("one two");
    BOOST_TEST(describe_status(d.wait()) == "exit 0");
    BOOST_TEST(d.shown().find('\x1b') == std::string::npos, d.shown());
}
