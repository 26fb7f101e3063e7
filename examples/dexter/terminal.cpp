// SPDX-License-Identifier: BSL-1.0
// The terminal sanitizer, widths and local times.
#include "terminal.hpp"

#include <dexter/sessions/utf8.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace dexter::cli {

std::string terminal_safe(std::string_view text, bool keep_newlines) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
        } else if (c == '\n' || c == '\t' || (c == '\r' && i + 1 < n && p[i + 1] == '\n')) {
            if (keep_newlines)
                out += static_cast<char>(c);
            else if (c != '\r')
                out += ' '; // a CR before a newline joins the newline's one space
            ++i;
        } else if (c < 0x20 || c == 0x7f) {
            out += '^';
            out += static_cast<char>(c ^ 0x40); // ESC ^[, CR ^M, DEL ^?
            ++i;
        } else if (const std::size_t len = sessions::utf8_sequence_length(p + i, n - i); len == 0) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
            ++i;
        } else if (c == 0xC2 && p[i + 1] <= 0x9F) { // U+0080..U+009F: C1 controls
            out += "<U+00";
            out += hex[p[i + 1] >> 4];
            out += hex[p[i + 1] & 0xf];
            out += '>';
            i += len;
        } else {
            out.append(text.data() + i, len);
            i += len;
        }
    }
    return out;
}

std::string json_for_terminal(std::string_view json) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); ++i) {
        const auto c = static_cast<unsigned char>(json[i]);
        const auto next = i + 1 < json.size() ? static_cast<unsigned char>(json[i + 1]) : 0;
        if (c == 0x7f || (c == 0xC2 && next >= 0x80 && next <= 0x9F)) {
            const unsigned char code = c == 0x7f ? c : next; // U+007F, U+0080..U+009F
            out += "\\u00";
            out += hex[code >> 4];
            out += hex[code & 0xf];
            i += c == 0x7f ? 0 : 1;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string fit(std::string_view text, std::size_t width) {
    const std::string safe = terminal_safe(text, false);
    std::size_t chars = 0, cut = 0;
    for (std::size_t i = 0; i < safe.size(); ++i) {
        if ((static_cast<unsigned char>(safe[i]) & 0xC0) == 0x80)
            continue; // inside a character
        if (chars + 1 == width)
            cut = i; // room for the ellipsis
        if (++chars > width)
            return safe.substr(0, width == 0 ? 0 : cut) + (width == 0 ? "" : "…");
    }
    return safe;
}

bool is_terminal(int fd) noexcept {
    return ::isatty(fd) == 1;
}

std::size_t terminal_width() {
    winsize ws{};
    if (is_terminal(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    if (const char* columns = std::getenv("COLUMNS")) {
        char* end = nullptr;
        const long n = std::strtol(columns, &end, 10);
        if (end != columns && *end == '\0' && n > 0 && n < 10000)
            return static_cast<std::size_t>(n);
    }
    return 80;
}

std::string local_time(sessions::time_point t, bool with_seconds) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(
        std::chrono::time_point_cast<std::chrono::system_clock::duration>(t));
    std::tm tm{};
    char buf[32] = "(unknown time)";
    if (::localtime_r(&secs, &tm))
        std::strftime(buf, sizeof buf, with_seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
    return buf;
}

} // namespace dexter::cli
