// safetensors loader: round trips of the float dtypes, every validation failure (one test each, built byte by byte in
// a scratch directory), st_require's messages and sharded checkpoints.
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "safetensors.h"
#include "support.h"

// Writes DIR/NAME as a safetensors file: 8-byte little-endian header length, HEADER, then DATA (n bytes).
static char *write_st_with_length(const char *dir, const char *name, uint64_t header_len, const char *header,
                                  const void *data, size_t n) {
    size_t hlen = strlen(header);
    size_t total = 8 + hlen + n;
    uint8_t *buf = malloc(total);
    cr_assert(buf);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(header_len >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (n) memcpy(buf + 8 + hlen, data, n);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, buf, total);
    free(buf);
    return strdup(path);
}

static char *write_st(const char *dir, const char *name, const char *header, const void *data, size_t n) {
    return write_st_with_length(dir, name, strlen(header), header, data, n);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, text, strlen(text));
}

// Asserts STATUS == WANT and that av_last_error() mentions every fragment (NULL-terminated list).
static void expect_error_impl(av_status status, av_status want, const char *const *fragments) {
    cr_assert_eq(status, want, "status %s, expected %s; message: %s", av_status_string(status),
                 av_status_string(want), av_last_error());
    for (int i = 0; fragments[i]; i++)
        cr_assert(strstr(av_last_error(), fragments[i]), "message \"%s\" lacks \"%s\"", av_last_error(),
                  fragments[i]);
}
#define expect_error(status, want, ...) expect_error_impl(status, want, (const char *const[]){__VA_ARGS__, NULL})

// Opens a one-file checkpoint whose header is HEADER over DATA and expects it to fail with WANT.
#define expect_bad_header(header, data, n, want, ...)                                                  \
    do {                                                                                               \
        char *dir_ = make_scratch_dir("st");                                                           \
        char *path_ = write_st(dir_, "model.safetensors", header, data, n);                            \
        st_checkpoint ck_;                                                                             \
        expect_error(st_file_open(&ck_, path_), want, "model.safetensors", __VA_ARGS__);               \
        cr_assert_eq(ck_.count, 0, "a failed open leaves an empty checkpoint");                        \
        cr_assert_null(ck_.files);                                                                     \
        free(path_);                                                                                   \
        remove_tree(dir_);                                                                             \
        free(dir_);                                                                                    \
    } while (0)

static uint16_t f32_to_bf16_truncated(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (uint16_t)(bits >> 16);
}

