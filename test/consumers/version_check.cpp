// SPDX-License-Identifier: BSL-1.0
// Compiles only if the version the consumer's build system found for dexter-sessions
// (the CMake package version, pkg-config --modversion, meson's dependency version),
// passed in as DEXTER_SESSIONS_EXPECTED_VERSION, is DEXTER_SESSIONS_VERSION.
#include <dexter/sessions/version.hpp>

#include <string_view>

#ifndef DEXTER_SESSIONS_EXPECTED_VERSION
#error "define DEXTER_SESSIONS_EXPECTED_VERSION to the version the build system found"
#endif

static_assert(std::string_view{DEXTER_SESSIONS_VERSION} == DEXTER_SESSIONS_EXPECTED_VERSION,
              "the build system's dexter-sessions version differs from DEXTER_SESSIONS_VERSION");
