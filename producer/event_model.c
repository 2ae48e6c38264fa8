/*
 * event_model.c — synthetic HTTP-log and user-activity events (see event_model.h).
 *
 * Everything random comes from one xoshiro256** stream seeded through splitmix64,
 * and every choice draws the same number of values whatever it picks, so a run is
 * a pure function of (kind, seed, event times). The figures in the tables below
 * are documented in docs/events.md; keep the two in step.
 */
#include "producer/event_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* --- random numbers ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(eddy_gen_model_t *m)
{
    uint64_t *s = m->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double next_unit(eddy_gen_model_t *m)
{
    return (double)(next_u64(m) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n) (n small; the modulo bias is below 2^-40). */
static uint32_t next_below(eddy_gen_model_t *m, uint32_t n)
{
    return (uint32_t)(next_u64(m) % n);
}

/* Standard normal by Box-Muller; always draws exactly two values. */
static double next_normal(eddy_gen_model_t *m)
{
    double u1 = next_unit(m), u2 = next_unit(m);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* Picks an index by integer weights; draws one value. */
static int pick_weighted(eddy_gen_model_t *m, const int *weights, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += weights[i];
    int r = (int)next_below(m, (uint32_t)total);
    for (int i = 0; i < n; i++) {
        if (r < weights[i])
            return i;
        r -= weights[i];
    }
    return n - 1;
}

void eddy_gen_model_init(eddy_gen_model_t *model, eddy_gen_kind_t kind, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        model->s[i] = splitmix64(&x);
    model->kind = kind;
}

int eddy_gen_kind_parse(const char *name)
{
    if (!strcmp(name, "http"))
        return EDDY_GEN_HTTP;
    if (!strcmp(name, "activity"))
        return EDDY_GEN_ACTIVITY;
    return -1;
}

/* --- http events ----------------------------------------------------------------- */

enum { GET, POST, PUT, DELETE, N_METHODS };

const char *const eddy_gen_http_methods[] = {"GET", "POST", "PUT", "DELETE", NULL};

typedef struct endpoint_s {
    const char *path;              /* the endpoint field */
    int weight;                    /* share of traffic, out of the column's sum (100) */
    int method_weights[N_METHODS]; /* GET, POST, PUT, DELETE */
    double latency_mean;           /* ms, normal distribution ... */
    double latency_sd;             /* ... with this standard deviation */
    int pct_3xx_x10;               /* per mille of responses that are 3xx */
    int pct_4xx_x10;               /* per mille 4xx */
    int pct_5xx_x10;               /* per mille 5xx */
} endpoint_t;

static const endpoint_t endpoints[] = {
    {"/api/products", 22, {95, 5, 0, 0}, 60, 18, 40, 20, 5},
    {"/api/users", 18, {80, 15, 5, 0}, 45, 12, 20, 30, 5},
    {"/api/search", 15, {100, 0, 0, 0}, 150, 45, 0, 10, 20},
    {"/api/cart", 12, {50, 30, 15, 5}, 70, 20, 0, 30, 10},
    {"/api/orders", 10, {60, 35, 0, 5}, 120, 35, 10, 40, 15},
    {"/api/auth/login", 10, {0, 100, 0, 0}, 90, 25, 0, 100, 10},
    {"/api/checkout", 7, {0, 100, 0, 0}, 250, 70, 0, 60, 40},
    {"/api/payments", 6, {10, 90, 0, 0}, 320, 90, 0, 30, 50},
};
#define N_ENDPOINTS ((int)(sizeof(endpoints) / sizeof(endpoints[0])))

const char *const eddy_gen_http_endpoints[] = {
    "/api/products",   "/api/users",    "/api/search",   "/api/cart", "/api/orders",
    "/api/auth/login", "/api/checkout", "/api/payments", NULL,
};

typedef struct region_s {
    const char *name;     /* the region field */
    int weight;           /* share of traffic */
    double extra_latency; /* ms added to every request served there */
} region_t;

static const region_t regions[] = {
    {"us-east-1", 30, 0},       {"eu-west-1", 22, 8},     {"us-west-2", 18, 4},
    {"ap-southeast-1", 12, 25}, {"eu-central-1", 10, 10}, {"sa-east-1", 8, 35},
};
#define N_REGIONS ((int)(sizeof(regions) / sizeof(regions[0])))

const char *const eddy_gen_http_regions[] = {
    "us-east-1", "eu-west-1", "us-west-2", "ap-southeast-1", "eu-central-1", "sa-east-1", NULL,
};

#define N_HTTP_USERS 10000

static const int codes_3xx[] = {301, 304};
static const int codes_4xx[] = {400, 401, 403, 404, 429};
static const int codes_5xx[] = {500, 502, 503, 504};

static int pick_status(eddy_gen_model_t *m, const endpoint_t *ep, int method)
{
    int r = (int)next_below(m, 1000);
    int sub = (int)next_below(m, 100); /* drawn always: keeps the stream in step */
    if (r < ep->pct_5xx_x10)
        return codes_5xx[sub % 4];
    r -= ep->pct_5xx_x10;
    if (r < ep->pct_4xx_x10)
        return !strcmp(ep->path, "/api/auth/login") ? 401 : codes_4xx[sub % 5];
    r -= ep->pct_4xx_x10;
    if (r < ep->pct_3xx_x10)
        return codes_3xx[sub % 2];
    if (method == POST)
        return 201;
    if (method == DELETE)
        return 204;
    return 200;
}

static size_t http_event(eddy_gen_model_t *m, int64_t ts_ms, char *buf, size_t cap, size_t *key_off,
                         size_t *key_len)
{
    int endpoint_weights[N_ENDPOINTS], region_weights[N_REGIONS];
    for (int i = 0; i < N_ENDPOINTS; i++)
        endpoint_weights[i] = endpoints[i].weight;
    for (int i = 0; i < N_REGIONS; i++)
        region_weights[i] = regions[i].weight;

    const endpoint_t *ep = &endpoints[pick_weighted(m, endpoint_weights, N_ENDPOINTS)];
    int method = pick_weighted(m, ep->method_weights, N_METHODS);
    int status = pick_status(m, ep, method);
    const region_t *region = &regions[pick_weighted(m, region_weights, N_REGIONS)];
    uint32_t user = next_below(m, N_HTTP_USERS);

    /* Latency: normal per endpoint plus the region's distance; server errors are
     * slower (timeouts behind 502/504). Redrawn until positive, then a floor, so
     * no event ever has latency <= 0. */
    double mean = ep->latency_mean + region->extra_latency;
    if (status >= 500)
        mean *= 2.5;
    double latency = 0;
    for (int tries = 0; tries < 8 && latency < 0.1; tries++)
        latency = mean + ep->latency_sd * next_normal(m);
    if (latency < 0.1)
        latency = 0.1;

    uint64_t id_hi = next_u64(m), id_lo = next_u64(m);
    int n = snprintf(buf, cap,
                     "{\"ts\":%lld,\"endpoint\":\"%s\",\"method\":\"%s\",\"status\":%d,"
                     "\"latency_ms\":%.1f,\"region\":\"%s\",\"user_id\":\"user_%04u\","
                     "\"request_id\":\"%08x-%04x-4%03x-%04x-%012llx\"}",
                     (long long)ts_ms, ep->path, eddy_gen_http_methods[method], status, latency,
                     region->name, user, (unsigned)(id_hi >> 32), (unsigned)(id_hi >> 16) & 0xffff,
                     (unsigned)id_hi & 0xfff, (unsigned)((id_lo >> 48) & 0x3fff) | 0x8000,
                     (unsigned long long)(id_lo & 0xffffffffffffULL));
    if (n < 0 || (size_t)n >= cap)
        return 0;
    /* The key is the user_id value: "user_NNNN". */
    const char *key = strstr(buf, "\"user_id\":\"") + 11;
    *key_off = (size_t)(key - buf);
    *key_len = 9;
    return (size_t)n;
}

/* --- activity events ------------------------------------------------------------- */

const char *const eddy_gen_activity_types[] = {"page_view",   "button_click", "api_call",
                                               "form_submit", "user_login",   NULL};
static const int activity_weights[] = {40, 30, 15, 10, 5};
#define N_ACTIVITY_TYPES 5

/* element_id vocabulary per event type, in the order of eddy_gen_activity_types. */
static const char *const activity_elements[N_ACTIVITY_TYPES][6] = {
    {"page_home", "page_products", "page_product_detail", "page_cart", "page_profile",
     "page_search"},
    {"btn_submit", "btn_add_to_cart", "btn_buy_now", "btn_search", "btn_cancel", "btn_like"},
    {"api_get_profile", "api_list_orders", "api_update_cart", "api_get_recommendations",
     "api_track", "api_get_inventory"},
    {"form_signup", "form_checkout", "form_contact", "form_feedback", "form_newsletter",
     "form_review"},
    {"login_password", "login_sso", "login_oauth_google", "login_oauth_github", "login_magic_link",
     "login_passkey"},
};
/* Element popularity: earlier elements are clicked more. */
static const int element_weights[6] = {30, 25, 18, 12, 9, 6};

#define N_ACTIVITY_USERS 999

static size_t activity_event(eddy_gen_model_t *m, int64_t ts_ms, char *buf, size_t cap,
                             size_t *key_off, size_t *key_len)
{
    int type = pick_weighted(m, activity_weights, N_ACTIVITY_TYPES);
    int element = pick_weighted(m, element_weights, 6);
    uint32_t user = 1 + next_below(m, N_ACTIVITY_USERS);
    char when[32];
    eddy_format_iso8601_ms(ts_ms, when, sizeof(when));
    int n = snprintf(buf, cap,
                     "{\"user_id\":\"user_%03u\",\"event_type\":\"%s\",\"element_id\":\"%s\","
                     "\"timestamp\":\"%s\"}",
                     user, eddy_gen_activity_types[type], activity_elements[type][element], when);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    *key_off = 12; /* {"user_id":" */
    *key_len = 8;  /* user_NNN */
    return (size_t)n;
}

size_t eddy_gen_model_next(eddy_gen_model_t *model, int64_t ts_ms, char *buf, size_t cap,
                           size_t *key_off, size_t *key_len)
{
    if (model->kind == EDDY_GEN_ACTIVITY)
        return activity_event(model, ts_ms, buf, cap, key_off, key_len);
    return http_event(model, ts_ms, buf, cap, key_off, key_len);
}

/* --- time formatting --------------------------------------------------------------- */

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), valid for all int64
 * day counts we meet; from Howard Hinnant's public-domain date algorithms. */
static void civil_from_days(int64_t z, int *y, unsigned *mo, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *mo = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*mo <= 2));
}

size_t eddy_format_iso8601_ms(int64_t ts_ms, char *buf, size_t cap)
{
    int64_t days = ts_ms >= 0 ? ts_ms / 86400000 : -((-ts_ms + 86399999) / 86400000);
    int64_t ms_of_day = ts_ms - days * 86400000;
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    int n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, mo, d,
                     (int)(ms_of_day / 3600000), (int)(ms_of_day / 60000 % 60),
                     (int)(ms_of_day / 1000 % 60), (int)(ms_of_day % 1000));
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
