// SPDX-License-Identifier: BSL-1.0
// The chat context a model sees, and the replayer that rebuilds it after a resume.
//
// chat_history keeps the newest turns of (query, answer, summary), at most its capacity
// (1000 by default). recent_turns(limit) gives the last `limit` completed turns as
// user/assistant messages: the newest 3 turns carry their full answer, older ones their
// summary (or, when none was stored, a short summary made from the answer), which keeps
// the context small as a session grows.
//
// Nothing here throws but std::bad_alloc; a chat_history that threw it is still valid,
// holding some of its turns (the basic guarantee).
#pragma once

#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <algorithm>
#include <compare>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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

/// The default History policy, with the semantics of Dexter's InMemoryChatHistory, bounded:
/// it keeps at most `capacity()` completed turns, the newest ones (a ring), so that its
/// memory follows the context window a model sees, not the length of the session.
///
/// The turns live in a vector of slots that is filled once and then reused in place: a
/// new turn evicts the oldest and is copied into the strings of its slot, which keep
/// their allocation. recent_turns(limit) with `limit` beyond the capacity gives the turns
/// that are kept, no more. A capacity of 0 keeps no completed turn (recent_turns() is
/// always empty): a history for hosts that build the context themselves. The one pending
/// turn (begin_turn()) is held beside the ring and does not count against the capacity.
class chat_history {
public:
    /// One question and its answer. `answer` is empty while the turn is pending.
    struct turn {
        std::string query;
        std::string answer;
        std::optional<std::string> summary;
        bool complete = false;
    };

    /// The turns of a chat_history, oldest first, the pending one (if any) last. A view
    /// (its iterators too): valid until the history changes or goes. Random access.
    class turn_view {
    public:
        /// Iterates over the turns of a turn_view.
        class iterator {
        public:
            using iterator_category = std::random_access_iterator_tag;
            using value_type = turn;
            using difference_type = std::ptrdiff_t;
            using pointer = const turn*;
            using reference = const turn&;

            iterator() = default;
            reference operator*() const noexcept { return history_->turn_at(i_); }
            pointer operator->() const noexcept { return &history_->turn_at(i_); }
            reference operator[](difference_type n) const noexcept {
                return history_->turn_at(
                    static_cast<std::size_t>(static_cast<difference_type>(i_) + n));
            }
            iterator& operator++() noexcept { return *this += 1; }
            iterator operator++(int) noexcept { return std::exchange(*this, *this + 1); }
            iterator& operator--() noexcept { return *this -= 1; }
            iterator operator--(int) noexcept { return std::exchange(*this, *this - 1); }
            iterator& operator+=(difference_type n) noexcept {
                i_ = static_cast<std::size_t>(static_cast<difference_type>(i_) + n);
                return *this;
            }
            iterator& operator-=(difference_type n) noexcept { return *this += -n; }
            friend iterator operator+(iterator it, difference_type n) noexcept { return it += n; }
            friend iterator operator+(difference_type n, iterator it) noexcept { return it += n; }
            friend iterator operator-(iterator it, difference_type n) noexcept { return it -= n; }
            friend difference_type operator-(const iterator& a, const iterator& b) noexcept {
                return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
            }
            friend bool operator==(const iterator& a, const iterator& b) noexcept {
                return a.i_ == b.i_;
            }
            friend auto operator<=>(const iterator& a, const iterator& b) noexcept {
                return a.i_ <=> b.i_;
            }

        private:
            friend class turn_view;
            iterator(const chat_history* history, std::size_t i) noexcept
                : history_(history), i_(i) {}
            const chat_history* history_ = nullptr;
            std::size_t i_ = 0;
        };

        [[nodiscard]] iterator begin() const noexcept { return {history_, 0}; }
        [[nodiscard]] iterator end() const noexcept { return {history_, size()}; }
        [[nodiscard]] std::size_t size() const noexcept {
            return history_->count_ + (history_->has_pending_ ? 1 : 0);
        }
        [[nodiscard]] bool empty() const noexcept { return size() == 0; }
        /// The `i`th turn, oldest first; `i` < size().
        [[nodiscard]] const turn& operator[](std::size_t i) const noexcept {
            return history_->turn_at(i);
        }
        [[nodiscard]] const turn& front() const noexcept { return (*this)[0]; }
        [[nodiscard]] const turn& back() const noexcept { return (*this)[size() - 1]; }

    private:
        friend class chat_history;
        explicit turn_view(const chat_history* history) noexcept : history_(history) {}
        const chat_history* history_;
    };

    /// How many of the newest turns keep their full answer in recent_turns().
    static constexpr std::size_t default_full_answer_turns = 3;
    static constexpr std::size_t default_recent_turns = 10;
    /// How many completed turns a chat_history keeps unless told otherwise.
    static constexpr std::size_t default_capacity = 1000;

    chat_history() = default;
    /// A history whose recent_turns() gives the newest `full_answer_turns` turns their
    /// full answer and that keeps at most `capacity` completed turns. Allocates nothing
    /// until turns are added.
    explicit chat_history(std::size_t full_answer_turns,
                          std::size_t capacity = default_capacity) noexcept
        : full_answer_turns_(full_answer_turns), capacity_(capacity) {}

