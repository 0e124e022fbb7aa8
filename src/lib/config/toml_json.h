/* TOML text to JSON (tables to objects, arrays to arrays, dates and times
 * to their text). */
#ifndef CB_CONFIG_TOML_JSON_H
#define CB_CONFIG_TOML_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"

/* The document as a JSON object, or NULL with err saying which line is
 * wrong. */
json_t *cb_toml_to_json(const char *data, size_t len, struct cb_error *err);

#endif
