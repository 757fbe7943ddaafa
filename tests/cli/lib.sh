# tests/cli/lib.sh: helpers sourced by every CLI test.
set -euo pipefail
: "${FORKCTL:?FORKCTL must point at the forkctl binary}"
fk() { "$FORKCTL" --store "$TESTDIR/store" "$@"; }

die() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "$*" >&2; exit 77; }

# expect_fail CODE PATTERN CMD...: CMD exits with CODE and its stderr
# matches PATTERN (grep -E).
expect_fail() {
    local code=$1 pat=$2; shift 2
    local rc=0
    "$@" >"$TESTDIR/out" 2>"$TESTDIR/err" || rc=$?
    [ "$rc" -eq "$code" ] || die "expected exit $code from '$*', got $rc: $(cat "$TESTDIR/err")"
    grep -Eq -- "$pat" "$TESTDIR/err" || die "stderr of '$*' does not match /$pat/: $(cat "$TESTDIR/err")"
    [ "$(wc -l <"$TESTDIR/err")" -ge 1 ] || die "no error message from '$*'"
}

# store_state: a digest of everything that matters in the store: the
# catalog's rows and the chunk files' committed bytes and names.
store_state() {
    { fk sql "SELECT id, tag, parent_id, stored_bytes FROM snapshot ORDER BY id" --csv
      fk sql "SELECT * FROM artifact ORDER BY id" --csv
      fk sql "SELECT * FROM page ORDER BY id" --csv
      fk sql "SELECT * FROM run ORDER BY artifact_id, pgno" --csv
      fk sql "SELECT id, used FROM chunk ORDER BY id" --csv
      (cd "$TESTDIR/store/chunks" && ls); } | sha256sum | cut -d' ' -f1
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# same FILE1 FILE2: byte-identical, by SHA-256.
same() { [ "$(sha "$1")" = "$(sha "$2")" ] || die "$1 and $2 differ"; }

# gen DIR ARGS...: a generated chain (tools/gen/forkgen).
gen() {
    [ -x "${FORKGEN:-}" ] || die "FORKGEN not built"
    local d=$1; shift
    "$FORKGEN" --out "$d" --quiet "$@" >/dev/null
}

# out_state DIR: names, types, symlink targets and file contents under DIR
# ("absent" if there is no DIR), to check that a failure left DIR alone.
out_state() {
    [ -e "$1" ] || [ -L "$1" ] || { echo absent; return; }
    (cd "$1" && find . -printf '%P %y %l\n' | sort
     find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}

# base_store: a store (1 MiB chunks) holding snapshot "base" of three
# random files kept beside it: m (memory), vm (vmstate), extra (rootfs).
base_store() {
    fk init --chunk-size 1M >/dev/null
    head -c 65536 /dev/urandom >m
    head -c 5000 /dev/urandom >vm
    head -c 300 /dev/urandom >extra
    fk ingest --tag base --memory m --vmstate vm --file rootfs=extra >/dev/null
}

# ---- the test VMM (tools/vmm/fcvmm) for lazy restore tests ----
# start_vmm SOCK ARGS...: starts fcvmm (backend $BACKEND, default thread) on
# SOCK and waits for it; $vpid is its pid, added to pids (kill_pids kills them).
pids=()
kill_pids() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
start_vmm() {
    local sock=$1
    shift
    "$FCVMM" --api-sock "$sock" --backend "${BACKEND:-thread}" "$@" 2>>vmm.err &
    pids+=($!)
    vpid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
    die "fcvmm did not start: $(cat vmm.err)"
}
api() { curl -sf --max-time 60 --unix-socket "$1" "http://localhost$2"; }
put() { curl -s --max-time 60 -o "$TESTDIR/put.out" -w '%{http_code}' -X PUT --unix-socket "$1" "http://localhost$2" -d "$3"; }
full() { # full SOCK FILE: a Full snapshot of the (paused) VM into FILE
    local code
    code=$(put "$1" /snapshot/create "{\"snapshot_path\":\"$TESTDIR/full.vs\",\"mem_file_path\":\"$2\"}")
    [ "$code" = 204 ] || die "snapshot/create answered $code: $(cat put.out)"
}
gone() { # gone PID: waits up to 10 s for PID to exit
    for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    die "process $1 still runs"
}

# rgw_up BUCKET: a Ceph radosgw of this test's own (tools/s3/rgw.sh; skips
# if Ceph is not installed), stopped on exit (after kill_pids), its credentials exported,
# BUCKET created; sets $rgw (the script) and $EP (the endpoint).
rgw_up() {
    rgw="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tools/s3/rgw.sh"
    local b
    for b in ceph-mon ceph-osd radosgw; do
        command -v $b >/dev/null || skip "$b not installed (tools/deps.sh remote installs Ceph radosgw)"
    done
    trap 'kill_pids; "$rgw" stop "$TESTDIR/rgw" >/dev/null 2>&1 || true' EXIT
    "$rgw" start "$TESTDIR/rgw" >"$TESTDIR/rgw.out" 2>&1 || die "rgw did not start: $(tail -5 "$TESTDIR/rgw.out")"
    set -a; . "$TESTDIR/rgw/env"; set +a
    "$rgw" bucket "$TESTDIR/rgw" "$1"
    export FORKSTORE_S3_ATTEMPTS=3
    EP=$RGW_ENDPOINT
    S3_BUCKET=$1
}

# s3curl ARGS...: a signed request through curl (not our client).
s3curl() {
    curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}
# keys PREFIX: the keys under PREFIX in $S3_BUCKET (query sorted and
# encoded: libcurl 7.88 signs it as sent).
keys() {
    local enc=${1//\//%2F}
    s3curl "$EP/$S3_BUCKET?list-type=2&prefix=$enc" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' || true
}
# s3put KEY FILE: puts FILE's bytes under KEY (a test's damage in the bucket).
s3put() {
    curl -sf -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: $(sha "$2")" --data-binary @"$2" "$EP/$S3_BUCKET/$1" >/dev/null
}
