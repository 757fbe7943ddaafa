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
#   3. a pull of the rest of the chain onto that store (Diffs);
#   4. lazy restore from the remote onto a store with no local pages
#      (a MIB MiB test-VMM guest with 64 MiB of data, its working set
#      pushed with it), median of RUNS, each on fresh empty stores: the
#      time from the `restore --lazy` command to the VM running; to the
#      paused guest having read all its RAM through the server (a Full
#      snapshot of it); beside curl of the snapshot's packs (the bytes a
#      pull fetches), pull + File-backend restore to running, and both
#      lazy figures again on the store the first lazy restore filled.
# Usage: tools/bench/remote.sh [--size 512M] [--snapshots 6] [--runs 3] [--lazy-mib 512] [--lazy-only]
# Needs BUILD (the build directory) and the Ceph packages (tools/deps.sh remote).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
F=$BUILD/forkctl
G=$BUILD/tools/forkgen
size=512M snaps=6 runs=3 lmib=512 lazy_only=0
while [ $# -gt 0 ]; do
    case $1 in
        --size) size=$2; shift 2 ;;
        --snapshots) snaps=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --lazy-mib) lmib=$2; shift 2 ;;
        --lazy-only) lazy_only=1; shift ;;
        *) echo "usage: $0 [--size 512M] [--snapshots N] [--runs N] [--lazy-mib N] [--lazy-only]" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d "${TMPDIR:-/tmp}/fks-bench-remote.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
      "$root/tools/s3/rgw.sh" stop "$W/rgw" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$root/tools/s3/rgw.sh" start "$W/rgw" >"$W/rgw.out" 2>&1 || { cat "$W/rgw.out" >&2; exit 1; }
set -a; . "$W/rgw/env"; set +a
"$root/tools/s3/rgw.sh" bucket "$W/rgw" bench
EP=$RGW_ENDPOINT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

if [ "$lazy_only" = 0 ]; then
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
fi

