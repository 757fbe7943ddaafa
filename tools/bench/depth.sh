#!/usr/bin/env bash
# tools/bench/depth.sh [--quick]: restore time against chain depth
# (make bench-depth).
#
# A forkgen chain (DEPTH_SIZE guest, default 512M; DEPTH_N Diffs, default
# 50, each rewriting --dirty 3 percent of the pages) is ingested as Diffs
# into one store. At depths 0, N/10, ..., N the snapshot is restored
# (warm page cache, output to $BENCH_TMP) beside the same image stored
# flat (restored once, ingested as a root of its own) and beside `cp
# --sparse=always` of that flat file, interleaved so the machine's noise
# hits all three alike; medians of DEPTH_RUNS (default 3). Every restore is
# compared with cmp against the flat file once. Output: $OUT/depth.tsv
# (depth, chain s, flat s, cp s) and the table $OUT/depth.md; charted by
# tools/bench/plot.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
FK=$BUILD/forkctl
GEN=$BUILD/tools/forkgen
TMP=${BENCH_TMP:-/var/tmp/forkstore-bench}/depth
OUT=${BENCH_OUT:-$BUILD/bench}
SIZE=${DEPTH_SIZE:-512M} N=${DEPTH_N:-50} RUNS=${DEPTH_RUNS:-3}
[ "${1:-}" = --quick ] && SIZE=64M N=10 RUNS=1
[ -x "$FK" ] && [ -x "$GEN" ] || { echo "bench-depth: $FK or $GEN not built (run make)" >&2; exit 1; }
rm -rf "$TMP"
mkdir -p "$TMP" "$OUT"
trap 'rm -rf "$TMP"' EXIT
st=$TMP/store
fk() { "$FK" --store "$st" --quiet "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

echo "bench-depth: $SIZE guest, $N Diffs, $RUNS runs" >&2
"$GEN" --out "$TMP/gen" --size "$SIZE" --snapshots $((N + 1)) --no-full --quiet >/dev/null
fk init
while IFS=$'\t' read -r nn tag parent _; do
    [ "${nn:0:1}" = "#" ] && continue
    if [ "$parent" = - ]; then
        fk ingest --tag "$tag" --memory "$TMP/gen/$nn/memory.full" --vmstate "$TMP/gen/$nn/vmstate"
    else
        fk ingest --tag "$tag" --parent "$parent" --memory "$TMP/gen/$nn/memory.diff" --diff --vmstate "$TMP/gen/$nn/vmstate"
    fi
    rm -f "$TMP/gen/$nn/memory.diff"
done <"$TMP/gen/chain.tsv"

step=$((N >= 10 ? N / 10 : 1))
: >"$OUT/depth.tsv"
rows=()
for ((d = 0; d <= N; d += step)); do
    tag=$(awk -F'\t' -v n="$(printf %02d "$d")" '$1 == n { print $2 }' "$TMP/gen/chain.tsv")
    [ -n "$tag" ] || { echo "bench-depth: no snapshot at depth $d" >&2; exit 1; }
    fk restore "$tag" --out "$TMP/flatsrc"
    fk ingest --tag "flat-$d" --memory "$TMP/flatsrc/memory.bin" --vmstate "$TMP/flatsrc/vmstate"
    : >c; : >f; : >p
    for r in $(seq "$RUNS"); do
        rm -rf "$TMP/o"; secs fk restore "$tag" --out "$TMP/o" >>c
        [ "$r" = 1 ] && { cmp "$TMP/o/memory.bin" "$TMP/flatsrc/memory.bin" || { echo "bench-depth: depth $d restores wrong" >&2; exit 1; }; }
        rm -rf "$TMP/o"; secs fk restore "flat-$d" --out "$TMP/o" >>f
        rm -f "$TMP/cp.bin"; secs cp --sparse=always "$TMP/flatsrc/memory.bin" "$TMP/cp.bin" >>p
    done
    rm -rf "$TMP/o" "$TMP/flatsrc" "$TMP/cp.bin"
    fk rmi "flat-$d"
    mc=$(median <c) mf=$(median <f) mp=$(median <p)
    printf '%d\t%.4f\t%.4f\t%.4f\n' "$d" "$mc" "$mf" "$mp" >>"$OUT/depth.tsv"
    rows+=("$(printf '| %d | %.3f | %.3f | %.2f | %.3f | %.2f |' "$d" "$mc" "$mf" "$(echo "$mc / $mf" | bc -l)" "$mp" "$(echo "$mc / $mp" | bc -l)")")
    echo "bench-depth: depth $d: ${mc}s (flat ${mf}s, cp ${mp}s)" >&2
done
{
echo "Restore against chain depth: $SIZE guest, Diffs of 3% of its pages, medians of $RUNS (\`make bench-depth\`)."
echo
echo "| depth | restore s | same image stored flat s | depth / flat | cp --sparse=always s | restore / cp |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
} | tee "$OUT/depth.md"
