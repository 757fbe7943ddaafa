/*
** forkctl.c: the command line of forkstore.
**
** It uses only the public header, forkstore.h. Each command is a row of
** the command table (name, help, how it opens the store, its operands) and
** a function cmd_<name>(struct run *) returning an exit code:
**
**   0 ok, 1 error, 2 usage or invalid input, 3 not found,
**   4 store locked, 5 damaged data found, 6 refused, 7 sql stopped at
**   --timeout or --max-rows.
**
** Most commands are a struct call run by run_cmd: their options (next_opt
** parses the shared ones, before or after the command's name, in
** common_opt), one library call on the open store, and a JSON and a text
** formatter. Human output goes to stdout, errors to stderr as
** "forkctl: <message> (<advice>)": the message is the library's, the
** advice forkctl's (the advice table). --json prints json-c objects
** instead of tables. A progress line is drawn on stderr only when stderr
** is a terminal and --quiet is not given.
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

/* ---- the command table ----
** One row per command: main dispatches through it, `forkctl help` lists
** it, --help prints its help text, next_opt checks its operands against
** it and store_open opens the store as it says. */

struct run;
struct call;

enum { NO_STORE, STORE_RW, STORE_RO };  /* how store_open opens the store */
#define MANY 65536                      /* max_args: no upper bound */

struct command {
    const char *name;
    const char *help;         /* --help, `forkctl help NAME` */
    const char *summary;      /* its line in `forkctl help` */
    int store;                /* NO_STORE, STORE_RW or STORE_RO */
    int min_args, max_args;   /* operands; max_args -1: the command checks them */
    const char *args_msg;     /* the usage error when they do not fit; NULL:
                              ** "unexpected argument" (max_args exceeded) */
    int (*fn)(struct run *r); /* the command, or NULL: */
    const struct call *call;  /* run_cmd runs this call */
    size_t size;              /* with a zeroed struct of this size */
};

/* A progress line on stderr (drawn by progress_cb, below). */
struct progress {
    const char *what;
    double start;
    int drawn;
};

/* One run of a command: its row, its argv (argv[0] its name), what the
** shared options said, its operands, and its store while open. */
struct run {
    const struct command *cmd;
    int argc;
    char **argv;
    int json;                 /* --json */
    int exit;                 /* next_opt: -1 to go on, else the exit code */
    int nargs;                /* the operands, once next_opt returned 0 */
    char **args;
    fks_store *s;             /* open from store_open to store_done */
    struct progress p;        /* the progress line of its library call */
    fks_progress_fn fn;       /* run_call: draws p, or NULL (the call's argument: &p) */
};

static const struct command *g_cmd;   /* the command running (fail's advice) */

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

/* ---- command-line advice ----
** The library's messages say what failed and on which object (snapshot,
** file, page, store); which flag or command fixes it is forkctl's to say.
** fail() appends the advice of the first rule that fits the command, the
** step that failed and the return code, as " (advice)". Rules key on the
** code, never on the message; only key, the flag or command the advice
** names, is looked for in the message, so that advice the library's
** message still gives is not given twice. */

enum {
    STEP_DIR = 1,      /* finding the store's directory (no --store, no default) */
    STEP_OPEN,         /* opening the store */
    STEP_CALL,         /* the command's library call */
    STEP_LOAD          /* restore --api-sock's load into a VMM */
};
static int g_step;     /* the step running: set by store_dir, store_open_flags, restore_load */

struct advice {
    const char *cmd;   /* the commands, space-separated; NULL: any */
    int step;
    int rc;
    const char *key;   /* in the message already: no advice */
    const char *text;
};

static const struct advice advice[] = {
    {NULL, STEP_DIR, FKS_EINVAL, "--store", "pass --store DIR or set FORKSTORE_DIR"},
    {NULL, STEP_OPEN, FKS_ENOTFOUND, "forkctl init", "pass --store DIR, or create a store with `forkctl init DIR`"},
    {"restore", STEP_CALL, FKS_EEXIST, "--force", "pass --force to replace it"},
    {"restore log info diff tag rmi export", STEP_CALL, FKS_ENOTFOUND, "forkctl images", "see `forkctl images`"},
    {"ingest tag", STEP_CALL, FKS_EEXIST, "forkctl rmi", "pick another tag, or remove that one first with `forkctl rmi`"},
    {"export", STEP_CALL, FKS_EEXIST, "--forkd", "remove it, or export into another --forkd DIR"},
    {"info", STEP_CALL, FKS_ECORRUPT, "forkctl verify", "run `forkctl verify`"},
};

