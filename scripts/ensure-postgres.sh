#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, postgres) exist for the test suite.
#
# The tests start their own throwaway server on a free port (tests/support/postgres.py);
# they only need the binaries, never the system cluster. So this script installs Debian's
# `postgresql` package when needed and keeps the package from starting its service.
set -euo pipefail

find_initdb() {
    local candidate
    for candidate in /usr/lib/postgresql/*/bin/initdb; do
        if [[ -x "$candidate" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    command -v initdb || return 1
}

if existing="$(find_initdb)"; then
    echo "ensure-postgres: PostgreSQL server binaries already installed ($(dirname "$existing"))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: no initdb found and no apt-get to install it;" \
        "install the PostgreSQL server binaries by hand" >&2
    exit 1
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "ensure-postgres: no initdb found; need root or sudo to apt-get install postgresql" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

# policy-rc.d answering 101 tells the package scripts not to start services, so the
# package's own cluster is created at most but never started. Keep an existing one
# (Docker images ship it) and remove only the one made here.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null

if ! installed="$(find_initdb)"; then
    echo "ensure-postgres: apt-get installed postgresql but initdb is still missing" >&2
    exit 1
fi
echo "ensure-postgres: installed PostgreSQL server binaries via apt ($(dirname "$installed"))"
