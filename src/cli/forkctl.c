/*
** forkctl.c: the command line of forkstore.
**
** It uses only the public header, forkstore.h. Each command is a function
** cmd_<name>(argc, argv) returning an exit code:
**
**   0 ok, 1 error, 2 usage or invalid input, 3 not found,
**   4 store locked, 5 damaged data found, 7 sql stopped at --timeout or
**   --max-rows.
**
** Human output goes to stdout, errors to stderr as "forkctl: <message>".
** --json prints json-c objects instead of tables. A progress line is drawn
** on stderr only when stderr is a terminal and --quiet is not given.
*/
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "forkstore.h"

#define EX_OK 0
#define EX_ERR 1
#define EX_USAGE 2
#define EX_NOTFOUND 3
#define EX_LOCKED 4
#define EX_CORRUPT 5
#define EX_REFUSED 6
#define EX_LIMIT 7          /* sql: stopped at --timeout or --max-rows */

static const char *g_store;   /* --store, else the default */
static int g_quiet;

static int exit_code(int rc)
{
    switch (rc) {
    case FKS_OK: return EX_OK;
    case FKS_EINVAL: return EX_USAGE;
    case FKS_ENOTFOUND: return EX_NOTFOUND;
    case FKS_ELOCKED: return EX_LOCKED;
    case FKS_ECORRUPT: return EX_CORRUPT;
    case FKS_EREFUSED: return EX_REFUSED;
    default: return EX_ERR;
    }
}

/* Writes s with control characters escaped (\n, \t, \r, \xNN; also the
** UTF-8 C1 controls U+0080..U+009F): a tag, path or SQL text that a user or
** a damaged catalog put there never reaches the terminal raw. */
static void put_esc(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            fprintf(f, "\\u%04x", *++p);
        else
            fputc(*p, f);
    }
}

/* s escaped into b (at least 4 * strlen(s) + 1 bytes). */
static char *esc_into(char *b, const char *s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
            unsigned v = *p == 0xc2 ? *++p : *p;
            o += (size_t)sprintf(b + o, "\\x%02x", v);
        } else {
            b[o++] = (char)*p;
        }
    }
    b[o] = 0;
    return b;
}

/* A tag (or other short name: up to 140 bytes shown) for a human line of
** output, escaped; four calls may share one printf. */
static const char *esc(const char *s)
{
    static char buf[4][4 * 140 + 1];
    static int k;
    char in[141];
    snprintf(in, sizeof in, "%s", s);
    return esc_into(buf[k++ & 3], in);
}

/* s escaped, whole, in a new string (NULL out of memory). */
static char *esc_dup(const char *s)
{
    char *b = malloc(4 * strlen(s) + 1);
    return b ? esc_into(b, s) : NULL;
}

static int fail(int rc)
{
    fputs("forkctl: ", stderr);
    put_esc(stderr, fks_errmsg());
    fputc('\n', stderr);
    /* A damaged or missing catalog beside chunk files: say the way back. */
    if (rc == FKS_ECORRUPT && strstr(fks_errmsg(), "catalog.db"))
        fprintf(stderr, "forkctl: hint: run `forkctl recover` to rebuild the catalog from the chunk files\n");
    return exit_code(rc);
}

__attribute__((format(printf, 2, 3)))
static int usage_err(const char *cmd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "forkctl %s: ", cmd);
    put_esc(stderr, msg);
    fprintf(stderr, "\nTry 'forkctl %s --help'.\n", cmd);
    return EX_USAGE;
}

static void human(char *buf, size_t len, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (b >= 1024 && i < 5) {
        b /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%.0f B", b);
    else
        snprintf(buf, len, "%.1f %s", b, u[i]);
}

static void age(char *buf, size_t len, int64_t ms)
{
    int64_t now = (int64_t)time(NULL) * 1000, d = (now - ms) / 1000;
    if (d < 0)
        d = 0;
    if (d < 60)
        snprintf(buf, len, "%llds ago", (long long)d);
    else if (d < 3600)
        snprintf(buf, len, "%lldm ago", (long long)(d / 60));
    else if (d < 86400)
        snprintf(buf, len, "%lldh ago", (long long)(d / 3600));
    else
        snprintf(buf, len, "%lldd ago", (long long)(d / 86400));
}

/* ---- progress line ---- */

struct progress {
    const char *what;
    double start;
    int drawn;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FORKCTL_PROGRESS_LOG=FILE (a test hook, t_progress.sh): every call of
** the library's progress callback is appended to FILE as "what done total
** seconds" instead of drawn, whatever stderr is. */
static FILE *g_plog;

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
    struct progress *p = arg;
    double el = now_s() - p->start;
    if (g_plog) {
        fprintf(g_plog, "%s %llu %llu %.3f\n", p->what, (unsigned long long)done, (unsigned long long)total, el);
        fflush(g_plog);
        return;
    }
    char d[32], t[32];
    human(d, sizeof d, (double)done);
    human(t, sizeof t, (double)total);
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r%s %s / %s  %.1f MB/s  ETA %.0fs   ", p->what, d, t, rate / 1e6, eta);
    p->drawn = 1;
}

static fks_progress_fn progress_for(struct progress *p, const char *what)
{
    p->what = what;
    p->start = now_s();
    p->drawn = 0;
    const char *log = getenv("FORKCTL_PROGRESS_LOG");
    if (log && *log && !g_plog && !(g_plog = fopen(log, "ae")))
        fprintf(stderr, "forkctl: FORKCTL_PROGRESS_LOG %s: %s\n", log, strerror(errno));
    if (g_plog)
        return progress_cb;
    return (!g_quiet && isatty(2)) ? progress_cb : NULL;
}

static void progress_end(struct progress *p)
{
    if (p->drawn)
        fputc('\n', stderr);
}

/* ---- store helpers ---- */

static int open_store(fks_store **s, int flags)
{
    char def[4096];
    const char *dir = g_store;
    if (!dir) {
        int rc = fks_default_dir(def, sizeof def);
        if (rc)
            return rc;
        dir = def;
    }
    return fks_open(s, dir, flags);
}

static void print_json(json_object *o)
{
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static json_object *snap_json(const fks_snapinfo *i)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tag", json_object_new_string(i->tag));
    json_object_object_add(o, "parent", i->parent[0] ? json_object_new_string(i->parent) : NULL);
    json_object_object_add(o, "created_ms", json_object_new_int64(i->created_ms));
    json_object_object_add(o, "depth", json_object_new_int(i->depth));
    json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)i->logical_bytes));
    json_object_object_add(o, "memory_bytes", json_object_new_int64((int64_t)i->memory_bytes));
    json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t)i->stored_bytes));
    json_object_object_add(o, "rootfs", json_object_new_boolean(i->has_rootfs));
#define OPT(k, v) json_object_object_add(o, k, (v) >= 0 ? json_object_new_int64(v) : NULL)
    OPT("pause_ms", i->pause_ms);
    OPT("snapshot_ms", i->snapshot_ms);
    OPT("ingest_ms", i->ingest_ms);
    OPT("diff_bytes", i->diff_bytes);
#undef OPT
    return o;
}

/* Parses the options every command shares; returns -1 to go on, else an
** exit code. */
enum { OPT_STORE = 1000, OPT_JSON, OPT_QUIET, OPT_HELP };
#define SHORT_OPTS "hq"   /* -h = --help, -q = --quiet */
#define COMMON_OPTS \
    {"store", required_argument, NULL, OPT_STORE}, {"json", no_argument, NULL, OPT_JSON}, \
    {"quiet", no_argument, NULL, OPT_QUIET}, {"help", no_argument, NULL, OPT_HELP}

static char **g_argv;   /* the command's argv, for messages */
static const char *argv_opt(void)
{
    return g_argv && optind > 0 ? g_argv[optind - 1] : "?";
}

static int common_opt(int c, const char *cmd, const char *help, int *json)
{
    switch (c) {
    case OPT_STORE: g_store = optarg; return -1;
    case OPT_JSON:
        if (!json)
            return usage_err(cmd, "%s has no --json output", cmd);
        *json = 1;
        return -1;
    case 'q': case OPT_QUIET: g_quiet = 1; return -1;
    case 'h': case OPT_HELP: fputs(help, stdout); return EX_OK;
    default: return usage_err(cmd, "unknown option '%s'", argv_opt());
    }
}

/* ---- numbers in arguments ----
** Every number forkctl reads (flags and sizes) goes through num_parse:
** plain decimal only ([+-]digits[.digits][e[+-]digits]), so "nan", "inf",
** hex and leading blanks never reach strtod; then a finite check, the
** unit, and the range. A refused value is a usage error (exit 2) whose
** message says what is wrong and what is allowed. */

/* The number at the start of s: 0 and *end past it; -1 if s does not
** start with a plain decimal number, -2 if it overflows a double. */
static int num_prefix(const char *s, double *out, const char **end)
{
    const char *p = s;
    int digits = 0;
    if (*p == '+' || *p == '-')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (!digits)
        return -1;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (*q >= '0' && *q <= '9') {
            while (*q >= '0' && *q <= '9')
                q++;
            p = q;
        }
    }
    char buf[400];
    if ((size_t)(p - s) >= sizeof buf)
        return -2;                  /* 400 digits: no range here is that wide */
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = 0;
    char *e;
    errno = 0;
    double v = strtod(buf, &e);
    if (*e)
        return -1;
    if ((errno == ERANGE && v != 0) || !isfinite(v))
        return -2;
    *out = v;
    *end = p;
    return 0;
}

/* Why v is not in [lo, hi] (or not whole, if integer), NULL if it is.
** lo and hi stay within +-2^62, so the cast is defined. */
static const char *num_why(double v, double lo, double hi, int integer)
{
    if (!(v >= lo && v <= hi))
        return "out of range";
    if (integer && v != (double)(long long)v)
        return "not a whole number";
    return NULL;
}

/* A whole argument as a number in [lo, hi] (a whole one if integer).
** Returns -1 to go on, else the usage exit code after the message
** "FLAG takes WHAT, got 'ARG' (WHY)". */
static int num_arg(const char *cmd, const char *flag, const char *what, const char *arg, double lo,
                   double hi, int integer, double *out)
{
    const char *end;
    const char *why = NULL;
    double v = 0;
    int r;
    if ((r = num_prefix(arg, &v, &end)) != 0)
        why = r == -2 ? "out of range" : "not a decimal number";
    else if (*end)
        why = "trailing characters";
    else
        why = num_why(v, lo, hi, integer);
    if (why)
        return usage_err(cmd, "%s takes %s, got '%s' (%s)", flag, what, arg, why);
    *out = v;
    return -1;
}

/* BYTES with an optional K, M, G or T suffix (KiB, MiB, ... too), whole
** bytes in [lo, hi]. Returns -1 to go on, else the usage exit code. */
static int size_arg(const char *cmd, const char *flag, const char *arg, uint64_t lo, uint64_t hi,
                    uint64_t *out)
{
    const char *end, *why = NULL;
    double v = 0;
    int r;
    char what[128];
    snprintf(what, sizeof what, "a size in bytes from %llu to %llu (suffixes K, M, G, T)",
             (unsigned long long)lo, (unsigned long long)hi);
    if ((r = num_prefix(arg, &v, &end)) != 0) {
        why = r == -2 ? "out of range" : "not a decimal number";
    } else {
        int unit = 1;
        switch (*end) {
        case 'k': case 'K': v *= 1024; break;
        case 'm': case 'M': v *= 1024.0 * 1024; break;
        case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
        case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; break;
        default: unit = 0;
        }
        if (unit && end[1] == 'i' && end[2] == 'B')
            end += 3;
        else if (unit)
            end++;
        if (*end)
            why = "unknown unit or trailing characters";
        else
            why = num_why(v, (double)lo, (double)hi, 1);
    }
    if (why)
        return usage_err(cmd, "%s takes %s, got '%s' (%s)", flag, what, arg, why);
    *out = (uint64_t)v;
    return -1;
}

#define MAX_DURATION_S (100.0 * 365 * 86400)   /* 100 years: fits any clock arithmetic */

/* DURATION: a number of seconds with an optional unit s, m, h, d, w, y
** (365 days), in (0, 100y]. Returns -1 to go on, else the usage exit code. */
static int duration_arg(const char *cmd, const char *flag, const char *arg, double *out)
{
    const char *end, *why = NULL;
    double v = 0;
    int r;
    if ((r = num_prefix(arg, &v, &end)) != 0) {
        why = r == -2 ? "out of range" : "not a decimal number";
    } else {
        switch (*end) {
        case 0: case 's': break;
        case 'm': v *= 60; break;
        case 'h': v *= 3600; break;
        case 'd': v *= 86400; break;
        case 'w': v *= 7 * 86400; break;
        case 'y': v *= 365 * 86400; break;
        default: why = "unknown unit"; break;
        }
        if (!why && *end && end[1])
            why = "trailing characters";
        if (!why && !(v > 0 && v <= MAX_DURATION_S))
            why = "out of range";
    }
    if (why)
        return usage_err(cmd, "%s takes a duration above 0 and at most 100 years: a number with a unit "
                         "s, m, h, d, w or y (30s, 10m, 2h, 7d, 4w, 1y), got '%s' (%s)", flag, arg, why);
    *out = v;
    return -1;
}

/* ---- commands ---- */

static const char H_INIT[] =
    "usage: forkctl init [DIR] [--chunk-size BYTES] [--json]\n"
    "Creates a new store in DIR (default: --store, $FORKSTORE_DIR, else\n"
    "$XDG_DATA_HOME/forkstore). Chunk files are preallocated to --chunk-size\n"
    "bytes (default 16 MiB; suffixes K, M, G).\n";

static int cmd_init(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"chunk-size", required_argument, NULL, 'c'}, {0}};
    uint64_t cs = 0;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'c') {
            if ((r = size_arg("init", "--chunk-size", optarg, 1u << 20, 1ull << 32, &cs)) >= 0)
                return r;
        } else if ((r = common_opt(c, "init", H_INIT, &json)) >= 0)
            return r;
    }
    if (optind < argc)
        g_store = argv[optind++];
    if (optind < argc)
        return usage_err("init", "unexpected argument '%s'", argv[optind]);
    char def[4096];
    const char *dir = g_store;
    int rc;
    if (!dir) {
        if ((rc = fks_default_dir(def, sizeof def)) != 0)
            return fail(rc);
        dir = def;
    }
    if ((rc = fks_init(dir, cs)) != 0)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "store", json_object_new_string(dir));
        print_json(j);
    } else if (!g_quiet) {
        printf("initialized empty store in %s\n", dir);
    }
    return EX_OK;
}

static const char H_INGEST[] =
    "usage: forkctl ingest --tag TAG [--parent PARENT] --memory FILE [--diff]\n"
    "                      --vmstate FILE [--file NAME=PATH]... [--json] [--quiet]\n"
    "Stores a snapshot. --memory is a Firecracker memory file: Full (raw guest\n"
    "RAM) or, with --diff, a sparse Diff whose holes inherit PARENT's pages.\n"
    "--file adds any other named file (rootfs=PATH, ...). Every 4 KiB page is\n"
    "stored once across the whole store; zero pages are never stored.\n";

static int cmd_ingest(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS,
        {"tag", required_argument, NULL, 't'}, {"parent", required_argument, NULL, 'p'},
        {"memory", required_argument, NULL, 'm'}, {"diff", no_argument, NULL, 'd'},
        {"vmstate", required_argument, NULL, 'v'}, {"file", required_argument, NULL, 'f'}, {0}};
    fks_ingest_opts io = {0};
    fks_artifact_in arts[64];
    size_t n = 0;
    const char *memory = NULL, *vmstate = NULL;
    int diff = 0, json = 0, c, r;
    char names[64][65];

    io.pause_ms = io.snapshot_ms = io.diff_bytes = -1;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 't': io.tag = optarg; break;
        case 'p': io.parent = optarg; break;
        case 'm': memory = optarg; break;
        case 'd': diff = 1; break;
        case 'v': vmstate = optarg; break;
        case 'f': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || eq - optarg > 64 || !eq[1])
                return usage_err("ingest", "--file takes NAME=PATH, got '%s'", optarg);
            if (n >= 60)
                return usage_err("ingest", "%s", "too many --file options");
            snprintf(names[n], sizeof names[n], "%.*s", (int)(eq - optarg), optarg);
            arts[n] = (fks_artifact_in){names[n], eq + 1, 0};
            n++;
            break;
        }
        default:
            if ((r = common_opt(c, "ingest", H_INGEST, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("ingest", "unexpected argument '%s'", argv[optind]);
    if (!io.tag)
        return usage_err("ingest", "%s", "--tag is required");
    if (!memory)
        return usage_err("ingest", "%s", "--memory is required");
    if (!vmstate)
        return usage_err("ingest", "%s", "--vmstate is required");
    if (diff && !io.parent)
        return usage_err("ingest", "%s", "--diff needs --parent (a diff's holes are the parent's pages)");
    arts[n++] = (fks_artifact_in){"memory", memory, diff};
    arts[n++] = (fks_artifact_in){"vmstate", vmstate, 0};
    io.artifacts = arts;
    io.n_artifacts = n;

    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    struct progress p;
    io.progress = progress_for(&p, "ingest");
    io.progress_arg = &p;
    fks_ingest_stats st;
    rc = fks_ingest(&st, s, &io);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(io.tag));
        json_object_object_add(j, "logical_bytes", json_object_new_int64((int64_t)st.logical_bytes));
        json_object_object_add(j, "read_bytes", json_object_new_int64((int64_t)st.read_bytes));
        json_object_object_add(j, "pages", json_object_new_int64((int64_t)st.pages));
        json_object_object_add(j, "zero_pages", json_object_new_int64((int64_t)st.zero_pages));
        json_object_object_add(j, "dedup_pages", json_object_new_int64((int64_t)st.dedup_pages));
        json_object_object_add(j, "new_pages", json_object_new_int64((int64_t)st.new_pages));
        json_object_object_add(j, "stored_bytes", json_object_new_int64((int64_t)st.stored_bytes));
        json_object_object_add(j, "seconds", json_object_new_double(st.seconds));
        print_json(j);
    } else if (!g_quiet) {
        char a[32], b[32];
        human(a, sizeof a, (double)st.read_bytes);
        human(b, sizeof b, (double)st.stored_bytes);
        printf("%s: %llu pages read (%s): %llu zero, %llu already stored, %llu new (%s stored) in %.2fs\n",
               io.tag, (unsigned long long)st.pages, a, (unsigned long long)st.zero_pages,
               (unsigned long long)st.dedup_pages, (unsigned long long)st.new_pages, b, st.seconds);
    }
    return EX_OK;
}

