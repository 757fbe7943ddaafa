/*
** fuzz_pmap.c: page maps as read from the catalog: pm_check on arbitrary
** runs, and pm_apply on well-formed inputs (a Diff's delta, then the delta over a base), each against a reference
** written here independently.
**
** Input: a mode byte, then fields. Each number is a selector byte (bit 7
** set: an 8-byte raw value follows, so any 64-bit value can appear;
** otherwise a small value in the low bits) so that both plausible and
** hostile maps are easy to reach.
**
** Oracle:
**  - pm_check(m, total) accepts exactly the maps the reference accepts:
**    runs non-empty, sorted, non-overlapping, inside [0, total), page ids
**    >= 1 and the run's last id <= PM_NEW - 1 (computed in 128 bits).
**  - pm_apply(base, pm_apply(cover as zeros, diff)) (base valid, cover sorted, every diff
**    page inside the cover, total <= 2048 pages): the output, expanded
**    page by page, is the diff's page inside the cover and the base's page
**    outside it; its runs are sorted, non-empty, non-overlapping, and
**    never mix catalog ids with PM_NEW references.
*/
#include <string.h>

#include "fuzz.h"
#include "pmap.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static uint64_t num(fuzz_in *in)
{
    uint64_t s = fuzz_take(in, 1);
    return (s & 0x80) ? fuzz_take(in, 8) : (s & 0x7f);
}

typedef unsigned __int128 u128;

static int ref_check(const pm_map *m, uint64_t total)
{
    u128 next = 0;
    for (size_t i = 0; i < m->n; i++) {
        const pm_run *r = &m->r[i];
        if (r->npages == 0 || r->pgno < next || (u128)r->pgno + r->npages > total)
            return -1;
        if (r->page < 1 || (u128)(uint64_t)r->page + r->npages - 1 > (u128)(PM_NEW - 1))
            return -1;
        next = (u128)r->pgno + r->npages;
    }
    return 0;
}

static void fuzz_check(fuzz_in *in)
{
    pm_map m = {0};
    uint64_t total = num(in);
    uint64_t pgno = 0;
    while (fuzz_left(in) > 0 && m.n < 64) {
        uint64_t sel = fuzz_take(in, 1);
        pm_run r;
        /* bit 0: pgno relative to the previous run's end, else absolute */
        uint64_t p = num(in);
        r.pgno = (sel & 1) ? pgno + p : p;
        r.npages = num(in);
        r.page = (int64_t)num(in);
        if (sel & 2)                       /* negative ids (wrapping like raw bits) */
            r.page = (int64_t)(0 - (uint64_t)r.page);
        if (sel & 4)                       /* ids near PM_NEW */
            r.page = (int64_t)((uint64_t)r.page + (uint64_t)(PM_NEW - 64));
        /* Raw append: pm_check must judge maps nobody coalesced. */
        if (m.n == m.alloc) {
            m.alloc = m.alloc ? 2 * m.alloc : 8;
            m.r = realloc(m.r, m.alloc * sizeof *m.r);
            FUZZ_ASSERT(m.r, "out of memory");
        }
        m.r[m.n++] = r;
        pgno = r.pgno + r.npages;
    }
    int want = ref_check(&m, total), got = pm_check(&m, total);
    FUZZ_ASSERT((got == 0) == (want == 0), "pm_check says %d, reference %d (%zu runs, total %llu)", got, want,
                m.n, (unsigned long long)total);
    if (got)
        FUZZ_ASSERT(got == FKS_ECORRUPT && fks_errmsg()[0], "pm_check error %d without a message", got);
    pm_free(&m);
}

#define T_MAX 2048

/* Expands a map of runs inside [0, total) into page -> id (0 = none). */
static void expand(const pm_map *m, int64_t *out, uint64_t total)
{
    memset(out, 0, total * sizeof *out);
    for (size_t i = 0; i < m->n; i++)
        for (uint64_t k = 0; k < m->r[i].npages; k++)
            out[m->r[i].pgno + k] = m->r[i].page + (int64_t)k;
}

