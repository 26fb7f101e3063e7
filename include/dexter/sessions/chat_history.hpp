// SPDX-License-Identifier: BSL-1.0
// The chat context a model sees, and the replayer that rebuilds it after a resume.
//
// chat_history keeps turns of (query, answer, summary). recent_turns(limit) gives the
// last `limit` completed turns as user/assistant messages: the newest 3 turns carry
// their full answer, older ones their summary (or, when none was stored, a short
// summary made from the answer), which keeps the context small as a session grows.
//
// Nothing here throws but std::bad_alloc; a chat_history that threw it is still valid,
// holding some of its turns (the basic guarantee).
#pragma once

#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dexter::sessions {

/// Who said it.
enum class chat_role { user, assistant };

[[nodiscard]] constexpr std::string_view to_string(chat_role r) noexcept {
    return r == chat_role::user ? "user" : "assistant";
}

/// One message of the context sent to a model.
struct chat_message {
    chat_role role = chat_role::user;
    std::string content;

    friend bool operator==(const chat_message&, const chat_message&) = default;
};

/// A one-line summary of `text` (the stand-in for an answer stored without a summary,
/// and the default title of a session): its first non-empty line,
/// whitespace runs collapsed, cut at a character boundary to at most `max_bytes`
/// bytes (an ellipsis marks a cut). Deterministic: the same text, the same summary.
[[nodiscard]] inline std::string summarize_text(std::string_view text,
                                                std::size_t max_bytes = 200) {
    static constexpr std::string_view ellipsis = "\xE2\x80\xA6"; // U+2026
    std::string line;
    bool space = false;
    std::size_t i = 0;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            if (!line.empty())
                break;
        } else if (c == ' ' || c == '\t') {
            space = !line.empty();
        } else {
            if (space)
                line += ' ';
            space = false;
            line += c;
        }
    }
    const bool more = text.find_first_not_of(" \t\r\n", i) != std::string_view::npos;
    if (line.size() > max_bytes || (more && line.size() + ellipsis.size() > max_bytes)) {
        const std::size_t keep = max_bytes > ellipsis.size() ? max_bytes - ellipsis.size() : 0;
        line = std::string(utf8_prefix(line, keep));
        if (max_bytes >= ellipsis.size())
            line += ellipsis;
    } else if (more) {
        line += ellipsis;
    }
    return line;
}

/// A History policy holds the chat context: the manager calls replay() after a resume
/// with the exchanges it loaded (oldest first), append() after each saved exchange,
/// and clear() when a new session starts.
template <class H>
concept replay_target = std::movable<H> &&
    requires(H& h, std::span<const exchange> xs, const exchange& ex) {
    h.replay(xs);
    h.append(ex);
    h.clear();
};

/// A History policy that can say how it will send its turns (context()): resume()
/// then puts that in its report.
template <class H>
concept describes_context = requires(const H& h) {
    { h.context() } -> std::convertible_to<context_shape>;
};

/// The default History policy, with the semantics of Dexter's InMemoryChatHistory.
class chat_history {
public:
    /// One question and its answer. `answer` is empty while the turn is pending.
    struct turn {
        std::string query;
        std::string answer;
        std::optional<std::string> summary;
        bool complete = false;
    };

    /// How many of the newest turns keep their full answer in recent_turns().
    static constexpr std::size_t default_full_answer_turns = 3;
    static constexpr std::size_t default_recent_turns = 10;

    chat_history() = default;
    explicit chat_history(std::size_t full_answer_turns) : full_answer_turns_(full_answer_turns) {}

    /// Starts a turn whose answer is not known yet. It is left out of recent_turns()
    /// until complete_turn() gives its answer.
    /// A turn still pending is dropped first.
    void begin_turn(std::string query) {
        drop_pending();
        turns_.push_back({std::move(query), {}, std::nullopt, false});
    }

    /// Completes the pending turn started by begin_turn(); if there is none, does nothing
    /// and returns false.
    bool complete_turn(std::string answer, std::optional<std::string> summary = std::nullopt) {
        if (turns_.empty() || turns_.back().complete)
            return false;
        turns_.back().answer = std::move(answer);
        turns_.back().summary = std::move(summary);
        turns_.back().complete = true;
        return true;
    }

    /// Adds a completed turn.
    void add_turn(std::string query, std::string answer,
                  std::optional<std::string> summary = std::nullopt) {
        drop_pending();
        turns_.push_back({std::move(query), std::move(answer), std::move(summary), true});
    }

    /// Adds the turn of a saved exchange (replay_target).
    void append(const exchange& ex) { add_turn(ex.query, ex.answer, ex.summary); }

    /// Replaces the whole history by the turns of `exchanges`, oldest first
    /// (replay_target).
    void replay(std::span<const exchange> exchanges) {
        turns_.clear();
        turns_.reserve(exchanges.size());
        for (const auto& ex : exchanges)
            append(ex);
    }

    void clear() noexcept { turns_.clear(); }

    /// How many turns recent_turns() sends when no limit is given
    /// (default_recent_turns unless set).
    void set_recent_limit(std::size_t limit) noexcept { recent_limit_ = limit; }
    [[nodiscard]] std::size_t recent_limit() const noexcept { return recent_limit_; }

    /// What recent_turns(limit) would send: how many turns with their full answer, how
    /// many as summaries.
    [[nodiscard]] context_shape context(std::size_t limit) const noexcept {
        const std::size_t sent = std::min(limit, size());
        const std::size_t in_full = std::min(sent, full_answer_turns_);
        return {in_full, sent - in_full};
    }
    /// context(recent_limit()): the shape of what recent_turns() sends
    /// (describes_context).
    [[nodiscard]] context_shape context() const noexcept { return context(recent_limit_); }

    /// recent_turns(recent_limit()).
    [[nodiscard]] std::vector<chat_message> recent_turns() const {
        return recent_turns(recent_limit_);
    }

    /// The last `limit` completed turns as messages, oldest first: for each turn the
    /// user's query, then the answer, in full for the newest `full_answer_turns`, as
    /// its summary (or summarize_text() of it) for the older ones.
    [[nodiscard]] std::vector<chat_message> recent_turns(std::size_t limit) const {
        std::vector<const turn*> picked;
        for (auto it = turns_.rbegin(); it != turns_.rend() && picked.size() < limit; ++it)
            if (it->complete)
                picked.push_back(&*it);
        std::vector<chat_message> out;
        out.reserve(picked.size() * 2);
        for (std::size_t i = picked.size(); i-- > 0;) {
            const turn& t = *picked[i];
            out.push_back({chat_role::user, t.query});
            if (i < full_answer_turns_)
                out.push_back({chat_role::assistant, t.answer});
            else
                out.push_back({chat_role::assistant, t.summary && !t.summary->empty()
                                                         ? *t.summary
                                                         : summarize_text(t.answer)});
        }
        return out;
    }

    /// Every turn, pending ones included, oldest first.
    [[nodiscard]] const std::vector<turn>& turns() const noexcept { return turns_; }
    /// Number of completed turns.
    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const auto& t : turns_)
            n += t.complete ? 1 : 0;
        return n;
    }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }

private:
    void drop_pending() {
        if (!turns_.empty() && !turns_.back().complete)
            turns_.pop_back();
    }

    std::vector<turn> turns_;
    std::size_t full_answer_turns_ = default_full_answer_turns;
    std::size_t recent_limit_ = default_recent_turns;
};

static_assert(replay_target<chat_history>);
static_assert(describes_context<chat_history>);

} // namespace dexter::sessions
