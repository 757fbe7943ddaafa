/*
** fcvmm.c: a test VMM that serves the subset of the Firecracker API that
** forkstore uses, as strictly as Firecracker does, so `forkctl branch` and
** `restore --api-sock` can be tested on any machine (Firecracker itself
** cannot run here).
**
** usage: fcvmm --api-sock PATH [flags]
**
**   --api-sock PATH        API socket (inside the jail with --chroot)
**   --backend B            kvm | thread | auto (default: kvm if /dev/kvm opens and
**                          the guest is one slot of at most 3072 MiB)
**   --mem-mib N            guest memory (default 512; kvm: at most 3072)
**   --slots N              split the guest into N memory slots (1..8; default:
**                          1, or 2 above 3 GiB); from 1.14 GET /vm/config
**                          shows the extra slots as "memory-hotplug" (the
**                          way a real small guest gets more slots)
**   --rate P               pages written per second (default 2000)
**   --zero-pct P           share of writes that zero a whole page (default 5)
**   --revert-pct P         share that refill a page with its boot pattern (5)
**   --seed S               PRNG seed (boot image and workload)
**   --fill-mib N           boot fill covers only the first N MiB (default all)
**   --drive ID=PATH        a block device (up to 4; the first is the root):
**                          recorded in the vmstate; a load opens each PATH
**                          (inside the jail) and fails (exit) if one is
**                          missing, as Firecracker; PATCH /drives/ID after
**                          a paused load changes it
**   --no-boot              start "Not started": wait for a load, or for
**                          PUT /machine-config + PUT /actions InstanceStart
**   --track-dirty          dirty tracking on for the boot (default)
**   --no-track-dirty       off: Diff is refused, as Firecracker without
**                          track_dirty_pages
**   --dirty-track M        thread backend: auto | wp-async | wp-sync
**   --fc-version X.Y.Z     emulated Firecracker release (default 1.12.0);
**                          any X.Y.Z is accepted: outside 1.10.0..1.16.x,
**                          GET / and GET /version report X.Y.Z but fields
**                          and formats are those of the nearest known
**                          release (below 1.10: 1.10.0; above: 1.16.0), so
**                          that forkctl's refusal of unsupported versions
**                          can be tested
**   --id ID                instance id in GET / (default anonymous-instance)
**   --chroot DIR --uid U --gid G   jailer mode (below)
**   --dump-dir DIR         after each successful create, write all of RAM to
**                          DIR/NNNNNN.full (test oracle; inside the pause)
**   --fail-snapshot-create every create answers 400 "injected failure"
**   --fail-create-nth N    only the Nth create (1-based) answers 400
**   --die-in-snapshot      _exit(1) in the middle of writing the memory file
**   --slow-snapshot-ms N   sleep N ms in every create before writing
**   --remove-on-usr2 P:N   on SIGUSR2, madvise(MADV_DONTNEED) guest pages
**                          P..P+N-1 (memory file page numbers), as a balloon
**                          inflation does: a Uffd page server sees
**                          UFFD_EVENT_REMOVE (test hook)
**
** Two backends (--backend; auto = kvm if /dev/kvm opens and the guest fits
** one slot below 3 GiB, else thread)
**  kvm     One VM, one vCPU in 32-bit protected mode (flat segments, no
**          paging, interrupts off) running GUEST[] below at 0x1000; one
**          memslot with KVM_MEM_LOG_DIRTY_PAGES. Pause sets immediate_exit
**          and signals the vCPU thread out of KVM_RUN. At most 3 GiB, one slot.
**  thread  Guest RAM is an anonymous MAP_PRIVATE|MAP_NORESERVE mapping; the
**          "vCPU" is a pthread (tguest_main) doing exactly what GUEST[] does,
**          with the same parameters and PRNG, so the same seed gives the
**          same boot image and comparable dirtying. Pause sets a flag the
**          thread checks at every "port exit" (every 16 pages); PATCH /vm
**          returns only once the thread has said it is parked.
** The workload (both): a xorshift32 x picks a page above 1 MiB; if x>>24 <
** zero_below the page is zeroed (still dirty: a Diff carries it as data),
** else if < revert_below it is filled with its own guest address (its boot
** pattern: old contents come back), else two dwords (x, iteration) are
** written at x & 0xff0. The iteration count is stored at 0x518 (page 0
** is always dirty). Every 16 pages: one "port exit", counted in GET / as
** "iterations" and slept on to hold --rate pages/s. Parameters live in
** guest RAM at 0x500 (struct params), so a loaded snapshot carries them.
** Boot fills RAM like a used VM: 40% random pages, 10% own-address
** pattern, 5% copies of one page, the rest untouched (zero, and with
** MAP_NORESERVE never allocated). --fill-mib N fills only the first N MiB,
** so that a 4 GiB guest costs little memory; the guest still writes all of
** it.
**
** Dirty tracking (on with --track-dirty, the default; Firecracker's
** track_dirty_pages; off with --no-track-dirty or after PUT /machine-config
** or a load that does not ask for it: Diff is then refused with 400)
**  kvm        KVM_GET_DIRTY_LOG, ORed into the accumulated bitmap V.dirty.
**  wp-async   userfaultfd with UFFD_FEATURE_WP_ASYNC|WP_UNPOPULATED (6.7+):
**             all RAM write-protected; the kernel unprotects a page on its
**             first write without a fault message; PAGEMAP_SCAN over RAM with
**             PM_SCAN_CHECK_WPASYNC|PM_SCAN_WP_MATCHING, category and
**             return mask PAGE_IS_WRITTEN, lists the written pages and
**             re-protects them in one pass.
**  wp-sync    userfaultfd WP faults (no WP_ASYNC): a handler thread reads
**             each fault, sets the page's bit in V.wpbits, unprotects the
**             page (UFFDIO_WRITEPROTECT mode 0, which wakes the writer);
**             collection ORs V.wpbits into V.dirty and re-protects them.
** --dirty-track picks one of the two (auto: wp-async when the kernel has
** it). Invariant: pages written since the last successful snapshot/create
** are all in V.dirty once collected: collection only runs while the guest
** is parked (no write in flight: a writer blocked in a sync fault cannot
** have acknowledged the pause), and V.dirty is cleared only after a create
** succeeded. A failed create keeps the bits, as Firecracker does.
**
** Memory layout (Firecracker x86_64): guest RAM above 3 GiB skips the 32-bit
** MMIO gap [0xC000_0000, 0x1_0000_0000): slot 0 is [0, min(mem, 3 GiB)), the
** rest starts at 4 GiB. The memory file holds the slots back to back (file
** offsets contiguous). --slots N splits a smaller guest into N slots at
** 1 GiB-aligned guest addresses (never in the gap) to test multi-slot
** guests cheaply. The boot/revert pattern is the low 32 bits of the page's
** guest address. Snapshots: Full = all of RAM (written sparse: zero runs of
** 64 KiB are left as holes, the bytes are the same); Diff = a sparse file of
** RAM size holding exactly the dirty pages (zero pages as data). Neither is
** fsynced (Firecracker does not either). Load maps the memory file
** MAP_PRIVATE (kvm, as Firecracker's File backend) or copies its data
** extents into fresh anonymous RAM (thread: uffd-wp sync mode needs
** anonymous memory), then continues from the vmstate.
**
** vmstate file (20480 bytes, little-endian). It opens with Firecracker's
** SnapshotHdr {magic: u64, version: semver::Version}, the first field of
** the serialized Snapshot; semver serializes as a string. Releases up to
** 1.14 use bincode with fixint little-endian encoding (u64 length, then
** the bytes); 1.15 and later use bitcode 0.6 (serde mode), whose output
** starts with the column of the first field (one u64: 8 raw bytes, no
** packing byte as the column has one value), then the string column
** (lengths: one byte as the column has one value < 255; then the bytes):
**
**   bincode (1.10 .. 1.14)           bitcode (1.15, 1.16)
**   offset size field                offset size field
**   0      8    magic                0      8    magic
**   8      8    L (u64)              8      1    L (u8)
**   16     L    version string       9      L    version string
**   H = 16 + L                       H = 9 + L
**
** magic 0x0710198486640000 (x86_64) is 00 00 64 86 84 19 10 07; the format
** version is ASCII "MAJOR.MINOR.PATCH" (table below; L = 5 for "8.0.0", 6
** for "10.0.0"). A reader tells the two apart by byte 9: 0 in bincode
** (high byte of a small length), a digit in bitcode. fcvmm's state:
**
**   offset  size  field
**   H       8     "FCVMMST2" (fcvmm's own state from here)
**   H+8     4     state version (2)
**   H+12    4     backend (1 kvm, 2 thread)
**   H+16    8     guest memory bytes (= memory file size)
**   H+24    8     iterations (port exits so far)
**   H+32    4     number of slots n (1..8)
**   H+36    4     reserved
**   H+40    24*8  slots: guest address, size, memory file offset (u64 each)
**   H+232   ...   thread: x (u32), iteration (u32); kvm: struct kvm_regs,
**                 struct kvm_sregs (this host's ABI)
**   H+1024  4     number of drives d (0..4), then 4 reserved bytes
**   H+1032  296*d drives: id (32 bytes, NUL-padded), path_on_host (256),
**                 read-only (u32), root (u32)
**   ...           zeros to 20480
**
** Versions (--fc-version, default 1.12.0). Snapshot format version per
** release, from SNAPSHOT_VERSION in src/vmm/src/persist.rs at each tag of
** github:firecracker-microvm/firecracker; load fields from LoadSnapshotConfig
** in src/vmm/src/vmm_config/snapshot.rs and CHANGELOG.md:
**
**   release        format   encoding  load body fields beyond the 1.10 set
**   1.10.0         3.0.0    bincode 1 -
**   1.10.1         4.0.0    bincode 1 -
**   1.11.x         5.0.0    bincode 2 -
**   1.12.x         6.0.0    bincode 2 network_overrides
**   1.13.x         8.0.0    bincode 2 + track_dirty_pages (enable_diff_snapshots
**                                       deprecated but still accepted)
**   1.14.x         8.0.0    bincode 2 same as 1.13
**   1.15.x         9.0.0    bitcode   same as 1.13
**   1.16.x         10.0.0   bitcode   + vsock_override, clock_realtime
**
** The 1.10 set: snapshot_path, mem_file_path | mem_backend {backend_path,
** backend_type File|Uffd}, enable_diff_snapshots, resume_vm. A load refuses
** (400, then exits) a vmstate whose format major differs from the release's,
** whose minor is newer (as upstream's check) or whose encoding is the other
** one.
**
** Deviations from Firecracker (on purpose, or not worth emulating):
**  - GET / adds "iterations" (tests watch the guest make progress).
**  - After the header, real vmstates hold MicrovmState and a CRC64; fcvmm's
**    hold its own state. The bitcode header layout was derived from the
**    bitcode 0.6 source (pack_ints, LengthEncoder, StrEncoder), not from a
**    file written by Firecracker 1.15.
**  - mem_backend Uffd is implemented (below); huge pages are not, so
**    page_size is always 4096.
**  - Drives are files that must open, nothing more; no network or vsock
**    devices: network_overrides and vsock_override are checked for shape
**    and shown in GET /vm/config, not applied.
**  - API errors that Firecracker detects while parsing (unknown field,
**    missing field, both mem fields) answer 400 and keep running; errors in
**    the load itself answer 400 and exit(1), as Firecracker exits.
**  - Emulated upstream bug: as 1.14.0 and 1.14.1, a Diff of a guest with
**    more than one slot is corrupt when a slot ends in clean pages (see
**    write_mem).
**  - HTTP: one connection at a time, keep-alive, Content-Length bodies up
**    to 64 KiB.
**
** Uffd memory backend (PUT /snapshot/load with "mem_backend":
** {"backend_type": "Uffd", "backend_path": SOCK}), as Firecracker's
** guest_memory_from_uffd (src/vmm/src/persist.rs) does it: guest RAM is a
** fresh anonymous MAP_PRIVATE mapping (both backends); a userfaultfd is
** created (O_CLOEXEC|O_NONBLOCK, UFFD_FEATURE_EVENT_REMOVE required) and
** every slot is registered in MISSING mode; fcvmm connects to SOCK and
** sends ONE message: the JSON array of GuestRegionUffdMapping, one per
** slot, {"base_host_virt_addr", "size", "offset" (in the memory file),
** "page_size", "page_size_kib"} (both page sizes in bytes, 4096, as
** Firecracker sends them), with the uffd as SCM_RIGHTS. The socket is
** never closed (Firecracker leaks it on purpose, so the handler sees the
** message before any hang-up) and fcvmm keeps its copy of the uffd. Then
** the load continues; every first touch of a page (the guest, or fcvmm
** itself writing a snapshot) blocks until the handler serves it. A
** connect or send that fails is a failed load (exit). Dirty tracking:
** kvm keeps KVM_GET_DIRTY_LOG; thread registers the same uffd also in WP
** mode with UFFD_FEATURE_WP_ASYNC (never a message to the handler), so
** PAGEMAP_SCAN works: a page the handler installs counts as written
** until the first collection (a Diff after a lazy load may carry pages
** equal to the parent's: a correct, larger Diff). wp-sync cannot share
** the handler's uffd: a tracked Uffd load needs wp-async (refused else).
**
** Jailer mode (--chroot DIR --uid U --gid G): /dev/kvm, userfaultfd and
** /proc/self/pagemap (for PAGEMAP_SCAN) are opened first, then fcvmm chroots into DIR, drops
** to U:G (setgroups, setgid, setuid) and only then creates its socket:
** every path (socket, API bodies, --dump-dir) is inside the jail, and
** every file it writes belongs to U:G, as under Firecracker's jailer.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <json-c/json.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Older headers lack these; the kernel decides at run time. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
        category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define PAGE 4096u
#define GUEST_ADDR 0x1000
#define PARAMS_ADDR 0x500
#define BASE_PAGE 256          /* the guest writes pages from 1 MiB up */
#define EXIT_EVERY 16          /* pages per `out` */
#define PORT 0x3f0
#define VMSTATE_SIZE 20480
#define BODY_MAX 65536
#define MAX_SLOTS 8
#define MAX_DRIVES 4
#define DRIVES_AT 1024         /* offset of the drive table after H in the vmstate */
#define GIB (1ull << 30)
#define MMIO_GAP_START (3 * GIB)
#define MMIO_GAP_END (4 * GIB)
#define FC_MAGIC 0x0710198486640000ull
#define BK_KVM 1
#define BK_THREAD 2
#define DT_AUTO 0
#define DT_ASYNC 1
#define DT_SYNC 2

