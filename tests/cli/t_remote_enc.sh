# Encrypted remotes (issue 16) against a real S3 server (Ceph radosgw,
# tools/s3/rgw.sh): push sealed, pull into another store with the same key
# file and restore byte for byte; the bucket holds no page hash, no page
# bytes and no tag in the clear; pushes are deterministic (a re-run reuses
# the packs) and dedup across hosts sharing the key; a wrong or replaced key
# file and tampered objects are refused with clear messages; remote verify,
# prune and gc work sealed; an unencrypted remote beside it is unchanged.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || die "python3 not installed"
rgw_up fleet
GC="--interval 1s --min-age 1s --lag 0.3s"
f() { local s=$1; shift; "$FORKCTL" --store "$TESTDIR/$s" "$@"; }

gen g --size 8M --snapshots 3 --seed 3
head -c 20000 /dev/urandom >vm          # incompressible: stored raw by a plain remote
head -c 3000 /dev/urandom >odd          # a short last page
head -c 2097152 /dev/urandom >lone.mem
for s in a b c d; do f $s init --chunk-size 4M >/dev/null; done
f a ingest --tag secret-base --memory g/00/memory.full --vmstate vm --file rootfs=odd >/dev/null
f a ingest --tag secret-1 --parent secret-base --memory g/01/memory.diff --diff --vmstate g/01/vmstate >/dev/null
f a ingest --tag secret-2 --parent secret-1 --memory g/02/memory.diff --diff --vmstate g/02/vmstate >/dev/null

# keygen: 64 hex digits, mode 0600, never over a file.
f a remote keygen key >/dev/null
[ "$(stat -c %a key)" = 600 ] || die "key file mode $(stat -c %a key)"
grep -Eqx '[0-9a-f]{64}' key || die "key file: $(cat key)"
before=$(sha key)
expect_fail 1 "already exists" f a remote keygen key
[ "$(sha key)" = "$before" ] || die "keygen overwrote a key file"
expect_fail 2 "goes with remote add" f a remote ls --encrypt key

