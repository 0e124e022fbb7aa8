/* Sanitisation of tool output on /execute, failing closed: output that
 * cannot be fully scanned is withheld.
 *
 * The output is serialised as compact JSON and scanned as text:
 *   - each known secret found in any form (see leak.h) is one issue,
 *     action "known_credential_detected" (the reference has no known
 *     secrets here; these come first because they are redacted first);
 *   - each credential pattern that matches is one issue,
 *     "credential_pattern_detected";
 *   - each injection pattern that matches is one issue,
 *     "injection_pattern_detected".
 * So issues_found counts distinct secrets and patterns, not occurrences, and
 * actions_taken lists them in that order, as the reference does.
 *
 * With issues, the text is redacted: secrets and credential matches become
 * "[REDACTED]", injection matches "[BLOCKED]". The result is parsed back;
 * if it no longer parses, the sanitised output is the redacted text as a
 * JSON string. The unredacted original is never returned. If a pattern
 * cannot be evaluated (match limit), the output is the string "[REDACTED]"
 * and the action "output_withheld" is added. */
#ifndef CB_SCAN_SANITIZE_H
#define CB_SCAN_SANITIZE_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"
#include "scan/leak.h"

#define CB_SANITIZE_KNOWN_SECRET "known_credential_detected"
#define CB_SANITIZE_CREDENTIAL   "credential_pattern_detected"
#define CB_SANITIZE_INJECTION    "injection_pattern_detected"
#define CB_SANITIZE_WITHHELD     "output_withheld"

/* Sanitises `output` (not modified). sc may be NULL (patterns only). On
 * success *out_output is a new reference to the output to return (the
 * same value when clean) and *out_report a new object
 * {"issues_found": N, "actions_taken": [...]}. Returns 0 or a negative
 * code (output not serialisable, too large). */
int cb_sanitize_output(const struct cb_leak_scanner *sc, json_t *output, json_t **out_output,
                       json_t **out_report, struct cb_error *err);

/* Sanitises the log entries of an execution (an array of {"level",
 * "message"} objects) as cb_sanitize_output does its output, and adds what
 * it found to `report` (made by cb_sanitize_output: issues_found grows,
 * actions are appended). *out_logs is a new reference to the entries to
 * return: the same array when clean, else the redacted one; when the
 * redaction no longer parses as an array, one entry {"level": "warn",
 * "message": <the redacted text>}. Returns 0 or a negative code. */
int cb_sanitize_logs(const struct cb_leak_scanner *sc, json_t *logs, json_t *report,
                     json_t **out_logs, struct cb_error *err);

#endif