/* The guest (as --32; GNU syntax):
**  0: mov %esi,%eax; shl $13,%eax; xor %eax,%esi    xorshift32 on %esi
**  7: mov %esi,%eax; shr $17,%eax; xor %eax,%esi
**  e: mov %esi,%eax; shl $5,%eax;  xor %eax,%esi
** 15: mov %esi,%eax; xor %edx,%edx; divl 0x504      %edx = x % range
** 1f: add 0x508,%edx; shl $12,%edx; mov %edx,%edi   %edi = page address
** 2a: mov %esi,%eax; shr $24,%eax                   %eax = x >> 24 (0..255)
** 2f: cmp 0x50c,%eax; jb zero                       < zero threshold
** 37: cmp 0x510,%eax; jb revert                     < zero + revert threshold
** 3f: mov %esi,%eax; and $0xff0,%eax                write two dwords
** 46: mov %esi,(%edi,%eax); mov %ebp,4(%edi,%eax); jmp done
** 4f: zero: xor %eax,%eax; mov $1024,%ecx; cld; rep stosl; jmp done
** 5b: revert: mov %edi,%eax; mov $1024,%ecx; cld; rep stosl
** 65: done: inc %ebp; mov %ebp,0x518                iteration count
** 6c: mov %ebp,%eax; and 0x514,%eax; jnz 0          every 16 pages:
** 76: mov $0x3f0,%dx; out %al,(%dx); jmp 0          exit to the VMM
*/
static const uint8_t GUEST[] = {
    0x89, 0xf0, 0xc1, 0xe0, 0x0d, 0x31, 0xc6, 0x89, 0xf0, 0xc1, 0xe8, 0x11, 0x31, 0xc6, 0x89, 0xf0,
    0xc1, 0xe0, 0x05, 0x31, 0xc6, 0x89, 0xf0, 0x31, 0xd2, 0xf7, 0x35, 0x04, 0x05, 0x00, 0x00, 0x03,
    0x15, 0x08, 0x05, 0x00, 0x00, 0xc1, 0xe2, 0x0c, 0x89, 0xd7, 0x89, 0xf0, 0xc1, 0xe8, 0x18, 0x3b,
    0x05, 0x0c, 0x05, 0x00, 0x00, 0x72, 0x18, 0x3b, 0x05, 0x10, 0x05, 0x00, 0x00, 0x72, 0x1c, 0x89,
    0xf0, 0x25, 0xf0, 0x0f, 0x00, 0x00, 0x89, 0x34, 0x07, 0x89, 0x6c, 0x07, 0x04, 0xeb, 0x16, 0x31,
    0xc0, 0xb9, 0x00, 0x04, 0x00, 0x00, 0xfc, 0xf3, 0xab, 0xeb, 0x0a, 0x89, 0xf8, 0xb9, 0x00, 0x04,
    0x00, 0x00, 0xfc, 0xf3, 0xab, 0x45, 0x89, 0x2d, 0x18, 0x05, 0x00, 0x00, 0x89, 0xe8, 0x23, 0x05,
    0x14, 0x05, 0x00, 0x00, 0x75, 0x8a, 0x66, 0xba, 0xf0, 0x03, 0xee, 0xeb, 0x83};

/* The guest's parameter block at 0x500 (dwords). */
struct params {
    uint32_t unused;
    uint32_t range;            /* 0x504: pages the guest picks from */
    uint32_t base;             /* 0x508: first of them */
    uint32_t zero_below;       /* 0x50c: x>>24 below this: zero the page */
    uint32_t revert_below;     /* 0x510: below this: refill with its boot pattern */
    uint32_t exit_mask;        /* 0x514: `out` when (iteration & mask) == 0 */
    uint32_t iteration;        /* 0x518: written by the guest */
};

struct slot {
    uint64_t gpa, size, off;
};

static struct {
    const char *sock;
    uint64_t mem_size;
    double rate;
    int zero_pct, revert_pct;
    uint32_t seed;
    long fill_mib;             /* boot fill covers the first fill_mib MiB (-1: all) */
    int no_boot, fail_create, fail_nth, ncreates, die_in_snapshot, slow_ms;
    const char *dump_dir;
    int ndumps;
    int backend, want_backend; /* BK_*; want 0 = auto */
    int dt_mode;               /* DT_* asked; after setup: DT_ASYNC or DT_SYNC for thread */
    int track_boot;            /* --track-dirty: tracking for a boot without machine-config */
    int tracking;              /* tracking active for the running VM */
    int want_slots;
    struct slot slots[MAX_SLOTS];
    int nslots;
    int fc_maj, fc_min, fc_pat; /* behaviour: a release of the table below */
    char fc_ver[32];            /* reported by GET / and GET /version */
    const char *id;
    const char *chroot_dir;
    long uid, gid;
    json_object *vmcfg_net, *vmcfg_vsock; /* from the last load, for GET /vm/config */
    struct drive {
        char id[32], path[256];
        uint32_t ro, root;
    } drives[MAX_DRIVES];
    int ndrives;
    /* the VM */
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *ram;
    uint64_t npages;
    uint64_t *dirty;           /* accumulated since the last snapshot */
    uint64_t *log;             /* scratch for KVM_GET_DIRTY_LOG */
    _Atomic uint64_t *wpbits;  /* wp-sync: pages unprotected by the handler */
    uint64_t *touched;         /* thread + tracking: pages that may be populated */
    int uffd, pagemap;
    uint64_t uffd_features;    /* what the kernel offers */
    pthread_t wp_thread;
    int started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pause_req, paused;     /* under mu */
    atomic_int pause_flag;     /* thread backend: read without the lock */
    uint32_t tx, tebp;         /* thread backend "registers" (owned by the guest thread; read when parked) */
    atomic_uint_fast64_t iterations;
    double t_base;             /* rate control: time of iteration base_it */
    uint64_t base_it;
    int booted_by_api;
    int lazy;                  /* RAM served by a Uffd handler */
    int lazy_uffd, lazy_sock;  /* kept open for the VM's life, as Firecracker */
    uint64_t remove_pg, remove_n; /* --remove-on-usr2 */
    char vmerr[256];
} V = {.mem_size = 512ull << 20, .rate = 2000, .zero_pct = 5, .revert_pct = 5, .seed = 0x9e3779b9u,
       .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .vm = -1, .vcpu = -1, .kvm = -1,
       .uffd = -1, .pagemap = -1, .lazy_uffd = -1, .lazy_sock = -1, .track_boot = 1, .fc_maj = 1, .fc_min = 12, .fc_pat = 0, .fc_ver = "1.12.0",
       .id = "anonymous-instance", .uid = -1, .gid = -1, .fill_mib = -1};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_sig(int sig) { (void)sig; }

static int fc_ge(int maj, int min) { return V.fc_maj > maj || (V.fc_maj == maj && V.fc_min >= min); }

/* The snapshot data format version the emulated release writes (table at the top). */
static const char *fmt_version(void)
{
    switch (V.fc_min) {
    case 10: return V.fc_pat == 0 ? "3.0.0" : "4.0.0";
    case 11: return "5.0.0";
    case 12: return "6.0.0";
    case 13:
    case 14: return "8.0.0";
    case 15: return "9.0.0";
    default: return "10.0.0";
    }
}

/* ---- memory layout ---- */