static void fuzz_overlay(fuzz_in *in)
{
    static int64_t want[T_MAX], b[T_MAX], d[T_MAX], got[T_MAX];
    static uint8_t covered[T_MAX];
    pm_map base = {0}, cover = {0}, diff = {0}, out = {0};
    uint64_t total = 1 + fuzz_take(in, 2) % T_MAX;
    size_t nb = fuzz_take(in, 1) % 32, nc = fuzz_take(in, 1) % 16;

    /* base: gaps and runs of small sizes, ids anywhere valid */
    uint64_t p = 0;
    for (size_t i = 0; i < nb; i++) {
        p += num(in) % 64;
        uint64_t len = 1 + num(in) % 64;
        int64_t id = 1 + (int64_t)(num(in) % (1u << 20));
        if (p >= total)
            break;
        if (len > total - p)
            len = total - p;
        FUZZ_ASSERT(pm_push_run(&base, p, len, id) == 0, "push");
        p += len;
    }
    FUZZ_ASSERT(pm_check(&base, total) == 0, "generated base invalid: %s", fks_errmsg());
    /* cover: extents; diff: pages inside them (or zeros), ids either old
    ** or PM_NEW references, pushed in order as ingest does */
    memset(covered, 0, sizeof covered);
    p = 0;
    int64_t nextnew = PM_NEW;
    for (size_t i = 0; i < nc; i++) {
        p += num(in) % 64;
        uint64_t len = 1 + num(in) % 64;
        if (p >= total)
            break;
        if (len > total - p)
            len = total - p;
        FUZZ_ASSERT(pm_push_run(&cover, p, len, 1) == 0, "push");
        uint64_t mode = fuzz_take(in, 1);
        int64_t old = 1 + (int64_t)(num(in) % (1u << 20));
        for (uint64_t k = 0; k < len; k++) {
            covered[p + k] = 1;
            switch ((mode >> (2 * (k % 4))) & 3) {
            case 0: break;                                              /* zero page */
            case 1: FUZZ_ASSERT(pm_push(&diff, p + k, nextnew++) == 0, "push"); break;
            case 2: FUZZ_ASSERT(pm_push(&diff, p + k, old++) == 0, "push"); break;
            default: FUZZ_ASSERT(pm_push(&diff, p + k, old) == 0, "push"); break;   /* repeated page */
            }
        }
        p += len;
    }
    expand(&base, b, total);
    expand(&diff, d, total);
    for (uint64_t q = 0; q < total; q++)
        want[q] = covered[q] ? d[q] : b[q];

    pm_map delta = {0};
    for (size_t i = 0; i < cover.n; i++)
        cover.r[i].page = 0;                 /* the cover as zeros (ingest.c) */
    FUZZ_ASSERT(pm_apply(&delta, &cover, &diff, 0) == 0, "pm_apply (delta) failed: %s", fks_errmsg());
    FUZZ_ASSERT(pm_apply(&out, &base, &delta, 1) == 0, "pm_apply failed: %s", fks_errmsg());
    pm_free(&delta);
    uint64_t next = 0;
    for (size_t i = 0; i < out.n; i++) {
        const pm_run *r = &out.r[i];
        FUZZ_ASSERT(r->npages > 0 && r->pgno >= next && r->pgno + r->npages <= total,
                    "overlay run %zu (%llu+%llu) out of order or range", i, (unsigned long long)r->pgno,
                    (unsigned long long)r->npages);
        FUZZ_ASSERT(r->page >= PM_NEW || r->page + (int64_t)r->npages - 1 < PM_NEW,
                    "overlay run %zu mixes catalog ids and new pages", i);
        next = r->pgno + r->npages;
    }
    expand(&out, got, total);       /* runs checked inside [0, total) above */
    for (uint64_t q = 0; q < total; q++)
        FUZZ_ASSERT(got[q] == want[q], "page %llu: overlay gives %lld, expected %lld", (unsigned long long)q,
                    (long long)got[q], (long long)want[q]);
    pm_free(&base);
    pm_free(&cover);
    pm_free(&diff);
    pm_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size, 0};
    if (fuzz_take(&in, 1) & 1)
        fuzz_overlay(&in);
    else
        fuzz_check(&in);
    return 0;
}
