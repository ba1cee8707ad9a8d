// viewer.html: one self-contained page (no network; it links only the run's own PNGs) that colours the prompt's
// tokens by the attention of a chosen layer and head, from a token or to it (full P, or the last rows), or received
// (column means), with the strongest weights listed and the heatmap of the selection below. Written as the layers
// stream out of the model, like every other file: the data goes in as float16, base64, within a byte budget (see
// viewer_begin), so the page stays small enough for a browser whatever the run.
#ifndef AV_VIEWER_H
#define AV_VIEWER_H

#include "model.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>

// The page's style and script, NULL-terminated lists of lines (host/viewer_page.c).
extern const char *const viewer_css[];
extern const char *const viewer_js[];

// What of a run the page can show: the captured kinds it embeds.
typedef struct viewer_content {
    bool full;     // full P: every head's map and their mean
    int rows;      // the last ROWS query rows of every head (0: none)
    bool colmean;  // attention received: each key's column mean
    bool headmean; // the head mean (T, T), when full P is not captured
    int group_size; // groupmean: query heads per key/value group, whose heatmaps the page shows (0: none)
} viewer_content;

typedef struct viewer_file {
    FILE *f;
    int T;
    bool causal;
    int rows;                   // query rows of each AV.rows
    size_t map_chars;           // base64 characters of one embedded map
    bool colmean_ok, rows_ok;   // the budget takes them (all or none)
    int means_left, heads_left; // maps the budget still allows
} viewer_file;

// The page's tokens: {gap, text, label, special | part} for each of TOKENS of PROMPT (LEN bytes of UTF-8); the gaps
// and texts of the tokens that are neither special nor part give the prompt back up to the last token's end.
cJSON *viewer_tokens_json(const char *prompt, size_t len, const token_list *tokens);
// Base64 characters of one map of T tokens (the packed triangle when CAUSAL) in float16.
size_t viewer_map_chars(int T, bool causal);
// Starts DIR/viewer.html for MODEL's run on TOKENS of PROMPT (LEN bytes of UTF-8), capturing PLAN, to show CONTENT
// within BUDGET bytes: column means, rows, head means and heads, in that order, as long as they fit.
av_status viewer_begin(viewer_file *v, const char *dir, const av_model *model, const char *prompt, size_t len,
                       const token_list *tokens, const capture_plan *plan, const viewer_content *content,
                       size_t budget);
// One layer's maps as the budget allows: PROBS (NS, T, T) of the heads SLOT_HEAD[s] or NULL (no full P), and MEAN
// (T, T), their mean, or NULL.
av_status viewer_add_maps(viewer_file *v, int layer, const float *probs, const int *slot_head, int NS,
                          const float *mean);
// One layer's last rows, ROWS (NS, W, T), W as viewer_begin's content said.
av_status viewer_add_rows(viewer_file *v, int layer, const float *rows, const int *slot_head, int NS);
// One layer's column means, COLMEAN (NS, T).
av_status viewer_add_colmean(viewer_file *v, int layer, const float *colmean, const int *slot_head, int NS);
// Finishes the page; FILES (the run's files, relative paths) tells it which heatmaps exist.
av_status viewer_end(viewer_file *v, const cJSON *files);
// Closes the file, finished or not (a failed run's directory is removed whole).
void viewer_free(viewer_file *v);

#endif
