/* The instruction decoder: knows the immediates of every opcode of the MVP
 * and of the standard extensions (sign extension, non-trapping float to
 * int, bulk memory, reference types, multi-value, SIMD, threads, tail
 * calls), so that walking a body never loses sync. It also keeps the
 * block structure, which the fuel instrumenter needs. */
#include <errno.h>

#include "core/util.h"
#include "sandbox/wasm/internal.h"

enum imm {
    IMM_BAD,
    IMM_NONE,
    IMM_BLOCK,
    IMM_U32,
    IMM_U32X2,
    IMM_BR_TABLE,
    IMM_SELECT_T,
    IMM_MEMARG,
    IMM_MEMARG_LANE,
    IMM_LANE,
    IMM_I32,
    IMM_I64,
    IMM_F32,
    IMM_F64,
    IMM_BYTES16,
    IMM_REFTYPE,
    IMM_FENCE,
    IMM_PREFIX_FC,
    IMM_PREFIX_FD,
    IMM_PREFIX_FE,
};

enum { CTL_OTHER, CTL_BLOCK, CTL_LOOP, CTL_IF, CTL_ELSE, CTL_END };
enum { FRAME_EXPR, FRAME_BLOCK, FRAME_LOOP, FRAME_IF, FRAME_ELSE };

static enum imm op_imm(uint8_t op)
{
    if (op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b)
        return IMM_NONE;
    if (op <= 0x04)
        return IMM_BLOCK;
    if (op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12 || op == 0xd2)
        return IMM_U32;
    if (op == 0x11 || op == 0x13)
        return IMM_U32X2;
    if (op == 0x0e)
        return IMM_BR_TABLE;
    if (op == 0x1c)
        return IMM_SELECT_T;
    if ((op >= 0x20 && op <= 0x26) || op == 0x3f || op == 0x40)
        return IMM_U32;
    if (op >= 0x28 && op <= 0x3e)
        return IMM_MEMARG;
    if (op >= 0x41 && op <= 0x44)
        return (enum imm)(IMM_I32 + (op - 0x41));
    if ((op >= 0x45 && op <= 0xc4) || op == 0xd1)
        return IMM_NONE;
    if (op == 0xd0)
        return IMM_REFTYPE;
    if (op >= 0xfc && op <= 0xfe)
        return (enum imm)(IMM_PREFIX_FC + (op - 0xfc));
    return IMM_BAD;
}

static enum imm fc_imm(uint32_t sub)
{
    if (sub <= 7)
        return IMM_NONE;
    if (sub == 8 || sub == 10 || sub == 12 || sub == 14)
        return IMM_U32X2;
    if (sub <= 17)
        return IMM_U32;
    return IMM_BAD;
}

/* SIMD opcodes 94..255 carry no immediate, except for these unassigned
 * numbers. */
static bool simd_unassigned(uint32_t sub)
{
    static const uint8_t gaps[] = {0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
                                   0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee};
    for (size_t i = 0; i < CB_ARRAY_LEN(gaps); i++)
        if (gaps[i] == sub)
            return true;
    return false;
}

static enum imm fd_imm(uint32_t sub)
{
    if (sub <= 11 || sub == 92 || sub == 93)
        return IMM_MEMARG;
    if (sub == 12 || sub == 13)
        return IMM_BYTES16;
    if (sub >= 21 && sub <= 34)
        return IMM_LANE;
    if (sub >= 84 && sub <= 91)
        return IMM_MEMARG_LANE;
    if (sub > 255 || simd_unassigned(sub))
        return IMM_BAD;
    return IMM_NONE;
}

static enum imm fe_imm(uint32_t sub)
{
    if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e))
        return IMM_MEMARG;
    if (sub == 3)
        return IMM_FENCE;
    return IMM_BAD;
}

bool cb__wasm_is_valtype(uint8_t b)
{
    return (b >= 0x7b && b <= 0x7f) || b == 0x70 || b == 0x6f;
}

static int block_type(struct cb__wasm_rd *rd, struct cb_error *err)
{
    if (rd->pos < rd->end &&
        (rd->data[rd->pos] == 0x40 || cb__wasm_is_valtype(rd->data[rd->pos]))) {
        rd->pos++;
        return 0;
    }
    size_t at = rd->pos;
    int64_t idx;
    int r = cb__wasm_s33(rd, &idx, err);
    if (r == 0 && idx < 0)
        return cb__wasm_fail(err, at, "invalid block type");
    return r;
}

