#!/usr/bin/env bash
# tools/bench/remote.sh: `make bench-remote`. The remote tier against a real
# S3 server (Ceph radosgw on a memstore OSD, tools/s3/rgw.sh) on loopback,
# ratios from one run:
#   1. bytes uploaded by pushing snapshot k+1 after k, over the compressed
#      bytes k+1 added to the local store (its stored_bytes); median over
#      the chain, and the requests per push beside the packs it wrote;
#   2. a pull of a SIZE snapshot onto an empty store, timed (median of
#      RUNS) beside one curl fetching the same pack objects (same bytes,
#      one connection, signed by curl's --aws-sigv4);
#   3. a pull of the rest of the chain onto that store (Diffs).
# Usage: tools/bench/remote.sh [--size 512M] [--snapshots 6] [--runs 3]
# Needs BUILD (the build directory) and the Ceph packages (tools/deps.sh remote).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
F=$BUILD/forkctl
G=$BUILD/tools/forkgen
size=512M snaps=6 runs=3
while [ $# -gt 0 ]; do
    case $1 in
        --size) size=$2; shift 2 ;;
        --snapshots) snaps=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: $0 [--size 512M] [--snapshots N] [--runs N]" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d "${TMPDIR:-/tmp}/fks-bench-remote.XXXXXX")
trap '"$root/tools/s3/rgw.sh" stop "$W/rgw" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$root/tools/s3/rgw.sh" start "$W/rgw" >"$W/rgw.out" 2>&1 || { cat "$W/rgw.out" >&2; exit 1; }
set -a; . "$W/rgw/env"; set +a
"$root/tools/s3/rgw.sh" bucket "$W/rgw" bench
EP=$RGW_ENDPOINT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "== generating a $size chain of $snaps snapshots" >&2
"$G" --out "$W/gen" --size "$size" --snapshots "$snaps" --quiet >/dev/null
"$F" --store "$W/a" init >/dev/null
prev=""
tags=()
for d in "$W"/gen/[0-9][0-9]; do
    n=$(basename "$d")
    t=s$n
    if [ -z "$prev" ]; then
        "$F" --store "$W/a" ingest --tag "$t" --memory "$d/memory.full" --vmstate "$d/vmstate" >/dev/null
    else
        "$F" --store "$W/a" ingest --tag "$t" --parent "$prev" --memory "$d/memory.diff" --diff --vmstate "$d/vmstate" >/dev/null
    fi
    tags+=("$t")
    prev=$t
done
"$F" --store "$W/a" remote add chain s3://bench/chain --endpoint "$EP" >/dev/null
"$F" --store "$W/a" remote add base s3://bench/base --endpoint "$EP" >/dev/null

echo "== 1. incremental pushes" >&2
"$F" --store "$W/a" push "${tags[0]}" --remote chain --json >"$W/p0.json"
printf '%-6s %12s %12s %7s %9s %7s %6s\n' snap new_stored uploaded ratio requests packs s
: >"$W/ratios"
for t in "${tags[@]:1}"; do
    "$F" --store "$W/a" push "$t" --remote chain --json >"$W/p.json"
    stored=$("$F" --store "$W/a" info "$t" --json | jq .stored_bytes)
    up=$(jq .bytes_up "$W/p.json")
    ratio=$(echo "scale=3; $up / $stored" | bc)
    echo "$ratio" >>"$W/ratios"
    printf '%-6s %12s %12s %7s %9s %7s %6.2f\n' "$t" "$stored" "$up" "$ratio" "$(jq .requests "$W/p.json")" \
        "$(jq .packs_sent "$W/p.json")" "$(jq .seconds "$W/p.json")"
done
echo "median uploaded / new compressed bytes: $(median <"$W/ratios")"

echo "== 2. pull of ${tags[0]} ($size) onto an empty store, beside curl of the same packs" >&2
"$F" --store "$W/a" push "${tags[0]}" --remote base --json >"$W/pb.json"
echo "push ${tags[0]}: $(jq -r '"\(.bytes_up) bytes, \(.requests) requests, \(.packs_sent) packs, \(.seconds) s"' "$W/pb.json")"
keys=$(curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "$EP/bench?list-type=2&prefix=base%2Fpacks%2F" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g')
args=()
for k in $keys; do args+=(-o /dev/null "$EP/bench/$k"); done
: >"$W/tpull"; : >"$W/tcurl"
for r in $(seq 1 "$runs"); do
    rm -rf "$W/b"
    "$F" --store "$W/b" init >/dev/null
    "$F" --store "$W/b" remote add base s3://bench/base --endpoint "$EP" >/dev/null
    sync
    t0=$(now)
    "$F" --store "$W/b" pull "${tags[0]}" --remote base --json >"$W/pl.json"
    t1=$(now)
    curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "${args[@]}"
    t2=$(now)
    echo "$t1 - $t0" | bc >>"$W/tpull"
    echo "$t2 - $t1" | bc >>"$W/tcurl"
done
bytes=$(jq .bytes_down "$W/pl.json")
tp=$(median <"$W/tpull"); tc=$(median <"$W/tcurl")
echo "pull: $bytes bytes in $(jq .requests "$W/pl.json") requests; median of $runs: pull ${tp}s, curl of the same $(echo "$keys" | wc -w) packs ${tc}s, ratio $(echo "scale=2; $tp / $tc" | bc)"
# 3. The rest of the chain onto the store that now holds the base.
last=${tags[${#tags[@]}-1]}
"$F" --store "$W/b" remote add chain s3://bench/chain --endpoint "$EP" >/dev/null
t0=$(now)
"$F" --store "$W/b" pull "$last" --remote chain --json >"$W/pc.json"
t1=$(now)
echo "pull of the $(( ${#tags[@]} - 1 )) Diffs up to $last onto the store holding ${tags[0]}: $(echo "$t1 - $t0" | bc)s, $(jq .bytes_down "$W/pc.json") bytes in $(jq .requests "$W/pc.json") requests ($(jq .skipped "$W/pc.json") skipped)"
"$F" --store "$W/a" restore "$last" --out "$W/rla" >/dev/null
"$F" --store "$W/b" restore "$last" --out "$W/rlb" >/dev/null
cmp "$W/rla/memory.bin" "$W/rlb/memory.bin" && echo "pulled $last restores byte-identically"
"$F" --store "$W/a" restore "${tags[0]}" --out "$W/ra" >/dev/null
"$F" --store "$W/b" restore "${tags[0]}" --out "$W/rb" >/dev/null
cmp "$W/ra/memory.bin" "$W/rb/memory.bin" && echo "pulled ${tags[0]} restores byte-identically"
