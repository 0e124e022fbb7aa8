/* Tool manifests (sandbox/manifest.h): validation, normalisation and the
 * typed form every other module reads; the automatic deny-all manifest.
 * The only code that knows the JSON field names of a manifest.
 *
 * Errors follow the reference's split: a missing or wrongly typed field is
 * what its deserialiser rejects (HTTP 422, -EBADMSG here); a well-typed but
 * bad value is rejected by the handler (HTTP 400, -EINVAL). Shapes are all
 * checked before values, as in the reference. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/util.h"
#include "proxy/allowlist.h"
#include "sandbox/manifest.h"
#include "sandbox/registry/internal.h"

#define DEFAULT_VERSION  "0.1.0"
#define DEFAULT_MAX_CONC 5

struct resource_default {
    const char *key;
    json_int_t value;
};

/* The reference's ResourceLimits defaults, in its field order. */
static const struct resource_default resource_defaults[] = {
    {"default_timeout_ms", 30000},
    {"max_timeout_ms", 120000},
    {"default_memory_mb", 256},
    {"max_memory_mb", 1024},
};

bool cb_tool_name_valid(const char *name)
{
    return cb_name_valid(name);
}

static int missing(struct cb_error *err, const char *field)
{
    return cb_error_set(err, -EBADMSG, "missing required field '%s'", field);
}

static int wrong_type(struct cb_error *err, const char *field, const char *what)
{
    return cb_error_set(err, -EBADMSG, "field '%s' must be %s", field, what);
}

/* Reads an optional string member (null = absent) into *out (borrowed). */
static int opt_string(const json_t *obj, const char *key, const char *field, const char *def,
                      const char **out, struct cb_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!cb_json_plain_string(v))
        return wrong_type(err, field, "a string");
    *out = json_string_value(v);
    return 0;
}

/* Reads an optional non-negative integer member (null = absent). */
static int opt_uint(const json_t *obj, const char *key, const char *field, json_int_t def,
                    json_int_t *out, struct cb_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return wrong_type(err, field, "a non-negative integer");
    *out = json_integer_value(v);
    return 0;
}

/* Copies an optional array of strings (null = absent = []). */
static int opt_strings(const json_t *obj, const char *key, const char *field, json_t **out,
                       struct cb_error *err)
{
    json_t *v = json_object_get(obj, key);
    *out = json_array();
    if (v == NULL || json_is_null(v))
        return 0;
    size_t i;
    json_t *item;
    if (!json_is_array(v))
        goto bad;
    json_array_foreach(v, i, item)
    {
        if (!cb_json_plain_string(item))
            goto bad;
        json_array_append_new(*out,
                              json_stringn(json_string_value(item), json_string_length(item)));
    }
    return 0;
bad:
    json_decref(*out);
    *out = NULL;
    return wrong_type(err, field, "an array of strings");
}

static int norm_tool(const json_t *in, json_t **out, struct cb_error *err)
{
    json_t *tool = json_object_get(in, "tool");
    if (tool == NULL || json_is_null(tool))
        return missing(err, "tool");
    if (!json_is_object(tool))
        return wrong_type(err, "tool", "an object");
    json_t *name = json_object_get(tool, "name");
    if (name == NULL || json_is_null(name))
        return missing(err, "tool.name");
    if (!json_is_string(name))
        return wrong_type(err, "tool.name", "a string");
    const char *desc, *version;
    int rc = opt_string(tool, "description", "tool.description", "", &desc, err);
    if (rc == 0)
        rc = opt_string(tool, "version", "tool.version", DEFAULT_VERSION, &version, err);
    if (rc < 0)
        return rc;
    /* Copies, not references: the input belongs to a request thread. */
    *out = json_pack("{s:s%, s:s, s:s}", "name", json_string_value(name), json_string_length(name),
                     "description", desc, "version", version);
    return 0;
}

