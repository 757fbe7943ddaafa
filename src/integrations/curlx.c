/*
** curlx.c: libcurl through dlopen (see curlx.h for why).
**
** Design
**  1. fks__curl_load opens libcurl.so.4 (the soname of libcurl 7 and 8)
**     with RTLD_NOW | RTLD_LOCAL once and looks up the eleven functions
**     forkstore calls; a missing symbol fails the load as a whole.
**  2. Each wrapper loads first. curl_easy_setopt and curl_easy_getinfo
**     are variadic: the option number says the argument's type, as in
**     libcurl itself (CURLOPTTYPE_*: long below 10000, a data pointer
**     below 20000, a function pointer below 30000, curl_off_t below
**     40000, a struct curl_blob pointer above; getinfo always takes a
**     pointer), and the argument is passed on as that type.
*/
#include "curlx.h"

#include <dlfcn.h>
#include <stdio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include "util.h"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    time_t (*getdate)(const char *, const time_t *);
} api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[256];
static int loaded;

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "%s", e ? e : "dlopen failed");
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"curl_global_init", (void **)&api.global_init},   {"curl_easy_init", (void **)&api.easy_init},
        {"curl_easy_setopt", (void **)&api.easy_setopt},   {"curl_easy_perform", (void **)&api.easy_perform},
        {"curl_easy_getinfo", (void **)&api.easy_getinfo}, {"curl_easy_cleanup", (void **)&api.easy_cleanup},
        {"curl_easy_reset", (void **)&api.easy_reset},     {"curl_easy_strerror", (void **)&api.easy_strerror},
        {"curl_slist_append", (void **)&api.slist_append}, {"curl_slist_free_all", (void **)&api.slist_free_all},
        {"curl_getdate", (void **)&api.getdate},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(why, sizeof why, "libcurl.so.4 has no %s", syms[i].name);
            return;                /* the handle stays open: harmless */
        }
        *syms[i].slot = f;
    }
    loaded = 1;
}

int fks__curl_load(void)
{
    pthread_once(&once, load);
    return loaded ? 0 : fks__err(FKS_EIO, "cannot load libcurl (needed for HTTP: Firecracker's API, remotes): %s", why);
}

CURLcode fks__curl_global_init(long flags)
{
    return fks__curl_load() == 0 ? api.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *fks__curl_easy_init(void)
{
    return fks__curl_load() == 0 ? api.easy_init() : NULL;
}

CURLcode fks__curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    if (fks__curl_load() != 0)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        rc = api.easy_setopt(h, opt, v);
    } else if (opt < CURLOPTTYPE_FUNCTIONPOINT) {
        void *v = va_arg(ap, void *);
        rc = api.easy_setopt(h, opt, v);
    } else if (opt < CURLOPTTYPE_OFF_T) {
        void (*v)(void) = va_arg(ap, void (*)(void));
        rc = api.easy_setopt(h, opt, v);
    } else if (opt < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = api.easy_setopt(h, opt, v);
    } else {
        void *v = va_arg(ap, void *);
        rc = api.easy_setopt(h, opt, v);
    }
    va_end(ap);
    return rc;
}

CURLcode fks__curl_easy_perform(CURL *h)
{
    return fks__curl_load() == 0 ? api.easy_perform(h) : CURLE_FAILED_INIT;
}

CURLcode fks__curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    if (fks__curl_load() != 0)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *p = va_arg(ap, void *);
    va_end(ap);
    return api.easy_getinfo(h, info, p);
}

void fks__curl_easy_cleanup(CURL *h)
{
    if (h && fks__curl_load() == 0)
        api.easy_cleanup(h);
}

void fks__curl_easy_reset(CURL *h)
{
    if (fks__curl_load() == 0)
        api.easy_reset(h);
}

const char *fks__curl_easy_strerror(CURLcode code)
{
    return fks__curl_load() == 0 ? api.easy_strerror(code) : why;
}

struct curl_slist *fks__curl_slist_append(struct curl_slist *list, const char *s)
{
    return fks__curl_load() == 0 ? api.slist_append(list, s) : NULL;
}

void fks__curl_slist_free_all(struct curl_slist *list)
{
    if (list && fks__curl_load() == 0)
        api.slist_free_all(list);
}

time_t fks__curl_getdate(const char *p, const time_t *unused)
{
    return fks__curl_load() == 0 ? api.getdate(p, unused) : -1;
}
