/* base64: encodes a string to base64 or strictly decodes base64 (RFC 4648).
 * Params: {"operation": "encode"|"decode", "input": string, "url_safe"?: bool}
 *
 * url_safe selects the "-_" alphabet; its encoding has no padding and its
 * decoding accepts padded or unpadded input. The standard alphabet needs
 * padding to a multiple of 4. Decoding rejects whitespace, characters
 * outside the alphabet, misplaced padding and non-zero trailing bits, and
 * says where. Output: encode {"operation","output","url_safe"}; decode
 * {"operation","output","utf8":true,"length"} or, when the bytes are not
 * UTF-8 text, {"operation","output":null,"output_hex","utf8":false,"length"}. */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <stdlib.h>
#include <string.h>

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static struct cb_json *encode(const uint8_t *p, size_t n, int url_safe)
{
    const char *a = url_safe ? url_alphabet : std_alphabet;
    struct clawbox_buf b;
    char q[4];

    clawbox_buf_init(&b, CB_JSON_MAX_OUTPUT);
    for (size_t i = 0; i < n; i += 3) {
        size_t k = n - i < 3 ? n - i : 3;
        uint32_t v =
            (uint32_t)p[i] << 16 | (k > 1 ? (uint32_t)p[i + 1] << 8 : 0) | (k > 2 ? p[i + 2] : 0);
        q[0] = a[v >> 18];
        q[1] = a[(v >> 12) & 63];
        q[2] = k > 1 ? a[(v >> 6) & 63] : '=';
        q[3] = k > 2 ? a[v & 63] : '=';
        clawbox_buf_append(&b, q, url_safe ? k + 1 : 4);
    }
    if (b.failed) {
        clawbox_buf_free(&b);
        return NULL;
    }
    struct cb_json *v = cb_json_new_stringn(b.data ? b.data : "", b.len);
    clawbox_buf_free(&b);
    return v;
}

/* Value of c in the alphabet, or -1. */
static int sextet(char c, int url_safe)
{
    const char *a = url_safe ? url_alphabet : std_alphabet;
    const char *hit = c ? memchr(a, c, 64) : NULL;
    return hit ? (int)(hit - a) : -1;
}

static void describe_char(char *tmp, size_t n, unsigned char c)
{
    if (c > 0x20 && c < 0x7f)
        snprintf(tmp, n, "'%c'", c);
    else
        snprintf(tmp, n, "byte 0x%02x", c);
}

/* Checks length and padding; sets *data_len to the length without
 * padding. Returns 0 or -1 with err set. */
static int check_shape(const char *s, size_t n, int url_safe, size_t *data_len,
                       struct cb_tool_error *err)
{
    size_t pad = 0;

    while (pad < n && pad < 3 && s[n - 1 - pad] == '=')
        pad++;
    if (pad && n % 4 != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "invalid padding: padded input must be a multiple of 4 characters (got %zu)", n);
        return -1;
    }
    if (pad > 2) {
        snprintf(err->msg, sizeof(err->msg), "invalid padding at position %zu", n - pad);
        return -1;
    }
    if (!pad && !url_safe && n % 4 != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "invalid length %zu: standard base64 needs padding to a multiple of 4 "
                 "characters (set url_safe for unpadded input)",
                 n);
        return -1;
    }
    if ((n - pad) % 4 == 1) {
        snprintf(err->msg, sizeof(err->msg),
                 "invalid length: %zu data characters cannot encode whole bytes", n - pad);
        return -1;
    }
    *data_len = n - pad;
    return 0;
}

static int bad_char(const char *s, size_t i, int url_safe, struct cb_tool_error *err)
{
    char tmp[16];
    const char *hint = "";

    describe_char(tmp, sizeof(tmp), (unsigned char)s[i]);
    if (s[i] == '=')
        hint = " (padding is only allowed at the end)";
    else if (!url_safe && (s[i] == '-' || s[i] == '_'))
        hint = " (set url_safe for the URL-safe alphabet)";
    else if (url_safe && (s[i] == '+' || s[i] == '/'))
        hint = " (this is the standard alphabet; unset url_safe)";
    snprintf(err->msg, sizeof(err->msg), "invalid character %s at position %zu%s", tmp, i, hint);
    return -1;
}

