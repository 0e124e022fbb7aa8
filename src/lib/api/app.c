#include "api/app.h"
#include "core/fs.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "state/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cb_app_open(const struct cb_config *cfg, struct cb_app **out, struct cb_error *err)
{
    struct cb_app *app = cb_xcalloc(1, sizeof(*app));
    app->cfg = cfg;
    app->started_ns = cb_now_mono_ns();
    const char *tr = getenv("CLAWBOX_TEST_ROUTES");
    app->test_routes = tr != NULL && strcmp(tr, "1") == 0;
    app->metrics = cb_metrics_new();
    int r = cb_mkdir_p(cfg->server.data_dir, 0700, err);
    if (r == 0) {
        char *db = cb_xasprintf("%s/state.db", cfg->server.data_dir);
        r = cb_state_open(db, &app->state, err);
        free(db);
    }
    if (r < 0) {
        cb_app_close(app);
        return r;
    }
    *out = app;
    return 0;
}

void cb_app_close(struct cb_app *app)
{
    if (app == NULL)
        return;
    cb_state_close(app->state);
    cb_metrics_free(app->metrics);
    free(app);
}

void cb_api_register(struct cb_router *r, const struct cb_app *app)
{
    cb_router_add(r, "GET", "/health", cb_api_health, CB_ROUTE_PUBLIC);
    cb_router_add(r, "GET", "/metrics", cb_api_metrics, CB_ROUTE_PUBLIC);
    if (app->test_routes)
        cb_router_add(r, "POST", "/__test/sleep", cb_api_test_sleep, CB_ROUTE_JSON);
}
