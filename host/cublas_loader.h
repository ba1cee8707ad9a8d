// cuBLAS, loaded on first use: a CUDA build of attnviz running on the CPU (or without a GPU) never maps the library
// (about 220 MB of resident memory and 80 ms of start-up measured in bench/RESULTS.md).
#ifndef AV_CUBLAS_LOADER_H
#define AV_CUBLAS_LOADER_H

#include "internal.h"

#include <cublas_v2.h>

// The entry points attnviz uses, typed from cublas_v2.h itself so a signature cannot drift.
typedef struct av_cublas_api {
    __typeof__(&cublasCreate_v2) create;
    __typeof__(&cublasDestroy_v2) destroy;
    __typeof__(&cublasSetStream_v2) set_stream;
    __typeof__(&cublasSetMathMode) set_math_mode;
    __typeof__(&cublasGemmEx) gemm_ex;
    __typeof__(&cublasGemmStridedBatchedEx) gemm_strided_batched_ex;
    __typeof__(&cublasGetStatusName) status_name;
    __typeof__(&cublasGetStatusString) status_string;
} av_cublas_api;

// Loads libcublas (once, thread-safe) and hands back its entry points; fails with AV_ERROR_CUDA naming the library
// and dlerror() when it cannot be loaded or lacks a symbol.
av_status av_cublas_load(const av_cublas_api **api);

#endif
