#!/usr/bin/env bash
# tools/bench/run.sh [--quick] [--keep]: forkstore against the tools users
# would pick instead, on the same inputs, in the same run.
#
# Inputs (under $BENCH_TMP, default /var/tmp/forkstore-bench; never in the repo):
#   synth    the generator's chain: 512 MiB guest, 12 snapshots, 3% dirtied each
#   heavy    the same with 40% random pages (forkgen --random 40): data-heavy,
#            little to compress, so restore is bound by decode and writes
#   real     a chain of real Linux guest memory (tools/qemu/capture.sh), when
#            QEMU can run here; otherwise a notice and the synthetic chain only
#   big      a 2 GiB guest, 3 snapshots: forkstore memory use and scaling
# Contenders on each chain, $BENCH_RUNS runs each (default 3), medians:
#   forkstore ingest of the chain as Full files and as Diff files, restore of
#     the last snapshot (each beside a cp of the same image), depth-N vs
#     depth-0 restore of equal content, a 1 MiB diff commit, store bytes
#     (chunks + catalog), peak RSS; once per chain (the bytes do not vary):
#     gc after rmi of half the snapshots (default, and --max-unused 0), and
#     forkctl compact (level 15) with the store bytes after it
#   forkd's layout: cp of the parent + applying the sparse diff, one full
#     memory.bin per snapshot
#   restic backup/restore and borg create -C zstd,3/extract of the Full files
#   zstd -1 -T0 of each Full file
#   cp --sparse=always of the last Full image (the restore floor), run right
#     before each forkstore restore so that both meet the same machine
#   the machine's limits (tools/bench/limits.c)
# Warm page cache throughout (nothing is dropped). Results: a table on
# stdout, $OUT/results.md and $OUT/results.csv (OUT default build/bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
F=$BUILD/forkctl
GEN=$BUILD/tools/forkgen
TMP=${BENCH_TMP:-/var/tmp/forkstore-bench}
OUT=${BENCH_OUT:-$BUILD/bench}
RUNS=${BENCH_RUNS:-3}
SIZE=512M SNAPS=12 BIG=2G keep=0
for a in "$@"; do
    case $a in
        --quick) SIZE=64M SNAPS=6 BIG=128M RUNS=1 ;;
        --keep) keep=1 ;;
        *) echo "usage: tools/bench/run.sh [--quick] [--keep]" >&2; exit 2 ;;
    esac
done
for t in "$F" "$GEN" "$BUILD/tools/limits" "$BUILD/tools/applydiff"; do
    [ -x "$t" ] || { echo "bench: $t not built (run make)" >&2; exit 1; }
done
missing=""
for t in restic borg zstd; do command -v $t >/dev/null || missing="$missing $t"; done
[ -z "$missing" ] || { echo "bench: missing$missing (tools/deps.sh bench installs them)" >&2; exit 1; }
mkdir -p "$TMP" "$OUT"
free=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
[ "$free" -gt $((30 * 1024 * 1024)) ] || [ "$SIZE" = 64M ] || echo "bench: warning: only $((free / 1024)) MiB free in $TMP" >&2
export RESTIC_PASSWORD=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$TMP/borg-base RESTIC_CACHE_DIR=$TMP/restic-cache
start_all=$(date +%s)

