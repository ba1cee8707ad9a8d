// NumPy .npy files (format 1.0), readable by numpy.load.
#ifndef AV_NPY_H
#define AV_NPY_H

#include "internal.h"

// Writes DATA as a little-endian float32 array of the given shape (C order).
av_status npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

#endif
