#!/usr/bin/env bash
# Reload soak (bench/soak.py): wrk against stable repos of a real httpd with
# CranePollInterval 1 while a writer adds, removes and rewrites other repos
# (atomically and in place) every few hundred ms. Runs once per MPM; fails on
# any non-2xx/3xx or wrong Location for a stable repo, any unexpected
# error-log line or crash, a changed child pid set, or a final state that is
# not served. Prints each child's RSS after the warm-up vs at the end.
#
#   bench/soak.sh [DURATION_SECONDS=60] [MPM ...]      (MPMs: event prefork)
#   extra soak.py options through SOAK_ARGS, e.g. SOAK_ARGS="--churn 1000"
#
# CRANE_MODULE=/path/to/mod_crane.so overrides build/release/mod_crane.so.
# Installs wrk with apt-get when missing (as root). Talks to 127.0.0.1 only.
set -euo pipefail

DURATION=${1:-60}
shift || true
MPMS=${*:-event prefork}
if ! [[ $DURATION =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 5 ] || [ "$DURATION" -gt 3600 ]; then
    echo "DURATION must be 5..3600 seconds" >&2; exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
export CRANE_MODULE=${CRANE_MODULE:-$REPO/build/release/mod_crane.so}
[ -f "$CRANE_MODULE" ] || { echo "no module at $CRANE_MODULE (build it, or set CRANE_MODULE)" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing wrk ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
    fi
    command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
fi

rc=0
for mpm in $MPMS; do
    echo "== soak: $mpm, $DURATION s =="
    echo "\$ CRANE_MODULE=$CRANE_MODULE python3 bench/soak.py --duration $DURATION --mpm $mpm ${SOAK_ARGS:-}"
    # shellcheck disable=SC2086
    if ! timeout $((DURATION + 300)) python3 "$HERE/soak.py" --duration "$DURATION" --mpm "$mpm" ${SOAK_ARGS:-}; then
        rc=1
    fi
    echo
done
exit $rc
