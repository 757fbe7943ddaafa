# forkctl prune: --keep-last, --keep-within, --keep-tag per lineage root;
# --dry-run lists exactly what a real run removes; what stays restores byte
# for byte, descendants of removed snapshots included.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 CLI not installed"
gen g --size 4M --snapshots 6 --dirty 5 --seed 4
fk init >/dev/null
img() { case $1 in a2x) echo 03 ;; *) printf '%02d' "${1#?}" ;; esac; }
# Group a: a0 <- a1 <- a2 <- a3 <- a4 <- a5, and a2 <- a2x. Group b: b0 <- b1 <- b2.
fk ingest --tag a0 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
for i in 1 2 3 4 5; do
    fk ingest --tag "a$i" --parent "a$((i - 1))" --memory "g/0$i/memory.diff" --diff --vmstate "g/0$i/vmstate" >/dev/null
done
fk ingest --tag a2x --parent a2 --memory g/03/memory.full --vmstate g/03/vmstate >/dev/null
fk ingest --tag b0 --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
fk ingest --tag b1 --parent b0 --memory g/01/memory.diff --diff --vmstate g/01/vmstate >/dev/null
fk ingest --tag b2 --parent b1 --memory g/02/memory.diff --diff --vmstate g/02/vmstate >/dev/null
# Ages in minutes, set in the catalog directly (nothing else is running).
now=$(date +%s%3N)
declare -A age=([a0]=14700 [a1]=12000 [a2]=9000 [a2x]=6000 [a3]=4200 [a4]=1800 [a5]=60
                [b0]=30000 [b1]=18000 [b2]=30)
for t in "${!age[@]}"; do
    sqlite3 store/catalog.db "UPDATE snapshot SET created_ms = $((now - age[$t] * 60000)) WHERE tag = '$t'"
done
all="a0 a1 a2 a2x a3 a4 a5 b0 b1 b2"
set -f   # rules hold globs (--keep-tag b*) that must reach forkctl as they are
cp -a store store.orig
reset() { rm -rf store && cp -a store.orig store; }
tags() { fk sql "SELECT tag FROM snapshot ORDER BY tag" --csv | tail -n +2 | xargs; }
sorted() { echo "$@" | tr ' ' '\n' | grep . | LC_ALL=C sort | xargs; }
# oldest first: the order prune removes in
by_age() { for t in "$@"; do echo "${age[$t]} $t"; done | sort -rn | awk '{ print $2 }' | xargs; }

# run_case "RULES" "KEPT": dry run, then the real run, against the expected kept set.
run_case() {
    local rules=$1 kept=$2 removed="" t
    for t in $all; do [[ " $kept " == *" $t "* ]] || removed="$removed $t"; done
    removed=$(by_age $removed)
    reset
    local before; before=$(store_state)
    fk prune $rules --dry-run --json >dry.json
    [ "$(store_state)" = "$before" ] || die "prune $rules --dry-run changed the store"
    [ "$(jq -r '.removed | join(" ")' dry.json)" = "$removed" ] ||
        die "prune $rules --dry-run would remove '$(jq -r '.removed | join(" ")' dry.json)', expected '$removed'"
    [ "$(jq .dry_run dry.json)" = true ] && [ "$(jq .kept dry.json)" = "$(echo $kept | wc -w)" ] || die "dry-run json: $(cat dry.json)"
    fk prune $rules --json >real.json
    [ "$(jq -c .removed real.json)" = "$(jq -c .removed dry.json)" ] || die "prune $rules removed $(jq -c .removed real.json), dry run said $(jq -c .removed dry.json)"
    [ "$(tags)" = "$(sorted $kept)" ] || die "prune $rules left '$(tags)', expected '$(sorted $kept)'"
    fk verify >/dev/null || die "verify after prune $rules"
    for t in $kept; do
        rm -rf r && fk restore "$t" --out r >/dev/null
        same r/memory.bin "g/$(img "$t")/memory.full"
        same r/vmstate "g/$(img "$t")/vmstate"
    done
}

run_case "--keep-last 2" "a5 a4 b2 b1"
# a4 lost every ancestor; a5 still descends from it.
[ "$(fk log a5 --json | jq -c '[.[].tag]')" = '["a4","a5"]' ] || die "lineage after prune: $(fk log a5 --json | jq -c '[.[].tag]')"
run_case "--keep-last 1" "a5 b2"
run_case "--keep-within 3d" "a5 a4 a3 b2"
run_case "--keep-tag b*" "b0 b1 b2"
run_case "--keep-tag a2? --keep-tag a0" "a2x a0"
run_case "--keep-tag b* --keep-last 1" "a5 b0 b1 b2"
run_case "--keep-within 2h --keep-tag a1" "a5 b2 a1"
fk gc >/dev/null
for t in a5 b2 a1; do rm -rf r && fk restore "$t" --out r >/dev/null && same r/memory.bin "g/$(img "$t")/memory.full"; done

# Every duration unit, by the number a dry run would remove.
reset
for d in "30s 10" "10m 10" "2h 8" "7d 4" "4w 0" "1y 0" "1.5h 8"; do
    set -- $d
    n=$(fk prune --keep-within "$1" --dry-run --json | jq '.removed | length')
    [ "$n" = "$2" ] || die "--keep-within $1 would remove $n, expected $2"
done
fk prune --keep-last 3 --dry-run | grep -q '^would remove a0$' || die "dry-run text output"

# Bad rules change nothing.
before=$(store_state)
expect_fail 2 "at least one rule" fk prune
expect_fail 2 "at least one rule" fk prune --dry-run
expect_fail 2 "keep-last" fk prune --keep-last 0
expect_fail 2 "keep-last" fk prune --keep-last x
expect_fail 2 "keep-within" fk prune --keep-within 5x
expect_fail 2 "keep-within" fk prune --keep-within 0
expect_fail 2 "unexpected argument" fk prune --keep-last 1 a0
[ "$(store_state)" = "$before" ] || die "a refused prune changed the store"
