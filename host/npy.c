#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

// The header dict is padded with spaces so that the data starts at a multiple of 64 bytes, as numpy writes it.
static size_t npy_header(char *buf, size_t cap, int ndim, const int64_t *shape) {
    char dims[256] = "";
    size_t used = 0;
    for (int i = 0; i < ndim; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%lld%s", (long long)shape[i],
                                 ndim == 1 || i < ndim - 1 ? ", " : "");
    if (ndim == 1) dims[used - 1] = '\0'; // "(n,)" rather than "(n, )"
    char dict[400];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t header_len = padded - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(header_len & 0xff);
    buf[9] = (char)(header_len >> 8);
    memcpy(buf + 10, dict, (size_t)len);
    memset(buf + 10 + len, ' ', padded - 10 - (size_t)len - 1);
    buf[padded - 1] = '\n';
    (void)cap;
    return padded;
}

av_status npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    char header[512];
    size_t header_len = npy_header(header, sizeof header, ndim, shape);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    FILE *f = fopen(path, "wb");
    if (!f) return av_fail(AV_ERROR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(header, 1, header_len, f) == header_len && fwrite(data, sizeof(float), numel, f) == numel;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return av_fail(AV_ERROR_IO, "%s: write failed: %s", path, strerror(errno));
    return AV_SUCCESS;
}
