# forkctl tag OLD NEW: renames one snapshot; lineage, contents and children
# follow; a taken, unknown or invalid name is refused and changes nothing.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
gen g --size 4M --snapshots 3 --dirty 5 --seed 6
fk init >/dev/null
fk ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
fk ingest --tag s01 --parent s00 --memory g/01/memory.diff --diff --vmstate g/01/vmstate >/dev/null
fk ingest --tag s02 --parent s01 --memory g/02/memory.diff --diff --vmstate g/02/vmstate >/dev/null
created=$(fk info s01 --json | jq .created_ms)

[ "$(fk tag s01 middle)" = "renamed s01 to middle" ] || die "tag output"
[ "$(fk sql "SELECT tag FROM snapshot ORDER BY id" --csv | tail -n +2 | xargs)" = "s00 middle s02" ] || die "tags after rename"
[ "$(fk info s02 --json | jq -c .chain)" = '["s00","middle","s02"]' ] || die "child's chain: $(fk info s02 --json | jq -c .chain)"
[ "$(fk info middle --json | jq -c '[.parent, .children, .created_ms]')" = "[\"s00\",[\"s02\"],$created]" ] || die "renamed snapshot's info"
fk restore middle --out r1 >/dev/null
same r1/memory.bin g/01/memory.full
same r1/vmstate g/01/vmstate
fk restore s02 --out r2 >/dev/null
same r2/memory.bin g/02/memory.full
expect_fail 3 "s01 not found" fk restore s01 --out r3
# The new name works as a parent.
fk ingest --tag s02b --parent middle --memory g/02/memory.diff --diff --vmstate g/02/vmstate >/dev/null
fk restore s02b --out r4 >/dev/null
same r4/memory.bin g/02/memory.full
[ "$(fk tag s02b s03 --json | jq -c .)" = '{"old":"s02b","new":"s03"}' ] || die "tag --json"

# Refusals leave the store as it was.
before=$(store_state)
expect_fail 1 "s02 already exists" fk tag s00 s02
expect_fail 1 "already exists" fk tag s00 s00
expect_fail 3 "nope not found" fk tag nope x
expect_fail 2 "tag.*-bad" fk tag s00 -- -bad
expect_fail 2 "tag" fk tag s00 'a/b'
expect_fail 2 "tag" fk tag s00 "$(printf 'x%.0s' $(seq 129))"
expect_fail 2 "give OLD and NEW" fk tag s00
expect_fail 2 "give OLD and NEW" fk tag s00 a b
[ "$(store_state)" = "$before" ] || die "a refused rename changed the store"
fk tag s00 "$(printf 'x%.0s' $(seq 128))" >/dev/null || die "a 128-character tag is valid"
