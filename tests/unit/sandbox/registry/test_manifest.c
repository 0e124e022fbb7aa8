/* Manifest parsing: validation, normalisation and the typed form
 * (src/lib/sandbox/registry/manifest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"
#include "proxy/allowlist.h"

struct bad_case {
    const char *json;
    bool allow_all;
    int rc;
    const char *fragment;
};

/* The normalised JSON of the parsed manifest (a new copy), or NULL. */
static int normalize(const json_t *in, bool allow_all, json_t **out, struct cb_error *err)
{
    struct cb_manifest *m = NULL;
    int rc = cb_manifest_parse(in, allow_all, &m, err);
    *out = m != NULL ? json_deep_copy(m->doc) : NULL;
    cb_manifest_unref(m);
    return rc;
}

#define NAME_MSG "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only"

static const struct bad_case bad_cases[] = {
    /* shapes: -EBADMSG (HTTP 422), naming the field */
    {"[]", false, -EBADMSG, "manifest must be a JSON object"},
    {"{}", false, -EBADMSG, "missing required field 'tool'"},
    {"{\"tool\":null}", false, -EBADMSG, "missing required field 'tool'"},
    {"{\"tool\":\"x\"}", false, -EBADMSG, "field 'tool' must be an object"},
    {"{\"tool\":{}}", false, -EBADMSG, "missing required field 'tool.name'"},
    {"{\"tool\":{\"name\":7}}", false, -EBADMSG, "field 'tool.name' must be a string"},
    {"{\"tool\":{\"name\":\"a\",\"description\":1}}", false, -EBADMSG,
     "field 'tool.description' must be a string"},
    {"{\"tool\":{\"name\":\"a\",\"version\":[]}}", false, -EBADMSG,
     "field 'tool.version' must be a string"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":[]}", false, -EBADMSG,
     "field 'network' must be an object or null"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":\"x.com\"}}", false, -EBADMSG,
     "field 'network.allowlist' must be an array of strings"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x.com\",1]}}", false, -EBADMSG,
     "field 'network.allowlist' must be an array of strings"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"max_concurrent\":-1}}", false, -EBADMSG,
     "field 'network.max_concurrent' must be a non-negative integer"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"max_concurrent\":1.5}}", false, -EBADMSG,
     "field 'network.max_concurrent' must be a non-negative integer"},
    {"{\"tool\":{\"name\":\"a\"},\"credentials\":true}", false, -EBADMSG,
     "field 'credentials' must be an object or null"},
    {"{\"tool\":{\"name\":\"a\"},\"credentials\":{\"available\":[null]}}", false, -EBADMSG,
     "field 'credentials.available' must be an array of strings"},
    {"{\"tool\":{\"name\":\"a\"},\"resources\":5}", false, -EBADMSG,
     "field 'resources' must be an object or null"},
    {"{\"tool\":{\"name\":\"a\"},\"resources\":{\"max_memory_mb\":\"1\"}}", false, -EBADMSG,
     "field 'resources.max_memory_mb' must be a non-negative integer"},
    {"{\"tool\":{\"name\":\"a\"},\"resources\":{\"default_timeout_ms\":-5}}", false, -EBADMSG,
     "field 'resources.default_timeout_ms' must be a non-negative integer"},
    /* shapes are checked before values, as the reference deserialises first */
    {"{\"tool\":{\"name\":\"bad name\"},\"network\":7}", false, -EBADMSG, "field 'network'"},
    /* names: -EINVAL (HTTP 400) */
    {"{\"tool\":{\"name\":\"\"}}", false, -EINVAL, NAME_MSG},
    {"{\"tool\":{\"name\":\"has space\"}}", false, -EINVAL, NAME_MSG},
    {"{\"tool\":{\"name\":\"dot.ted\"}}", false, -EINVAL, NAME_MSG},
    {"{\"tool\":{\"name\":\"a\\u0000b\"}}", false, -EINVAL, NAME_MSG},
    {"{\"tool\":{\"name\":\"../etc\"}}", false, -EINVAL, NAME_MSG},
    {"{\"tool\":{\"name\":\"x12345678901234567890123456789012345678901234567890123456789012345\"}}",
     false, -EINVAL, NAME_MSG},
    /* allowlist entries: -EINVAL with the reason */
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*\"]}}", false, -EINVAL,
     "allowlist entry \"*\": '*' allows every host; set proxy.allow_wildcard_all = true to "
     "permit it"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"https://x.com\"]}}", false, -EINVAL,
     "allowlist entry \"https://x.com\": entries are host names, not URLs"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x.com:443\"]}}", false, -EINVAL,
     "entries are host names without a port"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x.com/api\"]}}", false, -EINVAL,
     "entries are host names, not URLs"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"u@x.com\"]}}", false, -EINVAL,
     "contains the character '@'"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*.co.uk\"]}}", false, -EINVAL,
     "a wildcard on a public suffix allows every host registered under it"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"a*.x.com\"]}}", false, -EINVAL,
     "'*' may only appear alone or as the first label of \"*.domain\""},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*.*.x.com\"]}}", false, -EINVAL,
     "'*' may only appear alone or as the first label of \"*.domain\""},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*.\"]}}", false, -EINVAL,
     "'*' may only appear alone or as the first label of \"*.domain\""},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"\"]}}", false, -EINVAL,
     "an entry is empty"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x..com\"]}}", false, -EINVAL,
     "has an empty label"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"-x.com\"]}}", false, -EINVAL,
     "has a label that starts or ends with '-'"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x-.com\"]}}", false, -EINVAL,
     "has a label that starts or ends with '-'"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"x_y.com\"]}}", false, -EINVAL,
     "may only contain letters, digits, '-' and '.'"},
    {"{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"ok.com\",\"bad com\"]}}", false,
     -EINVAL, "allowlist entry \"bad com\""},
};

