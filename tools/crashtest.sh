#!/usr/bin/env bash
# tools/crashtest.sh [--kills N] [--size SIZE] [--chunk-size SIZE] [--dir DIR]: kills forkctl
# with SIGKILL at random moments while it ingests, removes, prunes and
# collects garbage, and checks after every kill that nothing acknowledged
# was lost.
#
# A snapshot is acknowledged when `forkctl ingest` exited 0. A killed
# ingest may or may not have committed; if its tag exists afterwards it
# must restore exactly like an acknowledged one. A removal counts only
# when rmi or prune exited 0 (a killed one leaves either state).
# After each kill: `forkctl verify` passes, the snapshot the killed command
# was writing (if it exists) and a few others from the ledger restore
# byte-identical (SHA-256 of the image they were made from). At the end:
# every snapshot in the ledger restores; then gc --threshold 1 (compact
# everything), and the store's disk usage must be within 5% of a fresh
# store holding the same snapshots (ingested from the same images, gc'd
# the same way): space written by killed commands was reclaimed. And
# after that gc: no dead chunk bytes (chunk_usage), at most one empty
# chunk (the spare), no stray file (verify's notes). A command that was
# not killed must succeed, and after every kill a probe ingest of 1 MiB
# of new data (so it creates chunks: a chunk file stranded by a crash
# used to make every such ingest fail) must be accepted.
#
# The command is started as a direct child (not through a shell function)
# so that SIGKILL hits forkctl itself.
# Default: 200 kills (the long run); tests/cli/t_crash.sh runs ~25.
set -euo pipefail
kills_wanted=200 size=8M dir="" chunk=1M
while [ $# -gt 0 ]; do
    case $1 in
        --kills) kills_wanted=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --chunk-size) chunk=$2; shift 2 ;;
        *) echo "usage: tools/crashtest.sh [--kills N] [--size SIZE] [--chunk-size SIZE] [--dir DIR]" >&2; exit 2 ;;
    esac
