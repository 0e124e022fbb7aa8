/* The agents: registered AgentConfigs with their status, kept as rows of
 * the state database's agents table so they survive restarts, and their
 * lifecycle on the container manager: start and stop, the status following
 * the agent's container, restarts after a crash, and a reaper that stops
 * idle agents. An agent that was running when an earlier server stopped
 * (or was killed) is started again. */
#ifndef CB_AGENTS_REGISTRY_H
#define CB_AGENTS_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "core/error.h"

struct cb_state;
struct cb_agents;
struct cb_ct_manager;

/* Loads every agent row of db and starts the reaper, which starts again
 * the agents that were running. ct must outlive cb_agents_shutdown. */
int cb_agents_open(struct cb_state *db, const struct cb_config *cfg, struct cb_ct_manager *ct,
                   struct cb_agents **out, struct cb_error *err);
/* Stops the reaper and refuses further starts; call it before closing
 * the container manager (whose close then kills the agents' containers
 * without changing their rows: they start again with the next server). */
void cb_agents_shutdown(struct cb_agents *a);
/* Frees the table, after the container manager is closed; accepts NULL. */
void cb_agents_free(struct cb_agents *a);

/* Registers the AgentConfig body: checks it (cb_agent_config_parse),
 * opens its workspace beneath [containers].workspace_root (creating the
 * default one), and stores the row before answering. *info: the new
 * AgentInfo. -EBADMSG, -EINVAL: the body; -EEXIST: the id is taken;
 * -EXDEV, -ENOENT: the workspace path; other codes: the database or the
 * file system. */
int cb_agents_create(struct cb_agents *a, const json_t *body, json_t **info, struct cb_error *err);
/* The AgentInfo of id, or -ENOENT. */
int cb_agents_get(struct cb_agents *a, const char *id, json_t **info);
/* Every AgentInfo, sorted by id. */
json_t *cb_agents_list(struct cb_agents *a);
/* Removes the agent, stopping its container first; with purge, its
 * default workspace directory too (a workspace.host_path, which other
 * agents may share, is always kept). -ENOENT for an unknown id. */
int cb_agents_delete(struct cb_agents *a, const char *id, bool purge, struct cb_error *err);

/* Starts the agent's container through everything a spawn does (policy,
 * caps, capacity, image allowlist, its own proxy socket, audit) with its
 * workspace bound; *info: AgentInfo, `running`. -ENOENT unknown id;
 * -EBUSY (409 invalid_state) when it is starting, running or stopping;
 * otherwise the container manager's codes (manager.h), and -ELOOP, -EXDEV
 * for a workspace that changed since its registration. */
int cb_agents_start(struct cb_agents *a, const char *id, const char *request_id, json_t **info,
                    struct cb_error *err);
/* Stops the agent's container and removes it; *info: AgentInfo, `idle`.
 * A failed agent waiting for its restart has the restart cancelled.
 * -ENOENT, or -EBUSY when it is not running. */
int cb_agents_stop(struct cb_agents *a, const char *id, const char *request_id, json_t **info,
                   struct cb_error *err);

#endif
