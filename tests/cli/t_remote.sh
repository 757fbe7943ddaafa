# The remote tier against a real S3 server (Ceph radosgw on a memstore OSD,
# started here by tools/s3/rgw.sh; .ci/run installs it): two stores share
# one bucket, each distinct page lands there once, a third store pulls and
# restores byte for byte, a killed push re-runs to completion, and damage
# in the bucket or wrong credentials are refused with clear messages.
# REMOTE_LONG=1 (make test-remote) runs the kill loop 10 times, not once.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
rgw_up fleet

fa() { "$FORKCTL" --store "$TESTDIR/a" "$@"; }
fb() { "$FORKCTL" --store "$TESTDIR/b" "$@"; }
fc() { "$FORKCTL" --store "$TESTDIR/c" "$@"; }

# pack_pages PREFIX: "ENTRIES DISTINCT INDEXED" over every pack and index
# under PREFIX, each checked against its name: page entries in packs,
# distinct hashes among them, entries in the indexes.
pack_pages() {
    local k
    rm -rf "$TESTDIR/objs"
    mkdir -p "$TESTDIR/objs"
    for k in $(keys "$1/packs/") $(keys "$1/index/"); do
        s3curl -o "$TESTDIR/objs/$(basename "$k")" "$EP/fleet/$k" || die "GET $k"
    done
    python3 - "$TESTDIR/objs" <<'EOF'
import hashlib, os, struct, sys
d = sys.argv[1]; n = 0; seen = set(); idx = 0
for f in sorted(os.listdir(d)):
    b = open(os.path.join(d, f), 'rb').read()
    assert hashlib.sha256(b).hexdigest() == f.split('.')[0], f + ': content does not match its name'
    if f.endswith('.pack'):
        assert b[:8] == b'FKSPACK\x01', f
        cnt, = struct.unpack_from('<I', b, 8)
        for i in range(cnt):
            seen.add(b[16 + 32 * i:32 + 32 * i]); n += 1
    else:
        assert b[:8] == b'FKSIDX\x00\x01', f
        idx += struct.unpack_from('<I', b, 12)[0]
print(n, len(seen), idx)
EOF
}

gen "$TESTDIR/g1" --size 16M --snapshots 3 --seed 1
gen "$TESTDIR/g2" --size 16M --snapshots 3 --seed 2
for s in a b c; do "$FORKCTL" --store "$TESTDIR/$s" init --chunk-size 4M >/dev/null; done
# The common base, ingested on both hosts from the same files.
fa ingest --tag base --memory g1/00/memory.full --vmstate g1/00/vmstate >/dev/null
fb ingest --tag base --memory g1/00/memory.full --vmstate g1/00/vmstate >/dev/null
fa ingest --tag a1 --parent base --memory g1/01/memory.diff --diff --vmstate g1/01/vmstate >/dev/null
fa ingest --tag a2 --parent a1 --memory g1/02/memory.diff --diff --vmstate g1/02/vmstate >/dev/null
fb ingest --tag b1 --parent base --memory g2/01/memory.diff --diff --vmstate g2/01/vmstate >/dev/null
fb ingest --tag b2 --parent b1 --memory g2/02/memory.diff --diff --vmstate g2/02/vmstate >/dev/null
head -c 3000 /dev/urandom >odd    # a short last page
# b3: b2's memory with 16 pages zeroed (a pull writes them as explicit zeros in a Diff).
cp g2/02/memory.full m3
dd if=/dev/zero of=m3 bs=4096 seek=300 count=16 conv=notrunc 2>/dev/null
fb ingest --tag b3 --parent b2 --memory m3 --vmstate odd --file rootfs=odd >/dev/null

# remote add / ls / rm; the catalog keeps no credentials.
for s in fa fb fc; do $s remote add origin s3://fleet/hosts/ --endpoint "$EP" >/dev/null; done
fa remote add other s3://fleet/x --endpoint "$EP" --region eu-west-1 >/dev/null
[ "$(fa remote ls --json | jq -r '.[1].url + " " + .[1].region')" = "s3://fleet/x eu-west-1" ] || die "remote ls: $(fa remote ls)"
[ "$(fa remote ls --json | jq -r '.[0].url')" = "s3://fleet/hosts" ] || die "a trailing / is dropped"
expect_fail 1 "remote origin already exists" fa remote add origin s3://fleet/p --endpoint "$EP"
expect_fail 2 "s3://BUCKET" fa remote add bad http://fleet --endpoint "$EP"
expect_fail 2 "bucket name" fa remote add bad s3://Fl/x --endpoint "$EP"
expect_fail 2 "endpoint" fa remote add bad s3://fleet/x --endpoint ftp://h
expect_fail 2 "port must be" fa remote add bad s3://fleet/x --endpoint http://127.0.0.1:
expect_fail 2 "needs --endpoint" fa remote add bad s3://fleet/x
# With two remotes, push needs --remote.
expect_fail 2 "2 remotes: name one" fa push a2
fa remote rm other >/dev/null
expect_fail 3 "remote other not found" fa remote rm other
! grep -a -q "$AWS_SECRET_ACCESS_KEY" "$TESTDIR/a/catalog.db" || die "the secret is in the catalog"

