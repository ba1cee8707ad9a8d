// Shared test helpers: .npy fixtures, tolerant comparison, running the CLI, scratch directories, random data.
#ifndef AV_TEST_SUPPORT_H
#define AV_TEST_SUPPORT_H

#include "attnviz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct npy_array {
    char dtype[8];     // numpy descr without byte order: "f4", "i4", "i8"
    int ndim;
    int64_t shape[8];
    size_t numel;
    void *data;        // as stored (little-endian)
} npy_array;

// Loads PATH or fails the current test with a message.
npy_array npy_load(const char *path);
// The array as float32 (converting from f4 / f8 / i4 / i8); caller frees.
float *npy_as_f32(const npy_array *a);
void npy_free(npy_array *a);

typedef struct compare_result {
    double max_abs;    // max |got - want|
    double max_rel;    // max |got - want| / |want| over |want| > 0
    size_t worst;      // index of the entry that broke the tolerance most
    size_t failures;   // entries with |got - want| > atol + rtol * |want|
    size_t compared;
} compare_result;

// Compares N entries; entries where skip[i] is true are not compared (skip may be NULL). NaN in got always fails.
compare_result compare_f32(const float *got, const float *want, size_t n, double atol, double rtol,
                           const bool *skip);
// cr_assert that a comparison passed, printing what, max errors and the worst index.
void expect_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol,
                  const bool *skip);

// Runs a shell command; returns its exit status and, when out_text is not NULL, its stdout+stderr (malloc'ed).
int run_command(const char *command, char **out_text);
// A fresh empty directory under the build tree (malloc'ed path).
char *make_scratch_dir(const char *tag);
// rm -rf PATH
void remove_tree(const char *path);
bool path_exists(const char *path);
// Number of entries in a directory (not counting . and ..), -1 when it does not exist.
int count_dir_entries(const char *path);
// Writes LEN bytes to PATH or fails the test.
void write_bytes(const char *path, const void *data, size_t len);
// Copies a directory tree (cp -r SRC DST) or fails the test.
void copy_tree(const char *src, const char *dst);

// PATH parsed as JSON (caller cJSON_Deletes), or fails the test; at most 1 MiB.
struct cJSON *read_json(const char *path);

// Deterministic uniform random floats in [lo, hi) (xorshift; never zeros-only).
void fill_random(float *x, size_t n, uint64_t seed, float lo, float hi);

// Asserts that an av_status call succeeded, printing the call and av_last_error().
#define AV_OK(call)                                                                                                   \
    do {                                                                                                              \
        int st_ = (int)(call);                                                                                        \
        cr_assert_eq(st_, 0, "%s failed: %s", #call, av_last_error());                                                \
    } while (0)

// The repository's paths, for fixtures.
#define FIXTURE(rel) AV_TEST_DATA_DIR "/" rel
#define SHARED(rel) AV_SHARED_DIR "/" rel

#endif
