// model.safetensors as the loader meets it: a checkpoint directory (config.json, vocab.json and merges.txt of the
// tiny GPT-2 fixture) whose model.safetensors is the input. The header parser, shape checks and the upcast to
// float32 all run; whatever the bytes, loading fails with a message or succeeds, and nothing leaks.
#include "fuzz_support.h"

#include "internal.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#ifndef AV_FUZZ_GPT2_TINY_DIR
#error "AV_FUZZ_GPT2_TINY_DIR names tests/data/gpt2-tiny"
#endif

static void copy_fixture_file(const char *name) {
    char *path = av_path_join(AV_FUZZ_GPT2_TINY_DIR, name), *data;
    size_t len;
    if (!path || av_read_file(path, &data, &len) != AV_SUCCESS) abort();
    fuzz_write_file(name, data, len);
    free(data);
    free(path);
}

// Every floating tensor of a file that opened is converted, as the model loader converts what it uses.
static void convert_every_tensor(const char *path) {
    st_checkpoint ck;
    if (st_file_open(&ck, path) != AV_SUCCESS) return;
    for (int i = 0; i < ck.count; i++) {
        const st_tensor *t = &ck.tensors[i];
        fuzz_require(st_find(&ck, t->name) != NULL, "an opened tensor is found by its name");
        if (t->numel > (1u << 20)) continue;
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (!out) abort();
        st_tensor_to_f32(t, out);
        free(out);
    }
    st_checkpoint_close(&ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fixture_copied;
    if (!fixture_copied) {
        copy_fixture_file("config.json");
        copy_fixture_file("vocab.json");
        copy_fixture_file("merges.txt");
        fixture_copied = 1;
    }
    const char *path = fuzz_write_file("model.safetensors", data, size);
    convert_every_tensor(path);
    av_model *model = NULL;
    if (av_model_load(&model, fuzz_scratch_dir()) == AV_SUCCESS) av_model_destroy(model);
    else fuzz_require(model == NULL && av_last_error()[0] != '\0', "a failed load leaves no model and says why");
    return 0;
}
