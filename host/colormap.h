// Perceptually uniform colour maps for heatmaps. The table itself is generated (weights/gen_viridis.py).
#ifndef AV_COLORMAP_H
#define AV_COLORMAP_H

#include <stdint.h>

// (256, 3) 8-bit RGB, index 0 = low (dark violet), 255 = high (yellow).
extern const uint8_t viridis_rgb[256][3];

// Table index of a normalised value t in [0, 1]; values outside clamp, NaN maps to 0.
int colormap_index(float t);

// RGB of t in [0, 1] (clamped).
void colormap_viridis(float t, uint8_t rgb[3]);

#endif
