// SPDX-License-Identifier: BSL-1.0
// What dexter prints for people: text from the store made safe for a terminal, cut to
// the terminal's width, times in local time, colour when it is wanted.
#pragma once

#include <dexter/sessions/types.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace dexter::cli {

/// How control characters in text from the store or an agent reach the terminal:
/// `escaped` (the default) shows them as text; `raw` (--raw) passes them on, so that an
/// agent's colours show, and its other escape sequences act too.
enum class control_chars { escaped, raw };

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
/// With control_chars::raw, `text` is returned as it is, but for newlines, tabs and the
/// CR before a newline when !keep_newlines (one space each, as above).
/// Throws std::bad_alloc only.
[[nodiscard]] std::string terminal_safe(std::string_view text, bool keep_newlines,
                                        control_chars mode = control_chars::escaped);

/// JSON text `json` as it may be shown on a terminal, and still the same JSON: JSON
/// escapes C0 controls itself but may hold C1 controls (U+0080..U+009F) and DEL raw,
/// which become \u0080-style escapes here, so that a reader decodes the very same
/// strings. Everything else passes unchanged. --raw never changes this.
[[nodiscard]] std::string json_for_terminal(std::string_view json);

/// The columns code point `c` takes on a terminal, as wcwidth() counts them but without
/// the locale: 0 for combining marks (Mn, Me), format characters (Cf but U+00AD) and
/// Hangul medial vowels and final consonants; 2 for East Asian Wide and Fullwidth
/// characters (CJK, Hangul syllables, kana, most emoji); 1 otherwise. Controls are not
/// asked about (terminal_safe() has made them printable). Tables of Unicode 14.
[[nodiscard]] int display_width(char32_t c) noexcept;

/// The columns `text` (valid UTF-8 without controls, as terminal_safe() makes it on one
/// line) takes on a terminal; a byte that is not UTF-8 counts 1.
[[nodiscard]] std::size_t display_width(std::string_view text) noexcept;

/// `text` made safe on one line (terminal_safe(text, false, mode)) and cut to at most
/// `width` columns of the terminal (display_width()), an ellipsis "…" (1 column) marking
/// the cut. Never cuts inside a character, nor between a character and the combining
/// marks that follow it. With control_chars::raw, an escape sequence takes no column
/// and is never cut (a cut drops it whole). Throws std::bad_alloc only.
[[nodiscard]] std::string fit(std::string_view text, std::size_t width,
                              control_chars mode = control_chars::escaped);

/// True when `fd` is a terminal.
[[nodiscard]] bool is_terminal(int fd) noexcept;

/// True when dexter may colour what it writes to `fd`: `fd` is a terminal, NO_COLOR is
/// unset or empty (https://no-color.org), and TERM is not "dumb".
[[nodiscard]] bool use_colour(int fd) noexcept;

/// The width of standard output: the terminal's, else $COLUMNS, else 80.
[[nodiscard]] std::size_t terminal_width();

/// `t` in local time: "2026-01-02 13:45", or with seconds "2026-01-02 13:45:06".
[[nodiscard]] std::string local_time(sessions::time_point t, bool with_seconds = false);

} // namespace dexter::cli
