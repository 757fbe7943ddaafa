# Remote gc, prune and verify against a real S3 server (Ceph radosgw,
# tools/s3/rgw.sh), and what two concurrent pushes of one tag do.
#
# The main loop: two stores push new leaves of their own base while a
# remote prune and a remote gc run at the same time, with margins of about
# a second so that packs are marked and deleted within the run; some leaves
# of b reuse the pages of a leaf of a that was pruned a few rounds before
# (so b must not use packs a gc has marked and may be deleting). After each
# round a third store pulls both new leaves and restores them byte for byte,
# and at the end every kept snapshot pulls into an empty store, remote verify
# passes, gc has deleted packs and merged indexes. ROUNDS (default 10; make
# test-remote runs 200).
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
rgw_up fleet
ROUNDS=${ROUNDS:-10}
[ -n "${REMOTE_LONG:-}" ] && ROUNDS=${REMOTE_LONG_ROUNDS:-200}
# Margins: marked by one run, deleted by a run at least 1 s later (the
# server's Date has whole seconds, so in practice 1-2 s).
GC="--interval 1s --min-age 1s --lag 0.3s"

f() { local s=$1; shift; "$FORKCTL" --store "$TESTDIR/$s" "$@"; }

# mkmem OUT SEED: the base memory (4 MiB, a quarter zero pages) with 48
# pages overwritten by bytes from SEED.
python3 - <<'EOF'
import random
r = random.Random(7)
b = bytearray()
for i in range(1024):
    b += bytes(4096) if i % 4 == 3 else r.randbytes(4096)
open('base.mem', 'wb').write(b)
EOF
mkmem() {
    python3 - "$1" "$2" <<'EOF'
import random, sys
b = bytearray(open('base.mem', 'rb').read())
r = random.Random(sys.argv[2])
for _ in range(48):
    p = r.randrange(1024)
    b[p * 4096:(p + 1) * 4096] = r.randbytes(4096)
open(sys.argv[1], 'wb').write(b)
EOF
}
head -c 3000 /dev/urandom >vm
for s in a b c; do
    f $s init --chunk-size 1M >/dev/null
    f $s remote add origin s3://fleet/g --endpoint "$EP" >/dev/null
done
f a ingest --tag abase --memory base.mem --vmstate vm >/dev/null
f b ingest --tag bbase --memory base.mem --vmstate vm >/dev/null
f a push abase >/dev/null
f b push bbase >/dev/null

deleted=0 marked=0 merged=0 restarts=0
for r in $(seq 1 "$ROUNDS"); do
    mkmem a$r.mem "a$r"
    # Every third leaf of b holds the pages of a leaf of a pruned one to
    # three rounds ago: its packs unreferenced, marked, perhaps being
    # deleted by the gc running beside this push.
    # Such a leaf also carries 6 MiB of new pages in a file whose name sorts
    # after memory: its push decides to use those packs, then uploads for a
    # while before its manifest, as the gc beside it lists and deletes.
    extra=
    if [ $((r % 3)) = 0 ] && [ $r -gt 6 ]; then
        mkmem b$r.mem "a$((r - 4 - (r / 3) % 3))"
        head -c 6M /dev/urandom >b$r.rootfs
        extra="--file rootfs=b$r.rootfs"
    else
        mkmem b$r.mem "b$r"
    fi
    f a ingest --tag a$r --parent abase --memory a$r.mem --vmstate vm >/dev/null
    f b ingest --tag b$r --parent bbase --memory b$r.mem --vmstate vm $extra >/dev/null
    f a push a$r --json >pa.json 2>pa.err &
    pa=$!
    f b push b$r --json >pb.json 2>pb.err &
    pb=$!
    f c remote prune --keep-last 3 --json >pr.json 2>pr.err &
    pp=$!
    f c remote gc $GC --json >gc.json 2>gc.err &
    pg=$!
    wait $pa || die "round $r: push a failed: $(cat pa.err)"
    wait $pb || die "round $r: push b failed: $(cat pb.err)"
    wait $pp || die "round $r: remote prune failed: $(cat pr.err)"
    wait $pg || die "round $r: remote gc failed: $(cat gc.err)"
    deleted=$((deleted + $(jq .packs_deleted gc.json)))
    marked=$((marked + $(jq .packs_marked gc.json)))
    merged=$((merged + $(jq .indexes_merged gc.json)))
    restarts=$((restarts + $(jq .restarts pa.json) + $(jq .restarts pb.json)))
    # The third store pulls the new leaves: byte for byte what was pushed.
    f c pull a$r b$r >/dev/null 2>pc.err || die "round $r: pull failed: $(cat pc.err)"
    for t in a$r b$r; do
        rm -rf ro
        f c restore $t --out ro >/dev/null
        cmp ro/memory.bin $t.mem || die "round $r: $t pulled differs from what was pushed"
        cmp ro/vmstate vm || die "round $r: $t's vmstate differs"
        [ ! -e $t.rootfs ] || cmp ro/rootfs $t.rootfs || die "round $r: $t's rootfs differs"
    done
    # A pause now and then, so that marks age past the interval and a
    # later run deletes.
    [ $((r % 3)) = 0 ] && sleep 1
done
# Two more gc runs at least the interval apart delete what the prune freed.
f c remote prune --keep-last 3 >/dev/null
f c remote gc $GC --json >gc.json
sleep 2.2
f c remote gc $GC --json >gc.json
deleted=$((deleted + $(jq .packs_deleted gc.json)))
echo "rounds $ROUNDS: packs deleted $deleted, marked $marked, index objects merged $merged, push restarts $restarts" |
    tee -a "${GC_STATS:-/dev/null}" >&2
