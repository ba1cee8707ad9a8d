// PNG heatmaps (see render.h): layout, mean-pooling of large maps, viridis cells, thinned token labels, a colour
// bar with values and a title, encoded with stb_image_write.
#include "render.h"

#include "colormap.h"
#include "font.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

// stb_image_write's hook for an outside deflate. Measured on a 1024-token causal map (1170x1127 px, CPU time):
// stb's own deflate 77..93 ms, zlib 37 ms with files 10..25 % smaller.
static unsigned char *deflate_with_zlib(unsigned char *data, int data_len, int *out_len, int level) {
    uLongf bytes = compressBound((uLong)data_len);
    unsigned char *out = malloc(bytes); // stb releases it with free()
    if (!out) return NULL;
    if (compress2(out, &bytes, data, (uLong)data_len, level) != Z_OK || bytes > (uLongf)INT32_MAX) {
        free(out);
        return NULL;
    }
    *out_len = (int)bytes;
    return out;
}

// The encoder is private to this file (static functions and settings), so no other module can collide with it.
#define STBIW_ZLIB_COMPRESS deflate_with_zlib
// stb computes CRCs a byte at a time: 1.5 of 41 ms per 1024-token map.
#define STBIW_CRC32(buffer, len) (unsigned int)crc32(0L, (buffer), (uInt)(len))
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

enum {
    MARGIN = 8,           // px around everything
    TITLE_GAP = 10,       // px between the title and the map
    TICK_LENGTH = 4,      // px, label ticks on the axes and the colour bar
    LABEL_GAP = 3,        // px between a tick and its text
    MAP_TARGET = 1024,    // px along the longer side of the map, before the cell cap
    MAX_CELL = 24,        // px: small maps stay small rather than blowing up a 3x3 map to 1024 px
    MIN_SIDE = 256,       // px the short side is stretched towards (a few rows of many keys stay readable)
    LABEL_CHARS = 12,     // token labels longer than this end in an ellipsis
    TITLE_CHARS = 160,
    BAR_GAP = 16,         // px between the map and the colour bar
    BAR_WIDTH = 16,
    BAR_MIN_HEIGHT = 128, // px, so a 1x1 map still gets a legible colour bar
    BAR_TICKS = 5,        // vmin, 25 %, 50 %, 75 %, vmax
    VALUE_CHARS = 24,
    MAX_DECIMALS = 6,
    // zlib level 2: 37 ms and 276 KB for a 1024-token map; level 6 takes 95 ms for 200 KB (144 maps per run).
    PNG_COMPRESSION = 2,
    // No PNG prediction filter. The image holds few distinct colours (256 viridis entries, greys, text), so raw RGB
    // triples repeat and deflate finds them; differences against neighbours turn them into noise. Measured: 37 ms
    // and 276 KB unfiltered against 72 ms and 400 KB (at level 1) with stb's per-row filter choice.
    PNG_FILTER_NONE = 0,
};

static const uint8_t CANVAS_RGB[3] = {RENDER_CANVAS_GREY, RENDER_CANVAS_GREY, RENDER_CANVAS_GREY};
static const uint8_t MASKED_RGB[3] = {RENDER_MASKED_GREY, RENDER_MASKED_GREY, RENDER_MASKED_GREY};
static const uint8_t INK_RGB[3] = {0x20, 0x20, 0x20};

typedef struct canvas {
    uint8_t *rgb; // (height, width, 3)
    int width, height;
} canvas;

typedef enum text_direction { TEXT_HORIZONTAL, TEXT_UPWARD } text_direction;

typedef struct bar_values {
    char text[BAR_TICKS][VALUE_CHARS]; // tick labels, vmin first
    int chars;                         // the longest, for the layout
} bar_values;

static int min_int(int a, int b) { return a < b ? a : b; }
static int max_int(int a, int b) { return a > b ? a : b; }
static int clamp_int(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }
static int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Keys a query may attend to: all of them, or 0..row under the causal mask.
static int unmasked_cols(const heatmap_spec *spec, int row) {
    return spec->mask_upper ? min_int(spec->cols, row + spec->mask_row_offset + 1) : spec->cols;
}

// ---------------------------------------------------------------------------------------------- validation

static av_status check_shape(const heatmap_spec *spec) {
    if (!spec || !spec->values) return av_fail(AV_ERROR_INVALID_ARGUMENT, "heatmap: no values");
    if (spec->rows <= 0 || spec->cols <= 0) {
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "heatmap: shape %d x %d is empty", spec->rows, spec->cols);
    }
    return AV_SUCCESS;
}

