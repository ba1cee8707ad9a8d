// safetensors reader. A file is: 8 bytes little-endian header length N, N bytes of JSON header, then the data
// section. The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to
// the data section. Every file is mmap'ed read-only once and validated entirely at open, so st_tensor.data can be
// trusted afterwards.
#include "safetensors.h"
#include "half.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// The limit the reference implementation enforces; a larger header is an attack or a corrupt length field.
#define ST_MAX_HEADER_BYTES 100000000ull
// Header integers arrive as JSON numbers (doubles): beyond 2^53 they are no longer exact.
#define ST_MAX_EXACT_INTEGER 9007199254740992.0

static const char *const dtype_names[] = {
    [ST_F32] = "F32", [ST_F16] = "F16", [ST_BF16] = "BF16", [ST_F64] = "F64", [ST_I64] = "I64",
    [ST_I32] = "I32", [ST_I16] = "I16", [ST_I8] = "I8",     [ST_U8] = "U8",   [ST_BOOL] = "BOOL",
};
static const size_t dtype_sizes[] = {
    [ST_F32] = 4, [ST_F16] = 2, [ST_BF16] = 2, [ST_F64] = 8, [ST_I64] = 8,
    [ST_I32] = 4, [ST_I16] = 2, [ST_I8] = 1,   [ST_U8] = 1,  [ST_BOOL] = 1,
};
#define ST_DTYPE_COUNT ((int)(sizeof dtype_names / sizeof dtype_names[0]))

// Dtypes the safetensors format defines that attnviz has no enum value for: a well-formed file, just not ours.
static const char *const foreign_dtype_names[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                                  "F6_E3M2", "F4", "C64"};

