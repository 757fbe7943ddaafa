/*
** forkctl.c: the command line of forkstore.
**
** It uses only the public header, forkstore.h. Each command is a function
** cmd_<name>(argc, argv) returning an exit code:
**
**   0 ok, 1 error, 2 usage or invalid input, 3 not found,
**   4 store locked, 5 damaged data found.
**
** Human output goes to stdout, errors to stderr as "forkctl: <message>".
** --json prints json-c objects instead of tables. A progress line is drawn
** on stderr only when stderr is a terminal and --quiet is not given.
*/
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "forkstore.h"

#define EX_OK 0
#define EX_ERR 1
#define EX_USAGE 2
#define EX_NOTFOUND 3
#define EX_LOCKED 4
#define EX_CORRUPT 5

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
    default: return EX_ERR;
    }
}

static int fail(int rc)
{
    fprintf(stderr, "forkctl: %s\n", fks_errmsg());
    return exit_code(rc);
}

__attribute__((format(printf, 2, 3)))
static int usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "forkctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
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

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
    struct progress *p = arg;
    double el = now_s() - p->start;
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

/* ---- commands ---- */

static const char H_INIT[] =
    "usage: forkctl init [DIR] [--chunk-size BYTES] [--json]\n"
    "Creates a new store in DIR (default: --store, $FORKSTORE_DIR, else\n"
    "$XDG_DATA_HOME/forkstore). Chunk files are preallocated to --chunk-size\n"
    "bytes (default 16 MiB; suffixes K, M, G).\n";

/* A whole argument as a number: 0, or -1 if anything else is in it. */
static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end ? -1 : 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': v *= 1024; end++; break;
    case 'm': case 'M': v *= 1024 * 1024; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    if (*end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"chunk-size", required_argument, NULL, 'c'}, {0}};
    uint64_t cs = 0;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'c') {
            if (parse_size(optarg, &cs))
                return usage_err("init", "bad --chunk-size '%s'", optarg);
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
    "       forkctl restore TAG --api-sock SOCK [--staging DIR] [--timeout MS] [--json]\n"
    "Writes TAG's files into DIR: memory.bin (zero pages as holes), vmstate and\n"
    "every other stored file, each byte-identical to what was ingested. Every\n"
    "page is checked against its hash. Existing files are not replaced without\n"
    "--force. All files are placed or none: a failure puts replaced files back.\n"
    "--sync fsyncs the files before they are renamed into place.\n"
    "With --api-sock, restores into a new private directory under --staging\n"
    "(default /dev/shm) and loads it into the fresh Firecracker VMM listening on\n"
    "SOCK (PUT /snapshot/load, resumed); prints the directory, which the VM's\n"
    "memory is mapped from: remove it once that VM is gone.\n";

/* Parses a positive number of milliseconds for --timeout. */
static int parse_ms(const char *cmd, const char *arg, long *out)
{
    double v;
    if (parse_number(arg, &v) || !(v >= 1 && v <= 3600000) || v != (double)(long)v)
        return usage_err(cmd, "--timeout takes milliseconds (1 .. 3600000), got '%s'", arg);
    *out = (long)v;
    return -1;
}

static int restore_load(const char *tag, const char *sock, const char *staging, long timeout_ms, int json)
{
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    char dir[4096];
    double t0 = now_s();
    rc = fks_load(dir, sizeof dir, s, tag, sock, staging, timeout_ms);
    fks_close(s);
    if (rc)
        return fail(rc);
    double ms = (now_s() - t0) * 1000;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(tag));
        json_object_object_add(j, "api_sock", json_object_new_string(sock));
        json_object_object_add(j, "staging", json_object_new_string(dir));
        json_object_object_add(j, "load_ms", json_object_new_double(ms));
        print_json(j);
    } else if (!g_quiet) {
        printf("%s: loaded into the VMM at %s in %.0f ms; its files are in %s\n", tag, sock, ms, dir);
    }
    return EX_OK;
}

