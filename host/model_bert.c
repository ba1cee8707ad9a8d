// BERT encoders (bert-base, all-MiniLM-L6-v2, ...): word + position + token-type-0 embeddings and their LayerNorm,
// then post-LN blocks with bidirectional attention. nn.Linear weights are (out, in). The three q, k, v projections
// are fused at load into one (3C, C) matrix so that attention reads the same [q | k | v] rows as GPT-2's.
// One unpadded sequence is all attnviz runs, so the attention mask is all ones and changes nothing.
#include "model.h"

#include <stdio.h>
#include <string.h>

// Checkpoints saved from BertModel have no prefix; those saved from BertFor* heads put the encoder under "bert.".
static const char *const bert_prefixes[] = {"bert.", "", NULL};

static bool bert_has_tensor(const av_model *m, const char *name) {
    char full[512];
    for (int i = 0; bert_prefixes[i]; i++) {
        snprintf(full, sizeof full, "%s%s", bert_prefixes[i], name);
        if (st_find(&m->ckpt, full)) return true;
    }
    return false;
}

static av_status bert_tensor(av_model *m, const char *name, int64_t d0, int64_t d1, const float **out) {
    int64_t shape[2] = {d0, d1};
    return model_tensor_f32(m, bert_prefixes, name, d1 ? 2 : 1, shape, out);
}

// A LayerNorm under PREFIX: "LayerNorm.weight"/"LayerNorm.bias", or the TensorFlow-era "LayerNorm.gamma"/"beta".
static av_status bert_layernorm(av_model *m, const char *prefix, const float **weight, const float **bias) {
    int64_t C = m->cfg.n_embd;
    char name[256];
    snprintf(name, sizeof name, "%s.LayerNorm.weight", prefix);
    bool legacy = !bert_has_tensor(m, name);
    snprintf(name, sizeof name, "%s.LayerNorm.%s", prefix, legacy ? "gamma" : "weight");
    AV_TRY(bert_tensor(m, name, C, 0, weight));
    snprintf(name, sizeof name, "%s.LayerNorm.%s", prefix, legacy ? "beta" : "bias");
    return bert_tensor(m, name, C, 0, bias);
}

// Copies query, key and value (each weight (C, C), bias (C)) into qkv_w (3C, C) and qkv_b (3C), in that order.
static av_status bert_fuse_qkv(av_model *m, const char *layer, layer_weights *w) {
    size_t C = (size_t)m->cfg.n_embd;
    float *qkv_w = model_arena_take(m, 3 * C * C);
    float *qkv_b = model_arena_take(m, 3 * C);
    if (!qkv_w || !qkv_b) return AV_ERROR_INTERNAL;
    static const char *const parts[] = {"query", "key", "value"};
    for (size_t p = 0; p < 3; p++) {
        char name[256];
        const float *weight, *bias;
        snprintf(name, sizeof name, "%s.attention.self.%s.weight", layer, parts[p]);
        AV_TRY(bert_tensor(m, name, (int64_t)C, (int64_t)C, &weight));
        snprintf(name, sizeof name, "%s.attention.self.%s.bias", layer, parts[p]);
        AV_TRY(bert_tensor(m, name, (int64_t)C, 0, &bias));
        memcpy(qkv_w + p * C * C, weight, C * C * sizeof(float));
        memcpy(qkv_b + p * C, bias, C * sizeof(float));
    }
    w->qkv_w = qkv_w;
    w->qkv_b = qkv_b;
    return AV_SUCCESS;
}

static av_status bert_layer(av_model *m, int l, layer_weights *w) {
    int64_t C = m->cfg.n_embd, I = m->cfg.n_inner;
    char layer[64], name[256];
    snprintf(layer, sizeof layer, "encoder.layer.%d", l);
    AV_TRY(bert_fuse_qkv(m, layer, w));
#define LAYER_TENSOR(field, suffix, d0, d1)                         \
    snprintf(name, sizeof name, "%s.%s", layer, suffix);            \
    AV_TRY(bert_tensor(m, name, d0, d1, &w->field))
    LAYER_TENSOR(attn_proj_w, "attention.output.dense.weight", C, C);
    LAYER_TENSOR(attn_proj_b, "attention.output.dense.bias", C, 0);
    LAYER_TENSOR(fc_w, "intermediate.dense.weight", I, C);
    LAYER_TENSOR(fc_b, "intermediate.dense.bias", I, 0);
    LAYER_TENSOR(fc_proj_w, "output.dense.weight", C, I);
    LAYER_TENSOR(fc_proj_b, "output.dense.bias", C, 0);
#undef LAYER_TENSOR
    snprintf(name, sizeof name, "%s.attention.output", layer);
    AV_TRY(bert_layernorm(m, name, &w->ln1_w, &w->ln1_b));
    snprintf(name, sizeof name, "%s.output", layer);
    return bert_layernorm(m, name, &w->ln2_w, &w->ln2_b);
}

av_status bert_load_weights(av_model *m) {
    const model_config *cfg = &m->cfg;
    model_weights *w = &m->w;
    int64_t C = cfg->n_embd;
    AV_TRY(bert_tensor(m, "embeddings.word_embeddings.weight", cfg->vocab_size, C, &w->wte));
    AV_TRY(bert_tensor(m, "embeddings.position_embeddings.weight", cfg->n_positions, C, &w->wpe));
    // Row 0 of the token-type table: attnviz feeds one segment, so every token has type 0.
    AV_TRY(bert_tensor(m, "embeddings.token_type_embeddings.weight", cfg->type_vocab_size, C, &w->wtt));
    AV_TRY(bert_layernorm(m, "embeddings", &w->emb_ln_w, &w->emb_ln_b));
    for (int l = 0; l < cfg->n_layer; l++) AV_TRY(bert_layer(m, l, &w->layers[l]));
    w->lnf_w = w->lnf_b = NULL;
    w->lm_head = NULL;
    w->layout = AV_WEIGHT_OUT_IN;
    return AV_SUCCESS;
}

