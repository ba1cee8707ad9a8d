// viewer.html: one self-contained page (no network; it links only the run's own PNGs) that colours the prompt's
// tokens by the attention of a chosen layer and head, from a token or to it, with the strongest weights listed and
// the heatmap of the selection beside them. Written as the layers stream out of the model, like every other file:
// the maps go in as float16, base64, within a byte budget (the head means of every layer first, then the heads in
// order), so the page stays small enough for a browser whatever the run.
#ifndef AV_VIEWER_H
#define AV_VIEWER_H

#include "model.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>

// The page's style and script, NULL-terminated lists of lines (host/viewer_page.c).
extern const char *const viewer_css[];
extern const char *const viewer_js[];

typedef struct viewer_file {
    FILE *f;
    int T;
    bool causal;
    size_t map_chars;           // base64 characters of one embedded map
    int means_left, heads_left; // maps the budget still allows
} viewer_file;

// Base64 characters of one map of T tokens (the packed triangle when CAUSAL) in float16.
size_t viewer_map_chars(int T, bool causal);
// Starts DIR/viewer.html for MODEL's run on TOKENS of PROMPT (LEN bytes of UTF-8), capturing PLAN, with at most
// BUDGET bytes of maps.
av_status viewer_begin(viewer_file *v, const char *dir, const av_model *model, const char *prompt, size_t len,
                       const token_list *tokens, const capture_plan *plan, size_t budget);
// Embeds what the budget allows of one layer: PROBS (NS, T, T), slot s holding head SLOT_HEAD[s], and MEAN (T, T),
// their mean (NULL when NS is 1).
av_status viewer_add_layer(viewer_file *v, int layer, const float *probs, const int *slot_head, int NS, const float *mean);
// Finishes the page; FILES (the run's files, relative paths) tells it which heatmaps exist.
av_status viewer_end(viewer_file *v, const cJSON *files);
// Closes the file, finished or not (a failed run's directory is removed whole).
void viewer_free(viewer_file *v);

#endif
