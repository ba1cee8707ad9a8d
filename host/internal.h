// Internal helpers shared by every host/ module and by the tests. Not installed.
#ifndef AV_INTERNAL_H
#define AV_INTERNAL_H

#include "attnviz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AV_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define AV_PRINTF(fmt_index, first_arg)
#endif

// Records a one-line message for av_last_error() and returns status, so that library code reads
//   return av_fail(AV_ERROR_FORMAT, "%s: header length %llu beyond file size %zu", path, n, size);
av_status av_fail(av_status status, const char *fmt, ...) AV_PRINTF(2, 3);

// Propagates a failure with its message untouched.
#define AV_TRY(expr)                                  \
    do {                                              \
        av_status av_try_status_ = (expr);            \
        if (av_try_status_ != AV_SUCCESS) return av_try_status_; \
    } while (0)

// Allocation that records an out-of-memory message naming what was being allocated.
void *av_malloc(size_t bytes, const char *what);
void *av_calloc(size_t count, size_t size, const char *what);

// Whole-file helpers. av_read_file returns a NUL-terminated buffer (the NUL is not counted in *len).
av_status av_read_file(const char *path, char **data, size_t *len);
bool av_file_exists(const char *path);
// Joins dir and name with one '/' into a malloc'ed string (NULL only on allocation failure).
char *av_path_join(const char *dir, const char *name);

// Milliseconds of CLOCK_MONOTONIC, for durations.
double av_now_ms(void);

// Overflow-checked size arithmetic: false when the product or sum would not fit.
bool av_mul_size(size_t a, size_t b, size_t *out);
bool av_add_size(size_t a, size_t b, size_t *out);

#endif