now() { date +%s.%N; }
since() { echo "$(date +%s.%N) - $1" | bc; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
bytes() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
store_bytes() { bytes "$1/chunks" "$1"/catalog.db*; }
catalog_bytes() { bytes "$1"/catalog.db*; }
rss_of() { /usr/bin/time -f %M -o "$TMP/rss" "$@" >/dev/null && cat "$TMP/rss"; }
declare -A R          # R[chain.metric] = list of samples (one per line)
add() { R[$1]+="$2"$'\n'; }
med() { printf '%s' "${R[$1]:-}" | median; }

# ---- inputs ----
gen_chain() { # gen_chain NAME SIZE SNAPS [forkgen options]
    local d=$TMP/$1 n=$1 sz=$2 ns=$3
    shift 3
    if [ ! -f "$d/chain.tsv" ] || [ "$(cat "$d/.params" 2>/dev/null)" != "$sz $ns $*" ]; then
        rm -rf "$d"
        echo "bench: generating $n chain ($ns x $sz${*:+, $*})" >&2
        "$GEN" --out "$d" --size "$sz" --snapshots "$ns" --dirty 3 --seed 1 --quiet "$@"
        echo "$sz $ns $*" >"$d/.params"
    fi
}
chains=(synth heavy)
gen_chain synth "$SIZE" "$SNAPS"
gen_chain heavy "$SIZE" "$SNAPS" --random 40
real_note="real-guest chain: tools/qemu/capture.sh not present"
if [ -x "$root/tools/qemu/capture.sh" ]; then
    if "$root/tools/qemu/capture.sh" --out "$TMP/real" --mem "$SIZE" --snapshots "$SNAPS" >&2; then
        chains+=(real)
        real_note="real-guest chain: $(wc -l <"$TMP/real/chain.tsv") lines from tools/qemu/capture.sh"
    else
        real_note="real-guest chain: QEMU could not run here (capture.sh exit $?); synthetic chain only"
    fi
fi
echo "bench: $real_note" >&2
gen_chain big "$BIG" 3

lastnn() { tail -n 1 "$TMP/$1/chain.tsv" | cut -f1; }
tagof() { awk -F'\t' -v n="$2" '$1 == n { print $2 }' "$TMP/$1/chain.tsv"; }

# ---- contenders ----
run_forkstore() { # chain run
    local c=$1 run=$2 d=$TMP/$1 s=$TMP/store-$1 t0 maxrss=0 rss
    rm -rf "$s" "$TMP/r"
    "$F" --store "$s" --quiet init
    t0=$(now)
    local prev=""
    while IFS=$'\t' read -r nn tag _; do
        case $nn in \#*) continue ;; esac
        rss=$(rss_of "$F" --store "$s" --quiet ingest --tag "$tag" ${prev:+--parent "$prev"} \
            --memory "$d/$nn/memory.full" --vmstate "$d/$nn/vmstate")
        [ "$rss" -gt "$maxrss" ] && maxrss=$rss
        prev=$tag
    done <"$d/chain.tsv"
    add "$c.fks_full_ingest_s" "$(since "$t0")"
    add "$c.fks_store_bytes" "$(store_bytes "$s")"
    add "$c.fks_catalog_bytes" "$(catalog_bytes "$s")"
    add "$c.fks_ingest_rss_kb" "$maxrss"
    [ "$run" = 1 ] && run_gc "$c" "$s"
    # the chain as Diff files
    rm -rf "$s"
    "$F" --store "$s" --quiet init
    t0=$(now)
    prev=""
    while IFS=$'\t' read -r nn tag _; do
        case $nn in \#*) continue ;; esac
        if [ -z "$prev" ]; then
            "$F" --store "$s" --quiet ingest --tag "$tag" --memory "$d/$nn/memory.full" --vmstate "$d/$nn/vmstate"
        else
            "$F" --store "$s" --quiet ingest --tag "$tag" --parent "$prev" --memory "$d/$nn/memory.diff" --diff \
                --vmstate "$d/$nn/vmstate"
        fi
        prev=$tag
    done <"$d/chain.tsv"
    add "$c.fks_diff_ingest_s" "$(since "$t0")"
    # restore of the last snapshot (depth N), and of the same image as a root
    local last; last=$(lastnn "$c")
    run_cp "$c"
    t0=$(now)
    rss=$(rss_of "$F" --store "$s" --quiet restore "$prev" --out "$TMP/r" --force)
    add "$c.fks_restore_s" "$(since "$t0")"
    add "$c.fks_restore_rss_kb" "$rss"
    cmp -s "$TMP/r/memory.bin" "$d/$last/memory.full" || { echo "bench: forkstore restore of $prev differs!" >&2; exit 1; }
    "$F" --store "$s" --quiet ingest --tag flat --memory "$d/$last/memory.full" --vmstate "$d/$last/vmstate"
    rm -rf "$TMP/r"       # into a new directory, as above: no old file to unlink on the clock
    t0=$(now)
    "$F" --store "$s" --quiet restore flat --out "$TMP/r"
    add "$c.fks_restore_depth1_s" "$(since "$t0")"
    # a 1 MiB diff (256 dirtied pages) committed on the warm store
    local df=$TMP/onemib.diff
    rm -f "$df"
    truncate -s "$(stat -c %s "$d/$last/memory.full")" "$df"
    local npg=$(($(stat -c %s "$df") / 4096))
    for k in $(seq 1 256); do echo $(( (k * 7919 + 13) % npg )); done | sort -un | while read -r pg; do
        head -c 4096 /dev/urandom | dd of="$df" bs=4096 seek="$pg" conv=notrunc status=none
    done
    local secs
    secs=$("$F" --store "$s" ingest --json --tag onemib --parent "$prev" --memory "$df" --diff --vmstate "$d/$last/vmstate" |
        sed -n 's/.*"seconds": *\([0-9.e-]*\).*/\1/p')
    add "$c.fks_1mib_diff_ms" "$(echo "$secs * 1000" | bc -l)"
    rm -rf "$s" "$TMP/r"
}

json_num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -n 1; }
stat_of() { "$F" --store "$1" stats --json | json_num "$2"; }

