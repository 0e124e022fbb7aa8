#include "scan/sanitize.h"
#include "core/utf8.h"
#include "core/util.h"
#include "scan/leak_internal.h"
#include "scan/patterns.h"

#include <errno.h>
#include <string.h>

static const char *action_of(size_t pattern)
{
    return cb__pattern_get(pattern)->kind == CB_PATTERN_CREDENTIAL ? CB_SANITIZE_CREDENTIAL
                                                                   : CB_SANITIZE_INJECTION;
}

/* The report's actions: one per distinct secret, then one per pattern. */
static json_t *actions(const struct cb_leak_scanner *sc, const bool *secret, const bool *pattern)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cb__leak_scanner_secrets(sc); i++)
        if (secret[i])
            json_array_append_new(a, json_string(CB_SANITIZE_KNOWN_SECRET));
    for (size_t i = 0; i < cb__pattern_count(); i++)
        if (pattern[i])
            json_array_append_new(a, json_string(action_of(i)));
    return a;
}

static json_t *report(json_t *acts)
{
    return json_pack("{s:I,s:o}", "issues_found", (json_int_t)json_array_size(acts),
                     "actions_taken", acts);
}

/* The redacted text as JSON, or as a JSON string when it does not parse. */
static json_t *reparse(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v)
        return v;
    size_t n;
    char *s = cb_utf8_lossy(text, len, &n);
    v = json_stringn(s, n);
    free(s);
    return v;
}

static json_t *withheld(json_t *acts, json_t **out_report)
{
    json_array_append_new(acts, json_string(CB_SANITIZE_WITHHELD));
    *out_report = report(acts);
    return json_string(CB_LEAK_REDACTED);
}

/* Scans and redacts the serialised output text. */
static int sanitize_serialised(const struct cb_leak_scanner *sc, json_t *output, const char *text,
                               size_t len, json_t **out_output, json_t **out_report)
{
    size_t n = cb__leak_scanner_secrets(sc);
    bool *secret = cb_xcalloc(n ? n : 1, sizeof(bool));
    bool pattern[CB__MAX_PATTERNS] = {false};
    int r = cb__leak_summarise(sc, text, len, CB__SCAN_INJECTION, secret, pattern, NULL);
    json_t *acts = actions(sc, secret, pattern);
    free(secret);
    if (r < 0) {
        *out_output = withheld(acts, out_report);
        return 0;
    }
    if (json_array_size(acts) == 0) {
        *out_output = json_incref(output);
        *out_report = report(acts);
        return 0;
    }
    char *red = NULL;
    size_t red_len = 0;
    if (cb__leak_redact_mode(sc, text, len, CB__SCAN_INJECTION, &red, &red_len, NULL, NULL) < 0) {
        *out_output = withheld(acts, out_report);
        return 0;
    }
    *out_output = reparse(red, red_len);
    *out_report = report(acts);
    explicit_bzero(red, red_len);
    free(red);
    return 0;
}

int cb_sanitize_output(const struct cb_leak_scanner *sc, json_t *output, json_t **out_output,
                       json_t **out_report, struct cb_error *err)
{
    *out_output = *out_report = NULL;
    if (sc == NULL && (sc = cb__leak_default(err)) == NULL)
        return err ? err->code : -ENOMEM;
    char *text = json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return cb_error_set(err, -EINVAL, "tool output cannot be serialised");
    size_t len = strlen(text);
    int r = 0;
    if (len > CB_LEAK_MAX_INPUT)
        r = cb_error_set(err, -E2BIG, "tool output too large to scan");
    else
        r = sanitize_serialised(sc, output, text, len, out_output, out_report);
    explicit_bzero(text, len);
    free(text);
    return r;
}

static void merge_report(json_t *into, json_t *from)
{
    json_t *acts = json_object_get(into, "actions_taken");
    json_array_extend(acts, json_object_get(from, "actions_taken"));
    json_object_set_new(into, "issues_found", json_integer((json_int_t)json_array_size(acts)));
}

int cb_sanitize_logs(const struct cb_leak_scanner *sc, json_t *logs, json_t *report,
                     json_t **out_logs, struct cb_error *err)
{
    json_t *out = NULL, *rep = NULL;
    *out_logs = NULL;
    if (logs == NULL) {
        *out_logs = json_array();
        return 0;
    }
    int r = cb_sanitize_output(sc, logs, &out, &rep, err);
    if (r < 0)
        return r;
    merge_report(report, rep);
    json_decref(rep);
    if (!json_is_array(out)) {
        json_t *entry = json_pack("{s:s,s:o}", "level", "warn", "message", out);
        out = json_pack("[o]", entry);
    }
    *out_logs = out;
    return 0;
}
