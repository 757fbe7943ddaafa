# Row 9: a deleted chunk file is damage: exit 5 from restore and verify,
# naming the file.
. "$(dirname "$0")/../cli/lib.sh"
base_store
chunk=$(ls "$TESTDIR"/store/chunks/*.chunk | head -n 1)
mv "$chunk" kept
expect_fail 5 "chunk file $chunk is missing" fk restore base --out r
expect_fail 5 "chunk file $chunk is missing" fk verify
mv kept "$chunk"
fk restore base --out r >/dev/null
same r/memory.bin m