/* Slots for V.mem_size: design "Memory layout". */
static int layout(char *err, size_t len)
{
    uint64_t left = V.mem_size, gpa = 0, off = 0;
    int want = V.want_slots > 0 ? V.want_slots : 1;
    uint64_t target = (V.mem_size / (uint64_t)want + PAGE - 1) / PAGE * PAGE;
    V.nslots = 0;
    while (left) {
        if (V.nslots == MAX_SLOTS) {
            snprintf(err, len, "more than %d memory slots", MAX_SLOTS);
            return -1;
        }
        if (gpa >= MMIO_GAP_START && gpa < MMIO_GAP_END)
            gpa = MMIO_GAP_END;
        uint64_t sz = left < target ? left : target;
        if (V.want_slots <= 1)
            sz = left;
        if (gpa < MMIO_GAP_START && gpa + sz > MMIO_GAP_START)
            sz = MMIO_GAP_START - gpa;
        V.slots[V.nslots++] = (struct slot){gpa, sz, off};
        left -= sz, off += sz;
        gpa = (gpa + sz + GIB - 1) / GIB * GIB;
        if (V.want_slots <= 1 && gpa < MMIO_GAP_END && left)
            gpa = MMIO_GAP_END;
    }
    return 0;
}

/* Guest address of the page at memory file offset off. */
static uint64_t gpa_of(uint64_t off)
{
    for (int i = 0; i < V.nslots; i++)
        if (off >= V.slots[i].off && off < V.slots[i].off + V.slots[i].size)
            return V.slots[i].gpa + (off - V.slots[i].off);
    return off;
}

/* ---- the vCPU: KVM ---- */

static void park_if_asked(void)
{
    pthread_mutex_lock(&V.mu);
    if (V.pause_req) {
        V.paused = 1;
        pthread_cond_broadcast(&V.cv);
        while (V.pause_req)
            pthread_cond_wait(&V.cv, &V.mu);
        V.paused = 0;
        if (V.run)
            V.run->immediate_exit = 0;
        V.t_base = now_s();
        V.base_it = atomic_load(&V.iterations);
    }
    pthread_mutex_unlock(&V.mu);
}

/* Sleeps until iteration it is due (--rate); wakes early for a pause. */
static void hold_rate(uint64_t it)
{
    double due = V.t_base + (double)(it - V.base_it) * EXIT_EVERY / V.rate;
    for (;;) {
        double t = now_s();
        if (due <= t || atomic_load(&V.pause_flag))
            return;
        double d = due - t < 0.005 ? due - t : 0.005;
        usleep((useconds_t)(d * 1e6));
    }
}

static void *vcpu_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (;;) {
        park_if_asked();
        int r = ioctl(V.vcpu, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            snprintf(V.vmerr, sizeof V.vmerr, "KVM_RUN: %s", strerror(errno));
            fprintf(stderr, "fcvmm: %s\n", V.vmerr);
            return NULL;
        }
        if (V.run->exit_reason == KVM_EXIT_IO && V.run->io.port == PORT) {
            hold_rate(atomic_fetch_add(&V.iterations, 1) + 1);
            continue;
        }
        snprintf(V.vmerr, sizeof V.vmerr, "guest stopped: exit reason %u", V.run->exit_reason);
        fprintf(stderr, "fcvmm: %s\n", V.vmerr);
        return NULL;
    }
}

/* ---- the vCPU: a thread doing what GUEST[] does ---- */

static void *tguest_main(void *arg)
{
    (void)arg;
    for (;;) {
        park_if_asked();
        struct params pm;
        memcpy(&pm, V.ram + PARAMS_ADDR, sizeof pm);
        if (pm.range == 0)
            pm.range = 1;
        uint32_t x = V.tx, ebp = V.tebp;
        do {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            uint64_t p = (uint64_t)(x % pm.range) + pm.base;
            uint64_t off = p * PAGE;
            if (off + PAGE > V.mem_size)
                off = (uint64_t)BASE_PAGE * PAGE;
            uint32_t *w = (uint32_t *)(V.ram + off);
            uint32_t t = x >> 24;
            if (t < pm.zero_below) {
                memset(w, 0, PAGE);
            } else if (t < pm.revert_below) {
                uint32_t a = (uint32_t)gpa_of(off);
                for (size_t i = 0; i < PAGE / 4; i++)
                    w[i] = a;
            } else {
                uint32_t o = (x & 0xff0) / 4;
                w[o] = x;
                w[o + 1] = ebp;
            }
            ebp++;
            memcpy(V.ram + 0x518, &ebp, 4);
        } while (ebp & pm.exit_mask);
        V.tx = x, V.tebp = ebp;
        hold_rate(atomic_fetch_add(&V.iterations, 1) + 1);
    }
    return NULL;
}

/* Pauses (1) or resumes (0) the vCPU; returns once it has happened. */
static void set_paused(int on)
{
    pthread_mutex_lock(&V.mu);
    if (on) {
        V.pause_req = 1;
        atomic_store(&V.pause_flag, 1);
        if (V.backend == BK_KVM) {
            V.run->immediate_exit = 1;
            pthread_kill(V.thread, SIGUSR1);
        }
        while (!V.paused)
            pthread_cond_wait(&V.cv, &V.mu);
    } else {
        V.pause_req = 0;
        atomic_store(&V.pause_flag, 0);
        pthread_cond_broadcast(&V.cv);
    }
    pthread_mutex_unlock(&V.mu);
}

static int is_paused(void)
{
    pthread_mutex_lock(&V.mu);
    int p = V.paused;
    pthread_mutex_unlock(&V.mu);
    return p;
}

static void start_vcpu(void)
{
    pthread_mutex_lock(&V.mu);
    V.pause_req = 1;           /* starts paused; the caller resumes */
    atomic_store(&V.pause_flag, 1);
    V.paused = 0;
    pthread_mutex_unlock(&V.mu);
    pthread_create(&V.thread, NULL, V.backend == BK_KVM ? vcpu_main : tguest_main, NULL);
    pthread_mutex_lock(&V.mu);
    while (!V.paused)
        pthread_cond_wait(&V.cv, &V.mu);
    pthread_mutex_unlock(&V.mu);
    V.started = 1;
}

/* ---- userfaultfd write-protect tracking (thread backend) ---- */

static int uffd_new(int flags)
{
    int fd = (int)syscall(SYS_userfaultfd, flags);
    if (fd >= 0)
        return fd;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -1;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    close(dev);
    return fd;
}

