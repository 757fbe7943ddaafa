# Hostile: a restore racing an output-path swap (issue 13 row 9) left a
# hidden temporary file: its names were paths, so an unlink after the
# output directory was swapped for a symbolic link went elsewhere. Every
# name is now relative to the directory opened once: whatever the racer
# does, no .NAME.XXXXXX file stays anywhere, and what was placed is whole.
. "$(dirname "$0")/../cli/lib.sh"
fk init --chunk-size 1M >/dev/null
head -c $((1 << 20)) /dev/urandom >m
head -c 5000 /dev/urandom >vm
head -c 300000 /dev/urandom >extra
fk ingest --tag base --memory m --vmstate vm --file rootfs=extra >/dev/null
n=30; [ -n "${HOSTILE_LONG:-}" ] && n=400
command -v python3 >/dev/null || skip "python3 not installed"
mkdir dst other
ln -s other lnk
# The racer swaps dst (the directory) and lnk (a symbolic link to other)
# atomically with RENAME_EXCHANGE, over and over: dst always exists.
cat >racer.py <<'PY'
import ctypes, os, random, time
libc = ctypes.CDLL(None, use_errno=True)
while not os.path.exists("stop"):
    libc.renameat2(-100, b"dst", -100, b"lnk", 2)
    time.sleep(random.random() / 500)
PY
python3 racer.py &
pid=$!
ok=0
for i in $(seq $n); do
    if fk restore base --out dst --force >/dev/null 2>>errs; then ok=$((ok + 1)); fi
done
touch stop
wait $pid
# put the directory back at dst
[ -L dst ] && python3 -c 'import ctypes; ctypes.CDLL(None).renameat2(-100, b"dst", -100, b"lnk", 2)'
[ -d dst ] && [ ! -L dst ] && [ -L lnk ] || die "racer left dst/lnk swapped"
left=$(find dst/ other/ -name '.*' 2>/dev/null | head -5)
[ -z "$left" ] || die "hidden temporary files left behind after $n racing restores ($ok ok): $left"
for d in dst other; do
    for f in memory.bin vmstate rootfs; do
        [ -e "$d/$f" ] || continue
        case $f in memory.bin) same "$d/$f" m ;; vmstate) same "$d/$f" vm ;; rootfs) same "$d/$f" extra ;; esac
    done
done
echo "$n racing restores: $ok ok, no temporary file left"
# Without a racer, a restore fails cleanly too: no temporary file.
rm -rf out2 && mkdir out2 && : >out2/vmstate
expect_fail 1 "already exists" fk restore base --out out2
[ -z "$(find out2 -name '.*')" ] || die "failed restore left: $(find out2 -name '.*')"
