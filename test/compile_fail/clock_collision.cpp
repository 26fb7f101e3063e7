// SPDX-License-Identifier: BSL-1.0
// A host that writes `using namespace dexter::sessions;` can still call ::clock() from
// <ctime> unqualified: no name of the library's collides with it (it did in 0.1, when
// the clock policy's concept was called `clock`). Must compile.
#include <dexter/sessions.hpp>
#include <dexter/sessions/jsonl_store.hpp>

#include <ctime>

using namespace dexter::sessions;

int main() {
    const std::clock_t started = clock();
    session_manager<memory_store> sessions;
    static_assert(clock_policy<manual_clock>);
    return clock() >= started && !sessions.current() ? 0 : 1;
}
