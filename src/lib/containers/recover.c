/* At start: what an earlier run of this server left behind. Its runtime
 * root holds only its own containers, so another server on the host is
 * never touched. Every container still known to the runtime is killed
 * and deleted (its monitor died with the old server's session, and its
 * proxy socket with the old process); records of containers that were
 * running become `killed`; finished records stay until their retention
 * ends, with their output; directories that no record names go. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "containers/internal.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "egress/netns.h"
#include "state/state.h"

#define LEFT_BEHIND "the server stopped while it ran; removed when the server started again"

struct ids {
    char **v;
    size_t n, cap;
};

static int collect_id(const char *id, void *ud)
{
    struct ids *ids = ud;
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 16;
        ids->v = cb_xrealloc(ids->v, ids->cap * sizeof(char *));
    }
    ids->v[ids->n++] = cb_xstrdup(id);
    return 0;
}

static void remove_runtime_leftovers(struct cb_ct_manager *m)
{
    struct ids ids = {0};
    struct cb_error err = {0};
    if (m->be.list(m->be.impl, collect_id, &ids, &err) < 0)
        cb_log(CB_LOG_WARN, "listing the runtime's containers: %s", err.msg);
    for (size_t i = 0; i < ids.n; i++) {
        m->be.kill(m->be.impl, ids.v[i], SIGKILL, NULL);
        if (m->be.remove(m->be.impl, ids.v[i], &err) < 0)
            cb_log(CB_LOG_WARN, "removing container %s left by an earlier run: %s", ids.v[i],
                   err.msg);
        free(ids.v[i]);
    }
    if (ids.n > 0)
        cb_log(CB_LOG_INFO, "removed %zu container(s) left by an earlier run", ids.n);
    free(ids.v);
}

/* The network namespace file of an earlier run: a mount point while its
 * mount lasts, which a recursive removal does not cross. */
static void remove_netns(const char *dir)
{
    char *p = cb_xasprintf("%s/netns", dir);
    cb_egress_netns_remove(p);
    free(p);
}

static uint64_t get_u64(const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *get_str(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "";
}

/* Rebuilds a container from its stored row; NULL for a row it cannot read. */
static struct cb__ct *from_row(struct cb_ct_manager *m, const char *id, const json_t *doc)
{
    enum cb__ct_status st;
    if (strlen(id) >= CB__CT_ID_MAX || cb__ct_status_parse(get_str(doc, "status"), &st) < 0)
        return NULL;
    struct cb__ct *c = cb_xcalloc(1, sizeof(*c));
    c->m = m;
    memcpy(c->id, id, strlen(id) + 1);
    c->status = st;
    c->slot = -1;
    c->run.monitor_pidfd = c->run.exit_fd = c->init_pidfd = -1;
    if (cb_ct_policy_parse(get_str(doc, "policy"), &c->policy) < 0)
        c->policy = CB_CT_WASM_ONLY;
    c->task = cb_xstrdup(get_str(doc, "task_summary"));
    c->image = cb_xstrdup(get_str(doc, "image"));
    const char *e = json_string_value(json_object_get(doc, "error"));
    c->error = e ? cb_xstrdup(e) : NULL;
    const char *owner = json_string_value(json_object_get(doc, "owner"));
    c->owner = owner ? cb_xstrdup(owner) : NULL;
    c->created_ms = get_u64(doc, "created_ms");
    c->finished_ms = get_u64(doc, "finished_ms");
    const json_t *code = json_object_get(doc, "exit_code"), *sig = json_object_get(doc, "signal");
    c->exited = json_is_integer(code) || json_is_integer(sig);
    c->exit.exit_code = (int)json_integer_value(code);
    c->exit.signal = (int)json_integer_value(sig);
    c->exit.oom_killed = json_is_true(json_object_get(doc, "oom_killed"));
    c->exit.dropped_bytes = get_u64(doc, "output_dropped_bytes");
    return c;
}

struct rows {
    struct cb_ct_manager *m;
    struct ids stale; /* rows to delete */
};

static int load_ct_row(const char *id, const char *json, void *ud)
{
    struct rows *rows = ud;
    struct cb_ct_manager *m = rows->m;
    json_t *doc = json_loads(json, 0, NULL);
    struct cb__ct *c = doc ? from_row(m, id, doc) : NULL;
    json_decref(doc);
    if (c == NULL) {
        cb_log(CB_LOG_WARN, "container record %s is unreadable: dropped", id);
        return collect_id(id, &rows->stale);
    }
    bool changed = false;
    if (c->status == CB__CT_CREATING || c->status == CB__CT_RUNNING) {
        c->status = CB__CT_KILLED;
        free(c->error);
        c->error = cb_xstrdup(LEFT_BEHIND);
        c->finished_ms = cb_now_wall_ms();
        changed = true;
    }
    if (c->finished_ms + m->cfg->containers.retention_ms <= cb_now_wall_ms()) {
        cb__ct_free(c);
        return collect_id(id, &rows->stale);
    }
    c->dir = cb_xasprintf("%s/%s", m->ct_root, c->id);
    struct stat st;
    if (lstat(c->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        free(c->dir);
        c->dir = NULL;
    } else { /* keep output.log and exit.json; the rest belonged to the run */
        remove_netns(c->dir);
        char *p = cb_xasprintf("%s/bundle", c->dir), *q = cb_xasprintf("%s/proxy", c->dir);
        cb_rm_tree(p);
        cb_rm_tree(q);
        free(p);
        free(q);
    }
    if (changed)
        cb__ct_persist(m, c);
    struct cb__ct **at = &m->list; /* oldest first, as the list is kept */
    while (*at && (*at)->created_ms <= c->created_ms)
        at = &(*at)->next;
    c->next = *at;
    *at = c;
    return 0;
}

static bool known_container(struct cb_ct_manager *m, const char *name)
{
    for (struct cb__ct *c = m->list; c; c = c->next)
        if (strcmp(c->id, name) == 0 && c->dir)
            return true;
    return false;
}

/* Directories under the containers root that no record names. */
static void remove_strays(struct cb_ct_manager *m)
{
    DIR *d = opendir(m->ct_root);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || known_container(m, e->d_name))
            continue;
        char *p = cb_xasprintf("%s/%s", m->ct_root, e->d_name);
        remove_netns(p);
        cb_rm_tree(p);
        free(p);
    }
    closedir(d);
}

void cb__ct_recover(struct cb_ct_manager *m)
{
    if (m->have_rt)
        remove_runtime_leftovers(m);
    struct rows rows = {.m = m};
    struct cb_error err = {0};
    if (cb_state_list(m->state, CB_STATE_CONTAINERS, load_ct_row, &rows, &err) < 0)
        cb_log(CB_LOG_WARN, "reading container records: %s", err.msg);
    for (size_t i = 0; i < rows.stale.n; i++) {
        cb_state_delete(m->state, CB_STATE_CONTAINERS, rows.stale.v[i], NULL);
        free(rows.stale.v[i]);
    }
    free(rows.stale.v);
    remove_strays(m);
}