static int cmd_restore(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'}, {"sync", no_argument, NULL, 'S'},
        {"api-sock", required_argument, NULL, 'A'}, {"staging", required_argument, NULL, 'G'},
        {"timeout", required_argument, NULL, 'T'}, {0}};
    const char *out = NULL, *sock = NULL, *staging = NULL;
    long timeout_ms = 0;
    int flags = 0, json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'f': flags |= FKS_RESTORE_FORCE; break;
        case 'S': flags |= FKS_RESTORE_SYNC; break;
        case 'A': sock = optarg; break;
        case 'G': staging = optarg; break;
        case 'T':
            if ((r = parse_ms("restore", optarg, &timeout_ms)) >= 0)
                return r;
            break;
        default:
            if ((r = common_opt(c, "restore", H_RESTORE, &json)) >= 0)
                return r;
        }
    }
    if (optind + 1 != argc)
        return usage_err("restore", "%s", "give exactly one TAG");
    if (sock && out)
        return usage_err("restore", "%s", "give --out DIR or --api-sock SOCK, not both");
    if (sock)
        return restore_load(argv[optind], sock, staging, timeout_ms, json);
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

static const char H_BRANCH[] =
    "usage: forkctl branch --api-sock SOCK --tag TAG [--parent P] [--full]\n"
    "                      [--staging DIR] [--timeout MS] [--json] [--quiet]\n"
    "Branches the running Firecracker VM behind SOCK into the store: pause,\n"
    "snapshot into memory-backed staging (a private directory under DIR,\n"
    "default /dev/shm), resume, then ingest the staged files and remove them.\n"
    "With --parent (the VM's previous snapshot in the store) a Diff snapshot is\n"
    "taken, else a Full one; --full forces Full. The VM is resumed whatever\n"
    "fails. Prints and records pause_ms (pause sent to resume acknowledged),\n"
    "snapshot_ms, ingest_ms and the diff's physical bytes (see forkctl info).\n"
    "--timeout bounds each API call (default 10000 ms).\n";

static int cmd_branch(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS,
        {"api-sock", required_argument, NULL, 'A'}, {"tag", required_argument, NULL, 't'},
        {"parent", required_argument, NULL, 'p'}, {"full", no_argument, NULL, 'F'},
        {"staging", required_argument, NULL, 'G'}, {"timeout", required_argument, NULL, 'T'}, {0}};
    fks_branch_opts bo = {0};
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
        default:
            if ((r = common_opt(c, "branch", H_BRANCH, &json)) >= 0)
                return r;
        }
    }
    if (optind < argc)
        return usage_err("branch", "unexpected argument '%s'", argv[optind]);
    if (!bo.api_sock)
        return usage_err("branch", "%s", "--api-sock SOCK is required");
    if (!bo.tag)
        return usage_err("branch", "%s", "--tag is required");
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
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(bo.tag));
        json_object_object_add(j, "type", json_object_new_string(br.diff ? "Diff" : "Full"));
        json_object_object_add(j, "pause_ms", json_object_new_double(br.pause_s * 1000));
        json_object_object_add(j, "snapshot_ms", json_object_new_double(br.snapshot_s * 1000));
        json_object_object_add(j, "ingest_ms", json_object_new_double(br.ingest_s * 1000));
        json_object_object_add(j, "diff_bytes", json_object_new_int64(br.diff_bytes));
        json_object_object_add(j, "new_pages", json_object_new_int64((int64_t)br.ingest.new_pages));
        json_object_object_add(j, "stored_bytes", json_object_new_int64((int64_t)br.ingest.stored_bytes));
        print_json(j);
    } else if (!g_quiet) {
        char a[32];
        human(a, sizeof a, (double)br.diff_bytes);
        printf("%s: %s snapshot, paused %.1f ms (snapshot %.1f ms), %s staged, ingested in %.0f ms "
               "(%llu new pages)\n", bo.tag, br.diff ? "Diff" : "Full", br.pause_s * 1000,
               br.snapshot_s * 1000, a, br.ingest_s * 1000, (unsigned long long)br.ingest.new_pages);
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
            printf("%-24s %-24s %10s %10s %10s %-10s %s\n", v[i].tag, v[i].parent[0] ? v[i].parent : "-",
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
                   i ? "└─ " : "", v[i].tag, v[i].depth, sz, st, ag);
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
    for (int i = optind; i < argc; i++) {
        rc = fks_rmi(s, argv[i], cascade);
        if (rc)
            ret = fail(rc);
        else if (json)
            json_object_array_add(removed, json_object_new_string(argv[i]));
        else if (!g_quiet)
            printf("removed %s%s\n", argv[i], cascade ? " and its descendants" : "");
    }
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
    "usage: forkctl sql \"SELECT ...\" [--json | --csv]\n"
    "Runs one read-only SQL statement on the catalog (the connection cannot\n"
    "write) and prints an aligned table, JSON or CSV. See the README for the\n"
    "tables, views and example queries.\n";

struct sqlout {
    int mode;            /* 0 table, 1 json, 2 csv */
    char **cells;        /* table mode: buffered to align columns */
    size_t n, alloc;
    int ncol;
    json_object *arr;
};

static int sql_row(void *arg, int ncol, const char *const *names, const char *const *vals, const int *types)
{
    struct sqlout *o = arg;
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
        json_object_array_add(o->arr, j);
        return 0;
    }
    if (o->mode == 2) {
        if (o->n++ == 0)
            for (int i = 0; i < ncol; i++)
                printf("%s%s", i ? "," : "", names[i]);
        if (o->n == 1)
            putchar('\n');
        for (int i = 0; i < ncol; i++) {
            const char *v = vals[i] ? vals[i] : "";
            int q = strpbrk(v, ",\"\n") != NULL;
            printf("%s%s", i ? "," : "", q ? "\"" : "");
            for (; *v; v++)
                printf(*v == '"' ? "\"\"" : "%c", *v);
            if (q)
                putchar('"');
        }
        putchar('\n');
        return 0;
    }
    if (o->n == 0) {
        o->ncol = ncol;
        for (int i = 0; i < ncol; i++) {
            if (o->n == o->alloc) {
                o->alloc = o->alloc ? o->alloc * 2 : 64;
                o->cells = realloc(o->cells, o->alloc * sizeof *o->cells);
            }
            o->cells[o->n++] = strdup(names[i]);
        }
    }
    for (int i = 0; i < ncol; i++) {
        if (o->n == o->alloc) {
            o->alloc = o->alloc * 2;
            o->cells = realloc(o->cells, o->alloc * sizeof *o->cells);
        }
        o->cells[o->n++] = strdup(vals[i] ? vals[i] : "NULL");
    }
    return 0;
}

