/* The tool registry's table of loaded tools and its manifests.
 *
 * Loaded tools are a sorted array of slots under r->lock. A slot's tool
 * object is never modified once published: a reload or a registration
 * builds a new object and swaps it in, so a caller holding a reference
 * keeps a consistent (name, so_path, manifest) for as long as it likes.
 *
 * A manifest registered through the API is bound to the SHA-256 of the
 * module that was loaded when it was registered. It grants an allowlist
 * and credentials to that code only: a different module installed later
 * under the same name gets its file or automatic manifest until someone
 * registers a manifest for it; the registration stays stored, and applies
 * again if the module it was made for comes back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "sandbox/registry/internal.h"
#include "state/state.h"

#define FAIL_SERIES_MAX 256

struct tool_obj {
    struct cb_tool pub;
    atomic_uint refs;
};

static struct tool_obj *obj_of(struct cb_tool *t)
{
    return (struct tool_obj *)((char *)t - offsetof(struct tool_obj, pub));
}

/* A new tool with one reference; takes over the caller's reference to
 * manifest. */
static struct cb_tool *tool_new(const char *name, const char *so_path, const char *sha256,
                                struct cb_manifest *manifest)
{
    struct tool_obj *o = cb_xcalloc(1, sizeof(*o));
    o->pub.name = cb_xstrdup(name);
    o->pub.so_path = cb_xstrdup(so_path);
    o->pub.manifest = manifest;
    snprintf(o->pub.sha256, sizeof(o->pub.sha256), "%s", sha256);
    atomic_init(&o->refs, 1);
    return &o->pub;
}

struct cb_tool *cb__tool_ref(struct cb_tool *t)
{
    atomic_fetch_add_explicit(&obj_of(t)->refs, 1, memory_order_relaxed);
    return t;
}

void cb_tool_unref(struct cb_tool *t)
{
    if (t == NULL)
        return;
    struct tool_obj *o = obj_of(t);
    if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* The .so stays: the compile cache is content-addressed and shared. */
    free(t->name);
    free(t->so_path);
    cb_manifest_unref(t->manifest);
    free(o);
}

static int slot_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct cb__slot *)elem)->tool->name);
}

/* Returns the slot of name or NULL; caller holds r->lock. */
struct cb__slot *cb__registry_find(struct cb_registry *r, const char *name)
{
    if (r->n_slots == 0)
        return NULL; /* bsearch wants a non-NULL base */
    return bsearch(name, r->slots, r->n_slots, sizeof(*r->slots), slot_cmp);
}

/* Index where name is or would be inserted; caller holds r->lock. */
static size_t slot_index(const struct cb_registry *r, const char *name)
{
    size_t lo = 0, hi = r->n_slots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->slots[mid].tool->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void update_gauge(struct cb_registry *r)
{
    if (r->loaded_gauge != NULL)
        cb_metric_set(r->loaded_gauge, NULL, (double)r->n_slots);
}

/* The registration of name, or NULL. Caller holds r->lock (or is open). */
static struct cb__registration *registration(struct cb_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_registered; i++)
        if (strcmp(r->registered[i].name, name) == 0)
            return &r->registered[i];
    return NULL;
}

/* Makes m (a reference stolen) the registered manifest of name, for the
 * module with this hash. */
static void set_registration(struct cb_registry *r, const char *name, struct cb_manifest *m,
                             const char *sha256)
{
    struct cb__registration *reg = registration(r, name);
    if (reg == NULL) {
        r->registered = cb_xrealloc(r->registered, (r->n_registered + 1) * sizeof(*r->registered));
        reg = &r->registered[r->n_registered++];
        reg->name = cb_xstrdup(name);
    } else {
        cb_manifest_unref(reg->manifest);
    }
    reg->manifest = m;
    snprintf(reg->sha256, sizeof(reg->sha256), "%s", sha256);
}

/* The registered manifest of name if it was registered for the module with
 * this hash, else NULL. Caller holds r->lock. */
static struct cb_manifest *registered_for(struct cb_registry *r, const char *name,
                                          const char *sha256)
{
    struct cb__registration *reg = registration(r, name);
    if (reg == NULL || strcmp(reg->sha256, sha256) != 0)
        return NULL;
    return reg->manifest;
}

/* Logs when name has a registered manifest, but for other code. */
static void warn_if_registered_elsewhere(struct cb_registry *r, const char *name,
                                         const char *sha256, bool file_m)
{
    const struct cb__registration *reg = registration(r, name);
    if (reg == NULL || strcmp(reg->sha256, sha256) == 0)
        return;
    const char *bound = reg->sha256;
    cb_log(CB_LOG_WARN,
           "tool %s: its registered manifest was for module sha256 %.12s, not this one (%.12s); "
           "using the %s manifest until a manifest is registered for this module",
           name, bound, sha256, file_m ? "file" : "automatic");
}

