/*
 * decode.c — JSON events to field values (see decode.h).
 *
 * One pass over the record, no allocation: a hand-written scanner that accepts
 * exactly what jansson 2.14's json_loadb(buf, len, 0, NULL) accepts (the tests
 * and tests/fuzz/fuzz_decode.c check this against tests/support/decode_reference.c,
 * which still uses jansson). Only members of the top-level object whose key is in
 * the field table are turned into values; everything else is validated and
 * skipped. Quirks of jansson kept on purpose: a key given twice counts with its
 * last value, and one NUL byte right after a number or a literal is skipped (its
 * lexer loses a pushed-back NUL).
 *
 * Then every field is checked against the rule the topology derived for it
 * (eddy_field_rule_t: its type, whether it must be there, a declared range, an
 * opt-in coercion of "503" to 503) and the event time against the epoch and the
 * bound set by eddy_decoder_set_max_ts(). Bad input is rejected here, not in the
 * windows: an event time that would move stream time to the year 9999, or a
 * "503" that never matches `status >= 500`, changes no store; the task sends it
 * to the dead-letter topic with the reason. Each reason is a static string
 * naming what was found and what was expected.
 */
#include "engine/decode.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048                  /* jansson's JSON_PARSER_MAX_DEPTH */
#define ONES      0x0101010101010101ULL /* one in each byte of a word */

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool eddy_parse_iso8601(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    int frac = 0, scale = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (scale < 3) {
                frac = frac * 10 + (s[i] - '0');
                scale++;
            }
            i++;
        }
        if (i == start || i - start > 9)
            return false;
        while (scale < 3) {
            frac *= 10;
            scale++;
        }
    }
    int offset_min = 0;
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000LL + sec * 1000LL + frac;
    return true;
}

struct eddy_decoder_s {
    const eddy_topology_t *topo;                 /* the field table's owner */
    size_t n_fields;                             /* its slots */
    const char *names[EDDY_TOPOLOGY_MAX_FIELDS]; /* field name by slot */
    uint8_t by_len[EDDY_FIELD_NAME_MAX + 2];     /* sorted[by_len[l] .. by_len[l+1]) are
                                                    the slots whose name has l bytes */
    uint8_t sorted[EDDY_TOPOLOGY_MAX_FIELDS];    /* slots ordered by name length */
    char *scratch;                               /* unescaped strings, number copies */
    size_t scratch_cap;                          /* its size, >= 2 * record length + 64 */
    size_t scratch_used;                         /* taken by the current decode's values */
    int64_t max_ts;                              /* the latest event time accepted */
};

/* The scanner's position in one record. */
typedef struct scan_s {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* one past the last */
    eddy_decoder_t *decoder;  /* for its scratch */
} scan_t;

/* A number token as the scanner saw it, converted only when needed. */
typedef struct number_s {
    const unsigned char *start; /* the token */
    size_t len;                 /* its bytes */
    bool real;                  /* has a fraction or an exponent */
    bool neg;                   /* starts with '-' */
    bool many;                  /* more than 19 significant digits: mant is not exact */
    uint64_t mant;              /* the significant digits (integer: the magnitude) */
    int sig;                    /* how many of them (leading zeros excluded) */
    int int_digits;             /* digits before the point or exponent */
    int64_t exp10;              /* value = mant * 10^exp10 unless many */
    int64_t exp_raw;            /* the written exponent (0 if none), saturated */
} number_t;

