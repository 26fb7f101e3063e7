// SPDX-License-Identifier: BSL-1.0
// Ctrl-C and friends as something poll() can wait for, and reading the user's lines
// without ever blocking out a Ctrl-C.
#pragma once

#include <string>

namespace dexter::cli {

/// Catches SIGINT, SIGTERM and SIGHUP for as long as it lives, and turns each one
/// into a byte on a pipe (the self-pipe trick): the handler only write()s, which is
/// async-signal-safe, and the program sees the signal when it polls fd(). Only one may
/// exist at a time. The previous handlers come back on destruction.
class interrupt_pipe {
public:
    /// Throws std::system_error if the pipe cannot be made.
    interrupt_pipe();
    ~interrupt_pipe();
    interrupt_pipe(const interrupt_pipe&) = delete;
    interrupt_pipe& operator=(const interrupt_pipe&) = delete;

    /// Readable while a signal is waiting to be taken.
    int fd() const noexcept { return read_fd_; }
    /// The oldest signal not taken yet (SIGINT, ...), or 0 if there is none. Never blocks.
    int take() noexcept;

private:
    int read_fd_ = -1;
    int write_fd_ = -1;
};

/// One thing that happened on standard input.
struct input_event {
    enum class kind { line, end_of_input, signal };
    kind what = kind::end_of_input;
    std::string text; ///< kind::line: the line, without its newline
    int signal = 0;   ///< kind::signal: which one
};

/// Reads lines from a descriptor (a terminal or a pipe), and reports a signal from the
/// interrupt pipe instead as soon as one arrives.
class line_reader {
public:
    line_reader(int fd, interrupt_pipe& interrupts) : fd_(fd), interrupts_(interrupts) {}

    /// The next line (a last line without a newline counts), the end of the input, or a
    /// signal, whichever comes first; a waiting signal comes before waiting input.
    /// Throws std::system_error if reading fails with anything but EIO (a terminal
    /// that went away, treated as the end of input).
    input_event next();

private:
    int fd_;
    interrupt_pipe& interrupts_;
    std::string buffer_;
    bool at_end_ = false;
};

} // namespace dexter::cli
