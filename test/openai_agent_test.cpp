// SPDX-License-Identifier: BSL-1.0
// examples/dexter/agents/openai_chat.sh against a mock chat-completions server on the
// loopback interface: streamed and whole answers, a server that refuses streaming, HTTP
// errors, a refused connection, and streams that break off or carry an error.
#define BOOST_TEST_MODULE openai_agent
#include <boost/test/unit_test.hpp>

#include "support/child_checks.hpp"
#include "support/environment.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef DEXTER_OPENAI_AGENT
#error "DEXTER_OPENAI_AGENT must name examples/dexter/agents/openai_chat.sh (the build passes it)"
#endif

namespace json = boost::json;
using dexter::sessions::test::read_some;
using dexter::sessions::test::write_all;

namespace {

// Only against hangs: no test expects anything to be fast.
constexpr int hang_guard_ms = 60'000;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// The tool among curl and jq that is not on PATH, if any: the script cannot run without
// them, and the test says so instead of failing.
std::optional<std::string> missing_tool() {
    const char* path = std::getenv("PATH");
    const std::string dirs = path ? path : "/usr/bin:/bin";
    for (const std::string tool : {"curl", "jq"}) {
        bool found = false;
        std::size_t start = 0;
        while (!found && start <= dirs.size()) {
            const auto end = std::min(dirs.find(':', start), dirs.size());
            const std::string dir = dirs.substr(start, end - start);
            found = !dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0;
            start = end + 1;
        }
        if (!found)
            return tool;
    }
    return std::nullopt;
}

// True (and says why) when the script cannot run here: the test is then skipped.
bool tools_missing() {
    const auto tool = missing_tool();
    if (tool)
        BOOST_TEST_MESSAGE("skipped: '" << *tool << "' is not installed (the agent needs curl "
                                        << "and jq; scripts/install-deps.sh installs them)");
    return tool.has_value();
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// --- the mock server -------------------------------------------------------------------

/// One HTTP request as the server read it.
struct http_request {
    std::string request_line;
    std::map<std::string, std::string> headers; // names in lower case
    std::string body;

    std::string header(const std::string& name) const {
        const auto it = headers.find(lower(name));
        return it == headers.end() ? std::string() : it->second;
    }
};

// Reads one request (headers, then a Content-Length body); nullopt if the client stopped
// or went quiet for the hang guard.
std::optional<http_request> read_request(int fd) {
    std::string data;
    std::size_t head_end = std::string::npos;
    std::size_t body_size = 0;
    http_request request;
    for (;;) {
        if (head_end == std::string::npos) {
            head_end = data.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                std::size_t pos = data.find("\r\n");
                request.request_line = data.substr(0, pos);
                while (pos < head_end) {
                    const auto next = data.find("\r\n", pos + 2);
                    const std::string line = data.substr(pos + 2, next - pos - 2);
                    if (const auto colon = line.find(':'); colon != std::string::npos) {
                        const auto value = line.find_first_not_of(' ', colon + 1);
                        request.headers[lower(line.substr(0, colon))] =
                            value == std::string::npos ? "" : line.substr(value);
                    }
                    pos = next;
                }
                const std::string length = request.header("Content-Length");
                body_size = length.empty() ? 0 : std::stoul(length);
                if (lower(request.header("Expect")) == "100-continue" &&
                    !write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n"))
                    return std::nullopt;
            }
        }
        if (head_end != std::string::npos && data.size() >= head_end + 4 + body_size) {
            request.body = data.substr(head_end + 4, body_size);
            return request;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, hang_guard_ms) <= 0)
            return std::nullopt;
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return std::nullopt;
        data.append(buf, static_cast<std::size_t>(n));
    }
}

class mock_server;

/// What the server does with its n-th connection: writes a response (or part of one) on
/// `fd`; the server closes the connection afterwards (Connection: close).
using responder = std::function<void(mock_server&, int fd, const http_request&)>;

/// An HTTP/1.1 server on 127.0.0.1, on a port of the kernel's choosing, in a thread of its
/// own: it answers one connection per responder, in order, and records each request.
class mock_server {
public:
    explicit mock_server(std::vector<responder> responders) : responders_(std::move(responders)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener_ < 0)
            throw_errno("socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
            ::listen(listener_, 4) < 0 ||
            ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
            const int e = errno;
            ::close(listener_);
            errno = e;
            throw_errno("a listening socket on 127.0.0.1");
        }
        port_ = ntohs(addr.sin_port);
        if (::pipe2(stop_, O_CLOEXEC) < 0) {
            const int e = errno;
            ::close(listener_);
            errno = e;
            throw_errno("pipe2");
        }
        thread_ = std::thread([this] { serve(); });
    }
    mock_server(const mock_server&) = delete;
    mock_server& operator=(const mock_server&) = delete;
    ~mock_server() {
        release();
        (void)!::write(stop_[1], "x", 1);
        thread_.join();
        ::close(stop_[0]);
        ::close(stop_[1]);
        ::close(listener_);
    }

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