static const char H_RESTORE[] =
    "usage: forkctl restore TAG --out DIR [--force] [--sync] [--json] [--quiet]\n"
    "       forkctl restore TAG --api-sock SOCK [--staging DIR] [--timeout MS] [--paused]\n"
    "                       [--network-override IFACE=HOSTDEV]... [--vsock-uds PATH]\n"
    "                       [--rootfs PATH] [--vm-id ID] [--force-version]\n"
    "                       [--jail-root DIR --jail-uid U --jail-gid G] [--json]\n"
    "Writes TAG's files into DIR: memory.bin (zero pages as holes), vmstate and\n"
    "every other stored file, each byte-identical to what was ingested. Every\n"
    "page is checked against its hash. Existing files are not replaced without\n"
    "--force. All files are placed or none: a failure puts replaced files back.\n"
    "--sync fsyncs the files before they are renamed into place.\n"
    "With --api-sock, restores into a new private directory under --staging\n"
    "(default /dev/shm) and loads it into the fresh Firecracker VMM listening on\n"
    "SOCK (PUT /snapshot/load, resumed unless --paused); prints the directory,\n"
    "which the VM's memory is mapped from: remove it once that VM is gone.\n"
    "Before any load request it asks GET /version and refuses (exit 6) a\n"
    "Firecracker outside 1.10 .. 1.16 (--force-version skips the version checks),\n"
    "a snapshot whose format version that Firecracker cannot load, and options\n"
    "it lacks: --network-override (network_overrides, from 1.12), --vsock-uds\n"
    "(vsock_override, from 1.16). --rootfs places the stored rootfs at PATH (the\n"
    "drive path the vmstate names; forkctl cannot read it from the vmstate).\n"
    "TAG is recorded as the loaded VM's last snapshot (see branch --vm-id), so\n"
    "`branch --parent TAG` can take a Diff. With --jail-root, staging lives in\n"
    "the jail's chroot DIR, paths sent to the VMM and --rootfs are inside it, and\n"
    "the files belong to the jail's --jail-uid/--jail-gid.\n"
    "With --lazy [--uffd-sock PATH] [--prefetch on|off|BYTES] [--prefetch-time S]\n"
    "[--no-record] [--lease-ttl S] [--accept-timeout S] [--server-log FILE]\n"
    "[--cache-cold] [--cache-pages N] [--remote NAME], the memory is not restored:\n"
    "a page server (see serve-pages) is started in the background on PATH\n"
    "(default SOCK.pages),\n"
    "the load names it as the Uffd memory backend, and the guest's pages come from\n"
    "the store as it touches them. Returns once the VM runs and prints the\n"
    "server's pid; the server ends with the VMM. Its messages go to --server-log\n"
    "(default: none). A TAG the store lacks is served from the remote (--remote\n"
    "NAME, default the only one; see serve-pages).\n";

/* ---- lazy restore: the page server (fks_serve_pages) ---- */

struct lazy_args {
    int on;                    /* restore --lazy */
    const char *sock;          /* the page server's socket (host path) */
    const char *log;           /* the background server's stderr; NULL: /dev/null */
    fks_serve_opts so;
};

static void lazy_defaults(struct lazy_args *la)
{
    memset(la, 0, sizeof *la);
    la->so.listen_fd = la->so.stop_fd = la->so.ready_fd = -1;
    la->so.prefetch = 1;
    la->so.record = 1;
    la->so.from_remote = 1;
}

/* --prefetch on|off|BYTES. */
static int prefetch_arg(const char *cmd, const char *arg, fks_serve_opts *so)
{
    if (!strcmp(arg, "on")) {
        so->prefetch = 1, so->prefetch_bytes = 0;
        return -1;
    }
    if (!strcmp(arg, "off")) {
        so->prefetch = 0;
        return -1;
    }
    so->prefetch = 1;
    return size_arg(cmd, "--prefetch", arg, FKS_PAGE_SIZE, 1ull << 50, &so->prefetch_bytes);
}

/* The options both lazy commands take; -1 if c is not one of them (or to
** go on), else the usage exit code. *used = 1 when it was one. */
static int lazy_opt(int c, const char *cmd, struct lazy_args *la, int *used)
{
    double v = 0;
    int r = -1;
    *used = 1;
    switch (c) {
    case 1101: la->sock = optarg; break;
    case 1102: r = prefetch_arg(cmd, optarg, &la->so); break;
    case 1103:
        if ((r = num_arg(cmd, "--prefetch-time", "a number of seconds from 0 (no limit) to 3600", optarg, 0, 3600, 0,
                         &v)) < 0)
            la->so.prefetch_max_s = v;
        break;
    case 1104: la->so.record = 0; break;
    case 1105:
        if ((r = num_arg(cmd, "--lease-ttl", "a number of seconds from 1 to 86400", optarg, 1, 86400, 0, &v)) < 0)
            la->so.lease_ttl_s = v;
        break;
    case 1106:
        if ((r = num_arg(cmd, "--accept-timeout", "a number of seconds from 1 to 86400", optarg, 1, 86400, 0, &v)) < 0)
            la->so.accept_timeout_s = v;
        break;
    case 1107:
        if ((r = num_arg(cmd, "--vms", "a whole number from 1 to 64", optarg, 1, 64, 1, &v)) < 0)
            la->so.max_vms = (int)v;
        break;
    case 1108: la->log = optarg; break;
    case 1109: la->on = 1; break;
    case 1110: la->so.cold_cache = 1; break;
    case 1112: la->so.remote = optarg; break;
    case 1111:
        if ((r = num_arg(cmd, "--cache-pages", "a whole number of pages from 1 to 16777216", optarg, 1, 16777216, 1,
                         &v)) < 0)
            la->so.cache_pages = (int)v;
        break;
    default: *used = 0;
    }
    return r;
}

#define LAZY_OPTS \
    {"socket", required_argument, NULL, 1101}, {"uffd-sock", required_argument, NULL, 1101}, \
    {"prefetch", required_argument, NULL, 1102}, {"prefetch-time", required_argument, NULL, 1103}, \
    {"no-record", no_argument, NULL, 1104}, {"lease-ttl", required_argument, NULL, 1105}, \
    {"accept-timeout", required_argument, NULL, 1106}, {"vms", required_argument, NULL, 1107}, \
    {"server-log", required_argument, NULL, 1108}, {"lazy", no_argument, NULL, 1109}, \
    {"cache-cold", no_argument, NULL, 1110}, {"cache-pages", required_argument, NULL, 1111}, \
    {"remote", required_argument, NULL, 1112}

static json_object *serve_stats_json(const char *tag, const fks_serve_stats *st)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "tag", json_object_new_string(tag));
    json_object_object_add(j, "vms", json_object_new_int64((int64_t)st->vms));
    json_object_object_add(j, "faults", json_object_new_int64((int64_t)st->faults));
    json_object_object_add(j, "pages_demand", json_object_new_int64((int64_t)st->pages_demand));
    json_object_object_add(j, "pages_prefetch", json_object_new_int64((int64_t)st->pages_prefetch));
    json_object_object_add(j, "pages_zero", json_object_new_int64((int64_t)st->pages_zero));
    json_object_object_add(j, "pages_removed", json_object_new_int64((int64_t)st->pages_removed));
    json_object_object_add(j, "eexist", json_object_new_int64((int64_t)st->eexist));
    json_object_object_add(j, "cache_hits", json_object_new_int64((int64_t)st->cache_hits));
    json_object_object_add(j, "blocks_decoded", json_object_new_int64((int64_t)st->blocks_decoded));
    json_object_object_add(j, "bytes_decoded", json_object_new_int64((int64_t)st->bytes_decoded));
    json_object_object_add(j, "fault_p50_us", json_object_new_double(st->fault_p50_us));
    json_object_object_add(j, "fault_p99_us", json_object_new_double(st->fault_p99_us));
    json_object_object_add(j, "working_set_pages", json_object_new_int64((int64_t)st->working_set_pages));
    json_object_object_add(j, "working_set_from",
                           st->working_set_from[0] ? json_object_new_string(st->working_set_from) : NULL);
    json_object_object_add(j, "prefetch_seconds", json_object_new_double(st->prefetch_s));
    json_object_object_add(j, "seconds", json_object_new_double(st->seconds));
    json_object_object_add(j, "remote", st->remote[0] ? json_object_new_string(st->remote) : NULL);
    if (st->remote[0]) {
        json_object_object_add(j, "remote_requests", json_object_new_int64((int64_t)st->rs.requests));
        json_object_object_add(j, "remote_range_gets", json_object_new_int64((int64_t)st->rs.range_gets));
        json_object_object_add(j, "remote_bytes_down", json_object_new_int64((int64_t)st->rs.bytes_down));
        json_object_object_add(j, "remote_range_bytes", json_object_new_int64((int64_t)st->rs.range_bytes));
        json_object_object_add(j, "remote_pages", json_object_new_int64((int64_t)st->rs.pages_remote));
        json_object_object_add(j, "local_pages", json_object_new_int64((int64_t)st->rs.pages_local));
        json_object_object_add(j, "pulled", json_object_new_boolean(st->pulled));
        json_object_object_add(j, "pull_seconds", json_object_new_double(st->pull_s));
        json_object_object_add(j, "pull_bytes_down", json_object_new_int64((int64_t)st->pull_bytes_down));
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        json_object_object_add(j, "peak_rss_kib", json_object_new_int64((int64_t)ru.ru_maxrss));
    return j;
}

static void serve_stats_text(FILE *f, const char *tag, const fks_serve_stats *st)
{
    fprintf(f, "%s: served %llu VM(s) for %.1fs: %llu faults, %llu pages on demand, %llu by prefetch, %llu zero, "
            "%llu removed; %llu blocks decoded (%llu bytes), %llu cache hits; fault p50 %.1f us, p99 %.1f us\n", tag,
            (unsigned long long)st->vms, st->seconds, (unsigned long long)st->faults,
            (unsigned long long)st->pages_demand, (unsigned long long)st->pages_prefetch,
            (unsigned long long)st->pages_zero, (unsigned long long)st->pages_removed,
            (unsigned long long)st->blocks_decoded, (unsigned long long)st->bytes_decoded,
            (unsigned long long)st->cache_hits, st->fault_p50_us, st->fault_p99_us);
    if (st->remote[0])
        fprintf(f, "%s: from remote %s: %llu pages in %llu Range GETs (%llu bytes), %llu pages from the store, "
                "%llu requests; working set %llu pages%s%s; %s\n", tag, st->remote,
                (unsigned long long)st->rs.pages_remote, (unsigned long long)st->rs.range_gets,
                (unsigned long long)st->rs.range_bytes, (unsigned long long)st->rs.pages_local,
                (unsigned long long)st->rs.requests, (unsigned long long)st->working_set_pages,
                st->working_set_from[0] ? " from " : "", st->working_set_from,
                st->pulled ? "pulled into the store" : "NOT pulled into the store");
}

/* Runs the server until its VMs are gone or SIGTERM/SIGINT/SIGHUP. */
static int serve_run(fks_serve_stats *st, const char *tag, struct lazy_args *la)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    la->so.stop_fd = signalfd(-1, &set, SFD_CLOEXEC);
    la->so.socket = la->sock;
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return rc;
    rc = fks_serve_pages(st, s, tag, &la->so);
    fks_close(s);
    return rc;
}