const char *st_dtype_name(st_dtype dtype) {
    return (int)dtype >= 0 && (int)dtype < ST_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

size_t st_dtype_size(st_dtype dtype) {
    return (int)dtype >= 0 && (int)dtype < ST_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoint bookkeeping

void st_checkpoint_close(st_checkpoint *ck) {
    for (int i = 0; i < ck->count; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    for (int i = 0; i < ck->file_count; i++) {
        if (ck->files[i].base) munmap(ck->files[i].base, ck->files[i].size);
        free(ck->files[i].path);
    }
    free(ck->files);
    memset(ck, 0, sizeof *ck);
}

// Appends one zeroed tensor slot (capacity grows by doubling; *capacity lives with the caller during open).
static av_status push_tensor(st_checkpoint *ck, int *capacity, st_tensor **out) {
    if (ck->count == *capacity) {
        int grown = *capacity ? *capacity * 2 : 64;
        st_tensor *t = realloc(ck->tensors, (size_t)grown * sizeof *t);
        if (!t) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory growing the tensor table to %d entries", grown);
        ck->tensors = t;
        *capacity = grown;
    }
    *out = &ck->tensors[ck->count++];
    memset(*out, 0, sizeof **out);
    return AV_SUCCESS;
}

// mmaps PATH read-only as ck->files[ck->file_count] (the files array was sized by the caller).
static av_status map_file(st_checkpoint *ck, const char *path) {
    st_mapping *m = &ck->files[ck->file_count];
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return av_fail(AV_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return av_fail(AV_ERROR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 8) {
        close(fd);
        return av_fail(AV_ERROR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                       (long long)st.st_size);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); // the mapping keeps the file alive
    if (base == MAP_FAILED) return av_fail(AV_ERROR_IO, "%s: mmap failed: %s", path, strerror(errno));
    m->path = strdup(path);
    if (!m->path) {
        munmap(base, (size_t)st.st_size);
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory copying path %s", path);
    }
    m->base = base;
    m->size = (size_t)st.st_size;
    ck->file_count++;
    return AV_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Header validation

// A JSON number that is a non-negative integer small enough to be exact; *negative tells the two failures apart.
static bool json_exact_count(const cJSON *item, uint64_t *out, bool *negative) {
    *negative = false;
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (v < 0) *negative = true;
    if (v < 0 || v != floor(v) || v > ST_MAX_EXACT_INTEGER) return false;
    *out = (uint64_t)v;
    return true;
}

static av_status parse_dtype(const char *path, const char *name, const cJSON *item, st_dtype *out) {
    if (!cJSON_IsString(item))
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: dtype is not a string", path, name);
    for (int d = 0; d < ST_DTYPE_COUNT; d++) {
        if (strcmp(item->valuestring, dtype_names[d]) == 0) {
            *out = (st_dtype)d;
            return AV_SUCCESS;
        }
    }
    for (size_t i = 0; i < sizeof foreign_dtype_names / sizeof foreign_dtype_names[0]; i++)
        if (strcmp(item->valuestring, foreign_dtype_names[i]) == 0)
            return av_fail(AV_ERROR_UNSUPPORTED, "%s: tensor %s: dtype %s is not supported", path, name,
                           item->valuestring);
    return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: unknown dtype '%s'", path, name, item->valuestring);
}

// Fills ndim, shape and numel; nbytes = numel * dtype size, overflow-checked.
static av_status parse_shape(const char *path, st_tensor *t, const cJSON *item) {
    if (!cJSON_IsArray(item)) return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: shape is not an array", path, t->name);
    int ndim = cJSON_GetArraySize(item);
    if (ndim > ST_MAX_DIMS)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: tensor %s: %d dimensions, at most %d supported", path, t->name,
                       ndim, ST_MAX_DIMS);
    size_t numel = 1;
    int i = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, item) {
        uint64_t n;
        bool negative;
        if (!json_exact_count(dim, &n, &negative)) {
            if (negative)
                return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: negative dimension %g in shape", path, t->name,
                               dim->valuedouble);
            return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: shape entry %d is not a non-negative integer", path,
                           t->name, i);
        }
        if (n > (uint64_t)INT64_MAX || !av_mul_size(numel, (size_t)n, &numel))
            return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: element count overflows", path, t->name);
        t->shape[i++] = (int64_t)n;
    }
    t->ndim = ndim;
    t->numel = numel;
    if (!av_mul_size(numel, st_dtype_size(t->dtype), &t->nbytes))
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: byte size (%zu x %zu) overflows", path, t->name, numel,
                       st_dtype_size(t->dtype));
    return AV_SUCCESS;
}

// Checks [begin, end) against the tensor's byte size and the data section, then points t->data into it.
static av_status parse_offsets(const char *path, st_tensor *t, const cJSON *item, const uint8_t *data,
                               size_t data_size) {
    uint64_t range[2];
    bool negative;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 ||
        !json_exact_count(cJSON_GetArrayItem(item, 0), &range[0], &negative) ||
        !json_exact_count(cJSON_GetArrayItem(item, 1), &range[1], &negative))
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: data_offsets is not two non-negative integers", path,
                       t->name);
    uint64_t begin = range[0], end = range[1];
    if (begin > end)
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: data_offsets begin %llu > end %llu", path, t->name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: data_offsets end %llu beyond the data section (%zu bytes)",
                       path, t->name, (unsigned long long)end, data_size);
    if (end - begin != t->nbytes)
        return av_fail(AV_ERROR_FORMAT,
                       "%s: tensor %s: data_offsets span %llu bytes but shape x %s needs %zu bytes", path, t->name,
                       (unsigned long long)(end - begin), st_dtype_name(t->dtype), t->nbytes);
    t->data = data + begin;
    return AV_SUCCESS;
}

static av_status parse_entry(const char *path, st_tensor *t, const cJSON *entry, const uint8_t *data,
                             size_t data_size) {
    if (!cJSON_IsObject(entry)) return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: entry is not an object", path, t->name);
    static const char *const keys[] = {"dtype", "shape", "data_offsets"};
    for (int k = 0; k < 3; k++)
        if (!cJSON_GetObjectItemCaseSensitive(entry, keys[k]))
            return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: missing '%s'", path, t->name, keys[k]);
    AV_TRY(parse_dtype(path, t->name, cJSON_GetObjectItemCaseSensitive(entry, "dtype"), &t->dtype));
    AV_TRY(parse_shape(path, t, cJSON_GetObjectItemCaseSensitive(entry, "shape")));
    return parse_offsets(path, t, cJSON_GetObjectItemCaseSensitive(entry, "data_offsets"), data, data_size);
}