eddy_decoder_t *eddy_decoder_new(const eddy_topology_t *topo)
{
    eddy_decoder_t *decoder = calloc(1, sizeof(*decoder));
    if (!decoder)
        return NULL;
    decoder->topo = topo;
    decoder->max_ts = EDDY_EVENT_TIME_MAX_MS;
    decoder->n_fields = eddy_topology_field_count(topo);
    assert(eddy_topology_timestamp_field(topo) == 0);
    assert(decoder->n_fields <= EDDY_TOPOLOGY_MAX_FIELDS);
    /* A counting sort by name length: a key is compared only with the names of
     * its own length. */
    size_t count[EDDY_FIELD_NAME_MAX + 2] = {0};
    for (size_t i = 0; i < decoder->n_fields; i++) {
        decoder->names[i] = eddy_topology_field_name(topo, i);
        size_t l = strlen(decoder->names[i]);
        assert(l <= EDDY_FIELD_NAME_MAX);
        count[l + 1]++;
    }
    for (size_t l = 1; l < EDDY_FIELD_NAME_MAX + 2; l++)
        count[l] += count[l - 1];
    for (size_t l = 0; l < EDDY_FIELD_NAME_MAX + 2; l++)
        decoder->by_len[l] = (uint8_t)count[l];
    for (size_t i = 0; i < decoder->n_fields; i++)
        decoder->sorted[count[strlen(decoder->names[i])]++] = (uint8_t)i;
    return decoder;
}

void eddy_decoder_destroy(eddy_decoder_t *decoder)
{
    if (!decoder)
        return;
    free(decoder->scratch);
    free(decoder);
}

void eddy_decoder_set_max_ts(eddy_decoder_t *decoder, int64_t max_ts)
{
    decoder->max_ts = max_ts < EDDY_EVENT_TIME_MAX_MS ? max_ts : EDDY_EVENT_TIME_MAX_MS;
}

int64_t eddy_decoder_max_ts(const eddy_decoder_t *decoder)
{
    return decoder->max_ts;
}

static int field_slot(const eddy_decoder_t *decoder, const char *key, size_t len)
{
    if (len > EDDY_FIELD_NAME_MAX)
        return -1;
    for (unsigned i = decoder->by_len[len]; i < decoder->by_len[len + 1]; i++) {
        unsigned slot = decoder->sorted[i];
        const char *name = decoder->names[slot];
        if (len == 0 || (name[0] == key[0] && memcmp(name, key, len) == 0))
            return (int)slot;
    }
    return -1;
}

/* --- the scanner ------------------------------------------------------------------ */

static inline void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10;
}

static inline bool is_alpha(unsigned c)
{
    return (c | 0x20) - 'a' < 26;
}

/* Bytes a string scan must stop at. */
static const bool str_special[256] = {
    [0 ... 0x1F] = true, ['"'] = true, ['\\'] = true, [0x80 ... 0xFF] = true};

/* The length of the UTF-8 sequence at p (a byte >= 0x80), or 0 if it is not one
 * jansson accepts: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

static bool hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    if (end - p < 4)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (is_digit(c))
            d = c - '0';
        else if ((c | 0x20) - 'a' < 6)
            d = (c | 0x20) - 'a' + 10;
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

static size_t utf8_put(char *t, uint32_t cp)
{
    if (cp < 0x80) {
        t[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        t[0] = (char)(0xC0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        t[0] = (char)(0xE0 | cp >> 12);
        t[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    t[0] = (char)(0xF0 | cp >> 18);
    t[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    t[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    t[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Scans a string whose opening quote is behind s->p and leaves s->p after the
 * closing one. With out (room for as many bytes as the source has), writes the
 * unescaped bytes there and their count to *out_len. *escaped tells whether there
 * was any escape (else the source bytes are the value). Rejects what jansson
 * does: control characters, bad UTF-8, unknown escapes, lone or mismatched
 * surrogates and \u0000 (a value without JSON_ALLOW_NUL, or a NUL in a key). */
