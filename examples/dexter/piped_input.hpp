// SPDX-License-Identifier: BSL-1.0
// A one-shot question and what standard input adds to it: `cat report.txt | dexter -p
// "summarise"` asks about the report, and `dexter -p -` reads the question itself.
#pragma once

#include "options.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace dexter::cli {

/// The most standard input may add to a question (or be, with -p -): 1 MiB.
inline constexpr std::size_t max_piped_bytes = std::size_t{1} << 20;

/// What `fd` holds when it is a pipe, a socket or a regular file: all of it, at most
/// max_piped_bytes. Nothing when it is a terminal or another kind of file (a device such
/// as /dev/null, which a script or a service may give). Throws std::runtime_error when
/// it holds more than max_piped_bytes or is not valid UTF-8 (nothing is asked then), or
/// when reading fails.
std::optional<std::string> read_piped_input(int fd);

/// The question a one-shot run asks: o.prompt, followed by a blank line and what
/// standard input holds (read_piped_input(); when it is not only white space); with -p -
/// (o.prompt_from_stdin), standard input itself, read to its end even from a terminal.
/// Throws std::runtime_error as read_piped_input() does, or when -p - finds no question.
std::string one_shot_question(const options& o);

} // namespace dexter::cli
