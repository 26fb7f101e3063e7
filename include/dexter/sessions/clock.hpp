// SPDX-License-Identifier: BSL-1.0
// The clock policy, and a clock that tests set by hand.
#pragma once

#include <chrono>
#include <concepts>

namespace dexter::sessions {

/// The clock policy: `now()` giving a std::chrono::system_clock::time_point.
/// std::chrono::system_clock satisfies it as is. The manager uses the clock only for
/// timestamps: order and identity never depend on it. (Named clock_policy, not clock,
/// so that `using namespace dexter::sessions;` does not hide ::clock() from <ctime>.)
template <class C>
concept clock_policy = std::movable<C> && requires(C& c) {
    { c.now() } -> std::convertible_to<std::chrono::system_clock::time_point>;
};

#ifdef DEXTER_SESSIONS_CLOCK_CONCEPT_0_1
// The 0.1 name, for one release, on request only: declared by default it would keep
// the collision with ::clock() that the rename removes. A concept cannot carry
// [[deprecated]], so the request itself warns.
#pragma GCC warning "dexter::sessions::clock is deprecated and goes in 0.3: use clock_policy"
template <class C>
concept clock = clock_policy<C>;
#endif

/// A clock that stands still until told otherwise: set() jumps anywhere (backwards
/// too), advance() moves forward.
class manual_clock {
public:
    using time_point = std::chrono::system_clock::time_point;

    manual_clock() = default;
    explicit manual_clock(time_point start) : now_(start) {}

    time_point now() const noexcept { return now_; }
    void set(time_point t) noexcept { now_ = t; }
    void advance(std::chrono::system_clock::duration d) noexcept { now_ += d; }

private:
    // 2026-01-01T00:00:00Z: a fixed, recognisable start.
    time_point now_{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};
};

static_assert(clock_policy<std::chrono::system_clock>);
static_assert(clock_policy<manual_clock>);

} // namespace dexter::sessions