static bool scan_string(scan_t *s, char *out, size_t *out_len, bool *escaped)
{
    const unsigned char *p = s->p, *end = s->end;
    char *t = out;
    bool esc = false;
    for (;;) {
        const unsigned char *run = p;
        /* Eight bytes at a time while none is special (a control character,
         * non-ASCII, '"' or '\\'); the tests below are exact for "any byte". */
        while (end - p >= 8) {
            uint64_t w, q, b;
            memcpy(&w, p, 8);
            q = w ^ (ONES * '"');
            b = w ^ (ONES * '\\');
            if ((((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w) &
                (ONES * 0x80))
                break;
            p += 8;
        }
        while (p < end && !str_special[*p])
            p++;
        if (t) {
            memcpy(t, run, (size_t)(p - run));
            t += p - run;
        }
        if (p == end)
            return false;
        unsigned c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (!n)
                return false;
            if (t) {
                memcpy(t, p, n);
                t += n;
            }
            p += n;
            continue;
        }
        esc = true;
        if (end - p < 2)
            return false;
        c = p[1];
        p += 2;
        char ch;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            ch = (char)c;
            break;
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, end, &cp))
                return false;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 2 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                p += 6;
                cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
            } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                return false;
            }
            if (t)
                t += utf8_put(t, cp);
            continue;
        }
        default:
            return false;
        }
        if (t)
            *t++ = ch;
    }
    s->p = p + 1;
    if (out_len)
        *out_len = (size_t)(t - out);
    *escaped = esc;
    return true;
}

/* jansson's lexer pushes back the byte after a number or a literal; a pushed-back
 * NUL is lost (its buffer reads NUL as "empty"), so one NUL there is skipped. */
static inline void skip_lost_nul(scan_t *s)
{
    if (s->p < s->end && *s->p == 0)
        s->p++;
}

/* Scans a number token with jansson's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?
 * ([eE][+-]?[0-9]+)?, where "01" is an error, not two tokens. */
