// Picking a backend by name, and the CUDA entry points of a build without CUDA.
#include "backend.h"

#include <string.h>

#ifndef AV_HAVE_CUDA
bool backend_cuda_available(void) { return false; }

av_status backend_cuda_create(av_backend **out, const backend_options *options) {
    (void)out;
    (void)options;
    return av_fail(AV_ERROR_UNSUPPORTED, "--device cuda: this attnviz was built without CUDA (nvcc was not found)");
}
#endif

av_status backend_create(av_backend **out, const char *device, const backend_options *options) {
    bool want_cuda = !strcmp(device, "cuda") || (!strcmp(device, "auto") && backend_cuda_available());
    if (want_cuda) return backend_cuda_create(out, options);
    if (strcmp(device, "cpu") && strcmp(device, "auto"))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--device %s: expected cpu, cuda or auto", device);
    if (options->compute != AV_COMPUTE_FP32 || options->attn != AV_ATTN_FP32)
        return av_fail(AV_ERROR_UNSUPPORTED, "the CPU backend computes and stores in fp32 only; drop --dtype and "
                                             "--attn-dtype or use --device cuda");
    return backend_cpu_create(out);
}
