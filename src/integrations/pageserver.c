/*
** pageserver.c: lazy restore. Serves a snapshot's memory to Firecracker
** VMMs through userfaultfd (the Uffd memory backend), page by page, from
** the store (or from a remote: design 8). Built on the public page-level
** API only (fks_image_*, fks_rimage_*, the lease and working-set functions
** of forkstore.h).
**
** Protocol (Firecracker's docs/snapshotting/handling-page-faults-on-
** snapshot-resume.md and src/vmm/src/persist.rs, send_uffd_handshake):
**  1. The server listens on a Unix stream socket before the load request
**     is sent. The VMM maps guest memory anonymously, registers it with a
**     userfaultfd (MISSING mode, UFFD_FEATURE_EVENT_REMOVE), connects and
**     sends one message: a JSON array of GuestRegionUffdMapping, one per
**     memory region,
**        {"base_host_virt_addr": u64, "size": u64, "offset": u64,
**         "page_size": u64, "page_size_kib": u64}
**     (offset: where the region starts in the memory file; both page sizes
**     hold bytes, page_size_kib is the deprecated name older releases
**     send alone) with the uffd as SCM_RIGHTS ancillary data. Nothing else
**     is ever sent; the VMM keeps its end open for its whole life.
**  2. The server learns the VMM's pid with SO_PEERCRED and watches it with
**     a pidfd: when the process is gone (or its socket end hangs up) that
**     VM is done. When every accepted VM is done the server exits.
**  3. Faults: a UFFD_EVENT_PAGEFAULT at address A in region R is page
**     pgno = (R.offset + A - R.base) / 4096 of the memory artifact. A zero
**     page (no run covers it) or a page given back by UFFD_EVENT_REMOVE is
**     installed with UFFDIO_ZEROPAGE, a stored page with UFFDIO_COPY from
**     its decoded bytes. EEXIST (another install won) is not an error: the
**     page is skipped and woken. EAGAIN (a REMOVE is pending: the kernel's
**     mmap_changing) is retried once the pending events are read and the
**     removed set looked at again. ESRCH (the mm is gone) and ENOENT (the
**     range is not registered) end that VM.
**  3b. Fault-around: a stored page brings its aligned window of WINDOW
**     (16) pages, zero pages inside it copied as zeros (one read, mostly
**     one or two decoded blocks); a zero page with no stored page in its
**     window brings the zero gap around it, up to AROUND_ZERO (1024) pages
**     aligned (a sparse image's holes cost a few faults, and zero-page
**     ptes cost no memory). Always within the region; present pages are
**     skipped (EEXIST), never overwritten; removed pages are never
**     covered (a removed faulting page comes alone, as zeros).
**  3c. The faulting page is installed, and woken, first; the window after
**     it. The fault service time (p50/p99) runs from reading the message
**     to that first install.
**  4. UFFD_EVENT_REMOVE [start, end): a balloon gave the pages back (the
**     VMM did MADV_DONTNEED); from then on they are zero pages in that VM,
**     whatever the snapshot held (the kernel's non-cooperative userfaultfd
**     rule). The removed set is per VM.
**  4b. Prefetch against REMOVE: the kernel zaps the range only after the
**     REMOVE message is read, and fails copies with EAGAIN from the
**     madvise until that read. So the main thread reads messages and marks
**     the REMOVEs among them under the VM's mutex, in one hold, before it
**     serves the faults of that read; the prefetch thread checks the
**     removed set and copies under the same mutex, and on EAGAIN drops it
**     and checks again. A copy thus lands either before the madvise
**     (which then zaps it) or after the range is marked (and is not
**     made). t_lazy_remove forces the race (test hook
**     FKS_TEST_PREFETCH_PAUSE=PGNO:MS: the prefetch holds, once, between
**     the check and the copy of PGNO).
**  5. Decoded pages are cached by stored index (the page's rank in the
**     image's runs), in one MAP_NORESERVE mapping populated 2 MiB at a
**     time (a first-touch fault per 4 KiB page costs more than a decode in
**     a VM guest). When the image's stored pages fit (cache_pages, default
**     65536 = 256 MiB) every page has its own slot: never evicted, no
**     lock (a state byte: empty, being filled, full; a thread finding it
**     being filled waits). Else slot = index % cache_pages under 64
**     stripe locks. The page locations are read once at start
**     (fks_image_preload): no catalog query on the fault path. The cache
**     serves every VM of the server: a page they share is decoded once.
**  5b. Warming: when the cache holds the whole image, a thread at nice 19
**     decodes it all in pgno order (256 pages per read) once a VMM
**     connects, so faults find pages decoded (cold_cache: not). Resident
**     memory: the image's stored bytes, at most the cache's size.
**  6. Working set: the page numbers installed for faults (windows and zero
**     gaps included, the faulting page first), in first-fault order (a
**     bitmap drops repeats), are stored at exit as the snapshot's working
**     set (with a prefetch: the set used, then the new demand faults).
**     Prefetch starts at the handshake, on its own thread per VM, while
**     the main thread serves faults: the set in recorded order, PF_BATCH
**     (4096) entries at a time, each batch sorted and cut into runs of one
**     kind (stored pages of one run, at most PF_COPY = 64; or zero pages,
**     at most PF_ZERO = 1024) in one region: one UFFDIO_COPY or
**     UFFDIO_ZEROPAGE with DONTWAKE per run (design 4b), then one
**     UFFDIO_WAKE over the batch. Bounded in stored bytes and in time.
**  7. A lease (lease.c) on the image's pages is taken before the socket
**     listens, renewed every third of its time to live by a timer
**     thread, and released at exit: gc keeps the pages even if the
**     snapshot is removed meanwhile.
**  8. From a remote (o->from_remote, the store lacks the snapshot): the
**     page source is a remote image (fks_rimage, remote_lazy.c: Range
**     GETs of pack bytes, each page checked) instead of the store's; the
**     fault path, cache, fault-around, prefetch and REMOVE handling are
**     the same (src_read is the one switch), but for the fetch size: a
**     read of missing pages fetches their aligned AHEAD (256) page
**     window, and caches its other stored pages (one Range GET costs a
**     round trip; 1 MiB at most more bytes). The working set is the one
**     pushed with the snapshot. No cache warming (it would fetch the
**     whole image range by range): instead, after the first handshake, a
**     thread at nice 19 pulls the snapshot into the store
**     (fks_rimage_pull, its own store handle). Once the pull commits it
**     takes the lease on the pulled pages (none before: there is no row
**     to lease; the bucket's gc margins protect the packs meanwhile),
**     hands it to the renewer, and publishes the store's image: reads
**     switch to it (an atomic pointer; both images have one page map).
**     The server exits only once the pull has ended, so that the next VM
**     restores from the store. A failed pull is logged; the VM stays
**     served from the remote. FKS_TEST_PULL_HOLD=1 (a test hook) starts
**     the pull only when the VMs are gone: every page then comes from
**     the remote.
**
** Failure modes: if the server dies, each VM it served hangs at its next
** missing page (Firecracker waits for the page forever); its lease
** expires and the next gc after that frees what only it held. If a VMM
** dies, its pidfd reports it, its uffd is closed, and the server goes on
** with the others. A handshake that does not fit the image (regions
** outside it, a page size other than 4096) is refused and the VMM's
** guest never gets a page.
*/
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "forkstore.h"
#include "util.h"