/* restore --lazy: starts the page server in the background, listening on
** la->sock, and returns once it listens. Its first byte on the pipe says
** ready (1) or failed (0, then the message). */
static int lazy_start(pid_t *pid, const char *tag, struct lazy_args *la)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return usage_err("restore", "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t c = fork();
    if (c < 0)
        return usage_err("restore", "fork: %s", strerror(errno));
    if (c == 0) {
        close(p[0]);
        setsid();
        int nul = open("/dev/null", O_RDWR);
        int lf = la->log ? open(la->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : nul;
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(lf < 0 ? nul : lf, 2);
        la->so.ready_fd = dup(p[1]);
        fks_serve_stats st;
        int rc = serve_run(&st, tag, la);
        if (rc) {
            char m[1100];
            int n = snprintf(m, sizeof m, "%c%s", 0, fks_errmsg());
            ssize_t w = write(p[1], m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1);
            (void)w;
            fprintf(stderr, "forkctl: page server of %s: %s\n", tag, fks_errmsg());
        } else {
            serve_stats_text(stderr, tag, &st);
        }
        _exit(rc ? exit_code(rc) : EX_OK);
    }
    close(p[1]);
    char buf[1100] = {0};
    size_t have = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (have < sizeof buf - 1 && poll(&pf, 1, 60000) > 0) {
        ssize_t n = read(p[0], buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (buf[0] == 1)
            break;
    }
    close(p[0]);
    if (have >= 1 && buf[0] == 1) {
        *pid = c;
        return -1;
    }
    kill(c, SIGTERM);
    int ws = 0;
    waitpid(c, &ws, 0);
    buf[have] = 0;
    fprintf(stderr, "forkctl: restore: the page server did not start: %s\n", have > 1 ? buf + 1 : "it exited");
    return WIFEXITED(ws) && WEXITSTATUS(ws) ? WEXITSTATUS(ws) : EX_ERR;
}

/* Parses a positive number of milliseconds for --timeout. */
static int parse_ms(const char *cmd, const char *arg, long *out)
{
    double v = 0;
    int r = num_arg(cmd, "--timeout", "a whole number of milliseconds from 1 to 3600000", arg, 1, 3600000, 1, &v);
    if (r < 0)
        *out = (long)v;
    return r;
}

/* --jail-root/--jail-uid/--jail-gid: the options of a jailed VMM. */
struct jail_args {
    char root[4096];
    fks_jail j;
};

static int parse_id(const char *cmd, const char *opt, const char *arg, long *out)
{
    double v = 0;
    int r = num_arg(cmd, opt, "a numeric id from 0 to 4294967294", arg, 0, 4294967294.0, 1, &v);
    if (r < 0)
        *out = (long)v;
    return r;
}

static int jail_check(const char *cmd, struct jail_args *ja, const char *root)
{
    if (!root) {
        if (ja->j.uid >= 0 || ja->j.gid >= 0)
            return usage_err(cmd, "%s", "--jail-uid/--jail-gid need --jail-root DIR");
        return -1;
    }
    if (!realpath(root, ja->root))
        return usage_err(cmd, "--jail-root %s: %s", root, strerror(errno));
    if (strcmp(ja->root, "/") == 0)
        return usage_err(cmd, "%s", "--jail-root / is no jail");
    ja->j.root = ja->root;
    return -1;
}

static int restore_load(const char *tag, fks_load_opts *lo, int json, struct lazy_args *la)
{
    fks_store *s = NULL;
    pid_t server = 0;
    /* static: la and lo keep pointing at it after this returns */
    static char lsock[4200];
    if (la->on) {
        /* the socket: as given, else beside the API socket; the VMM sees it
        ** inside its jail */
        if (snprintf(lsock, sizeof lsock, "%s%s", la->sock ? la->sock : lo->api_sock, la->sock ? "" : ".pages") >=
            (int)sizeof lsock - 8)
            return usage_err("restore", "%s", "socket path too long");
        la->sock = lsock;
        lo->uffd_sock = lsock;
        if (lo->jail.root) {
            size_t n = strlen(lo->jail.root);
            char abs[4096], rel[4200];
            snprintf(rel, sizeof rel, "%s", lsock);        /* lsock is rewritten from it */
            if (!realpath(".", abs) || (rel[0] != '/' && snprintf(lsock, sizeof lsock, "%s/%s", abs, rel) < 0))
                return usage_err("restore", "%s", "cannot resolve the page server's socket path");
            if (strncmp(lsock, lo->jail.root, n) != 0 || lsock[n] != '/')
                return usage_err("restore", "--uffd-sock %s is not inside --jail-root %s", lsock, lo->jail.root);
            lo->uffd_sock = lsock + n;
        }
        int r = lazy_start(&server, tag, la);
        if (r >= 0)
            return r;
    }
    /* Writable to record the loaded VM; a store this user may only read
    ** still loads (the warning below says what is lost). */
    int rc = open_store(&s, 0);
    if (rc == FKS_EPERM || rc == FKS_EIO || rc == FKS_EINVAL)
        rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    fks_load_result lr;
    double t0 = now_s();
    rc = fks_load(&lr, s, tag, lo);
    fks_close(s);
    if (rc && server > 0) {
        /* refused before the load: the server would wait for a VMM that
        ** never comes; after a failed load the VMM exits and so would it */
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    if (rc) {
        if (rc == FKS_EREFUSED)
            fprintf(stderr, "forkctl: %s\nforkctl: nothing was sent to the VMM's load; load the snapshot into a "
                    "Firecracker of its own version, or pass --force-version to skip the check\n", fks_errmsg());
        return rc == FKS_EREFUSED ? exit_code(rc) : fail(rc);
    }
    double ms = (now_s() - t0) * 1000;
    if (!lr.recorded)
        fprintf(stderr, "forkctl: warning: the loaded VM is not recorded in the store: `branch --parent %s` "
                "will be refused; take --full\n", tag);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(tag));
        json_object_object_add(j, "api_sock", json_object_new_string(lo->api_sock));
        json_object_object_add(j, "staging", json_object_new_string(lr.staging));
        json_object_object_add(j, "load_ms", json_object_new_double(ms));
        json_object_object_add(j, "paused", json_object_new_boolean(lo->paused));
        json_object_object_add(j, "firecracker_version", lr.fc_version[0] ? json_object_new_string(lr.fc_version) : NULL);
        json_object_object_add(j, "format_version",
                               lr.format_version[0] ? json_object_new_string(lr.format_version) : NULL);
        json_object_object_add(j, "rootfs", lo->rootfs ? json_object_new_string(lo->rootfs) : NULL);
        json_object_object_add(j, "load_request_ms", json_object_new_double(lr.load_s * 1000));
        json_object_object_add(j, "lazy", json_object_new_boolean(la->on));
        if (la->on) {
            json_object_object_add(j, "page_server_pid", json_object_new_int64((int64_t)server));
            json_object_object_add(j, "page_server_socket", json_object_new_string(la->sock));
        }
        print_json(j);
    } else if (!g_quiet && la->on) {
        printf("%s: loaded lazily into the VMM at %s in %.0f ms (load request %.1f ms)%s; page server pid %ld "
               "serves its memory on %s; its files are in %s\n", tag, lo->api_sock, ms, lr.load_s * 1000,
               lo->paused ? " (paused)" : "", (long)server, la->sock, lr.staging);
    } else if (!g_quiet) {
        printf("%s: loaded into the VMM at %s in %.0f ms%s; its files are in %s\n", tag, lo->api_sock, ms,
               lo->paused ? " (paused)" : "", lr.staging);
    }
    return EX_OK;
}

static int cmd_restore(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'}, {"sync", no_argument, NULL, 'S'},
        {"api-sock", required_argument, NULL, 'A'}, {"staging", required_argument, NULL, 'G'},
        {"timeout", required_argument, NULL, 'T'}, {"paused", no_argument, NULL, 'P'},
        {"network-override", required_argument, NULL, 'N'}, {"vsock-uds", required_argument, NULL, 'V'},
        {"rootfs", required_argument, NULL, 'R'}, {"vm-id", required_argument, NULL, 'I'},
        {"force-version", no_argument, NULL, 'W'}, {"jail-root", required_argument, NULL, 'J'},
        {"jail-uid", required_argument, NULL, 'U'}, {"jail-gid", required_argument, NULL, 'g'}, LAZY_OPTS, {0}};
    const char *out = NULL, *sock = NULL, *jail_root = NULL, *nets[16];
    fks_load_opts lo = {0};
    struct lazy_args la;
    int lazyopt = 0, used = 0;
    lazy_defaults(&la);
    struct jail_args ja = {.j = {.uid = -1, .gid = -1}};
    int flags = 0, json = 0, c, r, loadopt = 0;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'f': flags |= FKS_RESTORE_FORCE; break;
        case 'S': flags |= FKS_RESTORE_SYNC; break;
        case 'A': sock = optarg; break;
        case 'G': lo.staging = optarg; break;
        case 'T':
            if ((r = parse_ms("restore", optarg, &lo.timeout_ms)) >= 0)
                return r;
            break;
        case 'P': lo.paused = 1; loadopt = 1; break;
        case 'N':
            if (lo.n_net_overrides == sizeof nets / sizeof *nets)
                return usage_err("restore", "%s", "at most 16 --network-override");
            if (!strchr(optarg, '=') || optarg[0] == '=' || !strchr(optarg, '=')[1])
                return usage_err("restore", "--network-override takes IFACE=HOSTDEV, got '%s'", optarg);
            nets[lo.n_net_overrides++] = optarg;
            loadopt = 1;
            break;
        case 'V': lo.vsock_uds = optarg; loadopt = 1; break;
        case 'R': lo.rootfs = optarg; loadopt = 1; break;
        case 'I': lo.vm_id = optarg; loadopt = 1; break;
        case 'W': lo.force_version = 1; loadopt = 1; break;
        case 'J': jail_root = optarg; loadopt = 1; break;
        case 'U':
            if ((r = parse_id("restore", "--jail-uid", optarg, &ja.j.uid)) >= 0)
                return r;
            loadopt = 1;
            break;
        case 'g':
            if ((r = parse_id("restore", "--jail-gid", optarg, &ja.j.gid)) >= 0)
                return r;
            loadopt = 1;
            break;
        default:
            if ((r = lazy_opt(c, "restore", &la, &used)) >= 0)
                return r;
            if (used) {
                lazyopt |= c != 1109;
                break;
            }
            if ((r = common_opt(c, "restore", H_RESTORE, &json)) >= 0)
                return r;
        }
    }
    if (optind + 1 != argc)
        return usage_err("restore", "%s", "give exactly one TAG");
    if (lazyopt && !la.on)
        return usage_err("restore", "%s", "--uffd-sock, --prefetch, --prefetch-time, --no-record, --lease-ttl, "
                         "--accept-timeout, --vms, --server-log, --cache-cold, --cache-pages and --remote need --lazy");
    if (la.on && !sock)
        return usage_err("restore", "%s", "--lazy needs --api-sock SOCK");
    if (la.so.max_vms > 1)
        return usage_err("restore", "%s", "restore --lazy loads one VM; serve several with serve-pages --vms N");
    if (sock && out)
        return usage_err("restore", "%s", "give --out DIR or --api-sock SOCK, not both");
    if (sock) {
        if ((r = jail_check("restore", &ja, jail_root)) >= 0)
            return r;
        lo.api_sock = sock;
        lo.from_remote = la.on && la.so.from_remote;
        lo.remote = la.so.remote;
        lo.net_overrides = nets;
        lo.jail = ja.j;
        return restore_load(argv[optind], &lo, json, &la);
    }
    if (loadopt || lo.staging || lo.timeout_ms)
        return usage_err("restore", "%s", "--staging, --timeout and the load options need --api-sock SOCK");
    if (!out)
        return usage_err("restore", "%s", "--out DIR is required");
    const char *tag = argv[optind];
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    struct progress p;
    fks_restore_stats st;
    fks_progress_fn fn = progress_for(&p, "restore");
    rc = fks_restore(&st, s, tag, out, flags, fn, &p);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(tag));
        json_object_object_add(j, "out", json_object_new_string(out));
        json_object_object_add(j, "logical_bytes", json_object_new_int64((int64_t)st.logical_bytes));
        json_object_object_add(j, "written_bytes", json_object_new_int64((int64_t)st.written_bytes));
        json_object_object_add(j, "seconds", json_object_new_double(st.seconds));
        print_json(j);
    } else if (!g_quiet) {
        char a[32], b[32];
        human(a, sizeof a, (double)st.logical_bytes);
        human(b, sizeof b, (double)st.written_bytes);
        printf("%s: restored %s (%s of data) to %s in %.2fs\n", tag, a, b, out, st.seconds);
    }
    return EX_OK;
}

static const char H_SERVE[] =
    "usage: forkctl serve-pages TAG --socket PATH [--vms N] [--prefetch on|off|BYTES]\n"
    "                           [--prefetch-time S] [--no-record] [--lease-ttl S]\n"
    "                           [--accept-timeout S] [--cache-cold] [--cache-pages N]\n"
    "                           [--remote NAME] [--json]\n"
    "Serves TAG's memory to Firecracker VMMs loading it with the Uffd memory\n"
    "backend (\"mem_backend\": {\"backend_type\": \"Uffd\", \"backend_path\": PATH}),\n"
    "in the foreground, for supervisors (tools/systemd/forkstore-pages@.service).\n"
    "Listens on PATH (mode 0600), accepts N VMMs (default 1; one decoded page\n"
    "serves all of them), and exits when every one of them is gone or on\n"
    "SIGTERM, printing what it served. Holds a lease meanwhile: gc keeps the\n"
    "pages, even if TAG is removed. Records the pages faulted on demand as TAG's\n"
    "working set (not with --no-record); --prefetch (default on) installs the\n"
    "working set recorded on TAG or its nearest ancestor ahead of the guest, at\n"
    "most BYTES of it and for at most --prefetch-time seconds. Exits 1 if no\n"
    "VMM connects within --accept-timeout (default 60 s). Once a VMM connects, the\n"
    "server decodes the image's stored pages into its cache in the background, so\n"
    "faults find them decoded; --cache-cold decodes only on demand. The cache\n"
    "holds --cache-pages pages (default 65536: 256 MiB, resident once decoded);\n"
    "an image with more stored pages is not decoded ahead and shares its slots.\n"
    "A TAG the store lacks is served from --remote NAME (default: the store's\n"
    "only remote): its pages are fetched with S3 Range GETs as the guest touches\n"
    "them (the working set pushed with it first), and the snapshot is pulled\n"
    "into the store meanwhile, at low priority; the server exits once that pull\n"
    "has ended, and the next VM restores from the store.\n";

static int cmd_serve(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, LAZY_OPTS, {0}};
    struct lazy_args la;
    int json = 0, c, r, used = 0;
    lazy_defaults(&la);
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if ((r = lazy_opt(c, "serve-pages", &la, &used)) >= 0)
            return r;
        if (used && (c == 1108 || c == 1109))
            return usage_err("serve-pages", "%s is an option of restore", argv_opt());
        if (!used && (r = common_opt(c, "serve-pages", H_SERVE, &json)) >= 0)
            return r;
    }
    if (optind + 1 != argc)
        return usage_err("serve-pages", "%s", "give exactly one TAG");
    if (!la.sock)
        return usage_err("serve-pages", "%s", "--socket PATH is required");
    fks_serve_stats st;
    int rc = serve_run(&st, argv[optind], &la);
    if (rc)
        return fail(rc);
    if (json)
        print_json(serve_stats_json(argv[optind], &st));
    else if (!g_quiet)
        serve_stats_text(stdout, argv[optind], &st);
    return EX_OK;
}

static const char H_BRANCH[] =
    "usage: forkctl branch --api-sock SOCK --tag TAG [--parent P] [--full]\n"
    "                      [--staging DIR] [--timeout MS] [--vm-id ID] [--force-version]\n"
    "                      [--jail-root DIR --jail-uid U --jail-gid G] [--json] [--quiet]\n"
    "       forkctl branch --resume --api-sock SOCK [--vm-id ID] [--tag TAG] [--json]\n"
    "Branches the running Firecracker VM behind SOCK into the store: pause,\n"
    "snapshot into memory-backed staging (a private directory under DIR,\n"
    "default /dev/shm), resume, then ingest the staged files and remove them.\n"
    "With --parent (the VM's previous snapshot in the store) a Diff snapshot is\n"
    "taken, else a Full one; --full forces Full (P stays its parent). The VM is\n"
    "resumed whatever fails. Prints and records pause_ms (pause sent to resume\n"
    "acknowledged), snapshot_ms, ingest_ms, the diff's physical bytes and the\n"
    "Firecracker and snapshot format versions (see forkctl info).\n"
    "Chain safety: Firecracker resets its dirty pages on every snapshot, so the\n"
    "store records each VM's last snapshot (VM: --vm-id ID, else Firecracker's\n"
    "instance id and SOCK). A Diff is refused (exit 6) when P is not that\n"
    "snapshot, when it was created but not stored, or when its create has an\n"
    "unknown outcome; the message says whether --resume or only --full helps.\n"
    "After a failure that follows the create the staged files are kept, and\n"
    "--resume ingests them under the recorded tag (or TAG) and parent.\n"
    "Only forkctl may snapshot the VM: a create sent by anything else is not seen.\n"
    "--timeout bounds each control call (default 10000 ms); snapshot/create\n"
    "gets at least 10 s + 1 s per 64 MiB of guest memory. Firecracker outside\n"
    "1.10 .. 1.16 is refused unless --force-version. With --jail-root (the\n"
    "jailer's chroot), staging is made inside DIR, the VMM is sent paths\n"
    "relative to it, and the staging belongs to --jail-uid/--jail-gid.\n";

static int cmd_branch(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS,
        {"api-sock", required_argument, NULL, 'A'}, {"tag", required_argument, NULL, 't'},
        {"parent", required_argument, NULL, 'p'}, {"full", no_argument, NULL, 'F'},
        {"staging", required_argument, NULL, 'G'}, {"timeout", required_argument, NULL, 'T'},
        {"vm-id", required_argument, NULL, 'I'}, {"resume", no_argument, NULL, 'r'},
        {"force-version", no_argument, NULL, 'W'}, {"jail-root", required_argument, NULL, 'J'},
        {"jail-uid", required_argument, NULL, 'U'}, {"jail-gid", required_argument, NULL, 'g'}, {0}};
    fks_branch_opts bo = {0};
    struct jail_args ja = {.j = {.uid = -1, .gid = -1}};
    const char *jail_root = NULL;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'A': bo.api_sock = optarg; break;
        case 't': bo.tag = optarg; break;
        case 'p': bo.parent = optarg; break;
        case 'F': bo.full = 1; break;
        case 'G': bo.staging = optarg; break;
        case 'T':
            if ((r = parse_ms("branch", optarg, &bo.timeout_ms)) >= 0)
                return r;
            break;
        case 'I': bo.vm_id = optarg; break;
        case 'r': bo.resume = 1; break;
        case 'W': bo.force_version = 1; break;
        case 'J': jail_root = optarg; break;
        case 'U':
            if ((r = parse_id("branch", "--jail-uid", optarg, &ja.j.uid)) >= 0)
                return r;
            break;
        case 'g':
            if ((r = parse_id("branch", "--jail-gid", optarg, &ja.j.gid)) >= 0)
                return r;
            break;
        default:
            if ((r = common_opt(c, "branch", H_BRANCH, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("branch", "unexpected argument '%s'", argv[optind]);
    if (!bo.api_sock)
        return usage_err("branch", "%s", "--api-sock SOCK is required");
    if (!bo.tag && !bo.resume)
        return usage_err("branch", "%s", "--tag is required");
    if (bo.resume && (bo.parent || bo.full || bo.staging))
        return usage_err("branch", "%s", "--resume takes the recorded parent and staging: no --parent, --full "
                         "or --staging");
    if ((r = jail_check("branch", &ja, jail_root)) >= 0)
        return r;
    bo.jail = ja.j;
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    struct progress p;
    bo.progress = progress_for(&p, "ingest");
    bo.progress_arg = &p;
    fks_branch_result br;
    rc = fks_branch(&br, s, &bo);
    progress_end(&p);
    fks_close(s);
    if (rc) {
        fprintf(stderr, "forkctl: %s\n", fks_errmsg());
        char vm[700] = "";
        if (bo.vm_id)
            snprintf(vm, sizeof vm, " --vm-id %s", bo.vm_id);
        if (br.can_resume)
            fprintf(stderr, "forkctl: finish it with `forkctl branch --resume --api-sock %s%s` (once the cause is "
                    "fixed), or start the chain over with `--full`\n", bo.api_sock, vm);
        else if (br.need_full && br.head[0])
            fprintf(stderr, "forkctl: take the Diff on the VM's last snapshot (`--parent %s`), or `--full` "
                    "(the parent is then kept as lineage)\n", br.head);
        else if (br.need_full)
            fprintf(stderr, "forkctl: take a Full snapshot of this VM next: `forkctl branch --full ...`\n");
        if (br.kept_staging[0] && !br.can_resume)
            fprintf(stderr, "forkctl: the VMM may still write into %s: it was kept; the next Full removes it\n",
                    br.kept_staging);
        return exit_code(rc);
    }
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(br.tag));
        json_object_object_add(j, "type", json_object_new_string(br.diff ? "Diff" : "Full"));
        json_object_object_add(j, "pause_ms", json_object_new_double(br.pause_s * 1000));
        json_object_object_add(j, "snapshot_ms", json_object_new_double(br.snapshot_s * 1000));
        json_object_object_add(j, "ingest_ms", json_object_new_double(br.ingest_s * 1000));
        json_object_object_add(j, "diff_bytes", json_object_new_int64(br.diff_bytes));
        json_object_object_add(j, "new_pages", json_object_new_int64((int64_t)br.ingest.new_pages));
        json_object_object_add(j, "stored_bytes", json_object_new_int64((int64_t)br.ingest.stored_bytes));
        json_object_object_add(j, "vm", json_object_new_string(br.vm_key));
        json_object_object_add(j, "resumed", json_object_new_boolean(bo.resume));
        json_object_object_add(j, "firecracker_version", br.fc_version[0] ? json_object_new_string(br.fc_version) : NULL);
        json_object_object_add(j, "format_version",
                               br.format_version[0] ? json_object_new_string(br.format_version) : NULL);
        print_json(j);
    } else if (!g_quiet) {
        char a[32];
        human(a, sizeof a, (double)br.diff_bytes);
        printf("%s: %s%s snapshot, paused %.1f ms (snapshot %.1f ms), %s staged, ingested in %.0f ms "
               "(%llu new pages)\n", br.tag, bo.resume ? "finished " : "", br.diff ? "Diff" : "Full",
               br.pause_s * 1000, br.snapshot_s * 1000, a, br.ingest_s * 1000,
               (unsigned long long)br.ingest.new_pages);
    }
    return EX_OK;
}

