# forkctl recover: a 12-snapshot chain (Full root with a rootfs, Diffs, a
# Full image mid-chain, extra files, a rename, an rmi) comes back after
# catalog.db* is deleted: every snapshot restores byte-identical to its
# source, with its tag, parent and files; verify is clean; the store takes
# new ingests and a gc afterwards. Then damage: a truncated and a garbled
# catalog, a damaged chunk record, a missing and a damaged manifest: recover
# names what it could not recover (which snapshots, which pages) and
# recovers the rest.
. "$(dirname "$0")/lib.sh"
gen g --size 4M --snapshots 12 --dirty 4 --seed 11 --rootfs 1M
head -c 10000 /dev/urandom >notes
fk init --chunk-size 1M >/dev/null
fk ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate --file rootfs=g/rootfs.ext4 >/dev/null
for i in 01 02 03 04 05 06 07 08 09 10 11; do
    p=$(printf '%02d' $((10#$i - 1)))
    case $i in
        05) fk ingest --tag "s$i" --parent "s$p" --memory "g/$i/memory.full" --vmstate "g/$i/vmstate" \
                --file notes=notes >/dev/null ;;     # a Full image with a parent
        *) fk ingest --tag "s$i" --parent "s$p" --memory "g/$i/memory.diff" --diff --vmstate "g/$i/vmstate" >/dev/null ;;
    esac
done
fk tag s04 four >/dev/null                          # manifests keep the old tag: the override must win
fk ingest --tag tmp --parent s11 --memory g/11/memory.diff --diff --vmstate g/11/vmstate >/dev/null
fk rmi tmp >/dev/null                               # its id must never come back
fk rmi s09 >/dev/null                               # s10 (a delta against s09) now hangs from s08
[ -f "$TESTDIR/store/manifests/000000000000000a.removed" ] || die "rmi left no tombstone for s09 (id 10)"
# A snapshot without a manifest (as one from before manifests): gc writes it.
rm "$TESTDIR/store/manifests/0000000000000002.manifest"
fk gc >/dev/null
[ -f "$TESTDIR/store/manifests/0000000000000002.manifest" ] || die "gc did not write the missing manifest of s01"

tags="s00 s01 s02 s03 four s05 s06 s07 s08 s10 s11"
src() { case $1 in four) echo 04 ;; s12) echo 11 ;; *) echo "${1#s}" ;; esac; }
check_restores() {   # check_restores TAG...: each restores byte-identical to its source
    for t in "$@"; do
        rm -rf "out_$t"
        fk restore "$t" --out "out_$t" >/dev/null || die "restore $t failed after recover"
        same "out_$t/memory.bin" "g/$(src "$t")/memory.full"
        same "out_$t/vmstate" "g/$(src "$t")/vmstate"
    done
    if [[ " $* " == *" s00 "* ]]; then same out_s00/rootfs g/rootfs.ext4; fi
    if [[ " $* " == *" s05 "* ]]; then same out_s05/notes notes; fi
}
lineage() {
    fk sql "SELECT s.id, s.tag, coalesce(p.tag, '-'), s.created_ms, s.stored_bytes, s.new_pages FROM snapshot s
            LEFT JOIN snapshot p ON p.id = s.parent_id ORDER BY s.id" --csv
    fk sql "SELECT s.tag, a.name, a.size FROM artifact a JOIN snapshot s ON s.id = a.snapshot_id ORDER BY s.id, a.name" --csv
    fk sql "SELECT tag, artifact, pgno, hex(p.hash) FROM snapshot_pages sp JOIN page_place p ON p.id = sp.page_id
            ORDER BY snapshot_id, artifact, pgno" --csv | sha256sum
    fk log s11 | sed 's/, [^,]* ago)/)/'
}
check_restores $tags
lineage >lineage.before
cp -a "$TESTDIR/store" pristine
reset_store() { rm -rf "$TESTDIR/store"; cp -a pristine "$TESTDIR/store"; }

