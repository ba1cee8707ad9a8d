// config.json of a Hugging Face checkpoint, reduced to what the forward passes need.
#ifndef AV_CONFIG_H
#define AV_CONFIG_H

#include "internal.h"

typedef enum av_arch { AV_ARCH_GPT2, AV_ARCH_BERT } av_arch;

typedef enum av_activation {
    AV_ACT_GELU_TANH, // gelu_new / gelu_pytorch_tanh / gelu_fast-free tanh approximation
    AV_ACT_GELU_ERF,  // exact gelu
    AV_ACT_RELU
} av_activation;

typedef struct model_config {
    av_arch arch;
    char model_type[32];
    int n_embd;         // C
    int n_head;         // NH
    int n_layer;        // L
    int n_positions;    // longest prompt the position table allows
    int n_inner;        // MLP width (4C when the config says null)
    int vocab_size;
    int type_vocab_size; // BERT only, 0 otherwise
    float layer_norm_eps;
    av_activation activation;
} model_config;

// Parses and validates PATH (a config.json). Messages name the file and the key.
av_status config_load(model_config *cfg, const char *path);
av_status config_parse(model_config *cfg, const char *json, const char *path_for_messages);
// Whether the architecture's attention is causal (GPT-2) or sees every token (BERT).
bool config_is_causal(const model_config *cfg);

#endif
