#include "support_model.h"

#include "half.h"
#include "support.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
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
