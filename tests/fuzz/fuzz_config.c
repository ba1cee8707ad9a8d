// config.json: any bytes parse into a validated configuration or fail with a message naming the problem.
#include "fuzz_support.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = malloc(size + 1);
    if (!json) abort();
    memcpy(json, data, size);
    json[size] = '\0';
    model_config cfg;
    if (config_parse(&cfg, json, "config.json") == AV_SUCCESS) {
        // What the forward passes divide by and size buffers with must be positive and consistent.
        fuzz_require(cfg.n_embd > 0 && cfg.n_head > 0 && cfg.n_embd % cfg.n_head == 0, "heads divide the width");
        fuzz_require(cfg.n_layer > 0 && cfg.n_positions > 0 && cfg.n_inner > 0 && cfg.vocab_size > 0,
                     "positive sizes");
        fuzz_require(cfg.n_kv_head > 0 && cfg.n_head % cfg.n_kv_head == 0, "key/value heads divide the heads");
        if (cfg.arch == AV_ARCH_LLAMA) {
            fuzz_require((cfg.n_embd / cfg.n_head) % 2 == 0, "rotary pairs fill the head");
            float inv_freq[4096];
            if (cfg.n_embd / cfg.n_head / 2 <= 4096) config_rope_inv_freq(&cfg, inv_freq);
        }
    }
    free(json);
    return 0;
}
