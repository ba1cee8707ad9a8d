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

// Activations of one forward pass, carved from one backend allocation.
typedef struct gpt2_buffers {
    int32_t *ids;  // (T)
    float *x;      // (T, C) residual stream
    float *ln;     // (T, C)
    float *qkv;    // (T, 3C)
    float *att;    // (T, C)
    float *tmp;    // (T, C)
    float *fc;     // (T, I)
    float *probs;  // (n_slots, T, T) or NULL
    float *logits; // (rows, V) or NULL
} gpt2_buffers;

static av_status gpt2_alloc(av_backend *be, const model_config *cfg, const forward_request *req, void **block,
                            gpt2_buffers *b) {
    size_t T = (size_t)req->T, C = (size_t)cfg->n_embd, I = (size_t)cfg->n_inner;
    int n_slots = model_probs_slots(req);
    int rows = req->logits ? req->logits_rows : 0;
    AV_TRY(be->alloc(be, block, model_forward_bytes(cfg, req->T, n_slots, rows), "activations"));
    char *cursor = *block;
    b->ids = model_carve(&cursor, T * sizeof(int32_t));
    b->x = model_carve(&cursor, T * C * sizeof(float));
    b->ln = model_carve(&cursor, T * C * sizeof(float));
    b->qkv = model_carve(&cursor, 3 * T * C * sizeof(float));
    b->att = model_carve(&cursor, T * C * sizeof(float));
    b->tmp = model_carve(&cursor, T * C * sizeof(float));
    b->fc = model_carve(&cursor, T * I * sizeof(float));
    b->probs = n_slots ? model_carve(&cursor, (size_t)n_slots * T * T * sizeof(float)) : NULL;
    b->logits = rows ? model_carve(&cursor, (size_t)rows * (size_t)cfg->vocab_size * sizeof(float)) : NULL;
    return AV_SUCCESS;
}

static av_status gpt2_block(const model_config *cfg, av_backend *be, const layer_weights *lw, av_weight_layout layout,
                            const gpt2_buffers *b, int T, bool capture, const forward_request *req, int l) {
    int C = cfg->n_embd, I = cfg->n_inner, NH = cfg->n_head;
    size_t TC = (size_t)T * C;
    AV_TRY(be->layernorm(be, b->ln, b->x, lw->ln1_w, lw->ln1_b, T, C, cfg->layer_norm_eps));
    AV_TRY(be->matmul(be, b->qkv, b->ln, lw->qkv_w, lw->qkv_b, T, C, 3 * C, layout));
    AV_TRY(be->attention(be, b->att, capture ? b->probs : NULL, b->qkv, T, C, NH, true,
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

static av_status gpt2_run(const model_config *cfg, av_backend *be, const model_weights *w, const gpt2_buffers *b,
                          const forward_request *req) {
    int T = req->T, C = cfg->n_embd;
    AV_TRY(be->upload(be, b->ids, req->ids, (size_t)T * sizeof(int32_t)));
    AV_TRY(be->embedding(be, b->x, b->ids, w->wte, w->wpe, NULL, T, C));
    for (int l = 0; l < cfg->n_layer; l++) {
        bool capture = req->plan && req->plan->n_slots > 0 && req->plan->layer_on[l];
        AV_TRY(gpt2_block(cfg, be, &w->layers[l], w->layout, b, T, capture, req, l));
    }
    AV_TRY(be->flush_probs(be));
    AV_TRY(be->layernorm(be, b->ln, b->x, w->lnf_w, w->lnf_b, T, C, cfg->layer_norm_eps));
    if (req->hidden) AV_TRY(be->download(be, req->hidden, b->ln, (size_t)T * C * sizeof(float)));
    if (req->logits) {
        int rows = req->logits_rows;
        size_t bytes = (size_t)rows * (size_t)cfg->vocab_size * sizeof(float);
        AV_TRY(be->matmul(be, b->logits, b->ln + (size_t)(T - rows) * C, w->lm_head, NULL, rows, C, cfg->vocab_size,
                          AV_WEIGHT_OUT_IN));
        AV_TRY(be->download(be, req->logits, b->logits, bytes));
    }
    return AV_SUCCESS;
}

av_status gpt2_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req) {
    if (req->logits && (req->logits_rows < 1 || req->logits_rows > req->T))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "logits rows %d outside 1..%d", req->logits_rows, req->T);
    void *block = NULL;
    gpt2_buffers b;
    AV_TRY(gpt2_alloc(be, &model->cfg, req, &block, &b));
    av_status st = gpt2_run(&model->cfg, be, w, &b, req);
    be->release(be, block);
    return st;
}
