# Row 6: gc reclaims everything a failed or killed ingest left (empty
# chunk rows and their preallocated files) and still works on a full disk:
# it frees DIR/reserve first, so it has room to commit.
. "$(dirname "$0")/../cli/lib.sh"
q() { sqlite3 "$1/catalog.db" "$2"; }
empty_rows() { q "$1" "SELECT count(*) FROM chunk WHERE used <= 64"; }

# ---- killed ingests: empty chunk rows, then gc ----
base_store
head -c 48M /dev/urandom >big           # incompressible: 48 chunks of 1 MiB
for i in 1 2 3; do
    "$FORKCTL" --store "$TESTDIR/store" --quiet ingest --tag big$i --memory big --vmstate vm >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 400); do          # until it has made a few chunks
        [ "$(ls store/chunks | wc -l)" -ge $((4 * i + 2)) ] && break
        sleep 0.01
    done
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
done
before=$(empty_rows store)
[ "$before" -ge 3 ] || skip "the ingests finished before they were killed ($before empty chunks)"
fk verify >out 2>err || die "verify after killed ingests: $(cat err)"
grep -q "empty chunk files hold" err || die "verify is silent about $before empty chunks: $(cat err)"
fk rmi base >/dev/null
fk gc >/dev/null
[ "$(empty_rows store)" -le 1 ] || die "gc left $(empty_rows store) empty chunk rows (of $before)"
[ "$(q store "SELECT count(*) FROM chunk")" -le 1 ] || die "gc left chunks of a store with no snapshot: $(q store 'SELECT id, used FROM chunk')"
[ "$(ls store/chunks | wc -l)" -le 1 ] || die "gc left chunk files: $(ls store/chunks)"
[ "$(q store "SELECT coalesce(sum(dead_bytes), 0) FROM chunk_usage")" = 0 ] || die "dead chunk bytes after gc"
fk verify >/dev/null
fk ingest --tag again --memory m --vmstate vm >/dev/null
fk restore again --out r >/dev/null
same r/memory.bin m

# ---- a full disk: a failed ingest, then 100% full, then gc ----
[ "$(id -u)" = 0 ] || { echo "not root: the full-disk part is skipped"; exit 0; }
mkdir -p small
mount -t tmpfs -o size=40m tmpfs small 2>/dev/null || { echo "cannot mount tmpfs: full-disk part skipped"; exit 0; }
trap 'umount -l "$TESTDIR/small" 2>/dev/null || true' EXIT
s=small/store
S() { "$FORKCTL" --store "$s" "$@"; }
S init --chunk-size 1M >/dev/null
S --quiet ingest --tag s00 --memory m --vmstate vm
rc=0
S ingest --tag full --memory big --vmstate vm >/dev/null 2>err || rc=$?
[ $rc -ne 0 ] || die "a 48 MiB ingest fit in 40 MiB"
grep -Eq "No space left|disk full" err || die "unclear ENOSPC: $(cat err)"
dd if=/dev/zero of=small/filler bs=64k status=none 2>/dev/null || true   # now 100% full
avail0=$(df --output=avail -k small | tail -n 1)
[ "$avail0" -lt 64 ] || die "the disk is not full ($avail0 KiB free)"
empty=$(empty_rows "$s")
S gc >out 2>err || die "gc on a full disk failed: $(cat err)"
avail1=$(df --output=avail -k small | tail -n 1)
[ "$avail1" -gt $((avail0 + 8192)) ] || die "gc on a full disk freed only $((avail1 - avail0)) KiB ($empty empty chunks)"
[ "$(empty_rows "$s")" -le 1 ] || die "gc left $(empty_rows "$s") empty chunk rows on a full disk"
S verify >/dev/null
S --quiet restore s00 --out r0
same r0/memory.bin m
rm -f small/filler
S --quiet gc
[ -e "$s/reserve" ] || die "gc did not make its reserve again"
head -c 1M /dev/urandom >m2
S --quiet ingest --tag s01 --memory m2 --vmstate vm
echo "full disk: gc freed $((avail1 - avail0)) KiB ($empty empty chunks)"
