/* ContainerInfo: the reference's shape (container_id, status, policy,
 * created_at, task_summary, proxy_socket, resource_usage) plus what a
 * client needs to know how it ended (image, finished_at, exit_code,
 * oom_killed, output_dropped_bytes, error) and who started it (owner: an
 * agent's container is "agent:<id>"). The stored row is the same
 * document with the times in milliseconds, so a restart can rebuild it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "containers/images.h"
#include "containers/internal.h"
#include "containers/proxysock.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state.h"

static const char *const status_names[] = {
    [CB__CT_NONE] = "none",       [CB__CT_CREATING] = "creating",
    [CB__CT_RUNNING] = "running", [CB__CT_COMPLETED] = "completed",
    [CB__CT_FAILED] = "failed",   [CB__CT_TIMED_OUT] = "timed_out",
    [CB__CT_KILLED] = "killed",
};

const char *cb__ct_status_name(enum cb__ct_status s)
{
    return (size_t)s < CB_ARRAY_LEN(status_names) ? status_names[s] : "failed";
}

int cb__ct_status_parse(const char *s, enum cb__ct_status *out)
{
    for (size_t i = CB__CT_CREATING; i < CB_ARRAY_LEN(status_names); i++)
        if (s != NULL && strcmp(s, status_names[i]) == 0) {
            *out = (enum cb__ct_status)i;
            return 0;
        }
    return -1;
}

static json_t *time_or_null(uint64_t ms)
{
    if (ms == 0)
        return json_null();
    char t[CB_RFC3339_LEN];
    cb_rfc3339_ms(ms, t);
    return json_string(t);
}

json_t *cb__ct_info(const struct cb__ct *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "container_id", json_string(c->id));
    json_object_set_new(o, "status", json_string(cb__ct_status_name(c->status)));
    json_object_set_new(o, "policy", json_string(cb_ct_policy_name(c->policy)));
    json_object_set_new(o, "created_at", time_or_null(c->created_ms));
    json_object_set_new(o, "task_summary", json_string(c->task));
    json_object_set_new(o, "proxy_socket", json_string("/run/clawbox/proxy.sock"));
    json_object_set_new(o, "resource_usage", json_null());
    json_object_set_new(o, "image", json_string(c->image));
    json_object_set_new(o, "finished_at", time_or_null(c->finished_ms));
    json_object_set_new(o, "exit_code",
                        c->exited && c->exit.signal == 0 ? json_integer(c->exit.exit_code)
                                                         : json_null());
    json_object_set_new(
        o, "signal", c->exited && c->exit.signal != 0 ? json_integer(c->exit.signal) : json_null());
    json_object_set_new(o, "oom_killed", json_boolean(c->exited && c->exit.oom_killed));
    json_object_set_new(o, "output_dropped_bytes",
                        json_integer(c->exited ? (json_int_t)c->exit.dropped_bytes : 0));
    json_object_set_new(o, "error", c->error ? json_string(c->error) : json_null());
    json_object_set_new(o, "owner", c->owner ? json_string(c->owner) : json_null());
    return o;
}

char *cb__ct_record(const struct cb__ct *c)
{
    json_t *doc = cb__ct_info(c);
    json_object_set_new(doc, "created_ms", json_integer((json_int_t)c->created_ms));
    json_object_set_new(doc, "finished_ms", json_integer((json_int_t)c->finished_ms));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

int cb__ct_store(struct cb_ct_manager *m, const char *id, char *text, struct cb_error *err)
{
    struct cb_error local = {0};
    err = err ? err : &local;
    int r = text == NULL ? cb_error_set(err, -ENOMEM, "out of memory")
                         : cb_state_put(m->state, CB_STATE_CONTAINERS, id, text, err);
    if (r < 0)
        cb_log(CB_LOG_ERROR, "container %s: its record was not stored: %s", id, err->msg);
    free(text);
    return r;
}

void cb__ct_persist(struct cb_ct_manager *m, const struct cb__ct *c)
{
    cb__ct_store(m, c->id, cb__ct_record(c), NULL);
}

void cb__ct_wait_idle(struct cb_ct_manager *m, struct cb__ct *c)
{
    while (c->busy > 0)
        pthread_cond_wait(&m->changed, &m->lock);
}

void cb__ct_free(struct cb__ct *c)
{
    if (c == NULL)
        return;
    cb_image_free(c->img);
    cb__ct_exec_recs_free(c);
    free(c->task);
    free(c->image);
    free(c->error);
    free(c->owner);
    free(c->bind_target);
    free(c->dir);
    if (c->init_pidfd >= 0)
        close(c->init_pidfd);
    free(c);
}
