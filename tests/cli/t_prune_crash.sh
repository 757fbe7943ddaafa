# forkctl prune removes all its snapshots in one transaction: SIGKILL at
# moments spread over a prune of ~75 snapshots leaves the store either as
# it was or as the whole prune leaves it, never a part of it; verify passes
# and every snapshot left (kept ones whose maps are built on removed
# snapshots' map nodes included) restores byte-identically.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI not installed"
chain=24 fans=70
gen g --size 256K --snapshots $chain --dirty 5 --seed 9
w=$(ls g | head -n 1); w=${#w}   # forkgen's directory names: 00.. or 000..
g3() { printf 'g/%0*d' "$w" "$1"; }
fk init >/dev/null
# expect[tag] = the generated image the snapshot must restore to.
declare -A expect
fk ingest --tag s0 --memory "$(g3 0)/memory.full" --vmstate "$(g3 0)/vmstate" >/dev/null
expect[s0]=$(g3 0)
for ((i = 1; i < chain; i++)); do
    fk ingest --tag "s$i" --parent "s$((i - 1))" --memory "$(g3 $i)/memory.diff" --diff \
        --vmstate "$(g3 $i)/vmstate" >/dev/null
    expect[s$i]=$(g3 $i)
done
# Fans: Diff children of chain snapshots, each the next chain image.
for ((k = 0; k < fans; k++)); do
    j=$((k % (chain - 1)))
    fk ingest --tag "f$k" --parent "s$j" --memory "$(g3 $((j + 1)))/memory.diff" --diff \
        --vmstate "$(g3 $((j + 1)))/vmstate" >/dev/null
    expect[f$k]=$(g3 $((j + 1)))
done
rules="--keep-last 10 --keep-tag s1?"
cp -a store store.orig
reset() { rm -rf store && cp -a store.orig store; }
count() { fk sql "SELECT count(*) FROM snapshot" --csv | tail -n 1; }
# check_restores WHEN [TAG...]: those snapshots (default: all) restore right.
check_restores() {
    local t when=$1; shift
    for t in ${@:-$(fk sql "SELECT tag FROM snapshot ORDER BY id" --csv | tail -n +2)}; do
        rm -rf r && fk restore "$t" --out r >/dev/null || die "$when: restore $t"
        same r/memory.bin "${expect[$t]}/memory.full"
        same r/vmstate "${expect[$t]}/vmstate"
    done
}
before=$(store_state) n_before=$(count)

# The whole prune once: its duration and the state it leaves.
t0=${EPOCHREALTIME/./}
fk prune $rules --json >full.json
t1=${EPOCHREALTIME/./}
after=$(store_state) n_after=$(count)
removed=$(jq '.removed | length' full.json)
[ "$removed" -ge 70 ] && [ $((n_before - removed)) = "$n_after" ] || die "prune removed $removed: $(head -c 300 full.json)"
fk verify >/dev/null || die "verify after the whole prune"
check_restores "after the whole prune"
kept=$(fk sql "SELECT tag FROM snapshot ORDER BY id" --csv | tail -n +2 | xargs)
us=$((t1 - t0))
echo "prune of $removed snapshots: $((us / 1000)) ms"

# Kills spread over that duration, and a little later.
kills=0
for pct in 5 20 40 60 80 120; do
    reset
    # forkctl itself, not the fk function (a subshell: killing that would
    # leave forkctl running)
    "$FORKCTL" --store "$TESTDIR/store" prune $rules >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk "BEGIN { printf \"%.4f\", $us * $pct / 100 / 1e6 }")"
    kill -9 $pid 2>/dev/null || true
    rc=0; wait $pid || rc=$?
    [ $rc = 137 ] && kills=$((kills + 1))
    state=$(store_state)
    if [ "$state" = "$before" ]; then
        what=none
    elif [ "$state" = "$after" ]; then
        what=all
    else
        die "prune killed at ${pct}% (exit $rc) left $(count) of $n_before snapshots: neither before nor after"
    fi
    echo "kill at ${pct}%: exit $rc, removed $what"
    fk verify >/dev/null || die "verify after prune killed at ${pct}%"
    check_restores "prune killed at ${pct}%" $kept
    # A prune after the kill finishes the job.
    fk prune $rules >/dev/null || die "prune again after the kill at ${pct}%"
    [ "$(store_state)" = "$after" ] || die "prune after the kill at ${pct}% left another state"
done
[ $kills -ge 2 ] || die "only $kills of the prunes were killed before they ended: nothing tested"
