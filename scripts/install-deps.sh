#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs the Debian packages dexter-sessions needs, skipping those present.
#   scripts/install-deps.sh             the build: Boost, compilers, build tools; curl and
#                                       jq (examples/dexter/agents/openai_chat.sh and
#                                       test/openai_agent_test.cpp, which runs it);
#                                       libedit-dev (dexter's line editing; BSD licence)
#   scripts/install-deps.sh --postgres  also libpq-dev (postgres_store.hpp) and the
#                                       postgresql server (scripts/with-postgres.sh)
#   scripts/install-deps.sh --bench     also libsqlite3-dev: SQLite, the benchmarks' peer
#                                       (scripts/bench.sh; the library never needs it)
# Boost 1.81's -dev packages conflict with other Boost -dev versions (e.g. the
# default 1.74 ones); if apt would remove anything, this script stops unless
# DEXTER_ALLOW_APT_REMOVALS=1 is set.
set -euo pipefail

packages=(
    libboost-json1.81-dev
    libboost-program-options1.81-dev
    libboost-test1.81-dev
    meson
    ninja-build
    cmake
    g++
    make
    pkg-config
    curl
    jq
    libedit-dev
)

for arg in "$@"; do
    case $arg in
    --postgres) packages+=(libpq-dev postgresql) ;;
    --bench) packages+=(libsqlite3-dev) ;;
    *)
        echo "usage: $0 [--postgres] [--bench]" >&2
        exit 2
        ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; install these yourself: ${packages[*]}" >&2
    exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all dependencies present"
    exit 0
fi

sudo=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update

mapfile -t removals < <(apt-get install -s --no-install-recommends "${missing[@]}" |
    awk '/^Remv /{print $2}')
if ((${#removals[@]} > 0)) && [[ ${DEXTER_ALLOW_APT_REMOVALS:-0} != 1 ]]; then
    echo "install-deps: installing would remove these conflicting packages:" >&2
    printf '    %s\n' "${removals[@]}" >&2
    echo "install-deps: re-run with DEXTER_ALLOW_APT_REMOVALS=1 to accept that." >&2
    exit 1
fi

"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
