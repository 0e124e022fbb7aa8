/* Tool authoring: the library behind `clawbox new-tool`, `build`,
 * `add tool` and `remove tool`.
 *
 * - Scaffolding writes a standalone C tool project: main.c, manifest.json,
 *   a copy of the SDK header (embedded at build time) and a Makefile.
 * - Building finds tool projects (a directory with manifest.json and
 *   main.c or main.cpp) below a source directory and compiles each with
 *   clang/clang++ for wasm32-wasi into <out>/<name>.wasm, with the manifest
 *   copied to <out>/<name>.json.
 * - Installing copies a module (and its sibling manifest) atomically into
 *   a server's tool_dir, where the hot-reload watcher picks it up; removing
 *   deletes it again.
 *
 * Only C (and C++ through `build`) is implemented: the reference's rust,
 * js and ts scaffolds need toolchains clawbox does not ship. */
#ifndef CB_TOOLING_TOOLING_H
#define CB_TOOLING_TOOLING_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

#define CB_TOOLING_MAX_PROJECTS    1024             /* per build run */
#define CB_TOOLING_MAX_DEPTH       8                /* directory levels below the source */
#define CB_TOOLING_MAX_ENTRIES     65536            /* directory entries looked at per scan */
#define CB_TOOLING_MANIFEST_MAX    (1024u * 1024)   /* bytes of a manifest.json */
#define CB_TOOLING_LOG_MAX         (64u * 1024)     /* compiler output kept per tool */
#define CB_TOOLING_COMPILE_TIMEOUT (5u * 60 * 1000) /* ms per compiler run */
#define CB_TOOLING_DEFAULT_SOURCE  "tools"
#define CB_TOOLING_DEFAULT_OUTPUT  "build/wasm"

/* ---- new-tool ----------------------------------------------------------- */

/* Creates the project directory <dir>/<name> (or ./<name> when dir is
 * NULL) holding main.c, manifest.json, clawbox_tool.h and a Makefile.
 * Returns 0 and the project path in *path (caller frees), -EINVAL for a
 * bad name, -ENOTSUP for a language other than "c", -EEXIST when the
 * directory exists ("Directory already exists: <path>"), or a file-system
 * error. On failure nothing is left behind. */
int cb_tooling_scaffold(const char *name, const char *lang, const char *dir, char **path,
                        struct cb_error *err);

/* The language new-tool uses without --lang: [tools] default_language of
 * $HOME/.clawbox/config/clawbox.toml if that file exists, else "c".
 * Returns 0 and *out (caller frees), or the config's error. */
int cb_tooling_default_language(char **out, struct cb_error *err);

/* ---- build -------------------------------------------------------------- */

struct cb_tooling_project {
    char *name;   /* the directory's name, which is the tool's name */
    char *dir;    /* path of the project directory */
    char *source; /* <dir>/main.c, else <dir>/main.cpp */
    bool cpp;
};

struct cb_tooling_projects {
    struct cb_tooling_project *items;
    size_t len;
};

/* Finds the tool projects in `source`: the source directory itself if it
 * is one, else every project below it, recursively up to
 * CB_TOOLING_MAX_DEPTH levels. A project's subdirectories, hidden
 * directories and symbolic links are not searched. The result is sorted
 * by name. With `only` set, keeps that project alone (-ENOENT, "Tool
 * '<only>' not found in <source>", if there is none). Two projects with
 * the same name are an error (-EEXIST). The caller frees *out with
 * cb_tooling_projects_free, also on failure. */
int cb_tooling_find(const char *source, const char *only, struct cb_tooling_projects *out,
                    struct cb_error *err);
void cb_tooling_projects_free(struct cb_tooling_projects *p);

/* The compilers and sysroot for wasm32-wasi. */
struct cb_tooling_toolchain {
    const char *cc;      /* default "clang" */
    const char *cxx;     /* default "clang++" */
    const char *sysroot; /* default "/usr" (Debian's wasi-libc) */
    unsigned timeout_ms; /* per compiler run; default CB_TOOLING_COMPILE_TIMEOUT */
};

void cb_tooling_toolchain_default(struct cb_tooling_toolchain *tc);

/* State shared by the builds of one run: the output directory and a
 * private temporary directory holding the SDK header, which is on the
 * include path after the project's own directory. */
struct cb_tooling_builder {
    struct cb_tooling_toolchain tc;
    char *outdir;
    char *sdk_dir;
};

/* Creates outdir (mkdir -p) and the SDK directory. On failure the builder
 * needs no cleanup. */
int cb_tooling_builder_init(struct cb_tooling_builder *b, const struct cb_tooling_toolchain *tc,
                            const char *outdir, struct cb_error *err);
/* Removes the SDK directory; accepts a builder that failed to init. */
void cb_tooling_builder_free(struct cb_tooling_builder *b);

/* Builds one project: checks its manifest (valid JSON; tool.name, if
 * present, equals the project's name), runs the compiler (fork/exec, no
 * shell) into a temporary file, then writes <outdir>/<name>.json and
 * renames the module to <outdir>/<name>.wasm, so a watcher never sees a
 * half-written module. The compiler's combined output is appended to
 * `log` up to its maximum. Returns 0 or a negative code with err set. */
int cb_tooling_build(struct cb_tooling_builder *b, const struct cb_tooling_project *p,
                     struct cb_buf *log, struct cb_error *err);

/* ---- add tool / remove tool --------------------------------------------- */

/* The tool directory to install into: `flag` if set; else [sandbox]
 * tool_dir of $HOME/.clawbox/config/clawbox.toml (with the server's
 * environment overrides) if that file exists; else $CLAWBOX_TOOL_DIR;
 * else $HOME/.clawbox/tools. Returns 0 and *out (caller frees), or the
 * config's error. */
int cb_tooling_tool_dir(const char *flag, char **out, struct cb_error *err);

struct cb_tooling_installed {
    char *wasm_path;     /* <tool_dir>/<name>.wasm */
    char *manifest_path; /* <tool_dir>/<name>.json, or NULL if none was copied */
};

/* Installs `wasm_file` as tool `name` in tool_dir (created if missing).
 * The file must be a WebAssembly binary (magic and version 1) of at most
 * CB_WASM_MAX_MODULE bytes. Its sibling manifest (the same path with
 * ".wasm" replaced by ".json") is copied first if it exists; it must be
 * JSON, and its tool.name is set to `name` when it differs, because the
 * server ignores a manifest that names another tool. Both copies are
 * atomic (temp file and rename). Caller frees *out with
 * cb_tooling_installed_free. */
int cb_tooling_install(const char *name, const char *wasm_file, const char *tool_dir,
                       struct cb_tooling_installed *out, struct cb_error *err);
void cb_tooling_installed_free(struct cb_tooling_installed *r);

/* Deletes <tool_dir>/<name>.wasm, then <name>.json if present (*manifest
 * says whether it was). Rejects names containing '/', '\' or ".." and
 * other invalid names (-EINVAL); a missing module is -ENOENT ("Tool
 * '<name>' not found in <tool_dir>"). */
int cb_tooling_remove(const char *name, const char *tool_dir, bool *manifest, struct cb_error *err);

/* Checks a tool name (1-64 of [A-Za-z0-9_-]); -EINVAL with a message. */
int cb__tooling_check_name(const char *name, struct cb_error *err);

#endif
