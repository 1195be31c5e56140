#!/usr/bin/env bash
# Index load benchmark: for 1k, 10k and 100k repositories, generate synthetic
# metadata (bench/gen_metadata.py), then
#   1. crane-bench-index (tools/crane-bench-index.cpp, libcrane alone): time
#      to build the index, RSS and malloc bytes per repo, stat-walk time,
#      incremental reload time after touching --touch files; once with the
#      files settled and once with every file freshly written (--fresh-racy);
#   2. bench/index_rss.py under the event MPM and under prefork (--children
#      children): a real httpd on 127.0.0.1 loads the same data dir in the
#      parent; RSS of the parent and each child, and the children's shared vs
#      private memory (smaps_rollup), before and after one file is touched
#      and every child reloads on its own.
# Ends with a summary table.
#
#   bench/index_load.sh [--sizes "1000 10000 100000"] [--touch 100]
#                       [--children 4] [--mpms "event prefork"] [--regen]
#
# Data and logs go to build/bench-index/ (generated data is kept and reused
# unless --regen; delete that directory to reclaim ~0.5 GB after a 100k run).
# CRANE_BUILD=dir overrides build/release (mod_crane.so, crane-bench-index).
set -euo pipefail

SIZES="1000 10000 100000"
TOUCH=100
CHILDREN=4
MPMS="event prefork"
REGEN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES=$2; shift 2 ;;
        --touch) TOUCH=$2; shift 2 ;;
        --children) CHILDREN=$2; shift 2 ;;
        --mpms) MPMS=$2; shift 2 ;;
        --regen) REGEN=1; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in $SIZES; do
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 500000 ]; then
        echo "--sizes: each size must be 1..500000" >&2; exit 2
    fi
done

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
BUILD=${CRANE_BUILD:-$REPO/build/release}
WORK=$REPO/build/bench-index
mkdir -p "$WORK"
chmod 755 "$WORK"
if [ ! -x "$BUILD/crane-bench-index" ]; then
    echo "building crane-bench-index ..." >&2
    cmake --build "$BUILD" --target crane-bench-index -j2 >&2
fi
export CRANE_MODULE=${CRANE_MODULE:-$BUILD/mod_crane.so}
[ -f "$CRANE_MODULE" ] || { echo "no module at $CRANE_MODULE" >&2; exit 1; }

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$WORK/results-$STAMP
mkdir -p "$OUT"
echo "results in $OUT" >&2
echo "module: $CRANE_MODULE ($(stat -c %y "$CRANE_MODULE"))" | tee "$OUT/info.txt"
echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?), load: $(cut -d' ' -f1-3 /proc/loadavg)" \
    | tee -a "$OUT/info.txt"

for n in $SIZES; do
    data=$WORK/data-$n
    subdirs=$(( n / 1000 ))
    marker="repos=$n subdirs=$subdirs seed=1 v1=0.05 tags=20"
    if [ "$REGEN" = 1 ] || [ "$(cat "$data.params" 2>/dev/null)" != "$marker" ]; then
        rm -rf "$data" "$data.params"
        echo "== generating $n repos ==" >&2
        t0=$SECONDS
        python3 "$HERE/gen_metadata.py" "$data" --repos "$n" --subdirs "$subdirs" --seed 1 \
            --manifest "$data.manifest"
        echo "$marker" > "$data.params"
        echo "generated in $((SECONDS - t0)) s" >&2
    fi
    echo
    echo "== $n repos: crane-bench-index, every file freshly written (--fresh-racy) =="
    echo "\$ $BUILD/crane-bench-index $data --touch $TOUCH --fresh-racy"
    timeout 600 "$BUILD/crane-bench-index" "$data" --touch "$TOUCH" --fresh-racy | tee "$OUT/tool-racy-$n.txt"
    echo
    echo "== $n repos: crane-bench-index, files settled =="
    echo "\$ $BUILD/crane-bench-index $data --touch $TOUCH"
    timeout 600 "$BUILD/crane-bench-index" "$data" --touch "$TOUCH" | tee "$OUT/tool-$n.txt"
    for mpm in $MPMS; do
        echo
        echo "== $n repos: httpd $mpm =="
        echo "\$ CRANE_MODULE=$CRANE_MODULE python3 bench/index_rss.py --data $data --mpm $mpm --children $CHILDREN --manifest $data.manifest"
        timeout 900 python3 "$HERE/index_rss.py" --data "$data" --mpm "$mpm" --children "$CHILDREN" \
            --manifest "$data.manifest" | tee "$OUT/rss-$mpm-$n.txt" | grep -v "^RESULT "
    done
done

echo
echo "== summary (KiB unless said otherwise) =="
python3 - "$OUT" "$SIZES" "$MPMS" <<'EOF'
import json, os, sys
out, sizes, mpms = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def result(name):
    try:
        with open(os.path.join(out, name)) as f:
            for line in f:
                if line.startswith("RESULT "):
                    return json.loads(line[7:])
    except OSError:
        pass
    return None
print("%7s %9s %8s %8s %8s %9s %10s %10s %10s %10s" % ("repos", "build ms", "B/repo", "B/repo", "walk ms",
      "idle ms", "incr ms", "incr ms", "incr ms", "idle ms"))
print("%7s %9s %8s %8s %8s %9s %10s %10s %10s %10s" % ("", "(median)", "(malloc)", "(RSS)", "", "(settled)",
      "(settled)", "(racy)", "(racy+2s)", "(racy)"))
for n in sizes:
    t, r = result("tool-%s.txt" % n), result("tool-racy-%s.txt" % n)
    if not t:
        continue
    print("%7s %9.1f %8.0f %8.0f %8.1f %9.1f %10.1f %10.1f %10.1f %10.1f" % (
        n, t["build_ms"], t["heap_bytes_per_repo"], t["rss_bytes_per_repo"], t["scan_ms"],
        t["nochange_settled_ms"], t["incremental_settled_ms"],
        r["incremental_after_load"]["ms"] if r else -1, r["incremental_unsettled"]["ms"] if r else -1,
        r["nochange_clearing"]["ms"] if r else -1))
print("(incr = reload after touching %d files; racy = every file freshly written before the load)" % t["touched"])
print()
print("%8s %8s %8s %10s | %-44s | %-44s" % ("repos", "mpm", "ready s", "parent RSS",
      "children before reload: RSS/shared/private", "after 1 file touched: RSS/shared/private"))
for n in sizes:
    for mpm in mpms:
        r = result("rss-%s-%s.txt" % (mpm, n))
        if not r:
            continue
        def kids(s):
            return " ".join("%d/%d/%d" % (c["VmRSS"], c["Shared_Clean"] + c["Shared_Dirty"],
                            c["Private_Clean"] + c["Private_Dirty"]) for c in s["children"])
        print("%8s %8s %8.1f %10d | %-44s | %-44s" % (n, mpm, r["ready_s"], r["before"]["parent"]["VmRSS"],
              kids(r["before"]), kids(r["after"])))
EOF