Test(safetensors, round_trip_f32_f16_bf16) {
    enum { N32 = 6, N16 = 10, NB = 8 };
    float f32[N32];
    fill_random(f32, N32, 7, -3.0f, 3.0f);
    // Known halves: normal, negative, max, smallest and largest subnormal, -0, +inf, -inf, a rounded third.
    const uint16_t f16[N16] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x8000, 0x7C00, 0xFC00, 0x3555, 0x7E00};
    const float f16_want[N16 - 1] = {1.0f,         -2.0f,     65504.0f,  5.9604645e-8f, 6.097555e-5f,
                                     -0.0f,        INFINITY, -INFINITY, 0.33325195f};
    float bf_src[NB];
    fill_random(bf_src, NB, 11, -100.0f, 100.0f);
    uint16_t bf16[NB];
    float bf_want[NB];
    for (int i = 0; i < NB; i++) {
        bf16[i] = f32_to_bf16_truncated(bf_src[i]);
        uint32_t bits = (uint32_t)bf16[i] << 16;
        memcpy(&bf_want[i], &bits, sizeof bits);
    }
    uint8_t data[sizeof f32 + sizeof f16 + sizeof bf16];
    memcpy(data, f32, sizeof f32);
    memcpy(data + sizeof f32, f16, sizeof f16);
    memcpy(data + sizeof f32 + sizeof f16, bf16, sizeof bf16);
    // Names out of order and __metadata__ in the middle: the table must still be sorted and metadata skipped.
    const char *header = "{\"w32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"__metadata__\":{\"format\":\"pt\"},"
                         "\"b16\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[44,60]},"
                         "\"h16\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[24,44]}}   ";
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors", header, data, sizeof data);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(ck.count, 3);
    cr_assert_eq(ck.file_count, 1);
    cr_assert_str_eq(ck.tensors[0].name, "b16");
    cr_assert_str_eq(ck.tensors[1].name, "h16");
    cr_assert_str_eq(ck.tensors[2].name, "w32");
    cr_assert_null(st_find(&ck, "__metadata__"));
    cr_assert_null(st_find(&ck, "absent"));

    const st_tensor *t = st_find(&ck, "w32");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, ST_F32);
    cr_assert_eq(t->ndim, 2);
    cr_assert_eq(t->shape[0], 2);
    cr_assert_eq(t->shape[1], 3);
    cr_assert_eq(t->numel, 6);
    cr_assert_eq(t->nbytes, 24);
    cr_assert_str_eq(t->file, path);
    float out32[N32];
    cr_assert_eq(st_tensor_to_f32(t, out32), AV_SUCCESS);
    cr_assert_eq(memcmp(out32, f32, sizeof f32), 0, "F32 must round-trip bit for bit");

    t = st_find(&ck, "h16");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, ST_F16);
    float out16[N16];
    cr_assert_eq(st_tensor_to_f32(t, out16), AV_SUCCESS);
    for (int i = 0; i < N16 - 1; i++)
        cr_assert(out16[i] == f16_want[i] && !signbit(out16[i]) == !signbit(f16_want[i]), "f16[%d] = %.9g, want %.9g",
                  i, out16[i], f16_want[i]);
    cr_assert(isnan(out16[N16 - 1]), "0x7E00 must convert to NaN");

    t = st_find(&ck, "b16");
    cr_assert_not_null(t);
    float outb[NB];
    cr_assert_eq(st_tensor_to_f32(t, outb), AV_SUCCESS);
    expect_close("bf16", outb, bf_want, NB, 0, 0, NULL);
    expect_close("bf16 vs source", outb, bf_src, NB, 0, 1.0 / 128, NULL); // bf16 keeps 8 significant bits

    st_checkpoint_close(&ck);
    cr_assert_eq(ck.count, 0);
    free(path);
    remove_tree(dir);
    free(dir);
}

// Every one of the 65536 halves against the definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024.
Test(safetensors, f16_every_value_matches_definition) {
    for (uint32_t h = 0; h < 65536; h++) {
        int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        float got = av_f16_to_f32((uint16_t)h);
        if (e == 31 && m != 0) {
            cr_assert(isnan(got), "0x%04x must be NaN, got %g", h, got);
            continue;
        }
        double want = e == 31 ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        if (sign) want = -want;
        cr_assert(got == (float)want && !!signbit(got) == sign, "f16 0x%04x -> %.9g, want %.9g", h, got, want);
    }
}

Test(safetensors, bf16_is_the_top_half_of_f32) {
    cr_assert_eq(av_bf16_to_f32(0x3F80), 1.0f);
    cr_assert_eq(av_bf16_to_f32(0xC040), -3.0f);
    cr_assert_eq(av_bf16_to_f32(0x4049), 3.140625f);
    cr_assert_eq(av_bf16_to_f32(0x7F80), INFINITY);
    cr_assert(isnan(av_bf16_to_f32(0x7FC0)));
    cr_assert_eq(av_bf16_to_f32(0x0001), ldexpf(1.0f, -133)); // bf16 subnormals are f32 subnormals
}

Test(safetensors, dtype_names_and_sizes) {
    cr_assert_str_eq(st_dtype_name(ST_BF16), "BF16");
    cr_assert_str_eq(st_dtype_name(ST_BOOL), "BOOL");
    cr_assert_eq(st_dtype_size(ST_F32), 4);
    cr_assert_eq(st_dtype_size(ST_F16), 2);
    cr_assert_eq(st_dtype_size(ST_F64), 8);
    cr_assert_eq(st_dtype_size(ST_I8), 1);
}

