// SPDX-License-Identifier: BSL-1.0
// The benchmark table's rows and the helpers every figure shares: medians of timed runs,
// formatting, and resetting the peak memory that /proc reports.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_of(clock_type::duration d) {
    return std::chrono::duration<double>(d).count();
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

template <class F>
double time_once(F&& f) {
    const auto start = clock_type::now();
    f();
    return seconds_of(clock_type::now() - start);
}

template <class F>
double time_median(std::size_t repeats, F&& f) {
    std::vector<double> t;
    for (std::size_t i = 0; i < repeats; ++i) {
        const auto start = clock_type::now();
        f();
        t.push_back(seconds_of(clock_type::now() - start));
    }
    return median(std::move(t));
}

/// One row of the printed table; `figure` is a number, then perhaps letters ("5m").
/// `sqlite` and `vs_sqlite` are the peer's figure and ours divided by it, when the row has
/// one (sqlite_peer.hpp).
struct row {
    row(std::string figure_, std::string what_, std::string ours_, std::string floor_,
        std::string ratio_, std::string target_, std::string verdict_)
        : figure(std::move(figure_)), what(std::move(what_)), ours(std::move(ours_)),
          floor(std::move(floor_)), ratio(std::move(ratio_)), target(std::move(target_)),
          verdict(std::move(verdict_)) {}

    std::string figure, what, ours, floor, ratio, target, verdict, sqlite, vs_sqlite;
};
inline std::vector<row> table;

/// True when row `a` is printed before row `b`: by figure number, then by what follows it.
inline bool figure_before(const row& a, const row& b) {
    const auto number = [](const std::string& f) { return std::strtoul(f.c_str(), nullptr, 10); };
    const auto na = number(a.figure), nb = number(b.figure);
    return na != nb ? na < nb : a.figure < b.figure;
}

/// `v` in `unit`; "s" chooses µs, ms or s.
inline std::string fmt(double v, const char* unit) {
    char b[64];
    if (std::strcmp(unit, "s") == 0) {
        if (v < 1e-3)
            std::snprintf(b, sizeof b, "%.1f µs", v * 1e6);
        else if (v < 1)
            std::snprintf(b, sizeof b, "%.2f ms", v * 1e3);
        else
            std::snprintf(b, sizeof b, "%.2f s", v);
    } else {
        std::snprintf(b, sizeof b, "%.1f %s", v, unit);
    }
    return b;
}

/// Adds a row whose result is ours / floor, met when at most `target`.
inline void add(std::string figure, std::string what, double ours, double floor, double target,
                const char* unit = "s", std::string floor_label = {}) {
    const double ratio = floor > 0 ? ours / floor : 0;
    char r[32], t[32];
    std::snprintf(r, sizeof r, "%.2f×", ratio);
    std::snprintf(t, sizeof t, "≤ %.2f×", target);
    table.push_back({std::move(figure), std::move(what), fmt(ours, unit),
                     floor_label.empty() ? fmt(floor, unit) : floor_label, r, t,
                     ratio <= target ? "met" : "MISSED"});
    std::cerr << "  " << table.back().figure << ": " << table.back().ours << " vs "
              << table.back().floor << " = " << r << "\n";
}

/// Gives the last row SQLite's figure `theirs` (in `unit`) beside our `ours`.
inline void with_sqlite(double ours, double theirs, const char* unit = "s") {
    char r[32];
    std::snprintf(r, sizeof r, "%.2f×", theirs > 0 ? ours / theirs : 0);
    table.back().sqlite = fmt(theirs, unit);
    table.back().vs_sqlite = r;
    std::cerr << "  " << table.back().figure << " SQLite: " << table.back().sqlite << ", ours " << r
              << "\n";
}

/// Says in the last row why it has no SQLite figure.
inline void without_sqlite(std::string why) {
    table.back().sqlite = std::move(why);
}

// --- peak memory -----------------------------------------------------------------------

/// A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or -1.
inline long status_kb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0)
            return std::atol(line.c_str() + std::strlen(field));
    return -1;
}

/// Resets this process's peak resident size (VmHWM, and ru_maxrss with it) to the
/// current one.
inline void reset_peak() {
    std::ofstream("/proc/self/clear_refs") << "5";
}

} // namespace bench
