/* Internal to the agents (registry.c: the table and its rows; lifecycle.c:
 * start, stop, the container's end and the reaper).
 *
 * Locks: the table lock (cb_agents.lock) guards the array and every
 * agent's changing fields; it is never held while calling the container
 * manager, so the manager's callbacks (on_end, on_activity) may take it.
 * An agent's op lock serialises its start, stop, delete and the reaper's
 * actions on it, and is held across the manager's calls; operations on
 * different agents never wait on each other. An agent's row is written
 * under its store lock, each time from the agent as it is then, so the
 * last write is the newest state. */
#ifndef CB_AGENTS_INTERNAL_H
#define CB_AGENTS_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agents/config.h"
#include "agents/registry.h"

#define CB__AG_CT_ID_MAX 48 /* a container id: "clawbox-" + a UUID + NUL */

enum cb__ag_status {
    CB__AG_IDLE,
    CB__AG_STARTING,
    CB__AG_RUNNING,
    CB__AG_STOPPING,
    CB__AG_FAILED,
    CB__AG_TERMINATED,
};

/* The end of a container seen before its start had returned. */
struct cb__ag_early_end {
    char container_id[CB__AG_CT_ID_MAX];
    char status[16];
    char *error;
};

struct cb__agent {
    /* Fixed once in the table. */
    struct cb_agent_config cfg;
    uint64_t created_ms;
    char workspace_path[CB_AGENT_PATH_MAX];
    uint32_t id_range; /* its host ids: cb_ct_owner_id_base(cfg, id_range) */
    pthread_mutex_t op;
    pthread_mutex_t store_lock; /* its row's writes, in order */
    /* Under the table lock. */
    unsigned refs; /* the table's, and each caller's between ref and unref */
    bool removed;
    enum cb__ag_status status;
    char container_id[CB__AG_CT_ID_MAX]; /* "" when none runs */
    char *error;                         /* why it failed or ended, or NULL */
    uint64_t last_activity_ms;
    uint64_t execution_count;
    uint32_t restarts; /* since the last start asked for */
    uint64_t due_ms;   /* wall clock: a restart or recovery start is due then; 0 none */
    struct cb__ag_early_end early;
};

struct cb_agents {
    struct cb_state *db;
    const struct cb_config *cfg;
    struct cb_ct_manager *ct;
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* the reaper's */
    struct cb__agent **v; /* sorted by id */
    size_t n, cap;
    struct cb__agent **pending; /* being registered: ids taken, not yet listed */
    size_t n_pending;
    pthread_t reaper;
    bool reaping, closing;
};

/* registry.c */
const char *cb__ag_status_name(enum cb__ag_status s);
/* The agent of id with a reference taken, or NULL. Under the table lock. */
struct cb__agent *cb__ag_find(struct cb_agents *a, const char *id);
/* Takes (under the table lock) and drops (without it) a reference. */
void cb__ag_ref(struct cb__agent *g);
void cb__ag_unref(struct cb_agents *a, struct cb__agent *g);
/* AgentInfo. Under the table lock. */
json_t *cb__ag_info(const struct cb__agent *g);
/* Writes g's row as it is now. Without the table lock. */
int cb__ag_store(struct cb_agents *a, struct cb__agent *g, struct cb_error *err);
/* The error (-EXDEV) when path (a resolved workspace) lies in another
 * agent's default workspace, or another's host_path lies in g's default
 * one. Under the table lock. */
int cb__ag_check_foreign(struct cb_agents *a, const struct cb__agent *g, const char *path,
                         struct cb_error *err);
void cb__ag_set_error(struct cb__agent *g, const char *msg);

/* lifecycle.c */
int cb__ag_reaper_start(struct cb_agents *a, struct cb_error *err);
/* Stops g's container (op lock held) as part of its removal. */
void cb__ag_stop_for_delete(struct cb_agents *a, struct cb__agent *g);

#endif