#define PG FKS_PAGE_SIZE
#define MAX_REGIONS 64
#define MAX_VMS 64
#define MSG_MAX 65536
#define PF_BATCH 4096       /* working-set entries per prefetch batch */
#define PF_COPY 64          /* stored pages per prefetch UFFDIO_COPY (lock held) */
#define PF_ZERO 1024        /* zero pages per prefetch UFFDIO_ZEROPAGE */
#define WINDOW 16           /* pages around a stored fault: aligned window */
#define WARM 256            /* pages per read of the cache warming */
#define AROUND_ZERO 1024    /* zero pages installed around a zero fault */
#define AHEAD 256           /* pages per fetch from a remote (design 8) */
#define CACHE_MAX 65536     /* default decoded-page cache: 256 MiB, virtual */
#define LOCKS 64            /* cache stripes (when the cache evicts) */
#define HIST_FINE 2000      /* 50 ns buckets up to 100 us */
#define HIST_COARSE 1000    /* 10 us buckets up to 10 ms */

typedef struct region {
    uint64_t base, size, off;
} region;

typedef struct vm {
    int uffd, sock, pidfd;
    long pid;
    int nreg;
    region reg[MAX_REGIONS];
    volatile int done;
    pthread_t pf;
    int pf_started;
    /* design 4b: removed (bit per pgno) is written by the main thread
    ** only, under mu, in the same hold as the read() that returned the
    ** REMOVE; prefetch checks it and copies under mu. */
    pthread_mutex_t mu;
    uint8_t *removed;
} vm;

typedef struct server {
    fks_store *s;
    const char *tag;
    const fks_serve_opts *o;
    fks_image *im;               /* the store's image; NULL while served from
                                    rim (set once, by the pull: design 8) */
    fks_rimage *rim;             /* the remote's image, or NULL */
    fks_image_info info;
    const fks_run *runs;
    size_t nruns;
    uint64_t *sbase;             /* stored index of run i's first page */
    uint64_t nstored;
    /* design 5: decoded pages by stored index. direct (every stored page
    ** has its slot): state 0 empty, 1 being filled, 2 full, never
    ** evicted, no lock. Else slot = index % ncache under stripe locks,
    ** tag[] = index + 1. */
    uint8_t *cache;              /* ncache * PG, MAP_NORESERVE */
    size_t ncache;
    int direct;
    uint8_t *state;
    uint64_t *ctag;
    uint8_t *seg;                /* per 2 MiB of cache: populated yet */
    pthread_mutex_t locks[LOCKS];
    uint8_t *seen;               /* bit per pgno: in rec already (main thread) */
    uint64_t *rec;               /* installed for faults, in order (main thread) */
    size_t nrec, caprec;
    uint64_t *ws;                /* working set to prefetch */
    size_t nws;
    fks_serve_stats st;          /* counters: atomic adds */
    uint64_t hist[HIST_FINE + HIST_COARSE + 1];   /* main thread */
    pthread_mutex_t mu;          /* prefetch_s */
    volatile int stopping;
    unsigned test_pause_ms;      /* test hook, design 4b: the prefetch */
    uint64_t test_pause_pgno;    /* pauses once before copying this page */
    struct renewer *rn;          /* design 8: the pull hands it the lease */
    pthread_t pt;                /* the pull (design 8) */
    int pulling;
    int test_pull_hold;          /* test hook: pull once the VMs are gone */
} server;

#define ADD(f, n) __atomic_fetch_add(&(f), (uint64_t)(n), __ATOMIC_RELAXED)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bit(const uint8_t *b, uint64_t i) { return b[i >> 3] >> (i & 7) & 1; }
static void setbit(uint8_t *b, uint64_t i) { b[i >> 3] |= (uint8_t)(1u << (i & 7)); }

static void hist_add(server *sv, double sec)
{
    double ns = sec * 1e9;
    size_t b = ns < HIST_FINE * 50.0 ? (size_t)(ns / 50)
             : ns < HIST_FINE * 50.0 + HIST_COARSE * 10000.0 ? HIST_FINE + (size_t)((ns - HIST_FINE * 50.0) / 10000)
                                                              : HIST_FINE + HIST_COARSE;
    sv->hist[b]++;
}

/* Upper edge of the bucket holding quantile q, in microseconds. */
static double hist_q(const server *sv, double q)
{
    uint64_t total = 0, acc = 0;
    for (size_t i = 0; i <= HIST_FINE + HIST_COARSE; i++)
        total += sv->hist[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (size_t i = 0; i <= HIST_FINE + HIST_COARSE; i++) {
        acc += sv->hist[i];
        if (acc > want)
            return i < HIST_FINE ? (double)(i + 1) * 0.05
                 : i < HIST_FINE + HIST_COARSE ? 100.0 + (double)(i - HIST_FINE + 1) * 10.0 : 1e4;
    }
    return 1e4;
}

/* ---- pages ------------------------------------------------------------ */

/* Index of the run covering pgno, or of the first run after it (nruns if
** none): *stored says whether pgno is in it. */
static size_t run_at(const server *sv, uint64_t pgno, int *stored)
{
    size_t a = 0, b = sv->nruns;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (sv->runs[m].pgno + sv->runs[m].npages <= pgno)
            a = m + 1;
        else
            b = m;
    }
    *stored = a < sv->nruns && sv->runs[a].pgno <= pgno;
    return a;
}

/* Cached copy of stored index x into out: 1 if there, 0 if not. */
static int cache_get(server *sv, uint64_t x, uint8_t *out)
{
    if (sv->direct) {
        uint8_t s = __atomic_load_n(&sv->state[x], __ATOMIC_ACQUIRE);
        for (int spin = 0; s == 1 && spin < 2000; spin++) {   /* another thread decodes it: wait */
            sched_yield();
            s = __atomic_load_n(&sv->state[x], __ATOMIC_ACQUIRE);
        }
        if (s != 2)
            return 0;
        memcpy(out, sv->cache + x * PG, PG);
        return 1;
    }
    size_t slot = (size_t)(x % sv->ncache);
    pthread_mutex_t *l = &sv->locks[slot % LOCKS];
    pthread_mutex_lock(l);
    int hit = sv->ctag[slot] == x + 1;
    if (hit)
        memcpy(out, sv->cache + slot * PG, PG);
    pthread_mutex_unlock(l);
    return hit;
}

/* Claims stored index x for this thread's decode (direct cache): 1 if
** claimed (cache_put must follow), 0 if another thread has it. */
static int cache_claim(server *sv, uint64_t x)
{
    uint8_t want = 0;
    return !sv->direct || __atomic_compare_exchange_n(&sv->state[x], &want, 1, 0, __ATOMIC_ACQ_REL,
                                                      __ATOMIC_ACQUIRE);
}

#define SEG (2u << 20)