// Activations of one forward pass, carved from one backend allocation of model_forward_bytes.
typedef struct bert_buffers {
    int32_t *ids; // (T)
    float *x;     // (T, C) hidden states between sublayers (after each LayerNorm)
    float *qkv;   // (T, 3C)
    float *att;   // (T, C)
    float *tmp;   // (T, C) sublayer output plus residual, before its LayerNorm
    float *fc;    // (T, I)
    float *probs; // (n_slots, T, T) or NULL
} bert_buffers;

static av_status bert_alloc(av_backend *be, const model_config *cfg, const forward_request *req, void **block,
                            bert_buffers *b) {
    size_t T = (size_t)req->T, C = (size_t)cfg->n_embd, I = (size_t)cfg->n_inner;
    int n_slots = model_probs_slots(req);
    AV_TRY(be->alloc(be, block, model_forward_bytes(cfg, req->T, n_slots, 0), "activations"));
    char *cursor = *block;
    b->ids = model_carve(&cursor, T * sizeof(int32_t));
    b->x = model_carve(&cursor, T * C * sizeof(float));
    b->qkv = model_carve(&cursor, 3 * T * C * sizeof(float));
    b->att = model_carve(&cursor, T * C * sizeof(float));
    b->tmp = model_carve(&cursor, T * C * sizeof(float));
    b->fc = model_carve(&cursor, T * I * sizeof(float));
    b->probs = n_slots ? model_carve(&cursor, (size_t)n_slots * T * T * sizeof(float)) : NULL;
    return AV_SUCCESS;
}

// x = LN(x + attention(x)); x = LN(x + mlp(x))
static av_status bert_block(const model_config *cfg, av_backend *be, const layer_weights *lw, av_weight_layout layout,
                            const bert_buffers *b, int T, bool capture, const forward_request *req, int l) {
    int C = cfg->n_embd, I = cfg->n_inner, NH = cfg->n_head;
    size_t TC = (size_t)T * C;
    float eps = cfg->layer_norm_eps;
    AV_TRY(be->matmul(be, b->qkv, b->x, lw->qkv_w, lw->qkv_b, T, C, 3 * C, layout));
    AV_TRY(be->attention(be, b->att, capture ? b->probs : NULL, b->qkv, T, C, NH, NH, false,
                         capture ? req->plan->head_slot : NULL));
    if (capture) AV_TRY(model_emit_capture(be, req, b->probs, l, T));
    AV_TRY(be->matmul(be, b->tmp, b->att, lw->attn_proj_w, lw->attn_proj_b, T, C, C, layout));
    AV_TRY(be->residual(be, b->tmp, b->tmp, b->x, TC));
    AV_TRY(be->layernorm(be, b->x, b->tmp, lw->ln1_w, lw->ln1_b, T, C, eps));
    AV_TRY(be->matmul(be, b->fc, b->x, lw->fc_w, lw->fc_b, T, C, I, layout));
    AV_TRY(be->activation(be, b->fc, b->fc, (size_t)T * I, cfg->activation));
    AV_TRY(be->matmul(be, b->tmp, b->fc, lw->fc_proj_w, lw->fc_proj_b, T, I, C, layout));
    AV_TRY(be->residual(be, b->tmp, b->tmp, b->x, TC));
    AV_TRY(be->layernorm(be, b->x, b->tmp, lw->ln2_w, lw->ln2_b, T, C, eps));
    return AV_SUCCESS;
}

static av_status bert_run(const model_config *cfg, av_backend *be, const model_weights *w, const bert_buffers *b,
                          const forward_request *req) {
    int T = req->T, C = cfg->n_embd;
    AV_TRY(be->upload(be, b->ids, req->ids, (size_t)T * sizeof(int32_t)));
    AV_TRY(be->embedding(be, b->tmp, b->ids, w->wte, w->wpe, w->wtt, T, C));
    AV_TRY(be->layernorm(be, b->x, b->tmp, w->emb_ln_w, w->emb_ln_b, T, C, cfg->layer_norm_eps));
    AV_TRY(model_report_progress(be, req, 0, cfg->n_layer));
    for (int l = 0; l < cfg->n_layer; l++) {
        bool capture = req->plan && req->plan->n_slots > 0 && req->plan->layer_on[l];
        AV_TRY(bert_block(cfg, be, &w->layers[l], w->layout, b, T, capture, req, l));
        AV_TRY(model_report_progress(be, req, l + 1, cfg->n_layer));
    }
    AV_TRY(be->flush_probs(be));
    if (req->hidden) AV_TRY(be->download(be, req->hidden, b->x, (size_t)T * C * sizeof(float)));
    return AV_SUCCESS;
}

// model_forward has checked the ids and the length.
static av_status bert_check_request(const char *name, const forward_request *req) {
    if (req->logits)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s: a BERT encoder has no language-model head for logits", name);
    return AV_SUCCESS;
}

av_status bert_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req) {
    AV_TRY(bert_check_request(model->name, req));
    void *block = NULL;
    bert_buffers b;
    AV_TRY(bert_alloc(be, &model->cfg, req, &block, &b));
    av_status st = bert_run(&model->cfg, be, w, &b, req);
    be->release(be, block);
    return st;
}