static bool scan_number(scan_t *s, number_t *num)
{
    const unsigned char *p = s->p, *end = s->end;
    memset(num, 0, sizeof(*num));
    num->start = p;
    if (*p == '-') {
        num->neg = true;
        p++;
    }
    if (p == end || !is_digit(*p))
        return false;
    if (*p == '0') {
        p++;
        num->int_digits = 1;
        if (p < end && is_digit(*p))
            return false;
    } else {
        while (p < end && is_digit(*p)) {
            if (num->sig < 19) {
                num->mant = num->mant * 10 + (*p - '0');
                num->sig++;
            } else {
                num->many = true;
            }
            num->int_digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return false;
        num->real = true;
        while (p < end && is_digit(*p)) {
            if (num->sig < 19) {
                num->mant = num->mant * 10 + (*p - '0');
                if (num->mant)
                    num->sig++;
                num->exp10--;
            } else {
                num->many = true;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return false;
        num->real = true;
        int64_t e = 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000000)
                e = e * 10 + (*p - '0');
            p++;
        }
        num->exp_raw = eneg ? -e : e;
        num->exp10 += num->exp_raw;
    }
    num->len = (size_t)(p - num->start);
    s->p = p;
    skip_lost_nul(s);
    return true;
}

/* strtod on a NUL-terminated copy of the token with the locale's decimal point,
 * as jansson does; false on overflow. */
static bool number_strtod(scan_t *s, const number_t *num, double *out)
{
    char small[64];
    char *copy = small;
    if (num->len >= sizeof(small)) {
        /* The scratch has room: twice the record's length + 64 minus the values so
         * far, which come from other bytes of the record (the token itself may be
         * one of those values: a string coerced to a number). */
        copy = s->decoder->scratch + s->decoder->scratch_used;
    }
    memcpy(copy, num->start, num->len);
    copy[num->len] = '\0';
    const char *point = localeconv()->decimal_point;
    if (point[0] != '.') {
        char *dot = strchr(copy, '.');
        if (dot)
            *dot = point[0];
    }
    errno = 0;
    double v = strtod(copy, NULL);
    if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
        return false;
    *out = v;
    return true;
}

/* The token's value as jansson has it: an integer (json_int_t, overflow is an
 * error) converted to double, or strtod's result (overflow to infinity is an
 * error). Without `need` only the errors are checked, cheaply when possible. */
static bool number_value(scan_t *s, const number_t *num, bool need, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (!num->real) {
        if (num->many || num->mant > (uint64_t)INT64_MAX + num->neg)
            return false;
        long long v = num->neg ? (long long)(0 - num->mant) : (long long)num->mant;
        *out = (double)v;
        return true;
    }
    if (!num->many && num->mant == 0) {
        *out = num->neg ? -0.0 : 0.0;
        return true;
    }
    /* Both the digits and the power of ten are exact doubles, so one correctly
     * rounded operation gives what a correctly rounding strtod (glibc's) gives. */
    if (!num->many && num->mant <= (1ULL << 53) && num->exp10 >= -22 && num->exp10 <= 22) {
        double v = (double)num->mant;
        v = num->exp10 >= 0 ? v * pow10[num->exp10] : v / pow10[-num->exp10];
        *out = num->neg ? -v : v;
        return true;
    }
    /* Below 10^308 there is no overflow to check. */
    if (!need && num->int_digits + num->exp_raw <= 308)
        return true;
    return number_strtod(s, num, out);
}

/* Scans true, false or null (jansson reads a whole run of letters). */
static bool scan_literal(scan_t *s, eddy_value_t *v)
{
    const unsigned char *p = s->p;
    while (p < s->end && is_alpha(*p))
        p++;
    size_t n = (size_t)(p - s->p);
    if (n == 4 && memcmp(s->p, "true", 4) == 0) {
        v->type = EDDY_VALUE_BOOL;
        v->num = 1;
    } else if (n == 5 && memcmp(s->p, "false", 5) == 0) {
        v->type = EDDY_VALUE_BOOL;
        v->num = 0;
    } else if (n == 4 && memcmp(s->p, "null", 4) == 0) {
        v->type = EDDY_VALUE_NULL;
    } else {
        return false;
    }
    s->p = p;
    skip_lost_nul(s);
    return true;
}

/* Validates one value (s->p at its first byte) nested `depth` deep (the record is
 * depth 1), with an explicit stack instead of recursion. */
static bool skip_value(scan_t *s, int depth)
{
    char open[MAX_DEPTH + 2]; /* open[d]: '{' or '[' holding the values at depth d */
    const int base = depth;
    const unsigned char *end = s->end;
    eddy_value_t v;
    number_t num;
    bool esc;
value:
    if (depth > MAX_DEPTH || s->p == end)
        return false;
    switch (*s->p) {
    case '{':
        s->p++;
        skip_ws(s);
        if (s->p < end && *s->p == '}') {
            s->p++;
            goto next;
        }
        open[++depth] = '{';
        goto key;
    case '[':
        s->p++;
        skip_ws(s);
        if (s->p < end && *s->p == ']') {
            s->p++;
            goto next;
        }
        open[++depth] = '[';
        goto value;
    case '"':
        s->p++;
        if (!scan_string(s, NULL, NULL, &esc))
            return false;
        goto next;
    case 't':
    case 'f':
    case 'n':
        if (!scan_literal(s, &v))
            return false;
        goto next;
    default:
        if (*s->p != '-' && !is_digit(*s->p))
            return false;
        if (!scan_number(s, &num) || !number_value(s, &num, false, &v.num))
            return false;
        goto next;
    }
key:
    if (s->p == end || *s->p != '"')
        return false;
    s->p++;
    if (!scan_string(s, NULL, NULL, &esc))
        return false;
    skip_ws(s);
    if (s->p == end || *s->p != ':')
        return false;
    s->p++;
    skip_ws(s);
    goto value;
next:
    if (depth == base)
        return true;
    skip_ws(s);
    if (s->p == end)
        return false;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        if (open[depth] == '{')
            goto key;
        goto value;
    }
    if (*s->p != (open[depth] == '{' ? '}' : ']'))
        return false;
    s->p++;
    depth--;
    goto next;
}