static int cmd_sql(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"csv", no_argument, NULL, 'c'}, {0}};
    struct sqlout out = {0};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'c')
            out.mode = 2;
        else if ((r = common_opt(c, "sql", H_SQL, &json)) >= 0)
            return r;
    }
    if (json)
        out.mode = 1;
    if (optind + 1 != argc)
        return usage_err("sql", "%s", "give exactly one SQL statement (quote it)");
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    if (out.mode == 1)
        out.arr = json_object_new_array();
    rc = fks_sql(s, argv[optind], sql_row, &out);
    fks_close(s);
    if (rc) {
        json_object_put(out.arr);
        return fail(rc);
    }
    if (out.mode == 1) {
        print_json(out.arr);
    } else if (out.mode == 0 && out.ncol > 0) {
        size_t rows = out.n / (size_t)out.ncol;
        int *w = calloc((size_t)out.ncol, sizeof *w);
        for (size_t i = 0; i < out.n; i++) {
            int l = (int)strlen(out.cells[i]);
            if (l > w[i % (size_t)out.ncol])
                w[i % (size_t)out.ncol] = l;
        }
        for (size_t rw = 0; rw < rows; rw++) {
            for (int k = 0; k < out.ncol; k++)
                printf("%s%-*s", k ? "  " : "", k == out.ncol - 1 ? 0 : w[k], out.cells[rw * (size_t)out.ncol + (size_t)k]);
            putchar('\n');
        }
        free(w);
    }
    for (size_t i = 0; i < out.n && out.mode == 0; i++)
        free(out.cells[i]);
    free(out.cells);
    return EX_OK;
}

static const char H_GC[] =
    "usage: forkctl gc [--dry-run] [--json] [--max-duration SECONDS] [--threshold FRACTION]\n"
    "Reclaims space: removes pages no snapshot references, compacts chunk files\n"
    "less than FRACTION live (default 0.7), deletes files left by crashes, gives\n"
    "free catalog pages back and truncates the WAL. Safe while ingests and\n"
    "restores run. A second gc exits at once with code 4 (store locked).\n";

static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    switch (*end) {
    case 0: case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    case 'w': v *= 7 * 86400; break;
    case 'y': v *= 365 * 86400; break;
    default: return -1;
    }
    if (*end && end[1])
        return -1;
    *out = v;
    return 0;
}