# 1. catalog.db, -wal and -shm deleted.
rm -f "$TESTDIR/store"/catalog.db*
expect_fail 3 "not a forkstore store" fk images
fk recover >rec.out || die "recover exited $? on an intact chain: $(cat rec.out)"
grep -q "ok: 11 snapshots" rec.out || die "recover did not report 11 snapshots: $(cat rec.out)"
lineage >lineage.after
diff lineage.before lineage.after >/dev/null || die "lineage, files or maps differ after recover: $(diff lineage.before lineage.after | head)"
check_restores $tags
fk verify | grep -q "verify: ok" || die "verify after recover: $(fk verify 2>&1)"
expect_fail 1 "passes its checks" fk recover   # a healthy catalog is left alone
# The store writes again: a new child, a new id above every old one, a gc.
fk ingest --tag s12 --parent s11 --memory g/11/memory.full --vmstate g/11/vmstate >/dev/null
id=$(fk sql "SELECT id FROM snapshot WHERE tag = 's12'" --csv | tail -n 1)
[ "$id" -gt 13 ] || die "s12 got id $id: a removed snapshot's id was reused"
fk gc >/dev/null
[ -f "$TESTDIR/store/manifests/000000000000000a.removed" ] || die "gc removed the tombstone s10's delta needs"
[ ! -e "$TESTDIR/store/manifests/000000000000000d.removed" ] || die "gc kept tmp's tombstone nobody needs"
# ... and a second recover after all that still gives the same chain.
rm -f "$TESTDIR/store"/catalog.db*
fk recover >/dev/null
check_restores $tags s12

# 2. A truncated catalog, a garbled one, a 0-byte one: moved aside,
# everything back.
reset_store
truncate -s 8192 "$TESTDIR/store/catalog.db"
rm -f "$TESTDIR/store"/catalog.db-wal "$TESTDIR/store"/catalog.db-shm
fk recover >rec.out || die "recover of a truncated catalog exited $?"
grep -q "kept as .*catalog.db.damaged-" rec.out || die "the damaged catalog was not kept: $(cat rec.out)"
ls "$TESTDIR/store"/catalog.db.damaged-* >/dev/null
lineage >lineage.after
diff lineage.before lineage.after >/dev/null || die "lineage differs after recovering a truncated catalog"
check_restores s00 s11
reset_store
printf 'garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage' |
    dd of="$TESTDIR/store/catalog.db" conv=notrunc 2>/dev/null
rm -f "$TESTDIR/store"/catalog.db-wal "$TESTDIR/store"/catalog.db-shm   # (page 1 may live in the WAL)
fk recover >/dev/null || die "recover of a garbled catalog exited $?"
reset_store
: >"$TESTDIR/store/catalog.db"                # 0 bytes, as a full disk or a bad copy leaves it
rm -f "$TESTDIR/store"/catalog.db-wal "$TESTDIR/store"/catalog.db-shm
fk recover >/dev/null || die "recover of a 0-byte catalog exited $?"
lineage >lineage.after
diff lineage.before lineage.after >/dev/null || die "lineage differs after recovering a garbled catalog"
check_restores s05 s10

# 3. A damaged chunk record holding pages only s11 uses: s11 is refused
# with exactly those pages; the rest comes back.
reset_store
read -r cid off len < <(fk sql "SELECT p.chunk_id, p.off, p.len FROM page_place p JOIN snapshot_pages sp ON sp.page_id = p.id
    GROUP BY p.chunk_id, p.off HAVING min(sp.tag) = 's11' AND max(sp.tag) = 's11'
    AND min(sp.artifact) = 'memory' AND max(sp.artifact) = 'memory' ORDER BY p.off DESC LIMIT 1" --csv |
    tail -n 1 | tr ',' ' ')
