#define PCRE2_CODE_UNIT_WIDTH 8
#include "scan/patterns.h"
#include "core/util.h"

#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <string.h>

/* Bounds for one match attempt (PCRE2's own defaults are 10M / 20 MiB; the
 * catalogue never needs deep backtracking, so hostile input hits these long
 * before it costs real time). */
#define CB_PATTERN_MATCH_LIMIT 5000000u
#define CB_PATTERN_DEPTH_LIMIT 10000u
#define CB_PATTERN_HEAP_LIMIT  (8u * 1024u) /* KiB */

#define UNI (PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF)

enum start_rule {
    START_ANY,       /* an ordinary regex */
    START_LINE_HEAD, /* injection 12: preceded by ^ or \n and whitespace */
};

struct pattern_def {
    struct cb_pattern_info info;
    const char *pcre;     /* compiled source when it differs from info.source */
    uint32_t flags;       /* PCRE2 compile options */
    const char *literals; /* "a\0b\0" (ends with an empty string) */
    const char *context;  /* required somewhere in the text, or NULL */
    enum start_rule rule;
    /* The unanchored search is slow (a frequent, case-folded first
     * character): the scanner always tries it at its literals instead. */
    bool slow_search;
};

#define CRED CB_PATTERN_CREDENTIAL
#define INJ  CB_PATTERN_INJECTION

