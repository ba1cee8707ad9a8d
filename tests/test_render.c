// PNG heatmaps: rendered to a scratch directory, read back with stb_image and checked pixel by pixel against the
// layout render_heatmap_layout documents.
#include "colormap.h"
#include "font.h"
#include "render.h"
#include "support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

typedef struct image {
    unsigned char *rgb; // (height, width, 3)
    int width, height;
} image;

static image load_png(const char *path) {
    image img;
    int channels;
    img.rgb = stbi_load(path, &img.width, &img.height, &channels, 3);
    cr_assert(img.rgb, "%s: cannot read back PNG: %s", path, stbi_failure_reason());
    return img;
}

static const unsigned char *pixel_at(const image *img, int x, int y) {
    cr_assert(x >= 0 && y >= 0 && x < img->width && y < img->height, "pixel (%d, %d) outside %dx%d image", x, y,
              img->width, img->height);
    return img->rgb + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
}

static void expect_rgb(const image *img, int x, int y, const uint8_t want[3], const char *what) {
    const unsigned char *got = pixel_at(img, x, y);
    cr_expect(got[0] == want[0] && got[1] == want[1] && got[2] == want[2],
              "%s at pixel (%d, %d): got rgb(%d, %d, %d), want rgb(%d, %d, %d)", what, x, y, got[0], got[1], got[2],
              want[0], want[1], want[2]);
}

// Centre pixel of drawn cell (row, col).
static void cell_centre(const heatmap_layout *layout, int row, int col, int *x, int *y) {
    *x = layout->map_x + col * layout->cell_width + layout->cell_width / 2;
    *y = layout->map_y + row * layout->cell_height + layout->cell_height / 2;
}

static void expect_cell_value(const image *img, const heatmap_layout *layout, int row, int col, float value) {
    int x, y;
    cell_centre(layout, row, col, &x, &y);
    uint8_t want[3];
    colormap_viridis((value - layout->vmin) / (layout->vmax - layout->vmin), want);
    char what[64];
    snprintf(what, sizeof what, "cell (%d, %d) = %g", row, col, (double)value);
    expect_rgb(img, x, y, want, what);
}

static const uint8_t MASKED[3] = {RENDER_MASKED_GREY, RENDER_MASKED_GREY, RENDER_MASKED_GREY};

// Pixels in [x0, x1) x [y0, y1) clearly darker than the white canvas: text or tick ink.
static int count_ink(const image *img, int x0, int y0, int x1, int y1) {
    int ink = 0;
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            const unsigned char *p = pixel_at(img, x, y);
            if (p[0] < 160 && p[1] < 160 && p[2] < 160) ink++;
        }
    }
    return ink;
}

// Token-like labels "t0", "t1", ... with a middle dot for the leading space, as the tokenizers display them.
static char **make_labels(int n) {
    char **labels = malloc((size_t)n * sizeof *labels);
    for (int i = 0; i < n; i++) {
        labels[i] = malloc(32);
        snprintf(labels[i], 32, "\xC2\xB7t%d", i);
    }
    return labels;
}

static void free_labels(char **labels, int n) {
    for (int i = 0; i < n; i++) free(labels[i]);
    free(labels);
}

// Causal softmax-like rows: random values in [0.05, 0.5) on and below the diagonal, the upper triangle poisoned
// with large values that must neither be drawn nor raise vmax.
static float *make_causal_map(int n, uint64_t seed) {
    float *values = malloc((size_t)n * (size_t)n * sizeof *values);
    fill_random(values, (size_t)n * (size_t)n, seed, 0.05f, 0.5f);
    for (int row = 0; row < n; row++) {
        for (int col = row + 1; col < n; col++) values[(size_t)row * (size_t)n + (size_t)col] = 1000.0f;
    }
    return values;
}

