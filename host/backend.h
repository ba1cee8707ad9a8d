// A backend implements the ops a forward pass needs. The CPU backend is the reference; the CUDA backend has the same
// ops with the same argument order (its launchers add a cudaStream_t). Model code (model_gpt2.c, model_bert.c) calls
// ops only through this table, so an architecture is written once for every backend.
//
// All tensors are float32, row-major, in the backend's memory (host memory for the CPU, device memory for CUDA).
#ifndef AV_BACKEND_H
#define AV_BACKEND_H

#include "config.h"
#include "internal.h"

typedef enum av_weight_layout {
    AV_WEIGHT_IN_OUT, // GPT-2 Conv1D: weight (C, OC), out = inp @ weight
    AV_WEIGHT_OUT_IN  // nn.Linear:    weight (OC, C), out = inp @ weight^T
} av_weight_layout;

// Receives the attention probabilities of one layer, in host memory, in layer order.
// probs (n_slots, T, T): the captured heads in slot order; row i holds P[i, :], zero above the diagonal when causal.
typedef av_status (*av_probs_sink)(void *user, int layer, const float *probs, int n_slots, int T);

// The --capture reductions a backend may compute next to attention itself, so that full P of the captured heads
// never leaves it (the CUDA flash path) or never exists (the CPU). Sizes are already clipped to T; 0 / false: not
// requested.
typedef struct av_reduction_request {
    int rows;       // the last ROWS query rows of each captured head
    bool colsum;    // column sums and column means
    int pool;       // pool factor B <= T: P summed over key bins and averaged over query bins of B
    bool head_mean;  // head mean and max over the captured heads
    int group_mean;  // G > 0: mean and max over the captured heads of each group of NH / G consecutive heads (the
                     // heads sharing a key/value head when G = NKV); every group has one; 0: not requested
    bool every_head; // every head is captured (the CUDA flash path takes head and group means only then)
} av_reduction_request;

// Where each reduction lies in a layer's compact float32 buffer, in floats from its start; absent ones take no space:
//   rows (NS, W, T) | colsum (NS, T) | colmean (NS, T) | pooled (NS, NB, NB) | head_mean (T, T) | head_max (T, T) |
//   group_mean (G, T, T) | group_max (G, T, T)
// with NS captured heads in slot order, W = rows, NB = ceil(T / pool). Definitions as in host/reduce.h.
typedef struct av_reduction_layout {
    size_t rows, colsum, colmean, pooled, head_mean, head_max, group_mean, group_max;
    size_t floats; // the whole buffer
    int n_bins;    // NB (0 without pooling)
} av_reduction_layout;

av_reduction_layout av_reduction_layout_of(const av_reduction_request *request, int n_slots, int T);
// The heads HEAD_SLOT (NH entries, attention()'s) captures: the n_slots of its layer.
int av_captured_heads(const int *head_slot, int NH);

// Receives one layer's reductions, in host memory, in layer order: reduced (floats of av_reduction_layout_of).
typedef av_status (*av_reductions_sink)(void *user, int layer, const float *reduced, int n_slots, int T);

typedef struct av_backend av_backend;

struct av_backend {
    const char *name; // "cpu" or "cuda"
    void *impl;

    // Memory in the backend's address space.
    av_status (*alloc)(av_backend *be, void **ptr, size_t bytes, const char *what);
    void (*release)(av_backend *be, void *ptr);
    av_status (*upload)(av_backend *be, void *dst, const void *src, size_t bytes);   // host -> backend
    av_status (*download)(av_backend *be, void *dst, const void *src, size_t bytes); // backend -> host, synchronous
    // Makes a model parameter available to the ops: *dst is what later ops receive for it. The CPU backend hands back
    // src itself; the CUDA backend copies into its weight arena (as bf16 when matmul_weight and --dtype bf16), which
    // lives until destroy. numel floats at src (host memory).
    av_status (*upload_tensor)(av_backend *be, const float **dst, const float *src, size_t numel, bool matmul_weight);

