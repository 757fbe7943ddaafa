/*
** pageserver.c: lazy restore. Serves a snapshot's memory to Firecracker
** VMMs through userfaultfd (the Uffd memory backend), page by page, from
** the store. Built on the public page-level API only (fks_image_*, the
** lease and working-set functions of forkstore.h).
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
**     range is woken. EAGAIN (the mapping changed under the copy, e.g. a
**     remove in flight) is retried after the pending events are read.
**     ENOENT/ESRCH mean the VMM's mm is gone: that VM is done.
**  3b. Fault-around: a fault on a zero page installs the zero pages around
**     it too (up to 256, within the gap between two runs and the region:
**     a sparse image's holes cost a few faults, and zero-page ptes cost no
**     memory); a fault on a stored page installs up to 8 stored pages from
**     it on in its run (one read, mostly one decoded block). Pages already
**     present are skipped (EEXIST). A removed page is never covered.
**  4. UFFD_EVENT_REMOVE [start, end): a balloon gave the pages back (the
**     VMM did MADV_DONTNEED); from then on they are zero pages, whatever
**     the snapshot held (the kernel's non-cooperative userfaultfd rule).
**  5. A cache of decoded pages (page id -> 4 KiB, direct-mapped, 8192
**     entries = 32 MiB by default, shared by
**     every VM and the prefetch threads, under one mutex) means a page
**     several VMs share is decoded once while it stays cached; the image
**     handle's own chunk readers keep the last blocks decoded, so
**     neighbours of a block cost one decode.
**  6. Working set: the page numbers installed for faults (fault-around
**     included), in first-fault order (a bitmap drops repeats), are stored at exit as the
**     snapshot's working set (with a prefetch: the set used, then the new
**     demand faults). Prefetch installs a working set in batches of up to
**     256 pages, sorted and cut into contiguous runs: one fks_image_read
**     and one UFFDIO_COPY with UFFDIO_COPY_MODE_DONTWAKE per run (zero
**     pages of the set: UFFDIO_ZEROPAGE, DONTWAKE too), then one
**     UFFDIO_WAKE per run; a run that hits a present page (EEXIST, the
**     guest faulted it first) goes on after it. It runs on its own thread
**     per VM while the main thread serves faults, bounded in bytes and
**     time.
**  7. A lease (lease.c) on the image's pages is taken before the socket
**     listens, renewed every third of its time to live by a timer
**     thread, and released at exit: gc keeps the pages even if the
**     snapshot is removed meanwhile.
**
** Failure modes: if the server dies, each VM it served hangs at its next
** missing page (Firecracker waits for the page forever); its lease
** expires and the next gc after that frees what only it held. If a VMM
** dies, its pidfd reports it, its uffd is closed, and the server goes on
** with the others. A handshake that does not fit the image (regions
** outside it, a page size other than 4096) is refused and the VMM's
** guest never gets a page.
*/
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
#define BATCH 256
#define AROUND_ZERO 256     /* zero pages installed around a zero fault */
#define AROUND_STORED 8     /* stored pages from the faulting one on */
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
    int done;
    pthread_t pf;
    int pf_started;
} vm;

typedef struct cache_ent {
    int64_t id;
    uint8_t data[PG];
} cache_ent;

typedef struct server {
    fks_store *s;
    const char *tag;
    const fks_serve_opts *o;
    fks_image *im;
    fks_image_info info;
    pthread_mutex_t mu;          /* cache, stats, removed, record */
    cache_ent *cache;
    size_t ncache;
    uint8_t *removed;            /* bit per pgno: zero since a REMOVE */
    uint8_t *seen;               /* bit per pgno: in rec already */
    uint64_t *rec;               /* demand faults in order */
    size_t nrec, caprec;
    uint64_t *ws;                /* working set to prefetch */
    size_t nws;
    fks_serve_stats st;
    uint64_t hist[HIST_FINE + HIST_COARSE + 1];
    volatile int stopping;
} server;

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

static size_t cache_slot(const server *sv, int64_t id)
{
    return (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ull >> 20) % sv->ncache;
}