static heatmap_spec labelled_spec(const float *values, int rows, int cols, char **row_labels, char **col_labels) {
    heatmap_spec spec = {.values = values,
                         .rows = rows,
                         .cols = cols,
                         .row_labels = (const char *const *)row_labels,
                         .col_labels = (const char *const *)col_labels,
                         .title = "gpt2-tiny  layer 3  head 5",
                         .vmin = 0.0f,
                         .vmax = 0.0f,
                         .mask_upper = true};
    return spec;
}

// Renders SPEC into DIR/NAME, checks the PNG's size against the layout, returns the decoded image and layout.
static image render_and_load(const char *dir, const char *name, const heatmap_spec *spec, heatmap_layout *layout) {
    char *path = av_path_join(dir, name);
    cr_assert_eq(render_heatmap_layout(spec, layout), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(render_heatmap_png(path, spec), AV_SUCCESS, "%s", av_last_error());
    image img = load_png(path);
    cr_expect_eq(img.width, layout->width, "%s: width %d, layout says %d", name, img.width, layout->width);
    cr_expect_eq(img.height, layout->height, "%s: height %d, layout says %d", name, img.height, layout->height);
    free(path);
    return img;
}

Test(render, causal_map_cells_mask_and_scale) {
    char *dir = make_scratch_dir("render_cells");
    int n = 7;
    float *values = make_causal_map(n, 11);
    values[3 * n + 1] = 0.9f; // the largest unmasked value: top of the scale
    values[5 * n + 2] = 0.0f;
    char **labels = make_labels(n);
    heatmap_spec spec = labelled_spec(values, n, n, labels, labels);
    heatmap_layout layout;
    image img = render_and_load(dir, "causal7.png", &spec, &layout);

    cr_expect_eq(layout.bin, 1);
    cr_expect_eq(layout.cell_width, 24, "small maps use the 24 px cap");
    cr_expect_eq(layout.cell_height, 24);
    cr_expect_float_eq(layout.vmin, 0.0f, 0.0f);
    cr_expect_float_eq(layout.vmax, 0.9f, 0.0f, "vmax %g: masked cells must not count", (double)layout.vmax);
    int x, y;
    cell_centre(&layout, 3, 1, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[255], "maximum cell");
    cell_centre(&layout, 5, 2, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[0], "zero cell");
    for (int row = 0; row < n; row++) {
        for (int col = 0; col < n; col++) {
            if (col > row) {
                cell_centre(&layout, row, col, &x, &y);
                expect_rgb(&img, x, y, MASKED, "masked cell");
            } else {
                expect_cell_value(&img, &layout, row, col, values[row * n + col]);
            }
        }
    }
    stbi_image_free(img.rgb);
    free_labels(labels, n);
    free(values);
    remove_tree(dir);
    free(dir);
}

Test(render, explicit_scale_clamps_values) {
    char *dir = make_scratch_dir("render_clamp");
    float values[4] = {-1.0f, 0.5f, 2.0f, 0.25f};
    heatmap_spec spec = {.values = values, .rows = 2, .cols = 2, .vmin = 0.0f, .vmax = 1.0f};
    heatmap_layout layout;
    image img = render_and_load(dir, "clamp.png", &spec, &layout);
    int x, y;
    cell_centre(&layout, 0, 0, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[0], "value below vmin");
    cell_centre(&layout, 1, 0, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[255], "value above vmax");
    expect_cell_value(&img, &layout, 0, 1, 0.5f);
    expect_cell_value(&img, &layout, 1, 1, 0.25f);
    stbi_image_free(img.rgb);
    remove_tree(dir);
    free(dir);
}

// The colour bar's middle column runs through the viridis table from vmax (top) down to vmin (bottom).
Test(render, colour_bar_is_monotone_viridis) {
    char *dir = make_scratch_dir("render_bar");
    int n = 20;
    float *values = make_causal_map(n, 5);
    heatmap_spec spec = labelled_spec(values, n, n, NULL, NULL);
    heatmap_layout layout;
    image img = render_and_load(dir, "bar.png", &spec, &layout);
    int x = layout.bar_x + layout.bar_width / 2;
    int previous = 256;
    for (int y = layout.bar_y; y < layout.bar_y + layout.bar_height; y++) {
        const unsigned char *p = pixel_at(&img, x, y);
        int index = -1;
        for (int i = 0; i < 256 && index < 0; i++) {
            if (!memcmp(p, viridis_rgb[i], 3)) index = i;
        }
        cr_assert(index >= 0, "colour bar pixel (%d, %d) rgb(%d, %d, %d) is not a viridis colour", x, y, p[0], p[1],
                  p[2]);
        cr_assert(index <= previous, "colour bar not monotone at y = %d: index %d after %d", y, index, previous);
        previous = index;
    }
    expect_rgb(&img, x, layout.bar_y, viridis_rgb[255], "colour bar top");
    expect_rgb(&img, x, layout.bar_y + layout.bar_height - 1, viridis_rgb[0], "colour bar bottom");
    // Tick values to the right of the bar.
    int values_x = layout.bar_x + layout.bar_width;
    cr_expect_gt(count_ink(&img, values_x, layout.bar_y, layout.width, layout.bar_y + layout.bar_height), 50,
                 "no tick values next to the colour bar");
    stbi_image_free(img.rgb);
    free(values);
    remove_tree(dir);
    free(dir);
}

Test(render, title_and_labels_leave_ink) {
    char *dir = make_scratch_dir("render_text");
    int n = 20;
    float *values = make_causal_map(n, 9);
    char **labels = make_labels(n);
    heatmap_spec spec = labelled_spec(values, n, n, labels, labels);
    heatmap_layout layout;
    image img = render_and_load(dir, "text.png", &spec, &layout);
    int map_right = layout.map_x + n * layout.cell_width, map_bottom = layout.map_y + n * layout.cell_height;
    cr_expect_gt(count_ink(&img, 0, 0, layout.width, layout.map_y), 60, "title band has no text");
    cr_expect_gt(count_ink(&img, 0, layout.map_y, layout.map_x, map_bottom), 20 * n, "row labels missing");
    cr_expect_gt(count_ink(&img, layout.map_x, map_bottom, map_right, layout.height), 20 * n, "column labels missing");
    cr_expect_eq(layout.row_label_step, 1, "24 px rows fit every label");
    cr_expect_eq(layout.col_label_step, 1);

    heatmap_spec untitled = spec;
    untitled.title = NULL;
    untitled.row_labels = untitled.col_labels = NULL;
    heatmap_layout bare;
    image plain = render_and_load(dir, "plain.png", &untitled, &bare);
    cr_expect_eq(count_ink(&plain, 0, 0, bare.map_x, bare.height), 0, "ink left of an unlabelled map");
    cr_expect_lt(bare.width, layout.width, "labels should take room");
    stbi_image_free(plain.rgb);
    stbi_image_free(img.rgb);
    free_labels(labels, n);
    free(values);
    remove_tree(dir);
    free(dir);
}

// 100 tokens get 10 px cells: labels (14 px glyphs) are thinned to every 2nd token, each with a tick mark.
Test(render, labels_thin_out_when_cells_are_small) {
    char *dir = make_scratch_dir("render_thin");
    int n = 100;
    float *values = make_causal_map(n, 3);
    char **labels = make_labels(n);
    heatmap_spec spec = labelled_spec(values, n, n, labels, labels);
    heatmap_layout layout;
    image img = render_and_load(dir, "thin100.png", &spec, &layout);
    cr_expect_eq(layout.cell_height, 10);
    cr_expect_eq(layout.row_label_step, 2);
    cr_expect_eq(layout.col_label_step, 2);
    // Row ticks: a dark pixel just left of the map at labelled rows, canvas at the others.
    int tick_x = layout.map_x - 2;
    for (int row = 0; row < 6; row++) {
        int y = layout.map_y + row * layout.cell_height + layout.cell_height / 2;
        const unsigned char *p = pixel_at(&img, tick_x, y);
        if (row % 2 == 0) cr_expect(p[0] < 100, "no tick for labelled row %d", row);
        else cr_expect(p[0] == RENDER_CANVAS_GREY, "tick for unlabelled row %d", row);
    }
    stbi_image_free(img.rgb);
    free_labels(labels, n);
    free(values);
    remove_tree(dir);
    free(dir);
}

Test(render, single_token_map) {
    char *dir = make_scratch_dir("render_one");
    float value = 0.75f;
    const char *label = "Hello";
    heatmap_spec spec = {.values = &value, .rows = 1, .cols = 1, .row_labels = &label, .col_labels = &label,
                         .title = "one", .mask_upper = true};
    heatmap_layout layout;
    image img = render_and_load(dir, "one.png", &spec, &layout);
    int x, y;
    cell_centre(&layout, 0, 0, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[255], "the only cell is the maximum");
    cr_expect_geq(layout.bar_height, 100, "a 1x1 map still gets a usable colour bar");
    stbi_image_free(img.rgb);
    remove_tree(dir);
    free(dir);
}

// 1500 tokens pool into 2x2 bins (750 drawn cells of 1 px); masked cells stay out of a bin's mean.
Test(render, large_map_pools_bins_without_masked_cells) {
    char *dir = make_scratch_dir("render_pool");
    int n = 1500;
    float *values = malloc((size_t)n * (size_t)n * sizeof *values);
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) values[i] = 0.5f;
    // Bin (10, 10): all four cells 1.0, the maximum.
    for (int r = 20; r < 22; r++) {
        for (int c = 20; c < 22; c++) values[r * n + c] = 1.0f;
    }
    // Bin (5, 5) on the diagonal: unmasked cells 0; its masked cell (10, 11) is 1 and must not count.
    values[10 * n + 10] = values[11 * n + 10] = values[11 * n + 11] = 0.0f;
    values[10 * n + 11] = 1.0f;
    // Bin (7, 3): 0.25 and 0.75 twice each -> mean 0.5; (7, 3) rows 14-15, cols 6-7.
    values[14 * n + 6] = values[15 * n + 7] = 0.25f;
    values[14 * n + 7] = values[15 * n + 6] = 0.75f;
    char **labels = make_labels(n);
    heatmap_spec spec = labelled_spec(values, n, n, labels, labels);
    heatmap_layout layout;
    image img = render_and_load(dir, "pooled1500.png", &spec, &layout);
    cr_expect_eq(layout.bin, 2);
    cr_expect_eq(layout.drawn_rows, 750);
    cr_expect_eq(layout.drawn_cols, 750);
    cr_expect_eq(layout.cell_width, 1);
    cr_expect_float_eq(layout.vmax, 1.0f, 0.0f);
    cr_expect_leq(layout.width, 1400, "pooled image should stay bounded, got %d px", layout.width);
    int x, y;
    cell_centre(&layout, 10, 10, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[255], "bin of maxima");
    cell_centre(&layout, 5, 5, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[0], "diagonal bin (masked cell excluded from the mean)");
    cell_centre(&layout, 5, 6, &x, &y);
    expect_rgb(&img, x, y, MASKED, "fully masked bin");
    expect_cell_value(&img, &layout, 7, 3, 0.5f);
    expect_cell_value(&img, &layout, 400, 17, 0.5f);
    stbi_image_free(img.rgb);
    free_labels(labels, n);
    free(values);
    remove_tree(dir);
    free(dir);
}

