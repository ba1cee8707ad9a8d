// Fidelity of the CPU GPT-2 path against Hugging Face transformers (eager attention, float32) on the tiny random
// checkpoints written by weights/gen_gpt2_fixtures.py.
#include "model.h"
#include "support.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPTS 4

typedef struct expected_run {
    npy_array ids, attn, logits;
    int T;
} expected_run;

static expected_run load_expected(const char *name, int k) {
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

// The expected ids (int64 in the fixture) as the int32 the model takes; caller frees.
static int32_t *ids_of(const expected_run *e) {
    int32_t *ids = malloc((size_t)e->T * sizeof(int32_t));
    for (int t = 0; t < e->T; t++) ids[t] = (int32_t)((const int64_t *)e->ids.data)[t];
    return ids;
}

static void free_expected(expected_run *e) {
    npy_free(&e->ids);
    npy_free(&e->attn);
    npy_free(&e->logits);
}

// Collects every layer's probs (all heads) into one (L, NH, T, T) array, in the order the backend emits them.
typedef struct collected {
    float *all;
    int next_layer;
    int L, NH;
} collected;

static av_status collect_layer(void *user, int layer, const float *probs, int n_slots, int T) {
    collected *c = user;
    cr_assert_eq(layer, c->next_layer, "layers must arrive in order");
    cr_assert_eq(n_slots, c->NH);
    memcpy(c->all + (size_t)layer * n_slots * T * T, probs, (size_t)n_slots * T * T * sizeof(float));
    c->next_layer++;
    return AV_SUCCESS;
}

// Skips the causal upper triangle: those entries are masked (and must be exactly 0, checked separately).
static bool *causal_skip(int L, int NH, int T) {
    bool *skip = malloc((size_t)L * NH * T * T);
    for (size_t b = 0; b < (size_t)L * NH; b++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) skip[(b * T + i) * T + j] = j > i;
    return skip;
}

static void check_fixture(const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", AV_TEST_DATA_DIR, name);
    av_model *model;
    cr_assert_eq(av_model_load(&model, dir), AV_SUCCESS, "%s", av_last_error());
    const model_config *cfg = &model->cfg;
    av_backend *be;
    cr_assert_eq(backend_cpu_create(&be), AV_SUCCESS);
    model_weights w;
    cr_assert_eq(model_weights_upload(model, be, &w), AV_SUCCESS);
    capture_plan plan;
    cr_assert_eq(capture_plan_parse(&plan, cfg, "all", "all"), AV_SUCCESS);
    for (int k = 0; k < N_PROMPTS; k++) {
        expected_run e = load_expected(name, k);
        int T = e.T, L = cfg->n_layer, NH = cfg->n_head, V = cfg->vocab_size;
        cr_assert_eq(e.attn.shape[1], NH);
        int32_t *ids = ids_of(&e);
        collected c = {.all = malloc((size_t)L * NH * T * T * sizeof(float)), .L = L, .NH = NH};
        float *logits = malloc((size_t)T * V * sizeof(float));
        forward_request req = {.ids = ids, .T = T, .plan = &plan, .sink = collect_layer, .sink_user = &c,
                               .logits = logits, .logits_rows = T};
        cr_assert_eq(model_forward(model, be, &w, &req), AV_SUCCESS, "%s", av_last_error());
        cr_assert_eq(c.next_layer, L);
        bool *skip = causal_skip(L, NH, T);
        char what[128];
        snprintf(what, sizeof what, "%s prompt %d attentions", name, k);
        expect_close(what, c.all, (const float *)e.attn.data, e.attn.numel, 1e-5, 0.0, skip);
        for (size_t i = 0; i < e.attn.numel; i++)
            if (skip[i]) cr_assert(c.all[i] == 0.0f, "%s: masked entry %zu is %g, not 0", what, i, c.all[i]);
        snprintf(what, sizeof what, "%s prompt %d logits", name, k);
        // Relative error <= 1e-4 against the logits' scale (max |logit|): elementwise relative error is meaningless
        // for logits that cross zero.
        const float *want_logits = (const float *)e.logits.data;
        double scale = 0;
        for (size_t i = 0; i < e.logits.numel; i++) scale = fmax(scale, fabs(want_logits[i]));
        expect_close(what, logits, want_logits, e.logits.numel, 1e-4 * scale, 0.0, NULL);
        free(skip);
        free(logits);
        free(c.all);
        free(ids);
        free_expected(&e);
    }
    capture_plan_free(&plan);
    model_weights_free(&w);
    be->destroy(be);
    av_model_destroy(model);
}

Test(gpt2, float32_checkpoint_matches_hugging_face) { check_fixture("gpt2-tiny"); }

Test(gpt2, bf16_checkpoint_with_three_heads_matches_hugging_face) { check_fixture("gpt2-tiny-bf16"); }

Test(gpt2, sharded_fp16_checkpoint_with_five_heads_matches_hugging_face) { check_fixture("gpt2-tiny-sharded"); }

// Our tokenizer gives the ids Hugging Face's GPT2Tokenizer gave for the fixture prompts (incl. <|endoftext|>).
Test(gpt2, fixture_prompts_tokenize_like_hugging_face) {
    char *json;
    size_t len;
    cr_assert_eq(av_read_file(FIXTURE("gpt2-tiny-expected/prompts.json"), &json, &len), AV_SUCCESS);
    cJSON *prompts = cJSON_Parse(json);
    av_model *model;
    cr_assert_eq(av_model_load(&model, FIXTURE("gpt2-tiny")), AV_SUCCESS, "%s", av_last_error());
    for (int k = 0; k < cJSON_GetArraySize(prompts); k++) {
        const char *text = cJSON_GetArrayItem(prompts, k)->valuestring;
        expected_run e = load_expected("gpt2-tiny", k);
        token_list t;
        cr_assert_eq(tokenizer_encode(model->tok, text, strlen(text), &t), AV_SUCCESS);
        cr_assert_eq(t.n, e.T, "prompt %d: %d tokens, expected %d", k, t.n, e.T);
        for (int i = 0; i < t.n; i++)
            cr_assert_eq(t.ids[i], ((int64_t *)e.ids.data)[i], "prompt %d token %d", k, i);
        token_list_free(&t);
        free_expected(&e);
    }
    av_model_destroy(model);
    cJSON_Delete(prompts);
    free(json);
}

// Capturing a subset writes only those heads, in slot order, with the same values as a full capture.
static float *subset_probs;
static av_status keep_subset(void *user, int layer, const float *probs, int n_slots, int T) {
    if (layer == 1) {
        subset_probs = malloc((size_t)n_slots * T * T * sizeof(float));
        memcpy(subset_probs, probs, (size_t)n_slots * T * T * sizeof(float));
    }
    *(int *)user += 1;
    return AV_SUCCESS;
}

// gpt2-tiny loaded, with its parameters on the CPU backend.
typedef struct cpu_model {
    av_model *model;
    av_backend *be;
    model_weights w;
} cpu_model;

static cpu_model cpu_model_load(void) {
    cpu_model m;
    cr_assert_eq(av_model_load(&m.model, FIXTURE("gpt2-tiny")), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(backend_cpu_create(&m.be), AV_SUCCESS);
    cr_assert_eq(model_weights_upload(m.model, m.be, &m.w), AV_SUCCESS);
    return m;
}

static void cpu_model_free(cpu_model *m) {
    model_weights_free(&m->w);
    m->be->destroy(m->be);
    av_model_destroy(m->model);
}

Test(gpt2, selected_layers_and_heads_are_the_only_ones_kept) {
    cpu_model m = cpu_model_load();
    capture_plan plan;
    cr_assert_eq(capture_plan_parse(&plan, &m.model->cfg, "1", "1,3"), AV_SUCCESS);
    cr_assert_eq(plan.n_layers, 1);
    cr_assert_eq(plan.n_slots, 2);
    expected_run e = load_expected("gpt2-tiny", 0);
    int T = e.T, NH = m.model->cfg.n_head;
    int32_t *ids = ids_of(&e);
    int layers_seen = 0;
    forward_request req = {.ids = ids, .T = T, .plan = &plan, .sink = keep_subset, .sink_user = &layers_seen};
    cr_assert_eq(model_forward(m.model, m.be, &m.w, &req), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(layers_seen, 1);
    const float *want = (const float *)e.attn.data;
    size_t TT = (size_t)T * T;
    expect_close("layer 1 head 1", subset_probs, want + (1 * (size_t)NH + 1) * TT, TT, 1e-5, 0, NULL);
    expect_close("layer 1 head 3", subset_probs + TT, want + (1 * (size_t)NH + 3) * TT, TT, 1e-5, 0, NULL);
    free(subset_probs);
    free(ids);
    free_expected(&e);
    capture_plan_free(&plan);
    cpu_model_free(&m);
}

Test(gpt2, capture_lists_out_of_range_or_malformed_are_refused) {
    model_config cfg = {.n_layer = 12, .n_head = 12};
    capture_plan plan;
    cr_assert_eq(capture_plan_parse(&plan, &cfg, "12", "all"), AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "layer 12 out of range"), "%s", av_last_error());
    cr_assert_eq(capture_plan_parse(&plan, &cfg, "all", "3-1"), AV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(capture_plan_parse(&plan, &cfg, "1,", "all"), AV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(capture_plan_parse(&plan, &cfg, "x", "all"), AV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(capture_plan_parse(&plan, &cfg, "0,2-4,11", "5"), AV_SUCCESS);
    cr_assert_eq(plan.n_layers, 5);
    cr_assert_eq(plan.n_slots, 1);
    cr_assert_eq(plan.head_slot[5], 0);
    cr_assert_eq(plan.head_slot[4], -1);
    capture_plan_free(&plan);
}

// The embedding table is read at every id: one outside it (a tokenizer larger than the model) fails the forward
// pass before anything runs, naming the token and the id.
Test(gpt2, ids_outside_the_vocabulary_fail_in_forward) {
    cpu_model m = cpu_model_load();
    int V = m.model->cfg.vocab_size;
    const int32_t bad[][3] = {{1, V, 2}, {-1, 1, 2}};
    const char *want[] = {"token 1 has id 1157 outside", "token 0 has id -1 outside"};
    for (int i = 0; i < 2; i++) {
        forward_request req = {.ids = bad[i], .T = 3};
        cr_assert_eq(model_forward(m.model, m.be, &m.w, &req), AV_ERROR_PROMPT, "case %d ran", i);
        cr_assert(strstr(av_last_error(), want[i]), "%s", av_last_error());
    }
    cpu_model_free(&m);
}
