// The Llama family (Llama 2/3, Qwen2, and checkpoints saved from LlamaForCausalLM): token embeddings only, pre-norm
// blocks with RMSNorm, rotary positions on q and k, grouped-query attention (NKV key/value heads shared by NH / NKV
// query heads each), a SwiGLU MLP, and an LM head that may be tied to the embeddings. nn.Linear weights are (out, in);
// q, k and v are fused at load into one (C + 2 KVC, C) matrix ([q | k | v] rows, as the attention op reads them)
// and gate and up into one (2I, C), so that each is one product.
#include "model.h"

#include <stdio.h>
#include <string.h>

// LlamaForCausalLM puts the decoder under "model."; a bare LlamaModel has no prefix.
static const char *const llama_prefixes[] = {"model.", "", NULL};
static const char *const no_prefix[] = {"", NULL};

static av_status llama_tensor(av_model *m, const char *name, int64_t d0, int64_t d1, const float **out) {
    int64_t shape[2] = {d0, d1};
    return model_tensor_f32(m, llama_prefixes, name, d1 ? 2 : 1, shape, out);
}

// Copies the tensors LAYER.NAMES[p].SUFFIX (ROWS[p] x COLS each, p < N) one after the other into one arena block.
static av_status llama_fuse(av_model *m, const char *layer, const char *const *names, const int64_t *rows, int n,
                            int64_t cols, const char *suffix, const float **out) {
    size_t width = cols ? (size_t)cols : 1, total = 0;
    for (int p = 0; p < n; p++) total += (size_t)rows[p] * width;
    float *fused = model_arena_take(m, total);
    if (!fused) return AV_ERROR_INTERNAL;
    size_t at = 0; // rows copied so far
    for (int p = 0; p < n; p++) {
        char name[256];
        const float *part;
        snprintf(name, sizeof name, "%s.%s.%s", layer, names[p], suffix);
        AV_TRY(llama_tensor(m, name, rows[p], cols, &part));
        memcpy(fused + at * width, part, (size_t)rows[p] * width * sizeof(float));
        at += (size_t)rows[p];
    }
    *out = fused;
    return AV_SUCCESS;
}