/* Stored pages pgno .. pgno+n-1 (ids[]) into buf, from the cache when all
** are there, else read (decoded) and cached. */
static int pages_get(server *sv, uint64_t pgno, uint64_t n, const int64_t *ids, uint8_t *buf)
{
    pthread_mutex_lock(&sv->mu);
    uint64_t k = 0;
    for (; k < n; k++) {
        const cache_ent *e = &sv->cache[cache_slot(sv, ids[k])];
        if (e->id != ids[k])
            break;
        memcpy(buf + k * PG, e->data, PG);
    }
    if (k == n)
        sv->st.cache_hits += n;
    pthread_mutex_unlock(&sv->mu);
    if (k == n)
        return 0;
    int rc = fks_image_read(sv->im, pgno, n, buf);
    if (rc)
        return rc;
    pthread_mutex_lock(&sv->mu);
    for (k = 0; k < n; k++) {
        cache_ent *e = &sv->cache[cache_slot(sv, ids[k])];
        e->id = ids[k];
        memcpy(e->data, buf + k * PG, PG);
    }
    pthread_mutex_unlock(&sv->mu);
    return 0;
}

/* Host address of pgno in v, 0 if no region holds it. */
static uint64_t addr_of(const vm *v, uint64_t pgno)
{
    uint64_t off = pgno * PG;
    for (int i = 0; i < v->nreg; i++)
        if (off >= v->reg[i].off && off - v->reg[i].off < v->reg[i].size)
            return v->reg[i].base + (off - v->reg[i].off);
    return 0;
}

static void wake(const vm *v, uint64_t addr, uint64_t len)
{
    struct uffdio_range r = {.start = addr, .len = len};
    ioctl(v->uffd, UFFDIO_WAKE, &r);
}

static void drain_events(server *sv, vm *v);