/* Populates the 2 MiB of cache holding slot in one call the first time:
** a first-touch fault per 4 KiB slot costs ~15 us in a VM guest (paravirt
** page faults), more than the decode it caches. */
static void cache_populate(server *sv, size_t slot)
{
    size_t g = slot * PG / SEG;
    uint8_t want = 0;
    if (!__atomic_compare_exchange_n(&sv->seg[g], &want, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    size_t len = sv->ncache * PG - g * SEG;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    (void)madvise(sv->cache + g * SEG, len < SEG ? len : SEG, MADV_POPULATE_WRITE);   /* else: touched later */
}

static void cache_put(server *sv, uint64_t x, const uint8_t *data, int ok)
{
    if (ok)
        cache_populate(sv, sv->direct ? (size_t)x : (size_t)(x % sv->ncache));
    if (sv->direct) {
        if (ok)
            memcpy(sv->cache + x * PG, data, PG);
        __atomic_store_n(&sv->state[x], ok ? 2 : 0, __ATOMIC_RELEASE);
        return;
    }
    if (!ok)
        return;
    size_t slot = (size_t)(x % sv->ncache);
    pthread_mutex_t *l = &sv->locks[slot % LOCKS];
    pthread_mutex_lock(l);
    memcpy(sv->cache + slot * PG, data, PG);
    sv->ctag[slot] = x + 1;
    pthread_mutex_unlock(l);
}

/* Design 8: pages lo .. lo+n-1 from the remote, read with the aligned
** AHEAD-page window(s) around them (a few Range GETs instead of one per
** fault window); the window's other stored pages that are not cached yet
** are cached on the way. */
static int remote_read(server *sv, uint64_t lo, uint64_t n, uint8_t *out)
{
    uint64_t wl = lo / AHEAD * AHEAD, wh = (lo + n + AHEAD - 1) / AHEAD * AHEAD;
    if (wh > sv->info.npages)
        wh = sv->info.npages;
    uint8_t *b = malloc((size_t)(wh - wl) * PG);
    if (!b)
        return fks_rimage_read(sv->rim, lo, n, out);
    int rc = fks_rimage_read(sv->rim, wl, wh - wl, b), in;
    if (rc == 0) {
        memcpy(out, b + (lo - wl) * PG, (size_t)n * PG);
        size_t ri = run_at(sv, wl, &in);
        for (uint64_t p = wl; p < wh; p++) {
            while (ri < sv->nruns && sv->runs[ri].pgno + sv->runs[ri].npages <= p)
                ri++;
            if ((p >= lo && p < lo + n) || ri == sv->nruns || sv->runs[ri].pgno > p)
                continue;              /* the caller's, or a zero page */
            uint64_t x = sv->sbase[ri] + (p - sv->runs[ri].pgno);
            if (cache_claim(sv, x))
                cache_put(sv, x, b + (p - wl) * PG, 1);
        }
    }
    free(b);
    return rc;
}

/* The page source (design 8): the store's image once there is one, else
** the remote's. Same page map, same contract (fks_image_read). */
static int src_read(server *sv, uint64_t pgno, uint64_t n, uint8_t *buf)
{
    fks_image *im = __atomic_load_n(&sv->im, __ATOMIC_ACQUIRE);
    return im ? fks_image_read(im, pgno, n, buf) : remote_read(sv, pgno, n, buf);
}

/* Pages pgno .. pgno+n-1 of the image (zero pages as zeros) into buf:
** stored pages from the cache, the others read (decoded) in runs of
** consecutive misses and cached. No allocation. */
static int pages_get(server *sv, uint64_t pgno, uint64_t n, uint8_t *buf)
{
    int in;
    size_t ri = run_at(sv, pgno, &in);
    uint64_t miss_lo = 0, nmiss = 0, hits = 0;
    int rc = 0;
    uint64_t claimed[WARM];           /* the largest n: WARM >= PF_COPY >= WINDOW */
    assert(n <= sizeof claimed / sizeof claimed[0]);
    for (uint64_t k = 0; k <= n && rc == 0; k++) {
        uint64_t p = pgno + k;
        int missing = 0;
        uint64_t x = 0;
        if (k < n) {
            while (ri < sv->nruns && sv->runs[ri].pgno + sv->runs[ri].npages <= p)
                ri++;
            if (ri < sv->nruns && sv->runs[ri].pgno <= p) {
                x = sv->sbase[ri] + (p - sv->runs[ri].pgno);
                if (cache_get(sv, x, buf + k * PG))
                    hits++;
                else
                    missing = 1;
            } else if (nmiss) {
                missing = 1;           /* a zero page inside a run of misses: read with it, no decode */
                x = UINT64_MAX;
            } else {
                memset(buf + k * PG, 0, PG);
            }
        }
        if (missing) {
            if (!nmiss)
                miss_lo = k;
            claimed[k] = x != UINT64_MAX && cache_claim(sv, x) ? x + 1 : 0;
            nmiss = k - miss_lo + 1;
            continue;
        }
        if (nmiss && (k == n || !missing)) {   /* a run of misses ends: read it */
            rc = src_read(sv, pgno + miss_lo, nmiss, buf + miss_lo * PG);
            for (uint64_t q = miss_lo; q < miss_lo + nmiss; q++)
                if (claimed[q])
                    cache_put(sv, claimed[q] - 1, buf + q * PG, rc == 0);
            nmiss = 0;
        }
    }
    if (hits)
        ADD(sv->st.cache_hits, hits);
    return rc;
}

/* Region of v holding host address addr, -1 if none. */
static int region_of(const vm *v, uint64_t addr)
{
    for (int i = 0; i < v->nreg; i++)
        if (addr >= v->reg[i].base && addr - v->reg[i].base < v->reg[i].size)
            return i;
    return -1;
}

/* Host address of pgno in v, 0 if no region holds it; *ri its region. */
static uint64_t addr_of(const vm *v, uint64_t pgno, int *ri)
{
    uint64_t off = pgno * PG;
    for (int i = 0; i < v->nreg; i++)
        if (off >= v->reg[i].off && off - v->reg[i].off < v->reg[i].size) {
            *ri = i;
            return v->reg[i].base + (off - v->reg[i].off);
        }
    return 0;
}

static void wake(const vm *v, uint64_t addr, uint64_t len)
{
    struct uffdio_range r = {.start = addr, .len = len};
    ioctl(v->uffd, UFFDIO_WAKE, &r);
}

enum { INST_GONE = -1, INST_AGAIN = -2 };

/* One UFFDIO_COPY (buf) or UFFDIO_ZEROPAGE (buf NULL) of len bytes at
** addr, going on after present pages (EEXIST: skipped, counted). Returns
** pages installed (>= 0); INST_AGAIN when the kernel answered EAGAIN (a
** REMOVE is pending: its event must be read first) with *done the bytes
** dealt with so far; INST_GONE when the mm is gone (ESRCH) or the range is
** not registered (ENOENT, EINVAL): that VM is done. Design 3. */
static int64_t install1(server *sv, const vm *v, uint64_t addr, const uint8_t *buf, uint64_t len, int dontwake,
                        uint64_t *done)
{
    int64_t pages = 0;
    while (*done < len) {
        int r;
        int64_t got;
        uint64_t d = *done;
        if (buf) {
            struct uffdio_copy c = {.dst = addr + d, .src = (uintptr_t)(buf + d), .len = len - d,
                                    .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0};
            r = ioctl(v->uffd, UFFDIO_COPY, &c);
            got = c.copy;
        } else {
            struct uffdio_zeropage z = {.range = {.start = addr + d, .len = len - d},
                                        .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0};
            r = ioctl(v->uffd, UFFDIO_ZEROPAGE, &z);
            got = z.zeropage;
        }
        if (r == 0) {
            pages += (int64_t)((len - d) / PG);
            *done = len;
            break;
        }
        int e = errno;
        if (got > 0) {                 /* partial: go on after it */
            *done += (uint64_t)got;
            pages += got / PG;
            continue;
        }
        if (e == EEXIST && !buf) {
            /* UFFDIO_ZEROPAGE wants an empty pte; a uffd-wp marker (a VMM
            ** that write-protects unpopulated memory) is not, but
            ** UFFDIO_COPY takes it: copy zeros instead */
            static const uint8_t zeros[PG];
            struct uffdio_copy c = {.dst = addr + d, .src = (uintptr_t)zeros, .len = PG,
                                    .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0};
            if (ioctl(v->uffd, UFFDIO_COPY, &c) == 0) {
                *done += PG, pages++;
                continue;
            }
            e = errno;
        }
        if (e == EEXIST) {             /* present already: skip that page */
            ADD(sv->st.eexist, 1);
            if (!dontwake)
                wake(v, addr + d, PG);
            *done += PG;
            continue;
        }
        if (e == EINTR)
            continue;
        if (e == EAGAIN)
            return INST_AGAIN;
        return INST_GONE;              /* ESRCH: the mm is gone; ENOENT: not registered */
    }
    return pages;
}

static void record(server *sv, uint64_t pgno)
{
    if (!sv->o->record || bit(sv->seen, pgno))
        return;
    if (sv->nrec == sv->caprec) {
        size_t cap = sv->caprec ? sv->caprec * 2 : 4096;
        uint64_t *n = realloc(sv->rec, cap * sizeof *n);
        if (!n)
            return;                    /* a shorter working set, not an error */
        sv->rec = n, sv->caprec = cap;
    }
    setbit(sv->seen, pgno);
    sv->rec[sv->nrec++] = pgno;
}

static void on_remove(server *sv, vm *v, uint64_t start, uint64_t end)
{
    for (uint64_t a = start & ~(uint64_t)(PG - 1); a < end; a += PG) {
        int i = region_of(v, a);
        if (i < 0)
            continue;
        uint64_t pgno = (v->reg[i].off + a - v->reg[i].base) / PG;
        if (!bit(v->removed, pgno))
            ADD(sv->st.pages_removed, 1);
        setbit(v->removed, pgno);
    }
}

/* Reads up to max messages of v under v->mu, applying the REMOVEs among
** them before the lock is dropped (design 4b). Returns messages read, 0
** when none is pending, -1 when the uffd is gone. */
static ssize_t read_msgs(server *sv, vm *v, struct uffd_msg *m, size_t max)
{
    pthread_mutex_lock(&v->mu);
    ssize_t n;
    while ((n = read(v->uffd, m, max * sizeof *m)) < 0 && errno == EINTR)
        ;
    int e = errno;
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof *m; i++)
        if (m[i].event == UFFD_EVENT_REMOVE)
            on_remove(sv, v, m[i].arg.remove.start, m[i].arg.remove.end);
    pthread_mutex_unlock(&v->mu);
    if (n < 0)
        return e == EAGAIN ? 0 : -1;
    return n == 0 ? -1 : n / (ssize_t)sizeof *m;
}

/* The main thread's install: on EAGAIN the pending events are read (a
** REMOVE racing with it is applied; the faults read meanwhile are woken:
** the kernel delivers them again if the page is still missing) and
** INST_AGAIN is returned for the caller to look at the removed set again. */
static int64_t install_main(server *sv, vm *v, uint64_t addr, const uint8_t *buf, uint64_t len, uint64_t *done)
{
    int64_t r = install1(sv, v, addr, buf, len, 0, done);
    if (r == INST_AGAIN) {
        struct uffd_msg m[16];
        ssize_t n = read_msgs(sv, v, m, 16);
        for (ssize_t i = 0; i < n; i++)
            if (m[i].event == UFFD_EVENT_PAGEFAULT)
                wake(v, m[i].arg.pagefault.address & ~(uint64_t)(PG - 1), PG);
        if (n < 0)
            return INST_GONE;
    }
    return r;
}

/* One page fault at addr of v (main thread). Design 3b: a stored page
** brings its aligned window of WINDOW pages (one read, mostly one or two
** decoded blocks; short zero gaps inside it copied as zeros, long ones
** zero-paged); a zero page with no stored page in its window brings the
** zero gap around it, up to AROUND_ZERO pages aligned. Removed pages are
** never covered: a removed faulting page comes alone, as zeros. */
static int fault(server *sv, vm *v, uint64_t addr)
{
    double t0 = now_s();
    addr &= ~(uint64_t)(PG - 1);
    int ri = region_of(v, addr);
    if (ri < 0)
        return 0;                      /* not ours (cannot happen: we own the regions) */
    const region *r = &v->reg[ri];
    uint64_t pgno = (r->off + addr - r->base) / PG;
    uint64_t rlo = r->off / PG, rhi = (r->off + r->size) / PG;
    uint8_t buf[WINDOW * PG];
    int rc = 0;
again:;
    int gone = bit(v->removed, pgno), in;
    size_t a = run_at(sv, pgno, &in);
    uint64_t lo = pgno, hi = pgno + 1;
    int zero = gone;
    if (!gone) {
        uint64_t wl = pgno / WINDOW * WINDOW, wh = wl + WINDOW;
        /* any stored page in the window? the run at or after pgno, or the one before */
        int stored = in || (a < sv->nruns && sv->runs[a].pgno < wh) ||
                     (a > 0 && sv->runs[a - 1].pgno + sv->runs[a - 1].npages > wl);
        if (stored) {
            lo = wl, hi = wh;
        } else {
            uint64_t glo = a > 0 ? sv->runs[a - 1].pgno + sv->runs[a - 1].npages : 0;
            uint64_t ghi = a < sv->nruns ? sv->runs[a].pgno : sv->info.npages;
            lo = pgno / AROUND_ZERO * AROUND_ZERO, hi = lo + AROUND_ZERO;
            if (lo < glo) lo = glo;
            if (hi > ghi) hi = ghi;
            zero = 1;
        }
        if (lo < rlo) lo = rlo;
        if (hi > rhi) hi = rhi;
        if (hi > sv->info.npages) hi = sv->info.npages;
        uint64_t k = pgno;             /* shrink to the removed pages around pgno */
        while (k > lo && !bit(v->removed, k - 1))
            k--;
        lo = k;
        for (k = pgno + 1; k < hi && !bit(v->removed, k); k++)
            ;
        hi = k;
    }
    /* The faulting page alone first, woken at once (the fault service
    ** time ends there: design 3c), then the rest of the window. */
    uint64_t done = 0;
    const uint8_t *one = NULL;
    if (!zero) {
        if ((rc = pages_get(sv, pgno, 1, buf + (pgno - lo) * PG)) != 0)
            return rc;
        one = buf + (pgno - lo) * PG;
    }
    int64_t got = install_main(sv, v, addr, one, PG, &done);
    if (got >= 0)
        hist_add(sv, now_s() - t0);
    for (int side = 0; side < 2 && got >= 0; side++) {
        uint64_t l = side ? pgno + 1 : lo, h = side ? hi : pgno, d = 0;
        if (l >= h)
            continue;
        if (!zero && (rc = pages_get(sv, l, h - l, buf + (l - lo) * PG)) != 0)
            return rc;
        int64_t g = install_main(sv, v, addr - pgno * PG + l * PG, zero ? NULL : buf + (l - lo) * PG, (h - l) * PG, &d);
        got = g < 0 ? g : got + g;
    }
    if (got >= 0) {
        if (zero)
            ADD(sv->st.pages_zero, got);
        else
            ADD(sv->st.pages_demand, got);
    }
    if (got == INST_AGAIN)
        goto again;                    /* the removed set may have changed */
    if (got == INST_GONE) {
        v->done = 1;
        return 0;
    }
    record(sv, pgno);                  /* the faulting page first */
    for (uint64_t k = lo; k < hi; k++)
        record(sv, k);
    return 0;
}

/* Reads v's pending messages; faults are served at once (main thread). */
static int serve_msgs(server *sv, vm *v)
{
    struct uffd_msg m[32];
    for (;;) {
        ssize_t n = read_msgs(sv, v, m, 32);
        if (n < 0) {
            v->done = 1;
            return 0;
        }
        if (n == 0)
            return 0;
        for (ssize_t i = 0; i < n && !v->done; i++) {
            if (m[i].event == UFFD_EVENT_PAGEFAULT) {
                ADD(sv->st.faults, 1);
                int rc = fault(sv, v, m[i].arg.pagefault.address);
                if (rc)
                    return rc;
            }
        }
    }
}

/* ---- prefetch (design 6) -------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct pf_arg {
    server *sv;
    vm *v;
} pf_arg;

/* Installs pages [p, p+n) (one region, contiguous, at most PF_COPY stored
** or PF_ZERO zero pages, all of one kind) ahead of the guest: under v->mu,
** only the pages not removed, retried after EAGAIN once the main thread
** has read the pending events (design 4b). Returns pages installed or
** INST_GONE. */
static int64_t pf_install(server *sv, vm *v, uint64_t p, uint64_t n, uint64_t addr, const uint8_t *buf)
{
    int64_t total = 0;
    uint64_t k = 0;
    while (k < n) {
        pthread_mutex_lock(&v->mu);
        int64_t r = 0;
        while (k < n) {
            while (k < n && bit(v->removed, p + k))
                k++;
            uint64_t e = k;
            while (e < n && !bit(v->removed, p + e))
                e++;
            if (e == k)
                break;
            if (sv->test_pause_ms && sv->test_pause_pgno >= p + k && sv->test_pause_pgno < p + e) {
                /* test hook: a REMOVE of these pages sent now lands between the check and the copy */
                usleep(sv->test_pause_ms * 1000u);
                sv->test_pause_ms = 0;
            }
            uint64_t done = 0;
            r = install1(sv, v, addr + k * PG, buf ? buf + k * PG : NULL, (e - k) * PG, 1, &done);
            k += done / PG;
            if (r < 0)
                break;
            total += r;
        }
        pthread_mutex_unlock(&v->mu);
        if (r == INST_GONE)
            return INST_GONE;
        if (r == INST_AGAIN)
            usleep(50);                /* the main thread reads the REMOVE */
        if (v->done || sv->stopping)
            break;
    }
    return total;
}

static void *prefetch_main(void *arg)
{
    pf_arg *a = arg;
    server *sv = a->sv;
    vm *v = a->v;
    free(a);
    double t0 = now_s();
    uint64_t limit = sv->o->prefetch_bytes ? sv->o->prefetch_bytes / PG : UINT64_MAX, taken = 0;
    int stop = 0;
    uint64_t *batch = malloc(PF_BATCH * sizeof *batch);
    uint8_t *buf = malloc((size_t)PF_COPY * PG);
    if (!buf || !batch)
        goto out;
    for (size_t i = 0; i < sv->nws && taken < limit && !v->done && !sv->stopping;) {
        if (sv->o->prefetch_max_s > 0 && now_s() - t0 > sv->o->prefetch_max_s)
            break;
        /* the next PF_BATCH entries in recorded order, sorted: runs */
        size_t nb = 0;
        for (; i < sv->nws && nb < PF_BATCH && taken < limit; i++) {
            uint64_t p = sv->ws[i];
            int in;
            if (p >= sv->info.npages)
                continue;
            run_at(sv, p, &in);
            batch[nb++] = p;
            taken += (uint64_t)in;     /* the bound is in stored bytes; zeros cost none */
        }
        qsort(batch, nb, sizeof batch[0], cmp_u64);
        uint64_t lo_addr = UINT64_MAX, hi_addr = 0;
        for (size_t k = 0; k < nb && !v->done;) {
            int rk = 0, re = 0, in0 = 0, ine = 0;
            uint64_t addr = addr_of(v, batch[k], &rk);
            size_t ra = run_at(sv, batch[k], &in0);
            size_t lim = in0 ? PF_COPY : PF_ZERO, e = k + 1;
            /* same kind (stored: the same run), contiguous, one region */
            while (e < nb && e - k < lim && batch[e] == batch[e - 1] + 1 && addr_of(v, batch[e], &re) &&
                   re == rk && run_at(sv, batch[e], &ine) == ra && ine == in0)
                e++;
            while (e < nb && batch[e] == batch[e - 1])   /* duplicates */
                e++;
            uint64_t n = batch[e - 1] - batch[k] + 1;
            if (addr && (!in0 || pages_get(sv, batch[k], n, buf) == 0)) {
                int64_t got = pf_install(sv, v, batch[k], n, addr, in0 ? buf : NULL);
                if (got == INST_GONE) {  /* the prefetch ends; the VM's end is the main thread's to see */
                    stop = 1;
                    break;
                }
                if (in0)
                    ADD(sv->st.pages_prefetch, got);
                else
                    ADD(sv->st.pages_zero, got);
                if (addr < lo_addr) lo_addr = addr;
                if (addr + n * PG > hi_addr) hi_addr = addr + n * PG;
            }
            k = e;
        }
        /* one wake for the batch: a range with nothing waiting costs nothing */
        if (hi_addr > lo_addr)
            wake(v, lo_addr, hi_addr - lo_addr);
        if (stop)
            break;
    }
out:
    free(buf);
    free(batch);
    double dt = now_s() - t0;
    pthread_mutex_lock(&sv->mu);       /* prefetch_s: the longest of the VMs' */
    if (dt > sv->st.prefetch_s)
        sv->st.prefetch_s = dt;
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

/* ---- cache warming (design 5b) ----------------------------------- */

/* Decodes every stored page into the (direct) cache, run by run, at the
** lowest priority: faults and prefetch then find pages decoded. Pages
** cached already are skipped (pages_get), so each is decoded once. */
static void *warm_main(void *arg)
{
    server *sv = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    uint8_t *buf = malloc((size_t)WARM * PG);
    uint64_t p = sv->nruns ? sv->runs[0].pgno : 0;
    for (size_t i = 0; buf && i < sv->nruns && !sv->stopping;) {
        if (p < sv->runs[i].pgno)
            p = sv->runs[i].pgno;      /* skip the gap */
        uint64_t n = WARM;             /* WARM pages from p, zero gaps inside read along */
        if (n > sv->info.npages - p)
            n = sv->info.npages - p;
        if (pages_get(sv, p, n, buf) != 0)
            break;                     /* a fault of that page will say why */
        p += n;
        while (i < sv->nruns && sv->runs[i].pgno + sv->runs[i].npages <= p)
            i++;
    }
    free(buf);
    return NULL;
}

/* ---- the handshake (design 1, 2) ------------------------------------ */

static int json_u64(uint64_t *out, json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    int64_t x = json_object_get_int64(v);
    if (x < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

/* The handshake's first message on connection c into msg (MSG_MAX
** bytes): its length in *n and the first file descriptor it carries in
** *fd (the userfaultfd; any others are closed). */
static int hs_receive(int c, int timeout_ms, char *msg, ssize_t *n, int *fd)
{
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return fks__err(FKS_ETIMEDOUT, "the VMM connected to the page server but sent no handshake in %d ms",
                        timeout_ms);
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 4)];
    } cm;
    struct iovec iov = {.iov_base = msg, .iov_len = MSG_MAX};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
    while ((*n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (*n <= 0)
        return fks__errno(FKS_EIO, *n < 0 ? errno : EPIPE, "page server: receive the VMM's handshake");
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fds[4] = {-1, -1, -1, -1};
            size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(h), (k > 4 ? 4 : k) * sizeof(int));
            for (size_t i = 0; i < k && i < 4; i++) {
                if (*fd < 0)
                    *fd = fds[i];
                else
                    close(fds[i]);
            }
        }
    if (*fd < 0)
        return fks__err(FKS_EINVAL, "the VMM's handshake carried no userfaultfd");
    return 0;
}

/* The handshake's JSON, n bytes of it in msg so far: it may in principle
** come in more than one read, so reads until it parses. NULL if it never
** does. */
static json_object *hs_parse(int c, int timeout_ms, char *msg, ssize_t n)
{
    struct pollfd p = {.fd = c, .events = POLLIN};
    msg[n] = 0;
    json_tokener *tk = json_tokener_new();
    json_object *j = json_tokener_parse_ex(tk, msg, (int)n);
    size_t have = (size_t)n;
    while (!j && json_tokener_get_error(tk) == json_tokener_continue && have < MSG_MAX &&
           poll(&p, 1, timeout_ms) > 0 && (n = recv(c, msg, MSG_MAX - have, 0)) > 0) {
        have += (size_t)n;
        j = json_tokener_parse_ex(tk, msg, (int)n);
    }
    json_tokener_free(tk);
    return j;
}

/* The memory regions of the handshake j into v: each 4 KiB-paged,
** aligned, and inside the snapshot's memory. */
static int hs_regions(server *sv, vm *v, json_object *j)
{
    if (!j || !json_object_is_type(j, json_type_array) || json_object_array_length(j) == 0 ||
        json_object_array_length(j) > MAX_REGIONS)
        return fks__err(FKS_EINVAL, "the VMM's handshake is not a JSON array of 1 to %d memory regions", MAX_REGIONS);
    int rc = 0;
    v->nreg = (int)json_object_array_length(j);
    for (int i = 0; i < v->nreg && rc == 0; i++) {
        json_object *e = json_object_array_get_idx(j, (size_t)i);
        region *r = &v->reg[i];
        uint64_t ps = 0;
        if (!json_object_is_type(e, json_type_object) || json_u64(&r->base, e, "base_host_virt_addr") ||
            json_u64(&r->size, e, "size") || json_u64(&r->off, e, "offset") ||
            (json_u64(&ps, e, "page_size") && json_u64(&ps, e, "page_size_kib"))) {
            rc = fks__err(FKS_EINVAL, "region %d of the VMM's handshake lacks base_host_virt_addr, size, offset "
                          "or page_size", i);
        } else if (ps != PG) {
            rc = fks__err(FKS_EINVAL, "region %d of the VMM's handshake has page size %llu: the page server "
                          "serves 4 KiB pages only (no huge pages)", i, (unsigned long long)ps);
        } else if (r->base % PG || r->size % PG || r->off % PG || r->size == 0 ||
                   r->off > sv->info.npages * PG || r->size > sv->info.npages * PG - r->off) {
            rc = fks__err(FKS_EINVAL, "region %d of the VMM's handshake (offset %llu, %llu bytes) does not fit "
                          "snapshot %s's memory of %llu bytes", i, (unsigned long long)r->off,
                          (unsigned long long)r->size, sv->tag, (unsigned long long)sv->info.size);
        }
    }
    return rc;
}

/* The VM on connection c, its userfaultfd *fd (taken: -1 after): its
** process (SO_PEERCRED, a pidfd), its removed-pages bitmap. */
static int hs_attach(server *sv, vm *v, int c, int *fd)
{
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0)
        return fks__errno(FKS_EIO, errno, "page server: SO_PEERCRED");
    if (!v->removed && !(v->removed = calloc((size_t)(sv->info.npages / 8 + 1), 1)))
        return fks__err(FKS_ENOMEM, "out of memory");
    v->pid = (long)cr.pid;
    v->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)cr.pid, 0);   /* -1: the socket's hang-up tells */
    int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0)
        fcntl(*fd, F_SETFL, fl | O_NONBLOCK);
    v->uffd = *fd, *fd = -1;
    v->sock = c;
    return 0;
}

