// BERT forward against Hugging Face transformers (fp32, eager attention, output_attentions=True), fixtures from
// weights/gen_bert_fixtures.py: a tiny random BertModel (also as float16 under legacy tensor names) and, when installed,
// the real all-MiniLM-L6-v2. Every attention probability and the last hidden state are compared.
#include "model.h"
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TINY_DIR FIXTURE("bert-tiny")
#define TINY_LEGACY_DIR FIXTURE("bert-tiny-legacy")
#define MINILM_FIXTURES FIXTURE("minilm")

// Collects every captured layer into (L, NH, T, T); the plan captures all heads, so slot h is head h.
typedef struct probs_collector {
    float *all;
    int n_layer, n_head, T;
    int layers_seen;
} probs_collector;

static av_status collect_probs(void *user, int layer, const float *probs, int n_slots, int T) {
    probs_collector *c = user;
    cr_assert_eq(n_slots, c->n_head);
    cr_assert_eq(T, c->T);
    cr_assert_eq(layer, c->layers_seen, "layer %d delivered out of order", layer);
    size_t per_layer = (size_t)n_slots * T * T;
    memcpy(c->all + (size_t)layer * per_layer, probs, per_layer * sizeof(float));
    c->layers_seen++;
    return AV_SUCCESS;
}

typedef struct forward_result {
    float *probs;  // (L, NH, T, T)
    float *hidden; // (T, C)
} forward_result;

static av_status run_bert(const av_model *m, const char *device, const int32_t *ids, int T, forward_result *r) {
    const model_config *cfg = &m->cfg;
    backend_options options = {AV_COMPUTE_FP32, AV_ATTN_FP32, AV_ATTENTION_AUTO};
    av_backend *be;
    AV_TRY(backend_create(&be, device, &options));
    capture_plan plan;
    cr_assert_eq(capture_plan_parse(&plan, cfg, "all", "all"), AV_SUCCESS, "%s", av_last_error());
    probs_collector c = {calloc((size_t)cfg->n_layer * cfg->n_head * T * T, sizeof(float)), cfg->n_layer,
                         cfg->n_head, T, 0};
    r->probs = c.all;
    r->hidden = calloc((size_t)T * cfg->n_embd, sizeof(float));
    model_weights w;
    av_status st = model_weights_upload(m, be, &w);
    if (st == AV_SUCCESS) {
        forward_request req = {.ids = ids, .T = T, .plan = &plan, .sink = collect_probs, .sink_user = &c,
                               .hidden = r->hidden};
        st = model_forward(m, be, &w, &req);
        model_weights_free(&w);
    }
    if (st == AV_SUCCESS) cr_assert_eq(c.layers_seen, cfg->n_layer, "only %d layers captured", c.layers_seen);
    capture_plan_free(&plan);
    be->destroy(be);
    return st;
}

static void forward_result_free(forward_result *r) {
    free(r->probs);
    free(r->hidden);
}

typedef struct tolerance {
    double probs_atol;
    double hidden_atol, hidden_rtol;
} tolerance;

// Tokenizes PROMPT, checks the ids against IDS_NPY, runs the model and compares with Hugging Face's outputs.
static void check_against_hf(const char *what, const char *model_dir, const char *device, const char *prompt,
                             const char *ids_npy, const char *probs_npy, const char *hidden_npy, tolerance tol) {
    av_model *m;
    cr_assert_eq(av_model_load(&m, model_dir), AV_SUCCESS, "%s", av_last_error());
    token_list tokens;
    cr_assert_eq(tokenizer_encode(m->tok, prompt, strlen(prompt), &tokens), AV_SUCCESS, "%s", av_last_error());
    npy_array want_ids = npy_load(ids_npy);
    cr_assert_eq((size_t)tokens.n, want_ids.numel, "%s: %d tokens, Hugging Face has %zu", what, tokens.n,
                 want_ids.numel);
    for (int i = 0; i < tokens.n; i++)
        cr_assert_eq(tokens.ids[i], ((int32_t *)want_ids.data)[i], "%s: token %d differs", what, i);
    int T = tokens.n;

    forward_result r;
    av_status st = run_bert(m, device, tokens.ids, T, &r);
    cr_assert_eq(st, AV_SUCCESS, "%s: forward failed: %s", what, av_last_error());
    npy_array want_probs = npy_load(probs_npy);
    npy_array want_hidden = npy_load(hidden_npy);
    size_t n_probs = (size_t)m->cfg.n_layer * m->cfg.n_head * T * T;
    cr_assert_eq(want_probs.numel, n_probs, "%s: attentions fixture has %zu entries, want %zu", what,
                 want_probs.numel, n_probs);
    cr_assert_eq(want_hidden.numel, (size_t)T * m->cfg.n_embd);
    char label[256];
    snprintf(label, sizeof label, "%s attention probabilities (L, NH, T, T)", what);
    expect_close(label, r.probs, want_probs.data, n_probs, tol.probs_atol, 0.0, NULL);
    snprintf(label, sizeof label, "%s last hidden state (T, C)", what);
    expect_close(label, r.hidden, want_hidden.data, want_hidden.numel, tol.hidden_atol, tol.hidden_rtol, NULL);

    forward_result_free(&r);
    npy_free(&want_ids);
    npy_free(&want_probs);
    npy_free(&want_hidden);
    token_list_free(&tokens);
    av_model_destroy(m);
}