[ -n "$off" ] || die "no record used by s11 alone"
want=$(fk sql "SELECT count(*) FROM snapshot_pages sp JOIN page_place p ON p.id = sp.page_id
    WHERE sp.tag = 's11' AND p.chunk_id = $cid AND p.off = $off" --csv | tail -n 1)
pgnos=$(fk sql "SELECT group_concat(pgno, ' ') FROM (SELECT sp.pgno FROM snapshot_pages sp JOIN page_place p ON p.id = sp.page_id
    WHERE sp.tag = 's11' AND sp.artifact = 'memory' AND p.chunk_id = $cid AND p.off = $off ORDER BY sp.pgno)" --csv | tail -n 1)
printf '\xff\xff\xff\xff' | dd of="$TESTDIR/store/chunks/$(printf '%08x' "$cid").chunk" bs=1 seek=$((off + len - 4)) \
    conv=notrunc 2>/dev/null
rm -f "$TESTDIR/store"/catalog.db*
expect_fail 5 "not recovered: s11 \(id 12\): $want pages missing from the chunk files: memory page" fk recover
grep -q "chunk $(printf '%08x' "$cid") offset $off" "$TESTDIR/err" || die "the damaged record is not named: $(cat "$TESTDIR/err")"
first=${pgnos%% *}
grep -q "memory page $first" "$TESTDIR/err" || die "the first missing page ($first) is not named: $(cat "$TESTDIR/err")"
[ "$(grep -c 'not recovered' "$TESTDIR/err")" = 1 ] || die "more than s11 was refused: $(cat "$TESTDIR/err")"
check_restores s00 four s10
expect_fail 3 "not found" fk restore s11 --out x
fk verify | grep -q "verify: ok" || die "verify after a partial recover"
# s11's manifest is kept as .lost, gc leaves it; once the chunk file is
# back (from a backup), a forced recover brings s11 back too.
lost="$TESTDIR/store/manifests/000000000000000c"
[ -f "$lost.lost" ] || die "s11's manifest was not kept as .lost"
fk gc >/dev/null
[ -f "$lost.lost" ] || die "gc deleted the manifest of s11, which recover could not bring back"
cp "pristine/chunks/$(printf '%08x' "$cid").chunk" "$TESTDIR/store/chunks/"
fk recover --force >/dev/null || die "recover --force with the chunk file back exited $?"
[ -f "$lost.manifest" ] || die "s11's manifest is not live again"
check_restores s11

# 3b. The same record with its header garbled: the scan resumes at the
# next record that checks, the same pages are reported, the rest is back.
reset_store
printf '\x00\x00\x00\x01' | dd of="$TESTDIR/store/chunks/$(printf '%08x' "$cid").chunk" bs=1 seek="$off" \
    conv=notrunc 2>/dev/null
rm -f "$TESTDIR/store"/catalog.db*
expect_fail 5 "not recovered: s11 \(id 12\): $want pages missing from the chunk files" fk recover
grep -q "chunk $(printf '%08x' "$cid") offset $off: bad record magic" "$TESTDIR/err" ||
    die "the garbled record header is not named: $(cat "$TESTDIR/err")"
check_restores s10

# 4. A missing manifest in the middle of the delta chain (s06, id 7): s06
# cannot be named, the deltas below it (s07, s08, s10, s11) go with it;
# everything up to s05 comes back.
reset_store
rm "$TESTDIR/store/manifests/0000000000000007.manifest"
rm -f "$TESTDIR/store"/catalog.db*
expect_fail 5 "not recovered: s07 \(id 8\): its page map is a delta against snapshot id 7, whose manifest is missing" fk recover
grep -q "not recovered: s08 (id 9)" "$TESTDIR/err" || die "s08 (delta on s07) not reported: $(cat "$TESTDIR/err")"
check_restores s03 s05
n=$(fk sql "SELECT count(*) FROM snapshot" --csv | tail -n 1)
[ "$n" = 6 ] || die "expected 6 snapshots after losing s06's manifest, got $n"

# 5. A damaged manifest (s02, id 3) beside a truncated catalog that still
# names it: reported by tag, its delta children reported, the rest back.
reset_store
printf 'X' | dd of="$TESTDIR/store/manifests/0000000000000003.manifest" bs=1 seek=120 conv=notrunc 2>/dev/null
expect_fail 5 "checksum mismatch" fk recover --force
grep -q "not recovered: s03 (id 4): its page map is a delta" "$TESTDIR/err" || die "s03 not reported: $(cat "$TESTDIR/err")"
check_restores s00 s01 s05
echo "recover: chain, lineage, tags and every restore came back; damage reported by snapshot and page"
