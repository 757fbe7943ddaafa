# Issue 13 row 9: export of a snapshot holding files "rootfs" and
# "rootfs.ext4" kept only one of them; a failed export left OUT/<tag>
# behind, so its retry failed with "already exists". Export is now all or
# nothing: built in a temporary directory inside OUT and renamed into
# place; every failure (each rename made to fail in turn, a damaged
# chunk) leaves OUT exactly as it was, and the retry then succeeds.
. "$(dirname "$0")/../cli/lib.sh"
[ -f "${FAILRENAME:-}" ] || die "FAILRENAME (build/tests/failrename.so) not built"
# under ASan the preloaded injector comes before the runtime: allow it
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
root=$(cd "$(dirname "$0")/../.." && pwd)
base_store
head -c 8192 /dev/urandom >ext4
fk ingest --tag both --parent base --memory m --vmstate vm --file rootfs=extra --file rootfs.ext4=ext4 >/dev/null
fk export both --forkd out >/dev/null
same out/both/rootfs extra
same out/both/rootfs.ext4 ext4
grep -q "\"rootfs\": \"$TESTDIR/out/both/rootfs\"" out/both/snapshot.json || die "rootfs path: $(cat out/both/snapshot.json)"
same out/base/rootfs.ext4 extra
# Failures at every rename (restore's and the placement's): OUT unchanged.
rm -rf out && mkdir out && echo keep >out/other
state=$(out_state out)
n=1 max=40; [ "${HOSTILE_LONG:-0}" = 1 ] && max=200
while :; do
    rc=0
    LD_PRELOAD="$FAILRENAME" FKS_FAIL_RENAME=$n "$FORKCTL" --store "$TESTDIR/store" export both --forkd out \
        >/dev/null 2>err.txt || rc=$?
    [ "$rc" = 0 ] && break
    [ "$(out_state out)" = "$state" ] || die "failed export (rename $n) left: $(ls -A out)"
    grep -q "forkctl: " err.txt || die "failed export (rename $n) without a message"
    n=$((n + 1))
    [ "$n" -le "$max" ] || die "export never succeeded"
done
[ "$n" -gt 2 ] || die "only $n renames: the placement was not exercised"
python3 "$root/tools/forkd-assemble.py" out both asm >/dev/null
same asm m
# A damaged store: the export fails, leaves nothing, the retry works.
rm -rf out2 && cp -a store store.good
for c in store/chunks/*.chunk; do printf 'XXXXXXXX' | dd of="$c" bs=1 seek=200 conv=notrunc status=none; done
rc=0; fk export both --forkd out2 >/dev/null 2>err.txt || rc=$?
[ "$rc" != 0 ] || die "export from a damaged store succeeded"
[ -z "$(ls -A out2 2>/dev/null)" ] || die "a failed export left $(ls -A out2)"
rm -rf store && mv store.good store
fk export both --forkd out2 >/dev/null || die "retry after a failed export: $(cat "$TESTDIR/err")"
same out2/both/rootfs.ext4 ext4
# The export imports back with the rootfs snapshot.json names (not the
# other file), byte for byte.
fk import-forkd out2 --prefix rt- >/dev/null
fk restore rt-both --out rt >/dev/null
same rt/rootfs extra
same rt/memory.bin m
