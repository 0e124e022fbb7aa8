/* `clawbox new-tool`: writes a standalone C tool project. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/util.h"
#include "sandbox/registry.h"
#include "tooling/internal.h"
#include "tooling/tooling.h"

/* A template with the tool's name filled in. */
#define TEMPLATE_MAX (64 * 1024)

/* The templates use @NAME@ for the tool name, which cb__tooling_check_name
 * limits to [A-Za-z0-9_-], so it needs no quoting in C, JSON or make. */
static const char main_c[] =
    "/* @NAME@: a clawbox tool. It reads its params (JSON) on stdin and prints\n"
    " * {\"tool\": \"@NAME@\", \"result\": <params>} on stdout. See clawbox's\n"
    " * docs/writing-tools.md for the ABI and the SDK in clawbox_tool.h. */\n"
    "#define CLAWBOX_TOOL_IMPLEMENTATION\n"
    "#include \"clawbox_tool.h\"\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    struct cb_tool_error err;\n"
    "    struct cb_json *params, *out;\n"
    "\n"
    "    if (cb_read_params(&params, &err)) {\n"
    "        /* Bad input is reported as {\"error\": ...} with exit status 0. */\n"
    "        cb_output_error(\"invalid input: %s\", err.msg);\n"
    "        return 0;\n"
    "    }\n"
    "    out = cb_json_new_object();\n"
    "    cb_json_set(out, \"tool\", cb_json_new_string(\"@NAME@\"));\n"
    "    cb_json_set(out, \"result\", params);\n"
    "    cb_output(out);\n"
    "    cb_json_free(out);\n"
    "    return 0;\n"
    "}\n";

static const char manifest_json[] = "{\n"
                                    "  \"tool\": {\n"
                                    "    \"name\": \"@NAME@\",\n"
                                    "    \"description\": \"A clawbox WASM tool\",\n"
                                    "    \"version\": \"0.1.0\"\n"
                                    "  },\n"
                                    "  \"network\": null,\n"
                                    "  \"credentials\": null,\n"
                                    "  \"input_schema\": {\n"
                                    "    \"type\": \"object\",\n"
                                    "    \"additionalProperties\": true\n"
                                    "  }\n"
                                    "}\n";

static const char makefile[] =
    "# Builds @NAME@.wasm, a clawbox tool (wasm32-wasip1), with clang and\n"
    "# wasi-libc. With wasi-sdk: make CLANG=/opt/wasi-sdk/bin/clang \\\n"
    "#   WASI_SYSROOT=/opt/wasi-sdk/share/wasi-sysroot\n"
    "# Install it into a running server's tool directory with:\n"
    "#   clawbox add tool @NAME@ @NAME@.wasm\n"
    "CLANG ?= clang\n"
    "WASI_SYSROOT ?= /usr\n"
    "CFLAGS ?= -O2 -Wall -Wextra\n"
    "WASM_FLAGS = --target=wasm32-wasi --sysroot=$(WASI_SYSROOT) -std=c11 -I.\n"
    "# Drop libc's DWARF; give the JSON code 1 MiB of stack (wasm-ld's default is 64 KiB);\n"
    "# start with 2 MiB of memory, so that a run need not grow it (drop the last flag\n"
    "# if wasm-ld says \"initial memory too small\").\n"
    "WASM_LDFLAGS = -Wl,--strip-debug -Wl,-z,stack-size=1048576 -Wl,--initial-memory=2097152\n"
    "\n"
    "# @NAME@.json beside the module is the manifest `clawbox add tool` installs.\n"
    "all: @NAME@.wasm @NAME@.json\n"
    "\n"
    "@NAME@.wasm: main.c clawbox_tool.h\n"
    "\t$(CLANG) $(WASM_FLAGS) $(CFLAGS) $(WASM_LDFLAGS) main.c -o $@\n"
    "\n"
    "@NAME@.json: manifest.json\n"
    "\tcp manifest.json $@\n"
    "\n"
    "clean:\n"
    "\trm -f @NAME@.wasm @NAME@.json\n"
    "\n"
    ".PHONY: all clean\n";

