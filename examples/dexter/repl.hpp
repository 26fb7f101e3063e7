// SPDX-License-Identifier: BSL-1.0
// The conversation: the interactive loop, and its one-question form (-p).
#pragma once

#include "agent.hpp"
#include "interrupts.hpp"
#include "options.hpp"

namespace dexter::cli {

/// Interactive mode: opens (or starts, or forks, or with --incognito starts in memory)
/// the session, prints the banner and, on resume, the last exchanges (marked as history:
/// each with its local time, a prompt of its own, dim where colour is used, cut to a few
/// lines that say how many more there are); then answers one
/// question per line of standard input until the end of input, `exit`, `quit` or
/// `/exit`. Each answer is saved before it is printed, made safe for a terminal
/// (terminal_safe()) unless --raw; a failed or interrupted question
/// saves nothing and the loop goes on. A line "/word ..." is a command, never a
/// question: /rename TITLE, /fork, /help; any other word is refused with one line on
/// standard error. When standard input and output are a terminal and dexter is built
/// with libedit, lines are edited with line_editor and each one (a failed question too)
/// goes into the question history; Ctrl-C then clears the line being typed, and Ctrl-C
/// twice at an empty line, or Ctrl-D, leaves (status 0).
/// Returns the exit status: 0, or 128 + the signal that ended it (130 for Ctrl-C at
/// the prompt without line editing, or twice while the agent runs). Throws on a store
/// failure (nothing more can be saved).
int run_interactive(const options& o, agent& answerer, interrupt_pipe& interrupts);

/// One-shot mode: answers o.prompt in a new session (or the one -s/-c names, or a fork
/// of --fork's, whose id is printed first unless --json), saves the exchange, then prints the
/// answer (with --json: {"session_id","seq","answer"}): on a terminal made safe
/// (terminal_safe()) unless --raw, into a pipe or file exactly. Returns 0, 1 if the agent
/// failed, or 128 + the signal that interrupted it.
int run_one_shot(const options& o, agent& answerer);

} // namespace dexter::cli
