#!/usr/bin/env bash
# tools/bench/lazy.sh [--quick]: the lazy-restore benchmark (make bench-lazy).
#
# Against the test VMM (tools/vmm fcvmm; kvm backend where /dev/kvm opens,
# else its thread backend), store on $BENCH_TMP (default /var/tmp), side by
# side in one run, medians of $LAZY_RUNS (default 5) runs:
#   1. time to a running VM at 512 MiB, 2 GiB and 8 GiB sparse guests
#      (64 MiB of boot data each): `restore --api-sock` (File backend: the
#      memory file is restored first) against `restore --api-sock --lazy`
#      (Uffd backend); both the whole command and the PUT /snapshot/load
#      alone ("load request");
#   2. fault service time p50/p99 from local chunk files (the 512 MiB
#      guest running for 2 s after a lazy load, no prefetch), with the
#      server's background decode (default) and with --cache-cold;
#   3. demand faults on the first lazy restore (which records the working
#      set) and on the second (which prefetches it), the guest running
#      the same 2 s each time, and for a fixed workload (a paused guest
#      reading all of RAM); and the time that fixed workload takes, timed
#      from the end of the load (no head start), lazily with its recorded
#      set prefetched, without prefetch, and without prefetch nor cache
#      warming (--cache-cold), against the same VMM loaded from a File
#      restore;
#   3d. a running guest replaying a fixed stretch of its work (the same
#      pages in the same order: its PRNG state is in the vmstate) from the
#      resume: File-loaded against lazy with the recorded set prefetched
#      and lazy without prefetch;
#   4. 8 VMs lazily loaded from one snapshot by one server (serve-pages
#      --vms 8), each reading all of RAM: blocks decoded against one VM,
#      the server's peak RSS.
# Output: a table on stdout and in $OUT/lazy.md; the load times per guest
# size in $OUT/lazy_sizes.tsv (charted by tools/bench/plot.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
FK=$BUILD/forkctl
VMM=$BUILD/tools/fcvmm
TMP=${BENCH_TMP:-/var/tmp}/forkstore-bench-lazy
OUT=${BENCH_OUT:-$BUILD/bench}
RUNS=${LAZY_RUNS:-5}
SIZES=${LAZY_SIZES:-"512 2048 8192"}
NVM=${LAZY_VMS:-8}
[ "${1:-}" = --quick ] && RUNS=1 SIZES="512" NVM=2
[ -x "$FK" ] && [ -x "$VMM" ] || { echo "bench-lazy: $FK or $VMM not built (run make)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench-lazy: jq needed" >&2; exit 1; }
rm -rf "$TMP"
mkdir -p "$TMP/stage" "$OUT"
cd "$TMP"
st=$TMP/store
fk() { "$FK" --store "$st" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
vmm() { # vmm SOCK ARGS...: starts fcvmm, sets vp
    rm -f "$1"
    "$VMM" --api-sock "$1" "${@:2}" 2>>"$TMP/vmm.err" &
    vp=$!
    disown "$vp"
    pids+=("$vp")
    for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
    echo "bench-lazy: fcvmm did not start: $(tail -n 3 "$TMP/vmm.err")" >&2
    exit 1
}
gone() { for _ in $(seq 400); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
q() { fk sql --csv "$1" | tail -n 1; }
full() { curl -s --max-time 600 -o /dev/null -w '%{http_code}' -X PUT --unix-socket "$1" http://localhost/snapshot/create \
         -d "{\"snapshot_path\":\"$TMP/full.vs\",\"mem_file_path\":\"$2\"}"; }
now() { date +%s.%N; }

fk --quiet init
backend=$( [ -c /dev/kvm ] && echo kvm || echo thread )
rows=()
: >"$OUT/lazy_sizes.tsv"     # mib, file total, file request, lazy total, lazy request (ms; tools/bench/plot.sh)
for mib in $SIZES; do
    b=$backend
    [ "$mib" -gt 3072 ] && b=thread            # fcvmm's kvm guest is one slot of at most 3 GiB
    vmm "$TMP/boot.sock" --backend "$b" --mem-mib "$mib" --fill-mib 64 --rate 200 --seed 11
    sleep 0.5
    fk --quiet branch --api-sock "$TMP/boot.sock" --tag "g$mib" --staging "$TMP/stage"
    kill -9 "$vp"
    : >file_total; : >file_req; : >lazy_total; : >lazy_req
    for r in $(seq "$RUNS"); do
        vmm "$TMP/f.sock" --backend "$b" --no-boot
        j=$(fk restore "g$mib" --api-sock "$TMP/f.sock" --staging "$TMP/stage" --json)
        echo "$j" | jq .load_ms >>file_total
        echo "$j" | jq .load_request_ms >>file_req
        rm -rf "$(echo "$j" | jq -r .staging)"
        kill -9 "$vp"
        vmm "$TMP/l.sock" --backend "$b" --no-boot
        j=$(fk restore "g$mib" --api-sock "$TMP/l.sock" --lazy --prefetch off --no-record --staging "$TMP/stage" --json)
        echo "$j" | jq .load_ms >>lazy_total
        echo "$j" | jq .load_request_ms >>lazy_req
        spid=$(echo "$j" | jq .page_server_pid)
        kill -9 "$vp"
        gone "$spid"
        rm -rf "$(echo "$j" | jq -r .staging)"
    done
    ft=$(median <file_total) fr=$(median <file_req) lt=$(median <lazy_total) lr=$(median <lazy_req)
    printf '%s\t%s\t%s\t%s\t%s\n' "$mib" "$ft" "$fr" "$lt" "$lr" >>"$OUT/lazy_sizes.tsv"
    rows+=("| $mib MiB ($b) | $(printf %.1f "$ft") | $(printf %.1f "$fr") | $(printf %.1f "$lt") | $(printf %.1f "$lr") |")
done

# 2 + 3: the 512 MiB guest running 2 s: faults, first and second lazy restore.
g=g$(echo "$SIZES" | awk '{print $1}')
fk --quiet restore "$g" --out "$TMP/ref"
fk --quiet ingest --tag ws --memory "$TMP/ref/memory.bin" --vmstate "$TMP/ref/vmstate"
run_guest() { # run_guest ARGS...: lazy load of ws, 2 s of guest, VMM killed; prints demand,prefetch,p50,p99
    vmm "$TMP/w.sock" --backend "$backend" --no-boot --rate 50000
    local j spid
    j=$(fk restore ws --api-sock "$TMP/w.sock" --lazy --staging "$TMP/stage" --json "$@")
    spid=$(echo "$j" | jq .page_server_pid)
    sleep 2
    kill -9 "$vp"
    gone "$spid"
    rm -rf "$(echo "$j" | jq -r .staging)"
    q "SELECT faults, pages_prefetch, fault_p50_us, fault_p99_us FROM lazy_restore
       WHERE snapshot_id = (SELECT id FROM snapshot WHERE tag = 'ws')"
}
first=$(run_guest --prefetch off)
second=$(run_guest --prefetch on --no-record)
d1=${first%%,*} d2=${second%%,*}
pf2=$(echo "$second" | cut -d, -f2)
# fault service time: medians over $RUNS runs of the first run's case (no prefetch), warm and cold cache
: >p50w; : >p99w; : >p50c; : >p99c
for r in $(seq "$RUNS"); do
    x=$(run_guest --prefetch off --no-record); echo "$x" | cut -d, -f3 >>p50w; echo "$x" | cut -d, -f4 >>p99w
    x=$(run_guest --prefetch off --no-record --cache-cold); echo "$x" | cut -d, -f3 >>p50c; echo "$x" | cut -d, -f4 >>p99c
done
p50=$(median <p50w) p99=$(median <p99w) p50c=$(median <p50c) p99c=$(median <p99c)

# 3c: a fixed workload (a paused guest reads all of RAM: a Full snapshot)
# twice on a fresh tag: the first lazy restore records, the second prefetches.
fk --quiet ingest --tag ws2 --memory "$TMP/ref/memory.bin" --vmstate "$TMP/ref/vmstate"
fixed() { # fixed ARGS...: prints faults of one paused full read
    vmm "$TMP/x.sock" --backend "$backend" --no-boot
    local j spid
    j=$(fk restore ws2 --api-sock "$TMP/x.sock" --lazy --paused --staging "$TMP/stage" --json "$@")
    spid=$(echo "$j" | jq .page_server_pid)
    sleep 1
    full "$TMP/x.sock" "$TMP/out.mem" >/dev/null
    kill -9 "$vp"; gone "$spid"; rm -rf "$(echo "$j" | jq -r .staging)" "$TMP/out.mem"
    q "SELECT faults FROM lazy_restore WHERE snapshot_id = (SELECT id FROM snapshot WHERE tag = 'ws2')"
}
x1=$(fixed --prefetch off)
x2=$(fixed --no-record)

# 3b: the same workload timed from the moment the VM is loaded (no head
# start for the prefetch): File-loaded (RAM filled before the load returns)
# against lazy with the recorded working set prefetched, lazy without
# prefetch, and lazy without prefetch nor cache warming.
: >t_file; : >t_lazy; : >t_nopf; : >t_cold
lazy_full() { # lazy_full FILE ARGS...: times one lazy paused full read into FILE
    local f=$1 j spid t0 t1
    shift
    vmm "$TMP/l.sock" --backend "$backend" --no-boot
    j=$(fk restore ws2 --api-sock "$TMP/l.sock" --lazy --paused --no-record --staging "$TMP/stage" --json "$@")
    spid=$(echo "$j" | jq .page_server_pid)
    t0=$(now); full "$TMP/l.sock" "$TMP/out.mem" >/dev/null; t1=$(now)
    echo "$t1 - $t0" | bc >>"$f"
    kill -9 "$vp"; gone "$spid"; rm -rf "$(echo "$j" | jq -r .staging)" "$TMP/out.mem"
}
for r in $(seq "$RUNS"); do
    vmm "$TMP/f.sock" --backend "$backend" --no-boot
    j=$(fk restore ws2 --api-sock "$TMP/f.sock" --paused --staging "$TMP/stage" --json)
    t0=$(now); full "$TMP/f.sock" "$TMP/out.mem" >/dev/null; t1=$(now)
    echo "$t1 - $t0" | bc >>t_file
    kill -9 "$vp"; rm -rf "$(echo "$j" | jq -r .staging)" "$TMP/out.mem"
    lazy_full t_lazy
    lazy_full t_nopf --prefetch off
    lazy_full t_cold --prefetch off --cache-cold
done
tf=$(median <t_file) tl=$(median <t_lazy) tn=$(median <t_nopf) tc=$(median <t_cold)

# 3d: a running guest replays a fixed stretch of its work after the load
# (its PRNG state is in the vmstate, so every load writes the same pages
# in the same order): $ITERS iterations of 16 page writes, unthrottled,
# timed from the resume. The first lazy restore records the working set.
ITERS=${LAZY_ITERS:-2000}
fk --quiet ingest --tag ws3 --memory "$TMP/ref/memory.bin" --vmstate "$TMP/ref/vmstate"
iters() { curl -s --max-time 10 --unix-socket "$1" http://localhost/ | jq .iterations; }
stretch() { # stretch SOCK: resumes the paused VM, waits for ITERS iterations; prints seconds
    local i0 t0 t1
    i0=$(iters "$1")
    t0=$(now)
    curl -s -o /dev/null -X PATCH --unix-socket "$1" http://localhost/vm -d '{"state":"Resumed"}'
    while [ $(($(iters "$1") - i0)) -lt "$ITERS" ]; do sleep 0.02; done
    t1=$(now)
    echo "$t1 - $t0" | bc
}
lazy_run() { # lazy_run FILE FAULTS ARGS...: one lazy load of ws3 and the stretch: seconds into FILE, faults into FAULTS
    local f=$1 g=$2 j spid
    shift 2
    vmm "$TMP/r.sock" --backend "$backend" --no-boot --rate 1e9
    j=$(fk restore ws3 --api-sock "$TMP/r.sock" --lazy --paused --staging "$TMP/stage" --json "$@")
    spid=$(echo "$j" | jq .page_server_pid)
    stretch "$TMP/r.sock" >>"$f"
    kill -9 "$vp"; gone "$spid"; rm -rf "$(echo "$j" | jq -r .staging)"
    q "SELECT faults FROM lazy_restore WHERE snapshot_id = (SELECT id FROM snapshot WHERE tag = 'ws3')" >>"$g"
}
: >s_rec; : >f_rec
lazy_run s_rec f_rec --prefetch off               # records
: >s_file; : >s_lazy; : >s_nopf; : >f_lazy; : >f_nopf
for r in $(seq "$RUNS"); do
    vmm "$TMP/f.sock" --backend "$backend" --no-boot --rate 1e9
    j=$(fk restore ws3 --api-sock "$TMP/f.sock" --paused --staging "$TMP/stage" --json)
    stretch "$TMP/f.sock" >>s_file
    kill -9 "$vp"; rm -rf "$(echo "$j" | jq -r .staging)"
    lazy_run s_lazy f_lazy --no-record
    lazy_run s_nopf f_nopf --prefetch off --no-record
done
sf=$(median <s_file) sl=$(median <s_lazy) sn=$(median <s_nopf)
fr=$(cat f_rec) fl=$(median <f_lazy) fn=$(median <f_nopf)

# 4: NVM VMs from one server, each reading all of RAM.
one_vm_blocks=0
serve() { # serve N: one server for N paused VMs reading all RAM; prints blocks,rss_kib
    local n=$1 i spid rss=0
    rm -f "$TMP/p.sock"
    fk serve-pages ws --socket "$TMP/p.sock" --vms "$n" --prefetch off --no-record --json >"$TMP/serve.json" &
    spid=$!
    for _ in $(seq 200); do [ -S "$TMP/p.sock" ] && break; sleep 0.05; done
    local vps=()
    for i in $(seq "$n"); do
        vmm "$TMP/m$i.sock" --backend "$backend" --no-boot
        vps+=("$vp")
        curl -s -o /dev/null -X PUT --unix-socket "$TMP/m$i.sock" http://localhost/snapshot/load \
            -d "{\"snapshot_path\":\"$TMP/ref/vmstate\",\"mem_backend\":{\"backend_type\":\"Uffd\",\"backend_path\":\"$TMP/p.sock\"}}"
    done
    for i in $(seq "$n"); do full "$TMP/m$i.sock" "$TMP/m$i.mem" >/dev/null & done
    wait $(jobs -p | grep -v "^$spid$") 2>/dev/null || true
    for p in "${vps[@]}"; do kill -9 "$p"; done
    wait "$spid" || true
    rm -f "$TMP"/m*.mem
    echo "$(jq .blocks_decoded "$TMP/serve.json"),$(jq .peak_rss_kib "$TMP/serve.json")"
}
one=$(serve 1)
many=$(serve "$NVM")

{
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); store on $TMP; fcvmm backend $backend."
echo "Command: \`make bench-lazy\` ($RUNS runs, medians)."
echo
echo "| guest (sparse, 64 MiB data) | File: restore + load ms | File: load request ms | lazy: restore --lazy ms | lazy: load request ms |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "| figure | measured |"
echo "|---|---|"
echo "| fault service p50 / p99 (us), 512 MiB guest running 2 s, no prefetch (background decode on) | $p50 / $p99 |"
echo "| same, --cache-cold (every stored page decoded on its fault) | $p50c / $p99c |"
echo "| demand faults, first lazy restore (records the working set), guest running 2 s | $d1 |"
echo "| demand faults, second lazy restore (prefetch: $pf2 pages), same 2 s | $d2 |"
echo "| demand faults cut by | $(echo "scale=1; 100 - 100 * $d2 / ($d1 + ($d1 == 0))" | bc)% |"
echo "| demand faults, paused guest reading all RAM: first / second lazy restore | $x1 / $x2 ($(echo "scale=1; 100 - 100 * $x2 / ($x1 + ($x1 == 0))" | bc)% fewer) |"
r() { printf '%.3f s (%.2fx)' "$1" "$(echo "$1 / $tf" | bc -l)"; }
r2() { printf '%.3f s (%.2fx)' "$1" "$(echo "$1 / $sf" | bc -l)"; }
echo "| paused guest reads all RAM, timed from the load: File-loaded | $(printf %.3f "$tf") s |"
echo "| same, lazy with the recorded working set prefetched | $(r "$tl") |"
echo "| same, lazy without prefetch (cache warming on) | $(r "$tn") |"
echo "| same, lazy without prefetch, --cache-cold | $(r "$tc") |"
echo "| running guest, $ITERS iterations (16 page writes each) from the resume: File-loaded | $(printf %.3f "$sf") s |"
echo "| same, lazy with the recorded working set prefetched | $(r2 "$sl") |"
echo "| same, lazy without prefetch | $(r2 "$sn") |"
echo "| demand faults for that stretch: first lazy restore (records) / second and later (prefetch) / no prefetch | $fr / $fl ($(echo "scale=1; 100 - 100 * $fl / ($fr + ($fr == 0))" | bc)% fewer) / $fn |"
echo "| blocks decoded, 1 VM / $NVM VMs on one server | ${one%%,*} / ${many%%,*} |"
echo "| server peak RSS (MiB), 1 VM / $NVM VMs | $((${one##*,} / 1024)) / $((${many##*,} / 1024)) |"
} | tee "$OUT/lazy.md"
