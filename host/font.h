// The embedded bitmap font for heatmap text: DejaVu Sans Mono, 7x14 cells, 8-bit coverage (host/font_data.h).
#ifndef AV_FONT_H
#define AV_FONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FONT_GLYPH_WIDTH 7   // advance, px: the font is monospaced
#define FONT_GLYPH_HEIGHT 14 // ascent + descent, px

#define FONT_ELLIPSIS 0x2026u

// (FONT_GLYPH_HEIGHT, FONT_GLYPH_WIDTH) coverage of CODE_POINT, 0 = none, 255 = full ink. Code points outside
// ASCII, Latin-1 and the ellipsis get an outlined box.
const uint8_t *font_glyph(uint32_t code_point);
bool font_has_glyph(uint32_t code_point);

// Decodes UTF-8 TEXT into at most MAX_CHARS code points; when TEXT has more, the last one kept is an ellipsis.
// Malformed bytes decode as U+FFFD (drawn as a box). Returns the number written to code_points.
int font_decode_label(const char *text, uint32_t *code_points, int max_chars);

#endif