    // out (T, C) = wte[ids[t]] (+ wpe[t] when not NULL) (+ wtt, the token-type-0 row, when not NULL)
    // ids (T) in backend memory; wte (V, C); wpe (P, C) or NULL (rotary models); wtt (C) or NULL
    av_status (*embedding)(av_backend *be, float *out, const int32_t *ids, const float *wte, const float *wpe,
                           const float *wtt, int T, int C);
    // out (T, C) = (inp - mean) / sqrt(var + eps) * weight + bias, per row; inp (T, C); weight, bias (C)
    av_status (*layernorm)(av_backend *be, float *out, const float *inp, const float *weight, const float *bias, int T,
                           int C, float eps);
    // out (T, C) = inp / sqrt(mean(inp^2) + eps) * weight, per row (Llama's RMSNorm); inp (T, C); weight (C)
    av_status (*rmsnorm)(av_backend *be, float *out, const float *inp, const float *weight, int T, int C, float eps);
    // Rotary position embedding, in place, on the q and k parts of qkv (T, (NH + 2 NKV) HS): in every q and k head,
    // the pair (i, i + HS/2) of row t turns by the angle t * inv_freq[i] (fp32 product), Hugging Face's rotate_half
    // layout. inv_freq (HS/2).
    av_status (*rope)(av_backend *be, float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS);
    // out (T, I) = silu(inp[:, :I]) * inp[:, I:], per row, I = inner; inp (T, 2I): the gate and up projections side
    // by side.
    av_status (*swiglu)(av_backend *be, float *out, const float *inp, int T, int inner);
    // out (T, OC) = inp (T, C) @ weight + bias (OC); bias may be NULL; weight per LAYOUT
    av_status (*matmul)(av_backend *be, float *out, const float *inp, const float *weight, const float *bias, int T,
                        int C, int OC, av_weight_layout layout);
    // Multi-head attention with scale 1/sqrt(HS), HS = C / NH, and NKV key/value heads (grouped-query attention when
    // NKV < NH: query head h reads key/value head h / (NH / NKV); NKV divides NH).
    // out (T, C): heads concatenated; qkv (T, C + 2 NKV HS): [q | k | v] per row, head h at columns h*HS..(h+1)*HS of
    // each part.
    // probs (n_slots, T, T): head h is written to slot head_slot[h] when head_slot[h] >= 0; probs may be NULL when
    // no head is captured. causal masks j > i (those entries are written as exactly 0).
    av_status (*attention)(av_backend *be, float *out, float *probs, const float *qkv, int T, int C, int NH, int NKV,
                           bool causal, const int *head_slot);
    // out (N) = act(inp (N)); in place allowed
    av_status (*activation)(av_backend *be, float *out, const float *inp, size_t N, av_activation act);
    // out (N) = a (N) + b (N); out may alias a
    av_status (*residual)(av_backend *be, float *out, const float *a, const float *b, size_t N);

    // Bytes the backend can still allocate (free device memory; MemAvailable for the CPU).
    av_status (*memory_available)(av_backend *be, size_t *bytes);
    // Bytes a forward pass of T tokens takes from the backend beyond the buffers model code allocates: the ops' own
    // scratch, and the copies upload_tensor makes of parameters (param_bytes float32 bytes in all, matrix_bytes of
    // them matmul weights). Lets a run be refused before anything is allocated.
    size_t (*extra_bytes)(av_backend *be, int T, int C, int NH, int inner, size_t param_bytes, size_t matrix_bytes);
    // The attention implementation attention() runs for NH heads of C / NH columns: "flash" (the tensor-core kernels
    // of include/attnviz_kernels.h), "plain" (scores, softmax, P.V) or "reference" (the CPU). Fails with
    // AV_ERROR_INVALID_ARGUMENT when the options force a kernel that cannot run this shape.
    av_status (*attention_kernel)(av_backend *be, int C, int NH, const char **name);

    // Hands probs (n_slots, T, T), in backend memory, to SINK in host memory. The backend must finish reading probs
    // before a later op on it writes there again (the next layer's attention reuses the buffer). A backend may defer the call (the CUDA
    // backend copies on a second stream while the next layer computes); flush_probs delivers everything pending.
    av_status (*emit_probs)(av_backend *be, const float *probs, int layer, int n_slots, int T, av_probs_sink sink,
                            void *user);
    av_status (*flush_probs)(av_backend *be);

