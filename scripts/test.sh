#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Configures, builds and tests dexter-sessions with CMake.
#   scripts/test.sh [extra cmake args...]
# Builds in Release (as scripts/dexter.sh does, so the two share build/ without
# rebuilding); a later -DCMAKE_BUILD_TYPE=... among the arguments wins.
# Environment: BUILD_DIR (default: build), CTEST_JOBS (default: 2).
# Example: BUILD_DIR=build-asan scripts/test.sh -DDEXTER_SESSIONS_SANITIZE=ON \
#              -DCMAKE_CXX_COMPILER=clang++
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDEXTER_SESSIONS_BUILD_TESTS=ON "$@"
cmake --build "$build_dir"
cmake --build "$build_dir" --target all_verify_interface_header_sets
ctest --test-dir "$build_dir" --output-on-failure -j"${CTEST_JOBS:-2}"
