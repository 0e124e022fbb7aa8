/* libFuzzer target for the first bytes of a redirected connection
 * (egress/sniff.c): the classifier and the ClientHello SNI parser. The
 * input is what a container sends first. Invariants (a broken one calls
 * __builtin_trap()):
 *   - the SNI parser answers within its contract, and a name it returns is
 *     a lowercase host name of at most 253 bytes;
 *   - a decision is final: what the classifier or the SNI parser decided on
 *     the first half of the input, it decides on the whole of it (and the
 *     same name);
 *   - TLS is 0x16 0x03, and HTTP a line that ends in CRLF. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "egress/sniff.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static void check_name(const char *name)
{
    size_t n = strlen(name);
    check(n > 0 && n <= CB_EGRESS_NAME_MAX && name[0] != '.' && name[n - 1] != '.');
    for (size_t i = 0; i < n; i++)
        check((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-' || name[i] == '_' || (name[i] == '.' && name[i + 1] != '.'));
}

static void classify(const uint8_t *data, size_t size)
{
    enum cb_egress_proto half = cb_egress_classify(data, size / 2);
    enum cb_egress_proto whole = cb_egress_classify(data, size);
    check(half == CB_EGRESS_NEED_MORE || half == whole);
    if (whole == CB_EGRESS_TLS)
        check(data[0] == 0x16 && data[1] == 0x03);
    if (whole == CB_EGRESS_HTTP)
        check(memmem(data, size, "\r\n", 2) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    classify(data, size);
    char half[CB_EGRESS_NAME_MAX + 1], whole[CB_EGRESS_NAME_MAX + 1];
    int h = cb_egress_tls_sni(data, size / 2, half);
    int w = cb_egress_tls_sni(data, size, whole);
    check(w == 1 || w == 0 || w == -EAGAIN || w == -EINVAL || w == -E2BIG);
    if (w == 1)
        check_name(whole);
    else
        check(whole[0] == '\0');
    if (h != -EAGAIN) {
        check(h == w);
        check(strcmp(half, whole) == 0);
    }
    return 0;
}
