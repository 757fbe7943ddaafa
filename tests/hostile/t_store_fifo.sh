# Row 7 (FIFO): a store file replaced by a FIFO (chunk file, lock file,
# catalog) is damage named in the message, never a blocking open.
. "$(dirname "$0")/../cli/lib.sh"
base_store
chunk=$(ls "$TESTDIR"/store/chunks/*.chunk | head -n 1)
mv "$chunk" chunk.orig
mkfifo "$chunk"
expect_fail 5 "chunk file $chunk is not a regular file \(a FIFO\)" timeout 10 "$FORKCTL" --store "$TESTDIR/store" verify
expect_fail 5 "chunk file $chunk is not a regular file \(a FIFO\)" timeout 10 "$FORKCTL" --store "$TESTDIR/store" restore base --out r
[ -z "$(ls -A r 2>/dev/null)" ] || die "a failed restore left files: $(ls -A r)"
timeout 20 "$FORKCTL" --store "$TESTDIR/store" gc >/dev/null 2>&1 || true
[ -p "$chunk" ] || die "gc removed the FIFO (a named chunk file)"
rm "$chunk"
mv chunk.orig "$chunk"
for f in lock gc.lock; do
    mv "store/$f" "$f.orig"
    mkfifo "store/$f"
    expect_fail 5 "store/$f is not a regular file \(a FIFO\)" timeout 10 "$FORKCTL" --store "$TESTDIR/store" ingest --tag x --memory m --vmstate vm
    rm "store/$f"
    mv "$f.orig" "store/$f"
done
fk sql "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null 2>&1 || true
mv store/catalog.db cat.orig
mkfifo store/catalog.db
expect_fail 5 "catalog.db is not a regular file" timeout 10 "$FORKCTL" --store "$TESTDIR/store" images
rm store/catalog.db
mv cat.orig store/catalog.db
fk restore base --out ok >/dev/null
same ok/memory.bin m
