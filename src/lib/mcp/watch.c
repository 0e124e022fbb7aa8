/* notifications/tools/list_changed: while a session is initialised, a
 * thread asks the server for its tools every cfg.watch_ms and tells the
 * client when the answer differs from the last one (a tool added, removed,
 * finished compiling, failed, or its manifest changed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "mcp/internal.h"

/* The server's answer to GET /tools as text, or NULL when it gave none. */
static char *tools_text(struct cb_mcp *m)
{
    struct cb_error err = {0};
    struct cb_buf body;
    long status = 0;
    cb_buf_init(&body, CB_CLIENT_MAX_RESPONSE);
    int rc = cb__mcp_request(m, "GET", "/tools", NULL, &status, &body, &err);
    char *text =
        rc == 0 && status == 200 ? cb_xstrndup(body.data ? body.data : "", body.len) : NULL;
    cb_buf_free(&body);
    return text;
}

static bool initialized(struct cb_mcp *m)
{
    pthread_mutex_lock(&m->lock);
    bool on = m->initialized;
    pthread_mutex_unlock(&m->lock);
    return on;
}

/* Sleeps ms, or less when stopped; returns whether to go on. */
static bool pause_ms(struct cb_mcp *m, unsigned ms)
{
    struct timespec until = cb_mono_deadline(ms);
    pthread_mutex_lock(&m->lock);
    while (!m->watch_stop && pthread_cond_timedwait(&m->watch_cv, &m->lock, &until) != ETIMEDOUT)
        ;
    bool go_on = !m->watch_stop;
    pthread_mutex_unlock(&m->lock);
    return go_on;
}

/* Until the first answer after initialize, look often: the list the client
 * saw at initialize is the one later changes are measured against. */
#define WATCH_START_MS 20

static void *mcp_watch_main(void *arg)
{
    struct cb_mcp *m = arg;
    char *last = NULL;
    while (pause_ms(m, last ? m->cfg.watch_ms : WATCH_START_MS)) {
        char *now = initialized(m) ? tools_text(m) : NULL;
        if (now == NULL)
            continue; /* not yet, or the server is away: say nothing */
        if (last != NULL && strcmp(last, now) != 0)
            cb__mcp_send(m, json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method",
                                      "notifications/tools/list_changed"));
        free(last);
        last = now;
    }
    free(last);
    return NULL;
}

void cb__mcp_watch_start(struct cb_mcp *m)
{
    if (m->cfg.watch_ms == 0)
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->watch_cv, &ca);
    pthread_condattr_destroy(&ca);
    m->watching = pthread_create(&m->watch_thread, NULL, mcp_watch_main, m) == 0;
    if (!m->watching)
        pthread_cond_destroy(&m->watch_cv);
}

void cb__mcp_watch_stop(struct cb_mcp *m)
{
    if (!m->watching)
        return;
    pthread_mutex_lock(&m->lock);
    m->watch_stop = true;
    pthread_cond_broadcast(&m->watch_cv);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->watch_thread, NULL);
    pthread_cond_destroy(&m->watch_cv);
    m->watching = false;
}
