/* The agent table: an array sorted by id under the table lock, each entry
 * mirrored by a row of the state database's agents table. A row is written
 * before the answer that acknowledges it, so a registered agent survives
 * any crash after its 201. */
#include "agents/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/config.h"
#include "agents/internal.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state.h"

static const char *const agent_status_names[] = {
    [CB__AG_IDLE] = "idle",       [CB__AG_STARTING] = "starting",
    [CB__AG_RUNNING] = "running", [CB__AG_STOPPING] = "stopping",
    [CB__AG_FAILED] = "failed",   [CB__AG_TERMINATED] = "terminated",
};

const char *cb__ag_status_name(enum cb__ag_status s)
{
    return agent_status_names[s];
}

static enum cb__ag_status status_parse(const char *s)
{
    for (size_t i = 0; s != NULL && i < CB_ARRAY_LEN(agent_status_names); i++)
        if (strcmp(s, agent_status_names[i]) == 0)
            return (enum cb__ag_status)i;
    return CB__AG_IDLE;
}

static void agent_free(struct cb__agent *g)
{
    if (g == NULL)
        return;
    cb_agent_config_clear(&g->cfg);
    free(g->error);
    free(g->early.error);
    pthread_mutex_destroy(&g->op);
    pthread_mutex_destroy(&g->store_lock);
    free(g);
}

static struct cb__agent *agent_new(void)
{
    struct cb__agent *g = cb_xcalloc(1, sizeof(*g));
    pthread_mutex_init(&g->op, NULL);
    pthread_mutex_init(&g->store_lock, NULL);
    g->refs = 1; /* the table's */
    return g;
}

void cb__ag_set_error(struct cb__agent *g, const char *msg)
{
    free(g->error);
    g->error = msg ? cb_xstrdup(msg) : NULL;
}

/* The index of id, or where it would go (then *found is false). */
static size_t find_agent(const struct cb_agents *a, const char *id, bool *found)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->v[mid]->cfg.id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct cb__agent *cb__ag_find(struct cb_agents *a, const char *id)
{
    bool found;
    size_t i = find_agent(a, id, &found);
    if (!found)
        return NULL;
    a->v[i]->refs++;
    return a->v[i];
}

void cb__ag_ref(struct cb__agent *g)
{
    g->refs++;
}

void cb__ag_unref(struct cb_agents *a, struct cb__agent *g)
{
    pthread_mutex_lock(&a->lock);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&a->lock);
    if (last)
        agent_free(g);
}

static void insert_at(struct cb_agents *a, size_t i, struct cb__agent *g)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = cb_xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    memmove(&a->v[i + 1], &a->v[i], (a->n - i) * sizeof(*a->v));
    a->v[i] = g;
    a->n++;
}

json_t *cb__ag_info(const struct cb__agent *g)
{
    char created[CB_RFC3339_LEN], active[CB_RFC3339_LEN];
    cb_rfc3339_ms(g->created_ms, created);
    cb_rfc3339_ms(g->last_activity_ms, active);
    return json_pack("{ss ss ss so ss ss sI ss sI so}", "agent_id", g->cfg.id, "name", g->cfg.name,
                     "status", cb__ag_status_name(g->status), "container_id",
                     g->container_id[0] ? json_string(g->container_id) : json_null(), "created_at",
                     created, "last_activity", active, "execution_count",
                     (json_int_t)g->execution_count, "workspace_path", g->workspace_path,
                     "restarts", (json_int_t)g->restarts, "error",
                     g->error ? json_string(g->error) : json_null());
}

/* The row: the configuration and what a restart must know. */
static char *row_text(const struct cb__agent *g)
{
    json_t *row = json_pack(
        "{so sI sI sI ss sI ss sI so}", "config", cb_agent_config_json(&g->cfg), "created_ms",
        (json_int_t)g->created_ms, "last_activity_ms", (json_int_t)g->last_activity_ms,
        "execution_count", (json_int_t)g->execution_count, "workspace_path", g->workspace_path,
        "id_range", (json_int_t)g->id_range, "status", cb__ag_status_name(g->status), "restarts",
        (json_int_t)g->restarts, "error", g->error ? json_string(g->error) : json_null());
    char *text = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    return text;
}

int cb__ag_store(struct cb_agents *a, struct cb__agent *g, struct cb_error *err)
{
    struct cb_error local = {0};
    err = err ? err : &local;
    pthread_mutex_lock(&g->store_lock);
    pthread_mutex_lock(&a->lock);
    bool gone = g->removed;
    char *text = gone ? NULL : row_text(g);
    pthread_mutex_unlock(&a->lock);
    int rc = 0;
    if (!gone)
        rc = text ? cb_state_put(a->db, CB_STATE_AGENTS, g->cfg.id, text, err)
                  : cb_error_set(err, -ENOMEM, "agent %s: out of memory", g->cfg.id);
    pthread_mutex_unlock(&g->store_lock);
    if (rc < 0)
        cb_log(CB_LOG_ERROR, "agent %s: its row was not stored: %s", g->cfg.id, err->msg);
    free(text);
    return rc;
}

