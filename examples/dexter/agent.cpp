// SPDX-License-Identifier: BSL-1.0
// The offline agent, and the agent command: spawned in its own process group, fed its
// request and read at the same time with poll() (so a large request cannot deadlock
// against a large answer), and stopped as a whole group when interrupted.
#include "agent.hpp"

#include "interrupts.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace dexter::cli {

namespace json = boost::json;

std::string to_json(const agent_request& request) {
    json::array messages;
    for (const auto& m : request.messages)
        messages.push_back(
            json::object{{"role", sessions::to_string(m.role)}, {"content", m.content}});
    return json::serialize(json::object{{"protocol", agent_protocol},
                                        {"session_id", request.session_id},
                                        {"messages", std::move(messages)}});
}

// --- the offline agent ----------------------------------------------------------------

agent_reply offline_agent::ask(const agent_request& request, answer_watcher* watcher) {
    const std::string question = request.messages.empty() ? "" : request.messages.back().content;
    std::size_t earlier = 0;
    std::string previous;
    for (std::size_t i = 0; i + 1 < request.messages.size(); ++i)
        if (request.messages[i].role == sessions::chat_role::user) {
            ++earlier;
            previous = request.messages[i].content;
        }
    std::string answer = "[offline agent] I was given ";
    if (earlier == 0)
        answer += "no earlier turns";
    else
        answer += std::to_string(earlier) + (earlier == 1 ? " earlier turn" : " earlier turns") +
                  "; your previous question was \"" + previous + "\"";
    answer += ". You asked: \"" + question + "\"";
    if (watcher)
        watcher->arrived(answer + '\n');
    return {agent_reply::outcome::answered, std::move(answer)};
}

// --- the agent command ----------------------------------------------------------------

namespace {

// Longest answer taken (the store's default record limit); longer ones are a failure.
constexpr std::size_t max_answer_bytes = 16u << 20;
// How much of the agent's standard error is kept (its end).
constexpr std::size_t max_error_bytes = 4096;

[[noreturn]] void throw_errno(const char* what, int e = errno) {
    throw std::system_error(e, std::generic_category(), what);
}

class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_;
};

struct pipe_ends {
    unique_fd read, write;
};

pipe_ends make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0)
        throw_errno("cannot create a pipe for the agent");
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

// A running agent command: the shell's pid, which is also its process group id, and
// dexter's ends of the agent's standard input, output and error.
struct running_agent {
    pid_t pid = -1;
    unique_fd in, out, err;
};

running_agent spawn_agent(const std::string& command) {
    pipe_ends in = make_pipe(), out = make_pipe(), err = make_pipe();

    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_adddup2(&files, in.read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&files, out.write.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&files, err.write.get(), STDERR_FILENO);

    // Its own process group; signal dispositions and mask as a fresh program expects
    // them (dexter ignores SIGPIPE and catches SIGINT; the agent must not inherit that).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT})
        sigaddset(&defaults, sig);
    sigemptyset(&empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &empty);

    std::string shell_command = command; // posix_spawn wants char*
    char sh[] = "sh", dash_c[] = "-c";
    char* argv[] = {sh, dash_c, shell_command.data(), nullptr};
    // dexter's environment, with the protocol version.
    std::string protocol = "DEXTER_AGENT_PROTOCOL=" + std::to_string(agent_protocol);
    std::vector<char*> env{protocol.data()};
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "DEXTER_AGENT_PROTOCOL=", 22) != 0)
            env.push_back(*e);
    env.push_back(nullptr);
    running_agent agent;
    const int rc = ::posix_spawn(&agent.pid, "/bin/sh", &files, &attr, argv, env.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0)
        throw_errno("cannot start the agent command with /bin/sh", rc);

    agent.in = std::move(in.write);
    agent.out = std::move(out.read);
    agent.err = std::move(err.read);
    ::fcntl(agent.in.get(), F_SETFL, O_NONBLOCK);
    return agent;
}

// Reaps the finished processes of the agent's group that are dexter's children: the
// shell, and the orphans it left (dexter is their subreaper, see command_agent). True
// once no process of the group is left.
bool reap_group(pid_t pgid) {
    while (::waitpid(-pgid, nullptr, WNOHANG) > 0) {
    }
    return ::killpg(pgid, 0) < 0 && errno == ESRCH;
}

// Ends what is left of the group at once, and reaps it.
void kill_group(pid_t pgid) {
    if (reap_group(pgid))
        return;
    ::killpg(pgid, SIGKILL);
    while (::waitpid(-pgid, nullptr, 0) > 0 || errno == EINTR) {
    }
}

// Reads what is there into `into`; closes `fd` at the end of the stream. With
// `keep_tail`, keeps only the last `limit` bytes (`limit` is then a cap; otherwise the
// caller checks the size). Returns what was read and kept (empty: nothing).
std::string_view read_some(unique_fd& fd, std::string& into, std::size_t limit, bool keep_tail) {
    char chunk[65536];
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n > 0) {
        into.append(chunk, static_cast<std::size_t>(n));
        if (keep_tail && into.size() > limit)
            into.erase(0, into.size() - limit);
        const auto kept = std::min(into.size(), static_cast<std::size_t>(n));
        return std::string_view(into).substr(into.size() - kept);
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN))
        fd.reset();
    return {};
}

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

