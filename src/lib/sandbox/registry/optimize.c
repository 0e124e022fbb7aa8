/* The optimiser: a tool is first served from a quick (-O0) build, so that
 * a cold start serves every tool within seconds; this thread then rebuilds
 * each such module at -O2, one at a time and at a low priority, and swaps
 * the result in. A restart finds the -O2 object in the cache. A module
 * whose -O2 build runs out of its CPU budget or output limit is refused
 * then (and remembered, so a restart refuses it at once), as before the
 * quick tier: the budget is the -O2 build's. Another failure (the
 * wall-clock limit of a loaded machine) leaves the quick build. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "sandbox/registry/internal.h"

/* Whether the loaded version of name is still the quick build of sha. */
static bool still_quick(struct cb_registry *r, const char *name, const char *sha)
{
    pthread_mutex_lock(&r->lock);
    const struct cb__slot *s = cb__registry_find(r, name);
    bool yes = s != NULL && s->quick && strcmp(s->tool->sha256, sha) == 0;
    pthread_mutex_unlock(&r->lock);
    return yes;
}

/* Swaps in the optimised object of the module in b (or refuses the
 * module, after a failure that is its own), unless a scan has replaced the
 * tool meanwhile. Under scan_lock, so no scan races it; the load finds the
 * object, or the failure, in the cache. */
static void swap_in_optimized(struct cb_registry *r, const char *name, const struct cb_buf *b,
                              const char *sha, const struct cb_file_stamp *stamp, uint64_t t0)
{
    struct cb_error err = {0};
    char *so_path = NULL;
    bool quick = false;
    pthread_mutex_lock(&r->scan_lock);
    int rc = r->loader.load(r->loader.ud, &r->opts, (const uint8_t *)b->data, b->len, &so_path,
                            &quick, &err);
    if (!still_quick(r, name, sha)) {
        /* replaced or unloaded meanwhile: nothing to swap */
    } else if (rc < 0) {
        cb__registry_refuse(r, name, stamp, rc, &err);
    } else if (!quick) {
        cb__registry_install(r, name, so_path, sha, stamp, cb__registry_file_manifest(r, name),
                             false);
        cb_log(CB_LOG_INFO, "tool %s optimised (-O2 build in %" PRIu64 " ms)", name,
               (cb_now_mono_ns() - t0) / 1000000u);
    }
    pthread_mutex_unlock(&r->scan_lock);
    free(so_path);
}

static void optimize_one(struct cb_registry *r, const char *name)
{
    struct cb_error err = {0};
    struct cb_file_stamp stamp;
    struct cb_buf b;
    char sha[65] = "";
    uint64_t t0 = cb_now_mono_ns();
    int rc = cb__registry_read_module(r, name, &b, &stamp, sha, &err);
    if (rc == 0 && still_quick(r, name, sha)) {
        rc = r->loader.optimize(r->loader.ud, &r->opts, (const uint8_t *)b.data, b.len,
                                &r->stopping, &err);
        if (rc == 0 || rc == -ETIME || rc == -EFBIG)
            swap_in_optimized(r, name, &b, sha, &stamp, t0);
        else if (rc != -ECANCELED)
            cb_log(CB_LOG_WARN, "tool %s: the -O2 build failed, so it stays at its quick build: %s",
                   name, err.msg);
    }
    cb_buf_free(&b);
}

static void *optimizer_main(void *arg)
{
    struct cb_registry *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (json_array_size(r->to_optimize) == 0 && !atomic_load(&r->stopping))
            pthread_cond_wait(&r->optimize_cond, &r->lock);
        if (atomic_load(&r->stopping))
            break;
        char *name = cb_xstrdup(json_string_value(json_array_get(r->to_optimize, 0)));
        json_array_remove(r->to_optimize, 0);
        pthread_mutex_unlock(&r->lock);
        optimize_one(r, name);
        free(name);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static bool queued(const json_t *names, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(names, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

void cb__registry_optimize_later(struct cb_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    if (!atomic_load(&r->stopping) && !queued(r->to_optimize, name)) {
        json_array_append_new(r->to_optimize, json_string(name));
        if (!r->has_optimizer) {
            int rc = pthread_create(&r->optimizer, NULL, optimizer_main, r);
            r->has_optimizer = rc == 0;
            if (rc != 0)
                cb_log(CB_LOG_WARN,
                       "cannot start the tool optimiser: %s; tools stay at their "
                       "quick builds",
                       strerror(rc));
        }
        pthread_cond_signal(&r->optimize_cond);
    }
    pthread_mutex_unlock(&r->lock);
}

void cb__registry_optimizer_stop(struct cb_registry *r)
{
    pthread_mutex_lock(&r->lock);
    bool join = r->has_optimizer;
    r->has_optimizer = false;
    pthread_cond_broadcast(&r->optimize_cond);
    pthread_mutex_unlock(&r->lock);
    if (join)
        pthread_join(r->optimizer, NULL);
}
