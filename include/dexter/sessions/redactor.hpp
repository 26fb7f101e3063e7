// SPDX-License-Identifier: BSL-1.0
// The redactor concept and the default redactor, secret_redactor: what redacting_store
// (redacting_store.hpp) calls on every string before a store keeps it.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace dexter::sessions {

/// How many secrets of each kind a redactor replaced ("openai_key" -> 2).
using redaction_counts = std::map<std::string, std::uint64_t, std::less<>>;

/// What a redactor made of a text in which it replaced something.
struct redaction {
    /// The text with each secret replaced.
    std::string text;
    /// What was replaced, by kind; never empty.
    redaction_counts counts;
};

/// A redactor: called with a text, returns nothing when it replaces nothing (the common
/// case, which must cost little: the caller keeps the text as it is), else the new text
/// with what it replaced. It may be called for any string of a session (title, query,
/// answer, summary, model, every string value of tool calls and of extra), in any order,
/// and more than once for one text; it should find nothing in its own replacements.
template <class R>
concept redactor = std::move_constructible<R> && requires(R& r, std::string_view text) {
    { r(text) } -> std::same_as<std::optional<redaction>>;
};

/// A redactor that replaces only whole spans that start at an ASCII byte and end before
/// an ASCII byte (or at the end of the text), by ASCII text: a valid UTF-8 text then stays
/// valid, so redacting_store may hand what it redacted to a store's checked_utf8 overloads.
/// A redactor says so with `static constexpr bool cuts_at_ascii_boundaries = true;`.
template <class R>
concept ascii_boundary_redactor = redactor<R> && requires {
    requires R::cuts_at_ascii_boundaries;
};

namespace detail {

// Where one secret lies in a text, and what kind it is.
struct secret_span {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::string_view kind;
};

class secret_scanner {
public:
    explicit secret_scanner(std::string_view text) noexcept : s_(text) {}

    // Every secret of the text, in order, not overlapping. Reads each byte once on the
    // way to the trigger bytes (see triggers()) whose neighbours could be part of a
    // secret (worth_checking()), and only there checks a whole pattern (check_at()).
    std::vector<secret_span> scan() {
        std::vector<secret_span> found;
        std::size_t resume = 0; // the end of the last secret found
        const auto at_trigger = [&](std::size_t i) {
            if (i >= resume && worth_checking(i)) {
                if (const auto span = check_at(i)) {
                    found.push_back(*span);
                    resume = span->end;
                }
            }
        };
        const auto* p = reinterpret_cast<const unsigned char*>(s_.data());
        const std::size_t n = s_.size();
        const auto& trigger = triggers();
        std::size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        // 32 or 16 bytes at a time: the triggers whose neighbours pass a looser test than
        // worth_checking(), all at once (with AVX2 when the processor has it; SSE2 is
        // there on every x86-64).
        for (; i < 4 && i < n; ++i)
            if (trigger[p[i]])
                at_trigger(i);
        static const bool avx2 = __builtin_cpu_supports("avx2");
        if (avx2)
            i = blocks32(p, i, n, at_trigger);
        i = blocks16(p, i, n, at_trigger);
#endif
        for (; i < n; ++i)
            if (trigger[p[i]])
                at_trigger(i);
        return found;
    }

private:
#if defined(__x86_64__) && defined(__GNUC__)
    // 16 bytes, compared a byte with a byte (GCC's and Clang's vector extension).
    using bytes16 = signed char __attribute__((vector_size(16)));

