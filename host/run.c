// av_run: prompt -> tokens -> forward with capture -> meta.json, .npy dumps and PNG heatmaps, written atomically.
#include "attnviz.h"
#include "layer_writer.h"
#include "model.h"
#include "output_dir.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void av_run_options_default(av_run_options *o) {
    *o = (av_run_options){.device = "auto",
                          .layers = "all",
                          .heads = "all",
                          .dtype = "fp32",
                          .attn_dtype = "fp32",
                          .png = "all",
                          .capture = "full",
                          .packed_causal = 0,
                          .max_memory = 0,
                          .top_k = 5,
                          .attention = "auto",
                          .viewer_bytes = (size_t)64 << 20};
}

static av_status parse_choice(const char *value, const char *option, const char *const *names, int *out) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(value, names[i])) {
            *out = i;
            return AV_SUCCESS;
        }
    return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: expected one of %s%s%s%s%s", option, value, names[0],
                   names[1] ? ", " : "", names[1] ? names[1] : "", names[1] && names[2] ? ", " : "",
                   names[1] && names[2] ? names[2] : "");
}

static av_status parse_backend_options(const av_run_options *o, backend_options *bo, png_mode *png) {
    static const char *const compute[] = {"fp32", "bf16", NULL};
    static const char *const attn[] = {"fp32", "fp16", "bf16", NULL};
    static const char *const pngs[] = {"all", "mean", "none", NULL};
    static const char *const kernels[] = {"auto", "plain", "flash", NULL}; // av_attention_choice order
    int c, a, p, k;
    AV_TRY(parse_choice(o->dtype, "--dtype", compute, &c));
    AV_TRY(parse_choice(o->attn_dtype, "--attn-dtype", attn, &a));
    AV_TRY(parse_choice(o->png, "--png", pngs, &p));
    AV_TRY(parse_choice(o->attention ? o->attention : "auto", "--attention", kernels, &k));
    bo->compute = (av_compute_dtype)c;
    bo->attn = (av_attn_dtype)a;
    bo->attention = (av_attention_choice)k;
    *png = (png_mode)p;
    return AV_SUCCESS;
}

static av_status tokenize_prompt(const av_model *m, const char *prompt, size_t len, token_list *tokens) {
    if (len == 0) return av_fail(AV_ERROR_PROMPT, "empty prompt");
    // meta.json and viewer.html hold the prompt as text, which a NUL byte would cut short.
    const char *nul = memchr(prompt, '\0', len);
    if (nul)
        return av_fail(AV_ERROR_PROMPT, "the prompt holds a NUL byte at offset %td (attnviz takes text)", nul - prompt);
    AV_TRY(tokenizer_encode(m->tok, prompt, len, tokens));
    if (tokens->n == 0) return av_fail(AV_ERROR_PROMPT, "the prompt has no tokens");
    if (tokens->n > m->cfg.n_positions)
        return av_fail(AV_ERROR_PROMPT, "prompt is %d tokens, longer than the %d positions %s allows (no truncation)",
                       tokens->n, m->cfg.n_positions, m->name);
    return AV_SUCCESS;
}

