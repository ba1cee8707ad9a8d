// config.json of a Hugging Face checkpoint, reduced to what the forward passes need.
#ifndef AV_CONFIG_H
#define AV_CONFIG_H

#include "internal.h"

// LLAMA covers the Llama family's decoder (RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP):
// model_type "llama", and "qwen2", which adds biases to the q, k and v projections.
typedef enum av_arch { AV_ARCH_GPT2, AV_ARCH_BERT, AV_ARCH_LLAMA } av_arch;

typedef enum av_activation {
    AV_ACT_GELU_TANH, // gelu_new / gelu_pytorch_tanh / gelu_fast-free tanh approximation
    AV_ACT_GELU_ERF,  // exact gelu
    AV_ACT_RELU,
    AV_ACT_SILU       // x * sigmoid(x): Llama's gate, which its MLP applies through the swiglu op
} av_activation;

// Rotary position embedding: Hugging Face's rope_type "default", "linear" (positions divided by FACTOR) and
// "llama3" (Llama 3.1's frequency-dependent scaling).
typedef enum av_rope_type { AV_ROPE_DEFAULT, AV_ROPE_LINEAR, AV_ROPE_LLAMA3 } av_rope_type;

typedef struct rope_config {
    av_rope_type type;
    float theta;                 // rope_theta
    float factor;                // linear, llama3
    float low_freq_factor;       // llama3
    float high_freq_factor;      // llama3
    int original_max_positions;  // llama3: original_max_position_embeddings
} rope_config;

typedef struct model_config {
    av_arch arch;
    char model_type[32];
    int n_embd;         // C
    int n_head;         // NH
    int n_kv_head;      // NKV key/value heads: n_head except for grouped-query attention (Llama family)
    int n_layer;        // L
    int n_positions;    // longest prompt the position table allows
    int n_inner;        // MLP width (4C when the config says null); Llama: intermediate_size of gate and up each
    int vocab_size;
    int type_vocab_size; // BERT only, 0 otherwise
    float layer_norm_eps; // Llama: rms_norm_eps
    av_activation activation;
    // Llama family only:
    rope_config rope;
    bool qkv_bias;            // q, k and v projections have biases (qwen2; llama's attention_bias)
    bool tie_word_embeddings; // the LM head is the token embedding table
} model_config;

// Parses and validates PATH (a config.json). Messages name the file and the key.
av_status config_load(model_config *cfg, const char *path);
av_status config_parse(model_config *cfg, const char *json, const char *path_for_messages);
// Whether the architecture's attention is causal (GPT-2, Llama) or sees every token (BERT).
bool config_is_causal(const model_config *cfg);
// The name of the config key that bounds the prompt's length ("n_positions" or "max_position_embeddings").
const char *config_positions_key(const model_config *cfg);
// Rotary inverse frequencies as Hugging Face computes them in float32 for CFG's rope: inv_freq (HS / 2).
void config_rope_inv_freq(const model_config *cfg, float *inv_freq);

#endif