/* Installs len bytes at addr: buf's (UFFDIO_COPY) or zeros (buf NULL,
** UFFDIO_ZEROPAGE). Returns pages installed (>= 0), or -1 when the VM is
** gone. Design 3. */
static int64_t install(server *sv, vm *v, uint64_t addr, const uint8_t *buf, uint64_t len, int dontwake)
{
    uint64_t done = 0;
    int64_t pages = 0;
    while (done < len) {
        int r;
        int64_t got;
        if (buf) {
            struct uffdio_copy c = {.dst = addr + done, .src = (uintptr_t)(buf + done), .len = len - done,
                                    .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0};
            r = ioctl(v->uffd, UFFDIO_COPY, &c);
            got = c.copy;
        } else {
            struct uffdio_zeropage z = {.range = {.start = addr + done, .len = len - done},
                                        .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0};
            r = ioctl(v->uffd, UFFDIO_ZEROPAGE, &z);
            got = z.zeropage;
        }
        if (r == 0) {
            pages += (int64_t)((len - done) / PG);
            break;
        }
        int e = errno;
        if (got > 0) {                 /* partial: go on after it */
            done += (uint64_t)got;
            pages += got / PG;
            continue;
        }
        if (e == EEXIST && !buf) {
            /* UFFDIO_ZEROPAGE wants an empty pte; a uffd-wp marker (a VMM
            ** that write-protects unpopulated memory) is not, but
            ** UFFDIO_COPY takes it: copy zeros instead */
            static const uint8_t zeros[PG];
            struct uffdio_copy c = {.dst = addr + done, .src = (uintptr_t)zeros, .len = PG,
                                    .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0};
            if (ioctl(v->uffd, UFFDIO_COPY, &c) == 0) {
                done += PG, pages++;
                continue;
            }
            if (errno == EAGAIN || errno == EINTR)
                continue;              /* as below, on the next round */
            if (errno != EEXIST)
                return -1;
        }
        if (e == EEXIST) {             /* present already: skip that page */
            pthread_mutex_lock(&sv->mu);
            sv->st.eexist++;
            pthread_mutex_unlock(&sv->mu);
            if (!dontwake)
                wake(v, addr + done, PG);
            done += PG;
            continue;
        }
        if (e == EAGAIN || e == EINTR) {
            if (!dontwake)             /* the main thread: read the REMOVE that raced */
                drain_events(sv, v);
            else                       /* prefetch: the main thread reads it */
                usleep(100);
            continue;
        }
        return -1;                     /* ENOENT, ESRCH: the mm is gone */
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

/* Fault-around (design 3b): the pages installed with the one faulting at
** pgno of region ri, [*lo, *hi). A zero page brings the zero pages around
** it (the gap between two runs, within AROUND_ZERO pages aligned and the
** region); a stored page the stored pages after it in its run, up to
** AROUND_STORED (one read, mostly one decoded block). Removed pages are
** left to their own faults. */
static void around(server *sv, const vm *v, int ri, uint64_t pgno, int zero, uint64_t *lo, uint64_t *hi)
{
    const region *r = &v->reg[ri];
    uint64_t rlo = r->off / PG, rhi = (r->off + r->size) / PG;
    size_t n;
    const fks_run *runs = fks_image_runs(sv->im, &n);
    size_t a = 0, b = n;           /* first run ending after pgno */
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (runs[m].pgno + runs[m].npages <= pgno)
            a = m + 1;
        else
            b = m;
    }
    uint64_t l, h;
    if (zero) {
        uint64_t glo = a > 0 ? runs[a - 1].pgno + runs[a - 1].npages : 0;
        uint64_t ghi = a < n ? runs[a].pgno : sv->info.npages;
        l = pgno / AROUND_ZERO * AROUND_ZERO, h = l + AROUND_ZERO;
        if (l < glo) l = glo;
        if (h > ghi) h = ghi;
    } else {
        l = pgno, h = pgno + AROUND_STORED;
        if (a < n && h > runs[a].pgno + runs[a].npages)
            h = runs[a].pgno + runs[a].npages;
    }
    if (l < rlo) l = rlo;
    if (h > rhi) h = rhi;
    if (h > sv->info.npages) h = sv->info.npages;
    pthread_mutex_lock(&sv->mu);
    uint64_t k = pgno;
    while (k > l && !bit(sv->removed, k - 1))
        k--;
    l = k;
    for (k = pgno + 1; k < h && !bit(sv->removed, k); k++)
        ;
    h = k;
    pthread_mutex_unlock(&sv->mu);
    if (l > pgno || h <= pgno)
        l = pgno, h = pgno + 1;
    *lo = l, *hi = h;
}

/* One page fault at addr of v. */
static int fault(server *sv, vm *v, uint64_t addr)
{
    double t0 = now_s();
    addr &= ~(uint64_t)(PG - 1);
    int ri = -1;
    for (int i = 0; i < v->nreg; i++)
        if (addr >= v->reg[i].base && addr - v->reg[i].base < v->reg[i].size)
            ri = i;
    if (ri < 0)
        return 0;                      /* not ours (cannot happen: we own the regions) */
    uint64_t pgno = (v->reg[ri].off + addr - v->reg[ri].base) / PG;
    int64_t id = 0;
    int rc = 0;
    pthread_mutex_lock(&sv->mu);
    int gone = bit(sv->removed, pgno);
    pthread_mutex_unlock(&sv->mu);
    if (!gone && (rc = fks_image_page(&id, NULL, sv->im, pgno)) != 0)
        return rc;
    int64_t n;
    uint8_t buf[AROUND_STORED * PG];
    uint64_t lo = pgno, hi = pgno + 1;   /* pages installed: [lo, hi) */
    if (!gone)                           /* a removed page comes alone */
        around(sv, v, ri, pgno, id == 0, &lo, &hi);
    if (gone || id == 0) {
        n = install(sv, v, addr - (pgno - lo) * PG, NULL, (hi - lo) * PG, 0);
    } else {
        int64_t ids[AROUND_STORED];
        ids[0] = id;
        for (uint64_t k = 1; k < hi - lo; k++)   /* one run: consecutive ids */
            ids[k] = id + (int64_t)k;
        if ((rc = pages_get(sv, lo, hi - lo, ids, buf)) != 0)
            return rc;
        n = install(sv, v, addr, buf, (hi - lo) * PG, 0);
    }
    if (n < 0) {
        v->done = 1;
        return 0;
    }
    pthread_mutex_lock(&sv->mu);
    if (n > 0) {
        if (gone || id == 0)
            sv->st.pages_zero += (uint64_t)n;
        else
            sv->st.pages_demand += (uint64_t)n;
    }
    for (uint64_t k = lo; k < hi; k++)   /* the faulting page first */
        record(sv, k == lo ? pgno : k <= pgno ? k - 1 : k);
    hist_add(sv, now_s() - t0);
    pthread_mutex_unlock(&sv->mu);
    return 0;
}

static void on_remove(server *sv, vm *v, uint64_t start, uint64_t end)
{
    pthread_mutex_lock(&sv->mu);
    for (uint64_t a = start & ~(uint64_t)(PG - 1); a < end; a += PG)
        for (int i = 0; i < v->nreg; i++)
            if (a >= v->reg[i].base && a - v->reg[i].base < v->reg[i].size) {
                uint64_t pgno = (v->reg[i].off + a - v->reg[i].base) / PG;
                if (!bit(sv->removed, pgno))
                    sv->st.pages_removed++;
                setbit(sv->removed, pgno);
            }
    pthread_mutex_unlock(&sv->mu);
}

/* Reads v's pending messages; faults are served at once. */
static int serve_msgs(server *sv, vm *v)
{
    struct uffd_msg m[32];
    for (;;) {
        ssize_t n = read(v->uffd, m, sizeof m);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            v->done = 1;
            return 0;
        }
        if (n == 0) {
            v->done = 1;
            return 0;
        }
        for (size_t i = 0; i < (size_t)n / sizeof m[0]; i++) {
            if (m[i].event == UFFD_EVENT_REMOVE) {
                on_remove(sv, v, m[i].arg.remove.start, m[i].arg.remove.end);
            } else if (m[i].event == UFFD_EVENT_PAGEFAULT) {
                pthread_mutex_lock(&sv->mu);
                sv->st.faults++;
                pthread_mutex_unlock(&sv->mu);
                int rc = fault(sv, v, m[i].arg.pagefault.address);
                if (rc)
                    return rc;
            }
        }
    }
}