# Two hosts push into one bucket; the base goes up once.
fa push a2 --json >pa.json
fb push b3 --json >pb.json
[ "$(jq .snapshots pa.json)" = 3 ] && [ "$(jq .snapshots pb.json)" = 3 ] || die "push: $(cat pa.json pb.json)"
[ "$(jq .skipped pb.json)" = 1 ] || die "b's push did not find the base already there: $(cat pb.json)"
[ "$(jq .pages_on_remote pb.json)" -gt 0 ] || die "no dedup across hosts: $(cat pb.json)"
# The bucket holds each distinct page once: as many entries as distinct
# hashes, and as many as the two stores hold together.
read -r entries distinct indexed < <(pack_pages hosts)
union=$( { fa sql "SELECT hex(hash) FROM page" --csv; fb sql "SELECT hex(hash) FROM page" --csv; } | grep -v hash | sort -u | wc -l)
[ "$entries" = "$distinct" ] || die "the bucket holds $entries page entries for $distinct distinct pages"
[ "$entries" = "$union" ] || die "the bucket holds $entries pages, the stores $union distinct ones"
[ "$indexed" = "$entries" ] || die "the indexes name $indexed pages, the packs hold $entries"
# Requests scale with packs, not pages.
req=$(jq .requests pa.json); pages=$(jq .pages_sent pa.json)
[ "$req" -lt $((pages / 50)) ] || die "push a2: $req requests for $pages pages"
# Idempotent: a second push sends nothing.
fa push a2 --json >pa2.json
[ "$(jq .snapshots pa2.json) $(jq .skipped pa2.json) $(jq .bytes_up pa2.json)" = "0 3 0" ] || die "re-push: $(cat pa2.json)"

# A third host pulls both chains and restores them byte for byte.
fc pull a2 b3 --json >pc.json
[ "$(jq .snapshots pc.json) $(jq .skipped pc.json)" = "6 1" ] || die "pull: $(cat pc.json)"
for t in base a1 a2; do
    fa restore $t --out ra.$t >/dev/null; fc restore $t --out rc.$t >/dev/null
    cmp ra.$t/memory.bin rc.$t/memory.bin && cmp ra.$t/vmstate rc.$t/vmstate || die "$t differs after pull"
done
for t in b1 b2 b3; do
    fb restore $t --out rb.$t >/dev/null; fc restore $t --out rc.$t >/dev/null
    cmp rb.$t/memory.bin rc.$t/memory.bin && cmp rb.$t/vmstate rc.$t/vmstate || die "$t differs after pull"
done
cmp rc.b3/rootfs odd || die "rootfs of b3 differs"
cmp rc.b3/memory.bin m3 || die "memory of b3 differs"
cmp rc.a2/memory.bin g1/02/memory.full || die "a2 is not the generator's memory"
[ "$(fc log a2 --json | jq -r '[.[].tag] | join(" ")')" = "base a1 a2" ] || die "lineage: $(fc log a2)"
fc verify >/dev/null || die "verify after pull"
# Pulling again fetches nothing; a pull onto a host holding the base fetches only the rest.
fc pull a2 --json >pc2.json
[ "$(jq .snapshots pc2.json) $(jq .packs_fetched pc2.json)" = "0 0" ] || die "re-pull: $(cat pc2.json)"
fb pull a2 --json >pb2.json
[ "$(jq .snapshots pb2.json) $(jq .skipped pb2.json)" = "2 1" ] || die "pull onto b: $(cat pb2.json)"
[ "$(jq .pages_local pb2.json)" -gt 0 ] || die "pull onto b used none of b's pages: $(cat pb2.json)"
fb restore a2 --out rb.a2 >/dev/null
cmp rb.a2/memory.bin ra.a2/memory.bin || die "a2 pulled onto b differs"