/* A member of the record that the topology reads: its value into *v (objects and
 * arrays are validated, and only their type is kept). */
static bool extract_value(scan_t *s, eddy_value_t *v)
{
    eddy_decoder_t *decoder = s->decoder;
    number_t num;
    bool esc;
    switch (*s->p) {
    case '"': {
        const unsigned char *start = ++s->p;
        if (!scan_string(s, NULL, NULL, &esc))
            return false;
        v->type = EDDY_VALUE_STRING;
        if (!esc) {
            v->str = (const char *)start;
            v->len = (size_t)(s->p - 1 - start);
            return true;
        }
        /* Unescaping never lengthens, so the scratch has room (see decode). */
        char *t = decoder->scratch + decoder->scratch_used;
        s->p = start; /* the second pass ends where the first did */
        scan_string(s, t, &v->len, &esc);
        v->str = t;
        decoder->scratch_used += v->len;
        return true;
    }
    case 't':
    case 'f':
    case 'n':
        return scan_literal(s, v);
    case '{':
    case '[':
        v->type = *s->p == '{' ? EDDY_VALUE_OBJECT : EDDY_VALUE_ARRAY;
        return skip_value(s, 2);
    default:
        if (*s->p != '-' && !is_digit(*s->p))
            return false;
        if (!scan_number(s, &num) || !number_value(s, &num, true, &v->num))
            return false;
        v->type = EDDY_VALUE_NUMBER;
        return true;
    }
}

