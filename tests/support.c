#include "support.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t parse_shape(const char *header, int64_t *shape) {
    const char *s = strstr(header, "'shape':");
    cr_assert(s, "npy header without shape: %s", header);
    s = strchr(s, '(');
    cr_assert(s);
    s++;
    int n = 0;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        shape[n++] = strtoll(s, (char **)&s, 10);
    }
    return n;
}

npy_array npy_load(const char *path) {
    npy_array a;
    memset(&a, 0, sizeof a);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open fixture %s", path);
    unsigned char magic[10];
    cr_assert_eq(fread(magic, 1, 10, f), 10, "%s: short npy", path);
    cr_assert(memcmp(magic, "\x93NUMPY", 6) == 0, "%s: not an npy file", path);
    size_t header_len;
    if (magic[6] == 1) {
        header_len = magic[8] | (magic[9] << 8);
    } else {
        unsigned char extra[2];
        cr_assert_eq(fread(extra, 1, 2, f), 2);
        header_len = magic[8] | (magic[9] << 8) | ((size_t)extra[0] << 16) | ((size_t)extra[1] << 24);
    }
    char *header = calloc(header_len + 1, 1);
    cr_assert_eq(fread(header, 1, header_len, f), header_len);
    const char *d = strstr(header, "'descr': '");
    cr_assert(d, "%s: no descr", path);
    d += 10;
    cr_assert(d[0] == '<' || d[0] == '|', "%s: big-endian npy not supported", path);
    snprintf(a.dtype, sizeof a.dtype, "%.*s", (int)strcspn(d + 1, "'"), d + 1);
    cr_assert(strstr(header, "'fortran_order': False"), "%s: fortran order", path);
    a.ndim = (int)parse_shape(header, a.shape);
    free(header);
    a.numel = 1;
    for (int i = 0; i < a.ndim; i++) a.numel *= (size_t)a.shape[i];
    size_t item = (size_t)atoi(a.dtype + 1);
    a.data = malloc(a.numel * item + 1);
    cr_assert_eq(fread(a.data, item, a.numel, f), a.numel, "%s: short data", path);
    fclose(f);
    return a;
}

float *npy_as_f32(const npy_array *a) {
    float *out = malloc(a->numel * sizeof(float) + 1);
    for (size_t i = 0; i < a->numel; i++) {
        if (!strcmp(a->dtype, "f4")) out[i] = ((const float *)a->data)[i];
        else if (!strcmp(a->dtype, "f8")) out[i] = (float)((const double *)a->data)[i];
        else if (!strcmp(a->dtype, "i4")) out[i] = (float)((const int32_t *)a->data)[i];
        else if (!strcmp(a->dtype, "i8")) out[i] = (float)((const int64_t *)a->data)[i];
        else cr_assert_fail("unsupported npy dtype %s", a->dtype);
    }
    return out;
}

void npy_free(npy_array *a) {
    free(a->data);
    a->data = NULL;
}

compare_result compare_f32(const float *got, const float *want, size_t n, double atol, double rtol,
                           const bool *skip) {
    compare_result r = {0};
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        r.compared++;
        double g = got[i], w = want[i];
        double err = fabs(g - w);
        if (isnan(g) || isnan(err)) err = INFINITY;
        if (err > r.max_abs) r.max_abs = err;
        if (w != 0 && err / fabs(w) > r.max_rel) r.max_rel = err / fabs(w);
        double excess = err - (atol + rtol * fabs(w));
        if (excess > 0) r.failures++;
        if (excess > worst_excess) {
            worst_excess = excess;
            r.worst = i;
        }
    }
    return r;
}

void expect_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol,
                  const bool *skip) {
    compare_result r = compare_f32(got, want, n, atol, rtol, skip);
    cr_log_info("%s: compared %zu, max abs err %.3g, max rel err %.3g", what, r.compared, r.max_abs, r.max_rel);
    cr_assert(r.compared > 0, "%s: nothing compared", what);
    cr_assert_eq(r.failures, 0, "%s: %zu of %zu entries outside atol %.1g + rtol %.1g; max abs err %.3g; worst at %zu: got %.9g want %.9g",
                 what, r.failures, r.compared, atol, rtol, r.max_abs, r.worst, got[r.worst], want[r.worst]);
}

int run_command(const char *command, char **out_text) {
    char *full = malloc(strlen(command) + 16);
    sprintf(full, "%s 2>&1", command);
    FILE *p = popen(full, "r");
    free(full);
    cr_assert(p, "popen failed: %s", command);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    if (out_text) *out_text = buf;
    else free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

char *make_scratch_dir(const char *tag) {
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/scratch", AV_BUILD_DIR);
    mkdir(path, 0755);
    snprintf(path, 4096, "%s/scratch/%s-XXXXXX", AV_BUILD_DIR, tag);
    cr_assert(mkdtemp(path), "mkdtemp %s failed", path);
    return path;
}

void remove_tree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    cr_assert_eq(system(cmd), 0);
}

bool path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int count_dir_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

void copy_tree(const char *src, const char *dst) {
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dst);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

void fill_random(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "missing %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    cr_assert(j, "%s is not JSON", path);
    return j;
}
