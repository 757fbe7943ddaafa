/*
** fc.c: the Firecracker API client (libcurl over a Unix socket, json-c
** bodies). Only what branching and loading need:
**
**   PATCH /vm               {"state": "Paused" | "Resumed"}
**   PUT   /snapshot/create  {"snapshot_type": "Full" | "Diff",
**                            "snapshot_path": VMSTATE, "mem_file_path": MEM}
**   PUT   /snapshot/load    {"snapshot_path": VMSTATE,
**                            "mem_backend": {"backend_type": "File" | "Uffd",
**                                            "backend_path": MEM | SOCK},
**                            "track_dirty_pages" (>= 1.13) or
**                            "enable_diff_snapshots" (before): true,
**                            "resume_vm": true | false,
**                            "network_overrides": [{"iface_id", "host_dev_name"}],
**                            "vsock_override": {"uds_path"}}
**   GET   /                 instance info: "id", "state"
**   GET   /version          "firecracker_version"
**   GET   /machine-config   "mem_size_mib"
**   GET   /vm/config        "memory-hotplug" (present: more memory slots)
**
** Design
**  1. One curl easy handle per client, reused (libcurl keeps the
**     connection open between calls). CURLOPT_UNIX_SOCKET_PATH routes the
**     request; the host in the URL is a placeholder Firecracker ignores.
**  2. Every call has a total timeout and a connect timeout: a VMM that
**     hangs cannot hang a branch (FKS_ETIMEDOUT).
**  3. A non-2xx answer is FKS_EFIRECRACKER with Firecracker's
**     fault_message (or the raw body when it is not JSON); a socket that
**     is missing or refuses is FKS_ENOTFOUND / FKS_EIO naming the socket.
**  4. Response bodies are capped at 1 MiB: an API answer is small, and a
**     length read from a socket must not drive an allocation.
*/
#include "fc.h"

#include "curlx.h"
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "forkstore.h"
#include "util.h"

#define BODY_MAX (1 << 20)

struct fc_client {
    CURL *curl;
    char *sock;
    long timeout_ms;
    char *body;                  /* the last response body, NUL-terminated */
    size_t len;
    int overflow;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    fc_client *c = arg;
    size_t k = size * n;
    if (c->len + k > BODY_MAX) {
        c->overflow = 1;
        return 0;                /* makes curl fail the transfer */
    }
    char *nb = realloc(c->body, c->len + k + 1);
    if (!nb)
        return 0;
    memcpy(nb + c->len, p, k);
    c->body = nb;
    c->len += k;
    c->body[c->len] = 0;
    return k;
}

int fc_open(fc_client **out, const char *sock, long timeout_ms)
{
    *out = NULL;
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return fks__err(FKS_ERR, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    if (!sock || !*sock)
        return fks__err(FKS_EINVAL, "no API socket given (--api-sock)");
    fc_client *c = calloc(1, sizeof *c);
    if (!c || !(c->sock = strdup(sock)) || !(c->curl = curl_easy_init())) {
        fc_close(c);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    *out = c;
    return 0;
}

void fc_close(fc_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->sock);
    free(c->body);
    free(c);
}

/* The fault_message of a Firecracker error body, else the body itself. */
static void fault_of(const fc_client *c, char *out, size_t len)
{
    snprintf(out, len, "%s", c->body && c->len ? c->body : "(no body)");
    json_object *j = c->body ? json_tokener_parse(c->body) : NULL, *m;
    if (j && json_object_object_get_ex(j, "fault_message", &m) && json_object_is_type(m, json_type_string))
        snprintf(out, len, "%s", json_object_get_string(m));
    json_object_put(j);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = 0;
}

/* One request; body may be NULL. On success the response is in c->body. */
static int call(fc_client *c, const char *method, const char *path, json_object *body)
{
    char url[512], err[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = NULL;
    const char *payload = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    struct stat st;
    if (stat(c->sock, &st) != 0)
        return fks__errno(errno == ENOENT ? FKS_ENOTFOUND : FKS_EIO, errno, "API socket %s", c->sock);
    snprintf(url, sizeof url, "http://localhost%s", path);
    free(c->body);
    c->body = NULL;
    c->len = 0;
    c->overflow = 0;
    CURL *k = c->curl;
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_UNIX_SOCKET_PATH, c->sock);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, c);
    h = curl_slist_append(h, "Accept: application/json");
    if (payload) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    /* No "Expect: 100-continue" round trip: Firecracker does not send it. */
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    CURLcode cr = curl_easy_perform(k);
    curl_slist_free_all(h);
    if (cr != CURLE_OK) {
        if (cr == CURLE_OPERATION_TIMEDOUT)
            return fks__err(FKS_ETIMEDOUT, "%s %s: no answer from the VMM at %s within %ld ms", method, path,
                            c->sock, c->timeout_ms);
        if (c->overflow)
            return fks__err(FKS_EFIRECRACKER, "%s %s: answer larger than %d bytes", method, path, BODY_MAX);
        return fks__err(FKS_EIO, "%s %s via %s: %s", method, path, c->sock, err[0] ? err : curl_easy_strerror(cr));
    }
    long status = 0;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        char fault[512];
        fault_of(c, fault, sizeof fault);
        return fks__err(FKS_EFIRECRACKER, "%s %s: the VMM answered %ld: %s", method, path, status, fault);
    }
    return 0;
}

