// SPDX-License-Identifier: BSL-1.0
// An answer on a terminal while the agent writes it (agent protocol 2): a spinner with
// the seconds waited until the first byte, then the text as it arrives, made safe for
// the terminal piece by piece, marked as in progress until it is saved.
#pragma once

#include "agent.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace dexter::cli {

/// terminal_safe(text, true) over text that arrives in pieces cut anywhere: the
/// concatenation of what feed() and finish() return is terminal_safe() of the whole
/// text. A piece's incomplete last character, or its last CR (which a newline may
/// follow), waits for the next piece.
class terminal_safe_stream {
public:
    /// What can be shown of `piece` (and what waited before it).
    [[nodiscard]] std::string feed(std::string_view piece);
    /// What still waits, the text having ended.
    [[nodiscard]] std::string finish();

private:
    std::string pending_;
};

/// Shows an answer while the agent writes it: on standard error (a terminal), a spinner
/// with the seconds waited until the first byte; on standard output (with `show_text`,
/// a terminal), each piece as it arrives, through terminal_safe_stream, followed by a
/// one-column in-progress mark ("…", dim with `color`) that the next piece or the end
/// removes. The mark is left out at the right margin (the cursor waits there to wrap),
/// and with TERM=dumb (no cursor sequences; no spinner either). With `raw` (--raw) the
/// pieces are written exactly as they come, with no mark between them, so that a
/// character or an escape sequence cut between two pieces reaches the terminal whole. The owner
/// then says how the answer ended: complete() once it is saved, or abandon() when it is not. Writes
/// nothing else; never throws from the watcher calls (a failed write to the terminal is left for
/// the owner's next flush to find).
class live_answer final : public answer_watcher {
public:
    live_answer(bool show_text, bool spinner, bool color, bool raw);
    ~live_answer() override;
    live_answer(const live_answer&) = delete;
    live_answer& operator=(const live_answer&) = delete;

    void waiting(std::chrono::milliseconds elapsed) override;
    void arrived(std::string_view piece) override;

    /// True when some of the answer is on the screen.
    [[nodiscard]] bool shown() const noexcept { return shown_; }
    /// The answer was saved: the mark goes and the line ends.
    void complete() { end({}); }
    /// The answer shown will not be saved: the text stays, the mark becomes
    /// "[<why>]" (e.g. "[interrupted]"), and the line ends. Without text shown, only the
    /// spinner is cleared.
    void abandon(std::string_view why) { end(why); }

private:
    void clear_spinner();
    void end(std::string_view why);      // the mark removed, or replaced by "[why]"
    void advance(std::string_view text); // column_ after `text` is shown

    bool show_text_, spinner_ = false, color_, raw_;
    bool marks_; // the in-progress mark is drawn (not --raw, not TERM=dumb)
    std::size_t width_;
    std::size_t column_ = 0; // of the cursor after the text shown (width_: at the margin)
    bool spinning_ = false, shown_ = false, at_line_start_ = true, done_ = false;
    bool marked_ = false; // a mark follows the text on the screen
    unsigned frame_ = 0;
    terminal_safe_stream safe_;
};

} // namespace dexter::cli