    /// The requests received so far.
    std::vector<http_request> requests() const {
        const std::lock_guard lock(mutex_);
        return requests_;
    }

    /// Lets a responder blocked in wait_for_release() go on.
    void release() {
        const std::lock_guard lock(mutex_);
        released_ = true;
        released_cv_.notify_all();
    }

    /// For responders: waits until the test calls release() (or the server ends).
    void wait_for_release() {
        std::unique_lock lock(mutex_);
        released_cv_.wait(lock, [this] { return released_; });
    }

private:
    void serve() {
        for (const auto& respond : responders_) {
            pollfd p[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
            if (::poll(p, 2, hang_guard_ms) <= 0 || (p[1].revents & POLLIN))
                return;
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                return;
            if (auto request = read_request(fd)) {
                {
                    const std::lock_guard lock(mutex_);
                    requests_.push_back(*request);
                }
                respond(*this, fd, *request);
            }
            ::close(fd);
        }
    }

    std::vector<responder> responders_;
    int listener_ = -1;
    int stop_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    mutable std::mutex mutex_;
    std::condition_variable released_cv_;
    bool released_ = false;
    std::vector<http_request> requests_;
    std::thread thread_;
};

// Responses.

const std::string stream_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";

std::string delta_event(const std::string& content, std::string_view eol = "\n") {
    const json::value event = {
        {"object", "chat.completion.chunk"},
        {"choices",
         json::array{json::object{{"index", 0}, {"delta", json::object{{"content", content}}}}}}};
    return "data: " + json::serialize(event) + std::string(eol) + std::string(eol);
}

const std::string done_event = "data: [DONE]\n\n";

std::string json_response(const std::string& status, const std::string& body) {
    return "HTTP/1.1 " + status +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

std::string completion(const std::string& content) {
    const json::value body = {
        {"object", "chat.completion"},
        {"choices", json::array{json::object{
                        {"index", 0},
                        {"message", json::object{{"role", "assistant"}, {"content", content}}}}}}};
    return json_response("200 OK", json::serialize(body));
}

std::string error_response(const std::string& status, const std::string& message) {
    const json::value body = {
        {"error", json::object{{"message", message}, {"type", "invalid_request_error"}}}};
    return json_response(status, json::serialize(body));
}

responder send_text(std::string text) {
    return [text](mock_server&, int fd, const http_request&) { write_all(fd, text); };
}

// --- the script ------------------------------------------------------------------------

const std::string api_key = "test-key-5f3a";

// What dexter writes on the agent's standard input (protocol 2).
const std::string agent_request = R"({"session_id":"flxbes4n","protocol":2,"messages":[)"
                                  R"({"role":"user","content":"What was revenue in Q3?"},)"
                                  R"({"role":"assistant","content":"12.4 M\u20ac"},)"
                                  R"({"role":"user","content":"And the \"margin\"?"}]})";

const json::value expected_messages = json::parse(R"([
    {"role":"user","content":"What was revenue in Q3?"},
    {"role":"assistant","content":"12.4 M\u20ac"},
    {"role":"user","content":"And the \"margin\"?"}])");