int cb__ag_check_foreign(struct cb_agents *a, const struct cb__agent *g, const char *path,
                         struct cb_error *err)
{
    for (size_t i = 0; i < a->n + a->n_pending; i++) {
        const struct cb__agent *h = i < a->n ? a->v[i] : a->pending[i - a->n];
        if (h == g || strcmp(h->cfg.id, g->cfg.id) == 0 || h->workspace_path[0] == '\0')
            continue;
        if (h->cfg.workspace.host_path == NULL && cb_path_under(path, h->workspace_path))
            return cb_error_set(err, -EXDEV, "workspace %s is inside agent %s's workspace", path,
                                h->cfg.id);
        if (g->cfg.workspace.host_path == NULL && cb_path_under(h->workspace_path, path))
            return cb_error_set(err, -EXDEV, "workspace %s holds agent %s's workspace %s", path,
                                h->cfg.id, h->workspace_path);
    }
    return 0;
}

/* The smallest host id range no agent has, nor one being registered.
 * Under the table lock. */
static uint32_t free_range(const struct cb_agents *a)
{
    size_t n = a->n + a->n_pending;
    bool *used = cb_xcalloc(n + 1, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        uint32_t k = i < a->n ? a->v[i]->id_range : a->pending[i - a->n]->id_range;
        if (k <= n)
            used[k] = true;
    }
    uint32_t k = 0;
    while (used[k])
        k++;
    free(used);
    return k;
}

static uint64_t uint_of(const json_t *row, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(row, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* One stored row back into the table. A row this server cannot read (its
 * configuration checks changed) is logged and left in the database. An
 * agent that was starting or running is started again by the reaper;
 * one that was stopping is idle (its container is gone). */
static int load_row(const char *key, const char *text, void *ud)
{
    struct cb_agents *a = ud;
    struct cb_error err = {0};
    json_t *row = json_loads(text, 0, NULL);
    struct cb__agent *g = agent_new();
    const char *ws = json_string_value(json_object_get(row, "workspace_path"));
    bool found;
    if (row == NULL || ws == NULL || strlen(ws) >= sizeof(g->workspace_path))
        cb_error_set(&err, -EBADMSG, "malformed row");
    else if (cb_agent_config_parse(json_object_get(row, "config"), a->cfg, &g->cfg, &err) == 0 &&
             strcmp(g->cfg.id, key) != 0)
        cb_error_set(&err, -EBADMSG, "the row's agent_id is %s", g->cfg.id);
    if (err.code == 0) {
        g->created_ms = uint_of(row, "created_ms");
        g->last_activity_ms = uint_of(row, "last_activity_ms");
        g->execution_count = uint_of(row, "execution_count");
        g->restarts = (uint32_t)uint_of(row, "restarts");
        g->status = status_parse(json_string_value(json_object_get(row, "status")));
        const char *e = json_string_value(json_object_get(row, "error"));
        g->error = e ? cb_xstrdup(e) : NULL;
        memcpy(g->workspace_path, ws, strlen(ws) + 1);
        const json_t *range = json_object_get(row, "id_range");
        g->id_range = json_is_integer(range) ? (uint32_t)json_integer_value(range) : UINT32_MAX;
        if (g->status == CB__AG_STARTING || g->status == CB__AG_RUNNING) {
            g->status = CB__AG_STARTING;
            g->due_ms = cb_now_wall_ms();
        } else if (g->status == CB__AG_STOPPING) {
            g->status = CB__AG_IDLE;
        }
        size_t i = find_agent(a, g->cfg.id, &found);
        insert_at(a, i, g);
        g = NULL;
    } else {
        cb_log(CB_LOG_WARN, "agent %s in the state database is not loaded: %s", key, err.msg);
    }
    agent_free(g);
    json_decref(row);
    return 0;
}

/* Rows of an older server have no id range: each gets a free one. */
static void assign_ranges(struct cb_agents *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i]->id_range == UINT32_MAX) {
            a->v[i]->id_range = free_range(a);
            cb__ag_store(a, a->v[i], NULL);
        }
}

