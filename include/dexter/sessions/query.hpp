// SPDX-License-Identifier: BSL-1.0
// The read side's questions and answers: text search across sessions (queries, hits,
// the one matching rule every store follows) and pages of sessions for hosts with very
// many of them. The stores answer through the optional capabilities of storage.hpp;
// the fallbacks here serve stores that lack them.
#pragma once

#include <dexter/sessions/types.hpp>
#include <dexter/sessions/utf8.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace dexter::sessions {

// ---------------------------------------------------------------------------------
// Search

/// Where a search hit was found.
enum class match_field { title, query, answer };

/// The field's name as the JSON output of dexter and the docs spell it.
[[nodiscard]] constexpr std::string_view to_string(match_field f) noexcept {
    switch (f) {
    case match_field::title:
        return "title";
    case match_field::query:
        return "query";
    case match_field::answer:
        return "answer";
    }
    return "answer";
}

/// A search across the sessions of a store.
struct search_query {
    /// What to find, as it appears in the text: ASCII letters match either case; every
    /// other byte (accented and non-Latin letters included) only as it is. Must be
    /// non-empty valid UTF-8.
    std::string text;
    /// At most this many hits: the newest ones. The search stops early once it knows no
    /// older session can hold a newer hit.
    std::size_t limit = 20;
};

/// One place where the text was found: the first match in one field of one exchange
/// (query before answer), or in a session's title.
struct search_hit {
    session_id id;
    std::string title;
    /// The exchange; 0 for a hit in the title.
    std::uint64_t seq = 0;
    /// The exchange's time; for a hit in the title, the session's updated_at.
    time_point timestamp{};
    match_field field = match_field::answer;
    /// At most snippet_max_chars characters of the field around its first match, with
    /// newlines, tabs and other control characters (C0, DEL, C1) each shown as a space; "…" marks a
    /// cut at either end.
    std::string snippet;

    friend bool operator==(const search_hit&, const search_hit&) = default;
};

/// Longest snippet, in characters (code points), ellipses included.
inline constexpr std::size_t snippet_max_chars = 160;

/// Something a search skipped: the session, and what its reader reported.
struct session_diagnostic {
    session_id id;
    diagnostic what;

    friend bool operator==(const session_diagnostic&, const session_diagnostic&) = default;
};

/// What a search found: hits newest first (by timestamp, then session id, then seq from
/// the highest), and the damaged records it met on the way (never fatal).
struct search_result {
    std::vector<search_hit> hits;
    std::vector<session_diagnostic> diagnostics;
};

/// Position of the first occurrence of `needle` in `haystack`, ASCII letters compared
/// without case, every other byte exactly; std::string_view::npos if none. In valid
/// UTF-8 a match of valid UTF-8 starts and ends on character boundaries. An empty
/// needle matches at 0.
[[nodiscard]] inline std::size_t find_ignoring_ascii_case(std::string_view haystack,
                                                          std::string_view needle) noexcept {
    auto fold = [](unsigned char c) noexcept {
        return static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    };
    if (needle.empty())
        return 0;
    if (needle.size() > haystack.size())
        return std::string_view::npos;
    const unsigned char first = fold(static_cast<unsigned char>(needle[0]));
    const bool letter = first >= 'a' && first <= 'z';
    const char lower = static_cast<char>(first);
    const char upper = letter ? static_cast<char>(first - ('a' - 'A')) : lower;
    const std::size_t last = haystack.size() - needle.size();
    // The next position of each case of the first byte, found at memchr speed and
    // searched for again only once passed: linear in the haystack whatever the mix.
    std::size_t next_lower = haystack.find(lower);
    std::size_t next_upper = letter ? haystack.find(upper) : std::string_view::npos;
    for (;;) {
        const std::size_t a = std::min(next_lower, next_upper);
        if (a == std::string_view::npos || a > last)
            return std::string_view::npos;
        std::size_t k = 1;
        while (k < needle.size() && fold(static_cast<unsigned char>(haystack[a + k])) ==
                                        fold(static_cast<unsigned char>(needle[k])))
            ++k;
        if (k == needle.size())
            return a;
        if (next_lower == a)
            next_lower = haystack.find(lower, a + 1);
        if (next_upper == a)
            next_upper = haystack.find(upper, a + 1);
    }
}

