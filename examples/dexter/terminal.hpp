// SPDX-License-Identifier: BSL-1.0
// What dexter prints for people: text from the store made safe for a terminal, cut to
// the terminal's width, times in local time.
#pragma once

#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace dexter::cli {

/// `text` (from the store, an agent or argv) as it may be shown on a terminal: nothing
/// in it can move the cursor, change colours, set the window title, write the clipboard
/// or otherwise reach the terminal as a command. Printable characters, CJK and emoji
/// included, pass unchanged. The rest is shown visibly:
///
///   ESC and the other C0 controls     caret notation: ESC ^[, CR ^M, BS ^H, NUL ^@, BEL ^G
///   DEL                               ^?
///   C1 controls (U+0080..U+009F)      <U+009B>
///   a byte that is not UTF-8          \xNN (one per byte)
///   newline and tab                   kept when keep_newlines; else each one space
///
/// So every escape sequence (CSI, OSC, DCS, ...) shows as text, its introducer made
/// harmless. A CR directly before a newline belongs to the line break (kept with it, or
/// part of its one space). The rendering is for reading, not reversible: a stored "^["
/// or "\x41" looks the same as an escaped one.
[[nodiscard]] std::string terminal_safe(std::string_view text, bool keep_newlines);

/// JSON text `json` as it may be shown on a terminal, and still the same JSON: JSON
/// escapes C0 controls itself but may hold C1 controls (U+0080..U+009F) and DEL raw,
/// which become \u0080-style escapes here, so that a reader decodes the very same
/// strings. Everything else passes unchanged.
[[nodiscard]] std::string json_for_terminal(std::string_view json);

/// `text` made safe on one line (terminal_safe(text, false)) and cut to at most `width`
/// characters (code points), an ellipsis "…" marking the cut.
[[nodiscard]] std::string fit(std::string_view text, std::size_t width);

/// True when `fd` is a terminal.
[[nodiscard]] bool is_terminal(int fd) noexcept;

/// The width of standard output: the terminal's, else $COLUMNS, else 80.
[[nodiscard]] std::size_t terminal_width();

/// `t` in local time: "2026-01-02 13:45", or with seconds "2026-01-02 13:45:06".
[[nodiscard]] std::string local_time(sessions::time_point t, bool with_seconds = false);

} // namespace dexter::cli