/* Receives the regions and the uffd on connection c (timeout_ms). */
static int handshake(server *sv, vm *v, int c, int timeout_ms)
{
    char *msg = malloc(MSG_MAX + 1);
    if (!msg)
        return fks__err(FKS_ENOMEM, "out of memory");
    int fd = -1;
    ssize_t n = 0;
    int rc = hs_receive(c, timeout_ms, msg, &n, &fd);
    if (rc == 0) {
        json_object *j = hs_parse(c, timeout_ms, msg, n);
        rc = hs_regions(sv, v, j);
        json_object_put(j);
    }
    if (rc == 0)
        rc = hs_attach(sv, v, c, &fd);
    if (fd >= 0)
        close(fd);
    free(msg);
    return rc;
}

static int listen_on(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return fks__err(FKS_EINVAL, "socket path %s is too long (at most %zu bytes)", path, sizeof a.sun_path - 1);
    memcpy(a.sun_path, path, strlen(path) + 1);   /* fits: checked above */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fks__err(FKS_EEXIST, "%s exists and is not a socket: not replacing it", path);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fks__errno(FKS_EIO, errno, "socket");
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (r != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        return fks__errno(FKS_EIO, e, "listen on %s", path);
    }
    return fd;
}

/* ---- lease renewal ---------------------------------------------------- */