[ "$deleted" -gt 0 ] || die "remote gc deleted no pack in $ROUNDS rounds"
[ "$merged" -gt 0 ] || die "remote gc merged no index object"
[ "$(keys g/index/ | wc -l)" -le 1 ] || die "index objects after a quiet gc: $(keys g/index/ | wc -l)"
[ "$(jq .packs_marked gc.json)" = 0 ] || die "a quiet gc left unreferenced packs: $(cat gc.json)"
# Every snapshot the remote keeps pulls into an empty store and restores.
f d init >/dev/null
f d remote add origin s3://fleet/g --endpoint "$EP" >/dev/null
kept=$(keys g/snapshots/ | sed 's#.*/##; s#\.manifest$##')
[ "$(echo "$kept" | wc -l)" = 8 ] || die "kept on the remote: $kept"
f d pull $kept >/dev/null || die "pull of every kept snapshot failed"
for t in $kept; do
    rm -rf ro
    f d restore $t --out ro >/dev/null
    case $t in *base) want=base.mem ;; *) want=$t.mem ;; esac
    cmp ro/memory.bin $want || die "$t differs after gc"
done
f c remote verify --json >v.json || die "remote verify after gc: $(cat v.json)"
[ "$(jq .packs_checked v.json)" = "$(jq .packs v.json)" ] && [ "$(jq .unreachable_pages v.json)" = 0 ] ||
    die "remote verify: $(cat v.json)"
# Dry runs change nothing; a second gc while one holds the lock is refused.
before=$(keys g/ | sort | md5sum)
f c remote gc $GC --dry-run >/dev/null
f c remote prune --keep-last 1 --dry-run >/dev/null
[ "$(keys g/ | sort | md5sum)" = "$before" ] || die "a dry run changed the bucket"
printf '{}' >lock
curl -sf -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $(sha lock)" --data-binary @lock "$EP/fleet/g/gc/lock" >/dev/null
expect_fail 4 "another remote gc holds" f c remote gc $GC
f c remote gc $GC --break-lock >/dev/null || die "--break-lock"
[ -z "$(keys g/gc/lock)" ] || die "gc left its lock"
expect_fail 2 "give at least one rule" f c remote prune
expect_fail 2 "does not take --sample" f c remote gc --sample 5

# remote verify finds damage: a page flipped inside a pack, and a missing
# pack, each naming the snapshots it reaches (exit 5).
pack=$(keys g/packs/ | head -1)
s3curl -o good.pack "$EP/fleet/$pack"
cp good.pack bad.pack
printf '\x55' | dd of=bad.pack bs=1 seek=$(( $(stat -c %s bad.pack) - 10 )) conv=notrunc 2>/dev/null
put() { curl -sf -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $(sha "$2")" --data-binary @"$2" "$EP/fleet/$1" >/dev/null; }
put "$pack" bad.pack
expect_fail 5 "does not match its name" f c remote verify
f c remote verify --json >v.json && die "verify passed a damaged pack"
[ "$(jq .bad_packs v.json)" = 1 ] && [ "$(jq '.affected_snapshots | length' v.json)" -ge 1 ] || die "verify: $(cat v.json)"
curl -sf -X DELETE --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$EP/fleet/$pack" >/dev/null
expect_fail 5 "its pack is missing" f c remote verify
put "$pack" good.pack
f c remote verify --sample 50 >/dev/null || die "verify --sample after repair"

# Two pushes of one tag at once: with the same snapshot both succeed and
# one manifest results; with different snapshots exactly one wins and the
# other is refused with a clear error, the manifest being the winner's.
for s in x y; do
    f $s init >/dev/null
    f $s remote add origin s3://fleet/same --endpoint "$EP" >/dev/null
done
f x ingest --tag t --memory a1.mem --vmstate vm >/dev/null
f y ingest --tag t --memory a1.mem --vmstate vm >/dev/null
f x push t >/dev/null 2>px.err & px=$!
f y push t >/dev/null 2>py.err & py=$!
wait $px || die "same snapshot, push x: $(cat px.err)"
wait $py || die "same snapshot, push y: $(cat py.err)"
f x ingest --tag u --memory a2.mem --vmstate vm >/dev/null
f y ingest --tag u --memory b2.mem --vmstate vm >/dev/null
f x push u >/dev/null 2>px.err & px=$!
f y push u >/dev/null 2>py.err & py=$!
rx=0; ry=0
wait $px || rx=$?
wait $py || ry=$?
[ $((rx == 0)) != $((ry == 0)) ] || die "two different snapshots u: exits $rx and $ry ($(cat px.err py.err))"
grep -q "different snapshot u" px.err py.err || die "the loser's message: $(cat px.err py.err)"
win=x; [ $rx = 0 ] || win=y
f z init >/dev/null
f z remote add origin s3://fleet/same --endpoint "$EP" >/dev/null
f z pull u >/dev/null
rm -rf ro
f z restore u --out ro >/dev/null
[ $win = x ] && want=a2.mem || want=b2.mem
cmp ro/memory.bin $want || die "the manifest of u is not the winner's"

# A pull keeps the snapshot's Firecracker and vmstate format versions.
f x ingest --tag v --memory a3.mem --vmstate vm >/dev/null
sqlite3 "$TESTDIR/x/catalog.db" "UPDATE snapshot SET fc_version = '1.12.1', format_version = '6.0.0' WHERE tag = 'v'"
f x push v >/dev/null
f z pull v >/dev/null
[ "$(f z info v --json | jq -r '.firecracker_version + " " + .format_version')" = "1.12.1 6.0.0" ] ||
    die "versions after pull: $(f z info v --json | jq -c '[.firecracker_version, .format_version]')"
echo ok
