/* The container manager's table and its four operations. A spawn reserves
 * its place (capacity and host id range) under the lock, so concurrent
 * spawns never exceed max_containers, and does the slow work (image,
 * bundle, socket, runtime) outside it. */
#include "containers/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "containers/bundle.h"
#include "containers/images.h"
#include "containers/internal.h"
#include "containers/proxysock.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/utf8.h"
#include "core/util.h"
#include "egress/netns.h"
#include "egress/tls_ca.h"
#include "metrics/metrics.h"
#include "proxy/pipeline.h"
#include "sandbox/manifest.h"
#include "scan/sanitize.h"
#include "state/state.h"

#define IDS_PER_CONTAINER 65536
#define CONTAINER_UID     1000
#define DELETE_WAIT_MS    10000
#define SOCKET_IN_CT      "/run/clawbox/proxy.sock"
#define CA_IN_CT          "/run/clawbox/ca.pem"
#define IDLE_INIT_IN_CT   "/run/clawbox/init"

/* What names CA_IN_CT for the container's TLS clients under interception. */
static const char *const ca_vars[] = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"};
#define POLICY_ORIGIN "[container_policy].network_allowlist in the server's configuration"

static void register_ct_metrics(struct cb_ct_manager *m, struct cb_metrics *reg)
{
    static const double secs[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    m->m_active = cb_metrics_gauge(reg, "clawbox_containers_active",
                                   "Containers being created or running.", NULL, 1);
    m->m_total = cb_metrics_counter(reg, "clawbox_containers_total",
                                    "Containers by how they ended (spawned counts every start).",
                                    "status", 8);
    m->m_spawn_seconds = cb_metrics_histogram(reg, "clawbox_container_spawn_duration_seconds",
                                              "Time from a spawn request to the container running.",
                                              NULL, secs, CB_ARRAY_LEN(secs), 1);
    m->m_proxied =
        cb_metrics_counter(reg, "clawbox_container_proxy_requests_total",
                           "Requests through a container's proxy socket.", "container", 1024);
}

/* A request through a container's socket: counted by container, and
 * told to its owner. */
static void proxied(void *ud)
{
    struct cb__ct *c = ud;
    cb_metric_inc(c->m->m_proxied, (const char *[]){c->id}, 1);
    if (c->on_activity != NULL)
        c->on_activity(c->ud, c->owner, true);
}

uint32_t cb_ct_owner_id_base(const struct cb_config *cfg, uint32_t k)
{
    uint64_t base =
        cfg->containers.userns_base + ((uint64_t)CB_CT_SLOTS_MAX + k) * IDS_PER_CONTAINER;
    return base + IDS_PER_CONTAINER <= UINT32_MAX ? (uint32_t)base : 0;
}

static void detect_runtime(struct cb_ct_manager *m)
{
    const struct cb_config *cfg = m->cfg;
    if (strcmp(cfg->containers.runtime, "none") == 0) {
        m->why_not = cb_xstrdup("containers are turned off ([containers] runtime = \"none\")");
        return;
    }
    char *root = cfg->containers.runtime_root ? cb_xstrdup(cfg->containers.runtime_root)
                                              : cb_xasprintf("%s/oci", cfg->server.data_dir);
    struct cb_error err = {0};
    if (geteuid() != 0)
        cb_error_set(&err, -EPERM,
                     "containers need root (user namespaces are mapped to host "
                     "ids only root may use)");
    else if (cb_mkdir_p(root, 0700, &err) == 0 &&
             cb_ct_backend_oci(cfg->containers.runtime, root, &m->be, &err) == 0)
        m->have_rt = true;
    free(root);
    if (!m->have_rt) {
        m->why_not = cb_xstrdup(err.msg);
        cb_log(CB_LOG_WARN, "containers are unavailable: %s", err.msg);
        return;
    }
    cb_log(CB_LOG_INFO, "containers run with %s", m->be.label);
}

/* A container's root (a host id of its range) must search every directory
 * above its rootfs and its bundle, but the data directory is 0700 and often
 * under /root. So the containers and images directories are bound, in the
 * server's own mount namespace only (cb_ct_mountns_prepare), under
 * /run/clawbox-<hash of data_dir>/ (0711), and the runtime is given those
 * paths. Nothing of it is visible outside the server, and it goes with it. */
static int stage(struct cb_ct_manager *m, struct cb_error *err)
{
    m->ct_root_rt = cb_xstrdup(m->ct_root);
    m->image_store_rt = cb_xstrdup(m->image_store);
    if (!m->have_rt || !cb_ct_mountns_private())
        return 0;
    uint64_t h = cb_fnv1a(CB_FNV1A_INIT, m->cfg->server.data_dir, strlen(m->cfg->server.data_dir));
    char *top = cb_xasprintf("/run/clawbox-%016" PRIx64, h);
    const char *src[2] = {m->ct_root, m->image_store};
    char **dst[2] = {&m->ct_root_rt, &m->image_store_rt};
    int r = cb_mkdir_p(top, 0711, err);
    for (size_t i = 0; i < 2 && r == 0; i++) {
        char *to = cb_xasprintf("%s/%s", top, i == 0 ? "containers" : "images");
        r = cb_mkdir_p(src[i], 0711, err);
        if (r == 0)
            r = cb_mkdir_p(to, 0711, err);
        if (r == 0 && (chmod(src[i], 0711) < 0 || mount(src[i], to, NULL, MS_BIND, NULL) < 0))
            r = cb_error_set(err, -errno, "binding %s at %s: %s", src[i], to, strerror(errno));
        if (r == 0) {
            free(*dst[i]);
            *dst[i] = to;
        } else {
            free(to);
        }
    }
    free(top);
    return r;
}

/* p (under `from`) as the runtime sees it (under `to`). */
static char *runtime_path(const char *p, const char *from, const char *to)
{
    size_t n = strlen(from);
    if (strncmp(p, from, n) == 0 && (p[n] == '/' || p[n] == '\0'))
        return cb_xasprintf("%s%s", to, p + n);
    return cb_xstrdup(p);
}

int cb_ct_manager_open(const struct cb_ct_manager_options *o, struct cb_ct_manager **out,
                       struct cb_error *err)
{
    const struct cb_config *cfg = o->cfg;
    struct cb_ct_manager *m = cb_xcalloc(1, sizeof(*m));
    m->cfg = cfg;
    m->state = o->state;
    m->proxy = o->proxy;
    m->audit = o->audit;
    m->monitor_exe = cb_xstrdup(o->monitor_exe);
    m->epfd = m->wakefd = -1;
    m->ct_root = cb_xasprintf("%s/containers", cfg->server.data_dir);
    m->image_store = cfg->containers.image_store ? cb_xstrdup(cfg->containers.image_store)
                                                 : cb_xasprintf("%s/images", cfg->server.data_dir);
    m->slots = cb_xcalloc(cfg->containers.max_containers + 1, 1);
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->changed, &ca);
    pthread_condattr_destroy(&ca);
    register_ct_metrics(m, o->metrics);
    int r = cb_mkdir_p(m->ct_root, 0711, err);
    if (r == 0) {
        detect_runtime(m);
        r = stage(m, err);
    }
    if (r == 0) {
        cb__ct_recover(m);
        r = cb__ct_watch_start(m, err);
    }
    if (r < 0) {
        cb_ct_manager_close(m);
        return r;
    }
    *out = m;
    return 0;
}