int cb__tooling_check_name(const char *name, struct cb_error *err)
{
    if (!cb_tool_name_valid(name))
        return cb_error_set(err, -EINVAL,
                            "Invalid tool name '%.80s': use 1 to 64 characters from A-Z, a-z, "
                            "0-9, '_' and '-'",
                            name ? name : "");
    return 0;
}

/* Appends tmpl to b with every @NAME@ replaced by name. */
static void expand(struct cb_buf *b, const char *tmpl, const char *name)
{
    static const char key[] = "@NAME@";
    const char *p = tmpl, *hit;
    while ((hit = strstr(p, key)) != NULL) {
        cb_buf_append(b, p, (size_t)(hit - p));
        cb_buf_puts(b, name);
        p = hit + sizeof(key) - 1;
    }
    cb_buf_puts(b, p);
}

static int write_template(const char *dir, const char *file, const char *tmpl, const char *name,
                          struct cb_error *err)
{
    struct cb_buf b;
    cb_buf_init(&b, TEMPLATE_MAX);
    expand(&b, tmpl, name);
    _cleanup_free_ char *path = cb__tooling_join(dir, file);
    int r = cb__tooling_write_new(path, b.data, b.len, 0644, err);
    cb_buf_free(&b);
    return r;
}

static const char *const project_files[] = {"main.c", "manifest.json", "clawbox_tool.h",
                                            "Makefile"};

static int write_project(const char *path, const char *name, struct cb_error *err)
{
    int r = write_template(path, "main.c", main_c, name, err);
    if (r == 0)
        r = write_template(path, "manifest.json", manifest_json, name, err);
    if (r == 0) {
        _cleanup_free_ char *h = cb__tooling_join(path, "clawbox_tool.h");
        r = cb__tooling_write_new(h, cb__tooling_sdk, cb__tooling_sdk_len, 0644, err);
    }
    if (r == 0)
        r = write_template(path, "Makefile", makefile, name, err);
    return r;
}

/* Undoes a partly written project: only the files this module creates. */
static void remove_project(const char *path)
{
    for (size_t i = 0; i < CB_ARRAY_LEN(project_files); i++) {
        _cleanup_free_ char *f = cb__tooling_join(path, project_files[i]);
        unlink(f);
    }
    rmdir(path);
}

static int check_lang(const char *lang, struct cb_error *err)
{
    if (lang != NULL && strcmp(lang, "c") != 0)
        return cb_error_set(err, -ENOTSUP, "Unsupported language: %.80s. Use c.", lang);
    return 0;
}

/* Creates the (missing) parent and then the project directory itself,
 * which must not exist. */
static int make_dir(const char *dir, const char *path, struct cb_error *err)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return cb_error_set(err, -EEXIST, "Directory already exists: %s", path);
    if (dir != NULL) {
        int r = cb_mkdir_p(dir, 0755, err);
        if (r < 0)
            return r;
    }
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno == EEXIST)
        return cb_error_set(err, -EEXIST, "Directory already exists: %s", path);
    return cb_error_set(err, -errno, "cannot create %s: %s", path, strerror(errno));
}

int cb_tooling_scaffold(const char *name, const char *lang, const char *dir, char **path,
                        struct cb_error *err)
{
    *path = NULL;
    int r = cb__tooling_check_name(name, err);
    if (r == 0)
        r = check_lang(lang, err);
    if (r < 0)
        return r;
    char *p = cb__tooling_join(dir ? dir : ".", name);
    r = make_dir(dir, p, err);
    if (r == 0 && (r = write_project(p, name, err)) < 0)
        remove_project(p);
    if (r < 0) {
        free(p);
        return r;
    }
    *path = p;
    return 0;
}
