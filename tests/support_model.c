#include "support_model.h"

#include "half.h"
#include "support.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float *bf16_rounded_copy(const float *x, size_t n) {
    float *r = malloc(n * sizeof(float));
    cr_assert(r, "out of memory");
    for (size_t i = 0; i < n; i++) r[i] = av_bf16_to_f32(av_f32_to_bf16(x[i]));
    return r;
}

av_status bf16_cpu_matmul(av_backend *be, float *out, const float *inp, const float *weight, const float *bias, int T,
                          int C, int OC, av_weight_layout layout) {
    (void)be;
    float *inp16 = bf16_rounded_copy(inp, (size_t)T * C), *weight16 = bf16_rounded_copy(weight, (size_t)C * OC);
    av_matmul_cpu(out, inp16, weight16, bias, T, C, OC, layout);
    free(inp16);
    free(weight16);
    return AV_SUCCESS;
}

static av_status collect_layer(void *user, int layer, const float *probs, int n_slots, int T) {
    model_outputs *o = user;
    cr_assert_eq(layer, o->next_layer, "layer %d arrived, expected %d", layer, o->next_layer);
    size_t n = (size_t)n_slots * T * T;
    memcpy(o->probs + (size_t)layer * n, probs, n * sizeof(float));
    o->next_layer++;
    return AV_SUCCESS;
}

model_outputs run_model_captured(const av_model *model, av_backend *be, const int32_t *ids, int T, int *head_slot,
                                 int n_slots) {
    const model_config *cfg = &model->cfg;
    model_weights w;
    AV_OK(model_weights_upload(model, be, &w));
    bool layer_on[64];
    cr_assert_leq(cfg->n_layer, 64);
    for (int l = 0; l < cfg->n_layer; l++) layer_on[l] = true;
    capture_plan plan = {.layer_on = layer_on, .head_slot = head_slot, .n_layers = cfg->n_layer, .n_slots = n_slots};
    model_outputs o = {
        .probs = malloc((size_t)cfg->n_layer * n_slots * T * T * sizeof(float)),
        .logits = malloc((size_t)T * cfg->vocab_size * sizeof(float)),
    };
    cr_assert(o.probs && o.logits, "out of memory");
    forward_request req = {.ids = ids, .T = T, .plan = &plan, .sink = collect_layer, .sink_user = &o,
                           .logits = o.logits, .logits_rows = T};
    AV_OK(model_forward(model, be, &w, &req));
    cr_assert_eq(o.next_layer, cfg->n_layer, "%s: %d of %d layers reached the sink", be->name, o.next_layer,
                 cfg->n_layer);
    model_weights_free(&w);
    return o;
}

model_outputs run_model_all_heads(const av_model *model, av_backend *be, const int32_t *ids, int T) {
    int head_slot[256];
    cr_assert_leq(model->cfg.n_head, 256);
    for (int h = 0; h < model->cfg.n_head; h++) head_slot[h] = h;
    return run_model_captured(model, be, ids, T, head_slot, model->cfg.n_head);
}

void model_outputs_free(model_outputs *o) {
    free(o->probs);
    free(o->logits);
}

expected_run expected_run_load(const char *name, int k) {
    char path[512];
    expected_run e;
    snprintf(path, sizeof path, "%s/%s-expected/p%d_ids.npy", AV_TEST_DATA_DIR, name, k);
    e.ids = npy_load(path);
    snprintf(path, sizeof path, "%s/%s-expected/p%d_attn.npy", AV_TEST_DATA_DIR, name, k);
    e.attn = npy_load(path);
    snprintf(path, sizeof path, "%s/%s-expected/p%d_logits.npy", AV_TEST_DATA_DIR, name, k);
    e.logits = npy_load(path);
    e.T = (int)e.ids.shape[0];
    return e;
}

int32_t *expected_run_ids(const expected_run *e) {
    int32_t *ids = malloc((size_t)e->T * sizeof(int32_t));
    cr_assert(ids, "out of memory");
    for (int t = 0; t < e->T; t++) ids[t] = (int32_t)((const int64_t *)e->ids.data)[t];
    return ids;
}

void expected_run_free(expected_run *e) {
    npy_free(&e->ids);
    npy_free(&e->attn);
    npy_free(&e->logits);
}

