// Loading a checkpoint directory into an av_model, and the pieces every architecture shares.
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *checkpoint_name(const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    char *name = av_malloc(len - start + 1, "model name");
    if (name) {
        memcpy(name, dir + start, len - start);
        name[len - start] = '\0';
    }
    return name;
}

// Tensors used in place must be float32 and 4-byte aligned inside the mapping; everything else is upcast.
static bool usable_in_place(const st_tensor *t) {
    return t->dtype == ST_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
}

static size_t arena_numel(const av_model *m) {
    size_t numel = 0;
    for (int i = 0; i < m->ckpt.count; i++)
        if (!usable_in_place(&m->ckpt.tensors[i])) numel += m->ckpt.tensors[i].numel;
    if (m->cfg.arch == AV_ARCH_BERT) {
        size_t C = (size_t)m->cfg.n_embd;
        numel += (size_t)m->cfg.n_layer * (3 * C * C + 3 * C); // fused q, k, v
    }
    if (m->cfg.arch == AV_ARCH_LLAMA) numel += llama_arena_numel(&m->cfg);
    return numel;
}

float *model_arena_take(av_model *model, size_t numel) {
    size_t bytes = numel * sizeof(float);
    if (model->arena_used + bytes > model->arena_bytes) {
        av_fail(AV_ERROR_INTERNAL, "model arena overflow: %zu + %zu > %zu bytes", model->arena_used, bytes,
                model->arena_bytes);
        return NULL;
    }
    float *p = (float *)((char *)model->arena + model->arena_used);
    model->arena_used += bytes;
    return p;
}

av_status model_tensor_f32(av_model *model, const char *const *prefixes, const char *name, int ndim,
                           const int64_t *shape, const float **out) {
    char full[512];
    const st_tensor *t = NULL;
    for (int i = 0; prefixes[i] && !t; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], name);
        t = st_find(&model->ckpt, full);
    }
    if (!t)
        return av_fail(AV_ERROR_FORMAT, "%s: tensor '%s%s' not found in the checkpoint", model->dir, prefixes[0],
                       name);
    AV_TRY(st_require(&model->ckpt, t->name, ndim, shape, &t));
    if (usable_in_place(t)) {
        *out = t->data;
        return AV_SUCCESS;
    }
    float *dst = model_arena_take(model, t->numel);
    if (!dst) return AV_ERROR_INTERNAL;
    AV_TRY(st_tensor_to_f32(t, dst));
    *out = dst;
    return AV_SUCCESS;
}

static av_status load_parts(av_model *m, const char *dir) {
    m->dir = strdup(dir);
    m->name = checkpoint_name(dir);
    if (!m->dir || !m->name) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory loading %s", dir);
    char *config_path = av_path_join(dir, "config.json");
    if (!config_path) return AV_ERROR_OUT_OF_MEMORY;
    av_status st = config_load(&m->cfg, config_path);
    free(config_path);
    AV_TRY(st);
    AV_TRY(tokenizer_load(&m->tok, dir));
    AV_TRY(st_checkpoint_open(&m->ckpt, dir));
    m->arena_bytes = arena_numel(m) * sizeof(float);
    m->arena = av_malloc(m->arena_bytes, "upcast weights");
    if (!m->arena) return AV_ERROR_OUT_OF_MEMORY;
    m->w.layers = av_calloc((size_t)m->cfg.n_layer, sizeof(layer_weights), "layer table");
    if (!m->w.layers) return AV_ERROR_OUT_OF_MEMORY;
    switch (m->cfg.arch) {
    case AV_ARCH_GPT2: return gpt2_load_weights(m);
    case AV_ARCH_BERT: return bert_load_weights(m);
    case AV_ARCH_LLAMA: return llama_load_weights(m);
    }
    return av_fail(AV_ERROR_INTERNAL, "unknown architecture %d", (int)m->cfg.arch);
}

av_status av_model_load(av_model **out, const char *dir) {
    av_model *m = av_calloc(1, sizeof *m, "model");
    if (!m) return AV_ERROR_OUT_OF_MEMORY;
    av_status st = load_parts(m, dir);
    if (st != AV_SUCCESS) {
        av_model_destroy(m);
        return st;
    }
    *out = m;
    return AV_SUCCESS;
}