// Selected query rows against all keys: few tall rows, many narrow columns.
Test(render, non_square_map) {
    char *dir = make_scratch_dir("render_rect");
    int rows = 3, cols = 40;
    float values[3 * 40];
    fill_random(values, (size_t)rows * (size_t)cols, 21, 0.0f, 0.5f);
    values[2 * cols + 39] = 0.8f;
    values[1 * cols + 30] = 0.6f;
    char **labels = make_labels(cols);
    heatmap_spec spec = labelled_spec(values, rows, cols, labels, labels);
    spec.mask_upper = false;
    heatmap_layout layout;
    image img = render_and_load(dir, "rect.png", &spec, &layout);
    cr_expect_eq(layout.drawn_rows, rows);
    cr_expect_eq(layout.drawn_cols, cols);
    int x, y;
    cell_centre(&layout, 2, 39, &x, &y);
    expect_rgb(&img, x, y, viridis_rgb[255], "maximum in the last column");
    expect_cell_value(&img, &layout, 1, 30, 0.6f);
    expect_cell_value(&img, &layout, 0, 0, values[0]);
    stbi_image_free(img.rgb);
    free_labels(labels, cols);
    remove_tree(dir);
    free(dir);
}

Test(render, nan_is_rejected_with_its_index) {
    float values[9] = {0.1f, 0.2f, 0.3f, 0.4f, NAN, 0.6f, 0.7f, 0.8f, 0.9f};
    heatmap_spec spec = {.values = values, .rows = 3, .cols = 3, .title = "nan map"};
    cr_assert_eq(render_heatmap_png("/tmp/never-written.png", &spec), AV_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(av_last_error(), "row 1, col 1 (index 4)"), "message should name the NaN: %s",
              av_last_error());
    // Under the causal mask (0, 1) is never read, so garbage there is fine.
    values[4] = 0.5f;
    values[1] = NAN;
    spec.mask_upper = true;
    heatmap_layout layout;
    cr_expect_eq(render_heatmap_layout(&spec, &layout), AV_SUCCESS, "%s", av_last_error());
}