static int cmd_gc(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"dry-run", no_argument, NULL, 'n'},
        {"max-duration", required_argument, NULL, 'd'}, {"threshold", required_argument, NULL, 't'}, {0}};
    fks_gc_opts go = {0};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        switch (c) {
        case 'n': go.dry_run = 1; break;
        case 'd':
            if (parse_duration(optarg, &go.max_seconds))
                return usage_err("gc", "bad --max-duration '%s' (e.g. 90s, 10m, 1h)", optarg);
            break;
        case 't':
            if (parse_number(optarg, &go.live_threshold) || !(go.live_threshold > 0 && go.live_threshold <= 1))
                return usage_err("gc", "--threshold takes a fraction in (0, 1], got '%s'", optarg);
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
    rc = fks_gc(&rep, s, &go);
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
            if (parse_number(optarg, &sample) || !(sample > 0 && sample <= 100))
                return usage_err("verify", "--sample takes a percentage in (0, 100], got '%s'", optarg);
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
        json_object *j = json_object_new_object(), *pr = json_object_new_array(), *af = json_object_new_array();
        json_object_object_add(j, "ok", json_object_new_boolean(!bad));
        json_object_object_add(j, "chunks_checked", json_object_new_int64((int64_t)v->chunks_checked));
        json_object_object_add(j, "pages_checked", json_object_new_int64((int64_t)v->pages_checked));
        json_object_object_add(j, "runs_checked", json_object_new_int64((int64_t)v->runs_checked));
        json_object_object_add(j, "bad_chunks", json_object_new_int64((int64_t)v->bad_chunks));
        json_object_object_add(j, "bad_pages", json_object_new_int64((int64_t)v->bad_pages));
        json_object_object_add(j, "missing_pages", json_object_new_int64((int64_t)v->missing_pages));
        json_object_object_add(j, "bad_runs", json_object_new_int64((int64_t)v->bad_runs));
        for (size_t i = 0; i < v->n_problems; i++)
            json_object_array_add(pr, json_object_new_string(v->problems[i]));
        for (size_t i = 0; i < v->n_affected; i++)
            json_object_array_add(af, json_object_new_string(v->affected[i]));
        json_object_object_add(j, "problems", pr);
        json_object_object_add(j, "affected_snapshots", af);
        json_object_object_add(j, "seconds", json_object_new_double(v->seconds));
        print_json(j);
    } else {
        for (size_t i = 0; i < v->n_problems; i++)
            fprintf(stderr, "forkctl: verify: %s\n", v->problems[i]);
        if (v->n_affected) {
            fprintf(stderr, "forkctl: verify: snapshots affected:");
            for (size_t i = 0; i < v->n_affected; i++)
                fprintf(stderr, " %s", v->affected[i]);
            fputc('\n', stderr);
        }
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
        json_object *j = json_object_new_object(), *lo = json_object_new_array(), *pr = json_object_new_array();
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
        for (size_t i = 0; i < v->n_lost; i++)
            json_object_array_add(lo, json_object_new_string(v->lost[i]));
        for (size_t i = 0; i < v->n_problems; i++)
            json_object_array_add(pr, json_object_new_string(v->problems[i]));
        json_object_object_add(j, "lost", lo);
        json_object_object_add(j, "problems", pr);
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
    "usage: forkctl import-forkd DIR [--prefix P] [--json]\n"
    "Imports a forkd snapshot root: DIR/<tag>/snapshot.json, vmstate, memory.bin\n"
    "or a sparse diff.bin, and rootfs.ext4 when present. Parents are imported\n"
    "before children with lineage kept, tags prefixed with P. Every\n"
    "parent_content_hash is checked first; a mismatch refuses the import.\n"
    "Only files inside each snapshot directory are read.\n";

static int cmd_import(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"prefix", required_argument, NULL, 'p'}, {0}};
    const char *prefix = NULL;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'p')
            prefix = optarg;
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
    fks_progress_fn fn = progress_for(&p, "import");
    size_t n = 0;
    rc = fks_import_forkd(&n, s, argv[optind], prefix, fn, &p);
    progress_end(&p);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "imported", json_object_new_int64((int64_t)n));
        print_json(j);
    } else if (!g_quiet) {
        printf("imported %zu snapshot%s from %s\n", n, n == 1 ? "" : "s", argv[optind]);
    }
    return EX_OK;
}

static const char H_EXPORT[] =
    "usage: forkctl export TAG --forkd DIR [--json]\n"
    "Writes DIR/TAG/ as forkd lays a snapshot out: a full memory.bin, vmstate,\n"
    "rootfs.ext4 when stored, and snapshot.json with absolute paths.\n";

