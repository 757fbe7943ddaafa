#!/bin/sh
# tests/valgrind/forkctl.sh: runs the real forkctl ($VG_FORKCTL) under
# valgrind memcheck; `make valgrind` points the CLI tests' $FORKCTL here.
# Each process writes its own log into $VG_LOGS (vg.<pid>); a report of
# any kind (invalid read/write, uninitialised value, definite or indirect
# leak, fd misuse) makes the log non-empty, and tests/valgrind/run.sh
# fails on any non-empty log, so an error cannot hide behind a command
# whose exit status the test ignores.
exec valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    --log-file="${VG_LOGS:?}/vg.%p" "${VG_FORKCTL:?}" "$@"
