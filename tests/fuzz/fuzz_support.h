// Shared by the fuzz targets (tests/fuzz/README.md): each target defines LLVMFuzzerTestOneInput, which libFuzzer
// drives (build.sh) and replay.c runs over a corpus in the ordinary test suite.
#ifndef AV_FUZZ_SUPPORT_H
#define AV_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// A directory of this process's own (created once, under $TMPDIR or /tmp) that the targets write their inputs into,
// since the loaders read files.
const char *fuzz_scratch_dir(void);
// Writes SIZE bytes to fuzz_scratch_dir()/NAME and returns the path (static storage, valid until the next call).
const char *fuzz_write_file(const char *name, const void *data, size_t size);
// Aborts with MESSAGE when COND is false: a property the input broke, which libFuzzer reports as a crash.
void fuzz_require(int cond, const char *message);

#endif