echo "== 4. lazy restore from the remote onto stores with no local pages ($lmib MiB guest)" >&2
VMM=$BUILD/tools/fcvmm
backend=$( [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null && echo kvm || echo thread )
vmm() { # vmm SOCK ARGS...: starts fcvmm, sets vp
    rm -f "$1"
    "$VMM" --api-sock "$1" --backend "$backend" "${@:2}" 2>>"$W/vmm.err" &
    vp=$!
    pids+=("$vp")
    for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
    echo "bench-remote: fcvmm did not start: $(tail -n 3 "$W/vmm.err")" >&2
    exit 1
}
gone() { for _ in $(seq 1200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; }
fresh() { rm -rf "$W/$1"; "$F" --store "$W/$1" init >/dev/null
          "$F" --store "$W/$1" remote add lazy s3://bench/lazy --endpoint "$EP" >/dev/null; }
ms() { echo "($2 - $1) * 1000" | bc; }
mkdir -p "$W/stage"
fresh la
vmm "$W/boot.sock" --mem-mib "$lmib" --fill-mib 64 --rate 200 --seed 11
sleep 0.5
"$F" --store "$W/la" branch --api-sock "$W/boot.sock" --tag g --staging "$W/stage" >/dev/null
kill -9 "$vp"
# its working set: a lazy restore of its own, the guest running 2 s
vmm "$W/w.sock" --no-boot
j=$("$F" --store "$W/la" restore g --api-sock "$W/w.sock" --lazy --staging "$W/stage" --json)
sleep 2
kill -9 "$vp"
gone "$(echo "$j" | jq .page_server_pid)"
"$F" --store "$W/la" push g --remote lazy --json >"$W/lp.json"
echo "push g: $(jq -r '"\(.bytes_up) bytes, \(.packs_sent) packs, working sets \(.working_sets)"' "$W/lp.json")"
lkeys=$(curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "$EP/bench?list-type=2&prefix=lazy%2Fpacks%2F" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g')
largs=()
for k in $lkeys; do largs+=(-o /dev/null "$EP/bench/$k"); done
: >"$W/t_run"; : >"$W/t_req"; : >"$W/t_all"; : >"$W/t_curl"; : >"$W/t_pull"; : >"$W/t_warm"; : >"$W/t_all_local"
for r in $(seq 1 "$runs"); do
    # a. restore --lazy to running, nothing local
    fresh lb
    vmm "$W/a.sock" --no-boot
    t0=$(now)
    j=$("$F" --store "$W/lb" restore g --api-sock "$W/a.sock" --lazy --staging "$W/stage" --server-log "$W/a.log" --json)
    t1=$(now)
    ms "$t0" "$t1" >>"$W/t_run"
    echo "$j" | jq .load_request_ms >>"$W/t_req"
    sleep 1
    kill -9 "$vp"
    gone "$(echo "$j" | jq .page_server_pid)"
    # b. the paused guest reads all RAM through the server, nothing local
    fresh lc
    vmm "$W/b.sock" --no-boot
    t0=$(now)
    j=$("$F" --store "$W/lc" restore g --api-sock "$W/b.sock" --lazy --paused --staging "$W/stage" --server-log "$W/b.log" --json)
    code=$(curl -s --max-time 600 -o /dev/null -w '%{http_code}' -X PUT --unix-socket "$W/b.sock" http://localhost/snapshot/create \
           -d "{\"snapshot_path\":\"$W/full.vs\",\"mem_file_path\":\"$W/full.mem\"}")
    t1=$(now)
    [ "$code" = 204 ] || { echo "bench-remote: snapshot/create answered $code" >&2; exit 1; }
    ms "$t0" "$t1" >>"$W/t_all"
    rm -f "$W/full.mem"
    kill -9 "$vp"
    gone "$(echo "$j" | jq .page_server_pid)"
    # c. curl of the snapshot's packs (one connection)
    t0=$(now)
    curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "${largs[@]}"
    t1=$(now)
    ms "$t0" "$t1" >>"$W/t_curl"
    # d. pull, then a File-backend restore to running
    fresh ld
    vmm "$W/d.sock" --no-boot
    t0=$(now)
    "$F" --store "$W/ld" pull g --remote lazy >/dev/null
    j=$("$F" --store "$W/ld" restore g --api-sock "$W/d.sock" --staging "$W/stage" --json)
    t1=$(now)
    ms "$t0" "$t1" >>"$W/t_pull"
    kill -9 "$vp"
    rm -rf "$(echo "$j" | jq -r .staging)"
    # e. the next VM on the store the lazy restore (a) filled: local, no request
    vmm "$W/e.sock" --no-boot
    t0=$(now)
    j=$("$F" --store "$W/lb" restore g --api-sock "$W/e.sock" --lazy --staging "$W/stage" --server-log "$W/e.log" --json)
    t1=$(now)
    ms "$t0" "$t1" >>"$W/t_warm"
    kill -9 "$vp"
    gone "$(echo "$j" | jq .page_server_pid)"
    ! grep -q "from remote" "$W/e.log" || { echo "bench-remote: the second VM used the remote" >&2; exit 1; }
    rm -f "$W/e.log"
    # f. the whole-RAM read of (b) on that store: the local reference
    vmm "$W/f.sock" --no-boot
    t0=$(now)
    j=$("$F" --store "$W/lb" restore g --api-sock "$W/f.sock" --lazy --paused --staging "$W/stage" --json)
    code=$(curl -s --max-time 600 -o /dev/null -w '%{http_code}' -X PUT --unix-socket "$W/f.sock" http://localhost/snapshot/create \
           -d "{\"snapshot_path\":\"$W/full.vs\",\"mem_file_path\":\"$W/full.mem\"}")
    t1=$(now)
    [ "$code" = 204 ] || { echo "bench-remote: snapshot/create answered $code" >&2; exit 1; }
    ms "$t0" "$t1" >>"$W/t_all_local"
    rm -f "$W/full.mem"
    kill -9 "$vp"
    gone "$(echo "$j" | jq .page_server_pid)"
done
echo "lazy restore of g ($lmib MiB guest, $(echo "$lkeys" | wc -w) packs, backend $backend), medians of $runs (ms):"
echo "  restore --lazy, no local pages, command to VM running: $(median <"$W/t_run") (load request $(median <"$W/t_req"))"
echo "    server (a, last run): $(grep 'from remote' "$W/a.log" | tail -n 1 | sed 's/^g: //')"
echo "  restore --lazy --paused, no local pages, to the guest's whole RAM read (Full snapshot done): $(median <"$W/t_all")"
echo "    server (b, last run): $(grep 'from remote' "$W/b.log" | tail -n 1 | sed 's/^g: //')"
echo "  curl of the snapshot's packs (the bytes a pull fetches), one connection: $(median <"$W/t_curl")"
echo "  pull + restore (File backend) to VM running: $(median <"$W/t_pull")"
echo "  next VM on the store the lazy restore filled (local, no request): $(median <"$W/t_warm")"
echo "  the whole-RAM read of (b) on that store (local reference): $(median <"$W/t_all_local")"
