/* clawbox build [TOOL] [--source DIR] [--output DIR] */
#include "cli.h"
#include "config/env.h"
#include "tooling/tooling.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char build_usage_text[] =
    "Usage: clawbox build [TOOL] [--source DIR] [--output DIR]\n\n"
    "Builds the tool projects below DIR: every directory holding manifest.json and\n"
    "main.c (or main.cpp), searched recursively (hidden directories, symbolic links\n"
    "and the inside of a project are skipped; DIR itself may be a project). Each is\n"
    "compiled with clang (clang++) --target=wasm32-wasi into OUTPUT/<dir>.wasm, and\n"
    "its manifest is copied to OUTPUT/<dir>.json; the directory's name is the tool's\n"
    "name. The SDK header clawbox_tool.h is on the include path. TOOL builds only\n"
    "the project of that name. Exits 1 if any build fails or nothing was found.\n\n"
    "  --source DIR   where to look (default " CB_TOOLING_DEFAULT_SOURCE ")\n"
    "  --output DIR   where to write (default " CB_TOOLING_DEFAULT_OUTPUT
    ", created if missing)\n\n"
    "Environment: CLAWBOX_WASM_CC (default clang), CLAWBOX_WASM_CXX (default clang++),\n"
    "CLAWBOX_WASI_SYSROOT (default /usr, Debian's wasi-libc).\n";

static void toolchain_from_env(struct cb_tooling_toolchain *tc)
{
    const char *cc = cb_config_env(CB_ENV_WASM_CC), *cxx = cb_config_env(CB_ENV_WASM_CXX);
    const char *sysroot = cb_config_env(CB_ENV_WASI_SYSROOT);
    cb_tooling_toolchain_default(tc);
    if (cc)
        tc->cc = cc;
    if (cxx)
        tc->cxx = cxx;
    if (sysroot)
        tc->sysroot = sysroot;
}

/* Prints compiler output indented under a tool's line. */
static void print_log(const struct cb_buf *log)
{
    const char *p = log->data, *end = log->data + log->len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        fprintf(stderr, "    %.*s\n", (int)n, p);
        p = nl ? nl + 1 : end;
    }
}

/* Builds one project and prints its line; returns true on success. */
static bool build_one(struct cb_tooling_builder *b, const struct cb_tooling_project *p)
{
    struct cb_error err = {0};
    struct cb_buf log;
    cb_buf_init(&log, CB_TOOLING_LOG_MAX);
    int r = cb_tooling_build(b, p, &log, &err);
    if (r == 0)
        fprintf(stderr, "✓ %s → %s/%s.wasm\n", p->name, b->outdir, p->name);
    else
        fprintf(stderr, "✗ %s: %s\n", p->name, err.msg);
    print_log(&log);
    cb_buf_free(&log);
    return r == 0;
}

static int build_all(const struct cb_tooling_projects *ps, const char *output)
{
    struct cb_tooling_toolchain tc;
    struct cb_tooling_builder b;
    struct cb_error err = {0};
    size_t ok = 0;
    toolchain_from_env(&tc);
    if (cb_tooling_builder_init(&b, &tc, output, &err) < 0)
        return cli_fail("%s", err.msg);
    for (size_t i = 0; i < ps->len; i++)
        ok += build_one(&b, &ps->items[i]);
    cb_tooling_builder_free(&b);
    fprintf(stderr, "Build complete: %zu succeeded, %zu failed\n", ok, ps->len - ok);
    return ok == ps->len ? 0 : 1;
}

int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {{"source", required_argument, NULL, 's'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *source = CB_TOOLING_DEFAULT_SOURCE, *output = CB_TOOLING_DEFAULT_OUTPUT;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 's')
            source = optarg;
        else if (o == 'o')
            output = optarg;
        else
            return o == 'h' ? (fputs(build_usage_text, stdout), 0)
                            : (fputs(build_usage_text, stderr), 2);
    }
    if (argc - optind > 1) {
        fputs(build_usage_text, stderr);
        return 2;
    }
    struct cb_tooling_projects ps;
    struct cb_error err = {0};
    int rc;
    if (cb_tooling_find(source, optind < argc ? argv[optind] : NULL, &ps, &err) < 0)
        rc = cli_fail("%s", err.msg);
    else if (ps.len == 0)
        rc = cli_fail("No tool projects (manifest.json with main.c or main.cpp) found in %s",
                      source);
    else
        rc = build_all(&ps, output);
    cb_tooling_projects_free(&ps);
    return rc;
}
