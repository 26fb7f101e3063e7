// SPDX-License-Identifier: BSL-1.0
// The library's version, defined once. CMake and meson read it from here.
#pragma once

#define DEXTER_SESSIONS_VERSION_MAJOR 0
#define DEXTER_SESSIONS_VERSION_MINOR 1
#define DEXTER_SESSIONS_VERSION_PATCH 0
/// "major.minor.patch" as a string literal.
#define DEXTER_SESSIONS_VERSION "0.1.0"
