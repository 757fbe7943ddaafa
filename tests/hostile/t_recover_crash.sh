# kill -9 at random moments of ingest (Full and Diff) and rmi, then delete
# the catalog and `forkctl recover`: every acknowledged snapshot comes back
# byte-identical, and anything else recover brings back (an ingest killed
# after its manifest was synced, an rmi killed after its commit) restores
# exactly the image it was made from. Short by default (10 kills, a
# recover every 5), HOSTILE_LONG=1: 60 kills.
. "$(dirname "$0")/../cli/lib.sh"
kills_wanted=10
[ -n "${HOSTILE_LONG:-}" ] && kills_wanted=60
NIMG=6
gen g --size 4M --snapshots $NIMG --dirty 6 --seed 5
fk --quiet init --chunk-size 1M
for i in $(seq 0 $((NIMG - 1))); do sha[$i]=$(sha "g/0$i/memory.full"); done
F=("$FORKCTL" --store "$TESTDIR/store" --quiet)

declare -A acked=() made=()      # acked: tag -> image (ingest exited 0, not removed); made: every tag tried
exists() { [ "$(fk sql "SELECT count(*) FROM snapshot WHERE tag = '$1'" --csv | tail -n 1)" = 1 ]; }
recover_and_check() {
    rm -f "$TESTDIR/store"/catalog.db*
    local rc=0
    fk recover >rec.out 2>rec.err || rc=$?
    [ $rc = 0 ] || die "recover after kill $kills exited $rc: $(cat rec.err)"
    fk verify >/dev/null || die "verify after recover (kill $kills)"
    for t in "${!acked[@]}"; do exists "$t" || die "acknowledged $t is gone after recover (kill $kills)"; done
    # Every snapshot there, acknowledged or not, restores its image.
    for t in $(fk sql "SELECT tag FROM snapshot" --csv | tail -n +2); do
        [ -n "${made[$t]+x}" ] || die "recover brought back $t, which nothing made"
        fk restore "$t" --out r --force >/dev/null || die "restore $t after recover (kill $kills)"
        [ "$(sha r/memory.bin)" = "${sha[${made[$t]}]}" ] || die "$t restores wrong bytes after recover (kill $kills)"
        checked=$((checked + 1))
    done
}

kills=0 n=0 checked=0 recovers=0
while [ $kills -lt $kills_wanted ]; do
    n=$((n + 1))
    mapfile -t tags < <(fk sql "SELECT tag FROM snapshot" --csv | tail -n +2)
    op=$((RANDOM % 10)) new="" rm_tag=""
    if [ $op -lt 4 ] || [ ${#tags[@]} -eq 0 ]; then
        i=$((RANDOM % NIMG)) new="t$n"
        cmd=("${F[@]}" ingest --tag "$new" --memory "g/0$i/memory.full" --vmstate g/00/vmstate)
    elif [ $op -lt 8 ]; then
        p=${tags[$((RANDOM % ${#tags[@]}))]}
        pi=${made[$p]}
        [ "$pi" -lt $((NIMG - 1)) ] || continue
        i=$((pi + 1)) new="t$n"
        cmd=("${F[@]}" ingest --tag "$new" --parent "$p" --memory "g/0$i/memory.diff" --diff --vmstate g/00/vmstate)
    else
        rm_tag=${tags[$((RANDOM % ${#tags[@]}))]}
        cmd=("${F[@]}" rmi "$rm_tag")
    fi
    [ -n "$new" ] && made[$new]=$i
    "${cmd[@]}" >/dev/null 2>op.err &
    pid=$!
    sleep "0.$(printf %03d $((RANDOM % 250)))"
    killed=0
    if kill -9 $pid 2>/dev/null; then killed=1; kills=$((kills + 1)); fi
    rc=0
    wait $pid 2>/dev/null || rc=$?
    [ $killed = 1 ] || [ $rc = 0 ] || die "'${cmd[*]}' failed without being killed: $(cat op.err)"
    [ -n "$new" ] && [ $rc = 0 ] && acked[$new]=$i
    # A killed rmi may have committed: then its snapshot is not acknowledged any more.
    if [ -n "$rm_tag" ] && { [ $rc = 0 ] || ! exists "$rm_tag"; }; then unset "acked[$rm_tag]"; fi
    if [ $killed = 1 ] && [ $((kills % 5)) = 0 ]; then
        recover_and_check
        recovers=$((recovers + 1))
    fi
done
[ $recovers -gt 0 ] || die "no recover ran"
echo "recover-crash: $kills kills in $n operations, $recovers recovers, ${#acked[@]} acknowledged snapshots, $checked restores checked"
