/*
** linktest.c: an embedder of the installed shared library. Built by
** tests/shlib/run.sh with nothing but `pkg-config --cflags --libs
** forkstore` (no path into the source tree), it ingests the chain a
** forkgen directory holds (chain.tsv: NN, tag, parent; NN/memory.full for
** the root, NN/memory.diff for the others, NN/vmstate) and restores every
** snapshot into OUT/<tag>/; run.sh compares them byte for byte.
**
**   linktest STORE GENDIR OUT
*/
#include <forkstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, int rc)
{
    fprintf(stderr, "linktest: %s: %s (%s)\n", what, fks_errmsg(), fks_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: linktest STORE GENDIR OUT\n");
        return 2;
    }
    if (fks_version_number() != FKS_VERSION_NUMBER || strcmp(fks_version(), FKS_VERSION_STRING) != 0) {
        fprintf(stderr, "linktest: header %s (%d), library %s (%d)\n", FKS_VERSION_STRING,
                FKS_VERSION_NUMBER, fks_version(), fks_version_number());
        return 1;
    }
    int rc = fks_init(argv[1], 1 << 20);
    if (rc)
        return fail("init", rc);
    fks_store *s;
    if ((rc = fks_open(&s, argv[1], 0)) != 0)
        return fail("open", rc);

    char line[512], path[4096], vpath[4096];
    snprintf(path, sizeof path, "%s/chain.tsv", argv[2]);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char nn[16], tag[130], parent[130];
        if (line[0] == '#' || sscanf(line, "%15s %129s %129s", nn, tag, parent) != 3)
            continue;
        int root = strcmp(parent, "-") == 0;
        snprintf(path, sizeof path, "%s/%s/memory.%s", argv[2], nn, root ? "full" : "diff");
        snprintf(vpath, sizeof vpath, "%s/%s/vmstate", argv[2], nn);
        fks_artifact_in a[2] = {{"memory", path, !root}, {"vmstate", vpath, 0}};
        fks_ingest_opts o = {.tag = tag, .parent = root ? NULL : parent, .artifacts = a, .n_artifacts = 2};
        fks_ingest_stats st;
        if ((rc = fks_ingest(&st, s, &o)) != 0)
            return fail(tag, rc);
        snprintf(path, sizeof path, "%s/%s", argv[3], tag);
        if ((rc = fks_restore(NULL, s, tag, path, 0, NULL, NULL)) != 0)
            return fail(tag, rc);
        printf("%s: %llu pages, %llu new, %llu zero\n", tag, (unsigned long long)st.pages,
               (unsigned long long)st.new_pages, (unsigned long long)st.zero_pages);
        n++;
    }
    fclose(f);
    fks_snapinfo *list;
    size_t k;
    if ((rc = fks_list(&list, &k, s)) != 0)
        return fail("list", rc);
    free(list);
    fks_close(s);
    if (n == 0 || (size_t)n != k) {
        fprintf(stderr, "linktest: ingested %d, store lists %zu\n", n, k);
        return 1;
    }
    return 0;
}
