// SPDX-License-Identifier: BSL-1.0
// The redactor concept and the default redactor, secret_redactor: what redacting_store
// (redacting_store.hpp) calls on every string before a store keeps it.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
    // way to the trigger bytes (see triggers()) and looks around only those.
    std::vector<secret_span> scan() {
        std::vector<secret_span> found;
        const auto& trigger = triggers();
        const auto* p = reinterpret_cast<const unsigned char*>(s_.data());
        const std::size_t n = s_.size();
        std::size_t i = 0;
        while (i < n) {
            // The common case: a run of bytes that cannot start a check.
            while (i + 4 <= n &&
                   !(trigger[p[i]] | trigger[p[i + 1]] | trigger[p[i + 2]] | trigger[p[i + 3]]))
                i += 4;
            while (i < n && !trigger[p[i]])
                ++i;
            if (i >= n)
                break;
            if (const auto span = check_at(i)) {
                found.push_back(*span);
                i = span->end;
            } else {
                ++i;
            }
        }
        return found;
    }

private:
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

    static bool is_alnum(char c) noexcept {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
    static bool is_upper_or_digit(char c) noexcept {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    // The characters of base64url, and of most API keys.
    static bool is_token(char c) noexcept { return is_alnum(c) || c == '_' || c == '-'; }
    static char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

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
    bool starts_word(std::size_t at) const noexcept { return at == 0 || !is_token(s_[at - 1]); }
    bool ends_word(std::size_t at) const noexcept { return at >= s_.size() || !is_token(s_[at]); }
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
    static bool is_alnum_or_url(char c) noexcept { return is_token(c); }

    // scheme://user:password@host: the password only.
    std::optional<secret_span> url_password(std::size_t colon) const {
        if (!has(colon + 1, "//"))
            return std::nullopt;
        const auto scheme_char = [](char c) {
            return is_alnum(c) || c == '+' || c == '.' || c == '-';
        };
        std::size_t scheme = colon;
        while (scheme > 0 && scheme_char(s_[scheme - 1]))
            --scheme;
        if (scheme == colon ||
            !((s_[scheme] >= 'a' && s_[scheme] <= 'z') || (s_[scheme] >= 'A' && s_[scheme] <= 'Z')))
            return std::nullopt;
        const std::size_t authority = colon + 3;
        const std::size_t authority_end = run(authority, [](char c) {
            return c != '/' && c != '?' && c != '#' && c != ' ' && c != '\t' && c != '\n' &&
                   c != '\r' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`';
        });
        const auto at = s_.substr(0, authority_end).rfind('@');
        if (at == std::string_view::npos || at < authority)
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
