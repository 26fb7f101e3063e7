// SPDX-License-Identifier: BSL-1.0
// The agent: whatever answers a question. An external command (--agent-cmd), or the
// built-in offline agent that needs nothing and shows what context it was given.
#pragma once

#include <dexter/sessions/chat_history.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::cli {

class interrupt_pipe;

/// What an agent is asked: the session, and the conversation so far ending with the
/// new question (the last message, role user).
struct agent_request {
    std::string session_id;
    std::vector<sessions::chat_message> messages;
};

/// The version of the agent protocol dexter speaks: 2, in which what the agent writes is
/// shown as it arrives (on a terminal). Version 1 agents, which write their answer at
/// the end, are version 2 agents too: nothing else changed.
inline constexpr int agent_protocol = 2;

/// The request as an agent command reads it on its standard input:
/// {"protocol":2,"session_id":"…","messages":[{"role":"user"|"assistant","content":"…"},…]}
std::string to_json(const agent_request& request);

/// Watches an answer while the agent writes it: a terminal shows it as it arrives.
class answer_watcher {
public:
    virtual ~answer_watcher() = default;
    /// Called about every 100 ms, from 200 ms on, while the agent runs and nothing has
    /// arrived yet.
    virtual void waiting(std::chrono::milliseconds elapsed) = 0;
    /// Each piece of the agent's standard output, in order, as it arrives (a piece may
    /// end inside a character). Together they are the answer and its trailing newline.
    virtual void arrived(std::string_view piece) = 0;
};

/// How asking went.
struct agent_reply {
    enum class outcome {
        answered,    ///< `text` is the answer
        failed,      ///< `text` says what went wrong, with the agent's standard error
        interrupted, ///< a signal stopped the agent (its whole process group)
    };
    outcome result = outcome::failed;
    std::string text;
    /// outcome::interrupted: the signal that stopped it.
    int signal = 0;
    /// outcome::interrupted: dexter should stop too (a second Ctrl-C while the agent was
    /// being stopped, or SIGTERM/SIGHUP); otherwise only this question is abandoned.
    bool stop = false;
};

/// Something that answers questions.
class agent {
public:
    virtual ~agent() = default;
    /// Asks; `watcher`, when given, sees the answer while it is written.
    virtual agent_reply ask(const agent_request& request, answer_watcher* watcher) = 0;
};

/// Answers without any model, deterministically, saying that it is the offline agent,
/// how many earlier turns it was given and what the previous question was:
///   [offline agent] I was given 2 earlier turns; your previous question was "…". You
///   asked: "…"
class offline_agent final : public agent {
public:
    agent_reply ask(const agent_request& request, answer_watcher* watcher) override;
};

/// Runs a command through `/bin/sh -c` for each question, in a process group of its
/// own (so that Ctrl-C on the terminal reaches dexter, not the agent), with the
/// request as JSON on its standard input, DEXTER_AGENT_PROTOCOL=2 in its environment,
/// and its standard output as the answer (one trailing newline removed), handed to the
/// watcher piece by piece as it arrives. A non-zero exit, a death by signal or an empty answer is
/// a failure that quotes the agent's standard error. A signal arriving on the
/// interrupt pipe while the agent runs stops its process group: SIGTERM, then SIGKILL
/// once `grace` has passed or at a second signal. When the agent's shell exits, what
/// is left of its group (background jobs) is killed: an answer leaves no process behind.
class command_agent final : public agent {
public:
    /// Makes dexter the child subreaper of its descendants (prctl), so that it can wait
    /// for the agent's whole process group, not only its shell.
    command_agent(std::string command, interrupt_pipe& interrupts,
                  std::chrono::milliseconds grace = std::chrono::seconds(2));

    /// Throws std::system_error if the command cannot be started (no pipes, no fork).
    agent_reply ask(const agent_request& request, answer_watcher* watcher) override;

private:
    std::string command_;
    interrupt_pipe& interrupts_;
    std::chrono::milliseconds grace_;
};

/// The agent that `agent_command` names: a command_agent, or the offline agent if it
/// is empty.
std::unique_ptr<agent> make_agent(const std::string& agent_command, interrupt_pipe& interrupts);

} // namespace dexter::cli