/* The manifest that applies to a tool (a new reference): registered (for this
 * module) beats file beats auto. */
static struct cb_manifest *effective_manifest(struct cb_registry *r, const char *name,
                                              const char *sha256, struct cb_manifest *file_m)
{
    struct cb_manifest *reg = registered_for(r, name, sha256);
    if (reg != NULL)
        return cb_manifest_ref(reg);
    if (file_m != NULL)
        return cb_manifest_ref(file_m);
    return cb__manifest_auto(name);
}

static struct cb__slot *insert_slot(struct cb_registry *r, struct cb_tool *t)
{
    if (r->n_slots == r->cap_slots) {
        r->cap_slots = r->cap_slots ? 2 * r->cap_slots : 16;
        r->slots = cb_xrealloc(r->slots, r->cap_slots * sizeof(*r->slots));
    }
    size_t i = slot_index(r, t->name);
    memmove(&r->slots[i + 1], &r->slots[i], (r->n_slots - i) * sizeof(*r->slots));
    r->n_slots++;
    memset(&r->slots[i], 0, sizeof(r->slots[i]));
    r->slots[i].tool = t;
    return &r->slots[i];
}

void cb__registry_install(struct cb_registry *r, const char *name, const char *so_path,
                          const char *sha256, const struct cb_file_stamp *stamp,
                          struct cb_manifest *file_m, bool quick)
{
    pthread_mutex_lock(&r->lock);
    struct cb_manifest *m = effective_manifest(r, name, sha256, file_m);
    struct cb__slot *s = cb__registry_find(r, name);
    if (s == NULL || strcmp(s->tool->sha256, sha256) != 0)
        warn_if_registered_elsewhere(r, name, sha256, file_m != NULL);
    if (s != NULL && strcmp(s->tool->so_path, so_path) == 0 &&
        strcmp(s->tool->sha256, sha256) == 0 && json_equal(s->tool->manifest->doc, m->doc)) {
        cb_manifest_unref(m); /* same version: keep the object callers may hold */
    } else {
        struct cb_tool *t = tool_new(name, so_path, sha256, m);
        if (s == NULL) {
            s = insert_slot(r, t);
        } else {
            cb_tool_unref(s->tool);
            s->tool = t;
        }
    }
    s->stamp = *stamp;
    s->file_manifest = file_m != NULL;
    s->quick = quick;
    update_gauge(r);
    pthread_mutex_unlock(&r->lock);
    cb_manifest_unref(file_m);
}

void cb__registry_unload(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    if (s != NULL) {
        size_t i = (size_t)(s - r->slots);
        cb_tool_unref(s->tool);
        memmove(&r->slots[i], &r->slots[i + 1], (r->n_slots - i - 1) * sizeof(*r->slots));
        r->n_slots--;
        update_gauge(r);
        cb_log(CB_LOG_INFO, "tool %s unloaded", name);
    }
    pthread_mutex_unlock(&r->lock);
}

struct cb_tool *cb_registry_get(struct cb_registry *r, const char *name)
{
    if (name == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    struct cb_tool *t = s ? cb__tool_ref(s->tool) : NULL;
    pthread_mutex_unlock(&r->lock);
    return t;
}

/* Whether name has a manifest a registration would replace. Following the
 * reference, the auto manifests of tools loaded at startup count; a tool
 * first loaded later by the watcher or a reload has none there (201). */
static bool has_manifest(struct cb_registry *r, const char *name, const struct cb__slot *s)
{
    return registered_for(r, name, s->tool->sha256) != NULL || s->file_manifest ||
           json_object_get(r->at_open, name) != NULL;
}

/* Makes m (a reference stolen) the registered manifest of name for the
 * module with this hash, and swaps in a tool object carrying it if that
 * module is the one loaded. A module replaced (or unloaded) since the
 * registration looked does not get it: the manifest stays stored for the
 * module it was made for. */
static void apply_registration(struct cb_registry *r, const char *name, struct cb_manifest *m,
                               const char *sha256, bool *created)
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    bool current = s != NULL && strcmp(s->tool->sha256, sha256) == 0;
    if (current)
        *created = !has_manifest(r, name, s);
    set_registration(r, name, m, sha256);
    if (current) {
        struct cb_tool *old = s->tool;
        s->tool = tool_new(name, old->so_path, old->sha256, cb_manifest_ref(m));
        cb_tool_unref(old);
    }
    pthread_mutex_unlock(&r->lock);
}