# add: the catalog keeps the path and key id, never the key.
mkdir sub
(cd sub && "$FORKCTL" --store "$TESTDIR/a" remote add sec s3://fleet/enc --endpoint "$EP" --encrypt ../key >/dev/null)
f a remote add plain s3://fleet/plain --endpoint "$EP" >/dev/null
f a remote ls --json >ls.json
[ "$(jq -r '.[] | select(.name == "sec") | .key_file' ls.json)" = "$TESTDIR/key" ] || die "key_file: $(cat ls.json)"
kid=$(jq -r '.[] | select(.name == "sec") | .key_id' ls.json)
echo "$kid" | grep -Eqx '[0-9a-f]{16}' || die "key_id: $(cat ls.json)"
[ "$(jq -r '.[] | select(.name == "plain") | .encrypted' ls.json)" = false ] || die "plain is encrypted: $(cat ls.json)"
f a remote ls | grep -q "encrypted (key id $kid)" || die "remote ls: $(f a remote ls)"
! grep -a -q "$(cat key)" a/catalog.db* || die "the key is in the catalog"
head -c 100 /dev/urandom >notakey; chmod 600 notakey
expect_fail 2 "is not a key" f a remote add x s3://fleet/x --endpoint "$EP" --encrypt notakey
cp key open.key; chmod 644 open.key
expect_fail 1 "may be read by others" f a remote add x s3://fleet/x --endpoint "$EP" --encrypt open.key
expect_fail 3 "key file" f a remote add x s3://fleet/x --endpoint "$EP" --encrypt nosuch.key

# Push to both remotes.
f a push secret-2 --remote sec --json >pa.json
[ "$(jq .snapshots pa.json)" = 3 ] || die "push: $(cat pa.json)"
f a push secret-2 --remote plain >/dev/null
[ -n "$(keys enc/packs/)" ] && [ -n "$(keys enc/index/)" ] || die "nothing in the bucket: $(keys enc/)"
[ "$(keys enc/snapshots/ | wc -l)" = 3 ] || die "manifests: $(keys enc/snapshots/)"
! keys enc/ | grep -q secret || die "a tag is in a key: $(keys enc/snapshots/)"

# The bucket's objects hold no page hash (the catalog's XXH3-128 of every
# page), no 64-byte run of any page of vm or odd and no tag: the plain
# remote beside it holds them all (so the check can fail).
fetch_all() { rm -rf "$2"; mkdir -p "$2"; local k; for k in $(keys "$1/"); do s3curl -o "$2/$(echo "$k" | tr / _)" "$EP/fleet/$k" || die "GET $k"; done; }
fetch_all enc objs.enc
fetch_all plain objs.plain
f a sql "SELECT hex(hash) FROM page" --csv | grep -v hash >hashes
[ "$(wc -l <hashes)" -gt 1000 ] || die "test setup: $(wc -l <hashes) pages"
cat >scan.py <<'EOF'
import os, sys
d, hashes = sys.argv[1], [bytes.fromhex(h.strip()) for h in open('hashes')]
blob = b''.join(open(os.path.join(d, f), 'rb').read() for f in sorted(os.listdir(d)))
runs = []
for f in ('vm', 'odd'):
    b = open(f, 'rb').read()
    runs += [b[o:o + 64] for o in range(0, len(b) - 64, 997)]
print(sum(h in blob for h in hashes), sum(r in blob for r in runs), blob.count(b'secret-'))
EOF
read -r h r t < <(python3 scan.py objs.enc)
[ "$h $r $t" = "0 0 0" ] || die "the encrypted remote shows $h page hashes, $r runs of page bytes, $t tags"
read -r h r t < <(python3 scan.py objs.plain)
[ "$h" -gt 1000 ] && [ "$r" -gt 10 ] && [ "$t" -gt 0 ] || die "test setup: the plain remote shows $h hashes, $r runs, $t tags"
for o in objs.enc/*; do
    case $o in
        *.pack) [ "$(head -c 8 "$o" | od -An -c | tr -d ' ')" = 'FKSPACK002' ] || die "$o is not a sealed pack" ;;
    esac
done

# Idempotent and deterministic: a push again sends nothing; with the
# indexes and manifests deleted, a push rebuilds the same packs (same
# names) and uploads none of them.
f a push secret-2 --remote sec --json >pa2.json
[ "$(jq .snapshots pa2.json) $(jq .bytes_up pa2.json)" = "0 0" ] || die "re-push: $(cat pa2.json)"
npacks=$(keys enc/packs/ | wc -l)
for k in $(keys enc/index/) $(keys enc/snapshots/); do s3curl -X DELETE "$EP/fleet/$k" >/dev/null || die "DELETE $k"; done
f a push secret-2 --remote sec --json >pa3.json
[ "$(jq .snapshots pa3.json) $(jq .packs_sent pa3.json) $(jq .packs_reused pa3.json)" = "3 0 $npacks" ] ||
    die "a push after losing indexes and manifests did not rebuild the same packs: $(cat pa3.json)"

# Another host with the same key file pulls and restores byte for byte.
cp key keyb; chmod 600 keyb
f b remote add sec s3://fleet/enc --endpoint "$EP" --encrypt keyb >/dev/null
f b pull secret-2 --remote sec --json >pb.json
[ "$(jq .snapshots pb.json)" = 3 ] || die "pull: $(cat pb.json)"
for t in secret-base secret-1 secret-2; do
    f a restore $t --out ra.$t >/dev/null; f b restore $t --out rb.$t >/dev/null
    for x in memory.bin vmstate; do cmp ra.$t/$x rb.$t/$x || die "$t $x differs after an encrypted pull"; done
done
cmp rb.secret-base/rootfs odd && cmp rb.secret-2/memory.bin g/02/memory.full || die "pulled files differ"
f b verify >/dev/null || die "verify after pull"
# ... and its push of the same pages dedups against a's (keyed names agree).
f b ingest --tag b-copy --memory g/00/memory.full --vmstate odd >/dev/null
f b push b-copy --remote sec --json >pb2.json
[ "$(jq .pages_on_remote pb2.json)" -gt 100 ] && [ "$(jq .pages_sent pb2.json)" -lt 5 ] ||
    die "no dedup between hosts sharing a key: $(cat pb2.json)"

# A wrong key file: refused by name (exit 2), before any page is used.
f c remote keygen other.key >/dev/null
f c remote add sec s3://fleet/enc --endpoint "$EP" --encrypt other.key >/dev/null
expect_fail 2 "sealed with key id [0-9a-f]{16}, but the key file of remote sec .* has key id [0-9a-f]{16}: wrong key file" \
    f c pull secret-2 --remote sec
expect_fail 2 "wrong key file" f c remote verify --remote sec
[ "$(f c images --json | jq length)" = 0 ] || die "a pull with a wrong key ingested something"
# A key file replaced after add (another key at the same path).
cp keyb keyb.good; cp other.key keyb
expect_fail 2 "was added with key id $kid: wrong key file" f b pull secret-2 --remote sec
cp keyb.good keyb
# No key at all: an unencrypted remote on the encrypted prefix is told so.
f c remote add nokey s3://fleet/enc --endpoint "$EP" >/dev/null
expect_fail 2 "is encrypted, but remote nokey has no key: add the remote with --encrypt" f c pull secret-2 --remote nokey
# ... and an encrypted remote on a plain prefix refuses its objects.
f c remote add wrongway s3://fleet/plain --endpoint "$EP" --encrypt other.key >/dev/null
expect_fail 5 "is not encrypted, but remote wrongway is" f c pull secret-2 --remote wrongway

# Tampering: a byte of every sealed manifest (re-put under its key) fails
# its authentication; a byte of every pack fails its name. Both exit 5,
# nothing ingested; remote verify finds the packs.
f d remote add sec s3://fleet/enc --endpoint "$EP" --encrypt key >/dev/null
# damage PREFIX OFFSET: flips a byte of every object under PREFIX, keeping
# the originals in good/; heal PREFIX puts them back.
mkdir -p good
damage() {
    local k o
    for k in $(keys "$1"); do
        o=good/$(echo "$k" | tr / _)
        s3curl -o "$o" "$EP/fleet/$k" || die "GET $k"
        cp "$o" bad.obj
        printf '\xff' | dd of=bad.obj bs=1 seek="$2" conv=notrunc 2>/dev/null
        cmp -s "$o" bad.obj && printf '\x00' | dd of=bad.obj bs=1 seek="$2" conv=notrunc 2>/dev/null
        s3put "$k" bad.obj
    done
}
heal() { local k; for k in $(keys "$1"); do s3put "$k" "good/$(echo "$k" | tr / _)"; done; }
damage enc/snapshots/ 40
expect_fail 5 "remote manifest .* fails its authentication" f d pull secret-2 --remote sec
heal enc/snapshots/
damage enc/packs/ 5000
expect_fail 5 "does not match its name" f d pull secret-2 --remote sec
expect_fail 5 "does not match its name" f d remote verify --remote sec
heal enc/packs/
[ "$(f d images --json | jq '[.[] | select(.tag == "secret-2")] | length')" = 0 ] || die "a tampered pull ingested secret-2"
f d remote verify --remote sec --json >vr.json || die "remote verify of an encrypted remote: $(cat vr.json)"
[ "$(jq .pages_reachable vr.json)" -gt 1000 ] && [ "$(jq .packs_checked vr.json)" = "$(keys enc/packs/ | wc -l)" ] ||
    die "remote verify: $(cat vr.json)"

# Prune and gc, sealed: a lone snapshot pruned, its packs freed by two gc
# runs; the kept chain still pulls and restores, verify passes.
f a ingest --tag lone --memory lone.mem --vmstate odd >/dev/null
f a push lone --remote sec >/dev/null
f a remote prune --remote sec --keep-tag 'secret-*' --keep-tag b-copy --json >pr.json
[ "$(jq -r '.removed | join(" ")' pr.json)" = lone ] || die "remote prune: $(cat pr.json)"
f a remote gc --remote sec $GC --json >gc1.json
sleep 2.2
f a remote gc --remote sec $GC --json >gc2.json
[ "$(jq .packs_deleted gc2.json)" -ge 1 ] || die "gc freed nothing: $(cat gc1.json gc2.json)"
[ "$(jq .packs_referenced gc2.json)" -ge 1 ] || die "gc found nothing referenced: $(cat gc2.json)"
f a remote verify --remote sec >/dev/null || die "remote verify after gc: $(f a remote verify --remote sec 2>&1)"
f c remote rm sec >/dev/null
f c remote add sec s3://fleet/enc --endpoint "$EP" --encrypt keyb >/dev/null
f c pull secret-2 b-copy --remote sec >/dev/null
f c restore secret-2 --out rc.secret-2 >/dev/null
cmp rc.secret-2/memory.bin g/02/memory.full || die "secret-2 after gc differs"
expect_fail 3 "snapshot lone not found on remote sec" f c pull lone --remote sec

# The unencrypted remote beside it works as before.
f d remote add plain s3://fleet/plain --endpoint "$EP" >/dev/null
f d pull secret-2 --remote plain >/dev/null
f d restore secret-2 --out rd.secret-2 >/dev/null
cmp rd.secret-2/memory.bin g/02/memory.full || die "secret-2 from the plain remote differs"
f d remote verify --remote plain >/dev/null || die "remote verify of the plain remote"
