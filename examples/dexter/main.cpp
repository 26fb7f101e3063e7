// SPDX-License-Identifier: BSL-1.0
// dexter: ask an agent questions; every answered question is saved in a session that
// can be listed, resumed and deleted. This file wires the parts together and turns
// errors into messages and exit statuses (0 ok, 1 error, 2 usage, 128+N signal N).
//
// Reading order: options.hpp (what can be asked for), repl.hpp (the conversation),
// agent.hpp (who answers), session_commands.hpp (list, delete), read_commands.hpp (show,
// export, search), change_commands.hpp (rename, pin, fork, import, trash, prune),
// store.hpp (the store), terminal.hpp (what is printed for people), interrupts.hpp
// (Ctrl-C).
#include "agent.hpp"
#include "change_commands.hpp"
#include "interrupts.hpp"
#include "options.hpp"
#include "piped_input.hpp"
#include "read_commands.hpp"
#include "repl.hpp"
#include "session_commands.hpp"
#include "store.hpp"
#include "terminal.hpp"
#include "verify_commands.hpp"

#include <dexter/sessions/storage.hpp>
#include <dexter/sessions/version.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <iostream>
#include <variant>

namespace cli = dexter::cli;

namespace {

// A closed standard descriptor would be handed out by the next open(), and a session
// file could end up as "standard output": point any closed one at /dev/null.
void ensure_standard_descriptors() {
    for (int fd = 0; fd <= 2; ++fd)
        if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY); // takes the lowest free: fd
}

int run(const cli::options& o) {
    switch (o.what) {
    case cli::command::show_help:
        std::cout << cli::help_text();
        return 0;
    case cli::command::show_version:
        std::cout << "dexter " DEXTER_SESSIONS_VERSION "\n";
        return 0;
    case cli::command::list_sessions:
        return cli::list_sessions(o);
    case cli::command::show_session:
    case cli::command::export_session:
    case cli::command::search: {
        // A reader that went away (EPIPE) is an error with a message, not a silent death.
        ::signal(SIGPIPE, SIG_IGN);
        if (o.what == cli::command::show_session)
            return cli::show_session(o);
        if (o.what == cli::command::search)
            return cli::search_sessions(o);
        if (o.output.empty())
            return cli::export_session(o, nullptr);
        cli::interrupt_pipe interrupts; // Ctrl-C removes the unfinished file
        return cli::export_session(o, &interrupts);
    }
    case cli::command::delete_session: {
        cli::interrupt_pipe interrupts;
        return cli::delete_session(o, interrupts);
    }
    case cli::command::rename_session:
        return cli::rename_session(o);
    case cli::command::pin_session:
    case cli::command::unpin_session:
        return cli::pin_session(o, o.what == cli::command::pin_session);
    case cli::command::verify:
        return cli::verify_store(o);
    case cli::command::repair: {
        cli::interrupt_pipe interrupts;
        return cli::repair_store(o, interrupts);
    }
    case cli::command::explain_resume:
        ::signal(SIGPIPE, SIG_IGN);
        return cli::explain_resume(o);
    case cli::command::import_session:
        return cli::import_session(o);
    case cli::command::list_trash:
        return cli::list_trash(o);
    case cli::command::restore:
        return cli::restore_session(o);
    case cli::command::purge_trash: {
        cli::interrupt_pipe interrupts;
        return cli::purge_trash(o, interrupts);
    }
    case cli::command::prune: {
        cli::interrupt_pipe interrupts;
        return cli::prune_sessions(o, interrupts);
    }
    case cli::command::fork_session:
        // On a terminal, the conversation goes on in the fork; otherwise (a script
        // capturing the id, input from a file) the new id is all.
        if (!(::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO)))
            return cli::fork_session(o);
        [[fallthrough]];
    case cli::command::interactive:
    case cli::command::one_shot: {
        cli::options asked = o;
        // Standard input is read before Ctrl-C is caught: it stops a read that waits.
        if (o.what == cli::command::one_shot)
            asked.prompt = cli::one_shot_question(o);
        cli::interrupt_pipe interrupts;
        if (o.pick_session) {
            const auto picked = cli::pick_session(o, interrupts);
            if (const int* status = std::get_if<int>(&picked))
                return *status;
            asked.session = std::get<dexter::sessions::session_id>(picked);
            asked.pick_session = false;
        }
        // An agent that exits without reading all of its request must give dexter an
        // EPIPE error, not kill it. (The agent itself starts with SIGPIPE restored.)
        ::signal(SIGPIPE, SIG_IGN);
        const auto answerer = cli::make_agent(o.agent_command, interrupts);
        return o.what == cli::command::one_shot
                   ? cli::run_one_shot(asked, *answerer)
                   : cli::run_interactive(asked, *answerer, interrupts);
    }
    }
    return 1;
}

} // namespace

int main(int argc, char* argv[]) {
    ensure_standard_descriptors();
    const auto parsed = cli::parse_options(argc, argv, cli::process_environment);
    if (const auto* bad = std::get_if<cli::usage_error>(&parsed)) {
        std::cerr << "dexter: " << cli::terminal_safe(bad->message, false)
                  << " (see dexter --help)\n";
        return 2;
    }
    const auto& o = std::get<cli::options>(parsed);
    try {
        return run(o);
    } catch (const dexter::sessions::session_not_found& e) {
        std::cerr << "dexter: no session '" << e.id() << "' in " << cli::store_name(o)
                  << " (see --list-sessions)\n";
    } catch (const std::exception& e) { // may quote stored text, a file or an argument
        std::cerr << "dexter: " << cli::terminal_safe(e.what(), true) << '\n';
    }
    return 1;
}
