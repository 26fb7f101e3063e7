// SPDX-License-Identifier: BSL-1.0
#include "answer_display.hpp"

#include "terminal.hpp"

#include <dexter/sessions/utf8.hpp>

#include <unistd.h>

#include <cerrno>
#include <iostream>

namespace dexter::cli {

std::string terminal_safe_stream::feed(std::string_view piece) {
    pending_.append(piece);
    std::size_t cut = pending_.size();
    if (cut > 0 && pending_[cut - 1] == '\r') {
        --cut; // a CR before a newline is part of the line break
    } else {
        // An incomplete last character: its lead byte, and fewer bytes than it announces.
        for (std::size_t back = 1; back <= 3 && back <= cut; ++back) {
            const auto c = static_cast<unsigned char>(pending_[cut - back]);
            if ((c & 0xC0) == 0x80)
                continue;
            const std::size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (c < 0xF8 && need > back)
                cut -= back;
            break;
        }
    }
    std::string out = terminal_safe(std::string_view(pending_).substr(0, cut), true);
    pending_.erase(0, cut);
    return out;
}

std::string terminal_safe_stream::finish() {
    std::string out = terminal_safe(pending_, true);
    pending_.clear();
    return out;
}

namespace {

// Writes all of `text` to `fd`, unbuffered; gives up quietly on an error (the owner's
// next write through std::cout reports a terminal that went away).
void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

constexpr std::string_view erase_to_end_of_line = "\x1b[K";

} // namespace

live_answer::live_answer(bool show_text, bool spinner, bool color, bool raw)
    : show_text_(show_text), spinner_(spinner), color_(color), raw_(raw) {}

live_answer::~live_answer() {
    if (!done_)
        abandon("interrupted");
}

void live_answer::waiting(std::chrono::milliseconds elapsed) {
    if (!spinner_ || shown_)
        return;
    static constexpr std::string_view frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    std::string line = "\r";
    line += frames[frame_++ % std::size(frames)];
    line += " waiting for the agent " + std::to_string(elapsed.count() / 1000) + "s";
    line += erase_to_end_of_line;
    std::cout.flush();
    write_all(STDERR_FILENO, line);
    spinning_ = true;
}

void live_answer::clear_spinner() {
    if (!spinning_)
        return;
    std::cout.flush();
    write_all(STDERR_FILENO, std::string("\r") + std::string(erase_to_end_of_line));
    spinning_ = false;
}

void live_answer::arrived(std::string_view piece) {
    clear_spinner();
    if (!show_text_ || piece.empty())
        return;
    std::cout.flush();                     // what dexter printed before comes first
    std::string out(erase_to_end_of_line); // the mark after the previous piece
    const std::string text = raw_ ? std::string(piece) : safe_.feed(piece);
    out += text;
    // The mark: saved cursor, "…", cursor back; one column, so it never scrolls.
    out += color_ ? "\x1b"
                    "7\x1b[2m…\x1b[0m\x1b"
                    "8"
                  : "\x1b"
                    "7…\x1b"
                    "8";
    write_all(STDOUT_FILENO, out);
    if (!text.empty())
        at_line_start_ = text.back() == '\n';
    shown_ = true;
}

void live_answer::end(std::string_view why) {
    done_ = true;
    clear_spinner();
    if (!shown_)
        return;
    std::string out(erase_to_end_of_line); // the in-progress mark
    out += raw_ ? std::string() : safe_.finish();
    if (out.size() > erase_to_end_of_line.size())
        at_line_start_ = out.back() == '\n';
    if (!why.empty()) {
        const std::string mark = "[" + std::string(why) + "]";
        out += at_line_start_ ? "" : " ";
        out += color_ ? "\x1b[2m" + mark + "\x1b[0m" : mark;
        at_line_start_ = false;
    }
    if (!at_line_start_)
        out += '\n';
    write_all(STDOUT_FILENO, out);
}

} // namespace dexter::cli
