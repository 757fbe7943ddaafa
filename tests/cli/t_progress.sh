# The progress line ("... MB/s  ETA ...") is drawn on stderr when stderr is
# a terminal, and never when it is a pipe or a file, or with --quiet.
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || skip "script (util-linux) not installed"
gen g --size 96M --snapshots 1 --seed 2
fk init >/dev/null
fk ingest --tag big --memory g/00/memory.full --vmstate g/00/vmstate >/dev/null
q() { printf '%q ' "$@"; }
# Under a pseudo-terminal: stdout to a file, so the terminal shows only stderr.
script -qfec "$(q "$FORKCTL" --store "$TESTDIR/store" restore big --out r1) >out1" /dev/null >tty1 </dev/null ||
    die "restore under a terminal failed: $(cat tty1)"
same r1/memory.bin g/00/memory.full
grep -q 'MB/s' tty1 && grep -q 'ETA' tty1 || die "no progress line on a terminal: $(cat -v tty1)"
grep -q 'restore' tty1 || die "the progress line does not say what it measures: $(cat -v tty1)"
grep -q 'MB/s' out1 && die "progress line on stdout"
# ingest draws it too.
script -qfec "$(q "$FORKCTL" --store "$TESTDIR/store" ingest --tag big2 --memory g/00/memory.full --vmstate g/00/vmstate) >/dev/null" \
    /dev/null >tty2 </dev/null || die "ingest under a terminal failed: $(cat tty2)"
grep -q 'MB/s' tty2 || die "no progress line for ingest: $(cat -v tty2)"
# --quiet under a terminal: none.
script -qfec "$(q "$FORKCTL" --store "$TESTDIR/store" --quiet restore big --out r2) >/dev/null" /dev/null >tty3 </dev/null ||
    die "quiet restore failed: $(cat tty3)"
grep -q 'MB/s' tty3 && die "progress line despite --quiet: $(cat -v tty3)"
# stderr a pipe, or a file: none.
fk restore big --out r4 2>&1 >/dev/null | cat >pipe4
grep -q 'MB/s' pipe4 && die "progress line into a pipe: $(cat -v pipe4)"
fk restore big --out r5 >/dev/null 2>file5
grep -q 'MB/s' file5 && die "progress line into a file: $(cat -v file5)"
same r5/memory.bin g/00/memory.full
