# forkctl info and diff: lineage, sizes and differing pages, checked
# against the generated files (cmp, od, stat) and against the
# snapshot_stats view; what info says rmi + gc would free is what they free.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
gen g --size 8M --snapshots 6 --dirty 4 --seed 9
fk init >/dev/null
fk ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
for i in 1 2 3 4 5; do
    n=$(printf %02d $i) p=$(printf %02d $((i - 1)))
    fk ingest --tag "s$n" --parent "s$p" --memory "g/$n/memory.diff" --diff --vmstate "g/$n/vmstate" >/dev/null
done
# A branch off s03 (image 05, Full) with an extra file.
head -c 100000 /dev/urandom >extra
fk ingest --tag b05 --parent s03 --memory g/05/memory.full --vmstate g/05/vmstate --file extra=extra >/dev/null
nzpages() { od -An -v -tx8 -w4096 "$1" | grep -c '[1-9a-f]' || true; }
difpages() { { cmp -l "$1" "$2" || true; } | awk '{ print int(($1 - 1) / 4096) }' | uniq; }

# Lineage.
fk info s03 --json >i.json
[ "$(jq -c .chain i.json)" = '["s00","s01","s02","s03"]' ] || die "info chain: $(jq -c .chain i.json)"
[ "$(jq -c .children i.json)" = '["s04","b05"]' ] || die "info children: $(jq -c .children i.json)"
[ "$(jq -r .parent i.json)" = s02 ] && [ "$(jq .depth i.json)" = 3 ] || die "info parent/depth"
[ "$(fk info s00 --json | jq -c '[.parent, .depth, .chain]')" = '[null,0,["s00"]]' ] || die "info of a root"
[ "$(fk info b05 --json | jq -c .children)" = '[]' ] || die "info of a leaf"
fk images --json >images.json
[ "$(jq .created_ms i.json)" = "$(jq '.[] | select(.tag == "s03") | .created_ms' images.json)" ] || die "info created_ms"
fk info s03 >i.txt
grep -q 's00 > s01 > s02 > s03' i.txt && grep -q '^children  *s04 b05$' i.txt || die "info text: $(cat i.txt)"

# Files and sizes from the files themselves.
mem=$(stat -c %s g/03/memory.full) vms=$(stat -c %s g/03/vmstate)
[ "$(jq -c '[.artifacts[] | [.name, .size]]' i.json)" = "[[\"memory\",$mem],[\"vmstate\",$vms]]" ] ||
    die "info artifacts: $(jq -c .artifacts i.json)"
[ "$(jq .logical_bytes i.json)" = $((mem + vms)) ] || die "info logical_bytes"
[ "$(jq '.artifacts[0].nonzero_bytes' i.json)" = $(($(nzpages g/03/memory.full) * 4096)) ] || die "info memory nonzero_bytes"
# memory pages shared with the parent: non-zero in s03 and not different from s02.
shared=$(comm -23 <(od -An -v -tx8 -w4096 g/03/memory.full | awk '/[1-9a-f]/ { print NR - 1 }' | sort) \
                  <(difpages g/02/memory.full g/03/memory.full | sort) | wc -l)
vshared=$(fk diff s02 s03 --json | jq '.artifacts[] | select(.name == "vmstate") | .pages')
[ "$vshared" -gt 0 ] || die "test premise: vmstate changes"
mshared=$(($(jq .shared_with_parent_bytes i.json) - 0))
[ "$mshared" -ge $((shared * 4096)) ] && [ "$mshared" -le $((shared * 4096 + vms)) ] ||
    die "info shared_with_parent_bytes $mshared, memory alone shares $((shared * 4096))"
[ "$(fk info b05 --json | jq '.artifacts[] | select(.name == "extra") | .size')" = 100000 ] || die "info: extra file"

