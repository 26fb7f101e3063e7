// SPDX-License-Identifier: BSL-1.0
// The self-pipe for signals, and interruptible line reading.
#include "interrupts.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>
#include <utility>

namespace dexter::cli {

namespace {

// SIGQUIT (Ctrl-\) as SIGTERM: dexter leaves through its destructors, which give the
// terminal back as it was, instead of dying in the line editor's mode.
constexpr std::array<int, 4> caught_signals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// The one thing a signal handler may see; set while an interrupt_pipe exists.
volatile sig_atomic_t signal_write_fd = -1;
std::array<struct sigaction, caught_signals.size()> previous_actions;

extern "C" void on_signal(int signo) {
    const int saved_errno = errno;
    const auto byte = static_cast<unsigned char>(signo);
    // Non-blocking: if the pipe is full, enough signals are already waiting.
    [[maybe_unused]] const ssize_t n = ::write(signal_write_fd, &byte, 1);
    errno = saved_errno;
}

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

} // namespace

interrupt_pipe::interrupt_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        throw_errno("cannot create the signal pipe");
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    signal_write_fd = write_fd_;
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    // Restart interrupted system calls: the program notices signals through the pipe,
    // so a write of an answer or an fdatasync is never cut short by one.
    action.sa_flags = SA_RESTART;
    for (std::size_t i = 0; i < caught_signals.size(); ++i)
        ::sigaction(caught_signals[i], &action, &previous_actions[i]);
}

interrupt_pipe::~interrupt_pipe() {
    for (std::size_t i = 0; i < caught_signals.size(); ++i)
        ::sigaction(caught_signals[i], &previous_actions[i], nullptr);
    signal_write_fd = -1;
    ::close(read_fd_);
    ::close(write_fd_);
}

int interrupt_pipe::take() noexcept {
    unsigned char byte = 0;
    ssize_t n;
    do
        n = ::read(read_fd_, &byte, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 ? byte : 0;
}

input_event line_reader::next() {
    for (;;) {
        if (const int sig = interrupts_.take())
            return {input_event::kind::signal, {}, sig};
        if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
            input_event line{input_event::kind::line, buffer_.substr(0, nl), 0};
            buffer_.erase(0, nl + 1);
            return line;
        }
        if (at_end_) {
            if (buffer_.empty())
                return {};
            return {input_event::kind::line, std::exchange(buffer_, {}), 0};
        }
        std::array<pollfd, 2> fds{{{interrupts_.fd(), POLLIN, 0}, {fd_, POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("cannot wait for input");
        }
        if (fds[1].revents == 0)
            continue; // a signal: taken at the top of the loop
        char chunk[4096];
        const ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
        } else if (n == 0 || errno == EIO) {
            at_end_ = true;
        } else if (errno != EINTR && errno != EAGAIN) {
            throw_errno("cannot read standard input");
        }
    }
}

} // namespace dexter::cli
