# Hostile: a parent cycle in a damaged catalog (issue 13 row 7). log, info
# and rmi --cascade looped forever and verify said ok. Every lineage walk
# is now bounded by the number of snapshots: a cycle is exit 5 naming the
# snapshots on it, verify reports it, and nothing is removed.
. "$(dirname "$0")/../cli/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI not installed"
command -v jq >/dev/null || skip "jq not installed"
fk init --chunk-size 1M >/dev/null
head -c 65536 /dev/urandom >m
head -c 100 /dev/urandom >vm
fk ingest --tag a0 --memory m --vmstate vm >/dev/null
for i in 1 2 3; do fk ingest --tag "a$i" --parent "a$((i - 1))" --memory m --vmstate vm >/dev/null; done
fk ingest --tag b --memory m --vmstate vm >/dev/null
# Depths of a sound lineage come out as before.
d=$(fk images --json | jq -r 'sort_by(.tag) | map("\(.tag)=\(.depth)") | join(" ")')
[ "$d" = "a0=0 a1=1 a2=2 a3=3 b=0" ] || die "depths: $d"
[ "$(fk log a3 --json | jq -r 'map(.tag) | join(" ")')" = "a0 a1 a2 a3" ] || die "log a3 before damage"
fk verify >/dev/null || die "verify of a sound store failed"

cp -a store store.sound
q() { sqlite3 store/catalog.db "$1"; }
run() {   # run CMD...: exits 5 within 20 s, message names the cycle
    expect_fail 5 "catalog damaged: snapshot .* (is on|descends from) a cycle of parent links \\(.*a[0-2] -> .*\\)" \
        timeout 20 "$FORKCTL" --store "$TESTDIR/store" "$@"
}
for cyc in "a0:a2" "a1:a1"; do        # a0's parent is a2 (3-cycle); a1 its own parent
    rm -rf store && cp -a store.sound store
    q "UPDATE snapshot SET parent_id = (SELECT id FROM snapshot WHERE tag = '${cyc#*:}') WHERE tag = '${cyc%:*}'"
    before=$(store_state)
    run log a3
    run log a1
    run info a2
    run images
    run prune --keep-last 1
    run prune --keep-last 1 --dry-run
    run rmi --cascade a1
    run rmi --cascade a3
    run export a3 --forkd "$TESTDIR/ex"
    [ "$(store_state)" = "$before" ] || die "a refused command changed the store ($cyc)"
    # verify names the cycle and exits 5.
    rc=0; timeout 60 "$FORKCTL" --store "$TESTDIR/store" verify >out 2>err || rc=$?
    [ $rc -eq 5 ] || die "verify of a cycle ($cyc) exited $rc: $(cat err)"
    grep -q "cycle of parent links" err || die "verify does not report the cycle: $(cat err)"
    # ... and lists the snapshots on or below it (the ones log, info and
    # rmi refuse) as affected, in the JSON report too; b is not.
    case $cyc in a0:*) want="a0 a1 a2 a3" ;; *) want="a1 a2 a3" ;; esac
    grep -q "snapshots affected:.*a3" err || die "verify names no affected snapshots ($cyc): $(cat err)"
    rc=0; timeout 60 "$FORKCTL" --store "$TESTDIR/store" verify --json >out.json 2>err || rc=$?
    [ $rc -eq 5 ] || die "verify --json of a cycle ($cyc) exited $rc: $(cat err)"
    got=$(jq -r '.affected_snapshots | sort | join(" ")' out.json)
    [ "$got" = "$want" ] || die "verify --json affected ($cyc): '$got', want '$want'"
    # A snapshot outside the cycle still has its log; restores still work.
    fk log b >/dev/null || die "log b failed next to a cycle"
    fk restore a3 --out "o-$RANDOM" >/dev/null || die "restore a3 failed ($cyc)"
done
# A self-parent removed without --cascade leaves no self-loop behind.
fk rmi a1 >/dev/null
q "SELECT count(*) FROM snapshot WHERE parent_id = id" | grep -qx 0 || die "rmi left a self-loop"
fk verify >/dev/null || die "verify after breaking the self-loop: $(fk verify 2>&1)"
[ "$(fk log a3 --json | jq -r 'map(.tag) | join(" ")')" = "a2 a3" ] || die "log a3 after rmi a1: $(fk log a3 2>&1)"
