/* The agent table: an array sorted by id under one mutex, each entry
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
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state.h"

struct agent {
    struct cb_agent_config cfg;
    uint64_t created_ms;
    uint64_t last_activity_ms;
    uint64_t execution_count;
    char workspace_path[CB_AGENT_PATH_MAX];
};

struct cb_agents {
    struct cb_state *db;
    const struct cb_config *cfg;
    pthread_mutex_t lock;
    struct agent **v; /* sorted by id */
    size_t n, cap;
};

static void agent_free(struct agent *g)
{
    if (g != NULL)
        cb_agent_config_clear(&g->cfg);
    free(g);
}

/* The index of id, or where it would go (then *found is false). */
static size_t find(const struct cb_agents *a, const char *id, bool *found)
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

static void insert_at(struct cb_agents *a, size_t i, struct agent *g)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = cb_xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    memmove(&a->v[i + 1], &a->v[i], (a->n - i) * sizeof(*a->v));
    a->v[i] = g;
    a->n++;
}

static json_t *info(const struct agent *g)
{
    char created[CB_RFC3339_LEN], active[CB_RFC3339_LEN];
    cb_rfc3339_ms(g->created_ms, created);
    cb_rfc3339_ms(g->last_activity_ms, active);
    return json_pack("{ss ss ss sn ss ss sI ss}", "agent_id", g->cfg.id, "name", g->cfg.name,
                     "status", "idle", "container_id", "created_at", created, "last_activity",
                     active, "execution_count", (json_int_t)g->execution_count, "workspace_path",
                     g->workspace_path);
}

static int store(struct cb_agents *a, const struct agent *g, struct cb_error *err)
{
    json_t *row = json_pack("{so sI sI sI ss}", "config", cb_agent_config_json(&g->cfg),
                            "created_ms", (json_int_t)g->created_ms, "last_activity_ms",
                            (json_int_t)g->last_activity_ms, "execution_count",
                            (json_int_t)g->execution_count, "workspace_path", g->workspace_path);
    char *text = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    if (text == NULL)
        return cb_error_set(err, -ENOMEM, "agent %s: out of memory", g->cfg.id);
    int rc = cb_state_put(a->db, CB_STATE_AGENTS, g->cfg.id, text, err);
    free(text);
    return rc;
}

static uint64_t uint_of(const json_t *row, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(row, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* One stored row back into the table. A row this server cannot read (its
 * configuration checks changed) is logged and left in the database. */
static int load_row(const char *key, const char *text, void *ud)
{
    struct cb_agents *a = ud;
    struct cb_error err = {0};
    json_t *row = json_loads(text, 0, NULL);
    struct agent *g = cb_xcalloc(1, sizeof(*g));
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
        memcpy(g->workspace_path, ws, strlen(ws) + 1);
        size_t i = find(a, g->cfg.id, &found);
        insert_at(a, i, g);
        g = NULL;
    } else {
        cb_log(CB_LOG_WARN, "agent %s in the state database is not loaded: %s", key, err.msg);
    }
    agent_free(g);
    json_decref(row);
    return 0;
}

int cb_agents_open(struct cb_state *db, const struct cb_config *cfg, struct cb_agents **out,
                   struct cb_error *err)
{
    struct cb_agents *a = cb_xcalloc(1, sizeof(*a));
    a->db = db;
    a->cfg = cfg;
    pthread_mutex_init(&a->lock, NULL);
    int rc = cb_state_list(db, CB_STATE_AGENTS, load_row, a, err);
    if (rc < 0) {
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
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int cb_agents_create(struct cb_agents *a, const json_t *body, json_t **out, struct cb_error *err)
{
    struct agent *g = cb_xcalloc(1, sizeof(*g));
    int rc = cb_agent_config_parse(body, a->cfg, &g->cfg, err);
    if (rc < 0) {
        free(g);
        return rc;
    }
    /* Registration is rare: the table stays locked through the workspace
     * and the row, so two registrations of one id cannot both pass. */
    pthread_mutex_lock(&a->lock);
    bool found;
    size_t i = find(a, g->cfg.id, &found);
    if (found) {
        rc = cb_error_set(err, -EEXIST, "agent already exists: %s", g->cfg.id);
        goto out;
    }
    rc =
        cb_agent_workspace_open(a->cfg->containers.workspace_root, &g->cfg, g->workspace_path, err);
    if (rc < 0)
        goto out;
    close(rc);
    g->created_ms = g->last_activity_ms = cb_now_wall_ms();
    rc = store(a, g, err);
    if (rc < 0)
        goto out;
    insert_at(a, i, g);
    *out = info(g);
    g = NULL;
out:
    pthread_mutex_unlock(&a->lock);
    agent_free(g);
    return rc;
}

int cb_agents_get(struct cb_agents *a, const char *id, json_t **out)
{
    pthread_mutex_lock(&a->lock);
    bool found;
    size_t i = find(a, id, &found);
    if (found)
        *out = info(a->v[i]);
    pthread_mutex_unlock(&a->lock);
    return found ? 0 : -ENOENT;
}

json_t *cb_agents_list(struct cb_agents *a)
{
    json_t *list = json_array();
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n; i++)
        json_array_append_new(list, info(a->v[i]));
    pthread_mutex_unlock(&a->lock);
    return list;
}

int cb_agents_delete(struct cb_agents *a, const char *id, bool purge, struct cb_error *err)
{
    pthread_mutex_lock(&a->lock);
    bool found;
    size_t i = find(a, id, &found);
    int rc = found ? cb_state_delete(a->db, CB_STATE_AGENTS, id, err)
                   : cb_error_set(err, -ENOENT, "agent not found: %s", id);
    struct agent *g = NULL;
    if (rc == 0) {
        g = a->v[i];
        memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof(*a->v));
        a->n--;
    }
    /* Under the lock, so a registration of the same id that follows finds
     * no half-removed directory. Only the agent's own directory: a
     * host_path may be shared. */
    if (g != NULL && purge && g->cfg.workspace.host_path == NULL &&
        cb_rm_tree(g->workspace_path) < 0)
        cb_log(CB_LOG_WARN, "agent %s: removing its workspace %s failed", id, g->workspace_path);
    pthread_mutex_unlock(&a->lock);
    agent_free(g);
    return rc;
}