static const char H_IMAGES[] =
    "usage: forkctl images [--json]\n"
    "Lists snapshots, most recent first: TAG, PARENT, SIZE (all files, logical),\n"
    "MEMORY (logical), STORED (compressed bytes this snapshot added), CREATED,\n"
    "ROOTFS.\n";

static int cmd_images(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {0}};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1)
        if ((r = common_opt(c, "images", H_IMAGES, &json)) >= 0)
            return r;
    if (optind < argc)
        return usage_err("images", "unexpected argument '%s'", argv[optind]);
    fks_store *s = NULL;
    fks_snapinfo *v = NULL;
    size_t n = 0;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc == 0)
        rc = fks_list(&v, &n, s);
    fks_close(s);
    if (rc)
        return fail(rc);
    uint64_t logical = 0, stored = 0;
    for (size_t i = 0; i < n; i++) {
        logical += v[i].logical_bytes;
        stored += v[i].stored_bytes;
    }
    if (json) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(a, snap_json(&v[i]));
        print_json(a);
    } else {
        printf("%-24s %-24s %10s %10s %10s %-10s %s\n", "TAG", "PARENT", "SIZE", "MEMORY", "STORED",
               "CREATED", "ROOTFS");
        for (size_t i = 0; i < n; i++) {
            char sz[32], mem[32], st[32], ag[32];
            human(sz, sizeof sz, (double)v[i].logical_bytes);
            human(mem, sizeof mem, (double)v[i].memory_bytes);
            human(st, sizeof st, (double)v[i].stored_bytes);
            age(ag, sizeof ag, v[i].created_ms);
            printf("%-24s %-24s %10s %10s %10s %-10s %s\n", esc(v[i].tag), v[i].parent[0] ? esc(v[i].parent) : "-",
                   sz, mem, st, ag, v[i].has_rootfs ? "yes" : "no");
        }
        char a[32], b[32];
        human(a, sizeof a, (double)logical);
        human(b, sizeof b, (double)stored);
        printf("%zu snapshot%s · %s logical · %s stored\n", n, n == 1 ? "" : "s", a, b);
    }
    free(v);
    return EX_OK;
}

static const char H_LOG[] =
    "usage: forkctl log TAG [--json]\n"
    "Shows the chain from the root snapshot down to TAG.\n";

static int cmd_log(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {0}};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1)
        if ((r = common_opt(c, "log", H_LOG, &json)) >= 0)
            return r;
    if (optind + 1 != argc)
        return usage_err("log", "%s", "give exactly one TAG");
    fks_store *s = NULL;
    fks_snapinfo *v = NULL;
    size_t n = 0;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc == 0)
        rc = fks_chain(&v, &n, s, argv[optind]);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(a, snap_json(&v[i]));
        print_json(a);
    } else {
        for (size_t i = 0; i < n; i++) {
            char sz[32], st[32], ag[32];
            human(sz, sizeof sz, (double)v[i].logical_bytes);
            human(st, sizeof st, (double)v[i].stored_bytes);
            age(ag, sizeof ag, v[i].created_ms);
            printf("%*s%s%s  (depth %d, %s logical, %s stored, %s)\n", (int)(2 * i), "",
                   i ? "└─ " : "", esc(v[i].tag), v[i].depth, sz, st, ag);
        }
    }
    free(v);
    return EX_OK;
}

static const char H_RMI[] =
    "usage: forkctl rmi [--cascade] [--json] TAG...\n"
    "Removes snapshots. Children of a removed snapshot stay restorable byte for\n"
    "byte and take its parent as theirs; --cascade removes each TAG's whole\n"
    "subtree instead. Space is reclaimed by `forkctl gc`.\n";

/* rmi and prune on a full disk: they commit with the gc reserve's room
** (fks_reserve_used) or, without one, fail; either way gc is the way out. */
static void full_disk_note(const char *cmd, int used, int rc)
{
    if (used)
        fprintf(stderr, "forkctl: %s: the disk is full: used the store's gc reserve to commit; run `forkctl gc` "
                "to free the space and make the reserve again\n", cmd);
    else if (rc == FKS_ENOSPC)
        fprintf(stderr, "forkctl: hint: the disk is full and the store's gc reserve is used up: free some space "
                "and run `forkctl gc`\n");
}

static int cmd_rmi(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"cascade", no_argument, NULL, 'c'}, {0}};
    int cascade = 0, json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'c')
            cascade = 1;
        else if ((r = common_opt(c, "rmi", H_RMI, &json)) >= 0)
            return r;
    }
    if (optind >= argc)
        return usage_err("rmi", "%s", "give at least one TAG");
    fks_store *s = NULL;
    int rc = open_store(&s, 0), ret = EX_OK;
    if (rc)
        return fail(rc);
    json_object *removed = json ? json_object_new_array() : NULL;
    int nospace = 0;
    for (int i = optind; i < argc; i++) {
        rc = fks_rmi(s, argv[i], cascade);
        if (rc)
            ret = fail(rc);
        else if (json)
            json_object_array_add(removed, json_object_new_string(argv[i]));
        else if (!g_quiet)
            printf("removed %s%s\n", esc(argv[i]), cascade ? " and its descendants" : "");
        nospace |= rc == FKS_ENOSPC;
    }
    full_disk_note("rmi", fks_reserve_used(s), nospace ? FKS_ENOSPC : 0);
    fks_close(s);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "removed", removed);
        json_object_object_add(j, "cascade", json_object_new_boolean(cascade));
        print_json(j);
    }
    return ret;
}

static const char H_SQL[] =
    "usage: forkctl sql \"SELECT ...\" [--json | --csv] [--timeout SECONDS] [--max-rows N]\n"
    "Runs one read-only SQL statement on the catalog (the connection cannot\n"
    "write) and prints an aligned table, JSON or CSV, row by row as they come.\n"
    "The statement is stopped after --timeout seconds (default 30) or when the\n"
    "result has more than --max-rows rows (default 1000000); 0 means no limit.\n"
    "Stopping at a limit exits 7 after the rows printed so far. See the README\n"
    "for the tables, views and example queries.\n";

#define SQL_TABLE_SAMPLE 1000   /* rows that set the table's column widths */

/* Output of `forkctl sql`, streamed: CSV and JSON print each row as it
** comes (the JSON array is written piece by piece); the table keeps the
** first SQL_TABLE_SAMPLE rows to size its columns, then prints the rest
** as they come (a longer cell then widens its line only). */
struct sqlout {
    int mode;            /* 0 table, 1 json, 2 csv */
    uint64_t rows;
    int ncol;
    char **cells;        /* table: the sampled rows, header first */
    size_t n;
    int *w;              /* table: column widths, once sized */
};

static void table_line(const struct sqlout *o, const char *const *cells)
{
    for (int k = 0; k < o->ncol; k++)
        printf("%s%-*s", k ? "  " : "", k == o->ncol - 1 ? 0 : o->w[k], cells[k]);
    putchar('\n');
}

/* Sizes the columns from the sample and prints it. */
static void table_flush(struct sqlout *o)
{
    if (o->w || o->ncol == 0)
        return;
    o->w = calloc((size_t)o->ncol, sizeof *o->w);
    if (!o->w)
        return;
    for (size_t i = 0; i < o->n; i++) {
        int l = (int)strlen(o->cells[i]);
        if (l > o->w[i % (size_t)o->ncol])
            o->w[i % (size_t)o->ncol] = l;
    }
    for (size_t i = 0; i < o->n; i += (size_t)o->ncol)
        table_line(o, (const char *const *)o->cells + i);
    for (size_t i = 0; i < o->n; i++)
        free(o->cells[i]);
    free(o->cells);
    o->cells = NULL;
    o->n = 0;
}

/* Keeps one cell of the sample: 0, or -1 out of memory. */
static int table_keep(struct sqlout *o, const char *v)
{
    char **nc = realloc(o->cells, (o->n + 1) * sizeof *nc);
    if (!nc)
        return -1;
    o->cells = nc;
    if (!(o->cells[o->n] = esc_dup(v)))     /* escaped: widths are of what prints */
        return -1;
    o->n++;
    return 0;
}

static void csv_cell(const char *v, int first)
{
    int q = strpbrk(v, ",\"\n\r") != NULL;
    printf("%s%s", first ? "" : ",", q ? "\"" : "");
    for (; *v; v++)
        if (*v == '"')
            fputs("\"\"", stdout);
        else
            putchar(*v);
    if (q)
        putchar('"');
}

static int sql_row(void *arg, int ncol, const char *const *names, const char *const *vals, const int *types)
{
    struct sqlout *o = arg;
    int first = o->rows++ == 0;
    o->ncol = ncol;
    if (o->mode == 1) {
        json_object *j = json_object_new_object();
        for (int i = 0; i < ncol; i++) {
            json_object *v = NULL;
            if (!vals[i])
                v = NULL;
            else if (types[i] == FKS_SQL_INTEGER)
                v = json_object_new_int64(strtoll(vals[i], NULL, 10));
            else if (types[i] == FKS_SQL_FLOAT)
                v = json_object_new_double(strtod(vals[i], NULL));
            else
                v = json_object_new_string(vals[i]);
            json_object_object_add(j, names[i], v);
        }
        printf("%s  %s", first ? "[\n" : ",\n",
               json_object_to_json_string_ext(j, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return 0;
    }
    if (o->mode == 2) {
        if (first) {
            for (int i = 0; i < ncol; i++)
                csv_cell(names[i], i == 0);
            putchar('\n');
        }
        for (int i = 0; i < ncol; i++)
            csv_cell(vals[i] ? vals[i] : "", i == 0);
        putchar('\n');
        return 0;
    }
    if (first)
        for (int i = 0; i < ncol; i++)
            if (table_keep(o, names[i]))
                return 1;
    if (o->w) {
        char **cells = calloc((size_t)ncol + 1, sizeof *cells);
        int ok = cells != NULL;
        for (int i = 0; ok && i < ncol; i++)
            ok = (cells[i] = esc_dup(vals[i] ? vals[i] : "NULL")) != NULL;
        if (ok)
            table_line(o, (const char *const *)cells);
        for (int i = 0; cells && i < ncol; i++)
            free(cells[i]);
        free(cells);
        return !ok;
    }
    for (int i = 0; i < ncol; i++)
        if (table_keep(o, vals[i] ? vals[i] : "NULL"))
            return 1;
    if (o->rows == SQL_TABLE_SAMPLE)
        table_flush(o);
    return 0;
}

static int cmd_sql(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"csv", no_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 'T'}, {"max-rows", required_argument, NULL, 'R'}, {0}};
    struct sqlout out = {0};
    fks_sql_opts so = {30, 1000000};
    int json = 0, c, r;
    double v = 0;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'c': out.mode = 2; break;
        case 'T':
            if ((r = num_arg("sql", "--timeout", "a number of seconds from 0 (no limit) to 86400", optarg, 0,
                             86400, 0, &so.timeout_s)) >= 0)
                return r;
            break;
        case 'R':
            if ((r = num_arg("sql", "--max-rows", "a whole number of rows from 0 (no limit) to 1e15", optarg, 0,
                             1e15, 1, &v)) >= 0)
                return r;
            so.max_rows = (uint64_t)v;
            break;
        default:
            if ((r = common_opt(c, "sql", H_SQL, &json)) >= 0)
                return r;
        }
    }
    if (json && out.mode == 2)
        return usage_err("sql", "%s", "give --json or --csv, not both");
    if (json)
        out.mode = 1;
    if (optind + 1 != argc)
        return usage_err("sql", "%s", "give exactly one SQL statement (quote it)");
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    rc = fks_sql_ex(s, argv[optind], &so, sql_row, &out);
    fks_close(s);
    /* What was printed stays well formed, also when a limit stopped it. */
    if (out.mode == 1 && (rc == 0 || out.rows))
        fputs(out.rows ? "\n]\n" : "[]\n", stdout);
    if (out.mode == 0)
        table_flush(&out);
    for (size_t i = 0; i < out.n; i++)
        free(out.cells[i]);
    free(out.cells);
    free(out.w);
    fflush(stdout);
    if (rc == FKS_ETIMEDOUT || rc == FKS_ELIMIT) {
        fputs("forkctl: ", stderr);
        put_esc(stderr, fks_errmsg());
        fprintf(stderr, "; the output is incomplete (%s, 0 for no limit)\n",
                rc == FKS_ETIMEDOUT ? "raise --timeout" : "add a LIMIT, or raise --max-rows");
        return EX_LIMIT;
    }
    if (rc)
        return fail(rc);
    return EX_OK;
}

static const char H_GC[] =
    "usage: forkctl gc [--dry-run] [--json] [--max-duration SECONDS] [--max-unused FRACTION]\n"
    "                  [--threshold FRACTION]\n"
    "Reclaims space: removes pages no snapshot references, compacts chunk files\n"
    "(those with the most dead bytes, until at most --max-unused of the chunk\n"
    "bytes are dead, default 0.05; or, with --threshold, every chunk less than\n"
    "FRACTION live), deletes files left by crashes, packs the page index, gives\n"
    "free catalog pages back and truncates the WAL. Safe while ingests and\n"
    "restores run. A second gc exits at once with code 4 (store locked).\n";

static int cmd_gc(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"dry-run", no_argument, NULL, 'n'},
        {"max-duration", required_argument, NULL, 'd'}, {"threshold", required_argument, NULL, 't'},
        {"max-unused", required_argument, NULL, 'u'}, {0}};
    fks_gc_opts go = {0};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'n': go.dry_run = 1; break;
        case 'd':
            if ((r = duration_arg("gc", "--max-duration", optarg, &go.max_seconds)) >= 0)
                return r;
            break;
        case 't':
            if ((r = num_arg("gc", "--threshold", "a fraction above 0 and at most 1", optarg, 0, 1, 0,
                             &go.live_threshold)) >= 0)
                return r;
            if (go.live_threshold <= 0)
                return usage_err("gc", "--threshold takes a fraction above 0 and at most 1, got '%s' "
                                 "(out of range)", optarg);
            break;
        case 'u':
            if ((r = num_arg("gc", "--max-unused", "a fraction from 0 to 1", optarg, 0, 1, 0, &go.max_unused)) >= 0)
                return r;
            if (go.max_unused <= 0)      /* 0 would mean the default: compact every dead byte instead */
                go.max_unused = 1e-12;
            break;
        default:
            if ((r = common_opt(c, "gc", H_GC, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("gc", "unexpected argument '%s'", argv[optind]);
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    fks_gc_report rep;
    struct progress p;
    go.progress = progress_for(&p, "gc");
    go.progress_arg = &p;
    rc = fks_gc(&rep, s, &go);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    int64_t reclaimed = (int64_t)rep.disk_bytes_before - (int64_t)rep.disk_bytes_after;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "dry_run", json_object_new_boolean(go.dry_run));
        json_object_object_add(j, "pages_freed", json_object_new_int64((int64_t)rep.pages_freed));
        json_object_object_add(j, "page_bytes_freed", json_object_new_int64((int64_t)rep.page_bytes_freed));
        json_object_object_add(j, "chunks_rewritten", json_object_new_int64((int64_t)rep.chunks_rewritten));
        json_object_object_add(j, "chunks_deleted", json_object_new_int64((int64_t)rep.chunks_deleted));
        json_object_object_add(j, "strays_deleted", json_object_new_int64((int64_t)rep.strays_deleted));
        json_object_object_add(j, "bytes_copied", json_object_new_int64((int64_t)rep.bytes_copied));
        json_object_object_add(j, "disk_bytes_before", json_object_new_int64((int64_t)rep.disk_bytes_before));
        json_object_object_add(j, "disk_bytes_after", json_object_new_int64((int64_t)rep.disk_bytes_after));
        json_object_object_add(j, "bytes_reclaimed", json_object_new_int64(reclaimed));
        json_object_object_add(j, "stopped_early", json_object_new_boolean(rep.stopped_early));
        json_object_object_add(j, "seconds", json_object_new_double(rep.seconds));
        print_json(j);
    } else if (!g_quiet) {
        char a[32], b[32], d[32];
        human(a, sizeof a, (double)rep.page_bytes_freed);
        human(b, sizeof b, (double)(reclaimed > 0 ? reclaimed : 0));
        human(d, sizeof d, (double)rep.bytes_copied);
        printf("gc%s: %llu unreferenced pages (%s) %s; %llu chunks rewritten (%s copied), %llu deleted, "
               "%llu stray files; %s reclaimed in %.2fs%s\n",
               go.dry_run ? " (dry run)" : "", (unsigned long long)rep.pages_freed, a,
               go.dry_run ? "would be freed" : "freed", (unsigned long long)rep.chunks_rewritten, d,
               (unsigned long long)rep.chunks_deleted, (unsigned long long)rep.strays_deleted, b, rep.seconds,
               rep.stopped_early ? " (stopped at --max-duration; run again to finish)" : "");
    }
    return EX_OK;
}