/* call() with a body built here and freed here. */
static int call_json(fc_client *c, const char *method, const char *path, json_object *body)
{
    if (!body)
        return fks__err(FKS_ENOMEM, "out of memory");
    int rc = call(c, method, path, body);
    json_object_put(body);
    return rc;
}

static json_object *state_body(const char *state)
{
    json_object *j = json_object_new_object();
    if (j)
        json_object_object_add(j, "state", json_object_new_string(state));
    return j;
}

int fc_pause(fc_client *c) { return call_json(c, "PATCH", "/vm", state_body("Paused")); }
int fc_resume(fc_client *c) { return call_json(c, "PATCH", "/vm", state_body("Resumed")); }

int fc_snapshot_create(fc_client *c, int diff, const char *vmstate_path, const char *mem_path)
{
    json_object *j = json_object_new_object();
    if (j) {
        json_object_object_add(j, "snapshot_type", json_object_new_string(diff ? "Diff" : "Full"));
        json_object_object_add(j, "snapshot_path", json_object_new_string(vmstate_path));
        json_object_object_add(j, "mem_file_path", json_object_new_string(mem_path));
    }
    return call_json(c, "PUT", "/snapshot/create", j);
}

void fc_set_timeout(fc_client *c, long timeout_ms) { c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000; }
long fc_timeout(const fc_client *c) { return c->timeout_ms; }

int fc_snapshot_load(fc_client *c, const fc_load_req *r)
{
    json_object *j = json_object_new_object(), *b = json_object_new_object();
    if (!j || !b) {
        json_object_put(j);
        json_object_put(b);
        return fks__err(FKS_ENOMEM, "out of memory");
    }
    json_object_object_add(b, "backend_type", json_object_new_string(r->uffd ? "Uffd" : "File"));
    json_object_object_add(b, "backend_path", json_object_new_string(r->mem_path));
    json_object_object_add(j, "snapshot_path", json_object_new_string(r->vmstate_path));
    json_object_object_add(j, "mem_backend", b);
    json_object_object_add(j, r->dirty_field ? r->dirty_field : "track_dirty_pages", json_object_new_boolean(1));
    json_object_object_add(j, "resume_vm", json_object_new_boolean(r->resume));
    if (r->n_net) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < r->n_net; i++) {
            const char *eq = strchr(r->net[i], '=');
            json_object *o = json_object_new_object();
            if (!eq || !o) {
                json_object_put(o);
                json_object_put(a);
                json_object_put(j);
                return fks__err(FKS_EINVAL, "network override '%s' is not IFACE=HOSTDEV", r->net[i]);
            }
            json_object_object_add(o, "iface_id", json_object_new_string_len(r->net[i], (int)(eq - r->net[i])));
            json_object_object_add(o, "host_dev_name", json_object_new_string(eq + 1));
            json_object_array_add(a, o);
        }
        json_object_object_add(j, "network_overrides", a);
    }
    if (r->vsock_uds) {
        json_object *v = json_object_new_object();
        if (v)
            json_object_object_add(v, "uds_path", json_object_new_string(r->vsock_uds));
        json_object_object_add(j, "vsock_override", v);
    }
    return call_json(c, "PUT", "/snapshot/load", j);
}

/* GETs path and returns its member key (owned by *doc; caller puts *doc). */
static int get_member(fc_client *c, const char *path, const char *key, json_type type, json_object **doc,
                      json_object **val)
{
    int rc = call(c, "GET", path, NULL);
    if (rc)
        return rc;
    *doc = c->body ? json_tokener_parse(c->body) : NULL;
    *val = NULL;
    if (!*doc || !json_object_object_get_ex(*doc, key, val) || !json_object_is_type(*val, type)) {
        json_object_put(*doc);
        *doc = NULL;
        return fks__err(FKS_EFIRECRACKER, "GET %s: the VMM's answer has no %s", path, key);
    }
    return 0;
}

int fc_instance(fc_client *c, char *id, size_t idlen, char *state, size_t statelen)
{
    json_object *doc = NULL, *v = NULL, *i = NULL;
    int rc = get_member(c, "/", "state", json_type_string, &doc, &v);
    if (rc)
        return rc;
    snprintf(state, statelen, "%s", json_object_get_string(v));
    snprintf(id, idlen, "%s",
             json_object_object_get_ex(doc, "id", &i) && json_object_is_type(i, json_type_string)
                 ? json_object_get_string(i) : "");
    json_object_put(doc);
    return 0;
}

int fc_version(fc_client *c, char *ver, size_t len)
{
    json_object *doc = NULL, *v = NULL;
    int rc = get_member(c, "/version", "firecracker_version", json_type_string, &doc, &v);
    if (rc)
        return rc;
    snprintf(ver, len, "%s", json_object_get_string(v));
    json_object_put(doc);
    return 0;
}

int fc_hotplug(fc_client *c)
{
    json_object *doc = NULL, *v = NULL;
    if (get_member(c, "/vm/config", "memory-hotplug", json_type_object, &doc, &v) != 0)
        return 0;
    json_object_put(doc);
    return 1;
}

int fc_mem_size_mib(fc_client *c, int64_t *mib)
{
    json_object *doc = NULL, *v = NULL;
    int rc = get_member(c, "/machine-config", "mem_size_mib", json_type_int, &doc, &v);
    if (rc)
        return rc;
    *mib = json_object_get_int64(v);
    json_object_put(doc);
    return 0;
}
