/* cb_ct_env_check: which environment keys a request may give a container. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "containers/bundle.h"

static void accepted(const char *key)
{
    struct cb_error err = {0};
    int r = cb_ct_env_check(key, &err);
    if (r != 0)
        fail_msg("\"%s\" refused: %s", key, err.msg);
}

/* Refused with -EINVAL and a message that contains `named` and `why`. */
static void refused(const char *key, const char *named, const char *why)
{
    struct cb_error err = {0};
    assert_int_equal(cb_ct_env_check(key, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    if (strstr(err.msg, named) == NULL || strstr(err.msg, why) == NULL)
        fail_msg("message for \"%s\" lacks \"%s\"/\"%s\": %s", key, named, why, err.msg);
}

static void good_keys(void **state)
{
    (void)state;
    const char *good[] = {"A",           "_",           "_x",    "PATH",       "HOME",
                          "MY_VAR_2",    "lower",       "a1_B2", "LD",         "LDX_FOO",
                          "XLD_PRELOAD", "ENVIRONMENT", "PROXY", "PROXY_HOST", "http_proxy_x",
                          "CLAWBOX",     "PYTHONPATHS", "MY_ENV"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        accepted(good[i]);
    char longest[CB_CT_ENV_KEY_MAX + 1];
    memset(longest, 'K', CB_CT_ENV_KEY_MAX);
    longest[CB_CT_ENV_KEY_MAX] = '\0';
    accepted(longest);
}

static void reserved_keys(void **state)
{
    (void)state;
    const char *reserved[] = {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "Https_Proxy",
        "FTP_PROXY",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_ANYTHING",
        "LD_",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "PERL5OPT",
        "BASH_ENV",
        "ENV",
        "PYTHONSTARTUP",
        "CLAWBOX_PROXY_SOCKET",
        "CLAWBOX_PROXY_TOKEN",
        "CLAWBOX_CONTAINER_ID",
        "CLAWBOX_OTHER",
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", reserved[i]);
        refused(reserved[i], quoted, "reserved");
    }
}

static void bad_keys(void **state)
{
    (void)state;
    /* The reference let "LD_PRELOAD=/x.so" through as a key. */
    refused("LD_PRELOAD=/x.so", "\"LD_PRELOAD=/x.so\"", "not a valid name");
    refused("", "\"\"", "not a valid name");
    refused("1A", "\"1A\"", "not a valid name");
    refused("A-B", "\"A-B\"", "not a valid name");
    refused("A B", "\"A B\"", "not a valid name");
    refused("A.B", "\"A.B\"", "not a valid name");
    refused("\xc3\xa9T\xc3\xa9", "\"??T??\"", "not a valid name");
    refused("A\nB", "\"A?B\"", "not a valid name");

    char toolong[CB_CT_ENV_KEY_MAX + 2];
    memset(toolong, 'K', CB_CT_ENV_KEY_MAX + 1);
    toolong[CB_CT_ENV_KEY_MAX + 1] = '\0';
    char shown[80];
    memset(shown, 'K', 64);
    memcpy(shown + 64, "...\"", 5);
    refused(toolong, shown, "at most 255 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_keys),
        cmocka_unit_test(reserved_keys),
        cmocka_unit_test(bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
