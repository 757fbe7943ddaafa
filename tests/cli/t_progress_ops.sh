# The progress contract of forkstore.h, kept by every long operation:
# ingest, restore, compact, gc, verify, import-forkd, push, pull and remote
# verify. forkctl's FORKCTL_PROGRESS_LOG hook writes each call of the
# library's callback as "what done total seconds"; for each command run,
# check_log asserts done never goes back, done <= total, done < total until
# one final call with done == total, which is the last, and calls at least
# ~100 ms apart (the final one may come sooner). A failed operation makes
# no final call.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

# check_log FILE WHAT: the contract over FILE; prints the number of calls.
check_log() {
    [ -s "$1" ] || die "$2: no progress call at all"
    python3 - "$1" "$2" <<'EOF' || die "$2: progress contract broken: $(tail -5 "$1")"
import sys
f, what = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(f)]
assert all(r[0] == what.split()[0] for r in rows), "calls from another operation: %r" % rows[:3]
d = [int(r[-3]) for r in rows]; t = [int(r[-2]) for r in rows]; s = [float(r[-1]) for r in rows]
assert d[-1] == t[-1], "the last call has done %d != total %d" % (d[-1], t[-1])
for i in range(len(rows) - 1):
    assert d[i] < t[i], "call %d: done %d is not below total %d before the end" % (i, d[i], t[i])
    assert d[i] <= d[i + 1], "call %d: done goes back %d -> %d" % (i, d[i], d[i + 1])
    assert t[i] <= t[-1], "call %d: total %d above the final %d" % (i, t[i], t[-1])
    if i + 1 < len(rows) - 1:
        assert s[i + 1] - s[i] >= 0.09, "calls %d and %d only %.3f s apart" % (i, i + 1, s[i + 1] - s[i])
print(len(rows))
EOF
}
# plog WHAT CMD...: runs CMD with a fresh progress log and checks it.
plog() {
    local what=$1 n
    shift
    rm -f "$TESTDIR/plog"
    FORKCTL_PROGRESS_LOG=$TESTDIR/plog "$@" >/dev/null || die "$what failed"
    n=$(check_log "$TESTDIR/plog" "$what")
    echo "t_progress_ops: $what: $n calls" >&2
    [ "$what" != "verify" ] || last_verify=$(tail -n 1 "$TESTDIR/plog")
}

gen g --size 160M --snapshots 3 --seed 5
fk --quiet init
plog ingest fk ingest --tag s0 --memory g/00/memory.full --vmstate g/00/vmstate
n=$(wc -l <"$TESTDIR/plog")
[ "$n" -ge 2 ] || die "a 160 MiB ingest made $n progress call(s): nothing between start and end"
fk --quiet ingest --tag s1 --parent s0 --memory g/01/memory.diff --diff --vmstate g/01/vmstate
fk --quiet ingest --tag s2 --parent s1 --memory g/02/memory.diff --diff --vmstate g/02/vmstate
plog restore fk restore s2 --out r2
same r2/memory.bin g/02/memory.full
# verify counts bytes: the final total is the pages checked times 4096.
plog verify fk verify
pages=$(fk sql "SELECT count(*) FROM page" | tail -n 1)
[ "$(echo "$last_verify" | awk '{print $3}')" = $((pages * 4096)) ] ||
    die "verify's total is not its pages in bytes ($pages pages): $last_verify"
plog compact fk compact --level 3
fk --quiet rmi s0 s1
plog gc fk gc
same <(fk restore s2 --out r2b >/dev/null && cat r2b/memory.bin) g/02/memory.full
plog verify fk verify --sample 50

# A failed operation stops without the final call.
rm -f "$TESTDIR/plog"
head -c 100000 /dev/urandom >short
FORKCTL_PROGRESS_LOG=$TESTDIR/plog fk ingest --tag bad --parent s2 --memory short --diff --vmstate short \
    >/dev/null 2>&1 && die "an overlay of the wrong size was taken"
! grep -q '^ingest \([0-9]*\) \1 ' "$TESTDIR/plog" 2>/dev/null || die "a refused ingest made the final call"

# import-forkd: one progress over the whole tree, not one per snapshot.
FORKGEN=$FORKGEN "$root/tools/forkd-gen.sh" tree 24M >/dev/null
"$FORKCTL" --store "$TESTDIR/f" --quiet init
rm -f "$TESTDIR/plog"
FORKCTL_PROGRESS_LOG=$TESTDIR/plog "$FORKCTL" --store "$TESTDIR/f" import-forkd tree --rootfs-dir tree.cache \
    >/dev/null || die "import-forkd failed"
check_log "$TESTDIR/plog" import >/dev/null
[ "$(grep -c '^import \([0-9]*\) \1 ' "$TESTDIR/plog")" = 1 ] ||
    die "import-forkd made more than one final call (one per snapshot?): $(cat "$TESTDIR/plog")"

# push, pull, remote verify against a real S3 server.
rgw_up prog
fk --quiet remote add origin s3://prog/p/ --endpoint "$EP"
plog push fk push s2
"$FORKCTL" --store "$TESTDIR/c" --quiet init
"$FORKCTL" --store "$TESTDIR/c" --quiet remote add origin s3://prog/p/ --endpoint "$EP"
plog pull "$FORKCTL" --store "$TESTDIR/c" pull s2
"$FORKCTL" --store "$TESTDIR/c" --quiet restore s2 --out rc
same rc/memory.bin g/02/memory.full
plog remote fk remote verify
echo "t_progress_ops: the contract holds for ingest, restore, verify, compact, gc, import-forkd, push, pull, remote verify" >&2