static char *read_fixture_text(const char *path) {
    char *text;
    size_t len;
    cr_assert_eq(av_read_file(path, &text, &len), AV_SUCCESS, "%s", av_last_error());
    return text;
}

static const tolerance TINY_TOLERANCE = {1e-5, 1e-4, 1e-4};

// DIR/expected/ holds the prompt and Hugging Face's outputs for the checkpoint in DIR.
static void check_tiny(const char *what, const char *dir, const char *device) {
    char prompt_path[4096], ids[4096], probs[4096], hidden[4096];
    snprintf(prompt_path, sizeof prompt_path, "%s/expected/prompt.txt", dir);
    snprintf(ids, sizeof ids, "%s/expected/ids.npy", dir);
    snprintf(probs, sizeof probs, "%s/expected/attentions.npy", dir);
    snprintf(hidden, sizeof hidden, "%s/expected/hidden.npy", dir);
    char *prompt = read_fixture_text(prompt_path);
    check_against_hf(what, dir, device, prompt, ids, probs, hidden, TINY_TOLERANCE);
    free(prompt);
}

Test(bert, tiny_random_model_matches_hugging_face) { check_tiny("bert-tiny", TINY_DIR, "cpu"); }

// "bert."-prefixed names and LayerNorm.gamma / .beta, as in checkpoints saved from BertFor* heads and older releases,
// stored as float16 (upcast at load, and the fused q, k, v built from the upcast copies).
Test(bert, legacy_names_and_float16_storage) { check_tiny("bert-tiny-legacy", TINY_LEGACY_DIR, "cpu"); }

Test(bert, tiny_random_model_on_cuda) {
    if (!backend_cuda_available()) {
        cr_skip_test("no CUDA device: the CUDA backend's BERT forward is not checked here");
        return;
    }
    check_tiny("bert-tiny (cuda)", TINY_DIR, "cuda");
}

