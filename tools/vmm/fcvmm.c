/*
** fcvmm.c: a minimal KVM VMM that serves the subset of the Firecracker API
** forkstore uses, so `forkctl branch` and `restore --api-sock` can be tested
** against a real hypervisor (Firecracker itself cannot run here).
**
** usage: fcvmm --api-sock PATH [--mem-mib N] [--rate PAGES_PER_S] [--zero-pct P]
**              [--revert-pct P] [--seed S] [--no-boot] [--dump-dir DIR]
**              [--fail-snapshot-create] [--die-in-snapshot] [--slow-snapshot-ms N]
**
** Design
**  1. One VM, one vCPU in 32-bit protected mode (flat segments set through
**     KVM_SET_SREGS, no paging, interrupts off): the nested software
**     hypervisor of the test machines runs such a guest, not a Linux one.
**     Guest RAM is one memslot registered with KVM_MEM_LOG_DIRTY_PAGES.
**  2. The guest (GUEST[] below, 125 bytes at 0x1000) loops forever: a
**     xorshift32 picks a page above 1 MiB; most picks write two dwords into
**     it (the PRNG value and an iteration count), zero_pct of them zero the
**     whole page (still dirty: a Diff must carry it as data), revert_pct
**     fill it with its own address, the pattern it had at boot (old
**     contents come back). Every 16 pages it does `out 0x3f0`; the VMM
**     counts these exits ("iterations" in GET /) and sleeps to hold the
**     page rate. Parameters live at 0x500 (see struct params).
**  3. Boot fills guest RAM so that a Full snapshot looks like a used VM:
**     40% of pages pseudo-random data, 10% their own address pattern, 5%
**     copies of one page, the rest zero.
**  4. Pause is real: the API thread sets kvm_run->immediate_exit and sends
**     SIGUSR1 to the vCPU thread, whose KVM_RUN then returns EINTR; the
**     PATCH returns only once the vCPU thread reports it has stopped.
**  5. Dirty pages: KVM_GET_DIRTY_LOG (pages written since the last call)
**     is ORed into an accumulated bitmap, cleared by every snapshot. A Diff
**     is a sparse file of RAM size holding exactly the accumulated pages
**     (zero ones included); a Full is all of RAM. Neither is fsynced
**     (Firecracker does not either).
**  6. snapshot/load maps the memory file MAP_PRIVATE (as Firecracker's
**     File backend), restores the registers from the vmstate, and keeps
**     running from there; later Diffs are relative to the load.
**  7. The API: one HTTP/1.1 connection at a time, keep-alive, bodies by
**     Content-Length (at most 64 KiB), JSON through json-c. Errors are 400
**     {"fault_message": ...}, actions 204, GETs 200.
**
** vmstate file layout (little-endian, 20480 bytes):
**
**   offset  size  field
**   0       8     magic "FCVMMST1"
**   8       4     version (1)
**   12      4     reserved
**   16      8     guest memory bytes
**   24      8     iterations (port exits so far)
**   32      ...   struct kvm_regs, then struct kvm_sregs (this host's ABI)
**   ...           zeros to 20480
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <linux/kvm.h>
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define GUEST_ADDR 0x1000
#define PARAMS_ADDR 0x500
#define BASE_PAGE 256          /* the guest writes pages from 1 MiB up */
#define EXIT_EVERY 16          /* pages per `out` */
#define PORT 0x3f0
#define VMSTATE_SIZE 20480
#define BODY_MAX 65536

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

static struct {
    const char *sock;
    uint64_t mem_size;
    double rate;
    int zero_pct, revert_pct;
    uint32_t seed;
    int no_boot, fail_create, die_in_snapshot, slow_ms;
    const char *dump_dir;
    int ndumps;
    /* the VM */
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *ram;
    uint64_t npages;
    uint64_t *dirty;           /* accumulated since the last snapshot */
    uint64_t *log;             /* scratch for KVM_GET_DIRTY_LOG */
    int started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pause_req, paused;     /* under mu */
    atomic_uint_fast64_t iterations;
    double t_base;             /* rate control: time of iteration base_it */
    uint64_t base_it;
    char vmerr[256];
} V = {.mem_size = 512ull << 20, .rate = 2000, .zero_pct = 5, .revert_pct = 5, .seed = 0x9e3779b9u,
       .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .vm = -1, .vcpu = -1};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_sig(int sig) { (void)sig; }

