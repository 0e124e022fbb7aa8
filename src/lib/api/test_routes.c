/* Routes of the end-to-end test binary only (clawbox-test; not part of
 * libclawbox, so the shipped clawbox has none of them), for the tests of
 * concurrency, limits and shutdown. They are authenticated and limited
 * like every protected route. */
#include "api/app.h"
#include "api/validate.h"

#include <time.h>

#define TEST_SLEEP_MAX_MS 30000

/* POST /__test/sleep {"ms": N}: sleeps N ms, then answers {"slept_ms": N}. */
static void test_sleep(struct cb_http_request *req, struct cb_http_response *res)
{
    uint64_t ms = 0;
    if (!cb__api_body_object(req, res) ||
        !cb__api_get_uint(req, res, "ms", true, TEST_SLEEP_MAX_MS, &ms))
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    cb_http_respond_json(res, 200, json_pack("{s:I}", "slept_ms", (json_int_t)ms));
}

void cb__api_register_test_routes(struct cb_router *r)
{
    cb_router_add(r, "POST", "/__test/sleep", test_sleep, CB_ROUTE_JSON);
}