Test(render, bad_shape_is_rejected) {
    float value = 1.0f;
    heatmap_spec spec = {.values = &value, .rows = 0, .cols = 1};
    cr_expect_eq(render_heatmap_png("/tmp/never-written.png", &spec), AV_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(av_last_error(), "0 x 1"), "%s", av_last_error());
    spec.rows = 1;
    spec.values = NULL;
    cr_expect_eq(render_heatmap_png("/tmp/never-written.png", &spec), AV_ERROR_INVALID_ARGUMENT);
}

Test(render, unwritable_path_is_io_error) {
    float value = 1.0f;
    heatmap_spec spec = {.values = &value, .rows = 1, .cols = 1};
    const char *path = "/nonexistent-dir/attnviz/map.png";
    cr_assert_eq(render_heatmap_png(path, &spec), AV_ERROR_IO);
    cr_expect(strstr(av_last_error(), path), "message should name the path: %s", av_last_error());
}

Test(render, font_covers_latin1_and_truncates_labels) {
    cr_expect(font_has_glyph(0xB7), "middle dot (token labels' space) missing");
    cr_expect(font_has_glyph('A') && font_has_glyph(0xFF) && font_has_glyph(FONT_ELLIPSIS));
    cr_expect(!font_has_glyph(0x4E2D), "CJK should fall back to the box");
    uint32_t code_points[12];
    cr_expect_eq(font_decode_label("\xC2\xB7" "caf\xC3\xA9", code_points, 12), 5);
    cr_expect_eq(code_points[0], 0xB7u);
    cr_expect_eq(code_points[4], 0xE9u);
    cr_expect_eq(font_decode_label("abcdefghijklmnop", code_points, 12), 12);
    cr_expect_eq(code_points[10], (uint32_t)'k');
    cr_expect_eq(code_points[11], FONT_ELLIPSIS);
    cr_expect_eq(font_decode_label("abcdefghijkl", code_points, 12), 12, "exactly 12 chars are not truncated");
    cr_expect_eq(code_points[11], (uint32_t)'l');
    cr_expect_eq(font_decode_label("a\xFF" "b", code_points, 12), 3);
    cr_expect_eq(code_points[1], 0xFFFDu, "malformed byte becomes one replacement");
}