/// The snippet of `text` around a match at byte `pos` (see search_hit::snippet): the
/// whole text when it fits in snippet_max_chars; else up to 60 characters of context
/// before the match, then as much of the match and what follows as fits. `text` is valid
/// UTF-8.
[[nodiscard]] inline std::string make_snippet(std::string_view text, std::size_t pos) {
    constexpr std::size_t before_chars = 60;
    auto is_lead = [&](std::size_t i) {
        return (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    };
    std::size_t chars = 0;
    for (std::size_t i = 0; i < text.size() && chars <= snippet_max_chars; ++i)
        chars += is_lead(i) ? 1 : 0;
    if (chars <= snippet_max_chars)
        pos = 0; // it all fits: no cut, however far in the match is
    std::size_t start = std::min(pos, text.size());
    std::size_t chars_before = 0;
    while (start > 0 && chars_before < before_chars) {
        --start;
        while (start > 0 && !is_lead(start))
            --start;
        ++chars_before;
    }
    const bool cut_front = start > 0;
    std::size_t budget = snippet_max_chars - (cut_front ? 1 : 0) - chars_before;
    std::size_t end = std::min(pos, text.size());
    while (end < text.size() && budget > 0) {
        const auto len = utf8_sequence_length(
            reinterpret_cast<const unsigned char*>(text.data()) + end, text.size() - end);
        end += len == 0 ? 1 : len;
        --budget;
    }
    bool cut_back = end < text.size();
    if (cut_back && budget == 0) {
        // Room for the ellipsis: give back the last character.
        --end;
        while (end > pos && !is_lead(end))
            --end;
    }
    std::string out;
    out.reserve(end - start + 8);
    if (cut_front)
        out += "…";
    for (std::size_t i = start; i < end; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == 0xC2 && i + 1 < end && static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
            out += ' '; // a C1 control, U+0080..U+009F (an 8-bit CSI among them)
            ++i;
            continue;
        }
        out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    }
    if (cut_back)
        out += "…";
    return out;
}

/// The hit for the first match of `needle` in `text` (field `f`), or nothing.
[[nodiscard]] inline std::optional<search_hit> match_text(std::string_view text,
                                                          std::string_view needle, match_field f) {
    const std::size_t at = find_ignoring_ascii_case(text, needle);
    if (at == std::string_view::npos)
        return std::nullopt;
    search_hit h;
    h.field = f;
    h.snippet = make_snippet(text, at);
    return h;
}

/// The hit for exchange `ex` of session `meta`: the first match in the query, else in
/// the answer; nothing if neither holds `needle`.
[[nodiscard]] inline std::optional<search_hit>
match_exchange(const session_meta& meta, const exchange& ex, std::string_view needle) {
    auto hit = match_text(ex.query, needle, match_field::query);
    if (!hit)
        hit = match_text(ex.answer, needle, match_field::answer);
    if (hit) {
        hit->id = meta.id;
        hit->title = meta.title;
        hit->seq = ex.seq;
        hit->timestamp = ex.timestamp;
    }
    return hit;
}

/// The hit for a session's title, or nothing.
[[nodiscard]] inline std::optional<search_hit> match_title(const session_meta& meta,
                                                           std::string_view needle) {
    auto hit = match_text(meta.title, needle, match_field::title);
    if (hit) {
        hit->id = meta.id;
        hit->title = meta.title;
        hit->seq = 0;
        hit->timestamp = meta.updated_at;
    }
    return hit;
}

/// True when hit `a` comes before hit `b` in a search's result: newer first, then by
/// session id, then by seq from the highest (a title hit, seq 0, after its exchanges).
[[nodiscard]] inline bool newer_hit(const search_hit& a, const search_hit& b) noexcept {
    return std::tie(b.timestamp, a.id, b.seq) < std::tie(a.timestamp, b.id, a.seq);
}

/// Keeps the `limit` newest hits offered to it, in bounded memory; tells when a search
/// may stop. Every store's search collects through one.
class hit_collector {
public:
    explicit hit_collector(std::size_t limit) : limit_(limit) {}

    void offer(search_hit hit) {
        if (limit_ == 0)
            return;
        if (hits_.size() == limit_) {
            if (!newer_hit(hit, hits_.back()))
                return;
            hits_.pop_back();
        }
        hits_.insert(std::upper_bound(hits_.begin(), hits_.end(), hit, newer_hit), std::move(hit));
    }