static const struct pattern_def defs[] = {
    /* the reference implementation's credential patterns, in its order */
    {{"api_key_assignment", "(?i)(api[_\\-]?key|apikey)\\s*[:=]\\s*['\"]?[\\w\\-]{20,}", CRED,
      true},
     NULL,
     UNI,
     "api\0",
     NULL,
     START_ANY,
     true},
    {{"secret_assignment", "(?i)(secret|token|password|passwd)\\s*[:=]\\s*['\"]?[\\w\\-]{16,}",
      CRED, true},
     NULL,
     UNI,
     "secret\0token\0passw\0",
     NULL,
     START_ANY,
     true},
    {{"openai_key", "sk-[a-zA-Z0-9]{20,}", CRED, true}, NULL, UNI, "sk-\0", NULL, START_ANY},
    {{"github_pat", "ghp_[a-zA-Z0-9]{36}", CRED, true}, NULL, UNI, "ghp_\0", NULL, START_ANY},
    {{"github_server_token", "ghs_[a-zA-Z0-9]{36}", CRED, true},
     NULL,
     UNI,
     "ghs_\0",
     NULL,
     START_ANY},
    {{"slack_token", "xox[bprs]-[a-zA-Z0-9\\-]+", CRED, true}, NULL, UNI, "xox\0", NULL, START_ANY},
    {{"bearer_token", "(?i)bearer\\s+[a-zA-Z0-9\\-_.]{20,}", CRED, true},
     NULL,
     UNI,
     "bearer\0",
     NULL,
     START_ANY},
    /* Added token formats (ASCII, byte mode). */
    {{"anthropic_key", "sk-ant-[a-z]{2,12}[0-9]{2}-[A-Za-z0-9_\\-]{32,}", CRED, false},
     NULL,
     0,
     "sk-ant-\0",
     NULL,
     START_ANY},
    {{"aws_secret_key_assignment",
      "(?i)(?:aws_?)?secret_?access_?key\\\\?[\"']?\\s*[:=]\\s*\\\\?[\"']?"
      "[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
      CRED, false},
     NULL,
     0,
     "aws\0secret\0",
     NULL,
     START_ANY,
     true},
    /* An access key id, then within 256 bytes a 40-character secret key;
     * only the secret key is the match (\K). */
    {{"aws_key_pair",
      "(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])[\\s\\S]{0,256}?(?<![A-Za-z0-9/+])\\K"
      "[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
      CRED, false},
     NULL,
     0,
     "akia\0asia\0",
     NULL,
     START_ANY},
    /* The private_key value of a service-account key file, also when the
     * JSON is itself inside a JSON string (escaped quotes). */
    {{"gcp_service_account_key",
      "private_key\\\\?\"\\s*:\\s*\\\\?\"\\K-----BEGIN[A-Z ]{0,32}PRIVATE KEY-----"
      "[A-Za-z0-9+/=\\s\\\\-]{0,16384}",
      CRED, false},
     NULL,
     0,
     "private_key\0",
     "service_account",
     START_ANY},
    {{"jwt", "eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}", CRED, false},
     NULL,
     0,
     "eyj\0",
     NULL,
     START_ANY},
    /* A whole block, or (truncated output) the header and the base64 that
     * follows it. The body stops at the first "-----", which keeps the
     * search linear however many headers the text holds. */
    {{"pem_private_key",
      "-----BEGIN[A-Z ]{0,32}PRIVATE KEY(?: BLOCK)?-----"
      "(?:[^-]*+(?:-(?!----)[^-]*+)*+-----END[A-Z ]{0,32}PRIVATE KEY(?: BLOCK)?-----"
      "|[A-Za-z0-9+/=\\s\\\\:,]*+)",
      CRED, false},
     NULL,
     0,
     "-----begin\0",
     NULL,
     START_ANY},
    /* An AWS access key id on its own. It comes after aws_key_pair, whose
     * match needs the id still in place to find the secret key after it
     * (patterns are redacted in catalogue order). */
    {{"aws_access_key_id", "(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", CRED, false},
     NULL,
     0,
     "akia\0asia\0",
     NULL,
     START_ANY},
    {{"github_fine_grained_pat", "github_pat_[A-Za-z0-9_]{22,}", CRED, false},
     NULL,
     0,
     "github_pat_\0",
     NULL,
     START_ANY},
    /* OAuth, user-to-server and refresh tokens (ghp_ and ghs_ are above). */
    {{"github_token", "gh[our]_[A-Za-z0-9]{36}", CRED, false},
     NULL,
     0,
     "gho_\0ghu_\0ghr_\0",
     NULL,
     START_ANY},
    /* Personal, deploy, runner and pipeline-trigger tokens. */
    {{"gitlab_token", "gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\\-]{20,}", CRED, false},
     NULL,
     0,
     "glpat-\0gldt-\0glrt-\0glptt-\0",
     NULL,
     START_ANY},
    /* Secret and restricted keys, live and test. */
    {{"stripe_key", "[rs]k_(?:live|test)_[A-Za-z0-9]{20,}", CRED, false},
     NULL,
     0,
     "sk_live_\0sk_test_\0rk_live_\0rk_test_\0",
     NULL,
     START_ANY},
    {{"google_api_key", "AIza[A-Za-z0-9_\\-]{35}", CRED, false},
     NULL,
     0,
     "aiza\0",
     NULL,
     START_ANY},
    /* the reference implementation's injection patterns, in its order */
    {{"ignore_previous_instructions", "(?i)ignore\\s+(all\\s+)?previous\\s+instructions", INJ,
      true},
     NULL,
     UNI,
     "ignore\0",
     NULL,
     START_ANY},
    {{"you_are_now", "(?i)you\\s+are\\s+now\\s+(a|an)\\s+", INJ, true},
     NULL,
     UNI,
     "you\0",
     NULL,
     START_ANY},
    {{"system_you_are", "(?i)system\\s*:\\s*you\\s+are", INJ, true},
     NULL,
     UNI,
     "system\0",
     NULL,
     START_ANY,
     true},
    {{"forget_instructions", "(?i)forget\\s+(everything|all|your)\\s+(you|instructions)", INJ,
      true},
     NULL,
     UNI,
     "forget\0",
     NULL,
     START_ANY},
    {{"inst_open", "(?i)\\[INST\\]", INJ, true}, NULL, UNI, "[inst]\0", NULL, START_ANY},
    {{"system_token", "(?i)<\\|system\\|>", INJ, true}, NULL, UNI, "<|system|>\0", NULL, START_ANY},
    {{"im_start", "(?i)<\\|im_start\\|>", INJ, true}, NULL, UNI, "<|im_start|>\0", NULL, START_ANY},
    {{"im_end", "(?i)<\\|im_end\\|>", INJ, true}, NULL, UNI, "<|im_end|>\0", NULL, START_ANY},
    {{"sys_block", "(?i)<<SYS>>", INJ, true}, NULL, UNI, "<<sys>>\0", NULL, START_ANY},
    {{"inst_close", "(?i)\\[/INST\\]", INJ, true}, NULL, UNI, "[/inst]\0", NULL, START_ANY},
    {{"endoftext", "(?i)<\\|endoftext\\|>", INJ, true},
     NULL,
     UNI,
     "<|endoftext|>\0",
     NULL,
     START_ANY},
    {{"role_marker_injection",
      "(?i)(?:^|\\n)\\s*(?:system|user|human|assistant)\\s*:\\s*(?:ignore|forget|disregard|"
      "override)",
      INJ, true},
     "(?i)(?:system|user|human|assistant)\\s*:\\s*(?:ignore|forget|disregard|override)",
     UNI,
     "system\0user\0human\0assistant\0",
     NULL,
     START_LINE_HEAD,
     true},
};

#define N_PATTERNS CB_ARRAY_LEN(defs)

/* Each pattern twice: for searching, and anchored at compile time for the
 * leak scanner's tries at literal positions (JIT ignores PCRE2_ANCHORED
 * given at match time and would fall back to the interpreter). */
static pcre2_code *codes[N_PATTERNS];
static pcre2_code *anchored_codes[N_PATTERNS];
static pcre2_match_context *mctx;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct cb_error init_err;

