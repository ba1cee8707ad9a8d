// Picking a backend by name, and the CUDA entry points of a build without CUDA.
#include "attnviz_kernels.h"
#include "backend.h"

#include <string.h>

#ifndef AV_HAVE_CUDA
bool backend_cuda_available(void) { return false; }

av_status backend_cuda_create(av_backend **out, const backend_options *options) {
    (void)out;
    (void)options;
    return av_fail(AV_ERROR_UNSUPPORTED, "--device cuda: this attnviz was built without CUDA (nvcc was not found)");
}

// The kernel API (include/attnviz_kernels.h) is in every build; without CUDA its launches say why they cannot run.
av_status av_attention_forward(const av_attention_shape *shape, av_attention_tensor q, av_attention_tensor k,
                               av_attention_tensor v, av_attention_tensor o, float *lse, cudaStream_t stream) {
    return av_fail(AV_ERROR_UNSUPPORTED, "av_attention_forward: this attnviz was built without CUDA");
}

av_status av_attention_probs(const av_attention_shape *shape, av_attention_tensor q, av_attention_tensor k,
                             const float *lse, const av_probs_request *request, void *workspace,
                             size_t workspace_bytes, cudaStream_t stream) {
    return av_fail(AV_ERROR_UNSUPPORTED, "av_attention_probs: this attnviz was built without CUDA");
}
#endif

av_status backend_create(av_backend **out, const char *device, const backend_options *options) {
    bool want_cuda = !strcmp(device, "cuda") || (!strcmp(device, "auto") && backend_cuda_available());
    if (want_cuda) return backend_cuda_create(out, options);
    if (strcmp(device, "cpu") && strcmp(device, "auto"))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--device %s: expected cpu, cuda or auto", device);
    if (options->attention == AV_ATTENTION_FLASH)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--attention flash: the CPU backend has no flash kernels; use "
                                                  "--device cuda with --dtype bf16");
    if (options->compute != AV_COMPUTE_FP32 || options->attn != AV_ATTN_FP32)
        return av_fail(AV_ERROR_UNSUPPORTED, "the CPU backend computes and stores in fp32 only; drop --dtype and "
                                             "--attn-dtype or use --device cuda");
    return backend_cpu_create(out);
}