/* Waits (under m->lock) until no exec runs: a streamed exec runs on a
 * thread of its own (exec_stream.c) and ends soon after its container,
 * or when its reader goes. */
static void wait_execs(struct cb_ct_manager *m)
{
    for (;;) {
        int n = m->execs;
        if (n == 0)
            return;
        struct timespec until = cb_mono_deadline(DELETE_WAIT_MS);
        if (pthread_cond_timedwait(&m->changed, &m->lock, &until) == ETIMEDOUT)
            cb_log(CB_LOG_WARN, "containers: %d exec(s) still running at shutdown", n);
    }
}

void cb_ct_manager_close(struct cb_ct_manager *m)
{
    if (m == NULL)
        return;
    /* Kill every running container, then wait for their monitors. */
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    while (m->active > 0 && m->watching) {
        struct cb__ct *running = NULL;
        for (struct cb__ct *c = m->list; c && !running; c = c->next)
            if (c->status == CB__CT_RUNNING && c->kill_as == CB__CT_NONE)
                running = c;
        if (running == NULL) {
            struct timespec until = cb_mono_deadline(DELETE_WAIT_MS);
            if (pthread_cond_timedwait(&m->changed, &m->lock, &until) == ETIMEDOUT)
                break;
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        cb__ct_kill(m, running, CB__CT_KILLED);
        pthread_mutex_lock(&m->lock);
    }
    wait_execs(m);
    pthread_mutex_unlock(&m->lock);
    cb__ct_watch_stop(m);
    while (m->list) {
        struct cb__ct *c = m->list;
        m->list = c->next;
        if (c->dir) { /* the idle init, so the socket's directory can go */
            char *init = cb_xasprintf("%s/proxy/init", c->dir);
            unlink(init);
            free(init);
        }
        if (c->px)
            cb_ct_proxy_stop(c->px);
        if (c->dir) {
            char *p = cb_xasprintf("%s/bundle", c->dir);
            cb_rm_tree(p);
            free(p);
        }
        cb__ct_free(c);
    }
    if (cb_ct_proxy_drain(DELETE_WAIT_MS) > 0)
        cb_log(CB_LOG_WARN, "container proxy connections still open at shutdown");
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->changed);
    if (m->have_rt)
        m->be.free(m->be.impl);
    free(m->why_not);
    free(m->ct_root);
    free(m->image_store);
    free(m->ct_root_rt);
    free(m->image_store_rt);
    free(m->monitor_exe);
    free(m->slots);
    free(m);
}

const char *cb_ct_manager_runtime(const struct cb_ct_manager *m, const char **why)
{
    if (m->have_rt)
        return m->be.label;
    *why = m->why_not;
    return NULL;
}

size_t cb_ct_manager_active(struct cb_ct_manager *m)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->active;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void cb__ct_release(struct cb_ct_manager *m, struct cb__ct *c)
{
    if (c->slot < 0)
        return;
    m->slots[c->slot] = 0;
    c->slot = -1;
    m->active--; /* taken with the slot */
    cb_metric_set(m->m_active, NULL, (double)m->active);
}

