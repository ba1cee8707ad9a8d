// GPT-2: learned positions, pre-LN blocks, causal attention, tied LM head. Conv1D weights are (in, out).
#include "model.h"

#include <stdio.h>
#include <string.h>

static const char *const gpt2_prefixes[] = {"transformer.", "", NULL};

static av_status gpt2_tensor(av_model *m, const char *name, int64_t d0, int64_t d1, const float **out) {
    int64_t shape[2] = {d0, d1};
    return model_tensor_f32(m, gpt2_prefixes, name, d1 ? 2 : 1, shape, out);
}

static av_status gpt2_layer(av_model *m, int l, layer_weights *w) {
    int64_t C = m->cfg.n_embd, I = m->cfg.n_inner;
    char name[128];
#define LAYER_TENSOR(field, suffix, d0, d1)                           \
    snprintf(name, sizeof name, "h.%d.%s", l, suffix);                \
    AV_TRY(gpt2_tensor(m, name, d0, d1, &w->field))
    LAYER_TENSOR(ln1_w, "ln_1.weight", C, 0);
    LAYER_TENSOR(ln1_b, "ln_1.bias", C, 0);
    LAYER_TENSOR(qkv_w, "attn.c_attn.weight", C, 3 * C);
    LAYER_TENSOR(qkv_b, "attn.c_attn.bias", 3 * C, 0);
    LAYER_TENSOR(attn_proj_w, "attn.c_proj.weight", C, C);
    LAYER_TENSOR(attn_proj_b, "attn.c_proj.bias", C, 0);
    LAYER_TENSOR(ln2_w, "ln_2.weight", C, 0);
    LAYER_TENSOR(ln2_b, "ln_2.bias", C, 0);
    LAYER_TENSOR(fc_w, "mlp.c_fc.weight", C, I);
    LAYER_TENSOR(fc_b, "mlp.c_fc.bias", I, 0);
    LAYER_TENSOR(fc_proj_w, "mlp.c_proj.weight", I, C);
    LAYER_TENSOR(fc_proj_b, "mlp.c_proj.bias", C, 0);
#undef LAYER_TENSOR
    return AV_SUCCESS;
}

av_status gpt2_load_weights(av_model *m) {
    const model_config *cfg = &m->cfg;
    model_weights *w = &m->w;
    int64_t C = cfg->n_embd;
    AV_TRY(gpt2_tensor(m, "wte.weight", cfg->vocab_size, C, &w->wte));
    AV_TRY(gpt2_tensor(m, "wpe.weight", cfg->n_positions, C, &w->wpe));
    AV_TRY(gpt2_tensor(m, "ln_f.weight", C, 0, &w->lnf_w));
    AV_TRY(gpt2_tensor(m, "ln_f.bias", C, 0, &w->lnf_b));
    for (int l = 0; l < cfg->n_layer; l++) AV_TRY(gpt2_layer(m, l, &w->layers[l]));
    // GPT-2 ties the LM head to the token embeddings; save_pretrained does not store lm_head.weight.
    w->lm_head = w->wte;
    w->layout = AV_WEIGHT_IN_OUT;
    return AV_SUCCESS;
}

static av_status gpt2_block(const model_config *cfg, av_backend *be, const model_weights *w, const layer_weights *lw,
                            const decoder_buffers *b, int T, bool capture, const forward_request *req, int l) {
    int C = cfg->n_embd, I = cfg->n_inner, NH = cfg->n_head;
    size_t TC = (size_t)T * C;
    av_weight_layout layout = w->layout;
    AV_TRY(be->layernorm(be, b->ln, b->x, lw->ln1_w, lw->ln1_b, T, C, cfg->layer_norm_eps));
    AV_TRY(be->matmul(be, b->qkv, b->ln, lw->qkv_w, lw->qkv_b, T, C, 3 * C, layout));
    AV_TRY(be->attention(be, b->att, capture ? b->probs : NULL, b->qkv, T, C, NH, NH, true,
                         capture ? req->plan->head_slot : NULL));
    if (capture) AV_TRY(model_emit_capture(be, req, b->probs, l, T));
    AV_TRY(be->matmul(be, b->tmp, b->att, lw->attn_proj_w, lw->attn_proj_b, T, C, C, layout));
    AV_TRY(be->residual(be, b->x, b->x, b->tmp, TC));
    AV_TRY(be->layernorm(be, b->ln, b->x, lw->ln2_w, lw->ln2_b, T, C, cfg->layer_norm_eps));
    AV_TRY(be->matmul(be, b->fc, b->ln, lw->fc_w, lw->fc_b, T, C, I, layout));
    AV_TRY(be->activation(be, b->fc, b->fc, (size_t)T * I, cfg->activation));
    AV_TRY(be->matmul(be, b->tmp, b->fc, lw->fc_proj_w, lw->fc_proj_b, T, I, C, layout));
    AV_TRY(be->residual(be, b->x, b->x, b->tmp, TC));
    return AV_SUCCESS;
}

static av_status gpt2_final_norm(const model_config *cfg, av_backend *be, const model_weights *w,
                                 const decoder_buffers *b, int T) {
    return be->layernorm(be, b->ln, b->x, w->lnf_w, w->lnf_b, T, cfg->n_embd, cfg->layer_norm_eps);
}

av_status gpt2_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req) {
    static const decoder_arch gpt2 = {gpt2_block, gpt2_final_norm};
    return decoder_forward(model, be, w, req, &gpt2);
}
