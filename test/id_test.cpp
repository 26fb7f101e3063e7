// SPDX-License-Identifier: BSL-1.0
// id.hpp: the id rules, validation errors, nanoid_generator and sequential_ids.
#include <dexter/sessions/id.hpp>

#define BOOST_TEST_MODULE id
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include "support/printable.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <iomanip>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ds = dexter::sessions;
using ds::test::bytes;
using ds::test::show;

namespace {

bool in_alphabet(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

struct id_case {
    std::string name;
    std::string text;
};

std::ostream& operator<<(std::ostream& os, const id_case& c) {
    return os << c.name << " (" << show(c.text, 80) << ")";
}

std::vector<id_case> invalid_ids() {
    return {
        {"path traversal", "../../etc/passwd"},
        {"dot dot", ".."},
        {"dot dot padded to 8", "../ab/cd"},
        {"absolute path", "/abs"},
        {"8 characters with a slash", "abcd/efg"},
        {"a/b", "a/b"},
        {"empty", ""},
        {"9 characters", "abcdefghi"},
        {"7 characters", "abcdefg"},
        {"upper case", "ABCDEFGH"},
        {"one upper-case letter", "abcdefgH"},
        {"option -rf", "-rf"},
        {"option --help", "--help"},
        {"8-character option", "--abcdef"},
        {"underscore", "abcd_efg"},
        {"dash", "abcd-efg"},
        {"space", "abcd efg"},
        {"trailing newline", "abcdefg\n"},
        {"embedded NUL", bytes("abcd\0efg")},
        {"8 NULs", std::string(8, '\0')},
        {"10 KB", std::string(10 * 1024, 'a')},
        {"unicode, 8 bytes", "abcdef\xC3\xA9"},
        {"unicode, 8 characters",
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"},
        {"emoji", "\xF0\x9F\x98\x80\xF0\x9F\x98\x80"},
        {"escape sequence", "\x1b[31mred"},
        {"quote", "abc'defg"},
        {"backslash", "abc\\defg"},
    };
}

} // namespace

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(valid_ids) {
    for (std::string_view id : {"00000000", "zzzzzzzz", "a1b2c3d4", "s0000001", "0123abcd"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(ds::is_valid_session_id(id));
            BOOST_CHECK_NO_THROW(ds::validate_session_id(id));
            BOOST_TEST(ds::is_valid_session_id_prefix(id)); // a full id is its own prefix
        }
    }
    static_assert(ds::is_valid_session_id("abcd1234"));
    static_assert(!ds::is_valid_session_id("abcd123"));
}

BOOST_AUTO_TEST_CASE(every_alphabet_character_and_no_other_is_allowed) {
    for (int c = 0; c < 256; ++c) {
        const std::string id(8, static_cast<char>(c));
        BOOST_TEST_CONTEXT("byte " << c) {
            BOOST_TEST(ds::is_valid_session_id(id) == in_alphabet(static_cast<char>(c)));
            BOOST_TEST(ds::is_valid_session_id_prefix(id.substr(0, 3)) ==
                       in_alphabet(static_cast<char>(c)));
        }
    }
    BOOST_TEST(ds::session_id_alphabet.size() == 36u);
    for (char c : ds::session_id_alphabet)
        BOOST_TEST(in_alphabet(c));
}

BOOST_DATA_TEST_CASE(invalid_ids_are_rejected, boost::unit_test::data::make(invalid_ids()), c) {
    BOOST_TEST(!ds::is_valid_session_id(c.text));
    BOOST_CHECK_EXCEPTION(
        ds::validate_session_id(c.text), ds::invalid_session_id,
        [&](const ds::invalid_session_id& e) {
            BOOST_TEST(e.value() == c.text, "value() must be the input exactly");
            BOOST_TEST(e.value().size() == c.text.size());
            const std::string what = e.what();
            // No raw control byte, no non-ASCII byte: the message cannot forge output.
            for (unsigned char b : what)
                BOOST_TEST_REQUIRE((b >= 0x20 && b < 0x7f));
            // Shortened: a 10 KB value does not make a 10 KB message.
            BOOST_TEST(what.size() < 400u);
            // The value, or its first 64 characters, shows when it is plain text.
            const bool plain = std::all_of(c.text.begin(), c.text.end(), [](char ch) {
                return ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\';
            });
            if (plain) {
                BOOST_TEST(what.find(c.text.substr(0, 64)) != std::string::npos, what);
                if (c.text.size() > 64)
                    BOOST_TEST(what.find(c.text.substr(0, 65)) == std::string::npos, what);
            }
            return true;
        });
    // The whole hierarchy: invalid_session_id is one of ours.
    BOOST_CHECK_THROW(ds::validate_session_id(c.text), ds::error);
}

BOOST_AUTO_TEST_CASE(embedded_nul_is_escaped_not_dropped) {
    const std::string id = bytes("abcd\0efg");
    try {
        ds::validate_session_id(id);
        BOOST_FAIL("validate_session_id accepted an id with a NUL");
    } catch (const ds::invalid_session_id& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find('\0') == std::string::npos);
        // Both halves are shown, with something standing for the NUL between them.
        const auto a = what.find("abcd");
        const auto b = what.find("efg");
        BOOST_TEST_REQUIRE(a != std::string::npos);
        BOOST_TEST_REQUIRE(b != std::string::npos);
        BOOST_TEST(b > a + 4, what);
    }
}

BOOST_AUTO_TEST_CASE(prefixes) {
    for (std::string_view p : {"a", "s0", "s000", "abcdefg", "abcdefgh", "0"})
        BOOST_TEST_CONTEXT(p) {
            BOOST_TEST(ds::is_valid_session_id_prefix(p));
        }
    const std::vector<std::string> bad = {"",  "abcdefghi",    "S000", "s-00",  "s/00",    "..",
                                          "-", bytes("ab\0c"), " s00", "s00\n", "\xC3\xA9"};
    for (const auto& p : bad)
        BOOST_TEST_CONTEXT(show(p, 80)) {
            BOOST_TEST(!ds::is_valid_session_id_prefix(p));
        }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(generators)

BOOST_AUTO_TEST_CASE(nanoid_ids_are_valid_unique_and_uniform) {
    constexpr std::size_t n_ids = 100'000;
    constexpr std::size_t len = 8;
    constexpr std::size_t n_chars = n_ids * len; // 800 000
    constexpr std::size_t alphabet = 36;

    ds::nanoid_generator gen;
    std::unordered_set<std::string> seen;
    seen.reserve(n_ids);
    std::array<std::size_t, 256> count{};
    std::array<std::array<std::size_t, 256>, len> count_at{};
    std::size_t invalid = 0, duplicates = 0;
    for (std::size_t i = 0; i < n_ids; ++i) {
        const ds::session_id id = gen();
        if (id.size() != len || !ds::is_valid_session_id(id)) {
            if (++invalid < 5)
                BOOST_TEST_MESSAGE("invalid id: " << show(id, 80));
            continue;
        }
        if (!seen.insert(id).second)
            ++duplicates;
        for (std::size_t k = 0; k < len; ++k) {
            const auto c = static_cast<unsigned char>(id[k]);
            ++count[c];
            ++count_at[k][c];
        }
    }
    BOOST_TEST_REQUIRE(invalid == 0u);

    // Collisions. 36^8 = 2.82e12 ids; among n = 1e5 random ids the expected number of
    // colliding pairs is lambda = n^2 / (2 * 36^8) = 1.8e-3, so "no collision at all"
    // would fail about once in 560 runs of a correct generator. P(>= 6 colliding pairs)
    // ~ lambda^6 / 6! = 4e-20, which never happens; a generator with too little entropy
    // (say 2^24 distinct ids, lambda ~ 300) fails at once.
    BOOST_TEST(duplicates <= 5u);

    // Every character appears, and none is far from the mean. Each character count is
    // Binomial(N = 800 000, p = 1/36), mean mu = 22 222, sd = 147. The Chernoff bound
    // P(|X - mu| >= d mu) <= 2 exp(-d^2 mu / 3) with d = 0.25 gives 2 exp(-463) ~ 1e-201;
    // over 36 characters still < 1e-199. A modulo-biased generator (v % 36 of a byte:
    // characters 0..3 drawn 8/256 vs 7/256) is 14% off and still passes, but one that
    // skips characters or favours some by 25% or more fails.
    const double mean = static_cast<double>(n_chars) / alphabet;
    for (char c : ds::session_id_alphabet) {
        const auto k = count[static_cast<unsigned char>(c)];
        BOOST_TEST_CONTEXT("character '" << c << "' count " << k << ", mean " << mean) {
            BOOST_TEST(k > 0u);
            BOOST_TEST(static_cast<double>(k) > 0.75 * mean);
            BOOST_TEST(static_cast<double>(k) < 1.25 * mean);
        }
    }
    // Per position: N = 100 000 per position, mu = 2 778, sd = 52. d = 0.25 gives
    // 2 exp(-0.0625 * 2778 / 3) = 2 exp(-57.9) ~ 1.4e-25 per (position, character);
    // over 8 * 36 = 288 of them < 1e-22.
    const double mean_at = static_cast<double>(n_ids) / alphabet;
    std::size_t off = 0;
    for (std::size_t k = 0; k < len; ++k)
        for (char c : ds::session_id_alphabet) {
            const double got = static_cast<double>(count_at[k][static_cast<unsigned char>(c)]);
            if (got <= 0.75 * mean_at || got >= 1.25 * mean_at) {
                ++off;
                BOOST_TEST_MESSAGE("position " << k << " character '" << c << "': " << got);
            }
        }
    BOOST_TEST(off == 0u);
}

BOOST_AUTO_TEST_CASE(nanoid_generators_are_independent) {
    // Two generators (and copies) must not replay the same sequence: the chance that two
    // random ids are equal is 36^-8 = 3.5e-13.
    ds::nanoid_generator a, b;
    BOOST_TEST(a() != b());
    // A copy (or a move) of a generator that has already drawn must not hand out the
    // ids the original will hand out next.
    ds::nanoid_generator c = a;
    BOOST_TEST(a() != c());
    ds::nanoid_generator d;
    d = a;
    BOOST_TEST(a() != d());
    ds::nanoid_generator e = std::move(d);
    BOOST_TEST(d() != e()); // the moved-from generator stays usable, and different
    BOOST_TEST(ds::is_valid_session_id(e()));
}

namespace {

/// "s" followed by `n` in 7 decimal digits, zero-padded.
std::string expected_sequential(unsigned n) {
    std::ostringstream os;
    os << 's' << std::setw(7) << std::setfill('0') << n;
    return os.str();
}

} // namespace

BOOST_AUTO_TEST_CASE(sequential_ids_count_from_one) {
    ds::sequential_ids gen;
    BOOST_TEST(gen() == "s0000001");
    BOOST_TEST(gen() == "s0000002");
    BOOST_TEST(gen() == "s0000003");
    for (unsigned n = 4; n <= 2000; ++n) {
        const auto id = gen();
        BOOST_TEST_REQUIRE(id == expected_sequential(n));
        BOOST_TEST_REQUIRE(ds::is_valid_session_id(id));
    }
}

BOOST_AUTO_TEST_CASE(sequential_ids_start_anywhere_and_copies_are_independent) {
    ds::sequential_ids gen(1234567);
    BOOST_TEST(gen() == "s1234567");
    ds::sequential_ids copy = gen;
    BOOST_TEST(gen() == "s1234568");
    BOOST_TEST(gen() == "s1234569");
    BOOST_TEST(copy() == "s1234568"); // continues from where it was copied
    ds::sequential_ids last(9999999);
    const auto id = last();
    BOOST_TEST(id == "s9999999");
    BOOST_TEST(ds::is_valid_session_id(id));
    BOOST_TEST(ds::is_valid_session_id(last())); // whatever comes after is still valid
}

BOOST_AUTO_TEST_CASE(generators_satisfy_the_concept) {
    static_assert(ds::id_generator<ds::nanoid_generator>);
    static_assert(ds::id_generator<ds::sequential_ids>);
    static_assert(!ds::id_generator<int>);
    struct returns_int {
        int operator()() { return 1; }
    };
    static_assert(!ds::id_generator<returns_int>);
    BOOST_TEST(ds::session_id_length == 8u);
}

BOOST_AUTO_TEST_SUITE_END()
