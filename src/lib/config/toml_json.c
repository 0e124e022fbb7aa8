/* A TOML document as JSON, for files that describe a JSON request body
 * (clawbox agents create --file). Dates and times become their text. A
 * value JSON cannot hold (nan, inf, a string that is not UTF-8, a key with
 * a NUL) is an error naming its line, never a key silently left out. */
#include "config/toml_json.h"

#include <errno.h>
#include <string.h>

#include "config/toml.h"

static json_t *value(const struct cb_toml_value *v, struct cb_error *err);

static json_t *items(const struct cb_toml_value *v, struct cb_error *err)
{
    bool table = v->type == CB_TOML_TABLE;
    json_t *out = table ? json_object() : json_array();
    size_t n = table ? v->u.tbl.len : v->u.arr.len;
    for (size_t i = 0; i < n; i++) {
        if (!table) {
            json_t *item = value(v->u.arr.items[i], err);
            if (item == NULL || json_array_append_new(out, item) < 0)
                goto fail;
            continue;
        }
        const struct cb_toml_kv *kv = &v->u.tbl.items[i];
        if (memchr(kv->key, 0, kv->key_len) != NULL) {
            cb_error_set(err, -EINVAL, "line %d: a key with a NUL cannot be a JSON key",
                         kv->value->line);
            goto fail;
        }
        json_t *item = value(kv->value, err);
        if (item == NULL || json_object_setn_new(out, kv->key, kv->key_len, item) < 0)
            goto fail;
    }
    return out;
fail:
    if (err->code == 0)
        cb_error_set(err, -ENOMEM, "line %d: out of memory", v->line);
    json_decref(out);
    return NULL;
}

static json_t *value(const struct cb_toml_value *v, struct cb_error *err)
{
    json_t *j;
    switch (v->type) {
    case CB_TOML_INTEGER:
        return json_integer(v->u.i);
    case CB_TOML_FLOAT:
        j = json_real(v->u.f);
        break;
    case CB_TOML_BOOL:
        return json_boolean(v->u.b);
    case CB_TOML_ARRAY:
    case CB_TOML_TABLE:
        return items(v, err);
    default: /* strings, dates and times */
        j = json_stringn(v->u.str.ptr, v->u.str.len);
        break;
    }
    if (j == NULL)
        cb_error_set(err, -EINVAL, "line %d: %s", v->line,
                     v->type == CB_TOML_FLOAT ? "nan and inf have no JSON form"
                                              : "a string that is not UTF-8");
    return j;
}

json_t *cb_toml_to_json(const char *data, size_t len, struct cb_error *err)
{
    struct cb_toml_value *root = cb_toml_parse(data, len, err);
    if (root == NULL)
        return NULL;
    err->code = 0;
    json_t *j = value(root, err);
    cb__toml_free(root);
    return j;
}