/* Opens the userfaultfd and picks wp-async or wp-sync (before any chroot). */
static int uffd_setup(char *err, size_t len)
{
    int fd = uffd_new(O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
        snprintf(err, len, "userfaultfd: %s (run with --no-track-dirty or --backend kvm)", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    V.uffd_features = api.features;
    int async_ok = (api.features & UFFD_FEATURE_WP_ASYNC) && (api.features & UFFD_FEATURE_WP_UNPOPULATED);
    if ((V.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
        async_ok = 0;
    if (V.dt_mode == DT_ASYNC && !async_ok) {
        snprintf(err, len, "--dirty-track wp-async: this kernel lacks UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN");
        return -1;
    }
    V.dt_mode = V.dt_mode == DT_SYNC || !async_ok ? DT_SYNC : DT_ASYNC;
    api = (struct uffdio_api){.api = UFFD_API};
    api.features = V.dt_mode == DT_ASYNC ? UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED
                                         : UFFD_FEATURE_PAGEFAULT_FLAG_WP |
                                               (V.uffd_features & UFFD_FEATURE_WP_UNPOPULATED);
    if ((V.uffd = uffd_new(O_CLOEXEC | O_NONBLOCK)) < 0 || ioctl(V.uffd, UFFDIO_API, &api) < 0) {
        snprintf(err, len, "userfaultfd features 0x%llx: %s", (unsigned long long)api.features, strerror(errno));
        return -1;
    }
    return 0;
}

static int wp_range(uint64_t off, uint64_t n, int protect)
{
    struct uffdio_writeprotect wp = {.range = {.start = (uintptr_t)V.ram + off, .len = n},
                                     .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
    while (ioctl(V.uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
    return 0;
}

/* wp-sync: marks each faulting page dirty, then lets the writer go on. */
static void *wp_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p = {.fd = V.uffd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        struct uffd_msg m;
        ssize_t n = read(V.uffd, &m, sizeof m);
        if (n != (ssize_t)sizeof m) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            return NULL;
        }
        if (m.event != UFFD_EVENT_PAGEFAULT || !(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
            continue;
        uint64_t off = ((uintptr_t)m.arg.pagefault.address - (uintptr_t)V.ram) & ~(uint64_t)(PAGE - 1);
        uint64_t pg = off / PAGE;
        atomic_fetch_or(&V.wpbits[pg / 64], 1ull << (pg % 64));
        if (wp_range(off, PAGE, 0) != 0)
            fprintf(stderr, "fcvmm: unprotect page %llu: %s\n", (unsigned long long)pg, strerror(errno));
    }
}

/* Write-protects all of RAM; from now on writes are tracked. */
static int track_start(char *err, size_t len)
{
    size_t words = (size_t)(V.npages + 63) / 64;
    V.dirty = calloc(words, 8);
    V.log = calloc(words, 8);
    if (!V.dirty || !V.log) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    if (!V.tracking || V.backend == BK_KVM)
        return 0;
    if (V.uffd < 0) {
        snprintf(err, len, "dirty page tracking needs userfaultfd, which this VMM could not open");
        return -1;
    }
    if (V.lazy) {
        /* the handler's uffd, registered MISSING|WP by uffd_handoff. Only
        ** present pages could be protected and the handler installs them
        ** unprotected: each counts as written until the first collection
        ** re-protects it, so nothing to do here (a UFFDIO_WRITEPROTECT of
        ** 8 GiB costs 33 ms of the load for nothing) */
        return 0;
    }
    if (!(V.uffd_features & UFFD_FEATURE_WP_UNPOPULATED)) {
        /* without WP_UNPOPULATED, only present PTEs can carry the WP bit */
        volatile uint8_t s = 0;
        for (uint64_t p = 0; p < V.npages; p++)
            s ^= V.ram[p * PAGE];
        (void)s;
    }
    struct uffdio_register r = {.range = {.start = (uintptr_t)V.ram, .len = V.mem_size},
                                .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(V.uffd, UFFDIO_REGISTER, &r) < 0 || wp_range(0, V.mem_size, 1) != 0) {
        snprintf(err, len, "userfaultfd write-protect of guest RAM: %s", strerror(errno));
        return -1;
    }
    if (V.dt_mode == DT_SYNC) {
        V.wpbits = calloc(words, 8);
        if (!V.wpbits) {
            snprintf(err, len, "out of memory");
            return -1;
        }
        pthread_create(&V.wp_thread, NULL, wp_main, NULL);
    }
    return 0;
}

static void set_bits(uint64_t *bm, uint64_t p, uint64_t q);

static void set_dirty(uint64_t p, uint64_t q)
{
    for (uint64_t i = p; i < q; i++)
        V.dirty[i / 64] |= 1ull << (i % 64);
    if (V.touched)
        set_bits(V.touched, p, q);
}

/* ORs the pages written since the last call into V.dirty (guest parked). */
static int collect_dirty(char *err, size_t len)
{
    if (!V.tracking)
        return 0;
    if (V.backend == BK_KVM) {
        for (int s = 0; s < V.nslots; s++) {
            struct kvm_dirty_log dl = {.slot = (uint32_t)s, .dirty_bitmap = V.log};
            if (ioctl(V.vm, KVM_GET_DIRTY_LOG, &dl) < 0) {
                snprintf(err, len, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
                return -1;
            }
            uint64_t first = V.slots[s].off / PAGE, n = V.slots[s].size / PAGE;
            for (uint64_t i = 0; i < n; i++)
                if (V.log[i / 64] >> (i % 64) & 1)
                    set_dirty(first + i, first + i + 1);
        }
        return 0;
    }
    if (V.dt_mode == DT_ASYNC) {
        static struct page_region rg[1024];
        uint64_t start = (uintptr_t)V.ram, end = start + V.mem_size;
        while (start < end) {
            struct pm_scan_arg a = {.size = sizeof a, .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                                    .start = start, .end = end, .vec = (uintptr_t)rg, .vec_len = 1024,
                                    .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN};
            int n = ioctl(V.pagemap, PAGEMAP_SCAN, &a);
            if (n < 0) {
                snprintf(err, len, "PAGEMAP_SCAN: %s", strerror(errno));
                return -1;
            }
            for (int i = 0; i < n; i++)
                set_dirty((rg[i].start - (uintptr_t)V.ram) / PAGE, (rg[i].end - (uintptr_t)V.ram) / PAGE);
            if (a.walk_end <= start) {
                snprintf(err, len, "PAGEMAP_SCAN made no progress at %#llx", (unsigned long long)start);
                return -1;
            }
            start = a.walk_end;
        }
        return 0;
    }
    /* wp-sync: take the handler's bits, re-protect those pages */
    for (uint64_t p = 0; p < V.npages;) {
        if (!(atomic_load(&V.wpbits[p / 64]) >> (p % 64) & 1)) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < V.npages && (atomic_load(&V.wpbits[q / 64]) >> (q % 64) & 1))
            q++;
        if (wp_range(p * PAGE, (q - p) * PAGE, 1) != 0) {
            snprintf(err, len, "re-protect pages %llu..%llu: %s", (unsigned long long)p, (unsigned long long)q,
                     strerror(errno));
            return -1;
        }
        set_dirty(p, q);
        for (uint64_t i = p; i < q; i++)
            atomic_fetch_and(&V.wpbits[i / 64], ~(1ull << (i % 64)));
        p = q;
    }
    return 0;
}

/* ---- VM setup ---- */

static int kvm_create(char *err, size_t len)
{
    if (V.kvm < 0 || (V.vm = ioctl(V.kvm, KVM_CREATE_VM, 0)) < 0) {
        snprintf(err, len, "/dev/kvm: %s", strerror(errno));
        return -1;
    }
    if (ioctl(V.vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
        snprintf(err, len, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -1;
    }
    for (int s = 0; s < V.nslots; s++) {
        struct kvm_userspace_memory_region r = {.slot = (uint32_t)s,
                                                .flags = V.tracking ? KVM_MEM_LOG_DIRTY_PAGES : 0,
                                                .guest_phys_addr = V.slots[s].gpa,
                                                .memory_size = V.slots[s].size,
                                                .userspace_addr = (uintptr_t)V.ram + V.slots[s].off};
        if (ioctl(V.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
            snprintf(err, len, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
            return -1;
        }
    }
    if ((V.vcpu = ioctl(V.vm, KVM_CREATE_VCPU, 0)) < 0) {
        snprintf(err, len, "KVM_CREATE_VCPU: %s", strerror(errno));
        return -1;
    }
    int sz = ioctl(V.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    V.run_size = (size_t)sz;
    V.run = sz > 0 ? mmap(NULL, V.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, V.vcpu, 0) : MAP_FAILED;
    if (V.run == MAP_FAILED) {
        V.run = NULL;
        snprintf(err, len, "mmap kvm_run: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static uint32_t xs(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void flat_sregs(struct kvm_sregs *s)
{
    struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
                               .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1};
    struct kvm_segment data = code;
    data.selector = 16;
    data.type = 3;
    s->cs = code;
    s->ds = s->es = s->fs = s->gs = s->ss = data;
    s->cr0 |= 1;               /* protected mode, no paging */
}

/* Checks the size and slot layout, maps fresh RAM. */
static int ram_new(char *err, size_t len)
{
    if (V.mem_size < (BASE_PAGE + 64) * (uint64_t)PAGE || V.mem_size % PAGE) {
        snprintf(err, len, "guest memory must be at least 2 MiB");
        return -1;
    }
    if (layout(err, len) != 0)
        return -1;
    if (V.backend == BK_KVM && (V.nslots > 1 || V.mem_size > MMIO_GAP_START)) {
        snprintf(err, len, "the kvm backend runs one slot of at most 3072 MiB (use --backend thread)");
        return -1;
    }
    if (V.mem_size / PAGE - BASE_PAGE > UINT32_MAX) {
        snprintf(err, len, "guest memory too large");
        return -1;
    }
    int fl = (V.backend == BK_KVM ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE;
    V.ram = mmap(NULL, V.mem_size, PROT_READ | PROT_WRITE, fl, -1, 0);
    if (V.ram == MAP_FAILED) {
        V.ram = NULL;
        snprintf(err, len, "mmap guest RAM: %s", strerror(errno));
        return -1;
    }
    if (V.backend == BK_THREAD)
        madvise(V.ram, V.mem_size, MADV_NOHUGEPAGE);
    V.npages = V.mem_size / PAGE;
    if (V.backend == BK_THREAD && V.tracking && !(V.touched = calloc((size_t)(V.npages + 63) / 64, 8))) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

static int boot(char *err, size_t len)
{
    if (ram_new(err, len) != 0)
        return -1;
    /* a used-looking RAM */
    uint32_t x = V.seed | 1;
    uint64_t np = V.npages;
    static uint8_t shared[PAGE];
    for (size_t i = 0; i < PAGE; i++)
        shared[i] = (uint8_t)xs(&x);
    uint64_t fill = V.fill_mib >= 0 && ((uint64_t)V.fill_mib << 20) / PAGE < np ? ((uint64_t)V.fill_mib << 20) / PAGE : np;
    for (uint64_t p = BASE_PAGE; p < fill; p++) {
        uint32_t d = xs(&x) % 100;
        uint32_t *w = (uint32_t *)(V.ram + p * PAGE);
        if (d < 40) {
            for (size_t i = 0; i < PAGE / 4; i++)
                w[i] = i % 4 == 0 ? xs(&x) : (uint32_t)(p * 2654435761u + i);
        } else if (d < 50) {
            uint32_t a = (uint32_t)gpa_of(p * PAGE);
            for (size_t i = 0; i < PAGE / 4; i++)
                w[i] = a;
        } else if (d < 55) {
            memcpy(w, shared, PAGE);
        }
    }
    if (V.touched)
        set_bits(V.touched, 0, fill > BASE_PAGE ? fill : BASE_PAGE);
    memcpy(V.ram + GUEST_ADDR, GUEST, sizeof GUEST);
    struct params pm = {0};
    pm.base = BASE_PAGE;
    pm.range = (uint32_t)(np - BASE_PAGE);
    pm.zero_below = (uint32_t)(V.zero_pct * 256 / 100);
    pm.revert_below = pm.zero_below + (uint32_t)(V.revert_pct * 256 / 100);
    pm.exit_mask = EXIT_EVERY - 1;
    memcpy(V.ram + PARAMS_ADDR, &pm, sizeof pm);
    if (track_start(err, len) != 0)
        return -1;
    if (V.backend == BK_KVM) {
        if (kvm_create(err, len) != 0)
            return -1;
        struct kvm_sregs sregs;
        struct kvm_regs regs = {0};
        if (ioctl(V.vcpu, KVM_GET_SREGS, &sregs) < 0) {
            snprintf(err, len, "KVM_GET_SREGS: %s", strerror(errno));
            return -1;
        }
        flat_sregs(&sregs);
        regs.rip = GUEST_ADDR;
        regs.rflags = 2;
        regs.rsi = V.seed | 1;
        if (ioctl(V.vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(V.vcpu, KVM_SET_REGS, &regs) < 0) {
            snprintf(err, len, "set registers: %s", strerror(errno));
            return -1;
        }
    } else {
        V.tx = V.seed | 1;
        V.tebp = 0;
    }
    start_vcpu();
    set_paused(0);
    return 0;
}

/* ---- snapshots ---- */

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    static const uint8_t z[65536];
    return n <= sizeof z && memcmp(p, z, n) == 0;
}

/* Whether any of pages [p, p+n) may hold data: boot-filled, loaded or
** ever written (V.touched). Reading a never-touched page of a uffd-wp
** mapping (a pte marker) allocates it: a Full of a 4 GiB guest would fill
** the host's memory. Without tracking, reads map the zero page: 1. */
static int populated(uint64_t p, uint64_t n)
{
    if (!V.touched)
        return 1;
    for (uint64_t i = p; i < p + n && i < V.npages; i++)
        if (V.touched[i / 64] >> (i % 64) & 1)
            return 1;
    return 0;
}

static void set_bits(uint64_t *bm, uint64_t p, uint64_t q)
{
    for (; p < q; p++)
        bm[p / 64] |= 1ull << (p % 64);
}

/* All of RAM into fd of size mem_size; unpopulated and zero 64 KiB runs
** are left as holes (the same bytes). */
static int write_full(int fd, int die_half)
{
    if (ftruncate(fd, (off_t)V.mem_size) != 0)
        return -1;
    for (uint64_t off = 0; off < V.mem_size; off += 65536) {
        size_t n = V.mem_size - off < 65536 ? (size_t)(V.mem_size - off) : 65536;
        if (populated(off / PAGE, (n + PAGE - 1) / PAGE) && !all_zero(V.ram + off, n) &&
            write_all(fd, V.ram + off, n, (off_t)off) != 0)
            return -1;
        if (die_half && off >= V.mem_size / 2)
            _exit(1);
    }
    return 0;
}

static int write_mem(const char *path, int diff, char *err, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, len, "open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (diff) {
        if (ftruncate(fd, (off_t)V.mem_size) != 0)
            rc = -1;
        /* Slot by slot with one file cursor, as Firecracker's dump_dirty().
        ** 1.14.0 and 1.14.1 drop a slot's trailing clean pages from the
        ** cursor (fixed in 1.14.2 by 5156f7d3b, PR #5705): the next slot's
        ** pages land too early in the file. Emulated, so that a client
        ** that trusts those releases with multi-slot Diffs is caught. */
        int bug = V.fc_maj == 1 && V.fc_min == 14 && V.fc_pat < 2;
        uint64_t cursor = 0;
        for (int s = 0; s < V.nslots && rc == 0; s++) {
            uint64_t first = V.slots[s].off / PAGE, end = first + V.slots[s].size / PAGE, skip = 0;
            for (uint64_t p = first; p < end && rc == 0;) {
                if (!(V.dirty[p / 64] >> (p % 64) & 1)) {
                    p++, skip += PAGE;
                    continue;
                }
                uint64_t q = p;
                while (q < end && (V.dirty[q / 64] >> (q % 64) & 1))
                    q++;
                cursor += skip, skip = 0;
                rc = write_all(fd, V.ram + p * PAGE, (size_t)(q - p) * PAGE, (off_t)cursor);
                cursor += (q - p) * PAGE;
                if (V.die_in_snapshot)
                    _exit(1);
                p = q;
            }
            if (!bug)
                cursor += skip;
        }
    } else {
        rc = write_full(fd, V.die_in_snapshot);
    }
    if (rc != 0)
        snprintf(err, len, "write %s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, len, "close %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlink(path);
    return rc;
}

static int write_vmstate(const char *path, char *err, size_t len)
{
    static uint8_t b[VMSTATE_SIZE];
    memset(b, 0, sizeof b);
    const char *fv = fmt_version();
    uint64_t magic = FC_MAGIC, L = strlen(fv);
    memcpy(b, &magic, 8);
    uint8_t *h;
    if (fc_ge(1, 15)) {        /* bitcode: a lone u64 raw, then the string's length byte and bytes */
        b[8] = (uint8_t)L;
        memcpy(b + 9, fv, L);
        h = b + 9 + L;
    } else {                   /* bincode fixint: u64 length, bytes */
        memcpy(b + 8, &L, 8);
        memcpy(b + 16, fv, L);
        h = b + 16 + L;
    }
    uint32_t ver = 2, bk = (uint32_t)V.backend, ns = (uint32_t)V.nslots;
    uint64_t it = atomic_load(&V.iterations);
    memcpy(h, "FCVMMST2", 8);
    memcpy(h + 8, &ver, 4);
    memcpy(h + 12, &bk, 4);
    memcpy(h + 16, &V.mem_size, 8);
    memcpy(h + 24, &it, 8);
    memcpy(h + 32, &ns, 4);
    for (int i = 0; i < V.nslots; i++)
        memcpy(h + 40 + 24 * i, &V.slots[i], 24);
    uint8_t *r = h + 40 + 24 * MAX_SLOTS;
    uint32_t nd = (uint32_t)V.ndrives;
    memcpy(h + DRIVES_AT, &nd, 4);
    for (int i = 0; i < V.ndrives; i++)
        memcpy(h + DRIVES_AT + 8 + sizeof V.drives[0] * (size_t)i, &V.drives[i], sizeof V.drives[0]);
    if (V.backend == BK_KVM) {
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        if (ioctl(V.vcpu, KVM_GET_REGS, &regs) < 0 || ioctl(V.vcpu, KVM_GET_SREGS, &sregs) < 0) {
            snprintf(err, len, "get registers: %s", strerror(errno));
            return -1;
        }
        memcpy(r, &regs, sizeof regs);
        memcpy(r + sizeof regs, &sregs, sizeof sregs);
    } else {
        memcpy(r, &V.tx, 4);
        memcpy(r + 4, &V.tebp, 4);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, b, sizeof b, 0) != 0 || close(fd) != 0) {
        snprintf(err, len, "write %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(path);
        return -1;
    }
    return 0;
}

/* Test hook: the whole of RAM as it is now, to check restores against. */
static void dump_ram(void)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%06d.full", V.dump_dir, V.ndumps++);
    mkdir(V.dump_dir, 0700);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_full(fd, 0) != 0)
        fprintf(stderr, "fcvmm: dump %s: %s\n", p, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* ---- request bodies, checked as Firecracker's serde structs ---- */

/* 400 text for an unknown field, as serde's deny_unknown_fields words it. */
static int check_fields(json_object *o, const char *const *allowed, char *err, size_t len)
{
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: "
                           "invalid type: expected a JSON object.");
        return -1;
    }
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(key, *a);
        if (ok)
            continue;
        int k = snprintf(err, len, "An error occurred when deserializing the json body of a request: "
                                   "unknown field `%s`, expected one of ", key);
        for (const char *const *a = allowed; *a && k > 0 && (size_t)k < len; a++)
            k += snprintf(err + k, len - (size_t)k, "%s`%s`", a == allowed ? "" : ", ", *a);
        if (k > 0 && (size_t)k < len)
            snprintf(err + k, len - (size_t)k, ".");
        return -1;
    }
    return 0;
}

/* Field name of type t, or NULL if absent; -1 in *bad if of another type. */
static json_object *field(json_object *o, const char *name, json_type t, int *bad, char *err, size_t len)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v))
        return NULL;
    if (!json_object_is_type(v, t)) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: "
                           "invalid type for `%s`.", name);
        *bad = 1;
        return NULL;
    }
    return v;
}

/* Opens the backing file as Firecracker's block device does. */
static int drive_check(const char *path, int ro, char *err, size_t len)
{
    int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, len, "Unable to open the block device backing file %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static struct drive *drive_find(const char *id)
{
    for (int i = 0; i < V.ndrives; i++)
        if (!strcmp(V.drives[i].id, id))
            return &V.drives[i];
    return NULL;
}

/* --drive and PUT /drives/ID before boot: adds or replaces a drive. */
static int drive_put(const char *id, const char *path, int ro, int root, char *err, size_t len)
{
    struct drive *d = drive_find(id);
    if (strlen(id) >= sizeof d->id || strlen(path) >= sizeof d->path || !*id) {
        snprintf(err, len, "drive id or path too long");
        return -1;
    }
    if (!d && V.ndrives == MAX_DRIVES) {
        snprintf(err, len, "fcvmm holds at most %d drives", MAX_DRIVES);
        return -1;
    }
    if (drive_check(path, ro, err, len) != 0)
        return -1;
    if (!d)
        d = &V.drives[V.ndrives++];
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->path, sizeof d->path, "%s", path);
    d->ro = (uint32_t)ro, d->root = (uint32_t)root;
    return 0;
}

/* PUT /drives/ID (before boot) and PATCH /drives/ID (after: path only). */
static int drives_req(const char *id, int patch, json_object *req, char *err, size_t len)
{
    static const char *const put_ok[] = {"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid",
                                         "cache_type", "io_engine", "rate_limiter", "socket", NULL};
    static const char *const patch_ok[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
    int bad = 0;
    if (check_fields(req, patch ? patch_ok : put_ok, err, len) != 0)
        return -1;
    json_object *di = field(req, "drive_id", json_type_string, &bad, err, len);
    json_object *ph = field(req, "path_on_host", json_type_string, &bad, err, len);
    json_object *rd = field(req, "is_root_device", json_type_boolean, &bad, err, len);
    json_object *ro = field(req, "is_read_only", json_type_boolean, &bad, err, len);
    if (bad)
        return -1;
    if (!di || (!patch && !rd)) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: missing field `%s`.",
                 !di ? "drive_id" : "is_root_device");
        return -1;
    }
    if (strcmp(json_object_get_string(di), id) != 0) {
        snprintf(err, len, "The id from the path does not match the id from the body!");
        return -1;
    }
    if (!patch) {
        if (V.started || V.ram) {
            snprintf(err, len, "The requested operation is not supported after starting the microVM.");
            return -1;
        }
        if (!ph) {
            snprintf(err, len, "fcvmm drives need path_on_host");
            return -1;
        }
        V.booted_by_api = 1;
        return drive_put(id, json_object_get_string(ph), ro && json_object_get_boolean(ro),
                         json_object_get_boolean(rd), err, len);
    }
    struct drive *d = drive_find(id);
    if (!V.started) {
        snprintf(err, len, "The requested operation is not supported before starting the microVM.");
        return -1;
    }
    if (!d) {
        snprintf(err, len, "Invalid block device ID: %s", id);
        return -1;
    }
    if (ph) {
        if (drive_check(json_object_get_string(ph), (int)d->ro, err, len) != 0)
            return -1;
        snprintf(d->path, sizeof d->path, "%s", json_object_get_string(ph));
    }
    return 0;
}

static int snapshot_create(json_object *req, char *err, size_t len)
{
    static const char *const ok[] = {"snapshot_type", "snapshot_path", "mem_file_path", NULL};
    int bad = 0;
    if (check_fields(req, ok, err, len) != 0)
        return -1;
    json_object *t = field(req, "snapshot_type", json_type_string, &bad, err, len);
    json_object *sp = field(req, "snapshot_path", json_type_string, &bad, err, len);
    json_object *mp = field(req, "mem_file_path", json_type_string, &bad, err, len);
    if (bad)
        return -1;
    if (!sp || !mp) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: missing field `%s`.",
                 !sp ? "snapshot_path" : "mem_file_path");
        return -1;
    }
    const char *type = t ? json_object_get_string(t) : "Full";
    int diff = strcmp(type, "Diff") == 0;
    if (!diff && strcmp(type, "Full") != 0) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: "
                           "unknown variant `%s`, expected `Full` or `Diff`.", type);
        return -1;
    }
    if (!V.started || !is_paused()) {
        snprintf(err, len, "Cannot create snapshot: the VM must be paused");
        return -1;
    }
    if (diff && !V.tracking) {
        snprintf(err, len, "Diff snapshots are not allowed on uVMs with dirty page tracking disabled.");
        return -1;
    }
    V.ncreates++;
    if (V.fail_create || V.ncreates == V.fail_nth) {
        snprintf(err, len, "Cannot create snapshot: injected failure");
        return -1;
    }
    if (V.slow_ms)
        usleep((useconds_t)V.slow_ms * 1000);
    if (collect_dirty(err, len) != 0 || write_vmstate(json_object_get_string(sp), err, len) != 0 ||
        write_mem(json_object_get_string(mp), diff, err, len) != 0) {
        unlink(json_object_get_string(sp));
        return -1;
    }
    memset(V.dirty, 0, (size_t)(V.npages + 63) / 64 * 8);
    if (V.dump_dir)
        dump_ram();
    return 0;
}

/* Copies the data extents of the memory file into fresh anonymous RAM. */
static int copy_extents(int fd, char *err, size_t len)
{
    off_t pos = 0, end = (off_t)V.mem_size;
    while (pos < end) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break;
        off_t h = d < 0 ? -1 : lseek(fd, d, SEEK_HOLE);
        if (d < 0 || h < 0) {
            snprintf(err, len, "seek the memory file: %s", strerror(errno));
            return -1;
        }
        if (h > end)
            h = end;
        for (off_t o = d; o < h;) {
            ssize_t n = pread(fd, V.ram + o, (size_t)(h - o), o);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                snprintf(err, len, "read the memory file: %s", n < 0 ? strerror(errno) : "short file");
                return -1;
            }
            o += n;
        }
        if (V.touched)
            set_bits(V.touched, (uint64_t)d / PAGE, ((uint64_t)h + PAGE - 1) / PAGE);
        pos = h;
    }
    return 0;
}

/* Uffd backend (design above): registers RAM with a new userfaultfd and
** hands it, with the regions as JSON, to the handler listening on sock.
** -2 (a failed load) on any error. */
static int uffd_handoff(const char *sock, char *err, size_t len)
{
    int wp = V.backend == BK_THREAD && V.tracking;
    if (wp && V.dt_mode != DT_ASYNC) {
        snprintf(err, len, "Load snapshot error: dirty tracking of a Uffd-backed guest needs wp-async "
                           "(this VMM runs wp-sync)");
        return -2;
    }
    int fd = uffd_new(O_CLOEXEC | O_NONBLOCK), s = -1;
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE | (wp ? UFFD_FEATURE_WP_ASYNC : 0)};
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
        snprintf(err, len, "Load snapshot error: Failed to UFFD object: %s", strerror(errno));
        goto fail;
    }
    json_object *a = json_object_new_array();
    for (int i = 0; i < V.nslots; i++) {
        struct uffdio_register r = {.range = {.start = (uintptr_t)V.ram + V.slots[i].off, .len = V.slots[i].size},
                                    .mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0)};
        if (ioctl(fd, UFFDIO_REGISTER, &r) < 0) {
            snprintf(err, len, "Load snapshot error: Failed to register memory address range with the "
                               "userfaultfd object: %s", strerror(errno));
            json_object_put(a);
            goto fail;
        }
        json_object *m = json_object_new_object();
        json_object_object_add(m, "base_host_virt_addr", json_object_new_int64((int64_t)r.range.start));
        json_object_object_add(m, "size", json_object_new_int64((int64_t)V.slots[i].size));
        json_object_object_add(m, "offset", json_object_new_int64((int64_t)V.slots[i].off));
        json_object_object_add(m, "page_size", json_object_new_int64(PAGE));
        json_object_object_add(m, "page_size_kib", json_object_new_int64(PAGE));
        json_object_array_add(a, m);
    }
    const char *msg = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof sa.sun_path) {
        snprintf(err, len, "Load snapshot error: Failed to connect to UDS Unix stream: path too long");
        json_object_put(a);
        goto fail;
    }
    strcpy(sa.sun_path, sock);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, len, "Load snapshot error: Failed to connect to UDS Unix stream: %s: %s", sock, strerror(errno));
        json_object_put(a);
        goto fail;
    }
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    while ((n = sendmsg(s, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    json_object_put(a);
    if (n != (ssize_t)iov.iov_len) {
        snprintf(err, len, "Load snapshot error: Failed to send file descriptor: %s", n < 0 ? strerror(errno) : "short send");
        goto fail;
    }
    V.lazy_uffd = fd, V.lazy_sock = s;
    if (wp) {                  /* tracking uses the handler's uffd from now on */
        if (V.uffd >= 0)
            close(V.uffd);
        V.uffd = fd;
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (s >= 0)
        close(s);
    return -2;
}

/* --remove-on-usr2: give pages back as a balloon does (UFFD_EVENT_REMOVE). */
static void on_usr2(int sig)
{
    (void)sig;
    if (V.ram && V.remove_n && (V.remove_pg + V.remove_n) * PAGE <= V.mem_size)
        madvise(V.ram + V.remove_pg * PAGE, V.remove_n * PAGE, MADV_DONTNEED);
}

/* Returns 0, -1 for a request error (400, keep running), -2 for a failed load (400, then exit). */
static int snapshot_load(json_object *req, char *err, size_t len)
{
    const char *ok[12] = {"snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots", "resume_vm"};
    int n = 5, bad = 0, lazy = 0;
    if (fc_ge(1, 12))
        ok[n++] = "network_overrides";
    if (fc_ge(1, 13))
        ok[n++] = "track_dirty_pages";
    if (fc_ge(1, 16))
        ok[n++] = "vsock_override", ok[n++] = "clock_realtime";
    if (check_fields(req, ok, err, len) != 0)
        return -1;
    json_object *sp = field(req, "snapshot_path", json_type_string, &bad, err, len);
    json_object *mf = field(req, "mem_file_path", json_type_string, &bad, err, len);
    json_object *mb = field(req, "mem_backend", json_type_object, &bad, err, len);
    json_object *ed = field(req, "enable_diff_snapshots", json_type_boolean, &bad, err, len);
    json_object *td = field(req, "track_dirty_pages", json_type_boolean, &bad, err, len);
    json_object *rv = field(req, "resume_vm", json_type_boolean, &bad, err, len);
    json_object *no = field(req, "network_overrides", json_type_array, &bad, err, len);
    json_object *vo = field(req, "vsock_override", json_type_object, &bad, err, len);
    field(req, "clock_realtime", json_type_boolean, &bad, err, len);
    if (bad)
        return -1;
    if (!sp) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: missing field "
                           "`snapshot_path`.");
        return -1;
    }
    if (mf && mb) {
        snprintf(err, len, "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.");
        return -1;
    }
    if (!mf && !mb) {
        snprintf(err, len, "missing field: either `mem_backend` or `mem_file_path` is required.");
        return -1;
    }
    json_object *bp = mf;
    if (mb) {
        static const char *const mok[] = {"backend_path", "backend_type", NULL};
        if (check_fields(mb, mok, err, len) != 0)
            return -1;
        bp = field(mb, "backend_path", json_type_string, &bad, err, len);
        json_object *bt = field(mb, "backend_type", json_type_string, &bad, err, len);
        if (bad)
            return -1;
        if (!bp || !bt) {
            snprintf(err, len, "An error occurred when deserializing the json body of a request: missing field `%s`.",
                     !bp ? "backend_path" : "backend_type");
            return -1;
        }
        const char *t = json_object_get_string(bt);
        lazy = !strcmp(t, "Uffd");
        if (!lazy && strcmp(t, "File") != 0) {
            snprintf(err, len, "An error occurred when deserializing the json body of a request: "
                               "unknown variant `%s`, expected `File` or `Uffd`.", t);
            return -1;
        }
    }
    for (size_t i = 0; no && i < json_object_array_length(no); i++) {
        static const char *const nok[] = {"iface_id", "host_dev_name", NULL};
        json_object *e = json_object_array_get_idx(no, i);
        if (check_fields(e, nok, err, len) != 0)
            return -1;
        if (!field(e, "iface_id", json_type_string, &bad, err, len) ||
            !field(e, "host_dev_name", json_type_string, &bad, err, len)) {
            if (!bad)
                snprintf(err, len, "network_overrides: each entry needs iface_id and host_dev_name");
            return -1;
        }
    }
    if (vo) {
        static const char *const vok[] = {"uds_path", NULL};
        if (check_fields(vo, vok, err, len) != 0)
            return -1;
        if (!field(vo, "uds_path", json_type_string, &bad, err, len)) {
            if (!bad)
                snprintf(err, len, "vsock_override needs uds_path");
            return -1;
        }
    }
    if (V.started || V.ram || V.booted_by_api) {
        snprintf(err, len, "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
        return -1;
    }
    /* from here on a failure leaves the VMM unusable: the caller exits */
    int resume = rv && json_object_get_boolean(rv);
    V.tracking = (ed && json_object_get_boolean(ed)) || (td && json_object_get_boolean(td));
    static uint8_t b[VMSTATE_SIZE];
    memset(b, 0, sizeof b);
    const char *vp = json_object_get_string(sp), *mpath = json_object_get_string(bp);
    int fd = open(vp, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, b, sizeof b, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (got < 0) {
        snprintf(err, len, "Load snapshot error: open %s: %s", vp, strerror(errno));
        return -2;
    }
    uint64_t magic, L;
    memcpy(&magic, b, 8);
    memcpy(&L, b + 8, 8);
    /* bincode (bytes 9..15 zero) or bitcode (byte 9 a digit) header */
    size_t hl = 0;
    if (L > 0 && L <= 32)
        hl = 16, L = b[8];
    else if (b[8] > 0 && b[8] <= 32 && b[9] >= '0' && b[9] <= '9')
        hl = 9, L = b[8];
    if (got != (ssize_t)sizeof b || magic != FC_MAGIC || hl == 0) {
        snprintf(err, len, "Load snapshot error: %s: invalid snapshot header (magic or length)", vp);
        return -2;
    }
    char fv[33] = "";
    memcpy(fv, b + hl, L);
    int fmaj = 0, fmin = 0, mmaj = 0, mmin = 0;
    sscanf(fv, "%d.%d", &fmaj, &fmin);
    sscanf(fmt_version(), "%d.%d", &mmaj, &mmin);
    if (fmaj != mmaj || fmin > mmin || (hl == 9) != fc_ge(1, 15)) {
        snprintf(err, len,
                 "Load snapshot error: %s: invalid data version %s (%s): Firecracker %d.%d.%d reads format %s (%s)", vp,
                 fv, hl == 9 ? "bitcode" : "bincode", V.fc_maj, V.fc_min, V.fc_pat, fmt_version(),
                 fc_ge(1, 15) ? "bitcode" : "bincode");
        return -2;
    }
    const uint8_t *h = b + hl + L;
    uint32_t ver, bk, ns;
    uint64_t msize, it;
    memcpy(&ver, h + 8, 4);
    memcpy(&bk, h + 12, 4);
    memcpy(&msize, h + 16, 8);
    memcpy(&it, h + 24, 8);
    memcpy(&ns, h + 32, 4);
    if (memcmp(h, "FCVMMST2", 8) != 0 || ver != 2 || ns == 0 || ns > MAX_SLOTS) {
        snprintf(err, len, "Load snapshot error: %s is not a vmstate of fcvmm", vp);
        return -2;
    }
    if ((int)bk != V.backend) {
        snprintf(err, len, "Load snapshot error: %s was written by the %s backend, this VMM runs %s", vp,
                 bk == BK_KVM ? "kvm" : "thread", V.backend == BK_KVM ? "kvm" : "thread");
        return -2;
    }
    struct stat st;
    int mfd = lazy ? -1 : open(mpath, O_RDONLY | O_CLOEXEC);
    if (lazy ? msize % PAGE || msize == 0
             : mfd < 0 || fstat(mfd, &st) != 0 || (uint64_t)st.st_size != msize || msize % PAGE || msize == 0) {
        snprintf(err, len, "Load snapshot error: memory file %s: %s", lazy ? vp : mpath,
                 lazy ? "bad memory size in the vmstate" : mfd < 0 ? strerror(errno) : "size does not match the vmstate");
        if (mfd >= 0)
            close(mfd);
        return -2;
    }
    V.mem_size = msize;
    V.npages = msize / PAGE;
    V.nslots = (int)ns;
    for (int i = 0; i < V.nslots; i++)
        memcpy(&V.slots[i], h + 40 + 24 * i, 24);
    const uint8_t *r = h + 40 + 24 * MAX_SLOTS;
    uint32_t nd;
    memcpy(&nd, h + DRIVES_AT, 4);
    if (nd > MAX_DRIVES) {
        snprintf(err, len, "Load snapshot error: %s: %u drives", vp, nd);
        close(mfd);
        return -2;
    }
    V.ndrives = (int)nd;
    for (int i = 0; i < V.ndrives; i++) {
        memcpy(&V.drives[i], h + DRIVES_AT + 8 + sizeof V.drives[0] * (size_t)i, sizeof V.drives[0]);
        V.drives[i].id[sizeof V.drives[i].id - 1] = V.drives[i].path[sizeof V.drives[i].path - 1] = 0;
        if (drive_check(V.drives[i].path, (int)V.drives[i].ro, err, len) != 0) {
            char m[512];
            snprintf(m, sizeof m, "%s", err);
            snprintf(err, len, "Load snapshot error: drive %s: %s", V.drives[i].id, m);
            if (mfd >= 0)
                close(mfd);
            return -2;
        }
    }
    int rc = 0;
    if (lazy) {
        /* Uffd: anonymous RAM for both backends, every page missing */
        V.lazy = 1;
        V.ram = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (V.ram == MAP_FAILED) {
            V.ram = NULL;
            snprintf(err, len, "Load snapshot error: mmap guest RAM: %s", strerror(errno));
            return -2;
        }
        madvise(V.ram, msize, MADV_NOHUGEPAGE);
        if ((rc = uffd_handoff(mpath, err, len)) != 0)
            return rc;
    } else if (V.backend == BK_KVM) {
        V.ram = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, mfd, 0);
        if (V.ram == MAP_FAILED) {
            V.ram = NULL;
            snprintf(err, len, "Load snapshot error: mmap %s: %s", mpath, strerror(errno));
            rc = -2;
        }
    } else {
        V.ram = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (V.ram == MAP_FAILED) {
            V.ram = NULL;
            snprintf(err, len, "Load snapshot error: mmap guest RAM: %s", strerror(errno));
            rc = -2;
        } else {
            madvise(V.ram, msize, MADV_NOHUGEPAGE);
            if (V.tracking && !(V.touched = calloc((size_t)(V.npages + 63) / 64, 8))) {
                snprintf(err, len, "Load snapshot error: out of memory");
                rc = -2;
            } else if (copy_extents(mfd, err, len) != 0)
                rc = -2;
        }
    }
    if (mfd >= 0)
        close(mfd);
    if (rc != 0)
        return rc;
    if (track_start(err, len) != 0)
        return -2;
    if (V.backend == BK_KVM) {
        if (kvm_create(err, len) != 0)
            return -2;
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        memcpy(&regs, r, sizeof regs);
        memcpy(&sregs, r + sizeof regs, sizeof sregs);
        if (ioctl(V.vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(V.vcpu, KVM_SET_REGS, &regs) < 0) {
            snprintf(err, len, "Load snapshot error: restore registers: %s", strerror(errno));
            return -2;
        }
    } else {
        memcpy(&V.tx, r, 4);
        memcpy(&V.tebp, r + 4, 4);
    }
    json_object_put(V.vmcfg_net);
    json_object_put(V.vmcfg_vsock);
    V.vmcfg_net = no ? json_object_get(no) : NULL;
    V.vmcfg_vsock = vo ? json_object_get(vo) : NULL;
    atomic_store(&V.iterations, it);
    start_vcpu();
    if (resume)
        set_paused(0);
    return 0;
}

static int machine_config(json_object *req, char *err, size_t len)
{
    static const char *const ok[] = {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template",
                                     "huge_pages", NULL};
    int bad = 0;
    if (check_fields(req, ok, err, len) != 0)
        return -1;
    json_object *vc = field(req, "vcpu_count", json_type_int, &bad, err, len);
    json_object *ms = field(req, "mem_size_mib", json_type_int, &bad, err, len);
    json_object *td = field(req, "track_dirty_pages", json_type_boolean, &bad, err, len);
    if (bad)
        return -1;
    if (!vc || !ms) {
        snprintf(err, len, "An error occurred when deserializing the json body of a request: missing field `%s`.",
                 !vc ? "vcpu_count" : "mem_size_mib");
        return -1;
    }
    if (V.started || V.ram) {
        snprintf(err, len, "The requested operation is not supported after starting the microVM.");
        return -1;
    }
    if (json_object_get_int(vc) != 1) {
        snprintf(err, len, "fcvmm runs exactly one vCPU (vcpu_count 1)");
        return -1;
    }
    int64_t mib = json_object_get_int64(ms);
    if (mib < 2 || mib > (1 << 20)) {
        snprintf(err, len, "mem_size_mib %lld out of range", (long long)mib);
        return -1;
    }
    V.mem_size = (uint64_t)mib << 20;
    V.track_boot = td && json_object_get_boolean(td);
    V.booted_by_api = 1;   /* configured: a load is no longer allowed */
    return 0;
}

/* ---- the API server ---- */

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static int respond(int fd, int code, const char *body)
{
    char h[256];
    const char *reason = code == 200 ? "OK" : code == 204 ? "No Content" : code == 400 ? "Bad Request" : "Not Found";
    size_t n = body ? strlen(body) : 0;
    int k = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nServer: Firecracker API\r\n%sContent-Length: %zu\r\n\r\n", code,
                     reason, n ? "Content-Type: application/json\r\n" : "", n);
    return send_all(fd, h, (size_t)k) || (n && send_all(fd, body, n)) ? -1 : 0;
}

static int fault(int fd, const char *msg)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "fault_message", json_object_new_string(msg));
    int rc = respond(fd, 400, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
    return rc;
}

static int respond_json(int fd, json_object *j)
{
    int rc = respond(fd, 200, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
    return rc;
}

static const char *state_name(void)
{
    return !V.started ? "Not started" : is_paused() ? "Paused" : "Running";
}

static json_object *machine_json(void)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "vcpu_count", json_object_new_int(1));
    json_object_object_add(m, "mem_size_mib", json_object_new_int64((int64_t)(V.mem_size >> 20)));
    json_object_object_add(m, "smt", json_object_new_boolean(0));
    json_object_object_add(m, "track_dirty_pages", json_object_new_boolean(V.started ? V.tracking : V.track_boot));
    return m;
}

