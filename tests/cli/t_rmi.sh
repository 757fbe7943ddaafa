# rmi of a middle snapshot keeps every descendant restorable byte for byte;
# --cascade removes a subtree; nothing removed stays reachable.
. "$(dirname "$0")/lib.sh"
gen g --size 8M --snapshots 6 --dirty 5 --seed 3
fk init >/dev/null
fk ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
for i in 01 02 03 04 05; do
    p=$(printf '%02d' $((10#$i - 1)))
    fk ingest --tag "s$i" --parent "s$p" --memory "g/$i/memory.diff" --diff --vmstate "g/$i/vmstate" >/dev/null
done
fk rmi s02 >/dev/null
[ "$(fk sql "SELECT p.tag FROM snapshot s JOIN snapshot p ON p.id = s.parent_id WHERE s.tag = 's03'" --csv | tail -n 1)" = s01 ] \
    || die "s03 was not re-parented to s01"
for i in 00 01 03 04 05; do
    fk restore "s$i" --out "r$i" >/dev/null
    same "r$i/memory.bin" "g/$i/memory.full"
    same "r$i/vmstate" "g/$i/vmstate"
done
expect_fail 3 "not found" fk restore s02 --out x
# A child of s04 ingested after the removal still works.
fk ingest --tag s06 --parent s05 --memory g/05/memory.full --vmstate g/05/vmstate >/dev/null
fk rmi --cascade s03 >/dev/null
n=$(fk sql "SELECT count(*) FROM snapshot" --csv | tail -n 1)
[ "$n" = 2 ] || die "cascade left $n snapshots, expected 2 (s00, s01)"
orphans=$(fk sql "SELECT count(*) FROM run WHERE artifact_id NOT IN (SELECT id FROM artifact)" --csv | tail -n 1)
[ "$orphans" = 0 ] || die "page maps of removed snapshots remain"
fk restore s01 --out r01b >/dev/null
same r01b/memory.bin g/01/memory.full
