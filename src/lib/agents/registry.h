/* The agents: registered AgentConfigs with their status, kept as rows of
 * the state database's agents table so they survive restarts.
 *
 * Registration, listing and removal are here; the lifecycle (start, stop,
 * the status following the agent's container, the reaper) is not built
 * yet, so every agent is `idle`. */
#ifndef CB_AGENTS_REGISTRY_H
#define CB_AGENTS_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "core/error.h"

struct cb_state;
struct cb_agents;

/* Loads every agent row of db. An agent that was running when an earlier
 * server stopped comes back `idle`: its container did not survive. */
int cb_agents_open(struct cb_state *db, const struct cb_config *cfg, struct cb_agents **out,
                   struct cb_error *err);
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
/* Removes the agent's row; with purge, its default workspace directory
 * too (a workspace.host_path, which other agents may share, is always
 * kept). -ENOENT for an unknown id. */
int cb_agents_delete(struct cb_agents *a, const char *id, bool purge, struct cb_error *err);

#endif