/* network: null | {"allowlist": [string] = [], "max_concurrent": int = 5} */
static int norm_network(const json_t *in, json_t **out, struct cb_error *err)
{
    json_t *net = json_object_get(in, "network");
    if (net == NULL || json_is_null(net)) {
        *out = json_null();
        return 0;
    }
    if (!json_is_object(net))
        return wrong_type(err, "network", "an object or null");
    json_t *allow;
    json_int_t conc;
    int rc = opt_strings(net, "allowlist", "network.allowlist", &allow, err);
    if (rc < 0)
        return rc;
    rc = opt_uint(net, "max_concurrent", "network.max_concurrent", DEFAULT_MAX_CONC, &conc, err);
    if (rc < 0) {
        json_decref(allow);
        return rc;
    }
    *out = json_pack("{s:o, s:I}", "allowlist", allow, "max_concurrent", conc);
    return 0;
}

/* credentials: null | {"available": [string] = []} */
static int norm_credentials(const json_t *in, json_t **out, struct cb_error *err)
{
    json_t *cred = json_object_get(in, "credentials");
    if (cred == NULL || json_is_null(cred)) {
        *out = json_null();
        return 0;
    }
    if (!json_is_object(cred))
        return wrong_type(err, "credentials", "an object or null");
    json_t *avail;
    int rc = opt_strings(cred, "available", "credentials.available", &avail, err);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:o}", "available", avail);
    return 0;
}

/* resources: null | {four non-negative integers, each defaulted} */
static int norm_resources(const json_t *in, json_t **out, struct cb_error *err)
{
    json_t *res = json_object_get(in, "resources");
    if (res == NULL || json_is_null(res)) {
        *out = json_null();
        return 0;
    }
    if (!json_is_object(res))
        return wrong_type(err, "resources", "an object or null");
    json_t *o = json_object();
    for (size_t i = 0; i < CB_ARRAY_LEN(resource_defaults); i++) {
        const struct resource_default *d = &resource_defaults[i];
        char field[64];
        snprintf(field, sizeof(field), "resources.%s", d->key);
        json_int_t v;
        int rc = opt_uint(res, d->key, field, d->value, &v, err);
        if (rc < 0) {
            json_decref(o);
            return rc;
        }
        json_object_set_new(o, d->key, json_integer(v));
    }
    *out = o;
    return 0;
}

/* Checks types and builds the normalised object (values not yet checked). */
static int normalize_shape(const json_t *in, json_t **out, struct cb_error *err)
{
    if (!json_is_object(in))
        return cb_error_set(err, -EBADMSG, "manifest must be a JSON object");
    json_t *tool = NULL, *net = NULL, *cred = NULL, *res = NULL;
    int rc = norm_tool(in, &tool, err);
    if (rc == 0)
        rc = norm_network(in, &net, err);
    if (rc == 0)
        rc = norm_credentials(in, &cred, err);
    if (rc == 0)
        rc = norm_resources(in, &res, err);
    if (rc < 0) {
        json_decref(tool);
        json_decref(net);
        json_decref(cred);
        return rc;
    }
    json_t *m = json_pack("{s:o, s:o, s:o, s:o}", "tool", tool, "network", net, "credentials", cred,
                          "resources", res);
    /* The schemas are opaque to us; null means absent, as in the reference. */
    static const char *const schemas[] = {"input_schema", "output_schema"};
    for (size_t i = 0; i < CB_ARRAY_LEN(schemas); i++) {
        json_t *s = json_object_get(in, schemas[i]);
        if (s != NULL && !json_is_null(s))
            json_object_set_new(m, schemas[i], json_deep_copy(s));
    }
    *out = m;
    return 0;
}

/* One validator for allowlist entries, shared with the proxy. */
static int check_allow_entry(const json_t *v, bool allow_wildcard_all, struct cb_error *err)
{
    return cb_proxy_allowlist_entry_check(json_string_value(v), json_string_length(v),
                                          allow_wildcard_all, err);
}

