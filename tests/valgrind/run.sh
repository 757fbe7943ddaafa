#!/usr/bin/env bash
# tests/valgrind/run.sh BUILD: memcheck over the round trip. Runs the
# randomized round-trip unit test (chains of depth 1..50, restore of every
# snapshot) under valgrind, then the CLI tests that exercise ingest,
# restore, gc, verify and the damaged-input paths with $FORKCTL pointing
# at tests/valgrind/forkctl.sh. Fails on any valgrind report: a non-zero
# exit (99) or any non-empty per-process log. Not in `make check`
# (about 10 minutes on 2 cores); run by `make valgrind`.
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/fks-vg.XXXXXX")
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect)

echo "== valgrind: test_roundtrip"
"${vg[@]}" --log-file="$logs/vg.roundtrip" "$build/tests/test_roundtrip" >/dev/null

echo "== valgrind: CLI tests (forkctl under memcheck)"
tests=()
for t in sparse gc rmi corrupt damaged paths place forkd sql info tag prune badinput schema sparse64g; do
    tests+=("$here/../cli/t_$t.sh")
done
VG_LOGS=$logs VG_FORKCTL=$build/forkctl FORKCTL=$here/forkctl.sh FORKGEN=$build/tools/forkgen \
    FCVMM=$build/tools/fcvmm FAILRENAME=$build/tests/failrename.so BUILD=$build \
    "$here/../cli/run.sh" "${tests[@]}" | sed 's/^/    /'
bad=$(find "$logs" -type f -size +0)
if [ -n "$bad" ]; then
    for f in $bad; do echo "--- $f"; head -n 60 "$f"; done
    echo "valgrind: reports in $logs"
    exit 1
fi
n=$(find "$logs" -type f | wc -l)
rm -rf "$logs"
echo "valgrind: clean ($n processes checked)"
