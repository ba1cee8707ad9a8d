// The --capture reductions computed on the device (the flash path: bf16, heads of 64 columns, on
// tests/data/gpt2-tiny-hs64), against the host path that reduces full P of the same run.
//   Reference: the same av_run with `full` added to --capture, so the host reduces the flash kernels' own fp32 P; the
//   device reductions differ only by summation order: within 1e-5 + 1e-5 relative (the emulator: rows, head mean and
//   max exact, pooled maps 1.2e-7, column sums 2.9e-6 absolute and 3.9e-7 relative at T=80).
//   meta.json says "reductions": "device" for the device path and "host" for the reference and for a head mean of a
//   head subset (the device head mean covers every head). The file list (npy and PNGs, in order) equals the host
//   path's for the same options (--attention plain).
// The memory check: with --max-memory one byte below what the flash path with full P needs, full is refused and the
// same run without full (no (n_slots, T, T) buffer, only the reductions' compact buffer and workspace) is accepted.
// (Not with headmean: its mean and max maps are two T x T maps, as large as full P of this fixture's two heads.)
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_writer.h"
#include "model.h"
#include "support_cuda.h"

#define HS64 "gpt2-tiny-hs64"
// 70-odd tokens: more than one 64-row tile.
static const char *PROMPT = "Attention is all you need, they said, and so the model looked back at every token it had "
                            "seen before, weighing each one, summing and pooling, row after row, until the long "
                            "prompt was nothing but numbers in a grid of heads and layers.";

// A test's model and scratch directory, with out = DIR/run for single runs.
typedef struct fixture {
    av_model *model;
    char *dir;
    char out[4200];
} fixture;

static fixture open_fixture(const char *tag) {
    fixture f = {.dir = make_scratch_dir(tag)};
    AV_OK(av_model_load(&f.model, FIXTURE(HS64)));
    snprintf(f.out, sizeof f.out, "%s/run", f.dir);
    return f;
}

static void close_fixture(fixture *f) {
    remove_tree(f->dir);
    free(f->dir);
    av_model_destroy(f->model);
}

typedef struct run_spec {
    const char *capture, *heads, *attention, *png;
    size_t max_memory;
} run_spec;

static av_status run(av_model *model, const run_spec *r, const char *out) {
    av_run_options o;
    av_run_options_default(&o);
    o.device = "cuda";
    o.dtype = "bf16";
    o.capture = r->capture;
    o.heads = r->heads ? r->heads : "all";
    o.attention = r->attention;
    o.png = r->png ? r->png : "none";
    o.max_memory = r->max_memory;
    return av_run(model, PROMPT, strlen(PROMPT), &o, out);
}

static cJSON *meta(const char *dir) {
    char path[4300];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    return read_json(path);
}

static void expect_reductions(const char *dir, const char *want) {
    cJSON *j = meta(dir);
    const cJSON *captured = cJSON_GetObjectItemCaseSensitive(j, "captured");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(captured, "reductions");
    cr_assert(cJSON_IsString(r), "%s: meta.json has no captured.reductions", dir);
    cr_assert_str_eq(r->valuestring, want, "%s: reductions %s, expected %s", dir, r->valuestring, want);
    cJSON_Delete(j);
}

static int meta_tokens(const char *dir) {
    cJSON *j = meta(dir);
    int T = cJSON_GetObjectItemCaseSensitive(j, "n_tokens")->valueint;
    cJSON_Delete(j);
    return T;
}