static const json_t *allowlist_of(const json_t *m)
{
    return json_object_get(json_object_get(m, "network"), "allowlist");
}

/* Checks the values of a normalised manifest. */
static int check_values(const json_t *m, bool allow_wildcard_all, struct cb_error *err)
{
    json_t *name = json_object_get(json_object_get(m, "tool"), "name");
    if (!cb_json_plain_string(name) || !cb_tool_name_valid(json_string_value(name)))
        return cb_error_set(err, -EINVAL,
                            "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only");
    size_t i;
    json_t *item;
    json_array_foreach(allowlist_of(m), i, item)
    {
        int rc = check_allow_entry(item, allow_wildcard_all, err);
        if (rc < 0) {
            cb_error_prefix(err, "network.allowlist[%zu]", i);
            return rc;
        }
    }
    return 0;
}

/* The manifest and what it owns; pub's pointers point into these. */
struct manifest_obj {
    struct cb_manifest pub;
    atomic_uint refs;
    json_t *doc;
    struct cb_proxy_allowlist *allowlist;
    const char **credentials;
    char *origin;
};

static struct manifest_obj *manifest_obj_of(struct cb_manifest *m)
{
    return (struct manifest_obj *)((char *)m - offsetof(struct manifest_obj, pub));
}

static uint64_t resource(const json_t *res, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(res, key));
}

/* Fills the typed fields from doc (validated, normalised). */
static int build_fields(struct manifest_obj *o, struct cb_error *err)
{
    struct cb_manifest *m = &o->pub;
    const json_t *doc = o->doc, *net = json_object_get(doc, "network");
    const json_t *allow = allowlist_of(doc);
    m->doc = doc;
    m->name = json_string_value(json_object_get(json_object_get(doc, "tool"), "name"));
    m->max_concurrent = (uint64_t)json_integer_value(json_object_get(net, "max_concurrent"));
    const json_t *avail = json_object_get(json_object_get(doc, "credentials"), "available");
    size_t n = json_array_size(avail);
    o->credentials = cb_xcalloc(n ? n : 1, sizeof(*o->credentials));
    for (size_t i = 0; i < n; i++)
        o->credentials[i] = json_string_value(json_array_get(avail, i));
    m->credentials = o->credentials;
    m->n_credentials = n;
    const json_t *res = json_object_get(doc, "resources");
    m->resources = (struct cb_manifest_resources){
        .default_timeout_ms = resource(res, "default_timeout_ms"),
        .max_timeout_ms = resource(res, "max_timeout_ms"),
        .default_memory_mb = resource(res, "default_memory_mb"),
        .max_memory_mb = resource(res, "max_memory_mb"),
    };
    m->input_schema = json_object_get(doc, "input_schema");
    m->output_schema = json_object_get(doc, "output_schema");
    n = json_array_size(allow);
    if (n == 0)
        return 0;
    const char **entries = cb_xcalloc(n, sizeof(*entries));
    for (size_t i = 0; i < n; i++)
        entries[i] = json_string_value(json_array_get(allow, i));
    int rc = cb_proxy_allowlist_new((char *const *)entries, n, &o->allowlist, err);
    free(entries);
    m->allowlist = o->allowlist;
    return rc;
}

/* A manifest around doc (validated and normalised; stolen). */
static int build_manifest(json_t *doc, struct cb_manifest **out, struct cb_error *err)
{
    struct manifest_obj *o = cb_xcalloc(1, sizeof(*o));
    atomic_init(&o->refs, 1);
    o->doc = doc;
    o->pub.origin = CB_MANIFEST_ORIGIN_API;
    int rc = build_fields(o, err);
    if (rc < 0) {
        cb_manifest_unref(&o->pub);
        return rc;
    }
    *out = &o->pub;
    return 0;
}

