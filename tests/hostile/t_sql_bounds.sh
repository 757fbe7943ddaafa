# Hostile: unbounded SQL (issue 13 row 7). `sql` kept every row in memory
# (2.6 GB in 10 s with --json) and an endless recursive CTE never stopped.
# Rows now stream (RSS stays flat), --timeout stops a statement (default
# 30 s), --max-rows bounds the rows (default 1000000); both exit 7 with
# the rows so far printed and well formed.
. "$(dirname "$0")/../cli/lib.sh"
command -v jq >/dev/null || skip "jq not installed"
base_store
endless="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"

# An endless CTE that returns no rows stops at --timeout.
start=$(date +%s)
expect_fail 7 "stopped after 1 s \(the time limit\).*raise --timeout" \
    fk sql "$endless SELECT count(*) FROM c" --timeout 1
[ $(($(date +%s) - start)) -le 10 ] || die "--timeout 1 took $(($(date +%s) - start)) s"

# Rows stream: an endless result under /usr/bin/time keeps a small RSS in
# every format (main reached 2.6 GB).
# The bound is relative to a one-row query's RSS (sanitizer builds start
# higher); ASan's quarantine is kept small so freed rows are not counted.
if [ -x /usr/bin/time ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
    /usr/bin/time -f "%M" -o rss "$FORKCTL" --store "$TESTDIR/store" sql "SELECT 1" >/dev/null
    base=$(tail -n 1 rss)
    secs=1; [ -n "${HOSTILE_LONG:-}" ] && secs=10
    for fmt in --json --csv --quiet; do
        rc=0
        /usr/bin/time -f "%M" -o rss "$FORKCTL" --store "$TESTDIR/store" sql "$endless SELECT x, hex(randomblob(64)) AS h FROM c" $fmt \
            --timeout $secs --max-rows 0 >/dev/null 2>err || rc=$?
        [ $rc -eq 7 ] || die "endless $fmt exited $rc: $(cat err)"
        kb=$(tail -n 1 rss)
        [ "$kb" -lt $((base + 32768)) ] || die "endless $fmt: max RSS $kb KiB, $base KiB for one row (not streaming)"
        echo "endless $fmt for ${secs}s: max RSS $kb KiB (one row: $base KiB)"
    done
fi

# --max-rows: the rows before the limit are printed, JSON stays valid.
expect_fail 7 "stopped after 5 rows \(the row limit\)" fk sql "$endless SELECT x FROM c" --json --max-rows 5
[ "$(jq 'length' out)" = 5 ] || die "--max-rows 5 --json: $(cat out)"
[ "$(jq -c 'map(.x)' out)" = "[1,2,3,4,5]" ] || die "--max-rows 5 rows: $(cat out)"
# Exactly max-rows rows is not an error.
fk sql "$endless SELECT x FROM c LIMIT 5" --csv --max-rows 5 >o5 || die "5 rows with --max-rows 5 failed"
[ "$(wc -l <o5)" = 6 ] || die "csv header + 5 rows expected: $(cat o5)"
# The default row limit is 1000000.
expect_fail 7 "stopped after 1000000 rows" fk sql "$endless SELECT x FROM c" --csv --timeout 0
[ "$(wc -l <out)" = 1000001 ] || die "default --max-rows printed $(wc -l <out) lines"
# A table longer than its sizing sample still prints every row.
fk sql "$endless SELECT x, 'r' || x AS y FROM c LIMIT 2500" >tab
[ "$(wc -l <tab)" = 2501 ] || die "table of 2500 rows printed $(wc -l <tab) lines"
[ "$(sed -n 2501p tab | tr -s ' ')" = "2500 r2500" ] || die "table last line: $(tail -n 1 tab)"
# Long cells print whole, in the sample and after it.
fk sql "$endless SELECT x, printf('%.3000c', 'y') AS y FROM c LIMIT 1200" >tab
[ "$(awk 'NR > 1 && length($0) < 3002' tab | wc -l)" = 0 ] || die "a long table cell was cut"
# Empty results are well formed.
[ "$(fk sql "SELECT 1 WHERE 0" --json | jq length)" = 0 ] || die "empty --json"
# One value is bounded too.
expect_fail 2 "too big" fk sql "SELECT hex(zeroblob(100000000))"
for t in nan inf -1 1e300 86401 5s; do
    expect_fail 2 "--timeout takes a number of seconds" fk sql "SELECT 1" --timeout "$t"
done
for n in nan -1 1.5 1e16 x; do
    expect_fail 2 "--max-rows takes a whole number" fk sql "SELECT 1" --max-rows "$n"
done
expect_fail 2 "not both" fk sql "SELECT 1" --json --csv
# The default --timeout (30 s) stops an endless statement given no limit.
if [ -n "${HOSTILE_LONG:-}" ]; then
    start=$(date +%s)
    expect_fail 7 "stopped after 30 s" fk sql "$endless SELECT count(*) FROM c"
    [ $(($(date +%s) - start)) -le 45 ] || die "default timeout took $(($(date +%s) - start)) s"
fi
