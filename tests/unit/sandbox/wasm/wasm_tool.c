/* Test helper around the wasm API, for the script-driven tests:
 *   wasm-tool inspect FILE            lists imports and exports
 *   wasm-tool check FILE              inspect + import policy
 *   wasm-tool instrument IN OUT [CAP] writes the metered module
 * Exits 0 on success, 1 with the error on stderr otherwise. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "sandbox/wasm.h"

static const char *const kinds[] = {"func", "table", "memory", "global"};

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = cb_xmalloc(cap);
    size_t got;
    while ((got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            p = cb_xrealloc(p, cap *= 2);
    }
    fclose(f);
    *len = n;
    return p;
}

static int inspect(const uint8_t *p, size_t n, bool check)
{
    struct cb_error err = {0};
    struct cb_wasm_info info;
    int r = cb_wasm_inspect(p, n, &info, &err);
    if (r == 0 && check)
        r = cb_wasm_check_imports(&info, &err);
    if (r < 0) {
        fprintf(stderr, "%s\n", err.msg);
        cb_wasm_info_free(&info);
        return 1;
    }
    for (size_t i = 0; i < info.n_imports; i++)
        printf("import %s %s.%s\n", kinds[info.imports[i].kind], info.imports[i].module,
               info.imports[i].name);
    for (size_t i = 0; i < info.n_exports; i++)
        printf("export %s %s\n", kinds[info.exports[i].kind], info.exports[i].name);
    cb_wasm_info_free(&info);
    return 0;
}

static int instrument(const uint8_t *p, size_t n, const char *out_path, const char *cap)
{
    struct cb_error err = {0};
    uint64_t pages = 65536;
    if (cap != NULL && cb_parse_u64(cap, strlen(cap), &pages) < 0)
        return 2;
    struct cb_wasm_instrument_opts opts = {.max_memory_pages = (uint32_t)pages};
    uint8_t *out;
    size_t out_len;
    if (cb_wasm_instrument(p, n, &opts, &out, &out_len, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(out_path, "wb");
    int rc = f != NULL && fwrite(out, 1, out_len, f) == out_len ? 0 : 2;
    if (f != NULL && fclose(f) != 0)
        rc = 2;
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    size_t n;
    uint8_t *p = slurp(argv[2], &n);
    if (p == NULL) {
        fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    int rc = 2;
    if (strcmp(argv[1], "inspect") == 0 || strcmp(argv[1], "check") == 0)
        rc = inspect(p, n, strcmp(argv[1], "check") == 0);
    else if (strcmp(argv[1], "instrument") == 0 && argc >= 4)
        rc = instrument(p, n, argv[3], argc > 4 ? argv[4] : NULL);
    free(p);
    return rc;
}