static double gib(size_t bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

// Refuses, before anything large is allocated, a run whose buffers would not fit. DEVICE_REDUCTIONS: no P per layer
// on the backend; only the compact reductions (counted by extra_bytes) stream through the pinned double buffer.
static av_status check_memory(av_backend *be, const av_model *m, const capture_plan *plan,
                              const capture_kinds *kinds, png_mode png, bool viewer, int T, int logits_rows,
                              size_t max_memory, bool device_reductions) {
    const model_config *c = &m->cfg;
    av_reduction_request reductions = capture_kinds_reductions(kinds, T);
    size_t layer = device_reductions ? 0 : capture_plan_layer_bytes(plan, T);
    size_t streamed = device_reductions ? av_reduction_layout_of(&reductions, plan->n_slots, T).floats * sizeof(float)
                                        : layer;
    size_t params, matrices;
    model_parameter_bytes(m, &params, &matrices);
    size_t need = model_forward_bytes(c, T, device_reductions ? 0 : plan->n_slots, logits_rows) +
                  be->extra_bytes(be, T, c->n_embd, c->n_head, c->n_inner, params, matrices);
    size_t host_need = layer_writer_bytes(kinds, plan->n_slots, T, png, viewer); // reductions and head means
    if (strcmp(be->name, "cpu")) host_need += 2 * streamed;                       // the pinned double buffer
    else need += host_need;
    size_t avail = max_memory;
    if (!avail) AV_TRY(be->memory_available(be, &avail));
    if (need > avail && device_reductions)
        return av_fail(AV_ERROR_OUT_OF_MEMORY,
                       "run needs %.2f GiB on the %s backend (reductions computed there, no %d^2 attention per "
                       "layer) but %.2f GiB is available; shorten the prompt or capture smaller reductions",
                       gib(need), be->name, T, gib(avail));
    if (need > avail)
        return av_fail(AV_ERROR_OUT_OF_MEMORY,
                       "run needs %.2f GiB on the %s backend (%.2f GiB of it for %d heads x %d^2 attention per "
                       "layer) but %.2f GiB is available; capture fewer heads (--heads) or layers, or shorten the "
                       "prompt",
                       gib(need), be->name, gib(layer), plan->n_slots, T, gib(avail));
    if (strcmp(be->name, "cpu")) {
        size_t host_avail = max_memory;
        if (!host_avail) AV_TRY(host_memory_available(&host_avail));
        if (host_need > host_avail)
            return av_fail(AV_ERROR_OUT_OF_MEMORY,
                           "run needs %.2f GiB of host memory for streaming attention out but %.2f GiB is available; "
                           "capture fewer heads (--heads)",
                           gib(host_need), gib(host_avail));
    }
    return AV_SUCCESS;
}

static cJSON *int_array(const int *values, int n) { return cJSON_CreateIntArray(values, n); }

static cJSON *model_json(const av_model *m) {
    const model_config *c = &m->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", m->name);
    cJSON_AddStringToObject(j, "dir", m->dir);
    cJSON_AddStringToObject(j, "model_type", c->model_type);
    cJSON_AddStringToObject(j, "tokenizer", m->tok->kind);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNumberToObject(j, "n_kv_head", c->n_kv_head);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_inner", c->n_inner);
    cJSON_AddNumberToObject(j, "n_positions", c->n_positions);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    return j;
}

static cJSON *tokens_json(const token_list *t, cJSON *meta) {
    cJSON_AddItemToObject(meta, "ids", int_array(t->ids, t->n));
    cJSON *display = cJSON_CreateArray(), *offsets = cJSON_CreateArray();
    for (int i = 0; i < t->n; i++) {
        cJSON_AddItemToArray(display, cJSON_CreateString(t->display[i]));
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)t->starts[i]));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)t->ends[i]));
        cJSON_AddItemToArray(offsets, pair);
    }
    cJSON_AddItemToObject(meta, "tokens", display);
    cJSON_AddItemToObject(meta, "offsets", offsets);
    return meta;
}

// REDUCTIONS: which path computed rows, colsum, pool, headmean and groupmean (reductions_site).
static cJSON *capture_json(const av_model *m, const capture_plan *plan, const capture_kinds *kinds,
                           const av_run_options *o, int T, const char *reductions) {
    cJSON *j = cJSON_CreateObject();
    capture_plan_add_json(j, plan, &m->cfg);
    cJSON_AddItemToObject(j, "kinds", capture_kinds_json(kinds, T));
    if (capture_kinds_reduce(kinds)) cJSON_AddStringToObject(j, "reductions", reductions);
    cJSON_AddBoolToObject(j, "causal", config_is_causal(&m->cfg));
    cJSON_AddStringToObject(j, "array_dtype", "float32");
    cJSON_AddStringToObject(j, "device_dtype", o->attn_dtype);
    cJSON_AddStringToObject(j, "png", o->png);
    return j;
}

// Top-k next tokens from the last position's logits (V), probabilities by a float64 softmax.
static cJSON *next_token_json(const av_model *m, const float *logits, int k) {
    int V = m->cfg.vocab_size;
    double max = -INFINITY, sum = 0.0;
    for (int v = 0; v < V; v++) max = fmax(max, logits[v]);
    for (int v = 0; v < V; v++) sum += exp(logits[v] - max);
    cJSON *list = cJSON_CreateArray();
    int *taken = calloc((size_t)k, sizeof(int));
    for (int r = 0; r < k && r < V && taken; r++) {
        int best = -1;
        for (int v = 0; v < V; v++) {
            bool used = false;
            for (int q = 0; q < r; q++) used |= taken[q] == v;
            if (!used && (best < 0 || logits[v] > logits[best])) best = v;
        }
        taken[r] = best;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "id", best);
        char *text = NULL;
        size_t len;
        if (tokenizer_decode(m->tok, &best, 1, &text, &len) == AV_SUCCESS) {
            char *display = token_display_string(text, len); // a lone token can be half a UTF-8 character
            if (display) cJSON_AddStringToObject(item, "token", display);
            free(display);
        }
        free(text);
        cJSON_AddNumberToObject(item, "prob", exp(logits[best] - max) / sum);
        cJSON_AddItemToArray(list, item);
    }
    free(taken);
    return list;
}

