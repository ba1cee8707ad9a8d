// Fidelity of the CPU path for the Llama family (RMSNorm, rotary positions, grouped-query attention, SwiGLU) against
// Hugging Face transformers (eager attention, float32) on the tiny random checkpoints written by
// weights/gen_llama_fixtures.py: LlamaForCausalLM with two and one key/value heads, Llama 3.1's rope scaling and a
// tied LM head, and Qwen2ForCausalLM with its q, k and v biases.
#include "model.h"
#include "support.h"
#include "support_model.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPTS 4

Test(llama, float32_checkpoint_with_grouped_query_attention_matches_hugging_face) {
    expect_fixture_matches_hugging_face("llama-tiny", N_PROMPTS);
}

Test(llama, bf16_checkpoint_with_one_kv_head_llama3_rope_and_tied_head_matches_hugging_face) {
    expect_fixture_matches_hugging_face("llama-tiny-llama3rope", N_PROMPTS);
}

Test(llama, qwen2_fp16_checkpoint_with_qkv_biases_matches_hugging_face) {
    expect_fixture_matches_hugging_face("qwen2-tiny", N_PROMPTS);
}

Test(llama, bf16_checkpoint_with_heads_of_64_matches_hugging_face) {
    expect_fixture_matches_hugging_face("llama-tiny-hs64", N_PROMPTS);
}

Test(llama, fixture_prompts_tokenize_like_hugging_face) {
    expect_fixture_prompts_tokenize_like_hugging_face("llama-tiny");
    expect_fixture_prompts_tokenize_like_hugging_face("qwen2-tiny");
}

// The rotary frequencies of plain RoPE (theta 1e4 and 1e6) and of Llama 3.1's scaling (every branch: kept, divided
// and blended at these sizes) are the ones transformers computed, to float32 rounding.
Test(llama, rotary_frequencies_match_hugging_face) {
    const char *names[] = {"llama-tiny", "llama-tiny-llama3rope", "qwen2-tiny"};
    for (int f = 0; f < 3; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", AV_TEST_DATA_DIR, names[f]);
        av_model *model;
        cr_assert_eq(av_model_load(&model, path), AV_SUCCESS, "%s", av_last_error());
        snprintf(path, sizeof path, "%s/%s-expected/inv_freq.npy", AV_TEST_DATA_DIR, names[f]);
        npy_array want = npy_load(path);
        int half = model->cfg.n_embd / model->cfg.n_head / 2;
        cr_assert_eq(want.numel, (size_t)half);
        expect_close(names[f], model->w.rope_inv_freq, (const float *)want.data, want.numel, 0.0, 4e-7, NULL);
        npy_free(&want);
        av_model_destroy(model);
    }
}