# gc after rmi of half the snapshots (the odd ones but the last, topped up
# from the end), on copies of the Full-chain store: the record bytes that
# gc gives back by default, as a share of what gc --max-unused 0 (every
# chunk with a dead byte compacted) gives back, which is every record
# byte only the removed snapshots needed. Records: chunk bytes used past
# the chunk headers (stats).
recs_of() { local u n; u=$(stat_of "$1" chunk_used_bytes); n=$(stat_of "$1" chunks); echo $((u - n * 64)); }
run_gc() { # chain store
    local c=$1 s=$2 g=$TMP/gcst-$1 mode nn rm=() n t0 before
    n=$(awk '!/^#/ { n++ } END { print n }' "$TMP/$c/chain.tsv")
    for nn in $(seq 1 2 $((n - 2))); do rm+=("$(tagof "$c" "$(printf %02d "$nn")")"); done
    [ "${#rm[@]}" -lt $((n / 2)) ] && rm+=("$(tagof "$c" "$(printf %02d $((n - 2)))")")
    before=$(recs_of "$s")
    declare -A back
    for mode in max0 default; do
        rm -rf "$g"
        cp -a "$s" "$g"
        "$F" --store "$g" --quiet rmi "${rm[@]}"
        t0=$(now)
        if [ $mode = default ]; then "$F" --store "$g" --quiet gc; else "$F" --store "$g" --quiet gc --max-unused 0; fi
        add "$c.gc_${mode}_s" "$(since "$t0")"
        back[$mode]=$((before - $(recs_of "$g")))
        add "$c.gc_${mode}_back_bytes" "${back[$mode]}"
        add "$c.gc_${mode}_dead_bytes" "$(stat_of "$g" dead_bytes)"
        "$F" --store "$g" --quiet restore "$(tagof "$c" "$(printf %02d $((n - 1)))")" --out "$TMP/gr"
        cmp -s "$TMP/gr/memory.bin" "$TMP/$c/$(printf %02d $((n - 1)))/memory.full" ||
            { echo "bench: restore after gc differs!" >&2; exit 1; }
        rm -rf "$g" "$TMP/gr"
    done
    add "$c.gc_back_pct" "$(awk -v d="${back[default]}" -v a="${back[max0]}" 'BEGIN { printf "%.1f", (a > 0 ? 100 * d / a : 100) }')"
    # forkctl compact: the bytes a store costs once recompressed
    t0=$(now)
    "$F" --store "$s" --quiet compact
    add "$c.compact_s" "$(since "$t0")"
    add "$c.fks_compact_bytes" "$(store_bytes "$s")"
}

run_forkd() { # cp of the parent + applying the diff: one memory.bin per snapshot
    local c=$1 d=$TMP/$1 o=$TMP/forkd-$1 t0 prev=""
    rm -rf "$o"
    mkdir -p "$o"
    t0=$(now)
    while IFS=$'\t' read -r nn _; do
        case $nn in \#*) continue ;; esac
        mkdir -p "$o/$nn"
        if [ -z "$prev" ]; then
            cp --sparse=always "$d/$nn/memory.full" "$o/$nn/memory.bin"
        else
            cp --sparse=always "$o/$prev/memory.bin" "$o/$nn/memory.bin"
            "$BUILD/tools/applydiff" "$d/$nn/memory.diff" "$o/$nn/memory.bin"
        fi
        cp "$d/$nn/vmstate" "$o/$nn/vmstate"
        prev=$nn
    done <"$d/chain.tsv"
    sync -f "$o"
    add "$c.forkd_s" "$(since "$t0")"
    add "$c.forkd_bytes" "$(bytes "$o")"
    cmp -s "$o/$prev/memory.bin" "$d/$prev/memory.full" || { echo "bench: forkd layout differs" >&2; exit 1; }
    rm -rf "$o"
}

