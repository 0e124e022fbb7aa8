/* The tool registry: which tools are loaded, their manifests, and their
 * compiled shared objects. Tools come from `*.wasm` files in tool_dir;
 * each is inspected, import-checked, fuel-instrumented and compiled
 * (cached). Manifests come from, in order of precedence: registration
 * through the API for this very module (persisted in the state database
 * with the module's SHA-256), a `<name>.json` file beside `<name>.wasm`,
 * or an automatic deny-all manifest. An inotify
 * watcher reloads changed modules in the background (trailing-edge
 * debounce); the old version serves until the new one is ready. */
#ifndef CB_SANDBOX_REGISTRY_H
#define CB_SANDBOX_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

struct cb_state;
struct cb_metrics;
struct cb_manifest;

struct cb_registry_opts {
    const char *tool_dir;
    const char *cache_dir;
    struct cb_state *state;     /* manifests persist here */
    struct cb_metrics *metrics; /* may be NULL */
    uint32_t max_memory_pages;  /* sandbox.max_memory_mb in 64 KiB pages */
    unsigned compile_timeout_ms;
    unsigned max_call_depth;
    bool allow_wildcard_all; /* proxy.allow_wildcard_all: accept "*" in allowlists */
    bool watch;              /* sandbox.watch_tools */
    /* Compile the modules found at open on a background thread, so the
     * server answers at once; cb_registry_ready says when it is done. */
    bool load_in_background;
    unsigned debounce_ms; /* trailing-edge quiet period per file; 0 = 200 */
};

/* A loaded tool. Reference-counted: an execution holds its tool while a
 * reload replaces it in the registry. */
struct cb_tool {
    char *name;
    char *so_path;
    struct cb_manifest *manifest; /* the effective manifest (never NULL) */
    char sha256[65];              /* of the original module bytes */
};

struct cb_registry;

/* Loads persisted manifests, scans tool_dir and compiles every module
 * (failures are logged, counted and skipped; they never fail the call),
 * then starts the watcher. A missing tool_dir is not an error. */
int cb_registry_open(const struct cb_registry_opts *opts, struct cb_registry **out,
                     struct cb_error *err);
void cb_registry_close(struct cb_registry *r);

/* False while the modules found at open are still being compiled. */
bool cb_registry_ready(struct cb_registry *r);

/* Returns the tool with a reference, or NULL if no such tool is loaded. */
struct cb_tool *cb_registry_get(struct cb_registry *r, const char *name);
void cb_tool_unref(struct cb_tool *t);

/* Like cb_registry_get, but a tool that is still compiling (queued in a
 * scan or a reload, or not yet reached by the scan at open) is waited for,
 * up to timeout_ms; NULL when it failed, does not exist, or the time ran
 * out. */
struct cb_tool *cb_registry_get_wait(struct cb_registry *r, const char *name, uint64_t timeout_ms);
/* Whether no version of name is loaded yet but one may come (see above). */
bool cb_registry_compiling(struct cb_registry *r, const char *name);
/* Whether name's module failed to load and no version of it is loaded:
 * then its error is copied to msg (cap bytes, cut). */
bool cb_registry_failure(struct cb_registry *r, const char *name, char *msg, size_t cap);

/* GET /tools: a new array of every tool's manifest with "state": "ready"
 * and "manifest_source";
 * then, for tools with no version loaded, {"tool": {"name"}, "state":
 * "compiling"} and {"tool": {"name"}, "state": "failed", "error": why}. */
json_t *cb_registry_manifests(struct cb_registry *r);

struct cb_registry_counts {
    size_t ready, compiling, failed;
};
struct cb_registry_counts cb_registry_counts(struct cb_registry *r);

/* POST /tools/register. Parses the manifest with cb_manifest_parse (with
 * proxy.allow_wildcard_all), then stores it normalised (defaults filled,
 * unknown keys dropped) in the state database, bound to the SHA-256 of the
 * module loaded now: it never applies to other code of that name. Returns
 * 0 (*created says whether the tool had no manifest before: as in the
 * reference, the automatic manifest of a tool loaded at open and a
 * <name>.json manifest count as existing), cb_manifest_parse's -EBADMSG
 * (HTTP 422) or -EINVAL (HTTP 400) naming the field, -ENOENT when no module
 * of that name is loaded, or the state database's error; err says why. */
int cb_registry_register(struct cb_registry *r, const json_t *manifest, bool *created,
                         struct cb_error *err);

/* DELETE /tools/{name}/registration: forgets the manifest registered for
 * name (memory and state database); the loaded module gets its
 * <name>.json or automatic manifest back. -ENOENT when none is registered. */
int cb_registry_unregister(struct cb_registry *r, const char *name, struct cb_error *err);

/* GET /tools/{name}: the loaded tool's manifest plus "state": "ready",
 * "manifest_source" ("registered", "file" or "auto"), "sha256" of its
 * module and "manifest_file" (where its <name>.json is or would be); NULL
 * when no version is loaded. */
json_t *cb_registry_describe(struct cb_registry *r, const char *name);

/* POST /tools/reload: rescans tool_dir now; compiles new and changed
 * modules, unloads deleted ones. Returns a report
 * {"reloaded": n, "tools": [names], "failed": [{"tool": name, "error": msg}]}. */
json_t *cb_registry_reload(struct cb_registry *r);

/* Validates a tool name: 1-64 bytes of [A-Za-z0-9_-]. */
bool cb_tool_name_valid(const char *name);

#endif