    // Optional (NULL: this backend has no reductions of its own). With REQUEST, attention() of C columns in NH heads
    // computes REQUEST for the captured heads instead of full P (model code then passes probs NULL and streams each
    // captured layer through emit_reductions); a NULL REQUEST goes back to full P. *on_backend is false, and nothing
    // changes, when the attention of this shape cannot (the caller computes the reductions from full P): the CUDA
    // flash path can (head and group means only with every_head), the CUDA plain path cannot, the CPU always can.
    // Called before extra_bytes, so that the memory check counts the reductions' buffers (for NH slots at most).
    av_status (*set_reductions)(av_backend *be, const av_reduction_request *request, int C, int NH, bool *on_backend);
    // Hands the reductions of the last attention() call (n_slots captured heads) to SINK in host memory; deferred
    // and flushed (flush_probs) like emit_probs.
    av_status (*emit_reductions)(av_backend *be, int layer, int n_slots, int T, av_reductions_sink sink, void *user);

    // Waits until the work queued so far has finished (for progress reports; the CPU's ops are synchronous).
    av_status (*synchronize)(av_backend *be);

    void (*destroy)(av_backend *be);
};

typedef enum av_compute_dtype { AV_COMPUTE_FP32, AV_COMPUTE_BF16 } av_compute_dtype;
typedef enum av_attn_dtype { AV_ATTN_FP32, AV_ATTN_FP16, AV_ATTN_BF16 } av_attn_dtype;
// AUTO: the flash kernels when they support the run (bf16 products, head size 64 or 128), else the plain path.
typedef enum av_attention_choice { AV_ATTENTION_AUTO, AV_ATTENTION_PLAIN, AV_ATTENTION_FLASH } av_attention_choice;

typedef struct backend_options {
    av_compute_dtype compute;      // matmul inputs (fp32 accumulation and fp32 softmax statistics either way)
    av_attn_dtype attn;            // storage of the device side buffer of P (the sink always receives float32)
    av_attention_choice attention; // CUDA only; zero (AUTO) in a zero-initialised struct
} backend_options;

av_status backend_cpu_create(av_backend **out);
// MemAvailable of this machine (bytes the kernel can hand out without swapping).
av_status host_memory_available(size_t *bytes);
// Fails with AV_ERROR_NO_DEVICE when there is no CUDA device, or AV_ERROR_UNSUPPORTED in a build without CUDA.
av_status backend_cuda_create(av_backend **out, const backend_options *options);
bool backend_cuda_available(void);
// DEVICE is "cpu", "cuda" or "auto" (cuda when a device exists, else cpu). The CPU backend accepts only fp32 options.
av_status backend_create(av_backend **out, const char *device, const backend_options *options);

// CPU reference ops (the specification every other backend is tested against). Same argument order as above.
void av_embedding_cpu(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt, int T,
                      int C);
void av_layernorm_cpu(float *out, const float *inp, const float *weight, const float *bias, int T, int C, float eps);
void av_matmul_cpu(float *out, const float *inp, const float *weight, const float *bias, int T, int C, int OC,
                   av_weight_layout layout);
void av_rmsnorm_cpu(float *out, const float *inp, const float *weight, int T, int C, float eps);
void av_rope_cpu(float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS);
void av_swiglu_cpu(float *out, const float *inp, int T, int inner);
av_status av_attention_cpu(float *out, float *probs, const float *qkv, int T, int C, int NH, int NKV, bool causal,
                           const int *head_slot);
// Scratch av_attention_cpu allocates for T tokens (a block of query rows per thread).
size_t av_attention_cpu_scratch_bytes(int T);
// av_attention_cpu that computes REQUEST for the captured heads instead of writing their P: each head's P exists
// one block of query rows at a time. reduced (floats of av_reduction_layout_of(request, captured heads, T)). Same P
// as av_attention_cpu; sums in float64 except the head and group means (float32, in head order); the result depends
// on the thread count, not on the schedule.
av_status av_attention_reduced_cpu(float *out, float *reduced, const float *qkv, int T, int C, int NH, int NKV,
                                   bool causal, const int *head_slot, const av_reduction_request *request);
// Scratch av_attention_reduced_cpu allocates (besides REDUCED).
size_t av_attention_reduced_cpu_scratch_bytes(const av_reduction_request *request, int T);
void av_activation_cpu(float *out, const float *inp, size_t N, av_activation act);
void av_residual_cpu(float *out, const float *a, const float *b, size_t N);

#endif