run_restic() {
    local c=$1 d=$TMP/$1 repo=$TMP/restic-$1 t0
    rm -rf "$repo" "$TMP/rr"
    restic -q -r "$repo" init >/dev/null
    t0=$(now)
    while IFS=$'\t' read -r nn _; do
        case $nn in \#*) continue ;; esac
        (cd "$d/$nn" && restic -q -r "$repo" backup --host bench memory.full vmstate >/dev/null)
    done <"$d/chain.tsv"
    add "$c.restic_backup_s" "$(since "$t0")"
    add "$c.restic_bytes" "$(bytes "$repo")"
    t0=$(now)
    restic -q -r "$repo" restore latest --target "$TMP/rr" >/dev/null
    add "$c.restic_restore_s" "$(since "$t0")"
    rm -rf "$repo" "$TMP/rr"
}

run_borg() {
    local c=$1 d=$TMP/$1 repo=$TMP/borg-$1 t0 nn last
    rm -rf "$repo" "$TMP/br"
    borg init -e none "$repo"
    t0=$(now)
    while IFS=$'\t' read -r nn _; do
        case $nn in \#*) continue ;; esac
        (cd "$d/$nn" && borg create -C zstd,3 "$repo::s$nn" memory.full vmstate)
        last=$nn
    done <"$d/chain.tsv"
    add "$c.borg_create_s" "$(since "$t0")"
    add "$c.borg_bytes" "$(bytes "$repo")"
    mkdir -p "$TMP/br"
    t0=$(now)
    (cd "$TMP/br" && borg extract "$repo::s$last")
    add "$c.borg_extract_s" "$(since "$t0")"
    rm -rf "$repo" "$TMP/br"
}

run_zstd() {
    local c=$1 d=$TMP/$1 o=$TMP/zstd-$1 t0
    rm -rf "$o"
    mkdir -p "$o"
    t0=$(now)
    while IFS=$'\t' read -r nn _; do
        case $nn in \#*) continue ;; esac
        zstd -q -1 -T0 -f "$d/$nn/memory.full" -o "$o/$nn.zst"
    done <"$d/chain.tsv"
    add "$c.zstd_s" "$(since "$t0")"
    add "$c.zstd_bytes" "$(bytes "$o")"
    rm -rf "$o"
}

run_cp() {
    local c=$1 d=$TMP/$1 t0
    rm -f "$TMP/cp.bin"
    t0=$(now)
    cp --sparse=always "$d/$(lastnn "$c")/memory.full" "$TMP/cp.bin"
    add "$c.cp_sparse_s" "$(since "$t0")"
    rm -f "$TMP/cp.bin"
}

run_big() { # forkstore on a 2 GiB guest: RSS and time
    local d=$TMP/big s=$TMP/store-big t0 rss prev=""
    rm -rf "$s" "$TMP/r"
    "$F" --store "$s" --quiet init
    local maxrss=0
    t0=$(now)
    while IFS=$'\t' read -r nn tag _; do
        case $nn in \#*) continue ;; esac
        if [ -z "$prev" ]; then
            rss=$(rss_of "$F" --store "$s" --quiet ingest --tag "$tag" --memory "$d/$nn/memory.full" --vmstate "$d/$nn/vmstate")
        else
            rss=$(rss_of "$F" --store "$s" --quiet ingest --tag "$tag" --parent "$prev" --memory "$d/$nn/memory.diff" --diff --vmstate "$d/$nn/vmstate")
        fi
        [ "$rss" -gt "$maxrss" ] && maxrss=$rss
        prev=$tag
    done <"$d/chain.tsv"
    add big.fks_diff_ingest_s "$(since "$t0")"
    add big.fks_ingest_rss_kb "$maxrss"
    t0=$(now)
    rss=$(rss_of "$F" --store "$s" --quiet restore "$prev" --out "$TMP/r" --force)
    add big.fks_restore_s "$(since "$t0")"
    add big.fks_restore_rss_kb "$rss"
    rm -f "$TMP/cp.bin"
    t0=$(now)
    cp --sparse=always "$d/$(lastnn big)/memory.full" "$TMP/cp.bin" 2>/dev/null || true
    rm -rf "$s" "$TMP/r" "$TMP/cp.bin"
}