done
: "${FORKCTL:?FORKCTL must point at forkctl}" "${FORKGEN:?FORKGEN must point at forkgen}"
[ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/fks-crash.XXXXXX")
mkdir -p "$dir"
cd "$dir"
rm -rf g st fresh r
NIMG=8
"$FORKGEN" --out g --size "$size" --snapshots $NIMG --dirty 6 --seed 11 --quiet
F=("$FORKCTL" --store "$dir/st")
fk() { "${F[@]}" "$@"; }
fk --quiet init --chunk-size "$chunk"
for i in $(seq 0 $((NIMG - 1))); do sha[$i]=$(sha256sum <"g/$(printf %02d "$i")/memory.full" | cut -d' ' -f1); done

declare -A img=()      # ledger: tag -> image index its memory equals
exists() { [ "$(fk sql "SELECT count(*) FROM snapshot WHERE tag = '$1'" --csv | tail -n 1)" = 1 ]; }
fail() { echo "crashtest: FAIL: $*" >&2; echo "crashtest: store kept in $dir" >&2; exit 1; }

ledger() { [ ${#img[@]} -eq 0 ] || printf '%s\n' "${!img[@]}"; }
check_one() {
    exists "$1" || fail "acknowledged snapshot $1 is gone (kill $kills)"
    fk --quiet restore "$1" --out r --force || fail "restore $1 after kill $kills"
    [ "$(sha256sum <r/memory.bin | cut -d' ' -f1)" = "${sha[${img[$1]}]}" ] || fail "$1 restores wrong bytes (kill $kills)"
    restores=$((restores + 1))
}
probes=0
probe() { # an ingest right after a kill (1 MiB of new data: it needs new chunks) must work
    head -c 1M /dev/urandom >probe.mem
    fk --quiet ingest --tag "probe$kills" --memory probe.mem --vmstate g/00/vmstate 2>probe.err ||
        fail "ingest refused after kill $kills: $(cat probe.err)"
    fk --quiet rmi "probe$kills" 2>probe.err || fail "rmi of the probe after kill $kills: $(cat probe.err)"
    probes=$((probes + 1))
}
check() { # check [all]: verify, then the snapshot just written and 3 others (or all)
    fk verify >/dev/null 2>verify.err || fail "verify after kill $kills: $(cat verify.err)"
    local t
    if [ -n "$new" ] && [ -n "${img[$new]+x}" ]; then check_one "$new"; fi
    for t in $(ledger | { if [ "${1:-}" = all ]; then cat; else shuf -n 3; fi; }); do check_one "$t"; done
}

kills=0 ops=0 acked=0 restores=0 n=0 after_kill=0 last_killed=0
while [ $kills -lt "$kills_wanted" ]; do
    n=$((n + 1)) ops=$((ops + 1))
    mapfile -t tags < <(ledger)
    op=$((RANDOM % 10)) new="" newimg="" rm_tag=""
    if [ $op -lt 4 ] || [ ${#tags[@]} -eq 0 ]; then          # ingest a Full image
        newimg=$((RANDOM % NIMG)) new="t$n"
        cmd=("${F[@]}" --quiet ingest --tag "$new" --memory "g/$(printf %02d $newimg)/memory.full" --vmstate g/00/vmstate)
    elif [ $op -lt 7 ]; then                                   # ingest a Diff on a snapshot of image i < last
        p=${tags[$((RANDOM % ${#tags[@]}))]}
        i=${img[$p]}
        if [ "$i" -ge $((NIMG - 1)) ]; then continue; fi
        newimg=$((i + 1)) new="t$n"
        cmd=("${F[@]}" --quiet ingest --tag "$new" --parent "$p" --memory "g/$(printf %02d $newimg)/memory.diff" --diff
             --vmstate g/00/vmstate)
    elif [ $op -lt 8 ]; then
        rm_tag=${tags[$((RANDOM % ${#tags[@]}))]}
        cmd=("${F[@]}" --quiet rmi "$rm_tag")
    elif [ $op -lt 9 ] && [ ${#tags[@]} -gt 6 ]; then
        cmd=("${F[@]}" --quiet prune --keep-last 4)
    else
        cmd=("${F[@]}" --quiet gc)
    fi
    "${cmd[@]}" >/dev/null 2>op.err &
    pid=$!
    # Half the kills land in the first 30 ms, half anywhere in 0.5 s, so
    # that some commands finish (and their snapshots join the ledger).
    sleep "$(printf '0.%03d' $((RANDOM % 2 ? RANDOM % 30 : RANDOM % 500)))"
    killed=0
    if kill -9 $pid 2>/dev/null; then killed=1; kills=$((kills + 1)); fi
    rc=0
    wait $pid 2>/dev/null || rc=$?
    [ $killed = 1 ] || [ $rc = 0 ] || fail "'${cmd[*]}' failed without being killed: $(cat op.err)"
    if [ $killed = 0 ] && [ -n "$new" ] && [ $last_killed = 1 ]; then after_kill=$((after_kill + 1)); fi
    last_killed=$killed
    if [ -n "$new" ] && { [ $rc = 0 ] || exists "$new"; }; then
        img[$new]=$newimg
        acked=$((acked + (rc == 0)))
    fi
    if [ -n "$rm_tag" ] && ! exists "$rm_tag"; then unset "img[$rm_tag]"; fi
    if [ "${cmd[4]}" = prune ]; then
        for t in $(ledger); do exists "$t" || unset "img[$t]"; done
    fi
    if [ $killed = 1 ]; then check; probe; fi
done

new=""
fk --quiet gc --threshold 1
check all
dead=$(fk sql "SELECT coalesce(sum(dead_bytes), 0) FROM chunk_usage" --csv | tail -n 1)
empty=$(fk sql "SELECT count(*) FROM chunk WHERE used <= 64" --csv | tail -n 1)
[ "$dead" = 0 ] || fail "gc left $dead dead chunk bytes"
[ "$empty" -le 1 ] || fail "gc left $empty empty chunks"
fk verify >/dev/null 2>verify.err || fail "final verify: $(cat verify.err)"
! grep -q "note:" verify.err || fail "gc left leftovers: $(cat verify.err)"
used=$(du -sb st/chunks st/catalog.db* | awk '{ s += $1 } END { print s }')
"$FORKCTL" --store fresh --quiet init --chunk-size "$chunk"
for t in $(ledger); do
    "$FORKCTL" --store fresh --quiet ingest --tag "$t" --memory "g/$(printf %02d "${img[$t]}")/memory.full" --vmstate g/00/vmstate
done
"$FORKCTL" --store fresh --quiet gc --threshold 1
fresh=$(du -sb fresh/chunks fresh/catalog.db* | awk '{ s += $1 } END { print s }')
echo "crashtest: $kills kills in $ops operations ($chunk chunks); $acked ingests acknowledged, none refused ($probes probe ingests right after a kill, $after_kill more); $restores restores checked byte for byte"
echo "crashtest: after gc: $dead dead chunk bytes, $empty empty chunk, no strays"
echo "crashtest: ${#img[@]} snapshots survive; store $used bytes after gc, a fresh store with the same snapshots $fresh bytes"
awk -v a="$used" -v b="$fresh" 'BEGIN { d = (a - b) / b; printf "crashtest: difference %+.1f%%\n", 100 * d; exit (d > 0.05 || d < -0.05) }' ||
    fail "disk usage not within 5% of a fresh store"
echo "crashtest: ok"
[ -n "${KEEP:-}" ] || rm -rf "$dir"