/* Strictly decodes s into b. Returns 0 or -1 with err->msg. */
static int decode(const char *s, size_t n, int url_safe, struct clawbox_buf *b,
                  struct cb_tool_error *err)
{
    size_t len;
    uint32_t acc = 0;
    int bits = 0;

    if (check_shape(s, n, url_safe, &len, err))
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = sextet(s[i], url_safe);
        if (v < 0)
            return bad_char(s, i, url_safe, err);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            clawbox_buf_putc(b, (char)(acc >> bits));
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "non-canonical input: unused bits of the last character (position %zu) "
                 "are not zero",
                 len - 1);
        return -1;
    }
    return 0;
}

static struct cb_json *hex(const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * n + 1);
    struct cb_json *v;

    if (!out)
        return cb_json_new_null();
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[(unsigned char)p[i] >> 4];
        out[2 * i + 1] = digits[(unsigned char)p[i] & 15];
    }
    v = cb_json_new_stringn(out, 2 * n);
    free(out);
    return v;
}

static struct cb_json *decode_result(const char *s, size_t n, int url_safe)
{
    struct cb_tool_error err;
    struct clawbox_buf b;
    struct cb_json *out;

    clawbox_buf_init(&b, n);
    clawbox_buf_append(&b, "", 0);
    if (decode(s, n, url_safe, &b, &err)) {
        clawbox_buf_free(&b);
        out = cb_json_new_object();
        cb_json_set(out, "error", cb_json_new_string(err.msg));
        return out;
    }
    out = cb_json_new_object();
    cb_json_set(out, "operation", cb_json_new_string("decode"));
    if (cb_utf8_valid(b.data, b.len)) {
        cb_json_set(out, "output", cb_json_new_stringn(b.data, b.len));
        cb_json_set(out, "utf8", cb_json_new_bool(1));
    } else {
        cb_json_set(out, "output", cb_json_new_null());
        cb_json_set(out, "output_hex", hex(b.data, b.len));
        cb_json_set(out, "utf8", cb_json_new_bool(0));
    }
    cb_json_set(out, "length", cb_json_new_int((long long)b.len));
    clawbox_buf_free(&b);
    return out;
}

static struct cb_json *encode_result(const char *s, size_t n, int url_safe)
{
    struct cb_json *v = encode((const uint8_t *)s, n, url_safe), *out = cb_json_new_object();

    if (!v) {
        cb_json_set(out, "error", cb_json_new_string("encoded output too large"));
        return out;
    }
    cb_json_set(out, "operation", cb_json_new_string("encode"));
    cb_json_set(out, "output", v);
    cb_json_set(out, "url_safe", cb_json_new_bool(url_safe));
    return out;
}

static void run(const struct cb_json *params)
{
    const char *op = cb_json_str(cb_json_get(params, "operation"));
    const struct cb_json *input = cb_json_get(params, "input");
    const struct cb_json *us = cb_json_get(params, "url_safe");
    int url_safe = 0;
    struct cb_json *out;

    if (!cb_json_is(params, CB_JSON_OBJECT)) {
        cb_output_error("invalid input: params must be an object");
        return;
    }
    if (!cb_json_str(input)) {
        cb_output_error("invalid input: 'input' must be a string");
        return;
    }
    if (us && !cb_json_is(us, CB_JSON_NULL) && cb_json_bool(us, &url_safe)) {
        cb_output_error("invalid input: 'url_safe' must be a boolean");
        return;
    }
    if (op && strcmp(op, "encode") == 0)
        out = encode_result(input->text, input->text_len, url_safe);
    else if (op && strcmp(op, "decode") == 0)
        out = decode_result(input->text, input->text_len, url_safe);
    else {
        cb_output_error("invalid input: 'operation' must be \"encode\" or \"decode\"");
        return;
    }
    cb_output(out);
    cb_json_free(out);
}

int main(void)
{
    struct cb_tool_error err;
    struct cb_json *params;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    run(params);
    cb_json_free(params);
    return 0;
}