static const char H_COMPACT[] =
    "usage: forkctl compact [--level N] [--max-duration SECONDS] [--json]\n"
    "Recompresses stored blocks at zstd level N (default 15; ingest writes\n"
    "level 1 to stay fast), oldest chunks first, dropping dead records on the\n"
    "way; chunks whose blocks would not shrink by 1% are left as they are, so\n"
    "a second run costs little. gc moves blocks at the same level from then on.\n"
    "Safe while ingests and restores run; a kill loses nothing. Takes the gc\n"
    "lock: exits at once with code 4 if a gc or another compact runs.\n";

static int cmd_compact(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"level", required_argument, NULL, 'l'},
        {"max-duration", required_argument, NULL, 'd'}, {0}};
    fks_compact_opts co = {0};
    int json = 0, c, r;
    double lv = 0;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'l':
            if ((r = num_arg("compact", "--level", "a zstd level from 1 to 22", optarg, 1, 22, 1, &lv)) >= 0)
                return r;
            co.level = (int)lv;
            break;
        case 'd':
            if ((r = duration_arg("compact", "--max-duration", optarg, &co.max_seconds)) >= 0)
                return r;
            break;
        default:
            if ((r = common_opt(c, "compact", H_COMPACT, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("compact", "unexpected argument '%s'", argv[optind]);
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    struct progress pr;
    co.progress = progress_for(&pr, "compact");
    co.progress_arg = &pr;
    fks_compact_report rep;
    rc = fks_compact(&rep, s, &co);
    progress_end(&pr);
    fks_close(s);
    if (rc)
        return fail(rc);
    int64_t reclaimed = (int64_t)rep.disk_bytes_before - (int64_t)rep.disk_bytes_after;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "level", json_object_new_int(co.level ? co.level : FKS_COMPACT_LEVEL));
        json_object_object_add(j, "chunks_seen", json_object_new_int64((int64_t)rep.chunks_seen));
        json_object_object_add(j, "chunks_recompressed", json_object_new_int64((int64_t)rep.chunks_recompressed));
        json_object_object_add(j, "chunks_dense", json_object_new_int64((int64_t)rep.chunks_dense));
        json_object_object_add(j, "chunks_busy", json_object_new_int64((int64_t)rep.chunks_busy));
        json_object_object_add(j, "bytes_before", json_object_new_int64((int64_t)rep.bytes_before));
        json_object_object_add(j, "bytes_after", json_object_new_int64((int64_t)rep.bytes_after));
        json_object_object_add(j, "disk_bytes_before", json_object_new_int64((int64_t)rep.disk_bytes_before));
        json_object_object_add(j, "disk_bytes_after", json_object_new_int64((int64_t)rep.disk_bytes_after));
        json_object_object_add(j, "bytes_reclaimed", json_object_new_int64(reclaimed));
        json_object_object_add(j, "stopped_early", json_object_new_boolean(rep.stopped_early));
        json_object_object_add(j, "seconds", json_object_new_double(rep.seconds));
        print_json(j);
    } else if (!g_quiet) {
        char a[32], b[32], d[32];
        human(a, sizeof a, (double)rep.bytes_before);
        human(b, sizeof b, (double)rep.bytes_after);
        human(d, sizeof d, (double)(reclaimed > 0 ? reclaimed : 0));
        printf("compact: %llu of %llu chunks recompressed (%s -> %s), %llu already dense, %llu busy; "
               "%s reclaimed in %.2fs%s\n",
               (unsigned long long)rep.chunks_recompressed, (unsigned long long)rep.chunks_seen, a, b,
               (unsigned long long)rep.chunks_dense, (unsigned long long)rep.chunks_busy, d, rep.seconds,
               rep.stopped_early ? " (stopped early; run again to finish)" : "");
    }
    return EX_OK;
}

/* A JSON array of n strings. */
static json_object *json_strings(char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

/* A verify report on stderr: one line per problem, then per note, then
** the snapshots the problems reach (verify and remote verify). */
static void put_problems(const char *who, char *const *problems, size_t np, char *const *notes, size_t nn,
                         char *const *affected, size_t na)
{
    for (size_t i = 0; i < np; i++) {
        fprintf(stderr, "forkctl: %s: ", who);
        put_esc(stderr, problems[i]);
        fputc('\n', stderr);
    }
    for (size_t i = 0; i < nn; i++) {
        fprintf(stderr, "forkctl: %s: note: ", who);
        put_esc(stderr, notes[i]);
        fputc('\n', stderr);
    }
    if (na) {
        fprintf(stderr, "forkctl: %s: snapshots affected:", who);
        for (size_t i = 0; i < na; i++)
            fprintf(stderr, " %s", esc(affected[i]));
        fputc('\n', stderr);
    }
}

static const char H_VERIFY[] =
    "usage: forkctl verify [--sample PERCENT] [--json]\n"
    "Checks the store: the catalog (SQLite quick_check), every chunk file, that\n"
    "every page a snapshot needs exists, and every stored page against its hash\n"
    "(or a random PERCENT of them, for nightly scrubs). Names the snapshots that\n"
    "damage affects and exits 5 if anything is wrong.\n";

static int cmd_verify(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"sample", required_argument, NULL, 's'}, {0}};
    double sample = 100;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 's') {
            if ((r = num_arg("verify", "--sample", "a percentage above 0 and at most 100", optarg, 0, 100, 0,
                             &sample)) >= 0)
                return r;
            if (sample <= 0)
                return usage_err("verify", "--sample takes a percentage above 0 and at most 100, got '%s' "
                                 "(out of range)", optarg);
        } else if ((r = common_opt(c, "verify", H_VERIFY, &json)) >= 0)
            return r;
    }
    if (optind < argc)
        return usage_err("verify", "unexpected argument '%s'", argv[optind]);
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    fks_verify_report *v;
    struct progress p;
    fks_progress_fn fn = progress_for(&p, "verify");
    rc = fks_verify(&v, s, sample, fn, &p);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    int bad = v->n_problems > 0;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "ok", json_object_new_boolean(!bad));
        json_object_object_add(j, "chunks_checked", json_object_new_int64((int64_t)v->chunks_checked));
        json_object_object_add(j, "pages_checked", json_object_new_int64((int64_t)v->pages_checked));
        json_object_object_add(j, "runs_checked", json_object_new_int64((int64_t)v->runs_checked));
        json_object_object_add(j, "bad_chunks", json_object_new_int64((int64_t)v->bad_chunks));
        json_object_object_add(j, "bad_pages", json_object_new_int64((int64_t)v->bad_pages));
        json_object_object_add(j, "missing_pages", json_object_new_int64((int64_t)v->missing_pages));
        json_object_object_add(j, "bad_runs", json_object_new_int64((int64_t)v->bad_runs));
        json_object_object_add(j, "problems", json_strings(v->problems, v->n_problems));
        json_object_object_add(j, "affected_snapshots", json_strings(v->affected, v->n_affected));
        json_object_object_add(j, "notes", json_strings(v->notes, v->n_notes));
        json_object_object_add(j, "seconds", json_object_new_double(v->seconds));
        print_json(j);
    } else {
        put_problems("verify", v->problems, v->n_problems, v->notes, v->n_notes, v->affected, v->n_affected);
        if (!g_quiet || bad)
            printf("verify: %s: %llu chunks, %llu page map runs, %llu pages checked in %.2fs\n",
                   bad ? "DAMAGED" : "ok", (unsigned long long)v->chunks_checked,
                   (unsigned long long)v->runs_checked, (unsigned long long)v->pages_checked, v->seconds);
    }
    fks_verify_free(v);
    return bad ? EX_CORRUPT : EX_OK;
}

static const char H_RECOVER[] =
    "usage: forkctl recover [--force] [--json]\n"
    "Rebuilds a lost or damaged catalog from the files beside it: the page index\n"
    "from the chunk records (each carries its pages' hashes), snapshots, lineage\n"
    "and page maps from DIR/manifests. The old catalog.db (and -wal, -shm) is\n"
    "kept as catalog.db.damaged-<unix ms>. A catalog that opens and passes its\n"
    "checks is left alone unless --force. Names every snapshot it could not\n"
    "recover and why (missing pages, damaged manifests) and exits 5 if any, or\n"
    "if a chunk file or manifest is unreadable.\n";

static int cmd_recover(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"force", no_argument, NULL, 'f'}, {0}};
    int json = 0, force = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'f')
            force = 1;
        else if ((r = common_opt(c, "recover", H_RECOVER, &json)) >= 0)
            return r;
    }
    if (optind < argc)
        return usage_err("recover", "unexpected argument '%s'", argv[optind]);
    char def[4096];
    const char *dir = g_store;
    int rc = 0;
    if (!dir && (rc = fks_default_dir(def, sizeof def)) == 0)
        dir = def;
    fks_recover_report *v = NULL;
    if (rc == 0)
        rc = fks_recover(&v, dir, force ? FKS_RECOVER_FORCE : 0);
    if (rc == FKS_EEXIST) {
        fprintf(stderr, "forkctl: recover: %s (--force)\n", fks_errmsg());
        return exit_code(rc);
    }
    if (rc)
        return fail(rc);
    /* Damaged records whose pages nothing needs (often the torn tail of a
    ** killed ingest) are listed but lose nothing. */
    int bad = v->n_lost > 0 || v->chunks_bad > 0 || v->manifests_bad > 0;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "ok", json_object_new_boolean(!bad));
        json_object_object_add(j, "moved_aside", v->moved_aside[0] ? json_object_new_string(v->moved_aside) : NULL);
        json_object_object_add(j, "snapshots", json_object_new_int64((int64_t)v->snapshots));
        json_object_object_add(j, "manifests", json_object_new_int64((int64_t)v->manifests));
        json_object_object_add(j, "manifests_bad", json_object_new_int64((int64_t)v->manifests_bad));
        json_object_object_add(j, "tombstones", json_object_new_int64((int64_t)v->tombstones));
        json_object_object_add(j, "chunks", json_object_new_int64((int64_t)v->chunks));
        json_object_object_add(j, "chunks_bad", json_object_new_int64((int64_t)v->chunks_bad));
        json_object_object_add(j, "records", json_object_new_int64((int64_t)v->records));
        json_object_object_add(j, "records_bad", json_object_new_int64((int64_t)v->records_bad));
        json_object_object_add(j, "pages", json_object_new_int64((int64_t)v->pages));
        json_object_object_add(j, "pages_missing", json_object_new_int64((int64_t)v->pages_missing));
        json_object_object_add(j, "lost", json_strings(v->lost, v->n_lost));
        json_object_object_add(j, "problems", json_strings(v->problems, v->n_problems));
        json_object_object_add(j, "seconds", json_object_new_double(v->seconds));
        print_json(j);
    } else {
        for (size_t i = 0; i < v->n_problems; i++)
            fprintf(stderr, "forkctl: recover: %s\n", v->problems[i]);
        for (size_t i = 0; i < v->n_lost; i++)
            fprintf(stderr, "forkctl: recover: not recovered: %s\n", v->lost[i]);
        if (!g_quiet || bad) {
            if (v->moved_aside[0])
                printf("recover: the old catalog is kept as %s\n", v->moved_aside);
            printf("recover: %s: %llu snapshots from %llu manifests (%llu tombstones), %llu pages from %llu "
                   "chunk files in %.2fs%s\n", bad ? "INCOMPLETE" : "ok", (unsigned long long)v->snapshots,
                   (unsigned long long)v->manifests, (unsigned long long)v->tombstones,
                   (unsigned long long)v->pages, (unsigned long long)v->chunks, v->seconds,
                   v->n_lost ? "; see the snapshots named above" : "");
        }
    }
    fks_recover_free(v);
    return bad ? EX_CORRUPT : EX_OK;
}

static const char H_IMPORT[] =
    "usage: forkctl import-forkd DIR [--prefix P] [--rootfs-dir D] [--json]\n"
    "Imports a forkd (v0.4 to v0.5.3) snapshot root: DIR/<tag>/ with vmstate,\n"
    "memory.bin (or diff.bin) and snapshot.json (v0.4: without). Parents are\n"
    "imported before children with lineage kept, tags prefixed with P. A\n"
    "chained snapshot's memory file is read as forkd restores it: its data\n"
    "overlays the parent's memory, its holes inherit it. Every\n"
    "parent_content_hash (SHA-256 of the parent's memory file) is checked\n"
    "first; a mismatch refuses the import. No symbolic link inside DIR is\n"
    "followed. A rootfs outside the snapshot directory (forkd keeps them in\n"
    "/var/cache/forkd) is imported only from a regular file under D (default\n"
    "/var/cache/forkd) that root or you own, no one else can write, reached\n"
    "without symbolic links; otherwise the snapshot is imported without it\n"
    "and a warning names it.\n";

static int cmd_import(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"prefix", required_argument, NULL, 'p'},
        {"rootfs-dir", required_argument, NULL, 'r'}, {0}};
    fks_forkd_import_opts io = {0};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'p')
            io.prefix = optarg;
        else if (c == 'r')
            io.rootfs_dir = optarg;
        else if ((r = common_opt(c, "import-forkd", H_IMPORT, &json)) >= 0)
            return r;
    }
    if (optind + 1 != argc)
        return usage_err("import-forkd", "%s", "give exactly one forkd snapshot root DIR");
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    struct progress p;
    io.progress = progress_for(&p, "import");
    io.progress_arg = &p;
    fks_forkd_import_result res;
    rc = fks_import_forkd(&res, s, argv[optind], &io);
    progress_end(&p);
    fks_close(s);
    for (size_t i = 0; i < res.n_warnings; i++)
        fprintf(stderr, "forkctl: warning: %s%s\n", res.warnings[i],
                strstr(res.warnings[i], "rootfs") && strstr(res.warnings[i], "not imported")
                    ? " (--rootfs-dir names another directory)" : "");
    if (rc) {
        fprintf(stderr, "forkctl: %s\n", fks_errmsg());
        if (res.n_imported)
            fprintf(stderr, "forkctl: %zu of %zu snapshots were imported before the failure\n", res.n_imported,
                    res.n_found);
        fks_forkd_import_result_clear(&res);
        return exit_code(rc);
    }
    if (json) {
        json_object *j = json_object_new_object(), *w = json_object_new_array();
        json_object_object_add(j, "imported", json_object_new_int64((int64_t)res.n_imported));
        json_object_object_add(j, "without_rootfs", json_object_new_int64((int64_t)res.n_no_rootfs));
        for (size_t i = 0; i < res.n_warnings; i++)
            json_object_array_add(w, json_object_new_string(res.warnings[i]));
        json_object_object_add(j, "warnings", w);
        print_json(j);
    } else if (!g_quiet) {
        printf("imported %zu snapshot%s from %s", res.n_imported, res.n_imported == 1 ? "" : "s", argv[optind]);
        if (res.n_no_rootfs)
            printf("; %zu without the rootfs snapshot.json names (see the warnings)", res.n_no_rootfs);
        printf("\n");
    }
    fks_forkd_import_result_clear(&res);
    return EX_OK;
}

static const char H_EXPORT[] =
    "usage: forkctl export TAG --forkd DIR [--flat] [--tag NAME] [--json]\n"
    "Writes TAG into DIR as forkd v0.5.3 restores it. By default the chain:\n"
    "DIR/<tag>/ for TAG and each ancestor (up to forkd's 32 links; the oldest\n"
    "written is a full base), each chained memory.bin holding the pages that\n"
    "differ from its parent (zero pages as data) and holes elsewhere, with\n"
    "parent_tag and parent_content_hash. --flat: DIR/NAME/ alone, with a full\n"
    "memory.bin and no parent. Every directory has vmstate, rootfs.ext4 when a\n"
    "rootfs is stored, and snapshot.json with absolute paths. forkd tags are\n"
    "[A-Za-z0-9_-]{1,64}, not starting with '-': --tag NAME names TAG's\n"
    "directory otherwise. All or nothing: a failed export writes nothing; an\n"
    "existing identical directory (a shared ancestor) is reused.\n";