/* The top-level object, s->p after its '{'. */
static bool scan_record(scan_t *s, eddy_value_t *values)
{
    eddy_decoder_t *decoder = s->decoder;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        if (s->p == s->end || *s->p != '"')
            return false;
        const unsigned char *start = ++s->p;
        bool esc;
        if (!scan_string(s, NULL, NULL, &esc))
            return false;
        const char *key = (const char *)start;
        size_t key_len = (size_t)(s->p - 1 - start);
        if (esc) {
            /* Unescaped after the values so far, not kept (see decode). */
            char *t = decoder->scratch + decoder->scratch_used;
            s->p = start; /* the second pass ends where the first did */
            scan_string(s, t, &key_len, &esc);
            key = t;
        }
        int slot = field_slot(decoder, key, key_len);
        skip_ws(s);
        if (s->p == s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        if (s->p == s->end)
            return false;
        /* A key given twice: the last value counts, as with jansson's json_object_set. */
        if (slot >= 0 ? !extract_value(s, &values[slot]) : !skip_value(s, 2))
            return false;
        skip_ws(s);
        if (s->p == s->end)
            return false;
        if (*s->p == '}') {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        s->p++;
        skip_ws(s);
    }
}

/* --- the checks ------------------------------------------------------------------- */

/* What a reason says was expected besides eddy_field_type_t's: the timestamp in
 * each of its formats. */
enum { EXPECT_EPOCH_MS = 5, EXPECT_ISO8601 = 6, EXPECT_AUTO = 7, EXPECT_COUNT = 8 };

#define EXPECTING(found)                                                                           \
    {                                                                                              \
        found "; expected a string, number or boolean", found "; expected a number",               \
            found "; expected a whole number", found "; expected a string",                        \
            found "; expected true or false", found "; expected epoch milliseconds (a number)",    \
            found "; expected an ISO-8601 time (a string)",                                        \
            found "; expected epoch milliseconds or an ISO-8601 time"                              \
    }

/* The reason for a value of the wrong type, by what it is and what was expected. */
static const char *const wrong_type[EDDY_VALUE_TYPE_COUNT][EXPECT_COUNT] = {
    [EDDY_VALUE_MISSING] = EXPECTING("the field is missing"),
    [EDDY_VALUE_NULL] = EXPECTING("the field is null"),
    [EDDY_VALUE_NUMBER] = EXPECTING("the field holds a number"),
    [EDDY_VALUE_STRING] = EXPECTING("the field holds a string"),
    [EDDY_VALUE_BOOL] = EXPECTING("the field holds a boolean"),
    [EDDY_VALUE_OBJECT] = EXPECTING("the field holds an object"),
    [EDDY_VALUE_ARRAY] = EXPECTING("the field holds an array"),
};

#define BIT(t) (1u << (t))
/* The value types each field type takes as they are. */
static const unsigned takes[] = {
    [EDDY_FIELD_ANY] = BIT(EDDY_VALUE_NUMBER) | BIT(EDDY_VALUE_STRING) | BIT(EDDY_VALUE_BOOL),
    [EDDY_FIELD_NUMBER] = BIT(EDDY_VALUE_NUMBER),
    [EDDY_FIELD_INTEGER] = BIT(EDDY_VALUE_NUMBER),
    [EDDY_FIELD_STRING] = BIT(EDDY_VALUE_STRING),
    [EDDY_FIELD_BOOL] = BIT(EDDY_VALUE_BOOL),
};

/* A string value that is a JSON number and nothing else ("503", "-1.5e3"; not
 * " 503", "0x1f" or "1e999") becomes that number, converted as a number in the
 * record is; false if it is not one. */
static bool coerce_number(eddy_decoder_t *decoder, eddy_value_t *v)
{
    scan_t s = {.p = (const unsigned char *)v->str,
                .end = (const unsigned char *)v->str + v->len,
                .decoder = decoder};
    number_t num;
    double d;
    if (s.p == s.end || (*s.p != '-' && !is_digit(*s.p)) || !scan_number(&s, &num) ||
        s.p != s.end || !number_value(&s, &num, true, &d))
        return false;
    v->type = EDDY_VALUE_NUMBER;
    v->num = d;
    return true;
}

/* The event time: a number of epoch ms or an ISO-8601 string as the format says,
 * from the epoch to decoder->max_ts. */
static const char *check_time(const eddy_decoder_t *decoder, const eddy_value_t *tv, int64_t *ts)
{
    eddy_ts_format_t fmt = eddy_topology_timestamp_format(decoder->topo);
    if (tv->type == EDDY_VALUE_NUMBER && fmt != EDDY_TS_ISO8601) {
        if (!(tv->num >= 0))
            return "the timestamp is before the epoch, 1970-01-01T00:00:00Z";
        if (tv->num > (double)decoder->max_ts)
            return "the timestamp is too far in the future: beyond the wall clock plus max_future";
        if (tv->num != floor(tv->num))
            return "the timestamp is not a whole number of milliseconds";
        *ts = (int64_t)tv->num;
        return NULL;
    }
    if (tv->type == EDDY_VALUE_STRING && fmt != EDDY_TS_EPOCH_MS) {
        if (!eddy_parse_iso8601(tv->str, tv->len, ts))
            return "the timestamp is not an ISO-8601 UTC time such as 2024-01-15T10:30:00.123Z";
        if (*ts < 0)
            return "the timestamp is before the epoch, 1970-01-01T00:00:00Z";
        if (*ts > decoder->max_ts)
            return "the timestamp is too far in the future: beyond the wall clock plus max_future";
        return NULL;
    }
    int expect = fmt == EDDY_TS_EPOCH_MS  ? EXPECT_EPOCH_MS
                 : fmt == EDDY_TS_ISO8601 ? EXPECT_ISO8601
                                          : EXPECT_AUTO;
    return wrong_type[tv->type][expect];
}

/* Every field holds what the topology needs of it; otherwise the whole event is
 * unusable (counting it in some stores and not others would make the stores
 * disagree). The timestamp (slot 0) first, then the slots in order. */
static eddy_err_t check_fields(eddy_decoder_t *decoder, eddy_value_t *values, eddy_decoded_t *dec,
                               const char **reason)
{
    const eddy_topology_t *topo = decoder->topo;
    const size_t n = decoder->n_fields;
    if ((*reason = check_time(decoder, &values[0], &dec->ts))) {
        dec->bad_field = 0;
        return EDDY_ERR_INVALID;
    }
    for (size_t i = 1; i < n; i++) {
        const eddy_field_rule_t *r = &topo->field_rules[i];
        eddy_value_t *v = &values[i];
        eddy_value_type_t t = v->type;
        if (!(takes[r->type] & BIT(t))) {
            if (t == EDDY_VALUE_MISSING || t == EDDY_VALUE_NULL) {
                if (!r->required)
                    continue; /* no value: a predicate's comparisons with it are false */
                *reason = wrong_type[t][r->type];
            } else if (t == EDDY_VALUE_STRING && r->coerce) {
                if (coerce_number(decoder, v))
                    goto number;
                *reason = r->type == EDDY_FIELD_INTEGER
                              ? "the field holds a string that is not a JSON number; expected a "
                                "whole number"
                              : "the field holds a string that is not a JSON number; expected a "
                                "number";
            } else {
                *reason = wrong_type[t][r->type];
            }
            dec->bad_field = (int)i;
            return EDDY_ERR_INVALID;
        }
        if (t != EDDY_VALUE_NUMBER)
            continue;
    number:
        if (r->type == EDDY_FIELD_INTEGER && v->num != floor(v->num))
            *reason = "the field holds a fractional number; expected a whole number";
        else if (!(v->num >= r->min && v->num <= r->max))
            *reason = "the field holds a number outside its declared range";
        else
            continue;
        dec->bad_field = (int)i;
        return EDDY_ERR_INVALID;
    }
    return EDDY_OK;
}

eddy_err_t eddy_decode_json(eddy_decoder_t *decoder, const void *buf, size_t len,
                            eddy_value_t *values, eddy_decoded_t *dec, const char **reason)
{
    dec->bad_field = -1;
    /* Unescaped strings are never longer than their source and come from distinct
     * bytes of the record, so 2 * record length + 64 bytes of scratch hold all of
     * one decode's values plus one key or number copy (a number copied from one of
     * those values, too): pointers into the scratch stay valid for the whole
     * decode. */
    size_t need = 2 * len + 64;
    if (decoder->scratch_cap < need) {
        size_t cap = decoder->scratch_cap * 2 > need ? decoder->scratch_cap * 2 : need;
        char *scratch = realloc(decoder->scratch, cap);
        if (!scratch) {
            *reason = "out of memory";
            return EDDY_ERR_NOMEM;
        }
        decoder->scratch = scratch;
        decoder->scratch_cap = cap;
    }
    decoder->scratch_used = 0;
    size_t n = decoder->n_fields;
    for (size_t i = 0; i < n; i++)
        values[i].type = EDDY_VALUE_MISSING;

    /* A Kafka record without a value has a NULL payload (jansson: "wrong arguments"). */
    const unsigned char *p = buf ? buf : (const unsigned char *)"";
    scan_t s = {.p = p, .end = buf ? p + len : p, .decoder = decoder};
    skip_ws(&s);
    bool ok, object = s.p < s.end && *s.p == '{';
    if (object) {
        s.p++;
        ok = scan_record(&s, values);
    } else {
        /* jansson parses a top-level array in full before it is "not an object". */
        ok = s.p < s.end && *s.p == '[' && skip_value(&s, 1);
    }
    if (ok) {
        skip_ws(&s);
        ok = s.p == s.end;
    }
    if (!ok) {
        *reason = "not valid JSON";
        return EDDY_ERR_INVALID;
    }
    if (!object) {
        *reason = "not a JSON object";
        return EDDY_ERR_INVALID;
    }
    return check_fields(decoder, values, dec, reason);
}
