/*
** curlx.h: libcurl, loaded when first used.
**
** forkctl's commands that never speak HTTP (info, images, log, sql, ...)
** used to pay for loading libcurl and the 27 libraries it pulls in (TLS,
** Kerberos, LDAP, SSH, IDN, ...) at every start: 20-45 ms on the 2-core
** machines, most of a 50 ms `info`. Modules that speak HTTP (fc.c: the
** Firecracker API; s3.c: remotes) include this header instead of
** <curl/curl.h>; the calls they make go through fks__curl_*, which
** dlopen("libcurl.so.4") once, on the first call (pthread_once). The
** library is not linked. A missing libcurl is an error of the command
** that needs it, naming the loader's message, not of every command.
*/
#ifndef FKS_CURLX_H
#define FKS_CURLX_H

#define CURL_DISABLE_TYPECHECK 1   /* curl_easy_setopt is ours below */
#include <curl/curl.h>

/* 0 once libcurl is loaded; FKS_EIO (message: the loader's) if it cannot be. */
int fks__curl_load(void);

CURLcode fks__curl_global_init(long flags);
CURL *fks__curl_easy_init(void);
CURLcode fks__curl_easy_setopt(CURL *h, CURLoption opt, ...);
CURLcode fks__curl_easy_perform(CURL *h);
CURLcode fks__curl_easy_getinfo(CURL *h, CURLINFO info, ...);
void fks__curl_easy_cleanup(CURL *h);
void fks__curl_easy_reset(CURL *h);
const char *fks__curl_easy_strerror(CURLcode code);
struct curl_slist *fks__curl_slist_append(struct curl_slist *list, const char *s);
void fks__curl_slist_free_all(struct curl_slist *list);
time_t fks__curl_getdate(const char *p, const time_t *unused);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init fks__curl_global_init
#define curl_easy_init fks__curl_easy_init
#define curl_easy_setopt fks__curl_easy_setopt
#define curl_easy_perform fks__curl_easy_perform
#define curl_easy_getinfo fks__curl_easy_getinfo
#define curl_easy_cleanup fks__curl_easy_cleanup
#define curl_easy_reset fks__curl_easy_reset
#define curl_easy_strerror fks__curl_easy_strerror
#define curl_slist_append fks__curl_slist_append
#define curl_slist_free_all fks__curl_slist_free_all
#define curl_getdate fks__curl_getdate

#endif