/* Copies the hash of the loaded module of name into sha256; false if no
 * module of that name is loaded. */
static bool loaded_sha256(struct cb_registry *r, const char *name, char sha256[65])
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = cb__registry_find(r, name);
    if (s != NULL)
        snprintf(sha256, 65, "%s", s->tool->sha256);
    pthread_mutex_unlock(&r->lock);
    return s != NULL;
}

static int persist(struct cb_registry *r, const char *name, const struct cb_manifest *m,
                   const char *sha256, struct cb_error *err)
{
    if (r->opts.state == NULL)
        return 0;
    _cleanup_free_ char *text = json_dumps(m->doc, JSON_COMPACT);
    int rc = cb_state_put_tool(r->opts.state, name, text, sha256, err);
    if (rc < 0)
        cb_error_prefix(err, "storing manifest of tool %s", name);
    return rc;
}

int cb_registry_register(struct cb_registry *r, const json_t *manifest, bool *created,
                         struct cb_error *err)
{
    struct cb_manifest *m;
    int rc = cb_manifest_parse(manifest, r->opts.allow_wildcard_all, &m, err);
    if (rc < 0)
        return rc;
    const char *name = m->name;
    char sha256[65] = "";
    pthread_mutex_lock(&r->reg_lock);
    if (!loaded_sha256(r, name, sha256))
        rc = cb_error_set(err, -ENOENT, "tool '%s' not loaded — register only loaded tools", name);
    if (rc == 0)
        rc = persist(r, name, m, sha256, err);
    bool c = false;
    if (rc == 0)
        apply_registration(r, name, cb_manifest_ref(m), sha256, &c);
    pthread_mutex_unlock(&r->reg_lock);
    if (rc == 0) {
        *created = c;
        cb_log(CB_LOG_INFO, "tool %s registered for module sha256 %.12s", name, sha256);
    }
    cb_manifest_unref(m);
    return rc;
}

int cb_registry_unregister(struct cb_registry *r, const char *name, struct cb_error *err)
{
    pthread_mutex_lock(&r->reg_lock);
    pthread_mutex_lock(&r->lock);
    bool had = registration(r, name) != NULL;
    pthread_mutex_unlock(&r->lock);
    int rc = had ? 0
                 : cb_error_set(err, -ENOENT,
                                "tool '%s' has no manifest registered through the API", name);
    if (rc == 0 && r->opts.state != NULL)
        rc = cb_state_delete(r->opts.state, CB_STATE_TOOLS, name, err);
    if (rc == 0) {
        pthread_mutex_lock(&r->lock);
        struct cb__registration *reg = registration(r, name);
        free(reg->name);
        cb_manifest_unref(reg->manifest);
        *reg = r->registered[--r->n_registered];
        pthread_mutex_unlock(&r->lock);
        /* The loaded module gets its file or automatic manifest back; an
         * unchanged file is not rebuilt. */
        struct cb_error ignored = {0};
        pthread_mutex_lock(&r->scan_lock);
        cb__registry_refresh_one(r, name, false, &ignored);
        pthread_mutex_unlock(&r->scan_lock);
        cb_log(CB_LOG_INFO, "tool %s unregistered: its file or automatic manifest applies", name);
    }
    pthread_mutex_unlock(&r->reg_lock);
    return rc;
}

const char *cb__manifest_source(struct cb_registry *r, const struct cb__slot *s)
{
    if (registered_for(r, s->tool->name, s->tool->sha256) != NULL)
        return "registered";
    return s->file_manifest ? "file" : "auto";
}

/* Loads one persisted manifest. A row that no longer validates (say "*"
 * after proxy.allow_wildcard_all was turned off) is ignored, so the tool
 * falls back to a deny-all manifest; the row stays for a later config. So
 * is a row without a module hash (stored before manifests were bound to
 * modules): nothing says which code it was granted to. */
static int load_persisted(const char *key, const char *json, const char *sha256, void *ud)
{
    struct cb_registry *r = ud;
    struct cb_error err = {0};
    json_error_t jerr;
    if (sha256 == NULL) {
        cb_log(CB_LOG_WARN,
               "ignoring stored manifest of tool %s: it is not bound to a module (stored by an "
               "older clawbox); register it again",
               key);
        return 0;
    }
    json_t *in = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    struct cb_manifest *m = NULL;
    int rc = in ? cb_manifest_parse(in, r->opts.allow_wildcard_all, &m, &err)
                : cb_error_set(&err, -EBADMSG, "%s at line %d, column %d", cb__json_problem(&jerr),
                               jerr.line, jerr.column);
    json_decref(in);
    if (rc == 0 && strcmp(m->name, key) != 0)
        rc = cb_error_set(&err, -EINVAL, "manifest names tool '%s'", m->name);
    if (rc < 0) {
        cb_log(CB_LOG_WARN, "ignoring stored manifest of tool %s: %s", key, err.msg);
        cb_manifest_unref(m);
        return 0;
    }
    set_registration(r, key, m, sha256);
    return 0;
}