    // Sets each byte of `out` (for the 16 bytes at `p`, with 4 bytes readable before them
    // and 1 after) that worth_checking() may accept: a superset of what it accepts.
    static void candidate_bytes(const unsigned char* p, bytes16& out) noexcept {
        bytes16 v, before, after, before2, before4;
        std::memcpy(&v, p, sizeof v);
        std::memcpy(&before, p - 1, sizeof v);
        std::memcpy(&after, p + 1, sizeof v);
        std::memcpy(&before2, p - 2, sizeof v);
        std::memcpy(&before4, p - 4, sizeof v);
        // Upper-case letters (and a few control bytes) as lower case; quotes and blanks.
        const bytes16 lower = before | 0x20;
        const bytes16 key_end = (lower == 'd') | (lower == 'n') | (lower == '"') | (lower == '\'') |
                                (lower == ' ') | (before == '\t');
        out = ((v == '-') & ((before == 'k') | (before4 == 'x') | (after == '-'))) |
              ((v == '_') & ((before == 'k') | (before == 'b') | (before2 == 'h'))) |
              ((v == 'A') & ((after == 'K') | (after == 'S') | (after == 'I'))) |
              ((v == 'J') & (before == 'y')) | ((v == ':') & ((after == '/') | key_end)) |
              ((v == '=') & key_end);
    }
    // Calls at(i) for each i from `i` on that candidate_bytes() sets, 16 bytes at a time
    // while a whole block and the byte after it are there; returns where it stopped.
    template <class F>
    static std::size_t blocks16(const unsigned char* p, std::size_t i, std::size_t n, F& at) {
        for (bytes16 found; i + sizeof found + 1 <= n; i += sizeof found) {
            candidate_bytes(p + i, found);
            auto mask = static_cast<unsigned>(_mm_movemask_epi8(reinterpret_cast<__m128i&>(found)));
            for (; mask != 0; mask &= mask - 1)
                at(i + static_cast<std::size_t>(__builtin_ctz(mask)));
        }
        return i;
    }
    // For blocks32(): a table of 16 bytes, each the OR of the bits given for its index,
    // in both halves; the bits of each byte of `v` by its nibbles; 32 bytes at `p`.
    [[gnu::target("avx2")]] static __m256i
    table(std::initializer_list<std::pair<std::size_t, int>> bits) noexcept {
        alignas(16) std::array<char, 16> t{};
        for (const auto& [nibble, bit] : bits)
            t[nibble] = static_cast<char>(t[nibble] | bit);
        return _mm256_broadcastsi128_si256(
            _mm_load_si128(reinterpret_cast<const __m128i*>(t.data())));
    }
    [[gnu::target("avx2"), gnu::always_inline]] static inline __m256i bits(__m256i v, __m256i lo,
                                                                           __m256i hi) noexcept {
        const __m256i nibble = _mm256_set1_epi8(0x0F);
        return _mm256_and_si256(
            _mm256_shuffle_epi8(lo, _mm256_and_si256(v, nibble)),
            _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)));
    }
    [[gnu::target("avx2"), gnu::always_inline]] static inline __m256i
    load(const unsigned char* p) noexcept {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }

    // The same with AVX2, 32 bytes at a time, by table lookups instead of comparisons
    // (fewer constants than registers): a byte's low and high nibble each index a table of
    // bits, whose AND is the byte's set of bits. For the byte itself, the bits of the
    // neighbours its trigger accepts (none for a byte that is no trigger); for the byte
    // before and the byte after, the bits of what they are. A candidate shares a bit.
    //   bit 0  'k' before (sk-, sk_, rk_)        bit 4  '"', '\'', ' ' or '\t' before (a key)
    //   bit 1  'b' before (github_)              bit 5  '-' or '/' after (-----, ://)
    //   bit 2  'y' before (eyJ)                  bit 6  'K', 'S' or 'I' after (AKIA, ASIA, AIza)
    //   bit 3  'd', 'D', 'n' or 'N' before       bit 7  'h' two before (gh?_), 'x' four before
    // The tables let a few other bytes through ('=' with bit 5, '*' before '/', ')' before
    // '='): worth_checking() turns them away.
    template <class F>
    [[gnu::target("avx2")]] static std::size_t blocks32(const unsigned char* p, std::size_t i,
                                                        std::size_t n, F& at) {
        // The trigger itself: '-' 0x2D, '_' 0x5F, 'A' 0x41, 'J' 0x4A, ':' 0x3A, '=' 0x3D.
        const __m256i trigger_lo = table({{0xD, 0x01 | 0x80 | 0x20},
                                          {0xD, 0x08 | 0x10},
                                          {0xF, 0x01 | 0x02 | 0x80},
                                          {0x1, 0x40},
                                          {0xA, 0x04},
                                          {0xA, 0x08 | 0x10 | 0x20}});
        const __m256i trigger_hi = table({{0x2, 0x01 | 0x80 | 0x20},
                                          {0x5, 0x01 | 0x02 | 0x80},
                                          {0x4, 0x40 | 0x04},
                                          {0x3, 0x08 | 0x10 | 0x20}});
        // The byte before: 'k' 0x6B, 'b' 0x62, 'y' 0x79, 'd' 0x64, 'D' 0x44, 'n' 0x6E,
        // 'N' 0x4E, '"' 0x22, '\'' 0x27, ' ' 0x20, '\t' 0x09.
        const __m256i before_lo = table({{0xB, 0x01},
                                         {0x2, 0x02 | 0x10},
                                         {0x9, 0x04 | 0x10},
                                         {0x4, 0x08},
                                         {0xE, 0x08},
                                         {0x7, 0x10},
                                         {0x0, 0x10}});
        const __m256i before_hi =
            table({{0x6, 0x01 | 0x02 | 0x08}, {0x7, 0x04}, {0x4, 0x08}, {0x2, 0x10}, {0x0, 0x10}});
        // The byte after: '-' 0x2D, '/' 0x2F, 'K' 0x4B, 'S' 0x53, 'I' 0x49.
        const __m256i after_lo =
            table({{0xD, 0x20}, {0xF, 0x20}, {0xB, 0x40}, {0x3, 0x40}, {0x9, 0x40}});
        const __m256i after_hi = table({{0x2, 0x20}, {0x4, 0x40}, {0x5, 0x40}});
        const __m256i h = _mm256_set1_epi8('h'), x = _mm256_set1_epi8('x'),
                      far = _mm256_set1_epi8(static_cast<char>(0x80)),
                      zero = _mm256_setzero_si256();
        for (; i + 33 <= n; i += 32) {
            const __m256i near = _mm256_or_si256(
                _mm256_or_si256(bits(load(p + i - 1), before_lo, before_hi),
                                bits(load(p + i + 1), after_lo, after_hi)),
                _mm256_and_si256(far, _mm256_or_si256(_mm256_cmpeq_epi8(load(p + i - 2), h),
                                                      _mm256_cmpeq_epi8(load(p + i - 4), x))));
            const __m256i shared =
                _mm256_and_si256(bits(load(p + i), trigger_lo, trigger_hi), near);
            auto mask =
                ~static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(shared, zero)));
            for (; mask != 0; mask &= mask - 1)
                at(i + static_cast<std::size_t>(__builtin_ctz(mask)));
        }
        return i;
    }
