/* An agent's lifecycle on the container manager: start and stop, its
 * status following its container (the manager's on_end), activity from
 * its proxy socket and execs (on_activity), and the reaper thread, which stops idle
 * agents, restarts crashed ones after their backoff and starts again those
 * that ran when the server last stopped. The lifetime is the container's
 * own timeout, enforced by the manager's watcher. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/internal.h"
#include "containers/manager.h"
#include "core/log.h"
#include "core/util.h"

#define OWNER_PREFIX     "agent:"
#define OWNER_MAX        (sizeof(OWNER_PREFIX) + CB_AGENT_ID_MAX)
#define BACKOFF_FIRST_MS 500u
#define BACKOFF_MAX_MS   60000u
#define REAPER_SLEEP_MS  60000u
#define REAPER_BATCH     16
#define LIFETIME_REACHED                                                                           \
    "its container reached its lifetime (lifecycle.max_lifetime_ms, at most [containers] "         \
    "max_timeout_ms)"
#define IDLE_REACHED      "stopped after lifecycle.max_idle_ms without activity"
#define CONTAINER_REMOVED "its container was killed and removed by DELETE /containers/{id}"

/* The wait before restart n + 1: 0.5 s, doubling, at most a minute. */
static uint64_t backoff_ms(uint32_t n)
{
    uint64_t ms = (uint64_t)BACKOFF_FIRST_MS << (n < 16 ? n : 16);
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* The agent a container belongs to, with a reference. Under the lock. */
static struct cb__agent *owner_find(struct cb_agents *a, const char *owner)
{
    size_t n = strlen(OWNER_PREFIX);
    if (owner == NULL || strncmp(owner, OWNER_PREFIX, n) != 0)
        return NULL;
    return cb__ag_find(a, owner + n);
}

static bool may_restart(const struct cb__agent *g)
{
    return g->cfg.lifecycle.restart_on_crash && g->restarts < g->cfg.lifecycle.max_restarts;
}

/* A container's end made the agent's status. Under the lock. */
static void apply_end(struct cb_agents *a, struct cb__agent *g, const char *status,
                      const char *error)
{
    g->container_id[0] = '\0';
    cb__ag_set_error(g, error);
    if (strcmp(status, "completed") == 0) {
        g->status = CB__AG_IDLE;
    } else if (strcmp(status, "timed_out") == 0) {
        g->status = CB__AG_TERMINATED;
        cb__ag_set_error(g, LIFETIME_REACHED);
    } else {
        g->status = CB__AG_FAILED;
        if (strcmp(status, "killed") == 0)
            cb__ag_set_error(g, CONTAINER_REMOVED);
        /* A crash, not a removal of its container by someone else. */
        if (strcmp(status, "failed") == 0 && may_restart(g)) {
            g->due_ms = cb_now_wall_ms() + backoff_ms(g->restarts);
            pthread_cond_signal(&a->wake);
        }
    }
}

static void on_end(void *ud, const struct cb_ct_end *end)
{
    struct cb_agents *a = ud;
    bool store = false;
    pthread_mutex_lock(&a->lock);
    struct cb__agent *g = owner_find(a, end->owner);
    if (g != NULL && g->status == CB__AG_RUNNING &&
        strcmp(g->container_id, end->container_id) == 0) {
        apply_end(a, g, end->status, end->error);
        store = true;
    } else if (g != NULL && g->status == CB__AG_STARTING && g->container_id[0] == '\0') {
        /* Ended before its start returned: the start applies it. */
        snprintf(g->early.container_id, sizeof(g->early.container_id), "%s", end->container_id);
        snprintf(g->early.status, sizeof(g->early.status), "%s", end->status);
        free(g->early.error);
        g->early.error = end->error ? cb_xstrdup(end->error) : NULL;
    }
    pthread_mutex_unlock(&a->lock);
    if (store)
        cb__ag_store(a, g, NULL);
    if (g != NULL)
        cb__ag_unref(a, g);
}

static void on_activity(void *ud, const char *owner, bool counted)
{
    struct cb_agents *a = ud;
    pthread_mutex_lock(&a->lock);
    struct cb__agent *g = owner_find(a, owner);
    /* Its container may make requests before its start has returned. */
    if (g != NULL && (g->status == CB__AG_RUNNING || g->status == CB__AG_STARTING)) {
        g->last_activity_ms = cb_now_wall_ms();
        g->execution_count += counted;
    }
    pthread_mutex_unlock(&a->lock);
    if (g != NULL)
        cb__ag_unref(a, g);
}

static void clear_early(struct cb__agent *g)
{
    free(g->early.error);
    memset(&g->early, 0, sizeof(g->early));
}

/* Whether a start may go ahead (under the lock): asked (a client's) from
 * idle, failed or terminated, or while a restart is only pending; the
 * reaper's when its due time has come. */
static int may_start(struct cb_agents *a, struct cb__agent *g, bool asked, struct cb_error *err)
{
    if (g->removed)
        return cb_error_set(err, -ENOENT, "agent not found: %s", g->cfg.id);
    if (a->closing)
        return cb_error_set(err, -ENODEV, "the server is shutting down");
    if (asked) {
        if (g->due_ms == 0 && (g->status == CB__AG_STARTING || g->status == CB__AG_RUNNING ||
                               g->status == CB__AG_STOPPING))
            return cb_error_set(err, -EBUSY, "invalid state: agent %s is %s", g->cfg.id,
                                cb__ag_status_name(g->status));
        g->restarts = 0;
        return 0;
    }
    if (g->due_ms == 0 || g->due_ms > cb_now_wall_ms())
        return -EALREADY; /* no longer due: nothing to do */
    if (g->status == CB__AG_FAILED)
        g->restarts++; /* a restart after a crash; a recovery start is not one */
    return 0;
}

static int spawn_agent(struct cb_agents *a, struct cb__agent *g, uint32_t base,
                       const char *request_id, json_t **info, struct cb_error *err)
{
    int fd = cb_agent_workspace_reopen(a->cfg->containers.workspace_root, g->workspace_path,
                                       g->cfg.workspace.host_path == NULL, err);
    if (fd == -ENOENT) /* a host_path removed since: the agent's to fix, not a 404 */
        return err->code = -EINVAL;
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&a->lock);
    int rc = cb__ag_check_foreign(a, g, g->workspace_path, err);
    pthread_mutex_unlock(&a->lock);
    if (rc == 0 && base == 0)
        rc = cb_error_set(err, -EINVAL,
                          "agent %s has no host id range below 2^32 (lower [containers] "
                          "userns_base)",
                          g->cfg.id);
    char owner[OWNER_MAX];
    snprintf(owner, sizeof(owner), OWNER_PREFIX "%s", g->cfg.id);
    const struct cb_agent_lifecycle *l = &g->cfg.lifecycle;
    struct cb_ct_bind bind = {fd, g->cfg.workspace.mount_point, g->cfg.workspace.read_only};
    struct cb_ct_spawn_opts o = {
        .owner = owner,
        .bind = &bind,
        .host_id_base = base,
        /* Without a lifetime, the server's longest: a container always ends. */
        .timeout_ms = l->max_lifetime_ms ? l->max_lifetime_ms : a->cfg->containers.max_timeout_ms,
        .idle_init = json_object_get(g->cfg.spawn, "command") == NULL,
        .on_end = on_end,
        .on_activity = on_activity,
        .ud = a,
    };
    if (rc == 0)
        rc = cb_ct_spawn(a->ct, g->cfg.spawn, request_id, &o, info, err);
    if (rc == -ENOENT) /* the agent exists: whatever was missing is no 404 */
        rc = err->code = -EIO;
    close(fd);
    return rc;
}

