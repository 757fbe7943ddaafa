# gc in a loop beside two processes ingesting and restoring, shortened to
# 12 s (the long run is `make stress-test`, 60 s): no error reaches any
# process, everything verifies and restores exactly.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/tools/concurrency.sh" --seconds "${CONC_SECONDS:-12}" --dir "$TESTDIR/conc"
