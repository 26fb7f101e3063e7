// SPDX-License-Identifier: BSL-1.0
// clock.hpp: the clock concept and manual_clock.
#include <dexter/sessions/clock.hpp>

#define BOOST_TEST_MODULE clock
#include <boost/test/unit_test.hpp>

#include <chrono>

namespace ds = dexter::sessions;
using namespace std::chrono_literals;
using sys_tp = std::chrono::system_clock::time_point;

namespace {

struct now_returns_int {
    int now() const { return 0; }
};

struct no_now {};

struct now_returns_steady_time {
    std::chrono::steady_clock::time_point now() const { return {}; }
};

struct now_returns_system_time {
    sys_tp now() const { return {}; }
};

struct immovable_clock {
    immovable_clock() = default;
    immovable_clock(immovable_clock&&) = delete;
    sys_tp now() const { return {}; }
};

sys_tp at(int y, unsigned m, unsigned d) {
    return sys_tp{std::chrono::sys_days{std::chrono::year{y} / m / d}};
}

/// Nanoseconds since the epoch (Boost.Test cannot print time points).
long long ns(sys_tp t) {
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

} // namespace

BOOST_AUTO_TEST_CASE(concept_accepts_clocks_and_rejects_the_rest) {
    static_assert(ds::clock_policy<std::chrono::system_clock>);
    static_assert(ds::clock_policy<ds::manual_clock>);
    static_assert(ds::clock_policy<now_returns_system_time>);
    static_assert(!ds::clock_policy<int>);
    static_assert(!ds::clock_policy<now_returns_int>);
    static_assert(!ds::clock_policy<no_now>);
    static_assert(!ds::clock_policy<now_returns_steady_time>);
    static_assert(!ds::clock_policy<immovable_clock>);
    // Also checked at run time, so that the suite reports it.
    BOOST_TEST(ds::clock_policy<ds::manual_clock>);
    BOOST_TEST(!ds::clock_policy<now_returns_int>);
}

BOOST_AUTO_TEST_CASE(manual_clock_starts_at_2026_and_stands_still) {
    ds::manual_clock c;
    BOOST_TEST(ns(c.now()) == ns(at(2026, 1, 1)));
    BOOST_TEST(ns(c.now()) == ns(c.now()));
    const ds::manual_clock started(at(1999, 12, 31));
    BOOST_TEST(ns(started.now()) == ns(at(1999, 12, 31)));
}

BOOST_AUTO_TEST_CASE(manual_clock_set_jumps_anywhere) {
    ds::manual_clock c;
    const sys_tp targets[] = {at(2030, 6, 15) + 123456789ns, at(1970, 1, 1), at(2100, 1, 1),
                              at(1969, 12, 31) + 1ns, at(2026, 1, 1) - 1ns};
    for (const sys_tp t : targets) {
        c.set(t); // forwards and backwards alike
        BOOST_TEST(ns(c.now()) == ns(t));
    }
}

BOOST_AUTO_TEST_CASE(manual_clock_advance_moves_forward_by_exactly_d) {
    ds::manual_clock c(at(2026, 1, 1));
    c.advance(1ms);
    BOOST_TEST(ns(c.now()) == ns(at(2026, 1, 1) + 1ms));
    c.advance(1ns);
    BOOST_TEST(ns(c.now()) == ns(at(2026, 1, 1) + 1ms + 1ns));
    c.advance(24h * 366);
    BOOST_TEST(ns(c.now()) == ns(at(2027, 1, 2) + 1ms + 1ns));
    c.advance(0ns);
    BOOST_TEST(ns(c.now()) == ns(at(2027, 1, 2) + 1ms + 1ns));
    c.set(at(1970, 1, 1));
    c.advance(1s);
    BOOST_TEST(ns(c.now()) == ns(at(1970, 1, 1) + 1s));
}

BOOST_AUTO_TEST_CASE(copies_are_independent) {
    ds::manual_clock a(at(2026, 1, 1));
    ds::manual_clock b = a;
    a.advance(1h);
    BOOST_TEST(ns(b.now()) == ns(at(2026, 1, 1)));
    BOOST_TEST(ns(a.now()) == ns(at(2026, 1, 1) + 1h));
}