typedef struct run_state {
    av_model *model;
    const av_run_options *options;
    backend_options backend;
    png_mode png;
    capture_kinds kinds;
    token_list tokens;
    capture_plan plan;
    av_backend *be;
    const char *attention_kernel; // "flash", "plain" or "reference", as the backend reports it
    bool device_reductions;       // the backend's attention computes the reductions; full P never reaches the host
    model_weights weights;
    bool weights_ready;
    char *tmp;
    layer_writer writer;
    viewer_file viewer;
    bool viewer_on; // something is captured and options->viewer_bytes is not 0
    float *logits; // (V) last position, causal LMs only
    double ms_tokenize, ms_forward;
} run_state;

// "host": from each layer's full P after attention; "device": by the CUDA flash kernels; "attention": by the CPU's
// attention, block of query rows by block (neither of the last two ever holds a captured head's full P).
static const char *reductions_site(const run_state *s) {
    if (!s->device_reductions) return "host";
    return strcmp(s->be->name, "cpu") ? "device" : "attention";
}

static av_status write_meta(run_state *s, const char *prompt, size_t len) {
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "attnviz_version", av_version());
    cJSON_AddItemToObject(meta, "model", model_json(s->model));
    cJSON_AddStringToObject(meta, "device", s->be->name);
    cJSON_AddStringToObject(meta, "dtype", s->options->dtype);
    cJSON_AddStringToObject(meta, "attention_kernel", s->attention_kernel);
    char *text = av_malloc(len + 1, "prompt copy");
    if (!text) {
        cJSON_Delete(meta);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    memcpy(text, prompt, len);
    text[len] = '\0';
    cJSON_AddStringToObject(meta, "prompt", text);
    free(text);
    cJSON_AddNumberToObject(meta, "n_tokens", s->tokens.n);
    tokens_json(&s->tokens, meta);
    cJSON_AddItemToObject(meta, "captured", capture_json(s->model, &s->plan, &s->kinds, s->options, s->tokens.n,
                                                             reductions_site(s)));
    if (s->logits) cJSON_AddItemToObject(meta, "next_token", next_token_json(s->model, s->logits, s->options->top_k));
    cJSON *timing = cJSON_CreateObject();
    cJSON_AddNumberToObject(timing, "tokenize", s->ms_tokenize);
    cJSON_AddNumberToObject(timing, "forward_and_write", s->ms_forward);
    cJSON_AddItemToObject(meta, "timing_ms", timing);
    cJSON_AddItemToArray(s->writer.files, cJSON_CreateString("meta.json"));
    cJSON_AddItemToObject(meta, "files", s->writer.files);
    s->writer.files = NULL; // owned by meta now
    char *json = cJSON_Print(meta);
    cJSON_Delete(meta);
    if (!json) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory writing meta.json");
    char *path = av_path_join(s->tmp, "meta.json");
    FILE *f = path ? fopen(path, "w") : NULL;
    bool ok = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF;
    if (f) ok = (fclose(f) == 0) && ok;
    free(json);
    av_status st = ok ? AV_SUCCESS : av_fail(AV_ERROR_IO, "%s: cannot write", path ? path : "meta.json");
    free(path);
    return st;
}

// Hands the reductions to the backend when the host needs no full P: full is not captured (PNGs of full maps come
// only with it). The backend may still decline (the CUDA plain path, or head and group means of a head subset on the
// flash path); then the host reduces full P as usual.
static av_status choose_reductions(run_state *s) {
    const capture_kinds *k = &s->kinds;
    const model_config *cfg = &s->model->cfg;
    if (!capture_kinds_reduce(k) || k->full || s->plan.n_slots == 0 || !s->be->set_reductions) return AV_SUCCESS;
    av_reduction_request request = capture_kinds_reductions(k, s->tokens.n);
    request.every_head = s->plan.n_slots == cfg->n_head;
    return s->be->set_reductions(s->be, &request, cfg->n_embd, cfg->n_head, &s->device_reductions);
}