static int cmd_export(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"forkd", required_argument, NULL, 'f'},
        {"flat", no_argument, NULL, 'F'}, {"tag", required_argument, NULL, 't'}, {0}};
    const char *out = NULL;
    fks_forkd_export_opts eo = {0};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'f')
            out = optarg;
        else if (c == 'F')
            eo.flat = 1;
        else if (c == 't')
            eo.name = optarg;
        else if ((r = common_opt(c, "export", H_EXPORT, &json)) >= 0)
            return r;
    }
    if (optind + 1 != argc)
        return usage_err("export", "%s", "give exactly one TAG");
    if (!out)
        return usage_err("export", "%s", "--forkd DIR is required");
    if (eo.name && fks_check_forkd_tag(eo.name) != 0)
        return usage_err("export", "--tag: %s", fks_errmsg());
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    fks_forkd_export_result res;
    rc = fks_export_forkd(&res, s, argv[optind], out, &eo);
    fks_close(s);
    if (rc) {
        const char *m = fks_errmsg();
        fprintf(stderr, "forkctl: %s%s\n", m,
                strstr(m, "not a forkd tag") ? (strstr(m, "ancestor") ? " (forkctl tag renames it; --flat exports "
                                                 "TAG alone)" : " (--tag NAME names it for forkd)")
                : rc == FKS_EEXIST ? " (remove it, or export into another --forkd DIR)" : "");
        return exit_code(rc);
    }
    const char *head = res.names[res.n - 1];
    if (json) {
        json_object *j = json_object_new_object(), *d = json_object_new_array();
        json_object_object_add(j, "tag", json_object_new_string(argv[optind]));
        json_object_object_add(j, "forkd", json_object_new_string(out));
        json_object_object_add(j, "name", json_object_new_string(head));
        for (size_t i = 0; i < res.n; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(res.names[i]));
            json_object_object_add(e, "reused", json_object_new_boolean(res.reused[i]));
            json_object_array_add(d, e);
        }
        json_object_object_add(j, "directories", d);
        print_json(j);
    } else if (!g_quiet) {
        size_t reused = 0;
        for (size_t i = 0; i < res.n; i++)
            reused += res.reused[i] != 0;
        printf("exported %s to %s/%s", argv[optind], out, head);
        if (res.n > 1) {
            printf(" as a chain of %zu (base %s", res.n, res.names[0]);
            if (reused)
                printf("; %zu already there", reused);
            printf(")");
        }
        printf("\n");
    }
    return EX_OK;
}

static const char H_PRUNE[] =
    "usage: forkctl prune [--keep-last N] [--keep-within DURATION] [--keep-tag GLOB]...\n"
    "                     [--dry-run] [--json]\n"
    "Removes snapshots no rule keeps, per lineage root (a root and all its\n"
    "descendants): --keep-last keeps the N most recent, --keep-within those\n"
    "younger than DURATION (30s, 10m, 2h, 7d, 4w, 1y), --keep-tag those whose\n"
    "tag matches GLOB. Children of a removed snapshot stay restorable. At least\n"
    "one rule is required. `forkctl gc` reclaims the space afterwards.\n";

static int cmd_prune(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"keep-last", required_argument, NULL, 'l'},
        {"keep-within", required_argument, NULL, 'w'}, {"keep-tag", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'n'}, {0}};
    fks_prune_opts po = {0};
    const char *tags[64];
    int json = 0, c, r;
    double within = 0;
    po.keep_tags = tags;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'l': {
            double v = 0;
            if ((r = num_arg("prune", "--keep-last", "a whole number from 1 to 1000000", optarg, 1, 1000000, 1,
                             &v)) >= 0)
                return r;
            po.keep_last = (int)v;
            break;
        }
        case 'w':
            if ((r = duration_arg("prune", "--keep-within", optarg, &within)) >= 0)
                return r;
            po.keep_within_ms = (int64_t)(within * 1000);
            if (po.keep_within_ms <= 0)
                po.keep_within_ms = 1;      /* under a millisecond: still a rule */
            break;
        case 't':
            if (po.n_keep_tags == 64)
                return usage_err("prune", "%s", "at most 64 --keep-tag options");
            tags[po.n_keep_tags++] = optarg;
            break;
        case 'n': po.dry_run = 1; break;
        default:
            if ((r = common_opt(c, "prune", H_PRUNE, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("prune", "unexpected argument '%s'", argv[optind]);
    if (po.keep_last == 0 && po.keep_within_ms == 0 && po.n_keep_tags == 0)
        return usage_err("prune", "%s", "give at least one rule: --keep-last, --keep-within or --keep-tag");
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    fks_prune_result res;
    rc = fks_prune(&res, s, &po);
    int used = fks_reserve_used(s);
    fks_close(s);
    if (rc) {
        int ex = fail(rc);
        full_disk_note("prune", used, rc);
        fprintf(stderr, "forkctl: prune removed nothing (it removes all or none)\n");
        fks_prune_result_clear(&res);
        return ex;
    }
    if (json) {
        json_object *j = json_object_new_object(), *a = json_object_new_array();
        for (size_t i = 0; i < res.n_removed; i++)
            json_object_array_add(a, json_object_new_string(res.removed[i]));
        json_object_object_add(j, "dry_run", json_object_new_boolean(po.dry_run));
        json_object_object_add(j, "removed", a);
        json_object_object_add(j, "kept", json_object_new_int64((int64_t)res.n_kept));
        print_json(j);
    } else if (!g_quiet) {
        for (size_t i = 0; i < res.n_removed; i++)
            printf("%s %s\n", po.dry_run ? "would remove" : "removed", esc(res.removed[i]));
        printf("prune%s: %zu removed, %zu kept\n", po.dry_run ? " (dry run)" : "", res.n_removed, res.n_kept);
    }
    full_disk_note("prune", used, 0);
    fks_prune_result_clear(&res);
    return EX_OK;
}

static const char H_INFO[] =
    "usage: forkctl info TAG [--unique] [--runs] [--json]\n"
    "Shows one snapshot: its chain from the root, parent and children, when it\n"
    "was made, its files, and its sizes: logical; non-zero (pages not all\n"
    "zero); shared with its parent (same page at the same place); stored (what\n"
    "its ingest added). --unique adds the pages no other snapshot references\n"
    "and their stored bytes, which `rmi` then `gc` would free (it reads every\n"
    "page map of the store once; exact after a gc). --runs adds each file's\n"
    "number of page-map runs (it reads the file's whole map). Snapshots taken by\n"
    "`forkctl branch` also show the pause, snapshot and ingest times and the\n"
    "Firecracker and snapshot format versions.\n";

static json_object *opt_int(int64_t v)
{
    return v >= 0 ? json_object_new_int64(v) : NULL;
}

static void when(char *buf, size_t len, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char ag[32];
    age(ag, sizeof ag, ms);
    if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm))
        snprintf(buf, len, "%lld ms", (long long)ms);
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, " (%s)", ag);
}

static int cmd_info(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"unique", no_argument, NULL, 'U'},
        {"runs", no_argument, NULL, 'R'}, {0}};
    int json = 0, unique = 0, runs = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'U')
            unique = 1;
        else if (c == 'R')
            runs = 1;
        else if ((r = common_opt(c, "info", H_INFO, &json)) >= 0)
            return r;
    }
    if (optind + 1 != argc)
        return usage_err("info", "%s", "give exactly one TAG");
    const char *tag = argv[optind];
    fks_store *s = NULL;
    fks_snapinfo in, *chain = NULL, *all = NULL;
    fks_snap_stats *st = NULL;
    fks_branch_info bi;
    fks_serve_stats lz;
    int64_t lz_ms = 0;
    size_t nchain = 0, nall = 0;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    if ((rc = fks_get(&in, s, tag)) == 0 && (rc = fks_chain_brief(&chain, &nchain, s, tag)) == 0 &&
        (rc = fks_children(&all, &nall, s, tag)) == 0 && (rc = fks_branch_info_get(&bi, s, tag)) == 0 &&
        (rc = fks_lazy_stats_get(&lz, &lz_ms, s, tag)) == 0)
        rc = fks_snap_stats_get_ex(&st, s, tag, (unique ? FKS_STATS_UNIQUE : 0) | (runs ? FKS_STATS_RUNS : 0));
    fks_close(s);
    if (rc) {
        free(chain);
        free(all);
        return fail(rc);
    }
    if (json) {
        json_object *j = json_object_new_object(), *ch = json_object_new_array(),
                    *kids = json_object_new_array(), *arts = json_object_new_array();
        json_object_object_add(j, "tag", json_object_new_string(in.tag));
        json_object_object_add(j, "parent", in.parent[0] ? json_object_new_string(in.parent) : NULL);
        for (size_t i = 0; i < nall; i++)
            json_object_array_add(kids, json_object_new_string(all[i].tag));
        json_object_object_add(j, "children", kids);
        for (size_t i = 0; i < nchain; i++)
            json_object_array_add(ch, json_object_new_string(chain[i].tag));
        json_object_object_add(j, "chain", ch);
        json_object_object_add(j, "depth", json_object_new_int(in.depth));
        json_object_object_add(j, "created_ms", json_object_new_int64(in.created_ms));
#define B(k, v) json_object_object_add(j, k, json_object_new_int64((int64_t)(v)))
        B("logical_bytes", st->logical_bytes);
        B("nonzero_bytes", st->nonzero_bytes);
        B("shared_with_parent_bytes", st->shared_with_parent_bytes);
        if (st->unique_known) {
            B("unique_pages", st->unique_pages);
            B("unique_bytes", st->unique_bytes);
            B("unique_stored_bytes", st->unique_stored_bytes);
        }
        B("stored_bytes", st->stored_bytes);
#undef B
        for (size_t i = 0; i < st->n_artifacts; i++) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "name", json_object_new_string(st->artifacts[i].name));
            json_object_object_add(a, "size", json_object_new_int64((int64_t)st->artifacts[i].size));
            json_object_object_add(a, "nonzero_bytes", json_object_new_int64((int64_t)st->artifacts[i].nonzero_bytes));
            json_object_object_add(a, "runs", st->runs_known ? json_object_new_int64((int64_t)st->artifacts[i].runs)
                                                             : NULL);
            json_object_array_add(arts, a);
        }
        json_object_object_add(j, "artifacts", arts);
        json_object_object_add(j, "pause_ms", opt_int(in.pause_ms));
        json_object_object_add(j, "snapshot_ms", opt_int(in.snapshot_ms));
        json_object_object_add(j, "ingest_ms", opt_int(in.ingest_ms));
        json_object_object_add(j, "diff_bytes", opt_int(in.diff_bytes));
        json_object_object_add(j, "firecracker_version", bi.fc_version[0] ? json_object_new_string(bi.fc_version) : NULL);
        json_object_object_add(j, "format_version",
                               bi.format_version[0] ? json_object_new_string(bi.format_version) : NULL);
        json_object *lzj = NULL;
        if (lz_ms) {
            lzj = serve_stats_json(tag, &lz);
            json_object_object_del(lzj, "tag");
            json_object_object_del(lzj, "peak_rss_kib");
            json_object_object_del(lzj, "seconds");
            json_object_object_del(lzj, "prefetch_seconds");
            json_object_object_del(lzj, "working_set_from");
            json_object_object_add(lzj, "finished_ms", json_object_new_int64(lz_ms));
        }
        json_object_object_add(j, "last_lazy_restore", lzj);
        print_json(j);
    } else {
        char b[64], w[96];
        int nkids = 0;
        printf("snapshot          %s\n", in.tag);
        printf("parent            %s\n", in.parent[0] ? in.parent : "- (a root)");
        printf("children         ");
        for (size_t i = 0; i < nall; i++)
            printf(" %s", all[i].tag), nkids++;
        printf("%s\n", nkids ? "" : " -");
        printf("chain            ");
        for (size_t i = 0; i < nchain; i++)
            printf("%s%s", i ? " > " : " ", chain[i].tag);
        printf("  (depth %d)\n", in.depth);
        when(w, sizeof w, in.created_ms);
        printf("created           %s\n", w);
#define H(label, v, note) (human(b, sizeof b, (double)(v)), printf("%-17s %-11s %s\n", label, b, note))
        H("logical", st->logical_bytes, "all files");
        H("non-zero", st->nonzero_bytes, "pages not all zero");
        H("shared w/ parent", st->shared_with_parent_bytes, "same page at the same place in the parent");
        if (st->unique_known) {
            H("unique", st->unique_bytes, "pages no other snapshot references");
            H("freed by rmi+gc", st->unique_stored_bytes, "at most: stored blocks holding those pages");
        }
        H("stored", st->stored_bytes, "bytes its ingest added");
#undef H
        if (in.pause_ms >= 0 || in.snapshot_ms >= 0 || in.ingest_ms >= 0) {
            human(b, sizeof b, (double)(in.diff_bytes > 0 ? in.diff_bytes : 0));
            printf("branch timings    pause %lld ms, snapshot %lld ms, ingest %lld ms, diff file %s\n",
                   (long long)in.pause_ms, (long long)in.snapshot_ms, (long long)in.ingest_ms, b);
        } else {
            printf("branch timings    - (not taken by forkctl branch)\n");
        }
        if (bi.fc_version[0] || bi.format_version[0])
            printf("versions          Firecracker %s, snapshot format %s\n", bi.fc_version[0] ? bi.fc_version : "?",
                   bi.format_version[0] ? bi.format_version : "?");
        else
            printf("versions          - (not recorded)\n");
        if (lz_ms) {
            when(w, sizeof w, lz_ms);
            human(b, sizeof b, (double)lz.bytes_decoded);
            printf("last lazy restore %s: %llu VM(s), %llu faults, pages %llu on demand, %llu by prefetch, %llu zero; "
                   "%s decoded; fault p50 %.1f us, p99 %.1f us; working set %llu pages\n", w,
                   (unsigned long long)lz.vms, (unsigned long long)lz.faults, (unsigned long long)lz.pages_demand,
                   (unsigned long long)lz.pages_prefetch, (unsigned long long)lz.pages_zero, b, lz.fault_p50_us,
                   lz.fault_p99_us, (unsigned long long)lz.working_set_pages);
        } else {
            printf("last lazy restore - (never)\n");
        }
        printf("\n%-24s %11s %11s %8s\n", "FILE", "SIZE", "NON-ZERO", "RUNS");
        for (size_t i = 0; i < st->n_artifacts; i++) {
            char sz[32], nz[32], rn[32] = "-";
            human(sz, sizeof sz, (double)st->artifacts[i].size);
            human(nz, sizeof nz, (double)st->artifacts[i].nonzero_bytes);
            if (st->runs_known)
                snprintf(rn, sizeof rn, "%llu", (unsigned long long)st->artifacts[i].runs);
            printf("%-24s %11s %11s %8s\n", st->artifacts[i].name, sz, nz, rn);
        }
    }
    fks_snap_stats_free(st);
    free(chain);
    free(all);
    return EX_OK;
}

static const char H_DIFF[] =
    "usage: forkctl diff A B [--json]\n"
    "Compares snapshots A and B file by file (files of the same name) from their\n"
    "page maps alone, without reading page data: for each file, how many 4 KiB\n"
    "pages differ and the byte ranges they cover, adjacent pages merged. Pages\n"
    "past the end of the shorter file count as zero. Exits 0 either way.\n";

