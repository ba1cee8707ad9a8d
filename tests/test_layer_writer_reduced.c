// layer_writer_write_reduced (the device-reductions sink) against layer_writer_write (the host path) on the CPU: fed
// the compact buffer of av_reduction_layout_of filled by the host's own reductions of the same P, it must write the
// same files in the same order, byte for byte (npy and PNG), for every kind but full, head subsets, and every --png
// mode. The device's numbers are checked against the host's in test_cuda_reductions.c.
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_writer.h"
#include "reduce.h"
#include "support.h"

// p (NS, T, T): random rows normalised to 1, zero above the diagonal when causal.
static float *random_probs(int NS, int T, bool causal, uint64_t seed) {
    size_t n = (size_t)NS * T * T;
    float *p = malloc(n * sizeof *p);
    fill_random(p, n, seed, 0.0f, 1.0f);
    for (size_t row = 0; row < (size_t)NS * T; row++) {
        int i = (int)(row % T);
        float *r = p + row * T, sum = 0.0f;
        for (int j = 0; j < T; j++) {
            if (causal && j > i) r[j] = 0.0f;
            sum += r[j];
        }
        for (int j = 0; j < T; j++) r[j] /= sum;
    }
    return p;
}

// What a backend's reductions would be: the compact buffer, here from the host's reductions of P.
// slot_group (NS): each slot's key/value group.
static float *compact_from_host(const av_reduction_request *r, const float *p, int NS, int T, bool causal,
                                const int *slot_group) {
    av_reduction_layout at = av_reduction_layout_of(r, NS, T);
    float *c = malloc((at.floats ? at.floats : 1) * sizeof *c);
    if (r->rows) reduce_last_rows(c + at.rows, p, NS, T, r->rows);
    if (r->colsum) reduce_column_sums(c + at.colsum, c + at.colmean, p, NS, T, causal);
    if (r->pool) reduce_pool(c + at.pooled, p, NS, T, r->pool);
    if (r->head_mean) reduce_head_mean_max(c + at.head_mean, c + at.head_max, p, NS, (size_t)T * T);
    if (r->group_mean)
        reduce_group_mean_max(c + at.group_mean, c + at.group_max, p, slot_group, NS, r->group_mean, (size_t)T * T);
    return c;
}

static char *read_whole(const char *path, size_t *len) {
    char *data;
    AV_OK(av_read_file(path, &data, len));
    return data;
}

// The files of both writers, in order, with equal bytes.
static void expect_same_files(const layer_writer *a, const layer_writer *b, const char *label) {
    int n = cJSON_GetArraySize(a->files);
    cr_assert_gt(n, 0, "%s: nothing written", label);
    cr_assert_eq(n, cJSON_GetArraySize(b->files), "%s: %d files, host path %d", label, n,
                 cJSON_GetArraySize(b->files));
    for (int i = 0; i < n; i++) {
        const char *ra = cJSON_GetArrayItem(a->files, i)->valuestring, *rb = cJSON_GetArrayItem(b->files, i)->valuestring;
        cr_assert_str_eq(ra, rb, "%s: file %d is %s, host path %s", label, i, ra, rb);
        char pa[4400], pb[4400];
        snprintf(pa, sizeof pa, "%s/%s", a->dir, ra);
        snprintf(pb, sizeof pb, "%s/%s", b->dir, rb);
        size_t la, lb;
        char *da = read_whole(pa, &la), *db = read_whole(pb, &lb);
        cr_assert(la == lb && !memcmp(da, db, la), "%s: %s differs from the host path's (%zu vs %zu bytes)", label,
                  ra, la, lb);
        free(da);
        free(db);
    }
}

typedef struct writer_case {
    const char *capture, *heads, *png;
} writer_case;

static void check_case(const av_model *model, const token_list *tokens, const writer_case *c, const char *dir) {
    int T = tokens->n;
    bool causal = config_is_causal(&model->cfg);
    capture_plan plan;
    AV_OK(capture_plan_parse(&plan, &model->cfg, "all", c->heads));
    capture_kinds kinds;
    AV_OK(capture_kinds_parse(&kinds, c->capture, false, &model->cfg, &plan));
    png_mode png = !strcmp(c->png, "all") ? PNG_ALL : !strcmp(c->png, "mean") ? PNG_MEAN : PNG_NONE;
    char dev_dir[4200], host_dir[4200], label[256];
    snprintf(dev_dir, sizeof dev_dir, "%s/device", dir);
    snprintf(host_dir, sizeof host_dir, "%s/host", dir);
    snprintf(label, sizeof label, "--capture %s --heads %s --png %s", c->capture, c->heads, c->png);
    layer_writer dev, host;
    for (int d = 0; d < 2; d++) {
        const char *sub = d ? host_dir : dev_dir;
        remove_tree(sub);
        char cmd[8500];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/attention' '%s/heatmaps'", sub, sub);
        cr_assert_eq(run_command(cmd, NULL), 0);
        AV_OK(layer_writer_init(d ? &host : &dev, model, tokens, &plan, &kinds, png, NULL, d ? host_dir : dev_dir));
    }
    av_reduction_request request = capture_kinds_reductions(&kinds, T);
    for (int layer = 0; layer < 2; layer++) {
        float *p = random_probs(plan.n_slots, T, causal, 40 + layer);
        float *compact = compact_from_host(&request, p, plan.n_slots, T, causal, dev.slot_group);
        AV_OK(layer_writer_write_reduced(&dev, layer, compact, plan.n_slots, T));
        AV_OK(layer_writer_write(&host, layer, p, plan.n_slots, T));
        free(compact);
        free(p);
    }
    expect_same_files(&dev, &host, label);
    layer_writer_free(&dev);
    layer_writer_free(&host);
    capture_plan_free(&plan);
}

static const char *prompt = "The quick brown fox jumps over the lazy dog, twice.";

static void check_cases(const char *model_dir, const writer_case *cases, size_t n) {
    av_model *model;
    AV_OK(av_model_load(&model, model_dir));
    token_list tokens = {0};
    AV_OK(tokenizer_encode(model->tok, prompt, strlen(prompt), &tokens));
    char *dir = make_scratch_dir("layer-writer-reduced");
    for (size_t i = 0; i < n; i++) check_case(model, &tokens, &cases[i], dir);
    remove_tree(dir);
    free(dir);
    token_list_free(&tokens);
    av_model_destroy(model);
}

// pool:1000 is beyond the prompt's length (clipped to T).
Test(layer_writer_reduced, writes_what_the_host_path_writes) {
    const writer_case cases[] = {
        {"rows:3", "all", "all"},    {"rows:1000", "all", "none"},       {"colsum", "all", "mean"},
        {"pool:1", "all", "all"},    {"pool:3", "1,3", "all"},           {"pool:1000", "all", "mean"},
        {"headmean", "all", "all"},  {"headmean", "all", "none"},        {"rows:2,colsum,pool:4,headmean", "all", "all"},
        {"colsum,rows:5", "2", "mean"},
        {"groupmean", "all", "all"},
    };
    check_cases(FIXTURE("gpt2-tiny"), cases, sizeof cases / sizeof cases[0]);
}

// Grouped-query attention: six query heads on two key/value heads.
Test(layer_writer_reduced, group_means_of_grouped_query_heads) {
    const writer_case cases[] = {
        {"groupmean", "all", "all"},
        {"groupmean,headmean,pool:4", "all", "mean"},
        {"groupmean", "0,4,5", "none"},
        {"rows:2,groupmean", "2,3", "all"},
    };
    check_cases(FIXTURE("qwen2-tiny"), cases, sizeof cases / sizeof cases[0]);
}