void av_model_destroy(av_model *model) {
    if (!model) return;
    if (model->tok) tokenizer_destroy(model->tok);
    st_checkpoint_close(&model->ckpt);
    free(model->arena);
    free(model->w.layers);
    free(model->dir);
    free(model->name);
    free(model);
}

typedef struct weight_field {
    const float **slot;
    size_t numel;
    bool matrix; // a matmul operand: the CUDA backend may store it as bf16
} weight_field;

// Every parameter slot of W with its size; NULL slots (absent in this architecture) are listed and skipped later.
static int list_weight_fields(const model_config *cfg, model_weights *w, weight_field *f) {
    size_t C = (size_t)cfg->n_embd, V = (size_t)cfg->vocab_size, P = (size_t)cfg->n_positions;
    size_t QKV = model_qkv_width(cfg), FC = model_fc_width(cfg), HS = C / (size_t)cfg->n_head;
    int n = 0;
    f[n++] = (weight_field){&w->wte, V * C, false};
    f[n++] = (weight_field){&w->wpe, P * C, false};
    f[n++] = (weight_field){&w->wtt, C, false};
    f[n++] = (weight_field){&w->emb_ln_w, C, false};
    f[n++] = (weight_field){&w->emb_ln_b, C, false};
    f[n++] = (weight_field){&w->lnf_w, C, false};
    f[n++] = (weight_field){&w->lnf_b, C, false};
    f[n++] = (weight_field){&w->lm_head, V * C, true};
    f[n++] = (weight_field){&w->rope_inv_freq, HS / 2, false};
    for (int l = 0; l < cfg->n_layer; l++) {
        layer_weights *lw = &w->layers[l];
        f[n++] = (weight_field){&lw->ln1_w, C, false};
        f[n++] = (weight_field){&lw->ln1_b, C, false};
        f[n++] = (weight_field){&lw->qkv_w, QKV * C, true};
        f[n++] = (weight_field){&lw->qkv_b, QKV, false};
        f[n++] = (weight_field){&lw->attn_proj_w, C * C, true};
        f[n++] = (weight_field){&lw->attn_proj_b, C, false};
        f[n++] = (weight_field){&lw->ln2_w, C, false};
        f[n++] = (weight_field){&lw->ln2_b, C, false};
        f[n++] = (weight_field){&lw->fc_w, C * FC, true};
        f[n++] = (weight_field){&lw->fc_b, FC, false};
        f[n++] = (weight_field){&lw->fc_proj_w, (size_t)cfg->n_inner * C, true};
        f[n++] = (weight_field){&lw->fc_proj_b, C, false};
    }
    return n;
}

#define GLOBAL_WEIGHT_FIELDS 9
#define LAYER_WEIGHT_FIELDS 12