static int handle(int fd, const char *method, const char *path, const char *body)
{
    char err[1024] = "";
    json_object *req = NULL;
    int rc, get = !strcmp(method, "GET"), put = !strcmp(method, "PUT"), patch = !strcmp(method, "PATCH");
    if (body && *body && !(req = json_tokener_parse(body)))
        return fault(fd, "An error occurred when deserializing the json body of a request: invalid JSON.");
    if ((put || patch) && !req) {
        json_object_put(req);
        return fault(fd, "Empty request body.");
    }
    if (get && !strcmp(path, "/")) {
        const char *ver = V.fc_ver;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_string(V.id));
        json_object_object_add(j, "state", json_object_new_string(state_name()));
        json_object_object_add(j, "vmm_version", json_object_new_string(ver));
        json_object_object_add(j, "app_name", json_object_new_string("Firecracker"));
        json_object_object_add(j, "iterations", json_object_new_int64((int64_t)atomic_load(&V.iterations)));
        rc = respond_json(fd, j);
    } else if (get && !strcmp(path, "/version")) {
        const char *ver = V.fc_ver;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "firecracker_version", json_object_new_string(ver));
        rc = respond_json(fd, j);
    } else if (get && !strcmp(path, "/machine-config")) {
        rc = respond_json(fd, machine_json());
    } else if (get && !strcmp(path, "/vm/config")) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "machine-config", machine_json());
        json_object *dr = json_object_new_array();
        for (int i = 0; i < V.ndrives; i++) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "drive_id", json_object_new_string(V.drives[i].id));
            json_object_object_add(d, "path_on_host", json_object_new_string(V.drives[i].path));
            json_object_object_add(d, "is_root_device", json_object_new_boolean((int)V.drives[i].root));
            json_object_object_add(d, "is_read_only", json_object_new_boolean((int)V.drives[i].ro));
            json_object_array_add(dr, d);
        }
        json_object_object_add(j, "drives", dr);
        if (V.nslots > (V.mem_size > MMIO_GAP_START ? 2 : 1) && fc_ge(1, 14)) {
            /* the extra slots of a small guest stand for hot-plugged memory */
            uint64_t extra = V.mem_size - V.slots[0].size;
            json_object *h = json_object_new_object();
            json_object_object_add(h, "total_size_mib", json_object_new_int64((int64_t)(extra >> 20)));
            json_object_object_add(h, "slot_size_mib", json_object_new_int64((int64_t)(V.slots[1].size >> 20)));
            json_object_object_add(h, "block_size_mib", json_object_new_int(2));
            json_object_object_add(j, "memory-hotplug", h);
        }
        json_object_object_add(j, "network-interfaces",
                               V.vmcfg_net ? json_object_get(V.vmcfg_net) : json_object_new_array());
        if (V.vmcfg_vsock)
            json_object_object_add(j, "vsock", json_object_get(V.vmcfg_vsock));
        rc = respond_json(fd, j);
    } else if ((put || patch) && !strncmp(path, "/drives/", 8) && path[8]) {
        rc = drives_req(path + 8, patch, req, err, sizeof err) == 0 ? respond(fd, 204, NULL) : fault(fd, err);
    } else if (put && !strcmp(path, "/machine-config")) {
        rc = machine_config(req, err, sizeof err) == 0 ? respond(fd, 204, NULL) : fault(fd, err);
    } else if (put && !strcmp(path, "/actions")) {
        static const char *const ok[] = {"action_type", NULL};
        json_object *t;
        if (check_fields(req, ok, err, sizeof err) != 0)
            rc = fault(fd, err);
        else if (!json_object_object_get_ex(req, "action_type", &t) || strcmp(json_object_get_string(t), "InstanceStart"))
            rc = fault(fd, "fcvmm supports only action_type InstanceStart");
        else if (V.started || V.ram)
            rc = fault(fd, "The requested operation is not supported after starting the microVM.");
        else {
            V.tracking = V.track_boot;
            V.booted_by_api = 1;
            rc = boot(err, sizeof err) == 0 ? respond(fd, 204, NULL) : fault(fd, err);
        }
    } else if (patch && !strcmp(path, "/vm")) {
        static const char *const ok[] = {"state", NULL};
        json_object *s;
        const char *st = json_object_object_get_ex(req, "state", &s) ? json_object_get_string(s) : "";
        if (check_fields(req, ok, err, sizeof err) != 0)
            rc = fault(fd, err);
        else if (!V.started)
            rc = fault(fd, "The VM is not started");
        else if (!strcmp(st, "Paused"))
            set_paused(1), rc = respond(fd, 204, NULL);
        else if (!strcmp(st, "Resumed"))
            set_paused(0), rc = respond(fd, 204, NULL);
        else
            rc = fault(fd, "An error occurred when deserializing the json body of a request: unknown variant, "
                           "expected `Paused` or `Resumed`.");
    } else if (put && !strcmp(path, "/snapshot/create")) {
        rc = snapshot_create(req, err, sizeof err) == 0 ? respond(fd, 204, NULL) : fault(fd, err);
    } else if (put && !strcmp(path, "/snapshot/load")) {
        int r = snapshot_load(req, err, sizeof err);
        rc = r == 0 ? respond(fd, 204, NULL) : fault(fd, err);
        if (r == -2) {
            fprintf(stderr, "fcvmm: %s: exiting, as Firecracker does after a failed load\n", err);
            json_object_put(req);
            shutdown(fd, SHUT_WR);
            _exit(1);
        }
    } else {
        snprintf(err, sizeof err, "Invalid request method and/or path: %s %s.", method, path);
        rc = fault(fd, err);
    }
    json_object_put(req);
    return rc;
}

