/* The encoded forms of one secret that the leak scanner searches for. */
#ifndef CB_SCAN_FORMS_H
#define CB_SCAN_FORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/leak.h"

#define CB__MAX_FORMS 20

struct cb__form {
    enum cb_leak_encoding enc;
    unsigned char *bytes; /* owned; wiped by cb__form_wipe */
    size_t len;
    bool icase; /* compare ASCII case-insensitively */
    /* base64 and base32: the secret shares one character with its
     * neighbours on this side; redaction takes it too, and trailing '='
     * padding. */
    uint8_t edge_left, edge_right;
};

/* Fills out[] with the distinct forms of secret s (n >= 1) and returns how
 * many. */
size_t cb__secret_forms(const unsigned char *s, size_t n, struct cb__form out[CB__MAX_FORMS]);
void cb__form_wipe(struct cb__form *f);
/* True when c belongs to the alphabet of a base64 or base32 form. */
bool cb__form_alpha_char(enum cb_leak_encoding enc, unsigned char c);

#endif
