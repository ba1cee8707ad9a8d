#include "font.h"

#include "font_data.h"

#include <string.h>
#include <utf8proc.h>

_Static_assert(FONT_DATA_WIDTH == FONT_GLYPH_WIDTH && FONT_DATA_HEIGHT == FONT_GLYPH_HEIGHT,
               "host/font_data.h was generated for another cell size: rerun weights/gen_font.py");

static int glyph_index(uint32_t code_point) {
    size_t ranges = sizeof font_data_ranges / sizeof font_data_ranges[0];
    for (size_t i = 0; i < ranges; i++) {
        const struct font_data_range *range = &font_data_ranges[i];
        if (code_point >= range->first && code_point <= range->last) {
            return range->glyph + (int)(code_point - range->first);
        }
    }
    return FONT_DATA_MISSING;
}

const uint8_t *font_glyph(uint32_t code_point) {
    return font_data_alpha[glyph_index(code_point)];
}

bool font_has_glyph(uint32_t code_point) {
    return glyph_index(code_point) != FONT_DATA_MISSING;
}

int font_decode_label(const char *text, uint32_t *code_points, int max_chars) {
    if (!text || max_chars <= 0) return 0;
    const utf8proc_uint8_t *next = (const utf8proc_uint8_t *)text;
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(text);
    int count = 0;
    while (left > 0) {
        if (count == max_chars) {
            code_points[max_chars - 1] = FONT_ELLIPSIS;
            break;
        }
        utf8proc_int32_t code_point;
        utf8proc_ssize_t used = utf8proc_iterate(next, left, &code_point);
        if (used <= 0) {
            // Skip one byte so a malformed sequence costs one replacement box, not the rest of the label.
            code_point = 0xFFFD;
            used = 1;
        }
        code_points[count++] = (uint32_t)code_point;
        next += used;
        left -= used;
    }
    return count;
}