/* Serves one connection until the peer closes it. */
static void serve(int fd)
{
    static char buf[BODY_MAX + 8192];
    size_t have = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have >= sizeof buf - 1)
                return;
            ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            have += (size_t)n;
        }
        *end = 0;
        size_t hlen = (size_t)(end - buf) + 4, clen = 0;
        char method[16] = "", path[256] = "";
        if (sscanf(buf, "%15s %255s", method, path) != 2)
            return;
        for (char *l = strstr(buf, "\r\n"); l; l = strstr(l + 2, "\r\n"))
            if (!strncasecmp(l + 2, "Content-Length:", 15))
                clen = strtoul(l + 17, NULL, 10);
        if (clen > BODY_MAX)
            return;
        while (have < hlen + clen) {
            ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            have += (size_t)n;
        }
        static char body[BODY_MAX + 1];
        memcpy(body, buf + hlen, clen);
        body[clen] = 0;
        if (handle(fd, method, path, body) != 0)
            return;
        memmove(buf, buf + hlen + clen, have - hlen - clen);
        have -= hlen + clen;
    }
}

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: fcvmm --api-sock PATH [--backend kvm|thread|auto] [--mem-mib N] [--slots N] "
                    "[--rate PAGES_PER_S] [--zero-pct P] [--revert-pct P] [--seed S] [--no-boot] [--dump-dir DIR] "
                    "[--track-dirty|--no-track-dirty] [--dirty-track auto|wp-async|wp-sync] [--fc-version X.Y.Z] "
                    "[--id ID] [--chroot DIR --uid U --gid G] [--fill-mib N] [--drive ID=PATH] [--fail-snapshot-create] [--fail-create-nth N] "
                    "[--die-in-snapshot] [--slow-snapshot-ms N] [--remove-on-usr2 P:N]\n");
}

