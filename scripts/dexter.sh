#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds dexter (installing what the build needs first) and runs it with the given
# arguments, in the current directory: sessions go to ./.dexter/sessions unless
# --sessions-dir or DEXTER_SESSIONS_DIR says otherwise.
#   scripts/dexter.sh [dexter options...]      e.g. scripts/dexter.sh --list-sessions
set -euo pipefail
here=$(pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${BUILD_DIR:-build}
scripts/install-deps.sh >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDEXTER_SESSIONS_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target dexter >/dev/null
dexter=$(pwd)/$build/examples/dexter/dexter
cd "$here"
exec "$dexter" "$@"