/* Starts g (its op lock held). asked: a client's start; else the
 * reaper's restart or recovery start, which happens only when due. */
static int start_locked(struct cb_agents *a, struct cb__agent *g, bool asked,
                        const char *request_id, struct cb_error *err)
{
    pthread_mutex_lock(&a->lock);
    int rc = may_start(a, g, asked, err);
    if (rc == 0) {
        g->status = CB__AG_STARTING;
        g->due_ms = 0;
        g->container_id[0] = '\0';
        clear_early(g);
        cb__ag_set_error(g, NULL);
    }
    uint32_t base = cb_ct_owner_id_base(a->cfg, g->id_range);
    pthread_mutex_unlock(&a->lock);
    if (rc < 0)
        return rc;
    json_t *info = NULL;
    rc = spawn_agent(a, g, base, request_id, &info, err);
    pthread_mutex_lock(&a->lock);
    if (rc == 0) {
        const char *id = json_string_value(json_object_get(info, "container_id"));
        snprintf(g->container_id, sizeof(g->container_id), "%s", id ? id : "");
        g->status = CB__AG_RUNNING;
        g->last_activity_ms = cb_now_wall_ms();
        g->execution_count++;
        if (strcmp(g->early.container_id, g->container_id) == 0)
            apply_end(a, g, g->early.status, g->early.error);
        pthread_cond_signal(&a->wake); /* its idle deadline */
    } else {
        g->status = asked ? CB__AG_IDLE : CB__AG_FAILED;
        cb__ag_set_error(g, err->msg);
        if (!asked && g->restarts > 0 && may_restart(g))
            g->due_ms = cb_now_wall_ms() + backoff_ms(g->restarts);
    }
    clear_early(g);
    pthread_mutex_unlock(&a->lock);
    json_decref(info);
    cb__ag_store(a, g, NULL);
    return rc;
}

