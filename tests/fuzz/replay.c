/* Replays a fuzz target's corpus without libFuzzer: a plain main() linked
 * with the target's LLVMFuzzerTestOneInput, built with any compiler, so that
 * `make check` runs every committed input in the normal and the sanitizer
 * builds. A crash, a sanitizer report or a broken invariant
 * (__builtin_trap) fails the test like it fails the fuzzer.
 *
 * Usage: fuzz-replay-<target> DIR|FILE...  Every regular file of each
 * directory is run, in name order. Exits 0 when every input ran, 1 when an
 * argument cannot be read or holds no input at all (a corpus that vanished
 * must not pass unnoticed). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as in libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Largest input replayed; libFuzzer's own inputs are far smaller. */
#define REPLAY_MAX_INPUT (16u * 1024 * 1024)

/* Reads a whole file into a buffer of exactly its size (so that ASan sees
 * a read past the end); returns NULL when it cannot. */
static uint8_t *read_input(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *data = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size <= REPLAY_MAX_INPUT) {
        *len = (size_t)st.st_size;
        data = cb_xmalloc(*len ? *len : 1);
        if (fread(data, 1, *len, f) != *len) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    return data;
}

static int run_file(const char *path)
{
    size_t len = 0;
    uint8_t *data = read_input(path, &len);
    if (data == NULL) {
        fprintf(stderr, "%s: cannot read it (or it is over %u bytes)\n", path, REPLAY_MAX_INPUT);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in dir; returns how many, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = cb_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = cb_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0)
                ran = -1;
            else if (ran >= 0)
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    /* Through a volatile pointer: in a unity build the target's definition
     * may share this translation unit, and gcc would call the test always
     * true (-Waddress). */
    int (*volatile init)(int *, char ***) = LLVMFuzzerInitialize;
    if (init != NULL)
        init(&argc, &argv);
    int status = argc > 1 ? 0 : 1;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran = 0;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            ran = run_dir(argv[i]);
        else
            ran = run_file(argv[i]) == 0 ? 1 : -1;
        if (ran <= 0) {
            fprintf(stderr, "%s: %s\n", argv[i], ran == 0 ? "no inputs" : "not replayed");
            status = 1;
        } else {
            printf("%s: %ld inputs replayed\n", argv[i], ran);
        }
    }
    return status;
}
