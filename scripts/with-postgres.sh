#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Runs CMD against a throwaway PostgreSQL server, then removes the server.
#   scripts/with-postgres.sh CMD [ARGS...]
#
# Creates a cluster with initdb in a new temporary directory, owned by an unprivileged
# user (as root: the `postgres` system user that Debian's package creates, else
# `nobody`; otherwise the calling user), starts it on a Unix socket in that directory
# and on a free loopback TCP port, creates a role and a database for the tests, runs
# CMD with these variables exported, and always stops the server and removes the
# directory, whatever CMD does. Exits with CMD's status; fails loudly (non-zero, with
# the server log) if the server cannot be set up.
#
#   DEXTER_TEST_PG          postgresql://dexter_test:PASSWORD@127.0.0.1:PORT/dexter_test
#                           (TCP, password checked with scram-sha-256)
#   DEXTER_TEST_PG_SOCKET   the same database over the Unix socket (trust)
#   DEXTER_TEST_PG_SERVER   127.0.0.1:PORT/dexter_test (how errors name the server)
#   DEXTER_TEST_PG_PASSWORD the role's password (tests check it is never printed)
#   DEXTER_TEST_PG_CTL      a shell command prefix running pg_ctl on this cluster as
#                           its owner: "$DEXTER_TEST_PG_CTL restart -m fast",
#                           "... stop -m immediate", "... start"
#   DEXTER_TEST_PG_DATA     the data directory
#   PGHOST PGPORT PGUSER PGDATABASE   for psql and friends (the socket)
#
# The PostgreSQL server binaries are looked up in $PG_BINDIR, then in the newest
# /usr/lib/postgresql/*/bin (Debian), then on PATH.
set -euo pipefail

if (($# == 0)); then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

die() {
    echo "with-postgres: $*" >&2
    exit 1
}

# --- the server binaries ------------------------------------------------------
bindir=${PG_BINDIR:-}
if [[ -z $bindir ]]; then
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            bindir=$dir
            break
        fi
    done
fi
if [[ -z $bindir ]] && command -v initdb >/dev/null 2>&1; then
    bindir=$(dirname "$(command -v initdb)")
fi
[[ -n $bindir && -x $bindir/initdb && -x $bindir/pg_ctl ]] ||
    die "no PostgreSQL server found (initdb, pg_ctl); install it (Debian: scripts/install-deps.sh --postgres) or set PG_BINDIR"
psql=$bindir/psql
[[ -x $psql ]] || psql=$(command -v psql) || die "psql not found"

# --- who runs the server --------------------------------------------------------
as_owner=()
if ((EUID == 0)); then
    owner=postgres
    id -u "$owner" >/dev/null 2>&1 || owner=nobody
    id -u "$owner" >/dev/null 2>&1 || die "neither user postgres nor nobody exists"
    if command -v runuser >/dev/null 2>&1; then
        as_owner=(runuser -u "$owner" --)
    else
        as_owner=(setpriv --reuid="$owner" --regid="$(id -g "$owner")" --clear-groups --)
    fi
else
    owner=$(id -un)
fi

# --- the cluster ------------------------------------------------------------------
base=$(mktemp -d "${TMPDIR:-/tmp}/dexter-pg.XXXXXX")
data=$base/data
log=$base/server.log
started=0

cleanup() {
    local rc=$?
    if ((started)); then
        # Immediate: the cluster is thrown away, nothing needs to be flushed.
        (cd "$base" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop) \
            >/dev/null 2>&1 || true
        # A server that a test left stopped is fine; one still running is killed.
        if [[ -f $data/postmaster.pid ]]; then
            pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
            [[ $pid =~ ^[0-9]+$ ]] && kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$base"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    if [[ -f $log ]]; then
        echo "with-postgres: server log ($log):" >&2
        tail -n 40 "$log" >&2 || true
    fi
}

chmod 700 "$base"
[[ $owner == "$(id -un)" ]] || chown "$owner:" "$base"

password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
admin=dexter_admin
(cd "$base" && "${as_owner[@]}" "$bindir/initdb" -D "$data" -U "$admin" --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 --no-instructions) >"$base/initdb.log" 2>&1 ||
    { cat "$base/initdb.log" >&2; die "initdb failed"; }

# The Unix socket trusts everyone who can reach the 0700 directory; TCP on loopback
# wants the password, so that the tests use a real password over a real connection.
cat >"$data/pg_hba.conf" <<EOF
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
EOF

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

port=
for attempt in 1 2 3 4 5; do
    port=$(free_port) || die "no free TCP port found"
    cat >>"$data/postgresql.conf" <<EOF
# with-postgres.sh (attempt $attempt)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
password_encryption = 'scram-sha-256'
max_connections = 100
fsync = on
synchronous_commit = on
EOF
    if (cd "$base" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start) \
        >/dev/null 2>&1; then
        started=1
        break
    fi
    # Someone took the port between the check and the start: try another one.
    if ! grep -q "could not bind" "$log" 2>/dev/null; then
        show_log
        die "the server did not start"
    fi
    port=
done
[[ -n $port ]] || { show_log; die "the server did not start (no usable port)"; }

db=dexter_test
role=dexter_test
"$psql" -X -q -v ON_ERROR_STOP=1 -h "$base" -p "$port" -U "$admin" -d postgres <<EOF ||
CREATE ROLE $role LOGIN PASSWORD '$password';
CREATE DATABASE $db OWNER $role;
EOF
    { show_log; die "could not create the test role and database"; }

export DEXTER_TEST_PG="postgresql://$role:$password@127.0.0.1:$port/$db"
export DEXTER_TEST_PG_SOCKET="postgresql:///$db?host=$base&port=$port&user=$role"
export DEXTER_TEST_PG_SERVER="127.0.0.1:$port/$db"
export DEXTER_TEST_PG_PASSWORD="$password"
export DEXTER_TEST_PG_DATA="$data"
# From the cluster's directory: the owner may not be allowed into the caller's.
DEXTER_TEST_PG_CTL="cd $(printf '%q' "$base") && $(printf '%q ' "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60)"
export DEXTER_TEST_PG_CTL
export PGHOST="$base" PGPORT="$port" PGUSER="$role" PGDATABASE="$db"

echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') as $owner," \
    "socket $base, 127.0.0.1:$port, database $db" >&2

set +e
"$@"
rc=$?
set -e
if ((rc != 0)); then
    show_log
fi
exit "$rc"