/* Whether the space-separated list names cmd (NULL names every one). */
static int names(const char *list, const char *cmd)
{
    size_t n = strlen(cmd);
    if (!list)
        return 1;
    for (const char *p = list; (p = strstr(p, cmd)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return 1;
    return 0;
}

/* The advice for rc from the command running, or NULL. */
static const char *advice_for(int rc, const char *msg)
{
    const char *cmd = g_cmd ? g_cmd->name : "";
    for (size_t i = 0; i < sizeof advice / sizeof *advice; i++) {
        const struct advice *a = &advice[i];
        if (a->rc == rc && a->step == g_step && names(a->cmd, cmd))
            return strstr(msg, a->key) ? NULL : a->text;
    }
    return NULL;
}

/* Prints the library's message for rc with forkctl's advice; returns the
** exit code. */
static int fail(int rc)
{
    const char *msg = fks_errmsg();
    /* A damaged or missing catalog beside chunk files: the way back is
    ** recover, said on a line of its own. */
    int damaged = rc == FKS_ECORRUPT && strstr(msg, "catalog.db");
    const char *adv = damaged ? NULL : advice_for(rc, msg);
    fputs("forkctl: ", stderr);
    put_esc(stderr, msg);
    if (adv)
        fprintf(stderr, " (%s)", adv);
    fputc('\n', stderr);
    if (damaged)
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

/* The progress callback for r's library call (its argument: &r->p), or
** NULL when nothing is drawn nor logged. */
static fks_progress_fn progress(struct run *r, const char *what)
{
    struct progress *p = &r->p;
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

/* Points a library call's progress callback and its argument at r's line. */
static void progress_into(struct run *r, fks_progress_fn *fn, void **arg)
{
    *fn = r->fn;
    *arg = &r->p;
}

/* ---- store helpers ---- */

/* The store's directory into buf: --store, else the default. */
static int store_dir(const char **dir, char *buf, size_t len)
{
    *dir = g_store;
    g_step = STEP_CALL;
    if (g_store)
        return 0;
    int rc = fks_default_dir(buf, len);
    if (rc == 0)
        *dir = buf;
    else
        g_step = STEP_DIR;
    return rc;
}

/* Opens r's store with fks_open flags. */
static int store_open_flags(struct run *r, int flags)
{
    char def[4096];
    const char *dir;
    int rc = store_dir(&dir, def, sizeof def);
    if (rc)
        return rc;
    g_step = STEP_OPEN;
    if ((rc = fks_open(&r->s, dir, flags)) == 0)
        g_step = STEP_CALL;
    return rc;
}

/* Opens r's store as its table row says. */
static int store_open(struct run *r)
{
    return store_open_flags(r, r->cmd->store == STORE_RO ? FKS_OPEN_READONLY : 0);
}

/* Ends r's library call, whose result is rc: ends the progress line and
** closes the store. Returns rc. */
static int store_done(struct run *r, int rc)
{
    if (r->p.drawn)
        fputc('\n', stderr);
    r->p.drawn = 0;
    fks_close(r->s);
    r->s = NULL;
    return rc;
}

static void print_json(json_object *o);
static int fail(int rc);

/* A command: its options, its library call and its output (run_cmd). a
** is the command's own struct: its options, then what the call returns. */
struct call {
    const struct option *opts;                 /* COMMON_OPTS and its own; NULL: the shared ones */
    int (*opt)(void *a, int c);                /* one of its own: -1 to go on, else the exit code */
    int (*check)(struct run *r, void *a);      /* then (may be NULL): the operands into a, the
                                               ** options together; -1 to go on, else the exit code */
    const char *what;                          /* its progress line, or NULL */
    int (*call)(struct run *r, void *a);       /* the library call on r->s: 0 or an FKS_ code */
    json_object *(*json)(const void *a);       /* --json */
    void (*text)(const void *a);               /* else */
    int loud;                                  /* text also with --quiet */
    int (*end)(void *a);                       /* after the output: frees a's results, returns
                                               ** the exit code (NULL: EX_OK) */
};

/* What every command does once its options are parsed: open the store as
** the table says, start the progress line, make the call, close the
** store, print the result as JSON or text. Returns the exit code. */
static int run_call(struct run *r, const struct call *k, void *a)
{
    int rc = store_open(r);
    if (rc)
        return fail(rc);
    if (k->what)
        r->fn = progress(r, k->what);
    if ((rc = store_done(r, k->call(r, a))) != 0)
        return fail(rc);
    if (r->json)
        print_json(k->json(a));
    else if (!g_quiet || k->loud)
        k->text(a);
    return k->end ? k->end(a) : EX_OK;
}

static int parse_opts(struct run *r, const struct option *o, int (*own)(void *a, int c), void *a);
static int only_common(struct run *r);

/* A whole command: its options, then run_call. */
static int run_cmd(struct run *r, const struct call *k, void *a)
{
    int e = k->opts ? parse_opts(r, k->opts, k->opt, a) : only_common(r);
    if (e >= 0 || (k->check && (e = k->check(r, a)) >= 0))
        return e;
    return run_call(r, k, a);
}

/* ---- output helpers ---- */

static void print_json(json_object *o)
{
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* Members of a JSON object, one call each: jint, jnum, jbool, jstr (NULL
** adds null) and jopt (a negative value adds null: not recorded). */
static void jint(json_object *j, const char *k, int64_t v)
{
    json_object_object_add(j, k, json_object_new_int64(v));
}

static void jnum(json_object *j, const char *k, double v)
{
    json_object_object_add(j, k, json_object_new_double(v));
}

static void jbool(json_object *j, const char *k, int v)
{
    json_object_object_add(j, k, json_object_new_boolean(v));
}

static void jstr(json_object *j, const char *k, const char *v)
{
    json_object_object_add(j, k, v ? json_object_new_string(v) : NULL);
}

static void jopt(json_object *j, const char *k, int64_t v)
{
    json_object_object_add(j, k, v >= 0 ? json_object_new_int64(v) : NULL);
}

/* A run of integer members in one call: {key, value} pairs up to {NULL}. */
struct jfield {
    const char *k;
    int64_t v;
};

static void jints(json_object *j, const struct jfield *f)
{
    for (; f->k; f++)
        jint(j, f->k, f->v);
}

/* s, or NULL when it is empty (for jstr: an empty field is null). */
static const char *or_null(const char *s)
{
    return s && s[0] ? s : NULL;
}

static json_object *snap_json(const fks_snapinfo *i)
{
    json_object *o = json_object_new_object();
    jstr(o, "tag", i->tag);
    jstr(o, "parent", or_null(i->parent));
    jints(o, (const struct jfield[]){{"created_ms", i->created_ms}, {"depth", i->depth},
          {"logical_bytes", (int64_t)i->logical_bytes}, {"memory_bytes", (int64_t)i->memory_bytes},
          {"stored_bytes", (int64_t)i->stored_bytes}, {NULL, 0}});
    jbool(o, "rootfs", i->has_rootfs);
    jopt(o, "pause_ms", i->pause_ms);
    jopt(o, "snapshot_ms", i->snapshot_ms);
    jopt(o, "ingest_ms", i->ingest_ms);
    jopt(o, "diff_bytes", i->diff_bytes);
    return o;
}

/* A JSON array of n strings. */
static json_object *json_strings(char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

/* ---- options ----
** Every command parses its argv with next_opt, which handles the options
** they all share (below) and checks the operands against the table; main
** parses the ones before the command's name with the same common_opt. */

enum { OPT_STORE = 1000, OPT_JSON, OPT_QUIET, OPT_HELP, OPT_VERSION };
#define SHORT_OPTS "hq"   /* -h = --help, -q = --quiet */
#define COMMON_OPTS \
    {"store", required_argument, NULL, OPT_STORE}, {"json", no_argument, NULL, OPT_JSON}, \
    {"quiet", no_argument, NULL, OPT_QUIET}, {"help", no_argument, NULL, OPT_HELP}

static char **g_argv;   /* what getopt parses, for messages */

/* The option getopt returned last, without its value: "--flag VALUE" and
** "--flag=VALUE" give "--flag". */
static const char *argv_opt(void)
{
    static char buf[256];
    if (!g_argv || optind < 1)
        return "?";
    const char *t = g_argv[optind - 1];
    if (optarg && optind >= 2 && optarg == g_argv[optind - 1])
        return g_argv[optind - 2];
    size_t n = strlen(t);
    if (optarg && optarg > t && optarg <= t + n && optarg[-1] == '=') {
        snprintf(buf, sizeof buf, "%.*s", (int)(optarg - 1 - t), t);
        return buf;
    }
    return t;
}

static void main_usage(FILE *f);

/* One of the shared options, of r (NULL: before the command's name; then
** written is the argument getopt read it from). Returns -1 to go on, else
** the exit code. */
static int common_opt(struct run *r, int c, const char *written)
{
    switch (c) {
    case OPT_STORE: g_store = optarg; return -1;
    case OPT_JSON:                     /* main's options have no --json */
        if (r)
            r->json = 1;
        return -1;
    case 'q': case OPT_QUIET: g_quiet = 1; return -1;
    case 'h': case OPT_HELP:
        if (r)
            fputs(r->cmd->help, stdout);
        else
            main_usage(stdout);
        return EX_OK;
    case OPT_VERSION: printf("forkctl %s\n", FKS_VERSION_STRING); return EX_OK;
    default:
        if (r)
            return usage_err(r->cmd->name, "unknown option '%s'", argv_opt());
        fprintf(stderr, "forkctl: unknown option '%s'\n", written);
        main_usage(stderr);
        return EX_USAGE;
    }
}

/* The next of r's own options in o (COMMON_OPTS and its own), or 0 once
** there is none: then r->exit is -1 to go on, with r->args the operands
** (checked against the table), else the exit code (--help, a usage error). */
static int next_opt(struct run *r, const struct option *o)
{
    int c, e;
    g_argv = r->argv;
    while ((c = getopt_long(r->argc, r->argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c != '?' && c != 'h' && c != 'q' && (c < OPT_STORE || c > OPT_VERSION))
            return c;
        if ((e = common_opt(r, c, NULL)) >= 0) {
            r->exit = e;
            return 0;
        }
    }
    r->exit = -1;
    r->args = r->argv + optind;
    r->nargs = r->argc - optind;
    const struct command *k = r->cmd;
    if (k->max_args >= 0 && (r->nargs < k->min_args || r->nargs > k->max_args))
        r->exit = k->args_msg ? usage_err(k->name, "%s", k->args_msg)
                              : usage_err(k->name, "unexpected argument '%s'", r->args[k->max_args]);
    return 0;
}

/* The options of r: the shared ones, and its own in o, which go to
** own(a, c) (it returns -1 to go on, else an exit code). Returns -1 to go
** on, else the exit code. */
static int parse_opts(struct run *r, const struct option *o, int (*own)(void *a, int c), void *a)
{
    int c, e;
    while ((c = next_opt(r, o)) != 0)
        if ((e = own(a, c)) >= 0)
            return e;
    return r->exit;
}

/* The options of a command that has only the shared ones: -1 to go on,
** else the exit code. */
static int only_common(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {0}};
    while (next_opt(r, o) != 0)
        ;
    return r->exit;
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

static int cmd_init(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"chunk-size", required_argument, NULL, 'c'}, {0}};
    uint64_t cs = 0;
    int e;
    while (next_opt(r, o) != 0)
        if ((e = size_arg("init", "--chunk-size", optarg, 1u << 20, 1ull << 32, &cs)) >= 0)
            return e;
    if (r->exit >= 0)
        return r->exit;
    if (r->nargs)
        g_store = r->args[0];
    char def[4096];
    const char *dir;
    int rc;
    if ((rc = store_dir(&dir, def, sizeof def)) != 0 || (rc = fks_init(dir, cs)) != 0)
        return fail(rc);
    if (r->json) {
        json_object *j = json_object_new_object();
        jstr(j, "store", dir);
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

struct ingest {
    fks_ingest_opts io;
    fks_artifact_in arts[64];
    char names[64][65];
    size_t n;
    const char *memory, *vmstate;
    int diff;
    fks_ingest_stats st;
};

static int ingest_opt(void *arg, int c)
{
    struct ingest *x = arg;
    switch (c) {
    case 't': x->io.tag = optarg; break;
    case 'p': x->io.parent = optarg; break;
    case 'm': x->memory = optarg; break;
    case 'd': x->diff = 1; break;
    case 'v': x->vmstate = optarg; break;
    case 'f': {
        const char *eq = strchr(optarg, '=');
        if (!eq || eq == optarg || eq - optarg > 64 || !eq[1])
            return usage_err("ingest", "--file takes NAME=PATH, got '%s'", optarg);
        if (x->n >= 60)
            return usage_err("ingest", "%s", "too many --file options");
        snprintf(x->names[x->n], sizeof x->names[x->n], "%.*s", (int)(eq - optarg), optarg);
        x->arts[x->n] = (fks_artifact_in){x->names[x->n], eq + 1, 0};
        x->n++;
        break;
    }
    }
    return -1;
}

/* ingest's options checked together: -1 to go on, else the usage exit code. */
static int ingest_check(struct run *r, void *arg)
{
    struct ingest *x = arg;
    (void)r;
    x->io.pause_ms = x->io.snapshot_ms = x->io.diff_bytes = -1;    /* not taken by branch */
    if (!x->io.tag)
        return usage_err("ingest", "%s", "--tag is required");
    if (!x->memory)
        return usage_err("ingest", "%s", "--memory is required");
    if (!x->vmstate)
        return usage_err("ingest", "%s", "--vmstate is required");
    if (x->diff && !x->io.parent)
        return usage_err("ingest", "%s", "--diff needs --parent (a diff's holes are the parent's pages)");
    x->arts[x->n++] = (fks_artifact_in){"memory", x->memory, x->diff};
    x->arts[x->n++] = (fks_artifact_in){"vmstate", x->vmstate, 0};
    x->io.artifacts = x->arts;
    x->io.n_artifacts = x->n;
    return -1;
}

static int ingest_call(struct run *r, void *arg)
{
    struct ingest *x = arg;
    progress_into(r, &x->io.progress, &x->io.progress_arg);
    return fks_ingest(&x->st, r->s, &x->io);
}

static json_object *ingest_json(const void *arg)
{
    const struct ingest *x = arg;
    const fks_ingest_stats *st = &x->st;
    json_object *j = json_object_new_object();
    jstr(j, "tag", x->io.tag);
    jints(j, (const struct jfield[]){{"logical_bytes", (int64_t)st->logical_bytes},
          {"read_bytes", (int64_t)st->read_bytes}, {"pages", (int64_t)st->pages},
          {"zero_pages", (int64_t)st->zero_pages}, {"dedup_pages", (int64_t)st->dedup_pages},
          {"new_pages", (int64_t)st->new_pages}, {"stored_bytes", (int64_t)st->stored_bytes}, {NULL, 0}});
    jnum(j, "seconds", st->seconds);
    return j;
}

static void ingest_text(const void *arg)
{
    const struct ingest *x = arg;
    const fks_ingest_stats *st = &x->st;
    char a[32], b[32];
    human(a, sizeof a, (double)st->read_bytes);
    human(b, sizeof b, (double)st->stored_bytes);
    printf("%s: %llu pages read (%s): %llu zero, %llu already stored, %llu new (%s stored) in %.2fs\n",
           x->io.tag, (unsigned long long)st->pages, a, (unsigned long long)st->zero_pages,
           (unsigned long long)st->dedup_pages, (unsigned long long)st->new_pages, b, st->seconds);
}

static const struct option INGEST_OPTS[] = {COMMON_OPTS,
    {"tag", required_argument, NULL, 't'}, {"parent", required_argument, NULL, 'p'},
    {"memory", required_argument, NULL, 'm'}, {"diff", no_argument, NULL, 'd'},
    {"vmstate", required_argument, NULL, 'v'}, {"file", required_argument, NULL, 'f'}, {0}};
static const struct call INGEST_CALL = {.opts = INGEST_OPTS, .opt = ingest_opt, .check = ingest_check,
                                        .what = "ingest", .call = ingest_call, .json = ingest_json,
                                        .text = ingest_text};

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
static int serve_run(struct run *r, fks_serve_stats *st, const char *tag, struct lazy_args *la)
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
    int rc = store_open_flags(r, 0);
    return rc ? rc : store_done(r, fks_serve_pages(st, r->s, tag, &la->so));
}

/* restore --lazy: starts the page server in the background, listening on
** la->sock, and returns once it listens. Its first byte on the pipe says
** ready (1) or failed (0, then the message). */
static int lazy_start(struct run *r, pid_t *pid, const char *tag, struct lazy_args *la)
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
        int rc = serve_run(r, &st, tag, la);
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

/* The result of restore --api-sock. */
struct loaded {
    const char *tag;
    const fks_load_opts *lo;
    const struct lazy_args *la;
    fks_load_result lr;
    double ms;                 /* from the store's open to the VM's run */
    pid_t server;              /* --lazy: the page server */
};

static json_object *loaded_json(const struct loaded *l)
{
    json_object *j = json_object_new_object();
    jstr(j, "tag", l->tag);
    jstr(j, "api_sock", l->lo->api_sock);
    jstr(j, "staging", l->lr.staging);
    jnum(j, "load_ms", l->ms);
    jbool(j, "paused", l->lo->paused);
    jstr(j, "firecracker_version", or_null(l->lr.fc_version));
    jstr(j, "format_version", or_null(l->lr.format_version));
    jstr(j, "rootfs", l->lo->rootfs);
    jnum(j, "load_request_ms", l->lr.load_s * 1000);
    jbool(j, "lazy", l->la->on);
    if (l->la->on) {
        jint(j, "page_server_pid", (int64_t)l->server);
        jstr(j, "page_server_socket", l->la->sock);
    }
    return j;
}

static void loaded_text(const struct loaded *l)
{
    const char *paused = l->lo->paused ? " (paused)" : "";
    if (l->la->on)
        printf("%s: loaded lazily into the VMM at %s in %.0f ms (load request %.1f ms)%s; page server pid %ld "
               "serves its memory on %s; its files are in %s\n", l->tag, l->lo->api_sock, l->ms,
               l->lr.load_s * 1000, paused, (long)l->server, l->la->sock, l->lr.staging);
    else
        printf("%s: loaded into the VMM at %s in %.0f ms%s; its files are in %s\n", l->tag, l->lo->api_sock, l->ms,
               paused, l->lr.staging);
}

/* restore --lazy: the page server's socket, as given or beside the API
** socket, and the path the VMM sees (inside its jail). Returns -1 to go
** on, else the usage exit code. */
static int lazy_sock(fks_load_opts *lo, struct lazy_args *la)
{
    /* static: la and lo keep pointing at it after this returns */
    static char lsock[4200];
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
    return -1;
}

static int restore_load(struct run *r, const char *tag, fks_load_opts *lo, struct lazy_args *la)
{
    struct loaded l = {.tag = tag, .lo = lo, .la = la};
    int e;
    if (la->on && ((e = lazy_sock(lo, la)) >= 0 || (e = lazy_start(r, &l.server, tag, la)) >= 0))
        return e;
    /* Writable to record the loaded VM; a store this user may only read
    ** still loads (the warning below says what is lost). */
    int rc = store_open_flags(r, 0);
    if (rc == FKS_EPERM || rc == FKS_EIO || rc == FKS_EINVAL)
        rc = store_open_flags(r, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    double t0 = now_s();
    g_step = STEP_LOAD;
    rc = store_done(r, fks_load(&l.lr, r->s, tag, lo));
    if (rc && l.server > 0) {
        /* refused before the load: the server would wait for a VMM that
        ** never comes; after a failed load the VMM exits and so would it */
        kill(l.server, SIGTERM);
        waitpid(l.server, NULL, 0);
    }
    if (rc) {
        if (rc == FKS_EREFUSED)
            fprintf(stderr, "forkctl: %s\nforkctl: nothing was sent to the VMM's load; load the snapshot into a "
                    "Firecracker of its own version, or pass --force-version to skip the check\n", fks_errmsg());
        return rc == FKS_EREFUSED ? exit_code(rc) : fail(rc);
    }
    l.ms = (now_s() - t0) * 1000;
    if (!l.lr.recorded)
        fprintf(stderr, "forkctl: warning: the loaded VM is not recorded in the store: `branch --parent %s` "
                "will be refused; take --full\n", tag);
    if (r->json)
        print_json(loaded_json(&l));
    else if (!g_quiet)
        loaded_text(&l);
    return EX_OK;
}

/* What restore's options say, before they are checked together. */
struct restore_args {
    const char *out, *sock, *jail_root, *nets[16];
    fks_load_opts lo;
    struct lazy_args la;
    struct jail_args ja;
    int flags;
    int loadopt;               /* a load option was given */
    int lazyopt;               /* an option of --lazy was given */
    const char *tag;
    fks_restore_stats st;      /* restore --out */
};

static int restore_call(struct run *r, void *arg)
{
    struct restore_args *a = arg;
    return fks_restore(&a->st, r->s, a->tag, a->out, a->flags, r->fn, &r->p);
}

static json_object *restored_json(const void *arg)
{
    const struct restore_args *a = arg;
    json_object *j = json_object_new_object();
    jstr(j, "tag", a->tag);
    jstr(j, "out", a->out);
    jint(j, "logical_bytes", (int64_t)a->st.logical_bytes);
    jint(j, "written_bytes", (int64_t)a->st.written_bytes);
    jnum(j, "seconds", a->st.seconds);
    return j;
}

static void restored_text(const void *arg)
{
    const struct restore_args *a = arg;
    char l[32], w[32];
    human(l, sizeof l, (double)a->st.logical_bytes);
    human(w, sizeof w, (double)a->st.written_bytes);
    printf("%s: restored %s (%s of data) to %s in %.2fs\n", a->tag, l, w, a->out, a->st.seconds);
}

/* One of restore's own options: -1 to go on, else the usage exit code. */
static int restore_opt(void *arg, int c)
{
    struct restore_args *a = arg;
    int e, used = 0;
    fks_load_opts *lo = &a->lo;
    switch (c) {
    case 'o': a->out = optarg; return -1;
    case 'f': a->flags |= FKS_RESTORE_FORCE; return -1;
    case 'S': a->flags |= FKS_RESTORE_SYNC; return -1;
    case 'A': a->sock = optarg; return -1;
    case 'G': lo->staging = optarg; return -1;
    case 'T': return parse_ms("restore", optarg, &lo->timeout_ms);
    }
    e = lazy_opt(c, "restore", &a->la, &used);
    if (used) {
        a->lazyopt |= c != 1109;
        return e;
    }
    a->loadopt = 1;
    switch (c) {
    case 'P': lo->paused = 1; return -1;
    case 'N':
        if (lo->n_net_overrides == sizeof a->nets / sizeof *a->nets)
            return usage_err("restore", "%s", "at most 16 --network-override");
        if (!strchr(optarg, '=') || optarg[0] == '=' || !strchr(optarg, '=')[1])
            return usage_err("restore", "--network-override takes IFACE=HOSTDEV, got '%s'", optarg);
        a->nets[lo->n_net_overrides++] = optarg;
        return -1;
    case 'V': lo->vsock_uds = optarg; return -1;
    case 'R': lo->rootfs = optarg; return -1;
    case 'I': lo->vm_id = optarg; return -1;
    case 'W': lo->force_version = 1; return -1;
    case 'J': a->jail_root = optarg; return -1;
    case 'U': return parse_id("restore", "--jail-uid", optarg, &a->ja.j.uid);
    case 'g': return parse_id("restore", "--jail-gid", optarg, &a->ja.j.gid);
    }
    return -1;
}

/* restore's options checked together: -1 to go on, else the usage exit code. */
static int restore_check(struct restore_args *a)
{
    if (a->lazyopt && !a->la.on)
        return usage_err("restore", "%s", "--uffd-sock, --prefetch, --prefetch-time, --no-record, --lease-ttl, "
                         "--accept-timeout, --vms, --server-log, --cache-cold, --cache-pages and --remote need --lazy");
    if (a->la.on && !a->sock)
        return usage_err("restore", "%s", "--lazy needs --api-sock SOCK");
    if (a->la.so.max_vms > 1)
        return usage_err("restore", "%s", "restore --lazy loads one VM; serve several with serve-pages --vms N");
    if (a->sock && a->out)
        return usage_err("restore", "%s", "give --out DIR or --api-sock SOCK, not both");
    if (a->sock)
        return jail_check("restore", &a->ja, a->jail_root);
    if (a->loadopt || a->lo.staging || a->lo.timeout_ms)
        return usage_err("restore", "%s", "--staging, --timeout and the load options need --api-sock SOCK");
    if (!a->out)
        return usage_err("restore", "%s", "--out DIR is required");
    return -1;
}

static int cmd_restore(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, LAZY_OPTS,
        /* restore --out */
        {"out", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'}, {"sync", no_argument, NULL, 'S'},
        /* restore --api-sock */
        {"api-sock", required_argument, NULL, 'A'}, {"staging", required_argument, NULL, 'G'},
        {"timeout", required_argument, NULL, 'T'}, {"paused", no_argument, NULL, 'P'},
        {"network-override", required_argument, NULL, 'N'}, {"vsock-uds", required_argument, NULL, 'V'},
        {"rootfs", required_argument, NULL, 'R'}, {"vm-id", required_argument, NULL, 'I'},
        {"force-version", no_argument, NULL, 'W'},
        {"jail-root", required_argument, NULL, 'J'}, {"jail-uid", required_argument, NULL, 'U'},
        {"jail-gid", required_argument, NULL, 'g'}, {0}};
    static const struct call k = {o, restore_opt, NULL, "restore", restore_call, restored_json, restored_text, 0,
                                  NULL};
    struct restore_args a = {0};
    int e;
    lazy_defaults(&a.la);
    a.ja.j.uid = a.ja.j.gid = -1;
    if ((e = parse_opts(r, o, restore_opt, &a)) >= 0 || (e = restore_check(&a)) >= 0)
        return e;
    a.tag = r->args[0];
    if (a.sock) {
        a.lo.api_sock = a.sock;
        a.lo.from_remote = a.la.on && a.la.so.from_remote;
        a.lo.remote = a.la.so.remote;
        a.lo.net_overrides = a.nets;
        a.lo.jail = a.ja.j;
        return restore_load(r, a.tag, &a.lo, &a.la);
    }
    return run_call(r, &k, &a);
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

static int cmd_serve(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, LAZY_OPTS, {0}};
    struct lazy_args la;
    int c, e, used = 0;
    lazy_defaults(&la);
    while ((c = next_opt(r, o)) != 0) {
        if ((e = lazy_opt(c, "serve-pages", &la, &used)) >= 0)
            return e;
        if (c == 1108 || c == 1109)
            return usage_err("serve-pages", "%s is an option of restore", argv_opt());
    }
    if (r->exit >= 0)
        return r->exit;
    if (!la.sock)
        return usage_err("serve-pages", "%s", "--socket PATH is required");
    fks_serve_stats st;
    int rc = serve_run(r, &st, r->args[0], &la);
    if (rc)
        return fail(rc);
    if (r->json)
        print_json(serve_stats_json(r->args[0], &st));
    else if (!g_quiet)
        serve_stats_text(stdout, r->args[0], &st);
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

/* A failed branch: the message, then what the chain needs next. */
static int branch_failed(int rc, const fks_branch_opts *bo, const fks_branch_result *br)
{
    fprintf(stderr, "forkctl: %s\n", fks_errmsg());
    char vm[700] = "";
    if (bo->vm_id)
        snprintf(vm, sizeof vm, " --vm-id %s", bo->vm_id);
    if (br->can_resume)
        fprintf(stderr, "forkctl: finish it with `forkctl branch --resume --api-sock %s%s` (once the cause is "
                "fixed), or start the chain over with `--full`\n", bo->api_sock, vm);
    else if (br->need_full && br->head[0])
        fprintf(stderr, "forkctl: take the Diff on the VM's last snapshot (`--parent %s`), or `--full` "
                "(the parent is then kept as lineage)\n", br->head);
    else if (br->need_full)
        fprintf(stderr, "forkctl: take a Full snapshot of this VM next: `forkctl branch --full ...`\n");
    if (br->kept_staging[0] && !br->can_resume)
        fprintf(stderr, "forkctl: the VMM may still write into %s: it was kept; the next Full removes it\n",
                br->kept_staging);
    return exit_code(rc);
}

static json_object *branch_json(const fks_branch_opts *bo, const fks_branch_result *br)
{
    json_object *j = json_object_new_object();
    jstr(j, "tag", br->tag);
    jstr(j, "type", br->diff ? "Diff" : "Full");
    jnum(j, "pause_ms", br->pause_s * 1000);
    jnum(j, "snapshot_ms", br->snapshot_s * 1000);
    jnum(j, "ingest_ms", br->ingest_s * 1000);
    jint(j, "diff_bytes", br->diff_bytes);
    jint(j, "new_pages", (int64_t)br->ingest.new_pages);
    jint(j, "stored_bytes", (int64_t)br->ingest.stored_bytes);
    jstr(j, "vm", br->vm_key);
    jbool(j, "resumed", bo->resume);
    jstr(j, "firecracker_version", or_null(br->fc_version));
    jstr(j, "format_version", or_null(br->format_version));
    return j;
}

static void branch_text(const fks_branch_opts *bo, const fks_branch_result *br)
{
    char a[32];
    human(a, sizeof a, (double)br->diff_bytes);
    printf("%s: %s%s snapshot, paused %.1f ms (snapshot %.1f ms), %s staged, ingested in %.0f ms "
           "(%llu new pages)\n", br->tag, bo->resume ? "finished " : "", br->diff ? "Diff" : "Full",
           br->pause_s * 1000, br->snapshot_s * 1000, a, br->ingest_s * 1000,
           (unsigned long long)br->ingest.new_pages);
}

/* One of branch's own options: -1 to go on, else the usage exit code. */
static int branch_opt(fks_branch_opts *bo, struct jail_args *ja, const char **jail_root, int c)
{
    switch (c) {
    case 'A': bo->api_sock = optarg; break;
    case 't': bo->tag = optarg; break;
    case 'p': bo->parent = optarg; break;
    case 'F': bo->full = 1; break;
    case 'G': bo->staging = optarg; break;
    case 'T': return parse_ms("branch", optarg, &bo->timeout_ms);
    case 'I': bo->vm_id = optarg; break;
    case 'r': bo->resume = 1; break;
    case 'W': bo->force_version = 1; break;
    case 'J': *jail_root = optarg; break;
    case 'U': return parse_id("branch", "--jail-uid", optarg, &ja->j.uid);
    case 'g': return parse_id("branch", "--jail-gid", optarg, &ja->j.gid);
    }
    return -1;
}

static int cmd_branch(struct run *r)
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
    int c, e, rc;
    while ((c = next_opt(r, o)) != 0)
        if ((e = branch_opt(&bo, &ja, &jail_root, c)) >= 0)
            return e;
    if (r->exit >= 0)
        return r->exit;
    if (!bo.api_sock)
        return usage_err("branch", "%s", "--api-sock SOCK is required");
    if (!bo.tag && !bo.resume)
        return usage_err("branch", "%s", "--tag is required");
    if (bo.resume && (bo.parent || bo.full || bo.staging))
        return usage_err("branch", "%s", "--resume takes the recorded parent and staging: no --parent, --full "
                         "or --staging");
    if ((e = jail_check("branch", &ja, jail_root)) >= 0)
        return e;
    bo.jail = ja.j;
    fks_branch_result br;
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    r->fn = progress(r, "ingest");
    progress_into(r, &bo.progress, &bo.progress_arg);
    if ((rc = store_done(r, fks_branch(&br, r->s, &bo))) != 0)
        return branch_failed(rc, &bo, &br);
    if (r->json)
        print_json(branch_json(&bo, &br));
    else if (!g_quiet)
        branch_text(&bo, &br);
    return EX_OK;
}

static const char H_IMAGES[] =
    "usage: forkctl images [--json]\n"
    "Lists snapshots, most recent first: TAG, PARENT, SIZE (all files, logical),\n"
    "MEMORY (logical), STORED (compressed bytes this snapshot added), CREATED,\n"
    "ROOTFS.\n";

/* What images and log list. */
struct snaps {
    const char *tag;           /* log: the chain's end */
    fks_snapinfo *v;
    size_t n;
};

/* images and log --json: one object per snapshot. */
static json_object *snaps_json(const void *arg)
{
    const struct snaps *x = arg;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < x->n; i++)
        json_object_array_add(a, snap_json(&x->v[i]));
    return a;
}

static int snaps_end(void *arg)
{
    free(((struct snaps *)arg)->v);
    return EX_OK;
}

static int images_call(struct run *r, void *arg)
{
    struct snaps *x = arg;
    return fks_list(&x->v, &x->n, r->s);
}

static void images_text(const void *arg)
{
    const fks_snapinfo *v = ((const struct snaps *)arg)->v;
    size_t n = ((const struct snaps *)arg)->n;
    uint64_t logical = 0, stored = 0;
    printf("%-24s %-24s %10s %10s %10s %-10s %s\n", "TAG", "PARENT", "SIZE", "MEMORY", "STORED",
           "CREATED", "ROOTFS");
    for (size_t i = 0; i < n; i++) {
        char sz[32], mem[32], st[32], ag[32];
        logical += v[i].logical_bytes;
        stored += v[i].stored_bytes;
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

static const struct call IMAGES_CALL = {.call = images_call, .json = snaps_json, .text = images_text, .loud = 1,
                                        .end = snaps_end};

static const char H_LOG[] =
    "usage: forkctl log TAG [--json]\n"
    "Shows the chain from the root snapshot down to TAG.\n";

static int snaps_tag(struct run *r, void *arg)
{
    ((struct snaps *)arg)->tag = r->args[0];
    return -1;
}

static int log_call(struct run *r, void *arg)
{
    struct snaps *x = arg;
    return fks_chain(&x->v, &x->n, r->s, x->tag);
}

static void log_text(const void *arg)
{
    const fks_snapinfo *v = ((const struct snaps *)arg)->v;
    size_t n = ((const struct snaps *)arg)->n;
    for (size_t i = 0; i < n; i++) {
        char sz[32], st[32], ag[32];
        human(sz, sizeof sz, (double)v[i].logical_bytes);
        human(st, sizeof st, (double)v[i].stored_bytes);
        age(ag, sizeof ag, v[i].created_ms);
        printf("%*s%s%s  (depth %d, %s logical, %s stored, %s)\n", (int)(2 * i), "",
               i ? "└─ " : "", esc(v[i].tag), v[i].depth, sz, st, ag);
    }
}

static const struct call LOG_CALL = {.check = snaps_tag, .call = log_call, .json = snaps_json, .text = log_text,
                                     .loud = 1, .end = snaps_end};

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

static int cmd_rmi(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"cascade", no_argument, NULL, 'c'}, {0}};
    int cascade = 0, nospace = 0, ret = EX_OK, rc;
    while (next_opt(r, o) != 0)
        cascade = 1;
    if (r->exit >= 0)
        return r->exit;
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    json_object *removed = r->json ? json_object_new_array() : NULL;
    for (int i = 0; i < r->nargs; i++) {
        const char *tag = r->args[i];
        if ((rc = fks_rmi(r->s, tag, cascade)) != 0)
            ret = fail(rc);
        else if (r->json)
            json_object_array_add(removed, json_object_new_string(tag));
        else if (!g_quiet)
            printf("removed %s%s\n", esc(tag), cascade ? " and its descendants" : "");
        nospace |= rc == FKS_ENOSPC;
    }
    full_disk_note("rmi", fks_reserve_used(r->s), nospace ? FKS_ENOSPC : 0);
    store_done(r, 0);
    if (r->json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "removed", removed);
        jbool(j, "cascade", cascade);
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

static int sql_opt(fks_sql_opts *so, struct sqlout *out, int c)
{
    double v = 0;
    int e;
    switch (c) {
    case 'c': out->mode = 2; return -1;
    case 'T':
        return num_arg("sql", "--timeout", "a number of seconds from 0 (no limit) to 86400", optarg, 0, 86400, 0,
                       &so->timeout_s);
    case 'R':
        if ((e = num_arg("sql", "--max-rows", "a whole number of rows from 0 (no limit) to 1e15", optarg, 0, 1e15, 1,
                         &v)) < 0)
            so->max_rows = (uint64_t)v;
        return e;
    }
    return -1;
}

/* What was printed stays well formed, also when a limit stopped it. */
static void sql_end(struct sqlout *out, int rc)
{
    if (out->mode == 1 && (rc == 0 || out->rows))
        fputs(out->rows ? "\n]\n" : "[]\n", stdout);
    if (out->mode == 0)
        table_flush(out);
    for (size_t i = 0; i < out->n; i++)
        free(out->cells[i]);
    free(out->cells);
    free(out->w);
    fflush(stdout);
}

static int cmd_sql(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"csv", no_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 'T'}, {"max-rows", required_argument, NULL, 'R'}, {0}};
    struct sqlout out = {0};
    fks_sql_opts so = {30, 1000000};
    int c, e, rc;
    while ((c = next_opt(r, o)) != 0)
        if ((e = sql_opt(&so, &out, c)) >= 0)
            return e;
    if (r->exit >= 0)
        return r->exit;
    if (r->json && out.mode == 2)
        return usage_err("sql", "%s", "give --json or --csv, not both");
    if (r->json)
        out.mode = 1;
    if (r->nargs != 1)
        return usage_err("sql", "%s", "give exactly one SQL statement (quote it)");
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    rc = store_done(r, fks_sql_ex(r->s, r->args[0], &so, sql_row, &out));
    sql_end(&out, rc);
    if (rc == FKS_ETIMEDOUT || rc == FKS_ELIMIT) {
        fputs("forkctl: ", stderr);
        put_esc(stderr, fks_errmsg());
        fprintf(stderr, "; the output is incomplete (%s, 0 for no limit)\n",
                rc == FKS_ETIMEDOUT ? "raise --timeout" : "add a LIMIT, or raise --max-rows");
        return EX_LIMIT;
    }
    return rc ? fail(rc) : EX_OK;
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

/* gc and compact: the bytes on disk they gave back (negative if it grew). */
static int64_t reclaimed(uint64_t before, uint64_t after)
{
    return (int64_t)before - (int64_t)after;
}

static void human_reclaimed(char *buf, size_t len, uint64_t before, uint64_t after)
{
    int64_t r = reclaimed(before, after);
    human(buf, len, (double)(r > 0 ? r : 0));
}

struct gc {
    fks_gc_opts go;
    fks_gc_report rep;
};

static int gc_opt(void *arg, int c)
{
    fks_gc_opts *go = &((struct gc *)arg)->go;
    int e;
    switch (c) {
    case 'n': go->dry_run = 1; break;
    case 'd': return duration_arg("gc", "--max-duration", optarg, &go->max_seconds);
    case 't':
        if ((e = num_arg("gc", "--threshold", "a fraction above 0 and at most 1", optarg, 0, 1, 0,
                         &go->live_threshold)) >= 0)
            return e;
        if (go->live_threshold <= 0)
            return usage_err("gc", "--threshold takes a fraction above 0 and at most 1, got '%s' "
                             "(out of range)", optarg);
        break;
    case 'u':
        if ((e = num_arg("gc", "--max-unused", "a fraction from 0 to 1", optarg, 0, 1, 0, &go->max_unused)) >= 0)
            return e;
        if (go->max_unused <= 0)      /* 0 would mean the default: compact every dead byte instead */
            go->max_unused = 1e-12;
        break;
    }
    return -1;
}

static json_object *gc_json(const void *arg)
{
    const struct gc *x = arg;
    const fks_gc_report *rep = &x->rep;
    json_object *j = json_object_new_object();
    jbool(j, "dry_run", x->go.dry_run);
    jints(j, (const struct jfield[]){{"pages_freed", (int64_t)rep->pages_freed},
          {"page_bytes_freed", (int64_t)rep->page_bytes_freed}, {"chunks_rewritten", (int64_t)rep->chunks_rewritten},
          {"chunks_deleted", (int64_t)rep->chunks_deleted}, {"strays_deleted", (int64_t)rep->strays_deleted},
          {"bytes_copied", (int64_t)rep->bytes_copied}, {"disk_bytes_before", (int64_t)rep->disk_bytes_before},
          {"disk_bytes_after", (int64_t)rep->disk_bytes_after},
          {"bytes_reclaimed", reclaimed(rep->disk_bytes_before, rep->disk_bytes_after)}, {NULL, 0}});
    jbool(j, "stopped_early", rep->stopped_early);
    jnum(j, "seconds", rep->seconds);
    return j;
}

static void gc_text(const void *arg)
{
    const fks_gc_opts *go = &((const struct gc *)arg)->go;
    const fks_gc_report *rep = &((const struct gc *)arg)->rep;
    char a[32], b[32], d[32];
    human(a, sizeof a, (double)rep->page_bytes_freed);
    human_reclaimed(b, sizeof b, rep->disk_bytes_before, rep->disk_bytes_after);
    human(d, sizeof d, (double)rep->bytes_copied);
    printf("gc%s: %llu unreferenced pages (%s) %s; %llu chunks rewritten (%s copied), %llu deleted, "
           "%llu stray files; %s reclaimed in %.2fs%s\n",
           go->dry_run ? " (dry run)" : "", (unsigned long long)rep->pages_freed, a,
           go->dry_run ? "would be freed" : "freed", (unsigned long long)rep->chunks_rewritten, d,
           (unsigned long long)rep->chunks_deleted, (unsigned long long)rep->strays_deleted, b, rep->seconds,
           rep->stopped_early ? " (stopped at --max-duration; run again to finish)" : "");
}

static int gc_call(struct run *r, void *arg)
{
    struct gc *x = arg;
    progress_into(r, &x->go.progress, &x->go.progress_arg);
    return fks_gc(&x->rep, r->s, &x->go);
}

static const struct option GC_OPTS[] = {COMMON_OPTS, {"dry-run", no_argument, NULL, 'n'},
    {"max-duration", required_argument, NULL, 'd'}, {"threshold", required_argument, NULL, 't'},
    {"max-unused", required_argument, NULL, 'u'}, {0}};
static const struct call GC_CALL = {.opts = GC_OPTS, .opt = gc_opt, .what = "gc", .call = gc_call, .json = gc_json,
                                    .text = gc_text};

static const char H_COMPACT[] =
    "usage: forkctl compact [--level N] [--max-duration SECONDS] [--json]\n"
    "Recompresses stored blocks at zstd level N (default 15; ingest writes\n"
    "level 1 to stay fast), oldest chunks first, dropping dead records on the\n"
    "way; chunks whose blocks would not shrink by 1% are left as they are, so\n"
    "a second run costs little. gc moves blocks at the same level from then on.\n"
    "Safe while ingests and restores run; a kill loses nothing. Takes the gc\n"
    "lock: exits at once with code 4 if a gc or another compact runs.\n";

struct compact {
    fks_compact_opts co;
    fks_compact_report rep;
};

static int compact_opt(void *arg, int c)
{
    fks_compact_opts *co = &((struct compact *)arg)->co;
    double lv = 0;
    int e = -1;
    if (c == 'l' && (e = num_arg("compact", "--level", "a zstd level from 1 to 22", optarg, 1, 22, 1, &lv)) < 0)
        co->level = (int)lv;
    if (c == 'd')
        e = duration_arg("compact", "--max-duration", optarg, &co->max_seconds);
    return e;
}

static json_object *compact_json(const void *arg)
{
    const struct compact *x = arg;
    const fks_compact_report *rep = &x->rep;
    json_object *j = json_object_new_object();
    jints(j, (const struct jfield[]){{"level", x->co.level ? x->co.level : FKS_COMPACT_LEVEL},
          {"chunks_seen", (int64_t)rep->chunks_seen}, {"chunks_recompressed", (int64_t)rep->chunks_recompressed},
          {"chunks_dense", (int64_t)rep->chunks_dense}, {"chunks_busy", (int64_t)rep->chunks_busy},
          {"bytes_before", (int64_t)rep->bytes_before}, {"bytes_after", (int64_t)rep->bytes_after},
          {"disk_bytes_before", (int64_t)rep->disk_bytes_before}, {"disk_bytes_after", (int64_t)rep->disk_bytes_after},
          {"bytes_reclaimed", reclaimed(rep->disk_bytes_before, rep->disk_bytes_after)}, {NULL, 0}});
    jbool(j, "stopped_early", rep->stopped_early);
    jnum(j, "seconds", rep->seconds);
    return j;
}

static void compact_text(const void *arg)
{
    const fks_compact_report *rep = &((const struct compact *)arg)->rep;
    char a[32], b[32], d[32];
    human(a, sizeof a, (double)rep->bytes_before);
    human(b, sizeof b, (double)rep->bytes_after);
    human_reclaimed(d, sizeof d, rep->disk_bytes_before, rep->disk_bytes_after);
    printf("compact: %llu of %llu chunks recompressed (%s -> %s), %llu already dense, %llu busy; "
           "%s reclaimed in %.2fs%s\n",
           (unsigned long long)rep->chunks_recompressed, (unsigned long long)rep->chunks_seen, a, b,
           (unsigned long long)rep->chunks_dense, (unsigned long long)rep->chunks_busy, d, rep->seconds,
           rep->stopped_early ? " (stopped early; run again to finish)" : "");
}

static int compact_call(struct run *r, void *arg)
{
    struct compact *x = arg;
    progress_into(r, &x->co.progress, &x->co.progress_arg);
    return fks_compact(&x->rep, r->s, &x->co);
}

static const struct option COMPACT_OPTS[] = {COMMON_OPTS, {"level", required_argument, NULL, 'l'},
    {"max-duration", required_argument, NULL, 'd'}, {0}};
static const struct call COMPACT_CALL = {.opts = COMPACT_OPTS, .opt = compact_opt, .what = "compact",
                                         .call = compact_call, .json = compact_json, .text = compact_text};

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

/* --sample PERCENT (verify, remote verify): -1 to go on, else the usage
** exit code; why says what follows the value when it is 0. */
static int sample_arg(const char *cmd, const char *arg, const char *why, double *sample)
{
    int e;
    if ((e = num_arg(cmd, "--sample", "a percentage above 0 and at most 100", arg, 0, 100, 0, sample)) >= 0)
        return e;
    if (*sample <= 0)
        return usage_err(cmd, "--sample takes a percentage above 0 and at most 100, got '%s'%s", arg, why);
    return -1;
}

struct verify {
    double sample;             /* --sample; 0: all (100) */
    fks_verify_report *v;
};

static int verify_opt(void *arg, int c)
{
    (void)c;
    return sample_arg("verify", optarg, " (out of range)", &((struct verify *)arg)->sample);
}

static int verify_call(struct run *r, void *arg)
{
    struct verify *x = arg;
    return fks_verify(&x->v, r->s, x->sample > 0 ? x->sample : 100, r->fn, &r->p);
}

/* Frees the report; exit 5 if it found damage. */
static int verify_end(void *arg)
{
    struct verify *x = arg;
    int bad = x->v->n_problems > 0;
    fks_verify_free(x->v);
    return bad ? EX_CORRUPT : EX_OK;
}

static json_object *verify_json(const void *arg)
{
    const fks_verify_report *v = ((const struct verify *)arg)->v;
    json_object *j = json_object_new_object();
    jbool(j, "ok", v->n_problems == 0);
    jints(j, (const struct jfield[]){{"chunks_checked", (int64_t)v->chunks_checked},
          {"pages_checked", (int64_t)v->pages_checked}, {"runs_checked", (int64_t)v->runs_checked},
          {"bad_chunks", (int64_t)v->bad_chunks}, {"bad_pages", (int64_t)v->bad_pages},
          {"missing_pages", (int64_t)v->missing_pages}, {"bad_runs", (int64_t)v->bad_runs}, {NULL, 0}});
    json_object_object_add(j, "problems", json_strings(v->problems, v->n_problems));
    json_object_object_add(j, "affected_snapshots", json_strings(v->affected, v->n_affected));
    json_object_object_add(j, "notes", json_strings(v->notes, v->n_notes));
    jnum(j, "seconds", v->seconds);
    return j;
}

static void verify_text(const void *arg)
{
    const fks_verify_report *v = ((const struct verify *)arg)->v;
    int bad = v->n_problems > 0;
    put_problems("verify", v->problems, v->n_problems, v->notes, v->n_notes, v->affected, v->n_affected);
    if (!g_quiet || bad)
        printf("verify: %s: %llu chunks, %llu page map runs, %llu pages checked in %.2fs\n",
               bad ? "DAMAGED" : "ok", (unsigned long long)v->chunks_checked,
               (unsigned long long)v->runs_checked, (unsigned long long)v->pages_checked, v->seconds);
}

static const struct option VERIFY_OPTS[] = {COMMON_OPTS, {"sample", required_argument, NULL, 's'}, {0}};
static const struct call VERIFY_CALL = {.opts = VERIFY_OPTS, .opt = verify_opt, .what = "verify", .call = verify_call,
                                        .json = verify_json, .text = verify_text, .loud = 1, .end = verify_end};

static const char H_RECOVER[] =
    "usage: forkctl recover [--force] [--json]\n"
    "Rebuilds a lost or damaged catalog from the files beside it: the page index\n"
    "from the chunk records (each carries its pages' hashes), snapshots, lineage\n"
    "and page maps from DIR/manifests. The old catalog.db (and -wal, -shm) is\n"
    "kept as catalog.db.damaged-<unix ms>. A catalog that opens and passes its\n"
    "checks is left alone unless --force. Names every snapshot it could not\n"
    "recover and why (missing pages, damaged manifests) and exits 5 if any, or\n"
    "if a chunk file or manifest is unreadable.\n";

static json_object *recover_json(const fks_recover_report *v, int bad)
{
    json_object *j = json_object_new_object();
    jbool(j, "ok", !bad);
    jstr(j, "moved_aside", or_null(v->moved_aside));
    jints(j, (const struct jfield[]){{"snapshots", (int64_t)v->snapshots}, {"manifests", (int64_t)v->manifests},
          {"manifests_bad", (int64_t)v->manifests_bad}, {"tombstones", (int64_t)v->tombstones},
          {"chunks", (int64_t)v->chunks}, {"chunks_bad", (int64_t)v->chunks_bad}, {"records", (int64_t)v->records},
          {"records_bad", (int64_t)v->records_bad}, {"pages", (int64_t)v->pages},
          {"pages_missing", (int64_t)v->pages_missing}, {NULL, 0}});
    json_object_object_add(j, "lost", json_strings(v->lost, v->n_lost));
    json_object_object_add(j, "problems", json_strings(v->problems, v->n_problems));
    jnum(j, "seconds", v->seconds);
    return j;
}

static void recover_text(const fks_recover_report *v, int bad)
{
    for (size_t i = 0; i < v->n_problems; i++)
        fprintf(stderr, "forkctl: recover: %s\n", v->problems[i]);
    for (size_t i = 0; i < v->n_lost; i++)
        fprintf(stderr, "forkctl: recover: not recovered: %s\n", v->lost[i]);
    if (g_quiet && !bad)
        return;
    if (v->moved_aside[0])
        printf("recover: the old catalog is kept as %s\n", v->moved_aside);
    printf("recover: %s: %llu snapshots from %llu manifests (%llu tombstones), %llu pages from %llu "
           "chunk files in %.2fs%s\n", bad ? "INCOMPLETE" : "ok", (unsigned long long)v->snapshots,
           (unsigned long long)v->manifests, (unsigned long long)v->tombstones,
           (unsigned long long)v->pages, (unsigned long long)v->chunks, v->seconds,
           v->n_lost ? "; see the snapshots named above" : "");
}

static int cmd_recover(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"force", no_argument, NULL, 'f'}, {0}};
    int force = 0, rc;
    while (next_opt(r, o) != 0)
        force = 1;
    if (r->exit >= 0)
        return r->exit;
    char def[4096];
    const char *dir;
    fks_recover_report *v = NULL;
    if ((rc = store_dir(&dir, def, sizeof def)) == 0)
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
    if (r->json)
        print_json(recover_json(v, bad));
    else
        recover_text(v, bad);
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

static json_object *import_json(const fks_forkd_import_result *res)
{
    json_object *j = json_object_new_object();
    jint(j, "imported", (int64_t)res->n_imported);
    jint(j, "without_rootfs", (int64_t)res->n_no_rootfs);
    json_object_object_add(j, "warnings", json_strings(res->warnings, res->n_warnings));
    return j;
}

static void import_text(const char *dir, const fks_forkd_import_result *res)
{
    printf("imported %zu snapshot%s from %s", res->n_imported, res->n_imported == 1 ? "" : "s", dir);
    if (res->n_no_rootfs)
        printf("; %zu without the rootfs snapshot.json names (see the warnings)", res->n_no_rootfs);
    printf("\n");
}

static int cmd_import(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"prefix", required_argument, NULL, 'p'},
        {"rootfs-dir", required_argument, NULL, 'r'}, {0}};
    fks_forkd_import_opts io = {0};
    int c, rc;
    while ((c = next_opt(r, o)) != 0)
        *(c == 'p' ? &io.prefix : &io.rootfs_dir) = optarg;
    if (r->exit >= 0)
        return r->exit;
    const char *dir = r->args[0];
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    r->fn = progress(r, "import");
    progress_into(r, &io.progress, &io.progress_arg);
    fks_forkd_import_result res;
    rc = store_done(r, fks_import_forkd(&res, r->s, dir, &io));
    for (size_t i = 0; i < res.n_warnings; i++)
        fprintf(stderr, "forkctl: warning: %s%s\n", res.warnings[i],
                strstr(res.warnings[i], "rootfs") && strstr(res.warnings[i], "not imported")
                    ? " (--rootfs-dir names another directory)" : "");
    if (rc) {
        fprintf(stderr, "forkctl: %s\n", fks_errmsg());
        if (res.n_imported)
            fprintf(stderr, "forkctl: %zu of %zu snapshots were imported before the failure\n", res.n_imported,
                    res.n_found);
    } else if (r->json) {
        print_json(import_json(&res));
    } else if (!g_quiet) {
        import_text(dir, &res);
    }
    fks_forkd_import_result_clear(&res);
    return exit_code(rc);
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

static json_object *export_json(const char *tag, const char *out, const fks_forkd_export_result *res)
{
    json_object *j = json_object_new_object(), *d = json_object_new_array();
    jstr(j, "tag", tag);
    jstr(j, "forkd", out);
    jstr(j, "name", res->names[res->n - 1]);
    for (size_t i = 0; i < res->n; i++) {
        json_object *e = json_object_new_object();
        jstr(e, "name", res->names[i]);
        jbool(e, "reused", res->reused[i]);
        json_object_array_add(d, e);
    }
    json_object_object_add(j, "directories", d);
    return j;
}

static void export_text(const char *tag, const char *out, const fks_forkd_export_result *res)
{
    size_t reused = 0;
    for (size_t i = 0; i < res->n; i++)
        reused += res->reused[i] != 0;
    printf("exported %s to %s/%s", tag, out, res->names[res->n - 1]);
    if (res->n > 1) {
        printf(" as a chain of %zu (base %s", res->n, res->names[0]);
        if (reused)
            printf("; %zu already there", reused);
        printf(")");
    }
    printf("\n");
}

static int cmd_export(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, {"forkd", required_argument, NULL, 'f'},
        {"flat", no_argument, NULL, 'F'}, {"tag", required_argument, NULL, 't'}, {0}};
    const char *out = NULL;
    fks_forkd_export_opts eo = {0};
    int c, rc;
    while ((c = next_opt(r, o)) != 0) {
        if (c == 'f')
            out = optarg;
        else if (c == 'F')
            eo.flat = 1;
        else
            eo.name = optarg;
    }
    if (r->exit >= 0)
        return r->exit;
    if (!out)
        return usage_err("export", "%s", "--forkd DIR is required");
    if (eo.name && fks_check_forkd_tag(eo.name) != 0)
        return usage_err("export", "--tag: %s", fks_errmsg());
    const char *tag = r->args[0];
    fks_forkd_export_result res;
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    if ((rc = store_done(r, fks_export_forkd(&res, r->s, tag, out, &eo))) != 0) {
        const char *m = fks_errmsg();
        if (!strstr(m, "not a forkd tag"))
            return fail(rc);
        fprintf(stderr, "forkctl: %s%s\n", m, strstr(m, "ancestor") ? " (forkctl tag renames it; --flat exports "
                "TAG alone)" : " (--tag NAME names it for forkd)");
        return exit_code(rc);
    }
    if (r->json)
        print_json(export_json(tag, out, &res));
    else if (!g_quiet)
        export_text(tag, out, &res);
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

/* The retention rules prune and remote prune share: -1 to go on (also when
** c is none of them), else the usage exit code. cmd is "prune" or "remote". */
static int keep_opt(const char *cmd, fks_prune_opts *po, const char **tags, int c)
{
    double v = 0;
    int e;
    switch (c) {
    case 'l':
        if ((e = num_arg(cmd, "--keep-last", "a whole number from 1 to 1000000", optarg, 1, 1000000, 1, &v)) >= 0)
            return e;
        po->keep_last = (int)v;
        break;
    case 'w':
        if ((e = duration_arg(cmd, "--keep-within", optarg, &v)) >= 0)
            return e;
        po->keep_within_ms = (int64_t)(v * 1000);
        if (po->keep_within_ms <= 0)
            po->keep_within_ms = 1;      /* under a millisecond: still a rule */
        break;
    case 't':
        if (po->n_keep_tags == 64)
            return usage_err(cmd, "%s", "at most 64 --keep-tag options");
        tags[po->n_keep_tags++] = optarg;
        break;
    case 'n': po->dry_run = 1; break;
    }
    return -1;
}

static int keep_none(const fks_prune_opts *po)
{
    return po->keep_last == 0 && po->keep_within_ms == 0 && po->n_keep_tags == 0;
}

/* prune and remote prune --json; anc < 0: not a remote prune. */
static json_object *prune_json(const fks_prune_opts *po, const fks_prune_result *res, int64_t anc)
{
    json_object *j = json_object_new_object();
    jbool(j, "dry_run", po->dry_run);
    json_object_object_add(j, "removed", json_strings(res->removed, res->n_removed));
    jint(j, "kept", (int64_t)res->n_kept);
    if (anc >= 0)
        jint(j, "kept_as_ancestors", anc);
    return j;
}

static void prune_removed_text(const fks_prune_opts *po, const fks_prune_result *res)
{
    for (size_t i = 0; i < res->n_removed; i++)
        printf("%s %s\n", po->dry_run ? "would remove" : "removed", esc(res->removed[i]));
}

#define KEEP_OPTS \
    {"keep-last", required_argument, NULL, 'l'}, {"keep-within", required_argument, NULL, 'w'}, \
    {"keep-tag", required_argument, NULL, 't'}, {"dry-run", no_argument, NULL, 'n'}

static int cmd_prune(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, KEEP_OPTS, {0}};
    fks_prune_opts po = {0};
    const char *tags[64];
    int c, e, rc;
    po.keep_tags = tags;
    while ((c = next_opt(r, o)) != 0)
        if ((e = keep_opt("prune", &po, tags, c)) >= 0)
            return e;
    if (r->exit >= 0)
        return r->exit;
    if (keep_none(&po))
        return usage_err("prune", "%s", "give at least one rule: --keep-last, --keep-within or --keep-tag");
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    fks_prune_result res;
    rc = fks_prune(&res, r->s, &po);
    int used = fks_reserve_used(r->s);
    store_done(r, rc);
    if (rc) {
        int ex = fail(rc);
        full_disk_note("prune", used, rc);
        fprintf(stderr, "forkctl: prune removed nothing (it removes all or none)\n");
        fks_prune_result_clear(&res);
        return ex;
    }
    if (r->json) {
        print_json(prune_json(&po, &res, -1));
    } else if (!g_quiet) {
        prune_removed_text(&po, &res);
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

/* Everything `forkctl info` shows of one snapshot. */
struct info {
    const char *tag;
    int flags;                     /* FKS_STATS_UNIQUE, FKS_STATS_RUNS */
    fks_snapinfo in;
    fks_snapinfo *chain, *kids;
    size_t nchain, nkids;
    fks_snap_stats *st;
    fks_branch_info bi;
    fks_serve_stats lz;            /* its last lazy restore, if lz_ms */
    int64_t lz_ms;
};

/* Reads it all from the open store. */
static int info_call(struct run *r, void *arg)
{
    struct info *x = arg;
    fks_store *s = r->s;
    const char *tag = x->tag;
    int rc;
    if ((rc = fks_get(&x->in, s, tag)) == 0 && (rc = fks_chain_brief(&x->chain, &x->nchain, s, tag)) == 0 &&
        (rc = fks_children(&x->kids, &x->nkids, s, tag)) == 0 && (rc = fks_branch_info_get(&x->bi, s, tag)) == 0 &&
        (rc = fks_lazy_stats_get(&x->lz, &x->lz_ms, s, tag)) == 0)
        rc = fks_snap_stats_get_ex(&x->st, s, tag, x->flags);
    if (rc) {
        free(x->chain);
        free(x->kids);
    }
    return rc;
}

static int info_end(void *arg)
{
    struct info *x = arg;
    fks_snap_stats_free(x->st);
    free(x->chain);
    free(x->kids);
    return EX_OK;
}

static json_object *info_files_json(const fks_snap_stats *st)
{
    json_object *arts = json_object_new_array();
    for (size_t i = 0; i < st->n_artifacts; i++) {
        json_object *a = json_object_new_object();
        jstr(a, "name", st->artifacts[i].name);
        jint(a, "size", (int64_t)st->artifacts[i].size);
        jint(a, "nonzero_bytes", (int64_t)st->artifacts[i].nonzero_bytes);
        json_object_object_add(a, "runs", st->runs_known ? json_object_new_int64((int64_t)st->artifacts[i].runs)
                                                         : NULL);
        json_object_array_add(arts, a);
    }
    return arts;
}

/* The last lazy restore's numbers, or NULL if it had none. */
static json_object *info_lazy_json(const struct info *x)
{
    if (!x->lz_ms)
        return NULL;
    json_object *j = serve_stats_json(x->in.tag, &x->lz);
    static const char *const drop[] = {"tag", "peak_rss_kib", "seconds", "prefetch_seconds", "working_set_from"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        json_object_object_del(j, drop[i]);
    jint(j, "finished_ms", x->lz_ms);
    return j;
}

static json_object *info_json(const void *arg)
{
    const struct info *x = arg;
    const fks_snap_stats *st = x->st;
    json_object *j = json_object_new_object(), *kids = json_object_new_array(), *ch = json_object_new_array();
    jstr(j, "tag", x->in.tag);
    jstr(j, "parent", or_null(x->in.parent));
    for (size_t i = 0; i < x->nkids; i++)
        json_object_array_add(kids, json_object_new_string(x->kids[i].tag));
    json_object_object_add(j, "children", kids);
    for (size_t i = 0; i < x->nchain; i++)
        json_object_array_add(ch, json_object_new_string(x->chain[i].tag));
    json_object_object_add(j, "chain", ch);
    jints(j, (const struct jfield[]){{"depth", x->in.depth}, {"created_ms", x->in.created_ms},
          {"logical_bytes", (int64_t)st->logical_bytes}, {"nonzero_bytes", (int64_t)st->nonzero_bytes},
          {"shared_with_parent_bytes", (int64_t)st->shared_with_parent_bytes}, {NULL, 0}});
    if (st->unique_known)
        jints(j, (const struct jfield[]){{"unique_pages", (int64_t)st->unique_pages},
              {"unique_bytes", (int64_t)st->unique_bytes}, {"unique_stored_bytes", (int64_t)st->unique_stored_bytes},
              {NULL, 0}});
    jint(j, "stored_bytes", (int64_t)st->stored_bytes);
    json_object_object_add(j, "artifacts", info_files_json(st));
    jopt(j, "pause_ms", x->in.pause_ms);
    jopt(j, "snapshot_ms", x->in.snapshot_ms);
    jopt(j, "ingest_ms", x->in.ingest_ms);
    jopt(j, "diff_bytes", x->in.diff_bytes);
    jstr(j, "firecracker_version", or_null(x->bi.fc_version));
    jstr(j, "format_version", or_null(x->bi.format_version));
    json_object_object_add(j, "last_lazy_restore", info_lazy_json(x));
    return j;
}

/* info's text: snapshot, parent, children, chain and when it was made. */
static void info_lineage_text(const struct info *x)
{
    char w[96];
    printf("snapshot          %s\n", x->in.tag);
    printf("parent            %s\n", x->in.parent[0] ? x->in.parent : "- (a root)");
    printf("children         ");
    for (size_t i = 0; i < x->nkids; i++)
        printf(" %s", x->kids[i].tag);
    printf("%s\n", x->nkids ? "" : " -");
    printf("chain            ");
    for (size_t i = 0; i < x->nchain; i++)
        printf("%s%s", i ? " > " : " ", x->chain[i].tag);
    printf("  (depth %d)\n", x->in.depth);
    when(w, sizeof w, x->in.created_ms);
    printf("created           %s\n", w);
}

/* One size line of info's text. */
static void size_line(const char *label, uint64_t v, const char *note)
{
    char b[64];
    human(b, sizeof b, (double)v);
    printf("%-17s %-11s %s\n", label, b, note);
}

static void info_sizes_text(const fks_snap_stats *st)
{
    size_line("logical", st->logical_bytes, "all files");
    size_line("non-zero", st->nonzero_bytes, "pages not all zero");
    size_line("shared w/ parent", st->shared_with_parent_bytes, "same page at the same place in the parent");
    if (st->unique_known) {
        size_line("unique", st->unique_bytes, "pages no other snapshot references");
        size_line("freed by rmi+gc", st->unique_stored_bytes, "at most: stored blocks holding those pages");
    }
    size_line("stored", st->stored_bytes, "bytes its ingest added");
}

/* info's text: branch timings, versions and the last lazy restore. */
static void info_history_text(const struct info *x)
{
    const fks_snapinfo *in = &x->in;
    const fks_serve_stats *lz = &x->lz;
    char b[64], w[96];
    if (in->pause_ms >= 0 || in->snapshot_ms >= 0 || in->ingest_ms >= 0) {
        human(b, sizeof b, (double)(in->diff_bytes > 0 ? in->diff_bytes : 0));
        printf("branch timings    pause %lld ms, snapshot %lld ms, ingest %lld ms, diff file %s\n",
               (long long)in->pause_ms, (long long)in->snapshot_ms, (long long)in->ingest_ms, b);
    } else {
        printf("branch timings    - (not taken by forkctl branch)\n");
    }
    if (x->bi.fc_version[0] || x->bi.format_version[0])
        printf("versions          Firecracker %s, snapshot format %s\n", x->bi.fc_version[0] ? x->bi.fc_version : "?",
               x->bi.format_version[0] ? x->bi.format_version : "?");
    else
        printf("versions          - (not recorded)\n");
    if (!x->lz_ms) {
        printf("last lazy restore - (never)\n");
        return;
    }
    when(w, sizeof w, x->lz_ms);
    human(b, sizeof b, (double)lz->bytes_decoded);
    printf("last lazy restore %s: %llu VM(s), %llu faults, pages %llu on demand, %llu by prefetch, %llu zero; "
           "%s decoded; fault p50 %.1f us, p99 %.1f us; working set %llu pages\n", w,
           (unsigned long long)lz->vms, (unsigned long long)lz->faults, (unsigned long long)lz->pages_demand,
           (unsigned long long)lz->pages_prefetch, (unsigned long long)lz->pages_zero, b, lz->fault_p50_us,
           lz->fault_p99_us, (unsigned long long)lz->working_set_pages);
}

static void info_files_text(const fks_snap_stats *st)
{
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

static void info_text(const void *arg)
{
    const struct info *x = arg;
    info_lineage_text(x);
    info_sizes_text(x->st);
    info_history_text(x);
    info_files_text(x->st);
}

static int info_tag(struct run *r, void *arg)
{
    ((struct info *)arg)->tag = r->args[0];
    return -1;
}

static int info_opt(void *arg, int c)
{
    ((struct info *)arg)->flags |= c == 'U' ? FKS_STATS_UNIQUE : FKS_STATS_RUNS;
    return -1;
}

static const struct option INFO_OPTS[] = {COMMON_OPTS, {"unique", no_argument, NULL, 'U'},
    {"runs", no_argument, NULL, 'R'}, {0}};
static const struct call INFO_CALL = {.opts = INFO_OPTS, .opt = info_opt, .check = info_tag, .call = info_call,
                                      .json = info_json, .text = info_text, .loud = 1, .end = info_end};

static const char H_DIFF[] =
    "usage: forkctl diff A B [--json]\n"
    "Compares snapshots A and B file by file (files of the same name) from their\n"
    "page maps alone, without reading page data: for each file, how many 4 KiB\n"
    "pages differ and the byte ranges they cover, adjacent pages merged. Pages\n"
    "past the end of the shorter file count as zero. Exits 0 either way.\n";

/* The bytes [*off, *end) that range k of x covers, in the longer file. */
static void diff_range(const fks_diff_artifact *x, size_t k, uint64_t *off, uint64_t *end)
{
    uint64_t size = x->size_a > x->size_b ? x->size_a : x->size_b;
    *off = x->ranges[k].pgno * FKS_PAGE_SIZE;
    *end = (x->ranges[k].pgno + x->ranges[k].npages) * FKS_PAGE_SIZE;
    if (*end > size)
        *end = size;
}

struct diff {
    const char *a, *b;
    fks_diff_report *d;
};

static int diff_tags(struct run *r, void *arg)
{
    ((struct diff *)arg)->a = r->args[0];
    ((struct diff *)arg)->b = r->args[1];
    return -1;
}

static int diff_call(struct run *r, void *arg)
{
    struct diff *x = arg;
    return fks_diff(&x->d, r->s, x->a, x->b);
}

static int diff_end(void *arg)
{
    fks_diff_free(((struct diff *)arg)->d);
    return EX_OK;
}

static json_object *diff_json(const void *arg)
{
    const char *ta = ((const struct diff *)arg)->a, *tb = ((const struct diff *)arg)->b;
    const fks_diff_report *d = ((const struct diff *)arg)->d;
    json_object *j = json_object_new_object(), *arts = json_object_new_array();
    jstr(j, "a", ta);
    jstr(j, "b", tb);
    jint(j, "pages", (int64_t)d->pages);
    jint(j, "bytes", (int64_t)d->bytes);
    for (size_t i = 0; i < d->n; i++) {
        const fks_diff_artifact *x = &d->artifacts[i];
        json_object *a = json_object_new_object(), *rg = json_object_new_array();
        jstr(a, "name", x->name);
        jopt(a, "size_a", x->in_a ? (int64_t)x->size_a : -1);
        jopt(a, "size_b", x->in_b ? (int64_t)x->size_b : -1);
        jint(a, "pages", (int64_t)x->pages);
        jint(a, "bytes", (int64_t)x->bytes);
        for (size_t k = 0; k < x->n_ranges; k++) {
            uint64_t off, end;
            diff_range(x, k, &off, &end);
            json_object *e = json_object_new_object();
            jint(e, "offset", (int64_t)off);
            jint(e, "length", (int64_t)(end - off));
            json_object_array_add(rg, e);
        }
        json_object_object_add(a, "ranges", rg);
        json_object_array_add(arts, a);
    }
    json_object_object_add(j, "artifacts", arts);
    return j;
}

static void diff_text(const void *arg)
{
    const char *ta = ((const struct diff *)arg)->a, *tb = ((const struct diff *)arg)->b;
    const fks_diff_report *d = ((const struct diff *)arg)->d;
    char b[32];
    for (size_t i = 0; i < d->n; i++) {
        const fks_diff_artifact *x = &d->artifacts[i];
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
            uint64_t off, end;
            diff_range(x, k, &off, &end);
            human(b, sizeof b, (double)(end - off));
            printf("  0x%010llx-0x%010llx  %s\n", (unsigned long long)off, (unsigned long long)end - 1, b);
        }
    }
    human(b, sizeof b, (double)d->bytes);
    printf("%s -> %s: %llu page%s differ (%s)\n", ta, tb, (unsigned long long)d->pages,
           d->pages == 1 ? "" : "s", b);
}

static const struct call DIFF_CALL = {.check = diff_tags, .call = diff_call, .json = diff_json, .text = diff_text,
                                      .loud = 1, .end = diff_end};

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

struct stats {
    int prom;                  /* --prometheus */
    char dir[4096];            /* the store, for its label */
    fks_store_stats st;
};

static int stats_call(struct run *r, void *arg)
{
    return fks_store_stats_get(&((struct stats *)arg)->st, r->s);
}

static void stats_prom(const char *dir, const fks_store_stats *st)
{
    prom(dir, "snapshots", "Snapshots in the store.", (double)st->snapshots, 1);
    prom(dir, "artifacts", "Files of all snapshots.", (double)st->artifacts, 1);
    prom(dir, "logical_bytes", "Sum of the sizes of all snapshot files.", (double)st->logical_bytes, 1);
    prom(dir, "stored_bytes", "Bytes of every indexed page in chunk files (compressed, with record headers).",
         (double)st->stored_bytes, 1);
    prom(dir, "pages", "Distinct pages in the page index.", (double)st->pages, 1);
    prom(dir, "referenced_pages", "Indexed pages some snapshot references.", (double)st->referenced_pages, 1);
    prom(dir, "reclaimable_bytes", "Stored bytes of pages no snapshot references (gc reclaims them).",
         (double)st->reclaimable_bytes, 1);
    prom(dir, "chunks", "Chunk files in the catalog.", (double)st->chunks, 1);
    prom(dir, "chunk_used_bytes", "Committed bytes in chunk files.", (double)st->chunk_used_bytes, 1);
    prom(dir, "chunk_disk_bytes", "Bytes allocated on disk to chunk files.", (double)st->chunk_disk_bytes, 1);
    prom(dir, "catalog_disk_bytes", "Bytes allocated on disk to the catalog and its WAL.",
         (double)st->catalog_disk_bytes, 1);
    prom(dir, "dead_bytes", "Committed chunk bytes no page names (gc compacts them away).", (double)st->dead_bytes, 1);
    prom(dir, "dead_ratio", "Share of committed chunk record bytes that are dead.", st->dead_share, 0);
    prom(dir, "dedup_ratio", "Page references per distinct referenced page.", st->dedup_ratio, 0);
    prom(dir, "compression_ratio", "Page bytes per stored byte.", st->compression_ratio, 0);
    prom(dir, "zero_page_ratio", "Share of all file pages that are zero pages (never stored).",
         st->zero_page_share, 0);
}

static json_object *stats_json(const void *arg)
{
    const fks_store_stats *st = &((const struct stats *)arg)->st;
    json_object *j = json_object_new_object();
    jints(j, (const struct jfield[]){{"snapshots", (int64_t)st->snapshots}, {"artifacts", (int64_t)st->artifacts},
          {"runs", (int64_t)st->runs}, {"chunks", (int64_t)st->chunks}, {"logical_bytes", (int64_t)st->logical_bytes},
          {"logical_pages", (int64_t)st->logical_pages}, {"page_refs", (int64_t)st->page_refs},
          {"pages", (int64_t)st->pages}, {"referenced_pages", (int64_t)st->referenced_pages},
          {"stored_bytes", (int64_t)st->stored_bytes}, {"reclaimable_bytes", (int64_t)st->reclaimable_bytes},
          {"chunk_used_bytes", (int64_t)st->chunk_used_bytes}, {"chunk_disk_bytes", (int64_t)st->chunk_disk_bytes},
          {"catalog_disk_bytes", (int64_t)st->catalog_disk_bytes}, {"dead_bytes", (int64_t)st->dead_bytes},
          {NULL, 0}});
    jnum(j, "dead_share", st->dead_share);
    jnum(j, "dedup_ratio", st->dedup_ratio);
    jnum(j, "compression_ratio", st->compression_ratio);
    jnum(j, "zero_page_share", st->zero_page_share);
    return j;
}

static void stats_text(const void *arg)
{
    const struct stats *x = arg;
    const fks_store_stats *st = &x->st;
    char a[32], b[32], d[32];
    if (x->prom) {
        stats_prom(x->dir, st);
        return;
    }
    human(a, sizeof a, (double)st->logical_bytes);
    printf("snapshots          %llu (%llu files)\n", (unsigned long long)st->snapshots,
           (unsigned long long)st->artifacts);
    printf("logical            %s\n", a);
    printf("zero pages         %.1f%% (never stored)\n", 100 * st->zero_page_share);
    printf("dedup              %.2fx (%llu page references, %llu distinct pages)\n", st->dedup_ratio,
           (unsigned long long)st->page_refs, (unsigned long long)st->referenced_pages);
    human(a, sizeof a, (double)st->stored_bytes);
    printf("stored             %s (%llu pages, compression %.2fx)\n", a, (unsigned long long)st->pages,
           st->compression_ratio);
    human(a, sizeof a, (double)st->reclaimable_bytes);
    printf("reclaimable by gc  %s (%llu pages no snapshot references)\n", a,
           (unsigned long long)(st->pages - st->referenced_pages));
    human(a, sizeof a, (double)st->chunk_disk_bytes);
    human(b, sizeof b, (double)st->chunk_used_bytes);
    human(d, sizeof d, (double)st->catalog_disk_bytes);
    printf("chunk files        %llu, %s on disk (%s used)\n", (unsigned long long)st->chunks, a, b);
    human(a, sizeof a, (double)st->dead_bytes);
    printf("dead in chunks     %s (%.1f%% of the records; gc compacts down to 5%%)\n", a, 100 * st->dead_share);
    printf("catalog            %s on disk\n", d);
}

static int stats_opt(void *arg, int c)
{
    (void)c;
    ((struct stats *)arg)->prom = 1;
    return -1;
}

static int stats_check(struct run *r, void *arg)
{
    struct stats *x = arg;
    const char *dir;
    int rc;
    if (r->json && x->prom)
        return usage_err("stats", "%s", "give --json or --prometheus, not both");
    if ((rc = store_dir(&dir, x->dir, sizeof x->dir)) != 0)
        return fail(rc);
    if (dir != x->dir)
        snprintf(x->dir, sizeof x->dir, "%s", dir);
    return -1;
}

static const struct option STATS_OPTS[] = {COMMON_OPTS, {"prometheus", no_argument, NULL, 'p'}, {0}};
static const struct call STATS_CALL = {.opts = STATS_OPTS, .opt = stats_opt, .check = stats_check, .call = stats_call,
                                       .json = stats_json, .text = stats_text, .loud = 1};

static const char H_TAG[] =
    "usage: forkctl tag OLD NEW [--json]\n"
    "Renames snapshot OLD to NEW. Lineage is kept (children refer to their\n"
    "parent by id, not by tag). Refused if a snapshot NEW exists.\n";

struct tag {
    const char *old, *new;
};

static int tag_tags(struct run *r, void *arg)
{
    ((struct tag *)arg)->old = r->args[0];
    ((struct tag *)arg)->new = r->args[1];
    return -1;
}

static int tag_call(struct run *r, void *arg)
{
    const struct tag *x = arg;
    return fks_tag(r->s, x->old, x->new);
}

static json_object *tag_json(const void *arg)
{
    const struct tag *x = arg;
    json_object *j = json_object_new_object();
    jstr(j, "old", x->old);
    jstr(j, "new", x->new);
    return j;
}

static void tag_text(const void *arg)
{
    const struct tag *x = arg;
    printf("renamed %s to %s\n", x->old, x->new);
}

static const struct call TAG_CALL = {.check = tag_tags, .call = tag_call, .json = tag_json, .text = tag_text};

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

static int remote_maint(struct run *r);

static void remote_ls_text(const fks_remote *list, size_t n)
{
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

static int remote_keygen(struct run *r, const char *file)
{
    int rc = fks_remote_keygen(file);
    if (rc)
        return fail(rc);
    if (r->json)
        print_json(json_object_new_string(file));
    else if (!g_quiet)
        printf("wrote key file %s: copy it (safely) to every host of the remote; without it the bucket is "
               "unreadable\n", esc(file));
    return EX_OK;
}

/* The options and operands of remote add, keygen, ls and rm. */
struct remote_args {
    const char *endpoint, *region, *keyfile;
    const char *sub;           /* add, keygen, ls or rm */
    int nargs;                 /* its operands */
    char **args;
};

/* remote add NAME URL into rem: -1 to go on, else the exit code. */
static int remote_add_args(const struct remote_args *a, fks_remote *rem)
{
    if (a->nargs != 2)
        return usage_err("remote", "%s", "remote add takes NAME and s3://BUCKET[/PREFIX]");
    if (!a->endpoint)
        return usage_err("remote", "%s", "remote add needs --endpoint URL");
    if (strlen(a->args[0]) >= sizeof rem->name || strlen(a->endpoint) >= sizeof rem->endpoint ||
        (a->region && strlen(a->region) >= sizeof rem->region) ||
        (a->keyfile && strlen(a->keyfile) >= sizeof rem->key_file))
        return usage_err("remote", "%s", "name, endpoint, region or key file too long");
    if (a->keyfile && !a->keyfile[0])
        return usage_err("remote", "%s", "--encrypt needs a key file (remote keygen writes one)");
    snprintf(rem->key_file, sizeof rem->key_file, "%s", a->keyfile ? a->keyfile : "");
    snprintf(rem->name, sizeof rem->name, "%s", a->args[0]);
    snprintf(rem->endpoint, sizeof rem->endpoint, "%s", a->endpoint);
    snprintf(rem->region, sizeof rem->region, "%s", a->region ? a->region : "");
    int rc = fks_remote_parse_url(rem, a->args[1]);
    return rc ? fail(rc) : -1;
}

/* The subcommand's operands: -1 to go on, else the usage exit code. */
static int remote_args_check(const struct remote_args *a)
{
    const char *sub = a->sub;
    int other = a->endpoint || a->region;
    if (a->keyfile && strcmp(sub, "add") != 0)
        return usage_err("remote", "%s", "--encrypt goes with remote add");
    if (strcmp(sub, "keygen") == 0 && (a->nargs != 1 || other))
        return usage_err("remote", "%s", "remote keygen takes KEYFILE");
    if (strcmp(sub, "ls") == 0 && (a->nargs != 0 || other))
        return usage_err("remote", "%s", "remote ls takes no arguments (--endpoint and --region go with add)");
    if (strcmp(sub, "rm") == 0 && (a->nargs != 1 || other))
        return usage_err("remote", "%s", "remote rm takes NAME (--endpoint and --region go with add)");
    if (strcmp(sub, "add") != 0 && strcmp(sub, "keygen") != 0 && strcmp(sub, "ls") != 0 && strcmp(sub, "rm") != 0)
        return usage_err("remote", "unknown subcommand '%s' (add, keygen, ls, rm; gc, prune and verify come first: "
                         "remote gc [OPTIONS])", sub);
    return -1;
}

static int cmd_remote(struct run *r)
{
    if (r->argc > 1 && (strcmp(r->argv[1], "gc") == 0 || strcmp(r->argv[1], "prune") == 0 ||
                        strcmp(r->argv[1], "verify") == 0))
        return remote_maint(r);
    static const struct option o[] = {COMMON_OPTS, {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'}, {"encrypt", required_argument, NULL, 'k'}, {0}};
    struct remote_args a = {0};
    int c, e, rc;
    while ((c = next_opt(r, o)) != 0)
        *(c == 'e' ? &a.endpoint : c == 'r' ? &a.region : &a.keyfile) = optarg;
    if (r->exit >= 0)
        return r->exit;
    if (r->nargs < 1)
        return usage_err("remote", "%s", "give add, keygen, ls or rm");
    a.sub = r->args[0];
    a.nargs = r->nargs - 1;
    a.args = r->args + 1;
    if ((e = remote_args_check(&a)) >= 0)
        return e;
    if (strcmp(a.sub, "keygen") == 0)
        return remote_keygen(r, a.args[0]);
    fks_remote rem, *list = NULL;
    size_t n = 0;
    memset(&rem, 0, sizeof rem);
    int add = strcmp(a.sub, "add") == 0, ls = strcmp(a.sub, "ls") == 0;
    if (add && (e = remote_add_args(&a, &rem)) >= 0)
        return e;
    if ((rc = store_open_flags(r, ls ? FKS_OPEN_READONLY : 0)) != 0)
        return fail(rc);
    if (add && (rc = fks_remote_add(r->s, &rem)) == 0)
        rc = fks_remote_get(&rem, r->s, rem.name);
    else if (!add)
        rc = ls ? fks_remote_list(&list, &n, r->s) : fks_remote_rm(r->s, a.args[0]);
    if ((rc = store_done(r, rc)) != 0)
        return fail(rc);
    if (ls && r->json) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(arr, remote_json(&list[i]));
        print_json(arr);
    } else if (ls) {
        remote_ls_text(list, n);
    } else if (r->json) {
        print_json(add ? remote_json(&rem) : json_object_new_string(a.args[0]));
    } else if (!g_quiet) {
        printf("%s remote %s\n", add ? "added" : "removed", esc(add ? rem.name : a.args[0]));
    }
    free(list);
    return EX_OK;
}

static json_object *remote_gc_json(const fks_remote_gc_opts *go, const fks_remote_gc_stats *st)
{
    json_object *j = json_object_new_object();
    jints(j, (const struct jfield[]){{"manifests", (int64_t)st->manifests}, {"indexes", (int64_t)st->indexes},
          {"packs", (int64_t)st->packs}, {"packs_referenced", (int64_t)st->packs_referenced},
          {"packs_marked", (int64_t)st->packs_marked}, {"packs_deleted", (int64_t)st->packs_deleted},
          {"bytes_deleted", (int64_t)st->bytes_deleted}, {"indexes_merged", (int64_t)st->indexes_merged},
          {"index_entries", (int64_t)st->index_entries}, {"marks_deleted", (int64_t)st->marks_deleted},
          {"interval_ms", (int64_t)st->interval_ms}, {"min_age_ms", (int64_t)st->min_age_ms},
          {"lag_ms", (int64_t)st->lag_ms}, {"server_ms", (int64_t)st->server_ms}, {"requests", (int64_t)st->requests},
          {NULL, 0}});
    jbool(j, "dry_run", go->dry_run);
    jnum(j, "seconds", st->seconds);
    return j;
}

static void remote_gc_text(const fks_remote_gc_opts *go, const fks_remote_gc_stats *st)
{
    char b[32];
    human(b, sizeof b, (double)st->bytes_deleted);
    printf("remote gc%s: %llu manifests, %llu packs (%llu referenced); %s %llu packs (%s), %llu marked "
           "for a later run; %llu index objects merged; %.1fs\n", go->dry_run ? " (dry run)" : "",
           (unsigned long long)st->manifests, (unsigned long long)st->packs,
           (unsigned long long)st->packs_referenced, go->dry_run ? "would delete" : "deleted",
           (unsigned long long)st->packs_deleted, b, (unsigned long long)st->packs_marked,
           (unsigned long long)st->indexes_merged, st->seconds);
}

static int remote_gc(struct run *r, const char *remote, const fks_remote_gc_opts *go)
{
    fks_remote_gc_stats st;
    int rc = store_done(r, fks_remote_gc(&st, r->s, remote, go));
    if (rc) {
        if (rc == FKS_ELOCKED)
            fprintf(stderr, "forkctl: remote gc --break-lock removes the lock of a gc that was killed\n");
        return fail(rc);
    }
    if (r->json)
        print_json(remote_gc_json(go, &st));
    else if (!g_quiet)
        remote_gc_text(go, &st);
    return EX_OK;
}

static int remote_prune(struct run *r, const char *remote, const fks_prune_opts *po)
{
    fks_prune_result res;
    size_t anc = 0;
    int rc = store_done(r, fks_remote_prune(&res, &anc, r->s, remote, po));
    if (rc) {
        fks_prune_result_clear(&res);
        return fail(rc);
    }
    if (r->json) {
        print_json(prune_json(po, &res, (int64_t)anc));
    } else if (!g_quiet) {
        prune_removed_text(po, &res);
        printf("remote prune: %zu removed, %zu kept (%zu as ancestors of kept ones)%s\n", res.n_removed,
               res.n_kept, anc, po->dry_run ? " (dry run)" : "; remote gc frees their pages");
    }
    fks_prune_result_clear(&res);
    return EX_OK;
}

static json_object *remote_verify_json(const fks_remote_verify_report *vr)
{
    json_object *j = json_object_new_object();
    jbool(j, "ok", vr->n_problems == 0);
    jints(j, (const struct jfield[]){{"manifests", (int64_t)vr->manifests}, {"indexes", (int64_t)vr->indexes},
          {"packs", (int64_t)vr->packs}, {"packs_checked", (int64_t)vr->packs_checked},
          {"pages_checked", (int64_t)vr->pages_checked}, {"pages_reachable", (int64_t)vr->pages_reachable},
          {"bad_manifests", (int64_t)vr->bad_manifests}, {"bad_indexes", (int64_t)vr->bad_indexes},
          {"bad_packs", (int64_t)vr->bad_packs}, {"bad_pages", (int64_t)vr->bad_pages},
          {"unreachable_pages", (int64_t)vr->unreachable_pages}, {"bytes_down", (int64_t)vr->bytes_down},
          {"requests", (int64_t)vr->requests}, {NULL, 0}});
    json_object_object_add(j, "problems", json_strings(vr->problems, vr->n_problems));
    json_object_object_add(j, "affected_snapshots", json_strings(vr->affected, vr->n_affected));
    jnum(j, "seconds", vr->seconds);
    return j;
}

static void remote_verify_text(const fks_remote_verify_report *vr)
{
    int bad = vr->n_problems > 0;
    put_problems("remote verify", vr->problems, vr->n_problems, NULL, 0, vr->affected, vr->n_affected);
    if (!g_quiet || bad)
        printf("remote verify: %s: %llu manifests, %llu index objects, %llu of %llu packs read, %llu pages "
               "checked, %llu pages of manifests reachable, %.1fs\n", bad ? "DAMAGED" : "ok",
               (unsigned long long)vr->manifests, (unsigned long long)vr->indexes,
               (unsigned long long)vr->packs_checked, (unsigned long long)vr->packs,
               (unsigned long long)vr->pages_checked, (unsigned long long)vr->pages_reachable, vr->seconds);
}

static int remote_verify(struct run *r, const char *remote, double sample)
{
    fks_remote_verify_report *vr = NULL;
    fks_progress_fn fn = progress(r, "remote verify");
    int rc = store_done(r, fks_remote_verify(&vr, r->s, remote, sample, fn, &r->p));
    if (rc)
        return fail(rc);
    int bad = vr->n_problems > 0;
    if (r->json)
        print_json(remote_verify_json(vr));
    else
        remote_verify_text(vr);
    fks_remote_verify_free(vr);
    return bad ? EX_CORRUPT : EX_OK;
}

/* The options of remote gc, prune and verify. */
struct maint_args {
    const char *sub, *remote;
    int gc, prune;
    fks_remote_gc_opts go;
    fks_prune_opts po;
    const char *ktags[64];
    double sample;
};

enum { O_REMOTE = 2000, O_INTERVAL, O_MINAGE, O_LAG, O_BREAK, O_SAMPLE };

/* One option of remote gc, prune or verify: -1 to go on, else the usage exit code. */
static int maint_opt(struct maint_args *a, int c)
{
    double v = 0;
    int e;
    int gc_only = c == O_INTERVAL || c == O_MINAGE || c == O_LAG || c == O_BREAK;
    int prune_only = c == 'l' || c == 'w' || c == 't';
    if ((gc_only && !a->gc) || (prune_only && !a->prune) || (c == 'n' && !a->gc && !a->prune) ||
        (c == O_SAMPLE && (a->gc || a->prune)))
        return usage_err("remote", "remote %s does not take %s", a->sub, argv_opt());
    switch (c) {
    case O_REMOTE: a->remote = optarg; break;
    case O_INTERVAL: case O_MINAGE: case O_LAG:
        if ((e = duration_arg("remote", argv_opt(), optarg, &v)) >= 0)
            return e;
        *(c == O_INTERVAL ? &a->go.interval_ms : c == O_MINAGE ? &a->go.min_age_ms : &a->go.lag_ms) =
            (int64_t)(v * 1000) > 0 ? (int64_t)(v * 1000) : 1;
        break;
    case O_BREAK: a->go.break_lock = 1; break;
    case 'n': a->go.dry_run = a->po.dry_run = 1; break;
    case O_SAMPLE: return sample_arg("remote", optarg, "", &a->sample);
    default: return keep_opt("remote", &a->po, a->ktags, c);
    }
    return -1;
}

/* remote gc | prune | verify: r->argv[1] is the subcommand. */
static int remote_maint(struct run *r)
{
    static const struct option o[] = {COMMON_OPTS, KEEP_OPTS, {"remote", required_argument, NULL, O_REMOTE},
        {"interval", required_argument, NULL, O_INTERVAL}, {"min-age", required_argument, NULL, O_MINAGE},
        {"lag", required_argument, NULL, O_LAG}, {"break-lock", no_argument, NULL, O_BREAK},
        {"sample", required_argument, NULL, O_SAMPLE}, {0}};
    struct maint_args a = {.sub = r->argv[1], .sample = 100};
    int c, e, rc;
    a.gc = strcmp(a.sub, "gc") == 0;
    a.prune = strcmp(a.sub, "prune") == 0;
    a.po.keep_tags = a.ktags;
    r->argc--;                 /* getopt takes the subcommand for the name */
    r->argv++;
    while ((c = next_opt(r, o)) != 0)
        if ((e = maint_opt(&a, c)) >= 0)
            return e;
    if (r->exit >= 0)
        return r->exit;
    if (r->nargs)
        return usage_err("remote", "remote %s: unexpected argument '%s'", a.sub, r->args[0]);
    if (a.prune && keep_none(&a.po))
        return usage_err("remote", "%s", "remote prune: give at least one rule: --keep-last, --keep-within or "
                         "--keep-tag");
    if ((rc = store_open_flags(r, FKS_OPEN_READONLY)) != 0)
        return fail(rc);
    if (a.gc)
        return remote_gc(r, a.remote, &a.go);
    if (a.prune)
        return remote_prune(r, a.remote, &a.po);
    return remote_verify(r, a.remote, a.sample);
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

static json_object *push_pull_json(int push, int rc, const fks_remote_stats *st)
{
    json_object *j = json_object_new_object();
    jbool(j, "ok", rc == 0);
    jints(j, (const struct jfield[]){{"snapshots", (int64_t)st->snapshots}, {"skipped", (int64_t)st->skipped},
          {"pages", (int64_t)st->pages}, {push ? "pages_sent" : "pages_fetched", (int64_t)st->pages_sent},
          {push ? "pages_on_remote" : "pages_local", (int64_t)st->pages_dedup},
          {push ? "packs_sent" : "packs_fetched", (int64_t)st->packs}, {NULL, 0}});
    if (push)
        jint(j, "packs_reused", (int64_t)st->packs_reused);
    jints(j, (const struct jfield[]){{"page_bytes", (int64_t)st->page_bytes}, {"bytes_up", (int64_t)st->bytes_up},
          {"bytes_down", (int64_t)st->bytes_down}, {"requests", (int64_t)st->requests},
          {"retries", (int64_t)st->retries}, {NULL, 0}});
    if (push) {
        jint(j, "restarts", (int64_t)st->restarts);
        jint(j, "working_sets", (int64_t)st->working_sets);
    }
    jnum(j, "seconds", st->seconds);
    return j;
}

static void push_pull_text(int push, const fks_remote_stats *st)
{
    char b[32];
    human(b, sizeof b, (double)(push ? st->bytes_up : st->bytes_down));
    printf("%s: %llu snapshots %s, %llu already there; %llu of %llu pages %s (%llu packs), %s in %llu "
           "requests, %.1fs\n", push ? "push" : "pull", (unsigned long long)st->snapshots, push ? "pushed" : "pulled",
           (unsigned long long)st->skipped, (unsigned long long)st->pages_sent, (unsigned long long)st->pages,
           push ? "sent" : "fetched", (unsigned long long)st->packs, b, (unsigned long long)st->requests,
           st->seconds);
}

static int push_pull(struct run *r, int push)
{
    static const struct option o[] = {COMMON_OPTS, {"remote", required_argument, NULL, 'r'}, {0}};
    const char *remote = NULL;
    int rc;
    while (next_opt(r, o) != 0)
        remote = optarg;
    if (r->exit >= 0)
        return r->exit;
    if ((rc = store_open(r)) != 0)
        return fail(rc);
    fks_progress_fn fn = progress(r, push ? "push" : "pull");
    fks_remote_stats st;
    memset(&st, 0, sizeof st);
    const char *const *tags = (const char *const *)r->args;
    size_t n = (size_t)r->nargs;
    rc = store_done(r, push ? fks_push(&st, r->s, remote, tags, n, fn, &r->p)
                            : fks_pull(&st, r->s, remote, tags, n, fn, &r->p));
    int ret = rc ? fail(rc) : EX_OK;
    if (r->json)
        print_json(push_pull_json(push, rc, &st));
    else if (rc == 0 && !g_quiet)
        push_pull_text(push, &st);
    return ret;
}

static int cmd_push(struct run *r)
{
    return push_pull(r, 1);
}

static int cmd_pull(struct run *r)
{
    return push_pull(r, 0);
}

static int cmd_help(struct run *r);

static const char H_HELP[] =
    "usage: forkctl help [COMMAND]\n"
    "Lists the commands, or prints COMMAND's help (as COMMAND --help does).\n";

/* ---- dispatch ---- */

#define ONE_TAG 1, 1, "give exactly one TAG"
#define NO_ARGS 0, 0, NULL

/* RUN(call, type): run by run_cmd with call and a struct type; FN(fn): its
** own function. */
#define RUN(call, type) NULL, &(call), sizeof(struct type)
#define FN(fn) fn, NULL, 0

static const struct command commands[] = {
    {"init", H_INIT, "create a store", NO_STORE, 0, 1, NULL, FN(cmd_init)},
    {"ingest", H_INGEST, "store a snapshot (memory, vmstate, other files)", STORE_RW, NO_ARGS,
     RUN(INGEST_CALL, ingest)},
    {"restore", H_RESTORE, "write a snapshot's files back, or load it into a VMM", STORE_RO, ONE_TAG, FN(cmd_restore)},
    {"branch", H_BRANCH, "snapshot a running Firecracker VM into the store", STORE_RW, NO_ARGS, FN(cmd_branch)},
    {"serve-pages", H_SERVE, "serve a snapshot's memory to VMMs through userfaultfd", STORE_RW, ONE_TAG,
     FN(cmd_serve)},
    {"images", H_IMAGES, "list snapshots", STORE_RO, NO_ARGS, RUN(IMAGES_CALL, snaps)},
    {"log", H_LOG, "show the chain from the root to a snapshot", STORE_RO, ONE_TAG, RUN(LOG_CALL, snaps)},
    {"info", H_INFO, "show one snapshot: lineage, files, sizes, timings", STORE_RO, ONE_TAG, RUN(INFO_CALL, info)},
    {"diff", H_DIFF, "show which pages differ between two snapshots", STORE_RO, 2, 2, "give two TAGs",
     RUN(DIFF_CALL, diff)},
    {"tag", H_TAG, "rename a snapshot", STORE_RW, 2, 2, "give OLD and NEW", RUN(TAG_CALL, tag)},
    {"rmi", H_RMI, "remove snapshots (children stay restorable)", STORE_RW, 1, MANY, "give at least one TAG",
     FN(cmd_rmi)},
    {"sql", H_SQL, "run a read-only SQL query on the catalog", STORE_RO, 0, -1, NULL, FN(cmd_sql)},
    {"gc", H_GC, "reclaim space no snapshot uses", STORE_RW, NO_ARGS, RUN(GC_CALL, gc)},
    {"compact", H_COMPACT, "recompress stored blocks at a higher zstd level", STORE_RW, NO_ARGS,
     RUN(COMPACT_CALL, compact)},
    {"verify", H_VERIFY, "check every page, chunk and map", STORE_RO, NO_ARGS, RUN(VERIFY_CALL, verify)},
    {"recover", H_RECOVER, "rebuild a lost or damaged catalog from chunks and manifests", NO_STORE, NO_ARGS,
     FN(cmd_recover)},
    {"stats", H_STATS, "store-wide sizes and ratios (also for Prometheus)", STORE_RO, NO_ARGS, RUN(STATS_CALL, stats)},
    {"prune", H_PRUNE, "remove snapshots by retention rules", STORE_RW, NO_ARGS, FN(cmd_prune)},
    {"import-forkd", H_IMPORT, "import a forkd snapshot directory tree", STORE_RW, 1, 1,
     "give exactly one forkd snapshot root DIR", FN(cmd_import)},
    {"export", H_EXPORT, "write a snapshot as a forkd snapshot directory", STORE_RO, ONE_TAG, FN(cmd_export)},
    {"remote", H_REMOTE, "add, list or remove S3-compatible remotes", STORE_RW, 0, -1, NULL, FN(cmd_remote)},
    {"push", H_PUSH, "upload snapshots to a remote (only pages it lacks)", STORE_RW, 1, MANY, "give at least one TAG",
     FN(cmd_push)},
    {"pull", H_PULL, "download snapshots from a remote (only pages the store lacks)", STORE_RW, 1, MANY,
     "give at least one TAG", FN(cmd_pull)},
    {"help", H_HELP, "this text, or `forkctl help COMMAND`", NO_STORE, 0, -1, NULL, FN(cmd_help)},
};
#undef RUN
#undef FN
#define NCMD (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t k = 0; k < NCMD; k++)
        if (strcmp(commands[k].name, name) == 0)
            return &commands[k];
    return NULL;
}

static void main_usage(FILE *f)
{
    fprintf(f, "usage: forkctl [--store DIR] [--quiet] COMMAND [ARGS]\n\n"
               "forkstore %s: a content-addressed store for microVM snapshots.\n\nCommands:\n",
            FKS_VERSION_STRING);
    for (size_t i = 0; i < NCMD; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nEvery command takes --store DIR, --quiet (-q) and --help (-h); --json prints\n"
               "JSON instead of text. The store is --store DIR, else $FORKSTORE_DIR, else\n"
               "$XDG_DATA_HOME/forkstore, else ~/.local/share/forkstore. See forkctl(1).\n"
               "Exit codes: 0 ok, 1 error, 2 usage or invalid input, 3 not found,\n"
               "4 store locked, 5 damaged data found, 7 sql stopped at a limit.\n");
}

/* help [COMMAND]: its operand is read as it is, not as an option. */
static int cmd_help(struct run *r)
{
    if (r->argc < 2) {
        main_usage(stdout);
        return EX_OK;
    }
    const struct command *k = find_command(r->argv[1]);
    if (!k) {
        fprintf(stderr, "forkctl: no command '%s'\n", r->argv[1]);
        return EX_USAGE;
    }
    fputs(k->help, stdout);
    return EX_OK;
}

int main(int argc, char **argv)
{
    static const struct option o[] = {{"store", required_argument, NULL, OPT_STORE},
        {"quiet", no_argument, NULL, OPT_QUIET}, {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION}, {0}};
    int c, e, at = 1;
    opterr = 0;
    /* "+": the options before the command's name only; none is moved, so
    ** argv[at] is the one getopt reads */
    while ((c = getopt_long(argc, argv, "+" SHORT_OPTS, o, NULL)) != -1) {
        if ((e = common_opt(NULL, c, argv[at])) >= 0)
            return e;
        at = optind;
    }
    if (optind >= argc) {
        main_usage(stderr);
        return EX_USAGE;
    }
    const struct command *k = find_command(argv[optind]);
    if (!k) {
        fprintf(stderr, "forkctl: unknown command '%s'\n", argv[optind]);
        main_usage(stderr);
        return EX_USAGE;
    }
    struct run r = {.cmd = k, .argc = argc - optind, .argv = argv + optind, .exit = -1};
    g_cmd = k;
    optind = 0;                /* the command's own getopt starts afresh at its argv[1] */
    if (k->fn)
        return k->fn(&r);
    void *a = calloc(1, k->size);
    if (!a) {
        fprintf(stderr, "forkctl: out of memory\n");
        return EX_ERR;
    }
    e = run_cmd(&r, k->call, a);
    free(a);
    return e;
}
