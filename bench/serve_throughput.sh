#!/usr/bin/env bash
# Serve-content throughput: a 1 MiB blob sent by mod_crane in serve-content
# mode (GET /v2/zoo/blobs/sha256:...) against the very same file sent by
# httpd's own static file handler (<Location /static> SetHandler None +
# Alias), in one httpd (event MPM) on 127.0.0.1, measured with wrk.
#
# The two targets run alternately, A B A B ..., for N rounds (this machine's
# speed drifts; alternating keeps the comparison fair). Prints requests/s and
# MiB/s per run, the median of each side, and the median over the rounds of
# the ratio mod_crane/static.
#
#   bench/serve_throughput.sh [--rounds 5] [--seconds 5] [--threads 2]
#                             [--connections 16] [--sendfile on|off]
#
# CRANE_MODULE=/path/to/mod_crane.so overrides build/release/mod_crane.so.
# Needs apache2 (or httpd), curl, python3 and wrk (installed with apt-get
# when missing and running as root). Talks to 127.0.0.1 only; every wrk run
# is bounded by `timeout`, and the httpd is stopped on exit.
set -euo pipefail

ROUNDS=5
SECONDS_PER_RUN=5
THREADS=2
CONNECTIONS=16
SENDFILE=on
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --sendfile) SENDFILE=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in ROUNDS SECONDS_PER_RUN THREADS CONNECTIONS; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
        echo "$v must be a positive integer" >&2; exit 2
    fi
done
# keep the run bounded: at most 20 rounds x 2 targets x 60 s
if [ "$ROUNDS" -gt 20 ] || [ "$SECONDS_PER_RUN" -gt 60 ] || [ "$CONNECTIONS" -gt 256 ] || [ "$THREADS" -gt 16 ]; then
    echo "limits: --rounds <= 20, --seconds <= 60, --connections <= 256, --threads <= 16" >&2; exit 2
fi
case "$SENDFILE" in on|On|ON) SENDFILE=On ;; off|Off|OFF) SENDFILE=Off ;; *) echo "--sendfile on|off" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
MODULE=${CRANE_MODULE:-$REPO/build/release/mod_crane.so}
[ -f "$MODULE" ] || { echo "no module at $MODULE (build it, or set CRANE_MODULE)" >&2; exit 1; }
MODULE=$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")
HTTPD=$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)
[ -x "$HTTPD" ] || { echo "apache2/httpd not found" >&2; exit 1; }
MODDIR=$(apxs -q LIBEXECDIR 2>/dev/null || true)
[ -n "$MODDIR" ] || MODDIR=/usr/lib/apache2/modules

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing wrk ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
    fi
    command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
fi

WORK=$(mktemp -d /tmp/crane-serve-bench.XXXXXX)
chmod 755 "$WORK"
HTTPD_PID=
cleanup() {
    if [ -n "$HTTPD_PID" ] && kill -0 "$HTTPD_PID" 2>/dev/null; then
        kill -TERM "$HTTPD_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$HTTPD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$HTTPD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- content: metadata for repo zoo (repository zoo-pulp) and one 1 MiB blob ----
mkdir -p "$WORK/metadata" "$WORK/content/v1" "$WORK/content/v2/zoo-pulp/blobs" "$WORK/htdocs"
cat >"$WORK/metadata/zoo.json" <<'EOF'
{"version": 4, "repo-registry-id": "zoo", "repository": "zoo-pulp",
 "url": "http://cdn.example.com/pulp/docker/v2/zoo/", "protected": false,
 "schema2_data": [], "manifest_list_data": [], "manifest_list_amd64_tags": {}}
EOF
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random("serve-bench").randbytes(1 << 20))' \
    >"$WORK/blob.bin"
DIGEST=sha256:$(sha256sum "$WORK/blob.bin" | cut -d' ' -f1)
BLOB="$WORK/content/v2/zoo-pulp/blobs/$DIGEST"
mv "$WORK/blob.bin" "$BLOB"
chmod -R a+rX "$WORK"

USER_LINES=
if [ "$(id -u)" = 0 ]; then USER_LINES=$'User www-data\nGroup www-data'; fi
cat >"$WORK/httpd.conf" <<EOF
ServerRoot "$WORK"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile $WORK/httpd.pid
ErrorLog $WORK/error.log
LogLevel warn
LoadModule mpm_event_module $MODDIR/mod_mpm_event.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
LoadModule alias_module $MODDIR/mod_alias.so
LoadModule crane_module $MODULE
$USER_LINES
DocumentRoot $WORK/htdocs
StartServers 2
ServerLimit 4
ThreadsPerChild 32
MinSpareThreads 32
MaxSpareThreads 128
MaxRequestWorkers 128
KeepAliveTimeout 30
MaxKeepAliveRequests 0
EnableSendfile $SENDFILE
EnableMMAP On
# no access log on either side

