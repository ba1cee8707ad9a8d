// A loaded checkpoint: config, tokenizer, weights (float32, host memory), and the forward pass of its architecture.
#ifndef AV_MODEL_H
#define AV_MODEL_H

#include "backend.h"
#include "config.h"
#include "safetensors.h"
#include "tokenizer.h"

// One transformer block's parameters. The same fields serve both layer orders:
//   GPT-2 (pre-LN):  ln1 before attention, ln2 before the MLP.
//   BERT (post-LN):  ln1 after attention (attention.output.LayerNorm), ln2 after the MLP (output.LayerNorm).
//   Llama (pre-RMSNorm): ln1 and ln2 are RMSNorm weights (no biases); fc_w is gate and up fused (2I, C), fc_proj_w
//   is down_proj (C, I); no biases but Qwen2's on q, k and v.
// qkv_w holds q, k and v fused: (C, 3C) for GPT-2's Conv1D, (3C, C) for BERT and (C + 2 KVC, C) for Llama (built at
// load from three nn.Linear; KVC = NKV * HS).
typedef struct layer_weights {
    const float *ln1_w, *ln1_b;         // (C)
    const float *qkv_w, *qkv_b;         // (C, 3C) or (3C, C); (3C)
    const float *attn_proj_w, *attn_proj_b; // (C, C); (C)
    const float *ln2_w, *ln2_b;         // (C)
    const float *fc_w, *fc_b;           // (C, I) or (I, C); (I)
    const float *fc_proj_w, *fc_proj_b; // (I, C) or (C, I); (C)
} layer_weights;

typedef struct model_weights {
    const float *wte;              // (V, C) token embeddings; also GPT-2's tied LM head
    const float *wpe;              // (P, C) position embeddings
    const float *wtt;              // (C) BERT token-type-0 embedding row, NULL for GPT-2
    const float *emb_ln_w, *emb_ln_b; // (C) BERT embedding LayerNorm, NULL for GPT-2
    const float *lnf_w, *lnf_b;    // (C) GPT-2 final LayerNorm, NULL for BERT
    const float *lm_head;          // (V, C) nn.Linear layout; GPT-2 ties it to wte; NULL for BERT
    const float *rope_inv_freq;    // (HS / 2) Llama's rotary frequencies, NULL otherwise
    layer_weights *layers;         // (L)
    av_weight_layout layout;
} model_weights;

typedef struct av_model {
    model_config cfg;
    char *dir;
    char *name;          // for titles and meta.json: the checkpoint directory's base name
    st_checkpoint ckpt;  // mmap'ed files; float32 tensors are used in place
    float *arena;        // one allocation for tensors that had to be upcast or fused
    size_t arena_bytes;
    size_t arena_used;
    model_weights w;
    tokenizer *tok;
} av_model;

// What to keep of each attention call.
typedef struct capture_plan {
    bool *layer_on;    // (L)
    int *head_slot;    // (NH): slot of head h in a captured layer's probs, or -1
    int n_layers;      // captured layers
    int n_slots;       // captured heads per captured layer
} capture_plan;

// What one forward pass produces besides the attention stream.
typedef struct forward_request {
    const int32_t *ids; // (T) host memory
    int T;
    const capture_plan *plan; // NULL: capture nothing
    av_probs_sink sink;
    void *sink_user;
    // Set when the backend was given set_reductions and said on_device: P is not allocated and each captured layer
    // streams out through emit_reductions to reductions_sink instead (sink is not called).
    bool device_reductions;
    av_reductions_sink reductions_sink;
    float *hidden;      // (T, C) host memory or NULL: final hidden states (after ln_f for GPT-2, last block for BERT)
    float *logits;      // (logits_rows, V) host memory or NULL: logits of the last logits_rows positions (GPT-2)
    int logits_rows;
    av_progress_fn progress; // NULL or av_run_options.progress
    void *progress_user;
} forward_request;

// av_model_load / av_model_destroy (include/attnviz.h) build and free this struct.

// Hands every parameter of MODEL to BE (be->upload_tensor); dev->layers is malloc'ed, free with model_weights_free.
av_status model_weights_upload(const av_model *model, av_backend *be, model_weights *dev);
void model_weights_free(model_weights *w);
// float32 bytes of every parameter MODEL has, and of the matmul weights among them (*all is 0 when out of memory).
void model_parameter_bytes(const av_model *model, size_t *all, size_t *matrices);

