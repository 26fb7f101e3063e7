// SPDX-License-Identifier: BSL-1.0
// What dexter prints for people: the terminal sanitizer every view of stored or agent text
// goes through, display widths, and cutting text to a width.
#include "dexter/terminal.hpp"

#define BOOST_TEST_MODULE dexter_terminal
#include <boost/test/unit_test.hpp>

#include <dexter/sessions/utf8.hpp>

#include <boost/json/parse.hpp>

#include <random>
#include <string>
#include <vector>

namespace {

using dexter::cli::control_chars;
using dexter::cli::display_width;
using dexter::cli::fit;
using dexter::cli::terminal_safe;

struct safe_case {
    std::string in;
    std::string one_line; // terminal_safe(in, false)
    std::string kept;     // terminal_safe(in, true)
};

// True when `s` holds nothing a terminal would act on: no C0 control but newline and tab
// (and CR right before a newline) when `newlines`, none at all otherwise; no DEL, no C1
// control; valid UTF-8.
bool harmless(const std::string& s, bool newlines) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        const bool line_break =
            c == '\n' || c == '\t' || (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n');
        if ((c < 0x20 && !(newlines && line_break)) || c == 0x7f)
            return false;
        if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F)
            return false;
    }
    return dexter::sessions::is_valid_utf8(s);
}

} // namespace

