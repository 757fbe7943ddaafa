# Names and paths that could escape: bad tags and artifact names are
# refused, a symlink planted in the output directory never redirects a
# restore, a failed restore leaves no temporary files, and a store that
# other users can write is refused with the command that fixes it. Each
# refusal is checked for its message and that the store and the output
# directory are unchanged.
. "$(dirname "$0")/lib.sh"
base_store
before=$(store_state)
unchanged() {
    [ "$(store_state)" = "$before" ] || die "$1 changed the store"
}

# ---- tags and artifact names ----
long=$(printf 'a%.0s' $(seq 200))
for t in ../x /abs a/b .hidden -x "$long" $'a\x01b' $'tab\tx' ''; do
    expect_fail 2 "(invalid|empty) tag|tag too long" fk ingest --tag "$t" --memory m --vmstate vm
done
expect_fail 2 "invalid tag '../x'.*\[A-Za-z0-9._\+-\]" fk ingest --tag ../x --memory m --vmstate vm
expect_fail 2 "tag too long \(200 characters\)" fk ingest --tag "$long" --memory m --vmstate vm
expect_fail 2 "invalid tag 'a\\\\x01b' \(character 2\)" fk ingest --tag $'a\x01b' --memory m --vmstate vm
expect_fail 2 "parent: invalid tag '../base'" fk ingest --tag ok --parent ../base --memory m --vmstate vm
for n in ../x /abs a/b .. . .x -x $'a\x01b'; do
    expect_fail 2 "artifact name" fk ingest --tag t1 --memory m --vmstate vm --file "$n=extra"
done
expect_fail 2 "artifact name '/abs'" fk ingest --tag t1 --memory m --vmstate vm --file /abs=extra
expect_fail 2 "artifact name 'a\\\\x01b' \(character 2\)" fk ingest --tag t1 --memory m --vmstate vm --file $'a\x01b=extra'
# 65 characters: the CLI refuses it before the library; 64 pass the rule.
n65=$(printf 'n%.0s' $(seq 65))
expect_fail 2 "NAME=PATH" fk ingest --tag t1 --memory m --vmstate vm --file "$n65=extra"
# restore writes the memory artifact as memory.bin: that name is taken.
expect_fail 2 "artifact name 'memory.bin' is reserved" fk ingest --tag t1 --memory m --vmstate vm --file memory.bin=extra
expect_fail 2 "artifact memory given twice" fk ingest --tag t1 --memory m --vmstate vm --file memory=m
# (argv cannot carry a NUL byte; C strings end at one: tests/fuzz/fuzz_ident.c)
unchanged "a refused ingest"
expect_fail 2 "invalid tag '../base'" fk restore ../base --out o1
expect_fail 2 "tag too long" fk restore "$long" --out o1
[ ! -e o1 ] || die "a refused restore created its output directory"

# ---- a symlink planted at OUT/memory.bin ----
mkdir -p outside dst
printf 'precious\n' >outside/target
ln -s "$TESTDIR/outside/target" dst/memory.bin
ln -s "$TESTDIR/outside/nonexistent" dst/vmstate
o_before=$(out_state dst) x_before=$(out_state outside)
expect_fail 1 "dst/memory.bin already exists \(pass --force" fk restore base --out dst
[ "$(out_state dst)" = "$o_before" ] || die "a refused restore changed the output directory"
[ "$(out_state outside)" = "$x_before" ] || die "a refused restore wrote through a symlink"
fk restore base --out dst --force >/dev/null
[ ! -L dst/memory.bin ] && [ -f dst/memory.bin ] || die "--force did not replace the symlink with a file"
[ ! -L dst/vmstate ] && [ -f dst/vmstate ] || die "--force did not replace the dangling symlink"
same dst/memory.bin m
same dst/vmstate vm
same dst/rootfs extra
[ "$(out_state outside)" = "$x_before" ] || die "restore --force wrote through a symlink"
[ ! -e outside/nonexistent ] || die "restore created the dangling symlink's target"
[ "$(cat outside/target)" = precious ] || die "symlink target changed"
# A symlinked output file of another artifact (rootfs) is no different.
rm -rf dst2 && mkdir dst2 && ln -s "$TESTDIR/outside/target" dst2/rootfs
expect_fail 1 "dst2/rootfs already exists" fk restore base --out dst2
[ "$(ls -A dst2)" = rootfs ] && [ -L dst2/rootfs ] || die "refused restore left files in dst2: $(ls -A dst2)"
unchanged "restore"

# ---- temporary files of a failed restore are removed ----
# Damage the last stored record of memory so that restore fails after it
# has created (and partly written) its temporary files.
q() { fk sql "$1" --csv | tail -n +2; }
last=$(q "SELECT p.chunk_id || ' ' || (p.off + p.len - 1) FROM page_place p JOIN run r ON p.id BETWEEN r.page_id
          AND r.page_id + r.npages - 1 JOIN artifact a ON a.id = r.artifact_id WHERE a.name = 'memory'
          ORDER BY r.pgno DESC LIMIT 1")
set -- $last
chunk=$(printf '%s/store/chunks/%08x.chunk' "$TESTDIR" "$1")
cp "$chunk" chunk.orig
printf '\xff' | dd of="$chunk" bs=1 seek="$2" conv=notrunc status=none
cmp -s "$chunk" chunk.orig && printf '\x00' | dd of="$chunk" bs=1 seek="$2" conv=notrunc status=none
expect_fail 5 "snapshot base, memory page [0-9]+" fk restore base --out dst3
[ -z "$(ls -A dst3 2>/dev/null)" ] || die "a failed restore left files: $(ls -A dst3)"
# ... also over existing files with --force: the old files stay as they were.
o_before=$(out_state dst)
expect_fail 5 "snapshot base, memory page" fk restore base --out dst --force
[ "$(out_state dst)" = "$o_before" ] || die "a failed restore --force changed the output directory: $(ls -A dst)"
cp chunk.orig "$chunk"
fk restore base --out dst4 >/dev/null && same dst4/memory.bin m

# ---- a store other users can write is refused ----
for target in store store/catalog.db store/chunks; do
    chmod g+w "$target"
    expect_fail 1 "writable by other users.*run \`chmod go-w .*$target\`" fk images
    expect_fail 1 "writable by other users" fk restore base --out dst5
    [ ! -e dst5 ] || die "restore from a refused store created its output"
    chmod g-w "$target"
    chmod o+w "$target"
    expect_fail 1 "writable by other users \(mode 0[0-7]*[2367]\)" fk images
    chmod o-w "$target"
done
fk images >/dev/null
unchanged "a refused open"