// Runs the forward pass of MODEL's architecture on BE with the parameters W (from model_weights_upload).
av_status model_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req);
// Takes the next BYTES of a forward pass's single allocation at *cursor (256-byte aligned, as model_forward_bytes
// budgets).
void *model_carve(char **cursor, size_t bytes);
// Backend bytes one forward pass allocates: activations, the captured probs of one layer (n_slots heads; 0 when the
// backend reduces on the device), the logits rows.
size_t model_forward_bytes(const model_config *cfg, int T, int n_slots, int logits_rows);
// Heads of P the forward pass of REQ allocates per captured layer: 0 with device reductions or without a plan.
int model_probs_slots(const forward_request *req);
// Reports LAYERS_DONE of N_LAYERS to REQ's progress callback, if any, once the backend has finished them.
av_status model_report_progress(av_backend *be, const forward_request *req, int layers_done, int n_layers);
// Streams captured layer L out: full P (probs (n_slots, T, T)) through emit_probs, or the backend's reductions.
av_status model_emit_capture(av_backend *be, const forward_request *req, const float *probs, int l, int T);

// Architecture hooks, one file each.
av_status gpt2_load_weights(av_model *model);
av_status gpt2_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req);
av_status bert_load_weights(av_model *model);
av_status bert_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req);
av_status llama_load_weights(av_model *model);
av_status llama_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req);
// Arena floats llama_load_weights takes beyond upcast tensors: the fused matrices and the rotary frequencies.
size_t llama_arena_numel(const model_config *cfg);

// Columns of the fused q | k | v rows (3C, or C + 2 KVC with grouped-query attention) and of the MLP's first
// product (I, or 2I for Llama's gate | up).
size_t model_qkv_width(const model_config *cfg);
size_t model_fc_width(const model_config *cfg);

// The activations of a causal decoder's forward pass (GPT-2, Llama), carved from one backend allocation of
// model_forward_bytes.
typedef struct decoder_buffers {
    int32_t *ids;  // (T)
    float *x;      // (T, C) residual stream
    float *ln;     // (T, C) normalised x
    float *qkv;    // (T, model_qkv_width)
    float *att;    // (T, C)
    float *tmp;    // (T, C)
    float *fc;     // (T, model_fc_width)
    float *act;    // (T, I) Llama's silu(gate) * up; NULL for GPT-2
    float *probs;  // (n_slots, T, T) or NULL
    float *logits; // (rows, V) or NULL
} decoder_buffers;

// What differs between the decoders: one block (layer L, weights LW; CAPTURE: stream its attention out) and the
// final norm of b->x into b->ln.
typedef struct decoder_arch {
    av_status (*block)(const model_config *cfg, av_backend *be, const model_weights *w, const layer_weights *lw,
                       const decoder_buffers *b, int T, bool capture, const forward_request *req, int l);
    av_status (*final_norm)(const model_config *cfg, av_backend *be, const model_weights *w,
                            const decoder_buffers *b, int T);
} decoder_arch;

// A causal decoder's forward pass: token (+ position) embeddings, every block of ARCH, its final norm, then the
// final hidden states and the logits of the last rows as REQ asks.
av_status decoder_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req,
                          const decoder_arch *arch);

// Reserves float32 space in the model's arena (sized by the loader before carving).
float *model_arena_take(av_model *model, size_t numel);
// Finds a tensor under any of the name prefixes given (NULL-terminated list), checks its shape, and returns it as
// float32: in place when the file stores float32, else upcast into the arena.
av_status model_tensor_f32(av_model *model, const char *const *prefixes, const char *name, int ndim,
                           const int64_t *shape, const float **out);

// Capture plans from the CLI's --layers / --heads lists ("all", "0,3,5-7").
av_status capture_plan_parse(capture_plan *plan, const model_config *cfg, const char *layers, const char *heads);
void capture_plan_free(capture_plan *plan);
// Host bytes of one captured layer: n_slots * T * T * sizeof(float).
size_t capture_plan_layer_bytes(const capture_plan *plan, int T);
// Adds "layers" and "heads", the indices PLAN captures of CFG's, to the JSON object OBJECT.
struct cJSON;
void capture_plan_add_json(struct cJSON *object, const capture_plan *plan, const model_config *cfg);

#endif