Test(safetensors, integer_dtype_parses_but_does_not_convert) {
    int32_t ids[4] = {1, 2, 3, 4};
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors",
                          "{\"position_ids\":{\"dtype\":\"I32\",\"shape\":[1,4],\"data_offsets\":[0,16]}}", ids,
                          sizeof ids);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    const st_tensor *t = st_find(&ck, "position_ids");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, ST_I32);
    float out[4];
    expect_error(st_tensor_to_f32(t, out), AV_ERROR_UNSUPPORTED, "position_ids", "I32");
    st_checkpoint_close(&ck);
    free(path);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, empty_header_object_is_an_empty_checkpoint) {
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors", "{\"__metadata__\":{}}", NULL, 0);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(ck.count, 0);
    st_checkpoint_close(&ck);
    free(path);
    remove_tree(dir);
    free(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Broken files, one failure each

static const float ZEROS[64];

Test(safetensors, missing_file_is_io_error) {
    st_checkpoint ck;
    expect_error(st_file_open(&ck, "/nonexistent/model.safetensors"), AV_ERROR_IO, "/nonexistent/model.safetensors",
                 "cannot open");
}

Test(safetensors, truncated_file) {
    char *dir = make_scratch_dir("st");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_bytes(path, "\x10\x00\x00\x00\x00", 5);
    st_checkpoint ck;
    expect_error(st_file_open(&ck, path), AV_ERROR_FORMAT, path, "5 bytes", "shorter than");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, header_length_beyond_file) {
    char *dir = make_scratch_dir("st");
    char *path = write_st_with_length(dir, "model.safetensors", 1000, "{}", NULL, 0);
    st_checkpoint ck;
    expect_error(st_file_open(&ck, path), AV_ERROR_FORMAT, path, "header length 1000 beyond file size 10");
    free(path);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, header_length_over_limit) {
    char *dir = make_scratch_dir("st");
    char *path = write_st_with_length(dir, "model.safetensors", 100000001ull, "{}", NULL, 0);
    st_checkpoint ck;
    expect_error(st_file_open(&ck, path), AV_ERROR_FORMAT, path, "header length 100000001 exceeds");
    free(path);
    // A length near 2^64 must not wrap around when added to the 8-byte prefix.
    path = write_st_with_length(dir, "huge.safetensors", UINT64_MAX, "{}", NULL, 0);
    expect_error(st_file_open(&ck, path), AV_ERROR_FORMAT, path, "exceeds");
    free(path);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, malformed_header_json) {
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",", ZEROS, 4, AV_ERROR_FORMAT, "not valid JSON");
}

Test(safetensors, header_with_trailing_garbage) {
    expect_bad_header("{}  x", NULL, 0, AV_ERROR_FORMAT, "trailing bytes");
}

Test(safetensors, header_not_an_object) {
    expect_bad_header("[1, 2]", NULL, 0, AV_ERROR_FORMAT, "not a JSON object");
}

Test(safetensors, entry_not_an_object) {
    expect_bad_header("{\"w\":[0,4]}", ZEROS, 4, AV_ERROR_FORMAT, "tensor w", "not an object");
}

Test(safetensors, entry_missing_dtype) {
    expect_bad_header("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", ZEROS, 4, AV_ERROR_FORMAT, "tensor w",
                      "missing 'dtype'");
}

Test(safetensors, entry_missing_shape) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", ZEROS, 4, AV_ERROR_FORMAT, "tensor w",
                      "missing 'shape'");
}

Test(safetensors, entry_missing_data_offsets) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", ZEROS, 4, AV_ERROR_FORMAT, "tensor w",
                      "missing 'data_offsets'");
}

Test(safetensors, unknown_dtype) {
    expect_bad_header("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", ZEROS, 4, AV_ERROR_FORMAT,
                      "tensor w", "unknown dtype 'Q7'");
}

Test(safetensors, format_dtype_attnviz_lacks_is_unsupported) {
    expect_bad_header("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", ZEROS, 4,
                      AV_ERROR_UNSUPPORTED, "tensor w", "F8_E4M3");
}

Test(safetensors, negative_shape) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", ZEROS, 4,
                      AV_ERROR_FORMAT, "tensor w", "negative dimension -1");
}

Test(safetensors, fractional_shape) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", ZEROS, 4,
                      AV_ERROR_FORMAT, "tensor w", "shape entry 0");
}

Test(safetensors, too_many_dimensions) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", ZEROS, 4,
                      AV_ERROR_UNSUPPORTED, "tensor w", "9 dimensions");
}

Test(safetensors, element_count_overflow) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,4]}}", ZEROS,
                      4, AV_ERROR_FORMAT, "tensor w", "element count overflows");
}

Test(safetensors, byte_size_overflow) {
    // 2^31 * 2^31 = 2^62 elements fit in size_t; times 4 bytes they do not.
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,4]}}", ZEROS,
                      4, AV_ERROR_FORMAT, "tensor w", "byte size", "overflows");
}

