// SPDX-License-Identifier: BSL-1.0
#include "piped_input.hpp"

#include <dexter/sessions/utf8.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace dexter::cli {

namespace {

bool blank(const std::string& text) {
    return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

// Everything `fd` holds, at most max_piped_bytes.
std::string read_all(int fd) {
    std::string text;
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::system_error(errno, std::generic_category(), "reading standard input");
        if (n == 0)
            break;
        if (text.size() + static_cast<std::size_t>(n) > max_piped_bytes)
            throw std::runtime_error("standard input holds more than 1 MiB; a question takes "
                                     "at most 1 MiB of it (nothing asked)");
        text.append(chunk, static_cast<std::size_t>(n));
    }
    if (!sessions::is_valid_utf8(text))
        throw std::runtime_error("standard input is not valid UTF-8 text (nothing asked)");
    return text;
}

} // namespace

std::optional<std::string> read_piped_input(int fd) {
    struct stat st {};
    if (::isatty(fd) || ::fstat(fd, &st) != 0)
        return std::nullopt;
    if (!S_ISFIFO(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode))
        return std::nullopt;
    return read_all(fd);
}

std::string one_shot_question(const options& o) {
    if (o.prompt_from_stdin) {
        std::string question = read_all(STDIN_FILENO);
        if (blank(question))
            throw std::runtime_error("-p -: standard input holds no question (nothing asked)");
        return question;
    }
    const auto context = read_piped_input(STDIN_FILENO);
    if (!context || blank(*context))
        return o.prompt;
    return o.prompt + "\n\n" + *context;
}

} // namespace dexter::cli