using env_changes = std::map<std::string, std::string>;

// This process's environment without DEXTER_* or proxy settings (the mock server is on
// the loopback interface), then the agent's settings for `base_url`, then `changes`.
std::vector<std::string> agent_environment(const std::string& base_url,
                                           const env_changes& changes) {
    std::map<std::string, std::string> env;
    for (auto& [name, value] : dexter::sessions::test::current_environment())
        if (!name.starts_with("DEXTER_") && lower(name).find("proxy") == std::string::npos)
            env[name] = std::move(value);
    env["DEXTER_AGENT_PROTOCOL"] = "2";
    env["DEXTER_OPENAI_MODEL"] = "test-model";
    env["DEXTER_OPENAI_API_KEY"] = api_key;
    env["DEXTER_OPENAI_BASE_URL"] = base_url;
    env["DEXTER_OPENAI_TIMEOUT"] = "120";
    for (const auto& [name, value] : changes)
        env[name] = value;
    std::vector<std::string> out;
    for (const auto& [name, value] : env)
        out.push_back(name + "=" + value);
    return out;
}

struct agent_result {
    int status = -1;
    std::string out, err;

    bool answered() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
    bool failed() const { return WIFEXITED(status) && WEXITSTATUS(status) != 0; }
};

/// The script running in a process group of its own, as dexter runs an agent: the
/// request on its standard input, its standard output and error read through pipes.
class agent_run {
public:
    agent_run(const std::string& base_url, const env_changes& changes = {}) {
        ::signal(SIGPIPE, SIG_IGN);
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 ||
            ::pipe2(err, O_CLOEXEC) < 0)
            throw_errno("pipe2");
        std::vector<std::string> args{DEXTER_OPENAI_AGENT};
        std::vector<std::string> env = agent_environment(base_url, changes);
        std::vector<char*> argv, envp;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : env)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        posix_spawn_file_actions_t files;
        ::posix_spawn_file_actions_init(&files);
        ::posix_spawn_file_actions_adddup2(&files, in[0], 0);
        ::posix_spawn_file_actions_adddup2(&files, out[1], 1);
        ::posix_spawn_file_actions_adddup2(&files, err[1], 2);
        posix_spawnattr_t attr;
        ::posix_spawnattr_init(&attr);
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGTERM);
        ::posix_spawnattr_setsigdefault(&attr, &defaults);
        ::posix_spawnattr_setpgroup(&attr, 0);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        const int rc = ::posix_spawn(&pid_, argv[0], &files, &attr, argv.data(), envp.data());
        ::posix_spawnattr_destroy(&attr);
        ::posix_spawn_file_actions_destroy(&files);
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
        if (rc != 0) {
            pid_ = -1;
            ::close(in[1]);
            errno = rc;
            throw_errno("posix_spawn " DEXTER_OPENAI_AGENT);
        }
        // The request is far smaller than a pipe's buffer.
        const bool written = ::write(in[1], agent_request.data(), agent_request.size()) ==
                             static_cast<ssize_t>(agent_request.size());
        ::close(in[1]);
        if (!written)
            throw_errno("writing the request to the agent");
    }
    agent_run(const agent_run&) = delete;
    agent_run& operator=(const agent_run&) = delete;
    ~agent_run() {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0)
            ::close(out_);
        if (err_ >= 0)
            ::close(err_);
    }

    /// Reads the script's standard output until it holds `text`; throws if the script
    /// closes it first or writes nothing for the hang guard.
    void expect_output(std::string_view text) {
        while (out_text_.find(text) == std::string::npos)
            if (!pump())
                throw std::runtime_error("the agent's output ended without \"" + std::string(text) +
                                         "\"; it wrote \"" + out_text_ +
                                         "\" and on standard error \"" + err_text_ + "\"");
    }

    /// Reads both pipes to their end and waits for the script to end.
    agent_result finish() {
        while (pump()) {
        }
        agent_result result;
        while (::waitpid(pid_, &result.status, 0) < 0)
            if (errno != EINTR)
                throw_errno("waitpid");
        pid_ = -1;
        result.out = out_text_;
        result.err = err_text_;
        return result;
    }