static int compare_by_data(const void *a, const void *b) {
    const uint8_t *x = ((const st_tensor *)a)->data, *y = ((const st_tensor *)b)->data;
    return x < y ? -1 : x > y;
}

// TENSORS (n) all live in one file; sorted by begin, each must start at or after the previous one's end.
static av_status check_no_overlap(const char *path, st_tensor *tensors, int n) {
    if (n < 2) return AV_SUCCESS; // qsort must not see the NULL table of an empty header
    qsort(tensors, (size_t)n, sizeof *tensors, compare_by_data);
    for (int i = 1; i < n; i++) {
        const st_tensor *prev = &tensors[i - 1], *t = &tensors[i];
        if ((const uint8_t *)t->data < (const uint8_t *)prev->data + prev->nbytes)
            return av_fail(AV_ERROR_FORMAT, "%s: tensors %s and %s overlap in the data section", path, prev->name,
                           t->name);
    }
    return AV_SUCCESS;
}

// Parses the JSON header at TEXT (LEN bytes, not NUL-terminated); the caller deletes *out.
static av_status parse_header_json(const char *path, const char *text, size_t len, cJSON **out) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root)
        return av_fail(AV_ERROR_FORMAT, "%s: header is not valid JSON (error near header byte %td)", path,
                       end ? end - text : (ptrdiff_t)0);
    // The format pads the header with spaces; anything else after the object is corruption.
    for (const char *c = end; c < text + len; c++) {
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
            cJSON_Delete(root);
            return av_fail(AV_ERROR_FORMAT, "%s: header has trailing bytes after the JSON object (at header byte %td)",
                           path, c - text);
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return av_fail(AV_ERROR_FORMAT, "%s: header is not a JSON object", path);
    }
    *out = root;
    return AV_SUCCESS;
}

static av_status add_header_tensors(st_checkpoint *ck, int *capacity, const char *path, const cJSON *root,
                                    const uint8_t *data, size_t data_size) {
    int first = ck->count;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (strcmp(entry->string, "__metadata__") == 0) continue;
        st_tensor *t = NULL;
        AV_TRY(push_tensor(ck, capacity, &t));
        t->file = path;
        t->name = strdup(entry->string);
        if (!t->name) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory copying tensor names of %s", path);
        AV_TRY(parse_entry(path, t, entry, data, data_size));
    }
    return check_no_overlap(path, ck->tensors + first, ck->count - first);
}

// Validates the header of the mapping just added and appends its tensors.
static av_status load_mapped_file(st_checkpoint *ck, int *capacity) {
    const st_mapping *m = &ck->files[ck->file_count - 1];
    const uint8_t *bytes = m->base;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i]; // little-endian on any host
    if (header_len > ST_MAX_HEADER_BYTES)
        return av_fail(AV_ERROR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit", m->path,
                       (unsigned long long)header_len, ST_MAX_HEADER_BYTES);
    if (header_len > m->size - 8)
        return av_fail(AV_ERROR_FORMAT, "%s: header length %llu beyond file size %zu", m->path,
                       (unsigned long long)header_len, m->size);
    cJSON *root;
    AV_TRY(parse_header_json(m->path, (const char *)bytes + 8, (size_t)header_len, &root));
    av_status status = add_header_tensors(ck, capacity, m->path, root, bytes + 8 + header_len,
                                          m->size - 8 - (size_t)header_len);
    cJSON_Delete(root);
    return status;
}

static int compare_by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