# ---- the runs ----
for c in "${chains[@]}"; do
    "$BUILD/tools/limits" "$TMP/$c/00/memory.full" 512 >"$OUT/limits-$c.txt"
    for r in $(seq 1 "$RUNS"); do
        echo "bench: $c run $r/$RUNS" >&2
        run_forkstore "$c" "$r"
        run_forkd "$c"
        run_zstd "$c"
        run_restic "$c"
        run_borg "$c"
    done
done
for r in $(seq 1 "$RUNS"); do run_big; done

# ---- the table ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
{
    echo "| chain | contender | work | seconds (median of $RUNS) | bytes on disk |"
    echo "|---|---|---|---|---|"
    for c in "${chains[@]}"; do
        echo "| $c | forkstore | ingest chain as Full files | $(med "$c.fks_full_ingest_s") | $(mib "$(med "$c.fks_store_bytes")") MiB (catalog $(mib "$(med "$c.fks_catalog_bytes")") MiB) |"
        echo "| $c | forkstore | ingest chain as Diff files | $(med "$c.fks_diff_ingest_s") | |"
        echo "| $c | forkstore | restore last snapshot (depth $((SNAPS - 1))) | $(med "$c.fks_restore_s") | |"
        echo "| $c | forkstore | restore same image stored as a root (depth 0) | $(med "$c.fks_restore_depth1_s") | |"
        echo "| $c | forkstore | commit a 1 MiB diff (ms) | $(med "$c.fks_1mib_diff_ms") | |"
        echo "| $c | forkstore | gc after rmi of half the snapshots: $(mib "$(med "$c.gc_default_back_bytes")") of the $(mib "$(med "$c.gc_max0_back_bytes")") MiB of records they alone needed back ($(med "$c.gc_back_pct")%) | $(med "$c.gc_default_s") | $(mib "$(med "$c.gc_default_dead_bytes")") MiB left dead |"
        echo "| $c | forkstore | the same with gc --max-unused 0 (all of it back) | $(med "$c.gc_max0_s") | $(mib "$(med "$c.gc_max0_dead_bytes")") MiB left dead |"
        echo "| $c | forkstore | compact (level 15) of the Full-chain store | $(med "$c.compact_s") | $(mib "$(med "$c.fks_compact_bytes")") MiB |"
        echo "| $c | forkd layout | cp parent + apply diff, per snapshot | $(med "$c.forkd_s") | $(mib "$(med "$c.forkd_bytes")") MiB |"
        echo "| $c | restic | backup of each Full file | $(med "$c.restic_backup_s") | $(mib "$(med "$c.restic_bytes")") MiB |"
        echo "| $c | restic | restore latest | $(med "$c.restic_restore_s") | |"
        echo "| $c | borg -C zstd,3 | create of each Full file | $(med "$c.borg_create_s") | $(mib "$(med "$c.borg_bytes")") MiB |"
        echo "| $c | borg | extract last | $(med "$c.borg_extract_s") | |"
        echo "| $c | zstd -1 -T0 | each Full file | $(med "$c.zstd_s") | $(mib "$(med "$c.zstd_bytes")") MiB |"
        echo "| $c | cp --sparse=always | last Full image (restore floor) | $(med "$c.cp_sparse_s") | |"
    done
    echo "| big ($BIG x 3) | forkstore | ingest (full + 2 diffs), peak RSS $(( $(med big.fks_ingest_rss_kb | cut -d. -f1) / 1024 )) MiB | $(med big.fks_diff_ingest_s) | |"
    echo "| big ($BIG x 3) | forkstore | restore last, peak RSS $(( $(med big.fks_restore_rss_kb | cut -d. -f1) / 1024 )) MiB | $(med big.fks_restore_s) | |"
} >"$OUT/table.md"

