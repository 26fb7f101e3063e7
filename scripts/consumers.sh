#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds and runs the consumer projects of test/consumers/: each takes dexter-sessions in
# one of the usual ways, then runs test/consumers/host.cpp (the host integration of
# docs/EMBEDDING.md), which saves one exchange with the file store, resumes it and checks
# it; this script then checks the session file on disk.
#
#   embedding_doc     the host in docs/EMBEDDING.md is test/consumers/host.cpp, exactly
#   install           CMake and meson (top-level) install the same headers and the same
#                     dexter-sessions.pc; the CMake package, pkg-config and version.hpp
#                     agree on the version
#   find_package      (a) the CMake install, moved elsewhere after installing
#                     (relocatable), found with find_package(dexter_sessions 0.1
#                     REQUIRED COMPONENTS testing); the installed contract test runs too
#   add_subdirectory  (b) the source tree as a subdirectory: no tests, examples or
#                     install rules of its own
#   fetch_content     (c) FetchContent from a tarball of the source tree (file:// URL)
#   meson             (d) a meson subproject found by dependency('dexter-sessions')
#                     without fallback:, through the wrap's [provide] and the override;
#                     installs nothing of its own
#   makefile          (e) a plain Makefile with pkg-config --cflags --libs
#
#   scripts/consumers.sh [name...]      (default: all, in the order above)
# Environment: CONSUMERS_DIR (default: a new temporary directory, removed afterwards).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=$PWD
consumers=$src/test/consumers

scripts/install-deps.sh >/dev/null

if [[ -n ${CONSUMERS_DIR:-} ]]; then
    work=$CONSUMERS_DIR
    rm -rf "$work"
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/dexter-consumers.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
prefix=$work/prefix # the CMake install, after it has been moved here

version=$(sed -n -E 's/^#define DEXTER_SESSIONS_VERSION "([0-9.]+)"$/\1/p' \
    include/dexter/sessions/version.hpp)
[[ -n $version ]] || { echo "consumers: no DEXTER_SESSIONS_VERSION in version.hpp" >&2; exit 1; }

fail() {
    echo "FAILED: $*" >&2
    return 1
}

# Runs a consumer's host program on a new store and checks the session on disk: one
# session under cli/, whose history.jsonl holds the header and the one exchange.
run_host() {
    local exe=$1 store=$2 out id file
    out=$("$exe" "$store")
    echo "$out"
    [[ $out =~ ^resumed\ ([0-9a-z]{8}):\ You\ asked ]] || fail "unexpected output: $out"
    id=${BASH_REMATCH[1]}
    file=$store/cli/$id/history.jsonl
    [[ -f $file ]] || fail "no $file"
    [[ $(wc -l <"$file") -eq 2 ]] || fail "$file does not have 2 lines"
    grep -q '^{"type":"exchange","seq":1,.*"query":"What is a torn write?"' "$file" ||
        fail "$file does not hold the exchange"
    [[ $(find "$store/cli" -mindepth 1 -maxdepth 1 | wc -l) -eq 1 ]] ||
        fail "more than one session in $store/cli"
}

# A CMake consumer: configure, build, run the host program.
cmake_consumer() {
    local name=$1
    shift
    cmake -S "$consumers/$name" -B "$work/$name" -G Ninja "$@"
    cmake --build "$work/$name"
    run_host "$work/$name/host" "$work/$name-store"
}

# Installs nothing, or only what `expected` lists: checks what `cmake --install` or
# `meson install` put into a fresh directory.
installed_files() {
    (cd "$1" && find . -type f | sort)
}

