// SPDX-License-Identifier: BSL-1.0
// The benchmark's realistic text: what an agent's answers look like, deterministic from a
// seed. An answer is about 4 KB of Markdown (headings, lists, code fences with tabs and
// backslashes, quotes, block quotes, URLs, accented letters, CJK and 4-byte emoji); a
// question or a summary is about 200 bytes of the same kinds of words. The easy text of
// earlier tables (short ASCII-only words, few escapes) stays for the one figure that shows
// what realistic text costs (figure 2e, docs/PERFORMANCE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bench {

/// A small deterministic generator (xorshift64*), so every run writes the same bytes.
class rng {
public:
    explicit rng(std::uint64_t seed) : s_(seed ? seed : 1) {}
    std::uint64_t next() {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return s_ * 2685821657736338717ull;
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    /// A number in [from, to].
    std::size_t between(std::size_t from, std::size_t to) { return from + below(to - from + 1); }

private:
    std::uint64_t s_;
};

namespace realistic {

// Words of prose: mostly ASCII, with quotes, accents, CJK, emoji and the odd backslash.
inline constexpr std::string_view words[] = {
    "the",
    "revenue",
    "of",
    "quarter",
    "growth",
    "and",
    "a",
    "\"margin\"",
    "caf\xC3\xA9",
    "analyst",
    "ratio",
    "cash",
    "flow",
    "Apple's",
    "10-K",
    "guidance",
    "EPS",
    "is",
    "to",
    "in",
    "r\xC3\xA9sum\xC3\xA9",
    "M\xC3\xBC"
    "nchen",
    "Espa\xC3\xB1"
    "a",
    "\xC3\xBC"
    "ber",
    "na\xC3\xAF"
    "ve",
    "\xE4\xB8\xAD\xE6\x96\x87",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xF0\x9F\x99\x82",
    "\xF0\x9F\x9A\x80",
    "\xF0\x9F\x93\x88",
    "C:\\Users\\data",
    "\"quoted\"",
    "`code`",
    "**bold**",
    "_note_",
    "that",
    "with",
    "for",
    "this",
    "year",
    "(see",
    "above)",
    "we",
    "expect",
    "will",
    "rise",
    "by",
    "3.5%",
    "\xE2\x80\x94",
    "$1.2B",
    "\xE2\x82\xAC"
    "40",
};

inline constexpr std::string_view urls[] = {
    "https://example.com/reports/2026/q3?lang=en&page=2",
    "https://docs.example.org/api/v2/sessions#resume",
    "https://www.example.net/\xE6\x96\x87\xE6\xA1\xA3/readme",
};

inline constexpr std::string_view headings[] = {
    "Summary",
    "Details",
    "R\xC3\xA9sum\xC3\xA9 des chiffres",
    "Next steps",
    "\xE5\x88\x86\xE6\x9E\x90 (analysis)",
    "Caveats \xF0\x9F\x9A\x80",
};

// Lines of code for the fences: tabs, backslashes, quotes.
inline constexpr std::string_view code_lines[] = {
    "for (auto& r : rows) {",
    "\tif (r.name == \"caf\xC3\xA9\")",
    "\t\tstd::printf(\"%s\\t%d\\n\", r.name.c_str(), r.count);",
    "\tpath = \"C:\\\\Users\\\\me\\\\report.csv\";",
    "}",
    "import re; re.sub(r\"\\s+\", \" \", text)",
    "\tprint(f\"{x!r}\\n\")  # \xE6\x97\xA5\xE6\x9C\xAC",
    "grep -E '^\\s*#' config.ini | sed 's/\\t/ /g'",
};

// Appends words until `s` has grown by about `bytes`.
inline void prose(rng& r, std::string& s, std::size_t bytes) {
    const std::size_t until = s.size() + bytes;
    while (s.size() < until) {
        if (r.below(40) == 0) {
            s += urls[r.below(std::size(urls))];
        } else {
            s += words[r.below(std::size(words))];
        }
        s += r.below(12) == 0 ? ". " : " ";
    }
}

} // namespace realistic

/// About `bytes` (±25 %) of Markdown, as an agent answers: headings, paragraphs, lists,
/// block quotes and code fences; quotes, backslashes, tabs, newlines, accented letters,
/// CJK, 4-byte emoji and URLs. Always valid UTF-8.
inline std::string realistic_answer(rng& r, std::size_t bytes) {
    using namespace realistic;
    const std::size_t target = r.between(bytes * 3 / 4, bytes * 5 / 4);
    std::string s;
    s.reserve(target + 512);
    while (s.size() < target) {
        switch (r.below(6)) {
        case 0:
            s += "## ";
            s += headings[r.below(std::size(headings))];
            s += "\n\n";
            break;
        case 1: {
            const std::size_t items = r.between(2, 5);
            for (std::size_t i = 0; i < items; ++i) {
                s += r.below(2) ? "- " : std::to_string(i + 1) + ". ";
                prose(r, s, r.between(30, 90));
                s += '\n';
            }
            s += '\n';
            break;
        }
        case 2: {
            s += "```cpp\n";
            const std::size_t lines = r.between(3, 7);
            for (std::size_t i = 0; i < lines; ++i) {
                s += code_lines[r.below(std::size(code_lines))];
                s += '\n';
            }
            s += "```\n\n";
            break;
        }
        case 3:
            s += "> ";
            prose(r, s, r.between(60, 160));
            s += "\n\n";
            break;
        default:
            prose(r, s, r.between(200, 500));
            s += "\n\n";
            break;
        }
    }
    return s;
}

/// About `bytes` (±25 %) of one line of the same words: a question or a summary.
inline std::string realistic_line(rng& r, std::size_t bytes) {
    std::string s;
    realistic::prose(r, s, r.between(bytes * 3 / 4, bytes * 5 / 4));
    if (r.below(4) == 0)
        s += "\t(\xE2\x86\x92 see \"notes\")";
    return s;
}

/// ASCII-only words with few escapes (quotes, accents and an emoji now and then): the text
/// of earlier tables, kept for figure 2e.
inline std::string easy_text(rng& r, std::size_t bytes, bool markdown) {
    static const char* easy_words[] = {
        "revenue", "quarter", "growth", "\"margin\"", "cafe",   "analyst", "ratio",  "cash",
        "flow",    "Apple's", "10-K",   "guidance",   "resume", "EPS",     "report", "market"};
    std::string s;
    while (s.size() < bytes) {
        if (markdown && r.below(12) == 0)
            s += "\n\n## Section\n- ";
        s += easy_words[r.below(std::size(easy_words))];
        s += ' ';
    }
    return s;
}

/// The length of the valid UTF-8 sequence at the start of `s`, or 0 if there is none.
inline std::size_t utf8_sequence(std::string_view s) {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
    if (s.empty())
        return 0;
    const unsigned c = b(0);
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2) || (c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3) || (c == 0xF0 && b(1) < 0x90) ||
            (c == 0xF4 && b(1) > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/// What the self-check counts in a text: how many of each kind of character it holds.
struct text_mix {
    std::size_t bytes = 0, quotes = 0, backslashes = 0, tabs = 0, newlines = 0, two_byte = 0,
                cjk = 0, four_byte = 0, urls = 0, headings = 0, fences = 0;

    void count(std::string_view s) {
        bytes += s.size();
        for (std::size_t i = 0; i < s.size();) {
            const std::size_t n = utf8_sequence(s.substr(i));
            if (n == 0)
                throw std::runtime_error("realistic text: invalid UTF-8 at byte " +
                                         std::to_string(i));
            const unsigned char c = static_cast<unsigned char>(s[i]);
            quotes += c == '"';
            backslashes += c == '\\';
            tabs += c == '\t';
            newlines += c == '\n';
            two_byte += n == 2;
            cjk += n == 3 && c >= 0xE4 && c <= 0xE9;
            four_byte += n == 4;
            i += n;
        }
        for (std::size_t at = 0; (at = s.find("https://", at)) != s.npos; ++at)
            ++urls;
        for (std::size_t at = 0; (at = s.find("\n## ", at)) != s.npos; ++at)
            ++headings;
        headings += s.substr(0, 3) == "## ";
        for (std::size_t at = 0; (at = s.find("```", at)) != s.npos; at += 3)
            ++fences;
    }

    /// Throws unless every kind is present.
    void require_all(const char* what) const {
        const std::pair<const char*, std::size_t> kinds[] = {{"quotes", quotes},
                                                             {"backslashes", backslashes},
                                                             {"tabs", tabs},
                                                             {"newlines", newlines},
                                                             {"accented letters", two_byte},
                                                             {"CJK", cjk},
                                                             {"emoji", four_byte},
                                                             {"URLs", urls}};
        for (const auto& [name, n] : kinds)
            if (n == 0)
                throw std::runtime_error(std::string("realistic text: no ") + name + " in " + what);
    }
};

} // namespace bench