static int cmd_diff(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {0}};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1)
        if ((r = common_opt(c, "diff", H_DIFF, &json)) >= 0)
            return r;
    if (optind + 2 != argc)
        return usage_err("diff", "%s", "give two TAGs");
    const char *ta = argv[optind], *tb = argv[optind + 1];
    fks_store *s = NULL;
    fks_diff_report *d = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc == 0)
        rc = fks_diff(&d, s, ta, tb);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object(), *arts = json_object_new_array();
        json_object_object_add(j, "a", json_object_new_string(ta));
        json_object_object_add(j, "b", json_object_new_string(tb));
        json_object_object_add(j, "pages", json_object_new_int64((int64_t)d->pages));
        json_object_object_add(j, "bytes", json_object_new_int64((int64_t)d->bytes));
        for (size_t i = 0; i < d->n; i++) {
            const fks_diff_artifact *x = &d->artifacts[i];
            uint64_t size = x->size_a > x->size_b ? x->size_a : x->size_b;
            json_object *a = json_object_new_object(), *rg = json_object_new_array();
            json_object_object_add(a, "name", json_object_new_string(x->name));
            json_object_object_add(a, "size_a", x->in_a ? json_object_new_int64((int64_t)x->size_a) : NULL);
            json_object_object_add(a, "size_b", x->in_b ? json_object_new_int64((int64_t)x->size_b) : NULL);
            json_object_object_add(a, "pages", json_object_new_int64((int64_t)x->pages));
            json_object_object_add(a, "bytes", json_object_new_int64((int64_t)x->bytes));
            for (size_t k = 0; k < x->n_ranges; k++) {
                uint64_t off = x->ranges[k].pgno * FKS_PAGE_SIZE, end = (x->ranges[k].pgno + x->ranges[k].npages) * FKS_PAGE_SIZE;
                json_object *e = json_object_new_object();
                json_object_object_add(e, "offset", json_object_new_int64((int64_t)off));
                json_object_object_add(e, "length", json_object_new_int64((int64_t)((end < size ? end : size) - off)));
                json_object_array_add(rg, e);
            }
            json_object_object_add(a, "ranges", rg);
            json_object_array_add(arts, a);
        }
        json_object_object_add(j, "artifacts", arts);
        print_json(j);
    } else {
        char b[32];
        for (size_t i = 0; i < d->n; i++) {
            const fks_diff_artifact *x = &d->artifacts[i];
            uint64_t size = x->size_a > x->size_b ? x->size_a : x->size_b;
            human(b, sizeof b, (double)x->bytes);
            printf("%s: ", x->name);
            if (!x->in_a || !x->in_b)
                printf("only in %s; ", x->in_a ? ta : tb);
            else if (x->size_a != x->size_b)
                printf("size %llu -> %llu; ", (unsigned long long)x->size_a, (unsigned long long)x->size_b);
            if (x->pages == 0)
                printf("no page differs\n");
            else
                printf("%llu page%s differ%s (%s) in %zu range%s\n", (unsigned long long)x->pages,
                       x->pages == 1 ? "" : "s", x->pages == 1 ? "s" : "", b, x->n_ranges,
                       x->n_ranges == 1 ? "" : "s");
            for (size_t k = 0; k < x->n_ranges; k++) {
                uint64_t off = x->ranges[k].pgno * FKS_PAGE_SIZE, end = (x->ranges[k].pgno + x->ranges[k].npages) * FKS_PAGE_SIZE;
                if (end > size)
                    end = size;
                human(b, sizeof b, (double)(end - off));
                printf("  0x%010llx-0x%010llx  %s\n", (unsigned long long)off, (unsigned long long)end - 1, b);
            }
        }
        human(b, sizeof b, (double)d->bytes);
        printf("%s -> %s: %llu page%s differ (%s)\n", ta, tb, (unsigned long long)d->pages,
               d->pages == 1 ? "" : "s", b);
    }
    fks_diff_free(d);
    return EX_OK;
}

static const char H_STATS[] =
    "usage: forkctl stats [--json | --prometheus]\n"
    "Store-wide numbers: snapshots, logical bytes, stored bytes (compressed\n"
    "pages plus their record headers), chunk and catalog bytes on disk, the\n"
    "dedup ratio (page references per distinct page), compression ratio, share\n"
    "of zero pages, and the bytes gc would reclaim (pages no snapshot\n"
    "references). --prometheus prints node_exporter textfile format.\n";

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void prom(const char *store, const char *name, const char *help, double v, int integer)
{
    printf("# HELP forkstore_%s %s\n# TYPE forkstore_%s gauge\nforkstore_%s{store=\"", name, help, name, name);
    prom_label(stdout, store);
    if (integer)
        printf("\"} %.0f\n", v);
    else
        printf("\"} %.6g\n", v);
}

static int cmd_stats(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"prometheus", no_argument, NULL, 'p'}, {0}};
    int json = 0, promf = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'p')
            promf = 1;
        else if ((r = common_opt(c, "stats", H_STATS, &json)) >= 0)
            return r;
    }
    if (optind < argc)
        return usage_err("stats", "unexpected argument '%s'", argv[optind]);
    if (json && promf)
        return usage_err("stats", "%s", "give --json or --prometheus, not both");
    char def[4096];
    const char *dir = g_store;
    int rc = 0;
    if (!dir && (rc = fks_default_dir(def, sizeof def)) == 0)
        dir = def;
    fks_store *s = NULL;
    fks_store_stats st;
    if (rc == 0 && (rc = fks_open(&s, dir, FKS_OPEN_READONLY)) == 0)
        rc = fks_store_stats_get(&st, s);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (promf) {
        prom(dir, "snapshots", "Snapshots in the store.", (double)st.snapshots, 1);
        prom(dir, "artifacts", "Files of all snapshots.", (double)st.artifacts, 1);
        prom(dir, "logical_bytes", "Sum of the sizes of all snapshot files.", (double)st.logical_bytes, 1);
        prom(dir, "stored_bytes", "Bytes of every indexed page in chunk files (compressed, with record headers).",
             (double)st.stored_bytes, 1);
        prom(dir, "pages", "Distinct pages in the page index.", (double)st.pages, 1);
        prom(dir, "referenced_pages", "Indexed pages some snapshot references.", (double)st.referenced_pages, 1);
        prom(dir, "reclaimable_bytes", "Stored bytes of pages no snapshot references (gc reclaims them).",
             (double)st.reclaimable_bytes, 1);
        prom(dir, "chunks", "Chunk files in the catalog.", (double)st.chunks, 1);
        prom(dir, "chunk_used_bytes", "Committed bytes in chunk files.", (double)st.chunk_used_bytes, 1);
        prom(dir, "chunk_disk_bytes", "Bytes allocated on disk to chunk files.", (double)st.chunk_disk_bytes, 1);
        prom(dir, "catalog_disk_bytes", "Bytes allocated on disk to the catalog and its WAL.",
             (double)st.catalog_disk_bytes, 1);
        prom(dir, "dead_bytes", "Committed chunk bytes no page names (gc compacts them away).", (double)st.dead_bytes,
             1);
        prom(dir, "dead_ratio", "Share of committed chunk record bytes that are dead.", st.dead_share, 0);
        prom(dir, "dedup_ratio", "Page references per distinct referenced page.", st.dedup_ratio, 0);
        prom(dir, "compression_ratio", "Page bytes per stored byte.", st.compression_ratio, 0);
        prom(dir, "zero_page_ratio", "Share of all file pages that are zero pages (never stored).",
             st.zero_page_share, 0);
    } else if (json) {
        json_object *j = json_object_new_object();
#define I(k) json_object_object_add(j, #k, json_object_new_int64((int64_t)st.k))
        I(snapshots); I(artifacts); I(runs); I(chunks); I(logical_bytes); I(logical_pages); I(page_refs);
        I(pages); I(referenced_pages); I(stored_bytes); I(reclaimable_bytes); I(chunk_used_bytes);
        I(chunk_disk_bytes); I(catalog_disk_bytes); I(dead_bytes);
#undef I
        json_object_object_add(j, "dead_share", json_object_new_double(st.dead_share));
        json_object_object_add(j, "dedup_ratio", json_object_new_double(st.dedup_ratio));
        json_object_object_add(j, "compression_ratio", json_object_new_double(st.compression_ratio));
        json_object_object_add(j, "zero_page_share", json_object_new_double(st.zero_page_share));
        print_json(j);
    } else {
        char a[32], b[32], d[32];
        human(a, sizeof a, (double)st.logical_bytes);
        printf("snapshots          %llu (%llu files)\n", (unsigned long long)st.snapshots,
               (unsigned long long)st.artifacts);
        printf("logical            %s\n", a);
        printf("zero pages         %.1f%% (never stored)\n", 100 * st.zero_page_share);
        printf("dedup              %.2fx (%llu page references, %llu distinct pages)\n", st.dedup_ratio,
               (unsigned long long)st.page_refs, (unsigned long long)st.referenced_pages);
        human(a, sizeof a, (double)st.stored_bytes);
        printf("stored             %s (%llu pages, compression %.2fx)\n", a, (unsigned long long)st.pages,
               st.compression_ratio);
        human(a, sizeof a, (double)st.reclaimable_bytes);
        printf("reclaimable by gc  %s (%llu pages no snapshot references)\n", a,
               (unsigned long long)(st.pages - st.referenced_pages));
        human(a, sizeof a, (double)st.chunk_disk_bytes);
        human(b, sizeof b, (double)st.chunk_used_bytes);
        human(d, sizeof d, (double)st.catalog_disk_bytes);
        printf("chunk files        %llu, %s on disk (%s used)\n", (unsigned long long)st.chunks, a, b);
        human(a, sizeof a, (double)st.dead_bytes);
        printf("dead in chunks     %s (%.1f%% of the records; gc compacts down to 5%%)\n", a, 100 * st.dead_share);
        printf("catalog            %s on disk\n", d);
    }
    return EX_OK;
}

static const char H_TAG[] =
    "usage: forkctl tag OLD NEW [--json]\n"
    "Renames snapshot OLD to NEW. Lineage is kept (children refer to their\n"
    "parent by id, not by tag). Refused if a snapshot NEW exists.\n";

static int cmd_tag(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {0}};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1)
        if ((r = common_opt(c, "tag", H_TAG, &json)) >= 0)
            return r;
    if (optind + 2 != argc)
        return usage_err("tag", "%s", "give OLD and NEW");
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc == 0)
        rc = fks_tag(s, argv[optind], argv[optind + 1]);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "old", json_object_new_string(argv[optind]));
        json_object_object_add(j, "new", json_object_new_string(argv[optind + 1]));
        print_json(j);
    } else if (!g_quiet) {
        printf("renamed %s to %s\n", argv[optind], argv[optind + 1]);
    }
    return EX_OK;
}

/* ---- remotes ---- */

static const char H_REMOTE[] =
    "usage: forkctl remote add NAME s3://BUCKET[/PREFIX] --endpoint URL [--region R]\n"
    "                         [--encrypt KEYFILE] [--json]\n"
    "       forkctl remote keygen KEYFILE\n"
    "       forkctl remote ls [--json]\n"
    "       forkctl remote rm NAME [--json]\n"
    "       forkctl remote gc [--remote NAME] [--interval D] [--min-age D] [--lag D]\n"
    "                         [--break-lock] [--dry-run] [--json]\n"
    "       forkctl remote prune [--remote NAME] [--keep-last N] [--keep-within D]\n"
    "                         [--keep-tag GLOB]... [--dry-run] [--json]\n"
    "       forkctl remote verify [--remote NAME] [--sample PERCENT] [--json]\n"
    "Names an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, R2) that push and\n"
    "pull use; requests go path-style to URL (http[s]://HOST[:PORT]), signed for\n"
    "region R (default us-east-1). Credentials are not stored: push and pull read\n"
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else profile\n"
    "$AWS_PROFILE (default) of ~/.aws/credentials. rm forgets the remote and\n"
    "leaves the bucket as it is.\n"
    "--encrypt seals packs, indexes and manifests with AES-256-GCM under the key in\n"
    "KEYFILE and keys page and tag names, so the bucket's owner learns neither\n"
    "pages nor their hashes; every host of the remote needs the same KEYFILE (the\n"
    "catalog keeps its path and key id, never the key). keygen writes a new random\n"
    "KEYFILE (mode 0600, never over an existing file).\n"
    "gc deletes packs no manifest needs and merges the index objects, while other\n"
    "hosts push: a pack goes once two gc runs at least --interval apart (4h) found\n"
    "it unreferenced and it is older than --min-age (2h); --lag (1m) is how long\n"
    "the bucket's listings may lag. One gc at a time per bucket (a lock object);\n"
    "--break-lock removes the lock of a gc that was killed.\n"
    "prune deletes the manifests of snapshots no rule keeps (the rules of\n"
    "`forkctl prune`; ancestors of kept snapshots stay); gc then frees the pages.\n"
    "verify reads the packs back (all, or a random PERCENT), checks each against\n"
    "its name and every page against its hash, and that every page of every\n"
    "manifest is in an indexed pack; exits 5 if anything is wrong.\n";

static json_object *remote_json(const fks_remote *r)
{
    json_object *o = json_object_new_object();
    char url[700];
    snprintf(url, sizeof url, "s3://%s%s%s", r->bucket, r->prefix[0] ? "/" : "", r->prefix);
    json_object_object_add(o, "name", json_object_new_string(r->name));
    json_object_object_add(o, "url", json_object_new_string(url));
    json_object_object_add(o, "bucket", json_object_new_string(r->bucket));
    json_object_object_add(o, "prefix", json_object_new_string(r->prefix));
    json_object_object_add(o, "endpoint", json_object_new_string(r->endpoint));
    json_object_object_add(o, "region", json_object_new_string(r->region));
    json_object_object_add(o, "created_ms", json_object_new_int64(r->created_ms));
    json_object_object_add(o, "encrypted", json_object_new_boolean(r->key_file[0] != 0));
    json_object_object_add(o, "key_file", r->key_file[0] ? json_object_new_string(r->key_file) : NULL);
    json_object_object_add(o, "key_id", r->key_id[0] ? json_object_new_string(r->key_id) : NULL);
    return o;
}

static int remote_maint(int argc, char **argv);

static int cmd_remote(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "gc") == 0 || strcmp(argv[1], "prune") == 0 || strcmp(argv[1], "verify") == 0))
        return remote_maint(argc - 1, argv + 1);
    static const struct option o[] = {COMMON_OPTS, {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'}, {"encrypt", required_argument, NULL, 'k'}, {0}};
    const char *endpoint = NULL, *region = NULL, *keyfile = NULL;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'e')
            endpoint = optarg;
        else if (c == 'r')
            region = optarg;
        else if (c == 'k')
            keyfile = optarg;
        else if ((r = common_opt(c, "remote", H_REMOTE, &json)) >= 0)
            return r;
    }
    if (optind >= argc)
        return usage_err("remote", "%s", "give add, keygen, ls or rm");
    const char *sub = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (keyfile && strcmp(sub, "add") != 0)
        return usage_err("remote", "%s", "--encrypt goes with remote add");
    if (strcmp(sub, "keygen") == 0) {
        if (nargs != 1 || endpoint || region)
            return usage_err("remote", "%s", "remote keygen takes KEYFILE");
        int rc = fks_remote_keygen(args[0]);
        if (rc)
            return fail(rc);
        if (json)
            print_json(json_object_new_string(args[0]));
        else if (!g_quiet)
            printf("wrote key file %s: copy it (safely) to every host of the remote; without it the bucket is "
                   "unreadable\n", esc(args[0]));
        return EX_OK;
    }
    fks_remote rem;
    memset(&rem, 0, sizeof rem);
    if (strcmp(sub, "add") == 0) {
        if (nargs != 2)
            return usage_err("remote", "%s", "remote add takes NAME and s3://BUCKET[/PREFIX]");
        if (!endpoint)
            return usage_err("remote", "%s", "remote add needs --endpoint URL");
        if (strlen(args[0]) >= sizeof rem.name || strlen(endpoint) >= sizeof rem.endpoint ||
            (region && strlen(region) >= sizeof rem.region) || (keyfile && strlen(keyfile) >= sizeof rem.key_file))
            return usage_err("remote", "%s", "name, endpoint, region or key file too long");
        if (keyfile && !keyfile[0])
            return usage_err("remote", "%s", "--encrypt needs a key file (remote keygen writes one)");
        snprintf(rem.key_file, sizeof rem.key_file, "%s", keyfile ? keyfile : "");
        snprintf(rem.name, sizeof rem.name, "%s", args[0]);
        snprintf(rem.endpoint, sizeof rem.endpoint, "%s", endpoint);
        snprintf(rem.region, sizeof rem.region, "%s", region ? region : "");
        int rc = fks_remote_parse_url(&rem, args[1]);
        if (rc)
            return fail(rc);
    } else if (strcmp(sub, "ls") == 0) {
        if (nargs != 0 || endpoint || region)
            return usage_err("remote", "%s", "remote ls takes no arguments (--endpoint and --region go with add)");
    } else if (strcmp(sub, "rm") == 0) {
        if (nargs != 1 || endpoint || region)
            return usage_err("remote", "%s", "remote rm takes NAME (--endpoint and --region go with add)");
    } else {
        return usage_err("remote", "unknown subcommand '%s' (add, keygen, ls, rm; gc, prune and verify come first: "
                         "remote gc [OPTIONS])", sub);
    }
    fks_store *s = NULL;
    int rc = open_store(&s, strcmp(sub, "ls") == 0 ? FKS_OPEN_READONLY : 0);
    if (rc)
        return fail(rc);
    fks_remote *list = NULL;
    size_t n = 0;
    if (strcmp(sub, "add") == 0 && (rc = fks_remote_add(s, &rem)) == 0)
        rc = fks_remote_get(&rem, s, rem.name);
    else if (strcmp(sub, "rm") == 0)
        rc = fks_remote_rm(s, args[0]);
    else if (strcmp(sub, "ls") == 0)
        rc = fks_remote_list(&list, &n, s);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (strcmp(sub, "ls") == 0) {
        if (json) {
            json_object *a = json_object_new_array();
            for (size_t i = 0; i < n; i++)
                json_object_array_add(a, remote_json(&list[i]));
            print_json(a);
        } else {
            for (size_t i = 0; i < n; i++) {
                printf("%s\ts3://%s%s", esc(list[i].name), list[i].bucket, list[i].prefix[0] ? "/" : "");
                put_esc(stdout, list[i].prefix);
                putchar('\t');
                put_esc(stdout, list[i].endpoint);
                printf("\t%s", esc(list[i].region));
                if (list[i].key_file[0])
                    printf("\tencrypted (key id %s)", list[i].key_id);
                putchar('\n');
            }
        }
        free(list);
    } else if (json) {
        print_json(strcmp(sub, "add") == 0 ? remote_json(&rem) : json_object_new_string(args[0]));
    } else if (!g_quiet) {
        printf("%s remote %s\n", strcmp(sub, "add") == 0 ? "added" : "removed", esc(strcmp(sub, "add") == 0 ? rem.name : args[0]));
    }
    return EX_OK;
}