consumer_embedding_doc() {
    # The first ```cpp block after the line naming host.cpp, against host.cpp from its
    # first #include on.
    diff <(awk '/^This is `test\/consumers\/host.cpp`/ { found = 1 }
                found && /^```/ { if (inside) exit; inside = 1; next }
                inside' docs/EMBEDDING.md) \
        <(sed -n '/^#include/,$p' "$consumers/host.cpp") ||
        fail "docs/EMBEDDING.md does not show test/consumers/host.cpp as it is"
    echo "docs/EMBEDDING.md shows test/consumers/host.cpp as it is"
}

consumer_install() {
    # CMake: install into a staging prefix, then move it, so that every consumer below
    # uses an install that was relocated after installing.
    cmake -S "$src" -B "$work/install-cmake" -G Ninja -DDEXTER_SESSIONS_BUILD_TESTS=OFF \
        -DDEXTER_SESSIONS_BUILD_EXAMPLES=OFF
    cmake --install "$work/install-cmake" --prefix "$work/stage"
    mv "$work/stage" "$prefix"

    # meson, top-level: installs headers and the .pc file without building anything.
    meson setup "$work/install-meson" "$src" --prefix "$work/meson-prefix" -Dtests=false
    meson install -C "$work/install-meson" --no-rebuild

    diff <(cd "$prefix/include" && find . | sort) \
        <(cd "$work/meson-prefix/include" && find . | sort) ||
        fail "CMake and meson install different headers"
    diff -r "$src/include" "$prefix/include" || fail "the installed headers differ"
    [[ -f $prefix/include/dexter/sessions/testing/storage_contract.hpp ]] ||
        fail "the testing headers are not installed"
    diff "$prefix/share/pkgconfig/dexter-sessions.pc" \
        "$work/meson-prefix/share/pkgconfig/dexter-sessions.pc" ||
        fail "CMake and meson install different dexter-sessions.pc files"
    for f in dexter_sessionsConfig dexter_sessionsConfigVersion dexter_sessionsTargets \
        dexter_sessionsTestingTargets; do
        [[ -f $prefix/share/cmake/dexter_sessions/$f.cmake ]] || fail "no $f.cmake"
    done

    local pc_version cmake_version
    pc_version=$(PKG_CONFIG_PATH=$prefix/share/pkgconfig pkg-config --modversion dexter-sessions)
    cmake_version=$(sed -n -E 's/^set\(PACKAGE_VERSION "([0-9.]+)"\)$/\1/p' \
        "$prefix/share/cmake/dexter_sessions/dexter_sessionsConfigVersion.cmake")
    echo "version.hpp: $version, pkg-config: $pc_version, CMake package: $cmake_version," \
        "meson: $(meson introspect --projectinfo "$work/install-meson" |
            sed -n -E 's/.*"version": "([^"]+)".*/\1/p')"
    [[ $pc_version == "$version" && $cmake_version == "$version" ]] ||
        fail "the versions differ"
    grep -q "\"version\": \"$version\"" <(meson introspect --projectinfo "$work/install-meson") ||
        fail "meson's project version is not $version"
}

consumer_find_package() {
    [[ -d $prefix ]] || consumer_install
    cmake_consumer find_package -DCMAKE_PREFIX_PATH="$prefix"
    grep -q "dexter_sessions_DIR:PATH=$prefix/share/cmake/dexter_sessions" \
        "$work/find_package/CMakeCache.txt" || fail "find_package did not use $prefix"
    "$work/find_package/contract_test"
}

consumer_add_subdirectory() {
    cmake_consumer add_subdirectory -DDEXTER_SESSIONS_SOURCE_DIR="$src"
    cmake --install "$work/add_subdirectory" --prefix "$work/add_subdirectory-installed"
    [[ -z $(installed_files "$work/add_subdirectory-installed" 2>/dev/null) ]] ||
        fail "dexter-sessions installed files as a subdirectory"
}

consumer_fetch_content() {
    # A tarball of the source tree as a release would be: one top directory, no build
    # directories, no .git.
    local top=dexter-sessions-$version tarball=$work/dexter-sessions-$version.tar.gz
    tar -C "$src" --exclude-vcs --exclude='./build' --exclude='./build-*' \
        --exclude='./builddir' --exclude='./builddir-*' --transform "s,^\.,$top," \
        -czf "$tarball" .
    cmake_consumer fetch_content -DDEXTER_SESSIONS_URL="file://$tarball" \
        -DDEXTER_SESSIONS_SHA256="$(sha256sum "$tarball" | cut -d' ' -f1)"
    cmake --install "$work/fetch_content" --prefix "$work/fetch_content-installed"
    [[ -z $(installed_files "$work/fetch_content-installed" 2>/dev/null) ]] ||
        fail "dexter-sessions installed files when fetched"
}

consumer_meson() {
    # A copy of the consumers, with the source tree linked in as the wrap's directory.
    local copy=$work/meson-consumers dir log=$work/meson-setup.log
    rm -rf "$copy"
    cp -r "$consumers" "$copy"
    dir=$(sed -n -E 's/^directory = (.+)$/\1/p' "$copy/meson/subprojects/dexter_sessions.wrap")
    ln -s "$src" "$copy/meson/subprojects/$dir"
    # No PKG_CONFIG_PATH: an installed dexter-sessions.pc must not be what is found.
    env -u PKG_CONFIG_PATH meson setup "$work/meson" "$copy/meson" --prefix /usr | tee "$log"
    grep -q "^Dependency dexter-sessions found: YES $version (overridden)" "$log" ||
        fail "dependency('dexter-sessions') was not resolved by the subproject's override"
    meson compile -C "$work/meson"
    run_host "$work/meson/host" "$work/meson-store"
    meson install -C "$work/meson" --no-rebuild --destdir "$work/meson-installed"
    [[ $(installed_files "$work/meson-installed") == "./usr/bin/host" ]] ||
        fail "as a subproject, dexter-sessions installed files: $(installed_files "$work/meson-installed")"
}

consumer_makefile() {
    [[ -d $prefix ]] || consumer_install
    mkdir -p "$work/makefile"
    PKG_CONFIG_PATH=$prefix/share/pkgconfig make -C "$consumers/makefile" OUT="$work/makefile"
    run_host "$work/makefile/host" "$work/makefile-store"
}

all=(embedding_doc install find_package add_subdirectory fetch_content meson makefile)
selected=("$@")
((${#selected[@]})) || selected=("${all[@]}")

passed=0 failed=0 failures=()
for name in "${selected[@]}"; do
    printf '\n---------- consumer: %s ----------\n' "$name"
    if ! declare -F "consumer_$name" >/dev/null; then
        echo "unknown consumer '$name' (there are: ${all[*]})" >&2
        exit 2
    fi
    # A subshell with errexit of its own: `if`, `||` or `&&` around it would turn it off.
    set +e
    (
        set -euo pipefail
        "consumer_$name"
    ) >"$work/$name.log" 2>&1
    rc=$?
    set -e
    if ((rc == 0)); then
        tail -n 3 "$work/$name.log"
        echo "PASSED: $name"
        passed=$((passed + 1))
    else
        tail -n 60 "$work/$name.log"
        echo "FAILED: $name (exit $rc; log above)"
        failed=$((failed + 1))
        failures+=("$name")
    fi
done

echo
echo "consumers: $passed passed, $failed failed"
((failed == 0)) || { echo "failed: ${failures[*]}" >&2; exit 1; }