// Sorts the table for st_find; a name twice (inside one header or across shards) is ambiguous.
static av_status sort_and_check_unique(st_checkpoint *ck) {
    if (ck->count < 2) return AV_SUCCESS;
    qsort(ck->tensors, (size_t)ck->count, sizeof *ck->tensors, compare_by_name);
    for (int i = 1; i < ck->count; i++) {
        const st_tensor *a = &ck->tensors[i - 1], *b = &ck->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return av_fail(AV_ERROR_FORMAT, "tensor %s appears twice: in %s and in %s", a->name, a->file, b->file);
    }
    return AV_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Opening

static av_status open_single(st_checkpoint *ck, const char *path) {
    ck->files = av_calloc(1, sizeof *ck->files, "safetensors file table");
    if (!ck->files) return AV_ERROR_OUT_OF_MEMORY;
    int capacity = 0;
    AV_TRY(map_file(ck, path));
    AV_TRY(load_mapped_file(ck, &capacity));
    return sort_and_check_unique(ck);
}

av_status st_file_open(st_checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    av_status status = open_single(ck, path);
    if (status != AV_SUCCESS) st_checkpoint_close(ck);
    return status;
}

// The shards an index names, in order of first appearance, and which shard each weight_map entry points to.
typedef struct shard_plan {
    const char **names; // (n_shards) borrowed from the cJSON tree
    int n_shards;
    int *entry_shard;   // (n_entries)
    int n_entries;
} shard_plan;

static void shard_plan_free(shard_plan *plan) {
    free(plan->names);
    free(plan->entry_shard);
}

static av_status plan_shards(shard_plan *plan, const char *index_path, const cJSON *weight_map) {
    memset(plan, 0, sizeof *plan);
    int n = cJSON_GetArraySize(weight_map);
    plan->names = av_calloc((size_t)n, sizeof *plan->names, "shard names");
    plan->entry_shard = av_calloc((size_t)n, sizeof *plan->entry_shard, "shard map");
    if (!plan->names || !plan->entry_shard) return AV_ERROR_OUT_OF_MEMORY;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, weight_map) {
        if (!cJSON_IsString(entry) || entry->valuestring[0] == '\0')
            return av_fail(AV_ERROR_FORMAT, "%s: weight_map entry %s is not a file name", index_path, entry->string);
        const char *shard = entry->valuestring;
        // Shards live beside the index; a path would let a checkpoint read files elsewhere.
        if (strchr(shard, '/') || strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0)
            return av_fail(AV_ERROR_FORMAT, "%s: weight_map entry %s names '%s', not a file in the same directory",
                           index_path, entry->string, shard);
        int s = 0;
        while (s < plan->n_shards && strcmp(plan->names[s], shard) != 0) s++;
        if (s == plan->n_shards) plan->names[plan->n_shards++] = shard;
        plan->entry_shard[plan->n_entries++] = s;
    }
    return AV_SUCCESS;
}

// Every tensor the index lists must be in the shard it names.
static av_status check_index_entries(const st_checkpoint *ck, const char *index_path, const cJSON *weight_map,
                                     const shard_plan *plan) {
    int i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, weight_map) {
        const st_tensor *t = st_find(ck, entry->string);
        const st_mapping *shard = &ck->files[plan->entry_shard[i++]];
        if (!t || t->file != shard->path)
            return av_fail(AV_ERROR_FORMAT, "%s: tensor %s is listed in shard %s but missing from it", index_path,
                           entry->string, shard->path);
    }
    return AV_SUCCESS;
}

static av_status open_shards(st_checkpoint *ck, const char *dir, const char *index_path, const cJSON *weight_map,
                             const shard_plan *plan) {
    ck->files = av_calloc((size_t)plan->n_shards, sizeof *ck->files, "safetensors file table");
    if (!ck->files) return AV_ERROR_OUT_OF_MEMORY;
    int capacity = 0;
    for (int s = 0; s < plan->n_shards; s++) {
        char *path = av_path_join(dir, plan->names[s]);
        if (!path) return AV_ERROR_OUT_OF_MEMORY;
        av_status status = av_file_exists(path)
                               ? map_file(ck, path)
                               : av_fail(AV_ERROR_IO, "%s: shard %s does not exist", index_path, path);
        free(path);
        AV_TRY(status);
        AV_TRY(load_mapped_file(ck, &capacity));
    }
    AV_TRY(sort_and_check_unique(ck));
    return check_index_entries(ck, index_path, weight_map, plan);
}

