/* AgentConfig, the body of POST /agents (spec §9.1), checked once.
 *
 * The fields a start hands to the container manager (image, policy,
 * capabilities, env, command) are kept as the client sent them and checked
 * by the container request parser itself, so an agent's start goes through
 * exactly what a spawn does, with the server's limits of the moment. The
 * agent's own fields (id, name, workspace, lifecycle) are checked here. */
#ifndef CB_AGENTS_CONFIG_H
#define CB_AGENTS_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

#define CB_AGENT_ID_MAX   64
#define CB_AGENT_NAME_MAX 256
#define CB_AGENT_PATH_MAX 1024

struct cb_agent_workspace {
    char *host_path;   /* NULL: <workspace_root>/<agent_id>; else inside workspace_root */
    char *mount_point; /* absolute and normal; "/workspace" by default */
    bool read_only;
};

struct cb_agent_lifecycle {
    uint64_t max_idle_ms;     /* from the last real activity */
    uint64_t max_lifetime_ms; /* from the start; 0: none */
    bool restart_on_crash;
    uint32_t max_restarts;
};

struct cb_agent_config {
    char id[CB_AGENT_ID_MAX + 1];
    char *name;
    struct cb_agent_workspace workspace;
    struct cb_agent_lifecycle lifecycle;
    /* The ContainerSpawnRequest a start sends (task "agent:<id>"); owned. */
    json_t *spawn;
};

/* Parses and checks body against cfg (the spawn fields through
 * cb_ct_request_parse). -EBADMSG for a wrong shape, -EINVAL for a bad
 * value; err names the field. On success clear *out with
 * cb_agent_config_clear. */
int cb_agent_config_parse(const json_t *body, const struct cb_config *cfg,
                          struct cb_agent_config *out, struct cb_error *err);
/* The configuration as the JSON cb_agent_config_parse reads back, with
 * every default written out; for the state database. */
json_t *cb_agent_config_json(const struct cb_agent_config *c);
void cb_agent_config_clear(struct cb_agent_config *c);

/* An agent id: 1-64 of ASCII letters, digits and '-' (the reference's rule;
 * it names workspace directories). -EINVAL with the reason otherwise. */
int cb_agent_id_check(const char *id, struct cb_error *err);

/* Opens the agent's workspace directory, creating it (0750) when it is the
 * default one, and returns its descriptor (O_PATH, close-on-exec). The
 * path is resolved beneath workspace_root, which is created if missing: a
 * host_path, a symbolic link or a ".." that leads outside it is -EXDEV, a
 * missing host_path -ENOENT. path_out (CB_AGENT_PATH_MAX) receives the
 * directory's path for AgentInfo.workspace_path. Open by descriptor, so a
 * link swapped in after the check cannot redirect the mount. */
int cb_agent_workspace_open(const char *workspace_root, const struct cb_agent_config *c,
                            char *path_out, struct cb_error *err);

/* Opens the workspace again at a start, by the directory's path as
 * registered (workspace_path, beneath workspace_root): resolved beneath the
 * root with no symbolic link at all (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
 * so a link swapped in for the workspace or a directory above it since the
 * registration is refused (-ELOOP), as is a path no longer beneath the
 * root (-EXDEV). A missing default workspace (create) is made again.
 * Returns the O_PATH descriptor. */
int cb_agent_workspace_reopen(const char *workspace_root, const char *workspace_path, bool create,
                              struct cb_error *err);

#endif
