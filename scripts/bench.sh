#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds the benchmarks (Release) and prints the table of docs/PERFORMANCE.md, SQLite's
# column included (scripts/install-deps.sh --bench installs libsqlite3-dev for it).
#   scripts/bench.sh [tiny|full]    (default full: ~3 GB of scratch files, a few minutes)
# BENCH_DIR chooses where the scratch files go (default: a temporary directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
size=${1:-full}
build=${BUILD_DIR:-build-bench}
scripts/install-deps.sh --bench
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDEXTER_SESSIONS_BUILD_BENCHMARKS=ON -DDEXTER_SESSIONS_BUILD_EXAMPLES=ON \
    -DDEXTER_SESSIONS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target dexter_sessions_bench
args=(--size "$size")
if cmake --build "$build" --target dexter >/dev/null 2>&1; then
    args+=(--dexter "$build/examples/dexter/dexter")
fi
[[ -n "${BENCH_DIR:-}" ]] && args+=(--dir "$BENCH_DIR")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(df -hT . | awk 'NR==2 {print $2}') file system"
"$build/bench/dexter_sessions_bench" "${args[@]}"
