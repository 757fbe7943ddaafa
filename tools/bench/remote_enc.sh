#!/usr/bin/env bash
# tools/bench/remote_enc.sh: what encryption at rest costs. One SIZE
# snapshot pushed to, then pulled (onto an empty store) from, a plain and
# an encrypted remote (--encrypt) of one bucket on a real S3 server (Ceph
# radosgw, tools/s3/rgw.sh, loopback); median of RUNS each, seconds and
# MiB/s of snapshot, and the bytes uploaded.
# Usage: tools/bench/remote_enc.sh [--size 256M] [--runs 3]
# Needs BUILD (the build directory) and the Ceph packages (tools/deps.sh remote).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
F=$BUILD/forkctl
size=256M runs=3
while [ $# -gt 0 ]; do
    case $1 in
        --size) size=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: $0 [--size 256M] [--runs N]" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d "${TMPDIR:-/tmp}/fks-bench-enc.XXXXXX")
trap '"$root/tools/s3/rgw.sh" stop "$W/rgw" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$root/tools/s3/rgw.sh" start "$W/rgw" >"$W/rgw.out" 2>&1 || { cat "$W/rgw.out" >&2; exit 1; }
set -a; . "$W/rgw/env"; set +a
"$root/tools/s3/rgw.sh" bucket "$W/rgw" bench
EP=$RGW_ENDPOINT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
"$BUILD/tools/forkgen" --out "$W/gen" --size "$size" --snapshots 1 --quiet >/dev/null
"$F" --store "$W/a" init >/dev/null
"$F" --store "$W/a" ingest --tag s --memory "$W/gen/00/memory.full" --vmstate "$W/gen/00/vmstate" >/dev/null
"$F" --store "$W/a" remote keygen "$W/key" >/dev/null
mib=$(( $(stat -c %s "$W/gen/00/memory.full") / 1048576 ))
printf '%-10s %9s %9s %9s %9s %12s\n' remote push_s push_MiBs pull_s pull_MiBs uploaded
for kind in plain encrypted; do
    : >"$W/push" ; : >"$W/pull"
    for r in $(seq 1 "$runs"); do
        enc=(); [ $kind = encrypted ] && enc=(--encrypt "$W/key")
        "$F" --store "$W/a" remote add "$kind$r" "s3://bench/$kind$r" --endpoint "$EP" "${enc[@]}" >/dev/null
        "$F" --store "$W/a" push s --remote "$kind$r" --json >"$W/p.json"
        jq .seconds "$W/p.json" >>"$W/push"
        rm -rf "$W/b"; "$F" --store "$W/b" init >/dev/null
        "$F" --store "$W/b" remote add r s3://bench/$kind$r --endpoint "$EP" "${enc[@]}" >/dev/null
        "$F" --store "$W/b" pull s --remote r --json >"$W/q.json"
        jq .seconds "$W/q.json" >>"$W/pull"
    done
    ps=$(median <"$W/push"); qs=$(median <"$W/pull")
    printf '%-10s %9.2f %9.0f %9.2f %9.0f %12s\n' $kind "$ps" "$(echo "$mib / $ps" | bc -l)" "$qs" \
        "$(echo "$mib / $qs" | bc -l)" "$(jq .bytes_up "$W/p.json")"
done