int main(int argc, char **argv)
{
    static const struct option o[] = {{"api-sock", required_argument, NULL, 'a'},
        {"mem-mib", required_argument, NULL, 'm'}, {"rate", required_argument, NULL, 'r'},
        {"zero-pct", required_argument, NULL, 'z'}, {"revert-pct", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'}, {"no-boot", no_argument, NULL, 'n'},
        {"dump-dir", required_argument, NULL, 'd'}, {"fail-snapshot-create", no_argument, NULL, 'F'},
        {"die-in-snapshot", no_argument, NULL, 'D'}, {"slow-snapshot-ms", required_argument, NULL, 'S'},
        {"backend", required_argument, NULL, 'b'}, {"dirty-track", required_argument, NULL, 't'},
        {"track-dirty", no_argument, NULL, 'T'}, {"no-track-dirty", no_argument, NULL, 'N'},
        {"slots", required_argument, NULL, 'l'}, {"fc-version", required_argument, NULL, 'V'},
        {"id", required_argument, NULL, 'i'}, {"chroot", required_argument, NULL, 'c'},
        {"uid", required_argument, NULL, 'u'}, {"gid", required_argument, NULL, 'g'},
        {"fail-create-nth", required_argument, NULL, 'f'}, {"fill-mib", required_argument, NULL, 'M'},
        {"drive", required_argument, NULL, 'R'}, {"remove-on-usr2", required_argument, NULL, 'U'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'a': V.sock = optarg; break;
        case 'm': V.mem_size = strtoull(optarg, NULL, 10) << 20; break;
        case 'r': V.rate = strtod(optarg, NULL); break;
        case 'z': V.zero_pct = atoi(optarg); break;
        case 'v': V.revert_pct = atoi(optarg); break;
        case 's': V.seed = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'n': V.no_boot = 1; break;
        case 'd': V.dump_dir = optarg; break;
        case 'F': V.fail_create = 1; break;
        case 'f': V.fail_nth = atoi(optarg); break;
        case 'M': V.fill_mib = strtol(optarg, NULL, 10); break;
        case 'R':
            if (V.ndrives == MAX_DRIVES || !strchr(optarg, '=')) {
                usage();
                return 2;
            }
            V.drives[V.ndrives].root = V.ndrives == 0;
            snprintf(V.drives[V.ndrives].id, sizeof V.drives[0].id, "%.*s", (int)(strchr(optarg, '=') - optarg), optarg);
            snprintf(V.drives[V.ndrives].path, sizeof V.drives[0].path, "%s", strchr(optarg, '=') + 1);
            V.ndrives++;
            break;
        case 'U':
            if (sscanf(optarg, "%" SCNu64 ":%" SCNu64, &V.remove_pg, &V.remove_n) != 2) {
                usage();
                return 2;
            }
            break;
        case 'D': V.die_in_snapshot = 1; break;
        case 'S': V.slow_ms = atoi(optarg); break;
        case 'T': V.track_boot = 1; break;
        case 'N': V.track_boot = 0; break;
        case 'l': V.want_slots = atoi(optarg); break;
        case 'i': V.id = optarg; break;
        case 'c': V.chroot_dir = optarg; break;
        case 'u': V.uid = strtol(optarg, NULL, 10); break;
        case 'g': V.gid = strtol(optarg, NULL, 10); break;
        case 'b':
            if (!strcmp(optarg, "kvm")) V.want_backend = BK_KVM;
            else if (!strcmp(optarg, "thread")) V.want_backend = BK_THREAD;
            else if (!strcmp(optarg, "auto")) V.want_backend = 0;
            else { usage(); return 2; }
            break;
        case 't':
            if (!strcmp(optarg, "wp-async")) V.dt_mode = DT_ASYNC;
            else if (!strcmp(optarg, "wp-sync")) V.dt_mode = DT_SYNC;
            else if (!strcmp(optarg, "auto")) V.dt_mode = DT_AUTO;
            else { usage(); return 2; }
            break;
        case 'V':
            if (sscanf(optarg, "%d.%d.%d", &V.fc_maj, &V.fc_min, &V.fc_pat) != 3 || V.fc_maj < 0 || V.fc_min < 0 ||
                V.fc_pat < 0 || strlen(optarg) >= sizeof V.fc_ver) {
                fprintf(stderr, "fcvmm: --fc-version %s: want X.Y.Z\n", optarg);
                return 2;
            }
            snprintf(V.fc_ver, sizeof V.fc_ver, "%s", optarg);
            /* Outside the table: behave as the nearest known release. */
            if (V.fc_maj < 1 || (V.fc_maj == 1 && V.fc_min < 10)) {
                V.fc_maj = 1, V.fc_min = 10, V.fc_pat = 0;
            } else if (V.fc_maj > 1 || V.fc_min > 16) {
                V.fc_maj = 1, V.fc_min = 16, V.fc_pat = 0;
            }
            break;
        default: usage(); return 2;
        }
    }
    if (!V.sock || V.rate <= 0 || V.zero_pct < 0 || V.revert_pct < 0 || V.zero_pct + V.revert_pct > 100 ||
        V.want_slots < 0 || V.want_slots > MAX_SLOTS || (V.chroot_dir && (V.uid < 0 || V.gid < 0))) {
        usage();
        return 2;
    }
    /* SIGUSR1 only interrupts KVM_RUN in the vCPU thread (unblocked there). */
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGUSR1, &sa, NULL);
    struct sigaction st = {.sa_handler = on_term};
    sigaction(SIGTERM, &st, NULL);
    sigaction(SIGINT, &st, NULL);
    struct sigaction su = {.sa_handler = on_usr2, .sa_flags = SA_RESTART};
    sigaction(SIGUSR2, &su, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    char err[512];
    /* everything that needs the host's /dev and /proc, before the jail */
    /* auto takes kvm only for a guest it can run: one slot below the MMIO gap */
    int kvm_fits = V.want_slots <= 1 && V.mem_size <= MMIO_GAP_START;
    if (V.want_backend == BK_KVM || (V.want_backend == 0 && kvm_fits))
        V.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (V.want_backend == BK_KVM && V.kvm < 0) {
        fprintf(stderr, "fcvmm: --backend kvm: /dev/kvm: %s\n", strerror(errno));
        return 1;
    }
    V.backend = V.kvm >= 0 ? BK_KVM : BK_THREAD;
    if (V.backend == BK_THREAD && uffd_setup(err, sizeof err) != 0) {
        if (V.track_boot || V.dt_mode != DT_AUTO) {
            fprintf(stderr, "fcvmm: %s\n", err);
            return 1;
        }
        V.uffd = -1;
    }
    fprintf(stderr, "fcvmm: backend %s, dirty tracking %s, Firecracker %s as %d.%d.%d (snapshot format %s)\n",
            V.backend == BK_KVM ? "kvm" : "thread",
            V.backend == BK_KVM ? "kvm-dirty-log" : V.uffd < 0 ? "unavailable" : V.dt_mode == DT_ASYNC ? "wp-async"
                                                                                                    : "wp-sync",
            V.fc_ver, V.fc_maj, V.fc_min, V.fc_pat, fmt_version());
    if (V.chroot_dir) {
        if (chroot(V.chroot_dir) != 0 || chdir("/") != 0 || setgroups(0, NULL) != 0 || setgid((gid_t)V.gid) != 0 ||
            setuid((uid_t)V.uid) != 0) {
            fprintf(stderr, "fcvmm: jail %s as %ld:%ld: %s\n", V.chroot_dir, V.uid, V.gid, strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < V.ndrives; i++)
        if (drive_check(V.drives[i].path, 0, err, sizeof err) != 0) {
            fprintf(stderr, "fcvmm: --drive %s: %s\n", V.drives[i].id, err);
            return 1;
        }
    V.tracking = V.track_boot;
    if (!V.no_boot && boot(err, sizeof err) != 0) {
        fprintf(stderr, "fcvmm: %s\n", err);
        return 1;
    }
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(V.sock) >= sizeof a.sun_path) {
        fprintf(stderr, "fcvmm: socket path too long\n");
        return 1;
    }
    strcpy(a.sun_path, V.sock);
    unlink(V.sock);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 8) != 0) {
        fprintf(stderr, "fcvmm: %s: %s\n", V.sock, strerror(errno));
        return 1;
    }
    while (!stop) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        serve(fd);
        close(fd);
    }
    unlink(V.sock);
    return 0;
}