Test(safetensors, span_does_not_match_shape_and_dtype) {
    // (2, 3) F16 needs 12 bytes; 24 are claimed (as if it were F32).
    expect_bad_header("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", ZEROS, 24,
                      AV_ERROR_FORMAT, "tensor w", "span 24 bytes", "needs 12 bytes");
}

Test(safetensors, begin_after_end) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", ZEROS, 8, AV_ERROR_FORMAT,
                      "tensor w", "begin 8 > end 4");
}

Test(safetensors, offsets_out_of_bounds) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}", ZEROS, 16, AV_ERROR_FORMAT,
                      "tensor w", "end 20 beyond the data section (16 bytes)");
}

Test(safetensors, malformed_data_offsets) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", ZEROS, 4, AV_ERROR_FORMAT,
                      "tensor w", "data_offsets");
}

Test(safetensors, overlapping_tensors) {
    // a [0, 16) and b [12, 20): sorted by begin, b starts inside a. c is listed first to make the sort matter.
    expect_bad_header("{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                      ZEROS, 24, AV_ERROR_FORMAT, "tensors a and b overlap");
}

Test(safetensors, duplicate_name_in_one_header) {
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                      ZEROS, 8, AV_ERROR_FORMAT, "tensor w appears twice");
}

// ---------------------------------------------------------------------------------------------------------------
// st_require

static const char *PAIR_HEADER = "{\"wte\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                                 "\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}";