# info computes in C what the snapshot_stats view computes in SQL.
for t in s00 s01 s02 s03 s04 s05 b05; do
    a=$(fk info "$t" --unique --json | jq -r '[.tag, .parent // "", .logical_bytes, .nonzero_bytes, .shared_with_parent_bytes,
                                      .unique_bytes, .stored_bytes] | map(tostring) | join(",")')
    b=$(fk sql "SELECT tag, parent_tag, logical_bytes, nonzero_bytes, shared_with_parent_bytes, unique_bytes,
                stored_bytes FROM snapshot_stats WHERE tag = '$t'" --csv | tail -n 1)
    [ "$a" = "$b" ] || die "info and snapshot_stats disagree on $t: $a vs $b"
done

# Without --runs, sizes come from the map nodes' page counts and the deltas
# between a snapshot and its parent; --runs reads the whole maps: the
# same figures, and the runs counted.
for t in s00 s03 s05 b05; do
    a=$(fk info "$t" --json | jq -c 'del(.artifacts[].runs)') b=$(fk info "$t" --runs --json | jq -c 'del(.artifacts[].runs)')
    [ "$a" = "$b" ] || die "info $t and info $t --runs disagree: $a vs $b"
done
[ "$(fk info s03 --json | jq -c '[.artifacts[].runs] | unique')" = '[null]' ] || die "info without --runs counted runs"
[ "$(fk info s03 --runs --json | jq '[.artifacts[] | .runs > 0] | all')" = true ] || die "info --runs: no runs"
fk info s03 | grep -q '^memory .* -$' || die "info text without --runs: $(fk info s03)"

# diff: the differing pages are exactly those cmp finds.
for pair in "s01 s02" "s00 s05" "s04 b05" "s05 b05"; do
    set -- $pair
    fa=g/${1#[sb]}/memory.full fb=g/${2#[sb]}/memory.full
    fk diff "$1" "$2" --json >d.json
    want=$(difpages "$fa" "$fb")
    got=$(jq -r '.artifacts[] | select(.name == "memory") | .ranges[] | "\(.offset) \(.length)"' d.json |
          while read -r off len; do seq $((off / 4096)) $(((off + len) / 4096 - 1)); done)
    [ "$got" = "$want" ] || die "diff $1 $2: pages differ from cmp's ($(echo "$got" | wc -l) vs $(echo "$want" | grep -c . || true))"
    [ "$(jq '.artifacts[] | select(.name == "memory") | .pages' d.json)" = "$(echo "$want" | grep -c . || true)" ] ||
        die "diff $1 $2: page count"
    # Ranges are merged: no two touch.
    jq -r '.artifacts[] | .ranges | . as $r | range(1; length) | select($r[.].offset == $r[. - 1].offset + $r[. - 1].length)' d.json |
        grep -q . && die "diff $1 $2: adjacent ranges not merged"
done
[ "$(fk diff s05 b05 --json | jq -c '[.artifacts[] | [.name, .pages, .size_a]]')" = '[["extra",25,null],["memory",0,'"$(stat -c %s g/05/memory.full)"'],["vmstate",0,'"$(stat -c %s g/05/vmstate)"']]' ] ||
    die "diff s05 b05: $(fk diff s05 b05 --json | jq -c .artifacts)"
[ "$(fk diff s02 s02 --json | jq .pages)" = 0 ] || die "diff of a snapshot with itself"
fk diff s01 s02 | grep -q "^memory: $(difpages g/01/memory.full g/02/memory.full | wc -l) pages differ" || die "diff text"
expect_fail 3 "nope not found" fk diff s01 nope
expect_fail 2 "two TAGs" fk diff s01
expect_fail 3 "not found" fk info nope
expect_fail 2 "tag" fk info 'bad/tag'
expect_fail 2 "exactly one TAG" fk info

# What info says rmi + gc frees, they free: s04's unique pages.
u=$(fk info s04 --unique --json)
[ "$(fk info s04 --json | jq .unique_pages)" = null ] || die "info without --unique computed unique pages"
upages=$(echo "$u" | jq .unique_pages) ustored=$(echo "$u" | jq .unique_stored_bytes)
[ "$upages" -gt 0 ] || die "test premise: s04 holds unique pages"
[ "$(fk stats --json | jq .reclaimable_bytes)" = 0 ] || die "stats: reclaimable before rmi"
fk rmi s04 >/dev/null
# Pages sit in block records of up to 8; a record some other snapshot
# still uses stays until compaction, so info's figure is an upper bound
# of what stats calls reclaimable now and of what a compacting gc frees.
recl=$(fk stats --json | jq .reclaimable_bytes)
[ "$recl" -le "$ustored" ] || die "stats reclaimable $recl > info's unique_stored_bytes $ustored"
live0=$(fk sql --json "SELECT sum(live_bytes) AS u FROM chunk_usage" | jq '.[0].u')
g=$(fk gc --json --threshold 1)
[ "$(echo "$g" | jq .pages_freed)" = "$upages" ] || die "gc freed a different number of pages than info's unique_pages"
live1=$(fk sql --json "SELECT sum(live_bytes) AS u FROM chunk_usage" | jq '.[0].u')
dead1=$(fk sql --json "SELECT sum(dead_bytes) AS u FROM chunk_usage" | jq '.[0].u')
[ "$dead1" = 0 ] || die "after a compacting gc, chunk files still hold $dead1 dead bytes"
[ $((live0 - live1)) -gt 0 ] && [ $((live0 - live1)) -le "$ustored" ] ||
    die "gc freed $((live0 - live1)) live bytes, info said at most $ustored"
[ "$(fk stats --json | jq .reclaimable_bytes)" = 0 ] || die "stats: reclaimable after gc"
fk restore s05 --out r >/dev/null
same r/memory.bin g/05/memory.full

# stats --prometheus: node_exporter textfile format, the same numbers as --json.
fk stats --prometheus >prom.txt
fk stats --json >stats.json
awk -v store="$TESTDIR/store" '
    /^# HELP forkstore_[a-z_]+ [^ ]/ { help[$3] = 1; next }
    /^# TYPE forkstore_[a-z_]+ gauge$/ { if (!($3 in help)) { print "TYPE before HELP: " $0; bad = 1 } type[$3] = 1; next }
    {   split($1, m, "{")
        if ($0 !~ /^forkstore_[a-z_]+\{store="[^"]*"\} [0-9.e+-]+$/ || !(m[1] in type) || index($0, "store=\"" store "\"") == 0) {
            print "bad line: " $0; bad = 1 }
        n++ }
    END { if (n < 10) { print "only " n " metrics"; bad = 1 } exit bad }' prom.txt || die "prometheus format: $(cat prom.txt)"
for k in snapshots logical_bytes stored_bytes reclaimable_bytes chunk_disk_bytes referenced_pages; do
    [ "$(awk -v m="forkstore_$k" 'index($0, m "{") == 1 { print $2 }' prom.txt)" = "$(jq ".$k" stats.json)" ] ||
        die "prometheus $k differs from --json"
done
[ "$(jq .snapshots stats.json)" = 6 ] || die "stats: snapshots"
[ "$(jq .logical_bytes stats.json)" = "$(fk sql "SELECT sum(size) FROM artifact" --csv | tail -n 1)" ] || die "stats: logical_bytes"
[ "$(jq .chunk_disk_bytes stats.json)" = "$(find store/chunks -type f -printf "%b\n" | awk "{ s += \$1 * 512 } END { print s }")" ] || die "stats: chunk_disk_bytes vs find"
