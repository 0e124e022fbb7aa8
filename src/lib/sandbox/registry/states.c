/* What state each tool is in: ready (loaded), compiling (queued or being
 * built with no version loaded yet) or failed (its last build failed and
 * no version is loaded); listing and describing tools with it, and waiting
 * for a compiling tool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "sandbox/manifest.h"
#include "sandbox/registry/internal.h"

void cb__registry_pending_add(struct cb_registry *r, char *const *names, size_t n)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++)
        json_object_set_new(r->pending, names[i], json_true());
    pthread_mutex_unlock(&r->lock);
}

void cb__registry_pending_done(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    json_object_del(r->pending, name);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

void cb__registry_set_ready(struct cb_registry *r)
{
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->ready, true);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

/* Whether name may still appear: it is queued or compiling, or the modules
 * found at open are not all listed yet. Caller holds r->lock. */
static bool may_come(struct cb_registry *r, const char *name)
{
    return json_object_get(r->pending, name) != NULL || !atomic_load(&r->ready);
}

struct cb_tool *cb_registry_get_wait(struct cb_registry *r, const char *name, uint64_t timeout_ms)
{
    if (name == NULL)
        return NULL;
    struct timespec deadline = cb_mono_deadline(timeout_ms);
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s;
    while ((s = cb__registry_find(r, name)) == NULL && may_come(r, name) &&
           !atomic_load(&r->stopping))
        if (pthread_cond_timedwait(&r->changed, &r->lock, &deadline) == ETIMEDOUT)
            break;
    s = cb__registry_find(r, name);
    struct cb_tool *t = s ? cb__tool_ref(s->tool) : NULL;
    pthread_mutex_unlock(&r->lock);
    return t;
}

bool cb_registry_compiling(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    bool c = cb__registry_find(r, name) == NULL && may_come(r, name);
    pthread_mutex_unlock(&r->lock);
    return c;
}

bool cb_registry_failure(struct cb_registry *r, const char *name, char *msg, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&r->lock);
    pthread_mutex_lock(&r->fail_lock);
    for (size_t i = 0; !found && i < r->n_failures; i++) {
        const struct cb__failure *f = &r->failures[i];
        found = strcmp(f->name, name) == 0 && cb__registry_find(r, name) == NULL &&
                json_object_get(r->pending, name) == NULL;
        if (found)
            snprintf(msg, cap, "%s", f->msg);
    }
    pthread_mutex_unlock(&r->fail_lock);
    pthread_mutex_unlock(&r->lock);
    return found;
}

static json_t *placeholder(const char *name, const char *state)
{
    return json_pack("{s:{s:s}, s:s}", "tool", "name", name, "state", state);
}

/* Appends the failed tools that have no version loaded. Caller holds
 * r->lock; takes r->fail_lock (the order scan.c's jobs never invert: they
 * take fail_lock alone). */
static size_t add_failed(struct cb_registry *r, json_t *out)
{
    size_t n = 0;
    pthread_mutex_lock(&r->fail_lock);
    for (size_t i = 0; i < r->n_failures; i++) {
        const struct cb__failure *f = &r->failures[i];
        if (cb__registry_find(r, f->name) != NULL || json_object_get(r->pending, f->name))
            continue;
        n++;
        if (out == NULL)
            continue;
        json_t *p = placeholder(f->name, "failed");
        json_object_set_new(p, "error", json_string(f->msg));
        json_array_append_new(out, p);
    }
    pthread_mutex_unlock(&r->fail_lock);
    return n;
}

/* A loaded tool as listed: its manifest, "state": "ready" and where the
 * manifest came from. Caller holds r->lock. */
static json_t *ready_entry(struct cb_registry *r, const struct cb__slot *s)
{
    json_t *m = json_deep_copy(s->tool->manifest->doc);
    json_object_set_new(m, "state", json_string("ready"));
    json_object_set_new(m, "manifest_source", json_string(cb__manifest_source(r, s)));
    return m;
}

json_t *cb_registry_describe(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    struct cb__slot *s = name ? cb__registry_find(r, name) : NULL;
    json_t *d = s ? ready_entry(r, s) : NULL;
    if (s != NULL) {
        json_object_set_new(d, "sha256", json_string(s->tool->sha256));
        json_object_set_new(d, "manifest_file",
                            json_sprintf("%s/%s.json", r->opts.tool_dir, s->tool->name));
    }
    pthread_mutex_unlock(&r->lock);
    return d;
}

/* Counts (and appends to out, when not NULL) the tools in each state.
 * Caller holds r->lock. */
static struct cb_registry_counts list_states_locked(struct cb_registry *r, json_t *out)
{
    struct cb_registry_counts c = {.ready = r->n_slots};
    for (size_t i = 0; out != NULL && i < r->n_slots; i++)
        json_array_append_new(out, ready_entry(r, &r->slots[i]));
    const char *name;
    json_t *v;
    json_object_foreach(r->pending, name, v)
    {
        if (cb__registry_find(r, name) != NULL)
            continue;
        c.compiling++;
        if (out != NULL)
            json_array_append_new(out, placeholder(name, "compiling"));
    }
    c.failed = add_failed(r, out);
    return c;
}

json_t *cb_registry_manifests(struct cb_registry *r)
{
    json_t *a = json_array();
    pthread_mutex_lock(&r->lock);
    list_states_locked(r, a);
    pthread_mutex_unlock(&r->lock);
    return a;
}

struct cb_registry_counts cb_registry_counts(struct cb_registry *r)
{
    pthread_mutex_lock(&r->lock);
    struct cb_registry_counts c = list_states_locked(r, NULL);
    pthread_mutex_unlock(&r->lock);
    return c;
}
