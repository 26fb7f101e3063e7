// SPDX-License-Identifier: BSL-1.0
#include "answer_display.hpp"

#include "terminal.hpp"

#include <dexter/sessions/utf8.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
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

// Whether the terminal takes the cursor sequences of the mark and the spinner (ESC 7,
// ESC 8, ESC [K, a bare CR to redraw): any but TERM=dumb (Emacs's shell, for one).
bool takes_cursor_sequences() {
    const char* term = std::getenv("TERM");
    return !(term && std::string_view(term) == "dumb");
}

} // namespace

live_answer::live_answer(bool show_text, bool spinner, bool color, bool raw)
    : show_text_(show_text), color_(color), raw_(raw), marks_(!raw && takes_cursor_sequences()),
      width_(terminal_width()) {
    spinner_ = spinner && takes_cursor_sequences();
}

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

void live_answer::advance(std::string_view text) {
    // Where the cursor is after `text` (made safe: no controls but newline and tab), as a
    // terminal with automatic margins wraps it: a character wider than what is left of
    // the line goes to the next one; after the last column the cursor waits there.
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
        const unsigned char c = p[i];
        if (c == '\n') {
            column_ = 0;
            ++i;
            continue;
        }
        if (c == '\t') {
            column_ = std::min(width_, (column_ / 8 + 1) * 8); // a tab never wraps
            ++i;
            continue;
        }
        const std::size_t len =
            std::max<std::size_t>(1, sessions::utf8_sequence_length(p + i, text.size() - i));
        char32_t code = c;
        if (len > 1) {
            code = c & (0xFF >> (len + 1));
            for (std::size_t k = 1; k < len; ++k)
                code = (code << 6) | (p[i + k] & 0x3F);
        }
        const auto w = static_cast<std::size_t>(std::max(0, display_width(code)));
        if (column_ + w > width_)
            column_ = 0; // wrapped, before it
        column_ += w;
        i += len;
    }
}

void live_answer::arrived(std::string_view piece) {
    clear_spinner();
    if (!show_text_ || piece.empty())
        return;
    std::cout.flush(); // what dexter printed before comes first
    if (!marks_) {     // --raw, or a terminal without cursor sequences: the text alone
        const std::string text = raw_ ? std::string(piece) : safe_.feed(piece);
        write_all(STDOUT_FILENO, text);
        if (!text.empty())
            at_line_start_ = text.back() == '\n';
        shown_ = true;
        return;
    }
    std::string out = marked_ ? std::string(erase_to_end_of_line) : std::string();
    const std::string text = safe_.feed(piece);
    out += text;
    advance(text);
    if (!text.empty())
        at_line_start_ = text.back() == '\n';
    // The mark: saved cursor, "…", cursor back: one column, drawn only where one is left
    // on the line (at the last column the cursor waits to wrap, and would lose it).
    marked_ = column_ < width_;
    if (marked_)
        out += color_ ? "\x1b"
                        "7\x1b[2m…\x1b[0m\x1b"
                        "8"
                      : "\x1b"
                        "7…\x1b"
                        "8";
    write_all(STDOUT_FILENO, out);
    shown_ = true;
}

void live_answer::end(std::string_view why) {
    done_ = true;
    clear_spinner();
    if (!shown_)
        return;
    std::string out = marked_ ? std::string(erase_to_end_of_line) : std::string();
    const std::string rest = raw_ ? std::string() : safe_.finish();
    out += rest;
    if (!rest.empty())
        at_line_start_ = rest.back() == '\n';
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
