/* A tool manifest (ToolManifest of the reference), parsed once. Every
 * source of a manifest (registration through the API, a <name>.json file
 * beside the module, the state database, the automatic deny-all one) goes
 * through cb_manifest_parse; the rest of the server reads the typed fields
 * and never the JSON. The proxy enforces network (allowlist,
 * max_concurrent), /execute grants credentials and sizes the worker from
 * resources, and /tools and MCP list the normalised JSON.
 *
 * A manifest is immutable once parsed and reference-counted, so a tool
 * object, a stored registration and a request in flight can share it
 * across threads. */
#ifndef CB_SANDBOX_MANIFEST_H
#define CB_SANDBOX_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct cb_proxy_allowlist;

/* resources: each 0 when the manifest has none (null), meaning the
 * server's setting. */
struct cb_manifest_resources {
    uint64_t default_timeout_ms;
    uint64_t max_timeout_ms;
    uint64_t default_memory_mb;
    uint64_t max_memory_mb;
};

struct cb_manifest {
    const char *name; /* tool.name */
    /* network.allowlist, compiled; NULL when the tool has no network
     * (network null, or an empty list): every host is denied. */
    const struct cb_proxy_allowlist *allowlist;
    /* network.max_concurrent: proxied requests of this tool in flight at
     * once, across all its executions (0 allows none). */
    uint64_t max_concurrent;
    /* credentials.available: the names /execute may grant. */
    const char *const *credentials;
    size_t n_credentials;
    struct cb_manifest_resources resources;
    /* input_schema, output_schema: opaque JSON, NULL when absent. */
    const json_t *input_schema;
    const json_t *output_schema;
    /* The normalised JSON (defaults filled, unknown keys dropped, fixed key
     * order), as listed by /tools and stored in the state database. Never
     * modified; copy it to hand it out. */
    const json_t *doc;
    /* Where to change it, for denials: "/…/tools/NAME.json", "the manifest
     * registered through the API", or "no manifest file (the automatic
     * deny-all manifest applies)". Set once, before the manifest is shared. */
    const char *origin;
};

/* Validates a manifest and builds it, with one reference. -EBADMSG for a
 * missing or wrongly typed field (HTTP 422), -EINVAL for a bad value: the
 * tool name (1-64 of [A-Za-z0-9_-]) or an allowlist entry (not a host,
 * "*.domain" or "*"; "*" and public-suffix wildcards only with
 * allow_wildcard_all) (HTTP 400); err names the field. Shapes are all
 * checked before values, as in the reference. */
int cb_manifest_parse(const json_t *in, bool allow_wildcard_all, struct cb_manifest **out,
                      struct cb_error *err);

#define CB_MANIFEST_ORIGIN_API  "the manifest registered through the API (clawbox tools register)"
#define CB_MANIFEST_ORIGIN_AUTO "no manifest file, so the automatic deny-all manifest"

/* Sets m's origin (a copy) while m has one reference. */
void cb_manifest_set_origin(struct cb_manifest *m, const char *origin);
struct cb_manifest *cb_manifest_ref(struct cb_manifest *m);
/* Drops a reference; accepts NULL. */
void cb_manifest_unref(struct cb_manifest *m);

/* Whether credentials.available of m lists `name`. */
bool cb_manifest_has_credential(const struct cb_manifest *m, const char *name);

/* credentials.available of a manifest in its JSON form, as GET /tools
 * serves it (for clients such as the MCP server); NULL when absent. */
const json_t *cb_manifest_doc_credentials(const json_t *doc);

#endif
