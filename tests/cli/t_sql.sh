# Every example query of tests/cli/queries.sql (the README's) and every view
# of migrations/0003_views.sql, checked against numbers computed from the
# generated image files alone (split + sha1sum, cmp); and forkctl sql
# cannot change the store.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
here=$(cd "$(dirname "$0")" && pwd)
gen g --size 8M --snapshots 6 --dirty 4 --seed 5
fk init >/dev/null
fk ingest --tag s00 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
for i in 1 2 3 4 5; do
    n=$(printf %02d $i) p=$(printf %02d $((i - 1)))
    fk ingest --tag "s$n" --parent "s$p" --memory "g/$n/memory.diff" --diff --vmstate "g/$n/vmstate" >/dev/null
done
# A branch off s02 holding image 03 again: it shares every page with s03.
fk ingest --tag b03 --parent s02 --memory g/03/memory.full --vmstate g/03/vmstate >/dev/null
tags="s00 s01 s02 s03 s04 s05 b03"          # in ingest (id) order
dir_of() { case $1 in b03) echo g/03 ;; *) echo "g/${1#s}" ;; esac; }
parent_of() { case $1 in s00) echo "" ;; b03) echo s02 ;; *) printf 's%02d' $((10#${1#s} - 1)) ;; esac; }

# pages.txt: "tag file pgno sha1 bytes" for every page of every file.
for t in $tags; do
    for f in memory vmstate; do
        path=$(dir_of "$t")/$f
        [ $f = memory ] && path=$path.full
        size=$(stat -c %s "$path")
        rm -rf sp && mkdir sp && split -b 4096 -a 6 -d "$path" sp/p
        (cd sp && sha1sum p*) | awk -v t="$t" -v f=$f -v size="$size" \
            '{ n = substr($2, 2) + 0; b = size - n * 4096; if (b > 4096) b = 4096; print t, f, n, $1, b }'
    done
done >pages.txt
for b in $(awk '{ print $5 }' pages.txt | sort -u); do head -c "$b" /dev/zero | sha1sum | cut -d' ' -f1; done >zeros.txt
rm -rf sp
# nz.txt: the non-zero pages only.
awk 'NR == FNR { zero[$1] = 1; next } !($4 in zero)' zeros.txt pages.txt >nz.txt
parents=$(for t in $tags; do echo "$t $(parent_of "$t")"; done)

# Expected snapshot_stats columns, from the files.
echo "$parents" >parents.txt
awk 'NR == FNR { if (NF == 2) parent[$1] = $2; next }
     { t = $1; nz[t] += $5; at[t, $2, $3] = $4; e[++n] = t SUBSEP $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
       if (!((t, $4) in has)) { has[t, $4] = 1; owners[$4]++ } }
     END { for (i = 1; i <= n; i++) { split(e[i], x, SUBSEP); p = parent[x[1]]
               if (p != "" && ((p, x[2], x[3]) in at) && at[p, x[2], x[3]] == x[4]) shared[x[1]] += x[5] }
           for (k in has) { split(k, x, SUBSEP); if (owners[x[2]] == 1) uniq[x[1]] += 4096 }
           for (t in nz) printf "%s,%d,%d,%d\n", t, nz[t], shared[t], uniq[t] }' parents.txt nz.txt |
    LC_ALL=C sort >expect_stats.csv
got=$(fk sql "SELECT tag, nonzero_bytes, shared_with_parent_bytes, unique_bytes FROM snapshot_stats ORDER BY tag" --csv | tail -n +2)
[ "$got" = "$(cat expect_stats.csv)" ] || die "snapshot_stats disagrees with the files:
got:
$got
expected (tag,nonzero,shared,unique):
$(cat expect_stats.csv)"
grep -q '^b03,[0-9]*,[0-9]*,0$' expect_stats.csv || die "test premise: b03 should hold no unique page"

# Run every example query; check each result.
mapfile -t Q < <(grep -v -e '^--' -e '^[[:space:]]*$' "$here/queries.sql")
[ ${#Q[@]} -eq 11 ] || die "queries.sql has ${#Q[@]} queries; this test checks 11: add a check for each new one"
hash_hex=$(fk sql "SELECT hex(hash) FROM page WHERE id = (SELECT page_id FROM snapshot_pages
                   WHERE tag = 's00' AND artifact = 'memory' ORDER BY pgno LIMIT 1)" --csv | tail -n 1)
# hash_page(): forkctl sql's lookup of a hash in the page index (both
# tiers: page_new before gc packs it, page_idx after).
want_id=$(fk sql "SELECT id FROM page WHERE hash = x'$hash_hex'" --csv | tail -n 1)
[ "$(fk sql "SELECT hash_page(x'$hash_hex')" --csv | tail -n 1)" = "$want_id" ] || die "hash_page() before gc"
[ -z "$(fk sql "SELECT hash_page(x'00112233445566778899aabbccddeeff')" --csv | tail -n 1)" ] || die "hash_page() of an absent hash"
for i in "${!Q[@]}"; do
    q=${Q[$i]//HASH/$hash_hex}
    fk sql "$q" --csv >"q$i.csv" || die "query $((i + 1)) failed: $q"
    sqlite3 -csv -header store/catalog.db "$q" >"q$i.sqlite3.csv" 2>/dev/null || die "plain sqlite3 cannot run query $((i + 1))"
done
rows() { tail -n +2 "q$1.csv"; }
check() { [ "$(rows "$1")" = "$2" ] || die "query $(($1 + 1)) (${Q[$1]}):
got:
$(rows "$1")
expected:
$2"; }

# 1: the tree.
exp=$(d=0; for t in $tags; do
    p=$(parent_of "$t"); dd=0; x=$t; while [ -n "$(parent_of "$x")" ]; do x=$(parent_of "$x"); dd=$((dd + 1)); done
    echo "$dd,$t,$p"; done)
check 0 "$exp"
# 2: chain of s03.  3: descendants of s01.
check 1 "$(printf 's03,0\ns02,1\ns01,2\ns00,3')"
check 2 "$(printf 's02,1\nb03,2\ns03,2\ns04,3\ns05,4')"
# 4: sizes, with logical from stat and stored from `forkctl images --json`.
fk images --json >images.json
exp=$(for t in $tags; do
    d=$(dir_of "$t"); logical=$(( $(stat -c %s "$d/memory.full") + $(stat -c %s "$d/vmstate") ))
    IFS=, read -r _ nz sh un < <(grep "^$t," expect_stats.csv)
    stored=$(jq -r --arg t "$t" '.[] | select(.tag == $t) | .stored_bytes' images.json)
    echo "$t,$(parent_of "$t"),$logical,$nz,$sh,$un,$stored"; done)
check 3 "$exp"
# 5: non-zero memory pages.
check 4 "$(for t in $tags; do echo "$t,$(awk -v t="$t" '$1 == t && $2 == "memory"' nz.txt | wc -l)"; done)"
# 6: pages that differ between two full images, by cmp.
ndiff=$({ cmp -l g/01/memory.full g/02/memory.full || true; } | awk '{ print int(($1 - 1) / 4096) }' | uniq | wc -l)
dirty=$(awk '$2 == "s02" { print $4 }' g/chain.tsv)
[ "$ndiff" -gt 0 ] && [ "$ndiff" -le "$dirty" ] || die "test premise: $ndiff pages differ, $dirty dirtied"
check 5 "$ndiff"
# 7: where the first non-zero page of s00's memory is used.
first=$(awk '$1 == "s00" && $2 == "memory" { print $4; exit }' nz.txt)
exp=$(for t in $tags; do awk -v t="$t" -v h="$first" '$1 == t && $4 == h { print $1 "," $2 "," $3 }' nz.txt | sort -t, -k2,2 -k3,3n; done)
check 6 "$exp"
# 8: the most repeated pages: their use counts.
exp=$(awk '{ print $4 }' nz.txt | sort | uniq -c | sort -rn | awk 'NR <= 5 { print $1 }')
[ "$(rows 7 | cut -d, -f2)" = "$exp" ] || die "query 8: use counts $(rows 7 | cut -d, -f2 | xargs) != $(echo $exp)"
# 9: chunk usage adds up: live bytes are the stored bytes, live pages the
# distinct non-zero pages of all files, dead = used - 64 (header) - live >= 0.
distinct=$(awk '{ print $4 }' nz.txt | sort -u | wc -l)
stored=$(fk stats --json | jq .stored_bytes)
read -r live pages bad < <(rows 8 | awk -F, '{ l += $3; p += $5; if ($2 != $3 + $4 + 64 || $4 < 0) bad++ } END { print l + 0, p + 0, bad + 0 }')
[ "$pages" = "$distinct" ] || die "chunk_usage: $pages live pages, the files hold $distinct distinct non-zero pages"
[ "$live" = "$stored" ] || die "chunk_usage: $live live bytes, stats says $stored stored"
[ "$bad" = 0 ] || die "chunk_usage: used != 64 + live + dead or dead < 0: $(rows 8)"
used=$(fk sql "SELECT sum(used) FROM chunk" --csv | tail -n 1)
[ "$(rows 8 | awk -F, '{ u += $2 } END { print u }')" = "$used" ] || die "chunk_usage: used bytes"
# 10: no snapshot here was taken by branch.
[ ! -s q9.csv ] || die "query 10: expected no rows, got $(cat q9.csv)"
# 11: creation times, against images --json.
check 10 "$(for t in $tags; do
    ms=$(jq -r --arg t "$t" '.[] | select(.tag == $t) | .created_ms' images.json)
    echo "$t,$(date -u -d "@$((ms / 1000))" '+%Y-%m-%d %H:%M:%S')"; done)"

# Plain sqlite3 gives the same answers (quoting aside).
for i in "${!Q[@]}"; do
    [ "$(tr -d '"' <"q$i.csv")" = "$(tr -d '"\r' <"q$i.sqlite3.csv")" ] || die "sqlite3 and forkctl sql differ on query $((i + 1))"
done

# The stats store-wide numbers agree with the files too.
fk stats --json >stats.json
[ "$(jq .referenced_pages stats.json)" = "$distinct" ] || die "stats: referenced_pages"
[ "$(jq .page_refs stats.json)" = "$(wc -l <nz.txt)" ] || die "stats: page_refs"
[ "$(jq .reclaimable_bytes stats.json)" = 0 ] || die "stats: nothing is reclaimable yet"
[ "$(jq .snapshots stats.json)" = 7 ] || die "stats: snapshots"
[ "$(jq '[.[].stored_bytes] | add' images.json)" = "$stored" ] || die "stats: stored_bytes $stored != sum of what the ingests stored"

# forkctl sql cannot write: each attempt fails with exit 2 and changes nothing.
before=$(store_state) uv=$(fk sql "PRAGMA user_version" --csv | tail -n 1)
for w in "DELETE FROM snapshot" "UPDATE snapshot SET tag = 'x'" "DROP VIEW lineage" "CREATE TABLE x (a)" \
         "INSERT INTO meta VALUES ('k', 1)" "PRAGMA user_version = 7" "VACUUM" \
         "WITH s AS (SELECT 1) DELETE FROM pmap_run" "SELECT 1; DELETE FROM page"; do
    expect_fail 2 "read-only|one SQL statement" fk sql "$w"
done
expect_fail 2 "." fk sql "ATTACH DATABASE '$TESTDIR/new.db' AS n"
[ ! -e new.db ] || die "ATTACH through forkctl sql created a file"
[ "$(store_state)" = "$before" ] || die "a refused write changed the store"
[ "$(fk sql "PRAGMA user_version" --csv | tail -n 1)" = "$uv" ] || die "user_version changed"
# after gc packed the page index, hash_page() finds the page in page_idx
fk gc >/dev/null
[ "$(fk sql "SELECT count(*) FROM page_new" --csv | tail -n 1)" = 0 ] || die "gc left page_new rows"
[ "$(fk sql "SELECT hash_page(x'$hash_hex')" --csv | tail -n 1)" = "$want_id" ] || die "hash_page() after gc"
