#!/usr/bin/env bash
# tools/bench/plot.sh [--record] [OUT]: the benchmarks' figures as PNG
# charts (gnuplot; tools/deps.sh bench installs it), from the data files
# the bench scripts leave in OUT (default build/bench), into OUT/charts/:
#
#   pause.png     pause per branch, the three strategies of bench-branch
#                 (branch.tsv: round, strategy, branch, pause ms, durable ms)
#   depth.png     restore time against chain depth, beside the same image
#                 stored flat and cp --sparse=always (bench-depth, depth.tsv)
#   catalog.png   catalog bytes against the number of snapshots of a chain
#                 (bench-scale part a and b, scale_catalog.tsv)
#   resume.png    time to a running VM against guest memory size, File and
#                 lazy restore (bench-lazy, lazy_sizes.tsv)
#
# A chart whose data file is missing is skipped with a note (each bench
# target renders its own). --record also copies the charts to
# tools/bench/charts/, the ones README.md shows (with the tables of the
# same run beside them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
record=0
[ "${1:-}" = --record ] && { record=1; shift; }
OUT=${1:-${BENCH_OUT:-$root/build/bench}}
command -v gnuplot >/dev/null || { echo "plot: gnuplot missing (tools/deps.sh bench installs it)" >&2; exit 1; }
mkdir -p "$OUT/charts"
made=()
term='set terminal pngcairo noenhanced size 900,540 font "DejaVu Sans,11"; set grid; set key below'
nonempty() { [ -s "$OUT/$1" ] || { echo "plot: no $OUT/$1 (run the bench that writes it): $2 skipped" >&2; return 1; }; }

if nonempty branch.tsv pause.png; then
    # One series per strategy; round 1 only, so each branch is one point.
    for s in ext4 prealloc forkstore; do
        awk -F'\t' -v s="$s" '$1 == 1 && $2 == s { print $3, $4 }' "$OUT/branch.tsv" >"$OUT/charts/pause-$s.dat"
    done
    gnuplot <<EOF
$term
set output "$OUT/charts/pause.png"
set title "Pause per Diff branch of one running VM (bench-branch, round 1)"
set xlabel "branch number"; set ylabel "pause (ms)"; set yrange [0:*]
plot "$OUT/charts/pause-ext4.dat" w lp pt 7 ps 0.5 t "ext4 (Diff written in the pause)", \
     "$OUT/charts/pause-prealloc.dat" w lp pt 5 ps 0.5 t "prealloc (forkd's fix)", \
     "$OUT/charts/pause-forkstore.dat" w lp pt 9 ps 0.6 t "forkstore branch"
EOF
    rm -f "$OUT"/charts/pause-*.dat
    made+=(pause.png)
fi

if nonempty depth.tsv depth.png; then
    gnuplot <<EOF
$term
set output "$OUT/charts/depth.png"
set title "Restore time against chain depth (bench-depth, medians)"
set xlabel "depth of the snapshot restored (Diffs above its root)"; set ylabel "seconds"; set yrange [0:*]
plot "$OUT/depth.tsv" u 1:2 w lp pt 7 t "forkstore restore at that depth", \
     "" u 1:3 w lp pt 5 t "forkstore restore, same image stored flat", \
     "" u 1:4 w lp pt 9 t "cp --sparse=always of the flat file"
EOF
    made+=(depth.png)
fi

if nonempty scale_catalog.tsv catalog.png; then
    awk -F'\t' '$1 == "a" { print $2, $3 / 1048576 }' "$OUT/scale_catalog.tsv" >"$OUT/charts/cat-a.dat"
    awk -F'\t' '$1 == "b" { print $2, $3 / 1048576 }' "$OUT/scale_catalog.tsv" >"$OUT/charts/cat-b.dat"
    plots="\"$OUT/charts/cat-a.dat\" w lp pt 7 ps 0.6 t \"part a: dense guest, scattered dirty pages\""
    [ -s "$OUT/charts/cat-b.dat" ] && plots="$plots, \"$OUT/charts/cat-b.dat\" w lp pt 5 ps 0.6 t \"part b: sparse guest\""
    gnuplot <<EOF
$term
set output "$OUT/charts/catalog.png"
set title "Catalog size against branches of one VM (bench-scale)"
set xlabel "snapshots in the chain"; set ylabel "catalog.db + WAL after a checkpoint (MiB)"; set yrange [0:*]
plot $plots
EOF
    rm -f "$OUT"/charts/cat-*.dat
    made+=(catalog.png)
fi

if nonempty lazy_sizes.tsv resume.png; then
    gnuplot <<EOF
$term
set output "$OUT/charts/resume.png"
set title "Time to a running VM against guest memory (bench-lazy, medians)"
set xlabel "guest memory (MiB)"; set ylabel "milliseconds"; set logscale x 2; set xrange [400:10000]; set yrange [0:*]
set xtics (512, 1024, 2048, 4096, 8192)
plot "$OUT/lazy_sizes.tsv" u 1:2 w lp pt 7 t "File: restore + load", \
     "" u 1:3 w lp pt 5 t "File: load request", \
     "" u 1:4 w lp pt 9 t "lazy: restore --lazy", \
     "" u 1:5 w lp pt 11 t "lazy: load request"
EOF
    made+=(resume.png)
fi

[ ${#made[@]} -gt 0 ] || { echo "plot: no data in $OUT" >&2; exit 1; }
for c in "${made[@]}"; do
    # A chart that gnuplot could not draw is an empty or tiny file.
    [ "$(stat -c %s "$OUT/charts/$c")" -gt 2000 ] || { echo "plot: $c was not drawn" >&2; exit 1; }
    echo "plot: $OUT/charts/$c"
    [ $record = 1 ] && cp "$OUT/charts/$c" "$here/charts/$c"
done
exit 0