/* Inside an install that got EAGAIN: read pending events so that a REMOVE
** racing with it is applied; a fault read here is served directly. */
static void drain_events(server *sv, vm *v)
{
    struct uffd_msg m[8];
    ssize_t n = read(v->uffd, m, sizeof m);
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof m[0]; i++) {
        if (m[i].event == UFFD_EVENT_REMOVE)
            on_remove(sv, v, m[i].arg.remove.start, m[i].arg.remove.end);
        else if (m[i].event == UFFD_EVENT_PAGEFAULT) {
            /* Serve it with a zero-or-data install, not recursively through
            ** fault(): waking it makes the kernel deliver it again if it
            ** is still missing. */
            wake(v, m[i].arg.pagefault.address & ~(uint64_t)(PG - 1), PG);
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

static void *prefetch_main(void *arg)
{
    pf_arg *a = arg;
    server *sv = a->sv;
    vm *v = a->v;
    free(a);
    double t0 = now_s();
    uint64_t limit = sv->o->prefetch_bytes ? sv->o->prefetch_bytes / PG : UINT64_MAX, taken = 0;
    uint64_t batch[BATCH];
    uint8_t *buf = malloc((size_t)BATCH * PG);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < sv->nws && taken < limit && !v->done && !sv->stopping;) {
        if (sv->o->prefetch_max_s > 0 && now_s() - t0 > sv->o->prefetch_max_s)
            break;
        size_t nb = 0;
        for (; i < sv->nws && nb < BATCH && taken < limit; i++) {
            uint64_t p = sv->ws[i];
            int64_t id = 0;
            if (p >= sv->info.npages || fks_image_page(&id, NULL, sv->im, p) != 0)
                continue;
            batch[nb++] = p;
            taken += id != 0;  /* the bound is in stored bytes; zeros cost none */
        }
        qsort(batch, nb, sizeof batch[0], cmp_u64);
        uint64_t woken[BATCH][2];
        size_t nw = 0;
        for (size_t k = 0; k < nb;) {
            size_t e = k + 1;
            int64_t id0 = 0, idk = 0;
            fks_image_page(&id0, NULL, sv->im, batch[k]);
            /* a run of pages all stored or all zero, contiguous in memory */
            while (e < nb && batch[e] == batch[e - 1] + 1 &&
                   addr_of(v, batch[e]) == addr_of(v, batch[k]) + (batch[e] - batch[k]) * PG &&
                   fks_image_page(&idk, NULL, sv->im, batch[e]) == 0 && (idk == 0) == (id0 == 0))
                e++;
            uint64_t addr = addr_of(v, batch[k]), n = e - k;
            pthread_mutex_lock(&sv->mu);
            int skip = 0;
            for (size_t q = k; q < e; q++)
                skip |= bit(sv->removed, batch[q]);
            pthread_mutex_unlock(&sv->mu);
            if (addr && !skip && (id0 == 0 || fks_image_read(sv->im, batch[k], n, buf) == 0)) {
                int64_t got = install(sv, v, addr, id0 ? buf : NULL, n * PG, 1);
                if (got < 0) {
                    v->done = 1;
                    break;
                }
                pthread_mutex_lock(&sv->mu);
                if (id0)
                    sv->st.pages_prefetch += (uint64_t)got;
                else
                    sv->st.pages_zero += (uint64_t)got;
                pthread_mutex_unlock(&sv->mu);
                woken[nw][0] = addr, woken[nw][1] = n * PG, nw++;
            }
            k = e;
        }
        for (size_t k = 0; k < nw; k++)
            wake(v, woken[k][0], woken[k][1]);
    }
    free(buf);
    pthread_mutex_lock(&sv->mu);
    sv->st.prefetch_s += now_s() - t0;
    pthread_mutex_unlock(&sv->mu);
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

/* Receives the regions and the uffd on connection c (timeout_ms). */
static int handshake(server *sv, vm *v, int c, int timeout_ms)
{
    char *msg = malloc(MSG_MAX + 1);
    if (!msg)
        return fks__err(FKS_ENOMEM, "out of memory");
    struct pollfd p = {.fd = c, .events = POLLIN};
    int rc = 0, fd = -1;
    int pr = poll(&p, 1, timeout_ms);
    if (pr <= 0) {
        rc = fks__err(FKS_ETIMEDOUT, "the VMM connected to the page server but sent no handshake in %d ms", timeout_ms);
        goto out;
    }
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 4)];
    } cm;
    struct iovec iov = {.iov_base = msg, .iov_len = MSG_MAX};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
    ssize_t n;
    while ((n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n <= 0) {
        rc = fks__errno(FKS_EIO, n < 0 ? errno : EPIPE, "page server: receive the VMM's handshake");
        goto out;
    }
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fds[4] = {-1, -1, -1, -1};
            size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(h), (k > 4 ? 4 : k) * sizeof(int));
            for (size_t i = 0; i < k && i < 4; i++) {
                if (fd < 0)
                    fd = fds[i];
                else
                    close(fds[i]);
            }
        }
    if (fd < 0) {
        rc = fks__err(FKS_EINVAL, "the VMM's handshake carried no userfaultfd");
        goto out;
    }
    /* The JSON may in principle come in more than one read: read until it parses. */
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
    if (!j || !json_object_is_type(j, json_type_array) || json_object_array_length(j) == 0 ||
        json_object_array_length(j) > MAX_REGIONS) {
        json_object_put(j);
        rc = fks__err(FKS_EINVAL, "the VMM's handshake is not a JSON array of 1 to %d memory regions", MAX_REGIONS);
        goto out;
    }
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
    json_object_put(j);
    if (rc)
        goto out;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0) {
        rc = fks__errno(FKS_EIO, errno, "page server: SO_PEERCRED");
        goto out;
    }
    v->pid = (long)cr.pid;
    v->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)cr.pid, 0);   /* -1: the socket's hang-up tells */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    v->uffd = fd, fd = -1;
    v->sock = c;