#endif

    // The bytes at which a secret can be recognised, chosen to be rare in ordinary text:
    //   '-'  sk-..., sk-ant-..., xox?-..., -----BEGIN ... PRIVATE KEY-----
    //   '_'  ghp_/gho_/ghs_/ghu_/ghr_..., github_pat_..., sk_live_/rk_live_...
    //   'A'  AKIA/ASIA (AWS), AIza (Google)
    //   'J'  eyJ... (a JSON Web Token)
    //   ':'  scheme://user:password@, Authorization: Bearer, "password": "..."
    //   '='  password=..., Authorization=Bearer
    static const std::array<unsigned char, 256>& triggers() noexcept {
        static const std::array<unsigned char, 256> table = [] {
            std::array<unsigned char, 256> t{};
            for (unsigned char c : std::string_view("-_AJ:="))
                t[c] = 1;
            return t;
        }();
        return table;
    }

    // What the bytes next to trigger `i` must be for a secret to be there: a quick test
    // that most triggers of ordinary text fail (a list's "- ", "std::", "x = 1").
    bool worth_checking(std::size_t i) const noexcept {
        const char before = i > 0 ? s_[i - 1] : '\0';
        const char after = i + 1 < s_.size() ? s_[i + 1] : '\0';
        switch (s_[i]) {
        case '-': // sk-, xox?-, -----BEGIN
            return before == 'k' || (i >= 4 && s_[i - 4] == 'x') || after == '-';
        case '_': // gh?_, github_pat_, sk_live_, rk_live_
            return before == 'k' || before == 'b' || (i >= 2 && s_[i - 2] == 'h');
        case 'A': // AKIA, ASIA, AIza
            return after == 'K' || after == 'S' || after == 'I';
        case 'J': // eyJ
            return before == 'y';
        default: { // ':' or '=': scheme://, or a key that ends in password, passwd or
                   // authorization (then a blank, a quote)
            if (s_[i] == ':' && after == '/')
                return true;
            std::size_t k = i;
            while (k > 0 && (s_[k - 1] == ' ' || s_[k - 1] == '\t'))
                --k;
            if (k > 0 && (s_[k - 1] == '"' || s_[k - 1] == '\''))
                --k;
            const char last = k > 0 ? lower(s_[k - 1]) : '\0';
            return last == 'd' || last == 'n';
        }
        }
    }

    static bool is_alnum(char c) noexcept {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    static bool is_digit(char c) noexcept {
        return c >= '0' && c <= '9';
    }
    static bool is_upper_or_digit(char c) noexcept {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    // The characters of base64url, and of most API keys.
    static bool is_token(char c) noexcept {
        return is_alnum(c) || c == '_' || c == '-';
    }
    static char lower(char c) noexcept {
        return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
    }

    bool has(std::size_t at, std::string_view word) const noexcept {
        return at <= s_.size() && s_.substr(at).starts_with(word);
    }
    bool has_nocase(std::size_t at, std::string_view word) const noexcept {
        if (at > s_.size() || s_.size() - at < word.size())
            return false;
        for (std::size_t k = 0; k < word.size(); ++k)
            if (lower(s_[at + k]) != word[k])
                return false;
        return true;
    }
    // True if no token character comes right before `at`: a secret starts a word.
    bool starts_word(std::size_t at) const noexcept {
        return at == 0 || !is_token(s_[at - 1]);
    }
    bool ends_word(std::size_t at) const noexcept {
        return at >= s_.size() || !is_token(s_[at]);
    }
    // The end of the run of characters that `pred` accepts from `at`.
    template <class Pred>
    std::size_t run(std::size_t at, Pred pred) const noexcept {
        while (at < s_.size() && pred(s_[at]))
            ++at;
        return at;
    }

    std::optional<secret_span> check_at(std::size_t i) const {
        switch (s_[i]) {
        case '-':
            return at_dash(i);
        case '_':
            return at_underscore(i);
        case 'A':
            return at_capital_a(i);
        case 'J':
            return at_capital_j(i);
        case ':':
            if (auto url = url_password(i))
                return url;
            [[fallthrough]];
        case '=':
            if (auto bearer = bearer_token(i))
                return bearer;
            return password_value(i);
        default:
            return std::nullopt;
        }
    }

    std::optional<secret_span> at_dash(std::size_t i) const {
        if (i >= 2 && s_[i - 2] == 's' && s_[i - 1] == 'k' && starts_word(i - 2)) {
            // sk-ant-api03-... (Anthropic), else sk-..., sk-proj-... (OpenAI). Random key
            // bodies of 20+ characters have a digit; hyphenated words do not.
            const bool anthropic = has(i + 1, "ant-");
            const std::size_t body = anthropic ? i + 5 : i + 1;
            const std::size_t end = run(body, is_token);
            const bool digit = std::any_of(s_.begin() + body, s_.begin() + end, is_digit);
            if (end - body >= 20 && digit)
                return secret_span{i - 2, end, anthropic ? "anthropic_key" : "openai_key"};
            return std::nullopt;
        }
        if (i >= 4 && has(i - 4, "xox") &&
            std::string_view("abprs").find(s_[i - 1]) != std::string_view::npos &&
            starts_word(i - 4)) {
            const std::size_t end = run(i + 1, [](char c) { return is_alnum(c) || c == '-'; });
            if (end - (i + 1) >= 10)
                return secret_span{i - 4, end, "slack_token"};
            return std::nullopt;
        }
        if (has(i, "-----BEGIN "))
            return private_key(i);
        return std::nullopt;
    }

    // -----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY----- through the matching END
    // line, or through the end of the text when it is cut short (what is there is secret).
    std::optional<secret_span> private_key(std::size_t i) const {
        const std::size_t label = i + 11;
        const std::size_t label_end =
            run(label, [](char c) { return (c >= 'A' && c <= 'Z') || c == ' '; });
        const std::string_view name = s_.substr(label, label_end - label);
        if (!name.ends_with("PRIVATE KEY") || !has(label_end, "-----"))
            return std::nullopt;
        const auto end_line = s_.find("-----END ", label_end + 5);
        if (end_line == std::string_view::npos)
            return secret_span{i, s_.size(), "private_key"};
        const auto close = s_.find("-----", end_line + 9);
        return secret_span{i, close == std::string_view::npos ? s_.size() : close + 5,
                           "private_key"};
    }

    std::optional<secret_span> at_underscore(std::size_t i) const {
        // ghp_, gho_, ghs_, ghu_, ghr_ and 36 characters (GitHub's classic tokens).
        if (i >= 3 && s_[i - 3] == 'g' && s_[i - 2] == 'h' &&
            std::string_view("posur").find(s_[i - 1]) != std::string_view::npos &&
            starts_word(i - 3)) {
            const std::size_t end = run(i + 1, is_alnum);
            if (end - (i + 1) == 36 && ends_word(end))
                return secret_span{i - 3, end, "github_token"};
            return std::nullopt;
        }
        // github_pat_ and 22 + 1 + 59 characters (fine-grained tokens); 30 at least.
        if (i >= 6 && has(i - 6, "github_pat_") && starts_word(i - 6)) {
            const std::size_t end = run(i + 5, [](char c) { return is_alnum(c) || c == '_'; });
            if (end - (i + 5) >= 30)
                return secret_span{i - 6, end, "github_token"};
            return std::nullopt;
        }
        // sk_live_, rk_live_ (Stripe's secret and restricted keys).
        if (i >= 2 && (s_[i - 2] == 's' || s_[i - 2] == 'r') && s_[i - 1] == 'k' &&
            has(i + 1, "live_") && starts_word(i - 2)) {
            const std::size_t end = run(i + 6, is_alnum);
            if (end - (i + 6) >= 16)
                return secret_span{i - 2, end, "stripe_key"};
        }
        return std::nullopt;
    }

    std::optional<secret_span> at_capital_a(std::size_t i) const {
        if (!starts_word(i))
            return std::nullopt;
        // AKIA or ASIA and 16 upper-case letters or digits (AWS access key ids).
        if (has(i, "AKIA") || has(i, "ASIA")) {
            const std::size_t end = run(i + 4, is_upper_or_digit);
            if (end - (i + 4) == 16 && ends_word(end))
                return secret_span{i, end, "aws_access_key_id"};
            return std::nullopt;
        }
        // AIza and 35 characters (Google API keys).
        if (has(i, "AIza")) {
            const std::size_t end = run(i + 4, is_token);
            if (end - (i + 4) == 35)
                return secret_span{i, end, "google_api_key"};
        }
        return std::nullopt;
    }

    // A JSON Web Token: eyJ... . eyJ... . signature (base64url; the signature may be
    // empty, as with "alg": "none"). Its header and payload both start as JSON objects do.
    std::optional<secret_span> at_capital_j(std::size_t i) const {
        if (i < 2 || s_[i - 2] != 'e' || s_[i - 1] != 'y' || !starts_word(i - 2))
            return std::nullopt;
        const std::size_t begin = i - 2;
        const std::size_t header_end = run(begin, is_alnum_or_url);
        if (header_end - begin < 10 || !has(header_end, ".eyJ"))
            return std::nullopt;
        const std::size_t payload_end = run(header_end + 1, is_alnum_or_url);
        if (payload_end - (header_end + 1) < 10 || !has(payload_end, "."))
            return std::nullopt;
        return secret_span{begin, run(payload_end + 1, is_alnum_or_url), "jwt"};
    }
    static bool is_alnum_or_url(char c) noexcept {
        return is_token(c);
    }

    static bool ends_authority(char c) noexcept {
        switch (c) {
        case '/':
        case '?':
        case '#':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case '"':
        case '\'':
        case '<':
        case '>':
        case '`':
            return true;
        default:
            return false;
        }
    }

    // scheme://user:password@host: the password only.
    std::optional<secret_span> url_password(std::size_t colon) const {
        if (!has(colon + 1, "//"))
            return std::nullopt;
        const std::size_t authority = colon + 3;
        std::size_t authority_end = authority;
        while (authority_end < s_.size() && !ends_authority(s_[authority_end]))
            ++authority_end;
        // The last '@' of the authority (a password may hold one).
        auto at = s_.substr(authority, authority_end - authority).rfind('@');
        if (at == std::string_view::npos)
            return std::nullopt;
        at += authority;
        const auto scheme_char = [](char c) {
            return is_alnum(c) || c == '+' || c == '.' || c == '-';
        };
        std::size_t scheme = colon;
        while (scheme > 0 && scheme_char(s_[scheme - 1]))
            --scheme;
        if (scheme == colon ||
            !((s_[scheme] >= 'a' && s_[scheme] <= 'z') || (s_[scheme] >= 'A' && s_[scheme] <= 'Z')))
            return std::nullopt;
        const auto user_end = s_.substr(0, at).find(':', authority);
        if (user_end == std::string_view::npos || user_end + 1 >= at ||
            is_placeholder(s_.substr(user_end + 1, at - user_end - 1)))
            return std::nullopt;
        return secret_span{user_end + 1, at, "url_password"};
    }

    // The key that ends right before a ':' or '=' at `sep` (spaces and one closing quote
    // between them allowed), lower-cased; and whether it was quoted.
    struct key_before {
        std::string_view key;
        bool spaced = false;
    };
    key_before key_at(std::size_t sep) const noexcept {
        std::size_t k = sep;
        bool spaced = false;
        while (k > 0 && (s_[k - 1] == ' ' || s_[k - 1] == '\t')) {
            --k;
            spaced = true;
        }
        if (k > 0 && (s_[k - 1] == '"' || s_[k - 1] == '\''))
            --k;
        const std::size_t end = k;
        while (k > 0 && (is_token(s_[k - 1]) || s_[k - 1] == '.'))
            --k;
        return {s_.substr(k, end - k), spaced};
    }
    bool key_ends_with(std::string_view key, std::string_view word) const noexcept {
        if (key.size() < word.size())
            return false;
        const std::size_t from = key.size() - word.size();
        for (std::size_t k = 0; k < word.size(); ++k)
            if (lower(key[from + k]) != word[k])
                return false;
        return true;
    }
    static bool contains_nocase(std::string_view text, std::string_view word) noexcept {
        return std::search(text.begin(), text.end(), word.begin(), word.end(),
                           [](char a, char b) { return lower(a) == b; }) != text.end();
    }
    // A value that names or stands for a secret rather than being one.
    static bool is_placeholder(std::string_view v) noexcept {
        if (v.empty() || v.starts_with("[REDACTED:"))
            return true;
        if (std::string_view("$<{%*").find(v.front()) != std::string_view::npos)
            return true;
        if (std::none_of(v.begin(), v.end(), [](char c) {
                return is_alnum(c) || static_cast<unsigned char>(c) >= 0x80;
            }))
            return true; // "...", "***", "-"
        for (std::string_view word : {"none", "null", "nil", "true", "false", "undefined"})
            if (v.size() == word.size() && contains_nocase(v, word))
                return true;
        return contains_nocase(v, "password") || contains_nocase(v, "passwd");
    }
    std::size_t skip_blanks(std::size_t at) const noexcept {
        return run(at, [](char c) { return c == ' ' || c == '\t'; });
    }

    // Authorization: Bearer <token>, "Authorization": "Bearer <token>", authorization=Bearer.
    std::optional<secret_span> bearer_token(std::size_t sep) const {
        if (!key_ends_with(key_at(sep).key, "authorization"))
            return std::nullopt;
        std::size_t v = skip_blanks(sep + 1);
        if (v < s_.size() && (s_[v] == '"' || s_[v] == '\''))
            ++v;
        if (!has_nocase(v, "bearer"))
            return std::nullopt;
        const std::size_t token = skip_blanks(v + 6);
        if (token == v + 6)
            return std::nullopt;
        const std::size_t end = run(token, [](char c) {
            return is_token(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
        });
        const bool digit = std::any_of(s_.begin() + token, s_.begin() + end, is_digit);
        if (end - token < 8 || !digit)
            return std::nullopt;
        return secret_span{token, end, "bearer_token"};
    }

    // password=..., "password": "...", password = '...', a line `password: ...`: the value.
    std::optional<secret_span> password_value(std::size_t sep) const {
        const auto [key, spaced] = key_at(sep);
        if (!key_ends_with(key, "password") && !key_ends_with(key, "passwd"))
            return std::nullopt;
        if (sep + 1 < s_.size() && (s_[sep + 1] == '=' || s_[sep + 1] == ':'))
            return std::nullopt; // ==, :=, ::  (a comparison, code)
        if (sep > 0 && (s_[sep - 1] == '!' || s_[sep - 1] == '<' || s_[sep - 1] == '>'))
            return std::nullopt;
        const std::size_t v = skip_blanks(sep + 1);
        if (v < s_.size() && (s_[v] == '"' || s_[v] == '\'')) {
            // A quoted value: up to the closing quote on the same line.
            const char quote = s_[v];
            std::size_t end = v + 1;
            while (end < s_.size() && s_[end] != quote && s_[end] != '\n') {
                if (s_[end] == '\\' && end + 1 < s_.size() && s_[end + 1] != '\n')
                    ++end;
                ++end;
            }
            if (end >= s_.size() || s_[end] != quote ||
                is_placeholder(s_.substr(v + 1, end - v - 1)))
                return std::nullopt;
            return secret_span{v + 1, end, "password"};
        }
        // Unquoted: password=value (no blanks, as in a URL, an environment or a command
        // line), or a configuration line `password: value` with nothing after the value.
        if (v != sep + 1 && s_[sep] == '=')
            return std::nullopt;
        const std::size_t end = run(v, [](char c) {
            return static_cast<unsigned char>(c) > ' ' && c != '&' && c != ';' && c != ',' &&
                   c != ')' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`';
        });
        if (is_placeholder(s_.substr(v, end - v)))
            return std::nullopt;
        if (s_[sep] == ':') {
            const std::size_t after = skip_blanks(end);
            if (spaced || (after < s_.size() && s_[after] != '\n' && s_[after] != '\r'))
                return std::nullopt;
        }
        return secret_span{v, end, "password"};
    }

    std::string_view s_;
};

} // namespace detail

/// The default redactor. Finds, each replaced by `[REDACTED:<kind>]`:
///
///   openai_key         sk-..., sk-proj-... (20+ characters of [A-Za-z0-9_-], a digit among them)
///   anthropic_key      sk-ant-... (20+ characters)
///   aws_access_key_id  AKIA or ASIA and 16 of [A-Z0-9]
///   github_token       ghp_, gho_, ghs_, ghu_, ghr_ and 36 of [A-Za-z0-9]; github_pat_...
///   slack_token        xoxa-, xoxb-, xoxp-, xoxr-, xoxs- and 10+ of [A-Za-z0-9-]
///   google_api_key     AIza and 35 of [A-Za-z0-9_-]
///   stripe_key         sk_live_, rk_live_ and 16+ of [A-Za-z0-9]
///   jwt                eyJ... . eyJ... . signature (a JSON Web Token)
///   private_key        a PEM private key block, BEGIN line through END line
///   url_password       the password of scheme://user:password@host (user and host stay)
///   bearer_token       the token of Authorization: Bearer <token> (8+ characters, a digit)
///   password           the value of password=..., "password": "...", password = '...',
///                      and of a line `password: ...` (keys ending in password or passwd,
///                      any case); placeholders ($VAR, <...>, {...}, null, "...") are left
///
/// A secret must start a word (no letter, digit, '_' or '-' right before it). One pass
/// over the text that stops only at a few rare bytes ('-', '_', 'A', 'J', ':', '=');
/// nothing is copied or allocated when nothing is found. Cuts at ASCII boundaries only.
class secret_redactor {
public:
    static constexpr bool cuts_at_ascii_boundaries = true;

    /// The secrets of `text`, in order: where each lies and its kind.
    [[nodiscard]] std::vector<detail::secret_span> find(std::string_view text) const {
        return detail::secret_scanner(text).scan();
    }

    [[nodiscard]] std::optional<redaction> operator()(std::string_view text) const {
        const auto spans = find(text);
        if (spans.empty())
            return std::nullopt;
        redaction r;
        r.text.reserve(text.size());
        std::size_t from = 0;
        for (const auto& s : spans) {
            r.text.append(text.substr(from, s.begin - from));
            r.text.append("[REDACTED:").append(s.kind).push_back(']');
            ++r.counts[std::string(s.kind)];
            from = s.end;
        }
        r.text.append(text.substr(from));
        return r;
    }
};

static_assert(ascii_boundary_redactor<secret_redactor>);

} // namespace dexter::sessions
