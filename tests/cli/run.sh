#!/usr/bin/env bash
# tests/cli/run.sh: runs every tests/cli/t_*.sh (or those named) and prints
# "N passed, N failed". Each test runs in its own temporary directory with
# $FORKCTL, $FORKGEN and $FCVMM pointing at the built binaries; a test
# exits 0 to pass, 77 to skip (with the reason on stderr), anything else to
# fail. Set KEEP=1 to keep the directories of failed tests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0 skip=0 failed=()
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=("$here"/t_*.sh)
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/fks-$name.XXXXXX")
    start=$(date +%s.%N)
    t=$(cd "$(dirname "$t")" && pwd)/$(basename "$t")
    (cd "$dir" && TESTDIR="$dir" bash "$t") >"$dir.log" 2>&1
    rc=$?
    secs=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo "?")
    case $rc in
        0) pass=$((pass + 1)); printf 'PASS %-28s %6.1fs\n' "$name" "$secs" ;;
        77) skip=$((skip + 1)); printf 'SKIP %-28s (%s)\n' "$name" "$(tail -n 1 "$dir.log")" ;;
        *) fail=$((fail + 1)); failed+=("$name"); printf 'FAIL %-28s (exit %d)\n' "$name" "$rc"
           sed 's/^/    | /' "$dir.log" | tail -n 40 ;;
    esac
    if [ $rc -eq 0 ] || [ $rc -eq 77 ] || [ -z "${KEEP:-}" ]; then rm -rf "$dir" "$dir.log"; fi
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "cli: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