int cb_manifest_parse(const json_t *in, bool allow_wildcard_all, struct cb_manifest **out,
                      struct cb_error *err)
{
    json_t *m = NULL;
    *out = NULL;
    int rc = normalize_shape(in, &m, err);
    if (rc < 0)
        return rc;
    rc = check_values(m, allow_wildcard_all, err);
    if (rc < 0) {
        json_decref(m);
        return rc;
    }
    return build_manifest(m, out, err);
}

struct cb_manifest *cb__manifest_auto(const char *name)
{
    json_t *doc = json_pack("{s:{s:s, s:s, s:s}, s:n, s:n, s:n}", "tool", "name", name,
                            "description", "Auto-loaded WASM tool", "version", "0.0.0", "network",
                            "credentials", "resources");
    struct cb_manifest *m = NULL;
    if (build_manifest(doc, &m, NULL) < 0)
        abort(); /* no allowlist to compile: it cannot fail */
    cb_manifest_set_origin(m, CB_MANIFEST_ORIGIN_AUTO);
    return m;
}

void cb_manifest_set_origin(struct cb_manifest *m, const char *origin)
{
    struct manifest_obj *o = manifest_obj_of(m);
    free(o->origin);
    o->origin = cb_xstrdup(origin);
    m->origin = o->origin;
}

struct cb_manifest *cb_manifest_ref(struct cb_manifest *m)
{
    atomic_fetch_add_explicit(&manifest_obj_of(m)->refs, 1, memory_order_relaxed);
    return m;
}

void cb_manifest_unref(struct cb_manifest *m)
{
    if (m == NULL)
        return;
    struct manifest_obj *o = manifest_obj_of(m);
    if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
        return;
    cb_proxy_allowlist_free(o->allowlist);
    free(o->credentials);
    free(o->origin);
    json_decref(o->doc);
    free(o);
}

bool cb_manifest_has_credential(const struct cb_manifest *m, const char *name)
{
    for (size_t i = 0; name != NULL && i < m->n_credentials; i++)
        if (strcmp(m->credentials[i], name) == 0)
            return true;
    return false;
}

const json_t *cb_manifest_doc_credentials(const json_t *doc)
{
    return json_object_get(json_object_get(doc, "credentials"), "available");
}

/* A manifest error that names the field but quotes nothing from the file:
 * validation messages may quote a value (an allowlist entry), so on a bad
 * value this finds the field again by validating each candidate alone. */
static int file_error(const json_t *in, bool allow_wildcard_all, int rc, struct cb_error *err)
{
    if (rc != -EINVAL)
        return rc; /* shape errors name only fields and types */
    json_t *tool = json_object_get(in, "tool");
    if (!cb_tool_name_valid(json_string_value(json_object_get(tool, "name"))))
        return cb_error_set(err, rc, "tool.name is not a valid tool name");
    size_t i;
    json_t *entry;
    json_array_foreach(allowlist_of(in), i, entry)
    {
        struct cb_error ignored = {0};
        int bad = check_allow_entry(entry, allow_wildcard_all, &ignored);
        if (bad < 0 && strcmp(json_string_value(entry), "*") == 0)
            return cb_error_set(err, rc,
                                "network.allowlist[%zu] is \"*\", which needs "
                                "proxy.allow_wildcard_all = true",
                                i);
        if (bad < 0)
            return cb_error_set(err, rc, "network.allowlist[%zu] is not a valid entry", i);
    }
    return cb_error_set(err, rc, "a field has an invalid value");
}

int cb__manifest_parse_file(const char *text, size_t len, bool allow_wildcard_all,
                            struct cb_manifest **out, struct cb_error *err)
{
    json_error_t jerr;
    *out = NULL;
    json_t *in = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL)
        return cb_error_set(err, -EBADMSG, "%s at line %d, column %d", cb__json_problem(&jerr),
                            jerr.line, jerr.column);
    int rc = cb_manifest_parse(in, allow_wildcard_all, out, err);
    if (rc < 0)
        rc = file_error(in, allow_wildcard_all, rc, err);
    json_decref(in);
    return rc;
}
