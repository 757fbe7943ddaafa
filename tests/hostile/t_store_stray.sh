# Row 1: a crash between creating a chunk file and committing its row
# leaves a file no catalog row names. The next ingest that needs a new
# chunk must work at once (chunk ids are never reused), verify must say
# the stray is there (a note, exit 0), gc removes it. The long version
# kills ingests with SIGKILL and checks that the next ingest always works.
. "$(dirname "$0")/../cli/lib.sh"
base_store
q() { sqlite3 "$TESTDIR/store/catalog.db" "$@"; }
# The id the next chunk would get: past every row and past meta.next_chunk_id.
next=$(q "SELECT max((SELECT coalesce(max(id), 0) + 1 FROM chunk),
                     coalesce((SELECT value FROM meta WHERE key = 'next_chunk_id'), 0))")
stray=$(printf '%s/store/chunks/%08x.chunk' "$TESTDIR" "$next")
cp "$(ls "$TESTDIR"/store/chunks/*.chunk | head -n 1)" "$stray"
head -c 3M /dev/urandom >big          # incompressible: needs new 1 MiB chunks
fk ingest --tag after --memory big --vmstate vm >/dev/null 2>err || die "ingest refused after a stray: $(cat err)"
fk restore after --out r1 >/dev/null
same r1/memory.bin big
# What a crash leaves now: an id reserved (meta.next_chunk_id moved past
# it), its file renamed into place, its row never committed.
hw=$(q "SELECT max((SELECT coalesce(max(id), 0) + 1 FROM chunk),
                   coalesce((SELECT value FROM meta WHERE key = 'next_chunk_id'), 0))")
q "UPDATE meta SET value = $hw + 1 WHERE key = 'next_chunk_id'"
stray2=$(printf '%s/store/chunks/%08x.chunk' "$TESTDIR" "$hw")
cp "$(ls "$TESTDIR"/store/chunks/*.chunk | head -n 1)" "$stray2"
fk ingest --tag after2 --memory m --vmstate vm >/dev/null 2>err || die "ingest refused after a stray: $(cat err)"
head -c 2M /dev/urandom >big2
fk ingest --tag after3 --memory big2 --vmstate vm >/dev/null 2>err || die "ingest refused after a stray: $(cat err)"
fk verify >out 2>err || die "verify fails with a stray: $(cat err)"
grep -q "chunk file $stray2 is named by no catalog row" err || die "verify is silent about the stray $stray2: $(cat out err)"
fk gc >/dev/null
for f in store/chunks/*.chunk; do
    id=$((16#$(basename "$f" .chunk)))
    [ "$(q "SELECT count(*) FROM chunk WHERE id = $id")" = 1 ] || die "gc left stray $f"
done
fk verify >out 2>err
! grep -q "note:" err || die "verify still notes leftovers after gc: $(cat err)"

# Real crashes: SIGKILL ingests at random moments (1 MiB chunks, new data
# each time); the next ingest (not killed) must never be refused.
kills=${HOSTILE_LONG:+60}
kills=${kills:-8}
for i in $(seq 1 "$kills"); do
    head -c 2M /dev/urandom >k.mem
    "$FORKCTL" --store "$TESTDIR/store" --quiet ingest --tag "k$i" --memory k.mem --vmstate vm >/dev/null 2>&1 &
    pid=$!
    sleep "0.0$(printf %02d $((RANDOM % 40)))"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    head -c 2M /dev/urandom >n.mem
    fk --quiet ingest --tag "n$i" --memory n.mem --vmstate vm 2>err || die "ingest refused after kill $i: $(cat err)"
done
fk verify >/dev/null 2>err || die "verify after the kills: $(cat err)"
fk restore "n$kills" --out r2 >/dev/null
same r2/memory.bin n.mem
echo "$kills kills, every following ingest accepted"
