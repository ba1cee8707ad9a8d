#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Thread_local char last_error[1024];

const char *av_status_string(av_status status) {
    switch (status) {
    case AV_SUCCESS: return "success";
    case AV_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case AV_ERROR_IO: return "I/O error";
    case AV_ERROR_FORMAT: return "malformed input";
    case AV_ERROR_UNSUPPORTED: return "unsupported";
    case AV_ERROR_PROMPT: return "bad prompt";
    case AV_ERROR_OUT_OF_MEMORY: return "out of memory";
    case AV_ERROR_NO_DEVICE: return "no CUDA device";
    case AV_ERROR_CUDA: return "CUDA error";
    case AV_ERROR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *av_last_error(void) { return last_error[0] ? last_error : "no error recorded"; }

const char *av_version(void) { return AV_VERSION_STRING; }

av_status av_fail(av_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    // One line, always: a message that quotes user text must not break the CLI's output format.
    for (char *c = last_error; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    return status;
}

void *av_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *av_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

av_status av_read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return av_fail(AV_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return av_fail(AV_ERROR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    char *buf = av_malloc(size + 1, path);
    if (!buf) {
        fclose(f);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    if (got != size) {
        free(buf);
        return av_fail(AV_ERROR_IO, "%s: short read (%zu of %zu bytes)", path, got, size);
    }
    buf[size] = '\0';
    *data = buf;
    if (len) *len = size;
    return AV_SUCCESS;
}

bool av_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *av_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = av_malloc(a + slash + b + 1, "path");
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

double av_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool av_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
bool av_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