# A tag the remote holds with other content is refused.
"$FORKCTL" --store "$TESTDIR/d" init >/dev/null
"$FORKCTL" --store "$TESTDIR/d" remote add origin s3://fleet/hosts --endpoint "$EP" >/dev/null
"$FORKCTL" --store "$TESTDIR/d" ingest --tag a1 --memory g2/02/memory.full --vmstate odd >/dev/null
expect_fail 1 "already holds a different snapshot a1" "$FORKCTL" --store "$TESTDIR/d" push a1
expect_fail 1 "the store holds a different snapshot a1" "$FORKCTL" --store "$TESTDIR/d" pull a2
expect_fail 3 "snapshot nope not found on remote origin" fc pull nope

# Wrong credentials and a missing bucket say which key and which bucket.
AWS_SECRET_ACCESS_KEY=wrong expect_fail 1 "secret key does not match the access key id $AWS_ACCESS_KEY_ID" fa push a2
AWS_ACCESS_KEY_ID=NOSUCHKEY expect_fail 1 "does not know the access key id NOSUCHKEY" fa push a2
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; HOME=$TESTDIR AWS_SHARED_CREDENTIALS_FILE= \
    expect_fail 3 "no S3 credentials" fa push a2)
# ... and from ~/.aws/credentials with AWS_PROFILE.
mkdir -p home/.aws
printf '[default]\naws_access_key_id = x\naws_secret_access_key = y\n[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >home/.aws/credentials
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; HOME=$TESTDIR/home AWS_PROFILE=ci fa push a2 >/dev/null) ||
    die "push with credentials from ~/.aws/credentials failed"
fa remote add gone s3://nosuchbucket --endpoint "$EP" >/dev/null
expect_fail 3 "bucket nosuchbucket does not exist at $EP" fa push a2 --remote gone
fa remote add down s3://fleet --endpoint http://127.0.0.1:9 >/dev/null
expect_fail 1 "after 3 attempts" fa push a2 --remote down

# Damage in the bucket: a pack whose bytes do not match its name is refused
# before anything is ingested.
pack=$(keys hosts/packs/ | head -1)
s3curl -o good.pack "$EP/fleet/$pack"
cp good.pack bad.pack
printf '\xff' | dd of=bad.pack bs=1 seek=100 conv=notrunc 2>/dev/null
curl -sf -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $(sha bad.pack)" --data-binary @bad.pack "$EP/fleet/$pack" >/dev/null
"$FORKCTL" --store "$TESTDIR/e" init >/dev/null
"$FORKCTL" --store "$TESTDIR/e" remote add origin s3://fleet/hosts --endpoint "$EP" >/dev/null
expect_fail 5 "does not match its name" "$FORKCTL" --store "$TESTDIR/e" pull a2 b3
# Each snapshot commits on its own: those before the damage are whole, the
# one that needed the pack is not there.
got=$("$FORKCTL" --store "$TESTDIR/e" images --json | jq -r '.[].tag')
[ "$(echo "$got" | grep -c .)" -lt 6 ] || die "a snapshot that needed the damaged pack was ingested"
for t in $got; do
    "$FORKCTL" --store "$TESTDIR/e" restore $t --out re.$t >/dev/null
    cmp re.$t/memory.bin rc.$t/memory.bin || die "$t pulled beside a damaged pack differs"
done
[ -z "$(ls -d "$TESTDIR"/e/remote-pull.* 2>/dev/null)" ] || die "pull left its temporary directory"
curl -sf -X PUT --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $(sha good.pack)" --data-binary @good.pack "$EP/fleet/$pack" >/dev/null
# Repaired, the same pull finishes the job.
"$FORKCTL" --store "$TESTDIR/e" pull a2 b3 >/dev/null
[ "$("$FORKCTL" --store "$TESTDIR/e" images --json | jq length)" = 6 ] || die "re-pull after repair"

