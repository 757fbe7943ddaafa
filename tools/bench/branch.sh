#!/usr/bin/env bash
# tools/bench/branch.sh [--quick]: the pause-window benchmark (make bench-branch).
#
# One running VM (tools/vmm fcvmm, kvm or thread backend, 512 MiB guest
# dirtying pages), N = 50
# consecutive Diff branches per strategy, the store and snapshot
# directories on the ext4 disk ($BENCH_TMP, default /var/tmp/forkstore-bench):
#   ext4       Diff written into a snapshot directory on ext4 inside the pause
#   prealloc   forkd's fix: Diff to /dev/shm, then cp parent + apply into a
#              preallocated memory.bin on ext4 after the resume
#   forkstore  forkctl branch: /dev/shm staging, ingest after the resume
# The strategies run one after the other on the same VM, in rounds
# ($BRANCH_ROUNDS, default 1; each round runs all three), so that the
# machine's noise hits them alike. Output: per-branch lines in
# $OUT/branch.tsv and a table on stdout and in $OUT/branch.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
VMM=$BUILD/tools/fcvmm
BB=$BUILD/tools/branchbench
TMP=${BENCH_TMP:-/var/tmp/forkstore-bench}
OUT=${BENCH_OUT:-$BUILD/bench}
N=${BRANCH_N:-50} MEM=${BRANCH_MEM_MIB:-512} RATE=${BRANCH_RATE:-5000} INTERVAL=${BRANCH_INTERVAL_MS:-200}
ROUNDS=${BRANCH_ROUNDS:-1}
[ "${1:-}" = --quick ] && N=6 MEM=64
[ -x "$VMM" ] && [ -x "$BB" ] || { echo "bench-branch: $VMM or $BB not built (run make)" >&2; exit 1; }
# fcvmm picks its backend: kvm where /dev/kvm opens, else the thread
# backend (uffd-wp dirty tracking); BRANCH_BACKEND=kvm|thread forces one.
BACKEND=${BRANCH_BACKEND:-auto}
mkdir -p "$TMP" "$OUT"
work=$TMP/branch
rm -rf "$work"
mkdir -p "$work"
sock=$work/api.sock
"$VMM" --api-sock "$sock" --backend "$BACKEND" --mem-mib "$MEM" --rate "$RATE" --seed 7 2>"$work/vmm.err" &
vmm=$!
trap 'kill $vmm 2>/dev/null || true; wait $vmm 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "bench-branch: the VMM did not start: $(cat "$work/vmm.err")" >&2; exit 1; }
head -n 1 "$work/vmm.err" >&2
echo "bench-branch: $N Diff branches per strategy, ${MEM} MiB guest dirtying $RATE pages/s, ${INTERVAL} ms between branches" >&2
: >"$OUT/branch.tsv"
for r in $(seq "$ROUNDS"); do
    for s in ext4 prealloc forkstore; do
        rm -rf "$work/$s"
        sync
        "$BB" --api-sock "$sock" --strategy "$s" --dir "$work/$s" --n "$N" --interval "$INTERVAL" |
            sed "s/^/$r\t/" >>"$OUT/branch.tsv"
        rm -rf "$work/$s"
    done
done
# Table: medians over rounds of each summary figure.
awk -F'\t' '
    $2 == "summary" {
        s = $3
        for (i = 5; i <= NF; i++) { split($i, kv, "="); v[s, kv[1]] = v[s, kv[1]] " " kv[2] }
    }
    function med(str,   a, n, i, j, t) {
        n = split(str, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        print "| strategy | pause median ms | pause p90 ms | p90/median | slope ms/branch | durable per branch ms | disk after N branches |"
        print "|---|---|---|---|---|---|---|"
        split("ext4 prealloc forkstore", order, " ")
        for (k = 1; k <= 3; k++) {
            s = order[k]
            m = med(v[s, "pause_median_ms"]); p = med(v[s, "pause_p90_ms"])
            printf "| %s | %.1f | %.1f | %.2f | %+.3f | %.0f | %.1f MiB |\n", s, m, p, (m > 0 ? p / m : 0),
                med(v[s, "slope_ms_per_branch"]), med(v[s, "durable_mean_ms"]), med(v[s, "disk_bytes"]) / 1048576
        }
    }' "$OUT/branch.tsv" | tee "$OUT/branch.md"