// Fails on the first non-finite unmasked value (masked cells are never read, so they may hold anything) and
// returns the largest unmasked value.
static av_status scan_values(const heatmap_spec *spec, float *max_value) {
    float max_seen = -INFINITY;
    for (int row = 0; row < spec->rows; row++) {
        const float *values = spec->values + (size_t)row * (size_t)spec->cols;
        int cols = unmasked_cols(spec, row);
        for (int col = 0; col < cols; col++) {
            if (!isfinite(values[col])) {
                return av_fail(AV_ERROR_INVALID_ARGUMENT,
                               "heatmap \"%s\": value at row %d, col %d (index %zu) is %f, not a finite number",
                               spec->title ? spec->title : "", row, col,
                               (size_t)row * (size_t)spec->cols + (size_t)col, (double)values[col]);
            }
            if (values[col] > max_seen) max_seen = values[col];
        }
    }
    *max_value = max_seen;
    return AV_SUCCESS;
}

static av_status resolve_scale(const heatmap_spec *spec, float *vmin, float *vmax) {
    if (isnan(spec->vmin) || isnan(spec->vmax)) {
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "heatmap: colour scale vmin %f, vmax %f is NaN",
                       (double)spec->vmin, (double)spec->vmax);
    }
    float max_value = 0.0f;
    AV_TRY(scan_values(spec, &max_value));
    if (spec->vmax > spec->vmin) {
        if (!isfinite(spec->vmin) || !isfinite(spec->vmax)) {
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "heatmap: colour scale [%f, %f] is not finite",
                           (double)spec->vmin, (double)spec->vmax);
        }
        *vmin = spec->vmin;
        *vmax = spec->vmax;
        return AV_SUCCESS;
    }
    *vmin = 0.0f;
    // An all-zero (or all-negative) map still needs a non-empty scale.
    *vmax = max_value > 0.0f ? max_value : 1.0f;
    return AV_SUCCESS;
}

// -------------------------------------------------------------------------------------------------- layout

// Labels are drawn every step-th token, steps being 1, 2, 5, 10, 20, 50, ... so that the labelled positions are
// easy to read, and neighbours at least a glyph height apart.
static int label_step(int cell_px, int bin) {
    int needed = ceil_div((FONT_GLYPH_HEIGHT + 1) * bin, cell_px);
    for (int decade = 1;; decade *= 10) {
        if (decade >= needed) return decade;
        if (2 * decade >= needed) return 2 * decade;
        if (5 * decade >= needed) return 5 * decade;
    }
}

// The most characters any drawn label of LABELS (COUNT of them, every STEP-th drawn) will take.
static int longest_label(const char *const *labels, int count, int step) {
    uint32_t code_points[LABEL_CHARS];
    int longest = 0;
    for (int i = 0; i < count; i += step) {
        longest = max_int(longest, font_decode_label(labels[i], code_points, LABEL_CHARS));
    }
    return longest;
}

static int title_chars(const heatmap_spec *spec) {
    uint32_t code_points[TITLE_CHARS];
    return font_decode_label(spec->title, code_points, TITLE_CHARS);
}

// Enough decimals to tell neighbouring ticks apart (0.00, 0.25, ... for probabilities); %g for extreme ranges.
static void format_bar_values(float vmin, float vmax, bar_values *out) {
    double step = ((double)vmax - (double)vmin) / (BAR_TICKS - 1);
    int decimals = (int)ceil(-log10(step)) + 1;
    bool use_general = decimals > MAX_DECIMALS || fmax(fabs((double)vmin), fabs((double)vmax)) >= 1e6;
    decimals = clamp_int(decimals, 2, MAX_DECIMALS);
    out->chars = 0;
    for (int i = 0; i < BAR_TICKS; i++) {
        double value = (double)vmin + step * i;
        if (use_general) snprintf(out->text[i], VALUE_CHARS, "%.3g", value);
        else snprintf(out->text[i], VALUE_CHARS, "%.*f", decimals, value);
        out->chars = max_int(out->chars, (int)strlen(out->text[i]));
    }
}