static av_status run_forward(run_state *s) {
    const model_config *cfg = &s->model->cfg;
    int T = s->tokens.n;
    bool next_token = config_is_causal(cfg) && s->options->top_k > 0;
    AV_TRY(backend_create(&s->be, s->options->device, &s->backend));
    AV_TRY(s->be->attention_kernel(s->be, cfg->n_embd, cfg->n_head, &s->attention_kernel));
    AV_TRY(choose_reductions(s));
    AV_TRY(check_memory(s->be, s->model, &s->plan, &s->kinds, s->png, s->viewer_on, T, next_token,
                        s->options->max_memory, s->device_reductions));
    if (next_token && !(s->logits = av_malloc((size_t)cfg->vocab_size * sizeof(float), "logits")))
        return AV_ERROR_OUT_OF_MEMORY;
    AV_TRY(model_weights_upload(s->model, s->be, &s->weights));
    s->weights_ready = true;
    forward_request req = {.ids = s->tokens.ids,
                           .T = T,
                           .plan = &s->plan,
                           .sink = layer_writer_write,
                           .sink_user = &s->writer,
                           .device_reductions = s->device_reductions,
                           .reductions_sink = layer_writer_write_reduced,
                           .logits = s->logits,
                           .logits_rows = next_token ? 1 : 0,
                           .progress = s->options->progress,
                           .progress_user = s->options->progress_user};
    return model_forward(s->model, s->be, &s->weights, &req);
}

static av_status run_steps(run_state *s, const char *prompt, size_t len, const char *out_dir) {
    AV_TRY(parse_backend_options(s->options, &s->backend, &s->png));
    double t0 = av_now_ms();
    AV_TRY(tokenize_prompt(s->model, prompt, len, &s->tokens));
    s->ms_tokenize = av_now_ms() - t0;
    AV_TRY(capture_plan_parse(&s->plan, &s->model->cfg, s->options->layers, s->options->heads));
    AV_TRY(capture_kinds_parse(&s->kinds, s->options->capture, s->options->packed_causal, &s->model->cfg,
                               &s->plan));
    static const char *const subdirs[] = {"attention", "heatmaps", NULL};
    AV_TRY(output_dir_begin(out_dir, subdirs, &s->tmp));
    s->viewer_on = s->plan.n_slots > 0 && s->options->viewer_bytes > 0;
    if (s->viewer_on) {
        const capture_kinds *k = &s->kinds;
        viewer_content content = {.full = k->full,
                                  .rows = capture_kinds_reductions(k, s->tokens.n).rows,
                                  .colmean = k->colsum,
                                  .headmean = k->headmean && !k->full,
                                  .group_size = k->groupmean ? k->group_size : 0};
        AV_TRY(viewer_begin(&s->viewer, s->tmp, s->model, prompt, len, &s->tokens, &s->plan, &content,
                            s->options->viewer_bytes));
    }
    AV_TRY(layer_writer_init(&s->writer, s->model, &s->tokens, &s->plan, &s->kinds, s->png,
                             s->viewer_on ? &s->viewer : NULL, s->tmp));
    t0 = av_now_ms();
    AV_TRY(run_forward(s));
    s->ms_forward = av_now_ms() - t0;
    if (s->viewer_on) {
        AV_TRY(viewer_end(&s->viewer, s->writer.files));
        cJSON_AddItemToArray(s->writer.files, cJSON_CreateString("viewer.html"));
    }
    AV_TRY(write_meta(s, prompt, len));
    return output_dir_commit(s->tmp, out_dir);
}

av_status av_run(av_model *model, const char *prompt, size_t len, const av_run_options *options,
                 const char *out_dir) {
    run_state s = {.model = model, .options = options};
    av_status st = run_steps(&s, prompt, len, out_dir);
    if (st != AV_SUCCESS && s.tmp) output_dir_abort(s.tmp);
    if (s.weights_ready) model_weights_free(&s.weights);
    if (s.be) s.be->destroy(s.be);
    layer_writer_free(&s.writer);
    viewer_free(&s.viewer);
    free(s.logits);
    free(s.tmp);
    capture_plan_free(&s.plan);
    token_list_free(&s.tokens);
    return st;
}