static int memarg(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t align, v;
    int r = cb__wasm_u32(rd, &align, err);
    /* Bit 6 of the alignment announces a memory index (multi-memory). */
    if (r == 0 && (align & 0x40))
        r = cb__wasm_u32(rd, &v, err);
    if (r == 0)
        r = cb__wasm_u32(rd, &v, err);
    return r;
}

static int valtypes(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n;
    int r = cb__wasm_count(rd, 1, UINT32_MAX, "value types", &n, err);
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        if (!cb__wasm_is_valtype(rd->data[rd->pos]))
            return cb__wasm_fail(err, rd->pos, "invalid value type 0x%02x", rd->data[rd->pos]);
        rd->pos++;
    }
    return r;
}

static int br_table(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint32_t n, v;
    int r = cb__wasm_count(rd, 1, UINT32_MAX, "br_table targets", &n, err);
    for (uint64_t i = 0; r == 0 && i <= n; i++)
        r = cb__wasm_u32(rd, &v, err);
    return r;
}

static int ref_type(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint8_t t;
    int r = cb__wasm_u8(rd, &t, err);
    if (r == 0 && t != 0x70 && t != 0x6f)
        return cb__wasm_fail(err, rd->pos - 1, "invalid reference type 0x%02x", t);
    return r;
}

static int fence(struct cb__wasm_rd *rd, struct cb_error *err)
{
    uint8_t b;
    int r = cb__wasm_u8(rd, &b, err);
    if (r == 0 && b != 0)
        return cb__wasm_fail(err, rd->pos - 1, "atomic.fence takes a zero byte");
    return r;
}

static int prefixed(struct cb__wasm_rd *rd, enum imm prefix, size_t at, struct cb_error *err);

/* Skips the immediates of an instruction whose opcode starts at `at`. */
static int immediates(struct cb__wasm_rd *rd, enum imm kind, size_t at, struct cb_error *err)
{
    uint32_t u;
    int32_t s32;
    int64_t s64;
    switch (kind) {
    case IMM_NONE:
        return 0;
    case IMM_BLOCK:
        return block_type(rd, err);
    case IMM_U32X2: {
        int r = cb__wasm_u32(rd, &u, err);
        return r < 0 ? r : cb__wasm_u32(rd, &u, err);
    }
    case IMM_U32:
        return cb__wasm_u32(rd, &u, err);
    case IMM_BR_TABLE:
        return br_table(rd, err);
    case IMM_SELECT_T:
        return valtypes(rd, err);
    case IMM_MEMARG_LANE: {
        int r = memarg(rd, err);
        return r < 0 ? r : cb__wasm_skip(rd, 1, err);
    }
    case IMM_MEMARG:
        return memarg(rd, err);
    case IMM_LANE:
        return cb__wasm_skip(rd, 1, err);
    case IMM_I32:
        return cb__wasm_s32(rd, &s32, err);
    case IMM_I64:
        return cb__wasm_s64(rd, &s64, err);
    case IMM_F32:
        return cb__wasm_skip(rd, 4, err);
    case IMM_F64:
        return cb__wasm_skip(rd, 8, err);
    case IMM_BYTES16:
        return cb__wasm_skip(rd, 16, err);
    case IMM_REFTYPE:
        return ref_type(rd, err);
    case IMM_FENCE:
        return fence(rd, err);
    case IMM_PREFIX_FC:
    case IMM_PREFIX_FD:
    case IMM_PREFIX_FE:
        return prefixed(rd, kind, at, err);
    case IMM_BAD:
        break;
    }
    return cb__wasm_fail(err, at, "unknown opcode 0x%02x", rd->data[at]);
}

static int prefixed(struct cb__wasm_rd *rd, enum imm prefix, size_t at, struct cb_error *err)
{
    uint32_t sub;
    int r = cb__wasm_u32(rd, &sub, err);
    if (r < 0)
        return r;
    enum imm kind = prefix == IMM_PREFIX_FC   ? fc_imm(sub)
                    : prefix == IMM_PREFIX_FD ? fd_imm(sub)
                                              : fe_imm(sub);
    if (kind == IMM_BAD)
        return cb__wasm_fail(err, at, "unknown opcode 0x%02x %u", rd->data[at], sub);
    return immediates(rd, kind, at, err);
}