static int cmd_export(int argc, char **argv)
{
    static const struct option o[] = {COMMON_OPTS, {"forkd", required_argument, NULL, 'f'}, {0}};
    const char *out = NULL;
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1) {
        if (c == 'f')
            out = optarg;
        else if ((r = common_opt(c, "export", H_EXPORT, &json)) >= 0)
            return r;
    }
    if (optind + 1 != argc)
        return usage_err("export", "%s", "give exactly one TAG");
    if (!out)
        return usage_err("export", "%s", "--forkd DIR is required");
    fks_store *s = NULL;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    rc = fks_export_forkd(s, argv[optind], out);
    fks_close(s);
    if (rc)
        return fail(rc);
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "tag", json_object_new_string(argv[optind]));
        json_object_object_add(j, "forkd", json_object_new_string(out));
        print_json(j);
    } else if (!g_quiet) {
        printf("exported %s to %s/%s\n", argv[optind], out, argv[optind]);
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
            double v;
            if (parse_number(optarg, &v) || !(v >= 1 && v <= 1000000) || v != (double)(int)v)
                return usage_err("prune", "--keep-last takes a positive number, got '%s'", optarg);
            po.keep_last = (int)v;
            break;
        }
        case 'w':
            if (parse_duration(optarg, &within) || within <= 0)
                return usage_err("prune", "bad --keep-within '%s' (e.g. 2h, 7d, 4w)", optarg);
            po.keep_within_ms = (int64_t)(within * 1000);
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
    fks_close(s);
    if (rc) {
        int ex = fail(rc);
        if (res.n_removed)
            fprintf(stderr, "forkctl: prune removed %zu snapshots before the error\n", res.n_removed);
        fks_prune_result_free(&res);
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
            printf("%s %s\n", po.dry_run ? "would remove" : "removed", res.removed[i]);
        printf("prune%s: %zu removed, %zu kept\n", po.dry_run ? " (dry run)" : "", res.n_removed, res.n_kept);
    }
    fks_prune_result_free(&res);
    return EX_OK;
}

static const char H_INFO[] =
    "usage: forkctl info TAG [--json]\n"
    "Shows one snapshot: its chain from the root, parent and children, when it\n"
    "was made, its files, and its sizes: logical; non-zero (pages not all\n"
    "zero); shared with its parent (same page at the same place); unique (pages\n"
    "no other snapshot references) and their stored bytes, which `rmi` then\n"
    "`gc` would free; stored (what its ingest added). Snapshots taken by\n"
    "`forkctl branch` also show the pause, snapshot and ingest times.\n";

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
    static const struct option o[] = {COMMON_OPTS, {0}};
    int json = 0, c, r;
    while ((c = getopt_long(argc, argv, SHORT_OPTS, o, NULL)) != -1)
        if ((r = common_opt(c, "info", H_INFO, &json)) >= 0)
            return r;
    if (optind + 1 != argc)
        return usage_err("info", "%s", "give exactly one TAG");
    const char *tag = argv[optind];
    fks_store *s = NULL;
    fks_snapinfo in, *chain = NULL, *all = NULL;
    fks_snap_stats *st = NULL;
    size_t nchain = 0, nall = 0;
    int rc = open_store(&s, FKS_OPEN_READONLY);
    if (rc)
        return fail(rc);
    if ((rc = fks_get(&in, s, tag)) == 0 && (rc = fks_chain(&chain, &nchain, s, tag)) == 0 &&
        (rc = fks_list(&all, &nall, s)) == 0)
        rc = fks_snap_stats_get(&st, s, tag);
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
        for (size_t i = nall; i-- > 0;)
            if (strcmp(all[i].parent, in.tag) == 0)
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
        B("unique_pages", st->unique_pages);
        B("unique_bytes", st->unique_bytes);
        B("unique_stored_bytes", st->unique_stored_bytes);
        B("stored_bytes", st->stored_bytes);
