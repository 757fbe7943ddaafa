# Issue 13 row 9: a correct forkd chain deeper than 256 links used to be
# refused as inconsistent (the parent hash was checked against a memory
# rebuilt through at most 256 diffs). forkd's parent_content_hash is the
# SHA-256 of the parent's memory file itself, so depth does not matter:
# a 300-link chain (600 in the long run) imports and restores exactly.
# Its export is cut to forkd's 32 links (the oldest written as a full
# base), passes forkd's checks and assembles to the same bytes.
. "$(dirname "$0")/../cli/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
n=300; [ "${HOSTILE_LONG:-0}" = 1 ] && n=600
FORKGEN=$FORKGEN "$root/tools/forkd-gen.sh" deep 64K "$n"
fk init >/dev/null
fk import-forkd deep --rootfs-dir deep.cache >out.txt
grep -q "imported $((n + 1)) snapshots" out.txt || die "deep import: $(cat out.txt)"
d=$(fk info "link$n" --json | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["depth"], len(j["chain"]))')
[ "$d" = "$n $((n + 1))" ] || die "link$n: depth and chain length $d, expected $n $((n + 1))"
for t in link1 link$((n / 2)) link$((n - 1)) link$n; do
    rm -rf r && fk restore "$t" --out r >/dev/null && same r/memory.bin "deep.expected/$t.memory"
done
# forkd itself would not restore more than 32 links; the reference does with a larger limit
python3 "$root/tools/forkd-assemble.py" --max-depth $((n + 1)) deep "link$n" ref >/dev/null
same ref "deep.expected/link$n.memory"
fk export "link$n" --forkd exp >out.txt
grep -q "as a chain of 33 (base link$((n - 32)))" out.txt || die "export: $(cat out.txt)"
! grep -q parent_tag "exp/link$((n - 32))/snapshot.json" || die "the exported base has a parent"
python3 "$root/tools/forkd-assemble.py" exp "link$n" asm >/dev/null
same asm "deep.expected/link$n.memory"
