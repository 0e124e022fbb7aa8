/* The registry with the real loader (cb_registry_open): inspect, import
 * check, fuel instrumentation and wasm2c compilation of tiny modules built
 * from tests/fixtures/registry/ *.wat. FIXTURE_DIR is where meson put the
 * .wasm files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "helpers.h"

static void copy_fixture(struct fixture *fx, const char *name, unsigned char *sha_out)
{
    char src[512], dst[256];
    snprintf(src, sizeof(src), "%s/%s", FIXTURE_DIR, name);
    snprintf(dst, sizeof(dst), "%s/%s", fx->tool_dir, name);
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    unsigned char buf[4096];
    size_t n;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
        EVP_DigestUpdate(ctx, buf, n);
    }
    EVP_DigestFinal_ex(ctx, sha_out, NULL);
    EVP_MD_CTX_free(ctx);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void real_pipeline_compiles_good_and_rejects_bad_imports(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    char cache[128];
    snprintf(cache, sizeof(cache), "%s/cache", fx.root);
    fx.opts.cache_dir = cache;
    fx.opts.max_memory_pages = 1024;
    fx.opts.compile_timeout_ms = 120000;
    fx.opts.max_call_depth = 1000;
    unsigned char sha[32], other[32];
    copy_fixture(&fx, "hello.wasm", sha);
    copy_fixture(&fx, "bad_import.wasm", other);

    struct cb_error err = {0};
    int rc = cb_registry_open(&fx.opts, &fx.reg, &err);
    if (rc != 0)
        fail_msg("open: %d %s", rc, err.msg);
    struct cb_tool *t = cb_registry_get(fx.reg, "hello");
    if (t == NULL) {
        json_t *rep = cb_registry_reload(fx.reg);
        char *text = json_dumps(rep, JSON_COMPACT);
        fail_msg("hello not loaded: %s", text);
    }
    char hex[65];
    assert_int_equal(cb_registry_counts(fx.reg).ready, 1);
    cb_hex_encode(sha, sizeof(sha), hex);
    assert_string_equal(t->sha256, hex);
    struct stat st;
    assert_int_equal(stat(t->so_path, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
    assert_non_null(strstr(t->so_path, cache));
    cb_tool_unref(t);

    json_t *rep = cb_registry_reload(fx.reg);
    json_t *failed = json_object_get(rep, "failed");
    assert_int_equal(json_array_size(failed), 1);
    json_t *f = json_array_get(failed, 0);
    assert_string_equal(json_string_value(json_object_get(f, "tool")), "bad_import");
    const char *msg = json_string_value(json_object_get(f, "error"));
    if (strstr(msg, "env.system") == NULL)
        fail_msg("error does not name the import: %s", msg);
    assert_int_equal(json_integer_value(json_object_get(rep, "reloaded")), 2);
    json_decref(rep);

    char *text = render_metrics(fx.metrics);
    assert_non_null(strstr(text, "clawbox_tool_compile_failures_total{tool=\"bad_import\"} 1\n"));
    free(text);
    fixture_free(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_pipeline_compiles_good_and_rejects_bad_imports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