/* Removes the container `id`, which has been killed or has ended. */
static void remove_container(struct cb_agents *a, const char *id, const char *request_id)
{
    struct cb_error err = {0};
    json_t *out = NULL;
    if (cb_ct_delete(a->ct, id, request_id, &out, &err) < 0 && err.code != -ENOENT)
        cb_log(CB_LOG_WARN, "agent container %s: %s", id, err.msg);
    json_decref(out);
}

/* Stops g (its op lock held). want_ct: the reaper's idle stop, of that
 * container and only if it is still idle (no activity since, and no exec
 * running in it, however long); NULL: a client's stop. */
static int stop_locked(struct cb_agents *a, struct cb__agent *g, const char *want_ct,
                       const char *request_id, struct cb_error *err)
{
    char ct[CB__AG_CT_ID_MAX];
    bool busy = want_ct != NULL && cb_ct_execs_running(a->ct, want_ct) > 0;
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    uint64_t now = cb_now_wall_ms();
    bool pending = g->due_ms != 0 && want_ct == NULL && !g->removed;
    if (g->removed)
        rc = cb_error_set(err, -ENOENT, "agent not found: %s", g->cfg.id);
    else if (pending) /* a restart or recovery start not yet made: cancelled */
        g->due_ms = 0;
    else if (g->status != CB__AG_RUNNING)
        rc = cb_error_set(err, -EBUSY, "invalid state: agent %s is %s", g->cfg.id,
                          cb__ag_status_name(g->status));
    else if (want_ct != NULL && busy && strcmp(want_ct, g->container_id) == 0) {
        g->last_activity_ms = now; /* a running exec is activity: the reaper looks again later */
        rc = -EALREADY;
    } else if (want_ct != NULL && (strcmp(want_ct, g->container_id) != 0 ||
                                   g->last_activity_ms + g->cfg.lifecycle.max_idle_ms > now))
        rc = -EALREADY; /* active again, or another container */
    if (rc == 0 && !pending) {
        g->status = CB__AG_STOPPING;
        memcpy(ct, g->container_id, sizeof(ct));
    }
    if (pending) {
        g->status = CB__AG_IDLE;
        cb__ag_set_error(g, NULL);
    }
    pthread_mutex_unlock(&a->lock);
    if (rc < 0)
        return rc;
    if (!pending)
        remove_container(a, ct, request_id);
    pthread_mutex_lock(&a->lock);
    g->status = CB__AG_IDLE;
    g->container_id[0] = '\0';
    cb__ag_set_error(g, want_ct ? IDLE_REACHED : NULL);
    if (want_ct == NULL)
        g->last_activity_ms = cb_now_wall_ms();
    pthread_mutex_unlock(&a->lock);
    cb__ag_store(a, g, NULL);
    return 0;
}

void cb__ag_stop_for_delete(struct cb_agents *a, struct cb__agent *g)
{
    char ct[CB__AG_CT_ID_MAX];
    pthread_mutex_lock(&a->lock);
    memcpy(ct, g->container_id, sizeof(ct));
    g->due_ms = 0;
    if (ct[0] != '\0')
        g->status = CB__AG_STOPPING;
    pthread_mutex_unlock(&a->lock);
    if (ct[0] != '\0')
        remove_container(a, ct, NULL);
}

typedef int (*agent_op)(struct cb_agents *a, struct cb__agent *g, const char *request_id,
                        struct cb_error *err);

static int asked_start(struct cb_agents *a, struct cb__agent *g, const char *request_id,
                       struct cb_error *err)
{
    return start_locked(a, g, true, request_id, err);
}

static int asked_stop(struct cb_agents *a, struct cb__agent *g, const char *request_id,
                      struct cb_error *err)
{
    return stop_locked(a, g, NULL, request_id, err);
}

