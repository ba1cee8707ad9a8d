// safetensors checkpoints: mmap'ed, validated once at open, then trusted.
#ifndef AV_SAFETENSORS_H
#define AV_SAFETENSORS_H

#include "internal.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const void *data; // inside the mmap'ed file
    size_t nbytes;
    const char *file; // the path of the shard that holds it (for messages)
} st_tensor;

typedef struct st_mapping {
    char *path;
    void *base;
    size_t size;
} st_mapping;

typedef struct st_checkpoint {
    st_tensor *tensors; // sorted by name
    int count;
    st_mapping *files;  // one per shard
    int file_count;
} st_checkpoint;

// Opens DIR/model.safetensors, or every shard named by DIR/model.safetensors.index.json.
av_status st_checkpoint_open(st_checkpoint *ck, const char *dir);
// Opens one .safetensors file (tests and tools).
av_status st_file_open(st_checkpoint *ck, const char *path);
void st_checkpoint_close(st_checkpoint *ck);

// NULL when absent (no error recorded: callers try several names).
const st_tensor *st_find(const st_checkpoint *ck, const char *name);
// Finds NAME, checks its shape against the ndim dims given, or fails with a message naming the tensor.
av_status st_require(const st_checkpoint *ck, const char *name, int ndim, const int64_t *shape, const st_tensor **out);

const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);
// Converts a floating tensor (F32, F16, BF16) to float32; other dtypes fail with AV_ERROR_UNSUPPORTED.
av_status st_tensor_to_f32(const st_tensor *t, float *dst);

#endif