private:
    // Reads what is available on either pipe; false once both are closed.
    bool pump() {
        if (out_ < 0 && err_ < 0)
            return false;
        pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
        const int r = ::poll(p, 2, hang_guard_ms);
        if (r < 0 && errno == EINTR)
            return true;
        if (r < 0)
            throw_errno("poll");
        if (r == 0)
            throw std::runtime_error("the agent wrote nothing for " +
                                     std::to_string(hang_guard_ms / 1000) + " s");
        drain(out_, p[0].revents, out_text_);
        drain(err_, p[1].revents, err_text_);
        return true;
    }

    static void drain(int& fd, short revents, std::string& into) {
        if (fd >= 0 && revents != 0)
            read_some(fd, into);
    }

    pid_t pid_ = -1;
    int out_ = -1, err_ = -1;
    std::string out_text_, err_text_;
};

agent_result run_agent(const mock_server& server, const env_changes& changes = {}) {
    agent_run run(server.base_url(), changes);
    return run.finish();
}

// Checks one request the script sent: the endpoint, the key, the model and the messages;
// `stream` tells whether it must ask for a stream.
void check_request(const http_request& request, bool stream) {
    BOOST_TEST(request.request_line == "POST /v1/chat/completions HTTP/1.1");
    BOOST_TEST(request.header("Authorization") == "Bearer " + api_key);
    BOOST_TEST(request.header("Content-Type") == "application/json");
    const json::value body = json::parse(request.body);
    BOOST_TEST(body.at("model").as_string() == "test-model");
    BOOST_TEST(body.at("messages") == expected_messages, json::serialize(body.at("messages")));
    if (stream) {
        const auto* flag = body.as_object().if_contains("stream");
        BOOST_TEST((flag && flag->is_bool() && flag->as_bool()), request.body);
    } else {
        BOOST_TEST(!body.as_object().contains("stream"), request.body);
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(a_streamed_answer_is_its_pieces_put_together) {
    if (tools_missing())
        return;
    const std::vector<std::string> pieces = {"Hel", "lo,\n", " w\xc3\xb6rld", " \"q\" \\n", "\n"};
    mock_server server({[&pieces](mock_server&, int fd, const http_request&) {
        write_all(fd, stream_head);
        write_all(fd, ": a comment line, as some servers send to keep the connection\n\n");
        for (const auto& piece : pieces) {
            write_all(fd, delta_event(piece));
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
        }
        // The last chunk of a real stream: no content, a finish reason.
        write_all(fd, R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
                      "\n\n");
        write_all(fd, done_event);
    }});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.answered(), result.err);
    BOOST_TEST(result.out == "Hello,\n w\xc3\xb6rld \"q\" \\n\n\n");
    BOOST_TEST(result.err == "");
    const auto requests = server.requests();
    BOOST_TEST_REQUIRE(requests.size() == 1u);
    check_request(requests[0], true);
}

BOOST_AUTO_TEST_CASE(the_first_piece_is_written_before_the_last_is_sent) {
    if (tools_missing())
        return;
    mock_server server({[](mock_server& self, int fd, const http_request&) {
        // CRLF line ends, as some servers send them.
        write_all(fd, stream_head + delta_event("first piece", "\r\n"));
        self.wait_for_release();
        write_all(fd, delta_event(", second piece", "\r\n") + "data: [DONE]\r\n\r\n");
    }});
    agent_run run(server.base_url());
    // Hangs (and fails at the hang guard) if the script holds the answer back until the
    // stream ends: the server sends the rest only after this.
    run.expect_output("first piece");
    server.release();
    const agent_result result = run.finish();
    BOOST_TEST(result.answered(), result.err);
    BOOST_TEST(result.out == "first piece, second piece\n");
}

BOOST_AUTO_TEST_CASE(a_server_that_refuses_streaming_is_asked_again_for_the_whole_answer) {
    if (tools_missing())
        return;
    mock_server server(
        {send_text(error_response("400 Bad Request", "Streaming is not supported by this model")),
         send_text(completion("the whole \"answer\"\nin two lines"))});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.answered(), result.err);
    BOOST_TEST(result.out == "the whole \"answer\"\nin two lines\n");
    const auto requests = server.requests();
    BOOST_TEST_REQUIRE(requests.size() == 2u);
    check_request(requests[0], true);
    check_request(requests[1], false);
}

