// PNG heatmaps: viridis colour map, token labels on both axes, a colour bar with values, a title.
#ifndef AV_RENDER_H
#define AV_RENDER_H

#include "internal.h"

typedef struct heatmap_spec {
    const float *values;            // (rows, cols) row-major, row = query, col = key
    int rows, cols;
    const char *const *row_labels;  // (rows) UTF-8 display strings, or NULL for none
    const char *const *col_labels;  // (cols) UTF-8 display strings, or NULL for none
    const char *title;              // one line, e.g. "gpt2-tiny  layer 3  head 5"
    float vmin, vmax;               // colour scale; vmax <= vmin means "from the data"
    bool mask_upper;                // causal maps: cells with col > row are drawn as background, not as 0
} heatmap_spec;

// Writes PATH (PNG, RGB). Large maps are mean-pooled into square bins so the image stays readable and bounded;
// labels are thinned to every k-th token when they would overlap.
av_status render_heatmap_png(const char *path, const heatmap_spec *spec);

#endif
