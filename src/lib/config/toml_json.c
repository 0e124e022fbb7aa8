/* A TOML document as JSON, for files that describe a JSON request body
 * (clawbox agents create --file). Dates and times become their text. */
#include "config/toml_json.h"

#include "config/toml.h"

static json_t *value(const struct cb_toml_value *v)
{
    switch (v->type) {
    case CB_TOML_INTEGER:
        return json_integer(v->u.i);
    case CB_TOML_FLOAT:
        return json_real(v->u.f);
    case CB_TOML_BOOL:
        return json_boolean(v->u.b);
    case CB_TOML_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->u.arr.len; i++)
            json_array_append_new(a, value(v->u.arr.items[i]));
        return a;
    }
    case CB_TOML_TABLE: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->u.tbl.len; i++)
            json_object_setn_new(o, v->u.tbl.items[i].key, v->u.tbl.items[i].key_len,
                                 value(v->u.tbl.items[i].value));
        return o;
    }
    default: /* strings, dates and times */
        return json_stringn(v->u.str.ptr, v->u.str.len);
    }
}

json_t *cb_toml_to_json(const char *data, size_t len, struct cb_error *err)
{
    struct cb_toml_value *root = cb_toml_parse(data, len, err);
    if (root == NULL)
        return NULL;
    json_t *j = value(root);
    cb__toml_free(root);
    return j;
}