BOOST_AUTO_TEST_CASE(terminal_safe_shows_every_control_visibly) {
    const std::vector<safe_case> cases{
        // Escape sequences: the ESC shows as ^[, the rest is harmless text.
        {"\x1b[31mred\x1b[0m", "^[[31mred^[[0m", "^[[31mred^[[0m"},             // CSI
        {"\x1b]0;pwned\x07", "^[]0;pwned^G", "^[]0;pwned^G"},                   // OSC, BEL
        {"\x1b]0;pwned\x1b\\", "^[]0;pwned^[\\", "^[]0;pwned^[\\"},             // OSC, ST
        {"\x1b]52;c;aGVsbG8=\x07", "^[]52;c;aGVsbG8=^G", "^[]52;c;aGVsbG8=^G"}, // OSC 52
        {"\x1bP1$r0m\x1b\\", "^[P1$r0m^[\\", "^[P1$r0m^[\\"},                   // DCS
        {"\x1b"
         "c",
         "^[c", "^[c"}, // RIS
        // C1 controls in UTF-8 form (U+0080..U+009F); U+00A0 is a character.
        {"\xc2\x9b"
         "31m",
         "<U+009B>31m", "<U+009B>31m"},
        {"\xc2\x9d"
         "0;t\xc2\x9c",
         "<U+009D>0;t<U+009C>", "<U+009D>0;t<U+009C>"},
        {"\xc2\x80\xc2\x9f", "<U+0080><U+009F>", "<U+0080><U+009F>"},
        {"a\xc2\xa0"
         "b",
         "a\xc2\xa0"
         "b",
         "a\xc2\xa0"
         "b"},
        // Other C0 controls and DEL in caret notation.
        {"abc\rdef", "abc^Mdef", "abc^Mdef"},
        {"ab\b\bcd", "ab^H^Hcd", "ab^H^Hcd"},
        {std::string("a\0b", 3), "a^@b", "a^@b"},
        {"\x01\x1f\x7f", "^A^_^?", "^A^_^?"},
        {"end\r", "end^M", "end^M"},
        {"secret\rpublic", "secret^Mpublic", "secret^Mpublic"}, // a bare CR overwrites
        {"\x1b]0;pwned\x07\x1b[31m", "^[]0;pwned^G^[[31m", "^[]0;pwned^G^[[31m"},
        {"\x1b]52;c;cm0gLXJmIH4=\x1b\\", "^[]52;c;cm0gLXJmIH4=^[\\", "^[]52;c;cm0gLXJmIH4=^[\\"},
        {"\x1b[8mhidden\x1b[28m", "^[[8mhidden^[[28m", "^[[8mhidden^[[28m"}, // concealed text
        // C1 controls as raw bytes (not UTF-8): CSI, OSC, DCS, ST.
        {"\x9b"
         "31m",
         "\\x9B31m", "\\x9B31m"},
        {"\x9d"
         "0;t\x9c\x90q",
         "\\x9D0;t\\x9C\\x90q", "\\x9D0;t\\x9C\\x90q"},
        // Line breaks: kept, or one space each.
        {"one\ntwo", "one two", "one\ntwo"},
        {"a\tb", "a b", "a\tb"},
        {"crlf\r\nnext", "crlf next", "crlf\r\nnext"},
        {"\r\r\n", "^M ", "^M\r\n"},
        // Bytes that are not UTF-8, one \xNN each.
        {"\xff", "\\xFF", "\\xFF"},
        {"a\x80z", "a\\x80z", "a\\x80z"},
        {"\xe2\x82", "\\xE2\\x82", "\\xE2\\x82"},                             // cut short
        {"\xc0\xaf", "\\xC0\\xAF", "\\xC0\\xAF"},                             // overlong
        {"\xed\xa0\x80", "\\xED\\xA0\\x80", "\\xED\\xA0\\x80"},               // a surrogate
        {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80", "\\xF4\\x90\\x80\\x80"}, // above U+10FFFF
        {"\xc2", "\\xC2", "\\xC2"},
        // Text passes unchanged.
        {"", "", ""},
        {"plain ASCII ~ text", "plain ASCII ~ text", "plain ASCII ~ text"},
        {"漢字とかな", "漢字とかな", "漢字とかな"},
        {"emoji 😀👍🏽 é", "emoji 😀👍🏽 é", "emoji 😀👍🏽 é"},
    };
    for (const auto& c : cases) {
        BOOST_TEST(terminal_safe(c.in, false) == c.one_line, "one line: " << c.one_line);
        BOOST_TEST(terminal_safe(c.in, true) == c.kept, "kept: " << c.kept);
    }
}

BOOST_AUTO_TEST_CASE(terminal_safe_output_is_harmless_for_any_bytes) {
    std::mt19937 random(20261130);
    // Bytes drawn mostly from the dangerous ones, so that sequences form often.
    const std::string interesting("\x1b\x07\x08\r\n\t\x7f\xc2\x9b\x9d\x80\x9f\xe2\x82\xac\xff "
                                  "[]a;P\\",
                                  24);
    for (int round = 0; round < 20000; ++round) {
        std::string in(random() % 24, '\0');
        for (auto& ch : in)
            ch = random() % 3 ? interesting[random() % interesting.size()]
                              : static_cast<char>(random() % 256);
        const std::string one = terminal_safe(in, false), kept = terminal_safe(in, true);
        BOOST_TEST_REQUIRE(harmless(one, false), "input of round " << round);
        BOOST_TEST_REQUIRE(harmless(kept, true), "input of round " << round);
        BOOST_TEST_REQUIRE(terminal_safe(one, false) == one); // safe text stays as it is
        BOOST_TEST_REQUIRE(terminal_safe(kept, true) == kept);
    }
}

BOOST_AUTO_TEST_CASE(json_for_terminal_escapes_c1_and_keeps_the_value) {
    using dexter::cli::json_for_terminal;
    const std::string raw = "{\"q\":\"a\xc2\x9b"
                            "31m b\x7f c\xc2\xa0 \xc2\x80\",\"k\":[1,\"\xe6\xbc\xa2\"]}";
    const std::string shown = json_for_terminal(raw);
    BOOST_TEST(shown ==
               "{\"q\":\"a\\u009b31m b\\u007f c\xc2\xa0 \\u0080\",\"k\":[1,\"\xe6\xbc\xa2\"]}");
    BOOST_TEST(harmless(shown, false));
    BOOST_TEST(boost::json::parse(shown) == boost::json::parse(raw));
    BOOST_TEST(json_for_terminal("[\"plain\"]") == "[\"plain\"]");
}

BOOST_AUTO_TEST_CASE(raw_keeps_controls_and_only_joins_lines) {
    const std::string hostile = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\r\b\x7f\xc2\x9b\xff";
    BOOST_TEST(terminal_safe(hostile, true, control_chars::raw) == hostile);
    BOOST_TEST(terminal_safe(hostile, false, control_chars::raw) == hostile);
    BOOST_TEST(terminal_safe("a\nb\tc\r\nd", true, control_chars::raw) == "a\nb\tc\r\nd");
    BOOST_TEST(terminal_safe("a\nb\tc\r\nd", false, control_chars::raw) == "a b c d");
}

BOOST_AUTO_TEST_CASE(display_width_counts_terminal_columns) {
    struct width_case {
        char32_t c;
        int columns;
    };
    const std::vector<width_case> cases{
        {U'a', 1},          {U'~', 1},          {U'\u00e9', 1},
        {U'\u00ad', 1},                                         // soft hyphen
        {U'\u0301', 0},                                         // combining acute
        {U'\u20dd', 0},                                         // enclosing circle
        {U'\u200b', 0},     {U'\u200d', 0},     {U'\ufe0f', 0}, // ZWSP, ZWJ, VS16
        {U'\u1161', 0},                                         // Hangul medial vowel
        {U'\u1100', 2},     {U'\uac00', 2},                     // Hangul
        {U'\u3042', 2},     {U'\u6f22', 2},     {U'\uff21', 2},
        {U'\u3000', 2},                                             // kana, CJK, fullwidth
        {U'\uff71', 1},                                             // halfwidth katakana
        {U'\U0001f600', 2}, {U'\U0001f44d', 2}, {U'\u231a', 2},     // emoji
        {U'\U0001f3fd', 2},                                         // skin tone modifier
        {U'\u2764', 1},                                             // text-style heart
        {U'\U00020000', 2}, {U'\U0002fffd', 2}, {U'\U00030000', 2}, // planes 2 and 3
        {U'\u0410', 1},     {U'\u05d0', 1},     {U'\u0e01', 1},     // Cyrillic, Hebrew, Thai
    };
    for (const auto& c : cases)
        BOOST_TEST(display_width(c.c) == c.columns,
                   "U+" << std::hex << std::uppercase << static_cast<unsigned>(c.c));
    BOOST_TEST(display_width(std::string_view("abc")) == 3u);
    BOOST_TEST(display_width(std::string_view("漢字とかな")) == 10u);
    BOOST_TEST(display_width(std::string_view("e\xcc\x81t\xc3\xa9")) == 3u); // e + U+0301, t, é
    BOOST_TEST(display_width(std::string_view("😀👍🏽")) == 6u);
    BOOST_TEST(display_width(std::string_view("\xff")) == 1u);
}

BOOST_AUTO_TEST_CASE(fit_cuts_to_a_display_width_never_inside_a_character) {
    struct fit_case {
        std::string in;
        std::size_t width;
        std::string out;
    };
    const std::vector<fit_case> cases{
        {"short", 10, "short"},
        {"exactly10!", 10, "exactly10!"},
        {"eleven char", 10, "eleven ch…"},
        {"two\nlines", 20, "two lines"},
        {"anything", 0, ""},
        {"ab", 1, "…"},
        // CJK: two columns each; a character that would cross the edge is left out whole.
        {"漢字漢字漢字", 12, "漢字漢字漢字"},
        {"漢字漢字漢字", 11, "漢字漢字漢…"},
        {"漢字漢字漢字", 10, "漢字漢字…"},
        {"漢字漢字漢字", 4, "漢…"},
        {"漢字", 2, "…"},
        {"a漢字", 4, "a漢…"},
        // Emoji: two columns each (a skin tone modifier too, as wcwidth counts it).
        {"😀😀😀", 6, "😀😀😀"},
        {"😀😀😀", 5, "😀😀…"},
        {"ok👍🏽👍🏽", 7, "ok👍🏽…"},
        // Combining marks take no column and stay with their character.
        {"e\xcc\x81"
         "e\xcc\x81"
         "e\xcc\x81",
         3,
         "e\xcc\x81"
         "e\xcc\x81"
         "e\xcc\x81"},
        {"e\xcc\x81"
         "e\xcc\x81"
         "e\xcc\x81"
         "e",
         3,
         "e\xcc\x81"
         "e\xcc\x81"
         "…"},
        {"ä\xcc\x88\xcc\x88xyz", 3, "ä\xcc\x88\xcc\x88x…"},
        // Escaped controls count as the text they show.
        {"\x1b[2Jwipe", 5, "^[[2…"},
        {"\xc2\x9b"
         "x",
         6, "<U+00…"},
    };
    for (const auto& c : cases) {
        const std::string out = fit(c.in, c.width);
        BOOST_TEST(out == c.out, "fit(\"" << terminal_safe(c.in, false) << "\", " << c.width
                                          << ") = \"" << out << "\"");
        BOOST_TEST(display_width(out) <= c.width);
        BOOST_TEST(dexter::sessions::is_valid_utf8(out));
    }
}

BOOST_AUTO_TEST_CASE(fit_raw_keeps_escape_sequences_whole_and_uncounted) {
    // Sequences take no column; those after the cut are kept, so a reset still resets.
    BOOST_TEST(fit("\x1b[31mred\x1b[0m", 3, control_chars::raw) == "\x1b[31mred\x1b[0m");
    BOOST_TEST(fit("\x1b[31mredder\x1b[0m", 4, control_chars::raw) == "\x1b[31mred…\x1b[0m");
    BOOST_TEST(fit("ab\x1b]0;title\x07"
                   "cdef",
                   4, control_chars::raw) == "ab\x1b]0;title\x07"
                                             "c…");
    BOOST_TEST(fit("ab\x1b]0;title\x1b\\cdef", 3, control_chars::raw) == "ab\x1b]0;title\x1b\\…");
    BOOST_TEST(fit("漢字\x1b[1m漢字", 5, control_chars::raw) == "漢字\x1b[1m…");
    BOOST_TEST(fit("a\nb", 5, control_chars::raw) == "a b");
}

// Text with lines cut to a width stays within it for any input, and is valid UTF-8.
BOOST_AUTO_TEST_CASE(fit_stays_within_the_width_for_any_text) {
    std::mt19937 random(20261201);
    const std::vector<std::string> pieces{
        "a",  "漢", "😀", "\xcc\x81", "\xf0\x9f\x8f\xbd", "\x1b", "\xc2\x9b", "\xff",
        "\t", "\n", "é", " "};
    for (int round = 0; round < 5000; ++round) {
        std::string in;
        for (auto n = random() % 30; n > 0; --n)
            in += pieces[random() % pieces.size()];
        const std::size_t width = random() % 20;
        const std::string out = fit(in, width);
        BOOST_TEST_REQUIRE(display_width(out) <= width, "round " << round);
        BOOST_TEST_REQUIRE(harmless(out, false), "round " << round);
        if (display_width(terminal_safe(in, false)) <= width)
            BOOST_TEST_REQUIRE(out == terminal_safe(in, false), "round " << round);
    }
}