BOOST_AUTO_TEST_CASE(an_ordinary_completion_in_answer_to_a_streamed_request_is_understood) {
    if (tools_missing())
        return;
    mock_server server({send_text(completion("not streamed"))});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.answered(), result.err);
    BOOST_TEST(result.out == "not streamed\n");
    BOOST_TEST(server.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(streaming_off_asks_for_the_whole_answer) {
    if (tools_missing())
        return;
    mock_server server({send_text(completion("whole"))});
    const agent_result result = run_agent(server, {{"DEXTER_OPENAI_STREAM", "0"}});
    BOOST_TEST(result.answered(), result.err);
    BOOST_TEST(result.out == "whole\n");
    const auto requests = server.requests();
    BOOST_TEST_REQUIRE(requests.size() == 1u);
    check_request(requests[0], false);
}

BOOST_AUTO_TEST_CASE(an_http_500_is_reported_with_the_servers_message) {
    if (tools_missing())
        return;
    const std::string message = "The server had an error while processing your request";
    for (const std::string stream : {"1", "0"}) {
        BOOST_TEST_CONTEXT("DEXTER_OPENAI_STREAM=" << stream) {
            mock_server server({send_text(error_response("500 Internal Server Error", message))});
            const agent_result result = run_agent(server, {{"DEXTER_OPENAI_STREAM", stream}});
            BOOST_TEST(result.failed());
            BOOST_TEST(result.out == "");
            BOOST_TEST(result.err == "openai_chat.sh: " + server.base_url() +
                                         " answered HTTP 500: " + message + "\n");
            BOOST_TEST(server.requests().size() == 1u);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_client_error_not_about_streaming_is_reported_not_retried) {
    if (tools_missing())
        return;
    mock_server server({send_text(error_response("401 Unauthorized", "Incorrect API key"))});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.failed());
    BOOST_TEST(result.out == "");
    BOOST_TEST(result.err.find("answered HTTP 401: Incorrect API key") != std::string::npos,
               result.err);
    BOOST_TEST(server.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_reported) {
    if (tools_missing())
        return;
    // A port that was bound, then closed: nothing listens there.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1";
    for (const std::string stream : {"1", "0"}) {
        BOOST_TEST_CONTEXT("DEXTER_OPENAI_STREAM=" << stream) {
            agent_run run(url, {{"DEXTER_OPENAI_STREAM", stream}});
            const agent_result result = run.finish();
            BOOST_TEST(result.failed());
            BOOST_TEST(result.out == "");
            BOOST_TEST(result.err.starts_with("openai_chat.sh: request to " + url +
                                              "/chat/completions failed: "),
                       result.err);
            BOOST_TEST(lower(result.err).find("connect") != std::string::npos, result.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_stream_cut_before_its_end_is_a_failure) {
    if (tools_missing())
        return;
    mock_server server({send_text(stream_head + delta_event("half an ") + delta_event("ans"))});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.failed());
    // What arrived was shown; the exit status tells dexter not to save it.
    BOOST_TEST(result.out == "half an ans");
    BOOST_TEST(result.err.find("ended before [DONE]") != std::string::npos, result.err);
}

BOOST_AUTO_TEST_CASE(an_error_event_in_the_stream_is_a_failure) {
    if (tools_missing())
        return;
    mock_server server({send_text(stream_head + delta_event("partial") +
                                  R"(data: {"error":{"message":"Overloaded, try again"}})"
                                  "\n\n" +
                                  done_event)});
    const agent_result result = run_agent(server);
    BOOST_TEST(result.failed());
    BOOST_TEST(result.err.find("sent an error in the stream: Overloaded, try again") !=
                   std::string::npos,
               result.err);
}
