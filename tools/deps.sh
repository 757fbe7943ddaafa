#!/usr/bin/env bash
# tools/deps.sh: installs (or names) the Debian packages forkstore needs.
#
#   tools/deps.sh build   libraries and tools to build and run `make check`
#   tools/deps.sh bench   the contenders of `make bench` (restic, borg, ...)
#   tools/deps.sh qemu    what the real-guest capture needs
#   tools/deps.sh remote  a real S3 server for the remote tests (Ceph radosgw
#                         on a memstore OSD, started by tools/s3/rgw.sh)
#
# As root on Debian it runs apt-get; otherwise it prints the exact command.
set -euo pipefail

build="build-essential pkg-config libsqlite3-dev libxxhash-dev libzstd-dev libjson-c-dev
       libcurl4-openssl-dev libssl-dev libcmocka-dev sqlite3 zstd clang llvm valgrind cppcheck clang-tidy
       util-linux coreutils procps bsdextrautils jq bc curl python3 abigail-tools binutils"
bench="restic borgbackup zstd hyperfine linux-perf gnuplot-nox"
remote="ceph-mon ceph-osd radosgw"
qemu=""
[ -x "$(dirname "$0")/qemu/deps.sh" ] && qemu=$("$(dirname "$0")/qemu/deps.sh")

case "${1:-build}" in
    build) pkgs=$build ;;
    bench) pkgs="$build $bench $qemu" ;;
    qemu) pkgs=$qemu ;;
    remote) pkgs=$remote ;;
    *) echo "usage: tools/deps.sh [build|bench|qemu|remote]" >&2; exit 2 ;;
esac
pkgs=$(echo $pkgs)

missing=()
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tools/deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # ceph-osd pulls lvm2/cryptsetup, whose triggers rebuild the initramfs
    # (2.5 min) on machines that have one; no test boots it, so pause that
    # for the install and put the setting back afterwards.
    irconf=/etc/initramfs-tools/update-initramfs.conf
    irsave=""
    if [ -f "$irconf" ] && grep -q '^update_initramfs=' "$irconf"; then
        irsave=$(mktemp)
        cp -p "$irconf" "$irsave"
        trap 'cp -p "$irsave" "$irconf"; rm -f "$irsave"' EXIT
        sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$irconf"
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "forkstore needs these Debian packages; install them with:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