/* remote gc | prune | verify: argv[0] is the subcommand. */
static int remote_maint(int argc, char **argv)
{
    enum { O_REMOTE = 2000, O_INTERVAL, O_MINAGE, O_LAG, O_BREAK, O_DRY, O_LAST, O_WITHIN, O_KTAG, O_SAMPLE };
    static const struct option o[] = {COMMON_OPTS, {"remote", required_argument, NULL, O_REMOTE},
        {"interval", required_argument, NULL, O_INTERVAL}, {"min-age", required_argument, NULL, O_MINAGE},
        {"lag", required_argument, NULL, O_LAG}, {"break-lock", no_argument, NULL, O_BREAK},
        {"dry-run", no_argument, NULL, O_DRY}, {"keep-last", required_argument, NULL, O_LAST},
        {"keep-within", required_argument, NULL, O_WITHIN}, {"keep-tag", required_argument, NULL, O_KTAG},
        {"sample", required_argument, NULL, O_SAMPLE}, {0}};
    const char *sub = argv[0], *remote = NULL;
    int gc = strcmp(sub, "gc") == 0, prune = strcmp(sub, "prune") == 0, json = 0, c, r;
    fks_remote_gc_opts go = {0};
    fks_prune_opts po = {0};
    const char *ktags[64];
    double v = 0, sample = 100;
    po.keep_tags = ktags;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "remote %s", sub);
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        int gc_only = c == O_INTERVAL || c == O_MINAGE || c == O_LAG || c == O_BREAK;
        int prune_only = c == O_LAST || c == O_WITHIN || c == O_KTAG;
        if ((gc_only && !gc) || (prune_only && !prune) || (c == O_DRY && !gc && !prune) ||
            (c == O_SAMPLE && (gc || prune)))
            return usage_err("remote", "%s does not take %s", cmd, argv_opt());
        switch (c) {
        case O_REMOTE: remote = optarg; break;
        case O_INTERVAL: case O_MINAGE: case O_LAG:
            if ((r = duration_arg("remote", argv_opt(), optarg, &v)) >= 0)
                return r;
            *(c == O_INTERVAL ? &go.interval_ms : c == O_MINAGE ? &go.min_age_ms : &go.lag_ms) =
                (int64_t)(v * 1000) > 0 ? (int64_t)(v * 1000) : 1;
            break;
        case O_BREAK: go.break_lock = 1; break;
        case O_DRY: go.dry_run = po.dry_run = 1; break;
        case O_LAST:
            if ((r = num_arg("remote", "--keep-last", "a whole number from 1 to 1000000", optarg, 1, 1000000, 1,
                             &v)) >= 0)
                return r;
            po.keep_last = (int)v;
            break;
        case O_WITHIN:
            if ((r = duration_arg("remote", "--keep-within", optarg, &v)) >= 0)
                return r;
            po.keep_within_ms = (int64_t)(v * 1000) > 0 ? (int64_t)(v * 1000) : 1;
            break;
        case O_KTAG:
            if (po.n_keep_tags == 64)
                return usage_err("remote", "%s", "at most 64 --keep-tag options");
            ktags[po.n_keep_tags++] = optarg;
            break;
        case O_SAMPLE:
            if ((r = num_arg("remote", "--sample", "a percentage above 0 and at most 100", optarg, 0, 100, 0,
                             &sample)) >= 0)
                return r;
            if (sample <= 0)
                return usage_err("remote", "--sample takes a percentage above 0 and at most 100, got '%s'", optarg);
            break;
        default:
            if ((r = common_opt(c, "remote", H_REMOTE, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("remote", "%s: unexpected argument '%s'", cmd, argv[optind]);
    if (prune && po.keep_last == 0 && po.keep_within_ms == 0 && po.n_keep_tags == 0)
        return usage_err("remote", "%s", "remote prune: give at least one rule: --keep-last, --keep-within or "
                         "--keep-tag");
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    if (gc) {
        fks_remote_gc_stats st;
        rc = fks_remote_gc(&st, s, remote, &go);
        fks_close(s);
        if (rc) {
            if (rc == FKS_ELOCKED)
                fprintf(stderr, "forkctl: remote gc --break-lock removes the lock of a gc that was killed\n");
            return fail(rc);
        }
        if (json) {
            json_object *j = json_object_new_object();
#define F(k) json_object_object_add(j, #k, json_object_new_int64((int64_t)st.k))
            F(manifests); F(indexes); F(packs); F(packs_referenced); F(packs_marked); F(packs_deleted);
            F(bytes_deleted); F(indexes_merged); F(index_entries); F(marks_deleted); F(interval_ms);
            F(min_age_ms); F(lag_ms); F(server_ms); F(requests);
#undef F
            json_object_object_add(j, "dry_run", json_object_new_boolean(go.dry_run));
            json_object_object_add(j, "seconds", json_object_new_double(st.seconds));
            print_json(j);
        } else if (!g_quiet) {
            char b[32];
            human(b, sizeof b, (double)st.bytes_deleted);
            printf("remote gc%s: %llu manifests, %llu packs (%llu referenced); %s %llu packs (%s), %llu marked "
                   "for a later run; %llu index objects merged; %.1fs\n", go.dry_run ? " (dry run)" : "",
                   (unsigned long long)st.manifests, (unsigned long long)st.packs,
                   (unsigned long long)st.packs_referenced, go.dry_run ? "would delete" : "deleted",
                   (unsigned long long)st.packs_deleted, b, (unsigned long long)st.packs_marked,
                   (unsigned long long)st.indexes_merged, st.seconds);
        }
        return EX_OK;
    }
    if (prune) {
        fks_prune_result res;
        size_t anc = 0;
        rc = fks_remote_prune(&res, &anc, s, remote, &po);
        fks_close(s);
        if (rc) {
            fks_prune_result_clear(&res);
            return fail(rc);
        }
        if (json) {
            json_object *j = json_object_new_object(), *a = json_object_new_array();
            for (size_t i = 0; i < res.n_removed; i++)
                json_object_array_add(a, json_object_new_string(res.removed[i]));
            json_object_object_add(j, "dry_run", json_object_new_boolean(po.dry_run));
            json_object_object_add(j, "removed", a);
            json_object_object_add(j, "kept", json_object_new_int64((int64_t)res.n_kept));
            json_object_object_add(j, "kept_as_ancestors", json_object_new_int64((int64_t)anc));
            print_json(j);
        } else if (!g_quiet) {
            for (size_t i = 0; i < res.n_removed; i++)
                printf("%s %s\n", po.dry_run ? "would remove" : "removed", esc(res.removed[i]));
            printf("remote prune: %zu removed, %zu kept (%zu as ancestors of kept ones)%s\n", res.n_removed,
                   res.n_kept, anc, po.dry_run ? " (dry run)" : "; remote gc frees their pages");
        }
        fks_prune_result_clear(&res);
        return EX_OK;
    }
    fks_remote_verify_report *vr = NULL;
    struct progress p;
    fks_progress_fn fn = progress_for(&p, "remote verify");
    rc = fks_remote_verify(&vr, s, remote, sample, fn, &p);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    int bad = vr->n_problems > 0;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "ok", json_object_new_boolean(!bad));
#define F(k) json_object_object_add(j, #k, json_object_new_int64((int64_t)vr->k))
        F(manifests); F(indexes); F(packs); F(packs_checked); F(pages_checked); F(pages_reachable);
        F(bad_manifests); F(bad_indexes); F(bad_packs); F(bad_pages); F(unreachable_pages); F(bytes_down);
        F(requests);
#undef F
        json_object_object_add(j, "problems", json_strings(vr->problems, vr->n_problems));
        json_object_object_add(j, "affected_snapshots", json_strings(vr->affected, vr->n_affected));
        json_object_object_add(j, "seconds", json_object_new_double(vr->seconds));
        print_json(j);
    } else {
        put_problems("remote verify", vr->problems, vr->n_problems, NULL, 0, vr->affected, vr->n_affected);
        if (!g_quiet || bad)
            printf("remote verify: %s: %llu manifests, %llu index objects, %llu of %llu packs read, %llu pages "
                   "checked, %llu pages of manifests reachable, %.1fs\n", bad ? "DAMAGED" : "ok",
                   (unsigned long long)vr->manifests, (unsigned long long)vr->indexes,
                   (unsigned long long)vr->packs_checked, (unsigned long long)vr->packs,
                   (unsigned long long)vr->pages_checked, (unsigned long long)vr->pages_reachable, vr->seconds);
    }
    fks_remote_verify_free(vr);
    return bad ? EX_CORRUPT : EX_OK;
}

static const char H_PUSH[] =
    "usage: forkctl push TAG... [--remote NAME] [--json]\n"
    "Uploads snapshots and their ancestors to a remote (the only one if --remote\n"
    "is not given): the pages the bucket lacks, whoever pushed them, in packs,\n"
    "then an index, then one manifest per snapshot. Idempotent; after an\n"
    "interruption a re-run finishes the job without sending the packs again.\n";

static const char H_PULL[] =
    "usage: forkctl pull TAG... [--remote NAME] [--json]\n"
    "Downloads snapshots and their ancestors the store lacks from a remote:\n"
    "manifests, then only the pages the store lacks. Every pack is checked\n"
    "against its name and every page against its hash before the snapshot is\n"
    "ingested; snapshots the store has are skipped.\n";

static int push_pull(int argc, char **argv, int push)
{
    const char *cmd = push ? "push" : "pull";
    static const struct option o[] = {COMMON_OPTS, {"remote", required_argument, NULL, 'r'}, {0}};
    const char *remote = NULL;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'r')
            remote = optarg;
        else if ((r = common_opt(c, cmd, push ? H_PUSH : H_PULL, &json)) >= 0)
            return r;
    }
    if (optind >= argc)
        return usage_err(cmd, "%s", "give at least one TAG");
    fks_store *s = NULL;
    int rc = open_store(&s, 0);
    if (rc)
        return fail(rc);
    struct progress p;
    fks_progress_fn fn = progress_for(&p, push ? "push" : "pull");
    fks_remote_stats st;
    memset(&st, 0, sizeof st);
    const char *const *tags = (const char *const *)(argv + optind);
    size_t n = (size_t)(argc - optind);
    rc = push ? fks_push(&st, s, remote, tags, n, fn, &p) : fks_pull(&st, s, remote, tags, n, fn, &p);
    progress_end(&p);
    fks_close(s);
    int ret = rc ? fail(rc) : EX_OK;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "ok", json_object_new_boolean(rc == 0));
#define F(k, v) json_object_object_add(j, k, json_object_new_int64((int64_t)(v)))
        F("snapshots", st.snapshots);
        F("skipped", st.skipped);
        F("pages", st.pages);
        F(push ? "pages_sent" : "pages_fetched", st.pages_sent);
        F(push ? "pages_on_remote" : "pages_local", st.pages_dedup);
        F(push ? "packs_sent" : "packs_fetched", st.packs);
        if (push)
            F("packs_reused", st.packs_reused);
        F("page_bytes", st.page_bytes);
        F("bytes_up", st.bytes_up);
        F("bytes_down", st.bytes_down);
        F("requests", st.requests);
        F("retries", st.retries);
        if (push)
            F("restarts", st.restarts);
        if (push)
            F("working_sets", st.working_sets);
#undef F
        json_object_object_add(j, "seconds", json_object_new_double(st.seconds));
        print_json(j);
    } else if (rc == 0 && !g_quiet) {
        char b[32];
        human(b, sizeof b, (double)(push ? st.bytes_up : st.bytes_down));
        printf("%s: %llu snapshots %s, %llu already there; %llu of %llu pages %s (%llu packs), %s in %llu "
               "requests, %.1fs\n", cmd, (unsigned long long)st.snapshots, push ? "pushed" : "pulled",
               (unsigned long long)st.skipped, (unsigned long long)st.pages_sent, (unsigned long long)st.pages,
               push ? "sent" : "fetched", (unsigned long long)st.packs, b, (unsigned long long)st.requests,
               st.seconds);
    }
    return ret;
}

static int cmd_push(int argc, char **argv)
{
    return push_pull(argc, argv, 1);
}

static int cmd_pull(int argc, char **argv)
{
    return push_pull(argc, argv, 0);
}

/* ---- dispatch ---- */

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
    const char *summary;
};

static const struct command commands[] = {
    {"init", cmd_init, H_INIT, "create a store"},
    {"ingest", cmd_ingest, H_INGEST, "store a snapshot (memory, vmstate, other files)"},
    {"restore", cmd_restore, H_RESTORE, "write a snapshot's files back, or load it into a VMM"},
    {"branch", cmd_branch, H_BRANCH, "snapshot a running Firecracker VM into the store"},
    {"serve-pages", cmd_serve, H_SERVE, "serve a snapshot's memory to VMMs through userfaultfd"},
    {"images", cmd_images, H_IMAGES, "list snapshots"},
    {"log", cmd_log, H_LOG, "show the chain from the root to a snapshot"},
    {"info", cmd_info, H_INFO, "show one snapshot: lineage, files, sizes, timings"},
    {"diff", cmd_diff, H_DIFF, "show which pages differ between two snapshots"},
    {"tag", cmd_tag, H_TAG, "rename a snapshot"},
    {"rmi", cmd_rmi, H_RMI, "remove snapshots (children stay restorable)"},
    {"sql", cmd_sql, H_SQL, "run a read-only SQL query on the catalog"},
    {"gc", cmd_gc, H_GC, "reclaim space no snapshot uses"},
    {"compact", cmd_compact, H_COMPACT, "recompress stored blocks at a higher zstd level"},
    {"verify", cmd_verify, H_VERIFY, "check every page, chunk and map"},
    {"recover", cmd_recover, H_RECOVER, "rebuild a lost or damaged catalog from chunks and manifests"},
    {"stats", cmd_stats, H_STATS, "store-wide sizes and ratios (also for Prometheus)"},
    {"prune", cmd_prune, H_PRUNE, "remove snapshots by retention rules"},
    {"import-forkd", cmd_import, H_IMPORT, "import a forkd snapshot directory tree"},
    {"export", cmd_export, H_EXPORT, "write a snapshot as a forkd snapshot directory"},
    {"remote", cmd_remote, H_REMOTE, "add, list or remove S3-compatible remotes"},
    {"push", cmd_push, H_PUSH, "upload snapshots to a remote (only pages it lacks)"},
    {"pull", cmd_pull, H_PULL, "download snapshots from a remote (only pages the store lacks)"},
};
#define NCMD (sizeof commands / sizeof commands[0])

static void main_usage(FILE *f)
{
    fprintf(f, "usage: forkctl [--store DIR] [--quiet] COMMAND [ARGS]\n\n"
               "forkstore %s: a content-addressed store for microVM snapshots.\n\nCommands:\n",
            FKS_VERSION_STRING);
    for (size_t i = 0; i < NCMD; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-13s %s\n\n", "help", "this text, or `forkctl help COMMAND`");
    fprintf(f, "Every command takes --store DIR, --quiet (-q) and --help (-h); --json prints\n"
               "JSON instead of text. The store is --store DIR, else $FORKSTORE_DIR, else\n"
               "$XDG_DATA_HOME/forkstore, else ~/.local/share/forkstore. See forkctl(1).\n"
               "Exit codes: 0 ok, 1 error, 2 usage or invalid input, 3 not found,\n"
               "4 store locked, 5 damaged data found, 7 sql stopped at a limit.\n");
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            g_store = argv[++i];
        else if (strncmp(argv[i], "--store=", 8) == 0)
            g_store = argv[i] + 8;
        else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
            g_quiet = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            main_usage(stdout);
            return EX_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("forkctl %s\n", FKS_VERSION_STRING);
            return EX_OK;
        } else {
            fprintf(stderr, "forkctl: unknown option '%s'\n", argv[i]);
            main_usage(stderr);
            return EX_USAGE;
        }
    }
    if (i >= argc) {
        main_usage(stderr);
        return EX_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            for (size_t k = 0; k < NCMD; k++)
                if (strcmp(commands[k].name, argv[i + 1]) == 0) {
                    fputs(commands[k].help, stdout);
                    return EX_OK;
                }
            fprintf(stderr, "forkctl: no command '%s'\n", argv[i + 1]);
            return EX_USAGE;
        }
        main_usage(stdout);
        return EX_OK;
    }
    for (size_t k = 0; k < NCMD; k++)
        if (strcmp(commands[k].name, name) == 0)
        {
            opterr = 0;
            g_argv = argv + i;
            return commands[k].fn(argc - i, argv + i);
        }
    fprintf(stderr, "forkctl: unknown command '%s'\n", name);
    main_usage(stderr);
    return EX_USAGE;
}
