# The crash test, shortened: ~25 SIGKILLs at random moments of ingest,
# rmi, prune and gc; after each, verify passes and every acknowledged
# snapshot restores byte-identical; after a final gc the store is within
# 5% of a fresh store holding the same snapshots. The long run is
# `make crash-test` (200 kills).
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/tools/crashtest.sh" --kills "${CRASH_KILLS:-25}" --size 4M --dir "$TESTDIR/crash"