/* ---- the vCPU thread ---- */

static void *vcpu_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (;;) {
        pthread_mutex_lock(&V.mu);
        if (V.pause_req) {
            V.paused = 1;
            pthread_cond_broadcast(&V.cv);
            while (V.pause_req)
                pthread_cond_wait(&V.cv, &V.mu);
            V.paused = 0;
            V.run->immediate_exit = 0;
            V.t_base = now_s();
            V.base_it = atomic_load(&V.iterations);
        }
        pthread_mutex_unlock(&V.mu);
        int r = ioctl(V.vcpu, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            snprintf(V.vmerr, sizeof V.vmerr, "KVM_RUN: %s", strerror(errno));
            fprintf(stderr, "fcvmm: %s\n", V.vmerr);
            return NULL;
        }
        if (V.run->exit_reason == KVM_EXIT_IO && V.run->io.port == PORT) {
            uint64_t it = atomic_fetch_add(&V.iterations, 1) + 1;
            /* hold the page rate: EXIT_EVERY pages per exit */
            double due = V.t_base + (double)(it - V.base_it) * EXIT_EVERY / V.rate, t = now_s();
            if (due > t)
                usleep((useconds_t)((due - t) * 1e6));
            continue;
        }
        snprintf(V.vmerr, sizeof V.vmerr, "guest stopped: exit reason %u", V.run->exit_reason);
        fprintf(stderr, "fcvmm: %s\n", V.vmerr);
        return NULL;
    }
}