static void bad_manifests_are_rejected_with_reason(void **state)
{
    (void)state;
    for (size_t i = 0; i < CB_ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        json_t *in = json_loads(c->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(in);
        struct cb_error err = {0};
        json_t *out = NULL;
        int rc = normalize(in, c->allow_all, &out, &err);
        if (rc != c->rc || strstr(err.msg, c->fragment) == NULL)
            fail_msg("case %zu %s: rc %d msg '%s', want %d '%s'", i, c->json, rc, err.msg, c->rc,
                     c->fragment);
        assert_null(out);
        json_decref(in);
    }
}

static void long_label_and_host_are_rejected(void **state)
{
    (void)state;
    char label[70], host[300], json[400];
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(json, sizeof(json),
             "{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"%s.com\"]}}", label);
    json_t *in = parse(json), *out = NULL;
    struct cb_error err = {0};
    assert_int_equal(normalize(in, false, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer than 63 characters"));
    json_decref(in);
    /* 4 labels of 63 plus 3 dots and ".a" = 256 bytes */
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        memset(host + n, 'b', 63);
        n += 63;
        host[n++] = '.';
    }
    host[n++] = 'a';
    host[n] = '\0';
    snprintf(json, sizeof(json), "{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"%s\"]}}",
             host);
    in = parse(json);
    assert_int_equal(normalize(in, false, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer than 253 characters"));
    json_decref(in);
}

/* Registration accepts what the proxy matches: IPv6 literals, bracketed or
 * not, any case, a trailing dot; "*.com" only with allow_wildcard_all. */
static void entries_the_proxy_accepts_are_registered(void **state)
{
    (void)state;
    json_t *in =
        parse("{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"[2001:db8::1]\","
              "\"2001:db8::2\",\"[::1]\",\"API.Example.com\",\"x.com.\",\"*.example.com\"]}}");
    json_t *out = NULL;
    struct cb_error err = {0};
    if (normalize(in, false, &out, &err) != 0)
        fail_msg("%s", err.msg);
    json_decref(out);
    json_decref(in);
    in = parse("{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*.com\"]}}");
    assert_int_equal(normalize(in, false, &out, &err), -EINVAL);
    assert_int_equal(normalize(in, true, &out, &err), 0);
    json_decref(out);
    json_decref(in);
}

static void assert_normalizes_to(const char *in_text, bool allow_all, const char *want_text)
{
    json_t *in = parse(in_text), *want = parse(want_text), *out = NULL;
    struct cb_error err = {0};
    int rc = normalize(in, allow_all, &out, &err);
    if (rc != 0)
        fail_msg("%s: %s", in_text, err.msg);
    if (!json_equal(out, want)) {
        char *got = json_dumps(out, JSON_COMPACT);
        fail_msg("%s normalised to %s, want %s", in_text, got, want_text);
    }
    json_decref(in);
    json_decref(want);
    json_decref(out);
}

static void defaults_are_filled_and_unknown_keys_dropped(void **state)
{
    (void)state;
    assert_normalizes_to("{\"tool\":{\"name\":\"echo\",\"extra\":1},\"other\":2}", false,
                         "{\"tool\":{\"name\":\"echo\",\"description\":\"\",\"version\":\"0.1.0\"},"
                         "\"network\":null,\"credentials\":null,\"resources\":null}");
    assert_normalizes_to(
        "{\"tool\":{\"name\":\"w\",\"description\":\"d\",\"version\":\"2\"},\"network\":{},"
        "\"credentials\":{},\"resources\":{\"max_memory_mb\":64}}",
        false,
        "{\"tool\":{\"name\":\"w\",\"description\":\"d\",\"version\":\"2\"},"
        "\"network\":{\"allowlist\":[],\"max_concurrent\":5},\"credentials\":{\"available\":[]},"
        "\"resources\":{\"default_timeout_ms\":30000,\"max_timeout_ms\":120000,"
        "\"default_memory_mb\":256,\"max_memory_mb\":64}}");
}

static void valid_allowlists_and_schemas_are_kept(void **state)
{
    (void)state;
    assert_normalizes_to(
        "{\"tool\":{\"name\":\"Web_fetch-2\"},\"network\":{\"allowlist\":[\"api.example.com\","
        "\"*.example.org\",\"10.0.0.1\",\"xn--bcher-kva.de\"],\"max_concurrent\":0},"
        "\"credentials\":{\"available\":[\"GITHUB_TOKEN\"]},\"input_schema\":{\"type\":\"object\"},"
        "\"output_schema\":null}",
        false,
        "{\"tool\":{\"name\":\"Web_fetch-2\",\"description\":\"\",\"version\":\"0.1.0\"},"
        "\"network\":{\"allowlist\":[\"api.example.com\",\"*.example.org\",\"10.0.0.1\","
        "\"xn--bcher-kva.de\"],\"max_concurrent\":0},"
        "\"credentials\":{\"available\":[\"GITHUB_TOKEN\"]},\"resources\":null,"
        "\"input_schema\":{\"type\":\"object\"}}");
    /* "*" only when the server allows it */
    assert_normalizes_to("{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"*\"]}}", true,
                         "{\"tool\":{\"name\":\"a\",\"description\":\"\",\"version\":\"0.1.0\"},"
                         "\"network\":{\"allowlist\":[\"*\"],\"max_concurrent\":5},"
                         "\"credentials\":null,\"resources\":null}");
}

static void tool_names(void **state)
{
    (void)state;
    assert_true(cb_tool_name_valid("a"));
    assert_true(cb_tool_name_valid("Az09_-"));
    assert_true(
        cb_tool_name_valid("x123456789012345678901234567890123456789012345678901234567890123"));
    assert_false(
        cb_tool_name_valid("x1234567890123456789012345678901234567890123456789012345678901234"));
    assert_false(cb_tool_name_valid(""));
    assert_false(cb_tool_name_valid(NULL));
    assert_false(cb_tool_name_valid("a.b"));
    assert_false(cb_tool_name_valid("a/b"));
    assert_false(cb_tool_name_valid("\xc3\xa9"));
}

static void auto_manifest_is_the_reference_shape(void **state)
{
    (void)state;
    struct cb_manifest *m = cb__manifest_auto("echo");
    char *text = json_dumps(m->doc, JSON_COMPACT);
    assert_string_equal(text, "{\"tool\":{\"name\":\"echo\",\"description\":\"Auto-loaded WASM "
                              "tool\",\"version\":\"0.0.0\"},\"network\":null,\"credentials\":null,"
                              "\"resources\":null}");
    free(text);
    cb_manifest_unref(m);
}

/* The typed form holds what the JSON says, the allowlist compiled. */
static void typed_fields_follow_the_json(void **state)
{
    (void)state;
    json_t *in =
        parse("{\"tool\":{\"name\":\"web\"},\"network\":{\"allowlist\":[\"api.example.com\","
              "\"*.example.org\"],\"max_concurrent\":3},\"credentials\":{\"available\":[\"gh\","
              "\"brave\"]},"
              "\"resources\":{\"default_timeout_ms\":1000,\"max_memory_mb\":64},"
              "\"input_schema\":{\"type\":\"object\"},\"output_schema\":null}");
    struct cb_manifest *m = NULL;
    struct cb_error err = {0};
    if (cb_manifest_parse(in, false, &m, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(m->name, "web");
    assert_non_null(m->allowlist);
    assert_int_equal(
        cb__proxy_allowlist_check(m->allowlist, "API.example.com", 15, false, NULL, &err), 0);
    assert_int_equal(
        cb__proxy_allowlist_check(m->allowlist, "a.b.example.org", 15, false, NULL, &err), 0);
    assert_int_equal(cb__proxy_allowlist_check(m->allowlist, "example.com", 11, false, NULL, &err),
                     -EACCES);
    assert_int_equal(m->max_concurrent, 3);
    assert_int_equal(m->n_credentials, 2);
    assert_string_equal(m->credentials[0], "gh");
    assert_true(cb_manifest_has_credential(m, "brave"));
    assert_false(cb_manifest_has_credential(m, "BRAVE"));
    assert_false(cb_manifest_has_credential(m, NULL));
    assert_int_equal(m->resources.default_timeout_ms, 1000);
    assert_int_equal(m->resources.max_timeout_ms, 120000); /* defaulted */
    assert_int_equal(m->resources.default_memory_mb, 256);
    assert_int_equal(m->resources.max_memory_mb, 64);
    assert_true(json_equal((json_t *)m->input_schema, json_object_get(in, "input_schema")));
    assert_null(m->output_schema);
    assert_int_equal(json_array_size(cb_manifest_doc_credentials(m->doc)), 2);
    /* shared by reference: the last unref frees */
    assert_ptr_equal(cb_manifest_ref(m), m);
    cb_manifest_unref(m);
    cb_manifest_unref(m);
    json_decref(in);
}

/* No network section, or an empty allowlist, compiles to no list (every
 * host denied); absent resources are 0 (the server's settings). */
static void absent_sections_are_empty(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"tool\":{\"name\":\"a\"}}",
        "{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[]},\"credentials\":{}}",
    };
    for (size_t i = 0; i < CB_ARRAY_LEN(texts); i++) {
        json_t *in = parse(texts[i]);
        struct cb_manifest *m = NULL;
        struct cb_error err = {0};
        assert_int_equal(cb_manifest_parse(in, false, &m, &err), 0);
        assert_null(m->allowlist);
        assert_int_equal(m->n_credentials, 0);
        assert_false(cb_manifest_has_credential(m, "x"));
        assert_int_equal(m->resources.default_timeout_ms, 0);
        assert_int_equal(m->resources.max_memory_mb, 0);
        assert_null(m->input_schema);
        cb_manifest_unref(m);
        json_decref(in);
    }
    assert_null(cb_manifest_doc_credentials(NULL));
    struct cb_manifest *m = cb__manifest_auto("echo");
    assert_string_equal(m->name, "echo");
    assert_null(m->allowlist);
    assert_int_equal(m->n_credentials, 0);
    cb_manifest_unref(m);
    cb_manifest_unref(NULL);
}

/* A bad allowlist entry is named by its field, for the 400 of
 * registration; a <name>.json file gets the field but not the value. */
static void bad_entries_name_their_field(void **state)
{
    (void)state;
    static const char text[] =
        "{\"tool\":{\"name\":\"a\"},\"network\":{\"allowlist\":[\"ok.com\",\"secret.x/y\"]}}";
    json_t *in = parse(text);
    struct cb_manifest *m = NULL;
    struct cb_error err = {0};
    assert_int_equal(cb_manifest_parse(in, false, &m, &err), -EINVAL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "network.allowlist[1]: allowlist entry \"secret.x/y\""));
    assert_int_equal(cb__manifest_parse_file(text, strlen(text), false, &m, &err), -EINVAL);
    assert_null(m);
    assert_string_equal(err.msg, "network.allowlist[1] is not a valid entry");
    assert_int_equal(cb__manifest_parse_file("{\"tool\":", 8, false, &m, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "at line 1"));
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_manifests_are_rejected_with_reason),
        cmocka_unit_test(long_label_and_host_are_rejected),
        cmocka_unit_test(entries_the_proxy_accepts_are_registered),
        cmocka_unit_test(defaults_are_filled_and_unknown_keys_dropped),
        cmocka_unit_test(valid_allowlists_and_schemas_are_kept),
        cmocka_unit_test(tool_names),
        cmocka_unit_test(auto_manifest_is_the_reference_shape),
        cmocka_unit_test(typed_fields_follow_the_json),
        cmocka_unit_test(absent_sections_are_empty),
        cmocka_unit_test(bad_entries_name_their_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
