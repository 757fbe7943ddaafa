#!/usr/bin/env bash
# tests/shlib/run.sh PREFIX: the shared library as an embedder gets it.
# `make test-shlib` installs forkstore under PREFIX; this builds
# tests/shlib/linktest.c with `pkg-config --cflags --libs forkstore` alone
# (no path into the tree), runs it on a generated chain (ingest, then
# restore every snapshot) and compares each restored file with the
# generator's, byte for byte. Also: nm -D of the installed library shows
# only fks_* functions, the program loads it by its soname, and forkctl
# restores the store the library wrote. Then the same program is linked
# against the engine archive alone (pkg-config --static forkstore-engine:
# SQLite, zstd, xxhash) and must need no json-c, libcrypto or libcurl.
set -euo pipefail
prefix=$1
here=$(cd "$(dirname "$0")" && pwd)
: "${FORKGEN:?}" "${FORKCTL:?}"
die() { echo "FAIL: $*" >&2; exit 1; }
t=$(mktemp -d "${TMPDIR:-/tmp}/fks-shlib.XXXXXX")
trap 'rm -rf "$t"' EXIT

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs forkstore) || die "pkg-config does not find forkstore under $prefix"
[ "$(pkg-config --modversion forkstore)" = "$(sed -n 's/^#define FKS_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/forkstore.h")" ] \
    || die "forkstore.pc's version is not the header's"
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Werror ${CFLAGS:-} -o "$t/linktest" "$here/linktest.c" $flags \
    -Wl,-rpath,"$(pkg-config --variable=libdir forkstore)"

lib=$prefix/lib/libforkstore.so
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libforkstore.so.0 ] || die "soname is '$soname'"
readelf -d "$t/linktest" | grep -q 'NEEDED.*\[libforkstore.so.0\]' || die "linktest does not need libforkstore.so.0"
ldd "$t/linktest" | grep -q "libforkstore.so.0 => $prefix/lib/" || die "linktest does not load the installed library: $(ldd "$t/linktest")"
bad=$(nm -D --defined-only "$lib" | awk '$3 !~ /^fks_[a-z0-9_]*(@@FORKSTORE_0)?$/ && $3 != "FORKSTORE_0"' )
[ -z "$bad" ] || die "libforkstore.so exports more than fks_*: $bad"
n=$(nm -D --defined-only "$lib" | grep -c ' T fks_')
[ "$n" -ge 50 ] || die "only $n fks_ functions exported"
nm -D --defined-only "$lib" | grep -q ' T fks__' && die "internal fks__ functions are exported"

"$FORKGEN" --out "$t/gen" --size 8M --snapshots 4 --quiet >/dev/null
"$t/linktest" "$t/store" "$t/gen" "$t/out" >"$t/log" || die "linktest failed: $(cat "$t/log")"
k=0
while IFS=$'\t' read -r nn tag _; do
    [ "${nn:0:1}" = "#" ] && continue
    cmp "$t/out/$tag/memory.bin" "$t/gen/$nn/memory.full" || die "$tag: memory.bin differs from the generator's"
    cmp "$t/out/$tag/vmstate" "$t/gen/$nn/vmstate" || die "$tag: vmstate differs"
    "$FORKCTL" --store "$t/store" --quiet restore "$tag" --out "$t/cli-$tag"
    cmp "$t/cli-$tag/memory.bin" "$t/gen/$nn/memory.full" || die "$tag: forkctl restore of the library's store differs"
    k=$((k + 1))
done <"$t/gen/chain.tsv"
[ "$k" -eq 4 ] || die "checked $k snapshots, not 4"
# The engine alone, as an embedder that wants no integration links it:
# libforkstore-engine.a with SQLite, zstd and xxhash, nothing else.
eflags=$(pkg-config --static --cflags --libs forkstore-engine) || die "pkg-config does not find forkstore-engine"
case " $eflags " in *json-c*|*crypto*|*curl*|*" -lforkstore "*) die "forkstore-engine.pc names more than the engine: $eflags";; esac
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Werror ${CFLAGS:-} -o "$t/enginetest" "$here/linktest.c" $eflags \
    || die "linktest does not link against the engine archive alone"
readelf -d "$t/enginetest" | grep -E 'NEEDED.*(json-c|crypto|curl|forkstore)' && die "the engine-only program needs more than the engine"
"$t/enginetest" "$t/estore" "$t/gen" "$t/eout" >"$t/elog" || die "enginetest failed: $(cat "$t/elog")"
while IFS=$'\t' read -r nn tag _; do
    [ "${nn:0:1}" = "#" ] && continue
    cmp "$t/eout/$tag/memory.bin" "$t/gen/$nn/memory.full" || die "$tag: the engine-only program's memory.bin differs"
done <"$t/gen/chain.tsv"

echo "shlib: $n functions exported (fks_* only), soname $soname, $k snapshots ingested and restored byte-identically through pkg-config; again linked against libforkstore-engine.a alone (needs: $(readelf -d "$t/enginetest" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' '))"
