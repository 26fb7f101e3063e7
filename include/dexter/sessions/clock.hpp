// SPDX-License-Identifier: BSL-1.0
// The clock policy, and a clock that tests set by hand.
#pragma once

#include <chrono>
#include <concepts>

namespace dexter::sessions {

/// A clock has `now()` giving a std::chrono::system_clock::time_point.
/// std::chrono::system_clock satisfies it as is. The manager uses the clock only for
/// timestamps: order and identity never depend on it.
template <class C>
concept clock = std::movable<C> && requires(C& c) {
    { c.now() } -> std::convertible_to<std::chrono::system_clock::time_point>;
};

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

static_assert(clock<std::chrono::system_clock>);
static_assert(clock<manual_clock>);

} // namespace dexter::sessions
