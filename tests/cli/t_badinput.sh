# Bad input gets a clear one-line error, a documented exit code, and
# changes nothing in the store.
. "$(dirname "$0")/lib.sh"
fk init >/dev/null
head -c 65536 /dev/urandom >m.full
head -c 20000 /dev/urandom >vm
fk ingest --tag base --memory m.full --vmstate vm >/dev/null
before=$(store_state)

expect_fail 3 "memory file nope: No such file" fk ingest --tag t1 --memory nope --vmstate vm
head -c 5000 /dev/urandom >odd
expect_fail 2 "not a multiple of the 4096-byte page size" fk ingest --tag t1 --memory odd --vmstate vm
expect_fail 2 "diff needs --parent" fk ingest --tag t1 --memory m.full --diff --vmstate vm
truncate -s 131072 big.diff
expect_fail 2 "must have its parent's logical size" fk ingest --tag t1 --parent base --memory big.diff --diff --vmstate vm
expect_fail 3 "parent snapshot nosuch not found" fk ingest --tag t1 --parent nosuch --memory m.full --vmstate vm
expect_fail 1 "tag base already exists" fk ingest --tag base --memory m.full --vmstate vm
expect_fail 2 "invalid tag '../x'.*\[A-Za-z0-9._\+-\]" fk ingest --tag ../x --memory m.full --vmstate vm
expect_fail 2 "invalid tag" fk ingest --tag '-x' --memory m.full --vmstate vm
expect_fail 2 "tag too long" fk ingest --tag "$(printf 'a%.0s' $(seq 200))" --memory m.full --vmstate vm
cp m.full unreadable && chmod 000 unreadable
if [ "$(id -u)" != 0 ]; then
    expect_fail 1 "Permission denied" fk ingest --tag t1 --memory unreadable --vmstate vm
fi
expect_fail 2 "not a regular file" fk ingest --tag t1 --memory . --vmstate vm
expect_fail 2 "artifact name" fk ingest --tag t1 --memory m.full --vmstate vm --file ../evil=vm
[ "$(store_state)" = "$before" ] || die "a failed ingest changed the store"

mkdir notastore
expect_fail 3 "not a forkstore store" "$FORKCTL" --store notastore images
expect_fail 3 "not found" fk restore nosuch --out o
expect_fail 3 "not found" fk rmi nosuch
expect_fail 2 "--out DIR is required" fk restore base
expect_fail 2 "unknown command" fk frobnicate
# A FIFO as input is refused at once (opening it must not wait for a writer).
mkfifo fifo
expect_fail 2 "not a regular file" timeout 10 "$FORKCTL" --store "$TESTDIR/store" ingest --tag f --memory fifo --vmstate fifo
[ "$(store_state)" = "$before" ] || die "a failed command changed the store"