static av_status llama_layer(av_model *m, int l, layer_weights *w) {
    const model_config *cfg = &m->cfg;
    int64_t C = cfg->n_embd, I = cfg->n_inner, KVC = (int64_t)cfg->n_kv_head * (C / cfg->n_head);
    char layer[64], name[256];
    snprintf(layer, sizeof layer, "layers.%d", l);
    static const char *const qkv[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"};
    static const char *const gate_up[] = {"mlp.gate_proj", "mlp.up_proj"};
    const int64_t qkv_rows[] = {C, KVC, KVC}, gate_up_rows[] = {I, I};
    AV_TRY(llama_fuse(m, layer, qkv, qkv_rows, 3, C, "weight", &w->qkv_w));
    if (cfg->qkv_bias) AV_TRY(llama_fuse(m, layer, qkv, qkv_rows, 3, 0, "bias", &w->qkv_b));
    AV_TRY(llama_fuse(m, layer, gate_up, gate_up_rows, 2, C, "weight", &w->fc_w));
#define LAYER_TENSOR(field, suffix, d0, d1)                         \
    snprintf(name, sizeof name, "%s.%s", layer, suffix);            \
    AV_TRY(llama_tensor(m, name, d0, d1, &w->field))
    LAYER_TENSOR(ln1_w, "input_layernorm.weight", C, 0);
    LAYER_TENSOR(attn_proj_w, "self_attn.o_proj.weight", C, C);
    LAYER_TENSOR(ln2_w, "post_attention_layernorm.weight", C, 0);
    LAYER_TENSOR(fc_proj_w, "mlp.down_proj.weight", C, I);
#undef LAYER_TENSOR
    return AV_SUCCESS;
}

size_t llama_arena_numel(const model_config *cfg) {
    size_t C = (size_t)cfg->n_embd, qkv = model_qkv_width(cfg);
    size_t per_layer = qkv * C + (cfg->qkv_bias ? qkv : 0) + model_fc_width(cfg) * C;
    return (size_t)cfg->n_layer * per_layer + C / (size_t)cfg->n_head / 2; // fused q|k|v, gate|up; rotary frequencies
}

av_status llama_load_weights(av_model *m) {
    const model_config *cfg = &m->cfg;
    model_weights *w = &m->w;
    int64_t C = cfg->n_embd, V = cfg->vocab_size;
    AV_TRY(llama_tensor(m, "embed_tokens.weight", V, C, &w->wte));
    AV_TRY(llama_tensor(m, "norm.weight", C, 0, &w->lnf_w));
    for (int l = 0; l < cfg->n_layer; l++) AV_TRY(llama_layer(m, l, &w->layers[l]));
    if (cfg->tie_word_embeddings) {
        w->lm_head = w->wte;
    } else {
        int64_t shape[2] = {V, C};
        AV_TRY(model_tensor_f32(m, no_prefix, "lm_head.weight", 2, shape, &w->lm_head));
    }
    float *inv_freq = model_arena_take(m, (size_t)(C / cfg->n_head / 2));
    if (!inv_freq) return AV_ERROR_INTERNAL;
    config_rope_inv_freq(cfg, inv_freq);
    w->rope_inv_freq = inv_freq;
    w->layout = AV_WEIGHT_OUT_IN;
    return AV_SUCCESS;
}

static av_status llama_block(const model_config *cfg, av_backend *be, const model_weights *w,
                             const layer_weights *lw, const decoder_buffers *b, int T, bool capture,
                             const forward_request *req, int l) {
    int C = cfg->n_embd, I = cfg->n_inner, NH = cfg->n_head, NKV = cfg->n_kv_head;
    size_t TC = (size_t)T * C;
    float eps = cfg->layer_norm_eps;
    AV_TRY(be->rmsnorm(be, b->ln, b->x, lw->ln1_w, T, C, eps));
    AV_TRY(be->matmul(be, b->qkv, b->ln, lw->qkv_w, lw->qkv_b, T, C, (int)model_qkv_width(cfg),
                      AV_WEIGHT_OUT_IN));
    AV_TRY(be->rope(be, b->qkv, w->rope_inv_freq, T, NH, NKV, C / NH));
    AV_TRY(be->attention(be, b->att, capture ? b->probs : NULL, b->qkv, T, C, NH, NKV, true,
                         capture ? req->plan->head_slot : NULL));
    if (capture) AV_TRY(model_emit_capture(be, req, b->probs, l, T));
    AV_TRY(be->matmul(be, b->tmp, b->att, lw->attn_proj_w, NULL, T, C, C, AV_WEIGHT_OUT_IN));
    AV_TRY(be->residual(be, b->x, b->x, b->tmp, TC));
    AV_TRY(be->rmsnorm(be, b->ln, b->x, lw->ln2_w, T, C, eps));
    AV_TRY(be->matmul(be, b->fc, b->ln, lw->fc_w, NULL, T, C, 2 * I, AV_WEIGHT_OUT_IN));
    AV_TRY(be->swiglu(be, b->act, b->fc, T, I));
    AV_TRY(be->matmul(be, b->tmp, b->act, lw->fc_proj_w, NULL, T, I, C, AV_WEIGHT_OUT_IN));
    AV_TRY(be->residual(be, b->x, b->x, b->tmp, TC));
    return AV_SUCCESS;
}

static av_status llama_final_norm(const model_config *cfg, av_backend *be, const model_weights *w,
                                  const decoder_buffers *b, int T) {
    return be->rmsnorm(be, b->ln, b->x, w->lnf_w, T, cfg->n_embd, cfg->layer_norm_eps);
}

av_status llama_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req) {
    static const decoder_arch llama = {llama_block, llama_final_norm};
    return decoder_forward(model, be, w, req, &llama);
}