static av_status open_index(st_checkpoint *ck, const char *dir, const char *index_path) {
    char *text;
    size_t len;
    AV_TRY(av_read_file(index_path, &text, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    ptrdiff_t error_at = end ? end - text : 0;
    free(text);
    if (!root) return av_fail(AV_ERROR_FORMAT, "%s: malformed JSON near byte %td", index_path, error_at);
    const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    av_status status;
    if (!cJSON_IsObject(weight_map) || cJSON_GetArraySize(weight_map) == 0) {
        status = av_fail(AV_ERROR_FORMAT, "%s: missing or empty 'weight_map' object", index_path);
    } else {
        shard_plan plan;
        status = plan_shards(&plan, index_path, weight_map);
        if (status == AV_SUCCESS) status = open_shards(ck, dir, index_path, weight_map, &plan);
        shard_plan_free(&plan);
    }
    cJSON_Delete(root);
    return status;
}

av_status st_checkpoint_open(st_checkpoint *ck, const char *dir) {
    memset(ck, 0, sizeof *ck);
    char *single = av_path_join(dir, "model.safetensors");
    char *index = av_path_join(dir, "model.safetensors.index.json");
    av_status status;
    if (!single || !index)
        status = AV_ERROR_OUT_OF_MEMORY;
    else if (av_file_exists(single))
        status = open_single(ck, single);
    else if (av_file_exists(index))
        status = open_index(ck, dir, index);
    else
        status = av_fail(AV_ERROR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    free(single);
    free(index);
    if (status != AV_SUCCESS) st_checkpoint_close(ck);
    return status;
}

// ---------------------------------------------------------------------------------------------------------------
// Lookup and conversion

const st_tensor *st_find(const st_checkpoint *ck, const char *name) {
    int lo = 0, hi = ck->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ck->tensors[mid].name);
        if (c == 0) return &ck->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

// "[a, b, c]" into BUF (truncated safely when BUF is small).
static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

av_status st_require(const st_checkpoint *ck, const char *name, int ndim, const int64_t *shape, const st_tensor **out) {
    const st_tensor *t = st_find(ck, name);
    if (!t) {
        const char *where = ck->file_count > 0 ? ck->files[0].path : "checkpoint";
        if (ck->file_count > 1)
            return av_fail(AV_ERROR_FORMAT, "tensor %s not found in %s or the other %d shards", name, where,
                           ck->file_count - 1);
        return av_fail(AV_ERROR_FORMAT, "tensor %s not found in %s", name, where);
    }
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return av_fail(AV_ERROR_FORMAT, "%s: tensor %s: shape %s expected %s", t->file, name, got, want);
    }
    *out = t;
    return AV_SUCCESS;
}

av_status st_tensor_to_f32(const st_tensor *t, float *dst) {
    const uint8_t *src = t->data;
    uint16_t h;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, src, t->numel * sizeof(float));
        return AV_SUCCESS;
    case ST_F16:
        for (size_t i = 0; i < t->numel; i++) {
            memcpy(&h, src + 2 * i, sizeof h); // the data section need not be 2-byte aligned
            dst[i] = av_f16_to_f32(h);
        }
        return AV_SUCCESS;
    case ST_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            memcpy(&h, src + 2 * i, sizeof h);
            dst[i] = av_bf16_to_f32(h);
        }
        return AV_SUCCESS;
    default:
        return av_fail(AV_ERROR_UNSUPPORTED,
                       "%s: tensor %s: dtype %s cannot be converted to float32 (F32, F16, BF16 only)", t->file,
                       t->name, st_dtype_name(t->dtype));
    }
}