CraneDataDir $WORK/metadata
CranePollInterval 60
CraneServeContent On
CraneContentDirV1 $WORK/content/v1
CraneContentDirV2 $WORK/content/v2

<Directory />
    Require all denied
</Directory>
<Location "/v2/">
    SetHandler crane
    Require all granted
</Location>
# the same file through httpd's static file handler
Alias /static/blob $BLOB
<Location "/static">
    SetHandler None
    Require all granted
</Location>
<Directory "$WORK/content">
    Require all granted
</Directory>
EOF

"$HTTPD" -t -f "$WORK/httpd.conf" >/dev/null 2>&1 || { "$HTTPD" -t -f "$WORK/httpd.conf"; exit 1; }
setsid "$HTTPD" -f "$WORK/httpd.conf" -DFOREGROUND >"$WORK/stderr.log" 2>&1 &
HTTPD_PID=$!
for _ in $(seq 300); do
    if ! kill -0 "$HTTPD_PID" 2>/dev/null; then
        echo "httpd exited:" >&2; cat "$WORK/stderr.log" "$WORK/error.log" >&2 2>/dev/null; exit 1
    fi
    curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
    sleep 0.1
done

CRANE_URL="http://127.0.0.1:$PORT/v2/zoo/blobs/$DIGEST"
STATIC_URL="http://127.0.0.1:$PORT/static/blob"

# both answer 200 with the blob's exact bytes before anything is measured
for url in "$CRANE_URL" "$STATIC_URL"; do
    got=$(curl -sS --max-time 10 -o "$WORK/check.bin" -w '%{http_code}' "$url")
    if [ "$got" != 200 ] || ! cmp -s "$WORK/check.bin" "$BLOB"; then
        echo "$url answered $got or wrong bytes; error log:" >&2; cat "$WORK/error.log" >&2; exit 1
    fi
done
rm -f "$WORK/check.bin"
curl -sS -o /dev/null -D - "$CRANE_URL" | grep -i '^cache-control' | sed 's/^/mod_crane /' || true

# wrk URL -> "requests/s MiB/s non2xx socket_errors"
run_wrk() {
    local out
    out=$(timeout $((SECONDS_PER_RUN + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "$1")
    python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
m = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", out)
scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m.group(2)]
mib = float(m.group(1)) * scale / (1 << 20)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
sock = re.search(r"Socket errors: (.*)", out)
print("%.1f %.1f %s %s" % (rps, mib, non2xx.group(1) if non2xx else "0",
                           (sock.group(1).replace(" ", "") if sock else "none")))
PY
}

echo "serve-content throughput: 1 MiB blob, httpd $("$HTTPD" -v | sed -n 's/^Server version: //p') event MPM," \
     "EnableSendfile $SENDFILE, wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s, $ROUNDS rounds"
printf '%-6s %-10s %12s %10s  %s\n' round target "requests/s" "MiB/s" notes
RESULTS="$WORK/results.txt"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    for target in mod_crane static; do
        if [ "$target" = mod_crane ]; then url=$CRANE_URL; else url=$STATIC_URL; fi
        line=$(run_wrk "$url")
        read -r rps mib non2xx sock <<<"$line"
        notes=
        [ "$non2xx" = 0 ] || notes="$notes non-2xx=$non2xx"
        [ "$sock" = none ] || notes="$notes socket-errors=$sock"
        printf '%-6s %-10s %12s %10s %s\n' "$round" "$target" "$rps" "$mib" "$notes"
        echo "$round $target $rps $mib" >>"$RESULTS"
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    rnd, target, rps, mib = line.split()
    runs.setdefault(target, {})[int(rnd)] = (float(rps), float(mib))
crane, static = runs["mod_crane"], runs["static"]
print()
for name, side in (("mod_crane", crane), ("static", static)):
    print("median %-10s %10.1f requests/s %8.1f MiB/s" % (
        name, statistics.median(v[0] for v in side.values()), statistics.median(v[1] for v in side.values())))
ratios = [crane[r][0] / static[r][0] for r in sorted(crane) if r in static and static[r][0] > 0]
print("median ratio mod_crane/static (per round, requests/s): %.3f  [%s]" % (
    statistics.median(ratios), " ".join("%.3f" % x for x in ratios)))
PY

if grep -E '\[(([a-z_]+:)?(warn|error|crit|alert|emerg))\]' "$WORK/error.log" >/dev/null 2>&1; then
    echo; echo "error log:"; grep -E '\[(([a-z_]+:)?(warn|error|crit|alert|emerg))\]' "$WORK/error.log" | head -20
fi