out:
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
    fks_lease *l;
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
            pthread_mutex_unlock(&r->mu);
            if (fks_lease_renew(r->l) != 0)
                fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
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

int fks_serve_pages(fks_serve_stats *stout, fks_store *s, const char *tag, const fks_serve_opts *o)
{
    server sv = {.s = s, .tag = tag, .o = o};
    vm *vms = calloc(MAX_VMS, sizeof *vms);
    fks_lease *lease = NULL;
    renewer rn = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int renewing = 0, ls = -1, nvm = 0, accepted = 0, rc = 0;
    pthread_t rt;
    struct pollfd *pf = NULL;
    int max_vms = o->max_vms > 0 ? (o->max_vms < MAX_VMS ? o->max_vms : MAX_VMS) : 1;
    double t0 = now_s(), accept_by = t0 + (o->accept_timeout_s > 0 ? o->accept_timeout_s : 60);
    pthread_mutex_init(&sv.mu, NULL);
    if (!vms)
        return fks__err(FKS_ENOMEM, "out of memory");
    for (int i = 0; i < MAX_VMS; i++)
        vms[i].uffd = vms[i].sock = vms[i].pidfd = -1;
    if ((rc = fks_image_open(&sv.im, s, tag, "memory")) != 0)
        goto out;
    fks_image_info_get(&sv.info, sv.im);
    sv.ncache = o->cache_pages > 0 ? (size_t)o->cache_pages : 8192;
    size_t bits = (size_t)(sv.info.npages / 8 + 1);
    if (!(sv.cache = malloc(sv.ncache * sizeof *sv.cache)) || !(sv.removed = calloc(bits, 1)) ||
        !(sv.seen = calloc(bits, 1))) {
        rc = fks__err(FKS_ENOMEM, "out of memory (page server of %llu pages)", (unsigned long long)sv.info.npages);
        goto out;
    }
    for (size_t i = 0; i < sv.ncache; i++)
        sv.cache[i].id = 0;
    /* design 7: the pages are protected before any VMM can ask for one */
    size_t nruns;
    const fks_run *runs = fks_image_runs(sv.im, &nruns);
    if ((rc = fks_lease_take(&lease, s, tag, runs, nruns, o->lease_ttl_s)) != 0)
        goto out;
    rn.l = lease;
    rn.every = (o->lease_ttl_s > 0 ? o->lease_ttl_s : 60) / 3;
    if (pthread_create(&rt, NULL, renew_main, &rn) == 0)
        renewing = 1;
    if (o->prefetch && (rc = fks_working_set_get(&sv.ws, &sv.nws, sv.st.working_set_from,
                                                 sizeof sv.st.working_set_from, s, tag)) != 0)
        goto out;
    sv.st.working_set_pages = sv.nws;
    if (o->record && sv.nws) {         /* design 6: the set used comes first */
        for (size_t i = 0; i < sv.nws; i++)
            if (sv.ws[i] < sv.info.npages)
                record(&sv, sv.ws[i]);
    }
    if (o->listen_fd >= 0) {
        ls = o->listen_fd;
    } else if ((ls = listen_on(o->socket)) < 0) {
        rc = ls;
        ls = -1;
        goto out;
    }
    if (o->ready_fd >= 0) {
        char b = 1;
        ssize_t w = write(o->ready_fd, &b, 1);
        (void)w;
        close(o->ready_fd);
    }
    if (!(pf = calloc(2 + 3 * MAX_VMS, sizeof *pf))) {
        rc = fks__err(FKS_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        int np = 0, listening = accepted < max_vms;
        if (listening)
            pf[np++] = (struct pollfd){.fd = ls, .events = POLLIN};
        int stop_at = np;
        if (o->stop_fd >= 0)
            pf[np++] = (struct pollfd){.fd = o->stop_fd, .events = POLLIN};
        int first_vm = np;
        for (int i = 0; i < nvm; i++) {
            pf[np++] = (struct pollfd){.fd = vms[i].uffd, .events = POLLIN};
            pf[np++] = (struct pollfd){.fd = vms[i].sock, .events = POLLRDHUP};
            pf[np++] = (struct pollfd){.fd = vms[i].pidfd, .events = POLLIN};
        }
        int live = 0;
        for (int i = 0; i < nvm; i++)
            live += !vms[i].done;
        if (!listening && live == 0)
            break;
        int timeout = -1;
        if (listening && accepted == 0) {
            double left = accept_by - now_s();
            if (left <= 0) {
                rc = fks__err(FKS_ETIMEDOUT, "no VMM connected to the page server at %s within %.0f s",
                              o->socket ? o->socket : "(socket)", o->accept_timeout_s > 0 ? o->accept_timeout_s : 60);
                break;
            }
            timeout = (int)(left * 1000) + 1;
        }
        int pr = poll(pf, (nfds_t)np, timeout);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            rc = fks__errno(FKS_EIO, errno, "page server: poll");
            break;
        }
        if (o->stop_fd >= 0 && pf[stop_at].revents)
            break;
        for (int i = 0; i < nvm; i++) {
            vm *v = &vms[i];
            if (v->done)
                continue;
            struct pollfd *q = &pf[first_vm + 3 * i];
            if (q[0].revents & POLLIN) {
                if ((rc = serve_msgs(&sv, v)) != 0)
                    goto loop_out;
            }
            if ((q[0].revents & (POLLERR | POLLHUP)) || (q[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
                (v->pidfd >= 0 && (q[2].revents & POLLIN)))
                v->done = 1;
            if (v->done)
                vm_close(&sv, v);
        }
        if (listening && (pf[0].revents & POLLIN)) {
            int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            vm *v = &vms[nvm];
            if ((rc = handshake(&sv, v, c, 5000)) != 0) {
                close(c);
                if (accepted == 0)
                    break;
                fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
                rc = 0;
                continue;
            }
            accepted++, nvm++;
            sv.st.vms++;
            if (o->prefetch && sv.nws) {
                pf_arg *a = malloc(sizeof *a);
                if (a) {
                    a->sv = &sv, a->v = v;
                    if (pthread_create(&v->pf, NULL, prefetch_main, a) == 0)
                        v->pf_started = 1;
                    else
                        free(a);
                }
            }
            if (accepted == max_vms && o->listen_fd < 0 && o->socket) {
                close(ls);
                ls = -1;
                unlink(o->socket);
            }
        }
    }
loop_out:
out:
    free(pf);
    sv.stopping = 1;
    for (int i = 0; i < nvm; i++)
        vm_close(&sv, &vms[i]);
    if (ls >= 0 && ls != o->listen_fd) {
        close(ls);
        if (o->socket)
            unlink(o->socket);
    }
    if (renewing) {
        pthread_mutex_lock(&rn.mu);
        rn.stop = 1;
        pthread_cond_signal(&rn.cv);
        pthread_mutex_unlock(&rn.mu);
        pthread_join(rt, NULL);
    }
    if (sv.im) {
        fks_image_stats is;
        fks_image_stats_get(&is, sv.im);
        sv.st.blocks_decoded = is.blocks_decoded;
        sv.st.bytes_decoded = is.bytes_decoded;
    }
    sv.st.fault_p50_us = hist_q(&sv, 0.5);
    sv.st.fault_p99_us = hist_q(&sv, 0.99);
    sv.st.seconds = now_s() - t0;
    int keep = rc;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rc ? fks_errmsg() : "");
    if (sv.st.vms) {
        /* best effort: the VM is gone whatever these say */
        if (o->record && sv.nrec && fks_working_set_put(s, tag, sv.rec, sv.nrec) != 0)
            fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
        if (fks_lazy_stats_put(s, tag, &sv.st) != 0)
            fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
    }
    if (lease && fks_lease_release(lease) != 0)
        fprintf(stderr, "forkstore page server: %s\n", fks_errmsg());
    if (stout)
        *stout = sv.st;
    fks_image_close(sv.im);
    free(sv.cache);
    free(sv.removed);
    free(sv.seen);
    free(sv.rec);
    free(sv.ws);
    free(vms);
    pthread_mutex_destroy(&sv.mu);
    if (keep)
        return fks__err(keep, "%s", msg);
    return 0;
}