Test(safetensors, require_finds_matching_shape) {
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors", PAIR_HEADER, ZEROS, 36);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    const st_tensor *t = NULL;
    cr_assert_eq(st_require(&ck, "wte", 2, (const int64_t[]){2, 3}, &t), AV_SUCCESS, "%s", av_last_error());
    cr_assert_str_eq(t->name, "wte");
    cr_assert_eq(st_require(&ck, "bias", 1, (const int64_t[]){3}, &t), AV_SUCCESS, "%s", av_last_error());
    cr_assert_str_eq(t->name, "bias");
    st_checkpoint_close(&ck);
    free(path);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, require_missing_tensor) {
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors", PAIR_HEADER, ZEROS, 36);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    const st_tensor *t = NULL;
    expect_error(st_require(&ck, "h.0.attn.c_attn.weight", 2, (const int64_t[]){3, 9}, &t), AV_ERROR_FORMAT,
                 "tensor h.0.attn.c_attn.weight not found", path);
    cr_assert_null(t);
    st_checkpoint_close(&ck);
    free(path);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, require_shape_mismatch) {
    char *dir = make_scratch_dir("st");
    char *path = write_st(dir, "model.safetensors", PAIR_HEADER, ZEROS, 36);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    const st_tensor *t = NULL;
    expect_error(st_require(&ck, "wte", 2, (const int64_t[]){3, 2}, &t), AV_ERROR_FORMAT,
                 "tensor wte: shape [2, 3] expected [3, 2]", path);
    expect_error(st_require(&ck, "bias", 2, (const int64_t[]){1, 3}, &t), AV_ERROR_FORMAT,
                 "tensor bias: shape [3] expected [1, 3]");
    cr_assert_null(t);
    st_checkpoint_close(&ck);
    free(path);
    remove_tree(dir);
    free(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// st_checkpoint_open: single file, sharded index, and their failures

Test(safetensors, checkpoint_dir_without_weights) {
    char *dir = make_scratch_dir("st");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_IO, dir,
                 "no model.safetensors or model.safetensors.index.json");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, checkpoint_single_file) {
    char *dir = make_scratch_dir("st");
    free(write_st(dir, "model.safetensors", PAIR_HEADER, ZEROS, 36));
    st_checkpoint ck;
    cr_assert_eq(st_checkpoint_open(&ck, dir), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(ck.count, 2);
    cr_assert_not_null(st_find(&ck, "bias"));
    st_checkpoint_close(&ck);
    remove_tree(dir);
    free(dir);
}

// Two shards: one holds a (2) and c (1), the other b (3); the index lists shard 1 twice.
static char *write_two_shards(const float *values) {
    char *dir = make_scratch_dir("st");
    free(write_st(dir, "model-00001-of-00002.safetensors",
                  "{\"__metadata__\":{\"format\":\"pt\"},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  values, 12));
    free(write_st(dir, "model-00002-of-00002.safetensors",
                  "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", values + 3, 12));
    return dir;
}

static const char *TWO_SHARD_INDEX = "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
                                     "\"a\":\"model-00001-of-00002.safetensors\","
                                     "\"b\":\"model-00002-of-00002.safetensors\","
                                     "\"c\":\"model-00001-of-00002.safetensors\"}}";

Test(safetensors, sharded_checkpoint_loads) {
    float values[6];
    fill_random(values, 6, 3, -1.0f, 1.0f);
    char *dir = write_two_shards(values);
    write_text(dir, "model.safetensors.index.json", TWO_SHARD_INDEX);
    st_checkpoint ck;
    cr_assert_eq(st_checkpoint_open(&ck, dir), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(ck.file_count, 2, "each shard is mapped once");
    cr_assert_eq(ck.count, 3);
    const st_tensor *a = st_find(&ck, "a"), *b = st_find(&ck, "b"), *c = st_find(&ck, "c");
    cr_assert(a && b && c);
    cr_assert(strstr(a->file, "model-00001-of-00002.safetensors"));
    cr_assert(strstr(b->file, "model-00002-of-00002.safetensors"));
    cr_assert_eq(a->file, c->file);
    float got[3];
    cr_assert_eq(st_tensor_to_f32(a, got), AV_SUCCESS);
    expect_close("a", got, values, 2, 0, 0, NULL);
    cr_assert_eq(st_tensor_to_f32(c, got), AV_SUCCESS);
    expect_close("c", got, values + 2, 1, 0, 0, NULL);
    cr_assert_eq(st_tensor_to_f32(b, got), AV_SUCCESS);
    expect_close("b", got, values + 3, 3, 0, 0, NULL);
    const st_tensor *t;
    expect_error(st_require(&ck, "d", 1, (const int64_t[]){1}, &t), AV_ERROR_FORMAT, "tensor d not found",
                 "other 1 shards");
    st_checkpoint_close(&ck);
    remove_tree(dir);
    free(dir);
}

Test(safetensors, index_names_missing_shard) {
    char *dir = make_scratch_dir("st");
    free(write_st(dir, "model-00001-of-00002.safetensors",
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ZEROS, 4));
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
               "\"b\":\"model-00002-of-00002.safetensors\"}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_IO, "model.safetensors.index.json",
                 "model-00002-of-00002.safetensors does not exist");
    cr_assert_eq(ck.file_count, 0, "the shard already mapped is released");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, index_lists_tensor_missing_from_its_shard) {
    float values[6] = {0};
    char *dir = write_two_shards(values);
    // b really lives in shard 2; the index claims shard 1.
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
               "\"b\":\"model-00001-of-00002.safetensors\","
               "\"c\":\"model-00001-of-00002.safetensors\","
               "\"x\":\"model-00002-of-00002.safetensors\"}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "model.safetensors.index.json",
                 "tensor b is listed in shard", "model-00001-of-00002.safetensors but missing from it");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, duplicate_tensor_across_shards) {
    char *dir = make_scratch_dir("st");
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    free(write_st(dir, "s1.safetensors", header, ZEROS, 4));
    free(write_st(dir, "s2.safetensors", header, ZEROS, 4));
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "tensor a appears twice", "s1.safetensors",
                 "s2.safetensors");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, bad_shard_header_names_the_shard) {
    char *dir = make_scratch_dir("st");
    free(write_st(dir, "s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", ZEROS,
                  4));
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"s1.safetensors\"}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "s1.safetensors", "tensor a", "beyond the data");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, index_malformed_json) {
    char *dir = make_scratch_dir("st");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "model.safetensors.index.json", "malformed JSON");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, index_without_weight_map) {
    char *dir = make_scratch_dir("st");
    write_text(dir, "model.safetensors.index.json", "{\"metadata\":{}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "model.safetensors.index.json", "weight_map");
    remove_tree(dir);
    free(dir);
}

Test(safetensors, index_shard_outside_directory) {
    char *dir = make_scratch_dir("st");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../elsewhere.safetensors\"}}");
    st_checkpoint ck;
    expect_error(st_checkpoint_open(&ck, dir), AV_ERROR_FORMAT, "model.safetensors.index.json",
                 "../elsewhere.safetensors", "not a file in the same directory");
    remove_tree(dir);
    free(dir);
}