int cb_agents_open(struct cb_state *db, const struct cb_config *cfg, struct cb_ct_manager *ct,
                   struct cb_agents **out, struct cb_error *err)
{
    struct cb_agents *a = cb_xcalloc(1, sizeof(*a));
    a->db = db;
    a->cfg = cfg;
    a->ct = ct;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = cb_state_list(db, CB_STATE_AGENTS, load_row, a, err);
    if (rc == 0) {
        assign_ranges(a);
        rc = cb__ag_reaper_start(a, err);
    }
    if (rc < 0) {
        cb_agents_shutdown(a);
        cb_agents_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void cb_agents_free(struct cb_agents *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        agent_free(a->v[i]);
    free(a->v);
    free(a->pending);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    free(a);
}

/* Whether id is registered or being registered. Under the lock. */
static bool taken(const struct cb_agents *a, const char *id)
{
    bool found;
    find_agent(a, id, &found);
    for (size_t i = 0; i < a->n_pending && !found; i++)
        found = strcmp(a->pending[i]->cfg.id, id) == 0;
    return found;
}

static void unpend(struct cb_agents *a, const struct cb__agent *g)
{
    for (size_t i = 0; i < a->n_pending; i++)
        if (a->pending[i] == g) {
            a->pending[i] = a->pending[--a->n_pending];
            return;
        }
}

/* The id is reserved under the lock, and the slow part (the workspace, the
 * row's fsync) done without it, so that no other agent's operation waits
 * for a registration. */
int cb_agents_create(struct cb_agents *a, const json_t *body, json_t **out, struct cb_error *err)
{
    struct cb__agent *g = agent_new();
    int rc = cb_agent_config_parse(body, a->cfg, &g->cfg, err);
    if (rc < 0) {
        agent_free(g);
        return rc;
    }
    g->id_range = UINT32_MAX;
    pthread_mutex_lock(&a->lock);
    if (taken(a, g->cfg.id)) {
        pthread_mutex_unlock(&a->lock);
        cb_error_set(err, -EEXIST, "agent already exists: %s", g->cfg.id);
        agent_free(g);
        return -EEXIST;
    }
    a->pending = cb_xrealloc(a->pending, (a->n_pending + 1) * sizeof(*a->pending));
    a->pending[a->n_pending++] = g;
    pthread_mutex_unlock(&a->lock);
    char path[CB_AGENT_PATH_MAX];
    rc = cb_agent_workspace_open(a->cfg->containers.workspace_root, &g->cfg, path, err);
    if (rc >= 0) {
        close(rc);
        rc = 0;
    }
    pthread_mutex_lock(&a->lock);
    if (rc == 0) {
        memcpy(g->workspace_path, path, sizeof(path));
        rc = cb__ag_check_foreign(a, g, g->workspace_path, err);
    }
    if (rc == 0) {
        g->created_ms = g->last_activity_ms = cb_now_wall_ms();
        g->id_range = free_range(a);
    }
    char *text = rc == 0 ? row_text(g) : NULL;
    pthread_mutex_unlock(&a->lock);
    if (rc == 0)
        rc = text ? cb_state_put(a->db, CB_STATE_AGENTS, g->cfg.id, text, err)
                  : cb_error_set(err, -ENOMEM, "out of memory");
    free(text);
    pthread_mutex_lock(&a->lock);
    unpend(a, g);
    if (rc == 0) {
        bool found;
        insert_at(a, find_agent(a, g->cfg.id, &found), g);
        *out = cb__ag_info(g);
        g = NULL;
    }
    pthread_mutex_unlock(&a->lock);
    agent_free(g);
    return rc;
}

int cb_agents_get(struct cb_agents *a, const char *id, json_t **out)
{
    pthread_mutex_lock(&a->lock);
    bool found;
    size_t i = find_agent(a, id, &found);
    if (found)
        *out = cb__ag_info(a->v[i]);
    pthread_mutex_unlock(&a->lock);
    return found ? 0 : -ENOENT;
}

json_t *cb_agents_list(struct cb_agents *a)
{
    json_t *list = json_array();
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n; i++)
        json_array_append_new(list, cb__ag_info(a->v[i]));
    pthread_mutex_unlock(&a->lock);
    return list;
}

int cb_agents_delete(struct cb_agents *a, const char *id, bool purge, struct cb_error *err)
{
    pthread_mutex_lock(&a->lock);
    struct cb__agent *g = cb__ag_find(a, id);
    pthread_mutex_unlock(&a->lock);
    if (g == NULL)
        return cb_error_set(err, -ENOENT, "agent not found: %s", id);
    pthread_mutex_lock(&g->op);
    pthread_mutex_lock(&a->lock);
    bool gone = g->removed;
    pthread_mutex_unlock(&a->lock);
    int rc = gone ? cb_error_set(err, -ENOENT, "agent not found: %s", id) : 0;
    if (rc == 0)
        cb__ag_stop_for_delete(a, g);
    /* The row goes under its store lock, so no write of it follows. */
    pthread_mutex_lock(&g->store_lock);
    if (rc == 0)
        rc = cb_state_delete(a->db, CB_STATE_AGENTS, id, err);
    pthread_mutex_lock(&a->lock);
    bool found;
    size_t i = find_agent(a, id, &found);
    if (rc == 0 && found && a->v[i] == g) {
        memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(*a->v));
        a->n--;
        g->removed = true;
        g->refs--; /* the table's */
    }
    /* Only the agent's own directory (a host_path may be shared), removed
     * without the lock but with its id held as if being registered, so a
     * registration of the same id finds no half-removed directory. */
    bool wipe = rc == 0 && purge && g->cfg.workspace.host_path == NULL;
    if (wipe) {
        a->pending = cb_xrealloc(a->pending, (a->n_pending + 1) * sizeof(*a->pending));
        a->pending[a->n_pending++] = g;
    }
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_unlock(&g->store_lock);
    if (wipe) {
        if (cb_rm_tree(g->workspace_path) < 0)
            cb_log(CB_LOG_WARN, "agent %s: removing its workspace %s failed", id,
                   g->workspace_path);
        pthread_mutex_lock(&a->lock);
        unpend(a, g);
        pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_unlock(&g->op);
    cb__ag_unref(a, g);
    return rc;
}
