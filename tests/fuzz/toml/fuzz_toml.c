/* libFuzzer target for the TOML reader: parses the input, checks a few
 * invariants of the result (or of the error) and frees it. Sanitizers catch
 * memory errors; __builtin_trap() flags broken invariants. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/toml.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

/* Walks the tree (its depth is bounded by CB_TOML_MAX_DEPTH). */
static void walk(const struct cb_toml_value *v, int depth)
{
    check(depth <= CB_TOML_MAX_DEPTH + 1 && v->line >= 1);
    switch (v->type) {
    case CB_TOML_TABLE:
        for (size_t i = 0; i < v->u.tbl.len; i++) {
            const struct cb_toml_kv *kv = &v->u.tbl.items[i];
            check(kv->key[kv->key_len] == '\0');
            if (strlen(kv->key) == kv->key_len)
                check(cb_toml_get(v, kv->key) == kv->value);
            walk(kv->value, depth + 1);
        }
        break;
    case CB_TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.len; i++)
            walk(v->u.arr.items[i], depth + 1);
        break;
    case CB_TOML_INTEGER:
    case CB_TOML_FLOAT:
    case CB_TOML_BOOL:
        break;
    default:
        check(v->u.str.ptr[v->u.str.len] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cb_error err = {0};
    struct cb_toml_value *root = cb_toml_parse((const char *)data, size, &err);
    if (root == NULL) {
        check(err.code < 0 && strncmp(err.msg, "line ", 5) == 0);
        return 0;
    }
    check(root->type == CB_TOML_TABLE);
    walk(root, 0);
    cb__toml_free(root);
    return 0;
}