void cb__ct_unlink(struct cb_ct_manager *m, struct cb__ct *c)
{
    for (struct cb__ct **p = &m->list; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

void cb__ct_remove_files(struct cb_ct_manager *m, struct cb__ct *c)
{
    if (c->dir) { /* the idle init, so the socket's directory can go */
        char *init = cb_xasprintf("%s/proxy/init", c->dir);
        unlink(init);
        free(init);
    }
    if (c->px)
        cb_ct_proxy_stop(c->px);
    c->px = NULL;
    if (c->dir)
        cb_rm_tree(c->dir);
    struct cb_error err = {0};
    if (cb_state_delete(m->state, CB_STATE_CONTAINERS, c->id, &err) < 0 && err.code != -ENOENT)
        cb_log(CB_LOG_WARN, "container %s: its record was not removed: %s", c->id, err.msg);
}

void cb__ct_audit(struct cb_ct_manager *m, const struct cb__ct *c, const char *request_id,
                  const char *method)
{
    if (m->audit == NULL)
        return;
    uint64_t end = c->finished_ms ? c->finished_ms : cb_now_wall_ms();
    struct cb_audit_record rec = {
        .kind = CB_AUDIT_CONTAINER,
        .request_id = request_id,
        .tool = c->id,
        .method = method,
        .url = c->image,
        .decision = cb__ct_status_name(c->status),
        .reason = c->error,
        .status = c->exited && c->exit.signal == 0 ? c->exit.exit_code : 0,
        .bytes = c->exited ? c->exit.output_bytes : 0,
        .duration_ms = end > c->created_ms ? end - c->created_ms : 0,
    };
    struct cb_error err = {0};
    if (cb_audit_append(m->audit, &rec, &err) < 0)
        cb_log(CB_LOG_ERROR, "audit: %s", err.msg);
}

/* Container id, even one out of sight (abandoned), or NULL. */
static struct cb__ct *listed(struct cb_ct_manager *m, const char *id)
{
    for (struct cb__ct *c = m->list; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static struct cb__ct *find(struct cb_ct_manager *m, const char *id)
{
    struct cb__ct *c = listed(m, id);
    return c != NULL && !c->abandoned ? c : NULL;
}

/* ---- spawn ---- */

struct spawn {
    struct cb_ct_manager *m;
    const struct cb_ct_spawn_opts *o; /* never NULL */
    struct cb_ct_request req;
    struct cb__ct *c;
    json_t *granted; /* credential names the container may use */
    char token[65];
    const char **args; /* argv of the container */
    size_t n_args;
    char **env; /* "K=V" */
    size_t n_env;
    struct cb_error stored; /* the row stored during create: code 0, or why not */
};

static int check_policy(struct spawn *s, struct cb_error *err)
{
    const struct cb_config *cfg = s->m->cfg;
    const struct cb_strlist *allowed = &cfg->container_policy.allowed_policies;
    const char *want = cb_ct_policy_name(s->req.policy);
    bool ok = false;
    for (size_t i = 0; i < allowed->len && !ok; i++)
        ok = strcasecmp(allowed->items[i], want) == 0;
    if (!ok) {
        char list[512] = "";
        for (size_t i = 0, n = 0; i < allowed->len && n < sizeof(list); i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
                                  allowed->items[i]);
        return cb_error_set(err, -EPERM, "Sandbox policy '%s' is not allowed; permitted: [%s]",
                            want, list);
    }
    if (!cb_image_allowed(s->req.image, &cfg->container_policy.allowed_images))
        return cb_error_set(err, -EPERM,
                            "image not allowed: %s ([container_policy] allowed_images lists the "
                            "prefixes a spawn may use)",
                            s->req.image);
    for (size_t i = 0; i < s->req.n_env; i++) {
        int r = cb_ct_env_check(s->req.env_keys[i], err);
        if (r < 0)
            return cb_error_set(err, -EINVAL, "env: %s", err->msg);
    }
    return 0;
}

/* Takes a place: capacity and a host id range, atomically. */
static int reserve_place(struct spawn *s, struct cb_error *err)
{
    struct cb_ct_manager *m = s->m;
    const struct cb_config *cfg = m->cfg;
    struct cb__ct *c = cb_xcalloc(1, sizeof(*c));
    c->m = m;
    char uuid[37];
    cb_uuid_v4(uuid);
    snprintf(c->id, sizeof(c->id), "clawbox-%s", uuid);
    c->status = CB__CT_CREATING;
    c->policy = s->req.policy;
    c->task = cb_xstrdup(s->req.task);
    c->image = cb_xstrdup(s->req.image);
    c->created_ms = cb_now_wall_ms();
    c->memory_mb = s->req.memory_mb;
    c->run.monitor_pidfd = c->run.exit_fd = c->init_pidfd = -1;
    c->slot = -1;
    c->owner = s->o->owner ? cb_xstrdup(s->o->owner) : NULL;
    if (s->o->bind != NULL && !s->o->bind->read_only)
        c->bind_target = cb_xstrdup(s->o->bind->target);
    c->owner_id_base = s->o->host_id_base;
    c->on_end = s->o->on_end;
    c->on_activity = s->o->on_activity;
    c->ud = s->o->ud;
    pthread_mutex_lock(&m->lock);
    int r = 0;
    if (!m->have_rt)
        r = cb_error_set(err, -ENODEV, "containers are unavailable: %s", m->why_not);
    else if (m->stopping)
        r = cb_error_set(err, -ENODEV, "the server is shutting down");
    else if (m->active >= cfg->containers.max_containers)
        r = cb_error_set(err, -EAGAIN, "container limit reached (%zu/%" PRIu64 ")", m->active,
                         cfg->containers.max_containers);
    for (size_t i = 0; r == 0 && i < cfg->containers.max_containers; i++)
        if (!m->slots[i]) {
            m->slots[i] = 1;
            c->slot = (long)i;
            break;
        }
    if (r == 0) {
        m->active++;
        cb_metric_set(m->m_active, NULL, (double)m->active);
        struct cb__ct **tail = &m->list;
        while (*tail)
            tail = &(*tail)->next;
        *tail = c;
        s->c = c;
    }
    pthread_mutex_unlock(&m->lock);
    if (r < 0)
        cb__ct_free(c);
    return r;
}

/* The host id of the uid 0 of the container in slot. */
static uint32_t slot_id_base(const struct cb_ct_manager *m, long slot)
{
    return (uint32_t)(m->cfg->containers.userns_base + (uint64_t)slot * IDS_PER_CONTAINER);
}

static uint32_t host_base(const struct spawn *s)
{
    if (s->o->host_id_base != 0)
        return s->o->host_id_base;
    return slot_id_base(s->m, s->c->slot);
}

/* Whether HTTPS under transparent egress is terminated (with a CA of the
 * container's own) rather than passed through. */
static bool intercepts(const struct cb_config *cfg)
{
    return strcmp(cfg->containers.egress, "transparent") == 0 &&
           strcmp(cfg->container_policy.tls, "intercept") == 0;
}

static int start_proxy(struct spawn *s, struct cb_error *err)
{
    struct cb_ct_manager *m = s->m;
    const struct cb_config *cfg = m->cfg;
    json_t *allow = json_array(), *avail = json_array();
    s->granted = json_array();
    for (size_t i = 0; i < cfg->container_policy.network_allowlist.len; i++)
        json_array_append_new(allow, json_string(cfg->container_policy.network_allowlist.items[i]));
    for (size_t i = 0; i < cfg->container_policy.allowed_credentials.len; i++) {
        const char *name = cfg->container_policy.allowed_credentials.items[i];
        json_array_append_new(avail, json_string(name));
        for (size_t j = 0; j < s->req.n_credentials; j++)
            if (strcmp(s->req.credentials[j], name) == 0)
                json_array_append_new(s->granted, json_string(name));
    }
    json_t *doc = json_pack("{s:{s:s, s:s}, s:{s:o, s:i}, s:{s:o}}", "tool", "name", s->c->id,
                            "description", "container", "network", "allowlist", allow,
                            "max_concurrent", 64, "credentials", "available", avail);
    struct cb_manifest *man = NULL;
    int r = cb_manifest_parse(doc, cfg->proxy.allow_wildcard_all, &man, err);
    json_decref(doc);
    if (r < 0) {
        cb_error_prefix(err, "[container_policy] network_allowlist");
        return r;
    }
    cb_manifest_set_origin(man, POLICY_ORIGIN);
    unsigned char raw[32];
    if (cb_random_bytes(raw, sizeof(raw)) < 0)
        abort(); /* getrandom cannot fail once the pool is initialised */
    cb_hex_encode(raw, sizeof(raw), s->token);
    uint32_t base = host_base(s);
    struct cb_egress_netns *ns = NULL;
    struct cb_egress_ca *ca = NULL;
    if (strcmp(cfg->containers.egress, "transparent") == 0) {
        struct cb_egress_netns_opts no = {.dir = s->c->dir, .name = "netns"};
        r = cb_egress_netns_create(&no, &ns, err);
        if (r == 0 && intercepts(cfg)) {
            struct cb_egress_ca_opts co = {.container_id = s->c->id};
            r = cb_egress_ca_new(&co, &ca, err);
        }
        if (r < 0) {
            cb_egress_netns_destroy(ns);
            cb_manifest_unref(man);
            return r;
        }
    }
    char *dir = cb_xasprintf("%s/proxy", s->c->dir);
    struct cb_ct_proxy_options po = {
        .container_id = s->c->id,
        .dir = dir,
        .gid = base + CONTAINER_UID,
        .peer_uid_min = base,
        .peer_uid_max = base + IDS_PER_CONTAINER - 1,
        .token = s->token,
        .manifest = man,
        .granted = s->granted,
        .proxy = m->proxy,
        .on_request = proxied,
        .ud = s->c,
        .netns = ns,
        .ca = ca,
    };
    r = cb_ct_proxy_start(&po, &s->c->px, err);
    cb_manifest_unref(man);
    free(dir);
    return r;
}

static void push_env(struct spawn *s, const char *key, const char *value)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < s->n_env; i++)
        if (strncmp(s->env[i], key, klen) == 0 && s->env[i][klen] == '=') {
            free(s->env[i]);
            s->env[i] = cb_xasprintf("%s=%s", key, value);
            return;
        }
    s->env[s->n_env++] = cb_xasprintf("%s=%s", key, value);
}

/* argv and environment: the request's command or the image's, the image's
 * environment, the request's on top, and clawbox's own last. */
static int build_process(struct spawn *s, struct cb_error *err)
{
    const struct cb_image *img = s->c->img;
    static const char *const idle[] = {IDLE_INIT_IN_CT, "-P"};
    if (s->o->idle_init) {
        s->args = cb_xcalloc(CB_ARRAY_LEN(idle) + 1, sizeof(char *));
        memcpy(s->args, idle, sizeof(idle));
        s->n_args = CB_ARRAY_LEN(idle);
    } else if (s->req.command) {
        s->args = cb_xcalloc(s->req.n_command + 1, sizeof(char *));
        memcpy(s->args, s->req.command, s->req.n_command * sizeof(char *));
        s->n_args = s->req.n_command;
    } else {
        s->args = cb_xcalloc(img->n_entrypoint + img->n_cmd + 1, sizeof(char *));
        for (size_t i = 0; i < img->n_entrypoint; i++)
            s->args[s->n_args++] = img->entrypoint[i];
        for (size_t i = 0; i < img->n_cmd; i++)
            s->args[s->n_args++] = img->cmd[i];
    }
    if (s->n_args == 0)
        return cb_error_set(err, -EINVAL, "image %s has no command: give one in \"command\"",
                            s->c->image);
    s->env = cb_xcalloc(img->n_env + s->req.n_env + 4 + CB_ARRAY_LEN(ca_vars), sizeof(char *));
    for (size_t i = 0; i < img->n_env; i++) {
        const char *eq = strchr(img->env[i], '=');
        if (eq) {
            char *key = cb_xstrndup(img->env[i], (size_t)(eq - img->env[i]));
            push_env(s, key, eq + 1);
            free(key);
        }
    }
    for (size_t i = 0; i < s->req.n_env; i++)
        push_env(s, s->req.env_keys[i], s->req.env_values[i]);
    push_env(s, "CLAWBOX_PROXY_SOCKET", SOCKET_IN_CT);
    push_env(s, "CLAWBOX_PROXY_TOKEN", s->token);
    push_env(s, "CLAWBOX_CONTAINER_ID", s->c->id);
    for (size_t i = 0; intercepts(s->m->cfg) && i < CB_ARRAY_LEN(ca_vars); i++)
        push_env(s, ca_vars[i], CA_IN_CT);
    return 0;
}

/* The container's row, stored while the runtime creates it: the row is on
 * disk before the 201 without its fsync adding to the spawn. It says
 * `creating` until the end's row replaces it; a restart treats it as it
 * would `running` (the container is killed and recorded so), and a spawn
 * that fails removes it. A DELETE waits until c is created. */
static void store_while_created(void *ud)
{
    struct spawn *s = ud;
    pthread_mutex_lock(&s->m->lock);
    char *record = cb__ct_record(s->c);
    pthread_mutex_unlock(&s->m->lock);
    cb__ct_store(s->m, s->c->id, record, &s->stored);
}

/* The bound directory for the runtime. Bound from its descriptor
 * (/proc/self/fd/N) by this process onto <dir>/workspace, in the server's
 * private mount namespace, for the time of the launch: the runtime (which
 * opens bind sources before it enters the user namespace, and runc then
 * mounts them from there) gets a path in a root-only directory that nobody
 * else sees, and what the caller checked is what is mounted. Outside a
 * private namespace (where a crash would leave the mount behind, under a
 * directory removed at the next start) the descriptor's path in this
 * process is given instead; crun binds it, runc cannot. */
static int stage_bind(struct spawn *s, const char *dir_rt, char **bound, struct cb_error *err)
{
    char fd_path[64];
    if (!cb_ct_mountns_private()) {
        snprintf(fd_path, sizeof(fd_path), "/proc/%ld/fd/%d", (long)getpid(), s->o->bind->fd);
        *bound = cb_xstrdup(fd_path);
        return 0;
    }
    snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", s->o->bind->fd);
    char *at = cb_xasprintf("%s/workspace", dir_rt);
    if (mkdir(at, 0700) < 0 || mount(fd_path, at, NULL, MS_BIND, NULL) < 0) {
        int e = errno;
        rmdir(at);
        free(at);
        return cb_error_set(err, -e, "binding the directory for the container: %s", strerror(e));
    }
    *bound = at;
    return 0;
}

/* Once the runtime has created the container (or failed to), its own
 * mount namespace holds the bind: the staged one goes. */
static void unstage_bind(const char *bound)
{
    if (bound == NULL || strncmp(bound, "/proc/", 6) == 0)
        return;
    if (umount2(bound, MNT_DETACH) < 0)
        cb_log(CB_LOG_ERROR, "unmounting %s: %s", bound, strerror(errno));
    else
        rmdir(bound);
}

static int create_container(struct spawn *s, struct cb_error *err)
{
    struct cb_ct_manager *m = s->m;
    const struct cb_config *cfg = m->cfg;
    char *dir = runtime_path(s->c->dir, m->ct_root, m->ct_root_rt);
    char *rootfs = runtime_path(s->c->img->rootfs, m->image_store, m->image_store_rt);
    char *proxy_dir = cb_xasprintf("%s/proxy", dir);
    char *bundle = cb_xasprintf("%s/bundle", dir);
    char *cgroup = cb_xasprintf("/clawbox/%s", s->c->id);
    /* Under interception the CA also replaces the image's system store. */
    char *ca = cb_xasprintf("%s/ca.pem", proxy_dir);
    const char *store = intercepts(cfg) ? cb_ct_trust_store(rootfs) : NULL;
    const struct cb_ct_bind *b = s->o->bind;
    char *bound = NULL;
    int r = b ? stage_bind(s, dir, &bound, err) : 0;
    struct cb_ct_mount mounts[3] = {{proxy_dir, "/run/clawbox", true}};
    size_t n_mounts = 1;
    if (store != NULL)
        mounts[n_mounts++] = (struct cb_ct_mount){ca, store, true};
    if (b != NULL)
        mounts[n_mounts++] = (struct cb_ct_mount){bound, b->target, b->read_only};
    struct cb_ct_spec spec = {
        .id = s->c->id,
        .rootfs = rootfs,
        .args = s->args,
        .n_args = s->n_args,
        .env = (const char *const *)s->env,
        .n_env = s->n_env,
        .cwd = s->c->img->workdir,
        .host_id_base = host_base(s),
        .memory_bytes = s->req.memory_mb << 20,
        .cpu_quota_us = cfg->containers.max_cpu_percent * 1000,
        .pids_max = cfg->containers.max_pids,
        .tmp_size_bytes = cfg->containers.tmp_size_mb << 20,
        .mounts = mounts,
        .n_mounts = n_mounts,
        /* The server's own path: the runtime opens it as root, and the
         * staged directory does not show the namespace's mount. */
        .netns_path = cb_ct_proxy_netns_path(s->c->px),
        .netns_inherited = m->be.joins_netns && cb_ct_proxy_netns_path(s->c->px) != NULL,
    };
    if (r == 0)
        r = cb_ct_bundle_write(bundle, &spec, err);
    struct cb_ct_launch l = {
        .monitor_exe = m->monitor_exe,
        .id = s->c->id,
        .bundle = bundle,
        .dir = dir,
        .cgroup_path = cgroup,
        .log_cap = s->req.max_output_bytes,
        .netns_path = spec.netns_inherited ? spec.netns_path : NULL,
        .meanwhile = store_while_created,
        .ud = s,
    };
    if (r == 0)
        r = m->be.launch(m->be.impl, &l, &s->c->run, err);
    if (r == 0)
        s->c->init_pidfd = cb__ct_init_pidfd(s->c->run.init_pid, s->c->id);
    /* The 201 acknowledges the container: without its row it is refused
     * (and killed by the caller). */
    if (r == 0 && s->stored.code < 0)
        r = cb_error_set(err, s->stored.code, "storing the container's record: %s", s->stored.msg);
    unstage_bind(bound);
    free(bound);
    free(dir);
    free(rootfs);
    free(proxy_dir);
    free(ca);
    free(bundle);
    free(cgroup);
    return r;
}

/* The bound directory given to the container's user, and its mount point
 * made in the image. */
static int prepare_bind(struct spawn *s, struct cb_error *err)
{
    const struct cb_ct_bind *b = s->o->bind;
    if (b == NULL)
        return 0;
    if (!cb_path_clean_abs(b->target) || cb_ct_mount_reserved(b->target) ||
        cb_path_under(b->target, "/run/clawbox") || cb_path_under("/run/clawbox", b->target))
        return cb_error_set(err, -EINVAL, "bind target %s is not allowed", b->target);
    struct stat st;
    uid_t uid = host_base(s) + CONTAINER_UID;
    if (fstat(b->fd, &st) < 0)
        return cb_error_set(err, -errno, "the bound directory: %s", strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cb_error_set(err, -ENOTDIR, "the bound directory is not a directory");
    if ((st.st_uid != uid || st.st_gid != uid) &&
        fchownat(b->fd, "", uid, uid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        return cb_error_set(err, -errno, "giving the bound directory to host uid %u: %s",
                            (unsigned)uid, strerror(errno));
    return cb__ct_mkdir_in_root(s->c->img->rootfs, b->target, err);
}

static int build_spawn(struct spawn *s, struct cb_error *err)
{
    struct cb_ct_manager *m = s->m;
    int r = cb_image_get(m->image_store, s->req.image, &s->c->img, err);
    if (r == -ENOENT) /* the request's to fix: a 400 */
        return err->code = -EINVAL;
    if (r < 0)
        return r;
    s->c->dir = cb_xasprintf("%s/%s", m->ct_root, s->c->id);
    if (mkdir(s->c->dir, 0711) < 0)
        return cb_error_set(err, -errno, "creating %s: %s", s->c->dir, strerror(errno));
    r = prepare_bind(s, err);
    if (r == 0)
        r = start_proxy(s, err);
    if (r == 0 && s->o->idle_init) {
        char *dir = cb_xasprintf("%s/proxy", s->c->dir);
        r = cb__ct_idle_init_install(dir, host_base(s) + CONTAINER_UID, err);
        free(dir);
    }
    if (r == 0)
        r = build_process(s, err);
    if (r == 0)
        r = create_container(s, err);
    return r;
}

static void spawn_free(struct spawn *s)
{
    cb_ct_request_clear(&s->req);
    json_decref(s->granted);
    free(s->args);
    for (size_t i = 0; i < s->n_env; i++)
        free(s->env[i]);
    free(s->env);
    explicit_bzero(s->token, sizeof(s->token));
}

/* A host id range of the caller's must lie past every slot's. */
static int check_spawn_opts(struct spawn *s, struct cb_error *err)
{
    const struct cb_config *cfg = s->m->cfg;
    uint32_t b = s->o->host_id_base;
    if (s->o->timeout_ms != 0)
        s->req.timeout_ms = s->o->timeout_ms < cfg->containers.max_timeout_ms
                                ? s->o->timeout_ms
                                : cfg->containers.max_timeout_ms;
    if (b != 0 && (cb_ct_owner_id_base(cfg, 0) == 0 || b < cb_ct_owner_id_base(cfg, 0) ||
                   (b - cfg->containers.userns_base) % IDS_PER_CONTAINER != 0 ||
                   (uint64_t)b + IDS_PER_CONTAINER > UINT32_MAX))
        return cb_error_set(err, -EINVAL,
                            "host id base %u is not an owner's range (above [containers] "
                            "userns_base + %u ranges, below 2^32)",
                            (unsigned)b, CB_CT_SLOTS_MAX);
    return 0;
}

int cb_ct_spawn(struct cb_ct_manager *m, const json_t *body, const char *request_id,
                const struct cb_ct_spawn_opts *opts, json_t **info, struct cb_error *err)
{
    uint64_t t0 = cb_now_mono_ns();
    static const struct cb_ct_spawn_opts none = {0};
    struct spawn s = {.m = m, .o = opts ? opts : &none};
    int r = cb_ct_request_parse(body, m->cfg, &s.req, err);
    if (r == 0)
        r = check_spawn_opts(&s, err);
    if (r == 0)
        r = check_policy(&s, err);
    if (r == 0)
        r = reserve_place(&s, err);
    if (r < 0) {
        spawn_free(&s);
        return r;
    }
    struct cb__ct *c = s.c;
    r = build_spawn(&s, err);
    pthread_mutex_lock(&m->lock);
    if (r == 0) {
        c->status = CB__CT_RUNNING;
        c->deadline_ns = cb_now_mono_ns() + s.req.timeout_ms * 1000000ULL;
        r = cb__ct_watch_add(m, c);
        if (r < 0)
            cb_error_set(err, r, "watching the container's monitor: %s", strerror(-r));
    }
    if (r < 0) {
        cb__ct_release(m, c);
        cb__ct_unlink(m, c);
        c->status = CB__CT_FAILED; /* a DELETE waiting for it finds it gone */
    } else {
        *info = cb__ct_info(c);
        c->busy++; /* its spawn is audited before anything else of it */
    }
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    if (r < 0) {
        if (c->run.monitor_pidfd >= 0) { /* started but not watched: stop it */
            m->be.kill(m->be.impl, c->id, SIGKILL, NULL);
            close(c->run.monitor_pidfd);
            close(c->run.exit_fd);
        }
        cb__ct_remove_files(m, c);
        cb_log(CB_LOG_WARN, "container spawn failed: %s", err->msg);
        cb__ct_free(c);
    } else {
        cb_metric_inc(m->m_total, (const char *[]){"spawned"}, 1);
        cb__ct_watch_poke(m);
        cb__ct_audit(m, c, request_id, "spawn");
        cb_metric_observe(m->m_spawn_seconds, NULL, (double)(cb_now_mono_ns() - t0) / 1e9);
        pthread_mutex_lock(&m->lock);
        c->busy--;
        pthread_cond_broadcast(&m->changed);
        pthread_mutex_unlock(&m->lock);
    }
    spawn_free(&s);
    return r;
}

/* ---- exec ---- */

/* Container id if it runs (m->lock held); else NULL, with -ENOENT or
 * -ESRCH in *rc and err. */
static struct cb__ct *running(struct cb_ct_manager *m, const char *id, int *rc,
                              struct cb_error *err)
{
    struct cb__ct *c = find(m, id);
    if (c == NULL || c->deleting)
        *rc = cb_error_set(err, -ENOENT, "container not found: %s", id);
    else if (c->status != CB__CT_RUNNING || c->dir == NULL || c->slot < 0)
        *rc = cb_error_set(err, -ESRCH, "container %s is not running (%s)", id,
                           cb__ct_status_name(c->status));
    else
        return c;
    return NULL;
}

/* An exec's start and end, told to the container's owner (as activity)
 * once m->lock is let go. */
struct owner_call {
    void (*fn)(void *ud, const char *owner, bool counted);
    void *ud;
    char owner[CB__CT_ID_MAX + 32];
};

static void owner_note(struct owner_call *o, const struct cb__ct *c)
{
    o->fn = c->on_activity && c->owner ? c->on_activity : NULL;
    o->ud = c->ud;
    snprintf(o->owner, sizeof(o->owner), "%s", c->owner ? c->owner : "");
}

static void owner_tell(const struct owner_call *o, bool counted)
{
    if (o->fn != NULL)
        o->fn(o->ud, o->owner, counted);
}

/* What GET /containers/{id}/execs/{exec_id} reports of an exec. */
struct cb__ct_exec_rec {
    char exec_id[CB__CT_EXEC_ID_LEN];
    json_t *command;   /* its first arguments, at most REC_COMMAND_MAX bytes */
    const char *state; /* "running", "exited", "timed_out" or "cancelled" */
    int code;          /* -1: none */
    uint64_t started_ms, start_ns, duration_ms;
    struct cb__ct_exec_rec *next;
};

#define REC_COMMAND_MAX 1024

static struct cb__ct_exec_rec *rec_new(const char *exec_id, const struct cb_ct_exec_request *q)
{
    struct cb__ct_exec_rec *r = cb_xcalloc(1, sizeof(*r));
    snprintf(r->exec_id, sizeof(r->exec_id), "%s", exec_id);
    r->command = json_array();
    size_t left = REC_COMMAND_MAX;
    for (size_t i = 0; i < q->n_command; i++) {
        size_t len = strlen(q->command[i]), n = cb_utf8_cut(q->command[i], len, left);
        json_array_append_new(r->command, json_stringn(q->command[i], n));
        left -= n;
        if (n < len)
            break;
    }
    r->state = "running";
    r->code = -1;
    r->started_ms = cb_now_wall_ms();
    r->start_ns = cb_now_mono_ns();
    return r;
}

static void rec_free(struct cb__ct_exec_rec *r)
{
    json_decref(r->command);
    free(r);
}

void cb__ct_exec_recs_free(struct cb__ct *c)
{
    while (c->exec_recs) {
        struct cb__ct_exec_rec *r = c->exec_recs;
        c->exec_recs = r->next;
        rec_free(r);
    }
}

/* A new exec id, "ex_" and 16 hex digits. */
static int new_exec_id(char out[CB__CT_EXEC_ID_LEN], struct cb_error *err)
{
    unsigned char rnd[8];
    if (cb_random_bytes(rnd, sizeof(rnd)) < 0)
        return cb_error_set(err, -EIO, "exec: no randomness");
    memcpy(out, "ex_", 3);
    cb_hex_encode(rnd, sizeof(rnd), out + 3);
    return 0;
}

int cb__ct_exec_enter(struct cb_ct_manager *m, const char *id, const struct cb_ct_exec_request *q,
                      struct cb__ct_exec_target *t, struct cb_error *err)
{
    struct owner_call oc = {0};
    char exec_id[CB__CT_EXEC_ID_LEN];
    int rc = new_exec_id(exec_id, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = running(m, id, &rc, err);
    int pidfd = c != NULL && c->init_pidfd >= 0 ? fcntl(c->init_pidfd, F_DUPFD_CLOEXEC, 0) : -1;
    if (c != NULL && (uint64_t)c->execs >= m->cfg->containers.max_execs_per_container)
        rc = cb_error_set(err, -EAGAIN,
                          "container %s already runs %d execs (containers.max_execs_per_container)",
                          id, c->execs);
    else if (c != NULL && pidfd < 0)
        rc = cb_error_set(err, -ESRCH, "container %s is not running", id);
    if (rc < 0 && pidfd >= 0)
        close(pidfd);
    if (rc == 0) {
        c->execs++;
        m->execs++;
        const char *netns = m->be.joins_netns ? cb_ct_proxy_netns_path(c->px) : NULL;
        *t = (struct cb__ct_exec_target){.dir = cb_xstrdup(c->dir),
                                         .init_pid = c->run.init_pid,
                                         .init_pidfd = pidfd,
                                         .netns = netns ? cb_xstrdup(netns) : NULL};
        memcpy(t->exec_id, exec_id, sizeof(exec_id));
        struct cb__ct_exec_rec *r = rec_new(exec_id, q);
        r->next = c->exec_recs;
        c->exec_recs = r;
        owner_note(&oc, c);
    }
    pthread_mutex_unlock(&m->lock);
    owner_tell(&oc, true);
    return rc;
}

void cb__ct_exec_target_clear(struct cb__ct_exec_target *t)
{
    if (t->dir != NULL && t->init_pidfd >= 0)
        close(t->init_pidfd);
    free(t->dir);
    free(t->netns);
    *t = (struct cb__ct_exec_target){0};
}

int cb__ct_files_target(struct cb_ct_manager *m, const char *id, struct cb__ct_files_target *t,
                        struct cb_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = running(m, id, &rc, err);
    if (c != NULL && c->init_pidfd < 0)
        rc = cb_error_set(err, -ESRCH, "container %s is not running", id);
    else if (c != NULL) {
        *t = (struct cb__ct_files_target){
            .init = c->run.init_pid,
            .init_pidfd = fcntl(c->init_pidfd, F_DUPFD_CLOEXEC, 0),
            .id_base = c->owner_id_base ? c->owner_id_base : slot_id_base(m, c->slot),
            .bind_target = c->bind_target ? cb_xstrdup(c->bind_target) : NULL};
        if (t->init_pidfd < 0)
            rc = cb_error_set(err, -errno, "container %s: %s", id, strerror(errno));
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Records exec_id's end in c's list (o NULL: removes it), keeping the
 * last CB__CT_EXECS_KEPT finished. Under m->lock. */
static void rec_end(struct cb__ct *c, const char *exec_id, const struct cb__ct_exec_outcome *o)
{
    size_t finished = 0;
    for (struct cb__ct_exec_rec **p = &c->exec_recs, *r; (r = *p) != NULL;) {
        bool mine = strcmp(r->exec_id, exec_id) == 0;
        if (mine && o != NULL) {
            r->state = o->cancelled ? "cancelled" : o->timed_out ? "timed_out" : "exited";
            r->code = o->code;
            r->duration_ms = o->duration_ms;
        }
        bool done = strcmp(r->state, "running") != 0;
        if ((mine && o == NULL) || (done && ++finished > CB__CT_EXECS_KEPT)) {
            *p = r->next;
            rec_free(r);
        } else {
            p = &r->next;
        }
    }
}

void cb__ct_exec_ended(struct cb_ct_manager *m, const char *id, const char *exec_id,
                       const struct cb__ct_exec_outcome *o)
{
    pthread_mutex_lock(&m->lock);
    for (struct cb__ct *c = m->list; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            rec_end(c, exec_id, o);
    pthread_mutex_unlock(&m->lock);
}

void cb__ct_exec_leave(struct cb_ct_manager *m, const char *id, const char *exec_id, bool ran)
{
    struct owner_call oc = {0};
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = listed(m, id);
    if (c != NULL)
        owner_note(&oc, c);
    pthread_mutex_unlock(&m->lock);
    /* Told before the exec is counted out: the close waits for that, and
     * the owner (an agent) may be freed once the close returns. */
    owner_tell(&oc, false); /* its end is activity too, not another execution */
    pthread_mutex_lock(&m->lock);
    c = listed(m, id);
    if (c != NULL && c->execs > 0) {
        c->execs--;
        if (!ran)
            rec_end(c, exec_id, NULL);
    }
    m->execs--;
    pthread_cond_broadcast(&m->changed); /* the manager's close waits for every exec */
    pthread_mutex_unlock(&m->lock);
}

int cb_ct_execs_running(struct cb_ct_manager *m, const char *id)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    int n = c != NULL ? c->execs : 0;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int cb_ct_exec_info(struct cb_ct_manager *m, const char *id, const char *exec_id, json_t **out,
                    struct cb_error *err)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    struct cb__ct_exec_rec *r = c && !c->abandoned ? c->exec_recs : NULL;
    while (r != NULL && strcmp(r->exec_id, exec_id) != 0)
        r = r->next;
    if (r != NULL) {
        bool running = strcmp(r->state, "running") == 0;
        char at[CB_RFC3339_LEN];
        cb_rfc3339_ms(r->started_ms, at);
        *out = json_pack(
            "{s:s, s:O, s:s, s:o, s:I, s:s}", "exec_id", r->exec_id, "command", r->command, "state",
            r->state, "exit_code", r->code >= 0 ? json_integer(r->code) : json_null(),
            "duration_ms",
            (json_int_t)(running ? (cb_now_mono_ns() - r->start_ns) / 1000000u : r->duration_ms),
            "started_at", at);
    }
    pthread_mutex_unlock(&m->lock);
    if (c == NULL)
        return cb_error_set(err, -ENOENT, "container not found: %s", id);
    if (r == NULL)
        return cb_error_set(err, -ENOENT, "exec not found: %s", exec_id);
    return 0;
}

/* ---- list, get, delete, logs ---- */

json_t *cb_ct_list(struct cb_ct_manager *m)
{
    json_t *a = json_array();
    pthread_mutex_lock(&m->lock);
    for (struct cb__ct *c = m->list; c; c = c->next)
        if (!c->abandoned)
            json_array_append_new(a, cb__ct_info(c));
    pthread_mutex_unlock(&m->lock);
    return a;
}

int cb_ct_get(struct cb_ct_manager *m, const char *id, json_t **info)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    if (c)
        *info = cb__ct_info(c);
    pthread_mutex_unlock(&m->lock);
    return c ? 0 : -ENOENT;
}

/* The output log's last `tail` lines (0 = all), scanned and redacted like
 * /execute output, as a JSON string. */
static json_t *read_output(struct cb_ct_manager *m, const char *dir, size_t tail)
{
    char *path = cb_xasprintf("%s/output.log", dir);
    struct cb_file f;
    struct cb_error err = {0};
    /* The monitor caps the log; the bound here only guards against a
     * file that is not its. */
    int r = cb_file_load(&f, AT_FDCWD, path, m->cfg->containers.max_output_bytes + 1,
                         CB_FILE_NOFOLLOW, &err);
    free(path);
    if (r < 0) {
        cb_file_close(&f);
        return json_null();
    }
    size_t start = cb__ct_tail_start(f.buf.data, f.buf.len, tail);
    json_t *out = cb__ct_redact_text(m, f.buf.data + start, f.buf.len - start);
    cb_file_close(&f);
    return out;
}

/* Waits (under m->lock) until the container `id` is no longer being
 * created; NULL when its creation failed (the spawn then frees it, so only
 * the list is looked at, never the old pointer). */
static struct cb__ct *wait_created(struct cb_ct_manager *m, const char *id)
{
    struct cb__ct *c;
    while ((c = find(m, id)) != NULL && c->status == CB__CT_CREATING)
        pthread_cond_wait(&m->changed, &m->lock);
    return c;
}

int cb_ct_delete(struct cb_ct_manager *m, const char *id, const char *request_id, json_t **result,
                 struct cb_error *err)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    if (c == NULL || c->deleting) {
        pthread_mutex_unlock(&m->lock);
        return cb_error_set(err, -ENOENT, "container not found: %s", id);
    }
    c->deleting = true;
    if ((c = wait_created(m, id)) == NULL) {
        pthread_mutex_unlock(&m->lock);
        return cb_error_set(err, -ENOENT, "container not found: %s", id);
    }
    if (c->status == CB__CT_RUNNING) {
        pthread_mutex_unlock(&m->lock);
        cb__ct_kill(m, c, CB__CT_KILLED);
        pthread_mutex_lock(&m->lock);
    }
    /* Its end, then its monitor's (the runtime's delete is done): its
     * files are not removed under a monitor still at work. */
    struct timespec until = cb_mono_deadline(DELETE_WAIT_MS);
    while ((c->status == CB__CT_RUNNING || c->run.monitor_pidfd >= 0) &&
           pthread_cond_timedwait(&m->changed, &m->lock, &until) != ETIMEDOUT)
        ;
    cb__ct_wait_idle(m, c);
    /* A monitor still at work may yet run the runtime's delete in c's
     * files, and its end is what frees c's slot: c is left to gone(),
     * kept alive by busy while the answer is made. */
    bool stuck = c->status == CB__CT_RUNNING || c->run.monitor_pidfd >= 0;
    if (stuck) {
        cb_log(CB_LOG_ERROR,
               "container %s: its monitor has not ended after %d ms; it is removed when it ends",
               c->id, DELETE_WAIT_MS);
        c->abandoned = true;
        c->busy++;
    } else {
        cb__ct_unwatch(m, c);
        cb__ct_unlink(m, c);
    }
    pthread_mutex_unlock(&m->lock);
    *result = json_pack("{s:s, s:s, s:o}", "container_id", c->id, "status", "killed", "output",
                        c->dir ? read_output(m, c->dir, 0) : json_null());
    cb__ct_audit(m, c, request_id, "delete");
    cb_metric_inc(m->m_total, (const char *[]){"killed"}, 1);
    if (stuck) {
        pthread_mutex_lock(&m->lock);
        c->busy--;
        pthread_cond_broadcast(&m->changed);
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    cb__ct_remove_files(m, c);
    cb__ct_free(c);
    return 0;
}

int cb_ct_logs(struct cb_ct_manager *m, const char *id, size_t tail, char **text,
               struct cb_error *err)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    char *dir = c && c->dir ? cb_xstrdup(c->dir) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (c == NULL) {
        free(dir);
        return cb_error_set(err, -ENOENT, "container not found: %s", id);
    }
    json_t *out = dir ? read_output(m, dir, tail) : json_null();
    free(dir);
    *text = cb_xstrdup(json_is_string(out) ? json_string_value(out) : "");
    json_decref(out);
    return 0;
}

int cb_ct_logs_follow(struct cb_ct_manager *m, const char *id, size_t tail,
                      struct cb_ct_follow **out, struct cb_error *err)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    char *dir = c && c->dir ? cb_xstrdup(c->dir) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (c == NULL)
        return cb_error_set(err, -ENOENT, "container not found: %s", id);
    *out = cb__ct_follow_new(m, id, dir, tail);
    free(dir);
    return 0;
}

bool cb__ct_output_final(struct cb_ct_manager *m, const char *id)
{
    pthread_mutex_lock(&m->lock);
    struct cb__ct *c = find(m, id);
    bool final = c == NULL || c->dir == NULL ||
                 (c->status != CB__CT_CREATING && c->status != CB__CT_RUNNING);
    pthread_mutex_unlock(&m->lock);
    return final;
}