// Every attention/*.npy of GOT equals WANT's file of the same name within tolerance (WANT may hold more: full P).
static int compare_npy_files(const char *got_dir, const char *want_dir, const char *label) {
    cJSON *j = meta(got_dir);
    const cJSON *file;
    int compared = 0;
    cJSON_ArrayForEach(file, cJSON_GetObjectItemCaseSensitive(j, "files")) {
        const char *rel = file->valuestring;
        size_t len = strlen(rel);
        if (len < 4 || strcmp(rel + len - 4, ".npy")) continue;
        char got_path[4400], want_path[4400], what[512];
        snprintf(got_path, sizeof got_path, "%s/%s", got_dir, rel);
        snprintf(want_path, sizeof want_path, "%s/%s", want_dir, rel);
        npy_array g = npy_load(got_path), w = npy_load(want_path);
        cr_assert_eq(g.ndim, w.ndim, "%s %s: ndim %d vs %d", label, rel, g.ndim, w.ndim);
        for (int d = 0; d < g.ndim; d++)
            cr_assert_eq(g.shape[d], w.shape[d], "%s %s: dim %d is %lld, host %lld", label, rel, d,
                         (long long)g.shape[d], (long long)w.shape[d]);
        float *gf = npy_as_f32(&g), *wf = npy_as_f32(&w);
        snprintf(what, sizeof what, "%s: %s", label, rel);
        expect_close(what, gf, wf, g.numel, 1e-5, 1e-5, NULL);
        free(gf);
        free(wf);
        npy_free(&g);
        npy_free(&w);
        compared++;
    }
    cJSON_Delete(j);
    return compared;
}

static void expect_same_files(const char *got_dir, const char *want_dir, const char *label) {
    cJSON *g = meta(got_dir), *w = meta(want_dir);
    const cJSON *gf = cJSON_GetObjectItemCaseSensitive(g, "files"), *wf = cJSON_GetObjectItemCaseSensitive(w, "files");
    int n = cJSON_GetArraySize(gf);
    cr_assert_eq(n, cJSON_GetArraySize(wf), "%s: %d files, host path %d", label, n, cJSON_GetArraySize(wf));
    for (int i = 0; i < n; i++) {
        const char *a = cJSON_GetArrayItem(gf, i)->valuestring, *b = cJSON_GetArrayItem(wf, i)->valuestring;
        cr_assert_str_eq(a, b, "%s: file %d is %s, host path %s", label, i, a, b);
    }
    cJSON_Delete(g);
    cJSON_Delete(w);
}

// Runs DEVICE into DIR/device, expecting device reductions, and HOST into DIR/host, expecting host ones.
static void run_device_and_host(av_model *model, const run_spec *device, const run_spec *host, const char *dir,
                                char dev[4200], char ref[4200]) {
    snprintf(dev, 4200, "%s/device", dir);
    snprintf(ref, 4200, "%s/host", dir);
    AV_OK(run(model, device, dev));
    AV_OK(run(model, host, ref));
    expect_reductions(dev, "device");
    expect_reductions(ref, "host");
}

// CAPTURE on the device vs the host reducing full P of the same flash run; returns the npy files compared.
static int check_capture(av_model *model, const char *capture, const char *heads, const char *dir) {
    char dev[4200], ref[4200], spec[256];
    snprintf(spec, sizeof spec, "full,%s", capture);
    run_device_and_host(model, &(run_spec){.capture = capture, .heads = heads},
                        &(run_spec){.capture = spec, .heads = heads}, dir, dev, ref);
    char label[256];
    snprintf(label, sizeof label, "--capture %s --heads %s", capture, heads ? heads : "all");
    int n = compare_npy_files(dev, ref, label);
    cr_assert_gt(n, 0, "%s: no npy files written", label);
    return n;
}