static pcre2_code *compile(size_t i, uint32_t extra)
{
    const char *src = defs[i].pcre ? defs[i].pcre : defs[i].info.source;
    int ec;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, defs[i].flags | extra,
                                     &ec, &eoff, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        cb_error_set(&init_err, -EINVAL, "pattern %s at offset %zu: %s", defs[i].info.name,
                     (size_t)eoff, (const char *)msg);
        return NULL;
    }
    /* Without JIT support the interpreter runs the same patterns. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

static int compile_one(size_t i)
{
    codes[i] = compile(i, 0);
    anchored_codes[i] = codes[i] ? compile(i, PCRE2_ANCHORED) : NULL;
    return anchored_codes[i] ? 0 : -EINVAL;
}

static void init_once(void)
{
    mctx = pcre2_match_context_create(NULL);
    if (mctx == NULL) {
        cb_error_set(&init_err, -ENOMEM, "out of memory");
        return;
    }
    pcre2_set_match_limit(mctx, CB_PATTERN_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, CB_PATTERN_DEPTH_LIMIT);
    pcre2_set_heap_limit(mctx, CB_PATTERN_HEAP_LIMIT);
    for (size_t i = 0; i < N_PATTERNS; i++)
        if (compile_one(i) < 0)
            return;
}

int cb__patterns_init(struct cb_error *err)
{
    pthread_once(&once, init_once);
    if (init_err.code < 0)
        return cb_error_set(err, init_err.code, "compiling patterns: %s", init_err.msg);
    return 0;
}

size_t cb__pattern_count(void)
{
    return N_PATTERNS;
}

const struct cb_pattern_info *cb__pattern_get(size_t i)
{
    return i < N_PATTERNS ? &defs[i].info : NULL;
}

const char *cb__pattern_literals(size_t i)
{
    return defs[i].literals;
}

bool cb__pattern_slow_search(size_t i)
{
    return defs[i].slow_search;
}

bool cb__pattern_unicode_fold(size_t i)
{
    return (defs[i].flags & PCRE2_UTF) != 0 && strncmp(defs[i].info.source, "(?i)", 4) == 0;
}

const char *cb__pattern_context(size_t i)
{
    return defs[i].context;
}

void *cb__pattern_match_data(void)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        abort();
    return md;
}

void cb__pattern_match_data_free(void *md)
{
    pcre2_match_data_free(md);
}

/* Unicode White_Space as \s with PCRE2_UCP sees it: the length of the
 * whitespace character that ends just before s[end], or 0. */
static size_t ws_before(const unsigned char *s, size_t end)
{
    if (end >= 1) {
        unsigned char c = s[end - 1];
        if (c == ' ' || (c >= '\t' && c <= '\r'))
            return 1;
    }
    if (end >= 2 && s[end - 2] == 0xc2 && (s[end - 1] == 0x85 || s[end - 1] == 0xa0))
        return 2;
    if (end < 3)
        return 0;
    const unsigned char *p = s + end - 3;
    if ((p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80) ||
        (p[0] == 0xe2 && p[1] == 0x80 &&
         ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9)) ||
        (p[0] == 0xe2 && p[1] == 0x80 && p[2] == 0xaf) ||
        (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) ||
        (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80))
        return 3;
    return 0;
}

/* For `(?:^|\n)\s*` before a match of the core at `k`, in a search that
 * starts at `lo`: the start of the whole match, i.e. 0 when only
 * whitespace precedes k, else the first \n at or after lo of the
 * whitespace run that ends at k. Returns false when neither exists. */
static bool line_head(const unsigned char *s, size_t lo, size_t k, size_t *start)
{
    size_t pos = k, first_nl = SIZE_MAX;
    size_t w;
    while ((w = ws_before(s, pos)) > 0 && pos - w >= lo) {
        pos -= w;
        if (s[pos] == '\n')
            first_nl = pos;
    }
    if (pos == 0) {
        *start = 0;
        return true;
    }
    *start = first_nl;
    return first_nl != SIZE_MAX;
}

static int match_error(size_t i, int rc, struct cb_error *err)
{
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof(msg));
    int code = (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
                rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
                   ? -ERANGE
                   : -EINVAL;
    return cb_error_set(err, code, "pattern %s: %s", defs[i].info.name, (const char *)msg);
}

int cb__pattern_find_raw(size_t i, const char *s, size_t len, size_t start, bool anchored, void *md,
                         size_t *ms, size_t *me, struct cb_error *err)
{
    const pcre2_code *code = anchored ? anchored_codes[i] : codes[i];
    size_t first = start;
    while (start <= len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)s, len, start, 0, md, mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0)
            return match_error(i, rc, err);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *ms = ov[0];
        *me = ov[1] > ov[0] ? ov[1] : ov[0];
        if (defs[i].rule == START_ANY)
            return 1;
        size_t head;
        if (line_head((const unsigned char *)s, anchored ? 0 : first, ov[0], &head)) {
            *ms = head;
            return 1;
        }
        if (anchored)
            return 0;
        start = ov[0] + 1;
    }
    return 0;
}