agent_reply failure(std::string what, const std::string& errors) {
    const std::string shown = trim(errors);
    if (!shown.empty())
        what += ": " + shown;
    return {agent_reply::outcome::failed, std::move(what) + "; nothing saved"};
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

} // namespace

agent_reply command_agent::ask(const agent_request& request, answer_watcher* watcher) {
    const std::string input = to_json(request) + '\n';
    running_agent agent = spawn_agent(command_);
    const auto started = std::chrono::steady_clock::now();
    auto next_tick = started + std::chrono::milliseconds(200); // a quick answer: no spinner

    // Stops the whole group: SIGTERM, then SIGKILL after the grace or at a second signal.
    // Its output is still read (and dropped) meanwhile: an agent that writes while it
    // cleans up must not die of SIGPIPE before it is done.
    const auto stop = [&](int sig) {
        agent.in.reset();
        ::killpg(agent.pid, SIGTERM);
        bool stop_dexter = sig != SIGINT;
        const auto deadline = std::chrono::steady_clock::now() + grace_;
        std::string dropped;
        while (!reap_group(agent.pid)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                break;
            std::array<pollfd, 3> fds{{{interrupts_.fd(), POLLIN, 0},
                                       {agent.out.get(), POLLIN, 0},
                                       {agent.err.get(), POLLIN, 0}}};
            ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 20)));
            if (fds[0].revents != 0 && interrupts_.take() != 0) {
                stop_dexter = true;
                break;
            }
            if (fds[1].revents != 0)
                read_some(agent.out, dropped, 0, true);
            if (fds[2].revents != 0)
                read_some(agent.err, dropped, 0, true);
        }
        agent.out.reset();
        agent.err.reset();
        kill_group(agent.pid);
        return agent_reply{agent_reply::outcome::interrupted, {}, sig, stop_dexter};
    };

    // Feed the request and read the answer at the same time, until the shell has exited
    // and its output is complete.
    std::size_t written = 0;
    std::string answer, errors;
    std::optional<int> status; // the shell's wait status, once it has exited
    while (!status || agent.out || agent.err) {
        std::array<pollfd, 4> fds{{{interrupts_.fd(), POLLIN, 0},
                                   {agent.out.get(), POLLIN, 0},
                                   {agent.err.get(), POLLIN, 0},
                                   {agent.in.get(), POLLOUT, 0}}};
        // While the shell runs, look at it now and then: no event tells when it exits.
        if (::poll(fds.data(), fds.size(), status && (!watcher || !answer.empty()) ? -1 : 50) < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("cannot wait for the agent");
        }
        if (fds[0].revents != 0)
            if (const int sig = interrupts_.take())
                return stop(sig);
        if (fds[3].revents != 0) {
            const ssize_t n =
                ::write(agent.in.get(), input.data() + written, input.size() - written);
            if (n > 0)
                written += static_cast<std::size_t>(n);
            // Done, or the agent closed its input early (EPIPE): either way, no more.
            if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR))
                agent.in.reset();
        }
        if (fds[1].revents != 0) {
            const auto piece = read_some(agent.out, answer, max_answer_bytes + 1, false);
            if (watcher && !piece.empty() && answer.size() <= max_answer_bytes)
                watcher->arrived(piece);
        }
        if (const auto now = std::chrono::steady_clock::now();
            watcher && answer.empty() && now >= next_tick) {
            watcher->waiting(std::chrono::duration_cast<std::chrono::milliseconds>(now - started));
            next_tick = now + std::chrono::milliseconds(100);
        }
        if (fds[2].revents != 0)
            read_some(agent.err, errors, max_error_bytes, true);
        if (answer.size() > max_answer_bytes) {
            stop(SIGINT);
            return failure("the agent's answer is longer than " +
                               std::to_string(max_answer_bytes >> 20) + " MiB; it was stopped",
                           errors);
        }
        int st = 0;
        if (!status && ::waitpid(agent.pid, &st, WNOHANG) == agent.pid) {
            status = st;
            agent.in.reset();
            // Leftovers (background jobs) end with the agent; then its output ends too.
            kill_group(agent.pid);
        }
    }

    if (WIFSIGNALED(*status))
        return failure("the agent was killed by " + signal_name(WTERMSIG(*status)), errors);
    if (WEXITSTATUS(*status) != 0)
        return failure(
            "the agent failed (exit status " + std::to_string(WEXITSTATUS(*status)) + ")", errors);
    if (answer.ends_with('\n'))
        answer.pop_back();
    if (trim(answer).empty())
        return failure("the agent gave an empty answer", errors);
    return {agent_reply::outcome::answered, std::move(answer)};
}

command_agent::command_agent(std::string command, interrupt_pipe& interrupts,
                             std::chrono::milliseconds grace)
    : command_(std::move(command)), interrupts_(interrupts), grace_(grace) {
    // Orphans of the agent (children of its shell once the shell has gone) become
    // dexter's children instead of init's: dexter can then wait for the whole group to
    // end, and reaps them, where init might not (in a container, PID 1 often doesn't).
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

std::unique_ptr<agent> make_agent(const std::string& agent_command, interrupt_pipe& interrupts) {
    if (agent_command.empty())
        return std::make_unique<offline_agent>();
    return std::make_unique<command_agent>(agent_command, interrupts);
}

} // namespace dexter::cli
