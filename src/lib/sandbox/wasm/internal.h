/* Internals shared by the wasm inspector and instrumenter: a bounds-checked
 * reader over the module bytes, the instruction walker, and the summary of
 * a module's structure that the instrumenter needs. */
#ifndef CB_SANDBOX_WASM_INTERNAL_H
#define CB_SANDBOX_WASM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "sandbox/wasm.h"

/* Section ids of the binary format. */
enum {
    CB__WASM_SEC_CUSTOM = 0,
    CB__WASM_SEC_TYPE = 1,
    CB__WASM_SEC_IMPORT = 2,
    CB__WASM_SEC_FUNCTION = 3,
    CB__WASM_SEC_TABLE = 4,
    CB__WASM_SEC_MEMORY = 5,
    CB__WASM_SEC_GLOBAL = 6,
    CB__WASM_SEC_EXPORT = 7,
    CB__WASM_SEC_START = 8,
    CB__WASM_SEC_ELEMENT = 9,
    CB__WASM_SEC_CODE = 10,
    CB__WASM_SEC_DATA = 11,
    CB__WASM_SEC_DATACOUNT = 12,
    CB__WASM_N_SECTIONS = 13,
};

/* Implementation limits, the same as the JS API's (and V8's), so that
 * nothing a browser accepts is refused and nothing absurd is accepted. */
#define CB__WASM_MAX_TYPES     1000000u
#define CB__WASM_MAX_FUNCTIONS 1000000u
#define CB__WASM_MAX_IMPORTS   100000u
#define CB__WASM_MAX_EXPORTS   100000u
#define CB__WASM_MAX_GLOBALS   1000000u
#define CB__WASM_MAX_DATA_SEGS 100000u
#define CB__WASM_MAX_ELEM_SEGS 10000000u
#define CB__WASM_MAX_TABLES    100000u
#define CB__WASM_MAX_MEMORIES  100u
#define CB__WASM_MAX_PARAMS    1000u
#define CB__WASM_MAX_LOCALS    50000u
#define CB__WASM_MAX_BODY_SIZE 7654321u
#define CB__WASM_MAX_PAGES     65536u
/* Our own: bounds the walker's block stack (8 bytes a level). */
#define CB__WASM_MAX_DEPTH 1000000u

/* A cursor over [pos, end) of a module; `data` is the whole module so
 * that error messages can give absolute offsets. */
struct cb__wasm_rd {
    const uint8_t *data;
    size_t pos;
    size_t end;
};

int cb__wasm_u8(struct cb__wasm_rd *rd, uint8_t *out, struct cb_error *err);
int cb__wasm_u32(struct cb__wasm_rd *rd, uint32_t *out, struct cb_error *err);
int cb__wasm_s32(struct cb__wasm_rd *rd, int32_t *out, struct cb_error *err);
int cb__wasm_s33(struct cb__wasm_rd *rd, int64_t *out, struct cb_error *err);
int cb__wasm_s64(struct cb__wasm_rd *rd, int64_t *out, struct cb_error *err);
int cb__wasm_skip(struct cb__wasm_rd *rd, size_t n, struct cb_error *err);
/* Reads a vector count and checks that `count * min_size` bytes remain and
 * that count <= max; `what` names the vector in the error. */
int cb__wasm_count(struct cb__wasm_rd *rd, size_t min_size, uint32_t max, const char *what,
                   uint32_t *out, struct cb_error *err);
/* Reads a name (length-prefixed UTF-8); *out points into the module. */
int cb__wasm_name(struct cb__wasm_rd *rd, const uint8_t **out, uint32_t *len, struct cb_error *err);
/* Number types, v128, funcref and externref. */
bool cb__wasm_is_valtype(uint8_t b);
/* Sets err to "offset 0x..: <message>" and returns -EINVAL. */
int cb__wasm_fail(struct cb_error *err, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* LEB128 encoders; return the number of bytes written (at most 10). */
size_t cb__wasm_put_u32(uint8_t *p, uint32_t v);
size_t cb__wasm_put_s64(uint8_t *p, int64_t v);

/* A fuel charge: the instrumenter inserts a charge of `cost` at `pos`. */
struct cb__wasm_site {
    size_t pos;
    uint64_t cost;
};

struct cb__wasm_frame {
    uint8_t kind;
};

/* Scratch state of the instruction walker, reused across bodies. */
struct cb__wasm_walk {
    struct cb__wasm_site *sites;
    size_t n_sites, cap_sites;
    size_t cur; /* the site being charged */
    struct cb__wasm_frame *frames;
    size_t depth, cap_frames;
};

void cb__wasm_walk_free(struct cb__wasm_walk *w);
/* Decodes one expression (a function body's code or a constant
 * expression) from rd up to and including its final `end`. Fills
 * w->sites, in offset order: one site per straight-line stretch, charged
 * with the instructions of that stretch: the expression start, each loop
 * header, each arm of an if, and the code after each end of a block, loop
 * or if. So an execution is charged for the stretches it enters, not for
 * arms it skips. */
int cb__wasm_walk_expr(struct cb__wasm_rd *rd, struct cb__wasm_walk *w, struct cb_error *err);

/* What the instrumenter needs to know about a parsed module. */
struct cb__wasm_module {
    uint32_t n_imported_globals;
    uint32_t n_globals;
    uint32_t n_exports;
    bool has_fuel_export;
    bool has_start_export; /* CB_WASM_START_EXPORT */
    bool has_start;
    uint32_t start_func;
};

/* Checks the whole binary structure; fills m and, when info is non-NULL,
 * the import and export lists. With skip_bodies, function bodies are only
 * framed, not decoded: for a caller that decodes them itself (with
 * cb__wasm_body, so with the same checks). */
int cb__wasm_parse(const uint8_t *data, size_t len, bool skip_bodies, struct cb__wasm_module *m,
                   struct cb_wasm_info *info, struct cb_error *err);
/* Reads the header of the next section: id, content range. */
int cb__wasm_section(struct cb__wasm_rd *rd, uint8_t *id, struct cb__wasm_rd *content,
                     struct cb_error *err);
/* Reads one code section entry: the body's range into *body; checks its
 * locals and walks its instructions with w (w->sites[0].pos is where the
 * instructions start). */
int cb__wasm_body(struct cb__wasm_rd *rd, struct cb__wasm_rd *body, struct cb__wasm_walk *w,
                  struct cb_error *err);
/* Position of a non-custom section in the required order (1..12). */
int cb__wasm_section_rank(uint8_t id);
const char *cb__wasm_section_name(uint8_t id);
/* Reads a limits structure (flags, min, optional max). */
int cb__wasm_limits(struct cb__wasm_rd *rd, bool memory, uint8_t *flags, uint32_t *min,
                    uint32_t *max, struct cb_error *err);

#endif
