// Fidelity of the CPU GPT-2 path against Hugging Face transformers (eager attention, float32) on the tiny random
// checkpoints written by weights/gen_gpt2_fixtures.py, and the model-level behaviour around it.
#include "model.h"
#include "support.h"
#include "support_model.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPTS 4

Test(gpt2, float32_checkpoint_matches_hugging_face) { expect_fixture_matches_hugging_face("gpt2-tiny", N_PROMPTS); }

Test(gpt2, bf16_checkpoint_with_three_heads_matches_hugging_face) { expect_fixture_matches_hugging_face("gpt2-tiny-bf16", N_PROMPTS); }

Test(gpt2, sharded_fp16_checkpoint_with_five_heads_matches_hugging_face) {
    expect_fixture_matches_hugging_face("gpt2-tiny-sharded", N_PROMPTS);
}

// Our tokenizer gives the ids Hugging Face's GPT2Tokenizer gave for the fixture prompts (incl. <|endoftext|>).
Test(gpt2, fixture_prompts_tokenize_like_hugging_face) { expect_fixture_prompts_tokenize_like_hugging_face("gpt2-tiny"); }

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
    expected_run e = expected_run_load("gpt2-tiny", 0);
    int T = e.T, NH = m.model->cfg.n_head;
    int32_t *ids = expected_run_ids(&e);
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
    expected_run_free(&e);
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
