#!/usr/bin/env bash
# tests/python/run.sh: the Python binding's tests (python3 -m unittest)
# against the shared library $FORKSTORE_LIB. Under a sanitizer build
# ($SAN set) the sanitizer's runtime is preloaded into python3, which the
# instrumented library needs; leak checking is off there (the interpreter
# keeps its own allocations at exit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${FORKSTORE_LIB:?}" "${FORKGEN:?}" "${FCVMM:?}"
export PYTHONPATH=$here/../../src/python${PYTHONPATH:+:$PYTHONPATH}
if [ -n "${SAN:-}" ]; then
    pre=""
    case $SAN in *address*) pre=$(${CC:-cc} -print-file-name=libasan.so) ;; *undefined*) pre=$(${CC:-cc} -print-file-name=libubsan.so) ;; esac
    export LD_PRELOAD=$pre ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
cd "$here"
exec python3 -m unittest -v test_forkstore