Test(bert, model_has_encoder_shape) {
    av_model *m;
    cr_assert_eq(av_model_load(&m, TINY_DIR), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(m->cfg.arch, AV_ARCH_BERT);
    cr_assert_eq(m->cfg.activation, AV_ACT_GELU_ERF);
    cr_assert_str_eq(m->tok->kind, "wordpiece");
    cr_assert_eq(m->w.layout, AV_WEIGHT_OUT_IN);
    cr_assert_not_null(m->w.wtt);
    cr_assert_null(m->w.lm_head);
    av_model_destroy(m);
}

static const char *minilm_dir(void) {
    const char *env = getenv("AV_MINILM_DIR");
    return env && *env ? env : AV_SOURCE_DIR "/models/all-MiniLM-L6-v2";
}

// The prompts of tests/data/minilm/prompts.json, in order.
static int minilm_prompts(char prompts[][512], int max) {
    char *json = read_fixture_text(MINILM_FIXTURES "/prompts.json");
    int n = 0;
    for (char *p = strchr(json, '"'); p && n < max; p = strchr(p + 1, '"')) {
        char *end = p + 1;
        while (*end && *end != '"') end += end[0] == '\\' ? 2 : 1;
        cr_assert_lt((size_t)(end - p - 1), sizeof prompts[0]);
        memcpy(prompts[n], p + 1, (size_t)(end - p - 1));
        prompts[n][end - p - 1] = '\0';
        cr_assert_null(strchr(prompts[n], '\\'), "prompts.json: escapes are not expected: %s", prompts[n]);
        n++;
        p = end;
    }
    free(json);
    return n;
}

Test(bert, minilm_matches_hugging_face) {
    char config[4096];
    snprintf(config, sizeof config, "%s/model.safetensors", minilm_dir());
    if (!path_exists(config)) {
        cr_skip_test("all-MiniLM-L6-v2 is not installed at %s: run weights/install_default_model.sh (or set "
                     "AV_MINILM_DIR) to check the real model",
                     minilm_dir());
        return;
    }
    char prompts[3][512];
    cr_assert_eq(minilm_prompts(prompts, 3), 3, "prompts.json should list 3 prompts");
    // The hidden state goes through 6 post-LN blocks of 384 channels; attention is held to 1e-5 absolute.
    tolerance tol = {1e-5, 1e-4, 1e-4};
    for (int i = 0; i < 3; i++) {
        char what[64], ids[256], probs[256], hidden[256];
        snprintf(what, sizeof what, "all-MiniLM-L6-v2 prompt %d", i);
        snprintf(ids, sizeof ids, "%s/p%d_ids.npy", MINILM_FIXTURES, i);
        snprintf(probs, sizeof probs, "%s/p%d_attentions.npy", MINILM_FIXTURES, i);
        snprintf(hidden, sizeof hidden, "%s/p%d_hidden.npy", MINILM_FIXTURES, i);
        check_against_hf(what, minilm_dir(), "cpu", prompts[i], ids, probs, hidden, tol);
    }
}

// A copy of bert-tiny in a scratch directory whose config.json has FROM replaced by TO.
static char *tiny_with_config_edit(const char *tag, const char *from, const char *to) {
    char *dir = make_scratch_dir(tag);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp '%s'/config.json '%s'/model.safetensors '%s'/vocab.txt '%s'/", TINY_DIR, TINY_DIR,
             TINY_DIR, dir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = read_fixture_text(path);
    char *at = strstr(json, from);
    cr_assert(at, "config.json has no %s", from);
    size_t out_len = strlen(json) - strlen(from) + strlen(to);
    char *edited = malloc(out_len + 1);
    snprintf(edited, out_len + 1, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    write_bytes(path, edited, out_len);
    free(edited);
    free(json);
    return dir;
}

Test(bert, unknown_hidden_act_is_unsupported) {
    char *dir = tiny_with_config_edit("bert-act", "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swishy\"");
    av_model *m = NULL;
    cr_assert_eq(av_model_load(&m, dir), AV_ERROR_UNSUPPORTED);
    cr_assert_null(m);
    cr_assert(strstr(av_last_error(), "swishy"), "message does not name the activation: %s", av_last_error());
    remove_tree(dir);
    free(dir);
}

Test(bert, prompt_longer_than_positions_fails_in_forward) {
    av_model *m;
    cr_assert_eq(av_model_load(&m, TINY_DIR), AV_SUCCESS, "%s", av_last_error());
    int T = m->cfg.n_positions + 1;
    int32_t *ids = calloc((size_t)T, sizeof *ids);
    forward_result r;
    cr_assert_eq(run_bert(m, "cpu", ids, T, &r), AV_ERROR_PROMPT);
    cr_assert(strstr(av_last_error(), "max_position_embeddings"), "%s", av_last_error());
    forward_result_free(&r);
    free(ids);
    av_model_destroy(m);
}

Test(bert, prompt_longer_than_positions_fails_in_cli) {
    char *out = make_scratch_dir("bert-long");
    char prompt[1024] = "";
    for (int i = 0; i < 50; i++) strcat(prompt, "the cat ");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s' --prompt '%s' --out '%s/run'", AV_CLI_PATH, TINY_DIR, prompt,
             out);
    char *output;
    int code = run_command(cmd, &output);
    cr_assert_eq(code, 1, "exit code %d, want 1 (bad input); output: %s", code, output);
    cr_assert(strstr(output, "40"), "the message should name the limit of 40 positions: %s", output);
    free(output);
    remove_tree(out);
    free(out);
}
