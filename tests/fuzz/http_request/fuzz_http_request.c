/* libFuzzer target for the params of the http_request host call: the input
 * is the params JSON a tool sends (url, method, headers, body), given to
 * cb_proxy_http_request of a real proxy whose tool may reach nothing (see
 * common/proxy.h): every stage up to the address policy runs, with a
 * credential store behind the leak scan and a real audit log.
 *
 * Invariants (a broken one calls __builtin_trap()): the answer is one JSON
 * object with exactly one member, "error", holding a non-empty string
 * (never "ok": nothing may leave), and it serialises (the main process
 * sends it to the child as text). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../common/proxy.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The session parses the envelope without JSON_ALLOW_NUL; params may
     * be any JSON value in it. */
    json_t *params = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (params == NULL)
        return 0;
    const struct fuzz_proxy *fp = fuzz_proxy_get();
    json_t *env =
        cb_proxy_http_request(fp->proxy, fp->manifest, fp->granted, params, "fuzz-request");
    check(json_is_object(env) && json_object_size(env) == 1);
    const char *msg = json_string_value(json_object_get(env, "error"));
    check(msg != NULL && msg[0] != '\0');
    char *text = json_dumps(env, JSON_COMPACT);
    check(text != NULL);
    free(text);
    json_decref(env);
    json_decref(params);
    return 0;
}