Test(cuda_reductions, device_reductions_match_the_host_path) {
    NEED_DEVICE();
    fixture f = open_fixture("reductions-match");
    AV_OK(run(f.model, &(run_spec){.capture = "colsum"}, f.out));
    int T = meta_tokens(f.out);
    cr_assert_gt(T, 64, "the prompt should span more than one 64-row tile (T %d)", T);
    char pool_beyond[32];
    snprintf(pool_beyond, sizeof pool_beyond, "pool:%d", T + 5);
    struct {
        const char *capture, *heads;
        int files; // npy files per layer: 2 layers
    } cases[] = {
        {"rows:5", NULL, 1},     {"rows:100000", NULL, 1}, {"colsum", NULL, 2},     {"pool:1", NULL, 1},
        {"pool:3", NULL, 1},     {"pool:8", NULL, 1},      {pool_beyond, NULL, 1},  {"headmean", NULL, 2},
        {"rows:7,colsum,pool:8,headmean", NULL, 6},        {"pool:3,colsum,rows:2", "1", 4},
        {"groupmean", NULL, 2},  {"rows:3,headmean,groupmean", NULL, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = check_capture(f.model, cases[i].capture, cases[i].heads, f.dir);
        cr_assert_eq(n, 2 * cases[i].files, "--capture %s: %d npy files, expected %d", cases[i].capture, n,
                     2 * cases[i].files);
    }
    close_fixture(&f);
}

// PNGs included: the device path writes the same files in the same order as the host path (--attention plain).
Test(cuda_reductions, same_files_as_the_host_path) {
    NEED_DEVICE();
    fixture f = open_fixture("reductions-files");
    char dev[4200], host[4200];
    const char *capture = "rows:4,colsum,pool:8,headmean,groupmean";
    const char *pngs[] = {"all", "mean"};
    for (int p = 0; p < 2; p++) {
        run_device_and_host(f.model, &(run_spec){.capture = capture, .png = pngs[p]},
                            &(run_spec){.capture = capture, .png = pngs[p], .attention = "plain"}, f.dir, dev, host);
        expect_same_files(dev, host, pngs[p]);
    }
    close_fixture(&f);
}

// The device head mean covers every head, the writer's the captured ones: a subset falls back to the host (for the
// group mean too: tests/emulator/backend/cli_check.sh, on a grouped-query fixture).
Test(cuda_reductions, head_mean_of_a_head_subset_falls_back_to_the_host) {
    NEED_DEVICE();
    fixture f = open_fixture("reductions-subset");
    AV_OK(run(f.model, &(run_spec){.capture = "headmean,pool:8", .heads = "1"}, f.out));
    expect_reductions(f.out, "host");
    AV_OK(run(f.model, &(run_spec){.capture = "full,pool:8"}, f.out));
    expect_reductions(f.out, "host");
    close_fixture(&f);
}

// What the flash path with full P needs on the device, as run.c's check counts it (T tokens, every head captured).
static size_t full_path_need(const av_model *model, int T) {
    backend_options options = {AV_COMPUTE_BF16, AV_ATTN_FP32, AV_ATTENTION_AUTO};
    av_backend *gpu;
    AV_OK(backend_cuda_create(&gpu, &options));
    const model_config *c = &model->cfg;
    size_t params, matrices;
    model_parameter_bytes(model, &params, &matrices);
    size_t need = model_forward_bytes(c, T, c->n_head, 1) +
                  gpu->extra_bytes(gpu, T, c->n_embd, c->n_head, c->n_inner, params, matrices);
    gpu->destroy(gpu);
    return need;
}

Test(cuda_reductions, memory_check_leaves_out_full_p) {
    NEED_DEVICE();
    fixture f = open_fixture("reductions-memory");
    AV_OK(run(f.model, &(run_spec){.capture = "pool:8"}, f.out));
    int T = meta_tokens(f.out);
    size_t limit = full_path_need(f.model, T) - 1;
    size_t full_p = (size_t)f.model->cfg.n_head * T * T * sizeof(float);
    cr_log_info("T %d: limit %zu bytes, full P of one layer %zu bytes", T, limit, full_p);
    av_status st = run(f.model, &(run_spec){.capture = "full,pool:8", .max_memory = limit}, f.out);
    cr_assert_eq(st, AV_ERROR_OUT_OF_MEMORY, "full P under the limit: status %d", st);
    const char *reduced[] = {"pool:8", "rows:3,colsum,pool:8"};
    for (int i = 0; i < 2; i++) {
        AV_OK(run(f.model, &(run_spec){.capture = reduced[i], .max_memory = limit}, f.out));
        expect_reductions(f.out, "device");
    }
    close_fixture(&f);
}