static int ctl_of(uint8_t op)
{
    switch (op) {
    case 0x02:
        return CTL_BLOCK;
    case 0x03:
        return CTL_LOOP;
    case 0x04:
        return CTL_IF;
    case 0x05:
        return CTL_ELSE;
    case 0x0b:
        return CTL_END;
    default:
        return CTL_OTHER;
    }
}

/* Decodes one instruction; *ctl says how it affects the block structure. */
static int decode(struct cb__wasm_rd *rd, int *ctl, struct cb_error *err)
{
    size_t at = rd->pos;
    uint8_t op;
    int r = cb__wasm_u8(rd, &op, err);
    if (r < 0)
        return r;
    *ctl = ctl_of(op);
    return immediates(rd, op_imm(op), at, err);
}

void cb__wasm_walk_free(struct cb__wasm_walk *w)
{
    if (w == NULL)
        return;
    free(w->sites);
    free(w->frames);
    *w = (struct cb__wasm_walk){0};
}

static void add_site(struct cb__wasm_walk *w, size_t pos)
{
    if (w->n_sites == w->cap_sites) {
        w->cap_sites = w->cap_sites ? w->cap_sites * 2 : 16;
        w->sites = cb_xrealloc(w->sites, w->cap_sites * sizeof(*w->sites));
    }
    w->cur = w->n_sites++;
    w->sites[w->cur] = (struct cb__wasm_site){.pos = pos, .cost = 0};
}

static void push_frame(struct cb__wasm_walk *w, uint8_t kind)
{
    if (w->depth == w->cap_frames) {
        w->cap_frames = w->cap_frames ? w->cap_frames * 2 : 16;
        w->frames = cb_xrealloc(w->frames, w->cap_frames * sizeof(*w->frames));
    }
    w->frames[w->depth++] = (struct cb__wasm_frame){.kind = kind};
}

/* Updates the block structure after an instruction, opening a new fuel
 * site where control may arrive other than from the instruction before:
 * a loop header, the start of each arm of an if, and after the end of a
 * block, loop or if (where branches to it land). The instruction that
 * ends a stretch (if, else, end) is charged to that stretch. */
static int structure(struct cb__wasm_walk *w, int ctl, size_t at, size_t next, struct cb_error *err)
{
    struct cb__wasm_frame *top = &w->frames[w->depth - 1];
    if (ctl == CTL_BLOCK || ctl == CTL_IF || ctl == CTL_LOOP) {
        if (w->depth > CB__WASM_MAX_DEPTH)
            return cb__wasm_fail(err, at, "blocks nested deeper than %u", CB__WASM_MAX_DEPTH);
    }
    switch (ctl) {
    case CTL_BLOCK:
        push_frame(w, FRAME_BLOCK);
        return 0;
    case CTL_IF:
        push_frame(w, FRAME_IF);
        add_site(w, next);
        return 0;
    case CTL_LOOP:
        push_frame(w, FRAME_LOOP);
        add_site(w, next);
        return 0;
    case CTL_ELSE:
        if (top->kind != FRAME_IF)
            return cb__wasm_fail(err, at, "else outside an if");
        top->kind = FRAME_ELSE;
        add_site(w, next);
        return 0;
    case CTL_END:
        if (--w->depth > 0)
            add_site(w, next);
        return 0;
    default:
        return 0;
    }
}

int cb__wasm_walk_expr(struct cb__wasm_rd *rd, struct cb__wasm_walk *w, struct cb_error *err)
{
    w->n_sites = 0;
    w->depth = 0;
    add_site(w, rd->pos);
    push_frame(w, FRAME_EXPR);
    while (w->depth > 0) {
        size_t at = rd->pos;
        if (at >= rd->end)
            return cb__wasm_fail(err, at, "expression ends without its final end");
        int ctl;
        int r = decode(rd, &ctl, err);
        if (r < 0)
            return r;
        w->sites[w->cur].cost++;
        r = structure(w, ctl, at, rd->pos, err);
        if (r < 0)
            return r;
    }
    return 0;
}
