#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each one for SECONDS
# (default 60). Fails, loudly, on the first target that finds a crash, a leak, a
# timeout or an out-of-memory input.
#   scripts/fuzz.sh [seconds]
# Environment: BUILD_DIR (default: build-fuzz), FUZZ_TARGETS (default: all three),
# FUZZ_ARTIFACTS (where failing inputs are kept; default: $BUILD_DIR/artifacts).
#
# The repository's corpus fuzz/corpus/<target>/ is only read: libFuzzer writes the
# inputs it finds into a temporary working corpus, removed at the end.
# To reproduce a failure: $BUILD_DIR/fuzz/<target> <artifact file>
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
build_dir=${BUILD_DIR:-build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$build_dir/artifacts}
targets=${FUZZ_TARGETS:-jsonl_loader_fuzz index_loader_fuzz id_fuzz}

if ! command -v clang++ >/dev/null; then
    echo "fuzz.sh: clang++ is needed (libFuzzer); install clang" >&2
    exit 1
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DDEXTER_SESSIONS_BUILD_FUZZERS=ON \
    -DDEXTER_SESSIONS_BUILD_TESTS=OFF -DDEXTER_SESSIONS_BUILD_EXAMPLES=OFF \
    -DDEXTER_SESSIONS_BUILD_BENCHMARKS=OFF -DDEXTER_SESSIONS_INSTALL=OFF
# shellcheck disable=SC2086 # word splitting of the target list is intended
cmake --build "$build_dir" --target $targets

work=$(mktemp -d "${TMPDIR:-/tmp}/dexter-fuzz-corpus-XXXXXX")
trap 'rm -rf "$work"' EXIT

# A seed no small file can be: lines that straddle the loader's 64 KiB read chunk, one
# of them over the 64 KiB record limit the fuzzer uses.
seed_long_lines() {
    local long
    long=$(head -c 40000 /dev/zero | tr '\0' 'a')
    printf '{"type":"session","version":1,"id":"s0000001","created_at":"2026-01-01T00:00:00.000Z","title":"t"}\n'
    printf '{"type":"exchange","seq":1,"timestamp":"2026-01-01T00:00:01.000Z","query":"q","answer":"%s"}\n' "$long"
    printf '{"type":"exchange","seq":2,"timestamp":"2026-01-01T00:00:02.000Z","query":"q","answer":"%s"}\n' "$long"
    printf '{"type":"exchange","seq":3,"timestamp":"2026-01-01T00:00:03.000Z","query":"q","answer":"%s%s"}\n' "$long" "$long"
    printf '{"type":"exchange","seq":4,"timestamp":"2026-01-01T00:00:04.000Z","query":"q","answer":"a"}\n'
    printf '{"type":"exch'
}

# A smaller quarantine than the default 256 MB (freed memory is still held back long
# enough to catch a use after free within one input) and shorter allocation stacks:
# more runs per second.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32:malloc_context_size=8:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for target in $targets; do
    corpus="$work/$target"
    mkdir -p "$corpus" "$artifacts/$target"
    max_len=8192
    if [[ $target == jsonl_loader_fuzz ]]; then
        seed_long_lines >"$corpus/seed_long_lines.jsonl"
        max_len=200000
    fi
    echo "=== $target: ${seconds}s"
    mkdir -p "$work/tmp"
    set +e
    # TMPDIR: a fuzzer's scratch files go where the trap removes them, even after a crash.
    TMPDIR="$work/tmp" "$build_dir/fuzz/$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 \
        -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$target/" "$corpus" "fuzz/corpus/$target" \
        >"$work/$target.log" 2>&1
    status=$?
    set -e
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' \
        "$work/$target.log" || true
    echo "    new corpus entries: $(find "$corpus" -type f | wc -l)"
    if [[ $status -ne 0 ]]; then
        echo "!!! $target FAILED (exit $status); last lines of its log:" >&2
        tail -n 60 "$work/$target.log" >&2
        echo "!!! failing input(s) kept in $artifacts/$target/:" >&2
        ls -l "$artifacts/$target/" >&2 || true
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${targets// /, } (${seconds}s each)"
