#include "cublas_loader.h"
#include "cuda_check.cuh"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
// The major version this build was compiled against: its soname, then the toolkit's own copy.
#define CUBLAS_SONAME "libcublas.so." STRINGIFY(CUBLAS_VER_MAJOR)

static av_cublas_api api;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_library(void) {
    void *lib = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#ifdef AV_CUBLAS_DIR
    if (!lib) lib = dlopen(AV_CUBLAS_DIR "/" CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
    return lib;
}

// dlsym returns void *; the function pointer types come from the header (POSIX guarantees the conversion).
#define RESOLVE(field, symbol)                                                                              \
    do {                                                                                                    \
        void *address = dlsym(lib, symbol);                                                                 \
        if (!address) {                                                                                     \
            snprintf(load_error, sizeof load_error, "%s: no symbol %s", CUBLAS_SONAME, symbol);             \
            return;                                                                                         \
        }                                                                                                   \
        memcpy(&api.field, &address, sizeof address);                                                       \
    } while (0)

static void load_once(void) {
    void *lib = open_library();
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", CUBLAS_SONAME, dlerror());
        return;
    }
    RESOLVE(create, "cublasCreate_v2");
    RESOLVE(destroy, "cublasDestroy_v2");
    RESOLVE(set_stream, "cublasSetStream_v2");
    RESOLVE(set_math_mode, "cublasSetMathMode");
    RESOLVE(gemm_ex, "cublasGemmEx");
    RESOLVE(gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
    RESOLVE(status_name, "cublasGetStatusName");
    RESOLVE(status_string, "cublasGetStatusString");
}

av_status av_cublas_load(const av_cublas_api **out) {
    pthread_once(&once, load_once);
    if (load_error[0]) return av_fail(AV_ERROR_CUDA, "%s", load_error);
    *out = &api;
    return AV_SUCCESS;
}

av_status av_cublas_fail(cublasStatus_t err, const char *statement, const char *file, int line,
                         const char *function) {
    const av_cublas_api *blas;
    if (av_cublas_load(&blas) != AV_SUCCESS)
        return av_fail(AV_ERROR_CUDA, "%s:%d: %s: %s failed: cuBLAS status %d", file, line, function, statement,
                       (int)err);
    return av_fail(AV_ERROR_CUDA, "%s:%d: %s: %s failed: %s (%s)", file, line, function, statement,
                   blas->status_name(err), blas->status_string(err));
}