/* Pauses (1) or resumes (0) the vCPU; returns once it has happened. */
static void set_paused(int on)
{
    pthread_mutex_lock(&V.mu);
    if (on) {
        V.pause_req = 1;
        V.run->immediate_exit = 1;
        pthread_kill(V.thread, SIGUSR1);
        while (!V.paused)
            pthread_cond_wait(&V.cv, &V.mu);
    } else {
        V.pause_req = 0;
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

/* ---- VM setup ---- */

static int vm_create(char *err, size_t len)
{
    if ((V.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0 || (V.vm = ioctl(V.kvm, KVM_CREATE_VM, 0)) < 0) {
        snprintf(err, len, "/dev/kvm: %s", strerror(errno));
        return -1;
    }
    if (ioctl(V.vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
        snprintf(err, len, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -1;
    }
    struct kvm_userspace_memory_region r = {.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
                                            .memory_size = V.mem_size, .userspace_addr = (uintptr_t)V.ram};
    if (ioctl(V.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        snprintf(err, len, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        return -1;
    }
    if ((V.vcpu = ioctl(V.vm, KVM_CREATE_VCPU, 0)) < 0) {
        snprintf(err, len, "KVM_CREATE_VCPU: %s", strerror(errno));
        return -1;
    }
    int sz = ioctl(V.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    V.run_size = (size_t)sz;
    V.run = sz > 0 ? mmap(NULL, V.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, V.vcpu, 0) : MAP_FAILED;
    if (V.run == MAP_FAILED) {
        snprintf(err, len, "mmap kvm_run: %s", strerror(errno));
        return -1;
    }
    V.npages = V.mem_size / PAGE;
    size_t words = (size_t)(V.npages + 63) / 64;
    V.dirty = calloc(words, 8);
    V.log = calloc(words, 8);
    if (!V.dirty || !V.log) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    return 0;
}

static void start_vcpu(void)
{
    pthread_mutex_lock(&V.mu);
    V.pause_req = 1;           /* starts paused; the caller resumes */
    V.paused = 0;
    pthread_mutex_unlock(&V.mu);
    pthread_create(&V.thread, NULL, vcpu_main, NULL);
    pthread_mutex_lock(&V.mu);
    while (!V.paused)
        pthread_cond_wait(&V.cv, &V.mu);
    pthread_mutex_unlock(&V.mu);
    V.started = 1;
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

static int boot(char *err, size_t len)
{
    if (V.mem_size < (BASE_PAGE + 64) * (uint64_t)PAGE || V.mem_size > (4ull << 30) - (1 << 20)) {
        snprintf(err, len, "--mem-mib must be 2 .. 4095");
        return -1;
    }
    V.ram = mmap(NULL, V.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (V.ram == MAP_FAILED) {
        snprintf(err, len, "mmap guest RAM: %s", strerror(errno));
        return -1;
    }
    /* design 3: a used-looking RAM */
    uint32_t x = V.seed | 1;
    uint64_t np = V.mem_size / PAGE;
    static uint8_t shared[PAGE];
    for (size_t i = 0; i < PAGE; i++)
        shared[i] = (uint8_t)xs(&x);
    for (uint64_t p = BASE_PAGE; p < np; p++) {
        uint32_t d = xs(&x) % 100;
        uint32_t *w = (uint32_t *)(V.ram + p * PAGE);
        if (d < 40) {
            for (size_t i = 0; i < PAGE / 4; i++)
                w[i] = i % 4 == 0 ? xs(&x) : (uint32_t)(p * 2654435761u + i);
        } else if (d < 50) {
            for (size_t i = 0; i < PAGE / 4; i++)
                w[i] = (uint32_t)(p * PAGE);
        } else if (d < 55) {
            memcpy(w, shared, PAGE);
        }
    }
    memcpy(V.ram + GUEST_ADDR, GUEST, sizeof GUEST);
    struct params pm = {0};
    pm.base = BASE_PAGE;
    pm.range = (uint32_t)(np - BASE_PAGE);
    pm.zero_below = (uint32_t)(V.zero_pct * 256 / 100);
    pm.revert_below = pm.zero_below + (uint32_t)(V.revert_pct * 256 / 100);
    pm.exit_mask = EXIT_EVERY - 1;
    memcpy(V.ram + PARAMS_ADDR, &pm, sizeof pm);
    if (vm_create(err, len) != 0)
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
    start_vcpu();
    set_paused(0);
    return 0;
}

/* ---- snapshots ---- */

/* ORs KVM's dirty log into the accumulated bitmap. */
static int collect_dirty(char *err, size_t len)
{
    struct kvm_dirty_log dl = {.slot = 0, .dirty_bitmap = V.log};
    if (ioctl(V.vm, KVM_GET_DIRTY_LOG, &dl) < 0) {
        snprintf(err, len, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < (V.npages + 63) / 64; i++)
        V.dirty[i] |= V.log[i];
    return 0;
}

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
        for (uint64_t p = 0; p < V.npages && rc == 0;) {
            if (!(V.dirty[p / 64] >> (p % 64) & 1)) {
                p++;
                continue;
            }
            uint64_t q = p;
            while (q < V.npages && (V.dirty[q / 64] >> (q % 64) & 1))
                q++;
            rc = write_all(fd, V.ram + p * PAGE, (size_t)(q - p) * PAGE, (off_t)(p * PAGE));
            if (V.die_in_snapshot)
                _exit(1);
            p = q;
        }
    } else {
        for (uint64_t off = 0; off < V.mem_size && rc == 0; off += 8u << 20) {
            size_t n = V.mem_size - off < (8u << 20) ? (size_t)(V.mem_size - off) : 8u << 20;
            rc = write_all(fd, V.ram + off, n, (off_t)off);
            if (V.die_in_snapshot && off >= V.mem_size / 2)
                _exit(1);
        }
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
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(V.vcpu, KVM_GET_REGS, &regs) < 0 || ioctl(V.vcpu, KVM_GET_SREGS, &sregs) < 0) {
        snprintf(err, len, "get registers: %s", strerror(errno));
        return -1;
    }
    uint32_t ver = 1;
    uint64_t it = atomic_load(&V.iterations);
    memcpy(b, "FCVMMST1", 8);
    memcpy(b + 8, &ver, 4);
    memcpy(b + 16, &V.mem_size, 8);
    memcpy(b + 24, &it, 8);
    memcpy(b + 32, &regs, sizeof regs);
    memcpy(b + 32 + sizeof regs, &sregs, sizeof sregs);
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
    if (fd < 0 || write_all(fd, V.ram, (size_t)V.mem_size, 0) != 0)
        fprintf(stderr, "fcvmm: dump %s: %s\n", p, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static int snapshot_create(json_object *req, char *err, size_t len)
{
    json_object *t, *sp, *mp;
    if (!json_object_object_get_ex(req, "snapshot_type", &t) || !json_object_object_get_ex(req, "snapshot_path", &sp) ||
        !json_object_object_get_ex(req, "mem_file_path", &mp)) {
        snprintf(err, len, "snapshot/create needs snapshot_type, snapshot_path and mem_file_path");
        return -1;
    }
    const char *type = json_object_get_string(t);
    int diff = strcmp(type, "Diff") == 0;
    if (!diff && strcmp(type, "Full") != 0) {
        snprintf(err, len, "unknown snapshot_type %s", type);
        return -1;
    }
    if (!V.started || !is_paused()) {
        snprintf(err, len, "Cannot create snapshot: the VM must be paused");
        return -1;
    }
    if (V.fail_create) {
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

static int snapshot_load(json_object *req, char *err, size_t len)
{
    json_object *sp, *mb, *bp = NULL, *rv;
    if (V.started || V.ram) {
        snprintf(err, len, "Loading a snapshot is only allowed before the VM is configured or started");
        return -1;
    }
    if (!json_object_object_get_ex(req, "snapshot_path", &sp)) {
        snprintf(err, len, "snapshot/load needs snapshot_path");
        return -1;
    }
    if (json_object_object_get_ex(req, "mem_backend", &mb))
        json_object_object_get_ex(mb, "backend_path", &bp);
    else
        json_object_object_get_ex(req, "mem_file_path", &bp);
    if (!bp) {
        snprintf(err, len, "snapshot/load needs mem_backend.backend_path");
        return -1;
    }
    int resume = json_object_object_get_ex(req, "resume_vm", &rv) && json_object_get_boolean(rv);
    static uint8_t b[VMSTATE_SIZE];
    const char *vp = json_object_get_string(sp), *mpath = json_object_get_string(bp);
    int fd = open(vp, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, b, sizeof b, 0) : -1;
    if (fd >= 0)
        close(fd);
    uint32_t ver;
    memcpy(&ver, b + 8, 4);
    if (got != (ssize_t)sizeof b || memcmp(b, "FCVMMST1", 8) != 0 || ver != 1) {
        snprintf(err, len, "%s is not a vmstate of this VMM", vp);
        return -1;
    }
    uint64_t msize, it;
    memcpy(&msize, b + 16, 8);
    memcpy(&it, b + 24, 8);
    struct stat st;
    int mfd = open(mpath, O_RDONLY | O_CLOEXEC);
    if (mfd < 0 || fstat(mfd, &st) != 0 || (uint64_t)st.st_size != msize || msize % PAGE || msize == 0) {
        snprintf(err, len, "memory file %s: %s", mpath, mfd < 0 ? strerror(errno) : "size does not match the vmstate");
        if (mfd >= 0)
            close(mfd);
        return -1;
    }
    V.mem_size = msize;
    V.ram = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, mfd, 0);
    close(mfd);
    if (V.ram == MAP_FAILED) {
        V.ram = NULL;
        snprintf(err, len, "mmap %s: %s", mpath, strerror(errno));
        return -1;
    }
    if (vm_create(err, len) != 0)
        return -1;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    memcpy(&regs, b + 32, sizeof regs);
    memcpy(&sregs, b + 32 + sizeof regs, sizeof sregs);
    if (ioctl(V.vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(V.vcpu, KVM_SET_REGS, &regs) < 0) {
        snprintf(err, len, "restore registers: %s", strerror(errno));
        return -1;
    }
    atomic_store(&V.iterations, it);
    start_vcpu();
    if (resume)
        set_paused(0);
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
    int k = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n\r\n", code, reason,
                     n ? "Content-Type: application/json\r\n" : "", n);
    return send_all(fd, h, (size_t)k) || (n && send_all(fd, body, n)) ? -1 : 0;
}

static int fault(int fd, const char *msg)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "fault_message", json_object_new_string(msg));
    int rc = respond(fd, 400, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    return rc;
}

static const char *state_name(void)
{
    return !V.started ? "Not started" : is_paused() ? "Paused" : "Running";
}

static int handle(int fd, const char *method, const char *path, const char *body)
{
    char err[512] = "";
    json_object *req = NULL;
    if (body && *body && !(req = json_tokener_parse(body)))
        return fault(fd, "the request body is not valid JSON");
    int rc;
    if (!strcmp(method, "GET") && !strcmp(path, "/")) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_string("fcvmm"));
        json_object_object_add(j, "state", json_object_new_string(state_name()));
        json_object_object_add(j, "vmm_version", json_object_new_string("1.x-fcvmm"));
        json_object_object_add(j, "app_name", json_object_new_string("Firecracker"));
        json_object_object_add(j, "iterations", json_object_new_int64((int64_t)atomic_load(&V.iterations)));
        rc = respond(fd, 200, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else if (!strcmp(method, "GET") && !strcmp(path, "/machine-config")) {
        char b[160];
        snprintf(b, sizeof b, "{\"vcpu_count\":1,\"mem_size_mib\":%llu,\"smt\":false,\"track_dirty_pages\":true}",
                 (unsigned long long)(V.mem_size >> 20));
        rc = respond(fd, 200, b);
    } else if (!strcmp(method, "PATCH") && !strcmp(path, "/vm")) {
        json_object *s;
        const char *st = req && json_object_object_get_ex(req, "state", &s) ? json_object_get_string(s) : "";
        if (!V.started)
            rc = fault(fd, "The VM is not started");
        else if (!strcmp(st, "Paused"))
            set_paused(1), rc = respond(fd, 204, NULL);
        else if (!strcmp(st, "Resumed"))
            set_paused(0), rc = respond(fd, 204, NULL);
        else
            rc = fault(fd, "state must be Paused or Resumed");
    } else if (!strcmp(method, "PUT") && !strcmp(path, "/snapshot/create")) {
        rc = req && snapshot_create(req, err, sizeof err) == 0 ? respond(fd, 204, NULL)
                                                              : fault(fd, err[0] ? err : "missing body");
    } else if (!strcmp(method, "PUT") && !strcmp(path, "/snapshot/load")) {
        rc = req && snapshot_load(req, err, sizeof err) == 0 ? respond(fd, 204, NULL)
                                                            : fault(fd, err[0] ? err : "missing body");
    } else {
        snprintf(err, sizeof err, "Invalid request method and/or path: %s %s", method, path);
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
        char body[BODY_MAX + 1];
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

int main(int argc, char **argv)
{
    static const struct option o[] = {{"api-sock", required_argument, NULL, 'a'},
        {"mem-mib", required_argument, NULL, 'm'}, {"rate", required_argument, NULL, 'r'},
        {"zero-pct", required_argument, NULL, 'z'}, {"revert-pct", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'}, {"no-boot", no_argument, NULL, 'n'},
        {"dump-dir", required_argument, NULL, 'd'}, {"fail-snapshot-create", no_argument, NULL, 'F'},
        {"die-in-snapshot", no_argument, NULL, 'D'}, {"slow-snapshot-ms", required_argument, NULL, 'S'}, {0}};
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
        case 'D': V.die_in_snapshot = 1; break;
        case 'S': V.slow_ms = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!V.sock || V.rate <= 0 || V.zero_pct < 0 || V.revert_pct < 0 || V.zero_pct + V.revert_pct > 100) {
        fprintf(stderr, "usage: fcvmm --api-sock PATH [--mem-mib N] [--rate PAGES_PER_S] [--zero-pct P] "
                        "[--revert-pct P] [--seed S] [--no-boot] [--dump-dir DIR] [--fail-snapshot-create] "
                        "[--die-in-snapshot] [--slow-snapshot-ms N]\n");
        return 2;
    }
    /* SIGUSR1 only interrupts KVM_RUN in the vCPU thread (unblocked there). */
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGUSR1, &sa, NULL);
    struct sigaction st = {.sa_handler = on_term};
    sigaction(SIGTERM, &st, NULL);
    sigaction(SIGINT, &st, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    char err[256];
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