av_status model_weights_upload(const av_model *model, av_backend *be, model_weights *dev) {
    *dev = model->w;
    dev->layers = av_malloc((size_t)model->cfg.n_layer * sizeof(layer_weights), "layer table");
    if (!dev->layers) return AV_ERROR_OUT_OF_MEMORY;
    memcpy(dev->layers, model->w.layers, (size_t)model->cfg.n_layer * sizeof(layer_weights));
    size_t count = GLOBAL_WEIGHT_FIELDS + (size_t)model->cfg.n_layer * LAYER_WEIGHT_FIELDS;
    weight_field *fields = av_malloc(count * sizeof *fields, "weight list");
    if (!fields) {
        model_weights_free(dev);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    int n = list_weight_fields(&model->cfg, dev, fields);
    av_status st = AV_SUCCESS;
    for (int i = 0; i < n && st == AV_SUCCESS; i++)
        if (*fields[i].slot)
            st = be->upload_tensor(be, fields[i].slot, *fields[i].slot, fields[i].numel, fields[i].matrix);
    free(fields);
    if (st != AV_SUCCESS) model_weights_free(dev);
    return st;
}

void model_parameter_bytes(const av_model *model, size_t *all, size_t *matrices) {
    size_t count = GLOBAL_WEIGHT_FIELDS + (size_t)model->cfg.n_layer * LAYER_WEIGHT_FIELDS;
    weight_field *fields = av_malloc(count * sizeof *fields, "weight list");
    *all = *matrices = 0;
    if (!fields) return;
    model_weights w = model->w; // list_weight_fields takes slots it could write; this copy keeps the model const
    int n = list_weight_fields(&model->cfg, &w, fields);
    for (int i = 0; i < n; i++) {
        if (!*fields[i].slot) continue;
        *all += fields[i].numel * sizeof(float);
        if (fields[i].matrix) *matrices += fields[i].numel * sizeof(float);
    }
    free(fields);
}

void model_weights_free(model_weights *w) {
    free(w->layers);
    w->layers = NULL;
}

void *model_carve(char **cursor, size_t bytes) {
    void *p = *cursor;
    *cursor += (bytes + 255) & ~(size_t)255;
    return p;
}

size_t model_qkv_width(const model_config *cfg) {
    return (size_t)cfg->n_embd + 2 * (size_t)cfg->n_kv_head * (size_t)(cfg->n_embd / cfg->n_head);
}

size_t model_fc_width(const model_config *cfg) {
    return (cfg->arch == AV_ARCH_LLAMA ? 2 : 1) * (size_t)cfg->n_inner;
}

size_t model_forward_bytes(const model_config *cfg, int T, int n_slots, int logits_rows) {
    size_t C = (size_t)cfg->n_embd, I = (size_t)cfg->n_inner, t = (size_t)T;
    size_t act = cfg->arch == AV_ARCH_LLAMA ? t * I : 0; // silu(gate) * up
    // x, ln, att, tmp (T, C); qkv (T, C + 2 KVC); fc (T, I) or (T, 2I); act; ids; probs (n_slots, T, T); logits
    size_t floats = 4 * t * C + t * model_qkv_width(cfg) + t * model_fc_width(cfg) + act + t +
                    (size_t)n_slots * t * t + (size_t)logits_rows * (size_t)cfg->vocab_size;
    return floats * sizeof(float) + 10 * 256; // alignment padding of the carved buffers
}

int model_probs_slots(const forward_request *req) {
    return req->plan && !req->device_reductions ? req->plan->n_slots : 0;
}

av_status model_emit_capture(av_backend *be, const forward_request *req, const float *probs, int l, int T) {
    if (req->device_reductions)
        return be->emit_reductions(be, l, req->plan->n_slots, T, req->reductions_sink, req->sink_user);
    return be->emit_probs(be, probs, l, req->plan->n_slots, T, req->sink, req->sink_user);
}

av_status model_report_progress(av_backend *be, const forward_request *req, int layers_done, int n_layers) {
    if (!req->progress) return AV_SUCCESS;
    AV_TRY(be->synchronize(be));
    req->progress(req->progress_user, layers_done, n_layers);
    return AV_SUCCESS;
}

// The embedding tables are read at ids[t] and at row t: both must be inside them, whatever the tokenizer produced
// (its vocabulary may be larger than the model's embedding table).
static av_status check_ids_and_length(const av_model *model, const forward_request *req) {
    const model_config *cfg = &model->cfg;
    if (req->T < 1) return av_fail(AV_ERROR_PROMPT, "%s: the prompt has no tokens", model->name);
    if (req->T > cfg->n_positions)
        return av_fail(AV_ERROR_PROMPT, "%s: the prompt has %d tokens, more than %s %d", model->name, req->T,
                       config_positions_key(cfg), cfg->n_positions);
    for (int t = 0; t < req->T; t++)
        if (req->ids[t] < 0 || req->ids[t] >= cfg->vocab_size)
            return av_fail(AV_ERROR_PROMPT, "%s: token %d has id %d outside the vocabulary (vocab_size %d)",
                           model->name, t, req->ids[t], cfg->vocab_size);
    return AV_SUCCESS;
}

static av_status decoder_alloc(av_backend *be, const model_config *cfg, const forward_request *req, void **block,
                               decoder_buffers *b) {
    size_t T = (size_t)req->T, C = (size_t)cfg->n_embd, I = (size_t)cfg->n_inner;
    int n_slots = model_probs_slots(req);
    int rows = req->logits ? req->logits_rows : 0;
    AV_TRY(be->alloc(be, block, model_forward_bytes(cfg, req->T, n_slots, rows), "activations"));
    char *cursor = *block;
    b->ids = model_carve(&cursor, T * sizeof(int32_t));
    b->x = model_carve(&cursor, T * C * sizeof(float));
    b->ln = model_carve(&cursor, T * C * sizeof(float));
    b->qkv = model_carve(&cursor, T * model_qkv_width(cfg) * sizeof(float));
    b->att = model_carve(&cursor, T * C * sizeof(float));
    b->tmp = model_carve(&cursor, T * C * sizeof(float));
    b->fc = model_carve(&cursor, T * model_fc_width(cfg) * sizeof(float));
    b->act = cfg->arch == AV_ARCH_LLAMA ? model_carve(&cursor, T * I * sizeof(float)) : NULL;
    b->probs = n_slots ? model_carve(&cursor, (size_t)n_slots * T * T * sizeof(float)) : NULL;
    b->logits = rows ? model_carve(&cursor, (size_t)rows * (size_t)cfg->vocab_size * sizeof(float)) : NULL;
    return AV_SUCCESS;
}

// The final hidden states (b->ln) to req->hidden, and the logits of the last rows to req->logits.
static av_status decoder_outputs(const model_config *cfg, av_backend *be, const model_weights *w,
                                 const decoder_buffers *b, const forward_request *req) {
    int T = req->T, C = cfg->n_embd;
    if (req->hidden) AV_TRY(be->download(be, req->hidden, b->ln, (size_t)T * C * sizeof(float)));
    if (!req->logits) return AV_SUCCESS;
    int rows = req->logits_rows;
    AV_TRY(be->matmul(be, b->logits, b->ln + (size_t)(T - rows) * C, w->lm_head, NULL, rows, C, cfg->vocab_size,
                      AV_WEIGHT_OUT_IN));
    return be->download(be, req->logits, b->logits, (size_t)rows * (size_t)cfg->vocab_size * sizeof(float));
}

static av_status decoder_run(const model_config *cfg, av_backend *be, const model_weights *w,
                             const decoder_buffers *b, const forward_request *req, const decoder_arch *arch) {
    int T = req->T;
    AV_TRY(be->upload(be, b->ids, req->ids, (size_t)T * sizeof(int32_t)));
    AV_TRY(be->embedding(be, b->x, b->ids, w->wte, w->wpe, NULL, T, cfg->n_embd));
    AV_TRY(model_report_progress(be, req, 0, cfg->n_layer));
    for (int l = 0; l < cfg->n_layer; l++) {
        bool capture = req->plan && req->plan->n_slots > 0 && req->plan->layer_on[l];
        AV_TRY(arch->block(cfg, be, w, &w->layers[l], b, T, capture, req, l));
        AV_TRY(model_report_progress(be, req, l + 1, cfg->n_layer));
    }
    AV_TRY(be->flush_probs(be));
    AV_TRY(arch->final_norm(cfg, be, w, b, T));
    return decoder_outputs(cfg, be, w, b, req);
}

av_status decoder_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req,
                          const decoder_arch *arch) {
    if (req->logits && (req->logits_rows < 1 || req->logits_rows > req->T))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "logits rows %d outside 1..%d", req->logits_rows, req->T);
    void *block = NULL;
    decoder_buffers b;
    AV_TRY(decoder_alloc(be, &model->cfg, req, &block, &b));
    av_status st = decoder_run(&model->cfg, be, w, &b, req, arch);
    be->release(be, block);
    return st;
}

av_status model_forward(const av_model *model, av_backend *be, const model_weights *w, const forward_request *req) {
    AV_TRY(check_ids_and_length(model, req));
    switch (model->cfg.arch) {
    case AV_ARCH_GPT2: return gpt2_forward(model, be, w, req);
    case AV_ARCH_BERT: return bert_forward(model, be, w, req);
    case AV_ARCH_LLAMA: return llama_forward(model, be, w, req);
    }
    return av_fail(AV_ERROR_INTERNAL, "unknown architecture %d", (int)model->cfg.arch);
}