static void copy_opts(struct cb_registry *r, const struct cb_registry_opts *opts)
{
    r->opts = *opts;
    r->opts.tool_dir = cb_xstrdup(opts->tool_dir ? opts->tool_dir : ".");
    r->opts.cache_dir = opts->cache_dir ? cb_xstrdup(opts->cache_dir) : NULL;
    if (r->opts.debounce_ms == 0)
        r->opts.debounce_ms = CB__REGISTRY_DEFAULT_DEBOUNCE_MS;
}

static void init_metrics(struct cb_registry *r)
{
    if (r->opts.metrics == NULL)
        return;
    r->loaded_gauge =
        cb_metrics_gauge(r->opts.metrics, "clawbox_tools_loaded", "WASM tools loaded.", NULL, 0);
    r->fail_counter =
        cb_metrics_counter(r->opts.metrics, "clawbox_tool_compile_failures_total",
                           "WASM modules that failed to load or compile.", "tool", FAIL_SERIES_MAX);
}

static void mark_loaded_at_open(struct cb_registry *r)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_slots; i++)
        json_object_set_new(r->at_open, r->slots[i].tool->name, json_true());
    pthread_mutex_unlock(&r->lock);
}

/* Compiles every module found in tool_dir at open. */
static void *initial_load(void *arg)
{
    struct cb_registry *r = arg;
    json_decref(cb__registry_scan(r));
    mark_loaded_at_open(r);
    update_gauge(r);
    cb__registry_set_ready(r);
    return NULL;
}

bool cb_registry_ready(struct cb_registry *r)
{
    return atomic_load(&r->ready);
}

int cb__registry_open_with(const struct cb_registry_opts *opts,
                           const struct cb__registry_loader *loader, struct cb_registry **out,
                           struct cb_error *err)
{
    struct cb_registry *r = cb_xcalloc(1, sizeof(*r));
    copy_opts(r, opts);
    r->loader = *loader;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->scan_lock, NULL);
    pthread_mutex_init(&r->reg_lock, NULL);
    pthread_mutex_init(&r->fail_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &ca);
    pthread_cond_init(&r->optimize_cond, &ca);
    pthread_condattr_destroy(&ca);
    r->pending = json_object();
    r->to_optimize = json_array();
    r->at_open = json_object();
    init_metrics(r);
    int rc = 0;
    if (r->opts.state != NULL)
        rc = cb_state_list_tools(r->opts.state, load_persisted, r, err);
    if (rc < 0) {
        cb_error_prefix(err, "loading tool manifests");
        goto fail;
    }
    if (r->opts.watch) {
        rc = cb__watch_start(r, &r->watch, err);
        if (rc < 0)
            goto fail;
    }
    if (!r->opts.load_in_background)
        initial_load(r);
    else if ((rc = pthread_create(&r->loader_thread, NULL, initial_load, r)) != 0) {
        rc = cb_error_set(err, -rc, "starting the tool loader thread: %s", strerror(rc));
        goto fail;
    } else
        r->has_loader = true;
    *out = r;
    return 0;
fail:
    cb_registry_close(r);
    return rc;
}

void cb_registry_close(struct cb_registry *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, true);
    cb__registry_optimizer_stop(r);
    if (r->has_loader)
        pthread_join(r->loader_thread, NULL);
    cb__registry_optimizer_stop(r); /* the loader may have started it meanwhile */
    cb__watch_stop(r->watch);
    cb__registry_free_failures(r);
    for (size_t i = 0; i < r->n_slots; i++)
        cb_tool_unref(r->slots[i].tool);
    free(r->slots);
    for (size_t i = 0; i < r->n_registered; i++) {
        free(r->registered[i].name);
        cb_manifest_unref(r->registered[i].manifest);
    }
    free(r->registered);
    json_decref(r->at_open);
    json_decref(r->pending);
    json_decref(r->to_optimize);
    pthread_cond_destroy(&r->changed);
    pthread_cond_destroy(&r->optimize_cond);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->scan_lock);
    pthread_mutex_destroy(&r->reg_lock);
    pthread_mutex_destroy(&r->fail_lock);
    free((char *)r->opts.tool_dir);
    free((char *)r->opts.cache_dir);
    free(r);
}

json_t *cb_registry_reload(struct cb_registry *r)
{
    return cb__registry_scan(r);
}