targets() { # the issues' targets, as ratios measured in this run
    local c=synth o
    [[ " ${chains[*]} " == *" real "* ]] && c=real
    chk() { awk -v v="$2" -v t="$3" -v op="$4" -v name="$1" 'BEGIN {
        ok = (op == "<=" ? v <= t : v >= t); printf "| %s | %s | %s %s | %s |\n", name, v, op, t, ok ? "MET" : "MISSED" }'; }
    minrb() { awk -v a="$(med "$1.restic_bytes")" -v b="$(med "$1.borg_bytes")" 'BEGIN { print (a < b ? a : b) }'; }
    echo "| target | measured | goal | |"
    echo "|---|---|---|---|"
    for o in "${chains[@]}"; do    # these hold on every chain (issue 17)
        chk "$o: store / min(restic, borg)" "$(ratio "$(med "$o.fks_store_bytes")" "$(minrb "$o")")" 0.4 "<="
        chk "$o: store after compact / min(restic, borg)" "$(ratio "$(med "$o.fks_compact_bytes")" "$(minrb "$o")")" 0.4 "<="
        chk "$o: borg create / forkstore Full-chain ingest" "$(ratio "$(med "$o.borg_create_s")" "$(med "$o.fks_full_ingest_s")")" 4 ">="
        chk "$o: forkstore restore / cp --sparse=always" "$(ratio "$(med "$o.fks_restore_s")" "$(med "$o.cp_sparse_s")")" 1.5 "<="
        chk "$o: restore depth-N / depth-0" "$(ratio "$(med "$o.fks_restore_s")" "$(med "$o.fks_restore_depth1_s")")" 1.1 "<="
        chk "$o: gc after rmi of half: share back, default (%)" "$(med "$o.gc_back_pct")" 95 ">="
    done
    chk "$c: store / forkd layout" "$(ratio "$(med "$c.fks_store_bytes")" "$(med "$c.forkd_bytes")")" 0.05 "<="
    chk "$c: zstd -1 -T0 / forkstore Full-chain ingest" "$(ratio "$(med "$c.zstd_s")" "$(med "$c.fks_full_ingest_s")")" 1 ">="
    chk "$c: restic restore / forkstore restore" "$(ratio "$(med "$c.restic_restore_s")" "$(med "$c.fks_restore_s")")" 3 ">="
    chk "$c: borg extract / forkstore restore" "$(ratio "$(med "$c.borg_extract_s")" "$(med "$c.fks_restore_s")")" 3 ">="
    chk "$c: 1 MiB diff commit (ms)" "$(med "$c.fks_1mib_diff_ms")" 20 "<="
    chk "peak RSS ingest, $BIG guest (MiB)" "$(( $(med big.fks_ingest_rss_kb | cut -d. -f1) / 1024 ))" 128 "<="
    chk "peak RSS restore, $BIG guest (MiB)" "$(( $(med big.fks_restore_rss_kb | cut -d. -f1) / 1024 ))" 128 "<="
    local logical; logical=$(awk '!/^#/ { n++ } END { print n }' "$TMP/$c/chain.tsv")
    logical=$(( logical * $(stat -c %s "$TMP/$c/00/memory.full") ))
    chk "$c: catalog / logical bytes of the Full snapshots (%)" "$(awk -v a="$(med "$c.fks_catalog_bytes")" -v b="$logical" 'BEGIN { printf "%.3f", 100 * a / b }')" 1 "<="
}
targets >"$OUT/targets.md"
{
    echo "# forkstore benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(df -PT "$TMP" | awk 'NR == 2 { print $2 }') at $TMP; warm page cache."
    echo "Command: \`make bench\` ($RUNS runs, medians). $real_note."
    echo
    cat "$OUT/table.md"
    echo
    cat "$OUT/targets.md"
    echo
    echo "Machine limits (tools/bench/limits on the first image of the synthetic chain):"
    echo
    sed 's/^/    /' "$OUT/limits-synth.txt"
} >"$OUT/results.md"
# CSV: one line per metric with its samples' median
{
    echo "metric,median,samples"
    for k in $(printf '%s\n' "${!R[@]}" | sort); do
        echo "$k,$(med "$k"),$(printf '%s' "${R[$k]}" | tr '\n' ' ')"
    done
} >"$OUT/results.csv"
cat "$OUT/results.md"
echo
echo "bench: done in $(( $(date +%s) - start_all )) s; results in $OUT/results.{md,csv}"
[ "$keep" = 1 ] || rm -rf "$TMP/store-"* "$TMP/gcst-"* "$TMP/forkd-"* "$TMP/zstd-"* "$TMP/restic-"* "$TMP/borg-"*