#undef B
        for (size_t i = 0; i < st->n_artifacts; i++) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "name", json_object_new_string(st->artifacts[i].name));
            json_object_object_add(a, "size", json_object_new_int64((int64_t)st->artifacts[i].size));
            json_object_object_add(a, "nonzero_bytes", json_object_new_int64((int64_t)st->artifacts[i].nonzero_bytes));
            json_object_object_add(a, "runs", json_object_new_int64((int64_t)st->artifacts[i].runs));
            json_object_array_add(arts, a);
        }
        json_object_object_add(j, "artifacts", arts);
        json_object_object_add(j, "pause_ms", opt_int(in.pause_ms));
        json_object_object_add(j, "snapshot_ms", opt_int(in.snapshot_ms));
        json_object_object_add(j, "ingest_ms", opt_int(in.ingest_ms));
        json_object_object_add(j, "diff_bytes", opt_int(in.diff_bytes));
        print_json(j);
    } else {
        char b[64], w[96];
        int nkids = 0;
        printf("snapshot          %s\n", in.tag);
        printf("parent            %s\n", in.parent[0] ? in.parent : "- (a root)");
        printf("children         ");
        for (size_t i = nall; i-- > 0;)
            if (strcmp(all[i].parent, in.tag) == 0)
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
        H("unique", st->unique_bytes, "pages no other snapshot references");
        H("freed by rmi+gc", st->unique_stored_bytes, "at most: stored blocks holding those pages");
        H("stored", st->stored_bytes, "bytes its ingest added");
#undef H
        if (in.pause_ms >= 0 || in.snapshot_ms >= 0 || in.ingest_ms >= 0) {
            human(b, sizeof b, (double)(in.diff_bytes > 0 ? in.diff_bytes : 0));
            printf("branch timings    pause %lld ms, snapshot %lld ms, ingest %lld ms, diff file %s\n",
                   (long long)in.pause_ms, (long long)in.snapshot_ms, (long long)in.ingest_ms, b);
        } else {
            printf("branch timings    - (not taken by forkctl branch)\n");
        }
        printf("\n%-24s %11s %11s %8s\n", "FILE", "SIZE", "NON-ZERO", "RUNS");
        for (size_t i = 0; i < st->n_artifacts; i++) {
            char sz[32], nz[32];
            human(sz, sizeof sz, (double)st->artifacts[i].size);
            human(nz, sizeof nz, (double)st->artifacts[i].nonzero_bytes);
            printf("%-24s %11s %11s %8llu\n", st->artifacts[i].name, sz, nz,
                   (unsigned long long)st->artifacts[i].runs);
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
        prom(dir, "dedup_ratio", "Page references per distinct referenced page.", st.dedup_ratio, 0);
        prom(dir, "compression_ratio", "Page bytes per stored byte.", st.compression_ratio, 0);
        prom(dir, "zero_page_ratio", "Share of all file pages that are zero pages (never stored).",
             st.zero_page_share, 0);
    } else if (json) {
        json_object *j = json_object_new_object();
#define I(k) json_object_object_add(j, #k, json_object_new_int64((int64_t)st.k))
        I(snapshots); I(artifacts); I(runs); I(chunks); I(logical_bytes); I(logical_pages); I(page_refs);
        I(pages); I(referenced_pages); I(stored_bytes); I(reclaimable_bytes); I(chunk_used_bytes);
        I(chunk_disk_bytes); I(catalog_disk_bytes);
#undef I
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
    {"images", cmd_images, H_IMAGES, "list snapshots"},
    {"log", cmd_log, H_LOG, "show the chain from the root to a snapshot"},
    {"info", cmd_info, H_INFO, "show one snapshot: lineage, files, sizes, timings"},
    {"diff", cmd_diff, H_DIFF, "show which pages differ between two snapshots"},
    {"tag", cmd_tag, H_TAG, "rename a snapshot"},
    {"rmi", cmd_rmi, H_RMI, "remove snapshots (children stay restorable)"},
    {"sql", cmd_sql, H_SQL, "run a read-only SQL query on the catalog"},
    {"gc", cmd_gc, H_GC, "reclaim space no snapshot uses"},
    {"verify", cmd_verify, H_VERIFY, "check every page, chunk and map"},
    {"recover", cmd_recover, H_RECOVER, "rebuild a lost or damaged catalog from chunks and manifests"},
    {"stats", cmd_stats, H_STATS, "store-wide sizes and ratios (also for Prometheus)"},
    {"prune", cmd_prune, H_PRUNE, "remove snapshots by retention rules"},
    {"import-forkd", cmd_import, H_IMPORT, "import a forkd snapshot directory tree"},
    {"export", cmd_export, H_EXPORT, "write a snapshot as a forkd snapshot directory"},
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
               "4 store locked, 5 damaged data found.\n");
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
