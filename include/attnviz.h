// attnviz: attention capture and visualization for transformer checkpoints.
// Model-level public API. Every public name is prefixed av_.
#ifndef ATTNVIZ_H
#define ATTNVIZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AV_VERSION_MAJOR 0
#define AV_VERSION_MINOR 1
#define AV_VERSION_PATCH 0
#define AV_VERSION_STRING "0.1.0"

typedef enum av_status {
    AV_SUCCESS = 0,
    AV_ERROR_INVALID_ARGUMENT, // caller passed something out of range
    AV_ERROR_IO,               // a file could not be opened, read, written or renamed
    AV_ERROR_FORMAT,           // a file exists but its contents are malformed
    AV_ERROR_UNSUPPORTED,      // well-formed but not something attnviz handles (model_type, dtype, ...)
    AV_ERROR_PROMPT,           // empty prompt, invalid UTF-8, longer than the model allows
    AV_ERROR_OUT_OF_MEMORY,    // an allocation failed or a plan would not fit
    AV_ERROR_NO_DEVICE,        // the CUDA backend was asked for but no device exists
    AV_ERROR_CUDA,             // a CUDA runtime or cuBLAS call failed
    AV_ERROR_INTERNAL          // an invariant broke: a bug in attnviz
} av_status;

// Short fixed description of a status code ("format error", ...).
const char *av_status_string(av_status status);

// The detailed one-line message of the last failure on this thread, naming the file and the problem.
const char *av_last_error(void);

const char *av_version(void);

#ifdef __cplusplus
}
#endif

#endif