// Cells of clamp(1024 / n, 1, 24) px for n tokens along the longer side; past 1024 tokens, square bins of
// ceil(n / 1024) tokens are mean-pooled into one cell, keeping the map's geometry. Cells are square unless one
// side is short (see MIN_SIDE).
static void choose_cells(const heatmap_spec *spec, heatmap_layout *layout) {
    layout->bin = ceil_div(max_int(spec->rows, spec->cols), MAP_TARGET);
    layout->drawn_rows = ceil_div(spec->rows, layout->bin);
    layout->drawn_cols = ceil_div(spec->cols, layout->bin);
    int square = clamp_int(MAP_TARGET / max_int(layout->drawn_rows, layout->drawn_cols), 1, MAX_CELL);
    layout->cell_height = max_int(square, min_int(MAX_CELL, MIN_SIDE / layout->drawn_rows));
    layout->cell_width = max_int(square, min_int(MAX_CELL, MIN_SIDE / layout->drawn_cols));
}

av_status render_heatmap_layout(const heatmap_spec *spec, heatmap_layout *layout) {
    memset(layout, 0, sizeof *layout);
    AV_TRY(check_shape(spec));
    AV_TRY(resolve_scale(spec, &layout->vmin, &layout->vmax));
    choose_cells(spec, layout);

    int row_chars = 0, col_chars = 0;
    if (spec->row_labels) {
        layout->row_label_step = label_step(layout->cell_height, layout->bin);
        row_chars = longest_label(spec->row_labels, spec->rows, layout->row_label_step);
    }
    if (spec->col_labels) {
        layout->col_label_step = label_step(layout->cell_width, layout->bin);
        col_chars = longest_label(spec->col_labels, spec->cols, layout->col_label_step);
    }
    int title = title_chars(spec);
    bar_values values;
    format_bar_values(layout->vmin, layout->vmax, &values);

    int row_label_band = spec->row_labels ? row_chars * FONT_GLYPH_WIDTH + LABEL_GAP + TICK_LENGTH : 0;
    int col_label_band = spec->col_labels ? TICK_LENGTH + LABEL_GAP + col_chars * FONT_GLYPH_WIDTH : 0;
    // Without a title, keep room for the top half of the colour bar's top value.
    layout->map_x = MARGIN + row_label_band;
    layout->map_y = MARGIN + (title > 0 ? FONT_GLYPH_HEIGHT + TITLE_GAP : FONT_GLYPH_HEIGHT / 2);
    int map_width = layout->drawn_cols * layout->cell_width;
    int map_height = layout->drawn_rows * layout->cell_height;

    layout->bar_x = layout->map_x + map_width + BAR_GAP;
    layout->bar_y = layout->map_y;
    layout->bar_width = BAR_WIDTH;
    layout->bar_height = max_int(map_height, BAR_MIN_HEIGHT);

    int bar_right = layout->bar_x + BAR_WIDTH + TICK_LENGTH + LABEL_GAP + values.chars * FONT_GLYPH_WIDTH;
    layout->width = max_int(bar_right, MARGIN + title * FONT_GLYPH_WIDTH) + MARGIN;
    layout->height = max_int(layout->map_y + map_height + col_label_band,
                             layout->bar_y + layout->bar_height + FONT_GLYPH_HEIGHT / 2) + MARGIN;
    return AV_SUCCESS;
}

// ------------------------------------------------------------------------------------------------- drawing

static void fill_rect(canvas *c, int x, int y, int width, int height, const uint8_t rgb[3]) {
    int x0 = max_int(x, 0), x1 = min_int(x + width, c->width);
    int y0 = max_int(y, 0), y1 = min_int(y + height, c->height);
    for (int py = y0; py < y1; py++) {
        uint8_t *pixel = c->rgb + ((size_t)py * (size_t)c->width + (size_t)x0) * 3;
        for (int px = x0; px < x1; px++, pixel += 3) memcpy(pixel, rgb, 3);
    }
}