// The upper triangle of every (T, T) block of n_blocks (masked in causal attention).
static bool *upper_triangles(size_t n_blocks, int T) {
    bool *skip = malloc(n_blocks * T * T);
    cr_assert(skip, "out of memory");
    for (size_t b = 0; b < n_blocks; b++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) skip[(b * T + i) * T + j] = j > i;
    return skip;
}

static void expect_prompt_matches(const char *name, int k, const av_model *model, av_backend *be) {
    const model_config *cfg = &model->cfg;
    expected_run e = expected_run_load(name, k);
    int T = e.T, L = cfg->n_layer, NH = cfg->n_head;
    cr_assert_eq(e.attn.shape[0], L);
    cr_assert_eq(e.attn.shape[1], NH);
    int32_t *ids = expected_run_ids(&e);
    model_outputs o = run_model_all_heads(model, be, ids, T);
    bool *skip = config_is_causal(cfg) ? upper_triangles((size_t)L * NH, T) : NULL;
    char what[160];
    snprintf(what, sizeof what, "%s prompt %d attentions", name, k);
    expect_close(what, o.probs, (const float *)e.attn.data, e.attn.numel, 1e-5, 0.0, skip);
    for (size_t i = 0; skip && i < e.attn.numel; i++)
        if (skip[i]) cr_assert(o.probs[i] == 0.0f, "%s: masked entry %zu is %g, not 0", what, i, o.probs[i]);
    snprintf(what, sizeof what, "%s prompt %d logits", name, k);
    const float *want_logits = (const float *)e.logits.data;
    expect_close(what, o.logits, want_logits, e.logits.numel, 1e-4 * max_abs(want_logits, e.logits.numel), 0.0,
                 NULL);
    free(skip);
    model_outputs_free(&o);
    free(ids);
    expected_run_free(&e);
}

void expect_fixture_matches_hugging_face(const char *name, int n_prompts) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", AV_TEST_DATA_DIR, name);
    av_model *model;
    cr_assert_eq(av_model_load(&model, dir), AV_SUCCESS, "%s", av_last_error());
    av_backend *be;
    AV_OK(backend_cpu_create(&be));
    for (int k = 0; k < n_prompts; k++) expect_prompt_matches(name, k, model, be);
    be->destroy(be);
    av_model_destroy(model);
}

void expect_fixture_prompts_tokenize_like_hugging_face(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s-expected/prompts.json", AV_TEST_DATA_DIR, name);
    char *json;
    size_t len;
    AV_OK(av_read_file(path, &json, &len));
    cJSON *prompts = cJSON_Parse(json);
    cr_assert(cJSON_IsArray(prompts), "%s: not a JSON array", path);
    snprintf(path, sizeof path, "%s/%s", AV_TEST_DATA_DIR, name);
    av_model *model;
    cr_assert_eq(av_model_load(&model, path), AV_SUCCESS, "%s", av_last_error());
    for (int k = 0; k < cJSON_GetArraySize(prompts); k++) {
        const char *text = cJSON_GetArrayItem(prompts, k)->valuestring;
        expected_run e = expected_run_load(name, k);
        token_list t;
        AV_OK(tokenizer_encode(model->tok, text, strlen(text), &t));
        cr_assert_eq(t.n, e.T, "%s prompt %d: %d tokens, expected %d", name, k, t.n, e.T);
        for (int i = 0; i < t.n; i++)
            cr_assert_eq(t.ids[i], ((int64_t *)e.ids.data)[i], "%s prompt %d token %d", name, k, i);
        token_list_free(&t);
        expected_run_free(&e);
    }
    av_model_destroy(model);
    cJSON_Delete(prompts);
    free(json);
}

double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

void expect_close_but_outliers(const char *what, const float *got, const float *want, size_t n, double atol,
                               double rtol, double outliers, double max_atol) {
    if (outliers == 0.0) {
        expect_close(what, got, want, n, atol, rtol, NULL);
        return;
    }
    compare_result r = compare_f32(got, want, n, atol, rtol, NULL);
    cr_log_info("%s: %zu of %zu entries past atol %.1g rtol %.1g, max abs err %.3g", what, r.failures, r.compared,
                atol, rtol, r.max_abs);
    cr_assert_leq((double)r.failures, outliers * (double)r.compared,
                  "%s: %zu of %zu entries past atol %.1g rtol %.1g (max abs err %.3g)", what, r.failures, r.compared,
                  atol, rtol, r.max_abs);
    expect_close(what, got, want, n, max_atol, 0.0, NULL);
}