    /// True once no hit at or before `t` can enter: the collector is full and its
    /// oldest hit is newer than `t`. A search that visits sessions newest-updated first
    /// stops at the first session whose updated_at passes this test.
    [[nodiscard]] bool full_before(time_point t) const noexcept {
        return limit_ == 0 || (hits_.size() == limit_ && hits_.back().timestamp > t);
    }

    [[nodiscard]] std::vector<search_hit> take() { return std::move(hits_); }

private:
    std::size_t limit_;
    std::vector<search_hit> hits_; // newest first
};

/// Throws invalid_input unless `q` can be searched for: a non-empty text of valid UTF-8.
inline void check_search_query(const search_query& q) {
    if (q.text.empty())
        throw invalid_input("nothing to search for: the search text is empty");
    if (!is_valid_utf8(q.text))
        throw invalid_input("the search text is not valid UTF-8");
}

/// A search over `sessions` (any order): visits those with an exchange, newest-updated
/// first, matching each title here and calling
/// `search_exchanges(const session_meta&, hit_collector&, std::vector<session_diagnostic>&)`
/// to offer the session's exchange hits; stops at the first session too old to hold a hit
/// among the newest q.limit. Every store's search (and the manager's fallback) is this
/// loop with its own way of reading one session.
template <class F>
search_result search_sessions(std::vector<session_meta> sessions, const search_query& q,
                              F&& search_exchanges) {
    check_search_query(q);
    std::erase_if(sessions, [](const session_meta& m) { return m.exchange_count == 0; });
    std::sort(sessions.begin(), sessions.end(), [](const session_meta& a, const session_meta& b) {
        return a.updated_at != b.updated_at ? a.updated_at > b.updated_at : a.id < b.id;
    });
    hit_collector hits(q.limit);
    search_result out;
    for (const auto& m : sessions) {
        if (hits.full_before(m.updated_at))
            break; // every hit in m, and in every session after it, is older
        if (auto t = match_title(m, q.text))
            hits.offer(std::move(*t));
        search_exchanges(m, hits, out.diagnostics);
    }
    out.hits = hits.take();
    return out;
}

// ---------------------------------------------------------------------------------
// Paged listing

/// Where a page of sessions ends: the updated_at and id of its last session.
struct list_cursor {
    time_point updated_at{};
    session_id id;

    friend bool operator==(const list_cursor&, const list_cursor&) = default;
};

/// A page of sessions, newest first (by updated_at, then id).
struct page_request {
    /// At most this many sessions.
    std::size_t limit = 50;
    /// Start after this session (the previous page's `next`); nothing: the first page.
    std::optional<list_cursor> after;
    /// Only sessions whose title contains this (as search_query::text matches); empty: all.
    std::string title_contains;
};

/// One page of sessions and where the next one starts (nothing: this is the last page).
struct session_page {
    std::vector<session_meta> sessions;
    std::optional<list_cursor> next;
};

/// True when session `m` is listed after cursor `c` (newest first, ties by id).
[[nodiscard]] inline bool listed_after(const session_meta& m, const list_cursor& c) noexcept {
    return m.updated_at != c.updated_at ? m.updated_at < c.updated_at : m.id > c.id;
}

/// True when session `m` may be on a page that `req` asks for, cursor aside: it has an
/// exchange, and its title holds req.title_contains.
[[nodiscard]] inline bool page_admits(const session_meta& m, const page_request& req) noexcept {
    return m.exchange_count > 0 &&
           (req.title_contains.empty() ||
            find_ignoring_ascii_case(m.title, req.title_contains) != std::string_view::npos);
}

/// The page `req` asks for out of `all` (in any order): what a store without its own
/// paging serves, and the definition of a page.
[[nodiscard]] inline session_page page_of(std::vector<session_meta> all, const page_request& req) {
    std::erase_if(all, [&](const session_meta& m) {
        return !page_admits(m, req) || (req.after && !listed_after(m, *req.after));
    });
    auto newer = [](const session_meta& a, const session_meta& b) {
        return a.updated_at != b.updated_at ? a.updated_at > b.updated_at : a.id < b.id;
    };
    session_page page;
    const std::size_t n = std::min(req.limit, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), newer);
    const bool more = all.size() > n;
    all.resize(n);
    page.sessions = std::move(all);
    if (more && !page.sessions.empty())
        page.next = list_cursor{page.sessions.back().updated_at, page.sessions.back().id};
    return page;
}

} // namespace dexter::sessions