static void blend_ink(canvas *c, int x, int y, uint8_t alpha) {
    if (alpha == 0 || x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    uint8_t *pixel = c->rgb + ((size_t)y * (size_t)c->width + (size_t)x) * 3;
    for (int k = 0; k < 3; k++) pixel[k] = (uint8_t)((pixel[k] * (255 - alpha) + INK_RGB[k] * alpha + 127) / 255);
}

// The I-th glyph of a run of text anchored at (x, y). Horizontal text: (x, y) is its top-left corner. Upward text
// (turned 90 degrees anticlockwise, read with the head tilted left): (x, y) is the bottom-left corner of the run
// and each glyph's top faces left.
static void draw_glyph(canvas *c, int x, int y, int i, uint32_t code_point, text_direction direction) {
    const uint8_t *alpha = font_glyph(code_point);
    for (int gy = 0; gy < FONT_GLYPH_HEIGHT; gy++) {
        for (int gx = 0; gx < FONT_GLYPH_WIDTH; gx++) {
            int advance = i * FONT_GLYPH_WIDTH + gx;
            if (direction == TEXT_HORIZONTAL) blend_ink(c, x + advance, y + gy, alpha[gy * FONT_GLYPH_WIDTH + gx]);
            else blend_ink(c, x + gy, y - advance, alpha[gy * FONT_GLYPH_WIDTH + gx]);
        }
    }
}

static void draw_code_points(canvas *c, int x, int y, const uint32_t *code_points, int count,
                             text_direction direction) {
    for (int i = 0; i < count; i++) draw_glyph(c, x, y, i, code_points[i], direction);
}

static void draw_title(canvas *c, const heatmap_spec *spec) {
    uint32_t code_points[TITLE_CHARS];
    int count = font_decode_label(spec->title, code_points, TITLE_CHARS);
    draw_code_points(c, MARGIN, MARGIN, code_points, count, TEXT_HORIZONTAL);
}

// Pixel offset of the centre of data token INDEX along an axis of drawn cells CELL_PX wide holding BIN tokens.
static int token_centre(int index, int cell_px, int bin) {
    return (index / bin) * cell_px + ((index % bin) * 2 + 1) * cell_px / (2 * bin);
}

// Queries on the left, right-aligned against their tick marks.
static void draw_row_labels(canvas *c, const heatmap_spec *spec, const heatmap_layout *layout) {
    uint32_t code_points[LABEL_CHARS];
    int right = layout->map_x - TICK_LENGTH - LABEL_GAP;
    for (int row = 0; row < spec->rows; row += layout->row_label_step) {
        int y = layout->map_y + token_centre(row, layout->cell_height, layout->bin);
        fill_rect(c, layout->map_x - TICK_LENGTH, y, TICK_LENGTH, 1, INK_RGB);
        int count = font_decode_label(spec->row_labels[row], code_points, LABEL_CHARS);
        draw_code_points(c, right - count * FONT_GLYPH_WIDTH, y - FONT_GLYPH_HEIGHT / 2, code_points, count,
                         TEXT_HORIZONTAL);
    }
}

// Keys along the bottom, rotated to read upwards and ending just under their tick marks.
static void draw_col_labels(canvas *c, const heatmap_spec *spec, const heatmap_layout *layout) {
    uint32_t code_points[LABEL_CHARS];
    int map_bottom = layout->map_y + layout->drawn_rows * layout->cell_height;
    int text_top = map_bottom + TICK_LENGTH + LABEL_GAP;
    for (int col = 0; col < spec->cols; col += layout->col_label_step) {
        int x = layout->map_x + token_centre(col, layout->cell_width, layout->bin);
        fill_rect(c, x, map_bottom, 1, TICK_LENGTH, INK_RGB);
        int count = font_decode_label(spec->col_labels[col], code_points, LABEL_CHARS);
        draw_code_points(c, x - FONT_GLYPH_HEIGHT / 2, text_top + count * FONT_GLYPH_WIDTH - 1, code_points, count,
                         TEXT_UPWARD);
    }
}

// (drawn_rows, drawn_cols): each bin's mean over its unmasked cells; NAN marks a bin without any (the input has
// no NaN, it was validated).
static av_status pool_bins(const heatmap_spec *spec, const heatmap_layout *layout, float **pooled_out) {
    size_t drawn = (size_t)layout->drawn_rows * (size_t)layout->drawn_cols;
    float *pooled = av_calloc(drawn, sizeof *pooled, "heatmap bins");
    int *counts = av_calloc(drawn, sizeof *counts, "heatmap bin counts");
    if (!pooled || !counts) {
        free(pooled);
        free(counts);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    for (int row = 0; row < spec->rows; row++) {
        const float *values = spec->values + (size_t)row * (size_t)spec->cols;
        size_t bin_row = (size_t)(row / layout->bin) * (size_t)layout->drawn_cols;
        int cols = unmasked_cols(spec, row);
        for (int col = 0; col < cols; col++) {
            pooled[bin_row + (size_t)(col / layout->bin)] += values[col];
            counts[bin_row + (size_t)(col / layout->bin)]++;
        }
    }
    for (size_t i = 0; i < drawn; i++) pooled[i] = counts[i] > 0 ? pooled[i] / (float)counts[i] : NAN;
    free(counts);
    *pooled_out = pooled;
    return AV_SUCCESS;
}

static av_status draw_cells(canvas *c, const heatmap_spec *spec, const heatmap_layout *layout) {
    float *pooled;
    AV_TRY(pool_bins(spec, layout, &pooled));
    float scale = 1.0f / (layout->vmax - layout->vmin);
    for (int i = 0; i < layout->drawn_rows; i++) {
        for (int j = 0; j < layout->drawn_cols; j++) {
            float value = pooled[(size_t)i * (size_t)layout->drawn_cols + (size_t)j];
            uint8_t rgb[3];
            if (isnan(value)) memcpy(rgb, MASKED_RGB, 3);
            else colormap_viridis((value - layout->vmin) * scale, rgb);
            fill_rect(c, layout->map_x + j * layout->cell_width, layout->map_y + i * layout->cell_height,
                      layout->cell_width, layout->cell_height, rgb);
        }
    }
    free(pooled);
    return AV_SUCCESS;
}

// vmax at the top; values on the right at BAR_TICKS evenly spaced ticks.
static void draw_colour_bar(canvas *c, const heatmap_layout *layout) {
    int last = layout->bar_height - 1;
    for (int y = 0; y <= last; y++) {
        uint8_t rgb[3];
        colormap_viridis(last > 0 ? 1.0f - (float)y / (float)last : 1.0f, rgb);
        fill_rect(c, layout->bar_x, layout->bar_y + y, layout->bar_width, 1, rgb);
    }
    bar_values values;
    format_bar_values(layout->vmin, layout->vmax, &values);
    int tick_x = layout->bar_x + layout->bar_width;
    for (int i = 0; i < BAR_TICKS; i++) {
        int y = layout->bar_y + last - (int)lrint((double)last * i / (BAR_TICKS - 1));
        fill_rect(c, tick_x, y, TICK_LENGTH, 1, INK_RGB);
        uint32_t code_points[VALUE_CHARS];
        int count = font_decode_label(values.text[i], code_points, VALUE_CHARS);
        draw_code_points(c, tick_x + TICK_LENGTH + LABEL_GAP, y - FONT_GLYPH_HEIGHT / 2, code_points, count,
                         TEXT_HORIZONTAL);
    }
}

// --------------------------------------------------------------------------------------------------- output

// stb keeps its settings in globals; heads are rendered on several threads, so set them exactly once.
static pthread_once_t png_settings_once = PTHREAD_ONCE_INIT;

static void set_png_settings(void) {
    stbi_write_png_compression_level = PNG_COMPRESSION;
    stbi_write_force_png_filter = PNG_FILTER_NONE;
}

static av_status write_png(const char *path, const canvas *c) {
    pthread_once(&png_settings_once, set_png_settings);
    int png_bytes = 0;
    unsigned char *png = stbi_write_png_to_mem(c->rgb, c->width * 3, c->width, c->height, 3, &png_bytes);
    if (!png) return av_fail(AV_ERROR_OUT_OF_MEMORY, "%s: cannot encode %dx%d PNG", path, c->width, c->height);
    FILE *file = fopen(path, "wb");
    if (!file) {
        int error = errno;
        free(png);
        return av_fail(AV_ERROR_IO, "%s: cannot open for writing: %s", path, strerror(error));
    }
    size_t written = fwrite(png, 1, (size_t)png_bytes, file);
    int write_error = written == (size_t)png_bytes ? 0 : errno;
    int close_failed = fclose(file);
    if (!write_error && close_failed) write_error = errno;
    free(png);
    if (written != (size_t)png_bytes || close_failed) {
        return av_fail(AV_ERROR_IO, "%s: cannot write %d bytes: %s", path, png_bytes, strerror(write_error));
    }
    return AV_SUCCESS;
}

av_status render_heatmap_png(const char *path, const heatmap_spec *spec) {
    if (!path) return av_fail(AV_ERROR_INVALID_ARGUMENT, "heatmap: no output path");
    heatmap_layout layout;
    AV_TRY(render_heatmap_layout(spec, &layout));
    canvas c = {.width = layout.width, .height = layout.height};
    c.rgb = av_malloc((size_t)c.width * (size_t)c.height * 3, "heatmap image");
    if (!c.rgb) return AV_ERROR_OUT_OF_MEMORY;
    fill_rect(&c, 0, 0, c.width, c.height, CANVAS_RGB);

    av_status status = draw_cells(&c, spec, &layout);
    if (status == AV_SUCCESS) {
        draw_title(&c, spec);
        if (spec->row_labels) draw_row_labels(&c, spec, &layout);
        if (spec->col_labels) draw_col_labels(&c, spec, &layout);
        draw_colour_bar(&c, &layout);
        status = write_png(path, &c);
    }
    free(c.rgb);
    return status;
}
