// Writes each captured layer as it streams out of the backend: .npy dumps and PNG heatmaps of full P and of the
// reductions the user asked for (--capture).
#ifndef AV_LAYER_WRITER_H
#define AV_LAYER_WRITER_H

#include "model.h"
#include "viewer.h"

#include <cjson/cJSON.h>

typedef enum png_mode { PNG_ALL, PNG_MEAN, PNG_NONE } png_mode;

// What --capture asks for: any combination of full, rows:W, colsum, pool:B, headmean, groupmean.
typedef struct capture_kinds {
    bool full, rows, colsum, pool, headmean, groupmean;
    int rows_w, pool_b;
    int n_groups, group_size; // groupmean: the model's key/value heads and the query heads sharing each
    bool packed;  // full P as the packed causal triangle (--packed-causal)
} capture_kinds;

// Parses "full", "pool:8,colsum", ... for a model of CFG whose heads PLAN captures; PACKED is --packed-causal (needs
// full and a causal model). groupmean needs a captured head in every key/value group.
av_status capture_kinds_parse(capture_kinds *kinds, const char *spec, bool packed, const model_config *cfg,
                              const capture_plan *plan);

typedef struct layer_writer {
    const av_model *model;
    const token_list *tokens;
    const capture_plan *plan;
    capture_kinds kinds;
    const char *dir;         // the temporary output directory
    png_mode png;
    bool causal;
    cJSON *files;            // paths relative to the output directory, in the order written
    int *slot_head;          // (n_slots) head index of each slot
    int *slot_group;         // (n_slots) key/value group of each slot's head
    float *mean;             // (T, T) head mean (and the mean map of a reduction)
    float *scratch;          // the largest reduction of one layer
    char **head_labels;      // (n_slots) "head 3" row labels of the column-sum map
    const char **bin_labels; // (bins) first token of each pool bin
    viewer_file *viewer;     // what viewer.html shows also goes there, or NULL
} layer_writer;

// VIEWER (or NULL) receives every layer of what it shows: full P and its head mean, rows, column means, head means.
av_status layer_writer_init(layer_writer *w, const av_model *model, const token_list *tokens,
                            const capture_plan *plan, const capture_kinds *kinds, png_mode png, viewer_file *viewer,
                            const char *dir);
void layer_writer_free(layer_writer *w);
// The av_probs_sink: USER is a layer_writer.
av_status layer_writer_write(void *user, int layer, const float *probs, int n_slots, int T);
// The av_reductions_sink of the device path (backend set_reductions): USER is a layer_writer whose kinds exclude
// full; REDUCED holds capture_kinds_reductions(kinds, T) in av_reduction_layout_of's layout. Writes the same files as
// layer_writer_write would from full P.
av_status layer_writer_write_reduced(void *user, int layer, const float *reduced, int n_slots, int T);
// Whether KINDS ask for any reduction (anything but full P).
bool capture_kinds_reduce(const capture_kinds *kinds);
// The reductions KINDS ask for at T tokens, clipped to T as the host path clips them.
av_reduction_request capture_kinds_reductions(const capture_kinds *kinds, int T);
// Host bytes the writer needs beyond P itself (VIEWER: one is written).
size_t layer_writer_bytes(const capture_kinds *kinds, int n_slots, int T, png_mode png, bool viewer);
// meta.json's description of the kinds written.
cJSON *capture_kinds_json(const capture_kinds *kinds, int T);

#endif
