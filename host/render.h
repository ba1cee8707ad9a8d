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
    int mask_row_offset;            // with mask_upper, row r is query r + mask_row_offset (a slice of last rows)
} heatmap_spec;

// Colours outside the colour map: the canvas, and masked cells (also pooled bins with no unmasked cell).
#define RENDER_CANVAS_GREY 0xFF
#define RENDER_MASKED_GREY 0xD9

// Where render_heatmap_png puts things, in pixels; x = column, y = row, (0, 0) = top-left corner.
typedef struct heatmap_layout {
    int width, height;                        // the whole image
    int bin;                                  // data cells per drawn cell along each axis (1 unless mean-pooled)
    int drawn_rows, drawn_cols;               // ceil(rows / bin), ceil(cols / bin)
    int cell_width, cell_height;              // pixels per drawn cell
    int map_x, map_y;                         // top-left pixel of the heatmap
    int row_label_step, col_label_step;       // every k-th token is labelled; 0 when there are no labels
    int bar_x, bar_y, bar_width, bar_height;  // colour bar, vmax at the top, vmin at the bottom
    float vmin, vmax;                         // the colour scale used (after "from the data")
} heatmap_layout;

// Validates SPEC (shape, finite values) and computes the layout render_heatmap_png will draw.
av_status render_heatmap_layout(const heatmap_spec *spec, heatmap_layout *layout);

// Writes PATH (PNG, RGB). Large maps are mean-pooled into square bins so the image stays readable and bounded;
// labels are thinned to every k-th token when they would overlap.
av_status render_heatmap_png(const char *path, const heatmap_spec *spec);

#endif
