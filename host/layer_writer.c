#include "layer_writer.h"

#include "npy.h"
#include "reduce.h"
#include "render.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// One "kind[:N]" item of --capture.
static av_status parse_capture_item(capture_kinds *k, const char *item, size_t len) {
    char name[32];
    const char *colon = memchr(item, ':', len);
    size_t name_len = colon ? (size_t)(colon - item) : len;
    if (name_len == 0 || name_len >= sizeof name)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--capture: empty or overlong item '%.*s'", (int)len, item);
    memcpy(name, item, name_len);
    name[name_len] = '\0';
    bool takes_number = !strcmp(name, "rows") || !strcmp(name, "pool");
    if (takes_number != (colon != NULL))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--capture %.*s: %s", (int)len, item,
                       takes_number ? "needs a number (rows:W, pool:B)" : "takes no number");
    long number = 0;
    if (colon) {
        char *end;
        number = strtol(colon + 1, &end, 10);
        if (!isdigit((unsigned char)colon[1]) || end != item + len || number < 1 || number > 1 << 30)
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "--capture %.*s: expected a positive number after ':'",
                           (int)len, item);
    }
    if (!strcmp(name, "full")) k->full = true;
    else if (!strcmp(name, "rows")) k->rows = true, k->rows_w = (int)number;
    else if (!strcmp(name, "colsum")) k->colsum = true;
    else if (!strcmp(name, "pool")) k->pool = true, k->pool_b = (int)number;
    else if (!strcmp(name, "headmean")) k->headmean = true;
    else if (!strcmp(name, "groupmean")) k->groupmean = true;
    else
        return av_fail(AV_ERROR_INVALID_ARGUMENT,
                       "--capture: unknown kind '%s' (expected full, rows:W, colsum, pool:B, headmean, groupmean)",
                       name);
    return AV_SUCCESS;
}

// Group g of the group mean: the query heads [g * NH / NKV, (g + 1) * NH / NKV) that share key/value head g.
static int heads_per_group(const model_config *cfg) { return cfg->n_head / cfg->n_kv_head; }

// A group without a captured head would have no mean.
static av_status check_groups_captured(const model_config *cfg, const capture_plan *plan) {
    int size = heads_per_group(cfg);
    for (int g = 0; g < cfg->n_kv_head && plan->n_slots > 0; g++) {
        if (!av_captured_heads(plan->head_slot + g * size, size))
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "--capture groupmean: key/value group %d (heads %d-%d) has "
                           "no captured head; add one of them to --heads", g, g * size, (g + 1) * size - 1);
    }
    return AV_SUCCESS;
}

av_status capture_kinds_parse(capture_kinds *k, const char *spec, bool packed, const model_config *cfg,
                              const capture_plan *plan) {
    bool causal = config_is_causal(cfg);
    memset(k, 0, sizeof *k);
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        AV_TRY(parse_capture_item(k, p, len));
        if (!p[len]) break;
        p += len + 1;
    }
    if (packed && !causal)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--packed-causal: this model's attention is not causal");
    if (packed && !k->full) return av_fail(AV_ERROR_INVALID_ARGUMENT, "--packed-causal applies to --capture full");
    k->packed = packed;
    if (!k->groupmean) return AV_SUCCESS;
    k->n_groups = cfg->n_kv_head;
    k->group_size = heads_per_group(cfg);
    return check_groups_captured(cfg, plan);
}

