// SPDX-License-Identifier: BSL-1.0
// Must compile: the positive control of not_a_seam.cpp (a seam derived from posix_ops).
#define DEXTER_SESSIONS_POSITIVE_CONTROL
#include "not_a_seam.cpp"