typedef struct renewer {
    fks_lease *l;                /* NULL until the pull took it (design 8) */
    double every;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} renewer;

static void *renew_main(void *arg)
{
    renewer *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + r->every;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT && !r->stop) {
            fks_lease *l = r->l;
            pthread_mutex_unlock(&r->mu);
            if (l && fks_lease_renew(l) != 0)
                fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- keeping a remote snapshot's pages (design 8) ---------------------- */

/* At nice 19: pulls the snapshot into the store, takes the lease on its
** pages there, hands the lease to the renewer and the store's image to
** the readers. A failure leaves the VM served from the remote. */
static void *pull_main(void *arg)
{
    server *sv = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    double t0 = now_s();
    fks_remote_stats ps;
    memset(&ps, 0, sizeof ps);
    fks_image *im = NULL;
    fks_lease *l = NULL;
    int rc = fks_rimage_pull(&ps, &im, sv->rim);
    size_t nruns = 0;
    const fks_run *runs = rc == 0 ? fks_image_runs(im, &nruns) : NULL;
    if (rc == 0)
        rc = fks_lease_take(&l, sv->s, sv->tag, runs, nruns, sv->o->lease_ttl_s);
    sv->st.pull_bytes_down = ps.bytes_down;
    if (rc) {
        fprintf(stderr, "forkstore page server: %s is still served from remote %s: %s\n", sv->tag,
                fks_rimage_remote(sv->rim), fks_errmsg());
        return NULL;
    }
    pthread_mutex_lock(&sv->rn->mu);
    sv->rn->l = l;
    pthread_mutex_unlock(&sv->rn->mu);
    sv->st.pulled = 1;
    sv->st.pull_s = now_s() - t0;
    __atomic_store_n(&sv->im, im, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- the server ------------------------------------------------------- */

static void vm_close(server *sv, vm *v)
{
    v->done = 1;
    if (v->pf_started) {
        pthread_join(v->pf, NULL);
        v->pf_started = 0;
    }
    (void)sv;
    if (v->uffd >= 0)
        close(v->uffd);
    if (v->sock >= 0)
        close(v->sock);
    if (v->pidfd >= 0)
        close(v->pidfd);
    v->uffd = v->sock = v->pidfd = -1;
}

/* What one fks_serve_pages holds beyond the server: the VMs, the socket,
** the poll set, the lease and the threads it started. */
typedef struct serving {
    vm *vms;
    int nvm, accepted, max_vms;
    int ls;                      /* the listening socket, or -1 */
    struct pollfd *pf;
    fks_lease *lease;
    renewer rn;
    pthread_t rt, wt;
    int renewing, warming;
    double t0, accept_by;
} serving;

/* Opens the page source: the store's image, or the remote's when the store
** lacks the snapshot (design 8), and reads the page locations once (design
** 5: no catalog query on the fault path). */
static int source_open(server *sv)
{
    fks_store *s = sv->s;
    const char *tag = sv->tag;
    const fks_serve_opts *o = sv->o;
    int rc = fks_image_open(&sv->im, s, tag, "memory");
    if (rc == FKS_ENOTFOUND && o->from_remote && fks_get(&(fks_snapinfo){0}, s, tag) == FKS_ENOTFOUND) {
        /* design 8: a snapshot the store lacks, from the remote */
        if ((rc = fks_rimage_open(&sv->rim, s, o->remote, tag, "memory")) != 0)
            return rc;
        snprintf(sv->st.remote, sizeof sv->st.remote, "%s", fks_rimage_remote(sv->rim));
        fks_rimage_info_get(&sv->info, sv->rim);
        sv->runs = fks_rimage_runs(sv->rim, &sv->nruns);
        return 0;
    }
    if (rc)
        return rc;
    fks_image_info_get(&sv->info, sv->im);
    if ((rc = fks_image_preload(sv->im)) != 0)   /* design 5: no catalog on the fault path */
        return rc;
    sv->runs = fks_image_runs(sv->im, &sv->nruns);
    return 0;
}

/* Allocates the stored index of each run and the recorded bitmap, and maps
** the decoded-page cache, direct when every stored page fits (design 5). */
static int cache_open(server *sv)
{
    const fks_serve_opts *o = sv->o;
    size_t bits = (size_t)(sv->info.npages / 8 + 1);
    if (!(sv->sbase = malloc((sv->nruns + 1) * sizeof *sv->sbase)) || !(sv->seen = calloc(bits, 1)))
        return fks__err(FKS_ENOMEM, "out of memory (page server of %llu pages)", (unsigned long long)sv->info.npages);
    for (size_t i = 0; i < sv->nruns; i++)
        sv->sbase[i] = sv->nstored, sv->nstored += sv->runs[i].npages;
    sv->ncache = o->cache_pages > 0 ? (size_t)o->cache_pages : CACHE_MAX;
    if (sv->nstored <= sv->ncache)
        sv->ncache = sv->nstored ? (size_t)sv->nstored : 1, sv->direct = 1;
    sv->cache = mmap(NULL, sv->ncache * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sv->cache == MAP_FAILED)
        sv->cache = NULL;
    if (sv->cache)
        (void)madvise(sv->cache, sv->ncache * PG, MADV_HUGEPAGE);   /* best effort */
    if (!sv->cache || !(sv->seg = calloc(sv->ncache * PG / SEG + 1, 1)) ||
        (sv->direct ? !(sv->state = calloc(sv->ncache, 1)) : !(sv->ctag = calloc(sv->ncache, 8))))
        return fks__err(FKS_ENOMEM, "out of memory (page cache of %zu pages)", sv->ncache);
    return 0;
}

/* Reads the test hooks: FKS_TEST_PREFETCH_PAUSE=PGNO:MS (design 4b,
** t_lazy_remove) and FKS_TEST_PULL_HOLD=1 (design 8, t_lazy_remote). */
static void test_hooks(server *sv)
{
    /* test hook (t_lazy_remove): FKS_TEST_PREFETCH_PAUSE=PGNO:MS */
    const char *t = getenv("FKS_TEST_PREFETCH_PAUSE");
    char *e1 = NULL, *e2 = NULL;
    unsigned long long pg = t ? strtoull(t, &e1, 10) : 0;
    unsigned long ms = e1 && *e1 == ':' ? strtoul(e1 + 1, &e2, 10) : 0;
    if (e2 && e2 != e1 + 1 && *e2 == '\0')
        sv->test_pause_pgno = pg, sv->test_pause_ms = (unsigned)ms;
    /* test hook (t_lazy_remote): FKS_TEST_PULL_HOLD=1, every page from the remote */
    const char *h = getenv("FKS_TEST_PULL_HOLD");
    sv->test_pull_hold = h && !strcmp(h, "1");
}

/* Takes the lease on the image's pages before any VMM can ask for one
** (design 7; from a remote, the pull takes it: design 8) and starts the
** thread renewing it. */
static int lease_start(server *sv, serving *g)
{
    const fks_serve_opts *o = sv->o;
    int rc;
    if (sv->im && (rc = fks_lease_take(&g->lease, sv->s, sv->tag, sv->runs, sv->nruns, o->lease_ttl_s)) != 0)
        return rc;
    g->rn.l = g->lease;
    sv->rn = &g->rn;
    g->rn.every = (o->lease_ttl_s > 0 ? o->lease_ttl_s : 60) / 3;
    if (pthread_create(&g->rt, NULL, renew_main, &g->rn) == 0)
        g->renewing = 1;
    return 0;
}

/* Reads the working set to prefetch (design 6; from a remote, the one
** pushed with the snapshot: design 8) and records it first. */
static int ws_load(server *sv)
{
    const fks_serve_opts *o = sv->o;
    int rc = 0;
    if (o->prefetch && sv->rim)
        rc = fks_rimage_working_set(&sv->ws, &sv->nws, sv->st.working_set_from, sizeof sv->st.working_set_from,
                                    sv->rim);
    else if (o->prefetch)
        rc = fks_working_set_get(&sv->ws, &sv->nws, sv->st.working_set_from, sizeof sv->st.working_set_from, sv->s,
                                 sv->tag);
    if (rc)
        return rc;
    sv->st.working_set_pages = sv->nws;
    if (o->record && sv->nws) {        /* design 6: the set used comes first */
        for (size_t i = 0; i < sv->nws; i++)
            if (sv->ws[i] < sv->info.npages)
                record(sv, sv->ws[i]);
    }
    return 0;
}

/* Listens on the socket (or takes the caller's, o->listen_fd) and tells
** the caller it is ready on o->ready_fd (design 1). */
static int socket_open(serving *g, const fks_serve_opts *o)
{
    if (o->listen_fd >= 0) {
        g->ls = o->listen_fd;
    } else if ((g->ls = listen_on(o->socket)) < 0) {
        int rc = g->ls;
        g->ls = -1;
        return rc;
    }
    if (o->ready_fd >= 0) {
        char b = 1;
        ssize_t w = write(o->ready_fd, &b, 1);
        (void)w;
        close(o->ready_fd);
    }
    return 0;
}

/* Fills the poll set: the socket while listening, o->stop_fd, then each
** VM's uffd, socket and pidfd (design 2). Returns its length. */
static int poll_set(serving *g, const fks_serve_opts *o, int listening, int *stop_at, int *first_vm)
{
    int np = 0;
    if (listening)
        g->pf[np++] = (struct pollfd){.fd = g->ls, .events = POLLIN};
    *stop_at = np;
    if (o->stop_fd >= 0)
        g->pf[np++] = (struct pollfd){.fd = o->stop_fd, .events = POLLIN};
    *first_vm = np;
    for (int i = 0; i < g->nvm; i++) {
        g->pf[np++] = (struct pollfd){.fd = g->vms[i].uffd, .events = POLLIN};
        g->pf[np++] = (struct pollfd){.fd = g->vms[i].sock, .events = POLLRDHUP};
        g->pf[np++] = (struct pollfd){.fd = g->vms[i].pidfd, .events = POLLIN};
    }
    return np;
}

/* Serves each live VM's events of the poll: its messages (faults and
** REMOVEs: design 3, 4), then its end (the uffd or the socket hung up,
** the process gone: design 2). */
static int vm_events(server *sv, serving *g, int first_vm)
{
    for (int i = 0; i < g->nvm; i++) {
        vm *v = &g->vms[i];
        if (v->done)
            continue;
        struct pollfd *q = &g->pf[first_vm + 3 * i];
        if (q[0].revents & POLLIN) {
            int rc = serve_msgs(sv, v);
            if (rc != 0)
                return rc;
        }
        if ((q[0].revents & (POLLERR | POLLHUP)) || (q[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
            (v->pidfd >= 0 && (q[2].revents & POLLIN)))
            v->done = 1;
        if (v->done)
            vm_close(sv, v);
    }
    return 0;
}

/* Starts what a VM's handshake brings: the cache warming (design 5b), the
** VM's prefetch (design 6), and from a remote the pull (design 8). */
static void vm_start(server *sv, serving *g, vm *v)
{
    const fks_serve_opts *o = sv->o;
    if (!g->warming && sv->direct && !o->cold_cache && !sv->rim && pthread_create(&g->wt, NULL, warm_main, sv) == 0)
        g->warming = 1;
    if (o->prefetch && sv->nws) {
        pf_arg *a = malloc(sizeof *a);
        if (a) {
            a->sv = sv, a->v = v;
            if (pthread_create(&v->pf, NULL, prefetch_main, a) == 0)
                v->pf_started = 1;
            else
                free(a);
        }
    }
    /* design 8: the pull after the prefetch has started, at nice 19 */
    if (sv->rim && !sv->pulling && !sv->test_pull_hold && pthread_create(&sv->pt, NULL, pull_main, sv) == 0)
        sv->pulling = 1;
}

/* Accepts a VMM and takes its handshake (design 1, 2); the socket closes
** once max_vms are in. A refused handshake is an error only when no VM
** came before it (then it ends the server); else it is logged. */
static int vm_accept(server *sv, serving *g)
{
    const fks_serve_opts *o = sv->o;
    int c = accept4(g->ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return 0;
    vm *v = &g->vms[g->nvm];
    int rc = handshake(sv, v, c, 5000);
    if (rc != 0) {
        close(c);
        if (g->accepted == 0)
            return rc;
        fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
        return 0;
    }
    g->accepted++, g->nvm++;
    sv->st.vms++;
    vm_start(sv, g, v);
    if (g->accepted == g->max_vms && o->listen_fd < 0 && o->socket) {
        close(g->ls);
        g->ls = -1;
        unlink(o->socket);
    }
    return 0;
}

/* The poll loop: serves the VMs and accepts new ones until every accepted
** VM is done (design 2), o->stop_fd is readable, no VMM connects in time,
** or an error. */
static int serve_loop(server *sv, serving *g)
{
    const fks_serve_opts *o = sv->o;
    if (!(g->pf = calloc(2 + 3 * MAX_VMS, sizeof *g->pf)))
        return fks__err(FKS_ENOMEM, "out of memory");
    for (;;) {
        int stop_at, first_vm, listening = g->accepted < g->max_vms;
        int np = poll_set(g, o, listening, &stop_at, &first_vm);
        int live = 0;
        for (int i = 0; i < g->nvm; i++)
            live += !g->vms[i].done;
        if (!listening && live == 0)
            return 0;
        int timeout = -1;
        if (listening && g->accepted == 0) {
            double left = g->accept_by - now_s();
            if (left <= 0)
                return fks__err(FKS_ETIMEDOUT, "no VMM connected to the page server at %s within %.0f s",
                                o->socket ? o->socket : "(socket)", o->accept_timeout_s > 0 ? o->accept_timeout_s : 60);
            timeout = (int)(left * 1000) + 1;
        }
        int pr = poll(g->pf, (nfds_t)np, timeout);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return fks__errno(FKS_EIO, errno, "page server: poll");
        }
        if (o->stop_fd >= 0 && g->pf[stop_at].revents)
            return 0;
        int rc = vm_events(sv, g, first_vm);
        if (rc == 0 && listening && (g->pf[0].revents & POLLIN))
            rc = vm_accept(sv, g);
        if (rc != 0)
            return rc;
    }
}

/* Stops what runs: the VMs (their prefetches joined), the warming, the pull
** (a held one starts here and is waited for: design 8), the socket, the
** renewer. Takes back the pull's lease. */
static void serve_stop(server *sv, serving *g)
{
    const fks_serve_opts *o = sv->o;
    free(g->pf);
    sv->stopping = 1;
    for (int i = 0; i < g->nvm; i++)
        vm_close(sv, &g->vms[i]);
    if (g->warming)
        pthread_join(g->wt, NULL);
    if (sv->rim && sv->st.vms && sv->test_pull_hold && pthread_create(&sv->pt, NULL, pull_main, sv) == 0)
        sv->pulling = 1;
    if (sv->pulling)                   /* the pages are kept: the pull ends first */
        pthread_join(sv->pt, NULL);
    if (sv->rim) {
        fks_rimage_stats_get(&sv->st.rs, sv->rim);
        g->lease = g->rn.l;            /* the pull's, released below */
    }
    if (g->ls >= 0 && g->ls != o->listen_fd) {
        close(g->ls);
        if (o->socket)
            unlink(o->socket);
    }
    if (g->renewing) {
        pthread_mutex_lock(&g->rn.mu);
        g->rn.stop = 1;
        pthread_cond_signal(&g->rn.cv);
        pthread_mutex_unlock(&g->rn.mu);
        pthread_join(g->rt, NULL);
    }
}

/* Completes the statistics: the store's decode counters, the fault service
** quantiles (design 3c) and the seconds since t0. */
static void stats_end(server *sv, double t0)
{
    if (sv->im && !sv->rim) {
        fks_image_stats is;
        fks_image_stats_get(&is, sv->im);
        sv->st.blocks_decoded = is.blocks_decoded;
        sv->st.bytes_decoded = is.bytes_decoded;
    }
    sv->st.fault_p50_us = hist_q(sv, 0.5);
    sv->st.fault_p99_us = hist_q(sv, 0.99);
    sv->st.seconds = now_s() - t0;
}

/* Stores the working set recorded (design 6) and the statistics, best
** effort, when a VM was served and the snapshot has a row in the store. */
static void results_put(server *sv)
{
    if (sv->st.vms && (!sv->rim || sv->st.pulled)) {
        /* best effort: the VM is gone whatever these say (a remote
        ** snapshot not pulled has no row for them) */
        if (sv->o->record && sv->nrec && fks_working_set_put(sv->s, sv->tag, sv->rec, sv->nrec) != 0)
            fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
        if (fks_lazy_stats_put(sv->s, sv->tag, &sv->st) != 0)
            fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
    }
}

/* Closes the images and frees the cache, the tables and the VMs. */
static void serve_free(server *sv, serving *g)
{
    if (!sv->rim)
        fks_image_close(sv->im);
    fks_rimage_close(sv->rim);         /* closes the pulled image */
    if (sv->cache)
        munmap(sv->cache, sv->ncache * PG);
    free(sv->state);
    free(sv->seg);
    free(sv->ctag);
    free(sv->sbase);
    free(sv->seen);
    free(sv->rec);
    free(sv->ws);
    for (int i = 0; i < MAX_VMS; i++) {
        free(g->vms[i].removed);
        pthread_mutex_destroy(&g->vms[i].mu);
    }
    free(g->vms);
    pthread_mutex_destroy(&sv->mu);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&sv->locks[i]);
}

int fks_serve_pages(fks_serve_stats *stout, fks_store *s, const char *tag, const fks_serve_opts *o)
{
    server sv = {.s = s, .tag = tag, .o = o};
    serving g = {.vms = calloc(MAX_VMS, sizeof *g.vms), .ls = -1,
                 .rn = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER}};
    int rc = 0;
    g.max_vms = o->max_vms > 0 ? (o->max_vms < MAX_VMS ? o->max_vms : MAX_VMS) : 1;
    g.t0 = now_s();
    g.accept_by = g.t0 + (o->accept_timeout_s > 0 ? o->accept_timeout_s : 60);
    pthread_mutex_init(&sv.mu, NULL);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&sv.locks[i], NULL);
    if (!g.vms)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (int i = 0; i < MAX_VMS; i++) {
        g.vms[i].uffd = g.vms[i].sock = g.vms[i].pidfd = -1;
        pthread_mutex_init(&g.vms[i].mu, NULL);
    }
    if ((rc = source_open(&sv)) != 0 || (rc = cache_open(&sv)) != 0)
        goto out;
    test_hooks(&sv);
    if ((rc = lease_start(&sv, &g)) != 0 || (rc = ws_load(&sv)) != 0 || (rc = socket_open(&g, o)) != 0)
        goto out;
    rc = serve_loop(&sv, &g);
out:
    serve_stop(&sv, &g);
    stats_end(&sv, g.t0);
    int keep = rc;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rc ? fks_errmsg() : "");
    results_put(&sv);
    if (g.lease && fks_lease_release(g.lease) != 0)
        fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
    if (stout)
        *stout = sv.st;
    serve_free(&sv, &g);
    if (keep)
        return fks__err(keep, "%s", msg);
    return 0;
}
