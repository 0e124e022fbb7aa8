/* hash: hashes a string with SHA-256, 32-bit FNV-1a, djb2 or CRC-32 (IEEE,
 * as zlib), or all four. Digests are lowercase hex.
 * Params: {"input": string, "algorithm"?: "sha256"|"fnv1a"|"djb2"|"crc32"|"all"}
 * (default sha256). Output: {"algorithm", "hash", "input_length"}, or for
 * "all" {"algorithm":"all", "hashes": {name: hex, ...}, "input_length"}. */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <string.h>

/* ---- SHA-256 (FIPS 180-4) ---- */

struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t fill;
    uint64_t bits;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *c, const uint8_t *p)
{
    uint32_t w[64], s[8];

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, c->h, sizeof(s));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = s[7] + (ror(s[4], 6) ^ ror(s[4], 11) ^ ror(s[4], 25)) +
                      ((s[4] & s[5]) ^ (~s[4] & s[6])) + sha256_k[i] + w[i];
        uint32_t t2 = (ror(s[0], 2) ^ ror(s[0], 13) ^ ror(s[0], 22)) +
                      ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof(s[0]));
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        c->h[i] += s[i];
}

static void sha256_init(struct sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->fill = 0;
    c->bits = 0;
}

static void sha256_update(struct sha256 *c, const uint8_t *p, size_t n)
{
    c->bits += (uint64_t)n * 8;
    while (n > 0) {
        size_t k = 64 - c->fill < n ? 64 - c->fill : n;
        memcpy(c->block + c->fill, p, k);
        c->fill += k, p += k, n -= k;
        if (c->fill == 64) {
            sha256_block(c, c->block);
            c->fill = 0;
        }
    }
}

static void sha256_final(struct sha256 *c, uint8_t out[32])
{
    uint64_t bits = c->bits;
    uint8_t pad = 0x80, zero = 0, len[8];

    sha256_update(c, &pad, 1);
    while (c->fill != 56)
        sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- the small ones ---- */

static uint32_t fnv1a32(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193u;
    return h;
}

static uint32_t djb2(const uint8_t *p, size_t n)
{
    uint32_t h = 5381;
    for (size_t i = 0; i < n; i++)
        h = h * 33 + p[i];
    return h;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    uint32_t crc = 0xffffffffu;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

/* ---- tool ---- */

static struct cb_json *hex_value(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char out[65];

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return cb_json_new_stringn(out, 2 * n);
}

static struct cb_json *hex32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return hex_value(b, 4);
}

/* Returns the digest of algorithm `alg`, or NULL if alg is unknown. */
static struct cb_json *digest(const char *alg, const uint8_t *p, size_t n)
{
    if (strcmp(alg, "sha256") == 0) {
        struct sha256 c;
        uint8_t out[32];
        sha256_init(&c);
        sha256_update(&c, p, n);
        sha256_final(&c, out);
        return hex_value(out, sizeof(out));
    }
    if (strcmp(alg, "fnv1a") == 0)
        return hex32(fnv1a32(p, n));
    if (strcmp(alg, "djb2") == 0)
        return hex32(djb2(p, n));
    if (strcmp(alg, "crc32") == 0)
        return hex32(crc32_ieee(p, n));
    return NULL;
}

static struct cb_json *run(const struct cb_json *params)
{
    static const char *const all[] = {"sha256", "fnv1a", "djb2", "crc32"};
    const struct cb_json *input = cb_json_get(params, "input");
    const struct cb_json *algv = cb_json_get(params, "algorithm");
    const char *alg = algv ? cb_json_str(algv) : "sha256";
    const uint8_t *p = (const uint8_t *)cb_json_str(input);
    size_t n = cb_json_strlen(input);
    struct cb_json *out, *h;

    if (!cb_json_is(params, CB_JSON_OBJECT))
        return NULL;
    if (!p || !alg)
        return NULL;
    out = cb_json_new_object();
    cb_json_set(out, "algorithm", cb_json_new_string(alg));
    if (strcmp(alg, "all") == 0) {
        h = cb_json_new_object();
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            cb_json_set(h, all[i], digest(all[i], p, n));
        cb_json_set(out, "hashes", h);
    } else if ((h = digest(alg, p, n)) != NULL) {
        cb_json_set(out, "hash", h);
    } else {
        cb_json_free(out);
        return NULL;
    }
    cb_json_set(out, "input_length", cb_json_new_int((long long)n));
    return out;
}

/* Says what is wrong with params (run() returned NULL). */
static void report_bad_params(const struct cb_json *params)
{
    const struct cb_json *algv = cb_json_get(params, "algorithm");

    if (!cb_json_is(params, CB_JSON_OBJECT))
        cb_output_error("invalid input: params must be an object");
    else if (!cb_json_str(cb_json_get(params, "input")))
        cb_output_error("invalid input: 'input' must be a string");
    else if (!cb_json_str(algv))
        cb_output_error("invalid input: 'algorithm' must be a string");
    else
        cb_output_error("unknown algorithm '%s' (expected sha256, fnv1a, djb2, crc32 or all)",
                        cb_json_str(algv));
}

int main(void)
{
    struct cb_tool_error err;
    struct cb_json *params, *out;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    out = run(params);
    if (out)
        cb_output(out);
    else
        report_bad_params(params);
    cb_json_free(out);
    cb_json_free(params);
    return 0;
}