// The last-rows count and pool factor of --capture rows:W / pool:B, clipped to the T tokens of the run.
static int clipped_rows(const capture_kinds *k, int T) { return k->rows_w < T ? k->rows_w : T; }
static int clipped_pool(const capture_kinds *k, int T) { return k->pool_b < T ? k->pool_b : T; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static size_t scratch_floats(const capture_kinds *k, int n_slots, int T) {
    size_t NS = (size_t)n_slots, t = (size_t)T, floats = 0;
    if (k->rows) floats = max_size(floats, NS * (size_t)clipped_rows(k, T) * t);
    if (k->colsum) floats = max_size(floats, 2 * NS * t);
    if (k->pool) floats = max_size(floats, NS * (size_t)reduce_pool_bins(T, k->pool_b) * reduce_pool_bins(T, k->pool_b));
    if (k->headmean) floats = max_size(floats, t * t); // the head max (the mean goes to w->mean)
    if (k->groupmean) floats = max_size(floats, 2 * (size_t)k->n_groups * t * t);
    if (k->packed) floats = max_size(floats, NS * t * (t + 1) / 2);
    return floats;
}

// The head mean is kept for headmean, for the mean maps, and for the viewer's mean of full P.
static bool keeps_mean(const capture_kinds *k, png_mode png, bool viewer) {
    return k->headmean || png != PNG_NONE || (viewer && k->full);
}

size_t layer_writer_bytes(const capture_kinds *k, int n_slots, int T, png_mode png, bool viewer) {
    bool mean = keeps_mean(k, png, viewer);
    return (scratch_floats(k, n_slots, T) + (mean ? (size_t)T * T : 0)) * sizeof(float);
}

av_status layer_writer_init(layer_writer *w, const av_model *model, const token_list *tokens,
                            const capture_plan *plan, const capture_kinds *kinds, png_mode png, viewer_file *viewer,
                            const char *dir) {
    int T = tokens->n, NS = plan->n_slots ? plan->n_slots : 1;
    *w = (layer_writer){.model = model, .tokens = tokens, .plan = plan, .kinds = *kinds, .dir = dir, .png = png,
                        .causal = config_is_causal(&model->cfg), .viewer = viewer};
    w->files = cJSON_CreateArray();
    w->slot_head = av_malloc((size_t)NS * sizeof(int), "slot table");
    w->slot_group = av_malloc((size_t)NS * sizeof(int), "slot table");
    w->head_labels = av_calloc((size_t)NS, sizeof(char *), "head labels");
    if (!w->files || !w->slot_head || !w->slot_group || !w->head_labels) return AV_ERROR_OUT_OF_MEMORY;
    for (int h = 0; h < model->cfg.n_head; h++) {
        int s = plan->head_slot[h];
        if (s < 0) continue;
        w->slot_head[s] = h;
        w->slot_group[s] = h / heads_per_group(&model->cfg);
    }
    for (int s = 0; s < plan->n_slots; s++) {
        if (!(w->head_labels[s] = av_malloc(16, "head label"))) return AV_ERROR_OUT_OF_MEMORY;
        snprintf(w->head_labels[s], 16, "head %d", w->slot_head[s]);
    }
    if (keeps_mean(kinds, png, viewer != NULL)) {
        if (!(w->mean = av_malloc((size_t)T * T * sizeof(float), "head mean"))) return AV_ERROR_OUT_OF_MEMORY;
    }
    size_t floats = scratch_floats(kinds, NS, T);
    if (floats && !(w->scratch = av_malloc(floats * sizeof(float), "reductions"))) return AV_ERROR_OUT_OF_MEMORY;
    if (kinds->pool) {
        int pool = clipped_pool(kinds, T), bins = reduce_pool_bins(T, kinds->pool_b);
        if (!(w->bin_labels = av_malloc((size_t)bins * sizeof(char *), "bin labels"))) return AV_ERROR_OUT_OF_MEMORY;
        for (int b = 0; b < bins; b++) w->bin_labels[b] = tokens->display[b * pool];
    }
    return AV_SUCCESS;
}

void layer_writer_free(layer_writer *w) {
    cJSON_Delete(w->files);
    if (w->head_labels)
        for (int s = 0; s < w->plan->n_slots; s++) free(w->head_labels[s]);
    free(w->head_labels);
    free(w->slot_head);
    free(w->slot_group);
    free(w->mean);
    free(w->scratch);
    free(w->bin_labels);
    memset(w, 0, sizeof *w);
}

static av_status add_file(layer_writer *w, const char *relative) {
    cJSON *s = cJSON_CreateString(relative);
    if (!s) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory");
    cJSON_AddItemToArray(w->files, s);
    return AV_SUCCESS;
}

static av_status write_npy(layer_writer *w, const char *rel, const float *data, int ndim, const int64_t *shape) {
    char *path = av_path_join(w->dir, rel);
    if (!path) return AV_ERROR_OUT_OF_MEMORY;
    av_status st = npy_write_f32(path, data, ndim, shape);
    free(path);
    return st == AV_SUCCESS ? add_file(w, rel) : st;
}

// A family of maps: NS per-head maps (rows, cols) and the labels and masking they share.
typedef struct map_family {
    const float *maps;             // (NS, rows, cols)
    int rows, cols;
    const char *const *row_labels; // (rows)
    const char *const *col_labels; // (cols)
    bool mask_upper;
    int mask_row_offset;
    const char *suffix;            // "" for full P, "_rows", "_pool"
    const char *what;              // in titles: "", "  last 8 rows", "  pooled x 8"
} map_family;

static av_status render_map(layer_writer *w, const char *rel, const map_family *f, const float *values,
                            const char *title) {
    char *path = av_path_join(w->dir, rel);
    if (!path) return AV_ERROR_OUT_OF_MEMORY;
    heatmap_spec spec = {.values = values,
                         .rows = f->rows,
                         .cols = f->cols,
                         .row_labels = f->row_labels,
                         .col_labels = f->col_labels,
                         .title = title,
                         .mask_upper = f->mask_upper,
                         .mask_row_offset = f->mask_row_offset};
    av_status st = render_heatmap_png(path, &spec);
    free(path);
    return st;
}

static void head_png_name(char *rel, size_t size, int layer, int head, const char *suffix) {
    snprintf(rel, size, "heatmaps/layer_%02d_head_%02d%s.png", layer, head, suffix);
}

// Heads render in parallel; the first failure's message is carried back from its thread.
static av_status render_heads(layer_writer *w, int layer, const map_family *f, int n_slots) {
    av_status first = AV_SUCCESS;
    char message[1024] = "";
    size_t map = (size_t)f->rows * f->cols;
#pragma omp parallel for schedule(dynamic)
    for (int s = 0; s < n_slots; s++) {
        char rel[96], title[256];
        head_png_name(rel, sizeof rel, layer, w->slot_head[s], f->suffix);
        snprintf(title, sizeof title, "%s  layer %d  head %d%s", w->model->name, layer, w->slot_head[s], f->what);
        av_status st = render_map(w, rel, f, f->maps + s * map, title);
        if (st != AV_SUCCESS) {
#pragma omp critical(render_failure)
            if (first == AV_SUCCESS) {
                first = st;
                snprintf(message, sizeof message, "%s", av_last_error());
            }
        }
    }
    if (first != AV_SUCCESS) return av_fail(first, "%s", message);
    for (int s = 0; s < n_slots; s++) {
        char rel[96];
        head_png_name(rel, sizeof rel, layer, w->slot_head[s], f->suffix);
        AV_TRY(add_file(w, rel));
    }
    return AV_SUCCESS;
}

// Draws w->mean, the mean of F's maps already computed there.
static av_status draw_mean(layer_writer *w, int layer, const map_family *f, int n_slots) {
    char rel[96], title[256];
    snprintf(rel, sizeof rel, "heatmaps/layer_%02d_mean%s.png", layer, f->suffix);
    snprintf(title, sizeof title, "%s  layer %d  mean of %d head%s%s", w->model->name, layer, n_slots,
             n_slots == 1 ? "" : "s", f->what);
    AV_TRY(render_map(w, rel, f, w->mean, title));
    return add_file(w, rel);
}

static av_status render_mean(layer_writer *w, int layer, const map_family *f, int n_slots) {
    reduce_head_mean_max(w->mean, NULL, f->maps, n_slots, (size_t)f->rows * f->cols);
    return draw_mean(w, layer, f, n_slots);
}

static av_status render_family(layer_writer *w, int layer, const map_family *f, int n_slots) {
    if (w->png == PNG_ALL) AV_TRY(render_heads(w, layer, f, n_slots));
    if (w->png != PNG_NONE) AV_TRY(render_mean(w, layer, f, n_slots));
    return AV_SUCCESS;
}

static void layer_npy_name(char *rel, size_t size, int layer, const char *suffix) {
    snprintf(rel, size, "attention/layer_%02d%s.npy", layer, suffix);
}

static const char *const *token_labels(const layer_writer *w) { return (const char *const *)w->tokens->display; }

static map_family full_family(const layer_writer *w, const float *probs, int T) {
    return (map_family){.maps = probs, .rows = T, .cols = T, .row_labels = token_labels(w),
                        .col_labels = token_labels(w), .mask_upper = w->causal, .suffix = "", .what = ""};
}

// MEAN_READY: w->mean already holds the head mean of PROBS (headmean computed it), so it is drawn, not recomputed.
static av_status write_full(layer_writer *w, int layer, const float *probs, int NS, int T, bool mean_ready) {
    char rel[96];
    layer_npy_name(rel, sizeof rel, layer, "");
    if (w->kinds.packed) {
        reduce_pack_causal(w->scratch, probs, NS, T);
        int64_t shape[2] = {NS, (int64_t)T * (T + 1) / 2};
        AV_TRY(write_npy(w, rel, w->scratch, 2, shape));
    } else {
        int64_t shape[3] = {NS, T, T};
        AV_TRY(write_npy(w, rel, probs, 3, shape));
    }
    map_family f = full_family(w, probs, T);
    if (!mean_ready) return render_family(w, layer, &f, NS);
    if (w->png == PNG_ALL) AV_TRY(render_heads(w, layer, &f, NS));
    return w->png == PNG_NONE ? AV_SUCCESS : draw_mean(w, layer, &f, NS);
}

// rows (NS, W, T): the last W query rows of each head.
static av_status write_rows(layer_writer *w, int layer, const float *rows, int NS, int T) {
    int W = clipped_rows(&w->kinds, T);
    char rel[96], what[64];
    layer_npy_name(rel, sizeof rel, layer, "_rows");
    int64_t shape[3] = {NS, W, T};
    AV_TRY(write_npy(w, rel, rows, 3, shape));
    if (w->viewer) AV_TRY(viewer_add_rows(w->viewer, layer, rows, w->slot_head, NS));
    snprintf(what, sizeof what, "  last %d row%s", W, W == 1 ? "" : "s");
    map_family f = {.maps = rows, .rows = W, .cols = T, .row_labels = token_labels(w) + (T - W),
                    .col_labels = token_labels(w), .mask_upper = w->causal, .mask_row_offset = T - W,
                    .suffix = "_rows", .what = what};
    return render_family(w, layer, &f, NS);
}

// colsum, colmean (NS, T).
static av_status write_column_sums(layer_writer *w, int layer, const float *colsum, const float *colmean, int NS,
                                   int T) {
    char rel[96];
    int64_t shape[2] = {NS, T};
    layer_npy_name(rel, sizeof rel, layer, "_colsum");
    AV_TRY(write_npy(w, rel, colsum, 2, shape));
    layer_npy_name(rel, sizeof rel, layer, "_colmean");
    AV_TRY(write_npy(w, rel, colmean, 2, shape));
    if (w->viewer) AV_TRY(viewer_add_colmean(w->viewer, layer, colmean, w->slot_head, NS));
    if (w->png == PNG_NONE) return AV_SUCCESS;
    // One map per layer: heads down, keys across, each key's mean attention received (comparable across keys).
    map_family f = {.maps = colmean, .rows = NS, .cols = T, .row_labels = (const char *const *)w->head_labels,
                    .col_labels = token_labels(w)};
    char title[256];
    snprintf(rel, sizeof rel, "heatmaps/layer_%02d_colmean.png", layer);
    snprintf(title, sizeof title, "%s  layer %d  attention received (column mean)", w->model->name, layer);
    AV_TRY(render_map(w, rel, &f, colmean, title));
    return add_file(w, rel);
}

// pooled (NS, NB, NB).
static av_status write_pool(layer_writer *w, int layer, const float *pooled, int NS, int T) {
    int bins = reduce_pool_bins(T, w->kinds.pool_b);
    char rel[96], what[64];
    layer_npy_name(rel, sizeof rel, layer, "_pool");
    int64_t shape[3] = {NS, bins, bins};
    AV_TRY(write_npy(w, rel, pooled, 3, shape));
    snprintf(what, sizeof what, "  pooled x %d", clipped_pool(&w->kinds, T));
    map_family f = {.maps = pooled, .rows = bins, .cols = bins, .row_labels = w->bin_labels,
                    .col_labels = w->bin_labels, .mask_upper = w->causal, .suffix = "_pool", .what = what};
    return render_family(w, layer, &f, NS);
}

// The head mean, already in w->mean (full P's mean map reuses it), and max (T, T); then the mean map unless full P
// draws it.
static av_status write_head_mean_max(layer_writer *w, int layer, const float *max, int NS, int T) {
    char rel[96];
    int64_t shape[2] = {T, T};
    layer_npy_name(rel, sizeof rel, layer, "_headmean");
    AV_TRY(write_npy(w, rel, w->mean, 2, shape));
    layer_npy_name(rel, sizeof rel, layer, "_headmax");
    AV_TRY(write_npy(w, rel, max, 2, shape));
    if (w->viewer && !w->kinds.full) AV_TRY(viewer_add_maps(w->viewer, layer, NULL, w->slot_head, NS, w->mean));
    if (w->kinds.full || w->png == PNG_NONE) return AV_SUCCESS;
    map_family f = full_family(w, NULL, T); // draw_mean reads w->mean, not the maps
    return draw_mean(w, layer, &f, NS);
}

// The captured heads of key/value group g as text: "head 2" or "heads 2, 3".
static void group_heads_text(const layer_writer *w, int g, int NS, char *text, size_t size) {
    int n = 0;
    for (int s = 0; s < NS; s++) n += w->slot_group[s] == g;
    size_t used = (size_t)snprintf(text, size, "head%s", n == 1 ? "" : "s");
    for (int s = 0, first = 1; s < NS && used < size; s++) {
        if (w->slot_group[s] != g) continue;
        used += (size_t)snprintf(text + used, size - used, "%s %d", first ? "" : ",", w->slot_head[s]);
        first = 0;
    }
}

// mean, max (G, T, T): each key/value group's mean and max over its captured heads; then a map of each group's mean
// unless --png none.
static av_status write_group_means(layer_writer *w, int layer, const float *mean, const float *max, int NS, int T) {
    char rel[96], title[256], heads[128];
    int G = w->kinds.n_groups;
    int64_t shape[3] = {G, T, T};
    layer_npy_name(rel, sizeof rel, layer, "_groupmean");
    AV_TRY(write_npy(w, rel, mean, 3, shape));
    layer_npy_name(rel, sizeof rel, layer, "_groupmax");
    AV_TRY(write_npy(w, rel, max, 3, shape));
    if (w->png == PNG_NONE) return AV_SUCCESS;
    map_family f = full_family(w, mean, T);
    for (int g = 0; g < G; g++) {
        group_heads_text(w, g, NS, heads, sizeof heads);
        snprintf(rel, sizeof rel, "heatmaps/layer_%02d_group_%02d.png", layer, g);
        snprintf(title, sizeof title, "%s  layer %d  key/value group %d: mean of %s", w->model->name, layer, g,
                 heads);
        AV_TRY(render_map(w, rel, &f, mean + (size_t)g * T * T, title));
        AV_TRY(add_file(w, rel));
    }
    return AV_SUCCESS;
}

// Attention that is not a number (NaN or infinite) comes from the checkpoint's weights holding NaN or Inf, or from a
// forward pass that overflowed; nothing of such a layer is written.
#define NON_FINITE_CAUSE "the checkpoint's weights hold NaN or Inf, or the forward pass overflowed"

// The index of the first of X's N values that is NaN or infinite, or N.
static size_t first_non_finite(const float *x, size_t n) {
    size_t i = 0;
    while (i < n && isfinite(x[i])) i++;
    return i;
}

av_status layer_writer_write(void *user, int layer, const float *probs, int n_slots, int T) {
    layer_writer *w = user;
    size_t map = (size_t)T * T, bad = first_non_finite(probs, n_slots * map);
    if (bad < n_slots * map)
        return av_fail(AV_ERROR_FORMAT,
                       "%s: layer %d head %d, query %zu: attention %f is not a number (" NON_FINITE_CAUSE ")",
                       w->model->name, layer, w->slot_head[bad / map], bad % map / (size_t)T, (double)probs[bad]);
    // The head mean first: full P's mean map reuses it before the other kinds use w->mean for their own means.
    if (w->kinds.headmean) {
        reduce_head_mean_max(w->mean, w->scratch, probs, n_slots, map);
        AV_TRY(write_head_mean_max(w, layer, w->scratch, n_slots, T));
    }
    if (w->kinds.groupmean) {
        size_t maps = (size_t)w->kinds.n_groups * map;
        reduce_group_mean_max(w->scratch, w->scratch + maps, probs, w->slot_group, n_slots, w->kinds.n_groups, map);
        AV_TRY(write_group_means(w, layer, w->scratch, w->scratch + maps, n_slots, T));
    }
    if (w->kinds.full) {
        bool mean_ready = w->kinds.headmean;
        if (!mean_ready && w->viewer && n_slots > 1) { // the viewer's mean of one head is none
            reduce_head_mean_max(w->mean, NULL, probs, n_slots, (size_t)T * T);
            mean_ready = true;
        }
        AV_TRY(write_full(w, layer, probs, n_slots, T, mean_ready));
        if (w->viewer)
            AV_TRY(viewer_add_maps(w->viewer, layer, probs, w->slot_head, n_slots, n_slots > 1 ? w->mean : NULL));
    }
    if (w->kinds.rows) {
        reduce_last_rows(w->scratch, probs, n_slots, T, clipped_rows(&w->kinds, T));
        AV_TRY(write_rows(w, layer, w->scratch, n_slots, T));
    }
    if (w->kinds.colsum) {
        float *colsum = w->scratch, *colmean = w->scratch + (size_t)n_slots * T;
        reduce_column_sums(colsum, colmean, probs, n_slots, T, w->causal);
        AV_TRY(write_column_sums(w, layer, colsum, colmean, n_slots, T));
    }
    if (w->kinds.pool) {
        reduce_pool(w->scratch, probs, n_slots, T, w->kinds.pool_b);
        AV_TRY(write_pool(w, layer, w->scratch, n_slots, T));
    }
    return AV_SUCCESS;
}

bool capture_kinds_reduce(const capture_kinds *k) {
    return k->rows || k->colsum || k->pool || k->headmean || k->groupmean;
}

av_reduction_request capture_kinds_reductions(const capture_kinds *k, int T) {
    return (av_reduction_request){.rows = k->rows ? clipped_rows(k, T) : 0,
                                  .colsum = k->colsum,
                                  .pool = k->pool ? clipped_pool(k, T) : 0,
                                  .head_mean = k->headmean,
                                  .group_mean = k->groupmean ? k->n_groups : 0};
}

// The same files, in the same order, as layer_writer_write writes for these kinds (full excluded).
av_status layer_writer_write_reduced(void *user, int layer, const float *reduced, int n_slots, int T) {
    layer_writer *w = user;
    av_reduction_request request = capture_kinds_reductions(&w->kinds, T);
    av_reduction_layout at = av_reduction_layout_of(&request, n_slots, T);
    size_t bad = first_non_finite(reduced, at.floats);
    if (bad < at.floats)
        return av_fail(AV_ERROR_FORMAT,
                       "%s: layer %d: a reduction of the attention is %f, not a number (" NON_FINITE_CAUSE ")",
                       w->model->name, layer, (double)reduced[bad]);
    if (w->kinds.headmean) {
        memcpy(w->mean, reduced + at.head_mean, (size_t)T * T * sizeof(float));
        AV_TRY(write_head_mean_max(w, layer, reduced + at.head_max, n_slots, T));
    }
    if (w->kinds.groupmean)
        AV_TRY(write_group_means(w, layer, reduced + at.group_mean, reduced + at.group_max, n_slots, T));
    if (w->kinds.rows) AV_TRY(write_rows(w, layer, reduced + at.rows, n_slots, T));
    if (w->kinds.colsum) AV_TRY(write_column_sums(w, layer, reduced + at.colsum, reduced + at.colmean, n_slots, T));
    if (w->kinds.pool) AV_TRY(write_pool(w, layer, reduced + at.pooled, n_slots, T));
    return AV_SUCCESS;
}

cJSON *capture_kinds_json(const capture_kinds *k, int T) {
    cJSON *kinds = cJSON_CreateArray();
    if (k->full) {
        cJSON *full = cJSON_CreateObject();
        cJSON_AddStringToObject(full, "kind", "full");
        cJSON_AddStringToObject(full, "layout", k->packed ? "packed_causal" : "square");
        cJSON_AddItemToArray(kinds, full);
    }
    if (k->rows) {
        cJSON *rows = cJSON_CreateObject();
        cJSON_AddStringToObject(rows, "kind", "rows");
        cJSON_AddNumberToObject(rows, "first_row", T - clipped_rows(k, T));
        cJSON_AddNumberToObject(rows, "count", clipped_rows(k, T));
        cJSON_AddItemToArray(kinds, rows);
    }
    if (k->colsum) {
        cJSON *colsum = cJSON_CreateObject();
        cJSON_AddStringToObject(colsum, "kind", "colsum");
        cJSON_AddStringToObject(colsum, "colmean", "colsum / number of queries that see the key");
        cJSON_AddItemToArray(kinds, colsum);
    }
    if (k->pool) {
        cJSON *pool = cJSON_CreateObject();
        cJSON_AddStringToObject(pool, "kind", "pool");
        cJSON_AddNumberToObject(pool, "pool", clipped_pool(k, T));
        cJSON_AddNumberToObject(pool, "bins", reduce_pool_bins(T, k->pool_b));
        cJSON_AddStringToObject(pool, "reduction", "sum over key bins, mean over query bins (rows sum to 1)");
        cJSON_AddItemToArray(kinds, pool);
    }
    if (k->headmean) {
        cJSON *mean = cJSON_CreateObject();
        cJSON_AddStringToObject(mean, "kind", "headmean");
        cJSON_AddStringToObject(mean, "over", "the captured heads (headmean and headmax files)");
        cJSON_AddItemToArray(kinds, mean);
    }
    if (k->groupmean) {
        cJSON *group = cJSON_CreateObject();
        cJSON_AddStringToObject(group, "kind", "groupmean");
        cJSON_AddNumberToObject(group, "groups", k->n_groups);
        cJSON_AddNumberToObject(group, "heads_per_group", k->group_size);
        cJSON_AddStringToObject(group, "over", "the captured heads of each key/value group: group g holds query heads "
                                               "g * heads_per_group to (g + 1) * heads_per_group - 1 (groupmean and "
                                               "groupmax files, one map per group)");
        cJSON_AddItemToArray(kinds, group);
    }
    return kinds;
}