    chat_history(const chat_history&) = default;
    chat_history& operator=(const chat_history&) = default;
    /// Leaves `other` empty, with its capacity and recent limit.
    chat_history(chat_history&& other) noexcept
        : slots_(std::move(other.slots_)), pending_(std::move(other.pending_)),
          has_pending_(std::exchange(other.has_pending_, false)),
          head_(std::exchange(other.head_, 0)), count_(std::exchange(other.count_, 0)),
          full_answer_turns_(other.full_answer_turns_), capacity_(other.capacity_),
          recent_limit_(other.recent_limit_) {
        other.slots_.clear();
    }
    /// Leaves `other` empty, with its capacity and recent limit.
    chat_history& operator=(chat_history&& other) noexcept {
        if (this != &other) {
            slots_ = std::move(other.slots_);
            pending_ = std::move(other.pending_);
            has_pending_ = std::exchange(other.has_pending_, false);
            head_ = std::exchange(other.head_, 0);
            count_ = std::exchange(other.count_, 0);
            full_answer_turns_ = other.full_answer_turns_;
            capacity_ = other.capacity_;
            recent_limit_ = other.recent_limit_;
            other.slots_.clear();
        }
        return *this;
    }
    ~chat_history() = default;

    /// Starts a turn whose answer is not known yet. It is left out of recent_turns()
    /// until complete_turn() gives its answer.
    /// A turn still pending is dropped first.
    void begin_turn(std::string query) {
        pending_.query = std::move(query);
        pending_.answer.clear();
        pending_.summary.reset();
        has_pending_ = true;
    }

    /// Completes the pending turn started by begin_turn(); if there is none, does nothing
    /// and returns false. The completed turn evicts the oldest one when the history is full.
    bool complete_turn(std::string answer, std::optional<std::string> summary = std::nullopt) {
        if (!has_pending_)
            return false;
        push([&](turn& t) noexcept {
            t.query.swap(pending_.query);
            t.answer = std::move(answer);
            t.summary = std::move(summary);
            t.complete = true;
        });
        has_pending_ = false;
        return true;
    }

    /// Adds a completed turn, evicting the oldest one when the history is full, and
    /// drops a pending turn.
    void add_turn(std::string query, std::string answer,
                  std::optional<std::string> summary = std::nullopt) {
        has_pending_ = false;
        push([&](turn& t) noexcept {
            t.query = std::move(query);
            t.answer = std::move(answer);
            t.summary = std::move(summary);
            t.complete = true;
        });
    }

    /// Adds the turn of a saved exchange (replay_target), like add_turn(), copying its
    /// text into the strings of a reused slot, which keep their allocation. If that
    /// throws, the turn is not added and, when the history was full, its oldest turn is
    /// gone.
    void append(const exchange& ex) {
        has_pending_ = false;
        push([&](turn& t) { assign(t, ex); });
    }

    /// Replaces the whole history by the turns of `exchanges`, oldest first
    /// (replay_target). Only the newest capacity() of them are kept, and only those are
    /// read and copied.
    void replay(std::span<const exchange> exchanges) {
        clear();
        const std::size_t keep = std::min(exchanges.size(), capacity_);
        if (slots_.size() < keep)
            slots_.reserve(keep);
        for (const auto& ex : exchanges.last(keep))
            append(ex);
    }

    /// Forgets every turn. The slots keep their memory for the turns to come.
    void clear() noexcept {
        has_pending_ = false;
        head_ = 0;
        count_ = 0;
    }

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
    /// its summary (or summarize_text() of it) for the older ones. At most size() turns:
    /// a `limit` beyond capacity() gives the turns that are kept.
    [[nodiscard]] std::vector<chat_message> recent_turns(std::size_t limit) const {
        const std::size_t picked = std::min(limit, count_);
        std::vector<chat_message> out;
        out.reserve(picked * 2);
        for (std::size_t i = picked; i-- > 0;) {
            const turn& t = slot(count_ - 1 - i);
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

    /// Every turn kept, the pending one included (last), oldest first.
    [[nodiscard]] turn_view turns() const noexcept { return turn_view(this); }
    /// Number of completed turns kept (at most capacity()).
    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
    /// Most completed turns kept.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    /// The `i`th turn of turns(): a completed one, or the pending one after them.
    [[nodiscard]] const turn& turn_at(std::size_t i) const noexcept {
        return i < count_ ? slot(i) : pending_;
    }

    /// The `i`th completed turn, oldest first; `i` < count_.
    [[nodiscard]] const turn& slot(std::size_t i) const noexcept {
        return slots_[(head_ + i) % slots_.size()];
    }

    /// Fills the slot of a new newest turn with `fill`: a fresh slot while the ring
    /// grows, else the oldest turn's, which is evicted. Does nothing when the capacity is
    /// 0. If `fill` throws, the turn is not added (and an evicted oldest stays evicted).
    template <class Fill>
    void push(Fill fill) {
        if (capacity_ == 0)
            return;
        const bool full = count_ == capacity_;
        // While the ring is not full, head_ is 0 unless the slots are all there
        // (clear() resets it), so the next free slot is after the newest.
        if (!full && count_ == slots_.size())
            slots_.emplace_back();
        turn& t = full ? slots_[head_] : slots_[(head_ + count_) % slots_.size()];
        if (full) {
            head_ = (head_ + 1) % slots_.size();
            --count_;
        }
        fill(t);
        ++count_;
    }

    static void assign(turn& t, const exchange& ex) {
        t.query.assign(ex.query);
        t.answer.assign(ex.answer);
        if (!ex.summary)
            t.summary.reset();
        else if (t.summary)
            t.summary->assign(*ex.summary);
        else
            t.summary.emplace(*ex.summary);
        t.complete = true;
    }

    std::vector<turn> slots_;
    turn pending_; // the pending turn, when has_pending_
    bool has_pending_ = false;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::size_t full_answer_turns_ = default_full_answer_turns;
    std::size_t capacity_ = default_capacity;
    std::size_t recent_limit_ = default_recent_turns;
};

static_assert(replay_target<chat_history>);
static_assert(describes_context<chat_history>);

} // namespace dexter::sessions
