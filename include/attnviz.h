// attnviz: attention capture and visualization for transformer checkpoints.
// Model-level public API. Every public name is prefixed av_.
#ifndef ATTNVIZ_H
#define ATTNVIZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AV_VERSION_MAJOR 0
#define AV_VERSION_MINOR 1
#define AV_VERSION_PATCH 0
#define AV_VERSION_STRING "0.1.0"

typedef enum av_status {
    AV_SUCCESS = 0,
    AV_ERROR_INVALID_ARGUMENT, // caller passed something out of range
    AV_ERROR_IO,               // a file could not be opened, read, written or renamed
    AV_ERROR_FORMAT,           // a file exists but its contents are malformed
    AV_ERROR_UNSUPPORTED,      // well-formed but not something attnviz handles (model_type, dtype, ...)
    AV_ERROR_PROMPT,           // empty prompt, invalid UTF-8, longer than the model allows
    AV_ERROR_OUT_OF_MEMORY,    // an allocation failed or a plan would not fit
    AV_ERROR_NO_DEVICE,        // the CUDA backend was asked for but no device exists
    AV_ERROR_CUDA,             // a CUDA runtime or cuBLAS call failed
    AV_ERROR_INTERNAL          // an invariant broke: a bug in attnviz
} av_status;

// Short fixed description of a status code ("format error", ...).
const char *av_status_string(av_status status);

// The detailed one-line message of the last failure on this thread, naming the file and the problem.
const char *av_last_error(void);

const char *av_version(void);

// A loaded checkpoint directory: config.json, model.safetensors (or a sharded index) and tokenizer files.
// Weights are mmap'ed; float32 tensors are used in place, fp16/bf16 ones upcast once.
typedef struct av_model av_model;

av_status av_model_load(av_model **model, const char *dir);
void av_model_destroy(av_model *model);

// Progress of av_run's forward pass: called once with LAYERS_DONE 0 when it begins (the model's weights are on the
// backend), then after each layer has finished (1 ... N_LAYERS), on the thread that called av_run.
typedef void (*av_progress_fn)(void *user, int layers_done, int n_layers);

// What av_run captures and writes. Strings are the CLI's option values; av_run_options_default fills the defaults.
typedef struct av_run_options {
    const char *device;     // "auto" (cuda when a device exists), "cpu", "cuda"
    const char *layers;     // "all" or a list such as "0,3,5-7"
    const char *heads;      // "all" or a list
    const char *dtype;      // "fp32" or "bf16": matmul inputs on the GPU (fp32 accumulation either way)
    const char *attn_dtype; // "fp32", "fp16" or "bf16": the device side buffer of P
    const char *png;        // "all" (every head and the head mean), "mean" (head mean only), "none"
    const char *capture;    // comma list of full, rows:W (last W query rows), colsum, pool:B, headmean, groupmean
    int packed_causal;      // nonzero: full P of a causal model as its packed triangle (half the bytes)
    size_t max_memory;      // refuse runs needing more bytes than this; 0: what the backend reports as free
    int top_k;              // next-token predictions recorded in meta.json (causal LMs); 0 for none
    const char *attention;  // "auto" or NULL (flash kernels when the run allows: cuda, bf16, head size 64 or 128),
                            // "plain" (scores, softmax, P.V), "flash" (an error when the run does not allow it)
    size_t viewer_bytes;    // viewer.html holds at most this many bytes of attention; 0: no viewer.html
    av_progress_fn progress; // NULL (default): no reports; else each layer waits for the backend to finish it
    void *progress_user;
} av_run_options;

void av_run_options_default(av_run_options *options);

// Tokenizes PROMPT (UTF-8, LEN bytes), runs MODEL, and writes OUT_DIR:
//   meta.json, attention/layer_XX.npy (float32, (n_heads_captured, n, n)), heatmaps/layer_XX_head_YY.png and
//   heatmaps/layer_XX_mean.png, viewer.html (an interactive page), plus the files of the other --capture
//   kinds (see the README). Everything is written under a temporary name and renamed into place at the end, so a
//   failed run leaves no OUT_DIR behind. An existing OUT_DIR is replaced only when it is empty or an earlier attnviz
//   output (it holds meta.json).
av_status av_run(av_model *model, const char *prompt, size_t len, const av_run_options *options,
                 const char *out_dir);

#ifdef __cplusplus
}
#endif

#endif
