# forkctl's advice: a failure's message is the library's, then forkctl's
# advice for that command and return code in parentheses, given once: not
# again when the library's message already names it.
. "$(dirname "$0")/lib.sh"

# once PATTERN: the last error matches PATTERN on exactly one line, once.
once() {
    local n
    n=$(grep -o -- "$1" "$TESTDIR/err" | wc -l)
    [ "$n" -eq 1 ] || die "'$1' appears $n times in: $(cat "$TESTDIR/err")"
}

# A store that is not there: where to find it, or how to make it.
expect_fail 3 "No such file" "$FORKCTL" --store "$TESTDIR/none" images
once "forkctl init"
once "--store DIR"
expect_fail 3 "forkctl init" "$FORKCTL" --store "$TESTDIR/none" restore t --out o
once "forkctl init"

head -c 65536 /dev/urandom >m
head -c 4096 /dev/urandom >vm
fk init >/dev/null
fk ingest --tag t0 --memory m --vmstate vm >/dev/null

# An unknown snapshot: see the list, for each command that names one.
for cmd in "log nosuch" "info nosuch" "diff t0 nosuch" "tag nosuch x" "rmi nosuch" "restore nosuch --out o" \
           "export nosuch --forkd f"; do
    # shellcheck disable=SC2086
    expect_fail 3 "nosuch" fk $cmd
    once "forkctl images"
done

# A file that is there: restore says --force, once.
fk restore t0 --out o >/dev/null
expect_fail 1 "already exists" fk restore t0 --out o
once "--force"
# A tag that is taken: pick another or remove it, once.
expect_fail 1 "already exists" fk ingest --tag t0 --memory m --vmstate vm
once "forkctl rmi"
fk ingest --tag t1 --memory m --vmstate vm >/dev/null
expect_fail 1 "already exists" fk tag t0 t1
once "forkctl rmi"

# The advice follows the return code, not the message: a missing memory
# file (not found too, but not a snapshot) gets no `forkctl images`.
expect_fail 3 "nosuchfile" fk ingest --tag t9 --memory nosuchfile --vmstate vm
! grep -q "forkctl images" "$TESTDIR/err" || die "ingest of a missing file advises images: $(cat "$TESTDIR/err")"
# Usage errors keep their own advice line.
expect_fail 2 "Try 'forkctl restore --help'" fk restore
exit 0