/* A client's operation on agent id, serialised with every other one on
 * it; *info: the AgentInfo after it. */
static int run_op(struct cb_agents *a, const char *id, agent_op op, const char *request_id,
                  json_t **info, struct cb_error *err)
{
    pthread_mutex_lock(&a->lock);
    struct cb__agent *g = cb__ag_find(a, id);
    pthread_mutex_unlock(&a->lock);
    if (g == NULL)
        return cb_error_set(err, -ENOENT, "agent not found: %s", id);
    pthread_mutex_lock(&g->op);
    int rc = op(a, g, request_id, err);
    pthread_mutex_unlock(&g->op);
    if (rc == 0) {
        pthread_mutex_lock(&a->lock);
        *info = cb__ag_info(g);
        pthread_mutex_unlock(&a->lock);
    }
    cb__ag_unref(a, g);
    return rc;
}

int cb_agents_start(struct cb_agents *a, const char *id, const char *request_id, json_t **info,
                    struct cb_error *err)
{
    return run_op(a, id, asked_start, request_id, info, err);
}

int cb_agents_stop(struct cb_agents *a, const char *id, const char *request_id, json_t **info,
                   struct cb_error *err)
{
    return run_op(a, id, asked_stop, request_id, info, err);
}

/* ---- the reaper ---- */

struct agent_due {
    struct cb__agent *g; /* referenced */
    char ct[CB__AG_CT_ID_MAX];
    bool start; /* else an idle stop of ct */
};

/* What is due now, and until when to sleep otherwise. Under the lock. */
static size_t collect(struct cb_agents *a, struct agent_due *d, uint64_t *next)
{
    uint64_t now = cb_now_wall_ms();
    size_t n = 0;
    *next = now + REAPER_SLEEP_MS;
    for (size_t i = 0; i < a->n && n < REAPER_BATCH; i++) {
        struct cb__agent *g = a->v[i];
        uint64_t at = 0;
        bool start = g->due_ms != 0;
        if (start)
            at = g->due_ms;
        else if (g->status == CB__AG_RUNNING && g->container_id[0] != '\0')
            at = g->last_activity_ms + g->cfg.lifecycle.max_idle_ms;
        else
            continue;
        if (at > now) {
            *next = at < *next ? at : *next;
            continue;
        }
        cb__ag_ref(g);
        d[n] = (struct agent_due){.g = g, .start = start};
        memcpy(d[n].ct, g->container_id, sizeof(d[n].ct));
        n++;
    }
    return n;
}

static void agent_act(struct cb_agents *a, struct agent_due *d)
{
    struct cb_error err = {0};
    pthread_mutex_lock(&d->g->op);
    int rc = d->start ? start_locked(a, d->g, false, NULL, &err)
                      : stop_locked(a, d->g, d->ct, NULL, &err);
    pthread_mutex_unlock(&d->g->op);
    if (rc < 0 && rc != -EALREADY)
        cb_log(CB_LOG_WARN, "agent %s: %s failed: %s", d->g->cfg.id,
               d->start ? "starting it again" : "stopping it when idle", err.msg);
    else if (rc == 0)
        cb_log(CB_LOG_INFO, "agent %s: %s", d->g->cfg.id,
               d->start ? "started again" : "stopped after max_idle_ms");
    cb__ag_unref(a, d->g);
}

static void *reap(void *arg)
{
    struct cb_agents *a = arg;
    struct agent_due d[REAPER_BATCH];
    pthread_mutex_lock(&a->lock);
    while (!a->closing) {
        uint64_t next;
        size_t n = collect(a, d, &next);
        if (n == 0) {
            uint64_t now = cb_now_wall_ms();
            struct timespec until = cb_mono_deadline(next > now ? next - now : 0);
            pthread_cond_timedwait(&a->wake, &a->lock, &until);
            continue;
        }
        pthread_mutex_unlock(&a->lock);
        for (size_t i = 0; i < n; i++)
            agent_act(a, &d[i]);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

int cb__ag_reaper_start(struct cb_agents *a, struct cb_error *err)
{
    int r = pthread_create(&a->reaper, NULL, reap, a);
    if (r != 0)
        return cb_error_set(err, -r, "agent reaper: %s", strerror(r));
    a->reaping = true;
    return 0;
}

void cb_agents_shutdown(struct cb_agents *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->closing = true;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    if (a->reaping)
        pthread_join(a->reaper, NULL);
    a->reaping = false;
}
