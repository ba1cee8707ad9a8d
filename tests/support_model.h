// Model-level helpers shared by the GPU model tests (test_cuda_model.c, test_cuda_flash.c): the CPU reference of
// bf16 products, whole forward passes with every layer captured, and bounds that allow a few rounding flips.
#ifndef AV_TEST_SUPPORT_MODEL_H
#define AV_TEST_SUPPORT_MODEL_H

#include "backend.h"
#include "model.h"
#include "support.h"

// x (N) rounded to bf16, as float32 (malloc'ed).
float *bf16_rounded_copy(const float *x, size_t n);
// The CPU matmul on bf16-rounded operands: the reference for the GPU's --dtype bf16 products. Same signature as a
// backend's matmul, so a CPU backend can take it in place of its own.
av_status bf16_cpu_matmul(av_backend *be, float *out, const float *inp, const float *weight, const float *bias, int T,
                          int C, int OC, av_weight_layout layout);

typedef struct model_outputs {
    float *probs;  // (L, n_slots, T, T)
    float *logits; // (T, V)
    int next_layer;
} model_outputs;

// A forward pass of ids (T) with every layer captured, head h in slot head_slot[h] (-1: not captured) of n_slots;
// fails the test when a layer does not reach the sink.
model_outputs run_model_captured(const av_model *model, av_backend *be, const int32_t *ids, int T, int *head_slot,
                                 int n_slots);
// The same with head h in slot h.
model_outputs run_model_all_heads(const av_model *model, av_backend *be, const int32_t *ids, int T);
void model_outputs_free(model_outputs *o);

// Hugging Face's outputs for prompt K of fixture NAME (tests/data/NAME-expected/pK_*.npy).
typedef struct expected_run {
    npy_array ids;    // int64 (T)
    npy_array attn;   // float32 (L, NH, T, T)
    npy_array logits; // float32 (T, V)
    int T;
} expected_run;

expected_run expected_run_load(const char *name, int k);
// The expected ids as the int32 the model takes (malloc'ed).
int32_t *expected_run_ids(const expected_run *e);
void expected_run_free(expected_run *e);
// Runs prompts 0..N_PROMPTS-1 of fixture NAME through the CPU backend with every layer and head captured: the
// attentions within 1e-5 of Hugging Face's eager ones (masked entries exactly 0), the logits within 1e-4 of their
// largest magnitude (elementwise relative error means nothing for logits that cross zero).
void expect_fixture_matches_hugging_face(const char *name, int n_prompts);
// Every prompt of NAME-expected/prompts.json encodes with NAME's tokenizer to the ids Hugging Face gave.
void expect_fixture_prompts_tokenize_like_hugging_face(const char *name);

double max_abs(const float *x, size_t n);
// expect_close for all but a fraction OUTLIERS of the entries (plain expect_close when it is 0); every entry within
// MAX_ATOL.
void expect_close_but_outliers(const char *what, const float *got, const float *want, size_t n, double atol,
                               double rtol, double outliers, double max_atol);

#endif
