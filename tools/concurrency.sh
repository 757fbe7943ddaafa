#!/usr/bin/env bash
# tools/concurrency.sh [--seconds S] [--dir DIR]: gc in a loop while two
# other processes ingest chains and restore + check snapshots, for S
# seconds (default 60). Afterwards everything verifies and every snapshot
# that was acknowledged restores exactly; no error (in particular no
# "database is locked") reaches any of the processes.
set -euo pipefail
secs=60 dir=""
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) secs=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "usage: tools/concurrency.sh [--seconds S] [--dir DIR]" >&2; exit 2 ;;
    esac
done
: "${FORKCTL:?}" "${FORKGEN:?}"
[ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/fks-conc.XXXXXX")
mkdir -p "$dir"
cd "$dir"
rm -rf g st ./*.err ./*.ok
"$FORKGEN" --out g --size 16M --snapshots 8 --dirty 5 --seed 9 --quiet
fk() { "$FORKCTL" --store "$dir/st" "$@"; }
fk --quiet init --chunk-size 1M
fk --quiet ingest --tag base --memory g/00/memory.full --vmstate g/00/vmstate
end=$((SECONDS + secs))
( n=0; while [ $SECONDS -lt $end ]; do n=$((n + 1)); fk --quiet gc >/dev/null 2>>gc.err || echo "gc exit $?" >>gc.err; done; echo $n >gc.ok ) &
( i=0; while [ $SECONDS -lt $end ]; do i=$((i + 1)); p=base
    for nn in 01 02 03 04 05; do
        fk --quiet ingest --tag "a$i-$nn" --parent "$p" --memory "g/$nn/memory.diff" --diff --vmstate g/00/vmstate 2>>a.err ||
            echo "ingest a$i-$nn exit $?" >>a.err
        p=a$i-$nn
    done
    fk --quiet restore "$p" --out ra --force 2>>a.err || echo "restore $p exit $?" >>a.err
    cmp -s ra/memory.bin g/05/memory.full || echo "restore $p: wrong bytes" >>a.err
    [ $((i % 2)) = 0 ] && { fk --quiet rmi --cascade "a$i-01" 2>>a.err || echo "rmi exit $?" >>a.err; }
  done; echo $i >a.ok ) &
( i=0; while [ $SECONDS -lt $end ]; do i=$((i + 1)); img=$(printf %02d $((i % 8)))
    fk --quiet ingest --tag "b$i" --memory "g/$img/memory.full" --vmstate g/00/vmstate 2>>b.err || echo "ingest b$i exit $?" >>b.err
    fk --quiet restore "b$i" --out rb --force 2>>b.err || echo "restore b$i exit $?" >>b.err
    cmp -s rb/memory.bin "g/$img/memory.full" || echo "restore b$i: wrong bytes" >>b.err
    [ $((i % 3)) = 0 ] && { fk --quiet rmi "b$i" 2>>b.err || echo "rmi exit $?" >>b.err; }
  done; echo $i >b.ok ) &
wait
errors=$(cat gc.err a.err b.err 2>/dev/null | wc -l)
echo "concurrency: ${secs}s: $(cat gc.ok) gc runs, $(cat a.ok) rounds of a 5-diff chain + restore, $(cat b.ok) full ingest + restore rounds"
if [ "$errors" -gt 0 ]; then
    echo "concurrency: FAIL: $errors errors reached the user:" >&2
    cat gc.err a.err b.err 2>/dev/null | sort | uniq -c | sort -rn | head -20 >&2
    exit 1
fi
fk verify
# every snapshot left restores to the image it came from
fk sql "SELECT tag FROM snapshot" --csv | tail -n +2 | while read -r t; do
    case $t in
        base) want=g/00/memory.full ;;
        a*) want=g/${t##*-}/memory.full ;;
        b*) want=g/$(printf %02d $((${t#b} % 8)))/memory.full ;;
    esac
    fk --quiet restore "$t" --out rc --force
    cmp -s rc/memory.bin "$want" || { echo "concurrency: FAIL: $t restores wrong bytes" >&2; exit 1; }
done
echo "concurrency: ok"
[ -n "${KEEP:-}" ] || rm -rf "$dir"
