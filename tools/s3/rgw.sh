#!/usr/bin/env bash
# tools/s3/rgw.sh: a real S3 server for the remote tests: Ceph radosgw on
# one monitor and one memstore OSD, everything under one directory, on
# free loopback ports. It installs nothing (tools/deps.sh remote does, and
# .ci/run calls it).
#
#   tools/s3/rgw.sh start DIR      bring it up in DIR (new or empty); prints
#                                  the environment (also kept in DIR/env)
#   tools/s3/rgw.sh env DIR        print that environment again
#   tools/s3/rgw.sh bucket DIR B   create bucket B (a signed PUT through curl)
#   tools/s3/rgw.sh stop DIR       stop radosgw, the OSD, the monitor (by the
#                                  pids in their pid files) and wait for them
#
# The environment: RGW_ENDPOINT (http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION. Exit 77 from start if the Ceph
# binaries are missing, so a test can tell "not installed" from "broken".
#
# Facts behind the settings: ../../shared notes on the S3 test server
# (auth none + ms_mon_client_mode crc, pools of size 1, the disk-space
# warnings off, memstore). Memstore keeps objects in the OSD's memory:
# everything is gone once it stops, which is what a test wants.
set -euo pipefail

AK=FKSTESTACCESSKEY0001
SK=fkstestsecretkey0000000000000000000000001
REGION=us-east-1

die() { echo "rgw.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS WHAT CMD...: runs CMD every 0.25 s until it succeeds.
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "$what not ready after ${secs}s (logs in $D/log)"
        sleep 0.25
    done
}

ceph_() { CEPH_CONF="$D/ceph.conf" ceph --connect-timeout 10 "$@"; }

osd_up() { ceph_ osd stat -f json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["num_up_osds"] >= 1 else 1)'; }

start() {
    for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl python3; do
        command -v "$b" >/dev/null || { echo "rgw.sh: $b not installed (tools/deps.sh remote)" >&2; exit 77; }
    done
    mkdir -p "$D"
    [ -z "$(ls -A "$D")" ] || die "$D is not empty"
    D=$(cd "$D" && pwd)
    mkdir -p "$D/run" "$D/log" "$D/mon/a" "$D/osd"
    local mport rport fsid
    mport=$(free_port)
    rport=$(free_port)
    while [ "$rport" = "$mport" ]; do rport=$(free_port); done
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mport
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
run_dir = $D/run
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
mon_data = $D/mon/\$id
osd_data = $D/osd/\$id
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[osd]
osd_objectstore = memstore
memstore_device_bytes = $((${RGW_MEMSTORE_GIB:-6} << 30))
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$rport
EOF
    export CEPH_CONF="$D/ceph.conf"
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mport]" "$D/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$D/monmap" >"$D/log/mkfs-mon.out" 2>&1 || die "ceph-mon --mkfs failed: $(tail -3 "$D/log/mkfs-mon.out")"
    ceph-mon -i a
    wait_for 60 "ceph-mon" ceph_ mon stat
    local uuid id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph_ osd new "$uuid")
    mkdir -p "$D/osd/$id"
    ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >"$D/log/mkfs-osd.out" 2>&1 || die "ceph-osd --mkfs failed: $(tail -3 "$D/log/mkfs-osd.out")"
    ceph-osd -i "$id" 2>>"$D/log/osd-start.err"
    echo "$id" >"$D/osd.id"
    wait_for 90 "ceph-osd" osd_up
    radosgw -n client.rgw
    wait_for 120 "radosgw on port $rport" curl -sf -o /dev/null "http://127.0.0.1:$rport/"
    radosgw-admin user create --uid test --display-name test --access-key "$AK" --secret-key "$SK" \
        >"$D/log/user.out" 2>&1 || die "radosgw-admin user create failed: $(tail -3 "$D/log/user.out")"
    cat >"$D/env" <<EOF
RGW_ENDPOINT=http://127.0.0.1:$rport
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_REGION=$REGION
EOF
    cat "$D/env"
}

stop() {
    [ -d "$D" ] || return 0
    local name pid
    # radosgw first, the monitor last: each needs the ones after it to stop cleanly.
    for name in client.rgw osd.$(cat "$D/osd.id" 2>/dev/null || echo 0) mon.a; do
        [ -f "$D/run/$name.pid" ] || continue
        pid=$(cat "$D/run/$name.pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && { kill -9 "$pid" 2>/dev/null || true; }
        fi
    done
    return 0
}

bucket() {
    . "$D/env"
    local code
    # An empty body: its SHA-256 is the payload hash S3 servers require.
    code=$(curl -s -o "$D/log/bucket.out" -w '%{http_code}' -X PUT \
        --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "$RGW_ENDPOINT/$1")
    [ "$code" = 200 ] || die "create bucket $1: HTTP $code: $(cat "$D/log/bucket.out")"
}

[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
D=$2
case $1 in
    start) start ;;
    env) cat "$D/env" ;;
    stop) stop ;;
    bucket) [ $# -eq 3 ] || die "usage: rgw.sh bucket DIR NAME"; bucket "$3" ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