# Through a proxy that answers every third request with a 503, a SlowDown,
# a reset mid-body or a truncated body, push and pull still finish (with
# retries) and the result restores byte for byte.
python3 "$root/tools/s3/faultproxy.py" "${EP##*:}" proxy.port --every 3 2>proxy.err &
proxy=$!
trap 'kill $proxy 2>/dev/null || true; "$rgw" stop "$TESTDIR/rgw" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do [ -s proxy.port ] && break; sleep 0.1; done
PX=http://127.0.0.1:$(cat proxy.port)
fa remote add faulty s3://fleet/faulty --endpoint "$PX" >/dev/null
FORKSTORE_S3_ATTEMPTS=8 fa push a2 --remote faulty --json >pf.json || die "push through faults: $(cat pf.json)"
[ "$(jq .snapshots pf.json)" = 3 ] && [ "$(jq .retries pf.json)" -gt 0 ] || die "push through faults: $(cat pf.json)"
"$FORKCTL" --store "$TESTDIR/f" init >/dev/null
"$FORKCTL" --store "$TESTDIR/f" remote add faulty s3://fleet/faulty --endpoint "$PX" >/dev/null
FORKSTORE_S3_ATTEMPTS=8 "$FORKCTL" --store "$TESTDIR/f" pull a2 --json >pf2.json || die "pull through faults: $(cat pf2.json)"
[ "$(jq .retries pf2.json)" -gt 0 ] || die "pull met no fault: $(cat pf2.json)"
"$FORKCTL" --store "$TESTDIR/f" restore a2 --out rf.a2 >/dev/null
cmp rf.a2/memory.bin ra.a2/memory.bin || die "a2 pulled through faults differs"
kill $proxy
wait $proxy 2>/dev/null || true
grep -q "faults" proxy.err || die "the proxy did not report"

# A push killed midway: no manifest yet, and a re-run finishes it without
# sending the packs again; the result pulls and restores byte for byte.
head -c $((40 << 20)) /dev/urandom >big
rounds=1
[ -n "${REMOTE_LONG:-}" ] && rounds=10
for r in $(seq 1 $rounds); do
    "$FORKCTL" --store "$TESTDIR/k" init >/dev/null 2>&1 || true
    "$FORKCTL" --store "$TESTDIR/k" remote rm origin >/dev/null 2>&1 || true
    "$FORKCTL" --store "$TESTDIR/k" remote add origin "s3://fleet/kill$r" --endpoint "$EP" >/dev/null
    head -c 4096 /dev/urandom | dd of=big bs=4096 seek=$r conv=notrunc 2>/dev/null
    "$FORKCTL" --store "$TESTDIR/k" ingest --tag big$r --memory big --vmstate odd >/dev/null
    "$FORKCTL" --store "$TESTDIR/k" push big$r >/dev/null 2>&1 &
    pid=$!
    want=$(( (r % 5) + 1 ))
    for _ in $(seq 1 400); do
        [ "$(keys kill$r/packs/ | wc -l)" -ge $want ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    kill -9 $pid 2>/dev/null || die "round $r: the push finished before it could be killed"
    wait $pid 2>/dev/null || true
    [ -z "$(keys kill$r/snapshots/)" ] || die "round $r: a manifest exists after a killed push"
    "$FORKCTL" --store "$TESTDIR/k" push big$r --json >pk.json || die "round $r: re-run failed"
    [ "$(jq .snapshots pk.json)" = 1 ] && [ "$(jq .packs_reused pk.json)" -ge 1 ] || die "round $r: $(cat pk.json)"
    rm -rf "$TESTDIR/p"
    "$FORKCTL" --store "$TESTDIR/p" init >/dev/null
    "$FORKCTL" --store "$TESTDIR/p" remote add origin "s3://fleet/kill$r" --endpoint "$EP" >/dev/null
    "$FORKCTL" --store "$TESTDIR/p" pull big$r >/dev/null
    "$FORKCTL" --store "$TESTDIR/p" restore big$r --out rk$r >/dev/null
    cmp rk$r/memory.bin big || die "round $r: pulled big differs"
    rm -rf rk$r
done
# A pull killed midway leaves nothing in the store (its files are
# O_TMPFILE files), and a re-run finishes it.
rm -rf "$TESTDIR/p"
"$FORKCTL" --store "$TESTDIR/p" init >/dev/null
"$FORKCTL" --store "$TESTDIR/p" remote add origin "s3://fleet/kill1" --endpoint "$EP" >/dev/null
before=$(ls -A "$TESTDIR/p" | sort | tr '\n' ' ')
"$FORKCTL" --store "$TESTDIR/p" pull big1 >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ "$(ls -A "$TESTDIR/p" | sort | tr '\n' ' ')" = "$before" ] || die "a killed pull left $(ls -A "$TESTDIR/p")"
"$FORKCTL" --store "$TESTDIR/p" pull big1 >/dev/null
"$FORKCTL" --store "$TESTDIR/p" restore big1 --out rk >/dev/null
"$FORKCTL" --store "$TESTDIR/k" restore big1 --out rk0 >/dev/null
cmp rk/memory.bin rk0/memory.bin || die "big1 pulled after a killed pull differs"
echo ok
